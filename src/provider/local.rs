//! Local proof renderer (in progress).
