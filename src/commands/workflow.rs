//! `run`, `executions`, `history`, `approve`, `reject`: see a deployed workflow work, and
//! answer its callbacks, without a console.

use super::Setup;
use crate::aws::api_error;
use crate::error::{Error, Result};
use crate::execution;
use crate::options::{Format, Global};
use crate::options::{OutputArgs, Run, WaitingTask};
use crate::state::Status;
use crate::views::execution::Printer;
use aws_sdk_sfn::error::ProvideErrorMetadata;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// The ARN to start and list a stack's deployed state machine by (`machine`: resource id or
/// name, when several): its alias's when it has one, else the machine's.
pub async fn machine_arn(setup: &Setup, stack: &str, machine: Option<&str>) -> Result<String> {
    let st = setup.store.load(stack, &setup.env).await?;
    let machines: Vec<(&String, &crate::state::Entry)> = st
        .resources
        .iter()
        .filter(|(_, e)| e.kind == "sfn_state_machine" && e.status == Status::Created)
        .collect();
    let name_of = |e: &crate::state::Entry| {
        e.outputs
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let chosen = match (machines.as_slice(), machine) {
        ([], _) => {
            return Err(Error::user(format!(
                "stack `{stack}` has no deployed state machine in env `{}`",
                setup.env
            ))
            .help(format!("deploy it first: deploy up {stack}")));
        }
        ([(_, e)], None) => *e,
        (_, Some(m)) => machines
            .iter()
            .find(|(id, e)| id.as_str() == m || name_of(e) == m)
            .map(|(_, e)| *e)
            .ok_or_else(|| {
                let names: Vec<String> = machines.iter().map(|(id, _)| id.to_string()).collect();
                Error::user(format!(
                    "stack `{stack}` has no state machine `{m}`; it has: {}",
                    names.join(", ")
                ))
            })?,
        (_, None) => {
            let names: Vec<String> = machines.iter().map(|(id, _)| id.to_string()).collect();
            return Err(Error::user(format!(
                "stack `{stack}` has several state machines: {}",
                names.join(", ")
            ))
            .help("choose one with --machine"));
        }
    };
    // through its alias when it has one: what callers and event sources use
    chosen
        .outputs
        .get("alias_arn")
        .or(chosen.outputs.get("arn"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::internal("recorded state machine has no ARN"))
}

/// `deploy-<epoch ms>-<4 hex>`: unique enough per state machine, and sorts by time.
fn generated_name() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "deploy-{}-{:04x}",
        now.as_millis(),
        (now.subsec_nanos() ^ std::process::id()) & 0xffff
    )
}

pub(crate) fn read_input(input: Option<&str>, file: Option<&std::path::Path>) -> Result<String> {
    let (text, from) = match (input, file) {
        (Some(t), None) => (t.to_string(), "--input".to_string()),
        (None, Some(f)) => (
            std::fs::read_to_string(f).map_err(|e| {
                Error::user(format!("cannot read input: {e}")).at(f.display().to_string())
            })?,
            f.display().to_string(),
        ),
        (None, None) => ("{}".to_string(), String::new()),
        (Some(_), Some(_)) => return Err(Error::user("give --input or --input-file, not both")),
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| Error::user(format!("the execution input is not JSON: {e}")).at(from))?;
    Ok(text)
}

