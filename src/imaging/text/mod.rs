//! Text typesetting: shaping, bidi, line breaking, auto-fit and drawing of
//! localized copy onto RGBA images.
//!
//! Used by the local proof renderer, and by overlay typesetting and contact
//! sheet labels. Everything goes through cosmic-text with real shaping
//! (Arabic joins, Indic reorders), the Unicode bidi algorithm (RTL copy is
//! given in logical order) and UAX #14 line breaking (no Japanese line starts
//! with `。` or `」`). Fonts are the embedded Noto set (see
//! `assets/fonts/README.md`); no system font is ever consulted, so the same
//! call produces the same pixels on every machine.
//!
//! Text direction comes from the locale, not from the first letter of the
//! copy: Arabic copy that starts with a Latin brand name is still laid out
//! right-to-left and [`Align::Start`] still means the right edge.

mod fonts;
pub(crate) use fonts::{check_font, register_brand_fonts};
#[cfg(test)]
mod tests;

use cosmic_text::{
    Align as CtAlign, Attrs, Buffer, Color, Family, FontSystem, Hinting, Metrics, Shaping,
    SwashCache, Weight, Wrap,
};
use image::RgbaImage;

/// Horizontal alignment inside the box. `Start` and `End` follow the text
/// direction of the locale: for Arabic or Hebrew, `Start` is the right edge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Align {
    /// The edge where reading starts (left for LTR, right for RTL).
    #[default]
    Start,
    /// Centred.
    Center,
    /// The edge where reading ends (right for LTR, left for RTL).
    End,
}

/// How to set a piece of copy.
#[derive(Debug, Clone, PartialEq)]
pub struct TextStyle {
    /// Preferred font size in pixels; the fit starts here.
    pub size_px: f32,
    /// The smallest size the fit may shrink to before reporting overflow.
    pub min_size_px: f32,
    /// Upper bound on the number of visual lines, if any.
    pub max_lines: Option<usize>,
    /// Straight (non-premultiplied) RGBA; the alpha scales the glyph coverage.
    pub color: [u8; 4],
    /// Horizontal alignment.
    pub align: Align,
    /// Line height as a multiple of the font size.
    pub line_height: f32,
    /// Bold weight. CJK has no embedded bold face and stays regular.
    pub bold: bool,
    /// The brand family (from [`register_brand_fonts`]) tried first for
    /// this copy: when its face lacks a glyph of it, the shipped Noto face
    /// for the locale sets it instead. `None`: the Noto face.
    pub brand_family: Option<&'static str>,
}

impl Default for TextStyle {
    fn default() -> Self {
        TextStyle {
            size_px: 48.0,
            min_size_px: 12.0,
            max_lines: None,
            color: [255, 255, 255, 255],
            align: Align::Start,
            line_height: 1.25,
            bold: false,
            brand_family: None,
        }
    }
}

/// A box on the image, in pixels. The text is laid out from its top edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TextBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width; lines wrap to it.
    pub width: u32,
    /// Height; the laid-out lines must fit in it.
    pub height: u32,
}

/// The outcome of a successful fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fitted {
    /// The font size used, between `min_size_px` and `size_px`.
    pub size_px: f32,
    /// Number of visual lines after wrapping. The laid-out block is
    /// `lines × size_px × line_height` pixels tall.
    pub lines: usize,
    /// Bounding box of the pixels actually inked, as `(x, y, width, height)`
    /// in image coordinates. `None` from [`fit_text`] (nothing is drawn),
    /// for empty text, or when every glyph fell outside the image.
    pub ink_bbox: Option<(u32, u32, u32, u32)>,
    /// The family the copy was set in (a brand family ends in `[brand]`;
    /// characters it lacks still fall back per script).
    pub family: &'static str,
}

impl Fitted {
    /// Height of the laid-out line block in pixels for this fit.
    pub fn block_height(&self, style: &TextStyle) -> f32 {
        self.lines as f32 * self.size_px * style.line_height
    }
}

