//! The `composites` table (migration `20261127000003_overlay.sql`): one
//! live row per overlay composite, every write one transaction.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::Row;

use super::{JobId, Store, parsed, stored_model, to_i64};
use crate::domain::{
    AspectRatio, AssetRecord, BillingMode, CompositeState, Error, ImageSize, ModelId, ProviderKind,
    Reason, Result, now_ms,
};
use crate::expand::ComposeSpec;
use crate::imaging::BoxLayout;

fn db(store: &Store) -> impl Fn(sqlx::Error) -> Error + '_ {
    store.err()
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
    pub state: CompositeState,
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
        /// `text_overflow`, `undecodable_image` or `other`.
        reason: Reason,
        /// Human detail, with the copy that did not fit.
        detail: String,
    },
}

/// Live composites of a campaign by identity.
pub(super) async fn live(
    queue: &Store,
    campaign: &str,
) -> Result<HashMap<CompositeKey, LiveComposite>> {
    let rows = sqlx::query(
        "SELECT id, row_id, locale, variant, art_job_id, compose_hash, state FROM composites
         WHERE campaign = $1 AND state IN ('done', 'failed')",
    )
    .bind(campaign)
    .fetch_all(queue.pool())
    .await
    .map_err(db(queue))?;
    rows.into_iter()
        .map(|r| {
            Ok((
                (r.get(1), r.get(2), r.get(3)),
                LiveComposite {
                    id: r.get(0),
                    art_job_id: r.get(4),
                    compose_hash: r.get(5),
                    state: parsed("composite state", &r.get::<String, _>(6))?,
                },
            ))
        })
        .collect()
}

/// Record a composite, superseding the identity's previous live row, in
/// one transaction.
#[allow(clippy::too_many_arguments)]
pub(super) async fn record(
    queue: &Store,
    campaign: &str,
    spec: &ComposeSpec,
    art_job_id: JobId,
    art_sha256: &str,
    compose_hash: &str,
    cost_usd: f64,
    outcome: &CompositeOutcome,
) -> Result<()> {
    let now = now_ms();
    let mut tx = queue.write_tx().await?;
    sqlx::query(
        "UPDATE composites SET state = 'superseded', updated_at = $1
         WHERE campaign = $2 AND row_id = $3 AND locale = $4 AND variant = $5 AND state IN ('done', 'failed')",
    )
    .bind(now)
    .bind(campaign)
    .bind(spec.row_id.as_str())
    .bind(spec.locale.tag())
    .bind(&spec.variant)
    .execute(&mut *tx)
    .await
    .map_err(db(queue))?;
    let resolution =
        serde_json::to_string(&spec.resolution).map_err(|e| Error::Internal(e.to_string()))?;
    let copy: BTreeMap<String, String> = spec
        .texts()
        .map(|(b, text)| (b.column.clone(), text.clone()))
        .collect();
    let copy_json = super::copy_json(&copy)?;
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
            Some(reason.code()),
            Some(detail.as_str()),
        ),
    };
    sqlx::query(
        "INSERT INTO composites (campaign, art_job_id, row_id, locale, variant, compose_hash,
            resolved_locale, resolution, state, asset_path, sha256, bytes, width, height, mime_type,
            layout_json, cost_usd, error_code, error_detail, created_at, updated_at, copy_json,
            art_sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
    )
    .bind(campaign)
    .bind(art_job_id)
    .bind(spec.row_id.as_str())
    .bind(spec.locale.tag())
    .bind(&spec.variant)
    .bind(compose_hash)
    .bind(&spec.resolved_locale)
    .bind(resolution)
    .bind(state)
    .bind(asset.map(|a| a.path.clone()))
    .bind(asset.map(|a| a.sha256.clone()))
    .bind(asset.map(|a| to_i64("file size", a.bytes)).transpose()?)
    .bind(asset.map(|a| i64::from(a.width)))
    .bind(asset.map(|a| i64::from(a.height)))
    .bind(asset.map(|a| a.mime_type.clone()))
    .bind(layout)
    .bind(if asset.is_some() { cost_usd } else { 0.0 })
    .bind(code)
    .bind(detail)
    .bind(now)
    .bind(now)
    .bind(copy_json)
    .bind(art_sha256)
    .execute(&mut *tx)
    .await
    .map_err(db(queue))?;
    tx.commit().await.map_err(db(queue))?;
    Ok(())
}

