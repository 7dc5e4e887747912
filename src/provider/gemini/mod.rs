//! Gemini provider (in progress).
