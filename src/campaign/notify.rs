//! `[notify]`: who to tell when a run finishes, validated into
//! [`NotifySettings`] with the line and column of every bad value.
//!
//! Decisions:
//! - `webhook` must be `https://`, except plain `http://` to a loopback
//!   host (`127.0.0.0/8`, `::1`, `localhost`): a local relay or a test
//!   receiver sees nothing a network could, anything else would send a
//!   signed summary in the clear.
//! - The URL may not carry `user:password@`: the body is authenticated by
//!   its signature, and a credential in the URL would end up in logs.
//! - The secret is never in campaign.toml (a file that gets committed):
//!   `secret_env` names the environment variable that holds it (default
//!   [`DEFAULT_SECRET_ENV`]). Whether it is set is checked when a run
//!   starts, before anything is sent, not here (loading reads files only).
//! - Delivery is bounded: `attempts` (1–10, default 4) of at most
//!   `timeout_s` (0 < t ≤ 30, default 5) each, with short backoff between
//!   them, so a dead endpoint costs a run seconds, never its exit code.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::span::{at, line_col};
use super::text_boxes::Num;
use crate::domain::{InputErrors, InputProblem};

/// The environment variable holding the webhook secret when `secret_env` is not set.
pub const DEFAULT_SECRET_ENV: &str = "ADLOC_WEBHOOK_SECRET";
/// Default `attempts`.
pub const DEFAULT_ATTEMPTS: u32 = 4;
/// The most `attempts` accepted.
pub const MAX_ATTEMPTS: u32 = 10;
/// Default `timeout_s`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `timeout_s` accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// `[notify]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    #[serde(default)]
    webhook: Option<Spanned<String>>,
    #[serde(default)]
    secret_env: Option<Spanned<String>>,
    #[serde(default)]
    timeout_s: Option<Spanned<Num>>,
    #[serde(default)]
    attempts: Option<Spanned<i64>>,
}

/// Where a value was written, for problems found after loading (a secret
/// variable that is not set when the run starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAt {
    /// campaign.toml.
    pub file: PathBuf,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl SourceAt {
    /// A problem at this place.
    pub fn problem(&self, message: impl Into<String>) -> InputProblem {
        InputProblem::at(&self.file, self.line, Some(self.column), message)
    }
}

/// The validated `[notify]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySettings {
    /// Where the run summary is POSTed.
    pub webhook: reqwest::Url,
    /// The environment variable that holds the signing secret.
    pub secret_env: String,
    /// Where `secret_env` (or, when absent, `webhook`) was written.
    pub secret_env_at: SourceAt,
    /// Time allowed for one attempt.
    pub timeout: Duration,
    /// Attempts in all (the first and its retries).
    pub attempts: u32,
}

/// Is `host` a loopback address or `localhost`?
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // IPv6 hosts come bracketed (`[::1]`).
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Check a webhook URL (the message says what is wrong and what is allowed).
fn parse_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| format!("notify.webhook `{raw}` is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "notify.webhook must use https:// (plain http:// is accepted only for a loopback host such as 127.0.0.1), got `{raw}`"
            ));
        }
        other => {
            return Err(format!(
                "notify.webhook must be an https:// URL, got scheme `{other}`"
            ));
        }
    }
    if url.host().is_none() {
        return Err(format!("notify.webhook `{raw}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "notify.webhook must not carry user:password@ (the body is signed instead; credentials in a URL end up in logs)"
                .into(),
        );
    }
    Ok(url)
}

