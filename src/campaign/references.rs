//! Reference images: product shots, logos, characters and style references
//! sent with the prompt as `inlineData` parts.
//!
//! They are declared in `campaign.toml`:
//!
//! ```toml
//! [references]
//! files = ["assets/logo.png"]      # sent with every job
//! columns = ["product_shot"]       # CSV columns holding a path per row (empty = none)
//! max_side = 2048                  # longer side above this: downscaled and re-encoded
//! max_file_bytes = 20_000_000      # larger files are refused, not decoded
//! ```
//!
//! Paths are relative to the campaign folder. Reference columns follow the
//! same locale fallback as copy columns (`product_shot.de-DE` overrides
//! `product_shot` for German jobs). Every file is checked while the campaign
//! loads (exists, within `max_file_bytes`, PNG/JPEG/WebP by its bytes,
//! decodes completely) and every problem names the campaign.toml value or
//! the CSV cell (line and column) that points at the file. Each file is read
//! once and its bytes shared by every job that uses it; the count per job is
//! checked against [`ModelFamily::max_reference_images`] before anything is
//! sent. The bytes are part of the request hash, so replacing a file
//! regenerates exactly the jobs that use it.
//!
//! Downscaling is deterministic (Lanczos3 via `fast_image_resize`, fixed
//! encoder settings: JPEG sources stay JPEG at quality 90, everything else
//! becomes PNG), so an unchanged file always yields the same bytes and hash.
//!
//! [`ModelFamily::max_reference_images`]: crate::domain::ModelFamily::max_reference_images

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{ImageFormat, ImageReader};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::rows::{ColumnKind, Rows};
use super::span::line_col;
use crate::domain::{
    GPT_MAX_DATA_URL_CHARS, InputErrors, InputProblem, Locale, ModelId, ReferenceImage,
    data_url_len,
};
use crate::imaging::{downscale, mime_of};

/// Default for `max_side`: Gemini's own 2K tier; larger gains nothing.
pub const DEFAULT_MAX_SIDE: u32 = 2048;
/// Default for `max_file_bytes` (the inline-request budget is 20 MB in batches).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 20_000_000;
/// No decoded reference may be larger than this many pixels (decompression bombs).
pub const MAX_DECODED_PIXELS: u64 = 100_000_000;

/// The raw `[references]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReferences {
    #[serde(default)]
    files: Vec<Spanned<String>>,
    #[serde(default)]
    columns: Vec<Spanned<String>>,
    #[serde(default)]
    max_side: Option<Spanned<i64>>,
    #[serde(default)]
    max_file_bytes: Option<Spanned<i64>>,
}

/// One reference file after checking (and downscaling, if it was needed).
#[derive(Debug, Clone)]
pub struct LoadedReference {
    /// The file as resolved against the campaign folder.
    pub path: PathBuf,
    /// What is sent: MIME type and (shared) bytes.
    pub image: ReferenceImage,
    /// Pixel size of the file.
    pub original_size: (u32, u32),
    /// Pixel size of what is sent.
    pub sent_size: (u32, u32),
    /// Hex SHA-256 of the file as read (before any downscale): what proves
    /// the copy of the folder kept for workers holds this very file.
    pub file_sha256: String,
}

impl LoadedReference {
    /// True when the file was downscaled and re-encoded.
    pub fn downscaled(&self) -> bool {
        self.original_size != self.sent_size
    }
}

/// The campaign's reference images, resolved per row and locale.
#[derive(Debug, Clone, Default)]
pub struct References {
    /// Sent with every job, in the order listed.
    pub campaign: Vec<Arc<LoadedReference>>,
    /// Per (row id, locale tag): the row's own references, after the campaign's.
    per_row: HashMap<(String, String), Vec<Arc<LoadedReference>>>,
    /// Per row id: the row's unlocalized references (base columns only), for
    /// overlay art, which every locale shares.
    per_row_art: HashMap<String, Vec<Arc<LoadedReference>>>,
    /// Distinct files loaded.
    pub files: usize,
}

