//! Copy painting (adloc issue 12): the quoted strings of a prompt, the
//! misspelling of one of them, the pixel signature that ties an image to
//! what was painted, and the registry that remembers it.
//!
//! The signature is a grid of 12 flat gray cells along the bottom edge of
//! the image: black, white (calibration), eight 4-bit ID nibbles (gray
//! level `17 × nibble`), a check nibble and black again. Cells are sized in
//! proportion to the image, so they survive downscaling with any filter and
//! lossy re-encoding; the reader samples the middle of each cell.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use unicode_normalization::UnicodeNormalization;

/// The strings the prompt puts in double quotes (straight `"…"` or curly
/// `“…”`), trimmed, empty ones and exact repeats left out, in order.
pub(crate) fn quoted_copy(prompt: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = prompt;
    while let Some(open) = rest.find(['"', '“']) {
        let after = &rest[open + rest[open..].chars().next().map_or(1, char::len_utf8)..];
        let Some(close) = after.find(['"', '”']) else {
            break;
        };
        let s = after[..close].trim();
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
        rest = &after[close + after[close..].chars().next().map_or(1, char::len_utf8)..];
    }
    out
}

/// How a client compares copy: NFC, whitespace runs collapsed, curly quotes
/// folded to straight ones, and (for "never only case") lowercase.
pub(crate) fn fold(s: &str) -> String {
    let nfc: String = s.nfc().collect();
    let mapped: String = nfc
        .chars()
        .map(|c| match c {
            '“' | '”' | '„' | '‟' | '″' | '«' | '»' => '"',
            '‘' | '’' | '‚' | '‛' | '′' => '\'',
            c => c,
        })
        .collect();
    mapped
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Alter one character of `s` (drop, double, swap two adjacent letters, or
/// substitute), chosen by the uniform draws `u`. The result always differs
/// from `s` under [`fold`]; `None` when `s` has no letter or digit.
pub(crate) fn misspell(s: &str, u: [f64; 3]) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_alphanumeric())
        .collect();
    if letters.is_empty() {
        return None;
    }
    let pick = |u: f64, n: usize| ((u * n as f64) as usize).min(n - 1);
    let first_op = pick(u[0], 4);
    let target = fold(s);
    for k in 0..4 {
        let op = (first_op + k) % 4;
        let pos = letters[pick(u[1], letters.len())];
        let mut c = chars.clone();
        match op {
            0 => {
                c.remove(pos);
            }
            1 => c.insert(pos, chars[pos]),
            2 => {
                let pairs: Vec<usize> = (0..chars.len().saturating_sub(1))
                    .filter(|&i| {
                        chars[i].is_alphanumeric()
                            && chars[i + 1].is_alphanumeric()
                            && !chars[i].to_lowercase().eq(chars[i + 1].to_lowercase())
                    })
                    .collect();
                if pairs.is_empty() {
                    continue;
                }
                let i = pairs[pick(u[2], pairs.len())];
                c.swap(i, i + 1);
            }
            _ => {
                let orig = chars[pos];
                let pool: &[u8] = if orig.is_ascii_digit() {
                    b"0123456789"
                } else {
                    b"abcdefghijklmnopqrstuvwxyz"
                };
                let lower = orig.to_lowercase().next().unwrap_or(orig);
                let start = pick(u[2], pool.len());
                let Some(rep) = (0..pool.len())
                    .map(|j| pool[(start + j) % pool.len()] as char)
                    .find(|&r| r != lower)
                else {
                    continue;
                };
                c[pos] = if orig.is_uppercase() {
                    rep.to_ascii_uppercase()
                } else {
                    rep
                };
            }
        }
        let out: String = c.into_iter().collect();
        if fold(&out) != target {
            return Some(out);
        }
    }
    None
}

/// Misspell one of `texts` (one that has a letter or digit), chosen by the
/// draws `u`; whether one was altered.
pub(crate) fn misspell_one(texts: &mut [String], u: [f64; 4]) -> bool {
    let candidates: Vec<usize> = (0..texts.len())
        .filter(|&i| texts[i].chars().any(char::is_alphanumeric))
        .collect();
    if candidates.is_empty() {
        return false;
    }
    let k = ((u[0] * candidates.len() as f64) as usize).min(candidates.len() - 1);
    let i = candidates[k];
    match misspell(&texts[i], [u[1], u[2], u[3]]) {
        Some(m) => {
            texts[i] = m;
            true
        }
        None => false,
    }
}

/// What one image shows.
#[derive(Debug, Clone)]
pub(crate) struct Painted {
    /// The strings as painted (one possibly misspelled).
    pub texts: Vec<String>,
}

