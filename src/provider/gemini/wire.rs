//! Serde types for the Gemini REST wire format (shared/protocols/gemini.md).
//!
//! Requests are serialized from typed structs only, so the same
//! [`ImageRequest`] always produces the same bytes (realtime bodies and
//! batch JSONL lines share [`GenerateContentRequest`]).
//!
//! Responses are parsed defensively: every field is optional, unknown
//! fields are ignored, snake_case aliases are accepted where a relay might
//! use them, integers may arrive as JSON strings (proto3 int64), and large
//! strings (base64 image data) are borrowed from the input whenever they
//! contain no escapes.

use std::borrow::Cow;
use std::fmt;

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::{ImageEdit, TurnPart};
use crate::provider::ImageRequest;

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// `GenerateContentRequest`, as sent by realtime calls and batch lines.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest<'a> {
    /// One user turn: reference images, then the prompt. An edit adds the
    /// model's turn (its image part, signed) and a user turn with the
    /// instruction (§7b).
    pub contents: Vec<ContentOut<'a>>,
    /// `[{googleSearch: {}}]` when grounding; omitted otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Modalities and image config.
    pub generation_config: GenerationConfig<'a>,
}

/// One turn of a request.
#[derive(Debug, Serialize)]
pub struct ContentOut<'a> {
    /// `user`, or `model` for the turn that carries an image the model made.
    pub role: &'static str,
    /// The parts, in order.
    pub parts: Vec<PartOut<'a>>,
}

/// One request part: exactly one data field.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PartOut<'a> {
    /// `{"inlineData": {...}}`.
    InlineData(InlineDataOut<'a>),
    /// `{"text": "..."}`.
    Text(&'a str),
    /// `{"inlineData": {...}, "thoughtSignature": "..."}` or
    /// `{"text": "...", "thoughtSignature": "..."}`: a part of a model turn,
    /// sent back in its own turn exactly as it was returned.
    #[serde(untagged)]
    Signed(SignedPartOut<'a>),
}

/// A model-turn part with its signature.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedPartOut<'a> {
    /// The image, for an image part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<InlineDataOut<'a>>,
    /// The text, for a text part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    /// The signature Gemini returned with it.
    pub thought_signature: &'a str,
}

/// `inlineData` of a request part; the bytes are base64-encoded while
/// serializing, without an intermediate string.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineDataOut<'a> {
    /// MIME type of the bytes.
    pub mime_type: &'a str,
    /// Raw bytes, written as standard padded base64.
    pub data: Base64Bytes<'a>,
}

/// Bytes that serialize as standard base64.
pub struct Base64Bytes<'a>(pub &'a [u8]);

impl fmt::Debug for Base64Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl Serialize for Base64Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

/// A tool entry.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// `{}`: plain web search grounding.
    pub google_search: GoogleSearch,
}

/// The empty `googleSearch` object.
#[derive(Debug, Serialize)]
pub struct GoogleSearch {}

/// `generationConfig`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig<'a> {
    /// Always `["TEXT","IMAGE"]`: `["IMAGE"]` alone returns no image when
    /// grounding is on (§1.2), and TEXT costs nothing when unused.
    pub response_modalities: [&'static str; 2],
    /// Aspect ratio and size.
    pub image_config: ImageConfig<'a>,
}

/// `generationConfig.imageConfig`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig<'a> {
    /// e.g. `16:9`.
    pub aspect_ratio: &'a str,
    /// Only for families where it is settable (`sends_image_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<&'static str>,
}

/// Build the wire request for an image request.
pub fn build_request(req: &ImageRequest) -> GenerateContentRequest<'_> {
    let mut parts: Vec<PartOut<'_>> = req
        .references
        .iter()
        .map(|r| {
            PartOut::InlineData(InlineDataOut {
                mime_type: &r.mime_type,
                data: Base64Bytes(r.bytes.as_slice()),
            })
        })
        .collect();
    parts.push(PartOut::Text(&req.prompt));
    let family = req.model.family();
    let mut contents = vec![ContentOut {
        role: "user",
        parts,
    }];
    if let Some(edit) = &req.edit {
        contents = edit_turns(contents, edit);
    }
    GenerateContentRequest {
        contents,
        tools: if req.grounding {
            vec![Tool {
                google_search: GoogleSearch {},
            }]
        } else {
            Vec::new()
        },
        generation_config: GenerationConfig {
            response_modalities: ["TEXT", "IMAGE"],
            image_config: ImageConfig {
                aspect_ratio: req.aspect_ratio.as_str(),
                image_size: family.sends_image_size().then(|| req.image_size.as_str()),
            },
        },
    }
}

