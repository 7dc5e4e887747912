//! Crash safety, proven by killing the real binary: SIGKILL at seeded random
//! moments and aborts at deterministic crash points around every state
//! change, then reruns until done. Afterwards every job has exactly one
//! asset and one manifest entry whose bytes match, no temporary file is
//! left, batch mode paid for every image exactly once, and realtime paid
//! twice at most for the calls in flight at each kill.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use adloc_emulator::{BatchFaults, Faults};

use crate::common::*;

const CONCURRENCY: usize = 4;

/// The example's paid jobs: rows × locales × model-text variants, plus one
/// copy-free art image per row for the overlay banner.
pub(crate) fn paid_jobs() -> u64 {
    example().generations()
}

/// The example's assets: model-text images plus banners typeset locally
/// into every locale.
fn assets() -> usize {
    example().assets() as usize
}

fn command(ws: &Workspace, emu: &Emu, mode: &str, crash_at: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adloc"));
    cmd.current_dir(ws.path())
        .args([
            "run",
            "campaigns/example",
            "--provider",
            "gemini",
            "--mode",
            mode,
        ])
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .env_remove("GOOGLE_API_KEY")
        .env("ADLOC_LOG", "warn")
        .env("ADLOC_BATCH_POLL_MS", "40")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    ws.state_env(&mut cmd);
    for (k, v) in emu.env() {
        cmd.env(k, v);
    }
    if let Some(p) = crash_at {
        cmd.env("ADLOC_CRASH_AT", p);
    }
    cmd
}

fn spawn(ws: &Workspace, emu: &Emu, mode: &str, crash_at: Option<&str>) -> Child {
    command(ws, emu, mode, crash_at).spawn().unwrap()
}

