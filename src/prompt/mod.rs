//! The Handlebars registry for prompt templates: strict mode (a missing
//! value is an error, never an empty string), no HTML escaping (prompts are
//! not HTML), and the locale-aware helpers.

pub(crate) mod helpers;

use std::path::Path;

use handlebars::Handlebars;
use serde_json::Value;

use crate::domain::{InputErrors, InputProblem};

/// One template to compile: its registry name (the variant), file and text.
#[derive(Debug, Clone, Copy)]
pub struct Template<'a> {
    /// Registry name (the variant's name).
    pub name: &'a str,
    /// The file it came from, for error messages.
    pub path: &'a Path,
    /// The template text.
    pub source: &'a str,
}

/// A registry with every variant's template compiled.
pub struct Prompts {
    hb: Handlebars<'static>,
}

/// Why a render failed, located in the template.
#[derive(Debug, Clone)]
pub struct RenderFailure {
    /// 1-based line in the template, when Handlebars knows it.
    pub line: Option<u64>,
    /// 1-based column.
    pub column: Option<u64>,
    /// Handlebars' description.
    pub message: String,
    /// What kind of failure, for callers that explain it further.
    pub kind: FailureKind,
}

/// What made a render fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// A value the template (or a helper) needs is not in the context:
    /// its path, such as `row.headline` or `locale.tag`.
    MissingValue(String),
    /// A locale helper was called with no locale in the context.
    NoLocale,
    /// Anything else (bad helper argument, …).
    Other,
}

fn registry() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    helpers::register(&mut hb);
    hb
}

impl Prompts {
    /// Compile `templates`; every syntax error is reported with file and line.
    pub fn new<'a>(
        templates: impl IntoIterator<Item = Template<'a>>,
    ) -> Result<Prompts, InputErrors> {
        let mut errors = InputErrors::default();
        let mut hb = registry();
        for v in templates {
            if let Err(e) = hb.register_template_string(v.name, v.source) {
                let pos = e.pos();
                errors.push(InputProblem {
                    file: v.path.to_path_buf(),
                    line: pos.map(|(l, _)| l as u64),
                    column: pos.map(|(_, c)| c as u64),
                    message: format!("template syntax error: {}", e.reason()),
                });
            }
        }
        if errors.is_empty() {
            Ok(Prompts { hb })
        } else {
            Err(errors)
        }
    }

    /// Render a variant's template with `context`. Whitespace at the ends is
    /// trimmed and runs of blank lines collapsed, so template layout does not
    /// leak into the request hash.
    pub fn render(&self, variant: &str, context: &Value) -> Result<String, RenderFailure> {
        self.hb
            .render(variant, context)
            .map(|s| normalize(&s))
            .map_err(|e| RenderFailure {
                line: e.line_no.map(|l| l as u64),
                column: e.column_no.map(|c| c as u64),
                message: describe(&e),
                kind: kind(&e),
            })
    }
}

fn describe(e: &handlebars::RenderError) -> String {
    match e.reason() {
        handlebars::RenderErrorReason::MissingVariable(Some(path)) => {
            format!("missing value `{path}`")
        }
        handlebars::RenderErrorReason::NestedError(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

fn kind(e: &handlebars::RenderError) -> FailureKind {
    match e.reason() {
        handlebars::RenderErrorReason::MissingVariable(Some(path)) => {
            FailureKind::MissingValue(path.clone())
        }
        handlebars::RenderErrorReason::NestedError(inner) => {
            match inner.downcast_ref::<helpers::HelperError>() {
                Some(helpers::HelperError::NoLocale { .. }) => FailureKind::NoLocale,
                Some(helpers::HelperError::MissingValue { path, .. }) => {
                    FailureKind::MissingValue(path.clone())
                }
                _ => FailureKind::Other,
            }
        }
        _ => FailureKind::Other,
    }
}

fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank_run = 0;
    for line in s.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_string()
}
