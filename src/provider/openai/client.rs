//! The HTTP client and realtime generation (protocol §1, §2): JSON
//! `images/generations` without references, multipart `images/edits` with.

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::{RequestBuilder, Response};
use secrecy::ExposeSecret;

use super::classify::{
    Site, classify_http, classify_json_error, classify_transport, request_limits, scrub,
};
use super::config::OpenAiConfig;
use super::response;
use super::wire::{GenerationsBody, ImagesResponse, as_sent, check_references, reference_kind};
use crate::provider::{BatchApi, Generated, ImageRequest, Provider, ProviderError, Reason};

const ORGANIZATION_HEADER: HeaderName = HeaderName::from_static("openai-organization");
const PROJECT_HEADER: HeaderName = HeaderName::from_static("openai-project");

/// The OpenAI provider: realtime generations and edits plus the Batch API,
/// over one connection-reusing HTTP client.
pub struct OpenAiProvider {
    pub(crate) http: reqwest::Client,
    pub(crate) config: OpenAiConfig,
    /// `base_url` without a trailing slash (it includes `/v1`).
    pub(crate) base: String,
    /// `Bearer <key>`, marked sensitive (redacted in Debug).
    auth: HeaderValue,
    organization: Option<HeaderValue>,
    project: Option<HeaderValue>,
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn header_value(v: &str, what: &str) -> Result<HeaderValue, ProviderError> {
    HeaderValue::from_str(v.trim()).map_err(|_| {
        ProviderError::run_terminal(
            Reason::Other,
            format!("the {what} contains characters that cannot be sent in an HTTP header"),
        )
    })
}

impl OpenAiProvider {
    /// Build the provider: validates the base URL and the header values,
    /// and creates the one shared HTTP client (rustls, HTTP/2 when offered,
    /// connect and idle-read timeouts; whole-request timeouts per call).
    pub fn new(config: OpenAiConfig) -> Result<Self, ProviderError> {
        let base = config.base_url.trim().trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base).map_err(|e| {
            ProviderError::run_terminal(
                Reason::Other,
                format!("invalid OpenAI base URL {base:?}: {e}"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(ProviderError::run_terminal(
                Reason::Other,
                format!("OpenAI base URL must be http(s)://host[/prefix]/v1, got {base:?}"),
            ));
        }
        let key = config.api_key.expose_secret().trim();
        if key.is_empty() {
            return Err(ProviderError::run_terminal(
                Reason::Unauthenticated,
                "the OpenAI API key is empty",
            ));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            ProviderError::run_terminal(
                Reason::Unauthenticated,
                "the API key contains characters that cannot be sent in an HTTP header",
            )
        })?;
        auth.set_sensitive(true);
        let organization = config
            .organization
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| header_value(s, "OpenAI organization"))
            .transpose()?;
        let project = config
            .project
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| header_value(s, "OpenAI project"))
            .transpose()?;
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
        Ok(OpenAiProvider {
            http,
            base,
            auth,
            organization,
            project,
            config,
        })
    }

    /// `{base}/{path}` (the base already ends in `/v1`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// Add the key and the optional organization and project headers.
    pub(crate) fn with_auth(&self, mut rb: RequestBuilder) -> RequestBuilder {
        rb = rb.header(AUTHORIZATION, self.auth.clone());
        if let Some(o) = &self.organization {
            rb = rb.header(ORGANIZATION_HEADER, o.clone());
        }
        if let Some(p) = &self.project {
            rb = rb.header(PROJECT_HEADER, p.clone());
        }
        rb
    }

    /// [`Self::with_auth`] plus the whole-request timeout.
    pub(crate) fn authed(&self, rb: RequestBuilder) -> RequestBuilder {
        self.with_auth(rb).timeout(self.config.request_timeout)
    }

    /// Remove the configured key from an error's texts.
    pub(crate) fn scrub(&self, e: ProviderError) -> ProviderError {
        scrub(e, self.config.api_key.expose_secret().trim())
    }

