//! Locale-aware template helpers (being replaced by the ICU4X-backed set).

/// Register every helper on the registry.
pub fn register(_hb: &mut handlebars::Handlebars<'_>) {}
