//! The provenance step: between "bytes ready" and the atomic write, every
//! delivered file (master, composite, rendition, placement, revision) gets
//! the IPTC AI marking ([`crate::imaging::xmp`]) here, once, so no write
//! path can forget it. The caller states what it did ([`Step`]); what the
//! file says follows from that.
//!
//! Review thumbnails, contact sheets and the revision copies kept beside an
//! asset are not delivered and are not marked here (a kept revision is a
//! byte copy of a file that already was).

use crate::domain::provenance::{C2paState, ProvenanceEntry};
use crate::imaging::xmp::{self, DigitalSourceType};

mod tsa;
pub use tsa::TimeStampAuthority;

/// What adloc did to make a delivered file (the C2PA action it records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A model generated the image (a master).
    Created,
    /// Scaled to a rendition's frame (`contain`/`stretch`).
    Resized,
    /// Cropped (and scaled) to a frame (`cover` renditions, placements).
    Cropped,
    /// Copy or brand layers were put onto generated art (an overlay
    /// composite).
    Placed,
    /// A model edited a delivered image after review (a revision).
    Edited,
}

impl Action {
    /// The C2PA action label (C2PA 2.2, §18.13 "Actions":
    /// <https://c2pa.org/specifications/specifications/2.2/specs/C2PA_Specification.html#_actions>).
    pub fn c2pa_label(self) -> &'static str {
        match self {
            Self::Created => "c2pa.created",
            Self::Resized => "c2pa.resized",
            Self::Cropped => "c2pa.cropped",
            Self::Placed => "c2pa.placed",
            Self::Edited => "c2pa.edited",
        }
    }
}

/// One provenance step, as the writer states it.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// What was done.
    pub action: Action,
    /// What the resulting pixels are.
    pub source: DigitalSourceType,
    /// The model that generated or edited the image (its software agent).
    pub model: Option<&'a str>,
    /// The file this one was made from, whose C2PA manifest (when it has
    /// one) becomes the `parentOf` ingredient: the vendor's bytes for a
    /// master, the master for a rendition or placement, the art for a
    /// composite.
    pub parent: Option<&'a [u8]>,
}

impl<'a> Step<'a> {
    /// A master (or an edit of one) from `model`.
    pub fn generated(model: &'a str, edited: bool) -> Self {
        Step {
            action: if edited {
                Action::Edited
            } else {
                Action::Created
            },
            source: DigitalSourceType::TrainedAlgorithmicMedia,
            model: Some(model),
            parent: None,
        }
    }

    /// A file derived from a delivered one by `action` (a rendition, a
    /// placement): still generated media.
    pub fn derived(action: Action) -> Self {
        Step {
            action,
            source: DigitalSourceType::TrainedAlgorithmicMedia,
            model: None,
            parent: None,
        }
    }

    /// An overlay composite: copy and layers placed onto generated art.
    pub fn composite() -> Self {
        Step {
            action: Action::Placed,
            source: DigitalSourceType::CompositeWithTrainedAlgorithmicMedia,
            model: None,
            parent: None,
        }
    }
}

impl<'a> Step<'a> {
    /// This step, with `parent` as the file it was made from.
    pub fn with_parent(mut self, parent: &'a [u8]) -> Self {
        self.parent = Some(parent);
        self
    }
}

