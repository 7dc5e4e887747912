//! The real Gemini client (shared/protocols/gemini.md): realtime
//! `generateContent`, the Files API resumable upload and download, and the
//! Batch API, behind the [`Provider`](crate::provider::Provider) and
//! [`BatchApi`](crate::provider::BatchApi) traits.
//!
//! Layout: [`wire`] holds the serde types; [`classify`] is the single
//! classifier every failure goes through; `client` does realtime calls,
//! `files` uploads and downloads, `batch` implements the batch lifecycle;
//! [`config`] holds the knobs.
//!
//! The API key travels only in the `x-goog-api-key` header (never in a URL,
//! a log line, an error or a `Debug` string).

mod batch;
pub mod classify;
mod client;
pub mod config;
mod files;
pub mod read;
mod response;
pub mod wire;

pub use batch::{parse_results_line, stream_results_from_reader};
pub use client::GeminiProvider;
pub use config::GeminiConfig;

#[cfg(test)]
mod http_tests;
