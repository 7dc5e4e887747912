//! Turning a parsed `GenerateContentResponse` into an image or a classified
//! outcome (protocol §1.5–1.6). Shared by realtime calls and batch results.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use image::ImageFormat;

use super::wire::{GenerateContentResponse, ResponsePart, UsageMetadata};
use crate::domain::{ImageSize, ModelId, ModelTurn, TurnPart};
use crate::provider::{Generated, ProviderError, Reason, Usage};

/// Standard alphabet, padding optional: proto3 JSON readers accept both.
const B64_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// URL-safe alphabet, padding optional: proto3 JSON allows it for bytes.
const B64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest model text kept in a `NoImage` detail.
const MAX_TEXT: usize = 1000;

/// Finish reasons that mean "the output was withheld by policy".
const BLOCK_REASONS: &[&str] = &[
    "SAFETY",
    "RECITATION",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_OTHER",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
    "JAILBREAK",
];

/// Finish reasons that mean "nothing wrong with the output".
fn is_normal_finish(reason: &str) -> bool {
    matches!(reason, "" | "STOP" | "FINISH_REASON_UNSPECIFIED")
}

fn is_block_finish(reason: &str) -> bool {
    // Every IMAGE_* reason except NO_IMAGE is a block; future IMAGE_*
    // additions are treated the same way rather than as success.
    BLOCK_REASONS.contains(&reason) || reason.starts_with("IMAGE_")
}

