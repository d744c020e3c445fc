//! The local engine through `deploy test`: every scenario of the four exercises passes, a
//! wrong expectation fails with what differed, and JSON output carries the history events.

mod support;

use serde_json::Value;
use support::*;

fn offline(project: &std::path::Path) -> Deploy {
    let state = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    Deploy::new(
        project,
        state.path(),
        &format!("http://127.0.0.1:{}", free_port()),
    )
}

#[test]
fn every_scenario_of_the_four_exercises_passes() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (stack, n) in [
        ("should-i-deploy", 5),
        ("create-new-user", 3),
        ("bucket-replication", 2),
        ("resize-image", 6),
    ] {
        let out = offline(repo).run(&["test", stack]).success();
        assert!(
            out.stdout.contains(&format!("{n} passed, 0 failed")),
            "{stack}: {out:?}"
        );
    }
}

#[test]
fn scenario_output_as_json_has_the_history() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = offline(repo)
        .run(&[
            "test",
            "bucket-replication",
            "--scenario",
            "success-after-three-polls",
            "--output",
            "json",
        ])
        .success();
    let v: Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(
        v["virtual_seconds"], 30.0,
        "three Waits of 10 s, none slept"
    );
    let types: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        &types[..5],
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded"
        ]
    );
    assert_eq!(
        types.iter().filter(|t| **t == "WaitStateEntered").count(),
        3
    );
    assert_eq!(*types.last().unwrap(), "ExecutionSucceeded");
}

#[test]
fn a_wrong_expectation_fails_and_says_what_differed() {
    let project = project_copy();
    let tests = project.path().join("stacks/create-new-user/tests");
    let text = std::fs::read_to_string(tests.join("approved-as-admin.json")).unwrap();
    std::fs::write(
        tests.join("wrong.json"),
        text.replace(
            "\"GroupName\": \"admins-group\"",
            "\"GroupName\": \"developers-group\"",
        ),
    )
    .unwrap();
    let out = offline(project.path())
        .run(&["test", "create-new-user", "--scenario", "wrong"])
        .code(7);
    assert!(out.stdout.contains("FAIL create-new-user/wrong"), "{out:?}");
    assert!(
        out.stdout.contains("calls of \"AddUserToGroup\""),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("1 of 1 scenarios of `create-new-user` failed"),
        "{out:?}"
    );

    // the same as JUnit XML for a CI report: every scenario a test case, the wrong one failed
    let report = project.path().join("report.xml");
    offline(project.path())
        .run(&[
            "test",
            "create-new-user",
            "--junit",
            report.to_str().unwrap(),
        ])
        .code(7);
    let xml = std::fs::read_to_string(&report).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(
        (
            suite.attribute("name"),
            suite.attribute("tests"),
            suite.attribute("failures")
        ),
        (Some("create-new-user"), Some("4"), Some("1"))
    );
    let failed: Vec<(&str, &str)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter_map(|c| {
            c.children().find(|f| f.has_tag_name("failure")).map(|f| {
                (
                    c.attribute("name").unwrap(),
                    f.attribute("message").unwrap(),
                )
            })
        })
        .collect();
    assert_eq!(failed.len(), 1, "{xml}");
    assert_eq!(failed[0].0, "wrong");
    assert!(failed[0].1.contains("AddUserToGroup"), "{xml}");
    let report = project.path().join("ok.xml");
    offline(project.path())
        .run(&[
            "test",
            "should-i-deploy",
            "--junit",
            report.to_str().unwrap(),
        ])
        .success();
    assert!(
        std::fs::read_to_string(&report)
            .unwrap()
            .contains("tests=\"5\" failures=\"0\"")
    );
}

/// The Step Functions Local mock-configuration format: every test case runs; a response range
/// ("0-1") answers several calls in order.
#[test]
fn step_functions_local_mock_configurations_run() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = repo.join("examples/MockConfigFile.json");
    let out = offline(repo)
        .run(&[
            "test",
            "create-new-user",
            "--mock-config",
            config.to_str().unwrap(),
            "--input",
            r#"{"username": "john-doe"}"#,
            "--output",
            "json",
        ])
        .success();
    let cases: std::collections::BTreeMap<String, Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["test_case"].as_str().unwrap().to_string(), v))
        .collect();
    assert_eq!(cases["ApproveAsAdmin"]["status"], "SUCCEEDED");
    assert_eq!(
        cases["ApproveAsAdmin"]["path"],
        serde_json::json!(["SNS Publish", "CreateUser", "AddUserToGroup"])
    );
    assert_eq!(cases["Reject"]["status"], "FAILED");
    assert_eq!(cases["Reject"]["error"], "Rejected");
    // CreateUser has no Retry in the published definition: the first failure ends the execution
    assert_eq!(cases["FlakyIam"]["error"], "IAM.ServiceFailureException");
    let out = offline(repo)
        .run(&[
            "test",
            "should-i-deploy",
            "--mock-config",
            config.to_str().unwrap(),
        ])
        .code(2);
    assert!(
        out.stderr.contains("no state machine \"should-i-deploy\""),
        "{out:?}"
    );
}

