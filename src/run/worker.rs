//! Past one process: `adloc enqueue` validates, plans and queues a campaign
//! (with its files) without dispatching; `adloc worker` serves the queued
//! work of every campaign in the store until told to stop; `adloc
//! manifest` rebuilds a campaign's manifest from the store alone.
//!
//! A worker's pass over a campaign is an ordinary [`run`] of the campaign
//! as it was enqueued (materialized from the store), so every rule of a
//! run holds for each worker: atomic claims, leases renewed by heartbeat,
//! batches recorded before they are created. Of the passes over a
//! campaign that end together, the last to end writes the manifest and
//! the review page (`Store::end_work`); if it dies first, an idle worker
//! sees the manifest out of date with nobody left to write it, and makes
//! a pass that writes it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{
    RunOptions, RunSummary, billing, build_manifest, campaign_out, check_budget, deliver,
    load_and_expand, run,
};
use crate::campaign::{Campaign, RunMode, Sources};
use crate::domain::{Error, ExitCode, Result, RunOutcome};
use crate::store::{Publication, StateLocation, Store, SyncReport};

/// What `adloc enqueue` queued.
#[derive(Debug, Clone)]
pub struct Enqueued {
    /// Campaign name.
    pub campaign: String,
    /// What the sync found.
    pub planned: SyncReport,
    /// Estimated USD of what is now queued, at the mode's price.
    pub estimate_usd: f64,
    /// The mode workers will use.
    pub mode: RunMode,
}

/// Validate, plan and queue a campaign for workers: every input error
/// surfaces before anything is written, the budget is checked as `adloc
/// run` checks it, and nothing is sent to any provider.
pub async fn enqueue(opts: &RunOptions) -> Result<Enqueued> {
    let (campaign, specs) = load_and_expand(&opts.campaign_dir)?;
    // A worker loads the campaign from these files: proven to be the
    // very bytes this load read, so it expands the same jobs (no second
    // expansion needed to know it).
    let sources = Sources::of(&campaign)?;
    sources.check_holds(&campaign)?;
    let mode = opts.mode.unwrap_or(campaign.mode);
    let store = Store::open(&opts.state).await?;
    let planned = store.preview(&campaign.name, &specs).await?;
    let edits = store
        .planned_edits(&campaign.name, &specs, &planned.generate)
        .await?;
    check_budget(
        &campaign,
        &specs,
        &planned,
        &edits,
        opts.provider,
        billing(mode),
        opts,
    )?;
    let estimate_usd = super::estimate(&campaign, &specs, &planned.generate, &edits, billing(mode));
    let (planned, _) = store.sync(&campaign.name, &specs).await?;
    store
        .save_sources(
            &campaign.name,
            &sources.digest(),
            opts.mode.map(RunMode::as_str),
            sources.files(),
        )
        .await?;
    store.close().await;
    Ok(Enqueued {
        campaign: campaign.name,
        planned: planned.report,
        estimate_usd,
        mode,
    })
}

/// Options of `adloc worker`.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Everything a pass needs but the campaign folder and mode, which come
    /// from the store.
    pub run: RunOptions,
    /// Serve only these campaigns (empty: every campaign in the store).
    pub campaigns: Vec<String>,
    /// Stop when no served campaign has work left (instead of waiting for
    /// more to be enqueued).
    pub until_idle: bool,
    /// How often an idle worker looks for new work.
    pub poll: Duration,
    /// Where campaigns are materialized from the store.
    pub cache_dir: PathBuf,
}

/// How a worker ended.
#[derive(Debug, Clone)]
pub struct WorkerSummary {
    /// Passes made, per campaign.
    pub passes: BTreeMap<String, usize>,
    /// The last pass's summary, per campaign.
    pub last: BTreeMap<String, RunSummary>,
    /// 0 when every served campaign's last pass ended well, else the
    /// worst of their exit codes.
    pub exit: ExitCode,
}

/// How often a worker waiting for another runner to write a campaign's
/// manifest looks again (one query), at most.
const AWAIT_POLL: Duration = Duration::from_millis(200);

/// A campaign whose pass stopped (budget, quota, a vendor down) rests this
/// long before the worker tries it again, instead of spinning on it.
const REST_AFTER_STOP: Duration = Duration::from_secs(60);

