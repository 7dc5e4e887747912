//! The real OpenAI GPT Image client (shared/protocols/openai.md): realtime
//! `images/generations` and `images/edits`, the Files API upload and
//! download, and the Batch API, behind the
//! [`Provider`](crate::provider::Provider) and
//! [`BatchApi`](crate::provider::BatchApi) traits.
//!
//! Layout: [`wire`] holds the serde types; [`classify`] is the single
//! classifier every failure goes through; `response` turns an
//! `ImagesResponse` into an image; `client` does realtime calls and the
//! HTTP plumbing; `batch` implements the batch lifecycle; [`config`] holds
//! the knobs.
//!
//! The API key travels only in the `Authorization: Bearer` header (marked
//! sensitive), never in a URL, a log line, an error or a `Debug` string;
//! every error leaving the client is scrubbed of the configured key.

// The CLI does not construct the OpenAI provider yet; until it does, the
// library build sees these items as unused.

mod batch;
pub mod classify;
mod client;
pub mod config;
mod response;
pub mod wire;

pub use client::OpenAiProvider;
pub use config::OpenAiConfig;
pub use response::fit_to_frame;

#[cfg(test)]
mod http_tests;
