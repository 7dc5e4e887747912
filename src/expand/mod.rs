//! Expansion: a campaign becomes its plan. Model-text variants give one job
//! per row × locale × variant; overlay variants give one art job per row ×
//! variant plus one composite per locale ([`overlay`]).
//!
//! Pure and deterministic: no I/O, no clock. Each spec carries its identity
//! and a SHA-256 over everything that reaches the provider, so a rerun can
//! tell an unchanged job from a changed one. Model jobs and art jobs are
//! built by one function ([`build_spec`]), so they cannot drift apart.

pub(crate) mod compare;
pub(crate) mod overlay;
pub(crate) mod report;

use std::collections::BTreeMap;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::campaign::{Campaign, Row, Variant};
use crate::domain::readback::{ExpectedString, StringSource, normalize, quoted_strings};
use crate::domain::{
    FallbackTrigger, ImageRequest, InputErrors, InputProblem, JobKey, Locale, ModelId, ProofText,
    Quality, ReferenceImage, Target,
};
use crate::prompt::{FailureKind, Prompts, RenderFailure};

pub use overlay::{ComposeSpec, compose_plan, copy_columns, layered_model_text};

/// One expanded job.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Identity.
    pub key: JobKey,
    /// The tag the copy actually came from (the first localized column's
    /// resolution; the campaign's base locale when it came from the base
    /// column). `None` for art, which has no copy.
    pub resolved_locale: Option<String>,
    /// Per copy column: the tag it resolved from.
    pub resolution: BTreeMap<String, String>,
    /// The provider request.
    pub request: ImageRequest,
    /// Hex SHA-256 of the request as the provider sees it.
    pub request_hash: String,
    /// CSV line of the row (for messages).
    pub row_line: u64,
    /// The variant's models in order (the primary first), each with the
    /// quality it is asked with.
    pub chain: Vec<(ModelId, Option<Quality>)>,
    /// What moves this job to the next model of the chain.
    pub fallback_on: Vec<FallbackTrigger>,
    /// Copy QA of this job's image (model-text jobs of a variant with QA).
    pub qa: Option<QaPlan>,
    /// The copy meant to be in the image: per copy column, its text as
    /// resolved for the locale (empty for art). Shown to reviewers; not
    /// part of the request hash (the prompt already carries it).
    pub copy: BTreeMap<String, String>,
    /// `text = "edit"`, a locale other than the base: the image is an edit
    /// of the base locale's image, made when that image is done.
    pub copy_edit: Option<CopyEdit>,
}

/// How a `text = "edit"` locale is made from its base locale's image.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyEdit {
    /// The base locale's job (same row and variant).
    pub base: JobKey,
    /// The instruction: replace each piece of base copy with the locale's,
    /// keep everything else.
    pub instruction: String,
}

/// The instruction that turns the base locale's image into `locale`'s:
/// every copy column whose text differs, in column order.
fn copy_instruction(base: &BTreeMap<String, String>, locale: &BTreeMap<String, String>) -> String {
    let swaps: Vec<String> = locale
        .iter()
        .filter_map(|(col, text)| {
            let from = base.get(col)?;
            (from.trim() != text.trim() && !from.trim().is_empty())
                .then(|| format!("the {col} '{}' with '{}'", from.trim(), text.trim()))
        })
        .collect();
    if swaps.is_empty() {
        "Keep this image exactly as it is.".to_string()
    } else {
        format!("Replace {} and keep everything else.", swaps.join(", and "))
    }
}

