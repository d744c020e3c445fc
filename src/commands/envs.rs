//! Environments as a list with a lifetime: `envs` lists what the state backend records per
//! env, and what carries the `deploy:env` tag in the account (an environment whose state was
//! lost still shows); `sweep` destroys the ones that expired (`up --ttl`), that nobody brought
//! up for a while (`--older-than`), or (`--orphans`) that exist without state, never the
//! default env unless asked, carrying on past one that fails.

use super::Setup;
use crate::error::{Class, Error, Result};
use crate::options::Run;
use crate::options::{ApplyArgs, Format, Global, OutputArgs, VarArgs};
use crate::state::{Env, now_secs};
use crate::views::info::when;
use clap::Args;
use std::collections::BTreeMap;

/// Every environment the state backend records, with what its stacks' states say, and (with
/// `ctx`) every one whose tags are in the account.
pub async fn list(setup: &Setup, ctx: Option<&crate::aws::Ctx>) -> Result<Vec<Env>> {
    let mut envs: BTreeMap<String, Env> = BTreeMap::new();
    for (env, stack) in setup.store.list().await? {
        let st = setup.store.load(&stack, &env).await?;
        let e = envs.entry(env.clone()).or_insert_with(|| Env {
            env: env.clone(),
            state: true,
            ..Default::default()
        });
        e.stacks.push(stack);
        e.resources += st.resources.len();
        if let Some(m) = &st.meta {
            e.created = Some(e.created.map_or(m.created, |c| c.min(m.created)));
            if e.last_up.is_none_or(|u| m.updated > u) {
                e.last_up = Some(m.updated);
                e.by = Some(m.by.clone());
            }
            if m.branch.is_some() {
                e.branch = m.branch.clone();
            }
            if let Some(x) = m.expires() {
                e.expires = Some(e.expires.map_or(x, |y| y.max(x)));
            }
        }
    }
    if let Some(ctx) = ctx {
        for (env, stack) in tagged(ctx).await? {
            let e = envs.entry(env.clone()).or_insert_with(|| Env {
                env: env.clone(),
                ..Default::default()
            });
            *e.tagged.get_or_insert(0) += 1;
            if !e.stacks.contains(&stack) {
                e.stacks.push(stack);
            }
        }
        for e in envs.values_mut() {
            e.tagged.get_or_insert(0);
        }
    }
    Ok(envs.into_values().collect())
}

/// (env, stack) of every resource that carries deploy's tags, by the tagging API.
async fn tagged(ctx: &crate::aws::Ctx) -> Result<Vec<(String, String)>> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let mut out = Vec::new();
    let mut pages = ctx
        .tagging
        .get_resources()
        .tag_filters(TagFilter::builder().key("deploy:env").build())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| crate::aws::api_error("GetResources", &e))?;
        for m in page.resource_tag_mapping_list() {
            let tag = |k: &str| {
                m.tags()
                    .iter()
                    .find(|t| t.key() == k)
                    .map(|t| t.value().to_string())
            };
            if let (Some(env), Some(stack)) = (tag("deploy:env"), tag("deploy:stack")) {
                out.push((env, stack));
            }
        }
    }
    Ok(out)
}

/// Connects for the tag search, or says why the list is the state backend's alone.
async fn connect_for_tags(setup: &Setup, g: &Global) -> Option<crate::aws::Ctx> {
    match setup.connect(&g.aws).await {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            eprintln!(
                "note: environments found by their tags are not listed: {}",
                e.message
            );
            None
        }
    }
}

pub async fn envs(g: &Global, out: &OutputArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let ctx = connect_for_tags(&setup, g).await;
    let envs = list(&setup, ctx.as_ref()).await?;
    crate::views::info::envs(&envs, &setup.store_location(), out.format);
    Ok(())
}

/// Why `sweep` removes an environment, if it does: no state (found by its tags), its branch
/// lost its pull request (`open`: the open pull requests' branches and the repository), its
/// lifetime ran out, or nobody brought it up for longer than `older_than`.
fn why_swept(
    e: &Env,
    open: Option<&(std::collections::BTreeSet<String>, String)>,
    older_than: Option<std::time::Duration>,
    now: u64,
) -> Option<String> {
    if !e.state {
        return Some("no state: found by its tags".to_string());
    }
    if let (Some((open, repo)), Some(b)) = (open, &e.branch) {
        if !open.contains(b) {
            return Some(format!("branch {b} has no open pull request in {repo}"));
        }
    }
    if e.expires.is_some_and(|x| x <= now) {
        return Some(format!("expired {}", when(e.expires)));
    }
    let (d, u) = (older_than?, e.last_up?);
    (u + d.as_secs() <= now).then(|| {
        format!(
            "last up {} (more than {} ago)",
            when(Some(u)),
            humantime::format_duration(d)
        )
    })
}

