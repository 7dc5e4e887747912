//! Copy QA's comparison: is the copy a row expects in the text a reader
//! model transcribed off the image? Pure: no I/O, no model calls.
//!
//! Both sides are normalized ([`normalize`]) so that differences a reader
//! cannot see or reliably reproduce do not count: Unicode composition (NFC
//! vs NFD), kinds of white space and line breaks, straight vs typographic
//! quotes. Differences a reader *can* see always count: case, accents,
//! punctuation other than quotes. `Grat` is not `grat` and `für` is not
//! `fur`: a model that drops an umlaut painted the wrong word.
//!
//! A string passes when some substring of the transcription is within
//! `tolerance` of it, as a character error rate (Levenshtein distance over
//! chars ÷ chars of the expected string). A substring, because readers
//! merge lines ("Own the ridge. Shop now" for a headline and a CTA) and
//! split them (a two-line headline as two strings).

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// NFC, every run of Unicode white space (NBSP, ideographic space, line
/// breaks…) as one ASCII space, trimmed; typographic single quotes and
/// primes as `'`, typographic double quotes and CJK corner brackets as `"`.
/// Guillemets (« » ‹ ›) are kept: they are a visible glyph choice, not an
/// encoding of the same mark. Never case-folds, never strips accents.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.nfc() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => '"',
            // 「」『』 and their vertical forms ﹁﹂﹃﹄.
            '\u{300C}' | '\u{300D}' | '\u{300E}' | '\u{300F}' | '\u{FE41}' | '\u{FE42}'
            | '\u{FE43}' | '\u{FE44}' => '"',
            c => c,
        });
    }
    out
}

/// Where a checked string came from, which decides what counts as a miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StringSource {
    /// A copy column named in `expect`: it must appear, within `tolerance`.
    #[default]
    Column,
    /// A string the rendered prompt quotes, outside `expect`: the model may
    /// leave it out (it was only told about it), but a near miss of it is
    /// a misspelling like any other.
    Prompt,
}

/// One string an image is checked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedString {
    /// The row column whose copy it is, when it is one (`None`: text of the
    /// template itself, quoted in the prompt).
    pub column: Option<String>,
    /// The text as the row (or the prompt) gives it for the locale.
    pub text: String,
    /// Where it came from.
    pub source: StringSource,
}

/// A quoted string shorter than this (in characters, normalized) is not
/// guarded for near misses: "Go" is one edit from any "o" a reader sees,
/// so the guard would flag noise, not misspellings.
pub const NEAR_MISS_MIN_CHARS: usize = 4;

/// A quoted string is a near miss when the transcription comes within this
/// share of its length in edits without being exact (within tolerance);
/// farther than that, it is simply absent.
pub const NEAR_MISS_MAX_CER: f64 = 0.5;

/// The strings a prompt puts in quotes, normalized ([`normalize`] first, so
/// straight, typographic and CJK corner-bracket quotes all count), plus
/// guillemet pairs (`«…»`, `»…«`); trimmed, empty ones and repeats left
/// out, in order. Single quotes are not quotes here: they are apostrophes
/// far more often than they delimit copy.
pub fn quoted_strings(prompt: &str) -> Vec<String> {
    let text = normalize(prompt);
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        let s = s.trim();
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    // Straight double quotes pair up in order; an odd last one is unbalanced.
    let parts: Vec<&str> = text.split('"').collect();
    for (i, inside) in parts.iter().enumerate() {
        if i % 2 == 1 && i + 1 < parts.len() {
            push(inside);
        }
    }
    for (open, close) in [('«', '»'), ('»', '«'), ('‹', '›')] {
        let mut rest = text.as_str();
        while let Some(o) = rest.find(open) {
            let after = &rest[o + open.len_utf8()..];
            let Some(c) = after.find(close) else { break };
            push(&after[..c]);
            rest = &after[c + close.len_utf8()..];
        }
    }
    out
}

