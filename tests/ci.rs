//! The CI use: per-branch environments from runners that start with nothing but the
//! repository and credentials. State on S3 (moto's), shared by every runner, locked across
//! machines.

mod support;

use std::io::BufRead;
use std::path::Path;
use support::*;

const BUCKET: &str = "deploy-state";
const STATE: &str = "s3://deploy-state/ci";

fn make_bucket(w: &World) {
    w.c.block_on(w.c.s3.create_bucket().bucket(BUCKET).send())
        .unwrap();
}

/// A new CI runner: its own empty working state folder, the repository, and the S3 state URL.
fn runner(w: &World) -> (tempfile::TempDir, Deploy) {
    let fresh = tempfile::tempdir().unwrap();
    let d = Deploy::new(&w.project, fresh.path(), &w.moto.url()).env("DEPLOY_STATE", STATE);
    (fresh, d)
}

fn keys(w: &World) -> Vec<String> {
    let out =
        w.c.block_on(w.c.s3.list_objects_v2().bucket(BUCKET).send())
            .unwrap();
    out.contents()
        .iter()
        .map(|o| o.key().unwrap().to_string())
        .collect()
}

fn put_lock(w: &World, holder: &str) {
    w.c.block_on(
        w.c.s3
            .put_object()
            .bucket(BUCKET)
            .key("ci/pr-7/should-i-deploy.lock")
            .body(holder.as_bytes().to_vec().into())
            .send(),
    )
    .unwrap();
}

fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

#[test]
fn state_on_s3_is_shared_by_runners_that_have_nothing_else() {
    let w = World::new();
    make_bucket(&w);

    // pull request opened: one runner brings the environment up
    let (dir1, d) = runner(&w);
    d.run(&["up", "should-i-deploy", "--env", "pr-7", "--yes"])
        .success();
    assert!(empty(dir1.path()), "nothing recorded on the runner itself");
    assert_eq!(
        keys(&w),
        ["ci/pr-7/should-i-deploy.json"],
        "one object per stack and env, the lock released"
    );
    let head =
        w.c.block_on(
            w.c.s3
                .head_object()
                .bucket(BUCKET)
                .key("ci/pr-7/should-i-deploy.json")
                .send(),
        )
        .unwrap();
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("AES256"),
        "written with server-side encryption"
    );

    // another runner sees it all: no changes, listed, outputs
    let (_d2, d) = runner(&w);
    let out = d
        .run(&["plan", "should-i-deploy", "--env", "pr-7"])
        .success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
    let (_d3, d) = runner(&w);
    let rows = d
        .run(&["list", "--env", "pr-7", "-o", "json"])
        .success()
        .json()["stacks"]
        .clone();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stack"] == "should-i-deploy")
        .unwrap()
        .clone();
    assert_eq!(
        (row["env"].as_str(), row["status"].as_str()),
        (Some("pr-7"), Some("deployed"))
    );

    // a run that died holding the lock: the next one says who, and how to clear it
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 90;
    let holder = format!(
        r#"{{"who": "ci", "host": "runner-3", "pid": 4242, "command": "up", "since": {since}}}"#
    );
    put_lock(&w, &holder);
    let (_d4, d) = runner(&w);
    let out = d
        .run(&["up", "should-i-deploy", "--env", "pr-7", "--yes"])
        .code(6);
    assert!(out.stderr.contains("is being changed by another deploy run: held by ci on runner-3 (pid 4242, `deploy up`), 9"), "{out:?}");
    assert!(
        out.stderr
            .contains("s3://deploy-state/ci/pr-7/should-i-deploy.lock"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("deploy unlock should-i-deploy --env pr-7"),
        "{out:?}"
    );
    let (_d5, d) = runner(&w);
    let out = d
        .run(&["unlock", "should-i-deploy", "--env", "pr-7"])
        .success();
    assert!(
        out.stdout.contains(
            "removed the lock of stack `should-i-deploy` (env `pr-7`) held by ci on runner-3"
        ),
        "{out:?}"
    );

    // --lock-timeout waits for a lock that is released meanwhile
    put_lock(&w, &holder);
    let (_d6, d) = runner(&w);
    let mut child = d.spawn(&[
        "up",
        "should-i-deploy",
        "--env",
        "pr-7",
        "--yes",
        "--var",
        "frequency_in_minutes=9",
        "--lock-timeout",
        "2m",
    ]);
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let waiting = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("waiting up to 2m for the lock"));
    assert!(
        waiting.is_some_and(|l| l.contains("held by ci on runner-3")),
        "it says it waits, and for whom"
    );
    w.c.block_on(
        w.c.s3
            .delete_object()
            .bucket(BUCKET)
            .key("ci/pr-7/should-i-deploy.lock")
            .send(),
    )
    .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");

    // pull request closed: a fresh runner destroys it; nothing is left, state and lock included
    let (_d7, d) = runner(&w);
    d.run(&["destroy", "--env", "pr-7", "--yes"]).success();
    nothing_left_but(&w.c, w.moto.port, &[BUCKET]);
    assert!(keys(&w).is_empty(), "{:?}", keys(&w));
}

#[test]
fn two_runs_of_one_stack_at_once_never_corrupt_state() {
    let w = World::new();
    make_bucket(&w);
    let start = |freq: &str, extra: &[&str]| {
        let (dir, d) = runner(&w);
        let mut args = vec!["up", "should-i-deploy", "--env", "pr-8", "--yes", "--var"];
        let var = format!("frequency_in_minutes={freq}");
        args.push(&var);
        args.extend_from_slice(extra);
        (dir, d.spawn(&args))
    };
    // without waiting: one applies, the other is refused (exit 6) or finds it all done
    let (_a, first) = start("5", &[]);
    let (_b, second) = start("5", &[]);
    let (a, b) = (finish(first), finish(second));
    let mut codes = [a.code, b.code];
    codes.sort();
    assert!(codes == [0, 0] || codes == [0, 6], "{a:?}\n{b:?}");
    // waiting: both succeed, one after the other, and the last one's values are what is live
    let (_c, third) = start("6", &["--lock-timeout", "2m"]);
    let (_d, fourth) = start("6", &["--lock-timeout", "2m"]);
    finish(third).success();
    finish(fourth).success();
    let (_e, d) = runner(&w);
    let out = d
        .run(&[
            "plan",
            "should-i-deploy",
            "--env",
            "pr-8",
            "--var",
            "frequency_in_minutes=6",
        ])
        .success();
    assert!(
        out.stdout.contains("No changes"),
        "the state is whole and matches what is live: {out:?}"
    );
}

