//! `up`, `plan` and `destroy`: load and check everything, connect, lock, plan, confirm, execute.

use super::stages::*;
use super::{Setup, confirm};
use crate::aws::Ctx;
use crate::error::{Error, Result};
use crate::manifest::Stack;
use crate::options::{ApplyArgs, Format, Global, PartArgs, Selection, VarArgs};
use crate::options::{ReportArgs, Run};
use crate::saved_plan::{self, SavedPlan, SavedStack};
use crate::state::StackState;
use clap::Args;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

pub async fn up(g: &Global, a: &UpArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    if let Some(file) = &a.plan {
        return up_saved(g, &setup, a, file).await;
    }
    let stacks = setup.load(&a.select, &a.vars)?;
    let names: Vec<String> = stacks.iter().map(|s| s.name.clone()).collect();
    let sources = move_sources(&stacks);
    let part = a.part.part();
    setup
        .locked(&[names.clone(), sources.clone()].concat(), "up", async {
            // read once, under the locks, and checked before anything calls AWS
            let (mut recorded, mut others) = read_with_sources(&setup, &names, &sources).await?;
            check_part(&part, &stacks, &recorded)?;
            let moves = carry_moves(&stacks, &mut recorded, &mut others)?;
            super::validate::gate(&stacks, &recorded)?;
            let (ctx, mut plans) = connect_and_plan(g, &setup, a, stacks, recorded).await?;
            mark_and_restrict(&mut plans, moves, &part);
            apply_up(&setup, &ctx, plans, a, g.branch.as_ref(), others).await
        })
        .await
}

/// The states of the stacks, and of the stacks they move records from.
async fn read_with_sources(
    setup: &Setup,
    names: &[String],
    sources: &[String],
) -> Result<(Vec<StackState>, BTreeMap<String, StackState>)> {
    let recorded = setup.recorded(names).await?;
    let others = sources.iter().cloned().zip(setup.recorded(sources).await?);
    Ok((recorded, others.collect()))
}

/// `up --plan FILE`: applies exactly the saved plan, or refuses before any change.
async fn up_saved(g: &Global, setup: &Setup, a: &UpArgs, file: &Path) -> Result<()> {
    let saved = SavedPlan::read(file)?;
    let at = file.display().to_string();
    if saved.env != setup.env {
        return Err(Error::user(format!(
            "the plan is for env `{}`, and this run is for env `{}`; nothing was changed",
            saved.env, setup.env
        ))
        .at(at)
        .help(format!(
            "apply it with --env {}, or make a plan for env {} with `deploy plan --out`",
            saved.env, setup.env
        )));
    }
    let mut stacks = Vec::new();
    for s in &saved.stacks {
        let inputs = crate::manifest::VarInputs {
            pairs: saved_vars(s, &setup.env, &a.vars, &at)?,
            files: vec![],
            placeholders: false,
        };
        stacks.push(setup.project.load(&s.stack, &inputs, &setup.env)?);
    }
    let names: Vec<String> = saved.stacks.iter().map(|s| s.stack.clone()).collect();
    let sources = move_sources(&stacks);
    let part = saved_part(&saved);
    let reviewed = UpArgs {
        apply: ApplyArgs {
            yes: true, // the plan was reviewed: applying it is the confirmation
            ..a.apply.clone()
        },
        ..a.clone()
    };
    setup
        .locked(&[names.clone(), sources.clone()].concat(), "up", async {
            let (mut recorded, mut others) = read_with_sources(setup, &names, &sources).await?;
            let moves = carry_moves(&stacks, &mut recorded, &mut others)?;
            super::validate::gate(&stacks, &recorded)?;
            for (s, st) in saved.stacks.iter().zip(&recorded) {
                if saved_plan::state_digest(st) != s.state {
                    return Err(stale(&s.stack, &setup.env, &at, "its recorded state changed since the plan was made (another up or destroy ran)"));
                }
            }
            let (ctx, mut plans) = connect_and_plan(g, setup, a, stacks, recorded).await?;
            mark_and_restrict(&mut plans, moves, &part);
            for (s, p) in saved.stacks.iter().zip(&plans) {
                let stack = p.stack.as_ref().expect("up plans carry their stack");
                if let Some(d) = saved_plan::first_difference(&s.desired, &desired(stack, &p.state, &ctx)?) {
                    return Err(stale(&s.stack, &setup.env, &at, &format!("the manifest, its templates or its variables no longer give what was planned: {d}")));
                }
                if saved_plan::steps_of(&p.plan) != s.plan["plans"][0]["steps"] {
                    return Err(stale(&s.stack, &setup.env, &at, "its resources in AWS changed since the plan was made: planning again gives other steps"));
                }
            }
            apply_up(setup, &ctx, plans, &reviewed, g.branch.as_ref(), others).await
        })
        .await
}

