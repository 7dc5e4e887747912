//! Expansion: a campaign becomes rows × locales × variants job specs.
//!
//! Pure and deterministic: no I/O, no clock. Each spec carries its identity
//! and a SHA-256 over everything that reaches the provider, so a rerun can
//! tell an unchanged job from a changed one.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::campaign::Campaign;
use crate::error::{InputErrors, InputProblem};
use crate::prompt::Prompts;
use crate::provider::{ImageRequest, ProofText};

/// A job's identity: the same identity on a rerun is the same job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    /// Campaign name.
    pub campaign: String,
    /// Row id.
    pub row_id: String,
    /// Canonical locale tag.
    pub locale: String,
    /// Variant name.
    pub variant: String,
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.campaign, self.locale, self.variant, self.row_id
        )
    }
}

/// One expanded job.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Identity.
    pub key: JobKey,
    /// The tag the copy actually came from (the first localized column's
    /// resolution; the campaign's base locale when it came from the base column).
    pub resolved_locale: String,
    /// Per copy column: the tag it resolved from.
    pub resolution: BTreeMap<String, String>,
    /// The provider request.
    pub request: ImageRequest,
    /// Hex SHA-256 of the request as the provider sees it.
    pub request_hash: String,
    /// CSV line of the row (for messages).
    pub row_line: u64,
}

/// Hex SHA-256 over the canonical form of everything that reaches the
/// provider: model, prompt, image settings, grounding and reference bytes.
pub fn request_hash(req: &ImageRequest) -> String {
    let refs: Vec<_> = req
        .references
        .iter()
        .map(|r| json!({"mime": r.mime_type, "sha256": hex::encode(Sha256::digest(r.bytes.as_slice()))}))
        .collect();
    let canonical = json!({
        "v": 1,
        "model": req.model.as_str(),
        "prompt": req.prompt,
        "aspect_ratio": req.aspect_ratio,
        "image_size": req.image_size.as_str(),
        "grounding": req.grounding,
        "references": refs,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Expand every row × locale × variant. Render failures are input errors
/// naming row id, locale, variant, template file and line; all are collected.
pub fn expand(campaign: &Campaign) -> Result<Vec<JobSpec>, InputErrors> {
    let prompts = Prompts::new(&campaign.variants)?;
    let mut errors = InputErrors::default();
    let copy_columns = campaign.rows.copy_columns();
    let mut specs = Vec::with_capacity(
        campaign.rows.rows.len() * campaign.locales.len() * campaign.variants.len(),
    );
    for row in &campaign.rows.rows {
        for locale in &campaign.locales {
            let resolved = campaign.rows.resolve(row, locale);
            let info = locale.info();
            let resolution: BTreeMap<String, String> = copy_columns
                .iter()
                .filter_map(|c| {
                    resolved.get(c).map(|r| {
                        (
                            c.clone(),
                            r.from_locale
                                .clone()
                                .unwrap_or_else(|| campaign.base_locale.tag().to_string()),
                        )
                    })
                })
                .collect();
            let resolved_locale = copy_columns
                .iter()
                .find_map(|c| resolution.get(c).cloned())
                .unwrap_or_else(|| locale.tag().to_string());
            let row_values: serde_json::Map<String, serde_json::Value> = resolved
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.value.clone())))
                .collect();
            let lines: Vec<String> = copy_columns
                .iter()
                .filter_map(|c| resolved.get(c).map(|r| r.value.clone()))
                .collect();
            // Overlay variants get one locale-free art job per row below.
            for variant in campaign
                .variants
                .iter()
                .filter(|v| v.text.boxes().is_none())
            {
                let context = json!({
                    "row": row_values,
                    "locale": info,
                    "variant": {
                        "name": variant.name,
                        "aspect_ratio": variant.aspect_ratio,
                        "image_size": variant.image_size.as_str(),
                    },
                    "campaign": {"name": campaign.name},
                });
                let prompt = match prompts.render(&variant.name, &context) {
                    Ok(p) => p,
                    Err(f) => {
                        errors.push(InputProblem {
                            file: variant.template_path.clone(),
                            line: f.line,
                            column: f.column,
                            message: format!(
                                "{} (row `{}` from {} line {}, locale {}, variant {})",
                                f.message,
                                row.id,
                                campaign.rows.path.display(),
                                row.line,
                                locale,
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
                    references: campaign.references.for_job(row.id.as_str(), locale.tag()),
                    grounding: variant.grounding,
                    proof: ProofText {
                        locale: locale.tag().to_string(),
                        variant: variant.name.clone(),
                        lines: lines.clone(),
                        rtl: info.direction == "rtl",
                    },
                };
                let request_hash = request_hash(&request);
                specs.push(JobSpec {
                    key: JobKey {
                        campaign: campaign.name.clone(),
                        row_id: row.id.to_string(),
                        locale: locale.tag().to_string(),
                        variant: variant.name.clone(),
                    },
                    resolved_locale: resolved_locale.clone(),
                    resolution: resolution.clone(),
                    request,
                    request_hash,
                    row_line: row.line,
                });
            }
        }
    }
    crate::overlay::expand_art(campaign, &prompts, &mut specs, &mut errors);
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}
