//! HTTP-level tests against a tiny scripted axum server: one fallback
//! handler per test, so each test states exactly what the server does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use secrecy::SecretString;

use super::response::tests::png_bytes;
use super::{GeminiConfig, GeminiProvider};
use crate::domain::{ImageSize, ModelId, ProofText};
use crate::provider::{
    BatchApi, BatchChunk, BatchItem, ErrorClass, ImageRequest, Provider, Reason, RemoteBatch,
    RemoteState,
};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

type Script = dyn Fn(&Seen, usize) -> Response + Send + Sync;

struct Fixture {
    script: Box<Script>,
    seen: Mutex<Vec<Seen>>,
}

async fn handle(State(f): State<Arc<Fixture>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body,
    };
    let n = {
        let mut log = f.seen.lock().unwrap();
        log.push(seen.clone());
        log.len() - 1
    };
    (f.script)(&seen, n)
}

/// Start a server; returns its base URL and the request log.
async fn serve(
    script: impl Fn(&Seen, usize) -> Response + Send + Sync + 'static,
) -> (String, Arc<Fixture>) {
    let fixture = Arc::new(Fixture {
        script: Box::new(script),
        seen: Mutex::new(Vec::new()),
    });
    let app = Router::new().fallback(handle).with_state(fixture.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), fixture)
}

fn provider(base: &str) -> GeminiProvider {
    let mut c = GeminiConfig::new(SecretString::from("test-key".to_string()));
    c.base_url = base.to_string();
    c.request_timeout = Duration::from_secs(5);
    c.upload_retry_delay = Duration::from_millis(1);
    GeminiProvider::new(c).unwrap()
}

fn json(status: u16, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Body::from(body.into()))
        .unwrap()
}

fn request(model: &str) -> ImageRequest {
    ImageRequest {
        model: model.parse::<ModelId>().unwrap(),
        prompt: "a red fox".into(),
        aspect_ratio: "1:1".parse().unwrap(),
        image_size: ImageSize::K1,
        quality: None,
        references: vec![],
        grounding: false,
        proof: ProofText::default(),
        edit: None,
        read_copy_side: None,
    }
}

fn image_response() -> String {
    format!(
        r#"{{"candidates":[{{"content":{{"role":"model","parts":[{{"inlineData":{{"mimeType":"image/png","data":"{}"}}}}]}},"finishReason":"STOP"}}],"usageMetadata":{{"promptTokenCount":5,"candidatesTokenCount":1290}},"modelVersion":"gemini-2.5-flash-image"}}"#,
        STANDARD.encode(png_bytes())
    )
}

#[tokio::test]
async fn realtime_sends_key_in_header_and_classifies_answers() {
    let (base, fx) = serve(|_, n| match n {
        0 => json(200, image_response()),
        1 => json(
            429,
            r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2.5s"}]}}"#,
        ),
        // A body cut short.
        2 => json(200, r#"{"candidates":[{"content":"#),
        // An error envelope wrapped in a 200 by some relay.
        3 => json(200, r#"{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}"#),
        _ => json(200, "<html>proxy</html>"),
    })
    .await;
    let p = provider(&base);
    assert_eq!(p.kind().as_str(), "gemini");
    assert!(p.batch().is_some());
    let req = request("gemini-2.5-flash-image");

    let g = p.generate(&req).await.unwrap();
    assert_eq!(g.bytes, png_bytes());
    assert_eq!(g.usage.unwrap().image_tokens, 1290);

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.reason, Reason::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_millis(2500)));
    assert_eq!(e.http_status, Some(429));

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.reason, Reason::Connection);
    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.reason, Reason::ServerError);
    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.reason, Reason::BadResponse);
    assert!(e.is_retryable());

    let seen = fx.seen.lock().unwrap();
    let first = &seen[0];
    assert_eq!(first.method, Method::POST);
    assert_eq!(
        first.path,
        "/v1beta/models/gemini-2.5-flash-image:generateContent"
    );
    assert_eq!(first.headers["x-goog-api-key"], "test-key");
    assert!(!first.query.contains("key"));
    assert_eq!(
        String::from_utf8(first.body.clone()).unwrap(),
        r#"{"contents":[{"role":"user","parts":[{"text":"a red fox"}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":"1:1"}}}"#
    );
    // Same request, same bytes.
    assert_eq!(seen[1].body, first.body);
}