/// The part a saved plan was made for (`plan --target / --exclude`), whatever this run says.
fn saved_part(saved: &SavedPlan) -> crate::refactor::Part {
    saved
        .stacks
        .first()
        .and_then(|s| serde_json::from_value(s.plan["plans"][0]["partial"].clone()).ok())
        .unwrap_or_default()
}

/// A saved plan that no longer holds: refused before any change.
fn stale(stack: &str, env: &str, at: &str, why: &str) -> Error {
    Error::user(format!(
        "stale plan: stack `{stack}` (env `{env}`): {why}; nothing was changed"
    ))
    .at(at.to_string())
    .help("make the plan again (`deploy plan --out FILE`), review it, and apply that one")
}

/// The `--var` pairs a saved stack was planned with: its own values, and a sensitive one (only
/// sealed in the file) as given again on this command line, checked against the seal.
fn saved_vars(s: &SavedStack, env: &str, given: &VarArgs, at: &str) -> Result<Vec<String>> {
    let given_value = |k: &str| {
        given.vars.iter().find_map(|p| {
            let (name, v) = p.split_once('=')?;
            (name.trim() == k).then(|| v.to_string())
        })
    };
    let mut pairs = Vec::new();
    for (k, v) in &s.vars {
        let text = super::scenarios::var_text(v);
        if crate::secrets::is_sealed(&text) {
            let Some(clear) = given_value(k) else {
                return Err(Error::user(format!(
                    "variable `{k}` of stack `{}` is sensitive: the plan keeps it sealed; nothing was changed",
                    s.stack
                ))
                .at(at.to_string())
                .help(format!("give it again: --var {k}=...")));
            };
            if !crate::secrets::same(&text, &clear) {
                return Err(stale(
                    &s.stack,
                    env,
                    at,
                    &format!("--var {k}: not the value the plan was made with"),
                ));
            }
            pairs.push(format!("{k}={clear}"));
            continue;
        }
        if given_value(k).is_some_and(|g| g != text) {
            return Err(stale(
                &s.stack,
                env,
                at,
                &format!("--var {k}: the plan was made with {k}={text}"),
            ));
        }
        pairs.push(format!("{k}={text}"));
    }
    Ok(pairs)
}

/// Every declared resource's attributes as they would be applied now (in clear).
fn desired(stack: &Stack, state: &StackState, ctx: &Ctx) -> Result<BTreeMap<String, Value>> {
    let scope = recorded_scope(stack, state, ctx);
    stack
        .resources
        .keys()
        .map(|id| Ok((id.clone(), stack.resolve(id, &scope)?.0)))
        .collect()
}

