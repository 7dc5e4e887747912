//! `adloc compare`: the sample each model makes. One campaign per model,
//! derived from the real one (first N rows, the chosen locales, the chosen
//! variants, that model alone, realtime), under its own name so its jobs,
//! spend and manifest live beside the campaign's without touching them,
//! and so a rerun finds them done and buys nothing.
//!
//! Decided: the derived name is `<campaign>--compare--<model>` with the
//! model's dots as dashes (a campaign name is `[a-z0-9-]+`, in paths and
//! the manifest schema); the review server finds the samples by that
//! prefix and reads each one's model from its manifest.

use crate::campaign::{Campaign, RunMode};
use crate::domain::{Locale, ModelId};

/// What goes between the campaign's name and the model's.
pub const COMPARE_INFIX: &str = "--compare--";

/// The name of `campaign`'s sample made with `model`.
pub fn compare_name(campaign: &str, model: &str) -> String {
    let slug: String = model
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    format!("{campaign}{COMPARE_INFIX}{slug}")
}

/// What to sample.
#[derive(Debug, Clone)]
pub struct SampleSpec {
    /// First rows of the file, at most.
    pub rows: usize,
    /// Locale tags (empty: the base locale).
    pub locales: Vec<String>,
    /// Variant names (empty: every variant).
    pub variants: Vec<String>,
}

/// The sample of `c` made with `model` alone, or what is wrong with the
/// selection (an unknown locale or variant, no row).
pub fn sample(c: &Campaign, model: &ModelId, spec: &SampleSpec) -> Result<Campaign, String> {
    let mut s = c.clone();
    s.name = compare_name(&c.name, model.as_str());
    s.model = model.clone();
    s.mode = RunMode::Realtime;
    if spec.rows == 0 {
        return Err("--rows must be at least 1".into());
    }
    s.rows.rows.truncate(spec.rows);
    if s.rows.rows.is_empty() {
        return Err(format!("{} has no row to sample", c.rows.path.display()));
    }
    s.locales = if spec.locales.is_empty() {
        vec![c.base_locale.clone()]
    } else {
        let mut out = Vec::new();
        for tag in &spec.locales {
            let found: Option<&Locale> = c.locales.iter().find(|l| l.tag() == tag);
            match found {
                Some(l) => out.push(l.clone()),
                None => {
                    return Err(format!(
                        "--locales: `{tag}` is not a locale of campaign {} ({})",
                        c.name,
                        c.locales
                            .iter()
                            .map(Locale::tag)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        out
    };
    if !spec.variants.is_empty() {
        for v in &spec.variants {
            if !c.variants.iter().any(|x| &x.name == v) {
                return Err(format!(
                    "--variants: `{v}` is not a variant of campaign {} ({})",
                    c.name,
                    c.variants
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        s.variants.retain(|x| spec.variants.contains(&x.name));
    }
    for v in &mut s.variants {
        // That model alone: a fallback would blur which model made what.
        v.models = vec![model.clone()];
        v.fallback_on.clear();
    }
    Ok(s)
}
