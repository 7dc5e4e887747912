//! Gemini-compatible emulator (in progress).
