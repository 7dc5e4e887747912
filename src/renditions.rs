//! Renditions: exact-size copies of a master image for real ad slots
//! (`1200x628` JPEG, `1080x1080` PNG, `300x250` WebP, …), declared per
//! variant under `[[variants.renditions]]`.
//!
//! Renditions are derived from the master alone, never from the provider:
//! a rendition's identity is its job plus a hash of its settings
//! ([`RenditionSpec::settings_hash`]), stored in the `renditions` table.
//! At the end of every run [`reconcile`] brings each done job's renditions
//! in line with the current settings: missing or changed ones are produced
//! (resized with `fast_image_resize`, encoded, written atomically beside the
//! master), and those whose settings left the campaign are deleted, rows and
//! files. Changing rendition settings therefore never calls the provider.
//!
//! This module also holds the master aspect-ratio check
//! ([`aspect_check`]) the manifest reports.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageEncoder, ImageFormat};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use toml::Spanned;

use crate::assets::{self, AssetError};
use crate::campaign::Campaign;
use crate::error::{Error, InputErrors, InputProblem, Result};
use crate::expand::JobKey;
use crate::queue::{JobId, JobRow, JobState, Queue, now_ms};

/// How far (as a fraction) a master's aspect ratio may be from the requested
/// one before the manifest flags it. The documented Gemini sizes are within
/// about 1% of their nominal ratios (1376x768 for 16:9 is 0.8% off).
pub const ASPECT_TOLERANCE: f64 = 0.02;

/// Bump to regenerate every rendition after a change to the algorithm.
const ALGORITHM_VERSION: u32 = 1;

/// Largest rendition side we accept.
pub const MAX_SIDE: u32 = 16_384;

/// The real aspect ratio (`width / height`, rounded to 4 decimals) of a
/// master, and whether it is within [`ASPECT_TOLERANCE`] of `requested`
/// (`W:H`). An unparseable request counts as not ok.
pub fn aspect_check(width: u32, height: u32, requested: &str) -> (f64, bool) {
    if width == 0 || height == 0 {
        return (0.0, false);
    }
    let actual = f64::from(width) / f64::from(height);
    let ok = crate::model::parse_ratio(requested).is_some_and(|(w, h)| {
        let want = f64::from(w) / f64::from(h);
        (actual / want - 1.0).abs() <= ASPECT_TOLERANCE + 1e-9
    });
    ((actual * 10_000.0).round() / 10_000.0, ok)
}

/// Output file format of a rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// Lossless PNG.
    Png,
    /// Baseline JPEG with a quality setting.
    Jpeg,
    /// WebP. The `image` crate encodes lossless WebP only.
    Webp,
}

impl OutputFormat {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Webp => "webp",
        }
    }
    /// The `image` format.
    pub fn image_format(self) -> ImageFormat {
        match self {
            OutputFormat::Png => ImageFormat::Png,
            OutputFormat::Jpeg => ImageFormat::Jpeg,
            OutputFormat::Webp => ImageFormat::WebP,
        }
    }
}

/// How the master is fitted into the rendition's box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fit {
    /// Scale to fill the box and crop the overflow, keeping the focal point
    /// (fractions of the master's width and height) as close to the centre
    /// of the crop as the master's edges allow.
    Cover {
        /// `(x, y)` in `0.0..=1.0`.
        focal: (f64, f64),
    },
    /// Scale to fit inside the box, centred, and fill the rest with `pad`.
    Contain {
        /// Straight RGBA padding colour.
        pad: [u8; 4],
    },
}

impl Fit {
    /// `cover` or `contain`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Fit::Cover { .. } => "cover",
            Fit::Contain { .. } => "contain",
        }
    }
}

/// One declared rendition of a variant.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionSpec {
    /// Exact output width.
    pub width: u32,
    /// Exact output height.
    pub height: u32,
    /// File format.
    pub format: OutputFormat,
    /// JPEG quality 1–100 (ignored for other formats).
    pub quality: u8,
    /// Cover or contain.
    pub fit: Fit,
}

