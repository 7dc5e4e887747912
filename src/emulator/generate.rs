//! Building `GenerateContentResponse`s (protocol §1.5, §1.6): images,
//! thought parts and signatures, usage metadata, trigger words.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::errors::ApiError;
use super::wire::GenRequest;
use crate::model::{ModelFamily, ModelId};

/// Trigger words, checked in this order; the first one found wins.
pub(crate) const TRIGGERS: &[(&str, Trigger)] = &[
    ("EMULATE_BLOCK_PROMPT", Trigger::BlockPrompt),
    ("EMULATE_IMAGE_SAFETY", Trigger::ImageSafety),
    ("EMULATE_TEXT_ONLY", Trigger::TextOnly),
    ("EMULATE_NO_IMAGE", Trigger::NoImage),
    ("EMULATE_BAD_IMAGE", Trigger::BadImage),
    ("EMULATE_TWO_IMAGES", Trigger::TwoImages),
    ("EMULATE_INVALID_ARGUMENT", Trigger::InvalidArgument),
];

/// A scripted outcome selected by a word in the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    BlockPrompt,
    ImageSafety,
    TextOnly,
    NoImage,
    BadImage,
    TwoImages,
    InvalidArgument,
}

pub(crate) fn trigger_of(prompt: &str) -> Option<Trigger> {
    TRIGGERS
        .iter()
        .find(|(word, _)| prompt.contains(word))
        .map(|(_, t)| *t)
}

/// A built response and what it bills.
pub(crate) struct Built {
    pub body: Value,
    /// Output images returned (each billed at the tier's token count).
    pub images: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ImageKey {
    w: u32,
    h: u32,
    png: bool,
    bucket: u8,
}

/// Encoded images keyed by (size, format, colour bucket). Encoding is the
/// only expensive step, so it happens once per key, off the async threads;
/// each response only splices a per-prompt comment into the cached bytes.
#[derive(Default)]
pub(crate) struct ImageCache {
    map: Mutex<HashMap<ImageKey, EncodedCell>>,
}

/// One encoded image, filled once by whichever request needs it first.
type EncodedCell = Arc<OnceCell<Arc<Vec<u8>>>>;

/// Number of distinct colour buckets (bounds the cache).
const BUCKETS: u8 = 12;

const PALETTE: [[u8; 3]; BUCKETS as usize] = [
    [220, 60, 50],
    [240, 150, 40],
    [230, 210, 60],
    [110, 190, 70],
    [40, 160, 120],
    [50, 170, 200],
    [60, 100, 210],
    [120, 80, 200],
    [190, 70, 170],
    [130, 90, 60],
    [90, 90, 90],
    [200, 200, 190],
];

impl ImageCache {
    async fn get(&self, key: ImageKey) -> Result<Arc<Vec<u8>>, ApiError> {
        let cell = {
            let mut map = self
                .map
                .lock()
                .map_err(|_| ApiError::internal("image cache poisoned"))?;
            map.entry(key).or_default().clone()
        };
        cell.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || encode(key))
                .await
                .map_err(|e| ApiError::internal(format!("image encoder task failed: {e}")))?
                .map(Arc::new)
        })
        .await
        .cloned()
    }

    /// An image of `w`×`h` whose colour and bytes depend on `sha` (the
    /// prompt hash): same prompt, same bytes.
    pub(crate) async fn image(
        &self,
        w: u32,
        h: u32,
        mime: &str,
        sha: &[u8; 32],
        salt: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let png = mime == "image/png";
        let key = ImageKey {
            w,
            h,
            png,
            bucket: sha[0] % BUCKETS,
        };
        let base = self.get(key).await?;
        let note = format!("adloc-emulator {}{salt}", hex::encode(sha));
        Ok(if png {
            png_with_text(&base, &note)
        } else {
            jpeg_with_comment(&base, &note)
        })
    }
}

