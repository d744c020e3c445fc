//! End-to-end tests: the real binary against a real moto server, checked through the SDK.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use support::*;

const STACK: &str = "should-i-deploy";
const PUBLISHED_TAGS: [(&str, &str); 2] =
    [("Project", "Step Functions"), ("Repository", "https://github.com/felipelaptrin/step-functions")];

fn published_definition(stack: &str, lang: &str, vars: &[(&str, &str)]) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/seed/definitions/{stack}/{lang}.json"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (the tutorial seed lives in ../shared)", path.display()));
    for (k, v) in vars {
        text = text.replace(&format!("${{{k}}}"), v);
    }
    serde_json::from_str(&text).unwrap()
}

fn policy_doc(c: &Clients, arn: &str) -> Value {
    c.block_on(async {
        let p = c.iam.get_policy().policy_arn(arn).send().await.unwrap();
        let v = p.policy().unwrap().default_version_id().unwrap().to_string();
        let doc = c.iam.get_policy_version().policy_arn(arn).version_id(v).send().await.unwrap();
        let text = doc.policy_version().unwrap().document().unwrap().to_string();
        let text = if text.starts_with('{') { text } else { percent_decode(&text) };
        serde_json::from_str(&text).unwrap()
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The role's trust policy lets exactly one service principal assume it, and it has exactly
/// one attached policy, named like the role; returns that policy's document.
fn check_role(c: &Clients, role: &str, service: &str, env: &str) -> Value {
    c.block_on(async {
        let r = c.iam.get_role().role_name(role).send().await.unwrap();
        let r = r.role().unwrap();
        let trust: Value = {
            let t = r.assume_role_policy_document().unwrap();
            serde_json::from_str(&if t.starts_with('{') { t.to_string() } else { percent_decode(t) }).unwrap()
        };
        let st = trust["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 1, "{trust}");
        assert_eq!(st[0]["Principal"], json!({"Service": service}));
        assert_eq!(st[0]["Action"], "sts:AssumeRole");
        assert_eq!(st[0]["Effect"], "Allow");
        let tags = c.iam.list_role_tags().role_name(role).send().await.unwrap();
        check_tags(tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(), env);
        let att = c.iam.list_attached_role_policies().role_name(role).send().await.unwrap();
        let names: Vec<&str> = att.attached_policies().iter().map(|p| p.policy_name().unwrap()).collect();
        assert_eq!(names, vec![role], "one customer-managed policy named like the role");
        att.attached_policies()[0].policy_arn().unwrap().to_string()
    })
    .pipe(|arn| policy_doc(c, &arn))
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

fn check_tags(tags: std::collections::BTreeMap<String, String>, env: &str) {
    for (k, v) in PUBLISHED_TAGS {
        assert_eq!(tags.get(k).map(String::as_str), Some(v), "tag {k} in {tags:?}");
    }
    assert_eq!(tags.get("deploy:stack").map(String::as_str), Some(STACK));
    assert_eq!(tags.get("deploy:env").map(String::as_str), Some(env));
}

/// Every resource EXERCISES.md lists for should-i-deploy, with its names and properties.
fn check_should_i_deploy(c: &Clients, env: &str, prefix: &str, rate: &str) {
    let n = |s: &str| format!("{prefix}{s}");
    let account = "123456789012";
    let user_arn = format!("arn:aws:iam::{account}:user/{}", n("terraform-deploy-from-pipeline"));
    let (conn_arn, secret_arn) = c.block_on(async {
        // the CI user, with AdministratorAccess
        let u = c.iam.get_user().user_name(n("terraform-deploy-from-pipeline")).send().await.unwrap();
        assert_eq!(u.user().unwrap().arn(), user_arn);
        let att = c.iam.list_attached_user_policies().user_name(n("terraform-deploy-from-pipeline")).send().await.unwrap();
        let arns: Vec<&str> = att.attached_policies().iter().map(|p| p.policy_arn().unwrap()).collect();
        assert_eq!(arns, vec!["arn:aws:iam::aws:policy/AdministratorAccess"]);
        let tags = c.iam.list_user_tags().user_name(n("terraform-deploy-from-pipeline")).send().await.unwrap();
        check_tags(tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(), env);
        // the connection
        let conn = c.events.describe_connection().name(n("should-i-deploy")).send().await.unwrap();
        assert_eq!(conn.description(), Some("A connection used in the should-i-deploy Step Function"));
        assert_eq!(conn.authorization_type().unwrap().as_str(), "BASIC");
        assert_eq!(conn.auth_parameters().unwrap().basic_auth_parameters().unwrap().username(), Some("fake"));
        (conn.connection_arn().unwrap().to_string(), conn.secret_arn().unwrap().to_string())
    });

    // the state machine role and its policy, scoped to the same ARNs as the original
    let doc = check_role(c, &n("sfn-should-i-deploy"), "states.amazonaws.com", env);
    assert_eq!(
        doc["Statement"],
        json!([
            {"Sid": "IAMActions", "Effect": "Allow", "Action": ["iam:AttachUserPolicy", "iam:DetachUserPolicy", "iam:ListAttachedUserPolicies"], "Resource": user_arn},
            {"Sid": "InvokeHttpEndpoint", "Effect": "Allow", "Action": "states:InvokeHTTPEndpoint", "Resource": "*"},
            {"Sid": "EventBridgeActions", "Effect": "Allow", "Action": "events:RetrieveConnectionCredentials", "Resource": conn_arn},
            {"Sid": "SecretsActions", "Effect": "Allow", "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], "Resource": secret_arn}
        ])
    );

    // the state machine, with the published definition after substitution
    let sm_arn = format!("arn:aws:states:us-east-1:{account}:stateMachine:{}", n("should-i-deploy"));
    c.block_on(async {
        let d = c.sfn.describe_state_machine().state_machine_arn(&sm_arn).send().await.unwrap();
        assert_eq!(d.r#type().as_str(), "STANDARD");
        assert_eq!(d.role_arn(), format!("arn:aws:iam::{account}:role/{}", n("sfn-should-i-deploy")));
        let deployed: Value = serde_json::from_str(d.definition()).unwrap();
        let published = published_definition(STACK, "jsonata", &[
            ("CONNECTION_ARN", &conn_arn),
            ("DENY_POLICY_ARN", "arn:aws:iam::aws:policy/AWSDenyAll"),
            ("IAM_USER_NAME", &n("terraform-deploy-from-pipeline")),
        ]);
        assert_eq!(deployed, published, "deployed definition equals the published one after substitution");
        let tags = c.sfn.list_tags_for_resource().resource_arn(&sm_arn).send().await.unwrap();
        check_tags(tags.tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())).collect(), env);

        // the schedule and its target
        let rule = c.events.describe_rule().name(n("should-i-deploy")).send().await.unwrap();
        assert_eq!(rule.schedule_expression(), Some(rate));
        let tags = c.events.list_tags_for_resource().resource_arn(rule.arn().unwrap()).send().await.unwrap();
        check_tags(tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(), env);
        let targets = c.events.list_targets_by_rule().rule(n("should-i-deploy")).send().await.unwrap();
        assert_eq!(targets.targets().len(), 1);
        let t = &targets.targets()[0];
        assert_eq!(t.id(), "step-function-should-i-deploy");
        assert_eq!(t.arn(), sm_arn);
        assert_eq!(t.role_arn(), Some(format!("arn:aws:iam::{account}:role/{}", n("eventbridge-should-i-deploy")).as_str()));
    });
    let doc = check_role(c, &n("eventbridge-should-i-deploy"), "events.amazonaws.com", env);
    assert_eq!(doc["Statement"], json!([{"Sid": "IAMActions", "Effect": "Allow", "Action": ["states:StartExecution"], "Resource": sm_arn}]));
}

/// Nothing of any stack is left in the account: roles, users, customer policies, state
/// machines, rules, connections (and the secrets connections create).
fn check_nothing_left(c: &Clients, port: u16) {
    c.block_on(async {
        assert!(c.iam.list_roles().send().await.unwrap().roles().is_empty());
        assert!(c.iam.list_users().send().await.unwrap().users().is_empty());
        let local = c.iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).send().await.unwrap();
        assert!(local.policies().is_empty(), "{:?}", local.policies());
        assert!(c.sfn.list_state_machines().send().await.unwrap().state_machines().is_empty());
        assert!(c.events.list_rules().send().await.unwrap().rules().is_empty());
        assert!(c.events.list_connections().send().await.unwrap().connections().is_empty());
    });
    // Secrets Manager is checked over its JSON API directly (no SDK crate for it here).
    let body = r#"{}"#;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "POST / HTTP/1.0\r\nHost: secretsmanager.us-east-1.amazonaws.com\r\nX-Amz-Target: secretsmanager.ListSecrets\r\nContent-Type: application/x-amz-json-1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let json: Value = serde_json::from_str(out.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(json["SecretList"], json!([]), "connection secrets are gone");
}

#[test]
fn should_i_deploy_up_noop_update_destroy() {
    let moto = Moto::start();
    let project = project_copy();
    let state = tempfile::tempdir().unwrap();
    let deploy = || Deploy::new(project.path(), state.path(), &moto.url());
    let c = Clients::new(&moto.url());

    // up: everything EXERCISES.md lists
    let out = deploy().run(&["up", STACK, "--yes"]).success();
    assert!(out.stdout.contains("Plan: 12 to create"), "{out:?}");
    check_should_i_deploy(&c, "default", "", "rate(30 minutes)");
    let outputs = deploy().run(&["outputs", STACK, "--output", "json"]).success().json();
    assert_eq!(outputs["state_machine_arn"], "arn:aws:states:us-east-1:123456789012:stateMachine:should-i-deploy");
    let list = deploy().run(&["list", "--output", "json"]).success().json();
    let row = list.as_array().unwrap().iter().find(|r| r["stack"] == STACK).unwrap().clone();
    assert_eq!((row["env"].clone(), row["status"].clone(), row["resources"].clone()), (json!("default"), json!("deployed"), json!(12)));

    // a second up reports no changes and makes no mutating call
    moto.start_recording();
    let out = deploy().run(&["up", STACK, "--yes"]).success();
    assert!(out.stdout.contains("No changes: 12 resources up to date."), "{out:?}");
    let ops = moto.recorded_operations();
    assert!(ops.iter().any(|o| o == "DescribeStateMachine"), "the recorder saw the reads: {ops:?}");
    let mutating: Vec<&String> = ops.iter().filter(|o| is_mutating(o)).collect();
    assert!(mutating.is_empty(), "no mutating call, but: {mutating:?}");

    // a variable change: the plan shows it, up updates the rule in place with one call
    let out = deploy().run(&["plan", STACK, "--var", "frequency_in_minutes=5"]).success();
    assert!(out.stdout.contains("~ schedule_expression: \"rate(30 minutes)\" -> \"rate(5 minutes)\""), "{out:?}");
    assert!(out.stdout.contains("Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 11 unchanged."), "{out:?}");
    moto.start_recording();
    deploy().run(&["up", STACK, "--var", "frequency_in_minutes=5", "--yes"]).success();
    let ops = moto.recorded_operations();
    assert_eq!(ops.iter().filter(|o| is_mutating(o)).collect::<Vec<_>>(), vec!["PutRule"], "{ops:?}");
    check_should_i_deploy(&c, "default", "", "rate(5 minutes)");
    deploy().run(&["up", STACK, "--var", "frequency_in_minutes=1", "--yes"]).success();
    check_should_i_deploy(&c, "default", "", "rate(1 minute)");

    // a definition template edit: the plan shows a readable diff; one UpdateStateMachine
    let tpl = project.path().join("templates/should-i-deploy/jsonata.json");
    let text = std::fs::read_to_string(&tpl).unwrap();
    std::fs::write(&tpl, text.replace("\"MaxAttempts\": 3", "\"MaxAttempts\": 5")).unwrap();
    let out = deploy().run(&["plan", STACK, "--var", "frequency_in_minutes=1"]).success();
    assert!(out.stdout.contains("~ definition:"), "{out:?}");
    assert!(out.stdout.contains("-           \"MaxAttempts\": 3\n") && out.stdout.contains("+           \"MaxAttempts\": 5\n"), "{out:?}");
    moto.start_recording();
    deploy().run(&["up", STACK, "--var", "frequency_in_minutes=1", "--yes"]).success();
    let ops = moto.recorded_operations();
    assert_eq!(ops.iter().filter(|o| is_mutating(o)).collect::<Vec<_>>(), vec!["UpdateStateMachine"], "{ops:?}");
    let def: Value = c.block_on(async {
        let d = c.sfn.describe_state_machine().state_machine_arn(outputs["state_machine_arn"].as_str().unwrap()).send().await.unwrap();
        serde_json::from_str(d.definition()).unwrap()
    });
    assert_eq!(def["States"]["Call Should I deploy API"]["Retry"][0]["MaxAttempts"], 5);
    // whitespace and key order are not changes
    let text = std::fs::read_to_string(&tpl).unwrap();
    let reordered = text.replacen(
        "\"QueryLanguage\": \"JSONata\",\n  \"Comment\": \"A description of my state machine\",",
        "\"Comment\": \"A description of my state machine\",\n\n\n      \"QueryLanguage\":    \"JSONata\",",
        1,
    );
    assert_ne!(reordered, text, "the template starts as published");
    std::fs::write(&tpl, reordered).unwrap();
    let out = deploy().run(&["plan", STACK, "--var", "frequency_in_minutes=1"]).success();
    assert!(out.stdout.contains("No changes"), "whitespace and key order are not changes: {out:?}");

    // destroy removes everything, policy versions and attachments included
    let out = deploy().run(&["destroy", STACK, "--yes"]).success();
    assert!(out.stdout.contains("12 to delete"), "{out:?}");
    check_nothing_left(&c, moto.port);
    let list = deploy().run(&["list", "--output", "json"]).success().json();
    let row = list.as_array().unwrap().iter().find(|r| r["stack"] == STACK).unwrap().clone();
    assert_eq!(row["status"], "not deployed");
    let out = deploy().run(&["outputs", STACK]).code(2);
    assert!(out.stderr.contains("is not deployed in env `default`"), "{out:?}");
}

fn role_names(c: &Clients) -> Vec<String> {
    c.block_on(async { c.iam.list_roles().send().await.unwrap().roles().iter().map(|r| r.role_name().to_string()).collect() })
}

#[test]
fn envs_are_isolated_and_destroy_without_stack_removes_all_of_an_env() {
    let moto = Moto::start();
    let state = tempfile::tempdir().unwrap();
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deploy = || Deploy::new(project, state.path(), &moto.url());
    let c = Clients::new(&moto.url());

    deploy().run(&["up", STACK, "--yes"]).success();
    deploy().run(&["up", STACK, "--yes", "--env", "pr-1", "--var", "frequency_in_minutes=7"]).success();
    check_should_i_deploy(&c, "default", "", "rate(30 minutes)");
    check_should_i_deploy(&c, "pr-1", "pr-1-", "rate(7 minutes)");

    let out = deploy().run(&["destroy", "--yes", "--env", "pr-1"]).success();
    assert!(out.stdout.contains("12 to delete"), "{out:?}");
    let mut roles = role_names(&c);
    roles.sort();
    assert_eq!(roles, vec!["eventbridge-should-i-deploy", "sfn-should-i-deploy"], "the default env is untouched");
    check_should_i_deploy(&c, "default", "", "rate(30 minutes)");

    deploy().run(&["destroy", "--yes"]).success();
    check_nothing_left(&c, moto.port);
    let out = deploy().run(&["destroy", "--yes"]).success();
    assert!(out.stdout.contains("Nothing is deployed in env default."), "{out:?}");
}

#[test]
fn without_terminal_or_yes_nothing_changes() {
    let moto = Moto::start();
    let state = tempfile::tempdir().unwrap();
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Deploy::new(project, state.path(), &moto.url()).run(&["up", STACK]).code(5);
    assert!(out.stdout.contains("Plan: 12 to create"), "the plan is shown: {out:?}");
    assert!(out.stderr.contains("nothing was changed: there is no terminal to confirm on"), "{out:?}");
    assert!(out.stderr.contains("run again with --yes"), "{out:?}");
    let c = Clients::new(&moto.url());
    assert!(role_names(&c).is_empty());
    Deploy::new(project, state.path(), &moto.url()).run(&["up", STACK, "--yes"]).success();
    let out = Deploy::new(project, state.path(), &moto.url()).run(&["destroy"]).code(5);
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
    let moto = Moto::start();
    let state = tempfile::tempdir().unwrap();
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deploy = || Deploy::new(project, state.path(), &moto.url());
    let c = Clients::new(&moto.url());
    deploy().run(&["up", STACK, "--yes"]).success();

    let pending = |v: &mut Value, id: &str| {
        v["resources"][id]["status"] = json!("pending");
        v["resources"][id]["outputs"] = json!({});
    };
    edit_state(state.path(), "default", |v| {
        pending(v, "state_machine");
        pending(v, "sfn_role");
        // and one whose create never reached AWS
        v["resources"]["target"]["status"] = json!("pending");
    });
    c.block_on(async {
        c.events.remove_targets().rule("should-i-deploy").ids("step-function-should-i-deploy").send().await.unwrap();
    });
    moto.start_recording();
    let out = deploy().run(&["up", STACK, "--yes"]).success();
    let mutating: Vec<String> = moto.recorded_operations().into_iter().filter(|o| is_mutating(o)).collect();
    assert_eq!(mutating, vec!["CreateRole", "CreateStateMachine", "PutTargets"], "adopting changes nothing else: {out:?}");
    assert!(out.stdout.contains("an earlier run was interrupted while creating it"), "{out:?}");
    assert!(out.stdout.contains("3 changes applied"), "{out:?}");
    // CreateStateMachine with an identical name and definition is idempotent on AWS (and moto):
    // it answers with the existing machine rather than an error; either way it is recorded.
    assert!(out.stderr.contains("state_machine created"), "{out:?}");
    assert!(out.stderr.contains("sfn_role created (adopted existing)"), "{out:?}");
    check_should_i_deploy(&c, "default", "", "rate(30 minutes)");
    let out = deploy().run(&["up", STACK, "--yes"]).success();
    assert!(out.stdout.contains("No changes"), "{out:?}");

    edit_state(state.path(), "default", |v| pending(v, "state_machine"));
    deploy().run(&["destroy", STACK, "--yes"]).success();
    check_nothing_left(&c, moto.port);
}

#[test]
fn a_resource_created_by_someone_else_is_not_taken_over() {
    let moto = Moto::start();
    let state = tempfile::tempdir().unwrap();
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = Clients::new(&moto.url());
    c.block_on(async {
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        c.iam.create_role().role_name("sfn-should-i-deploy").assume_role_policy_document(trust.to_string()).send().await.unwrap();
    });
    let out = Deploy::new(project, state.path(), &moto.url()).run(&["up", STACK, "--yes"]).code(4);
    assert!(out.stderr.contains("iam_role `sfn-should-i-deploy` already exists and was not created by stack `should-i-deploy` env `default`"), "{out:?}");
    // what depends on it was skipped, independent work finished and is recorded
    assert!(out.stderr.contains("state_machine skipped"), "{out:?}");
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(state.path().join("default/should-i-deploy.json")).unwrap()).unwrap();
    assert_eq!(recorded["resources"]["deploy_user"]["status"], "created");
    assert!(recorded["resources"].get("sfn_role").is_none(), "the foreign role is not recorded as ours");
    // a --env copy deploys fine beside it
    Deploy::new(project, state.path(), &moto.url()).run(&["up", STACK, "--yes", "--env", "mine"]).success();
}

/// Behaviour moto does not show, injected in front of it: a new role that cannot be assumed
/// yet (IAM propagation) and throttling. Both are retried with backoff; a real error is not.
#[test]
fn propagation_delays_and_throttling_are_retried_and_real_errors_stop_only_dependents() {
    let moto = Moto::start();
    let state = tempfile::tempdir().unwrap();
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let proxy = Proxy::start(&moto, json!([
        {"operation": "CreateStateMachine", "times": 3, "code": "AccessDeniedException",
         "message": "Neither the global service principal states.amazonaws.com, nor the regional one is authorized to assume the provided role."},
        {"operation": "CreateRole", "times": 2, "protocol": "query", "code": "Throttling", "message": "Rate exceeded"}
    ]));
    let out = Deploy::new(project, state.path(), &proxy.url()).run(&["up", STACK, "--yes"]).success();
    let injected = proxy.injected();
    assert_eq!(injected.iter().filter(|o| *o == "CreateStateMachine").count(), 3, "{injected:?}");
    assert_eq!(injected.iter().filter(|o| *o == "CreateRole").count(), 2, "{injected:?}");
    assert!(out.stderr.contains("state_machine created"), "{out:?}");
    check_should_i_deploy(&Clients::new(&moto.url()), "default", "", "rate(30 minutes)");
    drop(proxy);

    // A real error on one resource: its dependents are skipped, the rest finishes; exit 4.
    let state2 = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&moto, json!([
        {"operation": "CreateStateMachine", "times": 1, "code": "InvalidDefinition", "message": "Invalid State Machine Definition"}
    ]));
    let out = Deploy::new(project, state2.path(), &proxy.url()).run(&["up", STACK, "--yes", "--env", "b"]).code(4);
    assert!(out.stderr.contains("state_machine failed to create: CreateStateMachine failed: InvalidDefinition: Invalid State Machine Definition"), "{out:?}");
    for skipped in ["target", "eventbridge_policy", "eventbridge_policy_attachment"] {
        assert!(out.stderr.contains(&format!("{skipped} skipped")), "{skipped}: {out:?}");
    }
    assert!(out.stderr.contains("1 of the changes failed, 3 skipped after them"), "{out:?}");
    assert!(out.stderr.contains("rule created") && out.stderr.contains("eventbridge_role created"), "{out:?}");
    // running again finishes the job
    let out = Deploy::new(project, state2.path(), &proxy.url()).run(&["up", STACK, "--yes", "--env", "b"]).success();
    assert!(out.stdout.contains("Plan: 4 to create, 0 to update, 0 to replace, 0 to delete, 8 unchanged."), "{out:?}");
    check_should_i_deploy(&Clients::new(&moto.url()), "b", "b-", "rate(30 minutes)");
}