/// What `plan --out FILE` writes: per stack, the plan as `plan --output json` shows it, the
/// desired state and variables (secrets sealed), and the digest of the state planned from.
fn save_plans(setup: &Setup, plans: &[Planned], ctx: &Ctx, file: &Path) -> Result<()> {
    let mut stacks = Vec::new();
    for p in plans {
        let stack = p.stack.as_ref().expect("up plans carry their stack");
        let desired = desired(stack, &p.state, ctx)?
            .into_iter()
            .map(|(id, v)| {
                let kind = stack.resources[&id].kind;
                (
                    id,
                    crate::secrets::seal(&v, kind.sensitive(), &stack.secrets),
                )
            })
            .collect();
        let vars = stack
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), crate::secrets::seal(v, &[], &stack.secrets)))
            .collect();
        stacks.push(SavedStack {
            stack: stack.name.clone(),
            state: saved_plan::state_digest(&p.state),
            vars,
            desired,
            plan: crate::views::json_doc(json!({"event": "plan", "plans": [&p.plan]})),
        });
    }
    SavedPlan {
        format: saved_plan::FORMAT.into(),
        format_version: saved_plan::FORMAT_VERSION,
        env: setup.env.clone(),
        made: crate::state::now_secs(),
        stacks,
    }
    .write(file)?;
    eprintln!(
        "saved the plan to {}: `deploy up --plan {}` applies exactly it, or refuses if anything changed since",
        file.display(),
        file.display()
    );
    Ok(())
}

/// Prints the plans; says whether anything would change.
pub async fn plan(g: &Global, a: &PlanArgs) -> Result<bool> {
    let (select, vars, out, save) = (&a.select, &a.vars, &a.out, a.save.as_deref());
    let setup = Setup::new(g)?;
    let stacks = setup.load(select, vars)?;
    let names: Vec<String> = stacks.iter().map(|s| s.name.clone()).collect();
    let sources = move_sources(&stacks);
    let part = a.part.part();
    setup
        .locked(&[names.clone(), sources.clone()].concat(), "plan", async {
            let (mut recorded, mut others) = read_with_sources(&setup, &names, &sources).await?;
            check_part(&part, &stacks, &recorded)?;
            // moved in memory only: a plan changes nothing
            let moves = carry_moves(&stacks, &mut recorded, &mut others)?;
            super::validate::gate(&stacks, &recorded)?;
            let (ctx, identity) = setup.connect_planning(&g.aws, &recorded).await?;
            let mut plans = identity
                .alongside(plan_stacks(&setup, stacks, recorded, &ctx, None))
                .await?;
            mark_and_restrict(&mut plans, moves, &part);
            scenario_transitions(&setup, &mut plans);
            running_on_older_versions(&ctx, &mut plans).await;
            print_plans(&plans, out.format);
            if let Some(file) = save {
                save_plans(&setup, &plans, &ctx, file)?;
            }
            Ok(plans.iter().any(|p| p.plan.has_changes()))
        })
        .await
}