/// One expected string and where the transcription came closest to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StringCheck {
    /// The base copy column (`headline`); `null` for text the template
    /// itself quotes.
    pub column: Option<String>,
    /// The copy as the row gives it for the locale.
    pub expected: String,
    /// The closest substring of the transcription (normalized), `None`
    /// when nothing was read.
    pub read: Option<String>,
    /// Character error rate: edits ÷ chars of the normalized expected
    /// string; 0 is exact, 1 is nothing in common.
    pub cer: f64,
    /// `column` (named in `expect`: must appear) or `prompt` (quoted in the
    /// prompt: may be absent, must not be misspelled). Checks stored before
    /// the prompt guard existed were all `column`.
    #[serde(default)]
    pub source: StringSource,
}

impl StringCheck {
    /// Within `tolerance` (a CER; the epsilon absorbs float division, so
    /// 1 edit in 10 chars passes 0.1).
    pub fn within(&self, tolerance: f64) -> bool {
        self.cer <= tolerance + 1e-9
    }

    /// Whether this check passes: a column string must be within
    /// `tolerance`; a prompt string must be within it or absent (farther
    /// than [`NEAR_MISS_MAX_CER`], or too short to guard).
    pub fn passes(&self, tolerance: f64) -> bool {
        match self.source {
            StringSource::Column => self.within(tolerance),
            StringSource::Prompt => {
                self.within(tolerance)
                    || self.cer > NEAR_MISS_MAX_CER + 1e-9
                    || normalize(&self.expected).chars().count() < NEAR_MISS_MIN_CHARS
            }
        }
    }

    /// The column, or `prompt` for template text, for messages.
    pub fn label(&self) -> &str {
        self.column.as_deref().unwrap_or("prompt")
    }
}

/// The verdict on one image: every non-empty expected string, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readback {
    /// One check per non-empty expected string, in the order given.
    pub checks: Vec<StringCheck>,
    /// The tolerance they were held to.
    pub tolerance: f64,
}

impl Readback {
    /// Compare `expected` with the strings a reader returned. Empty
    /// expected copy (after normalization) is not checked.
    pub fn check(expected: &[ExpectedString], reads: &[String], tolerance: f64) -> Readback {
        let reads: Vec<Vec<char>> = reads
            .iter()
            .map(|r| normalize(r))
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().collect())
            .collect();
        let checks = expected
            .iter()
            .filter_map(|e| {
                let want: Vec<char> = normalize(&e.text).chars().collect();
                if want.is_empty() {
                    return None;
                }
                let (read, cer) = best_match(&want, &reads);
                Some(StringCheck {
                    column: e.column.clone(),
                    expected: e.text.clone(),
                    read,
                    cer,
                    source: e.source,
                })
            })
            .collect();
        Readback { checks, tolerance }
    }

    /// Every string passes (true when nothing was expected).
    pub fn pass(&self) -> bool {
        self.checks.iter().all(|c| c.passes(self.tolerance))
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &StringCheck> {
        self.checks.iter().filter(|c| !c.passes(self.tolerance))
    }
}

/// The best substring match of `want` among the reads one by one and the
/// reads joined with one space (a string split across reads). Joined alone
/// would give the same CER, since every read is a substring of it; trying
/// each read first only breaks ties in favour of a match inside one read.
fn best_match(want: &[char], reads: &[Vec<char>]) -> (Option<String>, f64) {
    let mut joined: Vec<char> = Vec::new();
    for r in reads {
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.extend(r);
    }
    let mut best: Option<(usize, &[char])> = None;
    for text in reads.iter().map(Vec::as_slice).chain([joined.as_slice()]) {
        let (dist, start, end) = substring_distance(want, text);
        if best.is_none_or(|(d, _)| dist < d) {
            best = Some((dist, &text[start..end]));
        }
    }
    match best {
        Some((dist, m)) if !m.is_empty() => {
            (Some(m.iter().collect()), dist as f64 / want.len() as f64)
        }
        _ => (None, 1.0),
    }
}

/// Whether `c` is part of a word in a script that separates words with
/// spaces. A match may not start or end inside such a word: otherwise a
/// painted "Trail Cub 99" would contain the expected "Trail Cub 9" exactly
/// and a doubled last letter would pass. Han, kana, Thai, Lao, Khmer,
/// Myanmar and Tibetan text runs words together, so there any position is
/// a boundary.
fn is_word_char(c: char) -> bool {
    use unicode_script::{Script, UnicodeScript};
    c.is_alphanumeric()
        && !matches!(
            c.script(),
            Script::Han
                | Script::Hiragana
                | Script::Katakana
                | Script::Thai
                | Script::Lao
                | Script::Khmer
                | Script::Myanmar
                | Script::Tibetan
        )
}

