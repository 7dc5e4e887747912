//! Locales: validated BCP-47 tags, CLDR fallback chains and display metadata.
//!
//! Everything here is backed by ICU4X compiled (CLDR) data, so no locale
//! knowledge is hand-rolled:
//!
//! * parsing and canonical casing: [`icu_locale::Locale`] plus
//!   [`icu_locale::LocaleCanonicalizer`] (legacy aliases such as `iw` → `he`);
//! * "is this a real language": likely-subtags data ([`icu_locale::LocaleExpander`])
//!   or English display-name data ([`icu_locale::names`]);
//! * fallback chains: [`icu_locale::fallback::LocaleFallbacker`], which follows
//!   CLDR `parentLocales` (`es-MX` → `es-419`, `en-GB` → `en-001`,
//!   `zh-Hant-MO` → `zh-Hant-HK`) instead of "strip the last subtag";
//! * names, script and direction: [`icu_locale::names`],
//!   [`icu_locale::LocaleExpander::get_likely_script`] and
//!   [`icu_locale::LocaleDirectionality`].
//!
//! # The Portuguese barrier
//!
//! In CLDR, `pt` *is* Brazilian Portuguese and `pt-PT` is its child. For
//! formatting data that inheritance is harmless (pt-PT overrides what differs),
//! but for human-written ad copy it would silently serve Brazilian copy in
//! Portugal. [`Locale::fallback_chain`] therefore stops at `pt-PT`: `pt-PT`
//! yields `[pt-PT]`, and the European-norm PALOP locales (`pt-AO`, `pt-MZ`, …),
//! whose CLDR parent is `pt-PT`, yield `[pt-AO, pt-PT]`.

use std::fmt;
use std::str::FromStr;

use icu_locale::fallback::provider::LocaleParentsV1;
use icu_locale::fallback::{LocaleFallbackConfig, LocaleFallbackPriority};
use icu_locale::names::{
    DisplayNamesPreferences, LanguageDisplay, LanguageIdentifierDisplayName,
    LanguageIdentifierDisplayNameOptions, ScriptDisplayName,
};
use icu_locale::subtags::{Language, Script};
use icu_locale::{
    DataLocale, Direction, LanguageIdentifier, LocaleCanonicalizer, LocaleDirectionality,
    LocaleExpander, LocaleFallbacker, TransformResult, locale,
};
use icu_provider::prelude::{DataPayload, DataProvider, DataResponse};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use writeable::{TryWriteable, Writeable};

/// Locales at which [`Locale::fallback_chain`] stops, although CLDR continues.
///
/// Each is a different written standard from its CLDR parent, so falling back
/// would serve copy written for another country (see the module docs).
const COPY_FALLBACK_BARRIERS: &[&str] = &["pt-PT"];

/// Why a locale tag was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocaleError {
    /// The tag was empty or only whitespace.
    #[error("locale tag is empty; expected a BCP-47 tag such as `de-DE` or `pt-BR`")]
    Empty,
    /// The tag is not syntactically valid BCP-47.
    #[error("`{input}` is not a well-formed BCP-47 locale tag: {reason}")]
    IllFormed {
        /// The tag as given.
        input: String,
        /// ICU's description of the syntax problem.
        reason: String,
    },
    /// The tag is well-formed but its language subtag is not a known language.
    #[error(
        "`{input}`: unknown language `{language}` (not in CLDR likely-subtags or language-name data); use an ISO 639 code such as `en`, `de` or `zh`"
    )]
    UnknownLanguage {
        /// The tag as given.
        input: String,
        /// The offending language subtag.
        language: String,
    },
}

/// A validated, canonical BCP-47 locale.
///
/// Construct it with [`Locale::parse`] (or [`FromStr`] / serde), which is the
/// only way in, so holding a `Locale` means the tag is well-formed, canonically
/// cased and names a language CLDR knows.
///
/// Equality, ordering and hashing are by the canonical tag string.
#[derive(Clone)]
pub struct Locale {
    /// Canonical string form, cached because it is what every caller wants.
    tag: String,
    inner: icu_locale::Locale,
}

