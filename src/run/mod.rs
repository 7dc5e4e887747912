//! Orchestration: load → expand → sync the queue → budget check → dispatch
//! (realtime or batch) → manifest. Stages talk only through the store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::assets;
use crate::campaign::{Campaign, RunMode, Sources};
use crate::domain::{
    BillingMode, Error, ExitCode, FallbackTrigger, ModelId, PriceTable, Reason, Result, RunOutcome,
    Vendor, now_ms,
};
use crate::expand::{self, JobSpec};
use crate::manifest;
use crate::notify;
use crate::provider::Provider;
use crate::provider::pacing::{Pacer, Pacers, Ticket};
use crate::provider::retry::{RetryBudget, RetryPolicy};
use crate::store::{Claimed, JobId, Planned, RunId, Settlement, StateLocation, Store};

pub(crate) mod batch;
pub mod compare;
mod provider;
mod qa;
mod read_batch;
mod review;
mod revise;
mod settle;
mod worker;

pub use provider::{GeminiEnv, OpenAiEnv, ProviderChoice, ProviderEnv};
pub(crate) use provider::{Providers, make_providers, trigger_for};
pub use review::{Decided, decide, publish};
pub(crate) use settle::{JobInfo, settle};
pub use worker::{
    Enqueued, Rebuilt, WorkerOptions, WorkerSummary, default_cache_dir, enqueue, rebuild_manifest,
    work,
};

static CRASH_AT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Arm the deterministic crash points for the kill tests (the CLI passes
/// `ADLOC_CRASH_AT`): `name` or `name:N` aborts the process (no cleanup,
/// like `kill -9`) the N-th time (default first) execution passes the named
/// point. Off unless armed.
pub fn arm_crash_point(spec: String) {
    let _ = CRASH_AT.set(spec);
}

pub(crate) fn crash_point(name: &str) {
    static HITS: std::sync::Mutex<Option<HashMap<String, u64>>> = std::sync::Mutex::new(None);
    let Some(spec) = CRASH_AT.get().cloned() else {
        return;
    };
    let (target, nth) = match spec.split_once(':') {
        Some((t, n)) => (t.to_string(), n.parse::<u64>().unwrap_or(1)),
        None => (spec.clone(), 1),
    };
    if target != name {
        return;
    }
    let Ok(mut guard) = HITS.lock() else { return };
    let hits = guard.get_or_insert_with(HashMap::new);
    let n = hits.entry(target).or_insert(0);
    *n += 1;
    if *n == nth {
        eprintln!("crash point {name} reached; aborting");
        std::process::abort();
    }
}

/// Options for one `adloc run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Campaign folder.
    pub campaign_dir: PathBuf,
    /// Provider (the CLI picks gemini when a key is set, else local).
    pub provider: ProviderChoice,
    /// Vendor keys and endpoints from the environment.
    pub env: ProviderEnv,
    /// Batch poll cadence override for rehearsals against the emulator
    /// (`ADLOC_BATCH_POLL_MS`, `ADLOC_BATCH_POLL_MAX_MS`): first and longest.
    pub poll_override: (Option<Duration>, Option<Duration>),
    /// Lower every vendor's batch input file byte limit to this many bytes
    /// (`ADLOC_BATCH_MAX_INPUT_BYTES`, rehearsals against an emulator whose
    /// own limit was lowered); never raises a limit.
    pub batch_max_input_bytes: Option<u64>,
    /// Mode override.
    pub mode: Option<RunMode>,
    /// Output root: a folder, or a bucket (written through a staging tree
    /// beside the state file, then published).
    pub out: assets::OutputTarget,
    /// Object-store settings from the environment (bucket output only).
    pub store_env: assets::StoreEnv,
    /// Where the state is: a SQLite file or a PostgreSQL database.
    pub state: StateLocation,
    /// Realtime calls in flight at most.
    pub concurrency: usize,
    /// Spend cap for this run in USD.
    pub max_spend: Option<f64>,
    /// Batch: submit and return without waiting.
    pub no_wait: bool,
    /// Poll the campaign's open batches once and ingest what has finished;
    /// submit nothing and make no realtime call (`adloc status CAMPAIGN_DIR`).
    pub ingest_only: bool,
    /// Auto mode: finish in realtime once this instant (minus the margin) is reached.
    pub deadline: Option<jiff::Timestamp>,
    /// Safety margin before the deadline.
    pub deadline_margin: Duration,
    /// How long a claim is held without a heartbeat.
    pub lease: Duration,
    /// How long Ctrl-C waits for in-flight calls.
    pub drain_timeout: Duration,
    /// Draw a progress bar (terminal) instead of log lines.
    pub progress_bar: bool,
    /// Write one contact sheet per locale (`<out>/<campaign>/contact-sheets/`).
    pub contact_sheet: bool,
    /// Reads the webhook's secret variable (`[notify] secret_env`); the CLI
    /// passes its environment reader, the default finds nothing.
    pub secret_lookup: notify::SecretLookup,
}

impl RunOptions {
    /// Defaults for a campaign folder.
    pub fn new(campaign_dir: impl Into<PathBuf>) -> Self {
        RunOptions {
            campaign_dir: campaign_dir.into(),
            provider: ProviderChoice::Local,
            env: ProviderEnv::default(),
            poll_override: (None, None),
            batch_max_input_bytes: None,
            mode: None,
            out: assets::OutputTarget::default(),
            store_env: assets::StoreEnv::default(),
            state: StateLocation::default(),
            concurrency: 8,
            max_spend: None,
            no_wait: false,
            ingest_only: false,
            deadline: None,
            deadline_margin: Duration::from_secs(30 * 60),
            lease: Duration::from_secs(120),
            drain_timeout: Duration::from_secs(30),
            progress_bar: false,
            contact_sheet: false,
            secret_lookup: |_| None,
        }
    }
}

/// Why dispatching stopped before every job was finished.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// A run-terminal provider error (auth, model, daily quota, credit).
    Provider(Reason, String),
    /// The retry budget is spent.
    RetryBudget(u64, u64),
    /// The spend cap was reached.
    SpendCap(f64),
    /// Ctrl-C / SIGTERM.
    Interrupted,
}

impl StopReason {
    /// True for a stop that is one vendor's failure (its jobs may move to
    /// another vendor), false for the run's own (Ctrl-C, the spend cap).
    pub fn is_vendor_failure(&self) -> bool {
        !matches!(self, StopReason::Interrupted | StopReason::SpendCap(_))
    }

