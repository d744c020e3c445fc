//! `deploy state list | show | mv | rm`: a stack's recorded state read, or repaired by hand
//! (the rare case `[[moved]]` and `[[removed]]` do not cover). A repair runs under the stack's
//! lock (refused while another run holds it) and keeps the document it replaces as a backup;
//! nothing in AWS is touched.

use super::Setup;
use crate::error::{Error, Result};
use crate::options::{Format, Global, ReportArgs, Run};
use crate::state::{Entry, StackState};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    #[command(subcommand)]
    pub command: StateCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum StateCommand {
    /// List a stack's recorded resources: id, kind, name, status
    List {
        /// The stack (in the env given by --env)
        stack: String,
        #[command(flatten)]
        out: ReportArgs,
    },
    /// Show one recorded resource: its attributes (secrets masked), outputs and dependencies
    Show {
        /// The stack (in the env given by --env)
        stack: String,
        /// The resource's id in state
        resource: String,
        #[command(flatten)]
        out: ReportArgs,
    },
    /// Rename a record from FROM to TO, or move it to another stack with --to-stack; nothing
    /// in AWS changes (the manifest must say the same: see [[moved]])
    Mv {
        /// The stack whose state records it (in the env given by --env)
        stack: String,
        /// The id it is recorded under
        from: String,
        /// The id to record it under
        to: String,
        /// The stack of the project it goes to (its lock is taken too)
        #[arg(long)]
        to_stack: Option<String>,
    },
    /// Forget records: the resources stay in AWS and are no longer the stack's (see
    /// [[removed]], which also takes deploy's tags off them)
    Rm {
        /// The stack whose state records them (in the env given by --env)
        stack: String,
        /// The ids to forget
        #[arg(required = true)]
        resources: Vec<String>,
    },
}

#[async_trait::async_trait(?Send)]
impl Run for StateArgs {
    fn format(&self) -> Format {
        match &self.command {
            StateCommand::List { out, .. } | StateCommand::Show { out, .. } => out.format,
            _ => Format::Text,
        }
    }
    async fn run(&self, g: &Global) -> Result<()> {
        let setup = Setup::new(g)?;
        match &self.command {
            StateCommand::List { stack, out } => list(&setup, stack, out.format).await,
            StateCommand::Show {
                stack,
                resource,
                out,
            } => show(&setup, stack, resource, out.format).await,
            StateCommand::Mv {
                stack,
                from,
                to,
                to_stack,
            } => mv(&setup, stack, from, to, to_stack.as_deref()).await,
            StateCommand::Rm { stack, resources } => rm(&setup, stack, resources).await,
        }
    }
}

/// A stack's state as recorded; an error when nothing is.
async fn recorded(setup: &Setup, stack: &str) -> Result<StackState> {
    let st = setup.store.load(stack, &setup.env).await?;
    if st.resources.is_empty() {
        return Err(Error::user(format!(
            "stack `{stack}` records nothing in env `{}` ({})",
            setup.env,
            setup.store.describe()
        ))
        .help("`deploy list` shows the stacks and envs recorded"));
    }
    Ok(st)
}

fn entry<'a>(st: &'a StackState, id: &str) -> Result<&'a Entry> {
    st.resources.get(id).ok_or_else(|| {
        Error::user(format!(
            "stack `{}` (env `{}`) records no `{id}`",
            st.stack, st.env
        ))
        .suggest(id, st.resources.keys().map(String::as_str))
        .help("`deploy state list STACK` lists what it records")
    })
}

/// The name people know a record by (secrets masked).
fn name_of(e: &Entry) -> String {
    crate::resources::lookup(&e.kind)
        .map(|k| k.display_name(&crate::secrets::mask(&e.attrs, k.sensitive(), &[])))
        .unwrap_or_default()
}

