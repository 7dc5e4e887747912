//! `images/generations` and `images/edits`: models, validation (§1.1, §1.3,
//! §2), deterministic images and `ImagesResponse` (§1.2).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{KIND_REALTIME, OaiError, json_response, multipart, now_unix, read_body};
use crate::Shared;
use crate::faults::{HttpFault, draw};
use crate::paint::Signature;

/// Models served: the emulator's own capability table.
const MODELS: &[&str] = &[
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "gpt-image-2.5-sunburst",
    "gpt-image-2.5-sunburst-2026-09-08",
    "gpt-image-2.5-flare",
    "gpt-image-2.5-flare-2026-09-08",
    "gpt-image-2.6-sunburst",
    "gpt-image-2.6-flare",
];

/// Whether the model takes `quality: xhigh|max` (gpt-image-2.5-* only).
fn has_xhigh(model: &str) -> bool {
    model.starts_with("gpt-image-2.5-")
}

fn check_model(model: &str) -> Result<(), OaiError> {
    if MODELS.contains(&model) {
        Ok(())
    } else {
        Err(OaiError::not_found(format!(
            "The model `{model}` does not exist or you do not have access to it."
        ))
        .code("model_not_found"))
    }
}

/// Trigger words (checked in this order).
pub(crate) fn trigger_error(prompt: &str, rid: &str) -> Option<OaiError> {
    if prompt.contains("EMULATE_MODERATION") {
        return Some(OaiError::moderation_blocked(rid));
    }
    if prompt.contains("EMULATE_INVALID_ARGUMENT") {
        return Some(OaiError::invalid(
            "Invalid request (emulated by EMULATE_INVALID_ARGUMENT).",
        ));
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Format {
    Png,
    Jpeg,
    Webp,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::Webp => "webp",
        }
    }
}

/// A validated image request.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub model: String,
    pub prompt: String,
    pub prompt_sha: [u8; 32],
    pub n: u32,
    pub w: u32,
    pub h: u32,
    pub quality: &'static str,
    pub background: &'static str,
    pub format: Format,
}

/// A decoded input image (edits).
pub(crate) struct Input {
    pub w: u32,
    pub h: u32,
    /// SHA-256 of the bytes as received.
    pub sha256: [u8; 32],
}

const COMMON_KEYS: &[&str] = &[
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "user",
    "safety_identifier",
    "stream",
    "partial_images",
];

/// Where the fields came from: JSON (typed) or a form (all strings).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Src {
    Json,
    Form,
}

struct Fields<'a> {
    map: &'a Map<String, Value>,
    src: Src,
}

