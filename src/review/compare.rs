//! The side-by-side view of `adloc compare`: each model's sample image of a
//! cell next to the others', with cost, latency and the copy QA verdict,
//! and the reviewers' votes; and the summary per variant (which model won,
//! at what cost per image, and the `model = [...]` line to use).
//!
//! Decided: a voter's latest vote on a cell counts, and only while the
//! image voted for is still that model's image of the cell (a rerun that
//! replaced it starts the cell's count over for that model).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::{Served, esc, usd};
use crate::domain::{Result, strip_extension};
use crate::expand::compare::COMPARE_INFIX;
use crate::manifest::{AssetEntry, Manifest};
use crate::store::{Store, VoteRow};

/// One model's sample.
#[derive(Debug, Clone)]
pub struct Side {
    /// The model.
    pub model: String,
    /// The sample's campaign name (`<campaign>--compare--<model>`).
    pub campaign: String,
    /// Its latest manifest.
    pub manifest: Manifest,
    /// Call latency by asset path, ms.
    pub latency: HashMap<String, i64>,
}

impl Side {
    fn asset(&self, key: &str) -> Option<&AssetEntry> {
        self.manifest
            .assets
            .iter()
            .find(|a| strip_extension(&a.path) == key)
    }
}

/// Every sample of `campaign` in the state, by model name.
pub async fn sides(store: &Store, campaign: &str) -> Result<Vec<Side>> {
    let prefix = format!("{campaign}{COMPARE_INFIX}");
    let mut out = Vec::new();
    for name in store.campaigns_with_prefix(&prefix).await? {
        let Some(snap) = store.snapshots(&name).await?.into_iter().next() else {
            continue;
        };
        let manifest: Manifest = serde_json::from_str(&snap.json).map_err(|e| {
            crate::domain::Error::Internal(format!("stored manifest of {name}: {e}"))
        })?;
        // The name holds the model with its dots as dashes: the manifest
        // has it as sent.
        let model = manifest
            .assets
            .first()
            .map(|a| a.model.clone())
            .unwrap_or_else(|| name[prefix.len()..].to_string());
        out.push(Side {
            model,
            latency: store.latencies(&name).await?,
            campaign: name,
            manifest,
        });
    }
    Ok(out)
}

/// How one model did on one variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The model.
    pub model: String,
    /// Votes counted.
    pub votes: usize,
    /// Images it made for the variant.
    pub images: usize,
    /// Mean cost per image, USD.
    pub cost_per_image: f64,
    /// Mean call latency, ms (images made by a call).
    pub latency_ms: Option<f64>,
    /// Images whose copy QA passed, of those read.
    pub qa_passed: usize,
    /// Images copy QA read.
    pub qa_read: usize,
}

/// The verdict on one variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The variant.
    pub variant: String,
    /// Every model, most votes first (then cheapest).
    pub scores: Vec<Score>,
    /// The model with the most votes, if one has more than every other.
    pub winner: Option<String>,
    /// The line to put in the variant (or campaign.toml): models in order.
    pub model_line: String,
}

/// The counted votes: per (cell key, model), the voters whose latest vote
/// on the cell is for that model's current image.
fn counted(sides: &[Side], votes: &[VoteRow]) -> HashMap<(String, String), usize> {
    let mut latest: HashMap<(String, String), &VoteRow> = HashMap::new();
    for v in votes {
        let key = format!("{}/{}/{}", v.vote.locale, v.vote.variant, v.vote.row_id);
        latest.insert((key, v.vote.voter.clone()), v);
    }
    let mut out = HashMap::new();
    for ((key, _), v) in latest {
        let current = sides
            .iter()
            .find(|s| s.model == v.vote.model)
            .and_then(|s| s.asset(&key))
            .is_some_and(|a| a.sha256 == v.vote.sha256);
        if current {
            *out.entry((key, v.vote.model.clone())).or_default() += 1;
        }
    }
    out
}

