//! Placements: every delivered asset (a model-text master or revision, an
//! overlay composite) made to each ad-platform slot its variant names,
//! within the slot's weight limit, and checked the way the platform will
//! check it before it is kept.
//!
//! Like renditions, placements come from the delivered file alone, never
//! from a provider: a placement's identity is its asset and placement id,
//! its freshness the hash of its settings and the sha256 of the asset it
//! came from. At the end of every run [`reconcile`] makes what is missing
//! or stale, keeps what is current (a recorded failure too: the same file
//! and settings fail the same way), and removes what the campaign no
//! longer names.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use fast_image_resize::Resizer;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::assets::{self, AssetError};
use crate::campaign::Campaign;
use crate::domain::placement::{PlacementFormat, PlacementSpec, START_QUALITY};
use crate::domain::{AssetRecord, CompositeState, Error, JobState, Reason, Result};
use crate::imaging::{
    Fit, OutputFormat, RenditionSpec, WeightError, check_placement, decode_master,
    encode_placement, render_pixels,
};
use crate::store::{PlacementEntry, PlacementKey, PlacementOutcome, SafeAreaEntry, Store};

/// Bump to remake every placement after a change to how they are made.
const ALGORITHM_VERSION: u32 = 1;

/// What [`reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementReport {
    /// Placement files written.
    pub produced: usize,
    /// Placements already current (files, and failures that would repeat).
    pub kept: usize,
    /// Placements no longer named whose rows and files were removed.
    pub removed: usize,
    /// Placements that could not be made this run (over weight, failed
    /// checks, unusable asset).
    pub failed: usize,
    /// Placements that needed a lower quality or a palette to fit.
    pub reencoded: usize,
}

