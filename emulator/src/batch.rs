//! Batch Mode (protocol §3): create, get, list, cancel, delete, and the
//! results (inline or a generated JSONL file).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::errors::{ApiError, json_response};
use super::faults::{HttpFault, draw};
use super::files::{decode_token, encode_token, page_size};
use super::generate;
use super::{KIND_ITEM, Query, Shared, now_rfc3339};
use super::{read, wire};
use crate::Target;

/// Inline batches must stay under 20 MB (§3.1).
const MAX_INLINE_BYTES: usize = 20 * 1024 * 1024;
/// Concurrent batch limit of the real service (§3.1).
const DEFAULT_MAX_CONCURRENT: u64 = 100;

const BATCH_TYPE: &str =
    "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch";
const OUTPUT_TYPE: &str =
    "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Expired,
}

impl State {
    fn wire(self) -> &'static str {
        match self {
            State::Pending => "BATCH_STATE_PENDING",
            State::Running => "BATCH_STATE_RUNNING",
            State::Succeeded => "BATCH_STATE_SUCCEEDED",
            State::Failed => "BATCH_STATE_FAILED",
            State::Cancelled => "BATCH_STATE_CANCELLED",
            State::Expired => "BATCH_STATE_EXPIRED",
        }
    }

    fn terminal(self) -> bool {
        !matches!(self, State::Pending | State::Running)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Succeed,
    Fail,
    Expire,
}

/// How this batch will progress; fixed at create so later fault changes
/// do not rewrite the history of running batches.
#[derive(Debug, Clone)]
struct Plan {
    polls_until_done: u64,
    done_after_ms: Option<u64>,
    /// Gets left that show SUCCEEDED without output.
    output_polls: u64,
    fate: Fate,
}

/// What processing produced.
struct Results {
    successful: u64,
    failed: u64,
    /// (prompt hash, images) per item that produced images.
    billed: Vec<([u8; 32], u64)>,
    /// Reader items answered (billed as reads when the batch succeeds).
    reads: u64,
    /// Inline input: responses in request order.
    inline: Option<Vec<Value>>,
    /// File input: (path, size, sha256 hex) of the JSONL written.
    file: Option<(PathBuf, u64, String)>,
}

struct Batch {
    id: String,
    seq: u64,
    model: String,
    display_name: Option<String>,
    input_file: Option<String>,
    create_time: String,
    update_time: String,
    end_time: Option<String>,
    request_count: u64,
    polls: u64,
    created: Instant,
    plan: Plan,
    state: State,
    results: Arc<OnceLock<Result<Results, String>>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// `metadata.output` once published.
    output: Option<Value>,
    error: Option<Value>,
}

#[derive(Default)]
struct Inner {
    batches: BTreeMap<String, Batch>,
    seq: u64,
}

/// All batches.
#[derive(Default)]
pub(crate) struct BatchStore {
    inner: Mutex<Inner>,
}

impl BatchStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stop every processing task (shutdown).
    pub(crate) fn abort_all(&self) {
        for b in self.lock().batches.values_mut() {
            if let Some(t) = b.task.take() {
                t.abort();
            }
        }
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Requested entity was not found. (batches/{id})"))
}

impl Batch {
    fn finish(&mut self, state: State) {
        self.state = state;
        let now = now_rfc3339();
        self.end_time = Some(now.clone());
        self.update_time = now;
        if let Some(t) = self.task.take()
            && state != State::Succeeded
        {
            t.abort();
        }
    }

