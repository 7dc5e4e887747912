//! IPTC AI marking: an XMP packet carrying `Iptc4xmpExt:DigitalSourceType`
//! put into a JPEG, PNG or WebP container without touching its pixels.
//!
//! Decisions:
//! - The packet is uncompressed in every format (PNG `iTXt` with the
//!   compression flag 0, not `zTXt`): exiftool, Pillow and the C2PA SDK all
//!   read that; not every reader inflates a compressed packet.
//! - Container surgery goes through `img-parts` (segments, chunks, RIFF and
//!   the WebP `VP8X` header it creates for simple files) instead of our own
//!   byte offsets; we only set the `VP8X` XMP flag it leaves alone.
//! - A packet already in the file (the vendor's) is replaced, not kept
//!   beside ours: two XMP packets in one file are invalid (JPEG: XMP spec
//!   part 3 §1.1.3), and the vendor's C2PA manifest, which is what carries
//!   its claims, is kept as an ingredient elsewhere ([`crate::assets`]).
//!
//! References: IPTC Photo Metadata Standard 2025.1, "Digital Source Type"
//! (<https://iptc.org/std/photometadata/specification/IPTC-PhotoMetadata#digital-source-type>)
//! and its controlled vocabulary (<https://cv.iptc.org/newscodes/digitalsourcetype/>);
//! XMP Specification Part 3 (storage in files): JPEG APP1 with the
//! `http://ns.adobe.com/xap/1.0/\0` header, PNG `iTXt` keyword
//! `XML:com.adobe.xmp`; WebP container spec
//! (<https://developers.google.com/speed/webp/docs/riff_container#extended_file_format>):
//! `XMP ` chunk after the image data, flag bit `0x04` of `VP8X`.

use img_parts::jpeg::{Jpeg, JpegSegment, markers};
use img_parts::png::{Png, PngChunk};
use img_parts::riff::{RiffChunk, RiffContent};
use img_parts::webp::{CHUNK_VP8X, CHUNK_XMP, WebP};
use img_parts::{Bytes, ImageEXIF};

/// What made the image, as the IPTC Digital Source Type vocabulary says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitalSourceType {
    /// Created by a generative model (masters, renditions, placements,
    /// revisions: resizing does not change what the pixels are).
    TrainedAlgorithmicMedia,
    /// Generated art with other elements (typeset copy, brand layers) put
    /// on it: the overlay composites.
    CompositeWithTrainedAlgorithmicMedia,
}

impl DigitalSourceType {
    /// The IRI written into the XMP (and the C2PA `c2pa.created` action).
    pub fn iri(self) -> &'static str {
        match self {
            Self::TrainedAlgorithmicMedia => {
                "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
            }
            Self::CompositeWithTrainedAlgorithmicMedia => {
                "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
            }
        }
    }
}

/// The JPEG APP1 header that says "this segment is XMP".
const JPEG_XMP_HEADER: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
/// The PNG `iTXt` keyword of an XMP packet.
const PNG_XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";
/// The `VP8X` flag that announces an `XMP ` chunk.
const VP8X_XMP_FLAG: u8 = 0x04;

/// Why a file could not be marked.
#[derive(Debug, thiserror::Error)]
#[error("cannot add the XMP packet to this {format}: {detail}")]
pub struct XmpError {
    /// The container.
    pub format: &'static str,
    /// What the parser said.
    pub detail: String,
}

/// The XMP packet: `DigitalSourceType` and adloc as the creator tool.
/// Deterministic (no dates, no ids), so marking the same bytes twice gives
/// the same file and unchanged reruns compare equal.
pub fn packet(source: DigitalSourceType) -> String {
    format!(
        concat!(
            "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n",
            "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n",
            " <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n",
            "  <rdf:Description rdf:about=\"\"\n",
            "    xmlns:Iptc4xmpExt=\"http://iptc.org/std/Iptc4xmpExt/2008-02-29/\"\n",
            "    xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\"\n",
            "    Iptc4xmpExt:DigitalSourceType=\"{}\"\n",
            "    xmp:CreatorTool=\"adloc {}\"/>\n",
            " </rdf:RDF>\n",
            "</x:xmpmeta>\n",
            "<?xpacket end=\"w\"?>"
        ),
        source.iri(),
        env!("CARGO_PKG_VERSION"),
    )
}

