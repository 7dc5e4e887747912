//! `text = "edit"` locales whose base cannot give them an image.
//!
//! A locale edit waits for its base locale's image. When the base job ends
//! without one it can be edited from (failed, blocked, or its copy QA fell
//! back to overlay: the asset is copy-free art typeset by adloc, which
//! carries no model conversation to continue), waiting would last forever
//! and every nightly run would exit 4 for "jobs still pending". Instead the
//! locale fails with [`Reason::BaseFailed`], its detail naming the base job,
//! and waits again as soon as its base is live again: queued by `adloc
//! retry` or by a later run, or made (then [`Store::release_waiting`]
//! queues the edit as usual).

use sqlx::{AssertSqlSafe, Row};

use super::{JobId, Store};
use crate::domain::{JobState, Reason, Result, now_ms};

/// SQL list literal of `states`, e.g. `('waiting')`.
fn states_sql(states: &[JobState]) -> String {
    let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("({})", names.join(", "))
}

/// A base job (alias `b`) that has no image a locale can be edited from,
/// and will not get one without a user's request.
const BASE_LOST: &str =
    "(b.state IN ('failed', 'blocked') OR (b.state = 'done' AND b.qa_overlay = 1))";

/// Why the locale edit of a base in `state` (with `qa_overlay`,
/// `error_code`) cannot be made, and what brings it back.
fn lost_detail(base: JobId, key: &str, state: &str, overlay: bool, code: Option<&str>) -> String {
    let why = match (state, overlay) {
        ("done", true) => "fell back to overlay after copy QA (its asset is copy-free art typeset by adloc, not an image to edit)".to_string(),
        ("blocked", _) => format!(
            "was blocked ({}); `adloc retry --blocked` queues it and this locale again",
            code.unwrap_or("blocked")
        ),
        _ => format!(
            "failed ({}); `adloc retry --failed` queues it and this locale again",
            code.unwrap_or("failed")
        ),
    };
    format!("base job {base} ({key}) {why}")
}

impl Store {
    /// Fail every waiting locale edit of `campaign` whose base job ended
    /// without an image to edit, with [`Reason::BaseFailed`], in one
    /// transaction. Returns how many.
    pub async fn fail_edits_without_base(&self, campaign: &str) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT j.id, b.id, b.locale, b.variant, b.row_id, b.state, b.qa_overlay, b.error_code
             FROM jobs j JOIN jobs b ON b.id = j.base_job
             WHERE j.campaign = $1 AND j.copy_edit IS NOT NULL AND j.state IN {from}
               AND {BASE_LOST}
             ORDER BY j.id",
            from = states_sql(&JobState::BASE_LOST_FROM),
        )))
        .bind(campaign)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.err())?;
        let fail = format!(
            "UPDATE jobs SET state = 'failed', error_code = $1, error_detail = $2,
                    finished_at = $3, updated_at = $3
             WHERE id = $4 AND state IN {}",
            states_sql(&JobState::BASE_LOST_FROM)
        );
        let now = now_ms();
        let mut n = 0;
        for r in rows {
            let (job, base): (JobId, JobId) = (r.get(0), r.get(1));
            let key = format!(
                "{}/{}/{}",
                r.get::<String, _>(2),
                r.get::<String, _>(3),
                r.get::<String, _>(4)
            );
            let state: String = r.get(5);
            let code: Option<String> = r.get(7);
            let detail = lost_detail(base, &key, &state, r.get::<i64, _>(6) != 0, code.as_deref());
            let res = sqlx::query(AssertSqlSafe(fail.clone()))
                .bind(Reason::BaseFailed.code())
                .bind(detail)
                .bind(now)
                .bind(job)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
            n += res.rows_affected();
        }
        tx.commit().await.map_err(self.err())?;
        Ok(n)
    }

    /// Inside a sync's transaction: every locale edit of `campaign` that
    /// failed with [`Reason::BaseFailed`] and whose base job is live again
    /// (queued, in flight, or made) waits again. Returns how many.
    pub(super) async fn rewait_edits_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        campaign: &str,
    ) -> Result<u64> {
        let sql = format!(
            "UPDATE jobs SET state = 'waiting', error_code = NULL, error_detail = NULL,
                    finished_at = NULL, attempts = 0, not_before = NULL, updated_at = $1
             WHERE campaign = $2 AND copy_edit IS NOT NULL AND error_code = $3
               AND state IN {from}
               AND EXISTS (SELECT 1 FROM jobs b WHERE b.id = jobs.base_job
                           AND b.state NOT IN ('superseded', 'retired') AND NOT {BASE_LOST})",
            from = states_sql(&JobState::REWAIT_FROM),
        );
        let res = sqlx::query(AssertSqlSafe(sql))
            .bind(now_ms())
            .bind(campaign)
            .bind(Reason::BaseFailed.code())
            .execute(conn)
            .await
            .map_err(self.err())?;
        Ok(res.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::lost_detail;

    #[test]
    fn the_detail_names_the_base_job_and_what_brings_the_locale_back() {
        let d = lost_detail(
            7,
            "en-US/hero/r1",
            "failed",
            false,
            Some("attempts_exhausted"),
        );
        assert!(
            d.starts_with("base job 7 (en-US/hero/r1) failed (attempts_exhausted)"),
            "{d}"
        );
        assert!(d.contains("adloc retry --failed"), "{d}");
        let d = lost_detail(7, "en-US/hero/r1", "blocked", false, Some("blocked_prompt"));
        assert!(
            d.contains("blocked (blocked_prompt)") && d.contains("--blocked"),
            "{d}"
        );
        let d = lost_detail(7, "en-US/hero/r1", "done", true, None);
        assert!(d.contains("fell back to overlay"), "{d}");
    }
}