    /// Move the batch along. `advance` is true for a `batches.get` (which
    /// counts as a poll) and false for a list.
    fn refresh(&mut self, s: &Shared, advance: bool) {
        if self.state.terminal() {
            if self.state == State::Succeeded && self.output.is_none() {
                if advance {
                    self.plan.output_polls = self.plan.output_polls.saturating_sub(1);
                }
                if self.plan.output_polls == 0 {
                    self.publish(s);
                }
            }
            return;
        }
        if advance {
            self.polls += 1;
        }
        let due = match self.plan.done_after_ms {
            Some(ms) => self.created.elapsed().as_millis() >= u128::from(ms),
            None => self.polls >= self.plan.polls_until_done.max(1),
        };
        if !due {
            if self.polls > 0 || self.plan.done_after_ms.is_some() {
                self.set_running();
            }
            return;
        }
        match self.plan.fate {
            Fate::Fail => {
                s.fault_injected();
                self.error = Some(json!({
                    "code": 13,
                    "message": "The batch failed due to an internal error. Please retry.",
                }));
                self.finish(State::Failed);
            }
            Fate::Expire => {
                s.fault_injected();
                self.error = Some(json!({
                    "code": 4,
                    "message": "The batch expired: it was not completed within 48 hours.",
                }));
                self.finish(State::Expired);
            }
            Fate::Succeed => match self.results.get() {
                // Still generating: stay RUNNING until the results exist.
                None => self.set_running(),
                Some(Err(msg)) => {
                    self.error = Some(json!({"code": 13, "message": msg}));
                    self.finish(State::Failed);
                }
                Some(Ok(r)) => {
                    for (sha, images) in &r.billed {
                        s.bill(sha, *images, true);
                    }
                    s.with_stats(|st| st.reads_billed += r.reads);
                    self.finish(State::Succeeded);
                    if self.plan.output_polls > 0 {
                        s.fault_injected();
                        if advance {
                            self.plan.output_polls -= 1;
                        }
                    }
                    if self.plan.output_polls == 0 {
                        self.publish(s);
                    }
                }
            },
        }
    }

    fn set_running(&mut self) {
        if self.state == State::Pending {
            self.state = State::Running;
            self.update_time = now_rfc3339();
        }
    }

    /// Make the output visible: register the results file (file input) or
    /// expose the inline responses.
    fn publish(&mut self, s: &Shared) {
        let Some(Ok(r)) = self.results.get() else {
            return;
        };
        if let Some((path, size, sha)) = &r.file {
            let file_id = format!("batch-{}", self.id);
            s.files.register_generated(
                file_id.clone(),
                "application/jsonl",
                path.clone(),
                *size,
                sha.clone(),
            );
            self.output = Some(json!({"responsesFile": format!("files/{file_id}")}));
        } else if let Some(items) = &r.inline {
            let mut o = json!({});
            if !items.is_empty() {
                o["inlinedResponses"] = json!({"inlinedResponses": items});
            }
            self.output = Some(o);
        }
    }

    fn stats(&self) -> Value {
        let n = self.request_count;
        let (ok, failed, pending) = match self.state {
            State::Pending | State::Running | State::Cancelled | State::Expired => (0, 0, n),
            State::Failed => (0, n, 0),
            State::Succeeded => match self.results.get() {
                Some(Ok(r)) => (r.successful, r.failed, 0),
                _ => (n, 0, 0),
            },
        };
        // int64s are strings, and zero counts are left out.
        let mut m = Map::new();
        for (k, v) in [
            ("requestCount", n),
            ("successfulRequestCount", ok),
            ("failedRequestCount", failed),
            ("pendingRequestCount", pending),
        ] {
            if v > 0 {
                m.insert(k.into(), json!(v.to_string()));
            }
        }
        Value::Object(m)
    }

    fn operation(&self) -> Value {
        let name = format!("batches/{}", self.id);
        let mut meta = json!({
            "@type": BATCH_TYPE,
            "model": format!("models/{}", self.model),
            "createTime": self.create_time,
            "updateTime": self.update_time,
            "batchStats": self.stats(),
            "state": self.state.wire(),
            "name": name,
        });
        if let Some(d) = &self.display_name {
            meta["displayName"] = json!(d);
        }
        if let Some(f) = &self.input_file {
            meta["inputConfig"] = json!({"fileName": f});
        }
        if let Some(t) = &self.end_time {
            meta["endTime"] = json!(t);
        }
        let mut op = json!({"name": name});
        if self.state.terminal() {
            op["done"] = json!(true);
            if self.state == State::Succeeded {
                if let Some(out) = &self.output {
                    meta["output"] = out.clone();
                    let mut resp = out.clone();
                    resp["@type"] = json!(OUTPUT_TYPE);
                    op["response"] = resp;
                }
            } else if let Some(e) = &self.error {
                op["error"] = e.clone();
            }
        }
        op["metadata"] = meta;
        op
    }
}

