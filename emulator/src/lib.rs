//! A Gemini-compatible emulator: an HTTP server on loopback that speaks the
//! real Gemini REST protocol (`shared/protocols/gemini.md`) for
//! `generateContent`, Batch Mode and the Files API, with switches for
//! latency, errors, safety outcomes and batch delays. The tests start it on
//! port 0; `adloc emulate` starts it for offline rehearsals.
//!
//! # Surface
//!
//! Every route is served under both `/v1` and `/v1beta` (shown as `{ver}`).
//! All routes except the upload session URL and `/_emulator/*` need an API
//! key in `x-goog-api-key` or `?key=`: none gives 403 `PERMISSION_DENIED`
//! ("Method doesn't allow unregistered callers…"), a wrong one gives 400
//! `INVALID_ARGUMENT` "API key not valid…" with an `ErrorInfo`
//! `API_KEY_INVALID` detail. Request field names may be camelCase or
//! snake_case at any level; replies are camelCase; int64s are strings.
//!
//! | Route | |
//! |---|---|
//! | `POST /{ver}/models/{model}:generateContent` | realtime generation |
//! | `POST /{ver}/models/{model}:batchGenerateContent` | batch create (file or inline input) |
//! | `GET /{ver}/batches?pageSize=&pageToken=` | list, newest first, `{"operations":[…],"nextPageToken"}` |
//! | `GET /{ver}/batches/{id}` | one Operation; each get advances the batch (see `polls_until_done`) |
//! | `POST /{ver}/batches/{id}:cancel` | → `{}`, state CANCELLED |
//! | `DELETE /{ver}/batches/{id}`, `POST /{ver}/batches/{id}:delete` | → `{}` |
//! | `POST /upload/{ver}/files` | resumable upload start (`X-Goog-Upload-Command: start`) |
//! | `POST /upload/{ver}/files?upload_id=…` | chunks: `upload`, `upload, finalize`, `query`, `cancel` |
//! | `GET /{ver}/files`, `GET`/`DELETE /{ver}/files/{id}` | Files API list/get/delete |
//! | `GET /{ver}/files/{id}:download?alt=media`, `GET /download/{ver}/files/{id}:download?alt=media` | raw bytes of generated files |
//! | `POST /tsa` | a test RFC 3161 time-stamp authority ([`tsa`]): `application/timestamp-query` in, `application/timestamp-reply` out |
//! | `GET /_emulator/stats` | [`EmulatorStats`] as JSON |
//! | `GET`/`POST /_emulator/faults` | read / replace the [`Faults`] (JSON) |
//!
//! Models: every id in [`crate::models`] (GA and preview); anything else is
//! 404 `NOT_FOUND`. Output images have the §1.4 pixel size for the
//! model × `aspectRatio` × `imageSize`, are PNG for 2.5 Flash Image and JPEG
//! otherwise, and are deterministic per prompt (colour from the prompt hash,
//! plus a comment chunk carrying the hash so different prompts never share
//! bytes). The "prompt" is the text of all non-thought text parts of the
//! user turns joined by `\n`; [`EmulatorStats::prompts_billed`] is keyed by
//! its SHA-256 (lowercase hex).
//!
//! Response variety (fixed per prompt, so a client's defensive parsing is
//! exercised): about a quarter of prompts get a leading text part, some a
//! trailing one; 3 Pro and 3.1 Flash sign every image part and the first
//! leading text part with `thoughtSignature` and report
//! `thoughtsTokenCount`; with `thinkingConfig.includeThoughts` they add a
//! `thought: true` text part, and 3 Pro an interim 256×256 thought image.
//! `responseModalities: ["TEXT"]` gives a text-only answer.
//!
//! Multi-turn edits (§7b, and the image guide's "Thought Signatures":
//! https://ai.google.dev/gemini-api/docs/image-generation): on 3 Pro and
//! 3.1 Flash every signature must come back as issued. A `model` turn's
//! image part without its `thoughtSignature` is a 400 ("Image part is
//! missing a thought_signature in content position N, part position M"), as
//! the service answers; so is a turn whose first non-thought part is a text
//! part (signed when it comes before the image) without one, and any
//! signature this emulator did not issue in its answer to the conversation
//! before that turn (the user texts up to it): a signature replayed out of
//! its own conversation, or a forged one. Every edit that parses (Gemini
//! turns and OpenAI `images/edits`, realtime and batch) is listed in
//! [`EmulatorStats::edits`] with the image's SHA-256, the signature (and
//! whether it was issued) and the instruction; a Gemini edit's full
//! conversation is in [`EmulatorStats::conversations`]. A single user turn
//! whose first image this emulator painted and whose text quotes no copy
//! is a single-turn edit (the documented form for an image without a
//! conversation) and is listed too. An edited image shows the first turn's
//! quoted copy (a single-turn edit: its input image's) with each
//! `'old' with 'new'` swap of the later user turns applied in order.
//!
//! # Trigger words
//!
//! A word anywhere in the prompt scripts the outcome (realtime and per
//! batch item; the first match in this order wins):
//!
//! | Word | Outcome |
//! |---|---|
//! | `EMULATE_BLOCK_PROMPT` | 200, `promptFeedback.blockReason: PROHIBITED_CONTENT`, no `candidates` |
//! | `EMULATE_IMAGE_SAFETY` | 200, candidate `content: {}`, `finishReason: IMAGE_SAFETY` + `finishMessage` |
//! | `EMULATE_TEXT_ONLY` | 200, `finishReason: STOP` with a single text part |
//! | `EMULATE_NO_IMAGE` | 200, `finishReason: NO_IMAGE`, candidate without `content` |
//! | `EMULATE_BAD_IMAGE` | 200, an `inlineData` image part whose bytes do not decode (billed, as the service would) |
//! | `EMULATE_TWO_IMAGES` | 200, two image parts (two images billed) |
//! | `EMULATE_BUSY_PHOTO` | 200, an image of per-pixel noise (a busy photo's weight) instead of flat blocks |
//! | `EMULATE_INVALID_ARGUMENT` | 400 `INVALID_ARGUMENT` (batch: item error with code 3) |
//!
//! # Copy painting and reader models (copy QA)
//!
//! Every image the emulator generates (Gemini realtime and batch items,
//! OpenAI generations, edits and batch lines; not Pro's interim thought
//! images) "paints" the copy of its prompt: the strings the prompt puts in
//! double quotes, straight `"…"` or curly `“…”` (trimmed; empty ones and
//! exact repeats dropped). The emulator remembers, per image, the exact
//! strings painted, for its whole lifetime;
//! [`EmulatorHandle::painted`] decodes an image (PNG, JPEG, WebP) and
//! returns them, so a test can check an asset saved on disk.
//!
//! **Signature.** An image with copy carries a pixel signature: 12 flat
//! gray cells along the bottom edge — black, white (calibration), eight
//! 4-bit ID nibbles at gray level `17 × nibble`, a check nibble (odd
//! weights, so any one wrong nibble fails), black — laid out as the
//! 12×1 … 1×12 grid with the largest cells (at most a quarter of the image
//! height; cell edges on 16-px boundaries). The reader samples the middle
//! 40 % of each cell, normalizes by the calibration cells and requires
//! every cell flat and gray, so the ID survives downscaling with any filter
//! (Lanczos3, bilinear, nearest) to 512 px and JPEG (q ≥ 75) or PNG
//! re-encoding, while an image without one (a photo, a reference image)
//! is recognized as such. IDs are 32 bits, unique per image, kept in an
//! in-memory registry ID → strings. Images of prompts without quoted copy
//! are not signed and keep the cached encoding path; signed images are
//! encoded per response: JPEG whole (≈0.3–0.5 ms at 1K, ≈1–1.6 ms at 2K),
//! PNG as cached compressed rows above the signature plus the signature
//! rows deflated per image (≈0.8–1.8 ms at 1K, ≈1.6–3 ms at 2K), release
//! build, see `generate::tests::signed_image_cost`. Signed OpenAI WebP
//! images are encoded whole.
//!
//! **Misspelling.** With probability `misspell_rate`, or always when the
//! prompt contains the trigger word `EMULATE_MISSPELL`, an image paints one
//! of its strings with one character altered (dropped, doubled, two
//! adjacent letters swapped, or substituted), such that it still differs
//! after Unicode NFC, whitespace collapse, straight/curly quote folding and
//! lowercasing. Draws depend on (seed, prompt hash, how many images of that
//! prompt were painted), so regenerating draws afresh.
//! [`EmulatorStats::misspelled`] counts such images. `EMULATE_MISSPELL`
//! combines with the trigger words below (it is not part of the
//! first-match table) and works on the OpenAI surface too.
//!
//! **Readers.** Text models on `POST /{ver}/models/{model}:generateContent`
//! and in batches (inline or file input), protocol §7b:
//! `gemini-3.1-flash-lite`, `gemini-3.5-flash-lite`, `gemini-3.5-flash`,
//! `gemini-3.6-flash`, `gemini-3.7-flash`, `gemini-3.8-flash`.
//! `gemini-2.5-flash` and `gemini-2.5-pro` (retired 2026-12-01) are 404
//! `NOT_FOUND`. `responseModalities` with IMAGE, any `imageConfig`, or both
//! `responseSchema` and `responseJsonSchema` → 400 `INVALID_ARGUMENT`. The
//! answer is one text part per candidate (`candidateCount` 1..8): with a
//! schema, JSON `{"<prop>":[…]}` for the schema's first array-of-strings
//! property (`propertyOrdering`, then `required`, then map order; types in
//! either case) or `[…]` for an array schema; without one, the strings as
//! lines (`text/plain`) or `{"texts":[…]}` (`application/json`). The
//! strings are those painted into each input image in order; an image
//! without a signature contributes none; no image part → `[]`.
//! `finishReason: STOP` (`MAX_TOKENS`, text cut, when `maxOutputTokens` is
//! too small); `usageMetadata.promptTokenCount` = text ≈ chars/4 + 258 per
//! image ≤ 384 px, else 258 per 768×768 tile (§6). With probability
//! `misread_rate` (drawn per read and candidate) the answer alters one
//! string although the image is right. Reads go through the realtime HTTP
//! fault machinery (latency, `rate_*`, `first_*`, `daily_quota_after`, and
//! `[batch]` item errors in batches) and are billed as reads
//! ([`EmulatorStats::reads`], `reads_billed`, `read_calls`, `misread`),
//! never in `billed_images` or `prompts_billed`.
//!
//! # Faults
//!
//! [`Faults`] is loaded from TOML ([`Faults::from_toml_file`]) or JSON
//! (`POST /_emulator/faults`); every field is optional, unknown fields are
//! errors. All randomness derives from [`EmulatorConfig::seed`]: a realtime
//! request's draw depends on (seed, prompt hash, how many times that prompt
//! was seen), so outcomes do not depend on how concurrent requests
//! interleave and a retried prompt gets a fresh draw. "First N" counters
//! count requests since start or since the last fault change
//! ([`EmulatorHandle::set_faults`] resets them) and apply one after the
//! other (first the 429s, then the 500s, …).
//!
//! ```toml
//! # realtime generateContent
//! latency_ms = 300            # fixed delay before every answer
//! latency_jitter_ms = 0       # + uniform [0, jitter]
//! rate_429 = 0.05             # per-minute quota 429 with RetryInfo + QuotaFailure
//! retry_delay_s = 1.5         # RetryInfo.retryDelay and "Please retry in 1.5s."
//! retry_after_header = false  # also send Retry-After (Gemini never does)
//! bare_429 = false            # 429s without details ("Resource exhausted…")
//! rate_500 = 0.02
//! rate_503 = 0.03
//! rate_504 = 0.0
//! rate_reset = 0.02           # 200 + headers + part of the body, then the connection drops
//! first_429 = 0               # first N requests: 429; then first_500, first_503,
//! first_500 = 0               #   first_504, first_reset in sequence
//! daily_quota_after = 100     # every request after the 100th: per-day quota 429
//!                             #   (quotaId GenerateRequestsPerDayPerProjectPerModel)
//! misspell_rate = 0.0         # per generated image with copy (both surfaces): one string misspelled
//! misread_rate = 0.0          # per read: one string of the answer altered
//! # rpm_limit = 600           # server-side requests/minute per model, not told to the
//!                             #   client: over it, the per-minute quota 429 with RetryInfo
//!                             #   (bucket of one second's worth; counted in `rate_limited`)
//! # image_mime = "image/png"  # Gemini images in this format instead of the model's own
//! # tsa_fail_after = 10       # the test TSA (`POST /tsa`) answers 503 once it granted 10 tokens
//! [batch]
//! latency_ms = 0              # same HTTP knobs, for batchGenerateContent (create) only:
//! rate_429 = 0.0              #   rate_429/500/503/504/reset, latency_jitter_ms
//! create_429_first = 1        # first N creates: 429 (nothing created)
//! create_503_first = 0        # next N creates: 503 (nothing created)
//! create_reset_first = 0      # next N creates: created, but the answer is cut off
//! item_error_rate = 0.05      # per item: error line with gRPC code 8, 13 or 14
//! fail_batches = 0            # first N batches end BATCH_STATE_FAILED
//! expire_batches = 0          # next N batches end BATCH_STATE_EXPIRED
//! polls_until_done = 2        # terminal on the Nth get of the batch
//! # done_after_ms = 500       # or: terminal after this time since create
//! succeeded_before_output_polls = 0  # SUCCEEDED without `output` for N gets
//! truncate_download_first = 0 # first N downloads of generated files cut mid-body
//! # max_concurrent_batches = 100
//! ```
//!
//! Batch results: items are generated once the batch is created (trigger
//! words and `item_error_rate` apply per item); results JSONL lines come in
//! a seed-shuffled order, inline responses in request order. Images are
//! billed when the batch reaches SUCCEEDED; cancelled, failed and expired
//! batches bill nothing. Realtime answers cut off by `rate_reset` are not
//! billed.
//!
//! # OpenAI surface
//!
//! The OpenAI Image API (`shared/protocols/openai.md`) is served on the
//! same listener under `/openai/v1` ([`EmulatorHandle::openai_base_url`],
//! what a client puts in `OPENAI_BASE_URL`). Every reply is
//! `Content-Type: application/json` (file content: `application/octet-stream`)
//! with an `x-request-id: req_<32 hex>` header; errors use the 4-key
//! envelope `{"error":{message,type,param,code}}`. Auth is
//! `Authorization: Bearer <key>` (the same [`EmulatorConfig::api_key`]):
//! missing or wrong → 401 `invalid_api_key`, the key masked to its first 3
//! and last 4 characters. `OpenAI-Organization` / `OpenAI-Project` are
//! accepted and ignored.
//!
//! | Route (under `/openai/v1`) | |
//! |---|---|
//! | `POST /images/generations` | JSON; `ImagesResponse` with real PNG/JPEG/WebP bytes |
//! | `POST /images/edits` | multipart (`image` or `image[]` ×1..16, `mask`) or JSON (`images:[{file_id}\|{image_url: data:…}]`) |
//! | `POST /files` | multipart `purpose` (`batch`, `vision`, `user_data`) + `file` → FileObject (`file-` + 22 base62) |
//! | `GET /files/{id}`, `GET /files/{id}/content`, `DELETE /files/{id}` | metadata, raw bytes, delete |
//! | `POST /batches` | `input_file_id`, `endpoint` (`/v1/images/generations`\|`/v1/images/edits`), `completion_window: "24h"`, `metadata` → `validating` |
//! | `GET /batches/{id}` | each get advances: `in_progress` (… `finalizing` on get N−1 when N ≥ 3) → terminal on get N (`polls_until_done`) |
//! | `POST /batches/{id}/cancel` | → `cancelling`; the next get → `cancelled` (409 once terminal) |
//! | `GET /batches?after=&limit=` | newest first, `{object:"list",data,first_id,last_id,has_more}`; does not advance batches |
//!
//! Models: `gpt-image-2`, `gpt-image-2-2026-04-21`, `gpt-image-2.5-sunburst`,
//! `gpt-image-2.5-flare` (and their `-2026-09-08` snapshots),
//! `gpt-image-2.6-sunburst`, `gpt-image-2.6-flare`; anything else
//! (`gpt-image-1*`, `chatgpt-image-latest`, `dall-e-*`) is 404
//! `model_not_found`. `size` is `auto` (= 1024x1024) or `WxH`, multiples of
//! 16, aspect 1:3..3:1, long side ≤ 3840, short side ≤ 2160; `quality`
//! `auto` resolves to `medium`, `xhigh`/`max` only for gpt-image-2.5-*;
//! `background` `auto` resolves to `opaque`. Output tokens per image are
//! 272/1056/4160 (low/medium/high; xhigh 2×, max 4× high) scaled by area
//! relative to 1024×1024, times `n`; input text tokens are ⌈chars/4⌉, input
//! image tokens 85 + 170 per 512×512 tile of each input image. Not
//! supported: `stream: true` (400), `input_fidelity` (400
//! `unsupported_parameter`), http(s) `image_url`s (400 `invalid_image_url`).
//!
//! Trigger words (realtime and batch lines): `EMULATE_MODERATION` → 400
//! `moderation_blocked` (type `image_generation_user_error`, with
//! `moderation_details`); `EMULATE_INVALID_ARGUMENT` → 400
//! `invalid_request_error`.
//!
//! ```toml
//! [openai]
//! latency_ms = 0              # fixed delay before every image request
//! latency_jitter_ms = 0
//! rate_429 = 0.0              # 429 rate_limit_exceeded + retry-after-ms / retry-after
//! retry_after_ms = 1000       #   (retry-after = whole seconds, rounded up)
//! rate_500 = 0.0              # 500 server_error
//! rate_503 = 0.0              # 503 server_is_overloaded
//! rate_reset = 0.0            # 200 + part of the body, then the connection drops (not billed)
//! first_429 = 0               # first N image requests: 429; then first_500, first_503
//! first_500 = 0
//! first_503 = 0
//! insufficient_quota_after = 100  # every image request after the 100th: 429 insufficient_quota
//! moderation_rate = 0.0       # 400 moderation_blocked (realtime and batch lines)
//! item_error_rate = 0.0       # per batch line: 500 server_error line in the error file
//! fail_batches = 0            # first N batches end `failed`
//! expire_batches = 0          # next N end `expired`: the first ⌈n/2⌉ lines answered,
//!                             #   the rest `batch_expired` in the error file
//! polls_until_done = 2        # terminal on the Nth get
//! # done_after_ms = 500       # or: terminal after this time since create
//! create_429_first = 0        # first N POST /batches: 429 (nothing created)
//! # rpm_limit = 600           # server-side image requests/minute per model: over it 429
//!                             #   rate_limit_exceeded + retry-after-ms; admitted answers carry
//!                             #   x-ratelimit-{limit,remaining,reset}-requests
//! ```
//!
//! Batch lines are validated at create (JSON object, unique `custom_id`,
//! `method` POST, `url` = `endpoint`, ≤ 50,000 lines); any error makes the
//! first get `failed` with `errors.data[]` entries carrying `line`. Lines
//! are answered when the batch turns terminal, output/error JSONL lines come
//! in a seed-shuffled order (join on `custom_id`). Billing
//! ([`OpenAiStats`]): realtime images when the 200 went out whole; batch
//! lines when the batch completes or expires (answered lines only);
//! cancelled batches (the first ⌈n/2⌉ lines answered if cancelled after
//! `validating`, the rest `batch_cancelled`) and failed ones bill nothing.

