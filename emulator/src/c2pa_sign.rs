//! Content Credentials on the emulator's outputs: OpenAI's GPT Image and
//! Google's Nano Banana Pro (`gemini-3-pro-image`) return images that
//! carry a C2PA manifest (OpenAI: "C2PA in ChatGPT Images",
//! <https://help.openai.com/en/articles/8912793-c2pa-in-chatgpt-images>;
//! Google: "SynthID and C2PA in Gemini 3 Pro Image",
//! <https://blog.google/technology/ai/ai-image-verification-gemini-app/>).
//! The emulator signs the same outputs with a test vendor certificate made
//! at start-up ([`crate::pki`]) so adloc's ingredient chain is tested
//! offline. The vendor CA is [`vendor_ca_pem`] (a trust anchor in tests).

use std::sync::OnceLock;

/// The emulator's vendor signer and its CA.
struct Vendor {
    signer: c2pa::BoxedSigner,
    ca_pem: String,
}

fn vendor() -> Option<&'static Vendor> {
    static VENDOR: OnceLock<Option<Vendor>> = OnceLock::new();
    VENDOR
        .get_or_init(|| {
            let pki = crate::pki::issue(
                "adloc-emulator test vendor CA",
                "adloc-emulator test vendor signer",
                crate::pki::Flaw::None,
            )
            .ok()?;
            let signer = c2pa::create_signer::from_keys(
                pki.chain_pem.as_bytes(),
                pki.key_pem.as_bytes(),
                c2pa::SigningAlg::Es256,
                None,
            )
            .ok()?;
            Some(Vendor {
                signer,
                ca_pem: pki.ca_pem,
            })
        })
        .as_ref()
}

/// The PEM CA certificate the emulator's vendor signer chains to.
pub fn vendor_ca_pem() -> Option<String> {
    vendor().map(|v| v.ca_pem.clone())
}

/// `bytes` (`mime`) with a vendor C2PA manifest saying `c2pa.created` by
/// `model` (trainedAlgorithmicMedia), claimed by `vendor_name`. Unsigned
/// bytes come back when signing is not possible (the test then fails on
/// the missing ingredient, not here).
pub fn sign(bytes: &[u8], mime: &str, vendor_name: &str, model: &str) -> Vec<u8> {
    // A C2PA manifest is not deterministic (random JUMBF salts and
    // instance ids), but the emulator promises "same prompt, same bytes":
    // the signed file is remembered per unsigned file for the life of the
    // process (bounded; cleared when full).
    use sha2::Digest;
    const REMEMBERED: usize = 512;
    type Memo = std::sync::Mutex<std::collections::HashMap<[u8; 32], Vec<u8>>>;
    static MEMO: OnceLock<Memo> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    let mut h = sha2::Sha256::new();
    for part in [
        bytes,
        mime.as_bytes(),
        vendor_name.as_bytes(),
        model.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let key: [u8; 32] = h.finalize().into();
    if let Some(done) = memo.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return done;
    }
    let signed = sign_fresh(bytes, mime, vendor_name, model);
    if let Ok(mut m) = memo.lock() {
        if m.len() >= REMEMBERED {
            m.clear();
        }
        m.insert(key, signed.clone());
    }
    signed
}

fn sign_fresh(bytes: &[u8], mime: &str, vendor_name: &str, model: &str) -> Vec<u8> {
    let Some(v) = vendor() else {
        return bytes.to_vec();
    };
    let definition = serde_json::json!({
        "claim_generator_info": [{ "name": vendor_name, "version": "emulated" }],
        "format": mime,
        "assertions": [{
            "label": "c2pa.actions",
            "data": { "actions": [{
                "action": "c2pa.created",
                "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
                "softwareAgent": { "name": model },
            }]}
        }],
    });
    let signed = (|| -> c2pa::Result<Vec<u8>> {
        // No thumbnails: the SDK is built without its image feature.
        let settings = c2pa::Settings::new().with_value("builder.thumbnail.enabled", false)?;
        let mut builder =
            c2pa::Builder::from_context(c2pa::Context::new().with_settings(settings)?)
                .with_definition(definition)?;
        let mut dest = std::io::Cursor::new(Vec::with_capacity(bytes.len() + 16 * 1024));
        builder.sign(
            v.signer.as_ref(),
            mime,
            &mut std::io::Cursor::new(bytes),
            &mut dest,
        )?;
        Ok(dest.into_inner())
    })();
    match signed {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("emulator C2PA signing failed: {e}");
            bytes.to_vec()
        }
    }
}

/// [`sign`] over base64 image data, off the async threads.
pub(crate) async fn sign_b64(
    b64: String,
    mime: &'static str,
    vendor_name: &'static str,
    model: String,
) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let done = tokio::task::spawn_blocking(move || match STANDARD.decode(&b64) {
        Ok(bytes) => STANDARD.encode(sign(&bytes, mime, vendor_name, &model)),
        Err(_) => b64,
    })
    .await;
    done.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_output_reads_back_valid_with_the_vendor_claim() {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::new(8, 8));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let signed = sign(png.get_ref(), "image/png", "OpenAI", "gpt-image-2");
        let reader = c2pa::Reader::from_context(c2pa::Context::new())
            .with_stream("image/png", std::io::Cursor::new(signed))
            .unwrap();
        assert_ne!(reader.validation_state(), c2pa::ValidationState::Invalid);
        let m = reader.active_manifest().unwrap();
        assert_eq!(m.claim_generator_info.as_ref().unwrap()[0].name, "OpenAI");
    }

    #[test]
    fn the_same_image_signs_to_the_same_bytes() {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::new(8, 8));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let a = sign(png.get_ref(), "image/png", "Google", "gemini-3-pro-image");
        let b = sign(png.get_ref(), "image/png", "Google", "gemini-3-pro-image");
        assert_eq!(a, b);
        assert_ne!(a, png.into_inner());
    }
}
