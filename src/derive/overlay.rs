//! Composing: typeset one locale's copy onto the copy-free art, write the
//! result atomically, and record it. Pure CPU work plus local files; no
//! provider is ever called from here.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::assets;
use crate::campaign::Campaign;
use crate::domain::{AssetRecord, Error, JobState, Reason, Result, round_micro};
use crate::expand::{ComposeSpec, compose_plan};
use crate::imaging::text::{register_brand_fonts, with_brand_family};
use crate::imaging::{compose_steps_bytes, mime_of};
use crate::store::{CompositeKey, CompositeOutcome, JobRow, Store};

/// What a compose pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeReport {
    /// Composites written.
    pub composed: usize,
    /// Composites whose copy, boxes and art did not change (nothing done).
    pub unchanged: usize,
    /// Composites that failed with `text_overflow`.
    pub overflowed: usize,
    /// Composites that failed for another reason (unreadable art).
    pub failed: usize,
    /// Composites waiting for their art.
    pub waiting: usize,
    /// Composites retired because their row, locale or variant left.
    pub retired: usize,
}

/// Compose, write atomically and describe the file. I/O errors writing the
/// asset tree are run errors (`Err`); art problems and overflow are outcomes.
fn compose_and_write(
    campaign_out: &Path,
    campaign: &str,
    art_path: &Path,
    spec: &ComposeSpec,
    nominal_width: Option<u32>,
    brand_family: Option<&'static str>,
) -> Result<CompositeOutcome> {
    let art = match std::fs::read(art_path) {
        Ok(b) => b,
        Err(e) => {
            return Ok(CompositeOutcome::Failed {
                reason: Reason::UndecodableImage,
                detail: format!("cannot read the art {}: {e}", art_path.display()),
            });
        }
    };
    let composed = match with_brand_family(brand_family, || {
        compose_steps_bytes(&art, &spec.steps(), spec.locale.tag(), nominal_width)
    }) {
        Ok(c) => c,
        Err(f) => {
            return Ok(CompositeOutcome::Failed {
                reason: f.reason,
                detail: f.detail,
            });
        }
    };
    let rel = assets::master_rel_path(&spec.key(campaign), composed.format);
    let path = campaign_out.join(&rel);
    let delivered = assets::write_delivered(
        &path,
        &composed.bytes,
        &assets::provenance::Step::composite().with_parent(&art),
    )
    .map_err(|e| match e {
        assets::AssetError::Io { path, source } => Error::io(path, source),
        other => Error::Internal(other.to_string()),
    })?;
    Ok(CompositeOutcome::Done {
        asset: AssetRecord {
            path: rel,
            sha256: hex::encode(Sha256::digest(&delivered)),
            bytes: delivered.len() as u64,
            width: composed.width,
            height: composed.height,
            mime_type: mime_of(composed.format).to_string(),
        },
        layout: composed.layout,
    })
}

