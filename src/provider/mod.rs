//! The provider layer: one trait for every image vendor, with realtime calls
//! and (optionally) asynchronous batches as two capabilities of one provider,
//! so the runner never asks which vendor it talks to.
//!
//! Every failure a provider reports is a [`ProviderError`] whose
//! [`ErrorClass`] was decided once, by the provider's classifier; the retry
//! layer and the manifest read that class and the stable [`Reason`] code.

pub mod gemini;
pub mod local;
pub mod retry;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

use crate::model::{ImageSize, ModelId};

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
    /// BCP-47 tag of the locale the copy is in.
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
    pub aspect_ratio: String,
    /// `imageConfig.imageSize`.
    pub image_size: ImageSize,
    /// Reference images, sent as `inlineData` parts before the prompt.
    pub references: Vec<ReferenceImage>,
    /// Add Google Search grounding (`tools: [{googleSearch: {}}]`).
    pub grounding: bool,
    /// What a proof renderer shows; ignored by network providers.
    pub proof: ProofText,
}

/// Token counts reported by the provider for one generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens (text and images).
    pub prompt_tokens: u64,
    /// Output image tokens.
    pub image_tokens: u64,
    /// Output text tokens (candidates minus image tokens).
    pub text_tokens: u64,
    /// Thinking tokens, billed at the text rate.
    pub thought_tokens: u64,
}

/// A successful generation: the raw image bytes exactly as returned.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The image bytes (already base64-decoded).
    pub bytes: Vec<u8>,
    /// The MIME type the provider declared.
    pub mime_type: String,
    /// Token usage, when the provider reports it.
    pub usage: Option<Usage>,
    /// The model version string the provider reported.
    pub model_version: Option<String>,
    /// Set when the provider already decoded these exact bytes in full and
    /// checked them against `mime_type`: their real (width, height). The
    /// asset stage then checks only the header instead of decoding twice,
    /// which at realtime rates is most of the CPU a job costs.
    pub verified_dims: Option<(u32, u32)>,
}

/// Stable reason codes, shared by attempts, jobs and the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// 429 RESOURCE_EXHAUSTED (per-minute style; retryable).
    RateLimited,
    /// 429 whose quota is per day: retrying today is pointless.
    DailyQuotaExhausted,
    /// 500/502/503/504 and friends.
    ServerError,
    /// 408 or a client-side timeout.
    Timeout,
    /// Connection refused/reset, truncated body.
    Connection,
    /// A body that is not the JSON the protocol promises.
    BadResponse,
    /// 400 INVALID_ARGUMENT (Google's message kept in the detail).
    InvalidArgument,
    /// `promptFeedback.blockReason` with no candidates.
    BlockedPrompt,
    /// A candidate finished with a safety-style reason (IMAGE_SAFETY, …).
    BlockedImage,
    /// The model answered with text only.
    NoImage,
    /// Image bytes that do not decode or do not match their MIME type.
    UndecodableImage,
    /// 401 / 403: missing or bad key, or no permission.
    Unauthenticated,
    /// 402: prepaid credit exhausted.
    CreditExhausted,
    /// 404: unknown model.
    ModelNotFound,
    /// Copy that does not fit its box at the minimum font size.
    TextOverflow,
    /// A remote batch ended FAILED/EXPIRED/CANCELLED before the item ran.
    BatchFailed,
    /// The per-job attempt limit was reached on retryable errors.
    AttemptsExhausted,
    /// Anything else the provider could not classify.
    Other,
}

impl Reason {
    /// The stable snake_case code written to the database and manifest.
    pub fn code(self) -> &'static str {
        match self {
            Reason::RateLimited => "rate_limited",
            Reason::DailyQuotaExhausted => "daily_quota_exhausted",
            Reason::ServerError => "server_error",
            Reason::Timeout => "timeout",
            Reason::Connection => "connection",
            Reason::BadResponse => "bad_response",
            Reason::InvalidArgument => "invalid_argument",
            Reason::BlockedPrompt => "blocked_prompt",
            Reason::BlockedImage => "blocked_image",
            Reason::NoImage => "no_image",
            Reason::UndecodableImage => "undecodable_image",
            Reason::Unauthenticated => "unauthenticated",
            Reason::CreditExhausted => "credit_exhausted",
            Reason::ModelNotFound => "model_not_found",
            Reason::TextOverflow => "text_overflow",
            Reason::BatchFailed => "batch_failed",
            Reason::AttemptsExhausted => "attempts_exhausted",
            Reason::Other => "other",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What the retry layer should do with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later; `retry_after` is the server's own delay if it gave one.
    Retryable {
        /// `RetryInfo.retryDelay`, "Please retry in Xs", or `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// This job will never succeed as requested: record it and move on.
    JobTerminal,
    /// Nothing in this run will succeed (bad key, unknown model, daily
    /// quota): stop dispatching, leave jobs pending.
    RunTerminal,
}

/// A classified provider failure. The message never contains the API key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct ProviderError {
    /// What to do about it.
    pub class: ErrorClass,
    /// Stable code.
    pub reason: Reason,
    /// Human detail (Google's message, the block reason, …).
    pub detail: String,
    /// HTTP status, when there was one.
    pub http_status: Option<u16>,
    /// For blocks: the provider's own reason (`IMAGE_SAFETY`, `PROHIBITED_CONTENT`, …).
    pub block_reason: Option<String>,
}

impl ProviderError {
    /// A retryable error.
    pub fn retryable(
        reason: Reason,
        detail: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        ProviderError {
            class: ErrorClass::Retryable { retry_after },
            reason,
            detail: detail.into(),
            http_status: None,
            block_reason: None,
        }
    }

