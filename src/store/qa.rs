//! Copy QA rows: claiming images whose copy is due to be read back, and
//! applying a read's outcome in one transaction with its attempt.

use std::collections::HashSet;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Row};

use super::{AttemptRecord, Decoder, JobId, RunId, Store, from_states_sql, parsed, stored_model};
use crate::domain::readback::StringCheck;
use crate::domain::{BatchState, JobKey, JobState, ModelId, ReaderModel, Reason, Result, now_ms};

/// What to do with an image once it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageQa {
    /// No copy QA: the job is done.
    Off,
    /// Read its copy back before the job counts as done.
    Check,
    /// QA is on but pointless (the local renderer paints exact copy): done,
    /// with the verdict `skipped`.
    Skipped,
}

impl ImageQa {
    /// The verdict stored with the image.
    pub(super) fn initial_verdict(self) -> Option<&'static str> {
        match self {
            ImageQa::Skipped => Some("skipped"),
            ImageQa::Off | ImageQa::Check => None,
        }
    }
}

/// A job claimed for a read: where its image is.
#[derive(Debug, Clone)]
pub struct ClaimedRead {
    /// Row id.
    pub id: JobId,
    /// Identity.
    pub key: JobKey,
    /// The model that painted the image.
    pub model: ModelId,
    /// The image, relative to the campaign's output folder.
    pub asset_path: String,
    /// Its MIME type.
    pub mime_type: String,
    /// Its SHA-256 (the read is of exactly this file).
    pub sha256: String,
    /// Reads of this image so far (not counting this one).
    pub image_reads: u32,
    /// Regenerations asked so far.
    pub regenerations: u32,
    /// The image's cost (what a regeneration throws away).
    pub cost_usd: f64,
}

/// A batch of reads, as recorded.
#[derive(Debug, Clone)]
pub struct ReadBatchRow {
    /// Local id.
    pub id: i64,
    /// Deterministic display name.
    pub display_name: String,
    /// `batches/…` once created.
    pub remote_name: Option<String>,
    /// Local state.
    pub state: BatchState,
    /// The reader every line asks.
    pub reader: ReaderModel,
    /// Reads in it.
    pub request_count: i64,
    /// Polls so far.
    pub polls: i64,
    /// True when the run that assigned it has ended (so it may be resumed).
    pub owner_gone: bool,
}

/// The columns a [`ClaimedRead`] is read from, in order.
const READ_COLUMNS: &str = "id, campaign, row_id, locale, variant, model, asset_path, mime_type,
                            sha256, qa_image_reads, qa_regenerations, cost_usd, state";

fn claimed_read(dec: &mut Decoder, r: &sqlx::any::AnyRow) -> Result<(ClaimedRead, JobState)> {
    Ok((
        ClaimedRead {
            id: r.get(0),
            key: dec.key(r, 1)?,
            model: stored_model(&r.get::<String, _>(5))?,
            asset_path: r.get::<Option<String>, _>(6).unwrap_or_default(),
            mime_type: r.get::<Option<String>, _>(7).unwrap_or_default(),
            sha256: r.get::<Option<String>, _>(8).unwrap_or_default(),
            image_reads: r.get::<i64, _>(9) as u32,
            regenerations: r.get::<i64, _>(10) as u32,
            cost_usd: r.get::<Option<f64>, _>(11).unwrap_or(0.0),
        },
        parsed("job state", &r.get::<String, _>(12))?,
    ))
}

