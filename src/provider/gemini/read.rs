//! Copy QA reads (protocol §7b): a Gemini text model is sent one image and
//! asked to transcribe its visible text, answering JSON that matches a
//! schema. Same endpoint, key header, classifier and batch mode as images.

use serde::Serialize;
use serde_json::{Value, json};

use super::wire::{ContentOut, GenerateContentResponse, InlineDataOut, PartOut};
use crate::domain::{ReadRequest, Transcript, Usage};
use crate::provider::{ProviderError, Reason};

/// What the reader is told. It must neither correct nor translate: a
/// misspelling "fixed" by the reader is a misspelled ad shipped.
pub const INSTRUCTION: &str = "Transcribe every piece of visible text in this image exactly as \
written, character for character: keep its spelling, capitalization, punctuation, accents and \
script. Do not correct, translate, complete or describe anything. Give each separate piece of \
text (a headline, a line, a label, a button) as one string of `texts`, in reading order. If \
the image has no text, give an empty list.";

/// The JSON property the answer's strings come in.
const PROPERTY: &str = "texts";

/// `generateContent` body of a read.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadBody<'a> {
    /// One user turn: the image, then the instruction.
    pub contents: Vec<ContentOut<'a>>,
    /// JSON output with the schema.
    pub generation_config: ReadConfig,
}

/// `generationConfig` of a read: no image modality, no `imageConfig`
/// (text models refuse both with 400).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadConfig {
    /// `application/json`.
    pub response_mime_type: &'static str,
    /// A JSON Schema (sent instead of, never with, `responseSchema`).
    pub response_json_schema: Value,
    // No `temperature` (nor `topP`/`topK`): every reader is a Gemini 3.x
    // model, for which the Gemini 3 guide recommends the default (1.0) and
    // warns that lower values can cause looping
    // (https://ai.google.dev/gemini-api/docs/gemini-3), and the changelog of
    // 2026-07-21 deprecates the sampling parameters for `gemini-3.6-flash`
    // and `gemini-3.5-flash-lite`
    // (https://ai.google.dev/gemini-api/docs/changelog,
    // https://ai.google.dev/gemini-api/docs/whats-new-gemini-3.6). The
    // 2.x readers it was fine for were retired on 2026-12-01.
}

/// Build the wire body of a read. No `maxOutputTokens`: thinking models
/// count thoughts against it and would cut the answer (`MAX_TOKENS`).
pub fn build_read(req: &ReadRequest) -> ReadBody<'_> {
    ReadBody {
        contents: vec![ContentOut {
            role: "user",
            parts: vec![
                PartOut::InlineData(InlineDataOut {
                    mime_type: &req.mime_type,
                    data: super::wire::Base64Bytes(&req.image),
                }),
                PartOut::Text(INSTRUCTION),
            ],
        }],
        generation_config: ReadConfig {
            response_mime_type: "application/json",
            response_json_schema: json!({
                "type": "object",
                "properties": { PROPERTY: { "type": "array", "items": { "type": "string" } } },
                "required": [PROPERTY],
            }),
        },
    }
}

/// Interpret a read's response: the JSON answer in the non-thought text
/// parts of the first candidate. A block, a cut-off or an answer that is
/// not the schema's JSON is a retryable failure of the read (a second read
/// is a fraction of a cent); the QA stage decides what repeated failures mean.
pub fn interpret_read(resp: GenerateContentResponse<'_>) -> Result<Transcript, ProviderError> {
    let usage = resp.usage_metadata.as_ref().map(|u| Usage {
        prompt_tokens: u.prompt_token_count,
        input_image_tokens: 0,
        image_tokens: 0,
        text_tokens: u.candidates_token_count,
        thought_tokens: u.thoughts_token_count,
    });
    if let Some(reason) = resp
        .prompt_feedback
        .as_ref()
        .and_then(|f| f.block_reason.as_deref())
        .filter(|r| !r.is_empty() && *r != "BLOCKED_REASON_UNSPECIFIED")
    {
        return Err(ProviderError::retryable(
            Reason::BadResponse,
            format!("the reader refused the image: {reason}"),
            None,
        ));
    }
    let Some(candidate) = resp.candidates.into_iter().next() else {
        return Err(ProviderError::retryable(
            Reason::BadResponse,
            "the reader answered without a candidate",
            None,
        ));
    };
    let finish = candidate.finish_reason.as_deref().unwrap_or("");
    if !matches!(finish, "" | "STOP" | "FINISH_REASON_UNSPECIFIED") {
        return Err(ProviderError::retryable(
            Reason::BadResponse,
            format!("the reader stopped with {finish}"),
            None,
        ));
    }
    let text: String = candidate
        .content
        .map(|c| {
            c.parts
                .into_iter()
                .filter(|p| !p.thought)
                .filter_map(|p| p.text)
                .collect::<Vec<_>>()
                .concat()
        })
        .unwrap_or_default();
    let texts = parse_answer(&text).ok_or_else(|| {
        let shown: String = text.chars().take(200).collect();
        ProviderError::retryable(
            Reason::BadResponse,
            format!("the reader's answer is not the JSON asked for: {shown:?}"),
            None,
        )
    })?;
    Ok(Transcript { texts, usage })
}

