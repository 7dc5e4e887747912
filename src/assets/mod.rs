//! The asset tree: where every file goes (the path policy), atomic writes,
//! the sweep of temporaries a killed run left behind, and publishing the
//! tree to a bucket ([`bucket`]). Bytes are checked by [`crate::imaging`]
//! before they get here.
//!
//! Writes go to `<name>.adloc-tmp-<pid>-<n>` in the target folder, are
//! flushed with `fsync`, renamed into place, and the folder is synced. The
//! temporary name has a fixed marker so a run can sweep what a killed run
//! left behind ([`sweep_temporaries`]); a reader never sees a partial file.

pub mod bucket;
pub mod provenance;

pub use bucket::{OutputTarget, Published, StoreEnv, publish};

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image::ImageFormat;
use sha2::{Digest, Sha256};

use crate::domain::{AssetRecord, JobKey, Target};
use crate::imaging::{ImageError, RenditionSpec, check, check_header, ext_of, mime_of};

/// The marker in temporary file names.
pub const TEMP_MARKER: &str = ".adloc-tmp-";

/// Why an asset could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// The bytes are not the image they claim to be.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The copy could not be typeset onto the art (it does not fit, or the
    /// art cannot be drawn on).
    #[error("{}", .0.detail)]
    Compose(crate::imaging::ComposeFailure),
    /// The IPTC marking or the C2PA signature could not be put into the
    /// file.
    #[error(transparent)]
    Provenance(#[from] provenance::ProvenanceError),
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Relative path of a job's master asset: `<locale>/<variant>/<row-id>.<ext>`
/// (relative to `<out>/<campaign>/`, where the manifest lives). Copy-free
/// art of overlay variants goes to `_art/<variant>/<row-id>.<ext>`.
pub fn master_rel_path(key: &JobKey, format: ImageFormat) -> String {
    format!("{}.{}", stem(key), ext_of(format))
}

/// Where an image an edit replaced is kept, beside the asset:
/// `<locale>/<variant>/<row-id>.r<N>.<ext>` for revision `N` of `current`
/// (the asset's path when that revision was current), so nothing a reviewer
/// has seen is lost. Masters are `<row-id>.<ext>` and renditions carry an
/// `@`, so the names do not collide.
pub fn revision_rel_path(current: &str, revision: u32) -> String {
    match current.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') => format!("{stem}.r{revision}.{ext}"),
        _ => format!("{current}.r{revision}"),
    }
}

