//! The PostgreSQL state backend through the real binary: the example
//! campaign against the emulator with `--state postgres://…` (and with
//! `ADLOC_DATABASE_URL`), realtime and batch, on a private PostgreSQL
//! server (see `common/pg.rs`); and a database URL's password never shows
//! in any output.

use std::collections::BTreeSet;
use std::path::Path;

use adloc_emulator::Faults;

use crate::common::*;

/// Image files under `dir`, relative to it, except the review page's
/// thumbnails (`review/`, derived from the assets, not listed as assets).
fn images_on_disk(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p != dir.join("review") {
                    stack.push(p);
                }
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x, "png" | "jpg" | "jpeg" | "webp"))
            {
                let rel = p.strip_prefix(dir).unwrap();
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out
}

/// Every image path the manifest lists: assets, their renditions, art.
fn images_in_manifest(m: &serde_json::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for section in ["assets", "art"] {
        for a in m[section].as_array().into_iter().flatten() {
            out.insert(a["path"].as_str().unwrap().to_string());
            for r in a["renditions"].as_array().into_iter().flatten() {
                out.insert(r["path"].as_str().unwrap().to_string());
            }
        }
    }
    out
}

/// The example campaign with `--state <url>` against the emulator: every
/// asset made once, the manifest true to the files, and exactly the files
/// it lists on disk.
fn example_on_postgres(mode: &str, via_env: bool) {
    let url = pg::fresh_database();
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    let mut env = emu.env();
    env.push(("ADLOC_BATCH_POLL_MS", "50".into()));
    let mut args = vec![
        "run",
        "campaigns/example",
        "--provider",
        "gemini",
        "--mode",
        mode,
    ];
    if via_env {
        env.push(("ADLOC_DATABASE_URL", url.clone()));
    } else {
        args.extend(["--state", url.as_str()]);
    }
    let o = ws.adloc_with(&env, &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!ws.state().exists(), "a SQLite file was written");
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(
        assert_manifest_matches_files(&ws.out(), &m) as u64,
        example().assets()
    );
    let (disk, listed) = (images_on_disk(&ws.out()), images_in_manifest(&m));
    assert!(
        disk == listed,
        "on disk, not listed: {:?}; listed, not on disk: {:?}",
        disk.difference(&listed).collect::<Vec<_>>(),
        listed.difference(&disk).collect::<Vec<_>>()
    );
    let stats = emu.stats();
    assert_eq!(stats.billed_images, example().generations(), "{stats:?}");
    assert!(stats.prompts_billed.values().all(|n| *n == 1), "{stats:?}");
    let billing = if mode == "batch" { "batch" } else { "realtime" };
    for a in m["assets"].as_array().unwrap() {
        assert_eq!(a["mode"], billing, "{a}");
    }
    // The state is in the database: an unchanged rerun buys nothing.
    let o = ws.adloc_with(&env, &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(emu.stats().billed_images, example().generations());
    let mut status = vec!["status"];
    if !via_env {
        status.extend(["--state", url.as_str()]);
    }
    let o = ws.adloc_with(&env, &status);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("example"), "{}", stdout(&o));
}

#[test]
fn the_example_runs_in_realtime_on_postgres_and_its_manifest_matches_the_files() {
    example_on_postgres("realtime", false);
}

#[test]
fn the_example_runs_in_batch_mode_on_postgres_and_its_manifest_matches_the_files() {
    example_on_postgres("batch", false);
}

#[test]
fn adloc_database_url_selects_postgres_when_state_is_not_given() {
    example_on_postgres("realtime", true);
}

#[test]
fn a_database_password_never_appears_in_errors_or_help() {
    let ws = Workspace::new();
    let secret = "hunter2-Xq9zv";
    // Nothing listens there: the connect fails, and says where, redacted.
    let url =
        format!("postgres://adloc:{secret}@127.0.0.1:9/adloc?sslmode=disable&password={secret}");
    for args in [
        vec!["status", "--state", url.as_str()],
        vec!["run", "campaigns/example", "--state", url.as_str()],
    ] {
        let o = ws.adloc(&args);
        assert_ne!(code(&o), 0);
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!all.contains(secret), "{all}");
        assert!(all.contains("adloc:***@127.0.0.1:9"), "{all}");
    }
    let o = ws.adloc_env(
        &["status", "--help"],
        &[("ADLOC_DATABASE_URL", url.as_str())],
    );
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("ADLOC_DATABASE_URL"), "{all}");
    assert!(!all.contains(secret), "{all}");
    // A bad password against a real server: refused, and still not printed.
    let real = pg::server().url("postgres").replace(
        "postgres://postgres@",
        &format!("postgres://nobody:{secret}@"),
    );
    let o = ws.adloc(&["status", "--state", real.as_str()]);
    assert_ne!(code(&o), 0);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains(secret), "{all}");
    assert!(all.contains("nobody:***@"), "{all}");
}