impl Fields<'_> {
    fn get(&self, k: &str) -> Option<&Value> {
        self.map.get(k).filter(|v| !v.is_null())
    }

    fn str(&self, k: &str) -> Result<Option<&str>, OaiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(OaiError::invalid_type(k, "a string", v)),
        }
    }

    fn int(&self, k: &str) -> Result<Option<i64>, OaiError> {
        match (self.get(k), self.src) {
            (None, _) => Ok(None),
            (Some(Value::Number(n)), Src::Json) if n.is_i64() => Ok(n.as_i64()),
            (Some(Value::String(s)), Src::Form) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| OaiError::invalid_type(k, "an integer", &Value::String(s.clone()))),
            (Some(v), _) => Err(OaiError::invalid_type(k, "an integer", v)),
        }
    }

    fn bool(&self, k: &str) -> Result<Option<bool>, OaiError> {
        match (self.get(k), self.src) {
            (None, _) => Ok(None),
            (Some(Value::Bool(b)), Src::Json) => Ok(Some(*b)),
            (Some(Value::String(s)), Src::Form) if s == "true" || s == "false" => {
                Ok(Some(s == "true"))
            }
            (Some(v), _) => Err(OaiError::invalid_type(k, "a boolean", v)),
        }
    }

    fn choice(&self, k: &str, allowed: &[&'static str]) -> Result<Option<&'static str>, OaiError> {
        let Some(v) = self.str(k)? else {
            return Ok(None);
        };
        allowed
            .iter()
            .find(|a| **a == v)
            .copied()
            .map(Some)
            .ok_or_else(|| {
                let list = allowed
                    .iter()
                    .map(|a| format!("'{a}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                OaiError::invalid_value(
                    k,
                    format!("Invalid value: '{v}'. Supported values are: {list}."),
                )
            })
    }
}

/// Parse "auto" or "WxH" against the gpt-image-2 rules (OpenAI
/// image-generation guide, "Size constraints"): both edges multiples of 16,
/// the longest edge at most 3840, a long:short ratio of at most 3:1, and
/// between 655,360 and 8,294,400 pixels.
fn parse_size(v: &str) -> Result<(u32, u32), OaiError> {
    if v == "auto" {
        return Ok((1024, 1024));
    }
    let bad = || {
        OaiError::invalid_value(
            "size",
            format!(
                "Invalid value: '{v}'. Size must be 'auto' or WIDTHxHEIGHT with both edges \
                 multiples of 16, the longest edge at most 3840, an aspect ratio of at most \
                 3:1, and between 655360 and 8294400 pixels in total."
            ),
        )
    };
    let (w, h) = v.split_once('x').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(w) || !digits(h) {
        return Err(bad());
    }
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    let (long, short) = (w.max(h), w.min(h));
    let pixels = u64::from(w) * u64::from(h);
    if w == 0
        || h == 0
        || !w.is_multiple_of(16)
        || !h.is_multiple_of(16)
        || long > 3 * short
        || long > 3840
        || !(655_360..=8_294_400).contains(&pixels)
    {
        return Err(bad());
    }
    Ok((w, h))
}

/// Most characters of one `image_url` (a data URL) in a JSON edit body.
pub(crate) const MAX_IMAGE_URL_CHARS: usize = 20_971_520;

/// The closed `size` set of the JSON edit body (`EditImageBodyJsonParam`
/// in openai/openai-openapi `openapi.yaml`): only multipart edits take
/// any legal `WxH`.
const JSON_EDIT_SIZES: &[&str] = &["auto", "1024x1024", "1536x1024", "1024x1536"];
/// The closed `quality` set of the JSON edit body (same schema): no `xhigh`
/// or `max` there, whatever the model.
const JSON_EDIT_QUALITIES: &[&str] = &["low", "medium", "high", "auto"];

/// Validate the fields shared by generations and edits. `extra` lists the
/// endpoint's own keys (checked elsewhere).
fn parse_params(f: &Fields<'_>, extra: &[&str]) -> Result<Params, OaiError> {
    for k in f.map.keys() {
        if !COMMON_KEYS.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
            return Err(OaiError::unknown_parameter(k));
        }
    }
    let model = f.str("model")?.ok_or_else(|| {
        OaiError::invalid(
            "Missing required parameter: 'model'. Specify a model explicitly, e.g. \
             'gpt-image-2'.",
        )
        .param("model")
        .code("missing_required_parameter")
    })?;
    check_model(model)?;
    let prompt = f.str("prompt")?.ok_or_else(|| {
        OaiError::invalid("Missing required parameter: 'prompt'.")
            .param("prompt")
            .code("missing_required_parameter")
    })?;
    let chars = prompt.chars().count();
    if chars == 0 {
        return Err(OaiError::invalid_value(
            "prompt",
            "Invalid 'prompt': empty string. Expected a string with minimum length 1.",
        ));
    }
    if chars > 32_000 {
        return Err(OaiError::invalid_value(
            "prompt",
            format!(
                "Invalid 'prompt': string too long. Expected a string with maximum length \
                 32000, but got a string with length {chars} instead."
            ),
        ));
    }
    let n = f.int("n")?.unwrap_or(1);
    if !(1..=10).contains(&n) {
        return Err(OaiError::invalid_value(
            "n",
            format!(
                "Invalid 'n': integer below minimum value or above maximum value. Expected a value between 1 and 10, but got {n} instead."
            ),
        ));
    }
    let (w, h) = parse_size(f.str("size")?.unwrap_or("auto"))?;
    let qualities: &[&'static str] = if has_xhigh(model) {
        &["low", "medium", "high", "auto", "xhigh", "max"]
    } else {
        &["low", "medium", "high", "auto"]
    };
    let quality = match f.choice("quality", qualities)?.unwrap_or("auto") {
        "auto" => "medium",
        q => q,
    };
    let format = match f
        .choice("output_format", &["png", "jpeg", "webp"])?
        .unwrap_or("png")
    {
        "jpeg" => Format::Jpeg,
        "webp" => Format::Webp,
        _ => Format::Png,
    };
    let background = match f
        .choice("background", &["transparent", "opaque", "auto"])?
        .unwrap_or("auto")
    {
        "transparent" if format == Format::Jpeg => {
            return Err(OaiError::invalid_value(
                "background",
                "Transparent background is not supported for output_format 'jpeg'. Use 'png' \
                 or 'webp'.",
            ));
        }
        "transparent" => "transparent",
        _ => "opaque",
    };
    if let Some(c) = f.int("output_compression")?
        && !(0..=100).contains(&c)
    {
        return Err(OaiError::invalid_value(
            "output_compression",
            format!(
                "Invalid 'output_compression': expected a value between 0 and 100, but got {c} instead."
            ),
        ));
    }
    f.choice("moderation", &["low", "auto"])?;
    f.str("user")?;
    f.str("safety_identifier")?;
    if f.bool("stream")? == Some(true) {
        return Err(OaiError::invalid_value(
            "stream",
            "Streaming is not supported by the adloc emulator.",
        ));
    }
    if let Some(p) = f.int("partial_images")?
        && !(0..=3).contains(&p)
    {
        return Err(OaiError::invalid_value(
            "partial_images",
            "Invalid 'partial_images': expected a value between 0 and 3.",
        ));
    }
    let prompt_sha: [u8; 32] = Sha256::digest(prompt.as_bytes()).into();
    Ok(Params {
        model: model.to_string(),
        prompt: prompt.to_string(),
        prompt_sha,
        n: n as u32,
        w,
        h,
        quality,
        background,
        format,
    })
}

/// Validate a JSON generation body (realtime and batch lines).
pub(crate) fn parse_generation(v: &Value) -> Result<Params, OaiError> {
    let map = v
        .as_object()
        .ok_or_else(|| OaiError::invalid("The request body must be a JSON object."))?;
    parse_params(
        &Fields {
            map,
            src: Src::Json,
        },
        &[],
    )
}

fn invalid_image(param: &str, index: usize) -> OaiError {
    OaiError::invalid(format!(
        "Invalid image file or mode for image {}, please check your image file.",
        index + 1
    ))
    .param(param)
    .code("invalid_image")
}

/// Decode an input image (png, jpeg or webp); `None` if it does not decode.
fn decode(bytes: &[u8]) -> Option<(image::ImageFormat, Input)> {
    let fmt = image::guess_format(bytes).ok()?;
    if !matches!(
        fmt,
        image::ImageFormat::Png | image::ImageFormat::Jpeg | image::ImageFormat::WebP
    ) {
        return None;
    }
    let img = image::load_from_memory_with_format(bytes, fmt).ok()?;
    Some((
        fmt,
        Input {
            w: img.width(),
            h: img.height(),
            sha256: Sha256::digest(bytes).into(),
        },
    ))
}

/// Check and decode edit inputs: 1..16 images, an optional PNG mask the
/// size of the first image.
fn check_inputs(
    images: &[Bytes],
    mask: Option<&Bytes>,
    param: &str,
) -> Result<Vec<Input>, OaiError> {
    if images.is_empty() {
        return Err(OaiError::invalid("Missing required parameter: 'image'.")
            .param(param)
            .code("missing_required_parameter"));
    }
    if images.len() > 16 {
        return Err(OaiError::invalid_value(
            param,
            format!("Too many images: {} (at most 16).", images.len()),
        ));
    }
    let mut out = Vec::with_capacity(images.len());
    for (i, b) in images.iter().enumerate() {
        let (_, d) = decode(b).ok_or_else(|| invalid_image(param, i))?;
        out.push(d);
    }
    if let Some(m) = mask {
        let (fmt, d) = decode(m).ok_or_else(|| invalid_image("mask", 0))?;
        if fmt != image::ImageFormat::Png {
            return Err(OaiError::invalid_value(
                "mask",
                "The mask must be a PNG image.",
            ));
        }
        if (d.w, d.h) != (out[0].w, out[0].h) {
            return Err(OaiError::invalid_value(
                "mask",
                format!(
                    "Invalid mask image: the mask is {}x{} but the image is {}x{}; they must \
                     have the same dimensions.",
                    d.w, d.h, out[0].w, out[0].h
                ),
            ));
        }
    }
    Ok(out)
}

/// Bytes of one `{file_id}` / `{image_url}` reference (data URLs only).
fn resolve_ref(s: &Shared, v: &Value, param: &str) -> Result<Bytes, OaiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| OaiError::invalid_type(param, "an object", v))?;
    for k in obj.keys() {
        if k != "file_id" && k != "image_url" {
            return Err(OaiError::unknown_parameter(&format!("{param}.{k}")));
        }
    }
    match (obj.get("file_id"), obj.get("image_url")) {
        (Some(Value::String(id)), None) => s.openai.files.bytes(id).ok_or_else(|| {
            OaiError::invalid_value(
                &format!("{param}.file_id"),
                format!("Invalid file_id: no such file '{id}'."),
            )
        }),
        (None, Some(Value::String(url))) => {
            // `ImageRefParam.image_url` has `maxLength: 20971520`
            // (openai/openai-openapi `openapi.yaml`); the usual
            // `string_above_max_length` refusal.
            let chars = url.chars().count();
            if chars > MAX_IMAGE_URL_CHARS {
                return Err(OaiError::invalid_value(
                    &format!("{param}.image_url"),
                    format!(
                        "Invalid '{param}.image_url': string too long. Expected a string with \
                         maximum length {MAX_IMAGE_URL_CHARS}, but got a string with length \
                         {chars} instead."
                    ),
                )
                .code("string_above_max_length"));
            }
            let data = url.strip_prefix("data:").ok_or_else(|| {
                OaiError::invalid_value(
                    &format!("{param}.image_url"),
                    "The adloc emulator accepts only data: URLs in image_url.",
                )
                .code("invalid_image_url")
            })?;
            let (_, b64) = data.split_once(";base64,").ok_or_else(|| {
                OaiError::invalid_value(
                    &format!("{param}.image_url"),
                    "Invalid data URL: expected data:<mime>;base64,<data>.",
                )
                .code("invalid_image_url")
            })?;
            STANDARD.decode(b64.trim()).map(Bytes::from).map_err(|_| {
                OaiError::invalid_value(
                    &format!("{param}.image_url"),
                    "Invalid data URL: the data is not valid base64.",
                )
                .code("invalid_image_url")
            })
        }
        _ => Err(OaiError::invalid(format!(
            "Invalid '{param}': expected exactly one of 'file_id' or 'image_url'."
        ))
        .param(param)),
    }
}

