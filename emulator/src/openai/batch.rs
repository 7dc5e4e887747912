//! The Batch API for image endpoints (§4): create with line validation,
//! the status machine, output and error files, cancel, expiry, list.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::images::{self, Params};
use super::{KIND_ITEM, OaiError, json_response, now_unix, read_body};
use crate::faults::draw;
use crate::{Query, Shared};

const ENDPOINTS: [&str; 2] = ["/v1/images/generations", "/v1/images/edits"];
const MAX_LINES: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Complete,
    Fail,
    Expire,
}

struct Line {
    custom_id: String,
    body: Value,
}

struct Batch {
    id: String,
    endpoint: String,
    input_file_id: String,
    metadata: Option<Value>,
    model: Option<String>,
    created_at: i64,
    created: Instant,
    status: &'static str,
    gets: u64,
    /// Whether the batch had left `validating` when cancel was asked.
    cancelled_after_start: bool,
    finishing: bool,
    lines: Vec<Line>,
    validation_errors: Vec<Value>,
    fate: Fate,
    errors: Option<Value>,
    in_progress_at: Option<i64>,
    finalizing_at: Option<i64>,
    completed_at: Option<i64>,
    failed_at: Option<i64>,
    expired_at: Option<i64>,
    cancelling_at: Option<i64>,
    cancelled_at: Option<i64>,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    counts: (u64, u64, u64),
    usage: (u64, u64),
}

impl Batch {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.in_progress_at,
            "expires_at": self.created_at + 86_400,
            "finalizing_at": self.finalizing_at,
            "completed_at": self.completed_at,
            "failed_at": self.failed_at,
            "expired_at": self.expired_at,
            "cancelling_at": self.cancelling_at,
            "cancelled_at": self.cancelled_at,
            "request_counts": {
                "total": self.counts.0,
                "completed": self.counts.1,
                "failed": self.counts.2,
            },
            "usage": {
                "input_tokens": self.usage.0,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.usage.1,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.usage.0 + self.usage.1,
            },
            "metadata": self.metadata,
        })
    }

    fn terminal(&self) -> bool {
        matches!(
            self.status,
            "completed" | "failed" | "expired" | "cancelled"
        )
    }
}

/// All batches, oldest first.
#[derive(Default)]
pub(crate) struct Store {
    inner: Mutex<Vec<Batch>>,
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Batch>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn not_found(id: &str) -> OaiError {
    OaiError::not_found(format!("No batch found with id '{id}'.")).param("batch_id")
}

/// Validate the JSONL lines (§6.7); returns the lines and the errors.
fn validate_lines(text: &str, endpoint: &str) -> (Vec<Line>, Vec<Value>) {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let err = |code: &str, message: String, line: usize| json!({"code": code, "message": message, "param": null, "line": line});
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(raw) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                errors.push(err(
                    "invalid_json_line",
                    format!("Line {n} is not a valid JSON object."),
                    n,
                ));
                continue;
            }
        };
        let Some(custom_id) = v["custom_id"].as_str().filter(|c| !c.is_empty()) else {
            errors.push(err(
                "missing_custom_id",
                format!("Line {n} has no 'custom_id'."),
                n,
            ));
            continue;
        };
        if !seen.insert(custom_id.to_string()) {
            errors.push(err(
                "duplicate_custom_id",
                format!("The custom_id '{custom_id}' on line {n} is not unique in the file."),
                n,
            ));
            continue;
        }
        if v["method"] != "POST" {
            errors.push(err(
                "invalid_method",
                format!("Line {n}: 'method' must be 'POST'."),
                n,
            ));
            continue;
        }
        if v["url"].as_str() != Some(endpoint) {
            errors.push(err(
                "mismatched_url",
                format!("Line {n}: 'url' must be the batch endpoint '{endpoint}'."),
                n,
            ));
            continue;
        }
        if !v["body"].is_object() {
            errors.push(err(
                "invalid_body",
                format!("Line {n}: 'body' must be an object."),
                n,
            ));
            continue;
        }
        lines.push(Line {
            custom_id: custom_id.to_string(),
            body: v["body"].clone(),
        });
    }
    if lines.len() > MAX_LINES {
        errors.push(json!({"code": "too_many_requests", "message": format!("The input file has {} requests; at most {MAX_LINES} are allowed.", lines.len()), "param": null, "line": null}));
    }
    if lines.is_empty() && errors.is_empty() {
        errors.push(json!({"code": "empty_file", "message": "The input file has no requests.", "param": null, "line": null}));
    }
    (lines, errors)
}