/// Turn the non-base locales of `text = "edit"` variants into edits of
/// their base locale's job: the request is the base's (the conversation the
/// edit continues), the instruction swaps the copy, and the hash covers the
/// base request and the instruction, so a changed base prompt or a changed
/// locale copy plans a new edit.
fn plan_copy_edits(campaign: &Campaign, specs: &mut [JobSpec], errors: &mut InputErrors) {
    let edit_variants: Vec<&str> = campaign
        .variants
        .iter()
        .filter(|v| matches!(v.text, crate::campaign::TextMode::Edit))
        .map(|v| v.name.as_str())
        .collect();
    if edit_variants.is_empty() {
        return;
    }
    let base_locale = &campaign.base_locale;
    // (row, variant) → index of its base locale's spec.
    let bases: std::collections::HashMap<(String, String), usize> = specs
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            edit_variants.contains(&s.key.variant.as_str())
                && s.key.target.locale() == Some(base_locale)
        })
        .map(|(i, s)| ((s.key.row.to_string(), s.key.variant.clone()), i))
        .collect();
    for i in 0..specs.len() {
        let s = &specs[i];
        if !edit_variants.contains(&s.key.variant.as_str()) {
            continue;
        }
        let Some(locale) = s.key.target.locale() else {
            continue;
        };
        if locale == base_locale {
            continue;
        }
        let Some(&b) = bases.get(&(s.key.row.to_string(), s.key.variant.clone())) else {
            errors.push(InputProblem {
                file: campaign.rows.path.clone(),
                line: Some(s.row_line),
                column: None,
                message: format!(
                    "variant `{}` has text = \"edit\": every locale is an edit of the base locale's image, but the base locale {} is not among the campaign's locales; add it",
                    s.key.variant,
                    base_locale.tag()
                ),
            });
            continue;
        };
        let base = &specs[b];
        let (request, hash, key) = (
            base.request.clone(),
            base.request_hash.clone(),
            base.key.clone(),
        );
        let instruction = copy_instruction(&base.copy, &specs[i].copy);
        let s = &mut specs[i];
        let mut req = request;
        req.proof = s.request.proof.clone();
        s.request_hash = hex::encode(Sha256::digest(
            json!({"v": 1, "edit_of": hash, "instruction": instruction})
                .to_string()
                .as_bytes(),
        ));
        s.request = req;
        // A fallback model would not hold the base's conversation.
        s.chain.truncate(1);
        s.copy_edit = Some(CopyEdit {
            base: key,
            instruction,
        });
    }
}

/// The strings one job's image is checked for: each `expect` column's copy
/// as the template saw it (resolved along the locale's fallback chain),
/// then, unless `quoted = false`, every other string the rendered prompt
/// quotes. The model paints what the prompt quotes whether or not `expect`
/// lists it, and a brand name spelled wrong is worse than a wrong button
/// label. A quoted string is named after the row column whose copy it is,
/// when it is one.
fn qa_strings(
    q: &crate::campaign::QaSettings,
    row: Option<&serde_json::Value>,
    prompt: &str,
) -> Vec<ExpectedString> {
    let cell = |col: &str| row?.get(col)?.as_str().map(str::trim);
    let mut out: Vec<ExpectedString> = q
        .expect
        .iter()
        .filter_map(|col| {
            let text = cell(col)?;
            (!text.is_empty()).then(|| ExpectedString {
                column: Some(col.clone()),
                text: text.to_string(),
                source: StringSource::Column,
            })
        })
        .collect();
    if !q.quoted {
        return out;
    }
    let expected: Vec<String> = out.iter().map(|e| normalize(&e.text)).collect();
    let columns: Vec<(&String, String)> = row
        .and_then(serde_json::Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k, normalize(v.as_str()?))))
                .collect()
        })
        .unwrap_or_default();
    for text in quoted_strings(prompt) {
        if expected.contains(&text) {
            continue;
        }
        let column = columns
            .iter()
            .find(|(_, v)| *v == text)
            .map(|(k, _)| (*k).clone());
        out.push(ExpectedString {
            column,
            text,
            source: StringSource::Prompt,
        });
    }
    out
}

/// How one job's painted copy is checked: the strings it must show, as
/// resolved for its locale, and what a confirmed mismatch leads to.
#[derive(Debug, Clone, PartialEq)]
pub struct QaPlan {
    /// The reader model.
    pub reader: crate::domain::ReaderModel,
    /// Every expected column whose copy is not empty in this locale, then
    /// the other strings the prompt quotes (see [`qa_strings`]).
    pub expected: Vec<ExpectedString>,
    /// What a confirmed mismatch leads to.
    pub on_mismatch: crate::campaign::OnMismatch,
    /// Images bought again at most, after the first.
    pub max_regenerations: u32,
    /// Allowed character error rate per string.
    pub tolerance: f64,
    /// The overlay the job falls back to (the variant declares text boxes).
    pub fallback: Option<QaFallback>,
}

