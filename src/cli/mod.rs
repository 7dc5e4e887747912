//! The command line: argument types and one function per subcommand. The
//! binary parses, calls [`main_with`], and exits with the returned code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::campaign::RunMode;
use crate::error::{Error, ExitCode};
use crate::model::BillingMode;
use crate::queue::Queue;
use crate::run::{self, ProviderChoice, RunOptions};

/// adloc: localized ad creatives from a campaign folder.
#[derive(Debug, Parser)]
#[command(name = "adloc", version, about, max_term_width = 100)]
pub struct Cli {
    /// Log format for stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (and a progress bar on a terminal).
    Text,
    /// One JSON object per line, for schedulers.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a campaign and show what a run would generate and cost.
    Plan(PlanArgs),
    /// Generate every image that is missing or changed.
    Run(RunArgs),
    /// Jobs by state, batches in flight and spend so far.
    Status(StatusArgs),
    /// Cancel a campaign's remote batches; their jobs return to pending.
    Cancel(CancelArgs),
    /// Requeue failed and/or blocked jobs.
    Retry(RetryArgs),
    /// Serve a Gemini-compatible emulator on 127.0.0.1 for offline rehearsal.
    Emulate(EmulateArgs),
}

/// `adloc plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The campaign folder (holds campaign.toml).
    pub campaign_dir: PathBuf,
    /// State file to compare against.
    #[arg(long, default_value = ".adloc/state.db")]
    pub state: PathBuf,
}

/// Provider names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    /// Local proof renderer (no network, no key, no cost).
    Local,
    /// Google Gemini (needs GEMINI_API_KEY or GOOGLE_API_KEY).
    Gemini,
}

/// Mode names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Realtime calls.
    Realtime,
    /// Batch API (half price).
    Batch,
    /// Batch for the bulk, realtime for remainders and deadlines.
    Auto,
}

/// `adloc run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The campaign folder (holds campaign.toml).
    pub campaign_dir: PathBuf,
    /// Provider (default: gemini when an API key is set, else local).
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// Override the campaign's mode.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Output root; assets go to OUT/<campaign>/.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// State database.
    #[arg(long, default_value = ".adloc/state.db")]
    pub state: PathBuf,
    /// Realtime calls in flight at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Refuse to start (exit 4) when the estimate exceeds this, and stop when spend reaches it.
    #[arg(long, value_name = "USD")]
    pub max_spend: Option<f64>,
    /// Batch mode: submit, print the batch names and exit; a later run ingests.
    #[arg(long)]
    pub no_wait: bool,
    /// Auto mode: finish in realtime by this time (RFC 3339 or local HH:MM).
    #[arg(long, value_name = "TIME")]
    pub deadline: Option<String>,
    /// Safety margin before the deadline, in minutes.
    #[arg(long, default_value_t = 30)]
    pub deadline_margin_min: u64,
    /// Also write one contact sheet per locale (OUT/<campaign>/contact-sheets/<locale>.png).
    #[arg(long)]
    pub contact_sheet: bool,
}

/// `adloc status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Campaign name, or a campaign folder: with a folder (and an API key)
    /// status also polls the campaign's batches and ingests what finished.
    /// Default: all campaigns in the state file.
    pub campaign: Option<String>,
    /// State database.
    #[arg(long, default_value = ".adloc/state.db")]
    pub state: PathBuf,
    /// Output root (where ingested images go), as for `run`.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

/// `adloc cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The campaign folder.
    pub campaign_dir: PathBuf,
    /// State database.
    #[arg(long, default_value = ".adloc/state.db")]
    pub state: PathBuf,
}

/// `adloc retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Campaign name.
    pub campaign: String,
    /// Requeue failed jobs.
    #[arg(long)]
    pub failed: bool,
    /// Requeue blocked jobs.
    #[arg(long)]
    pub blocked: bool,
    /// State database.
    #[arg(long, default_value = ".adloc/state.db")]
    pub state: PathBuf,
}

/// `adloc emulate`.
#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    pub port: u16,
    /// Fault-injection file (TOML).
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Seed for deterministic faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Accept only this API key (default: any non-empty key).
    #[arg(long)]
    pub api_key: Option<String>,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ADLOC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("adloc=info,warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

/// Parse a deadline: RFC 3339, or `HH:MM` local time today (tomorrow if past).
pub fn parse_deadline(s: &str) -> Result<jiff::Timestamp, Error> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let bad = || {
        Error::Usage(format!(
            "--deadline `{s}`: expected RFC 3339 (2026-11-28T06:00:00Z) or local HH:MM"
        ))
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let now = jiff::ZonedDateTime::now();
    let today = now
        .date()
        .at(h, m, 0, 0)
        .to_zoned_datetime(now.time_zone().clone())
        .map_err(|_| bad())?;
    let t = if today.timestamp() <= now.timestamp() {
        today
            .checked_add(jiff::Span::new().days(1))
            .map_err(|_| bad())?
    } else {
        today
    };
    Ok(t.timestamp())
}

/// Run the CLI; returns the process exit code.
pub async fn main_with(cli: Cli) -> ExitCode {
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Plan(a) => plan(a).await,
        Command::Run(a) => run_cmd(a, cli.log_format).await,
        Command::Status(a) => status(a).await,
        Command::Cancel(a) => cancel(a).await,
        Command::Retry(a) => retry(a).await,
        Command::Emulate(a) => emulate(a).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", render_error(&e));
            e.exit_code()
        }
    }
}

