//! Batch dispatch: chunk pending jobs into remote batches, poll them, stream
//! their results into assets, and fall back to realtime for small
//! remainders and at a deadline.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::{
    Ctx, JobInfo, JobOutcome, RunOptions, StopReason, dispatch_realtime, leftover_stop,
    live_models, settle, vendor_failed, vendor_models,
};
use crate::campaign::{BatchFailurePolicy, Campaign, RunMode};
use crate::domain::{
    BatchInputLimits, BatchState, BillingMode, Error, ImageSize, JobKey, JobState, ModelId, Reason,
    Result, Vendor, now_ms,
};
use crate::expand::JobSpec;
use crate::provider::{BatchApi, BatchChunk, BatchItem, ErrorClass, RemoteBatch, RemoteState};
use crate::store::{BatchJob, BatchRow, ImageQa, JobId, Store};

/// Poll cadence: `[batch] poll_initial_s` / `poll_max_s`, unless the run
/// overrides them (rehearsals against the emulator, where batches finish in
/// milliseconds).
fn poll_delays(
    settings: &crate::campaign::BatchSettings,
    over: (Option<Duration>, Option<Duration>),
) -> (Duration, Duration) {
    (
        over.0.unwrap_or(settings.poll_initial),
        over.1.unwrap_or(settings.poll_max),
    )
}

/// An upper bound of the size of one JSONL input line for a spec: the
/// prompt as a JSON string, each reference as base64 with its `data:`
/// prefix (`4 * ceil(bytes / 3)` plus the MIME type), and the JSON around
/// them. (The images an edit carries are attached when the batch is made;
/// [`widest_line`] adds them.)
fn line_bytes(spec: &JobSpec) -> u64 {
    let prompt = serde_json::to_string(&spec.request.prompt)
        .map_or(spec.request.prompt.len() * 6, |s| s.len()) as u64;
    let refs: u64 = spec
        .request
        .references
        .iter()
        .map(|r| crate::domain::data_url_len(&r.mime_type, r.bytes.len() as u64) + 100)
        .sum();
    prompt + refs + 600
}

/// How many requests one batch input file may hold: at most `max_requests`
/// (`[batch] max_requests`), at most the vendor's request limit, and no more
/// lines of `widest` bytes than fit its byte limit, so a chunk is split by
/// bytes as well as by count. Never 0: a single line over the byte limit
/// still goes alone (and the service says why it refuses it).
pub(crate) fn chunk_size(widest: u64, max_requests: usize, limits: BatchInputLimits) -> usize {
    let by_bytes = usize::try_from(limits.max_bytes / widest.max(1)).unwrap_or(usize::MAX);
    max_requests.min(limits.max_requests).min(by_bytes).max(1)
}

/// A vendor's batch input limits, the byte limit lowered to `cap` when the
/// run sets one (rehearsals against an emulator whose limit was lowered).
fn input_limits(vendor: Vendor, cap: Option<u64>) -> BatchInputLimits {
    let mut l = vendor.batch_input_limits();
    if let Some(cap) = cap {
        l.max_bytes = l.max_bytes.min(cap);
    }
    l
}

/// The widest line among the specs of `ids`, counting for each queued
/// edit the images attached to it when the batch is made (`edits`: bytes
/// per job, [`crate::store::Store::edit_image_bytes`]) as data URLs.
fn widest_line(ctx: &Ctx, ids: &HashSet<JobId>, edits: &HashMap<JobId, u64>) -> u64 {
    ids.iter()
        .filter_map(|id| {
            let spec = ctx.specs.get(id)?;
            let attached = edits
                .get(id)
                .map_or(0, |b| crate::domain::data_url_len("image/jpeg", *b) + 100);
            Some(line_bytes(spec) + attached)
        })
        .max()
        .unwrap_or(1)
        .max(1)
}

pub(super) fn key_for(id: JobId, key: &JobKey) -> String {
    format!("{id}|{key}")
}

pub(super) fn id_from_key(key: &str) -> Option<JobId> {
    key.split('|').next()?.parse().ok()
}

