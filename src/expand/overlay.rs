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
//! 1. **Expand** ([`super::expand`]): one provider job per row × variant
//!    whose target is [`Target::Art`] instead of a locale, so it does not
//!    depend on the locales; its master lands at
//!    `<out>/<campaign>/_art/<variant>/<row>.<ext>`.
//! 2. **Store, dispatch, settle**: unchanged. Art jobs are ordinary jobs:
//!    realtime or batch, retries, budget, crash safety, incremental reruns.
//! 3. **Compose** (`derive::overlay`, after dispatch): for every row ×
//!    locale × overlay variant whose art is done, each box's column is
//!    resolved along the locale's CLDR fallback chain, auto-fitted (shrinking
//!    from `max_size` to `min_size`) and drawn with [`crate::imaging::text::draw_text`]
//!    (real shaping, bidi, UAX #14 / kinsoku line breaking, per-locale CJK
//!    faces). The result is written atomically to
//!    `<out>/<campaign>/<locale>/<variant>/<row>.<ext>` (the same place a
//!    model-text asset would be), in the art's format.
//! 4. **Record**: composites live in their own table (migration
//!    `20261127000003_overlay.sql`), keyed by the art job id, the locale and
//!    a *compose hash* over the copy, the box settings and the art's SHA-256.
//!    A rerun with the same hash does nothing; changed copy re-composes
//!    without any provider call; new art re-composes every locale.
//! 5. **Manifest** (`manifest::build`): each composite is an ordinary asset
//!    entry (requested and resolved locale, copy resolution, path, checksum,
//!    dimensions) carrying the art's provider, model, mode, prompt and
//!    request hash, plus an `overlay` object (art path and checksum, compose
//!    hash, fitted size and line count per box). A copy that cannot fit at
//!    `min_size` is a failure with reason `text_overflow` and the copy in the
//!    detail. Art masters are listed under `art`; they are not deliverables.
//!
//! # Brand layers and right-to-left layouts
//!
//! A variant's `[[variants.layers]]` (see [`crate::campaign::LayerSpec`])
//! are resolved here per row × locale: the locale's logo (CLDR fallback
//! over `[brand] logo`), an image layer's file from its CSV column, a
//! button's copy from its column (like a text box's). With `mirror_rtl`
//! (default on) every box and layer of a right-to-left locale is mirrored
//! (`x` becomes `1 − x − width`); alignment stays logical. The settings
//! hash covers each layer's settings, the bytes of the picture it shows
//! and the SHA-256 of every `[brand]` file, so a new logo recomposes every
//! composite and a changed layer only its variant's. Without a brand kit
//! the hash is computed exactly as before, so nothing recomposes on
//! upgrade (mirroring aside: a right-to-left locale's asymmetric boxes did
//! move).
//!
//! # Brand layers on model-text variants
//!
//! A model-text variant's `[[variants.layers]]` are planned here too, one
//! [`ComposeSpec`] per row × locale with `on_model_image` set: no text
//! boxes, every layer over the painted copy in declaration order, mirrored
//! like an overlay variant's, the same settings hash (layers, their
//! pictures, the `[brand]` files). The job's own image stands in for the
//! art (`art_key` is the job's identity). Decisions:
//! - The model's image stays the job's image, moved once to
//!   `_unlayered/<locale>/<variant>/<row>.<ext>` by the compose step
//!   (`derive::overlay`), so copy QA, revisions (edits), copy-QA rereads
//!   and crash recovery read the model's pixels, and layers are never drawn
//!   twice. The layered file is a composite row (same table, same compose
//!   hash over the job's SHA-256), written at the asset path.
//! - Delivery follows the composite: the manifest entry is the job's with
//!   the composite's file and an `overlay` object (`art_*` name the model's
//!   image, `brand` the brand files); renditions, placements and the review
//!   page use it; a reviewer's decision about it counts for the job.
//! - `text = "edit"` variants are refused: a locale edit is made from its
//!   base locale's image, and would inherit layers painted in.
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
//! size tier ([`crate::domain::ModelFamily::pixel_size`]); if the art comes
//! back at another size, sizes scale with its width, so the layout `plan`
//! checked is the layout drawn.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::campaign::{Brand, LayerKind, LayerSpec};
use crate::campaign::{Campaign, Row, Variant};
use crate::domain::{AspectRatio, InputErrors, InputProblem, JobKey, Locale, RowId, Target};
use crate::imaging::text::is_rtl_locale;
use crate::imaging::{FracBox, Layer, LayerDraw, Step, TextBoxSpec};

