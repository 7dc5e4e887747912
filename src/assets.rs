//! Assets: decode and validate the bytes a provider returned, then write
//! them atomically into the asset tree.
//!
//! Writes go to `<name>.adloc-tmp-<pid>-<n>` in the target folder, are
//! flushed with `fsync`, renamed into place, and the folder is synced. The
//! temporary name has a fixed marker so a run can sweep what a killed run
//! left behind ([`sweep_temporaries`]); a reader never sees a partial file.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image::ImageFormat;
use sha2::{Digest, Sha256};

use crate::expand::JobKey;
use crate::queue::AssetRecord;

/// The marker in temporary file names.
pub const TEMP_MARKER: &str = ".adloc-tmp-";

/// Why bytes were rejected.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// The bytes are not an image we can decode.
    #[error("image does not decode: {0}")]
    Undecodable(String),
    /// The bytes are a different format than declared.
    #[error("declared {declared} but the bytes are {actual}")]
    MimeMismatch {
        /// What the provider said.
        declared: String,
        /// What the bytes are.
        actual: String,
    },
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

/// A decoded and checked image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Real width from the bytes.
    pub width: u32,
    /// Real height from the bytes.
    pub height: u32,
    /// The real format.
    pub format: ImageFormat,
}

/// MIME type of a format we write.
pub fn mime_of(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "image/png",
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::WebP => "image/webp",
        _ => "application/octet-stream",
    }
}

/// File extension for a format.
pub fn ext_of(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "png",
        ImageFormat::Jpeg => "jpg",
        ImageFormat::WebP => "webp",
        _ => "bin",
    }
}

/// Decode `bytes` fully (not just the header: a truncated body must fail)
/// and check the format against the declared MIME type.
pub fn check(bytes: &[u8], declared_mime: &str) -> Result<Checked, AssetError> {
    let format = image::guess_format(bytes).map_err(|e| AssetError::Undecodable(e.to_string()))?;
    let actual = mime_of(format);
    if !declared_mime.eq_ignore_ascii_case(actual) {
        return Err(AssetError::MimeMismatch {
            declared: declared_mime.to_string(),
            actual: actual.to_string(),
        });
    }
    let img = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| AssetError::Undecodable(e.to_string()))?;
    Ok(Checked {
        width: img.width(),
        height: img.height(),
        format,
    })
}

/// Relative path of a job's master asset: `<locale>/<variant>/<row-id>.<ext>`
/// (relative to `<out>/<campaign>/`, where the manifest lives). Copy-free
/// art of overlay variants goes to `_art/<variant>/<row-id>.<ext>`.
pub fn master_rel_path(key: &JobKey, format: ImageFormat) -> String {
    if key.locale == crate::overlay::ART_LOCALE {
        return format!("_art/{}/{}.{}", key.variant, key.row_id, ext_of(format));
    }
    format!(
        "{}/{}/{}.{}",
        key.locale,
        key.variant,
        key.row_id,
        ext_of(format)
    )
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to `path` atomically: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AssetError> {
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
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io(path))?;
        // The rename is durable only once the directory entry is.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Check only what the header tells (format and MIME type), for bytes a
/// provider has already decoded in full; `dims` are the dimensions it found.
pub fn check_header(
    bytes: &[u8],
    declared_mime: &str,
    dims: (u32, u32),
) -> Result<Checked, AssetError> {
    let format = image::guess_format(bytes).map_err(|e| AssetError::Undecodable(e.to_string()))?;
    let actual = mime_of(format);
    if !declared_mime.eq_ignore_ascii_case(actual) {
        return Err(AssetError::MimeMismatch {
            declared: declared_mime.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(Checked {
        width: dims.0,
        height: dims.1,
        format,
    })
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
) -> Result<AssetRecord, AssetError> {
    let checked = match verified_dims {
        Some(dims) => check_header(bytes, declared_mime, dims)?,
        None => check(bytes, declared_mime)?,
    };
    let rel = master_rel_path(key, checked.format);
    write_atomic(&campaign_out.join(&rel), bytes)?;
    Ok(AssetRecord {
        path: rel,
        sha256: hex::encode(Sha256::digest(bytes)),
        bytes: bytes.len() as u64,
        width: checked.width,
        height: checked.height,
        mime_type: mime_of(checked.format).to_string(),
    })
}

/// Delete temporary files a killed run left under `root`. Returns how many.
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
            } else if entry.file_name().to_string_lossy().contains(TEMP_MARKER) {
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

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::new(w, h);
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn check_reads_real_dimensions_and_rejects_mime_mismatch_and_truncation() {
        let bytes = png(40, 30);
        let c = check(&bytes, "image/png").unwrap();
        assert_eq!((c.width, c.height), (40, 30));
        assert!(matches!(
            check(&bytes, "image/jpeg"),
            Err(AssetError::MimeMismatch { .. })
        ));
        assert!(matches!(
            check(&bytes[..bytes.len() / 2], "image/png"),
            Err(AssetError::Undecodable(_))
        ));
    }

    #[test]
    fn atomic_write_leaves_no_temporaries_and_sweep_removes_strays() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/c.png");
        write_atomic(&target, b"hello").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"hello");
        assert_eq!(sweep_temporaries(dir.path()).unwrap(), 0);
        fs::write(dir.path().join(format!("a/b/c.png{TEMP_MARKER}1-2")), b"x").unwrap();
        assert_eq!(sweep_temporaries(dir.path()).unwrap(), 1);
        assert!(target.exists());
    }
}
