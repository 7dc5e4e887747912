//! Pure pixel transforms: exact-size renditions (cover with a focal point,
//! contain with a pad colour), deterministic reference downscales, and the
//! master aspect-ratio check. No I/O: callers read and write the bytes.

use std::borrow::Cow;
use std::io::Cursor;
use std::path::PathBuf;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageEncoder, ImageFormat};
use serde_json::json;
use sha2::{Digest, Sha256};

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
    let ok = crate::domain::parse_ratio(requested).is_some_and(|(w, h)| {
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
pub fn decode_master(bytes: &[u8]) -> Result<DynamicImage, image::ImageError> {
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
) -> Result<Rendered, RenditionError> {
    let (out, upscaled) = render_pixels(master, spec, resizer)?;
    Ok(Rendered {
        bytes: encode(&out, spec)?,
        upscaled,
    })
}

/// The pixels of a rendition of `master`, before encoding, and whether the
/// master had to be enlarged. RGB unless transparency can reach a PNG or
/// WebP output.
pub fn render_pixels(
    master: &DynamicImage,
    spec: &RenditionSpec,
    resizer: &mut Resizer,
) -> Result<(DynamicImage, bool), RenditionError> {
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
    let (out, upscaled): (DynamicImage, bool) = match spec.fit {
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
    Ok((out, upscaled))
}

fn encode(img: &DynamicImage, spec: &RenditionSpec) -> Result<Vec<u8>, RenditionError> {
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
                return super::encode_jpeg(img, spec.quality).map_err(RenditionError::Encode);
            }
            OutputFormat::Webp => image::codecs::webp::WebPEncoder::new_lossless(&mut buf)
                .write_image(img.as_bytes(), w, h, color),
        };
    res.map_err(|e| RenditionError::Encode(e.to_string()))?;
    Ok(buf.into_inner())
}

/// A downscaled, re-encoded reference.
#[derive(Debug, Clone)]
pub struct Downscaled {
    /// Encoded bytes.
    pub bytes: Vec<u8>,
    /// Their MIME type.
    pub mime_type: String,
    /// Pixel size.
    pub size: (u32, u32),
}

/// Scale `img` so its longer side is `max_side` and re-encode it: JPEG
/// sources as JPEG quality 90, others as PNG. Deterministic.
pub fn downscale(
    img: &DynamicImage,
    source: ImageFormat,
    max_side: u32,
) -> Result<Downscaled, String> {
    let dst = scale_longer_side(
        img,
        source,
        max_side,
        ResizeAlg::Convolution(FilterType::Lanczos3),
    )?;
    encode_downscaled(dst, source, 90)
}

/// `img` with its longer side scaled to `max_side` by `alg` (alpha kept
/// unless the source is JPEG).
fn scale_longer_side(
    img: &DynamicImage,
    source: ImageFormat,
    max_side: u32,
    alg: ResizeAlg,
) -> Result<DynamicImage, String> {
    let (w, h) = (img.width(), img.height());
    let scale = f64::from(max_side) / f64::from(w.max(h));
    let nw = ((f64::from(w) * scale).round() as u32).clamp(1, max_side);
    let nh = ((f64::from(h) * scale).round() as u32).clamp(1, max_side);
    let alpha = img.color().has_alpha() && source != ImageFormat::Jpeg;
    // A decoded master is nearly always 8-bit RGB already: no copy then.
    let src = match (alpha, img) {
        (true, DynamicImage::ImageRgba8(_)) | (false, DynamicImage::ImageRgb8(_)) => {
            Cow::Borrowed(img)
        }
        (true, _) => Cow::Owned(DynamicImage::ImageRgba8(img.to_rgba8())),
        (false, _) => Cow::Owned(DynamicImage::ImageRgb8(img.to_rgb8())),
    };
    let mut dst = if alpha {
        DynamicImage::new_rgba8(nw, nh)
    } else {
        DynamicImage::new_rgb8(nw, nh)
    };
    Resizer::new()
        .resize(
            src.as_ref(),
            &mut dst,
            &ResizeOptions::new().resize_alg(alg).use_alpha(alpha),
        )
        .map_err(|e| e.to_string())?;
    Ok(dst)
}

/// JPEG at `quality` for JPEG sources, PNG otherwise.
fn encode_downscaled(
    dst: DynamicImage,
    source: ImageFormat,
    quality: u8,
) -> Result<Downscaled, String> {
    let size = (dst.width(), dst.height());
    if source == ImageFormat::Jpeg {
        return Ok(Downscaled {
            bytes: super::encode_jpeg(&dst, quality)?,
            mime_type: "image/jpeg".to_string(),
            size,
        });
    }
    let mut buf = Cursor::new(Vec::new());
    let color = dst.color().into();
    image::codecs::png::PngEncoder::new(&mut buf)
        .write_image(dst.as_bytes(), size.0, size.1, color)
        .map_err(|e| e.to_string())?;
    Ok(Downscaled {
        bytes: buf.into_inner(),
        mime_type: "image/png".to_string(),
        size,
    })
}

/// Longer side of a preview (the review page's thumbnail of an asset), in
/// pixels.
pub const PREVIEW_SIDE: u32 = 320;

/// The preview of an image: [`thumbnail_jpeg`] at [`PREVIEW_SIDE`]. A
/// provider makes it from the pixels it has just decoded to check a
/// result, so the thumbnail costs no second decode of the master.
pub fn preview_jpeg(img: &DynamicImage) -> Result<Vec<u8>, String> {
    thumbnail_jpeg(img, PREVIEW_SIDE)
}

/// A small opaque JPEG of `img` whose longer side is `max_side`, for the
/// review page. Box filter (an area average: for shrinking a master 4× or
/// more it looks as good as Lanczos) in `fast_image_resize`'s SIMD code,
/// encoded by [`crate::imaging::encode_jpeg`]. Measured on 480 masters of
/// 512 px in a release build: `image`'s `thumbnail` and JPEG encoder spent
/// 8 ms of CPU per thumbnail, three quarters of it in those two calls,
/// which made the review page the slowest part of a finished run.
pub fn thumbnail_jpeg(img: &DynamicImage, max_side: u32) -> Result<Vec<u8>, String> {
    if img.width().max(img.height()) <= max_side {
        return crate::imaging::encode_jpeg(img, 82);
    }
    // `ImageFormat::Jpeg` as the source: drop any alpha, as JPEG must.
    // Nearest-neighbour to twice the size, then the box average: a quarter
    // of the convolution's work on a 1K master, and at 320 px no visible
    // difference (the convolution was about 6 % of a batch ingest's CPU).
    let small = scale_longer_side(
        img,
        ImageFormat::Jpeg,
        max_side,
        ResizeAlg::SuperSampling(FilterType::Box, 2),
    )?;
    crate::imaging::encode_jpeg(&small, 82)
}

/// The image as a copy-QA reader is sent it: unchanged when its longer side
/// is at most `max_side` (no re-encoding, no loss), else downscaled to it
/// (fewer input tokens; text the size of an ad's stays legible).
pub fn for_reading(bytes: &[u8], max_side: u32) -> Result<Downscaled, String> {
    let format = image::guess_format(bytes).map_err(|e| e.to_string())?;
    let reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let (w, h) = reader.into_dimensions().map_err(|e| e.to_string())?;
    if w.max(h) <= max_side {
        return Ok(Downscaled {
            bytes: bytes.to_vec(),
            mime_type: super::mime_of(format).to_string(),
            size: (w, h),
        });
    }
    let img = decode_master(bytes).map_err(|e| e.to_string())?;
    reader_copy(&img, format, max_side)
}

/// What [`for_reading`] sends a reader, made from pixels already decoded
/// (`format`: the format of the bytes they were decoded from): a provider
/// makes it while it has the answer's pixels, so a read costs no second
/// decode. Callers send the bytes unchanged when the longer side is at
/// most `max_side`.
pub fn reader_copy(
    img: &DynamicImage,
    format: ImageFormat,
    max_side: u32,
) -> Result<Downscaled, String> {
    // A reader needs legible text, not archival pixels, and reads are most
    // of copy QA's CPU: an opaque image goes as JPEG quality 85 (4:2:0),
    // scaled bilinearly (text at ad sizes stays crisp at this ratio).
    let target = if img.color().has_alpha() {
        format
    } else {
        ImageFormat::Jpeg
    };
    let dst = scale_longer_side(
        img,
        target,
        max_side,
        ResizeAlg::Convolution(FilterType::Bilinear),
    )?;
    encode_downscaled(dst, target, 85)
}
