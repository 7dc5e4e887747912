//! The `placements` table: each delivered asset made to each ad platform
//! slot its variant names, or why it could not be, keyed by the asset's
//! identity and the placement id.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Store, parsed};
use crate::domain::{Reason, Result, now_ms};

/// Which delivered asset a placement belongs to, and which placement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlacementKey {
    /// The copy row.
    pub row_id: String,
    /// The locale tag of the asset.
    pub locale: String,
    /// The variant.
    pub variant: String,
    /// The placement id.
    pub placement: String,
}

impl PlacementKey {
    /// The asset identity `(row, locale, variant)` the manifest groups by.
    pub fn asset(&self) -> (String, String, String) {
        (
            self.row_id.clone(),
            self.locale.clone(),
            self.variant.clone(),
        )
    }
}

/// A placement file as the manifest lists it under its asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacementEntry {
    /// The placement id.
    pub placement: String,
    /// Path relative to the manifest.
    pub path: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// File size in bytes (under the placement's limit).
    pub bytes: u64,
    /// Exact width.
    pub width: u32,
    /// Exact height.
    pub height: u32,
    /// `image/jpeg` or `image/png`.
    pub mime_type: String,
    /// The JPEG quality the weight limit allowed (null for PNG).
    pub quality: Option<u8>,
    /// The palette size, when a PNG had to be quantized to fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colors: Option<u16>,
    /// The file passed its platform's checks after it was written (frame,
    /// ratio, weight, format, sRGB, no alpha in JPEG). Always true: a file
    /// that fails is not kept but listed as a failure.
    pub checks_passed: bool,
    /// True when the asset was smaller than the frame and was enlarged.
    pub upscaled: bool,
    /// What the platform's interface covers, as fractions of the frame
    /// (absent when it covers nothing): what the review page draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_area: Option<SafeAreaEntry>,
    /// IPTC marking and C2PA Content Credentials of this file (issue 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Box<crate::domain::provenance::ProvenanceEntry>>,
}

/// A placement's safe area in the manifest: the fractions of the frame
/// the platform's interface covers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SafeAreaEntry {
    /// Kept clear at the top.
    pub top: f64,
    /// Kept clear at the bottom.
    pub bottom: f64,
    /// Kept clear on the left.
    pub left: f64,
    /// Kept clear on the right.
    pub right: f64,
}

/// What became of one placement.
#[derive(Debug, Clone, PartialEq)]
pub enum PlacementOutcome {
    /// Its file is in place and passed its checks.
    Done(PlacementEntry),
    /// No file: why.
    Failed {
        /// Where it would have gone.
        path: String,
        /// `over_weight`, `placement_invalid` or `rendition_failed`.
        reason: Reason,
        /// What happened, with the weight reached and the limit for
        /// `over_weight`.
        detail: String,
    },
}

/// A stored placement, as the reconcile step compares it.
#[derive(Debug, Clone)]
pub struct StoredPlacement {
    /// Which asset and placement.
    pub key: PlacementKey,
    /// Hash of the settings that made it.
    pub settings_hash: String,
    /// The asset it was made from.
    pub source_sha256: String,
    /// Where its file is (or would be).
    pub path: String,
    /// The file's size, when it was made.
    pub bytes: Option<u64>,
}

/// A placement that could not be made, for the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementFailure {
    /// Which asset and placement.
    pub key: PlacementKey,
    /// Where it would have gone.
    pub path: String,
    /// Why.
    pub reason: Reason,
    /// What happened.
    pub detail: String,
}

/// A campaign's placements as the manifest reads them: the files by asset
/// identity (ordered by placement id), and the failures.
#[derive(Debug, Clone, Default)]
pub struct StoredPlacements {
    /// Files by `(row, locale, variant)`.
    pub by_asset: HashMap<(String, String, String), Vec<PlacementEntry>>,
    /// Placements that could not be made.
    pub failures: Vec<PlacementFailure>,
}