mod batch;
pub mod c2pa_sign;
mod errors;
mod faults;
mod files;
mod generate;
mod limits;
mod models;
mod openai;
mod paint;
pub mod pki;
mod read;
pub mod tsa;
mod wire;

#[cfg(test)]
mod copy_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

pub use faults::{BatchFaults, Faults};
pub use openai::{OpenAiFaults, OpenAiStats};

use errors::{ApiError, json_response};
use faults::{HttpFault, HttpFaults, draw};

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Seed for all randomness (fault draws, ids, result order).
    pub seed: u64,
    /// `Some(k)`: only `k` is a valid key. `None`: any non-empty key is valid.
    pub api_key: Option<String>,
    /// Initial faults.
    pub faults: Faults,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            seed: 0x5eed,
            api_key: None,
            faults: Faults::default(),
        }
    }
}

/// Counters the tests read to check billing and call counts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct EmulatorStats {
    /// Every `generateContent` request received (any outcome).
    pub generate_calls: u64,
    /// Realtime images returned plus batch items that produced an image.
    pub billed_images: u64,
    /// Images returned by `generateContent`.
    pub realtime_billed_images: u64,
    /// Images produced by batch items (counted when the batch succeeds).
    pub batch_billed_images: u64,
    /// Batches created (including ones whose create answer was cut off).
    pub batches_created: u64,
    /// Display name → number of batches created with it.
    pub batch_display_names: BTreeMap<String, u64>,
    /// Files uploaded (finalized).
    pub files_uploaded: u64,
    /// Injected faults of every kind.
    pub faults_injected: u64,
    /// SHA-256 (hex) of the prompt → number of billed responses for it.
    pub prompts_billed: BTreeMap<String, u64>,
    /// Counters of the OpenAI surface (`/openai/v1/…`).
    #[serde(default)]
    pub openai: OpenAiStats,
    /// `generateContent` requests to reader models received (any outcome;
    /// also counted in `generate_calls`).
    #[serde(default)]
    pub read_calls: u64,
    /// Reads answered: realtime reader 200s (including ones cut off by
    /// `rate_reset`) plus batch reader lines that got a response.
    #[serde(default)]
    pub reads: u64,
    /// Reads billed: realtime reader 200s sent whole plus reader lines of
    /// batches that succeeded. Never counted in `billed_images`.
    #[serde(default)]
    pub reads_billed: u64,
    /// Reads whose answer altered one string (`misread_rate`).
    #[serde(default)]
    pub misread: u64,
    /// Generated images (both surfaces) painted with a misspelled string.
    #[serde(default)]
    pub misspelled: u64,
    /// Every edit request received that parsed (both surfaces, realtime
    /// and batch), in arrival order: Gemini multi-turn requests with a
    /// signed model-turn image, and OpenAI `images/edits` calls or lines.
    #[serde(default)]
    pub edits: Vec<EditSeen>,
    /// The full conversation of every Gemini edit, in the order of the
    /// `gemini` entries of [`EmulatorStats::edits`] (one each).
    #[serde(default)]
    pub conversations: Vec<ConversationSeen>,
    /// `generateContent` requests refused by `rpm_limit` (429; also
    /// counted in `generate_calls`, not in `faults_injected`).
    #[serde(default)]
    pub rate_limited: u64,
    /// Hex SHA-256 of every image a reader model was asked to read
    /// (realtime reads and batch reader lines), in arrival order.
    #[serde(default)]
    pub read_images: Vec<String>,
    /// Requests to the test time-stamp authority (`POST /tsa`), any outcome.
    #[serde(default)]
    pub tsa_requests: u64,
    /// Time-stamp tokens it granted.
    #[serde(default)]
    pub tsa_granted: u64,
}