impl References {
    /// Every distinct file loaded, as resolved against the campaign folder.
    pub fn paths(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = self
            .campaign
            .iter()
            .chain(self.per_row.values().flatten())
            .chain(self.per_row_art.values().flatten())
            .map(|r| r.path.as_path())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Every reference loaded (a file may appear more than once).
    pub(crate) fn loaded(&self) -> impl Iterator<Item = &LoadedReference> {
        self.campaign
            .iter()
            .chain(self.per_row.values().flatten())
            .chain(self.per_row_art.values().flatten())
            .map(|r| r.as_ref())
    }

    /// The references for one job, campaign-level first, each file once.
    pub fn for_job(&self, row_id: &str, locale: &str) -> Vec<ReferenceImage> {
        let row = self
            .per_row
            .get(&(row_id.to_string(), locale.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        Self::dedup(self.campaign.iter().chain(row))
    }

    /// The references for a row's overlay art: campaign-level first, then
    /// the row's base reference columns (per-locale overrides do not apply:
    /// the art is shared by every locale), each file once.
    pub fn for_art(&self, row_id: &str) -> Vec<ReferenceImage> {
        let row = self
            .per_row_art
            .get(row_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        Self::dedup(self.campaign.iter().chain(row))
    }

    fn dedup<'a>(refs: impl Iterator<Item = &'a Arc<LoadedReference>>) -> Vec<ReferenceImage> {
        let mut seen: Vec<&Path> = Vec::new();
        let mut out = Vec::new();
        for r in refs {
            if !seen.contains(&r.path.as_path()) {
                seen.push(&r.path);
                out.push(r.image.clone());
            }
        }
        out
    }

    /// True when no job has a reference.
    pub fn is_empty(&self) -> bool {
        self.campaign.is_empty() && self.per_row.is_empty() && self.per_row_art.is_empty()
    }
}

/// Limits that apply while loading.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest side sent; larger images are downscaled.
    pub max_side: u32,
    /// Larger files are refused.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_side: DEFAULT_MAX_SIDE,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Everything [`load`] needs about the campaign.
pub(crate) struct LoadInput<'a> {
    /// Campaign folder.
    pub dir: &'a Path,
    /// campaign.toml path and text (for line/column of its values).
    pub config_path: &'a Path,
    /// The text of campaign.toml.
    pub config_text: &'a str,
    /// The `[references]` table, if any.
    pub raw: Option<Spanned<RawReferences>>,
    /// The rows, when they loaded.
    pub rows: Option<&'a Rows>,
    /// The campaign's locales.
    pub locales: &'a [Locale],
    /// The model, when it parsed.
    pub model: Option<&'a ModelId>,
    /// True when some variant is an overlay variant, whose locale-free art
    /// gets the base reference columns ([`References::for_art`]).
    pub art: bool,
    /// A GPT Image model some variant may be sent to: its references travel
    /// as `data:` URLs in batch lines, so each must fit
    /// [`GPT_MAX_DATA_URL_CHARS`] once encoded.
    pub gpt: Option<&'a ModelId>,
}

/// Where a reference was named, for error messages.
#[derive(Clone)]
struct Site {
    file: PathBuf,
    line: u64,
    column: u64,
    what: String,
}

impl Site {
    fn problem(&self, msg: String) -> InputProblem {
        InputProblem::at(&self.file, self.line, Some(self.column), msg)
    }
}

/// Load and check every reference of the campaign. Problems go to `errors`;
/// the result is only meaningful when none were added.
pub(crate) fn load(input: LoadInput<'_>, errors: &mut InputErrors) -> References {
    let Some(raw) = input.raw else {
        return References::default();
    };
    let at = |span: std::ops::Range<usize>| {
        let (line, column) = line_col(input.config_text, span.start);
        (line, column)
    };
    let table_span = raw.span();
    let raw = raw.into_inner();
    let mut limits = Limits::default();
    if let Some(m) = &raw.max_side {
        let n = *m.get_ref();
        if (16..=16_384).contains(&n) {
            limits.max_side = n as u32;
        } else {
            let (l, c) = at(m.span());
            errors.push(InputProblem::at(
                input.config_path,
                l,
                Some(c),
                format!("[references] max_side must be between 16 and 16384 pixels, got {n}"),
            ));
        }
    }
    if let Some(m) = &raw.max_file_bytes {
        let n = *m.get_ref();
        if n >= 1 {
            limits.max_file_bytes = n as u64;
        } else {
            let (l, c) = at(m.span());
            errors.push(InputProblem::at(
                input.config_path,
                l,
                Some(c),
                format!("[references] max_file_bytes must be positive, got {n}"),
            ));
        }
    }

    let mut cache: HashMap<PathBuf, Option<Arc<LoadedReference>>> = HashMap::new();
    let mut get = |value: &str, site: &Site, errors: &mut InputErrors| {
        let path = input.dir.join(value.trim());
        cache
            .entry(path.clone())
            .or_insert_with(|| match load_one(&path, limits) {
                // A batch line carries each reference as a data URL, and the
                // JSON edit body caps one at 20,971,520 characters
                // (`ImageRefParam.image_url` maxLength): refused here rather
                // than as a 400 on every job that uses it.
                Ok(r) if input.gpt.is_some_and(|_| {
                    data_url_len(&r.image.mime_type, r.image.bytes.len() as u64)
                        > GPT_MAX_DATA_URL_CHARS
                }) =>
                {
                    let len = data_url_len(&r.image.mime_type, r.image.bytes.len() as u64);
                    errors.push(site.problem(format!(
                        "reference image `{}` ({}) is {} bytes sent, {len} characters as a data URL; {} takes at most {GPT_MAX_DATA_URL_CHARS} characters per image URL (about 15.7 MB of image): shrink it or lower [references] max_side",
                        value.trim(),
                        site.what,
                        r.image.bytes.len(),
                        input.gpt.map(ModelId::as_str).unwrap_or("GPT Image"),
                    )));
                    None
                }
                Ok(r) => Some(Arc::new(r)),
                Err(msg) => {
                    errors.push(site.problem(format!(
                        "reference image `{}` ({}): {msg}",
                        value.trim(),
                        site.what
                    )));
                    None
                }
            })
            .clone()
    };

    let mut out = References::default();
    for f in &raw.files {
        let (line, column) = at(f.span());
        let site = Site {
            file: input.config_path.to_path_buf(),
            line,
            column,
            what: "[references] files".into(),
        };
        if f.get_ref().trim().is_empty() {
            errors.push(site.problem("[references] files has an empty path".into()));
            continue;
        }
        if let Some(r) = get(f.get_ref(), &site, errors) {
            out.campaign.push(r);
        }
    }
    let max = input.model.map(|m| (m, m.family().max_reference_images()));
    let campaign_distinct = {
        let mut v: Vec<&Path> = out.campaign.iter().map(|r| r.path.as_path()).collect();
        v.sort();
        v.dedup();
        v.len()
    };
    let mut campaign_over = false;
    if let Some((model, max)) = max
        && campaign_distinct > max
    {
        let (l, c) = raw
            .files
            .first()
            .map_or(at(table_span.clone()), |f| at(f.span()));
        errors.push(InputProblem::at(
            input.config_path,
            l,
            Some(c),
            format!(
                "[references] files lists {campaign_distinct} images but {model} accepts at most {max} reference images per request"
            ),
        ));
        campaign_over = true;
    }

    let Some(rows) = input.rows else {
        out.files = cache.values().flatten().count();
        return out;
    };
    // Check every named column exists before reading cells.
    let mut columns: Vec<&str> = Vec::new();
    for c in &raw.columns {
        let name = c.get_ref().as_str();
        let exists = rows.kinds.iter().any(|k| match k {
            ColumnKind::Base(b) => b == name,
            ColumnKind::Override { base, .. } => base == name,
            ColumnKind::Id => false,
        });
        if exists {
            columns.push(name);
        } else {
            let (l, c) = at(c.span());
            errors.push(InputProblem::at(
                input.config_path,
                l,
                Some(c),
                format!(
                    "[references] columns names `{name}`, but {} has no such column",
                    rows.path.display()
                ),
            ));
        }
    }
    if columns.is_empty() {
        out.files = cache.values().flatten().count();
        return out;
    }
    let mut reported_rows: Vec<&str> = Vec::new();
    for row in &rows.rows {
        // Overlay art: the base column of each reference column (no locale:
        // the art is shared by every locale). Only when an overlay variant
        // exists, so nobody is told about files no job uses.
        let mut art: Vec<Arc<LoadedReference>> = Vec::new();
        let mut art_site: Option<Site> = None;
        for name in columns.iter().filter(|_| input.art) {
            let Some(idx) = rows
                .kinds
                .iter()
                .position(|k| matches!(k, ColumnKind::Base(b) if b == name))
            else {
                continue;
            };
            let Some(cell) = row.cells.get(idx).filter(|c| !c.trim().is_empty()) else {
                continue;
            };
            let site = Site {
                file: rows.path.clone(),
                line: row.line,
                column: idx as u64 + 1,
                what: format!("column `{name}`, row `{}`", row.id),
            };
            art_site.get_or_insert_with(|| site.clone());
            if let Some(r) = get(cell, &site, errors) {
                art.push(r);
            }
        }
        let n = distinct_files(&out.campaign, &art);
        if let (Some((model, max)), Some(site)) = (max, &art_site)
            && !campaign_over
            && n > max
        {
            reported_rows.push(row.id.as_str());
            errors.push(site.problem(format!(
                "row `{}` (art for overlay variants) uses {n} reference images ({} from [references] files, {} from its columns) but {model} accepts at most {max} per request",
                row.id,
                out.campaign.len(),
                n - campaign_distinct.min(n),
            )));
        }
        if !art.is_empty() {
            out.per_row_art.insert(row.id.to_string(), art);
        }
        for locale in input.locales {
            let resolved = rows.resolve(row, locale);
            let mut list: Vec<Arc<LoadedReference>> = Vec::new();
            let mut first_site: Option<Site> = None;
            for name in &columns {
                let Some(cell) = resolved.get(*name) else {
                    continue;
                };
                let idx = rows
                    .kinds
                    .iter()
                    .position(|k| match (k, &cell.from_locale) {
                        (ColumnKind::Base(b), None) => b == name,
                        (ColumnKind::Override { base, locale }, Some(from)) => {
                            base == name && locale == from
                        }
                        _ => false,
                    });
                let site = Site {
                    file: rows.path.clone(),
                    line: row.line,
                    column: idx.map_or(1, |i| i as u64 + 1),
                    what: format!("column `{name}`, row `{}`", row.id),
                };
                first_site.get_or_insert_with(|| site.clone());
                if let Some(r) = get(&cell.value, &site, errors) {
                    list.push(r);
                }
            }
            if list.is_empty() {
                continue;
            }
            let mut distinct: Vec<&Path> = out
                .campaign
                .iter()
                .chain(&list)
                .map(|r| r.path.as_path())
                .collect();
            distinct.sort();
            distinct.dedup();
            if let (Some((model, max)), Some(site)) = (max, &first_site)
                && !campaign_over
                && distinct.len() > max
                && !reported_rows.contains(&row.id.as_str())
            {
                reported_rows.push(row.id.as_str());
                errors.push(site.problem(format!(
                    "row `{}` ({locale}) uses {} reference images ({} from [references] files, {} from its columns) but {model} accepts at most {max} per request",
                    row.id,
                    distinct.len(),
                    out.campaign.len(),
                    distinct.len() - campaign_distinct.min(distinct.len()),
                )));
            }
            out.per_row
                .insert((row.id.to_string(), locale.tag().to_string()), list);
        }
    }
    out.files = cache.values().flatten().count();
    out
}

/// Read, check and (if needed) downscale one file. The error text says what
/// is wrong with the file; the caller adds where it was named.
pub fn load_one(path: &Path, limits: Limits) -> Result<LoadedReference, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if meta.len() > limits.max_file_bytes {
        return Err(format!(
            "{} is {} bytes, over the limit of {} bytes ([references] max_file_bytes); shrink it or raise the limit",
            path.display(),
            meta.len(),
            limits.max_file_bytes
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let format = image::guess_format(&bytes).map_err(|_| {
        format!(
            "{} is not a PNG, JPEG or WebP image (its bytes match no image format)",
            path.display()
        )
    })?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP
    ) {
        return Err(format!(
            "{} is {format:?}; reference images must be PNG, JPEG or WebP",
            path.display()
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(&bytes), format);
    let mut lim = image::Limits::default();
    lim.max_image_width = Some(65_535);
    lim.max_image_height = Some(65_535);
    reader.limits(lim);
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| format!("{} does not decode: {e}", path.display()))?;
    if u64::from(w) * u64::from(h) > MAX_DECODED_PIXELS {
        return Err(format!(
            "{} is {w}x{h} pixels, more than the {MAX_DECODED_PIXELS} pixels we decode",
            path.display()
        ));
    }
    let img = image::load_from_memory_with_format(&bytes, format)
        .map_err(|e| format!("{} does not decode: {e}", path.display()))?;
    let mime = mime_of(format).to_string();
    let file_sha256 = hex::encode(Sha256::digest(&bytes));
    if w.max(h) <= limits.max_side {
        return Ok(LoadedReference {
            path: path.to_path_buf(),
            image: ReferenceImage {
                mime_type: mime,
                bytes: Arc::new(bytes),
            },
            original_size: (w, h),
            sent_size: (w, h),
            file_sha256,
        });
    }
    let small = downscale(&img, format, limits.max_side)
        .map_err(|e| format!("{} could not be downscaled: {e}", path.display()))?;
    Ok(LoadedReference {
        path: path.to_path_buf(),
        image: ReferenceImage {
            mime_type: small.mime_type,
            bytes: Arc::new(small.bytes),
        },
        original_size: (w, h),
        sent_size: small.size,
        file_sha256,
    })
}

/// How many distinct files `campaign` and `row` name together.
fn distinct_files(campaign: &[Arc<LoadedReference>], row: &[Arc<LoadedReference>]) -> usize {
    let mut distinct: Vec<&Path> = campaign
        .iter()
        .chain(row)
        .map(|r| r.path.as_path())
        .collect();
    distinct.sort();
    distinct.dedup();
    distinct.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32) {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 239) as u8])
        });
        img.save_with_format(path, ImageFormat::Png).unwrap();
    }

    #[test]
    fn small_reference_is_sent_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        write_png(&p, 64, 32);
        let r = load_one(&p, Limits::default()).unwrap();
        assert_eq!(*r.image.bytes, std::fs::read(&p).unwrap());
        assert_eq!(r.image.mime_type, "image/png");
        assert!(!r.downscaled());
    }

    #[test]
    fn large_reference_is_downscaled_to_max_side_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.png");
        write_png(&p, 900, 300);
        let limits = Limits {
            max_side: 300,
            ..Limits::default()
        };
        let a = load_one(&p, limits).unwrap();
        let b = load_one(&p, limits).unwrap();
        assert_eq!(a.sent_size, (300, 100));
        assert_eq!(a.original_size, (900, 300));
        assert_eq!(
            a.image.bytes, b.image.bytes,
            "downscale is not deterministic"
        );
        let decoded = image::load_from_memory(&a.image.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (300, 100));
    }

    #[test]
    fn jpeg_reference_stays_jpeg_when_downscaled() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("shot.jpg");
        image::RgbImage::from_pixel(400, 400, image::Rgb([10, 120, 200]))
            .save_with_format(&p, ImageFormat::Jpeg)
            .unwrap();
        let r = load_one(
            &p,
            Limits {
                max_side: 100,
                ..Limits::default()
            },
        )
        .unwrap();
        assert_eq!(r.image.mime_type, "image/jpeg");
        assert_eq!(
            image::guess_format(&r.image.bytes).unwrap(),
            ImageFormat::Jpeg
        );
    }

    #[test]
    fn corrupt_missing_oversized_and_unsupported_files_are_refused_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load_one(&dir.path().join("nope.png"), Limits::default()).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");

        let junk = dir.path().join("junk.png");
        std::fs::write(&junk, b"this is not an image").unwrap();
        let e = load_one(&junk, Limits::default()).unwrap_err();
        assert!(e.contains("not a PNG, JPEG or WebP"), "{e}");

        let truncated = dir.path().join("trunc.png");
        write_png(&truncated, 200, 200);
        let bytes = std::fs::read(&truncated).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let e = load_one(&truncated, Limits::default()).unwrap_err();
        assert!(e.contains("does not decode"), "{e}");

        let gif = dir.path().join("anim.gif");
        std::fs::write(&gif, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap();
        let e = load_one(&gif, Limits::default()).unwrap_err();
        assert!(e.contains("must be PNG, JPEG or WebP"), "{e}");

        let e = load_one(
            &truncated,
            Limits {
                max_file_bytes: 10,
                ..Limits::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("over the limit of 10 bytes"), "{e}");
    }
}