    /// The reason code, in the shared vocabulary.
    pub fn reason(&self) -> Reason {
        match self {
            StopReason::Provider(r, _) => *r,
            StopReason::RetryBudget(..) => Reason::RetryBudgetExhausted,
            StopReason::SpendCap(_) => Reason::SpendCapReached,
            StopReason::Interrupted => Reason::Interrupted,
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Provider(r, d) => write!(f, "{r}: {d}"),
            StopReason::RetryBudget(first, retries) => write!(
                f,
                "retry budget spent ({retries} retries for {first} first attempts); the provider looks unhealthy, stopping instead of retrying harder"
            ),
            StopReason::SpendCap(usd) => write!(f, "spend cap reached (${usd:.4} spent this run)"),
            StopReason::Interrupted => write!(f, "interrupted"),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Campaign name.
    pub campaign: String,
    /// Providers used (`local`, `gemini`, `openai`, or several joined by `+`).
    pub provider: String,
    /// Mode used.
    pub mode: String,
    /// What the sync found.
    pub planned: crate::store::SyncReport,
    /// Final counts from the manifest.
    pub totals: manifest::Totals,
    /// USD spent by this run.
    pub spent_usd: f64,
    /// Why it stopped early, if it did.
    pub stopped: Option<StopReason>,
    /// Batches submitted and left running (`--no-wait`).
    pub batches_left: Vec<String>,
    /// Where the manifest was written (on disk: the output tree, or the
    /// staging tree of a bucket).
    pub manifest_path: PathBuf,
    /// Where readers find the manifest: its path, or its bucket URL.
    pub manifest_location: String,
    /// False when another runner was still at work on the campaign as this
    /// one ended: the last of them writes the manifest (and publishes it),
    /// and this run wrote none.
    pub manifest_written: bool,
    /// What publishing to the bucket did (`--out s3://…`, `gs://…`).
    pub published: Option<assets::Published>,
    /// The exit code the CLI should use.
    pub exit: ExitCode,
    /// What the rendition reconcile did.
    pub renditions: crate::derive::renditions::ReconcileReport,
    /// What the placement reconcile did.
    pub placements: crate::derive::placements::PlacementReport,
    /// Contact sheets written (`--contact-sheet`).
    pub contact_sheets: Vec<PathBuf>,
}

/// Shared context for the dispatchers.
pub(crate) struct Ctx {
    pub store: Store,
    pub run: RunId,
    pub campaign: String,
    pub campaign_out: PathBuf,
    /// The primary provider: batches go to it.
    pub provider: Arc<dyn Provider>,
    /// Every provider of the run, by vendor: realtime jobs go to the one of
    /// the model they ask.
    pub providers: Providers,
    /// Vendors that stopped working, with the stop each would have been.
    pub stops: std::sync::Mutex<Vec<(Vendor, StopReason)>>,
    pub specs: HashMap<JobId, Arc<JobSpec>>,
    pub prices: PriceTable,
    pub policy: RetryPolicy,
    /// One retry budget per vendor: one vendor's outage spends its own
    /// budget, not the one its fallback needs.
    budgets: (RetryBudget, RetryBudget),
    pub spend_cap: Option<f64>,
    pub spent_micros: AtomicU64,
    pub cancel: CancellationToken,
    pub progress: Progress,
    pub lease: Duration,
    /// Requests per minute for the model (campaign `[rate_limit] rpm`):
    /// the pacers' ceiling.
    pub rpm: Option<u32>,
    /// The vendors' adaptive pacers, kept for the whole run.
    pub pacers: Pacers,
    /// Readers' copies made from the pixels the providers decoded.
    pub read_copies: qa::ReadCopies,
}

impl Ctx {
    /// The retry budget of the vendor serving `model`.
    pub(crate) fn budget(&self, model: &ModelId) -> &RetryBudget {
        self.budget_of(model.vendor())
    }

    /// The retry budget of a vendor.
    pub(crate) fn budget_of(&self, vendor: Vendor) -> &RetryBudget {
        match vendor {
            Vendor::Gemini => &self.budgets.0,
            Vendor::OpenAi => &self.budgets.1,
        }
    }
    pub(crate) fn spent(&self) -> f64 {
        self.spent_micros.load(Ordering::Relaxed) as f64 / 1e6
    }
    pub(crate) fn add_spend(&self, usd: f64) {
        self.spent_micros
            .fetch_add((usd * 1e6).round() as u64, Ordering::Relaxed);
    }
}

/// Progress reporting: a bar on a terminal, log lines otherwise.
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    fn new(total: u64, bar: bool) -> Self {
        let bar = bar.then(|| {
            let b = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
            ) {
                b.set_style(style);
            }
            b
        });
        Progress {
            bar,
            done: AtomicU64::new(0),
            total: AtomicU64::new(total),
        }
    }

    pub(crate) fn finished_one(&self, what: &str, key: &str) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.load(Ordering::Relaxed);
        match &self.bar {
            Some(b) => {
                b.inc(1);
                b.set_message(format!("{what} {key}"));
            }
            None => tracing::info!(
                job = key,
                outcome = what,
                progress = format!("{n}/{total}"),
                "job finished"
            ),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Load and expand a campaign: every input error surfaces here, before
/// anything is written.
pub fn load_and_expand(dir: &Path) -> Result<(Campaign, Vec<JobSpec>)> {
    let campaign = Campaign::load(dir)?;
    let specs = expand::expand(&campaign).map_err(Error::Input)?;
    Ok((campaign, specs))
}

/// Estimated USD for the specs flagged in `generate` (an image, or for a
/// `text = "edit"` locale an edit of its base image) and in `edits` (an
/// edit of the job's image: a revision due), at each job's primary model.
pub fn estimate(
    campaign: &Campaign,
    specs: &[JobSpec],
    generate: &[bool],
    edits: &[bool],
    mode: BillingMode,
) -> f64 {
    purchases(campaign, specs, generate, edits, mode, false)
}

/// The sum of [`JobSpec::purchase_estimate`] over what a run will buy.
fn purchases(
    campaign: &Campaign,
    specs: &[JobSpec],
    generate: &[bool],
    edits: &[bool],
    mode: BillingMode,
    dearest: bool,
) -> f64 {
    let prices = PriceTable::new(campaign.pricing.clone());
    let total: f64 = specs
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let edit = edits.get(i).copied().unwrap_or(false);
            (generate.get(i).copied().unwrap_or(false) || edit)
                .then(|| s.purchase_estimate(&prices, mode, edit, dearest))
        })
        .sum();
    crate::domain::round_micro(total)
}

