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
    assert!(out.stderr.contains("error: invalid manifest"), "{out:?}");
    assert!(
        out.stderr.contains("--> stacks/malformed/stack.toml:5:"),
        "{out:?}"
    );
}

#[test]
fn unknown_stack_lists_the_known_ones() {
    let out = run_in(&repo(), &["up", "should-i-deplo", "--yes"]).code(2);
    assert!(
        out.stderr.contains("unknown stack `should-i-deplo`"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "help: did you mean `should-i-deploy`? (the project's stacks (folders of stacks/): "
        ),
        "{out:?}"
    );
}

#[test]
fn unknown_and_ill_typed_variables() {
    let out = run_in(
        &repo(),
        &["up", "should-i-deploy", "--var", "frequency=5", "--yes"],
    )
    .code(2);
    assert!(
        out.stderr.contains("--var frequency=5: stack `should-i-deploy` has no variable `frequency`; it declares: frequency_in_minutes"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("help: did you mean `frequency_in_minutes`?"),
        "{out:?}"
    );
    let out = run_in(
        &repo(),
        &[
            "plan",
            "should-i-deploy",
            "--var",
            "frequency_in_minutes=often",
        ],
    )
    .code(2);
    assert!(
        out.stderr
            .contains("variable `frequency_in_minutes` is a number, and \"often\" is not one"),
        "{out:?}"
    );
}

#[test]
fn missing_required_variable() {
    let out = run_in(&broken(), &["up", "needs-email", "--yes"]).code(2);
    assert!(
        out.stderr.contains("stack `needs-email` needs variable `email` (where approval requests are sent), and none was given"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("help: pass --var email=VALUE"),
        "{out:?}"
    );
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
    assert!(
        out.stderr
            .contains("templates/invalid-json.json:4: the rendered definition is not valid JSON"),
        "{out:?}"
    );
}

#[test]
fn duplicate_keys_with_different_values_name_key_and_state() {
    let out = run_in(&broken(), &["plan", "duplicate-keys"]).code(2);
    assert!(
        out.stderr
            .contains("key `Type` appears twice with different values in state `A`"),
        "{out:?}"
    );
}

#[test]
fn dependency_cycle_is_spelled_out() {
    let out = run_in(&broken(), &["plan", "cycle"]).code(2);
    assert!(
        out.stderr.contains("dependency cycle: a -> b -> a"),
        "{out:?}"
    );
}

#[test]
fn bad_env_name() {
    let out = run_in(&repo(), &["plan", "should-i-deploy", "--env", "PR_42"]).code(2);
    assert!(
        out.stderr.contains("env name \"PR_42\" is not usable"),
        "{out:?}"
    );
}

#[test]
fn missing_credentials_are_reported_without_touching_instance_metadata() {
    let state = tempfile::tempdir().unwrap();
    let out = Deploy::new(&repo(), state.path(), &closed_endpoint())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .run(&["plan", "should-i-deploy"])
        .code(3);
    assert!(
        out.stderr.contains("error: no AWS credentials found"),
        "{out:?}"
    );
    assert!(out.stderr.contains("help: set AWS_PROFILE"), "{out:?}");
    said_for_people(&out.stderr);

    // an SSO profile whose session was never started (or expired): the source that failed, in
    // one line, and the way out
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config");
    std::fs::write(
        &config,
        "[profile sso]\nsso_session = s\nsso_account_id = 111122223333\nsso_role_name = r\nregion = us-east-1\n[sso-session s]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    let out = Deploy::new(&repo(), state.path(), &closed_endpoint())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_PROFILE", "sso")
        .env("AWS_CONFIG_FILE", config.to_str().unwrap())
        .env("HOME", home.path().to_str().unwrap())
        .run(&["plan", "should-i-deploy"])
        .code(3);
    assert!(
        out.stderr
            .contains("error: loading AWS credentials failed: failed to load the cached SSO token"),
        "{out:?}"
    );
    assert!(out.stderr.contains("aws sso login"), "{out:?}");
    said_for_people(&out.stderr);
}

/// An error as people read it: a few lines, none of Rust's Debug dumps of SDK values.
fn said_for_people(stderr: &str) {
    assert!(stderr.lines().count() <= 4, "at most 4 lines: {stderr}");
    for dump in [
        "{ source:",
        "SdkBody",
        "ProviderError(",
        "CredentialsNotLoaded(",
    ] {
        assert!(!stderr.contains(dump), "{dump} in {stderr}");
    }
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

/// A server that answers every request with an HTML page, as a web server or proxy at the
/// wrong address would.
fn plain_http_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let body = "<html><body>It works!</body></html>";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// One sentence per cause, naming the service, the operation and the endpoint; never the
/// SDK's Debug dump (that is for -v).
fn assert_one_clear_error(out: &Output, first_line: &str, help: &str) {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        lines[0].starts_with(first_line),
        "first line should start with {first_line:?}: {out:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("help: ") && l.contains(help)),
        "help {help:?}: {out:?}"
    );
    for internal in [
        "ServiceError",
        "DispatchFailure",
        "ConnectorError",
        "raw: Response",
        "source:",
    ] {
        assert!(!out.stderr.contains(internal), "{internal} in {out:?}");
    }
}

#[test]
fn a_closed_port_is_unreachable() {
    let endpoint = closed_endpoint();
    let state = tempfile::tempdir().unwrap();
    let out = Deploy::new(&repo(), state.path(), &endpoint)
        .run(&["plan", "should-i-deploy"])
        .code(3);
    assert_one_clear_error(
        &out,
        &format!("error: cannot reach {endpoint} (STS GetCallerIdentity): Connection refused"),
        "is the emulator running",
    );
}

#[test]
fn a_server_that_is_not_aws_is_named_as_such() {
    let endpoint = plain_http_server();
    let state = tempfile::tempdir().unwrap();
    let out = Deploy::new(&repo(), state.path(), &endpoint)
        .run(&["plan", "should-i-deploy"])
        .code(3);
    assert_one_clear_error(
        &out,
        &format!(
            "error: {endpoint} is not an AWS API: its answer to STS GetCallerIdentity (HTTP 200) is not an AWS response"
        ),
        "AWS_ENDPOINT_URL",
    );
    assert!(
        !out.stderr.contains("credentials"),
        "not a credentials problem: {out:?}"
    );
}

/// Keys AWS does not know (STS answers InvalidClientTokenId through a proxy, as moto takes any
/// keys): `plan` gives that one error, whether the check runs first (nothing recorded in
/// `state`) or alongside the reads (an account recorded).
fn plan_is_refused_for_its_keys(moto: &Moto, state: &Path) {
    let proxy = Proxy::start(
        moto,
        serde_json::json!([{"operation": "GetCallerIdentity", "times": 1, "status": 403, "protocol": "query",
            "code": "InvalidClientTokenId", "message": "The security token included in the request is invalid."}]),
    );
    let out = Deploy::new(&repo(), state, &proxy.url())
        .run(&["plan", "should-i-deploy"])
        .code(3);
    assert_one_clear_error(
        &out,
        &format!(
            "error: {} rejected the credentials (STS GetCallerIdentity: InvalidClientTokenId: The security token included in the request is invalid.)",
            proxy.url()
        ),
        "AWS_ACCESS_KEY_ID",
    );
}

#[test]
fn rejected_keys_and_denied_calls_say_which_and_what_to_do() {
    let moto = Moto::start();
    // Keys AWS does not know: STS answers InvalidClientTokenId (moto takes any keys).
    let state = tempfile::tempdir().unwrap();
    plan_is_refused_for_its_keys(&moto, state.path());

    // An identity without iam:CreateUser: the failed resource says so, with the action.
    let proxy = Proxy::start(
        &moto,
        serde_json::json!([{"operation": "CreateUser", "times": 1, "status": 403, "protocol": "query", "code": "AccessDenied",
            "message": "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iam:CreateUser"}]),
    );
    let out = Deploy::new(&repo(), state.path(), &proxy.url())
        .run(&["up", "should-i-deploy", "--yes"])
        .code(4);
    assert!(
        out.stderr.contains(&format!(
            "access denied: IAM CreateUser on {}: User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iam:CreateUser",
            proxy.url()
        )),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("help: the identity in use needs iam:CreateUser in its IAM policy"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("ServiceError"), "{out:?}");
    drop(proxy);

    // Once state records the account, the identity check runs alongside the planning reads:
    // its failure is still the one error, whatever the reads gave.
    plan_is_refused_for_its_keys(&moto, state.path());
    let closed = closed_endpoint();
    let out = Deploy::new(&repo(), state.path(), &closed)
        .run(&["plan", "should-i-deploy"])
        .code(3);
    assert_one_clear_error(
        &out,
        &format!("error: cannot reach {closed} (STS GetCallerIdentity): Connection refused"),
        "is the emulator running",
    );
    // and credentials of another account than the one recorded are refused before any change
    let file = state.path().join("default/should-i-deploy.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("123456789012", "999999999999")).unwrap();
    let out = Deploy::new(&repo(), state.path(), &moto.url())
        .run(&["up", "should-i-deploy", "--yes"])
        .code(2);
    assert!(
        out.stderr.contains(
            "error: the recorded state is of account 999999999999 region us-east-1, and this run points at account 123456789012"
        ),
        "{out:?}"
    );
}

/// Mistakes AWS would refuse half-way through an `up` (moto takes them): each is bad input
/// (exit 2) before any call, naming the file and line, the value and AWS's limit.
#[test]
fn what_aws_would_refuse_is_refused_before_any_call() {
    let manifest = "stacks/should-i-deploy/stack.toml";
    let cases: Vec<(&str, Box<dyn Fn(&str) -> String>, &str)> = vec![
        (
            "role name of 80 characters",
            Box::new(|t: &str| {
                t.replacen(
                    "name = \"sfn-should-i-deploy\"",
                    &format!("name = \"{}\"", "r".repeat(80)),
                    1,
                )
            }),
            "resource `sfn_role`: name \"rrrr",
        ),
        (
            "user name of 70 characters",
            Box::new(|t: &str| {
                t.replacen(
                    "name = \"terraform-deploy-from-pipeline\"",
                    &format!("name = \"{}\"", "u".repeat(70)),
                    1,
                )
            }),
            "has 70 characters; IAM user names take 1 to 64",
        ),
        (
            "60 tags",
            Box::new(|t: &str| {
                let many: String = (0..60).map(|i| format!("T{i} = \"v\"\n")).collect();
                t.replacen("[tags]\n", &format!("[tags]\n{many}"), 1)
            }),
            "64 tags (the stack's, deploy's and the resource's); AWS allows 50 per resource",
        ),
        (
            "a tag value of 300 characters",
            Box::new(|t: &str| {
                t.replacen(
                    "Project = \"Step Functions\"",
                    &format!("Project = \"{}\"", "p".repeat(300)),
                    1,
                )
            }),
            "tag \"Project\" has a value of 300 characters; tag values are at most 256",
        ),
        (
            "a schedule that is not one",
            Box::new(|t: &str| {
                t.replacen(
                    "rate_minutes = \"${var.frequency_in_minutes}\"",
                    "schedule_expression = \"every 5 minutes\"",
                    1,
                )
            }),
            "schedule_expression \"every 5 minutes\" is neither rate(...) nor cron(...); write rate(5 minutes) or cron(0 12 * * ? *)",
        ),
        (
            "a template outside templates/",
            Box::new(|t: &str| {
                t.replacen(
                    "template = \"should-i-deploy/jsonata.json\"",
                    "template = \"../../../../etc/passwd\"",
                    1,
                )
            }),
            "template \"../../../../etc/passwd\" is outside templates/",
        ),
    ];
    for (what, edit, said) in cases {
        let project = project_copy();
        let path = project.path().join(manifest);
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = edit(&text);
        assert_ne!(edited, text, "{what}: the edit applies");
        std::fs::write(&path, edited).unwrap();
        let out = run_in(project.path(), &["plan", "should-i-deploy"]).code(2);
        assert!(out.stderr.contains(said), "{what}: {out:?}");
        assert!(
            out.stderr
                .contains("--> stacks/should-i-deploy/stack.toml:"),
            "{what}: names the file and line: {out:?}"
        );
    }

    // a manifest that is not UTF-8, and a corrupt state file: bad input naming the file
    let project = project_copy();
    let path = project.path().join(manifest);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"\n# caf\xe9\n");
    std::fs::write(&path, bytes).unwrap();
    let out = run_in(project.path(), &["plan", "should-i-deploy"]).code(2);
    assert!(
        out.stderr.contains("stacks/should-i-deploy/stack.toml:")
            && out.stderr.contains("not UTF-8 text"),
        "{out:?}"
    );
    let state = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(state.path().join("default")).unwrap();
    std::fs::write(
        state.path().join("default/should-i-deploy.json"),
        "{\"version\": 1, \"stack\": \"should-i-dep",
    )
    .unwrap();
    let out = Deploy::new(&repo(), state.path(), &closed_endpoint())
        .run(&["outputs", "should-i-deploy"])
        .code(2);
    assert!(
        out.stderr
            .contains("default/should-i-deploy.json: recorded state is unreadable"),
        "{out:?}"
    );
}

/// `AWS_ENDPOINT_URL_<SERVICE>` is resolved by aws-config for every service (not only Step
/// Functions) and wins over AWS_ENDPOINT_URL and `--endpoint-url` for its service.
#[test]
fn per_service_endpoints_win_for_their_service() {
    let (sts_only, elsewhere) = (closed_endpoint(), plain_http_server());
    let state = tempfile::tempdir().unwrap();
    let out = Deploy::new(&repo(), state.path(), &elsewhere)
        .env("AWS_ENDPOINT_URL_STS", &sts_only)
        .run(&["plan", "should-i-deploy"])
        .code(3);
    assert_one_clear_error(
        &out,
        &format!("error: cannot reach {sts_only} (STS GetCallerIdentity)"),
        "is the emulator running",
    );
    let out = Deploy::new(&repo(), state.path(), &closed_endpoint())
        .env("AWS_ENDPOINT_URL_STS", &sts_only)
        .run(&["plan", "should-i-deploy", "--endpoint-url", &elsewhere])
        .code(3);
    assert_one_clear_error(
        &out,
        &format!("error: cannot reach {sts_only} (STS GetCallerIdentity)"),
        "is the emulator running",
    );
    let out = Deploy::new(&repo(), state.path(), &closed_endpoint())
        .run(&["plan", "should-i-deploy", "--endpoint-url", &elsewhere])
        .code(3);
    assert!(
        out.stderr
            .contains(&format!("error: {elsewhere} is not an AWS API")),
        "the flag is AWS_ENDPOINT_URL: {out:?}"
    );
}

/// Colour as cargo and ripgrep decide it: never into a pipe by default, never with NO_COLOR,
/// always with CLICOLOR_FORCE or `--color always` (the flag wins over both).
#[test]
fn colour_follows_the_flag_no_color_and_clicolor_force() {
    let state = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)], flag: Option<&str>| {
        let mut d = Deploy::new(&repo(), state.path(), &closed_endpoint()).env_remove("NO_COLOR");
        for (k, v) in env {
            d = d.env(k, v);
        }
        let mut args = vec!["up", "should-i-deplo", "--yes"];
        if let Some(f) = flag {
            args.extend(["--color", f]);
        }
        d.run(&args).code(2).stderr.contains("\x1b[")
    };
    assert!(!run(&[], None), "a pipe gets no colour");
    assert!(
        run(&[("CLICOLOR_FORCE", "1")], None),
        "CLICOLOR_FORCE forces it"
    );
    assert!(
        !run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], None),
        "NO_COLOR wins over CLICOLOR_FORCE"
    );
    assert!(
        run(&[("NO_COLOR", "1")], Some("always")),
        "--color always wins"
    );
    assert!(
        !run(&[("CLICOLOR_FORCE", "1")], Some("never")),
        "--color never wins"
    );
}
