//! Tests over real HTTP (reqwest against a server on port 0).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::*;

const KEY: &str = "test-key";

async fn start(faults: Faults) -> (EmulatorHandle, reqwest::Client) {
    let h = spawn(
        EmulatorConfig {
            seed: 7,
            api_key: Some(KEY.into()),
            faults,
        },
        0,
    )
    .await
    .expect("spawn emulator");
    (h, reqwest::Client::new())
}

fn gen_body(prompt: &str, image_config: Value) -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": image_config},
    })
}

async fn generate(
    h: &EmulatorHandle,
    c: &reqwest::Client,
    model: &str,
    body: &Value,
) -> (u16, Value) {
    let r = c
        .post(format!(
            "{}/v1beta/models/{model}:generateContent",
            h.base_url()
        ))
        .header("x-goog-api-key", KEY)
        .json(body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("json body");
    (status, v)
}

/// Non-thought image parts, decoded.
fn images(v: &Value) -> Vec<(String, Vec<u8>)> {
    v["candidates"][0]["content"]["parts"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p["thought"] != json!(true))
                .filter_map(|p| {
                    let d = p.get("inlineData")?;
                    Some((
                        d["mimeType"].as_str()?.to_string(),
                        STANDARD.decode(d["data"].as_str()?).ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn flash25_returns_png_at_the_documented_size_with_usage() {
    let (h, c) = start(Faults::default()).await;
    let (st, v) = generate(
        &h,
        &c,
        "gemini-2.5-flash-image",
        &gen_body("a red fox", json!({"aspectRatio": "16:9"})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let imgs = images(&v);
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0].0, "image/png");
    let img = image::load_from_memory(&imgs[0].1).unwrap();
    assert_eq!((img.width(), img.height()), (1344, 768));
    let u = &v["usageMetadata"];
    assert_eq!(u["candidatesTokensDetails"][0]["tokenCount"], 1290);
    assert!(u.get("thoughtsTokenCount").is_none());
    assert_eq!(v["modelVersion"], "gemini-2.5-flash-image");
    assert_eq!(v["responseId"].as_str().unwrap().len(), 23);
    let s = h.stats();
    assert_eq!((s.generate_calls, s.realtime_billed_images), (1, 1));
    let sha = hex::encode(Sha256::digest(b"a red fox"));
    assert_eq!(s.prompts_billed.get(&sha), Some(&1));
    h.shutdown().await;
}

#[tokio::test]
async fn an_edit_turn_needs_the_models_image_with_its_signature_and_is_recorded() {
    let (h, c) = start(Faults::default()).await;
    let model = "gemini-3.1-flash-image";
    let body = gen_body("a red fox", json!({"aspectRatio": "1:1"}));
    let (st, v) = generate(&h, &c, model, &body).await;
    assert_eq!(st, 200, "{v}");
    let part = v["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p.get("inlineData").is_some() && p["thought"] != json!(true))
        .unwrap()
        .clone();
    let sig = part["thoughtSignature"].as_str().unwrap().to_string();
    let image = STANDARD
        .decode(part["inlineData"]["data"].as_str().unwrap())
        .unwrap();
    let edit = |model_part: Value| {
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "a red fox"}]},
                {"role": "model", "parts": [model_part]},
                {"role": "user", "parts": [{"text": "make it blue"}]},
            ],
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "1:1"}},
        })
    };
    // Without its signature the model's image is refused, as the service does.
    let unsigned = json!({"inlineData": part["inlineData"].clone()});
    let (st, v) = generate(&h, &c, model, &edit(unsigned)).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v["error"]["message"],
        "Image part is missing a thought_signature in content position 2, part position 1"
    );
    assert!(h.stats().edits.is_empty());
    let (st, v) = generate(&h, &c, model, &edit(part.clone())).await;
    assert_eq!(st, 200, "{v}");
    let edited = images(&v);
    assert_ne!(edited[0].1, image, "an edit is a new image");
    let seen = h.stats().edits;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].image_sha256, hex::encode(Sha256::digest(&image)));
    assert_eq!(seen[0].thought_signature.as_deref(), Some(sig.as_str()));
    assert!(seen[0].signature_issued);
    assert_eq!(seen[0].instruction, "make it blue");
    // A signature the emulator never gave for this conversation is refused.
    let mut forged = part;
    forged["thoughtSignature"] = json!("Zm9yZ2Vk");
    let (st, v) = generate(&h, &c, model, &edit(forged)).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(h.stats().edits.len(), 1);
    h.shutdown().await;
}

