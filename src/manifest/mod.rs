//! `manifest.json`: built purely from the store's read model of a campaign
//! and the plan (no I/O but the final atomic write), read by other programs.
//! Its JSON Schema is `schema/manifest.schema.json`; bump
//! [`SCHEMA_VERSION`] on any incompatible change (additive optional fields
//! are not one).
//!
//! Model-text jobs are assets; overlay variants are one entry per row ×
//! locale × variant made from their composite, with the copy-free art listed
//! under `art` (not a deliverable). A composite's `cost_usd` is its share of
//! the art (art cost ÷ campaign locales); `totals.cost_usd` counts the art
//! in full, what was paid.
//!
//! Review: every asset (and retired entry) carries its `approval`, the
//! latest reviewer decision about that exact file and request, or pending.
//! A rejected asset is revised by editing: `revision` counts up from 1,
//! `parent_sha256` names the image it was edited from, and `history` lists
//! every earlier revision, kept beside it as `<row-id>.r<N>.<ext>`, with
//! the note that replaced it.
//! [`approved_only`] is the same document cut down to the approved assets,
//! written beside it as `manifest.approved.json` for downstream systems that
//! may only ship what a person approved.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::assets::write_atomic;
use crate::domain::StringCheck;
use crate::domain::{ApprovalState, CompositeState, Error, JobState, Reason, Result, round_micro};
use crate::expand::ComposeSpec;
use crate::imaging::{BoxLayout, aspect_check};
use crate::store::{
    CampaignState, CompositeRow, DecisionRow, JobId, JobRow, PlacementEntry, QaVerdict,
    RenditionEntry, RevisionEntry, StoredPlacements,
};

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
    /// Copy-free art of overlay variants (not deliverables).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub art: Vec<AssetEntry>,
    /// True in `manifest.approved.json`: only approved assets are listed,
    /// and the totals count only them.
    #[serde(default, skip_serializing_if = "is_false")]
    pub approved_only: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The file name of the manifest in a campaign's output tree.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The file name of the approved-only manifest, beside `manifest.json`.
pub const APPROVED_FILE: &str = "manifest.approved.json";

/// Where an asset stands with its reviewers, as the manifest says it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// `pending`, `approved` or `rejected`.
    pub state: ApprovalState,
    /// Who decided (null while pending).
    pub by: Option<String>,
    /// When, RFC 3339 (null while pending).
    pub at: Option<String>,
    /// The reviewer's note (required for rejections).
    pub note: Option<String>,
}

impl Approval {
    /// No decision yet.
    pub fn pending() -> Approval {
        Approval {
            state: ApprovalState::Pending,
            by: None,
            at: None,
            note: None,
        }
    }
}

/// The revision of an asset no edit has made: the first.
pub const FIRST_REVISION: u32 = 1;

fn first_revision() -> u32 {
    FIRST_REVISION
}