#[test]
fn a_state_bucket_that_does_not_exist_is_named() {
    let w = World::new();
    let out = Deploy::new(&w.project, w.state.path(), &w.moto.url())
        .run(&[
            "plan",
            "should-i-deploy",
            "--state",
            "s3://no-such-state-bucket/x",
        ])
        .code(2);
    assert!(
        out.stderr
            .contains("the state bucket no-such-state-bucket does not exist"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("aws s3 mb s3://no-such-state-bucket"),
        "{out:?}"
    );
}

#[test]
fn the_project_file_sets_the_state_url_once() {
    let w = World::with_project_copy();
    make_bucket(&w);
    std::fs::write(
        w.project.join("deploy.toml"),
        "# shared state for CI\n[state]\nurl = \"s3://deploy-state/from-file\"\n",
    )
    .unwrap();
    let fresh = tempfile::tempdir().unwrap();
    // DEPLOY_STATE_DIR (set by the harness) is an explicit choice: unset it to let the file speak
    Deploy::new(&w.project, fresh.path(), &w.moto.url())
        .env_remove("DEPLOY_STATE_DIR")
        .run(&["up", "should-i-deploy", "--yes"])
        .success();
    assert_eq!(keys(&w), ["from-file/default/should-i-deploy.json"]);
    std::fs::write(
        w.project.join("deploy.toml"),
        "[state]\nurll = \"s3://x\"\n",
    )
    .unwrap();
    let out = Deploy::new(&w.project, fresh.path(), &w.moto.url())
        .env_remove("DEPLOY_STATE_DIR")
        .run(&["plan", "should-i-deploy"])
        .code(2);
    assert!(
        out.stderr
            .contains("deploy.toml:2: invalid project file: unknown field `urll`"),
        "{out:?}"
    );
}

fn group_names(w: &World) -> Vec<String> {
    let out = w.c.block_on(w.c.iam.list_groups().send()).unwrap();
    let mut names: Vec<String> = out
        .groups()
        .iter()
        .map(|g| g.group_name().to_string())
        .collect();
    names.sort();
    names
}

/// The job that runs when a pull request closes starts on a new runner, with no state: destroy
/// finds the environment's resources by their names and proves them ours by tags (or their
/// parents, or the connection's description marker) before deleting anything.
#[test]
fn destroy_without_state_removes_what_is_provably_ours_and_nothing_else() {
    let w = World::new();
    let opened = tempfile::tempdir().unwrap();
    let d = || Deploy::new(&w.project, opened.path(), &w.moto.url());
    d().run(&["up", "should-i-deploy", "--env", "pr-7", "--yes"])
        .success();
    d().run(&[
        "up",
        "create-new-user",
        "--env",
        "pr-7",
        "--var",
        "email=lead@example.com",
        "--yes",
    ])
    .success();
    // the default env, beside it, must not be touched
    d().run(&["up", "should-i-deploy", "--yes"]).success();

    let closed = tempfile::tempdir().unwrap(); // a new runner: no state at all
    let out = Deploy::new(&w.project, closed.path(), &w.moto.url())
        .run(&["destroy", "--env", "pr-7", "--yes"])
        .success();
    assert!(
        out.stdout
            .contains("not recorded in state: found by name, proven ours by its tags or parents"),
        "{out:?}"
    );
    // IAM groups carry neither tags nor a description: they cannot be proven ours, so stay
    for g in ["admins", "developers"] {
        assert!(
            out.stderr.contains(&format!(
                "left alone: iam_group.{g} (pr-7-{g}-group) exists, and is not this stack's"
            )),
            "{g}: {out:?}"
        );
    }
    let roles: Vec<String> =
        w.c.block_on(w.c.iam.list_roles().send())
            .unwrap()
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect();
    assert!(roles.iter().all(|r| !r.starts_with("pr-7-")), "{roles:?}");
    let machines = w.c.block_on(w.c.sfn.list_state_machines().send()).unwrap();
    let names: Vec<&str> = machines.state_machines().iter().map(|m| m.name()).collect();
    assert_eq!(
        names,
        ["should-i-deploy"],
        "only the default env's machine is left"
    );
    let conns = w.c.block_on(w.c.events.list_connections().send()).unwrap();
    assert_eq!(
        conns
            .connections()
            .iter()
            .filter_map(|c| c.name())
            .collect::<Vec<_>>(),
        ["should-i-deploy"]
    );
    let topics = w.c.block_on(w.c.sns.list_topics().send()).unwrap();
    assert!(
        topics.topics().is_empty(),
        "the topic (tagged) and its subscription (through it) are gone"
    );
    assert_eq!(
        group_names(&w),
        ["pr-7-admins-group", "pr-7-developers-group"]
    );
    // and the default env is whole: a plan from its own state says nothing changes
    let out = d().run(&["plan", "should-i-deploy"]).success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
}

/// A hand-made resource that has the name a stack expects is never adopted, changed or
/// deleted: `up` refuses before any change, `destroy` leaves it (and its members) alone.
#[test]
fn a_foreign_resource_with_an_expected_name_is_neither_adopted_nor_deleted() {
    let w = World::new();
    w.c.block_on(async {
        w.c.iam
            .create_group()
            .group_name("pr-9-admins-group")
            .send()
            .await
            .unwrap();
        w.c.iam
            .create_user()
            .user_name("alice")
            .send()
            .await
            .unwrap();
        w.c.iam
            .add_user_to_group()
            .group_name("pr-9-admins-group")
            .user_name("alice")
            .send()
            .await
            .unwrap();
    });
    w.moto.start_recording();
    let out = w
        .deploy()
        .run(&[
            "up",
            "create-new-user",
            "--env",
            "pr-9",
            "--var",
            "email=lead@example.com",
            "--yes",
        ])
        .code(2);
    assert!(
        out.stderr.contains(
            "iam_group.admins (pr-9-admins-group): exists, and is not this stack's: a iam_group carries neither tags nor a description to prove it"
        ),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("deploy import create-new-user admins --env pr-9"),
        "{out:?}"
    );
    assert!(
        mutating_calls(&w.moto).is_empty(),
        "nothing changed: {:?}",
        mutating_calls(&w.moto)
    );

    let out = w
        .deploy()
        .run(&["destroy", "create-new-user", "--env", "pr-9", "--yes"])
        .success();
    assert!(
        out.stderr
            .contains("left alone: iam_group.admins (pr-9-admins-group)"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("Nothing to destroy in env pr-9."),
        "{out:?}"
    );
    let members =
        w.c.block_on(w.c.iam.get_group().group_name("pr-9-admins-group").send())
            .unwrap();
    assert_eq!(
        members
            .users()
            .iter()
            .map(|u| u.user_name())
            .collect::<Vec<_>>(),
        ["alice"],
        "the group and its member are untouched"
    );

    // taken over deliberately, it is the stack's: up completes the stack around it
    let out = w
        .deploy()
        .run(&["import", "create-new-user", "admins", "--env", "pr-9"])
        .success();
    assert!(out.stdout.contains("imported iam_group.admins (pr-9-admins-group) into stack `create-new-user` (env `pr-9`)"), "{out:?}");
    w.deploy()
        .run(&[
            "up",
            "create-new-user",
            "--env",
            "pr-9",
            "--var",
            "email=lead@example.com",
            "--yes",
        ])
        .success();
    let out = w
        .deploy()
        .run(&[
            "plan",
            "create-new-user",
            "--env",
            "pr-9",
            "--var",
            "email=lead@example.com",
        ])
        .success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
}

/// Secrets travel with state (to S3, to every runner): only a salted hash of them is kept, and
/// no plan, output or log shows them.
#[test]
fn secrets_are_never_in_clear_in_state_plans_or_output() {
    let w = World::with_project_copy();
    make_bucket(&w);
    let manifest = w.project.join("stacks/should-i-deploy/stack.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replace(
        "basic = { username = \"fake\", password = \"fake\" }",
        "basic = { username = \"fake\", password = \"${var.api_password}\" }",
    );
    std::fs::write(
        &manifest,
        format!("[vars.api_password]\ntype = \"string\"\nsensitive = true\n\n{text}"),
    )
    .unwrap();
    let d = || Deploy::new(&w.project, w.state.path(), &w.moto.url()).env("DEPLOY_STATE", STATE);
    let secret = "s3cr3t-Value-42";
    let mut seen = String::new();
    for args in [
        &[
            "up",
            "should-i-deploy",
            "--yes",
            "--var",
            "api_password=s3cr3t-Value-42",
            "-vv",
        ][..],
        &[
            "up",
            "should-i-deploy",
            "--yes",
            "--var",
            "api_password=s3cr3t-Value-42",
            "-o",
            "json",
        ],
        &["outputs", "should-i-deploy", "-o", "json"],
    ] {
        let out = d().run(args).success();
        seen.push_str(&out.stdout);
        seen.push_str(&out.stderr);
    }
    let state = w.c.block_on(async {
        let o =
            w.c.s3
                .get_object()
                .bucket(BUCKET)
                .key("ci/default/should-i-deploy.json")
                .send()
                .await
                .unwrap();
        String::from_utf8(o.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
    });
    assert!(
        state.contains("sensitive:sha256:"),
        "the password is kept as a salted hash: {state}"
    );
    for (what, text) in [("state", &state), ("output and logs", &seen)] {
        assert!(!text.contains(secret), "{what} shows the secret");
    }
    // the same value is no change; another one is, shown masked
    let out = d()
        .run(&[
            "plan",
            "should-i-deploy",
            "--var",
            "api_password=s3cr3t-Value-42",
        ])
        .success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
    let out = d()
        .run(&[
            "plan",
            "should-i-deploy",
            "--var",
            "api_password=an0ther-Value",
        ])
        .success();
    assert!(
        out.stdout.contains("update   events_connection.connection"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("~ password: \"(sensitive)\" → \"(sensitive, changed)\"\n")
            && !out.stdout.contains("an0ther-Value"),
        "{out:?}"
    );
    let out = d()
        .run(&[
            "plan",
            "should-i-deploy",
            "--var",
            "api_password=an0ther-Value",
            "-o",
            "json",
        ])
        .success();
    assert!(
        !out.stdout.contains("an0ther-Value") && !out.stdout.contains(secret),
        "{out:?}"
    );
}

/// What a CI script needs: an env per branch, exit codes that say whether a plan changes
/// anything, errors it can parse.
#[test]
fn ci_scripts_get_env_names_plan_exit_codes_and_json_errors() {
    let w = World::new();
    let d = || w.deploy();
    let env = d()
        .run(&["env-name", "feature/Add-Login_v2"])
        .success()
        .stdout
        .trim()
        .to_string();
    assert!(env.starts_with("feature-add-l") && env.len() <= 20, "{env}");
    assert_eq!(
        d().run(&["env-name", "feature/Add-Login_v2"])
            .success()
            .stdout
            .trim(),
        env,
        "stable"
    );
    assert_ne!(
        d().run(&["env-name", "feature/add-login-v2"])
            .success()
            .stdout
            .trim(),
        env,
        "distinct"
    );

    let plan = |extra: &[&str]| {
        let mut args = vec![
            "plan",
            "should-i-deploy",
            "--env-from-branch",
            "feature/Add-Login_v2",
            "--detailed-exitcode",
        ];
        args.extend_from_slice(extra);
        d().run(&args)
    };
    plan(&[]).code(2); // everything to create
    d().run(&[
        "up",
        "should-i-deploy",
        "--env-from-branch",
        "feature/Add-Login_v2",
        "--yes",
    ])
    .success();
    let roles: Vec<String> =
        w.c.block_on(w.c.iam.list_roles().send())
            .unwrap()
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect();
    assert!(
        roles.contains(&format!("{env}-sfn-should-i-deploy")),
        "{roles:?}"
    );
    plan(&[]).code(0); // nothing to change
    plan(&["--var", "frequency_in_minutes=nope"]).code(1); // an error

    let out = d().run(&["plan", "no-such-stack", "-o", "json"]).code(2);
    let doc = out.json();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["event"], "error");
    assert_eq!(doc["error"]["exit_code"], 2);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown stack `no-such-stack`"),
        "{doc}"
    );
}

/// Environments nobody closed: listed with their lifetime, and swept when they expire, never
/// the default env, each runner seeing the same list through the S3 state.
#[test]
fn environments_are_listed_and_expired_ones_are_swept() {
    let w = World::new();
    make_bucket(&w);
    let (_a, d) = runner(&w);
    d.run(&[
        "up",
        "should-i-deploy",
        "--env",
        "pr-1",
        "--ttl",
        "1s",
        "--yes",
    ])
    .success();
    let (_b, d) = runner(&w);
    d.run(&[
        "up",
        "should-i-deploy",
        "--env",
        "pr-2",
        "--ttl",
        "72h",
        "--yes",
    ])
    .success();
    let (_c, d) = runner(&w);
    d.run(&["up", "should-i-deploy", "--yes"]).success();
    // the lifetime is on the resources too, and a later up without --ttl keeps it
    let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:pr-2-should-i-deploy";
    let tags =
        w.c.block_on(w.c.sfn.list_tags_for_resource().resource_arn(arn).send())
            .unwrap();
    let ttl: Vec<&str> = tags
        .tags()
        .iter()
        .filter(|t| t.key() == Some("deploy:ttl"))
        .filter_map(|t| t.value())
        .collect();
    assert_eq!(ttl, ["3days"]);
    let (_c2, d) = runner(&w);
    let out = d
        .run(&["plan", "should-i-deploy", "--env", "pr-2"])
        .success();
    assert!(out.stdout.contains("No changes"), "{out:?}");

    let (_d, d) = runner(&w);
    let envs = d.run(&["envs", "-o", "json"]).success().json();
    let rows = envs["envs"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["env"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "pr-1", "pr-2"]);
    let pr2 = &rows[2];
    assert_eq!(
        (pr2["stacks"].clone(), pr2["resources"].clone()),
        (
            serde_json::json!(["should-i-deploy"]),
            serde_json::json!(12)
        )
    );
    let (last, expires) = (
        pr2["last_up"].as_u64().unwrap(),
        pr2["expires"].as_u64().unwrap(),
    );
    assert_eq!(expires - last, 72 * 3600, "expires 72h after the last up");
    assert!(rows[0]["expires"].is_null(), "no --ttl, no expiry");

    // pr-1 expires a second after its up; wait for that to be true, as seen by the clock
    let expiry = rows[1]["expires"].as_u64().unwrap();
    eventually(10, "pr-1 to expire", || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            > expiry
    });
    let (_e, d) = runner(&w);
    let out = d.run(&["sweep"]).code(5);
    assert!(
        out.stderr
            .contains("To sweep:\n  pr-1 (should-i-deploy; expired"),
        "listed first, nothing done unconfirmed: {out:?}"
    );
    let (_f, d) = runner(&w);
    let out = d.run(&["sweep", "--yes"]).success();
    assert!(out.stderr.contains("swept pr-1"), "{out:?}");
    let (_g, d) = runner(&w);
    let names: Vec<String> = d.run(&["envs", "-o", "json"]).success().json()["envs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["env"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["default", "pr-2"]);
    // --older-than takes the stale ones too, and still never the default env
    let (_h, d) = runner(&w);
    let out = d.run(&["sweep", "--older-than", "0s", "--yes"]).success();
    assert!(
        out.stderr.contains("swept pr-2") && !out.stderr.contains("swept default"),
        "{out:?}"
    );
    let roles: Vec<String> =
        w.c.block_on(w.c.iam.list_roles().send())
            .unwrap()
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect();
    assert!(roles.iter().all(|r| !r.starts_with("pr-")), "{roles:?}");
    assert!(
        roles.contains(&"sfn-should-i-deploy".to_string()),
        "the default env stays: {roles:?}"
    );

    // an environment whose state was lost still shows, by its tags, and --orphans sweeps it
    let (_i, d) = runner(&w);
    d.run(&["up", "should-i-deploy", "--env", "pr-5", "--yes"])
        .success();
    w.c.block_on(
        w.c.s3
            .delete_object()
            .bucket(BUCKET)
            .key("ci/pr-5/should-i-deploy.json")
            .send(),
    )
    .unwrap();
    let (_j, d) = runner(&w);
    let rows = d.run(&["envs", "-o", "json"]).success().json()["envs"].clone();
    let pr5 = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["env"] == "pr-5")
        .expect("found by its tags")
        .clone();
    assert_eq!(
        (pr5["state"].clone(), pr5["stacks"].clone()),
        (
            serde_json::json!(false),
            serde_json::json!(["should-i-deploy"])
        ),
        "{pr5}"
    );
    assert!(pr5["tagged"].as_u64().unwrap() >= 1, "{pr5}");
    let (_k, d) = runner(&w);
    let out = d.run(&["sweep", "--yes"]).success();
    assert!(
        !out.stderr.contains("swept pr-5"),
        "without --orphans, an env without state is not swept: {out:?}"
    );
    let (_l, d) = runner(&w);
    let out = d.run(&["sweep", "--orphans", "--yes"]).success();
    assert!(
        out.stderr
            .contains("pr-5 (should-i-deploy; no state: found by its tags)")
            && out.stderr.contains("swept pr-5"),
        "{out:?}"
    );
    let roles: Vec<String> =
        w.c.block_on(w.c.iam.list_roles().send())
            .unwrap()
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect();
    assert!(roles.iter().all(|r| !r.starts_with("pr-5-")), "{roles:?}");
}

/// A summary to post on the pull request: the plan, what was applied, the outputs, in Markdown.
#[test]
fn plans_and_outputs_come_as_markdown_for_pull_requests() {
    let w = World::new();
    let d = || w.deploy();
    let plan = d()
        .run(&["plan", "should-i-deploy", "--env", "pr-3", "-o", "markdown"])
        .success();
    insta::assert_snapshot!("plan_markdown_pr3", plan.stdout);
    let up = d()
        .run(&[
            "up",
            "should-i-deploy",
            "--env",
            "pr-3",
            "--yes",
            "-o",
            "markdown",
        ])
        .success();
    assert!(
        up.stdout
            .contains("**`should-i-deploy` (env `pr-3`): 12 changes applied.**"),
        "{up:?}"
    );
    assert!(
        up.stdout.contains("| `state_machine_arn` | `arn:aws:states:us-east-1:123456789012:stateMachine:pr-3-should-i-deploy` |"),
        "{up:?}"
    );
    let out = d()
        .run(&[
            "outputs",
            "should-i-deploy",
            "--env",
            "pr-3",
            "-o",
            "markdown",
        ])
        .success();
    assert!(
        out.stdout
            .starts_with("### `should-i-deploy` (env `pr-3`)\n\n| output | value |\n|---|---|\n"),
        "{out:?}"
    );
    let out = d()
        .run(&[
            "plan",
            "should-i-deploy",
            "--env",
            "pr-3",
            "-o",
            "markdown",
            "--var",
            "frequency_in_minutes=9",
        ])
        .success();
    assert!(
        out.stdout
            .contains("| ~ update | `rule` | events_rule | `pr-3-should-i-deploy` |"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("<details><summary>What changes</summary>")
            && out.stdout.contains("rate(9 minutes)"),
        "{out:?}"
    );
    let out = d().run(&["list", "-o", "markdown"]).code(2);
    assert!(
        out.stderr
            .contains("invalid value 'markdown' for '--output <FORMAT>'")
            && out.stderr.contains("[possible values: text, json]"),
        "{out:?}"
    );
}

const WORKFLOW: &str = "examples/github-actions/preview-environments.yml";

/// The `run:` blocks of a workflow's job that call deploy (line-based: a `run: |` block is the
/// lines indented deeper than it), so the test runs exactly what the workflow runs.
fn deploy_steps(workflow: &str, job: &str) -> Vec<String> {
    let lines: Vec<&str> = workflow.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == format!("  {job}:"))
        .unwrap_or_else(|| panic!("no job {job}"));
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("  ") && !l.starts_with("   ") && l.ends_with(':'))
        .map_or(lines.len(), |p| start + 1 + p);
    let mut blocks = Vec::new();
    let mut i = start;
    while i < end {
        if let Some(indent) = lines[i].find("run: |") {
            let body: Vec<&str> = lines[i + 1..end]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect();
            if body.iter().any(|l| l.starts_with("deploy ")) {
                blocks.push(body.join("\n"));
            }
            i += body.len();
        }
        i += 1;
    }
    blocks
}