/// Serve queued work until `cancel` (SIGTERM, Ctrl-C: passes in progress
/// drain like an interrupted run) or, with `until_idle`, until no served
/// campaign has work a pass could do.
pub async fn work(opts: WorkerOptions, cancel: CancellationToken) -> Result<WorkerSummary> {
    let store = Store::open(&opts.run.state).await?;
    let mut passes: BTreeMap<String, usize> = BTreeMap::new();
    let mut last: BTreeMap<String, RunSummary> = BTreeMap::new();
    let mut resting: HashMap<String, Instant> = HashMap::new();
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let mut worked = false;
        // A campaign whose manifest another runner is about to write: not
        // idle yet (it may die before writing it, and then this one does).
        let mut awaiting = false;
        for queued in store.enqueued_campaigns().await? {
            let name = queued.campaign.clone();
            if cancel.is_cancelled() {
                break;
            }
            if !opts.campaigns.is_empty() && !opts.campaigns.contains(&name) {
                continue;
            }
            if resting
                .get(&name)
                .is_some_and(|until| Instant::now() < *until)
            {
                continue;
            }
            if !store.has_open_work(&name).await? {
                // Nothing to make, but the runner that ended the last pass
                // may have died before writing the manifest: then a pass
                // (which finds nothing to claim) writes it.
                match store.publication(&name, opts.run.lease).await? {
                    Publication::Current => continue,
                    Publication::Awaited => {
                        awaiting = true;
                        continue;
                    }
                    Publication::Due => {
                        tracing::info!(campaign = %name, "manifest out of date and nobody left to write it: writing it");
                    }
                }
            }
            worked = true;
            let dir = materialize(&store, &name, &opts.cache_dir).await?;
            let mut pass = opts.run.clone();
            pass.campaign_dir = dir;
            pass.mode = queued
                .mode
                .as_deref()
                .map(str::parse::<RunMode>)
                .transpose()
                .map_err(|e| Error::Internal(format!("stored mode of `{name}`: {e}")))?;
            tracing::info!(campaign = %name, "worker pass");
            let summary = match run(pass, cancel.child_token()).await {
                Ok(s) => s,
                // One campaign's bad state must not stop the others.
                Err(e) if !matches!(e, Error::Db { .. } | Error::Migrate(_)) => {
                    tracing::error!(campaign = %name, error = %e, "pass failed; resting the campaign");
                    resting.insert(name, Instant::now() + REST_AFTER_STOP);
                    continue;
                }
                Err(e) => return Err(e),
            };
            *passes.entry(name.clone()).or_default() += 1;
            if summary.stopped.is_some() {
                resting.insert(name.clone(), Instant::now() + REST_AFTER_STOP);
            }
            last.insert(name, summary);
        }
        if !worked {
            if opts.until_idle && !awaiting {
                break;
            }
            // A manifest about to be written is looked at again soon: the
            // worker's wait for it is all that keeps it from being idle.
            let wait = if awaiting {
                opts.poll.min(AWAIT_POLL)
            } else {
                opts.poll
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => {}
            }
        }
    }
    store.close().await;
    let exit = last
        .values()
        .map(|s| s.exit)
        .max_by_key(|e| e.code())
        .unwrap_or(ExitCode::Success);
    Ok(WorkerSummary { passes, last, exit })
}

/// The campaign `name` as enqueued, written under `cache_dir`.
async fn materialize(store: &Store, name: &str, cache_dir: &Path) -> Result<PathBuf> {
    let (_, files) = store.sources(name).await?.ok_or_else(|| {
        Error::Usage(format!(
            "campaign `{name}` has no stored files in {} (enqueue or run it with this --state)",
            store.location()
        ))
    })?;
    Sources::from_files(files)?.materialize(cache_dir)
}

/// What `adloc manifest` wrote.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// The manifest on disk (the staging tree for a bucket).
    pub manifest_path: PathBuf,
    /// Where readers find it.
    pub manifest_location: String,
    /// Counts.
    pub totals: crate::manifest::Totals,
}

/// Rebuild `campaign`'s manifest, approved manifest and review page from
/// the store alone (the campaign as enqueued, its jobs and decisions), and
/// publish them to the output (a bucket gets every object the manifest
/// lists, the manifest last).
pub async fn rebuild_manifest(
    opts: &RunOptions,
    campaign: &str,
    cache_dir: &Path,
) -> Result<Rebuilt> {
    let store = Store::open_existing(&opts.state).await?.ok_or_else(|| {
        Error::Usage(format!(
            "no state at {} (run or enqueue a campaign first)",
            opts.state
        ))
    })?;
    let dir = materialize(&store, campaign, cache_dir).await?;
    let loaded = Campaign::load(&dir)?;
    let out = campaign_out(opts, &loaded.name);
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let run_id = store.start_run(&loaded.name, "none", "manifest").await?;
    let (m, manifest_path) = build_manifest(&store, run_id, &loaded, &out).await?;
    let delivered = deliver(&store, opts, &loaded.name, &out, &manifest_path, &m).await;
    store
        .finish_run(
            run_id,
            if delivered.is_ok() {
                RunOutcome::Finished
            } else {
                RunOutcome::Stopped
            },
        )
        .await?;
    store.close().await;
    let (manifest_location, _) = delivered?;
    Ok(Rebuilt {
        manifest_path,
        manifest_location,
        totals: m.totals,
    })
}

/// Where workers materialize campaigns by default: beside the state file
/// (for a database, in `.adloc/` of the working directory).
pub fn default_cache_dir(state: &StateLocation) -> PathBuf {
    state.local_dir().join("campaigns")
}
