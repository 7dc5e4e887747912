//! adloc: turns ad campaigns into localized creative images.
//!
//! Data flows down this list and comes back only through the queue:
//! [`campaign`] (load and validate) → [`expand`] (jobs, pure) → [`queue`]
//! (SQLite, the only shared state) → [`provider`] (local, Gemini) →
//! [`assets`] (validate, atomic write) → [`manifest`] (derived from the queue).
//! [`cost`] prices jobs; [`run`] orchestrates; [`cli`] is the command line.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod assets;
pub mod campaign;
pub mod cli;
pub mod contact_sheet;
pub mod cost;
pub mod emulator;
pub mod error;
pub mod expand;
pub mod locale;
pub mod manifest;
pub mod model;
pub mod overlay;
pub mod prompt;
pub mod prompt_helpers;
pub mod provider;
pub mod queue;
pub mod references;
pub mod renditions;
pub mod run;
pub mod text;

pub use error::{Error, ExitCode, Result};
