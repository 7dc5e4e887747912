//! The OpenAI Image API surface (`shared/protocols/openai.md`), served
//! under `/openai/v1/…` on the same listener as the Gemini surface. See the
//! crate docs for the route table, fault knobs and trigger words.

mod batch;
mod faults;
mod files;
mod images;
mod multipart;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use faults::OpenAiFaults;

use crate::{Query, Shared};

/// OpenAI-surface counters (the `openai` field of [`crate::EmulatorStats`]).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct OpenAiStats {
    /// `POST /images/generations` requests received (any outcome).
    pub generate_calls: u64,
    /// `POST /images/edits` requests received (any outcome).
    pub edit_calls: u64,
    /// Input images received by edits (multipart files and JSON refs),
    /// counted once the request parsed.
    pub edit_images_received: u64,
    /// Realtime plus batch billed images.
    pub billed_images: u64,
    /// Images in realtime 200s sent completely.
    pub realtime_billed_images: u64,
    /// Images of successful batch lines (counted when the batch completes
    /// or expires).
    pub batch_billed_images: u64,
    /// Batches created.
    pub batches_created: u64,
    /// `metadata.adloc_tag` value → batches created with it.
    pub batch_metadata: BTreeMap<String, u64>,
    /// Files uploaded through `POST /files`.
    pub files_uploaded: u64,
    /// Injected faults of every kind (HTTP faults, quota, moderation rate,
    /// item errors, failed/expired batches, create 429s).
    pub faults_injected: u64,
    /// SHA-256 (hex) of the prompt → number of billed responses for it.
    pub prompts_billed: BTreeMap<String, u64>,
    /// Image requests refused by `rpm_limit` (429; also counted in
    /// `generate_calls`/`edit_calls`, not in `faults_injected`).
    pub rate_limited: u64,
}

/// State of the OpenAI surface inside [`Shared`].
#[derive(Default)]
pub(crate) struct OpenAiState {
    counters: Mutex<Counters>,
    pub(crate) files: files::Store,
    pub(crate) batches: batch::Store,
    pub(crate) webp: images::WebpCache,
}

#[derive(Default)]
struct Counters {
    realtime: u64,
    batch_create: u64,
    batch_ordinal: u64,
    /// (kind, prompt hash) → times seen, so a retry gets a fresh draw.
    attempts: HashMap<(u8, [u8; 32]), u64>,
}

