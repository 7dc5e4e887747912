//! `[notify] webhook`: the binary POSTs a signed run summary to a local
//! HTTP receiver that checks the HMAC-SHA256 signature over the exact body
//! bytes; a failing receiver is retried, a dead one costs seconds and never
//! the exit code, and the secret appears nowhere the run leaves traces.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::common::{Workspace, code, stderr, stdout};

const SECRET: &str = "whsec-4b1d-receiver-only-9c7e";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Default)]
struct Script {
    /// Statuses to answer with, in order; 204 once they run out.
    answers: VecDeque<u16>,
    got: Vec<Received>,
}

/// A webhook receiver on a loopback port, on its own runtime.
struct Receiver {
    /// Serves the receiver for as long as the test holds it.
    _rt: tokio::runtime::Runtime,
    url: String,
    script: Arc<Mutex<Script>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn hook(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut s = script.lock().unwrap();
    s.got.push(Received {
        headers,
        body: body.to_vec(),
    });
    let answer = s.answers.pop_front().unwrap_or(204);
    StatusCode::from_u16(answer).unwrap()
}

impl Receiver {
    fn start(answers: &[u16]) -> Receiver {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let script = Arc::new(Mutex::new(Script {
            answers: answers.iter().copied().collect(),
            got: Vec::new(),
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .route("/hooks/adloc/T0-path-token", axum::routing::post(hook))
            .with_state(script.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Receiver {
            _rt: rt,
            url: format!("http://{addr}/hooks/adloc/T0-path-token"),
            script,
            stop: Some(tx),
        }
    }

    fn got(&self) -> Vec<Received> {
        self.script.lock().unwrap().got.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The receiver's check: `X-Adloc-Signature` is `sha256=` + hex
/// HMAC-SHA256 of the body bytes as received.
fn signature_ok(r: &Received, secret: &str) -> bool {
    let Some(sig) = r
        .headers
        .get("x-adloc-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
    else {
        return false;
    };
    let Ok(sig) = hex::decode(sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&r.body);
    mac.verify_slice(&sig).is_ok()
}

/// A two-row, one-locale campaign told to report to `url`.
fn campaign_with_webhook(url: &str, extra: &str) -> Workspace {
    let ws = Workspace::new();
    ws.small_campaign(&[("r1", "a beach"), ("r2", "a city")]);
    ws.append_toml(&format!("\n[notify]\nwebhook = \"{url}\"\n{extra}"));
    ws
}

fn run_with_secret(ws: &Workspace, args: &[&str]) -> std::process::Output {
    let mut all = vec!["run", "campaigns/example"];
    all.extend(args);
    ws.adloc_env(&all, &[("ADLOC_WEBHOOK_SECRET", SECRET)])
}

fn json(r: &Received) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn a_finished_run_posts_a_summary_signed_over_its_exact_body() {
    let rx = Receiver::start(&[]);
    let ws = campaign_with_webhook(&rx.url, "");
    let o = run_with_secret(&ws, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = rx.got();
    assert_eq!(got.len(), 1, "one run, one delivery");
    let r = &got[0];
    assert!(signature_ok(r, SECRET), "signature does not verify");
    assert!(
        !signature_ok(r, "another-secret"),
        "a wrong secret must not verify"
    );
    let mut tampered = r.clone();
    tampered.body.push(b' ');
    assert!(
        !signature_ok(&tampered, SECRET),
        "the body is what is signed"
    );
    assert_eq!(r.headers["x-adloc-event"], "run.finished");
    assert_eq!(r.headers["content-type"], "application/json");

    let b = json(r);
    assert_eq!(b["schema_version"], 1);
    assert_eq!(b["event"], "run.finished");
    assert_eq!(
        b["delivery"],
        r.headers["x-adloc-delivery"].to_str().unwrap()
    );
    assert!(
        b["sent_at"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok()
    );
    assert_eq!(b["campaign"], "example");
    assert_eq!(b["exit_code"], 0);
    assert_eq!(b["outcome"], "success");
    assert_eq!(b["campaign_finished"], true);
    assert_eq!(b["reason"], serde_json::Value::Null);
    let counts = &b["counts"];
    assert_eq!(counts["done"], 2);
    assert_eq!(counts["jobs"], 2);
    for k in ["failed", "blocked", "pending", "retired"] {
        assert_eq!(counts[k], 0, "{k}");
    }
    assert!(b["spend"]["run_usd"].is_number());
    assert!(b["spend"]["campaign_usd"].is_number());
    let manifest = std::path::PathBuf::from(b["manifest"].as_str().unwrap());
    assert!(manifest.is_absolute(), "{}", manifest.display());
    assert_eq!(manifest, ws.out().join("manifest.json"));
    assert!(manifest.is_file());
    assert_eq!(b["provider"], "local");
    assert_eq!(b["mode"], "realtime");
}

#[test]
fn a_receiver_failing_with_500_is_retried_with_the_same_signed_delivery() {
    let rx = Receiver::start(&[500, 503]);
    let ws = campaign_with_webhook(&rx.url, "attempts = 4\n");
    let o = run_with_secret(&ws, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = rx.got();
    assert_eq!(got.len(), 3, "two failures, then accepted");
    for r in &got {
        assert!(signature_ok(r, SECRET));
        assert_eq!(r.body, got[0].body, "a retry sends the same body");
        assert_eq!(
            r.headers["x-adloc-delivery"],
            got[0].headers["x-adloc-delivery"]
        );
    }
    assert!(
        !stderr(&o).contains("webhook delivery failed"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_receiver_refusing_with_4xx_is_not_retried_and_the_run_still_succeeds() {
    let rx = Receiver::start(&[401]);
    let ws = campaign_with_webhook(&rx.url, "");
    let o = run_with_secret(&ws, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(rx.got().len(), 1);
    assert!(
        stderr(&o).contains("webhook delivery failed"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("HTTP 401"), "{}", stderr(&o));
}

#[test]
fn a_dead_or_hanging_endpoint_costs_seconds_and_never_the_exit_code() {
    // Refused: nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Hanging: the connection is accepted by the kernel, nobody answers.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_url = format!("http://{}/hook", hanging.local_addr().unwrap());
    for url in [format!("http://127.0.0.1:{port}/hook"), hanging_url] {
        let ws = campaign_with_webhook(&url, "attempts = 2\ntimeout_s = 1\n");
        let started = Instant::now();
        let o = run_with_secret(&ws, &[]);
        let took = started.elapsed();
        assert_eq!(code(&o), 0, "{url}: {}", stderr(&o));
        assert!(took < Duration::from_secs(20), "{url}: took {took:?}");
        let err = stderr(&o);
        assert!(err.contains("webhook delivery failed"), "{url}: {err}");
        assert!(err.contains("attempts=2"), "{url}: {err}");
        assert!(
            !err.contains("/hook"),
            "logs must not show the URL path: {err}"
        );
        assert!(ws.out().join("manifest.json").is_file());
    }
    drop(hanging);
}

#[test]
fn a_run_refused_for_its_budget_reports_exit_4_and_its_reason() {
    let rx = Receiver::start(&[]);
    let ws = campaign_with_webhook(&rx.url, "");
    let o = ws.adloc_env(
        &[
            "run",
            "campaigns/example",
            "--provider",
            "gemini",
            "--max-spend",
            "0.0001",
        ],
        &[
            ("ADLOC_WEBHOOK_SECRET", SECRET),
            ("GEMINI_API_KEY", "test-key"),
            ("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9"),
        ],
    );
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let got = rx.got();
    assert_eq!(got.len(), 1);
    assert!(signature_ok(&got[0], SECRET));
    let b = json(&got[0]);
    assert_eq!(b["exit_code"], 4);
    assert_eq!(b["outcome"], "run_refused");
    assert_eq!(b["reason"], "over_budget");
    assert_eq!(b["campaign_finished"], false);
    assert!(b["error"].as_str().unwrap().contains("exceeds the budget"));
}

#[test]
fn a_webhook_without_its_secret_is_an_input_error_before_anything_is_sent() {
    let rx = Receiver::start(&[]);
    let ws = campaign_with_webhook(&rx.url, "secret_env = \"SPRING_HOOK_SECRET\"\n");
    let o = ws.adloc_env(&["run", "campaigns/example"], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("SPRING_HOOK_SECRET"), "{err}");
    // Located at the secret_env value: the campaign file's last line.
    let toml = std::fs::read_to_string(ws.campaign().join("campaign.toml")).unwrap();
    let line = toml.lines().count();
    assert!(err.contains(&format!("campaign.toml:{line}:14")), "{err}");
    assert!(rx.got().is_empty(), "nothing may be sent");
    assert!(!ws.out().exists(), "nothing may be written");
    assert!(!ws.state().exists(), "no state may be written");
}

#[test]
fn the_webhook_secret_never_appears_in_output_logs_manifest_or_state() {
    let rx = Receiver::start(&[500]);
    let ws = campaign_with_webhook(&rx.url, "");
    let o = ws.adloc_env(
        &["run", "campaigns/example", "--log-format", "json"],
        &[("ADLOC_WEBHOOK_SECRET", SECRET), ("ADLOC_LOG", "debug")],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(rx.got().len(), 2);
    for (what, text) in [("stdout", stdout(&o)), ("stderr", stderr(&o))] {
        assert!(!text.contains(SECRET), "secret in {what}");
    }
    for r in rx.got() {
        assert!(
            !String::from_utf8_lossy(&r.body).contains(SECRET),
            "secret in the body"
        );
    }
    let needle = SECRET.as_bytes();
    for (path, bytes) in ws.all_bytes() {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "secret in {}",
            path.display()
        );
    }
}
