//! Files API (protocol §4): resumable upload, get/list/delete, download.
//! File contents live on disk in the emulator's temp dir, never in memory.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::errors::{ApiError, json_response};
use super::{Query, Shared, now_rfc3339, rfc3339_plus_hours, wire};

/// Largest file the service accepts (§4.1).
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// One stored file.
#[derive(Debug, Clone)]
pub(crate) struct FileMeta {
    pub id: String,
    seq: u64,
    display_name: Option<String>,
    mime: String,
    pub size: u64,
    sha256_hex: String,
    create_time: String,
    pub path: PathBuf,
    /// `source: GENERATED` (batch output); only these can be downloaded.
    generated: bool,
}

#[derive(Debug)]
struct Session {
    display_name: Option<String>,
    mime: String,
    requested_id: Option<String>,
    declared: Option<u64>,
    received: u64,
    path: PathBuf,
    /// The `{"file": …}` body once finalized.
    finished: Option<Value>,
    cancelled: bool,
}

#[derive(Default)]
struct Inner {
    files: BTreeMap<String, FileMeta>,
    seq: u64,
    sessions: HashMap<String, Arc<tokio::sync::Mutex<Session>>>,
}

/// All files and open upload sessions.
#[derive(Default)]
pub(crate) struct FileStore {
    inner: Mutex<Inner>,
}

impl wire::FileLookup for FileStore {
    fn file_exists(&self, id: &str) -> bool {
        self.lock().files.contains_key(id)
    }
}

impl FileStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, id: &str) -> Option<FileMeta> {
        self.lock().files.get(id).cloned()
    }

    /// Register a file already written to `path` (batch output).
    pub(crate) fn register_generated(
        &self,
        id: String,
        mime: &str,
        path: PathBuf,
        size: u64,
        sha256_hex: String,
    ) {
        let mut g = self.lock();
        g.seq += 1;
        let seq = g.seq;
        g.files.insert(
            id.clone(),
            FileMeta {
                id,
                seq,
                display_name: None,
                mime: mime.to_string(),
                size,
                sha256_hex,
                create_time: now_rfc3339(),
                path,
                generated: true,
            },
        );
    }

    fn insert(&self, mut meta: FileMeta) -> Result<FileMeta, ApiError> {
        let mut g = self.lock();
        if g.files.contains_key(&meta.id) {
            return Err(ApiError::new(
                409,
                "ALREADY_EXISTS",
                format!("File files/{} already exists.", meta.id),
            ));
        }
        g.seq += 1;
        meta.seq = g.seq;
        g.files.insert(meta.id.clone(), meta.clone());
        Ok(meta)
    }
}

fn no_such_file(id: &str) -> ApiError {
    // The service answers a missing file like a foreign one (§2.2).
    ApiError::permission_denied(format!(
        "You do not have permission to access the File {id} or it may not exist."
    ))
}