/// What a job whose painted copy cannot be trusted falls back to:
/// copy-free art from the variant's template, rendered as an overlay
/// variant's art is (no locale, no copy), with this locale's copy typeset
/// into the variant's text boxes by adloc, exact by construction.
#[derive(Debug, Clone, PartialEq)]
pub struct QaFallback {
    /// The art's prompt.
    pub art_prompt: String,
    /// `(box, copy)` in box order, the copy resolved for this locale.
    pub boxes: Vec<(crate::imaging::TextBoxSpec, String)>,
}

impl JobSpec {
    /// The request and its hash when `model` (of the chain) is asked
    /// instead of the primary. The prompt, frame and references are the
    /// same; only the model and its quality differ.
    pub fn request_for(&self, model: &ModelId) -> (ImageRequest, String) {
        let mut req = self.request.clone();
        if &req.model != model {
            req.quality = self
                .chain
                .iter()
                .find(|(m, _)| m == model)
                .and_then(|(_, q)| *q);
            req.model = model.clone();
        }
        let hash = request_hash(&req);
        (req, hash)
    }

    /// The estimate of this job at the dearest model of its chain (what it
    /// costs if it falls back all the way): the budget's worst case.
    pub fn dearest_estimate(
        &self,
        prices: &crate::domain::PriceTable,
        mode: crate::domain::BillingMode,
    ) -> f64 {
        self.chain
            .iter()
            .map(|(m, _)| prices.estimate(&self.request_for(m).0, mode))
            .fold(prices.estimate(&self.request, mode), f64::max)
    }

    /// The estimate of this job's next purchase: an edit of an image made
    /// earlier (`edit`: a revision is due; or a `text = "edit"` locale,
    /// always made by editing its base locale's image) or an image from
    /// the prompt. `dearest` prices it at the dearest model of the chain
    /// (the budget's worst case), else at the primary.
    pub fn purchase_estimate(
        &self,
        prices: &crate::domain::PriceTable,
        mode: crate::domain::BillingMode,
        edit: bool,
        dearest: bool,
    ) -> f64 {
        if !(edit || self.copy_edit.is_some()) {
            return if dearest {
                self.dearest_estimate(prices, mode)
            } else {
                prices.estimate(&self.request, mode)
            };
        }
        let primary = prices.estimate_edit(&self.request, mode);
        if !dearest {
            return primary;
        }
        self.chain
            .iter()
            .map(|(m, _)| prices.estimate_edit(&self.request_for(m).0, mode))
            .fold(primary, f64::max)
    }

    /// What a job asks `model` for: its own request (at that model), or the
    /// copy-free art when its copy QA fell back to overlay (`overlay`).
    pub fn request_to_send(&self, model: &ModelId, overlay: bool) -> ImageRequest {
        match self.fallback_art_for(model) {
            Some(art) if overlay => art,
            _ if &self.request.model == model => self.request.clone(),
            _ => self.request_for(model).0,
        }
    }

    /// The copy-free art request of a job that fell back to overlay, when
    /// `model` is asked: the job's frame and references, the art prompt,
    /// no copy. `None` when the job has no overlay fallback.
    pub fn fallback_art_for(&self, model: &ModelId) -> Option<ImageRequest> {
        let fallback = self.qa.as_ref()?.fallback.as_ref()?;
        let (mut req, _) = self.request_for(model);
        req.prompt = fallback.art_prompt.clone();
        req.proof.lines.clear();
        Some(req)
    }

    /// The model after `model` in the chain, if any.
    pub fn next_model(&self, model: &ModelId) -> Option<&ModelId> {
        let i = self.chain.iter().position(|(m, _)| m == model)?;
        self.chain.get(i + 1).map(|(m, _)| m)
    }
}

