//! Serde types for the OpenAI Image, Files and Batch wire formats
//! (shared/protocols/openai.md §1, §2, §3.1, §4).
//!
//! Requests are serialized from typed structs only, so one
//! [`ImageRequest`] always produces the same bytes; realtime bodies and
//! batch lines share [`GenerationsBody`] and the edit fields.
//!
//! Responses are parsed defensively: every field is optional, nulls are
//! tolerated, unknown fields are ignored, and the base64 image string is
//! borrowed from the input whenever it has no escapes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::domain::{Quality, ReferenceImage, gpt_json_edit_size, gpt_size};
use crate::provider::{ImageRequest, ProviderError, Reason};

/// The only output format adloc asks for.
pub const OUTPUT_FORMAT: &str = "png";
/// The MIME type of [`OUTPUT_FORMAT`].
pub const OUTPUT_MIME: &str = "image/png";
/// Most reference images one edit takes (§2.1).
pub const MAX_REFERENCES: usize = 16;

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// The text fields every image request carries, in the order sent. It is
/// the whole `images/generations` body (§1.1) and, with `images`, the JSON
/// edit body (§2.2); the multipart edit sends the same fields as parts.
/// `response_format` is never sent (GPT Image models reject it).
#[derive(Debug, Clone, Serialize)]
pub struct GenerationsBody<'a> {
    /// The model id exactly as configured.
    pub model: &'a str,
    /// The full prompt.
    pub prompt: &'a str,
    /// Always 1: one job, one image.
    pub n: u32,
    /// `WxH` from [`gpt_size`].
    pub size: String,
    /// The request's quality, `medium` when it has none.
    pub quality: &'static str,
    /// Always `png`.
    pub output_format: &'static str,
}

/// What GPT Image is asked for a request: an edit of an earlier image is an
/// `/v1/images/edits` call (§2) whose first image is that image and whose
/// prompt is the instruction, the request's references after it. GPT Image
/// has no conversation to continue, so the image itself carries the state.
pub fn as_sent(req: &ImageRequest) -> Cow<'_, ImageRequest> {
    let Some(edit) = &req.edit else {
        return Cow::Borrowed(req);
    };
    let mut sent = req.clone();
    sent.edit = None;
    sent.prompt = edit.instruction.clone();
    sent.references.insert(0, edit.image.clone());
    Cow::Owned(sent)
}

impl<'a> GenerationsBody<'a> {
    /// The fields for a request; refuses a ratio GPT Image cannot draw.
    pub fn from_request(req: &'a ImageRequest) -> Result<Self, ProviderError> {
        let (w, h) = gpt_size(req.aspect_ratio.as_str(), req.image_size).ok_or_else(|| {
            ProviderError::job_terminal(
                Reason::InvalidArgument,
                format!(
                    "aspect ratio {} at size {} is outside what GPT Image draws (1:3 to 3:1, 1K and up)",
                    req.aspect_ratio, req.image_size
                ),
            )
        })?;
        Ok(GenerationsBody {
            model: req.model.as_str(),
            prompt: &req.prompt,
            n: 1,
            size: format!("{w}x{h}"),
            quality: req.quality.unwrap_or(Quality::Medium).as_str(),
            output_format: OUTPUT_FORMAT,
        })
    }
}

/// The exact frame GPT Image is asked to draw for a request (its ratio and
/// size tier through [`gpt_size`]), `None` for a ratio it cannot draw.
pub fn frame_of(req: &ImageRequest) -> Option<(u32, u32)> {
    gpt_size(req.aspect_ratio.as_str(), req.image_size)
}

