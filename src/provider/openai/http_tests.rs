//! HTTP-level tests against tiny scripted axum servers on loopback: one
//! fallback handler per test, recording every request, so each test states
//! exactly what the server does. No emulator.

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
use serde_json::{Value, json};

use super::batch::{EDITS_ENDPOINT, GENERATIONS_ENDPOINT, endpoint_for};
use super::response::tests::png_bytes;
use super::{OpenAiConfig, OpenAiProvider};
use crate::domain::{ImageSize, ModelId, ProofText, Quality, ReferenceImage};
use crate::provider::{
    BatchApi, BatchChunk, BatchItem, ErrorClass, ImageRequest, Provider, Reason, RemoteBatch,
    RemoteState, Usage,
};

const KEY: &str = "sk-test-0123456789abcdef";

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

/// Start a server; returns its base URL (with `/v1`) and the request log.
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
    (format!("http://{addr}/v1"), fixture)
}

fn config(base: &str) -> OpenAiConfig {
    let mut c = OpenAiConfig::new(SecretString::from(KEY.to_string()));
    c.base_url = base.to_string();
    c.request_timeout = Duration::from_secs(5);
    c
}

fn provider(base: &str) -> OpenAiProvider {
    OpenAiProvider::new(config(base)).unwrap()
}

fn respond(status: u16, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-request-id", "req_0123")
        .body(Body::from(body.into()))
        .unwrap()
}

fn request(refs: usize) -> ImageRequest {
    ImageRequest {
        model: "gpt-image-2".parse::<ModelId>().unwrap(),
        prompt: "a red fox".into(),
        aspect_ratio: "1:1".parse().unwrap(),
        image_size: ImageSize::K1,
        quality: Some(Quality::High),
        references: (0..refs)
            .map(|i| ReferenceImage {
                mime_type: if i == 0 { "image/png" } else { "image/jpeg" }.into(),
                bytes: Arc::new(format!("ref-bytes-{i}").into_bytes()),
            })
            .collect(),
        grounding: false,
        proof: ProofText::default(),
        edit: None,
        read_copy_side: None,
    }
}

fn image_body() -> String {
    json!({
        "created": 1713833628, "background": "opaque", "output_format": "png",
        "size": "1024x1024", "quality": "high",
        "data": [{"b64_json": STANDARD.encode(png_bytes())}],
        "usage": {"input_tokens": 50, "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
                  "output_tokens": 4160, "total_tokens": 4210}
    })
    .to_string()
}

/// The `WxH` adloc must send for the test request.
fn expected_size() -> String {
    let (w, h) = crate::domain::gpt_size("1:1", ImageSize::K1).unwrap();
    format!("{w}x{h}")
}

/// A multipart part: (name, filename, content type, bytes).
type Part = (String, Option<String>, Option<String>, Vec<u8>);

fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<Part> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("boundary")
        .trim();
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + delim.len() <= body.len() {
        if body[i..].starts_with(&delim) {
            starts.push(i);
            i += delim.len();
        } else {
            i += 1;
        }
    }
    assert!(body[*starts.last().unwrap()..].starts_with(format!("--{boundary}--").as_bytes()));
    for w in starts.windows(2) {
        let chunk = &body[w[0] + delim.len() + 2..w[1] - 2];
        let sep = chunk.windows(4).position(|x| x == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(chunk[..sep].to_vec()).unwrap();
        let content = chunk[sep + 4..].to_vec();
        let attr = |k: &str| {
            head.split(&format!("{k}=\""))
                .nth(1)
                .map(|r| r.split('"').next().unwrap().to_string())
        };
        let ctype = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type: "))
            .map(str::to_string);
        parts.push((attr(" name").unwrap(), attr("filename"), ctype, content));
    }
    parts
}