#[test]
fn the_github_actions_example_passes_actionlint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var("DEPLOY_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv"));
    let actionlint = venv.join("bin/actionlint");
    if !actionlint.exists() {
        return skipped(
            "the_github_actions_example_passes_actionlint",
            &format!(
                "{} is missing: scripts/test installs it",
                actionlint.display()
            ),
        );
    }
    // every workflow of the repository (the release, the action's own) and the example; the
    // action is checked where a workflow uses it (`uses: ./`)
    let mut files = vec![root.join(WORKFLOW)];
    for e in std::fs::read_dir(root.join(".github/workflows")).unwrap() {
        files.push(e.unwrap().path());
    }
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            !text.contains("cargo install"),
            "{}: no workflow compiles deploy to use it",
            f.display()
        );
    }
    let out = std::process::Command::new(&actionlint)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The example workflow's own commands, each job on a new "runner" (a fresh checkout, nothing
/// else), against moto with state on a moto bucket: open, push, close; and close again after
/// the state object was lost.
#[test]
fn the_github_actions_example_runs_as_written() {
    let w = World::new();
    make_bucket(&w);
    let workflow =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(WORKFLOW)).unwrap();
    let (up, down, sweep) = (
        deploy_steps(&workflow, "up"),
        deploy_steps(&workflow, "down"),
        deploy_steps(&workflow, "sweep"),
    );
    assert_eq!(
        (up.len(), down.len(), sweep.len()),
        (1, 1, 1),
        "one deploy step per job"
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_deploy"))
        .parent()
        .unwrap()
        .to_path_buf();
    // GitHub's API, for the sweep: this branch's pull request is still open
    let gh = GitHub::start("ok", &["feature/Add-Login_v2"]);
    // a job on a new runner: a fresh checkout (edited by `change`), the step's script, its summary
    let job = |script: &str, branch: &str, change: &dyn Fn(&Path)| -> (Output, String) {
        let checkout = project_copy();
        change(checkout.path());
        let summary = checkout.path().join("summary.md");
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut d = Deploy::new(
            checkout.path(),
            &checkout.path().join(".no-state-here"),
            &w.moto.url(),
        )
        .env_remove("DEPLOY_STATE_DIR")
        .env_remove("DEPLOY_PROJECT")
        .env("DEPLOY_STATE", "s3://deploy-state/previews")
        .env("BRANCH", branch)
        .env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())
        .env("GITHUB_API_URL", &format!("http://127.0.0.1:{}", gh.port))
        .env("GITHUB_REPOSITORY", "o/r")
        .env("GITHUB_TOKEN", "t0ken")
        .env("PATH", &path);
        d = d.current_dir(checkout.path());
        let out = d.shell(script);
        let summary = std::fs::read_to_string(&summary).unwrap_or_default();
        (out, summary)
    };
    let branch = "feature/Add-Login_v2";
    let env = w
        .deploy()
        .run(&["env-name", branch])
        .success()
        .stdout
        .trim()
        .to_string();
    let nothing = |_: &Path| {};
    let pushed = |p: &Path| {
        let m = p.join("stacks/should-i-deploy/stack.toml");
        let text = std::fs::read_to_string(&m)
            .unwrap()
            .replacen("default = 30", "default = 15", 1);
        std::fs::write(&m, text).unwrap();
    };

    // opened
    let (out, summary) = job(&up[0], branch, &nothing);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        summary.contains(&format!(
            "**`should-i-deploy` (env `{env}`): 12 changes applied.**"
        )),
        "{summary}"
    );
    // synchronised: only the change is applied
    let (out, summary) = job(&up[0], branch, &pushed);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        summary.contains("| ~ update | `rule` | events_rule |")
            && summary.contains("1 change applied"),
        "{summary}"
    );
    // closed: nothing of it is left, state included
    let (out, summary) = job(&down[0], branch, &pushed);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        summary.contains("### deploy destroy: `should-i-deploy`"),
        "{summary}"
    );
    nothing_left_but(&w.c, w.moto.port, &[BUCKET]);
    assert!(keys(&w).is_empty(), "{:?}", keys(&w));

    // the same, with the state object lost before the close
    let (out, _) = job(&up[0], "fix/typo", &nothing);
    assert_eq!(out.code, 0, "{out:?}");
    for k in keys(&w) {
        w.c.block_on(w.c.s3.delete_object().bucket(BUCKET).key(&k).send())
            .unwrap();
    }
    let (out, summary) = job(&down[0], "fix/typo", &nothing);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        summary.contains("12 changes applied") || summary.contains("12 to delete"),
        "{summary}"
    );
    nothing_left_but(&w.c, w.moto.port, &[BUCKET]);

    // a pull request closed while its `closed` job did not run: the nightly sweep removes its
    // preview (its branch has no open pull request), then finds nothing more to do
    let (out, _) = job(&up[0], "fix/forgotten", &nothing);
    assert_eq!(out.code, 0, "{out:?}");
    let (out, _) = job(&sweep[0], "main", &nothing);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("branch fix/forgotten has no open pull request in o/r"),
        "{out:?}"
    );
    nothing_left_but(&w.c, w.moto.port, &[BUCKET]);
    assert!(keys(&w).is_empty(), "{:?}", keys(&w));
    let (out, _) = job(&sweep[0], "main", &nothing);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Nothing to sweep"), "{out:?}");
}

