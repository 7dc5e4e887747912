//! Review state (migration `20261201000004_approvals.sql`): reviewers'
//! decisions, the manifest each run built, and what each run spent.
//!
//! Decisions are appended, never updated: the current approval of an asset
//! is the latest decision about its exact (sha256, request sha256), so a
//! rerun that leaves an asset alone keeps its decision, a changed request
//! makes a new asset with none, and the history stays for the page.

use std::collections::HashMap;

use sqlx::Row;

use super::{RunId, Store, parsed};
use crate::domain::{ApprovalState, Decision, DecisionFacts, Result, Transition, now_ms};

/// How many manifests per campaign are kept: the latest (rebuilt from when
/// a decision is made) and the one before (what the page compares with).
const SNAPSHOTS_KEPT: i64 = 2;

/// One decision to record about one asset.
#[derive(Debug, Clone)]
pub struct NewDecision {
    /// The asset's path, as the manifest lists it.
    pub asset_path: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Hex SHA-256 of the request that made it.
    pub request_sha256: String,
    /// The decision, who made it and why.
    pub facts: DecisionFacts,
}

/// One recorded decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRow {
    /// The asset's path when the decision was made.
    pub asset_path: String,
    /// Hex SHA-256 of the file decided on.
    pub sha256: String,
    /// Hex SHA-256 of its request.
    pub request_sha256: String,
    /// What the decision made the asset.
    pub state: ApprovalState,
    /// Reviewer.
    pub by: String,
    /// Note.
    pub note: Option<String>,
    /// When (ms since the epoch).
    pub at: i64,
}

impl DecisionRow {
    /// The identity of the asset decided on.
    pub fn asset(&self) -> (&str, &str) {
        (&self.sha256, &self.request_sha256)
    }
}

/// The manifest a run built, as stored.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The run.
    pub run_id: RunId,
    /// The manifest document (JSON).
    pub json: String,
    /// What the run spent (all attempts it recorded), USD.
    pub spent_usd: f64,
}

impl Store {
    /// Record decisions, all or none, in one transaction. A decision the
    /// asset already has from the same reviewer with the same note is not
    /// recorded again (see [`ApprovalState::apply`]). Returns how many were
    /// recorded.
    pub async fn record_decisions(
        &self,
        campaign: &str,
        decisions: &[NewDecision],
    ) -> Result<usize> {
        let mut tx = self.write_tx().await?;
        // The latest decision per asset, read under the write lock so two
        // reviewers importing at once see each other's decisions.
        let rows = sqlx::query(
            "SELECT sha256, request_sha256, decision, decided_by, note FROM decisions
             WHERE campaign = $1 ORDER BY id",
        )
        .bind(campaign)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.err())?;
        let mut latest: HashMap<(String, String), (ApprovalState, DecisionFacts)> = HashMap::new();
        for r in rows {
            let state: ApprovalState = parsed("decision", &r.get::<String, _>(2))?;
            let decision = match state {
                ApprovalState::Rejected => Decision::Reject,
                ApprovalState::Approved => Decision::Approve,
                ApprovalState::Pending => Decision::Undo,
            };
            latest.insert(
                (r.get(0), r.get(1)),
                (
                    state,
                    DecisionFacts {
                        decision,
                        by: r.get(3),
                        note: r.get(4),
                    },
                ),
            );
        }
        let now = now_ms();
        let mut recorded = 0;
        for d in decisions {
            let key = (d.sha256.clone(), d.request_sha256.clone());
            let (state, current) = match latest.get(&key) {
                Some((s, f)) => (*s, Some(f)),
                None => (ApprovalState::Pending, None),
            };
            let Transition::To(to) = state.apply(current, &d.facts) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO decisions (campaign, asset_path, sha256, request_sha256, decision,
                    decided_by, note, decided_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(campaign)
            .bind(&d.asset_path)
            .bind(&d.sha256)
            .bind(&d.request_sha256)
            .bind(to.as_str())
            .bind(&d.facts.by)
            .bind(&d.facts.note)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
            latest.insert(key, (to, d.facts.clone()));
            recorded += 1;
        }
        tx.commit().await.map_err(self.err())?;
        Ok(recorded)
    }

    /// Every decision about the campaign's assets, oldest first.
    pub async fn decisions(&self, campaign: &str) -> Result<Vec<DecisionRow>> {
        let rows = sqlx::query(
            "SELECT asset_path, sha256, request_sha256, decision, decided_by, note, decided_at
             FROM decisions WHERE campaign = $1 ORDER BY id",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        rows.into_iter()
            .map(|r| {
                Ok(DecisionRow {
                    asset_path: r.get(0),
                    sha256: r.get(1),
                    request_sha256: r.get(2),
                    state: parsed("decision", &r.get::<String, _>(3))?,
                    by: r.get(4),
                    note: r.get(5),
                    at: r.get(6),
                })
            })
            .collect()
    }

    /// Keep the manifest `run` built from the state read at `read_at_ms`
    /// (its time, which tells whether later changes are shown: see
    /// [`Store::publication`]), and drop the campaign's older ones beyond
    /// the two the review page needs.
    pub async fn save_snapshot(
        &self,
        run: RunId,
        campaign: &str,
        json: &str,
        read_at_ms: i64,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO manifest_snapshots (run_id, campaign, json, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (run_id) DO UPDATE SET campaign = excluded.campaign,
                 json = excluded.json, created_at = excluded.created_at",
        )
        .bind(run)
        .bind(campaign)
        .bind(json)
        .bind(read_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        sqlx::query(
            "DELETE FROM manifest_snapshots WHERE campaign = $1 AND run_id NOT IN
               (SELECT run_id FROM manifest_snapshots WHERE campaign = $1
                ORDER BY run_id DESC LIMIT $2)",
        )
        .bind(campaign)
        .bind(SNAPSHOTS_KEPT)
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        tx.commit().await.map_err(self.err())?;
        Ok(())
    }

    /// What the review page of `campaign` shows changes when this does:
    /// the latest run's snapshot and the latest decision (ids only, so the
    /// review server can ask every few seconds for next to nothing).
    pub async fn review_version(&self, campaign: &str) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(run_id), 0) FROM manifest_snapshots WHERE campaign = $1),
                    (SELECT COALESCE(MAX(id), 0) FROM decisions WHERE campaign = $1)",
        )
        .bind(campaign)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        Ok((row.get(0), row.get(1)))
    }

    /// The campaign's stored manifests, latest first (at most two), each
    /// with what its run spent.
    pub async fn snapshots(&self, campaign: &str) -> Result<Vec<Snapshot>> {
        let rows = sqlx::query(
            "SELECT s.run_id, s.json,
                    (SELECT COALESCE(SUM(a.cost_usd), 0.0) FROM attempts a WHERE a.run_id = s.run_id)
             FROM manifest_snapshots s WHERE s.campaign = $1 ORDER BY s.run_id DESC LIMIT $2",
        )
        .bind(campaign)
        .bind(SNAPSHOTS_KEPT)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|r| Snapshot {
                run_id: r.get(0),
                json: r.get(1),
                spent_usd: r.get(2),
            })
            .collect())
    }
}
