//! The Batch API (protocol §3): submit (JSONL + Files upload + create),
//! find by display name, poll, stream results, cancel.

use std::collections::HashSet;
use std::io::Write as _;

use async_trait::async_trait;
use futures_util::stream;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};

use super::classify::{Site, classify_io, classify_item_error, classify_json_error};
use super::client::GeminiProvider;
use super::files::TempFile;
use super::read::{build_read, interpret_read};
use super::response;
use super::wire::{
    BatchInputLine, BatchSpec, CreateBatchBody, GenerateContentResponse, InlineOutputOperation,
    InlinedRequest, InlinedRequests, InputConfig, KeyMetadata, ListBatchesResponse, Operation,
    ResultLine, RpcStatus, build_request,
};
use crate::provider::{
    BatchApi, BatchChunk, BatchItem, BatchOutcome, ErrorClass, Generated, OutcomeStream,
    ProviderError, ReadBatchApi, ReadChunk, ReadItem, ReadOutcome, ReadOutcomeStream, Reason,
    RemoteBatch, RemoteState,
};

/// MIME type for the uploaded JSONL, as Google's own examples send it.
const JSONL_MIME: &str = "jsonl";
/// Page size for `batches.list`.
const LIST_PAGE_SIZE: &str = "100";
/// Hard stop for list pagination, against a server that never ends.
const MAX_LIST_PAGES: usize = 1000;

/// One attributed line: its key and the item's result.
type Keyed<T> = (String, Result<T, ProviderError>);

/// How one item's response is read: an image, or a copy-QA transcript.
type Interpret<T> = for<'r> fn(GenerateContentResponse<'r>) -> Result<T, ProviderError>;

fn interpret_image(resp: GenerateContentResponse<'_>) -> Result<Generated, ProviderError> {
    response::interpret(resp, None, None)
}

/// Parse one results-file line into an outcome matched by `key`.
///
/// The line is `{"key": …, "response": GenerateContentResponse}` or
/// `{"key": …, "error": Status}` with fields in any order and unknown
/// fields ignored; an inline-style `metadata.key` is accepted as the key.
/// Base64 image data is borrowed from `line` and decoded once.
///
/// `Err` means the line cannot be attributed to a job (not JSON, no key).
pub fn parse_results_line(line: &[u8]) -> Result<BatchOutcome, ProviderError> {
    let (key, result) = parse_line(line, interpret_image)?;
    Ok(BatchOutcome { key, result })
}

/// Parse one line of a read batch's results (same shape as an image
/// batch's; the response is a transcript).
pub fn parse_read_line(line: &[u8]) -> Result<ReadOutcome, ProviderError> {
    let (key, result) = parse_line(line, interpret_read)?;
    Ok(ReadOutcome { key, result })
}

fn parse_line<T>(line: &[u8], interpret: Interpret<T>) -> Result<Keyed<T>, ProviderError> {
    let line = line.trim_ascii();
    let parsed: ResultLine<'_> =
        serde_json::from_slice(line).map_err(|e| classify_json_error(&e, "batch results line"))?;
    let key = parsed
        .key
        .or_else(|| parsed.metadata.and_then(|m| m.key))
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ProviderError::retryable(
                Reason::BadResponse,
                "batch results line without a key",
                None,
            )
        })?;
    Ok((
        key.into_owned(),
        item_result(parsed.response, parsed.error.as_ref(), interpret),
    ))
}

/// The result of one batch item: a per-item error wins over a response.
fn item_result<T>(
    response: Option<GenerateContentResponse<'_>>,
    error: Option<&RpcStatus>,
    interpret: Interpret<T>,
) -> Result<T, ProviderError> {
    match (error, response) {
        (Some(err), _) => Err(classify_item_error(err)),
        (None, Some(resp)) => interpret(resp),
        (None, None) => Err(ProviderError::retryable(
            Reason::BadResponse,
            "batch item has neither a response nor an error",
            None,
        )),
    }
}