/// The JSON edit body (§2.2): the generation fields plus `images`, each a
/// `data:` URL (the form batch lines must use).
///
/// Its `size` and `quality` are closed sets, unlike the multipart form's
/// (`EditImageBodyJsonParam` in openai/openai-openapi `openapi.yaml`:
/// `size` is `auto | 1024x1024 | 1536x1024 | 1024x1536`, `quality` is
/// `low | medium | high | auto`). A batch line cannot carry multipart, and
/// the half price is the point of batching, so batch edits stay batched:
/// they ask the standard size nearest the frame's ratio
/// ([`gpt_json_edit_size`]) and the image that comes back is cropped to
/// fill the exact frame locally ([`super::response::fit_to_frame`], the
/// renditions' cover crop), so the stored master is the same frame a
/// realtime multipart edit would have drawn. `xhigh` and `max` are sent as
/// `high`, the best the JSON form takes. Realtime edits go through
/// multipart, which takes the exact `WxH` and every quality.
#[derive(Debug, Serialize)]
pub struct EditsJsonBody<'a> {
    /// The shared fields, flattened in.
    #[serde(flatten)]
    pub fields: GenerationsBody<'a>,
    /// `[{image_url: "data:…"}]`, 1..16 items.
    pub images: Vec<ImageRef<'a>>,
}

impl<'a> EditsJsonBody<'a> {
    /// The JSON edit body for a request with references (see the type's
    /// doc for its size and quality).
    pub fn from_request(req: &'a ImageRequest) -> Result<Self, ProviderError> {
        let mut fields = GenerationsBody::from_request(req)?;
        if let Some((w, h)) = frame_of(req) {
            let (w, h) = gpt_json_edit_size(w, h);
            fields.size = format!("{w}x{h}");
        }
        fields.quality = json_edit_quality(req.quality.unwrap_or(Quality::Medium));
        Ok(EditsJsonBody {
            fields,
            images: req
                .references
                .iter()
                .map(|r| ImageRef {
                    image_url: DataUrl(r),
                })
                .collect(),
        })
    }
}

/// The `quality` a JSON edit body sends: the model's own value where the
/// JSON form takes it, `high` for `xhigh` and `max` (not in its set).
pub fn json_edit_quality(q: Quality) -> &'static str {
    match q {
        Quality::Low | Quality::Medium | Quality::High => q.as_str(),
        Quality::XHigh | Quality::Max => Quality::High.as_str(),
    }
}

/// One `ImageRefParam`: exactly one `image_url`.
#[derive(Debug, Serialize)]
pub struct ImageRef<'a> {
    /// The reference as a `data:<mime>;base64,…` URL.
    pub image_url: DataUrl<'a>,
}

/// A reference image serialized as a `data:` URL, base64-encoded while
/// serializing (no intermediate string).
pub struct DataUrl<'a>(pub &'a ReferenceImage);

impl fmt::Debug for DataUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DataUrl({}, {} bytes)",
            self.0.mime_type,
            self.0.bytes.len()
        )
    }
}

impl Serialize for DataUrl<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mime = reference_kind(self.0)
            .map(|(m, _)| m)
            .unwrap_or("application/octet-stream");
        s.collect_str(&format_args!(
            "data:{mime};base64,{}",
            Base64Display::new(&self.0.bytes, &STANDARD)
        ))
    }
}

/// The normalized MIME type and file extension of a reference image, or
/// `None` for a type GPT Image does not take (png, jpeg, webp only).
pub fn reference_kind(r: &ReferenceImage) -> Option<(&'static str, &'static str)> {
    let m = r.mime_type.split(';').next().unwrap_or("").trim();
    match m.to_ascii_lowercase().as_str() {
        "image/png" => Some(("image/png", "png")),
        "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(("image/jpeg", "jpg")),
        "image/webp" => Some(("image/webp", "webp")),
        _ => None,
    }
}

/// Check a request's references against the edit limits.
pub fn check_references(req: &ImageRequest) -> Result<(), ProviderError> {
    if req.references.len() > MAX_REFERENCES {
        return Err(ProviderError::job_terminal(
            Reason::InvalidArgument,
            format!(
                "{} reference images; GPT Image edits take at most {MAX_REFERENCES}",
                req.references.len()
            ),
        ));
    }
    if let Some(bad) = req.references.iter().find(|r| reference_kind(r).is_none()) {
        return Err(ProviderError::job_terminal(
            Reason::InvalidArgument,
            format!(
                "reference image of type {:?}: GPT Image edits take png, jpeg or webp",
                bad.mime_type
            ),
        ));
    }
    Ok(())
}

