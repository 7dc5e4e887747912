//! `adloc review serve` (issue 25): the review page with actions over
//! HTTP. Refusals at the HTTP level (cross-site and token-less POSTs,
//! traversal paths, oversized bodies, a decision on a replaced image, a
//! non-loopback address without tokens), each proved to change nothing in
//! the state; and a real Chromium driven through WebDriver (Debian's
//! `chromium-driver`): approve, reject with a note, undo, bulk-approve a
//! filter and the keyboard, after which `adloc run` revises exactly the
//! rejected assets and the open page shows the revisions without a reload.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// The reviewer the loopback server records (its user, as `approve` would).
pub(crate) const LOCAL_REVIEWER: &str = "lea";

/// `adloc review serve` as a child process, stopped when dropped.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_command(ws: &Workspace, listen: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adloc"));
    ws.state_env(&mut cmd);
    cmd.current_dir(ws.path())
        .args(["review", "serve", "example", "--listen", listen])
        .env("ADLOC_LOG", "adloc=info")
        .env("ADLOC_REVIEWER", LOCAL_REVIEWER)
        .env_remove("ADLOC_REVIEW_TOKENS")
        .env_remove("ADLOC_REVIEW_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Start the server; its first stdout line names the address it took.
pub(crate) fn serve(ws: &Workspace, listen: &str, env: &[(&str, &str)]) -> Server {
    serve_with(ws, listen, env, &[])
}

/// [`serve`] with more arguments (`--out …`).
pub(crate) fn serve_with(
    ws: &Workspace,
    listen: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Server {
    let mut cmd = serve_command(ws, listen, env);
    cmd.args(args);
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let port = addr.rsplit(':').next().unwrap();
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// One raw HTTP/1.1 request (paths exactly as written: no client
/// normalizes `..` away). Returns status, headers (lowercase names) and body.
pub(crate) fn raw(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    // A refused large body may be answered before it is all sent.
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The session cookie it sets, as a `Cookie` header value.
    pub(crate) fn cookie(&self) -> String {
        self.header("set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string()
    }
}

/// `content` of `<meta name="NAME" content="…">`.
pub(crate) fn meta(html: &str, name: &str) -> String {
    let pattern = format!("name=\"{name}\" content=\"");
    let at = html
        .find(&pattern)
        .unwrap_or_else(|| panic!("no meta {name}"));
    let rest = &html[at + pattern.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Every decision row: asset path, decision, reviewer, note.
fn decisions(ws: &Workspace) -> Vec<Vec<String>> {
    ws.sql_rows(
        "SELECT asset_path, decision, decided_by, COALESCE(note, '') FROM decisions ORDER BY id",
    )
}

fn key_of(path: &str) -> String {
    path.rsplit_once('.').map_or(path, |(s, _)| s).to_string()
}

/// Asset key → (sha256, approval state, revision).
fn assets(ws: &Workspace) -> BTreeMap<String, (String, String, u64)> {
    ws.manifest()["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                key_of(a["path"].as_str().unwrap()),
                (
                    a["sha256"].as_str().unwrap().to_string(),
                    a["approval"]["state"].as_str().unwrap().to_string(),
                    a["revision"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// A few assets made by the local renderer (no key, no network).
fn small_local_campaign() -> Workspace {
    let ws = Workspace::new();
    ws.small_campaign(&[("a", "a ridge"), ("b", "a lake"), ("c", "a dune")]);
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    ws
}

fn decide_body(action: &str, asset: &str, sha: &str, note: Option<&str>) -> Vec<u8> {
    json!({ "action": action, "note": note, "assets": [{ "asset": asset, "sha256": sha }] })
        .to_string()
        .into_bytes()
}

#[test]
fn cross_site_and_token_less_posts_traversal_paths_and_big_bodies_are_refused_and_change_nothing() {
    let ws = small_local_campaign();
    let before = assets(&ws);
    let (key, (sha, _, _)) = before
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    let manifest_before = std::fs::read(ws.out().join("manifest.json")).unwrap();
    let srv = serve(&ws, "127.0.0.1:0", &[]);
    let base = srv.base.clone();
    let origin = base.clone();

    let page = raw(&base, "GET", "/review/", &[], b"");
    assert_eq!(page.status, 200);
    let cookie = page.cookie();
    let html = page.text();
    let csrf = meta(&html, "csrf-token");
    assert!(
        html.contains(&format!("data-asset=\"{key}\"")),
        "the page names each cell's asset"
    );
    let body = decide_body("approve", &key, &sha, None);
    let json_ct = ("Content-Type", "application/json");

    // Refused: 403 each, and nothing recorded.
    let refused: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "cross-site origin",
            vec![
                json_ct,
                ("Cookie", &cookie),
                ("X-CSRF-Token", &csrf),
                ("Origin", "http://evil.example"),
            ],
        ),
        (
            "no origin",
            vec![json_ct, ("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        ),
        (
            "no anti-CSRF token",
            vec![json_ct, ("Cookie", &cookie), ("Origin", &origin)],
        ),
        (
            "a wrong anti-CSRF token",
            vec![
                json_ct,
                ("Cookie", &cookie),
                ("Origin", &origin),
                ("X-CSRF-Token", "0000"),
            ],
        ),
        (
            "no session",
            vec![json_ct, ("Origin", &origin), ("X-CSRF-Token", &csrf)],
        ),
        (
            "the browser says cross-site",
            vec![
                json_ct,
                ("Cookie", &cookie),
                ("Origin", &origin),
                ("X-CSRF-Token", &csrf),
                ("Sec-Fetch-Site", "cross-site"),
            ],
        ),
    ];
    for (what, headers) in &refused {
        let r = raw(&base, "POST", "/api/decide", headers, &body);
        assert_eq!(r.status, 403, "{what}: {}", r.text());
    }
    // A GET cannot decide.
    let r = raw(&base, "GET", "/api/decide", &[("Cookie", &cookie)], b"");
    assert_eq!(r.status, 404);

    let good: Vec<(&str, &str)> = vec![
        json_ct,
        ("Cookie", &cookie),
        ("Origin", &origin),
        ("X-CSRF-Token", &csrf),
    ];
    // A body over the bound, a reviewer name from the browser, a rejection
    // without a note, and a decision on an image that is not the current one.
    let big = vec![b' '; 1024 * 1024];
    assert_eq!(raw(&base, "POST", "/api/decide", &good, &big).status, 413);
    let with_by = json!({ "action": "approve", "by": "mallory", "assets": [{ "asset": key, "sha256": sha }] });
    assert_eq!(
        raw(
            &base,
            "POST",
            "/api/decide",
            &good,
            with_by.to_string().as_bytes()
        )
        .status,
        400
    );
    assert_eq!(
        raw(
            &base,
            "POST",
            "/api/decide",
            &good,
            &decide_body("reject", &key, &sha, None)
        )
        .status,
        400
    );
    let stale = raw(
        &base,
        "POST",
        "/api/decide",
        &good,
        &decide_body("approve", &key, &"0".repeat(64), None),
    );
    assert_eq!(stale.status, 409, "{}", stale.text());
    assert!(stale.text().contains("replaced"), "{}", stale.text());

    // Traversal, absolute paths, the state file and the campaign folder:
    // 404, while a listed asset is served with its bytes.
    let asset_path = ws.manifest()["assets"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        "/../../.adloc/state.db",
        "/%2e%2e/%2e%2e/.adloc/state.db",
        "/..%2f..%2f.adloc%2fstate.db",
        "/review/thumbs/../../../../.adloc/state.db",
        "/review/thumbs/%2e%2e%2f%2e%2e%2fmanifest.json",
        "/.adloc/state.db",
        "//etc/passwd",
        "/etc/passwd",
        "/../../campaigns/example/campaign.toml",
        "/campaigns/example/rows.csv",
        "/manifest.json",
        "/review/index.html/../../manifest.json",
        &format!("/{asset_path}/../../../../.adloc/state.db"),
        &format!("/../example/{asset_path}"),
    ] {
        let r = raw(&base, "GET", path, &[("Cookie", &cookie)], b"");
        assert_eq!(r.status, 404, "{path}: {}", r.status);
        assert!(!r.body.starts_with(b"SQLite format"), "{path}");
    }
    let served = raw(
        &base,
        "GET",
        &format!("/{asset_path}"),
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(served.status, 200);
    assert_eq!(
        served.body,
        std::fs::read(ws.out().join(&asset_path)).unwrap()
    );

    assert!(decisions(&ws).is_empty(), "{:?}", decisions(&ws));
    assert_eq!(
        std::fs::read(ws.out().join("manifest.json")).unwrap(),
        manifest_before,
        "no refused request republished anything"
    );

    // The same request, same-origin with its token, is recorded, with the
    // server's reviewer.
    let ok = raw(&base, "POST", "/api/decide", &good, &body);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        decisions(&ws),
        vec![vec![
            asset_path.clone(),
            "approved".into(),
            LOCAL_REVIEWER.into(),
            String::new()
        ]]
    );
    assert_eq!(
        assets(&ws)[&key].1,
        "approved",
        "published at once, like adloc approve"
    );
    // Undo is a decision too: back to pending, both in the history.
    let undo = raw(
        &base,
        "POST",
        "/api/decide",
        &good,
        &decide_body("undo", &key, &sha, None),
    );
    assert_eq!(undo.status, 200, "{}", undo.text());
    let rows = decisions(&ws);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][1], "pending");
    assert_eq!(assets(&ws)[&key].1, "pending");
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let undone = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == asset_path.as_str())
        .unwrap();
    assert!(undone["approval"]["by"].is_null(), "{undone}");

    // Two reviewers deciding the same cell at once: both land in the
    // history, the later is the current one, and the version every open
    // page polls moves on.
    let version = |c: &str| raw(&base, "GET", "/api/version", &[("Cookie", c)], b"").text();
    let v0 = version(&cookie);
    let other = raw(&base, "GET", "/review/", &[], b"");
    let cookie2 = other.cookie();
    let csrf2 = meta(&other.text(), "csrf-token");
    assert_ne!(csrf2, csrf, "each session has its own anti-CSRF token");
    let good2: Vec<(&str, &str)> = vec![
        json_ct,
        ("Cookie", &cookie2),
        ("Origin", &origin),
        ("X-CSRF-Token", &csrf2),
    ];
    // A session's token is no good with another session's cookie.
    let crossed = vec![
        json_ct,
        ("Cookie", &cookie2),
        ("Origin", &origin),
        ("X-CSRF-Token", &csrf),
    ];
    assert_eq!(
        raw(&base, "POST", "/api/decide", &crossed, &body).status,
        403
    );
    let reject = decide_body("reject", &key, &sha, Some("Crop tighter"));
    let (r1, r2) = std::thread::scope(|s| {
        let a = s.spawn(|| raw(&base, "POST", "/api/decide", &good, &reject));
        let b = s.spawn(|| raw(&base, "POST", "/api/decide", &good2, &body));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(
        (r1.status, r2.status),
        (200, 200),
        "{} {}",
        r1.text(),
        r2.text()
    );
    let rows = decisions(&ws);
    assert_eq!(rows.len(), 4);
    let mut last_two: Vec<&str> = rows[2..].iter().map(|r| r[1].as_str()).collect();
    let current = last_two[1].to_string();
    last_two.sort_unstable();
    assert_eq!(last_two, ["approved", "rejected"]);
    assert_eq!(
        assets(&ws)[&key].1,
        current,
        "the later decision is the current one"
    );
    assert_ne!(version(&cookie2), v0);
}

#[test]
fn a_non_loopback_listen_needs_tokens_and_a_decision_records_the_tokens_reviewer() {
    let ws = small_local_campaign();

    // Without tokens: exit 2 at start, nothing served or changed.
    let out = serve_command(&ws, "0.0.0.0:0", &[]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ADLOC_REVIEW_TOKENS"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("http://"));
    // A tokens file with a bad line: exit 2, naming the line, not the secret.
    let bad = ws.path().join("bad-tokens.toml");
    std::fs::write(&bad, "tiny-secret = \"Ana\"\n").unwrap();
    let out = serve_command(
        &ws,
        "0.0.0.0:0",
        &[("ADLOC_REVIEW_TOKENS", bad.to_str().unwrap())],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad-tokens.toml:1") && !err.contains("tiny-secret"),
        "{err}"
    );

    let token = "tok-ana-7c1e0f9a42b8d356";
    let tokens = ws.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        format!("# reviewers\n\"{token}\" = \"Ana Example\"\n"),
    )
    .unwrap();
    let srv = serve(
        &ws,
        "0.0.0.0:0",
        &[("ADLOC_REVIEW_TOKENS", tokens.to_str().unwrap())],
    );
    let base = srv.base.clone();
    let m = ws.manifest();
    let a = &m["assets"][0];
    let (path, sha) = (a["path"].as_str().unwrap(), a["sha256"].as_str().unwrap());
    // Nothing without logging in.
    let r = raw(&base, "GET", "/review/", &[], b"");
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    assert_eq!(raw(&base, "GET", &format!("/{path}"), &[], b"").status, 401);
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let r = raw(
        &base,
        "POST",
        "/login",
        &[form, ("Origin", &base)],
        b"token=wrong-token-0123456789",
    );
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    // A cross-site login is refused like any POST.
    let r = raw(
        &base,
        "POST",
        "/login",
        &[form, ("Origin", "http://evil.example")],
        format!("token={token}").as_bytes(),
    );
    assert_eq!(r.status, 403);
    let r = raw(
        &base,
        "POST",
        "/login",
        &[form, ("Origin", &base)],
        format!("token={token}").as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = r.cookie();
    let page = raw(&base, "GET", "/review/", &[("Cookie", &cookie)], b"");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Ana Example"));
    assert!(
        !page.text().contains(token),
        "a token never appears in a page"
    );
    let csrf = meta(&page.text(), "csrf-token");
    let r = raw(
        &base,
        "POST",
        "/api/decide",
        &[
            ("Content-Type", "application/json"),
            ("Cookie", &cookie),
            ("Origin", &base),
            ("X-CSRF-Token", &csrf),
        ],
        &decide_body("reject", &key_of(path), sha, Some("Logo too small")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        decisions(&ws),
        vec![vec![
            path.to_string(),
            "rejected".into(),
            "Ana Example".into(),
            "Logo too small".into()
        ]]
    );
    drop(srv);
    for (file, bytes) in ws.all_bytes() {
        if file != tokens {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "the token leaked into {}",
                file.display()
            );
        }
    }
}

// ---------------------------------------------------------------------
// A real browser, through WebDriver.

fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    std::env::var_os(env).map(PathBuf::from).or_else(|| {
        names.iter().find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
    })
}

/// Chromium driven through chromedriver's W3C WebDriver endpoint.
pub(crate) struct Browser {
    driver: Child,
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.rt.block_on(self.client.delete(&self.session).send());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The web element identifier (W3C WebDriver, "Elements":
/// https://www.w3.org/TR/webdriver2/#elements).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    pub(crate) fn start() -> Browser {
        let driver_bin = find_binary("CHROMEDRIVER", &["chromedriver"]).unwrap_or_else(|| {
            panic!(
                "chromedriver is not installed: the review server tests drive a real Chromium \
                 (apt-get install -y --no-install-recommends chromium-driver; ./test.sh does this)"
            )
        });
        let chromium = find_binary("CHROMIUM", &["chromium", "chromium-browser"])
            .expect("chromium is installed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = rt.block_on(async {
                let r = client.get(format!("{base}/status")).send().await.ok()?;
                let v: Value = r.json().await.ok()?;
                v["value"]["ready"].as_bool()
            });
            if ready == Some(true) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "chromedriver never ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1600,1200",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let v: Value = rt.block_on(async {
            client
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"));
        Browser {
            driver,
            rt,
            client,
            session: format!("{base}/session/{id}"),
            _profile: profile,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let v: Value = self.rt.block_on(async {
            let mut req = self.client.request(method, &url);
            if let Some(b) = body {
                req = req.json(&b);
            }
            req.send().await.unwrap().json().await.unwrap()
        });
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {v}");
        }
        v["value"].clone()
    }

    pub(crate) fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })));
    }

    pub(crate) fn find(&self, css: &str) -> String {
        let v = self.call(
            reqwest::Method::POST,
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {v}"))
            .to_string()
    }

    pub(crate) fn click(&self, css: &str) {
        let e = self.find(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        );
    }

    pub(crate) fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Press keys on whatever has the focus (real key events).
    pub(crate) fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            actions.push(json!({ "type": "keyDown", "value": c.to_string() }));
            actions.push(json!({ "type": "keyUp", "value": c.to_string() }));
        }
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })),
        );
    }

    pub(crate) fn script(&self, js: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": js, "args": [] })),
        )
    }

    /// Wait (bounded) until `js` returns true; panics with `what` after.
    pub(crate) fn wait_for(&self, what: &str, js: &str) {
        let started = Instant::now();
        while self.script(js) != Value::Bool(true) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "never happened: {what} (status: {})",
                self.script("return document.getElementById('status').textContent")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn cell(key: &str) -> String {
        format!("td.cell[data-asset=\"{key}\"]")
    }

    pub(crate) fn wait_state(&self, key: &str, state: &str) {
        self.wait_for(
            &format!("{key} {state}"),
            &format!(
                "var c = document.querySelector('{}'); return !!c && c.dataset.state === '{state}';",
                Browser::cell(key)
            ),
        );
    }

    pub(crate) fn focused(&self) -> String {
        self.script(
            "var c = document.activeElement.closest('td.cell'); return c ? c.dataset.asset : '';",
        )
        .as_str()
        .unwrap()
        .to_string()
    }
}

const ENTER: &str = "\u{E007}";

#[test]
fn a_reviewer_in_chromium_approves_rejects_undoes_bulk_approves_and_uses_keys_then_run_revises_exactly_the_rejected()
 {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    ws.small_campaign(&[
        ("a", "a ridge"),
        ("b", "a lake"),
        ("c", "a dune"),
        ("d", "a glacier"),
    ]);
    ws.edit(
        "campaign.toml",
        "locales = [\"en-US\"]",
        "locales = [\"en-US\", \"de-DE\"]",
    );
    let o = ws.adloc_with(
        &emu.env(),
        &["run", "campaigns/example", "--provider", "gemini"],
    );
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let first = assets(&ws);
    assert_eq!(first.len(), 8);
    let srv = serve(&ws, "127.0.0.1:0", &[]);
    let b = Browser::start();
    b.goto(&format!("{}/review/", srv.base));
    b.wait_for(
        "the served page",
        "return document.querySelectorAll('td.cell[data-asset]').length === 8",
    );
    // Every control has an accessible name.
    let unnamed = b.script(
        "return Array.prototype.filter.call(document.querySelectorAll('button, input, select, td.cell'), \
         function (e) { return !(e.getAttribute('aria-label') || e.closest('label') || e.textContent.trim()); }).length",
    );
    assert_eq!(unnamed, json!(0));

    // Approve with the cell's button.
    b.click(&format!(
        "{} button[data-action=\"approve\"]",
        Browser::cell("en-US/hero/a")
    ));
    b.wait_state("en-US/hero/a", "approved");
    // Reject with a note, submitted with Enter.
    b.click(&format!(
        "{} button[data-action=\"reject\"]",
        Browser::cell("en-US/hero/b")
    ));
    b.type_into(
        &format!("{} input[name=\"note\"]", Browser::cell("en-US/hero/b")),
        &format!("Make the sky bluer{ENTER}"),
    );
    b.wait_state("en-US/hero/b", "rejected");
    // Reject with the confirm button, then undo.
    b.click(&format!(
        "{} button[data-action=\"reject\"]",
        Browser::cell("en-US/hero/c")
    ));
    b.type_into(
        &format!("{} input[name=\"note\"]", Browser::cell("en-US/hero/c")),
        "Too dark",
    );
    b.click(&format!(
        "{} button[data-action=\"confirm\"]",
        Browser::cell("en-US/hero/c")
    ));
    b.wait_state("en-US/hero/c", "rejected");
    b.click(&format!(
        "{} button[data-action=\"undo\"]",
        Browser::cell("en-US/hero/c")
    ));
    b.wait_state("en-US/hero/c", "pending");

    // Bulk-approve what a filter shows: de-DE only.
    b.click("#f-locale option[value=\"de-DE\"]");
    b.wait_for(
        "the de-DE filter",
        "return document.getElementById('shown').dataset.shown === '4'",
    );
    b.click("button[data-action=\"bulk-approve\"]");
    for row in ["a", "b", "c", "d"] {
        b.wait_state(&format!("de-DE/hero/{row}"), "approved");
    }
    b.click("#f-locale option[value=\"\"]");
    b.wait_for(
        "all cells shown",
        "return document.getElementById('shown').dataset.shown === '8'",
    );

    // Keys: a approves the focused cell, u undoes, j/k move, r opens the note.
    b.script(&format!(
        "document.querySelector('{}').focus();",
        Browser::cell("en-US/hero/c")
    ));
    b.keys("a");
    b.wait_state("en-US/hero/c", "approved");
    b.keys("u");
    b.wait_state("en-US/hero/c", "pending");
    assert_eq!(b.focused(), "en-US/hero/c", "the focus stays on the cell");
    b.keys("j");
    assert_eq!(b.focused(), "de-DE/hero/d");
    b.keys("j");
    assert_eq!(b.focused(), "en-US/hero/d");
    b.keys("k");
    assert_eq!(b.focused(), "de-DE/hero/d");
    b.keys("j");
    b.keys("r");
    b.wait_for(
        "the note field has the focus",
        "return document.activeElement.name === 'note'",
    );
    b.keys(&format!("Warmer light{ENTER}"));
    b.wait_state("en-US/hero/d", "rejected");

    // The state, as the server published it.
    let now = assets(&ws);
    let state = |k: &str| now[k].1.as_str();
    assert_eq!(state("en-US/hero/a"), "approved");
    assert_eq!(state("en-US/hero/b"), "rejected");
    assert_eq!(state("en-US/hero/c"), "pending");
    assert_eq!(state("en-US/hero/d"), "rejected");
    for row in ["a", "b", "c", "d"] {
        assert_eq!(state(&format!("de-DE/hero/{row}")), "approved");
    }
    let rows = decisions(&ws);
    assert!(rows.iter().all(|r| r[2] == LOCAL_REVIEWER), "{rows:?}");
    let history_of_c: Vec<&str> = rows
        .iter()
        .filter(|r| key_of(&r[0]) == "en-US/hero/c")
        .map(|r| r[1].as_str())
        .collect();
    assert_eq!(history_of_c, ["rejected", "pending", "approved", "pending"]);

    // The next run revises exactly the two rejected assets, with their notes;
    // the open page follows without a reload.
    let edits_before = emu.stats().edits.len();
    let o = ws.adloc_with(
        &emu.env(),
        &["run", "campaigns/example", "--provider", "gemini"],
    );
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let stats = emu.stats();
    let edits = &stats.edits[edits_before..];
    let mut seen: Vec<(String, String)> = edits
        .iter()
        .map(|e| (e.image_sha256.clone(), e.instruction.clone()))
        .collect();
    seen.sort();
    let mut want = vec![
        (
            first["en-US/hero/b"].0.clone(),
            "Make the sky bluer".to_string(),
        ),
        (first["en-US/hero/d"].0.clone(), "Warmer light".to_string()),
    ];
    want.sort();
    assert_eq!(seen, want);
    let after = assets(&ws);
    for (k, (sha, _, rev)) in &after {
        let revised = k == "en-US/hero/b" || k == "en-US/hero/d";
        assert_eq!(*rev, if revised { 2 } else { 1 }, "{k}");
        assert_eq!(sha != &first[k].0, revised, "{k}");
    }
    let new_b = &after["en-US/hero/b"].0;
    b.wait_for(
        "the page shows revision 2 of en-US/hero/b",
        &format!(
            "var c = document.querySelector('{}'); return c.dataset.sha256 === '{new_b}' && c.dataset.state === 'pending' \
             && !!c.querySelector('figure.previous');",
            Browser::cell("en-US/hero/b")
        ),
    );
}