#[tokio::test]
async fn generation_body_is_exactly_the_documented_fields_and_the_key_is_only_in_authorization() {
    let (base, fx) = serve(|_, _| respond(200, image_body())).await;
    let mut c = config(&base);
    c.organization = Some("org-abc".into());
    c.project = Some("proj_xyz".into());
    let p = OpenAiProvider::new(c).unwrap();
    assert_eq!(p.kind().as_str(), "openai");
    assert!(p.batch().is_some());

    let g = p.generate(&request(0)).await.unwrap();
    assert_eq!(g.bytes, png_bytes());
    assert_eq!(g.mime_type, "image/png");
    assert_eq!(g.verified_dims, Some((4, 2)));
    assert_eq!(
        g.usage,
        Some(Usage {
            prompt_tokens: 50,
            input_image_tokens: 40,
            image_tokens: 4160,
            text_tokens: 0,
            thought_tokens: 0
        })
    );

    let mut req = request(0);
    req.quality = None;
    p.generate(&req).await.unwrap();

    let seen = fx.seen.lock().unwrap();
    let first = &seen[0];
    assert_eq!(first.method, Method::POST);
    assert_eq!(first.path, "/v1/images/generations");
    assert_eq!(first.headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(
        body,
        json!({"model": "gpt-image-2", "prompt": "a red fox", "n": 1,
               "size": expected_size(), "quality": "high", "output_format": "png"})
    );
    assert!(body.get("response_format").is_none());
    let second: Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(second["quality"], "medium", "default quality");
    // The key travels only in Authorization.
    assert_eq!(first.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(first.headers["openai-organization"], "org-abc");
    assert_eq!(first.headers["openai-project"], "proj_xyz");
    for (name, value) in &first.headers {
        if name != "authorization" {
            assert!(!value.to_str().unwrap_or("").contains(KEY), "{name}");
        }
    }
    assert!(!first.query.contains(KEY) && !first.path.contains(KEY));
    assert!(!String::from_utf8_lossy(&first.body).contains(KEY));
    assert!(!format!("{p:?}").contains(KEY));
}

#[tokio::test]
async fn organization_and_project_headers_are_absent_when_unset() {
    let (base, fx) = serve(|_, _| respond(200, image_body())).await;
    provider(&base).generate(&request(0)).await.unwrap();
    let seen = fx.seen.lock().unwrap();
    assert!(seen[0].headers.get("openai-organization").is_none());
    assert!(seen[0].headers.get("openai-project").is_none());
}

#[tokio::test]
async fn edits_send_multipart_image_parts_with_the_reference_bytes() {
    let (base, fx) = serve(|_, _| respond(200, image_body())).await;
    let p = provider(&base);
    let req = request(2);
    assert_eq!(endpoint_for(&req), EDITS_ENDPOINT);
    assert_eq!(endpoint_for(&request(0)), GENERATIONS_ENDPOINT);
    let g = p.generate(&req).await.unwrap();
    assert_eq!(g.bytes, png_bytes());

    let seen = fx.seen.lock().unwrap();
    let s = &seen[0];
    assert_eq!(s.path, "/v1/images/edits");
    assert_eq!(s.headers["authorization"], format!("Bearer {KEY}"));
    let ct = s.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");
    let parts = multipart_parts(ct, &s.body);
    let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "model",
            "prompt",
            "n",
            "size",
            "quality",
            "output_format",
            "image[]",
            "image[]"
        ]
    );
    let text = |n: &str| {
        let p = parts.iter().find(|p| p.0 == n).unwrap();
        assert!(p.1.is_none());
        String::from_utf8(p.3.clone()).unwrap()
    };
    assert_eq!(text("model"), "gpt-image-2");
    assert_eq!(text("prompt"), "a red fox");
    assert_eq!(text("n"), "1");
    assert_eq!(text("size"), expected_size());
    assert_eq!(text("quality"), "high");
    assert_eq!(text("output_format"), "png");
    assert_eq!(parts[6].1.as_deref(), Some("image-1.png"));
    assert_eq!(parts[6].2.as_deref(), Some("image/png"));
    assert_eq!(parts[6].3, b"ref-bytes-0");
    assert_eq!(parts[7].1.as_deref(), Some("image-2.jpg"));
    assert_eq!(parts[7].2.as_deref(), Some("image/jpeg"));
    assert_eq!(parts[7].3, b"ref-bytes-1");
    assert!(!names.contains(&"response_format"));
}

