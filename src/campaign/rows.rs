//! The rows CSV: one row per message, a stable `id`, copy columns with
//! per-locale overrides (`headline.de-DE`) and free columns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use crate::domain::{InputErrors, InputProblem, Locale, RowId};

/// What a CSV column is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    /// The `id` column.
    Id,
    /// A base column (`headline`): copy or a free column.
    Base(String),
    /// A per-locale override (`headline.de-DE`) of a base name.
    Override {
        /// The base column name.
        base: String,
        /// Canonical locale tag of the override.
        locale: String,
    },
}

/// One data row.
#[derive(Debug, Clone)]
pub struct Row {
    /// The id.
    pub id: RowId,
    /// 1-based line in the CSV where the record starts.
    pub line: u64,
    /// Cells, by column index.
    pub cells: Vec<String>,
}

/// The parsed CSV.
#[derive(Debug, Clone)]
pub struct Rows {
    /// The file.
    pub path: std::path::PathBuf,
    /// Hex SHA-256 of the file as read.
    pub file_sha256: String,
    /// Header names as written.
    pub headers: Vec<String>,
    /// Column kinds, by index.
    pub kinds: Vec<ColumnKind>,
    /// Data rows in file order.
    pub rows: Vec<Row>,
}

/// How one column resolved for one locale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The value.
    pub value: String,
    /// The tag whose override supplied it, or `None` for the base column.
    pub from_locale: Option<String>,
}

impl Rows {
    /// Names of localized copy columns (bases that have at least one
    /// override), in header order. These are what a proof image shows.
    pub fn copy_columns(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for k in &self.kinds {
            let name = match k {
                ColumnKind::Override { base, .. } => base,
                ColumnKind::Base(b) if self.has_override(b) => b,
                _ => continue,
            };
            if !seen.contains(name) {
                seen.push(name.clone());
            }
        }
        seen
    }

    fn has_override(&self, base: &str) -> bool {
        self.kinds
            .iter()
            .any(|k| matches!(k, ColumnKind::Override { base: b, .. } if b == base))
    }

    /// Resolve every column of `row` for `locale` along its fallback chain:
    /// exact tag, then its CLDR parents, then the base column. Empty cells do
    /// not count as values, so they fall through to the next candidate; a
    /// column with no value at all is left out (strict templates then name it).
    pub fn resolve(&self, row: &Row, locale: &Locale) -> BTreeMap<String, Resolved> {
        let chain = locale.fallback_chain();
        let mut overrides: HashMap<(&str, &str), &str> = HashMap::new();
        let mut bases: Vec<(&str, Option<&str>)> = Vec::new();
        for (i, k) in self.kinds.iter().enumerate() {
            let cell = row.cells.get(i).map(String::as_str).unwrap_or("");
            match k {
                ColumnKind::Id => {}
                ColumnKind::Base(b) => bases.push((b, Some(cell))),
                ColumnKind::Override { base, locale } => {
                    if !bases.iter().any(|(n, _)| n == base) {
                        bases.push((base, None));
                    }
                    overrides.insert((base.as_str(), locale.as_str()), cell);
                }
            }
        }
        let mut out = BTreeMap::new();
        out.insert(
            "id".to_string(),
            Resolved {
                value: row.id.to_string(),
                from_locale: None,
            },
        );
        for (base, base_cell) in bases {
            let from_override = chain.iter().find_map(|tag| {
                overrides
                    .get(&(base, tag.as_str()))
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| Resolved {
                        value: (*v).to_string(),
                        from_locale: Some(tag.clone()),
                    })
            });
            let resolved = from_override.or_else(|| {
                base_cell
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| Resolved {
                        value: v.to_string(),
                        from_locale: None,
                    })
            });
            if let Some(r) = resolved {
                out.insert(base.to_string(), r);
            }
        }
        out
    }
}

