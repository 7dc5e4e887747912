//! `manifest.json`: derived from the queue, written atomically, read by
//! other programs. Its JSON Schema is `schema/manifest.schema.json`; bump
//! [`SCHEMA_VERSION`] on any incompatible change.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::assets::write_atomic;
use crate::error::{Error, Result};
use crate::queue::{JobId, JobRow, JobState};
use crate::renditions::RenditionEntry;

/// The manifest schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// The manifest document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Schema version of this document.
    pub schema_version: u32,
    /// Campaign name.
    pub campaign: String,
    /// RFC 3339 time of writing.
    pub generated_at: String,
    /// Counts and spend.
    pub totals: Totals,
    /// Every current asset.
    pub assets: Vec<AssetEntry>,
    /// Jobs that failed or were blocked.
    pub failures: Vec<FailureEntry>,
    /// Assets whose row, locale or variant left the campaign (kept on disk).
    pub retired: Vec<AssetEntry>,
    /// Copy-free art of overlay variants (not deliverables; see [`crate::overlay`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub art: Vec<AssetEntry>,
}

/// Totals.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Live jobs (everything but retired history).
    pub jobs: u64,
    /// Done jobs (= assets).
    pub done: u64,
    /// Failed jobs.
    pub failed: u64,
    /// Blocked jobs.
    pub blocked: u64,
    /// Jobs not finished (pending, in flight, in a batch).
    pub pending: u64,
    /// Retired assets.
    pub retired: u64,
    /// Sum of `cost_usd` over current assets.
    pub cost_usd: f64,
}

/// One asset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssetEntry {
    /// Row id.
    pub row_id: String,
    /// Requested locale.
    pub locale: String,
    /// Locale the copy actually came from.
    pub resolved_locale: String,
    /// Per copy column, the locale it came from.
    pub copy_resolution: BTreeMap<String, String>,
    /// Variant name.
    pub variant: String,
    /// Path relative to the manifest.
    pub path: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// File size.
    pub bytes: u64,
    /// Decoded width.
    pub width: u32,
    /// Decoded height.
    pub height: u32,
    /// `width / height` of the decoded master, rounded to 4 decimals.
    pub aspect_ratio_actual: f64,
    /// False when the master's real aspect ratio is more than
    /// [`crate::renditions::ASPECT_TOLERANCE`] away from `aspect_ratio`.
    pub aspect_ratio_ok: bool,
    /// MIME type.
    pub mime_type: String,
    /// Provider (`local`, `gemini`).
    pub provider: String,
    /// Model id.
    pub model: String,
    /// `realtime` or `batch`.
    pub mode: String,
    /// Requested aspect ratio.
    pub aspect_ratio: String,
    /// Requested size tier.
    pub image_size: String,
    /// The prompt sent.
    pub prompt: String,
    /// Hex SHA-256 of the request.
    pub request_sha256: String,
    /// What the image cost.
    pub cost_usd: f64,
    /// Calls made for this job.
    pub attempts: u32,
    /// RFC 3339 time the asset was recorded.
    pub created_at: String,
    /// Exact-size renditions derived from this master.
    #[serde(default)]
    pub renditions: Vec<RenditionEntry>,
    /// For overlay-text assets: the art and how the copy was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<crate::overlay::store::OverlayInfo>,
}

/// One failed or blocked job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureEntry {
    /// Row id.
    pub row_id: String,
    /// Locale.
    pub locale: String,
    /// Variant.
    pub variant: String,
    /// `failed` or `blocked`.
    pub state: String,
    /// Stable reason code (see README).
    pub reason: String,
    /// Human detail.
    pub detail: String,
    /// The provider's own block reason, for blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_reason: Option<String>,
    /// Calls made.
    pub attempts: u32,
    /// Request hash.
    pub request_sha256: String,
}

fn rfc3339(ms: Option<i64>) -> String {
    ms.and_then(|m| jiff::Timestamp::from_millisecond(m).ok())
        .unwrap_or_else(jiff::Timestamp::now)
        .to_string()
}