async fn list(setup: &Setup, stack: &str, format: Format) -> Result<()> {
    let st = recorded(setup, stack).await?;
    let rows: Vec<Value> = st
        .resources
        .iter()
        .map(|(id, e)| json!({"id": id, "kind": e.kind, "name": name_of(e), "status": e.status}))
        .collect();
    if format == Format::Json {
        let doc = json!({"stack": stack, "env": setup.env, "resources": rows});
        outln!("{}", crate::views::json_doc(doc));
        return Ok(());
    }
    let width = st.resources.keys().map(String::len).max().unwrap_or(0);
    for r in &rows {
        let id = r["id"].as_str().unwrap_or_default();
        let kind = r["kind"].as_str().unwrap_or_default();
        let pending = match r["status"].as_str() {
            Some("pending") => "  (pending: an interrupted create)",
            _ => "",
        };
        outln!(
            "{id:<width$}  {kind:<28} {}{pending}",
            r["name"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

async fn show(setup: &Setup, stack: &str, id: &str, format: Format) -> Result<()> {
    let st = recorded(setup, stack).await?;
    let e = entry(&st, id)?;
    let sensitive = crate::resources::lookup(&e.kind).map_or(&[][..], |k| k.sensitive());
    let doc = json!({
        "id": id,
        "kind": e.kind,
        "status": e.status,
        "attributes": crate::secrets::mask(&e.attrs, sensitive, &[]),
        "outputs": crate::secrets::mask(&json!(e.outputs), &[], &[]),
        "depends_on": e.depends_on,
    });
    match format {
        Format::Json => outln!("{}", crate::views::json_doc(doc)),
        _ => outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default()),
    }
    Ok(())
}

/// Writes the repaired states (`changed`), each after its backup; says where the backups are.
async fn write_repaired(setup: &Setup, changed: &[(&StackState, StackState)]) -> Result<()> {
    for (before, after) in changed {
        let text =
            serde_json::to_string_pretty(before).map_err(|e| Error::internal(e.to_string()))?;
        let at = setup.store.backup(&before.stack, &setup.env, &text).await?;
        setup.store.save(after).await?;
        eprintln!(
            "the previous state of stack `{}` is kept at {at}",
            before.stack
        );
    }
    Ok(())
}

async fn mv(
    setup: &Setup,
    stack: &str,
    from: &str,
    to: &str,
    to_stack: Option<&str>,
) -> Result<()> {
    let dest = to_stack.filter(|t| *t != stack);
    let names: Vec<String> = std::iter::once(stack)
        .chain(dest)
        .map(str::to_string)
        .collect();
    setup
        .locked(&names, "state mv", async {
            let before = recorded(setup, stack).await?;
            let mut after = before.clone();
            let e = entry(&after, from)?.clone();
            after.resources.remove(from);
            let Some(dest) = dest else {
                if after.resources.contains_key(to) {
                    return Err(taken(stack, &setup.env, to));
                }
                for other in after.resources.values_mut() {
                    if other.depends_on.remove(from) {
                        other.depends_on.insert(to.to_string());
                    }
                }
                after.resources.insert(to.to_string(), e);
                write_repaired(setup, &[(&before, after)]).await?;
                outln!("moved {stack}.{from} to {stack}.{to} (nothing in AWS changed)");
                return Ok(());
            };
            let there = setup.store.load(dest, &setup.env).await?;
            if there.resources.contains_key(to) {
                return Err(taken(dest, &setup.env, to));
            }
            let mut there_after = there.clone();
            there_after.target = there.target.clone().or(before.target.clone());
            // what it depended on stays behind: the new stack orders it by its own manifest
            there_after.resources.insert(
                to.to_string(),
                Entry {
                    depends_on: Default::default(),
                    ..e
                },
            );
            // the stack it goes to first: a crash between the two writes records it twice
            write_repaired(setup, &[(&there, there_after), (&before, after)]).await?;
            outln!("moved {stack}.{from} to {dest}.{to} (nothing in AWS changed)");
            Ok(())
        })
        .await
}

fn taken(stack: &str, env: &str, id: &str) -> Error {
    Error::user(format!(
        "stack `{stack}` (env `{env}`) already records a `{id}`; nothing was changed"
    ))
    .help(format!(
        "`deploy state rm {stack} {id}` forgets it first, if that one is not meant"
    ))
}

async fn rm(setup: &Setup, stack: &str, ids: &[String]) -> Result<()> {
    setup
        .locked(&[stack.to_string()], "state rm", async {
            let before = recorded(setup, stack).await?;
            let mut after = before.clone();
            for id in ids {
                entry(&before, id)?;
                after.resources.remove(id);
            }
            write_repaired(setup, &[(&before, after)]).await?;
            for id in ids {
                outln!("forgot {stack}.{id}: it stays in AWS, no longer this stack's");
            }
            eprintln!(
                "note: while the manifest still declares them, the next `up` finds them by name and adopts them again (their deploy tags say whose they are); [[removed]] forgets a resource and takes those tags off"
            );
            Ok(())
        })
        .await
}
