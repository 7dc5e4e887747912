//! Fault switches: what to break, how often, and the deterministic dice.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Fault injection settings. Every field is optional in TOML/JSON and
/// defaults to "no fault". Unknown field names are rejected so a typo does
/// not silently turn a fault off. See the module docs for the file format.
#[derive(Deserialize, Serialize, Default, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Fixed delay before answering every `generateContent` request.
    pub latency_ms: u64,
    /// Extra uniform random delay in `[0, latency_jitter_ms]`.
    pub latency_jitter_ms: u64,
    /// Probability of a per-minute quota 429 (with `RetryInfo`).
    pub rate_429: f64,
    /// Probability of a 500 INTERNAL.
    pub rate_500: f64,
    /// Probability of a 503 UNAVAILABLE.
    pub rate_503: f64,
    /// Probability of a 504 DEADLINE_EXCEEDED.
    pub rate_504: f64,
    /// Probability of a 200 whose body is cut off mid-way (connection drop).
    pub rate_reset: f64,
    /// The first N requests get a 429 (counted from start or the last fault change).
    pub first_429: u64,
    /// The next N requests (after the `first_429` ones) get a 500.
    pub first_500: u64,
    /// The next N requests get a 503.
    pub first_503: u64,
    /// The next N requests get a 504.
    pub first_504: u64,
    /// The next N requests get a connection reset mid-body.
    pub first_reset: u64,
    /// `RetryInfo.retryDelay` (and "Please retry in Xs") of injected 429s, seconds.
    pub retry_delay_s: f64,
    /// Also send a `Retry-After` header on 429s. Off by default: Gemini never sends one.
    pub retry_after_header: bool,
    /// Send injected 429s without any `details` (a capacity 429, as seen in the wild).
    pub bare_429: bool,
    /// Every realtime request after the Nth gets a per-day quota 429
    /// (`quotaId: GenerateRequestsPerDayPerProjectPerModel`).
    pub daily_quota_after: Option<u64>,
    /// Probability that a generated image (either surface, realtime or
    /// batch) that paints quoted copy paints one of its strings misspelled.
    pub misspell_rate: f64,
    /// Probability that a read by a reader model returns one string altered
    /// although the image is right (drawn per read).
    pub misread_rate: f64,
    /// The MIME type of the images Gemini image models return (realtime
    /// and batch): `image/png` or `image/jpeg` instead of the family's own
    /// (PNG for 2.5 Flash Image, JPEG otherwise). The service chooses the
    /// format of an answer, not the caller (`inlineData.mimeType` is the
    /// response's to state, https://ai.google.dev/api/caching#Blob), so an
    /// edit may come back in another format than the image it edits.
    pub image_mime: Option<String>,
    /// A server-side limit of `generateContent` requests per minute per
    /// model, which the client is not told: over it, requests get the
    /// per-minute quota 429 (`RESOURCE_EXHAUSTED` with `RetryInfo` giving
    /// the time until one is allowed). A token bucket of one second's
    /// worth, see the `limits` module. `None`: no limit.
    pub rpm_limit: Option<u32>,
    /// The test time-stamp authority (`POST /tsa`) answers 503 once it has
    /// granted this many tokens (an outage that starts mid-run).
    pub tsa_fail_after: Option<u64>,
    /// Batch and Files faults.
    pub batch: BatchFaults,
    /// Faults of the OpenAI surface (`[openai]`).
    pub openai: crate::OpenAiFaults,
}

