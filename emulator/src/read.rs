//! Reader (text) models for copy QA (protocol §7b): a `generateContent`
//! request with images in and text out. The emulator "reads" an image by
//! decoding its pixel signature ([`crate::paint`]) and answering with the
//! strings painted into it, shaped by the request's response schema.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::errors::ApiError;
use crate::faults::draw;
use crate::paint;
use crate::wire::{self, as_array, as_bool, as_i64, as_object, as_str, check_fields};
use crate::{KIND_MISREAD, Shared};

/// Reader models current in December 2026 (§7b). `gemini-2.5-flash` and
/// `gemini-2.5-pro` were retired on 2026-12-01 and are unknown (404).
pub(crate) const READERS: &[&str] = &[
    "gemini-3.1-flash-lite",
    "gemini-3.5-flash-lite",
    "gemini-3.5-flash",
    "gemini-3.6-flash",
    "gemini-3.7-flash",
    "gemini-3.8-flash",
];

/// Readers whose sampling parameters (`temperature`, `topP`, `topK`) are
/// deprecated: the changelog of 2026-07-21
/// (https://ai.google.dev/gemini-api/docs/changelog, "Deprecated
/// parameters", and https://ai.google.dev/gemini-api/docs/whats-new-gemini-3.6)
/// deprecates them for `gemini-3.6-flash` and `gemini-3.5-flash-lite`; a
/// request that sends one is refused with 400 `INVALID_ARGUMENT`.
pub(crate) const SAMPLING_DEPRECATED: &[&str] = &["gemini-3.6-flash", "gemini-3.5-flash-lite"];

/// The generation-config fields [`SAMPLING_DEPRECATED`] readers refuse.
const SAMPLING_FIELDS: &[&str] = &["temperature", "topP", "topK"];

/// The reader model named by `model` (with or without `models/`).
pub(crate) fn reader_id(model: &str) -> Option<&'static str> {
    let bare = model.strip_prefix("models/").unwrap_or(model);
    READERS.iter().copied().find(|r| *r == bare)
}

/// How the answer is shaped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// No schema: plain text lines (`text/plain`) or `{"texts": […]}`
    /// (`application/json`).
    Free { json: bool },
    /// An object schema: `{"<prop>": […]}` for its first array-of-strings
    /// property (`{}` when it has none).
    Object(Option<String>),
    /// An array-of-strings schema: `[…]`.
    Array,
}

/// A validated read request.
#[derive(Debug, Clone)]
pub(crate) struct ReadRequest {
    /// SHA-256 over the text parts and the image bytes (fault draws).
    pub sha: [u8; 32],
    pub text_tokens: u64,
    pub image_tokens: u64,
    /// The signature id of each input image (`None`: no signature).
    pub images: Vec<Option<u32>>,
    /// Hex SHA-256 of each input image's bytes (inline or uploaded), in
    /// request order: what a test checks the reader was shown.
    pub image_sha256: Vec<String>,
    pub shape: Shape,
    pub max_output_tokens: Option<u64>,
    pub candidates: u64,
}

fn type_of(schema: &Value) -> Option<String> {
    schema
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
}

fn is_string_array(schema: &Value) -> bool {
    type_of(schema).as_deref() == Some("array")
        && schema.get("items").and_then(type_of).as_deref() == Some("string")
}

/// The shape an OpenAPI-style `responseSchema` (uppercase types) or a JSON
/// Schema `responseJsonSchema` asks for.
fn shape_of(schema: &Value) -> Shape {
    if is_string_array(schema) {
        return Shape::Array;
    }
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Shape::Object(None);
    };
    // The first in `propertyOrdering`, then in `required`, then in the map.
    let names = |k: &str| -> Vec<String> {
        schema
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut order = names("propertyOrdering");
    order.extend(names("required"));
    order.extend(props.keys().cloned());
    Shape::Object(
        order
            .into_iter()
            .find(|n| props.get(n).is_some_and(is_string_array)),
    )
}

