//! The one classifier: every OpenAI failure (HTTP status + headers + body,
//! transport errors, undecodable bodies, per-line batch errors) becomes a
//! [`ProviderError`] here and nowhere else (protocol §3, §4.7).
//!
//! The decision rests on the status and on the error's `code` (then
//! `type`), never on message wording; the message is kept as the detail.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::wire::{ApiError, ErrorEnvelope};
use crate::provider::gemini::classify::parse_retry_after;
use crate::provider::pacing::RequestLimits;
use crate::provider::transport::truncate;
pub use crate::provider::transport::{classify_io, classify_json_error, classify_transport};
use crate::provider::{ErrorClass, ProviderError, Reason};

/// What kind of endpoint failed, because a 404 means different things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// `images/generations`, `images/edits`, `batches` create: a 404 is an
    /// unknown model (or a base URL without `/v1`), so nothing in the run
    /// can succeed.
    Model,
    /// A batch or file resource: a 404 is about that resource only.
    Resource,
}

/// What the response headers say about retrying.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryHints {
    /// `retry-after-ms`, else `retry-after` (seconds or an HTTP date).
    pub delay: Option<Duration>,
    /// `x-should-retry: true|false`.
    pub should_retry: Option<bool>,
}

impl RetryHints {
    /// Read the hints from response headers (every header optional).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let ms = text("retry-after-ms").and_then(parse_retry_after_ms);
        let secs = || {
            headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()))
        };
        let should_retry = match text("x-should-retry")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        RetryHints {
            delay: ms.or_else(secs),
            should_retry,
        }
    }
}

/// The `x-ratelimit-*-requests` headers, sent on successes and on 429s
/// ("Rate limits in headers",
/// https://platform.openai.com/docs/guides/rate-limits): the request limit,
/// what is left of it, and the time until it resets, a Go duration such as
/// `1s`, `6m0s` or `20ms`. `None` when none is there (they are sometimes
/// absent); a header that does not parse is left out, not an error.
pub fn request_limits(headers: &HeaderMap) -> Option<RequestLimits> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let limits = RequestLimits {
        limit: text("x-ratelimit-limit-requests").and_then(|v| v.parse().ok()),
        remaining: text("x-ratelimit-remaining-requests").and_then(|v| v.parse().ok()),
        reset: text("x-ratelimit-reset-requests").and_then(parse_go_duration),
    };
    (!limits.is_empty()).then_some(limits)
}

/// `retry-after-ms`: milliseconds, possibly fractional.
pub fn parse_retry_after_ms(v: &str) -> Option<Duration> {
    let ms: f64 = v.trim().parse().ok()?;
    (ms.is_finite() && ms >= 0.0)
        .then(|| Duration::try_from_secs_f64(ms / 1000.0).ok())
        .flatten()
}

/// Classify a non-2xx HTTP answer.
pub fn classify_http(status: u16, headers: &HeaderMap, body: &[u8], site: Site) -> ProviderError {
    let hints = RetryHints::from_headers(headers);
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let err = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .and_then(|e| e.error)
        // Not the OpenAI envelope (proxy page, empty body): classify by
        // status alone and keep a snippet of what came back.
        .unwrap_or_else(|| ApiError {
            message: Some(body_snippet(body)),
            ..ApiError::default()
        });
    let mut e = classify_error(Some(status), &err, hints, site);
    if let Some(id) = request_id {
        e.detail = truncate(format!("{} (request {id})", e.detail));
    }
    e.limits = request_limits(headers);
    e
}

