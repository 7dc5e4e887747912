//! Copy QA (painting, signatures, reader models) over real HTTP.

use std::io::Cursor;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use image::imageops::FilterType;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::*;

const KEY: &str = "test-key";
const OAI_KEY: &str = "test-key";

async fn start(faults: Faults) -> (EmulatorHandle, reqwest::Client) {
    let h = spawn(
        EmulatorConfig {
            seed: 21,
            api_key: Some(KEY.into()),
            faults,
        },
        0,
    )
    .await
    .expect("spawn emulator");
    (h, reqwest::Client::new())
}

async fn post(h: &EmulatorHandle, c: &reqwest::Client, path: &str, body: &Value) -> (u16, Value) {
    let r = c
        .post(format!("{}{path}", h.base_url()))
        .header("x-goog-api-key", KEY)
        .json(body)
        .send()
        .await
        .expect("send");
    let st = r.status().as_u16();
    (st, r.json().await.expect("json body"))
}

/// Generate one image with `prompt` on `model`; its bytes.
async fn gen_image(
    h: &EmulatorHandle,
    c: &reqwest::Client,
    model: &str,
    prompt: &str,
    image_config: Value,
) -> Vec<u8> {
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": image_config},
    });
    let (st, v) = post(
        h,
        c,
        &format!("/v1beta/models/{model}:generateContent"),
        &body,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    first_image(&v)
}

fn first_image(v: &Value) -> Vec<u8> {
    let parts = v["candidates"][0]["content"]["parts"].as_array().unwrap();
    let data = parts
        .iter()
        .find_map(|p| p["inlineData"]["data"].as_str())
        .expect("an image part");
    STANDARD.decode(data).unwrap()
}

fn schema_json() -> Value {
    json!({"type": "object", "properties": {"texts": {"type": "array", "items": {"type": "string"}}},
           "required": ["texts"]})
}

fn read_body(image: &[u8], mime: &str) -> Value {
    json!({
        "contents": [{"role": "user", "parts": [
            {"inlineData": {"mimeType": mime, "data": STANDARD.encode(image)}},
            {"text": "Transcribe every piece of visible text exactly as written."}]}],
        "generationConfig": {"responseMimeType": "application/json",
                             "responseJsonSchema": schema_json()},
    })
}

