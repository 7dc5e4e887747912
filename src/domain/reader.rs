//! Reader models for copy QA: Gemini text models that take an image and
//! transcribe its visible text (shared/protocols/gemini.md §7b).
//!
//! A reader is not a [`super::ModelId`]: it cannot paint, and an image model
//! cannot be a reader, so the two id lists are kept apart and a campaign
//! cannot put one where the other belongs.
//!
//! Prices. Only three readers have a (third-party, UNCONFIRMED) price; the
//! others take the price of the nearest dearer listed model, a conservative
//! estimate. Every reader price is marked unconfirmed, which `plan` shows,
//! and `[pricing."<reader>".tokens]` overrides it.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use super::model::{Retired, Vendor};

/// A Gemini text model that reads text off an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReaderModel {
    /// `gemini-3.1-flash-lite`: the cheapest; shutdown announced for 2027-05-07.
    Flash31Lite,
    /// `gemini-3.5-flash-lite`.
    Flash35Lite,
    /// `gemini-3.5-flash`.
    Flash35,
    /// `gemini-3.6-flash`.
    Flash36,
    /// `gemini-3.7-flash`.
    Flash37,
    /// `gemini-3.8-flash`.
    Flash38,
}

/// USD per 1M tokens, realtime (Batch Mode is exactly half).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReaderRates {
    /// Input tokens (the image and the instruction).
    pub input: f64,
    /// Output tokens (the transcription, and thoughts when the model thinks).
    pub output: f64,
    /// True when the price is not from the vendor's own pricing page
    /// (a third-party listing, or borrowed from a dearer model).
    pub unconfirmed: bool,
}

/// One row of the reader table.
struct ReaderProfile {
    model: ReaderModel,
    id: &'static str,
    rates: ReaderRates,
}

const fn unconfirmed(input: f64, output: f64) -> ReaderRates {
    ReaderRates {
        input,
        output,
        unconfirmed: true,
    }
}

/// Every reader adloc accepts, cheapest first (December 2026, §7b).
///
/// Listed (third-party, UNCONFIRMED): 3.1 Flash-Lite $0.25 / $1.50,
/// 3.5 Flash-Lite $0.30 / $2.50, 3.7 Flash $1.50 / $7.50. 3.5 Flash and 3.6
/// Flash have no listing and take 3.7 Flash's price (the nearest dearer
/// listed model). 3.8 Flash has no dearer listed model; it takes 3.7
/// Flash's, the dearest listed, which may be low: override it under
/// `[pricing]` once the price is known.
const KNOWN_READERS: &[ReaderProfile] = &[
    ReaderProfile {
        model: ReaderModel::Flash31Lite,
        id: "gemini-3.1-flash-lite",
        rates: unconfirmed(0.25, 1.50),
    },
    ReaderProfile {
        model: ReaderModel::Flash35Lite,
        id: "gemini-3.5-flash-lite",
        rates: unconfirmed(0.30, 2.50),
    },
    ReaderProfile {
        model: ReaderModel::Flash35,
        id: "gemini-3.5-flash",
        rates: unconfirmed(1.50, 7.50),
    },
    ReaderProfile {
        model: ReaderModel::Flash36,
        id: "gemini-3.6-flash",
        rates: unconfirmed(1.50, 7.50),
    },
    ReaderProfile {
        model: ReaderModel::Flash37,
        id: "gemini-3.7-flash",
        rates: unconfirmed(1.50, 7.50),
    },
    ReaderProfile {
        model: ReaderModel::Flash38,
        id: "gemini-3.8-flash",
        rates: unconfirmed(1.50, 7.50),
    },
];

/// Readers whose shutdown is announced or past (§7b, the deprecations
/// page). A reader here is an input error from its date on; within 30 days
/// of it, a `plan` warning ([`super::shutdown_within`]).
pub(super) const READER_LIFECYCLE: &[Retired] = &[
    Retired {
        id: "gemini-2.5-flash",
        shut_down: "2026-12-01",
        replacement: "gemini-3.1-flash-lite",
    },
    Retired {
        id: "gemini-2.5-pro",
        shut_down: "2026-12-01",
        replacement: "gemini-3.1-flash-lite",
    },
    Retired {
        id: "gemini-3.1-flash-lite",
        shut_down: "2027-05-07",
        replacement: "gemini-3.5-flash-lite",
    },
];

/// Why a reader id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownReader {
    /// Not in the table.
    #[error("unknown reader model `{0}`{hint}; readers: {known}", hint = image_model_hint(.0), known = known_reader_list())]
    Unknown(String),
    /// Shut down by its vendor.
    #[error("reader model `{id}` was shut down on {on}; use `{replacement}` instead (readers: {known})", known = known_reader_list())]
    ShutDown {
        /// The id as written.
        id: String,
        /// The shutdown date.
        on: &'static str,
        /// What to use instead.
        replacement: &'static str,
    },
}

fn known_reader_list() -> String {
    ReaderModel::ALL
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// People will try the image model they already use as its own reader.
fn image_model_hint(id: &str) -> &'static str {
    if id.contains("image") {
        " (that is an image model; a reader is a Gemini text model that reads images)"
    } else {
        ""
    }
}

