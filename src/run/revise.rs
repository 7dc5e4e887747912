//! Revise by editing: a rejected image is bought again as an edit of
//! itself, with the reviewer's note as the instruction. The edit is the
//! job queued again, so it is claimed, batched, retried, priced and (with
//! copy QA) read back like any other call; this module only queues the
//! edits and attaches the image to revise to the request.

use std::sync::Arc;

use crate::assets::{self, EditSourceError};
use crate::domain::{Error, Exchange, ImageEdit, ImageRequest, Reason, ReferenceImage, Result};
use crate::provider::ProviderError;
use crate::store::{JobId, PendingEdit, Store};

/// Keep the image of every rejected asset beside it (`<row-id>.r<N>.<ext>`)
/// and queue its edit. An image that is gone (changed or deleted by hand)
/// cannot be edited: it is reported and its job left as it is. Returns how
/// many edits were queued.
pub(crate) async fn queue(
    store: &Store,
    campaign: &str,
    campaign_out: &std::path::Path,
) -> Result<u64> {
    let due = store.revisable(campaign).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut ready = Vec::with_capacity(due.len());
    for (id, edit) in due {
        match keep(campaign_out, &edit).await? {
            Ok(_) => ready.push((id, edit)),
            Err(e) => tracing::warn!(path = %edit.path, "cannot revise: {e}"),
        }
    }
    store.queue_revisions(&ready).await
}

/// Keep the image an edit revises and read it back: `Ok(Err(_))` when it
/// is gone, `Err` when the file system failed.
async fn keep(
    campaign_out: &std::path::Path,
    edit: &PendingEdit,
) -> Result<std::result::Result<(String, Vec<u8>), EditSourceError>> {
    let out = campaign_out.to_path_buf();
    let (path, revision, sha) = (edit.path.clone(), edit.revision, edit.sha256.clone());
    let kept =
        tokio::task::spawn_blocking(move || assets::keep_revision(&out, &path, revision, &sha))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
    match kept {
        Err(EditSourceError::Io { path, source }) => Err(Error::io(path, source)),
        other => Ok(other),
    }
}

/// The base locale's image a `text = "edit"` locale is edited from,
/// checked against its recorded checksum.
async fn read_base(
    campaign_out: &std::path::Path,
    edit: &PendingEdit,
) -> Result<std::result::Result<Vec<u8>, EditSourceError>> {
    let path = campaign_out.join(&edit.path);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(Error::io(path, source)),
    };
    use sha2::Digest as _;
    if hex::encode(sha2::Sha256::digest(&bytes)) != edit.sha256 {
        return Ok(Err(EditSourceError::Missing {
            kept: edit.path.clone(),
            current: edit.path.clone(),
            sha256: edit.sha256.clone(),
        }));
    }
    Ok(Ok(bytes))
}

/// What a claimed job's call needs for its edit, if it is one.
pub(crate) enum Prepared {
    /// Not an edit: the request as planned.
    Plain,
    /// An edit: the request carries the image, and the image it replaces
    /// is kept at this path (relative to the campaign output).
    Edit(String),
    /// `text = "edit"`: the request carries the base locale's image.
    CopyEdit,
    /// An edit whose image is gone: the job fails with this error.
    Broken(ProviderError),
}

impl Prepared {
    /// Where the replaced image is kept, for an edit.
    pub(crate) fn replaced(&self) -> Option<String> {
        match self {
            Prepared::Edit(kept) => Some(kept.clone()),
            _ => None,
        }
    }
}

/// Attach the edit `job` is queued for (if any) to `request`: the image as
/// stored, the note as the instruction and, for an edit of the job's own
/// image, the conversation that made it.
pub(crate) async fn prepare(
    store: &Store,
    campaign_out: &std::path::Path,
    job: JobId,
    request: &mut ImageRequest,
) -> Result<Prepared> {
    let Some(edit) = store.pending_edit(job).await? else {
        return Ok(Prepared::Plain);
    };
    let read = if edit.of_base {
        // The base locale's image is read where it is; it stays the base's.
        read_base(campaign_out, &edit).await?.map(|b| (None, b))
    } else {
        keep(campaign_out, &edit).await?.map(|(k, b)| (Some(k), b))
    };
    match read {
        Ok((kept, bytes)) => {
            let image = ReferenceImage {
                mime_type: edit.mime_type.clone(),
                bytes: Arc::new(bytes),
            };
            let conversation = match kept {
                Some(_) => {
                    let room = request
                        .model
                        .family()
                        .max_reference_images()
                        .saturating_sub(request.references.len());
                    conversation(campaign_out, &edit, &image, room).await?
                }
                // `text = "edit"`: one unsigned user turn; the base image's
                // signatures belong to the base job's conversation.
                None => Vec::new(),
            };
            request.edit = Some(ImageEdit {
                image,
                instruction: edit.note,
                conversation,
            });
            Ok(match kept {
                Some(kept) => Prepared::Edit(kept),
                None => Prepared::CopyEdit,
            })
        }
        Err(e) => Ok(Prepared::Broken(ProviderError::job_terminal(
            Reason::IoError,
            e.to_string(),
        ))),
    }
}

