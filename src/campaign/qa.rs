//! Copy QA settings: `[qa]` (campaign defaults) and `[variants.qa]` (any
//! key overrides the default for that variant), validated into
//! [`QaSettings`] with the line and column of every bad value.
//!
//! Decisions:
//! - QA is off unless `[qa]` or a variant's `[variants.qa]` is present.
//! - It applies to model-text variants only. Overlay composites are
//!   typeset by adloc and exact by construction: `[qa]` skips them, and a
//!   `[variants.qa]` on one is an error rather than a silent no-op.
//! - `reader` has no default. The cheapest reader (3.1 Flash-Lite) has an
//!   announced shutdown (2027-05-07), so a default would change under
//!   campaigns that never named it, and the reader sets QA's cost.
//! - A model-text variant with QA may declare `[[variants.text_boxes]]`:
//!   they are the layout QA falls back to (`on_mismatch = "overlay"`, or
//!   after `max_regenerations`), kept in [`QaSettings::fallback_boxes`].

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::rows::{ColumnKind, Rows};
use super::span::{at, line_col};
use super::text_boxes::{Num, TextMode};
use crate::domain::{InputErrors, InputProblem, ReaderModel};
use crate::imaging::TextBoxSpec;

/// Default for `on_mismatch`.
pub const DEFAULT_ON_MISMATCH: OnMismatch = OnMismatch::Regenerate;
/// Default for `max_regenerations`.
pub const DEFAULT_MAX_REGENERATIONS: u32 = 2;
/// Default for `tolerance` (exact).
pub const DEFAULT_TOLERANCE: f64 = 0.0;
/// The largest `max_regenerations` accepted (each one is a paid image).
pub const MAX_REGENERATIONS: u32 = 10;

/// What happens to an image whose copy does not read back as expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnMismatch {
    /// Generate it again, up to `max_regenerations` times; then overlay if
    /// the variant has text boxes, else fail.
    Regenerate,
    /// Typeset the copy with the variant's text boxes instead.
    Overlay,
    /// Fail the job.
    Fail,
    /// Keep the image and record the mismatch.
    Keep,
}

impl OnMismatch {
    /// The spelling in campaign.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            OnMismatch::Regenerate => "regenerate",
            OnMismatch::Overlay => "overlay",
            OnMismatch::Fail => "fail",
            OnMismatch::Keep => "keep",
        }
    }
}

impl std::str::FromStr for OnMismatch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "regenerate" => Ok(OnMismatch::Regenerate),
            "overlay" => Ok(OnMismatch::Overlay),
            "fail" => Ok(OnMismatch::Fail),
            "keep" => Ok(OnMismatch::Keep),
            other => Err(format!(
                "unknown on_mismatch `{other}` (expected regenerate, overlay, fail or keep)"
            )),
        }
    }
}

/// A variant's resolved copy-QA settings.
#[derive(Debug, Clone, PartialEq)]
pub struct QaSettings {
    /// The text model that transcribes the image.
    pub reader: ReaderModel,
    /// Base copy columns that must appear in the image (resolved per
    /// locale like the copy: `headline.de-DE` for de-DE).
    pub expect: Vec<String>,
    /// What a mismatch leads to.
    pub on_mismatch: OnMismatch,
    /// Regenerations before falling back (overlay with text boxes, else fail).
    pub max_regenerations: u32,
    /// Allowed character error rate per string, 0..=1 (0 = exact).
    pub tolerance: f64,
    /// Also guard every other string the rendered prompt quotes against
    /// near misses (`quoted`, default on).
    pub quoted: bool,
    /// The variant's `[[variants.text_boxes]]`: where the copy is typeset
    /// when QA falls back to overlay. Empty: no overlay fallback.
    pub fallback_boxes: Vec<TextBoxSpec>,
}

impl QaSettings {
    /// Images one job may cost at worst: the first, every regeneration,
    /// and the copy-free art of the overlay fallback.
    pub fn max_images(&self) -> u32 {
        let fallback = u32::from(!self.fallback_boxes.is_empty());
        match self.on_mismatch {
            OnMismatch::Regenerate => 1 + self.max_regenerations + fallback,
            OnMismatch::Overlay => 1 + fallback,
            OnMismatch::Fail | OnMismatch::Keep => 1,
        }
    }
}