/// Stream outcomes from a JSONL results reader, one line at a time.
///
/// Memory stays bounded by the longest line: one reused line buffer,
/// borrowed parsing, one decoded image at a time. An `Err` item is either
/// a line that cannot be attributed (the stream goes on) or an I/O
/// failure / a final line cut short, both retryable `Connection`/`Timeout`
/// (the stream ends: re-download, it is idempotent).
pub fn stream_results_from_reader<'a, R>(reader: R) -> OutcomeStream<'a>
where
    R: AsyncBufRead + Unpin + Send + 'a,
{
    stream_lines(reader, parse_results_line)
}

/// How many result lines are parsed at once: one per core, plus one so a
/// core never waits for the download. Memory stays bounded by this many
/// lines, never by the size of the results file.
fn parse_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) + 1
}

/// [`stream_results_from_reader`] for any kind of line. Lines are read in
/// order on the caller's task and parsed (base64 decode, image check) on
/// the blocking pool, several at once; outcomes come out in file order.
fn stream_lines<'a, R, T>(
    reader: R,
    parse: fn(&[u8]) -> Result<T, ProviderError>,
) -> std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, ProviderError>> + Send + 'a>>
where
    R: AsyncBufRead + Unpin + Send + 'a,
    T: Send + 'static,
{
    use futures_util::StreamExt as _;
    struct State<R> {
        reader: R,
        done: bool,
    }
    /// A line as read: its bytes and whether a newline ended it, or the
    /// read error that ended the file.
    type Line = Result<(Vec<u8>, bool), ProviderError>;
    let lines = stream::unfold(
        State {
            reader,
            done: false,
        },
        |mut st| async move {
            loop {
                if st.done {
                    return None;
                }
                let mut buf = Vec::new();
                match st.reader.read_until(b'\n', &mut buf).await {
                    Err(e) => {
                        st.done = true;
                        return Some((Line::Err(classify_io(&e)), st));
                    }
                    Ok(0) => return None,
                    Ok(_) => {}
                }
                if buf.trim_ascii().is_empty() {
                    continue;
                }
                let terminated = buf.last() == Some(&b'\n');
                st.done = !terminated;
                return Some((Line::Ok((buf, terminated)), st));
            }
        },
    );
    Box::pin(
        lines
            .map(move |line| async move {
                let (buf, terminated) = line?;
                let item = tokio::task::spawn_blocking(move || parse(&buf))
                    .await
                    .map_err(|e| {
                        ProviderError::retryable(
                            Reason::Other,
                            format!("results parser task failed: {e}"),
                            None,
                        )
                    })?;
                match item {
                    // The last line has no newline: fine if it parses (some
                    // writers omit the final newline), a cut transfer if not.
                    Err(e) if !terminated => Err(ProviderError::retryable(
                        Reason::Connection,
                        format!(
                            "results file ends mid-line (truncated download): {}",
                            e.detail
                        ),
                        None,
                    )),
                    other => other,
                }
            })
            .buffered(parse_parallelism()),
    )
}

/// Normalize a state: `BATCH_STATE_X` / `JOB_STATE_X` → `X`.
fn bare_state(s: &str) -> String {
    let s = s.trim().to_ascii_uppercase();
    s.strip_prefix("BATCH_STATE_")
        .or_else(|| s.strip_prefix("JOB_STATE_"))
        .unwrap_or(&s)
        .to_string()
}

/// Map an Operation to a [`RemoteState`].
pub(crate) fn batch_state(op: &Operation) -> RemoteState {
    let has_output = op.responses_file().is_some() || op.has_inline_output();
    let succeeded = || {
        if has_output {
            RemoteState::Succeeded
        } else {
            RemoteState::SucceededNoOutput
        }
    };
    let failed = || {
        RemoteState::Failed(match op.job_error() {
            Some(e) => {
                let msg = e.message.as_deref().unwrap_or("").trim();
                match (e.code, msg.is_empty()) {
                    (Some(c), false) => format!("code {c}: {msg}"),
                    (Some(c), true) => format!("code {c}"),
                    (None, false) => msg.to_string(),
                    (None, true) => "batch failed without an error message".to_string(),
                }
            }
            None => "batch failed without an error message".to_string(),
        })
    };
    match op.state().map(bare_state).as_deref() {
        Some("SUCCEEDED" | "PARTIALLY_SUCCEEDED") => succeeded(),
        Some("FAILED") => failed(),
        Some("EXPIRED") => RemoteState::Expired,
        Some("CANCELLED" | "CANCELED") => RemoteState::Cancelled,
        // PENDING, RUNNING, QUEUED, CANCELLING, UNSPECIFIED, …: in flight
        // unless the Operation itself says it is done.
        _ if op.done => {
            if op.job_error().is_some() {
                failed()
            } else {
                succeeded()
            }
        }
        _ => RemoteState::Running,
    }
}