/// Validate a JSON edit body (realtime and batch lines); returns the params
/// and the decoded inputs.
pub(crate) fn parse_json_edit(s: &Shared, v: &Value) -> Result<(Params, Vec<Input>), OaiError> {
    let map = v
        .as_object()
        .ok_or_else(|| OaiError::invalid("The request body must be a JSON object."))?;
    let f = Fields {
        map,
        src: Src::Json,
    };
    // The JSON form's schema closes `size` and `quality` before the
    // model's own rules apply.
    f.choice("size", JSON_EDIT_SIZES)?;
    f.choice("quality", JSON_EDIT_QUALITIES)?;
    let p = parse_params(&f, &["images", "mask", "input_fidelity"])?;
    check_fidelity(&f)?;
    let images = match f.get("images") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, r)| resolve_ref(s, r, &format!("images[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(v) => return Err(OaiError::invalid_type("images", "an array", v)),
    };
    let mask = f
        .get("mask")
        .map(|m| resolve_ref(s, m, "mask"))
        .transpose()?;
    let inputs = check_inputs(&images, mask.as_ref(), "images")?;
    Ok((p, inputs))
}

fn check_fidelity(f: &Fields<'_>) -> Result<(), OaiError> {
    if f.get("input_fidelity").is_some() {
        return Err(
            OaiError::invalid("input_fidelity is not supported for this model; omit it.")
                .param("input_fidelity")
                .code("unsupported_parameter"),
        );
    }
    Ok(())
}