/// Dispatch in batch or auto mode.
pub(crate) async fn dispatch(
    ctx: &Arc<Ctx>,
    campaign: &Campaign,
    mode: RunMode,
    opts: &RunOptions,
    concurrency: usize,
    left_running: &mut Vec<String>,
) -> Result<Option<StopReason>> {
    let settings = &campaign.batch;
    // Image batches are sized per model and endpoint ([`chunk_size`]);
    // read batches go to Gemini, sized here by the widest image line.
    let cap = opts.batch_max_input_bytes;
    let batch_size = chunk_size(
        widest_line(
            ctx,
            &ctx.specs.keys().copied().collect(),
            &ctx.store.edit_image_bytes(&ctx.campaign).await?,
        ),
        settings.max_requests,
        input_limits(Vendor::Gemini, cap),
    );
    let realtime_below = settings.auto_realtime_below;
    let token_cap = settings.max_enqueued_tokens;
    let mut failed_to_realtime = false;
    let eligible: HashSet<JobId> = ctx.specs.keys().copied().collect();
    let deadline = opts
        .deadline
        .map(|d| d.as_millisecond() - opts.deadline_margin.as_millis() as i64);

    // 1. Resume: a batch recorded as `submitting` by a runner that has
    // since died may or may not exist remotely. (A live owner is still
    // creating it: leave it alone. Of several runners resuming at once,
    // only the one that adopts the batch looks it up.)
    for b in ctx.store.open_batches(&ctx.campaign).await? {
        if b.state == BatchState::Submitting
            && b.owner_gone
            && let Some(api) = api_for(ctx, &b.model)
            && ctx.store.adopt_batch(b.id, ctx.run).await?
        {
            resume_submitting(ctx, api, &b).await?;
        }
    }
    super::read_batch::resume(ctx).await?;
    let batch_reads = super::read_batch::enabled(ctx);

    let (initial, max) = poll_delays(settings, opts.poll_override);
    loop {
        if ctx.cancel.is_cancelled() {
            return Ok(Some(StopReason::Interrupted));
        }
        let past_deadline = deadline.is_some_and(|d| now_ms() >= d);
        if past_deadline {
            return finish_in_realtime(ctx, concurrency, opts).await;
        }
        // The models still served (a vendor that failed takes no new work
        // and its jobs have moved on along their chains).
        let Some(live) = live_models(ctx) else {
            return leftover_stop(ctx).await;
        };

        // 2. Submit what is pending (auto: a vendor's small remainder goes
        // realtime; jobs of failed batches go realtime when so configured).
        let pending = if opts.ingest_only {
            0
        } else {
            count_pending(ctx, &eligible, &live).await?
        };
        if pending > 0 && failed_to_realtime {
            tracing::info!(
                jobs = pending,
                "finishing the jobs of a failed batch in realtime"
            );
            let stop = dispatch_realtime(ctx, concurrency, opts.drain_timeout, None, true).await?;
            if let Some(stop) = stop.filter(|s| !carries_on(ctx, s)) {
                return Ok(Some(stop));
            }
            failed_to_realtime = false;
            continue;
        }
        let open = live_open_batches(ctx).await?;
        let realtime_vendors = if mode == RunMode::Auto && pending > 0 {
            small_remainders(ctx, &eligible, &open, realtime_below).await?
        } else {
            Vec::new()
        };
        if pending > 0
            && let Some(stop) = submit_pending(
                ctx,
                &eligible,
                (settings.max_requests, cap),
                token_cap,
                &realtime_vendors,
            )
            .await?
        {
            return Ok(Some(stop));
        }
        if !realtime_vendors.is_empty() {
            // The batches just created run remotely meanwhile.
            let names: Vec<&str> = realtime_vendors.iter().map(|v| v.as_str()).collect();
            tracing::info!(vendors = ?names, "auto mode: a small remainder goes realtime");
            let stop = dispatch_realtime(
                ctx,
                concurrency,
                opts.drain_timeout,
                Some(&realtime_vendors),
                true,
            )
            .await?;
            if let Some(stop) = stop.filter(|s| !carries_on(ctx, s)) {
                return Ok(Some(stop));
            }
            continue;
        }

        // Copy QA: images ingested from batches are read back while the
        // other batches run, in read batches (auto mode: a small remainder
        // with no read batch open is read in realtime). A regeneration
        // goes back to pending and is batched.
        let open_reads = super::read_batch::open(ctx).await?;
        if !opts.ingest_only && batch_reads {
            let due = ctx.store.due_read_ids(&ctx.campaign).await?.len();
            let realtime_reads =
                mode == RunMode::Auto && due > 0 && due < realtime_below && open_reads.is_empty();
            if realtime_reads || (due > 0 && failed_to_realtime) {
                let stop = dispatch_realtime(ctx, concurrency, opts.drain_timeout, Some(&[]), true)
                    .await?;
                if let Some(stop) = stop.filter(|s| !carries_on(ctx, s)) {
                    return Ok(Some(stop));
                }
                continue;
            }
            if due > 0
                && let Some(stop) = super::read_batch::submit(ctx, batch_size).await?
            {
                if !carries_on(ctx, &stop) {
                    return Ok(Some(stop));
                }
                vendor_failed(ctx, Vendor::Gemini, stop).await?;
            }
        }
        let open_reads = super::read_batch::open(ctx).await?;

        let open = live_open_batches(ctx).await?;
        if open.is_empty() && open_reads.is_empty() {
            let live = live_models(ctx);
            let left = match &live {
                Some(live) if !opts.ingest_only => count_pending(ctx, &eligible, live).await?,
                _ => 0,
            };
            let reads_left = batch_reads
                && !opts.ingest_only
                && ctx.store.next_read(&ctx.campaign).await?.is_some();
            if left == 0 && !reads_left {
                return leftover_stop(ctx).await;
            }
            // Retryable failures wait for their not_before.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        if opts.no_wait && !opts.ingest_only {
            left_running.extend(open.iter().map(|b| {
                b.remote_name
                    .clone()
                    .unwrap_or_else(|| b.display_name.clone())
            }));
            left_running.extend(open_reads.iter().map(|b| {
                b.remote_name
                    .clone()
                    .unwrap_or_else(|| b.display_name.clone())
            }));
            return Ok(None);
        }

        // 3. Poll every open batch once; ingest those that finished. Batches
        // are polled and ingested side by side: one batch's results are
        // stored while others are still polled or downloading.
        let polls: Vec<Polled> = futures_util::stream::iter(open.iter())
            .map(|b| poll_one(ctx, b))
            .buffered(MAX_BATCHES_AT_ONCE)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        let mut any_finished = false;
        for p in polls {
            any_finished |= p.finished;
            failed_to_realtime |= p.lost && settings.on_failure == BatchFailurePolicy::Realtime;
            if let Some((vendor, stop)) = p.stop {
                if !carries_on(ctx, &stop) {
                    return Ok(Some(stop));
                }
                // Its batches stay recorded: a later run polls them again.
                vendor_failed(ctx, vendor, stop).await?;
            }
        }
        // The read batches, polled alongside.
        let polled = super::read_batch::poll(ctx, &open_reads).await?;
        any_finished |= polled.finished;
        failed_to_realtime |= polled.lost && settings.on_failure == BatchFailurePolicy::Realtime;
        if let Some(stop) = polled.stop {
            if !carries_on(ctx, &stop) {
                return Ok(Some(stop));
            }
            vendor_failed(ctx, Vendor::Gemini, stop).await?;
        }
        if opts.ingest_only {
            left_running.extend(super::read_batch::open(ctx).await?.iter().map(|b| {
                b.remote_name
                    .clone()
                    .unwrap_or_else(|| b.display_name.clone())
            }));
            left_running.extend(
                ctx.store
                    .open_batches(&ctx.campaign)
                    .await?
                    .iter()
                    .map(|b| {
                        b.remote_name
                            .clone()
                            .unwrap_or_else(|| b.display_name.clone())
                    }),
            );
            return Ok(None);
        }
        if !any_finished {
            let polls = open
                .iter()
                .map(|b| b.polls)
                .chain(super::read_batch::least_polls(&open_reads))
                .min()
                .unwrap_or(0);
            let wait = poll_wait(polls, initial, max);
            let wait = match deadline {
                Some(d) => wait.min(Duration::from_millis((d - now_ms()).max(0) as u64)),
                None => wait,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ctx.cancel.cancelled() => {}
            }
        }
    }
}

