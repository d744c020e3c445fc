//! End-to-end tests: the real binary against a real moto server, checked through the SDK.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use support::*;

const STACK: &str = "should-i-deploy";

/// Every resource EXERCISES.md lists for should-i-deploy, with its names and properties.
fn check_should_i_deploy(c: &Clients, env: &str, prefix: &str, rate: &str) {
    let n = |s: &str| format!("{prefix}{s}");
    let account = "123456789012";
    let user_arn = format!(
        "arn:aws:iam::{account}:user/{}",
        n("terraform-deploy-from-pipeline")
    );
    let (conn_arn, secret_arn) = c.block_on(async {
        // the CI user, with AdministratorAccess
        let u = c.iam.get_user().user_name(n("terraform-deploy-from-pipeline")).send().await.unwrap();
        assert_eq!(u.user().unwrap().arn(), user_arn);
        let att = c.iam.list_attached_user_policies().user_name(n("terraform-deploy-from-pipeline")).send().await.unwrap();
        let arns: Vec<&str> = att.attached_policies().iter().map(|p| p.policy_arn().unwrap()).collect();
        assert_eq!(arns, vec!["arn:aws:iam::aws:policy/AdministratorAccess"]);
        let tags = c.iam.list_user_tags().user_name(n("terraform-deploy-from-pipeline")).send().await.unwrap();
        assert_tags(tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())), STACK, env);
        // the connection
        let conn = c.events.describe_connection().name(n("should-i-deploy")).send().await.unwrap();
        // the tutorial's description, and the marker that proves the connection ours (no tags)
        let desc = format!("A connection used in the should-i-deploy Step Function [deploy:stack={STACK} deploy:env={env}]");
        assert_eq!(conn.description(), Some(desc.as_str()));
        assert_eq!(conn.authorization_type().unwrap().as_str(), "BASIC");
        assert_eq!(conn.auth_parameters().unwrap().basic_auth_parameters().unwrap().username(), Some("fake"));
        (conn.connection_arn().unwrap().to_string(), conn.secret_arn().unwrap().to_string())
    });

    // the state machine role and its policy, scoped to the same ARNs as the original
    let doc = role_policy(
        c,
        &n("sfn-should-i-deploy"),
        "states.amazonaws.com",
        STACK,
        env,
    );
    assert_eq!(
        doc["Statement"],
        json!([
            {"Sid": "IAMActions", "Effect": "Allow", "Action": ["iam:AttachUserPolicy", "iam:DetachUserPolicy", "iam:ListAttachedUserPolicies"], "Resource": user_arn},
            {"Sid": "InvokeHttpEndpoint", "Effect": "Allow", "Action": "states:InvokeHTTPEndpoint",
             "Resource": format!("arn:aws:states:us-east-1:{account}:stateMachine:{}", n("should-i-deploy")),
             "Condition": {"StringEquals": {"states:HTTPMethod": "GET"}, "StringLike": {"states:HTTPEndpoint": "https://shouldideploy.today/*"}}},
            {"Sid": "EventBridgeActions", "Effect": "Allow", "Action": "events:RetrieveConnectionCredentials", "Resource": conn_arn},
            {"Sid": "SecretsActions", "Effect": "Allow", "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], "Resource": secret_arn}
        ])
    );

    // the state machine, with the published definition after substitution
    let sm_arn = format!(
        "arn:aws:states:us-east-1:{account}:stateMachine:{}",
        n("should-i-deploy")
    );
    c.block_on(async {
        let d = c
            .sfn
            .describe_state_machine()
            .state_machine_arn(&sm_arn)
            .send()
            .await
            .unwrap();
        assert_eq!(d.r#type().as_str(), "STANDARD");
        assert_eq!(
            d.role_arn(),
            format!("arn:aws:iam::{account}:role/{}", n("sfn-should-i-deploy"))
        );
        let deployed: Value = serde_json::from_str(d.definition()).unwrap();
        let published = published_definition(
            STACK,
            "jsonata",
            &[
                ("CONNECTION_ARN", &conn_arn),
                ("DENY_POLICY_ARN", "arn:aws:iam::aws:policy/AWSDenyAll"),
                ("IAM_USER_NAME", &n("terraform-deploy-from-pipeline")),
            ],
        );
        assert_eq!(
            deployed, published,
            "deployed definition equals the published one after substitution"
        );
        let tags = c
            .sfn
            .list_tags_for_resource()
            .resource_arn(&sm_arn)
            .send()
            .await
            .unwrap();
        assert_tags(
            tags.tags()
                .iter()
                .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())),
            STACK,
            env,
        );

        // the schedule and its target
        let rule = c
            .events
            .describe_rule()
            .name(n("should-i-deploy"))
            .send()
            .await
            .unwrap();
        assert_eq!(rule.schedule_expression(), Some(rate));
        let tags = c
            .events
            .list_tags_for_resource()
            .resource_arn(rule.arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_tags(
            tags.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string())),
            STACK,
            env,
        );
        let targets = c
            .events
            .list_targets_by_rule()
            .rule(n("should-i-deploy"))
            .send()
            .await
            .unwrap();
        assert_eq!(targets.targets().len(), 1);
        let t = &targets.targets()[0];
        assert_eq!(t.id(), "step-function-should-i-deploy");
        assert_eq!(t.arn(), sm_arn);
        assert_eq!(
            t.role_arn(),
            Some(
                format!(
                    "arn:aws:iam::{account}:role/{}",
                    n("eventbridge-should-i-deploy")
                )
                .as_str()
            )
        );
    });
    let doc = role_policy(
        c,
        &n("eventbridge-should-i-deploy"),
        "events.amazonaws.com",
        STACK,
        env,
    );
    assert_eq!(
        doc["Statement"],
        json!([{"Sid": "IAMActions", "Effect": "Allow", "Action": ["states:StartExecution"], "Resource": sm_arn}])
    );
}

