//! Campaign input: `campaign.toml`, the rows CSV and the templates, loaded
//! and validated as a whole. Every problem names its file, line and column
//! where there is one; loading reads files and never writes anything.

pub(crate) mod brand;
mod config;
pub(crate) mod notify;
pub(crate) mod placements;
pub(crate) mod qa;
pub(crate) mod references;
pub(crate) mod renditions;
mod rows;
mod sources;
mod span;
pub(crate) mod text_boxes;

use std::path::{Path, PathBuf};

use crate::domain::{
    AspectRatio, Error, FallbackTrigger, ImageSize, InputErrors, InputProblem, Locale, ModelId,
    PricingOverride, Quality, RetrySettings, Vendor,
};
use crate::imaging::RenditionSpec;

pub use brand::{Brand, BrandPicture, LayerKind, LayerSpec};
pub use config::{BatchFailurePolicy, BatchSettings, GeminiSettings, RunMode};
pub use notify::NotifySettings;
pub use qa::{OnMismatch, QaSettings};
pub use references::References;
pub use rows::{Resolved, Row, Rows};
pub use sources::Sources;
pub use text_boxes::TextMode;

/// One creative variant: a template plus its image settings.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Variant name (`hero`), used in output paths.
    pub name: String,
    /// The template file that was found for it.
    pub template_path: PathBuf,
    /// The template text.
    pub template_source: String,
    /// `imageConfig.aspectRatio`.
    pub aspect_ratio: AspectRatio,
    /// `imageConfig.imageSize`.
    pub image_size: ImageSize,
    /// Google Search grounding.
    pub grounding: bool,
    /// The models to try, in order: the primary first, then its fallbacks
    /// (the campaign's `model` when the variant names none).
    pub models: Vec<ModelId>,
    /// GPT Image quality (for the GPT models of the chain; default medium).
    pub quality: Option<Quality>,
    /// What moves a job to the next model of the chain.
    pub fallback_on: Vec<FallbackTrigger>,
    /// Exact-size renditions made from each master (`[[variants.renditions]]`).
    pub renditions: Vec<RenditionSpec>,
    /// Who puts the copy on the image: the model, or adloc (overlay).
    pub text: TextMode,
    /// Copy QA (`[qa]` / `[variants.qa]`): `Some` only for model-text
    /// variants with QA on.
    pub qa: Option<QaSettings>,
    /// The ad platforms' slots each delivered asset is made for
    /// (`placements = [...]`), resolved against the campaign's own
    /// `[placements.*]` tables and the built-in registry.
    pub placements: Vec<crate::domain::placement::PlacementSpec>,
    /// The point of the master the placements' crops keep (`focal`).
    pub focal: (f64, f64),
    /// Brand layers (`[[variants.layers]]`), in declaration order.
    pub layers: Vec<LayerSpec>,
    /// Mirror text boxes and layers for right-to-left locales (`mirror_rtl`,
    /// default on).
    pub mirror_rtl: bool,
}

/// A loaded, validated campaign.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// The campaign folder.
    pub dir: PathBuf,
    /// Hex SHA-256 of `campaign.toml` as read (see [`Sources::check_holds`]).
    pub(crate) config_sha256: String,
    /// `[a-z0-9-]+`, used in output paths and state.
    pub name: String,
    /// Locales, canonical, in the order given.
    pub locales: Vec<Locale>,
    /// The language of the base (unsuffixed) copy columns.
    pub base_locale: Locale,
    /// Model every job uses.
    pub model: ModelId,
    /// How jobs are bought.
    pub mode: RunMode,
    /// Optional API base URL (proxies, gateways).
    pub base_url: Option<String>,
    /// Variants in the order given.
    pub variants: Vec<Variant>,
    /// The copy rows.
    pub rows: Rows,
    /// `budget.max_usd`.
    pub budget_usd: Option<f64>,
    /// Price overrides.
    pub pricing: Vec<PricingOverride>,
    /// Retry and pacing settings.
    pub retry: RetrySettings,
    /// Requests per minute for the model (client-side pacing).
    pub rpm: Option<u32>,
    /// Batch settings.
    pub batch: BatchSettings,
    /// Gemini client settings.
    pub gemini: GeminiSettings,
    /// Reference images (`[references]`), checked and loaded.
    pub references: References,
    /// `[notify]`: the webhook told when a run finishes.
    pub notify: Option<NotifySettings>,
    /// `[brand]`: fonts, logos and image-layer files, read and checked.
    pub brand: Brand,
}

impl Variant {
    /// The primary model (the first of the chain).
    pub fn primary(&self) -> Option<&ModelId> {
        self.models.first()
    }

    /// The quality sent to `model`: the variant's, or medium, for models
    /// that have the setting; `None` for models without one.
    pub fn quality_for(&self, model: &ModelId) -> Option<Quality> {
        let offered = model.family().qualities();
        (!offered.is_empty()).then(|| self.quality.unwrap_or(Quality::Medium))
    }

    /// The template as the prompt registry compiles it.
    pub fn template(&self) -> crate::prompt::Template<'_> {
        crate::prompt::Template {
            name: &self.name,
            path: &self.template_path,
            source: &self.template_source,
        }
    }
}