/// Poll backoff: doubles with every poll of the least-polled open batch
/// (`least_polls`), capped.
/// Batches polled and ingested at once. Each ingest already uses every
/// core; this bounds the result downloads open at a time.
const MAX_BATCHES_AT_ONCE: usize = 4;

/// What polling one batch found.
#[derive(Default)]
struct Polled {
    /// It left the remote queue (succeeded, failed, expired, cancelled).
    finished: bool,
    /// It ended without results: its jobs are pending again.
    lost: bool,
    /// Its vendor refused the run.
    stop: Option<(Vendor, StopReason)>,
}

/// Poll one open batch; ingest it when it succeeded, close it when it
/// ended otherwise.
async fn poll_one(ctx: &Ctx, b: &BatchRow) -> Result<Polled> {
    let mut p = Polled::default();
    let Some(remote) = &b.remote_name else {
        return Ok(p);
    };
    let rb = RemoteBatch {
        name: remote.clone(),
        display_name: b.display_name.clone(),
    };
    let Some(api) = api_for(ctx, &b.model) else {
        return Ok(p);
    };
    ctx.store.batch_polled(b.id).await?;
    let state = match api.poll(&rb).await {
        Ok(s) => s,
        Err(e) if e.class == ErrorClass::RunTerminal => {
            p.stop = Some((b.model.vendor(), StopReason::Provider(e.reason, e.detail)));
            return Ok(p);
        }
        Err(e) => {
            tracing::warn!(batch = %remote, error = %e, "poll failed; will poll again");
            return Ok(p);
        }
    };
    let (closed, what) = match state {
        RemoteState::Running | RemoteState::SucceededNoOutput => return Ok(p),
        RemoteState::Succeeded => {
            p.finished = true;
            p.stop = ingest(ctx, api, b, &rb)
                .await?
                .map(|stop| (b.model.vendor(), stop));
            return Ok(p);
        }
        RemoteState::Failed(msg) => (BatchState::Failed, Some(msg)),
        RemoteState::Expired => (BatchState::Expired, None),
        RemoteState::Cancelled => (BatchState::Cancelled, None),
    };
    p.finished = true;
    p.lost = true;
    let n = ctx
        .store
        .close_batch(b.id, closed, what.as_deref(), false)
        .await?;
    tracing::warn!(batch = %remote, jobs = n, state = ?closed, detail = what.as_deref().unwrap_or(""), "batch ended without results; its jobs return to pending");
    Ok(p)
}

