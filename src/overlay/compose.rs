//! Composing: typeset one locale's copy onto the copy-free art, write the
//! result atomically, and record it. Pure CPU work plus local files; no
//! provider is ever called from here.

use std::collections::HashSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, ImageFormat, RgbaImage};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use super::store::{self, BoxLayout, CompositeKey, CompositeOutcome};
use super::{ComposeSpec, VAlign, compose_plan};
use crate::assets;
use crate::campaign::Campaign;
use crate::error::{Error, Result};
use crate::expand::JobKey;
use crate::provider::Reason;
use crate::queue::{AssetRecord, JobRow, Queue};
use crate::text::{self, TextError};

/// JPEG quality of composites whose art is JPEG.
const JPEG_QUALITY: u8 = 90;

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

/// A composed image, encoded, not yet written.
#[derive(Debug, Clone)]
pub struct Composed {
    /// Encoded bytes (PNG, or JPEG when the art is JPEG).
    pub bytes: Vec<u8>,
    /// Their format.
    pub format: ImageFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// How each box was set.
    pub layout: Vec<BoxLayout>,
}

/// Why a composite could not be made.
#[derive(Debug, Clone, PartialEq)]
pub struct ComposeFailure {
    /// [`Reason::TextOverflow`], [`Reason::UndecodableImage`] or [`Reason::Other`].
    pub reason: Reason,
    /// Detail; for overflow, every box that did not fit with its copy.
    pub detail: String,
}

/// Alpha-blend `color` (straight RGBA) over the box.
fn fill_scrim(img: &mut RgbaImage, bx: text::TextBox, color: [u8; 4]) {
    let a = f32::from(color[3]) / 255.0;
    let x_end = (bx.x + bx.width).min(img.width());
    let y_end = (bx.y + bx.height).min(img.height());
    for y in bx.y..y_end {
        for x in bx.x..x_end {
            let p = img.get_pixel_mut(x, y);
            for (dst, src) in p.0.iter_mut().zip(color).take(3) {
                *dst = (f32::from(src) * a + f32::from(*dst) * (1.0 - a)).round() as u8;
            }
            p.0[3] = (255.0 * a + f32::from(p.0[3]) * (1.0 - a)).round() as u8;
        }
    }
}

/// Typeset `spec` onto decoded art. `nominal_width` is the model's documented
/// width for the variant (sizes scale by actual ÷ nominal). Every box is
/// tried, so an overflow detail lists them all.
pub fn compose_image(
    art: &mut RgbaImage,
    spec: &ComposeSpec,
    nominal_width: Option<u32>,
) -> std::result::Result<Vec<BoxLayout>, ComposeFailure> {
    let (w, h) = (art.width(), art.height());
    let scale = nominal_width.map_or(1.0, |n| w as f32 / n.max(1) as f32);
    let mut layout = Vec::with_capacity(spec.boxes.len());
    let mut overflow = Vec::new();
    let mut other = Vec::new();
    for (b, copy) in &spec.boxes {
        let outer = b.pixel_box(w, h);
        let bx = b.inner_box(w, h, scale);
        let style = b.style(scale);
        // Fit first so a box that overflows leaves no scrim behind either.
        match text::fit_text(bx.width, bx.height, copy, spec.locale.tag(), &style) {
            Ok(fit) => {
                if let Some(s) = b.scrim {
                    fill_scrim(art, outer, s);
                }
                let pinned = text::TextStyle {
                    size_px: fit.size_px,
                    min_size_px: fit.size_px,
                    ..style
                };
                // Draw into a box exactly as tall as the block, placed by valign.
                let block = (fit.block_height(&pinned).ceil() as u32 + 1).min(bx.height);
                let offset = match b.valign {
                    VAlign::Top => 0,
                    VAlign::Middle => (bx.height - block) / 2,
                    VAlign::Bottom => bx.height - block,
                };
                let placed = text::TextBox {
                    y: bx.y + offset,
                    height: bx.height - offset,
                    ..bx
                };
                match text::draw_text(art, placed, copy, spec.locale.tag(), &pinned) {
                    Ok(f) => layout.push(BoxLayout {
                        column: b.column.clone(),
                        size_px: f.size_px,
                        lines: f.lines,
                    }),
                    Err(e) => other.push(format!("box `{}`: {e}", b.column)),
                }
            }
            Err(TextError::Overflow { text, min_size_px }) => overflow.push(format!(
                "box `{}` ({}×{} px{}): {text:?} does not fit even at {min_size_px:.0} px",
                b.column,
                bx.width,
                bx.height,
                b.max_lines
                    .map_or(String::new(), |n| format!(", at most {n} line(s)")),
            )),
            Err(e) => other.push(format!("box `{}`: {e}", b.column)),
        }
    }
    if !overflow.is_empty() {
        return Err(ComposeFailure {
            reason: Reason::TextOverflow,
            detail: overflow.join("; "),
        });
    }
    if !other.is_empty() {
        return Err(ComposeFailure {
            reason: Reason::Other,
            detail: other.join("; "),
        });
    }
    Ok(layout)
}

