//! The options that commands share (global options, output formats, stack selection, how to
//! apply) and the `Run` trait every command's arguments implement. Below every command: a
//! command takes what it shares from here, and only `cli.rs`, the top, knows every command.

use crate::aws::AwsOptions;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

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

/// `--target` / `--exclude`: act on part of the stacks.
#[derive(Debug, Clone, Default, Args)]
pub struct PartArgs {
    /// Act only on this resource (an id of the manifest or state) and what it depends on; for
    /// destroy, on it and what depends on it (repeatable)
    #[arg(long = "target", value_name = "RES")]
    pub targets: Vec<String>,
    /// Leave out this resource and what depends on it; for destroy, it and what it depends on
    /// (repeatable)
    #[arg(long = "exclude", value_name = "RES")]
    pub excludes: Vec<String>,
}

impl PartArgs {
    pub fn part(&self) -> crate::refactor::Part {
        crate::refactor::Part {
            targets: self.targets.clone(),
            excludes: self.excludes.clone(),
        }
    }
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
