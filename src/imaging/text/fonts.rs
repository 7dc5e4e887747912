//! The embedded font set, the locale → face mapping and the pool of
//! [`FontSystem`]s that shaping and rasterising borrow from.
//!
//! Fonts are compiled into the binary so output never depends on what the
//! machine has installed, and the same request renders the same pixels
//! everywhere.

use std::sync::{Arc, Mutex, OnceLock};

use cosmic_text::fontdb;
use cosmic_text::{Fallback, FontSystem};
use unicode_script::Script;

/// One embedded font file.
struct FontFile {
    /// File name under `assets/fonts/`, for diagnostics.
    name: &'static str,
    bytes: &'static [u8],
    /// Stored zstd-compressed (`.zst`): decompressed once per process, the
    /// first time any copy is typeset.
    compressed: bool,
}

macro_rules! font {
    ($file:literal) => {
        FontFile {
            name: $file,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/", $file)),
            compressed: false,
        }
    };
    ($file:literal, zstd) => {
        FontFile {
            name: $file,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/", $file)),
            compressed: true,
        }
    };
}

impl FontFile {
    /// The font's bytes as fontdb reads them.
    fn source(&self) -> fontdb::Source {
        if !self.compressed {
            return fontdb::Source::Binary(Arc::new(self.bytes));
        }
        let mut out = Vec::new();
        let decoded = ruzstd::decoding::StreamingDecoder::new(self.bytes)
            .map_err(|e| e.to_string())
            .and_then(|mut d| {
                std::io::Read::read_to_end(&mut d, &mut out).map_err(|e| e.to_string())
            });
        if let Err(e) = decoded {
            // The bytes are compiled in: only a broken build gets here.
            tracing::error!(font = self.name, error = %e, "embedded font does not decompress");
            out.clear();
        }
        fontdb::Source::Binary(Arc::new(out))
    }
}

/// Every font shipped with adloc (see `assets/fonts/README.md`).
static FONT_FILES: &[FontFile] = &[
    font!("NotoSans-Regular.ttf"),
    font!("NotoSans-Bold.ttf"),
    font!("NotoSansArabic-Regular.ttf"),
    font!("NotoSansArabic-Bold.ttf"),
    font!("NotoSansHebrew-Regular.ttf"),
    font!("NotoSansHebrew-Bold.ttf"),
    font!("NotoSansThai-Regular.ttf"),
    font!("NotoSansThai-Bold.ttf"),
    font!("NotoSansDevanagari-Regular.ttf"),
    font!("NotoSansDevanagari-Bold.ttf"),
    // One collection with the JP, KR, SC, TC and HK faces (Regular only: the
    // Bold collection is another 20 MB, so CJK bold falls back to Regular).
    // zstd -19: 12.2 MB of the binary instead of 19.5 MB.
    font!("NotoSansCJK-Regular.ttc.zst", zstd),
];

/// Family names as they appear in the fonts' name tables.
pub(crate) const SANS: &str = "Noto Sans";
pub(crate) const ARABIC: &str = "Noto Sans Arabic";
pub(crate) const HEBREW: &str = "Noto Sans Hebrew";
pub(crate) const THAI: &str = "Noto Sans Thai";
pub(crate) const DEVANAGARI: &str = "Noto Sans Devanagari";
pub(crate) const CJK_JP: &str = "Noto Sans CJK JP";
pub(crate) const CJK_KR: &str = "Noto Sans CJK KR";
pub(crate) const CJK_SC: &str = "Noto Sans CJK SC";
pub(crate) const CJK_TC: &str = "Noto Sans CJK TC";
pub(crate) const CJK_HK: &str = "Noto Sans CJK HK";

/// Every family the mapping below can return; a test checks they all exist.
#[cfg(test)]
pub(crate) const ALL_FAMILIES: &[&str] = &[
    SANS, ARABIC, HEBREW, THAI, DEVANAGARI, CJK_JP, CJK_KR, CJK_SC, CJK_TC, CJK_HK,
];

/// The parts of a BCP-47 tag the font choice depends on.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LocaleParts {
    /// Lowercase primary language (`ja`, `zh`, …).
    pub language: String,
    /// Titlecase script subtag (`Hant`, `Arab`, …), when present.
    pub script: Option<String>,
    /// Uppercase region (`TW`, `HK`, …), when present.
    pub region: Option<String>,
}

/// Split a BCP-47 tag leniently: `_` is accepted as a separator and case is
/// normalised, because tags arrive from CSV files written by hand.
pub(crate) fn parse_locale(tag: &str) -> LocaleParts {
    let mut parts = LocaleParts::default();
    let mut subtags = tag.split(['-', '_']).filter(|s| !s.is_empty());
    if let Some(lang) = subtags.next() {
        parts.language = lang.to_ascii_lowercase();
    }
    for sub in subtags {
        // Extensions (`-u-…`, `-x-…`) carry nothing we need.
        if sub.len() == 1 {
            break;
        }
        if parts.script.is_none()
            && parts.region.is_none()
            && sub.len() == 4
            && sub.chars().all(|c| c.is_ascii_alphabetic())
        {
            let mut s = sub.to_ascii_lowercase();
            s[..1].make_ascii_uppercase();
            parts.script = Some(s);
        } else if parts.region.is_none()
            && ((sub.len() == 2 && sub.chars().all(|c| c.is_ascii_alphabetic()))
                || (sub.len() == 3 && sub.chars().all(|c| c.is_ascii_digit())))
        {
            parts.region = Some(sub.to_ascii_uppercase());
        }
    }
    parts
}

