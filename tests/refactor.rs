//! Changing a live stack without replacing what it holds: `[[moved]]`, `[[removed]]`,
//! `--target` / `--exclude` (and saved partial plans), `deploy state list | show | mv | rm`.
//! The real binary against moto, whose recorder counts the calls that change anything.

mod support;

use serde_json::Value;
use std::path::Path;
use support::*;

const ACCOUNT: &str = "123456789012";

fn edit(project: &Path, rel: &str, f: impl Fn(String) -> String) {
    let path = project.join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    let new = f(text.clone());
    assert_ne!(new, text, "{rel}: the edit changed nothing");
    std::fs::write(&path, new).unwrap();
}

fn state_of(w: &World, stack: &str) -> Value {
    let path = w.state.path().join(format!("default/{stack}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The state machine's id renamed with a `[[moved]]` entry: nothing to create or delete, no
/// call that changes anything, the same ARN and executions, and then nothing more to do.
#[test]
fn a_moved_state_machine_keeps_its_arn_and_executions() {
    let w = World::with_project_copy();
    w.deploy()
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    let arn = format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:should-i-deploy");
    let executions = || {
        w.c.block_on(async {
            let out =
                w.c.sfn
                    .list_executions()
                    .state_machine_arn(&arn)
                    .send()
                    .await
                    .unwrap();
            let mut arns: Vec<String> = out
                .executions()
                .iter()
                .map(|e| e.execution_arn().to_string())
                .collect();
            arns.sort();
            arns
        })
    };
    w.c.block_on(
        w.c.sfn
            .start_execution()
            .state_machine_arn(&arn)
            .name("before-the-move")
            .send(),
    )
    .unwrap();
    let before = executions();
    assert_eq!(before.len(), 1);

    edit(&w.project, "stacks/should-i-deploy/stack.toml", |t| {
        t.replace("[resources.state_machine", "[resources.approval_machine")
            .replace("${state_machine.", "${approval_machine.")
            + "\n[[moved]]\nfrom = \"state_machine\"\nto = \"approval_machine\"\n"
    });
    let plan = w
        .deploy()
        .run(&["plan", "should-i-deploy", "-o", "json"])
        .success()
        .json();
    let counts = &plan["plans"][0];
    let moved: Vec<&Value> = counts["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["moved_from"].is_string())
        .collect();
    assert_eq!(moved.len(), 1, "{plan}");
    assert_eq!(moved[0]["id"], "approval_machine");
    assert_eq!(moved[0]["moved_from"], "state_machine");
    let acting: Vec<&Value> = counts["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] != "noop")
        .collect();
    assert!(
        acting.is_empty(),
        "0 to create, update or delete: {acting:?}"
    );
    let text = w.deploy().run(&["plan", "should-i-deploy"]).success();
    assert!(
        text.stdout
            .contains("~>  moved    sfn_state_machine.approval_machine"),
        "{text:?}"
    );
    assert!(
        text.stdout.contains(
            "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 1 moved, 11 unchanged."
        ),
        "{text:?}"
    );

    w.moto.start_recording();
    w.deploy()
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    assert_eq!(mutating_calls(&w.moto), Vec::<String>::new());
    let st = state_of(&w, "should-i-deploy");
    assert!(st["resources"].get("state_machine").is_none(), "{st}");
    assert_eq!(
        st["resources"]["approval_machine"]["outputs"]["arn"],
        arn.as_str()
    );
    // what depended on it depends on it under its new id
    assert!(
        st["resources"]["target"]["depends_on"]
            .as_array()
            .unwrap()
            .contains(&"approval_machine".into()),
        "{st}"
    );
    assert_eq!(executions(), before);

    // the entry stays in the manifest, with nothing left to move: a note, no change
    let out = w
        .deploy()
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
    assert!(out.stdout.contains("records no `state_machine`"), "{out:?}");
}

/// Moves the manifest gets wrong are refused as it loads, at the line, naming both places.
#[test]
fn moves_that_cannot_hold_are_refused_where_they_are_written() {
    let w = World::with_project_copy();
    let stack = "stacks/should-i-deploy/stack.toml";
    let original = std::fs::read_to_string(w.project.join(stack)).unwrap();
    let try_with = |extra: &str| {
        std::fs::write(w.project.join(stack), format!("{original}\n{extra}")).unwrap();
        w.deploy().run(&["plan", "should-i-deploy"]).code(2)
    };
    let out = try_with(
        "[[moved]]\nfrom = \"old\"\nto = \"rule\"\n[[moved]]\nfrom = \"older\"\nto = \"rule\"\n",
    );
    assert!(
        out.stderr.contains("two `[[moved]]` entries end at `rule`"),
        "{out:?}"
    );
    assert!(out.stderr.contains("stack.toml:"), "{out:?}");
    let out = try_with("[[moved]]\nfrom = \"rule\"\nto = \"target\"\n");
    assert!(
        out.stderr.contains("from `rule`, which is still declared"),
        "{out:?}"
    );
    let out = try_with("[[moved]]\nfrom = \"gone\"\nto = \"nowhere\"\n");
    assert!(
        out.stderr
            .contains("to `nowhere`, which this stack does not declare"),
        "{out:?}"
    );
    let out = try_with("[[removed]]\nfrom = \"rule\"\n");
    assert!(
        out.stderr
            .contains("`[[removed]]` names `rule`, which is still declared"),
        "{out:?}"
    );

    // a move onto an id that state already records: refused when planning, nothing changed
    std::fs::write(w.project.join(stack), &original).unwrap();
    w.deploy()
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    edit(&w.project, stack, |t| {
        t.replace("[resources.target]", "[resources.rule_target]")
            + "\n[[moved]]\nfrom = \"target\"\nto = \"rule_target\"\n"
    });
    let plan = w.deploy().run(&["plan", "should-i-deploy"]).success();
    assert!(plan.stdout.contains("moved from target"), "{plan:?}");
    let st = std::fs::read_to_string(w.state.path().join("default/should-i-deploy.json")).unwrap();
    let mut v: Value = serde_json::from_str(&st).unwrap();
    let copy = v["resources"]["target"].clone();
    v["resources"]["rule_target"] = copy;
    std::fs::write(
        w.state.path().join("default/should-i-deploy.json"),
        serde_json::to_string_pretty(&v).unwrap(),
    )
    .unwrap();
    let out = w.deploy().run(&["plan", "should-i-deploy"]).code(2);
    assert!(
        out.stderr.contains("state already records a `rule_target`"),
        "{out:?}"
    );
    assert!(out.stderr.contains("stack.toml:"), "{out:?}");
}

/// `[[removed]]` with destroy = false: the topic leaves state and stays in moto without
/// deploy's tags; later runs never touch it.
#[test]
fn a_removed_topic_stays_in_aws_untagged_and_untouched() {
    let w = World::with_project_copy();
    let email = ["--var", "email=approver@example.com"];
    w.deploy()
        .run(&[&["up", "create-new-user", "--yes"][..], &email].concat())
        .success();
    let topic = format!("arn:aws:sns:us-east-1:{ACCOUNT}:create-new-user");
    edit(&w.project, "stacks/create-new-user/stack.toml", |t| {
        t.replace(
            "[resources.topic]\nkind = \"sns_topic\"\nname = \"create-new-user\"\n",
            "",
        )
        .replace(
            "${topic.arn}",
            "arn:${partition}:sns:${region}:${account_id}:create-new-user",
        ) + "\n[[removed]]\nfrom = \"topic\"\n"
    });
    let plan = w
        .deploy()
        .run(&[&["plan", "create-new-user"][..], &email].concat())
        .success();
    assert!(
        plan.stdout.contains("=>  forget   sns_topic.topic"),
        "{plan:?}"
    );
    assert!(plan.stdout.contains("1 to forget"), "{plan:?}");

    w.moto.start_recording();
    w.deploy()
        .run(&[&["up", "create-new-user", "--yes"][..], &email].concat())
        .success();
    assert_eq!(mutating_calls(&w.moto), vec!["UntagResource"]);
    let tags = w.c.block_on(async {
        let out =
            w.c.sns
                .list_tags_for_resource()
                .resource_arn(&topic)
                .send()
                .await
                .unwrap();
        out.tags()
            .iter()
            .map(|t| t.key().to_string())
            .collect::<Vec<_>>()
    });
    assert!(!tags.iter().any(|k| k.starts_with("deploy:")), "{tags:?}");
    assert!(tags.contains(&"Project".to_string()), "{tags:?}");
    assert!(
        state_of(&w, "create-new-user")["resources"]
            .get("topic")
            .is_none()
    );

    // neither a further up nor destroy touches it
    w.moto.start_recording();
    let out = w
        .deploy()
        .run(&[&["up", "create-new-user", "--yes"][..], &email].concat())
        .success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
    assert_eq!(mutating_calls(&w.moto), Vec::<String>::new());
    w.moto.start_recording();
    w.deploy()
        .run(&["destroy", "create-new-user", "--yes"])
        .success();
    let calls = mutating_calls(&w.moto);
    assert!(!calls.iter().any(|c| c.contains("Topic")), "{calls:?}");
    w.c.block_on(w.c.sns.get_topic_attributes().topic_arn(&topic).send())
        .expect("the topic is still there");
}

fn rule_rate(w: &World) -> String {
    w.c.block_on(w.c.events.describe_rule().name("should-i-deploy").send())
        .unwrap()
        .schedule_expression()
        .unwrap()
        .to_string()
}

fn definition_comment(w: &World) -> String {
    let arn = format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:should-i-deploy");
    let d =
        w.c.block_on(
            w.c.sfn
                .describe_state_machine()
                .state_machine_arn(arn)
                .send(),
        )
        .unwrap();
    let def: Value = serde_json::from_str(d.definition()).unwrap();
    def["Comment"].as_str().unwrap().to_string()
}

/// `--target` takes the state machine (and what it needs), `--exclude` leaves the rule out,
/// and a saved partial plan applies exactly its part.
#[test]
fn target_and_exclude_change_part_of_a_stack() {
    let w = World::with_project_copy();
    w.deploy()
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    let comment = |c: &str| {
        let c = c.to_string();
        move |t: String| {
            let at = t.find("\"Comment\": \"").unwrap() + "\"Comment\": \"".len();
            let end = at + t[at..].find('"').unwrap();
            format!("{}{c}{}", &t[..at], &t[end..])
        }
    };
    edit(
        &w.project,
        "templates/should-i-deploy/jsonata.json",
        comment("first"),
    );
    fn args<'a>(head: &[&'a str]) -> Vec<&'a str> {
        [head, &["--var", "frequency_in_minutes=10"][..]].concat()
    }

    let plan = w
        .deploy()
        .run(&args(&[
            "plan",
            "should-i-deploy",
            "--target",
            "state_machine",
        ]))
        .success();
    assert!(
        plan.stdout
            .contains("partial plan (--target state_machine)"),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains("left out: update events_rule.rule"),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("~   update   sfn_state_machine.state_machine"),
        "{plan:?}"
    );
    assert!(
        !plan.stdout.contains("~   update   events_rule.rule"),
        "{plan:?}"
    );
    w.moto.start_recording();
    w.deploy()
        .run(&args(&[
            "up",
            "should-i-deploy",
            "--target",
            "state_machine",
            "--yes",
        ]))
        .success();
    assert!(
        !mutating_calls(&w.moto).iter().any(|c| c == "PutRule"),
        "{:?}",
        mutating_calls(&w.moto)
    );
    assert_eq!(definition_comment(&w), "first");
    assert_eq!(rule_rate(&w), "rate(30 minutes)");

    // the same two changes again, the rule excluded: the state machine alone
    edit(
        &w.project,
        "templates/should-i-deploy/jsonata.json",
        comment("second"),
    );
    w.deploy()
        .run(&args(&[
            "up",
            "should-i-deploy",
            "--exclude",
            "rule",
            "--yes",
        ]))
        .success();
    assert_eq!(definition_comment(&w), "second");
    assert_eq!(rule_rate(&w), "rate(30 minutes)");

    // a saved partial plan: the rule (and what it needs) only, and exactly that
    let file = w.state.path().join("rule.plan.json");
    let file = file.to_str().unwrap();
    edit(
        &w.project,
        "templates/should-i-deploy/jsonata.json",
        comment("third"),
    );
    w.deploy()
        .run(&args(&[
            "plan",
            "should-i-deploy",
            "--target",
            "rule",
            "--out",
            file,
        ]))
        .success();
    let out = w.deploy().run(&args(&["up", "--plan", file])).success();
    assert!(
        out.stdout.contains("partial plan (--target rule)"),
        "{out:?}"
    );
    assert_eq!(rule_rate(&w), "rate(10 minutes)");
    assert_eq!(definition_comment(&w), "second");

    // an id that is not the stack's: refused before anything
    let out = w
        .deploy()
        .run(&args(&[
            "plan",
            "should-i-deploy",
            "--target",
            "state_machin",
        ]))
        .code(2);
    assert!(
        out.stderr
            .contains("no resource `state_machin` to target or exclude"),
        "{out:?}"
    );
    assert!(out.stderr.contains("state_machine"), "{out:?}");

    // the rest, whole
    w.deploy()
        .run(&args(&["up", "should-i-deploy", "--yes"]))
        .success();
    assert_eq!(definition_comment(&w), "third");
}

const BUCKET: &str = "deploy-state";

fn s3_text(w: &World, key: &str) -> Option<String> {
    String::from_utf8(s3_object(&w.c, BUCKET, key)?).ok()
}

/// `deploy state` on S3 state: list and show read it; mv and rm rewrite it under the lock,
/// keeping the document they replace as a backup, and refuse while another run holds it.
#[test]
fn state_commands_repair_s3_state_with_a_backup_and_respect_the_lock() {
    let w = World::new();
    w.c.block_on(w.c.s3.create_bucket().bucket(BUCKET).send())
        .unwrap();
    let deploy = || w.deploy().env("DEPLOY_STATE", "s3://deploy-state/repair");
    deploy().run(&["up", "should-i-deploy", "--yes"]).success();

    let list = deploy()
        .run(&["state", "list", "should-i-deploy", "-o", "json"])
        .success()
        .json();
    let ids: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 12, "{list}");
    assert!(ids.contains(&"connection"));
    let show = deploy()
        .run(&["state", "show", "should-i-deploy", "connection"])
        .success();
    assert!(
        show.stdout.contains("\"password\": \"(sensitive)\""),
        "{show:?}"
    );
    assert!(!show.stdout.contains("\"password\": \"fake\""), "{show:?}");

    let key = "repair/default/should-i-deploy.json";
    let before = s3_text(&w, key).unwrap();
    w.moto.start_recording();
    let out = deploy()
        .run(&["state", "mv", "should-i-deploy", "rule", "schedule"])
        .success();
    assert!(
        out.stderr
            .contains("s3://deploy-state/repair/default/should-i-deploy.json.backup"),
        "{out:?}"
    );
    // nothing in AWS but the state bucket
    let calls = mutating_calls(&w.moto);
    assert!(calls.iter().all(|c| c.contains("Object")), "{calls:?}");
    let backup: Value =
        serde_json::from_str(&s3_text(&w, &format!("{key}.backup")).unwrap()).unwrap();
    assert_eq!(backup, serde_json::from_str::<Value>(&before).unwrap());
    let after: Value = serde_json::from_str(&s3_text(&w, key).unwrap()).unwrap();
    assert!(after["resources"].get("rule").is_none());
    assert_eq!(after["resources"]["schedule"]["kind"], "events_rule");
    assert!(
        after["resources"]["target"]["depends_on"]
            .as_array()
            .unwrap()
            .contains(&"schedule".into())
    );

    deploy()
        .run(&["state", "rm", "should-i-deploy", "schedule"])
        .success();
    let after: Value = serde_json::from_str(&s3_text(&w, key).unwrap()).unwrap();
    assert!(after["resources"].get("schedule").is_none());
    // forgotten, not deleted
    w.c.block_on(w.c.events.describe_rule().name("should-i-deploy").send())
        .unwrap();

    // another run holds the lock: refused, exit 6, nothing written
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let holder = format!(
        r#"{{"who": "ci", "host": "runner-3", "pid": 4242, "command": "up", "since": {since}}}"#
    );
    w.c.block_on(
        w.c.s3
            .put_object()
            .bucket(BUCKET)
            .key("repair/default/should-i-deploy.lock")
            .body(holder.into_bytes().into())
            .send(),
    )
    .unwrap();
    let held = s3_text(&w, key).unwrap();
    let out = deploy()
        .run(&["state", "rm", "should-i-deploy", "target"])
        .code(6);
    assert!(out.stderr.contains("held by ci on runner-3"), "{out:?}");
    let out = deploy()
        .run(&["state", "mv", "should-i-deploy", "target", "t"])
        .code(6);
    assert!(
        out.stderr
            .contains("is being changed by another deploy run"),
        "{out:?}"
    );
    assert_eq!(s3_text(&w, key).unwrap(), held);
}

/// A resource split out into a stack of its own: the new stack's `[[moved]]` names the stack
/// it was in; its record changes stacks, nothing is created or deleted, and the stack it left
/// no longer records it.
#[test]
fn a_resource_moves_to_another_stack_of_the_project() {
    let w = World::with_project_copy();
    w.deploy()
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    let dir = w.project.join("stacks/schedule");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("stack.toml"),
        "description = \"the schedule, split out\"\n\n[resources.rule]\nkind = \"events_rule\"\nname = \"should-i-deploy\"\nrate_minutes = 30\n\n[[moved]]\nfrom_stack = \"should-i-deploy\"\nfrom = \"rule\"\nto = \"rule\"\n",
    )
    .unwrap();
    edit(&w.project, "stacks/should-i-deploy/stack.toml", |t| {
        t.replace(
            "[resources.rule]\nkind = \"events_rule\"\nname = \"should-i-deploy\"\nrate_minutes = \"${var.frequency_in_minutes}\"\n",
            "",
        )
        .replace("rule = \"${rule.name}\"", "rule = \"should-i-deploy\"")
        .replace("rule_name = \"${rule.name}\"\n", "")
    });
    let plan = w.deploy().run(&["plan", "schedule"]).success();
    assert!(
        plan.stdout.contains("moved from should-i-deploy.rule"),
        "{plan:?}"
    );
    assert!(plan.stdout.contains("0 to create"), "{plan:?}");
    w.moto.start_recording();
    w.deploy().run(&["up", "schedule", "--yes"]).success();
    // the tags say which stack it is in now; nothing is created or deleted
    let calls = mutating_calls(&w.moto);
    assert!(
        !calls.is_empty()
            && calls
                .iter()
                .all(|c| c == "TagResource" || c == "UntagResource"),
        "{calls:?}"
    );
    assert!(state_of(&w, "schedule")["resources"]["rule"].is_object());
    assert!(
        state_of(&w, "should-i-deploy")["resources"]
            .get("rule")
            .is_none()
    );
    let out = w
        .deploy()
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
    let out = w.deploy().run(&["up", "schedule", "--yes"]).success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
}
