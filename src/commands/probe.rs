//! `test-state` (one state of a stack's machine run on its own, with a mock: Step Functions'
//! TestState) and `redrive` (an execution that did not succeed goes on from where it failed):
//! on AWS and on `deploy local` alike.

use super::Setup;
use super::workflow::{machine_arn, print_following, read_input, watch_for};
use crate::aws::api_error;
use crate::error::{Error, Result};
use crate::execution;
use crate::options::{Format, Global, OutputArgs, Run, VarArgs};
use aws_sdk_sfn::types::{
    ExecutionStatus, InspectionLevel, MockErrorOutput, MockInput, TestStateConfiguration,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use clap::Args;
use serde_json::{Value, json};
use std::path::PathBuf;

/// The SDKs send TestState to `sync-<host>`, a name that an endpoint on loopback (deploy
/// local) does not have: for an endpoint other than AWS's, the request goes to the host given.
#[derive(Debug)]
struct NoHostPrefix;

impl Intercept for NoHostPrefix {
    fn name(&self) -> &'static str {
        "NoHostPrefix"
    }
    fn modify_before_retry_loop(
        &self,
        _: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> std::result::Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state()
            .unset::<aws_smithy_runtime_api::client::endpoint::EndpointPrefix>();
        Ok(())
    }
}

/// A Step Functions endpoint other than AWS's is set.
fn custom_endpoint(ctx: &crate::aws::Ctx) -> bool {
    std::env::var("AWS_ENDPOINT_URL_SFN").is_ok_and(|v| !v.is_empty()) || ctx.endpoint.is_some()
}

pub async fn test_state(g: &Global, a: &TestStateArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let (_, defs) = super::definitions(&setup, &a.stack, &a.vars, None).await?;
    let ctx = setup.connect(&g.aws).await?;
    let (id, definition) = pick(&a.stack, defs, a.machine.as_deref())?;
    has_state(&a.stack, &id, &definition, &a.state_name)?;
    let input = read_input(a.input.as_deref(), a.input_file.as_deref())?;
    let role = deployed_role(&setup, &ctx, &a.stack, a.machine.as_deref()).await;
    let mut call = ctx
        .sfn
        .test_state()
        .definition(definition.to_string())
        .state_name(&a.state_name)
        .input(input)
        .inspection_level(match a.inspection.as_str() {
            "debug" => InspectionLevel::Debug,
            "trace" => InspectionLevel::Trace,
            _ => InspectionLevel::Info,
        })
        .set_role_arn(role);
    if let Some(m) = mock(a)? {
        call = call.mock(m);
    }
    if let Some(n) = a.retry_count {
        let config = TestStateConfiguration::builder()
            .retrier_retry_count(n)
            .build();
        call = call.state_configuration(config);
    }
    let sent = match custom_endpoint(&ctx) {
        true => call.customize().interceptor(NoHostPrefix).send().await,
        false => call.send().await,
    };
    let out = sent.map_err(|e| refused(&e))?;
    let status = out.status().map(|s| s.as_str()).unwrap_or("UNKNOWN");
    let data = inspection(out.inspection_data());
    let answer = json!({"status": status, "nextState": out.next_state(), "output": parsed(out.output()),
                        "error": out.error(), "cause": out.cause(), "inspectionData": data});
    if a.out.format == Format::Json {
        outln!("{answer}");
    } else {
        print_probe(&a.state_name, &answer);
    }
    match status {
        "SUCCEEDED" | "CAUGHT_ERROR" | "RETRIABLE" => Ok(()),
        _ => Err(Error::new(
            crate::error::Class::Execution(execution::Outcome::Failed.exit_code()),
            format!(
                "state `{}` failed: {}",
                a.state_name,
                out.error().unwrap_or_default()
            ),
        )),
    }
}

/// TestState's error: a request it refused (the definition, the mock) is the user's to fix.
fn refused(
    e: &aws_sdk_sfn::error::SdkError<aws_sdk_sfn::operation::test_state::TestStateError>,
) -> Error {
    match e.as_service_error() {
        Some(s) if s.is_validation_exception() || s.is_invalid_definition() => {
            Error::user(format!(
                "TestState refused the request: {}",
                s.meta().message().unwrap_or_default()
            ))
        }
        _ => api_error("TestState", e),
    }
}

/// The definition has the state (a nested one too), else a user error listing its states.
fn has_state(stack: &str, id: &str, definition: &Value, state: &str) -> Result<()> {
    if crate::asl::Machine::parse(definition)
        .top
        .find(state)
        .is_some()
    {
        return Ok(());
    }
    let names: Vec<String> = crate::execution::state_names(definition)
        .into_iter()
        .collect();
    Err(Error::user(format!(
        "state machine `{id}` of stack `{stack}` has no state `{state}`"
    ))
    .help(format!("its states: {}", sorted(names).join(", "))))
}