/// Signature id → what was painted, for the emulator's lifetime.
pub(crate) struct Registry {
    next: AtomicU32,
    salt: u32,
    map: Mutex<HashMap<u32, Arc<Painted>>>,
}

impl Registry {
    pub(crate) fn new(seed: u64) -> Registry {
        Registry {
            next: AtomicU32::new(1),
            salt: (seed ^ (seed >> 32)) as u32,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Remember `texts` under a fresh id (distinct for 2³² images: an odd
    /// multiplier and an xor are bijections of u32).
    pub(crate) fn register(&self, texts: Vec<String>) -> u32 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = n.wrapping_mul(0x9E37_79B1) ^ self.salt;
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::new(Painted { texts }));
        id
    }

    pub(crate) fn get(&self, id: u32) -> Option<Arc<Painted>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }
}

/// Number of signature cells.
const CELLS: usize = 12;
/// Grid shapes tried (columns; rows = 12 / columns).
const COLS: [usize; 6] = [12, 6, 4, 3, 2, 1];
/// The signature uses at most this fraction of the image height.
const AREA: f64 = 0.25;

/// Cell size (float pixels) for a grid of `cols` columns on a `w`×`h` image.
fn cell_size(w: u32, h: u32, cols: usize) -> (f64, f64) {
    let rows = CELLS / cols;
    let cw = f64::from(w) / cols as f64;
    let ch = cw.min(AREA * f64::from(h) / rows as f64);
    (cw, ch)
}

/// The grid with the largest cells (the first on ties).
fn best_cols(w: u32, h: u32) -> usize {
    let mut best = COLS[0];
    let mut best_side = 0.0;
    for cols in COLS {
        let side = cell_size(w, h, cols).1;
        if side > best_side + 1e-9 {
            best = cols;
            best_side = side;
        }
    }
    best
}

fn check_nibble(n: &[u8; 8]) -> u8 {
    let mut c = 5u32;
    for (i, x) in n.iter().enumerate() {
        c += u32::from(*x) * (2 * i as u32 + 1);
    }
    (c % 16) as u8
}

/// The 12 cell values (0..=15) for `id`.
fn cell_values(id: u32) -> [u8; CELLS] {
    let mut n = [0u8; 8];
    for (i, x) in n.iter_mut().enumerate() {
        *x = ((id >> (28 - 4 * i)) & 15) as u8;
    }
    let mut v = [0u8; CELLS];
    v[1] = 15;
    v[2..10].copy_from_slice(&n);
    v[10] = check_nibble(&n);
    v
}

/// Where the signature of `id` goes on a `w`×`h` image, with cell edges on
/// 16-pixel boundaries (flat JPEG blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signature {
    /// Column edges in pixels (`cols + 1`, the last one `u32::MAX`).
    xs: Vec<u32>,
    /// Row edges in pixels (`rows + 1`, the last one `u32::MAX`).
    ys: Vec<u32>,
    values: [u8; CELLS],
}

fn round16(v: f64) -> u32 {
    ((v / 16.0).round().max(0.0) * 16.0) as u32
}

impl Signature {
    pub(crate) fn new(id: u32, w: u32, h: u32) -> Signature {
        let cols = best_cols(w, h);
        let rows = CELLS / cols;
        let (cw, ch) = cell_size(w, h, cols);
        let top = f64::from(h) - rows as f64 * ch;
        let mut xs: Vec<u32> = (0..cols).map(|i| round16(i as f64 * cw)).collect();
        xs.push(u32::MAX);
        let mut ys: Vec<u32> = (0..rows).map(|j| round16(top + j as f64 * ch)).collect();
        ys.push(u32::MAX);
        Signature {
            xs,
            ys,
            values: cell_values(id),
        }
    }

    /// First pixel row the signature touches (a multiple of 16; the rows
    /// above are those of the unsigned image).
    pub(crate) fn top(&self) -> u32 {
        self.ys[0]
    }

    /// The gray level at pixel (`x`, `y`), if it is in the signature.
    pub(crate) fn gray_at(&self, x: u32, y: u32) -> Option<u8> {
        if y < self.ys[0] {
            return None;
        }
        let j = self.ys.iter().rposition(|&e| e <= y)?;
        let i = self.xs.iter().rposition(|&e| e <= x)?;
        let cols = self.xs.len() - 1;
        Some(self.values[j * cols + i] * 17)
    }
}

/// Read the signature id from decoded pixels, trying every grid shape;
/// `None` when no shape shows a valid signature.
pub(crate) fn read_signature(img: &image::RgbImage) -> Option<u32> {
    let (w, h) = img.dimensions();
    if w < 12 || h < 4 {
        return None;
    }
    COLS.iter().find_map(|&cols| read_grid(img, cols))
}

