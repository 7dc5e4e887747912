//! Client configuration: endpoint (with `/v1`), key, organization and
//! project headers, timeouts. The library reads no environment variables;
//! the CLI reads `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_ORG_ID` and
//! `OPENAI_PROJECT_ID` (blank counts as unset) and fills this in.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

/// The public OpenAI API root, version included (the SDKs' default
/// `OPENAI_BASE_URL`).
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Everything the OpenAI client needs to know.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// API root INCLUDING the version, as the SDKs' `OPENAI_BASE_URL`:
    /// `https://api.openai.com/v1`, `http://127.0.0.1:8765/v1`. Paths such
    /// as `images/generations` are appended to it.
    pub base_url: String,
    /// The API key, sent only as `Authorization: Bearer <key>`.
    pub api_key: SecretString,
    /// `OpenAI-Organization` header value, sent only when set.
    pub organization: Option<String>,
    /// `OpenAI-Project` header value, sent only when set.
    pub project: Option<String>,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout for JSON and upload calls, and the idle (per
    /// read) timeout of result downloads, which may legitimately run long.
    /// GPT Image renders take from seconds to minutes and send nothing
    /// meanwhile, so this is generous.
    pub request_timeout: Duration,
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"[REDACTED]")
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl OpenAiConfig {
    /// Defaults everywhere, OpenAI's endpoint, no organization or project.
    pub fn new(api_key: SecretString) -> Self {
        OpenAiConfig {
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key,
            organization: None,
            project: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_key() {
        let c = OpenAiConfig::new(SecretString::from("sk-very-secret".to_string()));
        let s = format!("{c:?}");
        assert!(!s.contains("sk-very-secret"), "{s}");
        assert!(s.contains("REDACTED"));
    }
}