#[tokio::test]
async fn connection_refused_is_retryable_and_errors_never_show_the_key() {
    // Bind then drop to get a port nobody listens on.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let p = provider(&format!("http://{addr}"));
    let e = p
        .generate(&request("gemini-2.5-flash-image"))
        .await
        .unwrap_err();
    assert_eq!(e.reason, Reason::Connection);
    assert!(e.is_retryable());
    assert!(!format!("{e:?} {e}").contains("test-key"));
    assert!(!format!("{p:?}").contains("test-key"));
}

/// Upload session state for the fixture.
#[derive(Default)]
struct Upload {
    received: Vec<u8>,
    broke_once: bool,
}

#[tokio::test]
async fn submit_uploads_resumably_then_creates_the_batch() {
    let up = Arc::new(Mutex::new(Upload::default()));
    let up2 = up.clone();
    let (base, fx) = serve(move |s, _| {
        let mut u = up2.lock().unwrap();
        let cmd = s
            .headers
            .get("x-goog-upload-command")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        match (s.path.as_str(), cmd.as_str()) {
            ("/upload/v1beta/files", "start") => {
                assert_eq!(s.headers["x-goog-api-key"], "test-key");
                assert_eq!(s.headers["x-goog-upload-protocol"], "resumable");
                // A foreign host: the client must swap in its base URL.
                Response::builder()
                    .status(200)
                    .header(
                        "x-goog-upload-url",
                        "https://upload.example.invalid/upload/v1beta/files?upload_id=s1&upload_protocol=resumable",
                    )
                    .header("x-goog-upload-status", "active")
                    .body(Body::from("{}"))
                    .unwrap()
            }
            ("/upload/v1beta/files", "query") => Response::builder()
                .status(200)
                .header("x-goog-upload-status", "active")
                .header("x-goog-upload-size-received", u.received.len().to_string())
                .body(Body::empty())
                .unwrap(),
            ("/upload/v1beta/files", c) if c.starts_with("upload") => {
                assert!(s.query.contains("upload_id=s1"));
                assert!(s.headers.get("x-goog-api-key").is_none());
                assert_eq!(
                    s.headers["content-length"].to_str().unwrap(),
                    s.body.len().to_string()
                );
                let off: usize = s.headers["x-goog-upload-offset"].to_str().unwrap().parse().unwrap();
                assert_eq!(off, u.received.len(), "resume offset");
                // Break the second chunk once, after keeping half of it.
                if off > 0 && !u.broke_once {
                    u.broke_once = true;
                    let half = s.body.len() / 2;
                    u.received.extend_from_slice(&s.body[..half]);
                    return json(503, r#"{"error":{"code":503,"message":"x","status":"UNAVAILABLE"}}"#);
                }
                u.received.extend_from_slice(&s.body);
                if c == "upload, finalize" {
                    Response::builder()
                        .status(200)
                        .header("x-goog-upload-status", "final")
                        .body(Body::from(r#"{"file":{"name":"files/abc123","mimeType":"jsonl","state":"ACTIVE"}}"#))
                        .unwrap()
                } else {
                    Response::builder()
                        .status(200)
                        .header("x-goog-upload-status", "active")
                        .body(Body::empty())
                        .unwrap()
                }
            }
            ("/v1beta/models/gemini-2.5-flash-image:batchGenerateContent", _) => {
                let v: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
                assert_eq!(v["batch"]["inputConfig"]["fileName"], "files/abc123");
                assert_eq!(v["batch"]["displayName"], "adloc-test");
                json(
                    200,
                    r#"{"name":"batches/b1","metadata":{"@type":"x","displayName":"adloc-test","state":"BATCH_STATE_PENDING","name":"batches/b1"}}"#,
                )
            }
            other => panic!("unexpected request {other:?}"),
        }
    })
    .await;
    let mut c = GeminiConfig::new(SecretString::from("test-key".to_string()));
    c.base_url = base;
    c.upload_chunk_bytes = 64;
    c.upload_retry_delay = Duration::from_millis(1);
    let p = GeminiProvider::new(c).unwrap();
    let chunk = BatchChunk {
        display_name: "adloc-test".into(),
        model: "gemini-2.5-flash-image".parse().unwrap(),
        items: (0..3)
            .map(|i| BatchItem {
                key: format!("job-{i}"),
                request: request("gemini-2.5-flash-image"),
            })
            .collect(),
    };
    let rb = p.submit(&chunk).await.unwrap();
    assert_eq!(
        rb,
        RemoteBatch {
            name: "batches/b1".into(),
            display_name: "adloc-test".into()
        }
    );
    let u = up.lock().unwrap();
    assert!(u.broke_once);
    let text = String::from_utf8(u.received.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["key"], format!("job-{i}"));
        assert_eq!(v["request"]["contents"][0]["parts"][0]["text"], "a red fox");
    }
    drop(u);
    let n = fx.seen.lock().unwrap().len();
    assert!(n >= 5, "{n} requests");
}

#[tokio::test]
async fn create_failure_is_not_retried_and_says_to_look_it_up() {
    let (base, fx) = serve(|s, _| {
        if s.path.ends_with(":batchGenerateContent") {
            json(
                503,
                r#"{"error":{"code":503,"message":"x","status":"UNAVAILABLE"}}"#,
            )
        } else {
            panic!("unexpected {}", s.path)
        }
    })
    .await;
    let mut c = GeminiConfig::new(SecretString::from("test-key".to_string()));
    c.base_url = base;
    c.inline_batch_max_bytes = Some(1 << 20);
    let p = GeminiProvider::new(c).unwrap();
    let chunk = BatchChunk {
        display_name: "adloc-inline".into(),
        model: "gemini-2.5-flash-image".parse().unwrap(),
        items: vec![BatchItem {
            key: "k".into(),
            request: request("gemini-2.5-flash-image"),
        }],
    };
    let e = p.submit(&chunk).await.unwrap_err();
    assert!(e.is_retryable());
    assert!(e.detail.contains("display name"), "{}", e.detail);
    let seen = fx.seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "create must be sent exactly once");
    let v: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        v["batch"]["inputConfig"]["requests"]["requests"][0]["metadata"]["key"],
        "k"
    );
}

