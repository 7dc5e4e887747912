//! The command line: argument types, one file per subcommand, the
//! environment read once (here, nowhere else), and text or JSON output. The
//! binary parses, calls [`main_with`], and exits with the returned code.

mod approve;
mod cancel;
mod compare;
#[cfg(feature = "emulator")]
mod emulate;
mod env;
mod plan;
mod retry;
mod review;
mod run;
mod status;
mod verify;
mod worker;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::assets::OutputTarget;
use crate::domain::{Error, ExitCode};

/// `--out`, parsed before anything is read or written. Parsed here rather
/// than by clap so a rejected value is never echoed back (it may hold a
/// credential someone pasted into the URL).
fn output_target(raw: &str) -> Result<OutputTarget, Error> {
    raw.parse().map_err(Error::Usage)
}
use crate::store::{DEFAULT_STATE, StateLocation, Store};

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
    /// Validate, plan and queue a campaign for workers; send nothing.
    Enqueue(EnqueueArgs),
    /// Serve the queued jobs of every campaign in the state until stopped
    /// (SIGTERM or Ctrl-C drains, as for run).
    Worker(WorkerArgs),
    /// Rebuild a campaign's manifest, approved manifest and review page
    /// from the state alone.
    Manifest(ManifestArgs),
    /// Jobs by state, batches in flight and spend so far.
    Status(StatusArgs),
    /// Cancel a campaign's remote batches; their jobs return to pending.
    Cancel(CancelArgs),
    /// Requeue failed and/or blocked jobs, or redo fallbacks with the primary model.
    Retry(RetryArgs),
    /// Rebuild the review page (OUT/<campaign>/review/index.html) from the
    /// state, or `review import` a decisions spreadsheet.
    Review(ReviewArgs),
    /// Approve assets: paths as in manifest.json, or globs over them.
    Approve(ApproveArgs),
    /// Reject assets, with a note saying what to fix.
    Reject(RejectArgs),
    /// Make a sample of the campaign with each of several models, side by
    /// side in `adloc review serve` (/compare/), with a summary per variant.
    Compare(CompareArgs),
    /// Check every file the manifest lists: sha256, IPTC AI marking and
    /// the C2PA manifest (trust against ADLOC_C2PA_TRUST_ANCHORS when set).
    Verify(VerifyArgs),
    /// Serve a Gemini- and OpenAI-compatible emulator on 127.0.0.1 for offline rehearsal.
    #[cfg(feature = "emulator")]
    Emulate(EmulateArgs),
}

/// `adloc plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The campaign folder (holds campaign.toml).
    pub campaign_dir: PathBuf,
    /// State to compare against: a SQLite file, or `postgres://…` (also
    /// `ADLOC_DATABASE_URL`).
    #[arg(long, env = "ADLOC_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_STATE)]
    pub state: StateLocation,
}

/// Provider names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    /// Local proof renderer (no network, no key, no cost).
    Local,
    /// Google Gemini only (needs GEMINI_API_KEY or GOOGLE_API_KEY).
    Gemini,
    /// OpenAI GPT Image only (needs OPENAI_API_KEY).
    Openai,
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
    /// Provider (default: each variant's model decides among the vendors with
    /// an API key; local when no key is set).
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// Override the campaign's mode.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Output root; assets go to OUT/<campaign>/. A folder, or a bucket:
    /// s3://bucket/prefix (S3 or AWS_ENDPOINT_URL) or gs://bucket/prefix,
    /// staged beside the state file and uploaded with the manifest last.
    #[arg(long, default_value = "out", value_name = "DIR|s3://…|gs://…")]
    pub out: String,
    /// State: a SQLite file, or a PostgreSQL URL `postgres://…` (also
    /// `ADLOC_DATABASE_URL`; the password is never printed).
    #[arg(long, env = "ADLOC_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_STATE)]
    pub state: StateLocation,
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

