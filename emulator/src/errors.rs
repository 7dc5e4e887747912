//! The `google.rpc.Status` error envelope (protocol §2.1) and JSON replies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The content type Google sends on every JSON body.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// A JSON reply with Google's content type.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    resp
}

/// One API error, rendered as `{"error":{code,message,status,details}}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    /// HTTP status code (also the `code` field of the envelope).
    pub http: u16,
    /// Canonical gRPC status name.
    pub status: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `details[]` entries, each with an `@type`.
    pub details: Vec<Value>,
    /// Optional `Retry-After` header (Gemini never sends one; fault option).
    pub retry_after: Option<String>,
}

impl ApiError {
    pub(crate) fn new(http: u16, status: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            http,
            status,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "INVALID_ARGUMENT", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "NOT_FOUND", message)
    }

    pub(crate) fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(403, "PERMISSION_DENIED", message)
    }

    pub(crate) fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(400, "FAILED_PRECONDITION", message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "INTERNAL", message)
    }

    /// Set the `quotaValue` of a `QuotaFailure` detail and the limit in
    /// the message (a quota 429 says which limit was hit).
    pub(crate) fn with_quota_value(mut self, value: u32) -> Self {
        for d in &mut self.details {
            if let Some(vs) = d.get_mut("violations").and_then(Value::as_array_mut) {
                for v in vs {
                    v["quotaValue"] = Value::String(value.to_string());
                }
            }
        }
        self.message = self
            .message
            .replace(", limit: 20,", &format!(", limit: {value},"));
        self
    }

    pub(crate) fn with_detail(mut self, detail: Value) -> Self {
        self.details.push(detail);
        self
    }

    /// The numeric gRPC code for this status, as used inside batch results
    /// (protocol §2.4, §3.6), where `code` is not the HTTP code.
    pub(crate) fn grpc_code(&self) -> i64 {
        grpc_code(self.status)
    }

    /// The envelope as JSON.
    pub(crate) fn body(&self) -> Value {
        let mut inner = json!({
            "code": self.http,
            "message": self.message,
            "status": self.status,
        });
        if !self.details.is_empty() {
            inner["details"] = Value::Array(self.details.clone());
        }
        json!({ "error": inner })
    }

    /// The same error as a batch item status: numeric gRPC code.
    pub(crate) fn item_status(&self) -> Value {
        json!({
            "code": self.grpc_code(),
            "message": self.message,
            "status": self.status,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = json_response(status, &self.body());
        if let Some(ra) = &self.retry_after
            && let Ok(v) = HeaderValue::from_str(ra)
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Canonical gRPC status name → numeric code.
pub(crate) fn grpc_code(status: &str) -> i64 {
    match status {
        "OK" => 0,
        "CANCELLED" => 1,
        "UNKNOWN" => 2,
        "INVALID_ARGUMENT" => 3,
        "DEADLINE_EXCEEDED" => 4,
        "NOT_FOUND" => 5,
        "ALREADY_EXISTS" => 6,
        "PERMISSION_DENIED" => 7,
        "RESOURCE_EXHAUSTED" => 8,
        "FAILED_PRECONDITION" => 9,
        "ABORTED" => 10,
        "OUT_OF_RANGE" => 11,
        "UNIMPLEMENTED" => 12,
        "INTERNAL" => 13,
        "UNAVAILABLE" => 14,
        "DATA_LOSS" => 15,
        "UNAUTHENTICATED" => 16,
        _ => 2,
    }
}

/// The exact answer the real service gives a request with no key at all.
pub(crate) fn missing_key() -> ApiError {
    ApiError::permission_denied(
        "Method doesn't allow unregistered callers (callers without established identity). \
         Please use API Key or other form of API consumer identity to call this API.",
    )
}

/// The exact answer the real service gives a wrong key (400, not 401).
pub(crate) fn invalid_key() -> ApiError {
    let msg = "API key not valid. Please pass a valid API key.";
    ApiError::invalid(msg)
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }))
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": msg,
        }))
}

/// A protobuf `Duration` string: decimal seconds with up to 9 fraction
/// digits and an `s` suffix (`"1.5s"`, `"43s"`).
pub(crate) fn duration_string(secs: f64) -> String {
    let secs = if secs.is_finite() && secs > 0.0 {
        secs
    } else {
        0.0
    };
    let s = format!("{secs:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}s")
}

/// A per-minute (or per-day) quota 429 in the real shape (protocol §2.3).
pub(crate) fn quota_429(
    model: &str,
    retry_delay_s: f64,
    per_day: bool,
    bare: bool,
    retry_after_header: bool,
) -> ApiError {
    let (metric, quota_id, value) = if per_day {
        (
            "generativelanguage.googleapis.com/generate_requests_per_model_per_day",
            "GenerateRequestsPerDayPerProjectPerModel",
            "250",
        )
    } else {
        (
            "generativelanguage.googleapis.com/generate_requests_per_model",
            "GenerateRequestsPerMinutePerProjectPerModel",
            "20",
        )
    };
    let delay = duration_string(retry_delay_s);
    let mut err = if bare {
        // Capacity 429s have been seen without any details.
        ApiError::new(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource exhausted. Please try again later.",
        )
    } else {
        ApiError::new(
            429,
            "RESOURCE_EXHAUSTED",
            format!(
                "You exceeded your current quota, please check your plan and billing details. \
                 For more information on this error, head to: \
                 https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, \
                 head to: https://ai.dev/usage?tab=rate-limit. \n* Quota exceeded for metric: \
                 {metric}, limit: {value}, model: {model}\nPlease retry in {delay}."
            ),
        )
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
            }],
        }))
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{
                "quotaMetric": metric,
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": value,
            }],
        }))
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": delay,
        }))
    };
    if retry_after_header {
        err.retry_after = Some(format!("{}", retry_delay_s.max(0.0).ceil() as u64));
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_strings_look_like_protobuf_durations() {
        assert_eq!(duration_string(1.5), "1.5s");
        assert_eq!(duration_string(43.0), "43s");
        assert_eq!(duration_string(0.0), "0s");
        assert_eq!(duration_string(1.68122827), "1.68122827s");
    }
}
