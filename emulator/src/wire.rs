//! Request-side wire handling: snake/camel normalization, unknown-field
//! checks, and validation of a `GenerateContentRequest` against a model
//! profile (protocol §1.2, §1.3, §1.7).

use std::io::Cursor;

use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::errors::ApiError;
use crate::generate;
use crate::models::{ImageSize, ModelFamily, ModelId, parse_ratio};

/// Map-valued fields whose keys belong to the user, not to the schema:
/// their keys must not be renamed or checked.
const OPAQUE: &[&str] = &[
    "metadata",
    "labels",
    "responseSchema",
    "responseJsonSchema",
    "parametersJsonSchema",
    "parameters",
    "args",
];

/// `snake_case` → `camelCase` (proto3 JSON accepts both spellings).
fn camel(key: &str) -> String {
    if !key.contains('_') {
        return key.to_string();
    }
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `camelCase` → `snake_case`, for error paths (the service names fields in
/// proto style: `generation_config.image_config`).
pub(crate) fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Rewrite every object key to camelCase, recursively, leaving the
/// contents of [`OPAQUE`] fields alone. A field given in both spellings is
/// rejected, as a proto JSON parser does.
pub(crate) fn normalize(v: Value) -> Result<Value, ApiError> {
    match v {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, val) in map {
                let ck = camel(&k);
                let val = if OPAQUE.contains(&ck.as_str()) {
                    val
                } else {
                    normalize(val)?
                };
                if out.insert(ck.clone(), val).is_some() {
                    return Err(ApiError::invalid(format!(
                        "Invalid JSON payload received. Duplicate field \"{}\".",
                        snake(&ck)
                    )));
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => Ok(Value::Array(
            items.into_iter().map(normalize).collect::<Result<_, _>>()?,
        )),
        other => Ok(other),
    }
}

/// Parse a request body as JSON, with the service's error for bad JSON.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))
}

/// Reject any key of `obj` not in `allowed` with the §2.4 message.
pub(crate) fn check_fields(
    obj: &Map<String, Value>,
    allowed: &[&str],
    path: &str,
) -> Result<(), ApiError> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            let at = if path.is_empty() {
                String::new()
            } else {
                format!(" at '{path}'")
            };
            return Err(ApiError::invalid(format!(
                "Invalid JSON payload received. Unknown name \"{k}\"{at}: Cannot find field."
            ))
            .with_detail(serde_json::json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{
                    "field": path,
                    "description": format!(
                        "Invalid JSON payload received. Unknown name \"{k}\"{at}: Cannot find field."
                    ),
                }],
            })));
        }
    }
    Ok(())
}

fn join(path: &str, field: &str) -> String {
    let f = snake(field);
    if path.is_empty() {
        f
    } else {
        format!("{path}.{f}")
    }
}

fn type_error(path: &str, ty: &str, v: &Value) -> ApiError {
    ApiError::invalid(format!("Invalid value at '{path}' ({ty}), {v}"))
}

pub(crate) fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid JSON payload received. Expected an object at '{path}', got {v}."
        ))
    })
}

pub(crate) fn as_array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, ApiError> {
    v.as_array().ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid JSON payload received. Expected a list at '{path}', got {v}."
        ))
    })
}

pub(crate) fn as_str<'a>(v: &'a Value, path: &str) -> Result<&'a str, ApiError> {
    v.as_str().ok_or_else(|| type_error(path, "TYPE_STRING", v))
}

pub(crate) fn as_bool(v: &Value, path: &str) -> Result<bool, ApiError> {
    v.as_bool().ok_or_else(|| type_error(path, "TYPE_BOOL", v))
}

/// Proto3 JSON integers may come as numbers or strings.
pub(crate) fn as_i64(v: &Value, path: &str) -> Result<i64, ApiError> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| type_error(path, "TYPE_INT32", v))
}