/// Hex SHA-256 over the canonical form of everything that reaches the
/// provider: model, prompt, image settings, grounding and reference bytes.
pub fn request_hash(req: &ImageRequest) -> String {
    let refs: Vec<_> = req
        .references
        .iter()
        .map(|r| json!({"mime": r.mime_type, "sha256": hex::encode(Sha256::digest(r.bytes.as_slice()))}))
        .collect();
    let mut canonical = json!({
        "v": 1,
        "model": req.model.as_str(),
        "prompt": req.prompt,
        "aspect_ratio": req.aspect_ratio.as_str(),
        "image_size": req.image_size.as_str(),
        "grounding": req.grounding,
        "references": refs,
    });
    // Only models with a quality knob add the key, so every Gemini request
    // keeps the hash it had before GPT Image existed (no regeneration).
    if let Some(q) = req.quality {
        canonical["quality"] = json!(q.as_str());
    }
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Everything that differs between a model-text job and an art job.
struct JobInput<'a> {
    row: &'a Row,
    variant: &'a Variant,
    target: Target,
    context: serde_json::Value,
    /// The copy-free art context for a QA overlay fallback.
    fallback_context: Option<serde_json::Value>,
    references: Vec<ReferenceImage>,
    proof: ProofText,
    resolved_locale: Option<String>,
    resolution: BTreeMap<String, String>,
    copy: BTreeMap<String, String>,
}

/// Render the prompt and build the spec: the one builder for model jobs and
/// art jobs alike. A render failure, or a prompt that renders empty, is an
/// input error naming the template, its line, the row and the target.
fn build_spec(
    campaign: &Campaign,
    prompts: &Prompts,
    input: JobInput<'_>,
) -> Result<JobSpec, InputProblem> {
    let JobInput {
        row,
        variant,
        target,
        context,
        fallback_context,
        references,
        proof,
        resolved_locale,
        resolution,
        copy,
    } = input;
    let what = match &target {
        Target::Locale(l) => format!("locale {l}, variant {}", variant.name),
        Target::Art => format!("art for overlay variant {}", variant.name),
    };
    let located = |f: &RenderFailure, why: &str| InputProblem {
        file: variant.template_path.clone(),
        line: f.line,
        column: f.column,
        message: format!(
            "{}{why} (row `{}` from {} line {}, {what})",
            f.message,
            row.id,
            campaign.rows.path.display(),
            row.line,
        ),
    };
    let prompt = match prompts.render(&variant.name, &context) {
        Ok(p) => p,
        Err(f) => {
            let why = if target.is_art() && art_needs_explaining(campaign, &f) {
                "; an overlay variant's art is shared by every locale, so its template gets no `locale` and no copy columns (adloc typesets the copy itself): describe the picture only"
            } else {
                ""
            };
            return Err(located(&f, why));
        }
    };
    if prompt.trim().is_empty() {
        return Err(InputProblem {
            file: variant.template_path.clone(),
            line: None,
            column: None,
            message: format!(
                "the template renders to an empty prompt (row `{}` from {} line {}, {what}); an empty prompt would be sent as is",
                row.id,
                campaign.rows.path.display(),
                row.line,
            ),
        });
    }
    let model = variant
        .primary()
        .cloned()
        .unwrap_or_else(|| campaign.model.clone());
    let request = ImageRequest {
        quality: variant.quality_for(&model),
        model,
        prompt,
        aspect_ratio: variant.aspect_ratio.clone(),
        image_size: variant.image_size,
        references,
        grounding: variant.grounding,
        proof,
        // Edits of a rejected image are queued by the store at run time,
        // never planned: a plan is only what the campaign asks for.
        edit: None,
        read_copy_side: None,
    };
    let request_hash = request_hash(&request);
    // The expected copy is the row's copy as the template saw it: resolved
    // along the locale's fallback chain.
    let qa = match (&target, variant.qa.as_ref()) {
        (Target::Locale(_), Some(q)) => {
            let expected = qa_strings(q, context.get("row"), &request.prompt);
            let fallback = match &fallback_context {
                Some(art) if !q.fallback_boxes.is_empty() => Some(fallback_for(
                    campaign, prompts, row, variant, q, art, &context, &located,
                )?),
                _ => None,
            };
            Some(QaPlan {
                reader: q.reader,
                expected,
                on_mismatch: q.on_mismatch,
                max_regenerations: q.max_regenerations,
                tolerance: q.tolerance,
                fallback,
            })
        }
        _ => None,
    };
    Ok(JobSpec {
        key: JobKey {
            campaign: campaign.name.clone(),
            row: row.id.clone(),
            target,
            variant: variant.name.clone(),
        },
        resolved_locale,
        resolution,
        request,
        request_hash,
        row_line: row.line,
        chain: variant
            .models
            .iter()
            .map(|m| (m.clone(), variant.quality_for(m)))
            .collect(),
        fallback_on: variant.fallback_on.clone(),
        qa,
        copy,
        copy_edit: None,
    })
}

