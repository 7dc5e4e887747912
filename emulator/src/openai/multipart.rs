//! A small `multipart/form-data` parser (RFC 7578), enough for the SDKs'
//! uploads: text parts and file parts with a `filename`.

use axum::body::Bytes;

/// One part of a form.
pub(crate) struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Bytes,
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let mut it = content_type.split(';');
    let mime = it.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    it.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
    .filter(|b| !b.is_empty())
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let off = hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        i += off;
        if hay[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Parse the body; errors are human-readable.
pub(crate) fn parse(boundary: &str, body: &Bytes) -> Result<Vec<Part>, String> {
    let open = format!("--{boundary}");
    let delim = format!("\r\n--{boundary}");
    let mut pos = find(body, open.as_bytes(), 0).ok_or("no multipart boundary found")? + open.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err("malformed multipart body".into());
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or("unterminated part headers")?;
        let head =
            std::str::from_utf8(&body[pos..head_end]).map_err(|_| "non-UTF-8 part headers")?;
        let data_start = head_end + 4;
        let data_end =
            find(body, delim.as_bytes(), data_start).ok_or("unterminated multipart part")?;
        let mut name = None;
        let mut filename = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                for p in v.split(';').skip(1) {
                    if let Some((pk, pv)) = p.trim().split_once('=') {
                        let pv = pv.trim().trim_matches('"').to_string();
                        match pk.trim() {
                            "name" => name = Some(pv),
                            "filename" => filename = Some(pv),
                            _ => {}
                        }
                    }
                }
            }
        }
        parts.push(Part {
            name: name.ok_or("a part has no name")?,
            filename,
            data: body.slice(data_start..data_end),
        });
        pos = data_end + delim.len();
    }
}