/// The CJK face for Chinese, by script first and region second (Han
/// unification: the same code point has different regional glyph shapes).
fn chinese_family(parts: &LocaleParts) -> &'static str {
    let region = parts.region.as_deref();
    match parts.script.as_deref() {
        Some("Hans") => CJK_SC,
        // zh-Hant-HK / zh-Hant-MO use the Hong Kong forms (harfbuzz #300).
        Some("Hant") if matches!(region, Some("HK" | "MO")) => CJK_HK,
        Some("Hant") => CJK_TC,
        _ => match region {
            Some("HK" | "MO") => CJK_HK,
            Some("TW") => CJK_TC,
            _ => CJK_SC,
        },
    }
}

/// The primary family for text in `locale`. Characters the family lacks
/// (Latin inside Arabic copy, say) are found through [`AdlocFallback`].
pub(crate) fn family_for_locale(locale: &str) -> &'static str {
    let parts = parse_locale(locale);
    // An explicit script wins over the language default (`az-Arab`, `ku-Arab`).
    match parts.script.as_deref() {
        Some("Arab") => return ARABIC,
        Some("Hebr") => return HEBREW,
        Some("Thai") => return THAI,
        Some("Deva") => return DEVANAGARI,
        Some("Jpan" | "Hira" | "Kana") => return CJK_JP,
        Some("Kore" | "Hang") => return CJK_KR,
        Some("Hans" | "Hant") => return chinese_family(&parts),
        Some(_) if parts.language != "zh" => return SANS,
        _ => {}
    }
    match parts.language.as_str() {
        "ja" => CJK_JP,
        "ko" => CJK_KR,
        "zh" | "cmn" => chinese_family(&parts),
        "yue" => CJK_HK,
        "ar" | "fa" | "ur" | "ps" | "ckb" | "ug" | "sd" | "ks" => ARABIC,
        "he" | "iw" | "yi" | "ji" => HEBREW,
        "th" => THAI,
        "hi" | "mr" | "ne" | "sa" | "mai" | "bho" | "kok" => DEVANAGARI,
        _ => SANS,
    }
}

/// Our own fallback lists, so fallback never names a platform font (the
/// cosmic-text defaults differ between Linux, macOS and Windows) and only
/// ever picks from the embedded set.
#[derive(Debug)]
struct AdlocFallback;

impl Fallback for AdlocFallback {
    fn common_fallback(&self) -> &[&'static str] {
        &[SANS]
    }

    fn forbidden_fallback(&self) -> &[&'static str] {
        &[]
    }

    fn script_fallback(&self, script: Script, _locale: &str) -> &[&'static str] {
        // Han in a non-CJK locale (a brand name in Chinese inside English
        // copy) gets the Simplified forms; CJK locales never get here for
        // Han because their primary family already covers it.
        match script {
            Script::Arabic => &[ARABIC],
            Script::Hebrew => &[HEBREW],
            Script::Thai => &[THAI],
            Script::Devanagari => &[DEVANAGARI],
            Script::Hangul => &[CJK_KR],
            Script::Hiragana | Script::Katakana => &[CJK_JP],
            Script::Han | Script::Bopomofo => &[CJK_SC],
            _ => &[],
        }
    }
}

/// The database of embedded faces, parsed once per process. Cloning it is
/// cheap: the face sources are `Arc`s over the `'static` font bytes.
fn database() -> &'static fontdb::Database {
    static DB: OnceLock<fontdb::Database> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = fontdb::Database::new();
        for file in FONT_FILES {
            db.load_font_source(file.source());
        }
        // Generic families resolve to our faces, never to system fonts.
        db.set_sans_serif_family(SANS);
        db.set_serif_family(SANS);
        db.set_monospace_family(SANS);
        db
    })
}

/// Engines kept for reuse. Shaping needs `&mut FontSystem`, so one shared
/// system behind a mutex would serialise every render thread; instead each
/// caller checks out its own system (built from the shared database, so
/// fonts are parsed once and their bytes never copied) and returns it.
/// Each with how many of the registered brand faces it has loaded.
static POOL: Mutex<Vec<(FontSystem, usize)>> = Mutex::new(Vec::new());

/// More idle systems than this are dropped rather than kept: each holds its
/// own font caches, and more than a handful of render threads is unusual.
const MAX_IDLE: usize = 16;

/// Brand faces registered by this process, in registration order, with
/// the family name of each. Every pooled system loads the ones it lacks
/// when it is checked out, so brand faces are parsed once per system and
/// the embedded set stays a `'static` database.
static BRAND: Mutex<Vec<BrandFace>> = Mutex::new(Vec::new());