/// The same definition costs differently on different paths: `deploy cost` runs every
/// scenario and names the one with the fewest transitions and the one with the most.
#[test]
fn cost_over_the_scenarios_names_the_fewest_and_the_most_transitions() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = offline(repo)
        .run(&[
            "cost",
            "create-new-user",
            "--executions",
            "100000",
            "-o",
            "json",
        ])
        .success()
        .json();
    let t = &out["transitions_per_execution"];
    assert_eq!(
        (t["min"].as_u64(), t["min_scenario"].as_str()),
        (Some(1), Some("rejected")),
        "{out}"
    );
    assert_eq!(t["max"].as_u64(), Some(3), "{out}");
    assert!(
        t["max_scenario"]
            .as_str()
            .unwrap()
            .starts_with("approved-as-"),
        "{out}"
    );
    // a month of 100,000: 100,000 to 300,000 transitions, less the 4,000 free
    let m = &out["monthly_usd"];
    assert!(
        (m["min"].as_f64().unwrap() - 96_000.0 * 0.000025).abs() < 1e-6,
        "{out}"
    );
    assert!(
        (m["max"].as_f64().unwrap() - 296_000.0 * 0.000025).abs() < 1e-6,
        "{out}"
    );
    assert_eq!(
        out["calls_per_execution"]["iam"],
        serde_json::json!({"min": 2, "max": 2}),
        "{out}"
    );
    let text = offline(repo).run(&["cost", "create-new-user"]).success();
    assert!(
        text.stdout
            .contains("fewest: rejected, 1 transition(s) ($0.000025); most: approved-as-"),
        "{text:?}"
    );
    // prices of one's own (a negotiated rate): the same counts, other dollars
    let dir = tempfile::tempdir().unwrap();
    let published = offline(repo)
        .run(&["cost", "--show-prices"])
        .success()
        .stdout;
    let mine = dir.path().join("prices.json");
    std::fs::write(
        &mine,
        published.replace("\"us-east-1\": 0.025", "\"us-east-1\": 0.05"),
    )
    .unwrap();
    let out = offline(repo)
        .run(&[
            "cost",
            "create-new-user",
            "--prices",
            mine.to_str().unwrap(),
            "-o",
            "json",
        ])
        .success()
        .json();
    let rejected = out["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "rejected")
        .unwrap();
    assert!(
        (rejected["usd"].as_f64().unwrap() - 0.00005).abs() < 1e-12,
        "{out}"
    );
}

