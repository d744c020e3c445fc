//! `up`, `plan` and `destroy`: load and check everything, connect, lock, plan, confirm, execute.

use super::{Setup, confirm};
use crate::apply::{Executor, Summary};
use crate::aws::Ctx;
use crate::cli::{ApplyArgs, Format, Global, OutputArgs, Selection, VarArgs};
use crate::error::{Class, Error, Result};
use crate::manifest::Stack;
use crate::plan::{self, Plan};
use crate::state::{Lock, StackState};
use crate::views::{Human, Json, View};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

struct Planned {
    stack: Option<Stack>,
    plan: Plan,
    state: StackState,
    _lock: Lock,
}

fn print_plans(plans: &[Planned], format: Format) {
    match format {
        Format::Text => {
            for p in plans {
                print!("{}", plan::render_text(&p.plan));
            }
        }
        Format::Json => {
            let all: Vec<&Plan> = plans.iter().map(|p| &p.plan).collect();
            println!("{}", serde_json::json!({"event": "plan", "plans": all}));
        }
    }
}

async fn plan_stacks(setup: &Setup, stacks: Vec<Stack>, ctx: &Ctx, command: &str) -> Result<Vec<Planned>> {
    let mut out = Vec::new();
    for stack in stacks {
        let lock = setup.lock(&stack.name, command).await?;
        let state = setup.state_for(&stack.name, ctx).await?;
        let plan = plan::plan_up(&stack, &state, ctx).await?;
        out.push(Planned { stack: Some(stack), plan, state, _lock: lock });
    }
    Ok(out)
}

/// Runs every changing resource's preflight before anything is touched.
async fn preflight(plans: &[Planned], ctx: &Ctx) -> Result<()> {
    for p in plans {
        let Some(stack) = &p.stack else { continue };
        let outputs = p.state.resources.iter().map(|(k, e)| (k.clone(), e.outputs.clone())).collect();
        let scope = stack.scope(&outputs, Some((&ctx.account_id, &ctx.region, &ctx.partition)));
        for step in p.plan.steps.iter().filter(|s| matches!(s.action, plan::Action::Create | plan::Action::Update | plan::Action::Replace))
        {
            let decl = &stack.resources[&step.id];
            let (want, _) = stack.resolve(&step.id, &scope)?;
            decl.kind.preflight(ctx, &want).await.map_err(|e| {
                let msg = format!("stack `{}`, resource `{}`: {}", stack.name, step.id, e.message);
                Error { message: format!("{msg} (nothing was changed)"), ..e }
            })?;
        }
    }
    Ok(())
}

/// Stops new operations on the first Ctrl-C; a second one ends the process at once (state is
/// written ahead of every create, so even that is recoverable).
fn watch_interrupt() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            s.store(true, Ordering::SeqCst);
            eprintln!("interrupted: finishing the operations in flight (Ctrl-C again to stop now)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(Class::Interrupted.exit_code());
            }
        }
    });
    stop
}

fn view_for(format: Format) -> Box<dyn View> {
    match format {
        Format::Text => Box::new(Human::new()),
        Format::Json => Box::new(Json),
    }
}

