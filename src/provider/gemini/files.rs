//! Files API: resumable upload of batch input and streamed download of
//! batch results (protocol §4, §3.6).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::TryStreamExt as _;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, BufReader};
use tokio_util::io::StreamReader;

use super::classify::{Site, classify_http, classify_json_error, classify_transport};
use super::client::GeminiProvider;
use super::wire::{UploadFileMeta, UploadFinalizeResponse, UploadStartBody};
use crate::provider::{ErrorClass, ProviderError, Reason};

const UPLOAD_URL: &str = "x-goog-upload-url";
const UPLOAD_STATUS: &str = "x-goog-upload-status";
const UPLOAD_COMMAND: &str = "x-goog-upload-command";
const UPLOAD_OFFSET: &str = "x-goog-upload-offset";
const UPLOAD_SIZE_RECEIVED: &str = "x-goog-upload-size-received";

/// Read buffer for result downloads: large enough to amortize syscalls,
/// small next to the 100 MB memory target.
const DOWNLOAD_BUFFER: usize = 256 * 1024;

/// A temporary file removed when dropped (batch input JSONL).
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Create a new, empty, uniquely named file in the system temp dir.
    pub(crate) fn create(prefix: &str, suffix: &str) -> io::Result<(Self, std::fs::File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir();
        for _ in 0..16 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = dir.join(format!(
                "{prefix}-{}-{n}-{nanos:09}{suffix}",
                std::process::id()
            ));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => return Ok((TempFile { path }, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "could not pick a unique temporary file name",
        ))
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort: a leftover temp file is harmless.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a chunk or status query said about the upload session.
enum Progress {
    /// Upload finalized; the file's `files/…` name.
    Final(String),
    /// Session alive; the server holds this many bytes.
    Active(u64),
}

fn header_str<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

impl GeminiProvider {
    /// Swap the scheme and host of a session URL for the configured base,
    /// as the SDK does, so emulators and proxies may answer with any host.
    /// A relative URL is joined to the base origin; a base path prefix is
    /// added when the returned path lacks it.
    pub(crate) fn rewrite_upload_url(&self, raw: &str) -> String {
        let raw = raw.trim();
        let path_and_query = match reqwest::Url::parse(raw) {
            Ok(u) => match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            },
            Err(_) if raw.starts_with('/') => raw.to_string(),
            Err(_) => format!("/{raw}"),
        };
        if self.base_path.is_empty() || path_and_query.starts_with(&self.base_path) {
            format!("{}{path_and_query}", self.base_origin)
        } else {
            format!("{}{}{path_and_query}", self.base_origin, self.base_path)
        }
    }

    /// Upload a file with the resumable protocol and return its `files/…`
    /// name. A broken chunk is followed by a status query and a resume from
    /// the server's byte count; a dead session restarts the upload. At most
    /// `upload_max_failures` failures in total.
    pub(crate) async fn upload_file(
        &self,
        path: &Path,
        size: u64,
        display_name: &str,
        mime_type: &str,
    ) -> Result<String, ProviderError> {
        let chunk = self.config.upload_chunk_bytes.max(1) as u64;
        let mut failures = 0u32;
        let mut file = tokio::fs::File::open(path).await.map_err(|e| {
            ProviderError::retryable(
                Reason::Other,
                format!("cannot reopen batch input: {e}"),
                None,
            )
        })?;
        // Each pass of this loop is one upload session.
        loop {
            let session = match self.start_upload(size, display_name, mime_type).await {
                Ok(s) => s,
                // A refusal to even open a session will not change on retry.
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => {
                    self.note_failure(&mut failures, e).await?;
                    continue;
                }
            };
            let mut offset = 0u64;
            loop {
                let len = chunk.min(size - offset);
                let last = offset + len >= size;
                let data = read_at(&mut file, offset, len).await?;
                let outcome = self.send_chunk(&session, offset, data, last).await;
                let err = match outcome {
                    Ok(Progress::Final(name)) => return Ok(name),
                    Ok(Progress::Active(_)) if !last => {
                        offset += len;
                        continue;
                    }
                    Ok(Progress::Active(_)) => ProviderError::retryable(
                        Reason::BadResponse,
                        "upload finalize answered `active`, not `final`",
                        None,
                    ),
                    Err(e) => e,
                };
                self.note_failure(&mut failures, err).await?;
                match self.query_upload(&session).await {
                    Ok(Progress::Final(name)) => return Ok(name),
                    Ok(Progress::Active(received)) if received <= size => offset = received,
                    // A session that lost bytes we never sent, or will not
                    // answer: start over.
                    _ => break,
                }
                if offset == size {
                    // Everything arrived but the finalize was lost; finalize
                    // with an empty last chunk.
                    match self.send_chunk(&session, offset, Vec::new(), true).await {
                        Ok(Progress::Final(name)) => return Ok(name),
                        Ok(Progress::Active(_)) => break,
                        Err(e) => {
                            self.note_failure(&mut failures, e).await?;
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Count a failure, give up past the limit, otherwise back off.
    async fn note_failure(
        &self,
        failures: &mut u32,
        err: ProviderError,
    ) -> Result<(), ProviderError> {
        if err.class == ErrorClass::RunTerminal {
            return Err(err);
        }
        *failures += 1;
        if *failures >= self.config.upload_max_failures.max(1) {
            return Err(ProviderError::retryable(
                err.reason,
                format!("upload failed {failures} times; last error: {}", err.detail),
                err.retry_after(),
            ));
        }
        let base = self.config.upload_retry_delay;
        let delay = base
            .checked_mul(1u32 << (*failures - 1).min(6))
            .unwrap_or(base)
            .min(Duration::from_secs(60));
        tokio::time::sleep(err.retry_after().map_or(delay, |d| d.max(delay))).await;
        Ok(())
    }

    /// Step 1: open a session; returns the (rewritten) session URL.
    async fn start_upload(
        &self,
        size: u64,
        display_name: &str,
        mime_type: &str,
    ) -> Result<String, ProviderError> {
        let body = serde_json::to_vec(&UploadStartBody {
            file: UploadFileMeta {
                display_name,
                mime_type,
                size_bytes: size,
            },
        })
        .map_err(|e| ProviderError::job_terminal(Reason::Other, e.to_string()))?;
        let rb = self
            .authed(self.http.post(self.rooted_url("upload", "files")))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("X-Goog-Upload-Protocol", "resumable")
            .header("X-Goog-Upload-Command", "start")
            .header("X-Goog-Upload-Header-Content-Length", size.to_string())
            .header("X-Goog-Upload-Header-Content-Type", mime_type)
            .body(body);
        let resp = rb.send().await.map_err(|e| classify_transport(&e))?;
        let resp = ok_or_classify(resp).await?;
        let url = header_str(resp.headers(), UPLOAD_URL)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                ProviderError::retryable(
                    Reason::BadResponse,
                    "upload start answered without an X-Goog-Upload-URL header",
                    None,
                )
            })?;
        Ok(self.rewrite_upload_url(url))
    }

    /// Step 2: one chunk. The session URL carries the authority, so no key.
    async fn send_chunk(
        &self,
        session: &str,
        offset: u64,
        data: Vec<u8>,
        last: bool,
    ) -> Result<Progress, ProviderError> {
        let len = data.len() as u64;
        let rb = self
            .http
            .post(session)
            .timeout(self.config.request_timeout)
            .header(
                UPLOAD_COMMAND,
                if last { "upload, finalize" } else { "upload" },
            )
            .header(UPLOAD_OFFSET, offset.to_string())
            // Explicit, so an empty finalize chunk still says 0.
            .header(CONTENT_LENGTH, len.to_string())
            .body(data);
        let resp = rb.send().await.map_err(|e| classify_transport(&e))?;
        let resp = ok_or_classify(resp).await?;
        let status = header_str(resp.headers(), UPLOAD_STATUS).map(str::to_ascii_lowercase);
        match status.as_deref() {
            Some("final") => finalize_name(resp).await.map(Progress::Final),
            Some("active") => Ok(Progress::Active(offset + len)),
            Some(other) => Err(ProviderError::retryable(
                Reason::BadResponse,
                format!("upload chunk answered X-Goog-Upload-Status: {other}"),
                None,
            )),
            // The SDK retries a chunk that comes back without a status.
            None => Err(ProviderError::retryable(
                Reason::BadResponse,
                "upload chunk answered without X-Goog-Upload-Status",
                None,
            )),
        }
    }

    /// Ask a session how much it holds (`X-Goog-Upload-Command: query`).
    async fn query_upload(&self, session: &str) -> Result<Progress, ProviderError> {
        let rb = self
            .http
            .post(session)
            .timeout(self.config.request_timeout)
            .header(UPLOAD_COMMAND, "query")
            .header(CONTENT_LENGTH, HeaderValue::from_static("0"))
            .body(Vec::new());
        let resp = rb.send().await.map_err(|e| classify_transport(&e))?;
        let resp = ok_or_classify(resp).await?;
        let status = header_str(resp.headers(), UPLOAD_STATUS).map(str::to_ascii_lowercase);
        match status.as_deref() {
            Some("final") => finalize_name(resp).await.map(Progress::Final),
            Some("active") => header_str(resp.headers(), UPLOAD_SIZE_RECEIVED)
                .and_then(|v| v.parse::<u64>().ok())
                .map(Progress::Active)
                .ok_or_else(|| {
                    ProviderError::retryable(
                        Reason::BadResponse,
                        "upload status query without X-Goog-Upload-Size-Received",
                        None,
                    )
                }),
            _ => Err(ProviderError::retryable(
                Reason::BadResponse,
                "upload session is no longer active",
                None,
            )),
        }
    }

    /// `GET …/files/{id}:download?alt=media` (the SDK path), falling back
    /// to `…/download/{ver}/files/{id}:download?alt=media` (the docs path)
    /// on 404. The response body is not read here.
    pub(crate) async fn open_download(&self, file_name: &str) -> Result<Response, ProviderError> {
        let id = file_name.trim().trim_start_matches("files/");
        if id.is_empty() || id.contains(['/', '?', '#']) {
            return Err(ProviderError::retryable(
                Reason::BadResponse,
                format!("unusable results file name {file_name:?}"),
                None,
            ));
        }
        let path = format!("files/{id}:download");
        let urls = [self.api_url(&path), self.rooted_url("download", &path)];
        let mut last_err = None;
        for url in urls {
            // No whole-request timeout: a 2 GB file takes as long as it
            // takes. The client's read timeout still catches a stall.
            let rb = self
                .http
                .get(url)
                .header(super::client::API_KEY_HEADER, self.key_header.clone())
                .query(&[("alt", "media")]);
            let resp = rb.send().await.map_err(|e| classify_transport(&e))?;
            if resp.status() == StatusCode::OK {
                return Ok(resp);
            }
            let not_found = resp.status() == StatusCode::NOT_FOUND;
            let err = ok_or_classify(resp).await.err();
            if !not_found {
                return Err(err.unwrap_or_else(|| {
                    ProviderError::retryable(Reason::BadResponse, "download failed", None)
                }));
            }
            last_err = err;
        }
        // Both paths 404: the output may not be published yet.
        let detail = last_err.map_or_else(String::new, |e| e.detail);
        Err(ProviderError::retryable(
            Reason::Other,
            format!("results file {file_name} not found on either download path: {detail}"),
            None,
        )
        .with_status(404))
    }

    /// Open a results file as a buffered async reader over the HTTP stream.
    pub(crate) async fn download_reader(
        &self,
        file_name: &str,
    ) -> Result<impl tokio::io::AsyncBufRead + Send + Unpin + use<>, ProviderError> {
        let resp = self.open_download(file_name).await?;
        let stream = resp.bytes_stream().map_err(io::Error::other);
        Ok(BufReader::with_capacity(
            DOWNLOAD_BUFFER,
            StreamReader::new(stream),
        ))
    }
}

/// Pass a 200 through; classify anything else (reading its body).
async fn ok_or_classify(resp: Response) -> Result<Response, ProviderError> {
    if resp.status() == StatusCode::OK {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap_or_default();
    Err(classify_http(status, &headers, &body, Site::Resource))
}

/// The `files/…` name from a finalize (or final query) response body.
async fn finalize_name(resp: Response) -> Result<String, ProviderError> {
    let body = resp.bytes().await.map_err(|e| classify_transport(&e))?;
    let parsed: UploadFinalizeResponse =
        serde_json::from_slice(&body).map_err(|e| classify_json_error(&e, "upload finalize"))?;
    parsed.file_name().map(str::to_string).ok_or_else(|| {
        ProviderError::retryable(
            Reason::BadResponse,
            "upload finalized but the response names no file",
            None,
        )
    })
}

/// Read `len` bytes at `offset`.
async fn read_at(
    file: &mut tokio::fs::File,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, ProviderError> {
    let io_err = |e: io::Error| {
        ProviderError::retryable(
            Reason::Other,
            format!("reading batch input failed: {e}"),
            None,
        )
    };
    file.seek(io::SeekFrom::Start(offset))
        .await
        .map_err(io_err)?;
    let len = usize::try_from(len).map_err(|_| {
        ProviderError::job_terminal(Reason::Other, "upload chunk larger than memory")
    })?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf).await.map_err(io_err)?;
    Ok(buf)
}