/// Compose every overlay asset whose art is done and whose compose hash
/// changed (or that was never composed), record each outcome, and retire
/// composites whose identity left the campaign. Runs after dispatch, so
/// `jobs` holds the art's final state; it calls no provider.
pub async fn compose_all(
    store: &Store,
    campaign: &Campaign,
    campaign_out: &Path,
    jobs: &[JobRow],
) -> Result<ComposeReport> {
    let mut report = ComposeReport::default();
    let plan = compose_plan(campaign).map_err(Error::Input)?;
    let keep: HashSet<CompositeKey> = plan
        .iter()
        .map(|s| {
            (
                s.row_id.to_string(),
                s.locale.tag().to_string(),
                s.variant.clone(),
            )
        })
        .collect();
    report.retired = store
        .retire_composites_except(&campaign.name, &keep)
        .await?;
    if plan.is_empty() {
        return Ok(report);
    }
    let art = art_by_row_variant(jobs);
    let live = store.live_composites(&campaign.name).await?;
    let locales = campaign.locales.len().max(1) as f64;

    struct Task {
        spec: ComposeSpec,
        /// The documented width of the art's frame for the model that made
        /// it (box sizes are pixels at that width).
        nominal_width: Option<u32>,
        art_job_id: i64,
        art_path: PathBuf,
        hash: String,
        cost: f64,
    }
    let mut tasks = Vec::new();
    for spec in plan {
        let Some(a) = art.get(&(spec.row_id.to_string(), spec.variant.clone())) else {
            report.waiting += 1;
            continue;
        };
        let Some(asset) = &a.asset else {
            report.waiting += 1;
            continue;
        };
        let hash = spec.compose_hash(&asset.sha256);
        let key = (
            spec.row_id.to_string(),
            spec.locale.tag().to_string(),
            spec.variant.clone(),
        );
        if live
            .get(&key)
            .is_some_and(|c| c.art_job_id == a.id && c.compose_hash == hash)
        {
            report.unchanged += 1;
            continue;
        }
        tasks.push(Task {
            nominal_width: a
                .model
                .family()
                .pixel_size(a.aspect_ratio.as_str(), a.image_size)
                .map(|(w, _)| w),
            art_path: campaign_out.join(&asset.path),
            art_job_id: a.id,
            hash,
            cost: round_micro(a.cost_usd.unwrap_or(0.0) / locales),
            spec,
        });
    }
    if tasks.is_empty() {
        return Ok(report);
    }

    // Brand faces first, per piece of copy (see `with_brand_family`).
    let fonts: Vec<Arc<Vec<u8>>> = campaign
        .brand
        .fonts
        .iter()
        .map(|(f, _)| f.bytes.clone())
        .collect();
    let brand_family = register_brand_fonts(&fonts);
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let out: Arc<PathBuf> = Arc::new(campaign_out.to_path_buf());
    let mut set: JoinSet<(Task, Result<CompositeOutcome>)> = JoinSet::new();
    let mut pending = tasks.into_iter();
    loop {
        while set.len() < parallel {
            let Some(task) = pending.next() else { break };
            let nominal_width = task.nominal_width;
            let out = out.clone();
            let name = campaign.name.clone();
            set.spawn_blocking(move || {
                let res = compose_and_write(
                    &out,
                    &name,
                    &task.art_path,
                    &task.spec,
                    nominal_width,
                    brand_family,
                );
                (task, res)
            });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (task, res) = joined.map_err(|e| Error::Internal(format!("compose task: {e}")))?;
        let outcome = res?;
        match &outcome {
            CompositeOutcome::Done { .. } => report.composed += 1,
            CompositeOutcome::Failed { reason, detail } => {
                if *reason == Reason::TextOverflow {
                    report.overflowed += 1;
                } else {
                    report.failed += 1;
                }
                tracing::warn!(
                    row = %task.spec.row_id,
                    locale = %task.spec.locale,
                    variant = %task.spec.variant,
                    reason = %reason,
                    "{detail}"
                );
            }
        }
        store
            .record_composite(
                &campaign.name,
                &task.spec,
                task.art_job_id,
                &task.hash,
                task.cost,
                &outcome,
            )
            .await?;
    }
    tracing::info!(
        composed = report.composed,
        unchanged = report.unchanged,
        overflowed = report.overflowed,
        waiting_for_art = report.waiting,
        "overlay text typeset"
    );
    Ok(report)
}

/// Per (row id, variant), the done art job with its asset.
fn art_by_row_variant(jobs: &[JobRow]) -> BTreeMap<(String, String), &JobRow> {
    jobs.iter()
        .filter(|j| j.key.target.is_art() && j.state == JobState::Done && j.asset.is_some())
        .map(|j| ((j.key.row.to_string(), j.key.variant.clone()), j))
        .collect()
}

#[cfg(test)]
#[path = "overlay_tests.rs"]
mod tests;