/// `[qa]` or `[variants.qa]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQa {
    #[serde(default)]
    reader: Option<Spanned<String>>,
    #[serde(default)]
    expect: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    on_mismatch: Option<Spanned<String>>,
    #[serde(default)]
    max_regenerations: Option<Spanned<i64>>,
    #[serde(default)]
    tolerance: Option<Spanned<Num>>,
    #[serde(default)]
    quoted: Option<bool>,
}

/// One key of a QA table: `None` when absent, `Some(None)` when present
/// but invalid (its problem is already in the errors).
type Key<T> = Option<Option<T>>;

/// An `expect` entry with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExpectAt {
    pub column: String,
    pub line: u64,
    pub col: u64,
}

/// One QA table, each key validated on its own.
#[derive(Debug, Clone)]
pub(crate) struct QaKeys {
    span: Range<usize>,
    reader: Key<ReaderModel>,
    expect: Key<Vec<ExpectAt>>,
    on_mismatch: Key<(OnMismatch, Range<usize>)>,
    max_regenerations: Key<u32>,
    tolerance: Key<f64>,
    quoted: Key<bool>,
}

/// A variant's QA settings with the location of each `expect` entry (for
/// the column check once the rows are read).
#[derive(Debug, Clone)]
pub(crate) struct ResolvedQa {
    /// `None` when a key is missing or invalid (its problem is in the errors).
    pub settings: Option<QaSettings>,
    pub expect_at: Vec<ExpectAt>,
}

/// Validate one `[qa]` / `[variants.qa]` table. `table` names it in messages.
pub(crate) fn parse_keys(
    path: &Path,
    src: &str,
    table: &str,
    raw: Spanned<RawQa>,
    errors: &mut InputErrors,
) -> QaKeys {
    let at = |span: Range<usize>, msg: String| at(path, src, span, msg);
    let span = raw.span();
    let raw = raw.into_inner();
    let reader = raw
        .reader
        .map(|r| match r.get_ref().parse::<ReaderModel>() {
            Ok(m) => Some(m),
            Err(e) => {
                errors.push(at(r.span(), format!("{table} reader: {e}")));
                None
            }
        });
    let expect = raw.expect.map(|list| {
        let mut ok = true;
        let mut out: Vec<ExpectAt> = Vec::new();
        if list.get_ref().is_empty() {
            ok = false;
            errors.push(at(
                list.span(),
                format!("{table} expect must list at least one copy column (such as \"headline\")"),
            ));
        }
        for c in list.into_inner() {
            let column = c.get_ref().trim().to_string();
            if column.is_empty() || column.contains('.') || column == "id" {
                ok = false;
                errors.push(at(
                    c.span(),
                    format!(
                        "{table} expect: `{column}` must name a base copy column such as `headline` (per-locale columns like `headline.de-DE` are picked automatically)"
                    ),
                ));
            } else if out.iter().any(|e| e.column == column) {
                ok = false;
                errors.push(at(
                    c.span(),
                    format!("{table} expect lists column `{column}` twice"),
                ));
            } else {
                let (line, col) = line_col(src, c.span().start);
                out.push(ExpectAt { column, line, col });
            }
        }
        ok.then_some(out)
    });
    let on_mismatch = raw
        .on_mismatch
        .map(|m| match m.get_ref().parse::<OnMismatch>() {
            Ok(v) => Some((v, m.span())),
            Err(e) => {
                errors.push(at(m.span(), format!("{table} {e}")));
                None
            }
        });
    let max_regenerations = raw.max_regenerations.map(|n| {
        let v = *n.get_ref();
        match u32::try_from(v) {
            Ok(v) if v <= MAX_REGENERATIONS => Some(v),
            _ => {
                errors.push(at(
                    n.span(),
                    format!(
                        "{table} max_regenerations = {v} must be a whole number from 0 to {MAX_REGENERATIONS} (each regeneration is a paid image)"
                    ),
                ));
                None
            }
        }
    });
    let tolerance = raw.tolerance.map(|t| {
        let v = t.get_ref().get();
        if v.is_finite() && (0.0..=1.0).contains(&v) {
            Some(v)
        } else {
            errors.push(at(
                t.span(),
                format!(
                    "{table} tolerance = {v} must be a character error rate between 0 (exact) and 1"
                ),
            ));
            None
        }
    });
    QaKeys {
        span,
        reader,
        expect,
        on_mismatch,
        max_regenerations,
        tolerance,
        quoted: raw.quoted.map(Some),
    }
}

/// Push `p` unless the same problem is already there: a campaign-wide
/// problem is found once per variant that inherits it.
fn push_once(errors: &mut InputErrors, p: InputProblem) {
    if !errors.0.contains(&p) {
        errors.push(p);
    }
}

