//! `deploy test <stack>`: runs every scenario of a stack (`stacks/<stack>/tests/*.json`) on the
//! local engine, with mocked tasks and virtual time, and checks what comes out.

use super::Setup;
use super::info::definitions;
use crate::cli::{Format, Global, VarArgs};
use crate::cli::{OutputArgs, Run};
use crate::engine::{self, scenario};
use crate::error::{Class, Error, Result};
use clap::Args;
use std::path::PathBuf;

/// Where ARNs point when the stack is not deployed: the emulator's account and region.
const LOCAL: (&str, &str, &str) = ("123456789012", "us-east-1", "aws");

/// Runs the test cases of a Step Functions Local mock configuration (no expectations there:
/// each case's outcome is printed).
pub async fn test_mock_config(
    g: &Global,
    stack: &str,
    file: &std::path::Path,
    input: &str,
    format: Format,
) -> Result<()> {
    let setup = Setup::new(g)?;
    let display = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::user(format!("cannot read: {e}")).at(display.clone()))?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::user(format!("not JSON: {e}")).at(format!("{display}:{}", e.line())))?;
    let input: serde_json::Value = serde_json::from_str(input)
        .map_err(|e| Error::user(format!("--input is not JSON: {e}")))?;
    let vars = VarArgs {
        placeholders: true,
        ..Default::default()
    };
    let (s, defs) = definitions(&setup, stack, &vars, Some(LOCAL)).await?;
    let (id, def) = defs
        .first()
        .ok_or_else(|| Error::user(format!("stack `{stack}` has no state machine")))?;
    let machine = s.resources[id]
        .attrs
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or(id)
        .to_string();
    let cases = scenario::from_sfn_local(&config, &machine)
        .map_err(|m| Error::user(m).at(display.clone()))?;
    for (case, mocks) in cases {
        let tasks = scenario::Mocked::new(mocks);
        let exec = engine::execute_virtual(def, input.clone(), &case, &tasks);
        crate::views::checks::mock_case(&case, &exec, format);
    }
    Ok(())
}

pub async fn test(
    g: &Global,
    stack: &str,
    only: Option<&str>,
    format: Format,
    junit: Option<&std::path::Path>,
) -> Result<()> {
    let setup = Setup::new(g)?;
    let dir = setup.project.root.join("stacks").join(stack).join("tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|_| {
            Error::user(format!("stack `{stack}` has no scenarios"))
                .help(format!("add scenario files to {}", dir.display()))
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut failed = 0;
    let mut ran = 0;
    let mut cases: Vec<crate::views::checks::Case> = Vec::new();
    for f in files {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let display = format!("stacks/{stack}/tests/{name}.json");
        let text = std::fs::read_to_string(&f)?;
        let sc: scenario::Scenario = serde_json::from_str(&text).map_err(|e| {
            Error::user(format!("invalid scenario: {e}")).at(format!("{display}:{}", e.line()))
        })?;
        let vars = VarArgs {
            vars: sc
                .vars
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    )
                })
                .collect(),
            var_files: vec![],
            placeholders: true,
        };
        let (_, defs) = definitions(&setup, stack, &vars, Some(LOCAL)).await?;
        let (_, def) = defs
            .first()
            .ok_or_else(|| Error::user(format!("stack `{stack}` has no state machine")))?;
        let tasks = scenario::Mocked::new(sc.mocks.clone());
        let started = std::time::Instant::now();
        let exec = engine::execute_virtual(def, sc.input.clone(), &name, &tasks);
        let wall = started.elapsed().as_secs_f64();
        let problems = scenario::check(&exec, &tasks.calls(), &sc.expect);
        ran += 1;
        crate::views::checks::scenario(
            stack,
            &name,
            &sc.description,
            &exec,
            &problems,
            wall,
            format,
        );
        if !problems.is_empty() {
            failed += 1;
        }
        cases.push(crate::views::checks::Case {
            name,
            description: sc.description.clone(),
            seconds: wall,
            problems,
        });
    }
    if let Some(path) = junit {
        std::fs::write(path, crate::views::checks::junit_xml(stack, &cases)).map_err(|e| {
            Error::user(format!("cannot write the JUnit report: {e}"))
                .at(path.display().to_string())
        })?;
    }
    crate::views::checks::scenarios_tally(ran - failed, failed, format);
    if failed > 0 {
        return Err(Error::new(
            Class::Execution(7),
            format!("{failed} of {ran} scenarios of `{stack}` failed"),
        ));
    }
    if ran == 0 {
        return Err(Error::user(format!("no scenario of `{stack}` matched")));
    }
    Ok(())
}

/// `deploy test`'s command line.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// The stack whose scenarios to run
    pub stack: String,
    /// Only this scenario (file name without .json)
    #[arg(long, conflicts_with = "mock_config")]
    pub scenario: Option<String>,
    /// Run the test cases of a Step Functions Local mock configuration file instead
    #[arg(long, value_name = "FILE")]
    pub mock_config: Option<PathBuf>,
    /// Execution input for --mock-config test cases (JSON)
    #[arg(long, default_value = "{}", requires = "mock_config")]
    pub input: String,
    /// Also write the results as JUnit XML to this file (for CI test reports)
    #[arg(long, value_name = "FILE", conflicts_with = "mock_config")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for TestArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        match &self.mock_config {
            Some(f) => test_mock_config(g, &self.stack, f, &self.input, self.out.format).await,
            None => {
                let (only, junit) = (self.scenario.as_deref(), self.junit.as_deref());
                test(g, &self.stack, only, self.out.format, junit).await
            }
        }
    }
}
