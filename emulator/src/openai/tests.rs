//! OpenAI surface tests over real HTTP (reqwest against a server on port 0).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{EmulatorConfig, EmulatorHandle, Faults, OpenAiFaults, spawn};

const KEY: &str = "sk-test-0123456789abcdef";

async fn start(openai: OpenAiFaults) -> (EmulatorHandle, reqwest::Client) {
    let h = spawn(
        EmulatorConfig {
            seed: 11,
            api_key: Some(KEY.into()),
            faults: Faults {
                openai,
                ..Faults::default()
            },
        },
        0,
    )
    .await
    .expect("spawn emulator");
    (h, reqwest::Client::new())
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body: Value = r.json().await.expect("json body");
    Reply {
        status,
        headers,
        body,
    }
}

async fn post(h: &EmulatorHandle, c: &reqwest::Client, path: &str, body: &Value) -> Reply {
    let r = c
        .post(format!("{}{path}", h.openai_base_url()))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .expect("send");
    reply(r).await
}

async fn get(h: &EmulatorHandle, c: &reqwest::Client, path: &str) -> Reply {
    let r = c
        .get(format!("{}{path}", h.openai_base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    reply(r).await
}

async fn generate(h: &EmulatorHandle, c: &reqwest::Client, body: Value) -> Reply {
    post(h, c, "/images/generations", &body).await
}

fn assert_error(r: &Reply, status: u16, kind: &str, code: &str, param: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    let e = &r.body["error"];
    for k in ["message", "type", "param", "code"] {
        assert!(e.get(k).is_some(), "missing {k}: {}", r.body);
    }
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(e["type"], kind, "{}", r.body);
    assert_eq!(e["code"], code, "{}", r.body);
    assert_eq!(
        e["param"],
        param.map_or(Value::Null, |p| json!(p)),
        "{}",
        r.body
    );
    assert_request_id(r);
}

fn assert_request_id(r: &Reply) {
    let rid = r.headers["x-request-id"].to_str().unwrap();
    let hex = rid.strip_prefix("req_").expect("req_ prefix");
    assert_eq!(hex.len(), 32, "{rid}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{rid}");
    assert_eq!(r.headers["content-type"], "application/json");
}

fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba([10, 20, 30, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 20, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A multipart body: text fields first, then files (name, filename, mime, bytes).
fn multipart(texts: &[(&str, &str)], files: &[(&str, &str, &str, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "193ab7849e1f3213321aaa1b3802f5f1";
    let mut b = Vec::new();
    for (k, v) in texts {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (name, filename, mime, data) in files {
        b.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{filename}\"\r\nContent-Type: {mime}\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

async fn post_multipart(
    h: &EmulatorHandle,
    c: &reqwest::Client,
    path: &str,
    (ct, body): (String, Vec<u8>),
) -> Reply {
    let r = c
        .post(format!("{}{path}", h.openai_base_url()))
        .bearer_auth(KEY)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("send");
    reply(r).await
}

async fn upload(
    h: &EmulatorHandle,
    c: &reqwest::Client,
    purpose: &str,
    filename: &str,
    data: Vec<u8>,
) -> String {
    let r = post_multipart(
        h,
        c,
        "/files",
        multipart(
            &[("purpose", purpose)],
            &[("file", filename, "application/octet-stream", data)],
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let tail = id.strip_prefix("file-").unwrap();
    assert_eq!(tail.len(), 22);
    assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric()));
    id
}

async fn content(h: &EmulatorHandle, c: &reqwest::Client, id: &str) -> String {
    let r = c
        .get(format!("{}/files/{id}/content", h.openai_base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    r.text().await.unwrap()
}

fn decode_images(body: &Value) -> Vec<image::DynamicImage> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let bytes = STANDARD.decode(d["b64_json"].as_str().unwrap()).unwrap();
            image::load_from_memory(&bytes).expect("decodable image")
        })
        .collect()
}

fn sha_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[test]
fn openai_faults_parse_from_an_openai_toml_table() {
    let f = Faults::from_toml_str(
        "[openai]\nrate_429 = 0.1\nretry_after_ms = 250\ninsufficient_quota_after = 3\npolls_until_done = 4\n",
    )
    .unwrap();
    assert_eq!(f.openai.rate_429, 0.1);
    assert_eq!(f.openai.retry_after_ms, 250);
    assert_eq!(f.openai.insufficient_quota_after, Some(3));
    assert_eq!(f.openai.polls_until_done, 4);
    assert_eq!(Faults::default().openai.polls_until_done, 2);
    assert!(Faults::from_toml_str("[openai]\nrate_4299 = 0.1\n").is_err());
    assert!(Faults::from_toml_str("[openai]\nmoderation_rate = 2.0\n").is_err());
}

#[tokio::test]
async fn generation_returns_decodable_images_of_the_exact_size_and_format_with_usage() {
    let (h, c) = start(OpenAiFaults::default()).await;
    assert!(h.openai_base_url().ends_with("/openai/v1"));
    for (format, size, want) in [
        ("png", "1024x1024", image::ImageFormat::Png),
        ("jpeg", "1536x1024", image::ImageFormat::Jpeg),
        ("webp", "512x1536", image::ImageFormat::WebP),
    ] {
        let prompt = "product shot of a red mug on white";
        let r = generate(
            &h,
            &c,
            json!({"model": "gpt-image-2", "prompt": prompt, "n": 2, "size": size,
                   "quality": "low", "output_format": format}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_request_id(&r);
        let (w, hh): (u32, u32) = {
            let (a, b) = size.split_once('x').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        };
        let data = r.body["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        for d in data {
            let bytes = STANDARD.decode(d["b64_json"].as_str().unwrap()).unwrap();
            assert_eq!(image::guess_format(&bytes).unwrap(), want, "{format}");
            let img = image::load_from_memory(&bytes).expect("decodes");
            assert_eq!((img.width(), img.height()), (w, hh), "{format}");
        }
        assert_ne!(data[0]["b64_json"], data[1]["b64_json"]);
        assert_eq!(r.body["size"], size);
        assert_eq!(r.body["quality"], "low");
        assert_eq!(r.body["background"], "opaque");
        assert_eq!(r.body["output_format"], format);
        assert!(r.body["created"].as_i64().unwrap() > 1_700_000_000);
        let u = &r.body["usage"];
        let per_image = (272.0 * f64::from(w * hh) / 1_048_576.0).round() as u64;
        assert_eq!(u["output_tokens"], per_image * 2);
        let text = (prompt.len() as u64).div_ceil(4);
        assert_eq!(u["input_tokens"], text);
        assert_eq!(u["input_tokens_details"]["text_tokens"], text);
        assert_eq!(u["input_tokens_details"]["image_tokens"], 0);
        assert_eq!(u["total_tokens"], text + per_image * 2);
    }
    // Defaults resolve: auto size, auto quality (medium), png; same prompt, same bytes.
    let body = json!({"model": "gpt-image-2.6-flare", "prompt": "a cat"});
    let a = generate(&h, &c, body.clone()).await;
    let b = generate(&h, &c, body).await;
    assert_eq!(a.body["size"], "1024x1024");
    assert_eq!(a.body["quality"], "medium");
    assert_eq!(a.body["output_format"], "png");
    assert_eq!(a.body["usage"]["output_tokens"], 1056);
    assert_eq!(a.body["data"], b.body["data"]);
    let other = generate(&h, &c, json!({"model": "gpt-image-2", "prompt": "a dog"})).await;
    assert_ne!(a.body["data"], other.body["data"]);
    let st = h.stats().openai;
    assert_eq!(st.generate_calls, 6);
    assert_eq!(st.realtime_billed_images, 9);
    h.shutdown().await;
}

#[tokio::test]
async fn invalid_sizes_qualities_and_parameters_get_400s_with_the_right_codes() {
    let (h, c) = start(OpenAiFaults::default()).await;
    let base = json!({"model": "gpt-image-2", "prompt": "a cat"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for size in [
        "1000x1000",
        "512x512x",
        "1600x512",
        "3856x2160",
        "256",
        // under the 655,360-pixel floor, over the 8,294,400 ceiling
        "16x16",
        "512x512",
        "784x336",
        "2896x2896",
    ] {
        let r = generate(&h, &c, with("size", json!(size))).await;
        assert_error(
            &r,
            400,
            "invalid_request_error",
            "invalid_value",
            Some("size"),
        );
    }
    // No short-side cap of its own: 2176x2176 is within the pixel ceiling.
    let good = [
        "3840x2160",
        "2160x3840",
        "1536x512",
        "2880x2880",
        "2176x2176",
        "1024x640",
    ];
    for size in good {
        let r = generate(&h, &c, with("size", json!(size))).await;
        assert_eq!(r.status, 200, "{size}: {}", r.body);
    }
    let r = generate(&h, &c, with("quality", json!("xhigh"))).await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "invalid_value",
        Some("quality"),
    );
    let mut b = with("quality", json!("xhigh"));
    b["model"] = json!("gpt-image-2.5-flare");
    let r = generate(&h, &c, b).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["quality"], "xhigh");
    assert_eq!(r.body["usage"]["output_tokens"], 8320);
    for k in ["response_format", "style", "frobnicate"] {
        let r = generate(&h, &c, with(k, json!("x"))).await;
        assert_error(
            &r,
            400,
            "invalid_request_error",
            "unknown_parameter",
            Some(k),
        );
    }
    let r = generate(&h, &c, with("n", json!(11))).await;
    assert_error(&r, 400, "invalid_request_error", "invalid_value", Some("n"));
    let r = generate(&h, &c, with("n", json!("2"))).await;
    assert_error(&r, 400, "invalid_request_error", "invalid_type", Some("n"));
    let mut b = with("background", json!("transparent"));
    b["output_format"] = json!("jpeg");
    let r = generate(&h, &c, b).await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "invalid_value",
        Some("background"),
    );
    let r = generate(&h, &c, with("output_format", json!("gif"))).await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "invalid_value",
        Some("output_format"),
    );
    let r = generate(&h, &c, with("prompt", json!(""))).await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "invalid_value",
        Some("prompt"),
    );
    let r = generate(&h, &c, with("prompt", json!("x".repeat(32_001)))).await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "invalid_value",
        Some("prompt"),
    );
    let r = generate(&h, &c, json!({"prompt": "a cat"})).await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "missing_required_parameter",
        Some("model"),
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model")
    );
    // Each good size, and xhigh on gpt-image-2.5.
    assert_eq!(
        h.stats().openai.realtime_billed_images,
        good.len() as u64 + 1
    );
    h.shutdown().await;
}

#[tokio::test]
async fn shut_down_and_unknown_models_are_404_model_not_found() {
    let (h, c) = start(OpenAiFaults::default()).await;
    for m in [
        "gpt-image-1",
        "gpt-image-1.5",
        "gpt-image-1-mini",
        "chatgpt-image-latest",
        "dall-e-3",
        "gpt-image-9",
    ] {
        let r = generate(&h, &c, json!({"model": m, "prompt": "a cat"})).await;
        assert_error(&r, 404, "invalid_request_error", "model_not_found", None);
        assert!(r.body["error"]["message"].as_str().unwrap().contains(m));
    }
    for m in [
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-flare-2026-09-08",
        "gpt-image-2.6-sunburst",
        "gpt-image-2.6-flare",
    ] {
        let r = generate(
            &h,
            &c,
            json!({"model": m, "prompt": "a cat", "quality": "low"}),
        )
        .await;
        assert_eq!(r.status, 200, "{m}: {}", r.body);
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_bad_key_is_401_invalid_api_key_with_the_key_masked() {
    let (h, c) = start(OpenAiFaults::default()).await;
    let wrong = "sk-proj-wrongwrongwrong9876";
    let r = c
        .post(format!("{}/images/generations", h.openai_base_url()))
        .bearer_auth(wrong)
        .header("OpenAI-Organization", "org-x")
        .json(&json!({"model": "gpt-image-2", "prompt": "a cat"}))
        .send()
        .await
        .unwrap();
    let r = reply(r).await;
    assert_error(&r, 401, "invalid_request_error", "invalid_api_key", None);
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Incorrect API key provided: sk-"), "{msg}");
    assert!(msg.contains("9876"), "{msg}");
    assert!(!msg.contains(wrong), "{msg}");
    assert!(!msg.contains("wrongwrong"), "{msg}");
    let r = c
        .get(format!("{}/batches", h.openai_base_url()))
        .send()
        .await
        .unwrap();
    let r = reply(r).await;
    assert_error(&r, 401, "invalid_request_error", "invalid_api_key", None);
    // Optional organization / project headers are accepted with the right key.
    let r = c
        .post(format!("{}/images/generations", h.openai_base_url()))
        .bearer_auth(KEY)
        .header("OpenAI-Organization", "org-x")
        .header("OpenAI-Project", "proj_y")
        .json(&json!({"model": "gpt-image-2", "prompt": "a cat", "quality": "low"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        crate::openai::mask_key("sk-abcdefghijkl1234"),
        "sk-************1234"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn multipart_edit_with_two_images_and_a_mask_works_and_counts_images() {
    let (h, c) = start(OpenAiFaults::default()).await;
    let form = multipart(
        &[
            ("prompt", "edit it"),
            ("model", "gpt-image-2"),
            ("n", "2"),
            ("size", "1536x1024"),
            ("quality", "medium"),
            ("output_format", "webp"),
            ("output_compression", "80"),
            ("stream", "false"),
        ],
        &[
            ("image[]", "a.png", "image/png", png_bytes(600, 400)),
            ("image[]", "b.jpg", "image/jpeg", jpeg_bytes(64, 64)),
            ("mask", "mask.png", "image/png", png_bytes(600, 400)),
        ],
    );
    let r = post_multipart(&h, &c, "/images/edits", form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_request_id(&r);
    let imgs = decode_images(&r.body);
    assert_eq!(imgs.len(), 2);
    assert!(imgs.iter().all(|i| (i.width(), i.height()) == (1536, 1024)));
    assert_eq!(r.body["output_format"], "webp");
    let u = &r.body["usage"];
    // 600x400: 2x1 tiles → 85 + 340; 64x64: 1 tile → 85 + 170.
    assert_eq!(u["input_tokens_details"]["image_tokens"], 425 + 255);
    assert_eq!(u["input_tokens_details"]["text_tokens"], 2);
    assert_eq!(u["input_tokens"], 682);
    assert_eq!(u["output_tokens"], 1584 * 2);
    // A single file under `image` works too.
    let form = multipart(
        &[("prompt", "edit it"), ("model", "gpt-image-2")],
        &[("image", "a.png", "image/png", png_bytes(32, 32))],
    );
    let r = post_multipart(&h, &c, "/images/edits", form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Undecodable input, wrong-size mask, JPEG mask, no image.
    let form = multipart(
        &[("prompt", "edit it"), ("model", "gpt-image-2")],
        &[("image", "a.png", "image/png", b"not a png".to_vec())],
    );
    let r = post_multipart(&h, &c, "/images/edits", form).await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "invalid_image",
        Some("image"),
    );
    let form = multipart(
        &[("prompt", "edit it"), ("model", "gpt-image-2")],
        &[
            ("image", "a.png", "image/png", png_bytes(32, 32)),
            ("mask", "m.png", "image/png", png_bytes(16, 32)),
        ],
    );
    let r = post_multipart(&h, &c, "/images/edits", form).await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "invalid_value",
        Some("mask"),
    );
    let form = multipart(
        &[("prompt", "edit it"), ("model", "gpt-image-2")],
        &[
            ("image", "a.png", "image/png", png_bytes(32, 32)),
            ("mask", "m.jpg", "image/jpeg", jpeg_bytes(32, 32)),
        ],
    );
    let r = post_multipart(&h, &c, "/images/edits", form).await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "invalid_value",
        Some("mask"),
    );
    let form = multipart(&[("prompt", "edit it"), ("model", "gpt-image-2")], &[]);
    let r = post_multipart(&h, &c, "/images/edits", form).await;
    assert_eq!(r.status, 400);
    let st = h.stats().openai;
    assert_eq!(st.edit_calls, 6);
    assert_eq!(st.edit_images_received, 3);
    assert_eq!(st.realtime_billed_images, 3);
    h.shutdown().await;
}

#[tokio::test]
async fn json_edit_with_a_file_id_and_a_data_url_works_and_counts_images() {
    let (h, c) = start(OpenAiFaults::default()).await;
    let id = upload(&h, &c, "vision", "ref.png", png_bytes(48, 48)).await;
    let meta = get(&h, &c, &format!("/files/{id}")).await;
    assert_eq!(meta.body["purpose"], "vision");
    assert_eq!(meta.body["object"], "file");
    let data_url = format!(
        "data:image/png;base64,{}",
        STANDARD.encode(png_bytes(16, 16))
    );
    let r = post(
        &h,
        &c,
        "/images/edits",
        &json!({"model": "gpt-image-2", "prompt": "put it in a basket",
                "images": [{"file_id": id}, {"image_url": data_url}],
                "size": "1024x1536", "quality": "high", "output_format": "jpeg"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let imgs = decode_images(&r.body);
    assert_eq!((imgs[0].width(), imgs[0].height()), (1024, 1536));
    assert_eq!(r.body["usage"]["input_tokens_details"]["image_tokens"], 510);
    assert_eq!(r.body["usage"]["output_tokens"], 6240);
    let r = post(
        &h,
        &c,
        "/images/edits",
        &json!({"model": "gpt-image-2", "prompt": "x", "images": [{"file_id": "file-nope"}]}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["param"], "images[0].file_id");
    assert_eq!(h.stats().openai.edit_images_received, 2);
    assert_eq!(h.stats().openai.files_uploaded, 1);
    let r = c
        .delete(format!("{}/files/{id}", h.openai_base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let r = reply(r).await;
    assert_eq!(r.body, json!({"id": id, "object": "file", "deleted": true}));
    let r = get(&h, &c, &format!("/files/{id}")).await;
    assert_eq!(r.status, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn injected_429_carries_retry_after_ms_and_then_the_request_succeeds() {
    let (h, c) = start(OpenAiFaults {
        first_429: 1,
        retry_after_ms: 300,
        ..OpenAiFaults::default()
    })
    .await;
    let body = json!({"model": "gpt-image-2", "prompt": "a cat", "quality": "low"});
    let r = generate(&h, &c, body.clone()).await;
    assert_error(&r, 429, "requests", "rate_limit_exceeded", None);
    assert_eq!(r.headers["retry-after-ms"], "300");
    assert_eq!(r.headers["retry-after"], "1");
    let r = generate(&h, &c, body).await;
    assert_eq!(r.status, 200);
    let st = h.stats().openai;
    assert_eq!(st.faults_injected, 1);
    assert_eq!(st.realtime_billed_images, 1);
    assert_eq!(st.prompts_billed.get(&sha_hex("a cat")), Some(&1));
    // first_500 then 503, set at runtime through the faults endpoint.
    let r = c
        .post(format!("{}/_emulator/faults", h.base_url()))
        .json(&json!({"openai": {"first_500": 1, "first_503": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = json!({"model": "gpt-image-2", "prompt": "a dog", "quality": "low"});
    let r = generate(&h, &c, body.clone()).await;
    assert_error(&r, 500, "server_error", "server_error", None);
    let r = generate(&h, &c, body.clone()).await;
    assert_error(&r, 503, "server_error", "server_is_overloaded", None);
    assert_eq!(generate(&h, &c, body).await.status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn every_request_after_the_nth_gets_insufficient_quota() {
    let (h, c) = start(OpenAiFaults {
        insufficient_quota_after: Some(2),
        ..OpenAiFaults::default()
    })
    .await;
    let body = json!({"model": "gpt-image-2", "prompt": "a cat", "quality": "low"});
    assert_eq!(generate(&h, &c, body.clone()).await.status, 200);
    assert_eq!(generate(&h, &c, body.clone()).await.status, 200);
    for _ in 0..2 {
        let r = generate(&h, &c, body.clone()).await;
        assert_error(&r, 429, "insufficient_quota", "insufficient_quota", None);
    }
    assert_eq!(h.stats().openai.realtime_billed_images, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn trigger_words_give_moderation_blocked_and_invalid_request() {
    let (h, c) = start(OpenAiFaults::default()).await;
    let r = generate(
        &h,
        &c,
        json!({"model": "gpt-image-2", "prompt": "a cat EMULATE_MODERATION"}),
    )
    .await;
    assert_error(
        &r,
        400,
        "image_generation_user_error",
        "moderation_blocked",
        None,
    );
    let d = &r.body["error"]["moderation_details"];
    assert!(d["moderation_stage"].is_string());
    assert!(d["categories"].is_array());
    let r = generate(
        &h,
        &c,
        json!({"model": "gpt-image-2", "prompt": "EMULATE_INVALID_ARGUMENT"}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    let (h2, c2) = start(OpenAiFaults {
        moderation_rate: 1.0,
        ..OpenAiFaults::default()
    })
    .await;
    let r = generate(&h2, &c2, json!({"model": "gpt-image-2", "prompt": "a cat"})).await;
    assert_error(
        &r,
        400,
        "image_generation_user_error",
        "moderation_blocked",
        None,
    );
    assert_eq!(h.stats().openai.billed_images, 0);
    assert_eq!(h2.stats().openai.faults_injected, 1);
    h.shutdown().await;
    h2.shutdown().await;
}

#[tokio::test]
async fn a_cut_off_answer_is_not_billed() {
    let (h, c) = start(OpenAiFaults {
        rate_reset: 1.0,
        ..OpenAiFaults::default()
    })
    .await;
    let r = c
        .post(format!("{}/images/generations", h.openai_base_url()))
        .bearer_auth(KEY)
        .json(&json!({"model": "gpt-image-2", "prompt": "a cat", "quality": "low"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "body must be cut off");
    let st = h.stats().openai;
    assert_eq!(st.billed_images, 0);
    assert_eq!(st.faults_injected, 1);
    h.shutdown().await;
}

fn gen_line(id: &str, prompt: &str) -> String {
    json!({"custom_id": id, "method": "POST", "url": "/v1/images/generations",
           "body": {"model": "gpt-image-2", "prompt": prompt, "size": "1024x1024", "quality": "low"}})
    .to_string()
}

async fn create_batch(
    h: &EmulatorHandle,
    c: &reqwest::Client,
    lines: &[String],
    endpoint: &str,
    tag: &str,
) -> Reply {
    let file = upload(
        h,
        c,
        "batch",
        "batch.jsonl",
        (lines.join("\n") + "\n").into_bytes(),
    )
    .await;
    post(
        h,
        c,
        "/batches",
        &json!({"input_file_id": file, "endpoint": endpoint, "completion_window": "24h",
                "metadata": {"adloc_tag": tag}}),
    )
    .await
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_batch_of_generations_goes_validating_to_completed_with_output_and_error_files() {
    let (h, c) = start(OpenAiFaults {
        polls_until_done: 3,
        ..OpenAiFaults::default()
    })
    .await;
    let lines: Vec<String> = (0..5)
        .map(|i| {
            let p = if i == 3 {
                "blocked EMULATE_MODERATION".to_string()
            } else {
                format!("prompt {i}")
            };
            gen_line(&format!("gen-{i:04}"), &p)
        })
        .collect();
    let r = create_batch(&h, &c, &lines, "/v1/images/generations", "run-1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = &r.body;
    assert_eq!(b["status"], "validating");
    assert_eq!(b["object"], "batch");
    assert_eq!(b["completion_window"], "24h");
    assert_eq!(b["metadata"]["adloc_tag"], "run-1");
    let id = b["id"].as_str().unwrap().to_string();
    let tail = id.strip_prefix("batch_").unwrap();
    assert_eq!(tail.len(), 32);
    let mut seen = Vec::new();
    let done = loop {
        let r = get(&h, &c, &format!("/batches/{id}")).await;
        let st = r.body["status"].as_str().unwrap().to_string();
        seen.push(st.clone());
        if st == "completed" {
            break r.body;
        }
        assert!(seen.len() < 5);
    };
    assert_eq!(seen, ["in_progress", "finalizing", "completed"]);
    assert_eq!(
        done["request_counts"],
        json!({"total": 5, "completed": 4, "failed": 1})
    );
    assert_eq!(done["model"], "gpt-image-2");
    for k in ["in_progress_at", "finalizing_at", "completed_at"] {
        assert!(done[k].is_i64(), "{k}");
    }
    let out = jsonl(&content(&h, &c, done["output_file_id"].as_str().unwrap()).await);
    let err = jsonl(&content(&h, &c, done["error_file_id"].as_str().unwrap()).await);
    let mut ids: Vec<&str> = out
        .iter()
        .map(|l| l["custom_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["gen-0000", "gen-0001", "gen-0002", "gen-0004"]);
    for l in &out {
        assert_eq!(l["response"]["status_code"], 200);
        assert_eq!(l["error"], Value::Null);
        assert!(l["id"].as_str().unwrap().starts_with("batch_req_"));
        assert!(
            l["response"]["request_id"]
                .as_str()
                .unwrap()
                .starts_with("req_")
        );
        let imgs = decode_images(&l["response"]["body"]);
        assert_eq!((imgs[0].width(), imgs[0].height()), (1024, 1024));
        assert_eq!(l["response"]["body"]["usage"]["output_tokens"], 272);
    }
    assert_eq!(err.len(), 1);
    assert_eq!(err[0]["custom_id"], "gen-0003");
    assert_eq!(err[0]["response"]["status_code"], 400);
    assert_eq!(
        err[0]["response"]["body"]["error"]["code"],
        "moderation_blocked"
    );
    let st = h.stats().openai;
    assert_eq!(st.batches_created, 1);
    assert_eq!(st.batch_metadata.get("run-1"), Some(&1));
    assert_eq!(st.batch_billed_images, 4);
    assert_eq!(st.realtime_billed_images, 0);
    assert_eq!(st.billed_images, 4);
    assert_eq!(st.prompts_billed.get(&sha_hex("prompt 0")), Some(&1));
    // Further gets do not bill again.
    get(&h, &c, &format!("/batches/{id}")).await;
    assert_eq!(h.stats().openai.batch_billed_images, 4);
    h.shutdown().await;
}

#[tokio::test]
async fn a_batch_of_json_edits_reads_its_file_ids() {
    let (h, c) = start(OpenAiFaults::default()).await;
    let img = upload(&h, &c, "vision", "a.png", png_bytes(64, 64)).await;
    let line = json!({"custom_id": "edit-7", "method": "POST", "url": "/v1/images/edits",
        "body": {"model": "gpt-image-2", "prompt": "gift basket", "images": [{"file_id": img}],
                 "size": "1024x1024", "quality": "low"}})
    .to_string();
    let r = create_batch(&h, &c, &[line], "/v1/images/edits", "edits").await;
    let id = r.body["id"].as_str().unwrap().to_string();
    get(&h, &c, &format!("/batches/{id}")).await;
    let done = get(&h, &c, &format!("/batches/{id}")).await.body;
    assert_eq!(done["status"], "completed", "{done}");
    let out = jsonl(&content(&h, &c, done["output_file_id"].as_str().unwrap()).await);
    assert_eq!(out[0]["custom_id"], "edit-7");
    assert_eq!(
        out[0]["response"]["body"]["usage"]["input_tokens_details"]["image_tokens"],
        255
    );
    assert_eq!(done["error_file_id"], Value::Null);
    h.shutdown().await;
}

#[tokio::test]
async fn a_json_edit_takes_only_the_closed_size_and_quality_sets() {
    let (h, c) = start(OpenAiFaults::default()).await;
    let data_url = format!(
        "data:image/png;base64,{}",
        STANDARD.encode(png_bytes(16, 16))
    );
    let body = |size: &str, quality: &str| {
        json!({"model": "gpt-image-2.5-sunburst", "prompt": "add a sunset",
               "images": [{"image_url": data_url}], "size": size, "quality": quality})
    };
    // Realtime JSON: a legal multipart size is still outside the JSON set,
    // and so is xhigh even on a model that draws it.
    for (size, quality, param) in [
        ("1376x768", "high", "size"),
        ("2048x2048", "low", "size"),
        ("1536x1024", "xhigh", "quality"),
        ("1024x1024", "max", "quality"),
    ] {
        let r = post(&h, &c, "/images/edits", &body(size, quality)).await;
        assert_error(
            &r,
            400,
            "invalid_request_error",
            "invalid_value",
            Some(param),
        );
    }
    for size in ["auto", "1024x1024", "1536x1024", "1024x1536"] {
        let r = post(&h, &c, "/images/edits", &body(size, "high")).await;
        assert_eq!(r.status, 200, "{size}: {}", r.body);
    }
    // The multipart form takes any legal WxH and the model's qualities.
    let form = multipart(
        &[
            ("model", "gpt-image-2.5-sunburst"),
            ("prompt", "add a sunset"),
            ("size", "1376x768"),
            ("quality", "xhigh"),
        ],
        &[("image", "a.png", "image/png", png_bytes(16, 16))],
    );
    let r = post_multipart(&h, &c, "/images/edits", form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A batch line is the JSON form: the same refusal, as an error line.
    let line = |id: &str, size: &str, quality: &str| {
        json!({"custom_id": id, "method": "POST", "url": "/v1/images/edits",
               "body": body(size, quality)})
        .to_string()
    };
    let lines = [
        line("ok", "1536x1024", "high"),
        line("size", "1376x768", "high"),
        line("quality", "1536x1024", "xhigh"),
    ];
    let r = create_batch(&h, &c, &lines, "/v1/images/edits", "json-edits").await;
    let id = r.body["id"].as_str().unwrap().to_string();
    get(&h, &c, &format!("/batches/{id}")).await;
    let done = get(&h, &c, &format!("/batches/{id}")).await.body;
    assert_eq!(done["status"], "completed", "{done}");
    let out = jsonl(&content(&h, &c, done["output_file_id"].as_str().unwrap()).await);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["custom_id"], "ok");
    let errs = jsonl(&content(&h, &c, done["error_file_id"].as_str().unwrap()).await);
    for e in &errs {
        let body = &e["response"]["body"]["error"];
        assert_eq!(e["response"]["status_code"], 400, "{e}");
        assert_eq!(body["param"], e["custom_id"], "{e}");
        assert_eq!(body["code"], "invalid_value", "{e}");
    }
    assert_eq!(errs.len(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn an_image_url_over_20971520_characters_and_a_batch_file_over_the_limit_are_refused() {
    let (h, c) = start(OpenAiFaults {
        max_batch_file_bytes: Some(2_000),
        ..OpenAiFaults::default()
    })
    .await;
    let prefix = "data:image/png;base64,";
    let long = format!("{prefix}{}", "A".repeat(20_971_520 - prefix.len() + 4));
    let r = post(
        &h,
        &c,
        "/images/edits",
        &json!({"model": "gpt-image-2", "prompt": "x", "size": "1024x1024",
                "images": [{"image_url": long}]}),
    )
    .await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "string_above_max_length",
        Some("images[0].image_url"),
    );
    // A batch file with that line in it is over the (lowered) file limit.
    let line = json!({"custom_id": "big", "method": "POST", "url": "/v1/images/edits",
        "body": {"model": "gpt-image-2", "prompt": "x", "size": "1024x1024",
                 "images": [{"image_url": long}]}})
    .to_string();
    drop(long);
    let upload_of = |bytes: Vec<u8>| {
        multipart(
            &[("purpose", "batch")],
            &[("file", "batch.jsonl", "application/octet-stream", bytes)],
        )
    };
    let r = post_multipart(&h, &c, "/files", upload_of(line.into_bytes())).await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "invalid_value",
        Some("file"),
    );
    let fits = (0..10)
        .map(|i| gen_line(&format!("g{i}"), "a cat"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(fits.len() < 2_000);
    let r = post_multipart(&h, &c, "/files", upload_of(fits.into_bytes())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h.stats().openai.batch_billed_images, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn invalid_batch_lines_fail_the_batch_with_line_numbers() {
    let (h, c) = start(OpenAiFaults::default()).await;
    let lines = vec![
        gen_line("a", "one"),
        gen_line("a", "dup"),
        "not json".to_string(),
        json!({"custom_id": "m", "method": "GET", "url": "/v1/images/generations", "body": {}})
            .to_string(),
        json!({"custom_id": "u", "method": "POST", "url": "/v1/images/edits", "body": {}})
            .to_string(),
    ];
    let r = create_batch(&h, &c, &lines, "/v1/images/generations", "bad").await;
    assert_eq!(r.body["status"], "validating");
    let id = r.body["id"].as_str().unwrap().to_string();
    let b = get(&h, &c, &format!("/batches/{id}")).await.body;
    assert_eq!(b["status"], "failed");
    assert!(b["failed_at"].is_i64());
    let errs = b["errors"]["data"].as_array().unwrap();
    let got: Vec<(i64, &str)> = errs
        .iter()
        .map(|e| (e["line"].as_i64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (2, "duplicate_custom_id"),
            (3, "invalid_json_line"),
            (4, "invalid_method"),
            (5, "mismatched_url")
        ]
    );
    assert_eq!(h.stats().openai.batch_billed_images, 0);
    // Bad create requests are rejected outright.
    let r = post(&h, &c, "/batches", &json!({"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h"})).await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "invalid_value",
        Some("endpoint"),
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_expired_batch_splits_finished_lines_from_batch_expired_ones() {
    let (h, c) = start(OpenAiFaults {
        expire_batches: 1,
        polls_until_done: 1,
        ..OpenAiFaults::default()
    })
    .await;
    let lines: Vec<String> = (0..4)
        .map(|i| gen_line(&format!("g{i}"), &format!("p{i}")))
        .collect();
    let id = create_batch(&h, &c, &lines, "/v1/images/generations", "exp")
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = get(&h, &c, &format!("/batches/{id}")).await.body;
    assert_eq!(b["status"], "expired");
    assert!(b["expired_at"].is_i64());
    assert_eq!(
        b["request_counts"],
        json!({"total": 4, "completed": 2, "failed": 2})
    );
    let out = jsonl(&content(&h, &c, b["output_file_id"].as_str().unwrap()).await);
    let err = jsonl(&content(&h, &c, b["error_file_id"].as_str().unwrap()).await);
    let mut done: Vec<&str> = out
        .iter()
        .map(|l| l["custom_id"].as_str().unwrap())
        .collect();
    done.sort_unstable();
    assert_eq!(done, ["g0", "g1"]);
    for l in &err {
        assert_eq!(l["response"], Value::Null);
        assert_eq!(l["error"]["code"], "batch_expired");
    }
    let st = h.stats().openai;
    assert_eq!(st.batch_billed_images, 2);
    assert_eq!(st.faults_injected, 1);
    // The next batch completes normally.
    let id = create_batch(&h, &c, &lines, "/v1/images/generations", "exp")
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        get(&h, &c, &format!("/batches/{id}")).await.body["status"],
        "completed"
    );
    assert_eq!(h.stats().openai.batch_metadata.get("exp"), Some(&2));
    h.shutdown().await;
}

#[tokio::test]
async fn fail_batches_and_create_429_first_inject_batch_faults() {
    let (h, c) = start(OpenAiFaults {
        fail_batches: 1,
        create_429_first: 1,
        polls_until_done: 1,
        ..OpenAiFaults::default()
    })
    .await;
    let lines = vec![gen_line("g", "p")];
    let r = create_batch(&h, &c, &lines, "/v1/images/generations", "f").await;
    assert_error(&r, 429, "requests", "rate_limit_exceeded", None);
    assert!(r.headers.contains_key("retry-after-ms"));
    let r = create_batch(&h, &c, &lines, "/v1/images/generations", "f").await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let b = get(&h, &c, &format!("/batches/{id}")).await.body;
    assert_eq!(b["status"], "failed");
    assert!(
        b["errors"]["data"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );
    let st = h.stats().openai;
    assert_eq!(st.batches_created, 1);
    assert_eq!(st.batch_billed_images, 0);
    assert_eq!(st.faults_injected, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn cancel_goes_cancelling_then_cancelled_with_partial_results_billing_nothing() {
    let (h, c) = start(OpenAiFaults {
        polls_until_done: 5,
        ..OpenAiFaults::default()
    })
    .await;
    let lines: Vec<String> = (0..3)
        .map(|i| gen_line(&format!("c{i}"), &format!("q{i}")))
        .collect();
    let id = create_batch(&h, &c, &lines, "/v1/images/generations", "cx")
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        get(&h, &c, &format!("/batches/{id}")).await.body["status"],
        "in_progress"
    );
    let r = post(&h, &c, &format!("/batches/{id}/cancel"), &json!({})).await;
    assert_eq!(r.body["status"], "cancelling");
    assert!(r.body["cancelling_at"].is_i64());
    let b = get(&h, &c, &format!("/batches/{id}")).await.body;
    assert_eq!(b["status"], "cancelled");
    assert!(b["cancelled_at"].is_i64());
    assert_eq!(
        b["request_counts"],
        json!({"total": 3, "completed": 2, "failed": 1})
    );
    let err = jsonl(&content(&h, &c, b["error_file_id"].as_str().unwrap()).await);
    assert_eq!(err[0]["error"]["code"], "batch_cancelled");
    let r = post(&h, &c, &format!("/batches/{id}/cancel"), &json!({})).await;
    assert_eq!(r.status, 409);
    let st = h.stats().openai;
    assert_eq!(st.billed_images, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn list_pagination_finds_a_batch_by_its_metadata_tag() {
    let (h, c) = start(OpenAiFaults::default()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = create_batch(
            &h,
            &c,
            &[gen_line("g", "p")],
            "/v1/images/generations",
            &format!("tag-{i}"),
        )
        .await;
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let mut after: Option<String> = None;
    let mut found = None;
    let mut order = Vec::new();
    loop {
        let q = after
            .as_ref()
            .map_or(String::new(), |a| format!("&after={a}"));
        let page = get(&h, &c, &format!("/batches?limit=2{q}")).await.body;
        assert_eq!(page["object"], "list");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        assert_eq!(page["first_id"], data[0]["id"]);
        assert_eq!(page["last_id"], data[data.len() - 1]["id"]);
        for b in data {
            order.push(b["id"].as_str().unwrap().to_string());
            if b["metadata"]["adloc_tag"] == "tag-1" {
                found = Some(b["id"].as_str().unwrap().to_string());
            }
        }
        if page["has_more"] != true {
            break;
        }
        after = page["last_id"].as_str().map(str::to_string);
    }
    assert_eq!(found.as_deref(), Some(ids[1].as_str()));
    ids.reverse();
    assert_eq!(order, ids, "newest first");
    let r = get(&h, &c, "/batches?limit=0").await;
    assert_error(
        &r,
        400,
        "invalid_request_error",
        "invalid_value",
        Some("limit"),
    );
    h.shutdown().await;
}

#[tokio::test]
async fn rpm_limit_states_the_limit_on_successes_and_refuses_over_it() {
    // One request a minute: a bucket of one, so the second call at once is
    // over the limit whatever the timing.
    let (h, c) = start(OpenAiFaults {
        rpm_limit: Some(1),
        ..OpenAiFaults::default()
    })
    .await;
    let body = json!({"model": "gpt-image-2", "prompt": "a cat", "quality": "low"});
    let r = generate(&h, &c, body.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-ratelimit-limit-requests"], "1");
    assert_eq!(r.headers["x-ratelimit-remaining-requests"], "0");
    let reset = r.headers["x-ratelimit-reset-requests"].to_str().unwrap();
    assert!(reset.ends_with('s'), "{reset}");
    let r = generate(&h, &c, body.clone()).await;
    assert_error(&r, 429, "requests", "rate_limit_exceeded", None);
    let ms: f64 = r.headers["retry-after-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ms > 0.0 && ms <= 60_000.0, "{ms}");
    assert_eq!(r.headers["x-ratelimit-limit-requests"], "1");
    assert_eq!(r.headers["x-ratelimit-remaining-requests"], "0");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("Limit 1,"), "{msg}");
    // Another model has a limit of its own.
    let r = generate(
        &h,
        &c,
        json!({"model": "gpt-image-2.5-flare", "prompt": "a cat", "quality": "low"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let st = h.stats().openai;
    assert_eq!(st.rate_limited, 1);
    assert_eq!(st.generate_calls, 3);
    assert_eq!(st.faults_injected, 0);
    assert_eq!(st.realtime_billed_images, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn without_rpm_limit_no_ratelimit_headers_are_sent() {
    let (h, c) = start(OpenAiFaults::default()).await;
    let r = generate(
        &h,
        &c,
        json!({"model": "gpt-image-2", "prompt": "a cat", "quality": "low"}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("x-ratelimit-limit-requests").is_none());
    h.shutdown().await;
}

#[test]
fn rpm_limit_zero_is_refused() {
    let err = Faults::from_toml_str("[openai]\nrpm_limit = 0\n").unwrap_err();
    assert!(err.1.contains("rpm_limit"), "{err:?}");
}
