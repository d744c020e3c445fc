//! `deploy validate`: the published stacks are clean; every file of the broken corpus
//! (tests/fixtures/invalid, each naming in its Comment the finding it must produce) produces
//! exactly that finding; `plan` and `up` refuse a stack whose definition has an error.

mod support;

use serde_json::Value;
use std::path::Path;
use support::*;

fn deploy_offline(project: &Path) -> (tempfile::TempDir, Deploy) {
    let state = tempfile::tempdir().unwrap();
    let d = Deploy::new(
        project,
        state.path(),
        &format!("http://127.0.0.1:{}", free_port()),
    );
    (state, d)
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_four_stacks_validate_without_errors() {
    let (_s, d) = deploy_offline(repo());
    let out = d.run(&["validate", "--output", "json"]).success();
    let findings = out.json()["findings"].as_array().unwrap().clone();
    // The one thing to say about the published stacks: the tutorial grants the resize-image
    // workflow's role s3:List*, s3:Get* and s3:Put*, which none of its states uses.
    let said: Vec<(String, String)> = findings
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = ["s3:List*", "s3:Get*", "s3:Put*"]
        .iter()
        .map(|a| {
            (
                "WARNING".to_string(),
                format!("policy `sfn_policy` grants {a} to the role `sfn-resize-profile-picture`, and no state of `state_machine` uses it"),
            )
        })
        .collect();
    assert_eq!(said, want);
}

#[test]
fn a_missing_permission_is_an_error_at_the_task() {
    let (_s, d) = deploy_offline(&repo().join("tests/fixtures/broken"));
    let out = d.run(&["validate", "missing-permission"]).code(2);
    assert!(
        out.stderr.contains("error: the role `sfn-missing-permission` is not granted sns:Publish, which this task needs (on (known after apply: topic.arn)) (stack missing-permission)\n --> templates/publish.json:7:19\n"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ in state `Notify`"),
        "{out:?}"
    );
    assert!(out.stderr.contains("warning: policy `policy` grants iam:CreateUser to the role `sfn-missing-permission`, and no state of `machine` uses it (stack missing-permission)\n  --> stacks/missing-permission/stack.toml:15:1\n"), "{out:?}");
    let (_s, d) = deploy_offline(&repo().join("tests/fixtures/broken"));
    let policy = d.run(&["policy", "missing-permission"]).success();
    let doc: Value = serde_json::from_str(&policy.stdout).unwrap();
    assert_eq!(
        doc["Statement"],
        serde_json::json!([{"Effect": "Allow", "Action": ["sns:Publish"], "Resource": "(known after apply: topic.arn)"}])
    );
}

#[test]
fn every_broken_definition_gets_its_finding() {
    let dir = repo().join("tests/fixtures/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus is there");
    for f in files {
        let def: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let expect = def["Comment"]
            .as_str()
            .unwrap()
            .strip_prefix("EXPECT ")
            .unwrap();
        let (severity, rest) = expect.split_once(" at ").unwrap();
        let (pointer, text) = rest.split_once(": ").unwrap();
        let (_s, d) = deploy_offline(repo());
        let out = d.run(&[
            "validate",
            "--file",
            f.to_str().unwrap(),
            "--output",
            "json",
        ]);
        assert_eq!(
            out.code,
            if severity == "ERROR" { 2 } else { 0 },
            "{}: {out:?}",
            f.display()
        );
        let findings = out
            .stdout
            .lines()
            .next()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .unwrap();
        let hit = findings["findings"].as_array().unwrap().iter().any(|x| {
            x["severity"] == severity
                && x["pointer"] == pointer
                && x["message"].as_str().unwrap().contains(text)
                && x["file"] == f.to_str().unwrap()
        });
        assert!(
            hit,
            "{}: expected {severity} at {pointer}: {text}\ngot {}",
            f.display(),
            serde_json::to_string_pretty(&findings).unwrap()
        );
    }
}

#[test]
fn plan_and_up_refuse_a_definition_with_an_error_before_any_api_call() {
    let project = project_copy();
    let tpl = project
        .path()
        .join("templates/should-i-deploy/jsonata.json");
    std::fs::write(
        &tpl,
        std::fs::read_to_string(&tpl).unwrap().replace(
            "\"Next\": \"ListAttachedUserPolicies\"",
            "\"Next\": \"ListAttachedUserPolicie\"",
        ),
    )
    .unwrap();
    for cmd in [
        vec!["plan", "should-i-deploy"],
        vec!["up", "should-i-deploy", "--yes"],
    ] {
        let (_s, d) = deploy_offline(project.path());
        let out = d.run(&cmd).code(2);
        assert!(
            out.stderr.contains("error: `ListAttachedUserPolicie` is not a state here (did you mean `ListAttachedUserPolicies`?) (stack should-i-deploy)\n  --> templates/should-i-deploy/jsonata.json:27:15\n"),
            "{out:?}"
        );
        assert!(
            out.stderr
                .contains("definition error(s): nothing was deployed"),
            "{out:?}"
        );
    }
}

/// What asl-validator 4.0.0 makes of the same corpus (the README's comparison table): it rejects
/// every broken file except these eight, and accepts the five published definitions.
#[test]
fn comparison_with_asl_validator() {
    let bin = std::env::var("DEPLOY_TEST_ASL_VALIDATOR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| repo().join("target/asl-validator/node_modules/.bin/asl-validator"));
    if !bin.exists() {
        return skipped(
            "comparison_with_asl_validator",
            &format!(
                "{} is missing: scripts/test installs it with npm (Debian/Ubuntu: apt-get install npm)",
                bin.display()
            ),
        );
    }
    let accepts = |f: &Path| {
        std::process::Command::new(&bin)
            .arg("--json-path")
            .arg(f)
            .arg("--silent")
            .output()
            .unwrap()
            .status
            .success()
    };
    let dir = repo().join("tests/fixtures/invalid");
    let mut accepted: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| accepts(p))
        .map(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches(".asl.json")
                .to_string()
        })
        .collect();
    accepted.sort();
    assert_eq!(
        accepted,
        vec![
            "choice-without-default",
            "dollar-key-in-jsonata",
            "error-output-outside-catch",
            "jsonpath-state-in-jsonata-machine",
            "states-all-not-last",
            "states-result-in-arguments",
            "unknown-error-name",
            "variable-not-assigned-on-every-path"
        ]
    );
    for t in [
        "should-i-deploy/jsonata",
        "create-new-user/jsonata",
        "bucket-replication/jsonata",
        "resize-image/jsonata",
        "resize-image/jsonpath",
    ] {
        let f = repo().join(format!("tests/fixtures/published/{t}.json"));
        assert!(accepts(&f), "{t}");
    }
}

#[test]
fn a_state_machine_name_outside_the_service_rules_is_an_error() {
    let project = project_copy();
    let manifest = project.path().join("stacks/bucket-replication/stack.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "name = \"bucket-replication\"\nrole_arn",
            "name = \"bucket replication!\"\nrole_arn",
        ),
    )
    .unwrap();
    let (_s, d) = deploy_offline(project.path());
    let out = d.run(&["validate", "bucket-replication"]).code(2);
    // caught while the manifest loads, at the name itself, with AWS's rule
    assert!(
        out.stderr.contains(
            "error: resource `state_machine`: name \"bucket replication!\" has ' '; state machine names take only letters, digits, - and _\n   --> stacks/bucket-replication/stack.toml:101:8\n"
        ),
        "{out:?}"
    );
}