pub async fn sweep(g: &Global, a: &SweepArgs) -> Result<()> {
    let (older_than, include_default, orphans, args, out) =
        (a.older_than, a.include_default, a.orphans, &a.apply, &a.out);
    let setup = Setup::new(g)?;
    // which branches still have an open pull request: asked first, so that an API that
    // fails (or a page of it) sweeps nothing
    let open = match a.closed_pull_requests {
        true => Some(open_pull_requests().await?),
        false => None,
    };
    let now = now_secs();
    let ctx = if orphans {
        Some(setup.connect(&g.aws).await?)
    } else {
        None
    };
    let doomed: Vec<(Env, String)> = list(&setup, ctx.as_ref())
        .await?
        .into_iter()
        .filter(|e| include_default || e.env != crate::manifest::DEFAULT_ENV)
        .filter_map(|e| why_swept(&e, open.as_ref(), older_than, now).map(|why| (e, why)))
        .collect();
    if doomed.is_empty() {
        let aged = if older_than.is_some() {
            " or aged past --older-than"
        } else {
            ""
        };
        let closed = if open.is_some() {
            " or lost its pull request"
        } else {
            ""
        };
        outln!("Nothing to sweep: no environment has expired{aged}{closed}.");
        return Ok(());
    }
    eprintln!("To sweep:");
    for (e, why) in &doomed {
        eprintln!("  {} ({}; {})", e.env, e.stacks.join(", "), why);
    }
    super::confirm(
        &format!("Destroy these {} environment(s)?", doomed.len()),
        args.yes,
    )
    .await?;
    let failed = destroy_each(g, &doomed, args, out.format).await;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::new(Class::Partial, format!("{} environment(s) could not be swept: {}", failed.len(), failed.join(", ")))
            .help("the others are gone; run `deploy sweep` again, or `deploy destroy --env NAME` for the one that failed"))
    }
}

/// The branches that have an open pull request, and the repository.
async fn open_pull_requests() -> Result<(std::collections::BTreeSet<String>, String)> {
    let repo = crate::github::Repo::from_env()?;
    let open = crate::github::open_pull_request_branches(&repo).await?;
    Ok((open, repo.repository))
}

/// Destroys each environment, carrying on past one that fails; the ones that failed.
async fn destroy_each(
    g: &Global,
    doomed: &[(Env, String)],
    args: &ApplyArgs,
    format: Format,
) -> Vec<String> {
    let mut failed = Vec::new();
    for (e, _) in doomed {
        let mut ge = g.clone();
        ge.env = e.env.clone();
        ge.env_given = true;
        let yes = ApplyArgs {
            yes: true,
            ..args.clone()
        };
        let all = super::destroy::DestroyArgs {
            stacks: vec![],
            vars: VarArgs::default(),
            apply: yes,
            out: crate::options::ReportArgs { format },
            // an expired env is no one's any more: executions still running there (a task
            // waiting for an answer that will not come) are stopped, or it would never go
            stop_executions: true,
            part: Default::default(),
        };
        match super::destroy::destroy(&ge, &all).await {
            Ok(()) => eprintln!("swept {}", e.env),
            Err(err) => {
                eprintln!("error: sweeping {}: {err}", e.env);
                failed.push(e.env.clone());
            }
        }
    }
    failed
}

/// `deploy envs`'s command line.
#[derive(Debug, Clone, Args)]
pub struct EnvsArgs {
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for EnvsArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        envs(g, &self.out).await
    }
}

/// `deploy sweep`'s command line.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Also sweep environments whose last `up` is older than this (e.g. 72h)
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Option<std::time::Duration>,
    /// The default env is never swept unless this is given
    #[arg(long)]
    pub include_default: bool,
    /// Also sweep environments that exist (by their tags) without any state
    #[arg(long)]
    pub orphans: bool,
    /// Also sweep the environments made by `up --env-from-branch` whose branch has no open
    /// pull request on GitHub (GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL as Actions sets
    /// them); others are left alone; if GitHub answers an error, nothing is swept
    #[arg(long)]
    pub closed_pull_requests: bool,
    #[command(flatten)]
    pub apply: ApplyArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for SweepArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        sweep(g, self).await
    }
}

/// `deploy env-name`'s command line.
#[derive(Debug, Clone, Args)]
pub struct EnvNameArgs {
    /// The branch name, e.g. feature/Add-Login or refs/heads/main
    pub branch: String,
}

#[async_trait::async_trait(?Send)]
impl Run for EnvNameArgs {
    async fn run(&self, _: &Global) -> Result<()> {
        outln!("{}", crate::manifest::env_for_branch(&self.branch));
        Ok(())
    }
}