/// The overlay fallback of a QA job: the template rendered in the art
/// context, and each fallback box filled with this locale's copy (as the
/// template saw it). A template that cannot render without copy is an input
/// error: the fallback would have no art to typeset on.
#[allow(clippy::too_many_arguments)]
fn fallback_for(
    campaign: &Campaign,
    prompts: &Prompts,
    row: &Row,
    variant: &Variant,
    q: &crate::campaign::QaSettings,
    art_context: &serde_json::Value,
    context: &serde_json::Value,
    located: &dyn Fn(&RenderFailure, &str) -> InputProblem,
) -> Result<QaFallback, InputProblem> {
    let art_prompt = prompts.render(&variant.name, art_context).map_err(|f| {
        let why = if art_needs_explaining(campaign, &f) {
            "; copy QA falls back to typesetting the copy into this variant's text boxes, on copy-free art from the same template rendered with no `locale` and no copy columns: guard the copy with {{#if (eq variant.text \"model\")}}…{{/if}}, or remove the text boxes"
        } else {
            ""
        };
        located(&f, why)
    })?;
    if art_prompt.trim().is_empty() {
        return Err(InputProblem {
            file: variant.template_path.clone(),
            line: None,
            column: None,
            message: format!(
                "the template renders to an empty prompt for the copy-free art QA falls back to (row `{}` from {} line {}, variant {})",
                row.id,
                campaign.rows.path.display(),
                row.line,
                variant.name
            ),
        });
    }
    let boxes = q
        .fallback_boxes
        .iter()
        .map(|b| {
            let text = context
                .get("row")
                .and_then(|r| r.get(&b.column))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            (b.clone(), text)
        })
        .collect();
    Ok(QaFallback { art_prompt, boxes })
}

/// True when an art template failed because it asked for a locale or copy,
/// which art templates never get.
fn art_needs_explaining(campaign: &Campaign, f: &RenderFailure) -> bool {
    match &f.kind {
        FailureKind::NoLocale => true,
        FailureKind::MissingValue(path) => {
            path == "locale"
                || path.starts_with("locale.")
                || path
                    .strip_prefix("row.")
                    .is_some_and(|c| copy_columns(campaign).contains(c))
        }
        FailureKind::Other => false,
    }
}