/// Many pull requests at once: 16 environments brought up together from 16 runners sharing one
/// S3 state prefix are isolated and all succeed; then all are destroyed together.
#[test]
fn sixteen_environments_at_once_share_the_state_prefix_and_stay_apart() {
    let w = World::new();
    make_bucket(&w);
    let envs: Vec<String> = (1..=16).map(|i| format!("pr-{i}")).collect();
    let run_all = |args: &dyn Fn(&str) -> Vec<String>| {
        let runners: Vec<_> = envs
            .iter()
            .map(|e| {
                let (dir, d) = runner(&w);
                let a = args(e);
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                (dir, e.clone(), d.spawn(&a))
            })
            .collect();
        for (_dir, e, child) in runners {
            let out = finish(child);
            assert_eq!(out.code, 0, "{e}: {out:?}");
        }
    };
    run_all(&|e| {
        ["up", "should-i-deploy", "--env", e, "--yes"]
            .map(String::from)
            .to_vec()
    });
    let mut want: Vec<String> = envs
        .iter()
        .map(|e| format!("ci/{e}/should-i-deploy.json"))
        .collect();
    want.sort();
    assert_eq!(keys(&w), want, "one state object per env, no lock left");
    let machines = w.c.block_on(w.c.sfn.list_state_machines().send()).unwrap();
    assert_eq!(machines.state_machines().len(), 16);
    let (_d, d) = runner(&w);
    let out = d.run(&["envs", "-o", "json"]).success().json();
    assert!(
        out["envs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["resources"] == 12),
        "every env whole: {out}"
    );
    run_all(&|e| {
        ["destroy", "should-i-deploy", "--env", e, "--yes"]
            .map(String::from)
            .to_vec()
    });
    nothing_left_but(&w.c, w.moto.port, &[BUCKET]);
    assert!(keys(&w).is_empty(), "{:?}", keys(&w));
}

/// A fresh runner pointed at `endpoint` (a proxy in front of moto), state on S3.
fn runner_via(w: &World, endpoint: &str) -> (tempfile::TempDir, Deploy) {
    let fresh = tempfile::tempdir().unwrap();
    let d = Deploy::new(&w.project, fresh.path(), endpoint).env("DEPLOY_STATE", STATE);
    (fresh, d)
}

/// `destroy` of the env from a fresh runner through `endpoint`: it ends (exit 0) and leaves
/// nothing, neither resources nor state or lock objects.
fn destroy_all_leaves_nothing(w: &World, endpoint: &str) {
    let (_r, d) = runner_via(w, endpoint);
    d.run_within(HANG, DESTROY_ALL).success();
    nothing_left_but(&w.c, w.moto.port, &[BUCKET]);
    assert!(keys(w).is_empty(), "{:?}", keys(w));
}

const UP_ALL: &[&str] = &[
    "up",
    "--all",
    "--env",
    "pr-9",
    "--var",
    "email=a@example.com",
    "--yes",
];
const DESTROY_ALL: &[&str] = &["destroy", "--env", "pr-9", "--yes"];
/// A hang, not a speed: every step ends well within this at the latencies below.
const HANG: u64 = 120;

/// Every stack at once, state on S3, every call as slow as a real region's (150 and 50 ms): `up
/// --all`, a no-op `up --all` (no mutating call but the state's own) and `destroy` each end,
/// from a fresh runner each, and leave nothing (it hung forever: a lock released by blocking
/// on the runtime while the other stacks' tasks waited on that thread).
#[test]
fn every_stack_at_once_with_s3_state_ends_at_a_regions_latency() {
    for latency in [0.15, 0.05] {
        let w = World::new();
        make_bucket(&w);
        let proxy = Proxy::start(&w.moto, serde_json::json!({ "latency": latency }));
        let (_r1, d) = runner_via(&w, &proxy.url());
        d.run_within(HANG, UP_ALL).success();
        let mut state = keys(&w);
        state.sort();
        assert_eq!(
            state,
            [
                "ci/pr-9/bucket-replication.json",
                "ci/pr-9/create-new-user.json",
                "ci/pr-9/resize-image.json",
                "ci/pr-9/should-i-deploy.json"
            ],
            "at {latency} s: every stack recorded, no lock left"
        );

        w.moto.start_recording();
        let (_r2, d) = runner_via(&w, &proxy.url());
        let out = d.run_within(HANG, UP_ALL).success();
        assert!(out.stdout.contains("No changes"), "{out:?}");
        let outside_s3: Vec<String> = mutating_calls(&w.moto)
            .into_iter()
            .filter(|op| !op.contains("/deploy-state/"))
            .collect();
        assert!(outside_s3.is_empty(), "a no-op up changed {outside_s3:?}");

        destroy_all_leaves_nothing(&w, &proxy.url());
    }
}

/// The same after an `up --all` that failed half way (one kind of resource refused): `destroy`
/// of the env ends and leaves nothing, from a fresh runner.
#[test]
fn destroy_after_a_partial_up_all_with_s3_state_ends_at_a_regions_latency() {
    let w = World::new();
    make_bucket(&w);
    let refused = serde_json::json!({
        "latency": 0.15,
        "faults": [{"operation": "CreateStateMachine", "times": 1000, "status": 400,
                    "code": "AccessDeniedException", "message": "not allowed here"}]
    });
    let proxy = Proxy::start(&w.moto, refused);
    let (_r1, d) = runner_via(&w, &proxy.url());
    let out = d.run_within(HANG, UP_ALL);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("not allowed here"), "{out:?}");
    assert!(
        !keys(&w).iter().any(|k| k.ends_with(".lock")),
        "no lock left: {:?}",
        keys(&w)
    );
    let roles = w.c.block_on(w.c.iam.list_roles().send()).unwrap();
    assert!(!roles.roles().is_empty(), "the up got half way");
    destroy_all_leaves_nothing(&w, &proxy.url());
}

