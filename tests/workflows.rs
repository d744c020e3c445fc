//! Running and watching workflows against moto (which executes JSONPath state machines when
//! asked to, with Lambda answering from a queue of results): `run`, `history`, `executions`,
//! `approve`, `reject`. moto 5.2.1 runs a given state machine once per server (a second
//! StartExecution of the same machine fails inside moto), so each run here has its own machine.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use support::*;

const ACCOUNT: &str = "123456789012";

#[test]
fn resize_image_runs_end_to_end_in_the_emulator() {
    require_wheelhouse();
    let w = World::new();
    w.moto.enable_execution();
    w.deploy()
        .run(&[
            "up",
            "resize-image",
            "--var",
            "query_language=jsonpath",
            "--yes",
        ])
        .success();
    let bucket = format!("profile-pictures-{ACCOUNT}-us-east-1");
    // The same input and Lambda answers as the local engine's scenario, to compare the two.
    let scenario: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("stacks/resize-image/tests/jsonpath-one-record.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let payload = |state: &str| scenario["mocks"][state][0]["Return"]["Payload"].clone();
    w.moto.queue_lambda_results(&[
        payload("Resize Profile Picture to Small"),
        payload("Resize Profile Picture to Big"),
    ]);
    w.c.block_on(async {
        w.c.s3
            .put_object()
            .bucket(&bucket)
            .key("uploaded/john-doe.png")
            .body(b"png".to_vec().into())
            .send()
            .await
            .unwrap()
    });
    // what the pipe delivers: a batch of SQS messages whose bodies are S3 events
    let input = w.state.path().join("batch.json");
    std::fs::write(&input, scenario["input"].to_string()).unwrap();

    let out = w
        .deploy()
        .run(&[
            "run",
            "resize-image",
            "--input-file",
            input.to_str().unwrap(),
        ])
        .success();
    for line in [
        "→ Map [Map]",
        "map over 1 items",
        "→ Resize Profile Picture [Parallel]",
        "→ Resize Profile Picture to Small [Task]",
        "→ Resize Profile Picture to Big [Task]",
        "Resize Profile Picture to Small: task lambda:invoke",
        "→ Set Small Profile picture URI [Task]",
        "→ Set Big Profile picture URI [Task]",
        "Set Big Profile picture URI: task dynamodb:updateItem",
        "→ Delete Uploaded Profile Picture [Task]",
        "Delete Uploaded Profile Picture: task aws-sdk:s3:deleteObject",
        "iteration 0 succeeded",
        "execution SUCCEEDED, output [{}]",
    ] {
        assert!(out.stdout.contains(line), "missing {line:?} in {out:?}");
    }
    w.c.block_on(async {
        // Both branches update the same item at the same instant; moto's DynamoDB does not make
        // UpdateItem atomic, so one of the two attributes can be lost there (AWS keeps both).
        // The history below shows both updates; here every attribute that landed must be right.
        let item =
            w.c.dynamodb
                .get_item()
                .table_name("user")
                .key(
                    "userId",
                    aws_sdk_dynamodb::types::AttributeValue::S("john-doe".into()),
                )
                .send()
                .await
                .unwrap();
        let item = item.item().expect("the user item was written");
        let small = item.get("smallPicture").map(|v| v.as_s().unwrap().as_str());
        let big = item.get("bigPicture").map(|v| v.as_s().unwrap().as_str());
        // moto hands the queued Lambda results to whichever parallel invocation asks first
        let both = ["john-doe/128.png", "john-doe/512.png"];
        assert!(small.is_some() || big.is_some(), "{item:?}");
        assert!(
            small.is_none_or(|v| both.contains(&v)) && big.is_none_or(|v| both.contains(&v)),
            "{item:?}"
        );
        let left =
            w.c.s3
                .list_objects_v2()
                .bucket(&bucket)
                .send()
                .await
                .unwrap();
        assert!(left.contents().is_empty(), "the upload was deleted");
    });

    // the same execution, afterwards: listed, and its history as JSON lines
    let list = w
        .deploy()
        .run(&["executions", "resize-image", "--output", "json"])
        .success()
        .json()["executions"]
        .clone();
    let runs = list.as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "SUCCEEDED");
    let arn = runs[0]["executionArn"].as_str().unwrap().to_string();
    assert!(out.stdout.contains(&arn), "run printed the execution ARN");
    let hist = w
        .deploy()
        .run(&["history", &arn, "--output", "json"])
        .success();
    let events: Vec<Value> = hist
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["type"], "ExecutionStarted");
    assert_eq!(events.last().unwrap()["type"], "ExecutionSucceeded");
    let entered: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "TaskStateEntered")
        .map(|e| e["details"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(entered.len(), 5, "{entered:?}");
    let updates: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "TaskScheduled" && e["details"]["resource"] == "updateItem")
        .map(|e| e["details"]["parameters"].as_str().unwrap())
        .collect();
    assert_eq!(updates.len(), 2);
    assert!(
        updates
            .iter()
            .any(|p| p.contains("SET smallPicture = :value")),
        "{updates:?}"
    );
    assert!(
        updates
            .iter()
            .any(|p| p.contains("SET bigPicture = :value")),
        "{updates:?}"
    );
    assert!(
        updates.iter().any(|p| p.contains("john-doe/128.png"))
            && updates.iter().any(|p| p.contains("john-doe/512.png")),
        "{updates:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "TaskSucceeded")
            .count(),
        5
    );

    // Same results whichever engine runs it: the local engine, on the same input and answers,
    // gives the same output and the same history event types (the two Parallel branches
    // interleave differently: both run them at once, but with mocks answering at once the local engine
    // finishes the first branch before the second starts).
    let local = w
        .deploy()
        .run(&[
            "test",
            "resize-image",
            "--scenario",
            "jsonpath-one-record",
            "--output",
            "json",
        ])
        .success();
    let local: Value = serde_json::from_str(local.stdout.lines().next().unwrap()).unwrap();
    let local_types: Vec<&str> = local["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let moto_types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let sorted = |v: &[&str]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(
        sorted(&local_types),
        sorted(&moto_types),
        "\nlocal {local_types:?}\nmoto  {moto_types:?}"
    );
    assert_eq!(
        local_types[..7],
        moto_types[..7],
        "up to the branches, in order"
    );
    assert_eq!(
        local_types[local_types.len() - 10..],
        moto_types[moto_types.len() - 10..],
        "from the join on, in order"
    );
    let moto_output: Value = serde_json::from_str(
        events.last().unwrap()["details"]["output"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(local["status"], "SUCCEEDED");
    assert_eq!(moto_output, serde_json::json!([{}]));

    // the path it took, drawn
    let dot = w
        .deploy()
        .run(&[
            "graph",
            "resize-image",
            "--var",
            "query_language=jsonpath",
            "--execution",
            &arn,
        ])
        .success()
        .stdout;
    for state in [
        "Map",
        "Resize Profile Picture",
        "Set Big Profile picture URI",
        "Delete Uploaded Profile Picture",
    ] {
        let line = dot
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("\"{state}\" [")))
            .unwrap();
        assert!(
            line.contains("fillcolor=\"#c8ecd0\""),
            "{state} visited: {line}"
        );
    }
    assert!(
        dot.contains(
            "\"Set Small Profile picture URI\" -> \"Delete Uploaded Profile Picture\" [style=dotted, color=\"#1d8102\", penwidth=2]"
        ),
        "{dot}"
    );

    // queue attributes the manifest leaves at AWS's defaults are still managed: a change made
    // outside deploy shows in the plan, and up puts the default back
    let url = w.c.block_on(async {
        w.c.sqs
            .get_queue_url()
            .queue_name("profile-pictures")
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string()
    });
    let visibility = || {
        w.c.block_on(async {
            let got =
                w.c.sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names("VisibilityTimeout".into())
                    .send()
                    .await
                    .unwrap();
            got.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout]
                .clone()
        })
    };
    assert_eq!(visibility(), "30");
    w.c.block_on(async {
        w.c.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes("VisibilityTimeout".into(), "60")
            .send()
            .await
            .unwrap()
    });
    let plan = w
        .deploy()
        .run(&["plan", "resize-image", "--var", "query_language=jsonpath"])
        .success();
    assert!(
        plan.stdout
            .contains("~ visibility_timeout_seconds: 60 → 30  # changed outside deploy\n"),
        "{plan:?}"
    );
    w.deploy()
        .run(&[
            "up",
            "resize-image",
            "--var",
            "query_language=jsonpath",
            "--yes",
        ])
        .success();
    assert_eq!(visibility(), "30");
}