/// Display metadata for a [`Locale`], all derived from CLDR data.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct LocaleInfo {
    /// Canonical BCP-47 tag, e.g. `de-DE`.
    pub tag: String,
    /// Language subtag, e.g. `de`.
    pub language: String,
    /// Name in English, e.g. `German (Germany)`, `Chinese (Simplified, China)`.
    pub english_name: String,
    /// Name in the locale itself, e.g. `Deutsch (Deutschland)`, `日本語 (日本)`.
    pub native_name: String,
    /// ISO 15924 script code, maximized via likely subtags (`Latn`, `Jpan`, `Hans`, `Arab`).
    pub script: String,
    /// Writing direction: `ltr` or `rtl`.
    pub direction: String,
}

impl Locale {
    /// Parses and validates a locale tag.
    ///
    /// Accepts POSIX-style underscores (`pt_BR` → `pt-BR`) and any casing
    /// (`zh-hant-tw` → `zh-Hant-TW`). Legacy aliases are canonicalized
    /// (`iw` → `he`). Rejects ill-formed tags and languages that CLDR does not
    /// know (`xx-YY`, `english`), with a message saying what is wrong.
    pub fn parse(s: &str) -> Result<Locale, LocaleError> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(LocaleError::Empty);
        }
        // CSV headers and OS settings often use `_` (POSIX `pt_BR`); BCP-47 only allows `-`.
        let normalized = trimmed.replace('_', "-");
        let mut inner = icu_locale::Locale::try_from_str(&normalized).map_err(|e| {
            let reason = match e {
                // The common mistake is a language *name* (`english`, `German`):
                // say which subtag is wrong and what shape is expected.
                icu_locale::ParseError::InvalidLanguage => format!(
                    "`{}` is not a language subtag; expected a 2-3 letter ISO 639 code such as `en`",
                    normalized.split('-').next().unwrap_or_default()
                ),
                other => format!(
                    "{other}; expected something like `de-DE`, `pt-BR` or `zh-Hant-TW`"
                ),
            };
            LocaleError::IllFormed {
                input: s.to_string(),
                reason,
            }
        })?;
        LocaleCanonicalizer::new_extended().canonicalize(&mut inner);

        let language = inner.id.language;
        if !is_known_language(language) {
            return Err(LocaleError::UnknownLanguage {
                input: s.to_string(),
                language: language.to_string(),
            });
        }
        Ok(Locale {
            tag: inner.to_string(),
            inner,
        })
    }

    /// The canonical tag string, e.g. `zh-Hant-TW`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The underlying ICU4X locale, for building formatters.
    pub fn as_icu(&self) -> &icu_locale::Locale {
        &self.inner
    }

    /// The CLDR fallback chain for looking up copy, most specific first.
    ///
    /// The first entry is always [`Locale::tag`]; `und`/root is never included.
    /// Steps come from ICU's [`LocaleFallbacker`] (language priority, CLDR
    /// `parentLocales`), for example:
    ///
    /// | locale | chain |
    /// |---|---|
    /// | `es-MX` | `es-MX`, `es-419`, `es` |
    /// | `en-GB` | `en-GB`, `en-001`, `en` |
    /// | `zh-Hant-HK` | `zh-Hant-HK`, `zh-Hant` (never Simplified `zh`) |
    /// | `zh-Hant-MO` | `zh-Hant-MO`, `zh-Hant-HK`, `zh-Hant` |
    /// | `zh-Hans-CN` | `zh-Hans-CN`, `zh-Hans`, `zh` |
    /// | `pt-PT` | `pt-PT` (never Brazilian `pt`; see the module docs) |
    ///
    /// Spelling: ICU drops a script subtag that likely-subtags data implies
    /// (`zh-Hans-CN` ≡ `zh-CN`). When the input spelled its script out, the
    /// entries keep it (`zh-Hans`, not `zh-CN`) so they match how the campaign
    /// writes its columns; when the chain reaches the bare language whose
    /// default script is that script, the bare language (`zh`) is listed too,
    /// since CSV columns commonly use it. Extensions (`-u-…`) are not part of
    /// the chain except in the first entry.
    pub fn fallback_chain(&self) -> Vec<String> {
        let mut config = LocaleFallbackConfig::default();
        // Language priority keeps us within the language (es-MX → es-419 → es)
        // rather than the region (es-MX → und-MX).
        config.priority = LocaleFallbackPriority::Language;
        let fallbacker = LocaleFallbacker::new().for_config(config);
        let mut iter = fallbacker.fallback_for(DataLocale::from(&self.inner));

        let expander = LocaleExpander::new_extended();
        let parents = ParentLocales::load();
        let explicit_script = self.inner.id.script;
        let mut chain = vec![self.tag.clone()];
        let mut push = |entry: String| {
            if !chain.contains(&entry) {
                chain.push(entry);
            }
        };

        // Bounded: every ICU step or parent jump moves towards root; the bound
        // only guards against a data cycle.
        for _ in 0..16 {
            if iter.get().is_unknown() {
                break;
            }
            let step = iter.get();
            let plain = LanguageIdentifier::from((step.language, step.script, step.region));
            let plain_tag = plain.to_string();
            // The same step with its implied script written out (`zh-MO` →
            // `zh-Hant-MO`), if ICU's normalization dropped one.
            let implied_tag = match step.script {
                None => expander.get_likely_script(&plain).map(|script| {
                    LanguageIdentifier::from((step.language, Some(script), step.region)).to_string()
                }),
                Some(_) => None,
            };
            // Restore the input's spelling only if the input spelled its script.
            let spelled_tag = match (explicit_script, step.script) {
                (Some(script), None) if expander.get_likely_script(&plain) == Some(script) => {
                    implied_tag.clone()
                }
                _ => None,
            };
            match &spelled_tag {
                Some(spelled) => {
                    push(spelled.clone());
                    if step.region.is_none() {
                        push(plain_tag.clone());
                    }
                }
                None => push(plain_tag.clone()),
            }

            let at_barrier = |t: &str| COPY_FALLBACK_BARRIERS.contains(&t);
            if at_barrier(&plain_tag) || spelled_tag.as_deref().is_some_and(at_barrier) {
                break;
            }

            // ICU normalizes `zh-Hant-MO` to `zh-MO` before looking up CLDR
            // parents, but the data is keyed `zh-Hant-MO` → `zh-Hant-HK`, so
            // ICU 2.4 skips that parent. Follow it ourselves when only the
            // script-spelled key has one.
            if let Some(implied) = &implied_tag
                && parents.parent_of(&plain_tag).is_none()
                && let Some(parent) = parents.parent_of(implied)
            {
                iter = fallbacker.fallback_for(DataLocale::from(&parent));
                continue;
            }
            iter.step();
        }
        chain
    }

    /// English and native names, likely script and writing direction.
    pub fn info(&self) -> LocaleInfo {
        let langid = &self.inner.id;
        let english = DisplayNamesPreferences::from(locale!("en"));
        let native = DisplayNamesPreferences::from(&self.inner);
        let script = likely_script(langid);
        LocaleInfo {
            tag: self.tag.clone(),
            language: langid.language.to_string(),
            english_name: display_name(english, langid),
            native_name: display_name(native, langid),
            script: script.map(|s| s.to_string()).unwrap_or_default(),
            direction: direction(langid).to_string(),
        }
    }

    /// The English name of this locale's likely script, e.g. `Latin`, `Arabic`.
    pub fn script_name(&self) -> String {
        match likely_script(&self.inner.id) {
            Some(script) => ScriptDisplayName::new_heavy_with_fallback(
                DisplayNamesPreferences::from(locale!("en")),
                script,
            )
            .write_to_string()
            .into_owned(),
            None => String::new(),
        }
    }
}

