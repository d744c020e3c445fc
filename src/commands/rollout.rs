//! `deploy rollout status|promote|abort <stack>`: a gradual rollout left running by
//! `up --no-wait` (or stopped half way), carried on from any machine: the alias on AWS says
//! how far it got, the recorded state which version it is rolling out.

use super::Setup;
use crate::aws::Ctx;
use crate::error::{Error, Result};
use crate::options::{Format, Global, OutputArgs, Run};
use crate::resources::sfn_alias;
use clap::{Args, Subcommand};
use serde_json::json;

/// `deploy rollout`'s command line.
#[derive(Debug, Clone, Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub action: RolloutAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum RolloutAction {
    /// Where each alias of the stack stands: its versions' weights and its alarms
    Status(RolloutStack),
    /// Route everything to the version being rolled out now
    Promote(RolloutStack),
    /// Route everything back to the version being left (a later `up` rolls out again)
    Abort(RolloutStack),
}

#[derive(Debug, Clone, Args)]
pub struct RolloutStack {
    /// The deployed stack
    pub stack: String,
    #[command(flatten)]
    pub out: OutputArgs,
}

impl RolloutAction {
    fn stack(&self) -> &RolloutStack {
        match self {
            RolloutAction::Status(s) | RolloutAction::Promote(s) | RolloutAction::Abort(s) => s,
        }
    }
}

#[async_trait::async_trait(?Send)]
impl Run for RolloutArgs {
    fn format(&self) -> Format {
        self.action.stack().out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        rollout(g, &self.action).await
    }
}

/// One alias as recorded, and its routing on AWS.
struct Alias {
    id: String,
    attrs: sfn_alias::Attrs,
    routing: Vec<(String, u64)>,
}

async fn aliases(ctx: &Ctx, setup: &Setup, stack: &str) -> Result<Vec<Alias>> {
    let st = setup.store.load(stack, &setup.env).await?;
    let mut out = Vec::new();
    for (id, e) in st
        .resources
        .iter()
        .filter(|(_, e)| e.kind == "sfn_state_machine_alias")
    {
        let attrs: sfn_alias::Attrs = serde_json::from_value(e.attrs.clone())
            .map_err(|err| Error::internal(format!("recorded alias {id}: {err}")))?;
        let routing = sfn_alias::current(ctx, &attrs).await?.ok_or_else(|| {
            Error::aws(format!(
                "alias {} of stack `{stack}` is recorded but not found",
                attrs.alias
            ))
        })?;
        out.push(Alias {
            id: id.clone(),
            attrs,
            routing,
        });
    }
    if out.is_empty() {
        return Err(Error::user(format!(
            "stack `{stack}` has no alias deployed in env `{}`",
            setup.env
        ))
        .help("an alias comes from a state machine's [versions] table with `alias = \"...\"`"));
    }
    Ok(out)
}

async fn rollout(g: &Global, action: &RolloutAction) -> Result<()> {
    let s = action.stack();
    let setup = Setup::new(g)?;
    let ctx = setup.connect(&g.aws).await?;
    let names = match action {
        RolloutAction::Status(_) => vec![],
        _ => vec![s.stack.clone()],
    };
    setup
        .locked(&names, "rollout", carry_on(&setup, &ctx, action))
        .await
}

/// Reports, promotes or aborts the rollout of every alias of the stack.
async fn carry_on(setup: &Setup, ctx: &Ctx, action: &RolloutAction) -> Result<()> {
    let s = action.stack();
    let mut report = Vec::new();
    for a in aliases(ctx, setup, &s.stack).await? {
        let target = a.attrs.version_arn.clone();
        let on_target = a
            .routing
            .iter()
            .find(|(v, _)| *v == target)
            .map(|(_, w)| *w)
            .unwrap_or(0);
        let leaving = a
            .routing
            .iter()
            .find(|(v, _)| *v != target)
            .map(|(v, _)| v.clone());
        let done = act(ctx, action, &a, &target, on_target, leaving.as_ref()).await?;
        let state = match (on_target, done) {
            (_, Some(d)) => d.to_string(),
            (100, None) => "complete".to_string(),
            (w, None) => format!("in progress: {w}% on the new version"),
        };
        report.push(json!({
            "resource": a.id,
            "alias": a.attrs.alias,
            "version_arn": target,
            "routing": a.routing.iter().map(|(v, w)| json!({"version_arn": v, "weight": w})).collect::<Vec<_>>(),
            "rollout": a.attrs.plan.describe(),
            "alarms": a.attrs.plan.alarms,
            "state": state,
        }));
    }
    print_report(&report, s.out.format);
    Ok(())
}

/// What the action does to one alias (promote, abort, or nothing for status), in words.
async fn act(
    ctx: &Ctx,
    action: &RolloutAction,
    a: &Alias,
    target: &String,
    on_target: u64,
    leaving: Option<&String>,
) -> Result<Option<&'static str>> {
    Ok(match action {
        RolloutAction::Status(_) => None,
        RolloutAction::Promote(_) if on_target == 100 => Some("nothing to promote"),
        RolloutAction::Promote(_) => {
            sfn_alias::route(ctx, &a.attrs, &[(&target, 100)]).await?;
            Some("promoted: 100% on the new version")
        }
        RolloutAction::Abort(_) => match &leaving {
            Some(previous) => {
                sfn_alias::route(ctx, &a.attrs, &[(previous, 100)]).await?;
                Some("aborted: 100% back on the previous version")
            }
            None => Some("nothing to abort: no other version is routed to"),
        },
    })
}

fn print_report(report: &[serde_json::Value], format: Format) {
    match format {
        Format::Json => outln!("{}", serde_json::to_string(&report).unwrap()),
        _ => {
            for r in report {
                outln!(
                    "alias {} ({}): {}",
                    r["alias"].as_str().unwrap_or_default(),
                    r["resource"].as_str().unwrap_or_default(),
                    r["state"].as_str().unwrap_or_default()
                );
                for w in r["routing"].as_array().into_iter().flatten() {
                    outln!(
                        "  {:>3}%  {}",
                        w["weight"],
                        w["version_arn"].as_str().unwrap_or_default()
                    );
                }
                outln!("  rollout: {}", r["rollout"].as_str().unwrap_or_default());
            }
        }
    }
}
