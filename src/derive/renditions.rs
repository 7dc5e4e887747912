//! Renditions: exact-size copies of a master image for real ad slots
//! (`1200x628` JPEG, `1080x1080` PNG, `300x250` WebP, …), declared per
//! variant under `[[variants.renditions]]`.
//!
//! Renditions are derived from the master alone, never from the provider:
//! a rendition's identity is its job plus a hash of its settings
//! ([`RenditionSpec::settings_hash`]), kept by the store. At the end of
//! every run [`reconcile`] brings each done job's renditions in line with the
//! current settings: missing or changed ones are produced (pixels in
//! [`crate::imaging`], written atomically beside the master), and those whose
//! settings left the campaign are deleted, rows and files. Changing rendition
//! settings therefore never calls the provider. A rendition that cannot be
//! made (unreadable, changed or undecodable master) is recorded as a failure
//! with reason `rendition_failed`: the manifest lists it and the run exits 3.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use fast_image_resize::Resizer;
use sha2::{Digest, Sha256};

use crate::assets::{self, AssetError};
use crate::campaign::Campaign;
use crate::domain::{AssetRecord, CompositeState, Error, JobKey, JobState, Result};
use crate::imaging::{RenditionSpec, decode_master, mime_of, render};
use crate::store::{JobId, RenditionEntry, RenditionFailure, Store};

/// What [`reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Renditions written (missing or changed).
    pub produced: usize,
    /// Renditions already up to date.
    pub kept: usize,
    /// Renditions no longer declared whose files were deleted.
    pub removed: usize,
    /// Renditions that could not be made (recorded as failures).
    pub failed: usize,
}

struct Todo {
    key: JobKey,
    job_id: JobId,
    master_path: String,
    master_sha256: String,
    specs: Vec<(String, RenditionSpec)>,
}

/// Bring every done job's renditions in line with the campaign's current
/// settings, without calling any provider: produce what is missing or
/// changed (or whose file went missing), delete what is no longer declared.
/// Renditions of retired jobs are left alone, like their masters.
pub async fn reconcile(
    store: &Store,
    campaign: &Campaign,
    campaign_out: &Path,
) -> Result<ReconcileReport> {
    let mut report = ReconcileReport::default();
    let specs_by_variant: HashMap<&str, Vec<(String, &RenditionSpec)>> = campaign
        .variants
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.renditions
                    .iter()
                    .map(|s| (s.settings_hash(), s))
                    .collect(),
            )
        })
        .collect();
    let jobs = store.jobs(&campaign.name).await?;
    // A model-text variant with brand layers delivers its composite, not
    // the model's image: renditions are made of what ships.
    let layered: HashSet<&str> = campaign
        .variants
        .iter()
        .filter(|v| crate::expand::layered_model_text(v))
        .map(|v| v.name.as_str())
        .collect();
    let composed: HashMap<JobId, AssetRecord> = if layered.is_empty() {
        HashMap::new()
    } else {
        store
            .composites(&campaign.name)
            .await?
            .into_iter()
            .filter(|c| c.state == CompositeState::Done && layered.contains(c.variant.as_str()))
            .filter_map(|c| Some((c.art_job_id, c.asset?)))
            .collect()
    };
    let stored = store.stored_renditions(&campaign.name).await?;
    let by_key: HashMap<(JobId, &str), _> = stored
        .iter()
        .map(|s| ((s.job_id, s.settings_hash.as_str()), s))
        .collect();

    // Every path a live job wants now: files there must never be deleted.
    let mut wanted_paths: HashSet<String> = HashSet::new();
    let mut wanted: HashSet<(JobId, String)> = HashSet::new();
    let mut todos: Vec<Todo> = Vec::new();
    for job in jobs.iter().filter(|j| is_live(j.state)) {
        let Some(specs) = specs_by_variant.get(job.key.variant.as_str()) else {
            continue;
        };
        for (hash, spec) in specs {
            wanted_paths.insert(assets::rendition_rel_path(&job.key, spec));
            wanted.insert((job.id, hash.clone()));
        }
        let (JobState::Done, Some(asset)) = (job.state, &job.asset) else {
            continue;
        };
        let asset =
            if layered.contains(job.key.variant.as_str()) && job.key.target.locale().is_some() {
                // Not layered (yet, or its layers failed): nothing ships.
                let Some(c) = composed.get(&job.id) else {
                    continue;
                };
                c
            } else {
                asset
            };
        let mut todo = Todo {
            key: job.key.clone(),
            job_id: job.id,
            master_path: asset.path.clone(),
            master_sha256: asset.sha256.clone(),
            specs: Vec::new(),
        };
        for (hash, spec) in specs {
            let up_to_date = by_key.get(&(job.id, hash.as_str())).is_some_and(|s| {
                s.master_sha256 == asset.sha256
                    && std::fs::metadata(campaign_out.join(&s.path))
                        .is_ok_and(|m| m.len() == s.bytes)
            });
            if up_to_date {
                report.kept += 1;
            } else {
                todo.specs.push((hash.clone(), (*spec).clone()));
            }
        }
        if !todo.specs.is_empty() {
            todos.push(todo);
        }
    }

    produce_all(store, campaign_out, todos, &mut report).await?;

    // Remove what is no longer declared (retired jobs keep theirs).
    for s in &stored {
        if s.job_state == JobState::Retired || wanted.contains(&(s.job_id, s.settings_hash.clone()))
        {
            continue;
        }
        store.delete_rendition(s.job_id, &s.settings_hash).await?;
        // A file another current setting writes to (same size and format,
        // new quality or focal point) was just replaced, not removed.
        if !wanted_paths.contains(&s.path) {
            let p = campaign_out.join(&s.path);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(p, e)),
            }
            report.removed += 1;
        }
    }
    if report.produced + report.removed + report.failed > 0 {
        tracing::debug!(
            produced = report.produced,
            kept = report.kept,
            removed = report.removed,
            failed = report.failed,
            "renditions reconciled"
        );
    }
    Ok(report)
}