/// Where a batch's requests come from.
enum Source {
    Inline(Vec<Value>),
    File(PathBuf),
}

/// `POST /{ver}/models/{model}:batchGenerateContent` (auth already checked).
pub(crate) async fn create(s: &Arc<Shared>, ver: &str, model: &str, body: Body) -> Response {
    let faults = s.faults();
    let http = faults.batch_create_http();
    let index = {
        let mut c = s.lock_counters();
        let i = c.batch_create;
        c.batch_create += 1;
        i
    };
    super::apply_latency(s, &http, index, b"batch-create").await;
    match create_inner(s, ver, model, body, &faults, &http, index).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn create_inner(
    s: &Arc<Shared>,
    ver: &str,
    model: &str,
    body: Body,
    faults: &super::Faults,
    http: &super::faults::HttpFaults,
    index: u64,
) -> Result<Response, ApiError> {
    let model_id = Target::parse(model).ok_or_else(|| {
        ApiError::not_found(format!(
            "models/{model} is not found for API version {ver}, or is not supported for \
             batchGenerateContent. Call ListModels to see the list of available models and \
             their supported methods."
        ))
    })?;
    let bytes = super::read_body(body).await?;
    let raw_len = bytes.len();
    let v = wire::normalize(wire::parse_json(&bytes)?)?;
    drop(bytes);
    let top = v
        .as_object()
        .ok_or_else(|| ApiError::invalid("Invalid JSON payload received. Expected an object."))?;
    wire::check_fields(top, &["batch"], "")?;
    let batch = top.get("batch").and_then(Value::as_object).ok_or_else(|| {
        ApiError::invalid("* BatchGenerateContentRequest.batch: batch is not specified\n")
    })?;
    wire::check_fields(
        batch,
        &[
            "displayName",
            "inputConfig",
            "priority",
            "model",
            "name",
            "webhookConfig",
        ],
        "batch",
    )?;
    let display_name = match batch.get("displayName") {
        Some(Value::String(d)) => Some(d.clone()),
        None | Some(Value::Null) => None,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid value at 'batch.display_name' (TYPE_STRING), {other}"
            )));
        }
    };
    let input = batch
        .get("inputConfig")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ApiError::invalid(
                "* GenerateContentBatch.input_config: input_config is not specified\n",
            )
        })?;
    wire::check_fields(input, &["fileName", "requests"], "batch.input_config")?;
    let (source, input_file, request_count) = match (input.get("fileName"), input.get("requests")) {
        (Some(f), None) => {
            let name = f.as_str().unwrap_or("");
            let id = name.strip_prefix("files/").unwrap_or(name);
            let meta = s.files.get(id).ok_or_else(|| {
                ApiError::permission_denied(format!(
                    "You do not have permission to access the File {id} or it may not exist."
                ))
            })?;
            let count = count_lines(&meta.path).await?;
            if count == 0 {
                return Err(ApiError::invalid(format!(
                    "The batch input file files/{id} contains no requests."
                )));
            }
            (Source::File(meta.path), Some(format!("files/{id}")), count)
        }
        (None, Some(r)) => {
            if raw_len > MAX_INLINE_BYTES {
                return Err(ApiError::invalid(
                    "Request payload size exceeds the limit: 20971520 bytes. Use a file \
                     (inputConfig.fileName) for large batches.",
                ));
            }
            let robj = r.as_object().ok_or_else(|| {
                ApiError::invalid(
                    "Invalid value at 'batch.input_config.requests': expected an object.",
                )
            })?;
            wire::check_fields(robj, &["requests"], "batch.input_config.requests")?;
            let items = robj
                .get("requests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if items.is_empty() {
                return Err(ApiError::invalid(
                    "* GenerateContentBatch.input_config.requests.requests: requests is empty\n",
                ));
            }
            for (i, item) in items.iter().enumerate() {
                let path = format!("batch.input_config.requests.requests[{i}]");
                let obj = item.as_object().ok_or_else(|| {
                    ApiError::invalid(format!("Invalid value at '{path}': expected an object."))
                })?;
                wire::check_fields(obj, &["request", "metadata"], &path)?;
            }
            let n = items.len() as u64;
            (Source::Inline(items), None, n)
        }
        _ => {
            return Err(ApiError::invalid(
                "batch.input_config must set exactly one of file_name or requests.",
            ));
        }
    };

    let max = faults
        .batch
        .max_concurrent_batches
        .unwrap_or(DEFAULT_MAX_CONCURRENT);
    let active = s
        .batches
        .lock()
        .batches
        .values()
        .filter(|b| !b.state.terminal())
        .count() as u64;
    if active >= max {
        return Err(ApiError::new(
            429,
            "RESOURCE_EXHAUSTED",
            format!(
                "Too many concurrent batches: {active} batches are pending or running, the limit \
                 is {max}. Wait for a batch to finish before creating another."
            ),
        ));
    }

    let u = draw(s.seed, &[b"batch-create", &index.to_le_bytes()]);
    let fault = http.decide(index, u);
    if let Some(f) = fault
        && f != HttpFault::Reset
    {
        s.fault_injected();
        return Err(super::fault_error(f, model_id.as_str(), faults));
    }

    let ordinal = {
        let mut c = s.lock_counters();
        let o = c.batch_ordinal;
        c.batch_ordinal += 1;
        o
    };
    let fate = if ordinal < faults.batch.fail_batches {
        Fate::Fail
    } else if ordinal < faults.batch.fail_batches + faults.batch.expire_batches {
        Fate::Expire
    } else {
        Fate::Succeed
    };
    let id = s.new_id(36, b"abcdefghijklmnopqrstuvwxyz0123456789");
    let now = now_rfc3339();
    let results: Arc<OnceLock<Result<Results, String>>> = Arc::new(OnceLock::new());
    let task = if fate == Fate::Succeed {
        let s2 = s.clone();
        let id2 = id.clone();
        let model2 = model_id.clone();
        let results2 = results.clone();
        let rate = faults.batch.item_error_rate;
        Some(tokio::spawn(async move {
            let r = process(&s2, &id2, &model2, source, rate).await;
            let _ = results2.set(r);
        }))
    } else {
        None
    };
    let b = Batch {
        id: id.clone(),
        seq: 0,
        model: model_id.as_str().to_string(),
        display_name: display_name.clone(),
        input_file,
        create_time: now.clone(),
        update_time: now,
        end_time: None,
        request_count,
        polls: 0,
        created: Instant::now(),
        plan: Plan {
            polls_until_done: faults.batch.polls_until_done,
            done_after_ms: faults.batch.done_after_ms,
            output_polls: faults.batch.succeeded_before_output_polls,
            fate,
        },
        state: State::Pending,
        results,
        task,
        output: None,
        error: None,
    };
    let op = {
        let mut g = s.batches.lock();
        g.seq += 1;
        let mut b = b;
        b.seq = g.seq;
        let op = b.operation();
        g.batches.insert(id, b);
        op
    };
    s.with_stats(|st| {
        st.batches_created += 1;
        *st.batch_display_names
            .entry(display_name.unwrap_or_default())
            .or_default() += 1;
    });
    if fault == Some(HttpFault::Reset) {
        // The batch exists; the client just never learns its name.
        s.fault_injected();
        return Ok(super::reset_response(op.to_string().into_bytes()));
    }
    Ok(json_response(StatusCode::OK, &op))
}

