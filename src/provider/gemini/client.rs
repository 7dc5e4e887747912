//! The HTTP client and realtime `generateContent` (protocol §1).

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{RequestBuilder, StatusCode};
use secrecy::ExposeSecret;

use super::classify::{Site, classify_http, classify_json_error, classify_transport};
use super::config::GeminiConfig;
use super::response;
use super::wire::{ErrorEnvelope, GenerateContentResponse, build_request};
use crate::provider::{
    BatchApi, Generated, ImageRequest, Provider, ProviderError, ReadApi, ReadRequest, Reason,
    Transcript,
};

/// The API key header; the key never goes into a URL.
pub(crate) const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-goog-api-key");

/// The Gemini provider: realtime generation plus the Batch API, over one
/// connection-reusing HTTP client.
pub struct GeminiProvider {
    pub(crate) http: reqwest::Client,
    pub(crate) config: GeminiConfig,
    /// `base_url` without a trailing slash.
    pub(crate) base: String,
    /// `scheme://host[:port]` of `base_url`, for rewriting upload URLs.
    pub(crate) base_origin: String,
    /// Path prefix of `base_url` (empty or `/prefix`).
    pub(crate) base_path: String,
    /// The key, as a header value marked sensitive (redacted in Debug).
    pub(crate) key_header: HeaderValue,
}

impl fmt::Debug for GeminiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeminiProvider")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GeminiProvider {
    /// Build the provider: validates the base URL and the key's header
    /// encoding, and creates the one shared HTTP client (rustls, HTTP/2
    /// when offered, connect timeout; per-request timeouts are set per call).
    pub fn new(config: GeminiConfig) -> Result<Self, ProviderError> {
        let base = config.base_url.trim().trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base).map_err(|e| {
            ProviderError::run_terminal(
                Reason::Other,
                format!("invalid Gemini base URL {base:?}: {e}"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ProviderError::run_terminal(
                Reason::Other,
                format!("Gemini base URL must be http(s)://host[/prefix], got {base:?}"),
            ));
        }
        let base_origin = url.origin().ascii_serialization();
        let base_path = url.path().trim_end_matches('/').to_string();
        let version = config.api_version.trim().trim_matches('/');
        if version.is_empty() || version.contains(['/', '?', '#']) {
            return Err(ProviderError::run_terminal(
                Reason::Other,
                format!("invalid API version {:?}", config.api_version),
            ));
        }
        let mut key_header =
            HeaderValue::from_str(config.api_key.expose_secret().trim()).map_err(|_| {
                ProviderError::run_terminal(
                    Reason::Unauthenticated,
                    "the API key contains characters that cannot be sent in an HTTP header",
                )
            })?;
        key_header.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            // An idle-read bound for every request; the whole-request bound
            // is set per call so result downloads can run long.
            .read_timeout(config.request_timeout)
            .user_agent(concat!("adloc/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ProviderError::run_terminal(Reason::Other, format!("HTTP client setup failed: {e}"))
            })?;
        Ok(GeminiProvider {
            http,
            base,
            base_origin,
            base_path,
            key_header,
            config,
        })
    }

    /// `{base}/{version}/{path}`.
    pub(crate) fn api_url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.base,
            self.config.api_version.trim().trim_matches('/'),
            path
        )
    }

    /// `{base}/{prefix}/{version}/{path}` (`upload`, `download` roots).
    pub(crate) fn rooted_url(&self, root: &str, path: &str) -> String {
        format!(
            "{}/{}/{}/{}",
            self.base,
            root,
            self.config.api_version.trim().trim_matches('/'),
            path
        )
    }

    /// Add the key and the whole-request timeout.
    pub(crate) fn authed(&self, rb: RequestBuilder) -> RequestBuilder {
        rb.header(API_KEY_HEADER, self.key_header.clone())
            .timeout(self.config.request_timeout)
    }

    /// Send a request and read the whole body; any status but 200 is
    /// classified. Transport failures and truncated bodies are retryable.
    pub(crate) async fn send_for_body(
        &self,
        rb: RequestBuilder,
        site: Site,
    ) -> Result<(StatusCode, impl AsRef<[u8]> + use<>), ProviderError> {
        let resp = rb.send().await.map_err(|e| classify_transport(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| classify_transport(&e))?;
        if status != StatusCode::OK {
            return Err(classify_http(status.as_u16(), &headers, &body, site));
        }
        Ok((status, body))
    }

    /// POST a JSON body with the key, returning the 200 body.
    pub(crate) async fn post_json(
        &self,
        url: String,
        body: Vec<u8>,
        site: Site,
    ) -> Result<impl AsRef<[u8]> + use<>, ProviderError> {
        let rb = self
            .authed(self.http.post(url))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        Ok(self.send_for_body(rb, site).await?.1)
    }

    /// Realtime generation.
    async fn generate_once(&self, req: &ImageRequest) -> Result<Generated, ProviderError> {
        let body = serde_json::to_vec(&build_request(req)).map_err(|e| {
            ProviderError::job_terminal(Reason::Other, format!("request serialization failed: {e}"))
        })?;
        let url = self.api_url(&format!("models/{}:generateContent", req.model.as_str()));
        let body = self.post_json(url, body, Site::Model).await?;
        let per_image = req.model.family().image_tokens(req.image_size);
        let read_side = req.read_copy_side;
        crate::provider::off_the_runtime(move || {
            let parsed: GenerateContentResponse<'_> = serde_json::from_slice(body.as_ref())
                .map_err(|e| classify_json_error(&e, "generateContent response"))?;
            if parsed.candidates.is_empty() && parsed.prompt_feedback.is_none() {
                // Some relays wrap an error envelope in a 200: classify it as
                // the status it names rather than as an empty answer.
                if let Some(err) = embedded_error(body.as_ref()) {
                    return Err(err);
                }
            }
            response::interpret(parsed, Some(per_image), read_side)
        })
        .await
    }
}