impl RenditionSpec {
    /// Hex SHA-256 over every setting that changes the output bytes.
    pub fn settings_hash(&self) -> String {
        let fit = match self.fit {
            Fit::Cover { focal } => json!({"fit": "cover", "focal": [focal.0, focal.1]}),
            Fit::Contain { pad } => json!({"fit": "contain", "pad": pad}),
        };
        let canonical = json!({
            "v": ALGORITHM_VERSION,
            "width": self.width,
            "height": self.height,
            "format": self.format.as_str(),
            "quality": if self.format == OutputFormat::Jpeg { self.quality } else { 0 },
            "fit": fit,
        });
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }

    /// Path of this rendition for a job, relative to the campaign output:
    /// `<locale>/<variant>/<row-id>@<W>x<H>.<ext>`. Row ids cannot contain
    /// `@`, so this never collides with a master.
    pub fn rel_path(&self, key: &JobKey) -> String {
        format!(
            "{}/{}/{}@{}x{}.{}",
            key.locale,
            key.variant,
            key.row_id,
            self.width,
            self.height,
            assets::ext_of(self.format.image_format())
        )
    }
}

/// A rendition as listed in the manifest under its asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionEntry {
    /// Path relative to the manifest.
    pub path: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// File size.
    pub bytes: u64,
    /// Exact width.
    pub width: u32,
    /// Exact height.
    pub height: u32,
    /// `image/png`, `image/jpeg` or `image/webp`.
    pub mime_type: String,
    /// `cover` or `contain`.
    pub fit: String,
    /// True when the master was smaller than needed and had to be enlarged.
    pub upscaled: bool,
}

// ---------------------------------------------------------------------------
// campaign.toml: `[[variants.renditions]]`

/// The raw TOML shape of one `[[variants.renditions]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRendition {
    #[serde(default)]
    size: Option<Spanned<String>>,
    #[serde(default)]
    width: Option<Spanned<i64>>,
    #[serde(default)]
    height: Option<Spanned<i64>>,
    #[serde(default)]
    format: Option<Spanned<String>>,
    #[serde(default)]
    quality: Option<Spanned<i64>>,
    #[serde(default)]
    fit: Option<Spanned<String>>,
    #[serde(default)]
    focal: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    pad: Option<Spanned<String>>,
}