/// `{"texts": [..]}`, tolerating a Markdown code fence around it (models
/// add one now and then even in JSON mode).
fn parse_answer(text: &str) -> Option<Vec<String>> {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|r| r.strip_suffix("```"))
        .unwrap_or(t)
        .trim();
    let v: Value = serde_json::from_str(t).ok()?;
    let arr = v.get(PROPERTY)?.as_array()?;
    arr.iter().map(|s| s.as_str().map(str::to_string)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ReaderModel;

    fn parse(body: &str) -> Result<Transcript, ProviderError> {
        let resp: GenerateContentResponse<'_> = serde_json::from_str(body).unwrap();
        interpret_read(resp)
    }

    #[test]
    fn the_read_body_asks_for_json_with_a_schema_and_no_image_output() {
        let req = ReadRequest {
            reader: ReaderModel::Flash31Lite,
            image: vec![1, 2, 3],
            mime_type: "image/png".into(),
        };
        let v = serde_json::to_value(build_read(&req)).unwrap();
        let cfg = &v["generationConfig"];
        assert_eq!(cfg["responseMimeType"], "application/json");
        assert_eq!(
            cfg["responseJsonSchema"]["properties"]["texts"]["items"]["type"],
            "string"
        );
        assert!(cfg.get("responseSchema").is_none());
        assert!(cfg.get("responseModalities").is_none());
        assert!(cfg.get("imageConfig").is_none());
        for sampling in ["temperature", "topP", "topK"] {
            assert!(cfg.get(sampling).is_none(), "no {sampling} to a 3.x reader");
        }
        let parts = v["contents"][0]["parts"].as_array().unwrap();
        assert_eq!(parts[0]["inlineData"]["data"], "AQID");
        assert_eq!(parts[0]["inlineData"]["mimeType"], "image/png");
        assert!(parts[1]["text"].as_str().unwrap().contains("exactly as"));
    }

    #[test]
    fn the_answer_is_read_from_non_thought_parts_and_usage_is_kept() {
        let t = parse(
            r#"{"candidates":[{"content":{"parts":[
                {"text":"thinking...","thought":true},
                {"text":"{\"texts\": [\"Own the ridge.\", \"Shop now\"]}"}]},
              "finishReason":"STOP"}],
              "usageMetadata":{"promptTokenCount":1290,"candidatesTokenCount":12,"thoughtsTokenCount":30}}"#,
        )
        .unwrap();
        assert_eq!(t.texts, vec!["Own the ridge.", "Shop now"]);
        let u = t.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.text_tokens, u.thought_tokens),
            (1290, 12, 30)
        );
    }

    #[test]
    fn a_fenced_answer_is_accepted_and_a_non_json_answer_is_a_retryable_failure() {
        let t = parse(
            r#"{"candidates":[{"content":{"parts":[{"text":"```json\n{\"texts\":[\"Grat\"]}\n```"}]}}]}"#,
        )
        .unwrap();
        assert_eq!(t.texts, vec!["Grat"]);
        let e = parse(r#"{"candidates":[{"content":{"parts":[{"text":"The image says Grat"}]}}]}"#)
            .unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e.reason, Reason::BadResponse);
    }

    #[test]
    fn a_cut_off_or_blocked_read_is_retryable() {
        let e = parse(
            r#"{"candidates":[{"content":{"parts":[{"text":"{\"texts\":[\"Gr"}]},"finishReason":"MAX_TOKENS"}]}"#,
        )
        .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        let e = parse(r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#).unwrap_err();
        assert!(e.is_retryable(), "{e}");
    }
}
