//! The store: runs, jobs, attempts and batches, in a SQLite file or a
//! PostgreSQL database ([`StateLocation`]). The only state shared between
//! stages, and between processes (on one host or several) working on the
//! same state. Every statement is written once with `$N` placeholders;
//! what the two dialects do differently lives in [`Dialect`].
//!
//! Rules this module keeps:
//! - every job state change is one transaction, written as
//!   `UPDATE … WHERE state IN (legal from-states)` (see [`JobState::from_states`]);
//! - claims are one `UPDATE … RETURNING` statement, so two runners never get
//!   the same job (on PostgreSQL its rows are picked `FOR UPDATE SKIP
//!   LOCKED`); multi-statement writes take the write lock first
//!   (`BEGIN IMMEDIATE`, or PostgreSQL's advisory lock: [`Store::write_tx`]);
//! - SQLite: `synchronous = FULL`: a commit survives power loss, not only a process
//!   kill. Under WAL, NORMAL could lose the last commits on power loss, and the
//!   last commit may be "batch X is being created": losing it could pay twice.

mod approvals;
mod batches;
mod compare;
mod composites;
mod copy_edits;
mod location;
mod migrate;
mod placements;
mod publication;
mod qa;
mod renditions;
mod revisions;
mod settle_group;
mod sources;
mod uploads;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, AssertSqlSafe, ConnectOptions, Connection, Row};

pub use approvals::{DecisionRow, NewDecision};
pub use batches::{BatchJob, BatchRow};
pub use compare::{NewVote, VoteRow};
pub use composites::{CompositeKey, CompositeOutcome, CompositeRow};
pub use location::{DEFAULT_STATE, DatabaseUrl, StateLocation};
pub use placements::{
    PlacementEntry, PlacementKey, PlacementOutcome, SafeAreaEntry, StoredPlacements,
};
pub use publication::Publication;
pub use qa::{ClaimedRead, ImageQa, QaRecord, QaVerdict, ReadBatchRow, ReadSettlement};
pub use renditions::{RenditionEntry, RenditionFailure};
#[cfg(test)]
pub(crate) use revisions::PastTurn;
pub use revisions::{PendingEdit, RevisionEntry};

use crate::domain::{
    AspectRatio, AssetRecord, AttemptOutcome, BillingMode, Error, ImageSize, JobKey, JobState,
    Locale, ModelId, ProviderKind, Reason, Result, RowId, RunOutcome, Target, now_ms,
};
use crate::expand::JobSpec;

/// A run's id in the `runs` table.
pub type RunId = i64;
/// A job's row id.
pub type JobId = i64;

/// How an art job's target is stored in the `locale` column: BCP-47
/// "undetermined". Only the store knows this spelling; everywhere else art
/// is [`Target::Art`].
const ART_LOCALE_COLUMN: &str = "und";

/// The `locale` column value of a target.
/// Jobs per multi-row INSERT: 17 columns each stays far below SQLite's
/// 32,766 and PostgreSQL's 65,535 bound parameters.
const INSERT_ROWS: usize = 500;

fn locale_column(t: &Target) -> &str {
    match t {
        Target::Locale(l) => l.tag(),
        Target::Art => ART_LOCALE_COLUMN,
    }
}

/// SQL list literal of the states a job may move to `to` from, e.g.
/// `('pending')` (see [`JobState::from_states`]).
fn from_states_sql(to: JobState) -> String {
    let names: Vec<String> = JobState::from_states(to)
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("({})", names.join(", "))
}

/// `AND model IN (…)` for a non-empty list of model ids. Model ids come from
/// the model table (letters, digits, `.`, `-`), never from input text; they
/// are quoted anyway.
/// The shortest heartbeat silence after which a runner counts as dead
/// (heartbeats come every 5 s).
const RUN_SILENCE_MIN: Duration = Duration::from_secs(30);

/// Where a job held under a lease returns when its lease is given up or
/// lost: an image call to pending, a read to `checking`.
const IN_FLIGHT_RETURNS: [(JobState, JobState); 2] = [
    (JobState::InFlight, JobState::Pending),
    (JobState::ReadInFlight, JobState::Checking),
];

/// The condition a settlement of a job held under a lease adds to its
/// `UPDATE`: a job in flight is settled only by the run holding its lease
/// (`run`, the placeholder given). A runner whose lease expired and whose
/// job another runner has claimed since may still get its answer back; it
/// must not overwrite the newer claim's outcome (its paid call is still
/// recorded as an attempt: [`Store::paid_by_this_settlement`]).
fn lease_held(run: &str) -> String {
    format!("(state NOT IN ('in_flight', 'read_in_flight') OR lease_run = {run})")
}

fn model_filter(models: &[String]) -> String {
    if models.is_empty() {
        return String::new();
    }
    let list: Vec<String> = models
        .iter()
        .map(|m| format!("'{}'", m.replace('\'', "''")))
        .collect();
    format!("AND model IN ({})", list.join(", "))
}

/// Turns stored text back into typed values. Locales are parsed once per
/// distinct tag: parsing is ICU work and a campaign has few locales but may
/// have a hundred thousand rows.
#[derive(Default)]
struct Decoder {
    locales: HashMap<String, Locale>,
}

impl Decoder {
    fn target(&mut self, column: &str) -> Result<Target> {
        if column == ART_LOCALE_COLUMN {
            return Ok(Target::Art);
        }
        if let Some(l) = self.locales.get(column) {
            return Ok(Target::Locale(l.clone()));
        }
        let l = Locale::parse(column)
            .map_err(|e| Error::Internal(format!("stored locale `{column}`: {e}")))?;
        self.locales.insert(column.to_string(), l.clone());
        Ok(Target::Locale(l))
    }

    /// The key stored in columns `first..first + 4` (campaign, row id,
    /// locale, variant) of a query row.
    fn key(&mut self, r: &sqlx::any::AnyRow, first: usize) -> Result<JobKey> {
        let row: String = r.get(first + 1);
        Ok(JobKey {
            campaign: r.get(first),
            row: RowId::parse(&row).map_err(|e| Error::Internal(format!("stored row id: {e}")))?,
            target: self.target(&r.get::<String, _>(first + 2))?,
            variant: r.get(first + 3),
        })
    }
}

/// The `copy_json` column of a job or composite.
fn copy_json(copy: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(copy).map_err(|e| Error::Internal(e.to_string()))
}

/// Read back a `copy_json` column (NULL for rows written before copy was
/// recorded).
fn copy_from_column(text: Option<String>) -> Result<BTreeMap<String, String>> {
    match text {
        None => Ok(BTreeMap::new()),
        Some(t) => {
            serde_json::from_str(&t).map_err(|e| Error::Internal(format!("stored copy `{t}`: {e}")))
        }
    }
}

/// Parse a stored value of a typed column.
fn parsed<T: FromStr>(what: &str, s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| Error::Internal(format!("stored {what} `{s}`: {e}")))
}

/// A model id read back from the state ([`ModelId::from_stored`]: a
/// shut-down id stored before its shutdown still reads).
fn stored_model(s: &str) -> Result<ModelId> {
    ModelId::from_stored(s).map_err(|e| Error::Internal(format!("stored model `{s}`: {e}")))
}

/// The store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    location: StateLocation,
    dialect: Dialect,
    /// Settlements waiting for one shared commit ([`Store::settle`]).
    settles: std::sync::Arc<settle_group::SettleGroup>,
}

