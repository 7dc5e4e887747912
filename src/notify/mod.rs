//! Telling others: a signed JSON summary POSTed to the campaign's
//! `[notify] webhook` when a run finishes.
//!
//! Decisions:
//! - The body is signed, not the URL: `X-Adloc-Signature: sha256=<hex>`
//!   is HMAC-SHA256 of the exact body bytes under the secret from the
//!   environment (the shape of GitHub's `X-Hub-Signature-256`, so existing
//!   verifiers fit). The body carries `sent_at` and a `delivery` id (also
//!   in `X-Adloc-Delivery`, the same on every retry) so a receiver can
//!   refuse stale replays and drop duplicates.
//! - A configured webhook without its secret is an input error before
//!   anything is sent ([`Webhook::resolve`]): an unsigned summary would
//!   teach receivers to accept unsigned ones.
//! - Delivery never changes the run's exit code and never waits long: a
//!   bounded number of attempts with a per-attempt timeout and short
//!   backoff (backon, as elsewhere). 5xx, 408, 429 and transport errors
//!   are retried; any other status is the receiver refusing, and retrying
//!   would not change its mind. A failure is a warning in the log.
//! - Logs name the endpoint by scheme, host and port only: webhook paths
//!   often carry tokens (chat relays put theirs there). The secret is never
//!   logged, printed or stored.
//! - The function is [`send`], independent of how the run went, so whoever
//!   finishes a campaign (a run today, a worker later) can call it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::Sha256;

use crate::campaign::NotifySettings;
use crate::domain::{Error, ExitCode, InputErrors};

/// The version of the JSON body; bumped on an incompatible change.
pub const SCHEMA_VERSION: u32 = 1;
/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Adloc-Signature";
/// The event header (`run.finished`).
pub const EVENT_HEADER: &str = "X-Adloc-Event";
/// The delivery id header: the same on every retry of one summary.
pub const DELIVERY_HEADER: &str = "X-Adloc-Delivery";

/// Reads one environment variable (the CLI passes its reader down; the
/// library reads no environment itself).
pub type SecretLookup = fn(&str) -> Option<SecretString>;

/// A webhook ready to send to: where, and the secret to sign with.
pub struct Webhook {
    url: reqwest::Url,
    secret: SecretString,
    timeout: Duration,
    attempts: u32,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("endpoint", &endpoint(&self.url))
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// The campaign's webhook with its secret, or `None` without `[notify]`.
    /// A secret variable that is unset or empty is an input error located
    /// at `secret_env` in campaign.toml.
    pub fn resolve(
        settings: Option<&NotifySettings>,
        lookup: SecretLookup,
    ) -> Result<Option<Webhook>, Error> {
        let Some(s) = settings else {
            return Ok(None);
        };
        let secret = lookup(&s.secret_env).filter(|v| !v.expose_secret().trim().is_empty());
        let Some(secret) = secret else {
            return Err(Error::Input(InputErrors(vec![s.secret_env_at.problem(
                format!(
                    "[notify] webhook is set, but the environment variable {} that holds its signing secret is not set (or empty); set it, or name another with notify.secret_env",
                    s.secret_env
                ),
            )])));
        };
        Ok(Some(Webhook {
            url: s.webhook.clone(),
            secret,
            timeout: s.timeout,
            attempts: s.attempts,
        }))
    }

    /// `scheme://host:port` of the endpoint, what logs may show.
    pub fn endpoint(&self) -> String {
        endpoint(&self.url)
    }
}

fn endpoint(url: &reqwest::Url) -> String {
    match url.port_or_known_default() {
        Some(p) => format!("{}://{}:{p}", url.scheme(), url.host_str().unwrap_or("")),
        None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
    }
}

/// Jobs by state, from the manifest's totals.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Live jobs.
    pub jobs: u64,
    /// Done (assets).
    pub done: u64,
    /// Failed.
    pub failed: u64,
    /// Blocked.
    pub blocked: u64,
    /// Not finished yet (pending, in flight, in a batch).
    pub pending: u64,
    /// Retired assets.
    pub retired: u64,
}

/// USD spent.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Spend {
    /// By this run.
    pub run_usd: f64,
    /// What the campaign's current assets cost (the manifest's `totals.cost_usd`).
    pub campaign_usd: f64,
}

/// What a finished run tells the webhook (the JSON body, with the
/// envelope fields [`send`] adds).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Campaign name.
    pub campaign: String,
    /// Nothing left pending: every job is done, failed or blocked.
    pub campaign_finished: bool,
    /// The process exit code of the run.
    pub exit_code: i32,
    /// The exit code's name (`success`, `partial_failure`, `run_refused`, …).
    pub outcome: &'static str,
    /// The reason code of an early stop or a failed run.
    pub reason: Option<String>,
    /// What went wrong, for a person (failed runs only).
    pub error: Option<String>,
    /// Jobs by state (`null` when the run failed before counting).
    pub counts: Option<Counts>,
    /// Spend.
    pub spend: Spend,
    /// Where the manifest is: a local path or an `s3://` / `gs://` URL
    /// (`null` when the run failed before writing it).
    pub manifest: Option<String>,
    /// Providers used.
    pub provider: Option<String>,
    /// Mode used.
    pub mode: Option<String>,
}