    /// Send a request and pass a 2xx response through; anything else is
    /// classified (after reading its body). Transport failures retry.
    pub(crate) async fn send(
        &self,
        rb: RequestBuilder,
        site: Site,
    ) -> Result<Response, ProviderError> {
        let resp = rb
            .send()
            .await
            .map_err(|e| self.scrub(classify_transport(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap_or_default();
        Err(self.scrub(classify_http(status.as_u16(), &headers, &body, site)))
    }

    /// Send a request and read the whole 2xx body.
    pub(crate) async fn send_for_body(
        &self,
        rb: RequestBuilder,
        site: Site,
    ) -> Result<impl AsRef<[u8]> + use<>, ProviderError> {
        let resp = self.send(rb, site).await?;
        resp.bytes()
            .await
            .map_err(|e| self.scrub(classify_transport(&e)))
    }

    /// POST a JSON body, returning the 2xx body.
    pub(crate) async fn post_json(
        &self,
        path: &str,
        body: Vec<u8>,
        site: Site,
    ) -> Result<impl AsRef<[u8]> + use<>, ProviderError> {
        let rb = self
            .authed(self.http.post(self.url(path)))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        self.send_for_body(rb, site).await
    }

    /// One realtime call: generations without references, a multipart
    /// edit with them.
    async fn generate_once(&self, req: &ImageRequest) -> Result<Generated, ProviderError> {
        // An edit of an earlier image is a multipart edit with that image first.
        let sent = as_sent(req);
        let req = sent.as_ref();
        let fields = GenerationsBody::from_request(req)?;
        let rb = if req.references.is_empty() {
            let json = serde_json::to_vec(&fields).map_err(|e| {
                ProviderError::job_terminal(
                    Reason::Other,
                    format!("request serialization failed: {e}"),
                )
            })?;
            self.authed(self.http.post(self.url("images/generations")))
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(json)
        } else {
            check_references(req)?;
            let mut form = Multipart::new();
            form.text("model", fields.model);
            form.text("prompt", fields.prompt);
            form.text("n", &fields.n.to_string());
            form.text("size", &fields.size);
            form.text("quality", fields.quality);
            form.text("output_format", fields.output_format);
            for (i, r) in req.references.iter().enumerate() {
                let (mime, ext) = reference_kind(r).unwrap_or(("application/octet-stream", "bin"));
                form.file("image[]", &format!("image-{}.{ext}", i + 1), mime, &r.bytes);
            }
            let (content_type, body) = form.finish();
            self.authed(self.http.post(self.url("images/edits")))
                .header(CONTENT_TYPE, content_type)
                .body(body)
        };
        let resp = self.send(rb, Site::Model).await?;
        // Read before the body: the pacer learns the request limit from
        // every answer, successes included.
        let limits = request_limits(resp.headers());
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.scrub(classify_transport(&e)))?;
        let read_side = req.read_copy_side;
        let mut generated = crate::provider::off_the_runtime(move || {
            let parsed: ImagesResponse<'_> = serde_json::from_slice(body.as_ref())
                .map_err(|e| classify_json_error(&e, "images response"))?;
            response::interpret(parsed, read_side)
        })
        .await
        .map_err(|e| self.scrub(e))?;
        generated.limits = limits;
        Ok(generated)
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn kind(&self) -> crate::domain::ProviderKind {
        crate::domain::ProviderKind::OpenAi
    }

    /// One images call; no retries here (the run layer owns the retry
    /// policy and reads the error's class and server delay).
    async fn generate(&self, req: &ImageRequest) -> Result<Generated, ProviderError> {
        self.generate_once(req).await.map_err(|e| self.scrub(e))
    }

    fn batch(&self) -> Option<&dyn BatchApi> {
        Some(self)
    }
}

/// A `multipart/form-data` body built by hand, in the SDK's order (text
/// parts first, then files). The boundary is 128 random bits, so it cannot
/// plausibly occur in the content.
pub(crate) struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Multipart {
    /// An empty form with a fresh boundary.
    pub(crate) fn new() -> Self {
        Multipart {
            boundary: format!("adloc{:032x}", fastrand::u128(..)),
            body: Vec::new(),
        }
    }

    /// A text part.
    pub(crate) fn text(&mut self, name: &str, value: &str) {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
    }

    /// The head of a file part (its bytes and `\r\n` follow).
    pub(crate) fn file_head(&self, name: &str, filename: &str, content_type: &str) -> Vec<u8> {
        format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n",
            self.boundary
        )
        .into_bytes()
    }

    /// A file part held in memory.
    pub(crate) fn file(&mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) {
        let head = self.file_head(name, filename, content_type);
        self.body.extend_from_slice(&head);
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
    }

    /// The `Content-Type` header value.
    pub(crate) fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The closing delimiter.
    pub(crate) fn closing(&self) -> Vec<u8> {
        format!("--{}--\r\n", self.boundary).into_bytes()
    }

    /// The parts so far (without the closing delimiter).
    pub(crate) fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// Close the form: `(content type, body)`.
    pub(crate) fn finish(mut self) -> (String, Vec<u8>) {
        let closing = self.closing();
        self.body.extend_from_slice(&closing);
        (self.content_type(), self.body)
    }
}