/// Wait for a child, killing it (and failing the test) if it hangs, so a
/// bug can never stall CI.
pub(crate) fn wait_bounded(mut child: Child, what: &str) -> std::process::Output {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while matches!(child.try_wait(), Ok(None)) {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Run to completion without interference; must exit 0.
fn finish(ws: &Workspace, emu: &Emu, mode: &str) {
    let child = command(ws, emu, mode, None)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_bounded(child, "final run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the final, undisturbed run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run with a crash point; it must not finish normally.
fn crash(ws: &Workspace, emu: &Emu, mode: &str, point: Option<&str>) {
    let out = wait_bounded(command(ws, emu, mode, point).spawn().unwrap(), "crash run");
    assert_ne!(
        out.status.code(),
        Some(0),
        "{point:?}: the crash point did not fire"
    );
}

/// The invariants after any sequence of kills and a final clean run.
pub(crate) fn assert_consistent(ws: &Workspace) {
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), assets());
    let art = m["art"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        art.len() as u64,
        paid_jobs() - example().model_jobs(),
        "one art entry per overlay job"
    );
    let listed: BTreeSet<String> = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .chain(art.iter())
        .map(|a| a["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed.len(),
        assets() + art.len(),
        "one manifest entry per asset"
    );
    let mut on_disk = BTreeSet::new();
    let mut stack = vec![ws.out()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e
                    .path()
                    .strip_prefix(ws.out())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                // The manifests and the review page (with its thumbnails)
                // describe the assets; they are not assets themselves.
                let derived = rel == "manifest.json"
                    || rel == "manifest.approved.json"
                    || rel.starts_with("review/");
                if !derived {
                    on_disk.insert(rel);
                }
            }
        }
    }
    assert_eq!(
        on_disk, listed,
        "files on disk differ from the manifest (strays or partial files)"
    );
    assert!(
        temporaries(ws.path()).is_empty(),
        "temporary files left behind"
    );
}

pub(crate) fn duplicates(emu: &Emu) -> u64 {
    emu.stats()
        .prompts_billed
        .values()
        .map(|n| n.saturating_sub(1))
        .sum()
}

pub(crate) fn kill_after(mut child: Child, ms: u64) -> bool {
    std::thread::sleep(Duration::from_millis(ms));
    let killed = matches!(child.try_wait(), Ok(None));
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    killed
}

#[test]
fn realtime_runs_killed_at_random_moments_resume_and_pay_twice_only_for_calls_in_flight() {
    let emu = Emu::start(Faults {
        latency_ms: 40,
        latency_jitter_ms: 40,
        ..Faults::default()
    });
    let ws = Workspace::new();
    ws.append_toml("\n[rate_limit]\nrpm = 600000\n");
    let mut rng = fastrand::Rng::with_seed(0xC0FFEE);
    let mut kills = 0u64;
    for _ in 0..8 {
        let child = spawn(&ws, &emu, "realtime", None);
        if kill_after(child, rng.u64(80..500)) {
            kills += 1;
        }
    }
    finish(&ws, &emu, "realtime");
    assert_consistent(&ws);
    let dup = duplicates(&emu);
    eprintln!("realtime random kills: {kills} kills landed, {dup} images paid twice");
    assert!(kills >= 4, "too few kills landed mid-run ({kills})");
    assert!(
        dup <= kills * CONCURRENCY as u64,
        "{dup} duplicates for {kills} kills"
    );
}

#[test]
fn realtime_crash_points_around_each_state_change_resume_cleanly() {
    let mut total_dup = 0;
    for point in [
        "realtime-after-claim:7",
        "realtime-after-call:7",
        "after-asset-rename:7",
        "before-job-update:7",
    ] {
        let emu = Emu::start(Faults {
            latency_ms: 5,
            ..Faults::default()
        });
        let ws = Workspace::new();
        ws.append_toml("\n[rate_limit]\nrpm = 600000\n");
        crash(&ws, &emu, "realtime", Some(point));
        finish(&ws, &emu, "realtime");
        assert_consistent(&ws);
        let dup = duplicates(&emu);
        assert!(dup <= CONCURRENCY as u64, "{point}: {dup} duplicates");
        total_dup += dup;
    }
    eprintln!("realtime crash points: 4 exercised, {total_dup} images paid twice in all");
}

/// Crash points around batch creation, each on a fresh workspace.
fn batch_crash_points(points: &[Option<&str>], workspace: fn() -> Workspace) {
    for &point in points {
        let emu = Emu::start(Faults {
            batch: BatchFaults {
                polls_until_done: 2,
                ..BatchFaults::default()
            },
            ..Faults::default()
        });
        let ws = workspace();
        crash(&ws, &emu, "batch", point);
        finish(&ws, &emu, "batch");
        assert_consistent(&ws);
        let stats = emu.stats();
        assert_eq!(stats.billed_images, paid_jobs(), "{point:?}: {stats:?}");
        assert_eq!(duplicates(&emu), 0, "{point:?}");
        assert!(
            stats.batch_display_names.values().all(|n| *n == 1),
            "{point:?}: a batch was created twice: {stats:?}"
        );
    }
}

#[test]
fn on_postgres_a_crash_around_the_batch_create_call_never_pays_twice() {
    batch_crash_points(
        &[Some("batch-before-create"), Some("batch-after-create")],
        Workspace::on_postgres,
    );
}

#[test]
fn batch_runs_killed_anywhere_never_pay_twice_or_create_a_batch_twice() {
    let points = [
        Some("batch-before-create"),
        Some("batch-after-create"),
        Some("batch-ingest-item:1"),
        Some("batch-ingest-item:45"),
        Some("after-asset-rename:30"),
        Some("before-job-update:60"),
    ];
    let mut exercised = 0;
    for point in points {
        let emu = Emu::start(Faults {
            batch: BatchFaults {
                polls_until_done: 2,
                ..BatchFaults::default()
            },
            ..Faults::default()
        });
        let ws = Workspace::new();
        crash(&ws, &emu, "batch", point);
        exercised += 1;
        finish(&ws, &emu, "batch");
        assert_consistent(&ws);
        let stats = emu.stats();
        assert_eq!(stats.billed_images, paid_jobs(), "{point:?}: {stats:?}");
        assert_eq!(duplicates(&emu), 0, "{point:?}");
        assert!(
            stats.batch_display_names.values().all(|n| *n == 1),
            "{point:?}: a batch was created twice: {stats:?}"
        );
    }
    // And at random moments, several times over one campaign.
    let emu = Emu::start(Faults {
        batch: BatchFaults {
            polls_until_done: 3,
            ..BatchFaults::default()
        },
        ..Faults::default()
    });
    let ws = Workspace::new();
    ws.append_toml("\n[batch]\nmax_requests = 25\n");
    let mut rng = fastrand::Rng::with_seed(0xBA7C4);
    let mut kills = 0;
    for _ in 0..8 {
        if kill_after(spawn(&ws, &emu, "batch", None), rng.u64(30..400)) {
            kills += 1;
        }
    }
    finish(&ws, &emu, "batch");
    assert_consistent(&ws);
    let stats = emu.stats();
    eprintln!(
        "batch: {exercised} crash points + {kills} random kills, {} batches, {} duplicates",
        stats.batches_created,
        duplicates(&emu)
    );
    assert_eq!(stats.billed_images, paid_jobs(), "{stats:?}");
    assert!(
        stats.batch_display_names.values().all(|n| *n == 1),
        "{stats:?}"
    );
}

#[test]
fn two_runners_on_the_same_state_never_send_the_same_job_or_batch() {
    two_runners(Workspace::new);
}

#[test]
fn two_runners_on_the_same_postgres_state_never_send_the_same_job_or_batch() {
    two_runners(Workspace::on_postgres);
}

fn two_runners(workspace: fn() -> Workspace) {
    for mode in ["realtime", "batch"] {
        let emu = Emu::start(Faults {
            latency_ms: 20,
            batch: BatchFaults {
                polls_until_done: 2,
                ..BatchFaults::default()
            },
            ..Faults::default()
        });
        let ws = workspace();
        ws.append_toml("\n[rate_limit]\nrpm = 600000\n\n[batch]\nmax_requests = 20\n");
        let start = |_: ()| {
            command(&ws, &emu, mode, None)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let a = start(());
        let b = start(());
        let (a, b) = (
            wait_bounded(a, "first runner"),
            wait_bounded(b, "second runner"),
        );
        for (name, o) in [("first", &a), ("second", &b)] {
            assert_eq!(
                o.status.code(),
                Some(0),
                "{mode}: {name} runner failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert_consistent(&ws);
        let stats = emu.stats();
        assert_eq!(stats.billed_images, paid_jobs(), "{mode}: {stats:?}");
        assert_eq!(duplicates(&emu), 0, "{mode}: a job was sent twice");
        assert!(
            stats.batch_display_names.values().all(|n| *n == 1),
            "{mode}: {stats:?}"
        );
    }
}

#[test]
fn ctrl_c_stops_dispatch_lets_calls_in_flight_finish_and_writes_the_manifest() {
    let emu = Emu::start(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let ws = Workspace::new();
    ws.append_toml("\n[rate_limit]\nrpm = 600000\n");
    let mut child = command(&ws, &emu, "realtime", None)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the run is well under way: a few calls answered and
    // more in flight (concurrency 4, 300 ms each), far from the end.
    let seen = 2 * CONCURRENCY as u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while emu.stats().generate_calls < seen {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the emulator saw fewer than {seen} requests in 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = wait_bounded(child, "interrupted run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("interrupt"), "{err}");
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let done = m["totals"]["done"].as_u64().unwrap();
    assert!(done > 0 && done < example().assets(), "done {done}");
    // Calls in flight were allowed to finish and were recorded: every billed
    // image is in the manifest, and nothing is left claimed.
    assert_manifest_matches_files(&ws.out(), &m);
    let done_jobs = ws.sql_rows("SELECT COUNT(*) FROM jobs WHERE state = 'done'");
    assert_eq!(emu.stats().billed_images.to_string(), done_jobs[0][0]);
    let held = ws.sql_rows("SELECT COUNT(*) FROM jobs WHERE state = 'in_flight'");
    assert_eq!(held[0][0], "0");
    finish(&ws, &emu, "realtime");
    assert_consistent(&ws);
    assert_eq!(duplicates(&emu), 0, "an orderly stop never pays twice");
}
