//! One module per command family; shared set-up lives here.

pub mod cost;
pub mod deploy;
pub mod destroy;
pub mod envs;
pub mod graph;
pub mod info;
pub mod probe;
pub mod rollout;
pub mod scenarios;
mod stages;
pub mod state;
pub mod test;
pub mod validate;
pub mod workflow;

use crate::aws::Ctx;
use crate::error::{Error, Result};
use crate::manifest::{Project, Stack, VarInputs};
use crate::options::{Global, Selection, VarArgs};
use crate::state::{Location, StackState, Store};
use std::io::{BufRead, IsTerminal, Write};

pub struct Setup {
    pub project: Project,
    pub store: Store,
    pub env: String,
    pub lock_timeout: std::time::Duration,
}

/// Where state lives: --state / DEPLOY_STATE, else --state-dir / DEPLOY_STATE_DIR, else the
/// project file's `[state] url` (deploy.toml, relative folders from the project root), else
/// `<project>/.deploy/state`.
fn state_location(g: &Global, project: &Project) -> Result<Location> {
    if let Some(url) = &g.state {
        return Location::parse(url);
    }
    if let Some(dir) = &g.state_dir {
        return Ok(Location::Dir(dir.clone()));
    }
    if let Some(url) = project_file(project)?.and_then(|s| s.url) {
        return match Location::parse(&url)? {
            Location::Dir(d) if d.is_relative() => Ok(Location::Dir(project.root.join(d))),
            other => Ok(other),
        };
    }
    Ok(Location::Dir(project.root.join(".deploy").join("state")))
}

/// The `[state]` section of the project file (deploy.toml), if there is one.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StateSection {
    url: Option<String>,
    /// How long an S3 lock outlives its holder's last renewal (e.g. "2m").
    lock_lease: Option<String>,
}

fn project_file(project: &Project) -> Result<Option<StateSection>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ProjectFile {
        state: Option<StateSection>,
    }
    let Ok(text) = std::fs::read_to_string(project.root.join("deploy.toml")) else {
        return Ok(None);
    };
    let line_of = |at: Option<std::ops::Range<usize>>| {
        at.map(|s| text[..s.start].matches('\n').count() + 1)
            .unwrap_or(1)
    };
    let parsed: ProjectFile = toml::from_str(&text).map_err(|e| {
        Error::user(format!("invalid project file: {}", e.message().trim()))
            .at(format!("deploy.toml:{}", line_of(e.span())))
    })?;
    Ok(parsed.state)
}

/// How long an S3 lock outlives its holder's last renewal: --lock-lease / DEPLOY_LOCK_LEASE,
/// else the project file's `[state] lock_lease`, else 2 minutes.
fn lock_lease(g: &Global, project: &Project) -> Result<std::time::Duration> {
    if let Some(d) = g.lock_lease {
        return Ok(d);
    }
    match project_file(project)?.and_then(|s| s.lock_lease) {
        Some(text) => humantime::parse_duration(&text).map_err(|e| {
            Error::user(format!("invalid [state] lock_lease {text:?}: {e}"))
                .at("deploy.toml")
                .help("a duration such as 2m or 90s")
        }),
        None => Ok(std::time::Duration::from_secs(120)),
    }
}

impl Setup {
    pub fn new(g: &Global) -> Result<Setup> {
        crate::manifest::check_env(&g.env)?;
        let project = Project::discover(g.project.clone())?;
        let location = state_location(g, &project)?;
        let store = Store::open(location, &g.aws, lock_lease(g, &project)?);
        Ok(Setup {
            project,
            store,
            env: g.env.clone(),
            lock_timeout: g.lock_timeout,
        })
    }

    pub fn store_location(&self) -> String {
        self.store.describe()
    }

    /// Runs `work` holding the locks of `stacks` (taken at once, all or none, waiting up to
    /// --lock-timeout) and releases them when it ends, however it ends: releasing is an
    /// awaited step of the run, never left to Drop. A SIGINT or SIGTERM (or a lock taken over)
    /// stops it: nothing new starts, what is in flight gets `interrupt::GRACE`, then the locks
    /// are released all the same.
    pub async fn locked<T>(
        &self,
        stacks: &[String],
        command: &str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        crate::interrupt::watch();
        let locks = self
            .store
            .lock_all(stacks, &self.env, command, self.lock_timeout)
            .await?;
        let done = crate::interrupt::bounded(work).await.unwrap_or_else(|| {
            Err(Error::new(
                crate::error::Class::Interrupted,
                format!(
                    "interrupted: the operations still in flight after {} s were cut off",
                    crate::interrupt::GRACE.as_secs()
                ),
            )
            .help("what was started is recorded (a create whose answer did not come, as pending): run the same command again to finish, or `deploy destroy`"))
        });
        futures::future::join_all(locks.into_iter().map(crate::state::Lock::release)).await;
        done
    }