/// Why text could not be set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TextError {
    /// The copy does not fit its box even at the minimum size.
    #[error("text does not fit its box even at {min_size_px}px: {text:?}")]
    Overflow {
        /// The copy that did not fit.
        text: String,
        /// The minimum size that was tried.
        min_size_px: f32,
    },
    /// A box with no area.
    #[error("text box has no area ({width}x{height} px)")]
    EmptyBox {
        /// Box width.
        width: u32,
        /// Box height.
        height: u32,
    },
    /// Sizes or line height that cannot be laid out.
    #[error("invalid text style: {0}")]
    InvalidStyle(String),
}

/// Whether `locale` (BCP-47, `_` tolerated) is written right-to-left, by its
/// script subtag when present (`az-Arab`, `pa-Arab`) and by the language's
/// default script otherwise (ar, he, fa, ur, ps, yi, dv, ckb, sd, ug, …).
pub fn is_rtl_locale(locale: &str) -> bool {
    let parts = fonts::parse_locale(locale);
    match parts.script.as_deref() {
        Some(script) => matches!(
            script,
            "Arab" | "Hebr" | "Thaa" | "Syrc" | "Nkoo" | "Adlm" | "Rohg" | "Mand" | "Samr"
        ),
        None => matches!(
            parts.language.as_str(),
            "ar" | "he"
                | "iw"
                | "fa"
                | "ur"
                | "ps"
                | "yi"
                | "ji"
                | "dv"
                | "ckb"
                | "sd"
                | "ug"
                | "ks"
                | "syr"
                | "arc"
                | "nqo"
        ),
    }
}

/// Lay out `text` (logical order, `\n` separates paragraphs) for `locale`
/// inside `bx`, shrinking from `size_px` towards `min_size_px` until it fits
/// (wrapped to the width, within the height and `max_lines`), and draw it
/// onto `img` with source-over blending.
///
/// Glyphs are clipped to the image, not to the box: ascenders and accents
/// may reach a few pixels outside a tight box.
pub fn draw_text(
    img: &mut RgbaImage,
    bx: TextBox,
    text: &str,
    locale: &str,
    style: &TextStyle,
) -> Result<Fitted, TextError> {
    let mut pooled = fonts::PooledFontSystem::checkout();
    let fs = pooled.get();
    let (buffer, mut fitted) = fit_in(fs, bx.width, bx.height, text, locale, style)?;
    if let Some(buffer) = buffer {
        fitted.ink_bbox = rasterize(fs, &buffer, img, bx, style.color);
    }
    Ok(fitted)
}

/// The same fit as [`draw_text`] without drawing, for plan-time overflow
/// checks. `ink_bbox` is always `None`.
pub fn fit_text(
    bx_w: u32,
    bx_h: u32,
    text: &str,
    locale: &str,
    style: &TextStyle,
) -> Result<Fitted, TextError> {
    let mut pooled = fonts::PooledFontSystem::checkout();
    fit_in(pooled.get(), bx_w, bx_h, text, locale, style).map(|(_, fitted)| fitted)
}

/// Characters of `text` that no embedded font can draw (they would show as
/// missing-glyph boxes), in order of first appearance. Whitespace and
/// invisible format characters are never reported. Useful to lint copy
/// before spending money on it (emoji, rare scripts).
#[cfg(test)]
pub(crate) fn unsupported_chars(text: &str, locale: &str) -> Vec<char> {
    let mut pooled = fonts::PooledFontSystem::checkout();
    let fs = pooled.get();
    let rtl = is_rtl_locale(locale);
    let prepared = prepare_paragraphs(text, rtl);
    let attrs = base_attrs(locale, false);
    let mut buffer = Buffer::new(fs, Metrics::new(32.0, 40.0));
    buffer.set_wrap(Wrap::None);
    buffer.set_size(None, None);
    buffer.set_text(&prepared, &attrs, Shaping::Advanced, None);
    buffer.shape_until_scroll(fs, false);
    let mut missing = Vec::new();
    for run in buffer.layout_runs() {
        for glyph in run.glyphs.iter().filter(|g| g.glyph_id == 0) {
            let Some(cluster) = run.text.get(glyph.start..glyph.end) else {
                continue;
            };
            for c in cluster.chars() {
                if !c.is_whitespace() && !is_invisible_format(c) && !missing.contains(&c) {
                    missing.push(c);
                }
            }
        }
    }
    missing
}