/// How often a runner beats: every 5 s, or three times per lease when the
/// lease is shorter (`ADLOC_LEASE_MS` rehearsals), so a live runner's
/// leases never run out between beats; only a stalled runner's do.
fn heartbeat_every(lease: Duration) -> Duration {
    (lease / 3).clamp(Duration::from_millis(1), Duration::from_secs(5))
}

/// Estimated USD if every job flagged in `generate` or `edits` were made
/// by the most expensive model of its variant's chain (the budget check's
/// figure: a run that falls back must still fit the budget).
pub fn estimate_worst(
    campaign: &Campaign,
    specs: &[JobSpec],
    generate: &[bool],
    edits: &[bool],
    mode: BillingMode,
) -> f64 {
    purchases(campaign, specs, generate, edits, mode, true)
}

/// Run a campaign to completion (or to a stop), then tell the campaign's
/// webhook how it went (`[notify]`; not for `ingest_only`, which `adloc
/// status` repeats at will). The webhook's outcome never changes the
/// result.
pub async fn run(opts: RunOptions, cancel: CancellationToken) -> Result<RunSummary> {
    let (campaign, specs) = load_and_expand(&opts.campaign_dir)?;
    // Its secret is checked before anything is written or sent.
    let hook = if opts.ingest_only {
        None
    } else {
        notify::Webhook::resolve(campaign.notify.as_ref(), opts.secret_lookup)?
    };
    let result = run_loaded(&opts, cancel, &campaign, specs).await;
    if let Some(hook) = &hook {
        let summary = match &result {
            Ok(s) => s.notice(),
            Err(e) => notify::Summary::failed(&campaign.name, e),
        };
        notify::send(hook, &summary).await;
    }
    result
}

impl RunSummary {
    /// What the webhook is told about this run.
    pub(crate) fn notice(&self) -> notify::Summary {
        let t = &self.totals;
        notify::Summary {
            campaign: self.campaign.clone(),
            campaign_finished: t.pending == 0,
            exit_code: self.exit.code(),
            outcome: notify::outcome_name(self.exit),
            reason: self.stopped.as_ref().map(|s| s.reason().code().to_string()),
            error: self.stopped.as_ref().map(ToString::to_string),
            counts: Some(notify::Counts {
                jobs: t.jobs,
                done: t.done,
                failed: t.failed,
                blocked: t.blocked,
                pending: t.pending,
                retired: t.retired,
            }),
            spend: notify::Spend {
                run_usd: self.spent_usd,
                campaign_usd: t.cost_usd,
            },
            manifest: Some(self.manifest_location.clone()),
            provider: Some(self.provider.clone()),
            mode: Some(self.mode.clone()),
        }
    }
}

