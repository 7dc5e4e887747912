//! Reviewer decisions as they arrive: from the command line (`adloc approve
//! CAMPAIGN SELECTOR…`) or a spreadsheet (`adloc review import CAMPAIGN
//! decisions.csv`), resolved against the manifest's assets. Pure: text and
//! the manifest in, the decisions to record out, or every problem found
//! (file:line for the spreadsheet), so a bad file applies nothing.

use std::path::Path;

use crate::domain::{AssetSelector, Decision, DecisionFacts, InputErrors, InputProblem};
use crate::manifest::Manifest;
use crate::store::NewDecision;

/// One requested decision over a selector.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which assets.
    pub selector: AssetSelector,
    /// The decision, reviewer and note.
    pub facts: DecisionFacts,
    /// Where it came from (`decisions.csv` line), for error messages.
    pub origin: Option<(std::path::PathBuf, u64)>,
}

/// The CSV columns of a decisions file, in any order.
pub const CSV_COLUMNS: [&str; 4] = ["asset", "decision", "note", "by"];

/// A rejection says why; an approval may.
fn check_note(decision: Decision, note: &Option<String>) -> Result<(), String> {
    if decision == Decision::Reject && note.is_none() {
        return Err("a rejection needs a note saying what to fix".into());
    }
    Ok(())
}

/// Decisions from the command line: one decision over every selector.
pub fn from_args(
    selectors: &[String],
    decision: Decision,
    by: &str,
    note: Option<&str>,
) -> Result<Vec<Request>, String> {
    let note = note
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    check_note(decision, &note)?;
    if by.trim().is_empty() {
        return Err("--by must name the reviewer".into());
    }
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for s in selectors {
        match AssetSelector::parse(s) {
            Ok(selector) => out.push(Request {
                selector,
                facts: DecisionFacts {
                    decision,
                    by: by.trim().to_string(),
                    note: note.clone(),
                },
                origin: None,
            }),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("\n"))
    }
}

/// Parse a decisions spreadsheet (CSV with a header naming `asset`,
/// `decision`, `note` and `by`; `note` and `by` may be left out). A row
/// without `by` takes `default_by`. Returns the good rows and a problem
/// for every bad one at its line: the caller resolves the good rows too
/// (a selector naming nothing is a problem as well) and applies nothing
/// unless there is no problem at all, so one pass shows every bad line.
pub fn parse_csv(path: &Path, text: &str, default_by: &str) -> (Vec<Request>, InputErrors) {
    let mut errors = InputErrors::default();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(InputProblem::at(
                path,
                1,
                None,
                format!("unreadable header: {e}"),
            ));
            return (Vec::new(), errors);
        }
    };
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let (Some(asset_i), Some(decision_i)) = (col("asset"), col("decision")) else {
        errors.push(InputProblem::at(
            path,
            1,
            None,
            format!(
                "the header must name the columns {} (found: {})",
                CSV_COLUMNS.join(","),
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        ));
        return (Vec::new(), errors);
    };
    for h in headers.iter() {
        let h = h.trim_start_matches('\u{feff}');
        if !CSV_COLUMNS.iter().any(|c| c.eq_ignore_ascii_case(h)) {
            errors.push(InputProblem::at(
                path,
                1,
                None,
                format!("unknown column `{h}` (expected {})", CSV_COLUMNS.join(",")),
            ));
        }
    }
    let (note_i, by_i) = (col("note"), col("by"));
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(InputProblem::at(path, line, None, e.to_string()));
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let get = |i: Option<usize>| {
            i.and_then(|i| rec.get(i))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let mut bad = |msg: String| errors.push(InputProblem::at(path, line, None, msg));
        let selector = match get(Some(asset_i)).as_deref().map(AssetSelector::parse) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                bad(e);
                None
            }
            None => {
                bad("the `asset` column is empty".into());
                None
            }
        };
        let decision = match get(Some(decision_i)).map(|d| d.parse::<Decision>()) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                bad(e);
                None
            }
            None => {
                bad("the `decision` column is empty (approve or reject)".into());
                None
            }
        };
        let note = get(note_i);
        let decision = match decision.map(|d| check_note(d, &note).map(|()| d)) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                bad(e);
                None
            }
            None => None,
        };
        if let (Some(selector), Some(decision)) = (selector, decision) {
            out.push(Request {
                selector,
                facts: DecisionFacts {
                    decision,
                    by: get(by_i).unwrap_or_else(|| default_by.to_string()),
                    note,
                },
                origin: Some((path.to_path_buf(), line)),
            });
        }
    }
    (out, errors)
}

/// Resolve requests against the manifest's current assets, in order (a
/// later request about the same asset wins). A selector that names no
/// asset is an error, reported with its origin after the `prior` problems
/// (bad rows of the same file); nothing is returned unless there are none.
pub fn resolve(
    manifest: &Manifest,
    requests: &[Request],
    prior: InputErrors,
) -> Result<Vec<NewDecision>, InputErrors> {
    let mut errors = prior;
    let mut out = Vec::new();
    for r in requests {
        let before = out.len();
        for a in manifest
            .assets
            .iter()
            .filter(|a| r.selector.matches(&a.path))
        {
            out.push(NewDecision {
                asset_path: a.path.clone(),
                sha256: a.sha256.clone(),
                request_sha256: a.request_sha256.clone(),
                facts: r.facts.clone(),
            });
        }
        if out.len() == before {
            let msg = format!(
                "`{}` names no asset of campaign {} (selectors are asset paths as in manifest.json, like `{}`, or globs over them, like `*/{}`)",
                r.selector,
                manifest.campaign,
                manifest.assets.first().map_or("de-DE/hero/row-id", |a| {
                    crate::domain::strip_extension(&a.path)
                }),
                manifest.assets.first().map_or("hero/row-id", |a| {
                    let p = crate::domain::strip_extension(&a.path);
                    p.split_once('/').map_or(p, |(_, rest)| rest)
                }),
            );
            errors.push(match &r.origin {
                Some((file, line)) => InputProblem::at(file, *line, None, msg),
                None => InputProblem::file("command line", msg),
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        // In file order, whichever check found the problem.
        errors.0.sort_by_key(|p| p.line);
        Err(errors)
    }
}
