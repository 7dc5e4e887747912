//! What a job asks a provider for, and what it keeps of the answer.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::model::{AspectRatio, ImageSize, ModelId, Quality};

/// A reference image sent with the prompt (product shot, logo, style).
#[derive(Clone, PartialEq, Eq)]
pub struct ReferenceImage {
    /// `image/png`, `image/jpeg`, `image/webp`, …
    pub mime_type: String,
    /// The exact bytes sent (after any downscale); shared because the same
    /// product shot is used by many jobs.
    pub bytes: Arc<Vec<u8>>,
}

impl fmt::Debug for ReferenceImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReferenceImage")
            .field("mime_type", &self.mime_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// What the local renderer draws on a proof image. Not sent on the wire and
/// not part of the request hash: it is derived from the same copy that the
/// prompt already contains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofText {
    /// BCP-47 tag of the locale the copy is in (empty for art).
    pub locale: String,
    /// Variant name (hero, square, story, …).
    pub variant: String,
    /// The localized copy lines, in logical order.
    pub lines: Vec<String>,
    /// True for right-to-left scripts.
    pub rtl: bool,
}

/// One image request, provider-neutral. Everything in it except `proof`
/// reaches the provider and is covered by the request hash.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    /// Model id as sent on the wire.
    pub model: ModelId,
    /// Full prompt text.
    pub prompt: String,
    /// `imageConfig.aspectRatio`, e.g. `16:9`.
    pub aspect_ratio: AspectRatio,
    /// `imageConfig.imageSize`.
    pub image_size: ImageSize,
    /// GPT Image `quality`; `None` for models without one (Gemini).
    pub quality: Option<Quality>,
    /// Reference images, sent before the prompt.
    pub references: Vec<ReferenceImage>,
    /// Add Google Search grounding (`tools: [{googleSearch: {}}]`).
    pub grounding: bool,
    /// What a proof renderer shows; ignored by network providers.
    pub proof: ProofText,
    /// Set when the call revises an image made earlier instead of making
    /// one from the prompt alone (a reviewer rejected it with a note).
    pub edit: Option<ImageEdit>,
    /// When copy QA will read the answer: the longer side of the copy a
    /// reader is sent, made by the provider from the pixels it decodes to
    /// check the answer (one decode per image, not one more per read).
    /// Not part of the request hash: nothing of it reaches the vendor.
    pub read_copy_side: Option<u32>,
}

/// An edit of an image the model made earlier: the image, the instruction
/// and, for Gemini, the conversation that made the image.
///
/// Gemini sends the whole conversation: the original user turn, then each
/// model turn with its non-thought parts and their signatures "exactly as
/// received", each followed by the note that answered it
/// (https://ai.google.dev/gemini-api/docs/thought-signatures;
/// https://ai.google.dev/gemini-api/docs/image-generation, "Thought
/// Signatures"). Without a conversation (an image another job or another
/// vendor made, or one whose history is gone) it sends the image and the
/// instruction as one user turn, the documented single-turn edit. GPT
/// Image edits through `/v1/images/edits` with `image` and `instruction`.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageEdit {
    /// The image being revised, exactly as stored.
    pub image: ReferenceImage,
    /// What to change (the reviewer's note, or the copy to replace).
    pub instruction: String,
    /// The conversation that made `image`, oldest exchange first; the last
    /// exchange's image is `image` and its note is `instruction`. Empty:
    /// a single-turn edit.
    pub conversation: Vec<Exchange>,
}

impl fmt::Debug for ImageEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageEdit")
            .field("image", &self.image)
            .field("instruction", &self.instruction)
            .field("exchanges", &self.conversation.len())
            .finish()
    }
}

/// One exchange of an edit conversation: what the model answered (its
/// turn and the image it made) and the note the user answered it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The model's turn, as received (thoughts left out).
    pub turn: ModelTurn,
    /// The bytes of the turn's image part, as stored.
    pub image: ReferenceImage,
    /// The user's next turn: the note that asked for the next revision.
    pub note: String,
}

/// The non-thought parts of a Gemini model turn that made an image, in
/// order, each with the `thoughtSignature` it came with: an edit sends the
/// turn back as it was received. The image part carries no bytes here:
/// they are the image kept for that revision (asset or `<row-id>.rN.<ext>`),
/// so the database never holds image bytes twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelTurn {
    /// The parts, in the order the model gave them.
    pub parts: Vec<TurnPart>,
}

/// One non-thought part of a [`ModelTurn`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TurnPart {
    /// A text part (the docs: the first text part after the thoughts is
    /// signed when it comes before the image).
    Text {
        /// The text as received.
        text: String,
        /// Its signature, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// The image kept from this turn (every image part is signed by the
    /// Gemini 3 image models).
    Image {
        /// Its signature, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
}

impl ModelTurn {
    /// A turn known only by its image's signature (state written before
    /// whole turns were kept).
    pub fn image_only(signature: Option<String>) -> ModelTurn {
        ModelTurn {
            parts: vec![TurnPart::Image { signature }],
        }
    }

    /// The signature of the turn's image part.
    pub fn image_signature(&self) -> Option<&str> {
        self.parts.iter().find_map(|p| match p {
            TurnPart::Image { signature } => signature.as_deref(),
            TurnPart::Text { .. } => None,
        })
    }
}

/// Token counts reported by the provider for one generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens (text and images).
    pub prompt_tokens: u64,
    /// Of the input, image tokens a vendor bills at their own rate (GPT
    /// Image edits); 0 where all input is one rate.
    #[serde(default)]
    pub input_image_tokens: u64,
    /// Output image tokens.
    pub image_tokens: u64,
    /// Output text tokens (candidates minus image tokens).
    pub text_tokens: u64,
    /// Thinking tokens, billed at the text rate.
    pub thought_tokens: u64,
}

/// A copy-QA read: one image for a reader model to transcribe.
#[derive(Clone)]
pub struct ReadRequest {
    /// The reader.
    pub reader: crate::domain::ReaderModel,
    /// The image as sent (already downscaled).
    pub image: Vec<u8>,
    /// Its MIME type.
    pub mime_type: String,
}

impl std::fmt::Debug for ReadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadRequest")
            .field("reader", &self.reader)
            .field("image", &format_args!("<{} bytes>", self.image.len()))
            .field("mime_type", &self.mime_type)
            .finish()
    }
}

/// What a reader transcribed, verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// Each piece of visible text, in reading order.
    pub texts: Vec<String>,
    /// Token usage, when reported.
    pub usage: Option<Usage>,
}

/// A file written into the asset tree, recorded with its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetRecord {
    /// Path relative to the campaign's output folder.
    pub path: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// File size.
    pub bytes: u64,
    /// Decoded width.
    pub width: u32,
    /// Decoded height.
    pub height: u32,
    /// MIME type of the file.
    pub mime_type: String,
}

/// Retry behaviour, configurable per campaign under `[retry]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySettings {
    /// Attempts per job before it fails (first attempt included).
    pub max_attempts: u32,
    /// Smallest backoff.
    pub base_delay_ms: u64,
    /// Largest backoff.
    pub max_delay_ms: u64,
    /// Retries allowed as a fraction of first attempts, once past `budget_floor`.
    pub budget_ratio: f64,
    /// Retries always allowed before the ratio applies.
    pub budget_floor: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 5,
            base_delay_ms: 500,
            max_delay_ms: 60_000,
            budget_ratio: 0.2,
            budget_floor: 10,
        }
    }
}
