//! Client configuration: endpoint, key, timeouts, upload and batch knobs.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

/// The public Gemini Developer API endpoint.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// The API version adloc speaks by default (the one Google's REST docs show).
pub const DEFAULT_API_VERSION: &str = "v1beta";

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
            .field("upload_retry_delay", &self.upload_retry_delay)
            .field("upload_max_failures", &self.upload_max_failures)
            .finish()
    }
}

impl GeminiConfig {
    /// The key precedence of Google's SDKs: `GOOGLE_API_KEY` wins over
    /// `GEMINI_API_KEY` when both are set; an empty value counts as unset.
    /// The caller reads the environment and passes the two values in.
    pub fn api_key_from(google: Option<String>, gemini: Option<String>) -> Option<SecretString> {
        key_from(google, gemini)
    }

    /// Defaults everywhere, Google's endpoint.
    pub fn new(api_key: SecretString) -> Self {
        GeminiConfig {
            base_url: DEFAULT_BASE_URL.to_string(),
            api_version: DEFAULT_API_VERSION.to_string(),
            api_key,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            upload_chunk_bytes: 8 * 1024 * 1024,
            inline_batch_max_bytes: None,
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
}
