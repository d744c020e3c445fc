//! The command line: one enum of subcommands, each with its own arguments; `main` dispatches.

use crate::aws::AwsOptions;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// The folder holding stacks/ and templates/ (default: nearest one upward from here)
    #[arg(long, global = true, env = "DEPLOY_PROJECT")]
    pub project: Option<PathBuf>,
    /// Where state is recorded: a folder, or s3://BUCKET/PREFIX shared by many machines
    /// (default: deploy.toml's [state] url, else <project>/.deploy/state)
    #[arg(
        long = "state",
        global = true,
        env = "DEPLOY_STATE",
        value_name = "URL"
    )]
    pub state: Option<String>,
    /// A state folder (the older spelling of --state)
    #[arg(long, global = true, env = "DEPLOY_STATE_DIR", hide_short_help = true)]
    pub state_dir: Option<PathBuf>,
    /// How long to wait for a stack's lock held by another run, e.g. 30s, 2m (default: no wait)
    #[arg(long, global = true, env = "DEPLOY_LOCK_TIMEOUT", value_parser = humantime::parse_duration, default_value = "0s")]
    pub lock_timeout: std::time::Duration,
    /// How long an S3 lock outlives its holder's last renewal: a run renews it while it lives;
    /// the next run takes over the lock of one that was killed once this ran out (default:
    /// deploy.toml's [state] lock_lease, else 2m)
    #[arg(long, global = true, env = "DEPLOY_LOCK_LEASE", value_parser = humantime::parse_duration, hide_short_help = true)]
    pub lock_lease: Option<std::time::Duration>,
    /// Environment: an isolated copy of the stacks, with names prefixed by it
    #[arg(long, global = true, env = "DEPLOY_ENV", default_value = crate::manifest::DEFAULT_ENV)]
    pub env: String,
    /// The env named after this branch (as `deploy env-name BRANCH` prints it); instead of --env
    #[arg(
        long,
        global = true,
        env = "DEPLOY_ENV_FROM_BRANCH",
        value_name = "BRANCH",
        conflicts_with = "env"
    )]
    pub env_from_branch: Option<String>,
    /// The branch of --env-from-branch (the env is named after it; `up` records it).
    #[arg(skip)]
    pub branch: Option<String>,
    /// Whether --env / DEPLOY_ENV was given (not the default): `list` then shows that env only.
    #[arg(skip)]
    pub env_given: bool,
    /// When to colour the output: auto (a terminal, unless NO_COLOR is set or CLICOLOR_FORCE
    /// forces it), always, never
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: crate::output::ColorChoice,
    /// More logging (-v: the tool's, -vv: also the AWS SDK's)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(flatten)]
    pub aws: AwsOptions,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    /// A summary to post as a pull request comment or into $GITHUB_STEP_SUMMARY (plan, up,
    /// destroy, outputs)
    Markdown,
}

/// Which waiting task to answer: its token, or the execution that waits (its one pending
/// callback is found in its history, waiting up to a minute for it to be scheduled).
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct WaitingTask {
    /// The task token, as `deploy run` / `deploy history` print it
    #[arg(long)]
    pub token: Option<String>,
    /// The execution ARN whose waiting task to answer (as `deploy run --no-wait` prints it)
    #[arg(long)]
    pub execution: Option<String>,
}

/// `-o/--output`: text for people, json for CI.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format: text for people, json for CI
    #[arg(long = "output", short = 'o', default_value = "text", value_name = "FORMAT",
          value_parser = text_or_json())]
    pub format: Format,
}

/// text or json (markdown is for the commands whose result is worth posting).
fn text_or_json() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["text", "json"]).map(|s| {
        if s == "json" {
            Format::Json
        } else {
            Format::Text
        }
    })
}

/// `-o/--output` of a command whose result is worth posting: also markdown.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Output format: text for people, json for CI, markdown for a pull request
    #[arg(long = "output", short = 'o', value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Clone, Args, Default)]
pub struct VarArgs {
    /// Set a stack variable: --var name=value (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read stack variables from a TOML file of `name = value` lines (repeatable)
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Fill required variables that were not given with placeholders (validation only)
    #[arg(skip)]
    pub placeholders: bool,
}