fn render_error(e: &Error) -> String {
    match e {
        Error::Input(errs) => format!("{errs}\nnothing was written or sent"),
        other => format!("error: {other}"),
    }
}

async fn plan(a: PlanArgs) -> Result<ExitCode, Error> {
    let (campaign, specs) = run::load_and_expand(&a.campaign_dir)?;
    let planned = match Queue::open_existing(&a.state).await? {
        Some(q) => q.preview(&campaign.name, &specs).await?,
        None => crate::queue::Planned {
            report: crate::queue::SyncReport {
                new: specs.len(),
                to_generate: specs.len(),
                ..Default::default()
            },
            generate: vec![true; specs.len()],
        },
    };
    let r = &planned.report;
    let rt = run::estimate(&campaign, &specs, &planned.generate, BillingMode::Realtime);
    let bt = run::estimate(&campaign, &specs, &planned.generate, BillingMode::Batch);
    let assets = campaign.rows.rows.len() * campaign.locales.len() * campaign.variants.len();
    println!(
        "campaign {}: {} rows × {} locales × {} variants = {assets} assets from {} generations ({})",
        campaign.name,
        campaign.rows.rows.len(),
        campaign.locales.len(),
        campaign.variants.len(),
        specs.len(),
        campaign.model
    );
    println!(
        "  new {}, changed {}, unchanged {} ({} done), retired {}",
        r.new, r.changed, r.unchanged, r.already_done, r.retired
    );
    if r.in_batch > 0 {
        println!("  in remote batches already: {}", r.in_batch);
    }
    println!("  images to pay for: {}", r.to_generate);
    println!("  estimated cost: ${rt:.4} realtime, ${bt:.4} batch");
    if let Some(b) = campaign.budget_usd {
        println!("  budget: ${b:.2}");
    }
    // Overlay savings, every copy fallback (once per row × locale × column)
    // and the overlay fit check.
    for line in crate::overlay::plan::report(&campaign, &specs) {
        println!("{line}");
    }
    Ok(ExitCode::Success)
}

async fn run_cmd(a: RunArgs, log_format: LogFormat) -> Result<ExitCode, Error> {
    let mut opts = RunOptions::new(&a.campaign_dir);
    opts.provider = a.provider.map(|p| match p {
        ProviderArg::Local => ProviderChoice::Local,
        ProviderArg::Gemini => ProviderChoice::Gemini,
    });
    opts.mode = a.mode.map(|m| match m {
        ModeArg::Realtime => RunMode::Realtime,
        ModeArg::Batch => RunMode::Batch,
        ModeArg::Auto => RunMode::Auto,
    });
    opts.out = a.out;
    opts.state = a.state;
    opts.concurrency = a.concurrency as usize;
    if let Some(m) = a.max_spend
        && !(m.is_finite() && m >= 0.0)
    {
        return Err(Error::Usage(format!(
            "--max-spend must be a non-negative number, got {m}"
        )));
    }
    opts.max_spend = a.max_spend;
    opts.no_wait = a.no_wait;
    opts.deadline = a.deadline.as_deref().map(parse_deadline).transpose()?;
    opts.deadline_margin = std::time::Duration::from_secs(a.deadline_margin_min * 60);
    opts.progress_bar = log_format == LogFormat::Text && std::io::stderr().is_terminal();
    opts.contact_sheet = a.contact_sheet;

    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "interrupt: stopping dispatch, finishing calls in flight, writing the manifest"
                );
                cancel.cancel();
            }
        });
    }
    #[cfg(unix)]
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
                cancel.cancel();
            }
        });
    }
    let s = run::run(opts, cancel).await?;
    let t = &s.totals;
    println!(
        "{}: {} done, {} failed, {} blocked, {} pending ({} provider, {} mode); spent ${:.4}; manifest {}",
        s.campaign,
        t.done,
        t.failed,
        t.blocked,
        t.pending,
        s.provider,
        s.mode,
        s.spent_usd,
        s.manifest_path.display()
    );
    println!(
        "  this run: {} new, {} changed, {} unchanged, {} retired",
        s.planned.new, s.planned.changed, s.planned.unchanged, s.planned.retired
    );
    for b in &s.batches_left {
        println!("  batch submitted: {b}");
    }
    let r = &s.renditions;
    if r.produced + r.kept + r.removed + r.failed > 0 {
        println!(
            "  renditions: {} written, {} up to date, {} removed, {} masters unusable",
            r.produced, r.kept, r.removed, r.failed
        );
    }
    for p in &s.contact_sheets {
        println!("  contact sheet: {}", p.display());
    }
    if s.stopped.is_none() && s.exit == ExitCode::RunRefused {
        eprintln!(
            "{} job(s) are still pending; run again to finish them",
            t.pending
        );
    }
    if let Some(stop) = &s.stopped {
        eprintln!("stopped: {stop}");
        if let run::StopReason::Provider(crate::provider::Reason::DailyQuotaExhausted, _) = stop {
            eprintln!(
                "the per-day quota is used up: retrying today is pointless; jobs stay pending for tomorrow's run"
            );
        }
    }
    Ok(s.exit)
}

