//! `adloc review serve`: the review page with actions, over HTTP.
//!
//! The page is the static one ([`super::build_with`]) plus controls; every
//! decision goes through [`Store::record_decisions`], the code `adloc
//! approve` and `reject` use, so the next run revises what was rejected.
//!
//! Decisions recorded here:
//! - One handler dispatches on method and path by hand, so what is served
//!   is a short list anyone can read: the page, its version, the decision
//!   endpoint, the login, and files the latest manifest lists (assets,
//!   renditions, placements, earlier revisions, thumbnails of listed
//!   assets). Everything else is 404: `..`, absolute paths, the state file
//!   and the campaign folder are never looked up on disk at all.
//! - A decision names the image the reviewer saw (its SHA-256): when the
//!   asset has been replaced since the page was loaded, the decision is
//!   refused (409) rather than applied to an image nobody looked at.
//! - Sessions live in memory (a restart logs everyone out; the state
//!   keeps every decision). Each session has its own anti-CSRF token; a
//!   POST needs it, the session cookie (`SameSite=Strict`, `HttpOnly`) and
//!   an `Origin` that is this server. On a loopback address the `Host`
//!   must be a loopback name too, so a DNS-rebound page cannot talk to it.
//! - Reviewer tokens are kept as SHA-256 digests only; the reviewer's name
//!   comes from the token's entry, never from the browser.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Served, Sheet, esc};
use crate::domain::{
    Decision, DecisionFacts, Error, InputErrors, InputProblem, Result, strip_extension,
};
use crate::manifest::{self, AssetEntry, Manifest};
use crate::store::{NewDecision, Store};

/// Largest request body read (a bulk decision over thousands of cells fits).
pub const MAX_BODY: usize = 256 * 1024;
/// Longest note kept, in characters.
pub const MAX_NOTE: usize = 2000;
/// Most assets in one decision request.
pub const MAX_ASSETS: usize = 20_000;
/// Sessions kept at most; the oldest go first beyond this.
const MAX_SESSIONS: usize = 10_000;
/// How long a session lasts: a working day; then the page is loaded (and,
/// off loopback, the token entered) again.
const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(12 * 3600);
/// The session cookie's name.
const COOKIE: &str = "adloc_review";

/// One reviewer token, kept as its SHA-256 (the token itself is dropped).
#[derive(Clone)]
pub struct ReviewerToken {
    digest: [u8; 32],
    name: String,
}

impl std::fmt::Debug for ReviewerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the digest either: it is as good as the token to a brute force.
        f.debug_struct("ReviewerToken")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ReviewerToken {
    /// A token and the reviewer it names.
    pub fn new(token: &str, name: &str) -> ReviewerToken {
        ReviewerToken {
            digest: Sha256::digest(token.as_bytes()).into(),
            name: name.to_string(),
        }
    }
}

/// Shortest token accepted: a guessable token is no login at all.
pub const MIN_TOKEN_LEN: usize = 16;

