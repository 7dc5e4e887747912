//! Job identity: the same identity on a rerun is the same job.

use std::fmt;

use super::locale::Locale;

/// A row id: unique, non-empty, letters, digits, `-`, `_` and `.` only, and
/// never `.`/`..`, because it becomes a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowId(String);

impl RowId {
    /// Validate an id.
    pub fn parse(s: &str) -> Result<RowId, String> {
        if s.is_empty() {
            return Err("row id is empty".into());
        }
        if s.chars().all(|c| c == '.') {
            return Err(format!("row id `{s}` is not a usable file name"));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!(
                "row id `{s}` contains `{bad}`; ids may use only letters, digits, `-`, `_` and `.`"
            ));
        }
        Ok(RowId(s.to_string()))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a job makes: one locale's deliverable, or the copy-free art of an
/// overlay variant that every locale shares.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The image for one locale (model-painted copy).
    Locale(Locale),
    /// Copy-free art of an overlay variant, shared by every locale.
    Art,
}

impl Target {
    /// The locale, for locale jobs.
    pub fn locale(&self) -> Option<&Locale> {
        match self {
            Target::Locale(l) => Some(l),
            Target::Art => None,
        }
    }

    /// True for art jobs.
    pub fn is_art(&self) -> bool {
        matches!(self, Target::Art)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Locale(l) => f.write_str(l.tag()),
            Target::Art => f.write_str("_art"),
        }
    }
}

/// A job's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    /// Campaign name.
    pub campaign: String,
    /// Row id.
    pub row: RowId,
    /// Locale, or the shared art.
    pub target: Target,
    /// Variant name.
    pub variant: String,
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.campaign, self.target, self.variant, self.row
        )
    }
}
