//! `adloc compare`: votes between models, the samples kept, and how long
//! each sample image took.

use std::collections::HashMap;

use sqlx::Row;

use super::Store;
use crate::domain::{Result, now_ms};

/// A vote to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVote {
    /// The real campaign (not a sample's name).
    pub campaign: String,
    /// The cell: row, locale, variant.
    pub row_id: String,
    /// Locale tag.
    pub locale: String,
    /// Variant name.
    pub variant: String,
    /// The model voted for.
    pub model: String,
    /// The image voted for.
    pub sha256: String,
    /// Who voted (from the login, never the browser).
    pub voter: String,
}

/// A recorded vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteRow {
    /// What was voted.
    pub vote: NewVote,
    /// When (ms since the epoch).
    pub at: i64,
}

impl Store {
    /// Record a vote (history kept; a voter's latest vote per cell counts).
    pub async fn record_vote(&self, v: &NewVote) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO compare_votes (campaign, row_id, locale, variant, model, sha256, voter, voted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&v.campaign)
        .bind(&v.row_id)
        .bind(&v.locale)
        .bind(&v.variant)
        .bind(&v.model)
        .bind(&v.sha256)
        .bind(&v.voter)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        tx.commit().await.map_err(self.err())?;
        Ok(())
    }

    /// Every vote about `campaign`'s samples, oldest first.
    pub async fn votes(&self, campaign: &str) -> Result<Vec<VoteRow>> {
        let rows = sqlx::query(
            "SELECT row_id, locale, variant, model, sha256, voter, voted_at FROM compare_votes
             WHERE campaign = $1 ORDER BY id",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|r| VoteRow {
                vote: NewVote {
                    campaign: campaign.to_string(),
                    row_id: r.get(0),
                    locale: r.get(1),
                    variant: r.get(2),
                    model: r.get(3),
                    sha256: r.get(4),
                    voter: r.get(5),
                },
                at: r.get(6),
            })
            .collect())
    }

    /// The names of the campaigns with a finished run whose name starts
    /// with `prefix` (the samples of a comparison), sorted.
    pub async fn campaigns_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        // substr/length rather than LIKE: a campaign name may hold `_` or `%`.
        let rows = sqlx::query(
            "SELECT DISTINCT campaign FROM manifest_snapshots
             WHERE substr(campaign, 1, length($1)) = $1 ORDER BY campaign",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    /// How long the call that made each current image of `campaign` took,
    /// in ms, by asset path (images made by a call only).
    pub async fn latencies(&self, campaign: &str) -> Result<HashMap<String, i64>> {
        let rows = sqlx::query(
            "SELECT j.asset_path,
                    (SELECT a.finished_at - a.started_at FROM attempts a
                      WHERE a.job_id = j.id AND a.outcome = 'ok' ORDER BY a.id DESC LIMIT 1)
             FROM jobs j WHERE j.campaign = $1 AND j.asset_path IS NOT NULL",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((r.get::<String, _>(0), r.get::<Option<i64>, _>(1)?)))
            .collect())
    }
}
