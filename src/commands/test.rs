//! `deploy test <stack>`: runs every scenario of a stack (`stacks/<stack>/tests/*.json`) on the
//! local engine, with mocked tasks and virtual time, and checks what comes out.

use super::scenarios::{LOCAL, recorded, run_scenario, scenario_files};
use super::{Setup, definitions};
use crate::engine::coverage::Coverage;
use crate::engine::{self, scenario};
use crate::error::{Class, Error, Result};
use crate::options::{Format, Global, VarArgs};
use crate::options::{OutputArgs, Run};
use clap::Args;
use std::path::PathBuf;

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

/// How `deploy test` reports: the scenario to run alone, the output format, the JUnit file,
/// and coverage (`Some(min)`: reported, and failing below `min` percent).
pub struct Report<'a> {
    pub only: Option<&'a str>,
    pub format: Format,
    pub junit: Option<&'a std::path::Path>,
    pub coverage: Option<f64>,
}

impl<'a> Report<'a> {
    /// One scenario, without JUnit or coverage.
    fn only(name: &'a str, format: Format) -> Self {
        Report {
            only: Some(name),
            format,
            junit: None,
            coverage: None,
        }
    }
}

pub async fn test(g: &Global, stack: &str, report: Report<'_>) -> Result<()> {
    let (format, coverage) = (report.format, report.coverage);
    let setup = Setup::new(g)?;
    let mut cases: Vec<crate::views::checks::Case> = Vec::new();
    let mut runs: Vec<(String, engine::Execution, serde_json::Value)> = Vec::new();
    for f in scenario_files(&setup, stack)? {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        if report.only.is_some_and(|o| o != name) {
            continue;
        }
        let r = run_scenario(&setup, stack, &f).await?;
        crate::views::checks::scenario(
            stack,
            &r.name,
            &r.scenario.description,
            &r.exec,
            &r.problems,
            r.wall,
            format,
        );
        cases.push(crate::views::checks::Case {
            name: r.name.clone(),
            description: r.scenario.description.clone(),
            seconds: r.wall,
            problems: r.problems,
        });
        runs.push((r.name, r.exec, r.definition));
    }
    let covered = coverage.map(|_| coverage_of(&runs));
    if let Some(c) = &covered {
        crate::views::checks::coverage(c, format);
    }
    let percent = covered.as_ref().map(|c| c.percent);
    if let Some(path) = report.junit {
        let xml = crate::views::checks::junit_xml(stack, &cases, percent);
        std::fs::write(path, xml).map_err(|e| {
            Error::user(format!("cannot write the JUnit report: {e}"))
                .at(path.display().to_string())
        })?;
    }
    let ran = cases.len();
    let failed = cases.iter().filter(|c| !c.problems.is_empty()).count();
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
    match (covered, coverage) {
        (Some(c), Some(min)) if c.percent < min => Err(below(stack, &c, min)),
        _ => Ok(()),
    }
}

/// Runs every scenario of `stack` and says what they reach (`deploy graph --coverage`).
pub async fn scenarios_coverage(
    setup: &Setup,
    stack: &str,
) -> Result<crate::views::checks::Covered> {
    let mut runs = Vec::new();
    for f in scenario_files(setup, stack)? {
        let r = run_scenario(setup, stack, &f).await?;
        runs.push((r.name, r.exec, r.definition));
    }
    Ok(coverage_of(&runs))
}

/// The coverage of each definition the scenarios ran (scenarios may render different ones,
/// e.g. with another query language), and of them all.
fn coverage_of(
    runs: &[(String, engine::Execution, serde_json::Value)],
) -> crate::views::checks::Covered {
    let mut machines: Vec<(&serde_json::Value, Vec<(&str, &engine::Execution)>)> = Vec::new();
    for (name, exec, def) in runs {
        match machines.iter_mut().find(|(d, _)| *d == def) {
            Some((_, by)) => by.push((name, exec)),
            None => machines.push((def, vec![(name, exec)])),
        }
    }
    let machines: Vec<(Vec<String>, Coverage)> = machines
        .into_iter()
        .map(|(def, by)| {
            let names = by.iter().map(|(n, _)| n.to_string()).collect();
            (names, Coverage::of(def, &by))
        })
        .collect();
    let items = machines.iter().flat_map(|(_, c)| c.items.clone()).collect();
    let all = Coverage::from_items(items);
    crate::views::checks::Covered {
        covered: all.covered,
        total: all.total,
        percent: all.percent,
        machines,
    }
}