/// Read the CSV. `None` when it cannot be used; problems go to `errors`.
pub(super) fn load(path: &Path, errors: &mut InputErrors) -> Option<Rows> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            errors.push(InputProblem::file(
                path,
                format!("cannot read rows file: {e}"),
            ));
            return None;
        }
    };
    let file_sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    // Check the encoding up front so the error names the exact spot rather
    // than the record the CSV reader happened to be in.
    if let Err(e) = std::str::from_utf8(body) {
        let good = &body[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let col = String::from_utf8_lossy(&good[line_start..]).chars().count() as u64 + 1;
        errors.push(InputProblem::at(
            path,
            line,
            Some(col),
            format!(
                "not valid UTF-8 (byte 0x{:02X}); save the file as UTF-8",
                body[e.valid_up_to()]
            ),
        ));
        return None;
    }

    // Control characters (other than tab, CR and LF) are invisible in a
    // spreadsheet and would be sent to the provider as they are.
    if let Ok(text) = std::str::from_utf8(body) {
        let mut found = false;
        for (n, line) in text.split('\n').enumerate() {
            for (col, c) in line.chars().enumerate() {
                if (c.is_control() && !matches!(c, '\t' | '\r') && (c as u32) < 0x80)
                    || c == '\u{7f}'
                {
                    errors.push(InputProblem::at(
                        path,
                        n as u64 + 1,
                        Some(col as u64 + 1),
                        format!(
                            "control character U+{:04X} in the rows file; remove it",
                            c as u32
                        ),
                    ));
                    found = true;
                }
            }
        }
        if found {
            return None;
        }
    }
    let quotes_ok = std::str::from_utf8(body).is_ok_and(|text| check_quotes(path, text, errors));

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
        Err(e) => {
            errors.push(csv_problem(path, &e));
            return None;
        }
    };
    if headers.iter().all(String::is_empty) {
        errors.push(InputProblem::at(path, 1, None, "the header row is empty"));
        return None;
    }

    let mut kinds = Vec::with_capacity(headers.len());
    let mut header_errors = false;
    let mut seen = HashSet::new();
    for (i, h) in headers.iter().enumerate() {
        let col = Some(i as u64 + 1);
        if h.is_empty() {
            errors.push(InputProblem::at(
                path,
                1,
                col,
                format!("column {} has an empty header", i + 1),
            ));
            header_errors = true;
            kinds.push(ColumnKind::Base(String::new()));
            continue;
        }
        let kind = if h == "id" {
            ColumnKind::Id
        } else if let Some((base, tag)) = h.split_once('.') {
            match Locale::parse(tag) {
                Ok(l) => ColumnKind::Override {
                    base: base.to_string(),
                    locale: l.tag().to_string(),
                },
                Err(e) => {
                    errors.push(InputProblem::at(
                        path,
                        1,
                        col,
                        format!("column `{h}`: the part after the dot must be a locale tag: {e}"),
                    ));
                    header_errors = true;
                    ColumnKind::Base(h.clone())
                }
            }
        } else {
            ColumnKind::Base(h.clone())
        };
        let canonical = match &kind {
            ColumnKind::Id => "id".to_string(),
            ColumnKind::Base(b) => b.clone(),
            ColumnKind::Override { base, locale } => format!("{base}.{locale}"),
        };
        if !seen.insert(canonical.clone()) {
            errors.push(InputProblem::at(
                path,
                1,
                col,
                format!("column `{canonical}` appears twice"),
            ));
            header_errors = true;
        }
        kinds.push(kind);
    }
    let Some(id_idx) = kinds.iter().position(|k| *k == ColumnKind::Id) else {
        errors.push(InputProblem::at(
            path,
            1,
            None,
            "the header has no `id` column",
        ));
        return None;
    };

    let mut rows = Vec::new();
    let mut ids: HashMap<String, u64> = HashMap::new();
    // Ids become file names, and most file systems, DAMs and bucket sync
    // tools fold case: `Ridge` and `ridge` would overwrite each other.
    let mut folded: HashMap<String, (String, u64)> = HashMap::new();
    let mut ok = !header_errors;
    for rec in reader.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(csv_problem(path, &e));
                ok = false;
                // A ragged or badly quoted record poisons the reader's view of
                // what follows less often than not; keep going for more errors.
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let raw_id = rec.get(id_idx).unwrap_or("").trim();
        match RowId::parse(raw_id) {
            Ok(id) => {
                if let Some(first) = ids.insert(raw_id.to_string(), line) {
                    errors.push(InputProblem::at(
                        path,
                        line,
                        Some(id_idx as u64 + 1),
                        format!("duplicate row id `{raw_id}` (first used on line {first})"),
                    ));
                    ok = false;
                } else if let Some((other, first)) =
                    folded.insert(raw_id.to_lowercase(), (raw_id.to_string(), line))
                {
                    errors.push(InputProblem::at(
                        path,
                        line,
                        Some(id_idx as u64 + 1),
                        format!(
                            "row id `{raw_id}` differs only in case from `{other}` on line {first}; they would overwrite each other's files on case-insensitive file systems"
                        ),
                    ));
                    ok = false;
                }
                rows.push(Row {
                    id,
                    line,
                    cells: rec.iter().map(str::to_string).collect(),
                });
            }
            Err(msg) => {
                errors.push(InputProblem::at(path, line, Some(id_idx as u64 + 1), msg));
                ok = false;
            }
        }
    }
    ok &= quotes_ok;
    if rows.is_empty() && ok {
        errors.push(InputProblem::file(path, "the rows file has no data rows"));
        return None;
    }
    ok.then(|| Rows {
        path: path.to_path_buf(),
        file_sha256,
        headers,
        kinds,
        rows,
    })
}