/// `bytes` with the XMP packet for `source` in place of any packet it had.
/// The container is sniffed from the bytes; a format other than JPEG, PNG
/// or WebP (a GIF placement) is returned unchanged: IPTC defines no GIF
/// storage that readers agree on.
pub fn mark(bytes: &[u8], source: DigitalSourceType) -> Result<Vec<u8>, XmpError> {
    let xmp = packet(source);
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg) => mark_jpeg(bytes, &xmp),
        Ok(image::ImageFormat::Png) => mark_png(bytes, &xmp),
        Ok(image::ImageFormat::WebP) => mark_webp(bytes, &xmp),
        _ => Ok(bytes.to_vec()),
    }
}

fn mark_jpeg(bytes: &[u8], xmp: &str) -> Result<Vec<u8>, XmpError> {
    let mut jpeg = Jpeg::from_bytes(Bytes::copy_from_slice(bytes)).map_err(|e| XmpError {
        format: "JPEG",
        detail: e.to_string(),
    })?;
    let segments = jpeg.segments_mut();
    segments
        .retain(|s| !(s.marker() == markers::APP1 && s.contents().starts_with(JPEG_XMP_HEADER)));
    let mut contents = Vec::with_capacity(JPEG_XMP_HEADER.len() + xmp.len());
    contents.extend_from_slice(JPEG_XMP_HEADER);
    contents.extend_from_slice(xmp.as_bytes());
    // After JFIF (APP0) and Exif (APP1), where readers look first.
    let at = segments
        .iter()
        .position(|s| !matches!(s.marker(), markers::APP0 | markers::APP1))
        .unwrap_or(segments.len());
    segments.insert(
        at,
        JpegSegment::new_with_contents(markers::APP1, Bytes::from(contents)),
    );
    Ok(jpeg.encoder().bytes().to_vec())
}

fn mark_png(bytes: &[u8], xmp: &str) -> Result<Vec<u8>, XmpError> {
    let mut png = Png::from_bytes(Bytes::copy_from_slice(bytes)).map_err(|e| XmpError {
        format: "PNG",
        detail: e.to_string(),
    })?;
    let chunks = png.chunks_mut();
    chunks.retain(|c| !(c.kind() == *b"iTXt" && is_png_xmp(c.contents())));
    // keyword \0, compression flag 0 (uncompressed), method 0, empty
    // language tag \0, empty translated keyword \0, then the text.
    let mut contents = Vec::with_capacity(PNG_XMP_KEYWORD.len() + 5 + xmp.len());
    contents.extend_from_slice(PNG_XMP_KEYWORD);
    contents.extend_from_slice(&[0, 0, 0, 0, 0]);
    contents.extend_from_slice(xmp.as_bytes());
    // Before the image data, so streaming readers meet it first.
    let at = chunks
        .iter()
        .position(|c| c.kind() == *b"IDAT")
        .unwrap_or(chunks.len().saturating_sub(1));
    chunks.insert(at, PngChunk::new(*b"iTXt", Bytes::from(contents)));
    Ok(png.encoder().bytes().to_vec())
}

fn is_png_xmp(contents: &[u8]) -> bool {
    contents.starts_with(PNG_XMP_KEYWORD) && contents.get(PNG_XMP_KEYWORD.len()) == Some(&0)
}

fn mark_webp(bytes: &[u8], xmp: &str) -> Result<Vec<u8>, XmpError> {
    let mut webp = WebP::from_bytes(Bytes::copy_from_slice(bytes)).map_err(|e| XmpError {
        format: "WebP",
        detail: e.to_string(),
    })?;
    webp.remove_chunks_by_id(CHUNK_XMP);
    webp.chunks_mut().push(RiffChunk::new(
        CHUNK_XMP,
        RiffContent::Data(Bytes::copy_from_slice(xmp.as_bytes())),
    ));
    // Setting the Exif (to what it was) makes img-parts turn a simple
    // (VP8/VP8L) file into the extended format, adding `VP8X` with the
    // canvas size; it does not set the XMP flag of a `VP8X`, so we do.
    let exif = webp.exif();
    webp.set_exif(exif);
    let Some(vp8x) = webp.chunks_mut().iter_mut().find(|c| c.id() == CHUNK_VP8X) else {
        return Err(XmpError {
            format: "WebP",
            detail: "no canvas size to write the extended header with".to_string(),
        });
    };
    if let RiffContent::Data(data) = vp8x.content_mut()
        && let Some(flags) = data.first()
    {
        let mut header = data.to_vec();
        header[0] = flags | VP8X_XMP_FLAG;
        *data = Bytes::from(header);
    }
    Ok(webp.encoder().bytes().to_vec())
}

