//! Queue tests, each run against both backends: a SQLite file and a real
//! PostgreSQL server (started once per test process, a database per test;
//! see `tests/it/common/pg.rs`). Several `Store`s on the same state stand
//! for several workers: each has its own connection pool.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::domain::{AssetRecord, BatchState, ProviderKind, RunOutcome};

#[allow(dead_code)]
#[path = "../../tests/it/common/pg.rs"]
mod pg;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// One state (file or database) with the example campaign's jobs expanded.
struct Fixture {
    location: StateLocation,
    campaign: String,
    specs: Vec<JobSpec>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(backend: Backend) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let location = match backend {
            Backend::Sqlite => StateLocation::Sqlite(dir.path().join("state.db")),
            Backend::Postgres => pg::fresh_database().parse().unwrap(),
        };
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/example");
        let campaign = crate::campaign::Campaign::load(&example).unwrap();
        let specs = crate::expand::expand(&campaign).unwrap();
        Fixture {
            location,
            campaign: campaign.name.clone(),
            specs,
            _dir: dir,
        }
    }

    /// A worker: its own store (own pool) on the same state.
    async fn worker(&self) -> Store {
        Store::open(&self.location).await.unwrap()
    }

    /// A store with the campaign synced and a realtime run started on it.
    async fn running(&self) -> (Store, RunId) {
        let (store, _) = self.synced().await;
        let run = store
            .start_run(&self.campaign, "local", "realtime")
            .await
            .unwrap();
        (store, run)
    }

    /// A store with the campaign synced; the live job ids in spec order.
    async fn synced(&self) -> (Store, Vec<JobId>) {
        let store = self.worker().await;
        let (_, ids) = store.sync(&self.campaign, &self.specs).await.unwrap();
        (store, ids)
    }
}

/// One `#[tokio::test]` per backend for an `async fn(Backend)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name(super::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$name(super::Backend::Postgres).await;
                }
            }
        )*
    };
}

on_both_backends!(
    concurrent_claims_never_hand_out_a_job_twice,
    jobs_move_only_from_legal_states,
    an_expired_lease_returns_its_jobs_whatever_the_host,
    sync_supersedes_changed_requests_and_retires_removed_identities,
    a_batch_is_recorded_before_the_remote_call_under_a_unique_name,
    concurrent_batch_assignment_gives_each_chunk_to_exactly_one_worker,
    only_one_worker_adopts_an_orphaned_batch,
    every_read_model_query_runs,
    the_last_runner_to_end_its_work_publishes_and_a_dead_publisher_leaves_the_manifest_due,
    settlements_arriving_together_each_get_their_own_outcome,
    an_edit_finds_every_earlier_model_turn_beside_its_kept_image,
    a_late_result_after_the_lease_expired_never_overwrites_the_newer_claim,
    a_locale_edit_without_a_base_image_fails_and_waits_again_when_the_base_is_queued,
    a_placement_outcome_is_replaced_in_place_and_read_back_under_its_asset,
    a_sync_of_more_jobs_than_one_insert_gives_every_spec_its_own_row,
    an_undone_rejection_stays_in_the_history_and_revises_nothing,
    compare_votes_and_samples_are_read_back_by_campaign_and_prefix,
);

async fn a_sync_of_more_jobs_than_one_insert_gives_every_spec_its_own_row(b: Backend) {
    // Three multi-row inserts, the last partial: each spec's id must be
    // the row holding that spec's identity and request (RETURNING order is
    // not the VALUES order on either backend).
    let f = Fixture::new(b);
    let n = 2 * INSERT_ROWS + 203;
    let mut specs = Vec::with_capacity(n);
    'fill: for copy in 0.. {
        for s in &f.specs {
            if specs.len() == n {
                break 'fill;
            }
            let mut s = s.clone();
            s.key.row = crate::domain::RowId::parse(&format!("{}-{copy}", s.key.row)).unwrap();
            s.request_hash = format!("{}-{copy}", s.request_hash);
            specs.push(s);
        }
    }
    let store = f.worker().await;
    let (planned, ids) = store.sync(&f.campaign, &specs).await.unwrap();
    assert_eq!(planned.report.new, n);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), n, "ids repeat");
    let jobs = store.jobs(&f.campaign).await.unwrap();
    let by_id: std::collections::HashMap<JobId, &JobRow> = jobs.iter().map(|j| (j.id, j)).collect();
    for (spec, id) in specs.iter().zip(&ids) {
        let row = by_id[id];
        assert_eq!(row.key, spec.key, "job {id}");
        assert_eq!(row.request_hash, spec.request_hash, "job {id}");
    }
    // Nothing new the second time, and the same ids.
    let (again, same) = store.sync(&f.campaign, &specs).await.unwrap();
    assert_eq!((again.report.new, again.report.unchanged), (0, n));
    assert_eq!(same, ids);
}

