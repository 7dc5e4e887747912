//! Composing: typeset one locale's copy onto the copy-free art, write the
//! result atomically, and record it. Pure CPU work plus local files; no
//! provider is ever called from here.
//!
//! A model-text variant with brand layers goes the same way, its own image
//! standing in for the art: the model's un-layered image is moved (once) to
//! `_unlayered/<locale>/<variant>/<row>.<ext>` and the job's record follows
//! it, so copy QA, revisions and reruns keep reading the model's pixels;
//! the layered file is written at the asset path and recorded as the
//! identity's composite. See [`crate::expand::ComposeSpec::on_model_image`].

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::assets;
use crate::campaign::Campaign;
use crate::domain::{AssetRecord, Error, JobState, Reason, Result, Target, round_micro};
use crate::expand::{ComposeSpec, compose_plan};
use crate::imaging::text::register_brand_fonts;
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

/// Where a layered model-text variant keeps the model's own image: the
/// asset path `delivered` under `_unlayered/` (locales are BCP-47 tags, so
/// no locale folder is called that).
pub(crate) fn unlayered_rel_path(delivered: &str) -> String {
    format!("{UNLAYERED_DIR}/{delivered}")
}

/// The folder of un-layered model-text images.
const UNLAYERED_DIR: &str = "_unlayered";

/// The asset path of an un-layered image's layered file, if `rel` is one.
pub(crate) fn delivered_of(rel: &str) -> Option<&str> {
    rel.strip_prefix(UNLAYERED_DIR)?.strip_prefix('/')
}

