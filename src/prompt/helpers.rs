//! Locale-aware Handlebars helpers for prompt templates, backed by ICU4X (CLDR).
//!
//! [`register`] adds these helpers to a registry:
//!
//! | helper | example (de-DE) | notes |
//! |---|---|---|
//! | `{{number row.price}}` | `1.299,5` | keeps the value's own digits (`"19.90"` → `19,90`) |
//! | `{{number row.price min_fraction=2}}` | `1.299,50` | also `max_fraction=N` (rounds half-up) |
//! | `{{percent row.discount}}` | `25 %` | the value is a ratio: `0.25` → 25 %; same fraction options |
//! | `{{currency row.price "EUR"}}` | `1.299,50 €` | ISO 4217 code; digits per ISO 4217 (JPY 0, EUR 2) |
//! | `{{date row.ends "medium"}}` | `31.03.2026` | ISO `YYYY-MM-DD`; `short`, `medium` (default), `long` |
//! | `{{plural row.count one="# Artikel" other="# Artikel"}}` | `3 Artikel` | CLDR cardinal categories `zero one two few many other`; `other` is required; `#` is the formatted number |
//! | `{{language_name}}`, `{{language_name "fr"}}` | `German (Germany)`, `French` | English name |
//! | `{{native_name}}`, `{{native_name "fr"}}` | `Deutsch (Deutschland)` | name in that locale |
//! | `{{script_name}}` | `Latin` | English name of the likely script |
//! | `{{direction}}` | `ltr` | `ltr` or `rtl` |
//!
//! **Locale.** Each helper formats for the context's `locale.tag` (the prompt
//! context is `{"locale": {"tag": "de-DE", …}, "row": {…}}`), or for an
//! explicit `locale="fr-CA"` hash argument, which wins.
//!
//! **Values.** Numbers may be JSON numbers or strings with plain ASCII digits
//! and a `.` decimal point (`"1299.5"`, `"-3"`). Locale-formatted input such as
//! `"1.299,5"` is rejected rather than guessed at. They are parsed into an exact
//! decimal, so `19.90` never turns into `19.899999`.
//!
//! **Errors.** A missing or malformed value, an unknown currency code, a bad
//! date, an unknown option or an invalid `locale=` makes the render fail with a
//! [`RenderError`] whose message names the helper and the offending value; a
//! helper never renders an empty string in place of a value.
//!
//! # Invisible characters (decision)
//!
//! CLDR output contains characters that look like nothing or like a space:
//! U+00A0 NO-BREAK SPACE (`1.299,00 €` in de-DE), U+202F NARROW NO-BREAK SPACE
//! (French grouping `1 299`, `25 %` in some locales) and direction marks
//! U+200E/U+200F/U+061C (Arabic currency and percent).
//!
//! **They are kept by default.** The no-break spaces are what a correctly
//! typeset ad shows: they stop `1.299,00` and `€` from being split across
//! lines, and the marks keep numbers and symbols in the right order inside
//! right-to-left text. Stripping them would make the prompt *ask* for a
//! slightly wrong rendering.
//!
//! Two per-call options exist for prompts (or models) that cope badly with them:
//!
//! * `ascii_spaces=true` maps U+00A0, U+202F, U+2007 and U+2009 to a plain space;
//! * `strip_marks=true` removes U+200E, U+200F and U+061C.
//!
//! Tests assert outputs byte-exactly with escaped expectations (`"1.299,00\u{a0}€"`).
//!
//! # Calendars
//!
//! `{{date}}` uses the locale's default CLDR calendar (so `th-TH` shows Buddhist
//! year 2569 for 2026). A tag can request another, e.g. `th-TH-u-ca-gregory`.

