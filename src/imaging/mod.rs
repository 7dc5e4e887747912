//! Pure pixels: decoding and checking image bytes, resizing and encoding
//! renditions, the one colour parser, text shaping and fitting, composing
//! copy and brand layers (logos, images, buttons, shapes) onto art, and
//! drawing contact sheets. Nothing here touches the file system or the
//! network.

mod color;
pub(crate) mod compose;
pub(crate) mod layers;
pub(crate) mod resize;
mod sheet;
pub(crate) mod text;
mod weight;
pub mod xmp;

use image::ImageFormat;

pub use color::parse_color;
pub use compose::{
    BoxLayout, ComposeFailure, Step, TextBoxSpec, VAlign, compose_bytes, compose_steps_bytes,
};
pub use layers::{FracBox, Layer, LayerDraw, Picture, check_picture};
pub use resize::{
    Downscaled, Fit, MAX_SIDE, OutputFormat, PREVIEW_SIDE, RenditionSpec, aspect_check, cover_crop,
    decode_master, downscale, for_reading, preview_jpeg, reader_copy, render, render_pixels,
    thumbnail_jpeg,
};
pub use sheet::{Cell, Layout, render_sheet};
pub use weight::{WeightError, check_placement, encode_placement};

/// Why image bytes were rejected.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
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

/// Encode an image as baseline JPEG at `quality` (1–100). Grey images stay
/// grey; anything else is written as RGB (JPEG has no alpha). Every JPEG
/// adloc writes goes through here: `jpeg-encoder` is several times faster
/// than the `image` crate's encoder, which was the bulk of copy QA's and
/// the renditions' CPU.
pub fn encode_jpeg(img: &image::DynamicImage, quality: u8) -> Result<Vec<u8>, String> {
    encode_jpeg_as(img, quality, false)
}

/// [`encode_jpeg`], or with `compact` the smallest file the encoder makes
/// at that quality: 4:2:0 chroma at every quality, progressive scans and
/// Huffman tables optimized for the image (what the placement weight
/// search falls back to).
pub(crate) fn encode_jpeg_as(
    img: &image::DynamicImage,
    quality: u8,
    compact: bool,
) -> Result<Vec<u8>, String> {
    let (w, h) = (img.width(), img.height());
    let (w16, h16) = (
        u16::try_from(w).map_err(|_| format!("{w} px is too wide for JPEG"))?,
        u16::try_from(h).map_err(|_| format!("{h} px is too tall for JPEG"))?,
    );
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    if compact {
        enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
        enc.set_progressive(true);
        enc.set_optimized_huffman_tables(true);
    }
    let res = match img {
        image::DynamicImage::ImageLuma8(g) => {
            enc.encode(g.as_raw(), w16, h16, jpeg_encoder::ColorType::Luma)
        }
        image::DynamicImage::ImageRgb8(rgb) => {
            enc.encode(rgb.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb)
        }
        other => enc.encode(
            other.to_rgb8().as_raw(),
            w16,
            h16,
            jpeg_encoder::ColorType::Rgb,
        ),
    };
    res.map_err(|e| e.to_string())?;
    Ok(out)
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
pub fn check(bytes: &[u8], declared_mime: &str) -> Result<Checked, ImageError> {
    check_decoded(bytes, declared_mime).map(|(checked, _)| checked)
}

/// [`check`], keeping the decoded pixels for whatever is made of them next.
pub fn check_decoded(
    bytes: &[u8],
    declared_mime: &str,
) -> Result<(Checked, image::DynamicImage), ImageError> {
    let format = image::guess_format(bytes).map_err(|e| ImageError::Undecodable(e.to_string()))?;
    let actual = mime_of(format);
    if !declared_mime.eq_ignore_ascii_case(actual) {
        return Err(ImageError::MimeMismatch {
            declared: declared_mime.to_string(),
            actual: actual.to_string(),
        });
    }
    let img = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| ImageError::Undecodable(e.to_string()))?;
    let checked = Checked {
        width: img.width(),
        height: img.height(),
        format,
    };
    Ok((checked, img))
}

/// Check only what the header tells (format and MIME type), for bytes a
/// provider has already decoded in full; `dims` are the dimensions it found.
pub fn check_header(
    bytes: &[u8],
    declared_mime: &str,
    dims: (u32, u32),
) -> Result<Checked, ImageError> {
    let format = image::guess_format(bytes).map_err(|e| ImageError::Undecodable(e.to_string()))?;
    let actual = mime_of(format);
    if !declared_mime.eq_ignore_ascii_case(actual) {
        return Err(ImageError::MimeMismatch {
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
            Err(ImageError::MimeMismatch { .. })
        ));
        assert!(matches!(
            check(&bytes[..bytes.len() / 2], "image/png"),
            Err(ImageError::Undecodable(_))
        ));
    }
}