/// Records an existing resource with the expected name as the stack's, deliberately.
pub async fn import(g: &Global, stack_name: &str, id: &str, vars: &VarArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let inputs = crate::manifest::VarInputs {
        pairs: vars.vars.clone(),
        files: vars.var_files.clone(),
        placeholders: true,
    };
    let stack = setup.project.load(stack_name, &inputs, &setup.env)?;
    let Some(decl) = stack.resources.get(id) else {
        return Err(
            Error::user(format!("stack `{stack_name}` declares no resource `{id}`")).help(format!(
                "its resources: {}",
                stack
                    .resources
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        );
    };
    let ctx = setup.connect(&g.aws).await?;
    let names = [stack_name.to_string()];
    setup.locked(&names, "import", async {
    let mut state = setup.state_for(stack_name, &ctx).await?;
    if state
        .resources
        .get(id)
        .is_some_and(|e| e.status == crate::state::Status::Created)
    {
        return Err(Error::user(format!(
            "`{id}` is already recorded as stack `{stack_name}`'s (env `{}`)",
            setup.env
        )));
    }
    let scope = recorded_scope(&stack, &state, &ctx);
    let (want, _) = stack.resolve(id, &scope)?;
    let name = decl.kind.display_name(&want);
    let Some((live, found)) = decl.kind.read(&ctx, &want, &Default::default()).await? else {
        return Err(Error::user(format!(
            "there is no {} named {name} to import",
            decl.kind.name()
        ))
        .help("`deploy up` creates it"));
    };
    state.target.get_or_insert(crate::state::Target::of(&ctx));
    state.resources.insert(
        id.to_string(),
        crate::state::Entry::created(decl.kind.name(), live, found, decl.deps.clone()),
    );
    setup.store.save(&state).await?;
    outln!(
        "imported {}.{id} ({name}) into stack `{stack_name}` (env `{}`): `deploy up {stack_name}` brings it to the manifest; `deploy destroy` now deletes it",
        decl.kind.name(),
        setup.env
    );
    Ok(())
    })
    .await
}

/// Removes a lock whose run is gone, saying whose it was.
pub async fn unlock(g: &Global, stack: &str) -> Result<()> {
    let setup = Setup::new(g)?;
    match setup.store.unlock(stack, &setup.env).await? {
        Some(h) => outln!(
            "removed the lock of stack `{stack}` (env `{}`) held by {}",
            setup.env,
            h.describe()
        ),
        None => outln!("stack `{stack}` (env `{}`) is not locked", setup.env),
    }
    Ok(())
}

/// `deploy up`'s command line.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub select: Selection,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub apply: ApplyArgs,
    #[command(flatten)]
    pub out: ReportArgs,
    #[command(flatten)]
    pub part: PartArgs,
    /// The environment expires this long after its last `up` (e.g. 72h); `deploy sweep` removes it then
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ttl: Option<std::time::Duration>,
    /// A gradual rollout takes its next step and returns; a later `up`, or `deploy rollout
    /// promote|abort`, carries it on
    #[arg(long)]
    pub no_wait: bool,
    /// Let an `up` delete every resource of a stack whose manifest declares none (refused
    /// otherwise: `deploy destroy` removes a stack)
    #[arg(long)]
    pub allow_destroy_all: bool,
    /// Apply exactly the plan saved by `deploy plan --out FILE` (no question asked: it was
    /// reviewed); refused if the state, the manifest or the live resources changed since
    #[arg(long = "plan", value_name = "FILE", conflicts_with_all = ["stacks", "all"])]
    pub plan: Option<std::path::PathBuf>,
}

#[async_trait::async_trait(?Send)]
impl Run for UpArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        up(g, self).await
    }
}

/// `deploy plan`'s command line.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub select: Selection,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub out: ReportArgs,
    #[command(flatten)]
    pub part: PartArgs,
    /// Exit 0 when nothing would change, 2 when something would, 1 on any error (as Terraform)
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also save the plan to FILE, for `deploy up --plan FILE` to apply exactly it
    #[arg(long = "out", value_name = "FILE")]
    pub save: Option<std::path::PathBuf>,
}

#[async_trait::async_trait(?Send)]
impl Run for PlanArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        let changes = plan(g, self).await;
        match (self.detailed_exitcode, changes) {
            (true, Ok(true)) => std::process::exit(2),
            // exit 1 on any error, as Terraform
            (true, Err(e)) => Err(Error {
                class: crate::error::Class::Internal,
                ..e
            }),
            (_, r) => r.map(|_| ()),
        }
    }
}

/// `deploy import`'s command line.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The stack whose manifest declares the resource
    pub stack: String,
    /// The resource id in the stack's manifest
    pub resource: String,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for ImportArgs {
    async fn run(&self, g: &Global) -> Result<()> {
        import(g, &self.stack, &self.resource, &self.vars).await
    }
}

/// `deploy unlock`'s command line.
#[derive(Debug, Clone, Args)]
pub struct UnlockArgs {
    /// The stack whose lock to remove (in the env given by --env)
    pub stack: String,
}

#[async_trait::async_trait(?Send)]
impl Run for UnlockArgs {
    async fn run(&self, g: &Global) -> Result<()> {
        unlock(g, &self.stack).await
    }
}