async fn a_placement_outcome_is_replaced_in_place_and_read_back_under_its_asset(b: Backend) {
    use crate::store::{PlacementEntry, PlacementKey, PlacementOutcome, SafeAreaEntry};
    let f = Fixture::new(b);
    let store = f.worker().await;
    let key = PlacementKey {
        row_id: "r1".into(),
        locale: "ar-SA".into(),
        variant: "story".into(),
        placement: "meta-story".into(),
    };
    let entry = PlacementEntry {
        placement: "meta-story".into(),
        path: "ar-SA/story/r1@meta-story.jpg".into(),
        sha256: "ab".repeat(32),
        bytes: 123_456,
        width: 1440,
        height: 2560,
        mime_type: "image/jpeg".into(),
        quality: Some(71),
        colors: None,
        checks_passed: true,
        upscaled: true,
        safe_area: Some(SafeAreaEntry {
            top: 0.14,
            bottom: 0.35,
            left: 0.06,
            right: 0.06,
        }),
        provenance: None,
    };
    store
        .record_placement(
            &f.campaign,
            &key,
            "h1",
            "src1",
            &PlacementOutcome::Done(entry.clone()),
        )
        .await
        .unwrap();
    let read = store.placement_entries(&f.campaign).await.unwrap();
    assert_eq!(read.by_asset.get(&key.asset()), Some(&vec![entry]));
    assert!(read.failures.is_empty());
    let stored = store.stored_placements(&f.campaign).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].settings_hash.as_str(), stored[0].bytes),
        ("h1", Some(123_456))
    );

    // The same placement failing later replaces the file's row.
    store
        .record_placement(
            &f.campaign,
            &key,
            "h2",
            "src1",
            &PlacementOutcome::Failed {
                path: "ar-SA/story/r1@meta-story.jpg".into(),
                reason: Reason::OverWeight,
                detail: "too heavy".into(),
            },
        )
        .await
        .unwrap();
    let read = store.placement_entries(&f.campaign).await.unwrap();
    assert!(read.by_asset.is_empty());
    assert_eq!(read.failures.len(), 1);
    assert_eq!(read.failures[0].reason, Reason::OverWeight);
    assert_eq!(read.failures[0].key, key);
    let stored = store.stored_placements(&f.campaign).await.unwrap();
    assert_eq!(
        (stored[0].settings_hash.as_str(), stored[0].bytes),
        ("h2", None)
    );

    store.delete_placement(&f.campaign, &key).await.unwrap();
    assert!(
        store
            .stored_placements(&f.campaign)
            .await
            .unwrap()
            .is_empty()
    );
}

const LEASE: Duration = Duration::from_secs(60);