/// [`run`] once the campaign is loaded.
async fn run_loaded(
    opts: &RunOptions,
    cancel: CancellationToken,
    campaign: &Campaign,
    specs: Vec<JobSpec>,
) -> Result<RunSummary> {
    let choice = opts.provider;
    let providers = make_providers(choice, campaign, &opts.env)?;
    let provider = primary_provider(&providers, &specs)?;
    let provider_names = providers.names();
    let mut mode = opts.mode.unwrap_or(campaign.mode);
    if provider.batch().is_none() && mode != RunMode::Realtime {
        tracing::info!(
            provider = provider.kind().as_str(),
            "provider has no batch API; rendering in realtime"
        );
        mode = RunMode::Realtime;
    }
    // Everything below writes state; the input is known good.
    let store = Store::open(&opts.state).await?;
    let planned = store.preview(&campaign.name, &specs).await?;
    if opts.ingest_only {
        // Ingesting what was already bought spends nothing new.
        mode = RunMode::Batch;
    } else {
        let edits = if choice == ProviderChoice::Local {
            Vec::new()
        } else {
            store
                .planned_edits(&campaign.name, &specs, &planned.generate)
                .await?
        };
        check_budget(
            campaign,
            &specs,
            &planned,
            &edits,
            choice,
            billing(mode),
            opts,
        )?;
    }
    let (planned, ids) = store.sync(&campaign.name, &specs).await?;

    // Workers on any host load the campaign from the store (`adloc
    // worker`, `adloc manifest`): keep its files there, rewritten only when
    // they changed.
    match Sources::of(campaign) {
        Ok(sources) => {
            store
                .keep_sources(&campaign.name, &sources.digest(), sources.files())
                .await?
        }
        // A run in one process needs no stored copy; `enqueue` refuses.
        Err(e) => tracing::debug!(error = %e, "campaign files not kept for workers"),
    }
    let campaign_out = campaign_out(opts, &campaign.name);
    std::fs::create_dir_all(&campaign_out).map_err(|e| Error::io(&campaign_out, e))?;
    let swept =
        assets::sweep_temporaries(&campaign_out).map_err(|e| Error::io(&campaign_out, e))?;
    if swept > 0 {
        tracing::info!(
            files = swept,
            "removed temporary files left by an interrupted run"
        );
    }
    let recovered = store.recover_orphans(&campaign.name, opts.lease).await?;
    if recovered > 0 {
        tracing::info!(
            jobs = recovered,
            "took back jobs from a runner that stopped"
        );
    }
    let run_id = store
        .start_run(&campaign.name, &provider_names, mode.as_str())
        .await?;
    // An edit recorded in a new format whose old master a kill left behind
    // (the old file goes after the record, never before). Only with no
    // other live runner on the campaign: another runner's new master is on
    // disk a moment before it is recorded, and must not look stale.
    if !store
        .others_running(&campaign.name, run_id, opts.lease)
        .await?
    {
        let (masters, recorded) = store.recorded_files(&campaign.name).await?;
        let out = campaign_out.clone();
        let stale = tokio::task::spawn_blocking(move || {
            assets::sweep_stale_masters(&out, &masters, &recorded).map_err(|e| Error::io(&out, e))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        if stale > 0 {
            tracing::info!(
                files = stale,
                "removed masters an edit replaced in another format before a kill"
            );
        }
    }
    // Rejected images are revised by editing: their jobs are queued again.
    let revising = if opts.ingest_only {
        0
    } else {
        revise::queue(&store, &campaign.name, &campaign_out).await?
    };
    if revising > 0 {
        tracing::info!(
            images = revising,
            "revising rejected images by editing them with the reviewers' notes"
        );
    }
    let specs_by_id: HashMap<JobId, Arc<JobSpec>> = ids
        .into_iter()
        .zip(specs)
        .map(|(id, s)| (id, Arc::new(s)))
        .collect();
    // QA turned on for images already done: their copy is read now (it
    // buys no image; a read is a fraction of a cent).
    if providers.local().is_none() {
        let with_qa: Vec<JobId> = specs_by_id
            .iter()
            .filter(|(_, s)| s.qa.is_some())
            .map(|(id, _)| *id)
            .collect();
        let queued = store.read_done_images(&with_qa).await?;
        if queued > 0 {
            tracing::info!(
                images = queued,
                "copy QA is on for images already made: reading them back"
            );
        }
    }
    let progress = Progress::new(
        planned.report.to_generate as u64 + revising,
        opts.progress_bar,
    );
    let ctx = Arc::new(Ctx {
        store: store.clone(),
        run: run_id,
        campaign: campaign.name.clone(),
        campaign_out: campaign_out.clone(),
        provider: provider.clone(),
        providers,
        stops: std::sync::Mutex::new(Vec::new()),
        specs: specs_by_id,
        prices: PriceTable::new(campaign.pricing.clone()),
        policy: RetryPolicy::new(campaign.retry),
        budgets: (
            RetryBudget::new(&campaign.retry),
            RetryBudget::new(&campaign.retry),
        ),
        spend_cap: spend_cap(campaign, opts, choice),
        spent_micros: AtomicU64::new(0),
        cancel: cancel.clone(),
        progress,
        lease: opts.lease,
        rpm: campaign.rpm,
        pacers: Pacers::default(),
        read_copies: qa::ReadCopies::default(),
    });

    // Beats until the run ends, on every way out: renditions and the
    // manifest can take minutes, and a silent runner looks dead to others.
    let _heartbeat = {
        let ctx = ctx.clone();
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
            loop {
                tokio::time::sleep(heartbeat_every(ctx.lease)).await;
                if let Err(e) = ctx.store.heartbeat(ctx.run, ctx.lease).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
        }))
    };

    let concurrency = match choice {
        // Rendering is CPU-bound: more tasks than cores only adds memory.
        ProviderChoice::Local => opts
            .concurrency
            .min(std::thread::available_parallelism().map_or(2, |n| n.get())),
        // Per vendor: each vendor's pool gets this many calls in flight.
        ProviderChoice::Gemini | ProviderChoice::OpenAi | ProviderChoice::ByModel => {
            opts.concurrency
        }
    }
    .max(1);

    if !opts.ingest_only {
        fall_back_unavailable(&ctx).await?;
    }
    let mut batches_left = Vec::new();
    // `text = "edit"`: a locale waits for its base locale's image. Once a
    // round has made the base images, their locales are released and
    // dispatched in the next round, until nothing more is released.
    let mut released = store.release_waiting(&campaign.name).await?;
    let outcome = loop {
        let outcome = match mode {
            RunMode::Realtime => {
                dispatch_realtime(&ctx, concurrency, opts.drain_timeout, None, true).await
            }
            RunMode::Batch | RunMode::Auto => {
                batch::dispatch(&ctx, campaign, mode, opts, concurrency, &mut batches_left).await
            }
        };
        if !matches!(outcome, Ok(None)) || cancel.is_cancelled() || opts.no_wait || opts.ingest_only
        {
            break outcome;
        }
        let more = store.release_waiting(&campaign.name).await?;
        if more == 0 {
            break outcome;
        }
        released += more;
        tracing::info!(
            images = more,
            "base images are made: editing them into the other locales"
        );
    };
    if released > 0 {
        tracing::debug!(images = released, "locale edits released this run");
    }
    // A locale edit whose base ended without an image to edit fails
    // (`base_failed`) rather than waiting forever: the run exits 3, not 4.
    if outcome.is_ok() {
        let lost = store.fail_edits_without_base(&campaign.name).await?;
        if lost > 0 {
            tracing::warn!(
                images = lost,
                "locale edits failed: their base locale's image failed, was blocked or fell back to overlay"
            );
        }
    }
    ctx.progress.finish();
    let stopped = outcome?;

    let jobs = store.jobs(&campaign.name).await?;
    crate::derive::overlay::compose_all(&store, campaign, &campaign_out, &jobs).await?;
    // Renditions are derived locally from the delivered files (a layered
    // model-text image's composite: composed just above); no provider call.
    let renditions = if cancel.is_cancelled() {
        crate::derive::renditions::ReconcileReport::default()
    } else {
        crate::derive::renditions::reconcile(&store, campaign, &campaign_out).await?
    };
    // Placements come from what is delivered, composites included.
    let placements = if cancel.is_cancelled() {
        crate::derive::placements::PlacementReport::default()
    } else {
        crate::derive::placements::reconcile(&store, campaign, &campaign_out).await?
    };
    // Of several runners serving the campaign, the last to end its work
    // builds the manifest and the review page, once.
    let publishes = store.end_work(run_id, &campaign.name, opts.lease).await?;
    if publishes {
        crash_point("elected-before-manifest");
    }
    if !publishes {
        tracing::info!(
            campaign = %campaign.name,
            "another runner is still at work on the campaign; the last to end writes the manifest"
        );
    }
    let (m, manifest_path) = if publishes {
        build_manifest(&store, run_id, campaign, &campaign_out).await?
    } else {
        let state = store.campaign_state(&campaign.name).await?;
        let compose = expand::compose_plan(campaign).map_err(Error::Input)?;
        let m = manifest::build(&campaign.name, &state, &compose);
        (m, campaign_out.join(manifest::MANIFEST_FILE))
    };
    let contact_sheets = if opts.contact_sheet && publishes {
        crate::derive::contact_sheet::write_all(campaign, &jobs, &campaign_out).await?
    } else {
        Vec::new()
    };
    // Everything the run writes into the tree is written by now: publish it.
    let (manifest_location, published) = if publishes {
        match deliver(
            &store,
            opts,
            &campaign.name,
            &campaign_out,
            &manifest_path,
            &m,
        )
        .await
        {
            Ok(d) => d,
            Err(e) => {
                // The run's work is recorded; only its delivery failed.
                store.finish_run(run_id, RunOutcome::Stopped).await?;
                store.close().await;
                return Err(e);
            }
        }
    } else {
        (
            manifest_location(opts, &campaign.name, &manifest_path),
            None,
        )
    };
    let exit = if stopped.is_some() {
        ExitCode::RunRefused
    } else if m.totals.has_failures() {
        ExitCode::PartialFailure
    } else if m.totals.pending > 0 && !opts.no_wait && !opts.ingest_only {
        ExitCode::RunRefused
    } else {
        ExitCode::Success
    };
    store
        .finish_run(
            run_id,
            match &stopped {
                Some(StopReason::Interrupted) => RunOutcome::Interrupted,
                Some(_) => RunOutcome::Stopped,
                None => RunOutcome::Finished,
            },
        )
        .await?;
    store.close().await;
    Ok(RunSummary {
        campaign: campaign.name.clone(),
        provider: provider_names,
        mode: mode.as_str().to_string(),
        planned: planned.report,
        totals: m.totals,
        spent_usd: ctx.spent(),
        stopped,
        batches_left,
        manifest_location,
        published,
        manifest_path,
        manifest_written: publishes,
        exit,
        renditions,
        placements,
        contact_sheets,
    })
}