pub async fn run(g: &Global, a: &RunArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let arn = machine_arn(&setup, &a.stack, a.machine.as_deref()).await?;
    let input = read_input(a.input.as_deref(), a.input_file.as_deref())?;
    let ctx = setup.connect(&g.aws).await?;
    // Always named: readable in lists, and some emulators do not generate one.
    let name = a.name.clone().unwrap_or_else(generated_name);
    let started = ctx
        .sfn
        .start_execution()
        .state_machine_arn(&arn)
        .input(input)
        .name(&name)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_execution_already_exists() => {
                Error::user(format!("an execution named {name:?} already exists"))
                    .help("choose another --name")
            }
            Some(s) if s.is_state_machine_does_not_exist() => Error::user(format!(
                "state machine {arn} does not exist (deleted outside deploy?)"
            ))
            .help(format!("deploy up {}", a.stack)),
            _ => api_error("StartExecution", &e),
        })?;
    let exec_arn = started.execution_arn().to_string();
    if a.open {
        open_page(&execution_page(&ctx, &exec_arn));
    }
    if a.no_wait {
        outln!("{exec_arn}");
        return Ok(());
    }
    if a.out.format == Format::Text {
        outln!("execution {exec_arn}");
    }
    let watch = watch_for(&ctx, &arn).await;
    let outcome = print_following(&ctx, &exec_arn, &watch, a.out.format, g.verbose > 0).await?;
    execution::outcome_result(outcome, &exec_arn)
}

/// Where an execution is shown: the page of the Step Functions endpoint when one is set
/// (`deploy local` serves /executions/MACHINE/NAME), else the AWS console.
fn execution_page(ctx: &crate::aws::Ctx, arn: &str) -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_SFN")
        .ok()
        .or_else(|| ctx.endpoint.clone());
    match endpoint {
        Some(e) => {
            let mut parts = arn.rsplit(':');
            let (name, machine) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let path = crate::local::execution_path(machine, name);
            format!("{}{path}", e.trim_end_matches('/'))
        }
        None => format!(
            "https://{r}.console.aws.amazon.com/states/home?region={r}#/v2/executions/details/{arn}",
            r = ctx.region
        ),
    }
}