/// Parse a tokens file: one `token = "name"` line per reviewer, blank lines
/// and `#` comments ignored. A problem names its line, never its text (the
/// line holds a secret).
pub fn parse_tokens(
    path: &Path,
    text: &str,
) -> std::result::Result<Vec<ReviewerToken>, InputErrors> {
    let mut out = Vec::new();
    let mut errors = InputErrors::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // One line is one TOML key/value: a token with characters a bare
        // key cannot hold may be quoted.
        let parsed = toml::from_str::<toml::Table>(trimmed).ok().and_then(|t| {
            let mut it = t.into_iter();
            match (it.next(), it.next()) {
                (Some((k, toml::Value::String(v))), None) => Some((k, v)),
                _ => None,
            }
        });
        match parsed {
            Some((token, name)) if token.len() >= MIN_TOKEN_LEN && !name.trim().is_empty() => {
                out.push(ReviewerToken::new(&token, name.trim()));
            }
            Some((token, _)) if token.len() < MIN_TOKEN_LEN => errors.push(InputProblem::at(
                path,
                line_no,
                None,
                format!("a token must be at least {MIN_TOKEN_LEN} characters"),
            )),
            _ => errors.push(InputProblem::at(
                path,
                line_no,
                None,
                "expected `token = \"reviewer name\"`",
            )),
        }
    }
    if out.is_empty() && errors.is_empty() {
        errors.push(InputProblem::file(path, "no reviewer token in the file"));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Who may use the server.
#[derive(Debug, Clone)]
pub enum Access {
    /// A loopback address: no login; decisions are recorded as this reviewer.
    Loopback {
        /// The reviewer (the local user).
        reviewer: String,
    },
    /// Any other address: a reviewer logs in with a token.
    Tokens(Vec<ReviewerToken>),
}

/// Rewrites what the state implies (manifests and the static page) after
/// decisions; given by the caller, which owns publishing.
#[async_trait::async_trait]
pub trait Publish: Send + Sync {
    /// Publish `campaign` after a decision.
    async fn publish(&self, store: &Store, campaign: &str, campaign_out: &Path) -> Result<()>;
}

/// What the server serves.
pub struct Config {
    /// The state.
    pub store: Store,
    /// The campaign's name.
    pub campaign: String,
    /// The campaign's output folder (`OUT/<campaign>`).
    pub campaign_out: PathBuf,
    /// Who may use it.
    pub access: Access,
    /// Rewrites the manifests after decisions.
    pub publisher: Arc<dyn Publish>,
}

struct Session {
    reviewer: String,
    csrf: String,
    created: std::time::Instant,
}

/// Files a manifest lists, by URL path (no leading slash), and the
/// thumbnail names of its assets with their masters.
#[derive(Default)]
struct Listed {
    files: HashSet<String>,
    thumbs: HashMap<String, String>,
}

struct App {
    cfg: Config,
    /// `Host` values accepted (loopback only; `None`: any).
    hosts: Option<Vec<String>>,
    sessions: std::sync::Mutex<HashMap<String, Session>>,
    /// The listed files as of a state version.
    listed: std::sync::Mutex<Option<(String, Arc<Listed>)>>,
    /// One decision (record and publish) at a time.
    deciding: tokio::sync::Mutex<()>,
}

/// Serve until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("review server address: {e}")))?;
    let hosts = matches!(cfg.access, Access::Loopback { .. }).then(|| loopback_hosts(addr));
    let app = Arc::new(App {
        cfg,
        hosts,
        sessions: std::sync::Mutex::new(HashMap::new()),
        listed: std::sync::Mutex::new(None),
        deciding: tokio::sync::Mutex::new(()),
    });
    let router = Router::new().fallback(handle).with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Internal(format!("review server: {e}")))
}

fn loopback_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        addr.to_string(),
    ]
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let mut resp = route(&app, req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

fn text(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.to_string(),
    )
        .into_response()
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn json_error(status: StatusCode, msg: impl Into<String>) -> Response {
    json(status, serde_json::json!({ "error": msg.into() }))
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found")
}

fn internal(e: &Error) -> Response {
    tracing::warn!(error = %e, "review server");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (see the server's log)",
    )
}

async fn route(app: &App, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Some(hosts) = &app.hosts {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return text(StatusCode::MISDIRECTED_REQUEST, "unknown host");
        }
    }
    let path = parts.uri.path().to_string();
    let session = app.session(&parts.headers);
    let tokens = matches!(app.cfg.access, Access::Tokens(_));
    match parts.method {
        Method::POST => {
            if !origin_ok(&parts.headers) {
                return text(StatusCode::FORBIDDEN, "cross-site request refused");
            }
            match path.as_str() {
                "/login" if tokens => app.login(body).await,
                // Both change the state: one session and CSRF check.
                "/api/decide" | "/api/vote" => {
                    let Some((_, s)) = session else {
                        return json_error(
                            StatusCode::FORBIDDEN,
                            "no session: load the page first",
                        );
                    };
                    let sent = parts
                        .headers
                        .get("x-csrf-token")
                        .map(HeaderValue::as_bytes)
                        .unwrap_or_default();
                    if !same(sent, s.csrf.as_bytes()) {
                        return json_error(
                            StatusCode::FORBIDDEN,
                            "missing or wrong anti-CSRF token",
                        );
                    }
                    if path == "/api/decide" {
                        app.decide(&s.reviewer, body).await
                    } else {
                        app.vote(&s.reviewer, body).await
                    }
                }
                _ => not_found(),
            }
        }
        Method::GET | Method::HEAD => {
            if path == "/login" && tokens {
                return login_page(None);
            }
            if path == "/" {
                return redirect("/review/");
            }
            let session = match (session, &app.cfg.access) {
                (Some(s), _) => s,
                (None, Access::Loopback { reviewer }) => {
                    if path == "/review/" || path == "/review/index.html" || path == "/compare/" {
                        app.new_session(reviewer.clone())
                    } else {
                        (String::new(), app.anonymous(reviewer))
                    }
                }
                (None, Access::Tokens(_)) => {
                    return if path.starts_with("/review/") && !path.starts_with("/review/thumbs/") {
                        redirect("/login")
                    } else {
                        text(StatusCode::UNAUTHORIZED, "log in first")
                    };
                }
            };
            let (sid, s) = session;
            let mut resp = match path.as_str() {
                "/review/" | "/review/index.html" => app.page(&s).await,
                "/compare/" => app.compare_page(&s).await,
                p if p.starts_with("/compare/") => app.compare_file(p).await,
                "/api/version" => match app.version().await {
                    Ok(v) => json(StatusCode::OK, serde_json::json!({ "version": v })),
                    Err(e) => internal(&e),
                },
                p => app.file(p).await,
            };
            if !sid.is_empty() {
                set_cookie(&mut resp, &sid);
            }
            resp
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

fn set_cookie(resp: &mut Response, sid: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict"
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A state-changing request must come from a page of this server: the
/// browser's `Origin` names the same scheme, host and port the request was
/// sent to, and the browser does not call it cross-site.
fn origin_ok(h: &HeaderMap) -> bool {
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok());
    if get("sec-fetch-site").is_some_and(|s| s == "cross-site" || s == "same-site") {
        return false;
    }
    // https: the server behind a TLS-terminating proxy that keeps `Host`.
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => {
            origin.eq_ignore_ascii_case(&format!("http://{host}"))
                || origin.eq_ignore_ascii_case(&format!("https://{host}"))
        }
        _ => false,
    }
}

/// Constant-time equality (of tokens).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    // The OS generator; a server that cannot get randomness must not hand
    // out guessable sessions.
    getrandom::fill(&mut b).expect("the operating system's random number generator");
    hex::encode(b)
}

fn cookie_value(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE).then(|| v.to_string())
        })
}

