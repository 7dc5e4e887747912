//! The `renditions` and `rendition_failures` tables: what was derived from
//! each done job's master, keyed by job and settings hash.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{JobId, Store, parsed};
use crate::domain::{JobState, Result, now_ms};

/// A rendition as listed in the manifest under its asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionEntry {
    /// Path relative to the manifest.
    pub path: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// File size.
    pub bytes: u64,
    /// Exact width.
    pub width: u32,
    /// Exact height.
    pub height: u32,
    /// `image/png`, `image/jpeg` or `image/webp`.
    pub mime_type: String,
    /// `cover` or `contain`.
    pub fit: String,
    /// True when the master was smaller than needed and had to be enlarged.
    pub upscaled: bool,
    /// IPTC marking and C2PA Content Credentials of this file (issue 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Box<crate::domain::provenance::ProvenanceEntry>>,
}

/// A stored rendition, as the reconcile step compares it.
#[derive(Debug, Clone)]
pub struct StoredRendition {
    /// The job whose master it came from.
    pub job_id: JobId,
    /// Hash of its settings.
    pub settings_hash: String,
    /// The master it was derived from.
    pub master_sha256: String,
    /// Path relative to the campaign output.
    pub path: String,
    /// File size.
    pub bytes: u64,
    /// The job's state.
    pub job_state: JobState,
}

/// A rendition that could not be made.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionFailure {
    /// The job whose master it needed.
    pub job_id: JobId,
    /// Hash of its settings.
    pub settings_hash: String,
    /// Where it would have gone.
    pub path: String,
    /// What went wrong.
    pub detail: String,
}

impl Store {
    /// Every stored rendition of the campaign's jobs.
    pub async fn stored_renditions(&self, campaign: &str) -> Result<Vec<StoredRendition>> {
        let rows = sqlx::query(
            "SELECT r.job_id, r.settings_hash, r.master_sha256, r.path, r.bytes, j.state
             FROM renditions r JOIN jobs j ON j.id = r.job_id WHERE j.campaign = $1",
        )
        .bind(campaign)
        .fetch_all(self.pool())
        .await
        .map_err(self.err())?;
        rows.into_iter()
            .map(|r| {
                Ok(StoredRendition {
                    job_id: r.get(0),
                    settings_hash: r.get(1),
                    master_sha256: r.get(2),
                    path: r.get(3),
                    bytes: r.get::<i64, _>(4) as u64,
                    job_state: parsed("job state", &r.get::<String, _>(5))?,
                })
            })
            .collect()
    }

    /// Record a rendition whose file is in place (replacing an older one of
    /// the same settings), and clear any failure recorded for it.
    pub async fn record_rendition(
        &self,
        job: JobId,
        settings_hash: &str,
        master_sha256: &str,
        entry: &RenditionEntry,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO renditions (job_id, settings_hash, master_sha256, path, sha256, bytes,
                width, height, mime_type, fit, upscaled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (job_id, settings_hash) DO UPDATE SET
                master_sha256 = excluded.master_sha256, path = excluded.path,
                sha256 = excluded.sha256, bytes = excluded.bytes, width = excluded.width,
                height = excluded.height, mime_type = excluded.mime_type, fit = excluded.fit,
                upscaled = excluded.upscaled, created_at = excluded.created_at",
        )
        .bind(job)
        .bind(settings_hash)
        .bind(master_sha256)
        .bind(&entry.path)
        .bind(&entry.sha256)
        .bind(super::to_i64("file size", entry.bytes)?)
        .bind(i64::from(entry.width))
        .bind(i64::from(entry.height))
        .bind(&entry.mime_type)
        .bind(&entry.fit)
        .bind(i64::from(entry.upscaled))
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        sqlx::query("DELETE FROM rendition_failures WHERE job_id = $1 AND settings_hash = $2")
            .bind(job)
            .bind(settings_hash)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        tx.commit().await.map_err(self.err())
    }

    /// Record that a rendition could not be made (replacing an earlier record).
    pub async fn record_rendition_failure(&self, f: &RenditionFailure) -> Result<()> {
        sqlx::query(
            "INSERT INTO rendition_failures (job_id, settings_hash, path, detail, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (job_id, settings_hash) DO UPDATE SET
                path = excluded.path, detail = excluded.detail, created_at = excluded.created_at",
        )
        .bind(f.job_id)
        .bind(&f.settings_hash)
        .bind(&f.path)
        .bind(&f.detail)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map_err(self.err())?;
        Ok(())
    }

    /// Forget a rendition (its settings left the campaign).
    pub async fn delete_rendition(&self, job: JobId, settings_hash: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for sql in [
            "DELETE FROM renditions WHERE job_id = $1 AND settings_hash = $2",
            "DELETE FROM rendition_failures WHERE job_id = $1 AND settings_hash = $2",
        ] {
            sqlx::query(sql)
                .bind(job)
                .bind(settings_hash)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())
    }

    /// Current rendition failures of the campaign's done jobs.
    pub async fn rendition_failures(&self, campaign: &str) -> Result<Vec<RenditionFailure>> {
        let rows = sqlx::query(
            "SELECT f.job_id, f.settings_hash, f.path, f.detail
             FROM rendition_failures f JOIN jobs j ON j.id = f.job_id
             WHERE j.campaign = $1 AND j.state = 'done' ORDER BY f.job_id, f.path",
        )
        .bind(campaign)
        .fetch_all(self.pool())
        .await
        .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|r| RenditionFailure {
                job_id: r.get(0),
                settings_hash: r.get(1),
                path: r.get(2),
                detail: r.get(3),
            })
            .collect())
    }

    /// Every stored rendition of the campaign's jobs, by job, ordered by
    /// path, for the manifest.
    pub async fn rendition_entries(
        &self,
        campaign: &str,
    ) -> Result<HashMap<JobId, Vec<RenditionEntry>>> {
        let rows = sqlx::query(
            "SELECT r.job_id, r.path, r.sha256, r.bytes, r.width, r.height, r.mime_type, r.fit, r.upscaled
             FROM renditions r JOIN jobs j ON j.id = r.job_id
             WHERE j.campaign = $1 ORDER BY r.job_id, r.path",
        )
        .bind(campaign)
        .fetch_all(self.pool())
        .await
        .map_err(self.err())?;
        let mut out: HashMap<JobId, Vec<RenditionEntry>> = HashMap::new();
        for r in rows {
            out.entry(r.get(0)).or_default().push(RenditionEntry {
                path: r.get(1),
                sha256: r.get(2),
                bytes: r.get::<i64, _>(3) as u64,
                width: r.get::<i64, _>(4) as u32,
                height: r.get::<i64, _>(5) as u32,
                mime_type: r.get(6),
                fit: r.get(7),
                upscaled: r.get::<i64, _>(8) != 0,
                provenance: None,
            });
        }
        Ok(out)
    }
}
