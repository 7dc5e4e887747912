//! The Batch API (protocol §4): submit (JSONL + Files upload + create),
//! find by the `adloc_tag` metadata, poll, stream the output and error
//! files, cancel.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, BufReader};
use tokio_util::io::{ReaderStream, StreamReader};

use super::classify::{
    RetryHints, Site, classify_error, classify_io, classify_json_error, classify_line_error,
};
use super::client::{Multipart, OpenAiProvider};
use super::response;
use super::wire::{
    ApiError, Batch, BatchBody, BatchInputLine, BatchList, BatchOutputLine, CreateBatchBody,
    EditsJsonBody, FileObject, GenerationsBody, TAG_KEY, as_sent, check_references,
};
use crate::provider::{
    BatchApi, BatchChunk, BatchItem, BatchOutcome, Generated, ImageRequest, OutcomeStream,
    ProviderError, Reason, RemoteBatch, RemoteState,
};

/// The batch endpoint of requests without references.
pub const GENERATIONS_ENDPOINT: &str = "/v1/images/generations";
/// The batch endpoint of requests with references (JSON edit bodies).
pub const EDITS_ENDPOINT: &str = "/v1/images/edits";

/// Page size for `GET /batches`.
const LIST_PAGE_SIZE: &str = "100";
/// Hard stop for list pagination, against a server that never ends.
const MAX_LIST_PAGES: usize = 1000;
/// Read buffer for result downloads.
const DOWNLOAD_BUFFER: usize = 256 * 1024;

/// The batch endpoint a request belongs to: a batch targets one endpoint,
/// so the caller chunks requests by this value.
pub fn endpoint_for(req: &ImageRequest) -> &'static str {
    if req.references.is_empty() {
        GENERATIONS_ENDPOINT
    } else {
        EDITS_ENDPOINT
    }
}

/// The batch body for a request: the realtime generation body, or the JSON
/// edit body with the references as `data:` URLs.
fn batch_body(req: &ImageRequest) -> Result<BatchBody<'_>, ProviderError> {
    if req.references.is_empty() {
        return Ok(BatchBody::Generations(GenerationsBody::from_request(req)?));
    }
    check_references(req)?;
    Ok(BatchBody::Edits(EditsJsonBody::from_request(req)?))
}

/// Parse one output- or error-file line into an outcome matched by
/// `custom_id`. `Err` means the line cannot be attributed to a job.
pub fn parse_output_line(line: &[u8]) -> Result<BatchOutcome, ProviderError> {
    let parsed: BatchOutputLine<'_> = serde_json::from_slice(line.trim_ascii())
        .map_err(|e| classify_json_error(&e, "batch output line"))?;
    let key = parsed.custom_id.filter(|k| !k.is_empty()).ok_or_else(|| {
        ProviderError::retryable(
            Reason::BadResponse,
            "batch output line without a custom_id",
            None,
        )
    })?;
    let result = line_result(parsed.response, parsed.error.as_ref());
    Ok(BatchOutcome { key, result })
}

/// A line's result: a 2xx response is an image as in realtime; another
/// status is classified like a realtime error; a bare `error` (the request
/// never ran) by its code.
fn line_result(
    response: Option<super::wire::BatchLineResponse<'_>>,
    error: Option<&ApiError>,
) -> Result<Generated, ProviderError> {
    match (response, error) {
        (Some(resp), err) if resp.status_code.is_none_or(|s| (200..300).contains(&s)) => {
            match resp.body {
                Some(body) => response::interpret(body, None),
                None => match err {
                    Some(e) => Err(classify_line_error(e)),
                    None => Err(ProviderError::retryable(
                        Reason::BadResponse,
                        "batch line response has no body",
                        None,
                    )),
                },
            }
        }
        (Some(resp), _) => {
            let status = resp.status_code;
            let err = resp.body.and_then(|b| b.error).unwrap_or_default();
            let mut e = classify_error(status, &err, RetryHints::default(), Site::Model);
            if let Some(id) = resp.request_id {
                e.detail = format!("{} (request {id})", e.detail);
            }
            Err(e)
        }
        (None, Some(err)) => Err(classify_line_error(err)),
        (None, None) => Err(ProviderError::retryable(
            Reason::BadResponse,
            "batch line has neither a response nor an error",
            None,
        )),
    }
}