/// The verdict per variant.
pub fn verdicts(sides: &[Side], votes: &[VoteRow]) -> Vec<Verdict> {
    let counts = counted(sides, votes);
    let variants: BTreeSet<&str> = sides
        .iter()
        .flat_map(|s| s.manifest.assets.iter().map(|a| a.variant.as_str()))
        .collect();
    let mut out = Vec::new();
    for variant in variants {
        let mut scores: Vec<Score> = sides
            .iter()
            .map(|s| {
                let assets: Vec<&AssetEntry> = s
                    .manifest
                    .assets
                    .iter()
                    .filter(|a| a.variant == variant)
                    .collect();
                let lat: Vec<i64> = assets
                    .iter()
                    .filter_map(|a| s.latency.get(&a.path).copied())
                    .collect();
                let n = assets.len();
                Score {
                    model: s.model.clone(),
                    votes: assets
                        .iter()
                        .map(|a| {
                            counts
                                .get(&(strip_extension(&a.path).to_string(), s.model.clone()))
                                .copied()
                                .unwrap_or(0)
                        })
                        .sum(),
                    images: n,
                    cost_per_image: if n == 0 {
                        0.0
                    } else {
                        assets.iter().map(|a| a.cost_usd).sum::<f64>() / n as f64
                    },
                    latency_ms: (!lat.is_empty())
                        .then(|| lat.iter().sum::<i64>() as f64 / lat.len() as f64),
                    qa_passed: assets
                        .iter()
                        .filter(|a| a.qa.as_ref().is_some_and(|q| q.verdict == "pass"))
                        .count(),
                    qa_read: assets
                        .iter()
                        .filter(|a| a.qa.as_ref().is_some_and(|q| q.reads > 0))
                        .count(),
                }
            })
            .collect();
        scores.sort_by(|a, b| {
            b.votes
                .cmp(&a.votes)
                .then(a.cost_per_image.total_cmp(&b.cost_per_image))
                .then(a.model.cmp(&b.model))
        });
        let winner = match (scores.first(), scores.get(1)) {
            (Some(a), Some(b)) if a.votes > b.votes => Some(a.model.clone()),
            (Some(a), None) if a.votes > 0 => Some(a.model.clone()),
            _ => None,
        };
        let model_line = format!(
            "model = [{}]",
            scores
                .iter()
                .map(|s| format!("\"{}\"", s.model))
                .collect::<Vec<_>>()
                .join(", ")
        );
        out.push(Verdict {
            variant: variant.to_string(),
            scores,
            winner,
            model_line,
        });
    }
    out
}

