//! Output to a bucket: `--out s3://bucket/prefix` (S3 and S3-compatible
//! servers) or `gs://bucket/prefix` (Google Cloud Storage), through the
//! `object_store` crate.
//!
//! Decisions:
//! - A run writes its tree on disk exactly as for a local `--out`, into a
//!   staging tree beside the state file (`<state dir>/staging/<scheme>/<bucket>/<prefix>/`,
//!   [`OutputTarget::local_root`]), and then publishes it ([`publish`]).
//!   Renditions, composites and reruns work from the masters on disk, so
//!   the staging tree is the bucket's local mirror and is kept with the
//!   state file (as `out/` is for a local run).
//! - Every object is one PUT of the whole file: S3 and GCS make an object
//!   visible only once its upload is complete, so a reader never sees part
//!   of one. After the PUT it is read back and its sha256 compared with the
//!   staged file's (which, for every file the manifest lists, must also be
//!   the sha256 the state recorded); only then is it recorded in the state
//!   (`uploads`), and a rerun uploads only objects whose bytes changed.
//! - `manifest.json` goes last, after every other object has been read
//!   back: a reader who sees a manifest sees every object it lists. Objects
//!   whose files the run removed (a rendition no longer asked for) are
//!   deleted after the new manifest is up, so the old manifest stays true
//!   until it is replaced.
//! - Credentials are the standard variables (`AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//!   `AWS_ENDPOINT_URL`, …; `GOOGLE_SERVICE_ACCOUNT`, …), read by the CLI
//!   and handed down as secrets. An `AWS_ENDPOINT_URL` that says `http://`
//!   is taken at its word (as the AWS CLI does), so a local S3-compatible
//!   server needs no extra switch. Error messages are scrubbed of every
//!   credential value before they are shown.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::TEMP_MARKER;
use crate::store::Store;

/// Objects uploaded at once.
const PARALLEL_UPLOADS: usize = 8;

/// Which service a bucket URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `s3://`: Amazon S3 or an S3-compatible server (`AWS_ENDPOINT_URL`).
    S3,
    /// `gs://`: Google Cloud Storage.
    Gcs,
}

impl Scheme {
    /// The URL scheme.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Gcs => "gs",
        }
    }
}

/// A bucket and the prefix under which campaigns go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketUrl {
    /// The service.
    pub scheme: Scheme,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl BucketUrl {
    /// The object key of a campaign-relative path: `prefix/<campaign>/<rel>`.
    pub fn key(&self, campaign: &str, rel: &str) -> String {
        if self.prefix.is_empty() {
            format!("{campaign}/{rel}")
        } else {
            format!("{}/{campaign}/{rel}", self.prefix)
        }
    }

    /// The URL of a campaign-relative path: `s3://bucket/prefix/<campaign>/<rel>`.
    pub fn url_of(&self, campaign: &str, rel: &str) -> String {
        format!(
            "{}://{}/{}",
            self.scheme.as_str(),
            self.bucket,
            self.key(campaign, rel)
        )
    }
}

impl fmt::Display for BucketUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// Where a run's output goes: `--out`, parsed before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// A folder: assets go to `<folder>/<campaign>/`, written atomically.
    Local(PathBuf),
    /// A bucket: assets go to `prefix/<campaign>/…`, staged on disk first.
    Bucket(BucketUrl),
}

impl Default for OutputTarget {
    fn default() -> Self {
        OutputTarget::Local(PathBuf::from("out"))
    }
}

impl fmt::Display for OutputTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputTarget::Local(p) => write!(f, "{}", p.display()),
            OutputTarget::Bucket(b) => b.fmt(f),
        }
    }
}

/// Is `b` a bucket name both services accept (3–63 of `a-z 0-9 . - _`,
/// starting and ending with a letter or digit; `_` for GCS only)?
fn valid_bucket(scheme: Scheme, b: &str) -> bool {
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len())
        && ends_ok(b.chars().next())
        && ends_ok(b.chars().last())
        && b.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '.'
                || c == '-'
                || (c == '_' && scheme == Scheme::Gcs)
        })
}

impl FromStr for OutputTarget {
    type Err = String;

