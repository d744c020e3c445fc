//! One module per command family; shared set-up lives here.

pub mod deploy;
pub mod graph;
pub mod info;
pub mod test;
pub mod validate;
pub mod workflow;

use crate::aws::Ctx;
use crate::cli::{Global, Selection, VarArgs};
use crate::error::{Error, Result};
use crate::manifest::{Project, Stack, VarInputs};
use crate::state::{StackState, Store};
use std::io::{BufRead, IsTerminal, Write};

pub struct Setup {
    pub project: Project,
    pub store: Store,
    pub env: String,
}

impl Setup {
    pub fn new(g: &Global) -> Result<Setup> {
        crate::manifest::check_env(&g.env)?;
        let project = Project::discover(g.project.clone())?;
        let store = Store::new(g.state_dir.clone().unwrap_or_else(|| project.root.join(".deploy").join("state")));
        Ok(Setup { project, store, env: g.env.clone() })
    }

    /// The selected stacks, loaded and checked. With several stacks, a `--var` goes to each
    /// stack that declares it, and is an error only if none does.
    pub fn load(&self, select: &Selection, vars: &VarArgs) -> Result<Vec<Stack>> {
        let names = if select.all || select.stacks.is_empty() {
            if !select.all {
                return Err(Error::user("name a stack, or pass --all").help(format!("stacks: {}", self.project.stack_names()?.join(", "))));
            }
            self.project.stack_names()?
        } else {
            select.stacks.clone()
        };
        if names.len() == 1 {
            let inputs = VarInputs { pairs: vars.vars.clone(), files: vars.var_files.clone(), placeholders: vars.placeholders };
            return Ok(vec![self.project.load(&names[0], &inputs, &self.env)?]);
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
            let inputs = VarInputs { pairs, files: vars.var_files.clone(), placeholders: vars.placeholders };
            stacks.push(self.project.load(name, &inputs, &self.env)?);
        }
        if let Some(i) = used.iter().position(|u| !u) {
            return Err(Error::user(format!("no selected stack declares the variable in `--var {}`", vars.vars[i])));
        }
        Ok(stacks)
    }

    /// Connects to AWS (preflight included) with the project's cache folder.
    pub async fn connect(&self, opts: &crate::aws::AwsOptions) -> Result<Ctx> {
        let mut ctx = crate::aws::connect(opts).await?;
        ctx.cache_dir = self.project.root.join(".deploy").join("cache");
        ctx.project_root = self.project.root.clone();
        Ok(ctx)
    }

    /// Recorded state, refusing to mix accounts or regions.
    pub fn state_for(&self, stack: &str, ctx: &Ctx) -> Result<StackState> {
        let st = self.store.load(stack, &self.env)?;
        if let Some(t) = &st.target {
            if !st.resources.is_empty() && (t.account_id != ctx.account_id || t.region != ctx.region) {
                return Err(Error::user(format!(
                    "stack `{stack}` (env `{}`) is recorded in account {} region {}, and this run points at account {} region {}",
                    self.env, t.account_id, t.region, ctx.account_id, ctx.region
                ))
                .help("use the profile/region it was deployed with, or another --env / --state-dir"));
            }
        }
        Ok(st)
    }
}

/// Asks on the terminal; without one, refuses (nothing is changed).
pub fn confirm(question: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(crate::error::Class::NotConfirmed, "nothing was changed: there is no terminal to confirm on")
            .help("review the plan above and run again with --yes"));
    }
    eprint!("{question} Type 'yes' to go on: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() == "yes" { Ok(()) } else { Err(Error::new(crate::error::Class::NotConfirmed, "cancelled: nothing was changed")) }
}