/// An S3 state object of another env copied under this env's prefix (a restored backup, a
/// mistyped `--state`) is refused like a folder's: exit 2 naming the object, no call but the
/// state's own reads, the object unchanged, and the env it belongs to still whole.
#[test]
fn an_s3_state_object_of_another_env_is_refused_before_any_change() {
    let w = World::new();
    make_bucket(&w);
    let (_r1, d) = runner(&w);
    d.run(&["up", "should-i-deploy", "--env", "pr-1", "--yes"])
        .success();
    let get = |key: &str| s3_object(&w.c, BUCKET, key).unwrap();
    let own = get("ci/pr-1/should-i-deploy.json");
    w.c.block_on(
        w.c.s3
            .put_object()
            .bucket(BUCKET)
            .key("ci/pr-2/should-i-deploy.json")
            .body(own.clone().into())
            .send(),
    )
    .unwrap();
    w.moto.start_recording();
    let (_r2, d) = runner(&w);
    let out = d
        .run(&["up", "should-i-deploy", "--env", "pr-2", "--yes"])
        .code(2);
    assert!(
        out.stderr
            .contains("s3://deploy-state/ci/pr-2/should-i-deploy.json")
            && out
                .stderr
                .contains("it holds stack `should-i-deploy` (env `pr-1`)"),
        "{out:?}"
    );
    let outside: Vec<String> = w
        .moto
        .recorded_operations()
        .into_iter()
        .filter(|op| !op.contains("/deploy-state/"))
        .collect();
    assert!(outside.is_empty(), "called {outside:?}");
    assert_eq!(get("ci/pr-2/should-i-deploy.json"), own, "untouched");
    let (_r3, d) = runner(&w);
    let out = d
        .run(&["plan", "should-i-deploy", "--env", "pr-1"])
        .success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
}

