//! What `adloc plan` reports about localization before any money is spent:
//! every copy fallback, what overlay variants save, every overlay box
//! whose copy cannot fit, and what copy QA's reads add.

use std::collections::BTreeSet;

use super::{ComposeSpec, JobSpec, compose_plan, copy_columns};
use crate::campaign::{Campaign, OnMismatch};
use crate::domain::{BillingMode, PriceTable, ReaderModel, round_micro};
use crate::imaging::text::{self, TextError};

/// One copy fallback: a row's column for a locale came from another tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fallback {
    /// Row id.
    pub row_id: String,
    /// Requested locale.
    pub locale: String,
    /// Copy column.
    pub column: String,
    /// The tag it came from (`es-419`), or `None` for the base column.
    pub from: Option<String>,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.from {
            Some(tag) => write!(
                f,
                "row {} column `{}` for {} falls back to {tag} (column `{}.{tag}`)",
                self.row_id, self.column, self.locale, self.column
            ),
            None => write!(
                f,
                "row {} column `{}` for {} falls back to the base column `{}`",
                self.row_id, self.column, self.locale, self.column
            ),
        }
    }
}

/// Every fallback, once per row × locale × copy column (not once per
/// variant), over localized columns and every column a text box names. A
/// locale that is the base locale reading the base column is not a fallback.
pub fn fallbacks(campaign: &Campaign) -> Vec<Fallback> {
    let columns = copy_columns(campaign);
    let mut out = BTreeSet::new();
    for row in &campaign.rows.rows {
        for locale in &campaign.locales {
            let resolved = campaign.rows.resolve(row, locale);
            for column in &columns {
                let Some(r) = resolved.get(column) else {
                    continue;
                };
                let fell_back = match &r.from_locale {
                    Some(tag) => tag != locale.tag(),
                    None => locale != &campaign.base_locale,
                };
                if fell_back {
                    out.insert(Fallback {
                        row_id: row.id.to_string(),
                        locale: locale.tag().to_string(),
                        column: column.clone(),
                        from: r.from_locale.clone(),
                    });
                }
            }
        }
    }
    out.into_iter().collect()
}

/// One overlay box whose copy does not fit at its minimum size.
#[derive(Debug, Clone, PartialEq)]
pub struct Overflow {
    /// Row id.
    pub row_id: String,
    /// Locale.
    pub locale: String,
    /// Variant.
    pub variant: String,
    /// Copy column of the box.
    pub column: String,
    /// The copy.
    pub text: String,
    /// Box size in pixels at the documented master size.
    pub box_px: (u32, u32),
    /// The minimum size tried.
    pub min_size: f32,
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "row {} {} {}: box `{}` ({}×{} px) cannot fit {:?} even at {:.0} px",
            self.row_id,
            self.locale,
            self.variant,
            self.column,
            self.box_px.0,
            self.box_px.1,
            self.text,
            self.min_size
        )
    }
}

/// Fit every overlay box of every composite at the model's documented pixel
/// size for the variant (the same fit [`super::compose`] draws with), and
/// return every overflow.
pub fn fit_check(campaign: &Campaign, plan: &[ComposeSpec]) -> Vec<Overflow> {
    // Brand faces first, as the compose step sets them.
    let fonts: Vec<std::sync::Arc<Vec<u8>>> = campaign
        .brand
        .fonts
        .iter()
        .map(|(f, _)| f.bytes.clone())
        .collect();
    let brand_family = text::register_brand_fonts(&fonts);
    fit_all(campaign, plan, brand_family)
}

/// [`fit_check`] with the brand family registered.
fn fit_all(
    campaign: &Campaign,
    plan: &[ComposeSpec],
    brand_family: Option<&'static str>,
) -> Vec<Overflow> {
    let mut out = Vec::new();
    for spec in plan {
        let Some(variant) = campaign.variants.iter().find(|v| v.name == spec.variant) else {
            continue;
        };
        let family = variant.primary().unwrap_or(&campaign.model).family();
        let Some((w, h)) = family.pixel_size(variant.aspect_ratio.as_str(), variant.image_size)
        else {
            continue;
        };
        // Text boxes and the copy on buttons.
        for (b, copy) in spec.texts() {
            let bx = b.inner_box(w, h, 1.0);
            let style = text::TextStyle {
                brand_family,
                ..b.style(1.0)
            };
            if let Err(TextError::Overflow { min_size_px, .. }) =
                text::fit_text(bx.width, bx.height, copy, spec.locale.tag(), &style)
            {
                out.push(Overflow {
                    row_id: spec.row_id.to_string(),
                    locale: spec.locale.tag().to_string(),
                    variant: spec.variant.clone(),
                    column: b.column.clone(),
                    text: copy.clone(),
                    box_px: (bx.width, bx.height),
                    min_size: min_size_px,
                });
            }
        }
    }
    out
}