/// Why the provenance step failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// The XMP packet could not be put in.
    #[error(transparent)]
    Xmp(#[from] xmp::XmpError),
    /// The C2PA manifest could not be signed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// `bytes` as they are delivered: any embedded C2PA store removed (our
/// marking breaks its binding; it survives as the parent ingredient), the
/// IPTC XMP packet for `step` in, and with a signer installed, adloc's
/// signed manifest embedded, all before the atomic write, so no file is
/// ever half-signed on disk.
pub fn finalize(bytes: &[u8], step: &Step<'_>) -> Result<Vec<u8>, ProvenanceError> {
    finalize_with(bytes, step, SIGNER.get())
}

/// [`finalize`] with an explicit signer (`None`: unsigned), for the bench
/// that compares both in one process.
pub fn finalize_with(
    bytes: &[u8],
    step: &Step<'_>,
    signer: Option<&Signer>,
) -> Result<Vec<u8>, ProvenanceError> {
    let clean = xmp::strip_c2pa(bytes)?;
    let marked = xmp::mark(&clean, step.source)?;
    let Some(signer) = signer else {
        return Ok(marked);
    };
    let Some(mime) = c2pa_mime(&marked) else {
        return Ok(marked);
    };
    let parent = step
        .parent
        .filter(|p| xmp::has_c2pa(p))
        .and_then(|p| c2pa_mime(p).map(|m| (m, p)));
    Ok(signer.sign(&marked, mime, step, parent)?)
}

/// The mime type the C2PA SDK embeds into, for the formats adloc writes.
fn c2pa_mime(bytes: &[u8]) -> Option<&'static str> {
    match image::guess_format(bytes).ok()? {
        image::ImageFormat::Jpeg => Some("image/jpeg"),
        image::ImageFormat::Png => Some("image/png"),
        image::ImageFormat::WebP => Some("image/webp"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// C2PA signing.
//
// Why a process-wide signer rather than a parameter: the files are written
// from five places (settle, overlay, renditions, placements, composites)
// that share no context object below `run/`; the signer is resolved in
// `cli/` from the environment, checked, and installed once with
// [`install_signer`] before any write. Nothing below `cli` reads the
// key's path or bytes from the environment, and the key itself stays
// inside the c2pa signer (never in a `Debug`, an error or a log line).

/// A configured C2PA signer: the certificate chain and the key, checked.
pub struct Signer {
    inner: c2pa::BoxedSigner,
    /// Subject of the signing certificate, for the run summary.
    pub subject: String,
    /// The time-stamp authority every signature is stamped by (its URL
    /// without credentials), if one is configured.
    pub time_stamps: Option<String>,
    /// Parent ingredients already read, by their bytes' [`ParentKey`].
    parents: ParentCache,
}

/// What a cached parent ingredient is found by: the parent's length and
/// its xxh3-128. The parents are adloc's own masters, not adversarial
/// input, and a sha256 of each (1K) parent was itself about a ninth of
/// the signing (6 % of the bench's CPU samples against 53 %).
#[derive(Clone, Copy, PartialEq, Eq)]
struct ParentKey(usize, u128);

impl ParentKey {
    fn of(bytes: &[u8]) -> ParentKey {
        ParentKey(bytes.len(), twox_hash::XxHash3_128::oneshot(bytes))
    }
}

/// Parsed and validated `parentOf` ingredients, newest last. Every
/// rendition and placement of a master names the same parent, and reading
/// one (finding its manifest store, checking its signature and hash
/// binding) was 45 % of a derivative's signing cost (perf, 2026-12-07):
/// the same bytes give the same ingredient, so it is read once.
#[derive(Default)]
struct ParentCache(std::sync::Mutex<std::collections::VecDeque<(ParentKey, c2pa::Ingredient)>>);

impl ParentCache {
    /// Masters whose derivatives are being written at once stay well under
    /// this; an ingredient is a few KB (its manifest store, no pixels).
    const CAPACITY: usize = 64;

    fn get(&self, key: &ParentKey) -> Option<c2pa::Ingredient> {
        let cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.iter().find(|(k, _)| k == key).map(|(_, i)| i.clone())
    }

    fn put(&self, key: ParentKey, ingredient: c2pa::Ingredient) {
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.iter().any(|(k, _)| *k == key) {
            return;
        }
        if cache.len() == Self::CAPACITY {
            cache.pop_front();
        }
        cache.push_back((key, ingredient));
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Signer")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

static SIGNER: std::sync::OnceLock<Signer> = std::sync::OnceLock::new();

/// Make every later delivered write sign with `signer` (first call wins).
pub fn install_signer(signer: Signer) {
    let _ = SIGNER.set(signer);
}

/// The installed signer, for what `plan` says about it.
pub fn installed() -> Option<&'static Signer> {
    SIGNER.get()
}

/// Why a signer could not be configured, or a file could not be signed.
/// No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The certificate chain is unusable (does not parse, does not chain,
    /// has expired, lacks a signing usage).
    #[error("ADLOC_C2PA_CERT {path}: {detail}")]
    Certificate {
        /// The certificate file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The key does not parse or does not match the certificate (its
    /// bytes are not shown).
    #[error("ADLOC_C2PA_KEY {path}: {detail}")]
    Key {
        /// The key file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The time-stamp authority gave no usable token (its URL is shown
    /// without credentials).
    #[error("ADLOC_C2PA_TSA_URL {url}: no time stamp: {detail}")]
    TimeStamp {
        /// The TSA, as it may be printed.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The C2PA SDK refused to sign.
    #[error("C2PA signing failed: {0}")]
    Sign(String),
}

/// The signing algorithm for the leaf certificate's key (C2PA 2.2 §13.2
/// "Digital signatures": ES256/384/512, PS256/384/512, Ed25519).
fn algorithm_of(cert: &x509_parser::certificate::X509Certificate<'_>) -> Option<c2pa::SigningAlg> {
    let spki = &cert.tbs_certificate.subject_pki;
    match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => Some(c2pa::SigningAlg::Es256),
                Some("1.3.132.0.34") => Some(c2pa::SigningAlg::Es384),
                Some("1.3.132.0.35") => Some(c2pa::SigningAlg::Es512),
                _ => None,
            }
        }
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => Some(c2pa::SigningAlg::Ps256),
        "1.3.101.112" => Some(c2pa::SigningAlg::Ed25519),
        _ => None,
    }
}

/// Check a PEM certificate chain the way a C2PA validator will (C2PA 2.2
/// §14.5 "Certificate profile": the leaf is not a CA, has the
/// digitalSignature key usage and an extended key usage a claim signer
/// may use; every certificate is in its validity period; each is issued
/// by the next), and return the leaf's algorithm and subject.
fn check_chain(path: &str, pem: &[u8], now: i64) -> Result<(c2pa::SigningAlg, String), SignError> {
    let bad = |detail: String| SignError::Certificate {
        path: path.to_string(),
        detail,
    };
    let ders: Vec<Vec<u8>> = x509_parser::pem::Pem::iter_from_buffer(pem)
        .filter_map(|p| p.ok())
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect();
    if ders.is_empty() {
        return Err(bad("no PEM CERTIFICATE block".to_string()));
    }
    let mut certs = Vec::new();
    for (i, der) in ders.iter().enumerate() {
        let (_, c) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| bad(format!("certificate {} does not parse: {e}", i + 1)))?;
        certs.push(c);
    }
    for (i, c) in certs.iter().enumerate() {
        let v = c.validity();
        if now < v.not_before.timestamp() {
            return Err(bad(format!(
                "certificate {} ({}) is not valid before {}",
                i + 1,
                c.subject(),
                v.not_before
            )));
        }
        if now > v.not_after.timestamp() {
            return Err(bad(format!(
                "certificate {} ({}) expired on {}",
                i + 1,
                c.subject(),
                v.not_after
            )));
        }
        if let Some(next) = certs.get(i + 1)
            && c.issuer() != next.subject()
        {
            return Err(bad(format!(
                "does not chain: certificate {} is issued by {}, but certificate {} is {}",
                i + 1,
                c.issuer(),
                i + 2,
                next.subject()
            )));
        }
    }
    let leaf = &certs[0];
    if leaf.is_ca() {
        return Err(bad(format!(
            "the first certificate ({}) is a CA; a claim signer must be an end-entity certificate",
            leaf.subject()
        )));
    }
    match leaf.key_usage() {
        Ok(Some(ku)) if ku.value.digital_signature() => {}
        _ => {
            return Err(bad(format!(
                "the signing certificate ({}) lacks the digitalSignature key usage",
                leaf.subject()
            )));
        }
    }
    // id-kp-emailProtection, id-kp-documentSigning, C2PA claim signing.
    let eku_ok = match leaf.extended_key_usage() {
        Ok(Some(eku)) => {
            eku.value.email_protection
                || eku.value.other.iter().any(|o| {
                    matches!(
                        o.to_id_string().as_str(),
                        "1.3.6.1.5.5.7.3.36" | "1.3.6.1.4.1.62558.2.1"
                    )
                })
        }
        _ => false,
    };
    if !eku_ok {
        return Err(bad(format!(
            "the signing certificate ({}) has no extended key usage a C2PA claim signer may use (emailProtection, documentSigning or c2pa-kp-claimSigning)",
            leaf.subject()
        )));
    }
    let alg = algorithm_of(leaf).ok_or_else(|| {
        bad("the signing key is not ECDSA P-256/384/521, RSA or Ed25519".to_string())
    })?;
    Ok((alg, leaf.subject().to_string()))
}

impl Signer {
    /// A signer from the PEM certificate chain and private key (their
    /// paths are only for messages), checked: the chain as
    /// [`check_chain`] says, and one test signature read back valid, so a
    /// key that does not match the certificate is an input error before
    /// anything is bought.
    ///
    /// With `tsa`, every claim signature carries its RFC 3161 time stamp;
    /// one is asked for here first, so a TSA that does not answer, or
    /// answers with a token that does not verify, is an input error
    /// before anything is bought.
    pub fn from_pem(
        cert_path: &str,
        cert_pem: &[u8],
        key_path: &str,
        key_pem: &[u8],
        tsa: Option<TimeStampAuthority>,
    ) -> Result<Signer, SignError> {
        let now = jiff::Timestamp::now().as_second();
        let (alg, subject) = check_chain(cert_path, cert_pem, now)?;
        let key = c2pa::create_signer::from_keys(cert_pem, key_pem, alg, None).map_err(|e| {
            SignError::Key {
                path: key_path.to_string(),
                detail: format!("not a private key for the certificate's algorithm ({e})"),
            }
        })?;
        let (inner, time_stamps): (c2pa::BoxedSigner, _) = match tsa {
            None => (key, None),
            Some(tsa) => {
                tsa.stamp(b"adloc: time stamp authority check")
                    .map_err(|e| SignError::TimeStamp {
                        url: tsa.shown().to_string(),
                        detail: e.to_string(),
                    })?;
                let shown = tsa.shown().to_string();
                (Box::new(tsa::Stamped { key, tsa }), Some(shown))
            }
        };
        let signer = Signer {
            inner,
            subject,
            time_stamps,
            parents: ParentCache::default(),
        };
        // One signature read back: a key that is not the certificate's
        // signs fine but never verifies.
        let probe = tiny_png();
        let signed = signer
            .sign(&probe, "image/png", &Step::derived(Action::Resized), None)
            .map_err(|e| SignError::Key {
                path: key_path.to_string(),
                detail: format!("a test signature failed: {e}"),
            })?;
        let reader = c2pa::Reader::from_shared_context(&plain_reader())
            .with_stream("image/png", std::io::Cursor::new(signed))
            .map_err(|e| SignError::Key {
                path: key_path.to_string(),
                detail: format!("a test signature does not read back: {e}"),
            })?;
        if reader.validation_state() == c2pa::ValidationState::Invalid {
            let codes: Vec<String> = reader
                .validation_status()
                .unwrap_or_default()
                .iter()
                .map(|s| s.code().to_string())
                .collect();
            return Err(SignError::Key {
                path: key_path.to_string(),
                detail: format!(
                    "a test signature does not verify ({}): is this the certificate's key?",
                    codes.join(", ")
                ),
            });
        }
        Ok(signer)
    }

    /// `bytes` (already marked) with an embedded manifest whose actions
    /// say `step`, and `parent` (its mime type and bytes) as the
    /// `parentOf` ingredient.
    fn sign(
        &self,
        bytes: &[u8],
        mime: &str,
        step: &Step<'_>,
        parent: Option<(&str, &[u8])>,
    ) -> Result<Vec<u8>, SignError> {
        let sign_err = |e: c2pa::Error| SignError::Sign(e.to_string());
        // C2PA 2.2 §18.13.3 ("Actions"): the first action is
        // `c2pa.created` or `c2pa.opened`, and `opened` names the parentOf
        // ingredient; `c2pa.placed` names componentOf ingredients, which
        // typeset copy has none of, so a composite says `c2pa.edited` with
        // the composite source type.
        let mut actions = Vec::new();
        let mut created = serde_json::json!({
            "action": "c2pa.created",
            "digitalSourceType": step.source.iri(),
        });
        if let Some(model) = step.model {
            created["softwareAgent"] = serde_json::json!({ "name": model });
        }
        match (parent.is_some(), step.action) {
            (false, Action::Created) => actions.push(created),
            (true, Action::Created) => {
                // The vendor's own claim says `c2pa.created`; ours opened
                // its file and added the IPTC metadata.
                actions.push(opened());
                actions.push(serde_json::json!({ "action": "c2pa.edited.metadata" }));
            }
            (has_parent, action) => {
                if has_parent {
                    actions.push(opened());
                } else {
                    actions.push(serde_json::json!({
                        "action": "c2pa.created",
                        "digitalSourceType": step.source.iri(),
                    }));
                }
                let mut this = serde_json::json!({ "action": action.c2pa_label() });
                if matches!(action, Action::Edited | Action::Placed) {
                    this["action"] = "c2pa.edited".into();
                    this["digitalSourceType"] = step.source.iri().into();
                }
                if let Some(model) = step.model {
                    this["softwareAgent"] = serde_json::json!({ "name": model });
                }
                actions.push(this);
            }
        }
        let definition = serde_json::json!({
            "claim_generator_info": [{ "name": "adloc", "version": env!("CARGO_PKG_VERSION") }],
            "format": mime,
            "assertions": [{ "label": "c2pa.actions", "data": { "actions": actions } }],
        });
        let mut builder = c2pa::Builder::from_shared_context(&sign_context())
            .with_definition(definition)
            .map_err(sign_err)?;
        if let Some((pmime, pbytes)) = parent {
            let key = ParentKey::of(pbytes);
            let ingredient = match self.parents.get(&key) {
                Some(known) => known,
                None => {
                    let read = parent_ingredient(pmime, pbytes).map_err(sign_err)?;
                    self.parents.put(key, read.clone());
                    read
                }
            };
            builder.add_ingredient(ingredient);
        }
        let mut dest = std::io::Cursor::new(Vec::with_capacity(bytes.len() + 32 * 1024));
        builder
            .sign(
                self.inner.as_ref(),
                mime,
                &mut std::io::Cursor::new(bytes),
                &mut dest,
            )
            .map_err(sign_err)?;
        Ok(dest.into_inner())
    }
}

/// `pbytes` read as the `parentOf` ingredient: its manifest store found
/// and validated, its validation state recorded, as the SDK's
/// `add_ingredient_from_stream` does (it is that call, on a builder made
/// for it, so the ingredient is exactly the one the SDK would add).
fn parent_ingredient(pmime: &str, pbytes: &[u8]) -> c2pa::Result<c2pa::Ingredient> {
    let json = serde_json::json!({
        "title": "parent",
        "relationship": "parentOf",
        "label": "parent",
    })
    .to_string();
    let mut scratch = c2pa::Builder::from_shared_context(&sign_context());
    scratch
        .add_ingredient_from_stream(json, pmime, &mut std::io::Cursor::new(pbytes))
        .cloned()
}

/// The `c2pa.opened` action of the parent ingredient.
fn opened() -> serde_json::Value {
    serde_json::json!({
        "action": "c2pa.opened",
        "parameters": { "ingredientIds": ["parent"] }
    })
}

/// Settings every context starts from: no thumbnails (the SDK is built
/// without its image feature, and would warn on every context otherwise).
fn base_settings() -> c2pa::Result<c2pa::Settings> {
    c2pa::Settings::new().with_value("builder.thumbnail.enabled", false)
}

/// The context every signature is made in, built once (building one per
/// file was a measurable share of a small file's signing cost).
fn sign_context() -> std::sync::Arc<c2pa::Context> {
    static CTX: std::sync::OnceLock<std::sync::Arc<c2pa::Context>> = std::sync::OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = base_settings()
            .and_then(|s| c2pa::Context::new().with_settings(s))
            .unwrap_or_else(|_| c2pa::Context::new());
        std::sync::Arc::new(ctx)
    })
    .clone()
}