async fn concurrent_claims_never_hand_out_a_job_twice(b: Backend) {
    let f = Fixture::new(b);
    let (_, ids) = f.synced().await;
    const WORKERS: usize = 6;
    assert!(ids.len() > 3, "enough jobs for more than one claim");
    // Every worker makes its first claim before any makes a second, so the
    // claims overlap however the scheduler runs the tasks.
    let first_claims = std::sync::Arc::new(tokio::sync::Barrier::new(WORKERS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let store = f.worker().await;
        let campaign = f.campaign.clone();
        let first_claims = first_claims.clone();
        tasks.spawn(async move {
            let run = store
                .start_run(&campaign, "local", "realtime")
                .await
                .unwrap();
            let mut mine = Vec::new();
            let mut claims = 0;
            loop {
                let got = store.claim(run, &campaign, 3, LEASE, &[]).await.unwrap();
                claims += 1;
                if claims == 1 {
                    first_claims.wait().await;
                }
                if got.is_empty() {
                    break;
                }
                assert!(got.iter().all(|c| c.attempts == 1), "{got:?}");
                mine.extend(got.into_iter().map(|c| c.id));
                tokio::task::yield_now().await;
            }
            mine
        });
    }
    let mut all = Vec::new();
    let mut workers_with_jobs = 0;
    while let Some(r) = tasks.join_next().await {
        let mine = r.unwrap();
        workers_with_jobs += usize::from(!mine.is_empty());
        all.extend(mine);
    }
    let unique: BTreeSet<JobId> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a job was claimed twice");
    assert_eq!(unique, ids.iter().copied().collect::<BTreeSet<_>>());
    assert!(workers_with_jobs > 1, "no concurrency happened");
}

async fn settlements_arriving_together_each_get_their_own_outcome(b: Backend) {
    let f = Fixture::new(b);
    let (store, run) = f.running().await;
    let claimed = store.claim(run, &f.campaign, 40, LEASE, &[]).await.unwrap();
    assert!(claimed.len() >= 20, "{} jobs", claimed.len());
    let fail = |detail: &str| Settlement::Fail {
        blocked: false,
        reason: Reason::Other,
        detail: detail.into(),
        block_reason: None,
    };
    // Every third job is failed once before: its second failure, in the
    // crowd, must come back false and change nothing.
    for c in claimed.iter().step_by(3) {
        assert!(
            store
                .settle(c.id, Some(run), &fail("first"), None)
                .await
                .unwrap()
        );
    }
    let mut crowd = tokio::task::JoinSet::new();
    for (i, c) in claimed.iter().enumerate() {
        let store = store.clone();
        let id = c.id;
        // A failed job is terminal for another failure (a requeue would
        // be `adloc retry`'s legal move, so the settled-before get a Fail).
        let settlement = if i % 3 == 0 || i % 2 == 1 {
            fail("second")
        } else {
            Settlement::Requeue
        };
        crowd.spawn(async move {
            let applied = store
                .settle(id, Some(run), &settlement, None)
                .await
                .unwrap();
            (i, id, applied)
        });
    }
    let mut answers = Vec::new();
    while let Some(r) = crowd.join_next().await {
        answers.push(r.unwrap());
    }
    assert_eq!(answers.len(), claimed.len());
    let rows = store.jobs(&f.campaign).await.unwrap();
    for (i, id, applied) in answers {
        let row = rows.iter().find(|r| r.id == id).unwrap();
        let settled_before = i % 3 == 0;
        assert_eq!(applied, !settled_before, "job {i}");
        let expected = if settled_before || i % 2 == 1 {
            JobState::Failed
        } else {
            JobState::Pending
        };
        assert_eq!(row.state, expected, "job {i}");
    }
}

async fn jobs_move_only_from_legal_states(b: Backend) {
    let f = Fixture::new(b);
    let (store, run) = f.running().await;
    let c = store.claim(run, &f.campaign, 1, LEASE, &[]).await.unwrap();
    let job = c[0].id;
    // Requeue refunds the attempt.
    assert!(
        store
            .settle(job, Some(run), &Settlement::Requeue, None)
            .await
            .unwrap()
    );
    let again = store.claim(run, &f.campaign, 1, LEASE, &[]).await.unwrap();
    assert_eq!((again[0].id, again[0].attempts), (job, 1));
    let fail = Settlement::Fail {
        blocked: false,
        reason: Reason::Other,
        detail: "nope".into(),
        block_reason: None,
    };
    assert!(store.settle(job, Some(run), &fail, None).await.unwrap());
    // Failed is terminal: settling it again (a late duplicate) changes nothing.
    assert!(!store.settle(job, Some(run), &fail, None).await.unwrap());
    let state = |rows: &[JobRow]| rows.iter().find(|r| r.id == job).unwrap().state;
    assert_eq!(
        state(&store.jobs(&f.campaign).await.unwrap()),
        JobState::Failed
    );
    assert_eq!(store.requeue(&f.campaign, true, false).await.unwrap(), 1);
    assert_eq!(
        state(&store.jobs(&f.campaign).await.unwrap()),
        JobState::Pending
    );
    // A retry with a delay is not claimable before it.
    let c = store.claim(run, &f.campaign, 1, LEASE, &[]).await.unwrap();
    let later = Settlement::Retry {
        not_before: Some(now_ms() + 3_600_000),
        reason: Reason::Other,
        detail: "wait".into(),
    };
    assert!(
        store
            .settle(c[0].id, Some(run), &later, None)
            .await
            .unwrap()
    );
    let rest = store
        .claim(run, &f.campaign, 1000, LEASE, &[])
        .await
        .unwrap();
    assert!(rest.iter().all(|r| r.id != c[0].id));
    assert_eq!(rest.len(), f.specs.len() - 1);
    assert!(
        store
            .next_pending(&f.campaign, &[])
            .await
            .unwrap()
            .is_some()
    );
    store.finish_run(run, RunOutcome::Finished).await.unwrap();
}

async fn an_expired_lease_returns_its_jobs_whatever_the_host(b: Backend) {
    let f = Fixture::new(b);
    let (store, _) = f.synced().await;
    // A worker here whose lease runs out at once.
    let a = store
        .start_run(&f.campaign, "local", "realtime")
        .await
        .unwrap();
    let short = store
        .claim(a, &f.campaign, 2, Duration::from_millis(1), &[])
        .await
        .unwrap();
    // Workers on another host: one silent for ten minutes (it died; its
    // pid means nothing here), one alive with a long lease.
    let now = now_ms();
    let mut other = Vec::new();
    for heartbeat in [now - 600_000, now] {
        let row = sqlx::query(
            "INSERT INTO runs (campaign, provider, mode, pid, host, started_at, heartbeat_at)
             VALUES ($1, 'gemini', 'realtime', 1, 'another-host', $2, $2) RETURNING id",
        )
        .bind(&f.campaign)
        .bind(heartbeat)
        .fetch_one(&store.pool)
        .await
        .unwrap();
        let run: RunId = row.get(0);
        let got = store.claim(run, &f.campaign, 3, LEASE, &[]).await.unwrap();
        other.push((run, got));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let recovered = store.recover_orphans(&f.campaign, LEASE).await.unwrap();
    // The expired lease and the dead host's jobs come back; the live one's stay.
    assert_eq!(recovered, 2 + 3);
    let jobs = store.jobs(&f.campaign).await.unwrap();
    let state = |id: JobId| jobs.iter().find(|r| r.id == id).unwrap().state;
    for c in short.iter().chain(&other[0].1) {
        assert_eq!(state(c.id), JobState::Pending);
    }
    for c in &other[1].1 {
        assert_eq!(state(c.id), JobState::InFlight);
    }
    let runs: Vec<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, outcome FROM runs ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert_eq!(
        runs,
        vec![
            (a, None),
            (other[0].0, Some("expired".into())),
            (other[1].0, None)
        ]
    );
    // A heartbeat renews the lease: nothing more comes back.
    store.heartbeat(other[1].0, LEASE).await.unwrap();
    assert_eq!(store.recover_orphans(&f.campaign, LEASE).await.unwrap(), 0);
    assert_eq!(store.held_elsewhere(&f.campaign, a).await.unwrap(), 3);
    assert_eq!(store.release_run_leases(other[1].0).await.unwrap(), 3);
}

async fn sync_supersedes_changed_requests_and_retires_removed_identities(b: Backend) {
    let f = Fixture::new(b);
    let (store, ids) = f.synced().await;
    let n = f.specs.len();
    let mut specs = f.specs.clone();
    specs[0].request_hash = "changed".into();
    specs.pop();
    let preview = store.preview(&f.campaign, &specs).await.unwrap();
    let (planned, new_ids) = store.sync(&f.campaign, &specs).await.unwrap();
    assert_eq!(preview.report, planned.report);
    assert_eq!(
        (
            planned.report.changed,
            planned.report.retired,
            planned.report.unchanged
        ),
        (1, 1, n - 2)
    );
    assert_ne!(new_ids[0], ids[0]);
    assert_eq!(&new_ids[1..], &ids[1..n - 1]);
    let jobs = store.jobs(&f.campaign).await.unwrap();
    let state = |id: JobId| jobs.iter().find(|r| r.id == id).map(|r| r.state);
    assert_eq!(state(ids[0]), None, "superseded rows are history");
    assert_eq!(state(ids[n - 1]), Some(JobState::Retired));
    assert_eq!(state(new_ids[0]), Some(JobState::Pending));
    // The same sync again changes nothing.
    let (again, _) = store.sync(&f.campaign, &specs).await.unwrap();
    assert_eq!(again.report.unchanged, n - 1);
    assert_eq!(
        again.report.new + again.report.changed + again.report.retired,
        0
    );
}

async fn a_batch_is_recorded_before_the_remote_call_under_a_unique_name(b: Backend) {
    let f = Fixture::new(b);
    let (store, ids) = f.synced().await;
    let run = store
        .start_run(&f.campaign, "gemini", "batch")
        .await
        .unwrap();
    let model = f.specs[0].request.model.clone();
    let eligible: HashSet<JobId> = ids.iter().copied().collect();
    let (row, jobs) = store
        .assign_batch(run, &f.campaign, &model, &eligible, 10)
        .await
        .unwrap()
        .unwrap();
    // Recorded, with its jobs, before anything is sent: a crash now finds
    // it `submitting` and looks it up by its name.
    assert_eq!(
        (row.state, row.remote_name.as_deref()),
        (BatchState::Submitting, None)
    );
    assert_eq!(jobs.len(), 10);
    assert!(
        jobs.iter()
            .all(|j| j.state == JobState::BatchSubmitting && j.attempts == 1)
    );
    let open = store.open_batches(&f.campaign).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].display_name, row.display_name);
    assert!(!open[0].owner_gone, "its owner is alive");
    let status = store.status(Some(&f.campaign)).await.unwrap();
    assert_eq!(status.by_state["batch_submitting"], 10);
    assert_eq!(status.open_batches.len(), 1);
    // Never created remotely: abandoned with a refund, the same chunk comes
    // back under the same name, and the row is reused.
    store
        .close_batch(row.id, BatchState::Abandoned, Some("test"), true)
        .await
        .unwrap();
    let (again, _) = store
        .assign_batch(run, &f.campaign, &model, &eligible, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.id, &again.display_name), (row.id, &row.display_name));
    store
        .batch_submitted(again.id, "batches/remote-1")
        .await
        .unwrap();
    let jobs = store.batch_jobs(again.id).await.unwrap();
    assert!(jobs.iter().all(|j| j.state == JobState::BatchSubmitted));
    // A created batch's name is never reused: the next chunk is another.
    let (next, next_jobs) = store
        .assign_batch(run, &f.campaign, &model, &eligible, 10)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(next.display_name, row.display_name);
    let first: HashSet<JobId> = jobs.iter().map(|j| j.id).collect();
    assert!(next_jobs.iter().all(|j| !first.contains(&j.id)));
    // Inserting the created batch's name again is refused.
    let mut tx = store.write_tx().await.unwrap();
    let clash = store
        .insert_batch(
            &mut tx,
            batches::BatchRecord {
                campaign: &f.campaign,
                target: model.as_str(),
                kind: "image",
                display_name: &row.display_name,
                requests: 1,
                run,
            },
        )
        .await;
    assert!(clash.is_err());
}

