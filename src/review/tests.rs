use std::path::Path;

use super::*;
use crate::domain::{Decision, InputErrors};

fn manifest() -> Manifest {
    let asset = serde_json::json!({
        "row_id": "r1", "locale": "ar-SA", "resolved_locale": "ar-SA", "copy_resolution": {},
        "variant": "hero", "path": "ar-SA/hero/r1.png", "sha256": "a".repeat(64), "bytes": 10,
        "width": 160, "height": 90, "aspect_ratio_actual": 1.7778, "aspect_ratio_ok": true,
        "mime_type": "image/png", "provider": "local", "model": "gemini-3.1-flash-image",
        "mode": "realtime", "aspect_ratio": "16:9", "image_size": "1K", "prompt": "p",
        "request_sha256": "b".repeat(64), "cost_usd": 0.0, "attempts": 1,
        "created_at": "2026-12-01T00:00:00Z", "renditions": [],
        "copy": {"headline": "<script>alert(1)</script> & \"quotes\""},
        "approval": {"state": "pending", "by": null, "at": null, "note": null},
        "revision": 1, "parent_sha256": null
    });
    let failure = serde_json::json!({
        "row_id": "r1", "locale": "en-US", "variant": "hero", "state": "blocked",
        "reason": "blocked_image", "detail": "said <no>", "attempts": 1,
        "request_sha256": "c".repeat(64)
    });
    serde_json::from_value(serde_json::json!({
        "schema_version": 1, "campaign": "example", "generated_at": "2026-12-01T00:00:00Z",
        "totals": {"jobs": 2, "done": 1, "failed": 0, "blocked": 1, "pending": 0, "retired": 0, "cost_usd": 0.0},
        "assets": [asset], "failures": [failure], "retired": []
    }))
    .unwrap()
}

#[test]
fn copy_is_escaped_and_right_to_left_copy_is_marked_rtl() {
    let m = manifest();
    let page = build(&Sheet {
        manifest: &m,
        previous: None,
        decisions: &[],
        spent_this_run: 0.0,
        spent_total: 0.0,
    });
    assert!(
        !page.html.contains("<script>alert(1)"),
        "copy reached the page unescaped"
    );
    assert!(
        page.html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;")
    );
    assert!(page.html.contains("said &lt;no&gt;"));
    assert!(
        page.html
            .contains("<dl class=\"copy\" lang=\"ar-SA\" dir=\"rtl\">")
    );
    assert_eq!(
        page.thumbs,
        vec![Thumb {
            source: "ar-SA/hero/r1.png".into(),
            file: format!("{}.jpg", "a".repeat(64)),
        }]
    );
    // No external resource: nothing is loaded from a network address.
    assert!(!page.html.contains("http://") && !page.html.contains("https://"));
    assert!(page.html.contains("data-key=\"en-US/hero/r1\""));
    assert!(page.html.contains("data-state=\"blocked\""));
}

#[test]
fn new_means_not_in_the_previous_manifest() {
    let m = manifest();
    let page = build(&Sheet {
        manifest: &m,
        previous: Some(&m),
        decisions: &[],
        spent_this_run: 0.0,
        spent_total: 0.0,
    });
    assert!(!page.html.contains("data-new=\"1\""));
    let ch = changes(&m, Some(&m));
    assert_eq!(ch, Changes::default());
}

#[test]
fn a_decisions_file_names_every_bad_line_and_keeps_the_good_rows() {
    let text = "\u{feff}Asset,Decision,Note,By\n\
                ar-SA/hero/r1,Approve,,\n\
                ar-SA/hero/r1,reject,,ben\n\
                ,approve,,\n\
                */hero/*,rejected,\"too <dark>, \"\"flat\"\"\",ben\n";
    let (rows, errors) = parse_csv(Path::new("d.csv"), text, "ana");
    let lines: Vec<Option<u64>> = errors.0.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![Some(3), Some(4)], "{errors}");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].facts.by, "ana", "an empty `by` takes the default");
    assert_eq!(rows[1].facts.note.as_deref(), Some("too <dark>, \"flat\""));
    let m = manifest();
    let resolved = resolve(&m, &rows, InputErrors::default()).unwrap();
    assert_eq!(resolved.len(), 2);
    assert!(resolved.iter().all(|d| d.sha256 == "a".repeat(64)));
    let nothing = from_args(&["fr-FR/*/*".into()], Decision::Approve, "ana", None).unwrap();
    let err = resolve(&m, &nothing, InputErrors::default()).unwrap_err();
    assert!(err.to_string().contains("names no asset"), "{err}");
    assert!(from_args(&["x".into()], Decision::Reject, "ana", Some("  ")).is_err());
}