/// `--min-coverage` not met: the figure, and each state, rule and path not reached.
fn below(stack: &str, c: &crate::views::checks::Covered, min: f64) -> Error {
    let missed: Vec<&str> = c
        .machines
        .iter()
        .flat_map(|(_, m)| m.items.iter())
        .filter(|i| !i.covered())
        .map(|i| i.label.as_str())
        .collect();
    Error::new(
        Class::Execution(7),
        format!(
            "the scenarios of `{stack}` cover {}% of its paths, below --min-coverage {min}: not reached: {}",
            c.percent,
            missed.join("; ")
        ),
    )
}

/// `deploy test --from-execution ARN --save NAME`: writes the execution as a scenario (or a
/// Step Functions Local mock configuration) and runs it at once.
async fn record(g: &Global, a: &TestArgs, arn: &str, name: &str) -> Result<()> {
    let setup = Setup::new(g)?;
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::user(format!(
            "--save {name:?}: a scenario name is a file name, without folders"
        )));
    }
    let ctx = setup.connect(&g.aws).await?;
    let (described, events) = recorded(&ctx, arn).await?;
    let machine_arn = described.state_machine_arn();
    let machine = machine_arn
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let description = format!(
        "recorded from execution {} of {machine} ({})",
        described.name().unwrap_or(arn),
        described.status().as_str()
    );
    let sc = scenario::from_history(&events, description)
        .map_err(|m| Error::user(format!("execution {arn}: {m}")))?;
    let dir = setup
        .project
        .root
        .join("stacks")
        .join(&a.stack)
        .join("tests");
    let mock_config = a.record_format == "mock-config";
    let file = dir.join(if mock_config {
        format!("{name}.mock-config.json")
    } else {
        format!("{name}.json")
    });
    if file.exists() && !a.force {
        return Err(Error::user(format!("{} exists already", file.display()))
            .help("choose another --save name, or add --force to replace it"));
    }
    std::fs::create_dir_all(&dir)?;
    let doc = if mock_config {
        scenario::to_sfn_local(&sc, &machine, name)
    } else {
        sc
    };
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&doc).expect("JSON") + "\n",
    )?;
    let shown = format!(
        "stacks/{}/tests/{}",
        a.stack,
        file.file_name().unwrap().to_string_lossy()
    );
    if mock_config {
        outln!(
            "wrote {shown} (run it: deploy test {} --mock-config {shown})",
            a.stack
        );
        return Ok(());
    }
    outln!("wrote {shown}; running it on the local engine:");
    test(g, &a.stack, Report::only(name, a.out.format)).await
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
    /// Record a scenario from this finished execution (on AWS, moto or `deploy local`): its
    /// input, every task's answers as mocks, its path and outcome as expectations
    #[arg(long, value_name = "ARN", requires = "save",
          conflicts_with_all = ["mock_config", "scenario", "junit"])]
    pub from_execution: Option<String>,
    /// The recorded scenario's name: stacks/<stack>/tests/<NAME>.json, then run at once
    #[arg(long, value_name = "NAME", requires = "from_execution")]
    pub save: Option<String>,
    /// What to record: a scenario of `deploy test`, or a Step Functions Local MockConfigFile
    /// (<NAME>.mock-config.json, for --mock-config and the tools that read that format)
    #[arg(long = "format", value_name = "FORMAT", default_value = "scenario",
          value_parser = ["scenario", "mock-config"])]
    pub record_format: String,
    /// Replace a recorded file of that name
    #[arg(long, requires = "from_execution")]
    pub force: bool,
    /// Report which states, Choice rules and Defaults, Retry and Catch paths the scenarios
    /// reach, by which scenarios, and the share of them reached
    #[arg(long, conflicts_with_all = ["mock_config", "from_execution"])]
    pub coverage: bool,
    /// Fail (exit 7) when the scenarios reach less than PCT percent, naming what they miss
    /// (implies --coverage)
    #[arg(long, value_name = "PCT", conflicts_with_all = ["mock_config", "from_execution"])]
    pub min_coverage: Option<f64>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for TestArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        if let (Some(arn), Some(name)) = (&self.from_execution, &self.save) {
            return record(g, self, arn, name).await;
        }
        match &self.mock_config {
            Some(f) => test_mock_config(g, &self.stack, f, &self.input, self.out.format).await,
            None => {
                let coverage = match (self.min_coverage, self.coverage) {
                    (Some(min), _) => Some(min),
                    (None, true) => Some(0.0),
                    (None, false) => None,
                };
                let report = Report {
                    only: self.scenario.as_deref(),
                    format: self.out.format,
                    junit: self.junit.as_deref(),
                    coverage,
                };
                test(g, &self.stack, report).await
            }
        }
    }
}