/// The stable name of an exit code.
pub fn outcome_name(code: ExitCode) -> &'static str {
    match code {
        ExitCode::Success => "success",
        ExitCode::Internal => "internal_error",
        ExitCode::InvalidInput => "invalid_input",
        ExitCode::PartialFailure => "partial_failure",
        ExitCode::RunRefused => "run_refused",
    }
}

impl Summary {
    /// The summary of a run that ended with an error.
    pub fn failed(campaign: &str, e: &Error) -> Summary {
        Summary {
            campaign: campaign.to_string(),
            campaign_finished: false,
            exit_code: e.exit_code().code(),
            outcome: outcome_name(e.exit_code()),
            reason: Some(e.reason().code().to_string()),
            error: Some(e.to_string()),
            counts: None,
            spend: Spend::default(),
            manifest: None,
            provider: None,
            mode: None,
        }
    }
}

/// The JSON body: an envelope around the summary.
#[derive(Serialize)]
struct Body<'a> {
    schema_version: u32,
    event: &'static str,
    delivery: &'a str,
    sent_at: String,
    #[serde(flatten)]
    summary: &'a Summary,
}

/// `sha256=<hex>`: HMAC-SHA256 of `body` under `secret`. (HMAC takes keys
/// of any length; the error exists for fixed-key MACs and is passed on
/// rather than assumed away.)
pub fn sign(secret: &[u8], body: &[u8]) -> Result<String, hmac::digest::InvalidLength> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// How a delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered 2xx.
    Delivered {
        /// Attempts used.
        attempts: u32,
    },
    /// Every attempt failed, or the receiver refused.
    Failed {
        /// Attempts used.
        attempts: u32,
        /// The last problem (no URL path, no secret).
        last_error: String,
    },
}

/// One attempt's failure.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("HTTP {0}")]
    Status(u16),
    #[error("{0}")]
    Transport(reqwest::Error),
}

impl AttemptError {
    fn retryable(&self) -> bool {
        match self {
            AttemptError::Status(s) => *s >= 500 || *s == 408 || *s == 429,
            AttemptError::Transport(_) => true,
        }
    }
}

/// A fresh delivery id: 16 random bytes in hex.
fn delivery_id() -> String {
    let mut bytes = [0u8; 16];
    for b in &mut bytes {
        *b = fastrand::u8(..);
    }
    hex::encode(bytes)
}

/// POST `summary` to the webhook, signed, retried with backoff within the
/// webhook's bounds. Never fails: the outcome is returned and logged.
pub async fn send(hook: &Webhook, summary: &Summary) -> Delivery {
    let delivery = delivery_id();
    let body = Body {
        schema_version: SCHEMA_VERSION,
        event: "run.finished",
        delivery: &delivery,
        sent_at: jiff::Timestamp::now().to_string(),
        summary,
    };
    let failed = |last_error: String| {
        tracing::warn!(endpoint = %hook.endpoint(), error = %last_error, "webhook not sent");
        Delivery::Failed {
            attempts: 0,
            last_error,
        }
    };
    let body = match serde_json::to_vec(&body) {
        Ok(b) => b,
        Err(e) => return failed(format!("cannot encode the summary: {e}")),
    };
    let signature = match sign(hook.secret.expose_secret().as_bytes(), &body) {
        Ok(s) => s,
        Err(e) => return failed(format!("cannot sign the summary: {e}")),
    };
    let client = match reqwest::Client::builder()
        .timeout(hook.timeout)
        .connect_timeout(hook.timeout)
        // A redirect would carry a signed body somewhere not configured.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("adloc/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return failed(format!("HTTP client setup failed: {e}")),
    };
    let attempts = AtomicU32::new(0);
    let once = || async {
        attempts.fetch_add(1, Ordering::Relaxed);
        let res = client
            .post(hook.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, "run.finished")
            .header(DELIVERY_HEADER, &delivery)
            .header(SIGNATURE_HEADER, &signature)
            .body(body.clone())
            .send()
            .await
            // reqwest's message names the URL, path and all: drop it.
            .map_err(|e| AttemptError::Transport(e.without_url()))?;
        let status = res.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(AttemptError::Status(status.as_u16()))
        }
    };
    let policy = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(2))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(hook.attempts.saturating_sub(1) as usize);
    let result = once
        .retry(policy)
        .when(AttemptError::retryable)
        .notify(|e, d| {
            tracing::info!(endpoint = %hook.endpoint(), error = %e, retry_in = ?d, "webhook attempt failed; retrying");
        })
        .await;
    let attempts = attempts.load(Ordering::Relaxed);
    match result {
        Ok(()) => {
            tracing::info!(endpoint = %hook.endpoint(), attempts, "run summary sent to the webhook");
            Delivery::Delivered { attempts }
        }
        Err(e) => {
            let last_error = e.to_string();
            tracing::warn!(
                endpoint = %hook.endpoint(),
                attempts,
                error = %last_error,
                "webhook delivery failed; the run's result is unchanged"
            );
            Delivery::Failed {
                attempts,
                last_error,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?").unwrap(),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn logs_name_the_endpoint_without_its_path() {
        let url = reqwest::Url::parse("https://hooks.example.com/T0/B1/token-abc?x=1").unwrap();
        assert_eq!(endpoint(&url), "https://hooks.example.com:443");
    }
}