/// Expand every row × locale × model-text variant and every row × overlay
/// variant's art. Failures are input errors naming row id, locale, variant,
/// template file and line; all are collected.
pub fn expand(campaign: &Campaign) -> Result<Vec<JobSpec>, InputErrors> {
    let prompts = Prompts::new(campaign.variants.iter().map(Variant::template))?;
    let mut errors = InputErrors::default();
    let copy = campaign.rows.copy_columns();
    let (overlay_variants, model_variants): (Vec<&Variant>, Vec<&Variant>) = campaign
        .variants
        .iter()
        .partition(|v| v.text.boxes().is_some());
    let mut specs = Vec::with_capacity(
        campaign.rows.rows.len() * (campaign.locales.len() * model_variants.len() + 1),
    );
    let mut push = |r: Result<JobSpec, InputProblem>| match r {
        Ok(s) => specs.push(s),
        Err(p) => errors.push(p),
    };
    for row in &campaign.rows.rows {
        for locale in &campaign.locales {
            let resolved = campaign.rows.resolve(row, locale);
            let info = locale.info();
            let resolution: BTreeMap<String, String> = copy
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
            let resolved_locale = copy
                .iter()
                .find_map(|c| resolution.get(c).cloned())
                .unwrap_or_else(|| locale.tag().to_string());
            let row_values: serde_json::Map<String, serde_json::Value> = resolved
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.value.clone())))
                .collect();
            let copy_text: BTreeMap<String, String> = copy
                .iter()
                .filter_map(|c| resolved.get(c).map(|r| (c.clone(), r.value.clone())))
                .collect();
            let lines: Vec<String> = copy
                .iter()
                .filter_map(|c| resolved.get(c).map(|r| r.value.clone()))
                .collect();
            for variant in &model_variants {
                push(build_spec(
                    campaign,
                    &prompts,
                    JobInput {
                        row,
                        variant,
                        target: Target::Locale(locale.clone()),
                        context: json!({
                            "row": row_values,
                            "locale": info,
                            "variant": {
                                "name": variant.name,
                                "aspect_ratio": variant.aspect_ratio.as_str(),
                                "image_size": variant.image_size.as_str(),
                                "text": variant.text.as_str(),
                            },
                            "campaign": {"name": campaign.name},
                        }),
                        fallback_context: variant
                            .qa
                            .as_ref()
                            .filter(|q| !q.fallback_boxes.is_empty())
                            .map(|_| overlay::art_context(campaign, row, variant)),
                        references: campaign.references.for_job(row.id.as_str(), locale.tag()),
                        proof: proof_for(
                            Some(locale),
                            &variant.name,
                            lines.clone(),
                            info.direction == "rtl",
                        ),
                        resolved_locale: Some(resolved_locale.clone()),
                        resolution: resolution.clone(),
                        copy: copy_text.clone(),
                    },
                ));
            }
        }
    }
    // Art after every model job, as the queue has always numbered them.
    for row in &campaign.rows.rows {
        for variant in &overlay_variants {
            push(build_spec(
                campaign,
                &prompts,
                JobInput {
                    row,
                    variant,
                    target: Target::Art,
                    context: overlay::art_context(campaign, row, variant),
                    fallback_context: None,
                    references: campaign.references.for_art(row.id.as_str()),
                    proof: proof_for(None, &variant.name, Vec::new(), false),
                    resolved_locale: None,
                    resolution: BTreeMap::new(),
                    copy: BTreeMap::new(),
                },
            ));
        }
    }
    plan_copy_edits(campaign, &mut specs, &mut errors);
    if (!overlay_variants.is_empty() || campaign.variants.iter().any(overlay::layered_model_text))
        && let Err(e) = compose_plan(campaign)
    {
        errors.0.extend(e.0);
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

fn proof_for(locale: Option<&Locale>, variant: &str, lines: Vec<String>, rtl: bool) -> ProofText {
    ProofText {
        // BCP-47 "undetermined" for art: it carries no copy.
        locale: locale.map_or_else(|| "und".to_string(), |l| l.tag().to_string()),
        variant: variant.to_string(),
        lines,
        rtl,
    }
}

#[cfg(test)]
mod copy_edit_tests {
    use std::collections::BTreeMap;

    #[test]
    fn the_instruction_swaps_each_differing_column_and_keeps_everything_else() {
        let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let base = m(&[("cta", "Shop now"), ("headline", "Own the ridge.")]);
        let de = m(&[("cta", "Shop now"), ("headline", "Erobere den Grat.")]);
        assert_eq!(
            super::copy_instruction(&base, &de),
            "Replace the headline 'Own the ridge.' with 'Erobere den Grat.' and keep everything else."
        );
        assert_eq!(
            super::copy_instruction(&base, &base),
            "Keep this image exactly as it is."
        );
    }
}
