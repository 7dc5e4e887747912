//! Locale-aware Handlebars helpers (work in progress).

/// Register every helper on the registry.
pub fn register(_hb: &mut handlebars::Handlebars<'_>) {}
