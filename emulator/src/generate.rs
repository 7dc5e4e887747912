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
use crate::Shared;
use crate::models::{ModelFamily, ModelId};
use crate::paint::Signature;

/// Trigger words, checked in this order; the first one found wins.
pub(crate) const TRIGGERS: &[(&str, Trigger)] = &[
    ("EMULATE_BLOCK_PROMPT", Trigger::BlockPrompt),
    ("EMULATE_IMAGE_SAFETY", Trigger::ImageSafety),
    ("EMULATE_TEXT_ONLY", Trigger::TextOnly),
    ("EMULATE_NO_IMAGE", Trigger::NoImage),
    ("EMULATE_BAD_IMAGE", Trigger::BadImage),
    ("EMULATE_TWO_IMAGES", Trigger::TwoImages),
    ("EMULATE_INVALID_ARGUMENT", Trigger::InvalidArgument),
    ("EMULATE_BUSY_PHOTO", Trigger::BusyPhoto),
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
    /// An image with the per-pixel texture of a busy photo (grain, foliage,
    /// fabric) instead of flat blocks: heavy to compress, as real
    /// photographs are, for file-weight tests.
    BusyPhoto,
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
pub(crate) struct ImageKey {
    pub(crate) w: u32,
    pub(crate) h: u32,
    pub(crate) png: bool,
    pub(crate) bucket: u8,
}

/// Encoded images keyed by (size, format, colour bucket). Encoding is the
/// only expensive step, so it happens once per key, off the async threads;
/// each response only splices a per-prompt comment into the cached bytes.
#[derive(Default)]
pub(crate) struct ImageCache {
    map: Mutex<HashMap<ImageKey, EncodedCell>>,
    /// Compressed rows above the signature, for signed PNGs.
    png_tops: Arc<PngTops>,
}

/// One encoded image, filled once by whichever request needs it first.
type EncodedCell = Arc<OnceCell<Arc<Encoded>>>;

/// An encoded image and the base64 of everything after the point where
/// the per-prompt comment goes. The split is a multiple of 3 bytes, so
/// base64(head + comment) + cached tail is the base64 of the whole file.
pub(crate) struct Encoded {
    bytes: Vec<u8>,
    split: usize,
    tail_b64: String,
}

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
    async fn get(&self, key: ImageKey) -> Result<Arc<Encoded>, ApiError> {
        let cell = {
            let mut map = self
                .map
                .lock()
                .map_err(|_| ApiError::internal("image cache poisoned"))?;
            map.entry(key).or_default().clone()
        };
        cell.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || {
                let bytes = encode(key, None)?;
                // PNG: after the signature and IHDR (33 bytes); JPEG: after
                // SOI, whose 2 bytes the padded comment brings to a multiple of 3.
                let split = if key.png { 33 } else { 2 };
                if bytes.len() < split {
                    return Err(ApiError::internal("encoded image too short"));
                }
                let tail_b64 = STANDARD.encode(&bytes[split..]);
                Ok(Arc::new(Encoded {
                    bytes,
                    split,
                    tail_b64,
                }))
            })
            .await
            .map_err(|e| ApiError::internal(format!("image encoder task failed: {e}")))?
        })
        .await
        .cloned()
    }

    /// Base64 of an image of `w`×`h` whose colour and bytes depend on `sha`
    /// (the prompt hash): same prompt, same bytes. With `sig`, the image
    /// also carries that pixel signature (see [`crate::paint`]) and is
    /// encoded for this response alone.
    pub(crate) async fn image_b64(
        &self,
        w: u32,
        h: u32,
        mime: &str,
        sha: &[u8; 32],
        salt: &str,
        sig: Option<u32>,
    ) -> Result<String, ApiError> {
        let png = mime == "image/png";
        let key = ImageKey {
            w,
            h,
            png,
            bucket: sha[0] % BUCKETS,
        };
        let note = format!("adloc-emulator {}{salt}", hex::encode(sha));
        if let Some(id) = sig {
            let tops = self.png_tops.clone();
            let bytes = tokio::task::spawn_blocking(move || signed_image(&tops, key, id, &note))
                .await
                .map_err(|e| ApiError::internal(format!("image encoder task failed: {e}")))??;
            return Ok(STANDARD.encode(bytes));
        }
        let enc = self.get(key).await?;
        let mut note = note;
        let head_len = |n: usize| {
            if png {
                enc.split + png_text_chunk_len(n)
            } else {
                enc.split + jpeg_comment_len(n)
            }
        };
        while !head_len(note.len()).is_multiple_of(3) {
            note.push(' ');
        }
        let mut head = enc.bytes[..enc.split].to_vec();
        if png {
            push_png_text(&mut head, &note);
        } else {
            push_jpeg_comment(&mut head, &note);
        }
        let mut out = STANDARD.encode(&head);
        out.push_str(&enc.tail_b64);
        Ok(out)
    }
}