impl Store {
    /// Every stored placement of the campaign.
    pub async fn stored_placements(&self, campaign: &str) -> Result<Vec<StoredPlacement>> {
        let rows = sqlx::query(
            "SELECT row_id, locale, variant, placement, settings_hash, source_sha256, path, bytes
             FROM placements WHERE campaign = $1",
        )
        .bind(campaign)
        .fetch_all(self.pool())
        .await
        .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|r| StoredPlacement {
                key: PlacementKey {
                    row_id: r.get(0),
                    locale: r.get(1),
                    variant: r.get(2),
                    placement: r.get(3),
                },
                settings_hash: r.get(4),
                source_sha256: r.get(5),
                path: r.get(6),
                bytes: r.get::<Option<i64>, _>(7).map(|b| b as u64),
            })
            .collect())
    }

    /// Record what became of a placement (replacing what was recorded).
    pub async fn record_placement(
        &self,
        campaign: &str,
        key: &PlacementKey,
        settings_hash: &str,
        source_sha256: &str,
        outcome: &PlacementOutcome,
    ) -> Result<()> {
        let q = sqlx::query(
            "INSERT INTO placements (campaign, row_id, locale, variant, placement, settings_hash,
                source_sha256, state, path, sha256, bytes, width, height, mime_type, quality,
                colors, upscaled, error_code, error_detail, created_at, safe_area)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18, $19, $20, $21)
             ON CONFLICT (campaign, row_id, locale, variant, placement) DO UPDATE SET
                settings_hash = excluded.settings_hash, source_sha256 = excluded.source_sha256,
                state = excluded.state, path = excluded.path, sha256 = excluded.sha256,
                bytes = excluded.bytes, width = excluded.width, height = excluded.height,
                mime_type = excluded.mime_type, quality = excluded.quality,
                colors = excluded.colors, upscaled = excluded.upscaled,
                error_code = excluded.error_code, error_detail = excluded.error_detail,
                created_at = excluded.created_at, safe_area = excluded.safe_area",
        )
        .bind(campaign)
        .bind(&key.row_id)
        .bind(&key.locale)
        .bind(&key.variant)
        .bind(&key.placement)
        .bind(settings_hash)
        .bind(source_sha256);
        let q = match outcome {
            PlacementOutcome::Done(e) => q
                .bind("done")
                .bind(&e.path)
                .bind(Some(&e.sha256))
                .bind(Some(super::to_i64("file size", e.bytes)?))
                .bind(Some(i64::from(e.width)))
                .bind(Some(i64::from(e.height)))
                .bind(Some(&e.mime_type))
                .bind(e.quality.map(i64::from))
                .bind(e.colors.map(i64::from))
                .bind(i64::from(e.upscaled))
                .bind(None::<String>)
                .bind(None::<String>),
            PlacementOutcome::Failed {
                path,
                reason,
                detail,
            } => q
                .bind("failed")
                .bind(path)
                .bind(None::<String>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<String>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(0i64)
                .bind(Some(reason.code()))
                .bind(Some(detail)),
        };
        let safe_area = match outcome {
            PlacementOutcome::Done(PlacementEntry {
                safe_area: Some(s), ..
            }) => Some(
                serde_json::to_string(s)
                    .map_err(|e| crate::domain::Error::Internal(e.to_string()))?,
            ),
            _ => None,
        };
        q.bind(now_ms())
            .bind(safe_area)
            .execute(self.pool())
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Forget a placement (its asset or its name left the campaign).
    pub async fn delete_placement(&self, campaign: &str, key: &PlacementKey) -> Result<()> {
        sqlx::query(
            "DELETE FROM placements
             WHERE campaign = $1 AND row_id = $2 AND locale = $3 AND variant = $4 AND placement = $5",
        )
        .bind(campaign)
        .bind(&key.row_id)
        .bind(&key.locale)
        .bind(&key.variant)
        .bind(&key.placement)
        .execute(self.pool())
        .await
        .map_err(self.err())?;
        Ok(())
    }

    /// The campaign's placements for the manifest.
    pub async fn placement_entries(&self, campaign: &str) -> Result<StoredPlacements> {
        let rows = sqlx::query(
            "SELECT row_id, locale, variant, placement, state, path, sha256, bytes, width,
                height, mime_type, quality, colors, upscaled, error_code, error_detail, safe_area
             FROM placements WHERE campaign = $1
             ORDER BY row_id, locale, variant, placement",
        )
        .bind(campaign)
        .fetch_all(self.pool())
        .await
        .map_err(self.err())?;
        let mut out = StoredPlacements::default();
        for r in rows {
            let key = PlacementKey {
                row_id: r.get(0),
                locale: r.get(1),
                variant: r.get(2),
                placement: r.get(3),
            };
            let state: String = r.get(4);
            if state == "done" {
                let entry = PlacementEntry {
                    placement: key.placement.clone(),
                    path: r.get(5),
                    sha256: r.get::<Option<String>, _>(6).unwrap_or_default(),
                    bytes: r.get::<Option<i64>, _>(7).unwrap_or(0) as u64,
                    width: r.get::<Option<i64>, _>(8).unwrap_or(0) as u32,
                    height: r.get::<Option<i64>, _>(9).unwrap_or(0) as u32,
                    mime_type: r.get::<Option<String>, _>(10).unwrap_or_default(),
                    quality: r.get::<Option<i64>, _>(11).map(|q| q as u8),
                    colors: r.get::<Option<i64>, _>(12).map(|c| c as u16),
                    checks_passed: true,
                    upscaled: r.get::<i64, _>(13) != 0,
                    safe_area: r
                        .get::<Option<String>, _>(16)
                        .and_then(|j| serde_json::from_str(&j).ok()),
                    provenance: None,
                };
                out.by_asset.entry(key.asset()).or_default().push(entry);
            } else {
                let code: Option<String> = r.get(14);
                out.failures.push(PlacementFailure {
                    reason: match code {
                        Some(c) => parsed("placement failure reason", &c)?,
                        None => Reason::Other,
                    },
                    path: r.get(5),
                    detail: r.get::<Option<String>, _>(15).unwrap_or_default(),
                    key,
                });
            }
        }
        Ok(out)
    }
}