/// The QA settings of one variant: its own `[variants.qa]` keys over the
/// campaign's `[qa]`. `None` when QA is off for it (no table applies, or it
/// is an overlay variant). The `expect` entries are kept even when another
/// key is bad, so their column check still runs in the same pass.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resolve(
    path: &Path,
    src: &str,
    variant: &str,
    campaign: Option<&QaKeys>,
    own: Option<&QaKeys>,
    text: &TextMode,
    fallback_boxes: Vec<TextBoxSpec>,
    errors: &mut InputErrors,
) -> Option<ResolvedQa> {
    let at = |span: Range<usize>, msg: String| at(path, src, span, msg);
    if text.boxes().is_some() {
        if let Some(own) = own {
            errors.push(at(
                own.span.clone(),
                format!(
                    "variant `{variant}` has text = \"overlay\": adloc typesets its copy, exact by construction, so there is nothing for [variants.qa] to check; remove it"
                ),
            ));
        }
        return None;
    }
    if campaign.is_none() && own.is_none() {
        return None;
    }
    fn pick<T: Clone>(
        own: Option<&QaKeys>,
        campaign: Option<&QaKeys>,
        key: fn(&QaKeys) -> &Key<T>,
    ) -> Key<T> {
        own.and_then(|k| key(k).clone())
            .or_else(|| campaign.and_then(|k| key(k).clone()))
    }
    let reader = pick(own, campaign, |k| &k.reader);
    let expect = pick(own, campaign, |k| &k.expect);
    let on_mismatch = pick(own, campaign, |k| &k.on_mismatch);
    let max_regenerations = pick(own, campaign, |k| &k.max_regenerations);
    let tolerance = pick(own, campaign, |k| &k.tolerance);
    let quoted = pick(own, campaign, |k| &k.quoted).flatten().unwrap_or(true);
    let missing = |key: &str, what: &str, errors: &mut InputErrors| match own {
        Some(o) => push_once(
            errors,
            at(
                o.span.clone(),
                format!(
                    "variant `{variant}`: [variants.qa] needs `{key}` ({what}); neither it nor [qa] sets one"
                ),
            ),
        ),
        None => {
            if let Some(c) = campaign {
                push_once(
                    errors,
                    at(c.span.clone(), format!("[qa] needs `{key}` ({what})")),
                );
            }
        }
    };
    let reader = match reader {
        Some(r) => r,
        None => {
            let readers: Vec<&str> = ReaderModel::ALL.iter().map(|r| r.as_str()).collect();
            missing(
                "reader",
                &format!(
                    "a Gemini text model that reads images: {}",
                    readers.join(", ")
                ),
                errors,
            );
            None
        }
    };
    let expect = match expect {
        Some(e) => e,
        None => {
            missing(
                "expect",
                "the copy columns that must appear in the image, such as [\"headline\", \"cta\"]",
                errors,
            );
            None
        }
    };
    let (on_mismatch, mismatch_span) = match on_mismatch {
        None => (Some(DEFAULT_ON_MISMATCH), None),
        Some(None) => (None, None),
        Some(Some((v, span))) => (Some(v), Some(span)),
    };
    let mut mismatch_ok = true;
    if let (Some(OnMismatch::Overlay), Some(span), true) =
        (on_mismatch, mismatch_span, fallback_boxes.is_empty())
    {
        mismatch_ok = false;
        errors.push(at(
            span,
            format!(
                "variant `{variant}`: on_mismatch = \"overlay\" needs [[variants.text_boxes]] to typeset the copy into; add them to the variant or choose regenerate, fail or keep"
            ),
        ));
    }
    let max_regenerations = max_regenerations.unwrap_or(Some(DEFAULT_MAX_REGENERATIONS));
    let tolerance = tolerance.unwrap_or(Some(DEFAULT_TOLERANCE));
    let expect_at = expect.clone().unwrap_or_default();
    let settings = match (reader, expect, on_mismatch, max_regenerations, tolerance) {
        (
            Some(reader),
            Some(expect),
            Some(on_mismatch),
            Some(max_regenerations),
            Some(tolerance),
        ) if mismatch_ok => Some(QaSettings {
            reader,
            expect: expect.into_iter().map(|e| e.column).collect(),
            on_mismatch,
            max_regenerations,
            tolerance,
            quoted,
            fallback_boxes,
        }),
        _ => None,
    };
    Some(ResolvedQa {
        settings,
        expect_at,
    })
}

