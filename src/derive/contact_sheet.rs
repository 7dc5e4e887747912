//! Contact sheets: one PNG per campaign and locale with every row × variant
//! as a labelled thumbnail, for a quick human look (`adloc run …
//! --contact-sheet` writes `<out>/<campaign>/contact-sheets/<locale>.png`).
//! A job without an image (pending, failed, blocked) gets a grey cell saying
//! why. The drawing is [`crate::imaging::render_sheet`].

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::ImageEncoder;

use crate::assets;
use crate::campaign::Campaign;
use crate::domain::{Error, JobState, Locale, Result};
use crate::imaging::{Cell, Layout, aspect_check, render_sheet};
use crate::store::JobRow;

/// The cells of one locale's sheet, in campaign order (rows, then variants).
pub fn cells_for_locale(
    campaign: &Campaign,
    jobs: &[JobRow],
    locale: &Locale,
    out: &Path,
) -> Vec<Cell> {
    let mut cells = Vec::new();
    for row in &campaign.rows.rows {
        for v in &campaign.variants {
            let job = jobs.iter().find(|j| {
                j.key.row == row.id
                    && j.key.target.locale() == Some(locale)
                    && j.key.variant == v.name
                    && !matches!(j.state, JobState::Retired | JobState::Superseded)
            });
            let label = format!("{} · {}", row.id, v.name);
            let cell = match job {
                Some(j) if j.state == JobState::Done && j.asset.is_some() => {
                    let a = j.asset.as_ref();
                    let (w, h) = a.map_or((0, 0), |a| (a.width, a.height));
                    let (_, ok) = aspect_check(w, h, j.aspect_ratio.as_str());
                    Cell {
                        label,
                        detail: if ok {
                            format!("{w}x{h} ({})", v.aspect_ratio)
                        } else {
                            format!("{w}x{h}: not {}", v.aspect_ratio)
                        },
                        warn: !ok,
                        // A layered model-text image is shown as it ships.
                        image: a.map(|a| {
                            let shown = super::overlay::delivered_of(&a.path).unwrap_or(&a.path);
                            std::fs::read(out.join(shown))
                                .map_err(|e| format!("unreadable: {}", e.kind()))
                        }),
                    }
                }
                Some(j) => Cell {
                    label,
                    detail: match &j.error_code {
                        Some(code) if j.state.is_terminal() => {
                            format!("{}: {code}", j.state.as_str())
                        }
                        _ => j.state.as_str().to_string(),
                    },
                    warn: true,
                    image: None,
                },
                None => Cell {
                    label,
                    detail: "no job".into(),
                    warn: true,
                    image: None,
                },
            };
            cells.push(cell);
        }
    }
    cells
}

/// Write one sheet per locale under `<campaign_out>/contact-sheets/`,
/// atomically, and return their paths. Each locale is drawn on a blocking
/// thread.
pub async fn write_all(
    campaign: &Campaign,
    jobs: &[JobRow],
    campaign_out: &Path,
) -> Result<Vec<PathBuf>> {
    let dir = campaign_out.join("contact-sheets");
    let mut set = tokio::task::JoinSet::new();
    for (i, locale) in campaign.locales.iter().enumerate() {
        let cells = cells_for_locale(campaign, jobs, locale, campaign_out);
        let layout = Layout::for_cells(cells.len(), campaign.variants.len());
        let done = cells.iter().filter(|c| c.image.is_some()).count();
        let title = format!(
            "{} · {} · {done} of {} images",
            campaign.name,
            locale.tag(),
            cells.len()
        );
        let path = dir.join(format!("{}.png", locale.tag()));
        set.spawn_blocking(move || {
            let img = render_sheet(&title, &cells, layout);
            let mut buf = Cursor::new(Vec::new());
            image::codecs::png::PngEncoder::new_with_quality(
                &mut buf,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            )
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgba8,
            )
            .map_err(|e| Error::Internal(format!("contact sheet encoding: {e}")))?;
            assets::write_atomic(&path, &buf.into_inner()).map_err(Error::from)?;
            Ok::<_, Error>((i, path))
        });
    }
    let mut paths = Vec::new();
    while let Some(res) = set.join_next().await {
        paths.push(res.map_err(|e| Error::Internal(format!("contact sheet task: {e}")))??);
    }
    paths.sort();
    Ok(paths.into_iter().map(|(_, p)| p).collect())
}