/// Interpret a response. `per_image_tokens` is the billing estimate used
/// when `usageMetadata` does not split out image tokens (realtime knows it
/// from the request; batch lines pass `None` and it is inferred from the
/// model version and the decoded pixel size).
///
/// Bytes that do not decode (bad base64, not an image, not the declared
/// format) come back as a *retryable* `UndecodableImage`: a fresh attempt
/// usually yields a good image, and the run layer's attempt limit turns a
/// repeat offender into a terminal failure.
pub fn interpret(
    resp: GenerateContentResponse<'_>,
    per_image_tokens: Option<u64>,
    read_side: Option<u32>,
) -> Result<Generated, ProviderError> {
    let feedback_block = resp
        .prompt_feedback
        .as_ref()
        .and_then(|f| f.block_reason.as_deref())
        .map(str::trim)
        .filter(|r| !r.is_empty() && *r != "BLOCKED_REASON_UNSPECIFIED");
    let blocked_prompt = || {
        let reason = feedback_block.unwrap_or("UNKNOWN");
        let mut detail = format!("prompt blocked: {reason}");
        if let Some(m) = resp
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason_message.as_deref())
        {
            detail.push_str(": ");
            detail.push_str(m);
        }
        ProviderError::job_terminal(Reason::BlockedPrompt, detail).with_block_reason(reason)
    };

    if resp.candidates.is_empty() {
        if feedback_block.is_some() {
            return Err(blocked_prompt());
        }
        return Err(ProviderError::retryable(
            Reason::BadResponse,
            "response has no candidates and no promptFeedback.blockReason",
            None,
        ));
    }

    // The first candidate that finished abnormally decides a failure; image
    // models return one candidate, so this is that candidate's reason.
    let finish = resp
        .candidates
        .iter()
        .filter_map(|c| c.finish_reason.as_deref().map(|r| (r.trim(), c)))
        .find(|(r, _)| !is_normal_finish(r));
    let finish_detail = |reason: &str, message: Option<&str>| match message {
        Some(m) if !m.trim().is_empty() => format!("{reason}: {}", m.trim()),
        _ => reason.to_string(),
    };
    if let Some((reason, cand)) = finish {
        if is_block_finish(reason) {
            // A blocked candidate is never delivered, even if some relay
            // left image bytes in it.
            return Err(ProviderError::job_terminal(
                Reason::BlockedImage,
                format!(
                    "image blocked: {}",
                    finish_detail(reason, cand.finish_message.as_deref())
                ),
            )
            .with_block_reason(reason));
        }
        if reason == "NO_IMAGE" {
            let mut detail = format!(
                "model returned no image: {}",
                finish_detail(reason, cand.finish_message.as_deref())
            );
            append_text(&mut detail, answer_text(&resp));
            return Err(
                ProviderError::job_terminal(Reason::NoImage, detail).with_block_reason(reason)
            );
        }
    }

    let parts = || {
        resp.candidates
            .iter()
            .filter_map(|c| c.content.as_ref())
            .flat_map(|c| c.parts.iter())
    };
    let is_image = |p: &&ResponsePart<'_>| {
        !p.thought
            && p.inline_data.as_ref().is_some_and(|b| {
                b.data.as_deref().is_some_and(|d| !d.is_empty())
                    && b.mime_type
                        .as_deref()
                        .is_none_or(|m| m.trim().to_ascii_lowercase().starts_with("image/"))
            })
    };
    let image_count = parts().filter(is_image).count() as u64;
    // The final non-thought image is the answer; interim "thought images"
    // and earlier drafts come before it.
    let chosen = parts().rfind(is_image);

    let Some(blob) = chosen.and_then(|p| p.inline_data.as_ref()) else {
        if feedback_block.is_some() {
            return Err(blocked_prompt());
        }
        let reason = finish.map(|(r, _)| r);
        if reason == Some("MALFORMED_RESPONSE") {
            return Err(ProviderError::retryable(
                Reason::BadResponse,
                "model finished with MALFORMED_RESPONSE and no image",
                None,
            ));
        }
        let mut detail = match reason {
            Some(r) => format!("model answered without an image (finishReason {r})"),
            None => "model answered without an image".to_string(),
        };
        append_text(&mut detail, answer_text(&resp));
        let err = ProviderError::job_terminal(Reason::NoImage, detail);
        return Err(match reason {
            Some(r) => err.with_block_reason(r),
            None => err,
        });
    };

    let data = blob.data.as_deref().unwrap_or("");
    let DecodedImage {
        bytes,
        mime_type,
        dims,
        preview_jpeg,
        read_copy,
    } = decode_image(data, blob.mime_type.as_deref(), read_side)?;
    let per_image =
        per_image_tokens.or_else(|| estimate_image_tokens(resp.model_version.as_deref(), dims));
    let usage = resp
        .usage_metadata
        .as_ref()
        .map(|m| usage_from(m, image_count.max(1), per_image));
    Ok(Generated {
        bytes,
        mime_type,
        usage,
        model_version: resp.model_version.clone(),
        verified_dims: Some(dims),
        preview_jpeg,
        read_copy,
        model_turn: chosen.map(|c| model_turn(&resp, c)),
        // Gemini states no limits in headers: paced on 429s alone.
        limits: None,
    })
}

/// The model turn to keep for a later edit: the non-thought parts of the
/// candidate that holds the chosen image, in order, each with its
/// signature. The image guide: every image part of the response is signed,
/// and so is the first text part when it comes right after the thoughts,
/// before any image; thoughts are not signed, and all of them are to be
/// sent back "exactly as received"
/// (https://ai.google.dev/gemini-api/docs/image-generation, "Thought
/// Signatures"; https://ai.google.dev/gemini-api/docs/thought-signatures).
/// Only the chosen image is kept on disk, so an earlier non-thought image
/// (a draft before the final one, which image models do not normally send)
/// is left out of the turn.
fn model_turn(resp: &GenerateContentResponse<'_>, chosen: &ResponsePart<'_>) -> ModelTurn {
    let parts = resp
        .candidates
        .iter()
        .filter_map(|c| c.content.as_ref())
        .find(|c| c.parts.iter().any(|p| std::ptr::eq(p, chosen)))
        .map(|c| c.parts.as_slice())
        .unwrap_or_default();
    let signature = |p: &ResponsePart<'_>| p.thought_signature.as_deref().map(str::to_string);
    let turn = parts
        .iter()
        .filter(|p| !p.thought)
        .filter_map(|p| {
            if std::ptr::eq(p, chosen) {
                Some(TurnPart::Image {
                    signature: signature(p),
                })
            } else if p.inline_data.is_some() {
                None
            } else {
                p.text.as_deref().map(|t| TurnPart::Text {
                    text: t.to_string(),
                    signature: signature(p),
                })
            }
        })
        .collect();
    ModelTurn { parts: turn }
}

