//! HTTP-level tests (filled in below).