    /// `s3://bucket[/prefix]`, `gs://bucket[/prefix]`, or a local path.
    /// The message of a bad URL never repeats a `user:secret@` part.
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((scheme, rest)) = s.split_once("://") else {
            if s.is_empty() {
                return Err("--out must not be empty".into());
            }
            return Ok(OutputTarget::Local(PathBuf::from(s)));
        };
        let scheme = match scheme {
            "s3" => Scheme::S3,
            "gs" => Scheme::Gcs,
            other => {
                return Err(format!(
                    "--out `{other}://…` is not supported: use a folder, s3://bucket/prefix or gs://bucket/prefix"
                ));
            }
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.contains('@') || bucket.contains(':') {
            return Err(format!(
                "--out {}://…: credentials do not go in the URL; set them in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or GOOGLE_SERVICE_ACCOUNT)",
                scheme.as_str()
            ));
        }
        if !valid_bucket(scheme, bucket) {
            return Err(format!(
                "--out {s}: `{bucket}` is not a bucket name (3–63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit)"
            ));
        }
        if prefix.contains(['?', '#']) {
            return Err(format!(
                "--out {s}: a bucket URL takes no query or fragment"
            ));
        }
        let prefix = prefix.trim_matches('/');
        let bad_part = |seg: &str| seg.is_empty() || seg == "." || seg == "..";
        if !prefix.is_empty()
            && (prefix.split('/').any(bad_part) || ObjectPath::parse(prefix).is_err())
        {
            return Err(format!(
                "--out {s}: the prefix `{prefix}` must be `/`-separated names without empty, `.` or `..` parts"
            ));
        }
        Ok(OutputTarget::Bucket(BucketUrl {
            scheme,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }))
    }
}

impl OutputTarget {
    /// The folder on disk a run writes `<campaign>/…` into: the output
    /// folder itself, or for a bucket its staging tree beside the state
    /// file (`state_dir`).
    pub fn local_root(&self, state_dir: &Path) -> PathBuf {
        match self {
            OutputTarget::Local(p) => p.clone(),
            OutputTarget::Bucket(b) => {
                let mut p = state_dir
                    .join("staging")
                    .join(b.scheme.as_str())
                    .join(&b.bucket);
                for seg in b.prefix.split('/').filter(|s| !s.is_empty()) {
                    p.push(seg);
                }
                p
            }
        }
    }
}

/// Environment variables the object store may use (credentials, region,
/// endpoint), values kept secret. The CLI fills it from the environment.
#[derive(Clone, Default)]
pub struct StoreEnv(pub Vec<(String, SecretString)>);

impl fmt::Debug for StoreEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: the values are credentials.
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl StoreEnv {
    /// `text` with every credential-looking value replaced by `***`.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (_, v) in &self.0 {
            let v = v.expose_secret();
            // Short values (a region, `true`) are not secrets and would
            // mangle the message.
            if v.len() >= 6 && !v.starts_with("http") {
                out = out.replace(v, "***");
            }
        }
        out
    }
}

/// Why publishing to a bucket failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The client could not be set up (bad or missing configuration).
    #[error("cannot use {target}: {detail}")]
    Setup {
        /// The bucket URL.
        target: String,
        /// What the client said, scrubbed of credentials.
        detail: String,
    },
    /// An object could not be put, read back or deleted.
    #[error("{action} {url}: {detail}")]
    Object {
        /// `upload`, `read back`, `delete`.
        action: &'static str,
        /// The object's URL.
        url: String,
        /// What the store said, scrubbed of credentials.
        detail: String,
    },
    /// The bytes read back are not the bytes uploaded.
    #[error("{url}: read back with sha256 {got}, uploaded {want}; the object is not trusted")]
    Checksum {
        /// The object's URL.
        url: String,
        /// sha256 of what was read back.
        got: String,
        /// sha256 of the staged file.
        want: String,
    },
    /// A staged file is not what the state recorded for it.
    #[error(
        "{path}: the staged file has sha256 {got}, the state recorded {want}; refusing to publish it"
    )]
    Staged {
        /// The staged file.
        path: PathBuf,
        /// Its sha256.
        got: String,
        /// What the manifest (from the state) lists.
        want: String,
    },
    /// The staging tree could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The state could not record an upload.
    #[error(transparent)]
    State(#[from] crate::domain::Error),
}

impl From<UploadError> for crate::domain::Error {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::State(e) => e,
            other => crate::domain::Error::Upload(other.to_string()),
        }
    }
}

