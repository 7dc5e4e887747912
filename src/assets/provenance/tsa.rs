//! RFC 3161 time stamps on C2PA claim signatures (`ADLOC_C2PA_TSA_URL`).
//!
//! A trusted time stamp lets a verifier accept a claim after the signing
//! certificate has expired (C2PA 2.2 §10.3.2.5 "Time-stamps"; the SDK
//! puts the token in the COSE `sigTst2` header). The c2pa crate is built
//! without an HTTP client (no second TLS stack in the binary), so its
//! `Signer::send_timestamp_request` is answered here: the SDK's own request
//! body (`default_rfc3161_message`: a SHA-256 imprint of the claim
//! signature and a random nonce) is POSTed with adloc's reqwest, as RFC
//! 3161 §3.4 has it (`application/timestamp-query` in,
//! `application/timestamp-reply` out), retried on a connection failure, a
//! 429 or a 5xx, and the answer is checked before it goes into a file:
//! granted, the nonce echoed, the token's signature and imprint verified
//! by the SDK (`verify_time_stamp`, what its own HTTP path does).
//!
//! The URL is shown without user information or query (a TSA account's
//! credentials can travel there), and reqwest's errors lose their URL.

use std::sync::mpsc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// The request content type (RFC 3161 §3.4).
const QUERY: &str = "application/timestamp-query";
/// The answer content type (RFC 3161 §3.4).
const REPLY: &str = "application/timestamp-reply";
/// A token is a few KB; a TSA that sends more is not answering RFC 3161.
const MAX_REPLY: usize = 1024 * 1024;

/// Why no time stamp could be had. No variant carries the URL's secrets.
#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    /// The URL is not an `http` or `https` URL.
    #[error("not an http(s) URL: {0}")]
    Url(String),
    /// No answer (refused, reset, timed out), after retries.
    #[error("no answer from the time stamp authority: {0}")]
    Unreachable(String),
    /// An HTTP error status (after retries when it was 429 or 5xx).
    #[error("the time stamp authority answered HTTP {0}")]
    Status(u16),
    /// A 200 that is not a time-stamp reply.
    #[error("the time stamp authority's answer is not an RFC 3161 reply: {0}")]
    NotAReply(String),
    /// The TSA refused the request (its PKIStatus and failure bits).
    #[error("the time stamp authority refused the request: {0}")]
    Refused(String),
    /// A token that does not verify, or does not answer this request.
    #[error("the time stamp authority's token does not verify: {0}")]
    Invalid(String),
}

impl TsaError {
    /// Worth asking again: the TSA may answer a moment later.
    fn transient(&self) -> bool {
        match self {
            TsaError::Unreachable(_) => true,
            TsaError::Status(s) => *s == 429 || *s >= 500,
            _ => false,
        }
    }
}

/// One request to the worker thread, answered on `reply`.
struct Job {
    body: Vec<u8>,
    reply: mpsc::SyncSender<Result<Vec<u8>, TsaError>>,
}

/// A configured time-stamp authority.
pub struct TimeStampAuthority {
    /// Scheme, host, port and path: safe to print.
    shown: String,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for TimeStampAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeStampAuthority")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl TimeStampAuthority {
    /// A client for the TSA at `url`. Signing is synchronous and runs on
    /// whatever thread writes the file (an async worker included), so
    /// the requests go through a thread of their own with its own
    /// runtime, where a blocking wait cannot stall adloc's.
    pub fn new(url: &str) -> Result<TimeStampAuthority, TsaError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| TsaError::Url(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(TsaError::Url(format!("scheme {}", parsed.scheme())));
        }
        let shown = shown(&parsed);
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| TsaError::Unreachable(e.without_url().to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TsaError::Unreachable(format!("no runtime for the TSA client: {e}")))?;
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("adloc-tsa".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        let (client, url) = (client.clone(), parsed.clone());
                        tokio::spawn(async move {
                            let _ = job.reply.send(post(&client, &url, job.body).await);
                        });
                    }
                });
            })
            .map_err(|e| TsaError::Unreachable(format!("no thread for the TSA client: {e}")))?;
        Ok(TimeStampAuthority { shown, jobs })
    }

    /// The URL as it may be printed.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A checked DER `TimeStampResp` for `message` (the bytes the C2PA
    /// SDK wants time-stamped).
    pub fn stamp(&self, message: &[u8]) -> Result<Vec<u8>, TsaError> {
        let body = c2pa::crypto::time_stamp::default_rfc3161_message(message)
            .map_err(|e| TsaError::Invalid(format!("could not build the request: {e}")))?;
        let nonce = rasn::der::decode::<rasn_cms::tsp::TimeStampReq>(&body)
            .map_err(|e| TsaError::Invalid(format!("could not read the request back: {e}")))?
            .nonce;
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs
            .send(Job { body, reply })
            .map_err(|_| TsaError::Unreachable("the TSA client thread has stopped".into()))?;
        let token = answer
            .recv()
            .map_err(|_| TsaError::Unreachable("the TSA client thread has stopped".into()))??;
        check(&token, message, nonce.as_ref())?;
        Ok(token)
    }
}

/// `scheme://host[:port]/path`, without user information, query or
/// fragment.
fn shown(url: &reqwest::Url) -> String {
    let mut s = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        s.push_str(&format!(":{port}"));
    }
    s.push_str(url.path());
    s
}

