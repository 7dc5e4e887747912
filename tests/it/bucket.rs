//! `--out s3://bucket/prefix` against a real S3-compatible server process
//! on loopback: moto's server (PyPI `moto[server]`), started by each test
//! on a free port. The bucket is read back with boto3, a client
//! independent of the one under test. Without moto the tests fail and say
//! how to install it; they never skip.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::common::{Workspace, code, example, stderr, stdout};

const ACCESS_KEY: &str = "AKIAADLOCTEST0000001";
const SECRET_KEY: &str = "adloc-s3-secret-d41d8cd98f00b204e980";
const BUCKET: &str = "adloc-test";

/// The Python that runs moto and boto3 (`ADLOC_TEST_PYTHON`, default `python3`).
fn python() -> String {
    std::env::var("ADLOC_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A moto S3 server process on a loopback port, killed on drop.
struct S3Server {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl S3Server {
    fn start() -> S3Server {
        let check = Command::new(python())
            .args(["-c", "import moto.server, boto3, flask_cors"])
            .output();
        match check {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "the object-storage tests need moto's S3 server and boto3: `{} -m pip install 'moto[server]'` (.ci/run installs it)\n{}",
                python(),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!(
                "cannot run {}: {e}; the object-storage tests need Python 3 with `moto[server]`",
                python()
            ),
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto's server: {e}"));
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("moto's server exited ({status}) before listening:\n{err}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto's server did not listen on port {port} within a minute"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Its log would fill the pipe; nobody reads it once it is up.
        drop(child.stderr.take());
        S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// Run a boto3 snippet against the server; `s3` is the client. Returns stdout.
    fn boto(&self, script: &str) -> String {
        let prelude = format!(
            "import boto3, hashlib, json, sys\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='{ACCESS_KEY}', aws_secret_access_key='{SECRET_KEY}', region_name='us-east-1')\n",
            self.endpoint
        );
        let o = Command::new(python())
            .args(["-c", &format!("{prelude}{script}")])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "boto3 failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn make_bucket(&self) {
        self.boto(&format!("s3.create_bucket(Bucket='{BUCKET}')"));
    }

    /// Every object in the bucket: key → (sha256 of its bytes, its
    /// `sha256` metadata, its content type).
    fn objects(&self) -> BTreeMap<String, (String, String, String)> {
        let out = self.boto(&format!(
            "out = {{}}\n\
             for page in s3.get_paginator('list_objects_v2').paginate(Bucket='{BUCKET}'):\n\
             \x20   for o in page.get('Contents', []):\n\
             \x20       r = s3.get_object(Bucket='{BUCKET}', Key=o['Key'])\n\
             \x20       out[o['Key']] = [hashlib.sha256(r['Body'].read()).hexdigest(), r['Metadata'].get('sha256', ''), r['ContentType']]\n\
             print(json.dumps(out))"
        ));
        let v: BTreeMap<String, Vec<String>> = serde_json::from_str(&out).unwrap();
        v.into_iter()
            .map(|(k, v)| (k, (v[0].clone(), v[1].clone(), v[2].clone())))
            .collect()
    }

    fn get(&self, key: &str) -> Vec<u8> {
        let out = self.boto(&format!(
            "sys.stdout.write(s3.get_object(Bucket='{BUCKET}', Key='{key}')['Body'].read().hex())"
        ));
        hex::decode(out.trim()).unwrap()
    }

    /// The adloc process's environment: credentials and the endpoint, the
    /// standard AWS way (no object_store-specific switch).
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PREFIX: &str = "nightly/2026";

fn out_url() -> String {
    format!("s3://{BUCKET}/{PREFIX}")
}

/// The example campaign with a rendition on one variant, so the bucket
/// gets masters, renditions, composites, art and contact sheets.
fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.edit(
        "campaign.toml",
        "name = \"square\"\ntemplate = \"square.hbs\"\naspect_ratio = \"1:1\"\nimage_size = \"1K\"\n",
        "name = \"square\"\ntemplate = \"square.hbs\"\naspect_ratio = \"1:1\"\nimage_size = \"1K\"\n\n[[variants.renditions]]\nsize = \"300x300\"\nformat = \"png\"\n",
    );
    ws
}

const RENDITION: &str = "\n[[variants.renditions]]\nsize = \"300x300\"\nformat = \"png\"\n";

/// Three rows, one locale, one variant with a rendition: quick to run.
fn small_workspace() -> Workspace {
    let ws = Workspace::new();
    ws.small_campaign(&[("r1", "a beach"), ("r2", "a city"), ("r3", "a forest")]);
    ws.edit(
        "campaign.toml",
        "aspect_ratio = \"16:9\"\n",
        &format!("aspect_ratio = \"16:9\"\n{RENDITION}"),
    );
    ws
}

fn run_to_bucket(ws: &Workspace, s3: &S3Server, extra: &[&str]) -> std::process::Output {
    let url = out_url();
    let mut args = vec!["run", "campaigns/example", "--out", url.as_str()];
    args.extend(extra);
    ws.adloc_with(&s3.env(), &args)
}

/// The staged tree of the campaign (beside the state file).
fn staged(ws: &Workspace) -> std::path::PathBuf {
    ws.path()
        .join(".adloc/staging/s3")
        .join(BUCKET)
        .join(PREFIX)
        .join("example")
}

fn manifest_paths(m: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for section in ["assets", "art", "retired"] {
        for a in m[section].as_array().into_iter().flatten() {
            out.push((
                a["path"].as_str().unwrap().to_string(),
                a["sha256"].as_str().unwrap().to_string(),
            ));
            for r in a["renditions"].as_array().into_iter().flatten() {
                out.push((
                    r["path"].as_str().unwrap().to_string(),
                    r["sha256"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

fn key(rel: &str) -> String {
    format!("{PREFIX}/example/{rel}")
}

/// Every object the manifest lists is in the bucket under
/// `prefix/<campaign>/` with the manifest's sha256. Returns the manifest.
fn assert_bucket_matches_manifest(s3: &S3Server) -> serde_json::Value {
    let objects = s3.objects();
    let manifest_key = key("manifest.json");
    let (msha, _, mtype) = objects
        .get(&manifest_key)
        .unwrap_or_else(|| panic!("no {manifest_key} in {:?}", objects.keys()));
    assert_eq!(mtype, "application/json");
    let m: serde_json::Value = serde_json::from_slice(&s3.get(&manifest_key)).unwrap();
    assert_eq!(
        &hex::encode(sha2::Sha256::digest(s3.get(&manifest_key))),
        msha
    );
    let listed = manifest_paths(&m);
    assert!(!listed.is_empty());
    for (rel, sha) in &listed {
        let (got, meta, _) = objects
            .get(&key(rel))
            .unwrap_or_else(|| panic!("{} listed in the manifest but not in the bucket", key(rel)));
        assert_eq!(
            got, sha,
            "{rel}: bytes in the bucket differ from the manifest"
        );
        assert_eq!(meta, sha, "{rel}: sha256 metadata");
    }
    for k in objects.keys() {
        assert!(
            k.starts_with(&format!("{PREFIX}/example/")),
            "{k} outside prefix/campaign"
        );
        assert!(!k.contains(".adloc-tmp-"), "a temporary was uploaded: {k}");
    }
    m
}

#[test]
fn a_run_to_s3_puts_every_listed_object_under_prefix_and_campaign_with_its_sha256() {
    let s3 = S3Server::start();
    s3.make_bucket();
    let ws = workspace();
    let o = run_to_bucket(&ws, &s3, &["--contact-sheet"]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let manifest_url = format!("s3://{BUCKET}/{PREFIX}/example/manifest.json");
    assert!(
        stdout(&o).contains(&format!("manifest {manifest_url}")),
        "{}",
        stdout(&o)
    );

    let m = assert_bucket_matches_manifest(&s3);
    let e = example();
    assert_eq!(m["assets"].as_array().unwrap().len() as u64, e.assets());
    let renditions: usize = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["renditions"].as_array().map_or(0, |r| r.len()))
        .sum();
    assert_eq!(
        renditions as u64,
        e.per_variant(),
        "one rendition per square master"
    );
    let objects = s3.objects();
    // Layout as on disk: `<locale>/<variant>/…`, contact sheets too.
    assert!(
        objects
            .keys()
            .any(|k| k.starts_with(&key("contact-sheets/"))),
        "{:?}",
        objects.keys()
    );
    assert!(objects.keys().any(|k| k.starts_with(&key("de-DE/hero/"))));
    // Same bytes as the staged tree, file for file.
    let staged_root = staged(&ws);
    let mut staged_count = 0;
    let mut stack = vec![staged_root.clone()];
    while let Some(d) = stack.pop() {
        for ent in std::fs::read_dir(&d).unwrap().flatten() {
            let p = ent.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(&staged_root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let (sha, _, _) = objects
                .get(&key(&rel))
                .unwrap_or_else(|| panic!("{rel} not uploaded"));
            assert_eq!(*sha, crate::common::sha256_file(&p), "{rel}");
            staged_count += 1;
        }
    }
    assert_eq!(
        staged_count,
        objects.len(),
        "the bucket holds exactly the staged tree"
    );
    assert!(!ws.out().exists(), "nothing goes to the local out/ folder");

    // Credentials never reach output, logs, manifest, staged files or state.
    for text in [stdout(&o), stderr(&o)] {
        assert!(!text.contains(SECRET_KEY));
    }
    let needle = SECRET_KEY.as_bytes();
    for (path, bytes) in ws.all_bytes() {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "secret key in {}",
            path.display()
        );
    }
}

#[test]
fn an_unchanged_rerun_to_s3_uploads_only_the_manifests_and_review_page() {
    let s3 = S3Server::start();
    s3.make_bucket();
    let ws = small_workspace();
    let first = run_to_bucket(&ws, &s3, &[]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let before = s3.objects();
    let o = run_to_bucket(&ws, &s3, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The documents a run rewrites (they carry the time they were written):
    // manifest.json, manifest.approved.json and review/index.html.
    let files = before.len() - 3;
    assert!(
        stdout(&o).contains(&format!(
            "bucket: 3 object(s) uploaded and read back, {files} unchanged, 0 deleted"
        )),
        "{}",
        stdout(&o)
    );
    let after = s3.objects();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    assert_bucket_matches_manifest(&s3);

    // Dropping the rendition deletes its objects, after the new manifest is up.
    ws.edit("campaign.toml", RENDITION, "\n");
    let o = run_to_bucket(&ws, &s3, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("3 deleted"), "{}", stdout(&o));
    assert!(!s3.objects().keys().any(|k| k.contains("@300x300")));
    assert_bucket_matches_manifest(&s3);
}

#[test]
fn a_kill_before_the_manifest_leaves_objects_without_a_manifest_and_the_rerun_publishes_it() {
    let s3 = S3Server::start();
    s3.make_bucket();
    let ws = small_workspace();
    let mut env = s3.env();
    env.push(("ADLOC_CRASH_AT", "upload-before-manifest".into()));
    let url = out_url();
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--out", &url]);
    assert_ne!(code(&o), 0, "the crash point must abort the run");
    let objects = s3.objects();
    assert!(!objects.is_empty(), "objects go up before the manifest");
    assert!(
        !objects.contains_key(&key("manifest.json")),
        "the manifest goes last: a reader who sees it sees every object it lists"
    );
    let o = run_to_bucket(&ws, &s3, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_bucket_matches_manifest(&s3);
}

#[test]
fn a_missing_bucket_fails_the_run_with_a_clear_message_and_no_credential() {
    let s3 = S3Server::start();
    let ws = small_workspace();
    let mut env = s3.env();
    env.push(("ADLOC_LOG", "debug".into()));
    let url = out_url();
    let o = ws.adloc_with(
        &env,
        &[
            "run",
            "campaigns/example",
            "--out",
            &url,
            "--log-format",
            "json",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    let last: serde_json::Value =
        serde_json::from_str(err.lines().last().unwrap()).unwrap_or_else(|_| panic!("{err}"));
    assert_eq!(last["code"], "upload_failed", "{err}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains(&format!("s3://{BUCKET}/{PREFIX}/example/")),
        "{err}"
    );
    assert!(!err.contains(SECRET_KEY), "secret key in stderr");
    assert!(!stdout(&o).contains(SECRET_KEY), "secret key in stdout");
}

#[test]
fn bad_out_urls_are_refused_before_anything_is_written() {
    let ws = Workspace::new();
    for bad in [
        "s3://",
        "s3://Bad_Bucket/x",
        "ftp://host/out",
        "s3://bucket-1/a//b",
        "s3://AKIA:topsecretvalue@bucket-1/x",
    ] {
        let o = ws.adloc(&["run", "campaigns/example", "--out", bad]);
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("--out"), "{bad}: {}", stderr(&o));
        assert!(!stderr(&o).contains("topsecretvalue"), "{}", stderr(&o));
        assert!(!ws.path().join(".adloc").exists(), "{bad}: state written");
        assert!(!ws.path().join("out").exists(), "{bad}: output written");
    }
}

#[test]
fn a_decision_in_review_serve_on_a_bucket_campaign_reaches_the_buckets_manifest() {
    use crate::review_serve::{meta, raw, serve_with};
    let s3 = S3Server::start();
    s3.make_bucket();
    let ws = small_workspace();
    let o = run_to_bucket(&ws, &s3, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let before: serde_json::Value = serde_json::from_slice(&s3.get(&key("manifest.json"))).unwrap();
    let asset = &before["assets"][0];
    let path = asset["path"].as_str().unwrap();
    let cell = path.rsplit_once('.').map_or(path, |(s, _)| s).to_string();
    let sha = asset["sha256"].as_str().unwrap().to_string();

    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = out_url();
    let srv = serve_with(&ws, "127.0.0.1:0", &env, &["--out", &url]);
    let page = raw(&srv.base, "GET", "/review/", &[], b"");
    assert_eq!(page.status, 200, "{}", page.text());
    let cookie = page.cookie();
    let csrf = meta(&page.text(), "csrf-token");
    // The staged copy is served: the asset's own bytes.
    let img = raw(
        &srv.base,
        "GET",
        &format!("/{path}"),
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(img.status, 200, "{path}");
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&img.body)),
        sha
    );

    let body = serde_json::json!({
        "action": "approve", "note": null, "assets": [{ "asset": cell, "sha256": sha }]
    })
    .to_string();
    let r = raw(
        &srv.base,
        "POST",
        "/api/decide",
        &[
            ("Content-Type", "application/json"),
            ("Cookie", &cookie),
            ("Origin", &srv.base),
            ("X-CSRF-Token", &csrf),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let after: serde_json::Value = serde_json::from_slice(&s3.get(&key("manifest.json"))).unwrap();
    let decided = after["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == asset["path"])
        .unwrap();
    assert_eq!(decided["approval"]["state"], "approved", "{decided}");
    // Every object the manifest lists is still there with its sha256.
    assert_bucket_matches_manifest(&s3);
}

#[test]
fn adloc_verify_reads_the_bucket_itself_and_fails_on_an_object_changed_there() {
    let s3 = S3Server::start();
    s3.make_bucket();
    let ws = small_workspace();
    let o = run_to_bucket(&ws, &s3, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = assert_bucket_matches_manifest(&s3);
    let listed = m["assets"].as_array().unwrap().len()
        + m["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["renditions"].as_array().map_or(0, Vec::len))
            .sum::<usize>();
    // The staging tree is gone: what verify reads is the bucket.
    std::fs::remove_dir_all(staged(&ws)).unwrap();
    let url = out_url();
    let o = ws.adloc_with(&s3.env(), &["verify", "example", "--out", &url]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("example: {listed} of {listed} files verified")),
        "{}",
        stdout(&o)
    );
    for (k, v) in s3.env() {
        if k.contains("SECRET") {
            assert!(!stdout(&o).contains(&v) && !stderr(&o).contains(&v));
        }
    }

    // One byte of one rendition changed in the bucket, not on disk.
    let rel = m["assets"][0]["renditions"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bytes = s3.get(&key(&rel));
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    s3.boto(&format!(
        "s3.put_object(Bucket='{BUCKET}', Key='{}', Body=bytes.fromhex('{}'))",
        key(&rel),
        hex::encode(&bytes)
    ));
    let o = ws.adloc_with(&s3.env(), &["verify", "example", "--out", &url]);
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    let line = stdout(&o)
        .lines()
        .find(|l| l.contains(&rel))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.starts_with("FAIL") && line.contains("sha256"),
        "{line}"
    );
    assert!(stdout(&o).contains(", 1 failed"), "{}", stdout(&o));
}