async fn open_state(path: &Path) -> Result<Queue, Error> {
    Queue::open_existing(path).await?.ok_or_else(|| {
        Error::Usage(format!(
            "no state file at {} (run a campaign first)",
            path.display()
        ))
    })
}

async fn status(a: StatusArgs) -> Result<ExitCode, Error> {
    let mut name = a.campaign.clone();
    if let Some(dir) = a.campaign.as_deref().map(Path::new)
        && dir.join("campaign.toml").is_file()
    {
        let campaign = crate::campaign::Campaign::load(dir)?;
        name = Some(campaign.name.clone());
        if run::default_provider() == ProviderChoice::Gemini && a.state.exists() {
            let mut opts = RunOptions::new(dir);
            opts.provider = Some(ProviderChoice::Gemini);
            opts.out = a.out.clone();
            opts.state = a.state.clone();
            opts.ingest_only = true;
            let s = run::run(opts, CancellationToken::new()).await?;
            println!(
                "ingested what was ready: {} done, {} pending; manifest {}",
                s.totals.done,
                s.totals.pending,
                s.manifest_path.display()
            );
        }
    }
    let q = open_state(&a.state).await?;
    let campaigns = match &name {
        Some(c) => vec![c.clone()],
        None => q.campaigns().await?,
    };
    for c in campaigns {
        let s = q.status(Some(&c)).await?;
        let states: Vec<String> = s.by_state.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("{c}: {}", states.join(", "));
        for (display, remote, state) in &s.open_batches {
            println!(
                "  batch {} ({}) {state}",
                remote.as_deref().unwrap_or("-"),
                display
            );
        }
        println!("  spent so far: ${:.4}", s.spent_usd);
    }
    Ok(ExitCode::Success)
}

async fn cancel(a: CancelArgs) -> Result<ExitCode, Error> {
    let campaign = crate::campaign::Campaign::load(&a.campaign_dir)?;
    let q = open_state(&a.state).await?;
    let provider = run::make_provider(ProviderChoice::Gemini, &campaign)?;
    let api = provider
        .batch()
        .ok_or_else(|| Error::Internal("gemini provider has no batch API".into()))?;
    let names = run::batch::cancel_all(&q, api, &campaign.name).await?;
    for n in &names {
        println!("cancelled {n}");
    }
    println!(
        "{} batch(es) cancelled; their jobs are pending again",
        names.len()
    );
    Ok(ExitCode::Success)
}

async fn retry(a: RetryArgs) -> Result<ExitCode, Error> {
    if !a.failed && !a.blocked {
        return Err(Error::Usage(
            "say which jobs to requeue: --failed, --blocked, or both".into(),
        ));
    }
    let q = open_state(&a.state).await?;
    let n = q.requeue(&a.campaign, a.failed, a.blocked).await?;
    println!("{n} job(s) requeued; run the campaign to generate them");
    Ok(ExitCode::Success)
}

async fn emulate(a: EmulateArgs) -> Result<ExitCode, Error> {
    let faults = match &a.faults {
        Some(p) => crate::emulator::Faults::from_toml_file(p).map_err(Error::Usage)?,
        None => crate::emulator::Faults::default(),
    };
    let config = crate::emulator::EmulatorConfig {
        seed: a.seed,
        api_key: a.api_key,
        faults,
    };
    let handle = crate::emulator::spawn(config, a.port)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on 127.0.0.1:{}: {e}", a.port)))?;
    println!("Gemini emulator listening on {}", handle.base_url());
    println!("  export GOOGLE_GEMINI_BASE_URL={}", handle.base_url());
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
    Ok(ExitCode::Success)
}