/// Find the quoting mistakes the CSV reader silently works around, at the
/// quote itself: a quote inside a quoted field that is neither doubled nor
/// followed by a separator or line end (it ends the field early and the
/// rest is read unquoted), and a quoted field still open at the end of the
/// file (it swallowed every line after its opening quote). Valid RFC 4180
/// input has neither: a quoted field may span lines and contain `""`.
fn check_quotes(path: &Path, text: &str, errors: &mut InputErrors) -> bool {
    let mut ok = true;
    let (mut line, mut col) = (1u64, 0u64);
    let mut field_start = true;
    // Where the quoted field being read opened.
    let mut open: Option<(u64, u64)> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        col += 1;
        if let Some((open_line, open_col)) = open {
            match c {
                '"' => match chars.peek() {
                    Some('"') => {
                        chars.next();
                        col += 1;
                    }
                    None | Some(',' | '\r' | '\n') => open = None,
                    Some(_) => {
                        errors.push(InputProblem::at(
                            path,
                            line,
                            Some(col),
                            format!(
                                "a quote inside a quoted field must be doubled (\"\"); this one ends the field opened at line {open_line}, column {open_col} early"
                            ),
                        ));
                        ok = false;
                        open = None;
                        field_start = false;
                    }
                },
                '\n' => {
                    line += 1;
                    col = 0;
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' if field_start => {
                open = Some((line, col));
                field_start = false;
            }
            ',' | '\r' => field_start = true,
            '\n' => {
                line += 1;
                col = 0;
                field_start = true;
            }
            _ => field_start = false,
        }
    }
    if let Some((open_line, open_col)) = open {
        errors.push(InputProblem::at(
            path,
            open_line,
            Some(open_col),
            "the quoted field opened here is never closed, so it runs to the end of the file; add the closing quote (and double any quote inside the field)",
        ));
        ok = false;
    }
    ok
}

fn csv_problem(path: &Path, e: &csv::Error) -> InputProblem {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => {
            let line = pos.as_ref().map_or(0, |p| p.line());
            let hint = if *len < *expected_len {
                " (an unterminated quote or a missing separator?)"
            } else {
                " (an unquoted comma in a value?)"
            };
            InputProblem::at(
                path,
                line,
                None,
                format!("row has {len} fields but the header has {expected_len}{hint}"),
            )
        }
        csv::ErrorKind::Utf8 { pos, err } => {
            let line = pos.as_ref().map_or(0, |p| p.line());
            InputProblem::at(path, line, Some(err.field() as u64 + 1), "not valid UTF-8")
        }
        _ => {
            let line = e.position().map_or(0, |p| p.line());
            InputProblem::at(path, line, None, e.to_string())
        }
    }
}
