//! The campaigns `adloc enqueue` queued (migration
//! `20261201000008_campaign_sources.sql`): each with every file of its
//! folder, so a worker on any host loads exactly the enqueued campaign.

use sqlx::Row;

use super::Store;
use crate::domain::{JobState, Result, now_ms};

/// A campaign queued for workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueuedCampaign {
    /// Campaign name.
    pub campaign: String,
    /// Digest of its files (see `campaign::Sources::digest`).
    pub sources_sha256: String,
    /// The mode it was enqueued with (`None`: the campaign's own).
    pub mode: Option<String>,
}

impl Store {
    /// Queue `campaign` for workers with the files of its folder, replacing
    /// what an earlier enqueue stored, in one transaction (a worker sees the
    /// old files or the new, never a mix).
    pub async fn save_sources(
        &self,
        campaign: &str,
        sources_sha256: &str,
        mode: Option<&str>,
        files: &[(String, Vec<u8>)],
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM campaign_sources WHERE campaign = $1")
            .bind(campaign)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        sqlx::query(
            "INSERT INTO enqueued_campaigns (campaign, sources_sha256, mode, enqueued_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (campaign) DO UPDATE SET sources_sha256 = excluded.sources_sha256,
                 mode = excluded.mode, enqueued_at = excluded.enqueued_at",
        )
        .bind(campaign)
        .bind(sources_sha256)
        .bind(mode)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        for (path, bytes) in files {
            sqlx::query("INSERT INTO campaign_sources (campaign, path, bytes) VALUES ($1, $2, $3)")
                .bind(campaign)
                .bind(path)
                .bind(bytes)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())?;
        Ok(())
    }

    /// Keep the files of a campaign `adloc run` works on, so workers and
    /// `adloc manifest` can load it too; nothing is written when the stored
    /// files are the same (their enqueue mode is kept then).
    pub async fn keep_sources(
        &self,
        campaign: &str,
        sources_sha256: &str,
        files: &[(String, Vec<u8>)],
    ) -> Result<()> {
        let stored: Option<(String,)> =
            sqlx::query_as("SELECT sources_sha256 FROM enqueued_campaigns WHERE campaign = $1")
                .bind(campaign)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.err())?;
        if stored.is_some_and(|(s,)| s == sources_sha256) {
            return Ok(());
        }
        self.save_sources(campaign, sources_sha256, None, files)
            .await
    }

    /// Every enqueued campaign, by name.
    pub async fn enqueued_campaigns(&self) -> Result<Vec<EnqueuedCampaign>> {
        let rows = sqlx::query(
            "SELECT campaign, sources_sha256, mode FROM enqueued_campaigns ORDER BY campaign",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        rows.iter()
            .map(|r| {
                Ok(EnqueuedCampaign {
                    campaign: r.try_get(0).map_err(self.err())?,
                    sources_sha256: r.try_get(1).map_err(self.err())?,
                    mode: r.try_get(2).map_err(self.err())?,
                })
            })
            .collect()
    }

    /// The stored files of an enqueued campaign (`None`: never enqueued).
    pub async fn sources(
        &self,
        campaign: &str,
    ) -> Result<Option<(EnqueuedCampaign, Vec<(String, Vec<u8>)>)>> {
        let Some(head) = self
            .enqueued_campaigns()
            .await?
            .into_iter()
            .find(|c| c.campaign == campaign)
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT path, bytes FROM campaign_sources WHERE campaign = $1 ORDER BY path",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        let files = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0).map_err(self.err())?,
                    r.try_get::<Vec<u8>, _>(1).map_err(self.err())?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((head, files)))
    }

    /// True while any live job of `campaign` is not in a terminal state:
    /// there is something for a worker to do.
    pub async fn has_open_work(&self, campaign: &str) -> Result<bool> {
        let terminal: Vec<String> = JobState::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let sql = format!(
            "SELECT COUNT(*) FROM jobs WHERE campaign = $1 AND state NOT IN ({})",
            terminal.join(", ")
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(campaign)
            .fetch_one(&self.pool)
            .await
            .map_err(self.err())?;
        let open: i64 = row.try_get(0).map_err(self.err())?;
        Ok(open > 0)
    }
}
