//! Turning a parsed `ImagesResponse` into an image (protocol §1.2): shared
//! by realtime calls and batch output lines.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use super::classify::{RetryHints, Site, classify_error};
use super::wire::{ImageUsage, ImagesResponse, OUTPUT_MIME};
use crate::imaging::{Fit, ImageError, OutputFormat, RenditionSpec, check_decoded};
use crate::provider::{Generated, ProviderError, Reason, Usage};

/// Standard alphabet (RFC 4648 §4), padding tolerated either way.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn undecodable(detail: impl Into<String>) -> ProviderError {
    ProviderError::retryable(Reason::UndecodableImage, detail, None)
}

/// Interpret a 2xx `ImagesResponse`: `data[0].b64_json` decoded and checked
/// in full as a PNG (adloc always asks for `output_format: png`), usage
/// mapped. Bytes that do not decode are a *retryable* `UndecodableImage`
/// (a fresh attempt usually yields a good image; the run layer's attempt
/// limit stops a repeat offender). A body with no image is `BadResponse`,
/// unless it carries an error envelope, which is classified by its code.
pub fn interpret(
    resp: ImagesResponse<'_>,
    read_side: Option<u32>,
) -> Result<Generated, ProviderError> {
    let Some(data) = resp
        .data
        .first()
        .and_then(|d| d.b64_json.as_deref())
        .filter(|d| !d.trim().is_empty())
    else {
        if let Some(err) = &resp.error {
            return Err(classify_error(
                None,
                err,
                RetryHints::default(),
                Site::Model,
            ));
        }
        return Err(ProviderError::retryable(
            Reason::BadResponse,
            "response has no data[0].b64_json",
            None,
        ));
    };
    let bytes = decode_b64(data)?;
    let (checked, pixels) = check_decoded(&bytes, OUTPUT_MIME).map_err(|e| match e {
        ImageError::MimeMismatch { actual, .. } => undecodable(format!(
            "asked for {OUTPUT_MIME} (output_format png) but the bytes are {actual}{}",
            resp.output_format
                .as_deref()
                .map(|f| format!(" (response output_format {f})"))
                .unwrap_or_default()
        )),
        ImageError::Undecodable(m) => {
            undecodable(format!("{OUTPUT_MIME} image does not decode: {m}"))
        }
    })?;
    Ok(Generated {
        bytes,
        mime_type: OUTPUT_MIME.to_string(),
        usage: resp.usage.as_ref().map(usage_from),
        model_version: None,
        verified_dims: Some((checked.width, checked.height)),
        preview_jpeg: crate::imaging::preview_jpeg(&pixels).ok(),
        read_copy: crate::provider::read_copy_of(&pixels, image::ImageFormat::Png, read_side),
        // GPT Image returns no signature; an edit sends the image itself.
        model_turn: None,
        limits: None,
    })
}

/// The stored master of a GPT Image job is its exact frame: an image of
/// another size (a batch JSON edit asks the standard size nearest the
/// frame, see [`super::wire::EditsJsonBody`]) is scaled to fill the frame
/// and centre-cropped with the renditions' own cover crop
/// ([`crate::imaging::render`] with [`Fit::Cover`]), then re-encoded as
/// PNG. An image already at its frame is returned untouched.
pub fn fit_to_frame(g: Generated, (w, h): (u32, u32)) -> Result<Generated, ProviderError> {
    if g.verified_dims == Some((w, h)) || w == 0 || h == 0 {
        return Ok(g);
    }
    let master = crate::imaging::decode_master(&g.bytes)
        .map_err(|e| undecodable(format!("{OUTPUT_MIME} image does not decode: {e}")))?;
    if (master.width(), master.height()) == (w, h) {
        return Ok(Generated {
            verified_dims: Some((w, h)),
            ..g
        });
    }
    let spec = RenditionSpec {
        width: w,
        height: h,
        format: OutputFormat::Png,
        quality: 100,
        fit: Fit::Cover { focal: (0.5, 0.5) },
    };
    let mut resizer = fast_image_resize::Resizer::new();
    let framed = crate::imaging::render(&master, &spec, &mut resizer).map_err(|e| {
        ProviderError::job_terminal(
            Reason::Other,
            format!("cropping the image to its {w}x{h} frame failed: {e}"),
        )
    })?;
    Ok(Generated {
        bytes: framed.bytes,
        mime_type: OUTPUT_MIME.to_string(),
        verified_dims: Some((w, h)),
        // The review thumbnail and a reader's copy are made from the
        // stored master instead.
        preview_jpeg: None,
        read_copy: None,
        ..g
    })
}

/// Standard base64, whitespace (line wrapping) tolerated.
fn decode_b64(data: &str) -> Result<Vec<u8>, ProviderError> {
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
    B64.decode(data)
        .map_err(|e| undecodable(format!("b64_json is not valid base64: {e}")))
}