#[test]
fn should_i_deploy_up_noop_update_destroy() {
    let w = World::with_project_copy();
    let (moto, c, project) = (&w.moto, &w.c, w.project.as_path());
    let deploy = || w.deploy();

    // up: everything EXERCISES.md lists
    let out = deploy().run(&["up", STACK, "--yes"]).success();
    assert!(out.stdout.contains("Plan: 12 to create"), "{out:?}");
    // each finished resource: [N/M], kind, id, its final name (not "known after apply"), time
    let done = regex::Regex::new(
        r"(?m)^  \+   \[\s*(\d+)/12\] should-i-deploy: (\S+)  (.+)  created in \d+\.\ds$",
    )
    .unwrap();
    let lines: Vec<(usize, String, String)> = done
        .captures_iter(&out.stderr)
        .map(|c| (c[1].parse().unwrap(), c[2].to_string(), c[3].to_string()))
        .collect();
    assert_eq!(
        lines.iter().map(|l| l.0).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>(),
        "{out:?}"
    );
    assert!(
        lines.iter().any(
            |l| l.1 == "iam_role_policy_attachment.sfn_policy_attachment"
                && l.2
                    == "arn:aws:iam::123456789012:policy/sfn-should-i-deploy -> sfn-should-i-deploy"
        ),
        "{lines:?}"
    );
    assert!(!out.stderr.contains("known after apply"), "{out:?}");
    check_should_i_deploy(&c, "default", "", "rate(30 minutes)");
    let doc = deploy()
        .run(&["outputs", STACK, "--output", "json"])
        .success()
        .json();
    assert_eq!(doc["format_version"], 1);
    let outputs = doc["outputs"].clone();
    assert_eq!(
        outputs["state_machine_arn"],
        "arn:aws:states:us-east-1:123456789012:stateMachine:should-i-deploy"
    );
    let list = deploy().run(&["list", "--output", "json"]).success().json()["stacks"].clone();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stack"] == STACK)
        .unwrap()
        .clone();
    assert_eq!(
        (
            row["env"].clone(),
            row["status"].clone(),
            row["resources"].clone()
        ),
        (json!("default"), json!("deployed"), json!(12))
    );

    // a second up reports no changes and makes no mutating call
    moto.start_recording();
    let out = deploy().run(&["up", STACK, "--yes"]).success();
    assert!(
        out.stdout.contains("No changes: 12 resources up to date."),
        "{out:?}"
    );
    let ops = moto.recorded_operations();
    assert!(
        ops.iter().any(|o| o == "DescribeStateMachine"),
        "the recorder saw the reads: {ops:?}"
    );
    let mutating: Vec<&String> = ops.iter().filter(|o| is_mutating(o)).collect();
    assert!(mutating.is_empty(), "no mutating call, but: {mutating:?}");

    // a change made outside deploy is shown as such, and up puts the manifest's value back
    c.block_on(async {
        c.events
            .put_rule()
            .name("should-i-deploy")
            .schedule_expression("rate(10 minutes)")
            .send()
            .await
            .unwrap()
    });
    let out = deploy().run(&["plan", STACK]).success();
    let said = "~ schedule_expression: \"rate(10 minutes)\" → \"rate(30 minutes)\"  # changed outside deploy\n";
    assert!(out.stdout.contains(said), "{out:?}");
    deploy().run(&["up", STACK, "--yes"]).success();
    check_should_i_deploy(&c, "default", "", "rate(30 minutes)");

    // a variable change: the plan shows it, up updates the rule in place with one call
    let out = deploy()
        .run(&["plan", STACK, "--var", "frequency_in_minutes=5"])
        .success();
    assert!(
        out.stdout
            .contains("~ schedule_expression: \"rate(30 minutes)\" → \"rate(5 minutes)\"\n"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 11 unchanged."),
        "{out:?}"
    );
    moto.start_recording();
    deploy()
        .run(&["up", STACK, "--var", "frequency_in_minutes=5", "--yes"])
        .success();
    let ops = moto.recorded_operations();
    assert_eq!(
        ops.iter().filter(|o| is_mutating(o)).collect::<Vec<_>>(),
        vec!["PutRule"],
        "{ops:?}"
    );
    check_should_i_deploy(&c, "default", "", "rate(5 minutes)");
    deploy()
        .run(&["up", STACK, "--var", "frequency_in_minutes=1", "--yes"])
        .success();
    check_should_i_deploy(&c, "default", "", "rate(1 minute)");

    // a definition template edit: the plan shows a readable diff; one UpdateStateMachine
    let tpl = project.join("templates/should-i-deploy/jsonata.json");
    let text = std::fs::read_to_string(&tpl).unwrap();
    std::fs::write(
        &tpl,
        text.replace("\"MaxAttempts\": 3", "\"MaxAttempts\": 5"),
    )
    .unwrap();
    let out = deploy()
        .run(&["plan", STACK, "--var", "frequency_in_minutes=1"])
        .success();
    assert!(out.stdout.contains("~ definition:\n          ~ state \"Call Should I deploy API\" · Retry[0].MaxAttempts: 3 → 5\n"), "{out:?}");
    // and what it does to the cost of each scenario's path: two more retries when the API fails
    assert!(
        out.stdout.contains(
            "      # scenario api-unreachable: 4 → 6 transitions per execution\n      # 4 other scenario(s): transitions unchanged\n"
        ),
        "{out:?}"
    );
    moto.start_recording();
    deploy()
        .run(&["up", STACK, "--var", "frequency_in_minutes=1", "--yes"])
        .success();
    let ops = moto.recorded_operations();
    assert_eq!(
        ops.iter().filter(|o| is_mutating(o)).collect::<Vec<_>>(),
        vec!["UpdateStateMachine"],
        "{ops:?}"
    );
    let def: Value = c.block_on(async {
        let d = c
            .sfn
            .describe_state_machine()
            .state_machine_arn(outputs["state_machine_arn"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        serde_json::from_str(d.definition()).unwrap()
    });
    assert_eq!(
        def["States"]["Call Should I deploy API"]["Retry"][0]["MaxAttempts"],
        5
    );
    // whitespace and key order are not changes
    let text = std::fs::read_to_string(&tpl).unwrap();
    let reordered = text.replacen(
        "\"QueryLanguage\": \"JSONata\",\n  \"Comment\": \"A description of my state machine\",",
        "\"Comment\": \"A description of my state machine\",\n\n\n      \"QueryLanguage\":    \"JSONata\",",
        1,
    );
    assert_ne!(reordered, text, "the template starts as published");
    std::fs::write(&tpl, reordered).unwrap();
    let out = deploy()
        .run(&["plan", STACK, "--var", "frequency_in_minutes=1"])
        .success();
    assert!(
        out.stdout.contains("No changes"),
        "whitespace and key order are not changes: {out:?}"
    );

    // a policy change is a new default policy version, nothing else
    let manifest = project.join("stacks/should-i-deploy/stack.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "Action = [\"states:StartExecution\"]",
            "Action = [\"states:StartExecution\", \"states:DescribeExecution\"]",
        ),
    )
    .unwrap();
    moto.start_recording();
    let out = deploy()
        .run(&["up", STACK, "--var", "frequency_in_minutes=1", "--yes"])
        .success();
    assert_eq!(mutating_calls(moto), vec!["CreatePolicyVersion"]);
    assert!(
        out.stdout
            .contains("should-i-deploy: 1 change applied (env default)."),
        "{out:?}"
    );
    let doc = role_policy(
        c,
        "eventbridge-should-i-deploy",
        "events.amazonaws.com",
        STACK,
        "default",
    );
    assert_eq!(
        doc["Statement"][0]["Action"],
        json!(["states:StartExecution", "states:DescribeExecution"])
    );
    let versions = c.block_on(async {
        let arn = "arn:aws:iam::123456789012:policy/eventbridge-should-i-deploy";
        c.iam
            .list_policy_versions()
            .policy_arn(arn)
            .send()
            .await
            .unwrap()
            .versions()
            .len()
    });
    assert_eq!(versions, 2);

    // destroy removes everything, policy versions and attachments included
    let out = deploy().run(&["destroy", STACK, "--yes"]).success();
    assert!(out.stdout.contains("12 to delete"), "{out:?}");
    nothing_left(&c, moto.port);
    let list = deploy().run(&["list", "--output", "json"]).success().json()["stacks"].clone();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stack"] == STACK)
        .unwrap()
        .clone();
    assert_eq!(row["status"], "not deployed");
    let out = deploy().run(&["outputs", STACK]).code(2);
    assert!(
        out.stderr.contains("is not deployed in env `default`"),
        "{out:?}"
    );
}

fn role_names(c: &Clients) -> Vec<String> {
    c.block_on(async {
        c.iam
            .list_roles()
            .send()
            .await
            .unwrap()
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect()
    })
}

#[test]
fn envs_are_isolated_and_destroy_without_stack_removes_all_of_an_env() {
    let w = World::new();
    let (moto, c) = (&w.moto, &w.c);
    let deploy = || w.deploy();

    deploy().run(&["up", STACK, "--yes"]).success();
    deploy()
        .run(&[
            "up",
            STACK,
            "--yes",
            "--env",
            "pr-1",
            "--var",
            "frequency_in_minutes=7",
        ])
        .success();
    check_should_i_deploy(&c, "default", "", "rate(30 minutes)");
    check_should_i_deploy(&c, "pr-1", "pr-1-", "rate(7 minutes)");
    let deployed_in = |args: &[&str]| -> Vec<String> {
        let list = deploy().run(args).success().json()["stacks"].clone();
        list.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["stack"] == STACK)
            .map(|r| r["env"].as_str().unwrap_or("-").to_string())
            .collect()
    };
    assert_eq!(
        deployed_in(&["list", "-o", "json"]).len(),
        2,
        "both envs without --env"
    );
    assert_eq!(
        deployed_in(&["list", "-o", "json", "--env", "pr-1"]),
        ["pr-1"],
        "list --env shows that env only"
    );

    let out = deploy()
        .run(&["destroy", "--yes", "--env", "pr-1"])
        .success();
    assert!(out.stdout.contains("12 to delete"), "{out:?}");
    let mut roles = role_names(&c);
    roles.sort();
    assert_eq!(
        roles,
        vec!["eventbridge-should-i-deploy", "sfn-should-i-deploy"],
        "the default env is untouched"
    );
    check_should_i_deploy(&c, "default", "", "rate(30 minutes)");

    deploy().run(&["destroy", "--yes"]).success();
    nothing_left(&c, moto.port);
    let out = deploy().run(&["destroy", "--yes"]).success();
    assert!(
        out.stdout.contains("Nothing to destroy in env default."),
        "{out:?}"
    );
}

#[test]
fn without_terminal_or_yes_nothing_changes() {
    let w = World::new();
    let out = w.deploy().run(&["up", STACK]).code(5);
    assert!(
        out.stdout.contains("Plan: 12 to create"),
        "the plan is shown: {out:?}"
    );
    assert!(
        out.stderr
            .contains("nothing was changed: there is no terminal to confirm on"),
        "{out:?}"
    );
    assert!(out.stderr.contains("run again with --yes"), "{out:?}");
    let c = &w.c;
    assert!(role_names(&c).is_empty());
    w.deploy().run(&["up", STACK, "--yes"]).success();
    let out = w.deploy().run(&["destroy"]).code(5);
    assert!(out.stderr.contains("nothing was changed"), "{out:?}");
    assert_eq!(role_names(&c).len(), 2);
}

fn edit_state(state: &Path, env: &str, f: impl FnOnce(&mut Value)) {
    let path = state.join(env).join(format!("{STACK}.json"));
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// A crash between an API call and its record leaves a `pending` entry (written before the
/// create). `up` adopts what exists under the deterministic name; `destroy` removes it.
#[test]
fn interrupted_creates_are_adopted_by_up_and_removed_by_destroy() {
    let w = World::new();
    let (moto, c) = (&w.moto, &w.c);
    let deploy = || w.deploy();
    deploy().run(&["up", STACK, "--yes"]).success();

    let pending = |v: &mut Value, id: &str| {
        v["resources"][id]["status"] = json!("pending");
        v["resources"][id]["outputs"] = json!({});
    };
    edit_state(w.state.path(), "default", |v| {
        pending(v, "state_machine");
        pending(v, "sfn_role");
        // and one whose create never reached AWS
        v["resources"]["target"]["status"] = json!("pending");
    });
    c.block_on(async {
        c.events
            .remove_targets()
            .rule("should-i-deploy")
            .ids("step-function-should-i-deploy")
            .send()
            .await
            .unwrap();
    });
    moto.start_recording();
    let out = deploy().run(&["up", STACK, "--yes"]).success();
    let mutating: Vec<String> = moto
        .recorded_operations()
        .into_iter()
        .filter(|o| is_mutating(o))
        .collect();
    // the two that exist are found while planning and adopted (read, proven ours, recorded);
    // only the target that never reached AWS is created
    assert_eq!(
        mutating,
        vec!["PutTargets"],
        "adopting changes nothing else: {out:?}"
    );
    assert!(
        out.stdout
            .contains("<=  adopt    iam_role.sfn_role  sfn-should-i-deploy"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("an earlier run was interrupted while creating it; it exists and is ours"),
        "{out:?}"
    );
    assert!(out.stdout.contains("3 changes applied"), "{out:?}");
    assert!(
        out.stderr
            .contains("sfn_state_machine.state_machine  should-i-deploy  adopted"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("iam_role.sfn_role  sfn-should-i-deploy  adopted"),
        "{out:?}"
    );
    check_should_i_deploy(&c, "default", "", "rate(30 minutes)");
    let out = deploy().run(&["up", STACK, "--yes"]).success();
    assert!(out.stdout.contains("No changes"), "{out:?}");

    edit_state(w.state.path(), "default", |v| pending(v, "state_machine"));
    deploy().run(&["destroy", STACK, "--yes"]).success();
    nothing_left(&c, moto.port);
}

#[test]
fn a_resource_created_by_someone_else_is_not_taken_over() {
    let w = World::new();
    let c = &w.c;
    c.block_on(async {
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        c.iam.create_role().role_name("sfn-should-i-deploy").assume_role_policy_document(trust.to_string()).send().await.unwrap();
    });
    // refused while planning, before any change, naming it, its owner tags and the way out
    w.moto.start_recording();
    let out = w.deploy().run(&["up", STACK, "--yes"]).code(2);
    assert!(
        out.stderr.contains(
            "1 declared resource(s) already exist and belong to someone else; nothing was changed"
        ),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "iam_role.sfn_role (sfn-should-i-deploy): exists, and is not this stack's: its tags say no deploy:stack tag, no deploy:env tag"
        ),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("deploy import should-i-deploy sfn_role --env default"),
        "{out:?}"
    );
    assert!(
        mutating_calls(&w.moto).is_empty(),
        "nothing was changed: {:?}",
        mutating_calls(&w.moto)
    );
    assert!(
        !w.state.path().join("default/should-i-deploy.json").exists(),
        "nothing recorded"
    );
    // a --env copy deploys fine beside it
    w.deploy()
        .run(&["up", STACK, "--yes", "--env", "mine"])
        .success();
}

/// AWS throttles an account's calls per service (a token bucket): a deploy that sends more
/// than a service allows is told "Rate exceeded", gives that service fewer calls at once, and
/// finishes everything without a failure, up and destroy alike.
#[test]
fn a_service_that_throttles_gets_fewer_calls_at_once_and_nothing_fails() {
    let w = World::new();
    let proxy = Proxy::start(&w.moto, json!({"rate": {"per_second": 40, "burst": 8}}));
    let all = ["--all", "--var", "email=a@b.c", "--yes", "-v"];
    // a throttled call is asked again after 0.25 s or more (AWS's SDKs wait about a second;
    // the other tests' 20 ms is for faults that pass at once, not for a rate to recover)
    let via = || w.via(&proxy.url()).env("DEPLOY_RETRY_BASE_MS", "250");
    let up = via().run(&[&["up"][..], &all].concat()).success();
    let log = proxy.injected();
    let throttled = log
        .iter()
        .filter(|l| l.starts_with("throttled iam"))
        .count();
    assert!(throttled > 0, "the bucket was never empty: {log:?}");
    assert!(
        up.stderr.contains("iam: throttled; calls at once"),
        "deploy did not notice IAM throttling: {up:?}"
    );
    // everything is there: a plan has nothing to change
    let plan = via()
        .run(&["plan", "--all", "--var", "email=a@b.c", "-o", "json"])
        .success();
    let changes: Vec<_> = plan.json()["plans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap().clone())
        .filter(|s| s["action"] != "noop")
        .collect();
    assert!(changes.is_empty(), "{changes:?}");
    w.via(&proxy.url()).run(&["destroy", "--yes"]).success();
    nothing_left(&w.c, w.moto.port);
}

/// A policy is deleted with one DeletePolicy; when IAM refuses it because older versions
/// remain (DeleteConflict: AWS does, moto does not, so it is injected), those versions go
/// first and the policy after them.
#[test]
fn a_policy_with_older_versions_is_deleted_after_them() {
    let w = World::new();
    w.deploy().run(&["up", STACK, "--yes"]).success();
    let proxy = Proxy::start(
        &w.moto,
        json!([{"operation": "DeletePolicy", "times": 1, "status": 409, "protocol": "query",
                "code": "DeleteConflict", "message": "Cannot delete a policy with non-default versions."}]),
    );
    w.moto.start_recording();
    w.via(&proxy.url()).run(&["destroy", "--yes"]).success();
    assert_eq!(proxy.injected(), vec!["DeletePolicy"]);
    let ops = w.moto.recorded_operations();
    let listed = ops.iter().position(|o| o == "ListPolicyVersions");
    let deleted_after = listed.and_then(|i| ops[i..].iter().position(|o| o == "DeletePolicy"));
    assert!(
        deleted_after.is_some(),
        "versions listed, then the policy deleted: {ops:?}"
    );
    assert_eq!(
        ops.iter().filter(|o| *o == "ListPolicyVersions").count(),
        1,
        "only the refused policy's versions are listed: {ops:?}"
    );
    nothing_left(&w.c, w.moto.port);
}

/// Behaviour moto does not show, injected in front of it: a new role that cannot be assumed
/// yet (IAM propagation) and throttling. Both are retried with backoff; a real error is not.
#[test]
fn propagation_delays_and_throttling_are_retried_and_real_errors_stop_only_dependents() {
    let w = World::new();
    let moto = &w.moto;
    let proxy = Proxy::start(
        &moto,
        json!([
            {"operation": "CreateStateMachine", "times": 3, "code": "AccessDeniedException",
             "message": "Neither the global service principal states.amazonaws.com, nor the regional one is authorized to assume the provided role."},
            {"operation": "CreateRole", "times": 2, "protocol": "query", "code": "Throttling", "message": "Rate exceeded"}
        ]),
    );
    let out = w.via(&proxy.url()).run(&["up", STACK, "--yes"]).success();
    let injected = proxy.injected();
    assert_eq!(
        injected
            .iter()
            .filter(|o| *o == "CreateStateMachine")
            .count(),
        3,
        "{injected:?}"
    );
    assert_eq!(
        injected.iter().filter(|o| *o == "CreateRole").count(),
        2,
        "{injected:?}"
    );
    assert!(
        out.stderr
            .contains("sfn_state_machine.state_machine  should-i-deploy  created"),
        "{out:?}"
    );
    check_should_i_deploy(&w.c, "default", "", "rate(30 minutes)");
    drop(proxy);

    // A real error on one resource: what acts on it is skipped, the rest finishes; exit 4.
    // An IAM policy only names the state machine by its ARN, known beforehand: it does not
    // wait for the machine, and is made (and attached) with that ARN although it failed.
    let state2 = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(
        &moto,
        json!([
            {"operation": "CreateStateMachine", "times": 1, "code": "InvalidDefinition", "message": "Invalid State Machine Definition"}
        ]),
    );
    let out = Deploy::new(&w.project, state2.path(), &proxy.url())
        .run(&["up", STACK, "--yes", "--env", "b"])
        .code(4);
    assert!(
        out.stderr
            .contains("state_machine failed to create: CreateStateMachine failed: InvalidDefinition: Invalid State Machine Definition"),
        "{out:?}"
    );
    assert!(out.stderr.contains("target skipped"), "{out:?}");
    assert!(
        out.stderr
            .contains("1 of the changes failed, 1 skipped after them"),
        "{out:?}"
    );
    for made in [
        "iam_policy.eventbridge_policy  b-eventbridge-should-i-deploy  created",
        "iam_role_policy_attachment.eventbridge_policy_attachment",
    ] {
        assert!(out.stderr.contains(made), "{made}: {out:?}");
    }
    let account = "123456789012";
    let granted = w.c.block_on(async {
        let arn = format!("arn:aws:iam::{account}:policy/b-eventbridge-should-i-deploy");
        let p =
            w.c.iam
                .get_policy_version()
                .policy_arn(arn)
                .version_id("v1");
        let version = p.send().await.unwrap().policy_version.unwrap();
        parse_policy(version.document().unwrap())["Statement"][0]["Resource"].clone()
    });
    let machine = format!("arn:aws:states:us-east-1:{account}:stateMachine:b-should-i-deploy");
    assert_eq!(granted, machine.as_str());
    assert!(
        out.stderr
            .contains("events_rule.rule  b-should-i-deploy  created"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("iam_role.eventbridge_role  b-eventbridge-should-i-deploy  created"),
        "{out:?}"
    );
    // running again finishes the job
    let out = Deploy::new(&w.project, state2.path(), &proxy.url())
        .run(&["up", STACK, "--yes", "--env", "b"])
        .success();
    assert!(
        out.stdout
            .contains("Plan: 2 to create, 0 to update, 0 to replace, 0 to delete, 10 unchanged."),
        "{out:?}"
    );
    check_should_i_deploy(&w.c, "b", "b-", "rate(30 minutes)");
}

/// Ctrl-C in the middle of `up`: what is in flight finishes and is recorded, nothing new
/// starts, exit 130; a second run on the same stack meanwhile is refused by the lock; running
/// `up` again finishes the job, and `destroy` leaves nothing.
#[test]
fn ctrl_c_mid_up_is_recoverable_and_the_lock_keeps_runs_apart() {
    let w = World::new();
    let moto = &w.moto;
    // the state machine's create is held in flight until the test releases it
    let release = w.state.path().join("release-create");
    let proxy = Proxy::start(
        &moto,
        json!([{"operation": "CreateStateMachine", "times": 1, "hold_until": release}]),
    );
    let child = w
        .via(&proxy.url())
        .spawn(&["up", STACK, "--yes", "--parallelism", "1"]);
    let pid = child.id();
    // wait until the state machine's create is on the wire (recorded as pending first)
    let recorded = w.state.path().join("default/should-i-deploy.json");
    eventually(30, "the state machine's create to start", || {
        std::fs::read_to_string(&recorded)
            .is_ok_and(|t| t.contains("\"kind\": \"sfn_state_machine\""))
    });

    let other = w.via(&proxy.url()).run(&["up", STACK, "--yes"]).code(6);
    assert!(
        other.stderr.contains(
            "stack `should-i-deploy` (env `default`) is being changed by another deploy run"
        ),
        "{other:?}"
    );

    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    std::fs::write(&release, "").unwrap();
    let out = finish(child).code(130);
    assert!(
        out.stderr.contains(
            "interrupted (Ctrl-C again to stop now): starting nothing more; the operations in flight have 5 s to finish"
        ),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("sfn_state_machine.state_machine  should-i-deploy  created"),
        "the call in flight finished and was recorded: {out:?}"
    );
    assert!(
        out.stderr
            .contains("run `deploy up` again to finish, or `deploy destroy`"),
        "{out:?}"
    );
    let st: Value = serde_json::from_str(&std::fs::read_to_string(&recorded).unwrap()).unwrap();
    assert_eq!(st["resources"]["state_machine"]["status"], "created");
    assert!(
        st["resources"].get("target").is_none(),
        "nothing new started after Ctrl-C"
    );

    let out = w.deploy().run(&["up", STACK, "--yes"]).success();
    assert!(
        out.stdout.contains("to create") && !out.stdout.contains("Plan: 12 to create"),
        "only the rest is created: {out:?}"
    );
    check_should_i_deploy(&w.c, "default", "", "rate(30 minutes)");
    w.deploy().run(&["destroy", "--yes"]).success();
    nothing_left(&w.c, moto.port);
}

/// `--output json` for CI: the plan, one object per resource event, and a summary with outputs.
#[test]
fn up_and_destroy_speak_json_for_ci() {
    let w = World::new();
    let out = w
        .deploy()
        .run(&["up", STACK, "--yes", "--output", "json"])
        .success();
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["event"], "plan");
    assert!(
        lines.iter().all(|l| l["format_version"] == 1),
        "every JSON document says its format version"
    );
    let steps = lines[0]["plans"][0]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 12);
    assert!(steps.iter().all(|s| s["action"] == "create"));
    let count = |ev: &str| lines.iter().filter(|l| l["event"] == ev).count();
    assert_eq!(
        (count("start"), count("done"), count("failed")),
        (12, 12, 0)
    );
    let done = lines
        .iter()
        .find(|l| l["event"] == "done" && l["id"] == "state_machine")
        .unwrap();
    assert!(
        done["seconds"].as_f64().unwrap() >= 0.0 && done["action"] == "create",
        "{done}"
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["summary"]["done"].as_object().unwrap().len(), 12);
    assert_eq!(
        summary["outputs"]["state_machine_arn"],
        "arn:aws:states:us-east-1:123456789012:stateMachine:should-i-deploy"
    );
    assert!(
        !out.stderr.contains("created in"),
        "the human view stays out of JSON runs: {out:?}"
    );

    let plan = w
        .deploy()
        .run(&["plan", STACK, "--output", "json"])
        .success()
        .json();
    assert!(
        plan["plans"][0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["action"] == "noop")
    );
    let out = w
        .deploy()
        .run(&["destroy", "--yes", "--output", "json"])
        .success();
    let last: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        last["summary"]["done"]
            .as_object()
            .unwrap()
            .values()
            .filter(|a| *a == "delete")
            .count(),
        12
    );
}

/// `deploy ... | head`: the reader goes away mid-apply. Output stops; the work finishes, is
/// recorded, and the exit code is the documented one (never a panic's 101).
#[test]
fn a_closed_stdout_stops_the_output_not_the_work() {
    use std::io::BufRead;
    let w = World::new();
    let mut child = w.deploy().spawn(&[
        "up",
        "create-new-user",
        "--env",
        "t",
        "--var",
        "email=a@b.c",
        "--yes",
        "-o",
        "json",
    ]);
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        lines.next().unwrap().unwrap();
    }
    drop(lines); // as `head -n 3` exits
    let out = finish(child);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(w.state.path().join("t/create-new-user.json")).unwrap(),
    )
    .unwrap();
    let statuses: Vec<&str> = recorded["resources"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.len() >= 8 && statuses.iter().all(|s| *s == "created"),
        "everything applied and recorded: {statuses:?}"
    );
    let plan = w
        .deploy()
        .run(&[
            "plan",
            "create-new-user",
            "--env",
            "t",
            "--var",
            "email=a@b.c",
        ])
        .success();
    assert!(plan.stdout.contains("No changes"), "{plan:?}");

    // a reader gone before anything was written
    let mut child = w.deploy().spawn(&["policy", "create-new-user"]);
    drop(child.stdout.take());
    let out = finish(child);
    assert_eq!(out.code, 0, "{out:?}");
}

/// A stack of `n` state machines, each with its role, policy and attachment (4 n resources).
fn many_machines(project: &Path, n: usize) {
    let dir = project.join("stacks/many");
    std::fs::create_dir_all(&dir).unwrap();
    let mut toml = String::from("description = \"generated\"\n");
    for i in 0..n {
        toml.push_str(&format!(
            r#"
[resources.role{i}]
kind = "iam_role"
name = "many-role-{i}"
service = "states.amazonaws.com"

[resources.policy{i}]
kind = "iam_policy"
name = "many-policy-{i}"
[[resources.policy{i}.statement]]
Effect = "Allow"
Action = "states:StartExecution"
Resource = "*"

[resources.attach{i}]
kind = "iam_role_policy_attachment"
role = "${{role{i}.name}}"
policy_arn = "${{policy{i}.arn}}"

[resources.machine{i}]
kind = "sfn_state_machine"
name = "many-machine-{i}"
role_arn = "${{role{i}.arn}}"
definition = {{ template = "many/pass.json" }}
depends_on = ["attach{i}"]
"#
        ));
    }
    std::fs::write(dir.join("stack.toml"), toml).unwrap();
    let pass = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#;
    std::fs::create_dir_all(project.join("templates/many")).unwrap();
    std::fs::write(project.join("templates/many/pass.json"), pass).unwrap();
}

#[test]
fn a_large_stack_is_read_in_batches_and_still_sees_what_changed_outside() {
    let w = World::with_project_copy();
    many_machines(&w.project, 10);
    let deploy = || w.deploy();
    // a cold up looks for its 40 resources in three listings, not one by one
    w.moto.start_recording();
    deploy().run(&["up", "many", "--yes"]).success();
    let ops = w.moto.recorded_operations();
    let reads = [
        "GetRole",
        "GetPolicy",
        "DescribeStateMachine",
        "ListAttachedRolePolicies",
    ];
    let asked: Vec<&String> = ops.iter().filter(|o| reads.contains(&o.as_str())).collect();
    assert!(asked.is_empty(), "nothing read one by one: {asked:?}");
    assert!(
        ops.iter().any(|o| o == "GetAccountAuthorizationDetails"),
        "{ops:?}"
    );

    // a second up changes nothing, reading roles, attachments and the machines' tags in batches
    w.moto.start_recording();
    let out = deploy().run(&["up", "many", "--yes"]).success();
    assert!(
        out.stdout.contains("No changes: 40 resources up to date."),
        "{out:?}"
    );
    let ops = w.moto.recorded_operations();
    let one_by_one = [
        "GetRole",
        "ListRoleTags",
        "ListAttachedRolePolicies",
        "GetPolicy",
        "GetPolicyVersion",
        "ListTagsForResource",
    ];
    let asked: Vec<&String> = ops
        .iter()
        .filter(|o| one_by_one.contains(&o.as_str()))
        .collect();
    assert!(
        asked.is_empty(),
        "read in batches, not one by one: {asked:?}"
    );
    assert!(
        ops.len() <= 30,
        "{} calls for 40 resources: {ops:?}",
        ops.len()
    );

    // what was changed outside deploy is still seen, each in its own way
    let account = "123456789012";
    let policy = |i: usize| format!("arn:aws:iam::{account}:policy/many-policy-{i}");
    w.c.block_on(async {
        w.c.iam
            .update_role()
            .role_name("many-role-3")
            .description("edited by hand")
            .send()
            .await
            .unwrap();
        w.c.iam
            .untag_policy()
            .policy_arn(policy(4))
            .tag_keys("deploy:env")
            .send()
            .await
            .unwrap();
        w.c.iam
            .detach_role_policy()
            .role_name("many-role-5")
            .policy_arn(policy(5))
            .send()
            .await
            .unwrap();
        let tag = aws_sdk_sfn::types::Tag::builder()
            .key("team")
            .value("x")
            .build();
        let machine = format!("arn:aws:states:us-east-1:{account}:stateMachine:many-machine-6");
        w.c.sfn
            .tag_resource()
            .resource_arn(machine)
            .tags(tag)
            .send()
            .await
            .unwrap();
    });
    let out = deploy().run(&["plan", "many"]).success();
    for said in [
        "~   update   iam_role.role3  many-role-3\n      ~ description: \"edited by hand\" → \"\"  # changed outside deploy",
        "~   update   iam_policy.policy4  many-policy-4\n      ~ tags:  # changed outside deploy\n          + deploy:env: (none) → \"default\"",
        "+   create   iam_role_policy_attachment.attach5",
        "~   update   sfn_state_machine.machine6  many-machine-6\n      ~ tags:  # changed outside deploy\n          - team: \"x\" → (none)",
        "Plan: 1 to create, 3 to update, 0 to replace, 0 to delete, 36 unchanged.",
    ] {
        assert!(out.stdout.contains(said), "plan says {said:?}: {out:?}");
    }
    deploy().run(&["up", "many", "--yes"]).success();
    let out = deploy().run(&["plan", "many"]).success();
    assert!(
        out.stdout.contains("No changes: 40 resources up to date."),
        "{out:?}"
    );

    // credentials that may not list the account or the tags are read one by one, not refused
    let refuse = |op: &str, code: &str, protocol: &str| json!({"operation": op, "times": 1000, "code": code, "message": "not allowed", "protocol": protocol});
    let denied = Proxy::start(
        &w.moto,
        json!([
            refuse("GetAccountAuthorizationDetails", "AccessDenied", "query"),
            refuse("GetResources", "AccessDeniedException", "json"),
        ]),
    );
    let out = w.via(&denied.url()).run(&["plan", "many"]).success();
    assert!(
        out.stdout.contains("No changes: 40 resources up to date."),
        "{out:?}"
    );
    let injected = denied.injected();
    assert!(
        injected
            .iter()
            .any(|i| i == "GetAccountAuthorizationDetails"),
        "{injected:?}"
    );
    assert!(injected.iter().any(|i| i == "GetResources"), "{injected:?}");
    deploy().run(&["destroy", "many", "--yes"]).success();
    w.c.block_on(async {
        let left = w.c.sfn.list_state_machines().send().await.unwrap();
        assert!(left.state_machines().is_empty(), "{left:?}");
    });
}

#[test]
fn a_state_machine_still_being_deleted_is_waited_for_not_failed() {
    let w = World::with_project_copy();
    many_machines(&w.project, 1);
    // AWS answers a create of a name still being deleted with StateMachineDeleting
    let deleting = Proxy::start(
        &w.moto,
        json!([{"operation": "CreateStateMachine", "times": 2, "code": "StateMachineDeleting",
                "message": "State Machine is being deleted"}]),
    );
    let out = w
        .via(&deleting.url())
        .run(&["up", "many", "--yes"])
        .success();
    assert!(out.stdout.contains("4 changes applied"), "{out:?}");
    let injected = deleting.injected();
    assert_eq!(
        injected,
        vec!["CreateStateMachine", "CreateStateMachine"],
        "{out:?}"
    );
    w.c.block_on(async {
        let machines = w.c.sfn.list_state_machines().send().await.unwrap();
        assert_eq!(machines.state_machines().len(), 1, "{machines:?}");
    });
}
