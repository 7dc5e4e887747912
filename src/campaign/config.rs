//! `campaign.toml`: the raw serde shape, then validation into typed values
//! with the line and column of every bad value.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use super::qa::QaKeys;
use super::span::at;
use super::valid_campaign_name;
use crate::domain::{
    AspectRatio, FallbackTrigger, ImageSize, InputErrors, InputProblem, Locale, ModelId,
    PricingOverride, Quality, ReaderModel, RetrySettings, Vendor,
};
use crate::imaging::RenditionSpec;

/// How a run buys its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Realtime calls only.
    Realtime,
    /// Batch API for everything.
    Batch,
    /// Batch for the bulk, realtime for small remainders and deadlines.
    Auto,
}

impl FromStr for RunMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "realtime" => Ok(RunMode::Realtime),
            "batch" => Ok(RunMode::Batch),
            "auto" => Ok(RunMode::Auto),
            other => Err(format!(
                "unknown mode `{other}` (expected realtime, batch or auto)"
            )),
        }
    }
}

impl RunMode {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Realtime => "realtime",
            RunMode::Batch => "batch",
            RunMode::Auto => "auto",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Spanned<String>,
    rows: Spanned<String>,
    locales: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    base_locale: Option<Spanned<String>>,
    model: Spanned<String>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    #[serde(default)]
    base_url: Option<Spanned<String>>,
    variants: Spanned<Vec<RawVariant>>,
    #[serde(default)]
    budget: Option<RawBudget>,
    #[serde(default)]
    pricing: BTreeMap<String, BTreeMap<String, RawPrice>>,
    #[serde(default)]
    retry: Option<RawRetry>,
    #[serde(default)]
    rate_limit: Option<RawRateLimit>,
    #[serde(default)]
    batch: Option<RawBatch>,
    #[serde(default)]
    gemini: Option<RawGemini>,
    #[serde(default)]
    references: Option<Spanned<super::references::RawReferences>>,
    /// Copy QA defaults; see [`super::qa`].
    #[serde(default)]
    qa: Option<Spanned<super::qa::RawQa>>,
    /// Who to tell when a run finishes; see [`super::notify`].
    #[serde(default)]
    notify: Option<Spanned<super::notify::RawNotify>>,
    /// The campaign's own placements; see [`super::placements`].
    #[serde(default)]
    placements: BTreeMap<String, Spanned<super::placements::RawPlacement>>,
    /// The brand kit; see [`super::brand`].
    #[serde(default)]
    brand: Option<Spanned<super::brand::RawBrand>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    name: Spanned<String>,
    template: Spanned<String>,
    aspect_ratio: Spanned<String>,
    #[serde(default)]
    image_size: Option<Spanned<String>>,
    #[serde(default)]
    grounding: bool,
    /// A model id, or a chain tried in order (`["gpt-image-2.6-sunburst", "gemini-3-pro-image"]`).
    #[serde(default)]
    model: Option<Spanned<toml::Value>>,
    /// GPT Image quality.
    #[serde(default)]
    quality: Option<Spanned<String>>,
    /// What moves a job to the next model of the chain.
    #[serde(default)]
    fallback_on: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    renditions: Vec<Spanned<super::renditions::RawRendition>>,
    /// `model` (default) or `overlay`; see [`crate::overlay`].
    #[serde(default)]
    text: Option<Spanned<String>>,
    /// Overlay text boxes (or, with copy QA, its overlay fallback).
    #[serde(default)]
    text_boxes: Vec<Spanned<super::text_boxes::RawTextBox>>,
    /// Copy QA keys overriding `[qa]` for this variant.
    #[serde(default)]
    qa: Option<Spanned<super::qa::RawQa>>,
    /// The ad platforms' slots this variant is delivered to.
    #[serde(default)]
    placements: Option<Spanned<Vec<Spanned<String>>>>,
    /// The point of the master the placements' crops keep.
    #[serde(default)]
    focal: Option<Spanned<Vec<f64>>>,
    /// Brand layers; see [`super::brand`].
    #[serde(default)]
    layers: Vec<Spanned<super::brand::RawLayer>>,
    /// Mirror boxes and layers for right-to-left locales (default on).
    #[serde(default)]
    mirror_rtl: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    max_usd: Option<Spanned<f64>>,
}

