//! `deploy local` beside moto: Step Functions on the local engine (AWS_ENDPOINT_URL_SFN), every
//! other service on moto (AWS_ENDPOINT_URL). The exercises are deployed with `deploy up` and run
//! with `deploy run` / `approve` / `reject` exactly as against AWS, and their tasks act on moto
//! for real: what they did is checked there through the SDK.

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::*;

const ACCOUNT: &str = "123456789012";

/// A running `deploy local`, stopped when dropped.
struct Local {
    child: std::process::Child,
    url: String,
}

impl Local {
    fn start(w: &World, extra: &[&str]) -> Local {
        Local::start_with(w.deploy(), extra)
    }

    /// `deploy local` run by the binary as `d` sets it up (its endpoint, its environment).
    fn start_with(d: Deploy, extra: &[&str]) -> Local {
        let mut args = vec!["local", "--port", "0"];
        args.extend_from_slice(extra);
        let mut child = d.spawn(&args);
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
        // keep draining what it prints (one log line per execution on stderr)
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let url = regex::Regex::new(r"on (http://127\.0\.0\.1:\d+)")
            .unwrap()
            .captures(&first)
            .unwrap_or_else(|| {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("deploy local did not start: {first:?} {err}")
            })[1]
            .to_string();
        Local { child, url }
    }

    /// SDK clients whose Step Functions client talks to this endpoint.
    fn sfn(&self) -> aws_sdk_sfn::Client {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        "testing", "testing", None, None, "tests",
                    ),
                ),
            )
            .build();
        aws_sdk_sfn::Client::new(&config)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with Step Functions on the local endpoint and the rest on moto.
fn deploy(w: &World, local: &Local) -> Deploy {
    w.deploy().env("AWS_ENDPOINT_URL_SFN", &local.url)
}