/// Is `name` a safe campaign name (`[a-z0-9-]+`)?
pub fn valid_campaign_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Campaign {
    /// Load and validate the campaign in `dir`. Collects every problem it
    /// can find before returning, so one run shows them all.
    pub fn load(dir: &Path) -> Result<Campaign, Error> {
        let config_path = dir.join("campaign.toml");
        let text = std::fs::read_to_string(&config_path).map_err(|e| {
            Error::Input(InputErrors(vec![InputProblem::file(
                &config_path,
                format!("cannot read campaign file: {e}"),
            )]))
        })?;
        let mut errors = InputErrors::default();
        let cfg = match config::parse(&config_path, &text, &mut errors) {
            Some(c) => c,
            None => return Err(Error::Input(errors)),
        };

        let rows_path = dir.join(&cfg.rows);
        let rows = rows::load(&rows_path, &mut errors);

        let mut variants = Vec::new();
        for v in &cfg.variants {
            match find_template(dir, &v.template) {
                Some(path) => match std::fs::read_to_string(&path) {
                    Ok(source) => variants.push(Variant {
                        name: v.name.clone(),
                        template_path: path,
                        template_source: source,
                        aspect_ratio: v.aspect_ratio.clone(),
                        image_size: v.image_size,
                        grounding: v.grounding,
                        models: v.models.clone(),
                        quality: v.quality,
                        fallback_on: v.fallback_on.clone(),
                        renditions: v.renditions.clone(),
                        text: v.text.clone(),
                        qa: v.qa.as_ref().and_then(|q| q.settings.clone()),
                        placements: v.placements.clone(),
                        focal: v.focal,
                        layers: v.layers.clone(),
                        mirror_rtl: v.mirror_rtl,
                    }),
                    Err(e) => errors.push(InputProblem::file(
                        &path,
                        format!("cannot read template: {e}"),
                    )),
                },
                None => errors.push(InputProblem::at(
                    &config_path,
                    v.template_line,
                    Some(v.template_col),
                    format!(
                        "template `{}` for variant `{}` not found in {} or the top-level templates/ folder",
                        v.template,
                        v.name,
                        dir.join("templates").display()
                    ),
                )),
            }
        }

        if let Some(rows) = &rows {
            text_boxes::check_columns(&variants, rows, &config_path, &mut errors);
            qa::check_columns(
                cfg.variants.iter().filter_map(|v| v.qa.as_ref()),
                rows,
                &config_path,
                &mut errors,
            );
        }
        let references = references::load(
            references::LoadInput {
                dir,
                config_path: &config_path,
                config_text: &text,
                raw: cfg.references,
                rows: rows.as_ref(),
                locales: &cfg.locales,
                // The strictest limit of any model a job may be sent to.
                model: cfg
                    .variants
                    .iter()
                    .flat_map(|v| &v.models)
                    .chain(std::iter::once(&cfg.model))
                    .min_by_key(|m| m.family().max_reference_images()),
                art: variants.iter().any(|v| v.text.boxes().is_some()),
                gpt: cfg
                    .variants
                    .iter()
                    .flat_map(|v| &v.models)
                    .find(|m| m.vendor() == Vendor::OpenAi),
            },
            &mut errors,
        );

        let image_columns: Vec<String> = cfg
            .variants
            .iter()
            .flat_map(|v| &v.layers)
            .filter_map(|l| match &l.kind {
                LayerKind::Image { column } => Some(column.clone()),
                _ => None,
            })
            .collect();
        let brand = brand::load(
            dir,
            &config_path,
            &cfg.brand,
            &image_columns,
            rows.as_ref(),
            &cfg.locales,
            &mut errors,
        );
        if let Some(rows) = &rows {
            brand::check_columns(&variants, rows, &config_path, &mut errors);
        }

        // Template syntax is checked here too, so a broken template is an
        // input error before anything is written.
        if let Err(e) = crate::prompt::Prompts::new(variants.iter().map(Variant::template)) {
            errors.0.extend(e.0);
        }

        errors.clone().into_result()?;
        let rows = rows.ok_or_else(|| Error::Internal("rows missing without an error".into()))?;
        Ok(Campaign {
            dir: dir.to_path_buf(),
            config_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
            name: cfg.name,
            locales: cfg.locales,
            base_locale: cfg.base_locale,
            model: cfg.model,
            mode: cfg.mode,
            base_url: cfg.base_url,
            variants,
            rows,
            budget_usd: cfg.budget_usd,
            pricing: cfg.pricing,
            retry: cfg.retry,
            rpm: cfg.rpm,
            batch: cfg.batch,
            gemini: cfg.gemini,
            references,
            notify: cfg.notify,
            brand,
        })
    }
}

/// Template lookup: the campaign's own `templates/` overrides the project's
/// top-level `templates/` (the folder that holds `campaigns/`), then the
/// working directory's `templates/`.
fn find_template(dir: &Path, file: &str) -> Option<PathBuf> {
    let mut candidates = vec![dir.join("templates").join(file)];
    if let Some(project) = dir.parent().and_then(Path::parent) {
        candidates.push(project.join("templates").join(file));
    }
    candidates.push(PathBuf::from("templates").join(file));
    candidates.into_iter().find(|p| p.is_file())
}