/// The JPEG APP11 (JUMBF) marker that holds a C2PA manifest store.
const JPEG_APP11: u8 = 0xEB;

/// Whether `bytes` embed a C2PA manifest store (JPEG APP11 JUMBF, PNG
/// `caBX`, WebP `C2PA`: C2PA 2.2 Appendix A "Embedding manifests").
pub fn has_c2pa(bytes: &[u8]) -> bool {
    // Walked over the container's headers only: parsing the whole file
    // (img-parts scans a JPEG's entropy-coded data for its end) made this
    // check, run on every parent of every derivative, cost more than the
    // C2PA signature itself (perf, 2026-12-07).
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg) => jpeg_has_c2pa(bytes),
        Ok(image::ImageFormat::Png) => png_has_c2pa(bytes),
        Ok(image::ImageFormat::WebP) => webp_has_c2pa(bytes),
        _ => false,
    }
}

/// An APP11 segment holding JUMBF (`JP`) before the first scan: the C2PA
/// specification embeds the manifest store in APP11 segments among the
/// header segments, where every writer (the SDK included) puts it.
fn jpeg_has_c2pa(b: &[u8]) -> bool {
    let mut at = 2; // after SOI
    while at + 4 <= b.len() {
        if b[at] != 0xFF {
            return false;
        }
        let marker = b[at + 1];
        match marker {
            0xFF => at += 1, // fill byte
            0x01 | 0xD0..=0xD8 => at += 2,
            0xD9 | 0xDA => return false, // end of image, start of scan
            _ => {
                let len = usize::from(u16::from_be_bytes([b[at + 2], b[at + 3]]));
                let Some(contents) = b.get(at + 4..at + 2 + len) else {
                    return false;
                };
                if marker == JPEG_APP11 && contents.starts_with(b"JP") {
                    return true;
                }
                at += 2 + len;
            }
        }
    }
    false
}

/// A `caBX` chunk.
fn png_has_c2pa(b: &[u8]) -> bool {
    let mut at = 8; // after the signature
    while let Some(head) = b.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"caBX" => return true,
            b"IEND" => return false,
            _ => at = at.saturating_add(12).saturating_add(len),
        }
    }
    false
}

/// A `C2PA` chunk in the RIFF container.
fn webp_has_c2pa(b: &[u8]) -> bool {
    let mut at = 12; // after "RIFF" size "WEBP"
    while let Some(head) = b.get(at..at + 8) {
        if &head[0..4] == b"C2PA" {
            return true;
        }
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        // Chunks are padded to an even length.
        at = at.saturating_add(8).saturating_add(len + (len & 1));
    }
    false
}

/// `bytes` without an embedded C2PA manifest store. Adding our XMP
/// changes the bytes a vendor's hard binding covers, so its manifest
/// cannot stay in the file: it lives on as the parent ingredient (signed
/// runs) and in the vendor's raw bytes kept beside the tree.
pub fn strip_c2pa(bytes: &[u8]) -> Result<Vec<u8>, XmpError> {
    if !has_c2pa(bytes) {
        return Ok(bytes.to_vec());
    }
    let b = Bytes::copy_from_slice(bytes);
    let err = |format: &'static str| {
        move |e: img_parts::Error| XmpError {
            format,
            detail: e.to_string(),
        }
    };
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg) => {
            let mut j = Jpeg::from_bytes(b).map_err(err("JPEG"))?;
            j.segments_mut()
                .retain(|s| !(s.marker() == JPEG_APP11 && s.contents().starts_with(b"JP")));
            Ok(j.encoder().bytes().to_vec())
        }
        Ok(image::ImageFormat::Png) => {
            let mut p = Png::from_bytes(b).map_err(err("PNG"))?;
            p.remove_chunks_by_type(*b"caBX");
            Ok(p.encoder().bytes().to_vec())
        }
        Ok(image::ImageFormat::WebP) => {
            let mut w = WebP::from_bytes(b).map_err(err("WebP"))?;
            w.remove_chunks_by_id(*b"C2PA");
            Ok(w.encoder().bytes().to_vec())
        }
        _ => Ok(bytes.to_vec()),
    }
}