/// The lock objects left in the bucket.
fn locks(w: &World) -> Vec<String> {
    keys(w)
        .into_iter()
        .filter(|k| k.ends_with(".lock"))
        .collect()
}

/// `up --all` from a fresh runner through a proxy that holds every call 150 ms, under way: its
/// locks taken and a state machine's create held in flight (by the proxy, until the test writes
/// the returned file), so that it is still running for as long as the test needs.
fn up_all_under_way(
    w: &World,
    lease: &str,
) -> (tempfile::TempDir, Started, Proxy, std::path::PathBuf) {
    let release = w.state.path().join(format!("release-{lease}"));
    let proxy = Proxy::start(
        &w.moto,
        serde_json::json!({"latency": 0.15, "faults": [
            {"operation": "CreateStateMachine", "times": 1, "hold_until": release}]}),
    );
    let (dir, d) = runner_via(w, &proxy.url());
    let started = d.env("DEPLOY_LOCK_LEASE", lease).start(UP_ALL);
    eventually(60, "a state machine's create to be held in flight", || {
        proxy.injected().iter().any(|l| l == "CreateStateMachine")
    });
    assert_eq!(locks(w).len(), 4, "every stack locked: {:?}", keys(w));
    (dir, started, proxy, release)
}

/// A CI job cancelled with SIGINT or SIGTERM (as GitHub cancels one) starts nothing more, lets
/// what is in flight finish, records it, releases its locks and exits non-zero within 10 s; the
/// next runner's `up` converges with no `unlock`.
#[test]
fn a_job_cancelled_by_sigint_or_sigterm_leaves_no_lock_behind() {
    for signal in ["INT", "TERM"] {
        let w = World::new();
        make_bucket(&w);
        let (_r1, started, proxy, release) = up_all_under_way(&w, "2m");
        started.signal(signal);
        // SIGINT: the held call is answered and finishes in the grace; SIGTERM: it is still
        // held when the grace runs out, and is cut off (recorded as pending, sent anyway)
        if signal == "INT" {
            std::fs::write(&release, "").unwrap();
        }
        let (out, took) = started.wait_within(HANG, &format!("up --all after SIG{signal}"));
        std::fs::write(&release, "").unwrap();
        assert_eq!(out.code, 130, "SIG{signal}: {out:?}");
        assert!(
            took <= std::time::Duration::from_secs(10),
            "SIG{signal}: ended {took:?} after the signal"
        );
        assert!(out.stderr.contains("starting nothing more"), "{out:?}");
        if signal == "TERM" {
            assert!(
                out.stderr
                    .contains("the operations still in flight after 5 s were cut off"),
                "{out:?}"
            );
        }
        assert!(locks(&w).is_empty(), "SIG{signal}: {:?}", keys(&w));
        let (_r2, d) = runner_via(&w, &proxy.url());
        d.run_within(HANG, UP_ALL).success();
        destroy_all_leaves_nothing(&w, &proxy.url());
    }
}

/// A job killed outright (SIGKILL) leaves its locks; their lease runs out, and the next runner
/// takes them over, saying whose they were, and converges with no `unlock`.
#[test]
fn the_locks_of_a_killed_job_are_taken_over_once_their_lease_ran_out() {
    let w = World::new();
    make_bucket(&w);
    let (_r1, started, proxy, release) = up_all_under_way(&w, "3s");
    started.signal("KILL");
    std::fs::write(&release, "").unwrap();
    let (out, _) = started.wait_within(HANG, "up --all after SIGKILL");
    assert_eq!(out.code, -1, "killed: {out:?}");
    assert_eq!(
        locks(&w).len(),
        4,
        "a killed run leaves its locks: {:?}",
        keys(&w)
    );
    let (_r2, d) = runner_via(&w, &proxy.url());
    let out = d
        .env("DEPLOY_LOCK_LEASE", "3s")
        .env("DEPLOY_LOCK_TIMEOUT", "60s")
        .run_within(HANG, UP_ALL)
        .success();
    assert!(
        out.stderr
            .contains("took over the lock of stack `should-i-deploy` (env `pr-9`)")
            && out.stderr.contains("whose lease ran out"),
        "{out:?}"
    );
    assert!(locks(&w).is_empty(), "{:?}", keys(&w));
    destroy_all_leaves_nothing(&w, &proxy.url());
}

/// A live holder renews its lease: its lock holds however long past the lease its run takes.
#[test]
fn a_live_holders_lock_holds_past_its_lease() {
    let w = World::new();
    make_bucket(&w);
    let (_r1, mut started, proxy, release) = up_all_under_way(&w, "2s");
    // more than two leases later, still running (held): another runner is refused the lock
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(started.running(), "the first up is still under way");
    let (_r2, d) = runner_via(&w, &proxy.url());
    let out = d.env("DEPLOY_LOCK_LEASE", "2s").run_within(
        HANG,
        &[
            "plan",
            "create-new-user",
            "--env",
            "pr-9",
            "--var",
            "email=a@example.com",
        ],
    );
    assert_eq!(out.code, 6, "{out:?}");
    assert!(
        out.stderr
            .contains("is being changed by another deploy run")
            && out.stderr.contains("lease renewed"),
        "{out:?}"
    );
    assert!(
        started.running(),
        "the first up was still under way when refused"
    );
    std::fs::write(&release, "").unwrap();
    let (out, _) = started.wait_within(HANG, "the first up --all");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("taken over"), "{out:?}");
    destroy_all_leaves_nothing(&w, &proxy.url());
}

