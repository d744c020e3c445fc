//! The command line's top: one enum of subcommands, each wrapping its own arguments (which live
//! in the command's module), the one `match` that knows them all, and the two commands made from
//! the command line itself (`completions`, `man`). `main` parses and runs.

use crate::error::Result;
use crate::options::{Global, Run};
use clap::{Args, CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "deploy",
    version,
    about = "Deploy AWS Step Functions workflows and everything they need, from stack manifests"
)]
#[command(
    after_help = "Exit codes: 0 ok, 1 internal error, 2 bad input, 3 AWS error, 4 partial failure, \
5 not confirmed, 6 stack locked, 7/8/9 execution failed/timed out/aborted (run, history), 130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

impl Command {
    /// The command's arguments, to run.
    pub fn args(&self) -> &dyn Run {
        match self {
            Command::Up(a) => a,
            Command::Envs(a) => a,
            Command::Sweep(a) => a,
            Command::Plan(a) => a,
            Command::EnvName(a) => a,
            Command::Destroy(a) => a,
            Command::Import(a) => a,
            Command::Unlock(a) => a,
            Command::State(a) => a,
            Command::List(a) => a,
            Command::Outputs(a) => a,
            Command::Rollout(a) => a,
            Command::Run(a) => a,
            Command::Executions(a) => a,
            Command::History(a) => a,
            Command::Approve(a) => a,
            Command::Reject(a) => a,
            Command::TestState(a) => a,
            Command::Redrive(a) => a,
            Command::Local(a) => a,
            Command::Validate(a) => a,
            Command::Test(a) => a,
            Command::Cost(a) => a,
            Command::Policy(a) => a,
            Command::Graph(a) => a,
            Command::Render(a) => a,
            Command::Completions(a) => a,
            Command::Man(a) => a,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what `up` would change, without changing anything
    Plan(crate::commands::deploy::PlanArgs),
    /// Create or update the resources of one or more stacks
    Up(crate::commands::deploy::UpArgs),
    /// Remove everything a stack created (no stack: every stack deployed in the env)
    Destroy(crate::commands::destroy::DestroyArgs),
    /// Check definitions against the Amazon States Language, before any API call
    Validate(crate::commands::validate::ValidateArgs),
    /// Print the least-privilege IAM policy a stack's state machine needs
    Policy(crate::commands::validate::PolicyArgs),
    /// Print a stack's rendered state machine definitions, without calling AWS
    Render(crate::commands::info::RenderArgs),
    /// Draw a stack's state machine (or its resources) as DOT, Mermaid or SVG
    Graph(crate::commands::graph::GraphArgs),
    /// Print a deployed stack's outputs (state machine ARN, ...)
    Outputs(crate::commands::info::OutputsArgs),
    /// List the project's stacks and where they are deployed
    List(crate::commands::info::ListArgs),
    /// Start an execution of a stack's state machine and follow it until it ends
    Run(crate::commands::workflow::RunArgs),
    /// List recent executions of a stack's state machine
    Executions(crate::commands::workflow::ExecutionsArgs),
    /// Print a past (or running) execution's events, as `run` does live
    History(crate::commands::workflow::HistoryArgs),
    /// Answer a waiting task token with success (SendTaskSuccess)
    Approve(crate::commands::workflow::ApproveArgs),
    /// Answer a waiting task token with failure (SendTaskFailure)
    Reject(crate::commands::workflow::RejectArgs),
    /// Go on with an execution that failed, timed out or was aborted, from the state that did
    /// not succeed (RedriveExecution), and follow it until it ends
    Redrive(crate::commands::probe::RedriveArgs),
    /// Run a stack's scenarios (stacks/<stack>/tests/*.json) on the local engine, with mocks
    Test(crate::commands::test::TestArgs),
    /// Run one state of a stack's state machine on its own, its call answered by a mock or
    /// made for real (Step Functions' TestState), and show each step of its input and output
    TestState(crate::commands::probe::TestStateArgs),
    /// What one execution and a month of them cost: from the stack's scenarios or a recorded
    /// execution, by AWS's published Step Functions prices
    Cost(crate::commands::cost::CostArgs),
    /// Serve the Step Functions API on loopback, running workflows on the local engine; task
    /// integrations call the emulator behind --endpoint-url. Use with AWS_ENDPOINT_URL_SFN.
    Local(crate::local::LocalArgs),
    /// List the environments recorded in the state backend: stacks, resources, created, last up, by whom, expiry
    Envs(crate::commands::envs::EnvsArgs),
    /// Print the env name for a branch name (valid, stable, distinct for distinct branches)
    EnvName(crate::commands::envs::EnvNameArgs),
    /// Destroy the environments that expired (up --ttl) or, with --older-than, that nobody brought up since
    Sweep(crate::commands::envs::SweepArgs),
    /// Take over an existing resource that has the name a stack expects, deliberately: it is
    /// recorded as the stack's (the next `up` brings it to the manifest, tags included)
    Import(crate::commands::deploy::ImportArgs),
    /// A stack's recorded state: list, show, and the rare repair by hand (mv, rm), under its
    /// lock, the previous document kept as a backup
    State(crate::commands::state::StateArgs),
    /// Remove a stack's lock left by a run that is gone (a crash, a killed CI job)
    Unlock(crate::commands::deploy::UnlockArgs),
    /// A gradual rollout of a new version to an alias: status, promote (all to the new
    /// version) or abort (all back to the previous one)
    Rollout(crate::commands::rollout::RolloutArgs),
    /// Print shell completions, e.g. `deploy completions bash > ~/.local/share/bash-completion/completions/deploy`
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `deploy man > deploy.1 && man ./deploy.1`
    Man(ManArgs),
}

/// `deploy completions`'s command line.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[async_trait::async_trait(?Send)]
impl Run for CompletionsArgs {
    async fn run(&self, _: &Global) -> Result<()> {
        let mut buf = Vec::new();
        let mut cli = Cli::command();
        clap_complete::generate(self.shell, &mut cli, "deploy", &mut buf);
        outp!("{}", String::from_utf8_lossy(&buf));
        Ok(())
    }
}

/// `deploy man`'s command line.
#[derive(Debug, Clone, Args)]
pub struct ManArgs;

#[async_trait::async_trait(?Send)]
impl Run for ManArgs {
    async fn run(&self, _: &Global) -> Result<()> {
        let mut buf = Vec::new();
        let cli = Cli::command();
        clap_mangen::Man::new(cli).render(&mut buf)?;
        outp!("{}", String::from_utf8_lossy(&buf));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every argument and flag of every command says what it is for.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if a.get_help().is_none() && !["help", "version"].contains(&a.get_id().as_str()) {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "deploy", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:#?}");
        Cli::command().debug_assert();
    }

    /// `-o` is the output format wherever it exists.
    #[test]
    fn dash_o_is_always_the_output_format() {
        fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
            for a in cmd.get_arguments().filter(|a| a.get_short() == Some('o')) {
                if a.get_long() != Some("output") {
                    out.push(format!(
                        "{} -o is --{}",
                        cmd.get_name(),
                        a.get_long().unwrap_or("?")
                    ));
                }
            }
            cmd.get_subcommands().for_each(|s| walk(s, out));
        }
        let mut wrong = Vec::new();
        walk(&Cli::command(), &mut wrong);
        assert!(wrong.is_empty(), "{wrong:?}");
    }
}
