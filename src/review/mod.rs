//! The review sheet: `<out>/<campaign>/review/index.html`, one
//! self-contained page a reviewer opens from `file://`. No network, no
//! external script, style sheet or font: everything it needs is inline,
//! and the images it shows are small JPEG thumbnails made for it under
//! `review/thumbs/` (a master is never inlined; the thumbnail links to it).
//!
//! [`build`] is pure: the manifest (with approvals), the previous run's
//! manifest, the decision history and the spend go in; the HTML and the
//! list of thumbnails to make come out. [`write`] makes the thumbnails
//! (named by the master's SHA-256, so an unchanged asset's thumbnail is
//! never made twice) and writes the page atomically.
//!
//! Decisions recorded here:
//! - The filters run in the page's own script, on `data-*` attributes of
//!   each cell, and start from the URL fragment (`index.html#state=failed&
//!   locale=de-DE`), which they also keep up to date: a filtered view can
//!   be bookmarked or sent, and a headless browser's DOM dump shows it.
//! - Every piece of copy, path, note and detail is HTML-escaped (copy may
//!   hold `<`, `&` and quotes); copy elements carry `lang` and the
//!   locale's `dir`, so Arabic or Hebrew copy reads right to left.
//! - "New" means not in the previous run's manifest with the same file
//!   (assets) or the same reason (failures); on a first run all is new.

pub mod compare;
mod decisions;
pub mod serve;
mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

pub use decisions::{Request, from_args, parse_csv, resolve};
pub use write::{prepare_thumbnail, write};

use crate::domain::readback::StringSource;
use crate::domain::{ApprovalState, Locale, strip_extension};
use crate::manifest::{AssetEntry, FailureEntry, Manifest};
use crate::store::DecisionRow;

/// Longer side of a thumbnail, in pixels: a provider's preview is one.
pub const THUMB_SIDE: u32 = crate::imaging::PREVIEW_SIDE;

/// What the page is built from.
#[derive(Debug, Clone, Copy)]
pub struct Sheet<'a> {
    /// The campaign's manifest as of the latest run, approvals applied.
    pub manifest: &'a Manifest,
    /// The manifest of the run before, if there was one.
    pub previous: Option<&'a Manifest>,
    /// Every decision, oldest first.
    pub decisions: &'a [DecisionRow],
    /// What the latest run spent, USD.
    pub spent_this_run: f64,
    /// What every run of the campaign spent, USD.
    pub spent_total: f64,
}

/// One thumbnail the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumb {
    /// The master, relative to the campaign's output folder.
    pub source: String,
    /// The thumbnail's file name under `review/thumbs/`.
    pub file: String,
}

/// The built page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The whole document.
    pub html: String,
    /// Thumbnails it refers to.
    pub thumbs: Vec<Thumb>,
}

/// The state a cell shows and filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CellState {
    Asset(ApprovalState),
    Failed,
    Blocked,
    /// No asset and no failure: still being made.
    Waiting,
}

impl CellState {
    fn code(self) -> &'static str {
        match self {
            CellState::Asset(a) => a.as_str(),
            CellState::Failed => "failed",
            CellState::Blocked => "blocked",
            CellState::Waiting => "waiting",
        }
    }

    fn label(self) -> &'static str {
        match self {
            CellState::Asset(ApprovalState::Pending) => "awaiting approval",
            CellState::Asset(ApprovalState::Approved) => "approved",
            CellState::Asset(ApprovalState::Rejected) => "rejected",
            CellState::Failed => "failed",
            CellState::Blocked => "blocked",
            CellState::Waiting => "not made yet",
        }
    }
}

/// HTML-escape text for element content and quoted attributes alike.
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_quoted_attribute(s)
}

fn usd(x: f64) -> String {
    format!("${x:.4}")
}