/// Is `name` usable as an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`)?
fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Validate `[notify]`. `None` when there is nothing to send to (no table,
/// no `webhook`) or when a value is wrong (its problem is in `errors`).
pub(crate) fn parse(
    path: &Path,
    text: &str,
    raw: Spanned<RawNotify>,
    errors: &mut InputErrors,
) -> Option<NotifySettings> {
    let table_span = raw.span();
    let raw = raw.into_inner();
    let problems_before = errors.0.len();
    let Some(webhook) = raw.webhook else {
        if raw.secret_env.is_some() || raw.timeout_s.is_some() || raw.attempts.is_some() {
            errors.push(at(
                path,
                text,
                table_span,
                "[notify] needs `webhook = \"https://…\"`; without it the other keys do nothing"
                    .into(),
            ));
        }
        return None;
    };
    let url = match parse_url(webhook.get_ref()) {
        Ok(u) => Some(u),
        Err(msg) => {
            errors.push(at(path, text, webhook.span(), msg));
            None
        }
    };
    let (secret_env, secret_span) = match &raw.secret_env {
        Some(s) => (s.get_ref().trim().to_string(), s.span()),
        None => (DEFAULT_SECRET_ENV.to_string(), webhook.span()),
    };
    if !valid_env_name(&secret_env) {
        errors.push(at(
            path,
            text,
            secret_span.clone(),
            format!(
                "notify.secret_env `{secret_env}` must be the name of an environment variable ([A-Za-z_][A-Za-z0-9_]*), not the secret itself"
            ),
        ));
    }
    let timeout = match &raw.timeout_s {
        None => DEFAULT_TIMEOUT,
        Some(t) => {
            let v = t.get_ref().get();
            if v.is_finite() && v > 0.0 && v <= MAX_TIMEOUT.as_secs_f64() {
                Duration::from_secs_f64(v)
            } else {
                errors.push(at(
                    path,
                    text,
                    t.span(),
                    format!(
                        "notify.timeout_s must be more than 0 and at most {} seconds, got {v}",
                        MAX_TIMEOUT.as_secs()
                    ),
                ));
                DEFAULT_TIMEOUT
            }
        }
    };
    let attempts = match &raw.attempts {
        None => DEFAULT_ATTEMPTS,
        Some(a) => match u32::try_from(*a.get_ref()) {
            Ok(n) if (1..=MAX_ATTEMPTS).contains(&n) => n,
            _ => {
                errors.push(at(
                    path,
                    text,
                    a.span(),
                    format!(
                        "notify.attempts must be between 1 and {MAX_ATTEMPTS}, got {}",
                        a.get_ref()
                    ),
                ));
                DEFAULT_ATTEMPTS
            }
        },
    };
    if errors.0.len() > problems_before {
        return None;
    }
    let (line, column) = line_col(text, secret_span.start);
    Some(NotifySettings {
        webhook: url?,
        secret_env,
        secret_env_at: SourceAt {
            file: path.to_path_buf(),
            line,
            column,
        },
        timeout,
        attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str) -> (Option<NotifySettings>, InputErrors) {
        #[derive(Deserialize)]
        struct Doc {
            notify: Spanned<RawNotify>,
        }
        let doc: Doc = toml::from_str(toml_text).unwrap();
        let mut errors = InputErrors::default();
        let s = parse(
            Path::new("campaign.toml"),
            toml_text,
            doc.notify,
            &mut errors,
        );
        (s, errors)
    }

    #[test]
    fn an_https_webhook_gets_the_defaults() {
        let (s, e) = load("[notify]\nwebhook = \"https://hooks.example.com/adloc\"\n");
        assert!(e.is_empty(), "{e}");
        let s = s.unwrap();
        assert_eq!(s.webhook.as_str(), "https://hooks.example.com/adloc");
        assert_eq!(s.secret_env, DEFAULT_SECRET_ENV);
        assert_eq!((s.secret_env_at.line, s.secret_env_at.column), (2, 11));
        assert_eq!(s.attempts, DEFAULT_ATTEMPTS);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn plain_http_is_refused_unless_the_host_is_loopback() {
        for ok in [
            "http://127.0.0.1:9/x",
            "http://localhost:8080/",
            "http://[::1]:9/",
        ] {
            let (s, e) = load(&format!("[notify]\nwebhook = \"{ok}\"\n"));
            assert!(e.is_empty() && s.is_some(), "{ok}: {e}");
        }
        let (s, e) = load("[notify]\nwebhook = \"http://hooks.example.com/x\"\n");
        assert!(s.is_none());
        assert_eq!(e.0.len(), 1);
        assert_eq!((e.0[0].line, e.0[0].column), (Some(2), Some(11)));
        assert!(e.0[0].message.contains("https://"), "{}", e.0[0].message);
    }

    #[test]
    fn every_bad_value_is_reported_at_its_place() {
        let (s, e) = load(
            "[notify]\nwebhook = \"ftp://x\"\nsecret_env = \"hunter2 is my secret\"\ntimeout_s = 0\nattempts = 99\n",
        );
        assert!(s.is_none());
        let at: Vec<(Option<u64>, &str)> =
            e.0.iter()
                .map(|p| (p.line, p.message.split(' ').next().unwrap_or("")))
                .collect();
        assert_eq!(
            at,
            vec![
                (Some(2), "notify.webhook"),
                (Some(3), "notify.secret_env"),
                (Some(4), "notify.timeout_s"),
                (Some(5), "notify.attempts"),
            ]
        );
    }

    #[test]
    fn credentials_in_the_url_and_keys_without_a_webhook_are_refused() {
        let (_, e) = load("[notify]\nwebhook = \"https://u:p@hooks.example.com/\"\n");
        assert!(e.0[0].message.contains("user:password"), "{e}");
        let (s, e) = load("[notify]\nattempts = 2\n");
        assert!(s.is_none());
        assert!(e.0[0].message.contains("needs `webhook"), "{e}");
    }
}
