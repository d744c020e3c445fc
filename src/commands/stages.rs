//! The stages that `up`, `plan` and `destroy` share: planning every stack (with what the
//! scenarios and running executions add), the checks before anything changes, the executor and
//! its live view, and the report of what was done.

use super::Setup;
use crate::apply::Executor;
use crate::aws::Ctx;
use crate::error::{Class, Error, Result};
use crate::manifest::Stack;
use crate::options::{ApplyArgs, Format};
use crate::plan::Summary;
use crate::plan::{self, Plan};
use crate::state::StackState;
use crate::views::{Human, Json, View};

pub(super) struct Planned {
    pub(super) stack: Option<Stack>,
    pub(super) plan: Plan,
    pub(super) state: StackState,
}

/// A version keeps its definition and its role's ARN, not the role's policies: when a plan
/// changes IAM (a policy, a role, an attachment) while executions of a versioned state machine
/// run, it says which, since the change reaches them too.
pub(super) async fn running_on_older_versions(ctx: &Ctx, plans: &mut [Planned]) {
    const IAM: &[&str] = &["iam_policy", "iam_role", "iam_role_policy_attachment"];
    for p in plans {
        let changes_iam = p.plan.steps.iter().any(|s| {
            IAM.contains(&s.kind.as_str())
                && matches!(
                    s.action,
                    plan::Action::Update | plan::Action::Replace | plan::Action::Delete
                )
        });
        if !changes_iam {
            continue;
        }
        let versioned = p.state.resources.iter().filter(|(_, e)| {
            e.kind == "sfn_state_machine" && e.attrs.get("versions").is_some_and(|v| !v.is_null())
        });
        for (id, e) in versioned {
            let Some(arn) = e.outputs.get("arn").and_then(|a| a.as_str()) else {
                continue;
            };
            let running = crate::resources::sfn_state_machine::running_executions(ctx, arn)
                .await
                .unwrap_or_default();
            let Some(first) = running.first() else {
                continue;
            };
            p.plan.warnings.push(format!(
                "state machine `{id}` has {} running execution(s) (e.g. {first}): this IAM change applies to them too, whatever version they run",
                running.len()
            ));
        }
    }
}

/// For the definition that changes, how many transitions each of the stack's scenarios takes
/// before and after: what the change does to the cost of each path (scenarios written for
/// other variables than the stack's are left out; a stack without scenarios shows nothing).
pub(super) fn scenario_transitions(setup: &Setup, plans: &mut [Planned]) {
    use crate::engine::{self, scenario};
    for p in plans {
        let Some(stack) = &p.stack else { continue };
        let Ok(files) = super::scenarios::scenario_files(setup, &stack.name) else {
            continue;
        };
        let same_vars = |sc: &scenario::Scenario| {
            use super::scenarios::var_text;
            sc.vars.iter().all(|(k, v)| {
                stack
                    .vars
                    .get(k)
                    .is_some_and(|have| var_text(have) == var_text(v))
            })
        };
        let scenarios: Vec<(String, scenario::Scenario)> = files
            .iter()
            .filter_map(|f| super::scenarios::read_scenario(&stack.name, f).ok())
            .filter(|(_, sc)| same_vars(sc))
            .collect();
        // scenarios run against the stack's first state machine, as `deploy test` runs them
        let Some(machine) = stack
            .resources
            .iter()
            .find(|(_, d)| d.attrs.get("definition").is_some())
            .map(|(id, _)| id.clone())
        else {
            continue;
        };
        for step in p.plan.steps.iter_mut().filter(|s| {
            s.id == machine && matches!(s.action, plan::Action::Update | plan::Action::Replace)
        }) {
            let Some(c) = step.changes.iter().find(|c| c.attr == "definition") else {
                continue;
            };
            let (Some(old), Some(new)) = (c.old.clone(), c.new.clone()) else {
                continue;
            };
            for (name, sc) in &scenarios {
                let count = |def: &serde_json::Value| {
                    let tasks = scenario::Mocked::new(sc.mocks.clone());
                    let exec = engine::execute_virtual(def, sc.input.clone(), name, &tasks);
                    crate::cost::usage(&crate::cost::engine_events(&exec)).transitions()
                };
                step.transitions.push(plan::ScenarioTransitions {
                    scenario: name.clone(),
                    before: count(&old),
                    after: count(&new),
                });
            }
        }
    }
}

pub(super) fn print_plans(plans: &[Planned], format: Format) {
    let plans: Vec<&Plan> = plans.iter().map(|p| &p.plan).collect();
    crate::views::plan::plans(&plans, format);
}

