//! The shared vocabulary every stage speaks: job identities, models and
//! their capabilities and prices, copy-QA readers and the comparison of
//! expected copy with what they read, locales, job and batch states with their
//! transitions, approval states and asset selectors, the one list of failure
//! reasons, and the library's error type. It imports no other module of the crate.

mod approval;
mod error;
mod key;
mod locale;
mod model;
pub mod placement;
mod pricing;
pub mod provenance;
pub mod readback;
mod reader;
mod reason;
mod request;
mod state;

pub use approval::{
    ApprovalState, AssetSelector, Decision, DecisionFacts, Transition, strip_extension,
};
pub use error::{Error, ExitCode, InputErrors, InputProblem, Result};
pub use key::{JobKey, RowId, Target};
pub use locale::{Locale, LocaleError};
pub use model::{
    AspectRatio, BatchInputLimits, BillingMode, GPT_MAX_DATA_URL_CHARS, GPT_MIN_PIXELS, ImageSize,
    ModelId, Quality, Vendor, data_url_len, gpt_json_edit_size, gpt_size, parse_ratio,
    shutdown_overdue, shutdown_within,
};
pub use pricing::READ_MAX_SIDE_PX;
pub use pricing::{PriceTable, PricingOverride, round_micro};
pub use readback::StringCheck;
pub use reader::ReaderModel;
pub use reason::Reason;
pub use request::{
    AssetRecord, Exchange, ImageEdit, ImageRequest, ModelTurn, ProofText, ReadRequest,
    ReferenceImage, RetrySettings, Transcript, TurnPart, Usage,
};
pub use state::{
    AttemptOutcome, BatchState, CompositeState, FallbackTrigger, JobState, ProviderKind, RunOutcome,
};

/// Milliseconds since the Unix epoch: the one clock every stored time uses.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