#[tokio::test]
async fn too_many_or_unsupported_references_are_refused_before_sending() {
    let (base, fx) = serve(|_, _| respond(200, image_body())).await;
    let p = provider(&base);
    let e = p.generate(&request(17)).await.unwrap_err();
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::JobTerminal, Reason::InvalidArgument)
    );
    let mut req = request(1);
    req.references[0].mime_type = "image/gif".into();
    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.reason, Reason::InvalidArgument);
    assert!(fx.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn every_error_class_is_classified_over_http_and_an_echoed_key_is_scrubbed() {
    let (base, _fx) = serve(|_, n| match n {
        0 => Response::builder()
            .status(429)
            .header("content-type", "application/json")
            .header("retry-after-ms", "250.5")
            .header("retry-after", "30")
            .body(Body::from(
                r#"{"error":{"message":"Rate limit reached for gpt-image-2 on images per min. Please try again in 12s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            ))
            .unwrap(),
        1 => respond(
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        ),
        2 => respond(
            400,
            r#"{"error":{"message":"Your request was rejected by the safety system. safety_violations=[sexual].","type":"image_generation_user_error","param":null,"code":"moderation_blocked","moderation_details":{"moderation_stage":"output","categories":["sexual"]}}}"#,
        ),
        // The server echoes the key (real servers mask it; scrub anyway).
        3 => respond(
            401,
            format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#),
        ),
        4 => respond(
            404,
            r#"{"error":{"message":"The model `gpt-image-2` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
        ),
        5 => respond(
            503,
            r#"{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}"#,
        ),
        6 => Response::builder()
            .status(500)
            .header("x-should-retry", "false")
            .body(Body::from(r#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#))
            .unwrap(),
        7 => respond(
            400,
            r#"{"error":{"message":"Invalid value: '512x512'.","type":"invalid_request_error","param":"size","code":"invalid_value"}}"#,
        ),
        8 => respond(403, r#"{"error":{"message":"Country, region, or territory not supported","type":"request_forbidden","param":null,"code":null}}"#),
        9 => respond(200, r#"{"created":1,"data":[{"b64_json":"bm90IGFuIGltYWdl"}]}"#),
        10 => respond(200, r#"{"created":1,"data":[{"b64_"#),
        _ => respond(200, "<html>proxy</html>"),
    })
    .await;
    let p = provider(&base);
    let req = request(0);

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.reason, Reason::RateLimited);
    assert_eq!(
        e.retry_after(),
        Some(Duration::from_micros(250_500)),
        "retry-after-ms wins"
    );
    assert_eq!(e.http_status, Some(429));

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::RunTerminal, Reason::CreditExhausted)
    );

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::JobTerminal, Reason::BlockedPrompt)
    );
    assert_eq!(e.block_reason.as_deref(), Some("sexual"));

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::RunTerminal, Reason::Unauthenticated)
    );
    assert!(!format!("{e:?} {e}").contains(KEY), "{e}");
    assert!(e.detail.contains("[REDACTED]"));

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::RunTerminal, Reason::ModelNotFound)
    );

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.reason, Reason::ServerError);
    assert!(e.is_retryable());
    assert!(e.detail.contains("req_0123"), "{}", e.detail);

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.reason, Reason::ServerError);
    assert_eq!(e.class, ErrorClass::JobTerminal, "x-should-retry: false");

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::JobTerminal, Reason::InvalidArgument)
    );
    assert!(e.detail.contains("Invalid value: '512x512'."));

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::RunTerminal, Reason::Unauthenticated)
    );

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.reason, Reason::UndecodableImage);
    assert!(e.is_retryable());

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.reason, Reason::Connection, "truncated body");

    let e = p.generate(&req).await.unwrap_err();
    assert_eq!(e.reason, Reason::BadResponse);
    assert!(e.is_retryable());
}

#[tokio::test]
async fn connection_reset_and_refused_are_retryable_and_never_show_the_key() {
    // A server that accepts and closes at once: a reset mid-request.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            drop(sock);
        }
    });
    let p = provider(&format!("http://{addr}/v1"));
    let e = p.generate(&request(0)).await.unwrap_err();
    assert_eq!(e.reason, Reason::Connection, "{e:?}");
    assert!(e.is_retryable());
    assert!(!format!("{e:?} {e}").contains(KEY));

    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let p = provider(&format!("http://{addr}/v1"));
    let e = p.generate(&request(0)).await.unwrap_err();
    assert_eq!(e.reason, Reason::Connection);
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_stalled_server_times_out_retryably() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let mut c = config(&format!("http://{addr}/v1"));
    c.request_timeout = Duration::from_millis(200);
    let e = OpenAiProvider::new(c)
        .unwrap()
        .generate(&request(0))
        .await
        .unwrap_err();
    assert_eq!(e.reason, Reason::Timeout, "{e:?}");
    assert!(e.is_retryable());
}

