//! The shared vocabulary every stage speaks: job identities, models and
//! their capabilities and prices, copy-QA readers and the comparison of
//! expected copy with what they read, locales, job and batch states with their
//! transitions, the one list of failure reasons, and the library's error
//! type. It imports no other module of the crate.

mod error;
mod key;
mod locale;
mod model;
mod pricing;
#[allow(
    dead_code,
    reason = "copy QA (issue 12): its read step in run/ and provider/ is not wired yet; drop once it is"
)]
pub mod readback;
mod reader;
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
#[allow(
    unused_imports,
    reason = "copy QA (issue 12): its read step in run/ and provider/ is not wired yet; drop once it is"
)]
pub use pricing::{
    READ_IMAGE_TOKENS, READ_INSTRUCTION_TOKENS, READ_MAX_SIDE_PX, READ_OUTPUT_TOKENS,
};
#[allow(
    unused_imports,
    reason = "copy QA (issue 12): its read step in run/ and provider/ is not wired yet; drop once it is"
)]
pub use readback::{Readback, StringCheck};
pub use reader::ReaderModel;
#[allow(
    unused_imports,
    reason = "copy QA (issue 12): its read step in run/ and provider/ is not wired yet; drop once it is"
)]
pub use reader::{ReaderRates, UnknownReader};
pub use reason::Reason;
pub use request::{AssetRecord, ImageRequest, ProofText, ReferenceImage, RetrySettings, Usage};
pub use state::{
    AttemptOutcome, BatchState, CompositeState, FallbackTrigger, JobState, ProviderKind, RunOutcome,
};

/// Milliseconds since the Unix epoch: the one clock every stored time uses.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