/// `ltr` or `rtl` for a locale tag (unparsable tags read left to right).
fn direction(cache: &mut HashMap<String, &'static str>, tag: &str) -> &'static str {
    cache
        .entry(tag.to_string())
        .or_insert_with(|| match Locale::parse(tag) {
            Ok(l) if l.info().direction == "rtl" => "rtl",
            _ => "ltr",
        })
}

/// The identity of a cell: `locale/variant/row`, the asset path without
/// its extension.
fn cell_key(locale: &str, variant: &str, row: &str) -> String {
    format!("{locale}/{variant}/{row}")
}

/// The thumbnail file of a master.
fn thumb_file(sha256: &str) -> String {
    format!("{sha256}.jpg")
}

/// What changed between two manifests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Changes {
    first_run: bool,
    added: usize,
    changed: usize,
    removed: usize,
    new_failures: usize,
    resolved_failures: usize,
}

fn failure_id(f: &FailureEntry) -> (String, String, String, String, String) {
    (
        f.row_id.clone(),
        f.locale.clone(),
        f.variant.clone(),
        f.reason.code().to_string(),
        f.rendition.clone().unwrap_or_default(),
    )
}

fn changes(now: &Manifest, before: Option<&Manifest>) -> Changes {
    let Some(before) = before else {
        return Changes {
            first_run: true,
            added: now.assets.len(),
            new_failures: now.failures.len(),
            ..Changes::default()
        };
    };
    let old: HashMap<&str, &str> = before
        .assets
        .iter()
        .map(|a| (a.path.as_str(), a.sha256.as_str()))
        .collect();
    let current: HashSet<&str> = now.assets.iter().map(|a| a.path.as_str()).collect();
    let mut c = Changes::default();
    for a in &now.assets {
        match old.get(a.path.as_str()) {
            None => c.added += 1,
            Some(sha) if *sha != a.sha256 => c.changed += 1,
            Some(_) => {}
        }
    }
    c.removed = old.keys().filter(|p| !current.contains(*p)).count();
    let old_f: HashSet<_> = before.failures.iter().map(failure_id).collect();
    let new_f: HashSet<_> = now.failures.iter().map(failure_id).collect();
    c.new_failures = new_f.difference(&old_f).count();
    c.resolved_failures = old_f.difference(&new_f).count();
    c
}

/// One cell of a row's grid.
struct Cell<'a> {
    asset: Option<&'a AssetEntry>,
    failure: Option<&'a FailureEntry>,
    /// Rendition failures of the asset.
    rendition_failures: Vec<&'a FailureEntry>,
}

impl Cell<'_> {
    fn state(&self) -> CellState {
        match (self.asset, self.failure) {
            (Some(a), _) => CellState::Asset(
                a.approval
                    .as_ref()
                    .map_or(ApprovalState::Pending, |x| x.state),
            ),
            (None, Some(f)) if f.state == "blocked" => CellState::Blocked,
            (None, Some(_)) => CellState::Failed,
            (None, None) => CellState::Waiting,
        }
    }
}

/// What the review server adds to the page: the reviewer, the session's
/// anti-CSRF token and the state version the page was built from.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    /// Who decisions are recorded as (from the login, never the browser).
    pub reviewer: &'a str,
    /// The session's anti-CSRF token, sent back with every POST.
    pub csrf: &'a str,
    /// The state version (see `Store::review_version`) the page shows.
    pub version: &'a str,
}

/// Build the page.
pub fn build(sheet: &Sheet<'_>) -> Page {
    build_with(sheet, None)
}

