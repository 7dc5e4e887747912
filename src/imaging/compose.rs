//! Typesetting copy onto art: text boxes (fractions of the image, sizes in
//! pixels at the model's documented size), scrims, fitting and drawing, and
//! encoding the composite in the art's format. Pure: bytes in, bytes out.

use std::io::Cursor;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, ImageFormat, RgbaImage};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::layers::{Layer, draw_layer};
use super::text::{self, Align, TextBox, TextError, TextStyle};
use crate::domain::Reason;

/// JPEG quality of composites whose art is JPEG.
const JPEG_QUALITY: u8 = 90;

/// Vertical placement of the text block inside its box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VAlign {
    /// Lines start at the top of the box.
    #[default]
    Top,
    /// The block is centred vertically (buttons).
    Middle,
    /// The block sits on the bottom of the box.
    Bottom,
}

/// One `[[variants.text_boxes]]` entry, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TextBoxSpec {
    /// The base copy column typeset in this box (`headline`); per-locale
    /// columns are found along the locale's fallback chain.
    pub column: String,
    /// Left edge as a fraction of the image width.
    pub x: f32,
    /// Top edge as a fraction of the image height.
    pub y: f32,
    /// Width as a fraction of the image width.
    pub width: f32,
    /// Height as a fraction of the image height.
    pub height: f32,
    /// `start` follows the locale's direction (right edge for Arabic).
    pub align: Align,
    /// Where the laid-out lines sit vertically in the box.
    pub valign: VAlign,
    /// Inset of the text from the box edges, in pixels at the master's
    /// documented size (the scrim still fills the whole box).
    pub padding: f32,
    /// At most this many lines.
    pub max_lines: Option<usize>,
    /// Smallest font size in pixels at the master's documented size.
    pub min_size: f32,
    /// Largest (starting) font size in pixels at the master's documented size.
    pub max_size: f32,
    /// Line height as a multiple of the font size.
    pub line_height: f32,
    /// Text colour, straight RGBA.
    pub color: [u8; 4],
    /// Optional box filled behind the text (the whole box), straight RGBA.
    pub scrim: Option<[u8; 4]>,
    /// Bold face (Latin, Cyrillic, Greek, Arabic, Hebrew; CJK stays regular).
    pub bold: bool,
    /// Line of `column` in campaign.toml.
    pub line: u64,
    /// Column of `column` in campaign.toml.
    pub col: u64,
}

impl TextBoxSpec {
    /// The box in pixels on an image of `w` × `h`, clamped to the image.
    pub fn pixel_box(&self, w: u32, h: u32) -> TextBox {
        let px = |f: f32, total: u32| ((f * total as f32).round() as u32).min(total);
        let x = px(self.x, w).min(w.saturating_sub(1));
        let y = px(self.y, h).min(h.saturating_sub(1));
        TextBox {
            x,
            y,
            width: px(self.width, w).min(w - x).max(1),
            height: px(self.height, h).min(h - y).max(1),
        }
    }

    /// The area the text is fitted into: the pixel box inset by `padding`
    /// (scaled), never smaller than 1 × 1.
    pub fn inner_box(&self, w: u32, h: u32, scale: f32) -> TextBox {
        let b = self.pixel_box(w, h);
        let pad = (self.padding * scale).round().max(0.0) as u32;
        let pad_x = pad.min(b.width.saturating_sub(1) / 2);
        let pad_y = pad.min(b.height.saturating_sub(1) / 2);
        TextBox {
            x: b.x + pad_x,
            y: b.y + pad_y,
            width: (b.width - 2 * pad_x).max(1),
            height: (b.height - 2 * pad_y).max(1),
        }
    }

    /// The text style, with sizes multiplied by `scale` (actual art width ÷
    /// documented width).
    pub fn style(&self, scale: f32) -> TextStyle {
        TextStyle {
            size_px: self.max_size * scale,
            min_size_px: self.min_size * scale,
            max_lines: self.max_lines,
            color: self.color,
            align: self.align,
            line_height: self.line_height,
            bold: self.bold,
            brand_family: None,
        }
    }

    /// Canonical JSON of every setting that changes the pixels.
    pub(crate) fn settings_json(&self) -> serde_json::Value {
        json!({
            "column": self.column,
            "x": self.x, "y": self.y, "width": self.width, "height": self.height,
            "align": format!("{:?}", self.align),
            "valign": format!("{:?}", self.valign),
            "padding": self.padding,
            "max_lines": self.max_lines,
            "min_size": self.min_size, "max_size": self.max_size,
            "line_height": self.line_height,
            "color": hex::encode(self.color),
            "scrim": self.scrim.map(hex::encode),
            "bold": self.bold,
        })
    }
}