/// The non-thought parts of a response's candidate: its model turn.
fn model_turn(v: &Value) -> Vec<Value> {
    v["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["thought"] != json!(true))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_conversation_must_send_every_model_turn_with_the_signatures_issued_for_it() {
    let (h, c) = start(Faults::default()).await;
    let model = "gemini-3.1-flash-image";
    let config =
        json!({"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "1:1"}});
    // A prompt whose answer leads with a (signed) text part.
    let mut found = None;
    for i in 0..64 {
        let p = format!("a red fox \"Fox {i}\"");
        let body = json!({"contents": [{"role": "user", "parts": [{"text": p}]}],
                          "generationConfig": config});
        let (st, v) = generate(&h, &c, model, &body).await;
        assert_eq!(st, 200, "{v}");
        let turn = model_turn(&v);
        if turn.len() >= 2 && turn[0].get("text").is_some() {
            found = Some((p, turn));
            break;
        }
    }
    let (prompt, turn1) = found.expect("a prompt with a leading text part");
    assert!(turn1[0]["thoughtSignature"].is_string(), "{turn1:?}");
    let body = |turns: Vec<Value>| json!({"contents": turns, "generationConfig": config});
    let user = |t: &str| json!({"role": "user", "parts": [{"text": t}]});
    let model_of = |parts: Vec<Value>| json!({"role": "model", "parts": parts});
    let (st, v) = generate(
        &h,
        &c,
        model,
        &body(vec![
            user(&prompt),
            model_of(turn1.clone()),
            user("Bigger logo"),
        ]),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let turn2 = model_turn(&v);
    // Revision 3: the whole conversation, every signature as issued.
    let third = vec![
        user(&prompt),
        model_of(turn1.clone()),
        user("Bigger logo"),
        model_of(turn2.clone()),
        user("Warmer light"),
    ];
    let (st, v) = generate(&h, &c, model, &body(third.clone())).await;
    assert_eq!(st, 200, "{v}");
    let s = h.stats();
    assert_eq!(s.edits.len(), 2);
    assert_eq!(s.conversations.len(), 2);
    let conv = &s.conversations[1];
    let roles: Vec<&str> = conv.turns.iter().map(|t| t.role.as_str()).collect();
    assert_eq!(roles, ["user", "model", "user", "model", "user"]);
    for (sent, seen) in [(&turn1, &conv.turns[1]), (&turn2, &conv.turns[3])] {
        assert_eq!(seen.parts.len(), sent.len());
        for (p, q) in sent.iter().zip(&seen.parts) {
            assert_eq!(
                p["thoughtSignature"].as_str(),
                q.thought_signature.as_deref()
            );
            assert_eq!(q.signature_issued, q.thought_signature.is_some());
        }
    }
    assert_eq!(s.edits[1].instruction, "Warmer light");

    // Refused: the leading text part without its signature …
    let mut t = third.clone();
    t[1]["parts"][0]
        .as_object_mut()
        .unwrap()
        .remove("thoughtSignature");
    let (st, v) = generate(&h, &c, model, &body(t)).await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("content position 2, part position 1")
    );
    // … an image part without its signature …
    let mut t = third.clone();
    let img = turn2
        .iter()
        .position(|p| p.get("inlineData").is_some())
        .unwrap();
    t[3]["parts"][img]
        .as_object_mut()
        .unwrap()
        .remove("thoughtSignature");
    let (st, v) = generate(&h, &c, model, &body(t)).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v["error"]["message"],
        format!(
            "Image part is missing a thought_signature in content position 4, part position {}",
            img + 1
        )
    );
    // … and turn 1's signatures replayed in turn 2's place (issued for
    // another conversation).
    let mut t = third.clone();
    t[3] = model_of(turn1.clone());
    let (st, v) = generate(&h, &c, model, &body(t)).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    // A single-turn edit of turn 2's image (no model turn, no signature)
    // is accepted and recorded with its conversation of one user turn.
    let image = turn2[img]["inlineData"].clone();
    let single = vec![json!({"role": "user", "parts": [
        {"inlineData": image}, {"text": "Replace the headline 'Fox' with 'Renard'"}]})];
    let (st, v) = generate(&h, &c, model, &body(single)).await;
    assert_eq!(st, 200, "{v}");
    let s = h.stats();
    assert_eq!(s.edits.len(), 3, "{:?}", s.edits);
    assert_eq!(s.edits[2].thought_signature, None);
    assert_eq!(s.conversations[2].turns.len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn pro3_signs_image_parts_and_adds_thoughts_when_asked() {
    let (h, c) = start(Faults::default()).await;
    let mut body = gen_body(
        "weather chart",
        json!({"aspectRatio": "16:9", "imageSize": "2K"}),
    );
    body["generationConfig"]["thinkingConfig"] = json!({"includeThoughts": true});
    let (st, v) = generate(&h, &c, "gemini-3-pro-image", &body).await;
    assert_eq!(st, 200, "{v}");
    let parts = v["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert!(
        parts
            .iter()
            .any(|p| p["thought"] == json!(true) && p.get("text").is_some())
    );
    assert!(
        parts
            .iter()
            .any(|p| p["thought"] == json!(true) && p.get("inlineData").is_some())
    );
    for p in parts
        .iter()
        .filter(|p| p["thought"] != json!(true) && p.get("inlineData").is_some())
    {
        assert!(p["thoughtSignature"].is_string());
    }
    for p in parts.iter().filter(|p| p["thought"] == json!(true)) {
        assert!(p.get("thoughtSignature").is_none());
    }
    let imgs = images(&v);
    assert_eq!(imgs[0].0, "image/jpeg");
    let img = image::load_from_memory(&imgs[0].1).unwrap();
    assert_eq!((img.width(), img.height()), (2752, 1536));
    assert!(v["usageMetadata"]["thoughtsTokenCount"].as_u64().unwrap() > 0);
    h.shutdown().await;
}

#[tokio::test]
async fn snake_case_requests_with_a_reference_image_are_accepted() {
    let (h, c) = start(Faults::default()).await;
    let mut png = Vec::new();
    image::DynamicImage::new_rgb8(300, 200)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let body = json!({
        "contents": [{"parts": [
            {"inline_data": {"mime_type": "image/png", "data": STANDARD.encode(&png)}},
            {"text": "repaint as watercolor"}]}],
        "generation_config": {"response_modalities": ["Image"], "image_config": {"aspect_ratio": "4:3", "image_size": "512"}},
    });
    let (st, v) = generate(&h, &c, "gemini-3.1-flash-image", &body).await;
    assert_eq!(st, 200, "{v}");
    let img = image::load_from_memory(&images(&v)[0].1).unwrap();
    assert_eq!((img.width(), img.height()), (600, 448));
    let details = v["usageMetadata"]["promptTokensDetails"]
        .as_array()
        .unwrap();
    assert!(
        details
            .iter()
            .any(|d| d["modality"] == "IMAGE" && d["tokenCount"] == 560)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn auth_answers_match_the_real_service() {
    let (h, c) = start(Faults::default()).await;
    let url = format!(
        "{}/v1/models/gemini-2.5-flash-image:generateContent",
        h.base_url()
    );
    let body = gen_body("x", json!({}));
    let r = c.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json; charset=UTF-8"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], "PERMISSION_DENIED");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Method doesn't allow unregistered callers")
    );

    let r = c
        .post(&url)
        .header("x-goog-api-key", "nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "API key not valid. Please pass a valid API key."
    );
    assert_eq!(v["error"]["details"][0]["reason"], "API_KEY_INVALID");

    let r = c
        .post(format!("{url}?key={KEY}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(h.stats().generate_calls, 3);
    h.shutdown().await;
}

#[tokio::test]
async fn invalid_requests_get_400_or_404() {
    let (h, c) = start(Faults::default()).await;
    let cases = [
        ("gemini-9-image", gen_body("x", json!({})), 404, "NOT_FOUND"),
        // Shut down on 2026-06-25 (Gemini API deprecations page).
        (
            "gemini-3-pro-image-preview",
            gen_body("x", json!({})),
            404,
            "NOT_FOUND",
        ),
        (
            "gemini-3.1-flash-image-preview",
            gen_body("x", json!({})),
            404,
            "NOT_FOUND",
        ),
        (
            "gemini-3-pro-image",
            gen_body("x", json!({"imageSize": "1k"})),
            400,
            "1k",
        ),
        (
            "gemini-2.5-flash-image",
            gen_body("x", json!({"imageSize": "1K"})),
            400,
            "imageSize",
        ),
        (
            "gemini-2.5-flash-image",
            gen_body("x", json!({"aspectRatio": "1:4"})),
            400,
            "aspect ratio",
        ),
        (
            "gemini-3-pro-image",
            gen_body("x", json!({"personGeneration": "ALLOW"})),
            400,
            "Unknown name",
        ),
        (
            "gemini-3-pro-image",
            json!({"contents": [{"parts": [{"text": "x"}]}], "bogus": 1}),
            400,
            "Unknown name \"bogus\": Cannot find field.",
        ),
        (
            "gemini-3-pro-image",
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}}),
            400,
            "Multiple candidates",
        ),
        (
            "gemini-3-pro-image",
            json!({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "!!!"}}]}]}),
            400,
            "Base64 decoding failed",
        ),
    ];
    for (model, body, code, needle) in cases {
        let (st, v) = generate(&h, &c, model, &body).await;
        assert_eq!(st, code, "{model} {body}: {v}");
        let text = format!(
            "{} {}",
            v["error"]["status"],
            v["error"]["message"].as_str().unwrap_or("")
        );
        assert!(text.contains(needle), "{needle} not in {v}");
    }
    // Four 1x1 PNGs exceed 2.5 Flash Image's limit of 3.
    let mut png = Vec::new();
    image::DynamicImage::new_rgb8(1, 1)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let part = json!({"inlineData": {"mimeType": "image/png", "data": STANDARD.encode(&png)}});
    let body = json!({"contents": [{"parts": [part, part, part, part, {"text": "x"}]}]});
    let (st, v) = generate(&h, &c, "gemini-2.5-flash-image", &body).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(h.stats().billed_images, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn every_trigger_word_scripts_its_outcome() {
    let (h, c) = start(Faults::default()).await;
    let m = "gemini-3-pro-image";
    let (st, v) = generate(&h, &c, m, &gen_body("EMULATE_BLOCK_PROMPT", json!({}))).await;
    assert_eq!(st, 200);
    assert_eq!(v["promptFeedback"]["blockReason"], "PROHIBITED_CONTENT");
    assert!(v.get("candidates").is_none());

    let (_, v) = generate(&h, &c, m, &gen_body("EMULATE_IMAGE_SAFETY", json!({}))).await;
    assert_eq!(v["candidates"][0]["finishReason"], "IMAGE_SAFETY");
    assert_eq!(v["candidates"][0]["content"], json!({}));
    assert!(v["candidates"][0]["finishMessage"].is_string());

    let (_, v) = generate(&h, &c, m, &gen_body("EMULATE_TEXT_ONLY", json!({}))).await;
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    let parts = v["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert!(parts[0]["text"].is_string());

    let (_, v) = generate(&h, &c, m, &gen_body("EMULATE_NO_IMAGE", json!({}))).await;
    assert_eq!(v["candidates"][0]["finishReason"], "NO_IMAGE");

    let (_, v) = generate(&h, &c, m, &gen_body("EMULATE_BAD_IMAGE", json!({}))).await;
    let imgs = images(&v);
    assert_eq!(imgs.len(), 1);
    assert!(image::load_from_memory(&imgs[0].1).is_err());

    let (_, v) = generate(&h, &c, m, &gen_body("EMULATE_TWO_IMAGES", json!({}))).await;
    assert_eq!(images(&v).len(), 2);

    let (st, _) = generate(&h, &c, m, &gen_body("EMULATE_INVALID_ARGUMENT", json!({}))).await;
    assert_eq!(st, 400);

    // Only the bad image (1) and the two images (2) are billed.
    assert_eq!(h.stats().realtime_billed_images, 3);
    h.shutdown().await;
}

#[tokio::test]
async fn injected_429_carries_retry_info_and_quota_failure() {
    let (h, c) = start(Faults {
        first_429: 1,
        retry_delay_s: 1.5,
        ..Faults::default()
    })
    .await;
    let r = c
        .post(format!(
            "{}/v1beta/models/gemini-3-pro-image:generateContent",
            h.base_url()
        ))
        .header("x-goog-api-key", KEY)
        .json(&gen_body("x", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_none());
    let v: Value = r.json().await.unwrap();
    let details = v["error"]["details"].as_array().unwrap();
    assert!(details.iter().any(|d| d["retryDelay"] == "1.5s"));
    assert!(details.iter().any(|d| {
        d["violations"][0]["quotaId"]
            .as_str()
            .is_some_and(|q| q.contains("PerMinute"))
    }));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Please retry in 1.5s.")
    );
    let (st, _) = generate(&h, &c, "gemini-3-pro-image", &gen_body("x", json!({}))).await;
    assert_eq!(st, 200);
    assert_eq!(h.stats().faults_injected, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn daily_quota_and_faults_set_over_http() {
    let (h, c) = start(Faults::default()).await;
    let r = c
        .post(format!("{}/_emulator/faults", h.base_url()))
        .json(&json!({"daily_quota_after": 1, "retry_after_header": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (st, _) = generate(&h, &c, "gemini-2.5-flash-image", &gen_body("a", json!({}))).await;
    assert_eq!(st, 200);
    let (st, v) = generate(&h, &c, "gemini-2.5-flash-image", &gen_body("b", json!({}))).await;
    assert_eq!(st, 429);
    assert!(
        v.to_string()
            .contains("GenerateRequestsPerDayPerProjectPerModel")
    );
    let stats: EmulatorStats = c
        .get(format!("{}/_emulator/stats", h.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats.generate_calls, 2);
    assert_eq!(stats.faults_injected, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn connection_reset_cuts_the_body_and_is_not_billed() {
    let (h, c) = start(Faults {
        first_reset: 1,
        ..Faults::default()
    })
    .await;
    let r = c
        .post(format!(
            "{}/v1beta/models/gemini-2.5-flash-image:generateContent",
            h.base_url()
        ))
        .header("x-goog-api-key", KEY)
        .json(&gen_body("x", json!({})))
        .send()
        .await;
    let failed = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "the body must not arrive whole");
    assert_eq!(h.stats().billed_images, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn faults_are_deterministic_for_a_seed() {
    async fn outcomes() -> Vec<u16> {
        let (h, c) = start(Faults {
            rate_429: 0.3,
            rate_503: 0.2,
            ..Faults::default()
        })
        .await;
        let mut out = Vec::new();
        for i in 0..16 {
            let (st, _) = generate(
                &h,
                &c,
                "gemini-2.5-flash-image",
                &gen_body(&format!("p{}", i % 5), json!({})),
            )
            .await;
            out.push(st);
        }
        h.shutdown().await;
        out
    }
    let a = outcomes().await;
    let b = outcomes().await;
    assert_eq!(a, b);
    assert!(a.iter().any(|s| *s != 200) && a.contains(&200), "{a:?}");
}

/// Resumable upload in two chunks; returns the file name (`files/…`).
async fn upload(h: &EmulatorHandle, c: &reqwest::Client, data: &[u8], display: &str) -> String {
    let r = c
        .post(format!("{}/upload/v1beta/files", h.base_url()))
        .header("x-goog-api-key", KEY)
        .header("X-Goog-Upload-Protocol", "resumable")
        .header("X-Goog-Upload-Command", "start")
        .header(
            "X-Goog-Upload-Header-Content-Length",
            data.len().to_string(),
        )
        .header("X-Goog-Upload-Header-Content-Type", "jsonl")
        .json(&json!({"file": {"display_name": display}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-goog-upload-status"], "active");
    let url = r.headers()["x-goog-upload-url"]
        .to_str()
        .unwrap()
        .to_string();
    let mid = data.len() / 2;
    let r = c
        .post(&url)
        .header("X-Goog-Upload-Command", "upload")
        .header("X-Goog-Upload-Offset", "0")
        .body(data[..mid].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-goog-upload-status"], "active");
    let r = c
        .post(&url)
        .header("X-Goog-Upload-Command", "upload, finalize")
        .header("X-Goog-Upload-Offset", mid.to_string())
        .body(data[mid..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-goog-upload-status"], "final");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["file"]["sizeBytes"], data.len().to_string());
    assert_eq!(v["file"]["mimeType"], "jsonl");
    v["file"]["name"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn resumable_upload_rejects_wrong_offsets_and_files_api_works() {
    let (h, c) = start(Faults::default()).await;
    let r = c
        .post(format!("{}/upload/v1/files", h.base_url()))
        .header("x-goog-api-key", KEY)
        .header("X-Goog-Upload-Protocol", "resumable")
        .header("X-Goog-Upload-Command", "start")
        .send()
        .await
        .unwrap();
    let url = r.headers()["x-goog-upload-url"]
        .to_str()
        .unwrap()
        .to_string();
    let r = c
        .post(&url)
        .header("X-Goog-Upload-Command", "upload")
        .header("X-Goog-Upload-Offset", "5")
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["x-goog-upload-size-received"], "0");
    let r = c
        .post(&url)
        .header("X-Goog-Upload-Command", "query")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-goog-upload-status"], "active");

    let name = upload(&h, &c, b"hello world\n", "greeting").await;
    let id = name.strip_prefix("files/").unwrap();
    let v: Value = c
        .get(format!("{}/v1beta/{name}", h.base_url()))
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["displayName"], "greeting");
    assert_eq!(v["source"], "UPLOADED");
    let expected = STANDARD.encode(hex::encode(Sha256::digest(b"hello world\n")));
    assert_eq!(v["sha256Hash"], expected);
    // Uploaded files cannot be downloaded.
    let r = c
        .get(format!(
            "{}/v1beta/files/{id}:download?alt=media",
            h.base_url()
        ))
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = c
        .get(format!("{}/v1beta/files?pageSize=5", h.base_url()))
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    let r = c
        .delete(format!("{}/v1beta/{name}", h.base_url()))
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c
        .get(format!("{}/v1beta/{name}", h.base_url()))
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(h.stats().files_uploaded, 1);
    h.shutdown().await;
}

async fn create_batch(
    h: &EmulatorHandle,
    c: &reqwest::Client,
    model: &str,
    batch: Value,
) -> (u16, Value) {
    let r = c
        .post(format!(
            "{}/v1beta/models/{model}:batchGenerateContent",
            h.base_url()
        ))
        .header("x-goog-api-key", KEY)
        .json(&json!({"batch": batch}))
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap())
}

async fn get_batch(h: &EmulatorHandle, c: &reqwest::Client, name: &str) -> Value {
    c.get(format!("{}/v1beta/{name}", h.base_url()))
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Poll until `done` (bounded).
async fn wait_done(h: &EmulatorHandle, c: &reqwest::Client, name: &str) -> Value {
    for _ in 0..200 {
        let v = get_batch(h, c, name).await;
        if v["done"] == json!(true) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("batch {name} never finished");
}

#[tokio::test]
async fn file_batch_lifecycle_and_both_download_paths() {
    let (h, c) = start(Faults {
        batch: BatchFaults {
            polls_until_done: 2,
            ..BatchFaults::default()
        },
        ..Faults::default()
    })
    .await;
    let mut jsonl = String::new();
    for i in 0..6 {
        let prompt = if i == 3 {
            "EMULATE_IMAGE_SAFETY".to_string()
        } else {
            format!("fox {i}")
        };
        let line = json!({"key": format!("k{i}"), "request": {
            "contents": [{"parts": [{"text": prompt}]}],
            "generation_config": {"imageConfig": {"aspectRatio": "4:3"}}}});
        jsonl.push_str(&line.to_string());
        jsonl.push('\n');
    }
    jsonl.push_str(
        &json!({"key": "bad", "request": {"contents": [{"parts": [{"text": "x"}]}], "bogus": 1}})
            .to_string(),
    );
    jsonl.push('\n');
    let file = upload(&h, &c, jsonl.as_bytes(), "reqs").await;
    let (st, op) = create_batch(
        &h,
        &c,
        "gemini-2.5-flash-image",
        json!({"display_name": "night-1", "input_config": {"file_name": file}}),
    )
    .await;
    assert_eq!(st, 200, "{op}");
    assert_eq!(op["metadata"]["state"], "BATCH_STATE_PENDING");
    assert_eq!(op["metadata"]["batchStats"]["requestCount"], "7");
    assert_eq!(op["metadata"]["inputConfig"]["fileName"], file);
    assert!(op.get("done").is_none());
    let name = op["name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), "batches/".len() + 36);

    let first = get_batch(&h, &c, &name).await;
    assert_eq!(first["metadata"]["state"], "BATCH_STATE_RUNNING");
    let done = wait_done(&h, &c, &name).await;
    assert_eq!(done["metadata"]["state"], "BATCH_STATE_SUCCEEDED");
    assert_eq!(
        done["metadata"]["batchStats"]["successfulRequestCount"],
        "6"
    );
    assert_eq!(done["metadata"]["batchStats"]["failedRequestCount"], "1");
    let rf = done["metadata"]["output"]["responsesFile"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(done["response"]["responsesFile"], rf);
    assert_eq!(
        rf,
        format!("files/batch-{}", name.strip_prefix("batches/").unwrap())
    );

    let a = c
        .get(format!("{}/v1beta/{rf}:download?alt=media", h.base_url()))
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let b = c
        .get(format!(
            "{}/download/v1beta/{rf}:download?alt=media",
            h.base_url()
        ))
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(a, b);
    let lines: Vec<Value> = std::str::from_utf8(&a)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    let keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_ne!(
        keys,
        ["k0", "k1", "k2", "k3", "k4", "k5", "bad"],
        "order is shuffled"
    );
    let bad = lines.iter().find(|l| l["key"] == "bad").unwrap();
    assert_eq!(bad["error"]["code"], 3);
    let safety = lines.iter().find(|l| l["key"] == "k3").unwrap();
    assert_eq!(
        safety["response"]["candidates"][0]["finishReason"],
        "IMAGE_SAFETY"
    );
    let ok = lines.iter().find(|l| l["key"] == "k0").unwrap();
    let img = image::load_from_memory(&images(&ok["response"])[0].1).unwrap();
    assert_eq!((img.width(), img.height()), (1184, 864));
    let s = h.stats();
    assert_eq!(s.batch_billed_images, 5);
    assert_eq!(s.realtime_billed_images, 0);
    assert_eq!(s.batch_display_names.get("night-1"), Some(&1));
    h.shutdown().await;
}

#[tokio::test]
async fn inline_batch_returns_responses_in_order_with_metadata() {
    let (h, c) = start(Faults::default()).await;
    let reqs: Vec<Value> = (0..3)
        .map(|i| {
            json!({"request": {"contents": [{"parts": [{"text": format!("dog {i}")}]}]},
                   "metadata": {"key": format!("dog_{i}")}})
        })
        .collect();
    let (st, op) = create_batch(
        &h,
        &c,
        "gemini-3.1-flash-image",
        json!({"displayName": "inline", "inputConfig": {"requests": {"requests": reqs}}}),
    )
    .await;
    assert_eq!(st, 200, "{op}");
    assert!(op["metadata"].get("inputConfig").is_none());
    let done = wait_done(&h, &c, op["name"].as_str().unwrap()).await;
    let items = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
        .as_array()
        .unwrap();
    assert_eq!(items.len(), 3);
    for (i, it) in items.iter().enumerate() {
        assert_eq!(it["metadata"]["key"], format!("dog_{i}"));
        assert_eq!(images(&it["response"]).len(), 1);
    }
    assert_eq!(
        done["response"]["inlinedResponses"]["inlinedResponses"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(h.stats().batch_billed_images, 3);
    h.shutdown().await;
}

#[tokio::test]
async fn batch_list_pages_newest_first_and_finds_by_display_name() {
    let (h, c) = start(Faults::default()).await;
    let req = json!({"requests": {"requests": [{"request": {"contents": [{"parts": [{"text": "x"}]}]}}]}});
    for i in 0..5 {
        let (st, _) = create_batch(
            &h,
            &c,
            "gemini-2.5-flash-image",
            json!({"displayName": format!("run-{i}"), "inputConfig": req}),
        )
        .await;
        assert_eq!(st, 200);
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("{}/v1beta/batches?pageSize=2", h.base_url());
        if let Some(t) = &token {
            url.push_str(&format!("&pageToken={t}"));
        }
        let v: Value = c
            .get(url)
            .header("x-goog-api-key", KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ops = v["operations"].as_array().unwrap();
        assert!(ops.len() <= 2);
        names.extend(
            ops.iter()
                .map(|o| o["metadata"]["displayName"].as_str().unwrap().to_string()),
        );
        match v["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["run-4", "run-3", "run-2", "run-1", "run-0"]);
    h.shutdown().await;
}

#[tokio::test]
async fn batch_faults_create_429_fail_expire_and_late_output() {
    let (h, c) = start(Faults {
        batch: BatchFaults {
            create_429_first: 1,
            fail_batches: 1,
            expire_batches: 1,
            succeeded_before_output_polls: 2,
            ..BatchFaults::default()
        },
        ..Faults::default()
    })
    .await;
    let input = json!({"requests": {"requests": [{"request": {"contents": [{"parts": [{"text": "x"}]}]}}]}});
    let batch = json!({"displayName": "b", "inputConfig": input});
    let (st, v) = create_batch(&h, &c, "gemini-2.5-flash-image", batch.clone()).await;
    assert_eq!(st, 429, "{v}");
    let mut states = Vec::new();
    for _ in 0..3 {
        let (st, op) = create_batch(&h, &c, "gemini-2.5-flash-image", batch.clone()).await;
        assert_eq!(st, 200);
        let done = wait_done(&h, &c, op["name"].as_str().unwrap()).await;
        states.push((
            done["metadata"]["state"].as_str().unwrap().to_string(),
            done,
        ));
    }
    assert_eq!(states[0].0, "BATCH_STATE_FAILED");
    assert!(states[0].1["error"]["code"].is_number());
    assert_eq!(states[1].0, "BATCH_STATE_EXPIRED");
    assert_eq!(states[2].0, "BATCH_STATE_SUCCEEDED");
    // Succeeded but no output yet: the first two gets show none.
    assert!(states[2].1["metadata"].get("output").is_none());
    let name = states[2].1["name"].as_str().unwrap();
    let again = get_batch(&h, &c, name).await;
    assert!(again["metadata"].get("output").is_some(), "{again}");
    assert_eq!(h.stats().batches_created, 3);
    assert_eq!(h.stats().batch_billed_images, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn truncated_download_and_item_errors() {
    let (h, c) = start(Faults {
        batch: BatchFaults {
            truncate_download_first: 1,
            item_error_rate: 1.0,
            ..BatchFaults::default()
        },
        ..Faults::default()
    })
    .await;
    let file = upload(
        &h,
        &c,
        format!(
            "{}\n",
            json!({"key": "a", "request": {"contents": [{"parts": [{"text": "x"}]}]}})
        )
        .as_bytes(),
        "in",
    )
    .await;
    let (_, op) = create_batch(
        &h,
        &c,
        "gemini-3-pro-image",
        json!({"displayName": "t", "inputConfig": {"fileName": file}}),
    )
    .await;
    let done = wait_done(&h, &c, op["name"].as_str().unwrap()).await;
    let rf = done["metadata"]["output"]["responsesFile"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{}/v1beta/{rf}:download?alt=media", h.base_url());
    let first = c
        .get(&url)
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap()
        .bytes()
        .await;
    assert!(first.is_err(), "first download must be cut short");
    let second = c
        .get(&url)
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let line: Value = serde_json::from_slice(second.trim_ascii()).unwrap();
    assert!(
        [8, 13, 14].contains(&line["error"]["code"].as_i64().unwrap()),
        "{line}"
    );
    assert_eq!(h.stats().batch_billed_images, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn cancel_delete_and_the_concurrency_limit() {
    let (h, c) = start(Faults {
        batch: BatchFaults {
            polls_until_done: 100,
            max_concurrent_batches: Some(2),
            ..BatchFaults::default()
        },
        ..Faults::default()
    })
    .await;
    let input = json!({"requests": {"requests": [{"request": {"contents": [{"parts": [{"text": "x"}]}]}}]}});
    let batch = json!({"displayName": "c", "inputConfig": input});
    let (_, a) = create_batch(&h, &c, "gemini-2.5-flash-image", batch.clone()).await;
    let (_, b) = create_batch(&h, &c, "gemini-2.5-flash-image", batch.clone()).await;
    let (st, _) = create_batch(&h, &c, "gemini-2.5-flash-image", batch.clone()).await;
    assert_eq!(st, 429);
    let a = a["name"].as_str().unwrap();
    let r = c
        .post(format!("{}/v1beta/{a}:cancel", h.base_url()))
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v = get_batch(&h, &c, a).await;
    assert_eq!(v["metadata"]["state"], "BATCH_STATE_CANCELLED");
    assert_eq!(v["done"], true);
    let (st, _) = create_batch(&h, &c, "gemini-2.5-flash-image", batch).await;
    assert_eq!(st, 200);
    let b = b["name"].as_str().unwrap();
    let r = c
        .delete(format!("{}/v1beta/{b}", h.base_url()))
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c
        .get(format!("{}/v1beta/{b}", h.base_url()))
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(h.stats().billed_images, 0);
    h.shutdown().await;
}

/// The throughput the project's benchmark needs: 2,000 requests at
/// concurrency 32 with 300 ms latency must reach 90 % of the ideal rate.
/// Ignored by default (takes ~20 s); run with `--ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_stays_near_ideal_under_latency() {
    use futures_util::StreamExt;
    let (h, c) = start(Faults {
        latency_ms: 300,
        ..Faults::default()
    })
    .await;
    let total = 2000usize;
    let conc = 32usize;
    let t0 = std::time::Instant::now();
    let base = h.base_url();
    let ok = futures_util::stream::iter(0..total)
        .map(|i| {
            let c = c.clone();
            let base = base.clone();
            async move {
                let r = c
                    .post(format!(
                        "{base}/v1beta/models/gemini-3.1-flash-image:generateContent"
                    ))
                    .header("x-goog-api-key", KEY)
                    .json(&gen_body(
                        &format!("ad {i}"),
                        json!({"aspectRatio": "16:9"}),
                    ))
                    .send()
                    .await
                    .ok()?;
                let v: Value = r.json().await.ok()?;
                Some(images(&v).len())
            }
        })
        .buffer_unordered(conc)
        .filter(|r| std::future::ready(r == &Some(1)))
        .count()
        .await;
    let secs = t0.elapsed().as_secs_f64();
    let ideal = total as f64 / conc as f64 * 0.3;
    eprintln!(
        "{ok} ok in {secs:.2}s, ideal {ideal:.2}s, ratio {:.3}",
        ideal / secs
    );
    assert_eq!(ok, total);
    assert!(ideal / secs >= 0.9, "{secs}s vs ideal {ideal}s");
    h.shutdown().await;
}

#[tokio::test]
async fn image_mime_switches_the_format_gemini_images_come_back_in() {
    let (h, c) = start(Faults {
        image_mime: Some("image/png".into()),
        ..Faults::default()
    })
    .await;
    let body = gen_body("a \"Hello\" banner", json!({"aspectRatio": "16:9"}));
    let (st, v) = generate(&h, &c, "gemini-3.1-flash-image", &body).await;
    assert_eq!(st, 200, "{v}");
    let imgs = images(&v);
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0].0, "image/png");
    assert_eq!(
        image::guess_format(&imgs[0].1).unwrap(),
        image::ImageFormat::Png
    );
    // Back to the family's own format (JPEG for 3.1 Flash Image).
    h.set_faults(Faults::default());
    let (_, v) = generate(&h, &c, "gemini-3.1-flash-image", &body).await;
    let imgs = images(&v);
    assert_eq!(imgs[0].0, "image/jpeg");
    assert_eq!(
        image::guess_format(&imgs[0].1).unwrap(),
        image::ImageFormat::Jpeg
    );
    h.shutdown().await;
    let bad = Faults::from_toml_str("image_mime = \"image/webp\"\n");
    assert!(
        bad.is_err_and(|(_, m)| m.contains("image_mime")),
        "only PNG and JPEG are Gemini image formats"
    );
}

#[tokio::test]
async fn rpm_limit_answers_the_per_minute_quota_429_with_retry_info() {
    let (h, c) = start(Faults {
        rpm_limit: Some(1),
        ..Faults::default()
    })
    .await;
    let body = gen_body("a red fox", json!({"aspectRatio": "1:1"}));
    let (st, _) = generate(&h, &c, "gemini-2.5-flash-image", &body).await;
    assert_eq!(st, 200);
    let (st, v) = generate(&h, &c, "gemini-2.5-flash-image", &body).await;
    assert_eq!(st, 429);
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
    let details = v["error"]["details"].as_array().unwrap();
    let delay = details
        .iter()
        .find_map(|d| d["retryDelay"].as_str())
        .expect("RetryInfo");
    let secs: f64 = delay.trim_end_matches('s').parse().unwrap();
    assert!(secs > 0.0 && secs <= 60.0, "{delay}");
    let quota = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.QuotaFailure")
        .expect("QuotaFailure");
    assert_eq!(
        quota["violations"][0]["quotaId"],
        "GenerateRequestsPerMinutePerProjectPerModel"
    );
    assert_eq!(quota["violations"][0]["quotaValue"], "1");
    // Per model: another model is not refused.
    let (st, _) = generate(&h, &c, "gemini-3.1-flash-image", &body).await;
    assert_eq!(st, 200);
    let stats = h.stats();
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.generate_calls, 3);
    assert_eq!(stats.faults_injected, 0);
    assert_eq!(stats.realtime_billed_images, 2);
    h.shutdown().await;
}