/// What publishing did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Objects put (and read back), the manifest included.
    pub uploaded: usize,
    /// Objects already in the bucket with the same bytes.
    pub unchanged: usize,
    /// Objects deleted because their files are gone.
    pub deleted: usize,
    /// The manifest's URL.
    pub manifest_url: String,
}

/// A client for the bucket, configured from `env` and bounded in time.
fn connect(bucket: &BucketUrl, env: &StoreEnv) -> Result<Arc<dyn ObjectStore>, UploadError> {
    let setup = |e: object_store::Error| UploadError::Setup {
        target: bucket.to_string(),
        detail: env.scrub(&e.to_string()),
    };
    // Bounded: a dead endpoint fails the run in about a minute, not hours.
    let retry = RetryConfig {
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    };
    let client = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(120));
    match bucket.scheme {
        Scheme::S3 => {
            let mut b = object_store::aws::AmazonS3Builder::new();
            let mut plain_http = false;
            for (k, v) in &env.0 {
                if !k.starts_with("AWS_") {
                    continue;
                }
                if let Ok(key) = k
                    .to_ascii_lowercase()
                    .parse::<object_store::aws::AmazonS3ConfigKey>()
                {
                    if matches!(
                        key,
                        object_store::aws::AmazonS3ConfigKey::Endpoint
                            | object_store::aws::AmazonS3ConfigKey::S3Endpoint
                    ) && v.expose_secret().starts_with("http://")
                    {
                        plain_http = true;
                    }
                    b = b.with_config(key, v.expose_secret());
                }
            }
            let client = if plain_http {
                client.with_allow_http(true)
            } else {
                client
            };
            let store = b
                .with_client_options(client)
                .with_retry(retry)
                .with_bucket_name(&bucket.bucket)
                .build()
                .map_err(setup)?;
            Ok(Arc::new(store))
        }
        Scheme::Gcs => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::new();
            for (k, v) in &env.0 {
                if !k.starts_with("GOOGLE_") {
                    continue;
                }
                if let Ok(key) = k
                    .to_ascii_lowercase()
                    .parse::<object_store::gcp::GoogleConfigKey>()
                {
                    b = b.with_config(key, v.expose_secret());
                }
            }
            let store = b
                .with_client_options(client)
                .with_retry(retry)
                .with_bucket_name(&bucket.bucket)
                .build()
                .map_err(setup)?;
            Ok(Arc::new(store))
        }
    }
}

/// Every file of the staging tree but temporaries, as campaign-relative
/// `/`-separated paths, sorted.
fn staged_files(root: &Path) -> Result<Vec<String>, UploadError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| UploadError::Io { path: p, source }
    };
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let ty = entry.file_type().map_err(io(&path))?;
            if ty.is_dir() {
                // The vendors' raw bytes stay beside the state: they are
                // kept, never delivered (issue 24).
                if dir == root && entry.file_name() == super::VENDOR_DIR {
                    continue;
                }
                stack.push(path);
                continue;
            }
            if !ty.is_file() || entry.file_name().to_string_lossy().contains(TEMP_MARKER) {
                continue;
            }
            let rel = path.strip_prefix(root).map_err(|_| UploadError::Io {
                path: path.clone(),
                source: std::io::Error::other("outside the staging tree"),
            })?;
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    out.sort();
    Ok(out)
}

/// The content type of an output file, by extension.
fn content_type(rel: &str) -> &'static str {
    match rel
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("json") => "application/json",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        _ => "application/octet-stream",
    }
}

/// What one publish needs, shared by the uploads in flight.
struct Ctx<'a> {
    os: Arc<dyn ObjectStore>,
    bucket: &'a BucketUrl,
    env: &'a StoreEnv,
    campaign: &'a str,
}