/// How one box was set, recorded with the composite and in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxLayout {
    /// The copy column.
    pub column: String,
    /// Font size used, in pixels of the composite.
    pub size_px: f32,
    /// Visual lines after wrapping.
    pub lines: usize,
    /// The font family the copy was set in (a brand face ends in
    /// `[brand]`); absent for composites recorded before adloc said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font: Option<String>,
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
fn fill_scrim(img: &mut RgbaImage, bx: TextBox, color: [u8; 4]) {
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

/// One thing drawn on a composite, in order: a text box with its copy, or
/// a brand layer.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// A text box and the copy set in it.
    Text(&'a TextBoxSpec, &'a str),
    /// A logo, image, shape or button background.
    Layer(&'a Layer),
}

/// Typeset `spec` onto decoded art. `nominal_width` is the model's documented
/// width for the variant (sizes scale by actual ÷ nominal). Every box is
/// tried, so an overflow detail lists them all.
#[cfg(test)]
pub fn compose_image(
    art: &mut RgbaImage,
    boxes: &[(TextBoxSpec, String)],
    locale: &str,
    nominal_width: Option<u32>,
) -> Result<Vec<BoxLayout>, ComposeFailure> {
    let steps: Vec<Step<'_>> = boxes.iter().map(|(b, c)| Step::Text(b, c)).collect();
    compose_steps(art, &steps, locale, nominal_width, None)
}

/// Draw `steps` in order onto decoded art (text boxes typeset as in
/// [`compose_image`], layers drawn with [`draw_layer`]). Every piece of
/// copy is set in `brand_family` first (see [`TextStyle::brand_family`]).
pub fn compose_steps(
    art: &mut RgbaImage,
    steps: &[Step<'_>],
    locale: &str,
    nominal_width: Option<u32>,
    brand_family: Option<&'static str>,
) -> Result<Vec<BoxLayout>, ComposeFailure> {
    let (w, h) = (art.width(), art.height());
    let scale = nominal_width.map_or(1.0, |n| w as f32 / n.max(1) as f32);
    let mut layout = Vec::with_capacity(steps.len());
    let mut overflow = Vec::new();
    let mut other = Vec::new();
    for step in steps {
        let (b, copy) = match step {
            Step::Text(b, copy) => (*b, *copy),
            Step::Layer(l) => {
                if let Err(e) = draw_layer(art, l, locale) {
                    other.push(format!("layer: {e}"));
                }
                continue;
            }
        };
        let outer = b.pixel_box(w, h);
        let bx = b.inner_box(w, h, scale);
        let style = TextStyle {
            brand_family,
            ..b.style(scale)
        };
        // Fit first so a box that overflows leaves no scrim behind either.
        match text::fit_text(bx.width, bx.height, copy, locale, &style) {
            Ok(fit) => {
                if let Some(s) = b.scrim {
                    fill_scrim(art, outer, s);
                }
                let pinned = TextStyle {
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
                let placed = TextBox {
                    y: bx.y + offset,
                    height: bx.height - offset,
                    ..bx
                };
                match text::draw_text(art, placed, copy, locale, &pinned) {
                    Ok(f) => layout.push(BoxLayout {
                        column: b.column.clone(),
                        size_px: f.size_px,
                        lines: f.lines,
                        font: Some(f.family.to_string()),
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
    boxes: &[(TextBoxSpec, String)],
    locale: &str,
    nominal_width: Option<u32>,
) -> Result<Composed, ComposeFailure> {
    let steps: Vec<Step<'_>> = boxes.iter().map(|(b, c)| Step::Text(b, c)).collect();
    compose_steps_bytes(art_bytes, &steps, locale, nominal_width, None)
}

/// [`compose_bytes`] with brand layers and the brand family: decode, draw
/// `steps` in order, encode in the art's format.
pub fn compose_steps_bytes(
    art_bytes: &[u8],
    steps: &[Step<'_>],
    locale: &str,
    nominal_width: Option<u32>,
    brand_family: Option<&'static str>,
) -> Result<Composed, ComposeFailure> {
    let undecodable = |e: String| ComposeFailure {
        reason: Reason::UndecodableImage,
        detail: format!("the art does not decode: {e}"),
    };
    let format = image::guess_format(art_bytes).map_err(|e| undecodable(e.to_string()))?;
    let mut img = image::load_from_memory_with_format(art_bytes, format)
        .map_err(|e| undecodable(e.to_string()))?
        .to_rgba8();
    let layout = compose_steps(&mut img, steps, locale, nominal_width, brand_family)?;
    let (width, height) = img.dimensions();
    let encode_err = |e: image::ImageError| ComposeFailure {
        reason: Reason::Other,
        detail: format!("cannot encode the composite: {e}"),
    };
    let mut out = Cursor::new(Vec::new());
    let format = if format == ImageFormat::Jpeg {
        let rgb = image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(img).to_rgb8());
        out = Cursor::new(
            super::encode_jpeg(&rgb, JPEG_QUALITY).map_err(|e| ComposeFailure {
                reason: Reason::Other,
                detail: format!("cannot encode the composite: {e}"),
            })?,
        );
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