/// CLDR `parentLocales`, straight from ICU's compiled fallback data.
struct ParentLocales(Option<DataPayload<LocaleParentsV1>>);

impl ParentLocales {
    fn load() -> Self {
        // A load failure only loses the workaround in `fallback_chain`; ICU's
        // own parent handling still applies.
        let response: Result<DataResponse<LocaleParentsV1>, _> =
            icu_locale::fallback::provider::Baked.load(Default::default());
        ParentLocales(response.ok().map(|r| r.payload))
    }

    /// The explicit CLDR parent of `tag` (exact key match), if any.
    fn parent_of(&self, tag: &str) -> Option<LanguageIdentifier> {
        let payload = self.0.as_ref()?;
        let (language, script, region) = payload
            .get()
            .parents
            .get_copied_by(|key| key.0.cmp(tag.as_bytes()))?;
        Some(LanguageIdentifier::from((language, script, region)))
    }
}

/// The maximized script: explicit if given, otherwise from likely subtags.
fn likely_script(langid: &LanguageIdentifier) -> Option<Script> {
    langid
        .script
        .or_else(|| LocaleExpander::new_extended().get_likely_script(langid))
}

/// `"rtl"` or `"ltr"`; scripts without direction data count as LTR.
fn direction(langid: &LanguageIdentifier) -> &'static str {
    match LocaleDirectionality::new_extended().get(langid) {
        Some(Direction::RightToLeft) => "rtl",
        _ => "ltr",
    }
}