/// Read `image` with a reader model; the `texts` array of the answer.
async fn read(h: &EmulatorHandle, c: &reqwest::Client, image: &[u8], mime: &str) -> Vec<String> {
    let (st, v) = post(
        h,
        c,
        "/v1/models/gemini-3.5-flash-lite:generateContent",
        &read_body(image, mime),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    answer_texts(&v)
}

fn answer_texts(v: &Value) -> Vec<String> {
    assert_eq!(v["candidates"][0]["finishReason"], "STOP", "{v}");
    let text = v["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    let parsed: Value = serde_json::from_str(text).unwrap();
    serde_json::from_value(parsed["texts"].clone()).unwrap()
}

/// What a client does before a read: downscale so the long side is `long`,
/// then re-encode.
fn client_copy(bytes: &[u8], long: u32, filter: FilterType, jpeg: bool) -> Vec<u8> {
    let img = image::load_from_memory(bytes).unwrap();
    let (w, h) = (img.width(), img.height());
    let scale = f64::from(long) / f64::from(w.max(h));
    let (nw, nh) = (
        ((f64::from(w) * scale).round() as u32).max(1),
        ((f64::from(h) * scale).round() as u32).max(1),
    );
    let small = img.resize_exact(nw, nh, filter).to_rgb8();
    let mut out = Cursor::new(Vec::new());
    if jpeg {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&small)
            .unwrap();
    } else {
        small.write_to(&mut out, image::ImageFormat::Png).unwrap();
    }
    out.into_inner()
}

#[tokio::test]
async fn painted_copy_survives_downscaling_and_reencoding() {
    let (h, c) = start(Faults::default()).await;
    let want = vec!["SUMMER SALE".to_string(), "Jusqu’à −50 %".to_string()];
    let prompt = "A beach poster with the headline \"SUMMER SALE\" and the line “Jusqu’à −50 %”.";
    let cases = [
        (
            "gemini-3-pro-image",
            json!({"aspectRatio": "16:9", "imageSize": "2K"}),
        ),
        ("gemini-2.5-flash-image", json!({"aspectRatio": "1:1"})),
        (
            "gemini-3.1-flash-image",
            json!({"aspectRatio": "1:8", "imageSize": "1K"}),
        ),
        (
            "gemini-3.1-flash-image",
            json!({"aspectRatio": "21:9", "imageSize": "512"}),
        ),
    ];
    for (model, cfg) in cases {
        let original = gen_image(&h, &c, model, prompt, cfg.clone()).await;
        assert_eq!(h.painted(&original), Some(want.clone()), "{model} {cfg}");
        for long in [1024, 512] {
            for filter in [
                FilterType::Lanczos3,
                FilterType::Triangle,
                FilterType::Nearest,
            ] {
                for jpeg in [true, false] {
                    let copy = client_copy(&original, long, filter, jpeg);
                    let what = format!("{model} {cfg} → {long} {filter:?} jpeg={jpeg}");
                    assert_eq!(h.painted(&copy), Some(want.clone()), "{what}");
                    if long == 512 {
                        let mime = if jpeg { "image/jpeg" } else { "image/png" };
                        assert_eq!(read(&h, &c, &copy, mime).await, want, "{what}");
                    }
                }
            }
        }
    }
    let s = h.stats();
    assert_eq!(s.billed_images, 4);
    assert!(s.reads >= 4 && s.reads == s.reads_billed, "{s:?}");
    assert_eq!(s.misspelled, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn openai_images_paint_their_copy_in_every_format() {
    let (h, c) = start(Faults::default()).await;
    for fmt in ["png", "jpeg", "webp"] {
        let r = c
            .post(format!("{}/images/generations", h.openai_base_url()))
            .bearer_auth(OAI_KEY)
            .json(
                &json!({"model": "gpt-image-2", "prompt": "Ad with \"BUY NOW\" in red",
                          "size": "1536x1024", "output_format": fmt, "n": 2}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().await.unwrap();
        for d in v["data"].as_array().unwrap() {
            let bytes = STANDARD.decode(d["b64_json"].as_str().unwrap()).unwrap();
            let copy = client_copy(&bytes, 1024, FilterType::Lanczos3, true);
            assert_eq!(h.painted(&copy), Some(vec!["BUY NOW".to_string()]), "{fmt}");
        }
    }
    h.shutdown().await;
}

#[tokio::test]
async fn misspell_rate_one_paints_a_string_that_differs() {
    let (h, c) = start(Faults {
        misspell_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let prompt = "Banner: \"Fresh Bread Daily\" and \"Open 7 days\"";
    let truth = paint::quoted_copy(prompt);
    for _ in 0..4 {
        let img = gen_image(&h, &c, "gemini-3.1-flash-image", prompt, json!({})).await;
        let painted = h.painted(&img).unwrap();
        assert_eq!(painted.len(), 2);
        let wrong = painted
            .iter()
            .zip(&truth)
            .filter(|(p, t)| paint::fold(p) != paint::fold(t))
            .count();
        assert_eq!(wrong, 1, "{painted:?}");
        assert_eq!(read(&h, &c, &img, "image/jpeg").await, painted);
    }
    assert_eq!(h.stats().misspelled, 4);
    h.shutdown().await;
}

#[tokio::test]
async fn the_trigger_word_always_misspells_and_plain_prompts_never_do() {
    let (h, c) = start(Faults::default()).await;
    let prompt = "EMULATE_MISSPELL a sign reading \"WELCOME\"";
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let img = gen_image(&h, &c, "gemini-3-pro-image", prompt, json!({})).await;
        let painted = h.painted(&img).unwrap();
        assert_ne!(paint::fold(&painted[0]), "welcome", "{painted:?}");
        seen.insert(painted[0].clone());
    }
    assert!(seen.len() > 1, "regenerations draw afresh: {seen:?}");
    let img = gen_image(
        &h,
        &c,
        "gemini-3-pro-image",
        "a sign \"WELCOME\"",
        json!({}),
    )
    .await;
    assert_eq!(h.painted(&img), Some(vec!["WELCOME".to_string()]));
    assert_eq!(h.stats().misspelled, 6);
    h.shutdown().await;
}

#[tokio::test]
async fn misread_rate_alters_a_read_but_not_the_truth() {
    let (h, c) = start(Faults {
        misread_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let img = gen_image(
        &h,
        &c,
        "gemini-3.1-flash-image",
        "\"GRAND OPENING\"",
        json!({}),
    )
    .await;
    let truth = vec!["GRAND OPENING".to_string()];
    let a = read(&h, &c, &img, "image/jpeg").await;
    let b = read(&h, &c, &img, "image/jpeg").await;
    for r in [&a, &b] {
        assert_eq!(r.len(), 1);
        assert_ne!(paint::fold(&r[0]), paint::fold(&truth[0]), "{r:?}");
    }
    assert_eq!(h.painted(&img), Some(truth.clone()));
    h.set_faults(Faults::default());
    assert_eq!(read(&h, &c, &img, "image/jpeg").await, truth);
    let s = h.stats();
    assert_eq!((s.misread, s.reads, s.misspelled), (2, 3, 0));
    h.shutdown().await;
}

#[tokio::test]
async fn sampling_parameters_are_refused_by_the_readers_that_deprecated_them_only() {
    let (h, c) = start(Faults::default()).await;
    let img = gen_image(&h, &c, "gemini-3.1-flash-image", "\"HELLO\"", json!({})).await;
    for (field, value) in [
        ("temperature", json!(0)),
        ("topP", json!(0.9)),
        ("topK", json!(3)),
    ] {
        let mut b = read_body(&img, "image/jpeg");
        b["generationConfig"][field] = value;
        for model in read::SAMPLING_DEPRECATED {
            let (st, v) = post(&h, &c, &format!("/v1/models/{model}:generateContent"), &b).await;
            assert_eq!(st, 400, "{model} {field}: {v}");
            assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
        }
        // Readers whose sampling parameters are not deprecated still take them.
        for model in ["gemini-3.1-flash-lite", "gemini-3.8-flash"] {
            let (st, v) = post(&h, &c, &format!("/v1/models/{model}:generateContent"), &b).await;
            assert_eq!(st, 200, "{model} {field}: {v}");
        }
    }
    // Without them every reader answers.
    for model in read::READERS {
        let b = read_body(&img, "image/jpeg");
        let (st, v) = post(&h, &c, &format!("/v1/models/{model}:generateContent"), &b).await;
        assert_eq!(st, 200, "{model}: {v}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn readers_validate_like_the_real_api() {
    let (h, c) = start(Faults::default()).await;
    let img = gen_image(&h, &c, "gemini-3.1-flash-image", "\"HELLO\"", json!({})).await;
    for retired in ["gemini-2.5-flash", "gemini-2.5-pro"] {
        let (st, v) = post(
            &h,
            &c,
            &format!("/v1beta/models/{retired}:generateContent"),
            &read_body(&img, "image/jpeg"),
        )
        .await;
        assert_eq!(st, 404, "{v}");
        assert_eq!(v["error"]["status"], "NOT_FOUND");
        assert_eq!(v["error"]["code"], 404);
    }
    let path = "/v1beta/models/gemini-3.8-flash:generateContent";
    let mut bad = Vec::new();
    let mut b = read_body(&img, "image/jpeg");
    b["generationConfig"]["responseModalities"] = json!(["TEXT", "IMAGE"]);
    bad.push(b);
    let mut b = read_body(&img, "image/jpeg");
    b["generationConfig"]["imageConfig"] = json!({"aspectRatio": "1:1"});
    bad.push(b);
    let mut b = read_body(&img, "image/jpeg");
    b["generationConfig"]["responseSchema"] = json!({"type": "OBJECT"});
    bad.push(b);
    for b in bad {
        let (st, v) = post(&h, &c, path, &b).await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    }
    // OpenAPI-style schema with uppercase types and another property name.
    let b = json!({
        "contents": [{"parts": [
            {"inline_data": {"mime_type": "image/jpeg", "data": STANDARD.encode(&img)}},
            {"text": "Transcribe."}]}],
        "generation_config": {"response_mime_type": "application/json", "response_schema":
            {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"},
             "lines": {"type": "ARRAY", "items": {"type": "STRING"}}}, "required": ["lines"]}},
    });
    let (st, v) = post(&h, &c, path, &b).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        r#"{"lines":["HELLO"]}"#
    );
    assert_eq!(v["modelVersion"], "gemini-3.8-flash");
    let u = &v["usageMetadata"];
    // 1024×1024 → 2×2 tiles of 768 at 258 tokens, plus 3 text tokens.
    assert_eq!(u["promptTokenCount"], 258 * 4 + 3);
    assert_eq!(
        u["totalTokenCount"].as_u64().unwrap(),
        u["promptTokenCount"].as_u64().unwrap() + u["candidatesTokenCount"].as_u64().unwrap()
    );
    // No schema: plain text lines. No image: nothing to read.
    let b = json!({"contents": [{"parts": [{"text": "What does it say?"}]}]});
    let (st, v) = post(&h, &c, path, &b).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], "");
    let mut b = read_body(&img, "image/jpeg");
    b["contents"][0]["parts"] = json!([{"text": "Transcribe."}]);
    let (st, v) = post(&h, &c, path, &b).await;
    assert_eq!(st, 200, "{v}");
    assert!(answer_texts(&v).is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn foreign_images_read_as_nothing_and_reads_are_not_images() {
    let (h, c) = start(Faults::default()).await;
    // A "photo": smooth noise, no signature.
    let photo = image::RgbImage::from_fn(900, 600, |x, y| {
        let v = ((x * 7 + y * 13) ^ (x * y)) % 256;
        image::Rgb([v as u8, (255 - v) as u8, ((x + y) % 256) as u8])
    });
    let mut jpg = Cursor::new(Vec::new());
    photo.write_to(&mut jpg, image::ImageFormat::Jpeg).unwrap();
    let jpg = jpg.into_inner();
    assert_eq!(h.painted(&jpg), None);
    assert!(read(&h, &c, &jpg, "image/jpeg").await.is_empty());
    let flat = image::RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]));
    let mut png = Cursor::new(Vec::new());
    flat.write_to(&mut png, image::ImageFormat::Png).unwrap();
    assert!(
        read(&h, &c, &png.into_inner(), "image/png")
            .await
            .is_empty()
    );
    // An emulator image of a prompt without quoted copy has no signature.
    let plain = gen_image(&h, &c, "gemini-3.1-flash-image", "a quiet lake", json!({})).await;
    assert_eq!(h.painted(&plain), None);
    assert!(read(&h, &c, &plain, "image/jpeg").await.is_empty());
    let s = h.stats();
    assert_eq!((s.billed_images, s.realtime_billed_images), (1, 1));
    assert_eq!((s.reads, s.reads_billed, s.read_calls), (3, 3, 3));
    assert_eq!(s.prompts_billed.len(), 1);
    // Every image a reader was shown is recorded by its bytes' SHA-256.
    let sha = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    assert_eq!(s.read_images.len(), 3);
    assert_eq!(s.read_images[0], sha(&jpg));
    assert_eq!(s.read_images[2], sha(&plain));
    h.shutdown().await;
}

#[tokio::test]
async fn reads_share_the_http_fault_machinery() {
    let (h, c) = start(Faults {
        first_429: 1,
        first_503: 1,
        ..Faults::default()
    })
    .await;
    let img = image::RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3]));
    let mut png = Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let body = read_body(&png.into_inner(), "image/png");
    let path = "/v1beta/models/gemini-3.1-flash-lite:generateContent";
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post(&h, &c, path, &body).await.0);
    }
    assert_eq!(statuses, [429, 503, 200]);
    let s = h.stats();
    assert_eq!((s.reads, s.reads_billed, s.faults_injected), (1, 1, 2));
    h.shutdown().await;
}