/// Map a Batch to a [`RemoteState`].
pub(crate) fn batch_state(b: &Batch) -> RemoteState {
    match b.status.as_deref().map(str::trim) {
        Some("completed") => {
            if b.result_files().is_empty() {
                RemoteState::SucceededNoOutput
            } else {
                RemoteState::Succeeded
            }
        }
        Some("failed") => {
            let msgs: Vec<String> = b
                .errors
                .iter()
                .flat_map(|e| e.data.iter())
                .map(|e| {
                    let mut s = String::new();
                    if let Some(l) = &e.line {
                        s.push_str(&format!("line {l}: "));
                    }
                    if let Some(c) = e.code.as_deref().filter(|c| !c.is_empty()) {
                        s.push_str(c);
                        s.push_str(": ");
                    }
                    s.push_str(e.message.as_deref().unwrap_or("").trim());
                    s
                })
                .collect();
            RemoteState::Failed(if msgs.is_empty() {
                "batch failed without an error message".to_string()
            } else {
                msgs.join("; ")
            })
        }
        Some("expired") => RemoteState::Expired,
        Some("cancelled" | "canceled") => RemoteState::Cancelled,
        // validating, in_progress, finalizing, cancelling, and anything new.
        _ => RemoteState::Running,
    }
}

/// A temporary file removed when dropped (the batch input JSONL).
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn create() -> io::Result<(Self, std::fs::File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir();
        for _ in 0..16 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                "adloc-openai-batch-{}-{n}-{:016x}.jsonl",
                std::process::id(),
                fastrand::u64(..)
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

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort: a leftover temp file is harmless.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A path segment for a server-assigned id, refusing anything that would
/// escape the path.
fn id_segment(id: &str, what: &str) -> Result<String, ProviderError> {
    let id = id.trim();
    if id.is_empty() || id.contains(['/', '?', '#', '%']) || id == "." || id == ".." {
        return Err(ProviderError::job_terminal(
            Reason::Other,
            format!("invalid {what} id {id:?}"),
        ));
    }
    Ok(id.to_string())
}

type BoxReader<'a> = Box<dyn AsyncBufRead + Send + Unpin + 'a>;

impl OpenAiProvider {
    /// The one endpoint of a chunk, or an error telling the caller to split
    /// it (by endpoint, or by model).
    fn chunk_endpoint(chunk: &BatchChunk) -> Result<&'static str, ProviderError> {
        let first = chunk.items.first().ok_or_else(|| {
            ProviderError::job_terminal(Reason::InvalidArgument, "cannot submit an empty batch")
        })?;
        if let Some(other) = chunk
            .items
            .iter()
            .find(|i| i.request.model.as_str() != chunk.model.as_str())
        {
            return Err(ProviderError::job_terminal(
                Reason::InvalidArgument,
                format!(
                    "batch chunk {:?} is for model {} but item {:?} asks for {}; an OpenAI batch input file holds one model",
                    chunk.display_name, chunk.model, other.key, other.request.model
                ),
            ));
        }
        let endpoint = endpoint_for(&first.request);
        if let Some(other) = chunk
            .items
            .iter()
            .find(|i| endpoint_for(&i.request) != endpoint)
        {
            return Err(ProviderError::job_terminal(
                Reason::InvalidArgument,
                format!(
                    "batch chunk {:?} mixes {} and {} requests (item {:?}); an OpenAI batch has one endpoint: split the chunk by endpoint_for",
                    chunk.display_name,
                    endpoint,
                    endpoint_for(&other.request),
                    other.key
                ),
            ));
        }
        Ok(endpoint)
    }

    /// Write the chunk's JSONL to a temp file (streamed, never built in
    /// memory); returns the file and its size.
    async fn write_jsonl(
        chunk: &BatchChunk,
        endpoint: &'static str,
    ) -> Result<(TempFile, u64), ProviderError> {
        // Refuse a bad item before writing anything, naming it.
        for item in &chunk.items {
            batch_body(&item.request).map_err(|mut e| {
                e.detail = format!("batch item {:?}: {}", item.key, e.detail);
                e
            })?;
        }
        let items = chunk.items.clone();
        let io_err = |e: io::Error| {
            ProviderError::retryable(
                Reason::Other,
                format!("writing batch input JSONL failed: {e}"),
                None,
            )
        };
        tokio::task::spawn_blocking(move || {
            let (tmp, file) = TempFile::create().map_err(io_err)?;
            let mut w = io::BufWriter::with_capacity(1 << 20, file);
            for item in &items {
                let line = BatchInputLine {
                    custom_id: &item.key,
                    method: "POST",
                    url: endpoint,
                    body: batch_body(&item.request)?,
                };
                serde_json::to_writer(&mut w, &line).map_err(|e| io_err(e.into()))?;
                w.write_all(b"\n").map_err(io_err)?;
            }
            let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
            let size = file.metadata().map_err(io_err)?.len();
            Ok((tmp, size))
        })
        .await
        .map_err(|e| {
            ProviderError::retryable(
                Reason::Other,
                format!("JSONL writer task failed: {e}"),
                None,
            )
        })?
    }

    /// `POST /files` (multipart: `purpose=batch`, then `file` named
    /// `batch.jsonl`), streaming the file from disk; returns the file id.
    async fn upload_jsonl(&self, path: &Path, size: u64) -> Result<String, ProviderError> {
        let mut form = Multipart::new();
        form.text("purpose", "batch");
        let mut head = form.take_body();
        head.extend_from_slice(&form.file_head("file", "batch.jsonl", "application/octet-stream"));
        let mut tail = b"\r\n".to_vec();
        tail.extend_from_slice(&form.closing());
        let total = head.len() as u64 + size + tail.len() as u64;
        let file = tokio::fs::File::open(path).await.map_err(|e| {
            ProviderError::retryable(
                Reason::Other,
                format!("cannot reopen batch input: {e}"),
                None,
            )
        })?;
        let body = stream::once(async move { Ok(head.into()) })
            .chain(ReaderStream::with_capacity(file, DOWNLOAD_BUFFER))
            .chain(stream::once(async move { Ok(tail.into()) }));
        // No whole-request timeout: a 200 MB upload may take a while; the
        // client's idle timeout still bounds a stall.
        let rb = self
            .with_auth(self.http.post(self.url("files")))
            .header(CONTENT_TYPE, form.content_type())
            .header(CONTENT_LENGTH, total.to_string())
            .body(reqwest::Body::wrap_stream(body));
        let resp = self.send_for_body(rb, Site::Resource).await?;
        let file: FileObject = serde_json::from_slice(resp.as_ref())
            .map_err(|e| classify_json_error(&e, "file upload response"))?;
        id_segment(&file.id, "uploaded file")
    }

    /// `POST /batches` (not idempotent, never retried here).
    async fn create_batch(
        &self,
        chunk: &BatchChunk,
        file_id: &str,
        endpoint: &'static str,
    ) -> Result<RemoteBatch, ProviderError> {
        let ambiguous = |mut e: ProviderError| {
            if e.is_retryable() {
                e.detail = format!(
                    "batch creation outcome unknown; look the batch up by its {TAG_KEY} {:?} \
                     before creating it again: {}",
                    chunk.display_name, e.detail
                );
            }
            e
        };
        let body = CreateBatchBody {
            input_file_id: file_id,
            endpoint,
            completion_window: "24h",
            metadata: BTreeMap::from([(TAG_KEY, chunk.display_name.as_str())]),
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| ProviderError::job_terminal(Reason::Other, e.to_string()))?;
        let resp = self
            .post_json("batches", body, Site::Model)
            .await
            .map_err(ambiguous)?;
        let batch: Batch = serde_json::from_slice(resp.as_ref())
            .map_err(|e| ambiguous(classify_json_error(&e, "batch create response")))?;
        if batch.id.trim().is_empty() {
            return Err(ambiguous(ProviderError::retryable(
                Reason::BadResponse,
                "batch create response has no id",
                None,
            )));
        }
        Ok(RemoteBatch {
            name: batch.id,
            display_name: chunk.display_name.clone(),
        })
    }

    /// `GET /batches/{id}`.
    async fn get_batch(&self, id: &str) -> Result<Batch, ProviderError> {
        let path = format!("batches/{}", id_segment(id, "batch")?);
        let rb = self.authed(self.http.get(self.url(&path)));
        let body = self.send_for_body(rb, Site::Resource).await?;
        serde_json::from_slice(body.as_ref()).map_err(|e| classify_json_error(&e, "batch object"))
    }

    /// `GET /files/{id}/content` as a buffered reader over the streamed
    /// body (never held whole in memory).
    pub(crate) async fn download_reader(
        &self,
        file_id: &str,
    ) -> Result<BoxReader<'static>, ProviderError> {
        let path = format!("files/{}/content", id_segment(file_id, "file")?);
        // No whole-request timeout: results files run to hundreds of MB.
        let rb = self
            .with_auth(self.http.get(self.url(&path)))
            .header(ACCEPT, HeaderValue::from_static("application/binary"));
        let resp = self.send(rb, Site::Resource).await?;
        let stream = resp.bytes_stream().map_err(io::Error::other);
        Ok(Box::new(BufReader::with_capacity(
            DOWNLOAD_BUFFER,
            StreamReader::new(stream),
        )))
    }

    /// Stream outcomes from the given files in order, one line at a time.
    ///
    /// Memory stays bounded by the longest line. An `Err` item is either a
    /// line that cannot be attributed (the stream goes on) or a download or
    /// I/O failure / a final line cut short, both retryable (the stream
    /// ends: downloading again is idempotent).
    pub(crate) fn stream_files(
        &self,
        files: Vec<String>,
        first: BoxReader<'static>,
    ) -> OutcomeStream<'_> {
        struct State<'s> {
            provider: &'s OpenAiProvider,
            files: VecDeque<String>,
            reader: Option<BoxReader<'static>>,
            buf: Vec<u8>,
            done: bool,
        }
        let mut files: VecDeque<String> = files.into();
        files.pop_front();
        let state = State {
            provider: self,
            files,
            reader: Some(first),
            buf: Vec::new(),
            done: false,
        };
        Box::pin(stream::unfold(state, |mut st| async move {
            loop {
                if st.done {
                    return None;
                }
                let reader = match &mut st.reader {
                    Some(r) => r,
                    None => {
                        let next = st.files.pop_front()?;
                        match st.provider.download_reader(&next).await {
                            Ok(r) => st.reader.insert(r),
                            Err(e) => {
                                st.done = true;
                                return Some((Err(e), st));
                            }
                        }
                    }
                };
                st.buf.clear();
                match reader.read_until(b'\n', &mut st.buf).await {
                    Err(e) => {
                        st.done = true;
                        let e = st.provider.scrub(classify_io(&e));
                        return Some((Err(e), st));
                    }
                    Ok(0) => {
                        st.reader = None;
                        continue;
                    }
                    Ok(_) => {}
                }
                let terminated = st.buf.last() == Some(&b'\n');
                if st.buf.trim_ascii().is_empty() {
                    continue;
                }
                let item = parse_output_line(&st.buf);
                if !terminated && let Err(e) = &item {
                    // A last line that does not parse: a cut transfer.
                    st.done = true;
                    let e = ProviderError::retryable(
                        Reason::Connection,
                        format!(
                            "results file ends mid-line (truncated download): {}",
                            e.detail
                        ),
                        None,
                    );
                    return Some((Err(e), st));
                }
                let item = match item {
                    Ok(o) => Ok(BatchOutcome {
                        key: o.key,
                        result: o.result.map_err(|e| st.provider.scrub(e)),
                    }),
                    Err(e) => Err(st.provider.scrub(e)),
                };
                return Some((item, st));
            }
        }))
    }
}