fn poll_wait(least_polls: i64, initial: Duration, max: Duration) -> Duration {
    let polls = least_polls.clamp(0, 16) as u32;
    initial.saturating_mul(2u32.saturating_pow(polls)).min(max)
}

/// Pending jobs this run expanded that ask one of `models` (all when
/// empty). Ids only: this runs on every poll.
async fn count_pending(ctx: &Ctx, eligible: &HashSet<JobId>, models: &[String]) -> Result<usize> {
    let ids = ctx.store.pending_ids(&ctx.campaign, models).await?;
    Ok(ids.iter().filter(|id| eligible.contains(id)).count())
}

/// Open batches of vendors still usable in this run (a failed vendor's
/// batches are left for a later run to poll).
async fn live_open_batches(ctx: &Ctx) -> Result<Vec<BatchRow>> {
    let open = ctx.store.open_batches(&ctx.campaign).await?;
    Ok(open
        .into_iter()
        .filter(|b| ctx.providers.unusable(b.model.vendor()).is_none())
        .collect())
}

/// Auto mode, per vendor: a vendor whose pending jobs are fewer than
/// `below` and that has no batch open finishes them in realtime (a batch
/// would only add its turnaround); the others keep batching.
async fn small_remainders(
    ctx: &Ctx,
    eligible: &HashSet<JobId>,
    open: &[BatchRow],
    below: usize,
) -> Result<Vec<Vendor>> {
    if ctx.providers.local().is_some() {
        // The local renderer: one pool, all models.
        let n = count_pending(ctx, eligible, &[]).await?;
        return Ok(if n > 0 && n < below && open.is_empty() {
            vec![Vendor::Gemini, Vendor::OpenAi]
        } else {
            Vec::new()
        });
    }
    let mut out = Vec::new();
    for v in [Vendor::Gemini, Vendor::OpenAi] {
        if ctx.providers.vendor(v).is_none() || ctx.providers.unusable(v).is_some() {
            continue;
        }
        let models = vendor_models(ctx, v);
        if models.is_empty() || open.iter().any(|b| b.model.vendor() == v) {
            continue;
        }
        let n = count_pending(ctx, eligible, &models).await?;
        if n > 0 && n < below {
            out.push(v);
        }
    }
    Ok(out)
}

/// Whether the run carries on after `stop`: a vendor's failure moves its
/// jobs to their fallbacks; Ctrl-C, the spend cap and anything the local
/// renderer reports end the run.
fn carries_on(ctx: &Ctx, stop: &StopReason) -> bool {
    stop.is_vendor_failure() && ctx.providers.local().is_none()
}

/// Look a `submitting` batch up by display name: if it exists remotely,
/// record its name; if not, its jobs go back to pending.
async fn resume_submitting(ctx: &Ctx, api: &dyn BatchApi, b: &BatchRow) -> Result<()> {
    look_up_submitting(ctx, api, b.id, &b.display_name).await
}

