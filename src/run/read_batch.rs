//! Copy QA in batch mode: the reads of ingested images go to Gemini's Batch
//! API too, at half price. A read batch keeps the image batches' rules
//! against paying twice: it is recorded (`submitting`, its jobs
//! `read_batch_submitting`) before the remote create, looked up by its
//! deterministic display name after a crash, and its results are applied
//! one line at a time, so a rerun after `kill -9` ingests what is left of
//! the same batch instead of reading anything again.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::StreamExt;

use super::qa::{apply_read, prepare_read};
use super::{Ctx, JobOutcome, StopReason, crash_point};
use crate::domain::{
    BatchState, BillingMode, Error, JobState, ReaderModel, Result, Vendor, now_ms,
};
use crate::provider::{
    BatchApi, ErrorClass, ReadBatchApi, ReadChunk, ReadItem, RemoteBatch, RemoteState,
};
use crate::store::{ClaimedRead, JobId, ReadBatchRow, ReadSettlement};

/// Reads per batch at most: each line carries an image (about 100 kB as
/// JPEG), and the lines are built in memory before the JSONL is written.
const MAX_READS_PER_BATCH: usize = 1000;

/// Gemini's batch capabilities for reads, when it is usable in this run.
fn apis(ctx: &Ctx) -> Option<(&dyn BatchApi, &dyn ReadBatchApi)> {
    if ctx.providers.unusable(Vendor::Gemini).is_some() {
        return None;
    }
    let p = ctx.providers.vendor(Vendor::Gemini)?;
    Some((p.batch()?, p.read_batch()?))
}

/// Whether this run batches reads at all: some job has copy QA, and Gemini
/// (the readers' vendor) serves batches here.
pub(super) fn enabled(ctx: &Ctx) -> bool {
    ctx.providers.local().is_none()
        && ctx.specs.values().any(|s| s.qa.is_some())
        && apis(ctx).is_some()
}

/// Read batches still open, when reads are batched in this run.
pub(super) async fn open(ctx: &Ctx) -> Result<Vec<ReadBatchRow>> {
    if apis(ctx).is_none() {
        return Ok(Vec::new());
    }
    ctx.store.open_read_batches(&ctx.campaign).await
}

/// A read batch left `submitting` by a runner that died may or may not
/// exist remotely: look it up by name; if it does not, its reads are due
/// again (nothing was paid for them).
pub(super) async fn resume(ctx: &Ctx) -> Result<()> {
    let Some((api, _)) = apis(ctx) else {
        return Ok(());
    };
    for b in ctx.store.open_read_batches(&ctx.campaign).await? {
        if b.state == BatchState::Submitting
            && b.owner_gone
            && ctx.store.adopt_batch(b.id, ctx.run).await?
        {
            look_up(ctx, api, &b).await?;
        }
    }
    Ok(())
}

async fn look_up(ctx: &Ctx, api: &dyn BatchApi, b: &ReadBatchRow) -> Result<()> {
    super::batch::look_up_submitting(ctx, api, b.id, &b.display_name).await
}