/// `adloc enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The campaign folder (holds campaign.toml).
    pub campaign_dir: PathBuf,
    /// Provider the budget check prices for (default as for run).
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// The mode workers use for this campaign (default: the campaign's).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// State: a SQLite file, or a PostgreSQL URL `postgres://…` (also
    /// `ADLOC_DATABASE_URL`; the password is never printed).
    #[arg(long, env = "ADLOC_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_STATE)]
    pub state: StateLocation,
    /// Refuse to enqueue (exit 4) when the estimate exceeds this.
    #[arg(long, value_name = "USD")]
    pub max_spend: Option<f64>,
}

/// `adloc worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Serve only this campaign (repeatable; default: every campaign).
    #[arg(long, value_name = "NAME")]
    pub campaign: Vec<String>,
    /// Realtime calls in flight at most, per vendor.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Output root, as for run.
    #[arg(long, default_value = "out", value_name = "DIR|s3://…|gs://…")]
    pub out: String,
    /// State: a SQLite file, or a PostgreSQL URL `postgres://…` (also
    /// `ADLOC_DATABASE_URL`; the password is never printed).
    #[arg(long, env = "ADLOC_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_STATE)]
    pub state: StateLocation,
    /// Provider (default as for run).
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// Stop each pass when spend reaches this (USD).
    #[arg(long, value_name = "USD")]
    pub max_spend: Option<f64>,
    /// Exit when no served campaign has work left, instead of waiting for more.
    #[arg(long)]
    pub until_idle: bool,
    /// How often an idle worker looks for work, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub poll_ms: u64,
}

/// `adloc manifest`.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// Campaign name, or its folder.
    pub campaign: String,
    /// State: a SQLite file, or a PostgreSQL URL `postgres://…` (also
    /// `ADLOC_DATABASE_URL`; the password is never printed).
    #[arg(long, env = "ADLOC_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_STATE)]
    pub state: StateLocation,
    /// Output root, as for run.
    #[arg(long, default_value = "out", value_name = "DIR|s3://…|gs://…")]
    pub out: String,
}

/// `adloc verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Campaign name, or its folder.
    pub campaign: String,
    /// Output root the campaign was delivered to, as for run: a folder,
    /// or the bucket itself (`s3://…`, `gs://…`; credentials from the
    /// environment), read without the state or the staging tree.
    #[arg(long, default_value = "out", value_name = "DIR|s3://…|gs://…")]
    pub out: String,
}

/// `adloc status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Campaign name, or a campaign folder: with a folder (and an API key)
    /// status also polls the campaign's batches and ingests what finished.
    /// Default: all campaigns in the state file.
    pub campaign: Option<String>,
    /// State: a SQLite file, or a PostgreSQL URL `postgres://…` (also
    /// `ADLOC_DATABASE_URL`; the password is never printed).
    #[arg(long, env = "ADLOC_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_STATE)]
    pub state: StateLocation,
    /// Output root (where ingested images go), as for `run`.
    #[arg(long, default_value = "out", value_name = "DIR|s3://…|gs://…")]
    pub out: String,
}

/// `adloc cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The campaign folder.
    pub campaign_dir: PathBuf,
    /// State: a SQLite file, or a PostgreSQL URL `postgres://…` (also
    /// `ADLOC_DATABASE_URL`; the password is never printed).
    #[arg(long, env = "ADLOC_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_STATE)]
    pub state: StateLocation,
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
    /// Regenerate with the primary model what a fallback model made (or
    /// failed to make); the next run asks the primary again.
    #[arg(long)]
    pub fallbacks: bool,
    /// State: a SQLite file, or a PostgreSQL URL `postgres://…` (also
    /// `ADLOC_DATABASE_URL`; the password is never printed).
    #[arg(long, env = "ADLOC_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_STATE)]
    pub state: StateLocation,
}