/// Two runners that find the same expired lock at once: only one takes it over; the other
/// waits for it like any held lock; both converge and the state is whole.
#[test]
fn of_two_runners_taking_over_one_expired_lock_only_one_wins() {
    let w = World::new();
    make_bucket(&w);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stale = serde_json::json!({"who": "ci", "host": "runner-3", "pid": 4242, "command": "up",
        "since": now - 900, "lease_secs": 120, "renewed": now - 600});
    w.c.block_on(
        w.c.s3
            .put_object()
            .bucket(BUCKET)
            .key("ci/pr-7/should-i-deploy.lock")
            .body(stale.to_string().into_bytes().into())
            .send(),
    )
    .unwrap();
    let up = ["up", "should-i-deploy", "--env", "pr-7", "--yes"];
    let (_a, da) = runner(&w);
    let (_b, db) = runner(&w);
    let a = da.env("DEPLOY_LOCK_TIMEOUT", "60s").start(&up);
    let b = db.env("DEPLOY_LOCK_TIMEOUT", "60s").start(&up);
    let (a, _) = a.wait_within(HANG, "runner a");
    let (b, _) = b.wait_within(HANG, "runner b");
    assert_eq!((a.code, b.code), (0, 0), "{a:?}\n{b:?}");
    let took = [&a, &b]
        .iter()
        .filter(|o| o.stderr.contains("took over the lock"))
        .count();
    assert_eq!(took, 1, "exactly one took it over:\n{a:?}\n{b:?}");
    assert!(
        [&a, &b]
            .iter()
            .any(|o| o.stderr.contains("held by ci on runner-3 (pid 4242")),
        "says whose it was"
    );
    assert!(locks(&w).is_empty(), "{:?}", keys(&w));
    let (_c, d) = runner(&w);
    let out = d
        .run(&["plan", "should-i-deploy", "--env", "pr-7"])
        .success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
}

/// A loopback server that speaks the part of GitHub's REST API the sweep uses: the open pull
/// requests of `o/r`, `per_page` to a page, pages linked by the `Link` header. `mode`: "ok",
/// "401" (a bad token), "500-on-page-2" (a page that fails). Records each request line and
/// its Authorization header.
struct GitHub {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl GitHub {
    fn start(mode: &'static str, open: &'static [&'static str]) -> GitHub {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf[n..]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                }
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = req.lines().next().unwrap_or_default().to_string();
                let auth = req
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                    .unwrap_or_default()
                    .to_string();
                log.lock().unwrap().push(format!("{line} | {auth}"));
                let page: usize = line
                    .split(['?', '&', ' '])
                    .find_map(|p| p.strip_prefix("page="))
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1);
                let (status, body, link) = match (mode, page) {
                    ("401", _) => (
                        "401 Unauthorized",
                        r#"{"message":"Bad credentials"}"#.to_string(),
                        None,
                    ),
                    ("500-on-page-2", 2) => (
                        "500 Internal Server Error",
                        r#"{"message":"boom"}"#.to_string(),
                        None,
                    ),
                    _ => {
                        // one pull request a page, the pages linked
                        let pulls: Vec<serde_json::Value> = open
                            .get(page - 1)
                            .map(|b| serde_json::json!({"number": page, "head": {"ref": b}}))
                            .into_iter()
                            .collect();
                        let next = (page < open.len()).then(|| {
                            format!("<http://127.0.0.1:{port}/repos/o/r/pulls?state=open&per_page=100&page={}>; rel=\"next\"", page + 1)
                        });
                        ("200 OK", serde_json::to_string(&pulls).unwrap(), next)
                    }
                };
                let link = link.map(|l| format!("Link: {l}\r\n")).unwrap_or_default();
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{link}Connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        GitHub { port, seen }
    }

    fn sweep(&self, d: Deploy) -> Output {
        d.env("GITHUB_API_URL", &format!("http://127.0.0.1:{}", self.port))
            .env("GITHUB_REPOSITORY", "o/r")
            .env("GITHUB_TOKEN", "t0ken")
            .run(&["sweep", "--closed-pull-requests", "--yes"])
    }
}

/// `sweep --closed-pull-requests` destroys exactly the envs made from a branch that no open pull
/// request has any more (every page of GitHub's answer read), leaves the others, and destroys
/// nothing when GitHub answers an error or a page fails.
#[test]
fn environments_of_closed_pull_requests_are_swept_and_nothing_when_github_fails() {
    let w = World::new();
    make_bucket(&w);
    for branch in [
        "feature/still-open",
        "feature/merged",
        "refs/heads/old/Closed_PR",
    ] {
        let (_r, d) = runner(&w);
        d.run(&[
            "up",
            "should-i-deploy",
            "--env-from-branch",
            branch,
            "--yes",
        ])
        .success();
    }
    let (_r, d) = runner(&w);
    d.run(&["up", "should-i-deploy", "--env", "pr-5", "--yes"])
        .success();
    let envs = || {
        let (_r, d) = runner(&w);
        let out = d.run(&["envs", "--output", "json"]).success().json();
        let mut by: Vec<(String, String)> = out["envs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["env"].as_str().unwrap().to_string(),
                    e["branch"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect();
        by.sort();
        by
    };
    let before = envs();
    assert_eq!(before.len(), 4, "{before:?}");
    assert!(
        before.contains(&("pr-5".to_string(), "-".to_string())),
        "{before:?}"
    );
    assert!(
        before.iter().any(|(_, b)| b == "old/Closed_PR"),
        "the branch is recorded without refs/heads/: {before:?}"
    );

    for mode in ["401", "500-on-page-2"] {
        let gh = GitHub::start(mode, &["feature/still-open", "somebody-else"]);
        let (_r, d) = runner(&w);
        let out = gh.sweep(d);
        assert_eq!(out.code, 3, "{mode}: {out:?}");
        let said = if mode == "401" {
            "HTTP 401 Unauthorized Bad credentials"
        } else {
            "(page 2): HTTP 500"
        };
        assert!(
            out.stderr.contains(said) && out.stderr.contains("nothing was swept"),
            "{mode}: {out:?}"
        );
        assert_eq!(envs(), before, "{mode}: nothing swept");
    }

    let gh = GitHub::start("ok", &["feature/still-open", "somebody-else", "third"]);
    let (_r, d) = runner(&w);
    let out = gh.sweep(d).success();
    assert!(
        out.stderr
            .contains("branch feature/merged has no open pull request in o/r"),
        "{out:?}"
    );
    let seen = gh.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "every page read: {seen:?}");
    assert!(
        seen.iter()
            .all(|s| s.contains("/repos/o/r/pulls?state=open") && s.contains("Bearer t0ken")),
        "{seen:?}"
    );
    let after = envs();
    assert_eq!(
        after.len(),
        2,
        "the still-open branch's env and pr-5 remain: {after:?}"
    );
    assert!(after.iter().any(|(e, _)| e == "pr-5"), "{after:?}");
    assert!(
        after.iter().any(|(_, b)| b == "feature/still-open"),
        "{after:?}"
    );
}

/// Serves the files under `root` on a loopback port (GET only; 404 for the rest).
fn serve_files(root: std::path::PathBuf) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = vec![0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split(' ').nth(1).unwrap_or("/").trim_start_matches('/');
            let (status, body) = match std::fs::read(root.join(path)) {
                Ok(b) => ("200 OK", b),
                Err(_) => ("404 Not Found", b"not found".to_vec()),
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(&body);
        }
    });
    port
}

