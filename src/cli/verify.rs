//! `adloc verify CAMPAIGN [--out DIR|s3://…|gs://…]`: what a compliance
//! person runs before a launch. Reads `manifest.json` and every file it
//! lists, from the folder or straight from the bucket (no state and no
//! staging tree needed), checks each file's sha256, its IPTC source type, and,
//! where the manifest says `signed` or the file carries a C2PA manifest,
//! the manifest itself with the C2PA SDK (signature, hard binding,
//! ingredients; trust against `ADLOC_C2PA_TRUST_ANCHORS` when set). One
//! line per file and a summary; exit 0 only when every file verifies.

use sha2::{Digest, Sha256};

use super::{VerifyArgs, env};
use crate::assets::OutputTarget;
use crate::assets::provenance::{reader_context, state_name};
use crate::domain::{Error, ExitCode};
use crate::imaging::xmp;

/// One file's verdict.
struct Verdict {
    ok: bool,
    signed: bool,
    detail: String,
}

/// Check one delivered file against what the manifest lists for it.
fn check_file(
    bytes: &[u8],
    entry: &serde_json::Value,
    ctx: &std::sync::Arc<c2pa::Context>,
    trust: bool,
) -> Verdict {
    let fail = |detail: String| Verdict {
        ok: false,
        signed: false,
        detail,
    };
    let sha = hex::encode(Sha256::digest(bytes));
    if entry["sha256"].as_str() != Some(sha.as_str()) {
        return fail(format!(
            "sha256 {sha} is not the manifest's {}",
            entry["sha256"].as_str().unwrap_or("(none)")
        ));
    }
    let Some(source) = xmp::digital_source_type(bytes) else {
        return fail("no IPTC DigitalSourceType in the file's XMP".to_string());
    };
    let listed_signed = entry["provenance"]["c2pa"].as_str() == Some("signed");
    if !listed_signed && !xmp::has_c2pa(bytes) {
        return Verdict {
            ok: true,
            signed: false,
            detail: format!("unsigned; IPTC {}", short(&source)),
        };
    }
    let mime = match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg) => "image/jpeg",
        Ok(image::ImageFormat::Png) => "image/png",
        Ok(image::ImageFormat::WebP) => "image/webp",
        _ => return fail("not a JPEG, PNG or WebP file".to_string()),
    };
    let reader = match c2pa::Reader::from_shared_context(ctx)
        .with_stream(mime, std::io::Cursor::new(bytes))
    {
        Ok(r) => r,
        Err(e) => return fail(format!("C2PA manifest does not read: {e}")),
    };
    let state = reader.validation_state();
    let failures: Vec<String> = reader
        .validation_results()
        .and_then(|r| r.active_manifest())
        .map(|m| m.failure().iter().map(|s| s.code().to_string()).collect())
        .unwrap_or_default();
    let want = if trust {
        c2pa::ValidationState::Trusted
    } else {
        c2pa::ValidationState::Valid
    };
    let label = reader
        .active_label()
        .unwrap_or("(no active manifest)")
        .to_string();
    let adloc = reader
        .active_manifest()
        .and_then(|m| m.claim_generator_info.as_ref())
        .is_some_and(|g| g.iter().any(|i| i.name == "adloc"));
    let ingredients = reader
        .active_manifest()
        .map(|m| m.ingredients().len())
        .unwrap_or(0);
    let reached = state == want || state == c2pa::ValidationState::Trusted;
    if !reached || !failures.is_empty() || !adloc {
        return fail(format!(
            "C2PA {}{}{}",
            state_name(state),
            if failures.is_empty() {
                String::new()
            } else {
                format!(" ({})", failures.join(", "))
            },
            if adloc {
                ""
            } else {
                "; the active manifest is not adloc's"
            }
        ));
    }
    Verdict {
        ok: true,
        signed: true,
        detail: format!(
            "C2PA {} {label}, {ingredients} ingredient(s); IPTC {}",
            state_name(state),
            short(&source)
        ),
    }
}

/// The last segment of an IPTC IRI.
fn short(iri: &str) -> &str {
    iri.rsplit('/').next().unwrap_or(iri)
}

/// Where the delivered files are read from.
enum Source {
    /// `<out>/<campaign>/`.
    Folder(std::path::PathBuf),
    /// The published objects themselves, not the staging tree.
    Bucket(crate::assets::bucket::BucketReader),
}

impl Source {
    fn open(out: OutputTarget, name: &str) -> Result<Self, Error> {
        Ok(match out {
            OutputTarget::Local(dir) => Source::Folder(dir.join(name)),
            OutputTarget::Bucket(b) => Source::Bucket(
                crate::assets::bucket::BucketReader::open(&b, env::object_store_env(), name)
                    .map_err(Error::from)?,
            ),
        })
    }

    /// Where `rel` is, for messages.
    fn name(&self, rel: &str) -> String {
        match self {
            Source::Folder(root) => root.join(rel).display().to_string(),
            Source::Bucket(r) => r.url_of(rel),
        }
    }

    async fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        match self {
            Source::Folder(root) => tokio::fs::read(root.join(rel))
                .await
                .map_err(|e| e.to_string()),
            Source::Bucket(r) => r.read(rel).await.map_err(|e| e.to_string()),
        }
    }
}

/// `adloc verify`.
pub(super) async fn verify(a: VerifyArgs) -> Result<ExitCode, Error> {
    let out = super::output_target(&a.out)?;
    let name = super::campaign_name(&a.campaign)?;
    let anchors = env::c2pa_trust_anchors()?;
    let source = Source::open(out, &name)?;
    let manifest_file = crate::manifest::MANIFEST_FILE;
    let text = source.read(manifest_file).await.map_err(|e| {
        Error::Usage(format!(
            "{}: cannot read the manifest: {e}",
            source.name(manifest_file)
        ))
    })?;
    let m: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        Error::Usage(format!(
            "{}: not a manifest: {e}",
            source.name(manifest_file)
        ))
    })?;
    let mut entries: Vec<&serde_json::Value> = Vec::new();
    for asset in m["assets"].as_array().into_iter().flatten() {
        entries.push(asset);
        entries.extend(asset["renditions"].as_array().into_iter().flatten());
        entries.extend(asset["placements"].as_array().into_iter().flatten());
    }
    let ctx = std::sync::Arc::new(reader_context(anchors.as_deref()));
    let trust = anchors.is_some();
    let (mut ok, mut signed, mut failed) = (0usize, 0usize, 0usize);
    for entry in &entries {
        let rel = entry["path"].as_str().unwrap_or_default();
        let verdict = match source.read(rel).await {
            Ok(bytes) => {
                let (entry, ctx) = ((*entry).clone(), ctx.clone());
                tokio::task::spawn_blocking(move || check_file(&bytes, &entry, &ctx, trust))
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?
            }
            Err(e) => Verdict {
                ok: false,
                signed: false,
                detail: format!("cannot read: {e}"),
            },
        };
        if verdict.ok {
            ok += 1;
            signed += usize::from(verdict.signed);
            println!("ok    {rel}  {}", verdict.detail);
        } else {
            failed += 1;
            println!("FAIL  {rel}  {}", verdict.detail);
        }
    }
    println!(
        "{name}: {ok} of {} files verified ({signed} signed, {} unsigned), {failed} failed{}",
        entries.len(),
        ok - signed,
        if anchors.is_some() {
            "; trust: ADLOC_C2PA_TRUST_ANCHORS"
        } else {
            "; trust not checked (set ADLOC_C2PA_TRUST_ANCHORS)"
        }
    );
    Ok(if failed == 0 && !entries.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::PartialFailure
    })
}
