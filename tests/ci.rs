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
    w.c.block_on(w.c.s3.create_bucket().bucket(BUCKET).send()).unwrap();
}

/// A new CI runner: its own empty working state folder, the repository, and the S3 state URL.
fn runner(w: &World) -> (tempfile::TempDir, Deploy) {
    let fresh = tempfile::tempdir().unwrap();
    let d = Deploy::new(&w.project, fresh.path(), &w.moto.url()).env("DEPLOY_STATE", STATE);
    (fresh, d)
}

fn keys(w: &World) -> Vec<String> {
    let out = w.c.block_on(w.c.s3.list_objects_v2().bucket(BUCKET).send()).unwrap();
    out.contents().iter().map(|o| o.key().unwrap().to_string()).collect()
}

fn put_lock(w: &World, holder: &str) {
    w.c.block_on(w.c.s3.put_object().bucket(BUCKET).key("ci/pr-7/should-i-deploy.lock").body(holder.as_bytes().to_vec().into()).send())
        .unwrap();
}

fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true)
}

#[test]
fn state_on_s3_is_shared_by_runners_that_have_nothing_else() {
    let w = World::new();
    make_bucket(&w);

    // pull request opened: one runner brings the environment up
    let (dir1, d) = runner(&w);
    d.run(&["up", "should-i-deploy", "--env", "pr-7", "--yes"]).success();
    assert!(empty(dir1.path()), "nothing recorded on the runner itself");
    assert_eq!(keys(&w), ["ci/pr-7/should-i-deploy.json"], "one object per stack and env, the lock released");
    let head = w.c.block_on(w.c.s3.head_object().bucket(BUCKET).key("ci/pr-7/should-i-deploy.json").send()).unwrap();
    assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("AES256"), "written with server-side encryption");

    // another runner sees it all: no changes, listed, outputs
    let (_d2, d) = runner(&w);
    let out = d.run(&["plan", "should-i-deploy", "--env", "pr-7"]).success();
    assert!(out.stdout.contains("No changes"), "{out:?}");
    let (_d3, d) = runner(&w);
    let rows = d.run(&["list", "--env", "pr-7", "-o", "json"]).success().json();
    let row = rows.as_array().unwrap().iter().find(|r| r["stack"] == "should-i-deploy").unwrap().clone();
    assert_eq!((row["env"].as_str(), row["status"].as_str()), (Some("pr-7"), Some("deployed")));

    // a run that died holding the lock: the next one says who, and how to clear it
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 90;
    let holder = format!(r#"{{"who": "ci", "host": "runner-3", "pid": 4242, "command": "up", "since": {since}}}"#);
    put_lock(&w, &holder);
    let (_d4, d) = runner(&w);
    let out = d.run(&["up", "should-i-deploy", "--env", "pr-7", "--yes"]).code(6);
    assert!(out.stderr.contains("is being changed by another deploy run: held by ci on runner-3 (pid 4242, `deploy up`), 9"), "{out:?}");
    assert!(out.stderr.contains("s3://deploy-state/ci/pr-7/should-i-deploy.lock"), "{out:?}");
    assert!(out.stderr.contains("deploy unlock should-i-deploy --env pr-7"), "{out:?}");
    let (_d5, d) = runner(&w);
    let out = d.run(&["unlock", "should-i-deploy", "--env", "pr-7"]).success();
    assert!(out.stdout.contains("removed the lock of stack `should-i-deploy` (env `pr-7`) held by ci on runner-3"), "{out:?}");

    // --lock-timeout waits for a lock that is released meanwhile
    put_lock(&w, &holder);
    let (_d6, d) = runner(&w);
    let mut child = d.spawn(&["up", "should-i-deploy", "--env", "pr-7", "--yes", "--var", "frequency_in_minutes=9", "--lock-timeout", "2m"]);
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let waiting = lines.by_ref().map_while(Result::ok).find(|l| l.contains("waiting up to 2m for the lock"));
    assert!(waiting.is_some_and(|l| l.contains("held by ci on runner-3")), "it says it waits, and for whom");
    w.c.block_on(w.c.s3.delete_object().bucket(BUCKET).key("ci/pr-7/should-i-deploy.lock").send()).unwrap();
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
    let out = d.run(&["plan", "should-i-deploy", "--env", "pr-8", "--var", "frequency_in_minutes=6"]).success();
    assert!(out.stdout.contains("No changes"), "the state is whole and matches what is live: {out:?}");
}

#[test]
fn a_state_bucket_that_does_not_exist_is_named() {
    let w = World::new();
    let out = Deploy::new(&w.project, w.state.path(), &w.moto.url())
        .run(&["plan", "should-i-deploy", "--state", "s3://no-such-state-bucket/x"])
        .code(2);
    assert!(out.stderr.contains("the state bucket no-such-state-bucket does not exist"), "{out:?}");
    assert!(out.stderr.contains("aws s3 mb s3://no-such-state-bucket"), "{out:?}");
}

#[test]
fn the_project_file_sets_the_state_url_once() {
    let w = World::with_project_copy();
    make_bucket(&w);
    std::fs::write(w.project.join("deploy.toml"), "# shared state for CI\n[state]\nurl = \"s3://deploy-state/from-file\"\n").unwrap();
    let fresh = tempfile::tempdir().unwrap();
    // DEPLOY_STATE_DIR (set by the harness) is an explicit choice: unset it to let the file speak
    Deploy::new(&w.project, fresh.path(), &w.moto.url()).env_remove("DEPLOY_STATE_DIR").run(&["up", "should-i-deploy", "--yes"]).success();
    assert_eq!(keys(&w), ["from-file/default/should-i-deploy.json"]);
    std::fs::write(w.project.join("deploy.toml"), "[state]\nurll = \"s3://x\"\n").unwrap();
    let out = Deploy::new(&w.project, fresh.path(), &w.moto.url()).env_remove("DEPLOY_STATE_DIR").run(&["plan", "should-i-deploy"]).code(2);
    assert!(out.stderr.contains("deploy.toml:2: invalid project file: unknown field `urll`"), "{out:?}");
}