fn chunk(refs: usize) -> BatchChunk {
    BatchChunk {
        display_name: "adloc-demo-abc123".into(),
        model: "gpt-image-2".parse().unwrap(),
        items: (0..3)
            .map(|i| BatchItem {
                key: format!("job-{i}"),
                request: request(refs),
            })
            .collect(),
    }
}

#[tokio::test]
async fn batch_submit_uploads_the_jsonl_then_creates_the_batch_with_the_tag() {
    let (base, fx) = serve(|s, _| match (s.method.as_str(), s.path.as_str()) {
        ("POST", "/v1/files") => respond(
            200,
            r#"{"id":"file-abc123","object":"file","bytes":1,"created_at":1,"filename":"batch.jsonl","purpose":"batch","status":"processed"}"#,
        ),
        ("POST", "/v1/batches") => respond(
            200,
            r#"{"id":"batch_0001","object":"batch","endpoint":"/v1/images/edits","input_file_id":"file-abc123","completion_window":"24h","status":"validating","created_at":1,"metadata":{"adloc_tag":"adloc-demo-abc123"}}"#,
        ),
        other => panic!("unexpected {other:?}"),
    })
    .await;
    let p = provider(&base);
    let rb = p.submit(&chunk(1)).await.unwrap();
    assert_eq!(
        rb,
        RemoteBatch {
            name: "batch_0001".into(),
            display_name: "adloc-demo-abc123".into()
        }
    );
    let seen = fx.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let up = &seen[0];
    assert_eq!(up.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(
        up.headers["content-length"].to_str().unwrap(),
        up.body.len().to_string()
    );
    let parts = multipart_parts(up.headers["content-type"].to_str().unwrap(), &up.body);
    assert_eq!(parts.len(), 2);
    assert_eq!(
        (parts[0].0.as_str(), parts[0].3.as_slice()),
        ("purpose", &b"batch"[..])
    );
    assert_eq!(parts[1].0, "file");
    assert_eq!(parts[1].1.as_deref(), Some("batch.jsonl"));
    let text = String::from_utf8(parts[1].3.clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let data_url = format!("data:image/png;base64,{}", STANDARD.encode(b"ref-bytes-0"));
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(
            *l,
            json!({"custom_id": format!("job-{i}"), "method": "POST", "url": "/v1/images/edits",
                   "body": {"model": "gpt-image-2", "prompt": "a red fox", "n": 1,
                            "size": expected_size(), "quality": "high", "output_format": "png",
                            "images": [{"image_url": data_url}]}})
        );
    }
    let create: Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(
        create,
        json!({"input_file_id": "file-abc123", "endpoint": "/v1/images/edits",
               "completion_window": "24h", "metadata": {"adloc_tag": "adloc-demo-abc123"}})
    );
}

#[tokio::test]
async fn batch_submit_of_generations_uses_the_generations_endpoint_and_refuses_mixed_chunks() {
    let (base, fx) = serve(|s, _| match s.path.as_str() {
        "/v1/files" => respond(200, r#"{"id":"file-1"}"#),
        "/v1/batches" => respond(
            500,
            r#"{"error":{"message":"x","type":"server_error","param":null,"code":null}}"#,
        ),
        other => panic!("unexpected {other}"),
    })
    .await;
    let p = provider(&base);
    // Create fails: retryable, sent once, and says to look the tag up.
    let e = p.submit(&chunk(0)).await.unwrap_err();
    assert!(e.is_retryable());
    assert!(e.detail.contains("adloc_tag"), "{}", e.detail);
    {
        let seen = fx.seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "create is sent exactly once");
        let parts = multipart_parts(
            seen[0].headers["content-type"].to_str().unwrap(),
            &seen[0].body,
        );
        let first: Value =
            serde_json::from_str(String::from_utf8_lossy(&parts[1].3).lines().next().unwrap())
                .unwrap();
        assert_eq!(first["url"], "/v1/images/generations");
        assert!(first["body"].get("images").is_none());
        let create: Value = serde_json::from_slice(&seen[1].body).unwrap();
        assert_eq!(create["endpoint"], "/v1/images/generations");
    }
    let mut mixed = chunk(0);
    mixed.items[2].request = request(1);
    let e = p.submit(&mixed).await.unwrap_err();
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::JobTerminal, Reason::InvalidArgument)
    );
    assert!(e.detail.contains("endpoint_for"), "{}", e.detail);
    let mut two_models = chunk(0);
    two_models.items[1].request.model = "gpt-image-2.6-flare".parse().unwrap();
    let e = p.submit(&two_models).await.unwrap_err();
    assert_eq!(e.reason, Reason::InvalidArgument);
    assert!(e.detail.contains("one model"), "{}", e.detail);
    assert_eq!(
        fx.seen.lock().unwrap().len(),
        2,
        "nothing sent for a mixed chunk"
    );
}