/// A batch request body: generation or JSON edit.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum BatchBody<'a> {
    /// `/v1/images/generations`.
    Generations(GenerationsBody<'a>),
    /// `/v1/images/edits`, JSON form.
    Edits(EditsJsonBody<'a>),
}

/// One line of a batch input file (§4.2).
#[derive(Debug, Serialize)]
pub struct BatchInputLine<'a> {
    /// The item key; results are joined on it.
    pub custom_id: &'a str,
    /// Always `POST`.
    pub method: &'static str,
    /// The batch's endpoint (`/v1/images/…`).
    pub url: &'static str,
    /// The same body as the realtime call.
    pub body: BatchBody<'a>,
}

/// `POST /batches` body (§4.4).
#[derive(Debug, Serialize)]
pub struct CreateBatchBody<'a> {
    /// The uploaded JSONL.
    pub input_file_id: &'a str,
    /// `/v1/images/generations` or `/v1/images/edits`.
    pub endpoint: &'static str,
    /// Always `24h`.
    pub completion_window: &'static str,
    /// `{"adloc_tag": <display name>}`.
    pub metadata: BTreeMap<&'static str, &'a str>,
}

/// The metadata key carrying the chunk's display name.
pub const TAG_KEY: &str = "adloc_tag";

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// `ImagesResponse` (§1.2), borrowed from the body. `error` is read too,
/// because batch lines put the error envelope in the same `body` slot.
#[derive(Debug, Default, Deserialize)]
pub struct ImagesResponse<'a> {
    /// One entry per image.
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub data: Vec<ImageDatum<'a>>,
    /// Token usage.
    #[serde(default)]
    pub usage: Option<ImageUsage>,
    /// The resolved output format.
    #[serde(default)]
    pub output_format: Option<String>,
    /// An error envelope (non-200 batch line bodies, odd relays).
    #[serde(default)]
    pub error: Option<ApiError>,
}

/// One `data[]` entry.
#[derive(Debug, Default, Deserialize)]
pub struct ImageDatum<'a> {
    /// Standard base64 of the image bytes.
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub b64_json: Option<Cow<'a, str>>,
}

/// `usage` of an `ImagesResponse`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ImageUsage {
    /// All input tokens (text and images).
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_tokens: u64,
    /// Split of the input.
    #[serde(default)]
    pub input_tokens_details: Option<TokenDetails>,
    /// All output tokens.
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_tokens: u64,
    /// Split of the output, when given.
    #[serde(default)]
    pub output_tokens_details: Option<TokenDetails>,
}

/// `{text_tokens, image_tokens}`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct TokenDetails {
    /// Text tokens.
    #[serde(default, deserialize_with = "null_as_default")]
    pub text_tokens: u64,
    /// Image tokens.
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_tokens: u64,
}

/// `{"error": {...}}` (§3.1).
#[derive(Debug, Default, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    #[serde(default)]
    pub error: Option<ApiError>,
}

/// The error object: `message`, `type`, `param`, `code`, and the optional
/// `moderation_details` of policy blocks (§3.3).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ApiError {
    /// Human message.
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: Option<String>,
    /// `invalid_request_error`, `insufficient_quota`, …
    #[serde(default, rename = "type", deserialize_with = "lenient_string")]
    pub kind: Option<String>,
    /// The offending parameter.
    #[serde(default, deserialize_with = "lenient_string")]
    pub param: Option<String>,
    /// `rate_limit_exceeded`, `moderation_blocked`, … (a number is read as text).
    #[serde(default, deserialize_with = "lenient_string")]
    pub code: Option<String>,
    /// Policy block details.
    #[serde(default)]
    pub moderation_details: Option<ModerationDetails>,
}

/// `moderation_details` of a `moderation_blocked` error.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ModerationDetails {
    /// `input` or `output`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub moderation_stage: Option<String>,
    /// `["sexual"]`, …
    #[serde(default, deserialize_with = "null_as_default")]
    pub categories: Vec<String>,
}

/// A `FileObject` (§4.3); only the id matters.
#[derive(Debug, Deserialize)]
pub struct FileObject {
    /// `file-…`.
    pub id: String,
}

