//! The one vocabulary of failures: every reason code a user or a downstream
//! program can see (a manifest failure, a run's stop reason, the `code` of
//! the JSON error object) is a [`Reason`]. The manifest schema's enum and the
//! README's list are tested against [`Reason::ALL`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! reasons {
    ($($variant:ident => $code:literal : $doc:literal,)*) => {
        /// A stable, machine-readable reason code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $(#[doc = $doc] $variant,)*
        }

        impl Reason {
            /// Every reason, in documentation order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The stable snake_case code written to the database and manifest.
            pub fn code(self) -> &'static str {
                match self {
                    $(Reason::$variant => $code,)*
                }
            }

            /// One line saying what the code means (the README's list).
            pub fn description(self) -> &'static str {
                match self {
                    $(Reason::$variant => $doc,)*
                }
            }
        }
    };
}

reasons! {
    RateLimited => "rate_limited": "429 per-minute rate limit (retried with the server's delay).",
    DailyQuotaExhausted => "daily_quota_exhausted": "The per-day quota is used up: the run stops and jobs stay pending for tomorrow.",
    ServerError => "server_error": "500/502/503/504 from the provider (retried).",
    Timeout => "timeout": "408 or a client-side timeout (retried).",
    Connection => "connection": "Connection refused or reset, or a truncated body (retried).",
    BadResponse => "bad_response": "A body that is not what the protocol promises.",
    InvalidArgument => "invalid_argument": "The provider refused the request as invalid (400); its message is in the detail.",
    BlockedPrompt => "blocked_prompt": "The provider blocked the prompt (safety or policy).",
    BlockedImage => "blocked_image": "The provider blocked the generated image (safety or policy).",
    NoImage => "no_image": "The model answered without an image.",
    UndecodableImage => "undecodable_image": "Image bytes that do not decode or do not match their MIME type.",
    Unauthenticated => "unauthenticated": "Missing or invalid API key, or no permission (401/403): the run stops.",
    CreditExhausted => "credit_exhausted": "Prepaid credit is used up (402): the run stops.",
    ModelNotFound => "model_not_found": "The provider does not serve the model (404): the run stops.",
    TextOverflow => "text_overflow": "Overlay copy does not fit its text box at the minimum font size.",
    TextMismatch => "text_mismatch": "Copy QA: the copy read back from the image does not match the expected copy, after a second read and the regenerations allowed.",
    BatchFailed => "batch_failed": "A remote batch ended failed, expired or cancelled before the item ran.",
    AttemptsExhausted => "attempts_exhausted": "The per-job attempt limit was reached on retryable errors.",
    BaseFailed => "base_failed": "text = \"edit\": the base locale's job failed, was blocked or fell back to overlay, so there is no image to edit this locale from; the detail names the base job. Queued again when the base is.",
    RenditionFailed => "rendition_failed": "A rendition could not be derived from its master (unreadable, changed or undecodable master).",
    OverWeight => "over_weight": "A placement stays over its platform's weight limit even at its lowest allowed quality (`min_quality`, 4:2:0 progressive JPEG) or palette (PNG): the detail gives the weight reached and the limit; the file is not written.",
    PlacementInvalid => "placement_invalid": "A placement file failed its platform's check after writing (frame, ratio, minimum size, format, sRGB or alpha in JPEG): the detail says which; the file is removed.",
    OverBudget => "over_budget": "The estimate exceeds budget.max_usd or --max-spend: nothing was sent.",
    SpendCapReached => "spend_cap_reached": "Spend reached the cap during the run: dispatch stopped.",
    RetryBudgetExhausted => "retry_budget_exhausted": "Retries exceeded the run's retry budget (the provider looks unhealthy): dispatch stopped.",
    Interrupted => "interrupted": "Ctrl-C or SIGTERM: calls in flight were drained and recorded.",
    InvalidInput => "invalid_input": "Bad campaign input or command-line usage: nothing was written or sent.",
    IoError => "io_error": "A file could not be read or written.",
    UploadFailed => "upload_failed": "An object could not be uploaded to the --out bucket, or did not read back with its sha256: the manifest there was not replaced.",
    SigningFailed => "signing_failed": "A delivered file could not be signed: the C2PA signer or its time-stamp authority (ADLOC_C2PA_TSA_URL) failed. The run stops (exit 4) rather than deliver it unsigned or buy more; rerun when it answers.",
    InternalError => "internal_error": "The state database or adloc itself failed.",
    Other => "other": "Anything the provider could not classify; the detail says what it said.",
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Reason::ALL
            .iter()
            .copied()
            .find(|r| r.code() == s)
            .ok_or_else(|| format!("unknown reason code `{s}`"))
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn every_code_parses_back_to_its_reason_and_codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert_eq!(r.code().parse::<Reason>(), Ok(*r));
            assert!(seen.insert(r.code()), "duplicate code {}", r.code());
        }
        assert!("nonsense".parse::<Reason>().is_err());
    }
}
