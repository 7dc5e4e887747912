//! Foundation: the example campaign end to end on the local renderer,
//! incremental reruns, and every class of bad input.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::common::*;

fn mtimes(ws: &Workspace) -> BTreeMap<String, SystemTime> {
    let m = ws.manifest();
    m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let p = a["path"].as_str().unwrap().to_string();
            let t = std::fs::metadata(ws.out().join(&p))
                .unwrap()
                .modified()
                .unwrap();
            (p, t)
        })
        .collect()
}

#[test]
fn example_run_writes_every_asset_and_a_schema_valid_manifest_that_matches_the_files() {
    let ws = Workspace::new();
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert!(
        stderr(&o).contains("using the local proof renderer"),
        "{}",
        stderr(&o)
    );
    let m = ws.manifest();
    assert_manifest_valid(&m);
    // Rows × locales × model-text variants, plus the overlay variant
    // `banner`: one copy-free art image per row, typeset into every locale.
    let ex = example();
    assert_eq!(m["totals"]["done"], ex.assets());
    assert_eq!(
        assert_manifest_matches_files(&ws.out(), &m) as u64,
        ex.rows * ex.locales * (ex.model_variants + ex.overlay_variants)
    );
    let art = m["art"].as_array().unwrap();
    assert_eq!(art.len() as u64, ex.art_jobs());
    for a in art {
        assert_eq!(a["locale"], "und");
        let path = a["path"].as_str().unwrap();
        assert!(path.starts_with("_art/banner/"), "{path}");
        assert!(ws.out().join(path).exists(), "{path}");
    }
    // Every identity appears exactly once, at the documented path.
    let mut seen = std::collections::HashSet::new();
    for a in m["assets"].as_array().unwrap() {
        let key = (
            a["row_id"].clone(),
            a["locale"].clone(),
            a["variant"].clone(),
        );
        assert!(seen.insert(key), "duplicate manifest entry {a}");
        let expected = format!(
            "{}/{}/{}.",
            a["locale"].as_str().unwrap(),
            a["variant"].as_str().unwrap(),
            a["row_id"].as_str().unwrap()
        );
        assert!(
            a["path"].as_str().unwrap().starts_with(&expected),
            "{}",
            a["path"]
        );
        assert_eq!(a["provider"], "local");
    }
    // Dimensions are those gemini-3.1-flash-image returns at 1K.
    let hero = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["variant"] == "hero")
        .unwrap();
    assert_eq!(
        (hero["width"].as_u64(), hero["height"].as_u64()),
        (Some(1376), Some(768))
    );
    let story = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["variant"] == "story")
        .unwrap();
    assert_eq!(
        (story["width"].as_u64(), story["height"].as_u64()),
        (Some(768), Some(1376))
    );
    assert!(temporaries(ws.path()).is_empty());
}

#[test]
fn unchanged_rerun_regenerates_nothing_and_editing_one_cell_regenerates_exactly_those_jobs() {
    let ex = example();
    let ws = Workspace::new();
    assert_eq!(code(&ws.adloc(&["run", "campaigns/example"])), 0);
    let before = mtimes(&ws);
    let attempts_before: u64 = ws.manifest()["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempts"].as_u64().unwrap())
        .sum();

    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains(&format!("0 new, 0 changed, {} unchanged", ex.generations())),
        "{}",
        stdout(&o)
    );
    assert_eq!(mtimes(&ws), before, "an unchanged rerun rewrote files");
    let attempts_after: u64 = ws.manifest()["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(
        attempts_before, attempts_after,
        "an unchanged rerun called the provider"
    );

    // One German headline changes: exactly that row's de-DE model-text
    // jobs are paid for again, and its de-DE banner is typeset again.
    ws.edit(
        "rows.csv",
        "Die Neuheiten sind da",
        "Die neue Kollektion ist da",
    );
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains(&format!(
            "0 new, {} changed, {} unchanged",
            ex.model_variants,
            ex.generations() - ex.model_variants
        )),
        "{}",
        stdout(&o)
    );
    let after = mtimes(&ws);
    let changed: Vec<&String> = after.keys().filter(|k| after[*k] != before[*k]).collect();
    assert_eq!(
        changed.len() as u64,
        ex.assets_per_row_locale(),
        "changed files: {changed:?}"
    );
    for p in &changed {
        assert!(
            p.starts_with("de-DE/") && p.contains("/new-arrivals."),
            "unexpected change {p}"
        );
    }
    let m = ws.manifest();
    assert_manifest_matches_files(&ws.out(), &m);
    let new_arrivals_de = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["row_id"] == "new-arrivals" && a["locale"] == "de-DE")
        .count();
    assert_eq!(new_arrivals_de as u64, ex.assets_per_row_locale());
    assert!(
        m["assets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["row_id"] == "new-arrivals" && a["locale"] == "de-DE")
            .filter(|a| a["overlay"].is_null())
            .all(|a| a["prompt"]
                .as_str()
                .unwrap()
                .contains("Die neue Kollektion ist da"))
    );
}