fn asset_entry(j: &JobRow, renditions: &HashMap<JobId, Vec<RenditionEntry>>) -> Option<AssetEntry> {
    let a = j.asset.as_ref()?;
    let (aspect_ratio_actual, aspect_ratio_ok) =
        crate::renditions::aspect_check(a.width, a.height, &j.aspect_ratio);
    Some(AssetEntry {
        row_id: j.key.row_id.clone(),
        locale: j.key.locale.clone(),
        resolved_locale: j.resolved_locale.clone(),
        copy_resolution: serde_json::from_str(&j.resolution).unwrap_or_default(),
        variant: j.key.variant.clone(),
        path: a.path.clone(),
        sha256: a.sha256.clone(),
        bytes: a.bytes,
        width: a.width,
        height: a.height,
        aspect_ratio_actual,
        aspect_ratio_ok,
        mime_type: a.mime_type.clone(),
        provider: j.provider.clone().unwrap_or_default(),
        model: j.model.clone(),
        mode: j.mode.clone().unwrap_or_default(),
        aspect_ratio: j.aspect_ratio.clone(),
        image_size: j.image_size.clone(),
        prompt: j.prompt.clone(),
        request_sha256: j.request_hash.clone(),
        cost_usd: j.cost_usd.unwrap_or(0.0),
        attempts: j.attempts,
        created_at: rfc3339(j.finished_at),
        renditions: crate::renditions::entries_for(renditions, j),
        overlay: None,
    })
}

/// Build the manifest from the campaign's jobs (without renditions).
pub fn build(campaign: &str, jobs: &[JobRow]) -> Manifest {
    build_with_renditions(campaign, jobs, &HashMap::new())
}

/// Build the manifest from the campaign's jobs and their stored renditions
/// (see [`crate::renditions::manifest_entries`]).
pub fn build_with_renditions(
    campaign: &str,
    jobs: &[JobRow],
    renditions: &HashMap<JobId, Vec<RenditionEntry>>,
) -> Manifest {
    let mut m = Manifest {
        schema_version: SCHEMA_VERSION,
        campaign: campaign.to_string(),
        generated_at: jiff::Timestamp::now().to_string(),
        totals: Totals::default(),
        assets: Vec::new(),
        failures: Vec::new(),
        retired: Vec::new(),
        art: Vec::new(),
    };
    for j in jobs {
        match j.state {
            JobState::Superseded => continue,
            JobState::Retired => {
                if let Some(a) = asset_entry(j, renditions) {
                    m.retired.push(a);
                }
                continue;
            }
            JobState::Done => {
                if let Some(a) = asset_entry(j, renditions) {
                    m.totals.cost_usd += a.cost_usd;
                    m.assets.push(a);
                }
                m.totals.done += 1;
            }
            JobState::Failed | JobState::Blocked => {
                if j.state == JobState::Failed {
                    m.totals.failed += 1;
                } else {
                    m.totals.blocked += 1;
                }
                m.failures.push(FailureEntry {
                    row_id: j.key.row_id.clone(),
                    locale: j.key.locale.clone(),
                    variant: j.key.variant.clone(),
                    state: j.state.as_str().to_string(),
                    reason: j.error_code.clone().unwrap_or_else(|| "other".into()),
                    detail: j.error_detail.clone().unwrap_or_default(),
                    block_reason: j.block_reason.clone(),
                    attempts: j.attempts,
                    request_sha256: j.request_hash.clone(),
                });
            }
            JobState::Pending
            | JobState::InFlight
            | JobState::BatchSubmitting
            | JobState::BatchSubmitted => m.totals.pending += 1,
        }
        m.totals.jobs += 1;
    }
    m.totals.retired = m.retired.len() as u64;
    m.totals.cost_usd = crate::cost::round_micro(m.totals.cost_usd);
    m
}

/// Write the manifest to `<campaign_out>/manifest.json` atomically.
pub fn write(campaign_out: &Path, manifest: &Manifest) -> Result<std::path::PathBuf> {
    let path = campaign_out.join("manifest.json");
    let mut text =
        serde_json::to_string_pretty(manifest).map_err(|e| Error::Internal(e.to_string()))?;
    text.push('\n');
    write_atomic(&path, text.as_bytes()).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(path)
}