/// Map OpenAI `usage` to [`Usage`]: `input_tokens` → `prompt_tokens`,
/// `input_tokens_details.image_tokens` → `input_image_tokens`,
/// `output_tokens` → `image_tokens`. When `output_tokens_details` splits
/// the output, its text tokens go to `text_tokens` (billed at the text
/// rate) and the rest stays image tokens.
pub fn usage_from(u: &ImageUsage) -> Usage {
    let input_image = u
        .input_tokens_details
        .as_ref()
        .map_or(0, |d| d.image_tokens)
        .min(u.input_tokens);
    let text_out = u
        .output_tokens_details
        .as_ref()
        .map_or(0, |d| d.text_tokens)
        .min(u.output_tokens);
    Usage {
        prompt_tokens: u.input_tokens,
        input_image_tokens: input_image,
        image_tokens: u.output_tokens - text_out,
        text_tokens: text_out,
        thought_tokens: 0,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Cursor;

    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::provider::ErrorClass;

    /// A tiny valid PNG (4x2).
    pub(crate) fn png_bytes() -> Vec<u8> {
        let img = image::RgbImage::from_pixel(4, 2, image::Rgb([200, 10, 10]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn run(json: &str) -> Result<Generated, ProviderError> {
        interpret(serde_json::from_str(json).unwrap(), None)
    }

    #[test]
    fn an_image_off_its_frame_is_cropped_to_fill_it_and_one_on_it_is_untouched() {
        // What a batch edit of a 16:9 frame gets back: 1536x1024, left half
        // red, right half blue.
        let img = image::RgbImage::from_fn(1536, 1024, |x, _| {
            if x < 768 {
                image::Rgb([220, 0, 0])
            } else {
                image::Rgb([0, 0, 220])
            }
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        let g = Generated {
            bytes: out.into_inner(),
            mime_type: OUTPUT_MIME.into(),
            usage: None,
            model_version: None,
            verified_dims: Some((1536, 1024)),
            preview_jpeg: Some(vec![1]),
            read_copy: None,
            model_turn: None,
            limits: None,
        };
        let framed = fit_to_frame(g, (1376, 768)).unwrap();
        assert_eq!(framed.verified_dims, Some((1376, 768)));
        assert_eq!(
            framed.preview_jpeg, None,
            "the old preview is of the old frame"
        );
        let back = image::load_from_memory(&framed.bytes).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (1376, 768));
        // Centred: the colour split stays in the middle.
        assert!(back.get_pixel(10, 384)[0] > 200 && back.get_pixel(1366, 384)[2] > 200);
        let same = Generated {
            verified_dims: Some((1376, 768)),
            ..framed.clone()
        };
        assert_eq!(fit_to_frame(same, (1376, 768)).unwrap().bytes, framed.bytes);
    }

    #[test]
    fn png_is_decoded_checked_and_usage_mapped() {
        let json = format!(
            r#"{{"created":1,"data":[{{"b64_json":"{}"}}],"usage":{{"input_tokens":50,"input_tokens_details":{{"text_tokens":10,"image_tokens":40}},"output_tokens":272,"total_tokens":322}}}}"#,
            STANDARD.encode(png_bytes())
        );
        let g = run(&json).unwrap();
        assert_eq!(g.bytes, png_bytes());
        assert_eq!(g.mime_type, "image/png");
        assert_eq!(g.verified_dims, Some((4, 2)));
        assert_eq!(
            g.usage,
            Some(Usage {
                prompt_tokens: 50,
                input_image_tokens: 40,
                image_tokens: 272,
                text_tokens: 0,
                thought_tokens: 0
            })
        );
    }

    #[test]
    fn output_details_split_text_from_image_tokens() {
        let u: ImageUsage = serde_json::from_str(
            r#"{"input_tokens":9,"output_tokens":300,"output_tokens_details":{"image_tokens":272,"text_tokens":28}}"#,
        )
        .unwrap();
        let u = usage_from(&u);
        assert_eq!((u.image_tokens, u.text_tokens), (272, 28));
    }

    #[test]
    fn bad_base64_wrong_format_and_truncated_png_are_undecodable() {
        let e = run(r#"{"data":[{"b64_json":"@@not base64@@"}]}"#).unwrap_err();
        assert_eq!(e.reason, Reason::UndecodableImage);
        assert_eq!(e.class, ErrorClass::Retryable { retry_after: None });
        let jpeg = {
            let img = image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]));
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
            out.into_inner()
        };
        let e = run(&format!(
            r#"{{"data":[{{"b64_json":"{}"}}]}}"#,
            STANDARD.encode(jpeg)
        ))
        .unwrap_err();
        assert_eq!(e.reason, Reason::UndecodableImage);
        assert!(e.detail.contains("image/jpeg"), "{}", e.detail);
        let mut png = png_bytes();
        png.truncate(png.len() / 2);
        let e = run(&format!(
            r#"{{"data":[{{"b64_json":"{}"}}]}}"#,
            STANDARD.encode(png)
        ))
        .unwrap_err();
        assert_eq!(e.reason, Reason::UndecodableImage);
    }

    #[test]
    fn no_image_is_bad_response_and_an_embedded_error_is_classified() {
        let e = run(r#"{"created":1,"data":[]}"#).unwrap_err();
        assert_eq!(e.reason, Reason::BadResponse);
        assert!(e.is_retryable());
        let e = run(r#"{"error":{"message":"no","type":"image_generation_user_error","code":"moderation_blocked"}}"#)
            .unwrap_err();
        assert_eq!(e.reason, Reason::BlockedPrompt);
    }
}
