//! The provider layer: one trait for every image vendor, with realtime calls
//! and (optionally) asynchronous batches as two capabilities of one provider,
//! so the runner never asks which vendor it talks to.
//!
//! Every failure a provider reports is a [`ProviderError`] whose
//! [`ErrorClass`] was decided once, by the provider's classifier; the retry
//! layer and the manifest read that class and the stable [`Reason`] code.

pub mod gemini;
pub mod local;
pub(crate) mod openai;
pub mod pacing;
pub mod retry;
pub(crate) mod transport;

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

pub use crate::domain::{ImageRequest, ReadRequest, Reason, Transcript, Usage};
use crate::domain::{ModelId, ProviderKind};

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
    /// A small JPEG of the image ([`crate::imaging::preview_jpeg`]) made
    /// from the pixels decoded to check it, when they were: the review
    /// page's thumbnail, without decoding the master again.
    pub preview_jpeg: Option<Vec<u8>>,
    /// The copy a copy-QA reader is sent ([`crate::imaging::reader_copy`]),
    /// made from the same decoded pixels when the request asked for it
    /// ([`ImageRequest::read_copy_side`]) and the image is larger than that.
    pub read_copy: Option<crate::imaging::Downscaled>,
    /// Gemini: the model turn that made the image (its non-thought parts
    /// with their `thoughtSignature`s, exactly as returned): an edit of
    /// this image continues the conversation and must send the turn back,
    /// or the service refuses the request (400). `None` for vendors
    /// without conversations.
    pub model_turn: Option<crate::domain::ModelTurn>,
    /// The request limits the answer's headers stated (OpenAI's
    /// `x-ratelimit-*-requests`), for the vendor's pacer.
    pub limits: Option<pacing::RequestLimits>,
}

/// A reader's copy of decoded pixels when one was asked for and the image
/// is larger than it (else the reader is sent the stored bytes). Best
/// effort: without it the read decodes the stored file.
pub(crate) fn read_copy_of(
    img: &image::DynamicImage,
    format: image::ImageFormat,
    read_side: Option<u32>,
) -> Option<crate::imaging::Downscaled> {
    let side = read_side?;
    if img.width().max(img.height()) <= side {
        return None;
    }
    crate::imaging::reader_copy(img, format, side).ok()
}

/// `decode` (parsing an answer and decoding its image, with the reader's
/// copy: tens of ms of CPU per image) on the blocking pool. On the async
/// workers it held up every other call in flight: their answers were read
/// late and the pools' slots held longer (copy QA bench, 2026-12-07).
pub(crate) async fn off_the_runtime<T: Send + 'static>(
    decode: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(decode).await.map_err(|e| {
        ProviderError::retryable(
            Reason::Other,
            format!("response decoder task failed: {e}"),
            None,
        )
    })?
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
    /// The request limits the answer's headers stated (OpenAI's
    /// `x-ratelimit-*-requests`), for the vendor's pacer.
    pub limits: Option<pacing::RequestLimits>,
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
            limits: None,
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
            limits: None,
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
            limits: None,
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

/// Where a remote batch stands, as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteState {
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
    async fn poll(&self, batch: &RemoteBatch) -> Result<RemoteState, ProviderError>;
    /// Stream the results of a finished batch.
    async fn results<'a>(
        &'a self,
        batch: &'a RemoteBatch,
    ) -> Result<OutcomeStream<'a>, ProviderError>;
    /// Cancel a running batch.
    async fn cancel(&self, batch: &RemoteBatch) -> Result<(), ProviderError>;
}

/// One read in a read batch.
#[derive(Debug, Clone)]
pub struct ReadItem {
    /// Opaque, unique within the batch; results are matched by it.
    pub key: String,
    /// The read.
    pub request: ReadRequest,
}

/// Reads to submit as one remote batch (a batch targets one reader).
#[derive(Debug, Clone)]
pub struct ReadChunk {
    /// Deterministic display name (campaign + content hash of the chunk).
    pub display_name: String,
    /// The reader every item asks.
    pub reader: crate::domain::ReaderModel,
    /// The items.
    pub items: Vec<ReadItem>,
}

/// One read's result from a finished read batch.
#[derive(Debug)]
pub struct ReadOutcome {
    /// The key the item was submitted with.
    pub key: String,
    /// The transcript, or the classified per-item error.
    pub result: Result<Transcript, ProviderError>,
}

/// A stream of read outcomes, produced without holding the results file in memory.
pub type ReadOutcomeStream<'a> =
    Pin<Box<dyn Stream<Item = Result<ReadOutcome, ProviderError>> + Send + 'a>>;

/// Copy-QA reads through the Batch API, at half price. Finding, polling
/// and cancelling a read batch are the vendor's [`BatchApi`].
#[async_trait]
pub trait ReadBatchApi: Send + Sync {
    /// Upload and create a remote read batch. Not idempotent: the caller
    /// records the chunk locally before calling this.
    async fn submit_reads(&self, chunk: &ReadChunk) -> Result<RemoteBatch, ProviderError>;
    /// Stream the results of a finished read batch.
    async fn read_results<'a>(
        &'a self,
        batch: &'a RemoteBatch,
    ) -> Result<ReadOutcomeStream<'a>, ProviderError>;
}

/// Reading copy back from an image with a text model (copy QA).
#[async_trait]
pub trait ReadApi: Send + Sync {
    /// One read now; no retries here (the run layer owns them).
    async fn read(&self, req: &ReadRequest) -> Result<Transcript, ProviderError>;
}

/// An image provider.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Who this is, as written to the manifest (`local`, `gemini`).
    fn kind(&self) -> ProviderKind;
    /// Generate one image now.
    async fn generate(&self, req: &ImageRequest) -> Result<Generated, ProviderError>;
    /// The batch capability, if the provider has one.
    fn batch(&self) -> Option<&dyn BatchApi>;
    /// The copy-QA reader capability, if the provider has one.
    fn reader(&self) -> Option<&dyn ReadApi> {
        None
    }
    /// Batched copy-QA reads, if the provider has them.
    fn read_batch(&self) -> Option<&dyn ReadBatchApi> {
        None
    }
}