/// The turns of an edit. With a conversation: the first user turn (the
/// references and the prompt, as planned), then each model turn with its
/// non-thought parts and their signatures exactly as received, each
/// followed by the user turn with its note; the docs ask for every
/// signature "exactly as received when sending the conversation history"
/// (https://ai.google.dev/gemini-api/docs/thought-signatures) and a model
/// image part without one is refused (§7b). Without one (an image another
/// job made, e.g. `text = "edit"`, or whose history is gone): one unsigned
/// user turn with the image and the instruction, the documented
/// single-turn edit (https://ai.google.dev/gemini-api/docs/image-generation,
/// "Image editing (text-and-image-to-image)"); a signature is never
/// replayed outside the conversation it was issued in.
fn edit_turns<'a>(first: Vec<ContentOut<'a>>, edit: &'a ImageEdit) -> Vec<ContentOut<'a>> {
    let inline = |image: &'a crate::domain::ReferenceImage| InlineDataOut {
        mime_type: &image.mime_type,
        data: Base64Bytes(image.bytes.as_slice()),
    };
    if edit.conversation.is_empty() {
        return vec![ContentOut {
            role: "user",
            parts: vec![
                PartOut::InlineData(inline(&edit.image)),
                PartOut::Text(&edit.instruction),
            ],
        }];
    }
    let mut contents = first;
    for ex in &edit.conversation {
        let parts = ex
            .turn
            .parts
            .iter()
            .map(|p| match p {
                TurnPart::Text {
                    text,
                    signature: Some(sig),
                } => PartOut::Signed(SignedPartOut {
                    inline_data: None,
                    text: Some(text),
                    thought_signature: sig,
                }),
                TurnPart::Text {
                    text,
                    signature: None,
                } => PartOut::Text(text),
                TurnPart::Image {
                    signature: Some(sig),
                } => PartOut::Signed(SignedPartOut {
                    inline_data: Some(inline(&ex.image)),
                    text: None,
                    thought_signature: sig,
                }),
                TurnPart::Image { signature: None } => PartOut::InlineData(inline(&ex.image)),
            })
            .collect();
        contents.push(ContentOut {
            role: "model",
            parts,
        });
        contents.push(ContentOut {
            role: "user",
            parts: vec![PartOut::Text(&ex.note)],
        });
    }
    contents
}

/// One line of a batch input file: `{"key": …, "request": …}`.
#[derive(Debug, Serialize)]
pub struct BatchInputLine<'a, R = GenerateContentRequest<'a>> {
    /// The job key, echoed in the output line.
    pub key: &'a str,
    /// The same request realtime would send (an image or a copy-QA read).
    pub request: R,
}

/// Body of `models/{model}:batchGenerateContent`.
#[derive(Debug, Serialize)]
pub struct CreateBatchBody<'a, R = GenerateContentRequest<'a>> {
    /// The batch to create.
    pub batch: BatchSpec<'a, R>,
}

/// The batch resource as sent on create.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchSpec<'a, R = GenerateContentRequest<'a>> {
    /// Deterministic display name, used to find the batch after a crash.
    pub display_name: &'a str,
    /// File or inline input.
    pub input_config: InputConfig<'a, R>,
}

/// `inputConfig`: exactly one of the two fields is set.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputConfig<'a, R = GenerateContentRequest<'a>> {
    /// `files/…` of the uploaded JSONL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<&'a str>,
    /// Inline requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<InlinedRequests<'a, R>>,
}

/// `inputConfig.requests` (the list is nested once more on the wire).
#[derive(Debug, Serialize)]
pub struct InlinedRequests<'a, R = GenerateContentRequest<'a>> {
    /// The requests.
    pub requests: Vec<InlinedRequest<'a, R>>,
}

