//! Overlay text: the model paints copy-free art once per row × variant, and
//! adloc typesets every locale's copy onto it locally, so the copy is always
//! exact and extra locales cost nothing.
//!
//! # Text modes
//!
//! A variant has `text = "model"` (the default: the prompt quotes the copy
//! and the model paints it, one paid image per row × locale × variant) or
//! `text = "overlay"` with `[[variants.text_boxes]]` (see [`TextBoxSpec`]).
//!
//! # How an overlay variant flows through the pipeline
//!
//! 1. **Expand** ([`expand_art`]): one provider job per row × variant, with
//!    the locale fixed to [`ART_LOCALE`] (`und`). Its identity is
//!    `campaign/und/variant/row`, so it does not depend on the locales, and
//!    its master lands at `<out>/<campaign>/_art/<variant>/<row>.<ext>`.
//! 2. **Queue, dispatch, settle**: unchanged. Art jobs are ordinary jobs:
//!    realtime or batch, retries, budget, crash safety, incremental reruns.
//! 3. **Compose** ([`compose::compose_all`], after dispatch): for every row ×
//!    locale × overlay variant whose art is done, each box's column is
//!    resolved along the locale's CLDR fallback chain, auto-fitted (shrinking
//!    from `max_size` to `min_size`) and drawn with [`crate::text::draw_text`]
//!    (real shaping, bidi, UAX #14 / kinsoku line breaking, per-locale CJK
//!    faces). The result is written atomically to
//!    `<out>/<campaign>/<locale>/<variant>/<row>.<ext>` (the same place a
//!    model-text asset would be), in the art's format.
//! 4. **Record**: composites live in their own table (migration
//!    `20261127000003_overlay.sql`), keyed by the art job id, the locale and
//!    a *compose hash* over the copy, the box settings and the art's SHA-256.
//!    A rerun with the same hash does nothing; changed copy re-composes
//!    without any provider call; new art re-composes every locale.
//! 5. **Manifest** ([`build_manifest`]): each composite is an ordinary asset
//!    entry (requested and resolved locale, copy resolution, path, checksum,
//!    dimensions) carrying the art's provider, model, mode, prompt and
//!    request hash, plus an `overlay` object (art path and checksum, compose
//!    hash, fitted size and line count per box). A copy that cannot fit at
//!    `min_size` is a failure with reason `text_overflow` and the copy in the
//!    detail. Art masters are listed under `art`; they are not deliverables.
//!
//! # The art prompt (decision)
//!
//! The art is shared by every locale, so its template is rendered with a
//! context that has **no `locale`** and **no copy**: `row` holds the id and
//! the free columns only (everything except localized copy columns and the
//! columns named by the variant's text boxes), plus `variant` (with
//! `text = "overlay"` and the `text_boxes` as fractions, so a template can
//! ask for calm areas there) and `campaign`. The locale helpers have no
//! locale either. A template that uses any of these fails the load with an
//! input error naming the template file and line and explaining why.
//!
//! # Cost (decision)
//!
//! A six-locale overlay variant buys one image per row instead of six; the
//! estimate in `plan` and the budget check in `run` count jobs, so they show
//! it without special cases. In the manifest, a composite's `cost_usd` is its
//! share of the art (art cost ÷ number of campaign locales), so the shares of
//! a row × variant add up to what its art cost. `totals.cost_usd` counts the
//! art in full (what was paid), even when a locale overflowed and has no
//! asset to carry its share.
//!
//! # Sizes
//!
//! Box positions are fractions of the image. `min_size` and `max_size` are
//! pixels at the model's documented size for the variant's aspect ratio and
//! size tier ([`crate::model::ModelFamily::pixel_size`]); if the art comes
//! back at another size, sizes scale with its width, so the layout `plan`
//! checked is the layout drawn.

pub mod compose;
mod config;
pub mod plan;
pub mod store;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::campaign::{Campaign, Row, Variant};
use crate::error::{InputErrors, InputProblem};
use crate::expand::{JobKey, JobSpec, request_hash};
use crate::locale::Locale;
use crate::prompt::Prompts;
use crate::provider::{ImageRequest, ProofText};
use crate::text::{Align, TextBox, TextStyle};

pub use compose::compose_all;
pub use config::{DEFAULT_LINE_HEIGHT, DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE, parse_color};
pub(crate) use config::{RawTextBox, parse_text_mode};
pub use store::build_manifest;

/// The locale of art jobs: BCP-47 "undetermined". Art is shared by every
/// locale, so its identity carries this marker instead of a real locale.
pub const ART_LOCALE: &str = "und";