fn callback_world() -> World {
    let mut w = World::new();
    w.project = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/callback");
    w.moto.enable_execution();
    w.deploy()
        .run(&["up", "callback", "--env", "t", "--yes"])
        .success();
    w
}

#[test]
fn a_waiting_task_is_approved_from_the_command_line() {
    let w = callback_world();
    let (running, token) = run_until_token(w.deploy(), &["run", "callback", "--env", "t"]);
    let out = w
        .deploy()
        .run(&[
            "approve",
            "--token",
            &token,
            "--task-output",
            r#"{"admin": true}"#,
        ])
        .success();
    assert!(
        out.stdout
            .contains(r#"sent task success with output {"admin": true}"#),
        "{out:?}"
    );
    let (code, stdout) = running.finish();
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("waiting for a callback with task token"),
        "{stdout}"
    );
    assert!(
        stdout.contains("← Ask output {\"admin\":true}"),
        "the answer became the task's output: {stdout}"
    );
    assert!(stdout.contains("execution SUCCEEDED"), "{stdout}");

    // an answered token cannot be answered again; an answer must be JSON
    let out = w.deploy().run(&["approve", "--token", &token]).code(2);
    assert!(
        out.stderr.contains("no task waits for that token"),
        "{out:?}"
    );
    let out = w
        .deploy()
        .run(&["approve", "--token", "x", "--task-output", "{not json"])
        .code(2);
    assert!(out.stderr.contains("--task-output is not JSON"), "{out:?}");
}