/// Decode `%XX` escapes (and `+` as a space when `form`); `None` for a
/// malformed escape or bytes that are not UTF-8.
fn percent_decode(s: &str, form: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hexs = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hexs, 16).ok()?);
                i += 3;
            }
            b'+' if form => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A file path as a request names it, when it could be a listed file: no
/// empty, `.` or `..` segment, no backslash, NUL or drive colon.
fn relative_path(url_path: &str) -> Option<String> {
    let p = percent_decode(url_path.strip_prefix('/')?, false)?;
    let ok = !p.is_empty()
        && !p.contains(['\\', '\0', ':'])
        && p.split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    ok.then_some(p)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()) {
        Some(e) if e == "png" => "image/png",
        Some(e) if e == "jpg" || e == "jpeg" => "image/jpeg",
        Some(e) if e == "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

/// The campaign's latest stored manifest, the one before, and what the
/// latest run spent.
async fn latest(
    store: &Store,
    campaign: &str,
) -> Result<Option<(Manifest, Option<Manifest>, f64)>> {
    let parse = |json: &str| -> Result<Manifest> {
        serde_json::from_str(json).map_err(|e| Error::Internal(format!("stored manifest: {e}")))
    };
    let snaps = store.snapshots(campaign).await?;
    let Some(last) = snaps.first() else {
        return Ok(None);
    };
    let previous = snaps.get(1).map(|s| parse(&s.json)).transpose()?;
    Ok(Some((parse(&last.json)?, previous, last.spent_usd)))
}

/// Whether `campaign` has a finished run in the state (the server shows
/// nothing otherwise).
pub async fn has_run(store: &Store, campaign: &str) -> Result<bool> {
    Ok(store.review_version(campaign).await?.0 != 0)
}

fn listed(m: &Manifest) -> Listed {
    let mut l = Listed::default();
    for a in &m.assets {
        l.files.insert(a.path.clone());
        l.files.extend(a.renditions.iter().map(|r| r.path.clone()));
        l.files.extend(a.placements.iter().map(|p| p.path.clone()));
        l.files.extend(a.history.iter().map(|h| h.path.clone()));
        l.thumbs
            .insert(super::thumb_file(&a.sha256), a.path.clone());
    }
    l
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    action: Action,
    #[serde(default)]
    note: Option<String>,
    assets: Vec<Seen>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Approve,
    Reject,
    Undo,
}

/// A vote as the compare page sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    /// `locale/variant/row`.
    asset: String,
    /// The model voted for.
    model: String,
    /// Its image the reviewer saw.
    sha256: String,
}

/// An asset as the page showed it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Seen {
    /// `locale/variant/row`.
    asset: String,
    /// The image the reviewer saw.
    sha256: String,
}

async fn read_body(body: Body, limit: usize) -> std::result::Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))
}

impl App {
    fn session(&self, h: &HeaderMap) -> Option<(String, SessionView)> {
        let sid = cookie_value(h)?;
        let sessions = self.sessions.lock().ok()?;
        let s = sessions
            .get(&sid)
            .filter(|s| s.created.elapsed() < SESSION_LIFETIME)?;
        Some((
            String::new(),
            SessionView {
                reviewer: s.reviewer.clone(),
                csrf: s.csrf.clone(),
            },
        ))
    }