/// The File resource as JSON (§4.3).
pub(crate) fn file_json(m: &FileMeta, base: &str) -> Value {
    let mut v = json!({
        "name": format!("files/{}", m.id),
        "mimeType": m.mime,
        "sizeBytes": m.size.to_string(),
        "createTime": m.create_time,
        "updateTime": m.create_time,
        "expirationTime": rfc3339_plus_hours(&m.create_time, 48),
        // Quirk kept on purpose: base64 of the lowercase hex digest.
        "sha256Hash": base64::engine::general_purpose::STANDARD.encode(m.sha256_hex.as_bytes()),
        "uri": format!("{base}/v1beta/files/{}", m.id),
        "state": "ACTIVE",
        "source": if m.generated { "GENERATED" } else { "UPLOADED" },
    });
    if let Some(d) = &m.display_name {
        v["displayName"] = json!(d);
    }
    if m.generated {
        v["downloadUri"] = json!(format!(
            "{base}/download/v1beta/files/{}:download?alt=media",
            m.id
        ));
    }
    v
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn with_headers(mut resp: Response, pairs: &[(&'static str, String)]) -> Response {
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(v) {
            resp.headers_mut().insert(HeaderName::from_static(k), v);
        }
    }
    resp
}

fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

fn valid_requested_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 40
        && !id.starts_with('-')
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `POST /upload/{ver}/files`: start a session, or (with `upload_id`) one
/// command on an open session.
pub(crate) async fn upload(
    s: &Arc<Shared>,
    ver: &str,
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(upload_id) = query.get("upload_id") {
        // The session URL carries the authority: no key needed (§4.2).
        return chunk(s, upload_id, headers, body).await;
    }
    s.check_auth(headers, query)?;
    let protocol = header_str(headers, "x-goog-upload-protocol").unwrap_or("");
    let command = header_str(headers, "x-goog-upload-command").unwrap_or("");
    if !protocol.eq_ignore_ascii_case("resumable") || !command.eq_ignore_ascii_case("start") {
        return Err(ApiError::invalid(
            "Only resumable uploads are supported: send X-Goog-Upload-Protocol: resumable and \
             X-Goog-Upload-Command: start.",
        ));
    }
    let bytes = super::read_body(body).await?;
    let v = wire::normalize(wire::parse_json(&bytes)?)?;
    let top = v.as_object().cloned().unwrap_or_default();
    wire::check_fields(&top, &["file"], "")?;
    let file = top.get("file").cloned().unwrap_or(json!({}));
    let fobj = file.as_object().cloned().unwrap_or_default();
    wire::check_fields(
        &fobj,
        &[
            "name",
            "displayName",
            "mimeType",
            "sizeBytes",
            "source",
            "expirationTime",
        ],
        "file",
    )?;
    let requested_id = match fobj.get("name").and_then(Value::as_str) {
        Some(n) => {
            let id = n.strip_prefix("files/").unwrap_or(n);
            if !valid_requested_id(id) {
                return Err(ApiError::invalid(format!(
                    "Invalid file name \"{n}\": the id must be at most 40 characters of lowercase \
                     letters, digits or dashes, and must not start or end with a dash."
                )));
            }
            if s.files.get(id).is_some() {
                return Err(ApiError::new(
                    409,
                    "ALREADY_EXISTS",
                    format!("File files/{id} already exists."),
                ));
            }
            Some(id.to_string())
        }
        None => None,
    };
    let declared = header_str(headers, "x-goog-upload-header-content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| match fobj.get("sizeBytes") {
            Some(Value::String(x)) => x.parse().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        });
    if declared.is_some_and(|d| d > MAX_FILE_BYTES) {
        return Err(ApiError::invalid(
            "The file is too large: the maximum file size is 2 GB.",
        ));
    }
    let mime = header_str(headers, "x-goog-upload-header-content-type")
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .or_else(|| {
            fobj.get("mimeType")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let upload_id = s.new_id(
        48,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    );
    let path = s.storage_dir().join(format!("upload-{upload_id}"));
    tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot create upload file: {e}")))?;
    let session = Session {
        display_name: fobj
            .get("displayName")
            .and_then(Value::as_str)
            .map(str::to_string),
        mime,
        requested_id,
        declared,
        received: 0,
        path,
        finished: None,
        cancelled: false,
    };
    s.files.lock().sessions.insert(
        upload_id.clone(),
        Arc::new(tokio::sync::Mutex::new(session)),
    );
    let url = format!(
        "{}/upload/{ver}/files?upload_id={upload_id}&upload_protocol=resumable",
        s.public_base(headers)
    );
    Ok(with_headers(
        empty(StatusCode::OK),
        &[
            ("x-goog-upload-url", url.clone()),
            ("x-goog-upload-control-url", url),
            ("x-goog-upload-status", "active".into()),
            ("x-goog-upload-chunk-granularity", "262144".into()),
        ],
    ))
}

async fn chunk(
    s: &Arc<Shared>,
    upload_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let session = s
        .files
        .lock()
        .sessions
        .get(upload_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("No upload session exists for this upload_id."))?;
    let mut sess = session.lock().await;
    let command = header_str(headers, "x-goog-upload-command")
        .unwrap_or("")
        .to_ascii_lowercase();
    let cmds: Vec<&str> = command.split(',').map(str::trim).collect();
    let has = |c: &str| cmds.contains(&c);
    let base = s.public_base(headers);

    if sess.cancelled {
        return Ok(with_headers(
            json_response(
                StatusCode::GONE,
                &ApiError::new(410, "CANCELLED", "The upload was cancelled.").body(),
            ),
            &[("x-goog-upload-status", "cancelled".into())],
        ));
    }
    if let Some(file) = &sess.finished {
        // Re-asking a finished session (a retried finalize, or a query)
        // gets the final answer again; anything else is an error.
        let resp = if has("query") || has("finalize") {
            json_response(StatusCode::OK, file)
        } else {
            json_response(
                StatusCode::BAD_REQUEST,
                &ApiError::invalid("The upload is already finalized.").body(),
            )
        };
        return Ok(with_headers(
            resp,
            &[
                ("x-goog-upload-status", "final".into()),
                ("x-goog-upload-size-received", sess.received.to_string()),
            ],
        ));
    }
    if has("query") {
        return Ok(with_headers(
            empty(StatusCode::OK),
            &[
                ("x-goog-upload-status", "active".into()),
                ("x-goog-upload-size-received", sess.received.to_string()),
            ],
        ));
    }
    if has("cancel") {
        sess.cancelled = true;
        let _ = tokio::fs::remove_file(&sess.path).await;
        return Ok(with_headers(
            empty(StatusCode::OK),
            &[("x-goog-upload-status", "cancelled".into())],
        ));
    }
    if !has("upload") && !has("finalize") {
        return Err(ApiError::invalid(format!(
            "Unsupported X-Goog-Upload-Command \"{command}\"."
        )));
    }
    let active = |resp: Response, received: u64| {
        with_headers(
            resp,
            &[
                ("x-goog-upload-status", "active".into()),
                ("x-goog-upload-size-received", received.to_string()),
            ],
        )
    };
    let offset = match header_str(headers, "x-goog-upload-offset").map(str::parse::<u64>) {
        Some(Ok(o)) => o,
        _ if !has("upload") => sess.received,
        _ => {
            return Ok(active(
                ApiError::invalid("Missing or invalid X-Goog-Upload-Offset header.")
                    .into_response_json(),
                sess.received,
            ));
        }
    };
    if offset != sess.received {
        return Ok(active(
            ApiError::invalid(format!(
                "Invalid X-Goog-Upload-Offset: got {offset}, expected {}.",
                sess.received
            ))
            .into_response_json(),
            sess.received,
        ));
    }

    // Append the chunk, streaming; on a broken body roll back to the last
    // good offset so a `query` reports what is really stored.
    let before = sess.received;
    let mut f = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&sess.path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot open upload file: {e}")))?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    let mut failure: Option<ApiError> = None;
    while let Some(next) = stream.next().await {
        match next {
            Ok(bytes) => {
                written += bytes.len() as u64;
                if before + written > MAX_FILE_BYTES {
                    failure = Some(ApiError::invalid(
                        "The file is too large: the maximum file size is 2 GB.",
                    ));
                    break;
                }
                if let Err(e) = f.write_all(&bytes).await {
                    failure = Some(ApiError::internal(format!("cannot write upload: {e}")));
                    break;
                }
            }
            Err(e) => {
                failure = Some(ApiError::invalid(format!("upload body broken: {e}")));
                break;
            }
        }
    }
    if let Some(err) = failure {
        let _ = f.set_len(before).await;
        return Ok(active(err.into_response_json(), before));
    }
    f.flush()
        .await
        .map_err(|e| ApiError::internal(format!("cannot flush upload: {e}")))?;
    drop(f);
    sess.received = before + written;

    if !has("finalize") {
        return Ok(active(empty(StatusCode::OK), sess.received));
    }
    if let Some(d) = sess.declared
        && d != sess.received
    {
        return Ok(active(
            ApiError::invalid(format!(
                "The upload was finalized with {} bytes, but X-Goog-Upload-Header-Content-Length \
                 announced {d}.",
                sess.received
            ))
            .into_response_json(),
            sess.received,
        ));
    }
    let sha = sha256_file(&sess.path).await?;
    let id = match &sess.requested_id {
        Some(id) => id.clone(),
        None => s.new_id(12, ID_ALPHABET),
    };
    let meta = s.files.insert(FileMeta {
        id,
        seq: 0,
        display_name: sess.display_name.clone(),
        mime: sess.mime.clone(),
        size: sess.received,
        sha256_hex: sha,
        create_time: now_rfc3339(),
        path: sess.path.clone(),
        generated: false,
    })?;
    s.with_stats(|st| st.files_uploaded += 1);
    let body = json!({ "file": file_json(&meta, &base) });
    sess.finished = Some(body.clone());
    Ok(with_headers(
        json_response(StatusCode::OK, &body),
        &[
            ("x-goog-upload-status", "final".into()),
            ("x-goog-upload-size-received", sess.received.to_string()),
        ],
    ))
}

impl ApiError {
    fn into_response_json(self) -> Response {
        axum::response::IntoResponse::into_response(self)
    }
}

pub(crate) async fn sha256_file(path: &std::path::Path) -> Result<String, ApiError> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot read file: {e}")))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| ApiError::internal(format!("cannot read file: {e}")))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// `GET /{ver}/files/{id}`.
pub(crate) fn get(s: &Shared, id: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let m = s.files.get(id).ok_or_else(|| no_such_file(id))?;
    Ok(json_response(
        StatusCode::OK,
        &file_json(&m, &s.public_base(headers)),
    ))
}

/// `DELETE /{ver}/files/{id}`.
pub(crate) async fn delete(s: &Shared, id: &str) -> Result<Response, ApiError> {
    let m = s
        .files
        .lock()
        .files
        .remove(id)
        .ok_or_else(|| no_such_file(id))?;
    let _ = tokio::fs::remove_file(&m.path).await;
    Ok(json_response(StatusCode::OK, &json!({})))
}

/// Parse `pageSize` (default `default`, clamped to 1..=100).
pub(crate) fn page_size(query: &Query, default: usize) -> Result<usize, ApiError> {
    match query.get("pageSize").or_else(|| query.get("page_size")) {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n < 0 => Err(ApiError::invalid("page_size must not be negative.")),
            Ok(0) => Ok(default),
            Ok(n) => Ok((n as usize).min(100)),
            Err(_) => Err(ApiError::invalid(format!(
                "Invalid value at 'page_size' (TYPE_INT32), \"{v}\""
            ))),
        },
    }
}

/// Page tokens are the (opaque-looking) sequence number of the last item
/// sent, so paging stays stable while items are added.
pub(crate) fn encode_token(seq: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("after:{seq}"))
}

pub(crate) fn decode_token(query: &Query) -> Result<Option<u64>, ApiError> {
    match query.get("pageToken").or_else(|| query.get("page_token")) {
        None | Some("") => Ok(None),
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("after:").and_then(|n| n.parse().ok()))
            .map(Some)
            .ok_or_else(|| ApiError::invalid("Invalid page token.")),
    }
}