/// `[pricing."<image model>"."<size>"]` takes `realtime` and `batch` (USD
/// per image); `[pricing."<reader>".tokens]` takes `input` and `output`
/// (USD per 1M realtime tokens).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    realtime: Option<f64>,
    batch: Option<f64>,
    input: Option<f64>,
    output: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<u32>,
    base_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
    budget_ratio: Option<f64>,
    budget_floor: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    rpm: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    max_requests: Option<usize>,
    auto_realtime_below: Option<usize>,
    max_enqueued_tokens: Option<u64>,
    poll_initial_s: Option<f64>,
    poll_max_s: Option<f64>,
    inline_max_bytes: Option<usize>,
    on_failure: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGemini {
    api_version: Option<String>,
    connect_timeout_s: Option<f64>,
    request_timeout_s: Option<f64>,
}

/// What to do with the unfinished jobs of a FAILED, EXPIRED or CANCELLED batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFailurePolicy {
    /// Put them in a new batch (default).
    Resubmit,
    /// Finish them with realtime calls (full price, now).
    Realtime,
}

/// Batch settings, `[batch]` in campaign.toml.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSettings {
    /// Requests per batch.
    pub max_requests: usize,
    /// Auto mode: fewer pending jobs than this go realtime.
    pub auto_realtime_below: usize,
    /// Cap on tokens enqueued across this campaign's open batches (the
    /// per-model enqueued-token limit of the account's tier).
    pub max_enqueued_tokens: Option<u64>,
    /// First poll interval.
    pub poll_initial: std::time::Duration,
    /// Longest poll interval.
    pub poll_max: std::time::Duration,
    /// Send batches whose JSONL is under this many bytes inline instead of
    /// uploading a file (off by default: file input is the documented route).
    pub inline_max_bytes: Option<usize>,
    /// FAILED/EXPIRED/CANCELLED batches: resubmit or finish in realtime.
    pub on_failure: BatchFailurePolicy,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            // Each image comes back as 1–3 MB of base64: 200 keeps a results
            // file well under a gigabyte.
            max_requests: 200,
            auto_realtime_below: 20,
            max_enqueued_tokens: None,
            poll_initial: std::time::Duration::from_secs(10),
            poll_max: std::time::Duration::from_secs(300),
            inline_max_bytes: None,
            on_failure: BatchFailurePolicy::Resubmit,
        }
    }
}

/// Gemini client settings, `[gemini]` in campaign.toml.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeminiSettings {
    /// API version path segment (default `v1beta`).
    pub api_version: Option<String>,
    /// Connect timeout.
    pub connect_timeout: Option<std::time::Duration>,
    /// Whole-request timeout.
    pub request_timeout: Option<std::time::Duration>,
}

/// A variant after validation, before its template is located.
pub(super) struct VariantConfig {
    pub name: String,
    pub template: String,
    pub template_line: u64,
    pub template_col: u64,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
    pub grounding: bool,
    pub models: Vec<ModelId>,
    pub quality: Option<Quality>,
    pub fallback_on: Vec<FallbackTrigger>,
    pub renditions: Vec<RenditionSpec>,
    pub text: super::TextMode,
    pub qa: Option<super::qa::ResolvedQa>,
    pub placements: Vec<crate::domain::placement::PlacementSpec>,
    pub focal: (f64, f64),
    pub layers: Vec<super::brand::LayerSpec>,
    pub mirror_rtl: bool,
}

