//! The one classifier: every Gemini failure (HTTP status + body + headers,
//! transport errors, undecodable bodies, per-item batch errors) becomes a
//! [`ProviderError`] here and nowhere else (protocol §2, §3.6).

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

use super::wire::{ErrorEnvelope, RpcStatus};
use crate::provider::transport::truncate;
pub use crate::provider::transport::{classify_io, classify_json_error, classify_transport};
use crate::provider::{ErrorClass, ProviderError, Reason};

/// What kind of endpoint failed, because a 404 means different things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// `models/{model}:…` (generateContent, batchGenerateContent): a 404
    /// is an unknown model, so nothing in the run can succeed.
    Model,
    /// A batch, file or upload resource: a 404 is about that resource only.
    Resource,
}

/// Classify a non-200 HTTP answer.
pub fn classify_http(status: u16, headers: &HeaderMap, body: &[u8], site: Site) -> ProviderError {
    let header_delay = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
    let rpc = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .and_then(|e| e.error);
    let rpc = match rpc {
        Some(rpc) => rpc,
        // Not the google.rpc envelope (proxy page, empty body): classify by
        // status alone and keep a snippet of what came back.
        None => RpcStatus {
            code: Some(i64::from(status)),
            message: Some(body_snippet(body)),
            ..RpcStatus::default()
        },
    };
    classify_parts(Some(status), &rpc, header_delay, site).with_status(status)
}

/// Classify a per-item batch error (`code` is the numeric gRPC code there,
/// §3.6). A code of 100 or more is read as an HTTP status, so a server that
/// writes HTTP codes into items is still understood.
pub fn classify_item_error(rpc: &RpcStatus) -> ProviderError {
    let http = rpc
        .code
        .filter(|c| (100..600).contains(c))
        .and_then(|c| u16::try_from(c).ok());
    let mut e = classify_parts(http, rpc, None, Site::Resource);
    // The batch was created with this key, so an auth-, precondition- or
    // model-style error on one item concerns that item (a file it names,
    // say), not the run. A per-day quota still stops the run.
    if e.class == ErrorClass::RunTerminal && e.reason != Reason::DailyQuotaExhausted {
        e.class = ErrorClass::JobTerminal;
    }
    e
}

/// The gRPC canonical code name for a numeric gRPC code.
fn grpc_name(code: i64) -> Option<&'static str> {
    Some(match code {
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => return None,
    })
}

/// The canonical code name implied by an HTTP status (used when the body
/// carries none).
fn http_default_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        402 | 429 => "RESOURCE_EXHAUSTED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 => "UNAVAILABLE",
        500..=599 => "INTERNAL",
        _ => "UNKNOWN",
    }
}

