//! Encoding to a file-weight budget, and the checks a platform makes of a
//! file. Pure functions: pixels and a limit in, bytes and the quality
//! reached out.
//!
//! JPEG: the plain encode first (what a rendition writes); over the limit,
//! the compact encoding (4:2:0, progressive, optimized Huffman tables) at
//! the same quality; still over, a search for the highest quality between
//! the floor and the start that fits. The search interpolates on the log of
//! the size (file size is close to exponential in quality over this range),
//! so it lands in three or four encodes instead of the five a bisection of
//! 25 qualities needs. PNG: lossless first, then a NeuQuant palette of 256,
//! 128 and 64 colours.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::domain::placement::{PlacementFormat, PlacementSpec};

/// The fewest colours a PNG placement is quantized to.
pub const MIN_PNG_COLORS: u16 = 64;

/// A file that fits its limit.
#[derive(Debug, Clone)]
pub struct Weighed {
    /// The encoded file.
    pub bytes: Vec<u8>,
    /// The JPEG quality it was encoded at (`None` for PNG).
    pub quality: Option<u8>,
    /// Whether the compact JPEG encoding (4:2:0, progressive) was needed.
    pub compact: bool,
    /// The palette size, for a quantized PNG.
    pub colors: Option<u16>,
    /// How many encodes it took (1 when the plain encode fit).
    pub encodes: u32,
}

/// Why no file was made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightError {
    /// Even the floor is over the limit.
    #[error(
        "{reached} bytes ({reached_kb:.1} KB) at {floor}, over the limit of {limit} bytes ({limit_kb:.1} KB)",
        reached_kb = *reached as f64 / 1024.0,
        limit_kb = *limit as f64 / 1024.0
    )]
    OverWeight {
        /// The smallest file the floor made.
        reached: u64,
        /// The limit.
        limit: u64,
        /// The floor it was made at (`JPEG quality 60, 4:2:0 progressive`).
        floor: String,
    },
    /// The encoder failed.
    #[error("encoding failed: {0}")]
    Encode(String),
}

fn jpeg(img: &DynamicImage, q: u8, compact: bool) -> Result<Vec<u8>, WeightError> {
    super::encode_jpeg_as(img, q, compact).map_err(WeightError::Encode)
}

/// Encode `img` as JPEG within `max_bytes`, starting at `start` quality
/// and going no lower than `floor`.
pub fn jpeg_within(
    img: &DynamicImage,
    start: u8,
    floor: u8,
    max_bytes: u64,
) -> Result<Weighed, WeightError> {
    let floor = floor.min(start);
    let fits = |b: &Vec<u8>| b.len() as u64 <= max_bytes;
    let plain = jpeg(img, start, false)?;
    if fits(&plain) {
        return Ok(Weighed {
            bytes: plain,
            quality: Some(start),
            compact: false,
            colors: None,
            encodes: 1,
        });
    }
    let mut encodes = 2;
    let top = jpeg(img, start, true)?;
    if fits(&top) {
        return Ok(Weighed {
            bytes: top,
            quality: Some(start),
            compact: true,
            colors: None,
            encodes,
        });
    }
    let bottom = jpeg(img, floor, true)?;
    encodes += 1;
    if !fits(&bottom) {
        return Err(WeightError::OverWeight {
            reached: bottom.len() as u64,
            limit: max_bytes,
            floor: format!("JPEG quality {floor}, 4:2:0 progressive"),
        });
    }
    // Invariant: `lo` fits (its bytes in `best`), `hi` does not.
    let (mut lo, mut lo_len) = (floor, bottom.len() as f64);
    let (mut hi, mut hi_len) = (start, top.len() as f64);
    let mut best = bottom;
    let target = max_bytes as f64;
    while hi - lo > 1 {
        let t = ((target.ln() - lo_len.ln()) / (hi_len.ln() - lo_len.ln())).clamp(0.0, 1.0);
        let guess = f64::from(lo) + t * f64::from(hi - lo);
        // Aim a little low of the interpolated point: an overshoot costs a
        // whole extra encode, an undershoot only narrows the bracket.
        let q = (guess.floor() as u8).clamp(lo + 1, hi - 1);
        let b = jpeg(img, q, true)?;
        encodes += 1;
        if fits(&b) {
            (lo, lo_len) = (q, b.len() as f64);
            best = b;
        } else {
            (hi, hi_len) = (q, b.len() as f64);
        }
    }
    Ok(Weighed {
        bytes: best,
        quality: Some(lo),
        compact: true,
        colors: None,
        encodes,
    })
}

fn png_rgb(img: &DynamicImage) -> Result<Vec<u8>, WeightError> {
    use image::ImageEncoder;
    let rgb = img.to_rgb8();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(
        rgb.as_raw(),
        rgb.width(),
        rgb.height(),
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| WeightError::Encode(e.to_string()))?;
    Ok(out)
}

