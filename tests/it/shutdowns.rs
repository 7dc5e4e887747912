//! Model lifecycle through the binary: ids their vendor shut down are input
//! errors naming the replacement, and the emulator answers them like the
//! real service; an id past only its *earliest* shutdown date is still
//! accepted, with a `plan` warning.

use adloc_emulator::Faults;

use crate::common::*;

#[test]
fn the_shut_down_gemini_preview_ids_are_refused_at_load_naming_the_ga_ids() {
    let emu = Emu::start(Faults::default());
    for (preview, ga) in [
        ("gemini-3-pro-image-preview", "gemini-3-pro-image"),
        ("gemini-3.1-flash-image-preview", "gemini-3.1-flash-image"),
    ] {
        let ws = Workspace::new();
        ws.small_campaign(&[("a", "a ridge")]);
        ws.edit(
            "campaign.toml",
            "model = \"gemini-3.1-flash-image\"",
            &format!("model = \"{preview}\""),
        );
        let o = ws.adloc_emu(&emu, &["run", "campaigns/example"]);
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{preview}: {err}");
        assert!(err.contains("campaign.toml:4:"), "{err}");
        assert!(err.contains("shut down on 2026-06-25"), "{err}");
        assert!(err.contains(&format!("use `{ga}` instead")), "{err}");
        assert!(!ws.path().join(".adloc").exists());
    }
    assert_eq!(emu.stats().generate_calls, 0);
}

#[test]
fn the_emulator_answers_the_shut_down_preview_ids_404_not_found() {
    let emu = Emu::start(Faults::default());
    let client = reqwest::Client::new();
    for id in [
        "gemini-3-pro-image-preview",
        "gemini-3.1-flash-image-preview",
    ] {
        let (status, v) = emu.rt.block_on(async {
            let r = client
                .post(format!(
                    "{}/v1beta/models/{id}:generateContent",
                    emu.base_url()
                ))
                .header("x-goog-api-key", KEY)
                .json(&serde_json::json!({"contents": [{"parts": [{"text": "a ridge"}]}]}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        });
        assert_eq!(status, 404, "{id}: {v}");
        assert_eq!(v["error"]["status"], "NOT_FOUND", "{v}");
    }
}

#[test]
fn plan_warns_that_gemini_2_5_flash_image_is_past_its_earliest_shutdown_date() {
    let ws = Workspace::new();
    ws.small_campaign(&[("a", "a ridge")]);
    ws.edit(
        "campaign.toml",
        "model = \"gemini-3.1-flash-image\"",
        "model = \"gemini-2.5-flash-image\"",
    );
    let o = ws.adloc(&["plan", "campaigns/example"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        out.contains(
            "gemini-2.5-flash-image is past its earliest announced shutdown date (2026-10-02)"
        ),
        "{out}"
    );
    assert!(out.contains("switch to gemini-3.1-flash-image"), "{out}");
}