/// The decision table, shared by realtime answers, batch lines (`status`
/// from `response.status_code`) and an error envelope found in a 200 body
/// (`status` `None`: decided by `code` and `type` alone).
pub fn classify_error(
    status: Option<u16>,
    err: &ApiError,
    hints: RetryHints,
    site: Site,
) -> ProviderError {
    let code = err.code.as_deref().unwrap_or("").trim();
    let kind = err.kind.as_deref().unwrap_or("").trim();
    let message = err.message.as_deref().unwrap_or("").trim();
    let label = if !code.is_empty() {
        code
    } else if !kind.is_empty() {
        kind
    } else {
        "error"
    };
    let mut detail = match status {
        Some(s) => format!("HTTP {s} {label}: {message}"),
        None => format!("{label}: {message}"),
    };
    if let Some(p) = err.param.as_deref().filter(|p| !p.is_empty()) {
        detail.push_str(&format!(" (param {p})"));
    }
    let detail = truncate(detail);
    let delay = hints.delay.or_else(|| delay_from_message(message));
    let retry = |reason: Reason| ProviderError::retryable(reason, detail.clone(), delay);
    let is = |c: &str| code == c || kind == c;

    let mut e = if is("moderation_blocked") || is("content_policy_violation") {
        blocked(err, &detail)
    } else if is("insufficient_quota") {
        ProviderError::run_terminal(
            Reason::CreditExhausted,
            format!("OpenAI quota or credit is used up: {detail}"),
        )
    } else if is("invalid_api_key") {
        ProviderError::run_terminal(Reason::Unauthenticated, detail.clone())
    } else if is("model_not_found") {
        ProviderError::run_terminal(Reason::ModelNotFound, detail.clone())
    } else {
        match status {
            Some(400 | 413 | 422) => {
                ProviderError::job_terminal(Reason::InvalidArgument, detail.clone())
            }
            Some(401) => ProviderError::run_terminal(Reason::Unauthenticated, detail.clone()),
            Some(403) => ProviderError::run_terminal(
                Reason::Unauthenticated,
                format!(
                    "no access to this model from this organization, project or region: {detail}"
                ),
            ),
            Some(404) => match site {
                Site::Model => ProviderError::run_terminal(
                    Reason::ModelNotFound,
                    format!("{detail} (is the model served, and does the base URL end in /v1?)"),
                ),
                Site::Resource => ProviderError::job_terminal(Reason::Other, detail.clone()),
            },
            Some(408) => retry(Reason::Timeout),
            Some(409) => retry(Reason::ServerError),
            Some(429) => retry(Reason::RateLimited),
            Some(504) => retry(Reason::Timeout),
            Some(500..=599) => retry(Reason::ServerError),
            Some(s) if (400..500).contains(&s) => {
                ProviderError::job_terminal(Reason::Other, detail.clone())
            }
            // 1xx/3xx where a 2xx was required: a garbled answer.
            Some(_) => retry(Reason::BadResponse),
            None => match code {
                "rate_limit_exceeded" => retry(Reason::RateLimited),
                "server_error" | "server_is_overloaded" | "slow_down" => retry(Reason::ServerError),
                _ => retry(Reason::BadResponse),
            },
        }
    };
    // `x-should-retry: false` wins over the status (the SDK's rule, §3.5).
    // `true` only revives an otherwise unclassified 4xx (`Other`): it never
    // turns a policy block, a refused argument or a run stop into a retry.
    match hints.should_retry {
        Some(false) if e.is_retryable() => {
            e.class = ErrorClass::JobTerminal;
            e.detail = truncate(format!("{} [x-should-retry: false]", e.detail));
        }
        Some(true) if e.class == ErrorClass::JobTerminal && e.reason == Reason::Other => {
            e.class = ErrorClass::Retryable { retry_after: delay };
        }
        _ => {}
    }
    match status {
        Some(s) => e.with_status(s),
        None => e,
    }
}

/// A policy block: job-terminal, the categories as the block reason.
fn blocked(err: &ApiError, detail: &str) -> ProviderError {
    let md = err.moderation_details.as_ref();
    let categories = md.map(|m| m.categories.join(",")).unwrap_or_default();
    let block_reason = if categories.is_empty() {
        err.code
            .clone()
            .or_else(|| err.kind.clone())
            .unwrap_or_else(|| "moderation_blocked".into())
    } else {
        categories
    };
    let stage = md
        .and_then(|m| m.moderation_stage.as_deref())
        .map(|s| format!(" at the {s} stage"))
        .unwrap_or_default();
    ProviderError::job_terminal(
        Reason::BlockedPrompt,
        truncate(format!(
            "blocked by the safety system{stage} ({block_reason}): {detail}"
        )),
    )
    .with_block_reason(block_reason)
}

/// Classify a per-line batch failure that has no HTTP response (§4.7):
/// `batch_expired` and `batch_cancelled` mean the item never ran, so it is
/// resubmitted; anything else is about the item.
pub fn classify_line_error(err: &ApiError) -> ProviderError {
    let code = err.code.as_deref().unwrap_or("").trim();
    let message = err.message.as_deref().unwrap_or("").trim();
    let detail = truncate(format!(
        "{}: {message}",
        if code.is_empty() { "error" } else { code }
    ));
    match code {
        "batch_expired" | "batch_cancelled" => {
            ProviderError::retryable(Reason::BatchFailed, detail, None)
        }
        _ => match classify_error(None, err, RetryHints::default(), Site::Resource) {
            e if e.reason == Reason::BadResponse => {
                ProviderError::job_terminal(Reason::Other, detail)
            }
            e => e,
        },
    }
}

