//! The `text` and `[[variants.text_boxes]]` keys of a variant in
//! `campaign.toml`: the raw serde shape and its validation, with the line
//! and column of every bad value.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::rows::{ColumnKind, Rows};
use super::span::at;
use crate::domain::{InputErrors, InputProblem};
use crate::imaging::text::Align;
use crate::imaging::{TextBoxSpec, VAlign};

/// A TOML number: integers are accepted where a fraction or a size is
/// expected (`x = 0`, `max_size = 72`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(crate) enum Num {
    /// `72`
    Int(i64),
    /// `0.5`
    Float(f64),
}

impl Num {
    /// The value as a float.
    pub(crate) fn get(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// One `[[variants.text_boxes]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTextBox {
    column: Spanned<String>,
    x: Spanned<Num>,
    y: Spanned<Num>,
    width: Spanned<Num>,
    height: Spanned<Num>,
    #[serde(default)]
    align: Option<Spanned<String>>,
    #[serde(default)]
    valign: Option<Spanned<String>>,
    #[serde(default)]
    padding: Option<Spanned<Num>>,
    #[serde(default)]
    max_lines: Option<Spanned<i64>>,
    #[serde(default)]
    min_size: Option<Spanned<Num>>,
    #[serde(default)]
    max_size: Option<Spanned<Num>>,
    #[serde(default)]
    color: Option<Spanned<String>>,
    #[serde(default)]
    scrim: Option<Spanned<String>>,
    #[serde(default)]
    bold: Option<bool>,
    #[serde(default)]
    line_height: Option<Spanned<Num>>,
}

/// Default smallest font size, in pixels at the master's size.
pub const DEFAULT_MIN_SIZE: f32 = 16.0;
/// Default largest font size, in pixels at the master's size.
pub const DEFAULT_MAX_SIZE: f32 = 72.0;
/// Default line height, as a multiple of the font size.
pub const DEFAULT_LINE_HEIGHT: f32 = 1.2;

/// Validate one `[[variants.text_boxes]]` table; `None` when it is unusable
/// (its problems are in `errors`).
fn parse_box(
    path: &Path,
    src: &str,
    variant: &str,
    b: RawTextBox,
    taken: &[TextBoxSpec],
    palette: &super::brand::Palette,
    errors: &mut InputErrors,
) -> Option<TextBoxSpec> {
    let at = |span: std::ops::Range<usize>, msg: String| at(path, src, span, msg);
    let mut ok = true;
    let mut fraction = |n: &Spanned<Num>, key: &str, positive: bool| -> f32 {
        let v = n.get_ref().get();
        let valid = v.is_finite() && (0.0..=1.0).contains(&v) && (!positive || v > 0.0);
        if !valid {
            ok = false;
            errors.push(at(
                n.span(),
                format!(
                    "text box `{}`: {key} = {v} must be a fraction of the image between 0 and 1{}",
                    b.column.get_ref(),
                    if positive { " (and above 0)" } else { "" }
                ),
            ));
        }
        v as f32
    };
    let x = fraction(&b.x, "x", false);
    let y = fraction(&b.y, "y", false);
    let width = fraction(&b.width, "width", true);
    let height = fraction(&b.height, "height", true);
    if x + width > 1.0001 {
        ok = false;
        errors.push(at(
            b.width.span(),
            format!(
                "text box `{}`: x + width = {} runs past the right edge of the image",
                b.column.get_ref(),
                x + width
            ),
        ));
    }
    if y + height > 1.0001 {
        ok = false;
        errors.push(at(
            b.height.span(),
            format!(
                "text box `{}`: y + height = {} runs past the bottom edge of the image",
                b.column.get_ref(),
                y + height
            ),
        ));
    }
    let align = match &b.align {
        None => Align::Start,
        Some(a) => match a.get_ref().as_str() {
            "start" => Align::Start,
            "center" | "centre" => Align::Center,
            "end" => Align::End,
            other => {
                ok = false;
                errors.push(at(
                    a.span(),
                    format!(
                        "text box `{}`: unknown align `{other}` (expected start, center or end; start is the reading side: right for Arabic and Hebrew)",
                        b.column.get_ref()
                    ),
                ));
                Align::Start
            }
        },
    };
    let valign = match &b.valign {
        None => VAlign::Top,
        Some(a) => match a.get_ref().as_str() {
            "top" => VAlign::Top,
            "middle" | "center" | "centre" => VAlign::Middle,
            "bottom" => VAlign::Bottom,
            other => {
                ok = false;
                errors.push(at(
                    a.span(),
                    format!(
                        "text box `{}`: unknown valign `{other}` (expected top, middle or bottom)",
                        b.column.get_ref()
                    ),
                ));
                VAlign::Top
            }
        },
    };
    let padding = match &b.padding {
        None => 0.0,
        Some(n) => {
            let v = n.get_ref().get();
            if v.is_finite() && (0.0..=2000.0).contains(&v) {
                v as f32
            } else {
                ok = false;
                errors.push(at(
                    n.span(),
                    format!(
                        "text box `{}`: padding = {v} must be pixels between 0 and 2000",
                        b.column.get_ref()
                    ),
                ));
                0.0
            }
        }
    };
    let max_lines = match &b.max_lines {
        None => None,
        Some(n) if *n.get_ref() >= 1 => Some(*n.get_ref() as usize),
        Some(n) => {
            ok = false;
            errors.push(at(
                n.span(),
                format!(
                    "text box `{}`: max_lines must be 1 or more",
                    b.column.get_ref()
                ),
            ));
            None
        }
    };
    let mut size = |n: &Option<Spanned<Num>>, key: &str, default: f32| -> f32 {
        match n {
            None => default,
            Some(n) => {
                let v = n.get_ref().get();
                if v.is_finite() && (1.0..=2000.0).contains(&v) {
                    v as f32
                } else {
                    ok = false;
                    errors.push(at(
                        n.span(),
                        format!(
                            "text box `{}`: {key} = {v} must be a font size in pixels between 1 and 2000",
                            b.column.get_ref()
                        ),
                    ));
                    default
                }
            }
        }
    };
    let min_size = size(&b.min_size, "min_size", DEFAULT_MIN_SIZE);
    let max_size = size(
        &b.max_size,
        "max_size",
        DEFAULT_MAX_SIZE.max(
            b.min_size
                .as_ref()
                .map_or(0.0, |n| n.get_ref().get() as f32),
        ),
    );
    if min_size > max_size {
        ok = false;
        let span = b.min_size.as_ref().map_or(b.column.span(), |n| n.span());
        errors.push(at(
            span,
            format!(
                "text box `{}`: min_size {min_size} is larger than max_size {max_size}",
                b.column.get_ref()
            ),
        ));
    }
    let line_height = match &b.line_height {
        None => DEFAULT_LINE_HEIGHT,
        Some(n) => {
            let v = n.get_ref().get();
            if v.is_finite() && (0.8..=3.0).contains(&v) {
                v as f32
            } else {
                ok = false;
                errors.push(at(
                    n.span(),
                    format!(
                        "text box `{}`: line_height = {v} must be between 0.8 and 3",
                        b.column.get_ref()
                    ),
                ));
                DEFAULT_LINE_HEIGHT
            }
        }
    };
    let mut colour = |c: &Option<Spanned<String>>| -> Option<[u8; 4]> {
        let c = c.as_ref()?;
        match palette.color(c.get_ref()) {
            Ok(v) => Some(v),
            Err(e) => {
                ok = false;
                errors.push(at(
                    c.span(),
                    format!("text box `{}`: {e}", b.column.get_ref()),
                ));
                None
            }
        }
    };
    let color = colour(&b.color).unwrap_or([255, 255, 255, 255]);
    let scrim = colour(&b.scrim);
    let column = b.column.get_ref().trim().to_string();
    if column.is_empty() || column.contains('.') || column == "id" {
        ok = false;
        errors.push(at(
            b.column.span(),
            format!(
                "text box column `{column}` must name a base copy column such as `headline` (per-locale columns like `headline.de-DE` are picked automatically)"
            ),
        ));
    }
    if taken.iter().any(|o: &TextBoxSpec| o.column == column) {
        ok = false;
        errors.push(at(
            b.column.span(),
            format!("variant `{variant}` has two text boxes for column `{column}`"),
        ));
    }
    let (line, col) = super::span::line_col(src, b.column.span().start);
    ok.then_some(TextBoxSpec {
        column,
        x,
        y,
        width,
        height,
        align,
        valign,
        padding,
        max_lines,
        min_size,
        max_size,
        line_height,
        color,
        scrim,
        bold: b.bold.unwrap_or(false),
        line,
        col,
    })
}

/// Validate a variant's `text` and `text_boxes`. `name_span` locates the
/// variant for problems that have no better place.
#[allow(clippy::too_many_arguments)]
pub(crate) fn parse_text_mode(
    path: &Path,
    src: &str,
    variant: &str,
    name_span: std::ops::Range<usize>,
    text: Option<&Spanned<String>>,
    boxes: Vec<Spanned<RawTextBox>>,
    palette: &super::brand::Palette,
    errors: &mut InputErrors,
) -> TextMode {
    let at = |span: std::ops::Range<usize>, msg: String| at(path, src, span, msg);
    let mode = match text {
        None => "model",
        Some(t) => match t.get_ref().as_str() {
            m @ ("model" | "overlay" | "edit") => m,
            other => {
                errors.push(at(
                    t.span(),
                    format!(
                        "variant `{variant}`: unknown text mode `{other}` (expected \"model\": the model paints the copy, \"overlay\": adloc typesets it on copy-free art, or \"edit\": the base locale's image is edited to carry each locale's copy)"
                    ),
                ));
                return TextMode::Model;
            }
        },
    };
    if mode != "overlay" {
        if let Some(first) = boxes.first() {
            errors.push(at(
                first.span(),
                format!(
                    "variant `{variant}` declares text_boxes but its text mode is \"{mode}\"; add `text = \"overlay\"` or remove the boxes"
                ),
            ));
        }
        return if mode == "edit" {
            TextMode::Edit
        } else {
            TextMode::Model
        };
    }
    if boxes.is_empty() {
        errors.push(at(
            text.map_or(name_span, |t| t.span()),
            format!(
                "variant `{variant}` has text = \"overlay\" but no [[variants.text_boxes]]: say where each copy column goes"
            ),
        ));
        return TextMode::Model;
    }
    TextMode::Overlay(parse_boxes(path, src, variant, boxes, palette, errors))
}

/// Validate a variant's `[[variants.text_boxes]]`: the overlay layout, or
/// the layout copy QA falls back to on a model-text variant. Unusable boxes
/// are left out (their problems are in `errors`).
pub(crate) fn parse_boxes(
    path: &Path,
    src: &str,
    variant: &str,
    boxes: Vec<Spanned<RawTextBox>>,
    palette: &super::brand::Palette,
    errors: &mut InputErrors,
) -> Vec<TextBoxSpec> {
    let mut out = Vec::with_capacity(boxes.len());
    for b in boxes {
        if let Some(spec) = parse_box(path, src, variant, b.into_inner(), &out, palette, errors) {
            out.push(spec);
        }
    }
    out
}

/// How a variant gets its copy onto the image.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TextMode {
    /// The model paints the copy quoted in the prompt (one image per locale).
    #[default]
    Model,
    /// The model paints copy-free art once; adloc typesets these boxes.
    Overlay(Vec<TextBoxSpec>),
    /// The model paints the base locale's image from the prompt; every
    /// other locale is an edit of that image replacing its copy with the
    /// locale's, so every market gets the same composition.
    Edit,
}