/// Build the page, with the review server's controls when `served` is set:
/// focusable cells naming their asset (`data-asset`), each with its own
/// approve / reject / undo buttons and note field, bulk actions over the
/// filtered cells, and the script that posts decisions and follows the
/// state. Without it, the static page `review/index.html` (a file to share).
pub fn build_with(sheet: &Sheet<'_>, served: Option<&Served<'_>>) -> Page {
    let m = sheet.manifest;
    let mut dirs = HashMap::new();
    // Rows, locales and variants in a stable order: the manifest's (rows
    // and locales sorted), variants by name.
    let mut rows: Vec<&str> = Vec::new();
    let mut locales: BTreeSet<&str> = BTreeSet::new();
    let mut variants: BTreeSet<&str> = BTreeSet::new();
    let mut cells: BTreeMap<(&str, &str, &str), Cell<'_>> = BTreeMap::new();
    for a in &m.assets {
        locales.insert(&a.locale);
        variants.insert(&a.variant);
        if !rows.contains(&a.row_id.as_str()) {
            rows.push(&a.row_id);
        }
        cells
            .entry((&a.row_id, &a.locale, &a.variant))
            .or_insert_with(|| Cell {
                asset: None,
                failure: None,
                rendition_failures: Vec::new(),
            })
            .asset = Some(a);
    }
    for f in &m.failures {
        locales.insert(&f.locale);
        variants.insert(&f.variant);
        if !rows.contains(&f.row_id.as_str()) {
            rows.push(&f.row_id);
        }
        let cell = cells
            .entry((&f.row_id, &f.locale, &f.variant))
            .or_insert_with(|| Cell {
                asset: None,
                failure: None,
                rendition_failures: Vec::new(),
            });
        if f.rendition.is_some() {
            cell.rendition_failures.push(f);
        } else {
            cell.failure = Some(f);
        }
    }
    rows.sort_unstable();

    let previous_assets: HashSet<(&str, &str)> = sheet
        .previous
        .map(|p| {
            p.assets
                .iter()
                .map(|a| (a.path.as_str(), a.sha256.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let previous_failures: HashSet<_> = sheet
        .previous
        .map(|p| p.failures.iter().map(failure_id).collect())
        .unwrap_or_default();
    let is_new = |c: &Cell<'_>| -> bool {
        if sheet.previous.is_none() {
            return c.asset.is_some() || c.failure.is_some();
        }
        match (c.asset, c.failure) {
            (Some(a), _) => !previous_assets.contains(&(a.path.as_str(), a.sha256.as_str())),
            (None, Some(f)) => !previous_failures.contains(&failure_id(f)),
            (None, None) => false,
        }
    };
    let mut history: HashMap<String, Vec<&DecisionRow>> = HashMap::new();
    for d in sheet.decisions {
        history
            .entry(strip_extension(&d.asset_path).to_string())
            .or_default()
            .push(d);
    }

    let mut thumbs = Vec::new();
    let mut body = String::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut new_count = 0;
    for row in &rows {
        let _ = write!(
            body,
            "<section class=\"row\" data-row=\"{r}\"><h2>{r}</h2><table><thead><tr><th>locale</th>",
            r = esc(row)
        );
        for v in &variants {
            let _ = write!(body, "<th>{}</th>", esc(v));
        }
        body.push_str("</tr></thead><tbody>");
        for l in &locales {
            let dir = direction(&mut dirs, l);
            let _ = write!(
                body,
                "<tr class=\"locale\" data-locale=\"{l}\"><th scope=\"row\" lang=\"{l}\">{l}</th>",
                l = esc(l)
            );
            for v in &variants {
                let empty = Cell {
                    asset: None,
                    failure: None,
                    rendition_failures: Vec::new(),
                };
                let cell = cells.get(&(*row, *l, *v)).unwrap_or(&empty);
                let state = cell.state();
                let new = is_new(cell);
                *counts.entry(state.code()).or_default() += 1;
                new_count += usize::from(new);
                let key = cell_key(l, v, row);
                let hist = history.get(&key).map(Vec::as_slice).unwrap_or_default();
                cell_html(
                    &mut body,
                    cell,
                    state,
                    new,
                    &key,
                    dir,
                    l,
                    v,
                    row,
                    hist,
                    &mut thumbs,
                    served.is_some(),
                );
            }
            body.push_str("</tr>");
        }
        body.push_str("</tbody></table></section>");
    }

    let mut html = String::with_capacity(body.len() + 16_384);
    // Served, the page also talks to its own server (and nothing else).
    let (connect, extra_head) = match served {
        None => ("", String::new()),
        Some(s) => (
            "; connect-src 'self'",
            format!(
                "<meta name=\"csrf-token\" content=\"{}\"><meta name=\"adloc-version\" content=\"{}\">",
                esc(s.csrf),
                esc(s.version)
            ),
        ),
    };
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'{connect}\">\
         {extra_head}<title>Review: {c}</title><style>{STYLE}{style}</style></head><body>",
        c = esc(&m.campaign),
        style = if served.is_some() { serve::STYLE } else { "" },
    );
    summary_html(
        &mut html,
        sheet,
        &counts,
        new_count,
        &changes(m, sheet.previous),
    );
    filters_html(&mut html, &locales, &variants);
    if let Some(s) = served {
        serve::controls_html(&mut html, s);
    }
    html.push_str("<main id=\"grid\">");
    html.push_str(&body);
    html.push_str("</main>");
    let _ = writeln!(
        html,
        "<script>{SCRIPT}</script>{}</body></html>",
        if served.is_some() {
            serve::SCRIPT_TAG
        } else {
            ""
        }
    );
    Page { html, thumbs }
}

#[allow(clippy::too_many_arguments)]
fn cell_html(
    out: &mut String,
    cell: &Cell<'_>,
    state: CellState,
    new: bool,
    key: &str,
    dir: &str,
    locale: &str,
    variant: &str,
    row: &str,
    history: &[&DecisionRow],
    thumbs: &mut Vec<Thumb>,
    served: bool,
) {
    let _ = write!(
        out,
        "<td class=\"cell state-{s}\" data-key=\"{k}\" data-locale=\"{l}\" data-variant=\"{v}\" data-row=\"{r}\" data-state=\"{s}\" data-new=\"{n}\"",
        s = state.code(),
        k = esc(key),
        l = esc(locale),
        v = esc(variant),
        r = esc(row),
        n = u8::from(new),
    );
    if served {
        serve::cell_attrs(out, key, cell.asset);
    }
    out.push('>');
    if served && let Some(a) = cell.asset {
        serve::cell_controls(out, key, a);
    }
    let _ = write!(
        out,
        "<div class=\"badges\"><span class=\"badge {s}\">{label}</span>{newb}</div>",
        s = state.code(),
        label = state.label(),
        newb = if new {
            "<span class=\"badge new\">new</span>"
        } else {
            ""
        }
    );
    let copy = match (cell.asset, cell.failure) {
        (Some(a), _) => {
            let file = thumb_file(&a.sha256);
            let _ = write!(
                out,
                "<a class=\"thumb\" href=\"../{p}\"><img src=\"thumbs/{f}\" alt=\"{k}\"></a>",
                p = esc(&a.path),
                f = esc(&file),
                k = esc(key)
            );
            thumbs.push(Thumb {
                source: a.path.clone(),
                file,
            });
            if served {
                serve::previous_html(out, a);
            }
            placements_html(out, a);
            Some(&a.copy)
        }
        (None, Some(f)) => {
            let _ = write!(
                out,
                "<div class=\"reason\"><code class=\"code\">{code}</code>{block}<p class=\"detail\">{d}</p></div>",
                code = esc(f.reason.code()),
                block = f.block_reason.as_deref().map_or(String::new(), |b| format!(
                    " <code class=\"block\">{}</code>",
                    esc(b)
                )),
                d = esc(&f.detail)
            );
            Some(&f.copy)
        }
        (None, None) => {
            out.push_str("<div class=\"reason\"><p class=\"detail\">no image yet: pending, in flight or in a batch</p></div>");
            None
        }
    };
    if let Some(copy) = copy.filter(|c| !c.is_empty()) {
        let _ = write!(
            out,
            "<dl class=\"copy\" lang=\"{l}\" dir=\"{dir}\">",
            l = esc(locale)
        );
        for (col, text) in copy {
            let _ = write!(
                out,
                "<dt dir=\"ltr\">{}</dt><dd>{}</dd>",
                esc(col),
                esc(text)
            );
        }
        out.push_str("</dl>");
    }
    let qa = cell
        .asset
        .and_then(|a| a.qa.as_ref())
        .or_else(|| cell.failure.and_then(|f| f.qa.as_ref()));
    if let Some(q) = qa {
        let _ = write!(
            out,
            "<div class=\"qa\"><span class=\"qa-verdict\">QA {v}</span> ({n} read{s}, {g} regeneration{gs})",
            v = esc(&q.verdict),
            n = q.reads,
            s = if q.reads == 1 { "" } else { "s" },
            g = q.regenerations,
            gs = if q.regenerations == 1 { "" } else { "s" },
        );
        if !q.strings.is_empty() {
            let _ = write!(
                out,
                "<dl class=\"read\" lang=\"{l}\" dir=\"{dir}\">",
                l = esc(locale)
            );
            for sc in &q.strings {
                let _ = write!(
                    out,
                    "<dt dir=\"ltr\">{c} read (CER {cer:.2})</dt><dd>{r}</dd>",
                    c = match (sc.source, &sc.column) {
                        (StringSource::Column, _) => esc(sc.label()).into_owned(),
                        (StringSource::Prompt, Some(col)) => format!("{} (quoted)", esc(col)),
                        (StringSource::Prompt, None) => {
                            format!("\u{201C}{}\u{201D} (quoted)", esc(&sc.expected))
                        }
                    },
                    cer = sc.cer,
                    r = sc.read.as_deref().map_or_else(
                        || "<i>nothing read</i>".to_string(),
                        |t| esc(t).into_owned()
                    )
                );
            }
            out.push_str("</dl>");
        }
        out.push_str("</div>");
    }
    if let Some(a) = cell.asset {
        meta_html(out, a);
        for rf in &cell.rendition_failures {
            let _ = write!(
                out,
                "<p class=\"rendition-failure\"><code class=\"code\">{c}</code> {p}: {d}</p>",
                c = esc(rf.reason.code()),
                p = esc(rf.rendition.as_deref().unwrap_or_default()),
                d = esc(&rf.detail)
            );
        }
        if let Some(ap) = &a.approval
            && ap.state != ApprovalState::Pending
        {
            let _ = write!(
                out,
                "<p class=\"decision\">{s} by {b} at {t}{n}</p>",
                s = ap.state,
                b = esc(ap.by.as_deref().unwrap_or("?")),
                t = esc(ap.at.as_deref().unwrap_or("?")),
                n = ap.note.as_deref().map_or(String::new(), |n| format!(
                    ": <q dir=\"auto\">{}</q>",
                    esc(n)
                ))
            );
        }
    } else if let Some(f) = cell.failure {
        let _ = write!(
            out,
            "<ul class=\"meta\"><li>{st} after {n} attempt{s}</li></ul>",
            st = esc(&f.state),
            n = f.attempts,
            s = if f.attempts == 1 { "" } else { "s" }
        );
    }
    if !history.is_empty() {
        let current = cell.asset.map(|a| a.sha256.as_str());
        let _ = write!(
            out,
            "<details class=\"history\"><summary>decisions ({})</summary><ol>",
            history.len()
        );
        for d in history {
            let earlier = if Some(d.sha256.as_str()) == current {
                ""
            } else {
                " (an earlier image)"
            };
            let _ = write!(
                out,
                "<li>{s} by {b} at {t}{e}{n}</li>",
                s = d.state,
                b = esc(&d.by),
                t = esc(&jiff::Timestamp::from_millisecond(d.at)
                    .map_or_else(|_| d.at.to_string(), |t| t.to_string())),
                e = earlier,
                n = d.note.as_deref().map_or(String::new(), |n| format!(
                    ": <q dir=\"auto\">{}</q>",
                    esc(n)
                ))
            );
        }
        out.push_str("</ol></details>");
    }
    out.push_str("</td>");
}

/// Each placement of an asset as it will ship, with the part the
/// platform's interface covers shaded (the "safe areas" switch hides the
/// shading), so a reviewer sees painted copy that would sit under it.
fn placements_html(out: &mut String, a: &AssetEntry) {
    if a.placements.is_empty() {
        return;
    }
    out.push_str("<div class=\"placements\">");
    for p in &a.placements {
        let _ = write!(
            out,
            "<figure class=\"placement\" data-placement=\"{id}\"><a href=\"../{path}\" class=\"frame\" style=\"aspect-ratio:{w}/{h}\"><img src=\"../{path}\" loading=\"lazy\" alt=\"{id} {w}x{h}\">",
            id = esc(&p.placement),
            path = esc(&p.path),
            w = p.width,
            h = p.height,
        );
        if let Some(s) = &p.safe_area {
            let _ = write!(
                out,
                "<span class=\"safe\" title=\"outside this box the platform's interface covers the ad\" style=\"top:{t:.2}%;bottom:{b:.2}%;left:{l:.2}%;right:{r:.2}%\"></span>",
                t = s.top * 100.0,
                b = s.bottom * 100.0,
                l = s.left * 100.0,
                r = s.right * 100.0
            );
        }
        let _ = write!(
            out,
            "</a><figcaption>{id} · {kb:.0} KB{q}{up}</figcaption></figure>",
            id = esc(&p.placement),
            kb = p.bytes as f64 / 1024.0,
            q = p.quality.map_or(String::new(), |q| format!(" · q{q}")),
            up = if p.upscaled { " · upscaled" } else { "" }
        );
    }
    out.push_str("</div>");
}

fn meta_html(out: &mut String, a: &AssetEntry) {
    let fallback = match (&a.fallback_from, a.fallback_reason) {
        (Some(from), Some(r)) => format!(
            "<li class=\"fallback\">fallback from {} ({})</li>",
            esc(from),
            esc(r.code())
        ),
        (Some(from), None) => format!("<li class=\"fallback\">fallback from {}</li>", esc(from)),
        _ => String::new(),
    };
    let _ = write!(
        out,
        "<ul class=\"meta\"><li class=\"model\">{model}</li><li class=\"provider\">{provider}</li>{fallback}\
         <li class=\"mode\">{mode}</li><li class=\"cost\">{cost}</li><li class=\"revision\">revision {rev}</li>\
         <li class=\"size\">{w}×{h}</li>{overlay}</ul>",
        model = esc(&a.model),
        provider = esc(&a.provider),
        mode = esc(&a.mode),
        cost = usd(a.cost_usd),
        rev = a.revision,
        w = a.width,
        h = a.height,
        overlay = if a.overlay.is_some() {
            "<li>copy typeset by adloc</li>"
        } else {
            ""
        },
    );
}

fn summary_html(
    out: &mut String,
    sheet: &Sheet<'_>,
    counts: &BTreeMap<&'static str, usize>,
    new_count: usize,
    ch: &Changes,
) {
    let m = sheet.manifest;
    let t = &m.totals;
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    let _ = write!(
        out,
        "<header><h1>Review: {c}</h1><p class=\"generated\">manifest of {g}</p><div class=\"summary\">\
         <section><h3>States</h3><table id=\"counts\">\
         <tr><th>awaiting approval</th><td data-count=\"pending\">{p}</td></tr>\
         <tr><th>approved</th><td data-count=\"approved\">{a}</td></tr>\
         <tr><th>rejected</th><td data-count=\"rejected\">{r}</td></tr>\
         <tr><th>failed</th><td data-count=\"failed\">{f}</td></tr>\
         <tr><th>blocked</th><td data-count=\"blocked\">{b}</td></tr>\
         <tr><th>not made yet</th><td data-count=\"waiting\">{w}</td></tr>\
         <tr><th>retired</th><td>{ret}</td></tr></table></section>",
        c = esc(&m.campaign),
        g = esc(&m.generated_at),
        p = n("pending"),
        a = n("approved"),
        r = n("rejected"),
        f = n("failed"),
        b = n("blocked"),
        w = n("waiting"),
        ret = t.retired,
    );
    let _ = write!(
        out,
        "<section><h3>Spend</h3><table id=\"spend\">\
         <tr><th>this run</th><td>{run}</td></tr><tr><th>all runs</th><td>{all}</td></tr>\
         <tr><th>current assets</th><td>{cur}</td></tr><tr><th>copy QA reads</th><td>{qa}</td></tr></table></section>",
        run = usd(sheet.spent_this_run),
        all = usd(sheet.spent_total),
        cur = usd(t.cost_usd),
        qa = usd(t.qa_cost_usd),
    );
    let _ = write!(
        out,
        "<section><h3>Copy QA</h3><table id=\"qa\">\
         <tr><th>passed first time</th><td>{}</td></tr><tr><th>regenerated</th><td>{}</td></tr>\
         <tr><th>typeset after mismatch</th><td>{}</td></tr><tr><th>failed (text_mismatch)</th><td>{}</td></tr></table></section>",
        t.qa_pass, t.qa_regenerated, t.qa_fell_back_to_overlay, t.qa_failed
    );
    out.push_str("<section><h3>Since the previous run</h3><ul id=\"changes\">");
    if ch.first_run {
        let _ = write!(
            out,
            "<li>first run: {} asset(s), {} failure(s)</li>",
            ch.added, ch.new_failures
        );
    } else {
        let _ = write!(
            out,
            "<li>{} new asset(s)</li><li>{} changed asset(s)</li><li>{} asset(s) gone</li>\
             <li>{} new failure(s)</li><li>{} failure(s) resolved</li>",
            ch.added, ch.changed, ch.removed, ch.new_failures, ch.resolved_failures
        );
    }
    let _ = write!(
        out,
        "<li>{new_count} cell(s) marked new</li></ul></section></div></header>"
    );
}

fn filters_html(out: &mut String, locales: &BTreeSet<&str>, variants: &BTreeSet<&str>) {
    out.push_str("<nav id=\"filters\"><label>locale <select id=\"f-locale\" data-filter=\"locale\"><option value=\"\">all</option>");
    for l in locales {
        let _ = write!(out, "<option value=\"{l}\">{l}</option>", l = esc(l));
    }
    out.push_str("</select></label> <label>variant <select id=\"f-variant\" data-filter=\"variant\"><option value=\"\">all</option>");
    for v in variants {
        let _ = write!(out, "<option value=\"{v}\">{v}</option>", v = esc(v));
    }
    out.push_str(
        "</select></label> <label>state <select id=\"f-state\" data-filter=\"state\">\
         <option value=\"\">all</option><option value=\"new\">new since the last run</option>\
         <option value=\"failed\">failed or blocked</option><option value=\"rejected\">rejected</option>\
         <option value=\"pending\">awaiting approval</option><option value=\"approved\">approved</option>\
         </select></label> <label><input type=\"checkbox\" id=\"f-safe\" checked> safe areas</label> <span id=\"shown\"></span></nav>",
    );
}

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f6;color:#1d1d22}\
header{background:#1f2a44;color:#fff;padding:12px 20px}header h1{margin:0 0 4px;font-size:20px}\
.generated{margin:0 0 8px;opacity:.8}.summary{display:flex;gap:28px;flex-wrap:wrap}\
.summary h3{margin:4px 0;font-size:13px;text-transform:uppercase;letter-spacing:.05em;opacity:.8}\
.summary table{border-collapse:collapse}.summary th{text-align:left;font-weight:normal;padding-right:12px}\
.summary td{text-align:right;font-variant-numeric:tabular-nums}#changes{margin:0;padding-left:18px}\
nav{position:sticky;top:0;background:#fff;padding:8px 20px;border-bottom:1px solid #ccd;z-index:1}\
main{padding:8px 20px}section.row h2{font-size:16px;margin:16px 0 6px}\
table{border-collapse:collapse}section.row th{font-weight:600;padding:4px;text-align:left;vertical-align:top}\
td.cell{vertical-align:top;width:250px;background:#fff;border:1px solid #dde;padding:6px}\
td.cell[hidden]{display:table-cell;visibility:hidden}tr[hidden],section[hidden]{display:none}\
.thumb img{display:block;max-width:240px;max-height:170px;border:1px solid #ccd}\
.badge{display:inline-block;border-radius:3px;padding:0 6px;margin:0 4px 4px 0;font-size:12px;color:#fff;background:#667}\
.badge.pending{background:#b7791f}.badge.approved{background:#2f855a}.badge.rejected{background:#c53030}\
.badge.failed{background:#9b2c2c}.badge.blocked{background:#6b46c1}.badge.waiting{background:#718096}.badge.new{background:#2b6cb0}\
.reason{background:#fff5f5;border:1px dashed #c53030;padding:6px;min-height:60px}.reason .code{font-weight:700}\
.detail{margin:4px 0 0;word-break:break-word}dl{margin:6px 0}dt{font-size:11px;color:#667}dd{margin:0 0 2px}\
.meta{list-style:none;margin:4px 0;padding:0;font-size:12px;color:#445}.meta li{display:inline;margin-right:8px}\
.qa{font-size:12px;margin-top:4px}.decision{font-size:12px;margin:4px 0}.history{font-size:12px}\
.placements{display:flex;flex-wrap:wrap;gap:4px;margin-top:6px}.placement{margin:0;font-size:11px;color:#445}\
.placement .frame{position:relative;display:block;height:90px;overflow:hidden;border:1px solid #ccd}\
.placement img{display:block;height:100%;width:100%}\
.placement .safe{position:absolute;box-shadow:0 0 0 999px rgba(197,48,48,.45);outline:1px dashed #fff}\
body.hide-safe .placement .safe{display:none}";

const SCRIPT: &str = r#"(function () {
  var selects = document.querySelectorAll('select[data-filter]');
  function fromHash() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ''));
    selects.forEach(function (s) { s.value = p.get(s.dataset.filter) || ''; if (s.selectedIndex < 0) { s.value = ''; } });
  }
  function toHash() {
    var p = new URLSearchParams();
    selects.forEach(function (s) { if (s.value) { p.set(s.dataset.filter, s.value); } });
    history.replaceState(null, '', p.toString() ? '#' + p.toString() : location.pathname);
  }
  function wanted(c, f) {
    if (f.locale && c.dataset.locale !== f.locale) { return false; }
    if (f.variant && c.dataset.variant !== f.variant) { return false; }
    switch (f.state) {
      case '': return true;
      case 'new': return c.dataset.new === '1';
      case 'failed': return c.dataset.state === 'failed' || c.dataset.state === 'blocked';
      default: return c.dataset.state === f.state;
    }
  }
  function apply() {
    // Queried each time: the review server swaps the grid in place.
    var cells = document.querySelectorAll('td.cell');
    var f = {};
    selects.forEach(function (s) { f[s.dataset.filter] = s.value; });
    var shown = 0;
    cells.forEach(function (c) { var w = wanted(c, f); c.hidden = !w; if (w) { shown++; } });
    document.querySelectorAll('tr.locale').forEach(function (tr) { tr.hidden = !tr.querySelector('td.cell:not([hidden])'); });
    document.querySelectorAll('section.row').forEach(function (s) { s.hidden = !s.querySelector('td.cell:not([hidden])'); });
    var out = document.getElementById('shown');
    out.textContent = shown + ' of ' + cells.length + ' cells shown';
    out.dataset.shown = shown;
  }
  var safe = document.getElementById('f-safe');
  if (safe) { safe.addEventListener('change', function () { document.body.classList.toggle('hide-safe', !safe.checked); }); }
  selects.forEach(function (s) { s.addEventListener('change', function () { toHash(); apply(); }); });
  window.adlocApply = apply;
  window.addEventListener('hashchange', function () { fromHash(); apply(); });
  fromHash();
  apply();
})();"#;

#[cfg(test)]
mod tests;