/// What every `up` does under its locks once the states are read and checked: refuse to empty
/// a stack by mistake, connect (the identity check alongside the reads), plan every stack.
async fn connect_and_plan(
    g: &Global,
    setup: &Setup,
    a: &UpArgs,
    stacks: Vec<Stack>,
    recorded: Vec<StackState>,
) -> Result<(Ctx, Vec<Planned>)> {
    refuse_destroy_all(setup, &stacks, &recorded, a.allow_destroy_all)?;
    let (mut ctx, identity) = setup.connect_planning(&g.aws, &recorded).await?;
    ctx.rollout_no_wait = a.no_wait;
    let plans = identity
        .alongside(plan_stacks(setup, stacks, recorded, &ctx, a.ttl))
        .await?;
    Ok((ctx, plans))
}

/// The rest of `up`, under the locks: show the plans, confirm, apply, report.
async fn apply_up(
    setup: &Setup,
    ctx: &Ctx,
    mut plans: Vec<Planned>,
    a: &UpArgs,
    branch: Option<&String>,
    sources: BTreeMap<String, StackState>,
) -> Result<()> {
    let (args, out, ttl) = (&a.apply, &a.out, a.ttl);
    scenario_transitions(setup, &mut plans);
    running_on_older_versions(ctx, &mut plans).await;
    print_plans(&plans, out.format);
    // The environment's lifetime: created, last up, by whom, and --ttl (kept unless given anew).
    let me = crate::state::Holder::me("up");
    for p in &mut plans {
        let now = crate::state::now_secs();
        let old = p.state.meta.take();
        p.state.meta = Some(crate::state::Meta {
            created: old.as_ref().map(|m| m.created).unwrap_or(now),
            updated: now,
            by: format!("{} on {}", me.who, me.host),
            ttl_secs: ttl
                .map(|t| t.as_secs())
                .or(old.as_ref().and_then(|m| m.ttl_secs)),
            branch: branch.cloned().or(old.and_then(|m| m.branch)),
        });
    }
    if !plans.iter().any(|p| p.plan.has_changes()) {
        // nothing to change: the last `up` is still recorded, for the environment's lifetime
        let saves = plans
            .iter()
            .filter(|p| !p.state.resources.is_empty())
            .map(|p| setup.store.save(&p.state));
        futures::future::try_join_all(saves).await?;
        return Ok(());
    }
    preflight(&plans, ctx).await?;
    confirm(
        &format!("Apply these changes (env {})?", setup.env),
        args.yes,
    )
    .await?;
    record_moves_from_other_stacks(setup, &plans, sources).await?;
    let view = view_for(out.format, &plans);
    let ex = executor(setup, ctx, view.as_ref(), args);
    let runs = plans.into_iter().map(|p| {
        let ex = &ex;
        async move {
            let stack = p.stack.as_ref().expect("up plans carry their stack");
            ex.up(stack, &p.plan, p.state.clone()).await
        }
    });
    let results = futures::future::join_all(runs).await;
    report(results, out.format)
}

/// A record moved in from a stack that is not being brought up: the stack it went to is
/// written first, then the one it left, before anything else is done (a crash in between
/// leaves it recorded twice, never lost: `deploy state rm` forgets the stale copy).
async fn record_moves_from_other_stacks(
    setup: &Setup,
    plans: &[Planned],
    sources: BTreeMap<String, StackState>,
) -> Result<()> {
    if sources.is_empty() {
        return Ok(());
    }
    let receiving = plans.iter().filter(|p| {
        p.plan
            .steps
            .iter()
            .any(|s| s.moved_from.as_ref().is_some_and(|f| f.contains('.')))
    });
    for p in receiving {
        setup.store.save(&p.state).await?;
    }
    for st in sources.values() {
        setup.store.save(st).await?;
    }
    Ok(())
}