/// The shared decision table.
fn classify_parts(
    http: Option<u16>,
    rpc: &RpcStatus,
    header_delay: Option<Duration>,
    site: Site,
) -> ProviderError {
    let message = rpc.message.as_deref().unwrap_or("").trim();
    let name: String = rpc
        .status
        .as_deref()
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .or_else(|| match http {
            Some(h) => Some(http_default_name(h).to_string()),
            None => rpc.code.and_then(grpc_name).map(str::to_string),
        })
        .unwrap_or_else(|| "UNKNOWN".to_string());
    let detail = truncate(match http {
        Some(h) => format!("HTTP {h} {name}: {message}"),
        None => match rpc.code {
            Some(c) => format!("code {c} {name}: {message}"),
            None => format!("{name}: {message}"),
        },
    });
    let delay = || {
        retry_info_delay(&rpc.details)
            .or_else(|| retry_delay_from_message(message))
            .or(header_delay)
    };
    let retry = |reason: Reason| ProviderError::retryable(reason, detail.clone(), delay());

    if let Some(status) = http {
        return match status {
            400 => match name.as_str() {
                "FAILED_PRECONDITION" => ProviderError::run_terminal(Reason::Other, detail),
                // Enqueued-token cap breaches may come back this way
                // (UNCONFIRMED, §5): waiting for other jobs to finish helps.
                "RESOURCE_EXHAUSTED" => rate_limited(rpc, &detail, delay()),
                _ if is_invalid_key(rpc, message) => {
                    ProviderError::run_terminal(Reason::Unauthenticated, detail)
                }
                _ => ProviderError::job_terminal(Reason::InvalidArgument, detail),
            },
            401 | 403 => ProviderError::run_terminal(Reason::Unauthenticated, detail),
            402 => ProviderError::run_terminal(Reason::CreditExhausted, detail),
            404 => not_found(site, message, detail),
            408 => retry(Reason::Timeout),
            413 => ProviderError::job_terminal(Reason::InvalidArgument, detail),
            429 => rate_limited(rpc, &detail, delay()),
            499 => retry(Reason::Connection),
            500..=599 => retry(Reason::ServerError),
            _ if (400..500).contains(&status) => ProviderError::job_terminal(Reason::Other, detail),
            // 1xx/2xx/3xx where 200 was required: the protocol promises
            // nothing else, so treat it like a garbled answer.
            _ => retry(Reason::BadResponse),
        };
    }

    match name.as_str() {
        "INVALID_ARGUMENT" | "OUT_OF_RANGE" => {
            if is_invalid_key(rpc, message) {
                ProviderError::run_terminal(Reason::Unauthenticated, detail)
            } else {
                ProviderError::job_terminal(Reason::InvalidArgument, detail)
            }
        }
        "RESOURCE_EXHAUSTED" => rate_limited(rpc, &detail, delay()),
        "DEADLINE_EXCEEDED" => retry(Reason::Timeout),
        "INTERNAL" | "UNAVAILABLE" | "UNKNOWN" | "ABORTED" | "DATA_LOSS" => {
            retry(Reason::ServerError)
        }
        "CANCELLED" => retry(Reason::Connection),
        "PERMISSION_DENIED" | "UNAUTHENTICATED" => {
            ProviderError::run_terminal(Reason::Unauthenticated, detail)
        }
        "FAILED_PRECONDITION" => ProviderError::run_terminal(Reason::Other, detail),
        "NOT_FOUND" => not_found(site, message, detail),
        _ => ProviderError::job_terminal(Reason::Other, detail),
    }
}

fn not_found(site: Site, message: &str, detail: String) -> ProviderError {
    match site {
        // A create whose input file vanished also hits a model path; only
        // call it an unknown model when the message does not name a file.
        Site::Model if message.contains("files/") && !message.contains("models/") => {
            ProviderError::retryable(Reason::Other, detail, None)
        }
        Site::Model => ProviderError::run_terminal(Reason::ModelNotFound, detail),
        Site::Resource => ProviderError::job_terminal(Reason::Other, detail),
    }
}

/// 429 / RESOURCE_EXHAUSTED: per-day quotas stop the run, the rest retry.
fn rate_limited(rpc: &RpcStatus, detail: &str, delay: Option<Duration>) -> ProviderError {
    if let Some(v) = daily_violation(&rpc.details) {
        let mut d = format!("daily quota exhausted (quotaId {}", v.quota_id);
        if let Some(m) = &v.metric {
            d.push_str(&format!(", metric {m}"));
        }
        if let Some(m) = &v.model {
            d.push_str(&format!(", model {m}"));
        }
        d.push_str(
            "); retrying today is pointless: per-day quotas reset at midnight Pacific time. ",
        );
        d.push_str(detail);
        return ProviderError::run_terminal(Reason::DailyQuotaExhausted, truncate(d));
    }
    ProviderError::retryable(Reason::RateLimited, detail.to_string(), delay)
}

struct Violation {
    quota_id: String,
    metric: Option<String>,
    model: Option<String>,
}

fn detail_type(d: &Value) -> &str {
    d.get("@type").and_then(Value::as_str).unwrap_or("")
}