/// An indexed PNG of `img` with a NeuQuant palette of `colors` entries.
fn png_indexed(img: &DynamicImage, colors: u16) -> Result<Vec<u8>, WeightError> {
    let rgba = img.to_rgba8();
    // Sample factor 10: NeuQuant's recommended speed/quality balance.
    let nq = color_quant::NeuQuant::new(10, usize::from(colors), rgba.as_raw());
    let indices: Vec<u8> = rgba
        .as_raw()
        .chunks_exact(4)
        .map(|p| nq.index_of(p) as u8)
        .collect();
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, rgba.width(), rgba.height());
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(nq.color_map_rgb());
        enc.set_compression(png::Compression::High);
        let mut w = enc
            .write_header()
            .map_err(|e| WeightError::Encode(e.to_string()))?;
        w.write_image_data(&indices)
            .map_err(|e| WeightError::Encode(e.to_string()))?;
    }
    Ok(out)
}

/// Encode `img` as PNG within `max_bytes`: lossless if it fits, else the
/// largest palette down to [`MIN_PNG_COLORS`] that does.
pub fn png_within(img: &DynamicImage, max_bytes: u64) -> Result<Weighed, WeightError> {
    let full = png_rgb(img)?;
    if full.len() as u64 <= max_bytes {
        return Ok(Weighed {
            bytes: full,
            quality: None,
            compact: false,
            colors: None,
            encodes: 1,
        });
    }
    let mut encodes = 1;
    let mut smallest = full.len() as u64;
    let mut colors = 256u16;
    while colors >= MIN_PNG_COLORS {
        let b = png_indexed(img, colors)?;
        encodes += 1;
        smallest = smallest.min(b.len() as u64);
        if b.len() as u64 <= max_bytes {
            return Ok(Weighed {
                bytes: b,
                quality: None,
                compact: false,
                colors: Some(colors),
                encodes,
            });
        }
        colors /= 2;
    }
    Err(WeightError::OverWeight {
        reached: smallest,
        limit: max_bytes,
        floor: format!("a PNG palette of {MIN_PNG_COLORS} colours"),
    })
}

/// Encode a placement's pixels within its weight limit.
pub fn encode_placement(img: &DynamicImage, spec: &PlacementSpec) -> Result<Weighed, WeightError> {
    match spec.format() {
        Some(PlacementFormat::Png) => png_within(img, spec.max_bytes),
        Some(PlacementFormat::Jpeg) => jpeg_within(
            img,
            crate::domain::placement::START_QUALITY,
            spec.min_quality,
            spec.max_bytes,
        ),
        Some(PlacementFormat::Gif) | None => Err(WeightError::Encode(format!(
            "placement {} accepts no format adloc writes",
            spec.id
        ))),
    }
}

