//! adloc: turns ad campaigns into localized creative images.
//!
//! Data flows one way, and comes back only through the store:
//! `domain` (vocabulary) → `imaging` / `prompt` → `campaign` (load and
//! validate) → `expand` (the pure plan) → `store` (all state, every SQL
//! statement) → `provider` (local, Gemini) → `assets` (the asset tree) →
//! `derive` (renditions, overlay, contact sheets) → `manifest` (pure, from
//! the store) → `review` (the review page: pure HTML from the manifest and
//! the decisions, plus its thumbnails) and `notify` (the signed webhook
//! summary) → `run` (orchestration) → `cli`. A module imports only modules
//! before it in that list; `docs/architecture.md` has the picture and
//! `tests/it/architecture.rs` keeps the rule true.
//!
//! The public surface is small: the command line ([`Cli`], [`main_with`]),
//! running a campaign from code ([`run`], [`RunOptions`]), the error and exit
//! code types, and a few pieces the benchmarks time directly.

mod assets;
mod campaign;
mod cli;
mod derive;
mod domain;
mod expand;
mod imaging;
mod manifest;
mod notify;
mod prompt;
mod provider;
mod review;
mod run;
mod store;

pub use cli::{Cli, main_with};
pub use domain::{Error, ExitCode, Reason, Result};
pub use run::{
    Enqueued, Rebuilt, RunOptions, RunSummary, WorkerOptions, WorkerSummary, enqueue,
    load_and_expand, rebuild_manifest, run, work,
};
pub use store::Store;

/// Pieces the benchmarks time on their own (not a stable API).
#[doc(hidden)]
pub mod bench {
    pub use crate::domain::READ_MAX_SIDE_PX;
    pub use crate::domain::placement::{BUILT_IN, PlacementSpec, built_in};
    pub use crate::imaging::text::Align;
    pub use crate::imaging::{
        Fit, FracBox, Layer, LayerDraw, OutputFormat, RenditionSpec, Step, TextBoxSpec, VAlign,
        check_picture, check_placement, compose_bytes, compose_steps_bytes, cover_crop,
        decode_master, encode_placement, for_reading, render, render_pixels,
    };
    pub use crate::provider::gemini::{parse_results_line, stream_results_from_reader};
    pub use crate::store::StateLocation;

    /// The provenance step, for `benches/provenance.rs`.
    pub mod provenance {
        pub use crate::assets::provenance::{
            Action, Signer, Step, TimeStampAuthority, finalize_with,
        };
        pub use crate::assets::write_atomic;
        pub use crate::imaging::encode_jpeg;
    }
}
