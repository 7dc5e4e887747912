//! The `composites` table (migration `20261127000003_overlay.sql`) and the
//! manifest entries derived from it. Uses the queue's pool; every write is
//! one transaction.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{ART_LOCALE, ComposeSpec};
use crate::campaign::Campaign;
use crate::error::{Error, Result};
use crate::manifest::{self, AssetEntry, FailureEntry, Manifest};
use crate::queue::{AssetRecord, JobId, JobRow, JobState, Queue, now_ms};

fn db(queue: &Queue) -> impl Fn(sqlx::Error) -> Error + '_ {
    move |source| Error::Db {
        path: queue.path().to_path_buf(),
        source,
    }
}

/// Identity of a composite: (row id, locale, variant).
pub type CompositeKey = (String, String, String);

/// A live composite, as the compose step needs it.
#[derive(Debug, Clone)]
pub struct LiveComposite {
    /// Row id in `composites`.
    pub id: i64,
    /// The art job it was made from.
    pub art_job_id: JobId,
    /// Its compose hash.
    pub compose_hash: String,
    /// `done` or `failed`.
    pub state: String,
}

/// How one box was set, recorded with the composite and in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxLayout {
    /// The copy column.
    pub column: String,
    /// Font size used, in pixels of the composite.
    pub size_px: f32,
    /// Visual lines after wrapping.
    pub lines: usize,
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
}

/// The result of composing one locale.
#[derive(Debug, Clone)]
pub enum CompositeOutcome {
    /// Written.
    Done {
        /// The file.
        asset: AssetRecord,
        /// How each box was set.
        layout: Vec<BoxLayout>,
    },
    /// Not written: a stable reason code and the detail.
    Failed {
        /// Reason code (`text_overflow`, `undecodable_image`, `other`).
        reason: String,
        /// Human detail, with the copy that did not fit.
        detail: String,
    },
}

/// Live composites of a campaign by identity.
pub async fn live(queue: &Queue, campaign: &str) -> Result<HashMap<CompositeKey, LiveComposite>> {
    let rows = sqlx::query(
        "SELECT id, row_id, locale, variant, art_job_id, compose_hash, state FROM composites
         WHERE campaign = ? AND state IN ('done', 'failed')",
    )
    .bind(campaign)
    .fetch_all(queue.pool())
    .await
    .map_err(db(queue))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                (r.get(1), r.get(2), r.get(3)),
                LiveComposite {
                    id: r.get(0),
                    art_job_id: r.get(4),
                    compose_hash: r.get(5),
                    state: r.get(6),
                },
            )
        })
        .collect())
}

/// Record a composite, superseding the identity's previous live row, in
/// one transaction.
pub async fn record(
    queue: &Queue,
    campaign: &str,
    spec: &ComposeSpec,
    art_job_id: JobId,
    compose_hash: &str,
    cost_usd: f64,
    outcome: &CompositeOutcome,
) -> Result<()> {
    let now = now_ms();
    let mut tx = queue
        .pool()
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(db(queue))?;
    sqlx::query(
        "UPDATE composites SET state = 'superseded', updated_at = ?
         WHERE campaign = ? AND row_id = ? AND locale = ? AND variant = ? AND state IN ('done', 'failed')",
    )
    .bind(now)
    .bind(campaign)
    .bind(&spec.row_id)
    .bind(spec.locale.tag())
    .bind(&spec.variant)
    .execute(&mut *tx)
    .await
    .map_err(db(queue))?;
    let resolution =
        serde_json::to_string(&spec.resolution).map_err(|e| Error::Internal(e.to_string()))?;
    let (state, asset, layout, code, detail) = match outcome {
        CompositeOutcome::Done { asset, layout } => (
            "done",
            Some(asset),
            Some(serde_json::to_string(layout).map_err(|e| Error::Internal(e.to_string()))?),
            None,
            None,
        ),
        CompositeOutcome::Failed { reason, detail } => (
            "failed",
            None,
            None,
            Some(reason.as_str()),
            Some(detail.as_str()),
        ),
    };
    sqlx::query(
        "INSERT INTO composites (campaign, art_job_id, row_id, locale, variant, compose_hash,
            resolved_locale, resolution, state, asset_path, sha256, bytes, width, height, mime_type,
            layout_json, cost_usd, error_code, error_detail, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(campaign)
    .bind(art_job_id)
    .bind(&spec.row_id)
    .bind(spec.locale.tag())
    .bind(&spec.variant)
    .bind(compose_hash)
    .bind(&spec.resolved_locale)
    .bind(resolution)
    .bind(state)
    .bind(asset.map(|a| a.path.clone()))
    .bind(asset.map(|a| a.sha256.clone()))
    .bind(asset.map(|a| a.bytes as i64))
    .bind(asset.map(|a| i64::from(a.width)))
    .bind(asset.map(|a| i64::from(a.height)))
    .bind(asset.map(|a| a.mime_type.clone()))
    .bind(layout)
    .bind(if asset.is_some() { cost_usd } else { 0.0 })
    .bind(code)
    .bind(detail)
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db(queue))?;
    tx.commit().await.map_err(db(queue))?;
    Ok(())
}