/// Parse a `#rrggbb` or `#rrggbbaa` colour.
pub fn parse_colour(s: &str) -> Option<[u8; 4]> {
    let hex = s.strip_prefix('#')?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.is_ascii() {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    let a = if hex.len() == 8 { byte(6)? } else { 255 };
    Some([byte(0)?, byte(2)?, byte(4)?, a])
}

/// Validate a variant's renditions; every problem goes to `errors` with the
/// line and column of the offending value in `path` (whose text is `text`).
pub(crate) fn parse_specs(
    path: &Path,
    text: &str,
    variant: &str,
    raws: Vec<Spanned<RawRendition>>,
    errors: &mut InputErrors,
) -> Vec<RenditionSpec> {
    let at = |span: std::ops::Range<usize>, msg: String| {
        let (l, c) = crate::campaign::line_col(text, span.start);
        InputProblem::at(path, l, Some(c), msg)
    };
    let mut out: Vec<RenditionSpec> = Vec::new();
    let mut paths: HashMap<(u32, u32, &'static str), usize> = HashMap::new();
    for raw in raws {
        let table_span = raw.span();
        let r = raw.into_inner();
        let before = errors.0.len();
        let side = |v: &Spanned<i64>, what: &str, errors: &mut InputErrors| -> Option<u32> {
            let n = *v.get_ref();
            if (1..=i64::from(MAX_SIDE)).contains(&n) {
                Some(n as u32)
            } else {
                errors.push(at(
                    v.span(),
                    format!("rendition {what} must be between 1 and {MAX_SIDE}, got {n}"),
                ));
                None
            }
        };
        let dims = match (&r.size, &r.width, &r.height) {
            (Some(s), None, None) => match parse_size(s.get_ref()) {
                Ok(d) => Some(d),
                Err(msg) => {
                    errors.push(at(s.span(), msg));
                    None
                }
            },
            (None, Some(w), Some(h)) => match (side(w, "width", errors), side(h, "height", errors))
            {
                (Some(w), Some(h)) => Some((w, h)),
                _ => None,
            },
            (Some(s), _, _) => {
                errors.push(at(
                    s.span(),
                    "give either size = \"WxH\" or width and height, not both".into(),
                ));
                None
            }
            _ => {
                errors.push(at(
                    table_span.clone(),
                    format!(
                        "a rendition of variant `{variant}` needs size = \"WxH\" (or width and height)"
                    ),
                ));
                None
            }
        };
        let format = match &r.format {
            None => OutputFormat::Jpeg,
            Some(f) => match f.get_ref().to_ascii_lowercase().as_str() {
                "png" => OutputFormat::Png,
                "jpeg" | "jpg" => OutputFormat::Jpeg,
                "webp" => OutputFormat::Webp,
                other => {
                    errors.push(at(
                        f.span(),
                        format!("unknown rendition format `{other}` (expected png, jpeg or webp)"),
                    ));
                    OutputFormat::Jpeg
                }
            },
        };
        let quality = match &r.quality {
            None => 85,
            Some(q) if format != OutputFormat::Jpeg => {
                errors.push(at(
                    q.span(),
                    format!(
                        "quality applies to jpeg only; {} renditions are lossless",
                        format.as_str()
                    ),
                ));
                85
            }
            Some(q) => {
                let n = *q.get_ref();
                if (1..=100).contains(&n) {
                    n as u8
                } else {
                    errors.push(at(
                        q.span(),
                        format!("jpeg quality must be between 1 and 100, got {n}"),
                    ));
                    85
                }
            }
        };
        let fit_name = r
            .fit
            .as_ref()
            .map_or("cover".to_string(), |f| f.get_ref().clone());
        let fit = match fit_name.as_str() {
            "cover" => {
                if let Some(p) = &r.pad {
                    errors.push(at(
                        p.span(),
                        "pad applies to fit = \"contain\" only (cover fills the whole box)".into(),
                    ));
                }
                let focal = match &r.focal {
                    None => (0.5, 0.5),
                    Some(f) => match f.get_ref().as_slice() {
                        [x, y] if (0.0..=1.0).contains(x) && (0.0..=1.0).contains(y) => (*x, *y),
                        _ => {
                            errors.push(at(
                                f.span(),
                                "focal must be [x, y] with both between 0.0 and 1.0 (fractions of the master's width and height)".into(),
                            ));
                            (0.5, 0.5)
                        }
                    },
                };
                Fit::Cover { focal }
            }
            "contain" => {
                if let Some(f) = &r.focal {
                    errors.push(at(
                        f.span(),
                        "focal applies to fit = \"cover\" only (contain keeps the whole master)"
                            .into(),
                    ));
                }
                let pad = match &r.pad {
                    None => [255, 255, 255, 255],
                    Some(p) => match parse_colour(p.get_ref()) {
                        Some(c) if c[3] < 255 && format == OutputFormat::Jpeg => {
                            errors.push(at(
                                p.span(),
                                "jpeg has no transparency: use an opaque pad colour (#rrggbb) or format png/webp".into(),
                            ));
                            c
                        }
                        Some(c) => c,
                        None => {
                            errors.push(at(
                                p.span(),
                                format!(
                                    "pad `{}` is not a colour; write #rrggbb or #rrggbbaa",
                                    p.get_ref()
                                ),
                            ));
                            [255, 255, 255, 255]
                        }
                    },
                };
                Fit::Contain { pad }
            }
            other => {
                let span = r.fit.as_ref().map_or(table_span.clone(), |f| f.span());
                errors.push(at(
                    span,
                    format!("unknown fit `{other}` (expected cover or contain)"),
                ));
                Fit::Cover { focal: (0.5, 0.5) }
            }
        };
        let Some((width, height)) = dims else {
            continue;
        };
        let ext = assets::ext_of(format.image_format());
        if let Some(first) = paths.insert((width, height, ext), out.len()) {
            let _ = first;
            errors.push(at(
                table_span,
                format!(
                    "variant `{variant}` declares two {width}x{height} {} renditions; they would write the same file",
                    format.as_str()
                ),
            ));
            continue;
        }
        if errors.0.len() == before {
            out.push(RenditionSpec {
                width,
                height,
                format,
                quality,
                fit,
            });
        }
    }
    out
}

/// Parse `"1200x628"` (an `×` also works).
pub fn parse_size(s: &str) -> std::result::Result<(u32, u32), String> {
    let bad =
        || format!("rendition size `{s}` must look like \"1200x628\" (width x height in pixels)");
    let (w, h) = s.trim().split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!(
            "rendition size `{s}`: each side must be between 1 and {MAX_SIDE}"
        ));
    }
    Ok((w, h))
}

