//! Batch bookkeeping. The order of writes is the guard against paying twice:
//! a batch row (state `submitting`) and its jobs are recorded in one
//! transaction *before* the remote create call; the remote name is stored
//! after it. On resume a `submitting` batch is looked up remotely by its
//! deterministic display name before anything is created again.

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Row};

use super::{Decoder, JobId, RunId, Store, from_states_sql, parsed, stored_model, to_i64};
use crate::domain::{BatchState, Error, ImageSize, JobKey, JobState, ModelId, Result, now_ms};

/// A batch row.
#[derive(Debug, Clone)]
pub struct BatchRow {
    /// Local id.
    pub id: i64,
    /// Deterministic display name.
    pub display_name: String,
    /// `batches/…` once created.
    pub remote_name: Option<String>,
    /// Local state.
    pub state: BatchState,
    /// Model id.
    pub model: ModelId,
    /// Requests in it.
    pub request_count: i64,
    /// Polls so far.
    pub polls: i64,
    /// True when the run that assigned it has ended (so it may be resumed).
    pub owner_gone: bool,
}

/// A job inside a batch.
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// Row id.
    pub id: JobId,
    /// Identity.
    pub key: JobKey,
    /// Attempts so far (the batch assignment counts as one).
    pub attempts: u32,
    /// Request hash.
    pub request_hash: String,
    /// Model.
    pub model: ModelId,
    /// Size tier.
    pub image_size: ImageSize,
    /// Job state.
    pub state: JobState,
    /// Copy QA fell back to overlay: the item asks for copy-free art.
    pub overlay: bool,
}

/// A batch about to be created remotely, as recorded first.
pub(super) struct BatchRecord<'a> {
    pub campaign: &'a str,
    /// The model (image batches) or reader (read batches) it asks.
    pub target: &'a str,
    /// `image` or `read`.
    pub kind: &'static str,
    pub display_name: &'a str,
    pub requests: usize,
    pub run: RunId,
}

