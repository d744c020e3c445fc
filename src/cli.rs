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

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format: text for people, json for CI
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
    /// How many resource operations may run at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,
}

impl Command {
    /// `--output markdown` is for the commands whose result is worth posting.
    pub fn check_format(&self) -> Result<(), String> {
        let markdown_ok = matches!(
            self,
            Command::Up { .. }
                | Command::Plan { .. }
                | Command::Destroy { .. }
                | Command::Outputs { .. }
        );
        let markdown = match self {
            Command::List { out } | Command::Envs { out } => out.format == Format::Markdown,
            Command::Sweep { out, .. }
            | Command::Run { out, .. }
            | Command::Executions { out, .. }
            | Command::History { out, .. }
            | Command::Validate { out, .. }
            | Command::Test { out, .. } => out.format == Format::Markdown,
            _ => false,
        };
        if markdown && !markdown_ok {
            Err("--output markdown is for plan, up, destroy and outputs".into())
        } else {
            Ok(())
        }
    }

    /// Whether the command was asked for `--output json` (its errors then come as JSON too).
    pub fn json(&self) -> bool {
        let out = match self {
            Command::Up { out, .. }
            | Command::Plan { out, .. }
            | Command::Destroy { out, .. }
            | Command::List { out }
            | Command::Envs { out }
            | Command::Sweep { out, .. }
            | Command::Outputs { out, .. }
            | Command::Run { out, .. }
            | Command::Executions { out, .. }
            | Command::History { out, .. }
            | Command::Validate { out, .. }
            | Command::Test { out, .. } => out,
            _ => return false,
        };
        out.format == Format::Json
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update the resources of one or more stacks
    Up {
        #[command(flatten)]
        select: Selection,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        apply: ApplyArgs,
        #[command(flatten)]
        out: OutputArgs,
        /// The environment expires this long after its last `up` (e.g. 72h); `deploy sweep` removes it then
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// List the environments recorded in the state backend: stacks, resources, created, last up, by whom, expiry
    Envs {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Destroy the environments that expired (up --ttl) or, with --older-than, that nobody brought up since
    Sweep {
        /// Also sweep environments whose last `up` is older than this (e.g. 72h)
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<std::time::Duration>,
        /// The default env is never swept unless this is given
        #[arg(long)]
        include_default: bool,
        /// Also sweep environments that exist (by their tags) without any state
        #[arg(long)]
        orphans: bool,
        #[command(flatten)]
        apply: ApplyArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show what `up` would change, without changing anything
    Plan {
        #[command(flatten)]
        select: Selection,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        out: OutputArgs,
        /// Exit 0 when nothing would change, 2 when something would, 1 on any error (as Terraform)
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Print the env name for a branch name (valid, stable, distinct for distinct branches)
    EnvName {
        /// The branch name, e.g. feature/Add-Login or refs/heads/main
        branch: String,
    },
    /// Remove everything a stack created (no stack: every stack deployed in the env)
    Destroy {
        /// Stacks to destroy (none: every stack of the project and every one recorded in the env)
        stacks: Vec<String>,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        apply: ApplyArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Take over an existing resource that has the name a stack expects, deliberately: it is
    /// recorded as the stack's (the next `up` brings it to the manifest, tags included)
    Import {
        /// The stack whose manifest declares the resource
        stack: String,
        /// The resource id in the stack's manifest
        resource: String,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Remove a stack's lock left by a run that is gone (a crash, a killed CI job)
    Unlock {
        /// The stack whose lock to remove (in the env given by --env)
        stack: String,
    },
    /// List the project's stacks and where they are deployed
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Print a deployed stack's outputs (state machine ARN, ...)
    Outputs {
        /// The deployed stack
        stack: String,
        /// Print only this output's value, raw (for scripts: $(deploy outputs s state_machine_arn))
        name: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Start an execution of a stack's state machine and follow it until it ends
    Run {
        /// The stack whose state machine to start
        stack: String,
        /// Which state machine, when the stack has several (resource id or name)
        #[arg(long)]
        machine: Option<String>,
        /// Execution input (JSON)
        #[arg(long, conflicts_with = "input_file")]
        input: Option<String>,
        /// Read the execution input from a file
        #[arg(long, value_name = "FILE")]
        input_file: Option<PathBuf>,
        /// Execution name (default: generated)
        #[arg(long)]
        name: Option<String>,
        /// Print the execution ARN and return without following it
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List recent executions of a stack's state machine
    Executions {
        /// The stack whose state machine's executions to list
        stack: String,
        /// Which state machine, when the stack has several (resource id or name)
        #[arg(long)]
        machine: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Print a past (or running) execution's events, as `run` does live
    History {
        /// The execution, as `deploy run` or `deploy executions` print it
        execution_arn: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Answer a waiting task token with success (SendTaskSuccess)
    Approve {
        #[command(flatten)]
        waiting: WaitingTask,
        /// The task's result (JSON), e.g. '{"admin": true}' (as the AWS CLI's --task-output)
        #[arg(long, default_value = "{}", value_name = "JSON")]
        task_output: String,
    },
    /// Answer a waiting task token with failure (SendTaskFailure)
    Reject {
        #[command(flatten)]
        waiting: WaitingTask,
        /// The error name the task fails with, e.g. Rejected (Catch rules match on it)
        #[arg(long)]
        error: Option<String>,
        /// A longer explanation of the failure
        #[arg(long)]
        cause: Option<String>,
    },
    /// Serve the Step Functions API on loopback, running workflows on the local engine; task
    /// integrations call the emulator behind --endpoint-url. Use with AWS_ENDPOINT_URL_SFN.
    Local {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on (0: a free one; the first line printed says which)
        #[arg(long, default_value_t = 8083)]
        port: u16,
        /// Send every http:invoke here instead (scheme and host replaced, path kept), e.g. a local stand-in API
        #[arg(long, value_name = "URL")]
        http_endpoint: Option<String>,
        /// A Step Functions Local mock configuration; start an execution on `<machine ARN>#<test case>` to use a case's mocks
        #[arg(long, value_name = "FILE")]
        mock_config: Option<PathBuf>,
        /// Multiply every Wait, retry interval and timeout by this (0.01: a 10 s Wait takes 0.1 s)
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
    },
    /// Check definitions against the Amazon States Language, before any API call
    Validate {
        #[command(flatten)]
        select: Selection,
        /// A standalone definition file to check (repeatable; no stack, no AWS)
        #[arg(long = "file", value_name = "F.asl.json")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Run a stack's scenarios (stacks/<stack>/tests/*.json) on the local engine, with mocks
    Test {
        /// The stack whose scenarios to run
        stack: String,
        /// Only this scenario (file name without .json)
        #[arg(long, conflicts_with = "mock_config")]
        scenario: Option<String>,
        /// Run the test cases of a Step Functions Local mock configuration file instead
        #[arg(long, value_name = "FILE")]
        mock_config: Option<PathBuf>,
        /// Execution input for --mock-config test cases (JSON)
        #[arg(long, default_value = "{}", requires = "mock_config")]
        input: String,
        /// Also write the results as JUnit XML to this file (for CI test reports)
        #[arg(long, value_name = "FILE", conflicts_with = "mock_config")]
        junit: Option<PathBuf>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Print the least-privilege IAM policy a stack's state machine needs
    Policy {
        /// The stack whose state machine's policy to derive
        stack: String,
        /// Which state machine, when the stack has several (resource id)
        #[arg(long)]
        machine: Option<String>,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Draw a stack's state machine (or its resources) as DOT, Mermaid or SVG
    Graph {
        /// The stack to draw
        stack: String,
        /// The drawing's format
        #[arg(
            short = 'o',
            long = "output",
            alias = "format",
            value_enum,
            default_value = "dot"
        )]
        format: crate::diagram::Format,
        /// Write to this file instead of standard output
        #[arg(long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
        /// Which state machine, when the stack has several (resource id)
        #[arg(long)]
        machine: Option<String>,
        /// Colour the path this execution took, and where it failed
        #[arg(long, value_name = "EXECUTION_ARN", conflicts_with = "resources")]
        execution: Option<String>,
        /// Draw the stack's resource dependency graph instead
        #[arg(long)]
        resources: bool,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Print a stack's rendered state machine definitions, without calling AWS
    Render {
        /// The stack whose definitions to render
        stack: String,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Print shell completions, e.g. `deploy completions bash > ~/.local/share/bash-completion/completions/deploy`
    Completions {
        /// The shell to complete in
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `deploy man > deploy.1 && man ./deploy.1`
    Man,
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