/// Draw horizontal bands with an accent stripe. Rows are built once per band
/// and copied, so even 4K images are filled at memcpy speed.
fn encode(key: ImageKey) -> Result<Vec<u8>, ApiError> {
    use image::ImageEncoder;
    let ImageKey { w, h, png, bucket } = key;
    let base = PALETTE[bucket as usize];
    let accent = PALETTE[(bucket as usize + 5) % PALETTE.len()];
    let (wu, hu) = (w as usize, h as usize);
    let band_h = (hu / 6).max(1);
    let stripe = (wu / 10).max(1);
    let mut raw = Vec::with_capacity(wu * hu * 3);
    let mut row = Vec::with_capacity(wu * 3);
    for y in 0..hu {
        if y % band_h == 0 {
            let shade = ((y / band_h) as u8).wrapping_mul(9);
            row.clear();
            for x in 0..wu {
                let c = if x < stripe { accent } else { base };
                row.extend_from_slice(&[
                    c[0].saturating_sub(shade),
                    c[1].saturating_sub(shade),
                    c[2].saturating_sub(shade),
                ]);
            }
        }
        raw.extend_from_slice(&row);
    }
    let mut out = Vec::new();
    let res = if png {
        image::codecs::png::PngEncoder::new_with_quality(
            &mut out,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Sub,
        )
        .write_image(&raw, w, h, image::ExtendedColorType::Rgb8)
    } else {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).write_image(
            &raw,
            w,
            h,
            image::ExtendedColorType::Rgb8,
        )
    };
    res.map_err(|e| ApiError::internal(format!("image encoding failed: {e}")))?;
    Ok(out)
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Insert a `tEXt` chunk right after IHDR (8-byte signature + 25-byte IHDR).
fn png_with_text(png: &[u8], text: &str) -> Vec<u8> {
    const AFTER_IHDR: usize = 33;
    if png.len() < AFTER_IHDR {
        return png.to_vec();
    }
    let mut data = b"Comment\0".to_vec();
    data.extend_from_slice(text.as_bytes());
    let mut chunk = Vec::with_capacity(data.len() + 12);
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut typed = b"tEXt".to_vec();
    typed.extend_from_slice(&data);
    chunk.extend_from_slice(&typed);
    chunk.extend_from_slice(&crc32(&typed).to_be_bytes());
    let mut out = Vec::with_capacity(png.len() + chunk.len());
    out.extend_from_slice(&png[..AFTER_IHDR]);
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&png[AFTER_IHDR..]);
    out
}

/// Insert a COM segment right after SOI.
fn jpeg_with_comment(jpeg: &[u8], text: &str) -> Vec<u8> {
    if jpeg.len() < 2 {
        return jpeg.to_vec();
    }
    let bytes = text.as_bytes();
    let len = (bytes.len() + 2).min(0xFFFF) as u16;
    let mut out = Vec::with_capacity(jpeg.len() + bytes.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..len as usize - 2]);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Whether the family thinks (and signs its parts).
fn thinks(family: ModelFamily) -> bool {
    matches!(family, ModelFamily::Pro3 | ModelFamily::Flash31)
}

fn signature(seed: u64, sha: &[u8; 32], index: usize) -> String {
    let mut h = Sha256::new();
    h.update(b"thought-signature");
    h.update(seed.to_le_bytes());
    h.update(sha);
    h.update((index as u64).to_le_bytes());
    let d = h.finalize();
    // Real signatures are long opaque blobs; a few hashes' worth is enough.
    let mut blob = Vec::with_capacity(96);
    for i in 0..3u8 {
        let mut h2 = Sha256::new();
        h2.update(d);
        h2.update([i]);
        blob.extend_from_slice(&h2.finalize());
    }
    STANDARD.encode(blob)
}

fn text_tokens(s: &str) -> u64 {
    (s.chars().count() as u64).div_ceil(4).max(1)
}