use fixed_decimal::{Decimal, SignedRoundingMode, UnsignedRoundingMode};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, PathAndJson, RenderContext, RenderError,
    RenderErrorReason, ScopedJson,
};
use icu_datetime::DateTimeFormatter;
use icu_datetime::fieldsets::YMD;
use icu_datetime::input::Date;
use icu_decimal::DecimalFormatter;
use icu_experimental::dimension::currency::CurrencyType;
use icu_experimental::dimension::currency::formatter::CurrencyFormatter;
use icu_experimental::dimension::percent::formatter::PercentFormatter;
use icu_experimental::dimension::provider::currency::displayname::CurrencyDisplaynameV1;
use icu_locale::locale;
use icu_plurals::{PluralCategory, PluralRules};
use icu_provider::prelude::{
    DataIdentifierBorrowed, DataLocale, DataMarkerAttributes, DataProvider, DataRequest,
};
use serde_json::Value;
use writeable::Writeable;

use crate::domain::Locale;

/// Register every helper on the registry.
///
/// Helpers take the locale from the context path `locale.tag`, or from an
/// explicit `locale="xx"` hash argument. See the module docs for the list.
pub fn register(hb: &mut Handlebars<'_>) {
    for kind in Kind::ALL {
        hb.register_helper(kind.name(), Box::new(LocaleHelper(kind)));
    }
}

/// Why a helper call failed; rendered into the [`RenderError`] message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HelperError {
    #[error("{{{{{helper}}}}}: missing argument: {what}")]
    MissingArg {
        helper: &'static str,
        what: &'static str,
    },
    #[error("{{{{{helper}}}}}: `{path}` is missing from the template context")]
    MissingValue { helper: &'static str, path: String },
    #[error("{{{{{helper}}}}}: {value} is not {expected}")]
    BadValue {
        helper: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{{{{{helper}}}}}: unknown option `{key}` (allowed: {allowed})")]
    UnknownOption {
        helper: &'static str,
        key: String,
        allowed: String,
    },
    #[error(
        "{{{{{helper}}}}}: no locale: the context has no `locale.tag` and no `locale=\"…\"` argument was given"
    )]
    NoLocale { helper: &'static str },
    #[error("{{{{{helper}}}}}: {source}")]
    BadLocale {
        helper: &'static str,
        source: crate::domain::LocaleError,
    },
    #[error(
        "{{{{{helper}}}}}: unknown currency code {code} (expected an ISO 4217 code such as \"EUR\")"
    )]
    UnknownCurrency { helper: &'static str, code: String },
    #[error("{{{{{helper}}}}}: no {what} data for locale {locale}: {detail}")]
    Icu {
        helper: &'static str,
        what: &'static str,
        locale: String,
        detail: String,
    },
}

impl From<HelperError> for RenderError {
    fn from(e: HelperError) -> Self {
        // Nested, not flattened to text, so callers can tell the cases apart.
        RenderErrorReason::NestedError(Box::new(e)).into()
    }
}

/// Options every helper accepts.
const COMMON_OPTIONS: &[&str] = &["locale", "ascii_spaces", "strip_marks"];

#[derive(Clone, Copy, Debug)]
enum Kind {
    Number,
    Percent,
    Currency,
    Date,
    Plural,
    LanguageName,
    NativeName,
    ScriptName,
    Direction,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::Number,
        Kind::Percent,
        Kind::Currency,
        Kind::Date,
        Kind::Plural,
        Kind::LanguageName,
        Kind::NativeName,
        Kind::ScriptName,
        Kind::Direction,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Number => "number",
            Kind::Percent => "percent",
            Kind::Currency => "currency",
            Kind::Date => "date",
            Kind::Plural => "plural",
            Kind::LanguageName => "language_name",
            Kind::NativeName => "native_name",
            Kind::ScriptName => "script_name",
            Kind::Direction => "direction",
        }
    }

    /// Hash options specific to this helper (on top of [`COMMON_OPTIONS`]).
    fn options(self) -> &'static [&'static str] {
        match self {
            Kind::Number | Kind::Percent => &["min_fraction", "max_fraction"],
            Kind::Plural => &["zero", "one", "two", "few", "many", "other"],
            _ => &[],
        }
    }
}

