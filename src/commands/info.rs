//! `list`, `outputs` and `render`: read-only views of the project and its recorded state.

use super::{Setup, definitions};
use crate::error::{Error, Result};
use crate::options::{Format, Global, OutputArgs, VarArgs};
use crate::options::{ReportArgs, Run};

use crate::state::Status;
use clap::Args;
use serde_json::{Value, json};

pub async fn list(g: &Global, out: &OutputArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let names = setup.project.stack_names()?;
    let deployed: Vec<(String, String)> = setup
        .store
        .list()
        .await?
        .into_iter()
        .filter(|(e, _)| !g.env_given || *e == g.env)
        .collect();
    let mut rows = Vec::new();
    for name in &names {
        let envs: Vec<&String> = deployed
            .iter()
            .filter(|(_, s)| s == name)
            .map(|(e, _)| e)
            .collect();
        if envs.is_empty() {
            rows.push(
                json!({"stack": name, "env": Value::Null, "status": "not deployed", "resources": 0,
                "description": crate::manifest::description(&setup.project, name)}),
            );
        }
        for env in envs {
            let st = setup.store.load(name, env).await?;
            let pending = st
                .resources
                .values()
                .filter(|e| e.status == Status::Pending)
                .count();
            let status = if pending > 0 {
                "incomplete (run up or destroy)"
            } else {
                "deployed"
            };
            rows.push(json!({"stack": name, "env": env, "status": status, "resources": st.resources.len(),
                "account_id": st.target.as_ref().map(|t| t.account_id.clone()), "region": st.target.as_ref().map(|t| t.region.clone())}));
        }
    }
    // State for stacks whose manifests are gone still shows, so it can be destroyed.
    for (env, s) in &deployed {
        if !names.contains(s) {
            rows.push(json!({"stack": s, "env": env, "status": "deployed (manifest removed)", "resources": setup.store.load(s, env).await?.resources.len()}));
        }
    }
    crate::views::info::stacks(&rows, out.format);
    Ok(())
}

pub async fn outputs(g: &Global, stack: &str, name: Option<&str>, out: &ReportArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let st = setup.store.load(stack, &setup.env).await?;
    if st.resources.is_empty() {
        return Err(Error::user(format!(
            "stack `{stack}` is not deployed in env `{}`",
            setup.env
        ))
        .help(format!("deploy it with `deploy up {stack}`")));
    }
    if let Some(name) = name {
        let v = st.outputs.get(name).ok_or_else(|| {
            Error::user(format!("stack `{stack}` has no output `{name}`")).help(format!(
                "its outputs: {}",
                st.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        crate::views::info::one_output(v);
        return Ok(());
    }
    crate::views::info::outputs(stack, &setup.env, &st.outputs, out.format);
    Ok(())
}

/// Prints a stack's rendered state machine definitions, without calling AWS.
pub async fn render(g: &Global, stack: &str, vars: &VarArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let (_, rendered) = definitions(&setup, stack, vars, None).await?;
    match rendered.as_slice() {
        [] => eprintln!("stack `{stack}` has no templated definitions"),
        [(_, one)] => outln!("{}", serde_json::to_string_pretty(one).unwrap()),
        many => {
            for (id, v) in many {
                outln!("// {id}\n{}", serde_json::to_string_pretty(v).unwrap());
            }
        }
    }
    Ok(())
}

/// `deploy list`'s command line.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for ListArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        list(g, &self.out).await
    }
}

/// `deploy outputs`'s command line.
#[derive(Debug, Clone, Args)]
pub struct OutputsArgs {
    /// The deployed stack
    pub stack: String,
    /// Print only this output's value, raw (for scripts: $(deploy outputs s state_machine_arn))
    pub name: Option<String>,
    #[command(flatten)]
    pub out: ReportArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for OutputsArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        outputs(g, &self.stack, self.name.as_deref(), &self.out).await
    }
}

/// `deploy render`'s command line.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The stack whose definitions to render
    pub stack: String,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for RenderArgs {
    async fn run(&self, g: &Global) -> Result<()> {
        render(g, &self.stack, &self.vars).await
    }
}