/// "Please try again in 12s." / "in 1.5s" / "in 300ms" / "in 6m0s" inside
/// a rate-limit message, the fallback when no header gives a delay.
pub fn delay_from_message(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let start = lower.find("try again in ")? + "try again in ".len();
    let rest = &lower[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .unwrap_or(rest.len());
    parse_go_duration(rest[..end].trim_end_matches('.'))
}

/// A Go-style duration (`1s`, `6m0s`, `1.5s`, `300ms`, `1h2m`), as the
/// `x-ratelimit-reset-*` headers and messages write them.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let v: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += v * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Replace every occurrence of `secret` in the error's texts.
pub fn scrub(mut e: ProviderError, secret: &str) -> ProviderError {
    if secret.len() >= 4 {
        if e.detail.contains(secret) {
            e.detail = e.detail.replace(secret, "[REDACTED]");
        }
        if let Some(b) = &mut e.block_reason
            && b.contains(secret)
        {
            *b = b.replace(secret, "[REDACTED]");
        }
    }
    e
}

fn body_snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(500)]);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, body: &str) -> ProviderError {
        classify_http(status, &HeaderMap::new(), body.as_bytes(), Site::Model)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    const RATE_429: &str = r#"{"error":{"message":"Rate limit reached for gpt-image-2 in organization org-x on images per min (IPM): Limit 5, Used 5, Requested 1. Please try again in 12s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;

    #[test]
    fn rate_limit_prefers_retry_after_ms_then_retry_after_then_the_message() {
        let e = classify_http(
            429,
            &headers(&[("retry-after-ms", "1500.5"), ("retry-after", "9")]),
            RATE_429.as_bytes(),
            Site::Model,
        );
        assert_eq!(e.reason, Reason::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_micros(1_500_500)));
        assert_eq!(e.http_status, Some(429));
        let e = classify_http(
            429,
            &headers(&[("retry-after", "9")]),
            RATE_429.as_bytes(),
            Site::Model,
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(9)));
        let e = http(429, RATE_429);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(12)));
        let in_the_past = classify_http(
            429,
            &headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
            b"",
            Site::Model,
        );
        assert_eq!(in_the_past.retry_after(), Some(Duration::ZERO));
    }

    #[test]
    fn the_request_limit_headers_are_read_for_the_pacer() {
        let h = headers(&[
            ("x-ratelimit-limit-requests", "600"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-limit-tokens", "150000"),
        ]);
        let want = RequestLimits {
            limit: Some(600),
            remaining: Some(0),
            reset: Some(Duration::from_secs(360)),
        };
        assert_eq!(request_limits(&h), Some(want));
        // On a 429 they travel with the classified error.
        let e = classify_http(429, &h, RATE_429.as_bytes(), Site::Model);
        assert_eq!(e.reason, Reason::RateLimited);
        assert_eq!(e.limits, Some(want));
        // Every header is optional; one that does not parse is left out.
        assert_eq!(request_limits(&headers(&[])), None);
        assert_eq!(
            request_limits(&headers(&[
                ("x-ratelimit-limit-requests", "lots"),
                ("x-ratelimit-reset-requests", "20ms"),
            ])),
            Some(RequestLimits {
                limit: None,
                remaining: None,
                reset: Some(Duration::from_millis(20)),
            })
        );
        assert_eq!(
            http(500, r#"{"error":{"message":"x","type":"server_error"}}"#).limits,
            None
        );
    }

    #[test]
    fn insufficient_quota_stops_the_run_as_credit_exhausted() {
        let e = http(
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::RunTerminal, Reason::CreditExhausted)
        );
        assert!(e.detail.contains("exceeded your current quota"));
    }

    #[test]
    fn moderation_blocks_are_job_terminal_with_categories() {
        let e = http(
            400,
            r#"{"error":{"message":"Your request was rejected by the safety system. safety_violations=[sexual].","type":"image_generation_user_error","param":null,"code":"moderation_blocked","moderation_details":{"moderation_stage":"output","categories":["sexual","violence"]}}}"#,
        );
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::JobTerminal, Reason::BlockedPrompt)
        );
        assert_eq!(e.block_reason.as_deref(), Some("sexual,violence"));
        assert!(e.detail.contains("output stage"), "{}", e.detail);
        let e = http(
            400,
            r#"{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}"#,
        );
        assert_eq!(e.reason, Reason::BlockedPrompt);
        assert_eq!(e.block_reason.as_deref(), Some("content_policy_violation"));
    }

    #[test]
    fn other_400s_are_invalid_argument_with_openais_message() {
        let e = http(
            400,
            r#"{"error":{"message":"Unknown parameter: 'response_format'.","type":"invalid_request_error","param":"response_format","code":"unknown_parameter"}}"#,
        );
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::JobTerminal, Reason::InvalidArgument)
        );
        assert!(e.detail.contains("Unknown parameter: 'response_format'."));
        assert!(e.detail.contains("param response_format"));
    }

    #[test]
    fn auth_access_and_model_errors_stop_the_run() {
        let e = http(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-abc***wxyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
        );
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::RunTerminal, Reason::Unauthenticated)
        );
        let e = http(
            403,
            r#"{"error":{"message":"Country, region, or territory not supported","type":"request_forbidden","param":null,"code":"unsupported_country_region_territory"}}"#,
        );
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::RunTerminal, Reason::Unauthenticated)
        );
        assert!(e.detail.contains("no access"), "{}", e.detail);
        let e = http(
            404,
            r#"{"error":{"message":"The model `gpt-image-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
        );
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::RunTerminal, Reason::ModelNotFound)
        );
        let e = classify_http(404, &HeaderMap::new(), b"{}", Site::Resource);
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::JobTerminal, Reason::Other)
        );
    }

    #[test]
    fn conflicts_timeouts_and_server_errors_retry() {
        assert_eq!(http(408, "").reason, Reason::Timeout);
        assert!(http(409, "").is_retryable());
        for s in [500, 502, 503] {
            let e = http(
                s,
                r#"{"error":{"message":"The engine is currently overloaded","type":"server_error","param":null,"code":null}}"#,
            );
            assert_eq!(e.reason, Reason::ServerError, "{s}");
            assert!(e.is_retryable());
        }
        assert_eq!(http(504, "<html>gateway</html>").reason, Reason::Timeout);
        assert!(
            http(502, "<html>Bad Gateway</html>")
                .detail
                .contains("Bad Gateway")
        );
    }

    #[test]
    fn x_should_retry_false_overrides_the_status() {
        let e = classify_http(
            503,
            &headers(&[("x-should-retry", "false")]),
            b"",
            Site::Model,
        );
        assert_eq!(e.class, ErrorClass::JobTerminal);
        assert_eq!(e.reason, Reason::ServerError);
        let e = classify_http(
            429,
            &headers(&[("x-should-retry", "true")]),
            br#"{"error":{"code":"insufficient_quota","message":"q"}}"#,
            Site::Model,
        );
        assert_eq!(
            e.class,
            ErrorClass::RunTerminal,
            "true never revives a run stop"
        );
        let e = classify_http(
            418,
            &headers(&[("x-should-retry", "true"), ("retry-after-ms", "5")]),
            b"{}",
            Site::Model,
        );
        assert_eq!(e.retry_after(), Some(Duration::from_millis(5)));
        let e = classify_http(
            400,
            &headers(&[("x-should-retry", "true")]),
            br#"{"error":{"code":"moderation_blocked","message":"no"}}"#,
            Site::Model,
        );
        assert_eq!(e.class, ErrorClass::JobTerminal, "a block is never retried");
    }

    #[test]
    fn request_id_is_kept_in_the_detail() {
        let e = classify_http(
            500,
            &headers(&[("x-request-id", "req_abc")]),
            b"",
            Site::Model,
        );
        assert!(e.detail.contains("req_abc"), "{}", e.detail);
    }

    #[test]
    fn batch_line_errors() {
        let err = |code: &str| ApiError {
            code: Some(code.into()),
            message: Some("m".into()),
            ..ApiError::default()
        };
        for c in ["batch_expired", "batch_cancelled"] {
            let e = classify_line_error(&err(c));
            assert_eq!(e.reason, Reason::BatchFailed);
            assert!(e.is_retryable());
        }
        let e = classify_line_error(&err("something_new"));
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::JobTerminal, Reason::Other)
        );
        assert_eq!(
            classify_line_error(&err("moderation_blocked")).reason,
            Reason::BlockedPrompt
        );
    }

    #[test]
    fn delay_parsers() {
        assert_eq!(
            parse_retry_after_ms("300"),
            Some(Duration::from_millis(300))
        );
        assert_eq!(parse_retry_after_ms("-1"), None);
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_go_duration("soon"), None);
        assert_eq!(
            delay_from_message("Please try again in 6m0s. Visit …"),
            Some(Duration::from_secs(360))
        );
        assert_eq!(delay_from_message("try later"), None);
    }

    #[test]
    fn scrub_removes_the_configured_key() {
        let e = ProviderError::run_terminal(Reason::Unauthenticated, "key sk-live-123456 bad");
        let e = scrub(e, "sk-live-123456");
        assert!(!e.detail.contains("sk-live-123456"));
        assert!(e.detail.contains("[REDACTED]"));
    }

    #[test]
    fn json_errors_split_truncated_from_garbled() {
        let eof = serde_json::from_slice::<serde_json::Value>(b"{\"data\":[").unwrap_err();
        assert_eq!(classify_json_error(&eof, "x").reason, Reason::Connection);
        let bad = serde_json::from_slice::<serde_json::Value>(b"<html>").unwrap_err();
        assert_eq!(classify_json_error(&bad, "x").reason, Reason::BadResponse);
    }
}
