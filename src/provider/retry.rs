//! Retry policy (in progress).