pub(crate) async fn create(s: &Arc<Shared>, body: Body) -> Result<Response, OaiError> {
    let index = s.openai.next_batch_create();
    let faults = s.faults().openai;
    let bytes = read_body(body).await?;
    let v = super::parse_json(&bytes)?;
    let obj = v
        .as_object()
        .ok_or_else(|| OaiError::invalid("The request body must be a JSON object."))?;
    for k in obj.keys() {
        if ![
            "input_file_id",
            "endpoint",
            "completion_window",
            "metadata",
            "output_expires_after",
        ]
        .contains(&k.as_str())
        {
            return Err(OaiError::unknown_parameter(k));
        }
    }
    let required = |k: &str| {
        obj.get(k).and_then(Value::as_str).ok_or_else(|| {
            OaiError::invalid(format!("Missing required parameter: '{k}'."))
                .param(k)
                .code("missing_required_parameter")
        })
    };
    let input_file_id = required("input_file_id")?;
    let endpoint = required("endpoint")?;
    let window = required("completion_window")?;
    if !ENDPOINTS.contains(&endpoint) {
        return Err(OaiError::invalid_value(
            "endpoint",
            format!(
                "Invalid value: '{endpoint}'. The emulator supports '/v1/images/generations' \
                 and '/v1/images/edits'."
            ),
        ));
    }
    if window != "24h" {
        return Err(OaiError::invalid_value(
            "completion_window",
            format!("Invalid value: '{window}'. Supported values are: '24h'."),
        ));
    }
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            let ok = m.len() <= 16
                && m.iter().all(|(k, v)| {
                    k.chars().count() <= 64 && v.as_str().is_some_and(|v| v.chars().count() <= 512)
                });
            if !ok {
                return Err(OaiError::invalid_value(
                    "metadata",
                    "Invalid 'metadata': at most 16 pairs, keys up to 64 characters, string \
                     values up to 512 characters.",
                ));
            }
            Some(Value::Object(m.clone()))
        }
        Some(other) => return Err(OaiError::invalid_type("metadata", "an object", other)),
    };
    let file = s.openai.files.get(input_file_id).ok_or_else(|| {
        OaiError::invalid_value(
            "input_file_id",
            format!("Invalid 'input_file_id': no such file '{input_file_id}'."),
        )
    })?;
    if file.purpose != "batch" {
        return Err(OaiError::invalid_value(
            "input_file_id",
            format!(
                "The file '{input_file_id}' has purpose '{}'; batch input files need purpose \
                 'batch'.",
                file.purpose
            ),
        ));
    }
    if index < faults.create_429_first {
        super::injected(s);
        return Err(OaiError::rate_limited("batch", faults.retry_after_ms));
    }
    let text = String::from_utf8_lossy(&file.bytes);
    let (lines, validation_errors) = validate_lines(&text, endpoint);
    let model = lines
        .first()
        .and_then(|l| l.body["model"].as_str())
        .map(str::to_string);
    let ordinal = s.openai.next_batch_ordinal();
    let fate = if ordinal < faults.fail_batches {
        Fate::Fail
    } else if ordinal < faults.fail_batches.saturating_add(faults.expire_batches) {
        Fate::Expire
    } else {
        Fate::Complete
    };
    let b = Batch {
        id: format!("batch_{}", s.new_id(32, b"0123456789abcdef")),
        endpoint: endpoint.to_string(),
        input_file_id: input_file_id.to_string(),
        metadata,
        model,
        created_at: now_unix(),
        created: Instant::now(),
        status: "validating",
        gets: 0,
        cancelled_after_start: false,
        finishing: false,
        counts: (0, 0, 0),
        lines,
        validation_errors,
        fate,
        errors: None,
        in_progress_at: None,
        finalizing_at: None,
        completed_at: None,
        failed_at: None,
        expired_at: None,
        cancelling_at: None,
        cancelled_at: None,
        output_file_id: None,
        error_file_id: None,
        usage: (0, 0),
    };
    let tag = b
        .metadata
        .as_ref()
        .and_then(|m| m["adloc_tag"].as_str())
        .map(str::to_string);
    s.with_stats(|st| {
        st.openai.batches_created += 1;
        if let Some(t) = tag {
            *st.openai.batch_metadata.entry(t).or_default() += 1;
        }
    });
    let out = b.json();
    s.openai.batches.lock().push(b);
    Ok(json_response(StatusCode::OK, &out))
}