/// The turns of one Gemini edit request, as received.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ConversationSeen {
    /// A batch line rather than a realtime call.
    pub batch: bool,
    /// Every turn, in order.
    pub turns: Vec<TurnSeen>,
}

/// One turn of a Gemini request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TurnSeen {
    /// `user` or `model`.
    pub role: String,
    /// Its parts, in order.
    pub parts: Vec<PartSeen>,
}

/// One part of a turn.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PartSeen {
    /// The text of a text part.
    pub text: Option<String>,
    /// Hex SHA-256 of an inline image's bytes.
    pub image_sha256: Option<String>,
    /// Its `thoughtSignature`, if it carried one.
    pub thought_signature: Option<String>,
    /// True when this emulator issued that signature in its answer to the
    /// conversation before this turn.
    pub signature_issued: bool,
}

/// What one edit request carried, as the tests check it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct EditSeen {
    /// `gemini` or `openai`.
    pub surface: String,
    /// A batch line rather than a realtime call.
    pub batch: bool,
    /// Hex SHA-256 of the image being edited (Gemini: the model-turn
    /// image; OpenAI: the first input image).
    pub image_sha256: String,
    /// The model-turn image's `thoughtSignature` (Gemini only).
    pub thought_signature: Option<String>,
    /// True when that signature is one this emulator issued for an image
    /// made from the request's first user turn (Gemini only).
    pub signature_issued: bool,
    /// The instruction: the last user turn's text (Gemini) or the prompt (OpenAI).
    pub instruction: String,
    /// The output size asked, `WxH` (OpenAI only).
    #[serde(default)]
    pub size: Option<String>,
    /// The quality asked, as resolved (OpenAI only).
    #[serde(default)]
    pub quality: Option<String>,
}