/// A reader context: trust against `anchors` (PEM) when given, otherwise
/// signature and binding checks only.
pub fn reader_context(anchors: Option<&str>) -> c2pa::Context {
    let settings = match anchors {
        Some(pem) => base_settings()
            .and_then(|s| s.with_value("trust.trust_anchors", pem.to_string()))
            .and_then(|s| s.with_value("verify.verify_trust", true)),
        None => base_settings().and_then(|s| s.with_value("verify.verify_trust", false)),
    };
    match settings.and_then(|s| c2pa::Context::new().with_settings(s)) {
        Ok(c) => c,
        Err(_) => c2pa::Context::new(),
    }
}

/// [`reader_context`] without anchors, built once.
fn plain_reader() -> std::sync::Arc<c2pa::Context> {
    static CTX: std::sync::OnceLock<std::sync::Arc<c2pa::Context>> = std::sync::OnceLock::new();
    CTX.get_or_init(|| std::sync::Arc::new(reader_context(None)))
        .clone()
}

/// A 1×1 PNG for the signer's self-test.
fn tiny_png() -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::new(1, 1));
    let mut out = std::io::Cursor::new(Vec::new());
    // Encoding one pixel in memory cannot fail.
    let _ = img.write_to(&mut out, image::ImageFormat::Png);
    out.into_inner()
}