/// The validated configuration.
pub(super) struct Config {
    pub name: String,
    pub rows: String,
    pub locales: Vec<Locale>,
    pub base_locale: Locale,
    pub model: ModelId,
    pub mode: RunMode,
    pub base_url: Option<String>,
    pub variants: Vec<VariantConfig>,
    pub budget_usd: Option<f64>,
    pub pricing: Vec<PricingOverride>,
    pub retry: RetrySettings,
    pub rpm: Option<u32>,
    pub batch: BatchSettings,
    pub gemini: GeminiSettings,
    /// `[references]`, checked by `crate::campaign::references::load` once the rows are read.
    pub references: Option<Spanned<super::references::RawReferences>>,
    /// `[notify]`, validated.
    pub notify: Option<super::notify::NotifySettings>,
    /// `[brand]`, validated; its files are read by `crate::campaign::brand::load`.
    pub brand: super::brand::BrandSettings,
}

/// The safe-area check of a parsed variant's text boxes (overlay boxes,
/// or copy QA's overlay fallback) and brand layers against its placements,
/// at the master's documented frame (its nominal ratio when the model has
/// no table); with `rtl`, their mirrored boxes too.
fn check_safe_areas(
    path: &Path,
    text: &str,
    v: &VariantConfig,
    spans: (&[std::ops::Range<usize>], &[std::ops::Range<usize>]),
    rtl: bool,
    errors: &mut InputErrors,
) {
    if v.placements.is_empty() {
        return;
    }
    let (box_spans, layer_spans) = spans;
    let boxes: &[crate::imaging::TextBoxSpec] = match (&v.text, &v.qa) {
        (super::TextMode::Overlay(b), _) => b,
        (
            _,
            Some(super::qa::ResolvedQa {
                settings: Some(q), ..
            }),
        ) => &q.fallback_boxes,
        _ => &[],
    };
    let ratio = v
        .models
        .first()
        .and_then(|m| m.family().pixel_size(v.aspect_ratio.as_str(), v.image_size))
        .map(|(w, h)| f64::from(w) / f64::from(h))
        .or_else(|| {
            crate::domain::parse_ratio(v.aspect_ratio.as_str())
                .map(|(w, h)| f64::from(w) / f64::from(h))
        });
    let Some(ratio) = ratio else { return };
    let mut spanned: Vec<(std::ops::Range<usize>, String, crate::imaging::FracBox)> = Vec::new();
    // A box or layer that failed to parse is already an error; spans would
    // not line up.
    if boxes.len() == box_spans.len() {
        for (span, b) in box_spans.iter().zip(boxes) {
            let frame = crate::imaging::FracBox {
                x: b.x,
                y: b.y,
                width: b.width,
                height: b.height,
            };
            spanned.push((
                span.clone(),
                format!("the text box for `{}`", b.column),
                frame,
            ));
        }
    }
    if v.layers.len() == layer_spans.len() {
        for (span, l) in layer_spans.iter().zip(&v.layers) {
            spanned.push((
                span.clone(),
                format!("the {} layer", l.kind.name()),
                l.frame,
            ));
        }
    }
    let at = |span: std::ops::Range<usize>, msg: String| at(path, text, span, msg);
    for (span, what, frame) in spanned {
        let before = errors.0.len();
        let entry = [(span.clone(), what.clone(), frame)];
        super::placements::check_safe_areas(
            &at,
            &v.name,
            ratio,
            v.focal,
            &entry,
            &v.placements,
            errors,
        );
        // The mirrored box of a right-to-left locale, unless the box itself
        // was already reported.
        if rtl && errors.0.len() == before {
            let mirrored = [(
                span,
                format!("{what}, mirrored for right-to-left locales,"),
                frame.mirrored(),
            )];
            super::placements::check_safe_areas(
                &at,
                &v.name,
                ratio,
                v.focal,
                &mirrored,
                &v.placements,
                errors,
            );
        }
    }
}

