//! Text typesetting (in progress).