impl TextMode {
    /// The text boxes of an overlay variant, `None` for model text.
    pub fn boxes(&self) -> Option<&[TextBoxSpec]> {
        match self {
            TextMode::Model | TextMode::Edit => None,
            TextMode::Overlay(b) => Some(b),
        }
    }

    /// `model` or `overlay`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TextMode::Model => "model",
            TextMode::Overlay(_) => "overlay",
            TextMode::Edit => "edit",
        }
    }
}

/// Check that every text box (overlay or copy-QA fallback) names a column
/// the rows CSV has (as a base column or a per-locale override), at the
/// box's line in campaign.toml.
pub(crate) fn check_columns(
    variants: &[super::Variant],
    rows: &Rows,
    config_path: &Path,
    errors: &mut InputErrors,
) {
    for v in variants {
        let qa_boxes = v.qa.as_ref().map_or(&[][..], |q| &q.fallback_boxes[..]);
        for b in v.text.boxes().unwrap_or_default().iter().chain(qa_boxes) {
            let known = rows.kinds.iter().any(|k| match k {
                ColumnKind::Base(n) => *n == b.column,
                ColumnKind::Override { base, .. } => *base == b.column,
                ColumnKind::Id => false,
            });
            if !known {
                errors.push(InputProblem::at(
                    config_path,
                    b.line,
                    Some(b.col),
                    format!(
                        "text box of variant `{}` names column `{}`, which {} does not have",
                        v.name,
                        b.column,
                        rows.path.display()
                    ),
                ));
            }
        }
    }
}