/// Parse a multipart edit.
fn parse_multipart_edit(boundary: &str, body: &Bytes) -> Result<(Params, Vec<Input>), OaiError> {
    let parts = multipart::parse(boundary, body)
        .map_err(|e| OaiError::invalid(format!("Invalid multipart body: {e}.")))?;
    let mut map = Map::new();
    let mut images = Vec::new();
    let mut mask = None;
    for p in parts {
        match p.name.as_str() {
            "image" | "image[]" => images.push(p.data),
            "mask" => mask = Some(p.data),
            name if p.filename.is_some() => return Err(OaiError::unknown_parameter(name)),
            name => {
                map.insert(
                    name.to_string(),
                    Value::String(String::from_utf8_lossy(&p.data).into_owned()),
                );
            }
        }
    }
    let f = Fields {
        map: &map,
        src: Src::Form,
    };
    let p = parse_params(&f, &["input_fidelity"])?;
    check_fidelity(&f)?;
    let inputs = check_inputs(&images, mask.as_ref(), "image")?;
    Ok((p, inputs))
}

/// Input text tokens: about one per four characters.
fn text_tokens(prompt: &str) -> u64 {
    (prompt.chars().count() as u64).div_ceil(4).max(1)
}

/// Input image tokens (the real formula is unconfirmed): 85 + 170 per
/// 512×512 tile.
fn image_tokens(inputs: &[Input]) -> u64 {
    inputs
        .iter()
        .map(|i| 85 + 170 * u64::from(i.w.div_ceil(512)) * u64::from(i.h.div_ceil(512)))
        .sum()
}