    /// The selected stacks, loaded and checked. With several stacks, a `--var` goes to each
    /// stack that declares it, and is an error only if none does.
    pub fn load(&self, select: &Selection, vars: &VarArgs) -> Result<Vec<Stack>> {
        let names = if select.all || select.stacks.is_empty() {
            if !select.all {
                return Err(Error::user("name a stack, or pass --all").help(format!(
                    "stacks: {}",
                    self.project.stack_names()?.join(", ")
                )));
            }
            self.project.stack_names()?
        } else {
            select.stacks.clone()
        };
        if names.len() == 1 {
            let inputs = VarInputs {
                pairs: vars.vars.clone(),
                files: vars.var_files.clone(),
                placeholders: vars.placeholders,
            };
            let stacks = vec![self.project.load(&names[0], &inputs, &self.env)?];
            self.check_claims(&stacks)?;
            return Ok(stacks);
        }
        let mut stacks = Vec::new();
        let mut used = vec![false; vars.vars.len()];
        for name in &names {
            // Load once without --var pairs to learn what the stack declares.
            let declared = crate::manifest::declared_vars(&self.project, name)?;
            let pairs: Vec<String> = vars
                .vars
                .iter()
                .enumerate()
                .filter(|(i, p)| {
                    let k = p.split_once('=').map(|(k, _)| k.trim()).unwrap_or(p);
                    let ok = declared.iter().any(|d| d == k);
                    if ok {
                        used[*i] = true;
                    }
                    ok
                })
                .map(|(_, p)| p.clone())
                .collect();
            let inputs = VarInputs {
                pairs,
                files: vars.var_files.clone(),
                placeholders: vars.placeholders,
            };
            stacks.push(self.project.load(name, &inputs, &self.env)?);
        }
        if let Some(i) = used.iter().position(|u| !u) {
            return Err(Error::user(format!(
                "no selected stack declares the variable in `--var {}`",
                vars.vars[i]
            )));
        }
        self.check_claims(&stacks)?;
        Ok(stacks)
    }

    /// No two resources of the env's stacks claim one AWS name: the selected stacks, and the
    /// project's others as their manifests stand (variables not given left out; a stack that
    /// does not load is left to its own commands).
    fn check_claims(&self, stacks: &[Stack]) -> Result<()> {
        let selected: Vec<String> = stacks.iter().map(|s| s.name.clone()).collect();
        let others: Vec<Stack> = self
            .project
            .stack_names()?
            .into_iter()
            .filter(|n| !selected.contains(n))
            .filter_map(|n| {
                let inputs = VarInputs {
                    pairs: vec![],
                    files: vec![],
                    placeholders: true,
                };
                self.project.load(&n, &inputs, &self.env).ok()
            })
            .collect();
        let all: Vec<&Stack> = stacks.iter().chain(&others).collect();
        crate::manifest::claims::check(&all, &selected)
    }

    /// Connects to AWS (preflight included) with the project's cache folder.
    pub async fn connect(&self, opts: &crate::aws::AwsOptions) -> Result<Ctx> {
        Ok(self.in_project(crate::aws::connect(opts).await?))
    }

    /// The context with the project's folder and its build cache (.deploy/cache).
    fn in_project(&self, mut ctx: Ctx) -> Ctx {
        ctx.cache_dir = self.project.root.join(".deploy").join("cache");
        ctx.project_root = self.project.root.clone();
        ctx
    }

    /// The recorded state of each stack, read at once and checked to be that stack's and env's
    /// (`state::Store::load`) before anything calls AWS.
    pub async fn recorded(&self, stacks: &[String]) -> Result<Vec<StackState>> {
        futures::future::try_join_all(stacks.iter().map(|s| self.store.load(s, &self.env))).await
    }