#[async_trait]
impl Provider for GeminiProvider {
    fn kind(&self) -> crate::domain::ProviderKind {
        crate::domain::ProviderKind::Gemini
    }

    /// One `generateContent` call; no retries here (the run layer owns the
    /// retry policy and reads the error's class and server delay).
    async fn generate(&self, req: &ImageRequest) -> Result<Generated, ProviderError> {
        self.generate_once(req).await
    }

    fn batch(&self) -> Option<&dyn BatchApi> {
        Some(self)
    }

    fn reader(&self) -> Option<&dyn ReadApi> {
        Some(self)
    }

    fn read_batch(&self) -> Option<&dyn crate::provider::ReadBatchApi> {
        Some(self)
    }
}

#[async_trait]
impl ReadApi for GeminiProvider {
    /// One `generateContent` call to a reader model (protocol §7b).
    async fn read(&self, req: &ReadRequest) -> Result<Transcript, ProviderError> {
        let body = serde_json::to_vec(&super::read::build_read(req)).map_err(|e| {
            ProviderError::job_terminal(Reason::Other, format!("request serialization failed: {e}"))
        })?;
        let url = self.api_url(&format!("models/{}:generateContent", req.reader.as_str()));
        let body = self.post_json(url, body, Site::Model).await?;
        let parsed: GenerateContentResponse<'_> = serde_json::from_slice(body.as_ref())
            .map_err(|e| classify_json_error(&e, "generateContent response"))?;
        if parsed.candidates.is_empty()
            && parsed.prompt_feedback.is_none()
            && let Some(err) = embedded_error(body.as_ref())
        {
            return Err(err);
        }
        super::read::interpret_read(parsed)
    }
}

/// An `{"error": {code, …}}` envelope inside a 200 body, classified by the
/// HTTP status its `code` names.
fn embedded_error(body: &[u8]) -> Option<ProviderError> {
    let env: ErrorEnvelope = serde_json::from_slice(body).ok()?;
    let code = env.error?.code?;
    let status = u16::try_from(code)
        .ok()
        .filter(|c| (400..600).contains(c))?;
    Some(classify_http(status, &HeaderMap::new(), body, Site::Model))
}