/// A value the API sends as JSON text, parsed (text that is not JSON as a string).
fn parsed(t: Option<&str>) -> Value {
    t.map(|t| serde_json::from_str(t).unwrap_or_else(|_| json!(t)))
        .unwrap_or(Value::Null)
}

/// TestState's inspection data, each value parsed.
fn inspection(d: Option<&aws_sdk_sfn::types::InspectionData>) -> serde_json::Map<String, Value> {
    let mut data = serde_json::Map::new();
    let Some(d) = d else {
        return data;
    };
    let fields = [
        ("input", d.input()),
        ("afterInputPath", d.after_input_path()),
        ("afterParameters", d.after_parameters()),
        ("afterArguments", d.after_arguments()),
        ("result", d.result()),
        ("afterResultSelector", d.after_result_selector()),
        ("afterResultPath", d.after_result_path()),
        ("afterItemsPath", d.after_items_path()),
        ("afterItemSelector", d.after_item_selector()),
        ("afterItemsPointer", d.after_items_pointer()),
        ("afterItemBatcher", d.after_item_batcher()),
        ("variables", d.variables()),
    ];
    for (k, v) in fields {
        if v.is_some() {
            data.insert(k.into(), parsed(v));
        }
    }
    if let Some(r) = d.request() {
        let req = json!({"protocol": r.protocol(), "method": r.method(), "url": r.url(),
                         "headers": parsed(r.headers()), "body": r.body()});
        data.insert("request".into(), without_nulls(req));
    }
    if let Some(r) = d.response() {
        let resp = json!({"protocol": r.protocol(), "statusCode": r.status_code(), "statusMessage": r.status_message(),
                          "headers": parsed(r.headers()), "body": parsed(r.body())});
        data.insert("response".into(), without_nulls(resp));
    }
    if let Some(e) = d.error_details() {
        data.insert(
            "errorDetails".into(),
            without_nulls(json!({"retryIndex": e.retry_index(), "retryBackoffIntervalSeconds": e.retry_backoff_interval_seconds(), "catchIndex": e.catch_index()})),
        );
    }
    data
}

fn without_nulls(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
    }
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The one definition of the stack (or the one `--machine` names).
fn pick(stack: &str, defs: Vec<(String, Value)>, machine: Option<&str>) -> Result<(String, Value)> {
    let ids: Vec<String> = defs.iter().map(|(id, _)| id.clone()).collect();
    match (defs.len(), machine) {
        (0, _) => Err(Error::user(format!(
            "stack `{stack}` has no state machine definition"
        ))),
        (1, None) => Ok(defs.into_iter().next().unwrap()),
        (_, Some(m)) => defs.into_iter().find(|(id, _)| id == m).ok_or_else(|| {
            Error::user(format!(
                "stack `{stack}` has no state machine `{m}`; it has: {}",
                ids.join(", ")
            ))
        }),
        (_, None) => Err(Error::user(format!(
            "stack `{stack}` has several state machines: {}",
            ids.join(", ")
        ))
        .help("choose one with --machine")),
    }
}

/// The role of the deployed state machine, if the stack is deployed (TestState makes a call
/// that is not mocked as that role).
async fn deployed_role(
    setup: &Setup,
    ctx: &crate::aws::Ctx,
    stack: &str,
    machine: Option<&str>,
) -> Option<String> {
    let arn = machine_arn(setup, stack, machine).await.ok()?;
    let d = ctx
        .sfn
        .describe_state_machine()
        .state_machine_arn(base_machine(&arn))
        .send()
        .await
        .ok()?;
    Some(d.role_arn().to_string())
}

fn mock(a: &TestStateArgs) -> Result<Option<MockInput>> {
    match (&a.mock_result, &a.mock_error) {
        (Some(r), None) => {
            serde_json::from_str::<Value>(r)
                .map_err(|e| Error::user(format!("--mock-result is not JSON: {e}")))?;
            Ok(Some(MockInput::builder().result(r).build()))
        }
        (None, Some(e)) => {
            let (error, cause) = e.split_once(':').unwrap_or((e.as_str(), ""));
            let out = MockErrorOutput::builder().error(error).cause(cause).build();
            Ok(Some(MockInput::builder().error_output(out).build()))
        }
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(Error::user("give --mock-result or --mock-error, not both")),
    }
}