/// Validate a normalized reader request for `model` (a [`READERS`] id) and
/// read its images' signatures.
pub(crate) async fn parse(s: &Shared, model: &str, v: &Value) -> Result<ReadRequest, ApiError> {
    let top = as_object(v, "")?;
    check_fields(top, wire::TOP_FIELDS, "")?;
    let contents = match top.get("contents") {
        Some(c) => as_array(c, "contents")?.as_slice(),
        None => &[],
    };
    if contents.is_empty() {
        return Err(ApiError::invalid(
            "* GenerateContentRequest.contents: contents is not specified\n",
        ));
    }
    let mut hasher = Sha256::new();
    let mut text_chars = 0u64;
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut unknown_images = 0u64;
    for (ci, c) in contents.iter().enumerate() {
        let cpath = format!("contents[{ci}]");
        let cobj = as_object(c, &cpath)?;
        check_fields(cobj, wire::CONTENT_FIELDS, &cpath)?;
        let parts = match cobj.get("parts") {
            Some(p) => as_array(p, &format!("{cpath}.parts"))?.as_slice(),
            None => &[],
        };
        if parts.is_empty() {
            return Err(ApiError::invalid(format!(
                "* GenerateContentRequest.contents[{ci}].parts: contents.parts must not be empty.\n"
            )));
        }
        for (pi, p) in parts.iter().enumerate() {
            let ppath = format!("{cpath}.parts[{pi}]");
            let pobj = as_object(p, &ppath)?;
            check_fields(pobj, wire::PART_FIELDS, &ppath)?;
            if let Some(t) = pobj.get("thought") {
                as_bool(t, &format!("{ppath}.thought"))?;
            }
            if let Some(t) = pobj.get("text") {
                let t = as_str(t, &format!("{ppath}.text"))?;
                text_chars += t.chars().count() as u64;
                hasher.update(b"t");
                hasher.update(t.as_bytes());
            }
            if let Some(blob) = pobj.get("inlineData") {
                let bpath = format!("{ppath}.inline_data");
                let bobj = as_object(blob, &bpath)?;
                check_fields(bobj, wire::BLOB_FIELDS, &bpath)?;
                let mime = match bobj.get("mimeType") {
                    Some(m) => as_str(m, &format!("{bpath}.mime_type"))?,
                    None => "",
                };
                if mime.is_empty() {
                    return Err(ApiError::invalid(format!(
                        "* GenerateContentRequest.{ppath}.inline_data.mime_type: mime_type is not specified\n"
                    )));
                }
                let data = match bobj.get("data") {
                    Some(d) => as_str(d, &format!("{bpath}.data"))?,
                    None => "",
                };
                let bytes = wire::decode_base64(data).ok_or_else(|| {
                    let shown: String = data.chars().take(32).collect();
                    ApiError::invalid(format!(
                        "Invalid value at '{bpath}.data' (TYPE_BYTES), Base64 decoding failed for \"{shown}\""
                    ))
                })?;
                if mime.starts_with("image/") {
                    hasher.update(b"i");
                    hasher.update(&bytes);
                    blobs.push(bytes);
                }
            }
            if let Some(fd) = pobj.get("fileData") {
                let fpath = format!("{ppath}.file_data");
                let fobj = as_object(fd, &fpath)?;
                check_fields(fobj, wire::FILE_DATA_FIELDS, &fpath)?;
                let uri = match fobj.get("fileUri") {
                    Some(u) => as_str(u, &format!("{fpath}.file_uri"))?,
                    None => "",
                };
                if uri.is_empty() {
                    return Err(ApiError::invalid(format!(
                        "* GenerateContentRequest.{ppath}.file_data.file_uri: file_uri is not specified\n"
                    )));
                }
                hasher.update(b"f");
                hasher.update(uri.as_bytes());
                match wire::files_api_id(uri) {
                    Some(id) => {
                        let meta = s.files.get(&id).ok_or_else(|| {
                            ApiError::permission_denied(format!(
                                "You do not have permission to access the File {id} or it may not exist."
                            ))
                        })?;
                        match tokio::fs::read(&meta.path).await {
                            Ok(b) => blobs.push(b),
                            Err(_) => unknown_images += 1,
                        }
                    }
                    // Other URLs are fetched by the service; we cannot.
                    None => unknown_images += 1,
                }
            }
        }
    }
    if let Some(si) = top.get("systemInstruction") {
        let sobj = as_object(si, "system_instruction")?;
        if let Some(parts) = sobj.get("parts").and_then(Value::as_array) {
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    text_chars += t.chars().count() as u64;
                }
            }
        }
    }

    let mut shape = Shape::Free { json: false };
    let mut max_output_tokens = None;
    let mut candidates = 1u64;
    if let Some(gc) = top.get("generationConfig") {
        let gpath = "generation_config";
        let g = as_object(gc, gpath)?;
        check_fields(g, wire::GEN_CONFIG_FIELDS, gpath)?;
        if SAMPLING_DEPRECATED.contains(&model)
            && let Some(f) = SAMPLING_FIELDS.iter().find(|f| g.contains_key(**f))
        {
            let field = match *f {
                "topP" => "top_p",
                "topK" => "top_k",
                other => other,
            };
            return Err(ApiError::invalid(format!(
                "{field} is deprecated for models/{model} and is no longer supported. Remove \
                 generation_config.{field} from the request; the model's default is used."
            )));
        }
        if let Some(m) = g.get("responseModalities") {
            for (i, item) in as_array(m, "generation_config.response_modalities")?
                .iter()
                .enumerate()
            {
                let path = format!("generation_config.response_modalities[{i}]");
                match as_str(item, &path)?.to_ascii_uppercase().as_str() {
                    "TEXT" | "MODALITY_UNSPECIFIED" => {}
                    "IMAGE" => {
                        return Err(ApiError::invalid(
                            "Model does not support the requested response modalities: image",
                        ));
                    }
                    "AUDIO" => {
                        return Err(ApiError::invalid(
                            "Model does not support the requested response modalities: audio",
                        ));
                    }
                    other => {
                        return Err(ApiError::invalid(format!(
                            "Invalid value at '{path}' \
                             (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality), \"{other}\""
                        )));
                    }
                }
            }
        }
        let image_out = g.contains_key("imageConfig")
            || g.get("responseFormat")
                .and_then(|rf| rf.get("image"))
                .is_some();
        if image_out {
            return Err(ApiError::invalid(
                "Image generation config (generation_config.image_config) is not supported \
                 for this model.",
            ));
        }
        if g.contains_key("responseSchema") && g.contains_key("responseJsonSchema") {
            return Err(ApiError::invalid(
                "response_schema and response_json_schema cannot both be set. Use one of them.",
            ));
        }
        let json_mime = match g.get("responseMimeType") {
            None => false,
            Some(m) => match as_str(m, "generation_config.response_mime_type")? {
                "application/json" => true,
                "text/plain" | "text/x.enum" => false,
                other => {
                    return Err(ApiError::invalid(format!(
                        "* GenerateContentRequest.generation_config.response_mime_type: \
                         allowed mimetypes are `text/plain`, `application/json`, \
                         `application/xml`, `application/yaml` and `text/x.enum`, got `{other}`.\n"
                    )));
                }
            },
        };
        shape = match g
            .get("responseSchema")
            .or_else(|| g.get("responseJsonSchema"))
        {
            Some(schema) => shape_of(schema),
            None => Shape::Free { json: json_mime },
        };
        if let Some(n) = g.get("candidateCount") {
            let n = as_i64(n, "generation_config.candidate_count")?;
            if !(1..=8).contains(&n) {
                return Err(ApiError::invalid(
                    "* GenerateContentRequest.generation_config.candidate_count: must be \
                     between 1 and 8.\n",
                ));
            }
            candidates = n as u64;
        }
        if let Some(n) = g.get("maxOutputTokens") {
            let n = as_i64(n, "generation_config.max_output_tokens")?;
            if n > 0 {
                max_output_tokens = Some(n as u64);
            }
        }
        if let Some(tc) = g.get("thinkingConfig") {
            let tpath = "generation_config.thinking_config";
            check_fields(as_object(tc, tpath)?, wire::THINKING_FIELDS, tpath)?;
        }
    }

    let image_sha256: Vec<String> = blobs
        .iter()
        .map(|b| hex::encode(Sha256::digest(b)))
        .collect();
    // Decoding is the slow part: off the async threads.
    let decoded = tokio::task::spawn_blocking(move || {
        blobs
            .iter()
            .map(|b| {
                let img = image::load_from_memory(b).ok().map(|i| i.to_rgb8());
                let dims = img.as_ref().map(|i| i.dimensions());
                (img.as_ref().and_then(paint::read_signature), dims)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::internal(format!("image decoder task failed: {e}")))?;
    let image_tokens = decoded
        .iter()
        .map(|(_, d)| wire::tiled_image_tokens(*d))
        .sum::<u64>()
        + unknown_images * wire::tiled_image_tokens(None);
    let mut images: Vec<Option<u32>> = decoded.into_iter().map(|(id, _)| id).collect();
    images.extend((0..unknown_images).map(|_| None));
    Ok(ReadRequest {
        sha: hasher.finalize().into(),
        text_tokens: text_chars.div_ceil(4).max(1),
        image_tokens,
        images,
        image_sha256,
        shape,
        max_output_tokens,
        candidates,
    })
}

fn text_tokens(s: &str) -> u64 {
    (s.chars().count() as u64).div_ceil(4).max(1)
}

/// The answer text for `texts`.
fn render(shape: &Shape, texts: &[String]) -> String {
    match shape {
        Shape::Free { json: false } => texts.join("\n"),
        Shape::Free { json: true } => json!({ "texts": texts }).to_string(),
        Shape::Array => json!(texts).to_string(),
        Shape::Object(Some(prop)) => {
            let mut m = Map::new();
            m.insert(prop.clone(), json!(texts));
            Value::Object(m).to_string()
        }
        Shape::Object(None) => "{}".to_string(),
    }
}

/// Build the `GenerateContentResponse` of one read. Each candidate draws
/// `misread_rate` on its own, keyed by how often this request was read.
pub(crate) fn build(s: &Shared, model: &str, req: &ReadRequest, response_id: String) -> Value {
    s.with_stats(|st| st.read_images.extend(req.image_sha256.iter().cloned()));
    let truth: Vec<String> = req
        .images
        .iter()
        .flatten()
        .filter_map(|id| s.paint.get(*id))
        .flat_map(|p| p.texts.clone())
        .collect();
    let rate = s.faults().misread_rate;
    let n = s.attempt(KIND_MISREAD, &req.sha).to_le_bytes();
    let mut candidates = Vec::new();
    let mut out_tokens = 0u64;
    for c in 0..req.candidates {
        let ci = c.to_le_bytes();
        let mut texts = truth.clone();
        if !texts.is_empty()
            && draw(s.seed, &[b"misread", &req.sha, &n, &ci]) < rate
            && paint::misspell_one(
                &mut texts,
                s.dice(b"misread-how", &req.sha, &[n, ci].concat()),
            )
        {
            s.with_stats(|st| st.misread += 1);
        }
        let mut text = render(&req.shape, &texts);
        let mut tokens = text_tokens(&text);
        let mut finish = "STOP";
        if let Some(max) = req.max_output_tokens
            && tokens > max
        {
            text = text.chars().take((max * 4) as usize).collect();
            tokens = max;
            finish = "MAX_TOKENS";
        }
        out_tokens += tokens;
        candidates.push(json!({
            "content": {"role": "model", "parts": [{"text": text}]},
            "finishReason": finish,
            "index": c,
        }));
    }
    let prompt = req.text_tokens + req.image_tokens;
    let mut details = vec![json!({"modality": "TEXT", "tokenCount": req.text_tokens})];
    if req.image_tokens > 0 {
        details.push(json!({"modality": "IMAGE", "tokenCount": req.image_tokens}));
    }
    json!({
        "candidates": candidates,
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": out_tokens,
            "totalTokenCount": prompt + out_tokens,
            "promptTokensDetails": details,
            "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": out_tokens}],
        },
        "modelVersion": model,
        "responseId": response_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_pick_the_first_array_of_strings_property() {
        let openapi = json!({"type": "OBJECT", "properties": {
            "count": {"type": "INTEGER"},
            "texts": {"type": "ARRAY", "items": {"type": "STRING"}}}, "required": ["texts"]});
        assert_eq!(shape_of(&openapi), Shape::Object(Some("texts".into())));
        let js = json!({"type": "object", "properties": {"b": {"type": "array", "items": {"type": "string"}},
            "a": {"type": "array", "items": {"type": "string"}}}, "propertyOrdering": ["b", "a"]});
        assert_eq!(shape_of(&js), Shape::Object(Some("b".into())));
        assert_eq!(
            shape_of(&json!({"type": "array", "items": {"type": "string"}})),
            Shape::Array
        );
        let t = vec!["A \"B\"".to_string()];
        assert_eq!(
            render(&Shape::Object(Some("texts".into())), &t),
            r#"{"texts":["A \"B\""]}"#
        );
        assert_eq!(render(&Shape::Free { json: false }, &t), "A \"B\"");
    }
}
