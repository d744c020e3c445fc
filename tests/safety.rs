//! What must never be acted on, against moto: state that is not the stack's own, two
//! resources claiming one AWS name, a manifest emptied by mistake, and definitions or
//! templates that are wrong. Each is bad input (exit 2) that names the file and place, and
//! makes no AWS call at all (a state file stays as it was).

mod support;

use std::path::{Path, PathBuf};
use support::*;

const EMAIL: &str = "email=a@example.com";

fn state_file(w: &World, env: &str, stack: &str) -> PathBuf {
    w.state.path().join(env).join(format!("{stack}.json"))
}

/// Runs `args`, expecting exit 2 with each of `said` on stderr and no call reaching moto.
fn refused(w: &World, args: &[&str], said: &[&str]) -> Output {
    w.moto.start_recording();
    let out = w.deploy().run(args).code(2);
    for s in said {
        assert!(
            out.stderr.contains(s),
            "`{}` says {s:?}: {out:?}",
            args.join(" ")
        );
    }
    let calls = w.moto.recorded_operations();
    assert!(calls.is_empty(), "`{}` called {calls:?}", args.join(" "));
    out
}

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let edited = f(text.clone());
    assert_ne!(edited, text, "the edit applies to {}", path.display());
    std::fs::write(path, edited).unwrap();
}

/// A state document copied from another stack, another env, or recording a kind this version
/// does not know is refused by `up`, `plan` and `destroy` before any call, the file untouched;
/// the stack it belongs to is still whole.
#[test]
fn state_that_is_not_this_stacks_is_refused_before_any_call() {
    let w = World::new();
    w.deploy()
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    let own = std::fs::read(state_file(&w, "default", "should-i-deploy")).unwrap();

    // another stack's state where create-new-user's belongs
    let wrong = state_file(&w, "default", "create-new-user");
    std::fs::write(&wrong, &own).unwrap();
    for args in [
        &["up", "create-new-user", "--var", EMAIL, "--yes"][..],
        &["plan", "create-new-user", "--var", EMAIL],
        &["destroy", "create-new-user", "--yes"],
    ] {
        refused(
            &w,
            args,
            &[
                "default/create-new-user.json",
                "it holds stack `should-i-deploy` (env `default`), and stack `create-new-user` (env `default`) was expected",
            ],
        );
        assert_eq!(std::fs::read(&wrong).unwrap(), own, "untouched");
    }
    std::fs::remove_file(&wrong).unwrap();

    // this stack's state from another env (a restored backup, a mistyped prefix)
    let other_env = state_file(&w, "pr-1", "should-i-deploy");
    std::fs::create_dir_all(other_env.parent().unwrap()).unwrap();
    std::fs::write(&other_env, &own).unwrap();
    for args in [
        &["up", "should-i-deploy", "--env", "pr-1", "--yes"][..],
        &["destroy", "should-i-deploy", "--env", "pr-1", "--yes"],
    ] {
        refused(
            &w,
            args,
            &[
                "pr-1/should-i-deploy.json",
                "it holds stack `should-i-deploy` (env `default`), and stack `should-i-deploy` (env `pr-1`) was expected",
            ],
        );
        assert_eq!(std::fs::read(&other_env).unwrap(), own, "untouched");
    }
    std::fs::remove_dir_all(other_env.parent().unwrap()).unwrap();

    // a kind this version does not know: never dropped, never deleted
    let path = state_file(&w, "default", "should-i-deploy");
    edit(&path, |t| {
        t.replacen("\"kind\": \"events_rule\"", "\"kind\": \"quantum_rule\"", 1)
    });
    let edited = std::fs::read(&path).unwrap();
    for args in [
        &["up", "should-i-deploy", "--yes"][..],
        &["destroy", "should-i-deploy", "--yes"],
    ] {
        refused(
            &w,
            args,
            &[
                "default/should-i-deploy.json",
                "`rule` (quantum_rule)",
                "a kind this version of deploy does not know",
            ],
        );
        assert_eq!(std::fs::read(&path).unwrap(), edited, "untouched");
    }

    // the stack, its state put back, is whole: nothing was deleted
    std::fs::write(&path, &own).unwrap();
    let out = w.deploy().run(&["plan", "should-i-deploy"]).success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
    w.deploy()
        .run(&["destroy", "should-i-deploy", "--yes"])
        .success();
    nothing_left_but(&w.c, w.moto.port, &[]);
}