#[tokio::test]
async fn find_pages_through_the_list_to_the_tag() {
    let (base, fx) = serve(|s, _| {
        assert_eq!(s.path, "/v1/batches");
        assert!(s.query.contains("limit=100"), "{}", s.query);
        if s.query.contains("after=batch_b") {
            respond(
                200,
                r#"{"object":"list","data":[
                    {"id":"batch_c","status":"completed","metadata":{"adloc_tag":"wanted"}},
                    {"id":"batch_d","status":"failed","metadata":{"adloc_tag":"wanted"}}],
                   "first_id":"batch_c","last_id":"batch_d","has_more":false}"#,
            )
        } else {
            assert!(!s.query.contains("after"));
            respond(
                200,
                r#"{"object":"list","data":[
                    {"id":"batch_a","status":"in_progress","metadata":{"adloc_tag":"other"}},
                    {"id":"batch_b","status":"completed","metadata":null}],
                   "first_id":"batch_a","last_id":"batch_b","has_more":true}"#,
            )
        }
    })
    .await;
    let p = provider(&base);
    let found = p.find("wanted").await.unwrap().unwrap();
    assert_eq!(found.name, "batch_c", "newest match first");
    assert_eq!(found.display_name, "wanted");
    assert!(p.find("nobody").await.unwrap().is_none());
    assert_eq!(fx.seen.lock().unwrap().len(), 4, "two pages per lookup");
}