/// A registered brand font file and the family alias its faces carry.
type BrandFace = (Arc<Vec<u8>>, &'static str);

/// Register brand font files (checked with [`check_font`] when the
/// campaign loaded) and return the family brand-set text asks for: the
/// first file's family, under an alias (`Inter [brand]`) so a brand face
/// never merges with a shipped face of the same name (a renamed Noto copy
/// stays the brand's). Files of one family (Regular, Bold) share the
/// alias, so weights still resolve within it. Registering the same bytes
/// again is a no-op.
pub(crate) fn register_brand_fonts(files: &[Arc<Vec<u8>>]) -> Option<&'static str> {
    let mut brand = BRAND.lock().unwrap_or_else(|p| p.into_inner());
    let mut first = None;
    for bytes in files {
        let family = match brand.iter().find(|(b, _)| b.as_slice() == bytes.as_slice()) {
            Some((_, f)) => *f,
            None => {
                let Ok(name) = check_font(bytes.clone()) else {
                    continue;
                };
                let alias = format!("{name} [brand]");
                let f: &'static str = match brand.iter().find(|(_, f)| **f == alias) {
                    Some((_, f)) => f,
                    // One leaked name per brand family in the process:
                    // `Attrs` borrows family names for `'static`.
                    None => Box::leak(alias.into_boxed_str()),
                };
                brand.push((bytes.clone(), f));
                f
            }
        };
        first.get_or_insert(family);
    }
    first
}

/// The family for `text` in `locale`: `brand` (the style's brand family)
/// when its face has a glyph for every visible character, else the Noto
/// family for the locale.
pub(crate) fn family_for_text(
    fs: &mut FontSystem,
    locale: &str,
    text: &str,
    brand: Option<&'static str>,
) -> &'static str {
    let Some(brand) = brand else {
        return family_for_locale(locale);
    };
    let id = fs
        .db()
        .faces()
        .find(|f| f.families.iter().any(|(n, _)| n == brand))
        .map(|f| f.id);
    let font = id.and_then(|id| fs.get_font(id, fontdb::Weight::NORMAL));
    let covers = font.is_some_and(|font| {
        let charmap = font.as_swash().charmap();
        text.chars()
            .filter(|c| !c.is_whitespace() && !c.is_control() && !is_format(*c))
            .all(|c| charmap.map(c) != 0)
    });
    if covers {
        brand
    } else {
        family_for_locale(locale)
    }
}

/// Invisible format characters (bidi marks, joiners) no face needs to draw.
fn is_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A [`FontSystem`] borrowed from the pool; returned to it on drop.
pub(crate) struct PooledFontSystem(Option<(FontSystem, usize)>);

impl PooledFontSystem {
    /// Take an idle system or build a new one.
    pub(crate) fn checkout() -> Self {
        let idle = POOL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let (mut fs, mut loaded) = idle.unwrap_or_else(|| (new_font_system(), 0));
        load_brand(&mut fs, &mut loaded);
        PooledFontSystem(Some((fs, loaded)))
    }

    /// The borrowed system.
    pub(crate) fn get(&mut self) -> &mut FontSystem {
        // Only `drop` takes the value out, so this never builds in practice.
        &mut self.0.get_or_insert_with(|| (new_font_system(), 0)).0
    }
}

/// Load the brand faces registered since `fs` last looked (`loaded` of
/// them it already has).
fn load_brand(fs: &mut FontSystem, loaded: &mut usize) {
    let brand = BRAND.lock().unwrap_or_else(|p| p.into_inner());
    for (bytes, alias) in brand.iter().skip(*loaded) {
        let mut parsed = fontdb::Database::new();
        parsed.load_font_source(fontdb::Source::Binary(bytes.clone()));
        for face in parsed.faces() {
            let mut face = face.clone();
            face.families = vec![(alias.to_string(), fontdb::Language::English_UnitedStates)];
            fs.db_mut().push_face_info(face);
        }
    }
    *loaded = brand.len();
}

/// A fresh system over the shared database.
fn new_font_system() -> FontSystem {
    // The system locale only feeds cosmic-text's own fallback lists, which
    // AdlocFallback ignores; a fixed value keeps it machine-independent.
    FontSystem::new_with_locale_and_db_and_fallback(
        "en-US".to_string(),
        database().clone(),
        AdlocFallback,
    )
}

impl Drop for PooledFontSystem {
    fn drop(&mut self) {
        if let Some(fs) = self.0.take() {
            let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if pool.len() < MAX_IDLE {
                pool.push(fs);
            }
        }
    }
}

/// Check that `bytes` are a font file (TrueType, OpenType or a collection)
/// and return the family name of its first face.
pub(crate) fn check_font(bytes: Arc<Vec<u8>>) -> Result<String, String> {
    let mut db = fontdb::Database::new();
    db.load_font_source(fontdb::Source::Binary(bytes));
    let face = db.faces().next().ok_or_else(|| {
        "not a font file (expected TrueType, OpenType or a collection)".to_string()
    })?;
    face.families
        .first()
        .map(|(name, _)| name.clone())
        .ok_or_else(|| "the font has no family name".to_string())
}