/// What a finishing batch needs, taken out of the lock.
struct Job {
    id: String,
    endpoint: String,
    lines: Vec<(String, Value)>,
    /// Lines `[0, finished)` run; the rest get `leftover_code`.
    finished: usize,
    leftover_code: &'static str,
    bill: bool,
    status: &'static str,
}

/// One answered line.
struct Answered {
    line: Value,
    ok: bool,
    billed: Option<([u8; 32], u64)>,
    tokens: (u64, u64),
}

async fn run_line(s: &Shared, endpoint: &str, custom_id: &str, body: &Value) -> Answered {
    let rid = super::request_id(s);
    let id = format!("batch_req_{}", s.new_id(32, b"0123456789abcdef"));
    let result = answer(s, endpoint, body, &rid).await;
    match result {
        Ok((p, built)) => Answered {
            line: json!({
                "id": id,
                "custom_id": custom_id,
                "response": {"status_code": 200, "request_id": rid, "body": built.body},
                "error": null,
            }),
            ok: true,
            billed: Some((p.prompt_sha, built.images)),
            tokens: (built.input_tokens, built.output_tokens),
        },
        Err(e) => Answered {
            line: json!({
                "id": id,
                "custom_id": custom_id,
                "response": {"status_code": e.http, "request_id": rid, "body": e.body()},
                "error": null,
            }),
            ok: false,
            billed: None,
            tokens: (0, 0),
        },
    }
}

async fn answer(
    s: &Shared,
    endpoint: &str,
    body: &Value,
    rid: &str,
) -> Result<(Params, images::Built), OaiError> {
    let (p, inputs) = if endpoint == "/v1/images/edits" {
        let (p, inputs) = images::parse_json_edit(s, body)?;
        images::record_edit(s, &p, &inputs, true);
        (p, inputs)
    } else {
        (images::parse_generation(body)?, Vec::new())
    };
    if let Some(e) = images::trigger_error(&p.prompt, rid) {
        return Err(e);
    }
    let faults = s.faults().openai;
    let attempt = s.openai.attempt(KIND_ITEM, &p.prompt_sha);
    let a = attempt.to_le_bytes();
    if draw(s.seed, &[b"openai-item-moderation", &p.prompt_sha, &a]) < faults.moderation_rate {
        super::injected(s);
        return Err(OaiError::moderation_blocked(rid));
    }
    if draw(s.seed, &[b"openai-item-error", &p.prompt_sha, &a]) < faults.item_error_rate {
        super::injected(s);
        return Err(OaiError::server_error());
    }
    let built = images::render(s, &p, &inputs).await?;
    Ok((p, built))
}

