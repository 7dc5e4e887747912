//! `adloc review CAMPAIGN` (rebuild the review page and manifests from the
//! state) and `adloc review import CAMPAIGN decisions.csv`.

use crate::domain::{Error, ExitCode, InputProblem};
use crate::review;
use crate::run;

use super::{
    ImportArgs, ReviewAction, ReviewArgs, approve::print_decided, campaign_name, env, open_state,
};

pub(super) async fn review(a: ReviewArgs) -> Result<ExitCode, Error> {
    match a.action {
        Some(ReviewAction::Import(i)) => import(i).await,
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