/// All non-thought text the model wrote, for `NoImage` details.
fn answer_text(resp: &GenerateContentResponse<'_>) -> String {
    let mut out = String::new();
    for p in resp
        .candidates
        .iter()
        .filter_map(|c| c.content.as_ref())
        .flat_map(|c| c.parts.iter())
        .filter(|p| !p.thought)
    {
        if let Some(t) = p.text.as_deref() {
            out.push_str(t);
        }
    }
    out.trim().to_string()
}

fn append_text(detail: &mut String, text: String) {
    if text.is_empty() {
        return;
    }
    detail.push_str("; model text: ");
    if text.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.push_str(&text[..cut]);
        detail.push('…');
    } else {
        detail.push_str(&text);
    }
}

fn undecodable(detail: impl Into<String>) -> ProviderError {
    ProviderError::retryable(Reason::UndecodableImage, detail, None)
}

/// Normalize a MIME type: lowercase, no parameters, `image/jpg` → `image/jpeg`.
fn normalize_mime(m: &str) -> String {
    let m = m
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if m == "image/jpg" || m == "image/pjpeg" {
        "image/jpeg".to_string()
    } else {
        m
    }
}

/// A validated image.
pub struct DecodedImage {
    /// The raw bytes.
    pub bytes: Vec<u8>,
    /// Normalized MIME type matching the bytes.
    pub mime_type: String,
    /// Pixel size (width, height).
    pub dims: (u32, u32),
    /// [`crate::imaging::preview_jpeg`] of the decoded pixels.
    pub preview_jpeg: Option<Vec<u8>>,
    /// [`crate::imaging::reader_copy`] of them, when asked and larger.
    pub read_copy: Option<crate::imaging::Downscaled>,
}

/// Base64-decode, check the bytes are the declared format, decode them;
/// from the pixels, the review preview and (`read_side`) a reader's copy.
pub fn decode_image(
    data: &str,
    declared_mime: Option<&str>,
    read_side: Option<u32>,
) -> Result<DecodedImage, ProviderError> {
    // Some encoders wrap base64 lines; strip whitespace only when present,
    // so the common case decodes straight from the borrowed input.
    let cleaned;
    let data = if data.bytes().any(|b| b.is_ascii_whitespace()) {
        cleaned = data
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>();
        cleaned.as_str()
    } else {
        data
    };
    let bytes = B64_STANDARD
        .decode(data)
        .or_else(|_| B64_URL_SAFE.decode(data))
        .map_err(|e| undecodable(format!("image data is not valid base64: {e}")))?;
    let actual = image::guess_format(&bytes).map_err(|_| {
        undecodable(format!(
            "image bytes ({} bytes) are not a recognizable image format",
            bytes.len()
        ))
    })?;
    let mime = match declared_mime.map(normalize_mime).filter(|m| !m.is_empty()) {
        Some(m) => {
            let declared = ImageFormat::from_mime_type(&m)
                .ok_or_else(|| undecodable(format!("unsupported image MIME type {m}")))?;
            if declared != actual {
                return Err(undecodable(format!(
                    "image declared as {m} but the bytes are {}",
                    actual.to_mime_type()
                )));
            }
            m
        }
        None => actual.to_mime_type().to_string(),
    };
    let img = image::load_from_memory_with_format(&bytes, actual)
        .map_err(|e| undecodable(format!("{mime} image does not decode: {e}")))?;
    let dims = (img.width(), img.height());
    // Best effort: without a preview the thumbnail is made from the master.
    let preview_jpeg = crate::imaging::preview_jpeg(&img).ok();
    let read_copy = crate::provider::read_copy_of(&img, actual, read_side);
    drop(img);
    Ok(DecodedImage {
        bytes,
        mime_type: mime,
        dims,
        preview_jpeg,
        read_copy,
    })
}

