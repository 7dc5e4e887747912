//! Temporary locale shim; replaced by the ICU4X-backed module.

use std::fmt;
use std::str::FromStr;

/// A validated BCP-47 locale.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Locale(String);

/// A malformed tag.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid locale `{0}`")]
pub struct LocaleError(String);

/// Facts about a locale for templates.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LocaleInfo {
    /// Canonical tag.
    pub tag: String,
    /// Language subtag.
    pub language: String,
    /// English name.
    pub english_name: String,
    /// Native name.
    pub native_name: String,
    /// ISO 15924 script.
    pub script: String,
    /// ltr or rtl.
    pub direction: String,
}

impl Locale {
    /// Parse a tag.
    pub fn parse(s: &str) -> Result<Locale, LocaleError> {
        let l: icu_locale::Locale = s
            .replace('_', "-")
            .parse()
            .map_err(|_| LocaleError(s.to_string()))?;
        Ok(Locale(l.to_string()))
    }
    /// The canonical tag.
    pub fn tag(&self) -> &str {
        &self.0
    }
    /// Fallback chain, self first.
    pub fn fallback_chain(&self) -> Vec<String> {
        let mut out = vec![self.0.clone()];
        let mut cur = self.0.clone();
        while let Some((head, _)) = cur.rsplit_once('-') {
            out.push(head.to_string());
            cur = head.to_string();
        }
        out
    }
    /// Template facts.
    pub fn info(&self) -> LocaleInfo {
        let lang = self.0.split('-').next().unwrap_or("").to_string();
        let rtl = matches!(lang.as_str(), "ar" | "he" | "fa" | "ur");
        LocaleInfo {
            tag: self.0.clone(),
            language: lang.clone(),
            english_name: lang.clone(),
            native_name: lang,
            script: String::new(),
            direction: if rtl { "rtl" } else { "ltr" }.into(),
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Locale {
    type Err = LocaleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Locale::parse(s)
    }
}