impl Ctx<'_> {
    fn object(&self, rel: &str) -> Result<ObjectPath, UploadError> {
        let key = self.bucket.key(self.campaign, rel);
        ObjectPath::parse(&key).map_err(|e| UploadError::Object {
            action: "name",
            url: self.bucket.url_of(self.campaign, rel),
            detail: e.to_string(),
        })
    }

    fn failed(&self, action: &'static str, rel: &str, e: object_store::Error) -> UploadError {
        UploadError::Object {
            action,
            url: self.bucket.url_of(self.campaign, rel),
            detail: self.env.scrub(&e.to_string()),
        }
    }

    /// The whole object at `rel`.
    async fn get(&self, action: &'static str, rel: &str) -> Result<Vec<u8>, UploadError> {
        let path = self.object(rel)?;
        let bytes = self
            .os
            .get(&path)
            .await
            .map_err(|e| self.failed(action, rel, e))?
            .bytes()
            .await
            .map_err(|e| self.failed(action, rel, e))?;
        Ok(bytes.to_vec())
    }

    /// Put `bytes` at `rel` whole, read it back, and check its sha256.
    async fn put_verified(&self, rel: &str, bytes: Vec<u8>, sha: &str) -> Result<(), UploadError> {
        let path = self.object(rel)?;
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            AttributeValue::from(content_type(rel)),
        );
        // Lets any reader check an object without the manifest.
        attributes.insert(
            Attribute::Metadata("sha256".into()),
            AttributeValue::from(sha.to_string()),
        );
        let opts = PutOptions {
            mode: PutMode::Overwrite,
            attributes,
            ..PutOptions::default()
        };
        self.os
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
            .map_err(|e| self.failed("upload", rel, e))?;
        let back = self.get("read back", rel).await?;
        let got = hex::encode(Sha256::digest(&back));
        if got != sha {
            return Err(UploadError::Checksum {
                url: self.bucket.url_of(self.campaign, rel),
                got,
                want: sha.to_string(),
            });
        }
        Ok(())
    }
}

/// Read a staged file and its sha256, checked against what the state
/// recorded when the manifest lists it.
async fn read_staged(
    root: &Path,
    rel: &str,
    expected: &HashMap<String, String>,
) -> Result<(Vec<u8>, String), UploadError> {
    let path = root.join(rel);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|source| UploadError::Io {
            path: path.clone(),
            source,
        })?;
    let sha = hex::encode(Sha256::digest(&bytes));
    if let Some(want) = expected.get(rel)
        && *want != sha
    {
        return Err(UploadError::Staged {
            path,
            got: sha,
            want: want.clone(),
        });
    }
    Ok((bytes, sha))
}

/// Publish a campaign's staged tree (`campaign_out`) to `bucket`: every
/// changed object uploaded and read back, the manifest last, then objects
/// of files that are gone deleted. `expected` maps the paths the manifest
/// lists to the sha256 the state recorded. `before_manifest` runs between
/// the last object and the manifest (the kill tests' crash point).
pub async fn publish(
    state: &Store,
    bucket: &BucketUrl,
    env: &StoreEnv,
    campaign: &str,
    campaign_out: &Path,
    expected: &HashMap<String, String>,
    before_manifest: &(dyn Fn() + Sync),
) -> Result<Published, UploadError> {
    const MANIFEST: &str = "manifest.json";
    let target = bucket.to_string();
    let ctx = Ctx {
        os: connect(bucket, env)?,
        bucket,
        env,
        campaign,
    };
    let files = staged_files(campaign_out)?;
    let recorded = state.uploads(&target, campaign).await?;
    let objects: Vec<&String> = files.iter().filter(|f| *f != MANIFEST).collect();

    let results: Vec<bool> = futures_util::stream::iter(objects)
        .map(|rel| {
            let ctx = &ctx;
            let recorded = &recorded;
            let target = &target;
            async move {
                let (bytes, sha) = read_staged(campaign_out, rel, expected).await?;
                if recorded.get(rel.as_str()) == Some(&sha) {
                    return Ok::<bool, UploadError>(false);
                }
                let len = bytes.len() as u64;
                ctx.put_verified(rel, bytes, &sha).await?;
                state
                    .record_upload(target, campaign, rel, &sha, len)
                    .await?;
                Ok(true)
            }
        })
        .buffer_unordered(PARALLEL_UPLOADS)
        .try_collect()
        .await?;
    let mut report = Published {
        uploaded: results.iter().filter(|u| **u).count(),
        unchanged: results.iter().filter(|u| !**u).count(),
        deleted: 0,
        manifest_url: bucket.url_of(campaign, MANIFEST),
    };

    before_manifest();
    // The manifest changes every run (its time of writing): always put.
    let (bytes, sha) = read_staged(campaign_out, MANIFEST, &HashMap::new()).await?;
    let len = bytes.len() as u64;
    ctx.put_verified(MANIFEST, bytes, &sha).await?;
    state
        .record_upload(&target, campaign, MANIFEST, &sha, len)
        .await?;
    report.uploaded += 1;

    // Gone from the tree (a rendition no longer asked for): gone from the
    // bucket, now that no manifest lists it.
    let present: BTreeMap<&str, ()> = files.iter().map(|f| (f.as_str(), ())).collect();
    for rel in recorded.keys() {
        if present.contains_key(rel.as_str()) {
            continue;
        }
        let path = ctx.object(rel)?;
        match ctx.os.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(ctx.failed("delete", rel, e)),
        }
        state.forget_upload(&target, campaign, rel).await?;
        report.deleted += 1;
    }
    Ok(report)
}