// ---------------------------------------------------------------------------
// Rendering

/// Why a rendition could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RenditionError {
    /// The master does not decode.
    #[error("master {path} does not decode: {detail}")]
    Master {
        /// The master file.
        path: PathBuf,
        /// The decoder's message.
        detail: String,
    },
    /// Resizing failed (a bug or an impossible size).
    #[error("resize failed: {0}")]
    Resize(String),
    /// Encoding failed.
    #[error("encoding failed: {0}")]
    Encode(String),
}

/// A produced rendition, not yet written.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Encoded file bytes.
    pub bytes: Vec<u8>,
    /// True when the master had to be enlarged.
    pub upscaled: bool,
}

/// Decode a master image file's bytes.
pub fn decode_master(bytes: &[u8]) -> std::result::Result<DynamicImage, image::ImageError> {
    image::load_from_memory(bytes)
}

/// The source rectangle `(left, top, width, height)` of a cover crop of a
/// `src_w`×`src_h` master into a `dst_w`×`dst_h` box: the largest rectangle
/// of the box's aspect ratio, centred on the focal point and pushed back
/// inside the master where it would cross an edge.
pub fn cover_crop(
    src_w: u32,
    src_h: u32,
    dst_w: u32,
    dst_h: u32,
    focal: (f64, f64),
) -> (f64, f64, f64, f64) {
    let (sw, sh) = (f64::from(src_w), f64::from(src_h));
    let scale = (f64::from(dst_w) / sw).max(f64::from(dst_h) / sh);
    let cw = (f64::from(dst_w) / scale).min(sw);
    let ch = (f64::from(dst_h) / scale).min(sh);
    let left = (focal.0 * sw - cw / 2.0).clamp(0.0, sw - cw);
    let top = (focal.1 * sh - ch / 2.0).clamp(0.0, sh - ch);
    (left, top, cw, ch)
}