    /// A view for a loopback request without a session (an image the page
    /// asks for): no token, nothing it can post with.
    fn anonymous(&self, reviewer: &str) -> SessionView {
        SessionView {
            reviewer: reviewer.to_string(),
            csrf: String::new(),
        }
    }

    fn new_session(&self, reviewer: String) -> (String, SessionView) {
        let sid = random_hex();
        let csrf = random_hex();
        if let Ok(mut sessions) = self.sessions.lock() {
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.created)
                    .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
            sessions.insert(
                sid.clone(),
                Session {
                    reviewer: reviewer.clone(),
                    csrf: csrf.clone(),
                    created: std::time::Instant::now(),
                },
            );
        }
        (sid, SessionView { reviewer, csrf })
    }

    async fn version(&self) -> Result<String> {
        let (run, decision) = self.cfg.store.review_version(&self.cfg.campaign).await?;
        Ok(format!("r{run}-d{decision}"))
    }

    async fn page(&self, s: &SessionView) -> Response {
        let built = async {
            let version = self.version().await?;
            let Some((mut m, previous, spent_this_run)) =
                latest(&self.cfg.store, &self.cfg.campaign).await?
            else {
                return Ok(None);
            };
            let decisions = self.cfg.store.decisions(&self.cfg.campaign).await?;
            manifest::apply_decisions(&mut m, &decisions);
            let spent_total = self.cfg.store.spent_usd(&self.cfg.campaign).await?;
            let page = super::build_with(
                &Sheet {
                    manifest: &m,
                    previous: previous.as_ref(),
                    decisions: &decisions,
                    spent_this_run,
                    spent_total,
                },
                Some(&Served {
                    reviewer: &s.reviewer,
                    csrf: &s.csrf,
                    version: &version,
                }),
            );
            Ok::<_, Error>(Some(page.html))
        };
        match built.await {
            Ok(Some(html)) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                    (
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; \
                         script-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; \
                         frame-ancestors 'none'; base-uri 'none'",
                    ),
                ],
                html,
            )
                .into_response(),
            Ok(None) => text(
                StatusCode::NOT_FOUND,
                "the campaign has no finished run in this state yet",
            ),
            Err(e) => internal(&e),
        }
    }

    async fn listed(&self) -> Result<Arc<Listed>> {
        let version = self.version().await?;
        if let Ok(cache) = self.listed.lock()
            && let Some((v, l)) = cache.as_ref()
            && *v == version
        {
            return Ok(l.clone());
        }
        let l = Arc::new(
            latest(&self.cfg.store, &self.cfg.campaign)
                .await?
                .map(|(m, _, _)| listed(&m))
                .unwrap_or_default(),
        );
        if let Ok(mut cache) = self.listed.lock() {
            *cache = Some((version, l.clone()));
        }
        Ok(l)
    }

    async fn file(&self, url_path: &str) -> Response {
        let Some(rel) = relative_path(url_path) else {
            return not_found();
        };
        let listed = match self.listed().await {
            Ok(l) => l,
            Err(e) => return internal(&e),
        };
        let out = &self.cfg.campaign_out;
        let disk = if let Some(name) = rel.strip_prefix("review/thumbs/") {
            let Some(source) = listed.thumbs.get(name) else {
                return not_found();
            };
            let sha = name.trim_end_matches(".jpg").to_string();
            let (out2, source) = (out.clone(), source.clone());
            // A thumbnail the run has not made yet is made now.
            let _ = tokio::task::spawn_blocking(move || {
                super::prepare_thumbnail(&out2, &source, &sha, None);
            })
            .await;
            super::write::review_dir(out).join("thumbs").join(name)
        } else if listed.files.contains(&rel) {
            out.join(&rel)
        } else {
            return not_found();
        };
        match tokio::fs::read(&disk).await {
            Ok(bytes) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type(&rel)),
                    // Named by content or revision: safe to keep a while.
                    (header::CACHE_CONTROL, "private, max-age=60"),
                ],
                bytes,
            )
                .into_response(),
            Err(_) => not_found(),
        }
    }

    async fn compare_page(&self, s: &SessionView) -> Response {
        let built = async {
            let sides = super::compare::sides(&self.cfg.store, &self.cfg.campaign).await?;
            let votes = self.cfg.store.votes(&self.cfg.campaign).await?;
            let version = self.version().await?;
            Ok::<_, Error>(super::compare::page(
                &self.cfg.campaign,
                &sides,
                &votes,
                &Served {
                    reviewer: &s.reviewer,
                    csrf: &s.csrf,
                    version: &version,
                },
            ))
        };
        match built.await {
            Ok(html) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                    (
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
                         script-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
                    ),
                ],
                html,
            )
                .into_response(),
            Err(e) => internal(&e),
        }
    }

    /// `/compare/<model>/<asset path>`: an image a model's sample lists.
    async fn compare_file(&self, url_path: &str) -> Response {
        let Some(rel) = relative_path(url_path) else {
            return not_found();
        };
        let Some((model, path)) = rel.strip_prefix("compare/").and_then(|r| r.split_once('/'))
        else {
            return not_found();
        };
        let sides = match super::compare::sides(&self.cfg.store, &self.cfg.campaign).await {
            Ok(s) => s,
            Err(e) => return internal(&e),
        };
        let Some(side) = sides.iter().find(|s| s.model == model) else {
            return not_found();
        };
        if !side.manifest.assets.iter().any(|a| a.path == path) {
            return not_found();
        }
        let Some(root) = self.cfg.campaign_out.parent() else {
            return not_found();
        };
        match tokio::fs::read(root.join(&side.campaign).join(path)).await {
            Ok(bytes) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type(path)),
                    (header::CACHE_CONTROL, "private, max-age=60"),
                ],
                bytes,
            )
                .into_response(),
            Err(_) => not_found(),
        }
    }

    async fn vote(&self, voter: &str, body: Body) -> Response {
        let bytes = match read_body(body, 4096).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let req: VoteBody = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
        };
        let sides = match super::compare::sides(&self.cfg.store, &self.cfg.campaign).await {
            Ok(s) => s,
            Err(e) => return internal(&e),
        };
        let Some(a) = sides.iter().find(|s| s.model == req.model).and_then(|s| {
            s.manifest
                .assets
                .iter()
                .find(|a| strip_extension(&a.path) == req.asset)
        }) else {
            return json_error(
                StatusCode::NOT_FOUND,
                format!("no image of `{}` by {}", req.asset, req.model),
            );
        };
        if a.sha256 != req.sha256 {
            return json_error(
                StatusCode::CONFLICT,
                format!(
                    "`{}` by {} was replaced since this page was loaded: nothing was recorded",
                    req.asset, req.model
                ),
            );
        }
        let v = crate::store::NewVote {
            campaign: self.cfg.campaign.clone(),
            row_id: a.row_id.clone(),
            locale: a.locale.clone(),
            variant: a.variant.clone(),
            model: req.model.clone(),
            sha256: a.sha256.clone(),
            voter: voter.to_string(),
        };
        match self.cfg.store.record_vote(&v).await {
            Ok(()) => json(StatusCode::OK, serde_json::json!({ "recorded": 1 })),
            Err(e) => internal(&e),
        }
    }

    async fn login(&self, body: Body) -> Response {
        let Access::Tokens(tokens) = &self.cfg.access else {
            return not_found();
        };
        let bytes = match read_body(body, 4096).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let form = String::from_utf8_lossy(&bytes);
        let token = form.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == "token").then(|| percent_decode(v, true)).flatten()
        });
        let Some(token) = token else {
            return login_page(Some("enter your reviewer token"));
        };
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        let found = tokens.iter().fold(None, |acc, t| {
            if same(&t.digest, &digest) {
                Some(t)
            } else {
                acc
            }
        });
        let Some(t) = found else {
            tracing::info!("review server: a login with an unknown token was refused");
            // Slows guessing down; the token's length does the rest.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            return login_page(Some("unknown token"));
        };
        let (sid, _) = self.new_session(t.name.clone());
        let mut resp = redirect("/review/");
        set_cookie(&mut resp, &sid);
        resp
    }

    async fn decide(&self, reviewer: &str, body: Body) -> Response {
        let bytes = match read_body(body, MAX_BODY).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let req: DecideBody = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
        };
        if req.assets.is_empty() {
            return json_error(StatusCode::BAD_REQUEST, "no asset named");
        }
        if req.assets.len() > MAX_ASSETS {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("at most {MAX_ASSETS} assets a request"),
            );
        }
        let note = req
            .note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("a note holds at most {MAX_NOTE} characters"),
            );
        }
        let decision = match req.action {
            Action::Approve => Decision::Approve,
            Action::Reject => Decision::Reject,
            Action::Undo => Decision::Undo,
        };
        if decision == Decision::Reject && note.is_none() {
            return json_error(
                StatusCode::BAD_REQUEST,
                "a rejection needs a note saying what to fix",
            );
        }
        let facts = DecisionFacts {
            decision,
            by: reviewer.to_string(),
            // An undo carries no note; an approval may.
            note: if decision == Decision::Undo {
                None
            } else {
                note
            },
        };
        let _one = self.deciding.lock().await;
        let result = async {
            let Some((m, _, _)) = latest(&self.cfg.store, &self.cfg.campaign).await? else {
                return Ok(Err(json_error(StatusCode::NOT_FOUND, "no finished run")));
            };
            let by_key: HashMap<&str, &AssetEntry> = m
                .assets
                .iter()
                .map(|a| (strip_extension(&a.path), a))
                .collect();
            let mut decisions = Vec::with_capacity(req.assets.len());
            for s in &req.assets {
                let Some(a) = by_key.get(s.asset.as_str()) else {
                    return Ok(Err(json_error(
                        StatusCode::NOT_FOUND,
                        format!(
                            "`{}` is not an asset of the latest run: reload the page",
                            s.asset
                        ),
                    )));
                };
                if a.sha256 != s.sha256 {
                    return Ok(Err(json_error(
                        StatusCode::CONFLICT,
                        format!(
                            "`{}` was replaced by a newer image (revision {}) since this page was loaded: \
                             nothing was recorded; look at the new image and decide again",
                            s.asset, a.revision
                        ),
                    )));
                }
                decisions.push(NewDecision {
                    asset_path: a.path.clone(),
                    sha256: a.sha256.clone(),
                    request_sha256: a.request_sha256.clone(),
                    facts: facts.clone(),
                });
            }
            let recorded = self
                .cfg
                .store
                .record_decisions(&self.cfg.campaign, &decisions)
                .await?;
            if recorded > 0 {
                self.cfg
                    .publisher
                    .publish(&self.cfg.store, &self.cfg.campaign, &self.cfg.campaign_out)
                    .await?;
            }
            Ok::<_, Error>(Ok((decisions.len(), recorded)))
        };
        match result.await {
            Ok(Ok((matched, recorded))) => {
                tracing::info!(
                    reviewer,
                    action = facts.decision.as_str(),
                    matched,
                    recorded,
                    "review server: decision"
                );
                let version = self.version().await.unwrap_or_default();
                json(
                    StatusCode::OK,
                    serde_json::json!({ "matched": matched, "recorded": recorded, "version": version }),
                )
            }
            Ok(Err(resp)) => resp,
            Err(e) => internal(&e),
        }
    }
}

