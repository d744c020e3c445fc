//! `destroy`: what state records (or, without state, what the manifest names and its tags
//! prove ours), in reverse dependency order; a lost run's pending creates recovered first.

use super::stages::*;
use super::{Setup, confirm};
use crate::aws::Ctx;
use crate::error::{Error, Result};
use crate::options::{ApplyArgs, Format, Global, PartArgs, VarArgs};
use crate::options::{ReportArgs, Run};
use crate::plan::{self};
use crate::state::StackState;
use clap::Args;

/// Adds to `state` the stack's declared resources that it does not record but that exist and
/// are provably ours (state lost, as on a new CI runner, or never written); says which ones it
/// leaves alone because they cannot be proven ours. Returns the ids it added.
async fn recover(
    setup: &Setup,
    name: &str,
    vars: &VarArgs,
    state: &mut StackState,
    ctx: &Ctx,
) -> Result<Vec<String>> {
    let inputs = crate::manifest::VarInputs {
        pairs: vars.vars.clone(),
        files: vars.var_files.clone(),
        placeholders: true,
    };
    let stack = match setup.project.load(name, &inputs, &setup.env) {
        Ok(s) => s,
        // the manifest is gone: what state records is all there is to go by
        Err(_) if !state.resources.is_empty() => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let found = plan::discover(&stack, state, ctx).await?;
    for f in &found.foreign {
        eprintln!(
            "warning: stack `{name}` (env `{}`): left alone: {}.{} ({}) exists, and is not this stack's: {}",
            setup.env, f.kind, f.id, f.name, f.why
        );
    }
    let mut added = Vec::new();
    for (id, (live, outputs)) in found.ours {
        let decl = &stack.resources[&id];
        state.resources.insert(
            id.clone(),
            crate::state::Entry::created(decl.kind.name(), live, outputs, decl.deps.clone()),
        );
        added.push(id);
    }
    if state.target.is_none() && !added.is_empty() {
        state.target = Some(crate::state::Target::of(ctx));
    }
    Ok(added)
}

pub async fn destroy(g: &Global, a: &DestroyArgs) -> Result<()> {
    let (stacks, vars, args, out) = (&a.stacks, &a.vars, &a.apply, &a.out);
    let part = a.part.part();
    let setup = Setup::new(g)?;
    // Named stacks; else every stack of the project and every one recorded in the env (state
    // may be missing: what exists is found by name and tags).
    let names: Vec<String> = if stacks.is_empty() {
        let mut all = setup.project.stack_names()?;
        for (env, s) in setup.store.list().await? {
            if env == setup.env && !all.contains(&s) {
                all.push(s);
            }
        }
        all
    } else {
        stacks.to_vec()
    };
    setup
        .locked(&names, "destroy", async {
            // every state read and checked to be its stack's before anything calls AWS
            let recorded = setup.recorded(&names).await?;
            let mut ctx = setup.connect(&g.aws).await?;
            ctx.stop_executions = a.stop_executions;
            let ctx = &ctx;
            let plans = futures::future::try_join_all(
                names
                    .iter()
                    .zip(recorded)
                    .map(|(name, state)| plan_destroy(&setup, name, state, vars, ctx)),
            )
            .await?;
            let mut plans: Vec<Planned> = plans.into_iter().flatten().collect();
            let states: Vec<StackState> = plans.iter().map(|p| p.state.clone()).collect();
            check_part(&part, &[], &states)?;
            mark_and_restrict(&mut plans, vec![], &part);
            plans.retain(|p| !p.plan.steps.is_empty());
            if plans.is_empty() {
                outln!("Nothing to destroy in env {}.", setup.env);
                return Ok(());
            }
            print_plans(&plans, out.format);
            confirm(
                &format!("Destroy these resources (env {})?", setup.env),
                args.yes,
            )
            .await?;
            let view = view_for(out.format, &plans);
            let ex = executor(&setup, ctx, view.as_ref(), args);
            let runs = plans.iter().map(|p| ex.destroy(&p.plan, p.state.clone()));
            let results = futures::future::join_all(runs).await;
            report(results, out.format)
        })
        .await
}

/// One stack's destroy plan (its lock held): what state records and what is found to be
/// ours by name; None when there is nothing.
async fn plan_destroy(
    setup: &Setup,
    name: &str,
    mut state: StackState,
    vars: &VarArgs,
    ctx: &Ctx,
) -> Result<Option<Planned>> {
    setup.same_target(&state, ctx)?;
    if !setup.project.stack_names()?.iter().any(|s| s == name) && state.resources.is_empty() {
        return Err(Error::user(format!(
            "unknown stack `{name}`, and nothing is recorded for it in env {}",
            setup.env
        )));
    }
    let recovered = recover(setup, name, vars, &mut state, ctx).await?;
    if state.resources.is_empty() {
        return Ok(None);
    }
    let mut plan = plan::plan_destroy(&state);
    for step in plan.steps.iter_mut().filter(|s| recovered.contains(&s.id)) {
        step.reason =
            Some("not recorded in state: found by name, proven ours by its tags or parents".into());
    }
    Ok(Some(Planned {
        stack: None,
        plan,
        state,
    }))
}

/// `deploy destroy`'s command line.
#[derive(Debug, Clone, Args)]
pub struct DestroyArgs {
    /// Stacks to destroy (none: every stack of the project and every one recorded in the env)
    pub stacks: Vec<String>,
    /// Stop a state machine's running executions before deleting it (without it, a state
    /// machine with running executions is not deleted)
    #[arg(long)]
    pub stop_executions: bool,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub apply: ApplyArgs,
    #[command(flatten)]
    pub out: ReportArgs,
    #[command(flatten)]
    pub part: PartArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for DestroyArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        destroy(g, self).await
    }
}