/// Output tokens per image: the §1.4 1024×1024 count scaled by area.
pub(crate) fn output_tokens_per_image(quality: &str, w: u32, h: u32) -> u64 {
    let base = match quality {
        "low" => 272.0,
        "high" => 4160.0,
        "xhigh" => 8320.0,
        "max" => 16640.0,
        _ => 1056.0,
    };
    (base * f64::from(w) * f64::from(h) / (1024.0 * 1024.0)).round() as u64
}

/// A built `ImagesResponse` and what it bills.
pub(crate) struct Built {
    pub body: Value,
    pub images: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Build the `ImagesResponse` with real image bytes.
pub(crate) async fn render(s: &Shared, p: &Params, inputs: &[Input]) -> Result<Built, OaiError> {
    let mut data = Vec::with_capacity(p.n as usize);
    for i in 0..p.n {
        let salt = format!(" openai {i}");
        let sig = s.paint_image(&p.prompt, &p.prompt_sha);
        let b64 = match p.format {
            Format::Png | Format::Jpeg => {
                let mime = if p.format == Format::Png {
                    "image/png"
                } else {
                    "image/jpeg"
                };
                s.images
                    .image_b64(p.w, p.h, mime, &p.prompt_sha, &salt, sig)
                    .await
                    .map_err(|e| {
                        OaiError::new(
                            500,
                            "server_error",
                            format!("image encoding: {}", e.message),
                        )
                    })?
            }
            Format::Webp => {
                s.openai
                    .webp
                    .image_b64(p.w, p.h, &p.prompt_sha, &salt, sig)
                    .await?
            }
        };
        // GPT Image outputs carry OpenAI's C2PA manifest.
        let mime = match p.format {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Webp => "image/webp",
        };
        let b64 = crate::c2pa_sign::sign_b64(b64, mime, "OpenAI", p.model.clone()).await;
        data.push(json!({ "b64_json": b64 }));
    }
    let text = text_tokens(&p.prompt);
    let img = image_tokens(inputs);
    let out = output_tokens_per_image(p.quality, p.w, p.h) * u64::from(p.n);
    let body = json!({
        "created": now_unix(),
        "background": p.background,
        "output_format": p.format.name(),
        "size": format!("{}x{}", p.w, p.h),
        "quality": p.quality,
        "data": data,
        "usage": {
            "input_tokens": text + img,
            "input_tokens_details": {"text_tokens": text, "image_tokens": img},
            "output_tokens": out,
            "output_tokens_details": {"image_tokens": out, "text_tokens": 0},
            "total_tokens": text + img + out,
        },
    });
    Ok(Built {
        body,
        images: u64::from(p.n),
        input_tokens: text + img,
        output_tokens: out,
    })
}

pub(crate) async fn generations(
    s: &Arc<Shared>,
    _headers: &HeaderMap,
    body: Body,
    rid: &str,
) -> Result<Response, OaiError> {
    let index = s.openai.next_realtime();
    let faults = s.faults().openai;
    crate::apply_latency(s, &faults.http(), index, b"openai").await;
    let bytes = read_body(body).await?;
    let v = super::parse_json(&bytes)?;
    let p = parse_generation(&v)?;
    realtime(s, index, &p, &[], rid).await
}

pub(crate) async fn edits(
    s: &Arc<Shared>,
    headers: &HeaderMap,
    body: Body,
    rid: &str,
) -> Result<Response, OaiError> {
    let index = s.openai.next_realtime();
    let faults = s.faults().openai;
    crate::apply_latency(s, &faults.http(), index, b"openai").await;
    let bytes = read_body(body).await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (p, inputs) = if let Some(b) = multipart::boundary(ct) {
        parse_multipart_edit(&b, &bytes)?
    } else {
        parse_json_edit(s, &super::parse_json(&bytes)?)?
    };
    s.with_stats(|st| st.openai.edit_images_received += inputs.len() as u64);
    record_edit(s, &p, &inputs, false);
    realtime(s, index, &p, &inputs, rid).await
}

/// Record a parsed edit (realtime call or batch line) for the tests.
pub(crate) fn record_edit(s: &Shared, p: &Params, inputs: &[Input], batch: bool) {
    s.record_edit(crate::EditSeen {
        surface: "openai".into(),
        batch,
        image_sha256: inputs
            .first()
            .map(|i| hex::encode(i.sha256))
            .unwrap_or_default(),
        thought_signature: None,
        signature_issued: false,
        instruction: p.prompt.clone(),
        size: Some(format!("{}x{}", p.w, p.h)),
        quality: Some(p.quality.to_string()),
    });
}

/// Faults, triggers, rendering and billing of one validated realtime request.
async fn realtime(
    s: &Arc<Shared>,
    index: u64,
    p: &Params,
    inputs: &[Input],
    rid: &str,
) -> Result<Response, OaiError> {
    let faults = s.faults().openai;
    // The server-side limit first: a refused request is not looked at.
    let admitted = match faults.rpm_limit {
        None => None,
        Some(rpm) => match s.rpm.admit(
            &format!("openai/{}", p.model),
            rpm,
            std::time::Instant::now(),
        ) {
            crate::limits::Admission::Admitted { remaining, reset } => {
                Some(super::ratelimit_headers(rpm, remaining, reset))
            }
            crate::limits::Admission::Refused { retry_after, reset } => {
                s.with_stats(|st| st.openai.rate_limited += 1);
                return Err(OaiError::rpm_limited(&p.model, rpm, retry_after, reset));
            }
        },
    };
    if let Some(after) = faults.insufficient_quota_after
        && index >= after
    {
        super::injected(s);
        return Err(OaiError::insufficient_quota());
    }
    let attempt = s.openai.attempt(KIND_REALTIME, &p.prompt_sha);
    let u = draw(
        s.seed,
        &[b"openai-realtime", &p.prompt_sha, &attempt.to_le_bytes()],
    );
    let fault = faults.http().decide(index, u);
    match fault {
        Some(HttpFault::Quota429) => {
            super::injected(s);
            return Err(OaiError::rate_limited(&p.model, faults.retry_after_ms));
        }
        Some(HttpFault::Internal500) => {
            super::injected(s);
            return Err(OaiError::server_error());
        }
        Some(HttpFault::Unavailable503 | HttpFault::Deadline504) => {
            super::injected(s);
            return Err(OaiError::overloaded());
        }
        _ => {}
    }
    if let Some(e) = trigger_error(&p.prompt, rid) {
        return Err(e);
    }
    let um = draw(
        s.seed,
        &[b"openai-moderation", &p.prompt_sha, &attempt.to_le_bytes()],
    );
    if um < faults.moderation_rate {
        super::injected(s);
        return Err(OaiError::moderation_blocked(rid));
    }
    let built = render(s, p, inputs).await?;
    if fault == Some(HttpFault::Reset) {
        super::injected(s);
        let mut resp = crate::reset_response(built.body.to_string().into_bytes());
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(super::JSON),
        );
        return Ok(resp);
    }
    super::bill(s, &p.prompt_sha, built.images, false);
    let mut resp = json_response(StatusCode::OK, &built.body);
    // Sent on successes too ("Rate limits in headers",
    // https://platform.openai.com/docs/guides/rate-limits).
    for (k, v) in admitted.into_iter().flatten() {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    Ok(resp)
}

/// Lossless WebP images keyed by (size, colour bucket), wrapped per prompt
/// in an extended (VP8X) container with an `XMP ` chunk carrying the hash,
/// so different prompts never share bytes.
#[derive(Default)]
pub(crate) struct WebpCache {
    map: Mutex<HashMap<(u32, u32, u8), WebpCell>>,
}

/// One encoded simple-format WebP, filled once.
type WebpCell = Arc<OnceCell<Arc<Vec<u8>>>>;

const PALETTE: [[u8; 3]; 8] = [
    [220, 60, 50],
    [240, 150, 40],
    [110, 190, 70],
    [40, 160, 120],
    [50, 170, 200],
    [60, 100, 210],
    [190, 70, 170],
    [130, 90, 60],
];

fn encode_webp(w: u32, h: u32, bucket: u8, sig: Option<&Signature>) -> Result<Vec<u8>, String> {
    let base = PALETTE[bucket as usize % PALETTE.len()];
    let accent = PALETTE[(bucket as usize + 3) % PALETTE.len()];
    let band = (h / 6).max(1);
    let stripe = (w / 10).max(1);
    let mut raw = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        let shade = ((y / band) as u8).wrapping_mul(9);
        for x in 0..w {
            if let Some(g) = sig.and_then(|s| s.gray_at(x, y)) {
                raw.extend([g, g, g]);
                continue;
            }
            let c = if x < stripe { accent } else { base };
            raw.extend(c.map(|v| v.saturating_sub(shade)));
        }
    }
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .encode(&raw, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

impl WebpCache {
    async fn image_b64(
        &self,
        w: u32,
        h: u32,
        sha: &[u8; 32],
        salt: &str,
        sig: Option<u32>,
    ) -> Result<String, OaiError> {
        let bucket = sha[0] % PALETTE.len() as u8;
        if let Some(id) = sig {
            // Signed: encoded for this response alone.
            let bytes = tokio::task::spawn_blocking(move || {
                encode_webp(w, h, bucket, Some(&Signature::new(id, w, h)))
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|e| OaiError::new(500, "server_error", format!("webp encoding: {e}")))?;
            return Ok(wrap_webp(&bytes, w, h, sha, salt));
        }
        let cell = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.entry((w, h, bucket)).or_default().clone()
        };
        let simple = cell
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || encode_webp(w, h, bucket, None).map(Arc::new))
                    .await
                    .map_err(|e| e.to_string())?
            })
            .await
            .map_err(|e| OaiError::new(500, "server_error", format!("webp encoding: {e}")))?
            .clone();
        Ok(wrap_webp(&simple, w, h, sha, salt))
    }
}