/// How a variant gets its copy onto the image.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TextMode {
    /// The model paints the copy quoted in the prompt (one image per locale).
    #[default]
    Model,
    /// The model paints copy-free art once; adloc typesets these boxes.
    Overlay(Vec<TextBoxSpec>),
}

impl TextMode {
    /// The text boxes of an overlay variant, `None` for model text.
    pub fn boxes(&self) -> Option<&[TextBoxSpec]> {
        match self {
            TextMode::Model => None,
            TextMode::Overlay(b) => Some(b),
        }
    }

    /// `model` or `overlay`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TextMode::Model => "model",
            TextMode::Overlay(_) => "overlay",
        }
    }
}

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
        }
    }

    /// Canonical JSON of every setting that changes the pixels.
    fn settings_json(&self) -> serde_json::Value {
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

/// One locale's composite of one row × overlay variant, as planned from the
/// campaign (pure: no art, no I/O).
#[derive(Debug, Clone)]
pub struct ComposeSpec {
    /// Row id.
    pub row_id: String,
    /// CSV line of the row.
    pub row_line: u64,
    /// The requested locale.
    pub locale: Locale,
    /// Variant name.
    pub variant: String,
    /// Aspect ratio of the art.
    pub aspect_ratio: String,
    /// `(box, copy)` in box order.
    pub boxes: Vec<(TextBoxSpec, String)>,
    /// Per box column: the locale tag its copy came from.
    pub resolution: BTreeMap<String, String>,
    /// The tag the first box's copy came from.
    pub resolved_locale: String,
    /// Hex SHA-256 over locale, copy and box settings (not the art).
    pub settings_hash: String,
}

impl ComposeSpec {
    /// The art job's identity.
    pub fn art_key(&self, campaign: &str) -> JobKey {
        JobKey {
            campaign: campaign.to_string(),
            row_id: self.row_id.clone(),
            locale: ART_LOCALE.to_string(),
            variant: self.variant.clone(),
        }
    }

    /// The compose hash: settings plus the art's SHA-256.
    pub fn compose_hash(&self, art_sha256: &str) -> String {
        hex::encode(Sha256::digest(
            format!("{}|{}", self.settings_hash, art_sha256).as_bytes(),
        ))
    }
}

/// Columns that hold copy: localized columns (a base with at least one
/// per-locale override) and every column named by a text box.
pub fn copy_columns(campaign: &Campaign) -> BTreeSet<String> {
    let mut cols: BTreeSet<String> = campaign.rows.copy_columns().into_iter().collect();
    for v in &campaign.variants {
        for b in v.text.boxes().unwrap_or_default() {
            cols.insert(b.column.clone());
        }
    }
    cols
}

/// Every row × locale × overlay variant composite, with its copy resolved.
/// A box whose column has no value for a locale (no override on the chain
/// and an empty base cell) is an input error naming the row and locale.
pub fn compose_plan(campaign: &Campaign) -> Result<Vec<ComposeSpec>, InputErrors> {
    let mut errors = InputErrors::default();
    let mut out = Vec::new();
    let overlay: Vec<&Variant> = campaign
        .variants
        .iter()
        .filter(|v| v.text.boxes().is_some())
        .collect();
    if overlay.is_empty() {
        return Ok(out);
    }
    for row in &campaign.rows.rows {
        for locale in &campaign.locales {
            let resolved = campaign.rows.resolve(row, locale);
            for variant in &overlay {
                let boxes = variant.text.boxes().unwrap_or_default();
                let mut filled = Vec::with_capacity(boxes.len());
                let mut resolution = BTreeMap::new();
                for b in boxes {
                    match resolved.get(&b.column) {
                        Some(r) => {
                            filled.push((b.clone(), r.value.clone()));
                            resolution.insert(
                                b.column.clone(),
                                r.from_locale
                                    .clone()
                                    .unwrap_or_else(|| campaign.base_locale.tag().to_string()),
                            );
                        }
                        None => errors.push(InputProblem::at(
                            &campaign.rows.path,
                            row.line,
                            None,
                            format!(
                                "row `{}`, locale {locale}: text box `{}` of variant `{}` has no copy (no `{}` column on the fallback chain {} and the base column is empty or missing)",
                                row.id,
                                b.column,
                                variant.name,
                                b.column,
                                locale.fallback_chain().join(" → ")
                            ),
                        )),
                    }
                }
                if filled.len() != boxes.len() {
                    continue;
                }
                let resolved_locale = boxes
                    .first()
                    .and_then(|b| resolution.get(&b.column).cloned())
                    .unwrap_or_else(|| locale.tag().to_string());
                let canonical = json!({
                    "v": 1,
                    "locale": locale.tag(),
                    "boxes": filled.iter().map(|(b, t)| json!({"box": b.settings_json(), "text": t})).collect::<Vec<_>>(),
                });
                out.push(ComposeSpec {
                    row_id: row.id.to_string(),
                    row_line: row.line,
                    locale: locale.clone(),
                    variant: variant.name.clone(),
                    aspect_ratio: variant.aspect_ratio.clone(),
                    boxes: filled,
                    resolution,
                    resolved_locale,
                    settings_hash: hex::encode(Sha256::digest(canonical.to_string().as_bytes())),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The template context of an art job: no locale, no copy (see the module
/// docs).
pub fn art_context(campaign: &Campaign, row: &Row, variant: &Variant) -> serde_json::Value {
    let copy = copy_columns(campaign);
    let resolved = campaign.rows.resolve(row, &campaign.base_locale);
    let row_values: serde_json::Map<String, serde_json::Value> = resolved
        .into_iter()
        .filter(|(k, _)| !copy.contains(k))
        .map(|(k, v)| (k, serde_json::Value::String(v.value)))
        .collect();
    let boxes: Vec<serde_json::Value> = variant
        .text
        .boxes()
        .unwrap_or_default()
        .iter()
        .map(|b| {
            json!({
                "column": b.column,
                "x": b.x, "y": b.y, "width": b.width, "height": b.height,
            })
        })
        .collect();
    json!({
        "row": row_values,
        "variant": {
            "name": variant.name,
            "aspect_ratio": variant.aspect_ratio,
            "image_size": variant.image_size.as_str(),
            "text": "overlay",
            "text_boxes": boxes,
        },
        "campaign": {"name": campaign.name},
    })
}

/// Append one art job per row × overlay variant to `specs`, and check that
/// every composite has its copy. Render failures name the template, its
/// line, the row and the reason art templates cannot see locale or copy.
pub fn expand_art(
    campaign: &Campaign,
    prompts: &Prompts,
    specs: &mut Vec<JobSpec>,
    errors: &mut InputErrors,
) {
    let overlay: Vec<&Variant> = campaign
        .variants
        .iter()
        .filter(|v| v.text.boxes().is_some())
        .collect();
    if overlay.is_empty() {
        return;
    }
    let copy = copy_columns(campaign);
    for row in &campaign.rows.rows {
        for variant in &overlay {
            let context = art_context(campaign, row, variant);
            let prompt = match prompts.render(&variant.name, &context) {
                Ok(p) => p,
                Err(f) => {
                    let uses_copy = copy
                        .iter()
                        .any(|c| f.message.contains(&format!("`row.{c}`")));
                    let why = if uses_copy
                        || f.message.contains("`locale")
                        || f.message.contains("no locale")
                    {
                        "; an overlay variant's art is shared by every locale, so its template gets no `locale` and no copy columns (adloc typesets the copy itself): describe the picture only"
                    } else {
                        ""
                    };
                    errors.push(InputProblem {
                        file: variant.template_path.clone(),
                        line: f.line,
                        column: f.column,
                        message: format!(
                            "{}{why} (row `{}` from {} line {}, art for overlay variant {})",
                            f.message,
                            row.id,
                            campaign.rows.path.display(),
                            row.line,
                            variant.name
                        ),
                    });
                    continue;
                }
            };
            let request = ImageRequest {
                model: campaign.model.clone(),
                prompt,
                aspect_ratio: variant.aspect_ratio.clone(),
                image_size: variant.image_size,
                references: Vec::new(),
                grounding: variant.grounding,
                proof: ProofText {
                    locale: ART_LOCALE.to_string(),
                    variant: variant.name.clone(),
                    lines: Vec::new(),
                    rtl: false,
                },
            };
            let request_hash = request_hash(&request);
            specs.push(JobSpec {
                key: JobKey {
                    campaign: campaign.name.clone(),
                    row_id: row.id.to_string(),
                    locale: ART_LOCALE.to_string(),
                    variant: variant.name.clone(),
                },
                resolved_locale: ART_LOCALE.to_string(),
                resolution: BTreeMap::new(),
                request,
                request_hash,
                row_line: row.line,
            });
        }
    }
    if let Err(e) = compose_plan(campaign) {
        errors.0.extend(e.0);
    }
}

/// Check that every text box names a column the rows CSV has (as a base
/// column or a per-locale override), at the box's line in campaign.toml.
pub(crate) fn check_columns(
    variants: &[Variant],
    rows: &crate::campaign::Rows,
    config_path: &std::path::Path,
    errors: &mut InputErrors,
) {
    use crate::campaign::ColumnKind;
    for v in variants {
        for b in v.text.boxes().unwrap_or_default() {
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