#[test]
fn removing_a_row_retires_its_assets_instead_of_deleting_them() {
    let ex = example();
    let ws = Workspace::new();
    assert_eq!(code(&ws.adloc(&["run", "campaigns/example"])), 0);
    let csv = std::fs::read_to_string(ws.campaign().join("rows.csv")).unwrap();
    let kept: Vec<&str> = csv.lines().filter(|l| !l.starts_with("loyalty,")).collect();
    std::fs::write(ws.campaign().join("rows.csv"), kept.join("\n") + "\n").unwrap();
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("{} retired", ex.generations_per_row())),
        "{}",
        stdout(&o)
    );
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(
        m["assets"].as_array().unwrap().len() as u64,
        ex.assets() - ex.assets_per_row()
    );
    let retired = m["retired"].as_array().unwrap();
    assert_eq!(retired.len() as u64, ex.assets_per_row());
    for r in retired {
        assert_eq!(r["row_id"], "loyalty");
        assert!(ws.out().join(r["path"].as_str().unwrap()).exists());
    }
}

/// Run `plan` and `run` on a broken campaign: both exit 2, name the file
/// (and line), and nothing is written.
fn assert_rejected(ws: &Workspace, file_hint: &str, line_hint: Option<&str>, message_hint: &str) {
    for cmd in ["plan", "run"] {
        let o = ws.adloc(&[cmd, "campaigns/example"]);
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{cmd}: expected exit 2, stderr: {err}");
        assert!(
            err.contains(file_hint),
            "{cmd}: no file {file_hint:?} in: {err}"
        );
        if let Some(l) = line_hint {
            assert!(err.contains(l), "{cmd}: no location {l:?} in: {err}");
        }
        assert!(
            err.contains(message_hint),
            "{cmd}: no {message_hint:?} in: {err}"
        );
    }
    assert!(!ws.state().exists(), "a state database was written");
    assert!(
        !ws.path().join(".adloc").exists(),
        "a state folder was written"
    );
    assert!(
        !ws.path().join("out").exists(),
        "an output folder was written"
    );
}

#[test]
fn invalid_toml_is_rejected_with_its_line_and_column() {
    let ws = Workspace::new();
    ws.edit("campaign.toml", "mode = \"batch\"", "mode = \"batch");
    assert_rejected(&ws, "campaign.toml:", Some("campaign.toml:9:"), "");
}

#[test]
fn ragged_csv_row_is_rejected_with_its_line() {
    let ws = Workspace::new();
    ws.edit("rows.csv", "\nloyalty,", "\nloyalty,extra,");
    assert_rejected(
        &ws,
        "rows.csv",
        Some("rows.csv:6"),
        "fields but the header has",
    );
}

#[test]
fn unterminated_quote_in_csv_is_rejected() {
    let ws = Workspace::new();
    ws.edit("rows.csv", "\nloyalty,\"A golden", "\nloyalty,\"A \"golden");
    let o = ws.adloc(&["plan", "campaigns/example"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("rows.csv:6"), "{}", stderr(&o));
    assert!(!ws.path().join(".adloc").exists());
}

#[test]
fn duplicate_empty_and_unsafe_row_ids_are_each_rejected() {
    for (bad, hint) in [
        (
            "spring-sale",
            "duplicate row id `spring-sale` (first used on line 2)",
        ),
        ("", "row id is empty"),
        ("../x", "contains `/`"),
        ("a/b", "contains `/`"),
        ("..", "not a usable file name"),
    ] {
        let ws = Workspace::new();
        ws.edit("rows.csv", "\nloyalty,", &format!("\n{bad},"));
        assert_rejected(&ws, "rows.csv:6:1", None, hint);
    }
}

#[test]
fn non_utf8_rows_are_rejected_with_line_and_column() {
    let ws = Workspace::new();
    let p = ws.campaign().join("rows.csv");
    let mut bytes = std::fs::read(&p).unwrap();
    let at = bytes.windows(8).position(|w| w == b"\nloyalty").unwrap() + 1 + "loyalty,A ".len();
    bytes.insert(at, 0xFF);
    std::fs::write(&p, bytes).unwrap();
    assert_rejected(&ws, "rows.csv:6:11", None, "not valid UTF-8");
}

#[test]
fn a_utf8_bom_is_accepted() {
    let ws = Workspace::new();
    let p = ws.campaign().join("rows.csv");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(std::fs::read(&p).unwrap());
    std::fs::write(&p, bytes).unwrap();
    let o = ws.adloc(&["plan", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "= {} assets from {} generations",
            example().assets(),
            example().generations()
        )),
        "{}",
        stdout(&o)
    );
}

