//! Shared helpers: a scratch workspace holding a copy of the example
//! campaign, and a way to run the binary in it.

#![allow(dead_code)]

pub mod pg;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shape of the example campaign, read from the fixture itself
/// (`campaigns/example/rows.csv` and `campaign.toml`), so tests derive its
/// counts instead of repeating them.
#[derive(Debug, Clone, Copy)]
pub struct ExampleCounts {
    /// Data rows in rows.csv.
    pub rows: u64,
    /// Locales in campaign.toml.
    pub locales: u64,
    /// Variants whose copy the model paints (`text = "model"`, the default).
    pub model_variants: u64,
    /// Variants with `text = "overlay"`: copy-free art, typeset per locale.
    pub overlay_variants: u64,
}

impl ExampleCounts {
    /// Paid model-text jobs: rows × locales × model variants.
    pub fn model_jobs(&self) -> u64 {
        self.rows * self.locales * self.model_variants
    }
    /// Paid art jobs: one per row × overlay variant, shared by every locale.
    pub fn art_jobs(&self) -> u64 {
        self.rows * self.overlay_variants
    }
    /// Everything bought from the provider: model-text jobs plus art.
    pub fn generations(&self) -> u64 {
        self.model_jobs() + self.art_jobs()
    }
    /// Typeset composites: rows × locales × overlay variants.
    pub fn composites(&self) -> u64 {
        self.rows * self.locales * self.overlay_variants
    }
    /// Deliverable assets: model-text images plus composites.
    pub fn assets(&self) -> u64 {
        self.model_jobs() + self.composites()
    }
    /// Jobs of one model-text variant: rows × locales.
    pub fn per_variant(&self) -> u64 {
        self.rows * self.locales
    }
    /// Assets of one row in one locale: one per variant.
    pub fn assets_per_row_locale(&self) -> u64 {
        self.model_variants + self.overlay_variants
    }
    /// Paid jobs of one locale: rows × model variants (its art is shared).
    pub fn model_jobs_per_locale(&self) -> u64 {
        self.rows * self.model_variants
    }
    /// Assets of one locale.
    pub fn assets_per_locale(&self) -> u64 {
        self.rows * self.assets_per_row_locale()
    }
    /// Assets of one row across every locale.
    pub fn assets_per_row(&self) -> u64 {
        self.locales * self.assets_per_row_locale()
    }
    /// Paid jobs of one row: its model-text jobs in every locale plus its art.
    pub fn generations_per_row(&self) -> u64 {
        self.locales * self.model_variants + self.overlay_variants
    }
}

/// The example campaign's counts (read once).
pub fn example() -> ExampleCounts {
    static COUNTS: OnceLock<ExampleCounts> = OnceLock::new();
    *COUNTS.get_or_init(|| {
        let dir = repo().join("campaigns/example");
        let config: toml::Table =
            toml::from_str(&std::fs::read_to_string(dir.join("campaign.toml")).unwrap()).unwrap();
        let locales = config["locales"].as_array().unwrap().len() as u64;
        let variants = config["variants"].as_array().unwrap();
        let overlay_variants = variants
            .iter()
            .filter(|v| v.get("text").and_then(toml::Value::as_str) == Some("overlay"))
            .count() as u64;
        let model_variants = variants.len() as u64 - overlay_variants;
        let rows_csv = dir.join(config["rows"].as_str().unwrap());
        let rows = csv::Reader::from_path(rows_csv)
            .unwrap()
            .records()
            .map(Result::unwrap)
            .filter(|r| r.iter().any(|c| !c.trim().is_empty()))
            .count() as u64;
        ExampleCounts {
            rows,
            locales,
            model_variants,
            overlay_variants,
        }
    })
}

/// A scratch folder with `campaigns/example` and `templates/` copied in,
/// used as the working directory of the binary.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    /// When set, the binary keeps its state in this PostgreSQL database
    /// (`ADLOC_DATABASE_URL`) instead of `.adloc/state.db`.
    pub database_url: Option<String>,
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
        Workspace {
            dir,
            database_url: None,
        }
    }

    /// [`Workspace::new`] with its state in a fresh database on the test
    /// process's PostgreSQL server.
    pub fn on_postgres() -> Workspace {
        Workspace {
            database_url: Some(pg::fresh_database()),
            ..Workspace::new()
        }
    }

    /// Point `cmd` at this workspace's state: its database when it has
    /// one, else the default file (never a database URL from the
    /// environment the tests run in).
    pub fn state_env(&self, cmd: &mut std::process::Command) {
        match &self.database_url {
            Some(url) => cmd.env("ADLOC_DATABASE_URL", url),
            None => cmd.env_remove("ADLOC_DATABASE_URL"),
        };
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
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("ADLOC_WEBHOOK_SECRET")
            .env("ADLOC_LOG", "adloc=warn")
            .args(args);
        match &self.database_url {
            Some(url) => cmd.env("ADLOC_DATABASE_URL", url),
            None => cmd.env_remove("ADLOC_DATABASE_URL"),
        };
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

/// The in-crate Gemini emulator on a loopback port, served by its own
/// runtime for the life of the test.
pub struct Emu {
    pub handle: Option<adloc_emulator::EmulatorHandle>,
    pub rt: tokio::runtime::Runtime,
}

pub const KEY: &str = "test-key-7f3a9c2e51";
/// The OpenAI key the emulator accepts when started with [`KEY`]: the same
/// secret (the emulator checks one key for both surfaces).
pub const OPENAI_KEY: &str = KEY;

impl Emu {
    pub fn start(faults: adloc_emulator::Faults) -> Emu {
        Emu::start_with(faults, Some(KEY), 42)
    }

    pub fn start_with(faults: adloc_emulator::Faults, key: Option<&str>, seed: u64) -> Emu {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = adloc_emulator::EmulatorConfig {
            seed,
            api_key: key.map(str::to_string),
            faults,
        };
        let handle = rt.block_on(adloc_emulator::spawn(config, 0)).unwrap();
        Emu {
            handle: Some(handle),
            rt,
        }
    }

    pub fn base_url(&self) -> String {
        self.handle.as_ref().unwrap().base_url()
    }

    pub fn stats(&self) -> adloc_emulator::EmulatorStats {
        self.handle.as_ref().unwrap().stats()
    }

    pub fn set_faults(&self, f: adloc_emulator::Faults) {
        self.handle.as_ref().unwrap().set_faults(f);
    }

    /// Environment for the binary with only the OpenAI key and endpoint.
    pub fn openai_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
            (
                "OPENAI_BASE_URL",
                self.handle.as_ref().unwrap().openai_base_url(),
            ),
        ]
    }

    /// Environment for the binary with both vendors' keys and endpoints.
    pub fn both_env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        env.extend(self.openai_env());
        env
    }

    /// Environment for the binary: key and base URL.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GEMINI_API_KEY", KEY.to_string()),
            ("GOOGLE_GEMINI_BASE_URL", self.base_url()),
        ]
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(h.shutdown());
        }
    }
}