/// The lines `adloc plan` prints about text modes, fallbacks and overflow,
/// each already indented. `specs` are the expanded provider jobs.
pub fn report(campaign: &Campaign, specs: &[JobSpec]) -> Vec<String> {
    let mut lines = Vec::new();
    let plan = compose_plan(campaign).unwrap_or_default();
    let locales = campaign.locales.len();
    for v in &campaign.variants {
        if v.text.boxes().is_none() {
            continue;
        }
        let art = specs
            .iter()
            .filter(|s| s.key.variant == v.name && s.key.target.is_art())
            .count();
        lines.push(format!(
            "  overlay variant {}: {art} copy-free art image(s) typeset locally into {} localized asset(s) (1 paid image per row instead of {locales})",
            v.name,
            art * locales
        ));
    }
    for f in fallbacks(campaign) {
        lines.push(format!("  warning: {f}"));
    }
    for w in placement_warnings(campaign) {
        lines.push(format!("  warning: {w}"));
    }
    let overflows = fit_check(campaign, &plan);
    for o in &overflows {
        lines.push(format!("  overflow: {o}"));
    }
    if !plan.is_empty() {
        lines.push(if overflows.is_empty() {
            format!(
                "  fit check: all {} overlay asset(s) fit their text boxes",
                plan.len()
            )
        } else {
            format!(
                "  fit check: {} box(es) overflow; those assets will fail with text_overflow (shorten the copy, enlarge the box or lower min_size)",
                overflows.len()
            )
        });
    }
    lines
}

/// Copy QA's share of a plan, for one billing mode.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QaEstimate {
    /// Model-text images to generate that QA will read.
    pub reads: usize,
    /// USD for one read of each: the expected cost when images pass.
    /// Second reads and regenerations are not included.
    pub reads_usd: f64,
    /// USD beyond the plan's image estimate at worst: every image made
    /// `1 + max_regenerations` times (once for `overlay`, `fail`, `keep`),
    /// each attempt read twice, images priced at the dearest model of the
    /// variant's chain, plus one copy-free art image per job whose variant
    /// has fallback text boxes (an upper bound: art is shared by a row's
    /// locales). Not yet part of the budget check (`run::estimate_worst`).
    pub worst_extra_usd: f64,
}

/// Reads a read costs at most per attempt: the read, and a second read
/// confirming a mismatch before anything is regenerated.
const WORST_READS_PER_ATTEMPT: f64 = 2.0;

/// Copy QA's cost for the specs flagged in `generate` (art jobs are never
/// read: overlay composites are exact by construction).
pub fn qa_estimate(
    campaign: &Campaign,
    specs: &[JobSpec],
    generate: &[bool],
    mode: BillingMode,
) -> QaEstimate {
    let prices = PriceTable::new(campaign.pricing.clone());
    let mut out = QaEstimate::default();
    for (s, _) in specs.iter().zip(generate).filter(|(_, g)| **g) {
        if s.key.target.is_art() {
            continue;
        }
        let Some(v) = campaign.variants.iter().find(|v| v.name == s.key.variant) else {
            continue;
        };
        let Some(qa) = &v.qa else {
            continue;
        };
        let read = prices.estimate_read(qa.reader, mode);
        let image = s.dearest_estimate(&prices, mode);
        let attempts = f64::from(qa.max_images());
        let art = match qa.on_mismatch {
            OnMismatch::Regenerate | OnMismatch::Overlay if !qa.fallback_boxes.is_empty() => image,
            _ => 0.0,
        };
        out.reads += 1;
        out.reads_usd += read;
        out.worst_extra_usd +=
            (attempts - 1.0) * image + attempts * WORST_READS_PER_ATTEMPT * read + art;
    }
    out.reads_usd = round_micro(out.reads_usd);
    out.worst_extra_usd = round_micro(out.worst_extra_usd);
    out
}