/// `GET /{ver}/files`: newest first.
pub(crate) fn list(s: &Shared, query: &Query, headers: &HeaderMap) -> Result<Response, ApiError> {
    let size = page_size(query, 10)?;
    let after = decode_token(query)?;
    let mut all: Vec<FileMeta> = s.files.lock().files.values().cloned().collect();
    all.sort_by_key(|b| std::cmp::Reverse(b.seq));
    let rest: Vec<FileMeta> = all
        .into_iter()
        .filter(|m| after.is_none_or(|a| m.seq < a))
        .collect();
    let base = s.public_base(headers);
    let page: Vec<Value> = rest
        .iter()
        .take(size)
        .map(|m| file_json(m, &base))
        .collect();
    // proto3 JSON omits empty lists: an empty listing is `{}`.
    let mut out = json!({});
    if !page.is_empty() {
        out["files"] = Value::Array(page);
    }
    if rest.len() > size
        && let Some(last) = rest.get(size - 1)
    {
        out["nextPageToken"] = json!(encode_token(last.seq));
    }
    Ok(json_response(StatusCode::OK, &out))
}

/// `GET …/files/{id}:download?alt=media` (both path styles).
pub(crate) async fn download_route(
    s: &Arc<Shared>,
    id_verb: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let id = id_verb
        .strip_suffix(":download")
        .ok_or_else(|| ApiError::not_found(format!("Method not found: files/{id_verb}.")))?;
    if query.get("alt") != Some("media") {
        return Err(ApiError::invalid(
            "files.download requires the query parameter alt=media.",
        ));
    }
    let m = s.files.get(id).ok_or_else(|| no_such_file(id))?;
    if !m.generated {
        return Err(ApiError::invalid(
            "Only generated or registered files can be downloaded.",
        ));
    }
    let truncate = {
        let limit = s.faults().batch.truncate_download_first;
        let mut c = s.lock_counters();
        let i = c.downloads;
        c.downloads += 1;
        i < limit
    };
    let file = tokio::fs::File::open(&m.path)
        .await
        .map_err(|_| no_such_file(id))?;
    let body = if truncate {
        s.fault_injected();
        // Promise the full length, send half, then drop the connection.
        let half = m.size / 2;
        let head = tokio_util::io::ReaderStream::new(file.take(half));
        let tail = futures_util::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            Err::<Bytes, std::io::Error>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "emulated truncated download",
            ))
        });
        Body::from_stream(head.map_err(|e| e).chain(tail))
    } else {
        Body::from_stream(tokio_util::io::ReaderStream::new(file))
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&m.size.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    Ok(resp)
}