/// The size and offset of the master inside a contain box: `(w, h, x, y)`.
pub fn contain_layout(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> (u32, u32, u32, u32) {
    let scale = (f64::from(dst_w) / f64::from(src_w)).min(f64::from(dst_h) / f64::from(src_h));
    let w = ((f64::from(src_w) * scale).round() as u32).clamp(1, dst_w);
    let h = ((f64::from(src_h) * scale).round() as u32).clamp(1, dst_h);
    (w, h, (dst_w - w) / 2, (dst_h - h) / 2)
}

/// Produce one rendition of `master`. Deterministic: the same master and
/// settings give the same bytes. `resizer` keeps its buffers between calls.
pub fn render(
    master: &DynamicImage,
    spec: &RenditionSpec,
    resizer: &mut Resizer,
) -> std::result::Result<Rendered, RenditionError> {
    let (mw, mh) = (master.width(), master.height());
    if mw == 0 || mh == 0 {
        return Err(RenditionError::Resize("master has no pixels".into()));
    }
    let master_alpha = master.color().has_alpha();
    let pad_alpha = matches!(spec.fit, Fit::Contain { pad } if pad[3] < 255);
    let rgba = spec.format != OutputFormat::Jpeg && (master_alpha || pad_alpha);
    // Work in 8-bit RGB (or RGBA when transparency can reach the output).
    let src: Cow<'_, DynamicImage> = match (rgba, master) {
        (false, DynamicImage::ImageRgb8(_)) | (true, DynamicImage::ImageRgba8(_)) => {
            Cow::Borrowed(master)
        }
        (false, m) => Cow::Owned(DynamicImage::ImageRgb8(m.to_rgb8())),
        (true, m) => Cow::Owned(DynamicImage::ImageRgba8(m.to_rgba8())),
    };
    let blank = |w: u32, h: u32| {
        if rgba {
            DynamicImage::new_rgba8(w, h)
        } else {
            DynamicImage::new_rgb8(w, h)
        }
    };
    let base = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .use_alpha(master_alpha);
    let (out, upscaled) = match spec.fit {
        Fit::Cover { focal } => {
            let (left, top, cw, ch) = cover_crop(mw, mh, spec.width, spec.height, focal);
            let mut dst = blank(spec.width, spec.height);
            resizer
                .resize(src.as_ref(), &mut dst, &base.crop(left, top, cw, ch))
                .map_err(|e| RenditionError::Resize(e.to_string()))?;
            (dst, f64::from(spec.width) > cw + 1e-6)
        }
        Fit::Contain { pad } => {
            let (w, h, x, y) = contain_layout(mw, mh, spec.width, spec.height);
            let mut scaled = blank(w, h);
            resizer
                .resize(src.as_ref(), &mut scaled, &base)
                .map_err(|e| RenditionError::Resize(e.to_string()))?;
            let mut canvas = if rgba {
                DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
                    spec.width,
                    spec.height,
                    image::Rgba(pad),
                ))
            } else {
                DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
                    spec.width,
                    spec.height,
                    image::Rgb([pad[0], pad[1], pad[2]]),
                ))
            };
            if master_alpha {
                image::imageops::overlay(&mut canvas, &scaled, i64::from(x), i64::from(y));
            } else {
                image::imageops::replace(&mut canvas, &scaled, i64::from(x), i64::from(y));
            }
            (canvas, w > mw)
        }
    };
    Ok(Rendered {
        bytes: encode(&out, spec)?,
        upscaled,
    })
}

fn encode(
    img: &DynamicImage,
    spec: &RenditionSpec,
) -> std::result::Result<Vec<u8>, RenditionError> {
    let mut buf = Cursor::new(Vec::new());
    let (w, h) = (img.width(), img.height());
    let color = img.color().into();
    let res =
        match spec.format {
            OutputFormat::Png => image::codecs::png::PngEncoder::new_with_quality(
                &mut buf,
                image::codecs::png::CompressionType::Default,
                image::codecs::png::FilterType::Adaptive,
            )
            .write_image(img.as_bytes(), w, h, color),
            OutputFormat::Jpeg => {
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, spec.quality)
                    .write_image(img.as_bytes(), w, h, color)
            }
            OutputFormat::Webp => image::codecs::webp::WebPEncoder::new_lossless(&mut buf)
                .write_image(img.as_bytes(), w, h, color),
        };
    res.map_err(|e| RenditionError::Encode(e.to_string()))?;
    Ok(buf.into_inner())
}

// ---------------------------------------------------------------------------
// Reconcile against the `renditions` table

/// What [`reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Renditions written (missing or changed).
    pub produced: usize,
    /// Renditions already up to date.
    pub kept: usize,
    /// Renditions no longer declared whose files were deleted.
    pub removed: usize,
    /// Jobs whose master could not be read or decoded (see the log).
    pub failed: usize,
}

struct Stored {
    job_id: JobId,
    settings_hash: String,
    master_sha256: String,
    path: String,
    bytes: u64,
    state: JobState,
}