/// Format characters that shape to nothing visible.
#[cfg(test)]
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Strong direction of a character, approximated by block: enough to decide
/// whether a paragraph's first strong character agrees with the locale.
fn strong_direction(c: char) -> Option<bool> {
    let rtl = matches!(c,
        '\u{0590}'..='\u{08FF}'
        | '\u{FB1D}'..='\u{FDFF}'
        | '\u{FE70}'..='\u{FEFF}'
        | '\u{10800}'..='\u{10FFF}'
        | '\u{1E800}'..='\u{1EFFF}');
    if rtl && c.is_alphabetic() {
        Some(true)
    } else if c.is_alphabetic() {
        Some(false)
    } else {
        None
    }
}

/// Normalise line endings and make every paragraph's base direction match
/// the locale. cosmic-text picks the direction from the first strong
/// character (UAX #9 P2), so "Acme: خصم ٥٠٪" would become an LTR paragraph
/// with a reordered tail; a leading RLM (or LRM) fixes the base direction
/// without drawing anything. Paragraphs that already agree are left alone so
/// the mark never affects font choice for them.
fn prepare_paragraphs(text: &str, rtl: bool) -> String {
    let normalised = text.replace("\r\n", "\n");
    let mut out = String::with_capacity(normalised.len() + 8);
    for (i, para) in normalised.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let first_strong = para.chars().find_map(strong_direction);
        match (rtl, first_strong) {
            (true, Some(false) | None) if !para.is_empty() => out.push('\u{200F}'),
            (false, Some(true)) => out.push('\u{200E}'),
            _ => {}
        }
        out.push_str(para);
    }
    out
}

#[cfg(test)]
fn base_attrs(locale: &str, bold: bool) -> Attrs<'static> {
    family_attrs(fonts::family_for_locale(locale), bold)
}