/// [`resume_submitting`] for any batch (images or reads): found remotely,
/// its name is recorded; not found, its jobs are due again (an image
/// batch's assignment is not counted as an attempt); unknowable, the run
/// stops rather than risk paying twice.
pub(super) async fn look_up_submitting(
    ctx: &Ctx,
    api: &dyn BatchApi,
    id: i64,
    display_name: &str,
) -> Result<()> {
    match api.find(display_name).await {
        Ok(Some(remote)) => {
            tracing::info!(batch = %remote.name, display_name = %display_name, "found a batch created before a crash; not creating it again");
            ctx.store.batch_submitted(id, &remote.name).await
        }
        Ok(None) => {
            let n = ctx
                .store
                .close_batch(
                    id,
                    BatchState::Abandoned,
                    Some("not found remotely on resume"),
                    true,
                )
                .await?;
            tracing::info!(display_name = %display_name, jobs = n, "batch was never created remotely; its jobs are due again");
            Ok(())
        }
        Err(e) => Err(Error::run_terminal(
            e.reason,
            format!(
                "cannot tell whether batch {display_name} exists remotely ({e}); not resubmitting to avoid paying twice — rerun later"
            ),
        )),
    }
}

/// Chunk pending jobs into batches and create them remotely. `sizing` is
/// `[batch] max_requests` and the run's byte cap, if any.
async fn submit_pending(
    ctx: &Ctx,
    eligible: &HashSet<JobId>,
    sizing: (usize, Option<u64>),
    token_cap: Option<u64>,
    realtime: &[Vendor],
) -> Result<Option<StopReason>> {
    // Every model a job may ask, primaries and fallbacks, in plan order.
    let mut models: Vec<ModelId> = Vec::new();
    for spec in ctx.specs.values() {
        for (m, _) in &spec.chain {
            if !models.contains(m) {
                models.push(m.clone());
            }
        }
    }
    models.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    for model in models {
        if ctx.providers.for_model(&model).is_none()
            || (ctx.providers.local().is_none() && realtime.contains(&model.vendor()))
            || (ctx.providers.local().is_some() && !realtime.is_empty())
        {
            continue;
        }
        let Some(api) = api_for(ctx, &model) else {
            continue;
        };
        // A GPT Image batch file targets one endpoint: jobs sent as edits
        // (reference images, a `text = "edit"` locale) and generations go
        // in separate batches. (Revisions are kept apart by the store's
        // `assign_batch`, which never mixes a revision with a first image.)
        let edit_bytes = ctx.store.edit_image_bytes(&ctx.campaign).await?;
        let groups: Vec<HashSet<JobId>> = if model.vendor() == Vendor::OpenAi {
            let (edits, gens): (HashSet<JobId>, HashSet<JobId>) = eligible.iter().partition(|id| {
                ctx.specs
                    .get(id)
                    .is_some_and(|s| !s.request.references.is_empty() || s.copy_edit.is_some())
            });
            vec![gens, edits]
        } else {
            vec![eligible.clone()]
        };
        for group in groups.iter().filter(|g| !g.is_empty()) {
            let batch_size = chunk_size(
                widest_line(ctx, group, &edit_bytes),
                sizing.0,
                input_limits(model.vendor(), sizing.1),
            );
            if let Some(stop) = submit_model(ctx, api, &model, group, batch_size, token_cap).await?
            {
                if !carries_on(ctx, &stop) {
                    return Ok(Some(stop));
                }
                // The vendor failed: its jobs move on, and the models after
                // this one (or the next pass) batch them.
                vendor_failed(ctx, model.vendor(), stop).await?;
                break;
            }
        }
    }
    Ok(None)
}

/// The batch capability of the vendor serving `model` (also when the vendor
/// is down for new work: its open batches are still polled and ingested).
fn api_for<'a>(ctx: &'a Ctx, model: &ModelId) -> Option<&'a dyn BatchApi> {
    match ctx.providers.local() {
        Some(l) => l.batch(),
        None => ctx.providers.vendor(model.vendor())?.batch(),
    }
}