/// A `w`×`h` image of per-pixel noise, seeded by `sha`
/// (same prompt, same bytes), encoded as `mime` (JPEG at quality 92, as a
/// camera would, or PNG).
fn busy_photo(w: u32, h: u32, mime: &str, sha: &[u8; 32]) -> Result<Vec<u8>, ApiError> {
    use image::ImageEncoder;
    use rand::{Rng, SeedableRng};
    let mut seed = [0u8; 32];
    seed.copy_from_slice(sha);
    let mut rng = rand::rngs::StdRng::from_seed(seed);
    // Uniform noise on every channel: the heaviest texture a photograph
    // can carry (a 970x250 crop of a 1K frame is ~167 KB at JPEG q85).
    let mut raw = vec![0u8; w as usize * h as usize * 3];
    rng.fill(raw.as_mut_slice());
    let mut out = Vec::new();
    let res = if mime == "image/png" {
        image::codecs::png::PngEncoder::new(&mut out).write_image(
            &raw,
            w,
            h,
            image::ExtendedColorType::Rgb8,
        )
    } else {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92).write_image(
            &raw,
            w,
            h,
            image::ExtendedColorType::Rgb8,
        )
    };
    res.map_err(|e| ApiError::internal(format!("image encoding failed: {e}")))?;
    Ok(out)
}

/// The bytes of one signed image, with the per-prompt comment. JPEG is
/// encoded whole (the flat-block encoder is fast); PNG reuses the cached
/// compressed rows above the signature and compresses only the rows below.
pub(crate) fn signed_image(
    tops: &PngTops,
    key: ImageKey,
    id: u32,
    note: &str,
) -> Result<Vec<u8>, ApiError> {
    let sig = Signature::new(id, key.w, key.h);
    let bytes = if key.png {
        encode_png_signed(tops, key, &sig)?
    } else {
        encode_jpeg(key, Some(&sig))?
    };
    let split = if key.png { 33 } else { 2 };
    let mut out = Vec::with_capacity(bytes.len() + note.len() + 32);
    out.extend_from_slice(&bytes[..split]);
    if key.png {
        push_png_text(&mut out, note);
    } else {
        push_jpeg_comment(&mut out, note);
    }
    out.extend_from_slice(&bytes[split..]);
    Ok(out)
}

/// The zlib stream of a PNG's rows above the signature, ending on a sync
/// flush so per-image deflate blocks can follow.
pub(crate) struct PngTop {
    prefix: Vec<u8>,
    adler: u32,
}

/// One [`PngTop`], computed once.
type PngTopCell = Arc<std::sync::OnceLock<Arc<PngTop>>>;

/// Cached [`PngTop`]s per (image key, first signature row).
#[derive(Default)]
pub(crate) struct PngTops {
    map: Mutex<HashMap<(ImageKey, u32), PngTopCell>>,
}

/// One filtered PNG row: `Sub` on the first row of a block row, `Up` (all
/// zeros) on the 15 identical rows below it.
fn png_row(key: ImageKey, sig: Option<&Signature>, y: u32, out: &mut Vec<u8>) {
    if !y.is_multiple_of(16) {
        out.push(2);
        out.resize(out.len() + key.w as usize * 3, 0);
        return;
    }
    out.push(1);
    let mut left = [0u8; 3];
    for x in 0..key.w {
        let c = block_colour(key, sig, x / 16, y / 16);
        for i in 0..3 {
            out.push(c[i].wrapping_sub(left[i]));
        }
        left = c;
    }
}