/// True for states from which no results will come.
fn is_failed_state(op: &Operation) -> bool {
    matches!(
        batch_state(op),
        RemoteState::Failed(_) | RemoteState::Expired | RemoteState::Cancelled
    )
}

impl GeminiProvider {
    /// `batches/{id}` path for a batch name, refusing anything that would
    /// escape the path.
    fn batch_path(name: &str) -> Result<String, ProviderError> {
        let id = name.trim().trim_start_matches("batches/");
        if id.is_empty() || id.contains(['/', '?', '#', ':']) {
            return Err(ProviderError::job_terminal(
                Reason::Other,
                format!("invalid batch name {name:?}"),
            ));
        }
        Ok(format!("batches/{id}"))
    }

    /// GET a batch Operation, returning the raw body.
    async fn get_batch_body(&self, name: &str) -> Result<impl AsRef<[u8]> + use<>, ProviderError> {
        let url = self.api_url(&Self::batch_path(name)?);
        let rb = self.authed(self.http.get(url));
        Ok(self.send_for_body(rb, Site::Resource).await?.1)
    }

    /// Write a batch's JSONL to a temp file (streamed, never built in
    /// memory), one `line` per item; returns the file and its size.
    async fn write_jsonl<I, F>(items: Vec<I>, line: F) -> Result<(TempFile, u64), ProviderError>
    where
        I: Send + 'static,
        F: Fn(&mut dyn std::io::Write, &I) -> serde_json::Result<()> + Send + 'static,
    {
        let io_err = |e: std::io::Error| {
            ProviderError::retryable(
                Reason::Other,
                format!("writing batch input JSONL failed: {e}"),
                None,
            )
        };
        tokio::task::spawn_blocking(move || {
            let (tmp, file) = TempFile::create("adloc-batch", ".jsonl").map_err(io_err)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            for item in &items {
                line(&mut w, item).map_err(|e| io_err(e.into()))?;
                w.write_all(b"\n").map_err(io_err)?;
            }
            // No fsync: the file is read back by this process and deleted.
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

    /// Create a batch of `model` from a written JSONL: inline when the
    /// config says so and it is small (`inline` builds that body), else
    /// uploaded through the Files API and named by file.
    async fn create_from_jsonl(
        &self,
        model: &str,
        display_name: &str,
        (tmp, size): (TempFile, u64),
        inline: impl FnOnce() -> Result<Vec<u8>, ProviderError>,
    ) -> Result<RemoteBatch, ProviderError> {
        let small = self
            .config
            .inline_batch_max_bytes
            .is_some_and(|max| size < max as u64);
        let body = if small {
            drop(tmp);
            inline()?
        } else {
            let file_name = self
                .upload_file(tmp.path(), size, display_name, JSONL_MIME)
                .await?;
            drop(tmp);
            let body: CreateBatchBody<'_> = CreateBatchBody {
                batch: BatchSpec {
                    display_name,
                    input_config: InputConfig {
                        file_name: Some(&file_name),
                        requests: None,
                    },
                },
            };
            serde_json::to_vec(&body)
                .map_err(|e| ProviderError::job_terminal(Reason::Other, e.to_string()))?
        };
        self.create_batch(model, display_name, body).await
    }

    /// Send the (non-idempotent) create call. Never retried here.
    async fn create_batch(
        &self,
        model: &str,
        display_name: &str,
        body: Vec<u8>,
    ) -> Result<RemoteBatch, ProviderError> {
        let url = self.api_url(&format!("models/{model}:batchGenerateContent"));
        let ambiguous = |mut e: ProviderError| {
            if e.is_retryable() {
                e.detail = format!(
                    "batch creation outcome unknown; look the batch up by display name {:?} \
                     before creating it again: {}",
                    display_name, e.detail
                );
            }
            e
        };
        let resp = self
            .post_json(url, body, Site::Model)
            .await
            .map_err(ambiguous)?;
        let op: Operation = serde_json::from_slice(resp.as_ref())
            .map_err(|e| ambiguous(classify_json_error(&e, "batch create response")))?;
        let name = op.batch_name().ok_or_else(|| {
            ambiguous(ProviderError::retryable(
                Reason::BadResponse,
                "batch create response names no batch",
                None,
            ))
        })?;
        Ok(RemoteBatch {
            name: name.to_string(),
            display_name: op.display_name().unwrap_or(display_name).to_string(),
        })
    }

    /// The outcomes of a finished batch, from its results file (streamed,
    /// `parse` per line) or its inline output (`interpret` per item,
    /// `wrap`ped into the outcome type).
    async fn outcomes<'a, T, O>(
        &'a self,
        batch: &'a RemoteBatch,
        parse: fn(&[u8]) -> Result<O, ProviderError>,
        interpret: Interpret<T>,
        wrap: fn(Keyed<T>) -> O,
    ) -> Result<
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<O, ProviderError>> + Send + 'a>>,
        ProviderError,
    >
    where
        T: Send + 'static,
        O: Send + 'static,
    {
        let body = self.get_batch_body(&batch.name).await?;
        let op: Operation = serde_json::from_slice(body.as_ref())
            .map_err(|e| classify_json_error(&e, "batches.get response"))?;
        if let Some(file) = op.responses_file() {
            let reader = self.download_reader(file).await?;
            return Ok(stream_lines(reader, parse));
        }
        if op.has_inline_output() {
            let outcomes: Vec<Result<O, ProviderError>> =
                inline_outcomes(body.as_ref(), interpret)?
                    .into_iter()
                    .map(|o| o.map(wrap))
                    .collect();
            return Ok(Box::pin(stream::iter(outcomes)));
        }
        Err(ProviderError::retryable(
            Reason::BadResponse,
            format!("batch {} has no output yet", batch.name),
            None,
        ))
    }

    fn inline_body(chunk: &BatchChunk) -> Result<Vec<u8>, ProviderError> {
        let requests = chunk
            .items
            .iter()
            .map(|i| InlinedRequest {
                request: build_request(&i.request),
                metadata: KeyMetadata { key: &i.key },
            })
            .collect();
        inline_json(&chunk.display_name, requests)
    }

    fn inline_read_body(chunk: &ReadChunk) -> Result<Vec<u8>, ProviderError> {
        let requests = chunk
            .items
            .iter()
            .map(|i| InlinedRequest {
                request: build_read(&i.request),
                metadata: KeyMetadata { key: &i.key },
            })
            .collect();
        inline_json(&chunk.display_name, requests)
    }
}

/// The create body of an inline batch.
fn inline_json<R: serde::Serialize>(
    display_name: &str,
    requests: Vec<InlinedRequest<'_, R>>,
) -> Result<Vec<u8>, ProviderError> {
    let body = CreateBatchBody {
        batch: BatchSpec {
            display_name,
            input_config: InputConfig {
                file_name: None,
                requests: Some(InlinedRequests { requests }),
            },
        },
    };
    serde_json::to_vec(&body).map_err(|e| ProviderError::job_terminal(Reason::Other, e.to_string()))
}

/// Stream an inline output document's items (one JSON document, parsed
/// whole: an explicit opt-in for small batches).
fn inline_outcomes<T: Send + 'static>(
    body: &[u8],
    interpret: Interpret<T>,
) -> Result<Vec<Result<Keyed<T>, ProviderError>>, ProviderError> {
    let parsed: InlineOutputOperation<'_> =
        serde_json::from_slice(body).map_err(|e| classify_json_error(&e, "inline batch output"))?;
    Ok(parsed
        .into_items()
        .unwrap_or_default()
        .into_iter()
        .map(|item| {
            let key = item
                .metadata
                .and_then(|m| m.key)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    ProviderError::retryable(
                        Reason::BadResponse,
                        "inline batch response without metadata.key",
                        None,
                    )
                })?;
            Ok((
                key.into_owned(),
                item_result(item.response, item.error.as_ref(), interpret),
            ))
        })
        .collect())
}