/// `" (in the chain …)"` when a variant names more than one model.
fn in_chain(chain: &[ModelId]) -> String {
    if chain.len() < 2 {
        return String::new();
    }
    let names: Vec<String> = chain.iter().map(ToString::to_string).collect();
    format!(" (in the chain {})", names.join(" → "))
}

/// A variant's `model`: a string or an array of strings, each a known,
/// current model; absent, the campaign's `model`. Problems go to `errors`
/// at the value; the chain holds the models that parsed.
fn parse_chain(
    raw: Option<&Spanned<toml::Value>>,
    campaign_default: Option<&ModelId>,
    at: &dyn Fn(std::ops::Range<usize>, String) -> InputProblem,
    errors: &mut InputErrors,
) -> Vec<ModelId> {
    let Some(raw) = raw else {
        return campaign_default.into_iter().cloned().collect();
    };
    let ids: Vec<&str> = match raw.get_ref() {
        toml::Value::String(s) => vec![s.as_str()],
        toml::Value::Array(items) if !items.is_empty() => {
            let ids: Vec<&str> = items.iter().filter_map(toml::Value::as_str).collect();
            if ids.len() != items.len() {
                errors.push(at(
                    raw.span(),
                    "model chain must be a list of model ids (strings)".into(),
                ));
            }
            ids
        }
        _ => {
            errors.push(at(
                raw.span(),
                "model must be a model id or a non-empty list of model ids tried in order".into(),
            ));
            return Vec::new();
        }
    };
    let mut chain: Vec<ModelId> = Vec::new();
    for id in ids {
        match id.parse::<ModelId>() {
            Ok(m) if chain.contains(&m) => errors.push(at(
                raw.span(),
                format!("model `{m}` appears twice in the chain"),
            )),
            Ok(m) => chain.push(m),
            Err(e) => errors.push(at(raw.span(), e.to_string())),
        }
    }
    chain
}