/// A running emulator. Dropping it leaves the server running until the
/// runtime ends; call [`EmulatorHandle::shutdown`] to stop it.
pub struct EmulatorHandle {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl EmulatorHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// `http://127.0.0.1:PORT/openai/v1`: the OpenAI surface's base URL
    /// (what a client puts in `OPENAI_BASE_URL`).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/openai/v1", self.shared.addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> EmulatorStats {
        self.shared.stats_snapshot()
    }

    /// What the emulator painted into the image `image_bytes` (PNG, JPEG or
    /// WebP, possibly downscaled and re-encoded since): the quoted strings
    /// of its prompt as painted, a misspelling included. `None` when the
    /// image carries no signature: not made by this emulator, or made from
    /// a prompt without quoted copy.
    pub fn painted(&self, image_bytes: &[u8]) -> Option<Vec<String>> {
        let id = paint::signature_of(image_bytes)?;
        self.shared.paint.get(id).map(|p| p.texts.clone())
    }

    /// Replace the faults while running; "first N" counters restart.
    pub fn set_faults(&self, f: Faults) {
        self.shared.set_faults(f);
    }

    /// Stop accepting connections, wait briefly for in-flight requests, and
    /// remove the emulator's temporary files.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Keep-alive connections can hold graceful shutdown open; do not
        // let a test hang on them.
        if tokio::time::timeout(Duration::from_secs(3), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
        self.shared.batches.abort_all();
        let _ = tokio::fs::remove_dir_all(&self.shared.dir.0).await;
    }
}