/// Build the response for one validated request. Pure apart from the image
/// cache: the same request (and seed) gives the same body, except for
/// `responseId` which the caller supplies.
pub(crate) async fn build(
    cache: &ImageCache,
    seed: u64,
    model: &ModelId,
    req: &GenRequest,
    response_id: String,
) -> Result<Built, ApiError> {
    let family = model.family();
    let sha = &req.prompt_sha;
    let trigger = trigger_of(&req.prompt);
    let thinking = thinks(family) && !req.thinking_off;
    let thoughts_tokens = if thinking {
        120 + u64::from(sha[3]) * 2
    } else {
        0
    };
    let prompt_tokens = req.text_tokens + req.image_tokens_in;
    let mut prompt_details = vec![json!({"modality": "TEXT", "tokenCount": req.text_tokens})];
    if req.image_tokens_in > 0 {
        prompt_details.push(json!({"modality": "IMAGE", "tokenCount": req.image_tokens_in}));
    }

    let mut body = json!({
        "modelVersion": model.as_str(),
        "responseId": response_id,
    });

    match trigger {
        Some(Trigger::InvalidArgument) => {
            return Err(ApiError::invalid("Request contains an invalid argument."));
        }
        Some(Trigger::BlockPrompt) => {
            body["promptFeedback"] = json!({"blockReason": "PROHIBITED_CONTENT"});
            body["usageMetadata"] = json!({
                "promptTokenCount": prompt_tokens,
                "totalTokenCount": prompt_tokens,
                "promptTokensDetails": prompt_details,
            });
            return Ok(Built { body, images: 0 });
        }
        Some(Trigger::ImageSafety) => {
            body["candidates"] = json!([{
                "content": {},
                "finishReason": "IMAGE_SAFETY",
                "index": 0,
                "finishMessage": "Unable to show the generated image. The image was filtered out \
                    because it violated Google's Generative AI Prohibited Use policy. You will not \
                    be charged for blocked images. Try rephrasing the prompt. If you think this \
                    was a mistake, send feedback.",
            }]);
            let mut usage = json!({
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": 0,
                "totalTokenCount": prompt_tokens + thoughts_tokens,
                "promptTokensDetails": prompt_details,
            });
            if thinking {
                usage["thoughtsTokenCount"] = json!(thoughts_tokens);
            }
            body["usageMetadata"] = usage;
            return Ok(Built { body, images: 0 });
        }
        Some(Trigger::NoImage) => {
            // No content at all: the other legal shape next to `content: {}`.
            body["candidates"] = json!([{"finishReason": "NO_IMAGE", "index": 0}]);
            let mut usage = json!({
                "promptTokenCount": prompt_tokens,
                "totalTokenCount": prompt_tokens + thoughts_tokens,
                "promptTokensDetails": prompt_details,
            });
            if thinking {
                usage["thoughtsTokenCount"] = json!(thoughts_tokens);
            }
            body["usageMetadata"] = usage;
            return Ok(Built { body, images: 0 });
        }
        _ => {}
    }

    let (w, h) = family
        .pixel_size(&req.aspect_ratio, req.image_size)
        .ok_or_else(|| ApiError::invalid("Unsupported aspect ratio and image size combination."))?;
    let mime = family.output_mime();
    let sign = thinks(family);
    let mut parts: Vec<Value> = Vec::new();
    let mut text_out = 0u64;

    if req.include_thoughts && thinking {
        let t = "**Composing the image**\n\nI'm planning the layout, colours and typography \
                 requested in the prompt before rendering the final image.";
        parts.push(json!({"text": t, "thought": true}));
        if family == ModelFamily::Pro3 {
            // An interim thought image: small, so a client that wrongly
            // keeps it is caught by a dimension check.
            let bytes = cache.image(256, 256, mime, sha, "-thought").await?;
            parts.push(json!({
                "inlineData": {"mimeType": mime, "data": STANDARD.encode(&bytes)},
                "thought": true,
            }));
        }
    }

    // Grounded requests that ask for IMAGE only get no image (§1.2).
    let no_image_grounded = req.grounding && !req.want_text;
    let text_only = trigger == Some(Trigger::TextOnly) || !req.want_image || no_image_grounded;
    let n_images: u64 = if text_only {
        0
    } else if trigger == Some(Trigger::TwoImages) {
        2
    } else {
        1
    };

    // Variation that exercises defensive parsing, fixed per prompt: a
    // leading text part on a quarter of prompts, a trailing one on some.
    let leading_text = if text_only {
        Some(
            "I can't generate an image for this request right now, but here is a description of \
             what it would show.",
        )
    } else if req.want_text && sha[1].is_multiple_of(4) {
        Some("Here is the image you asked for.")
    } else {
        None
    };
    if let Some(t) = leading_text {
        text_out += text_tokens(t);
        let mut p = json!({"text": t});
        if sign {
            p["thoughtSignature"] = json!(signature(seed, sha, parts.len()));
        }
        parts.push(p);
    }
    for i in 0..n_images {
        let data = if trigger == Some(Trigger::BadImage) {
            // PNG magic followed by garbage: looks like an image, never decodes.
            let mut junk = b"\x89PNG\r\n\x1a\n".to_vec();
            junk.extend_from_slice(b"\x00\x00\x00\x0dIHDR-not-really-an-image-");
            junk.extend_from_slice(sha);
            STANDARD.encode(junk)
        } else {
            let salt = if i == 0 {
                String::new()
            } else {
                format!("-{i}")
            };
            STANDARD.encode(cache.image(w, h, mime, sha, &salt).await?)
        };
        let mut p = json!({"inlineData": {"mimeType": mime, "data": data}});
        if sign {
            p["thoughtSignature"] = json!(signature(seed, sha, parts.len()));
        }
        parts.push(p);
    }
    if !text_only && req.want_text && sha[2].is_multiple_of(8) {
        let t = "Let me know if you would like any changes.";
        text_out += text_tokens(t);
        parts.push(json!({"text": t}));
    }

    let image_tokens = n_images * family.image_tokens(req.image_size);
    let candidates_tokens = image_tokens + text_out;
    let mut candidate = json!({
        "content": {"role": "model", "parts": parts},
        "finishReason": "STOP",
        "index": 0,
    });
    if req.grounding {
        candidate["groundingMetadata"] = json!({
            "searchEntryPoint": {
                "renderedContent": "<style>.container{display:flex}</style><div class=\"container\">emulated search</div>",
            },
            "groundingChunks": [{"web": {"uri": "https://example.com/", "title": "example.com"}}],
            "webSearchQueries": [req.prompt.chars().take(60).collect::<String>()],
        });
    }
    body["candidates"] = json!([candidate]);
    let mut usage = json!({
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": candidates_tokens,
        "totalTokenCount": prompt_tokens + candidates_tokens + thoughts_tokens,
        "promptTokensDetails": prompt_details,
    });
    // Like the real service, the details list only the IMAGE entry even when
    // the count includes a few text tokens.
    if image_tokens > 0 {
        usage["candidatesTokensDetails"] =
            json!([{"modality": "IMAGE", "tokenCount": image_tokens}]);
    } else {
        usage["candidatesTokensDetails"] = json!([{"modality": "TEXT", "tokenCount": text_out}]);
    }
    if thinking {
        usage["thoughtsTokenCount"] = json!(thoughts_tokens);
    }
    body["usageMetadata"] = usage;
    Ok(Built {
        body,
        images: n_images,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spliced_png_still_decodes_with_the_right_size() {
        let base = encode(ImageKey {
            w: 40,
            h: 30,
            png: true,
            bucket: 3,
        })
        .unwrap();
        let png = png_with_text(&base, "hello");
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (40, 30));
        let jpg = encode(ImageKey {
            w: 40,
            h: 30,
            png: false,
            bucket: 3,
        })
        .unwrap();
        let jpg = jpeg_with_comment(&jpg, "hello");
        let img = image::load_from_memory(&jpg).unwrap();
        assert_eq!((img.width(), img.height()), (40, 30));
    }

    #[test]
    fn crc32_matches_the_reference_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