/// Retire live composites whose identity is not in `keep`. Returns how many.
pub(super) async fn retire_except(
    queue: &Store,
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
    let mut tx = queue.write_tx().await?;
    for id in &gone {
        sqlx::query(
            "UPDATE composites SET state = 'retired', updated_at = $1 WHERE id = $2 AND state IN ('done', 'failed')",
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
#[derive(Debug, Clone)]
pub struct CompositeRow {
    /// The art job it was made from.
    pub art_job_id: JobId,
    /// Row id.
    pub row_id: String,
    /// Locale tag.
    pub locale: String,
    /// Variant.
    pub variant: String,
    /// Hash over copy, box settings and the art's SHA-256.
    pub compose_hash: String,
    /// Locale the first box's copy came from.
    pub resolved_locale: String,
    /// Per box column, the locale its copy came from (JSON object).
    pub resolution: String,
    /// State.
    pub state: CompositeState,
    /// The file, when done.
    pub asset: Option<AssetRecord>,
    /// How each box was set.
    pub layout: Vec<BoxLayout>,
    /// Its share of the art's cost.
    pub cost_usd: f64,
    /// Why it failed.
    pub error_code: Option<Reason>,
    /// What failed.
    pub error_detail: Option<String>,
    /// Last change (ms).
    pub updated_at: i64,
    /// What it takes from its art job.
    pub art: ArtFields,
    /// The copy set into it, per box column.
    pub copy: BTreeMap<String, String>,
}

/// What a composite's manifest entry takes from its art job.
#[derive(Debug, Clone)]
pub struct ArtFields {
    /// Who made the art.
    pub provider: Option<ProviderKind>,
    /// How it was bought.
    pub mode: Option<BillingMode>,
    /// Model.
    pub model: ModelId,
    /// Aspect ratio.
    pub aspect_ratio: AspectRatio,
    /// Size tier.
    pub image_size: ImageSize,
    /// Prompt.
    pub prompt: String,
    /// Request hash.
    pub request_hash: String,
    /// Calls made.
    pub attempts: u32,
    /// Art file path.
    pub path: String,
    /// Art file SHA-256.
    pub sha256: String,
}

pub(super) async fn composites_with_art(
    queue: &Store,
    campaign: &str,
) -> Result<Vec<CompositeRow>> {
    let rows = sqlx::query(
        "SELECT c.art_job_id, c.row_id, c.locale, c.variant, c.compose_hash, c.resolved_locale,
                c.resolution, c.state, c.asset_path, c.sha256, c.bytes, c.width, c.height,
                c.mime_type, c.layout_json, c.cost_usd, c.error_code, c.error_detail, c.updated_at,
                j.provider, j.mode, j.model, j.aspect_ratio, j.image_size, j.prompt,
                j.request_hash, j.attempts, j.asset_path, j.sha256, c.copy_json
         FROM composites c JOIN jobs j ON j.id = c.art_job_id
         WHERE c.campaign = $1 AND c.state IN ('done', 'failed', 'retired')
         ORDER BY c.row_id, c.locale, c.variant, c.id",
    )
    .bind(campaign)
    .fetch_all(queue.pool())
    .await
    .map_err(db(queue))?;
    rows.into_iter()
        .map(|r| {
            Ok(CompositeRow {
                art_job_id: r.get(0),
                row_id: r.get(1),
                locale: r.get(2),
                variant: r.get(3),
                compose_hash: r.get(4),
                resolved_locale: r.get(5),
                resolution: r.get(6),
                state: parsed("composite state", &r.get::<String, _>(7))?,
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
                error_code: r
                    .get::<Option<String>, _>(16)
                    .map(|c| parsed("reason", &c))
                    .transpose()?,
                error_detail: r.get(17),
                updated_at: r.get(18),
                art: ArtFields {
                    provider: r
                        .get::<Option<String>, _>(19)
                        .map(|p| parsed("provider", &p))
                        .transpose()?,
                    mode: r
                        .get::<Option<String>, _>(20)
                        .map(|m| parsed("mode", &m))
                        .transpose()?,
                    model: stored_model(&r.get::<String, _>(21))?,
                    aspect_ratio: parsed("aspect ratio", &r.get::<String, _>(22))?,
                    image_size: parsed("image size", &r.get::<String, _>(23))?,
                    prompt: r.get(24),
                    request_hash: r.get(25),
                    attempts: r.get::<i64, _>(26) as u32,
                    path: r.get::<Option<String>, _>(27).unwrap_or_default(),
                    sha256: r.get::<Option<String>, _>(28).unwrap_or_default(),
                },
                copy: super::copy_from_column(r.get(29))?,
            })
        })
        .collect()
}

impl Store {
    /// Live (done or failed) composites of a campaign by identity.
    pub async fn live_composites(
        &self,
        campaign: &str,
    ) -> Result<HashMap<CompositeKey, LiveComposite>> {
        live(self, campaign).await
    }

    /// Record a composite of the art job's image `art_sha256`, superseding
    /// the identity's previous live row, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_composite(
        &self,
        campaign: &str,
        spec: &ComposeSpec,
        art_job_id: JobId,
        art_sha256: &str,
        compose_hash: &str,
        cost_usd: f64,
        outcome: &CompositeOutcome,
    ) -> Result<()> {
        record(
            self,
            campaign,
            spec,
            art_job_id,
            art_sha256,
            compose_hash,
            cost_usd,
            outcome,
        )
        .await
    }

    /// Retire live composites whose identity is not in `keep`; how many.
    pub async fn retire_composites_except(
        &self,
        campaign: &str,
        keep: &HashSet<CompositeKey>,
    ) -> Result<usize> {
        retire_except(self, campaign, keep).await
    }

    /// Record that a done job's image (same bytes: `sha256` must still be
    /// the job's) now lives at `path`: a model-text image kept un-layered
    /// beside the layered file delivered at its asset path. Changes no row
    /// when the job moved on (another image, another state); says whether
    /// it changed one.
    pub async fn move_job_asset(&self, job: JobId, sha256: &str, path: &str) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE jobs SET asset_path = $1, updated_at = $2
             WHERE id = $3 AND sha256 = $4 AND state = 'done'",
        )
        .bind(path)
        .bind(now_ms())
        .bind(job)
        .bind(sha256)
        .execute(&mut *tx)
        .await
        .map_err(db(self))?
        .rows_affected();
        tx.commit().await.map_err(db(self))?;
        Ok(n == 1)
    }

    /// Every done, failed or retired composite joined with its art job.
    pub async fn composites(&self, campaign: &str) -> Result<Vec<CompositeRow>> {
        composites_with_art(self, campaign).await
    }
}