/// The answer as `run` prints events: the status, where it goes, then each step.
fn print_probe(state: &str, a: &Value) {
    let status = a["status"].as_str().unwrap_or_default();
    let next = a["nextState"]
        .as_str()
        .map(|n| format!(" → {n}"))
        .unwrap_or_default();
    outln!("{state}: {status}{next}");
    let data = a["inspectionData"].as_object().cloned().unwrap_or_default();
    for (k, v) in &data {
        outln!("  {k:<20} {v}");
    }
    if let Some(e) = a["error"].as_str() {
        outln!(
            "  {:<20} {e}: {}",
            "error",
            a["cause"].as_str().unwrap_or_default()
        );
    }
    if !a["output"].is_null() {
        outln!("  {:<20} {}", "output", a["output"]);
    }
}

pub async fn redrive(g: &Global, a: &RedriveArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let machine = machine_arn(&setup, &a.stack, a.machine.as_deref()).await?;
    let ctx = setup.connect(&g.aws).await?;
    let exec_arn = match &a.execution {
        Some(e) if e.starts_with("arn:") => e.clone(),
        Some(name) => format!(
            "{}:{name}",
            base_machine(&machine).replace(":stateMachine:", ":execution:")
        ),
        None => last_unsuccessful(&ctx, &machine, &a.stack).await?,
    };
    let known = execution::history(&ctx, &exec_arn).await?;
    let after = known.last().map(|e| e.id()).unwrap_or(0);
    ctx.sfn
        .redrive_execution()
        .execution_arn(&exec_arn)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_execution_not_redrivable() => Error::user(format!(
                "{exec_arn} cannot be redriven: {}",
                s.meta().message().unwrap_or_default()
            )),
            Some(s) if s.is_execution_does_not_exist() => {
                Error::user(format!("there is no execution {exec_arn}"))
                    .help(format!("deploy executions {}", a.stack))
            }
            _ => api_error("RedriveExecution", &e),
        })?;
    if a.out.format == Format::Text {
        outln!("redriving {exec_arn}");
    }
    let mut watch = watch_for(&ctx, &machine).await;
    watch.after = after;
    let outcome = print_following(&ctx, &exec_arn, &watch, a.out.format, g.verbose > 0).await?;
    execution::outcome_result(outcome, &exec_arn)
}

/// `arn:…:stateMachine:name[:alias]` → `arn:…:stateMachine:name`.
fn base_machine(arn: &str) -> String {
    arn.split(':').take(7).collect::<Vec<_>>().join(":")
}

/// The newest execution of the machine that failed, timed out or was aborted.
async fn last_unsuccessful(ctx: &crate::aws::Ctx, machine: &str, stack: &str) -> Result<String> {
    let base = base_machine(machine);
    let list = ctx
        .sfn
        .list_executions()
        .state_machine_arn(&base)
        .max_results(100)
        .send()
        .await
        .map_err(|e| api_error("ListExecutions", &e))?;
    let failed = list.executions().iter().find(|e| {
        matches!(
            e.status(),
            ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted
        )
    });
    failed
        .map(|e| e.execution_arn().to_string())
        .ok_or_else(|| {
            Error::user(format!(
                "stack `{stack}` has no execution that failed, timed out or was aborted"
            ))
        })
}

/// `deploy test-state`'s command line.
#[derive(Debug, Clone, Args)]
pub struct TestStateArgs {
    /// The stack whose state machine holds the state
    pub stack: String,
    /// The state to run (a state inside a Parallel or Map too)
    #[arg(value_name = "STATE")]
    pub state_name: String,
    /// Which state machine, when the stack has several (resource id)
    #[arg(long)]
    pub machine: Option<String>,
    /// The state's input (JSON)
    #[arg(long, conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the state's input from a file
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// Answer the state's call with this result (JSON) instead of calling anything
    #[arg(long, value_name = "JSON")]
    pub mock_result: Option<String>,
    /// Answer the state's call with this error: ERROR or ERROR:CAUSE
    #[arg(long, value_name = "ERROR:CAUSE")]
    pub mock_error: Option<String>,
    /// Retries already made by the retrier that matches the error (stateConfiguration)
    #[arg(long, value_name = "N")]
    pub retry_count: Option<i32>,
    /// How much to show of the state's input and output processing: info, debug or trace
    #[arg(long, default_value = "debug", value_parser = ["info", "debug", "trace"])]
    pub inspection: String,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for TestStateArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        test_state(g, self).await
    }
}

/// `deploy redrive`'s command line.
#[derive(Debug, Clone, Args)]
pub struct RedriveArgs {
    /// The stack whose execution to redrive
    pub stack: String,
    /// The execution (ARN or name); default: the newest that failed, timed out or was aborted
    pub execution: Option<String>,
    /// Which state machine, when the stack has several (resource id or name)
    #[arg(long)]
    pub machine: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for RedriveArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        redrive(g, self).await
    }
}