#[tokio::test]
async fn find_poll_results_and_cancel() {
    let png = STANDARD.encode(png_bytes());
    let results = format!(
        "{}\n{}\n",
        format_args!(
            r#"{{"key":"a","response":{{"candidates":[{{"content":{{"parts":[{{"inlineData":{{"mimeType":"image/png","data":"{png}"}}}}]}},"finishReason":"STOP"}}]}}}}"#
        ),
        r#"{"error":{"code":8,"message":"Resource exhausted"},"key":"b"}"#
    );
    let (base, fx) = serve(move |s, _| match (s.method.as_str(), s.path.as_str()) {
        ("GET", "/v1beta/batches") if !s.query.contains("pageToken") => json(
            200,
            r#"{"operations":[{"name":"batches/old","metadata":{"displayName":"dn","state":"BATCH_STATE_FAILED"}},
               {"name":"batches/other","metadata":{"displayName":"x","state":"BATCH_STATE_RUNNING"}}],"nextPageToken":"p2"}"#,
        ),
        ("GET", "/v1beta/batches") => {
            assert!(s.query.contains("pageToken=p2"));
            json(
                200,
                r#"{"operations":[{"name":"batches/good","metadata":{"displayName":"dn","state":"JOB_STATE_RUNNING"}}]}"#,
            )
        }
        ("GET", "/v1beta/batches/good") => json(
            200,
            r#"{"name":"batches/good","metadata":{"displayName":"dn","state":"BATCH_STATE_SUCCEEDED","output":{"responsesFile":"files/batch-good"}},"done":true}"#,
        ),
        ("GET", "/v1beta/batches/gone") => json(
            404,
            r#"{"error":{"code":404,"message":"not found","status":"NOT_FOUND"}}"#,
        ),
        // The SDK path is missing here; the docs path serves the file.
        ("GET", "/v1beta/files/batch-good:download") => json(404, "{}"),
        ("GET", "/download/v1beta/files/batch-good:download") => {
            assert!(s.query.contains("alt=media"));
            assert_eq!(s.headers["x-goog-api-key"], "test-key");
            Response::builder()
                .status(200)
                .body(Body::from(results.clone()))
                .unwrap()
        }
        ("POST", "/v1beta/batches/good:cancel") => {
            assert!(s.body.is_empty());
            assert_eq!(s.headers["content-length"], "0");
            json(200, "{}")
        }
        ("POST", "/v1beta/batches/done:cancel") => json(
            400,
            r#"{"error":{"code":400,"message":"already finished","status":"FAILED_PRECONDITION"}}"#,
        ),
        other => panic!("unexpected {other:?}"),
    })
    .await;
    let p = provider(&base);

    let found = p.find("dn").await.unwrap().unwrap();
    assert_eq!(found.name, "batches/good");
    assert!(p.find("nobody").await.unwrap().is_none());

    assert_eq!(p.poll(&found).await.unwrap(), RemoteState::Succeeded);
    let gone = RemoteBatch {
        name: "batches/gone".into(),
        display_name: "g".into(),
    };
    assert!(matches!(
        p.poll(&gone).await.unwrap(),
        RemoteState::Failed(_)
    ));

    let outcomes: Vec<_> = p.results(&found).await.unwrap().collect().await;
    assert_eq!(outcomes.len(), 2);
    let a = outcomes[0].as_ref().unwrap();
    assert_eq!(a.key, "a");
    assert_eq!(a.result.as_ref().unwrap().bytes, png_bytes());
    let b = outcomes[1].as_ref().unwrap();
    assert_eq!(b.key, "b");
    assert_eq!(b.result.as_ref().unwrap_err().reason, Reason::RateLimited);

    p.cancel(&found).await.unwrap();
    let done = RemoteBatch {
        name: "batches/done".into(),
        display_name: "d".into(),
    };
    assert_eq!(
        p.cancel(&done).await.unwrap_err().class,
        ErrorClass::JobTerminal
    );
    assert!(fx.seen.lock().unwrap().len() >= 9);
}