#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// Stacks to act on (folders of stacks/)
    pub stacks: Vec<String>,
    /// Every stack of the project
    #[arg(long, conflicts_with = "stacks")]
    pub all: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// At most how many changes run at once per AWS service: they start at 32 (or this, if
    /// lower), grow while the service answers and halve when it throttles
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
}

/// What a command's arguments do: run it, and say which output format was asked for (its
/// errors then come in that format too). Each command's `Args` lives in its own module.
#[async_trait::async_trait(?Send)]
pub trait Run {
    fn format(&self) -> Format {
        Format::Text
    }
    async fn run(&self, g: &Global) -> crate::error::Result<()>;
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
            Command::List(a) => a,
            Command::Outputs(a) => a,
            Command::Rollout(a) => a,
            Command::Run(a) => a,
            Command::Executions(a) => a,
            Command::History(a) => a,
            Command::Approve(a) => a,
            Command::Reject(a) => a,
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
    /// Create or update the resources of one or more stacks
    Up(crate::commands::deploy::UpArgs),
    /// List the environments recorded in the state backend: stacks, resources, created, last up, by whom, expiry
    Envs(crate::commands::envs::EnvsArgs),
    /// Destroy the environments that expired (up --ttl) or, with --older-than, that nobody brought up since
    Sweep(crate::commands::envs::SweepArgs),
    /// Show what `up` would change, without changing anything
    Plan(crate::commands::deploy::PlanArgs),
    /// Print the env name for a branch name (valid, stable, distinct for distinct branches)
    EnvName(crate::commands::envs::EnvNameArgs),
    /// Remove everything a stack created (no stack: every stack deployed in the env)
    Destroy(crate::commands::deploy::DestroyArgs),
    /// Take over an existing resource that has the name a stack expects, deliberately: it is
    /// recorded as the stack's (the next `up` brings it to the manifest, tags included)
    Import(crate::commands::deploy::ImportArgs),
    /// Remove a stack's lock left by a run that is gone (a crash, a killed CI job)
    Unlock(crate::commands::deploy::UnlockArgs),
    /// List the project's stacks and where they are deployed
    List(crate::commands::info::ListArgs),
    /// Print a deployed stack's outputs (state machine ARN, ...)
    Outputs(crate::commands::info::OutputsArgs),
    /// Start an execution of a stack's state machine and follow it until it ends
    Run(crate::commands::workflow::RunArgs),
    /// A gradual rollout of a new version to an alias: status, promote (all to the new
    /// version) or abort (all back to the previous one)
    Rollout(crate::commands::rollout::RolloutArgs),
    /// List recent executions of a stack's state machine
    Executions(crate::commands::workflow::ExecutionsArgs),
    /// Print a past (or running) execution's events, as `run` does live
    History(crate::commands::workflow::HistoryArgs),
    /// Answer a waiting task token with success (SendTaskSuccess)
    Approve(crate::commands::workflow::ApproveArgs),
    /// Answer a waiting task token with failure (SendTaskFailure)
    Reject(crate::commands::workflow::RejectArgs),
    /// Serve the Step Functions API on loopback, running workflows on the local engine; task
    /// integrations call the emulator behind --endpoint-url. Use with AWS_ENDPOINT_URL_SFN.
    Local(crate::local::LocalArgs),
    /// Check definitions against the Amazon States Language, before any API call
    Validate(crate::commands::validate::ValidateArgs),
    /// Run a stack's scenarios (stacks/<stack>/tests/*.json) on the local engine, with mocks
    Test(crate::commands::test::TestArgs),
    /// What one execution and a month of them cost: from the stack's scenarios or a recorded
    /// execution, by AWS's published Step Functions prices
    Cost(crate::commands::cost::CostArgs),
    /// Print the least-privilege IAM policy a stack's state machine needs
    Policy(crate::commands::validate::PolicyArgs),
    /// Draw a stack's state machine (or its resources) as DOT, Mermaid or SVG
    Graph(crate::commands::graph::GraphArgs),
    /// Print a stack's rendered state machine definitions, without calling AWS
    Render(crate::commands::info::RenderArgs),
    /// Print shell completions, e.g. `deploy completions bash > ~/.local/share/bash-completion/completions/deploy`
    Completions(crate::commands::meta::CompletionsArgs),
    /// Print the manual page (roff), e.g. `deploy man > deploy.1 && man ./deploy.1`
    Man(crate::commands::meta::ManArgs),
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