/// The first `QuotaFailure` violation whose `quotaId` is per day.
fn daily_violation(details: &[Value]) -> Option<Violation> {
    details
        .iter()
        .filter(|d| detail_type(d).ends_with("google.rpc.QuotaFailure"))
        .filter_map(|d| d.get("violations").and_then(Value::as_array))
        .flatten()
        .find_map(|v| {
            let id = v
                .get("quotaId")
                .or_else(|| v.get("quota_id"))
                .and_then(Value::as_str)?;
            id.contains("PerDay").then(|| Violation {
                quota_id: id.to_string(),
                metric: v
                    .get("quotaMetric")
                    .or_else(|| v.get("quota_metric"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                model: v
                    .get("quotaDimensions")
                    .or_else(|| v.get("quota_dimensions"))
                    .and_then(|d| d.get("model"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
}

/// The invalid-key answer is a 400 on the wire but fatal for the run.
fn is_invalid_key(rpc: &RpcStatus, message: &str) -> bool {
    let by_info = rpc.details.iter().any(|d| {
        detail_type(d).ends_with("google.rpc.ErrorInfo")
            && d.get("reason")
                .and_then(Value::as_str)
                .is_some_and(|r| r.starts_with("API_KEY_"))
    });
    let lower = message.to_ascii_lowercase();
    by_info || lower.contains("api key not valid") || lower.contains("api key expired")
}

/// `google.rpc.RetryInfo.retryDelay` from `error.details[]`.
pub fn retry_info_delay(details: &[Value]) -> Option<Duration> {
    details
        .iter()
        .filter(|d| detail_type(d).ends_with("google.rpc.RetryInfo"))
        .find_map(|d| {
            let v = d.get("retryDelay").or_else(|| d.get("retry_delay"))?;
            match v {
                Value::String(s) => parse_proto_duration(s),
                // Binary-style {seconds, nanos}, should a relay re-encode it.
                Value::Object(o) => {
                    let secs = o.get("seconds").and_then(|s| {
                        s.as_u64()
                            .or_else(|| s.as_str().and_then(|t| t.parse().ok()))
                    });
                    let nanos = o.get("nanos").and_then(Value::as_u64).unwrap_or(0);
                    let nanos = u32::try_from(nanos.min(999_999_999)).unwrap_or(0);
                    Some(Duration::new(secs.unwrap_or(0), nanos))
                }
                _ => None,
            }
        })
}

/// A protobuf Duration string: decimal seconds with an `s` suffix
/// (`"43.23s"`, `"21926s"`, `"0.000001s"`); `ms` is tolerated.
pub fn parse_proto_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(v * scale).ok()
}

/// "Please retry in 1.68122827s." / "retry in 500.5ms" inside a message.
pub fn retry_delay_from_message(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let start = lower.find("retry in ")? + "retry in ".len();
    let rest = &lower[start..];
    let num_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (num, unit) = rest.split_at(num_len);
    let v: f64 = num.trim_end_matches('.').parse().ok()?;
    let scale = if unit.starts_with("ms") {
        0.001
    } else if unit.starts_with('s') {
        1.0
    } else if unit.starts_with("m") {
        60.0
    } else {
        return None;
    };
    Duration::try_from_secs_f64(v * scale).ok()
}

/// A `Retry-After` value: delay seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).ok())
            .flatten();
    }
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER.parse_timestamp(v).ok()?;
    let diff = at.duration_since(now);
    // A date in the past means "now".
    Some(Duration::try_from(diff).unwrap_or(Duration::ZERO))
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

    const QUOTA_429: &str = r#"{"error":{"code":429,
 "message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. ...\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.0-flash\nPlease retry in 1.68122827s.",
 "status":"RESOURCE_EXHAUSTED",
 "details":[
  {"@type":"type.googleapis.com/google.rpc.Help",
   "links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},
  {"@type":"type.googleapis.com/google.rpc.QuotaFailure",
   "violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests",
                  "quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                  "quotaDimensions":{"location":"global","model":"gemini-2.0-flash"},
                  "quotaValue":"10"}]},
  {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"43.23s"}]}}"#;

    #[test]
    fn per_minute_429_is_retryable_with_retry_info_delay() {
        let e = http(429, QUOTA_429);
        assert_eq!(e.reason, Reason::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_millis(43_230)));
        assert_eq!(e.http_status, Some(429));
        assert!(e.detail.contains("You exceeded your current quota"));
    }

    #[test]
    fn message_delay_is_the_fallback() {
        let body = QUOTA_429.replace(
            r#",
  {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"43.23s"}"#,
            "",
        );
        let e = http(429, &body);
        assert_eq!(e.reason, Reason::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_nanos(1_681_228_270)));
    }

    #[test]
    fn per_day_429_stops_the_run() {
        let body = QUOTA_429.replace(
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            "GenerateRequestsPerDayPerProjectPerModel",
        );
        let e = http(429, &body);
        assert_eq!(e.class, ErrorClass::RunTerminal);
        assert_eq!(e.reason, Reason::DailyQuotaExhausted);
        assert!(
            e.detail
                .contains("GenerateRequestsPerDayPerProjectPerModel")
        );
        assert!(e.detail.contains("gemini-2.0-flash"));
        assert!(e.detail.contains("generate_content_free_tier_requests"));
        assert!(e.detail.contains("pointless"));
    }

    #[test]
    fn capacity_429_without_details_uses_backoff() {
        let e = http(
            429,
            r#"{"error":{"code":429,"message":"Resource exhausted. Please try again later.","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!(e.reason, Reason::RateLimited);
        assert_eq!(e.class, ErrorClass::Retryable { retry_after: None });
    }

    #[test]
    fn retry_after_header_is_the_last_fallback() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        let e = classify_http(
            503,
            &h,
            br#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
            Site::Model,
        );
        assert_eq!(e.reason, Reason::ServerError);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn invalid_key_400_is_run_terminal() {
        let e = http(
            400,
            r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
              "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com",
                "metadata":{"service":"generativelanguage.googleapis.com"}},
               {"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"API key not valid. Please pass a valid API key."}]}}"#,
        );
        assert_eq!(e.class, ErrorClass::RunTerminal);
        assert_eq!(e.reason, Reason::Unauthenticated);
        // ErrorInfo alone is enough.
        let e = http(
            400,
            r#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT",
              "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
        );
        assert_eq!(e.reason, Reason::Unauthenticated);
    }

    #[test]
    fn plain_400_is_job_terminal_and_keeps_the_message() {
        let e = http(
            400,
            r#"{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"bogus\" at 'generation_config': Cannot find field.","status":"INVALID_ARGUMENT"}}"#,
        );
        assert_eq!(e.class, ErrorClass::JobTerminal);
        assert_eq!(e.reason, Reason::InvalidArgument);
        assert!(e.detail.contains("Unknown name \"bogus\""));
        let e = http(
            400,
            r#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#,
        );
        assert_eq!(e.class, ErrorClass::RunTerminal);
    }

    #[test]
    fn auth_credit_and_model_errors_stop_the_run() {
        let e = http(
            403,
            r#"{"error":{"code":403,"message":"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.","status":"PERMISSION_DENIED"}}"#,
        );
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::RunTerminal, Reason::Unauthenticated)
        );
        let e = http(401, "");
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::RunTerminal, Reason::Unauthenticated)
        );
        let e = http(
            402,
            r#"{"error":{"code":402,"message":"credit","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::RunTerminal, Reason::CreditExhausted)
        );
        let e = http(
            404,
            r#"{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.","status":"NOT_FOUND"}}"#,
        );
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::RunTerminal, Reason::ModelNotFound)
        );
        let e = classify_http(404, &HeaderMap::new(), b"", Site::Resource);
        assert_eq!(e.class, ErrorClass::JobTerminal);
    }

    #[test]
    fn server_errors_and_timeouts_retry() {
        for (status, name) in [
            (500, "INTERNAL"),
            (503, "UNAVAILABLE"),
            (504, "DEADLINE_EXCEEDED"),
        ] {
            let body =
                format!(r#"{{"error":{{"code":{status},"message":"x","status":"{name}"}}}}"#);
            let e = http(status, &body);
            assert_eq!(e.reason, Reason::ServerError, "{status}");
            assert!(e.is_retryable());
        }
        assert_eq!(
            http(502, "<html>Bad Gateway</html>").reason,
            Reason::ServerError
        );
        assert!(
            http(502, "<html>Bad Gateway</html>")
                .detail
                .contains("Bad Gateway")
        );
        assert_eq!(http(408, "").reason, Reason::Timeout);
    }

    #[test]
    fn batch_item_codes_are_grpc() {
        let item = |code: i64| RpcStatus {
            code: Some(code),
            message: Some("m".into()),
            ..RpcStatus::default()
        };
        let e = classify_item_error(&item(3));
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::JobTerminal, Reason::InvalidArgument)
        );
        let e = classify_item_error(&item(8));
        assert_eq!(e.reason, Reason::RateLimited);
        assert!(e.is_retryable());
        for c in [4, 13, 14] {
            assert!(classify_item_error(&item(c)).is_retryable(), "{c}");
        }
        assert_eq!(classify_item_error(&item(4)).reason, Reason::Timeout);
        assert_eq!(classify_item_error(&item(7)).class, ErrorClass::JobTerminal);
        let daily = RpcStatus {
            code: Some(8),
            message: Some("quota".into()),
            status: None,
            details: vec![
                serde_json::json!({"@type":"type.googleapis.com/google.rpc.QuotaFailure",
                "violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel"}]}),
            ],
        };
        let e = classify_item_error(&daily);
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::RunTerminal, Reason::DailyQuotaExhausted)
        );
        // An HTTP-style code still works.
        assert_eq!(classify_item_error(&item(429)).reason, Reason::RateLimited);
        assert_eq!(e.http_status, None);
    }

    #[test]
    fn retry_delay_parsers() {
        assert_eq!(
            parse_proto_duration("43.23s"),
            Some(Duration::from_millis(43_230))
        );
        assert_eq!(
            parse_proto_duration("21926s"),
            Some(Duration::from_secs(21_926))
        );
        assert_eq!(
            parse_proto_duration("0.000000001s"),
            Some(Duration::from_nanos(1))
        );
        assert_eq!(parse_proto_duration("-1s"), None);
        assert_eq!(
            retry_delay_from_message("…\nPlease retry in 1.68122827s."),
            Some(Duration::from_nanos(1_681_228_270))
        );
        assert_eq!(
            retry_delay_from_message("Please retry in 500.5ms"),
            Some(Duration::from_micros(500_500))
        );
        assert_eq!(retry_delay_from_message("please try again later"), None);
        let now: jiff::Timestamp = "2015-10-21T07:28:00Z".parse().unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        let obj = vec![
            serde_json::json!({"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":{"seconds":"2","nanos":500000000}}),
        ];
        assert_eq!(retry_info_delay(&obj), Some(Duration::from_millis(2500)));
    }

    #[test]
    fn json_errors_split_truncated_from_garbled() {
        let eof = serde_json::from_slice::<serde_json::Value>(b"{\"candidates\":[").unwrap_err();
        assert_eq!(classify_json_error(&eof, "x").reason, Reason::Connection);
        let bad = serde_json::from_slice::<serde_json::Value>(b"<html>").unwrap_err();
        assert_eq!(classify_json_error(&bad, "x").reason, Reason::BadResponse);
    }
}