/// Where a campaign's state and output are, for the review commands.
#[derive(Debug, Args)]
pub struct StateOut {
    /// State: a SQLite file, or a PostgreSQL URL `postgres://…` (also
    /// `ADLOC_DATABASE_URL`; the password is never printed).
    #[arg(long, env = "ADLOC_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_STATE)]
    pub state: StateLocation,
    /// Output root, as for `run` (the campaign's files are in OUT/<campaign>/).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

/// `adloc review`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReviewArgs {
    /// `import`: take decisions in bulk from a spreadsheet.
    #[command(subcommand)]
    pub action: Option<ReviewAction>,
    /// Campaign name, or its folder (holds campaign.toml).
    #[arg(required = true)]
    pub campaign: Option<String>,
    /// Where the state and the output are.
    #[command(flatten)]
    pub at: StateOut,
}

/// `adloc review` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReviewAction {
    /// Apply a decisions CSV (columns asset,decision,note,by): every row is
    /// checked first, and nothing is applied when any row is bad.
    Import(ImportArgs),
    /// Serve the review page with approve, reject and undo until stopped.
    Serve(ServeArgs),
}

/// `adloc review serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Campaign name, or its folder.
    pub campaign: String,
    /// Address to listen on. A loopback address needs no login; any other
    /// needs reviewer tokens (ADLOC_REVIEW_TOKENS names a file of
    /// `token = "name"` lines, or ADLOC_REVIEW_TOKEN holds one).
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    /// State: a SQLite file, or a PostgreSQL URL `postgres://…` (also
    /// `ADLOC_DATABASE_URL`; the password is never printed).
    #[arg(long, env = "ADLOC_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_STATE)]
    pub state: StateLocation,
    /// Output root, as for `run`: a folder, or the bucket the campaign was
    /// delivered to (`s3://…`, `gs://…`; the run's staged copy beside the
    /// state is served, and each decision's manifest and page are uploaded).
    #[arg(long, default_value = "out", value_name = "DIR|s3://…|gs://…")]
    pub out: String,
}

/// `adloc review import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Campaign name, or its folder.
    pub campaign: String,
    /// The decisions file.
    pub file: PathBuf,
    /// Reviewer for rows whose `by` is empty (default: $ADLOC_REVIEWER, else $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Where the state and the output are.
    #[command(flatten)]
    pub at: StateOut,
}

/// `adloc approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Campaign name, or its folder.
    pub campaign: String,
    /// Asset paths as in manifest.json (`ja-JP/hero/row-id`, extension
    /// optional) or globs over them (`*/hero/row-id`, `de-DE/*/*`).
    #[arg(required = true, value_name = "SELECTOR")]
    pub selectors: Vec<String>,
    /// Reviewer (default: $ADLOC_REVIEWER, else $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Optional note.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// Where the state and the output are.
    #[command(flatten)]
    pub at: StateOut,
}

/// `adloc reject`.
#[derive(Debug, Args)]
pub struct RejectArgs {
    /// Campaign name, or its folder.
    pub campaign: String,
    /// Asset paths or globs, as for `approve`.
    #[arg(required = true, value_name = "SELECTOR")]
    pub selectors: Vec<String>,
    /// What is wrong (required).
    #[arg(long, value_name = "TEXT", required = true)]
    pub note: String,
    /// Reviewer (default: $ADLOC_REVIEWER, else $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Where the state and the output are.
    #[command(flatten)]
    pub at: StateOut,
}

