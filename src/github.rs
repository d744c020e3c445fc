//! The one thing deploy asks GitHub: which pull requests are open, and from which branches
//! (`GET /repos/{owner}/{repo}/pulls?state=open`, every page through the `Link` header), with
//! the settings GitHub Actions gives every job: `GITHUB_TOKEN`, `GITHUB_REPOSITORY`,
//! `GITHUB_API_URL`. Any error, or any page that fails, is an error: never a partial answer.

use crate::error::{Error, Result};
use http_body_util::BodyExt;
use std::collections::BTreeSet;
use std::time::Duration;

/// Where to ask and as whom.
pub struct Repo {
    pub api: String,
    pub repository: String,
    pub token: String,
}

impl Repo {
    /// From the environment, as GitHub Actions sets it.
    pub fn from_env() -> Result<Repo> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let repository = var("GITHUB_REPOSITORY").ok_or_else(|| {
            Error::user("GITHUB_REPOSITORY is not set: which repository's pull requests?")
                .help("GitHub Actions sets it; elsewhere: GITHUB_REPOSITORY=owner/name")
        })?;
        let token = var("GITHUB_TOKEN").ok_or_else(|| {
            Error::user("GITHUB_TOKEN is not set: GitHub's API needs it to list pull requests")
                .help("in a workflow: env: GITHUB_TOKEN: ${{ github.token }} (with `pull-requests: read`)")
        })?;
        let api = var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        Ok(Repo {
            api: api.trim_end_matches('/').to_string(),
            repository,
            token,
        })
    }
}

/// The `next` URL of a `Link` header, if any.
fn next_page(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// The head branches of every open pull request.
pub async fn open_pull_request_branches(repo: &Repo) -> Result<BTreeSet<String>> {
    let client = client()?;
    let mut url = format!(
        "{}/repos/{}/pulls?state=open&per_page=100",
        repo.api, repo.repository
    );
    let mut branches = BTreeSet::new();
    for page in 1.. {
        let failed = |why: String| {
            Error::aws(format!(
                "GitHub's API could not list the open pull requests of {} (page {page}): {why}; nothing was swept",
                repo.repository
            ))
            .at(url.clone())
        };
        let (status, link, body) = get(&client, &url, repo, &failed).await?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_default();
            let e = failed(format!("HTTP {status} {message}").trim_end().to_string());
            return Err(refused(status.as_u16(), e));
        }
        let pulls: Vec<serde_json::Value> = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("not a list of pull requests: {e}")))?;
        for p in &pulls {
            let branch = p["head"]["ref"]
                .as_str()
                .ok_or_else(|| failed("a pull request without head.ref".into()))?;
            branches.insert(branch.to_string());
        }
        match link.as_deref().and_then(next_page) {
            Some(next) => url = next,
            None => break,
        }
    }
    Ok(branches)
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

fn client() -> Result<Client> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| Error::internal(format!("TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, http_body_util::Empty<bytes::Bytes>>(connector),
    )
}

/// One page of the API: status, the `link` header, the body.
async fn get(
    client: &Client,
    url: &str,
    repo: &Repo,
    failed: &dyn Fn(String) -> Error,
) -> Result<(hyper::StatusCode, Option<String>, bytes::Bytes)> {
    let req = hyper::Request::get(url)
        .header("accept", "application/vnd.github+json")
        .header("authorization", format!("Bearer {}", repo.token))
        .header("user-agent", concat!("deploy/", env!("CARGO_PKG_VERSION")))
        .header("x-github-api-version", "2022-11-28")
        .body(http_body_util::Empty::new())
        .map_err(|e| failed(e.to_string()))?;
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| failed("no answer within 30 s".into()))?
        .map_err(|e| failed(e.to_string()))?;
    let status = resp.status();
    let link = resp
        .headers()
        .get("link")
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| failed(e.to_string()))?
        .to_bytes();
    Ok((status, link, body))
}

/// What to do about a refusal, by its status.
fn refused(status: u16, e: Error) -> Error {
    match status {
        401 | 403 => e.help("check GITHUB_TOKEN and that the job may read pull requests (permissions: pull-requests: read)"),
        404 => e.help("check GITHUB_REPOSITORY (owner/name) and GITHUB_API_URL"),
        _ => e.help("run the sweep again later"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let link = r#"<https://api.github.com/repositories/1/pulls?state=open&page=2>; rel="next", <https://api.github.com/repositories/1/pulls?state=open&page=5>; rel="last""#;
        assert_eq!(
            next_page(link).as_deref(),
            Some("https://api.github.com/repositories/1/pulls?state=open&page=2")
        );
        let last = r#"<https://x/pulls?page=1>; rel="prev", <https://x/pulls?page=1>; rel="first""#;
        assert_eq!(next_page(last), None);
    }
}