impl OpenAiState {
    /// Restart the "first N" counters (on a fault change).
    pub(crate) fn reset_counters(&self) {
        let mut c = self.lock();
        c.realtime = 0;
        c.batch_create = 0;
        c.batch_ordinal = 0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_realtime(&self) -> u64 {
        let mut c = self.lock();
        let i = c.realtime;
        c.realtime += 1;
        i
    }

    fn next_batch_create(&self) -> u64 {
        let mut c = self.lock();
        let i = c.batch_create;
        c.batch_create += 1;
        i
    }

    fn next_batch_ordinal(&self) -> u64 {
        let mut c = self.lock();
        let i = c.batch_ordinal;
        c.batch_ordinal += 1;
        i
    }

    fn attempt(&self, kind: u8, sha: &[u8; 32]) -> u64 {
        let mut c = self.lock();
        let n = c.attempts.entry((kind, *sha)).or_default();
        let seen = *n;
        *n += 1;
        seen
    }
}

/// Count one injected fault.
pub(crate) fn injected(s: &Shared) {
    s.with_stats(|st| st.openai.faults_injected += 1);
}

/// Record billed images for one response.
pub(crate) fn bill(s: &Shared, sha: &[u8; 32], images: u64, batch: bool) {
    if images == 0 {
        return;
    }
    s.with_stats(|st| {
        let o = &mut st.openai;
        o.billed_images += images;
        if batch {
            o.batch_billed_images += images;
        } else {
            o.realtime_billed_images += images;
        }
        *o.prompts_billed.entry(hex::encode(sha)).or_default() += 1;
    });
}

const KIND_REALTIME: u8 = 0;
const KIND_ITEM: u8 = 1;

pub(crate) const JSON: &str = "application/json";

/// An error in OpenAI's 4-key envelope.
#[derive(Debug, Clone)]
pub(crate) struct OaiError {
    pub http: u16,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// Extra keys inside `error` (e.g. `moderation_details`).
    pub extra: Option<Box<(&'static str, Value)>>,
    pub headers: Vec<(&'static str, String)>,
}

impl OaiError {
    pub(crate) fn new(http: u16, kind: &'static str, message: impl Into<String>) -> Self {
        OaiError {
            http,
            message: message.into(),
            kind,
            param: None,
            code: None,
            extra: None,
            headers: Vec::new(),
        }
    }

    /// 400 `invalid_request_error`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", message)
    }

    pub(crate) fn param(mut self, p: &str) -> Self {
        self.param = Some(p.to_string());
        self
    }

    pub(crate) fn code(mut self, c: &'static str) -> Self {
        self.code = Some(c);
        self
    }

    pub(crate) fn invalid_value(param: &str, message: impl Into<String>) -> Self {
        Self::invalid(message).param(param).code("invalid_value")
    }

    pub(crate) fn unknown_parameter(param: &str) -> Self {
        Self::invalid(format!("Unknown parameter: '{param}'."))
            .param(param)
            .code("unknown_parameter")
    }

    pub(crate) fn invalid_type(param: &str, expected: &str, got: &Value) -> Self {
        let got = match got {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        Self::invalid(format!(
            "Invalid type for '{param}': expected {expected}, but got {got} instead."
        ))
        .param(param)
        .code("invalid_type")
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "invalid_request_error", message)
    }

    pub(crate) fn server_error() -> Self {
        Self::new(
            500,
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
        )
        .code("server_error")
    }

    pub(crate) fn overloaded() -> Self {
        Self::new(
            503,
            "server_error",
            "The engine is currently overloaded, please try again later.",
        )
        .code("server_is_overloaded")
    }

    pub(crate) fn rate_limited(model: &str, retry_after_ms: u64) -> Self {
        let secs = retry_after_ms as f64 / 1000.0;
        let mut e = Self::new(
            429,
            "requests",
            format!(
                "Rate limit reached for {model} in organization org-emulator on images per \
                 minute (IPM): Limit 5, Used 5, Requested 1. Please try again in {secs}s. \
                 Visit https://platform.openai.com/account/rate-limits to learn more."
            ),
        )
        .code("rate_limit_exceeded");
        e.headers = vec![
            ("retry-after-ms", retry_after_ms.to_string()),
            ("retry-after", retry_after_ms.div_ceil(1000).to_string()),
            ("x-ratelimit-limit-requests", "5".into()),
            ("x-ratelimit-remaining-requests", "0".into()),
            (
                "x-ratelimit-reset-requests",
                format!("{}ms", retry_after_ms),
            ),
        ];
        e
    }

    /// A refusal by the server-side `rpm_limit`: 429 `rate_limit_exceeded`
    /// with `retry-after-ms` (the time until one request is allowed) and
    /// the `x-ratelimit-*-requests` headers ("Rate limits in headers",
    /// https://platform.openai.com/docs/guides/rate-limits).
    pub(crate) fn rpm_limited(
        model: &str,
        rpm: u32,
        retry_after: std::time::Duration,
        reset: std::time::Duration,
    ) -> Self {
        // Whole milliseconds, rounded up: a client waiting exactly this
        // long finds a request allowed.
        let ms = (retry_after.as_micros().div_ceil(1000) as u64).max(1);
        let secs = ms as f64 / 1000.0;
        let mut e = Self::new(
            429,
            "requests",
            format!(
                "Rate limit reached for {model} in organization org-emulator on requests per \
                 min (RPM): Limit {rpm}, Used {rpm}, Requested 1. Please try again in {secs}s. \
                 Visit https://platform.openai.com/account/rate-limits to learn more."
            ),
        )
        .code("rate_limit_exceeded");
        e.headers = vec![
            ("retry-after-ms", ms.to_string()),
            ("retry-after", ms.div_ceil(1000).to_string()),
        ];
        e.headers.extend(ratelimit_headers(rpm, 0, reset));
        e
    }

    pub(crate) fn insufficient_quota() -> Self {
        Self::new(
            429,
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details. \
             For more information on this error, read the docs: \
             https://platform.openai.com/docs/guides/error-codes/api-errors.",
        )
        .code("insufficient_quota")
    }

    pub(crate) fn moderation_blocked(request_id: &str) -> Self {
        let mut e = Self::new(
            400,
            "image_generation_user_error",
            format!(
                "Your request was rejected by the safety system. If you believe this is an \
                 error, contact us at help.openai.com and include the request ID {request_id}. \
                 safety_violations=[violence]."
            ),
        )
        .code("moderation_blocked");
        e.extra = Some(Box::new((
            "moderation_details",
            json!({"moderation_stage": "input", "categories": ["violence"]}),
        )));
        e
    }

    /// The envelope.
    pub(crate) fn body(&self) -> Value {
        let mut inner = json!({
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        });
        if let Some(extra) = &self.extra {
            inner[extra.0] = extra.1.clone();
        }
        json!({ "error": inner })
    }
}

impl IntoResponse for OaiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = json_response(status, &self.body());
        for (k, v) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                resp.headers_mut().insert(*k, v);
            }
        }
        resp
    }
}