/// A Batch object (§4.5).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Batch {
    /// `batch_…`.
    #[serde(default)]
    pub id: String,
    /// `validating`, `in_progress`, `completed`, …
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: Option<String>,
    /// Successful results.
    #[serde(default, deserialize_with = "lenient_string")]
    pub output_file_id: Option<String>,
    /// Failed requests.
    #[serde(default, deserialize_with = "lenient_string")]
    pub error_file_id: Option<String>,
    /// Validation errors of a failed batch.
    #[serde(default)]
    pub errors: Option<BatchErrors>,
    /// The metadata it was created with.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, Value>,
}

impl Batch {
    /// `metadata.adloc_tag`, when it is a string.
    pub fn tag(&self) -> Option<&str> {
        self.metadata.get(TAG_KEY).and_then(Value::as_str)
    }

    /// The output and error files, present and non-empty, in that order.
    pub fn result_files(&self) -> Vec<&str> {
        [&self.output_file_id, &self.error_file_id]
            .into_iter()
            .filter_map(|f| f.as_deref().map(str::trim).filter(|s| !s.is_empty()))
            .collect()
    }
}

/// `errors` of a Batch.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct BatchErrors {
    /// The errors.
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<BatchError>,
}

/// One batch validation error.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct BatchError {
    /// Error code.
    #[serde(default, deserialize_with = "lenient_string")]
    pub code: Option<String>,
    /// Message.
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: Option<String>,
    /// Input line number.
    #[serde(default)]
    pub line: Option<Value>,
}

/// `GET /batches` page.
#[derive(Debug, Default, Deserialize)]
pub struct BatchList {
    /// Batches, newest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<Batch>,
    /// More pages after this one.
    #[serde(default, deserialize_with = "null_as_default")]
    pub has_more: bool,
    /// Cursor for the next page.
    #[serde(default, deserialize_with = "lenient_string")]
    pub last_id: Option<String>,
}

/// One line of a batch output or error file (§4.7).
#[derive(Debug, Deserialize)]
pub struct BatchOutputLine<'a> {
    /// The key the item was submitted with.
    #[serde(default, deserialize_with = "lenient_string")]
    pub custom_id: Option<String>,
    /// The HTTP-level answer, when the request ran.
    #[serde(borrow, default)]
    pub response: Option<BatchLineResponse<'a>>,
    /// A non-HTTP failure (`batch_expired`, …).
    #[serde(default)]
    pub error: Option<ApiError>,
}

/// `response` of an output line.
#[derive(Debug, Deserialize)]
pub struct BatchLineResponse<'a> {
    /// The HTTP status the request got.
    #[serde(default)]
    pub status_code: Option<u16>,
    /// `req_…`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub request_id: Option<String>,
    /// The `ImagesResponse` or the error envelope.
    #[serde(borrow, default)]
    pub body: Option<ImagesResponse<'a>>,
}

// ---------------------------------------------------------------------------
// Lenient helpers
// ---------------------------------------------------------------------------

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A string, or a number/bool rendered as text; null and other shapes are `None`.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// An optional string that borrows from the input when it has no escapes.
fn opt_cow<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_tolerate_nulls_unknown_fields_and_numeric_codes() {
        let r: ImagesResponse<'_> = serde_json::from_str(
            r#"{"created":1,"data":null,"usage":{"input_tokens":null,"output_tokens":5,"future":1},"x":[1]}"#,
        )
        .unwrap();
        assert!(r.data.is_empty());
        assert_eq!(r.usage.unwrap().output_tokens, 5);
        let e: ErrorEnvelope = serde_json::from_str(
            r#"{"error":{"message":"m","type":null,"param":null,"code":429}}"#,
        )
        .unwrap();
        assert_eq!(e.error.unwrap().code.as_deref(), Some("429"));
        let b: Batch = serde_json::from_str(
            r#"{"id":"batch_1","status":"completed","metadata":null,"output_file_id":null,"error_file_id":" "}"#,
        )
        .unwrap();
        assert!(b.result_files().is_empty());
        assert_eq!(b.tag(), None);
    }

    #[test]
    fn b64_is_borrowed_from_the_body() {
        let r: ImagesResponse<'_> =
            serde_json::from_str(r#"{"data":[{"b64_json":"iVBORw0KGgo="}]}"#).unwrap();
        assert!(matches!(r.data[0].b64_json, Some(Cow::Borrowed(_))));
    }
}