/// The most image bytes a replayed conversation carries inline: 15 MiB is
/// 20 MiB as base64, the inline-data size the Gemini batch guide still
/// states (shared/protocols/gemini.md §1: realtime requests may carry 100 MB
/// since January 2026, batch lines are held to the smaller figure, and one
/// conversation is sent both ways).
const CONVERSATION_MAX_BYTES: usize = 15 * 1024 * 1024;

/// The conversation that made the job's current image `image`: every
/// earlier image as kept (checked against its recorded SHA-256) with its
/// model turn and the note that replaced it, then the current image's turn
/// and the pending note. Empty (a single-turn edit of `image`, which the
/// docs also describe) when any turn is unknown (an image another vendor
/// made, a fallback) or a kept image is gone or changed: the conversation
/// is sent whole or not at all. Also empty when the whole conversation
/// would carry more than `max_images` images (what the model takes beside
/// the request's references) or more than [`CONVERSATION_MAX_BYTES`] of
/// them: a job revised many times would otherwise send a request the
/// service refuses on every later revision.
async fn conversation(
    campaign_out: &std::path::Path,
    edit: &PendingEdit,
    image: &ReferenceImage,
    max_images: usize,
) -> Result<Vec<Exchange>> {
    let Some(turn) = &edit.turn else {
        return Ok(Vec::new());
    };
    if edit.history.len() + 1 > max_images {
        tracing::warn!(
            revisions = edit.history.len() + 1,
            max_images,
            "conversation has more images than the model takes: editing without it"
        );
        return Ok(Vec::new());
    }
    let mut total = image.bytes.len();
    let mut exchanges = Vec::with_capacity(edit.history.len() + 1);
    for past in &edit.history {
        let Some(past_turn) = &past.turn else {
            return Ok(Vec::new());
        };
        let path = campaign_out.join(&past.path);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %past.path, "kept revision is gone: editing without the conversation");
                return Ok(Vec::new());
            }
            Err(source) => return Err(Error::io(path, source)),
        };
        use sha2::Digest as _;
        if hex::encode(sha2::Sha256::digest(&bytes)) != past.sha256 {
            tracing::warn!(path = %past.path, "kept revision changed: editing without the conversation");
            return Ok(Vec::new());
        }
        total += bytes.len();
        if total > CONVERSATION_MAX_BYTES {
            tracing::warn!(
                bytes = total,
                "conversation images over the inline budget: editing without it"
            );
            return Ok(Vec::new());
        }
        exchanges.push(Exchange {
            turn: past_turn.clone(),
            image: ReferenceImage {
                mime_type: past.mime_type.clone(),
                bytes: Arc::new(bytes),
            },
            note: past.note.clone(),
        });
    }
    exchanges.push(Exchange {
        turn: turn.clone(),
        image: image.clone(),
        note: edit.note.clone(),
    });
    Ok(exchanges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ModelTurn;
    use crate::store::PastTurn;
    use sha2::Digest as _;

    /// A pending edit of revision `past.len() + 1` whose earlier images
    /// are kept in `dir` with the given sizes, and the current image.
    fn edit_with_history(dir: &std::path::Path, past: &[usize]) -> (PendingEdit, ReferenceImage) {
        let turn = || Some(ModelTurn::image_only(Some("sig".to_string())));
        let history = past
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let bytes = vec![i as u8; len];
                let path = format!("r{}.png", i + 1);
                std::fs::write(dir.join(&path), &bytes).unwrap();
                PastTurn {
                    revision: i as u32 + 1,
                    path,
                    sha256: hex::encode(sha2::Sha256::digest(&bytes)),
                    mime_type: "image/png".into(),
                    turn: turn(),
                    note: format!("note {}", i + 1),
                }
            })
            .collect();
        let edit = PendingEdit {
            revision: past.len() as u32 + 1,
            path: "a.png".into(),
            sha256: String::new(),
            mime_type: "image/png".into(),
            note: "latest".into(),
            of_base: false,
            turn: turn(),
            history,
        };
        let image = ReferenceImage {
            mime_type: "image/png".into(),
            bytes: Arc::new(vec![9; 10]),
        };
        (edit, image)
    }

    #[tokio::test]
    async fn the_whole_conversation_is_sent_while_it_fits() {
        let dir = tempfile::tempdir().unwrap();
        let (edit, image) = edit_with_history(dir.path(), &[10, 10]);
        let c = conversation(dir.path(), &edit, &image, 14).await.unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.iter().map(|e| e.note.as_str()).collect::<Vec<_>>(),
            ["note 1", "note 2", "latest"]
        );
    }

    #[tokio::test]
    async fn a_conversation_with_more_images_than_the_model_takes_is_a_single_turn_edit() {
        let dir = tempfile::tempdir().unwrap();
        let (edit, image) = edit_with_history(dir.path(), &[10, 10, 10]);
        assert!(
            conversation(dir.path(), &edit, &image, 3)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            conversation(dir.path(), &edit, &image, 4)
                .await
                .unwrap()
                .len(),
            4
        );
    }

    #[tokio::test]
    async fn a_conversation_over_the_inline_budget_is_a_single_turn_edit() {
        let dir = tempfile::tempdir().unwrap();
        let half = CONVERSATION_MAX_BYTES / 2 + 1;
        let (edit, image) = edit_with_history(dir.path(), &[half, half]);
        assert!(
            conversation(dir.path(), &edit, &image, 14)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
