//! The shared vocabulary every stage speaks: job identities, models and
//! their capabilities and prices, locales, job and batch states with their
//! transitions, the one list of failure reasons, and the library's error
//! type. It imports no other module of the crate.

mod error;
mod key;
mod locale;
mod model;
mod pricing;
mod reason;
mod request;
mod state;

pub use error::{Error, ExitCode, InputErrors, InputProblem, Result};
pub use key::{JobKey, RowId, Target};
pub use locale::{Locale, LocaleError};
pub use model::{
    AspectRatio, BillingMode, ImageSize, ModelId, Quality, Vendor, gpt_size, parse_ratio,
    shutdown_within,
};
pub use pricing::{PriceTable, PricingOverride, round_micro};
pub use reason::Reason;
pub use request::{AssetRecord, ImageRequest, ProofText, ReferenceImage, RetrySettings, Usage};
pub use state::{
    AttemptOutcome, BatchState, CompositeState, FallbackTrigger, JobState, ProviderKind, RunOutcome,
};

/// Milliseconds since the Unix epoch: the one clock every stored time uses.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