/// Hex SHA-256 over everything that decides a placement's file.
fn settings_hash(spec: &PlacementSpec, focal: (f64, f64)) -> String {
    let formats: Vec<&str> = spec.formats.iter().map(|f| f.as_str()).collect();
    let canonical = json!({
        "v": ALGORITHM_VERSION,
        "id": spec.id.as_str(),
        "width": spec.width,
        "height": spec.height,
        "max_bytes": spec.max_bytes,
        "formats": formats,
        "aspect_tolerance": spec.aspect_tolerance,
        "min_size": spec.min_size,
        "min_quality": spec.min_quality,
        "start_quality": START_QUALITY,
        "focal": [focal.0, focal.1],
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// One delivered asset and the placements to make of it.
struct Todo {
    row_id: String,
    locale: String,
    variant: String,
    asset: AssetRecord,
    focal: (f64, f64),
    specs: Vec<(String, PlacementSpec)>,
}

impl Todo {
    fn key(&self, spec: &PlacementSpec) -> PlacementKey {
        PlacementKey {
            row_id: self.row_id.clone(),
            locale: self.locale.clone(),
            variant: self.variant.clone(),
            placement: spec.id.as_str().to_string(),
        }
    }
    fn rel_path(&self, spec: &PlacementSpec) -> String {
        assets::placement_rel_path(
            &self.locale,
            &self.variant,
            &self.row_id,
            &spec.id,
            spec.format().unwrap_or(PlacementFormat::Jpeg),
        )
    }
}

/// Every delivered asset of the campaign: done model-text jobs (their
/// current revision) and done composites, by identity. A model-text image
/// with brand layers is delivered as its composite, which wins.
async fn delivered(
    store: &Store,
    campaign: &str,
) -> Result<Vec<((String, String, String), AssetRecord)>> {
    let mut out = std::collections::BTreeMap::new();
    for j in store.jobs(campaign).await? {
        let (JobState::Done, Some(asset), Some(locale)) = (j.state, j.asset, j.key.target.locale())
        else {
            continue;
        };
        out.insert(
            (
                j.key.row.to_string(),
                locale.tag().to_string(),
                j.key.variant,
            ),
            asset,
        );
    }
    for c in store.composites(campaign).await? {
        let key = (c.row_id, c.locale, c.variant);
        match (c.state, c.asset) {
            (CompositeState::Done, Some(asset)) => {
                out.insert(key, asset);
            }
            // Layers that could not be drawn: nothing of it ships.
            (CompositeState::Failed, _) => {
                out.remove(&key);
            }
            _ => {}
        }
    }
    Ok(out.into_iter().collect())
}

/// Bring every delivered asset's placements in line with the campaign:
/// make what is missing or stale, remove what is no longer named.
pub async fn reconcile(
    store: &Store,
    campaign: &Campaign,
    campaign_out: &Path,
) -> Result<PlacementReport> {
    let mut report = PlacementReport::default();
    let by_variant: HashMap<&str, (&[PlacementSpec], (f64, f64))> = campaign
        .variants
        .iter()
        .map(|v| (v.name.as_str(), (v.placements.as_slice(), v.focal)))
        .collect();
    let stored = store.stored_placements(&campaign.name).await?;
    let stored_by_key: HashMap<&PlacementKey, _> = stored.iter().map(|s| (&s.key, s)).collect();

    let mut wanted: HashSet<PlacementKey> = HashSet::new();
    let mut wanted_paths: HashSet<String> = HashSet::new();
    let mut todos = Vec::new();
    for ((row_id, locale, variant), asset) in delivered(store, &campaign.name).await? {
        let Some((specs, focal)) = by_variant.get(variant.as_str()).copied() else {
            continue;
        };
        if specs.is_empty() {
            continue;
        }
        let mut todo = Todo {
            row_id,
            locale,
            variant,
            asset,
            focal,
            specs: Vec::new(),
        };
        for spec in specs {
            let key = todo.key(spec);
            let hash = settings_hash(spec, focal);
            wanted_paths.insert(todo.rel_path(spec));
            let current = stored_by_key.get(&key).is_some_and(|s| {
                s.settings_hash == hash
                    && s.source_sha256 == todo.asset.sha256
                    && s.bytes.is_none_or(|b| {
                        std::fs::metadata(campaign_out.join(&s.path)).is_ok_and(|m| m.len() == b)
                    })
            });
            wanted.insert(key);
            if current {
                report.kept += 1;
            } else {
                todo.specs.push((hash, spec.clone()));
            }
        }
        if !todo.specs.is_empty() {
            todos.push(todo);
        }
    }

    produce_all(store, &campaign.name, campaign_out, todos, &mut report).await?;

    for s in &stored {
        if wanted.contains(&s.key) {
            continue;
        }
        store.delete_placement(&campaign.name, &s.key).await?;
        if s.bytes.is_some() && !wanted_paths.contains(&s.path) {
            let p = campaign_out.join(&s.path);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(p, e)),
            }
        }
        report.removed += 1;
    }
    if report.produced + report.removed + report.failed > 0 {
        tracing::debug!(
            produced = report.produced,
            kept = report.kept,
            removed = report.removed,
            failed = report.failed,
            reencoded = report.reencoded,
            "placements reconciled"
        );
    }
    Ok(report)
}

/// What one asset's blocking task made.
struct Made {
    todo_keys: Vec<(PlacementKey, String)>,
    source_sha256: String,
    outcomes: Vec<PlacementOutcome>,
    reencoded: usize,
}

/// Make the placements of `todos`, one blocking task per asset (decoded
/// once), as many at a time as there are cores, recording each outcome
/// once its file is in place.
async fn produce_all(
    store: &Store,
    campaign: &str,
    campaign_out: &Path,
    todos: Vec<Todo>,
    report: &mut PlacementReport,
) -> Result<()> {
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let out = Arc::new(campaign_out.to_path_buf());
    let mut pending = todos.into_iter();
    let mut set: tokio::task::JoinSet<std::result::Result<Made, AssetError>> =
        tokio::task::JoinSet::new();
    loop {
        while set.len() < parallel {
            let Some(todo) = pending.next() else { break };
            let out = out.clone();
            set.spawn_blocking(move || produce_asset(&out, &todo));
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let made = match joined {
            Ok(Ok(m)) => m,
            Ok(Err(AssetError::Io { path, source })) => return Err(Error::io(path, source)),
            Ok(Err(e)) => return Err(Error::Internal(e.to_string())),
            Err(e) => return Err(Error::Internal(format!("placement task failed: {e}"))),
        };
        report.reencoded += made.reencoded;
        for ((key, hash), outcome) in made.todo_keys.iter().zip(&made.outcomes) {
            match outcome {
                PlacementOutcome::Done(_) => report.produced += 1,
                PlacementOutcome::Failed { reason, detail, .. } => {
                    tracing::warn!(
                        placement = %key.placement,
                        asset = %format!("{}/{}/{}", key.locale, key.variant, key.row_id),
                        reason = reason.code(),
                        "{detail}"
                    );
                    report.failed += 1;
                }
            }
            store
                .record_placement(campaign, key, hash, &made.source_sha256, outcome)
                .await?;
        }
    }
    Ok(())
}

/// Read, verify and decode one asset, and make each of its placements.
/// An unusable asset fails them all (`rendition_failed`); a write error
/// fails the run.
fn produce_asset(out: &Path, todo: &Todo) -> std::result::Result<Made, AssetError> {
    let mut made = Made {
        todo_keys: todo
            .specs
            .iter()
            .map(|(h, s)| (todo.key(s), h.clone()))
            .collect(),
        source_sha256: todo.asset.sha256.clone(),
        outcomes: Vec::new(),
        reencoded: 0,
    };
    let file = out.join(&todo.asset.path);
    let master = match std::fs::read(&file) {
        Err(e) => Err(format!("cannot read the asset {}: {e}", file.display())),
        Ok(b) => {
            let sha = hex::encode(Sha256::digest(&b));
            if sha == todo.asset.sha256 {
                decode_master(&b)
                    .map(|m| (m, b))
                    .map_err(|e| format!("the asset {} does not decode: {e}", file.display()))
            } else {
                Err(format!(
                    "{} changed on disk since it was recorded (sha256 {sha}); not deriving placements from it",
                    file.display()
                ))
            }
        }
    };
    let (master, master_bytes) = match master {
        Ok(m) => m,
        Err(detail) => {
            for (_, spec) in &todo.specs {
                made.outcomes.push(PlacementOutcome::Failed {
                    path: todo.rel_path(spec),
                    reason: Reason::RenditionFailed,
                    detail: detail.clone(),
                });
            }
            return Ok(made);
        }
    };
    let mut resizer = Resizer::new();
    for (_, spec) in &todo.specs {
        let outcome = produce_one(out, todo, spec, (&master, &master_bytes), &mut resizer)?;
        if let PlacementOutcome::Failed { path, .. } = &outcome {
            // A file an earlier run made no longer meets the placement.
            let stale = out.join(path);
            match std::fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(AssetError::Io {
                        path: stale,
                        source: e,
                    });
                }
            }
        }
        if let PlacementOutcome::Done(e) = &outcome
            && (e.colors.is_some() || e.quality.is_some_and(|q| q < START_QUALITY))
        {
            made.reencoded += 1;
        }
        made.outcomes.push(outcome);
    }
    Ok(made)
}