/// One inline batch request.
#[derive(Debug, Serialize)]
pub struct InlinedRequest<'a, R = GenerateContentRequest<'a>> {
    /// The request.
    pub request: R,
    /// `{"key": …}`, echoed in the response.
    pub metadata: KeyMetadata<'a>,
}

/// `metadata` of an inline request.
#[derive(Debug, Serialize)]
pub struct KeyMetadata<'a> {
    /// The job key.
    pub key: &'a str,
}

/// Body of the resumable-upload start call (the SDK's spelling).
#[derive(Debug, Serialize)]
pub struct UploadStartBody<'a> {
    /// File metadata.
    pub file: UploadFileMeta<'a>,
}

/// File metadata sent on upload start.
#[derive(Debug, Serialize)]
pub struct UploadFileMeta<'a> {
    /// Human name.
    pub display_name: &'a str,
    /// `jsonl`, as Google's own examples send it.
    pub mime_type: &'a str,
    /// Total size.
    pub size_bytes: u64,
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// `GenerateContentResponse`, borrowed from the body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GenerateContentResponse<'a> {
    /// Usually one candidate; absent on a blocked prompt.
    #[serde(borrow, deserialize_with = "null_as_default")]
    pub candidates: Vec<Candidate<'a>>,
    /// Set when the prompt itself was blocked.
    #[serde(alias = "prompt_feedback")]
    pub prompt_feedback: Option<PromptFeedback>,
    /// Token counts.
    #[serde(alias = "usage_metadata")]
    pub usage_metadata: Option<UsageMetadata>,
    /// The model that answered.
    #[serde(alias = "model_version")]
    pub model_version: Option<String>,
}

/// One candidate.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Candidate<'a> {
    /// `{}`, `{parts: []}`, `{parts: null}` or missing: all tolerated.
    #[serde(borrow)]
    pub content: Option<ResponseContent<'a>>,
    /// `STOP`, `IMAGE_SAFETY`, …
    #[serde(alias = "finish_reason")]
    pub finish_reason: Option<String>,
    /// Human explanation for some non-STOP reasons.
    #[serde(alias = "finish_message")]
    pub finish_message: Option<String>,
}

/// `candidate.content`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResponseContent<'a> {
    /// The parts, possibly empty or null.
    #[serde(borrow, deserialize_with = "null_as_default")]
    pub parts: Vec<ResponsePart<'a>>,
}

/// One response part. Unknown part kinds deserialize to all-`None`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResponsePart<'a> {
    /// Text (answer or thought).
    #[serde(borrow, deserialize_with = "opt_cow")]
    pub text: Option<Cow<'a, str>>,
    /// Image bytes.
    #[serde(borrow, alias = "inline_data")]
    pub inline_data: Option<Blob<'a>>,
    /// True for thinking output (interim images included).
    #[serde(deserialize_with = "lenient_bool")]
    pub thought: bool,
    /// Opaque signature of the model's reasoning for this part; sent back
    /// unchanged when the conversation continues (an edit).
    #[serde(borrow, deserialize_with = "opt_cow")]
    pub thought_signature: Option<Cow<'a, str>>,
}

/// `inlineData` of a response part.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Blob<'a> {
    /// Declared MIME type.
    #[serde(alias = "mime_type")]
    pub mime_type: Option<String>,
    /// Base64 data, borrowed when it has no escapes (the usual case).
    #[serde(borrow, deserialize_with = "opt_cow")]
    pub data: Option<Cow<'a, str>>,
}

/// `promptFeedback`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PromptFeedback {
    /// `SAFETY`, `PROHIBITED_CONTENT`, `OTHER`, …
    #[serde(alias = "block_reason")]
    pub block_reason: Option<String>,
    /// Optional explanation.
    #[serde(alias = "block_reason_message")]
    pub block_reason_message: Option<String>,
}

/// `usageMetadata`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UsageMetadata {
    /// Input tokens.
    #[serde(alias = "prompt_token_count", deserialize_with = "lenient_u64")]
    pub prompt_token_count: u64,
    /// Output tokens (image + text).
    #[serde(alias = "candidates_token_count", deserialize_with = "lenient_u64")]
    pub candidates_token_count: u64,
    /// Thinking tokens.
    #[serde(alias = "thoughts_token_count", deserialize_with = "lenient_u64")]
    pub thoughts_token_count: u64,
    /// Output tokens per modality (may list only IMAGE).
    #[serde(
        alias = "candidates_tokens_details",
        deserialize_with = "null_as_default"
    )]
    pub candidates_tokens_details: Vec<ModalityTokenCount>,
}

