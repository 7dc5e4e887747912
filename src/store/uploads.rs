//! The `uploads` table (migration `20261201000005_uploads.sql`): the
//! objects this state file has put in a bucket and read back, by their
//! campaign-relative path, with the sha256 the bucket returned.

use std::collections::HashMap;

use sqlx::Row;

use super::Store;
use crate::domain::{Result, now_ms};

impl Store {
    /// What was uploaded to `target` for `campaign`: path → sha256.
    pub async fn uploads(&self, target: &str, campaign: &str) -> Result<HashMap<String, String>> {
        let rows = sqlx::query(
            "SELECT object_key, sha256 FROM uploads WHERE target = $1 AND campaign = $2",
        )
        .bind(target)
        .bind(campaign)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0).map_err(self.err())?,
                    r.try_get::<String, _>(1).map_err(self.err())?,
                ))
            })
            .collect()
    }

    /// Record an object as uploaded and verified.
    pub async fn record_upload(
        &self,
        target: &str,
        campaign: &str,
        key: &str,
        sha256: &str,
        bytes: u64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO uploads (target, campaign, object_key, sha256, bytes, uploaded_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (target, campaign, object_key)
             DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes,
                           uploaded_at = excluded.uploaded_at",
        )
        .bind(target)
        .bind(campaign)
        .bind(key)
        .bind(sha256)
        .bind(super::to_i64("file size", bytes)?)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(())
    }

    /// Forget an object deleted from the bucket.
    pub async fn forget_upload(&self, target: &str, campaign: &str, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM uploads WHERE target = $1 AND campaign = $2 AND object_key = $3")
            .bind(target)
            .bind(campaign)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }
}