/// A stand-in for shouldideploy.today: answers GET with the current `yes` and records the paths.
struct Api {
    port: u16,
    yes: Arc<AtomicBool>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Api {
    fn start(yes: bool) -> Api {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (flag, paths) = (
            Arc::new(AtomicBool::new(yes)),
            Arc::new(Mutex::new(Vec::new())),
        );
        let (f, p) = (flag.clone(), paths.clone());
        std::thread::spawn(move || {
            for mut s in listener.incoming().map_while(Result::ok) {
                let mut line = String::new();
                let mut reader = BufReader::new(s.try_clone().unwrap());
                reader.read_line(&mut line).unwrap();
                while {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap() > 0 && h != "\r\n"
                } {}
                p.lock().unwrap().push(
                    line.split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_string(),
                );
                let body = json!({"timezone": "UTC", "date": "2026-11-23T12:00:00.000Z", "shouldideploy": f.load(Ordering::SeqCst), "message": "stand-in"})
                    .to_string();
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Api {
            port,
            yes: flag,
            paths,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn attached(w: &World, user: &str) -> Vec<String> {
    w.c.block_on(async {
        let o =
            w.c.iam
                .list_attached_user_policies()
                .user_name(user)
                .send()
                .await
                .unwrap();
        o.attached_policies()
            .iter()
            .map(|p| p.policy_name().unwrap().to_string())
            .collect()
    })
}

#[test]
fn should_i_deploy_runs_on_the_local_endpoint_and_acts_on_the_emulator() {
    let w = World::new();
    let api = Api::start(false);
    let local = Local::start(&w, &["--http-endpoint", &api.url()]);
    deploy(&w, &local)
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    // the state machine lives on the local endpoint, not in moto
    let on_local =
        w.c.block_on(local.sfn().list_state_machines().send())
            .unwrap();
    assert_eq!(
        on_local
            .state_machines()
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>(),
        ["should-i-deploy"]
    );
    assert!(
        w.c.block_on(w.c.sfn.list_state_machines().send())
            .unwrap()
            .state_machines()
            .is_empty(),
        "nothing in moto's Step Functions"
    );
    let user = "terraform-deploy-from-pipeline";
    assert!(!attached(&w, user).contains(&"AWSDenyAll".to_string()));

    // a bad day: the API says no, the user is locked (AWSDenyAll attached, in moto); --open
    // hands the execution's page on the local endpoint to the browser ($BROWSER)
    let opened = w.state.path().join("opened");
    let browser = w.state.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = deploy(&w, &local)
        .env("BROWSER", browser.to_str().unwrap())
        .run(&["run", "should-i-deploy", "--name", "bad-day", "--open"])
        .success();
    let page = format!("{}/executions/should-i-deploy/bad-day", local.url);
    assert!(out.stderr.contains(&format!("opening {page}")), "{out:?}");
    let mut url = String::new();
    for _ in 0..100 {
        url = std::fs::read_to_string(&opened).unwrap_or_default();
        if !url.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(url.trim(), page);
    let html = get_page(&local, &page);
    assert!(
        html.contains("<h1>bad-day</h1>") && html.contains("SUCCEEDED"),
        "{html}"
    );
    for line in [
        "Call Should I deploy API: task http:invoke",
        "ListAttachedUserPolicies: task aws-sdk:iam:listAttachedUserPolicies",
        "→ AttachUserPolicy [Task]",
        "execution SUCCEEDED",
    ] {
        assert!(out.stdout.contains(line), "missing {line:?} in {out:?}");
    }
    assert!(
        attached(&w, user).contains(&"AWSDenyAll".to_string()),
        "the workflow attached the deny policy in moto"
    );
    assert_eq!(
        api.paths.lock().unwrap().as_slice(),
        ["/api"],
        "ApiEndpoint's path, sent to --http-endpoint"
    );

    // a good day: the API says yes, the user is unlocked again
    api.yes.store(true, Ordering::SeqCst);
    let out = deploy(&w, &local)
        .run(&["run", "should-i-deploy", "--output", "json"])
        .success();
    assert!(out.stdout.contains("DetachUserPolicy"), "{out:?}");
    assert!(
        !attached(&w, user).contains(&"AWSDenyAll".to_string()),
        "detached"
    );
    // a good day when nothing is locked: nothing to do
    let out = deploy(&w, &local)
        .run(&["run", "should-i-deploy"])
        .success();
    assert!(
        out.stdout.contains("→ Success [Succeed]")
            && !out.stdout.contains("AttachUserPolicy [Task]"),
        "{out:?}"
    );

    // executions and history come from the local endpoint, as from AWS
    let list = deploy(&w, &local)
        .run(&["executions", "should-i-deploy", "--output", "json"])
        .success()
        .json()["executions"]
        .clone();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "SUCCEEDED"),
        "{list}"
    );
    let arn = list[2]["executionArn"].as_str().unwrap();
    let hist = deploy(&w, &local)
        .run(&["history", arn, "--output", "json"])
        .success();
    let types: Vec<String> = hist
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("ExecutionStarted"));
    assert_eq!(types.last().map(String::as_str), Some("ExecutionSucceeded"));
    assert!(
        types.iter().any(|t| t == "TaskScheduled")
            && types.iter().any(|t| t == "ChoiceStateEntered"),
        "{types:?}"
    );

    // locked again, then destroyed: the user the workflow locked is ours, so the deny policy
    // the workflow attached is detached first (the managed policy itself stays)
    api.yes.store(false, Ordering::SeqCst);
    deploy(&w, &local)
        .run(&["run", "should-i-deploy"])
        .success();
    assert!(
        attached(&w, user).contains(&"AWSDenyAll".to_string()),
        "locked"
    );
    // destroy removes the machine from the local endpoint and the rest from moto
    let out = deploy(&w, &local).run(&["destroy", "--yes"]).success();
    assert!(
        out.stderr.contains(
            "deploy_user: detached AWSDenyAll from the user first (attached outside deploy)"
        ),
        "{out:?}"
    );
    assert!(
        w.c.block_on(local.sfn().list_state_machines().send())
            .unwrap()
            .state_machines()
            .is_empty()
    );
    nothing_left(&w.c, w.moto.port);
}

#[test]
fn create_new_user_waits_for_the_approval_sent_through_sns() {
    let w = World::with_project_copy();
    let local = Local::start(&w, &[]);
    deploy(&w, &local)
        .run(&[
            "up",
            "create-new-user",
            "--var",
            "email=manager@example.com",
            "--yes",
        ])
        .success();
    w.moto.start_recording();

    // approved as admin: the user is created in moto and added to admins-group
    let (running, token) = run_until_token(
        deploy(&w, &local),
        &[
            "run",
            "create-new-user",
            "--input",
            r#"{"username": "john-doe"}"#,
        ],
    );
    // the token is in the history once the task is scheduled, which is before the task has
    // sent it: wait for the Publish to reach moto instead of racing it
    eventually(
        30,
        "the approval request to go out through moto's SNS",
        || !w.moto.recorded_bodies("Publish").is_empty(),
    );
    let published = w.moto.recorded_bodies("Publish");
    assert_eq!(
        published.len(),
        1,
        "one approval request went out through moto's SNS"
    );
    assert!(
        percent_decode(&published[0]).contains(&token),
        "the message carries the token: {}",
        published[0]
    );
    // waiting for its token, the execution has no outcome to record yet
    let waiting = newest_execution(&w, &local, "create-new-user");
    let out = save(&w, &local, "create-new-user", &waiting, "too-soon", &[]).code(2);
    assert!(out.stderr.contains("is still running"), "{out:?}");
    deploy(&w, &local)
        .run(&[
            "approve",
            "--token",
            &token,
            "--task-output",
            r#"{"admin": true}"#,
        ])
        .success();
    let (code, out) = running.finish();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "answer with: deploy approve --token '{token}' --task-output '{{\"admin\": ...}}'"
        )),
        "the hint shows the answer the workflow reads: {out}"
    );
    assert!(
        out.contains("AddUserToGroup: task aws-sdk:iam:addUserToGroup")
            && out.contains("execution SUCCEEDED"),
        "{out}"
    );
    let groups =
        w.c.block_on(w.c.iam.list_groups_for_user().user_name("john-doe").send())
            .unwrap();
    assert_eq!(
        groups
            .groups()
            .iter()
            .map(|g| g.group_name())
            .collect::<Vec<_>>(),
        ["admins-group"]
    );
    // a token is answered once
    deploy(&w, &local)
        .run(&["approve", "--token", &token])
        .code(2);
    // recorded: the manager's answer is the mock of the task that waited for it
    let sc = record(&w, &local, "create-new-user", &waiting, "recorded-admin");
    assert_eq!(
        sc["mocks"]["SNS Publish"],
        json!([{"Return": {"admin": true}}]),
        "{sc}"
    );

    // rejected, by execution rather than token (as a script does right after `run --no-wait`):
    // the execution fails with the manager's error, and no user is created
    let started = deploy(&w, &local)
        .run(&[
            "run",
            "create-new-user",
            "--input",
            r#"{"username": "jane-doe"}"#,
            "--no-wait",
        ])
        .success();
    let arn = started.stdout.trim().to_string();
    deploy(&w, &local)
        .run(&[
            "reject",
            "--execution",
            &arn,
            "--error",
            "Rejected",
            "--cause",
            "not this week",
        ])
        .success();
    eventually(30, "the rejected execution to fail", || {
        deploy(&w, &local).run(&["history", &arn]).code == 7
    });
    let out = deploy(&w, &local).run(&["history", &arn]).code(7);
    assert!(
        out.stdout.contains("Rejected") && out.stdout.contains("not this week"),
        "the cause comes through: {out:?}"
    );
    let sc = record(&w, &local, "create-new-user", &arn, "recorded-rejected");
    assert_eq!(
        (
            &sc["expect"]["status"],
            &sc["expect"]["error"],
            &sc["expect"]["cause"]
        ),
        (
            &json!("FAILED"),
            &json!("Rejected"),
            &json!("not this week")
        ),
        "{sc}"
    );
    let out = deploy(&w, &local)
        .run(&["approve", "--execution", &arn])
        .code(2);
    assert!(
        out.stderr
            .contains("has ended: no task of it waits for an answer"),
        "{out:?}"
    );
    let users = w.c.block_on(w.c.iam.list_users().send()).unwrap();
    assert!(!users.users().iter().any(|u| u.user_name() == "jane-doe"));
}

#[test]
fn bucket_replication_polls_the_datasync_task_in_the_emulator() {
    let w = World::with_project_copy();
    // every Wait 100 times shorter: the 10 s polls take 0.1 s
    let local = Local::start(&w, &["--time-scale", "0.01"]);
    deploy(&w, &local)
        .run(&["up", "bucket-replication", "--yes"])
        .success();
    let out = deploy(&w, &local)
        .run(&["run", "bucket-replication"])
        .success();
    let polls = out
        .stdout
        .matches("task aws-sdk:datasync:describeTaskExecution")
        .count();
    assert!(
        polls >= 2,
        "moto's task execution goes through its phases, polled each time: {out:?}"
    );
    assert!(
        out.stdout.contains("startTaskExecution") && out.stdout.contains("execution SUCCEEDED"),
        "{out:?}"
    );
    // the task execution it started is moto's own, and moto says it succeeded
    let arn = regex::Regex::new(r#"arn:aws:datasync:[^"]+/execution/exec-[0-9a-f]+"#)
        .unwrap()
        .find(&out.stdout)
        .expect("an execution ARN")
        .as_str();
    let run =
        w.c.block_on(
            w.c.datasync
                .describe_task_execution()
                .task_execution_arn(arn)
                .send(),
        )
        .unwrap();
    assert_eq!(run.status().map(|s| s.as_str()), Some("SUCCESS"));
    // recorded: every poll's answer, in order, passes on the local engine with virtual time
    let arn = newest_execution(&w, &local, "bucket-replication");
    let sc = record(&w, &local, "bucket-replication", &arn, "recorded");
    let polls_recorded = sc["mocks"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(state, _)| state.contains("Describe") || state.contains("Status"))
        .map(|(_, answers)| answers.as_array().unwrap().len())
        .sum::<usize>();
    assert!(polls_recorded >= 2, "{sc}");
}

/// resize-image deployed with deploy local beside moto, whose Lambda answers (without Docker)
/// the two resizes of the recorded one-record scenario; returns that scenario.
fn resize_image_on_deploy_local() -> (World, Local, Value) {
    require_wheelhouse();
    let w = World::with_project_copy();
    w.moto.enable_execution(); // moto's Lambda answers from a queue, without Docker
    let local = Local::start(&w, &[]);
    deploy(&w, &local)
        .run(&["up", "resize-image", "--yes"])
        .success();
    let scenario: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("stacks/resize-image/tests/one-record.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let payload = |state: &str| scenario["mocks"][state][0]["Return"]["Payload"].clone();
    assert!(
        !payload("Resize Profile Picture to Small").is_null(),
        "{scenario}"
    );
    w.moto.queue_lambda_results(&[
        payload("Resize Profile Picture to Small"),
        payload("Resize Profile Picture to Big"),
    ]);
    (w, local, scenario)
}

/// resize-image as its walkthrough goes, offline: a picture uploaded to the bucket, S3's
/// notification in the queue, the pipe (run by deploy local from what moto holds) starting an
/// execution with the queue's records, which resizes (moto's Lambda answering from a queue,
/// without Docker) and records the result in the table. Nothing is started by hand.
#[test]
fn an_upload_starts_resize_image_through_its_pipe_on_deploy_local() {
    let (w, local, _) = resize_image_on_deploy_local();
    let ended = |status: &str| {
        executions(&w, &local, "resize-image")
            .into_iter()
            .filter(|e| e["status"] == status)
            .collect::<Vec<_>>()
    };
    // configuring the notification made S3 send its s3:TestEvent to the queue: the pipe passes
    // it on as AWS's does, and the workflow (which reads Records[0]) fails on it, as on AWS
    eventually(60, "the pipe to pass S3's test event on", || {
        ended("FAILED").len() == 1
    });
    let bucket = format!("profile-pictures-{ACCOUNT}-us-east-1");
    w.c.block_on(
        w.c.s3
            .put_object()
            .bucket(&bucket)
            .key("uploaded/john-doe.png")
            .body(b"png".to_vec().into())
            .send(),
    )
    .unwrap();
    eventually(60, "the upload to start an execution that succeeds", || {
        !ended("SUCCEEDED").is_empty()
    });
    let list = executions(&w, &local, "resize-image");
    assert_eq!(list.len(), 2, "the test event, then the upload: {list:?}");
    let succeeded = ended("SUCCEEDED");
    let arn = succeeded[0]["executionArn"].as_str().unwrap();
    let out = deploy(&w, &local).run(&["history", arn]).success();
    assert!(out.stdout.contains("execution SUCCEEDED"), "{out:?}");
    let events = deploy(&w, &local)
        .run(&["history", arn, "--output", "json"])
        .success();
    assert!(
        events.stdout.contains("uploaded/john-doe.png") && events.stdout.contains("aws:sqs"),
        "the S3 event came through the queue: {events:?}"
    );
    // the message was taken off the queue: nothing left for a second execution
    let q =
        w.c.block_on(
            w.c.sqs
                .get_queue_url()
                .queue_name("profile-pictures")
                .send(),
        )
        .unwrap();
    let left =
        w.c.block_on(
            w.c.sqs
                .get_queue_attributes()
                .queue_url(q.queue_url().unwrap())
                .attribute_names(
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
                )
                .send(),
        )
        .unwrap();
    let n = left
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .cloned()
        .unwrap_or_default();
    assert_eq!(n, "0");
}

/// should-i-deploy's schedule, run by deploy local from the rule in moto: an execution every
/// period (here 1 minute at a hundredth of the time), each with the Scheduled Event as input.
#[test]
fn a_scheduled_rule_starts_its_state_machine_on_deploy_local() {
    let api = Api::start(true);
    // should-i-deploy every minute, on deploy local at a hundredth of the time
    let every_minute = |extra: &[&str]| {
        let w = World::new();
        let url = api.url();
        let args = [
            &["--http-endpoint", url.as_str(), "--time-scale", "0.01"][..],
            extra,
        ]
        .concat();
        let local = Local::start(&w, &args);
        deploy(&w, &local)
            .run(&[
                "up",
                "should-i-deploy",
                "--var",
                "frequency_in_minutes=1",
                "--yes",
            ])
            .success();
        (w, local)
    };
    let (w, local) = every_minute(&[]);
    eventually(60, "the rule to start two executions", || {
        executions(&w, &local, "should-i-deploy").len() >= 2
    });
    let arn = executions(&w, &local, "should-i-deploy")[0]["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let events = deploy(&w, &local)
        .run(&["history", &arn, "--output", "json"])
        .success();
    assert!(
        events.stdout.contains("Scheduled Event") && events.stdout.contains("rule/should-i-deploy"),
        "{events:?}"
    );
    // without the triggers, nothing starts by itself
    let (w, local) = every_minute(&["--triggers", "false"]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(executions(&w, &local, "should-i-deploy").len(), 0);
}

#[test]
fn resize_image_jsonata_runs_locally_with_lambda_dynamodb_and_s3_in_the_emulator() {
    let (w, local, scenario) = resize_image_on_deploy_local();
    let bucket = format!("profile-pictures-{ACCOUNT}-us-east-1");
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
    let input = w.state.path().join("batch.json");
    std::fs::write(&input, scenario["input"].to_string()).unwrap();
    let out = deploy(&w, &local)
        .run(&[
            "run",
            "resize-image",
            "--input-file",
            input.to_str().unwrap(),
        ])
        .success();
    for line in [
        "task lambda:invoke",
        "task dynamodb:updateItem",
        "task aws-sdk:s3:deleteObject",
        "execution SUCCEEDED",
    ] {
        assert!(out.stdout.contains(line), "missing {line:?} in {out:?}");
    }
    w.c.block_on(async {
        let item =
            w.c.dynamodb
                .get_item()
                .table_name("user")
                .key(
                    "userId",
                    aws_sdk_dynamodb::types::AttributeValue::S("john-doe".into()),
                )
                .send();
        let item = item.await.unwrap();
        let item = item.item().expect("the user item was written in moto");
        assert!(
            item.contains_key("smallPicture") || item.contains_key("bigPicture"),
            "{item:?}"
        );
        let left =
            w.c.s3
                .list_objects_v2()
                .bucket(&bucket)
                .send()
                .await
                .unwrap();
        assert!(
            left.contents().is_empty(),
            "the upload was deleted from moto's S3"
        );
    });
    // recorded, Map iterations and all: the Lambda answers as moto gave them
    let arn = newest_execution(&w, &local, "resize-image");
    let sc = record(&w, &local, "resize-image", &arn, "recorded");
    assert!(
        sc["expect"]["path"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s.as_str().unwrap().starts_with("Resize Profile Picture"))
            .count()
            >= 2,
        "{sc}"
    );
}

/// One JSON 1.0 call without an SDK.
/// The page at `url` on the local endpoint (a GET, as a browser makes it).
fn get_page(local: &Local, url: &str) -> String {
    let addr = local.url.trim_start_matches("http://");
    let path = url.trim_start_matches(&local.url);
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

fn raw(local: &Local, operation: &str, body: &str) -> Value {
    let addr = local.url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: AWSStepFunctions.{operation}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    serde_json::from_str(out.split_once("\r\n\r\n").unwrap().1).unwrap()
}

fn definition(states: Value) -> String {
    json!({"QueryLanguage": "JSONata", "StartAt": "Start", "States": states}).to_string()
}

#[test]
fn the_api_behaves_as_step_functions_does() {
    use aws_sdk_sfn::types::{ExecutionStatus, StateMachineType};
    let w = World::new();
    let mocks =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/MockConfigFile.json");
    let local = Local::start(&w, &["--mock-config", mocks.to_str().unwrap()]);
    let sfn = local.sfn();
    let role = format!("arn:aws:iam::{ACCOUNT}:role/any");
    w.c.block_on(async {
        // moto takes any definition; the local endpoint checks it as AWS does
        let bad = sfn
            .create_state_machine()
            .name("bad")
            .role_arn(&role)
            .definition(r#"{"StartAt": "Nowhere", "States": {"A": {"Type": "Pass", "End": true}}}"#)
            .send()
            .await
            .unwrap_err();
        assert!(bad.as_service_error().unwrap().is_invalid_definition(), "{bad:?}");
        let v = sfn.validate_state_machine_definition().definition(r#"{"StartAt": "A", "States": {"A": {"Type": "Tusk"}}}"#).send().await.unwrap();
        assert_eq!(v.result().as_str(), "FAIL");
        assert!(!v.diagnostics().is_empty());

        // a waiting execution is stopped: ABORTED, with the reason, and its token is dead
        let waiting = definition(json!({"Start": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
            "Arguments": {"TopicArn": format!("arn:aws:sns:us-east-1:{ACCOUNT}:nope"), "Message": "{% $states.context.Task.Token %}"}, "End": true}}));
        let m = sfn.create_state_machine().name("waits").role_arn(&role).definition(&waiting).send().await.unwrap();
        let arn = m.state_machine_arn().to_string();
        let e = sfn.start_execution().state_machine_arn(&arn).name("first").send().await.unwrap();
        let again = sfn.start_execution().state_machine_arn(&arn).name("first").input(r#"{"other": 1}"#).send().await.unwrap_err();
        assert!(again.as_service_error().unwrap().is_execution_already_exists(), "{again:?}");
        // the topic does not exist in moto: the publish fails, as it would on AWS
        let failed = loop {
            let d = sfn.describe_execution().execution_arn(e.execution_arn()).send().await.unwrap();
            if d.status() != &ExecutionStatus::Running {
                break d;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(failed.status(), &ExecutionStatus::Failed);
        assert_eq!(failed.error(), Some("SNS.NotFoundException"), "{failed:?}");

        let pass_then_wait = definition(json!({"Start": {"Type": "Wait", "Seconds": 3600, "End": true}}));
        let m = sfn.create_state_machine().name("sleeps").role_arn(&role).definition(&pass_then_wait).send().await.unwrap();
        let e = sfn.start_execution().state_machine_arn(m.state_machine_arn()).send().await.unwrap();
        sfn.stop_execution().execution_arn(e.execution_arn()).error("Enough").cause("stopped by the test").send().await.unwrap();
        let d = sfn.describe_execution().execution_arn(e.execution_arn()).send().await.unwrap();
        assert_eq!((d.status(), d.error(), d.cause()), (&ExecutionStatus::Aborted, Some("Enough"), Some("stopped by the test")));
        let h = sfn.get_execution_history().execution_arn(e.execution_arn()).reverse_order(true).send().await.unwrap();
        assert_eq!(h.events()[0].r#type().as_str(), "ExecutionAborted");

        // Step Functions Local's mock test cases: `<machine ARN>#<case>`
        let cnu = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/create-new-user/jsonata.json")).unwrap();
        let cnu = cnu
            .replace("{{ TOPIC_ARN }}", &format!("arn:aws:sns:us-east-1:{ACCOUNT}:t"))
            .replace("{{ ADMIN_GROUP_NAME }}", "admins")
            .replace("{{ DEVELOP_GROUP_NAME }}", "developers");
        let m = sfn.create_state_machine().name("create-new-user").role_arn(&role).definition(&cnu).send().await;
        let m = m.unwrap_or_else(|e| panic!("{e:?} {cnu}"));
        let e = sfn
            .start_execution()
            .state_machine_arn(format!("{}#Reject", m.state_machine_arn()))
            .input(r#"{"username": "x"}"#)
            .send()
            .await
            .unwrap();
        let d = loop {
            let d = sfn.describe_execution().execution_arn(e.execution_arn()).send().await.unwrap();
            if d.status() != &ExecutionStatus::Running {
                break d;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!((d.status(), d.error(), d.cause()), (&ExecutionStatus::Failed, Some("Rejected"), Some("not today")));

        // EXPRESS machines answer StartSyncExecution with the result. (SDKs send it to
        // `sync-<host>`, which does not resolve for a local endpoint: the raw protocol here.)
        let express = definition(json!({"Start": {"Type": "Pass", "Output": "{% $states.input.n * 2 %}", "End": true}}));
        let m = sfn
            .create_state_machine()
            .name("express")
            .r#type(StateMachineType::Express)
            .role_arn(&role)
            .definition(&express)
            .send()
            .await
            .unwrap();
        let body = json!({"stateMachineArn": m.state_machine_arn(), "input": r#"{"n": 21}"#}).to_string();
        let r = raw(&local, "StartSyncExecution", &body);
        assert_eq!((r["status"].as_str(), r["output"].as_str()), (Some("SUCCEEDED"), Some("42")), "{r}");

        let listed = sfn.list_state_machines().max_results(2).send().await.unwrap();
        assert_eq!(listed.state_machines().len(), 2);
        let rest = sfn.list_state_machines().next_token(listed.next_token().unwrap()).send().await.unwrap();
        assert_eq!(rest.state_machines().len(), 2, "4 machines in two pages");
        let missing = sfn.describe_state_machine().state_machine_arn(format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:none")).send().await;
        assert!(missing.unwrap_err().as_service_error().unwrap().is_state_machine_does_not_exist());
    });
}

/// Runs a JSONPath machine of one Task on the local endpoint and waits for its end.
async fn run_one(
    sfn: &aws_sdk_sfn::Client,
    name: &str,
    task: Value,
    input: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let role = format!("arn:aws:iam::{ACCOUNT}:role/any");
    let def = json!({"StartAt": "T", "States": {"T": task}}).to_string();
    let m = sfn
        .create_state_machine()
        .name(name)
        .role_arn(&role)
        .definition(&def)
        .send()
        .await;
    let m = m.unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let e = sfn
        .start_execution()
        .state_machine_arn(m.state_machine_arn())
        .input(input)
        .send()
        .await
        .unwrap();
    loop {
        let d = sfn
            .describe_execution()
            .execution_arn(e.execution_arn())
            .send()
            .await
            .unwrap();
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn task(resource: &str, parameters: Value) -> Value {
    json!({"Type": "Task", "Resource": resource, "Parameters": parameters, "End": true})
}

#[test]
fn service_integrations_are_carried_out_on_the_emulator() {
    let w = World::new();
    let local = Local::start(&w, &[]);
    let sfn = local.sfn();
    w.c.block_on(async {
        w.c.s3.create_bucket().bucket("things").send().await.unwrap();
        // aws-sdk:s3 (REST-XML): an object written, read back, and a missing key named as AWS names it
        let put = run_one(&sfn, "put", task("arn:aws:states:::aws-sdk:s3:putObject",
            json!({"Bucket": "things", "Key": "a.json", "Body": {"n": 1}})), "{}").await;
        assert_eq!(put.status().as_str(), "SUCCEEDED", "{put:?}");
        let put_out: Value = serde_json::from_str(put.output().unwrap()).unwrap();
        assert!(put_out["ETag"].is_string(), "{put_out}");
        let stored = w.c.s3.get_object().bucket("things").key("a.json").send().await.unwrap();
        let stored = stored.body.collect().await.unwrap().into_bytes();
        assert_eq!(&stored[..], br#"{"n":1}"#, "an object Body is stored as its JSON text");
        let get = run_one(&sfn, "get", task("arn:aws:states:us-east-1:123456789012:aws-sdk:s3:getObject",
            json!({"Bucket": "things", "Key": "a.json"})), "{}").await;
        let got: Value = serde_json::from_str(get.output().unwrap()).unwrap();
        assert_eq!((got["Body"].as_str(), got["ContentLength"].as_i64()), (Some(r#"{"n":1}"#), Some(7)), "{got}");
        assert!(got["LastModified"].as_str().is_some_and(|t| t.ends_with('Z')), "timestamps as ISO 8601: {got}");
        let missing = run_one(&sfn, "missing", task("arn:aws:states:::aws-sdk:s3:getObject",
            json!({"Bucket": "things", "Key": "nope"})), "{}").await;
        assert_eq!(missing.error(), Some("S3.NoSuchKeyException"), "{missing:?}");
        assert!(missing.cause().unwrap().contains("(Service: S3, Status Code: 404, Request ID: "), "{missing:?}");

        // dynamodb (JSON 1.0), optimised: put then get, with the SDK's metadata; an unknown table
        w.c.dynamodb.create_table().table_name("t")
            .attribute_definitions(aws_sdk_dynamodb::types::AttributeDefinition::builder().attribute_name("id").attribute_type("S".into()).build().unwrap())
            .key_schema(aws_sdk_dynamodb::types::KeySchemaElement::builder().attribute_name("id").key_type("HASH".into()).build().unwrap())
            .billing_mode("PAY_PER_REQUEST".into()).send().await.unwrap();
        let put = run_one(&sfn, "ddb-put", task("arn:aws:states:::dynamodb:putItem",
            json!({"TableName": "t", "Item": {"id": {"S": "1"}, "v": {"N": "7"}}})), "{}").await;
        let out: Value = serde_json::from_str(put.output().unwrap()).unwrap();
        assert_eq!(out["SdkHttpMetadata"]["HttpStatusCode"], 200, "{out}");
        assert!(out["SdkResponseMetadata"]["RequestId"].is_string(), "{out}");
        let get = run_one(&sfn, "ddb-get", task("arn:aws:states:::aws-sdk:dynamodb:getItem",
            json!({"TableName": "t", "Key": {"id": {"S": "1"}}})), "{}").await;
        let out: Value = serde_json::from_str(get.output().unwrap()).unwrap();
        assert_eq!(out["Item"]["v"], json!({"N": "7"}), "{out}");
        let none = run_one(&sfn, "ddb-none", task("arn:aws:states:::dynamodb:getItem",
            json!({"TableName": "nope", "Key": {"id": {"S": "1"}}})), "{}").await;
        assert_eq!(none.error(), Some("DynamoDB.ResourceNotFoundException"), "{none:?}");
        assert!(none.cause().unwrap().contains("(Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ResourceNotFoundException;"), "{none:?}");

        // sqs (JSON) and sns (query), optimised: the message reaches the queue
        let q = w.c.sqs.create_queue().queue_name("q").send().await.unwrap();
        let url = q.queue_url().unwrap().to_string();
        let sent = run_one(&sfn, "sqs", task("arn:aws:states:::sqs:sendMessage",
            json!({"QueueUrl": url, "MessageBody": {"hello": "world"}})), "{}").await;
        assert_eq!(sent.status().as_str(), "SUCCEEDED", "{sent:?}");
        let got = w.c.sqs.receive_message().queue_url(&url).send().await.unwrap();
        assert_eq!(got.messages()[0].body(), Some(r#"{"hello":"world"}"#));

        // iam (query, global), ec2 (EC2 query): the calls are made and answered in their shapes
        let user = run_one(&sfn, "iam", task("arn:aws:states:::aws-sdk:iam:createUser", json!({"UserName": "u1"})), "{}").await;
        let out: Value = serde_json::from_str(user.output().unwrap()).unwrap();
        assert_eq!(out["User"]["UserName"], "u1", "{out}");
        let vpcs = run_one(&sfn, "ec2", task("arn:aws:states:::aws-sdk:ec2:describeVpcs", json!({})), "{}").await;
        let out: Value = serde_json::from_str(vpcs.output().unwrap()).unwrap();
        assert!(out["Vpcs"].as_array().is_some_and(|v| !v.is_empty()), "moto's default VPC: {out}");

        // Credentials.RoleArn: the call is made as the role, assumed through moto's STS
        w.c.iam.create_role().role_name("worker").assume_role_policy_document("{}").send().await.unwrap();
        let mut who = task("arn:aws:states:::aws-sdk:sts:getCallerIdentity", json!({}));
        who["Credentials"] = json!({"RoleArn.$": "$.role"});
        let d = run_one(&sfn, "as-role", who, &json!({"role": format!("arn:aws:iam::{ACCOUNT}:role/worker")}).to_string()).await;
        let out: Value = serde_json::from_str(d.output().unwrap_or("{}")).unwrap();
        assert!(out["Arn"].as_str().is_some_and(|a| a.contains(":assumed-role/worker/")), "{d:?}");

        // states:startExecution.sync:2: the child runs here and its output comes back parsed
        let role = format!("arn:aws:iam::{ACCOUNT}:role/any");
        let child = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"child": "done"}, "End": true}}}).to_string();
        let c = sfn.create_state_machine().name("child").role_arn(&role).definition(&child).send().await.unwrap();
        let parent = run_one(&sfn, "parent", task("arn:aws:states:::states:startExecution.sync:2",
            json!({"StateMachineArn": c.state_machine_arn(), "Input": {"x": 1}})), "{}").await;
        let out: Value = serde_json::from_str(parent.output().unwrap()).unwrap();
        assert_eq!((out["Status"].as_str(), &out["Output"], &out["Input"]), (Some("SUCCEEDED"), &json!({"child": "done"}), &json!({"x": 1})), "{out}");
        let children = sfn.list_executions().state_machine_arn(c.state_machine_arn()).send().await.unwrap();
        assert_eq!(children.executions().len(), 1, "the child is listed");
    });
}

/// A Parquet file of two rows (id, name), Snappy-compressed as most are.
fn parquet_file() -> Vec<u8> {
    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let schema = "message t { required int64 id; required binary name (UTF8); }";
    let schema = Arc::new(parquet::schema::parser::parse_message_type(schema).unwrap());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut buf = Vec::new();
    let mut w = SerializedFileWriter::new(&mut buf, schema, props).unwrap();
    let mut group = w.next_row_group().unwrap();
    let mut c = group.next_column().unwrap().unwrap();
    c.typed::<Int64Type>()
        .write_batch(&[1, 2], None, None)
        .unwrap();
    c.close().unwrap();
    let mut c = group.next_column().unwrap().unwrap();
    let names = [ByteArray::from("a"), ByteArray::from("b")];
    c.typed::<ByteArrayType>()
        .write_batch(&names, None, None)
        .unwrap();
    c.close().unwrap();
    group.close().unwrap();
    w.close().unwrap();
    buf
}

#[test]
fn a_distributed_map_reads_batches_and_writes_its_results_in_s3() {
    let w = World::new();
    let local = Local::start(&w, &[]);
    let sfn = local.sfn();
    w.c.block_on(async {
        w.c.s3.create_bucket().bucket("data").send().await.unwrap();
        let csv = "id|n\n1|10\n2|20\n3|30\n4|40\n5|50\n";
        w.c.s3.put_object().bucket("data").key("rows.csv").body(csv.as_bytes().to_vec().into()).send().await.unwrap();
        let map = json!({"Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "CSVDelimiter": "PIPE", "MaxItems": 4},
                "Parameters": {"Bucket": "data", "Key": "rows.csv"}},
            "ItemSelector": {"row.$": "$$.Map.Item.Value.id"},
            "ItemBatcher": {"MaxItemsPerBatch": 3, "BatchInput": {"run": "r1"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Count", "States": {"Count": {"Type": "Pass", "Parameters": {"count.$": "States.ArrayLength($.Items)", "run.$": "$.BatchInput.run"}, "End": true}}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "data", "Prefix": "out"}},
            "End": true});
        let d = run_one(&sfn, "dmap", map, "{}").await;
        assert_eq!(d.status().as_str(), "SUCCEEDED", "{d:?}");
        let out: Value = serde_json::from_str(d.output().unwrap()).unwrap();
        let run = out["MapRunArn"].as_str().unwrap();
        assert!(run.contains(":mapRun:dmap/T:"), "{out}");
        let key = out["ResultWriterDetails"]["Key"].as_str().unwrap();
        let id = run.rsplit(':').next().unwrap();
        assert_eq!((out["ResultWriterDetails"]["Bucket"].as_str(), key), (Some("data"), format!("out/{id}/manifest.json").as_str()));
        let get = |k: String| {
            let s3 = w.c.s3.clone();
            async move {
                let o = s3.get_object().bucket("data").key(k).send().await.unwrap();
                serde_json::from_slice::<Value>(&o.body.collect().await.unwrap().into_bytes()).unwrap()
            }
        };
        let manifest = get(key.to_string()).await;
        assert_eq!(manifest["MapRunArn"], run);
        let files = manifest["ResultFiles"]["SUCCEEDED"].as_array().unwrap();
        assert_eq!(files.len(), 1, "{manifest}");
        let results = get(files[0]["Key"].as_str().unwrap().to_string()).await;
        // 4 of the 5 rows (MaxItems), in batches of 3: two iterations
        let outputs: Vec<Value> = results.as_array().unwrap().iter().map(|r| serde_json::from_str(r["Output"].as_str().unwrap()).unwrap()).collect();
        assert_eq!(outputs, vec![json!({"count": 3, "run": "r1"}), json!({"count": 1, "run": "r1"})]);
        assert!(results.as_array().unwrap().iter().all(|r| r["Status"] == "SUCCEEDED"));

        // the Map Run and its child executions, as the API lists them
        let runs = sfn.list_map_runs().execution_arn(d.execution_arn()).send().await.unwrap();
        assert_eq!(runs.map_runs().len(), 1);
        assert_eq!(runs.map_runs()[0].map_run_arn(), run);
        let described = sfn.describe_map_run().map_run_arn(run).send().await.unwrap();
        assert_eq!(described.status().as_str(), "SUCCEEDED");
        let counts = described.execution_counts().unwrap();
        assert_eq!((counts.total(), counts.succeeded(), counts.failed()), (2, 2, 0));
        let children = sfn.list_executions().map_run_arn(run).send().await.unwrap();
        assert_eq!(children.executions().len(), 2, "one child execution a batch");
        for c in children.executions() {
            let child = sfn.describe_execution().execution_arn(c.execution_arn()).send().await.unwrap();
            assert_eq!((child.status().as_str(), child.map_run_arn()), ("SUCCEEDED", Some(run)));
            let input: Value = serde_json::from_str(child.input().unwrap()).unwrap();
            assert_eq!(input["BatchInput"], json!({"run": "r1"}));
        }
        // the page shows the Map Run with a link to each child's own page
        let page = get_page(&local, &format!("/executions/dmap/{}", d.name().unwrap()));
        assert!(page.contains("Map Run") && page.contains(run), "{page}");
        let child = children.executions()[0].name();
        let link = format!("/executions/dmap%2FT/{child}");
        assert!(page.contains(&link), "{link} in {page}");
        assert!(get_page(&local, &link).contains("SUCCEEDED"));
        sfn.update_map_run().map_run_arn(run).max_concurrency(7).send().await.unwrap();
        let updated = sfn.describe_map_run().map_run_arn(run).send().await.unwrap();
        assert_eq!(updated.max_concurrency(), 7);

        // an S3 inventory: its manifest names gzipped CSV files of the objects
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"\"data\",\"rows.csv\",\"60\"\n\"data\",\"rows.parquet\",\"1\"\n").unwrap();
        let gz = gz.finish().unwrap();
        w.c.s3.put_object().bucket("data").key("inv/data/a.csv.gz").body(gz.into()).send().await.unwrap();
        let manifest = json!({"sourceBucket": "data", "destinationBucket": "arn:aws:s3:::data", "fileFormat": "CSV",
                              "fileSchema": "Bucket, Key, Size", "files": [{"key": "inv/data/a.csv.gz"}]});
        w.c.s3.put_object().bucket("data").key("inv/manifest.json").body(manifest.to_string().into_bytes().into()).send().await.unwrap();
        let map = json!({"Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "MANIFEST"},
                "Parameters": {"Bucket": "data", "Key": "inv/manifest.json"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
            "End": true});
        let d = run_one(&sfn, "imap", map, "{}").await;
        let out: Value = serde_json::from_str(d.output().unwrap_or("null")).unwrap();
        assert_eq!(out[1], json!({"Bucket": "data", "Key": "rows.parquet", "Size": "1"}), "{d:?}");

        // a Parquet object, read as it is (its bytes are no text)
        w.c.s3.put_object().bucket("data").key("rows.parquet").body(parquet_file().into()).send().await.unwrap();
        let map = json!({"Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "PARQUET"},
                "Parameters": {"Bucket": "data", "Key": "rows.parquet"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
            "End": true});
        let d = run_one(&sfn, "pmap", map, "{}").await;
        let out: Value = serde_json::from_str(d.output().unwrap_or("null")).unwrap();
        assert_eq!(out, json!([{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]), "{d:?}");
    });
}

/// Step Functions Local's settings mean the same to deploy local: it starts although no AWS
/// endpoint answers, as the account AWS_ACCOUNT_ID names, and SQS_ENDPOINT sends SQS tasks to
/// moto.
#[test]
fn step_functions_local_settings_mean_the_same() {
    let w = World::new();
    let d = w
        .via("http://127.0.0.1:9")
        .env("AWS_ACCOUNT_ID", "111122223333")
        .env("SQS_ENDPOINT", &w.moto.url());
    let local = Local::start_with(d, &[]);
    let sfn = local.sfn();
    w.c.block_on(async {
        let q =
            w.c.sqs
                .create_queue()
                .queue_name("slq")
                .send()
                .await
                .unwrap();
        let url = q.queue_url().unwrap().to_string();
        let sent = run_one(
            &sfn,
            "sl",
            task(
                "arn:aws:states:::sqs:sendMessage",
                json!({"QueueUrl": url, "MessageBody": "hi"}),
            ),
            "{}",
        )
        .await;
        assert_eq!(sent.status().as_str(), "SUCCEEDED", "{sent:?}");
        assert!(sent.execution_arn().contains(":111122223333:"), "{sent:?}");
        let got =
            w.c.sqs
                .receive_message()
                .queue_url(&url)
                .send()
                .await
                .unwrap();
        assert_eq!(got.messages()[0].body(), Some("hi"));
    });
}

/// Every operation of the Step Functions API (37), through three clients nobody here wrote:
/// boto3, the AWS CLI and the AWS SDK for JavaScript (`tests/support/every_operation.py`).
#[test]
fn every_operation_answers_boto3_the_aws_cli_and_the_javascript_sdk() {
    let w = World::new();
    let local = Local::start(&w, &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/every_operation.py");
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sfn-js");
    let mut clients = vec!["boto3", "cli"];
    let js_there = js.join("node_modules/@aws-sdk/client-sfn").exists();
    match js_there
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok()
    {
        true => clients.push("js"),
        false => skipped(
            "the API through @aws-sdk/client-sfn",
            "node or target/sfn-js/node_modules/@aws-sdk/client-sfn not found (scripts/test installs it with npm)",
        ),
    }
    for client in clients {
        let out = std::process::Command::new(python())
            .arg(&script)
            .args([local.url.as_str(), client, js.to_str().unwrap()])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        let seen: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{client}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(seen["failed"], json!({}), "{client}: {seen}");
        assert_eq!(
            seen["answered"].as_array().unwrap().len(),
            37,
            "{client}: {seen}"
        );
        // the activity tasks ended as their workers answered
        assert_eq!(
            seen["activities_ended"],
            json!(["SUCCEEDED", "FAILED"]),
            "{client}: {seen}"
        );
    }
}

#[test]
fn the_aws_cli_works_against_the_local_endpoint() {
    let w = World::new();
    let local = Local::start(&w, &[]);
    let aws = |args: &[&str]| -> Value {
        let out = std::process::Command::new(python())
            .args(["-m", "awscli", "stepfunctions"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", empty_file())
            .env("AWS_SHARED_CREDENTIALS_FILE", empty_file())
            .env("AWS_ENDPOINT_URL", w.moto.url())
            .env("AWS_ENDPOINT_URL_SFN", &local.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let def = definition(
        json!({"Start": {"Type": "Pass", "Output": {"greeting": "{% 'hello ' & $states.input.name %}"}, "End": true}}),
    );
    let role = format!("arn:aws:iam::{ACCOUNT}:role/any");
    let m = aws(&[
        "create-state-machine",
        "--name",
        "hello",
        "--role-arn",
        &role,
        "--definition",
        &def,
    ]);
    let arn = m["stateMachineArn"].as_str().unwrap().to_string();
    let e = aws(&[
        "start-execution",
        "--state-machine-arn",
        &arn,
        "--input",
        r#"{"name": "cli"}"#,
    ]);
    let exec = e["executionArn"].as_str().unwrap().to_string();
    eventually(30, "the execution to end", || {
        aws(&["describe-execution", "--execution-arn", &exec])["status"] != "RUNNING"
    });
    let d = aws(&["describe-execution", "--execution-arn", &exec]);
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(
        serde_json::from_str::<Value>(d["output"].as_str().unwrap()).unwrap(),
        json!({"greeting": "hello cli"})
    );
    let h = aws(&["get-execution-history", "--execution-arn", &exec]);
    let types: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert_eq!(
        aws(&["list-state-machines"])["stateMachines"][0]["name"],
        "hello"
    );
}

/// CPU seconds (user + system) a process has used so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    kb / 1024
}

/// A workflow with a bug in it cannot run away with `deploy local`: AWS's quotas apply, with
/// AWS's error names, and StopExecution stops the work, not just the record.
#[test]
fn runaway_workflows_are_bounded_and_stop_means_stop() {
    let w = World::new();
    let local = Local::start(&w, &[]);
    let sfn = local.sfn();
    let pid = local.child.id();
    let machine = |name: &str, def: serde_json::Value| -> String {
        w.c.block_on(
            sfn.create_state_machine()
                .name(name)
                .definition(def.to_string())
                .role_arn("arn:aws:iam::123456789012:role/r")
                .send(),
        )
        .unwrap()
        .state_machine_arn()
        .to_string()
    };
    let start = |arn: &str| -> String {
        w.c.block_on(
            sfn.start_execution()
                .state_machine_arn(arn)
                .input("{}")
                .send(),
        )
        .unwrap()
        .execution_arn()
        .to_string()
    };
    let ended =
        |exec: &str| -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
            let describe = || {
                w.c.block_on(sfn.describe_execution().execution_arn(exec).send())
                    .unwrap()
            };
            eventually(60, "the execution to end", || {
                describe().status().as_str() != "RUNNING"
            });
            describe()
        };
    let pass = |output: &str| json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {"Type": "Pass", "Output": output, "End": true}}});

    // a sequence no payload can hold: stopped at once, as AWS's data limit
    let e = ended(&start(&machine("big-range", pass("{% [1..10000000] %}"))));
    assert_eq!(
        (e.status().as_str(), e.error()),
        ("FAILED", Some("States.DataLimitExceeded")),
        "{e:?}"
    );
    // unbounded recursion ends at the evaluator's stack bound, as a query error
    let e = ended(&start(&machine(
        "recursion",
        pass("{% ($f := function($x) { $f($x + 1) }; $f(0)) %}"),
    )));
    assert_eq!(
        (e.status().as_str(), e.error()),
        ("FAILED", Some("States.QueryEvaluationError")),
        "{e:?}"
    );
    // a state output over 256 KiB
    let big = json!({"StartAt": "Big", "States": {"Big": {"Type": "Pass", "Result": "x".repeat(300 * 1024), "End": true}}});
    let e = ended(&start(&machine("big-output", big)));
    assert_eq!(e.error(), Some("States.DataLimitExceeded"));
    assert_eq!(
        e.cause(),
        Some(
            "The state/task 'Big' returned a result with a size exceeding the maximum number of bytes service limit."
        )
    );
    // States.ArrayRange of ten million: AWS allows 1000 elements
    let range = json!({"StartAt": "R", "States": {"R": {"Type": "Pass", "Parameters": {"r.$": "States.ArrayRange(1, 10000000, 1)"}, "End": true}}});
    let e = ended(&start(&machine("array-range", range)));
    assert_eq!(e.error(), Some("States.Runtime"));
    assert!(
        e.cause()
            .unwrap()
            .contains("States.ArrayRange returns at most 1000"),
        "{e:?}"
    );
    // a loop that never ends: the history's 25,000 events are the end of it
    let lp = json!({"StartAt": "L", "States": {
        "L": {"Type": "Pass", "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.never", "IsPresent": true, "Next": "Done"}], "Default": "L"},
        "Done": {"Type": "Succeed"}}});
    let exec = start(&machine("endless-loop", lp));
    let e = ended(&exec);
    assert_eq!(e.error(), Some("States.Runtime"));
    assert_eq!(
        e.cause(),
        Some("The execution reached the maximum number of history events (25000).")
    );
    let events =
        w.c.block_on(
            sfn.get_execution_history()
                .execution_arn(&exec)
                .max_results(1000)
                .send(),
        )
        .unwrap();
    assert_eq!(events.events().len(), 1000, "pages of a full history");
    // an input over 256 KiB is refused at the door
    let arn = machine("any-input", pass("{% 1 %}"));
    let err = w.c.block_on(
        sfn.start_execution()
            .state_machine_arn(&arn)
            .input(json!({"x": "y".repeat(300 * 1024)}).to_string())
            .send(),
    );
    assert_eq!(
        err.unwrap_err().into_service_error().meta().code(),
        Some("InvalidExecutionInput")
    );

    // a computation of hours (each sequence within the limit): StopExecution stops the work
    let busy = machine(
        "busy",
        pass("{% $count([1..100000].($sum([1..100000]))) %}"),
    );
    let exec = start(&busy);
    eventually(30, "the busy state to be entered", || {
        let h =
            w.c.block_on(sfn.get_execution_history().execution_arn(&exec).send())
                .unwrap();
        h.events()
            .iter()
            .any(|e| e.r#type().as_str() == "PassStateEntered")
    });
    // it does work (waited for, not timed: a loaded machine gives it less than a core)
    let before_stop = cpu_seconds(pid);
    eventually(60, "the busy execution to spend 0.2 s of CPU", || {
        cpu_seconds(pid) - before_stop > 0.2
    });
    w.c.block_on(sfn.stop_execution().execution_arn(&exec).send())
        .unwrap();
    assert_eq!(ended(&exec).status().as_str(), "ABORTED");
    std::thread::sleep(std::time::Duration::from_millis(300)); // the stop reaches the evaluation
    let after_stop = cpu_seconds(pid);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let idle = cpu_seconds(pid) - after_stop;
    assert!(
        idle < 0.3,
        "{idle:.2} CPU seconds in the second after the stop: the work goes on"
    );
    assert!(rss_mib(pid) < 1024, "{} MiB resident", rss_mib(pid));
    // and the endpoint answered all along
    assert!(w.c.block_on(sfn.list_state_machines().send()).is_ok());
}

/// The endpoint has no authentication and acts with the caller's credentials: listening beyond
/// loopback is said out loud.
#[test]
fn listening_beyond_loopback_is_warned_about() {
    let w = World::new();
    let mut child = w
        .deploy()
        .spawn(&["local", "--host", "0.0.0.0", "--port", "0"]);
    let stderr = child.stderr.take().unwrap();
    let first = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("warning: "));
    let _ = child.kill();
    let _ = child.wait();
    let first = first.unwrap_or_default();
    assert!(
        first.contains("deploy local listens on 0.0.0.0") && first.contains("no authentication"),
        "{first}"
    );
}

/// A long-running endpoint keeps at most `--keep-executions` finished executions (the oldest are
/// forgotten first, as AWS forgets them after 90 days), so its memory stays bounded; a running
/// execution is never forgotten.
#[test]
fn finished_executions_beyond_the_limit_are_forgotten_oldest_first() {
    use aws_sdk_sfn::types::ExecutionStatus;
    let w = World::new();
    let local = Local::start(&w, &["--keep-executions", "2"]);
    let sfn = local.sfn();
    let role = format!("arn:aws:iam::{ACCOUNT}:role/any");
    w.c.block_on(async {
        let pass = definition(json!({"Start": {"Type": "Pass", "End": true}}));
        let m = sfn
            .create_state_machine()
            .name("pass")
            .role_arn(&role)
            .definition(&pass)
            .send()
            .await
            .unwrap();
        let waits = definition(json!({"Start": {"Type": "Wait", "Seconds": 600, "End": true}}));
        let long = sfn
            .create_state_machine()
            .name("waits")
            .role_arn(&role)
            .definition(&waits)
            .send()
            .await
            .unwrap();
        let running = sfn
            .start_execution()
            .state_machine_arn(long.state_machine_arn())
            .name("long")
            .send()
            .await
            .unwrap();
        let mut arns = Vec::new();
        for i in 0..4 {
            let e = sfn
                .start_execution()
                .state_machine_arn(m.state_machine_arn())
                .name(format!("run-{i}"))
                .send()
                .await
                .unwrap();
            // each one has finished before the next starts, so the order they finish in is known
            loop {
                let d = sfn
                    .describe_execution()
                    .execution_arn(e.execution_arn())
                    .send()
                    .await
                    .unwrap();
                if d.status() == &ExecutionStatus::Succeeded {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            arns.push(e.execution_arn().to_string());
        }
        let listed = sfn
            .list_executions()
            .state_machine_arn(m.state_machine_arn())
            .send()
            .await
            .unwrap();
        let names: Vec<&str> = listed.executions().iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            ["run-3", "run-2"],
            "the two newest finished ones, newest first"
        );
        let gone = sfn
            .describe_execution()
            .execution_arn(&arns[0])
            .send()
            .await
            .unwrap_err();
        assert!(
            gone.as_service_error()
                .unwrap()
                .is_execution_does_not_exist(),
            "{gone:?}"
        );
        let still = sfn
            .describe_execution()
            .execution_arn(running.execution_arn())
            .send()
            .await
            .unwrap();
        assert_eq!(
            still.status(),
            &ExecutionStatus::Running,
            "a running execution is kept"
        );
        sfn.stop_execution()
            .execution_arn(running.execution_arn())
            .send()
            .await
            .unwrap();
    });
}

/// The newest execution of a stack's state machine, as `deploy executions` lists it.
/// A stack's executions on deploy local, as `deploy executions` lists them.
fn executions(w: &World, local: &Local, stack: &str) -> Vec<Value> {
    deploy(w, local)
        .run(&["executions", stack, "--output", "json"])
        .success()
        .json()["executions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn newest_execution(w: &World, local: &Local, stack: &str) -> String {
    let list = executions(w, local, stack);
    let newest = list
        .iter()
        .max_by_key(|e| e["startDate"].as_f64().unwrap_or_default() as i64)
        .unwrap_or_else(|| panic!("no execution of {stack}: {list:?}"));
    newest["executionArn"].as_str().unwrap().to_string()
}

/// `deploy test STACK --from-execution ARN --save NAME ...`
fn save(w: &World, local: &Local, stack: &str, arn: &str, name: &str, extra: &[&str]) -> Output {
    let mut args = vec!["test", stack, "--from-execution", arn, "--save", name];
    args.extend_from_slice(extra);
    deploy(w, local).run(&args)
}

/// Records `arn` as scenario `name` of `stack` and checks that it passed at once; returns it.
fn record(w: &World, local: &Local, stack: &str, arn: &str, name: &str) -> Value {
    let out = save(w, local, stack, arn, name, &[]).success();
    assert!(
        out.stdout
            .contains(&format!("wrote stacks/{stack}/tests/{name}.json")),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!("ok   {stack}/{name}")),
        "{out:?}"
    );
    let file = w.project.join(format!("stacks/{stack}/tests/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// An execution that ran (on the local endpoint, its tasks acting on moto) is recorded as a
/// scenario that passes at once, and as a mock configuration; it is priced at as many
/// transitions as it entered states; a change to the Choice makes the recorded scenario fail
/// where the paths part.
#[test]
fn a_recorded_execution_becomes_a_passing_scenario_and_a_price() {
    let w = World::with_project_copy();
    let api = Api::start(false);
    let local = Local::start(&w, &["--http-endpoint", &api.url()]);
    deploy(&w, &local)
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    deploy(&w, &local)
        .run(&["run", "should-i-deploy"])
        .success();
    let arn = newest_execution(&w, &local, "should-i-deploy");
    let sc = record(&w, &local, "should-i-deploy", &arn, "recorded-bad-day");
    assert_eq!(
        sc["expect"]["path"],
        json!([
            "Call Should I deploy API",
            "ListAttachedUserPolicies",
            "Should I Deploy?",
            "AttachUserPolicy"
        ]),
        "{sc}"
    );
    assert_eq!(sc["expect"]["status"], "SUCCEEDED");
    assert_eq!(
        sc["mocks"]["Call Should I deploy API"][0]["Return"]["ResponseBody"]["shouldideploy"],
        false,
        "the API's answer, as the stand-in gave it: {sc}"
    );
    assert_eq!(
        sc["mocks"]["AttachUserPolicy"].as_array().unwrap().len(),
        1,
        "{sc}"
    );
    // a name taken is not overwritten
    let out = save(&w, &local, "should-i-deploy", &arn, "recorded-bad-day", &[]).code(2);
    assert!(out.stderr.contains("exists already"), "{out:?}");

    // the same as a Step Functions Local mock configuration, which --mock-config runs
    save(
        &w,
        &local,
        "should-i-deploy",
        &arn,
        "bad-day",
        &["--format", "mock-config"],
    )
    .success();
    let config = w
        .project
        .join("stacks/should-i-deploy/tests/bad-day.mock-config.json");
    let out = deploy(&w, &local)
        .run(&[
            "test",
            "should-i-deploy",
            "--mock-config",
            config.to_str().unwrap(),
        ])
        .success();
    assert!(
        out.stdout.contains("bad-day") && out.stdout.contains("SUCCEEDED"),
        "{out:?}"
    );

    // its price: the states entered, times the price of a transition
    let entered = deploy(&w, &local)
        .run(&["history", &arn, "--output", "json"])
        .success()
        .stdout
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .ends_with("StateEntered")
        })
        .count() as u64;
    assert_eq!(entered, 4);
    let cost = deploy(&w, &local)
        .run(&[
            "cost",
            "should-i-deploy",
            "--from-execution",
            &arn,
            "--executions",
            "1000000",
            "-o",
            "json",
        ])
        .success()
        .json();
    assert_eq!(cost["transitions_per_execution"], entered, "{cost}");
    let usd = cost["usd_per_execution"].as_f64().unwrap();
    assert!(
        (usd - entered as f64 * 0.025 / 1000.0).abs() < 1e-12,
        "{cost}"
    );
    let month = cost["monthly_usd"].as_f64().unwrap();
    let want = (entered * 1_000_000 - 4000) as f64 * 0.025 / 1000.0;
    assert!((month - want).abs() < 1e-6, "{month} {want}: {cost}");
    assert_eq!(
        cost["calls_per_execution"],
        json!({"http": 1, "iam": 2}),
        "{cost}"
    );

    // the workflow's behaviour for that input changes: the recorded scenario says where
    let template = w.project.join("templates/should-i-deploy/jsonata.json");
    let text = std::fs::read_to_string(&template).unwrap();
    let changed = text.replacen("\"Next\": \"AttachUserPolicy\"", "\"Next\": \"Success\"", 1);
    assert_ne!(text, changed);
    std::fs::write(&template, changed).unwrap();
    let out = deploy(&w, &local)
        .run(&["test", "should-i-deploy", "--scenario", "recorded-bad-day"])
        .code(7);
    assert!(
        out.stdout.contains(
            "path differs after \"Should I Deploy?\" (step 4): entered \"Success\", expected \"AttachUserPolicy\""
        ),
        "{out:?}"
    );
}

/// The alias's routing on the local endpoint: (version ARN, weight) pairs.
fn routing(
    sfn: &aws_sdk_sfn::Client,
    rt: &tokio::runtime::Runtime,
    alias: &str,
) -> Vec<(String, i32)> {
    rt.block_on(
        sfn.describe_state_machine_alias()
            .state_machine_alias_arn(alias)
            .send(),
    )
    .unwrap()
    .routing_configuration()
    .iter()
    .map(|r| (r.state_machine_version_arn().to_string(), r.weight()))
    .collect()
}

/// An execution through the alias that waits for an approval (a task token).
fn start_waiting(sfn: &aws_sdk_sfn::Client, rt: &tokio::runtime::Runtime, alias: &str) -> String {
    rt.block_on(
        sfn.start_execution()
            .state_machine_arn(alias)
            .input(r#"{"wait": true}"#)
            .send(),
    )
    .unwrap()
    .execution_arn()
    .to_string()
}

fn set_alarm(w: &World, state: aws_sdk_cloudwatch::types::StateValue) {
    w.c.block_on(
        w.c.cloudwatch
            .set_alarm_state()
            .alarm_name("sfn-errors")
            .state_value(state)
            .state_reason("test")
            .send(),
    )
    .unwrap();
}

#[test]
fn a_new_version_rolls_out_as_a_canary_and_an_alarm_rolls_it_back() {
    let mut w = World::new();
    w.project = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/versioned");
    let local = Local::start(&w, &[]);
    let sfn = local.sfn();
    let rt = &w.c.rt;
    // the alarm the rollout watches, in moto's CloudWatch
    rt.block_on(
        w.c.cloudwatch
            .put_metric_alarm()
            .alarm_name("sfn-errors")
            .namespace("AWS/States")
            .metric_name("ExecutionsFailed")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold,
            )
            .send(),
    )
    .unwrap();

    // v1, with its alias
    deploy(&w, &local)
        .run(&["up", "versioned", "--yes"])
        .success();
    let outputs = deploy(&w, &local)
        .run(&["outputs", "versioned", "--output", "json"])
        .success()
        .json();
    let alias = outputs["outputs"]["alias_arn"]
        .as_str()
        .unwrap()
        .to_string();
    let machine = outputs["outputs"]["state_machine_arn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(alias, format!("{machine}:live"));
    let v1 = format!("{machine}:1");
    assert_eq!(routing(&sfn, rt, &alias), [(v1.clone(), 100)]);

    // an execution started on v1 waits for an approval through the next deploys
    let waiting = start_waiting(&sfn, rt, &alias);

    // v2 as a canary: half the executions started through the alias during the step run v2
    let mut up = deploy(&w, &local).spawn(&["up", "versioned", "--var", "answer=two", "--yes"]);
    let v2 = format!("{machine}:2");
    eventually(60, "the canary step routes to v1 and v2", || {
        routing(&sfn, rt, &alias).len() == 2
    });
    assert!(routing(&sfn, rt, &alias).contains(&(v2.clone(), 50)));
    let mut versions = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..100 {
        let arn = rt
            .block_on(
                sfn.start_execution()
                    .state_machine_arn(&alias)
                    .input("{}")
                    .send(),
            )
            .unwrap()
            .execution_arn()
            .to_string();
        let d = rt
            .block_on(sfn.describe_execution().execution_arn(&arn).send())
            .unwrap();
        assert_eq!(d.state_machine_alias_arn(), Some(alias.as_str()));
        *versions
            .entry(
                d.state_machine_version_arn()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default() += 1;
    }
    assert_eq!(versions.len(), 2, "both versions ran: {versions:?}");
    assert!(
        versions.values().all(|n| *n >= 20),
        "about half each: {versions:?}"
    );
    let out = finish(up);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(routing(&sfn, rt, &alias), [(v2.clone(), 100)]);

    // v3: an alarm in ALARM during the canary step routes everything back to v2
    up = deploy(&w, &local).spawn(&["up", "versioned", "--var", "answer=three", "--yes"]);
    eventually(60, "the canary step of v3", || {
        routing(&sfn, rt, &alias).len() == 2
    });
    set_alarm(&w, aws_sdk_cloudwatch::types::StateValue::Alarm);
    let out = finish(up);
    assert_eq!(out.code, 10, "rolled back: exit code 10 {out:?}");
    assert!(out.stderr.contains("sfn-errors"), "{out:?}");
    assert_eq!(routing(&sfn, rt, &alias), [(v2.clone(), 100)]);
    // the plan says the rollout is still to do, and how
    let plan = deploy(&w, &local)
        .run(&["plan", "versioned", "--var", "answer=three"])
        .success();
    assert!(
        plan.stdout
            .contains("rollout to the new version: 50% → 100% every 3s, watching sfn-errors"),
        "{plan:?}"
    );
    // once the alarm is OK, the same up completes
    set_alarm(&w, aws_sdk_cloudwatch::types::StateValue::Ok);
    deploy(&w, &local)
        .run(&["up", "versioned", "--var", "answer=three", "--yes"])
        .success();
    let v3 = format!("{machine}:3");
    assert_eq!(routing(&sfn, rt, &alias), [(v3.clone(), 100)]);
    // a permission change while the v1 execution runs says so: a version keeps its role's ARN,
    // not the role's policies
    let plan = deploy(&w, &local)
        .run(&[
            "plan",
            "versioned",
            "--var",
            "answer=three",
            "--var",
            "extra_action=sns:GetTopicAttributes",
        ])
        .success();
    assert!(
        plan.stdout.contains("has 1 running execution(s)")
            && plan.stdout.contains(&waiting)
            && plan.stdout.contains("this IAM change applies to them too"),
        "{plan:?}"
    );
    // `deploy run` goes through the alias
    let ran = deploy(&w, &local)
        .run(&["run", "versioned", "--output", "json"])
        .success();
    assert!(
        ran.stdout.contains(r#"\"answer\":\"three\""#),
        "the run went through the alias to v3: {ran:?}"
    );

    // the execution started on v1 is approved now that v3 is live, and finishes on v1
    deploy(&w, &local)
        .run(&["approve", "--execution", &waiting])
        .success();
    eventually(30, "the v1 execution succeeds", || {
        rt.block_on(sfn.describe_execution().execution_arn(&waiting).send())
            .unwrap()
            .status()
            .as_str()
            == "SUCCEEDED"
    });
    let d = rt
        .block_on(sfn.describe_execution().execution_arn(&waiting).send())
        .unwrap();
    assert_eq!(d.state_machine_version_arn(), Some(v1.as_str()));
    assert_eq!(
        serde_json::from_str::<Value>(d.output().unwrap()).unwrap()["answer"],
        "one"
    );

    // a misspelt alarm is refused before the alias moves
    let out = deploy(&w, &local)
        .run(&[
            "up",
            "versioned",
            "--var",
            "answer=four",
            "--var",
            "alarm=sfn-errorz",
            "--yes",
        ])
        .code(4);
    assert!(
        out.stderr.contains("sfn-errorz") && out.stderr.contains("does not exist"),
        "{out:?}"
    );
    assert_eq!(routing(&sfn, rt, &alias), [(v3.clone(), 100)]);

    // --no-wait takes the first step and returns; `deploy rollout` carries it on from there
    deploy(&w, &local)
        .run(&[
            "up",
            "versioned",
            "--var",
            "answer=four",
            "--no-wait",
            "--yes",
        ])
        .success();
    let v4 = format!("{machine}:4");
    let now = routing(&sfn, rt, &alias);
    assert!(
        now.contains(&(v4.clone(), 50)) && now.contains(&(v3.clone(), 50)),
        "{now:?}"
    );
    let status = deploy(&w, &local)
        .run(&["rollout", "status", "versioned", "--output", "json"])
        .success()
        .json();
    assert_eq!(
        status[0]["state"], "in progress: 50% on the new version",
        "{status}"
    );
    deploy(&w, &local)
        .run(&["rollout", "promote", "versioned"])
        .success();
    assert_eq!(routing(&sfn, rt, &alias), [(v4.clone(), 100)]);
    let plan = deploy(&w, &local)
        .run(&["plan", "versioned", "--var", "answer=four"])
        .success();
    assert!(
        plan.stdout.contains("No changes"),
        "promoted: nothing left to do {plan:?}"
    );

    // teardown with an execution running is refused, then done with --stop-executions
    let running = start_waiting(&sfn, rt, &alias);
    let out = deploy(&w, &local)
        .run(&["destroy", "versioned", "--yes", "--var", "answer=four"])
        .code(4);
    assert!(
        out.stderr.contains("1 running execution(s)") && out.stderr.contains("--stop-executions"),
        "{out:?}"
    );
    deploy(&w, &local)
        .run(&[
            "destroy",
            "versioned",
            "--yes",
            "--stop-executions",
            "--var",
            "answer=four",
        ])
        .success();
    let d = rt
        .block_on(sfn.describe_execution().execution_arn(&running).send())
        .unwrap();
    assert_eq!(d.status().as_str(), "ABORTED");
    let left = rt.block_on(sfn.list_state_machines().send()).unwrap();
    assert!(left.state_machines().is_empty(), "{left:?}");
}

/// The page `deploy local` serves at `GET /`, looked at in headless Chromium (Debian's
/// chromium and chromedriver, driven by selenium from the project's venv) with every host but
/// 127.0.0.1 unreachable: machines and executions listed with their statuses, an execution's
/// graph with every state and the failed one marked, a state's output, a running execution
/// turning SUCCEEDED on the open page, a state named `<script>` shown and not run, and nothing
/// fetched from anywhere but the port. Screenshots are kept in target/web-screenshots.
#[test]
fn the_page_shows_machines_executions_and_their_paths_in_a_browser() {
    let (chromium, driver) = ("/usr/bin/chromium", "/usr/bin/chromedriver");
    if !Path::new(chromium).exists() || !Path::new(driver).exists() {
        return skipped(
            "deploy local's page in a browser",
            "chromium and chromium-driver are not installed (scripts/test installs them as root; Debian/Ubuntu: sudo apt-get install chromium chromium-driver)",
        );
    }
    let w = World::new();
    let local = Local::start(&w, &[]);
    let prepare = json!({"Type": "Pass", "Output": {"prepared": true, "fail": "{% $states.input.fail %}", "wait": "{% $states.input.wait %}"}, "Next": "Both"});
    let branch =
        |name: &str| json!({"StartAt": name, "States": {name: {"Type": "Pass", "End": true}}});
    let states = json!({
        "Start": prepare,
        "Both": {"Type": "Parallel", "Branches": [branch("Left"), branch("Right")], "Output": "{% $states.input %}", "Next": "Decide"},
        "Decide": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.fail %}", "Next": "Broken"}], "Default": "Rest"},
        "Broken": {"Type": "Fail", "Error": "Broken", "Cause": "the input asked for it"},
        "Rest": {"Type": "Wait", "Seconds": "{% $states.input.wait %}", "Next": "Done"},
        "Done": {"Type": "Succeed"}
    });
    let hostile = json!({"Start": {"Type": "Pass", "Next": "<script>window.__pwned=1</script>"},
        "<script>window.__pwned=1</script>": {"Type": "Pass", "Next": "<img src=x onerror=\"window.__pwned=1\">"},
        "<img src=x onerror=\"window.__pwned=1\">": {"Type": "Pass", "End": true}});
    let flaky = "{% $states.context.Execution.RedriveCount = 0 ? $error('the first run fails here') : 'ok' %}";
    let again = json!({"Start": {"Type": "Pass", "Output": flaky, "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Done"}, "Done": {"Type": "Succeed"}});
    for (name, states) in [("page", states), ("hostile", hostile), ("again", again)] {
        let body = json!({"name": name, "definition": definition(states), "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/r")});
        raw(&local, "CreateStateMachine", &body.to_string());
    }
    let start = |machine: &str, name: &str, input: Value| {
        let arn = format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{machine}");
        let body = json!({"stateMachineArn": arn, "name": name, "input": input.to_string()});
        raw(&local, "StartExecution", &body.to_string());
        format!("/executions/{machine}/{name}")
    };
    start("page", "fine", json!({"fail": false, "wait": 0}));
    let failed = start("page", "broken", json!({"fail": true, "wait": 0}));
    let hostile = start("hostile", "h", json!({}));
    let running = start("page", "slow", json!({"fail": false, "wait": 10}));
    let stoppable = start("page", "stoppable", json!({"fail": false, "wait": 600}));
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots");
    let redrivable = start("again", "flaky", json!({}));
    let plan = json!({"failed": failed, "running": running, "stoppable": stoppable, "hostile": hostile,
                      "redrivable": redrivable, "machine": "/machines/page"});
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .args([&local.url, &shots.display().to_string(), &plan.to_string()])
        .env("TZ", "Asia/Tokyo")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(&text).unwrap();

    assert_eq!(seen["running"]["first"], "RUNNING", "{seen}");
    assert_eq!(seen["running"]["last"], "SUCCEEDED", "{seen}");
    assert_eq!(
        seen["running"]["reloaded"], false,
        "updated in place: {seen}"
    );
    assert_eq!(
        seen["running"]["stop_button"], 0,
        "no Stop once it ended: {seen}"
    );
    assert_eq!(seen["stopped"]["status"], "ABORTED", "Stop pressed: {seen}");
    // a failed execution's page offers Redrive; pressed, the execution runs again and succeeds
    // on the open page, which then offers it no more
    let redriven = &seen["redriven"];
    assert_eq!(redriven["before"], "FAILED", "{seen}");
    assert_eq!(
        redriven["statuses"].as_array().unwrap().last().unwrap(),
        "SUCCEEDED",
        "{seen}"
    );
    assert_eq!(redriven["reloaded"], false, "updated in place: {seen}");
    assert_eq!(redriven["redrive_button"], 0, "{seen}");
    assert_eq!(redriven["note"], json!(["· redriven 1×"]), "{seen}");
    assert!(
        redriven["events"]
            .as_array()
            .unwrap()
            .contains(&json!("ExecutionRedriven")),
        "{seen}"
    );
    assert_eq!(seen["stopped"]["reloaded"], false, "{seen}");
    let stopped = raw(&local, "DescribeExecution", &json!({"executionArn": format!("arn:aws:states:us-east-1:{ACCOUNT}:execution:page:stoppable")}).to_string());
    assert_eq!(stopped["status"], "ABORTED", "{stopped}");
    assert_eq!(
        seen["index"]["machines"],
        json!(["again", "hostile", "page"])
    );
    let badges = seen["index"]["badges"].to_string();
    assert!(
        badges.contains("SUCCEEDED") && badges.contains("FAILED"),
        "{seen}"
    );
    assert_eq!(
        seen["machine"]["executions"],
        json!(["stoppable", "slow", "broken", "fine"]),
        "newest first"
    );
    assert_eq!(
        seen["machine"]["statuses"],
        json!(["ABORTED", "SUCCEEDED", "FAILED", "SUCCEEDED"])
    );
    assert_eq!(seen["machine"]["failed_only"], json!(["broken"]));
    let f = &seen["failed"];
    assert_eq!(f["status"], "FAILED");
    for state in [
        "Start", "Both", "Left", "Right", "Decide", "Broken", "Rest", "Done",
    ] {
        assert!(
            f["nodes"].to_string().contains(&format!("\"{state}\"")),
            "{state}: {f}"
        );
    }
    assert_eq!(f["failed_nodes"], json!(["Broken"]), "{f}");
    let output: Value = serde_json::from_str(f["states"]["Start"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"prepared": true, "fail": true, "wait": 0}));
    assert!(f["events"].as_u64().unwrap() >= 6, "{f}");
    assert_eq!(
        f["local_time"], true,
        "times shown in the viewer's zone: {f}"
    );
    let h = &seen["hostile"];
    assert_eq!(h["ran"], false, "{h}");
    assert_eq!(h["shown"][1], "<script>window.__pwned=1</script>", "{h}");
    assert_eq!(
        h["shown"][2], "<img src=x onerror=\"window.__pwned=1\">",
        "{h}"
    );
    for url in seen["resources"].as_array().unwrap() {
        assert!(
            url.as_str().unwrap().starts_with(&local.url),
            "fetched elsewhere: {url}"
        );
    }
    assert!(
        seen["resources"].to_string().contains("/assets/app.js"),
        "{seen}"
    );
    for shot in [
        "index",
        "machine",
        "failed-execution",
        "running-execution-done",
    ] {
        assert!(shots.join(format!("{shot}.png")).is_file(), "{shot}");
    }
}

async fn attached_arns(w: &World, user: &str) -> Vec<String> {
    let o = w.c.iam.list_attached_user_policies().user_name(user);
    let o = o.send().await.unwrap();
    let arns = o.attached_policies().iter().filter_map(|p| p.policy_arn());
    arns.map(str::to_string).collect()
}

/// What `tests/support/testing_api.py` saw driving the local endpoint with boto3.
fn boto3_sees(local: &Local, what: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/testing_api.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .args([&local.url, what])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap()
}

/// The inspection value `k` of a TestState answer, parsed (the API sends each as JSON text).
fn inspected(answer: &Value, k: &str) -> Value {
    let text = answer["inspectionData"][k]
        .as_str()
        .unwrap_or_else(|| panic!("no {k} in {answer}"));
    serde_json::from_str(text).unwrap()
}

/// TestState on `deploy local`, through boto3 as a user's tests call it (and once through the
/// AWS CLI): each step of a Pass state's processing, a Lambda task answered by its mock with no
/// Lambda anywhere, mocks checked against the response shape of the API (AWS's rules: STRICT
/// also wants the required fields, PRESENT only the types, NONE nothing, and a field the API
/// does not know passes), a mocked error caught, retried and with its retrier spent, a state of
/// a whole definition by name with variables in and out, and AWS's refusals.
#[test]
fn test_state_answers_boto3_as_aws_does() {
    let w = World::new();
    let local = Local::start(&w, &[]);
    let seen = boto3_sees(&local, "test-state");

    let pass = &seen["pass"];
    assert_eq!(pass["status"], "SUCCEEDED", "{pass}");
    assert_eq!(pass["nextState"], "Next");
    assert_eq!(
        inspected(pass, "afterInputPath"),
        json!({"fieldFromInput": "value from input", "otherField": "other"})
    );
    assert_eq!(
        inspected(pass, "afterParameters"),
        json!({"staticValue": "some value", "inputValue": "value from input"})
    );
    let after = inspected(pass, "afterResultPath");
    assert_eq!(after["modifiedData"]["inputValue"], "value from input");
    assert_eq!(after["unrelatedData"]["someOtherField"], 1234);
    assert_eq!(
        serde_json::from_str::<Value>(pass["output"].as_str().unwrap()).unwrap(),
        after
    );
    assert!(
        seen["pass_info"].get("inspectionData").is_none(),
        "INFO shows no inspection data: {}",
        seen["pass_info"]
    );

    let cli = &seen["aws_cli"];
    assert_eq!(cli["status"], "SUCCEEDED", "the AWS CLI: {cli}");
    assert_eq!(cli["output"], r#"{"answer":1}"#, "the AWS CLI: {cli}");
    let lambda = &seen["lambda"];
    assert_eq!(lambda["status"], "SUCCEEDED", "{lambda}");
    assert_eq!(lambda["output"], r#"{"answer":42}"#);
    assert_eq!(
        inspected(lambda, "afterParameters"),
        json!({"FunctionName": "nowhere", "Payload": {"q": 1}})
    );
    assert_eq!(inspected(lambda, "result")["StatusCode"], 200);

    let refusal = "Mock result schema validation error: Field 'StatusCode' must be a number";
    for mode in ["STRICT", "PRESENT"] {
        let r = &seen[format!("wrong_type_{mode}")];
        assert_eq!(
            (r["code"].as_str(), r["message"].as_str()),
            (Some("ValidationException"), Some(refusal)),
            "{mode}: {r}"
        );
    }
    assert_eq!(seen["wrong_type_NONE"]["status"], "SUCCEEDED", "{seen}");
    assert_eq!(seen["wrong_type_NONE"]["output"], r#"{"code":"200"}"#);
    assert_eq!(
        seen["unknown_field_STRICT"]["status"], "SUCCEEDED",
        "{seen}"
    );
    assert_eq!(
        seen["missing_required_STRICT"]["message"],
        "Mock result schema validation error: Required field 'ExecutionArn' is missing"
    );
    assert_eq!(
        seen["missing_required_PRESENT"]["status"], "SUCCEEDED",
        "{seen}"
    );

    let caught = &seen["caught"];
    assert_eq!(caught["status"], "CAUGHT_ERROR", "{caught}");
    assert_eq!(caught["nextState"], "Throttled");
    assert_eq!(
        caught["inspectionData"]["errorDetails"],
        json!({"catchIndex": 0})
    );
    assert_eq!(caught["error"], "Lambda.TooManyRequestsException");
    assert_eq!(
        serde_json::from_str::<Value>(caught["output"].as_str().unwrap()).unwrap(),
        json!({"order": 7, "error": {"Error": "Lambda.TooManyRequestsException", "Cause": "Rate exceeded"}})
    );
    let retried = &seen["retried"];
    assert_eq!(retried["status"], "RETRIABLE", "{retried}");
    assert_eq!(
        retried["inspectionData"]["errorDetails"],
        json!({"retryIndex": 1, "retryBackoffIntervalSeconds": 4}),
        "the second retrier, 2 s × 2.0^1"
    );
    assert_eq!(seen["spent"]["status"], "FAILED", "{seen}");
    assert_eq!(seen["spent"]["error"], "Lambda.ServiceException");

    let by_name = &seen["by_name"];
    assert_eq!(by_name["status"], "SUCCEEDED", "{by_name}");
    assert_eq!(by_name["nextState"], "Done");
    assert_eq!(by_name["output"], r#"{"total":15}"#);
    assert_eq!(
        inspected(by_name, "variables"),
        json!({"price": 5, "total": 15}),
        "the variables given, and the one the state assigned"
    );
    assert_eq!(
        seen["unknown_name"]["code"], "ValidationException",
        "{seen}"
    );
    assert!(
        seen["unknown_name"]["message"]
            .as_str()
            .unwrap()
            .contains("'Nowhere'"),
        "{seen}"
    );

    assert_eq!(seen["map_without_mock"]["code"], "InvalidDefinition");
    assert_eq!(
        seen["map_without_mock"]["message"],
        "TestState API does not support Map or Parallel states. Supported state types include: [Task, Wait, Pass, Succeed, Fail, Choice]"
    );
    let mapped = &seen["map_mocked"];
    assert_eq!(mapped["output"], "[10,20]", "{mapped}");
    assert_eq!(mapped["inspectionData"]["maxConcurrency"], 0);
    assert_eq!(
        seen["both"]["message"],
        "A test mock should have only one of the following fields: [result, errorOutput]."
    );
    assert_eq!(
        seen["mock_on_pass"]["message"],
        "State type 'Pass' is not supported when a mock is specified"
    );
    assert_eq!(seen["invalid"]["code"], "InvalidDefinition", "{seen}");
    assert_eq!(
        seen["machine_without_name"]["code"], "InvalidDefinition",
        "{seen}"
    );
    assert_eq!(seen["bad_input"]["code"], "InvalidExecutionInput", "{seen}");
    assert_eq!(
        seen["context_without_mock"]["code"], "ValidationException",
        "{seen}"
    );
    assert_eq!(
        inspected(&seen["context"], "afterArguments")["Payload"],
        json!({"who": "mine"}),
        "the context given is the one the state sees: {seen}"
    );
}

/// RedriveExecution on `deploy local`, through boto3: a failed execution goes on from the state
/// that failed (the one before it is not entered again, its variables are kept), redriveCount
/// and the ExecutionRedriven event, the same client token answered once, listing by
/// redriveFilter, a succeeded execution refused, and a Map running again only the iteration
/// that failed.
#[test]
fn redrive_resumes_a_failed_execution_where_it_failed() {
    let w = World::new();
    let local = Local::start(&w, &[]);
    let seen = boto3_sees(&local, "redrive");

    let failed = &seen["failed"];
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(
        (&failed["redriveCount"], &failed["redriveStatus"]),
        (&json!(0), &json!("REDRIVABLE"))
    );
    assert!(seen["redriven"]["redriveDate"].is_string(), "{seen}");
    assert_eq!(
        seen["again_same_token"]["redriveDate"], seen["redriven"]["redriveDate"],
        "the same client token is the same redrive"
    );
    let after = &seen["after"];
    assert_eq!(after["status"], "SUCCEEDED", "{after}");
    assert_eq!(after["redriveCount"], 1);
    assert!(after["redriveDate"].is_string());
    assert_eq!(after["redriveStatus"], "NOT_REDRIVABLE");
    assert_eq!(
        after["redriveStatusReason"],
        "Execution is SUCCEEDED and cannot be redriven"
    );
    assert_eq!(
        serde_json::from_str::<Value>(after["output"].as_str().unwrap()).unwrap(),
        json!([10, 20, 30])
    );

    let history = seen["history"].as_array().unwrap();
    let entered = |from: usize| -> Vec<&str> {
        history[from..]
            .iter()
            .filter(|e| e["type"].as_str().unwrap().ends_with("StateEntered"))
            .filter_map(|e| e["state"].as_str())
            .collect()
    };
    let at = history
        .iter()
        .position(|e| e["type"] == "ExecutionRedriven")
        .expect("an ExecutionRedriven event");
    assert_eq!(history[at]["redriveCount"], 1);
    assert_eq!(history[at - 1]["type"], "ExecutionFailed");
    assert_eq!(entered(0)[..2], ["Prepare", "Flaky"]);
    assert_eq!(
        entered(at).first(),
        Some(&"Flaky"),
        "it resumes at the state that failed"
    );
    assert!(
        !entered(at).contains(&"Prepare"),
        "the state before it does not run again: {history:?}"
    );
    assert_eq!(history.last().unwrap()["type"], "ExecutionSucceeded");

    assert_eq!(seen["redrive_succeeded"]["code"], "ExecutionNotRedrivable");
    assert_eq!(
        seen["redrive_succeeded"]["message"],
        "Execution is SUCCEEDED and cannot be redriven."
    );
    assert_eq!(seen["redrive_again"]["code"], "ExecutionNotRedrivable");
    assert_eq!(seen["listed_redriven"], json!(["flaky"]));
    assert_eq!(seen["listed_not_redriven"], json!(["never-failed"]));
    assert!(
        seen["listed_items"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "flaky", "redriveCount": 1})),
        "{seen}"
    );

    assert_eq!(seen["map_failed"]["status"], "FAILED");
    assert_eq!(seen["map_after"]["status"], "SUCCEEDED", "{seen}");
    // the iteration that succeeded (0) does not run again; the one that failed (1) does, and
    // so does one the failure stopped before it ended, if any (AWS: failed or aborted ones)
    let rerun = seen["map_iterations_rerun"].as_array().unwrap();
    assert!(
        rerun.contains(&json!(1)) && !rerun.contains(&json!(0)),
        "{rerun:?}"
    );
}

/// `deploy test-state` and `deploy redrive` on a deployed stack, against the local endpoint as
/// against AWS: a state answered by a mock (the API behind it is not called), a retriable and
/// a spent error; an execution that failed at its second task goes on from there when the
/// cause is fixed, without calling the first task's API again.
#[test]
fn test_state_and_redrive_from_the_command_line() {
    let w = World::new();
    let api = Api::start(false);
    let local = Local::start(&w, &["--http-endpoint", &api.url()]);
    deploy(&w, &local)
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    let first = "Call Should I deploy API";
    let out = deploy(&w, &local)
        .run(&[
            "test-state",
            "should-i-deploy",
            first,
            "--mock-result",
            r#"{"StatusCode": 200, "ResponseBody": {"shouldideploy": true}}"#,
        ])
        .success();
    assert!(
        out.stdout
            .contains(&format!("{first}: SUCCEEDED → ListAttachedUserPolicies")),
        "{out:?}"
    );
    assert!(out.stdout.contains(r#"{"deploy":true}"#), "{out:?}");
    assert!(api.paths.lock().unwrap().is_empty(), "the mock answered");
    let error = ["--mock-error", "States.Http.StatusCode.503:down"];
    let out = deploy(&w, &local)
        .run(
            &[
                &["test-state", "should-i-deploy", first, "--retry-count", "1"],
                &error[..],
            ]
            .concat(),
        )
        .success();
    assert!(
        out.stdout.contains(&format!("{first}: RETRIABLE"))
            && out.stdout.contains(r#""retryIndex":0"#),
        "{out:?}"
    );
    let out = deploy(&w, &local)
        .run(
            &[
                &["test-state", "should-i-deploy", first, "--retry-count", "3"],
                &error[..],
            ]
            .concat(),
        )
        .code(7);
    assert!(out.stdout.contains(&format!("{first}: FAILED")), "{out:?}");
    let out = deploy(&w, &local)
        .run(&["test-state", "should-i-deploy", "Nowhere"])
        .code(2);
    assert!(out.stderr.contains("has no state `Nowhere`"), "{out:?}");

    // the user the workflow looks at is gone: the execution fails at its second state
    let user = "terraform-deploy-from-pipeline";
    w.c.block_on(async {
        for p in attached_arns(&w, user).await {
            let detach = w.c.iam.detach_user_policy().user_name(user).policy_arn(p);
            detach.send().await.unwrap();
        }
        w.c.iam.delete_user().user_name(user).send().await.unwrap();
    });
    deploy(&w, &local)
        .run(&["run", "should-i-deploy", "--name", "no-user"])
        .code(7);
    assert_eq!(api.paths.lock().unwrap().len(), 1);
    w.c.block_on(w.c.iam.create_user().user_name(user).send())
        .unwrap();
    let out = deploy(&w, &local)
        .run(&["redrive", "should-i-deploy"])
        .success();
    assert!(out.stdout.contains("redriving"), "{out:?}");
    assert!(
        out.stdout.contains("ListAttachedUserPolicies")
            && out.stdout.contains("execution SUCCEEDED"),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains(&format!("{first}: task")),
        "the first state is not run again: {out:?}"
    );
    assert_eq!(
        api.paths.lock().unwrap().len(),
        1,
        "its API was not called again"
    );
    assert!(attached(&w, user).contains(&"AWSDenyAll".to_string()));
    let out = deploy(&w, &local)
        .run(&["redrive", "should-i-deploy", "no-user"])
        .code(2);
    assert!(out.stderr.contains("cannot be redriven"), "{out:?}");

    // no mock: the state's call is made (to the stand-in API), and TRACE shows it
    let out = deploy(&w, &local)
        .run(&[
            "test-state",
            "should-i-deploy",
            first,
            "--inspection",
            "trace",
            "--output",
            "json",
        ])
        .success();
    let answer = out.json();
    let data = &answer["inspectionData"];
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(data["request"]["method"], "GET", "{answer}");
    assert_eq!(
        data["request"]["url"],
        format!("{}/api", api.url()),
        "{answer}"
    );
    assert_eq!(data["response"]["statusCode"], "200", "{answer}");
    assert_eq!(data["response"]["body"]["shouldideploy"], false, "{answer}");
    assert_eq!(
        api.paths.lock().unwrap().len(),
        2,
        "called for real this time"
    );
}