#[async_trait]
impl BatchApi for OpenAiProvider {
    async fn submit(&self, chunk: &BatchChunk) -> Result<RemoteBatch, ProviderError> {
        // Edits of earlier images become JSON edit bodies (§4.2).
        let sent;
        let chunk = if chunk.items.iter().any(|i| i.request.edit.is_some()) {
            sent = BatchChunk {
                display_name: chunk.display_name.clone(),
                model: chunk.model.clone(),
                items: chunk
                    .items
                    .iter()
                    .map(|i| BatchItem {
                        key: i.key.clone(),
                        request: as_sent(&i.request).into_owned(),
                    })
                    .collect(),
            };
            &sent
        } else {
            chunk
        };
        let endpoint = Self::chunk_endpoint(chunk)?;
        let (tmp, size) = Self::write_jsonl(chunk, endpoint).await?;
        let file_id = self
            .upload_jsonl(tmp.path(), size)
            .await
            .map_err(|e| self.scrub(e))?;
        drop(tmp);
        self.create_batch(chunk, &file_id, endpoint)
            .await
            .map_err(|e| self.scrub(e))
    }

    async fn find(&self, display_name: &str) -> Result<Option<RemoteBatch>, ProviderError> {
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut rb = self
                .authed(self.http.get(self.url("batches")))
                .query(&[("limit", LIST_PAGE_SIZE)]);
            if let Some(a) = &after {
                rb = rb.query(&[("after", a.as_str())]);
            }
            let body = self.send_for_body(rb, Site::Resource).await?;
            let page: BatchList = serde_json::from_slice(body.as_ref())
                .map_err(|e| classify_json_error(&e, "batch list"))?;
            // Newest first: the first match is the latest batch with the tag.
            if let Some(b) = page
                .data
                .iter()
                .find(|b| b.tag() == Some(display_name) && !b.id.trim().is_empty())
            {
                return Ok(Some(RemoteBatch {
                    name: b.id.clone(),
                    display_name: display_name.to_string(),
                }));
            }
            if !page.has_more {
                break;
            }
            let next = page
                .last_id
                .filter(|s| !s.trim().is_empty())
                .or_else(|| page.data.last().map(|b| b.id.clone()));
            match next {
                Some(n) if after.as_ref() != Some(&n) => after = Some(n),
                _ => break,
            }
        }
        Ok(None)
    }

    async fn poll(&self, batch: &RemoteBatch) -> Result<RemoteState, ProviderError> {
        match self.get_batch(&batch.name).await.map_err(|e| self.scrub(e)) {
            Ok(b) => Ok(batch_state(&b)),
            Err(e) if e.http_status == Some(404) => Ok(RemoteState::Failed(format!(
                "batch {} not found on the server: {}",
                batch.name, e.detail
            ))),
            Err(e) => Err(e),
        }
    }

    /// Works for completed, expired and cancelled batches alike: finished
    /// lines of an expired or cancelled batch are billed and must be ingested.
    async fn results<'a>(
        &'a self,
        batch: &'a RemoteBatch,
    ) -> Result<OutcomeStream<'a>, ProviderError> {
        let b = self
            .get_batch(&batch.name)
            .await
            .map_err(|e| self.scrub(e))?;
        let files: Vec<String> = b.result_files().into_iter().map(str::to_string).collect();
        let Some(first) = files.first() else {
            return match batch_state(&b) {
                RemoteState::Expired | RemoteState::Cancelled | RemoteState::Failed(_) => {
                    Ok(Box::pin(stream::empty()))
                }
                _ => Err(ProviderError::retryable(
                    Reason::BadResponse,
                    format!("batch {} has no output or error file yet", batch.name),
                    None,
                )),
            };
        };
        let reader = self.download_reader(first).await?;
        Ok(self.stream_files(files, reader))
    }

    async fn cancel(&self, batch: &RemoteBatch) -> Result<(), ProviderError> {
        let path = format!("batches/{}/cancel", id_segment(&batch.name, "batch")?);
        let rb = self
            .authed(self.http.post(self.url(&path)))
            .header(CONTENT_LENGTH, HeaderValue::from_static("0"))
            .body(Vec::new());
        self.send_for_body(rb, Site::Resource).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ErrorClass;

    fn batch(json: &str) -> Batch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn poll_states_map_to_remote_states() {
        for s in [
            "validating",
            "in_progress",
            "finalizing",
            "cancelling",
            "new_thing",
        ] {
            assert_eq!(
                batch_state(&batch(&format!(r#"{{"id":"b","status":"{s}"}}"#))),
                RemoteState::Running,
                "{s}"
            );
        }
        assert_eq!(
            batch_state(&batch(
                r#"{"id":"b","status":"completed","output_file_id":"file-1"}"#
            )),
            RemoteState::Succeeded
        );
        assert_eq!(
            batch_state(&batch(
                r#"{"id":"b","status":"completed","output_file_id":null,"error_file_id":"file-2"}"#
            )),
            RemoteState::Succeeded
        );
        assert_eq!(
            batch_state(&batch(r#"{"id":"b","status":"completed"}"#)),
            RemoteState::SucceededNoOutput
        );
        assert_eq!(
            batch_state(&batch(
                r#"{"id":"b","status":"failed","errors":{"object":"list","data":[{"code":"invalid_url","message":"bad url","param":null,"line":3},{"message":"two"}]}}"#
            )),
            RemoteState::Failed("line 3: invalid_url: bad url; two".into())
        );
        assert_eq!(
            batch_state(&batch(r#"{"id":"b","status":"failed","errors":null}"#)),
            RemoteState::Failed("batch failed without an error message".into())
        );
        assert_eq!(
            batch_state(&batch(r#"{"id":"b","status":"expired"}"#)),
            RemoteState::Expired
        );
        assert_eq!(
            batch_state(&batch(r#"{"id":"b","status":"cancelled"}"#)),
            RemoteState::Cancelled
        );
    }

    #[test]
    fn output_lines_are_classified_by_status_and_code() {
        let o = parse_output_line(
            br#"{"id":"batch_req_124","custom_id":"k2","response":{"status_code":400,"request_id":"req_1","body":{"error":{"message":"Your request was rejected by the safety system.","type":"image_generation_user_error","param":null,"code":"moderation_blocked","moderation_details":{"moderation_stage":"input","categories":["violence"]}}}},"error":null}"#,
        )
        .unwrap();
        assert_eq!(o.key, "k2");
        let e = o.result.unwrap_err();
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::JobTerminal, Reason::BlockedPrompt)
        );
        assert_eq!(e.block_reason.as_deref(), Some("violence"));
        assert_eq!(e.http_status, Some(400));
        let o = parse_output_line(
            br#"{"custom_id":"k3","response":{"status_code":500,"body":{"error":{"message":"x","type":"server_error","code":null}}},"error":null}"#,
        )
        .unwrap();
        assert_eq!(o.result.unwrap_err().reason, Reason::ServerError);
        let o = parse_output_line(
            br#"{"id":"r","custom_id":"k4","response":null,"error":{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}}"#,
        )
        .unwrap();
        let e = o.result.unwrap_err();
        assert_eq!(e.reason, Reason::BatchFailed);
        assert!(e.is_retryable());
        assert!(parse_output_line(br#"{"response":null,"error":null}"#).is_err());
        assert_eq!(
            parse_output_line(b"not json").unwrap_err().reason,
            Reason::BadResponse
        );
        let o = parse_output_line(br#"{"custom_id":"k5","response":null,"error":null}"#).unwrap();
        assert_eq!(o.result.unwrap_err().reason, Reason::BadResponse);
    }
}