/// The side-by-side page (served only: votes need the server).
pub fn page(campaign: &str, sides: &[Side], votes: &[VoteRow], served: &Served<'_>) -> String {
    let counts = counted(sides, votes);
    let mut cells: BTreeMap<(String, String, String), ()> = BTreeMap::new();
    for s in sides {
        for a in &s.manifest.assets {
            cells.insert((a.row_id.clone(), a.locale.clone(), a.variant.clone()), ());
        }
    }
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"csrf-token\" content=\"{csrf}\"><title>Compare models: {c}</title><style>{STYLE}</style></head><body>\
         <header><h1>Compare models: {c}</h1><p>reviewing as <b>{r}</b> · <a href=\"/review/\">review page</a></p></header><main>",
        csrf = esc(served.csrf),
        c = esc(campaign),
        r = esc(served.reviewer),
    );
    html.push_str("<section id=\"summary\"><h2>Summary per variant</h2><table><thead><tr><th>variant</th><th>model</th><th>votes</th><th>images</th><th>cost per image</th><th>latency</th><th>copy QA passed</th></tr></thead><tbody>");
    for v in verdicts(sides, votes) {
        for s in &v.scores {
            let _ = write!(
                html,
                "<tr data-variant=\"{vn}\" data-model=\"{m}\"{win}><td>{vn}</td><td>{m}{wl}</td><td class=\"votes\">{votes}</td><td>{n}</td><td>{cost}</td><td>{lat}</td><td>{qp}/{qr}</td></tr>",
                vn = esc(&v.variant),
                m = esc(&s.model),
                win = if v.winner.as_deref() == Some(s.model.as_str()) {
                    " class=\"winner\""
                } else {
                    ""
                },
                wl = if v.winner.as_deref() == Some(s.model.as_str()) {
                    " (winner)"
                } else {
                    ""
                },
                votes = s.votes,
                n = s.images,
                cost = usd(s.cost_per_image),
                lat = s
                    .latency_ms
                    .map_or("–".to_string(), |l| format!("{:.0} ms", l)),
                qp = s.qa_passed,
                qr = s.qa_read,
            );
        }
        let _ = write!(
            html,
            "<tr><td colspan=\"7\"><code class=\"model-line\" data-variant=\"{}\">{}</code></td></tr>",
            esc(&v.variant),
            esc(&v.model_line)
        );
    }
    html.push_str("</tbody></table></section><section id=\"grid\"><h2>Side by side</h2><table><thead><tr><th>cell</th>");
    for s in sides {
        let _ = write!(html, "<th>{}</th>", esc(&s.model));
    }
    html.push_str("</tr></thead><tbody>");
    for (row, locale, variant) in cells.keys() {
        let key = format!("{locale}/{variant}/{row}");
        let _ = write!(html, "<tr><th scope=\"row\">{}</th>", esc(&key));
        for s in sides {
            match s.asset(&key) {
                Some(a) => {
                    let n = counts
                        .get(&(key.clone(), s.model.clone()))
                        .copied()
                        .unwrap_or(0);
                    let _ = write!(
                        html,
                        "<td class=\"cell\" tabindex=\"0\" data-asset=\"{k}\" data-model=\"{m}\" data-sha256=\"{sha}\" aria-label=\"{k} by {m}\">\
                         <a href=\"/compare/{m}/{p}\"><img src=\"/compare/{m}/{p}\" loading=\"lazy\" alt=\"{k} by {m}\"></a>\
                         <ul class=\"meta\"><li class=\"cost\">{cost}</li><li class=\"latency\">{lat}</li><li class=\"qa\">QA {qa}</li><li class=\"votes\">{n} vote{s}</li></ul>\
                         <button type=\"button\" data-action=\"vote\" aria-label=\"Vote for {m} on {k}\">Vote</button></td>",
                        k = esc(&key),
                        m = esc(&s.model),
                        sha = esc(&a.sha256),
                        p = esc(&a.path),
                        cost = usd(a.cost_usd),
                        lat = s
                            .latency
                            .get(&a.path)
                            .map_or("–".to_string(), |l| format!("{l} ms")),
                        qa = a.qa.as_ref().map_or("off", |q| q.verdict.as_str()),
                        s = if n == 1 { "" } else { "s" },
                    );
                }
                None => html.push_str("<td class=\"cell missing\">not made</td>"),
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></section><p id=\"status\" role=\"status\" aria-live=\"polite\"></p></main>");
    html.push_str(SCRIPT);
    html.push_str("</body></html>");
    html
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0 20px}td.cell{vertical-align:top;border:1px solid #dde;padding:6px}\
td.cell img{max-width:240px;max-height:170px;display:block}.meta{list-style:none;padding:0;font-size:12px}\
.meta li{display:inline;margin-right:8px}tr.winner{font-weight:700}td.cell:focus{outline:3px solid #2b6cb0}";

const SCRIPT: &str = r#"<script>(function () {
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  document.addEventListener('click', function (e) {
    var b = e.target.closest ? e.target.closest('button[data-action="vote"]') : null;
    if (!b) { return; }
    var c = b.closest('td.cell');
    fetch('/api/vote', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ asset: c.dataset.asset, model: c.dataset.model, sha256: c.dataset.sha256 })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { throw new Error(j.error || ('HTTP ' + r.status)); }
        location.reload();
      });
    }).catch(function (err) { document.getElementById('status').textContent = err.message; });
  });
})();</script>"#;