/// What a request's session allows.
struct SessionView {
    reviewer: String,
    csrf: String,
}

fn login_page(problem: Option<&str>) -> Response {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Review: log in</title></head><body>\
         <main><h1>Log in to review</h1>",
    );
    if let Some(p) = problem {
        let _ = write!(html, "<p role=\"alert\">{}</p>", esc(p));
    }
    html.push_str(
        "<form method=\"post\" action=\"/login\"><label>Reviewer token \
         <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label> \
         <button type=\"submit\">Log in</button></form></main></body></html>",
    );
    (
        if problem.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        html,
    )
        .into_response()
}

// ---------------------------------------------------------------------
// What the served page adds to the static one.

/// Attributes of a served cell: focusable, named by its asset.
pub(super) fn cell_attrs(out: &mut String, key: &str, asset: Option<&AssetEntry>) {
    let _ = write!(
        out,
        " tabindex=\"0\" data-asset=\"{k}\" aria-label=\"{k}\"",
        k = esc(key)
    );
    if let Some(a) = asset {
        let _ = write!(out, " data-sha256=\"{}\"", esc(&a.sha256));
    }
}

/// A cell's own buttons and its note field (hidden until reject).
pub(super) fn cell_controls(out: &mut String, key: &str, _a: &AssetEntry) {
    let _ = write!(
        out,
        "<div class=\"actions\" role=\"group\" aria-label=\"Decide on {k}\">\
         <button type=\"button\" data-action=\"approve\" aria-label=\"Approve {k}\">Approve</button> \
         <button type=\"button\" data-action=\"reject\" aria-label=\"Reject {k}\">Reject</button> \
         <button type=\"button\" data-action=\"undo\" aria-label=\"Undo the decision on {k}\">Undo</button></div>\
         <form class=\"note\" hidden><label>Note <input type=\"text\" name=\"note\" maxlength=\"{max}\" \
         aria-label=\"What to fix in {k}\" autocomplete=\"off\"></label> \
         <button type=\"submit\" data-action=\"confirm\" aria-label=\"Confirm rejecting {k}\">Reject with note</button> \
         <button type=\"button\" data-action=\"cancel\" aria-label=\"Cancel rejecting {k}\">Cancel</button></form>",
        k = esc(key),
        max = MAX_NOTE,
    );
}