/// `Language (Script, Region)` in the display locale, lossy on missing data.
///
/// Standard (not dialect) display keeps the pattern uniform: `English (United
/// Kingdom)` rather than `British English`.
pub(crate) fn display_name(prefs: DisplayNamesPreferences, langid: &LanguageIdentifier) -> String {
    let mut options = LanguageIdentifierDisplayNameOptions::default();
    options.language_display = Some(LanguageDisplay::Standard);
    // Only language/script/region/variants are named; extensions are ignored.
    let subject = langid.clone();
    match LanguageIdentifierDisplayName::try_new_heavy(prefs, subject, options) {
        Ok(name) => {
            let borrowed = name.as_borrowed();
            match borrowed.try_write_to_string() {
                Ok(s) => s.into_owned(),
                // A missing subtag name falls back to the code itself, e.g. `Italian (Qabc)`.
                Err((_, lossy)) => lossy.into_owned(),
            }
        }
        Err(_) => langid.to_string(),
    }
}

/// The English name of a language alone, or `None` if CLDR has none.
pub(crate) fn english_language_name(language: Language) -> Option<String> {
    let prefs = DisplayNamesPreferences::from(locale!("en"));
    let subject = LanguageIdentifier::from((language, None, None));
    let name = LanguageIdentifierDisplayName::try_new_heavy(
        prefs,
        subject,
        LanguageIdentifierDisplayNameOptions::default(),
    )
    .ok()?;
    let borrowed = name.as_borrowed();
    let written = borrowed.try_write_to_string().ok()?;
    Some(written.into_owned())
}

/// A language is known if likely-subtags data can maximize it or English
/// display-name data names it; `und` is never a usable copy locale.
fn is_known_language(language: Language) -> bool {
    if language.is_unknown() {
        return false;
    }
    let mut bare = LanguageIdentifier::from((language, None, None));
    LocaleExpander::new_extended().maximize(&mut bare) == TransformResult::Modified
        || english_language_name(language).is_some()
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag)
    }
}

impl fmt::Debug for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Locale").field(&self.tag).finish()
    }
}

impl FromStr for Locale {
    type Err = LocaleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Locale::parse(s)
    }
}

// Comparisons go through the canonical tag: icu_locale::Locale deliberately
// has no Ord, and the tag determines `inner` anyway.
impl PartialEq for Locale {
    fn eq(&self, other: &Self) -> bool {
        self.tag == other.tag
    }
}

impl Eq for Locale {}

impl std::hash::Hash for Locale {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.tag.hash(state);
    }
}

impl PartialOrd for Locale {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Locale {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.tag.cmp(&other.tag)
    }
}

impl Serialize for Locale {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.tag)
    }
}