/// Decode proto `bytes`: standard or URL-safe alphabet, padded or not.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    STANDARD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .or_else(|_| URL_SAFE_NO_PAD.decode(s))
        .ok()
}

/// A validated `GenerateContentRequest`, reduced to what the emulator needs.
#[derive(Debug, Clone)]
pub(crate) struct GenRequest {
    /// Text of every non-thought text part of the user turns, joined by `\n`.
    pub prompt: String,
    /// SHA-256 of `prompt`.
    pub prompt_sha: [u8; 32],
    pub aspect_ratio: String,
    pub image_size: ImageSize,
    /// `responseModalities` includes IMAGE (or is absent).
    pub want_image: bool,
    /// `responseModalities` includes TEXT (or is absent).
    pub want_text: bool,
    pub include_thoughts: bool,
    /// `thinkingBudget: 0` was sent.
    pub thinking_off: bool,
    pub grounding: bool,
    /// Prompt text tokens (about chars / 4).
    pub text_tokens: u64,
    /// Prompt image tokens.
    pub image_tokens_in: u64,
    /// A multi-turn edit: the model's image sent back, and the instruction.
    /// For a single-turn edit it is set by [`crate::Shared::record_gemini_edit`]
    /// once the input image is recognized as one this emulator painted.
    pub edit: Option<EditTurn>,
    /// Every turn as received (texts, image hashes, signatures and whether
    /// each was issued for its conversation), for the edit record.
    pub turns: Vec<crate::TurnSeen>,
    /// Without a model turn: the first input image of the user turn, which
    /// a single-turn edit edits (image and instruction in one user turn).
    pub edit_source: Option<Vec<u8>>,
    /// The text whose quoted copy the image shows: the prompt, or for an
    /// edit the first turn with each `'old' with 'new'` swap of the
    /// instruction applied (what a model told to replace copy paints).
    pub paint_prompt: String,
}

/// Apply the copy swaps an edit instruction asks for (`… 'old' with 'new' …`)
/// to the quoted copy of `original`.
pub(crate) fn swapped(original: &str, instruction: &str) -> String {
    let mut out = original.to_string();
    let mut rest = instruction;
    while let Some(i) = rest.find("' with '") {
        let before = &rest[..i];
        let after = &rest[i + "' with '".len()..];
        let (Some(open), Some(close)) = (before.rfind('\''), after.find('\'')) else {
            break;
        };
        let (old, new) = (&before[open + 1..], &after[..close]);
        out = out.replace(&format!("\"{old}\""), &format!("\"{new}\""));
        rest = &after[close + 1..];
    }
    out
}

/// What an edit request carried (§7b): the image edited (the last
/// model-turn image, or a single-turn edit's input image), its signature,
/// whether this emulator issued that signature for the conversation before
/// the turn, and the text of the last user turn (the instruction).
#[derive(Debug, Clone)]
pub(crate) struct EditTurn {
    pub image_sha256: [u8; 32],
    pub thought_signature: Option<String>,
    pub signature_issued: bool,
    pub instruction: String,
}

pub(crate) const TOP_FIELDS: &[&str] = &[
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "model",
    "labels",
    "serviceTier",
    "store",
];
pub(crate) const CONTENT_FIELDS: &[&str] = &["role", "parts"];
pub(crate) const PART_FIELDS: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "thought",
    "thoughtSignature",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "videoMetadata",
    "partMetadata",
    "mediaResolution",
];
pub(crate) const BLOB_FIELDS: &[&str] = &["mimeType", "data", "displayName"];
pub(crate) const FILE_DATA_FIELDS: &[&str] = &["mimeType", "fileUri", "displayName"];
pub(crate) const GEN_CONFIG_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
    "responseFormat",
];
/// The Developer API has no `personGeneration`, `outputMimeType`, … (§1.2):
/// they are unknown fields here.
const IMAGE_CONFIG_FIELDS: &[&str] = &["aspectRatio", "imageSize"];
pub(crate) const THINKING_FIELDS: &[&str] = &["includeThoughts", "thinkingBudget", "thinkingLevel"];

