//! Fault switches for the OpenAI surface (`[openai]` in the faults TOML).

use serde::{Deserialize, Serialize};

use crate::faults::HttpFaults;

/// Faults of the OpenAI Image API surface. Every field is optional; unknown
/// names are errors. Realtime knobs apply to `images/generations` and
/// `images/edits`; the batch knobs to `/batches`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiFaults {
    /// Fixed delay before answering every image request.
    pub latency_ms: u64,
    /// Extra uniform random delay in `[0, latency_jitter_ms]`.
    pub latency_jitter_ms: u64,
    /// Probability of a 429 `rate_limit_exceeded`.
    pub rate_429: f64,
    /// Probability of a 500 `server_error`.
    pub rate_500: f64,
    /// Probability of a 503 `server_is_overloaded`.
    pub rate_503: f64,
    /// Probability of a 200 whose body is cut off mid-way (connection drop).
    pub rate_reset: f64,
    /// The first N image requests get a 429 (from start or the last fault change).
    pub first_429: u64,
    /// The next N image requests get a 500.
    pub first_500: u64,
    /// The next N image requests get a 503.
    pub first_503: u64,
    /// `retry-after-ms` of injected 429s (and `retry-after`, rounded up to
    /// whole seconds). Default 1000.
    pub retry_after_ms: u64,
    /// Every image request after the Nth gets 429 `insufficient_quota`.
    pub insufficient_quota_after: Option<u64>,
    /// Probability of a 400 `moderation_blocked` (realtime and batch items).
    pub moderation_rate: f64,
    /// Per batch line: probability of a 500 `server_error` line in the error file.
    pub item_error_rate: f64,
    /// The first N batches created end `failed`.
    pub fail_batches: u64,
    /// The next N batches end `expired`.
    pub expire_batches: u64,
    /// A batch is terminal on the Nth get of it (0 and 1: the first get).
    /// Default 2.
    pub polls_until_done: u64,
    /// If set, use time instead of polls: terminal once this many ms passed
    /// since create (`in_progress` before).
    pub done_after_ms: Option<u64>,
    /// The first N `POST /batches` get a 429 (nothing created).
    pub create_429_first: u64,
    /// A server-side limit of image requests per minute per model, which
    /// the client is not told: over it, 429 `rate_limit_exceeded` with
    /// `retry-after-ms`; every answer to an admitted request carries
    /// `x-ratelimit-{limit,remaining,reset}-requests`. A token bucket of
    /// one second's worth, see the `limits` module. `None`: no limit (and
    /// no such headers).
    pub rpm_limit: Option<u32>,
    /// Lower the batch input file limit (200 MB) to this many bytes, so a
    /// test can exercise the limit without uploading 200 MB. Never raises it.
    pub max_batch_file_bytes: Option<u64>,
}

impl Default for OpenAiFaults {
    fn default() -> Self {
        OpenAiFaults {
            latency_ms: 0,
            latency_jitter_ms: 0,
            rate_429: 0.0,
            rate_500: 0.0,
            rate_503: 0.0,
            rate_reset: 0.0,
            first_429: 0,
            first_500: 0,
            first_503: 0,
            retry_after_ms: 1000,
            insufficient_quota_after: None,
            moderation_rate: 0.0,
            item_error_rate: 0.0,
            fail_batches: 0,
            expire_batches: 0,
            polls_until_done: 2,
            done_after_ms: None,
            create_429_first: 0,
            max_batch_file_bytes: None,
            rpm_limit: None,
        }
    }
}

impl OpenAiFaults {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let rates = [
            ("openai.rate_429", self.rate_429),
            ("openai.rate_500", self.rate_500),
            ("openai.rate_503", self.rate_503),
            ("openai.rate_reset", self.rate_reset),
            ("openai.moderation_rate", self.moderation_rate),
            ("openai.item_error_rate", self.item_error_rate),
        ];
        for (name, r) in rates {
            if !(0.0..=1.0).contains(&r) {
                return Err(format!("`{name}` must be between 0 and 1, got {r}"));
            }
        }
        Ok(())
    }

    /// The realtime HTTP knobs (504 is not used on this surface).
    pub(crate) fn http(&self) -> HttpFaults {
        HttpFaults {
            latency_ms: self.latency_ms,
            latency_jitter_ms: self.latency_jitter_ms,
            rates: [
                self.rate_429,
                self.rate_500,
                self.rate_503,
                0.0,
                self.rate_reset,
            ],
            first: [self.first_429, self.first_500, self.first_503, 0, 0],
        }
    }
}