/// What a sync of the expanded jobs against the store found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Identities never seen before.
    pub new: usize,
    /// Identities whose request changed (old job superseded).
    pub changed: usize,
    /// Identities whose request is the same as stored.
    pub unchanged: usize,
    /// Live jobs whose identity left the campaign.
    pub retired: usize,
    /// Jobs that will be sent to a provider (pending after the sync).
    pub to_generate: usize,
    /// Of the unchanged ones, how many are already done.
    pub already_done: usize,
    /// Of the unchanged ones, how many sit in a remote batch already.
    pub in_batch: usize,
}

/// A sync report plus, per spec, whether it will be sent to a provider.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    /// The counts.
    pub report: SyncReport,
    /// Per spec (same order): true when the job still needs an image.
    pub generate: Vec<bool>,
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Row id.
    pub id: JobId,
    /// Identity.
    pub key: JobKey,
    /// Attempts including this one.
    pub attempts: u32,
    /// The request hash the job was queued with.
    pub request_hash: String,
    /// The model to ask (the primary, or a fallback the job was moved to).
    pub model: ModelId,
    /// Copy QA fell back to overlay: ask for the copy-free art and typeset
    /// the copy onto it.
    pub overlay: bool,
}

/// One call's outcome, for the attempts ledger.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// How the call was bought.
    pub mode: BillingMode,
    /// When the call started.
    pub started_at: i64,
    /// When the call returned (not when it was recorded: under load the
    /// write lock can take a while, and retry delays count from here).
    pub finished_at: i64,
    /// What the call did.
    pub outcome: AttemptOutcome,
    /// Reason for failures.
    pub reason: Option<Reason>,
    /// HTTP status if any.
    pub http_status: Option<u16>,
    /// Detail text.
    pub detail: Option<String>,
    /// What this call cost.
    pub cost_usd: f64,
    /// A copy-QA read rather than an image.
    pub read: bool,
}

/// How a finished call leaves its job: a pure decision (made by the run),
/// applied by [`Store::settle`] in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// The asset is written: the job is done, or (copy QA) its copy is
    /// to be read back first.
    Done {
        /// Copy QA for this image.
        qa: ImageQa,
        /// Who made it.
        provider: ProviderKind,
        /// The file.
        asset: AssetRecord,
        /// What it cost.
        cost_usd: f64,
        /// The provider's token usage, as JSON.
        usage_json: Option<String>,
        /// Gemini's model turn that made the image (its parts with their
        /// signatures), kept for a later edit.
        model_turn: Option<crate::domain::ModelTurn>,
        /// For an edit: where the image it replaced is kept (relative to
        /// the campaign output); it becomes a row of the asset's history.
        replaced: Option<String>,
    },
    /// Back to pending, not before `not_before` (ms), keeping the error.
    Retry {
        /// Earliest next attempt.
        not_before: Option<i64>,
        /// Why the attempt failed.
        reason: Reason,
        /// What the provider said.
        detail: String,
    },
    /// Terminal: failed, or blocked by the provider.
    Fail {
        /// Blocked (safety, policy) rather than failed.
        blocked: bool,
        /// Why.
        reason: Reason,
        /// What happened.
        detail: String,
        /// The provider's own block reason.
        block_reason: Option<String>,
    },
    /// Back to pending without counting the attempt: the failure was the
    /// run's (bad key, quota), not the job's, or the job was not ours.
    Requeue,
}

impl Settlement {
    /// The state the job moves to.
    pub fn target_state(&self) -> JobState {
        match self {
            Settlement::Done {
                qa: ImageQa::Check, ..
            } => JobState::Checking,
            Settlement::Done { .. } => JobState::Done,
            Settlement::Retry { .. } | Settlement::Requeue => JobState::Pending,
            Settlement::Fail { blocked: true, .. } => JobState::Blocked,
            Settlement::Fail { blocked: false, .. } => JobState::Failed,
        }
    }
}

/// A job as the manifest and status see it.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// Row id.
    pub id: JobId,
    /// Identity.
    pub key: JobKey,
    /// State.
    pub state: JobState,
    /// Resolved locale.
    pub resolved_locale: String,
    /// Per-column resolution (JSON object text).
    pub resolution: String,
    /// Request hash.
    pub request_hash: String,
    /// Model id.
    pub model: ModelId,
    /// Aspect ratio.
    pub aspect_ratio: AspectRatio,
    /// Size tier.
    pub image_size: ImageSize,
    /// Prompt text.
    pub prompt: String,
    /// Calls made.
    pub attempts: u32,
    /// Provider that made the asset.
    pub provider: Option<ProviderKind>,
    /// Billing mode of the asset.
    pub mode: Option<BillingMode>,
    /// The asset, when done (or retired with an asset).
    pub asset: Option<AssetRecord>,
    /// Cost of the asset.
    pub cost_usd: Option<f64>,
    /// Failure reason.
    pub error_code: Option<Reason>,
    /// Failure detail.
    pub error_detail: Option<String>,
    /// Provider block reason.
    pub block_reason: Option<String>,
    /// When the job reached its terminal state (ms).
    pub finished_at: Option<i64>,
    /// Remote batch id, if any.
    pub batch_id: Option<i64>,
    /// The model the job was moved off, when a fallback model made it.
    pub fallback_from: Option<ModelId>,
    /// Why it was moved.
    pub fallback_reason: Option<Reason>,
    /// Its copy QA so far (`None` when its copy was never read or skipped).
    pub qa: Option<QaRecord>,
    /// The copy meant to be in the image, per column (empty for art, and
    /// for jobs queued before copy was recorded).
    pub copy: BTreeMap<String, String>,
    /// The revision of its current image: 1, plus one per edit.
    pub revision: u32,
    /// The image the current one was edited from (`None` for revision 1).
    pub parent_sha256: Option<String>,
}

/// Everything the store knows about one campaign, typed: the read model the
/// manifest is built from.
#[derive(Debug, Clone, Default)]
pub struct CampaignState {
    /// Every job except superseded history.
    pub jobs: Vec<JobRow>,
    /// Done, failed and retired composites, each with its art job.
    pub composites: Vec<CompositeRow>,
    /// Stored renditions by job.
    pub renditions: HashMap<JobId, Vec<RenditionEntry>>,
    /// Renditions that could not be made.
    pub rendition_failures: Vec<RenditionFailure>,
    /// Every reviewer decision, oldest first.
    pub decisions: Vec<DecisionRow>,
    /// Per job, the images edits replaced, oldest first.
    pub revisions: HashMap<JobId, Vec<RevisionEntry>>,
    /// Placement files by asset, and the placements that failed.
    pub placements: StoredPlacements,
    /// When the reading began (ms since the epoch): a manifest built from
    /// this state shows every change made before it.
    pub read_at_ms: i64,
}

/// Counts for `adloc status`.
#[derive(Debug, Clone, Default)]
pub struct StatusCounts {
    /// Jobs per state.
    pub by_state: BTreeMap<String, u64>,
    /// Batches not finished yet: (display name, remote name, state).
    pub open_batches: Vec<(String, Option<String>, crate::domain::BatchState)>,
    /// Spend so far in USD (all attempts).
    pub spent_usd: f64,
}

/// The SQL dialect of the backend a store talks to. Statements are written
/// once, with `$N` placeholders (SQLite reads `$N` as argument N, as
/// PostgreSQL does); what differs between the two lives here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: one writer at a time (the database write lock).
    Sqlite,
    /// PostgreSQL: row locks; multi-statement writers take one advisory lock.
    Postgres,
}

/// The advisory lock every multi-statement write transaction takes on
/// PostgreSQL (`pg_advisory_xact_lock`), so they run one at a time, as
/// SQLite's write lock makes them. Any constant not used by sqlx's
/// migration lock will do; this one spells "adloc".
const WRITE_LOCK_KEY: i64 = 0x0061_646c_6f63;