/// Opens `url` with $BROWSER, else the desktop's opener; says where it is either way.
fn open_page(url: &str) {
    let opener = std::env::var("BROWSER").ok().filter(|b| !b.is_empty());
    let opener = opener.unwrap_or_else(|| {
        if cfg!(target_os = "macos") {
            "open".into()
        } else {
            "xdg-open".into()
        }
    });
    let started = std::process::Command::new(&opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match started {
        Ok(_) => eprintln!("opening {url}"),
        Err(e) => eprintln!("cannot start {opener} ({e}): open {url} yourself (or set BROWSER)"),
    }
}

/// What following an execution needs to know of its machine: the definition (what a callback
/// should answer) and, on an endpoint other than AWS, what tells an execution the endpoint does
/// not really run: the definition's state names, and a bounded wait for the first state (20 s,
/// `DEPLOY_STALL_SECONDS`).
pub(crate) async fn watch_for(ctx: &crate::aws::Ctx, machine_arn: &str) -> execution::Watch {
    let definition: Option<serde_json::Value> = match ctx
        .sfn
        .describe_state_machine()
        .state_machine_arn(machine_arn)
        .send()
        .await
    {
        Ok(d) => serde_json::from_str(d.definition()).ok(),
        Err(_) => None,
    };
    let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL_SFN")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| ctx.endpoint.clone())
    else {
        return execution::Watch {
            definition,
            ..Default::default()
        };
    };
    let secs = std::env::var("DEPLOY_STALL_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let states = definition.as_ref().map(execution::state_names);
    execution::Watch {
        states,
        stall_limit: Some(std::time::Duration::from_secs(secs)),
        endpoint,
        definition,
        after: 0,
    }
}

pub(crate) async fn print_following(
    ctx: &crate::aws::Ctx,
    arn: &str,
    watch: &execution::Watch,
    format: Format,
    verbose: bool,
) -> Result<execution::Outcome> {
    let mut printer = Printer::new(verbose);
    printer.definition = watch.definition.clone();
    let mut out = std::io::stdout();
    execution::follow(ctx, arn, watch, |e| {
        match format {
            Format::Json => {
                let _ = writeln!(out, "{}", execution::event_json(e));
            }
            Format::Text | Format::Markdown => {
                for l in printer.lines(e) {
                    let _ = writeln!(out, "{l}");
                }
            }
        }
        let _ = out.flush();
    })
    .await
}

pub async fn history(g: &Global, execution_arn: &str, format: Format) -> Result<()> {
    let setup = Setup::new(g).ok();
    let ctx = match &setup {
        Some(s) => s.connect(&g.aws).await?,
        None => crate::aws::connect(&g.aws).await?,
    };
    let events = execution::history(&ctx, execution_arn).await?;
    let mut printer = Printer::new(g.verbose > 0);
    let mut outcome = None;
    for e in &events {
        match format {
            Format::Json => outln!("{}", execution::event_json(e)),
            Format::Text | Format::Markdown => printer.lines(e).iter().for_each(|l| outln!("{l}")),
        }
        outcome = outcome.or(execution::outcome_of(e));
    }
    match outcome {
        Some(o) => execution::outcome_result(o, execution_arn),
        None => {
            if format == Format::Text {
                outln!("(still running: deploy history again, or follow it with the console)");
            }
            Ok(())
        }
    }
}

pub async fn executions(
    g: &Global,
    stack: &str,
    machine: Option<&str>,
    format: Format,
) -> Result<()> {
    let setup = Setup::new(g)?;
    let arn = machine_arn(&setup, stack, machine).await?;
    let ctx = setup.connect(&g.aws).await?;
    let list = ctx
        .sfn
        .list_executions()
        .state_machine_arn(&arn)
        .max_results(20)
        .send()
        .await
        .map_err(|e| api_error("ListExecutions", &e))?;
    let rows: Vec<serde_json::Value> = list
        .executions()
        .iter()
        .map(|x| {
            let start = x.start_date().secs() as f64 + x.start_date().subsec_nanos() as f64 / 1e9;
            let stop = x.stop_date().map(|d| d.secs() as f64 + d.subsec_nanos() as f64 / 1e9);
            serde_json::json!({
                "name": x.name(), "status": x.status().as_str(), "executionArn": x.execution_arn(),
                "start": x.start_date().to_string(), "seconds": stop.map(|s| ((s - start) * 1000.0).round() / 1000.0),
            })
        })
        .collect();
    crate::views::info::executions(&rows, format);
    Ok(())
}

fn token_error<E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    e: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Error {
    match e.code() {
        Some("TaskDoesNotExist") | Some("InvalidToken") | Some("TaskTimedOut") => Error::user(format!(
            "no task waits for that token ({}): it may have been answered already, timed out, or its execution ended",
            e.code().unwrap_or_default()
        ))
        .help("copy the token again from `deploy run` or `deploy history`"),
        _ => api_error(op, e),
    }
}

/// The token to answer: given, or the one callback the execution waits for (found in its
/// history; waits up to a minute for the task to be scheduled, as right after `run --no-wait`).
async fn waiting_token(ctx: &crate::aws::Ctx, w: &crate::options::WaitingTask) -> Result<String> {
    if let Some(t) = &w.token {
        return Ok(t.clone());
    }
    let arn = w.execution.as_deref().unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let events = execution::history(ctx, arn).await?;
        if events.iter().any(|e| execution::outcome_of(e).is_some()) {
            return Err(Error::user(format!(
                "execution {arn} has ended: no task of it waits for an answer"
            )));
        }
        let pending = execution::pending_tokens(&events);
        match pending.as_slice() {
            [(_, token)] => return Ok(token.clone()),
            [] if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await
            }
            [] => {
                return Err(Error::user(format!(
                    "no task of execution {arn} has waited for a callback within a minute"
                ))
                .help(format!("see where it is with `deploy history {arn}`")));
            }
            many => {
                let states: Vec<&str> = many.iter().map(|(s, _)| s.as_str()).collect();
                return Err(Error::user(format!(
                    "{} tasks of execution {arn} wait for an answer ({})",
                    many.len(),
                    states.join(", ")
                ))
                .help("answer one with --token, as `deploy history` prints them"));
            }
        }
    }
}