async fn count_lines(path: &std::path::Path) -> Result<u64, ApiError> {
    use tokio::io::AsyncBufReadExt;
    let f = tokio::fs::File::open(path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot read input file: {e}")))?;
    let mut lines = tokio::io::BufReader::new(f).lines();
    let mut n = 0u64;
    while let Some(line) = lines.next_line().await.map_err(|e| {
        ApiError::invalid(format!(
            "The batch input file is not valid UTF-8 JSONL: {e}"
        ))
    })? {
        if !line.trim().is_empty() {
            n += 1;
        }
    }
    Ok(n)
}

/// One item ready to run: its key/metadata and its (normalized) request.
struct Item {
    key: Option<Value>,
    metadata: Option<Value>,
    request: Result<Value, ApiError>,
}

fn item_from_line(line: &str) -> Item {
    let parsed = serde_json::from_str::<Value>(line)
        .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))
        .and_then(wire::normalize);
    match parsed {
        Err(e) => Item {
            key: None,
            metadata: None,
            request: Err(e),
        },
        Ok(v) => {
            let key = v.get("key").cloned();
            let request = match v.get("request") {
                Some(r) => Ok(r.clone()),
                None => Err(ApiError::invalid(
                    "* GenerateContentRequest: the line has no \"request\" field\n",
                )),
            };
            Item {
                key,
                metadata: None,
                request,
            }
        }
    }
}