/// The shared corpus of executions whose outcome AWS recorded (`../shared/sfn-conformance`,
/// run by its own runner against `deploy local`, moto answering the Lambda tasks): its counts
/// per group are printed, and the figures reached so far are a floor, so that a change that
/// loses an outcome AWS recorded fails here. Skipped by name where the corpus is absent.
#[test]
fn the_engine_keeps_the_outcomes_aws_recorded_in_the_shared_corpus() {
    let Some(dir) = outside("shared_sfn_conformance", "sfn-conformance") else {
        return;
    };
    let out = std::process::Command::new(python())
        .arg(dir.join("run.py"))
        .arg(env!("CARGO_BIN_EXE_deploy"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PATH", path_with_venv())
        .output()
        .expect("the corpus's runner");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // the counts per group, as the runner prints them, for whoever reads the test's output
    eprintln!("{text}");
    let figure = |prefix: &str| -> (u32, u32) {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in the runner's output:\n{text}"));
        let pair = line
            .split_whitespace()
            .find(|w| w.contains('/'))
            .expect("a count n/m");
        let (n, m) = pair.trim_end_matches(':').split_once('/').unwrap();
        (
            n.parse().unwrap(),
            m.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .unwrap(),
        )
    };
    let (passed, cases) = figure("conformance:");
    let (histories, recorded) = figure("history event types identical");
    // the corpus holds the 474 cases that were held out too (945 in all)
    assert!(
        passed >= 944 && cases == 945,
        "outcomes AWS recorded: {passed}/{cases}, fewer than the 944/945 reached:\n{text}"
    );
    assert!(
        histories >= 464 && recorded >= 470,
        "histories identical to AWS's: {histories}/{recorded}, fewer than the 464/471 reached:\n{text}"
    );
}

/// `deploy test --coverage`: which states, Choice rules and Defaults, Retry and Catch paths
/// the scenarios reach, and by which; `--min-coverage` fails below it naming what is missed;
/// JSON and JUnit carry the figure.
#[test]
fn coverage_says_what_the_scenarios_reach_and_fails_below_the_minimum() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = offline(repo)
        .run(&["test", "should-i-deploy", "--coverage"])
        .success();
    for line in [
        "  + Should I Deploy?: rule 1 → AttachUserPolicy  (bad-day-unlocked)",
        "  + Should I Deploy?: Default → DetachUserPolicy  (good-day-locked)",
        "  + Call Should I deploy API: Retry 1 [States.ALL]  (api-unreachable)",
        "coverage: 10 of 10 states, rules and paths reached (100%)",
    ] {
        assert!(out.stdout.contains(line), "{line}: {out:?}");
    }

    // one scenario alone misses most of it: named, exit 7
    let junit = tempfile::NamedTempFile::new().unwrap();
    let out = offline(repo)
        .run(&[
            "test",
            "should-i-deploy",
            "--scenario",
            "good-day-locked",
            "--min-coverage",
            "100",
            "--junit",
            junit.path().to_str().unwrap(),
        ])
        .code(7);
    assert!(
        out.stdout
            .contains("coverage: 5 of 10 states, rules and paths reached (50%)"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("cover 50% of its paths, below --min-coverage 100: not reached: Call Should I deploy API: Retry 1 [States.ALL]; Should I Deploy?: rule 1 → AttachUserPolicy; Should I Deploy?: rule 2 → Success; AttachUserPolicy (Task); Success (Succeed)"),
        "{out:?}"
    );
    let xml = std::fs::read_to_string(junit.path()).unwrap();
    assert!(
        xml.contains("<property name=\"coverage\" value=\"50\"/>"),
        "{xml}"
    );

    // resize-image's scenarios run two definitions (JSONata and JSONPath): each is reported,
    // its Catch and Retry paths among them
    let out = offline(repo)
        .run(&["test", "resize-image", "--coverage", "--output", "json"])
        .success();
    let doc: Value = serde_json::from_str(
        out.stdout
            .lines()
            .find(|l| l.starts_with("{\"coverage\""))
            .unwrap(),
    )
    .unwrap();
    let machines = doc["coverage"]["machines"].as_array().unwrap();
    assert_eq!(machines.len(), 2, "{doc}");
    let retried = machines[1]["items"].as_array().unwrap().iter().find(|i| {
        i["what"] == "retry" && i["by"].to_string().contains("lambda-retried-then-succeeds")
    });
    assert_eq!(
        machines[1]["scenarios"][1], "lambda-retried-then-succeeds",
        "{doc}"
    );
    assert!(retried.is_some(), "{doc}");
    let percent = doc["coverage"]["percent"].as_f64().unwrap();
    assert!(percent > 0.0 && percent <= 100.0, "{doc}");
}

/// `deploy graph --coverage` draws what the scenarios reach as a path taken and the rest not.
#[test]
fn the_graph_draws_what_the_scenarios_reach() {
    let copy = project_copy();
    let tests = copy.path().join("stacks/should-i-deploy/tests");
    for f in std::fs::read_dir(&tests).unwrap().flatten() {
        if f.file_name() != "good-day-locked.json" {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
    let out = offline(copy.path())
        .run(&["graph", "should-i-deploy", "--coverage", "-o", "svg"])
        .success();
    let mark = |state: &str| {
        let at = out.stdout.find(&format!("id=\"{state}\"")).unwrap();
        let tag = &out.stdout[at..at + out.stdout[at..].find('>').unwrap()];
        tag.contains("data-mark=\"visited\"")
    };
    for reached in [
        "Call Should I deploy API",
        "Should I Deploy?",
        "DetachUserPolicy",
    ] {
        assert!(mark(reached), "{reached}: {}", out.stdout);
    }
    for missed in ["AttachUserPolicy", "Success"] {
        assert!(!mark(missed), "{missed}: {}", out.stdout);
    }
}
