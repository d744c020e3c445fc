//! Bad input gets one clear message, exit code 2, and no API call: every case here points the
//! tool at a closed port, so an attempted call would show up as exit 3 ("cannot reach").
//! Then the AWS-side errors: unreachable endpoint, missing credentials.

mod support;

use std::path::{Path, PathBuf};
use support::*;

fn broken() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn closed_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

fn run_in(project: &Path, args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap();
    Deploy::new(project, state.path(), &closed_endpoint()).run(args)
}

#[test]
fn malformed_manifest_names_file_and_line() {
    let out = run_in(&broken(), &["up", "malformed", "--yes"]).code(2);
    assert!(out.stderr.contains("error: stacks/malformed/stack.toml:5: invalid manifest"), "{out:?}");
}

#[test]
fn unknown_stack_lists_the_known_ones() {
    let out = run_in(&repo(), &["up", "should-i-deplo", "--yes"]).code(2);
    assert!(out.stderr.contains("unknown stack `should-i-deplo`"), "{out:?}");
    assert!(out.stderr.contains("help: stacks in stacks: ") && out.stderr.contains("should-i-deploy"), "{out:?}");
}

#[test]
fn unknown_and_ill_typed_variables() {
    let out = run_in(&repo(), &["up", "should-i-deploy", "--var", "frequency=5", "--yes"]).code(2);
    assert!(
        out.stderr.contains("--var frequency=5: stack `should-i-deploy` has no variable `frequency`; it declares: frequency_in_minutes"),
        "{out:?}"
    );
    let out = run_in(&repo(), &["plan", "should-i-deploy", "--var", "frequency_in_minutes=often"]).code(2);
    assert!(out.stderr.contains("variable `frequency_in_minutes` is a number, and \"often\" is not one"), "{out:?}");
}

#[test]
fn missing_required_variable() {
    let out = run_in(&broken(), &["up", "needs-email", "--yes"]).code(2);
    assert!(
        out.stderr.contains("stack `needs-email` needs variable `email` (where approval requests are sent), and none was given"),
        "{out:?}"
    );
    assert!(out.stderr.contains("help: pass --var email=VALUE"), "{out:?}");
}

#[test]
fn template_referencing_an_unknown_value() {
    let out = run_in(&broken(), &["up", "unknown-template-var", "--yes"]).code(2);
    assert!(
        out.stderr.contains("error: templates/unknown-var.json:5: the template uses `TOPIC_ARN`, which the stack does not define"),
        "{out:?}"
    );
}

#[test]
fn invalid_json_after_rendering() {
    let out = run_in(&broken(), &["render", "invalid-json"]).code(2);
    assert!(out.stderr.contains("templates/invalid-json.json:4: the rendered definition is not valid JSON"), "{out:?}");
}

#[test]
fn duplicate_keys_with_different_values_name_key_and_state() {
    let out = run_in(&broken(), &["plan", "duplicate-keys"]).code(2);
    assert!(out.stderr.contains("key `Type` appears twice with different values in state `A`"), "{out:?}");
}

#[test]
fn dependency_cycle_is_spelled_out() {
    let out = run_in(&broken(), &["plan", "cycle"]).code(2);
    assert!(out.stderr.contains("dependency cycle: a -> b -> a"), "{out:?}");
}

#[test]
fn bad_env_name() {
    let out = run_in(&repo(), &["plan", "should-i-deploy", "--env", "PR_42"]).code(2);
    assert!(out.stderr.contains("env name \"PR_42\" is not usable"), "{out:?}");
}

#[test]
fn unreachable_endpoint_is_an_aws_error_with_advice() {
    let out = run_in(&repo(), &["plan", "should-i-deploy"]).code(3);
    assert!(out.stderr.contains("error: cannot reach http://127.0.0.1:"), "{out:?}");
    assert!(out.stderr.contains("is the emulator running"), "{out:?}");
}

#[test]
fn missing_credentials_are_reported_without_touching_instance_metadata() {
    let state = tempfile::tempdir().unwrap();
    let out = Deploy::new(&repo(), state.path(), &closed_endpoint())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .run(&["plan", "should-i-deploy"])
        .code(3);
    assert!(out.stderr.contains("error: no AWS credentials found"), "{out:?}");
    assert!(out.stderr.contains("help: set AWS_PROFILE"), "{out:?}");
}

#[test]
fn render_needs_no_aws_and_keeps_jsonata() {
    let out = run_in(&repo(), &["render", "should-i-deploy"]).success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v["States"]["ListAttachedUserPolicies"]["Output"]["policyAttached"],
        "{% 'arn:(known after apply: partition):iam::aws:policy/AWSDenyAll' in $states.result.AttachedPolicies.PolicyArn %}"
    );
}