struct Todo {
    key: JobKey,
    job_id: JobId,
    master_path: String,
    master_sha256: String,
    specs: Vec<(String, RenditionSpec)>,
}

async fn stored_rows(queue: &Queue, campaign: &str) -> Result<Vec<Stored>> {
    let rows = sqlx::query(
        "SELECT r.job_id, r.settings_hash, r.master_sha256, r.path, r.bytes, j.state
         FROM renditions r JOIN jobs j ON j.id = r.job_id WHERE j.campaign = ?",
    )
    .bind(campaign)
    .fetch_all(queue.pool())
    .await?;
    rows.into_iter()
        .map(|r| {
            let state: String = r.get(5);
            Ok(Stored {
                job_id: r.get(0),
                settings_hash: r.get(1),
                master_sha256: r.get(2),
                path: r.get(3),
                bytes: r.get::<i64, _>(4) as u64,
                state: state.parse().map_err(Error::Internal)?,
            })
        })
        .collect()
}

/// Bring every done job's renditions in line with the campaign's current
/// settings, without calling any provider: produce what is missing or
/// changed (or whose file went missing), delete what is no longer declared.
/// Renditions of retired jobs are left alone, like their masters.
pub async fn reconcile(
    queue: &Queue,
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
    let jobs = queue.jobs(&campaign.name).await?;
    let stored = stored_rows(queue, &campaign.name).await?;
    let by_key: HashMap<(JobId, &str), &Stored> = stored
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
            wanted_paths.insert(spec.rel_path(&job.key));
            wanted.insert((job.id, hash.clone()));
        }
        let (JobState::Done, Some(asset)) = (job.state, &job.asset) else {
            continue;
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

    produce_all(queue, campaign_out, todos, &mut report).await?;

    // Remove what is no longer declared (retired jobs keep theirs).
    for s in &stored {
        if s.state == JobState::Retired || wanted.contains(&(s.job_id, s.settings_hash.clone())) {
            continue;
        }
        sqlx::query("DELETE FROM renditions WHERE job_id = ? AND settings_hash = ?")
            .bind(s.job_id)
            .bind(&s.settings_hash)
            .execute(queue.pool())
            .await?;
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

/// What one job's blocking task did: the renditions it wrote, and why it
/// stopped early if it did (an unreadable or changed master).
struct JobOutput {
    job_id: JobId,
    written: Vec<Written>,
    failure: Option<String>,
}

/// Produce the renditions of `todos`, one blocking task per job (its master
/// is decoded once), as many at a time as there are cores, recording each
/// rendition once its file is in place.
async fn produce_all(
    queue: &Queue,
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
            failure,
        } = match joined {
            Ok(Ok(v)) => v,
            Ok(Err(AssetError::Io { path, source })) => return Err(Error::io(path, source)),
            Ok(Err(e)) => return Err(Error::Internal(e.to_string())),
            Err(e) => return Err(Error::Internal(format!("rendition task failed: {e}"))),
        };
        if let Some(msg) = failure {
            tracing::warn!(job = job_id, error = %msg, "renditions not produced");
            report.failed += 1;
        }
        for Written {
            settings_hash,
            master_sha256,
            entry,
        } in written
        {
            sqlx::query(
                "INSERT INTO renditions (job_id, settings_hash, master_sha256, path, sha256, bytes,
                    width, height, mime_type, fit, upscaled, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (job_id, settings_hash) DO UPDATE SET
                    master_sha256 = excluded.master_sha256, path = excluded.path,
                    sha256 = excluded.sha256, bytes = excluded.bytes, width = excluded.width,
                    height = excluded.height, mime_type = excluded.mime_type, fit = excluded.fit,
                    upscaled = excluded.upscaled, created_at = excluded.created_at",
            )
            .bind(job_id)
            .bind(&settings_hash)
            .bind(&master_sha256)
            .bind(&entry.path)
            .bind(&entry.sha256)
            .bind(entry.bytes as i64)
            .bind(i64::from(entry.width))
            .bind(i64::from(entry.height))
            .bind(&entry.mime_type)
            .bind(&entry.fit)
            .bind(entry.upscaled)
            .bind(now_ms())
            .execute(queue.pool())
            .await?;
            report.produced += 1;
        }
    }
    Ok(())
}