/// Per-image token estimate from the model that answered and the size
/// tier implied by the pixel count (batch lines do not carry the request).
fn estimate_image_tokens(model_version: Option<&str>, (w, h): (u32, u32)) -> Option<u64> {
    let model: ModelId = model_version?.trim().parse().ok()?;
    let area = u64::from(w) * u64::from(h);
    // Midpoints between the tiers' nominal areas (0.26, 1, 4, 16 Mpx).
    let size = match area {
        0..500_000 => ImageSize::S512,
        500_000..2_000_000 => ImageSize::K1,
        2_000_000..8_000_000 => ImageSize::K2,
        _ => ImageSize::K4,
    };
    let family = model.family();
    let size = if family.image_sizes().contains(&size) {
        size
    } else {
        ImageSize::K1
    };
    Some(family.image_tokens(size))
}

/// Map `usageMetadata` to [`Usage`]: image tokens from the IMAGE modality
/// entry when present, else the estimate (capped at the candidates count),
/// else all candidate tokens; text is the remainder.
pub fn usage_from(meta: &UsageMetadata, images: u64, per_image_tokens: Option<u64>) -> Usage {
    let reported: Option<u64> = {
        let mut found = false;
        let sum = meta
            .candidates_tokens_details
            .iter()
            .filter(|d| {
                d.modality
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case("IMAGE"))
            })
            .inspect(|_| found = true)
            .map(|d| d.token_count)
            .sum();
        found.then_some(sum)
    };
    let candidates = meta.candidates_token_count;
    let image_tokens = match (reported, per_image_tokens) {
        (Some(r), _) => r,
        (None, Some(per)) => per.saturating_mul(images).min(candidates),
        (None, None) => candidates,
    };
    Usage {
        prompt_tokens: meta.prompt_token_count,
        input_image_tokens: 0,
        image_tokens,
        text_tokens: candidates.saturating_sub(image_tokens),
        thought_tokens: meta.thoughts_token_count,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Cursor;

    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::provider::ErrorClass;

    /// A tiny valid PNG.
    pub(crate) fn png_bytes() -> Vec<u8> {
        let img = image::RgbImage::from_pixel(4, 2, image::Rgb([200, 10, 10]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    /// A tiny valid JPEG.
    pub(crate) fn jpeg_bytes() -> Vec<u8> {
        let img = image::RgbImage::from_pixel(8, 8, image::Rgb([10, 200, 10]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    fn run(json: &str) -> Result<Generated, ProviderError> {
        let resp: GenerateContentResponse<'_> = serde_json::from_str(json).unwrap();
        interpret(resp, Some(1290), None)
    }

    fn png_b64() -> String {
        STANDARD.encode(png_bytes())
    }

    #[test]
    fn text_then_image_with_usage() {
        let json = format!(
            r#"{{"candidates":[{{"content":{{"role":"model","parts":[
            {{"text":"Here is your watercolor postcard: "}},
            {{"inlineData":{{"mimeType":"image/png","data":"{}"}}}}]}},
            "finishReason":"STOP","index":0}}],
            "usageMetadata":{{"promptTokenCount":272,"candidatesTokenCount":1298,"totalTokenCount":1570,
            "candidatesTokensDetails":[{{"modality":"IMAGE","tokenCount":1290}}]}},
            "modelVersion":"gemini-2.5-flash-image","responseId":"x"}}"#,
            png_b64()
        );
        let g = run(&json).unwrap();
        assert_eq!(g.bytes, png_bytes());
        assert_eq!(g.mime_type, "image/png");
        assert_eq!(g.model_version.as_deref(), Some("gemini-2.5-flash-image"));
        assert_eq!(
            g.usage,
            Some(Usage {
                prompt_tokens: 272,
                input_image_tokens: 0,
                image_tokens: 1290,
                text_tokens: 8,
                thought_tokens: 0
            })
        );
    }

    #[test]
    fn a_decoded_image_carries_the_preview_the_master_would_make() {
        let img = image::RgbImage::from_fn(1376, 768, |x, y| {
            image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 239) as u8])
        });
        let mut png = Cursor::new(Vec::new());
        img.write_to(&mut png, ImageFormat::Png).unwrap();
        let png = png.into_inner();
        let d = decode_image(&STANDARD.encode(&png), Some("image/png"), None).unwrap();
        let preview = d.preview_jpeg.expect("a preview of the decoded pixels");
        let small = image::load_from_memory(&preview).unwrap();
        assert_eq!((small.width(), small.height()), (320, 179));
        // The same bytes as a thumbnail made from the master on disk.
        let from_master =
            crate::imaging::preview_jpeg(&crate::imaging::decode_master(&png).unwrap()).unwrap();
        assert_eq!(preview, from_master);
    }

    #[test]
    fn thought_parts_and_signatures_pick_the_final_image() {
        let jpeg = STANDARD.encode(jpeg_bytes());
        let json = format!(
            r#"{{"candidates":[{{"content":{{"role":"model","parts":[
            {{"text":"**Planning**","thought":true}},
            {{"inlineData":{{"mimeType":"image/png","data":"{png}"}},"thought":true}},
            {{"text":"Here is the chart.","thoughtSignature":"EqCzQgqcs0IB"}},
            {{"inlineData":{{"mimeType":"image/jpeg","data":"{jpeg}"}},"thoughtSignature":"Cq4BAXLI2n"}}]}},
            "finishReason":"STOP","index":0,"groundingMetadata":{{"webSearchQueries":["x"]}}}}],
            "usageMetadata":{{"promptTokenCount":18,"candidatesTokenCount":2012,"thoughtsTokenCount":310}},
            "modelVersion":"gemini-3-pro-image"}}"#,
            png = png_b64()
        );
        let resp: GenerateContentResponse<'_> = serde_json::from_str(&json).unwrap();
        let g = interpret(resp, Some(2000), None).unwrap();
        assert_eq!(g.mime_type, "image/jpeg");
        assert_eq!(g.bytes, jpeg_bytes());
        let u = g.usage.unwrap();
        // No IMAGE detail: the estimate is used, text is the rest.
        assert_eq!(
            (u.image_tokens, u.text_tokens, u.thought_tokens),
            (2000, 12, 310)
        );
        // The turn kept for an edit: the non-thought parts with their
        // signatures, thoughts left out.
        assert_eq!(
            g.model_turn.unwrap().parts,
            vec![
                TurnPart::Text {
                    text: "Here is the chart.".into(),
                    signature: Some("EqCzQgqcs0IB".into()),
                },
                TurnPart::Image {
                    signature: Some("Cq4BAXLI2n".into()),
                },
            ]
        );
    }

    #[test]
    fn image_safety_with_empty_content_is_blocked() {
        for content in [
            r#""content":{},"#,
            r#""content":{"parts":[]},"#,
            r#""content":{"parts":null},"#,
            "",
        ] {
            let json = format!(
                r#"{{"candidates":[{{{content}"finishReason":"IMAGE_SAFETY","index":0,
                "finishMessage":"Unable to show the generated image."}}],
                "usageMetadata":{{"promptTokenCount":464,"candidatesTokenCount":0,"thoughtsTokenCount":291}}}}"#
            );
            let e = run(&json).unwrap_err();
            assert_eq!(e.class, ErrorClass::JobTerminal);
            assert_eq!(e.reason, Reason::BlockedImage);
            assert_eq!(e.block_reason.as_deref(), Some("IMAGE_SAFETY"));
            assert!(e.detail.contains("Unable to show"), "{}", e.detail);
        }
        for r in [
            "SAFETY",
            "PROHIBITED_CONTENT",
            "IMAGE_OTHER",
            "RECITATION",
            "OTHER",
            "SPII",
        ] {
            let json = format!(r#"{{"candidates":[{{"content":{{}},"finishReason":"{r}"}}]}}"#);
            let e = run(&json).unwrap_err();
            assert_eq!(e.reason, Reason::BlockedImage, "{r}");
            assert_eq!(e.block_reason.as_deref(), Some(r));
        }
    }

    #[test]
    fn no_image_finish_and_text_only_answers() {
        let e = run(r#"{"candidates":[{"content":{"parts":[{"text":"I can't draw that."}]},"finishReason":"NO_IMAGE"}]}"#)
            .unwrap_err();
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::JobTerminal, Reason::NoImage)
        );
        assert_eq!(e.block_reason.as_deref(), Some("NO_IMAGE"));
        let e = run(r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Here is a description instead."}]},"finishReason":"STOP"}]}"#)
            .unwrap_err();
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::JobTerminal, Reason::NoImage)
        );
        assert!(e.detail.contains("Here is a description instead."));
        assert_eq!(e.block_reason, None);
    }

    #[test]
    fn prompt_block_without_candidates() {
        let e = run(r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},
            "usageMetadata":{"promptTokenCount":10,"totalTokenCount":10},"modelVersion":"m"}"#)
        .unwrap_err();
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::JobTerminal, Reason::BlockedPrompt)
        );
        assert_eq!(e.block_reason.as_deref(), Some("PROHIBITED_CONTENT"));
        assert!(e.detail.contains("PROHIBITED_CONTENT"));
        // candidates: [] with a block reason is the same thing.
        let e = run(r#"{"candidates":[],"promptFeedback":{"blockReason":"OTHER"}}"#).unwrap_err();
        assert_eq!(e.reason, Reason::BlockedPrompt);
        // Nothing at all: a garbled answer, worth retrying.
        let e = run(r#"{"modelVersion":"m"}"#).unwrap_err();
        assert_eq!(e.reason, Reason::BadResponse);
        assert!(e.is_retryable());
    }

    #[test]
    fn bad_base64_and_mime_mismatch_are_undecodable() {
        let e = run(r#"{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":"@@not base64@@"}}]},"finishReason":"STOP"}]}"#)
            .unwrap_err();
        assert_eq!(e.reason, Reason::UndecodableImage);
        assert_eq!(e.class, ErrorClass::Retryable { retry_after: None });
        let json = format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"inlineData":{{"mimeType":"image/jpeg","data":"{}"}}}}]}}}}]}}"#,
            png_b64()
        );
        let e = run(&json).unwrap_err();
        assert_eq!(e.reason, Reason::UndecodableImage);
        assert!(e.detail.contains("image/png"), "{}", e.detail);
        // Valid base64 of truncated PNG bytes.
        let mut png = png_bytes();
        png.truncate(png.len() / 2);
        let json = format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"inlineData":{{"mimeType":"image/png","data":"{}"}}}}]}}}}]}}"#,
            STANDARD.encode(png)
        );
        assert_eq!(run(&json).unwrap_err().reason, Reason::UndecodableImage);
    }

    #[test]
    fn tolerant_base64_and_snake_case() {
        let unpadded = png_b64().trim_end_matches('=').to_string();
        let json = format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"inline_data":{{"mime_type":"image/png","data":"{unpadded}"}}}}]}},"finish_reason":"STOP"}}]}}"#
        );
        assert_eq!(run(&json).unwrap().bytes, png_bytes());
    }

    #[test]
    fn usage_estimates_without_image_detail() {
        let meta = UsageMetadata {
            prompt_token_count: 5,
            candidates_token_count: 1300,
            thoughts_token_count: 0,
            candidates_tokens_details: vec![],
        };
        let u = usage_from(&meta, 1, Some(1290));
        assert_eq!((u.image_tokens, u.text_tokens), (1290, 10));
        let u = usage_from(&meta, 1, None);
        assert_eq!((u.image_tokens, u.text_tokens), (1300, 0));
        assert_eq!(
            estimate_image_tokens(Some("gemini-3-pro-image"), (4096, 4096)),
            Some(2000)
        );
        assert_eq!(
            estimate_image_tokens(Some("gemini-3.1-flash-image"), (1376, 768)),
            Some(1120)
        );
        assert_eq!(estimate_image_tokens(Some("unknown"), (1, 1)), None);
    }
}