/// Semi-global edit distance: the fewest edits turning `want` into some
/// substring `text[start..end]`, where starting and ending are free at word
/// boundaries ([`is_word_char`]), with that substring's bounds.
///
/// Hand-written because strsim and friends only compare whole strings.
/// One DP column per char of `text`, each cell carrying the start of its
/// alignment so the matched substring can be returned: O(|want|·|text|)
/// time, O(|want|) memory; ad copy and a transcription are short.
fn substring_distance(want: &[char], text: &[char]) -> (usize, usize, usize) {
    let m = want.len();
    // A free start at `s` (or end at `e`) must not cut a word of `text`,
    // unless the expected string itself begins (ends) with a non-word char.
    let word_first = want.first().is_some_and(|&c| is_word_char(c));
    let word_last = want.last().is_some_and(|&c| is_word_char(c));
    let can_start =
        |s: usize| s == 0 || !word_first || !is_word_char(text[s - 1]) || !is_word_char(text[s]);
    let can_end = |e: usize| {
        e == text.len() || !word_last || !is_word_char(text[e]) || !is_word_char(text[e - 1])
    };
    // Too many edits to matter: a start that is not allowed.
    let blocked = m + text.len() + 1;
    // Column j = 0: `want[..i]` against the empty substring, i deletions.
    let mut prev: Vec<(usize, usize)> = (0..=m).map(|i| (i, 0)).collect();
    let mut best = (prev[m].0, 0, 0);
    for (j, &t) in text.iter().enumerate() {
        // Row 0: the empty prefix matches at a boundary; the alignment
        // starts here.
        let mut cur: Vec<(usize, usize)> = Vec::with_capacity(m + 1);
        let start = j + 1;
        let row0 = if start == text.len() || can_start(start) {
            0
        } else {
            blocked
        };
        cur.push((row0, start));
        for i in 1..=m {
            let (diag, diag_start) = prev[i - 1];
            let sub = (diag + usize::from(want[i - 1] != t), diag_start);
            let del = (cur[i - 1].0 + 1, cur[i - 1].1); // skip a char of `want`
            let ins = (prev[i].0 + 1, prev[i].1); // skip a char of `text`
            // Ties prefer the diagonal, so the substring is not padded.
            let mut cell = sub;
            for c in [del, ins] {
                if c.0 < cell.0 {
                    cell = c;
                }
            }
            cur.push(cell);
        }
        if cur[m].0 < best.0 && can_end(j + 1) {
            best = (cur[m].0, cur[m].1, j + 1);
        }
        prev = cur;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(expected: &[(&str, &str)], reads: &[&str], tolerance: f64) -> Readback {
        let expected: Vec<ExpectedString> = expected
            .iter()
            .map(|(c, e)| ExpectedString {
                column: Some(c.to_string()),
                text: e.to_string(),
                source: StringSource::Column,
            })
            .collect();
        let reads: Vec<String> = reads.iter().map(|r| r.to_string()).collect();
        Readback::check(&expected, &reads, tolerance)
    }

    fn one(expected: &str, reads: &[&str], tolerance: f64) -> StringCheck {
        let r = check(&[("headline", expected)], reads, tolerance);
        assert_eq!(r.checks.len(), 1);
        r.checks[0].clone()
    }

    #[test]
    fn nfc_and_nfd_spellings_are_equal() {
        let nfd = "Fu\u{0308}r dich"; // u + combining diaeresis
        assert_eq!(normalize(nfd), "Für dich");
        let c = one("Für dich", &[nfd], 0.0);
        assert_eq!(c.cer, 0.0);
        assert_eq!(c.read.as_deref(), Some("Für dich"));
    }

    #[test]
    fn curly_and_straight_quotes_are_equal() {
        assert_eq!(normalize("It\u{2019}s \u{201C}new\u{201D}"), "It's \"new\"");
        assert_eq!(
            normalize("\u{201E}Neu\u{201C} \u{201A}x\u{2018}"),
            "\"Neu\" 'x'"
        );
        assert_eq!(normalize("6\u{2032}2\u{2033}"), "6'2\"");
        assert!(
            check(
                &[("cta", "Don't miss \"it\"")],
                &["Don\u{2019}t miss \u{201C}it\u{201D}"],
                0.0
            )
            .pass()
        );
    }

    #[test]
    fn guillemets_are_not_folded_into_quotes() {
        assert_eq!(normalize("«Neu»"), "«Neu»");
        assert!(!check(&[("h", "\"Neu\"")], &["«Neu»"], 0.0).pass());
    }

    #[test]
    fn cjk_corner_brackets_are_double_quotes() {
        assert_eq!(normalize("「新登場」『限定』"), "\"新登場\"\"限定\"");
        assert_eq!(normalize("﹁縦﹂﹃書き﹄"), "\"縦\"\"書き\"");
        assert!(check(&[("h", "\u{201C}新登場\u{201D}")], &["「新登場」"], 0.0).pass());
    }

    #[test]
    fn whitespace_runs_and_line_breaks_collapse_to_one_space() {
        assert_eq!(
            normalize("  Own\u{00A0}the\n\n ridge.\u{3000}Shop\r\nnow\t "),
            "Own the ridge. Shop now"
        );
        assert!(check(&[("h", "Own the ridge.")], &["Own   the\nridge."], 0.0).pass());
    }

    #[test]
    fn case_and_accents_matter() {
        let c = one("Grat", &["grat"], 0.0);
        assert_eq!(c.cer, 0.25);
        assert!(!c.within(0.0));
        let c = one("für", &["fur"], 0.0);
        assert!(!c.within(0.0), "{c:?}");
        assert!((c.cer - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_string_inside_a_longer_read_passes_with_the_substring_as_read() {
        let r = check(
            &[("headline", "Own the ridge."), ("cta", "Shop now")],
            &["Own the ridge. Shop now"],
            0.0,
        );
        assert!(r.pass(), "{r:?}");
        assert_eq!(r.checks[0].read.as_deref(), Some("Own the ridge."));
        assert_eq!(r.checks[1].read.as_deref(), Some("Shop now"));
    }

    #[test]
    fn a_string_split_across_two_reads_passes() {
        let c = one(
            "Own the ridge this winter",
            &["Own the ridge", "this winter", "Shop now"],
            0.0,
        );
        assert_eq!(c.cer, 0.0);
        assert_eq!(c.read.as_deref(), Some("Own the ridge this winter"));
    }

    #[test]
    fn tolerance_0_1_lets_one_typo_in_ten_chars_pass_but_not_two() {
        // "Shop today" is 10 chars.
        let one_typo = one("Shop today", &["Shop todav"], 0.1);
        assert!((one_typo.cer - 0.1).abs() < 1e-12);
        assert!(one_typo.within(0.1));
        let two_typos = one("Shop today", &["Sh0p todav"], 0.1);
        assert!((two_typos.cer - 0.2).abs() < 1e-12);
        assert!(!two_typos.within(0.1));
        assert!(!check(&[("cta", "Shop today")], &["Sh0p todav"], 0.1).pass());
    }

    #[test]
    fn japanese_arabic_and_korean_copy_match_exactly_and_catch_a_wrong_char() {
        assert!(
            check(
                &[("h", "冬の山を制覇しよう")],
                &["冬の山を制覇しよう 今すぐ購入"],
                0.0
            )
            .pass()
        );
        assert!(!check(&[("h", "冬の山を制覇しよう")], &["冬の山を征覇しよう"], 0.0).pass());
        assert!(check(&[("h", "تسوق الآن")], &["اكتشف القمة", "تسوق الآن"], 0.0).pass());
        assert!(!check(&[("h", "تسوق الآن")], &["تسوق الان"], 0.0).pass());
        // NFD Hangul jamo read back as composed syllables.
        let nfd: String = "지금 구매".nfd().collect();
        assert_ne!(nfd, "지금 구매");
        let c = one("지금 구매", &[&nfd], 0.0);
        assert_eq!(c.cer, 0.0);
        assert!(!check(&[("h", "지금 구매")], &["지금 구메"], 0.0).pass());
    }

    #[test]
    fn an_empty_transcription_fails_with_nothing_read_and_cer_1() {
        for reads in [&[][..], &["", "  \n"][..]] {
            let r = check(&[("headline", "Own the ridge.")], reads, 0.5);
            assert!(!r.pass());
            assert_eq!(r.checks[0].read, None);
            assert_eq!(r.checks[0].cer, 1.0);
        }
    }

    #[test]
    fn empty_expected_copy_is_not_checked() {
        let r = check(
            &[("headline", "Own the ridge."), ("cta", " ")],
            &["Own the ridge."],
            0.0,
        );
        assert_eq!(r.checks.len(), 1);
        assert!(r.pass());
        assert!(check(&[], &[], 0.0).pass());
    }

    #[test]
    fn quoted_strings_take_every_kind_of_double_quote_but_not_apostrophes() {
        assert_eq!(
            quoted_strings(
                "Ad for \"Trail Cub\" with \u{201C}Own the ridge.\u{201D}, 「新登場」, «Neu» and it's 'x' and \"Trail Cub\""
            ),
            ["Trail Cub", "Own the ridge.", "新登場", "Neu"]
        );
        assert!(quoted_strings("unbalanced \"x").is_empty());
        assert!(quoted_strings("empty \"  \" quotes").is_empty());
    }

    fn prompt_check(expected: &str, reads: &[&str], tolerance: f64) -> StringCheck {
        let reads: Vec<String> = reads.iter().map(|r| r.to_string()).collect();
        let e = ExpectedString {
            column: None,
            text: expected.to_string(),
            source: StringSource::Prompt,
        };
        Readback::check(&[e], &reads, tolerance).checks[0].clone()
    }

    #[test]
    fn a_quoted_string_may_be_absent_or_exact_but_not_a_near_miss() {
        // Exact: passes.
        assert!(prompt_check("Trail Cub", &["Trail Cub", "Own the ridge."], 0.0).passes(0.0));
        // Absent (nothing near it was read): passes.
        assert!(prompt_check("Trail Cub", &["Own the ridge. Shop now"], 0.0).passes(0.0));
        assert!(prompt_check("Trail Cub", &[], 0.0).passes(0.0));
        // A misspelling: two edits in nine characters is a near miss.
        let c = prompt_check("Trail Cub", &["Trail Cbu", "Own the ridge."], 0.0);
        assert!(!c.passes(0.0), "{c:?}");
        let c = prompt_check("Mudslinger Pro", &["udslinger Pro"], 0.0);
        assert!(!c.passes(0.0), "{c:?}");
        // Tolerance applies to quoted strings as to columns.
        assert!(prompt_check("Trail Cubs", &["Trail Cub"], 0.1).passes(0.1));
        // Too short to guard: "Go" is one edit from any "o".
        assert!(prompt_check("Go", &["Shop now"], 0.0).passes(0.0));
        // A column string must appear, as before.
        let r = check(&[("headline", "Trail Cub")], &["Own the ridge."], 0.0);
        assert!(!r.pass());
    }

    #[test]
    fn a_match_never_starts_or_ends_inside_a_word() {
        // A doubled last letter or digit is a misspelling, not a longer read.
        let c = one("Trail Cub 9", &["Trail Cub 99"], 0.0);
        assert!(!c.within(0.0), "{c:?}");
        assert!(!one("Shop now", &["Shop noww"], 0.0).within(0.0));
        assert!(!one("Cub", &["XCub"], 0.0).within(0.0));
        // Punctuation and spaces are boundaries.
        assert!(one("Shop now", &["Shop now!"], 0.0).within(0.0));
        assert!(one("ridge", &["Own the ridge."], 0.0).within(0.0));
        // Scripts written without spaces match anywhere in a run.
        assert!(one("冬の山", &["新登場冬の山を制覇"], 0.0).within(0.0));
        assert!(one("สวัสดี", &["ยินดีสวัสดีครับ"], 0.0).within(0.0));
    }

    #[test]
    fn a_check_serializes_with_the_manifest_field_names() {
        let c = one("Shop now", &["Shop now"], 0.0);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"column":"headline","expected":"Shop now","read":"Shop now","cer":0.0,"source":"column"})
        );
    }
}