    /// Connects for planning stacks whose state is `recorded`: when it records the account
    /// they were deployed to, the identity check runs alongside the planning reads
    /// (`Identity::alongside`) instead of before them.
    pub async fn connect_planning(
        &self,
        opts: &crate::aws::AwsOptions,
        recorded: &[StackState],
    ) -> Result<(Ctx, crate::aws::Identity)> {
        let accounts: std::collections::BTreeSet<String> = recorded
            .iter()
            .map(|st| match &st.target {
                Some(t) if !st.resources.is_empty() => t.account_id.clone(),
                _ => String::new(),
            })
            .collect();
        // only when every stack agrees on one account (else the check comes first, as it did)
        let assumed = match accounts.into_iter().collect::<Vec<_>>().as_slice() {
            [one] if !one.is_empty() => Some(one.clone()),
            _ => None,
        };
        let (ctx, identity) = crate::aws::connect_assuming(opts, assumed).await?;
        Ok((self.in_project(ctx), identity))
    }

    /// Recorded state, refusing to mix accounts or regions.
    pub async fn state_for(&self, stack: &str, ctx: &Ctx) -> Result<StackState> {
        let st = self.store.load(stack, &self.env).await?;
        self.same_target(&st, ctx)?;
        Ok(st)
    }

    /// Refuses a state recorded in another account or region than this run points at.
    pub fn same_target(&self, st: &StackState, ctx: &Ctx) -> Result<()> {
        if let Some(t) = &st.target {
            if !st.resources.is_empty()
                && (t.account_id != ctx.account_id || t.region != ctx.region)
            {
                return Err(Error::user(format!(
                    "stack `{}` (env `{}`) is recorded in account {} region {}, and this run points at account {} region {}",
                    st.stack, self.env, t.account_id, t.region, ctx.account_id, ctx.region
                ))
                .help("use the profile/region it was deployed with, or another --env / --state"));
            }
        }
        Ok(())
    }
}

/// Asks on the terminal; without one, refuses (nothing is changed).
/// The question is read on a blocking thread and answered by Ctrl-C too: a run holding locks
/// catches the signal (`interrupt`), and a Ctrl-C at the question then means "no", at once.
pub async fn confirm(question: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(
            crate::error::Class::NotConfirmed,
            "nothing was changed: there is no terminal to confirm on",
        )
        .help("review the plan above and run again with --yes"));
    }
    eprint!("{question} Type 'yes' to go on: ");
    std::io::stderr().flush().ok();
    let read = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map(|_| answer)
    });
    let answer = tokio::select! {
        answer = read => answer.map_err(|e| Error::internal(e.to_string()))??,
        _ = crate::interrupt::requested() => String::new(),
    };
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::new(
            crate::error::Class::NotConfirmed,
            "cancelled: nothing was changed",
        ))
    }
}

/// A stack's state machine definitions, rendered: references filled from recorded state where
/// the stack is deployed, else shown as `(known after apply)`. (resource id, definition)
pub async fn definitions(
    setup: &Setup,
    stack: &str,
    vars: &VarArgs,
    fallback: Option<(&str, &str, &str)>,
) -> Result<(crate::manifest::Stack, Vec<(String, serde_json::Value)>)> {
    let inputs = VarInputs {
        pairs: vars.vars.clone(),
        files: vars.var_files.clone(),
        placeholders: vars.placeholders,
    };
    let s = setup.project.load(stack, &inputs, &setup.env)?;
    let st = setup.store.load(stack, &setup.env).await?;
    let rendered = rendered(&s, &st, fallback)?;
    Ok((s, rendered))
}

/// A loaded stack's state machine definitions, rendered against its recorded state `st`.
pub fn rendered(
    s: &crate::manifest::Stack,
    st: &crate::state::StackState,
    fallback: Option<(&str, &str, &str)>,
) -> Result<Vec<(String, serde_json::Value)>> {
    let outputs = st
        .resources
        .iter()
        .filter(|(_, e)| e.status == crate::state::Status::Created)
        .map(|(k, e)| (k.clone(), e.outputs.clone()))
        .collect();
    let target = st
        .target
        .as_ref()
        .map(|t| {
            (
                t.account_id.as_str(),
                t.region.as_str(),
                crate::aws::partition_of(&t.region),
            )
        })
        .or(fallback);
    let scope = s.scope(&outputs, target);
    let mut rendered = Vec::new();
    for (id, d) in &s.resources {
        if d.attrs.get("definition").is_some() {
            let (v, warnings) = s.resolve(id, &scope)?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            rendered.push((id.clone(), v["definition"].clone()));
        }
    }
    Ok(rendered)
}