// ---------------------------------------------------------------------------
// Reading provenance back (the manifest's `provenance` objects).

/// The provenance of a delivered file's `bytes`, with `vendor` the raw
/// bytes the vendor sent for its master when they carried a C2PA manifest
/// (kept under `.vendor/`).
pub fn inspect(bytes: &[u8], vendor: Option<&[u8]>) -> ProvenanceEntry {
    use sha2::Digest;
    let (c2pa, label) = match (xmp::has_c2pa(bytes), c2pa_mime(bytes)) {
        (true, Some(mime)) => {
            let label = c2pa::Reader::from_shared_context(&plain_reader())
                .with_stream(mime, std::io::Cursor::new(bytes))
                .ok()
                .and_then(|r| r.active_label().map(str::to_string));
            (C2paState::Signed, label)
        }
        _ => (C2paState::Unsigned, None),
    };
    let vendor_validation = vendor.map(|v| match c2pa_mime(v) {
        Some(mime) => match c2pa::Reader::from_shared_context(&plain_reader())
            .with_stream(mime, std::io::Cursor::new(v))
        {
            Ok(r) => state_name(r.validation_state()).to_string(),
            Err(_) => "invalid".to_string(),
        },
        None => "invalid".to_string(),
    });
    ProvenanceEntry {
        c2pa,
        label,
        digital_source_type: xmp::digital_source_type(bytes).unwrap_or_default(),
        vendor_manifest: vendor.is_some(),
        vendor_validation,
        vendor_sha256: vendor.map(|v| hex::encode(sha2::Sha256::digest(v))),
    }
}