/// Chunk the pending jobs of one model (among `eligible`) into batches and
/// create them remotely.
async fn submit_model(
    ctx: &Ctx,
    api: &dyn BatchApi,
    model: &ModelId,
    eligible: &HashSet<JobId>,
    batch_size: usize,
    token_cap: Option<u64>,
) -> Result<Option<StopReason>> {
    let cap = token_cap.unwrap_or_else(|| model.family().default_batch_enqueued_tokens());
    loop {
        if ctx.cancel.is_cancelled() {
            return Ok(Some(StopReason::Interrupted));
        }
        // Respect the enqueued-token cap across open batches.
        let open = ctx.store.open_batches(&ctx.campaign).await?;
        let per_request = model.family().image_tokens(ImageSize::K4) + 300;
        let enqueued: u64 = open
            .iter()
            .map(|b| b.request_count as u64 * per_request)
            .sum();
        let room = (cap.saturating_sub(enqueued) / per_request) as usize;
        let limit = batch_size.min(room.max(if open.is_empty() { 1 } else { 0 }));
        if limit == 0 {
            return Ok(None);
        }
        let Some((row, jobs)) = ctx
            .store
            .assign_batch(ctx.run, &ctx.campaign, model, eligible, limit)
            .await?
        else {
            return Ok(None);
        };
        let mut items = Vec::with_capacity(jobs.len());
        for j in &jobs {
            // The retry budget is a ratio of first attempts: batch items count too.
            if j.attempts == 1 {
                ctx.budget(model).first_attempt();
            }
            let spec = ctx
                .specs
                .get(&j.id)
                .ok_or_else(|| Error::Internal(format!("job {} has no expanded request", j.id)))?;
            // A job moved to a fallback model asks that model (for the
            // copy-free art, once its copy QA fell back to overlay).
            let mut request = spec.request_to_send(&j.model, j.overlay);
            // An edit carries the image it revises, kept beside the asset
            // when the edit was queued.
            if let super::revise::Prepared::Broken(e) =
                super::revise::prepare(&ctx.store, &ctx.campaign_out, j.id, &mut request).await?
            {
                return Err(Error::Internal(format!(
                    "job {}: {}; the batch was not created, rerun after restoring the image",
                    j.key, e.detail
                )));
            }
            items.push(BatchItem {
                key: key_for(j.id, &j.key),
                request,
            });
        }
        let chunk = BatchChunk {
            display_name: row.display_name.clone(),
            model: model.clone(),
            items,
        };
        crate::run::crash_point("batch-before-create");
        match api.submit(&chunk).await {
            Ok(remote) => {
                crate::run::crash_point("batch-after-create");
                ctx.store.batch_submitted(row.id, &remote.name).await?;
                tracing::info!(batch = %remote.name, display_name = %row.display_name, requests = jobs.len(), "batch created");
            }
            Err(e) => match e.class {
                ErrorClass::RunTerminal => {
                    ctx.store
                        .close_batch(row.id, BatchState::Abandoned, Some(&e.detail), true)
                        .await?;
                    return Ok(Some(StopReason::Provider(e.reason, e.detail)));
                }
                ErrorClass::JobTerminal => {
                    // The service refused the batch as a whole: not one item's fault.
                    ctx.store
                        .close_batch(row.id, BatchState::Abandoned, Some(&e.detail), true)
                        .await?;
                    return Ok(Some(StopReason::Provider(e.reason, e.detail)));
                }
                ErrorClass::Retryable { retry_after } => {
                    // The create may or may not have happened: ask before retrying.
                    let wait = ctx.policy.delay(1, retry_after, fastrand::f64());
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "batch create failed; checking whether it exists before trying again");
                    tokio::time::sleep(wait).await;
                    if !ctx.budget(model).try_retry() {
                        let (f, r) = ctx.budget(model).counts();
                        resume_submitting(ctx, api, &row).await?;
                        return Ok(Some(StopReason::RetryBudget(f, r)));
                    }
                    resume_submitting(ctx, api, &row).await?;
                }
            },
        }
    }
}