/// One locale's composite of one row × overlay variant, as planned from the
/// campaign (pure: no art, no I/O).
#[derive(Debug, Clone)]
pub struct ComposeSpec {
    /// Row id.
    pub row_id: RowId,
    /// CSV line of the row.
    pub row_line: u64,
    /// The requested locale.
    pub locale: Locale,
    /// Variant name.
    pub variant: String,
    /// Aspect ratio of the art.
    pub aspect_ratio: AspectRatio,
    /// `(box, copy)` in box order.
    pub boxes: Vec<(TextBoxSpec, String)>,
    /// Per box column: the locale tag its copy came from.
    pub resolution: BTreeMap<String, String>,
    /// The tag the first box's copy came from.
    pub resolved_locale: String,
    /// Hex SHA-256 over locale, copy and box settings (not the art).
    pub settings_hash: String,
    /// Brand layers drawn before the text boxes, resolved for the locale.
    pub under: Vec<PlannedLayer>,
    /// Brand layers drawn after the text boxes.
    pub over: Vec<PlannedLayer>,
    /// SHA-256 of every brand file the composite depends on, by path (the
    /// `[brand]` fonts and logos, and the image-layer files it shows): part
    /// of the settings hash, and recorded in the manifest.
    pub brand: BTreeMap<String, String>,
    /// The layers go onto the model-text job's own image of this row ×
    /// locale × variant (see "Brand layers on model-text variants" above)
    /// rather than onto shared copy-free art.
    pub on_model_image: bool,
}

/// One layer of one composite: what is drawn, and a button's copy set on it.
#[derive(Debug, Clone)]
pub struct PlannedLayer {
    /// The picture or fill, mirrored for right-to-left locales when asked.
    pub layer: Layer,
    /// A button's text box and copy.
    pub text: Option<(TextBoxSpec, String)>,
}

impl ComposeSpec {
    /// Every piece of copy set: the text boxes, then the buttons' copy.
    pub fn texts(&self) -> impl Iterator<Item = &(TextBoxSpec, String)> {
        self.boxes.iter().chain(
            self.under
                .iter()
                .chain(&self.over)
                .filter_map(|l| l.text.as_ref()),
        )
    }

    /// Everything drawn, in order: layers under the copy, the text boxes,
    /// layers over the copy (a button's copy right after its background).
    pub fn steps(&self) -> Vec<Step<'_>> {
        let mut out = layer_steps(&self.under);
        out.extend(self.boxes.iter().map(|(b, c)| Step::Text(b, c.as_str())));
        out.extend(layer_steps(&self.over));
        out
    }
}

impl ComposeSpec {
    /// The identity of the job whose image is composed onto: the shared
    /// art job, or for a model-text variant the locale's own job.
    pub fn art_key(&self, campaign: &str) -> JobKey {
        if self.on_model_image {
            return self.key(campaign);
        }
        JobKey {
            campaign: campaign.to_string(),
            row: self.row_id.clone(),
            target: Target::Art,
            variant: self.variant.clone(),
        }
    }