/// Outside check: the repository's copies of the tutorial's published definitions
/// (tests/fixtures/published, what the deployed definitions are compared with) are the
/// tutorial's own, byte for byte.
#[test]
fn the_published_copies_are_the_tutorials_own() {
    let Some(seed) = outside(
        "the_published_copies_are_the_tutorials_own",
        "seed/definitions",
    ) else {
        return;
    };
    let ours = repo().join("tests/fixtures/published");
    let mut compared = 0;
    for exercise in std::fs::read_dir(&seed).unwrap().flatten() {
        for file in std::fs::read_dir(exercise.path()).unwrap().flatten() {
            let rel = format!(
                "{}/{}",
                exercise.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            );
            let copy = std::fs::read_to_string(ours.join(&rel))
                .unwrap_or_else(|e| panic!("tests/fixtures/published/{rel}: {e}"));
            assert_eq!(
                copy,
                std::fs::read_to_string(file.path()).unwrap(),
                "tests/fixtures/published/{rel} differs from the tutorial's"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 5, "the tutorial publishes five definitions");
}

/// What `deploy render` makes of each published stack, offline: reviewed snapshot files
/// (tests/snapshots/, the `insta` crate; `cargo insta review` after a deliberate change).
/// Names and ARNs known only after apply render as their placeholders.
#[test]
fn rendered_definitions_match_their_reviewed_snapshots() {
    for (name, args) in [
        ("should-i-deploy", &["render", "should-i-deploy"][..]),
        (
            "create-new-user",
            &[
                "render",
                "create-new-user",
                "--var",
                "email=approver@example.com",
            ],
        ),
        ("bucket-replication", &["render", "bucket-replication"]),
        ("resize-image-jsonata", &["render", "resize-image"]),
        (
            "resize-image-jsonpath",
            &["render", "resize-image", "--var", "query_language=jsonpath"],
        ),
    ] {
        let (_s, d) = deploy_offline(repo());
        let out = d.run(args).success();
        insta::assert_snapshot!(name, out.stdout);
    }
}

/// A finding is shown where it is written: the template's line and column, the source line with
/// a caret under the value, a suggestion, and only the root cause (what a bad `Next` leaves
/// unreachable or endless is not reported on top of it). JSONata errors point at the character.
#[test]
fn findings_point_into_the_template_with_one_error_per_cause() {
    let project = project_copy();
    let template = project.path().join("templates/resize-image/jsonata.json");
    let text = std::fs::read_to_string(&template).unwrap();
    let edited = text.replacen(
        "\"Next\": \"Delete Uploaded Profile Picture\"",
        "\"Next\": \"Delete Uploaded Profile Pic\"",
        1,
    );
    assert_ne!(edited, text);
    std::fs::write(&template, edited).unwrap();
    let run = |args: &[&str], code: i32| deploy_offline(project.path()).1.run(args).code(code);
    let out = run(&["validate", "resize-image", "--color", "never"], 2);
    let line = text
        .lines()
        .position(|l| l.contains("\"Next\": \"Delete Uploaded Profile Picture\""))
        .unwrap()
        + 1;
    let want = format!(
        "error: `Delete Uploaded Profile Pic` is not a state here (did you mean `Delete Uploaded Profile Picture`?) (stack resize-image)\n\
         \x20  --> templates/resize-image/jsonata.json:{line}:21\n\
         \x20   |\n\
         {line} |             \"Next\": \"Delete Uploaded Profile Pic\"\n\
         \x20   |                     ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ in state `Resize Profile Picture`\n"
    );
    assert!(out.stderr.starts_with(&want), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("error:").count(),
        2,
        "one finding and the summary: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("warning"),
        "no knock-on warnings about unused grants: {}",
        out.stderr
    );
    let out = run(&["validate", "resize-image", "-o", "json"], 2);
    let json: Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    let f = &json["findings"][0];
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(line as u64), Some(21)),
        "{json}"
    );

    let template = project
        .path()
        .join("templates/should-i-deploy/jsonata.json");
    let text = std::fs::read_to_string(&template).unwrap();
    let edited = text.replacen(
        "ResponseBody.shouldideploy %}",
        "ResponseBody.shouldideploy = = 1 %}",
        1,
    );
    std::fs::write(&template, edited).unwrap();
    let out = run(&["validate", "should-i-deploy", "--color", "never"], 2);
    let line = text
        .lines()
        .position(|l| l.contains("ResponseBody.shouldideploy %}"))
        .unwrap()
        + 1;
    assert!(
        out.stderr.contains(&format!(
            "--> templates/should-i-deploy/jsonata.json:{line}:67\n"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("shouldideploy = = 1 %}\"\n   |                                                                   ^ in state"), "{}", out.stderr);
}

/// `validate -o json` is one JSON document, errors included (counted in it, exit 2); as text
/// it says how many errors, not that something was not deployed (validate deploys nothing).
#[test]
fn validate_as_json_is_one_document_even_with_errors() {
    let (_s, d) = deploy_offline(repo());
    let out = d
        .run(&[
            "validate",
            "--file",
            "tests/fixtures/invalid/bad-jsonpath.asl.json",
            "-o",
            "json",
        ])
        .code(2);
    let doc = out.json();
    assert_eq!(doc["errors"], 1, "{doc}");
    assert_eq!(doc["findings"][0]["severity"], "ERROR");
    let (_s, d) = deploy_offline(repo());
    let out = d
        .run(&[
            "validate",
            "--file",
            "tests/fixtures/invalid/bad-jsonpath.asl.json",
        ])
        .code(2);
    assert!(
        out.stderr.contains("error: 1 definition error(s)\n"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("deployed"), "{out:?}");
}

/// A manifest statement that grants on "*" what AWS lets it grant on a resource's ARN: a
/// warning at the line, naming the ARN; the shipped stacks have none.
#[test]
fn a_wildcard_an_arn_could_replace_is_a_warning_naming_the_arn() {
    let project = project_copy();
    let manifest = project.path().join("stacks/bucket-replication/stack.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen("Resource = \"${task.arn}\"", "Resource = \"*\"", 1),
    )
    .unwrap();
    let (_s, d) = deploy_offline(project.path());
    let out = d
        .run(&["validate", "bucket-replication", "-o", "json"])
        .success();
    let doc = out.json();
    let wild: Vec<&serde_json::Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["message"].as_str().unwrap().contains("on \"*\""))
        .collect();
    assert_eq!(wild.len(), 1, "{doc}");
    assert_eq!(wild[0]["severity"], "WARNING");
    assert!(
        wild[0]["message"]
            .as_str()
            .unwrap()
            .contains("datasync:StartTaskExecution on \"*\": AWS lets it be granted on arn:${Partition}:datasync:${Region}:${AccountId}:task/${TaskId}"),
        "{doc}"
    );
    assert!(wild[0]["line"].as_u64().is_some(), "{doc}");
    let (_s, d) = deploy_offline(repo());
    let out = d.run(&["validate", "--output", "json"]).success();
    assert!(
        !out.stdout.contains("on \\\"*\\\""),
        "the shipped stacks grant nothing on *: {}",
        out.stdout
    );
}