/// Rewrap a simple-format WebP as VP8X + its chunks + an `XMP ` chunk
/// carrying the prompt hash, as base64.
fn wrap_webp(simple: &[u8], w: u32, h: u32, sha: &[u8; 32], salt: &str) -> String {
    {
        // simple = "RIFF" size "WEBP" + chunks; rebuild as VP8X + chunks + XMP.
        let chunks = simple.get(12..).unwrap_or_default();
        let mut note = format!("adloc-emulator {}{salt}", hex::encode(sha)).into_bytes();
        if note.len() % 2 == 1 {
            note.push(b' ');
        }
        let mut body = b"WEBP".to_vec();
        body.extend_from_slice(b"VP8X");
        body.extend_from_slice(&10u32.to_le_bytes());
        body.extend_from_slice(&[0x04, 0, 0, 0]); // XMP flag
        body.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        body.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        body.extend_from_slice(chunks);
        body.extend_from_slice(b"XMP ");
        body.extend_from_slice(&(note.len() as u32).to_le_bytes());
        body.extend_from_slice(&note);
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        STANDARD.encode(&out)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn sizes_follow_the_gpt_image_2_rules() {
        assert_eq!(parse_size("auto").unwrap(), (1024, 1024));
        assert_eq!(parse_size("3840x2160").unwrap(), (3840, 2160));
        assert_eq!(parse_size("2160x3840").unwrap(), (2160, 3840));
        assert_eq!(parse_size("2880x2880").unwrap(), (2880, 2880));
        assert_eq!(parse_size("1536x512").unwrap(), (1536, 512));
        assert_eq!(parse_size("1024x640").unwrap(), (1024, 640));
        for bad in [
            "1000x1000",
            "1600x512",
            "3856x2160",
            // over 8,294,400 pixels
            "2896x2896",
            "3840x2176",
            // under 655,360 pixels
            "512x512",
            "784x336",
            "688x384",
            "1008x640",
            "0x16",
            "x",
            "16x-16",
            " 16x16",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn output_tokens_scale_the_documented_table_by_area() {
        assert_eq!(output_tokens_per_image("low", 1024, 1024), 272);
        assert_eq!(output_tokens_per_image("low", 1536, 1024), 408);
        assert_eq!(output_tokens_per_image("medium", 1024, 1536), 1584);
        assert_eq!(output_tokens_per_image("high", 1024, 1024), 4160);
        assert_eq!(output_tokens_per_image("max", 1024, 1024), 16640);
    }
}