impl Store {
    /// Record a batch as `submitting` (inside the caller's transaction)
    /// and return its id. A batch abandoned before it ever existed
    /// remotely may come back with the same content, hence the same name:
    /// its row is reused. Any other clash means the name was used for a
    /// real batch, and we stop.
    pub(super) async fn insert_batch(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        b: BatchRecord<'_>,
    ) -> Result<i64> {
        sqlx::query(
            "INSERT INTO batches (campaign, model, display_name, state, request_count, created_at,
                                  owner_run, kind)
             VALUES ($1, $2, $3, 'submitting', $4, $5, $6, $7)
             ON CONFLICT (display_name) DO UPDATE SET state = 'submitting', remote_name = NULL,
                 owner_run = excluded.owner_run,
                 detail = NULL, finished_at = NULL, request_count = excluded.request_count,
                 created_at = excluded.created_at, polls = 0
             WHERE batches.state = 'abandoned'
             RETURNING id",
        )
        .bind(b.campaign)
        .bind(b.target)
        .bind(b.display_name)
        .bind(to_i64("batch size", b.requests)?)
        .bind(now_ms())
        .bind(b.run)
        .bind(b.kind)
        .fetch_optional(&mut **tx)
        .await
        .map_err(self.err())?
        .map(|r| r.get(0))
        .ok_or_else(|| {
            Error::Internal(format!(
                "batch name {} is already taken by a batch that was created remotely",
                b.display_name
            ))
        })
    }

    /// Assign up to `limit` pending jobs (among `eligible`) to a new batch in
    /// one `BEGIN IMMEDIATE` transaction. The display name is derived from
    /// the campaign and the chunk's content (job ids, request hashes and
    /// attempt numbers), so a resubmission after a failed batch gets a new name
    /// and a resumed one keeps its own. `None` when nothing is pending.
    pub async fn assign_batch(
        &self,
        run: RunId,
        campaign: &str,
        model: &ModelId,
        eligible: &std::collections::HashSet<JobId>,
        limit: usize,
    ) -> Result<Option<(BatchRow, Vec<BatchJob>)>> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "SELECT id, request_hash, attempts, qa_regenerations, qa_overlay,
                    CASE WHEN edit_note IS NULL THEN 0 ELSE revision END
             FROM jobs
             WHERE campaign = $1 AND model = $2 AND state = 'pending'
               AND (not_before IS NULL OR not_before <= $3)
             ORDER BY id{}",
            self.dialect.lock_rows()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(campaign)
            .bind(model.as_str())
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.err())?;
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|r| eligible.contains(&r.get::<i64, _>(0)))
            .collect();
        // Edits of earlier images go in batches of their own: an OpenAI
        // batch has one endpoint (`/v1/images/edits` for every edit).
        let editing = rows.first().is_some_and(|r| r.get::<i64, _>(5) > 0);
        let chosen: Vec<(i64, String, String)> = rows
            .into_iter()
            .filter(|r| (r.get::<i64, _>(5) > 0) == editing)
            .map(|r| {
                let (id, hash, attempts) = (
                    r.get::<i64, _>(0),
                    r.get::<String, _>(1),
                    r.get::<i64, _>(2),
                );
                // A regeneration or an overlay fallback starts its attempts
                // afresh: its rounds name it apart from the batch that
                // bought the image it replaces. So does an edit, by the
                // revision it edits.
                let (regens, overlay, edits) =
                    (r.get::<i64, _>(3), r.get::<i64, _>(4), r.get::<i64, _>(5));
                let line = if edits > 0 {
                    format!("{id}:{hash}:{attempts}:edit{edits}")
                } else if regens == 0 && overlay == 0 {
                    format!("{id}:{hash}:{attempts}")
                } else {
                    format!("{id}:{hash}:{attempts}:qa{regens}:{overlay}")
                };
                (id, hash, line)
            })
            .take(limit)
            .collect();
        if chosen.is_empty() {
            return Ok(None);
        }
        let mut h = Sha256::new();
        for (_, _, line) in &chosen {
            h.update(format!("{line}\n"));
        }
        let digest = hex::encode(h.finalize());
        let display_name = format!("adloc-{campaign}-{}", &digest[..16]);
        let batch_id = self
            .insert_batch(
                &mut tx,
                BatchRecord {
                    campaign,
                    target: model.as_str(),
                    kind: "image",
                    display_name: &display_name,
                    requests: chosen.len(),
                    run,
                },
            )
            .await?;
        let sql = format!(
            "UPDATE jobs SET state = 'batch_submitting', batch_id = $1, attempts = attempts + 1,
                    not_before = NULL, updated_at = $2 WHERE id = $3 AND state IN {}",
            from_states_sql(JobState::BatchSubmitting)
        );
        for (id, _, _) in &chosen {
            sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(batch_id)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())?;
        let row = BatchRow {
            id: batch_id,
            display_name,
            remote_name: None,
            state: BatchState::Submitting,
            model: model.clone(),
            request_count: chosen.len() as i64,
            polls: 0,
            owner_gone: false,
        };
        let jobs = self.batch_jobs(batch_id).await?;
        Ok(Some((row, jobs)))
    }

    /// Take over a `submitting` batch whose owner run has ended, for `run`,
    /// in one statement. Only the runner that gets `true` may look the
    /// batch up remotely and record or abandon it: two runners resuming
    /// the same batch at once (on one host or several) would otherwise
    /// both find it missing and both buy its chunk again.
    pub async fn adopt_batch(&self, batch: i64, run: RunId) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE batches SET owner_run = $2
             WHERE id = $1 AND state = 'submitting'
               AND (owner_run IS NULL
                    OR owner_run IN (SELECT id FROM runs WHERE finished_at IS NOT NULL))",
        )
        .bind(batch)
        .bind(run)
        .execute(self.pool())
        .await
        .map_err(self.err())?;
        Ok(res.rows_affected() == 1)
    }

    /// The remote create succeeded: store its name, move the jobs on.
    pub async fn batch_submitted(&self, batch: i64, remote_name: &str) -> Result<()> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE batches SET state = 'submitted', remote_name = $1, submitted_at = $2 WHERE id = $3")
            .bind(remote_name)
            .bind(now)
            .bind(batch)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        // A batch buys images or reads: its jobs move on from whichever
        // submitting state they are in.
        for (from, to) in [
            (JobState::BatchSubmitting, JobState::BatchSubmitted),
            (JobState::ReadBatchSubmitting, JobState::ReadBatchSubmitted),
        ] {
            let sql = format!(
                "UPDATE jobs SET state = '{to}', updated_at = $1
                 WHERE batch_id = $2 AND state = '{from}' AND state IN {}",
                from_states_sql(to)
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(now)
                .bind(batch)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())?;
        Ok(())
    }

    /// End a batch locally (`abandoned` when it was never created remotely,
    /// `failed`/`expired`/`cancelled`/`ingested` otherwise) and return every
    /// job of it that has no result yet to pending. When the batch never ran
    /// (`refund`), the assignment does not count as an attempt.
    pub async fn close_batch(
        &self,
        batch: i64,
        state: BatchState,
        detail: Option<&str>,
        refund: bool,
    ) -> Result<u64> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE batches SET state = $1, detail = COALESCE($2, detail), finished_at = $3 WHERE id = $4")
            .bind(state.as_str())
            .bind(detail)
            .bind(now)
            .bind(batch)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        let sql = format!(
            "UPDATE jobs SET state = 'pending', batch_id = NULL, attempts = attempts - $1, updated_at = $2
             WHERE batch_id = $3 AND state IN ('batch_submitting', 'batch_submitted') AND state IN {}",
            from_states_sql(JobState::Pending)
        );
        let res = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(refund))
            .bind(now)
            .bind(batch)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        // Reads of a read batch with no result are due again (a read that
        // never ran counts nothing).
        let sql = format!(
            "UPDATE jobs SET state = 'checking', batch_id = NULL, updated_at = $1
             WHERE batch_id = $2 AND state IN ('read_batch_submitting', 'read_batch_submitted')
               AND state IN {}",
            from_states_sql(JobState::Checking)
        );
        let reads = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(batch)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        tx.commit().await.map_err(self.err())?;
        Ok(res.rows_affected() + reads.rows_affected())
    }

    /// Count a poll.
    pub async fn batch_polled(&self, batch: i64) -> Result<()> {
        sqlx::query("UPDATE batches SET polls = polls + 1 WHERE id = $1")
            .bind(batch)
            .execute(self.pool())
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Image batches of the campaign still open (submitting or submitted).
    /// Read batches are [`Store::open_read_batches`].
    pub async fn open_batches(&self, campaign: &str) -> Result<Vec<BatchRow>> {
        let rows = sqlx::query(
            "SELECT b.id, b.display_name, b.remote_name, b.state, b.model, b.request_count, b.polls,
                    CASE WHEN r.id IS NULL OR r.finished_at IS NOT NULL THEN 1 ELSE 0 END
             FROM batches b LEFT JOIN runs r ON r.id = b.owner_run
             WHERE b.campaign = $1 AND b.kind = 'image' AND b.state IN ('submitting', 'submitted')
             ORDER BY b.id",
        )
        .bind(campaign)
        .fetch_all(self.pool())
        .await
        .map_err(self.err())?;
        rows.into_iter()
            .map(|r| {
                Ok(BatchRow {
                    id: r.get(0),
                    display_name: r.get(1),
                    remote_name: r.get(2),
                    state: parsed("batch state", &r.get::<String, _>(3))?,
                    model: stored_model(&r.get::<String, _>(4))?,
                    request_count: r.get(5),
                    polls: r.get(6),
                    owner_gone: r.get::<i64, _>(7) != 0,
                })
            })
            .collect()
    }

    /// Jobs assigned to a batch.
    pub async fn batch_jobs(&self, batch: i64) -> Result<Vec<BatchJob>> {
        let rows = sqlx::query(
            "SELECT id, campaign, row_id, locale, variant, attempts, request_hash, model, image_size, state,
                    qa_overlay
             FROM jobs WHERE batch_id = $1 ORDER BY id",
        )
        .bind(batch)
        .fetch_all(self.pool())
        .await
        .map_err(self.err())?;
        let mut dec = Decoder::default();
        rows.into_iter()
            .map(|r| {
                Ok(BatchJob {
                    id: r.get(0),
                    key: dec.key(&r, 1)?,
                    attempts: r.get::<i64, _>(5) as u32,
                    request_hash: r.get(6),
                    model: stored_model(&r.get::<String, _>(7))?,
                    image_size: parsed("image size", &r.get::<String, _>(8))?,
                    state: parsed("job state", &r.get::<String, _>(9))?,
                    overlay: r.get::<i64, _>(10) != 0,
                })
            })
            .collect()
    }
}