impl Manifest {
    /// Every file the manifest lists (assets, their renditions, art and
    /// retired assets) with the sha256 the state recorded for it.
    pub fn checksums(&self) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for a in self.assets.iter().chain(&self.retired).chain(&self.art) {
            out.insert(a.path.clone(), a.sha256.clone());
            for r in &a.renditions {
                out.insert(r.path.clone(), r.sha256.clone());
            }
            for p in &a.placements {
                out.insert(p.path.clone(), p.sha256.clone());
            }
            for h in &a.history {
                out.insert(h.path.clone(), h.sha256.clone());
            }
        }
        out
    }
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
    /// Renditions that could not be made (each is also in `failures`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub renditions_failed: u64,
    /// Placement files delivered (under their assets' `placements`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub placements: u64,
    /// Placements that could not be made (each is also in `failures`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub placements_failed: u64,
    /// Copy QA: assets whose copy passed the first image's reads.
    #[serde(default)]
    pub qa_pass: u64,
    /// Copy QA: assets that needed at least one regeneration (done or not).
    #[serde(default)]
    pub qa_regenerated: u64,
    /// Copy QA: assets typeset locally after the model's copy stayed wrong.
    #[serde(default)]
    pub qa_fell_back_to_overlay: u64,
    /// Copy QA: jobs failed with `text_mismatch`.
    #[serde(default)]
    pub qa_failed: u64,
    /// Copy QA: what reading cost, apart from `cost_usd`.
    #[serde(default)]
    pub qa_cost_usd: f64,
    /// Copy QA: what the images thrown away after a mismatch cost, apart
    /// from `cost_usd` (which is what the current assets cost).
    #[serde(default)]
    pub qa_regeneration_cost_usd: f64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Totals {
    /// Whether anything failed or was blocked: jobs, renditions or
    /// placements. A run with any exits 3.
    pub fn has_failures(&self) -> bool {
        self.failed + self.blocked + self.renditions_failed + self.placements_failed > 0
    }
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
    /// [`crate::imaging::ASPECT_TOLERANCE`] away from `aspect_ratio`.
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
    /// This asset made to each ad-platform slot its variant names, each
    /// within the slot's weight limit and checked after writing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placements: Vec<PlacementEntry>,
    /// For overlay-text assets: the art and how the copy was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<OverlayInfo>,
    /// When a fallback model made the asset: the model the job was moved off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_from: Option<String>,
    /// Why it was moved (`unauthenticated`, `credit_exhausted`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<Reason>,
    /// Copy QA of a model-text asset (when its variant has `[qa]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qa: Option<QaEntry>,
    /// The copy meant to be in the image, per copy column (absent for art).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub copy: BTreeMap<String, String>,
    /// Review state of this exact file and request (absent on art, which
    /// is not delivered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// 1 for an asset made from its request; each edit of a rejected
    /// asset counts up by one.
    #[serde(default = "first_revision")]
    pub revision: u32,
    /// The asset this one is a revision of (null for a first revision).
    #[serde(default)]
    pub parent_sha256: Option<String>,
    /// The earlier revisions, oldest first, each kept beside the asset
    /// (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// IPTC marking and C2PA Content Credentials of this file (issue 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Box<crate::domain::provenance::ProvenanceEntry>>,
}

/// An earlier revision of an asset, replaced by an edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Its revision number.
    pub revision: u32,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Where it is kept, relative to manifest.json.
    pub path: String,
    /// The reviewer's note the edit that replaced it followed.
    pub note: String,
    /// When it was replaced (RFC 3339).
    pub at: String,
}

/// What copy QA found for one asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaEntry {
    /// The reader model (empty when skipped without reading).
    pub reader: String,
    /// `pass`, `fail`, `kept` or `skipped`.
    pub verdict: String,
    /// Reads made, across regenerations.
    pub reads: u32,
    /// Images bought again after a confirmed mismatch.
    pub regenerations: u32,
    /// Per expected string: what was meant, the best matching read, and
    /// its character error rate.
    pub strings: Vec<StringCheck>,
    /// What reading cost (not in `cost_usd`).
    pub cost_usd: f64,
    /// The model's copy stayed wrong and adloc typeset it onto copy-free
    /// art instead: the asset is exact by construction (verdict `fail`
    /// records why it fell back).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fell_back_to_overlay: bool,
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
    pub reason: Reason,
    /// Human detail.
    pub detail: String,
    /// The provider's own block reason, for blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_reason: Option<String>,
    /// Calls made.
    pub attempts: u32,
    /// Request hash.
    pub request_sha256: String,
    /// Copy QA, for a `text_mismatch` failure: what was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qa: Option<QaEntry>,
    /// For a rendition that could not be made: its path (the master exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendition: Option<String>,
    /// For a placement that could not be made: its id (the asset exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// For a placement that could not be made: where its file would be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_path: Option<String>,
    /// The copy that was meant to be in the image, per copy column.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub copy: BTreeMap<String, String>,
}