/// Retire live composites whose identity is not in `keep`. Returns how many.
pub async fn retire_except(
    queue: &Queue,
    campaign: &str,
    keep: &HashSet<CompositeKey>,
) -> Result<usize> {
    let live = live(queue, campaign).await?;
    let gone: Vec<i64> = live
        .iter()
        .filter(|(k, _)| !keep.contains(*k))
        .map(|(_, c)| c.id)
        .collect();
    if gone.is_empty() {
        return Ok(0);
    }
    let now = now_ms();
    let mut tx = queue
        .pool()
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(db(queue))?;
    for id in &gone {
        sqlx::query(
            "UPDATE composites SET state = 'retired', updated_at = ? WHERE id = ? AND state IN ('done', 'failed')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db(queue))?;
    }
    tx.commit().await.map_err(db(queue))?;
    Ok(gone.len())
}

/// A composite joined with its art job, for the manifest.
struct CompositeRow {
    art_job_id: JobId,
    row_id: String,
    locale: String,
    variant: String,
    compose_hash: String,
    resolved_locale: String,
    resolution: String,
    state: String,
    asset: Option<AssetRecord>,
    layout: Vec<BoxLayout>,
    cost_usd: f64,
    error_code: Option<String>,
    error_detail: Option<String>,
    updated_at: i64,
    art: ArtFields,
}

/// What a composite's manifest entry takes from its art job.
struct ArtFields {
    provider: String,
    mode: String,
    model: String,
    aspect_ratio: String,
    image_size: String,
    prompt: String,
    request_hash: String,
    attempts: u32,
    path: String,
    sha256: String,
}

async fn composites_with_art(queue: &Queue, campaign: &str) -> Result<Vec<CompositeRow>> {
    let rows = sqlx::query(
        "SELECT c.art_job_id, c.row_id, c.locale, c.variant, c.compose_hash, c.resolved_locale,
                c.resolution, c.state, c.asset_path, c.sha256, c.bytes, c.width, c.height,
                c.mime_type, c.layout_json, c.cost_usd, c.error_code, c.error_detail, c.updated_at,
                j.provider, j.mode, j.model, j.aspect_ratio, j.image_size, j.prompt,
                j.request_hash, j.attempts, j.asset_path, j.sha256
         FROM composites c JOIN jobs j ON j.id = c.art_job_id
         WHERE c.campaign = ? AND c.state IN ('done', 'failed', 'retired')
         ORDER BY c.row_id, c.locale, c.variant, c.id",
    )
    .bind(campaign)
    .fetch_all(queue.pool())
    .await
    .map_err(db(queue))?;
    Ok(rows
        .into_iter()
        .map(|r| CompositeRow {
            art_job_id: r.get(0),
            row_id: r.get(1),
            locale: r.get(2),
            variant: r.get(3),
            compose_hash: r.get(4),
            resolved_locale: r.get(5),
            resolution: r.get(6),
            state: r.get(7),
            asset: r.get::<Option<String>, _>(8).map(|path| AssetRecord {
                path,
                sha256: r.get::<Option<String>, _>(9).unwrap_or_default(),
                bytes: r.get::<Option<i64>, _>(10).unwrap_or(0) as u64,
                width: r.get::<Option<i64>, _>(11).unwrap_or(0) as u32,
                height: r.get::<Option<i64>, _>(12).unwrap_or(0) as u32,
                mime_type: r.get::<Option<String>, _>(13).unwrap_or_default(),
            }),
            layout: r
                .get::<Option<String>, _>(14)
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
            cost_usd: r.get(15),
            error_code: r.get(16),
            error_detail: r.get(17),
            updated_at: r.get(18),
            art: ArtFields {
                provider: r.get::<Option<String>, _>(19).unwrap_or_default(),
                mode: r.get::<Option<String>, _>(20).unwrap_or_default(),
                model: r.get(21),
                aspect_ratio: r.get(22),
                image_size: r.get(23),
                prompt: r.get(24),
                request_hash: r.get(25),
                attempts: r.get::<i64, _>(26) as u32,
                path: r.get::<Option<String>, _>(27).unwrap_or_default(),
                sha256: r.get::<Option<String>, _>(28).unwrap_or_default(),
            },
        })
        .collect())
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

fn composite_entry(c: &CompositeRow) -> Option<AssetEntry> {
    let a = c.asset.as_ref()?;
    let (aspect_ratio_actual, aspect_ratio_ok) =
        crate::renditions::aspect_check(a.width, a.height, &c.art.aspect_ratio);
    Some(AssetEntry {
        aspect_ratio_actual,
        aspect_ratio_ok,
        // Renditions are made from masters the provider returned; composed
        // overlay assets do not get them yet.
        renditions: Vec::new(),
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
        provider: c.art.provider.clone(),
        model: c.art.model.clone(),
        mode: c.art.mode.clone(),
        aspect_ratio: c.art.aspect_ratio.clone(),
        image_size: c.art.image_size.clone(),
        prompt: c.art.prompt.clone(),
        request_sha256: c.art.request_hash.clone(),
        cost_usd: c.cost_usd,
        attempts: c.art.attempts,
        created_at: rfc3339(c.updated_at),
        overlay: Some(OverlayInfo {
            art_path: c.art.path.clone(),
            art_sha256: c.art.sha256.clone(),
            compose_sha256: c.compose_hash.clone(),
            boxes: c.layout.clone(),
        }),
    })
}

/// Build the manifest: model-text jobs as before, art jobs under `art`, and
/// one entry per row × locale × overlay variant: an asset when its current
/// composite is done, a failure when it overflowed or its art failed or was
/// blocked, pending while its art is not done. Totals count deliverables;
/// `totals.cost_usd` adds the art in full (see the module docs). Retired
/// entries whose path a current asset now occupies (a variant switched
/// between model and overlay text) are dropped, since that file was replaced.
pub async fn build_manifest(
    queue: &Queue,
    campaign: &Campaign,
    jobs: &[JobRow],
    renditions: &HashMap<crate::queue::JobId, Vec<crate::renditions::RenditionEntry>>,
) -> Result<Manifest> {
    let (art, model): (Vec<&JobRow>, Vec<&JobRow>) =
        jobs.iter().partition(|j| j.key.locale == ART_LOCALE);
    let model: Vec<JobRow> = model.into_iter().cloned().collect();
    let mut m = manifest::build_with_renditions(&campaign.name, &model, renditions);
    let art_jobs: Vec<JobRow> = art.into_iter().cloned().collect();
    if art_jobs.is_empty() && !campaign.variants.iter().any(|v| v.text.boxes().is_some()) {
        return Ok(m);
    }
    // Art masters: listed, and paid for in full.
    let art_manifest = manifest::build(&campaign.name, &art_jobs);
    m.totals.cost_usd += art_manifest.totals.cost_usd;
    // Retired art is history of a non-deliverable: not listed.
    m.art = art_manifest.assets;

    let current_art: HashMap<(String, String), &JobRow> = art_jobs
        .iter()
        .filter(|j| j.state != JobState::Retired)
        .map(|j| ((j.key.row_id.clone(), j.key.variant.clone()), j))
        .collect();
    let composites = composites_with_art(queue, &campaign.name).await?;
    let mut live: HashMap<CompositeKey, &CompositeRow> = HashMap::new();
    for c in &composites {
        match c.state.as_str() {
            "retired" => {
                if let Some(e) = composite_entry(c) {
                    m.retired.push(e);
                }
            }
            _ => {
                live.insert((c.row_id.clone(), c.locale.clone(), c.variant.clone()), c);
            }
        }
    }
    let plan = super::compose_plan(campaign).map_err(Error::Input)?;
    for spec in &plan {
        m.totals.jobs += 1;
        let art = current_art.get(&(spec.row_id.clone(), spec.variant.clone()));
        let key = (
            spec.row_id.clone(),
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
                Some(e) => {
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
                        reason: c.error_code.clone().unwrap_or_else(|| "other".into()),
                        detail: c.error_detail.clone().unwrap_or_default(),
                        block_reason: None,
                        attempts: c.art.attempts,
                        request_sha256: c.art.request_hash.clone(),
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
                    row_id: spec.row_id.clone(),
                    locale: spec.locale.tag().to_string(),
                    variant: spec.variant.clone(),
                    state: a.state.as_str().to_string(),
                    reason: a.error_code.clone().unwrap_or_else(|| "other".into()),
                    detail: format!(
                        "the copy-free art for this row and variant was not made: {}",
                        a.error_detail.clone().unwrap_or_default()
                    ),
                    block_reason: a.block_reason.clone(),
                    attempts: a.attempts,
                    request_sha256: a.request_hash.clone(),
                });
            }
            _ => m.totals.pending += 1,
        }
    }
    let current_paths: HashSet<String> = m.assets.iter().map(|a| a.path.clone()).collect();
    m.retired.retain(|r| !current_paths.contains(&r.path));
    m.totals.retired = m.retired.len() as u64;
    m.assets.sort_by(|a, b| {
        (&a.row_id, &a.locale, &a.variant).cmp(&(&b.row_id, &b.locale, &b.variant))
    });
    m.failures.sort_by(|a, b| {
        (&a.row_id, &a.locale, &a.variant).cmp(&(&b.row_id, &b.locale, &b.variant))
    });
    m.totals.cost_usd = crate::cost::round_micro(m.totals.cost_usd);
    Ok(m)
}

/// Per composite identity, the art job it needs: used by `compose_all`.
pub(crate) fn art_by_row_variant(jobs: &[JobRow]) -> BTreeMap<(String, String), &JobRow> {
    jobs.iter()
        .filter(|j| j.key.locale == ART_LOCALE && j.state == JobState::Done && j.asset.is_some())
        .map(|j| ((j.key.row_id.clone(), j.key.variant.clone()), j))
        .collect()
}