fn item_from_inline(v: &Value) -> Item {
    Item {
        key: None,
        metadata: v.get("metadata").cloned(),
        request: v.get("request").cloned().ok_or_else(|| {
            ApiError::invalid("* InlinedRequest.request: request is not specified\n")
        }),
    }
}

/// Generate every item's outcome. File results go to disk line by line in a
/// seed-shuffled order (order is not guaranteed by the service); inline
/// results stay in request order.
async fn process(
    s: &Arc<Shared>,
    id: &str,
    model: &Target,
    source: Source,
    item_error_rate: f64,
) -> Result<Results, String> {
    let (items, out_path) = match source {
        Source::Inline(v) => (v.iter().map(item_from_inline).collect::<Vec<_>>(), None),
        Source::File(path) => {
            let text = tokio::fs::read_to_string(&path)
                .await
                .map_err(|e| format!("cannot read the input file: {e}"))?;
            let items = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(item_from_line)
                .collect::<Vec<_>>();
            (
                items,
                Some(s.storage_dir().join(format!("batch-{id}.jsonl"))),
            )
        }
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    if out_path.is_some() {
        let mut h = Sha256::new();
        h.update(s.seed.to_le_bytes());
        h.update(id.as_bytes());
        let d = h.finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(u64::from_le_bytes(
            b,
        )));
    }
    let mut writer = match &out_path {
        Some(p) => Some(tokio::io::BufWriter::new(
            tokio::fs::File::create(p)
                .await
                .map_err(|e| format!("cannot create the results file: {e}"))?,
        )),
        None => None,
    };
    let mut inline_out: Vec<Value> = Vec::new();
    let mut results = Results {
        successful: 0,
        failed: 0,
        billed: Vec::new(),
        reads: 0,
        inline: None,
        file: None,
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    for i in order {
        let item = &items[i];
        let outcome = run_item(s, model, item, item_error_rate).await;
        let mut line = Map::new();
        match outcome {
            Ok((body, sha, images)) => {
                results.successful += 1;
                if matches!(model, Target::Reader(_)) {
                    results.reads += 1;
                    s.with_stats(|st| st.reads += 1);
                }
                if images > 0 {
                    results.billed.push((sha, images));
                }
                line.insert("response".into(), body);
            }
            Err(e) => {
                results.failed += 1;
                line.insert("error".into(), e.item_status());
            }
        }
        if let Some(w) = writer.as_mut() {
            if let Some(k) = &item.key {
                line.insert("key".into(), k.clone());
            }
            let mut bytes = Value::Object(line).to_string().into_bytes();
            bytes.push(b'\n');
            hasher.update(&bytes);
            size += bytes.len() as u64;
            w.write_all(&bytes)
                .await
                .map_err(|e| format!("cannot write the results file: {e}"))?;
        } else {
            if let Some(m) = &item.metadata {
                line.insert("metadata".into(), m.clone());
            }
            inline_out.push(Value::Object(line));
        }
        tokio::task::yield_now().await;
    }
    if let (Some(mut w), Some(p)) = (writer, out_path) {
        w.flush()
            .await
            .map_err(|e| format!("cannot write the results file: {e}"))?;
        results.file = Some((p, size, hex::encode(hasher.finalize())));
    } else {
        results.inline = Some(inline_out);
    }
    Ok(results)
}

/// One item: validation errors and injected errors become item errors
/// (numeric gRPC codes), everything else a full response.
async fn run_item(
    s: &Arc<Shared>,
    model: &Target,
    item: &Item,
    item_error_rate: f64,
) -> Result<(Value, [u8; 32], u64), ApiError> {
    let v = item.request.as_ref().map_err(Clone::clone)?;
    let (sha, job) = match model {
        Target::Image(m) => {
            let mut req = wire::parse_request(v, m, &s.files, s.seed)?;
            s.record_gemini_edit(&mut req, true);
            (req.prompt_sha, Ok((m, req)))
        }
        Target::Reader(r) => {
            let req = read::parse(s, r, v).await?;
            (req.sha, Err((*r, req)))
        }
    };
    let attempt = s.attempt(KIND_ITEM, &sha);
    let u = draw(s.seed, &[b"item", &sha, &attempt.to_le_bytes()]);
    if u < item_error_rate {
        s.fault_injected();
        let pick = draw(s.seed, &[b"item-kind", &sha, &attempt.to_le_bytes()]);
        return Err(if pick < 0.34 {
            ApiError::new(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
            )
        } else if pick < 0.67 {
            ApiError::internal("Internal error encountered.")
        } else {
            ApiError::new(503, "UNAVAILABLE", "The service is currently unavailable.")
        });
    }
    match job {
        Ok((m, req)) => {
            let built = generate::build(s, m, &req, s.response_id()).await?;
            Ok((built.body, sha, built.images))
        }
        Err((r, req)) => Ok((read::build(s, r, &req, s.response_id()), sha, 0)),
    }
}

/// `GET /{ver}/batches/{id}`: also counts as a poll.
pub(crate) async fn get(s: &Arc<Shared>, id: &str) -> Result<Response, ApiError> {
    let mut g = s.batches.lock();
    let b = g.batches.get_mut(id).ok_or_else(|| not_found(id))?;
    b.refresh(s, true);
    Ok(json_response(StatusCode::OK, &b.operation()))
}

/// `GET /{ver}/batches`: newest first, paged.
pub(crate) fn list(s: &Arc<Shared>, query: &Query) -> Result<Response, ApiError> {
    let size = page_size(query, 10)?;
    let after = decode_token(query)?;
    let mut g = s.batches.lock();
    let mut all: Vec<&mut Batch> = g
        .batches
        .values_mut()
        .filter(|b| after.is_none_or(|a| b.seq < a))
        .collect();
    all.sort_by_key(|b| std::cmp::Reverse(b.seq));
    let more = all.len() > size;
    let mut ops = Vec::new();
    let mut last_seq = 0;
    for b in all.into_iter().take(size) {
        b.refresh(s, false);
        ops.push(b.operation());
        last_seq = b.seq;
    }
    let mut out = json!({});
    if !ops.is_empty() {
        out["operations"] = Value::Array(ops);
    }
    if more {
        out["nextPageToken"] = json!(encode_token(last_seq));
    }
    Ok(json_response(StatusCode::OK, &out))
}

/// `POST /{ver}/batches/{id}:cancel`.
pub(crate) fn cancel(s: &Arc<Shared>, id: &str) -> Result<Response, ApiError> {
    let mut g = s.batches.lock();
    let b = g.batches.get_mut(id).ok_or_else(|| not_found(id))?;
    b.refresh(s, false);
    if b.state.terminal() {
        return Err(ApiError::failed_precondition(format!(
            "The batch batches/{id} is already in a terminal state ({}).",
            b.state.wire()
        )));
    }
    b.error = Some(json!({"code": 1, "message": "The batch was cancelled."}));
    b.finish(State::Cancelled);
    Ok(json_response(StatusCode::OK, &json!({})))
}

/// `DELETE /{ver}/batches/{id}` (or `POST …:delete`).
pub(crate) fn delete(s: &Arc<Shared>, id: &str) -> Result<Response, ApiError> {
    let mut g = s.batches.lock();
    let mut b = g.batches.remove(id).ok_or_else(|| not_found(id))?;
    if let Some(t) = b.task.take() {
        t.abort();
    }
    Ok(json_response(StatusCode::OK, &json!({})))
}