async fn concurrent_batch_assignment_gives_each_chunk_to_exactly_one_worker(b: Backend) {
    let f = Fixture::new(b);
    let (_, ids) = f.synced().await;
    let model = f.specs[0].request.model.clone();
    let eligible: HashSet<JobId> = ids.iter().copied().collect();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let store = f.worker().await;
        let (campaign, model, eligible) = (f.campaign.clone(), model.clone(), eligible.clone());
        // Claims race the batch assignments for the same pending jobs.
        let claimer = f.worker().await;
        tasks.spawn(async move {
            let run = store.start_run(&campaign, "gemini", "batch").await.unwrap();
            let mut out = Vec::new();
            while let Some((row, jobs)) = store
                .assign_batch(run, &campaign, &model, &eligible, 7)
                .await
                .unwrap()
            {
                assert_eq!(row.request_count as usize, jobs.len());
                out.push((
                    row.display_name,
                    jobs.into_iter().map(|j| j.id).collect::<Vec<_>>(),
                ));
                let _ = claimer.claim(run, &campaign, 1, LEASE, &[]).await.unwrap();
            }
            out
        });
    }
    let mut names = BTreeSet::new();
    let mut batched = Vec::new();
    while let Some(r) = tasks.join_next().await {
        for (name, jobs) in r.unwrap() {
            assert!(names.insert(name), "two batches with one name");
            batched.extend(jobs);
        }
    }
    let unique: BTreeSet<JobId> = batched.iter().copied().collect();
    assert_eq!(unique.len(), batched.len(), "a job went into two batches");
    let store = f.worker().await;
    let jobs = store.jobs(&f.campaign).await.unwrap();
    for j in &jobs {
        let in_batch = unique.contains(&j.id);
        match j.state {
            JobState::BatchSubmitting => assert!(in_batch),
            JobState::InFlight => assert!(!in_batch),
            JobState::Pending => assert!(j.model != model, "job {} left pending", j.id),
            other => panic!("job {} left {other:?}", j.id),
        }
    }
}

async fn only_one_worker_adopts_an_orphaned_batch(b: Backend) {
    let f = Fixture::new(b);
    let (store, ids) = f.synced().await;
    let model = f.specs[0].request.model.clone();
    let eligible: HashSet<JobId> = ids.iter().copied().collect();
    let owner = store
        .start_run(&f.campaign, "gemini", "batch")
        .await
        .unwrap();
    let (row, _) = store
        .assign_batch(owner, &f.campaign, &model, &eligible, 5)
        .await
        .unwrap()
        .unwrap();
    // A live owner's batch is not up for adoption.
    let early = store
        .start_run(&f.campaign, "gemini", "batch")
        .await
        .unwrap();
    assert!(!store.adopt_batch(row.id, early).await.unwrap());
    store.finish_run(owner, RunOutcome::Stopped).await.unwrap();
    assert!(store.open_batches(&f.campaign).await.unwrap()[0].owner_gone);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let w = f.worker().await;
        let campaign = f.campaign.clone();
        tasks.spawn(async move {
            let run = w.start_run(&campaign, "gemini", "batch").await.unwrap();
            w.adopt_batch(row.id, run).await.unwrap()
        });
    }
    let mut adopted = 0;
    while let Some(r) = tasks.join_next().await {
        adopted += usize::from(r.unwrap());
    }
    assert_eq!(adopted, 1);
    assert!(!store.open_batches(&f.campaign).await.unwrap()[0].owner_gone);
}