/// `x-ratelimit-{limit,remaining,reset}-requests` of an `rpm_limit`.
pub(crate) fn ratelimit_headers(
    rpm: u32,
    remaining: u32,
    reset: std::time::Duration,
) -> [(&'static str, String); 3] {
    [
        ("x-ratelimit-limit-requests", rpm.to_string()),
        ("x-ratelimit-remaining-requests", remaining.to_string()),
        (
            "x-ratelimit-reset-requests",
            crate::limits::go_duration(reset),
        ),
    ]
}

/// A JSON reply with `Content-Type: application/json`.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    resp
}

pub(crate) fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// `req_` + 32 hex chars, deterministic in the seed.
pub(crate) fn request_id(s: &Shared) -> String {
    format!("req_{}", s.new_id(32, b"0123456789abcdef"))
}

/// A key as the real service prints it: first 3 and last 4 characters.
pub(crate) fn mask_key(k: &str) -> String {
    let chars: Vec<char> = k.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

fn check_auth(s: &Shared, headers: &HeaderMap) -> Result<(), OaiError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        return Err(OaiError::new(
            401,
            "invalid_request_error",
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), \
             or as the password field (with blank username) if you're accessing the API from \
             your browser and are prompted for a username and password. You can obtain an API \
             key from https://platform.openai.com/account/api-keys.",
        )
        .code("invalid_api_key"));
    }
    match &s.api_key {
        Some(valid) if valid != key => Err(OaiError::new(
            401,
            "invalid_request_error",
            format!(
                "Incorrect API key provided: {}. You can find your API key at \
                 https://platform.openai.com/account/api-keys.",
                mask_key(key)
            ),
        )
        .code("invalid_api_key")),
        _ => Ok(()),
    }
}

/// Largest request body accepted (a 200 MB batch file plus multipart framing).
const MAX_BODY: usize = 210 * 1024 * 1024;

async fn read_body(body: Body) -> Result<Bytes, OaiError> {
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| OaiError::invalid("Request body too large or unreadable."))
}

fn parse_json(bytes: &[u8]) -> Result<Value, OaiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        OaiError::invalid(format!(
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, \
             but what was sent was not valid JSON.) {e}"
        ))
    })
}

/// Entry point for `/openai/v1/{rest…}`: every reply gets an `x-request-id`.
pub(crate) async fn route(
    s: &Arc<Shared>,
    method: &Method,
    rest: &[&str],
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> Response {
    let rid = request_id(s);
    let mut resp = match route_inner(s, method, rest, headers, query, body, &rid).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp.headers_mut()
        .insert("openai-version", HeaderValue::from_static("2020-10-01"));
    resp
}

async fn route_inner(
    s: &Arc<Shared>,
    method: &Method,
    rest: &[&str],
    headers: &HeaderMap,
    query: &Query,
    body: Body,
    rid: &str,
) -> Result<Response, OaiError> {
    // Count calls before auth, like the Gemini side counts every request.
    match (method, rest) {
        (&Method::POST, ["images", "generations"]) => {
            s.with_stats(|st| st.openai.generate_calls += 1);
        }
        (&Method::POST, ["images", "edits"]) => s.with_stats(|st| st.openai.edit_calls += 1),
        _ => {}
    }
    check_auth(s, headers)?;
    match (method, rest) {
        (&Method::POST, ["images", "generations"]) => {
            images::generations(s, headers, body, rid).await
        }
        (&Method::POST, ["images", "edits"]) => images::edits(s, headers, body, rid).await,
        (&Method::POST, ["files"]) => files::upload(s, headers, body).await,
        (&Method::GET, ["files", id]) => files::get(s, id),
        (&Method::GET, ["files", id, "content"]) => files::content(s, id),
        (&Method::DELETE, ["files", id]) => files::delete(s, id),
        (&Method::POST, ["batches"]) => batch::create(s, body).await,
        (&Method::GET, ["batches"]) => batch::list(s, query),
        (&Method::GET, ["batches", id]) => batch::get(s, id).await,
        (&Method::POST, ["batches", id, "cancel"]) => batch::cancel(s, id),
        _ => Err(OaiError::not_found(format!(
            "Invalid URL ({method} /v1/{})",
            rest.join("/")
        ))),
    }
}