impl ReaderModel {
    /// Every reader, in table order (cheapest first).
    pub const ALL: &'static [ReaderModel] = &[
        ReaderModel::Flash31Lite,
        ReaderModel::Flash35Lite,
        ReaderModel::Flash35,
        ReaderModel::Flash36,
        ReaderModel::Flash37,
        ReaderModel::Flash38,
    ];

    fn profile(self) -> &'static ReaderProfile {
        KNOWN_READERS
            .iter()
            .find(|p| p.model == self)
            .unwrap_or(&KNOWN_READERS[0])
    }

    /// The id as sent in the URL path.
    pub fn as_str(self) -> &'static str {
        self.profile().id
    }

    /// Who serves it (every reader is a Gemini model).
    pub fn vendor(self) -> Vendor {
        Vendor::Gemini
    }

    /// The announced shutdown date (`YYYY-MM-DD`), if any.
    pub fn shutdown_on(self) -> Option<&'static str> {
        READER_LIFECYCLE
            .iter()
            .find(|r| r.id == self.as_str())
            .map(|r| r.shut_down)
    }

    /// The documented (or borrowed) realtime price, before `[pricing]`.
    pub fn rates(self) -> ReaderRates {
        self.profile().rates
    }

    /// Parse an id as of `today` (`YYYY-MM-DD`, UTC): a reader past its
    /// shutdown date is refused with its replacement. `models/` is allowed
    /// as a prefix, as for image models.
    pub fn parse_on(s: &str, today: &str) -> Result<ReaderModel, UnknownReader> {
        let bare = s.trim().strip_prefix("models/").unwrap_or(s.trim());
        if let Some(r) = READER_LIFECYCLE
            .iter()
            .find(|r| r.id == bare && r.shut_down <= today)
        {
            return Err(UnknownReader::ShutDown {
                id: bare.to_string(),
                on: r.shut_down,
                replacement: r.replacement,
            });
        }
        KNOWN_READERS
            .iter()
            .find(|p| p.id == bare)
            .map(|p| p.model)
            .ok_or_else(|| UnknownReader::Unknown(s.to_string()))
    }
}

impl FromStr for ReaderModel {
    type Err = UnknownReader;
    /// Parse as of today (UTC): shutdown dates are announced as dates.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let now = jiff::Timestamp::now().to_string();
        ReaderModel::parse_on(s, now.get(..10).unwrap_or(""))
    }
}

impl fmt::Display for ReaderModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReaderModel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::shutdown_within;

    #[test]
    fn every_reader_round_trips_through_its_id() {
        for r in ReaderModel::ALL {
            assert_eq!(ReaderModel::parse_on(r.as_str(), "2026-12-15"), Ok(*r));
            assert_eq!(r.vendor(), Vendor::Gemini);
            assert!(r.rates().unconfirmed, "{r}");
        }
        assert_eq!(KNOWN_READERS.len(), ReaderModel::ALL.len());
        assert_eq!(
            ReaderModel::parse_on("models/gemini-3.7-flash", "2026-12-15"),
            Ok(ReaderModel::Flash37)
        );
    }

    #[test]
    fn shut_down_readers_name_the_replacement() {
        let e = ReaderModel::parse_on("gemini-2.5-flash", "2026-12-15")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("shut down on 2026-12-01") && e.contains("use `gemini-3.1-flash-lite`"),
            "{e}"
        );
        assert!(ReaderModel::parse_on("gemini-2.5-pro", "2026-12-15").is_err());
        // 3.1 Flash-Lite is fine until its date, then refused.
        assert!(ReaderModel::parse_on("gemini-3.1-flash-lite", "2027-05-06").is_ok());
        let e = ReaderModel::parse_on("gemini-3.1-flash-lite", "2027-05-07").unwrap_err();
        assert!(e.to_string().contains("gemini-3.5-flash-lite"), "{e}");
    }

    #[test]
    fn unknown_readers_list_the_valid_ones_and_spot_image_models() {
        let e = ReaderModel::parse_on("gemini-9-flash", "2026-12-15")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gemini-3.1-flash-lite, gemini-3.5-flash-lite, gemini-3.5-flash"),
            "{e}"
        );
        let e = ReaderModel::parse_on("gemini-3.1-flash-image", "2026-12-15")
            .unwrap_err()
            .to_string();
        assert!(e.contains("that is an image model"), "{e}");
    }

    #[test]
    fn flash_lite_shutdown_warns_within_30_days() {
        assert_eq!(ReaderModel::Flash31Lite.shutdown_on(), Some("2027-05-07"));
        assert_eq!(
            shutdown_within("gemini-3.1-flash-lite", "2027-04-20", 30),
            Some(("2027-05-07", "gemini-3.5-flash-lite"))
        );
        assert_eq!(
            shutdown_within("gemini-3.1-flash-lite", "2027-03-01", 30),
            None
        );
        assert_eq!(ReaderModel::Flash37.shutdown_on(), None);
    }

    #[test]
    fn unlisted_readers_borrow_a_price_no_lower_than_a_listed_cheaper_one() {
        let listed = ReaderModel::Flash37.rates();
        for r in [ReaderModel::Flash35, ReaderModel::Flash36] {
            assert_eq!(r.rates(), listed, "{r}");
        }
        assert!(ReaderModel::Flash35Lite.rates().input > ReaderModel::Flash31Lite.rates().input);
    }
}