/// Faults for the batch surface. The HTTP fault fields apply to
/// `batchGenerateContent` (create) requests only.
#[derive(Deserialize, Serialize, Default, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BatchFaults {
    /// Fixed delay before answering a batch create.
    pub latency_ms: u64,
    /// Extra uniform random delay for batch creates.
    pub latency_jitter_ms: u64,
    /// Probability of a 429 on batch create.
    pub rate_429: f64,
    /// Probability of a 500 on batch create.
    pub rate_500: f64,
    /// Probability of a 503 on batch create.
    pub rate_503: f64,
    /// Probability of a 504 on batch create.
    pub rate_504: f64,
    /// Probability of a connection reset mid-body on batch create. The batch
    /// IS created (the client just never sees the answer), which is exactly
    /// the case resume-by-displayName exists for.
    pub rate_reset: f64,
    /// The first N batch creates get a 429 (no batch created).
    pub create_429_first: u64,
    /// The next N batch creates get a 503 (no batch created).
    pub create_503_first: u64,
    /// The next N batch creates are created but the answer is cut off mid-body.
    pub create_reset_first: u64,
    /// Probability that one item in a batch ends with an error line
    /// (numeric gRPC code 8, 13 or 14) instead of a response.
    pub item_error_rate: f64,
    /// The first N batches created end `BATCH_STATE_FAILED`.
    pub fail_batches: u64,
    /// The next N batches (after the failed ones) end `BATCH_STATE_EXPIRED`.
    pub expire_batches: u64,
    /// A batch is terminal on the Nth `batches.get` of it (0 and 1: the first
    /// get). Earlier gets show PENDING (before any get) then RUNNING.
    pub polls_until_done: u64,
    /// If set, use time instead of polls: terminal once this many ms passed
    /// since create (RUNNING before).
    pub done_after_ms: Option<u64>,
    /// A SUCCEEDED batch shows no `output` for this many gets first (the
    /// "succeeded before the output file exists" quirk).
    pub succeeded_before_output_polls: u64,
    /// The first N downloads of generated files are cut short mid-body.
    pub truncate_download_first: u64,
    /// Cap on concurrent (non-terminal) batches; default 100 like the real service.
    pub max_concurrent_batches: Option<u64>,
}