#[tokio::test]
async fn results_stream_output_and_error_files_and_classify_each_line() {
    let png = STANDARD.encode(png_bytes());
    let output = format!(
        "{}\n",
        json!({"id": "batch_req_1", "custom_id": "job-0",
               "response": {"status_code": 200, "request_id": "req_1",
                            "body": {"created": 1, "data": [{"b64_json": png}],
                                     "usage": {"input_tokens": 9, "output_tokens": 272}}},
               "error": null})
    );
    let errors = concat!(
        r#"{"id":"batch_req_2","custom_id":"job-1","response":{"status_code":400,"request_id":"req_2","body":{"error":{"message":"Your request was rejected by the safety system.","type":"image_generation_user_error","param":null,"code":"moderation_blocked","moderation_details":{"moderation_stage":"input","categories":["violence"]}}}},"error":null}"#,
        "\n\n",
        r#"{"id":"batch_req_3","custom_id":"job-2","response":null,"error":{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}}"#,
        "\n"
    );
    let (base, fx) = serve(move |s, _| match (s.method.as_str(), s.path.as_str()) {
        ("GET", "/v1/batches/batch_x") => respond(
            200,
            r#"{"id":"batch_x","status":"expired","output_file_id":"file-out","error_file_id":"file-err","metadata":{"adloc_tag":"t"}}"#,
        ),
        ("GET", "/v1/batches/batch_run") => respond(200, r#"{"id":"batch_run","status":"finalizing"}"#),
        ("GET", "/v1/batches/batch_gone") => respond(
            404,
            r#"{"error":{"message":"No batch found with id 'batch_gone'.","type":"invalid_request_error","param":null,"code":null}}"#,
        ),
        ("GET", "/v1/files/file-out/content") => {
            assert_eq!(s.headers["accept"], "application/binary");
            assert_eq!(s.headers["authorization"], format!("Bearer {KEY}"));
            Response::builder()
                .status(200)
                .header("content-type", "application/octet-stream")
                .body(Body::from(output.clone()))
                .unwrap()
        }
        ("GET", "/v1/files/file-err/content") => Response::builder()
            .status(200)
            .body(Body::from(errors))
            .unwrap(),
        ("POST", "/v1/batches/batch_x/cancel") => {
            assert!(s.body.is_empty());
            respond(200, r#"{"id":"batch_x","status":"cancelling"}"#)
        }
        other => panic!("unexpected {other:?}"),
    })
    .await;
    let p = provider(&base);
    let b = RemoteBatch {
        name: "batch_x".into(),
        display_name: "t".into(),
    };
    assert_eq!(p.poll(&b).await.unwrap(), RemoteState::Expired);
    let running = RemoteBatch {
        name: "batch_run".into(),
        display_name: "r".into(),
    };
    assert_eq!(p.poll(&running).await.unwrap(), RemoteState::Running);
    let gone = RemoteBatch {
        name: "batch_gone".into(),
        display_name: "g".into(),
    };
    assert!(matches!(
        p.poll(&gone).await.unwrap(),
        RemoteState::Failed(_)
    ));

    // An expired batch still yields its finished (billed) lines.
    let outcomes: Vec<_> = p.results(&b).await.unwrap().collect().await;
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    let ok = outcomes[0].as_ref().unwrap();
    assert_eq!(ok.key, "job-0");
    let g = ok.result.as_ref().unwrap();
    assert_eq!(g.bytes, png_bytes());
    assert_eq!(g.usage.unwrap().image_tokens, 272);
    let blocked = outcomes[1].as_ref().unwrap();
    assert_eq!(blocked.key, "job-1");
    let e = blocked.result.as_ref().unwrap_err();
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::JobTerminal, Reason::BlockedPrompt)
    );
    assert_eq!(e.block_reason.as_deref(), Some("violence"));
    let expired = outcomes[2].as_ref().unwrap();
    assert_eq!(expired.key, "job-2");
    let e = expired.result.as_ref().unwrap_err();
    assert_eq!(e.reason, Reason::BatchFailed);
    assert!(e.is_retryable());

    assert!(p.results(&running).await.err().unwrap().is_retryable());
    p.cancel(&b).await.unwrap();
    let paths: Vec<String> = fx
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert!(paths.contains(&"/v1/batches/batch_x/cancel".to_string()));
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
    });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn a_truncated_results_download_ends_with_a_retryable_error() {
    let line = json!({"custom_id": "a", "response": {"status_code": 200,
        "body": {"data": [{"b64_json": STANDARD.encode(png_bytes())}]}}, "error": null})
    .to_string();
    let body = format!("{line}\n{line}\n").into_bytes();
    let cut = body.len() - 10;
    let base = serve_truncated(body[..cut].to_vec(), body.len()).await;
    let p = provider(&base);
    let reader = p.download_reader("file-x").await.unwrap();
    let items: Vec<_> = p
        .stream_files(vec!["file-x".into()], reader)
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].as_ref().unwrap().result.is_ok());
    let e = items[1].as_ref().unwrap_err();
    assert!(matches!(e.reason, Reason::Connection), "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn the_request_limit_headers_of_a_success_reach_the_pacer_with_the_image() {
    // "Rate limits in headers" (https://platform.openai.com/docs/guides/rate-limits):
    // sent on successes too, which is where the pace is learned first.
    let (base, _fx) = serve(|_, n| {
        let mut r = respond(200, image_body());
        if n == 0 {
            let h = r.headers_mut();
            h.insert("x-ratelimit-limit-requests", "600".parse().unwrap());
            h.insert("x-ratelimit-remaining-requests", "599".parse().unwrap());
            h.insert("x-ratelimit-reset-requests", "100ms".parse().unwrap());
        }
        r
    })
    .await;
    let p = provider(&base);
    let g = p.generate(&request(0)).await.unwrap();
    assert_eq!(
        g.limits,
        Some(crate::provider::pacing::RequestLimits {
            limit: Some(600),
            remaining: Some(599),
            reset: Some(Duration::from_millis(100)),
        })
    );
    // Without the headers (they are sometimes absent) there is nothing to learn.
    let g = p.generate(&request(0)).await.unwrap();
    assert_eq!(g.limits, None);
}