async fn report(results: Vec<Result<Summary>>, format: Format, setup: &Setup) -> Result<()> {
    let mut first_err: Option<Error> = None;
    for r in results {
        match r {
            Ok(s) => {
                let st = setup.store.load(&s.stack, &setup.env).await?;
                match format {
                    Format::Text => {
                        println!("{}: {} applied (env {}).", s.stack, plural(s.done.len(), "change"), s.env);
                        for (k, v) in &st.outputs {
                            println!("  {k} = {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
                        }
                    }
                    Format::Json => println!("{}", serde_json::json!({"event": "summary", "summary": s, "outputs": st.outputs})),
                }
            }
            Err(e) => {
                if first_err.as_ref().is_none_or(|f| f.class != Class::Partial && e.class == Class::Partial) {
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

pub async fn up(g: &Global, select: &Selection, vars: &VarArgs, args: &ApplyArgs, out: &OutputArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let stacks = setup.load(select, vars)?;
    super::validate::gate(&setup, &stacks, vars).await?;
    let ctx = setup.connect(&g.aws).await?;
    let plans = plan_stacks(&setup, stacks, &ctx, "up").await?;
    print_plans(&plans, out.format);
    if !plans.iter().any(|p| p.plan.has_changes()) {
        return Ok(());
    }
    preflight(&plans, &ctx).await?;
    confirm(&format!("Apply these changes (env {})?", setup.env), args.yes)?;
    let stop = watch_interrupt();
    let view = view_for(out.format);
    let ex = Executor { ctx: &ctx, store: &setup.store, view: view.as_ref(), parallelism: args.parallelism as usize, stop: &stop };
    let runs = plans.into_iter().map(|p| {
        let ex = &ex;
        async move {
            let stack = p.stack.as_ref().expect("up plans carry their stack");
            let r = ex.up(stack, &p.plan, p.state.clone()).await;
            drop(p);
            r
        }
    });
    let results = futures::future::join_all(runs).await;
    report(results, out.format, &setup).await
}

pub async fn plan(g: &Global, select: &Selection, vars: &VarArgs, out: &OutputArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let stacks = setup.load(select, vars)?;
    super::validate::gate(&setup, &stacks, vars).await?;
    let ctx = setup.connect(&g.aws).await?;
    let plans = plan_stacks(&setup, stacks, &ctx, "plan").await?;
    print_plans(&plans, out.format);
    Ok(())
}

pub async fn destroy(g: &Global, stacks: &[String], args: &ApplyArgs, out: &OutputArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let names: Vec<String> = if stacks.is_empty() {
        setup.store.list().await?.into_iter().filter(|(env, _)| *env == setup.env).map(|(_, s)| s).collect()
    } else {
        stacks.to_vec()
    };
    if names.is_empty() {
        println!("Nothing is deployed in env {}.", setup.env);
        return Ok(());
    }
    let ctx = setup.connect(&g.aws).await?;
    let mut plans = Vec::new();
    for name in names {
        let lock = setup.lock(&name, "destroy").await?;
        let state = setup.state_for(&name, &ctx).await?;
        if state.resources.is_empty() {
            if !stacks.is_empty() && !setup.project.stack_names()?.contains(&name) {
                return Err(Error::user(format!("unknown stack `{name}`, and nothing is recorded for it in env {}", setup.env)));
            }
            continue;
        }
        plans.push(Planned { stack: None, plan: plan::plan_destroy(&state), state, _lock: lock });
    }
    if plans.is_empty() {
        println!("Nothing to destroy in env {}.", setup.env);
        return Ok(());
    }
    print_plans(&plans, out.format);
    confirm(&format!("Destroy these resources (env {})?", setup.env), args.yes)?;
    let stop = watch_interrupt();
    let view = view_for(out.format);
    let ex = Executor { ctx: &ctx, store: &setup.store, view: view.as_ref(), parallelism: args.parallelism as usize, stop: &stop };
    let runs = plans.into_iter().map(|p| {
        let ex = &ex;
        async move {
            let r = ex.destroy(&p.plan, p.state.clone()).await;
            drop(p);
            r
        }
    });
    let results = futures::future::join_all(runs).await;
    report(results, out.format, &setup).await
}

/// Removes a lock whose run is gone, saying whose it was.
pub async fn unlock(g: &Global, stack: &str) -> Result<()> {
    let setup = Setup::new(g)?;
    match setup.store.unlock(stack, &setup.env).await? {
        Some(h) => println!("removed the lock of stack `{stack}` (env `{}`) held by {}", setup.env, h.describe()),
        None => println!("stack `{stack}` (env `{}`) is not locked", setup.env),
    }
    Ok(())
}

/// "1 change", "2 changes".
fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}