/// Reads a published campaign's objects with no state and no staging
/// tree: what `adloc verify --out s3://…` checks is what is in the bucket.
pub struct BucketReader {
    os: Arc<dyn ObjectStore>,
    bucket: BucketUrl,
    env: StoreEnv,
    campaign: String,
}

impl BucketReader {
    /// A reader of `campaign`'s objects under `bucket`, with the
    /// credentials in `env`.
    pub fn open(bucket: &BucketUrl, env: StoreEnv, campaign: &str) -> Result<Self, UploadError> {
        Ok(BucketReader {
            os: connect(bucket, &env)?,
            bucket: bucket.clone(),
            env,
            campaign: campaign.to_string(),
        })
    }

    /// The URL of the object at campaign-relative `rel`.
    pub fn url_of(&self, rel: &str) -> String {
        self.bucket.url_of(&self.campaign, rel)
    }

    /// The whole object at campaign-relative `rel`.
    pub async fn read(&self, rel: &str) -> Result<Vec<u8>, UploadError> {
        Ctx {
            os: self.os.clone(),
            bucket: &self.bucket,
            env: &self.env,
            campaign: &self.campaign,
        }
        .get("read", rel)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(s: &str) -> BucketUrl {
        match s.parse::<OutputTarget>() {
            Ok(OutputTarget::Bucket(b)) => b,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn bucket_urls_parse_into_scheme_bucket_and_prefix() {
        let b = bucket("s3://ads-out/nightly/2026/");
        assert_eq!((b.scheme, b.bucket.as_str()), (Scheme::S3, "ads-out"));
        assert_eq!(b.prefix, "nightly/2026");
        assert_eq!(
            b.url_of("spring", "manifest.json"),
            "s3://ads-out/nightly/2026/spring/manifest.json"
        );
        let b = bucket("gs://ads_out");
        assert_eq!((b.scheme, b.prefix.as_str()), (Scheme::Gcs, ""));
        assert_eq!(
            b.key("spring", "de-DE/hero/r1.png"),
            "spring/de-DE/hero/r1.png"
        );
        assert_eq!(
            "out/x".parse::<OutputTarget>(),
            Ok(OutputTarget::Local(PathBuf::from("out/x")))
        );
    }

    #[test]
    fn bad_bucket_urls_are_refused_without_repeating_credentials() {
        for bad in [
            "s3://",
            "s3://A_B",
            "s3://ab",
            "ftp://host/x",
            "s3://b-1/a//b",
            "s3://b-1/../x",
            "s3://b-1/x?versionId=1",
        ] {
            assert!(bad.parse::<OutputTarget>().is_err(), "{bad}");
        }
        let e = "s3://AKIA:hunter2secret@bucket/x"
            .parse::<OutputTarget>()
            .unwrap_err();
        assert!(!e.contains("hunter2secret"), "{e}");
    }

    #[test]
    fn the_staging_tree_sits_beside_the_state_file() {
        let t: OutputTarget = "s3://ads-out/nightly/x".parse().unwrap();
        assert_eq!(
            t.local_root(Path::new(".adloc")),
            PathBuf::from(".adloc/staging/s3/ads-out/nightly/x")
        );
    }

    #[test]
    fn credentials_are_scrubbed_from_messages() {
        let env = StoreEnv(vec![
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                SecretString::from("s3cr3t-value"),
            ),
            ("AWS_REGION".into(), SecretString::from("eu")),
        ]);
        assert_eq!(
            env.scrub("signature for s3cr3t-value failed in eu"),
            "signature for *** failed in eu"
        );
        assert!(!format!("{env:?}").contains("s3cr3t"));
    }
}