/// The XMP packet in `bytes`, if any (JPEG APP1, PNG `iTXt`, WebP `XMP `).
/// What the tests and `adloc verify` read back.
pub fn read(bytes: &[u8]) -> Option<String> {
    let b = Bytes::copy_from_slice(bytes);
    let raw: Bytes = match image::guess_format(bytes).ok()? {
        image::ImageFormat::Jpeg => {
            let jpeg = Jpeg::from_bytes(b).ok()?;
            let seg = jpeg.segments().iter().find(|s| {
                s.marker() == markers::APP1 && s.contents().starts_with(JPEG_XMP_HEADER)
            })?;
            seg.contents().slice(JPEG_XMP_HEADER.len()..)
        }
        image::ImageFormat::Png => {
            let png = Png::from_bytes(b).ok()?;
            let c = png
                .chunks()
                .iter()
                .find(|c| c.kind() == *b"iTXt" && is_png_xmp(c.contents()))?;
            let body = c.contents().slice(PNG_XMP_KEYWORD.len() + 1..);
            // compression flag, method, language\0, translated keyword\0
            if body.first() != Some(&0) {
                return None;
            }
            let rest = body.slice(2..);
            let lang_end = rest.iter().position(|&x| x == 0)?;
            let rest = rest.slice(lang_end + 1..);
            let kw_end = rest.iter().position(|&x| x == 0)?;
            rest.slice(kw_end + 1..)
        }
        image::ImageFormat::WebP => {
            let webp = WebP::from_bytes(b).ok()?;
            let flags = webp
                .chunk_by_id(CHUNK_VP8X)?
                .content()
                .data()?
                .first()
                .copied()?;
            if flags & VP8X_XMP_FLAG == 0 {
                return None;
            }
            webp.chunk_by_id(CHUNK_XMP)?.content().data()?.clone()
        }
        _ => return None,
    };
    String::from_utf8(raw.to_vec()).ok()
}

/// The `Iptc4xmpExt:DigitalSourceType` IRI in `bytes`' XMP, if any.
pub fn digital_source_type(bytes: &[u8]) -> Option<String> {
    let xmp = read(bytes)?;
    let (_, rest) = xmp.split_once("Iptc4xmpExt:DigitalSourceType=\"")?;
    rest.split_once('"').map(|(v, _)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(format: image::ImageFormat) -> Vec<u8> {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            17,
            9,
            image::Rgb([200, 30, 40]),
        ));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn every_container_carries_the_source_type_and_still_decodes() {
        for format in [
            image::ImageFormat::Jpeg,
            image::ImageFormat::Png,
            image::ImageFormat::WebP,
        ] {
            let plain = sample(format);
            assert_eq!(digital_source_type(&plain), None, "{format:?}");
            let marked = mark(&plain, DigitalSourceType::TrainedAlgorithmicMedia).unwrap();
            assert_eq!(
                digital_source_type(&marked).as_deref(),
                Some(DigitalSourceType::TrainedAlgorithmicMedia.iri()),
                "{format:?}"
            );
            let img = image::load_from_memory(&marked).unwrap();
            assert_eq!((img.width(), img.height()), (17, 9), "{format:?}");
            // Marking again replaces the packet: one packet, same bytes.
            let composite = mark(
                &marked,
                DigitalSourceType::CompositeWithTrainedAlgorithmicMedia,
            )
            .unwrap();
            assert_eq!(
                digital_source_type(&composite).as_deref(),
                Some(DigitalSourceType::CompositeWithTrainedAlgorithmicMedia.iri())
            );
            assert_eq!(
                mark(&composite, DigitalSourceType::TrainedAlgorithmicMedia).unwrap(),
                marked,
                "{format:?}"
            );
        }
    }

    #[test]
    fn a_gif_is_left_as_it_is() {
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
        assert_eq!(
            mark(&gif, DigitalSourceType::TrainedAlgorithmicMedia).unwrap(),
            gif
        );
    }
}
