//! Integration tests: the real `adloc` binary and library against real
//! files, a real SQLite state file (or a private PostgreSQL server, see
//! `common/pg.rs`) and (for Gemini) the in-crate emulator
//! over loopback HTTP. One test binary, so the suite links once.

mod architecture;
mod batch;
mod brand;
mod bucket;
mod common;
mod compare;
mod crash;
mod foundation;
mod images;
mod lifecycle;
mod localization;
mod notify;
mod openai;
mod pacing;
mod placements;
mod postgres;
mod provenance;
mod qa;
mod realtime;
mod review;
mod review_serve;
mod shutdowns;
mod vocabulary;
mod workers;