/// Run a finishing job: answer lines, write files, bill, update the batch.
async fn finish(s: &Shared, job: Job) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut billed = Vec::new();
    let (mut completed, mut failed) = (0u64, 0u64);
    let mut usage = (0u64, 0u64);
    for (i, (cid, body)) in job.lines.iter().enumerate() {
        if i < job.finished {
            let a = run_line(s, &job.endpoint, cid, body).await;
            if a.ok {
                completed += 1;
                usage.0 += a.tokens.0;
                usage.1 += a.tokens.1;
                out.push((cid.clone(), a.line));
            } else {
                failed += 1;
                err.push((cid.clone(), a.line));
            }
            if let Some(b) = a.billed {
                billed.push(b);
            }
        } else {
            failed += 1;
            let message = if job.leftover_code == "batch_expired" {
                "This request could not be executed before the completion window expired."
            } else {
                "This request was not executed because the batch was cancelled."
            };
            err.push((
                cid.clone(),
                json!({
                    "id": format!("batch_req_{}", s.new_id(32, b"0123456789abcdef")),
                    "custom_id": cid,
                    "response": null,
                    "error": {"code": job.leftover_code, "message": message},
                }),
            ));
        }
    }
    let shuffle = |v: &mut Vec<(String, Value)>| {
        v.sort_by(|a, b| {
            let ka = draw(
                s.seed,
                &[b"openai-order", job.id.as_bytes(), a.0.as_bytes()],
            );
            let kb = draw(
                s.seed,
                &[b"openai-order", job.id.as_bytes(), b.0.as_bytes()],
            );
            ka.total_cmp(&kb)
        });
    };
    shuffle(&mut out);
    shuffle(&mut err);
    let write = |v: &[(String, Value)], kind: &str| {
        if v.is_empty() {
            return None;
        }
        let mut text = String::new();
        for (_, l) in v {
            text.push_str(&l.to_string());
            text.push('\n');
        }
        let f = s.openai.files.insert(
            s,
            &format!("{}_{kind}.jsonl", job.id),
            "batch_output",
            Bytes::from(text),
        );
        Some(f.id)
    };
    let output_file_id = write(&out, "output");
    let error_file_id = write(&err, "error");
    if job.bill {
        for (sha, n) in &billed {
            super::bill(s, sha, *n, true);
        }
    }
    let now = now_unix();
    let mut g = s.openai.batches.lock();
    if let Some(b) = g.iter_mut().find(|b| b.id == job.id) {
        b.finishing = false;
        b.status = job.status;
        b.output_file_id = output_file_id;
        b.error_file_id = error_file_id;
        b.counts = (job.lines.len() as u64, completed, failed);
        b.usage = usage;
        match job.status {
            "completed" => {
                b.in_progress_at.get_or_insert(now);
                b.finalizing_at.get_or_insert(now);
                b.completed_at = Some(now);
            }
            "expired" => {
                b.in_progress_at.get_or_insert(now);
                b.expired_at = Some(now);
            }
            _ => b.cancelled_at = Some(now),
        }
    }
}

fn job_lines(b: &Batch) -> Vec<(String, Value)> {
    b.lines
        .iter()
        .map(|l| (l.custom_id.clone(), l.body.clone()))
        .collect()
}