/// What the request refers to outside itself: Files API ids.
pub(crate) trait FileLookup {
    /// Whether `files/{id}` exists.
    fn file_exists(&self, id: &str) -> bool;
}

/// Validate a normalized (camelCase) request for `model`.
pub(crate) fn parse_request(
    v: &Value,
    model: &ModelId,
    files: &dyn FileLookup,
    seed: u64,
) -> Result<GenRequest, ApiError> {
    let family = model.family();
    let top = as_object(v, "")?;
    check_fields(top, TOP_FIELDS, "")?;

    let contents = match top.get("contents") {
        Some(c) => as_array(c, "contents")?.as_slice(),
        None => &[],
    };
    if contents.is_empty() {
        return Err(ApiError::invalid(
            "* GenerateContentRequest.contents: contents is not specified\n",
        ));
    }

    let mut texts: Vec<&str> = Vec::new();
    let mut text_chars = 0u64;
    let mut image_tokens_in = 0u64;
    let mut input_images = 0usize;
    let mut first_ref_dims: Option<(u32, u32)> = None;

    // Gemini 3 image models sign their image parts and the first text part
    // after the thoughts when it comes before the image; a conversation
    // must send every signature back "exactly as received"
    // (https://ai.google.dev/gemini-api/docs/image-generation, "Thought
    // Signatures"; https://ai.google.dev/gemini-api/docs/thought-signatures).
    // A model-turn image part without its signature is refused with the
    // service's message (§7b); so is a signed text part left unsigned, and a
    // signature this emulator did not issue for the conversation before
    // that turn (a signature replayed out of its own conversation).
    let signs = matches!(family, ModelFamily::Pro3 | ModelFamily::Flash31);
    // The non-thought texts of each user turn, in order.
    let mut user_turns: Vec<Vec<&str>> = Vec::new();
    let mut turns: Vec<crate::TurnSeen> = Vec::new();
    let mut model_image: Option<EditTurn> = None;
    let mut edit_source: Option<Vec<u8>> = None;
    for (ci, c) in contents.iter().enumerate() {
        let cpath = format!("contents[{ci}]");
        let cobj = as_object(c, &cpath)?;
        check_fields(cobj, CONTENT_FIELDS, &cpath)?;
        let role = match cobj.get("role") {
            Some(r) => as_str(r, &format!("{cpath}.role"))?,
            None => "user",
        };
        let parts = match cobj.get("parts") {
            Some(p) => as_array(p, &format!("{cpath}.parts"))?.as_slice(),
            None => &[],
        };
        if parts.is_empty() {
            return Err(ApiError::invalid(format!(
                "* GenerateContentRequest.contents[{ci}].parts: contents.parts must not be empty.\n"
            )));
        }
        // A model turn answered the user texts before it: its signatures
        // were issued for that prompt.
        let answered: [u8; 32] = Sha256::digest(texts.join("\n").as_bytes()).into();
        let is_model = role == "model";
        let mut turn_texts: Vec<&str> = Vec::new();
        let mut seen = crate::TurnSeen {
            role: role.to_string(),
            parts: Vec::new(),
        };
        // Whether a non-thought part came before in this turn.
        let mut after_first = false;
        for (pi, p) in parts.iter().enumerate() {
            let ppath = format!("{cpath}.parts[{pi}]");
            let pobj = as_object(p, &ppath)?;
            check_fields(pobj, PART_FIELDS, &ppath)?;
            let thought = match pobj.get("thought") {
                Some(t) => as_bool(t, &format!("{ppath}.thought"))?,
                None => false,
            };
            let data_fields = ["text", "inlineData", "fileData"]
                .iter()
                .filter(|f| pobj.contains_key(**f))
                .count();
            if data_fields > 1 {
                return Err(ApiError::invalid(format!(
                    "Invalid value at '{ppath}' (oneof), oneof field 'data' is already set. \
                     Cannot set 'inline_data'"
                )));
            }
            let signature = match pobj.get("thoughtSignature") {
                Some(sig) => Some(as_str(sig, &format!("{ppath}.thought_signature"))?)
                    .filter(|s| !s.is_empty()),
                None => None,
            };
            let issued = signature.is_some_and(|sig| generate::issued(seed, &answered, sig));
            if is_model && signs && !thought && signature.is_some() && !issued {
                // The message users report for a signature the service
                // cannot verify (third-party reports; wording UNCONFIRMED).
                return Err(ApiError::invalid(format!(
                    "Unable to submit request because it has an invalid thought signature for \
                     content at index {ci}"
                )));
            }
            let mut part_seen = crate::PartSeen {
                thought_signature: signature.map(str::to_string),
                signature_issued: issued,
                ..crate::PartSeen::default()
            };
            if let Some(t) = pobj.get("text") {
                let t = as_str(t, &format!("{ppath}.text"))?;
                if !is_model && !thought {
                    texts.push(t);
                    text_chars += t.chars().count() as u64;
                    turn_texts.push(t);
                }
                if is_model && signs && !thought && !after_first && signature.is_none() {
                    return Err(ApiError::invalid(format!(
                        "Text part is missing a thought_signature in content position {}, part \
                         position {}",
                        ci + 1,
                        pi + 1
                    )));
                }
                part_seen.text = Some(t.to_string());
            }
            if let Some(blob) = pobj.get("inlineData") {
                let bpath = format!("{ppath}.inline_data");
                let bobj = as_object(blob, &bpath)?;
                check_fields(bobj, BLOB_FIELDS, &bpath)?;
                let mime = match bobj.get("mimeType") {
                    Some(m) => as_str(m, &format!("{bpath}.mime_type"))?,
                    None => "",
                };
                let data = match bobj.get("data") {
                    Some(d) => as_str(d, &format!("{bpath}.data"))?,
                    None => "",
                };
                let bytes = decode_base64(data).ok_or_else(|| {
                    let shown: String = data.chars().take(32).collect();
                    ApiError::invalid(format!(
                        "Invalid value at '{bpath}.data' (TYPE_BYTES), Base64 decoding failed for \"{shown}\""
                    ))
                })?;
                let image_sha: [u8; 32] = Sha256::digest(&bytes).into();
                part_seen.image_sha256 = Some(hex::encode(image_sha));
                if mime.starts_with("image/") && is_model && !thought {
                    if signs && signature.is_none() {
                        return Err(ApiError::invalid(format!(
                            "Image part is missing a thought_signature in content position {}, part position {}",
                            ci + 1,
                            pi + 1
                        )));
                    }
                    model_image = Some(EditTurn {
                        image_sha256: image_sha,
                        thought_signature: signature.map(str::to_string),
                        signature_issued: issued,
                        instruction: String::new(),
                    });
                }
                if mime.starts_with("image/") && !is_model {
                    input_images += 1;
                    let dims = image_dims(&bytes);
                    if dims.is_none() && matches!(mime, "image/png" | "image/jpeg" | "image/webp") {
                        return Err(ApiError::invalid(
                            "Unable to process input image. Please retry or report in \
                             https://developers.generativeai.google/guide/troubleshooting",
                        ));
                    }
                    if first_ref_dims.is_none() {
                        first_ref_dims = dims;
                    }
                    image_tokens_in += input_image_tokens(family, dims);
                    if edit_source.is_none() {
                        edit_source = Some(bytes);
                    }
                } else if mime.is_empty() {
                    return Err(ApiError::invalid(format!(
                        "* GenerateContentRequest.{ppath}.inline_data.mime_type: mime_type is not specified\n"
                    )));
                }
            }
            if let Some(fd) = pobj.get("fileData") {
                let fpath = format!("{ppath}.file_data");
                let fobj = as_object(fd, &fpath)?;
                check_fields(fobj, FILE_DATA_FIELDS, &fpath)?;
                let uri = match fobj.get("fileUri") {
                    Some(u) => as_str(u, &format!("{fpath}.file_uri"))?,
                    None => "",
                };
                if uri.is_empty() {
                    return Err(ApiError::invalid(format!(
                        "* GenerateContentRequest.{ppath}.file_data.file_uri: file_uri is not specified\n"
                    )));
                }
                // Files API URIs point at our own store; other HTTPS URLs are
                // taken on trust (the service fetches them).
                if let Some(id) = files_api_id(uri)
                    && !files.file_exists(&id)
                {
                    return Err(ApiError::permission_denied(format!(
                        "You do not have permission to access the File {id} or it may not exist."
                    )));
                }
                let mime = fobj
                    .get("mimeType")
                    .and_then(Value::as_str)
                    .unwrap_or("image/");
                if mime.starts_with("image/") && role != "model" {
                    input_images += 1;
                    image_tokens_in += input_image_tokens(family, None);
                }
            }
            if !thought {
                after_first = true;
            }
            seen.parts.push(part_seen);
        }
        if !is_model {
            user_turns.push(turn_texts);
        }
        turns.push(seen);
    }

    let max_refs = family.max_reference_images();
    if input_images > max_refs {
        return Err(ApiError::invalid(format!(
            "Too many input images: {input_images} images were provided, but models/{model} \
             supports at most {max_refs}."
        )));
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

    let grounding = match top.get("tools") {
        Some(t) => as_array(t, "tools")?.iter().any(|tool| {
            tool.get("googleSearch").is_some() || tool.get("googleSearchRetrieval").is_some()
        }),
        None => false,
    };
    if grounding && !family.supports_grounding() {
        return Err(ApiError::invalid("Search Grounding is not supported."));
    }

    let mut aspect_ratio: Option<String> = None;
    let mut image_size_raw: Option<String> = None;
    let mut want_image = true;
    let mut want_text = true;
    let mut include_thoughts = false;
    let mut thinking_off = false;

    if let Some(gc) = top.get("generationConfig") {
        let gpath = "generation_config";
        let gobj = as_object(gc, gpath)?;
        check_fields(gobj, GEN_CONFIG_FIELDS, gpath)?;
        if let Some(n) = gobj.get("candidateCount") {
            let n = as_i64(n, "generation_config.candidate_count")?;
            if n > 1 {
                return Err(ApiError::invalid(format!(
                    "Multiple candidates is not enabled for models/{model}"
                )));
            }
        }
        if let Some(m) = gobj.get("responseModalities") {
            let list = as_array(m, "generation_config.response_modalities")?;
            if !list.is_empty() {
                want_image = false;
                want_text = false;
            }
            for (i, item) in list.iter().enumerate() {
                let path = format!("generation_config.response_modalities[{i}]");
                let s = as_str(item, &path)?;
                match s.to_ascii_uppercase().as_str() {
                    "IMAGE" => want_image = true,
                    "TEXT" => want_text = true,
                    "AUDIO" => {
                        return Err(ApiError::invalid(
                            "Model does not support the requested response modalities: audio",
                        ));
                    }
                    "MODALITY_UNSPECIFIED" => {}
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "Invalid value at '{path}' \
                             (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality), \"{s}\""
                        )));
                    }
                }
            }
        }
        if let Some(tc) = gobj.get("thinkingConfig") {
            let tpath = "generation_config.thinking_config";
            let tobj = as_object(tc, tpath)?;
            check_fields(tobj, THINKING_FIELDS, tpath)?;
            if let Some(b) = tobj.get("includeThoughts") {
                include_thoughts = as_bool(b, &format!("{tpath}.include_thoughts"))?;
            }
            if let Some(b) = tobj.get("thinkingBudget") {
                let budget = as_i64(b, &format!("{tpath}.thinking_budget"))?;
                if budget == 0 && family == ModelFamily::Pro3 {
                    return Err(ApiError::invalid(
                        "Budget 0 is invalid. This model only works in thinking mode.",
                    ));
                }
                thinking_off = budget == 0;
            }
            if let Some(l) = tobj.get("thinkingLevel") {
                let path = format!("{tpath}.thinking_level");
                let s = as_str(l, &path)?;
                if !matches!(
                    s,
                    "MINIMAL" | "LOW" | "MEDIUM" | "HIGH" | "THINKING_LEVEL_UNSPECIFIED"
                ) {
                    return Err(ApiError::invalid(format!(
                        "Invalid value at '{path}' \
                         (type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig.ThinkingLevel), \"{s}\""
                    )));
                }
            }
        }
        // `imageConfig`, or the `responseFormat.image` alias some clients send.
        let mut image_cfgs: Vec<(&Value, String)> = Vec::new();
        if let Some(ic) = gobj.get("imageConfig") {
            image_cfgs.push((ic, "generation_config.image_config".into()));
        }
        if let Some(img) = gobj.get("responseFormat").and_then(|rf| rf.get("image")) {
            image_cfgs.push((img, "generation_config.response_format.image".into()));
        }
        for (ic, ipath) in image_cfgs {
            let iobj = as_object(ic, &ipath)?;
            check_fields(iobj, IMAGE_CONFIG_FIELDS, &ipath)?;
            if let Some(r) = iobj.get("aspectRatio") {
                aspect_ratio = Some(as_str(r, &join(&ipath, "aspectRatio"))?.to_string());
            }
            if let Some(s) = iobj.get("imageSize") {
                image_size_raw = Some(as_str(s, &join(&ipath, "imageSize"))?.to_string());
            }
        }
    }

    let aspect_ratio = match aspect_ratio {
        Some(r) => {
            if !family.aspect_ratios().contains(&r.as_str()) {
                return Err(ApiError::invalid(format!(
                    "Unsupported aspect ratio \"{r}\" for models/{model}. Supported aspect ratios: {}.",
                    family.aspect_ratios().join(", ")
                )));
            }
            r
        }
        // Documented default: the input image's ratio, otherwise 1:1.
        None => first_ref_dims
            .map(|d| closest_ratio(family, d))
            .unwrap_or_else(|| "1:1".to_string()),
    };

    let image_size = match image_size_raw {
        None => ImageSize::K1,
        Some(raw) => {
            if family == ModelFamily::Flash25 {
                return Err(ApiError::invalid(format!(
                    "imageSize is not supported for models/{model}. Remove \
                     generation_config.image_config.image_size from the request."
                )));
            }
            let allowed: Vec<&str> = family.image_sizes().iter().map(|s| s.as_str()).collect();
            // Only the exact wire spelling: "1k" and "0.5K" are rejected.
            match raw.parse::<ImageSize>() {
                Ok(s) if s.as_str() == raw && family.image_sizes().contains(&s) => s,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "Unsupported image size \"{raw}\" for models/{model}. Supported image \
                         sizes: {}. Note that the K must be uppercase.",
                        allowed.join(", ")
                    )));
                }
            }
        }
    };

    let prompt = texts.join("\n");
    let prompt_sha: [u8; 32] = Sha256::digest(prompt.as_bytes()).into();
    let instruction = user_turns.last().map(|t| t.join("\n")).unwrap_or_default();
    // A conversation paints the first turn's copy with each later user
    // turn's swaps applied in order (what a model told to replace copy
    // paints).
    let paint_prompt = match &model_image {
        Some(_) => user_turns.iter().skip(1).fold(
            user_turns.first().map(|t| t.join("\n")).unwrap_or_default(),
            |acc, t| swapped(&acc, &t.join("\n")),
        ),
        None => prompt.clone(),
    };
    Ok(GenRequest {
        prompt,
        prompt_sha,
        aspect_ratio,
        image_size,
        want_image,
        want_text,
        include_thoughts,
        thinking_off,
        grounding,
        text_tokens: text_chars.div_ceil(4).max(1),
        image_tokens_in,
        paint_prompt,
        edit_source: if model_image.is_none() {
            edit_source
        } else {
            None
        },
        edit: model_image.map(|e| EditTurn { instruction, ..e }),
        turns,
    })
}

