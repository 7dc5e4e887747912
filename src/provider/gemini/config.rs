//! Client configuration: endpoint, key, timeouts, upload and batch knobs.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

/// The public Gemini Developer API endpoint.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// The API version adloc speaks by default (the one Google's REST docs show).
pub const DEFAULT_API_VERSION: &str = "v1beta";
/// Environment variable that overrides the base URL (emulators, proxies).
pub const BASE_URL_ENV: &str = "GOOGLE_GEMINI_BASE_URL";

/// How often to poll a running batch: exponential backoff between `initial`
/// and `max`, multiplied by `factor` after every poll that found it running.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollPolicy {
    /// Delay before the second poll.
    pub initial: Duration,
    /// Upper bound for the delay.
    pub max: Duration,
    /// Growth factor per poll (values below 1 are treated as 1).
    pub factor: f64,
}

impl Default for PollPolicy {
    fn default() -> Self {
        // Batches take minutes to hours; polling faster than every 10 s only
        // burns request quota.
        PollPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            factor: 1.5,
        }
    }
}

impl PollPolicy {
    /// The delay before poll number `n + 1`, where `n` polls already found
    /// the batch running (`n = 0` gives `initial`).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = if self.factor.is_finite() && self.factor > 1.0 {
            self.factor
        } else {
            1.0
        };
        // Cap the exponent so the multiplication cannot overflow to infinity.
        let scaled = self.initial.as_secs_f64() * factor.powi(n.min(64) as i32);
        let capped = scaled.min(self.max.as_secs_f64()).max(0.0);
        Duration::try_from_secs_f64(capped).unwrap_or(self.max)
    }
}

/// Everything the Gemini client needs to know.
#[derive(Clone)]
pub struct GeminiConfig {
    /// Service root, without the version: `https://generativelanguage.googleapis.com`.
    /// May carry a path prefix (`http://proxy/gemini`).
    pub base_url: String,
    /// `v1beta` (the docs) or `v1` (the SDK's default since 3.0).
    pub api_version: String,
    /// The API key, sent only as the `x-goog-api-key` header.
    pub api_key: SecretString,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout for JSON calls and upload chunks. Result
    /// downloads use it as an idle (per-read) timeout instead, because a
    /// 2 GB results file legitimately takes longer than any sane total.
    pub request_timeout: Duration,
    /// Resumable-upload chunk size (the SDK uses 8 MiB).
    pub upload_chunk_bytes: usize,
    /// `None`: batches always use a JSONL file. `Some(n)`: batches whose
    /// JSONL is under `n` bytes are sent inline (explicit opt-in).
    pub inline_batch_max_bytes: Option<usize>,
    /// Batch poll backoff, for the caller's polling loop.
    pub poll: PollPolicy,
    /// First delay between attempts of a broken upload chunk (doubles each
    /// attempt). Only the resumable upload retries inside the client.
    pub upload_retry_delay: Duration,
    /// How many times one upload may fail (chunk, status query or restart)
    /// before `submit` gives up with a retryable error.
    pub upload_max_failures: u32,
}

impl fmt::Debug for GeminiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeminiConfig")
            .field("base_url", &self.base_url)
            .field("api_version", &self.api_version)
            .field("api_key", &"[REDACTED]")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("upload_chunk_bytes", &self.upload_chunk_bytes)
            .field("inline_batch_max_bytes", &self.inline_batch_max_bytes)
            .field("poll", &self.poll)
            .field("upload_retry_delay", &self.upload_retry_delay)
            .field("upload_max_failures", &self.upload_max_failures)
            .finish()
    }
}

impl GeminiConfig {
    /// Key from env: `GOOGLE_API_KEY` wins over `GEMINI_API_KEY` when both
    /// are set (as Google's SDKs do). `None` when neither is set; an empty
    /// value counts as unset, as in the SDK.
    pub fn api_key_from_env() -> Option<SecretString> {
        key_from(
            std::env::var("GOOGLE_API_KEY").ok(),
            std::env::var("GEMINI_API_KEY").ok(),
        )
    }

    /// Defaults everywhere; `base_url` from `GOOGLE_GEMINI_BASE_URL` if set.
    pub fn new(api_key: SecretString) -> Self {
        let base_url = std::env::var(BASE_URL_ENV)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        GeminiConfig {
            base_url,
            api_version: DEFAULT_API_VERSION.to_string(),
            api_key,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            upload_chunk_bytes: 8 * 1024 * 1024,
            inline_batch_max_bytes: None,
            poll: PollPolicy::default(),
            upload_retry_delay: Duration::from_secs(1),
            upload_max_failures: 6,
        }
    }
}

/// The precedence rule of [`GeminiConfig::api_key_from_env`], without the
/// process environment (so it can be tested).
fn key_from(google: Option<String>, gemini: Option<String>) -> Option<SecretString> {
    let usable = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    usable(google)
        .or_else(|| usable(gemini))
        .map(|s| SecretString::from(s.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn google_key_wins_and_empty_counts_as_unset() {
        let k = key_from(Some("g".into()), Some("m".into())).unwrap();
        assert_eq!(k.expose_secret(), "g");
        let k = key_from(Some(" ".into()), Some("m".into())).unwrap();
        assert_eq!(k.expose_secret(), "m");
        assert!(key_from(None, Some(String::new())).is_none());
    }

    #[test]
    fn debug_redacts_the_key() {
        let c = GeminiConfig::new(SecretString::from("sk-very-secret".to_string()));
        let s = format!("{c:?}");
        assert!(!s.contains("sk-very-secret"), "{s}");
        assert!(s.contains("REDACTED"));
    }

    #[test]
    fn poll_policy_grows_and_caps() {
        let p = PollPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(60),
            factor: 2.0,
        };
        assert_eq!(p.delay(0), Duration::from_secs(10));
        assert_eq!(p.delay(1), Duration::from_secs(20));
        assert_eq!(p.delay(10), Duration::from_secs(60));
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(60));
    }
}