/// Bind `127.0.0.1:port` (0 = any free port) and serve in a tokio task.
pub async fn spawn(config: EmulatorConfig, port: u16) -> std::io::Result<EmulatorHandle> {
    config
        .faults
        .validate()
        .map_err(|m| std::io::Error::new(std::io::ErrorKind::InvalidInput, m))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    static INSTANCE: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "adloc-emulator-{}-{}-{}",
        std::process::id(),
        addr.port(),
        INSTANCE.fetch_add(1, Ordering::Relaxed)
    ));
    tokio::fs::create_dir_all(&dir).await?;
    let shared = Arc::new(Shared {
        seed: config.seed,
        api_key: config.api_key,
        faults: RwLock::new(config.faults),
        counters: Mutex::new(Counters::default()),
        stats: Mutex::new(EmulatorStats::default()),
        images: generate::ImageCache::default(),
        files: files::FileStore::default(),
        batches: batch::BatchStore::default(),
        openai: openai::OpenAiState::default(),
        paint: paint::Registry::new(config.seed),
        rpm: limits::RpmLimiter::default(),
        dir: TempDir(dir),
        addr,
        ids: AtomicU64::new(0),
    });
    let app = Router::new()
        .fallback(dispatch)
        // Inline image data may reach 100 MB per request (§1.2); uploads stream.
        .layer(DefaultBodyLimit::disable())
        .with_state(shared.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "emulator server stopped with an error");
        }
    });
    Ok(EmulatorHandle {
        shared,
        shutdown: Some(tx),
        task,
    })
}

/// Removes the emulator's storage when the last reference goes away.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Default)]
struct Counters {
    realtime: u64,
    batch_create: u64,
    batch_ordinal: u64,
    downloads: u64,
    /// (kind, prompt hash) → times seen, so a retry gets a fresh draw.
    attempts: HashMap<(u8, [u8; 32]), u64>,
}

/// Attempt-counter kinds.
const KIND_REALTIME: u8 = 0;
const KIND_ITEM: u8 = 1;
const KIND_PAINT: u8 = 2;
const KIND_READ: u8 = 3;
const KIND_MISREAD: u8 = 4;

/// The trigger word that misspells every image of a prompt containing it.
pub(crate) const MISSPELL_TRIGGER: &str = "EMULATE_MISSPELL";

pub(crate) struct Shared {
    seed: u64,
    api_key: Option<String>,
    faults: RwLock<Faults>,
    counters: Mutex<Counters>,
    stats: Mutex<EmulatorStats>,
    images: generate::ImageCache,
    files: files::FileStore,
    batches: batch::BatchStore,
    openai: openai::OpenAiState,
    paint: paint::Registry,
    /// The server-side requests-per-minute limits (both surfaces).
    rpm: limits::RpmLimiter,
    dir: TempDir,
    addr: SocketAddr,
    ids: AtomicU64,
}