#[test]
fn upload_urls_are_rebased_like_the_sdk_does() {
    let p = provider("http://127.0.0.1:9/prefix/");
    assert_eq!(
        p.rewrite_upload_url(
            "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=x"
        ),
        "http://127.0.0.1:9/prefix/upload/v1beta/files?upload_id=x"
    );
    assert_eq!(
        p.rewrite_upload_url("/prefix/upload/v1beta/files?upload_id=y"),
        "http://127.0.0.1:9/prefix/upload/v1beta/files?upload_id=y"
    );
    let p = provider("http://127.0.0.1:9");
    assert_eq!(
        p.rewrite_upload_url("http://other:1/upload/v1/files?upload_id=z"),
        "http://127.0.0.1:9/upload/v1/files?upload_id=z"
    );
}

/// A raw server that answers one GET with a body shorter than its
/// Content-Length, then closes: a download cut mid-way.
async fn serve_truncated(body: Vec<u8>, claimed_len: usize) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            req.extend_from_slice(&buf[..n]);
        }
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {claimed_len}\r\n\r\n");
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(&body).await.unwrap();
        sock.flush().await.unwrap();
        // Dropping the socket closes the connection early.
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn truncated_download_ends_with_a_retryable_error() {
    let line = format!(
        r#"{{"key":"a","response":{{"candidates":[{{"content":{{"parts":[{{"inlineData":{{"mimeType":"image/png","data":"{}"}}}}]}}}}]}}}}"#,
        STANDARD.encode(png_bytes())
    );
    let body = format!("{line}\n{line}\n").into_bytes();
    let cut = body.len() - 10;
    let base = serve_truncated(body[..cut].to_vec(), body.len()).await;
    let p = provider(&base);
    let reader = p.download_reader("files/batch-x").await.unwrap();
    let items: Vec<_> = super::stream_results_from_reader(reader).collect().await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].as_ref().unwrap().result.is_ok());
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(e.reason, Reason::Connection, "{e:?}");
    assert!(e.is_retryable());
}