/// One helper; a single type dispatching on [`Kind`] keeps the shared
/// plumbing (locale lookup, option checks, output clean-up) in one place.
struct LocaleHelper(Kind);

impl HelperDef for LocaleHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let call = Call {
            helper: self.0.name(),
            h,
        };
        call.check_options(self.0.options())?;
        let locale = call.locale(ctx)?;
        let text = match self.0 {
            Kind::Number => call.number(&locale)?,
            Kind::Percent => call.percent(&locale)?,
            Kind::Currency => call.currency(&locale)?,
            Kind::Date => call.date(&locale)?,
            Kind::Plural => call.plural(&locale)?,
            Kind::LanguageName => call.target(&locale)?.info().english_name,
            Kind::NativeName => call.target(&locale)?.info().native_name,
            Kind::ScriptName => call.target(&locale)?.script_name(),
            Kind::Direction => call.target(&locale)?.info().direction,
        };
        let text = call.clean(text)?;
        // Returning a value (not writing to `out`) lets the helpers also be
        // used as subexpressions, e.g. `{{upper (currency row.price "EUR")}}`.
        Ok(ScopedJson::Derived(Value::String(text)))
    }
}

/// One invocation of a helper: its name (for messages) and its arguments.
struct Call<'a, 'rc> {
    helper: &'static str,
    h: &'a Helper<'rc>,
}

impl Call<'_, '_> {
    fn check_options(&self, specific: &[&str]) -> Result<(), HelperError> {
        for key in self.h.hash().keys() {
            if !COMMON_OPTIONS.contains(key) && !specific.contains(key) {
                let allowed = specific
                    .iter()
                    .chain(COMMON_OPTIONS)
                    .copied()
                    .collect::<Vec<_>>();
                return Err(HelperError::UnknownOption {
                    helper: self.helper,
                    key: (*key).to_string(),
                    allowed: allowed.join(", "),
                });
            }
        }
        Ok(())
    }

    /// `locale="…"` if given, else the context's `locale.tag`.
    fn locale(&self, ctx: &Context) -> Result<Locale, HelperError> {
        let tag = match self.h.hash_get("locale") {
            Some(arg) => self.string_of(arg, "a locale tag")?,
            None => ctx
                .data()
                .pointer("/locale/tag")
                .and_then(Value::as_str)
                .ok_or(HelperError::NoLocale {
                    helper: self.helper,
                })?
                .to_string(),
        };
        Locale::parse(&tag).map_err(|source| HelperError::BadLocale {
            helper: self.helper,
            source,
        })
    }

    /// For the name helpers: the optional positional locale, else the current one.
    fn target(&self, current: &Locale) -> Result<Locale, HelperError> {
        match self.h.param(0) {
            None => Ok(current.clone()),
            Some(arg) => {
                let tag = self.string_of(arg, "a locale tag")?;
                Locale::parse(&tag).map_err(|source| HelperError::BadLocale {
                    helper: self.helper,
                    source,
                })
            }
        }
    }