pub async fn approve(
    g: &Global,
    waiting: &crate::options::WaitingTask,
    output: &str,
) -> Result<()> {
    serde_json::from_str::<serde_json::Value>(output)
        .map_err(|e| Error::user(format!("--task-output is not JSON: {e}")))?;
    let ctx = crate::aws::connect(&g.aws).await?;
    let token = waiting_token(&ctx, waiting).await?;
    ctx.sfn
        .send_task_success()
        .task_token(token)
        .output(output)
        .send()
        .await
        .map_err(|e| token_error("SendTaskSuccess", &e))?;
    outln!("sent task success with output {output}");
    Ok(())
}

pub async fn reject(
    g: &Global,
    waiting: &crate::options::WaitingTask,
    error: Option<&str>,
    cause: Option<&str>,
) -> Result<()> {
    let ctx = crate::aws::connect(&g.aws).await?;
    let token = waiting_token(&ctx, waiting).await?;
    ctx.sfn
        .send_task_failure()
        .task_token(token)
        .set_error(error.map(str::to_string))
        .set_cause(cause.map(str::to_string))
        .send()
        .await
        .map_err(|e| token_error("SendTaskFailure", &e))?;
    outln!(
        "sent task failure{}",
        error.map(|e| format!(" {e}")).unwrap_or_default()
    );
    Ok(())
}

/// `deploy run`'s command line.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The stack whose state machine to start
    pub stack: String,
    /// Which state machine, when the stack has several (resource id or name)
    #[arg(long)]
    pub machine: Option<String>,
    /// Execution input (JSON)
    #[arg(long, conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the execution input from a file
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// Execution name (default: generated)
    #[arg(long)]
    pub name: Option<String>,
    /// Print the execution ARN and return without following it
    #[arg(long)]
    pub no_wait: bool,
    /// Open the execution's page in a browser ($BROWSER, else the desktop's opener): deploy
    /// local's page, or the AWS console
    #[arg(long)]
    pub open: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for RunArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        run(g, self).await
    }
}

/// `deploy executions`'s command line.
#[derive(Debug, Clone, Args)]
pub struct ExecutionsArgs {
    /// The stack whose state machine's executions to list
    pub stack: String,
    /// Which state machine, when the stack has several (resource id or name)
    #[arg(long)]
    pub machine: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for ExecutionsArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        executions(g, &self.stack, self.machine.as_deref(), self.out.format).await
    }
}

/// `deploy history`'s command line.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// The execution, as `deploy run` or `deploy executions` print it
    pub execution_arn: String,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for HistoryArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        history(g, &self.execution_arn, self.out.format).await
    }
}

/// `deploy approve`'s command line.
#[derive(Debug, Clone, Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub waiting: WaitingTask,
    /// The task's result (JSON), e.g. '{"admin": true}' (as the AWS CLI's --task-output)
    #[arg(long, default_value = "{}", value_name = "JSON")]
    pub task_output: String,
}

#[async_trait::async_trait(?Send)]
impl Run for ApproveArgs {
    async fn run(&self, g: &Global) -> Result<()> {
        approve(g, &self.waiting, &self.task_output).await
    }
}

/// `deploy reject`'s command line.
#[derive(Debug, Clone, Args)]
pub struct RejectArgs {
    #[command(flatten)]
    pub waiting: WaitingTask,
    /// The error name the task fails with, e.g. Rejected (Catch rules match on it)
    #[arg(long)]
    pub error: Option<String>,
    /// A longer explanation of the failure
    #[arg(long)]
    pub cause: Option<String>,
}

#[async_trait::async_trait(?Send)]
impl Run for RejectArgs {
    async fn run(&self, g: &Global) -> Result<()> {
        reject(
            g,
            &self.waiting,
            self.error.as_deref(),
            self.cause.as_deref(),
        )
        .await
    }
}
