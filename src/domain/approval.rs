//! Review vocabulary: the approval state of an asset, the decisions that
//! move it, and the selectors that name assets on the command line.
//!
//! An asset is the exact file (its SHA-256) made for the exact request (its
//! request SHA-256). A decision is about that asset and nothing else: when a
//! row's copy, the template, the model or a reference changes, the job makes
//! a new asset, which starts over as pending, and the old decision stays in
//! the history. That is why approvals are keyed by hashes, not by path.

use std::fmt;
use std::str::FromStr;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

/// Where an asset stands with its reviewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// No decision about this exact asset yet (awaiting approval).
    Pending,
    /// Approved for delivery.
    Approved,
    /// Rejected, with a note saying why.
    Rejected,
}

impl ApprovalState {
    /// Every state, in display order.
    pub const ALL: [ApprovalState; 3] = [
        ApprovalState::Pending,
        ApprovalState::Approved,
        ApprovalState::Rejected,
    ];

    /// The stored and serialized spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
        }
    }

    /// What a decision does to an asset in this state: the one place the
    /// transitions live. Any decision may overturn any other (a reviewer
    /// changes their mind, a second reviewer disagrees); repeating the
    /// decision the asset already has with the same reviewer and note
    /// changes nothing, so importing a decisions file twice does not
    /// double the history.
    pub fn apply(self, current: Option<&DecisionFacts>, next: &DecisionFacts) -> Transition {
        let to = next.decision.state();
        // Undoing what is not decided records nothing, whoever asks.
        if next.decision == Decision::Undo && self == ApprovalState::Pending {
            return Transition::Unchanged;
        }
        match current {
            Some(c) if self == to && c.by == next.by && c.note == next.note => {
                Transition::Unchanged
            }
            _ => Transition::To(to),
        }
    }
}

impl FromStr for ApprovalState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApprovalState::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown approval state `{s}`"))
    }
}

impl fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of applying a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Record the decision; the asset moves (or stays) in this state.
    To(ApprovalState),
    /// The same decision is already on record: record nothing.
    Unchanged,
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Approve for delivery.
    Approve,
    /// Reject (a note is required).
    Reject,
    /// Take back the current decision: the asset awaits approval again
    /// (the review server's undo; the history keeps both).
    Undo,
}

impl Decision {
    /// The state the decision leads to.
    pub fn state(self) -> ApprovalState {
        match self {
            Decision::Approve => ApprovalState::Approved,
            Decision::Reject => ApprovalState::Rejected,
            Decision::Undo => ApprovalState::Pending,
        }
    }

    /// The stored spelling (the state it leads to).
    pub fn as_str(self) -> &'static str {
        self.state().as_str()
    }
}

impl FromStr for Decision {
    type Err = String;

    /// Accepts the verb or the state, in any case (`approve`, `Approved`,
    /// `reject`, `REJECTED`), as spreadsheets are typed by people.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "approve" | "approved" => Ok(Decision::Approve),
            "reject" | "rejected" => Ok(Decision::Reject),
            other => Err(format!(
                "unknown decision `{other}` (expected approve or reject)"
            )),
        }
    }
}

/// Who decided and why: what [`ApprovalState::apply`] compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionFacts {
    /// The decision.
    pub decision: Decision,
    /// The reviewer.
    pub by: String,
    /// The note (required for rejections).
    pub note: Option<String>,
}

/// An asset path as the manifest lists it, or a glob over such paths:
/// `ja-JP/hero/ridge-gtx`, `*/hero/ridge-gtx`, `de-DE/*/*`. The file
/// extension may be left out. `*` and `?` stay inside one path segment, so
/// `de-DE/*` does not reach into `de-DE/hero/…`; `**` crosses segments.
#[derive(Debug, Clone)]
pub struct AssetSelector {
    text: String,
    matcher: GlobMatcher,
}