#[test]
fn malformed_locale_tag_is_rejected_at_its_position() {
    let ws = Workspace::new();
    ws.edit("campaign.toml", "\"ko-KR\"", "\"ko-KR-!!\"");
    assert_rejected(&ws, "campaign.toml:6:", None, "ko-KR-!!");
}

#[test]
fn unknown_model_is_rejected_and_names_the_known_ones() {
    let ws = Workspace::new();
    ws.edit(
        "campaign.toml",
        "gemini-3.1-flash-image",
        "gemini-9-ultra-image",
    );
    assert_rejected(
        &ws,
        "campaign.toml:8:",
        None,
        "unknown model `gemini-9-ultra-image`",
    );
}

#[test]
fn aspect_ratio_and_size_the_model_does_not_support_are_rejected() {
    let ws = Workspace::new();
    ws.edit(
        "campaign.toml",
        "aspect_ratio = \"9:16\"",
        "aspect_ratio = \"7:3\"",
    );
    assert_rejected(
        &ws,
        "campaign.toml:26:",
        None,
        "aspect ratio `7:3` is not supported",
    );
    let ws = Workspace::new();
    ws.edit(
        "campaign.toml",
        "gemini-3.1-flash-image",
        "gemini-2.5-flash-image",
    );
    ws.edit(
        "campaign.toml",
        "image_size = \"1K\"",
        "image_size = \"2K\"",
    );
    assert_rejected(
        &ws,
        "campaign.toml:15:",
        None,
        "image size `2K` is not supported by gemini-2.5-flash-image",
    );
    let ws = Workspace::new();
    ws.edit(
        "campaign.toml",
        "image_size = \"1K\"",
        "image_size = \"2k\"",
    );
    assert_rejected(&ws, "campaign.toml:15:", None, "uppercase");
}

#[test]
fn missing_template_is_rejected() {
    let ws = Workspace::new();
    ws.edit(
        "campaign.toml",
        "template = \"square.hbs\"",
        "template = \"nope.hbs\"",
    );
    assert_rejected(&ws, "campaign.toml:19:", None, "template `nope.hbs`");
}

#[test]
fn template_syntax_error_names_the_template_file_and_line() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.campaign().join("templates")).unwrap();
    std::fs::write(
        ws.campaign().join("templates/hero.hbs"),
        "A hero.\nHeadline: {{row.headline}\n",
    )
    .unwrap();
    assert_rejected(&ws, "hero.hbs:2", None, "syntax error");
}

#[test]
fn a_missing_template_value_names_row_locale_variant_template_and_line() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.campaign().join("templates")).unwrap();
    std::fs::write(
        ws.campaign().join("templates/story.hbs"),
        "A story ad.\nHeadline: {{row.headline}}\nPrice: {{row.price}}\n",
    )
    .unwrap();
    let o = ws.adloc(&["run", "campaigns/example"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains("story.hbs:3"), "{err}");
    assert!(err.contains("missing value `row.price`"), "{err}");
    assert!(err.contains("row `spring-sale`"), "{err}");
    assert!(err.contains("locale ar-SA"), "{err}");
    assert!(err.contains("variant story"), "{err}");
    assert!(!ws.path().join(".adloc").exists());
}

#[test]
fn budget_below_the_estimate_refuses_with_exit_4_and_sends_nothing() {
    let ws = Workspace::new();
    let o = ws.adloc_env(
        &[
            "run",
            "campaigns/example",
            "--provider",
            "gemini",
            "--max-spend",
            "0.5",
        ],
        &[
            ("GEMINI_API_KEY", "test-key"),
            ("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9"),
        ],
    );
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("exceeds the budget"), "{}", stderr(&o));
    assert!(!ws.out().join("manifest.json").exists());
}