fn adler32(data: &[u8]) -> u32 {
    const BASE: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= BASE;
        b %= BASE;
    }
    (b << 16) | a
}

/// Adler-32 of `A ‖ B` from the Adler-32s of both and `B`'s length (zlib's
/// `adler32_combine`).
fn adler32_combine(a1: u32, a2: u32, len2: u64) -> u32 {
    const BASE: u64 = 65_521;
    let rem = len2 % BASE;
    let mut sum1 = u64::from(a1 & 0xffff);
    let mut sum2 = (rem * sum1) % BASE;
    sum1 += u64::from(a2 & 0xffff) + BASE - 1;
    sum2 += u64::from(a1 >> 16) + u64::from(a2 >> 16) + BASE - rem;
    sum1 %= BASE;
    sum2 %= BASE;
    (sum1 | (sum2 << 16)) as u32
}

/// Run `input` through `c` with `flush`; the output produced.
fn deflate(c: &mut flate2::Compress, input: &[u8], flush: flate2::FlushCompress) -> Vec<u8> {
    // Room for the worst case (stored blocks), so one call normally does it.
    let mut out = Vec::with_capacity(input.len() + input.len() / 100 + 1024);
    let base = c.total_in();
    loop {
        let done = (c.total_in() - base) as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(4096));
        }
        match c.compress_vec(&input[done..], &mut out, flush) {
            Ok(flate2::Status::StreamEnd) | Err(_) => break,
            Ok(_) => {
                if (c.total_in() - base) as usize == input.len() && out.len() < out.capacity() {
                    break;
                }
            }
        }
    }
    out
}