async fn every_read_model_query_runs(b: Backend) {
    let f = Fixture::new(b);
    let (store, ids) = f.synced().await;
    let run = store
        .start_run(&f.campaign, "local", "realtime")
        .await
        .unwrap();
    let c = store.claim(run, &f.campaign, 2, LEASE, &[]).await.unwrap();
    let attempt = AttemptRecord {
        mode: BillingMode::Realtime,
        started_at: now_ms(),
        finished_at: now_ms(),
        outcome: AttemptOutcome::Ok,
        reason: None,
        http_status: Some(200),
        detail: None,
        cost_usd: 0.25,
        read: false,
    };
    let done = Settlement::Done {
        qa: ImageQa::Off,
        provider: ProviderKind::Gemini,
        asset: AssetRecord {
            path: "en-US/hero/r1.png".into(),
            sha256: "ab".repeat(32),
            bytes: 1234,
            width: 16,
            height: 9,
            mime_type: "image/png".into(),
        },
        cost_usd: 0.25,
        usage_json: None,
        model_turn: None,
        replaced: None,
    };
    for j in &c {
        assert!(
            store
                .settle(j.id, Some(run), &done, Some(&attempt))
                .await
                .unwrap()
        );
    }
    let entry = RenditionEntry {
        path: "en-US/hero/r1.w.jpg".into(),
        sha256: "cd".repeat(32),
        bytes: 99,
        width: 8,
        height: 4,
        mime_type: "image/jpeg".into(),
        fit: "cover".into(),
        upscaled: true,
        provenance: None,
    };
    store
        .record_rendition(c[0].id, "s1", &"ab".repeat(32), &entry)
        .await
        .unwrap();
    store
        .record_rendition(c[0].id, "s1", &"ab".repeat(32), &entry)
        .await
        .unwrap();
    store
        .record_rendition_failure(&RenditionFailure {
            job_id: c[1].id,
            settings_hash: "s2".into(),
            path: "x.jpg".into(),
            detail: "broken".into(),
        })
        .await
        .unwrap();
    store
        .record_upload("s3://b/p", &f.campaign, "m.json", "ef", 10)
        .await
        .unwrap();
    store
        .record_upload("s3://b/p", &f.campaign, "m.json", "ff", 11)
        .await
        .unwrap();
    assert_eq!(
        store.uploads("s3://b/p", &f.campaign).await.unwrap()["m.json"],
        "ff"
    );
    store
        .save_snapshot(run, &f.campaign, "{}", now_ms())
        .await
        .unwrap();
    store
        .save_snapshot(run, &f.campaign, "{\"a\":1}", now_ms())
        .await
        .unwrap();
    let snaps = store.snapshots(&f.campaign).await.unwrap();
    assert_eq!(snaps.len(), 1);
    assert!((snaps[0].spent_usd - 0.5).abs() < 1e-9);
    let state = store.campaign_state(&f.campaign).await.unwrap();
    assert_eq!(state.jobs.len(), ids.len());
    assert_eq!(state.renditions[&c[0].id], vec![entry]);
    assert_eq!(state.rendition_failures.len(), 1);
    let done_row = state.jobs.iter().find(|j| j.id == c[0].id).unwrap();
    assert_eq!(done_row.state, JobState::Done);
    assert_eq!(done_row.asset.as_ref().unwrap().bytes, 1234);
    assert!((store.spent_usd(&f.campaign).await.unwrap() - 0.5).abs() < 1e-9);
    let status = store.status(None).await.unwrap();
    assert_eq!(status.by_state["done"], 2);
    assert!((status.spent_usd - 0.5).abs() < 1e-9);
    assert_eq!(store.campaigns().await.unwrap(), vec![f.campaign.clone()]);
    assert_eq!(
        store.pending_ids(&f.campaign, &[]).await.unwrap().len(),
        ids.len() - 2
    );
    let model = f.specs[0].request.model.as_str().to_string();
    assert!(
        !store
            .pending_ids(&f.campaign, &[model])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.stored_renditions(&f.campaign).await.unwrap().len(), 1);
    store.delete_rendition(c[0].id, "s1").await.unwrap();
    assert!(store.decisions(&f.campaign).await.unwrap().is_empty());
    assert!(store.composites(&f.campaign).await.unwrap().is_empty());
    assert!(
        store
            .open_read_batches(&f.campaign)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.next_read(&f.campaign).await.unwrap().is_none());
    assert_eq!(store.read_done_images(&[c[0].id]).await.unwrap(), 1);
    let reads = store.claim_reads(run, &f.campaign, 5, LEASE).await.unwrap();
    assert_eq!(reads.len(), 1);
    let pass = ReadSettlement::Pass { checks: Vec::new() };
    assert!(
        store
            .settle_read(reads[0].id, None, &pass, None, Some(run))
            .await
            .unwrap()
    );
    store.close().await;
}

async fn the_last_runner_to_end_its_work_publishes_and_a_dead_publisher_leaves_the_manifest_due(
    b: Backend,
) {
    let f = Fixture::new(b);
    let (store, _) = f.synced().await;
    let other = f.worker().await;
    let a = store
        .start_run(&f.campaign, "gemini", "realtime")
        .await
        .unwrap();
    let b2 = other
        .start_run(&f.campaign, "gemini", "realtime")
        .await
        .unwrap();
    // A runner on another host, silent for ten minutes: dead, it must not
    // keep the others from publishing.
    let row = sqlx::query(
        "INSERT INTO runs (campaign, provider, mode, pid, host, started_at, heartbeat_at)
         VALUES ($1, 'gemini', 'realtime', 1, 'another-host', $2, $2) RETURNING id",
    )
    .bind(&f.campaign)
    .bind(now_ms() - 600_000)
    .fetch_one(&store.pool)
    .await
    .unwrap();
    let _dead: RunId = row.get(0);
    assert_eq!(
        store.publication(&f.campaign, LEASE).await.unwrap(),
        Publication::Awaited,
        "jobs synced, no manifest yet, runners live"
    );
    assert!(!store.end_work(a, &f.campaign, LEASE).await.unwrap());
    assert!(other.end_work(b2, &f.campaign, LEASE).await.unwrap());
    // Ending twice changes nothing: still the last.
    assert!(other.end_work(b2, &f.campaign, LEASE).await.unwrap());
    // Both end their runs without a manifest (the publisher died): due.
    store.finish_run(a, RunOutcome::Finished).await.unwrap();
    other.finish_run(b2, RunOutcome::Interrupted).await.unwrap();
    assert_eq!(
        store.publication(&f.campaign, LEASE).await.unwrap(),
        Publication::Due
    );
    // A manifest of the state as read now is current.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let c = store
        .start_run(&f.campaign, "none", "manifest")
        .await
        .unwrap();
    let state = store.campaign_state(&f.campaign).await.unwrap();
    store
        .save_snapshot(c, &f.campaign, "{}", state.read_at_ms)
        .await
        .unwrap();
    store.finish_run(c, RunOutcome::Finished).await.unwrap();
    assert_eq!(
        store.publication(&f.campaign, LEASE).await.unwrap(),
        Publication::Current
    );
    // A job claimed since makes it out of date again: awaited from the
    // live claimer, due once it is gone.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let d = store
        .start_run(&f.campaign, "gemini", "realtime")
        .await
        .unwrap();
    assert_eq!(
        store
            .claim(d, &f.campaign, 1, LEASE, &[])
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        other.publication(&f.campaign, LEASE).await.unwrap(),
        Publication::Awaited
    );
    store.finish_run(d, RunOutcome::Stopped).await.unwrap();
    assert_eq!(
        other.publication(&f.campaign, LEASE).await.unwrap(),
        Publication::Due
    );
    // The lone runner of a campaign is always the last.
    let e = store
        .start_run(&f.campaign, "gemini", "realtime")
        .await
        .unwrap();
    assert!(store.end_work(e, &f.campaign, LEASE).await.unwrap());
}