/// The lines `adloc plan` prints about copy QA, each already indented;
/// none when no variant has QA. `today` is `YYYY-MM-DD` (UTC).
pub fn qa_report(
    campaign: &Campaign,
    specs: &[JobSpec],
    generate: &[bool],
    today: &str,
) -> Vec<String> {
    let mut readers: Vec<ReaderModel> = campaign
        .variants
        .iter()
        .filter_map(|v| v.qa.as_ref().map(|q| q.reader))
        .collect();
    readers.sort();
    readers.dedup();
    if readers.is_empty() {
        return Vec::new();
    }
    let rt = qa_estimate(campaign, specs, generate, BillingMode::Realtime);
    let bt = qa_estimate(campaign, specs, generate, BillingMode::Batch);
    let names: Vec<&str> = readers.iter().map(|r| r.as_str()).collect();
    let mut lines = vec![
        format!(
            "  copy QA: {} read(s) by {}: ${:.4} realtime, ${:.4} batch (one read per image; second reads and regenerations not included)",
            rt.reads,
            names.join(", "),
            rt.reads_usd,
            bt.reads_usd
        ),
        format!(
            "  copy QA worst case: +${:.4} realtime, +${:.4} batch over the image estimate ((1 + max_regenerations) × (image + 2 reads) per image, at the dearest model of its chain)",
            rt.worst_extra_usd, bt.worst_extra_usd
        ),
    ];
    let prices = PriceTable::new(campaign.pricing.clone());
    for r in &readers {
        let rates = prices.reader_rates(*r);
        if rates.unconfirmed {
            lines.push(format!(
                "  warning: reader {r} price ${:.2}/${:.2} per 1M input/output tokens is unconfirmed; set [pricing.\"{r}\".tokens] input and output to your price",
                rates.input, rates.output
            ));
        }
        if let Some((on, replacement)) = crate::domain::shutdown_within(r.as_str(), today, 30) {
            lines.push(format!(
                "  warning: reader {r} shuts down on {on}, within 30 days; switch to {replacement}"
            ));
        }
    }
    lines
}

/// What `plan` says about each variant's placements before anything is
/// bought: a crop that throws away more than a third of the master (and
/// the `aspect_ratio` that would keep it), and a frame larger than the
/// master's crop at the variant's `image_size` (and the size that would
/// avoid enlarging it). Judged at the primary model's documented frame.
pub fn placement_warnings(campaign: &Campaign) -> Vec<String> {
    use crate::domain::placement::crop_fractions;
    let mut out = Vec::new();
    for v in &campaign.variants {
        let Some(model) = v.models.first() else {
            continue;
        };
        let family = model.family();
        let ratio_of = |w: u32, h: u32| f64::from(w) / f64::from(h);
        let Some((mw, mh)) = family.pixel_size(v.aspect_ratio.as_str(), v.image_size) else {
            continue;
        };
        for p in &v.placements {
            let crop = crop_fractions(ratio_of(mw, mh), p.ratio(), v.focal);
            let kept = crop.w * crop.h;
            if kept < 2.0 / 3.0 {
                // The documented ratio nearest the placement's, in log space.
                let better = family
                    .aspect_ratios()
                    .iter()
                    .filter_map(|r| {
                        crate::domain::parse_ratio(r)
                            .map(|(w, h)| (r, (ratio_of(w, h) / p.ratio()).ln().abs()))
                    })
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(r, _)| *r);
                out.push(format!(
                    "variant `{}`: placement {} ({}x{}) crops away {:.0} % of the {} master{}",
                    v.name,
                    p.id,
                    p.width,
                    p.height,
                    (1.0 - kept) * 100.0,
                    v.aspect_ratio,
                    better.map_or(String::new(), |r| format!(
                        "; a variant with aspect_ratio = \"{r}\" would keep nearly all of it"
                    ))
                ));
            }
            let upscaled = |w: u32, h: u32| {
                let c = crop_fractions(ratio_of(w, h), p.ratio(), v.focal);
                f64::from(p.width) > c.w * f64::from(w) + 1e-6
            };
            if upscaled(mw, mh) {
                let fix = family.image_sizes().iter().find(|s| {
                    family
                        .pixel_size(v.aspect_ratio.as_str(), **s)
                        .is_some_and(|(w, h)| !upscaled(w, h))
                });
                out.push(format!(
                    "variant `{}`: placement {} ({}x{}) needs upscaling from the {mw}x{mh} master ({}){}",
                    v.name,
                    p.id,
                    p.width,
                    p.height,
                    v.image_size,
                    match fix {
                        Some(s) => format!("; image_size = \"{s}\" would avoid it"),
                        None => format!("; no image_size of {model} is large enough"),
                    }
                ));
            }
        }
    }
    out
}