/// The C2PA validation state as the manifest and `adloc verify` spell it.
pub fn state_name(s: c2pa::ValidationState) -> &'static str {
    match s {
        c2pa::ValidationState::Invalid => "invalid",
        c2pa::ValidationState::Valid => "valid",
        c2pa::ValidationState::Trusted => "trusted",
    }
}

/// An `inspect(path, vendor_path)` over the tree at `campaign_out` for
/// [`crate::manifest::attach_provenance`]: `None` for a file that cannot
/// be read. Vendor files are read once each.
pub fn inspector(
    campaign_out: &std::path::Path,
) -> impl FnMut(&str, &str) -> Option<ProvenanceEntry> + '_ {
    let mut vendors: std::collections::HashMap<String, Option<Vec<u8>>> =
        std::collections::HashMap::new();
    move |path, vendor_path| {
        let bytes = std::fs::read(campaign_out.join(path)).ok()?;
        let vendor = vendors
            .entry(vendor_path.to_string())
            .or_insert_with(|| super::vendor_bytes(campaign_out, vendor_path));
        Some(inspect(&bytes, vendor.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        let pki = adloc_emulator::pki::issue("unit CA", "unit signer", Default::default())
            .expect("test PKI");
        Signer::from_pem(
            "unit.pem",
            pki.chain_pem.as_bytes(),
            "unit.key",
            pki.key_pem.as_bytes(),
            None,
        )
        .expect("test signer")
    }

    fn sample(format: image::ImageFormat) -> Vec<u8> {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
        }));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode");
        out.into_inner()
    }

    #[test]
    fn the_header_walk_finds_a_manifest_store_in_every_format_and_none_once_stripped() {
        let signer = signer();
        for format in [
            image::ImageFormat::Jpeg,
            image::ImageFormat::Png,
            image::ImageFormat::WebP,
        ] {
            let plain = sample(format);
            assert!(!xmp::has_c2pa(&plain), "{format:?}: plain file");
            let step = Step::generated("gemini-3.1-flash-image", false);
            let signed = finalize_with(&plain, &step, Some(&signer)).expect("sign");
            assert!(xmp::has_c2pa(&signed), "{format:?}: signed file");
            // What the SDK reads agrees: the store is there and reads.
            let reader = c2pa::Reader::from_shared_context(&plain_reader())
                .with_stream(
                    c2pa_mime(&signed).expect("mime"),
                    std::io::Cursor::new(&signed),
                )
                .expect("the SDK reads the store");
            assert!(reader.active_label().is_some(), "{format:?}");
            let stripped = xmp::strip_c2pa(&signed).expect("strip");
            assert!(!xmp::has_c2pa(&stripped), "{format:?}: stripped file");
            // A file cut short is not a store and does not panic.
            for cut in [3, 20, signed.len() / 2] {
                let _ = xmp::has_c2pa(&signed[..cut]);
            }
        }
    }

    #[test]
    fn derivatives_of_one_parent_carry_the_same_parent_ingredient_read_once() {
        let signer = signer();
        let jpeg = sample(image::ImageFormat::Jpeg);
        let parent = finalize_with(&jpeg, &Step::generated("gpt-image-2", false), Some(&signer))
            .expect("parent");
        let ingredient_of = |bytes: &[u8]| {
            let reader = c2pa::Reader::from_shared_context(&plain_reader())
                .with_stream("image/jpeg", std::io::Cursor::new(bytes))
                .expect("reads");
            assert_ne!(reader.validation_state(), c2pa::ValidationState::Invalid);
            let active = reader.active_manifest().expect("active manifest");
            let parents: Vec<_> = active
                .ingredients()
                .iter()
                .filter(|i| i.relationship() == &c2pa::Relationship::ParentOf)
                .map(|i| {
                    (
                        i.active_manifest().map(str::to_string),
                        i.validation_status().is_some(),
                    )
                })
                .collect();
            parents
        };
        let first = finalize_with(
            &jpeg,
            &Step::derived(Action::Resized).with_parent(&parent),
            Some(&signer),
        )
        .expect("first derivative");
        let second = finalize_with(
            &jpeg,
            &Step::derived(Action::Cropped).with_parent(&parent),
            Some(&signer),
        )
        .expect("second derivative");
        let (a, b) = (ingredient_of(&first), ingredient_of(&second));
        assert_eq!(a.len(), 1, "one parentOf ingredient");
        assert!(a[0].0.is_some(), "the parent's own manifest is linked");
        assert_eq!(a, b, "the cached ingredient is the one first read");
        assert!(
            signer.parents.get(&ParentKey::of(&parent)).is_some(),
            "the parent was kept for the next derivative"
        );
    }
}