/// One `{modality, tokenCount}` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ModalityTokenCount {
    /// `TEXT`, `IMAGE`, …
    pub modality: Option<String>,
    /// Tokens of that modality.
    #[serde(alias = "token_count", deserialize_with = "lenient_u64")]
    pub token_count: u64,
}

/// `google.rpc.Status`: the error envelope's `error` and per-item batch errors.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RpcStatus {
    /// HTTP status (envelope) or numeric gRPC code (batch items).
    #[serde(deserialize_with = "lenient_opt_i64")]
    pub code: Option<i64>,
    /// Human message.
    pub message: Option<String>,
    /// Canonical code name (`RESOURCE_EXHAUSTED`).
    pub status: Option<String>,
    /// Typed details (`RetryInfo`, `QuotaFailure`, `ErrorInfo`, …).
    #[serde(deserialize_with = "null_as_default")]
    pub details: Vec<serde_json::Value>,
}

/// `{"error": Status}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ErrorEnvelope {
    /// The status.
    pub error: Option<RpcStatus>,
}

/// A long-running batch Operation, or a bare batch resource: both shapes
/// are read through the same accessors.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Operation {
    /// `batches/…`.
    pub name: Option<String>,
    /// The batch resource.
    pub metadata: Option<BatchResource>,
    /// Present once terminal.
    #[serde(deserialize_with = "lenient_bool")]
    pub done: bool,
    /// Operation-level error of a failed job.
    pub error: Option<RpcStatus>,
    /// Output duplicate of `metadata.output`.
    pub response: Option<BatchOutput>,
    /// Top-level state (bare resource / SDK-style shape).
    pub state: Option<String>,
    /// Top-level display name (bare resource shape).
    #[serde(alias = "display_name")]
    pub display_name: Option<String>,
    /// Top-level output (bare resource shape).
    pub output: Option<BatchOutput>,
    /// SDK `BatchJob.dest` shape.
    pub dest: Option<BatchOutput>,
}

/// `metadata` of a batch Operation (the `GenerateContentBatch`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BatchResource {
    /// `batches/…`.
    pub name: Option<String>,
    /// The display name given at creation.
    #[serde(alias = "display_name")]
    pub display_name: Option<String>,
    /// `BATCH_STATE_*` or `JOB_STATE_*`.
    pub state: Option<String>,
    /// Where the results are.
    pub output: Option<BatchOutput>,
    /// Some shapes put the error here.
    pub error: Option<RpcStatus>,
}

/// `output` of a batch: a results file or inline responses. The inline
/// list is only checked for presence here; results are parsed separately.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BatchOutput {
    /// `files/batch-…`.
    #[serde(alias = "responses_file", alias = "fileName", alias = "file_name")]
    pub responses_file: Option<String>,
    /// `{inlinedResponses: [...]}`.
    #[serde(alias = "inlined_responses")]
    pub inlined_responses: Option<IgnoredAny>,
}

impl Operation {
    /// The batch name, from the Operation or its metadata.
    pub fn batch_name(&self) -> Option<&str> {
        self.name
            .as_deref()
            .or_else(|| self.metadata.as_ref().and_then(|m| m.name.as_deref()))
            .filter(|s| !s.is_empty())
    }