/// Batch every read of this run's jobs that is due, one batch per reader
/// (of at most `batch_size` reads).
pub(super) async fn submit(ctx: &Ctx, batch_size: usize) -> Result<Option<StopReason>> {
    let Some((api, reads)) = apis(ctx) else {
        return Ok(None);
    };
    let mut by_reader: BTreeMap<&'static str, (ReaderModel, HashSet<JobId>)> = BTreeMap::new();
    for id in ctx.store.due_read_ids(&ctx.campaign).await? {
        if let Some(plan) = ctx.specs.get(&id).and_then(|s| s.qa.as_ref()) {
            by_reader
                .entry(plan.reader.as_str())
                .or_insert_with(|| (plan.reader, HashSet::new()))
                .1
                .insert(id);
        }
    }
    let limit = batch_size.clamp(1, MAX_READS_PER_BATCH);
    for (reader, eligible) in by_reader.into_values() {
        loop {
            if ctx.cancel.is_cancelled() {
                return Ok(Some(StopReason::Interrupted));
            }
            let Some((row, jobs)) = ctx
                .store
                .assign_read_batch(ctx.run, &ctx.campaign, reader, &eligible, limit)
                .await?
            else {
                break;
            };
            let mut items = Vec::with_capacity(jobs.len());
            for j in &jobs {
                let plan = ctx
                    .specs
                    .get(&j.id)
                    .and_then(|s| s.qa.as_ref())
                    .ok_or_else(|| Error::Internal(format!("read of job {} has no plan", j.id)))?;
                items.push(ReadItem {
                    key: super::batch::key_for(j.id, &j.key),
                    request: prepare_read(ctx, j, plan).await?,
                });
            }
            let chunk = ReadChunk {
                display_name: row.display_name.clone(),
                reader,
                items,
            };
            crash_point("read-batch-before-create");
            match reads.submit_reads(&chunk).await {
                Ok(remote) => {
                    crash_point("read-batch-after-create");
                    ctx.store.batch_submitted(row.id, &remote.name).await?;
                    tracing::info!(batch = %remote.name, display_name = %row.display_name, reads = jobs.len(), "read batch created");
                }
                Err(e) => match e.class {
                    ErrorClass::RunTerminal | ErrorClass::JobTerminal => {
                        ctx.store
                            .close_batch(row.id, BatchState::Abandoned, Some(&e.detail), true)
                            .await?;
                        return Ok(Some(StopReason::Provider(e.reason, e.detail)));
                    }
                    ErrorClass::Retryable { retry_after } => {
                        // The create may or may not have happened: ask
                        // before trying again.
                        let wait = ctx.policy.delay(1, retry_after, fastrand::f64());
                        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "read batch create failed; checking whether it exists before trying again");
                        tokio::time::sleep(wait).await;
                        let budget = ctx.budget_of(Vendor::Gemini);
                        let ok = budget.try_retry();
                        look_up(ctx, api, &row).await?;
                        if !ok {
                            let (f, r) = budget.counts();
                            return Ok(Some(StopReason::RetryBudget(f, r)));
                        }
                    }
                },
            }
        }
    }
    Ok(None)
}

/// What one round of polling read batches found.
#[derive(Default)]
pub(super) struct Polled {
    /// Some batch ended (ingested, failed, expired or cancelled).
    pub finished: bool,
    /// Some batch ended without results (its reads are due again).
    pub lost: bool,
    /// A stop from the vendor or the retry budget.
    pub stop: Option<StopReason>,
}

/// Poll every open read batch once and ingest those that finished.
pub(super) async fn poll(ctx: &Ctx, open: &[ReadBatchRow]) -> Result<Polled> {
    let mut out = Polled::default();
    let Some((api, reads)) = apis(ctx) else {
        return Ok(out);
    };
    for b in open {
        let Some(remote) = &b.remote_name else {
            continue;
        };
        let rb = RemoteBatch {
            name: remote.clone(),
            display_name: b.display_name.clone(),
        };
        ctx.store.batch_polled(b.id).await?;
        let state = match api.poll(&rb).await {
            Ok(s) => s,
            Err(e) if e.class == ErrorClass::RunTerminal => {
                out.stop
                    .get_or_insert(StopReason::Provider(e.reason, e.detail));
                return Ok(out);
            }
            Err(e) => {
                tracing::warn!(batch = %remote, error = %e, "poll failed; will poll again");
                continue;
            }
        };
        let ended = match state {
            RemoteState::Running | RemoteState::SucceededNoOutput => continue,
            RemoteState::Succeeded => {
                out.finished = true;
                if let Some(s) = ingest(ctx, reads, b, &rb).await? {
                    out.stop.get_or_insert(s);
                }
                continue;
            }
            RemoteState::Failed(msg) => (BatchState::Failed, Some(msg)),
            RemoteState::Expired => (BatchState::Expired, None),
            RemoteState::Cancelled => (BatchState::Cancelled, None),
        };
        out.finished = true;
        out.lost = true;
        let n = ctx
            .store
            .close_batch(b.id, ended.0, ended.1.as_deref(), false)
            .await?;
        tracing::warn!(batch = %remote, reads = n, state = ended.0.as_str(), "read batch ended without results; its reads are due again");
    }
    Ok(out)
}

