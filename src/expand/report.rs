//! What `adloc plan` reports about localization before any money is spent:
//! every copy fallback, what overlay variants save, and every overlay box
//! whose copy cannot fit.

use std::collections::BTreeSet;

use super::{ComposeSpec, JobSpec, compose_plan, copy_columns};
use crate::campaign::Campaign;
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
        for (b, copy) in &spec.boxes {
            let bx = b.inner_box(w, h, 1.0);
            let style = b.style(1.0);
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