impl Faults {
    /// Load faults from a TOML file. Errors name the file and, for syntax
    /// or type errors, the line and column.
    pub fn from_toml_file(path: &Path) -> Result<Faults, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read fault file: {e}", path.display()))?;
        Self::from_toml_str(&text).map_err(|(pos, msg)| match pos {
            Some((line, col)) => format!("{}:{line}:{col}: {msg}", path.display()),
            None => format!("{}: {msg}", path.display()),
        })
    }

    /// Parse TOML text; errors carry a 1-based (line, column) when known.
    pub(crate) fn from_toml_str(text: &str) -> Result<Faults, (Option<(usize, usize)>, String)> {
        let faults: Faults = toml::from_str(text).map_err(|e| {
            let pos = e.span().map(|s| line_col(text, s.start));
            (pos, e.message().trim().to_string())
        })?;
        faults.validate().map_err(|m| (None, m))?;
        Ok(faults)
    }

    /// Range checks serde cannot express.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let rates = [
            ("rate_429", self.rate_429),
            ("rate_500", self.rate_500),
            ("rate_503", self.rate_503),
            ("rate_504", self.rate_504),
            ("rate_reset", self.rate_reset),
            ("misspell_rate", self.misspell_rate),
            ("misread_rate", self.misread_rate),
            ("batch.rate_429", self.batch.rate_429),
            ("batch.rate_500", self.batch.rate_500),
            ("batch.rate_503", self.batch.rate_503),
            ("batch.rate_504", self.batch.rate_504),
            ("batch.rate_reset", self.batch.rate_reset),
            ("batch.item_error_rate", self.batch.item_error_rate),
        ];
        for (name, r) in rates {
            if !(0.0..=1.0).contains(&r) {
                return Err(format!("`{name}` must be between 0 and 1, got {r}"));
            }
        }
        self.openai.validate()?;
        if let Some(m) = &self.image_mime
            && !matches!(m.as_str(), "image/png" | "image/jpeg")
        {
            return Err(format!(
                "`image_mime` must be \"image/png\" or \"image/jpeg\", got {m:?}"
            ));
        }
        if self.rpm_limit == Some(0) || self.openai.rpm_limit == Some(0) {
            return Err("`rpm_limit` must be at least 1 (leave it out for no limit)".into());
        }
        if !(self.retry_delay_s.is_finite() && self.retry_delay_s >= 0.0) {
            return Err(format!(
                "`retry_delay_s` must be a non-negative number, got {}",
                self.retry_delay_s
            ));
        }
        Ok(())
    }

    pub(crate) fn realtime_http(&self) -> HttpFaults {
        HttpFaults {
            latency_ms: self.latency_ms,
            latency_jitter_ms: self.latency_jitter_ms,
            rates: [
                self.rate_429,
                self.rate_500,
                self.rate_503,
                self.rate_504,
                self.rate_reset,
            ],
            first: [
                self.first_429,
                self.first_500,
                self.first_503,
                self.first_504,
                self.first_reset,
            ],
        }
    }

    pub(crate) fn batch_create_http(&self) -> HttpFaults {
        HttpFaults {
            latency_ms: self.batch.latency_ms,
            latency_jitter_ms: self.batch.latency_jitter_ms,
            rates: [
                self.batch.rate_429,
                self.batch.rate_500,
                self.batch.rate_503,
                self.batch.rate_504,
                self.batch.rate_reset,
            ],
            first: [
                self.batch.create_429_first,
                0,
                self.batch.create_503_first,
                0,
                self.batch.create_reset_first,
            ],
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// One injected HTTP fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpFault {
    Quota429,
    Internal500,
    Unavailable503,
    Deadline504,
    Reset,
}

const FAULT_ORDER: [HttpFault; 5] = [
    HttpFault::Quota429,
    HttpFault::Internal500,
    HttpFault::Unavailable503,
    HttpFault::Deadline504,
    HttpFault::Reset,
];

/// The HTTP fault knobs of one request kind (realtime or batch create).
pub(crate) struct HttpFaults {
    pub latency_ms: u64,
    pub latency_jitter_ms: u64,
    /// 429, 500, 503, 504, reset.
    pub rates: [f64; 5],
    /// "first N" counters in the same order, applied one after the other.
    pub first: [u64; 5],
}

impl HttpFaults {
    /// Decide the fault for the request with 0-based `index` (for the
    /// "first N" counters) and uniform draw `u` (for the rates).
    pub(crate) fn decide(&self, index: u64, u: f64) -> Option<HttpFault> {
        let mut start = 0u64;
        for (n, fault) in self.first.iter().zip(FAULT_ORDER) {
            if index < start.saturating_add(*n) {
                return Some(fault);
            }
            start = start.saturating_add(*n);
        }
        let mut acc = 0.0;
        for (r, fault) in self.rates.iter().zip(FAULT_ORDER) {
            acc += r;
            if u < acc {
                return Some(fault);
            }
        }
        None
    }

    pub(crate) fn latency(&self, u: f64) -> std::time::Duration {
        let jitter = (self.latency_jitter_ms as f64 * u) as u64;
        std::time::Duration::from_millis(self.latency_ms.saturating_add(jitter))
    }
}

/// A uniform draw in `[0, 1)` that depends only on the seed and the parts.
/// Hash-based rather than a shared RNG so the outcome of one request does
/// not depend on how concurrent requests interleave.
pub(crate) fn draw(seed: u64, parts: &[&[u8]]) -> f64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_example_from_the_docs_parses() {
        let f = Faults::from_toml_str(
            r#"
latency_ms = 300
rate_429 = 0.05
retry_delay_s = 1.5
rate_500 = 0.02
rate_503 = 0.03
rate_504 = 0.0
rate_reset = 0.02
daily_quota_after = 100
[batch]
create_429_first = 1
item_error_rate = 0.05
fail_batches = 0
expire_batches = 0
polls_until_done = 2
succeeded_before_output_polls = 0
truncate_download_first = 0
"#,
        )
        .unwrap();
        assert_eq!(f.latency_ms, 300);
        assert_eq!(f.daily_quota_after, Some(100));
        assert_eq!(f.batch.polls_until_done, 2);
    }

    #[test]
    fn toml_errors_carry_line_and_column() {
        let (pos, msg) = Faults::from_toml_str("latency_ms = 3\nrate_4299 = 0.1\n").unwrap_err();
        assert_eq!(pos.map(|p| p.0), Some(2), "{msg}");
        assert!(msg.contains("rate_4299"), "{msg}");
        let (_, msg) = Faults::from_toml_str("rate_429 = 1.5\n").unwrap_err();
        assert!(msg.contains("rate_429"), "{msg}");
    }

    #[test]
    fn fault_file_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults.toml");
        std::fs::write(&path, "latency_ms = 1\n[batch]\npolls = 3\n").unwrap();
        let err = Faults::from_toml_file(&path).unwrap_err();
        assert!(err.starts_with(&format!("{}:3:", path.display())), "{err}");
        std::fs::write(&path, "[batch]\npolls_until_done = 3\n").unwrap();
        assert_eq!(
            Faults::from_toml_file(&path)
                .unwrap()
                .batch
                .polls_until_done,
            3
        );
    }

    #[test]
    fn first_n_counters_apply_in_sequence() {
        let f = Faults {
            first_429: 2,
            first_503: 1,
            ..Faults::default()
        }
        .realtime_http();
        assert_eq!(f.decide(0, 0.99), Some(HttpFault::Quota429));
        assert_eq!(f.decide(1, 0.99), Some(HttpFault::Quota429));
        assert_eq!(f.decide(2, 0.99), Some(HttpFault::Unavailable503));
        assert_eq!(f.decide(3, 0.99), None);
    }
}