fn read_grid(img: &image::RgbImage, cols: usize) -> Option<u32> {
    let (w, h) = img.dimensions();
    let rows = CELLS / cols;
    let (cw, ch) = cell_size(w, h, cols);
    let top = f64::from(h) - rows as f64 * ch;
    let mut means = [0f64; CELLS];
    for (k, mean) in means.iter_mut().enumerate() {
        let (i, j) = (k % cols, k / cols);
        let x0 = (i as f64 + 0.3) * cw;
        let x1 = (i as f64 + 0.7) * cw;
        let y0 = top + (j as f64 + 0.3) * ch;
        let y1 = top + (j as f64 + 0.7) * ch;
        let (xa, xb) = (x0.ceil() as u32, (x1.floor() as u32).min(w - 1));
        let (ya, yb) = (y0.ceil() as u32, (y1.floor() as u32).min(h - 1));
        if xa > xb || ya > yb {
            return None;
        }
        let (mut sum, mut sq, mut n, mut chroma) = (0f64, 0f64, 0f64, 0f64);
        for y in ya..=yb {
            for x in xa..=xb {
                let [r, g, b] = img.get_pixel(x, y).0.map(f64::from);
                let l = 0.299 * r + 0.587 * g + 0.114 * b;
                sum += l;
                sq += l * l;
                chroma += (r - g).abs() + (g - b).abs();
                n += 1.0;
            }
        }
        let m = sum / n;
        let var = (sq / n - m * m).max(0.0);
        if var.sqrt() > 12.0 || chroma / n > 24.0 {
            return None;
        }
        *mean = m;
    }
    let (black, white) = (means[0], means[1]);
    if white - black < 150.0 {
        return None;
    }
    let mut v = [0u8; CELLS];
    for k in 0..CELLS {
        let t = (means[k] - black) / (white - black) * 15.0;
        let r = t.round();
        if !(-0.4..=15.4).contains(&t) || (t - r).abs() > 0.4 {
            return None;
        }
        v[k] = r.clamp(0.0, 15.0) as u8;
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&v[2..10]);
    if v[11] != 0 || v[10] != check_nibble(&n) {
        return None;
    }
    Some(n.iter().fold(0u32, |acc, x| (acc << 4) | u32::from(*x)))
}

/// Decode `bytes` and read the signature.
pub(crate) fn signature_of(bytes: &[u8]) -> Option<u32> {
    let img = image::load_from_memory(bytes).ok()?.to_rgb8();
    read_signature(&img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_copy_takes_straight_and_curly_quotes() {
        assert_eq!(
            quoted_copy("Poster with \"SALE 50%\" and “Ends Sunday” and \"\" and \"SALE 50%\""),
            vec!["SALE 50%".to_string(), "Ends Sunday".to_string()]
        );
        assert!(quoted_copy("no copy here").is_empty());
        assert_eq!(quoted_copy("unbalanced \"x"), Vec::<String>::new());
    }

    #[test]
    fn misspellings_always_differ_after_folding() {
        for s in [
            "SALE",
            "Ab",
            "aA",
            "Été",
            "x",
            "Ünïcödé “quote”",
            "日本語",
            "1 2",
            "ß",
        ] {
            for a in 0..8 {
                for b in 0..5 {
                    let u = [a as f64 / 8.0, b as f64 / 5.0, (a * b) as f64 / 40.0];
                    let m = misspell(s, u).unwrap();
                    assert_ne!(fold(&m), fold(s), "{s} -> {m}");
                }
            }
        }
        assert_eq!(misspell("!!!", [0.0; 3]), None);
    }

    #[test]
    fn a_painted_grid_reads_back_at_many_sizes() {
        for (w, h) in [
            (1024, 1024),
            (1376, 768),
            (384, 3072),
            (3072, 384),
            (632, 424),
        ] {
            let id = 0xDEAD_BEEF ^ w;
            let sig = Signature::new(id, w, h);
            let img = image::RgbImage::from_fn(w, h, |x, y| {
                let base = (x / 16 + y / 16) as u8;
                let g = sig.gray_at(x / 16 * 16, y / 16 * 16);
                g.map_or(image::Rgb([200, base, 40]), |g| image::Rgb([g, g, g]))
            });
            assert_eq!(read_signature(&img), Some(id), "{w}x{h}");
        }
        let plain = image::RgbImage::from_pixel(300, 200, image::Rgb([10, 200, 30]));
        assert_eq!(read_signature(&plain), None);
    }
}
