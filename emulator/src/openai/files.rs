//! The Files API (§4.3, §4.6): uploads, metadata, content, delete. Bytes
//! are kept in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{OaiError, json_response, multipart, now_unix, read_body};
use crate::Shared;

const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Largest batch input file (200 MB).
pub(crate) const MAX_BATCH_FILE: usize = 200 * 1024 * 1024;

#[derive(Clone)]
pub(crate) struct File {
    pub id: String,
    pub filename: String,
    pub purpose: String,
    pub created_at: i64,
    pub bytes: Bytes,
}

impl File {
    pub(crate) fn json(&self) -> Value {
        let expires_at = match self.purpose.as_str() {
            "batch" | "batch_output" => Some(self.created_at + 30 * 86_400),
            _ => None,
        };
        json!({
            "id": self.id,
            "object": "file",
            "bytes": self.bytes.len(),
            "created_at": self.created_at,
            "expires_at": expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": null,
        })
    }
}

#[derive(Default)]
pub(crate) struct Store {
    map: Mutex<HashMap<String, File>>,
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, File>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, id: &str) -> Option<File> {
        self.lock().get(id).cloned()
    }

    pub(crate) fn bytes(&self, id: &str) -> Option<Bytes> {
        self.lock().get(id).map(|f| f.bytes.clone())
    }

    /// Store a file and return its object.
    pub(crate) fn insert(&self, s: &Shared, filename: &str, purpose: &str, bytes: Bytes) -> File {
        let f = File {
            id: format!("file-{}", s.new_id(22, BASE62)),
            filename: filename.to_string(),
            purpose: purpose.to_string(),
            created_at: now_unix(),
            bytes,
        };
        self.lock().insert(f.id.clone(), f.clone());
        f
    }
}

fn no_such_file(id: &str) -> OaiError {
    OaiError::not_found(format!("No such File object: {id}")).param("id")
}

pub(crate) async fn upload(
    s: &Arc<Shared>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, OaiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multipart::boundary(ct).ok_or_else(|| {
        OaiError::invalid("The request must be multipart/form-data with 'purpose' and 'file'.")
    })?;
    let bytes = read_body(body).await?;
    let parts = multipart::parse(&boundary, &bytes)
        .map_err(|e| OaiError::invalid(format!("Invalid multipart body: {e}.")))?;
    let mut purpose = None;
    let mut file = None;
    for p in parts {
        match p.name.as_str() {
            "purpose" => purpose = Some(String::from_utf8_lossy(&p.data).into_owned()),
            "file" => file = Some((p.filename.unwrap_or_else(|| "upload".into()), p.data)),
            n if n.starts_with("expires_after") => {}
            n => return Err(OaiError::unknown_parameter(n)),
        }
    }
    let purpose = purpose.ok_or_else(|| {
        OaiError::invalid("Missing required parameter: 'purpose'.")
            .param("purpose")
            .code("missing_required_parameter")
    })?;
    if !["batch", "vision", "user_data"].contains(&purpose.as_str()) {
        return Err(OaiError::invalid_value(
            "purpose",
            format!(
                "Invalid value: '{purpose}'. Supported values are: 'batch', 'vision' and \
                 'user_data'."
            ),
        ));
    }
    let (filename, data) = file.ok_or_else(|| {
        OaiError::invalid("Missing required parameter: 'file'.")
            .param("file")
            .code("missing_required_parameter")
    })?;
    if purpose == "batch" {
        // At most 200 MB per batch input file (openai/openai-openapi
        // `openapi.yaml`, `CreateBatchRequest.input_file_id`), or the
        // lower limit a test set.
        let limit = s
            .faults()
            .openai
            .max_batch_file_bytes
            .map_or(MAX_BATCH_FILE as u64, |l| l.min(MAX_BATCH_FILE as u64));
        if data.len() as u64 > limit {
            return Err(OaiError::invalid_value(
                "file",
                format!(
                    "File is too large: {} bytes. Batch input files must be at most 200 MB \
                     ({limit} bytes).",
                    data.len()
                ),
            ));
        }
        if !filename.ends_with(".jsonl") {
            return Err(OaiError::invalid_value(
                "file",
                format!("Invalid file format for Batch API. Must be .jsonl, got '{filename}'."),
            ));
        }
    }
    let f = s.openai.files.insert(s, &filename, &purpose, data);
    s.with_stats(|st| st.openai.files_uploaded += 1);
    Ok(json_response(StatusCode::OK, &f.json()))
}

pub(crate) fn get(s: &Shared, id: &str) -> Result<Response, OaiError> {
    let f = s.openai.files.get(id).ok_or_else(|| no_such_file(id))?;
    Ok(json_response(StatusCode::OK, &f.json()))
}

pub(crate) fn content(s: &Shared, id: &str) -> Result<Response, OaiError> {
    let f = s.openai.files.get(id).ok_or_else(|| no_such_file(id))?;
    let mut resp = (StatusCode::OK, f.bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(resp)
}

pub(crate) fn delete(s: &Shared, id: &str) -> Result<Response, OaiError> {
    s.openai
        .files
        .lock()
        .remove(id)
        .ok_or_else(|| no_such_file(id))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"id": id, "object": "file", "deleted": true}),
    ))
}