impl<'de> Deserialize<'de> for Locale {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Locale::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> Locale {
        match Locale::parse(s) {
            Ok(l) => l,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn chain(s: &str) -> Vec<String> {
        loc(s).fallback_chain()
    }

    #[test]
    fn parse_canonicalizes() {
        assert_eq!(loc("pt_BR").tag(), "pt-BR");
        assert_eq!(loc("zh-hant-tw").tag(), "zh-Hant-TW");
        assert_eq!(loc("DE-de").tag(), "de-DE");
        assert_eq!(loc("  en-US ").tag(), "en-US");
        assert_eq!(loc("iw-IL").tag(), "he-IL");
        assert_eq!(loc("sr-Latn-RS").tag(), "sr-Latn-RS");
    }

    #[test]
    fn parse_rejects_bad_tags() {
        assert_eq!(Locale::parse("  "), Err(LocaleError::Empty));
        let ill = Locale::parse("xx-!!").unwrap_err();
        assert!(matches!(ill, LocaleError::IllFormed { .. }), "{ill:?}");
        assert!(ill.to_string().contains("xx-!!"), "{ill}");
        let name = Locale::parse("english").unwrap_err();
        assert!(
            name.to_string()
                .contains("`english` is not a language subtag"),
            "{name}"
        );
        for bad in ["xx-YY", "und", "qqq", "xyz-DE"] {
            let err = Locale::parse(bad).unwrap_err();
            assert!(
                matches!(err, LocaleError::UnknownLanguage { .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains("unknown language"), "{err}");
        }
        assert!(Locale::parse("de_DE.UTF-8").is_err());
    }

    #[test]
    fn traits_round_trip() {
        let l: Locale = "zh_hans_cn".parse().unwrap();
        assert_eq!(l.to_string(), "zh-Hans-CN");
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, "\"zh-Hans-CN\"");
        let back: Locale = serde_json::from_str("\"zh-hans-cn\"").unwrap();
        assert_eq!(back, l);
        let err = serde_json::from_str::<Locale>("\"xx-YY\"").unwrap_err();
        assert!(err.to_string().contains("unknown language"), "{err}");
        assert!(loc("de-DE") < loc("en-US"));
    }

    #[test]
    fn chain_es_mx_goes_through_es_419() {
        assert_eq!(chain("es-MX"), ["es-MX", "es-419", "es"]);
    }

    #[test]
    fn chain_pt_pt_never_reaches_brazilian_pt() {
        assert_eq!(chain("pt-PT"), ["pt-PT"]);
        let ao = chain("pt-AO");
        assert_eq!(ao, ["pt-AO", "pt-PT"]);
        assert!(!ao.contains(&"pt".to_string()));
        assert_eq!(chain("pt-BR"), ["pt-BR", "pt"]);
    }

    #[test]
    fn chain_chinese_keeps_script() {
        assert_eq!(chain("zh-Hant-HK"), ["zh-Hant-HK", "zh-Hant"]);
        assert_eq!(chain("zh-Hant-MO"), ["zh-Hant-MO", "zh-Hant-HK", "zh-Hant"]);
        assert_eq!(chain("zh-Hans-CN"), ["zh-Hans-CN", "zh-Hans", "zh"]);
        assert_eq!(chain("zh-TW"), ["zh-TW", "zh-Hant"]);
        assert_eq!(chain("zh-MO"), ["zh-MO", "zh-HK", "zh-Hant"]);
        assert_eq!(chain("zh-Hant"), ["zh-Hant"]);
        assert_eq!(chain("zh"), ["zh"]);
    }

    #[test]
    fn chain_english_goes_through_en_001() {
        assert_eq!(chain("en-GB"), ["en-GB", "en-001", "en"]);
        assert_eq!(chain("en-AU"), ["en-AU", "en-001", "en"]);
        assert_eq!(chain("en-US"), ["en-US", "en"]);
    }

    #[test]
    fn chain_simple_locales() {
        assert_eq!(chain("de-DE"), ["de-DE", "de"]);
        assert_eq!(chain("ja-JP"), ["ja-JP", "ja"]);
        assert_eq!(chain("ar-SA"), ["ar-SA", "ar"]);
        assert_eq!(chain("de"), ["de"]);
        assert_eq!(chain("sr-Latn-RS"), ["sr-Latn-RS", "sr-Latn"]);
    }

    #[test]
    fn info_de_de() {
        let info = loc("de-DE").info();
        assert_eq!(
            info,
            LocaleInfo {
                tag: "de-DE".into(),
                language: "de".into(),
                english_name: "German (Germany)".into(),
                native_name: "Deutsch (Deutschland)".into(),
                script: "Latn".into(),
                direction: "ltr".into(),
            }
        );
    }

    #[test]
    fn info_names_scripts_directions() {
        let zh = loc("zh-Hans-CN").info();
        assert_eq!(zh.english_name, "Chinese (Simplified, China)");
        assert_eq!(zh.script, "Hans");
        let ja = loc("ja-JP").info();
        assert_eq!(ja.native_name, "日本語 (日本)");
        assert_eq!(ja.script, "Jpan");
        assert_eq!(loc("ko-KR").info().script, "Kore");
        let ar = loc("ar-SA").info();
        assert_eq!(ar.native_name, "العربية (المملكة العربية السعودية)");
        assert_eq!(ar.script, "Arab");
        assert_eq!(ar.direction, "rtl");
        assert_eq!(loc("he").info().direction, "rtl");
        assert_eq!(loc("en-US").info().direction, "ltr");
    }

    #[test]
    fn script_names() {
        assert_eq!(loc("de-DE").script_name(), "Latin");
        assert_eq!(loc("ar-SA").script_name(), "Arabic");
    }
}