/// `https://…/v1beta/files/abc` or `files/abc` → `abc`.
pub(crate) fn files_api_id(uri: &str) -> Option<String> {
    let rest = if let Some(r) = uri.strip_prefix("files/") {
        r
    } else {
        let idx = uri.find("/files/")?;
        if !(uri.starts_with("http://") || uri.starts_with("https://")) {
            return None;
        }
        &uri[idx + "/files/".len()..]
    };
    let id: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!id.is_empty()).then_some(id)
}

fn image_dims(bytes: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// Input image tokens (protocol §6): Gemini 2.x tiles into 768×768 crops at
/// 258 tokens each (258 when both sides ≤ 384); Gemini 3 image models are
/// priced at a fixed 560 per image.
fn input_image_tokens(family: ModelFamily, dims: Option<(u32, u32)>) -> u64 {
    match family {
        ModelFamily::Flash25 => tiled_image_tokens(dims),
        _ => 560,
    }
}

/// The documented tiling rule for input images (protocol §6, "Input image
/// tokens", from Google's image-understanding page): 258 tokens when both
/// sides are ≤ 384 px, otherwise 258 per 768×768 tile. Unknown size: 258.
pub(crate) fn tiled_image_tokens(dims: Option<(u32, u32)>) -> u64 {
    match dims {
        Some((w, h)) if w > 384 || h > 384 => {
            u64::from(w.div_ceil(768)) * u64::from(h.div_ceil(768)) * 258
        }
        _ => 258,
    }
}

fn closest_ratio(family: ModelFamily, (w, h): (u32, u32)) -> String {
    let target = (f64::from(w.max(1)) / f64::from(h.max(1))).ln();
    family
        .aspect_ratios()
        .iter()
        .filter_map(|r| parse_ratio(r).map(|(a, b)| (r, (f64::from(a) / f64::from(b)).ln())))
        .min_by(|a, b| (a.1 - target).abs().total_cmp(&(b.1 - target).abs()))
        .map_or_else(|| "1:1".to_string(), |(r, _)| (*r).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoFiles;
    impl FileLookup for NoFiles {
        fn file_exists(&self, _: &str) -> bool {
            false
        }
    }

    #[test]
    fn snake_case_and_camel_case_are_both_accepted() {
        let m: ModelId = "gemini-3-pro-image".parse().unwrap();
        let v = normalize(serde_json::json!({
            "contents": [{"parts": [{"text": "hi"}]}],
            "generation_config": {"image_config": {"aspect_ratio": "16:9", "imageSize": "2K"}}
        }))
        .unwrap();
        let r = parse_request(&v, &m, &NoFiles, 0).unwrap();
        assert_eq!(r.aspect_ratio, "16:9");
        assert_eq!(r.image_size, ImageSize::K2);
    }

    #[test]
    fn metadata_keys_are_left_alone() {
        let v = normalize(serde_json::json!({"metadata": {"my_key": "a"}, "display_name": "x"}))
            .unwrap();
        assert!(v["metadata"].get("my_key").is_some());
        assert!(v.get("displayName").is_some());
    }

    #[test]
    fn files_api_ids_are_recognized() {
        assert_eq!(files_api_id("files/abc-1").as_deref(), Some("abc-1"));
        assert_eq!(
            files_api_id("https://generativelanguage.googleapis.com/v1beta/files/x9").as_deref(),
            Some("x9")
        );
        assert_eq!(files_api_id("gs://bucket/x"), None);
    }
}