impl AssetSelector {
    /// Parse a selector; the error says what is wrong with the pattern.
    pub fn parse(text: &str) -> Result<AssetSelector, String> {
        let t = text.trim().trim_start_matches("./");
        if t.is_empty() {
            return Err("empty asset selector".into());
        }
        if t.starts_with('/') {
            return Err(format!(
                "asset selector `{text}` is absolute; use a path as in manifest.json, like `ja-JP/hero/row-id`"
            ));
        }
        let glob: Glob = GlobBuilder::new(t)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("asset selector `{text}`: {e}"))?;
        Ok(AssetSelector {
            text: t.to_string(),
            matcher: glob.compile_matcher(),
        })
    }

    /// True when the selector names the asset at manifest path `path`,
    /// with or without its extension.
    pub fn matches(&self, path: &str) -> bool {
        self.matcher.is_match(path) || self.matcher.is_match(strip_extension(path))
    }
}

impl fmt::Display for AssetSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `ja-JP/hero/row.png` → `ja-JP/hero/row` (only the last segment's
/// extension; a row id may contain dots, so only a known image extension
/// is removed).
pub fn strip_extension(path: &str) -> &str {
    for ext in [".png", ".jpg", ".jpeg", ".webp"] {
        if let Some(stem) = path.strip_suffix(ext) {
            return stem;
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selector_matches_with_or_without_extension_and_stays_in_its_segment() {
        let exact = AssetSelector::parse("ja-JP/hero/ridge-gtx").unwrap();
        assert!(exact.matches("ja-JP/hero/ridge-gtx.png"));
        assert!(!exact.matches("ja-JP/hero/ridge-gtx-2.png"));
        let any_locale = AssetSelector::parse("*/hero/ridge-gtx").unwrap();
        assert!(any_locale.matches("de-DE/hero/ridge-gtx.png"));
        assert!(!any_locale.matches("de-DE/square/ridge-gtx.png"));
        let all_de = AssetSelector::parse("de-DE/*/*").unwrap();
        assert!(all_de.matches("de-DE/story/x.jpg"));
        assert!(
            !AssetSelector::parse("de-DE/*")
                .unwrap()
                .matches("de-DE/story/x.jpg")
        );
        assert!(AssetSelector::parse("/abs").is_err());
        assert!(AssetSelector::parse("de-DE/[").is_err());
    }

    #[test]
    fn repeating_a_decision_is_unchanged_and_any_other_is_recorded() {
        let approve = DecisionFacts {
            decision: Decision::Approve,
            by: "ana".into(),
            note: None,
        };
        let reject = DecisionFacts {
            decision: Decision::Reject,
            by: "ana".into(),
            note: Some("logo cut off".into()),
        };
        assert_eq!(
            ApprovalState::Pending.apply(None, &approve),
            Transition::To(ApprovalState::Approved)
        );
        assert_eq!(
            ApprovalState::Approved.apply(Some(&approve), &approve),
            Transition::Unchanged
        );
        assert_eq!(
            ApprovalState::Approved.apply(Some(&approve), &reject),
            Transition::To(ApprovalState::Rejected)
        );
        let other = DecisionFacts {
            by: "ben".into(),
            ..approve.clone()
        };
        assert_eq!(
            ApprovalState::Approved.apply(Some(&approve), &other),
            Transition::To(ApprovalState::Approved)
        );
        assert_eq!("Rejected".parse::<Decision>(), Ok(Decision::Reject));
        assert!("maybe".parse::<Decision>().is_err());
    }

    #[test]
    fn undo_takes_a_decided_asset_back_to_pending_and_leaves_an_undecided_one_alone() {
        let undo = DecisionFacts {
            decision: Decision::Undo,
            by: "ana".into(),
            note: None,
        };
        let reject = DecisionFacts {
            decision: Decision::Reject,
            by: "ben".into(),
            note: Some("logo cut off".into()),
        };
        assert_eq!(
            ApprovalState::Rejected.apply(Some(&reject), &undo),
            Transition::To(ApprovalState::Pending)
        );
        assert_eq!(
            ApprovalState::Pending.apply(None, &undo),
            Transition::Unchanged
        );
        assert_eq!(
            ApprovalState::Pending.apply(Some(&undo), &undo),
            Transition::Unchanged
        );
    }
}
