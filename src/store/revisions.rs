//! Revise by editing (migration `20261201000007_revisions.sql`): a done job
//! whose current image a reviewer rejected is queued again as an edit of
//! that image, and every image an edit replaced is kept in `revisions`.
//!
//! An edit is identified by its job and the SHA-256 of the image it edits:
//! once that image has been replaced (a `revisions` row holds its sha256)
//! it is never edited again, so a rerun after an edit does nothing, and a
//! new rejection of the new image queues the next revision.

use std::collections::HashMap;

use sqlx::Row;

use super::{JobId, Store};
use crate::domain::{JobState, ModelTurn, Result, now_ms};

/// The image a queued edit revises, as the store knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEdit {
    /// The revision number of the image being revised (1 for a first image).
    pub revision: u32,
    /// Its path, relative to the campaign output.
    pub path: String,
    /// Its SHA-256 (hex): the bytes sent are checked against it.
    pub sha256: String,
    /// Its MIME type.
    pub mime_type: String,
    /// The instruction: the reviewer's note, or (`text = "edit"`) the
    /// copy to replace.
    pub note: String,
    /// `text = "edit"`: the image is the base locale's, edited into this
    /// locale's; it is not this job's own and is not replaced.
    pub of_base: bool,
    /// The model turn that made the image (Gemini), for an edit of the
    /// job's own image: from `model_turn`, or, for an image made before
    /// whole turns were kept, its image part's signature alone. `None` for
    /// `text = "edit"` (the turn is another conversation's) and for images
    /// without a turn (another vendor's).
    pub turn: Option<ModelTurn>,
    /// The earlier exchanges of the job's conversation, oldest first: each
    /// replaced image with its turn and the note that replaced it. Empty
    /// for `text = "edit"` and for a first revision.
    pub history: Vec<PastTurn>,
}

/// One earlier exchange of a job's edit conversation: a replaced image as
/// kept, the model turn that made it, and the note that replaced it.
#[derive(Debug, Clone, PartialEq)]
pub struct PastTurn {
    /// Its revision number.
    pub revision: u32,
    /// Where the image is kept (relative to the campaign output).
    pub path: String,
    /// Its SHA-256 (hex): the kept file is checked against it.
    pub sha256: String,
    /// Its MIME type.
    pub mime_type: String,
    /// The model turn that made it, when known (see [`PendingEdit::turn`]).
    pub turn: Option<ModelTurn>,
    /// The note that asked for the next revision.
    pub note: String,
}

/// A stored turn: the JSON `model_turn`, else (state written before whole
/// turns were kept) the image's signature alone, else none.
fn stored_turn(json: Option<String>, signature: Option<String>) -> Option<ModelTurn> {
    match json.and_then(|j| serde_json::from_str::<ModelTurn>(&j).ok()) {
        Some(t) => Some(t),
        None => signature.map(|s| ModelTurn::image_only(Some(s))),
    }
}

/// One image an edit replaced, for the manifest's history of an asset.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionEntry {
    /// Its revision number.
    pub revision: u32,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// Where it is kept (`<locale>/<variant>/<row-id>.r<N>.<ext>`).
    pub path: String,
    /// The note that replaced it.
    pub note: String,
    /// When it was replaced (ms).
    pub at: i64,
}

/// The SQL list of the states a revise statement may move a job from.
fn revise_from_sql() -> String {
    let names: Vec<String> = JobState::REVISE_FROM
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("({})", names.join(", "))
}

/// The latest decision about a job's current image (same sha256, same
/// request), as a correlated subquery over `jobs`. `column` picks what of it.
/// A model-text image with brand layers is reviewed as the file it ships
/// as, its composite: a decision about that file counts when the composite
/// is the job's own (same identity) and was drawn onto its current image
/// (`art_sha256`), so an edit is not bought twice before it is layered
/// again.
fn latest_decision(column: &str) -> String {
    format!(
        "(SELECT d.{column} FROM decisions d
          WHERE d.campaign = jobs.campaign AND d.request_sha256 = jobs.request_hash
            AND (d.sha256 = jobs.sha256
                 OR d.sha256 IN (SELECT c.sha256 FROM composites c
                                 WHERE c.art_job_id = jobs.id AND c.state = 'done'
                                   AND c.row_id = jobs.row_id AND c.locale = jobs.locale
                                   AND c.variant = jobs.variant
                                   AND c.art_sha256 = jobs.sha256))
          ORDER BY d.id DESC LIMIT 1)"
    )
}