/// Decode one master and write its renditions. A master that cannot be read
/// or decoded, or that changed on disk since it was recorded, is reported in
/// [`JobOutput::failure`] rather than failing the run; write errors fail it.
fn produce_job(out: &Path, todo: Todo) -> std::result::Result<JobOutput, AssetError> {
    let mut output = JobOutput {
        job_id: todo.job_id,
        written: Vec::new(),
        failure: None,
    };
    let master_file = out.join(&todo.master_path);
    let master = match std::fs::read(&master_file) {
        Err(e) => Err(format!("cannot read {}: {e}", master_file.display())),
        Ok(b) => {
            let sha = hex::encode(Sha256::digest(&b));
            if sha == todo.master_sha256 {
                decode_master(&b).map_err(|e| {
                    RenditionError::Master {
                        path: master_file.clone(),
                        detail: e.to_string(),
                    }
                    .to_string()
                })
            } else {
                Err(format!(
                    "{} changed on disk since it was recorded (sha256 {sha}); not deriving renditions from it",
                    master_file.display()
                ))
            }
        }
    };
    let master = match master {
        Ok(m) => m,
        Err(msg) => {
            output.failure = Some(msg);
            return Ok(output);
        }
    };
    let mut resizer = Resizer::new();
    for (settings_hash, spec) in todo.specs {
        let rendered = match render(&master, &spec, &mut resizer) {
            Ok(r) => r,
            Err(e) => {
                output.failure = Some(e.to_string());
                return Ok(output);
            }
        };
        let rel = spec.rel_path(&todo.key);
        assets::write_atomic(&out.join(&rel), &rendered.bytes)?;
        output.written.push(Written {
            settings_hash,
            master_sha256: todo.master_sha256.clone(),
            entry: RenditionEntry {
                path: rel,
                sha256: hex::encode(Sha256::digest(&rendered.bytes)),
                bytes: rendered.bytes.len() as u64,
                width: spec.width,
                height: spec.height,
                mime_type: assets::mime_of(spec.format.image_format()).to_string(),
                fit: spec.fit.as_str().to_string(),
                upscaled: rendered.upscaled,
            },
        });
    }
    Ok(output)
}

/// Every stored rendition of the campaign's jobs, by job, ordered by path,
/// for the manifest.
pub async fn manifest_entries(
    queue: &Queue,
    campaign: &str,
) -> Result<HashMap<JobId, Vec<RenditionEntry>>> {
    let rows = sqlx::query(
        "SELECT r.job_id, r.path, r.sha256, r.bytes, r.width, r.height, r.mime_type, r.fit, r.upscaled
         FROM renditions r JOIN jobs j ON j.id = r.job_id
         WHERE j.campaign = ? ORDER BY r.job_id, r.path",
    )
    .bind(campaign)
    .fetch_all(queue.pool())
    .await?;
    let mut out: HashMap<JobId, Vec<RenditionEntry>> = HashMap::new();
    for r in rows {
        out.entry(r.get(0)).or_default().push(RenditionEntry {
            path: r.get(1),
            sha256: r.get(2),
            bytes: r.get::<i64, _>(3) as u64,
            width: r.get::<i64, _>(4) as u32,
            height: r.get::<i64, _>(5) as u32,
            mime_type: r.get(6),
            fit: r.get(7),
            upscaled: r.get(8),
        });
    }
    Ok(out)
}

/// Renditions of a job row (empty when none), for callers holding a map
/// from [`manifest_entries`].
pub fn entries_for(map: &HashMap<JobId, Vec<RenditionEntry>>, job: &JobRow) -> Vec<RenditionEntry> {
    map.get(&job.id).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests;