fn family_attrs(family: &'static str, bold: bool) -> Attrs<'static> {
    Attrs::new().family(Family::Name(family)).weight(if bold {
        Weight::BOLD
    } else {
        Weight::NORMAL
    })
}

fn validate_style(style: &TextStyle) -> Result<(), TextError> {
    let ok = |v: f32| v.is_finite() && v > 0.0;
    if !ok(style.size_px) || !ok(style.min_size_px) || !ok(style.line_height) {
        return Err(TextError::InvalidStyle(format!(
            "sizes and line height must be positive (size {}, min {}, line height {})",
            style.size_px, style.min_size_px, style.line_height
        )));
    }
    if style.min_size_px > style.size_px {
        return Err(TextError::InvalidStyle(format!(
            "min_size_px {} is larger than size_px {}",
            style.min_size_px, style.size_px
        )));
    }
    if style.max_lines == Some(0) {
        return Err(TextError::InvalidStyle(
            "max_lines must be at least 1".into(),
        ));
    }
    Ok(())
}

/// What a layout at one size measured.
#[derive(Debug, Clone, Copy)]
struct Measure {
    lines: usize,
    max_width: f32,
    height: f32,
}

fn measure(
    fs: &mut FontSystem,
    buffer: &mut Buffer,
    size: f32,
    line_height: f32,
    wrap: Wrap,
) -> Measure {
    buffer.set_metrics(Metrics::new(size, size * line_height));
    buffer.set_wrap(wrap);
    buffer.shape_until_scroll(fs, false);
    let mut m = Measure {
        lines: 0,
        max_width: 0.0,
        height: 0.0,
    };
    for run in buffer.layout_runs() {
        m.lines += 1;
        m.max_width = m.max_width.max(run.line_w);
        m.height = m.height.max(run.line_top + run.line_height);
    }
    m
}

/// Fit sizes are searched in quarter pixels: finer steps change nothing
/// visible and a fixed grid keeps results reproducible.
const STEPS_PER_PX: f32 = 4.0;

/// The fit shared by [`draw_text`] and [`fit_text`]. Returns the buffer laid
/// out at the chosen size (`None` for blank text).
fn fit_in(
    fs: &mut FontSystem,
    w: u32,
    h: u32,
    text: &str,
    locale: &str,
    style: &TextStyle,
) -> Result<(Option<Buffer>, Fitted), TextError> {
    validate_style(style)?;
    if w == 0 || h == 0 {
        return Err(TextError::EmptyBox {
            width: w,
            height: h,
        });
    }
    if text.trim().is_empty() {
        return Ok((
            None,
            Fitted {
                size_px: style.size_px,
                lines: 0,
                ink_bbox: None,
                family: fonts::family_for_locale(locale),
            },
        ));
    }
    let rtl = is_rtl_locale(locale);
    let prepared = prepare_paragraphs(text, rtl);
    let family = fonts::family_for_text(fs, locale, text, style.brand_family);
    let align = match (style.align, rtl) {
        (Align::Start, false) | (Align::End, true) => CtAlign::Left,
        (Align::Start, true) | (Align::End, false) => CtAlign::Right,
        (Align::Center, _) => CtAlign::Center,
    };
    let attrs = family_attrs(family, style.bold);
    let mut buffer = Buffer::new(
        fs,
        Metrics::new(style.size_px, style.size_px * style.line_height),
    );
    // Unhinted outlines scale smoothly, so a quarter-pixel size change never
    // jumps a line break back and forth.
    buffer.set_hinting(Hinting::Disabled);
    buffer.set_size(Some(w as f32), None);
    // Shaping happens once here; changing size or wrap below only re-lays out.
    buffer.set_text(&prepared, &attrs, Shaping::Advanced, Some(align));

    // Half a pixel of slack: widths are sums of fractional advances.
    let fits = |m: Measure| {
        m.max_width <= w as f32 + 0.5
            && m.height <= h as f32 + 0.5
            && style.max_lines.is_none_or(|n| m.lines <= n)
    };
    let min_step = (style.min_size_px * STEPS_PER_PX).ceil() as u32;
    let max_step = ((style.size_px * STEPS_PER_PX).floor() as u32).max(min_step);
    let size_of = |step: u32| step as f32 / STEPS_PER_PX;

    // Prefer whole words: shrink with word wrapping first, and only break
    // inside words when no size keeps every word whole (long German
    // compounds, Thai, which has no spaces and no dictionary breaker here).
    for wrap in [Wrap::Word, Wrap::WordOrGlyph] {
        let top = measure(fs, &mut buffer, style.size_px, style.line_height, wrap);
        if fits(top) {
            let fitted = Fitted {
                size_px: style.size_px,
                lines: top.lines,
                ink_bbox: None,
                family,
            };
            return Ok((Some(buffer), fitted));
        }
        if !fits(measure(
            fs,
            &mut buffer,
            size_of(min_step),
            style.line_height,
            wrap,
        )) {
            continue;
        }
        // Invariant: `lo` fits, `hi` does not. Fit is not strictly monotonic
        // in size (a wrap can flip), but we only ever return a measured fit.
        let (mut lo, mut hi) = (min_step, max_step.max(min_step + 1));
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(measure(
                fs,
                &mut buffer,
                size_of(mid),
                style.line_height,
                wrap,
            )) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let m = measure(fs, &mut buffer, size_of(lo), style.line_height, wrap);
        let fitted = Fitted {
            size_px: size_of(lo),
            lines: m.lines,
            ink_bbox: None,
            family,
        };
        return Ok((Some(buffer), fitted));
    }
    Err(TextError::Overflow {
        text: text.to_string(),
        min_size_px: style.min_size_px,
    })
}

/// Draw a laid-out buffer at the box origin, source-over, clipped to the
/// image. Returns the inked bounding box as `(x, y, w, h)`.
fn rasterize(
    fs: &mut FontSystem,
    buffer: &Buffer,
    img: &mut RgbaImage,
    bx: TextBox,
    color: [u8; 4],
) -> Option<(u32, u32, u32, u32)> {
    // A cache per call: glyphs repeat within a text, rarely across texts at
    // the same fitted size, and a shared cache would grow without bound.
    let mut swash = SwashCache::new();
    let base = Color::rgba(color[0], color[1], color[2], 255);
    let (img_w, img_h) = (i64::from(img.width()), i64::from(img.height()));
    let (ox, oy) = (bx.x as f32, bx.y as f32);
    // x0, y0, x1, y1 (exclusive) of inked pixels.
    let mut ink: Option<(i64, i64, i64, i64)> = None;
    for run in buffer.layout_runs() {
        for glyph in run.glyphs {
            let physical = glyph.physical((ox, oy + run.line_y), 1.0);
            swash.with_pixels(fs, physical.cache_key, base, |dx, dy, px| {
                let x = i64::from(physical.x) + i64::from(dx);
                let y = i64::from(physical.y) + i64::from(dy);
                if x < 0 || y < 0 || x >= img_w || y >= img_h {
                    return;
                }
                let alpha = u32::from(px.a()) * u32::from(color[3]);
                if alpha == 0 {
                    return;
                }
                // In range: checked against the image size just above.
                let dst = img.get_pixel_mut(x as u32, y as u32);
                dst.0 = blend_over(
                    dst.0,
                    [px.r(), px.g(), px.b()],
                    alpha as f32 / (255.0 * 255.0),
                );
                ink = Some(match ink {
                    None => (x, y, x + 1, y + 1),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)),
                });
            });
        }
    }
    ink.map(|(x0, y0, x1, y1)| (x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32))
}