/// Validate one `[[variants]]` entry against the campaign's default model
/// and the variants before it.
#[allow(clippy::too_many_arguments)]
fn parse_variant(
    path: &Path,
    text: &str,
    mut v: RawVariant,
    model: Option<&ModelId>,
    campaign_qa: Option<&QaKeys>,
    brand: &super::brand::BrandSettings,
    taken: &[VariantConfig],
    errors: &mut InputErrors,
) -> VariantConfig {
    let at = |span: std::ops::Range<usize>, msg: String| at(path, text, span, msg);
    let vname = v.name.get_ref().clone();
    if !valid_campaign_name(&vname) {
        errors.push(at(
            v.name.span(),
            format!("variant name `{vname}` must match [a-z0-9-]+ (it is used in output paths)"),
        ));
    }
    if taken.iter().any(|o| o.name == vname) {
        errors.push(at(
            v.name.span(),
            format!("variant `{vname}` is defined twice"),
        ));
    }
    let ratio: AspectRatio = match v.aspect_ratio.get_ref().parse() {
        Ok(r) => r,
        Err(e) => {
            errors.push(at(v.aspect_ratio.span(), e));
            AspectRatio::square()
        }
    };
    let size = match &v.image_size {
        None => ImageSize::K1,
        Some(s) => match s.get_ref().parse::<ImageSize>() {
            Ok(sz) => sz,
            Err(e) => {
                errors.push(at(s.span(), e));
                ImageSize::K1
            }
        },
    };
    let chain = parse_chain(v.model.as_ref(), model, &at, errors);
    let model_span = v.model.as_ref().map_or(v.name.span(), |m| m.span());
    let quality = match &v.quality {
        None => None,
        Some(q) => match q.get_ref().parse::<Quality>() {
            Ok(q) => Some(q),
            Err(e) => {
                errors.push(at(q.span(), e));
                None
            }
        },
    };
    let gpt: Vec<&ModelId> = chain
        .iter()
        .filter(|m| !m.family().qualities().is_empty())
        .collect();
    if let (Some(qs), true) = (&v.quality, gpt.is_empty() && !chain.is_empty()) {
        errors.push(at(
            qs.span(),
            format!(
                "variant `{vname}` sets quality, but none of its models has a quality setting (quality applies to GPT Image models)"
            ),
        ));
    }
    if let (Some(q), Some(qs)) = (quality, &v.quality) {
        for m in &gpt {
            if !m.family().qualities().contains(&q) {
                errors.push(at(
                    qs.span(),
                    format!(
                        "quality `{q}` is not offered by {m} (offered: {})",
                        m.family()
                            .qualities()
                            .iter()
                            .map(|q| q.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    let fallback_on = match &v.fallback_on {
        None => FallbackTrigger::DEFAULT.to_vec(),
        Some(list) => {
            let mut out = Vec::new();
            for t in list.get_ref() {
                match t.get_ref().parse::<FallbackTrigger>() {
                    Ok(t) if !out.contains(&t) => out.push(t),
                    Ok(_) => {}
                    Err(_) => errors.push(at(
                        t.span(),
                        format!(
                            "unknown fallback trigger `{}` (expected outage, quota, model_unavailable or blocked)",
                            t.get_ref()
                        ),
                    )),
                }
            }
            out
        }
    };
    for m in &chain {
        let fam = m.family();
        if !fam.aspect_ratios().contains(&ratio.as_str()) {
            errors.push(at(
                v.aspect_ratio.span(),
                format!(
                    "aspect ratio `{ratio}` is not supported by {m}{} (supported: {})",
                    in_chain(&chain),
                    fam.aspect_ratios().join(", ")
                ),
            ));
        }
        if !fam.image_sizes().contains(&size) {
            let span = v
                .image_size
                .as_ref()
                .map_or(v.aspect_ratio.span(), |s| s.span());
            let supported = fam
                .image_sizes()
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let msg = match fam.image_sizes().first() {
                // GPT Image refuses any frame under 655,360 pixels (OpenAI
                // image-generation guide, "Size constraints"): every 512
                // frame is, so the request would be a 400 on every job.
                Some(smallest) if fam.vendor() == Vendor::OpenAi && size < *smallest => format!(
                    "image size `{size}` is too small for {m}{}: GPT Image needs at least {} pixels per image; the smallest tier it draws is {smallest} (supported: {supported})",
                    in_chain(&chain),
                    crate::domain::GPT_MIN_PIXELS,
                ),
                _ => format!(
                    "image size `{size}` is not supported by {m}{} (supported: {supported})",
                    in_chain(&chain),
                ),
            };
            errors.push(at(span, msg));
        }
        if v.grounding && !fam.supports_grounding() {
            errors.push(at(
                if v.model.is_some() { model_span.clone() } else { v.name.span() },
                format!("variant `{vname}` sets grounding = true, but {m} does not support Google Search grounding"),
            ));
        }
    }
    let renditions = super::renditions::parse_specs(path, text, &vname, v.renditions, errors);
    let (tl, tc) = super::span::line_col(text, v.template.span().start);
    let own_qa = v.qa.take().map(|q| {
        super::qa::parse_keys(
            path,
            text,
            &format!("variant `{vname}` [variants.qa]"),
            q,
            errors,
        )
    });
    // With copy QA, a model-text variant's text boxes are its overlay
    // fallback rather than a mistake.
    let model_text = v.text.as_ref().is_none_or(|t| t.get_ref() == "model");
    // Layers are composited locally: onto the art of an overlay variant,
    // onto the model's own image of a model-text variant (which is kept
    // un-layered). A `text = "edit"` locale is an edit of its base locale's
    // image, whose layers it would inherit painted in: refused.
    if let (Some(first), true) = (
        v.layers.first(),
        v.text.as_ref().is_some_and(|t| t.get_ref() == "edit"),
    ) {
        errors.push(at(
            first.get_ref().kind_span(),
            format!(
                "variant `{vname}` declares layers, but text = \"edit\" variants cannot carry brand layers (use text = \"model\" or \"overlay\")"
            ),
        ));
    }
    let layers = super::brand::parse_layers(
        path,
        text,
        &vname,
        brand,
        std::mem::take(&mut v.layers),
        v.text_boxes.first().map(|b| b.span().start),
        errors,
    );
    let fallback_boxes = if model_text && (campaign_qa.is_some() || own_qa.is_some()) {
        super::text_boxes::parse_boxes(
            path,
            text,
            &vname,
            std::mem::take(&mut v.text_boxes),
            &brand.palette,
            errors,
        )
    } else {
        Vec::new()
    };
    let text_mode = super::text_boxes::parse_text_mode(
        path,
        text,
        &vname,
        v.name.span(),
        v.text.as_ref(),
        v.text_boxes,
        &brand.palette,
        errors,
    );
    let qa = super::qa::resolve(
        path,
        text,
        &vname,
        campaign_qa,
        own_qa.as_ref(),
        &text_mode,
        fallback_boxes,
        errors,
    );
    VariantConfig {
        name: vname,
        template: v.template.get_ref().clone(),
        template_line: tl,
        template_col: tc,
        aspect_ratio: ratio,
        image_size: size,
        grounding: v.grounding,
        models: chain,
        quality,
        fallback_on,
        renditions,
        text: text_mode,
        qa,
        placements: Vec::new(),
        focal: (0.5, 0.5),
        layers,
        mirror_rtl: v.mirror_rtl.unwrap_or(true),
    }
}

/// `[pricing."<reader>".tokens]`: `input` and `output` USD per 1M realtime
/// tokens (Batch Mode half), each a non-negative number.
fn parse_reader_pricing(
    path: &Path,
    id: &str,
    reader: ReaderModel,
    tables: BTreeMap<String, RawPrice>,
    pricing: &mut Vec<PricingOverride>,
    errors: &mut InputErrors,
) {
    for (key, price) in tables {
        let table = format!("[pricing.\"{id}\".{key}]");
        if key != "tokens" {
            errors.push(InputProblem::file(
                path,
                format!(
                    "{table}: a reader is priced per token: use [pricing.\"{id}\".tokens] with input and output (USD per 1M tokens)"
                ),
            ));
            continue;
        }
        if price.realtime.is_some() || price.batch.is_some() {
            errors.push(InputProblem::file(
                path,
                format!(
                    "{table}: a reader takes input and output (USD per 1M realtime tokens; batch is half), not realtime or batch"
                ),
            ));
        }
        let rate = |v: Option<f64>, what: &str, errors: &mut InputErrors| match v {
            Some(v) if !(v.is_finite() && v >= 0.0) => {
                errors.push(InputProblem::file(
                    path,
                    format!(
                        "{table}: {what} = {v} must be a non-negative price in USD per 1M tokens"
                    ),
                ));
                None
            }
            v => v,
        };
        let input = rate(price.input, "input", errors);
        let output = rate(price.output, "output", errors);
        pricing.push(PricingOverride::Reader {
            reader,
            input,
            output,
        });
    }
}

/// Parse and validate; `None` when the file cannot be used at all.
pub(super) fn parse(path: &Path, text: &str, errors: &mut InputErrors) -> Option<Config> {
    let at = |span: std::ops::Range<usize>, msg: String| at(path, text, span, msg);
    let raw: Raw = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let msg = e.message().to_string();
            errors.push(match e.span() {
                Some(span) => at(span, msg),
                None => InputProblem::file(path, msg),
            });
            return None;
        }
    };

    let name = raw.name.get_ref().clone();
    if !valid_campaign_name(&name) {
        errors.push(at(
            raw.name.span(),
            format!("campaign name `{name}` must match [a-z0-9-]+ (it is used in output paths)"),
        ));
    }

    let model = match raw.model.get_ref().parse::<ModelId>() {
        Ok(m) => Some(m),
        Err(e) => {
            errors.push(at(raw.model.span(), e.to_string()));
            None
        }
    };

    let mode = match &raw.mode {
        None => RunMode::Auto,
        Some(m) => match m.get_ref().parse() {
            Ok(m) => m,
            Err(e) => {
                errors.push(at(m.span(), e));
                RunMode::Auto
            }
        },
    };

    let mut locales: Vec<Locale> = Vec::new();
    if raw.locales.get_ref().is_empty() {
        errors.push(at(
            raw.locales.span(),
            "`locales` must list at least one locale".into(),
        ));
    }
    for l in raw.locales.get_ref() {
        match Locale::parse(l.get_ref()) {
            Ok(loc) => {
                if locales.contains(&loc) {
                    errors.push(at(l.span(), format!("locale `{loc}` is listed twice")));
                } else {
                    locales.push(loc);
                }
            }
            Err(e) => errors.push(at(l.span(), e.to_string())),
        }
    }
    let base_locale = match &raw.base_locale {
        None => Locale::parse("en-US").ok()?,
        Some(b) => match Locale::parse(b.get_ref()) {
            Ok(l) => l,
            Err(e) => {
                errors.push(at(b.span(), e.to_string()));
                Locale::parse("en-US").ok()?
            }
        },
    };

    let base_url = raw.base_url.as_ref().and_then(|u| {
        let s = u.get_ref().trim_end_matches('/').to_string();
        if s.starts_with("http://") || s.starts_with("https://") {
            Some(s)
        } else {
            errors.push(at(
                u.span(),
                format!("base_url `{s}` must start with http:// or https://"),
            ));
            None
        }
    });

    let mut variants: Vec<VariantConfig> = Vec::new();
    if raw.variants.get_ref().is_empty() {
        errors.push(at(
            raw.variants.span(),
            "at least one [[variants]] entry is required".into(),
        ));
    }
    let campaign_qa = raw
        .qa
        .map(|q| super::qa::parse_keys(path, text, "[qa]", q, errors));
    let own_placements = super::placements::parse_tables(path, text, raw.placements, errors);
    let brand = super::brand::parse_settings(path, text, raw.brand, errors);
    for mut v in raw.variants.into_inner() {
        let placement_names = v.placements.take();
        let focal = v.focal.take();
        let box_spans: Vec<std::ops::Range<usize>> =
            v.text_boxes.iter().map(Spanned::span).collect();
        let layer_spans: Vec<std::ops::Range<usize>> =
            v.layers.iter().map(|l| l.get_ref().kind_span()).collect();
        let mut parsed = parse_variant(
            path,
            text,
            v,
            model.as_ref(),
            campaign_qa.as_ref(),
            &brand,
            &variants,
            errors,
        );
        parsed.placements = super::placements::resolve(
            path,
            text,
            &parsed.name,
            placement_names,
            &own_placements,
            errors,
        );
        parsed.focal = super::placements::parse_focal(path, text, focal.as_ref(), errors);
        let rtl = parsed.mirror_rtl
            && locales
                .iter()
                .any(|l| crate::imaging::text::is_rtl_locale(l.tag()));
        check_safe_areas(path, text, &parsed, (&box_spans, &layer_spans), rtl, errors);
        variants.push(parsed);
    }

    let budget_usd = raw.budget.and_then(|b| b.max_usd).and_then(|m| {
        let v = *m.get_ref();
        if v.is_finite() && v >= 0.0 {
            Some(v)
        } else {
            errors.push(at(
                m.span(),
                format!("budget.max_usd must be a non-negative number, got {v}"),
            ));
            None
        }
    });

    let mut pricing = Vec::new();
    for (model_id, sizes) in raw.pricing {
        if let Ok(reader) = model_id.parse::<ReaderModel>() {
            parse_reader_pricing(path, &model_id, reader, sizes, &mut pricing, errors);
            continue;
        }
        if model_id.parse::<ModelId>().is_err() {
            errors.push(InputProblem::file(
                path,
                format!("[pricing] names unknown model `{model_id}`"),
            ));
            continue;
        }
        for (size, price) in sizes {
            if price.input.is_some() || price.output.is_some() {
                errors.push(InputProblem::file(
                    path,
                    format!(
                        "[pricing.\"{model_id}\".\"{size}\"]: input and output are token rates of copy-QA readers; an image model's price is realtime and batch, USD per image"
                    ),
                ));
            }
            match size.parse::<ImageSize>() {
                Ok(image_size) => pricing.push(PricingOverride::Image {
                    model: model_id.clone(),
                    image_size,
                    realtime: price.realtime,
                    batch: price.batch,
                }),
                Err(e) => errors.push(InputProblem::file(
                    path,
                    format!("[pricing.\"{model_id}\"]: {e}"),
                )),
            }
        }
    }

    let mut retry = RetrySettings::default();
    if let Some(r) = raw.retry {
        retry.max_attempts = r.max_attempts.unwrap_or(retry.max_attempts).max(1);
        retry.base_delay_ms = r.base_delay_ms.unwrap_or(retry.base_delay_ms);
        retry.max_delay_ms = r.max_delay_ms.unwrap_or(retry.max_delay_ms);
        retry.budget_ratio = r.budget_ratio.unwrap_or(retry.budget_ratio);
        retry.budget_floor = r.budget_floor.unwrap_or(retry.budget_floor);
    }

    let secs = |v: f64, what: &str, errors: &mut InputErrors| {
        if v.is_finite() && v > 0.0 {
            Some(std::time::Duration::from_secs_f64(v))
        } else {
            errors.push(InputProblem::file(
                path,
                format!("{what} must be a positive number of seconds, got {v}"),
            ));
            None
        }
    };
    let mut batch = BatchSettings::default();
    if let Some(b) = raw.batch {
        batch.max_requests = b.max_requests.unwrap_or(batch.max_requests).max(1);
        batch.auto_realtime_below = b.auto_realtime_below.unwrap_or(batch.auto_realtime_below);
        batch.max_enqueued_tokens = b.max_enqueued_tokens;
        batch.inline_max_bytes = b.inline_max_bytes;
        if let Some(v) = b
            .poll_initial_s
            .and_then(|v| secs(v, "batch.poll_initial_s", errors))
        {
            batch.poll_initial = v;
        }
        if let Some(v) = b
            .poll_max_s
            .and_then(|v| secs(v, "batch.poll_max_s", errors))
        {
            batch.poll_max = v;
        }
        if let Some(f) = b.on_failure {
            batch.on_failure = match f.get_ref().as_str() {
                "resubmit" => BatchFailurePolicy::Resubmit,
                "realtime" => BatchFailurePolicy::Realtime,
                other => {
                    errors.push(at(
                        f.span(),
                        format!("batch.on_failure `{other}` must be resubmit or realtime"),
                    ));
                    BatchFailurePolicy::Resubmit
                }
            };
        }
    }
    let mut gemini = GeminiSettings::default();
    if let Some(g) = raw.gemini {
        gemini.api_version = g.api_version;
        gemini.connect_timeout = g
            .connect_timeout_s
            .and_then(|v| secs(v, "gemini.connect_timeout_s", errors));
        gemini.request_timeout = g
            .request_timeout_s
            .and_then(|v| secs(v, "gemini.request_timeout_s", errors));
    }

    let notify = raw
        .notify
        .and_then(|n| super::notify::parse(path, text, n, errors));

    Some(Config {
        name,
        rows: raw.rows.into_inner(),
        locales,
        base_locale,
        model: model?,
        mode,
        base_url,
        variants,
        budget_usd,
        pricing,
        retry,
        rpm: raw.rate_limit.and_then(|r| r.rpm),
        batch,
        gemini,
        references: raw.references,
        notify,
        brand,
    })
}
