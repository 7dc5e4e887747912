//! The Handlebars registry for prompt templates: strict mode (a missing
//! value is an error, never an empty string), no HTML escaping (prompts are
//! not HTML), and the locale-aware helpers.

use handlebars::Handlebars;
use serde_json::Value;

use crate::campaign::Variant;
use crate::error::{InputErrors, InputProblem};

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
}

fn registry() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    crate::prompt_helpers::register(&mut hb);
    hb
}

/// Compile each template once to report syntax errors with file and line.
pub(crate) fn check_syntax(variants: &[Variant], errors: &mut InputErrors) {
    if let Err(e) = Prompts::new(variants) {
        errors.0.extend(e.0);
    }
}

impl Prompts {
    /// Compile the templates of `variants`.
    pub fn new(variants: &[Variant]) -> Result<Prompts, InputErrors> {
        let mut errors = InputErrors::default();
        let mut hb = registry();
        for v in variants {
            if let Err(e) = hb.register_template_string(&v.name, &v.template_source) {
                let pos = e.pos();
                errors.push(InputProblem {
                    file: v.template_path.clone(),
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
            })
    }
}

fn describe(e: &handlebars::RenderError) -> String {
    match e.reason() {
        handlebars::RenderErrorReason::MissingVariable(Some(path)) => {
            format!("missing value `{path}`")
        }
        other => other.to_string(),
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