    /// A string argument (hash or positional), with a message if it is absent or not a string.
    fn string_of(
        &self,
        arg: &PathAndJson<'_>,
        expected: &'static str,
    ) -> Result<String, HelperError> {
        self.present(arg)?;
        match arg.value() {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.bad(other, expected)),
        }
    }

    fn present(&self, arg: &PathAndJson<'_>) -> Result<(), HelperError> {
        if arg.is_value_missing() {
            return Err(HelperError::MissingValue {
                helper: self.helper,
                path: arg.relative_path().cloned().unwrap_or_default(),
            });
        }
        Ok(())
    }

    fn bad(&self, value: &Value, expected: &'static str) -> HelperError {
        HelperError::BadValue {
            helper: self.helper,
            value: value.to_string(),
            expected,
        }
    }

    fn flag(&self, key: &str) -> Result<bool, HelperError> {
        match self.h.hash_get(key) {
            None => Ok(false),
            Some(arg) => {
                self.present(arg)?;
                match arg.value() {
                    Value::Bool(b) => Ok(*b),
                    other => Err(self.bad(other, "true or false")),
                }
            }
        }
    }

    /// A small non-negative integer option such as `min_fraction=2`.
    fn digits_option(&self, key: &str) -> Result<Option<i16>, HelperError> {
        let Some(arg) = self.h.hash_get(key) else {
            return Ok(None);
        };
        self.present(arg)?;
        let value = arg.value();
        // 0..=20 covers every real use and keeps the i16 magnitude arithmetic safe.
        match value.as_u64() {
            Some(n) if n <= 20 => Ok(Some(n as i16)),
            _ => Err(self.bad(value, "a whole number of fraction digits from 0 to 20")),
        }
    }

    /// The first positional argument as an exact decimal.
    fn decimal(&self) -> Result<Decimal, HelperError> {
        let arg = self.h.param(0).ok_or(HelperError::MissingArg {
            helper: self.helper,
            what: "a number, e.g. {{number row.price}}",
        })?;
        self.present(arg)?;
        const EXPECTED: &str = "a number (digits with an optional `.` decimal point, e.g. 1299.5)";
        let value = arg.value();
        let text = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_string(),
            other => return Err(self.bad(other, EXPECTED)),
        };
        let mut decimal = Decimal::try_from_str(&text).map_err(|_| self.bad(value, EXPECTED))?;
        // Leading zeros ("007") are not significant; trailing ones are kept on purpose.
        decimal.absolute.trim_start();
        Ok(decimal)
    }

    /// Applies `min_fraction` / `max_fraction`.
    fn apply_fraction_options(&self, value: &mut Decimal) -> Result<(), HelperError> {
        if let Some(max) = self.digits_option("max_fraction")? {
            // Half-up, as shoppers expect (2.345 → 2.35), not banker's rounding.
            value.round_with_mode(
                -max,
                SignedRoundingMode::Unsigned(UnsignedRoundingMode::HalfExpand),
            );
            value.absolute.trim_end();
        }
        if let Some(min) = self.digits_option("min_fraction")? {
            value.absolute.pad_end(-min);
        }
        Ok(())
    }

    fn icu_error(
        &self,
        what: &'static str,
        locale: &Locale,
        e: impl std::fmt::Display,
    ) -> HelperError {
        HelperError::Icu {
            helper: self.helper,
            what,
            locale: locale.tag().to_string(),
            detail: e.to_string(),
        }
    }

    fn number(&self, locale: &Locale) -> Result<String, HelperError> {
        let mut value = self.decimal()?;
        self.apply_fraction_options(&mut value)?;
        self.format_decimal(locale, &value)
    }

    fn format_decimal(&self, locale: &Locale, value: &Decimal) -> Result<String, HelperError> {
        let formatter = DecimalFormatter::try_new(locale.as_icu().into(), Default::default())
            .map_err(|e| self.icu_error("number", locale, e))?;
        Ok(formatter.format(value).write_to_string().into_owned())
    }

    fn percent(&self, locale: &Locale) -> Result<String, HelperError> {
        let mut value = self.decimal()?;
        // The value is a ratio (0.25 → 25 %), as in ICU and Intl.NumberFormat.
        value.multiply_pow10(2);
        // 0.25 shifted is "025": drop the integer zeros the shift left behind.
        value.absolute.trim_start();
        self.apply_fraction_options(&mut value)?;
        let formatter = PercentFormatter::try_new(locale.as_icu().into(), Default::default())
            .map_err(|e| self.icu_error("percent", locale, e))?;
        Ok(formatter.format(&value).write_to_string().into_owned())
    }

    fn currency(&self, locale: &Locale) -> Result<String, HelperError> {
        let value = self.decimal()?;
        let arg = self.h.param(1).ok_or(HelperError::MissingArg {
            helper: self.helper,
            what: "a currency code, e.g. {{currency row.price \"EUR\"}}",
        })?;
        let code = self.string_of(arg, "an ISO 4217 currency code such as \"EUR\"")?;
        let currency = known_currency(&code).ok_or(HelperError::UnknownCurrency {
            helper: self.helper,
            code: Value::String(code.clone()).to_string(),
        })?;
        let formatter =
            CurrencyFormatter::try_new_symbol(locale.as_icu().into(), currency, Default::default())
                .map_err(|e| self.icu_error("currency", locale, e))?;
        // The formatter rounds to the currency's ISO 4217 digits (JPY 0, EUR 2, BHD 3).
        Ok(formatter
            .format_fixed_decimal(&value)
            .write_to_string()
            .into_owned())
    }

    fn date(&self, locale: &Locale) -> Result<String, HelperError> {
        let arg = self.h.param(0).ok_or(HelperError::MissingArg {
            helper: self.helper,
            what: "an ISO date, e.g. {{date row.ends \"medium\"}}",
        })?;
        const EXPECTED: &str = "an ISO 8601 date like \"2026-03-31\"";
        let text = self.string_of(arg, EXPECTED)?;
        let civil: jiff::civil::Date = text
            .trim()
            .parse()
            .map_err(|_| self.bad(arg.value(), EXPECTED))?;
        let date = Date::try_new_iso(
            i32::from(civil.year()),
            civil.month().unsigned_abs(),
            civil.day().unsigned_abs(),
        )
        .map_err(|_| self.bad(arg.value(), EXPECTED))?;

        let length = match self.h.param(1) {
            None => "medium".to_string(),
            Some(arg) => self.string_of(arg, "a date length: \"short\", \"medium\" or \"long\"")?,
        };
        let field_set = match length.as_str() {
            "short" => YMD::short(),
            "medium" => YMD::medium(),
            "long" => YMD::long(),
            _ => {
                return Err(self.bad(
                    &Value::String(length.clone()),
                    "a date length: \"short\", \"medium\" or \"long\"",
                ));
            }
        };
        let formatter = DateTimeFormatter::try_new(locale.as_icu().into(), field_set)
            .map_err(|e| self.icu_error("date", locale, e))?;
        Ok(formatter.format(&date).write_to_string().into_owned())
    }

    fn plural(&self, locale: &Locale) -> Result<String, HelperError> {
        let value = self.decimal()?;
        let rules = PluralRules::try_new_cardinal(locale.as_icu().into())
            .map_err(|e| self.icu_error("plural rules", locale, e))?;
        let key = match rules.category_for(&value) {
            PluralCategory::Zero => "zero",
            PluralCategory::One => "one",
            PluralCategory::Two => "two",
            PluralCategory::Few => "few",
            PluralCategory::Many => "many",
            PluralCategory::Other => "other",
        };
        // CLDR requires `other` in every locale, so demand it even when this
        // value happens to pick another category: a template that works for
        // one count must work for all.
        let other = self.h.hash_get("other").ok_or(HelperError::MissingArg {
            helper: self.helper,
            what: "other=\"…\" (required; add zero/one/two/few/many as the language needs)",
        })?;
        let chosen = self.h.hash_get(key).unwrap_or(other);
        let pattern = self.string_of(chosen, "a string")?;
        let formatted = self.format_decimal(locale, &value)?;
        Ok(pattern.replace('#', &formatted))
    }

    /// Applies `ascii_spaces` / `strip_marks` (see the module docs).
    fn clean(&self, text: String) -> Result<String, HelperError> {
        let ascii_spaces = self.flag("ascii_spaces")?;
        let strip_marks = self.flag("strip_marks")?;
        if !ascii_spaces && !strip_marks {
            return Ok(text);
        }
        Ok(text
            .chars()
            .filter_map(|c| match c {
                '\u{a0}' | '\u{202f}' | '\u{2007}' | '\u{2009}' if ascii_spaces => Some(' '),
                '\u{200e}' | '\u{200f}' | '\u{61c}' if strip_marks => None,
                c => Some(c),
            })
            .collect())
    }
}