/// Check that every `expect` column is one the rows CSV has (as a base
/// column or a per-locale override), at the entry's line in campaign.toml.
/// An entry inherited from `[qa]` by several variants is reported once.
pub(crate) fn check_columns<'a>(
    resolved: impl IntoIterator<Item = &'a ResolvedQa>,
    rows: &Rows,
    config_path: &Path,
    errors: &mut InputErrors,
) {
    for qa in resolved {
        for e in &qa.expect_at {
            let known = rows.kinds.iter().any(|k| match k {
                ColumnKind::Base(n) => *n == e.column,
                ColumnKind::Override { base, .. } => *base == e.column,
                ColumnKind::Id => false,
            });
            if !known {
                push_once(
                    errors,
                    InputProblem::at(
                        config_path,
                        e.line,
                        Some(e.col),
                        format!(
                            "qa expect names column `{}`, which {} does not have",
                            e.column,
                            rows.path.display()
                        ),
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::config;

    const HEAD: &str = r#"name = "qa-test"
rows = "rows.csv"
locales = ["en-US", "de-DE"]
model = "gemini-3.1-flash-image"
"#;

    fn parse(body: &str) -> (Option<config::Config>, Vec<String>) {
        let text = format!("{HEAD}{body}");
        let mut errors = InputErrors::default();
        let cfg = config::parse(Path::new("campaign.toml"), &text, &mut errors);
        (cfg, errors.0.iter().map(ToString::to_string).collect())
    }

    fn qa_of<'a>(cfg: &'a config::Config, variant: &str) -> Option<&'a QaSettings> {
        cfg.variants
            .iter()
            .find(|v| v.name == variant)
            .and_then(|v| v.qa.as_ref())
            .and_then(|q| q.settings.as_ref())
    }

    fn ok(body: &str) -> config::Config {
        let (cfg, errors) = parse(body);
        assert!(errors.is_empty(), "{errors:#?}");
        cfg.unwrap()
    }

    fn one_error(body: &str) -> String {
        let (_, errors) = parse(body);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors[0].clone()
    }

    const QA: &str = r#"
[qa]
reader = "gemini-3.1-flash-lite"
expect = ["headline", "cta"]
"#;

    const HERO: &str = r#"
[[variants]]
name = "hero"
template = "hero.hbs"
aspect_ratio = "16:9"
"#;

    #[test]
    fn qa_is_off_without_a_qa_table() {
        let cfg = ok(HERO);
        assert_eq!(qa_of(&cfg, "hero"), None);
    }

    #[test]
    fn campaign_qa_applies_to_model_text_variants_with_the_defaults() {
        let cfg = ok(&format!("{QA}{HERO}"));
        let qa = qa_of(&cfg, "hero").unwrap();
        assert_eq!(qa.reader, ReaderModel::Flash31Lite);
        assert_eq!(qa.expect, ["headline", "cta"]);
        assert_eq!(qa.on_mismatch, OnMismatch::Regenerate);
        assert_eq!(qa.max_regenerations, 2);
        assert_eq!(qa.tolerance, 0.0);
        assert!(qa.quoted, "quoted strings are guarded by default");
        assert!(qa.fallback_boxes.is_empty());
        assert_eq!(qa.max_images(), 3);
    }

    #[test]
    fn a_variant_qa_key_overrides_only_that_key_for_that_variant() {
        let cfg = ok(&format!(
            r#"{QA}{HERO}
[[variants]]
name = "story"
template = "story.hbs"
aspect_ratio = "9:16"
[variants.qa]
reader = "gemini-3.7-flash"
tolerance = 0.1
on_mismatch = "keep"
"#
        ));
        let hero = qa_of(&cfg, "hero").unwrap();
        assert_eq!(
            (hero.reader, hero.tolerance),
            (ReaderModel::Flash31Lite, 0.0)
        );
        let story = qa_of(&cfg, "story").unwrap();
        assert_eq!(story.reader, ReaderModel::Flash37);
        assert_eq!(story.tolerance, 0.1);
        assert_eq!(story.on_mismatch, OnMismatch::Keep);
        assert_eq!(story.expect, ["headline", "cta"]);
        assert_eq!(story.max_regenerations, 2);
    }

    #[test]
    fn quoted_false_turns_the_prompt_guard_off_campaign_wide_or_per_variant() {
        let cfg = ok(&format!("{QA}quoted = false\n{HERO}"));
        assert!(!qa_of(&cfg, "hero").unwrap().quoted);
        let cfg = ok(&format!("{QA}{HERO}[variants.qa]\nquoted = false\n"));
        assert!(!qa_of(&cfg, "hero").unwrap().quoted);
        let e = one_error(&format!("{QA}quoted = \"no\"\n{HERO}"));
        assert!(e.starts_with("campaign.toml:9:"), "{e}");
    }

    #[test]
    fn a_variant_qa_alone_turns_qa_on_for_that_variant_only() {
        let cfg = ok(&format!(
            r#"{HERO}
[[variants]]
name = "story"
template = "story.hbs"
aspect_ratio = "9:16"
[variants.qa]
reader = "gemini-3.5-flash-lite"
expect = ["headline"]
max_regenerations = 0
"#
        ));
        assert_eq!(qa_of(&cfg, "hero"), None);
        let story = qa_of(&cfg, "story").unwrap();
        assert_eq!(story.max_regenerations, 0);
        assert_eq!(story.max_images(), 1);
    }

    #[test]
    fn campaign_qa_skips_overlay_variants() {
        let cfg = ok(&format!(
            r#"{QA}
[[variants]]
name = "banner"
template = "banner.hbs"
aspect_ratio = "16:9"
text = "overlay"
[[variants.text_boxes]]
column = "headline"
x = 0
y = 0
width = 1
height = 0.5
"#
        ));
        assert_eq!(qa_of(&cfg, "banner"), None);
    }

    #[test]
    fn variant_qa_on_an_overlay_variant_is_an_error_saying_it_is_exact() {
        let e = one_error(
            r#"
[[variants]]
name = "banner"
template = "banner.hbs"
aspect_ratio = "16:9"
text = "overlay"
[[variants.text_boxes]]
column = "headline"
x = 0
y = 0
width = 1
height = 0.5
[variants.qa]
tolerance = 0.1
"#,
        );
        assert!(
            e.starts_with("campaign.toml:")
                && e.contains("variant `banner` has text = \"overlay\"")
                && e.contains("exact by construction"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_at_their_line() {
        let e = one_error(&format!("{QA}strict = true\n{HERO}"));
        assert!(
            e.starts_with("campaign.toml:9:") && e.contains("unknown field `strict`"),
            "{e}"
        );
        let e = one_error(&format!("{HERO}[variants.qa]\nreaders = \"x\"\n"));
        assert!(e.contains("unknown field `readers`"), "{e}");
    }

    #[test]
    fn tolerance_outside_0_to_1_is_refused_at_its_value() {
        let e = one_error(&format!("{QA}tolerance = 1.5\n{HERO}"));
        assert_eq!(
            e,
            "campaign.toml:9:13: [qa] tolerance = 1.5 must be a character error rate between 0 (exact) and 1"
        );
        let e = one_error(&format!("{QA}tolerance = -0.1\n{HERO}"));
        assert!(e.contains("tolerance = -0.1"), "{e}");
        // Integers are numbers too.
        let cfg = ok(&format!("{QA}tolerance = 1\n{HERO}"));
        assert_eq!(qa_of(&cfg, "hero").unwrap().tolerance, 1.0);
    }

    #[test]
    fn a_shut_down_reader_names_its_replacement_at_its_value() {
        let e = one_error(&format!(
            "\n[qa]\nreader = \"gemini-2.5-flash\"\nexpect = [\"headline\"]\n{HERO}"
        ));
        assert!(
            e.starts_with("campaign.toml:7:10: [qa] reader: reader model `gemini-2.5-flash` was shut down on 2026-12-01; use `gemini-3.1-flash-lite` instead"),
            "{e}"
        );
        let e = one_error(&format!(
            "\n[qa]\nreader = \"gemini-3.1-flash-image\"\nexpect = [\"headline\"]\n{HERO}"
        ));
        assert!(
            e.contains("unknown reader model") && e.contains("image model"),
            "{e}"
        );
    }

    #[test]
    fn missing_reader_or_expect_is_reported_once_for_the_campaign() {
        let (_, errors) = parse(&format!(
            "\n[qa]\nexpect = [\"headline\"]\n{HERO}\n[[variants]]\nname = \"story\"\ntemplate = \"s.hbs\"\naspect_ratio = \"9:16\"\n"
        ));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains("[qa] needs `reader`"), "{}", errors[0]);
        // A variant that sets the reader itself is fine.
        let cfg = ok(&format!(
            "\n[qa]\nexpect = [\"headline\"]\n{HERO}[variants.qa]\nreader = \"gemini-3.6-flash\"\n"
        ));
        assert_eq!(qa_of(&cfg, "hero").unwrap().reader, ReaderModel::Flash36);
        let e = one_error(&format!(
            "{HERO}[variants.qa]\nreader = \"gemini-3.6-flash\"\n"
        ));
        assert!(
            e.contains("variant `hero`: [variants.qa] needs `expect`"),
            "{e}"
        );
    }

    #[test]
    fn expect_entries_must_be_distinct_base_columns() {
        let e = one_error(&format!(
            "\n[qa]\nreader = \"gemini-3.6-flash\"\nexpect = [\"headline.de-DE\"]\n{HERO}"
        ));
        assert!(e.contains("must name a base copy column"), "{e}");
        let e = one_error(&format!(
            "\n[qa]\nreader = \"gemini-3.6-flash\"\nexpect = [\"cta\", \"cta\"]\n{HERO}"
        ));
        assert!(e.contains("lists column `cta` twice"), "{e}");
        let e = one_error(&format!(
            "\n[qa]\nreader = \"gemini-3.6-flash\"\nexpect = []\n{HERO}"
        ));
        assert!(e.contains("at least one copy column"), "{e}");
    }

    #[test]
    fn on_mismatch_overlay_needs_text_boxes() {
        let e = one_error(&format!("{QA}on_mismatch = \"overlay\"\n{HERO}"));
        assert_eq!(
            e,
            "campaign.toml:9:15: variant `hero`: on_mismatch = \"overlay\" needs [[variants.text_boxes]] to typeset the copy into; add them to the variant or choose regenerate, fail or keep"
        );
        let e = one_error(&format!("{QA}on_mismatch = \"redo\"\n{HERO}"));
        assert!(e.contains("unknown on_mismatch `redo`"), "{e}");
    }

    #[test]
    fn with_qa_a_model_text_variant_may_keep_text_boxes_as_its_overlay_fallback() {
        let cfg = ok(&format!(
            r#"{QA}on_mismatch = "overlay"
{HERO}[[variants.text_boxes]]
column = "headline"
x = 0
y = 0
width = 1
height = 0.5
"#
        ));
        let v = cfg.variants.iter().find(|v| v.name == "hero").unwrap();
        assert_eq!(v.text, TextMode::Model);
        let qa = qa_of(&cfg, "hero").unwrap();
        assert_eq!(qa.on_mismatch, OnMismatch::Overlay);
        assert_eq!(qa.fallback_boxes.len(), 1);
        assert_eq!(qa.fallback_boxes[0].column, "headline");
        // Without QA the boxes are still the old mistake.
        let e = one_error(&format!(
            "{HERO}[[variants.text_boxes]]\ncolumn = \"headline\"\nx = 0\ny = 0\nwidth = 1\nheight = 0.5\n"
        ));
        assert!(e.contains("its text mode is \"model\""), "{e}");
    }

    #[test]
    fn a_bad_reader_still_keeps_expect_for_the_column_check() {
        let (cfg, errors) = parse(&format!(
            "\n[qa]\nreader = \"gemini-2.5-pro\"\nexpect = [\"tagline\"]\n{HERO}"
        ));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        let v = &cfg.unwrap().variants[0];
        let qa = v.qa.as_ref().unwrap();
        assert_eq!(qa.settings, None);
        assert_eq!(qa.expect_at[0].column, "tagline");
    }

    #[test]
    fn an_unknown_expect_column_is_reported_once_at_its_entry() {
        let cfg = ok(&format!(
            "{QA}{HERO}\n[[variants]]\nname = \"story\"\ntemplate = \"s.hbs\"\naspect_ratio = \"9:16\"\n"
        ));
        let rows = Rows {
            path: "rows.csv".into(),
            file_sha256: String::new(),
            headers: vec!["id".into(), "headline".into(), "headline.de-DE".into()],
            kinds: vec![
                ColumnKind::Id,
                ColumnKind::Base("headline".into()),
                ColumnKind::Override {
                    base: "headline".into(),
                    locale: "de-DE".into(),
                },
            ],
            rows: Vec::new(),
        };
        let mut errors = InputErrors::default();
        check_columns(
            cfg.variants.iter().filter_map(|v| v.qa.as_ref()),
            &rows,
            Path::new("campaign.toml"),
            &mut errors,
        );
        let errors: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            ["campaign.toml:8:23: qa expect names column `cta`, which rows.csv does not have"]
        );
    }
}