/// Multi-turn edits (issue 21): the model turn of each image moves to the
/// revision that keeps the image, so revision 3 is sent with turns 1 and 2
/// and the notes between them.
async fn an_edit_finds_every_earlier_model_turn_beside_its_kept_image(b: Backend) {
    use crate::domain::{Decision, DecisionFacts, ModelTurn, TurnPart};
    let f = Fixture::new(b);
    let (store, ids) = f.synced().await;
    let run = store
        .start_run(&f.campaign, "gemini", "realtime")
        .await
        .unwrap();
    let claimed = store
        .claim(run, &f.campaign, ids.len(), LEASE, &[])
        .await
        .unwrap();
    let job = claimed[0].id;
    let spec = &f.specs[ids.iter().position(|i| *i == job).unwrap()];
    let turn = |n: u32| ModelTurn {
        parts: vec![
            TurnPart::Text {
                text: format!("Here is revision {n}."),
                signature: Some(format!("text-sig-{n}")),
            },
            TurnPart::Image {
                signature: Some(format!("image-sig-{n}")),
            },
        ],
    };
    let sha = |n: u32| format!("{n:02}").repeat(32);
    let done = |n: u32, replaced: Option<&str>| Settlement::Done {
        qa: ImageQa::Off,
        provider: ProviderKind::Gemini,
        asset: AssetRecord {
            path: "en-US/hero/r1.png".into(),
            sha256: sha(n),
            bytes: 10,
            width: 16,
            height: 9,
            mime_type: "image/png".into(),
        },
        cost_usd: 0.1,
        usage_json: None,
        model_turn: Some(turn(n)),
        replaced: replaced.map(str::to_string),
    };
    let (st, campaign) = (&store, f.campaign.as_str());
    let reject = |n: u32| async move {
        let d = NewDecision {
            asset_path: "en-US/hero/r1".into(),
            sha256: sha(n),
            request_sha256: spec.request_hash.clone(),
            facts: DecisionFacts {
                decision: Decision::Reject,
                by: "ben".into(),
                note: Some(format!("note {n}")),
            },
        };
        st.record_decisions(campaign, &[d]).await.unwrap();
        let due = st.revisable(campaign).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(st.queue_revisions(&due).await.unwrap(), 1);
    };
    assert!(
        store
            .settle(job, Some(run), &done(1, None), None)
            .await
            .unwrap()
    );
    reject(1).await;
    let e = store.pending_edit(job).await.unwrap().unwrap();
    assert_eq!(e.turn, Some(turn(1)));
    assert!(e.history.is_empty());
    assert_eq!(e.note, "note 1");
    let again = store.claim(run, &f.campaign, 10, LEASE, &[]).await.unwrap();
    assert_eq!(again.iter().map(|j| j.id).collect::<Vec<_>>(), vec![job]);
    let kept = "en-US/hero/r1.r1.png";
    assert!(
        store
            .settle(job, Some(run), &done(2, Some(kept)), None)
            .await
            .unwrap()
    );
    reject(2).await;
    let e = store.pending_edit(job).await.unwrap().unwrap();
    assert_eq!(e.revision, 2);
    assert_eq!(e.turn, Some(turn(2)));
    assert_eq!(e.note, "note 2");
    assert_eq!(
        e.history,
        vec![revisions::PastTurn {
            revision: 1,
            path: kept.into(),
            sha256: sha(1),
            mime_type: "image/png".into(),
            turn: Some(turn(1)),
            note: "note 1".into(),
        }]
    );
}

/// Undo (the review server, issue 25) is a `pending` decision: recorded
/// after the rejection it takes back, moving the review version, and the
/// job is no longer due for an edit; undoing an undecided asset records
/// nothing.
async fn an_undone_rejection_stays_in_the_history_and_revises_nothing(b: Backend) {
    use crate::domain::{ApprovalState, Decision, DecisionFacts};
    let f = Fixture::new(b);
    let (store, run) = f.running().await;
    let claimed = store.claim(run, &f.campaign, 1, LEASE, &[]).await.unwrap();
    let (job, request) = (claimed[0].id, claimed[0].request_hash.clone());
    let sha = "ab".repeat(32);
    assert!(
        store
            .settle(job, Some(run), &done_with(&sha, 0.1), None)
            .await
            .unwrap()
    );
    let decide = |decision, note: Option<&str>| NewDecision {
        asset_path: "en-US/hero/r1.png".into(),
        sha256: sha.clone(),
        request_sha256: request.clone(),
        facts: DecisionFacts {
            decision,
            by: "ana".into(),
            note: note.map(str::to_string),
        },
    };
    let (_, none) = store.review_version(&f.campaign).await.unwrap();
    assert_eq!(none, 0);
    assert_eq!(
        store
            .record_decisions(&f.campaign, &[decide(Decision::Undo, None)])
            .await
            .unwrap(),
        0,
        "nothing to undo"
    );
    store
        .record_decisions(&f.campaign, &[decide(Decision::Reject, Some("too dark"))])
        .await
        .unwrap();
    let (_, rejected) = store.review_version(&f.campaign).await.unwrap();
    assert_eq!(store.revisable(&f.campaign).await.unwrap().len(), 1);
    assert_eq!(
        store
            .record_decisions(&f.campaign, &[decide(Decision::Undo, None)])
            .await
            .unwrap(),
        1
    );
    let (_, undone) = store.review_version(&f.campaign).await.unwrap();
    assert!(undone > rejected && rejected > none);
    assert!(store.revisable(&f.campaign).await.unwrap().is_empty());
    let history: Vec<ApprovalState> = store
        .decisions(&f.campaign)
        .await
        .unwrap()
        .iter()
        .map(|d| d.state)
        .collect();
    assert_eq!(history, [ApprovalState::Rejected, ApprovalState::Pending]);
}