    /// The composite's own identity (where its file goes).
    pub fn key(&self, campaign: &str) -> JobKey {
        JobKey {
            campaign: campaign.to_string(),
            row: self.row_id.clone(),
            target: Target::Locale(self.locale.clone()),
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
        // What copy QA expects, and where its overlay fallback typesets it,
        // is copy too: the fallback's art must not carry it.
        if let Some(q) = &v.qa {
            cols.extend(q.expect.iter().cloned());
            cols.extend(q.fallback_boxes.iter().map(|b| b.column.clone()));
        }
    }
    cols
}

/// Every row × locale × overlay variant composite, with its copy resolved,
/// and every row × locale × model-text variant with brand layers (its
/// layers drawn onto the job's own image; `on_model_image`).
/// A box whose column has no value for a locale (no override on the chain
/// and an empty base cell) is an input error naming the row and locale.
pub fn compose_plan(campaign: &Campaign) -> Result<Vec<ComposeSpec>, InputErrors> {
    let mut errors = InputErrors::default();
    let mut out = Vec::new();
    let overlay: Vec<&Variant> = campaign
        .variants
        .iter()
        .filter(|v| v.text.boxes().is_some() || layered_model_text(v))
        .collect();
    if overlay.is_empty() {
        return Ok(out);
    }
    for row in &campaign.rows.rows {
        for locale in &campaign.locales {
            let resolved = campaign.rows.resolve(row, locale);
            for variant in &overlay {
                let on_model_image = layered_model_text(variant);
                let rtl = variant.mirror_rtl && is_rtl_locale(locale.tag());
                let boxes = variant.text.boxes().unwrap_or_default();
                let mut filled = Vec::with_capacity(boxes.len());
                let mut resolution = BTreeMap::new();
                let mut missing = false;
                let mut copy_for = |column: &str, errors: &mut InputErrors| match resolved
                    .get(column)
                {
                    Some(r) => {
                        resolution.insert(
                            column.to_string(),
                            r.from_locale
                                .clone()
                                .unwrap_or_else(|| campaign.base_locale.tag().to_string()),
                        );
                        Some(r.value.clone())
                    }
                    None => {
                        errors.push(InputProblem::at(
                            &campaign.rows.path,
                            row.line,
                            None,
                            format!(
                                "row `{}`, locale {locale}: text box `{column}` of variant `{}` has no copy (no `{column}` column on the fallback chain {} and the base column is empty or missing)",
                                row.id,
                                variant.name,
                                locale.fallback_chain().join(" → ")
                            ),
                        ));
                        None
                    }
                };
                for b in boxes {
                    match copy_for(&b.column, &mut errors) {
                        Some(copy) => filled.push((mirror_box(b, rtl), copy)),
                        None => missing = true,
                    }
                }
                let mut brand = campaign.brand.hashes();
                let mut under = Vec::new();
                let mut over = Vec::new();
                let mut layer_json = Vec::new();
                for l in &variant.layers {
                    let Some(planned) = plan_layer(
                        l,
                        &campaign.brand,
                        locale,
                        &resolved,
                        rtl,
                        &mut brand,
                        &mut |c| copy_for(c, &mut errors),
                    ) else {
                        if l.column().is_some() && matches!(l.kind, LayerKind::Button { .. }) {
                            missing = true;
                        }
                        continue;
                    };
                    layer_json.push(json!({
                        "layer": l.settings_json(),
                        "mirrored": rtl,
                        "text": planned.text.as_ref().map(|(_, c)| c),
                        "file": picture_sha(&planned.layer),
                    }));
                    // The model painted its copy: every layer goes over it,
                    // in declaration order.
                    if l.under_text && !on_model_image {
                        under.push(planned);
                    } else {
                        over.push(planned);
                    }
                }
                if missing {
                    continue;
                }
                let resolved_locale = boxes
                    .first()
                    .and_then(|b| resolution.get(&b.column).cloned())
                    .unwrap_or_else(|| locale.tag().to_string());
                let mut canonical = json!({
                    "v": 1,
                    "locale": locale.tag(),
                    "boxes": filled.iter().map(|(b, t)| json!({"box": b.settings_json(), "text": t})).collect::<Vec<_>>(),
                });
                // Only campaigns with a brand kit hash it, so the composites of
                // campaigns without one keep their hash (nothing recomposes).
                if !layer_json.is_empty() || !brand.is_empty() {
                    canonical["layers"] = json!(layer_json);
                    canonical["brand"] = json!(brand);
                }
                if on_model_image {
                    canonical["onto"] = json!("model_image");
                }
                out.push(ComposeSpec {
                    row_id: row.id.clone(),
                    row_line: row.line,
                    locale: locale.clone(),
                    variant: variant.name.clone(),
                    aspect_ratio: variant.aspect_ratio.clone(),
                    boxes: filled,
                    resolution,
                    resolved_locale,
                    settings_hash: hex::encode(Sha256::digest(canonical.to_string().as_bytes())),
                    under,
                    over,
                    brand,
                    on_model_image,
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

/// A model-text variant (the model paints its copy) that declares brand
/// layers: they are composited onto each of its images.
pub fn layered_model_text(v: &Variant) -> bool {
    matches!(v.text, crate::campaign::TextMode::Model) && !v.layers.is_empty()
}

/// A layer list as steps: each layer, then a button's copy.
fn layer_steps(ls: &[PlannedLayer]) -> Vec<Step<'_>> {
    ls.iter()
        .flat_map(|l| {
            std::iter::once(Step::Layer(&l.layer))
                .chain(l.text.as_ref().map(|(b, c)| Step::Text(b, c.as_str())))
        })
        .collect()
}

/// A text box reflected for a right-to-left layout (`rtl`), else as is.
/// Its alignment is already logical (start is the right edge in Arabic).
fn mirror_box(b: &TextBoxSpec, rtl: bool) -> TextBoxSpec {
    if !rtl {
        return b.clone();
    }
    TextBoxSpec {
        x: (1.0 - b.x - b.width).max(0.0),
        ..b.clone()
    }
}

/// The SHA-256 of a picture layer's bytes (which logo a locale got).
fn picture_sha(layer: &Layer) -> Option<String> {
    let LayerDraw::Picture { picture, .. } = &layer.draw else {
        return None;
    };
    Some(hex::encode(Sha256::digest(picture.bytes.as_slice())))
}

/// One layer resolved for a row × locale: its picture or copy, its box
/// mirrored when `rtl`. `None` when there is nothing to draw (an image
/// layer whose cell is empty) or the button's copy is missing (already an
/// error through `copy_for`). Image files shown are added to `brand`.
fn plan_layer(
    l: &LayerSpec,
    kit: &Brand,
    locale: &Locale,
    resolved: &BTreeMap<String, crate::campaign::Resolved>,
    rtl: bool,
    brand: &mut BTreeMap<String, String>,
    copy_for: &mut dyn FnMut(&str) -> Option<String>,
) -> Option<PlannedLayer> {
    let frame: FracBox = if rtl { l.frame.mirrored() } else { l.frame };
    let picture = |p: &crate::campaign::BrandPicture| p.picture.clone();
    let (draw, text) = match &l.kind {
        LayerKind::Logo => (
            LayerDraw::Picture {
                picture: kit.logo_for(locale).map(picture)?,
                dark: kit.logo_dark.as_ref().map(picture),
                align: l.align,
            },
            None,
        ),
        LayerKind::Image { column } => {
            let rel = resolved.get(column)?.value.trim().to_string();
            let file = kit.images.get(&rel)?;
            brand.insert(rel, file.file.sha256.clone());
            (
                LayerDraw::Picture {
                    picture: picture(file),
                    dark: None,
                    align: l.align,
                },
                None,
            )
        }
        LayerKind::Shape { fill, radius } => (
            LayerDraw::Fill {
                color: *fill,
                radius: *radius,
            },
            None,
        ),
        LayerKind::Button { text, fill, radius } => {
            let copy = copy_for(&text.column)?;
            (
                LayerDraw::Fill {
                    color: *fill,
                    radius: *radius,
                },
                Some((mirror_box(text, rtl), copy)),
            )
        }
    };
    Some(PlannedLayer {
        layer: Layer { frame, draw },
        text,
    })
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
    // An overlay variant's boxes, or a QA variant's fallback boxes.
    let boxes: Vec<serde_json::Value> = variant
        .text
        .boxes()
        .or_else(|| variant.qa.as_ref().map(|q| &q.fallback_boxes[..]))
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