/// Copy a job's image from `from` to `to` (paths relative to
/// `campaign_out`), checked against its recorded `sha256`: a copy already
/// at `to` is kept (a run killed after copying), and a file at `from` that
/// is not the recorded image (already layered, edited by hand) is refused
/// rather than layered again.
fn copy_recorded(
    campaign_out: &Path,
    from: &str,
    to: &str,
    sha256: &str,
) -> Result<Option<String>> {
    let holds = |rel: &str| -> Result<Option<Vec<u8>>> {
        let p = campaign_out.join(rel);
        match std::fs::read(&p) {
            Ok(b) => Ok((hex::encode(Sha256::digest(&b)) == sha256).then_some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    };
    if holds(to)?.is_some() {
        return Ok(None);
    }
    let Some(bytes) = holds(from)? else {
        return Ok(Some(format!(
            "the model's image {from} is not the one recorded (sha256 {sha256}): restore it or rerun the job"
        )));
    };
    assets::write_atomic(&campaign_out.join(to), &bytes)?;
    Ok(None)
}

/// Compose, write atomically and describe the file. I/O errors writing the
/// asset tree are run errors (`Err`); art problems and overflow are outcomes.
/// With `expect_sha256` (a model-text job's own image), bytes that are not
/// that image are refused: layers are never drawn onto a layered file.
fn compose_and_write(
    campaign_out: &Path,
    campaign: &str,
    art_path: &Path,
    expect_sha256: Option<&str>,
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
    if let Some(sha) = expect_sha256
        && hex::encode(Sha256::digest(&art)) != sha
    {
        return Ok(CompositeOutcome::Failed {
            reason: Reason::UndecodableImage,
            detail: format!(
                "the model's image {} is not the one recorded (sha256 {sha}): restore it or rerun the job",
                art_path.display()
            ),
        });
    }
    let composed = match compose_steps_bytes(
        &art,
        &spec.steps(),
        spec.locale.tag(),
        nominal_width,
        brand_family,
    ) {
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
    restore_unlayered(store, campaign_out, jobs, &keep).await?;
    if plan.is_empty() {
        return Ok(report);
    }
    let art = art_by_row_variant(jobs);
    let own = model_images(jobs);
    let live = store.live_composites(&campaign.name).await?;
    let locales = campaign.locales.len().max(1) as f64;

    struct Task {
        spec: ComposeSpec,
        /// The documented width of the art's frame for the model that made
        /// it (box sizes are pixels at that width).
        nominal_width: Option<u32>,
        art_job_id: i64,
        art_sha256: String,
        art_path: PathBuf,
        hash: String,
        cost: f64,
        /// A model-text job's image: its recorded SHA-256, and where it is
        /// to be moved first when it still sits at the asset path.
        own: Option<(String, Option<(String, String)>)>,
    }
    let mut tasks = Vec::new();
    for spec in plan {
        let key = (
            spec.row_id.to_string(),
            spec.locale.tag().to_string(),
            spec.variant.clone(),
        );
        let found = if spec.on_model_image {
            own.get(&key)
        } else {
            art.get(&(spec.row_id.to_string(), spec.variant.clone()))
        };
        let Some((a, asset)) = found.and_then(|a| Some((a, a.asset.as_ref()?))) else {
            report.waiting += 1;
            continue;
        };
        let hash = spec.compose_hash(&asset.sha256);
        // A model-text image still at the asset path was just made (or
        // remade): its layered file is not there, whatever the hash says.
        let relocate = (spec.on_model_image && delivered_of(&asset.path).is_none())
            .then(|| (asset.path.clone(), unlayered_rel_path(&asset.path)));
        if relocate.is_none()
            && live
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
            art_sha256: asset.sha256.clone(),
            hash,
            // A model-text image is this composite's alone.
            cost: if spec.on_model_image {
                a.cost_usd.unwrap_or(0.0)
            } else {
                round_micro(a.cost_usd.unwrap_or(0.0) / locales)
            },
            own: spec
                .on_model_image
                .then(|| (asset.sha256.clone(), relocate)),
            spec,
        });
    }
    if tasks.is_empty() {
        return Ok(report);
    }

    // The model's images move out of the asset path before anything is
    // drawn there: copy (checked), then point the job at the copy, then
    // compose. A kill at any point leaves the job's record naming a file
    // that holds its bytes.
    let mut ready = Vec::with_capacity(tasks.len());
    for mut task in tasks {
        let Some((sha, Some((from, to)))) = task.own.clone() else {
            ready.push(task);
            continue;
        };
        let out = campaign_out.to_path_buf();
        let (f, t, s) = (from.clone(), to.clone(), sha.clone());
        let refused = tokio::task::spawn_blocking(move || copy_recorded(&out, &f, &t, &s))
            .await
            .map_err(|e| Error::Internal(format!("keep the model's image: {e}")))??;
        if let Some(detail) = refused {
            report.failed += 1;
            tracing::warn!(row = %task.spec.row_id, locale = %task.spec.locale, variant = %task.spec.variant, "{detail}");
            let outcome = CompositeOutcome::Failed {
                reason: Reason::UndecodableImage,
                detail,
            };
            store
                .record_composite(
                    &campaign.name,
                    &task.spec,
                    task.art_job_id,
                    &task.art_sha256,
                    &task.hash,
                    0.0,
                    &outcome,
                )
                .await?;
            continue;
        }
        if !store.move_job_asset(task.art_job_id, &sha, &to).await? {
            // The job moved on since it was read (another runner remade
            // it): its next image is composed on the next pass.
            report.waiting += 1;
            continue;
        }
        task.art_path = campaign_out.join(&to);
        ready.push(task);
    }
    let tasks = ready;

    // Brand faces first, per piece of copy (see `TextStyle::brand_family`).
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
                    task.own.as_ref().map(|(sha, _)| sha.as_str()),
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
                &task.art_sha256,
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

/// Per (row id, locale, variant), the done model-text job with its asset.
fn model_images(jobs: &[JobRow]) -> BTreeMap<(String, String, String), &JobRow> {
    jobs.iter()
        .filter(|j| j.state == JobState::Done && j.asset.is_some())
        .filter_map(|j| {
            let Target::Locale(l) = &j.key.target else {
                return None;
            };
            Some((
                (
                    j.key.row.to_string(),
                    l.tag().to_string(),
                    j.key.variant.clone(),
                ),
                j,
            ))
        })
        .collect()
}

/// Put back at its asset path the un-layered image of every done job no
/// longer layered (its variant dropped its layers): what the model made is
/// delivered again, and the job's record follows it.
async fn restore_unlayered(
    store: &Store,
    campaign_out: &Path,
    jobs: &[JobRow],
    layered: &HashSet<CompositeKey>,
) -> Result<()> {
    for j in jobs {
        let (JobState::Done, Some(asset), Target::Locale(l)) = (j.state, &j.asset, &j.key.target)
        else {
            continue;
        };
        let Some(delivered) = delivered_of(&asset.path) else {
            continue;
        };
        let key = (
            j.key.row.to_string(),
            l.tag().to_string(),
            j.key.variant.clone(),
        );
        if layered.contains(&key) {
            continue;
        }
        let out = campaign_out.to_path_buf();
        let (from, to, sha) = (
            asset.path.clone(),
            delivered.to_string(),
            asset.sha256.clone(),
        );
        // The layered file at the asset path is not the recorded image, so
        // it is replaced, never kept.
        let refused = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_file(out.join(&to));
            copy_recorded(&out, &from, &to, &sha)
        })
        .await
        .map_err(|e| Error::Internal(format!("restore the model's image: {e}")))??;
        match refused {
            Some(detail) => tracing::warn!(job = %j.key, "{detail}"),
            None => {
                store.move_job_asset(j.id, &asset.sha256, delivered).await?;
            }
        }
    }
    Ok(())
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