/// Parses `code` and checks CLDR knows it as a currency.
///
/// ICU's formatter would silently print an unknown code (`1.00 XYZ`), so we
/// require an English display name, which CLDR has for every ISO 4217 code.
fn known_currency(code: &str) -> Option<CurrencyType> {
    let currency = CurrencyType::try_from_str(code.trim()).ok()?;
    let iso = currency.iso_code();
    let attributes = DataMarkerAttributes::try_from_str(iso.as_str()).ok()?;
    let english = DataLocale::from(locale!("en"));
    let request = DataRequest {
        id: DataIdentifierBorrowed::for_marker_attributes_and_locale(attributes, &english),
        ..Default::default()
    };
    // The baked provider is what CurrencyFormatter's compiled constructors use.
    let loaded: Result<_, _> =
        DataProvider::<CurrencyDisplaynameV1>::load(&icu_experimental::provider::Baked, request);
    loaded.ok().map(|_| currency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Handlebars<'static> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        register(&mut hb);
        hb
    }

    fn render_in(tag: &str, template: &str, row: Value) -> Result<String, RenderError> {
        let ctx = json!({"locale": {"tag": tag}, "row": row});
        registry().render_template(template, &ctx)
    }

    fn ok(tag: &str, template: &str, row: Value) -> String {
        match render_in(tag, template, row) {
            Ok(s) => s,
            Err(e) => panic!("{tag} {template}: {e}"),
        }
    }

    fn err(tag: &str, template: &str, row: Value) -> String {
        match render_in(tag, template, row) {
            Ok(s) => panic!("{tag} {template}: expected an error, got {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn number_grouping_and_decimals() {
        let row = json!({"price": 1299.5, "s": "1299.50"});
        assert_eq!(ok("de-DE", "{{number row.price}}", row.clone()), "1.299,5");
        assert_eq!(ok("en-US", "{{number row.price}}", row.clone()), "1,299.5");
        assert_eq!(ok("de-DE", "{{number row.s}}", row.clone()), "1.299,50");
        assert_eq!(ok("en-US", "{{number \"007\"}}", json!({})), "7");
        assert_eq!(ok("en-US", "{{number -0.5}}", json!({})), "-0.5");
        assert_eq!(
            ok("de-DE", "{{number row.price min_fraction=2}}", row.clone()),
            "1.299,50"
        );
        assert_eq!(
            ok("fr-FR", "{{number row.price}}", row.clone()),
            "1\u{202f}299,5"
        );
        assert_eq!(
            ok(
                "fr-FR",
                "{{number row.price ascii_spaces=true}}",
                row.clone()
            ),
            "1 299,5"
        );
        assert_eq!(
            ok("en-US", "{{number 2.345 max_fraction=2}}", json!({})),
            "2.35"
        );
        assert_eq!(
            ok("en-US", "{{number row.price locale=\"de-CH\"}}", row),
            "1'299.5"
        );
    }

    #[test]
    fn percent() {
        let row = json!({"discount": 0.25});
        assert_eq!(
            ok("de-DE", "{{percent row.discount}}", row.clone()),
            "25\u{a0}%"
        );
        assert_eq!(ok("en-US", "{{percent row.discount}}", row.clone()), "25%");
        assert_eq!(ok("en-US", "{{percent 0.05}}", json!({})), "5%");
        assert_eq!(ok("en-US", "{{percent 1.5}}", json!({})), "150%");
        assert_eq!(
            ok("de-DE", "{{percent row.discount ascii_spaces=true}}", row),
            "25 %"
        );
        assert_eq!(
            ok("en-US", "{{percent 0.12345 max_fraction=1}}", json!({})),
            "12.3%"
        );
    }

    #[test]
    fn currency() {
        let row = json!({"price": 1299});
        assert_eq!(
            ok("de-DE", "{{currency row.price \"EUR\"}}", row.clone()),
            "1.299,00\u{a0}€"
        );
        assert_eq!(
            ok("en-US", "{{currency row.price \"EUR\"}}", row.clone()),
            "€1,299.00"
        );
        // CLDR's ja symbol for JPY is the fullwidth yen sign; ISO 4217 gives JPY no fraction digits.
        assert_eq!(
            ok("ja-JP", "{{currency row.price \"JPY\"}}", row.clone()),
            "\u{ffe5}1,299"
        );
        assert_eq!(
            ok(
                "de-DE",
                "{{currency row.price \"EUR\" ascii_spaces=true}}",
                row
            ),
            "1.299,00 €"
        );
    }

    #[test]
    fn date_lengths() {
        let row = json!({"ends": "2026-03-31"});
        assert_eq!(
            ok("de-DE", "{{date row.ends \"medium\"}}", row.clone()),
            "31.03.2026"
        );
        assert_eq!(
            ok("en-US", "{{date row.ends \"medium\"}}", row.clone()),
            "Mar 31, 2026"
        );
        assert_eq!(
            ok("en-US", "{{date row.ends}}", row.clone()),
            "Mar 31, 2026"
        );
        assert_eq!(
            ok("en-US", "{{date row.ends \"short\"}}", row.clone()),
            "3/31/26"
        );
        assert_eq!(
            ok("en-GB", "{{date row.ends \"short\"}}", row.clone()),
            "31/03/2026"
        );
        assert_eq!(
            ok("de-DE", "{{date row.ends \"long\"}}", row.clone()),
            "31. März 2026"
        );
        assert_eq!(
            ok("ja-JP", "{{date row.ends \"long\"}}", row.clone()),
            "2026年3月31日"
        );
        assert_eq!(
            ok("th-TH", "{{date row.ends \"long\"}}", row.clone()),
            "31 มีนาคม 2569"
        );
        assert_eq!(
            ok("th-TH-u-ca-gregory", "{{date row.ends \"long\"}}", row),
            // Not the locale's default calendar, so CLDR adds the era (AD).
            "31 มีนาคม ค.ศ. 2026"
        );
    }

    #[test]
    fn plural_categories() {
        let t = "{{plural row.n one=\"# item\" other=\"# items\"}}";
        assert_eq!(ok("en-US", t, json!({"n": 1})), "1 item");
        assert_eq!(ok("en-US", t, json!({"n": 1299})), "1,299 items");
        assert_eq!(ok("de-DE", t, json!({"n": 1299})), "1.299 items");
        // Arabic has all six categories; missing ones fall back to `other`.
        let ar = "{{plural row.n zero=\"z\" one=\"o\" two=\"t\" few=\"f\" many=\"m\" other=\"x\"}}";
        for (n, want) in [
            (0, "z"),
            (1, "o"),
            (2, "t"),
            (3, "f"),
            (11, "m"),
            (100, "x"),
        ] {
            assert_eq!(ok("ar-SA", ar, json!({"n": n})), want, "n={n}");
        }
        assert_eq!(
            ok(
                "en-US",
                "{{plural row.n other=\"# items\"}}",
                json!({"n": 1})
            ),
            "1 items"
        );
    }

    #[test]
    fn names_script_direction() {
        let row = json!({});
        assert_eq!(
            ok("de-DE", "{{language_name}}", row.clone()),
            "German (Germany)"
        );
        assert_eq!(
            ok("de-DE", "{{language_name \"fr\"}}", row.clone()),
            "French"
        );
        assert_eq!(
            ok("de-DE", "{{native_name}}", row.clone()),
            "Deutsch (Deutschland)"
        );
        assert_eq!(ok("ja-JP", "{{native_name}}", row.clone()), "日本語 (日本)");
        assert_eq!(ok("ar-SA", "{{script_name}}", row.clone()), "Arabic");
        assert_eq!(ok("ar-SA", "{{direction}}", row.clone()), "rtl");
        assert_eq!(ok("de-DE", "{{direction}}", row.clone()), "ltr");
        assert_eq!(
            ok("de-DE", "{{language_name locale=\"zh-Hant-TW\"}}", row),
            "Chinese (Traditional, Taiwan)"
        );
    }

    #[test]
    fn bad_input_names_helper_and_value() {
        let e = err("de-DE", "{{number row.price}}", json!({"price": "1.299,5"}));
        assert!(e.contains("{{number}}") && e.contains("\"1.299,5\""), "{e}");
        let e = err("de-DE", "{{number row.price}}", json!({"price": true}));
        assert!(e.contains("{{number}}") && e.contains("true"), "{e}");
        let e = err("de-DE", "{{currency 5 \"XYZ\"}}", json!({}));
        assert!(e.contains("{{currency}}") && e.contains("\"XYZ\""), "{e}");
        let e = err("de-DE", "{{currency 5 \"EURO\"}}", json!({}));
        assert!(e.contains("\"EURO\""), "{e}");
        let e = err("de-DE", "{{currency 5}}", json!({}));
        assert!(e.contains("currency code"), "{e}");
        let e = err("de-DE", "{{date row.d}}", json!({"d": "31.03.2026"}));
        assert!(
            e.contains("{{date}}") && e.contains("\"31.03.2026\""),
            "{e}"
        );
        let e = err("de-DE", "{{date row.d}}", json!({"d": "2026-02-30"}));
        assert!(e.contains("\"2026-02-30\""), "{e}");
        let e = err(
            "de-DE",
            "{{date row.d \"full\"}}",
            json!({"d": "2026-03-31"}),
        );
        assert!(e.contains("\"full\""), "{e}");
        let e = err("de-DE", "{{plural 3 one=\"# x\"}}", json!({}));
        assert!(e.contains("other="), "{e}");
        let e = err("de-DE", "{{number 3 min_fractoin=2}}", json!({}));
        assert!(e.contains("min_fractoin"), "{e}");
        let e = err("de-DE", "{{number 3 locale=\"xx-YY\"}}", json!({}));
        assert!(e.contains("unknown language"), "{e}");
        let e = err("de-DE", "{{language_name \"english\"}}", json!({}));
        assert!(e.contains("english"), "{e}");
        let e = registry()
            .render_template("{{number 3}}", &json!({"row": {}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("locale.tag"), "{e}");
    }

    #[test]
    fn missing_value_is_an_error_not_empty() {
        let e = err("de-DE", "{{number row.nope}}", json!({}));
        assert!(e.contains("row.nope") || e.contains("nope"), "{e}");
    }

    #[test]
    fn usable_as_subexpression() {
        let mut hb = registry();
        hb.register_helper(
            "shout",
            Box::new(
                |h: &Helper<'_>,
                 _: &Handlebars<'_>,
                 _: &Context,
                 _: &mut RenderContext<'_, '_>,
                 out: &mut dyn handlebars::Output|
                 -> handlebars::HelperResult {
                    let v = h.param(0).and_then(|p| p.value().as_str()).unwrap_or("");
                    out.write(&v.to_uppercase())?;
                    Ok(())
                },
            ),
        );
        let ctx = json!({"locale": {"tag": "de-DE"}, "row": {"p": 5}});
        assert_eq!(
            hb.render_template("{{shout (currency row.p \"EUR\")}}", &ctx)
                .unwrap(),
            "5,00\u{a0}€"
        );
    }

    #[test]
    fn arabic_marks_kept_unless_stripped() {
        let kept = ok("ar-EG", "{{currency 5 \"EGP\"}}", json!({}));
        assert!(kept.contains('\u{200f}'), "{kept:?}");
        let stripped = ok(
            "ar-EG",
            "{{currency 5 \"EGP\" strip_marks=true}}",
            json!({}),
        );
        assert!(!stripped.contains('\u{200f}'), "{stripped:?}");
    }
}