/// Plans every stack at once (their locks are held by the caller), each against its state as
/// read under the lock.
pub(super) async fn plan_stacks(
    setup: &Setup,
    stacks: Vec<Stack>,
    recorded: Vec<StackState>,
    ctx: &Ctx,
    ttl: Option<std::time::Duration>,
) -> Result<Vec<Planned>> {
    let plans = stacks
        .into_iter()
        .zip(recorded)
        .map(|(mut stack, state)| async move {
            setup.same_target(&state, ctx)?;
            tag_lifetime(&mut stack, &state, ttl);
            let plan = plan::plan_up(&stack, &state, ctx).await?;
            Ok::<_, Error>(Planned {
                stack: Some(stack),
                plan,
                state,
            })
        });
    futures::future::try_join_all(plans).await
}

/// An environment with a lifetime says so on its resources too: a `deploy:ttl` tag (the
/// `--ttl` given, else the one recorded by an earlier `up`) on every taggable resource. The
/// tag holds the duration, not a date, so an `up` that changes nothing re-tags nothing.
pub(super) fn tag_lifetime(
    stack: &mut Stack,
    state: &StackState,
    ttl: Option<std::time::Duration>,
) {
    let recorded = state.meta.as_ref().and_then(|m| m.ttl_secs);
    let Some(secs) = ttl.map(|t| t.as_secs()).or(recorded) else {
        return;
    };
    let value = humantime::format_duration(std::time::Duration::from_secs(secs)).to_string();
    for decl in stack.resources.values_mut().filter(|d| d.kind.taggable()) {
        if let Some(tags) = decl.attrs.get_mut("tags").and_then(|t| t.as_object_mut()) {
            tags.insert("deploy:ttl".into(), value.clone().into());
        }
    }
}

/// A manifest emptied by mistake must not destroy a deployed stack: `up` of a stack that
/// declares no resources while its state records some is refused (exit 2, before any call)
/// unless `--allow-destroy-all` says it is meant; `deploy destroy` is the way to remove one.
pub(super) fn refuse_destroy_all(
    setup: &Setup,
    stacks: &[Stack],
    recorded: &[StackState],
    allowed: bool,
) -> Result<()> {
    if allowed {
        return Ok(());
    }
    for (stack, st) in stacks.iter().zip(recorded) {
        if stack.resources.is_empty() && !st.resources.is_empty() {
            return Err(Error::user(format!(
                "stack `{}` declares no resources, and env `{}` records {} of it: this `up` would delete every one and create none; nothing was changed",
                stack.name,
                setup.env,
                st.resources.len()
            ))
            .at(stack.file.clone())
            .help(format!(
                "to remove the stack, use `deploy destroy {} --env {}`; if emptying it is meant, pass --allow-destroy-all",
                stack.name, setup.env
            )));
        }
    }
    Ok(())
}

/// Runs every changing resource's preflight before anything is touched.
/// References filled from what state records, with the account and region connected to.
pub(super) fn recorded_scope(
    stack: &Stack,
    state: &StackState,
    ctx: &Ctx,
) -> crate::manifest::refs::MapScope {
    let outputs = state
        .resources
        .iter()
        .map(|(k, e)| (k.clone(), e.outputs.clone()))
        .collect();
    stack.scope(&outputs, Some(ctx.target()))
}

pub(super) async fn preflight(plans: &[Planned], ctx: &Ctx) -> Result<()> {
    for p in plans {
        let Some(stack) = &p.stack else { continue };
        let scope = recorded_scope(stack, &p.state, ctx);
        for step in p.plan.steps.iter().filter(|s| {
            matches!(
                s.action,
                plan::Action::Create | plan::Action::Update | plan::Action::Replace
            )
        }) {
            let decl = &stack.resources[&step.id];
            let (want, _) = stack.resolve(&step.id, &scope)?;
            decl.kind.preflight(ctx, &want).await.map_err(|e| {
                let msg = format!(
                    "stack `{}`, resource `{}`: {}",
                    stack.name, step.id, e.message
                );
                Error {
                    message: format!("{msg} (nothing was changed)"),
                    ..e
                }
            })?;
        }
    }
    Ok(())
}

/// The executor of an `up` or `destroy`: the run's context, store and view, `--parallelism`,
/// and the stop flag of `interrupt`.
pub(super) fn executor<'a>(
    setup: &'a Setup,
    ctx: &'a Ctx,
    view: &'a dyn View,
    args: &ApplyArgs,
) -> Executor<'a> {
    Executor {
        ctx,
        store: &setup.store,
        view,
        parallelism: crate::throttle::set_max_writes(args.parallelism as usize),
        stop: crate::interrupt::flag(),
    }
}

