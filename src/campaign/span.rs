//! The one way a TOML span becomes a `file:line:col` problem.

use std::ops::Range;
use std::path::Path;

use crate::domain::InputProblem;

/// 1-based line and column (in characters) of a byte offset in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (u64, u64) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count() as u64
        + 1;
    (line, col)
}

/// A problem located at the start of `span` in `file`, whose text is `text`.
pub(crate) fn at(file: &Path, text: &str, span: Range<usize>, message: String) -> InputProblem {
    let (line, col) = line_col(text, span.start);
    InputProblem::at(file, line, Some(col), message)
}
