//! Failures every HTTP vendor has in common: transport errors, broken
//! streams and bodies that are not JSON, classified one way for all
//! providers. Each vendor's own classifier handles its status codes and
//! error bodies and calls these for the rest.

use super::{ProviderError, Reason};

/// Longest detail kept from a provider message.
pub(crate) const MAX_DETAIL: usize = 2000;

/// Classify a transport failure (connect, timeout, reset, truncated body).
pub fn classify_transport(err: &reqwest::Error) -> ProviderError {
    // The URL in reqwest's message never carries the key (it travels
    // only in a header), so the message is safe to keep.
    let detail = error_chain(err);
    if err.is_timeout() {
        ProviderError::retryable(
            Reason::Timeout,
            format!("request timed out: {detail}"),
            None,
        )
    } else {
        ProviderError::retryable(
            Reason::Connection,
            format!("connection failed: {detail}"),
            None,
        )
    }
}

/// Classify an I/O error raised while streaming a body (the results file).
pub fn classify_io(err: &std::io::Error) -> ProviderError {
    if let Some(inner) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<reqwest::Error>())
    {
        return classify_transport(inner);
    }
    if err.kind() == std::io::ErrorKind::TimedOut {
        return ProviderError::retryable(Reason::Timeout, format!("read timed out: {err}"), None);
    }
    ProviderError::retryable(Reason::Connection, format!("read failed: {err}"), None)
}

/// Classify a 200 body that is not the promised JSON. A body that ends
/// early is a truncated transfer (`Connection`); anything else is
/// `BadResponse`. Both are retryable.
pub fn classify_json_error(err: &serde_json::Error, what: &str) -> ProviderError {
    if err.is_eof() {
        ProviderError::retryable(
            Reason::Connection,
            format!("{what}: body ended early (truncated): {err}"),
            None,
        )
    } else {
        ProviderError::retryable(
            Reason::BadResponse,
            format!("{what}: not the expected JSON: {err}"),
            None,
        )
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut src = err.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    truncate(out)
}

pub(crate) fn truncate(mut s: String) -> String {
    if s.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}