    /// The display name, from metadata or the top level.
    pub fn display_name(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|m| m.display_name.as_deref())
            .or(self.display_name.as_deref())
    }

    /// The state string, from metadata or the top level.
    pub fn state(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|m| m.state.as_deref())
            .or(self.state.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// Every place an output may be, in order of preference (the SDK reads
    /// only `metadata.output`; the real service fills `response` as well).
    fn outputs(&self) -> impl Iterator<Item = &BatchOutput> {
        [
            self.metadata.as_ref().and_then(|m| m.output.as_ref()),
            self.response.as_ref(),
            self.output.as_ref(),
            self.dest.as_ref(),
        ]
        .into_iter()
        .flatten()
    }

    /// The results file name, if any.
    pub fn responses_file(&self) -> Option<&str> {
        self.outputs()
            .find_map(|o| o.responses_file.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// True when inline responses are present.
    pub fn has_inline_output(&self) -> bool {
        self.outputs().any(|o| o.inlined_responses.is_some())
    }

    /// The job error, from the Operation or its metadata.
    pub fn job_error(&self) -> Option<&RpcStatus> {
        self.error
            .as_ref()
            .or_else(|| self.metadata.as_ref().and_then(|m| m.error.as_ref()))
    }
}

/// `batches.list` response.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListBatchesResponse {
    /// The SDK reads `operations`; `batches` is tolerated too.
    #[serde(alias = "batches", deserialize_with = "null_as_default")]
    pub operations: Vec<Operation>,
    /// Next page, absent or empty on the last.
    #[serde(alias = "next_page_token")]
    pub next_page_token: Option<String>,
}

/// A File resource (only the fields adloc needs).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FileResource {
    /// `files/…`.
    pub name: Option<String>,
    /// `ACTIVE`, `PROCESSING`, `FAILED`.
    pub state: Option<String>,
}

/// Finalize response `{"file": File}`; some servers answer the bare File.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UploadFinalizeResponse {
    /// The wrapped file.
    pub file: Option<FileResource>,
    /// The bare-File shape's name.
    pub name: Option<String>,
}

impl UploadFinalizeResponse {
    /// The uploaded file's name.
    pub fn file_name(&self) -> Option<&str> {
        self.file
            .as_ref()
            .and_then(|f| f.name.as_deref())
            .or(self.name.as_deref())
            .filter(|s| !s.is_empty())
    }
}

/// The inline-output list: `…output.inlinedResponses.inlinedResponses`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InlineOutputOperation<'a> {
    /// Metadata with the output.
    #[serde(borrow)]
    pub metadata: Option<InlineOutputHolder<'a>>,
    /// Fallback: the Operation's `response`.
    #[serde(borrow)]
    pub response: Option<InlineOutput<'a>>,
    /// Fallback: bare-resource `output`.
    #[serde(borrow)]
    pub output: Option<InlineOutput<'a>>,
}

/// `metadata` holding `output`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InlineOutputHolder<'a> {
    /// The output.
    #[serde(borrow)]
    pub output: Option<InlineOutput<'a>>,
}

/// `output` / `response` with inline responses.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InlineOutput<'a> {
    /// The once-nested list.
    #[serde(borrow, alias = "inlined_responses")]
    pub inlined_responses: Option<InlineList<'a>>,
}

/// The inner `inlinedResponses` object.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InlineList<'a> {
    /// The responses, in request order.
    #[serde(
        borrow,
        alias = "inlined_responses",
        deserialize_with = "null_as_default"
    )]
    pub inlined_responses: Vec<InlineResponseItem<'a>>,
}

/// One inline response: `{response | error, metadata: {key}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InlineResponseItem<'a> {
    /// The response, when the item ran.
    #[serde(borrow)]
    pub response: Option<GenerateContentResponse<'a>>,
    /// The per-item error.
    pub error: Option<RpcStatus>,
    /// Echoed request metadata.
    #[serde(borrow)]
    pub metadata: Option<LineMetadata<'a>>,
}

impl<'a> InlineOutputOperation<'a> {
    /// The inline responses, wherever they are.
    pub fn into_items(self) -> Option<Vec<InlineResponseItem<'a>>> {
        let from_meta = self.metadata.and_then(|m| m.output);
        [from_meta, self.response, self.output]
            .into_iter()
            .flatten()
            .find_map(|o| o.inlined_responses)
            .map(|l| l.inlined_responses)
    }
}

/// One results-file line: `{"key", "response" | "error"}` in any order.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResultLine<'a> {
    /// The job key.
    #[serde(borrow, deserialize_with = "opt_cow")]
    pub key: Option<Cow<'a, str>>,
    /// The response, when the item ran.
    #[serde(borrow)]
    pub response: Option<GenerateContentResponse<'a>>,
    /// The per-item error.
    pub error: Option<RpcStatus>,
    /// Inline-style metadata (`{"key": …}`), tolerated as a key source.
    #[serde(borrow)]
    pub metadata: Option<LineMetadata<'a>>,
}

