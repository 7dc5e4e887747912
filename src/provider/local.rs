//! Local provider (being merged).
#![allow(missing_docs)]
use async_trait::async_trait;
use crate::provider::*;
pub struct LocalProvider;
impl LocalProvider { pub fn new() -> Self { LocalProvider } }
impl Default for LocalProvider { fn default() -> Self { Self::new() } }
#[async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &'static str { "local" }
    async fn generate(&self, req: &ImageRequest) -> Result<Generated, ProviderError> {
        let (w, h) = req.model.family().pixel_size(&req.aspect_ratio, req.image_size).unwrap_or((64, 64));
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 100, 50]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).map_err(|e| ProviderError::job_terminal(Reason::Other, e.to_string()))?;
        Ok(Generated { bytes: out.into_inner(), mime_type: "image/png".into(), usage: None, model_version: None })
    }
    fn batch(&self) -> Option<&dyn BatchApi> { None }
}