/// Decode the art bytes, typeset, and encode in the art's format (JPEG art
/// gives JPEG, anything else PNG).
pub fn compose_bytes(
    art_bytes: &[u8],
    spec: &ComposeSpec,
    nominal_width: Option<u32>,
) -> std::result::Result<Composed, ComposeFailure> {
    let undecodable = |e: String| ComposeFailure {
        reason: Reason::UndecodableImage,
        detail: format!("the art does not decode: {e}"),
    };
    let format = image::guess_format(art_bytes).map_err(|e| undecodable(e.to_string()))?;
    let mut img = image::load_from_memory_with_format(art_bytes, format)
        .map_err(|e| undecodable(e.to_string()))?
        .to_rgba8();
    let layout = compose_image(&mut img, spec, nominal_width)?;
    let (width, height) = img.dimensions();
    let encode_err = |e: image::ImageError| ComposeFailure {
        reason: Reason::Other,
        detail: format!("cannot encode the composite: {e}"),
    };
    let mut out = Cursor::new(Vec::new());
    let format = if format == ImageFormat::Jpeg {
        let rgb = image::DynamicImage::ImageRgba8(img).to_rgb8();
        JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
            .write_image(rgb.as_raw(), width, height, ExtendedColorType::Rgb8)
            .map_err(encode_err)?;
        ImageFormat::Jpeg
    } else {
        PngEncoder::new(&mut out)
            .write_image(img.as_raw(), width, height, ExtendedColorType::Rgba8)
            .map_err(encode_err)?;
        ImageFormat::Png
    };
    Ok(Composed {
        bytes: out.into_inner(),
        format,
        width,
        height,
        layout,
    })
}

/// Compose, write atomically and describe the file. I/O errors writing the
/// asset tree are run errors (`Err`); art problems and overflow are outcomes.
fn compose_and_write(
    campaign_out: &Path,
    campaign: &str,
    art_path: &Path,
    spec: &ComposeSpec,
    nominal_width: Option<u32>,
) -> Result<CompositeOutcome> {
    let art = match std::fs::read(art_path) {
        Ok(b) => b,
        Err(e) => {
            return Ok(CompositeOutcome::Failed {
                reason: Reason::UndecodableImage.code().to_string(),
                detail: format!("cannot read the art {}: {e}", art_path.display()),
            });
        }
    };
    let composed = match compose_bytes(&art, spec, nominal_width) {
        Ok(c) => c,
        Err(f) => {
            return Ok(CompositeOutcome::Failed {
                reason: f.reason.code().to_string(),
                detail: f.detail,
            });
        }
    };
    let key = JobKey {
        campaign: campaign.to_string(),
        row_id: spec.row_id.clone(),
        locale: spec.locale.tag().to_string(),
        variant: spec.variant.clone(),
    };
    let rel = assets::master_rel_path(&key, composed.format);
    let path = campaign_out.join(&rel);
    assets::write_atomic(&path, &composed.bytes).map_err(|e| match e {
        assets::AssetError::Io { path, source } => Error::io(path, source),
        other => Error::Internal(other.to_string()),
    })?;
    Ok(CompositeOutcome::Done {
        asset: AssetRecord {
            path: rel,
            sha256: hex::encode(Sha256::digest(&composed.bytes)),
            bytes: composed.bytes.len() as u64,
            width: composed.width,
            height: composed.height,
            mime_type: assets::mime_of(composed.format).to_string(),
        },
        layout: composed.layout,
    })
}

/// Compose every overlay asset whose art is done and whose compose hash
/// changed (or that was never composed), record each outcome, and retire
/// composites whose identity left the campaign. Runs after dispatch, so
/// `jobs` holds the art's final state; it calls no provider.
pub async fn compose_all(
    queue: &Queue,
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
                s.row_id.clone(),
                s.locale.tag().to_string(),
                s.variant.clone(),
            )
        })
        .collect();
    report.retired = store::retire_except(queue, &campaign.name, &keep).await?;
    if plan.is_empty() {
        return Ok(report);
    }
    let art = store::art_by_row_variant(jobs);
    let live = store::live(queue, &campaign.name).await?;
    let locales = campaign.locales.len().max(1) as f64;

    struct Task {
        spec: ComposeSpec,
        art_job_id: i64,
        art_path: PathBuf,
        hash: String,
        cost: f64,
    }
    let mut tasks = Vec::new();
    for spec in plan {
        let Some(a) = art.get(&(spec.row_id.clone(), spec.variant.clone())) else {
            report.waiting += 1;
            continue;
        };
        let Some(asset) = &a.asset else {
            report.waiting += 1;
            continue;
        };
        let hash = spec.compose_hash(&asset.sha256);
        let key = (
            spec.row_id.clone(),
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
            art_path: campaign_out.join(&asset.path),
            art_job_id: a.id,
            hash,
            cost: crate::cost::round_micro(a.cost_usd.unwrap_or(0.0) / locales),
            spec,
        });
    }
    if tasks.is_empty() {
        return Ok(report);
    }

    let nominal = |ratio: &str, size| {
        campaign
            .model
            .family()
            .pixel_size(ratio, size)
            .map(|(w, _)| w)
    };
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let out: Arc<PathBuf> = Arc::new(campaign_out.to_path_buf());
    let mut set: JoinSet<(Task, Result<CompositeOutcome>)> = JoinSet::new();
    let mut pending = tasks.into_iter();
    loop {
        while set.len() < parallel {
            let Some(task) = pending.next() else { break };
            let size = campaign
                .variants
                .iter()
                .find(|v| v.name == task.spec.variant)
                .map(|v| v.image_size);
            let nominal_width = size.and_then(|s| nominal(&task.spec.aspect_ratio, s));
            let out = out.clone();
            let name = campaign.name.clone();
            set.spawn_blocking(move || {
                let res = compose_and_write(&out, &name, &task.art_path, &task.spec, nominal_width);
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
                if reason == Reason::TextOverflow.code() {
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
        store::record(
            queue,
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