/// Two resources of one kind with one AWS name, in one manifest or in two stacks of the env,
/// are refused at load naming both (file and line), whichever stack is deployed.
#[test]
fn two_resources_claiming_one_aws_name_are_refused_naming_both() {
    let w = World::with_project_copy();
    let stacks = w.project.join("stacks");
    let sid = stacks.join("should-i-deploy/stack.toml");
    let original = std::fs::read_to_string(&sid).unwrap();
    let line_of =
        |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let role_line = line_of(&original, "name = \"sfn-should-i-deploy\"");

    // in one manifest
    edit(&sid, |t| {
        t + "\n[resources.role_again]\nkind = \"iam_role\"\nname = \"sfn-should-i-deploy\"\nservice = \"states.amazonaws.com\"\n"
    });
    let again_line = line_of(
        &std::fs::read_to_string(&sid).unwrap(),
        "[resources.role_again]",
    ) + 2;
    refused(
        &w,
        &["up", "should-i-deploy", "--yes"],
        &[
            &format!(
                "resource `role_again` of stack `should-i-deploy` (stacks/should-i-deploy/stack.toml:{again_line}) and resource `sfn_role` of stack `should-i-deploy` (stacks/should-i-deploy/stack.toml:{role_line}) are both iam_role `sfn-should-i-deploy`"
            ),
            &format!("--> stacks/should-i-deploy/stack.toml:{again_line}:8"),
        ],
    );
    std::fs::write(&sid, &original).unwrap();

    // across two stacks of the env: refused for either stack, and for --all
    let cnu = stacks.join("create-new-user/stack.toml");
    edit(&cnu, |t| {
        t + "\n[resources.borrowed]\nkind = \"iam_role\"\nname = \"sfn-should-i-deploy\"\nservice = \"states.amazonaws.com\"\n"
    });
    let borrowed_line = line_of(
        &std::fs::read_to_string(&cnu).unwrap(),
        "[resources.borrowed]",
    ) + 2;
    let ours = format!(
        "resource `sfn_role` of stack `should-i-deploy` (stacks/should-i-deploy/stack.toml:{role_line})"
    );
    let theirs = format!(
        "resource `borrowed` of stack `create-new-user` (stacks/create-new-user/stack.toml:{borrowed_line})"
    );
    for args in [
        &["up", "should-i-deploy", "--yes"][..],
        &["up", "create-new-user", "--var", EMAIL, "--yes"],
        &["plan", "--all", "--var", EMAIL],
    ] {
        refused(
            &w,
            args,
            &[&ours, &theirs, "are both iam_role `sfn-should-i-deploy`"],
        );
    }
    // a stack the clash does not touch still deploys
    w.deploy().run(&["plan", "bucket-replication"]).success();
}

/// After a deploy, a manifest with no resources left is refused by `up` (it would delete all
/// of them) unless --allow-destroy-all says so; with it, the stack is emptied.
#[test]
fn an_emptied_manifest_does_not_destroy_the_stack_unless_asked() {
    let w = World::with_project_copy();
    w.deploy()
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    let path = state_file(&w, "default", "should-i-deploy");
    let recorded = std::fs::read(&path).unwrap();
    let manifest = w.project.join("stacks/should-i-deploy/stack.toml");
    std::fs::write(
        &manifest,
        "description = \"emptied by mistake\"\n[vars.frequency_in_minutes]\ntype = \"number\"\ndefault = 30\n",
    )
    .unwrap();
    let out = refused(
        &w,
        &["up", "should-i-deploy", "--yes"],
        &[
            "stacks/should-i-deploy/stack.toml",
            "stack `should-i-deploy` declares no resources, and env `default` records 12 of it",
            "deploy destroy should-i-deploy --env default",
            "--allow-destroy-all",
        ],
    );
    assert_eq!(out.stderr.matches("error:").count(), 1, "{out:?}");
    assert_eq!(std::fs::read(&path).unwrap(), recorded, "state untouched");

    w.deploy()
        .run(&["up", "should-i-deploy", "--yes", "--allow-destroy-all"])
        .success();
    assert!(
        !path.exists(),
        "every resource deleted, the state with them"
    );
    nothing_left_but(&w.c, w.moto.port, &[]);
}

/// A template that is missing or a folder, and a definition written in the manifest whose
/// StartAt names no state or whose JSONata does not parse: refused before any call, at the
/// line and column where the mistake is written.
#[test]
fn wrong_templates_and_definitions_are_refused_where_they_are_written() {
    let w = World::with_project_copy();
    let manifest = w.project.join("stacks/should-i-deploy/stack.toml");
    let original = std::fs::read_to_string(&manifest).unwrap();
    let line = original
        .lines()
        .position(|l| l.contains("template = \"should-i-deploy/jsonata.json\""))
        .unwrap()
        + 1;
    for (template, said) in [
        (
            "should-i-deploy/missing.json",
            "template templates/should-i-deploy/missing.json does not exist",
        ),
        (
            "should-i-deploy",
            "template templates/should-i-deploy is a folder, not a file",
        ),
    ] {
        std::fs::write(
            &manifest,
            original.replace("should-i-deploy/jsonata.json", template),
        )
        .unwrap();
        refused(
            &w,
            &["up", "should-i-deploy", "--yes"],
            &[
                said,
                &format!("--> stacks/should-i-deploy/stack.toml:{line}:12"),
                "should-i-deploy/jsonata.json",
            ],
        );
    }

    let inline = w.project.join("stacks/inline/stack.toml");
    std::fs::create_dir_all(inline.parent().unwrap()).unwrap();
    std::fs::write(
        &inline,
        r#"[resources.role]
kind = "iam_role"
name = "sfn-inline"
service = "states.amazonaws.com"

[resources.machine]
kind = "sfn_state_machine"
name = "inline"
role_arn = "${role.arn}"

[resources.machine.definition]
QueryLanguage = "JSONata"
StartAt = "Nowhere"

[resources.machine.definition.States.Done]
Type = "Pass"
Output = "{% $states.input.( %}"
End = true
"#,
    )
    .unwrap();
    refused(
        &w,
        &["up", "inline", "--yes"],
        &[
            "StartAt names `Nowhere`, which is not a state here",
            "--> stacks/inline/stack.toml:13:11",
            "JSONata does not parse",
            "--> stacks/inline/stack.toml:17:29",
        ],
    );
}
