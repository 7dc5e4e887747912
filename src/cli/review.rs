//! `adloc review CAMPAIGN` (rebuild the review page and manifests from the
//! state), `adloc review import CAMPAIGN decisions.csv` and `adloc review
//! serve CAMPAIGN` (the page with actions, over HTTP).

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::domain::{Error, ExitCode, InputProblem};
use crate::review::{self, serve};
use crate::run;
use crate::store::Store;

use super::{
    ImportArgs, ReviewAction, ReviewArgs, ServeArgs, approve::print_decided, campaign_name, env,
    open_state,
};

pub(super) async fn review(a: ReviewArgs) -> Result<ExitCode, Error> {
    match a.action {
        Some(ReviewAction::Import(i)) => import(i).await,
        Some(ReviewAction::Serve(s)) => serve_cmd(s).await,
        None => {
            let Some(campaign) = a.campaign else {
                return Err(Error::Usage("name the campaign to review".into()));
            };
            let name = campaign_name(&campaign)?;
            let store = open_state(&a.at.state).await?;
            let p = run::publish(&store, &name, &a.at.out.join(&name)).await?;
            store.close().await;
            println!(
                "review page {} ({} asset(s), {} failure(s)); manifest {}",
                p.page_path.display(),
                p.manifest.assets.len(),
                p.manifest.failures.len(),
                p.manifest_path.display()
            );
            Ok(ExitCode::Success)
        }
    }
}

async fn import(a: ImportArgs) -> Result<ExitCode, Error> {
    let name = campaign_name(&a.campaign)?;
    let text = std::fs::read_to_string(&a.file).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => {
            Error::Input(crate::domain::InputErrors(vec![InputProblem::file(
                &a.file,
                "not UTF-8 text; save the spreadsheet as CSV UTF-8",
            )]))
        }
        _ => Error::io(&a.file, e),
    })?;
    let by = a.by.unwrap_or_else(env::reviewer);
    let (requests, problems) = review::parse_csv(&a.file, &text, &by);
    if requests.is_empty() && problems.is_empty() {
        return Err(Error::Input(crate::domain::InputErrors(vec![
            InputProblem::file(&a.file, "no decisions in the file (header only)"),
        ])));
    }
    let store = open_state(&a.at.state).await?;
    let d = run::decide(&store, &name, &a.at.out.join(&name), &requests, problems).await?;
    store.close().await;
    print_decided(&d, "imported");
    Ok(ExitCode::Success)
}

/// Publishing after a decision: the same as `adloc approve` does.
/// Rewrites the manifest and page after each decision; for a bucket
/// campaign, then uploads what changed (the manifest last), as a run
/// delivers.
struct Publisher {
    bucket: Option<(crate::assets::bucket::BucketUrl, crate::assets::StoreEnv)>,
}

#[async_trait::async_trait]
impl serve::Publish for Publisher {
    async fn publish(
        &self,
        store: &Store,
        campaign: &str,
        campaign_out: &Path,
    ) -> crate::domain::Result<()> {
        let published = run::publish(store, campaign, campaign_out).await?;
        let Some((bucket, env)) = self.bucket.clone() else {
            return Ok(());
        };
        // The upload's future is not `Send` (its stream's closures borrow
        // higher-ranked), so it runs on a blocking thread of its own, on
        // this runtime, instead of in the server's task.
        let (store, campaign, out) = (
            store.clone(),
            campaign.to_string(),
            campaign_out.to_path_buf(),
        );
        let checksums = published.manifest.checksums();
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            rt.block_on(crate::assets::publish(
                &store,
                &bucket,
                &env,
                &campaign,
                &out,
                &checksums,
                &|| {},
            ))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        Ok(())
    }
}

/// Who may use the server: anyone on a loopback address; elsewhere only
/// holders of a reviewer token, and without tokens the server does not
/// start (exit 2), before anything is opened.
fn access(listen: std::net::SocketAddr) -> Result<serve::Access, Error> {
    if listen.ip().is_loopback() {
        return Ok(serve::Access::Loopback {
            reviewer: env::reviewer(),
        });
    }
    match env::review_tokens() {
        None => Err(Error::Usage(format!(
            "--listen {listen} is not a loopback address: reviewers must log in, so set \
             ADLOC_REVIEW_TOKENS to a file of `token = \"name\"` lines (or ADLOC_REVIEW_TOKEN to one token), \
             or listen on 127.0.0.1"
        ))),
        Some(env::ReviewTokens::One(t)) => {
            let t = t.expose_secret();
            if t.len() < serve::MIN_TOKEN_LEN {
                return Err(Error::Usage(format!(
                    "ADLOC_REVIEW_TOKEN must be at least {} characters",
                    serve::MIN_TOKEN_LEN
                )));
            }
            Ok(serve::Access::Tokens(vec![serve::ReviewerToken::new(
                t, "reviewer",
            )]))
        }
        Some(env::ReviewTokens::File(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            serve::parse_tokens(&path, &text)
                .map(serve::Access::Tokens)
                .map_err(Error::Input)
        }
    }
}

async fn serve_cmd(a: ServeArgs) -> Result<ExitCode, Error> {
    let access = access(a.listen)?;
    let name = campaign_name(&a.campaign)?;
    let target = super::output_target(&a.out)?;
    let campaign_out = target.local_root(&a.state.local_dir()).join(&name);
    let bucket = match &target {
        crate::assets::OutputTarget::Local(_) => None,
        crate::assets::OutputTarget::Bucket(b) => {
            // The run staged every file it uploaded beside the state; the
            // server shows that copy (the bucket holds the same bytes).
            if !campaign_out.join(crate::manifest::MANIFEST_FILE).is_file() {
                return Err(Error::Usage(format!(
                    "the staged copy of `{name}` for {b} is not on this host ({}); serve it where it ran, with the same --state",
                    campaign_out.display()
                )));
            }
            Some((b.clone(), env::object_store_env()))
        }
    };
    let store = open_state(&a.state).await?;
    // A campaign only compared so far has its samples to show (/compare/).
    if !serve::has_run(&store, &name).await?
        && review::compare::sides(&store, &name).await?.is_empty()
    {
        store.close().await;
        return Err(Error::Usage(format!(
            "campaign `{name}` has no finished run in {} (run it first, with the same --state)",
            a.state
        )));
    }
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", a.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    // The first line of stdout names the address (a script or test that
    // asked for port 0 reads it from there).
    println!("review server: http://{addr}/review/ (campaign {name}; Ctrl-C stops)");
    let _ = std::io::stdout().flush();
    let cancel = super::run::cancel_on_signals("stopping the review server");
    let result = serve::serve(
        listener,
        serve::Config {
            store: store.clone(),
            campaign: name.clone(),
            campaign_out,
            access,
            publisher: Arc::new(Publisher { bucket }),
        },
        async move { cancel.cancelled().await },
    )
    .await;
    store.close().await;
    result.map(|()| ExitCode::Success)
}