/// The image this revision replaced, with the note between them.
pub(super) fn previous_html(out: &mut String, a: &AssetEntry) {
    let Some(h) = a.history.last() else {
        return;
    };
    let _ = write!(
        out,
        "<figure class=\"previous\"><a href=\"../{p}\"><img src=\"../{p}\" loading=\"lazy\" alt=\"revision {r} (replaced)\"></a>\
         <figcaption>revision {r} → <q dir=\"auto\">{n}</q> → revision {now}</figcaption></figure>",
        p = esc(&h.path),
        r = h.revision,
        n = esc(&h.note),
        now = a.revision,
    );
}

/// The reviewer, bulk actions over the filtered cells, and a status line.
pub(super) fn controls_html(out: &mut String, s: &Served<'_>) {
    let _ = write!(
        out,
        "<div id=\"controls\"><span class=\"reviewer\">reviewing as <b>{r}</b></span> \
         <button type=\"button\" data-action=\"bulk-approve\" aria-label=\"Approve every asset shown\">Approve shown</button> \
         <button type=\"button\" data-action=\"bulk-reject\" aria-label=\"Reject every asset shown\">Reject shown</button> \
         <form id=\"bulk-note\" class=\"note\" hidden><label>Note <input type=\"text\" name=\"note\" maxlength=\"{max}\" \
         aria-label=\"What to fix in every asset shown\" autocomplete=\"off\"></label> \
         <button type=\"submit\" data-action=\"confirm\" aria-label=\"Confirm rejecting every asset shown\">Reject shown with note</button> \
         <button type=\"button\" data-action=\"cancel\" aria-label=\"Cancel rejecting\">Cancel</button></form> \
         <span id=\"status\" role=\"status\" aria-live=\"polite\"></span></div>",
        r = esc(s.reviewer),
        max = MAX_NOTE,
    );
}

