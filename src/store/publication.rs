//! Who publishes a campaign's manifest when several runners serve it
//! (migration `20261202000009_run_work_ended.sql`). Every runner's pass
//! ends together (a pass waits for jobs other runners hold, to take them
//! over if their runner dies), so without an election each of N workers
//! would rebuild the manifest and the review page at the same moment. The
//! last live runner to end its work publishes; the others leave it to it.
//! If that runner dies before publishing, the campaign's state is newer
//! than its last manifest with no runner left to publish it: an idle
//! worker sees that ([`Store::publication`]) and publishes.

use std::time::Duration;

use sqlx::Row;

use super::{Store, silent_since};
use crate::domain::{Result, now_ms};
use crate::store::RunId;

/// Whether a campaign's published manifest shows its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publication {
    /// The last manifest was built after every change of the campaign's
    /// jobs, renditions and composites (or there is nothing to show).
    Current,
    /// Something changed since; a live runner of the campaign will publish
    /// when it ends.
    Awaited,
    /// Something changed since and no live runner is left to publish it
    /// (the one that would have died): whoever sees this publishes.
    Due,
}

impl Store {
    /// Record that `run` has done its work on `campaign`, and say whether
    /// it is the last live run of the campaign to do so: then it publishes
    /// the manifest. Runs that died are ended first (as
    /// [`Store::recover_orphans`] ends them), so a killed worker does not
    /// keep the others from publishing. One transaction under the write
    /// lock: of runners ending at the same moment, exactly one sees all the
    /// others ended.
    pub async fn end_work(&self, run: RunId, campaign: &str, lease: Duration) -> Result<bool> {
        self.end_dead_runs(campaign, lease).await?;
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE runs SET work_ended_at = $1 WHERE id = $2")
            .bind(now)
            .bind(run)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        let row = sqlx::query(
            "SELECT COUNT(*) FROM runs
             WHERE campaign = $1 AND id <> $2 AND finished_at IS NULL
               AND work_ended_at IS NULL AND heartbeat_at >= $3",
        )
        .bind(campaign)
        .bind(run)
        .bind(silent_since(now, lease))
        .fetch_one(&mut *tx)
        .await
        .map_err(self.err())?;
        let still_working: i64 = row.try_get(0).map_err(self.err())?;
        tx.commit().await.map_err(self.err())?;
        Ok(still_working == 0)
    }

    /// Whether another live runner (heard from within `lease`) works on
    /// `campaign` beside `run`. Runners that went silent are ended first.
    pub async fn others_running(
        &self,
        campaign: &str,
        run: RunId,
        lease: Duration,
    ) -> Result<bool> {
        self.end_dead_runs(campaign, lease).await?;
        let row = sqlx::query(
            "SELECT COUNT(*) FROM runs
             WHERE campaign = $1 AND id <> $2 AND finished_at IS NULL AND heartbeat_at >= $3",
        )
        .bind(campaign)
        .bind(run)
        .bind(silent_since(now_ms(), lease))
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        let n: i64 = row.try_get(0).map_err(self.err())?;
        Ok(n > 0)
    }

    /// Whether `campaign`'s last manifest is current, awaited from a live
    /// runner, or due with no runner left to publish it.
    pub async fn publication(&self, campaign: &str, lease: Duration) -> Result<Publication> {
        self.end_dead_runs(campaign, lease).await?;
        let row = sqlx::query(
            "SELECT
                (SELECT MAX(updated_at) FROM jobs WHERE campaign = $1),
                (SELECT MAX(r.created_at) FROM renditions r JOIN jobs j ON j.id = r.job_id
                  WHERE j.campaign = $1),
                (SELECT MAX(f.created_at) FROM rendition_failures f JOIN jobs j ON j.id = f.job_id
                  WHERE j.campaign = $1),
                (SELECT MAX(updated_at) FROM composites WHERE campaign = $1),
                (SELECT MAX(created_at) FROM manifest_snapshots WHERE campaign = $1),
                (SELECT COUNT(*) FROM runs WHERE campaign = $1 AND finished_at IS NULL)",
        )
        .bind(campaign)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        let changed = (0..4)
            .map(|i| row.try_get::<Option<i64>, _>(i))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(self.err())?
            .into_iter()
            .flatten()
            .max();
        let published: Option<i64> = row.try_get(4).map_err(self.err())?;
        let live: i64 = row.try_get(5).map_err(self.err())?;
        // A snapshot's time is when its state was read (not written), so a
        // change at that very millisecond counts as not shown.
        let stale = match (changed, published) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(c), Some(p)) => c >= p,
        };
        Ok(match (stale, live > 0) {
            (false, _) => Publication::Current,
            (true, true) => Publication::Awaited,
            (true, false) => Publication::Due,
        })
    }
}