/// How a read leaves its job: a pure decision of the run, applied by
/// [`Store::settle_read`].
#[derive(Debug, Clone, PartialEq)]
pub enum ReadSettlement {
    /// Read again, not before `not_before`: a retryable failure of the
    /// call (`checks` is `None`, not counted as a read; its error is in the
    /// attempt record) or a first mismatch, which is confirmed by a second
    /// read before anything is regenerated (`checks` is `Some`, counted).
    Again {
        /// Earliest next read.
        not_before: Option<i64>,
        /// The comparison, when the reader answered.
        checks: Option<Vec<StringCheck>>,
    },
    /// Every expected string is there: done, verdict `pass`.
    Pass {
        /// The comparison.
        checks: Vec<StringCheck>,
    },
    /// A confirmed mismatch the variant keeps: done, verdict `kept`.
    Kept {
        /// The comparison.
        checks: Vec<StringCheck>,
    },
    /// A confirmed mismatch: the image is bought again (the job goes back
    /// to pending with fresh attempts; regenerations are counted apart).
    Regenerate {
        /// The comparison.
        checks: Vec<StringCheck>,
    },
    /// A confirmed mismatch the variant's text boxes can fix: the job goes
    /// back to pending asking for copy-free art (fresh attempts), and its
    /// asset becomes the locale's copy typeset onto that art. Verdict `fail`.
    Overlay {
        /// The comparison.
        checks: Vec<StringCheck>,
    },
    /// A confirmed mismatch with nothing left to try: failed, `text_mismatch`.
    Mismatch {
        /// The comparison.
        checks: Vec<StringCheck>,
        /// What was wrong, for the failure entry.
        detail: String,
    },
    /// The read was not made (the reader's vendor is down, or the run
    /// stopped): due again, nothing counted.
    Requeue,
}

impl ReadSettlement {
    /// The state the job moves to.
    pub fn target_state(&self) -> JobState {
        match self {
            ReadSettlement::Again { .. } | ReadSettlement::Requeue => JobState::Checking,
            ReadSettlement::Pass { .. } | ReadSettlement::Kept { .. } => JobState::Done,
            ReadSettlement::Regenerate { .. } | ReadSettlement::Overlay { .. } => JobState::Pending,
            ReadSettlement::Mismatch { .. } => JobState::Failed,
        }
    }

    fn checks(&self) -> Option<&[StringCheck]> {
        match self {
            ReadSettlement::Again { checks, .. } => checks.as_deref(),
            ReadSettlement::Pass { checks }
            | ReadSettlement::Kept { checks }
            | ReadSettlement::Regenerate { checks }
            | ReadSettlement::Overlay { checks }
            | ReadSettlement::Mismatch { checks, .. } => Some(checks),
            ReadSettlement::Requeue => None,
        }
    }
}

/// A job's copy QA as stored: what the manifest reports.
#[derive(Debug, Clone, PartialEq)]
pub struct QaRecord {
    /// The reader asked (`None` when skipped before any read).
    pub reader: Option<String>,
    /// The verdict, once there is one (`None` while reads are pending).
    pub verdict: Option<QaVerdict>,
    /// Reads in all, across regenerations.
    pub reads: u32,
    /// Images bought again after a confirmed mismatch.
    pub regenerations: u32,
    /// The last comparison.
    pub strings: Vec<StringCheck>,
    /// What reading cost.
    pub cost_usd: f64,
    /// What the images thrown away after a mismatch cost.
    pub regeneration_cost_usd: f64,
    /// The asset is the copy typeset onto copy-free art after a confirmed
    /// mismatch (the overlay fallback).
    pub fell_back_to_overlay: bool,
}

/// A copy QA verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QaVerdict {
    /// Every expected string was read back.
    Pass,
    /// A confirmed mismatch (regenerated, fell back or failed).
    Fail,
    /// A confirmed mismatch kept as the variant asks.
    Kept,
    /// Not read: the local renderer paints exact copy.
    Skipped,
}