/// `adloc compare` (issue 25): votes are kept per campaign, oldest first;
/// samples are found by their name prefix (an `_` in it is no wildcard);
/// a done job's call latency is read by asset path.
async fn compare_votes_and_samples_are_read_back_by_campaign_and_prefix(b: Backend) {
    let f = Fixture::new(b);
    let (store, run) = f.running().await;
    let vote = |voter: &str, model: &str| NewVote {
        campaign: "spring".into(),
        row_id: "r1".into(),
        locale: "en-US".into(),
        variant: "hero".into(),
        model: model.into(),
        sha256: "cd".repeat(32),
        voter: voter.into(),
    };
    store
        .record_vote(&vote("ana", "gpt-image-2"))
        .await
        .unwrap();
    store
        .record_vote(&vote("ben", "gemini-3-pro-image"))
        .await
        .unwrap();
    let votes = store.votes("spring").await.unwrap();
    assert_eq!(
        votes.iter().map(|v| v.vote.clone()).collect::<Vec<_>>(),
        vec![
            vote("ana", "gpt-image-2"),
            vote("ben", "gemini-3-pro-image")
        ]
    );
    assert!(store.votes("autumn").await.unwrap().is_empty());
    for name in [
        "spring--compare--a",
        "spring--compare--b",
        "springxcompare",
        "spring",
    ] {
        let r = store.start_run(name, "local", "realtime").await.unwrap();
        store.save_snapshot(r, name, "{}", 0).await.unwrap();
    }
    assert_eq!(
        store
            .campaigns_with_prefix("spring--compare--")
            .await
            .unwrap(),
        ["spring--compare--a", "spring--compare--b"]
    );
    assert!(
        store
            .campaigns_with_prefix("spring_")
            .await
            .unwrap()
            .is_empty(),
        "`_` is no wildcard"
    );
    let claimed = store.claim(run, &f.campaign, 1, LEASE, &[]).await.unwrap();
    let mut attempt = paid(0.1);
    attempt.finished_at = attempt.started_at + 1234;
    assert!(
        store
            .settle(
                claimed[0].id,
                Some(run),
                &done_with(&"ef".repeat(32), 0.1),
                Some(&attempt)
            )
            .await
            .unwrap()
    );
    let lat = store.latencies(&f.campaign).await.unwrap();
    assert_eq!(lat.get("en-US/hero/r1.png"), Some(&1234), "{lat:?}");
}

/// A paid realtime attempt costing `cost_usd`.
fn paid(cost_usd: f64) -> AttemptRecord {
    AttemptRecord {
        mode: BillingMode::Realtime,
        started_at: now_ms(),
        finished_at: now_ms(),
        outcome: AttemptOutcome::Ok,
        reason: None,
        http_status: Some(200),
        detail: None,
        cost_usd,
        read: false,
    }
}

/// An image stored with checksum `sha256`.
fn done_with(sha256: &str, cost_usd: f64) -> Settlement {
    Settlement::Done {
        qa: ImageQa::Off,
        provider: ProviderKind::Gemini,
        asset: AssetRecord {
            path: "en-US/hero/r1.png".into(),
            sha256: sha256.into(),
            bytes: 1234,
            width: 16,
            height: 9,
            mime_type: "image/png".into(),
        },
        cost_usd,
        usage_json: None,
        model_turn: None,
        replaced: None,
    }
}