impl Workspace {
    /// Run any command with the emulator's key and base URL in the environment.
    pub fn adloc_emu(&self, emu: &Emu, args: &[&str]) -> Output {
        let env = emu.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.adloc_env(args, &env)
    }

    /// Run any command with an explicit environment list (owned values).
    pub fn adloc_with(&self, env: &[(&'static str, String)], args: &[&str]) -> Output {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.adloc_env(args, &env)
    }

    /// Run against the emulator with the Gemini provider.
    pub fn adloc_gemini(&self, emu: &Emu, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--provider", "gemini"]);
        self.adloc_emu(emu, &all)
    }

    /// Append settings to campaign.toml (fast retries, no client pacing).
    pub fn append_toml(&self, text: &str) {
        let p = self.campaign().join("campaign.toml");
        let mut t = std::fs::read_to_string(&p).unwrap();
        t.push_str(text);
        std::fs::write(p, t).unwrap();
    }

    /// Replace rows.csv with a one-locale, one-variant campaign whose rows
    /// carry the given scenes (trigger words reach the prompt through them).
    pub fn small_campaign(&self, scenes: &[(&str, &str)]) {
        let mut csv = String::from("id,scene,headline\n");
        for (id, scene) in scenes {
            csv.push_str(&format!("{id},{scene},Hello\n"));
        }
        std::fs::write(self.campaign().join("rows.csv"), csv).unwrap();
        std::fs::write(
            self.campaign().join("campaign.toml"),
            "name = \"example\"\nrows = \"rows.csv\"\nlocales = [\"en-US\"]\nmodel = \"gemini-3.1-flash-image\"\nmode = \"realtime\"\n\n[[variants]]\nname = \"hero\"\ntemplate = \"hero.hbs\"\naspect_ratio = \"16:9\"\n\n[rate_limit]\nrpm = 60000\n",
        )
        .unwrap();
        std::fs::create_dir_all(self.campaign().join("templates")).unwrap();
        std::fs::write(
            self.campaign().join("templates/hero.hbs"),
            "A hero banner. Scene: {{row.scene}}. Headline: \"{{row.headline}}\"",
        )
        .unwrap();
    }

    /// Everything the run left on disk and printed, for secret scanning.
    pub fn all_bytes(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push((e.path(), std::fs::read(e.path()).unwrap_or_default()));
                }
            }
        }
        out
    }

    /// Query the state database.
    pub fn sql_rows(&self, sql: &str) -> Vec<Vec<String>> {
        let rt = tokio::runtime::Runtime::new().unwrap();
        if let Some(url) = &self.database_url {
            return rt.block_on(async {
                use sqlx::Row;
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                let out = rows
                    .iter()
                    .map(|r| {
                        (0..r.columns().len())
                            .map(|i| {
                                r.try_get::<i64, _>(i)
                                    .map(|v| v.to_string())
                                    .or_else(|_| r.try_get::<String, _>(i))
                                    .or_else(|_| r.try_get::<f64, _>(i).map(|v| v.to_string()))
                                    .unwrap_or_default()
                            })
                            .collect()
                    })
                    .collect();
                pool.close().await;
                out
            });
        }
        rt.block_on(async {
            use sqlx::Row;
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", self.state().display()))
                .await
                .unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(&pool)
                .await
                .unwrap();
            let out = rows
                .iter()
                .map(|r| {
                    (0..r.columns().len())
                        .map(|i| {
                            r.try_get::<i64, _>(i)
                                .map(|v| v.to_string())
                                .or_else(|_| r.try_get::<String, _>(i))
                                .or_else(|_| r.try_get::<f64, _>(i).map(|v| v.to_string()))
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .collect();
            pool.close().await;
            out
        })
    }
}
