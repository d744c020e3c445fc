//! Scenarios, shared by `deploy test` and `deploy cost` (and read by `plan` for their
//! variables): a stack's scenario files, one run on the local engine with its mocks, and what
//! a finished execution left (its description and history) to record or price.

use super::{Setup, definitions};
use crate::engine::{self, scenario};
use crate::error::{Error, Result};
use crate::options::VarArgs;
use std::path::PathBuf;

/// Where ARNs point when the stack is not deployed: the emulator's account and region.
pub const LOCAL: (&str, &str, &str) = ("123456789012", "us-east-1", "aws");

/// The scenario files of a stack, sorted (`*.mock-config.json` files beside them are mock
/// configurations, not scenarios).
pub fn scenario_files(setup: &Setup, stack: &str) -> Result<Vec<PathBuf>> {
    let dir = setup.project.root.join("stacks").join(stack).join("tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|_| {
            Error::user(format!("stack `{stack}` has no scenarios"))
                .help(format!("add scenario files to {}", dir.display()))
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.to_string_lossy().ends_with(".mock-config.json")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// One scenario run on the local engine.
pub struct Ran {
    pub name: String,
    pub scenario: scenario::Scenario,
    pub exec: engine::Execution,
    /// The definition it ran (rendered with the scenario's variables).
    pub definition: serde_json::Value,
    pub problems: Vec<String>,
    pub wall: f64,
}

/// A variable's value as `--var` takes it (strings bare, anything else as JSON).
pub fn var_text(v: &serde_json::Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// The scenario in `file` (`stacks/<stack>/tests/<name>.json`), with its name.
pub fn read_scenario(stack: &str, file: &std::path::Path) -> Result<(String, scenario::Scenario)> {
    let name = file.file_stem().unwrap().to_string_lossy().to_string();
    let display = format!("stacks/{stack}/tests/{name}.json");
    let text = std::fs::read_to_string(file)?;
    let sc = serde_json::from_str(&text).map_err(|e| {
        Error::user(format!("invalid scenario: {e}")).at(format!("{display}:{}", e.line()))
    })?;
    Ok((name, sc))
}

/// Runs the scenario in `file` on the local engine with its mocks, and checks it.
pub async fn run_scenario(setup: &Setup, stack: &str, file: &std::path::Path) -> Result<Ran> {
    let (name, sc) = read_scenario(stack, file)?;
    let vars = VarArgs {
        vars: sc
            .vars
            .iter()
            .map(|(k, v)| format!("{k}={}", var_text(v)))
            .collect(),
        var_files: vec![],
        placeholders: true,
    };
    let (_, defs) = definitions(setup, stack, &vars, Some(LOCAL)).await?;
    let (_, def) = defs
        .into_iter()
        .next()
        .ok_or_else(|| Error::user(format!("stack `{stack}` has no state machine")))?;
    let tasks = scenario::Mocked::new(sc.mocks.clone());
    let started = std::time::Instant::now();
    let exec = engine::execute_virtual(&def, sc.input.clone(), &name, &tasks);
    let wall = started.elapsed().as_secs_f64();
    let problems = scenario::check(&exec, &tasks.calls(), &sc.expect);
    Ok(Ran {
        name,
        scenario: sc,
        exec,
        definition: def,
        problems,
        wall,
    })
}

/// What an execution left, read from its endpoint (AWS, moto or `deploy local`): its status,
/// the state machine it ran, and its history as `execution::event_json` writes it. A running
/// execution is an error: there is nothing to record or price yet.
pub async fn recorded(
    ctx: &crate::aws::Ctx,
    arn: &str,
) -> Result<(
    aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput,
    Vec<serde_json::Value>,
)> {
    let d = ctx
        .sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_execution_does_not_exist() => {
                Error::user(format!("no execution {arn}"))
                    .help("deploy executions <stack> lists the executions of a stack")
            }
            Some(s) if s.is_invalid_arn() => {
                Error::user(format!("{arn:?} is not an execution ARN"))
            }
            _ => crate::aws::api_error("DescribeExecution", &e),
        })?;
    if d.status().as_str() == "RUNNING" || d.status().as_str() == "PENDING_REDRIVE" {
        return Err(Error::user(format!(
            "execution {arn} is still running: there is no outcome to record yet"
        ))
        .help("wait for it to end (deploy history ARN shows where it is), then run this again"));
    }
    let events = crate::execution::history(ctx, arn)
        .await?
        .iter()
        .map(crate::execution::event_json)
        .collect();
    Ok((d, events))
}