impl Store {
    /// The done jobs of the campaign whose current image's latest decision
    /// is a rejection with a note, unless that image was already edited,
    /// each with the edit it is due for. Copy-QA overlay fallbacks are
    /// skipped: their asset is typeset by adloc from a copy-free image.
    /// Nothing is written: the caller keeps each image first, then queues
    /// the edits whose image it could keep ([`Store::queue_revisions`]).
    pub async fn revisable(&self, campaign: &str) -> Result<Vec<(JobId, PendingEdit)>> {
        let sql = format!(
            "SELECT id, revision, asset_path, sha256, mime_type, {note}
             FROM jobs
             WHERE campaign = $1 AND state IN {from} AND qa_overlay = 0
               AND sha256 IS NOT NULL AND asset_path IS NOT NULL
               AND {decision} = 'rejected' AND {note} IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM revisions r
                               WHERE r.job_id = jobs.id AND r.sha256 = jobs.sha256)
             ORDER BY id",
            note = latest_decision("note"),
            decision = latest_decision("decision"),
            from = revise_from_sql(),
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(campaign)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.get(0),
                    PendingEdit {
                        revision: r.get::<i64, _>(1) as u32,
                        path: r.get(2),
                        sha256: r.get(3),
                        mime_type: r.get::<Option<String>, _>(4).unwrap_or_default(),
                        note: r.get(5),
                        of_base: false,
                        // Only what keeping the image needs: the turns are
                        // read when the edit is sent.
                        turn: None,
                        history: Vec::new(),
                    },
                )
            })
            .collect())
    }

    /// Queue the edits, in one transaction: each job goes back to pending
    /// with the note as its instruction and its attempts afresh, provided
    /// it is still done with the same image. Returns how many were queued.
    pub async fn queue_revisions(&self, edits: &[(JobId, PendingEdit)]) -> Result<u64> {
        let sql = format!(
            "UPDATE jobs SET state = 'pending', edit_note = $1, attempts = 0, not_before = NULL,
                    error_code = NULL, error_detail = NULL, block_reason = NULL,
                    finished_at = NULL, qa_image_reads = 0, qa_regenerations = 0, updated_at = $2
             WHERE id = $3 AND sha256 = $4 AND state IN {}",
            revise_from_sql()
        );
        let mut tx = self.write_tx().await?;
        let now = now_ms();
        let mut n = 0;
        for (id, e) in edits {
            let res = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(&e.note)
                .bind(now)
                .bind(id)
                .bind(&e.sha256)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
            n += res.rows_affected();
        }
        tx.commit().await.map_err(self.err())?;
        Ok(n)
    }

    /// For every live job of `campaign` queued as an edit, the bytes of the
    /// images its request will carry beyond its spec: the image it edits
    /// (its own, or for a `text = "edit"` locale its base's) and, for a
    /// revision, the earlier revisions a Gemini conversation replays (taken
    /// as the current image's size each: the same frame; their sizes are
    /// not recorded, and GPT Image, which sends only the current one, gets
    /// smaller files than it could). Batch
    /// input files are sized with it, since those images are attached only
    /// when the batch is made.
    pub async fn edit_image_bytes(&self, campaign: &str) -> Result<HashMap<JobId, u64>> {
        let rows = sqlx::query(
            "SELECT j.id, COALESCE(j.bytes, 0)
                    * (1 + (SELECT COUNT(*) FROM revisions r WHERE r.job_id = j.id))
             FROM jobs j
             WHERE j.campaign = $1 AND j.edit_note IS NOT NULL
               AND j.state NOT IN ('superseded', 'retired')
             UNION ALL
             SELECT j.id, COALESCE(b.bytes, 0)
             FROM jobs j JOIN jobs b ON b.id = j.base_job
             WHERE j.campaign = $1 AND j.edit_note IS NULL AND j.copy_edit IS NOT NULL
               AND j.state NOT IN ('superseded', 'retired')",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1).max(0) as u64))
            .collect())
    }

    /// The edit a job is queued for, if any: a revision of its own image
    /// (a reviewer's note), or, for a `text = "edit"` locale, its base
    /// locale's current image and the copy to replace.
    pub async fn pending_edit(&self, job: JobId) -> Result<Option<PendingEdit>> {
        let row = sqlx::query(
            "SELECT j.revision, j.asset_path, j.sha256, j.mime_type, j.thought_signature,
                    j.edit_note, CASE WHEN j.copy_edit IS NULL THEN 'own' ELSE 'own_copy' END,
                    j.model_turn
             FROM jobs j WHERE j.id = $1 AND j.edit_note IS NOT NULL
               AND j.asset_path IS NOT NULL AND j.sha256 IS NOT NULL
             UNION ALL
             SELECT b.revision, b.asset_path, b.sha256, b.mime_type, NULL,
                    j.copy_edit, 'base', NULL
             FROM jobs j JOIN jobs b ON b.id = j.base_job
             WHERE j.id = $1 AND j.edit_note IS NULL AND j.copy_edit IS NOT NULL
               AND b.asset_path IS NOT NULL AND b.sha256 IS NOT NULL",
        )
        .bind(job)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err())?;
        let Some(r) = row else {
            return Ok(None);
        };
        let source: String = r.get(6);
        let of_base = source == "base";
        let signature: Option<String> = r.get(4);
        let mut edit = PendingEdit {
            revision: r.get::<i64, _>(0) as u32,
            path: r.get(1),
            sha256: r.get(2),
            mime_type: r.get::<Option<String>, _>(3).unwrap_or_default(),
            note: r.get(5),
            of_base,
            turn: None,
            history: Vec::new(),
        };
        if of_base || source == "own_copy" {
            // Another job's image: its turn belongs to that job's
            // conversation and is never replayed in this one. And a
            // `text = "edit"` locale's own image answered one user turn
            // (the base image and the copy instruction), not this job's
            // prompt: replaying its turn after that prompt would send a
            // conversation the model never had, so its revision is a
            // single-turn edit too.
            return Ok(Some(edit));
        }
        edit.turn = stored_turn(r.get(7), signature);
        let rows = sqlx::query(
            "SELECT revision, path, sha256, mime_type, model_turn, thought_signature, note
             FROM revisions WHERE job_id = $1 AND revision < $2 ORDER BY revision",
        )
        .bind(job)
        .bind(i64::from(edit.revision))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        edit.history = rows
            .into_iter()
            .map(|r| PastTurn {
                revision: r.get::<i64, _>(0) as u32,
                path: r.get(1),
                sha256: r.get(2),
                mime_type: r.get(3),
                turn: stored_turn(r.get(4), r.get(5)),
                note: r.get(6),
            })
            .collect();
        Ok(Some(edit))
    }

    /// `text = "edit"`: queue every locale whose base locale's image is
    /// done and is not the one the locale was edited from: waiting locales
    /// (the base is made) and done ones (the base image changed, e.g. it
    /// was revised). One statement; returns how many were queued.
    pub async fn release_waiting(&self, campaign: &str) -> Result<u64> {
        let base_sha = "(SELECT b.sha256 FROM jobs b WHERE b.id = jobs.base_job
                           AND b.state = 'done' AND b.qa_overlay = 0)";
        let sql = format!(
            "UPDATE jobs SET state = 'pending', base_sha256 = {base_sha}, attempts = 0,
                    not_before = NULL, error_code = NULL, error_detail = NULL,
                    block_reason = NULL, finished_at = NULL, qa_image_reads = 0,
                    qa_regenerations = 0, updated_at = $2
             WHERE campaign = $1 AND base_job IS NOT NULL AND copy_edit IS NOT NULL
               AND edit_note IS NULL AND {base_sha} IS NOT NULL
               AND ((state = 'waiting' AND state IN {waiting})
                    OR (state IN {revise}
                        AND (base_sha256 IS NULL OR base_sha256 <> {base_sha})))",
            waiting = super::from_states_sql(JobState::Pending),
            revise = revise_from_sql(),
        );
        let res = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(campaign)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(res.rows_affected())
    }

    /// Every image an edit replaced, per job, oldest first.
    pub async fn revisions(&self, campaign: &str) -> Result<HashMap<JobId, Vec<RevisionEntry>>> {
        let rows = sqlx::query(
            "SELECT r.job_id, r.revision, r.sha256, r.path, r.note, r.created_at
             FROM revisions r JOIN jobs j ON j.id = r.job_id
             WHERE j.campaign = $1 ORDER BY r.job_id, r.revision",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        let mut out: HashMap<JobId, Vec<RevisionEntry>> = HashMap::new();
        for r in rows {
            out.entry(r.get(0)).or_default().push(RevisionEntry {
                revision: r.get::<i64, _>(1) as u32,
                sha256: r.get(2),
                path: r.get(3),
                note: r.get(4),
                at: r.get(5),
            });
        }
        Ok(out)
    }
}