pub(crate) async fn get(s: &Arc<Shared>, id: &str) -> Result<Response, OaiError> {
    let faults = s.faults().openai;
    let job = {
        let mut g = s.openai.batches.lock();
        let b = g
            .iter_mut()
            .find(|b| b.id == id)
            .ok_or_else(|| not_found(id))?;
        if b.terminal() || b.finishing {
            return Ok(json_response(StatusCode::OK, &b.json()));
        }
        let now = now_unix();
        let job = if b.status == "cancelling" {
            let all = job_lines(b);
            let finished = if b.cancelled_after_start {
                all.len().div_ceil(2)
            } else {
                0
            };
            Some(Job {
                id: b.id.clone(),
                endpoint: b.endpoint.clone(),
                lines: all,
                finished,
                leftover_code: "batch_cancelled",
                bill: false,
                status: "cancelled",
            })
        } else {
            b.gets += 1;
            if !b.validation_errors.is_empty() {
                b.status = "failed";
                b.failed_at = Some(now);
                b.errors = Some(json!({"object": "list", "data": b.validation_errors}));
                return Ok(json_response(StatusCode::OK, &b.json()));
            }
            let done = match faults.done_after_ms {
                Some(ms) => b.created.elapsed().as_millis() >= u128::from(ms),
                None => b.gets >= faults.polls_until_done.max(1),
            };
            b.counts.0 = b.lines.len() as u64;
            if !done {
                let finalizing = faults.done_after_ms.is_none()
                    && faults.polls_until_done >= 3
                    && b.gets + 1 == faults.polls_until_done;
                b.in_progress_at.get_or_insert(now);
                if finalizing {
                    b.status = "finalizing";
                    b.finalizing_at.get_or_insert(now);
                } else {
                    b.status = "in_progress";
                }
                return Ok(json_response(StatusCode::OK, &b.json()));
            }
            match b.fate {
                Fate::Fail => {
                    super::injected(s);
                    b.status = "failed";
                    b.failed_at = Some(now);
                    b.errors = Some(json!({"object": "list", "data": [{
                        "code": "emulated_failure",
                        "message": "The batch failed (emulated by fail_batches).",
                        "param": null,
                        "line": null,
                    }]}));
                    return Ok(json_response(StatusCode::OK, &b.json()));
                }
                Fate::Expire => {
                    super::injected(s);
                    let all = job_lines(b);
                    Some(Job {
                        id: b.id.clone(),
                        endpoint: b.endpoint.clone(),
                        finished: all.len().div_ceil(2),
                        lines: all,
                        leftover_code: "batch_expired",
                        bill: true,
                        status: "expired",
                    })
                }
                Fate::Complete => {
                    let all = job_lines(b);
                    Some(Job {
                        id: b.id.clone(),
                        endpoint: b.endpoint.clone(),
                        finished: all.len(),
                        lines: all,
                        leftover_code: "batch_expired",
                        bill: true,
                        status: "completed",
                    })
                }
            }
        };
        if job.is_some() {
            b.finishing = true;
        }
        job
    };
    if let Some(job) = job {
        finish(s, job).await;
    }
    let g = s.openai.batches.lock();
    let b = g.iter().find(|b| b.id == id).ok_or_else(|| not_found(id))?;
    Ok(json_response(StatusCode::OK, &b.json()))
}

pub(crate) fn cancel(s: &Arc<Shared>, id: &str) -> Result<Response, OaiError> {
    let mut g = s.openai.batches.lock();
    let b = g
        .iter_mut()
        .find(|b| b.id == id)
        .ok_or_else(|| not_found(id))?;
    match b.status {
        "validating" | "in_progress" | "finalizing" if !b.finishing => {
            b.cancelled_after_start = b.status != "validating";
            b.status = "cancelling";
            b.cancelling_at = Some(now_unix());
            Ok(json_response(StatusCode::OK, &b.json()))
        }
        "cancelling" => Ok(json_response(StatusCode::OK, &b.json())),
        st => Err(OaiError::new(
            409,
            "invalid_request_error",
            format!("Cannot cancel a batch with status '{st}'."),
        )),
    }
}

pub(crate) fn list(s: &Arc<Shared>, query: &Query) -> Result<Response, OaiError> {
    let limit = match query.get("limit") {
        None => 20,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(OaiError::invalid_value(
                    "limit",
                    format!("Invalid 'limit': expected an integer between 1 and 100, got '{l}'."),
                ));
            }
        },
    };
    let g = s.openai.batches.lock();
    let newest_first: Vec<&Batch> = g.iter().rev().collect();
    let start = match query.get("after").filter(|a| !a.is_empty()) {
        None => 0,
        Some(after) => newest_first
            .iter()
            .position(|b| b.id == after)
            .map(|i| i + 1)
            .ok_or_else(|| not_found(after))?,
    };
    let page: Vec<&&Batch> = newest_first.iter().skip(start).take(limit).collect();
    let has_more = start + page.len() < newest_first.len();
    let body = json!({
        "object": "list",
        "data": page.iter().map(|b| b.json()).collect::<Vec<_>>(),
        "first_id": page.first().map(|b| b.id.clone()),
        "last_id": page.last().map(|b| b.id.clone()),
        "has_more": has_more,
    });
    Ok(json_response(StatusCode::OK, &body))
}
