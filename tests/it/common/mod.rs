//! Shared helpers: a scratch workspace holding a copy of the example
//! campaign, and a way to run the binary in it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use sha2::{Digest, Sha256};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch folder with `campaigns/example` and `templates/` copied in,
/// used as the working directory of the binary.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(
            &repo().join("campaigns/example"),
            &dir.path().join("campaigns/example"),
        );
        copy_dir(&repo().join("templates"), &dir.path().join("templates"));
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn campaign(&self) -> PathBuf {
        self.path().join("campaigns/example")
    }

    pub fn out(&self) -> PathBuf {
        self.path().join("out/example")
    }

    pub fn state(&self) -> PathBuf {
        self.path().join(".adloc/state.db")
    }

    /// Run the binary with `args` in the workspace, with no API key in the
    /// environment (so the default provider is local).
    pub fn adloc(&self, args: &[&str]) -> Output {
        self.adloc_env(args, &[])
    }

    pub fn adloc_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = assert_cmd::Command::cargo_bin("adloc").unwrap();
        cmd.current_dir(self.path())
            .env_remove("GEMINI_API_KEY")
            .env_remove("GOOGLE_API_KEY")
            .env_remove("GOOGLE_GEMINI_BASE_URL")
            .env("ADLOC_LOG", "adloc=warn")
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    pub fn manifest(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.out().join("manifest.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Replace `from` with `to` in a campaign file (panics when absent, so a
    /// test cannot silently edit nothing).
    pub fn edit(&self, file: &str, from: &str, to: &str) {
        let p = self.campaign().join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{file} does not contain {from:?}");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

/// Every asset in the manifest exists, and its bytes, size and decoded
/// dimensions match what the manifest says. Returns the asset count.
pub fn assert_manifest_matches_files(manifest_dir: &Path, manifest: &serde_json::Value) -> usize {
    let assets = manifest["assets"].as_array().unwrap();
    for a in assets {
        let path = manifest_dir.join(a["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            a["sha256"],
            "{}",
            path.display()
        );
        assert_eq!(bytes.len() as u64, a["bytes"].as_u64().unwrap());
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!(img.width() as u64, a["width"].as_u64().unwrap());
        assert_eq!(img.height() as u64, a["height"].as_u64().unwrap());
    }
    assets.len()
}

/// Validate a manifest against the published JSON Schema.
pub fn assert_manifest_valid(manifest: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schema/manifest.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(manifest)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "manifest violates its schema: {errors:#?}"
    );
}

/// Files under `dir` whose names contain the temporary-file marker.
pub fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().contains(".adloc-tmp-") {
                out.push(e.path());
            }
        }
    }
    out
}