/// Crop and scale to the frame, encode within the weight limit, write
/// atomically, then read the file back and check it as the platform will.
fn produce_one(
    out: &Path,
    todo: &Todo,
    spec: &PlacementSpec,
    (master, master_bytes): (&image::DynamicImage, &[u8]),
    resizer: &mut Resizer,
) -> std::result::Result<PlacementOutcome, AssetError> {
    let rel = todo.rel_path(spec);
    let failed = |reason: Reason, detail: String| PlacementOutcome::Failed {
        path: rel.clone(),
        reason,
        detail,
    };
    let format = spec.format().unwrap_or(PlacementFormat::Jpeg);
    let frame = RenditionSpec {
        width: spec.width,
        height: spec.height,
        // Pixels only: the weight search does the encoding.
        format: match format {
            PlacementFormat::Png => OutputFormat::Png,
            _ => OutputFormat::Jpeg,
        },
        quality: START_QUALITY,
        fit: Fit::Cover { focal: todo.focal },
    };
    let (pixels, upscaled) = match render_pixels(master, &frame, resizer) {
        Ok(p) => p,
        Err(e) => return Ok(failed(Reason::RenditionFailed, e.to_string())),
    };
    // The weight limit is the delivered file's: the provenance step adds
    // bytes (the XMP packet, a C2PA manifest) after the encoder. Its cost
    // does not depend on the pixels, so one encode measures it and, when
    // the file is then over, a second encode leaves room for it.
    let step = assets::provenance::Step::derived(assets::provenance::Action::Cropped)
        .with_parent(master_bytes);
    let mut budget = spec.clone();
    let (weighed, delivered) = loop {
        let weighed = match encode_placement(&pixels, &budget) {
            Ok(w) => w,
            Err(e @ WeightError::OverWeight { .. }) => {
                return Ok(failed(
                    Reason::OverWeight,
                    format!("{}: {e}; the file was not written", spec.id),
                ));
            }
            Err(e) => return Ok(failed(Reason::RenditionFailed, e.to_string())),
        };
        let delivered = assets::provenance::finalize(&weighed.bytes, &step)?;
        let overhead = (delivered.len() as u64).saturating_sub(weighed.bytes.len() as u64);
        if delivered.len() as u64 <= spec.max_bytes || budget.max_bytes < spec.max_bytes {
            break (weighed, delivered);
        }
        budget.max_bytes = spec.max_bytes.saturating_sub(overhead);
    };
    let path = out.join(&rel);
    assets::write_atomic(&path, &delivered)?;
    // The check reads what is on disk, not what was meant to be written.
    let written = std::fs::read(&path).map_err(|e| AssetError::Io {
        path: path.clone(),
        source: e,
    })?;
    if let Err(why) = check_placement(&written, spec) {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(AssetError::Io { path, source: e }),
        }
        return Ok(failed(
            Reason::PlacementInvalid,
            format!("{}: {why}; the file was removed", spec.id),
        ));
    }
    Ok(PlacementOutcome::Done(PlacementEntry {
        placement: spec.id.as_str().to_string(),
        path: rel.clone(),
        sha256: hex::encode(Sha256::digest(&written)),
        bytes: written.len() as u64,
        width: spec.width,
        height: spec.height,
        mime_type: match format {
            PlacementFormat::Png => "image/png",
            _ => "image/jpeg",
        }
        .to_string(),
        quality: weighed.quality,
        colors: weighed.colors,
        checks_passed: true,
        upscaled,
        safe_area: (!spec.safe_area.is_empty()).then_some(SafeAreaEntry {
            top: spec.safe_area.top,
            bottom: spec.safe_area.bottom,
            left: spec.safe_area.left,
            right: spec.safe_area.right,
        }),
        provenance: None,
    }))
}