/// `metadata` carrying a key.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LineMetadata<'a> {
    /// The job key.
    #[serde(borrow, deserialize_with = "opt_cow")]
    pub key: Option<Cow<'a, str>>,
}

// ---------------------------------------------------------------------------
// Lenient field deserializers
// ---------------------------------------------------------------------------

/// `null` (or absent, with `#[serde(default)]`) becomes `T::default()`.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An optional string that borrows from the input when it has no escapes.
/// (serde's derive only borrows a bare `Cow<str>`, not one inside `Option`.)
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
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_str(V)
        }
    }
    d.deserialize_option(V)
}

/// A boolean, tolerating `null` and the strings `"true"`/`"false"`.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            Ok(v.eq_ignore_ascii_case("true"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_none<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    d.deserialize_any(V)
}

/// An integer that may be a JSON number or a string (proto3 int64).
fn lenient_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or a string holding one")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(i64::try_from(v).ok())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // Truncation is intended: counts are integral on the wire.
            Ok(v.is_finite().then_some(v as i64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// A non-negative count, number or string; anything unusable becomes 0.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(lenient_opt_i64(d)?
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::{ImageSize, ModelId};
    use crate::domain::{ProofText, ReferenceImage};

    fn req(model: &str, grounding: bool, refs: Vec<ReferenceImage>) -> ImageRequest {
        ImageRequest {
            model: model.parse::<ModelId>().expect("known model"),
            prompt: "Poster \"Sale\"".to_string(),
            aspect_ratio: "16:9".parse().unwrap(),
            image_size: ImageSize::K2,
            quality: None,
            references: refs,
            grounding,
            proof: ProofText::default(),
            edit: None,
            read_copy_side: None,
        }
    }

    #[test]
    fn request_with_reference_and_grounding_is_exact() {
        let r = req(
            "gemini-3-pro-image",
            true,
            vec![ReferenceImage {
                mime_type: "image/png".into(),
                bytes: Arc::new(b"abc".to_vec()),
            }],
        );
        let json = serde_json::to_string(&build_request(&r)).unwrap();
        assert_eq!(
            json,
            r#"{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png","data":"YWJj"}},{"text":"Poster \"Sale\""}]}],"tools":[{"googleSearch":{}}],"generationConfig":{"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":"16:9","imageSize":"2K"}}}"#
        );
        // Deterministic: same request, same bytes.
        assert_eq!(json, serde_json::to_string(&build_request(&r)).unwrap());
    }

    #[test]
    fn an_edit_sends_the_whole_conversation_signed_or_one_unsigned_turn_without_one() {
        use crate::domain::{Exchange, ModelTurn, TurnPart};
        let image = |b: &[u8]| ReferenceImage {
            mime_type: "image/jpeg".into(),
            bytes: Arc::new(b.to_vec()),
        };
        let mut r = req("gemini-3.1-flash-image", false, vec![]);
        r.edit = Some(crate::domain::ImageEdit {
            image: image(b"def"),
            instruction: "Warmer light".into(),
            conversation: vec![
                Exchange {
                    turn: ModelTurn {
                        parts: vec![
                            TurnPart::Text {
                                text: "Here it is.".into(),
                                signature: Some("dDE=".into()),
                            },
                            TurnPart::Image {
                                signature: Some("aTE=".into()),
                            },
                            TurnPart::Text {
                                text: "Anything else?".into(),
                                signature: None,
                            },
                        ],
                    },
                    image: image(b"abc"),
                    note: "Bigger logo".into(),
                },
                Exchange {
                    turn: ModelTurn::image_only(Some("aTI=".into())),
                    image: image(b"def"),
                    note: "Warmer light".into(),
                },
            ],
        });
        let json = serde_json::to_string(&build_request(&r).contents).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"[{"role":"user","parts":[{"text":"Poster \"Sale\""}]},"#,
                r#"{"role":"model","parts":[{"text":"Here it is.","thoughtSignature":"dDE="},"#,
                r#"{"inlineData":{"mimeType":"image/jpeg","data":"YWJj"},"thoughtSignature":"aTE="},"#,
                r#"{"text":"Anything else?"}]},"#,
                r#"{"role":"user","parts":[{"text":"Bigger logo"}]},"#,
                r#"{"role":"model","parts":[{"inlineData":{"mimeType":"image/jpeg","data":"ZGVm"},"thoughtSignature":"aTI="}]},"#,
                r#"{"role":"user","parts":[{"text":"Warmer light"}]}]"#
            )
        );
        // No conversation (another job's image): one unsigned user turn.
        if let Some(e) = r.edit.as_mut() {
            e.conversation.clear();
        }
        let json = serde_json::to_string(&build_request(&r).contents).unwrap();
        assert_eq!(
            json,
            r#"[{"role":"user","parts":[{"inlineData":{"mimeType":"image/jpeg","data":"ZGVm"}},{"text":"Warmer light"}]}]"#
        );
    }

    #[test]
    fn image_size_is_omitted_on_2_5_and_no_tools_without_grounding() {
        let r = req("gemini-2.5-flash-image", false, vec![]);
        let json = serde_json::to_string(&build_request(&r)).unwrap();
        assert_eq!(
            json,
            r#"{"contents":[{"role":"user","parts":[{"text":"Poster \"Sale\""}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":"16:9"}}}"#
        );
    }

    #[test]
    fn batch_line_and_create_bodies() {
        let r = req("gemini-2.5-flash-image", false, vec![]);
        let line = BatchInputLine {
            key: "k1",
            request: build_request(&r),
        };
        let json = serde_json::to_string(&line).unwrap();
        assert!(
            json.starts_with(r#"{"key":"k1","request":{"contents":"#),
            "{json}"
        );
        let body: CreateBatchBody<'_> = CreateBatchBody {
            batch: BatchSpec {
                display_name: "adloc-x",
                input_config: InputConfig {
                    file_name: Some("files/abc"),
                    requests: None,
                },
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"batch":{"displayName":"adloc-x","inputConfig":{"fileName":"files/abc"}}}"#
        );
    }

    #[test]
    fn response_tolerates_null_and_string_numbers() {
        let body = br#"{"candidates":[{"content":{"parts":null},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":"12","candidatesTokensDetails":null},"extra":1}"#;
        let r: GenerateContentResponse<'_> = serde_json::from_slice(body).unwrap();
        assert_eq!(r.candidates.len(), 1);
        assert!(r.candidates[0].content.as_ref().unwrap().parts.is_empty());
        assert_eq!(r.usage_metadata.unwrap().prompt_token_count, 12);
    }

    #[test]
    fn base64_data_is_borrowed() {
        let body = br#"{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":"QUJD"}}]}}]}"#;
        let r: GenerateContentResponse<'_> = serde_json::from_slice(body).unwrap();
        let data = r.candidates[0].content.as_ref().unwrap().parts[0]
            .inline_data
            .as_ref()
            .unwrap()
            .data
            .as_ref()
            .unwrap();
        assert!(matches!(data, Cow::Borrowed(_)));
    }

    #[test]
    fn operation_accessors_cover_every_shape() {
        let op: Operation = serde_json::from_str(
            r#"{"name":"batches/a","metadata":{"displayName":"d","state":"BATCH_STATE_SUCCEEDED",
                "output":{"responsesFile":"files/batch-a"}},"done":true}"#,
        )
        .unwrap();
        assert_eq!(op.batch_name(), Some("batches/a"));
        assert_eq!(op.display_name(), Some("d"));
        assert_eq!(op.state(), Some("BATCH_STATE_SUCCEEDED"));
        assert_eq!(op.responses_file(), Some("files/batch-a"));
        let bare: Operation = serde_json::from_str(
            r#"{"name":"batches/b","displayName":"e","state":"JOB_STATE_SUCCEEDED",
                "response":{"inlinedResponses":{"inlinedResponses":[]}}}"#,
        )
        .unwrap();
        assert_eq!(bare.display_name(), Some("e"));
        assert_eq!(bare.state(), Some("JOB_STATE_SUCCEEDED"));
        assert!(bare.has_inline_output());
        assert!(bare.responses_file().is_none());
    }
}