/// Build `campaign`'s manifest from the store, keep it (so decisions made
/// before the next run can rewrite it, and the review page, without the
/// campaign folder) and write it with the review page under `campaign_out`.
async fn build_manifest(
    store: &Store,
    run_id: RunId,
    campaign: &Campaign,
    campaign_out: &Path,
) -> Result<(manifest::Manifest, PathBuf)> {
    let compose = expand::compose_plan(campaign).map_err(Error::Input)?;
    let state = store.campaign_state(&campaign.name).await?;
    let mut m = manifest::build(&campaign.name, &state, &compose);
    let out = campaign_out.to_path_buf();
    m = tokio::task::spawn_blocking(move || {
        let mut inspect = assets::provenance::inspector(&out);
        manifest::attach_provenance(&mut m, &mut inspect);
        m
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    review::snapshot(store, run_id, &m, state.read_at_ms).await?;
    let published = review::publish(store, &campaign.name, campaign_out).await?;
    Ok((m, published.manifest_path))
}

/// Where readers find the written tree: on disk, the manifest's path; for a
/// bucket, every object uploaded and verified with the manifest last, and
/// the manifest's URL.
async fn deliver(
    store: &Store,
    opts: &RunOptions,
    campaign: &str,
    campaign_out: &Path,
    manifest_path: &Path,
    m: &manifest::Manifest,
) -> Result<(String, Option<assets::Published>)> {
    match &opts.out {
        assets::OutputTarget::Local(_) => {
            Ok((manifest_location(opts, campaign, manifest_path), None))
        }
        assets::OutputTarget::Bucket(bucket) => {
            let p = assets::publish(
                store,
                bucket,
                &opts.store_env,
                campaign,
                campaign_out,
                &m.checksums(),
                &|| crash_point("upload-before-manifest"),
            )
            .await?;
            Ok((p.manifest_url.clone(), Some(p)))
        }
    }
}

/// Where readers find `campaign`'s manifest, written at `manifest_path` on
/// disk: that path, or its URL in the bucket.
fn manifest_location(opts: &RunOptions, campaign: &str, manifest_path: &Path) -> String {
    match &opts.out {
        assets::OutputTarget::Local(_) => std::path::absolute(manifest_path)
            .unwrap_or_else(|_| manifest_path.to_path_buf())
            .display()
            .to_string(),
        assets::OutputTarget::Bucket(b) => b.url_of(campaign, manifest::MANIFEST_FILE),
    }
}

/// The local folder of a campaign's tree: the output folder, or for a
/// bucket the staging tree beside the state.
fn campaign_out(opts: &RunOptions, campaign: &str) -> PathBuf {
    opts.out.local_root(&opts.state.local_dir()).join(campaign)
}

/// The price a mode pays: auto buys its bulk through batches.
fn billing(m: RunMode) -> BillingMode {
    match m {
        RunMode::Realtime => BillingMode::Realtime,
        RunMode::Batch | RunMode::Auto => BillingMode::Batch,
    }
}

fn spend_cap(campaign: &Campaign, opts: &RunOptions, choice: ProviderChoice) -> Option<f64> {
    if choice == ProviderChoice::Local {
        return None;
    }
    match (campaign.budget_usd, opts.max_spend) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Refuse (`over_budget`) before anything is sent when what the run will
/// buy (images, edits of existing images: `edits` from
/// [`Store::planned_edits`], copy QA's reads) at the dearest model of each
/// chain exceeds `budget.max_usd` or `--max-spend`.
fn check_budget(
    campaign: &Campaign,
    specs: &[JobSpec],
    planned: &Planned,
    edits: &[bool],
    choice: ProviderChoice,
    mode: BillingMode,
    opts: &RunOptions,
) -> Result<()> {
    if choice == ProviderChoice::Local {
        return Ok(());
    }
    // Copy QA's reads are part of what the run will spend; regenerations
    // after a mismatch are not planned (the spend cap stops them).
    let reads = expand::report::qa_estimate(campaign, specs, &planned.generate, mode).reads_usd;
    let estimate = crate::domain::round_micro(
        estimate_worst(campaign, specs, &planned.generate, edits, mode) + reads,
    );
    let limits = [
        (campaign.budget_usd, "budget.max_usd in campaign.toml"),
        (opts.max_spend, "--max-spend"),
    ];
    for (limit, source) in limits {
        if let Some(budget) = limit
            && estimate > budget
        {
            return Err(Error::OverBudget {
                estimate,
                budget,
                source_of_budget: source.to_string(),
            });
        }
    }
    Ok(())
}

/// What happened to one job in one attempt.
pub(crate) enum JobOutcome {
    Done,
    Retry,
    Terminal,
    /// A retry was refused by the run's retry budget.
    BudgetSpent,
    Stop(StopReason),
}

/// A realtime attempt's outcome and the vendor it went to.
type Attempted = (Option<Vendor>, JobOutcome);

/// Realtime dispatch: claim, call, store, record — `concurrency` at a time.
/// `only` limits it to the image pools of some vendors (auto mode's small
/// remainders; none at all for batch mode's reads); `None` runs every
/// pool. `reads` runs the copy-QA read pool too (when a variant has QA and
/// the images are not the local renderer's).
async fn dispatch_realtime(
    ctx: &Arc<Ctx>,
    concurrency: usize,
    drain: Duration,
    only: Option<&[Vendor]>,
    reads: bool,
) -> Result<Option<StopReason>> {
    let reads =
        reads && ctx.providers.local().is_none() && ctx.specs.values().any(|s| s.qa.is_some());
    let read_slots = Arc::new(Semaphore::new(concurrency));
    let limiters = rate_limiters(ctx);
    let mut pools = pools(ctx);
    if let Some(only) = only {
        pools.retain(|(v, _)| v.is_none_or(|v| only.contains(&v)));
    }
    // A pool's concurrency bounds its calls in flight and their settling:
    // a task holds its slot until it ends, so at a kill at most
    // `concurrency` paid results per pool are unrecorded (and bought
    // again), and a vendor's failure is handled (its pool stopped) before
    // the freed slot can be claimed again.
    let slots: HashMap<Option<Vendor>, Arc<Semaphore>> = pools
        .iter()
        .map(|(v, _)| (*v, Arc::new(Semaphore::new(concurrency))))
        .collect();
    let mut set: JoinSet<Result<Attempted>> = JoinSet::new();
    let mut stop: Option<StopReason> = None;
    loop {
        if stop.is_none() && ctx.cancel.is_cancelled() {
            stop = Some(StopReason::Interrupted);
        }
        if stop.is_some() {
            break;
        }
        // One pool per vendor: each gets `concurrency` calls in flight, and
        // claims only jobs whose model it serves.
        for (vendor, models) in &pools {
            if vendor.is_some_and(|v| ctx.providers.unusable(v).is_some()) {
                continue;
            }
            let Some(sem) = slots.get(vendor) else {
                continue;
            };
            let free = sem.available_permits();
            if free == 0 {
                continue;
            }
            for job in ctx
                .store
                .claim(ctx.run, &ctx.campaign, free, ctx.lease, models)
                .await?
            {
                let Ok(slot) = sem.clone().try_acquire_owned() else {
                    return Err(Error::Internal("realtime pool over-claimed".into()));
                };
                let ctx = ctx.clone();
                let pacer = limiters.get(&job.model.vendor()).cloned();
                set.spawn(async move {
                    let paced = match pacer {
                        Some(p) => tokio::select! {
                            t = p.acquire() => Some((t, p)),
                            // A server's hold can outlast the drain: a job
                            // still waiting for its turn goes back unsent.
                            _ = ctx.cancel.cancelled() => {
                                ctx.store
                                    .settle(job.id, Some(ctx.run), &Settlement::Requeue, None)
                                    .await?;
                                return Ok((None, JobOutcome::Retry));
                            }
                        },
                        None => None,
                    };
                    crash_point("realtime-after-claim");
                    realtime_one(&ctx, job, slot, paced).await
                });
            }
        }
        // Copy QA reads: a pool of their own on the reader's vendor.
        let reading = reads && ctx.providers.unusable(Vendor::Gemini).is_none();
        if reading && read_slots.available_permits() > 0 {
            for job in ctx
                .store
                .claim_reads(
                    ctx.run,
                    &ctx.campaign,
                    read_slots.available_permits(),
                    ctx.lease,
                )
                .await?
            {
                let Ok(slot) = read_slots.clone().try_acquire_owned() else {
                    return Err(Error::Internal("read pool over-claimed".into()));
                };
                let ctx = ctx.clone();
                set.spawn(async move { qa::read_one(&ctx, job, slot).await });
            }
        }
        if set.is_empty() {
            let live: Vec<String> = pools
                .iter()
                .filter(|(v, _)| v.is_none_or(|v| ctx.providers.unusable(v).is_none()))
                .flat_map(|(_, m)| m.iter().cloned())
                .collect();
            // No image pool left (all failed, or none asked for): only reads.
            let images_done =
                pools.is_empty() || (live.is_empty() && pools.iter().any(|(v, _)| v.is_some()));
            let images = if images_done {
                None
            } else {
                ctx.store.next_pending(&ctx.campaign, &live).await?
            };
            let due_reads = if reading {
                ctx.store.next_read(&ctx.campaign).await?
            } else {
                None
            };
            let next = match (images, due_reads) {
                (None, None) => None,
                (Some(a), None) | (None, Some(a)) => Some(a),
                (Some(a), Some(b)) => Some(a.zip(b).map(|(a, b)| a.min(b))),
            };
            match next {
                None => {
                    // Another runner holds the rest: wait for it (and take
                    // its jobs back if it dies) instead of ending early.
                    if ctx.store.held_elsewhere(&ctx.campaign, ctx.run).await? == 0 {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = ctx.cancel.cancelled() => {}
                    }
                    ctx.store.recover_orphans(&ctx.campaign, ctx.lease).await?;
                    continue;
                }
                Some(not_before) => {
                    let wait = not_before.map_or(50, |t| (t - now_ms()).clamp(10, 1000)) as u64;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                        _ = ctx.cancel.cancelled() => {}
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            Some(res) = set.join_next() => {
                if let Some(s) = handle_join(ctx, res).await? {
                    stop.get_or_insert(s);
                }
            }
            _ = ctx.cancel.cancelled() => {}
        }
    }
    // Let calls already in flight finish (their images are paid for), within a bound.
    let deadline = tokio::time::Instant::now() + drain;
    while !set.is_empty() {
        tokio::select! {
            Some(res) = set.join_next() => {
                if let Some(s) = handle_join(ctx, res).await? {
                    stop.get_or_insert(s);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(jobs = set.len(), "in-flight calls did not finish in time; they return to pending");
                set.abort_all();
                break;
            }
        }
    }
    // Whatever we still hold (aborted calls) goes back to pending now rather than at lease expiry.
    ctx.store.release_run_leases(ctx.run).await?;
    if stop.is_none() {
        stop = leftover_stop(ctx).await?;
    }
    Ok(stop)
}

/// A vendor failed for this run with `stop`: it takes no more work, and
/// its pending jobs move on along their chains. The stop is kept: it
/// becomes the run's only if something is left that no usable vendor can
/// make ([`leftover_stop`]). Calls in flight when the vendor went down come
/// back one by one; each call moves whatever of its jobs is pending by then.
pub(crate) async fn vendor_failed(ctx: &Ctx, vendor: Vendor, stop: StopReason) -> Result<()> {
    let first = ctx.providers.unusable(vendor).is_none();
    let reason = ctx.providers.unusable(vendor).unwrap_or(stop.reason());
    fall_back_vendor(ctx, vendor, reason).await?;
    if first {
        tracing::warn!(vendor = vendor.as_str(), reason = reason.code(), "{stop}");
        ctx.stops
            .lock()
            .map_err(|_| Error::Internal("stop list poisoned".into()))?
            .push((vendor, stop));
    }
    Ok(())
}

/// A vendor that failed and left jobs pending on its models (none of their
/// chains had a usable model left), or batches it can no longer be asked
/// about: that is the run's stop, with the vendor's reason.
pub(crate) async fn leftover_stop(ctx: &Ctx) -> Result<Option<StopReason>> {
    let stops = ctx
        .stops
        .lock()
        .map_err(|_| Error::Internal("stop list poisoned".into()))?
        .clone();
    if stops.is_empty() {
        return Ok(None);
    }
    let open = ctx.store.open_batches(&ctx.campaign).await?;
    for (vendor, s) in stops {
        let models = vendor_models(ctx, vendor);
        let pending = ctx.store.next_pending(&ctx.campaign, &models).await?;
        if pending.is_some() || open.iter().any(|b| b.model.vendor() == vendor) {
            return Ok(Some(s));
        }
        // The readers are Gemini's: copy QA left unread is its leftover too.
        if vendor == Vendor::Gemini
            && (ctx.store.next_read(&ctx.campaign).await?.is_some()
                || !ctx.store.open_read_batches(&ctx.campaign).await?.is_empty())
        {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// Every model of `vendor` that some job's chain uses.
pub(crate) fn vendor_models(ctx: &Ctx, vendor: Vendor) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for spec in ctx.specs.values() {
        for (m, _) in &spec.chain {
            if m.vendor() == vendor && !out.iter().any(|x| x == m.as_str()) {
                out.push(m.as_str().to_string());
            }
        }
    }
    out
}

/// The models this run can still send work to: `Some(vec![])` means every
/// model (the local renderer), `None` that every vendor has failed.
pub(crate) fn live_models(ctx: &Ctx) -> Option<Vec<String>> {
    if ctx.providers.local().is_some() {
        return Some(Vec::new());
    }
    let live: Vec<String> = [Vendor::Gemini, Vendor::OpenAi]
        .into_iter()
        .filter(|v| ctx.providers.vendor(*v).is_some() && ctx.providers.unusable(*v).is_none())
        .flat_map(|v| vendor_models(ctx, v))
        .collect();
    (!live.is_empty()).then_some(live)
}

/// What a finished task means for the run: a stop, unless it was one
/// vendor's failure and its jobs could move to another vendor.
async fn handle_join(
    ctx: &Ctx,
    res: std::result::Result<Result<Attempted>, tokio::task::JoinError>,
) -> Result<Option<StopReason>> {
    match res {
        // One vendor failed: it takes no more work, its jobs move on along
        // their chains, and the run ends (with this reason) only when
        // nothing is left that a usable vendor can make.
        Ok(Ok((Some(vendor), JobOutcome::Stop(s)))) if s.is_vendor_failure() => {
            vendor_failed(ctx, vendor, s).await?;
            Ok(None)
        }
        Ok(Ok((_, JobOutcome::Stop(s)))) => Ok(Some(s)),
        // A call that was in flight when its vendor went down may come back
        // as a plain retry: its job must move on too, or it would wait for
        // a vendor that takes no more work.
        Ok(Ok((Some(vendor), _))) => {
            if let Some(reason) = ctx.providers.unusable(vendor) {
                fall_back_vendor(ctx, vendor, reason).await?;
            }
            Ok(None)
        }
        Ok(Ok(_)) => Ok(None),
        Ok(Err(e)) => Err(e),
        Err(e) if e.is_cancelled() => Ok(None),
        Err(e) => Err(Error::Internal(format!("worker task failed: {e}"))),
    }
}

/// The realtime pools: one per vendor the jobs' chains use, each with the
/// models it serves (`None` and no filter for the local renderer).
fn pools(ctx: &Ctx) -> Vec<(Option<Vendor>, Vec<String>)> {
    if ctx.providers.local().is_some() {
        return vec![(None, Vec::new())];
    }
    let mut by: Vec<(Option<Vendor>, Vec<String>)> = Vec::new();
    for spec in ctx.specs.values() {
        for (m, _) in &spec.chain {
            let v = Some(m.vendor());
            let i = match by.iter().position(|(x, _)| *x == v) {
                Some(i) => i,
                None => {
                    by.push((v, Vec::new()));
                    by.len() - 1
                }
            };
            if !by[i].1.iter().any(|x| x == m.as_str()) {
                by[i].1.push(m.as_str().to_string());
            }
        }
    }
    by
}

/// One adaptive pacer per vendor ([`Pacer`]), so a slow vendor's limit
/// does not pace the other's calls. It starts at the user's `[rate_limit]
/// rpm` (then also its ceiling) or the family's default, and keeps what it
/// learned for the rest of the run.
fn rate_limiters(ctx: &Ctx) -> HashMap<Vendor, Arc<Pacer>> {
    let mut out = HashMap::new();
    if ctx.providers.local().is_some() {
        return out;
    }
    for spec in ctx.specs.values() {
        for (model, _) in &spec.chain {
            let v = model.vendor();
            if out.contains_key(&v) {
                continue;
            }
            let start = ctx.rpm.unwrap_or(model.family().default_rpm());
            out.insert(v, ctx.pacers.get_or_make(v, start, ctx.rpm));
        }
    }
    out
}

/// The provider batches go to: the vendor of the first job's model.
fn primary_provider(providers: &Providers, specs: &[JobSpec]) -> Result<Arc<dyn Provider>> {
    if let Some(l) = providers.local() {
        return Ok(l.clone());
    }
    specs
        .iter()
        .find_map(|s| providers.for_model(&s.request.model))
        .or_else(|| providers.any())
        .ok_or_else(|| Error::run_terminal(Reason::Unauthenticated, "no provider available"))
}

/// Move a pending job off `from` to the next model of its chain whose
/// vendor is usable in this run, when `trigger` is one of its variant's
/// `fallback_on`. Returns whether it moved.
async fn move_on(
    ctx: &Ctx,
    id: JobId,
    spec: &JobSpec,
    from: &ModelId,
    trigger: FallbackTrigger,
    reason: Reason,
) -> Result<bool> {
    if !spec.fallback_on.contains(&trigger) {
        return Ok(false);
    }
    let mut next = spec.next_model(from);
    while let Some(m) = next {
        if ctx.providers.for_model(m).is_some() {
            let (_, hash) = spec.request_for(m);
            let moved = ctx.store.fall_back(id, m, &hash, from, reason).await?;
            if moved {
                tracing::info!(job = %spec.key, from = %from, to = %m, reason = reason.code(), "falling back to the next model of the chain");
            }
            return Ok(moved);
        }
        next = spec.next_model(m);
    }
    Ok(false)
}

/// Whether the chain has a model after `from` whose vendor is usable.
fn usable_next(ctx: &Ctx, spec: &JobSpec, from: &ModelId) -> bool {
    let mut next = spec.next_model(from);
    while let Some(m) = next {
        if ctx.providers.for_model(m).is_some() {
            return true;
        }
        next = spec.next_model(m);
    }
    false
}

/// A vendor stopped working for this run (`reason`): send nothing more to
/// it, and move its pending jobs to their next models. Returns how many moved.
async fn fall_back_vendor(ctx: &Ctx, vendor: Vendor, reason: Reason) -> Result<usize> {
    ctx.providers.mark_down(vendor, reason);
    let trigger = trigger_for(reason);
    let mut models: Vec<&ModelId> = Vec::new();
    for spec in ctx.specs.values() {
        for (m, _) in &spec.chain {
            if m.vendor() == vendor && !models.contains(&m) {
                models.push(m);
            }
        }
    }
    let mut moved = 0;
    for m in models {
        for id in ctx.store.pending_on_model(&ctx.campaign, m).await? {
            if let Some(spec) = ctx.specs.get(&id)
                && move_on(ctx, id, spec, m, trigger, reason).await?
            {
                moved += 1;
            }
        }
    }
    if moved > 0 {
        tracing::warn!(
            vendor = vendor.as_str(),
            reason = reason.code(),
            jobs = moved,
            "vendor unusable for this run; its jobs moved to their fallback models"
        );
    }
    Ok(moved)
}

/// Jobs whose model's vendor has no provider in this run (no key, or a
/// forced `--provider`) move to the first usable model of their chain.
async fn fall_back_unavailable(ctx: &Ctx) -> Result<usize> {
    if ctx.providers.local().is_some() {
        return Ok(0);
    }
    let mut moved = 0;
    for v in [Vendor::Gemini, Vendor::OpenAi] {
        if ctx.providers.vendor(v).is_none() {
            moved += fall_back_vendor(ctx, v, Reason::Unauthenticated).await?;
        }
    }
    Ok(moved)
}

/// A place in a realtime pool, held by a task until it ends.
type Slot = tokio::sync::OwnedSemaphorePermit;

/// One realtime attempt for a claimed job: the outcome, and the vendor it
/// went to (so a vendor-level stop can fall back instead of ending the run).
async fn realtime_one(
    ctx: &Ctx,
    job: Claimed,
    slot: Slot,
    paced: Option<(Ticket, Arc<Pacer>)>,
) -> Result<Attempted> {
    let Some(spec) = ctx.specs.get(&job.id).cloned() else {
        // Claimed a job this process did not expand (another runner's newer
        // campaign). Hand it back untouched.
        ctx.store
            .settle(job.id, Some(ctx.run), &Settlement::Requeue, None)
            .await?;
        return Ok((None, JobOutcome::Retry));
    };
    let model = job.model.clone();
    let vendor = model.vendor();
    let Some(provider) = ctx.providers.for_model(&model) else {
        // Its vendor went down while the job was being claimed: hand it
        // back and move it on if its chain allows. If not, it stays pending
        // (its vendor's pool claims nothing more) and the run reports it.
        ctx.store
            .settle(job.id, Some(ctx.run), &Settlement::Requeue, None)
            .await?;
        let reason = ctx
            .providers
            .unusable(vendor)
            .unwrap_or(Reason::Unauthenticated);
        move_on(ctx, job.id, &spec, &model, trigger_for(reason), reason).await?;
        return Ok((None, JobOutcome::Retry));
    };
    let mut request = spec.request_to_send(&model, job.overlay);
    if matches!(
        qa::image_qa(&spec, provider.kind(), job.overlay),
        crate::store::ImageQa::Check
    ) {
        request.read_copy_side = Some(qa::READ_MAX_SIDE);
    }
    let edit = revise::prepare(&ctx.store, &ctx.campaign_out, job.id, &mut request).await?;
    if job.attempts == 1 {
        ctx.budget(&model).first_attempt();
    }
    let started = now_ms();
    let result = match &edit {
        revise::Prepared::Broken(e) => Err(e.clone()),
        _ => provider.generate(&request).await,
    };
    if let Some((ticket, pacer)) = &paced {
        pacer.observe(ticket, &result);
    }
    crash_point("realtime-after-call");
    // A block moves the job to the next model when the variant says so.
    if let Err(e) = &result
        && matches!(e.reason, Reason::BlockedPrompt | Reason::BlockedImage)
        && spec.fallback_on.contains(&FallbackTrigger::Blocked)
        && usable_next(ctx, &spec, &model)
    {
        ctx.store
            .settle(job.id, Some(ctx.run), &Settlement::Requeue, None)
            .await?;
        if move_on(
            ctx,
            job.id,
            &spec,
            &model,
            FallbackTrigger::Blocked,
            e.reason,
        )
        .await?
        {
            return Ok((Some(vendor), JobOutcome::Retry));
        }
    }
    let info = JobInfo {
        key: &spec.key,
        model: &model,
        size: spec.request.image_size,
        provider: provider.kind(),
        qa: qa::image_qa(&spec, provider.kind(), job.overlay),
        overlay: qa::overlay_art(&spec, &model, job.overlay),
        replaced: edit.replaced(),
    };
    let outcome = settle(
        ctx,
        job.id,
        job.attempts,
        &info,
        result,
        BillingMode::Realtime,
        started,
    )
    .await?;
    drop(slot);
    Ok((Some(vendor), outcome))
}