/// Why the image an edit revises cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum EditSourceError {
    /// Neither the kept copy nor the asset holds the recorded bytes.
    #[error(
        "the image to revise is gone: neither {kept} nor {current} has sha256 {sha256} (was it changed or deleted by hand?); run `adloc retry --failed` after restoring it, or reject with a changed row to regenerate"
    )]
    Missing {
        /// The kept copy's path.
        kept: String,
        /// The asset's path.
        current: String,
        /// The recorded checksum.
        sha256: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Keep the image an edit revises at its revision path and return its
/// bytes, checked against the recorded `sha256`. Called before the edit is
/// sent: once the copy exists, a kill after the edited image replaced the
/// asset still leaves the old bytes to send again (the asset path then
/// holds the new image, whose checksum does not match).
pub fn keep_revision(
    campaign_out: &Path,
    current: &str,
    revision: u32,
    sha256: &str,
) -> Result<(String, Vec<u8>), EditSourceError> {
    let kept = revision_rel_path(current, revision);
    let read = |rel: &str| -> Result<Option<Vec<u8>>, EditSourceError> {
        let path = campaign_out.join(rel);
        match fs::read(&path) {
            Ok(b) if hex::encode(Sha256::digest(&b)) == sha256 => Ok(Some(b)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(EditSourceError::Io { path, source }),
        }
    };
    if let Some(bytes) = read(&kept)? {
        return Ok((kept, bytes));
    }
    let Some(bytes) = read(current)? else {
        return Err(EditSourceError::Missing {
            kept,
            current: current.to_string(),
            sha256: sha256.to_string(),
        });
    };
    write_atomic(&campaign_out.join(&kept), &bytes).map_err(|e| match e {
        AssetError::Io { path, source } => EditSourceError::Io { path, source },
        other => EditSourceError::Io {
            path: campaign_out.join(&kept),
            source: std::io::Error::other(other.to_string()),
        },
    })?;
    Ok((kept, bytes))
}

/// `<locale>/<variant>/<row-id>` (or `_art/<variant>/<row-id>`).
fn stem(key: &JobKey) -> String {
    match &key.target {
        Target::Art => format!("_art/{}/{}", key.variant, key.row),
        Target::Locale(l) => format!("{}/{}/{}", l.tag(), key.variant, key.row),
    }
}

/// Path of a rendition of a job's master, relative to the campaign output:
/// `<locale>/<variant>/<row-id>@<W>x<H>.<ext>`. Row ids cannot contain
/// `@`, so this never collides with a master.
pub fn rendition_rel_path(key: &JobKey, spec: &RenditionSpec) -> String {
    format!(
        "{}@{}x{}.{}",
        stem(key),
        spec.width,
        spec.height,
        ext_of(spec.format.image_format())
    )
}

/// Path of a placement of a delivered asset, relative to the campaign
/// output: `<locale>/<variant>/<row-id>@<placement-id>.<ext>`. Placement
/// ids start with a letter, so this never collides with a `@WxH` rendition.
pub fn placement_rel_path(
    locale: &str,
    variant: &str,
    row_id: &str,
    id: &crate::domain::placement::PlacementId,
    format: crate::domain::placement::PlacementFormat,
) -> String {
    use crate::domain::placement::PlacementFormat;
    let ext = match format {
        PlacementFormat::Jpeg => "jpg",
        PlacementFormat::Png => "png",
        PlacementFormat::Gif => "gif",
    };
    format!("{locale}/{variant}/{row_id}@{id}.{ext}")
}

impl From<AssetError> for crate::domain::Error {
    fn from(e: AssetError) -> Self {
        match e {
            AssetError::Io { path, source } => crate::domain::Error::io(path, source),
            AssetError::Image(e) => crate::domain::Error::Internal(e.to_string()),
            AssetError::Compose(f) => crate::domain::Error::Internal(f.detail),
            AssetError::Provenance(provenance::ProvenanceError::Sign(e)) => {
                crate::domain::Error::run_terminal(
                    crate::domain::Reason::SigningFailed,
                    e.to_string(),
                )
            }
            AssetError::Provenance(e) => crate::domain::Error::Internal(e.to_string()),
        }
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to `path` atomically: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AssetError> {
    write_renamed(path, bytes, true)
}

/// Write a delivered file: the provenance step ([`provenance::finalize`])
/// on `bytes`, then [`write_atomic`]. Returns the bytes written, which the
/// caller records (checksum, size): they are not the bytes it passed.
pub fn write_delivered(
    path: &Path,
    bytes: &[u8],
    step: &provenance::Step<'_>,
) -> Result<Vec<u8>, AssetError> {
    let delivered = provenance::finalize(bytes, step)?;
    write_atomic(path, &delivered)?;
    Ok(delivered)
}

/// Write a file that is rebuilt from others when missing (a review
/// thumbnail): atomic (temp file, rename: a reader never sees half of it)
/// but not flushed, so a power cut may lose it, never a master. Two fsyncs
/// per thumbnail were a third of the review page's cost.
pub fn write_rebuildable(path: &Path, bytes: &[u8]) -> Result<(), AssetError> {
    write_renamed(path, bytes, false)
}

fn write_renamed(path: &Path, bytes: &[u8], durable: bool) -> Result<(), AssetError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| AssetError::Io { path: p, source }
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        "{name}{TEMP_MARKER}{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        if durable {
            f.sync_all().map_err(io(&tmp))?;
        }
        drop(f);
        fs::rename(&tmp, path).map_err(io(path))?;
        // The rename is durable only once the directory entry is.
        if durable && let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Store a master asset for `key` under `campaign_out`: check it (in full,
/// unless the provider already decoded it: `verified_dims`), write it
/// atomically, and return what to record with the job.
pub fn store_master(
    campaign_out: &Path,
    key: &JobKey,
    bytes: &[u8],
    declared_mime: &str,
    verified_dims: Option<(u32, u32)>,
    step: &provenance::Step<'_>,
) -> Result<AssetRecord, AssetError> {
    let (record, delivered) = describe_delivered(key, bytes, declared_mime, verified_dims, step)?;
    keep_vendor_bytes(campaign_out, &record.path, bytes)?;
    write_atomic(&campaign_out.join(&record.path), &delivered)?;
    Ok(record)
}

/// What [`store_master`] would record for `bytes`, checked and marked the
/// same way, without writing anything: for a result that is no longer its
/// runner's to store (its lease expired and another runner holds the
/// job), whose paid call is still recorded.
pub fn describe_master(
    key: &JobKey,
    bytes: &[u8],
    declared_mime: &str,
    verified_dims: Option<(u32, u32)>,
    step: &provenance::Step<'_>,
) -> Result<AssetRecord, AssetError> {
    describe_delivered(key, bytes, declared_mime, verified_dims, step).map(|(r, _)| r)
}

/// Check the provider's `bytes`, run the provenance step, and describe the
/// file that would be delivered (checksum and size of the final bytes).
fn describe_delivered(
    key: &JobKey,
    bytes: &[u8],
    declared_mime: &str,
    verified_dims: Option<(u32, u32)>,
    step: &provenance::Step<'_>,
) -> Result<(AssetRecord, Vec<u8>), AssetError> {
    let checked = match verified_dims {
        Some(dims) => check_header(bytes, declared_mime, dims)?,
        None => check(bytes, declared_mime)?,
    };
    // The vendor's bytes are the master's parent: their C2PA manifest
    // (when they carry one) becomes its parentOf ingredient.
    let delivered = provenance::finalize(bytes, &step.with_parent(bytes))?;
    Ok((
        AssetRecord {
            path: master_rel_path(key, checked.format),
            sha256: hex::encode(Sha256::digest(&delivered)),
            bytes: delivered.len() as u64,
            width: checked.width,
            height: checked.height,
            mime_type: mime_of(checked.format).to_string(),
        },
        delivered,
    ))
}

/// Where the vendor's raw bytes of a master are kept, relative to the
/// campaign output: `.vendor/<master path>`, outside every path the
/// manifest lists, so they are never delivered or published.
pub const VENDOR_DIR: &str = ".vendor";

/// Keep the bytes the vendor sent for the master at `rel` when they carry
/// their own C2PA manifest (the delivered file cannot: our marking breaks
/// its binding), and drop a copy an earlier master left when they do not.
/// Written before the master, so a master is never without its copy.
fn keep_vendor_bytes(campaign_out: &Path, rel: &str, vendor: &[u8]) -> Result<(), AssetError> {
    let kept = campaign_out.join(VENDOR_DIR).join(rel);
    if crate::imaging::xmp::has_c2pa(vendor) {
        write_atomic(&kept, vendor)
    } else {
        remove_files(&[kept])
    }
}

/// The vendor's raw bytes kept for the master at `rel`, if any.
pub fn vendor_bytes(campaign_out: &Path, rel: &str) -> Option<Vec<u8>> {
    fs::read(campaign_out.join(VENDOR_DIR).join(rel)).ok()
}

/// The formats a master may be written in (its extension follows the
/// bytes the provider returned, so an edit may change it).
const MASTER_FORMATS: [ImageFormat; 3] = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP];

/// `key`'s masters on disk in other formats than its recorded one, `kept`
/// (relative to `campaign_out`): an edit that came back as JPEG for a PNG
/// asset writes `<row-id>.jpg` beside `<row-id>.png`. The caller removes
/// them ([`remove_files`]) once the new master is recorded (write new, mark
/// done, then remove old), so a kill in between leaves the old file for
/// [`sweep_stale_masters`], never a job without its file.
pub fn stale_masters(campaign_out: &Path, key: &JobKey, kept: &str) -> Vec<PathBuf> {
    MASTER_FORMATS
        .iter()
        .map(|f| master_rel_path(key, *f))
        .filter(|rel| rel != kept)
        .map(|rel| campaign_out.join(rel))
        .filter(|p| p.is_file())
        .collect()
}

/// Remove `files` (gone already is fine), then sync their folders: a
/// removal is durable only once the directory entry is.
pub fn remove_files(files: &[PathBuf]) -> Result<(), AssetError> {
    let mut dirs = std::collections::BTreeSet::new();
    for path in files {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(AssetError::Io {
                    path: path.clone(),
                    source,
                });
            }
        }
        if let Some(d) = path.parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    for d in dirs {
        if let Ok(d) = File::open(d) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Remove the stale masters a killed run left: in each folder holding a
/// recorded master (`masters`, paths relative to `campaign_out` of done
/// jobs), every file `<stem>.<png|jpg|webp>` of a recorded master's stem
/// in another format, unless it is recorded itself (`recorded`: every
/// live job's asset and every kept revision). One directory listing per
/// folder. Returns how many files went.
pub fn sweep_stale_masters(
    campaign_out: &Path,
    masters: &[String],
    recorded: &std::collections::HashSet<String>,
) -> std::io::Result<usize> {
    use std::collections::{BTreeMap, HashMap};
    // folder → (stem → recorded master's file name)
    let mut by_dir: BTreeMap<&str, HashMap<&str, &str>> = BTreeMap::new();
    for m in masters {
        let (dir, name) = m.rsplit_once('/').unwrap_or(("", m.as_str()));
        let Some((stem, _)) = name.rsplit_once('.') else {
            continue;
        };
        by_dir.entry(dir).or_default().insert(stem, name);
    }
    let exts: Vec<&str> = MASTER_FORMATS.iter().map(|f| ext_of(*f)).collect();
    let mut removed = 0;
    for (dir, stems) in by_dir {
        let folder = campaign_out.join(dir);
        let entries = match fs::read_dir(&folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut here = 0;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((stem, ext)) = name.rsplit_once('.') else {
                continue;
            };
            let rel = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            let stale = exts.contains(&ext)
                && stems.get(stem).is_some_and(|kept| *kept != name)
                && !recorded.contains(&rel);
            if stale && entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                here += 1;
            }
        }
        if here > 0
            && let Ok(d) = File::open(&folder)
        {
            let _ = d.sync_all();
        }
        removed += here;
    }
    Ok(removed)
}

/// Store the asset of a job whose copy QA fell back to overlay: check the
/// copy-free `art`, typeset `boxes` (box, copy) for `locale` onto it, and
/// write the composite atomically at the job's own master path (the art
/// itself is not a deliverable and is not kept).
pub fn store_composite(
    campaign_out: &Path,
    key: &JobKey,
    art: &[u8],
    declared_mime: &str,
    boxes: &[(crate::imaging::TextBoxSpec, String)],
    nominal_width: Option<u32>,
) -> Result<AssetRecord, AssetError> {
    check(art, declared_mime)?;
    let locale = match &key.target {
        Target::Locale(l) => l.tag().to_string(),
        Target::Art => "und".to_string(),
    };
    let composed = crate::imaging::compose_bytes(art, boxes, &locale, nominal_width)
        .map_err(AssetError::Compose)?;
    let rel = master_rel_path(key, composed.format);
    let delivered = write_delivered(
        &campaign_out.join(&rel),
        &composed.bytes,
        &provenance::Step::composite().with_parent(art),
    )?;
    Ok(AssetRecord {
        path: rel,
        sha256: hex::encode(Sha256::digest(&delivered)),
        bytes: delivered.len() as u64,
        width: composed.width,
        height: composed.height,
        mime_type: mime_of(composed.format).to_string(),
    })
}

/// For a temporary's file name, `Some(pid of its writer)` (`None` when the
/// pid cannot be read); `None` for any other file.
fn temp_writer(name: &str) -> Option<Option<u32>> {
    let (_, rest) = name.split_once(TEMP_MARKER)?;
    Some(rest.split('-').next().and_then(|p| p.parse().ok()))
}

/// Is process `pid` alive on this host? Linux: `/proc/<pid>` exists and is
/// not a zombie. Elsewhere we cannot tell and say no (the sweep runs at
/// start-up, when a killed run's files are what it is for).
fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

/// Delete temporary files a killed run left under `root` (skipping those a
/// live process is still writing). Returns how many.
pub fn sweep_temporaries(root: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    if !root.exists() {
        return Ok(0);
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(entry.path());
            } else if let Some(pid) = temp_writer(&entry.file_name().to_string_lossy()) {
                // A second runner may be writing this file right now: its
                // rename would fail if we took it away.
                if pid.is_some_and(process_alive) {
                    continue;
                }
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_is_kept_beside_its_asset_and_read_back_by_checksum() {
        assert_eq!(
            revision_rel_path("de-DE/hero/r1.png", 1),
            "de-DE/hero/r1.r1.png"
        );
        assert_eq!(
            revision_rel_path("de-DE/hero/a.b.jpg", 2),
            "de-DE/hero/a.b.r2.jpg"
        );
        let dir = tempfile::tempdir().unwrap();
        write_atomic(&dir.path().join("de-DE/hero/x.png"), b"first").unwrap();
        let sha = hex::encode(Sha256::digest(b"first"));
        let (kept, bytes) = keep_revision(dir.path(), "de-DE/hero/x.png", 1, &sha).unwrap();
        assert_eq!(
            (kept.as_str(), bytes.as_slice()),
            ("de-DE/hero/x.r1.png", &b"first"[..])
        );
        // The edited image replaced the asset, but its record did not land
        // (a kill): the kept copy is what is sent again.
        write_atomic(&dir.path().join("de-DE/hero/x.png"), b"second").unwrap();
        let (_, again) = keep_revision(dir.path(), "de-DE/hero/x.png", 1, &sha).unwrap();
        assert_eq!(again, b"first");
        let gone = keep_revision(dir.path(), "de-DE/hero/x.png", 2, &sha);
        assert!(
            matches!(gone, Err(EditSourceError::Missing { .. })),
            "{gone:?}"
        );
    }

    #[test]
    fn a_master_in_another_format_goes_once_the_new_one_is_recorded_and_revisions_stay() {
        let dir = tempfile::tempdir().unwrap();
        let key = JobKey {
            campaign: "c".into(),
            row: crate::domain::RowId::parse("r1").unwrap(),
            target: Target::Locale(crate::domain::Locale::parse("de-DE").unwrap()),
            variant: "hero".into(),
        };
        for f in [
            "de-DE/hero/r1.png",
            "de-DE/hero/r1.r1.png",
            "de-DE/hero/r1.jpg",
        ] {
            write_atomic(&dir.path().join(f), b"x").unwrap();
        }
        let stale = stale_masters(dir.path(), &key, "de-DE/hero/r1.jpg");
        assert_eq!(stale, vec![dir.path().join("de-DE/hero/r1.png")]);
        remove_files(&stale).unwrap();
        remove_files(&stale).unwrap();
        assert!(!dir.path().join("de-DE/hero/r1.png").exists());
        assert!(dir.path().join("de-DE/hero/r1.r1.png").exists());
        assert!(dir.path().join("de-DE/hero/r1.jpg").exists());

        // A kill after the record, before the removal: the sweep finds it.
        write_atomic(&dir.path().join("de-DE/hero/r1.png"), b"old").unwrap();
        // Another row whose only file is its recorded one, and a file that
        // is recorded (a revision named like a master) stay.
        write_atomic(&dir.path().join("de-DE/hero/r2.webp"), b"y").unwrap();
        write_atomic(&dir.path().join("de-DE/hero/r2.png"), b"kept").unwrap();
        let masters = vec![
            "de-DE/hero/r1.jpg".to_string(),
            "de-DE/hero/r2.webp".to_string(),
        ];
        let recorded: std::collections::HashSet<String> = masters
            .iter()
            .cloned()
            .chain([
                "de-DE/hero/r2.png".to_string(),
                "de-DE/hero/r1.r1.png".to_string(),
            ])
            .collect();
        assert_eq!(
            sweep_stale_masters(dir.path(), &masters, &recorded).unwrap(),
            1
        );
        assert!(!dir.path().join("de-DE/hero/r1.png").exists());
        for f in [
            "de-DE/hero/r1.jpg",
            "de-DE/hero/r1.r1.png",
            "de-DE/hero/r2.webp",
            "de-DE/hero/r2.png",
        ] {
            assert!(dir.path().join(f).exists(), "{f}");
        }
        assert_eq!(
            sweep_stale_masters(dir.path(), &masters, &recorded).unwrap(),
            0
        );
    }

    #[test]
    fn atomic_write_leaves_no_temporaries_and_sweep_removes_strays() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/c.png");
        write_atomic(&target, b"hello").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"hello");
        assert_eq!(sweep_temporaries(dir.path()).unwrap(), 0);
        let dead = dead_pid();
        fs::write(
            dir.path().join(format!("a/b/c.png{TEMP_MARKER}{dead}-2")),
            b"x",
        )
        .unwrap();
        assert_eq!(sweep_temporaries(dir.path()).unwrap(), 1);
        assert!(target.exists());
    }

    /// The pid of a process that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn sweep_keeps_temporaries_of_live_writers_and_removes_dead_ones() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir
            .path()
            .join(format!("live.png{TEMP_MARKER}{}-7", std::process::id()));
        let dead = dir
            .path()
            .join(format!("dead.png{TEMP_MARKER}{}-7", dead_pid()));
        let garbled = dir.path().join(format!("odd.png{TEMP_MARKER}nopid"));
        for p in [&live, &dead, &garbled] {
            fs::write(p, b"x").unwrap();
        }
        assert_eq!(sweep_temporaries(dir.path()).unwrap(), 2);
        assert!(live.exists(), "a live writer's temporary must survive");
        assert!(!dead.exists(), "a dead writer's temporary must go");
        assert!(!garbled.exists(), "an unparsable pid counts as dead");
    }
}