#[async_trait]
impl BatchApi for GeminiProvider {
    async fn submit(&self, chunk: &BatchChunk) -> Result<RemoteBatch, ProviderError> {
        if chunk.items.is_empty() {
            return Err(ProviderError::job_terminal(
                Reason::InvalidArgument,
                "cannot submit an empty batch",
            ));
        }
        let jsonl = Self::write_jsonl(chunk.items.clone(), |w, item: &BatchItem| {
            serde_json::to_writer(
                w,
                &BatchInputLine {
                    key: &item.key,
                    request: build_request(&item.request),
                },
            )
        })
        .await?;
        self.create_from_jsonl(chunk.model.as_str(), &chunk.display_name, jsonl, || {
            Self::inline_body(chunk)
        })
        .await
    }

    async fn find(&self, display_name: &str) -> Result<Option<RemoteBatch>, ProviderError> {
        let mut token: Option<String> = None;
        let mut seen_tokens = HashSet::new();
        let mut fallback: Option<RemoteBatch> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut rb = self
                .authed(self.http.get(self.api_url("batches")))
                .query(&[("pageSize", LIST_PAGE_SIZE)]);
            if let Some(t) = &token {
                rb = rb.query(&[("pageToken", t.as_str())]);
            }
            let (_, body) = self.send_for_body(rb, Site::Resource).await?;
            let page: ListBatchesResponse = serde_json::from_slice(body.as_ref())
                .map_err(|e| classify_json_error(&e, "batches.list response"))?;
            for op in &page.operations {
                if op.display_name() != Some(display_name) {
                    continue;
                }
                let Some(name) = op.batch_name() else {
                    continue;
                };
                let found = RemoteBatch {
                    name: name.to_string(),
                    display_name: display_name.to_string(),
                };
                if !is_failed_state(op) {
                    return Ok(Some(found));
                }
                fallback.get_or_insert(found);
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) if seen_tokens.insert(t.clone()) => token = Some(t),
                _ => break,
            }
        }
        Ok(fallback)
    }

    async fn poll(&self, batch: &RemoteBatch) -> Result<RemoteState, ProviderError> {
        let body = match self.get_batch_body(&batch.name).await {
            Ok(b) => b,
            Err(e) if e.http_status == Some(404) => {
                // Deleted or purged: no results will ever come from it.
                return Ok(RemoteState::Failed(format!(
                    "batch {} not found on the server: {}",
                    batch.name, e.detail
                )));
            }
            Err(e) => return Err(e),
        };
        let op: Operation = serde_json::from_slice(body.as_ref())
            .map_err(|e| classify_json_error(&e, "batches.get response"))?;
        Ok(batch_state(&op))
    }

    async fn results<'a>(
        &'a self,
        batch: &'a RemoteBatch,
    ) -> Result<OutcomeStream<'a>, ProviderError> {
        self.outcomes(
            batch,
            parse_results_line,
            interpret_image,
            |(key, result)| BatchOutcome { key, result },
        )
        .await
    }

    async fn cancel(&self, batch: &RemoteBatch) -> Result<(), ProviderError> {
        let url = self.api_url(&format!("{}:cancel", Self::batch_path(&batch.name)?));
        let rb = self
            .authed(self.http.post(url))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            // hyper omits Content-Length on an empty body; Google's front
            // end wants it on a POST (the SDK sends `Content-Length: 0`).
            .header(CONTENT_LENGTH, HeaderValue::from_static("0"))
            .body(Vec::new());
        match self.send_for_body(rb, Site::Resource).await {
            Ok(_) => Ok(()),
            // Cancelling a batch that already finished is about that batch,
            // not a reason to stop the run.
            Err(mut e) if e.class == ErrorClass::RunTerminal && e.http_status == Some(400) => {
                e.class = ErrorClass::JobTerminal;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl ReadBatchApi for GeminiProvider {
    async fn submit_reads(&self, chunk: &ReadChunk) -> Result<RemoteBatch, ProviderError> {
        if chunk.items.is_empty() {
            return Err(ProviderError::job_terminal(
                Reason::InvalidArgument,
                "cannot submit an empty batch",
            ));
        }
        let jsonl = Self::write_jsonl(chunk.items.clone(), |w, item: &ReadItem| {
            serde_json::to_writer(
                w,
                &BatchInputLine {
                    key: &item.key,
                    request: build_read(&item.request),
                },
            )
        })
        .await?;
        self.create_from_jsonl(chunk.reader.as_str(), &chunk.display_name, jsonl, || {
            Self::inline_read_body(chunk)
        })
        .await
    }

    async fn read_results<'a>(
        &'a self,
        batch: &'a RemoteBatch,
    ) -> Result<ReadOutcomeStream<'a>, ProviderError> {
        self.outcomes(batch, parse_read_line, interpret_read, |(key, result)| {
            ReadOutcome { key, result }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use futures_util::StreamExt as _;

    use super::*;
    use crate::provider::gemini::response::tests::png_bytes;

    fn ok_line(key: &str) -> String {
        format!(
            r#"{{"response":{{"candidates":[{{"content":{{"role":"model","parts":[{{"inlineData":{{"mimeType":"image/png","data":"{}"}}}}]}},"finishReason":"STOP","index":0}}],"usageMetadata":{{"promptTokenCount":7,"candidatesTokenCount":1290,"candidatesTokensDetails":[{{"modality":"IMAGE","tokenCount":1290}}]}},"modelVersion":"gemini-2.5-flash-image","responseId":"r","futureField":{{"a":1}}}},"key":"{key}","alsoUnknown":[1,2]}}"#,
            STANDARD.encode(png_bytes())
        )
    }

    #[test]
    fn success_line_with_key_last_and_unknown_fields() {
        let o = parse_results_line(ok_line("fox-1").as_bytes()).unwrap();
        assert_eq!(o.key, "fox-1");
        let g = o.result.unwrap();
        assert_eq!(g.bytes, png_bytes());
        assert_eq!(g.usage.unwrap().image_tokens, 1290);
    }

    #[test]
    fn error_line_uses_grpc_codes() {
        let o = parse_results_line(
            br#"{"key":"fox-2","error":{"code":3,"message":"Request contains an invalid argument."}}"#,
        )
        .unwrap();
        assert_eq!(o.key, "fox-2");
        let e = o.result.unwrap_err();
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::JobTerminal, Reason::InvalidArgument)
        );
        assert!(e.detail.contains("invalid argument"));
        let o = parse_results_line(
            br#"{"error":{"code":8,"message":"Resource exhausted","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"}]},"key":"k"}"#,
        )
        .unwrap();
        let e = o.result.unwrap_err();
        assert_eq!(e.reason, Reason::RateLimited);
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(3)));
        let o =
            parse_results_line(br#"{"key":"k","error":{"code":13,"message":"internal"}}"#).unwrap();
        assert!(o.result.unwrap_err().is_retryable());
    }

    #[test]
    fn blocked_line_and_unattributable_lines() {
        let o = parse_results_line(
            br#"{"key":"b","response":{"candidates":[{"content":{},"finishReason":"IMAGE_SAFETY","finishMessage":"filtered"}]}}"#,
        )
        .unwrap();
        let e = o.result.unwrap_err();
        assert_eq!(e.reason, Reason::BlockedImage);
        assert_eq!(e.block_reason.as_deref(), Some("IMAGE_SAFETY"));
        // Inline-style metadata.key is accepted.
        let o =
            parse_results_line(br#"{"metadata":{"key":"m"},"error":{"code":14,"message":"x"}}"#)
                .unwrap();
        assert_eq!(o.key, "m");
        assert!(parse_results_line(br#"{"response":{}}"#).is_err());
        assert_eq!(
            parse_results_line(b"not json").unwrap_err().reason,
            Reason::BadResponse
        );
    }

    #[tokio::test]
    async fn reader_stream_handles_blank_lines_and_truncation() {
        let full = ok_line("a");
        let mut data = format!(
            "{full}\r\n\n{}\n",
            r#"{"key":"b","error":{"code":3,"message":"bad"}}"#
        );
        // A last line cut mid-way (a truncated download).
        data.push_str(&full[..full.len() / 2]);
        let reader =
            tokio::io::BufReader::with_capacity(64, std::io::Cursor::new(data.into_bytes()));
        let items: Vec<_> = stream_results_from_reader(reader).collect().await;
        assert_eq!(items.len(), 3);
        assert!(items[0].as_ref().unwrap().result.is_ok());
        assert_eq!(items[1].as_ref().unwrap().key, "b");
        let e = items[2].as_ref().unwrap_err();
        assert_eq!(e.reason, Reason::Connection);
        assert!(e.is_retryable());

        // A final line without newline that parses is fine.
        let reader = tokio::io::BufReader::new(std::io::Cursor::new(ok_line("z").into_bytes()));
        let items: Vec<_> = stream_results_from_reader(reader).collect().await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap().key, "z");
    }

    fn op(json: &str) -> Operation {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn states_in_both_spellings_and_places() {
        assert_eq!(
            batch_state(&op(r#"{"metadata":{"state":"BATCH_STATE_RUNNING"}}"#)),
            RemoteState::Running
        );
        assert_eq!(
            batch_state(&op(r#"{"metadata":{"state":"JOB_STATE_PENDING"}}"#)),
            RemoteState::Running
        );
        assert_eq!(
            batch_state(&op(
                r#"{"metadata":{"state":"BATCH_STATE_SUCCEEDED"},"done":true}"#
            )),
            RemoteState::SucceededNoOutput
        );
        assert_eq!(
            batch_state(&op(
                r#"{"metadata":{"state":"JOB_STATE_SUCCEEDED","output":{"responsesFile":"files/batch-1"}}}"#
            )),
            RemoteState::Succeeded
        );
        assert_eq!(
            batch_state(&op(
                r#"{"state":"BATCH_STATE_SUCCEEDED","response":{"inlinedResponses":{"inlinedResponses":[]}}}"#
            )),
            RemoteState::Succeeded
        );
        assert_eq!(
            batch_state(&op(
                r#"{"metadata":{"state":"BATCH_STATE_FAILED"},"done":true,"error":{"code":13,"message":"boom"}}"#
            )),
            RemoteState::Failed("code 13: boom".into())
        );
        assert_eq!(
            batch_state(&op(r#"{"metadata":{"state":"JOB_STATE_EXPIRED"}}"#)),
            RemoteState::Expired
        );
        assert_eq!(
            batch_state(&op(r#"{"metadata":{"state":"BATCH_STATE_CANCELLED"}}"#)),
            RemoteState::Cancelled
        );
        assert_eq!(
            batch_state(&op(r#"{"name":"batches/x"}"#)),
            RemoteState::Running
        );
    }
}

#[cfg(test)]
mod memory_probe {
    use std::io::Write as _;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use futures_util::StreamExt as _;

    use super::stream_results_from_reader;

    fn vm_hwm_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Streams a ~300 MB results file and checks the peak RSS stays flat.
    /// Slow-ish; run with `cargo test --lib memory_probe -- --ignored`.
    #[tokio::test]
    #[ignore]
    async fn peak_memory_does_not_grow_with_file_size() {
        let mut rng = 0x1234_5678u32;
        let img = image::RgbImage::from_fn(1024, 1024, |_, _| {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            image::Rgb([rng as u8, (rng >> 8) as u8, (rng >> 16) as u8])
        });
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let b64 = STANDARD.encode(png.into_inner());
        drop(img);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let lines = 75;
        for i in 0..lines {
            writeln!(
                f,
                r#"{{"response":{{"candidates":[{{"content":{{"parts":[{{"inlineData":{{"mimeType":"image/png","data":"{b64}"}}}}]}},"finishReason":"STOP"}}]}},"key":"k{i}"}}"#
            )
            .unwrap();
        }
        f.flush().unwrap();
        drop(f);
        drop(b64);
        let size = std::fs::metadata(&path).unwrap().len();
        let before = vm_hwm_kib();
        let file = tokio::fs::File::open(&path).await.unwrap();
        let reader = tokio::io::BufReader::with_capacity(256 * 1024, file);
        let mut stream = stream_results_from_reader(reader);
        let mut ok = 0;
        while let Some(item) = stream.next().await {
            let outcome = item.unwrap();
            assert!(outcome.result.is_ok());
            ok += 1;
        }
        let after = vm_hwm_kib();
        eprintln!(
            "file {} MiB, {ok} lines, VmHWM before {} MiB, after {} MiB",
            size >> 20,
            before >> 10,
            after >> 10
        );
        assert_eq!(ok, lines);
        assert!(
            after < before + 100 * 1024,
            "peak grew by {} MiB",
            (after - before) >> 10
        );
    }
}
