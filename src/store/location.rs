//! Where the state lives: a SQLite file (the default) or a PostgreSQL
//! database (`--state postgres://…`, or `ADLOC_DATABASE_URL`).
//!
//! A database URL may carry a password. It never leaves this type in the
//! clear: `Display` and `Debug` print it as `***`, and the store's errors
//! are built from the redacted form (and scrubbed of the password, in case
//! a driver message quotes it).

use std::convert::Infallible;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

/// The default `--state`: a SQLite file under the working directory.
pub const DEFAULT_STATE: &str = ".adloc/state.db";

/// A parsed `--state` value.
#[derive(Clone)]
pub enum StateLocation {
    /// A SQLite state file.
    Sqlite(PathBuf),
    /// A PostgreSQL database URL (`postgres://` or `postgresql://`).
    Postgres(DatabaseUrl),
}

/// A PostgreSQL URL, kept secret (it may hold a password).
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// The URL as given, for the driver only.
    pub(super) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with its password (userinfo or `password=` parameter)
    /// replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(self.expose())
    }

    /// Replace every occurrence of the URL's password in `text` (a driver
    /// message) by `***`.
    pub(super) fn scrub(&self, text: &str) -> String {
        match password(self.expose()) {
            Some(p) if !p.is_empty() => {
                let decoded = percent_decode(p);
                let text = text.replace(p, "***");
                if decoded.is_empty() {
                    text
                } else {
                    text.replace(&decoded, "***")
                }
            }
            _ => text.to_string(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl StateLocation {
    /// True for a PostgreSQL URL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, StateLocation::Postgres(_))
    }

    /// Whether there may be state to open: a SQLite file that exists, or
    /// any database (whether it holds adloc tables is found on connect).
    pub fn exists(&self) -> bool {
        match self {
            StateLocation::Sqlite(p) => p.exists(),
            StateLocation::Postgres(_) => true,
        }
    }

    /// The local folder that goes with the state: the state file's folder,
    /// or for a database the default `.adloc` folder of the working
    /// directory (bucket output is staged under it).
    pub fn local_dir(&self) -> PathBuf {
        match self {
            StateLocation::Sqlite(p) => p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            StateLocation::Postgres(_) => Path::new(DEFAULT_STATE)
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        }
    }
}

impl Default for StateLocation {
    fn default() -> Self {
        StateLocation::Sqlite(PathBuf::from(DEFAULT_STATE))
    }
}

impl From<PathBuf> for StateLocation {
    fn from(p: PathBuf) -> Self {
        StateLocation::Sqlite(p)
    }
}

impl From<&Path> for StateLocation {
    fn from(p: &Path) -> Self {
        StateLocation::Sqlite(p.to_path_buf())
    }
}

/// Never fails: a `postgres://` or `postgresql://` prefix selects
/// PostgreSQL (the URL is checked on connect, with a redacted error, so a
/// typo never echoes the password the way a parse error would), anything
/// else is a file path.
impl FromStr for StateLocation {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(StateLocation::Postgres(DatabaseUrl(SecretString::from(
                s.to_string(),
            ))))
        } else {
            Ok(StateLocation::Sqlite(PathBuf::from(s)))
        }
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::Sqlite(p) => write!(f, "{}", p.display()),
            StateLocation::Postgres(u) => f.write_str(&u.redacted()),
        }
    }
}

impl fmt::Debug for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            StateLocation::Postgres(u) => f.debug_tuple("Postgres").field(u).finish(),
        }
    }
}

/// The byte range of the password in a URL's userinfo
/// (`scheme://user:PASSWORD@host…`), if any.
fn userinfo_password(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some((start + colon + 1, start + at))
}

/// The byte ranges of `password=` query parameter values.
fn query_passwords(url: &str) -> Vec<(usize, usize)> {
    let Some(q) = url.find('?') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut pos = q + 1;
    for pair in url[q + 1..].split('&') {
        if let Some(v) = pair.strip_prefix("password=") {
            let s = pos + "password=".len();
            out.push((s, s + v.len()));
        }
        pos += pair.len() + 1;
    }
    out
}

/// The password a URL carries (userinfo first), as written.
fn password(url: &str) -> Option<&str> {
    userinfo_password(url)
        .or_else(|| query_passwords(url).first().copied())
        .map(|(a, b)| &url[a..b])
}

/// `%XX` escapes decoded (a driver may quote the password decoded);
/// malformed escapes are kept as written.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` with every password replaced by `***`.
pub(super) fn redact_url(url: &str) -> String {
    let mut ranges: Vec<(usize, usize)> = userinfo_password(url).into_iter().collect();
    ranges.extend(query_passwords(url));
    ranges.sort_unstable();
    let mut out = String::with_capacity(url.len());
    let mut last = 0;
    for (a, b) in ranges {
        out.push_str(&url[last..a]);
        out.push_str("***");
        last = b;
    }
    out.push_str(&url[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_select_postgres_and_anything_else_is_a_file() {
        for s in ["postgres://u@h/db", "postgresql://h/db", "POSTGRES://h/db"] {
            assert!(s.parse::<StateLocation>().unwrap().is_postgres(), "{s}");
        }
        for s in [".adloc/state.db", "/tmp/x.db", "postgres.db", "sqlite://x"] {
            assert!(!s.parse::<StateLocation>().unwrap().is_postgres(), "{s}");
        }
    }

    #[test]
    fn passwords_never_show_in_display_or_debug() {
        let l: StateLocation =
            "postgres://ann:s3cr%40t@db.example:5432/adloc?sslmode=require&password=other"
                .parse()
                .unwrap();
        for text in [l.to_string(), format!("{l:?}")] {
            assert!(!text.contains("s3cr"), "{text}");
            assert!(!text.contains("other"), "{text}");
            assert!(text.contains("ann:***@db.example:5432/adloc"), "{text}");
            assert!(text.contains("password=***"), "{text}");
        }
        let StateLocation::Postgres(u) = &l else {
            unreachable!()
        };
        assert_eq!(u.scrub("auth failed for s3cr%40t"), "auth failed for ***");
        assert_eq!(u.scrub("auth failed for s3cr@t"), "auth failed for ***");
        assert_eq!(
            redact_url("postgres://host/db?user=a"),
            "postgres://host/db?user=a"
        );
        assert_eq!(redact_url("postgres://a@host/db"), "postgres://a@host/db");
    }
}