/// One exchange, retried with backoff while the failure is transient.
async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    body: Vec<u8>,
) -> Result<Vec<u8>, TsaError> {
    let once = || async {
        let resp = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, QUERY)
            .body(body.clone())
            .send()
            .await
            .map_err(|e| TsaError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(TsaError::Status(status.as_u16()));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if content_type != REPLY {
            return Err(TsaError::NotAReply(format!(
                "Content-Type {content_type:?}"
            )));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| TsaError::Unreachable(e.without_url().to_string()))?;
        if bytes.len() > MAX_REPLY {
            return Err(TsaError::NotAReply(format!("{} bytes", bytes.len())));
        }
        Ok(bytes.to_vec())
    };
    once.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(4))
            .with_max_times(4)
            .with_jitter(),
    )
    .when(TsaError::transient)
    .await
}

/// The RFC 3161 PKIFailureInfo bits (§2.4.2) by position.
const FAILURES: [(usize, &str); 8] = [
    (0, "badAlg"),
    (2, "badRequest"),
    (5, "badDataFormat"),
    (14, "timeNotAvailable"),
    (15, "unacceptedPolicy"),
    (16, "unacceptedExtension"),
    (17, "addInfoNotAvailable"),
    (25, "systemFailure"),
];

/// `reply` is a granted token for `message` with the request's `nonce`,
/// and the SDK verifies its signature and imprint.
fn check(
    reply: &[u8],
    message: &[u8],
    nonce: Option<&rasn::types::Integer>,
) -> Result<(), TsaError> {
    use rasn_cms::tsp::{PkiStatus, TimeStampResp, TstInfo};
    let resp: TimeStampResp =
        rasn::der::decode(reply).map_err(|e| TsaError::NotAReply(e.to_string()))?;
    if !matches!(
        resp.status.status,
        PkiStatus::Granted | PkiStatus::GrantedWithMods
    ) {
        let mut why = vec![format!("{:?}", resp.status.status)];
        if let Some(bits) = &resp.status.fail_info {
            why.extend(
                FAILURES
                    .iter()
                    .filter(|(i, _)| bits.get(*i).is_some_and(|b| *b))
                    .map(|(_, name)| (*name).to_string()),
            );
        }
        if let Some(text) = &resp.status.status_string {
            why.extend(text.iter().map(|t| format!("{t:?}")));
        }
        return Err(TsaError::Refused(why.join(", ")));
    }
    let token = resp
        .time_stamp_token
        .ok_or_else(|| TsaError::Invalid("granted without a token".into()))?;
    let signed: rasn_cms::SignedData = rasn::der::decode(token.content.as_bytes())
        .map_err(|e| TsaError::Invalid(format!("the token is not CMS SignedData: {e}")))?;
    let tst: TstInfo = signed
        .encap_content_info
        .content
        .as_ref()
        .and_then(|c| rasn::der::decode(c).ok())
        .ok_or_else(|| TsaError::Invalid("the token holds no TSTInfo".into()))?;
    // RFC 3161 §2.4.2: the nonce MUST be echoed when the request had one.
    if tst.nonce.as_ref() != nonce {
        return Err(TsaError::Invalid("the nonce is not the request's".into()));
    }
    let mut log = c2pa::status_tracker::StatusTracker::default();
    let anyone = c2pa::crypto::cose::CertificateTrustPolicy::passthrough();
    c2pa::crypto::time_stamp::verify_time_stamp(reply, message, &anyone, &mut log, false)
        .map_err(|e| TsaError::Invalid(e.to_string()))?;
    Ok(())
}

/// adloc's signing key with the TSA in front of the SDK's time-stamp
/// request: everything else is the key's.
pub(super) struct Stamped {
    pub(super) key: c2pa::BoxedSigner,
    pub(super) tsa: TimeStampAuthority,
}

impl c2pa::Signer for Stamped {
    fn sign(&self, data: &[u8]) -> c2pa::Result<Vec<u8>> {
        self.key.sign(data)
    }

    fn alg(&self) -> c2pa::SigningAlg {
        self.key.alg()
    }

    fn certs(&self) -> c2pa::Result<Vec<Vec<u8>>> {
        self.key.certs()
    }

    /// The SDK's key signers already keep 10,000 bytes for a token.
    fn reserve_size(&self) -> usize {
        self.key.reserve_size()
    }

    fn ocsp_val(&self) -> Option<Vec<u8>> {
        self.key.ocsp_val()
    }

    fn time_authority_url(&self) -> Option<String> {
        Some(self.tsa.shown.clone())
    }

    fn send_timestamp_request(&self, message: &[u8]) -> Option<c2pa::Result<Vec<u8>>> {
        Some(self.tsa.stamp(message).map_err(|e| {
            c2pa::Error::TimeStampError(
                c2pa::crypto::time_stamp::TimeStampError::HttpConnectionError(format!(
                    "{}: {e}",
                    self.tsa.shown
                )),
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_keeps_no_credentials_or_query() {
        let url =
            reqwest::Url::parse("https://user:s3cret@tsa.example:8443/ts?token=abc#x").unwrap();
        assert_eq!(shown(&url), "https://tsa.example:8443/ts");
        assert!(matches!(
            TimeStampAuthority::new("ftp://tsa.example/"),
            Err(TsaError::Url(_))
        ));
    }

    #[test]
    fn an_unreachable_tsa_is_an_error_naming_no_secret() {
        // Port 9 (discard) on loopback: nothing listens.
        let tsa = TimeStampAuthority::new("http://user:s3cret@127.0.0.1:9/tsa?key=k3y").unwrap();
        let err = tsa.stamp(b"claim").unwrap_err();
        assert!(matches!(err, TsaError::Unreachable(_)), "{err}");
        let text = format!("{err} {tsa:?}");
        assert!(!text.contains("s3cret") && !text.contains("k3y"), "{text}");
    }
}