/// Source-over of a straight-alpha colour onto a straight-alpha pixel.
fn blend_over(dst: [u8; 4], src: [u8; 3], a: f32) -> [u8; 4] {
    let da = f32::from(dst[3]) / 255.0;
    let out_a = a + da * (1.0 - a);
    if out_a <= 0.0 {
        return [0, 0, 0, 0];
    }
    let ch = |s: u8, d: u8| {
        let v = (f32::from(s) * a + f32::from(d) * da * (1.0 - a)) / out_a;
        v.round().clamp(0.0, 255.0) as u8
    };
    [
        ch(src[0], dst[0]),
        ch(src[1], dst[1]),
        ch(src[2], dst[2]),
        (out_a * 255.0).round().clamp(0.0, 255.0) as u8,
    ]
}

/// The visual lines of a fit, each as its logical text, for tests that check
/// line breaking (kinsoku) without looking at pixels.
#[cfg(test)]
pub(crate) fn layout_lines(
    w: u32,
    h: u32,
    text: &str,
    locale: &str,
    style: &TextStyle,
) -> Result<(Fitted, Vec<String>), TextError> {
    let mut pooled = fonts::PooledFontSystem::checkout();
    let (buffer, fitted) = fit_in(pooled.get(), w, h, text, locale, style)?;
    let mut lines = Vec::new();
    if let Some(buffer) = buffer {
        for run in buffer.layout_runs() {
            let start = run.glyphs.iter().map(|g| g.start).min().unwrap_or(0);
            let end = run.glyphs.iter().map(|g| g.end).max().unwrap_or(0);
            let line: String = run
                .text
                .get(start..end)
                .unwrap_or_default()
                .chars()
                .filter(|c| !is_invisible_format(*c))
                .collect();
            lines.push(line);
        }
    }
    Ok((fitted, lines))
}

/// One shaped glyph, for tests: its id, the first character of its cluster
/// and its x position on a single unwrapped line.
#[cfg(test)]
pub(crate) struct ShapedGlyph {
    pub id: u16,
    pub first_char: char,
    pub x: f32,
    /// Family name of the face that drew it.
    pub family: String,
}

/// `text` shaped on one line, in visual order, for tests that check shaping
/// (Arabic joining) and bidi ordering directly.
#[cfg(test)]
pub(crate) fn shape_line(text: &str, locale: &str) -> Vec<ShapedGlyph> {
    let mut pooled = fonts::PooledFontSystem::checkout();
    let fs = pooled.get();
    let mut buffer = Buffer::new(fs, Metrics::new(32.0, 40.0));
    buffer.set_wrap(Wrap::None);
    let prepared = prepare_paragraphs(text, is_rtl_locale(locale));
    buffer.set_text(
        &prepared,
        &base_attrs(locale, false),
        Shaping::Advanced,
        None,
    );
    buffer.shape_until_scroll(fs, false);
    let mut out = Vec::new();
    for run in buffer.layout_runs() {
        for g in run.glyphs {
            let first_char = run
                .text
                .get(g.start..)
                .and_then(|s| s.chars().next())
                .unwrap_or('\0');
            let family = fs
                .db()
                .face(g.font_id)
                .and_then(|face| face.families.first())
                .map(|(name, _)| name.clone())
                .unwrap_or_default();
            out.push(ShapedGlyph {
                id: g.glyph_id,
                first_char,
                x: g.x,
                family,
            });
        }
    }
    out
}