impl Dialect {
    /// A claim, one statement: move the jobs `pick` selects (`SELECT id
    /// FROM jobs … LIMIT n`) to `to` with `set`, if they are still in a
    /// state `to` may come from, returning `returning`.
    ///
    /// PostgreSQL: the pick runs once, in a materialized CTE, with `FOR
    /// UPDATE SKIP LOCKED`, so concurrent claimers lock disjoint rows
    /// instead of queueing on the same ones. (As a plain `IN (subquery)`
    /// the planner may run the locking subquery again for every row,
    /// each run skipping the rows the previous one locked, and claim far
    /// more than `n`.) SQLite has one writer at a time already.
    fn claim_sql(self, set: &str, pick: &str, to: JobState, returning: &str) -> String {
        let from = from_states_sql(to);
        match self {
            Dialect::Sqlite => format!(
                "UPDATE jobs SET {set} WHERE id IN ({pick}) AND state IN {from} RETURNING {returning}"
            ),
            Dialect::Postgres => format!(
                "WITH picked AS MATERIALIZED ({pick} FOR UPDATE SKIP LOCKED)
                 UPDATE jobs SET {set} WHERE id IN (SELECT id FROM picked) AND state IN {from}
                 RETURNING {returning}"
            ),
        }
    }

    /// Appended to a `SELECT` inside a write transaction whose rows the
    /// transaction goes on to update (batch assignment): on PostgreSQL a
    /// claim, which does not take the advisory write lock, then skips them
    /// instead of taking one between the read and the update. SQLite's
    /// write lock already keeps every other writer out.
    fn lock_rows(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
}

fn db_err(location: &StateLocation) -> impl Fn(sqlx::Error) -> Error + '_ {
    move |source| {
        let message = source.to_string();
        Error::Db {
            location: location.to_string(),
            message: match location {
                StateLocation::Postgres(url) => url.scrub(&message),
                StateLocation::Sqlite(_) => message,
            },
            source,
        }
    }
}

/// An `i64` for a database column from an unsigned count or size; values
/// past `i64::MAX` are an error, never wrapped.
fn to_i64<T>(what: &str, v: T) -> Result<i64>
where
    T: TryInto<i64> + Copy + std::fmt::Display,
{
    v.try_into()
        .map_err(|_| Error::Internal(format!("{what} {v} does not fit the state database")))
}

/// `now + lease` in ms, saturating (a lease longer than i64 ms is forever).
/// The heartbeat time before which a runner counts as dead. Heartbeats
/// come every few seconds; a lease shorter than a few of them must not
/// make a slow heartbeat look like a dead runner.
fn silent_since(now: i64, lease: Duration) -> i64 {
    let stale = lease.max(RUN_SILENCE_MIN);
    now.saturating_sub(i64::try_from(stale.as_millis()).unwrap_or(i64::MAX))
}