impl QaVerdict {
    /// Stable name, as stored and in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            QaVerdict::Pass => "pass",
            QaVerdict::Fail => "fail",
            QaVerdict::Kept => "kept",
            QaVerdict::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Option<QaVerdict> {
        [
            QaVerdict::Pass,
            QaVerdict::Fail,
            QaVerdict::Kept,
            QaVerdict::Skipped,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl QaRecord {
    /// From the `qa_*` columns; `None` for a job QA never touched.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn from_columns(
        reader: Option<String>,
        verdict: Option<String>,
        reads: i64,
        regenerations: i64,
        strings: Option<String>,
        cost_usd: f64,
        regeneration_cost_usd: f64,
        fell_back_to_overlay: bool,
    ) -> Result<Option<QaRecord>> {
        if reader.is_none() && verdict.is_none() && reads == 0 {
            return Ok(None);
        }
        let verdict = verdict
            .map(|v| {
                QaVerdict::parse(&v).ok_or_else(|| {
                    crate::domain::Error::Internal(format!("unknown QA verdict {v:?} in the state"))
                })
            })
            .transpose()?;
        let strings = match strings {
            Some(s) => serde_json::from_str(&s).map_err(|e| {
                crate::domain::Error::Internal(format!("unreadable QA strings in the state: {e}"))
            })?,
            None => Vec::new(),
        };
        Ok(Some(QaRecord {
            reader,
            verdict,
            reads: reads as u32,
            regenerations: regenerations as u32,
            strings,
            cost_usd,
            regeneration_cost_usd,
            fell_back_to_overlay,
        }))
    }
}

impl Store {
    /// Claim up to `limit` jobs of `campaign` whose read is due, for `run`.
    pub async fn claim_reads(
        &self,
        run: RunId,
        campaign: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedRead>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let sql = self.dialect.claim_sql(
            "state = 'read_in_flight', lease_run = $1, lease_expires_at = $2, updated_at = $3",
            "SELECT id FROM jobs
             WHERE campaign = $4 AND state = 'checking'
               AND (not_before IS NULL OR not_before <= $3)
             ORDER BY not_before IS NOT NULL, not_before, id LIMIT $5",
            JobState::ReadInFlight,
            READ_COLUMNS,
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(run)
            .bind(super::lease_until(now, lease))
            .bind(now)
            .bind(campaign)
            .bind(super::to_i64("claim size", limit)?)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        let mut dec = Decoder::default();
        let mut claimed = rows
            .iter()
            .map(|r| Ok(claimed_read(&mut dec, r)?.0))
            .collect::<Result<Vec<_>>>()?;
        // RETURNING order is unspecified on both backends: id order, always.
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// Queue a read for every done image among `jobs` that copy QA never
    /// looked at (QA was turned on after it was made): made by a vendor
    /// (the local renderer paints exact copy), not a typeset fallback.
    /// Returns how many.
    pub async fn read_done_images(&self, jobs: &[JobId]) -> Result<u64> {
        let now = now_ms();
        let sql = format!(
            "UPDATE jobs SET state = 'checking', not_before = NULL, finished_at = NULL,
                    qa_image_reads = 0, updated_at = $1
             WHERE id = $2 AND state = 'done' AND qa_verdict IS NULL AND qa_reads = 0
               AND qa_overlay = 0 AND asset_path IS NOT NULL
               AND provider IS NOT NULL AND provider != 'local' AND state IN {}",
            from_states_sql(JobState::Checking)
        );
        let mut n = 0;
        let mut tx = self.write_tx().await?;
        for id in jobs {
            n += sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?
                .rows_affected();
        }
        tx.commit().await.map_err(self.err())?;
        Ok(n)
    }

    /// Ids of the campaign's jobs whose read is due now (for batching).
    pub async fn due_read_ids(&self, campaign: &str) -> Result<Vec<JobId>> {
        let rows = sqlx::query(
            "SELECT id FROM jobs WHERE campaign = $1 AND state = 'checking'
               AND (not_before IS NULL OR not_before <= $2) ORDER BY id",
        )
        .bind(campaign)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Assign up to `limit` due reads (among `eligible`, all asking
    /// `reader`) to a new read batch, recorded `submitting` with its jobs
    /// in `read_batch_submitting` in one transaction *before* the remote
    /// create, as image batches are (the guard against paying twice). The
    /// display name hashes each job's id, image and reads so far, so a
    /// resumed batch keeps its name and a second read gets a new one.
    pub async fn assign_read_batch(
        &self,
        run: RunId,
        campaign: &str,
        reader: ReaderModel,
        eligible: &HashSet<JobId>,
        limit: usize,
    ) -> Result<Option<(ReadBatchRow, Vec<ClaimedRead>)>> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "SELECT id, sha256, qa_reads FROM jobs
             WHERE campaign = $1 AND state = 'checking' AND (not_before IS NULL OR not_before <= $2)
             ORDER BY id{}",
            self.dialect.lock_rows()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(campaign)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.err())?;
        let chosen: Vec<(i64, String)> = rows
            .iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let sha: Option<String> = r.get(1);
                let reads: i64 = r.get(2);
                (id, format!("{id}:{}:{reads}", sha.unwrap_or_default()))
            })
            .filter(|(id, _)| eligible.contains(id))
            .take(limit)
            .collect();
        if chosen.is_empty() {
            return Ok(None);
        }
        let mut h = Sha256::new();
        for (_, line) in &chosen {
            h.update(format!("{line}\n"));
        }
        let digest = hex::encode(h.finalize());
        let display_name = format!("adloc-{campaign}-read-{}", &digest[..16]);
        let batch_id = self
            .insert_batch(
                &mut tx,
                super::batches::BatchRecord {
                    campaign,
                    target: reader.as_str(),
                    kind: "read",
                    display_name: &display_name,
                    requests: chosen.len(),
                    run,
                },
            )
            .await?;
        let sql = format!(
            "UPDATE jobs SET state = 'read_batch_submitting', batch_id = $1, updated_at = $2
             WHERE id = $3 AND state IN {}",
            from_states_sql(JobState::ReadBatchSubmitting)
        );
        for (id, _) in &chosen {
            sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(batch_id)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())?;
        let row = ReadBatchRow {
            id: batch_id,
            display_name,
            remote_name: None,
            state: BatchState::Submitting,
            reader,
            request_count: chosen.len() as i64,
            polls: 0,
            owner_gone: false,
        };
        let jobs = self
            .read_batch_jobs(batch_id)
            .await?
            .into_iter()
            .map(|(j, _)| j)
            .collect();
        Ok(Some((row, jobs)))
    }

    /// Read batches of the campaign still open (submitting or submitted).
    pub async fn open_read_batches(&self, campaign: &str) -> Result<Vec<ReadBatchRow>> {
        let rows = sqlx::query(
            "SELECT b.id, b.display_name, b.remote_name, b.state, b.model, b.request_count, b.polls,
                    CASE WHEN r.id IS NULL OR r.finished_at IS NOT NULL THEN 1 ELSE 0 END
             FROM batches b LEFT JOIN runs r ON r.id = b.owner_run
             WHERE b.campaign = $1 AND b.kind = 'read' AND b.state IN ('submitting', 'submitted')
             ORDER BY b.id",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        rows.into_iter()
            .map(|r| {
                Ok(ReadBatchRow {
                    id: r.get(0),
                    display_name: r.get(1),
                    remote_name: r.get(2),
                    state: parsed("batch state", &r.get::<String, _>(3))?,
                    reader: parsed("reader", &r.get::<String, _>(4))?,
                    request_count: r.get(5),
                    polls: r.get(6),
                    owner_gone: r.get::<i64, _>(7) != 0,
                })
            })
            .collect()
    }

    /// The reads of a read batch, with each job's state.
    pub async fn read_batch_jobs(&self, batch: i64) -> Result<Vec<(ClaimedRead, JobState)>> {
        let sql = format!("SELECT {READ_COLUMNS} FROM jobs WHERE batch_id = $1 ORDER BY id");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(batch)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        let mut dec = Decoder::default();
        rows.iter().map(|r| claimed_read(&mut dec, r)).collect()
    }

    /// Whether any read of the campaign is due or waiting, and the earliest
    /// `not_before` among them (as [`Store::next_pending`] for images).
    pub async fn next_read(&self, campaign: &str) -> Result<Option<Option<i64>>> {
        let row = sqlx::query(
            "SELECT COUNT(*), MIN(not_before) FROM jobs WHERE campaign = $1 AND state = 'checking'",
        )
        .bind(campaign)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        let n: i64 = row.get(0);
        Ok((n > 0).then(|| row.get::<Option<i64>, _>(1)))
    }

    /// Apply a read's outcome (and record its attempt, with its cost, as a
    /// read) in one transaction, shared with other settlements arriving at
    /// the same time as [`Store::settle`]'s are. Returns false when the job
    /// was no longer ours: nothing changes.
    pub async fn settle_read(
        &self,
        job: JobId,
        reader: Option<ReaderModel>,
        settlement: &ReadSettlement,
        attempt: Option<&AttemptRecord>,
        run: Option<RunId>,
    ) -> Result<bool> {
        let what = super::settle_group::Outcome::Read {
            reader,
            settlement: settlement.clone(),
        };
        self.settle_grouped(job, run, what, attempt).await
    }

    /// [`Store::settle_read`] inside `tx`.
    pub(super) async fn settle_read_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        job: JobId,
        reader: Option<ReaderModel>,
        settlement: &ReadSettlement,
        attempt: Option<&AttemptRecord>,
        run: Option<RunId>,
    ) -> Result<bool> {
        let now = now_ms();
        let to = settlement.target_state();
        let counted = i64::from(settlement.checks().is_some());
        let checks_json = settlement
            .checks()
            .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into()));
        let cost = attempt.map_or(0.0, |a| a.cost_usd);
        let (verdict, code, detail, not_before) = match settlement {
            ReadSettlement::Again { not_before, .. } => (None, None, None, *not_before),
            ReadSettlement::Pass { .. } => (Some("pass"), None, None, None),
            ReadSettlement::Kept { .. } => (Some("kept"), None, None, None),
            ReadSettlement::Regenerate { .. } | ReadSettlement::Overlay { .. } => {
                (Some("fail"), None, None, None)
            }
            ReadSettlement::Mismatch { detail, .. } => (
                Some("fail"),
                Some(Reason::TextMismatch.code()),
                Some(detail.clone()),
                None,
            ),
            ReadSettlement::Requeue => (None, None, None, None),
        };
        // Both buy an image again: the one read is thrown away.
        let regenerate = matches!(
            settlement,
            ReadSettlement::Regenerate { .. } | ReadSettlement::Overlay { .. }
        );
        let overlay = matches!(settlement, ReadSettlement::Overlay { .. });
        let sql = format!(
            "UPDATE jobs SET state = $1, not_before = $2, lease_run = NULL, lease_expires_at = NULL,
                    batch_id = CASE WHEN state = 'read_batch_submitted' THEN NULL ELSE batch_id END,
                    qa_reader = COALESCE($3, qa_reader),
                    qa_reads = qa_reads + $4,
                    qa_image_reads = CASE WHEN $5 THEN 0 ELSE qa_image_reads + $4 END,
                    qa_cost_usd = qa_cost_usd + $6,
                    qa_strings = COALESCE($7, qa_strings),
                    qa_verdict = COALESCE($8, qa_verdict),
                    qa_regenerations = qa_regenerations + CASE WHEN $5 AND NOT $13 THEN 1 ELSE 0 END,
                    qa_overlay = CASE WHEN $13 THEN 1 ELSE qa_overlay END,
                    qa_regen_cost_usd = qa_regen_cost_usd + CASE WHEN $5 THEN COALESCE(cost_usd, 0) ELSE 0 END,
                    attempts = CASE WHEN $5 THEN 0 ELSE attempts END,
                    error_code = CASE WHEN $1 = 'failed' THEN $9 ELSE error_code END,
                    error_detail = CASE WHEN $1 = 'failed' THEN $10 ELSE error_detail END,
                    updated_at = $11,
                    finished_at = CASE WHEN $1 IN ('done', 'failed') THEN $11 ELSE finished_at END
             WHERE id = $12 AND state IN ('read_in_flight', 'read_batch_submitted') AND state IN {}
               AND {}",
            from_states_sql(to),
            // A late read of a runner whose lease expired never overwrites
            // the newer claim's (its cost is still recorded below).
            super::lease_held("$14")
        );
        let res = sqlx::query(AssertSqlSafe(sql))
            .bind(to.as_str())
            .bind(not_before)
            .bind(reader.map(ReaderModel::as_str))
            .bind(counted)
            .bind(regenerate)
            .bind(cost)
            .bind(checks_json)
            .bind(verdict)
            .bind(code)
            .bind(detail)
            .bind(now)
            .bind(job)
            .bind(overlay)
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
}