/// Stream a finished batch's results into assets and job states.
async fn ingest(
    ctx: &Ctx,
    api: &dyn BatchApi,
    b: &BatchRow,
    rb: &RemoteBatch,
) -> Result<Option<StopReason>> {
    let jobs = ctx.store.batch_jobs(b.id).await?;
    let by_id: std::collections::HashMap<JobId, &BatchJob> =
        jobs.iter().map(|j| (j.id, j)).collect();
    let started = now_ms();
    let mut stream = match api.results(rb).await {
        Ok(s) => s,
        Err(e) if e.class == ErrorClass::RunTerminal => {
            return Ok(Some(StopReason::Provider(e.reason, e.detail)));
        }
        Err(e) => {
            tracing::warn!(batch = %rb.name, error = %e, "results not downloadable yet; will try again");
            return Ok(None);
        }
    };
    // Results are stored several at a time (decode, check, hash, fsync and
    // record run on every core), at most `parallel` in flight, so memory
    // stays bounded whatever the size of the results file. A kill leaves
    // the ones in flight unrecorded: still `batch_submitted`, they are
    // ingested again from the same results, never bought again.
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let mut stop = None;
    let mut seen = 0usize;
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    let mut more = true;
    let mut broke = false;
    loop {
        while more && in_flight.len() < parallel {
            let outcome = match stream.next().await {
                Some(Ok(o)) => o,
                Some(Err(e)) => {
                    // A truncated download: what is ingested is kept; the
                    // rest is read again on the next poll (the download is
                    // idempotent).
                    tracing::warn!(batch = %rb.name, error = %e, ingested = seen, "results download broke off; will resume");
                    more = false;
                    broke = true;
                    break;
                }
                None => {
                    more = false;
                    break;
                }
            };
            let Some(job) = id_from_key(&outcome.key).and_then(|id| by_id.get(&id)) else {
                tracing::warn!(batch = %rb.name, key = %outcome.key, "result for an unknown key ignored");
                continue;
            };
            if job.state != JobState::BatchSubmitted {
                continue; // already ingested (a resumed download), or superseded
            }
            seen += 1;
            in_flight.push(ingest_one(ctx, b, job, outcome.result, started));
        }
        match in_flight.next().await {
            Some(res) => {
                if let JobOutcome::Stop(s) = res? {
                    stop.get_or_insert(s);
                }
            }
            None if !more => break,
            None => {}
        }
    }
    drop(stream);
    if broke {
        // The batch stays open: the next poll downloads the rest.
        return Ok(stop);
    }
    let missing = ctx
        .store
        .close_batch(b.id, BatchState::Ingested, None, false)
        .await?;
    if missing > 0 {
        tracing::warn!(batch = %rb.name, jobs = missing, "results had no line for some jobs; they return to pending");
    }
    Ok(stop)
}

/// Store one batch result and settle its job (one of several in flight).
async fn ingest_one(
    ctx: &Ctx,
    b: &BatchRow,
    job: &BatchJob,
    result: std::result::Result<crate::provider::Generated, crate::provider::ProviderError>,
    started: i64,
) -> Result<JobOutcome> {
    let provider = ctx
        .providers
        .vendor(b.model.vendor())
        .map_or(ctx.provider.kind(), |p| p.kind());
    let spec = ctx.specs.get(&job.id);
    let info = JobInfo {
        key: &job.key,
        model: &job.model,
        size: job.image_size,
        provider,
        qa: spec.map_or(ImageQa::Off, |s| {
            super::qa::image_qa(s, provider, job.overlay)
        }),
        overlay: spec.and_then(|s| super::qa::overlay_art(s, &job.model, job.overlay)),
        // The image an edit replaces was kept when the edit was queued.
        replaced: ctx
            .store
            .pending_edit(job.id)
            .await?
            .filter(|e| !e.of_base)
            .map(|e| crate::assets::revision_rel_path(&e.path, e.revision)),
    };
    // A GPT Image batch edit asks one of the JSON form's standard sizes:
    // its image is cropped to the job's exact frame before it is stored.
    let result = match (result, spec) {
        (Ok(g), Some(s)) if b.model.vendor() == Vendor::OpenAi => {
            let frame = crate::domain::gpt_size(s.request.aspect_ratio.as_str(), job.image_size);
            match frame {
                Some(frame) => tokio::task::spawn_blocking(move || {
                    crate::provider::openai::fit_to_frame(g, frame)
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))?,
                None => Ok(g),
            }
        }
        (r, _) => r,
    };
    crate::run::crash_point("batch-ingest-item");
    settle(
        ctx,
        job.id,
        job.attempts,
        &info,
        result,
        BillingMode::Batch,
        started,
    )
    .await
}

/// The deadline has come: cancel open batches and finish their jobs in realtime.
async fn finish_in_realtime(
    ctx: &Arc<Ctx>,
    concurrency: usize,
    opts: &RunOptions,
) -> Result<Option<StopReason>> {
    for b in ctx.store.open_batches(&ctx.campaign).await? {
        let Some(api) = api_for(ctx, &b.model) else {
            continue;
        };
        match &b.remote_name {
            Some(name) => {
                let rb = RemoteBatch {
                    name: name.clone(),
                    display_name: b.display_name.clone(),
                };
                if let Err(e) = api.cancel(&rb).await {
                    tracing::warn!(batch = %name, error = %e, "cancel failed");
                }
                // Whatever finished before the cancel is still worth taking.
                if let Ok(RemoteState::Succeeded) = api.poll(&rb).await {
                    ingest(ctx, api, &b, &rb).await?;
                    continue;
                }
                ctx.store
                    .close_batch(b.id, BatchState::Cancelled, Some("deadline"), false)
                    .await?;
            }
            None => resume_submitting(ctx, api, &b).await?,
        }
    }
    super::read_batch::cancel_open(ctx, "deadline").await?;
    tracing::info!("deadline reached: finishing the remaining jobs in realtime");
    dispatch_realtime(ctx, concurrency, opts.drain_timeout, None, true).await
}