/// Apply a finished read batch's results, line by line.
async fn ingest(
    ctx: &Ctx,
    reads: &dyn ReadBatchApi,
    b: &ReadBatchRow,
    rb: &RemoteBatch,
) -> Result<Option<StopReason>> {
    let jobs: HashMap<JobId, (ClaimedRead, JobState)> = ctx
        .store
        .read_batch_jobs(b.id)
        .await?
        .into_iter()
        .map(|(j, s)| (j.id, (j, s)))
        .collect();
    let started = now_ms();
    let mut stream = match reads.read_results(rb).await {
        Ok(s) => s,
        Err(e) if e.class == ErrorClass::RunTerminal => {
            return Ok(Some(StopReason::Provider(e.reason, e.detail)));
        }
        Err(e) => {
            tracing::warn!(batch = %rb.name, error = %e, "read results not downloadable yet; will try again");
            return Ok(None);
        }
    };
    let mut stop = None;
    while let Some(item) = stream.next().await {
        let outcome = match item {
            Ok(o) => o,
            Err(e) => {
                // What was applied is kept; the rest is read from the same
                // results on the next poll (the download is idempotent).
                tracing::warn!(batch = %rb.name, error = %e, "read results download broke off; will resume");
                return Ok(stop);
            }
        };
        let Some((job, state)) =
            super::batch::id_from_key(&outcome.key).and_then(|id| jobs.get(&id))
        else {
            tracing::warn!(batch = %rb.name, key = %outcome.key, "read result for an unknown key ignored");
            continue;
        };
        if *state != JobState::ReadBatchSubmitted {
            continue; // applied before a crash, or superseded since
        }
        crash_point("read-batch-ingest-item");
        let Some(plan) = ctx.specs.get(&job.id).and_then(|s| s.qa.as_ref()) else {
            // QA was turned off since the batch was made: done as is.
            ctx.store
                .settle_read(
                    job.id,
                    None,
                    &ReadSettlement::Kept { checks: Vec::new() },
                    None,
                    Some(ctx.run),
                )
                .await?;
            continue;
        };
        let res = apply_read(
            ctx,
            job,
            plan,
            outcome.result,
            BillingMode::Batch,
            (started, now_ms()),
        )
        .await?;
        if let JobOutcome::Stop(s) = res {
            stop.get_or_insert(s);
        }
    }
    drop(stream);
    let missing = ctx
        .store
        .close_batch(b.id, BatchState::Ingested, None, false)
        .await?;
    if missing > 0 {
        tracing::warn!(batch = %rb.name, reads = missing, "read results had no line for some images; their reads are due again");
    }
    Ok(stop)
}

/// Cancel every open read batch (a deadline, or `adloc cancel`): their
/// reads are due again, and whatever finished before the cancel is taken.
/// Returns the remote names cancelled.
pub(super) async fn cancel_open(ctx: &Ctx, why: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let Some((api, reads)) = apis(ctx) else {
        return Ok(names);
    };
    for b in ctx.store.open_read_batches(&ctx.campaign).await? {
        let Some(name) = &b.remote_name else {
            look_up(ctx, api, &b).await?;
            continue;
        };
        let rb = RemoteBatch {
            name: name.clone(),
            display_name: b.display_name.clone(),
        };
        if let Err(e) = api.cancel(&rb).await {
            tracing::warn!(batch = %name, error = %e, "cancel failed");
        }
        if let Ok(RemoteState::Succeeded) = api.poll(&rb).await {
            ingest(ctx, reads, &b, &rb).await?;
            continue;
        }
        ctx.store
            .close_batch(b.id, BatchState::Cancelled, Some(why), false)
            .await?;
        names.push(name.clone());
    }
    Ok(names)
}

/// The least-polled open read batch's poll count (the poll backoff).
pub(super) fn least_polls(open: &[ReadBatchRow]) -> Option<i64> {
    open.iter().map(|b| b.polls).min()
}