/// What the manifest says about how an overlay asset was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlayInfo {
    /// Path of the copy-free art, relative to manifest.json.
    pub art_path: String,
    /// Hex SHA-256 of the art file.
    pub art_sha256: String,
    /// Hex SHA-256 over copy, box settings and the art's SHA-256.
    pub compose_sha256: String,
    /// Per box, the size and line count used.
    pub boxes: Vec<BoxLayout>,
    /// Hex SHA-256 of every brand file the composite was made with (the
    /// `[brand]` fonts and logos, and its image-layer files), by path as
    /// written. Absent without a brand kit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub brand: BTreeMap<String, String>,
}

fn rfc3339(ms: Option<i64>) -> String {
    ms.and_then(|m| jiff::Timestamp::from_millisecond(m).ok())
        .unwrap_or_else(jiff::Timestamp::now)
        .to_string()
}

/// The `locale` an entry shows: the tag, or BCP-47 "undetermined" for art.
fn locale_of(j: &JobRow) -> String {
    j.key
        .target
        .locale()
        .map_or_else(|| "und".to_string(), |l| l.tag().to_string())
}

fn asset_entry(
    j: &JobRow,
    renditions: &HashMap<JobId, Vec<RenditionEntry>>,
    revisions: &HashMap<JobId, Vec<RevisionEntry>>,
) -> Option<AssetEntry> {
    let a = j.asset.as_ref()?;
    let (aspect_ratio_actual, aspect_ratio_ok) =
        aspect_check(a.width, a.height, j.aspect_ratio.as_str());
    Some(AssetEntry {
        row_id: j.key.row.to_string(),
        locale: locale_of(j),
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
        provider: j
            .provider
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        model: j.model.to_string(),
        mode: j.mode.map(|m| m.as_str().to_string()).unwrap_or_default(),
        aspect_ratio: j.aspect_ratio.to_string(),
        image_size: j.image_size.to_string(),
        prompt: j.prompt.clone(),
        request_sha256: j.request_hash.clone(),
        cost_usd: j.cost_usd.unwrap_or(0.0),
        attempts: j.attempts,
        created_at: rfc3339(j.finished_at),
        renditions: renditions.get(&j.id).cloned().unwrap_or_default(),
        placements: Vec::new(),
        overlay: None,
        fallback_from: j.fallback_from.as_ref().map(ToString::to_string),
        fallback_reason: j.fallback_reason,
        qa: qa_entry(j),
        copy: j.copy.clone(),
        approval: None,
        revision: j.revision,
        parent_sha256: j.parent_sha256.clone(),
        history: revisions
            .get(&j.id)
            .map(|h| {
                h.iter()
                    .map(|r| HistoryEntry {
                        revision: r.revision,
                        sha256: r.sha256.clone(),
                        path: r.path.clone(),
                        note: r.note.clone(),
                        at: rfc3339(Some(r.at)),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        provenance: None,
    })
}

fn qa_entry(j: &JobRow) -> Option<QaEntry> {
    let q = j.qa.as_ref()?;
    Some(QaEntry {
        reader: q.reader.clone().unwrap_or_default(),
        verdict: q.verdict.map_or("pending", |v| v.as_str()).to_string(),
        reads: q.reads,
        regenerations: q.regenerations,
        strings: q.strings.clone(),
        cost_usd: round_micro(q.cost_usd),
        fell_back_to_overlay: q.fell_back_to_overlay,
    })
}

fn failure_entry(j: &JobRow) -> FailureEntry {
    FailureEntry {
        row_id: j.key.row.to_string(),
        locale: locale_of(j),
        variant: j.key.variant.clone(),
        state: j.state.as_str().to_string(),
        reason: j.error_code.unwrap_or(Reason::Other),
        detail: j.error_detail.clone().unwrap_or_default(),
        block_reason: j.block_reason.clone(),
        attempts: j.attempts,
        request_sha256: j.request_hash.clone(),
        qa: qa_entry(j),
        rendition: None,
        placement: None,
        placement_path: None,
        copy: j.copy.clone(),
    }
}

fn composite_entry(c: &CompositeRow) -> Option<AssetEntry> {
    let a = c.asset.as_ref()?;
    let (aspect_ratio_actual, aspect_ratio_ok) =
        aspect_check(a.width, a.height, c.art.aspect_ratio.as_str());
    Some(AssetEntry {
        aspect_ratio_actual,
        aspect_ratio_ok,
        // Renditions are made from masters the provider returned; composed
        // overlay assets do not get them yet.
        renditions: Vec::new(),
        placements: Vec::new(),
        row_id: c.row_id.clone(),
        locale: c.locale.clone(),
        resolved_locale: c.resolved_locale.clone(),
        copy_resolution: serde_json::from_str(&c.resolution).unwrap_or_default(),
        variant: c.variant.clone(),
        path: a.path.clone(),
        sha256: a.sha256.clone(),
        bytes: a.bytes,
        width: a.width,
        height: a.height,
        mime_type: a.mime_type.clone(),
        provider: c
            .art
            .provider
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        model: c.art.model.to_string(),
        mode: c
            .art
            .mode
            .map(|m| m.as_str().to_string())
            .unwrap_or_default(),
        aspect_ratio: c.art.aspect_ratio.to_string(),
        image_size: c.art.image_size.to_string(),
        prompt: c.art.prompt.clone(),
        request_sha256: c.art.request_hash.clone(),
        cost_usd: c.cost_usd,
        attempts: c.art.attempts,
        created_at: rfc3339(Some(c.updated_at)),
        overlay: Some(OverlayInfo {
            art_path: c.art.path.clone(),
            art_sha256: c.art.sha256.clone(),
            compose_sha256: c.compose_hash.clone(),
            boxes: c.layout.clone(),
            brand: BTreeMap::new(),
        }),
        fallback_from: None,
        fallback_reason: None,
        qa: None,
        copy: c.copy.clone(),
        approval: None,
        revision: FIRST_REVISION,
        parent_sha256: None,
        history: Vec::new(),
        provenance: None,
    })
}

/// Copy QA totals of one finished job.
fn count_qa(t: &mut Totals, j: &JobRow) {
    let Some(q) = &j.qa else { return };
    t.qa_cost_usd += q.cost_usd;
    t.qa_regeneration_cost_usd += q.regeneration_cost_usd;
    if q.regenerations > 0 {
        t.qa_regenerated += 1;
    }
    match (j.state, q.verdict) {
        (JobState::Done, _) if q.fell_back_to_overlay => t.qa_fell_back_to_overlay += 1,
        (JobState::Done, Some(QaVerdict::Pass)) if q.regenerations == 0 => t.qa_pass += 1,
        (JobState::Failed, _) if j.error_code == Some(Reason::TextMismatch) => t.qa_failed += 1,
        _ => {}
    }
}

/// Entries and totals of a set of job rows (model-text jobs, or art).
fn job_entries(m: &mut Manifest, jobs: &[&JobRow], state: &CampaignState) {
    for j in jobs {
        match j.state {
            JobState::Superseded => continue,
            JobState::Retired => {
                if let Some(a) = asset_entry(j, &state.renditions, &state.revisions) {
                    m.retired.push(a);
                }
                continue;
            }
            JobState::Done => {
                count_qa(&mut m.totals, j);
                if let Some(a) = asset_entry(j, &state.renditions, &state.revisions) {
                    m.totals.cost_usd += a.cost_usd;
                    m.assets.push(a);
                }
                m.totals.done += 1;
            }
            JobState::Failed | JobState::Blocked => {
                count_qa(&mut m.totals, j);
                if j.state == JobState::Failed {
                    m.totals.failed += 1;
                } else {
                    m.totals.blocked += 1;
                }
                m.failures.push(failure_entry(j));
            }
            // An image whose copy is still being read back is not done.
            JobState::Pending
            | JobState::InFlight
            | JobState::BatchSubmitting
            | JobState::BatchSubmitted
            | JobState::Checking
            | JobState::ReadInFlight
            | JobState::ReadBatchSubmitting
            | JobState::ReadBatchSubmitted
            | JobState::Waiting => m.totals.pending += 1,
        }
        m.totals.jobs += 1;
    }
}

/// Build the manifest of campaign `name` from its state and its overlay
/// plan (`compose`: every row × locale × overlay variant). Model-text jobs
/// are assets; art jobs are listed under `art` and paid in full; each
/// composite is an asset when its current composite is done, a failure when
/// it overflowed or its art failed or was blocked, pending while its art is
/// not done. Every rendition failure is a failure entry. Retired entries
/// whose path a current asset now occupies (a variant switched between model
/// and overlay text) are dropped, since that file was replaced.
pub fn build(name: &str, state: &CampaignState, compose: &[ComposeSpec]) -> Manifest {
    let mut m = Manifest {
        schema_version: SCHEMA_VERSION,
        campaign: name.to_string(),
        generated_at: jiff::Timestamp::now().to_string(),
        totals: Totals::default(),
        assets: Vec::new(),
        failures: Vec::new(),
        retired: Vec::new(),
        art: Vec::new(),
        approved_only: false,
    };
    let (art_jobs, model_jobs): (Vec<&JobRow>, Vec<&JobRow>) =
        state.jobs.iter().partition(|j| j.key.target.is_art());
    job_entries(&mut m, &model_jobs, state);
    layered_entries(&mut m, state, compose);

    if !art_jobs.is_empty() || !compose.is_empty() {
        // Art masters: listed, and paid for in full; retired art is history
        // of a non-deliverable and not listed.
        let mut art = Manifest {
            assets: Vec::new(),
            failures: Vec::new(),
            retired: Vec::new(),
            art: Vec::new(),
            totals: Totals::default(),
            ..m.clone()
        };
        job_entries(&mut art, &art_jobs, state);
        m.totals.cost_usd += art.totals.cost_usd;
        m.art = art.assets;
        overlay_entries(&mut m, state, &art_jobs, compose);
    }

    let by_id: HashMap<JobId, &JobRow> = state.jobs.iter().map(|j| (j.id, j)).collect();
    for f in &state.rendition_failures {
        let Some(j) = by_id.get(&f.job_id) else {
            continue;
        };
        m.totals.renditions_failed += 1;
        m.failures.push(FailureEntry {
            state: "failed".into(),
            reason: Reason::RenditionFailed,
            detail: f.detail.clone(),
            block_reason: None,
            rendition: Some(f.path.clone()),
            ..failure_entry(j)
        });
    }

    placement_entries(&mut m, &state.placements);

    let current_paths: HashSet<String> = m.assets.iter().map(|a| a.path.clone()).collect();
    m.retired.retain(|r| !current_paths.contains(&r.path));
    m.totals.retired = m.retired.len() as u64;
    m.assets.sort_by(|a, b| {
        (&a.row_id, &a.locale, &a.variant).cmp(&(&b.row_id, &b.locale, &b.variant))
    });
    m.failures.sort_by(|a, b| {
        (&a.row_id, &a.locale, &a.variant, &a.rendition, &a.placement).cmp(&(
            &b.row_id,
            &b.locale,
            &b.variant,
            &b.rendition,
            &b.placement,
        ))
    });
    m.totals.cost_usd = round_micro(m.totals.cost_usd);
    m.totals.qa_cost_usd = round_micro(m.totals.qa_cost_usd);
    m.totals.qa_regeneration_cost_usd = round_micro(m.totals.qa_regeneration_cost_usd);
    apply_decisions(&mut m, &state.decisions);
    m
}

/// Attach each delivered file's provenance: `inspect(path, vendor_path)`
/// reads the file at `path` and the vendor's bytes kept for the master at
/// `vendor_path` (the asset itself, or the art an overlay composite was
/// made from; renditions and placements share their asset's). The build
/// stays pure; the caller owns the reading.
pub fn attach_provenance(
    m: &mut Manifest,
    inspect: &mut dyn FnMut(&str, &str) -> Option<crate::domain::provenance::ProvenanceEntry>,
) {
    for a in m.assets.iter_mut() {
        let vendor = a
            .overlay
            .as_ref()
            .map_or_else(|| a.path.clone(), |o| o.art_path.clone());
        a.provenance = inspect(&a.path, &vendor).map(Box::new);
        for r in a.renditions.iter_mut() {
            r.provenance = inspect(&r.path, &vendor).map(Box::new);
        }
        for p in a.placements.iter_mut() {
            p.provenance = inspect(&p.path, &vendor).map(Box::new);
        }
    }
}

/// Each current asset's placement files, and a failure entry per
/// placement that could not be made of a current asset (one whose asset
/// is no longer delivered is history, not a failure).
fn placement_entries(m: &mut Manifest, placements: &StoredPlacements) {
    let mut current: HashMap<(String, String, String), usize> = HashMap::new();
    for (i, a) in m.assets.iter_mut().enumerate() {
        let id = (a.row_id.clone(), a.locale.clone(), a.variant.clone());
        if let Some(p) = placements.by_asset.get(&id) {
            a.placements = p.clone();
            m.totals.placements += p.len() as u64;
        }
        current.insert(id, i);
    }
    for f in &placements.failures {
        let Some(&i) = current.get(&f.key.asset()) else {
            continue;
        };
        let a = &m.assets[i];
        m.totals.placements_failed += 1;
        m.failures.push(FailureEntry {
            row_id: a.row_id.clone(),
            locale: a.locale.clone(),
            variant: a.variant.clone(),
            state: "failed".into(),
            reason: f.reason,
            detail: f.detail.clone(),
            block_reason: None,
            attempts: a.attempts,
            request_sha256: a.request_sha256.clone(),
            qa: None,
            rendition: None,
            placement: Some(f.key.placement.clone()),
            placement_path: Some(f.path.clone()),
            copy: a.copy.clone(),
        });
    }
}

fn rfc3339_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Set every asset's and retired entry's `approval` from the decisions
/// (oldest first): the latest decision about its exact file and request,
/// else pending. Art is not delivered and gets none.
pub fn apply_decisions(m: &mut Manifest, decisions: &[DecisionRow]) {
    let mut latest: HashMap<(&str, &str), &DecisionRow> = HashMap::new();
    for d in decisions {
        latest.insert(d.asset(), d);
    }
    for a in m.assets.iter_mut().chain(m.retired.iter_mut()) {
        a.approval = Some(
            match latest.get(&(a.sha256.as_str(), a.request_sha256.as_str())) {
                // An undo (the review server) leaves the asset as undecided
                // as before any decision; the history keeps who undid it.
                Some(d) if d.state == ApprovalState::Pending => Approval::pending(),
                Some(d) => Approval {
                    state: d.state,
                    by: Some(d.by.clone()),
                    at: Some(rfc3339_ms(d.at)),
                    note: d.note.clone(),
                },
                None => Approval::pending(),
            },
        );
    }
}

/// The approved part of a manifest, same schema: only approved assets, no
/// failures, retired entries or art, and totals that count what is listed.
pub fn approved_only(m: &Manifest) -> Manifest {
    let assets: Vec<AssetEntry> = m
        .assets
        .iter()
        .filter(|a| {
            a.approval
                .as_ref()
                .is_some_and(|x| x.state == ApprovalState::Approved)
        })
        .cloned()
        .collect();
    let n = assets.len() as u64;
    let cost = round_micro(assets.iter().map(|a| a.cost_usd).sum());
    Manifest {
        totals: Totals {
            jobs: n,
            done: n,
            cost_usd: cost,
            ..Totals::default()
        },
        assets,
        failures: Vec::new(),
        retired: Vec::new(),
        art: Vec::new(),
        approved_only: true,
        ..m.clone()
    }
}

fn overlay_entries(
    m: &mut Manifest,
    state: &CampaignState,
    art_jobs: &[&JobRow],
    compose: &[ComposeSpec],
) {
    let current_art: HashMap<(String, String), &JobRow> = art_jobs
        .iter()
        .filter(|j| j.state != JobState::Retired)
        .map(|j| ((j.key.row.to_string(), j.key.variant.clone()), *j))
        .collect();
    let mut live: HashMap<(String, String, String), &CompositeRow> = HashMap::new();
    for c in &state.composites {
        match c.state {
            CompositeState::Retired => {
                if let Some(e) = composite_entry(c) {
                    m.retired.push(e);
                }
            }
            _ => {
                live.insert((c.row_id.clone(), c.locale.clone(), c.variant.clone()), c);
            }
        }
    }
    for spec in compose.iter().filter(|s| !s.on_model_image) {
        m.totals.jobs += 1;
        let art = current_art.get(&(spec.row_id.to_string(), spec.variant.clone()));
        let key = (
            spec.row_id.to_string(),
            spec.locale.tag().to_string(),
            spec.variant.clone(),
        );
        let current = match (art, live.get(&key)) {
            (Some(a), Some(c)) if a.state == JobState::Done && c.art_job_id == a.id => {
                let sha = a.asset.as_ref().map_or("", |x| x.sha256.as_str());
                (c.compose_hash == spec.compose_hash(sha)).then_some(*c)
            }
            _ => None,
        };
        if let Some(c) = current {
            match composite_entry(c) {
                Some(mut e) => {
                    if let Some(o) = e.overlay.as_mut() {
                        o.brand = spec.brand.clone();
                    }
                    m.totals.done += 1;
                    m.assets.push(e);
                }
                None => {
                    m.totals.failed += 1;
                    m.failures.push(FailureEntry {
                        row_id: c.row_id.clone(),
                        locale: c.locale.clone(),
                        variant: c.variant.clone(),
                        state: "failed".into(),
                        reason: c.error_code.unwrap_or(Reason::Other),
                        detail: c.error_detail.clone().unwrap_or_default(),
                        block_reason: None,
                        attempts: c.art.attempts,
                        request_sha256: c.art.request_hash.clone(),
                        qa: None,
                        rendition: None,
                        placement: None,
                        placement_path: None,
                        copy: c.copy.clone(),
                    });
                }
            }
            continue;
        }
        match art {
            Some(a) if matches!(a.state, JobState::Failed | JobState::Blocked) => {
                if a.state == JobState::Failed {
                    m.totals.failed += 1;
                } else {
                    m.totals.blocked += 1;
                }
                m.failures.push(FailureEntry {
                    locale: spec.locale.tag().to_string(),
                    detail: format!(
                        "the copy-free art for this row and variant was not made: {}",
                        a.error_detail.clone().unwrap_or_default()
                    ),
                    ..failure_entry(a)
                });
            }
            _ => m.totals.pending += 1,
        }
    }
}

/// Model-text assets of variants with brand layers ship as their current
/// composite (the model's image with the layers drawn on): the entry keeps
/// the job's request, copy, QA and revisions, takes the composite's file,
/// and records the model's un-layered image and the brand files' sha256s
/// under `overlay`. One whose layers could not be drawn is a failure; one
/// not layered yet (its image is newer than its composite) is pending.
fn layered_entries(m: &mut Manifest, state: &CampaignState, compose: &[ComposeSpec]) {
    type Key = (String, String, String);
    let specs: HashMap<Key, &ComposeSpec> = compose
        .iter()
        .filter(|s| s.on_model_image)
        .map(|s| {
            (
                (
                    s.row_id.to_string(),
                    s.locale.tag().to_string(),
                    s.variant.clone(),
                ),
                s,
            )
        })
        .collect();
    if specs.is_empty() {
        return;
    }
    let jobs: HashMap<Key, &JobRow> = state
        .jobs
        .iter()
        .filter(|j| j.state == JobState::Done)
        .filter_map(|j| {
            let l = j.key.target.locale()?;
            Some((
                (
                    j.key.row.to_string(),
                    l.tag().to_string(),
                    j.key.variant.clone(),
                ),
                j,
            ))
        })
        .collect();
    // Oldest first: the live row of an identity is its last.
    let live: HashMap<Key, &CompositeRow> = state
        .composites
        .iter()
        .filter(|c| c.state != CompositeState::Retired)
        .map(|c| ((c.row_id.clone(), c.locale.clone(), c.variant.clone()), c))
        .collect();
    let mut kept = Vec::with_capacity(m.assets.len());
    for mut a in std::mem::take(&mut m.assets) {
        let key = (a.row_id.clone(), a.locale.clone(), a.variant.clone());
        let (Some(spec), Some(j)) = (specs.get(&key), jobs.get(&key)) else {
            kept.push(a);
            continue;
        };
        let current = live
            .get(&key)
            .filter(|c| c.art_job_id == j.id && c.compose_hash == spec.compose_hash(&a.sha256));
        match current.map(|c| (c, c.asset.as_ref())) {
            Some((c, Some(file))) => {
                let (actual, ok) = aspect_check(file.width, file.height, &a.aspect_ratio);
                a.overlay = Some(OverlayInfo {
                    art_path: std::mem::replace(&mut a.path, file.path.clone()),
                    art_sha256: std::mem::replace(&mut a.sha256, file.sha256.clone()),
                    compose_sha256: c.compose_hash.clone(),
                    boxes: c.layout.clone(),
                    brand: spec.brand.clone(),
                });
                a.bytes = file.bytes;
                a.width = file.width;
                a.height = file.height;
                a.mime_type = file.mime_type.clone();
                a.aspect_ratio_actual = actual;
                a.aspect_ratio_ok = ok;
                kept.push(a);
            }
            Some((c, None)) => {
                m.totals.done -= 1;
                m.totals.failed += 1;
                m.failures.push(FailureEntry {
                    row_id: a.row_id,
                    locale: a.locale,
                    variant: a.variant,
                    state: "failed".into(),
                    reason: c.error_code.unwrap_or(Reason::Other),
                    detail: c.error_detail.clone().unwrap_or_default(),
                    block_reason: None,
                    attempts: a.attempts,
                    request_sha256: a.request_sha256,
                    qa: a.qa,
                    rendition: None,
                    placement: None,
                    placement_path: None,
                    copy: a.copy,
                });
            }
            None => {
                m.totals.done -= 1;
                m.totals.pending += 1;
            }
        }
    }
    m.assets = kept;
}

/// Write the manifest to `<campaign_out>/manifest.json` and its approved
/// part to `manifest.approved.json`, each atomically. Returns the path of
/// `manifest.json`.
pub fn write(campaign_out: &Path, manifest: &Manifest) -> Result<std::path::PathBuf> {
    write_file(campaign_out, APPROVED_FILE, &approved_only(manifest))?;
    write_file(campaign_out, MANIFEST_FILE, manifest)
}

fn write_file(campaign_out: &Path, name: &str, manifest: &Manifest) -> Result<std::path::PathBuf> {
    let path = campaign_out.join(name);
    let mut text =
        serde_json::to_string_pretty(manifest).map_err(|e| Error::Internal(e.to_string()))?;
    text.push('\n');
    write_atomic(&path, text.as_bytes())?;
    Ok(path)
}