fn is_live(state: JobState) -> bool {
    !matches!(state, JobState::Retired | JobState::Superseded)
}

/// One rendition written to disk, to be recorded.
struct Written {
    settings_hash: String,
    master_sha256: String,
    entry: RenditionEntry,
}

/// What one job's blocking task did: the renditions it wrote, and the ones
/// it could not make (an unreadable or changed master fails them all).
struct JobOutput {
    job_id: JobId,
    written: Vec<Written>,
    failed: Vec<RenditionFailure>,
}

/// Produce the renditions of `todos`, one blocking task per job (its master
/// is decoded once), as many at a time as there are cores, recording each
/// rendition once its file is in place.
async fn produce_all(
    store: &Store,
    campaign_out: &Path,
    todos: Vec<Todo>,
    report: &mut ReconcileReport,
) -> Result<()> {
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let out = Arc::new(campaign_out.to_path_buf());
    let mut pending = todos.into_iter();
    let mut set: tokio::task::JoinSet<std::result::Result<JobOutput, AssetError>> =
        tokio::task::JoinSet::new();
    loop {
        while set.len() < parallel {
            let Some(todo) = pending.next() else { break };
            let out = out.clone();
            set.spawn_blocking(move || produce_job(&out, todo));
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let JobOutput {
            job_id,
            written,
            failed,
        } = match joined {
            Ok(Ok(v)) => v,
            Ok(Err(AssetError::Io { path, source })) => return Err(Error::io(path, source)),
            Ok(Err(e)) => return Err(Error::Internal(e.to_string())),
            Err(e) => return Err(Error::Internal(format!("rendition task failed: {e}"))),
        };
        for f in &failed {
            tracing::warn!(job = job_id, rendition = %f.path, error = %f.detail, "rendition not produced");
            store.record_rendition_failure(f).await?;
            report.failed += 1;
        }
        for w in written {
            store
                .record_rendition(job_id, &w.settings_hash, &w.master_sha256, &w.entry)
                .await?;
            report.produced += 1;
        }
    }
    Ok(())
}

/// Decode one master and write its renditions. A master that cannot be read
/// or decoded, or that changed on disk since it was recorded, fails every
/// rendition of the job (recorded, not fatal); write errors fail the run.
fn produce_job(out: &Path, todo: Todo) -> std::result::Result<JobOutput, AssetError> {
    let mut output = JobOutput {
        job_id: todo.job_id,
        written: Vec::new(),
        failed: Vec::new(),
    };
    let fail = |spec: &RenditionSpec, hash: &str, detail: String| RenditionFailure {
        job_id: todo.job_id,
        settings_hash: hash.to_string(),
        path: assets::rendition_rel_path(&todo.key, spec),
        detail,
    };
    let master_file = out.join(&todo.master_path);
    let master = match std::fs::read(&master_file) {
        Err(e) => Err(format!(
            "cannot read the master {}: {e}",
            master_file.display()
        )),
        Ok(b) => {
            let sha = hex::encode(Sha256::digest(&b));
            if sha == todo.master_sha256 {
                decode_master(&b).map(|m| (m, b)).map_err(|e| {
                    format!("the master {} does not decode: {e}", master_file.display())
                })
            } else {
                Err(format!(
                    "{} changed on disk since it was recorded (sha256 {sha}); not deriving renditions from it",
                    master_file.display()
                ))
            }
        }
    };
    let (master, master_bytes) = match master {
        Ok(m) => m,
        Err(msg) => {
            for (hash, spec) in &todo.specs {
                output.failed.push(fail(spec, hash, msg.clone()));
            }
            return Ok(output);
        }
    };
    let mut resizer = Resizer::new();
    for (settings_hash, spec) in &todo.specs {
        let rendered = match render(&master, spec, &mut resizer) {
            Ok(r) => r,
            Err(e) => {
                output.failed.push(fail(spec, settings_hash, e.to_string()));
                continue;
            }
        };
        let rel = assets::rendition_rel_path(&todo.key, spec);
        // `cover` crops to the frame; `contain`/`stretch` only scale.
        let action = match spec.fit {
            crate::imaging::Fit::Cover { .. } => assets::provenance::Action::Cropped,
            _ => assets::provenance::Action::Resized,
        };
        let delivered = assets::write_delivered(
            &out.join(&rel),
            &rendered.bytes,
            &assets::provenance::Step::derived(action).with_parent(&master_bytes),
        )?;
        output.written.push(Written {
            settings_hash: settings_hash.clone(),
            master_sha256: todo.master_sha256.clone(),
            entry: RenditionEntry {
                path: rel,
                sha256: hex::encode(Sha256::digest(&delivered)),
                bytes: delivered.len() as u64,
                width: spec.width,
                height: spec.height,
                mime_type: mime_of(spec.format.image_format()).to_string(),
                fit: spec.fit.as_str().to_string(),
                upscaled: rendered.upscaled,
                provenance: None,
            },
        });
    }
    Ok(output)
}

#[cfg(test)]
#[path = "renditions_tests.rs"]
mod tests;