    /// A job-terminal error.
    pub fn job_terminal(reason: Reason, detail: impl Into<String>) -> Self {
        ProviderError {
            class: ErrorClass::JobTerminal,
            reason,
            detail: detail.into(),
            http_status: None,
            block_reason: None,
        }
    }

    /// A run-terminal error.
    pub fn run_terminal(reason: Reason, detail: impl Into<String>) -> Self {
        ProviderError {
            class: ErrorClass::RunTerminal,
            reason,
            detail: detail.into(),
            http_status: None,
            block_reason: None,
        }
    }

    /// Attach the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Attach the provider's block reason.
    pub fn with_block_reason(mut self, reason: impl Into<String>) -> Self {
        self.block_reason = Some(reason.into());
        self
    }

    /// True for retryable failures.
    pub fn is_retryable(&self) -> bool {
        matches!(self.class, ErrorClass::Retryable { .. })
    }

    /// The server-requested delay, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.class {
            ErrorClass::Retryable { retry_after } => retry_after,
            _ => None,
        }
    }
}

/// One request inside a batch, keyed by the job key the results come back with.
#[derive(Debug, Clone)]
pub struct BatchItem {
    /// Opaque, unique within the batch; results are matched by it.
    pub key: String,
    /// The request.
    pub request: ImageRequest,
}

/// A chunk of jobs to submit as one remote batch.
#[derive(Debug, Clone)]
pub struct BatchChunk {
    /// Deterministic display name (campaign + content hash of the chunk).
    pub display_name: String,
    /// The model every item uses (a batch targets one model).
    pub model: ModelId,
    /// The items.
    pub items: Vec<BatchItem>,
}

/// A batch as known remotely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteBatch {
    /// `batches/...`.
    pub name: String,
    /// The display name it was created with.
    pub display_name: String,
}

/// Where a remote batch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchState {
    /// Pending or running.
    Running,
    /// Succeeded and its output is available.
    Succeeded,
    /// Succeeded on paper but the output is not there yet: keep polling.
    SucceededNoOutput,
    /// FAILED, with the error message if any.
    Failed(String),
    /// EXPIRED (ran past 48 h).
    Expired,
    /// CANCELLED.
    Cancelled,
}

/// One line of a batch's results, matched to its job by `key`.
#[derive(Debug)]
pub struct BatchOutcome {
    /// The key the item was submitted with.
    pub key: String,
    /// The image, or the classified per-item error.
    pub result: Result<Generated, ProviderError>,
}

/// A stream of batch outcomes, produced without holding the results file in memory.
pub type OutcomeStream<'a> =
    Pin<Box<dyn Stream<Item = Result<BatchOutcome, ProviderError>> + Send + 'a>>;

/// The asynchronous batch capability of a provider.
#[async_trait]
pub trait BatchApi: Send + Sync {
    /// Upload and create a remote batch for the chunk. Not idempotent: the
    /// caller records the chunk locally before calling this.
    async fn submit(&self, chunk: &BatchChunk) -> Result<RemoteBatch, ProviderError>;
    /// Look a batch up by its display name (resume after a crash).
    async fn find(&self, display_name: &str) -> Result<Option<RemoteBatch>, ProviderError>;
    /// Current state of a batch.
    async fn poll(&self, batch: &RemoteBatch) -> Result<BatchState, ProviderError>;
    /// Stream the results of a finished batch.
    async fn results<'a>(
        &'a self,
        batch: &'a RemoteBatch,
    ) -> Result<OutcomeStream<'a>, ProviderError>;
    /// Cancel a running batch.
    async fn cancel(&self, batch: &RemoteBatch) -> Result<(), ProviderError>;
}

/// An image provider.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Stable name written to the manifest (`local`, `gemini`).
    fn name(&self) -> &'static str;
    /// Generate one image now.
    async fn generate(&self, req: &ImageRequest) -> Result<Generated, ProviderError>;
    /// The batch capability, if the provider has one.
    fn batch(&self) -> Option<&dyn BatchApi>;
}