pub(super) fn view_for(format: Format, plans: &[Planned]) -> Box<dyn View> {
    let total = plans
        .iter()
        .map(|p| {
            p.plan
                .steps
                .iter()
                .filter(|s| s.action != plan::Action::NoOp)
                .count()
        })
        .sum();
    match format {
        Format::Text | Format::Markdown => Box::new(Human::new(total)),
        Format::Json => Box::new(Json),
    }
}

pub(super) fn report(results: Vec<Result<Summary>>, format: Format) -> Result<()> {
    let mut first_err: Option<Error> = None;
    for r in results {
        match r {
            Ok(s) => crate::views::plan::applied(&s, &s.outputs, format),
            Err(e) => {
                if first_err
                    .as_ref()
                    .is_none_or(|f| f.class != Class::Partial && e.class == Class::Partial)
                {
                    if let Some(prev) = first_err.take() {
                        eprintln!("error: {prev}");
                    }
                    first_err = Some(e);
                } else {
                    eprintln!("error: {e}");
                }
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// The stacks the selected ones bring records from (`[[moved]] from_stack`) that are not
/// selected themselves: their locks are taken and their states read too.
pub(super) fn move_sources(stacks: &[Stack]) -> Vec<String> {
    let mut out: Vec<String> = stacks
        .iter()
        .flat_map(|s| s.moved.iter().filter_map(|m| m.from_stack.clone()))
        .filter(|src| !stacks.iter().any(|s| &s.name == src))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What `[[moved]]` does, for every stack, on the states read under the locks (`sources`:
/// the states of the other stacks records come from). Per stack: the moves made, the notes.
pub(super) fn carry_moves(
    stacks: &[Stack],
    recorded: &mut [StackState],
    sources: &mut std::collections::BTreeMap<String, StackState>,
) -> Result<Vec<Moves>> {
    let mut out = Vec::new();
    for (i, stack) in stacks.iter().enumerate() {
        // a selected stack that records come from is read like the others
        let mut others = std::mem::take(sources);
        for (j, s) in stacks.iter().enumerate() {
            if j != i
                && stack
                    .moved
                    .iter()
                    .any(|m| m.from_stack.as_ref() == Some(&s.name))
            {
                others.insert(s.name.clone(), recorded[j].clone());
            }
        }
        let (done, notes) = crate::refactor::apply_moves(stack, &mut recorded[i], &mut others)?;
        for (j, s) in stacks.iter().enumerate() {
            if let Some(st) = others.remove(&s.name).filter(|_| j != i) {
                recorded[j] = st;
            }
        }
        *sources = others;
        out.push(Moves { done, notes });
    }
    Ok(out)
}

/// One stack's moves, as carried out on its state.
#[derive(Default)]
pub(super) struct Moves {
    pub(super) done: Vec<crate::refactor::Move>,
    pub(super) notes: Vec<String>,
}

/// Each plan told what moved into it (`moved_from` on the step, a note for an entry with
/// nothing to move), then cut to the part `--target` / `--exclude` name.
pub(super) fn mark_and_restrict(
    plans: &mut [Planned],
    moves: Vec<Moves>,
    part: &crate::refactor::Part,
) {
    let mut moves = moves.into_iter();
    for p in plans.iter_mut() {
        let m = moves.next().unwrap_or_default();
        for mv in &m.done {
            if let Some(step) = p.plan.steps.iter_mut().find(|s| s.id == mv.to) {
                step.moved_from = Some(mv.source());
            }
        }
        p.plan.warnings.extend(m.notes);
        let (stack, state) = (p.stack.as_ref(), &p.state);
        let deps = |id: &str| match stack.and_then(|s| s.resources.get(id)) {
            Some(d) => d.deps.clone(),
            None => state
                .resources
                .get(id)
                .map(|e| e.depends_on.clone())
                .unwrap_or_default(),
        };
        let down = p.plan.destroy;
        p.plan.restrict(part, &deps, down);
    }
}

/// Every id `--target` / `--exclude` names is one of the stacks' (declared or recorded).
pub(super) fn check_part(
    part: &crate::refactor::Part,
    stacks: &[Stack],
    recorded: &[StackState],
) -> Result<()> {
    let mut known = std::collections::BTreeSet::new();
    for s in stacks {
        known.extend(s.resources.keys().cloned());
    }
    for st in recorded {
        known.extend(st.resources.keys().cloned());
    }
    let name = match stacks {
        [one] => format!("stack `{}`", one.name),
        _ => "the selected stacks".into(),
    };
    part.check(&name, &known)
}