/// Check a written placement file the way its platform will: the exact
/// frame (and the ratio tolerance and minimum size where stated), the
/// weight, an accepted format, sRGB (no ICC profile, or an sRGB one) and
/// no alpha channel in a JPEG. Reads the header only. `Err` says what
/// broke the rule.
pub fn check_placement(bytes: &[u8], spec: &PlacementSpec) -> Result<(), String> {
    let weight = bytes.len() as u64;
    if weight > spec.max_bytes {
        return Err(format!(
            "{weight} bytes, over the limit of {} bytes",
            spec.max_bytes
        ));
    }
    let format = image::guess_format(bytes).map_err(|e| format!("not an image file: {e}"))?;
    let as_placement = match format {
        ImageFormat::Jpeg => PlacementFormat::Jpeg,
        ImageFormat::Png => PlacementFormat::Png,
        ImageFormat::Gif => PlacementFormat::Gif,
        other => return Err(format!("{other:?} is not a format the platform accepts")),
    };
    if !spec.formats.contains(&as_placement) {
        return Err(format!(
            "{} is not among the accepted formats",
            as_placement.as_str()
        ));
    }
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(|e| format!("header does not decode: {e}"))?;
    let (w, h) = decoder.dimensions();
    if (w, h) != (spec.width, spec.height) {
        return Err(format!(
            "frame {w}x{h}, expected exactly {}x{}",
            spec.width, spec.height
        ));
    }
    if let Some(tol) = spec.aspect_tolerance {
        let off = (f64::from(w) / f64::from(h)) / spec.ratio() - 1.0;
        if off.abs() > tol + 1e-12 {
            return Err(format!(
                "ratio {:.4} is more than {:.1} % from {:.4}",
                f64::from(w) / f64::from(h),
                tol * 100.0,
                spec.ratio()
            ));
        }
    }
    if let Some((mw, mh)) = spec.min_size
        && (w < mw || h < mh)
    {
        return Err(format!("frame {w}x{h} is under the minimum {mw}x{mh}"));
    }
    if format == ImageFormat::Jpeg && decoder.color_type().has_alpha() {
        return Err("a JPEG with an alpha channel".into());
    }
    let icc = decoder
        .icc_profile()
        .map_err(|e| format!("colour profile unreadable: {e}"))?;
    if let Some(p) = icc
        && !p.windows(4).any(|w| w == b"sRGB")
    {
        return Err("carries a colour profile that is not sRGB".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::placement::{BUILT_IN, built_in};

    /// Per-pixel noise: the texture of a busy photo, the worst case for
    /// JPEG weight.
    pub(crate) fn noisy(w: u32, h: u32, seed: u64) -> DynamicImage {
        let mut rng = fastrand::Rng::with_seed(seed);
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            let base = ((x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8);
            image::Rgb([
                base.0.wrapping_add(rng.u8(0..96)),
                base.1.wrapping_add(rng.u8(0..96)),
                rng.u8(..),
            ])
        }))
    }

    #[test]
    fn a_noisy_300x250_over_150_kb_at_quality_85_fits_by_lowering_quality() {
        let img = noisy(300, 250, 7);
        let plain = crate::imaging::encode_jpeg(&img, 85).unwrap();
        let spec = built_in("google-display-300x250").unwrap().spec();
        // The premise: the plain rendition is too heavy for the slot.
        assert!(
            plain.len() as u64 > spec.max_bytes / 3,
            "plain {} bytes",
            plain.len()
        );
        let limit = plain.len() as u64 * 6 / 10;
        let w = jpeg_within(&img, 85, 40, limit).unwrap();
        assert!(w.bytes.len() as u64 <= limit);
        let q = w.quality.unwrap();
        assert!(w.compact && (40..85).contains(&q));
        // The highest quality that fits: one step up does not.
        let above = crate::imaging::encode_jpeg_as(&img, q + 1, true).unwrap();
        assert!(above.len() as u64 > limit, "quality {} also fits", q + 1);
        let decoded = image::load_from_memory(&w.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (300, 250));
    }

    #[test]
    fn a_file_that_fits_plain_is_encoded_once_at_the_start_quality() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            300,
            250,
            image::Rgb([200, 30, 40]),
        ));
        let w = jpeg_within(&img, 85, 60, 150 * 1024).unwrap();
        assert_eq!((w.quality, w.compact, w.encodes), (Some(85), false, 1));
        assert_eq!(w.bytes, crate::imaging::encode_jpeg(&img, 85).unwrap());
    }

    #[test]
    fn an_impossible_limit_is_over_weight_with_the_weight_reached() {
        let img = noisy(300, 250, 9);
        match jpeg_within(&img, 85, 60, 2_000) {
            Err(WeightError::OverWeight {
                reached,
                limit,
                floor,
            }) => {
                assert!(reached > 2_000);
                assert_eq!(limit, 2_000);
                assert!(floor.contains("60"), "{floor}");
            }
            other => panic!("expected over weight, got {other:?}"),
        }
    }

    #[test]
    fn a_png_over_its_limit_is_quantized_to_a_palette() {
        let img = noisy(200, 160, 3);
        let full = png_rgb(&img).unwrap();
        let w = png_within(&img, full.len() as u64 * 2 / 3).unwrap();
        assert!(w.colors.is_some());
        let decoded = image::load_from_memory(&w.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (200, 160));
        assert!(png_within(&img, 100).is_err());
    }

    #[test]
    fn the_check_refuses_a_wrong_frame_an_alpha_jpeg_is_impossible_and_weight_counts() {
        let spec = built_in("google-display-300x250").unwrap().spec();
        let img = noisy(300, 250, 1);
        let ok = jpeg_within(&img, 85, 60, spec.max_bytes).unwrap();
        assert_eq!(check_placement(&ok.bytes, &spec), Ok(()));
        let wrong = crate::imaging::encode_jpeg(&noisy(300, 251, 1), 85).unwrap();
        assert!(
            check_placement(&wrong, &spec)
                .unwrap_err()
                .contains("300x251")
        );
        let mut small = spec.clone();
        small.max_bytes = 10;
        assert!(
            check_placement(&ok.bytes, &small)
                .unwrap_err()
                .contains("over the limit")
        );
        let png = png_rgb(&img).unwrap();
        let mut jpeg_only = spec.clone();
        jpeg_only.formats = vec![PlacementFormat::Jpeg];
        jpeg_only.max_bytes = u64::MAX;
        assert!(
            check_placement(&png, &jpeg_only)
                .unwrap_err()
                .contains("png")
        );
        // Every built-in's own frame passes its own check.
        for b in BUILT_IN {
            let s = b.spec();
            let flat = DynamicImage::new_rgb8(s.width, s.height);
            let w = encode_placement(&flat, &s).unwrap();
            assert_eq!(check_placement(&w.bytes, &s), Ok(()), "{}", b.id);
        }
    }
}