#[test]
fn a_waiting_task_is_rejected_from_the_command_line() {
    let w = callback_world();
    let (running, token) = run_until_token(w.deploy(), &["run", "callback", "--env", "t"]);
    w.moto.start_recording();
    w.deploy()
        .run(&[
            "reject",
            "--token",
            &token,
            "--error",
            "Rejected",
            "--cause",
            "not today",
        ])
        .success();
    let sent: Vec<Value> = w
        .moto
        .recorded_bodies("SendTaskFailure")
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(
        sent,
        vec![json!({"taskToken": token, "error": "Rejected", "cause": "not today"})]
    );
    let (code, stdout) = running.finish();
    assert_eq!(code, 7, "a failed execution exits 7: {stdout}");
    // (moto 5.2.1 drops the cause of SendTaskFailure; AWS passes it on)
    assert!(stdout.contains("Ask: task failed: Rejected:"), "{stdout}");
    assert!(stdout.contains("execution FAILED: Rejected:"), "{stdout}");

    // where it failed, drawn
    let runs = w
        .deploy()
        .run(&["executions", "callback", "--env", "t", "--output", "json"])
        .success()
        .json()["executions"]
        .clone();
    let arn = runs[0]["executionArn"].as_str().unwrap().to_string();
    let dot = w
        .deploy()
        .run(&["graph", "callback", "--env", "t", "--execution", &arn])
        .success()
        .stdout;
    let ask = dot
        .lines()
        .find(|l| l.trim_start().starts_with("\"Ask\" ["))
        .unwrap();
    assert!(
        ask.contains("fillcolor=\"#f6b9b3\""),
        "Ask is where it failed: {ask}"
    );
    let done = dot
        .lines()
        .find(|l| l.trim_start().starts_with("\"Done\" ["))
        .unwrap();
    assert!(
        !done.contains("#c8ecd0") && !done.contains("#f6b9b3"),
        "Done was never reached: {done}"
    );
}

#[test]
fn run_explains_what_is_missing() {
    let w = World::new();
    let out = w.deploy().run(&["run", "should-i-deploy"]).code(2);
    assert!(
        out.stderr
            .contains("stack `should-i-deploy` has no deployed state machine in env `default`"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("help: deploy it first: deploy up should-i-deploy"),
        "{out:?}"
    );
    w.deploy()
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    let out = w
        .deploy()
        .run(&["run", "should-i-deploy", "--input", "{oops"])
        .code(2);
    assert!(
        out.stderr.contains("the execution input is not JSON"),
        "{out:?}"
    );
    let out = w
        .deploy()
        .run(&["run", "should-i-deploy", "--no-wait"])
        .success();
    assert!(
        out.stdout
            .trim()
            .starts_with("arn:aws:states:us-east-1:123456789012:execution:should-i-deploy:deploy-"),
        "{out:?}"
    );
}

/// A JSONata workflow run on moto alone (AWS_ENDPOINT_URL_SFN forgotten): moto answers with a
/// placeholder history of a state the definition does not have. `run` says so, with the way
/// out, instead of showing that history as the workflow's.
#[test]
fn a_workflow_the_endpoint_does_not_run_is_reported_with_the_way_out() {
    let w = World::new();
    w.deploy()
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    let out = w.deploy().run(&["run", "should-i-deploy"]).code(3);
    assert!(
        out.stderr.contains(&format!(
            "error: {} does not run this state machine: its history of arn:aws:states:",
            w.moto.url()
        )),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("enters a state `A State` that the definition does not have"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("point AWS_ENDPOINT_URL_SFN at it"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("execution SUCCEEDED"), "{out:?}");
}