/// Cancel every open batch of a campaign (`adloc cancel`) and return their
/// jobs to pending. Returns the batches cancelled.
pub(crate) async fn cancel_all(
    store: &Store,
    providers: &super::Providers,
    campaign: &str,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    // Read batches (copy QA) are Gemini's; their reads are due again.
    let reads = store.open_read_batches(campaign).await?;
    if !reads.is_empty() {
        let Some(api) = providers.vendor(Vendor::Gemini).and_then(|p| p.batch()) else {
            return Err(Error::run_terminal(
                Reason::Unauthenticated,
                "copy QA read batches belong to gemini, which has no API key in this environment"
                    .to_string(),
            ));
        };
        for b in reads {
            let remote = match &b.remote_name {
                Some(name) => Some(RemoteBatch {
                    name: name.clone(),
                    display_name: b.display_name.clone(),
                }),
                None => api.find(&b.display_name).await.map_err(|e| {
                    Error::run_terminal(e.reason, format!("look up {}: {e}", b.display_name))
                })?,
            };
            match remote {
                Some(rb) => {
                    api.cancel(&rb).await.map_err(|e| {
                        Error::run_terminal(e.reason, format!("cancel {}: {e}", rb.name))
                    })?;
                    store
                        .close_batch(b.id, BatchState::Cancelled, Some("adloc cancel"), false)
                        .await?;
                    names.push(rb.name);
                }
                None => {
                    store
                        .close_batch(b.id, BatchState::Abandoned, Some("adloc cancel"), true)
                        .await?;
                }
            }
        }
    }
    for b in store.open_batches(campaign).await? {
        let Some(api) = providers.vendor(b.model.vendor()).and_then(|p| p.batch()) else {
            return Err(Error::run_terminal(
                Reason::Unauthenticated,
                format!(
                    "batch {} belongs to {}, which has no API key in this environment",
                    b.display_name,
                    b.model.vendor().as_str()
                ),
            ));
        };
        match &b.remote_name {
            Some(name) => {
                let rb = RemoteBatch {
                    name: name.clone(),
                    display_name: b.display_name.clone(),
                };
                api.cancel(&rb)
                    .await
                    .map_err(|e| Error::run_terminal(e.reason, format!("cancel {name}: {e}")))?;
                store
                    .close_batch(b.id, BatchState::Cancelled, Some("adloc cancel"), false)
                    .await?;
                names.push(name.clone());
            }
            None => match api.find(&b.display_name).await {
                Ok(Some(rb)) => {
                    api.cancel(&rb).await.map_err(|e| {
                        Error::run_terminal(e.reason, format!("cancel {}: {e}", rb.name))
                    })?;
                    store
                        .close_batch(b.id, BatchState::Cancelled, Some("adloc cancel"), false)
                        .await?;
                    names.push(rb.name);
                }
                Ok(None) => {
                    store
                        .close_batch(b.id, BatchState::Abandoned, Some("adloc cancel"), true)
                        .await?;
                }
                Err(e) => {
                    return Err(Error::run_terminal(
                        e.reason,
                        format!("look up {}: {e}", b.display_name),
                    ));
                }
            },
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_split_by_bytes_as_well_as_by_count() {
        let small = BatchInputLimits {
            max_requests: 5,
            max_bytes: 1_000,
        };
        // Count binds: 5 lines of 10 bytes.
        assert_eq!(chunk_size(10, 200, small), 5);
        // The campaign's max_requests binds.
        assert_eq!(chunk_size(10, 3, small), 3);
        // Bytes bind: 1,000 / 300 = 3 lines.
        assert_eq!(chunk_size(300, 200, small), 3);
        assert!(3 * 300 <= small.max_bytes && 4 * 300 > small.max_bytes);
        // A line over the limit still goes alone, never 0.
        assert_eq!(chunk_size(5_000, 200, small), 1);
        // OpenAI's own limits: 50,000 requests, 200 MB.
        let openai = Vendor::OpenAi.batch_input_limits();
        assert_eq!(chunk_size(100, 1_000_000, openai), 50_000);
        assert_eq!(chunk_size(1_000_000, 1_000_000, openai), 200);
        // A run's cap only lowers the byte limit.
        assert_eq!(input_limits(Vendor::OpenAi, Some(1_000)).max_bytes, 1_000);
        assert_eq!(
            input_limits(Vendor::OpenAi, Some(u64::MAX)).max_bytes,
            200_000_000
        );
    }
}