async fn a_late_result_after_the_lease_expired_never_overwrites_the_newer_claim(b: Backend) {
    let f = Fixture::new(b);
    let (store, _) = f.synced().await;
    // Runner A claims a job under a lease that runs out at once (A is
    // alive but stalled: its heartbeat is fresh, so only the lease ends).
    let a = store
        .start_run(&f.campaign, "gemini", "realtime")
        .await
        .unwrap();
    let took = store
        .claim(a, &f.campaign, 1, Duration::from_millis(1), &[])
        .await
        .unwrap();
    let job = took[0].id;
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Runner B takes the job back and claims it for itself.
    let other = f.worker().await;
    assert_eq!(other.recover_orphans(&f.campaign, LEASE).await.unwrap(), 1);
    let bee = other
        .start_run(&f.campaign, "gemini", "realtime")
        .await
        .unwrap();
    let again = other.claim(bee, &f.campaign, 1, LEASE, &[]).await.unwrap();
    assert_eq!(again[0].id, job, "B holds the job now");
    let row = |rows: Vec<JobRow>| rows.into_iter().find(|r| r.id == job).unwrap();

    // A's answers come back late: none of them may move B's claim, but
    // A's paid call is recorded.
    let late = [
        done_with(&"aa".repeat(32), 0.25),
        Settlement::Fail {
            blocked: true,
            reason: Reason::BlockedImage,
            detail: "late".into(),
            block_reason: None,
        },
        Settlement::Retry {
            not_before: None,
            reason: Reason::ServerError,
            detail: "late".into(),
        },
        Settlement::Requeue,
    ];
    for s in &late {
        let attempt = matches!(s, Settlement::Done { .. }).then(|| paid(0.25));
        assert!(
            !store
                .settle(job, Some(a), s, attempt.as_ref())
                .await
                .unwrap(),
            "a late {s:?} must not apply"
        );
        let now = row(store.jobs(&f.campaign).await.unwrap());
        assert_eq!(now.state, JobState::InFlight, "after a late {s:?}");
    }
    assert_eq!(other.spent_usd(&f.campaign).await.unwrap(), 0.25);
    // B's own result applies, and stays.
    assert!(
        other
            .settle(
                job,
                Some(bee),
                &done_with(&"bb".repeat(32), 0.5),
                Some(&paid(0.5))
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .settle(
                job,
                Some(a),
                &done_with(&"aa".repeat(32), 0.25),
                Some(&paid(0.25))
            )
            .await
            .unwrap()
    );
    let now = row(store.jobs(&f.campaign).await.unwrap());
    assert_eq!(now.state, JobState::Done);
    assert_eq!(now.asset.unwrap().sha256, "bb".repeat(32));
    assert_eq!(now.cost_usd, Some(0.5));
    // Every paid call is in the ledger, under the run that made it.
    let runs: Vec<(i64, f64)> =
        sqlx::query_as("SELECT run_id, cost_usd FROM attempts WHERE job_id = $1 ORDER BY id")
            .bind(job)
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert_eq!(runs, vec![(a, 0.25), (bee, 0.5), (a, 0.25)]);

    // The same for a copy-QA read: A's late read of a job B reads now.
    assert_eq!(store.read_done_images(&[job]).await.unwrap(), 1);
    let read = store
        .claim_reads(a, &f.campaign, 1, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(read[0].id, job);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(other.recover_orphans(&f.campaign, LEASE).await.unwrap(), 1);
    let again = other.claim_reads(bee, &f.campaign, 1, LEASE).await.unwrap();
    assert_eq!(again[0].id, job);
    let pass = ReadSettlement::Pass { checks: Vec::new() };
    let late_read = AttemptRecord {
        read: true,
        ..paid(0.001)
    };
    assert!(
        !store
            .settle_read(job, None, &pass, Some(&late_read), Some(a))
            .await
            .unwrap(),
        "a late read must not apply"
    );
    let now = row(store.jobs(&f.campaign).await.unwrap());
    assert_eq!(now.state, JobState::ReadInFlight);
    assert!(
        other
            .settle_read(job, None, &pass, None, Some(bee))
            .await
            .unwrap()
    );
    assert!((other.spent_usd(&f.campaign).await.unwrap() - 1.001).abs() < 1e-9);
}

async fn a_locale_edit_without_a_base_image_fails_and_waits_again_when_the_base_is_queued(
    b: Backend,
) {
    let mut f = Fixture::new(b);
    // The example's hero variant, as `text = "edit"`.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/example");
    let mut campaign = crate::campaign::Campaign::load(&example).unwrap();
    for v in &mut campaign.variants {
        if v.name == "hero" {
            v.text = crate::campaign::TextMode::Edit;
        }
    }
    f.specs = crate::expand::expand(&campaign).unwrap();
    let (store, ids) = f.synced().await;
    let edits: Vec<(JobId, &JobSpec)> = ids
        .iter()
        .copied()
        .zip(&f.specs)
        .filter(|(_, s)| s.copy_edit.is_some())
        .collect();
    let (first, spec) = edits[0];
    let base_key = &spec.copy_edit.as_ref().unwrap().base;
    let base = ids[f.specs.iter().position(|s| &s.key == base_key).unwrap()];
    let of_base: Vec<JobId> = edits
        .iter()
        .filter(|(_, s)| &s.copy_edit.as_ref().unwrap().base == base_key)
        .map(|(id, _)| *id)
        .collect();
    assert!(of_base.len() > 1 && of_base.contains(&first));
    let state_of = |rows: &[JobRow], id: JobId| rows.iter().find(|r| r.id == id).unwrap().clone();
    // Nothing to fail while the base may still be made.
    assert_eq!(store.fail_edits_without_base(&f.campaign).await.unwrap(), 0);
    // The base fails for good.
    let run = store
        .start_run(&f.campaign, "gemini", "realtime")
        .await
        .unwrap();
    let claimed = store
        .claim(run, &f.campaign, 1000, LEASE, &[])
        .await
        .unwrap();
    assert!(claimed.iter().any(|c| c.id == base));
    let fail = Settlement::Fail {
        blocked: false,
        reason: Reason::AttemptsExhausted,
        detail: "gave up".into(),
        block_reason: None,
    };
    assert!(store.settle(base, Some(run), &fail, None).await.unwrap());
    // No settle fails a job that was never claimed; the base statement does.
    assert!(!store.settle(first, Some(run), &fail, None).await.unwrap());
    assert_eq!(
        store.fail_edits_without_base(&f.campaign).await.unwrap(),
        of_base.len() as u64
    );
    let rows = store.jobs(&f.campaign).await.unwrap();
    for id in &of_base {
        let r = state_of(&rows, *id);
        assert_eq!(r.state, JobState::Failed);
        assert_eq!(r.error_code, Some(Reason::BaseFailed));
        let detail = r.error_detail.unwrap();
        assert!(detail.contains(&format!("base job {base} (")), "{detail}");
        assert!(detail.contains("attempts_exhausted"), "{detail}");
    }
    // Failing again finds nothing; a resync keeps them failed while the
    // base is still failed.
    assert_eq!(store.fail_edits_without_base(&f.campaign).await.unwrap(), 0);
    store.sync(&f.campaign, &f.specs).await.unwrap();
    let rows = store.jobs(&f.campaign).await.unwrap();
    assert_eq!(state_of(&rows, first).state, JobState::Failed);
    // `adloc retry --failed`: the base is pending, its locales wait for it.
    store.requeue(&f.campaign, true, false).await.unwrap();
    let rows = store.jobs(&f.campaign).await.unwrap();
    assert_eq!(state_of(&rows, base).state, JobState::Pending);
    for id in &of_base {
        let r = state_of(&rows, *id);
        assert_eq!(r.state, JobState::Waiting, "job {id}");
        assert_eq!(r.error_code, None);
    }
}