fn lease_until(now: i64, lease: Duration) -> i64 {
    now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

impl Store {
    /// Open (creating if needed) the state and run migrations: a SQLite
    /// file, or a PostgreSQL database (whose tables are created on first
    /// use; the database itself must exist).
    pub async fn open(location: &StateLocation) -> Result<Store> {
        sqlx::any::install_default_drivers();
        match location {
            StateLocation::Sqlite(path) => Store::open_sqlite(location, path).await,
            StateLocation::Postgres(url) => Store::open_postgres(location, url).await,
        }
    }

    /// [`Store::open`] for a SQLite file path.
    pub async fn open_path(path: &Path) -> Result<Store> {
        Store::open(&StateLocation::Sqlite(path.to_path_buf())).await
    }

    async fn open_sqlite(location: &StateLocation, path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        // The Any driver builds its SQLite options from a URL, which holds
        // the file name and the open mode but none of the pragmas: those
        // are set on every new connection below. `synchronous = FULL` on
        // every connection is what makes a commit survive power loss (see
        // the module doc): never drop it.
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        let opts = AnyConnectOptions::from_url(&url).map_err(db_err(location))?;
        // Two runners starting at once on a new state file would both try to
        // apply the migrations; an exclusive lock beside the database makes
        // the second wait and then find them applied.
        let lock_path = path.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    for pragma in [
                        "PRAGMA busy_timeout = 30000",
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = FULL",
                        "PRAGMA foreign_keys = ON",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(db_err(location))?;
        {
            let mut conn = pool.acquire().await.map_err(db_err(location))?;
            migrate::run(&sqlx::migrate!("./migrations/sqlite"), &mut conn).await?;
        }
        drop(lock);
        Ok(Store {
            pool,
            location: location.clone(),
            dialect: Dialect::Sqlite,
            settles: std::sync::Arc::default(),
        })
    }

    async fn open_postgres(location: &StateLocation, url: &DatabaseUrl) -> Result<Store> {
        let opts = AnyConnectOptions::from_str(url.expose()).map_err(db_err(location))?;
        // One connection first, so a wrong host, password or database fails
        // at once with the server's reason; the pool would retry a refused
        // connection until its acquire timeout and then only say it timed out.
        sqlx::AnyConnection::connect_with(&opts)
            .await
            .map_err(db_err(location))?
            .close()
            .await
            .map_err(db_err(location))?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts)
            .await
            .map_err(db_err(location))?;
        // sqlx's migrator holds a session advisory lock while it applies
        // migrations, so two workers starting at once apply them once.
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(source) => db_err(location)(source),
                other => Error::Migrate(other),
            })?;
        Ok(Store {
            pool,
            location: location.clone(),
            dialect: Dialect::Postgres,
            settles: std::sync::Arc::default(),
        })
    }

    /// Open existing state without creating anything; `None` when there is
    /// no state file. A database is always opened (and its tables created
    /// if missing: an empty adloc database is no state yet).
    pub async fn open_existing(location: &StateLocation) -> Result<Option<Store>> {
        if !location.exists() {
            return Ok(None);
        }
        Store::open(location).await.map(Some)
    }

    /// Where the state is.
    pub fn location(&self) -> &StateLocation {
        &self.location
    }

    /// The backend's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn err(&self) -> impl Fn(sqlx::Error) -> Error + '_ {
        db_err(&self.location)
    }

    /// A write transaction that takes the write lock up front, so the
    /// reads it makes stay true until it commits. SQLite: a deferred
    /// transaction that reads first and writes later gets SQLITE_BUSY when
    /// another writer committed in between, without ever waiting on the
    /// busy timeout; `BEGIN IMMEDIATE` waits instead. PostgreSQL: one
    /// transaction-scoped advisory lock shared by every such transaction
    /// serializes them the same way. Every write that touches several job
    /// rows takes it, so two such writers never lock rows in different
    /// orders (no deadlocks); what does not take it touches one row, or is
    /// a claim, which skips locked rows instead of waiting on them.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.dialect {
            Dialect::Sqlite => self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(self.err()),
            Dialect::Postgres => {
                let mut tx = self.pool.begin().await.map_err(self.err())?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK_KEY)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err())?;
                Ok(tx)
            }
        }
    }

    /// Record the start of a run by this process.
    pub async fn start_run(&self, campaign: &str, provider: &str, mode: &str) -> Result<RunId> {
        let now = now_ms();
        let host = hostname();
        let row = sqlx::query(
            "INSERT INTO runs (campaign, provider, mode, pid, host, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(campaign)
        .bind(provider)
        .bind(mode)
        .bind(i64::from(std::process::id()))
        .bind(host)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(row.get(0))
    }

    /// Keep this run's leases alive.
    pub async fn heartbeat(&self, run: RunId, lease: Duration) -> Result<()> {
        let now = now_ms();
        // One transaction under the write lock: see [`Store::write_tx`] on
        // why every multi-row write takes it.
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE runs SET heartbeat_at = $1 WHERE id = $2")
            .bind(now)
            .bind(run)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        sqlx::query(
            "UPDATE jobs SET lease_expires_at = $1
             WHERE lease_run = $2 AND state IN ('in_flight', 'read_in_flight')",
        )
        .bind(lease_until(now, lease))
        .bind(run)
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        tx.commit().await.map_err(self.err())
    }

    /// Mark a run finished.
    pub async fn finish_run(&self, run: RunId, outcome: RunOutcome) -> Result<()> {
        self.finish_run_as(run, outcome.as_str()).await
    }

    async fn finish_run_as(&self, run: RunId, outcome: &str) -> Result<()> {
        sqlx::query("UPDATE runs SET finished_at = $1, outcome = $2 WHERE id = $3")
            .bind(now_ms())
            .bind(outcome)
            .bind(run)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Return the in-flight jobs of dead runners to pending. A job's lease
    /// names its runner (`lease_run`, a `runs` row with the runner's host
    /// and pid) and is renewed by that runner's heartbeat; a lease that ran
    /// out returns its job whatever host it was taken on. A runner is dead
    /// when its heartbeat is older than `lease` (it is then marked
    /// `expired`, which also frees the batches it was creating for another
    /// runner to look up), or, as a fast path on this host only, when its
    /// process is gone (so a rerun after `kill -9` resumes at once instead
    /// of waiting for the lease to run out). Process ids mean nothing
    /// across hosts and are never checked there. Returns how many jobs
    /// came back.
    pub async fn recover_orphans(&self, campaign: &str, lease: Duration) -> Result<u64> {
        self.end_dead_runs(campaign, lease).await?;
        let now = now_ms();
        let mut n = 0;
        // An image call in flight goes back to pending; a read in flight is
        // simply due again.
        let mut tx = self.write_tx().await?;
        for (from, to) in IN_FLIGHT_RETURNS {
            let sql = format!(
                "UPDATE jobs SET state = '{to}', lease_run = NULL, lease_expires_at = NULL, updated_at = $1
                 WHERE campaign = $2 AND state = '{from}' AND state IN {legal}
                   AND (lease_expires_at < $1
                        OR lease_run IN (SELECT id FROM runs WHERE finished_at IS NOT NULL))",
                legal = from_states_sql(to)
            );
            let res = sqlx::query(AssertSqlSafe(sql))
                .bind(now)
                .bind(campaign)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
            n += res.rows_affected();
        }
        tx.commit().await.map_err(self.err())?;
        Ok(n)
    }

    /// Mark finished the runs of `campaign` that died: silent for longer
    /// than `lease` (`expired`), or, on this host only, whose process is
    /// gone (`died`).
    async fn end_dead_runs(&self, campaign: &str, lease: Duration) -> Result<()> {
        let host = hostname();
        let me = i64::from(std::process::id());
        let now = now_ms();
        sqlx::query(
            "UPDATE runs SET finished_at = $1, outcome = 'expired'
             WHERE campaign = $2 AND finished_at IS NULL AND heartbeat_at < $3
               AND NOT (host = $4 AND pid = $5)",
        )
        .bind(now)
        .bind(campaign)
        .bind(silent_since(now, lease))
        .bind(&host)
        .bind(me)
        .execute(&self.pool)
        .await
        .map_err(self.err())?;
        let open: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT id, pid, host FROM runs WHERE finished_at IS NULL AND campaign = $1",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        for (id, pid, h) in open {
            if h == host && pid != me && !process_alive(pid) {
                self.finish_run_as(id, "died").await?;
            }
        }
        Ok(())
    }

    /// Compare the expanded jobs with the store without writing anything.
    pub async fn preview(&self, campaign: &str, specs: &[JobSpec]) -> Result<Planned> {
        let live = self.live_jobs(campaign).await?;
        let (report, plan) = compare(&live, specs);
        Ok(Planned {
            report,
            generate: plan.generate,
        })
    }

    /// The live jobs of `campaign` queued as a revision edit (a reviewer's
    /// note waiting to be sent).
    pub async fn queued_edits(&self, campaign: &str) -> Result<HashSet<JobId>> {
        let queued: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM jobs WHERE campaign = $1 AND edit_note IS NOT NULL
               AND state NOT IN ('superseded', 'retired')",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(queued.into_iter().map(|(id,)| id).collect())
    }

    /// Per spec (same order as `specs`, with `generate` from
    /// [`Store::preview`]): true when the run will buy an edit of the job's
    /// existing image rather than nothing, so estimates and the budget
    /// count it: a revision due (its image rejected with a note, queued or
    /// about to be), or a done `text = "edit"` locale whose base image will
    /// change (bought or revised), which is edited again.
    pub async fn planned_edits(
        &self,
        campaign: &str,
        specs: &[JobSpec],
        generate: &[bool],
    ) -> Result<Vec<bool>> {
        let live = self.live_jobs(campaign).await?;
        let mut due: std::collections::HashSet<JobId> = self
            .revisable(campaign)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        due.extend(self.queued_edits(campaign).await?);
        let current = |spec: &JobSpec| {
            live.get(&(
                spec.key.row.to_string(),
                locale_column(&spec.key.target).to_string(),
                spec.key.variant.clone(),
            ))
            .filter(|j| j.hash == spec.request_hash)
        };
        let mut edits: Vec<bool> = specs
            .iter()
            .map(|s| current(s).is_some_and(|j| due.contains(&j.id)))
            .collect();
        let index: HashMap<&JobKey, usize> =
            specs.iter().enumerate().map(|(i, s)| (&s.key, i)).collect();
        for (i, s) in specs.iter().enumerate() {
            let Some(edit) = &s.copy_edit else { continue };
            let base_changes = index
                .get(&edit.base)
                .is_some_and(|&b| generate.get(b).copied().unwrap_or(false) || edits[b]);
            if base_changes && current(s).is_some_and(|j| j.state == JobState::Done) {
                edits[i] = true;
            }
        }
        Ok(edits)
    }

    async fn live_jobs(
        &self,
        campaign: &str,
    ) -> Result<HashMap<(String, String, String), LiveJob>> {
        let mut conn = self.pool.acquire().await.map_err(self.err())?;
        self.live_jobs_in(&mut conn, campaign).await
    }

    async fn live_jobs_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        campaign: &str,
    ) -> Result<HashMap<(String, String, String), LiveJob>> {
        let rows = sqlx::query(
            "SELECT id, row_id, locale, variant, COALESCE(plan_hash, request_hash), state, base_job
             FROM jobs WHERE campaign = $1 AND state NOT IN ('superseded', 'retired')",
        )
        .bind(campaign)
        .fetch_all(conn)
        .await
        .map_err(self.err())?;
        let mut live = HashMap::with_capacity(rows.len());
        for r in rows {
            let state: String = r.get(5);
            live.insert(
                (r.get(1), r.get(2), r.get(3)),
                LiveJob {
                    id: r.get(0),
                    hash: r.get(4),
                    state: parsed("job state", &state)?,
                    base_job: r.get(6),
                },
            );
        }
        Ok(live)
    }

    /// Bring the store in line with the expanded jobs, in one transaction:
    /// new identities are inserted pending; a changed request supersedes the
    /// old job and queues a new one; identities no longer expanded are retired.
    /// Returns the report and the live job id of every spec, in spec order.
    pub async fn sync(&self, campaign: &str, specs: &[JobSpec]) -> Result<(Planned, Vec<JobId>)> {
        // Read and write under one write lock, so two runners syncing the
        // same campaign at once see each other's inserts.
        let mut tx = self.write_tx().await?;
        let live = self.live_jobs_in(&mut tx, campaign).await?;
        let (report, plan) = compare(&live, specs);
        let now = now_ms();
        let supersede = format!(
            "UPDATE jobs SET state = 'superseded', updated_at = $1 WHERE id = $2 AND state IN {}",
            from_states_sql(JobState::Superseded)
        );
        let retire = format!(
            "UPDATE jobs SET state = 'retired', updated_at = $1 WHERE id = $2 AND state IN {}",
            from_states_sql(JobState::Retired)
        );
        for id in &plan.superseded {
            sqlx::query(AssertSqlSafe(supersede.clone()))
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
        }
        for id in &plan.retired {
            sqlx::query(AssertSqlSafe(retire.clone()))
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
        }
        let mut ids: Vec<JobId> = plan.ids.iter().map(|id| id.unwrap_or(0)).collect();
        let new: Vec<usize> = (0..specs.len())
            .filter(|&i| plan.ids[i].is_none())
            .collect();
        for chunk in new.chunks(INSERT_ROWS) {
            self.insert_jobs(&mut tx, specs, chunk, now, &mut ids)
                .await?;
        }
        // Each `text = "edit"` locale names its base locale's live job;
        // only a link that changed is written (an unchanged rerun writes
        // nothing here).
        let by_key: HashMap<&JobKey, JobId> = specs
            .iter()
            .map(|s| &s.key)
            .zip(ids.iter().copied())
            .collect();
        let stored_base: HashMap<JobId, Option<JobId>> =
            live.values().map(|l| (l.id, l.base_job)).collect();
        for (spec, id) in specs.iter().zip(&ids) {
            let Some(edit) = &spec.copy_edit else {
                continue;
            };
            let Some(base) = by_key.get(&edit.base) else {
                return Err(Error::Internal(format!(
                    "{}: its base job {} was not planned",
                    spec.key, edit.base
                )));
            };
            if stored_base.get(id) == Some(&Some(*base)) {
                continue;
            }
            sqlx::query("UPDATE jobs SET base_job = $1 WHERE id = $2")
                .bind(base)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
        }
        // A locale edit failed for want of a base image waits again once
        // its base is queued or made again.
        self.rewait_edits_in(&mut tx, campaign).await?;
        tx.commit().await.map_err(self.err())?;
        Ok((
            Planned {
                report,
                generate: plan.generate,
            },
            ids,
        ))
    }

    /// Insert the jobs of `specs` at the indexes in `chunk`, in one
    /// multi-row statement (one round trip per chunk instead of per job:
    /// most of a million-job enqueue's time was round trips), writing each
    /// new id into `ids` at its spec's index. Ids are matched by identity,
    /// as RETURNING order is unspecified on both backends.
    async fn insert_jobs(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        specs: &[JobSpec],
        chunk: &[usize],
        now: i64,
        ids: &mut [JobId],
    ) -> Result<()> {
        const COLUMNS: usize = 17;
        let mut sql = String::from(
            "INSERT INTO jobs (campaign, row_id, locale, variant, resolved_locale, resolution,
                request_hash, plan_hash, model, aspect_ratio, image_size, prompt, state, created_at,
                updated_at, copy_json, copy_edit) VALUES ",
        );
        for n in 0..chunk.len() {
            sql.push_str(if n == 0 { "(" } else { ", (" });
            for c in 0..COLUMNS {
                if c > 0 {
                    sql.push_str(", ");
                }
                match self.dialect {
                    // Anonymous parameters: SQLite keeps `$N` as a *named*
                    // parameter and finds each name by a linear walk when
                    // binding, which made an 8,500-parameter statement
                    // quadratic (60 % of a 100k-job enqueue in
                    // `sqlite3_bind_parameter_name`, measured with perf).
                    Dialect::Sqlite => sql.push('?'),
                    Dialect::Postgres => {
                        sql.push('$');
                        sql.push_str(&(n * COLUMNS + c + 1).to_string());
                    }
                }
            }
            sql.push(')');
        }
        sql.push_str(" RETURNING id, row_id, locale, variant");
        let mut q = sqlx::query(AssertSqlSafe(sql));
        let mut at: HashMap<(&str, &str, &str), usize> = HashMap::with_capacity(chunk.len());
        for &i in chunk {
            let spec = &specs[i];
            at.insert(
                (
                    spec.key.row.as_str(),
                    locale_column(&spec.key.target),
                    spec.key.variant.as_str(),
                ),
                i,
            );
            let resolution = serde_json::to_string(&spec.resolution)
                .map_err(|e| Error::Internal(e.to_string()))?;
            // A `text = "edit"` locale waits for its base locale's image.
            let state = if spec.copy_edit.is_some() {
                JobState::Waiting
            } else {
                JobState::Pending
            };
            q = q
                .bind(spec.key.campaign.clone())
                .bind(spec.key.row.as_str().to_string())
                .bind(locale_column(&spec.key.target).to_string())
                .bind(spec.key.variant.clone())
                .bind(
                    spec.resolved_locale
                        .clone()
                        .unwrap_or_else(|| ART_LOCALE_COLUMN.to_string()),
                )
                .bind(resolution)
                .bind(spec.request_hash.clone())
                .bind(spec.request_hash.clone())
                .bind(spec.request.model.as_str().to_string())
                .bind(spec.request.aspect_ratio.as_str().to_string())
                .bind(spec.request.image_size.as_str().to_string())
                .bind(spec.request.prompt.clone())
                .bind(state.as_str())
                .bind(now)
                .bind(now)
                .bind(copy_json(&spec.copy)?)
                .bind(spec.copy_edit.as_ref().map(|e| e.instruction.clone()));
        }
        let rows = q.fetch_all(&mut **tx).await.map_err(self.err())?;
        if rows.len() != chunk.len() {
            return Err(Error::Internal(format!(
                "inserted {} jobs but {} ids came back",
                chunk.len(),
                rows.len()
            )));
        }
        for r in rows {
            let (row, locale, variant): (String, String, String) = (r.get(1), r.get(2), r.get(3));
            let Some(&i) = at.get(&(row.as_str(), locale.as_str(), variant.as_str())) else {
                return Err(Error::Internal(format!(
                    "an inserted job {row}/{locale}/{variant} matches no spec"
                )));
            };
            ids[i] = r.get::<i64, _>(0);
        }
        Ok(())
    }

    /// Claim up to `limit` pending jobs of `campaign` whose `not_before` has
    /// passed, among `eligible` ids, for `run`, in one statement.
    pub async fn claim(
        &self,
        run: RunId,
        campaign: &str,
        limit: usize,
        lease: Duration,
        models: &[String],
    ) -> Result<Vec<Claimed>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let sql = self.dialect.claim_sql(
            "state = 'in_flight', lease_run = $1, lease_expires_at = $2,
             attempts = attempts + 1, updated_at = $3",
            &format!(
                "SELECT id FROM jobs
                 WHERE campaign = $4 AND state = 'pending'
                   AND (not_before IS NULL OR not_before <= $3) {models}
                 ORDER BY not_before IS NOT NULL, not_before, id LIMIT $5",
                models = model_filter(models),
            ),
            JobState::InFlight,
            "id, campaign, row_id, locale, variant, attempts, request_hash, model, qa_overlay",
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(run)
            .bind(lease_until(now, lease))
            .bind(now)
            .bind(campaign)
            .bind(to_i64("claim size", limit)?)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        let mut dec = Decoder::default();
        let mut claimed = rows
            .into_iter()
            .map(|r| {
                Ok(Claimed {
                    id: r.get(0),
                    key: dec.key(&r, 1)?,
                    attempts: r.get::<i64, _>(5) as u32,
                    request_hash: r.get(6),
                    model: stored_model(&r.get::<String, _>(7))?,
                    overlay: r.get::<i64, _>(8) != 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // RETURNING order is unspecified on both backends: id order, always.
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// The earliest `not_before` among pending jobs (to sleep until), and
    /// whether any pending job exists at all.
    /// `models` (when not empty) limits it to jobs asking one of them.
    pub async fn next_pending(
        &self,
        campaign: &str,
        models: &[String],
    ) -> Result<Option<Option<i64>>> {
        let sql = format!(
            "SELECT COUNT(*), MIN(not_before) FROM jobs WHERE campaign = $1 AND state = 'pending' {}",
            model_filter(models)
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(campaign)
            .fetch_one(&self.pool)
            .await
            .map_err(self.err())?;
        let n: i64 = row.get(0);
        Ok((n > 0).then(|| row.get::<Option<i64>, _>(1)))
    }

    /// Ids of the campaign's pending jobs (whatever their `not_before`);
    /// `models` (when not empty) limits it to jobs asking one of them.
    pub async fn pending_ids(&self, campaign: &str, models: &[String]) -> Result<Vec<JobId>> {
        let sql = format!(
            "SELECT id FROM jobs WHERE campaign = $1 AND state = 'pending' {}",
            model_filter(models)
        );
        let rows: Vec<(i64,)> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(campaign)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Return this run's in-flight jobs to pending, and its reads in
    /// flight to `checking` (after a bounded drain).
    pub async fn release_run_leases(&self, run: RunId) -> Result<u64> {
        let mut n = 0;
        let mut tx = self.write_tx().await?;
        for (from, to) in IN_FLIGHT_RETURNS {
            let sql = format!(
                "UPDATE jobs SET state = '{to}', lease_run = NULL, lease_expires_at = NULL, updated_at = $1
                 WHERE lease_run = $2 AND state = '{from}' AND state IN {legal}",
                legal = from_states_sql(to)
            );
            let res = sqlx::query(AssertSqlSafe(sql))
                .bind(now_ms())
                .bind(run)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
            n += res.rows_affected();
        }
        tx.commit().await.map_err(self.err())?;
        Ok(n)
    }

    /// Whether `run` still holds the lease of in-flight `job`. Asked before
    /// a realtime result is written into the asset tree, so a runner whose
    /// lease expired (and whose job another runner may have claimed since)
    /// does not replace the newer claim's file; [`Store::settle`] checks the
    /// same again in its transaction.
    pub async fn holds_lease(&self, job: JobId, run: RunId) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM jobs WHERE id = $1 AND state = 'in_flight' AND lease_run = $2",
        )
        .bind(job)
        .bind(run)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(row.get::<i64, _>(0) > 0)
    }

    /// Jobs of the campaign held by other runners (in flight or in a batch
    /// being created), which this runner should wait for rather than finish.
    pub async fn held_elsewhere(&self, campaign: &str, run: RunId) -> Result<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM jobs WHERE campaign = $1 AND
               ((state IN ('in_flight', 'read_in_flight') AND lease_run IS DISTINCT FROM $2)
                OR state IN ('batch_submitting', 'read_batch_submitting'))",
        )
        .bind(campaign)
        .bind(run)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(row.get::<i64, _>(0) as u64)
    }

    /// Whether an attempt is to be recorded with its settlement. A realtime
    /// call was paid by the runner that made it, even when its job was
    /// taken from it meanwhile (its lease expired): recorded either way. A
    /// batch line was paid once, however many runners ingest the batch:
    /// only the runner whose settlement applied records it, so spend is
    /// counted once.
    fn paid_by_this_settlement(a: &AttemptRecord, settled: bool) -> bool {
        settled || a.mode == BillingMode::Realtime
    }

    async fn record_attempt(
        tx: &mut sqlx::AnyConnection,
        job: JobId,
        run: Option<RunId>,
        a: &AttemptRecord,
    ) -> std::result::Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO attempts (job_id, run_id, mode, started_at, finished_at, outcome, reason,
                                   http_status, detail, cost_usd, kind)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(job)
        .bind(run)
        .bind(a.mode.as_str())
        .bind(a.started_at)
        .bind(a.finished_at)
        .bind(a.outcome.as_str())
        .bind(a.reason.map(Reason::code))
        .bind(a.http_status.map(i64::from))
        .bind(&a.detail)
        .bind(a.cost_usd)
        .bind(if a.read { "read" } else { "image" })
        .execute(tx)
        .await?;
        Ok(())
    }

    /// One settlement inside the caller's write transaction (see
    /// [`Store::settle`]).
    async fn settle_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        job: JobId,
        run: Option<RunId>,
        settlement: &Settlement,
        attempt: Option<&AttemptRecord>,
    ) -> Result<bool> {
        let now = now_ms();
        let query = match settlement {
            Settlement::Done {
                qa,
                provider,
                asset,
                cost_usd,
                usage_json,
                model_turn,
                replaced,
            } => {
                // An edit: the image it replaced goes to the history first,
                // in the same transaction, while the job still names it.
                if let Some(kept_at) = replaced {
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO revisions (job_id, revision, sha256, path, mime_type,
                                thought_signature, note, created_at, model_turn)
                         SELECT id, revision, sha256, $2, COALESCE(mime_type, ''), thought_signature,
                                edit_note, $3, model_turn
                         FROM jobs WHERE id = $1 AND edit_note IS NOT NULL AND sha256 IS NOT NULL
                           AND state IN {} AND {}
                         ON CONFLICT (job_id, revision) DO NOTHING",
                        from_states_sql(settlement.target_state()),
                        lease_held("$4")
                    )))
                    .bind(job)
                    .bind(kept_at.clone())
                    .bind(now)
                    .bind(run)
                    .execute(&mut **tx)
                    .await
                    .map_err(self.err())?;
                }
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE jobs SET state = $1, provider = $2, mode = $3, asset_path = $4, sha256 = $5,
                        bytes = $6, width = $7, height = $8, mime_type = $9, cost_usd = $10,
                        usage_json = $11,
                        error_code = NULL, error_detail = NULL, block_reason = NULL,
                        lease_run = NULL, lease_expires_at = NULL, not_before = NULL,
                        qa_image_reads = 0,
                        qa_verdict = CASE WHEN qa_overlay = 1 THEN qa_verdict ELSE $12 END,
                        updated_at = $13, finished_at = $14, thought_signature = $15,
                        revision = CASE WHEN $16 THEN revision + 1 ELSE revision END,
                        parent_sha256 = CASE WHEN $16 THEN sha256 ELSE parent_sha256 END,
                        edit_note = NULL, model_turn = $17
                 WHERE id = $18 AND state IN {} AND {}",
                    from_states_sql(settlement.target_state()),
                    lease_held("$19")
                )))
                .bind(settlement.target_state().as_str())
                .bind(provider.as_str())
                .bind(attempt.map(|a| a.mode.as_str()))
                .bind(asset.path.clone())
                .bind(asset.sha256.clone())
                .bind(to_i64("file size", asset.bytes)?)
                .bind(i64::from(asset.width))
                .bind(i64::from(asset.height))
                .bind(asset.mime_type.clone())
                .bind(*cost_usd)
                .bind(usage_json.clone())
                .bind(qa.initial_verdict())
                .bind(now)
                .bind((*qa != ImageQa::Check).then_some(now))
                .bind(
                    model_turn
                        .as_ref()
                        .and_then(|t| t.image_signature())
                        .map(str::to_string),
                )
                .bind(replaced.is_some())
                .bind(
                    model_turn
                        .as_ref()
                        .and_then(|t| serde_json::to_string(t).ok()),
                )
            }
            other => {
                let to = other.target_state();
                let (code, detail, block, not_before) = match other {
                    Settlement::Retry {
                        not_before,
                        reason,
                        detail,
                    } => (Some(reason.code()), Some(detail.clone()), None, *not_before),
                    Settlement::Fail {
                        reason,
                        detail,
                        block_reason,
                        ..
                    } => (
                        Some(reason.code()),
                        Some(detail.clone()),
                        block_reason.clone(),
                        None,
                    ),
                    _ => (None, None, None, None),
                };
                let refund = matches!(other, Settlement::Requeue);
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE jobs SET state = $1, not_before = $2, lease_run = NULL, lease_expires_at = NULL,
                            error_code = COALESCE($3, error_code), error_detail = COALESCE($4, error_detail),
                            block_reason = $5, attempts = attempts - $6,
                            batch_id = CASE WHEN $7 THEN NULL ELSE batch_id END,
                            updated_at = $8, finished_at = CASE WHEN $9 THEN $10 ELSE finished_at END
                     WHERE id = $11 AND state IN {} AND {}",
                    from_states_sql(to),
                    lease_held("$12")
                )))
                .bind(to.as_str())
                .bind(not_before)
                .bind(code)
                .bind(detail)
                .bind(block)
                .bind(i64::from(refund))
                .bind(to == JobState::Pending)
                .bind(now)
                .bind(to.is_terminal())
                .bind(now)
            }
        };
        let res = query
            .bind(job)
            .bind(run)
            .execute(&mut **tx)
            .await
            .map_err(self.err())?;
        let settled = res.rows_affected() == 1;
        if let Some(a) = attempt.filter(|a| Store::paid_by_this_settlement(a, settled)) {
            Store::record_attempt(tx, job, run, a)
                .await
                .map_err(self.err())?;
        }
        Ok(settled)
    }

    /// Move a pending (or just-blocked) job to another model of its chain,
    /// in one transaction: the request it will ask changes (`model`,
    /// `request_hash`), what it was planned as (`plan_hash`) does not, so a
    /// rerun keeps what the fallback made. Returns false when the job was
    /// no longer pending (another runner took it).
    pub async fn fall_back(
        &self,
        job: JobId,
        to: &ModelId,
        request_hash: &str,
        from: &ModelId,
        reason: Reason,
    ) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE jobs SET model = $1, request_hash = $2, fallback_from = COALESCE(fallback_from, $3),
                    fallback_reason = $4, attempts = 0, not_before = NULL, error_code = NULL,
                    error_detail = NULL, block_reason = NULL, updated_at = $5
             WHERE id = $6 AND state = 'pending'",
        )
        .bind(to.as_str())
        .bind(request_hash)
        .bind(from.as_str())
        .bind(reason.code())
        .bind(now_ms())
        .bind(job)
        .execute(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(res.rows_affected() == 1)
    }

    /// Pending jobs of the campaign whose current model is `model`.
    pub async fn pending_on_model(&self, campaign: &str, model: &ModelId) -> Result<Vec<JobId>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM jobs WHERE campaign = $1 AND state = 'pending' AND model = $2 ORDER BY id",
        )
        .bind(campaign)
        .bind(model.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// `adloc retry --fallbacks`: forget what fallback models made, so the
    /// next run asks each job's primary model again. Returns how many.
    pub async fn retry_fallbacks(&self, campaign: &str) -> Result<u64> {
        let sql = format!(
            "UPDATE jobs SET state = 'superseded', updated_at = $1
             WHERE campaign = $2 AND fallback_from IS NOT NULL AND state IN ('done', 'failed', 'blocked')
               AND state IN {}",
            from_states_sql(JobState::Superseded)
        );
        let mut tx = self.write_tx().await?;
        let res = sqlx::query(AssertSqlSafe(sql))
            .bind(now_ms())
            .bind(campaign)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        tx.commit().await.map_err(self.err())?;
        Ok(res.rows_affected())
    }

    /// Requeue terminal jobs on request (`adloc retry`): to pending, and
    /// (`text = "edit"`) locales failed with `base_failed` whose base is
    /// live again to waiting. Returns how many.
    pub async fn requeue(&self, campaign: &str, failed: bool, blocked: bool) -> Result<u64> {
        let mut states = Vec::new();
        if failed {
            states.push("'failed'");
        }
        if blocked {
            states.push("'blocked'");
        }
        if states.is_empty() {
            return Ok(0);
        }
        // A locale edit that failed for want of a base image is not sent
        // on its own (it would be generated from scratch, not edited): it
        // waits again for its base, queued here too.
        let sql = format!(
            "UPDATE jobs SET state = 'pending', attempts = 0, not_before = NULL, error_code = NULL,
                    error_detail = NULL, block_reason = NULL, finished_at = NULL,
                    qa_image_reads = 0, qa_regenerations = 0, qa_verdict = NULL, qa_overlay = 0,
                    updated_at = $1
             WHERE campaign = $2 AND state IN ({}) AND state IN {}
               AND (error_code IS NULL OR error_code <> $3)",
            states.join(", "),
            from_states_sql(JobState::Pending)
        );
        let mut tx = self.write_tx().await?;
        let res = sqlx::query(AssertSqlSafe(sql))
            .bind(now_ms())
            .bind(campaign)
            .bind(Reason::BaseFailed.code())
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        let rewaited = self.rewait_edits_in(&mut tx, campaign).await?;
        tx.commit().await.map_err(self.err())?;
        Ok(res.rows_affected() + rewaited)
    }

    /// The files the state records for `campaign`, for the sweep of stale
    /// masters: the masters of done jobs, and every recorded file (every
    /// live job's asset, every kept revision), which is never removed.
    pub async fn recorded_files(
        &self,
        campaign: &str,
    ) -> Result<(Vec<String>, std::collections::HashSet<String>)> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT asset_path, state FROM jobs
             WHERE campaign = $1 AND state <> 'superseded' AND asset_path IS NOT NULL",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        let kept: Vec<(String,)> = sqlx::query_as(
            "SELECT r.path FROM revisions r JOIN jobs j ON j.id = r.job_id WHERE j.campaign = $1",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        let done = JobState::Done.as_str();
        let masters = rows
            .iter()
            .filter(|(_, state)| state == done)
            .map(|(p, _)| p.clone())
            .collect();
        let recorded = rows
            .into_iter()
            .map(|(p, _)| p)
            .chain(kept.into_iter().map(|(p,)| p))
            .collect();
        Ok((masters, recorded))
    }

    /// Every job of the campaign except superseded history.
    pub async fn jobs(&self, campaign: &str) -> Result<Vec<JobRow>> {
        let rows = sqlx::query(
            "SELECT id, campaign, row_id, locale, variant, state, resolved_locale, resolution,
                    request_hash, model, aspect_ratio, image_size, prompt, attempts, provider, mode,
                    asset_path, sha256, bytes, width, height, mime_type, cost_usd, error_code,
                    error_detail, block_reason, finished_at, batch_id, fallback_from, fallback_reason,
                    qa_reader, qa_verdict, qa_reads, qa_regenerations, qa_strings, qa_cost_usd,
                    qa_regen_cost_usd, qa_overlay, copy_json, revision, parent_sha256
             FROM jobs WHERE campaign = $1 AND state != 'superseded'
             ORDER BY row_id, locale, variant, id",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        let mut dec = Decoder::default();
        rows.into_iter()
            .map(|r| {
                let state: String = r.get(5);
                let opt = |i: usize| r.get::<Option<String>, _>(i);
                let asset = r.get::<Option<String>, _>(16).map(|path| AssetRecord {
                    path,
                    sha256: r.get::<Option<String>, _>(17).unwrap_or_default(),
                    bytes: r.get::<Option<i64>, _>(18).unwrap_or(0) as u64,
                    width: r.get::<Option<i64>, _>(19).unwrap_or(0) as u32,
                    height: r.get::<Option<i64>, _>(20).unwrap_or(0) as u32,
                    mime_type: r.get::<Option<String>, _>(21).unwrap_or_default(),
                });
                Ok(JobRow {
                    id: r.get(0),
                    key: dec.key(&r, 1)?,
                    state: parsed("job state", &state)?,
                    resolved_locale: r.get(6),
                    resolution: r.get(7),
                    request_hash: r.get(8),
                    model: stored_model(&r.get::<String, _>(9))?,
                    aspect_ratio: parsed("aspect ratio", &r.get::<String, _>(10))?,
                    image_size: parsed("image size", &r.get::<String, _>(11))?,
                    prompt: r.get(12),
                    attempts: r.get::<i64, _>(13) as u32,
                    provider: opt(14).map(|p| parsed("provider", &p)).transpose()?,
                    mode: opt(15).map(|m| parsed("mode", &m)).transpose()?,
                    asset,
                    cost_usd: r.get(22),
                    error_code: opt(23).map(|c| parsed("reason", &c)).transpose()?,
                    error_detail: r.get(24),
                    block_reason: r.get(25),
                    finished_at: r.get(26),
                    batch_id: r.get(27),
                    fallback_from: opt(28).map(|m| stored_model(&m)).transpose()?,
                    fallback_reason: opt(29).map(|c| parsed("reason", &c)).transpose()?,
                    qa: QaRecord::from_columns(
                        opt(30),
                        opt(31),
                        r.get(32),
                        r.get(33),
                        opt(34),
                        r.get(35),
                        r.get(36),
                        r.get::<i64, _>(37) != 0,
                    )?,
                    copy: copy_from_column(opt(38))?,
                    revision: r.get::<i64, _>(39) as u32,
                    parent_sha256: opt(40),
                })
            })
            .collect()
    }

    /// The campaign's whole state, for the manifest.
    pub async fn campaign_state(&self, campaign: &str) -> Result<CampaignState> {
        Ok(CampaignState {
            read_at_ms: now_ms(),
            jobs: self.jobs(campaign).await?,
            composites: self.composites(campaign).await?,
            renditions: self.rendition_entries(campaign).await?,
            rendition_failures: self.rendition_failures(campaign).await?,
            decisions: self.decisions(campaign).await?,
            revisions: self.revisions(campaign).await?,
            placements: self.placement_entries(campaign).await?,
        })
    }

    /// Total spend recorded in attempts for a campaign.
    pub async fn spent_usd(&self, campaign: &str) -> Result<f64> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(a.cost_usd), 0.0) FROM attempts a JOIN jobs j ON j.id = a.job_id
             WHERE j.campaign = $1",
        )
        .bind(campaign)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(row.get(0))
    }

    /// Counts for `adloc status`; all campaigns when `campaign` is `None`.
    pub async fn status(&self, campaign: Option<&str>) -> Result<StatusCounts> {
        let mut out = StatusCounts::default();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM jobs WHERE ($1 IS NULL OR campaign = $1) GROUP BY state",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        for (s, n) in rows {
            out.by_state.insert(s, n as u64);
        }
        let open: Vec<(String, Option<String>, String)> = sqlx::query_as(
            "SELECT display_name, remote_name, state FROM batches
             WHERE ($1 IS NULL OR campaign = $1) AND state IN ('submitting', 'submitted', 'succeeded')
             ORDER BY id",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        out.open_batches = open
            .into_iter()
            .map(|(d, r, st)| Ok((d, r, parsed("batch state", &st)?)))
            .collect::<Result<_>>()?;
        let spent: (f64,) = sqlx::query_as(
            "SELECT COALESCE(SUM(a.cost_usd), 0.0) FROM attempts a JOIN jobs j ON j.id = a.job_id
             WHERE ($1 IS NULL OR j.campaign = $1)",
        )
        .bind(campaign)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        out.spent_usd = spent.0;
        Ok(out)
    }

    /// Campaign names known to the store.
    pub async fn campaigns(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT campaign FROM jobs ORDER BY campaign")
                .fetch_all(&self.pool)
                .await
                .map_err(self.err())?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The pool, for the store's own submodules.
    fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Close the pool (flushes WAL on the last connection).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

struct LiveJob {
    id: JobId,
    hash: String,
    state: JobState,
    /// A `text = "edit"` locale's base job, as stored.
    base_job: Option<JobId>,
}

struct SyncPlan {
    /// Per spec: the existing live id to keep, or None to insert.
    ids: Vec<Option<JobId>>,
    generate: Vec<bool>,
    superseded: Vec<JobId>,
    retired: Vec<JobId>,
}

fn compare(
    live: &HashMap<(String, String, String), LiveJob>,
    specs: &[JobSpec],
) -> (SyncReport, SyncPlan) {
    let mut report = SyncReport::default();
    let mut plan = SyncPlan {
        ids: Vec::with_capacity(specs.len()),
        generate: Vec::with_capacity(specs.len()),
        superseded: Vec::new(),
        retired: Vec::new(),
    };
    let mut seen: std::collections::HashSet<JobId> =
        std::collections::HashSet::with_capacity(specs.len());
    for spec in specs {
        let k = (
            spec.key.row.to_string(),
            locale_column(&spec.key.target).to_string(),
            spec.key.variant.clone(),
        );
        match live.get(&k) {
            None => {
                report.new += 1;
                report.to_generate += 1;
                plan.ids.push(None);
                plan.generate.push(true);
            }
            Some(j) if j.hash == spec.request_hash => {
                report.unchanged += 1;
                seen.insert(j.id);
                let generate = match j.state {
                    JobState::Done => {
                        report.already_done += 1;
                        false
                    }
                    JobState::BatchSubmitting | JobState::BatchSubmitted => {
                        report.in_batch += 1;
                        false
                    }
                    JobState::Blocked | JobState::Failed => false,
                    _ => {
                        report.to_generate += 1;
                        true
                    }
                };
                plan.ids.push(Some(j.id));
                plan.generate.push(generate);
            }
            Some(j) => {
                report.changed += 1;
                report.to_generate += 1;
                seen.insert(j.id);
                plan.superseded.push(j.id);
                plan.ids.push(None);
                plan.generate.push(true);
            }
        }
    }
    for j in live.values() {
        if !seen.contains(&j.id) {
            report.retired += 1;
            plan.retired.push(j.id);
        }
    }
    plan.retired.sort_unstable();
    (report, plan)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Is process `pid` alive on this host? Linux: `/proc/<pid>` exists and is
/// not a zombie. Elsewhere we cannot tell cheaply and say yes, so only the
/// lease expiry frees its jobs.
fn process_alive(pid: i64) -> bool {
    let stat = PathBuf::from(format!("/proc/{pid}/stat"));
    if !Path::new("/proc/self/stat").exists() {
        return true;
    }
    match std::fs::read_to_string(stat) {
        Ok(s) => {
            // Field 3, after the parenthesised command name, is the state.
            let state = s
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