#[test]
fn plan_reports_new_changed_unchanged_and_both_estimates() {
    let ws = Workspace::new();
    let o = ws.adloc(&["plan", "campaigns/example"]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    let paid = example().generations();
    assert!(
        out.contains(&format!("new {paid}, changed 0, unchanged 0")),
        "{out}"
    );
    assert!(out.contains(&format!("images to pay for: {paid}")), "{out}");
    // (model-text jobs + art) × $0.067 realtime, half in batch.
    let realtime = paid as f64 * 0.067;
    assert!(
        out.contains(&format!(
            "${realtime:.4} realtime, ${:.4} batch",
            realtime / 2.0
        )),
        "{out}"
    );
    assert!(
        !ws.path().join(".adloc").exists(),
        "plan must not create state"
    );
    assert_eq!(code(&ws.adloc(&["run", "campaigns/example"])), 0);
    let o = ws.adloc(&["plan", "campaigns/example"]);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("new 0, changed 0, unchanged {paid} ({paid} done)")),
        "{out} / {}",
        stderr(&o)
    );
    assert!(out.contains("images to pay for: 0"), "{out}");
    assert!(out.contains("$0.0000 realtime, $0.0000 batch"), "{out}");
}

#[test]
fn changing_a_template_regenerates_only_that_variants_jobs() {
    let ws = Workspace::new();
    assert_eq!(code(&ws.adloc(&["run", "campaigns/example"])), 0);
    let before = mtimes(&ws);
    std::fs::create_dir_all(ws.campaign().join("templates")).unwrap();
    let story = std::fs::read_to_string(ws.path().join("templates/story.hbs")).unwrap();
    std::fs::write(
        ws.campaign().join("templates/story.hbs"),
        story.replace("A vertical 9:16", "A tall 9:16"),
    )
    .unwrap();
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "0 new, {} changed, {} unchanged",
            example().per_variant(),
            example().generations() - example().per_variant()
        )),
        "{}",
        stdout(&o)
    );
    let after = mtimes(&ws);
    for (p, t) in &after {
        assert_eq!(p.contains("/story/"), *t != before[p], "{p}");
    }
}

#[test]
fn adding_a_locale_generates_only_the_new_locales_jobs() {
    let ws = Workspace::new();
    assert_eq!(code(&ws.adloc(&["run", "campaigns/example"])), 0);
    ws.edit("campaign.toml", "\"ar-SA\"]", "\"ar-SA\", \"de-AT\"]");
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "{} new, 0 changed, {} unchanged",
            example().model_jobs_per_locale(),
            example().generations()
        )),
        "{}",
        stdout(&o)
    );
    let m = ws.manifest();
    let at: Vec<_> = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["locale"] == "de-AT")
        .collect();
    // Its model-text images, plus its banners typeset on the existing art.
    assert_eq!(at.len() as u64, example().assets_per_locale());
    // de-AT has no copy of its own and its CLDR parent is `de`, not `de-DE`,
    // so it falls back to the base (en-US) column — and plan says so.
    for a in at {
        assert_eq!(a["resolved_locale"], "en-US", "{a}");
    }
    let plan = stdout(&ws.adloc(&["plan", "campaigns/example"]));
    assert!(
        plan.contains("column `headline` for de-AT falls back to the base column"),
        "{plan}"
    );
}

#[test]
fn retry_requeues_failed_jobs_on_request_only() {
    let ws = Workspace::new();
    let o = ws.adloc(&["retry", "example", "--failed"]);
    assert_eq!(code(&o), 2, "no state yet is a usage error: {}", stderr(&o));
    // A banner whose copy cannot fit fails with text_overflow; it is not
    // retried by a plain rerun, only on request.
    assert_eq!(code(&ws.adloc(&["run", "campaigns/example"])), 0);
    let o = ws.adloc(&["retry", "example"]);
    assert_eq!(code(&o), 2, "which jobs must be said: {}", stderr(&o));
    let o = ws.adloc(&["retry", "example", "--failed", "--blocked"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("0 job(s) requeued"), "{}", stdout(&o));
}

#[test]
fn a_quoted_field_spanning_lines_with_doubled_quotes_is_valid_csv() {
    let ws = Workspace::new();
    ws.edit(
        "rows.csv",
        "\"A golden membership card resting on folded knitwear next to a small gift box, warm cozy mood\"",
        "\"runner crossing a \"\"misty\"\", windy\nalpine ridge at dawn\"",
    );
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = ws.manifest();
    let prompt = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["row_id"] == "loyalty" && a["variant"] == "hero")
        .unwrap()["prompt"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        prompt.contains("runner crossing a \"misty\", windy\nalpine ridge at dawn"),
        "{prompt}"
    );
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_escapes() {
    let ws = Workspace::new();
    let o = ws.adloc_env(
        &["run", "campaigns/example"],
        &[("ADLOC_LOG", "adloc=info")],
    );
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("job finished"), "no info logs at all: {err}");
    assert!(
        !err.contains('\u{1b}'),
        "colour escapes in piped logs: {err:?}"
    );
}

