//! Writing the review page: thumbnails first (so the page never names a
//! thumbnail that is not there yet), then `index.html`, each atomically.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{Page, THUMB_SIDE, Thumb, thumb_file};
use crate::assets::{write_atomic, write_rebuildable};
use crate::domain::{Error, Result};
use crate::imaging::{decode_master, thumbnail_jpeg};

/// The review folder of a campaign's output.
pub fn review_dir(campaign_out: &Path) -> PathBuf {
    campaign_out.join("review")
}

/// Make the page's missing thumbnails, drop the ones it no longer shows,
/// and write `review/index.html`. A master that cannot be read or decoded
/// leaves its thumbnail missing and is logged: the page is for people, and
/// a broken image there says more than a failed run. Returns the page path.
pub fn write(campaign_out: &Path, page: &Page) -> Result<PathBuf> {
    let dir = review_dir(campaign_out);
    let thumbs = dir.join("thumbs");
    std::fs::create_dir_all(&thumbs).map_err(|e| Error::io(&thumbs, e))?;
    let missing: Vec<&Thumb> = page
        .thumbs
        .iter()
        .filter(|t| !is_nonempty_file(&thumbs.join(&t.file)))
        .collect();
    // Decoding and scaling are CPU work: spread them over the cores.
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let chunk = missing.len().div_ceil(workers).max(1);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = missing
            .chunks(chunk)
            .map(|part| {
                let thumbs = &thumbs;
                s.spawn(move || -> Result<()> {
                    for t in part {
                        make_thumb(campaign_out, thumbs, t)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal("thumbnail worker panicked".into())))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    let keep: HashSet<&str> = page.thumbs.iter().map(|t| t.file.as_str()).collect();
    if let Ok(rd) = std::fs::read_dir(&thumbs) {
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".jpg") && !keep.contains(name.as_ref()) {
                // A thumbnail of an asset no longer shown; its master stays.
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let path = dir.join("index.html");
    write_atomic(&path, page.html.as_bytes())?;
    Ok(path)
}

/// One thumbnail. Only writing can fail the call; an unreadable master
/// is logged and skipped (see [`write`]).
fn make_thumb(campaign_out: &Path, thumbs: &Path, t: &Thumb) -> Result<()> {
    let source = campaign_out.join(&t.source);
    let bytes = match std::fs::read(&source) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(path = %source.display(), error = %e, "no thumbnail: master unreadable");
            return Ok(());
        }
    };
    let small = decode_master(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|img| thumbnail_jpeg(&img, THUMB_SIDE));
    match small {
        Ok(jpeg) => write_rebuildable(&thumbs.join(&t.file), &jpeg)?,
        Err(e) => {
            tracing::warn!(path = %source.display(), error = %e, "no thumbnail: master undecodable");
        }
    }
    Ok(())
}

/// A thumbnail to keep: there and not emptied by a power cut (thumbnails
/// are written without fsync).
fn is_nonempty_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0)
}

/// Make the page's thumbnail of an asset just stored (`source`, relative to
/// `campaign_out`, with its `sha256`), unless it is there: `preview` when
/// the provider made one of these pixels, else from the master. A run calls this
/// as each image lands, while it waits on the network: the page written
/// when the run ends then finds its thumbnails made instead of making
/// them all at once. Never fails the caller: a thumbnail that cannot be
/// made here is logged and made (or reported) by [`write`].
pub fn prepare_thumbnail(
    campaign_out: &Path,
    source: &str,
    sha256: &str,
    preview: Option<Vec<u8>>,
) {
    let thumbs = review_dir(campaign_out).join("thumbs");
    let t = Thumb {
        source: source.to_string(),
        file: thumb_file(sha256),
    };
    if is_nonempty_file(&thumbs.join(&t.file)) {
        return;
    }
    if let Err(e) = std::fs::create_dir_all(&thumbs)
        .map_err(|e| Error::io(&thumbs, e))
        .and_then(|()| match preview {
            Some(jpeg) => Ok(write_rebuildable(&thumbs.join(&t.file), &jpeg)?),
            None => make_thumb(campaign_out, &thumbs, &t),
        })
    {
        tracing::debug!(path = source, error = %e, "thumbnail left for the review page");
    }
}