/// `scripts/install` picks this machine's asset from a releases URL, installs it once its
/// sha256 matches, and refuses a mismatch without writing anything to the install folder.
#[test]
fn the_install_script_installs_a_served_release_and_refuses_a_bad_checksum() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        other => {
            return skipped(
                "the_install_script",
                &format!("no release target for {other}"),
            );
        }
    };
    let os = match std::env::consts::OS {
        "linux" => "unknown-linux-gnu",
        "macos" => "apple-darwin",
        other => {
            return skipped(
                "the_install_script",
                &format!("no release target for {other}"),
            );
        }
    };
    let asset = format!("deploy-{arch}-{os}.tar.gz");
    // a release as the release workflow lays it out: v<version>/<asset> and its .sha256
    let releases = tempfile::tempdir().unwrap();
    let v = releases.path().join("v0.1.0");
    std::fs::create_dir_all(&v).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_deploy"));
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(bin.parent().unwrap())
        .arg("-czf")
        .arg(v.join(&asset))
        .arg("deploy")
        .status()
        .unwrap();
    assert!(status.success());
    let sum = |file: &Path| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(file).unwrap()))
    };
    let good = format!("{}  {asset}\n", sum(&v.join(&asset)));
    std::fs::write(v.join(format!("{asset}.sha256")), &good).unwrap();
    let port = serve_files(releases.path().to_path_buf());
    let install = |to: &Path| {
        std::process::Command::new("sh")
            .arg(root.join("scripts/install"))
            .args(["--version", "0.1.0", "--to"])
            .arg(to)
            .env("DEPLOY_RELEASES_URL", format!("http://127.0.0.1:{port}"))
            .output()
            .unwrap()
    };

    let to = tempfile::tempdir().unwrap();
    let out = install(&to.path().join("bin"));
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("installed deploy 0.1.0 ({arch}-{os})")),
        "{said}"
    );
    let version = std::process::Command::new(to.path().join("bin/deploy"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "deploy 0.1.0"
    );

    // a checksum that does not match: refused, nothing written
    std::fs::write(
        v.join(format!("{asset}.sha256")),
        format!("{}  {asset}\n", "0".repeat(64)),
    )
    .unwrap();
    let to = tempfile::tempdir().unwrap();
    let out = install(&to.path().join("bin"));
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("checksum mismatch for {asset}"))
            && said.contains("nothing was installed"),
        "{said}"
    );
    assert!(
        !to.path().join("bin").exists(),
        "nothing written to the install folder"
    );
    // a version that is not there: refused, naming the URL
    let out = std::process::Command::new("sh")
        .arg(root.join("scripts/install"))
        .args(["--version", "9.9.9", "--to"])
        .arg(to.path().join("bin"))
        .env("DEPLOY_RELEASES_URL", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && said.contains("could not download"),
        "{said}"
    );
    assert!(!to.path().join("bin").exists());
}

/// Terraform's saved-plan contract, from fresh runners with state on S3: what was reviewed
/// (`plan --out`) is exactly what `up --plan` applies, with no question; a plan whose state,
/// manifest or live resources changed since, of another env, or a file that is not a plan is
/// refused with no mutating call.
#[test]
fn a_saved_plan_is_applied_exactly_or_refused_when_anything_changed() {
    let w = World::with_project_copy();
    make_bucket(&w);
    let plans = tempfile::tempdir().unwrap();
    let file = |n: &str| plans.path().join(n).display().to_string();
    let env = ["--env", "pr-3"];
    // `plan should-i-deploy --env pr-3` and more
    let plan = |more: &[&str]| -> Output {
        let mut args = vec!["plan", "should-i-deploy", "--env", "pr-3"];
        args.extend_from_slice(more);
        let (_r, d) = runner(&w);
        d.run(&args).success()
    };
    let (_r, d) = runner(&w);
    d.run(&["up", "should-i-deploy", "--env", "pr-3", "--yes"])
        .success();

    // reviewed on one runner, applied on another: exactly the plan, no question asked
    let planned = plan(&[
        "--var",
        "frequency_in_minutes=15",
        "--out",
        &file("a.json"),
        "--output",
        "json",
    ]);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file("a.json")).unwrap()).unwrap();
    assert_eq!(
        saved["stacks"][0]["plan"],
        planned.json(),
        "the file's plan is plan --output json's"
    );
    let text = std::fs::read_to_string(file("a.json")).unwrap();
    assert!(
        text.contains("\"password\": \"sensitive:sha256:")
            && !text.contains("\"password\": \"fake\""),
        "the connection's password only sealed"
    );
    let (_r, d) = runner(&w);
    let out = d
        .run(&["up", "--plan", &file("a.json"), env[0], env[1]])
        .success();
    assert!(out.stdout.contains("1 change applied"), "{out:?}");
    let out = plan(&["--var", "frequency_in_minutes=15"]);
    assert!(
        out.stdout.contains("No changes"),
        "applied as planned: {out:?}"
    );

    let refused = |args: &[&str], said: &str| {
        w.moto.start_recording();
        let (_r, d) = runner(&w);
        let out = d.run(args).code(2);
        assert!(out.stderr.contains(said), "{args:?}: {out:?}");
        let changed: Vec<String> = mutating_calls(&w.moto)
            .into_iter()
            .filter(|op| !op.contains("/deploy-state/"))
            .collect();
        assert!(changed.is_empty(), "{args:?} changed {changed:?}");
    };

    // stale: another up changed the state since the plan
    plan(&["--var", "frequency_in_minutes=20", "--out", &file("b.json")]);
    let (_r, d) = runner(&w);
    d.run(&[
        "up",
        "should-i-deploy",
        "--env",
        "pr-3",
        "--var",
        "frequency_in_minutes=25",
        "--yes",
    ])
    .success();
    refused(
        &["up", "--plan", &file("b.json"), "--env", "pr-3"],
        "stale plan: stack `should-i-deploy` (env `pr-3`): its recorded state changed since the plan was made",
    );
    // another env, and a file that is not a plan
    refused(
        &["up", "--plan", &file("b.json"), "--env", "pr-4"],
        "the plan is for env `pr-3`, and this run is for env `pr-4`",
    );
    std::fs::write(file("c.json"), "{\"plans\": []}").unwrap();
    refused(
        &["up", "--plan", &file("c.json"), "--env", "pr-3"],
        "this file is not a plan saved by `deploy plan --out`",
    );

    // the manifest changed after the plan was made
    plan(&["--out", &file("d.json")]);
    let manifest = w.project.join("stacks/should-i-deploy/stack.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen("\"Step Functions\"", "\"Step Functions (edited)\"", 1),
    )
    .unwrap();
    refused(
        &["up", "--plan", &file("d.json"), "--env", "pr-3"],
        "no longer give what was planned",
    );
    std::fs::write(&manifest, &text).unwrap();

    // the live resources changed after the plan was made
    w.c.block_on(
        w.c.events
            .put_rule()
            .name("pr-3-should-i-deploy")
            .schedule_expression("rate(7 minutes)")
            .send(),
    )
    .unwrap();
    refused(
        &["up", "--plan", &file("d.json"), "--env", "pr-3"],
        "its resources in AWS changed since the plan was made",
    );
    let (_r, d) = runner(&w);
    d.run(&["destroy", "--env", "pr-3", "--yes"]).success();
    nothing_left_but(&w.c, w.moto.port, &[BUCKET]);
}