impl PngTops {
    fn get(&self, key: ImageKey, top: u32) -> Arc<PngTop> {
        let cell = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((key, top))
            .or_default()
            .clone();
        cell.get_or_init(|| {
            let mut raw = Vec::with_capacity((key.w as usize * 3 + 1) * top as usize);
            for y in 0..top.min(key.h) {
                png_row(key, None, y, &mut raw);
            }
            let mut c = flate2::Compress::new(flate2::Compression::default(), true);
            let prefix = deflate(&mut c, &raw, flate2::FlushCompress::Sync);
            Arc::new(PngTop {
                prefix,
                adler: adler32(&raw),
            })
        })
        .clone()
    }
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A signed RGB PNG: cached compressed rows above the signature, then the
/// signature rows deflated on their own, one zlib stream.
fn encode_png_signed(tops: &PngTops, key: ImageKey, sig: &Signature) -> Result<Vec<u8>, ApiError> {
    let top = sig.top().min(key.h);
    let cached = tops.get(key, top);
    let mut raw = Vec::with_capacity((key.w as usize * 3 + 1) * (key.h - top) as usize);
    for y in top..key.h {
        png_row(key, Some(sig), y, &mut raw);
    }
    let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
    let tail = deflate(&mut c, &raw, flate2::FlushCompress::Finish);
    let adler = adler32_combine(cached.adler, adler32(&raw), raw.len() as u64);
    let mut idat = Vec::with_capacity(cached.prefix.len() + tail.len() + 4);
    idat.extend_from_slice(&cached.prefix);
    idat.extend_from_slice(&tail);
    idat.extend_from_slice(&adler.to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&key.w.to_be_bytes());
    ihdr.extend_from_slice(&key.h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &idat);
    png_chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

/// The colour of the 16×16 block at block coordinates (`bx`, `by`):
/// horizontal bands shaded darker downwards, with an accent stripe on the
/// left. Edges fall on 16-pixel boundaries so every JPEG block is flat.
fn block_colour(key: ImageKey, sig: Option<&Signature>, bx: u32, by: u32) -> [u8; 3] {
    if let Some(g) = sig.and_then(|s| s.gray_at(bx * 16, by * 16)) {
        return [g, g, g];
    }
    let base = PALETTE[key.bucket as usize];
    let accent = PALETTE[(key.bucket as usize + 5) % PALETTE.len()];
    let band_blocks = (key.h / 16 / 6).max(1);
    let stripe_blocks = (key.w / 16 / 10).max(1);
    let c = if bx < stripe_blocks { accent } else { base };
    let shade = ((by / band_blocks) as u8).wrapping_mul(9);
    [
        c[0].saturating_sub(shade),
        c[1].saturating_sub(shade),
        c[2].saturating_sub(shade),
    ]
}

fn encode(key: ImageKey, sig: Option<&Signature>) -> Result<Vec<u8>, ApiError> {
    if key.png {
        encode_png(key, sig)
    } else {
        encode_jpeg(key, sig)
    }
}

/// PNG through the `image` crate. Rows repeat within a band, so the `Up`
/// filter turns them into zeros and deflate shrinks them to almost nothing.
fn encode_png(key: ImageKey, sig: Option<&Signature>) -> Result<Vec<u8>, ApiError> {
    use image::ImageEncoder;
    let ImageKey { w, h, .. } = key;
    let (wu, hu) = (w as usize, h as usize);
    let mut raw = Vec::with_capacity(wu * hu * 3);
    let mut row = Vec::with_capacity(wu * 3);
    for y in 0..h {
        if y % 16 == 0 {
            row.clear();
            for x in 0..w {
                row.extend_from_slice(&block_colour(key, sig, x / 16, y / 16));
            }
        }
        raw.extend_from_slice(&row);
    }
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Default,
        image::codecs::png::FilterType::Up,
    )
    .write_image(&raw, w, h, image::ExtendedColorType::Rgb8)
    .map_err(|e| ApiError::internal(format!("image encoding failed: {e}")))?;
    Ok(out)
}

/// MSB-first bit writer with JPEG byte stuffing.
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, bits: u32, len: u32) {
        for i in (0..len).rev() {
            self.acc = (self.acc << 1) | ((bits >> i) & 1);
            self.n += 1;
            if self.n == 8 {
                let b = self.acc as u8;
                self.out.push(b);
                if b == 0xFF {
                    self.out.push(0x00);
                }
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        while self.n != 0 {
            self.put(1, 1);
        }
        self.out
    }
}

/// A baseline JPEG (JFIF, YCbCr 4:2:0) for images made of flat 16×16
/// blocks. Flat blocks have only a DC coefficient, so the entropy-coded data
/// is a DC difference plus EOB per block, with custom Huffman tables where
/// "no change" and EOB cost one bit each. A 1K image is a few KB instead of
/// the ~30 KB a general encoder produces, which keeps responses cheap to
/// serve and to parse at benchmark rates.
fn encode_jpeg(key: ImageKey, sig: Option<&Signature>) -> Result<Vec<u8>, ApiError> {
    let (Ok(w16), Ok(h16)) = (u16::try_from(key.w), u16::try_from(key.h)) else {
        return Err(ApiError::internal("image too large for JPEG"));
    };
    let mut out = vec![0xFF, 0xD8];
    let mut segment = |marker: u8, body: &[u8]| {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(body);
    };
    segment(0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    // One quantization table of all ones: DC values are stored exactly.
    let mut dqt = vec![0x00];
    dqt.extend_from_slice(&[1u8; 64]);
    segment(0xDB, &dqt);
    let mut sof = vec![8];
    sof.extend_from_slice(&h16.to_be_bytes());
    sof.extend_from_slice(&w16.to_be_bytes());
    sof.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]);
    segment(0xC0, &sof);
    // DC table: category 0 has the 1-bit code `0`, categories 1..=11 have
    // 5-bit codes 10000.. ; AC table: only EOB, code `0`.
    let mut dht = vec![0x00, 1, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    dht.extend(0u8..=11);
    dht.extend_from_slice(&[0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]);
    segment(0xC4, &dht);
    segment(0xDA, &[3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]);

    let mut bits = BitWriter {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    let mut prev = [0i32; 3];
    let mut put_block = |bits: &mut BitWriter, comp: usize, sample: f32| {
        // Flat block: DC = 8 × (sample − 128), quantizer 1.
        let dc = (8.0 * (sample.clamp(0.0, 255.0) - 128.0)).round() as i32;
        let diff = dc - prev[comp];
        prev[comp] = dc;
        let cat = 32 - diff.unsigned_abs().leading_zeros();
        if cat == 0 {
            bits.put(0, 1);
        } else {
            bits.put(0b10000 + cat - 1, 5);
            let v = if diff > 0 {
                diff
            } else {
                diff - 1 + (1 << cat)
            };
            bits.put(v as u32 & ((1 << cat) - 1), cat);
        }
        bits.put(0, 1); // EOB
    };
    for my in 0..key.h.div_ceil(16) {
        for mx in 0..key.w.div_ceil(16) {
            let [r, g, b] = block_colour(key, sig, mx, my).map(f32::from);
            let y = 0.299 * r + 0.587 * g + 0.114 * b;
            let cb = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
            let cr = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
            for _ in 0..4 {
                put_block(&mut bits, 0, y);
            }
            put_block(&mut bits, 1, cb);
            put_block(&mut bits, 2, cr);
        }
    }
    out.extend_from_slice(&bits.finish());
    out.extend_from_slice(&[0xFF, 0xD9]);
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

fn png_text_chunk_len(text_len: usize) -> usize {
    12 + b"Comment\0".len() + text_len
}

fn jpeg_comment_len(text_len: usize) -> usize {
    4 + text_len
}

/// Append a PNG `tEXt` chunk (length, type, data, CRC).
fn push_png_text(out: &mut Vec<u8>, text: &str) {
    let mut typed = b"tEXtComment\0".to_vec();
    typed.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&((typed.len() - 4) as u32).to_be_bytes());
    out.extend_from_slice(&typed);
    out.extend_from_slice(&crc32(&typed).to_be_bytes());
}

/// Append a JPEG COM segment (marker, length, text).
fn push_jpeg_comment(out: &mut Vec<u8>, text: &str) {
    let bytes = &text.as_bytes()[..text.len().min(0xFFFD)];
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((bytes.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Whether the family thinks (and signs its parts).
fn thinks(family: ModelFamily) -> bool {
    matches!(family, ModelFamily::Pro3 | ModelFamily::Flash31)
}

/// Whether `sig` is a signature this emulator gives an image part of a
/// response to a prompt with SHA-256 `sha` (at any part position).
pub(crate) fn issued(seed: u64, sha: &[u8; 32], sig: &str) -> bool {
    (0..4).any(|i| signature(seed, sha, i) == sig)
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
/// cache and the paint registry: the same request (and seed) gives the same
/// body, except for `responseId` which the caller supplies and the pixel
/// signature of images that paint quoted copy.
pub(crate) async fn build(
    s: &Shared,
    model: &ModelId,
    req: &GenRequest,
    response_id: String,
) -> Result<Built, ApiError> {
    let cache = &s.images;
    let seed = s.seed;
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
    // `image_mime` overrides the family's format (an edit in another
    // format than the image it edits).
    let mime = match s.faults().image_mime.as_deref() {
        Some("image/png") => "image/png",
        Some("image/jpeg") => "image/jpeg",
        _ => family.output_mime(),
    };
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
            let data = cache
                .image_b64(256, 256, mime, sha, "-thought", None)
                .await?;
            parts.push(json!({
                "inlineData": {"mimeType": mime, "data": data},
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
        } else if trigger == Some(Trigger::BusyPhoto) {
            let (sha, mime) = (*sha, mime.to_string());
            let bytes = tokio::task::spawn_blocking(move || busy_photo(w, h, &mime, &sha))
                .await
                .map_err(|e| ApiError::internal(format!("image encoder task failed: {e}")))??;
            STANDARD.encode(bytes)
        } else {
            let salt = if i == 0 {
                String::new()
            } else {
                format!("-{i}")
            };
            let sig = s.paint_image(&req.paint_prompt, sha);
            let b64 = cache.image_b64(w, h, mime, sha, &salt, sig).await?;
            // Nano Banana Pro's outputs carry Google's C2PA manifest.
            if family == ModelFamily::Pro3 {
                let mime = if mime == "image/png" {
                    "image/png"
                } else {
                    "image/jpeg"
                };
                crate::c2pa_sign::sign_b64(b64, mime, "Google", model.as_str().to_string()).await
            } else {
                b64
            }
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

    #[tokio::test]
    async fn spliced_images_decode_with_the_right_size_and_differ_per_prompt() {
        let cache = ImageCache::default();
        for mime in ["image/png", "image/jpeg"] {
            let a = cache
                .image_b64(40, 30, mime, &[1; 32], "", None)
                .await
                .unwrap();
            let b = cache
                .image_b64(40, 30, mime, &[1; 32], "-x", None)
                .await
                .unwrap();
            assert_ne!(a, b);
            for data in [a, b] {
                let bytes = STANDARD.decode(data).unwrap();
                let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
                assert_eq!((img.width(), img.height()), (40, 30), "{mime}");
                // The stripe colour survives the round trip (within JPEG error).
                let want = block_colour(
                    ImageKey {
                        w: 40,
                        h: 30,
                        png: false,
                        bucket: 1 % BUCKETS,
                    },
                    None,
                    0,
                    0,
                );
                let got = img.get_pixel(3, 3).0;
                for c in 0..3 {
                    assert!(want[c].abs_diff(got[c]) <= 6, "{mime}: {want:?} vs {got:?}");
                }
            }
        }
    }

    #[test]
    fn jpeg_of_a_4k_frame_decodes_and_stays_small() {
        let key = ImageKey {
            w: 5504,
            h: 3072,
            png: false,
            bucket: 7,
        };
        let bytes = encode(key, None).unwrap();
        assert!(bytes.len() < 200_000, "{}", bytes.len());
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (5504, 3072));
    }

    /// Per-image cost of a signed image (the pixel signature defeats the
    /// encoding cache). Printed, not asserted; run with
    /// `cargo test -p adloc-emulator --release -- --ignored --nocapture signed_image_cost`.
    #[test]
    #[ignore = "timing report; run in release"]
    fn signed_image_cost() {
        for (w, h) in [(1024, 1024), (1376, 768), (2048, 2048), (2752, 1536)] {
            for png in [false, true] {
                let key = ImageKey {
                    w,
                    h,
                    png,
                    bucket: 3,
                };
                let tops = PngTops::default();
                let first = std::time::Instant::now();
                let bytes = signed_image(&tops, key, 99, "adloc-emulator note").unwrap();
                let first = first.elapsed().as_secs_f64() * 1000.0;
                let n = 20u32;
                let t = std::time::Instant::now();
                let mut len = 0;
                for id in 0..n {
                    len = signed_image(&tops, key, id, "adloc-emulator note")
                        .unwrap()
                        .len();
                }
                let per = t.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
                let fmt = if png { "png" } else { "jpeg" };
                println!(
                    "signed {w}x{h} {fmt}: {per:.3} ms/image ({first:.1} ms for the first), {len} bytes"
                );
                let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
                assert_eq!(crate::paint::read_signature(&img), Some(99));
            }
        }
    }

    #[test]
    fn spliced_signed_pngs_decode_and_match_a_full_encode() {
        let tops = PngTops::default();
        for (w, h) in [(40, 30), (1024, 1024), (632, 424), (192, 1536)] {
            let key = ImageKey {
                w,
                h,
                png: true,
                bucket: 4,
            };
            for id in [1u32, 0xABCD_1234] {
                let bytes = signed_image(&tops, key, id, "note").unwrap();
                let got = image::load_from_memory(&bytes).unwrap().to_rgb8();
                let sig = Signature::new(id, w, h);
                let full = encode_png(key, Some(&sig)).unwrap();
                let want = image::load_from_memory(&full).unwrap().to_rgb8();
                assert!(got == want, "{w}x{h} {id}");
            }
        }
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(
            adler32_combine(adler32(b"Wiki"), adler32(b"pedia"), 5),
            adler32(b"Wikipedia")
        );
    }

    #[test]
    fn crc32_matches_the_reference_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