#[test]
fn under_json_logs_the_final_error_is_a_json_object_with_a_reason_code() {
    let ws = Workspace::new();
    ws.edit("rows.csv", "\nloyalty,", "\nspring-sale,");
    let o = ws.adloc(&["--log-format", "json", "plan", "campaigns/example"]);
    assert_eq!(code(&o), 2);
    let last = stderr(&o).lines().last().unwrap_or_default().to_string();
    let v: serde_json::Value =
        serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {last}"));
    assert_eq!(v["code"], "invalid_input");
    assert_eq!(v["exit"], 2);
    assert!(
        v["message"].as_str().unwrap().contains("duplicate row id"),
        "{v}"
    );
}

#[test]
fn control_characters_in_rows_are_rejected_at_their_line_and_character_column() {
    let ws = Workspace::new();
    let p = ws.campaign().join("rows.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Insert `c` after `after` and return its 1-based column in characters.
    let insert = |line: &mut String, after: &str, c: char| {
        let at = line.find(after).unwrap() + after.len();
        line.insert(at, c);
        line[..at].chars().count() as u64 + 1
    };
    let nul = insert(&mut lines[1], "春のセール", '\0');
    let del = insert(&mut lines[3], "New arrivals", '\u{7f}');
    // Tabs are allowed.
    insert(&mut lines[2], "Free shipping", '\t');
    // In a quoted field spanning lines, the location is the character's own line.
    lines[5] = lines[5].replacen("\"A golden ", "\"A golden\n\u{1b}", 1);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    assert!(nul > 40, "the column counts characters: {nul}");
    assert_rejected(
        &ws,
        &format!("rows.csv:2:{nul}:"),
        Some(&format!("rows.csv:4:{del}:")),
        "control character",
    );
    let o = ws.adloc(&["plan", "campaigns/example"]);
    let err = stderr(&o);
    assert!(err.contains("rows.csv:7:1:"), "{err}");
    for code in ["U+0000", "U+007F", "U+001B"] {
        assert!(err.contains(code), "no {code} in {err}");
    }
    assert!(!err.contains("U+0009"), "{err}");
}

#[test]
fn row_ids_differing_only_in_case_are_rejected_naming_both_lines() {
    let ws = Workspace::new();
    ws.edit("rows.csv", "\nloyalty,", "\nSpring-Sale,");
    assert_rejected(
        &ws,
        "rows.csv:6:1",
        None,
        "row id `Spring-Sale` differs only in case from `spring-sale` on line 2",
    );
}

#[test]
fn a_template_rendering_to_an_empty_prompt_names_the_template_row_and_locale() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.campaign().join("templates")).unwrap();
    std::fs::write(
        ws.campaign().join("templates/square.hbs"),
        "{{!-- to be written --}}\n   \n\t\n",
    )
    .unwrap();
    assert_rejected(&ws, "square.hbs", None, "renders to an empty prompt");
    let err = stderr(&ws.adloc(&["plan", "campaigns/example"]));
    assert!(err.contains("row `loyalty`"), "{err}");
    assert!(err.contains("locale ar-SA"), "{err}");
    assert!(err.contains("variant square"), "{err}");
}

#[test]
fn an_art_template_rendering_to_an_empty_prompt_names_the_template_row_and_art() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.campaign().join("templates")).unwrap();
    std::fs::write(ws.campaign().join("templates/banner-art.hbs"), "  \n").unwrap();
    assert_rejected(&ws, "banner-art.hbs", None, "renders to an empty prompt");
    let err = stderr(&ws.adloc(&["plan", "campaigns/example"]));
    assert!(err.contains("row `free-shipping`"), "{err}");
    assert!(err.contains("art for overlay variant banner"), "{err}");
}

#[test]
fn a_quote_that_is_never_closed_is_rejected_at_the_opening_quote() {
    let ws = Workspace::new();
    ws.edit("rows.csv", "warm cozy mood\",", "warm cozy mood,");
    assert_rejected(&ws, "rows.csv:6:9", None, "never closed");
}