impl Shared {
    fn faults(&self) -> Faults {
        match self.faults.read() {
            Ok(f) => f.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_faults(&self, f: Faults) {
        match self.faults.write() {
            Ok(mut g) => *g = f,
            Err(p) => *p.into_inner() = f,
        }
        let mut c = self.lock_counters();
        c.realtime = 0;
        c.batch_create = 0;
        c.batch_ordinal = 0;
        c.downloads = 0;
        drop(c);
        self.openai.reset_counters();
    }

    fn lock_counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_stats<R>(&self, f: impl FnOnce(&mut EmulatorStats) -> R) -> R {
        let mut g = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    fn stats_snapshot(&self) -> EmulatorStats {
        self.with_stats(|s| s.clone())
    }

    /// Record an edit request that parsed.
    pub(crate) fn record_edit(&self, e: EditSeen) {
        self.with_stats(|s| s.edits.push(e));
    }

    /// Record a Gemini edit: a multi-turn request (a model turn sent
    /// back), or a single user turn whose first input image this emulator
    /// painted and whose text quotes no copy of its own (the single-turn
    /// edit of the docs). The latter is recognized here, where the paint
    /// registry is: its image will show the input image's copy with the
    /// instruction's swaps applied.
    pub(crate) fn record_gemini_edit(&self, req: &mut wire::GenRequest, batch: bool) {
        if req.edit.is_none()
            && let Some(source) = req.edit_source.take()
            && paint::quoted_copy(&req.prompt).is_empty()
            && let Some(id) = paint::signature_of(&source)
            && let Some(painted) = self.paint.get(id)
        {
            let original: Vec<String> = painted.texts.iter().map(|t| format!("\"{t}\"")).collect();
            req.paint_prompt = wire::swapped(&original.join("\n"), &req.prompt);
            req.edit = Some(wire::EditTurn {
                image_sha256: Sha256::digest(&source).into(),
                thought_signature: None,
                signature_issued: false,
                instruction: req.prompt.clone(),
            });
        }
        if let Some(e) = &req.edit {
            self.record_edit(EditSeen {
                surface: "gemini".into(),
                batch,
                image_sha256: hex::encode(e.image_sha256),
                thought_signature: e.thought_signature.clone(),
                signature_issued: e.signature_issued,
                instruction: e.instruction.clone(),
                size: None,
                quality: None,
            });
            let turns = req.turns.clone();
            self.with_stats(|s| s.conversations.push(ConversationSeen { batch, turns }));
        }
    }

    fn fault_injected(&self) {
        self.with_stats(|s| s.faults_injected += 1);
    }

    /// Record billed images for one response.
    fn bill(&self, prompt_sha: &[u8; 32], images: u64, batch: bool) {
        if images == 0 {
            return;
        }
        self.with_stats(|s| {
            s.billed_images += images;
            if batch {
                s.batch_billed_images += images;
            } else {
                s.realtime_billed_images += images;
            }
            *s.prompts_billed.entry(hex::encode(prompt_sha)).or_default() += 1;
        });
    }

    /// Paint the quoted copy of `prompt` into one new image: returns the
    /// signature id to embed, or `None` when the prompt has no quoted copy
    /// (the image keeps the cached, unsigned path). The misspelling draw
    /// depends on (seed, prompt hash, how many images of it were painted).
    pub(crate) fn paint_image(&self, prompt: &str, sha: &[u8; 32]) -> Option<u32> {
        let mut texts = paint::quoted_copy(prompt);
        if texts.is_empty() {
            return None;
        }
        let n = self.attempt(KIND_PAINT, sha).to_le_bytes();
        let forced = prompt.contains(MISSPELL_TRIGGER);
        let rate = self.faults().misspell_rate;
        if (forced || draw(self.seed, &[b"misspell", sha, &n]) < rate)
            && paint::misspell_one(&mut texts, self.dice(b"misspell-how", sha, &n))
        {
            self.with_stats(|st| st.misspelled += 1);
        }
        Some(self.paint.register(texts))
    }

    /// Four independent draws.
    pub(crate) fn dice(&self, what: &[u8], key: &[u8], n: &[u8]) -> [f64; 4] {
        [0u8, 1, 2, 3].map(|i| draw(self.seed, &[what, key, n, &[i]]))
    }

    /// How many times this prompt was seen before (per kind), then count it.
    fn attempt(&self, kind: u8, sha: &[u8; 32]) -> u64 {
        let mut c = self.lock_counters();
        let n = c.attempts.entry((kind, *sha)).or_default();
        let seen = *n;
        *n += 1;
        seen
    }

    /// A fresh id of `len` chars from `alphabet`, deterministic in the seed.
    fn new_id(&self, len: usize, alphabet: &[u8]) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut out = String::with_capacity(len);
        let mut round = 0u64;
        while out.len() < len {
            let mut h = Sha256::new();
            h.update(self.seed.to_le_bytes());
            h.update(n.to_le_bytes());
            h.update(round.to_le_bytes());
            for b in h.finalize() {
                if out.len() == len {
                    break;
                }
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
            round += 1;
        }
        out
    }

    fn response_id(&self) -> String {
        self.new_id(
            23,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        )
    }

    fn check_auth(&self, headers: &HeaderMap, query: &Query) -> Result<(), ApiError> {
        let key = headers
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| query.get("key").map(str::to_string))
            .filter(|k| !k.is_empty());
        match (key, &self.api_key) {
            (None, _) => Err(errors::missing_key()),
            (Some(k), Some(valid)) if &k != valid => Err(errors::invalid_key()),
            _ => Ok(()),
        }
    }

    /// Scheme and authority for URLs we hand out (upload sessions, file
    /// URIs): the client's `Host` when present, else our bound address.
    fn public_base(&self, headers: &HeaderMap) -> String {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
            .map_or_else(|| self.addr.to_string(), str::to_string);
        format!("http://{host}")
    }

    fn storage_dir(&self) -> &Path {
        &self.dir.0
    }
}

/// Decoded query parameters (first value wins).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        let mut out = Vec::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((percent_decode(k), percent_decode(v)));
        }
        Query(out)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn percent_decode(s: &str) -> String {
    fn hex_val(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /tsa`: the test RFC 3161 time-stamp authority ([`tsa`]).
async fn time_stamp(
    s: &Arc<Shared>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    s.with_stats(|st| st.tsa_requests += 1);
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != tsa::QUERY_CONTENT_TYPE {
        return Ok((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected Content-Type {}", tsa::QUERY_CONTENT_TYPE),
        )
            .into_response());
    }
    if let Some(n) = s.faults().tsa_fail_after
        && s.with_stats(|st| st.tsa_granted) >= n
    {
        s.with_stats(|st| st.faults_injected += 1);
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            "time stamp service unavailable",
        )
            .into_response());
    }
    // A TimeStampReq is a few hundred bytes.
    let Ok(request) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Ok((StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response());
    };
    let (reply, answer) = tsa::answer(&request, jiff::Timestamp::now().as_second());
    if answer == tsa::Answer::Granted {
        s.with_stats(|st| st.tsa_granted += 1);
    }
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, tsa::REPLY_CONTENT_TYPE)],
        reply,
    )
        .into_response())
}

fn is_version(v: &str) -> bool {
    v == "v1" || v == "v1beta"
}

/// Largest JSON body accepted (the 100 MB inline limit plus headroom for base64).
const MAX_JSON_BODY: usize = 140 * 1024 * 1024;

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_JSON_BODY)
        .await
        .map_err(|_| ApiError::invalid("Request payload size exceeds the limit: 104857600 bytes."))
}

/// One entry point; routing by hand because Google's `{id}:{verb}` path
/// segments do not fit a path router, and unknown paths must still get a
/// Google-style JSON error.
async fn dispatch(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let headers = parts.headers;
    let method = parts.method;
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();

    let result: Result<Response, ApiError> = match (&method, segs.as_slice()) {
        (&Method::GET, ["_emulator", "stats"]) => {
            Ok(json_response(StatusCode::OK, &json!(s.stats_snapshot())))
        }
        (&Method::GET, ["_emulator", "faults"]) => {
            Ok(json_response(StatusCode::OK, &json!(s.faults())))
        }
        (&Method::POST, ["_emulator", "faults"]) => set_faults_http(&s, body).await,
        (&Method::POST, ["tsa"]) => time_stamp(&s, &headers, body).await,
        (_, ["openai", "v1", rest @ ..]) => {
            return openai::route(&s, &method, rest, &headers, &query, body).await;
        }
        (&Method::POST, ["upload", ver, "files"]) if is_version(ver) => {
            files::upload(&s, ver, &headers, &query, body).await
        }
        (&Method::GET, ["download", ver, "files", id_verb]) if is_version(ver) => {
            match s.check_auth(&headers, &query) {
                Ok(()) => files::download_route(&s, id_verb, &query).await,
                Err(e) => Err(e),
            }
        }
        (_, [ver, rest @ ..]) if is_version(ver) => {
            api_route(&s, &method, ver, rest, &headers, &query, body).await
        }
        _ => Err(ApiError::not_found(format!(
            "The requested URL {path} was not found on this server."
        ))),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn api_route(
    s: &Arc<Shared>,
    method: &Method,
    ver: &str,
    rest: &[&str],
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> Result<Response, ApiError> {
    if let (&Method::POST, ["models", model_verb]) = (method, rest)
        && let Some(model) = model_verb.strip_suffix(":generateContent")
    {
        return Ok(generate_content(s, ver, model, headers, query, body).await);
    }
    s.check_auth(headers, query)?;
    match (method, rest) {
        (&Method::POST, ["models", model_verb]) => match model_verb.split_once(':') {
            Some((model, "batchGenerateContent")) => Ok(batch::create(s, ver, model, body).await),
            _ => Err(ApiError::not_found(format!(
                "Method not found: models/{model_verb}."
            ))),
        },
        (&Method::GET, ["files"]) => files::list(s, query, headers),
        (&Method::GET, ["files", id_verb]) if id_verb.ends_with(":download") => {
            files::download_route(s, id_verb, query).await
        }
        (&Method::GET, ["files", id]) => files::get(s, id, headers),
        (&Method::DELETE, ["files", id]) => files::delete(s, id).await,
        (&Method::GET, ["batches"]) => batch::list(s, query),
        (&Method::GET, ["batches", id]) => batch::get(s, id).await,
        (&Method::DELETE, ["batches", id]) => batch::delete(s, id),
        (&Method::POST, ["batches", id_verb]) => match id_verb.split_once(':') {
            Some((id, "cancel")) => batch::cancel(s, id),
            Some((id, "delete")) => batch::delete(s, id),
            _ => Err(ApiError::not_found(format!(
                "Method not found: batches/{id_verb}."
            ))),
        },
        _ => Err(ApiError::not_found(format!(
            "The requested URL /{ver}/{} was not found on this server.",
            rest.join("/")
        ))),
    }
}

async fn set_faults_http(s: &Shared, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(body).await?;
    let f: Faults = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("invalid faults JSON: {e}")))?;
    f.validate().map_err(ApiError::invalid)?;
    s.set_faults(f);
    Ok(json_response(StatusCode::OK, &json!({})))
}

/// Sleep for an HTTP fault profile's latency.
pub(crate) async fn apply_latency(s: &Shared, http: &HttpFaults, index: u64, kind: &[u8]) {
    let u = draw(s.seed, &[b"latency", kind, &index.to_le_bytes()]);
    let d = http.latency(u);
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// The error response for an injected HTTP fault (not `Reset`).
fn fault_error(f: HttpFault, model: &str, faults: &Faults) -> ApiError {
    match f {
        HttpFault::Quota429 => errors::quota_429(
            model,
            faults.retry_delay_s,
            false,
            faults.bare_429,
            faults.retry_after_header,
        ),
        HttpFault::Internal500 => ApiError::internal(
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting",
        ),
        HttpFault::Unavailable503 => ApiError::new(
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        ),
        HttpFault::Deadline504 => ApiError::new(
            504,
            "DEADLINE_EXCEEDED",
            "The request timed out. Please try again.",
        ),
        HttpFault::Reset => ApiError::internal("connection reset"),
    }
}

/// A 200 whose body stops half-way and then kills the connection: headers
/// and a prefix go out, a short pause lets them reach the client, then the
/// stream errors and hyper drops the connection.
pub(crate) fn reset_response(full: Vec<u8>) -> Response {
    let cut = (full.len() / 2).max(1).min(full.len());
    let prefix = Bytes::from(full).slice(..cut);
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let prefix = prefix.clone();
        async move {
            match step {
                0 => Some((Ok::<Bytes, std::io::Error>(prefix), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "emulated connection reset",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(errors::JSON_CONTENT_TYPE),
    );
    resp
}

async fn generate_content(
    s: &Arc<Shared>,
    ver: &str,
    model: &str,
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> Response {
    let index = {
        let mut c = s.lock_counters();
        let i = c.realtime;
        c.realtime += 1;
        i
    };
    s.with_stats(|st| {
        st.generate_calls += 1;
        if read::reader_id(model).is_some() {
            st.read_calls += 1;
        }
    });
    let faults = s.faults();
    let http = faults.realtime_http();
    apply_latency(s, &http, index, b"realtime").await;
    match generate_inner(s, ver, model, headers, query, body, &faults, &http, index).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn generate_inner(
    s: &Arc<Shared>,
    ver: &str,
    model: &str,
    headers: &HeaderMap,
    query: &Query,
    body: Body,
    faults: &Faults,
    http: &HttpFaults,
    index: u64,
) -> Result<Response, ApiError> {
    s.check_auth(headers, query)?;
    let target = Target::parse(model).ok_or_else(|| {
        ApiError::not_found(format!(
            "models/{model} is not found for API version {ver}, or is not supported for \
             generateContent. Call ListModels to see the list of available models and their \
             supported methods."
        ))
    })?;
    let bytes = read_body(body).await?;
    let v = wire::normalize(wire::parse_json(&bytes)?)?;
    drop(bytes);
    enum Job {
        Image(models::ModelId, wire::GenRequest),
        Read(&'static str, read::ReadRequest),
    }
    let (job, kind, sha) = match target {
        Target::Image(m) => {
            let mut req = wire::parse_request(&v, &m, &s.files, s.seed)?;
            s.record_gemini_edit(&mut req, false);
            let sha = req.prompt_sha;
            (Job::Image(m, req), KIND_REALTIME, sha)
        }
        Target::Reader(r) => {
            let req = read::parse(s, r, &v).await?;
            let sha = req.sha;
            (Job::Read(r, req), KIND_READ, sha)
        }
    };
    let model_name = match &job {
        Job::Image(m, _) => m.as_str().to_string(),
        Job::Read(r, _) => (*r).to_string(),
    };
    if let Some(rpm) = faults.rpm_limit
        && let limits::Admission::Refused { retry_after, .. } = s.rpm.admit(
            &format!("gemini/{model_name}"),
            rpm,
            std::time::Instant::now(),
        )
    {
        s.with_stats(|st| st.rate_limited += 1);
        // The per-minute quota answer (https://ai.google.dev/gemini-api/docs/rate-limits,
        // error shape in https://ai.google.dev/gemini-api/docs/troubleshooting):
        // RESOURCE_EXHAUSTED, QuotaFailure, RetryInfo.
        return Err(errors::quota_429(
            &model_name,
            retry_after.as_secs_f64(),
            false,
            faults.bare_429,
            faults.retry_after_header,
        )
        .with_quota_value(rpm));
    }

    if let Some(after) = faults.daily_quota_after
        && index >= after
    {
        s.fault_injected();
        return Err(errors::quota_429(
            &model_name,
            // Waiting seconds is pointless for a per-day quota.
            43_200.0,
            true,
            false,
            faults.retry_after_header,
        ));
    }
    let attempt = s.attempt(kind, &sha);
    let u = draw(s.seed, &[b"realtime", &sha, &attempt.to_le_bytes()]);
    let fault = http.decide(index, u);
    if let Some(f) = fault
        && f != HttpFault::Reset
    {
        s.fault_injected();
        return Err(fault_error(f, &model_name, faults));
    }
    let body = match &job {
        Job::Image(m, req) => {
            let built = generate::build(s, m, req, s.response_id()).await?;
            if fault != Some(HttpFault::Reset) {
                s.bill(&req.prompt_sha, built.images, false);
            }
            built.body
        }
        Job::Read(r, req) => {
            let body = read::build(s, r, req, s.response_id());
            s.with_stats(|st| {
                st.reads += 1;
                if fault != Some(HttpFault::Reset) {
                    st.reads_billed += 1;
                }
            });
            body
        }
    };
    if fault == Some(HttpFault::Reset) {
        s.fault_injected();
        return Ok(reset_response(body.to_string().into_bytes()));
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// What a model id in a `generateContent` or `batchGenerateContent` path
/// names: an image model or a reader (text) model.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Image(models::ModelId),
    Reader(&'static str),
}

impl Target {
    /// `None` for unknown ids, retired readers (`gemini-2.5-flash`,
    /// `gemini-2.5-pro`) included.
    pub(crate) fn parse(model: &str) -> Option<Target> {
        if let Some(r) = read::reader_id(model) {
            return Some(Target::Reader(r));
        }
        model.parse().ok().map(Target::Image)
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Target::Image(m) => m.as_str(),
            Target::Reader(r) => r,
        }
    }
}

/// RFC 3339 UTC with nanoseconds, as the service prints timestamps.
fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

fn rfc3339_plus_hours(ts: &str, hours: i64) -> String {
    ts.parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| t.checked_add(jiff::SignedDuration::from_hours(hours)).ok())
        .map_or_else(|| ts.to_string(), |t| t.to_string())
}