/// Style of the served controls.
pub(super) const STYLE: &str = "\
#controls{position:sticky;top:40px;background:#fff;padding:6px 20px;border-bottom:1px solid #ccd;z-index:1}\
#status.bad{color:#c53030;font-weight:600}td.cell:focus{outline:3px solid #2b6cb0;outline-offset:-3px}\
.actions{margin:4px 0}.actions button{font-size:12px}form.note{margin:4px 0}form.note input{width:150px}\
.previous{margin:4px 0;font-size:11px;color:#445}.previous img{max-width:120px;max-height:90px;border:1px solid #ccd}";

/// The served page's script: decisions, keys, and following the state.
pub(super) const SCRIPT_TAG: &str = r#"<script>(function () {
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var version = document.querySelector('meta[name="adloc-version"]').content;
  function say(msg, bad) {
    var s = document.getElementById('status');
    s.textContent = msg;
    s.classList.toggle('bad', !!bad);
  }
  function cellOf(el) { return el && el.closest ? el.closest('td.cell[data-asset]') : null; }
  function seen(c) { return { asset: c.dataset.asset, sha256: c.dataset.sha256 }; }
  function shown(selector) {
    return Array.prototype.filter.call(document.querySelectorAll(selector), function (c) { return !c.hidden; });
  }
  function refresh() {
    return fetch(location.pathname, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { if (!r.ok) { throw new Error('reload failed: HTTP ' + r.status); } return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var active = cellOf(document.activeElement);
        var key = active ? active.dataset.asset : null;
        var grid = doc.getElementById('grid');
        var header = doc.querySelector('header');
        if (grid) { document.getElementById('grid').replaceWith(document.adoptNode(grid)); }
        if (header) { document.querySelector('header').replaceWith(document.adoptNode(header)); }
        var v = doc.querySelector('meta[name="adloc-version"]');
        if (v) { version = v.content; document.querySelector('meta[name="adloc-version"]').content = version; }
        var t = doc.querySelector('meta[name="csrf-token"]');
        if (t) { csrf = t.content; }
        if (window.adlocApply) { window.adlocApply(); }
        if (key) {
          var c = document.querySelector('td.cell[data-asset="' + CSS.escape(key) + '"]');
          if (c) { c.focus(); }
        }
      })
      .catch(function (e) { say(e.message, true); });
  }
  function decide(action, list, note) {
    if (!list.length) { say('no asset shown to decide on', true); return Promise.resolve(); }
    return fetch('/api/decide', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ action: action, note: note || null, assets: list })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { throw new Error(j.error || ('HTTP ' + r.status)); }
        say(action + ': ' + j.recorded + ' decision(s) recorded for ' + j.matched + ' asset(s)');
      });
    }).catch(function (e) { say(e.message, true); }).then(refresh);
  }
  function openNote(form) {
    form.hidden = false;
    form.querySelector('input[name="note"]').focus();
  }
  function closeNote(form) {
    form.hidden = true;
    var c = cellOf(form);
    if (c) { c.focus(); }
  }
  document.addEventListener('click', function (e) {
    var b = e.target.closest ? e.target.closest('button[data-action]') : null;
    if (!b) { return; }
    var c = cellOf(b);
    switch (b.dataset.action) {
      case 'approve': if (c) { decide('approve', [seen(c)]); } break;
      case 'reject': if (c) { openNote(c.querySelector('form.note')); } break;
      case 'undo': if (c) { decide('undo', [seen(c)]); } break;
      case 'cancel': closeNote(b.closest('form')); break;
      case 'bulk-approve': decide('approve', shown('td.cell[data-sha256]').map(seen)); break;
      case 'bulk-reject': openNote(document.getElementById('bulk-note')); break;
    }
  });
  document.addEventListener('submit', function (e) {
    var f = e.target;
    if (!f.classList || !f.classList.contains('note')) { return; }
    e.preventDefault();
    var note = f.querySelector('input[name="note"]').value.trim();
    if (!note) { say('a rejection needs a note saying what to fix', true); return; }
    if (f.id === 'bulk-note') {
      f.hidden = true;
      decide('reject', shown('td.cell[data-sha256]').map(seen), note);
    } else {
      var c = cellOf(f);
      if (c) { decide('reject', [seen(c)], note); }
    }
  });
  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var t = e.target;
    if (t.matches && t.matches('input, select, textarea')) {
      if (e.key === 'Escape' && t.form && t.form.classList.contains('note')) { closeNote(t.form); }
      return;
    }
    var c = cellOf(t);
    if (e.key === 'j' || e.key === 'k') {
      var all = shown('td.cell[data-asset]');
      var i = c ? all.indexOf(c) : -1;
      var n = e.key === 'j' ? i + 1 : Math.max(i - 1, 0);
      if (n < all.length) { all[n].focus(); }
      e.preventDefault();
      return;
    }
    if (!c || !c.dataset.sha256) { return; }
    if (e.key === 'a') { e.preventDefault(); decide('approve', [seen(c)]); }
    else if (e.key === 'r') { e.preventDefault(); openNote(c.querySelector('form.note')); }
    else if (e.key === 'u') { e.preventDefault(); decide('undo', [seen(c)]); }
  });
  // A run finishing or another reviewer deciding changes the version: show
  // it without a reload (unless a note is being typed).
  setInterval(function () {
    var a = document.activeElement;
    if (a && a.matches && a.matches('input[name="note"]')) { return; }
    fetch('/api/version', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) { if (j && j.version !== version) { return refresh(); } })
      .catch(function () {});
  }, 1500);
})();</script>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_path_with_dot_segments_or_absolute_parts_names_no_file() {
        for bad in [
            "/../state.db",
            "/en-US/../../x",
            "/%2e%2e/state.db",
            "/en-US/%2E%2E/%2e%2e/x.png",
            "//etc/passwd",
            "/C:/x",
            "/a\\..\\b",
            "/a/./b",
            "/%00",
            "/%zz",
        ] {
            assert_eq!(relative_path(bad), None, "{bad}");
        }
        assert_eq!(
            relative_path("/en-US/hero/a%20b.png").as_deref(),
            Some("en-US/hero/a b.png")
        );
    }

    #[test]
    fn a_tokens_file_names_bad_lines_without_their_text() {
        let p = Path::new("tokens.toml");
        let good = parse_tokens(
            p,
            "# reviewers\nabcdefghijklmnop0123 = \"Ana\"\n\n\"tok-with:colon-0123456\" = \"Ben\"\n",
        )
        .unwrap();
        assert_eq!(
            good.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["Ana", "Ben"]
        );
        let e = parse_tokens(p, "short = \"Ana\"\nsecret-token-no-value-here\n").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("tokens.toml:1") && text.contains("tokens.toml:2"),
            "{text}"
        );
        assert!(
            !text.contains("short") && !text.contains("secret-token"),
            "{text}"
        );
        assert!(parse_tokens(p, "\n# none\n").is_err());
    }

    #[test]
    fn only_a_same_origin_post_passes_the_origin_check() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(origin_ok(&h(&[
            ("host", "127.0.0.1:8787"),
            ("origin", "http://127.0.0.1:8787")
        ])));
        assert!(origin_ok(&h(&[
            ("host", "review.example"),
            ("origin", "https://review.example")
        ])));
        assert!(!origin_ok(&h(&[("host", "127.0.0.1:8787")])));
        assert!(!origin_ok(&h(&[
            ("host", "127.0.0.1:8787"),
            ("origin", "http://evil.example")
        ])));
        assert!(!origin_ok(&h(&[
            ("host", "127.0.0.1:8787"),
            ("origin", "http://127.0.0.1:8787"),
            ("sec-fetch-site", "cross-site")
        ])));
    }
}