#[tokio::test]
async fn batches_answer_reader_lines() {
    let (h, c) = start(Faults::default()).await;
    let img = gen_image(
        &h,
        &c,
        "gemini-3.1-flash-image",
        "\"LAST CHANCE\"",
        json!({}),
    )
    .await;
    let small = client_copy(&img, 512, FilterType::Lanczos3, true);
    let reqs: Vec<Value> = (0..2)
        .map(|i| json!({"request": read_body(&small, "image/jpeg"), "metadata": {"key": format!("r{i}")}}))
        .collect();
    let (st, op) = post(
        &h,
        &c,
        "/v1beta/models/gemini-3.6-flash:batchGenerateContent",
        &json!({"batch": {"displayName": "qa", "inputConfig": {"requests": {"requests": reqs}}}}),
    )
    .await;
    assert_eq!(st, 200, "{op}");
    let name = op["name"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..200 {
        let v: Value = c
            .get(format!("{}/v1beta/{name}", h.base_url()))
            .header("x-goog-api-key", KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["done"] == json!(true) {
            done = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(done["metadata"]["state"], "BATCH_STATE_SUCCEEDED", "{done}");
    let items = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
        .as_array()
        .unwrap();
    assert_eq!(items.len(), 2);
    for it in items {
        assert_eq!(
            answer_texts(&it["response"]),
            vec!["LAST CHANCE".to_string()]
        );
    }
    // Retired readers and image settings are refused at create / per item.
    let (st, _) = post(
        &h,
        &c,
        "/v1beta/models/gemini-2.5-pro:batchGenerateContent",
        &json!({"batch": {"inputConfig": {"requests": {"requests": [{"request": read_body(&small, "image/jpeg")}]}}}}),
    )
    .await;
    assert_eq!(st, 404);
    let s = h.stats();
    assert_eq!((s.billed_images, s.batch_billed_images), (1, 0));
    assert_eq!((s.reads, s.reads_billed), (2, 2));
    h.shutdown().await;
}

#[test]
fn copy_faults_load_from_toml() {
    let f = Faults::from_toml_str("misspell_rate = 0.1\nmisread_rate = 0.05\n").unwrap();
    assert_eq!((f.misspell_rate, f.misread_rate), (0.1, 0.05));
    assert!(Faults::from_toml_str("misspell_rate = 2.0\n").is_err());
    assert!(Faults::from_toml_str("misspel_rate = 0.1\n").is_err());
}