/// `adloc compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The campaign folder (holds campaign.toml).
    pub campaign_dir: PathBuf,
    /// The models to compare, comma-separated (at least two).
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        value_name = "MODEL,MODEL[,…]"
    )]
    pub models: Vec<String>,
    /// Rows of the sample (the first N of the file).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rows: u32,
    /// Locales of the sample, comma-separated (default: the base locale).
    #[arg(long, value_delimiter = ',', value_name = "TAG,…")]
    pub locales: Vec<String>,
    /// Variants of the sample, comma-separated (default: every variant).
    #[arg(long, value_delimiter = ',', value_name = "NAME,…")]
    pub variants: Vec<String>,
    /// Output root, as for run (each sample goes to OUT/<campaign>--compare--<model>/).
    #[arg(long, default_value = "out", value_name = "DIR|s3://…|gs://…")]
    pub out: String,
    /// State, as for run.
    #[arg(long, env = "ADLOC_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_STATE)]
    pub state: StateLocation,
    /// Realtime calls in flight at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Refuse to start (exit 4) when all models' estimates together exceed this.
    #[arg(long, value_name = "USD")]
    pub max_spend: Option<f64>,
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
        // c2pa-rs warns on every context it builds that its thumbnail
        // feature is off (we never ask for thumbnails): errors only.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("adloc=info,c2pa=error,warn"));
    // Colour only for a person at a terminal: cron mail and CI logs must not
    // fill with escape codes, and NO_COLOR (no-color.org) always wins.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && !env::no_color())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

/// Run the CLI; returns the process exit code.
pub async fn main_with(cli: Cli) -> ExitCode {
    init_logging(cli.log_format);
    // The signer is checked before anything is bought, by every command
    // that may write delivered files (and by `plan`, which says so).
    if matches!(
        cli.command,
        Command::Plan(_) | Command::Run(_) | Command::Worker(_) | Command::Retry(_)
    ) {
        match env::c2pa_signer() {
            Ok(Some(signer)) => crate::assets::provenance::install_signer(signer),
            Ok(None) => {}
            Err(e) => {
                eprintln!("{}", render_error(&e, cli.log_format));
                return e.exit_code();
            }
        }
    }
    let result = match cli.command {
        Command::Plan(a) => plan::plan(a).await,
        Command::Run(a) => run::run_cmd(a, cli.log_format).await,
        Command::Enqueue(a) => worker::enqueue(a).await,
        Command::Worker(a) => worker::worker(a).await,
        Command::Manifest(a) => worker::manifest(a).await,
        Command::Status(a) => status::status(a).await,
        Command::Cancel(a) => cancel::cancel(a).await,
        Command::Retry(a) => retry::retry(a).await,
        Command::Review(a) => review::review(a).await,
        Command::Approve(a) => approve::approve(a).await,
        Command::Reject(a) => approve::reject(a).await,
        Command::Compare(a) => compare::compare(a).await,
        Command::Verify(a) => verify::verify(a).await,
        #[cfg(feature = "emulator")]
        Command::Emulate(a) => emulate::emulate(a).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", render_error(&e, cli.log_format));
            e.exit_code()
        }
    }
}

/// The final error: text for people, one JSON object (`code`, `message`,
/// `exit`) under `--log-format json`, so a scheduler never has to parse prose.
fn render_error(e: &Error, format: LogFormat) -> String {
    let message = match e {
        Error::Input(errs) => format!("{errs}\nnothing was written or sent"),
        other => format!("error: {other}"),
    };
    match format {
        LogFormat::Text => message,
        LogFormat::Json => serde_json::json!({
            "level": "ERROR",
            "code": e.reason().code(),
            "message": match e {
                Error::Input(errs) => format!("{errs}\nnothing was written or sent"),
                other => other.to_string(),
            },
            "exit": e.exit_code().code(),
        })
        .to_string(),
    }
}

async fn open_state(location: &StateLocation) -> Result<Store, Error> {
    Store::open_existing(location).await?.ok_or_else(|| {
        Error::Usage(format!(
            "no state file at {location} (run a campaign first)"
        ))
    })
}

/// The campaign name of a CAMPAIGN argument: a folder holding
/// campaign.toml gives the name it declares, anything else is the name.
fn campaign_name(arg: &str) -> Result<String, Error> {
    let dir = Path::new(arg);
    if dir.join("campaign.toml").is_file() {
        Ok(crate::campaign::Campaign::load(dir)?.name)
    } else {
        Ok(arg.to_string())
    }
}
