//! `graph`: draw a stack's state machine (optionally with the path an execution took) or its
//! resource dependency graph, as DOT, Mermaid or SVG.

use super::Setup;
use super::definitions;
use crate::diagram::{self, Diagram, EdgeKind, Shape, asl};
use crate::error::{Error, Result};
use crate::execution;
use crate::options::Run;
use crate::options::{Global, VarArgs};
use clap::Args;
use std::path::PathBuf;

fn resources_diagram(stack: &crate::manifest::Stack) -> Diagram {
    let mut d = Diagram {
        title: format!("{} resources", stack.name),
        ..Default::default()
    };
    for id in stack.graph.order() {
        let kind = stack.resources[&id].kind.name();
        d.add_node(&id, &format!("{id} ({kind})"), Shape::Resource, None);
    }
    for id in stack.graph.order() {
        for dep in stack.graph.deps_of(&id) {
            d.add_edge(dep, &id, "", EdgeKind::Next);
        }
    }
    d.transitive_reduction();
    d
}

/// The states an execution entered, in order, and the one it failed in (if it did not succeed).
async fn execution_path(
    g: &Global,
    setup: &Setup,
    arn: &str,
) -> Result<(Vec<String>, Option<String>)> {
    let ctx = setup.connect(&g.aws).await?;
    let events = execution::history(&ctx, arn).await?;
    let mut entered = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut outcome = None;
    for e in &events {
        let j = execution::event_json(e);
        let ty = j["type"].as_str().unwrap_or_default();
        let name = j["details"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if ty.ends_with("StateEntered") {
            entered.push(name.clone());
            open.push(name);
        } else if ty.ends_with("StateExited") {
            if let Some(i) = open.iter().rposition(|n| *n == name) {
                open.remove(i);
            }
        }
        outcome = outcome.or(execution::outcome_of(e));
    }
    let failed = match outcome {
        Some(execution::Outcome::Succeeded) | None => None,
        Some(_) => open.last().cloned().or_else(|| entered.last().cloned()),
    };
    Ok((entered, failed))
}

/// Marks what the scenarios reached: the states, and the edges their rules, Defaults and
/// catchers (or plain transitions between reached states) stand for.
fn mark_coverage(d: &mut Diagram, c: &crate::views::checks::Covered) {
    use crate::engine::coverage::What;
    let items: Vec<_> = c.machines.iter().flat_map(|(_, m)| &m.items).collect();
    let reached = |state: &str| {
        let mut states = items
            .iter()
            .filter(|i| i.what == What::State && i.covered());
        states.any(|i| i.state == state)
    };
    let via = |from: &str, to: &str, what: What| {
        let mut ways = items.iter().filter(|i| i.what == what && i.covered());
        ways.any(|i| i.state == from && i.next.as_deref() == Some(to))
    };
    for n in &mut d.nodes {
        if reached(&n.id) {
            n.mark = Some(diagram::Mark::Visited);
        }
    }
    for e in &mut d.edges {
        e.taken = match e.kind {
            EdgeKind::Rule => via(&e.from, &e.to, What::Rule),
            EdgeKind::Default => via(&e.from, &e.to, What::Default),
            EdgeKind::Catch => via(&e.from, &e.to, What::Catch),
            _ if e.from == asl::START => reached(&e.to),
            _ if e.to == asl::END => reached(&e.from),
            _ => reached(&e.from) && reached(&e.to),
        };
    }
}

pub async fn graph(g: &Global, a: &GraphArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    // A drawing needs the shape, not every value: required variables not given are filled
    // with placeholders (as `validate` does), so a deployed stack draws without them.
    let vars = &VarArgs {
        placeholders: true,
        ..a.vars.clone()
    };
    let (stack, defs) = definitions(&setup, &a.stack, vars, None).await?;
    let mut d = if a.resources {
        resources_diagram(&stack)
    } else {
        let (id, def) = match (defs.as_slice(), a.machine.as_deref()) {
            ([], _) => {
                return Err(Error::user(format!(
                    "stack `{}` has no state machine",
                    a.stack
                )));
            }
            ([one], None) => one.clone(),
            (_, Some(m)) => defs
                .iter()
                .find(|(id, _)| id == m)
                .cloned()
                .ok_or_else(|| {
                    Error::user(format!("stack `{}` has no state machine `{m}`", a.stack))
                })?,
            (_, None) => {
                let ids: Vec<&str> = defs.iter().map(|(id, _)| id.as_str()).collect();
                return Err(Error::user(format!(
                    "stack `{}` has several state machines: {}",
                    a.stack,
                    ids.join(", ")
                ))
                .help("choose one with --machine"));
            }
        };
        asl::from_definition(&format!("{} / {id}", a.stack), &def)
    };
    if let Some(arn) = a.execution.as_deref() {
        let (entered, failed) = execution_path(g, &setup, arn).await?;
        d.mark_execution(&entered, failed.as_deref());
    }
    if a.coverage {
        let covered = super::test::scenarios_coverage(&setup, &a.stack).await?;
        mark_coverage(&mut d, &covered);
    }
    let text = diagram::render(&d, a.format);
    match a.out.as_deref() {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| {
                Error::user(format!("cannot write: {e}")).at(path.display().to_string())
            })?;
            eprintln!("wrote {}", path.display());
        }
        None => outp!("{text}"),
    }
    Ok(())
}

/// `deploy graph`'s command line.
#[derive(Debug, Clone, Args)]
pub struct GraphArgs {
    /// The stack to draw
    pub stack: String,
    /// The drawing's format
    #[arg(
        short = 'o',
        long = "output",
        alias = "format",
        value_enum,
        default_value = "dot"
    )]
    pub format: crate::diagram::Format,
    /// Write to this file instead of standard output
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Which state machine, when the stack has several (resource id)
    #[arg(long)]
    pub machine: Option<String>,
    /// Colour the path this execution took, and where it failed
    #[arg(long, value_name = "EXECUTION_ARN", conflicts_with = "resources")]
    pub execution: Option<String>,
    /// Draw the stack's resource dependency graph instead
    #[arg(long)]
    pub resources: bool,
    /// Draw what the stack's scenarios (`deploy test`) reach as a path taken, and what they
    /// do not as not taken
    #[arg(long, conflicts_with_all = ["resources", "execution"])]
    pub coverage: bool,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for GraphArgs {
    async fn run(&self, g: &Global) -> Result<()> {
        graph(g, self).await
    }
}
