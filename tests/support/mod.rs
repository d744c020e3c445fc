//! Test harness: a real moto server per test (free loopback port, managed policies loaded,
//! request recorder on), the real `deploy` binary driven with a fluent helper, SDK clients
//! pointed at the same endpoint to check what was deployed, and a fault-injecting proxy.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The interpreter that runs moto and the test helpers: DEPLOY_TEST_PYTHON (scripts/test sets
/// it), else the project's virtual environment, else python3.
pub fn python() -> String {
    std::env::var("DEPLOY_TEST_PYTHON").unwrap_or_else(|_| {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    })
}

/// PATH with the project's Python environment first: what a runner of the shared corpora starts
/// by name (`moto_server`) is found there on a machine that has it nowhere else.
pub fn path_with_venv() -> String {
    let venv_bin = Path::new(&python())
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{venv_bin}:{p}"),
        _ => venv_bin,
    }
}

/// Material outside the repository that some checks compare with (the tutorial's published
/// definitions, the upstream JSONata suite): `DEPLOY_SHARED_DIR` (default `../shared`) joined
/// with `rel`. When it is not there, the check says by name that it is skipped, on the
/// terminal (not captured by the test harness) and in `DEPLOY_SKIP_LOG` for scripts/test's
/// summary, and the caller returns: never silently passed, never failed.
pub fn outside(check: &str, rel: &str) -> Option<PathBuf> {
    let base = std::env::var("DEPLOY_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let path = base.join(rel);
    if path.exists() {
        return Some(path);
    }
    skipped(
        check,
        &format!(
            "{} not found (set DEPLOY_SHARED_DIR to the folder that holds {rel})",
            path.display()
        ),
    );
    None
}

/// Reports a check as skipped, with why: on stderr past the harness's capture, and in the
/// file named by DEPLOY_SKIP_LOG when set.
pub fn skipped(check: &str, why: &str) {
    let line = format!("SKIPPED {check}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Ok(log) = std::env::var("DEPLOY_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// A loopback port nothing listens on, never the same twice in one test process: the kernel
/// may hand a port it just gave (and the caller closed) to the next bind of port 0, and two
/// servers started at once by parallel tests then race for it (a test once talked to another
/// test's moto, which answered the readiness check in place of its own proxy).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Minimal HTTP/1.0 request to a local server; returns (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn wait_for(port: u16, child: &mut Child, what: &str) {
    let start = Instant::now();
    loop {
        if let Ok((200, _)) = http(port, "GET", "/moto-api/data.json", "") {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status} before answering (is moto[server] installed? scripts/test installs it)"
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not answer on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct Moto {
    pub port: u16,
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording.jsonl"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("moto.log")).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto with {}: {e}", python()));
        wait_for(port, &mut child, "moto");
        Moto { port, child, dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Lets moto run JSONPath state machines, with Lambda answering from a queue of results
    /// instead of running code. Must come before the state machines are created: moto keeps
    /// executable machines in another store.
    pub fn enable_execution(&self) {
        let (status, _) = http(
            self.port,
            "POST",
            "/moto-api/config",
            r#"{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}"#,
        )
        .unwrap();
        assert_eq!(status, 201);
    }

    /// Queues what moto's Lambda answers to the next invocations, in order.
    pub fn queue_lambda_results(&self, results: &[serde_json::Value]) {
        let results: Vec<String> = results.iter().map(|r| r.to_string()).collect();
        let body = serde_json::json!({"results": results, "region": "us-east-1"}).to_string();
        let (status, _) = http(
            self.port,
            "POST",
            "/moto-api/static/lambda-simple/response",
            &body,
        )
        .unwrap();
        assert_eq!(status, 201);
    }

    pub fn start_recording(&self) {
        http(self.port, "POST", "/moto-api/recorder/reset-recording", "").unwrap();
        http(self.port, "POST", "/moto-api/recorder/start-recording", "").unwrap();
    }

    /// The bodies of the recorded requests for one operation (decoded), in order.
    pub fn recorded_bodies(&self, operation: &str) -> Vec<String> {
        http(self.port, "POST", "/moto-api/recorder/stop-recording", "").unwrap();
        let (_, body) = http(
            self.port,
            "GET",
            "/moto-api/recorder/download-recording",
            "",
        )
        .unwrap();
        recording(&body)
            .into_iter()
            .filter(|e| operation_of(e) == operation)
            .map(|e| {
                let b = e["body"].as_str().unwrap_or_default();
                if e["body_encoded"].as_bool() == Some(true) {
                    String::from_utf8_lossy(&aws_smithy_types::base64::decode(b).unwrap())
                        .into_owned()
                } else {
                    b.to_string()
                }
            })
            .collect()
    }

    /// The API operations recorded since `start_recording`, in order (`Service.Operation`-ish:
    /// the X-Amz-Target for JSON services, the Action for query services).
    pub fn recorded_operations(&self) -> Vec<String> {
        http(self.port, "POST", "/moto-api/recorder/stop-recording", "").unwrap();
        let (_, body) = http(
            self.port,
            "GET",
            "/moto-api/recorder/download-recording",
            "",
        )
        .unwrap();
        recording(&body).iter().map(operation_of).collect()
    }
}

/// The entries of moto's recording: JSON objects one after another. Read as a stream, not
/// line by line: moto's threads append an entry and its newline in two writes, so two
/// requests answered at once can put two entries on one line.
fn recording(body: &str) -> Vec<serde_json::Value> {
    serde_json::Deserializer::from_str(body)
        .into_iter::<serde_json::Value>()
        .map(|e| e.unwrap_or_else(|err| panic!("moto's recording does not parse: {err}")))
        .collect()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn operation_of(entry: &serde_json::Value) -> String {
    if let Some(headers) = entry["headers"].as_object() {
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("x-amz-target") {
                return v
                    .as_str()
                    .unwrap_or_default()
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        }
    }
    let body = entry["body"].as_str().unwrap_or_default();
    let body = if entry["body_encoded"].as_bool() == Some(true) {
        String::from_utf8(aws_smithy_types::base64::decode(body).unwrap()).unwrap_or_default()
    } else {
        body.to_string()
    };
    body.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(str::to_string)
        .unwrap_or_else(|| {
            // REST services (S3, Lambda, Pipes): the method and the path name the operation.
            let url = entry["url"].as_str().unwrap_or("");
            let path = url
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_default();
            format!("{} {path}", entry["method"].as_str().unwrap_or(""))
        })
}

pub fn is_mutating(op: &str) -> bool {
    let read = ["Get", "List", "Describe", "GET ", "HEAD "];
    !read.iter().any(|p| op.starts_with(p))
}

/// A fault-injecting proxy in front of moto (tests/support/fault_proxy.py).
pub struct Proxy {
    pub port: u16,
    child: Child,
    pub log: PathBuf,
}

impl Proxy {
    /// `faults`: JSON list of {"operation": "CreateStateMachine", "times": 2, "status": 400,
    /// "protocol": "json" | "query", "code": "...", "message": "..."}.
    pub fn start(upstream: &Moto, faults: serde_json::Value) -> Proxy {
        let port = free_port();
        let log = upstream.dir.path().join("proxy.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fault_proxy.py");
        let mut child = Command::new(python())
            .arg(script)
            .args([
                port.to_string(),
                upstream.port.to_string(),
                faults.to_string(),
                log.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(port, &mut child, "fault proxy");
        Proxy { port, child, log }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many faults were injected, per operation.
    pub fn injected(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of the project (stacks/ and templates/) that a test may edit.
pub fn project_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["stacks", "templates"] {
        copy_dir(&root.join(sub), &dir.path().join(sub));
    }
    dir
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// The Lambda function's wheels, downloaded once by scripts/test before the tests run.
pub fn wheelhouse() -> PathBuf {
    std::env::var("DEPLOY_TEST_WHEELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-wheels"))
}

pub fn require_wheelhouse() {
    let w = wheelhouse();
    let has_pillow = std::fs::read_dir(&w)
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("pillow-"))
        })
        .unwrap_or(false);
    assert!(
        has_pillow,
        "no Pillow wheel in {}: run the tests with scripts/test, which fetches the function's wheels before the tests",
        w.display()
    );
}

/// An empty file, to stand for the shared AWS config and credentials files.
pub fn empty_file() -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-aws-config");
    if !p.exists() {
        std::fs::write(&p, "").unwrap();
    }
    p
}

/// Waits for a spawned command.
pub fn finish(child: std::process::Child) -> Output {
    child.wait_with_output().unwrap().into()
}

/// Waits until `f` holds, for at most `secs` seconds.
pub fn eventually(secs: u64, what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Output {
    pub fn success(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }
    pub fn code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:?}");
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// The real binary, with a clean AWS environment: static test credentials, no instance
/// metadata, no shared config, the endpoint given, and its own state folder.
pub struct Deploy {
    cmd: Command,
}

impl Deploy {
    pub fn new(project: &Path, state: &Path, endpoint: &str) -> Deploy {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deploy"));
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("DEPLOY_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", empty_file())
            .env("AWS_SHARED_CREDENTIALS_FILE", empty_file())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("DEPLOY_PROJECT", project)
            .env("DEPLOY_STATE_DIR", state)
            .env("DEPLOY_RETRY_BASE_MS", "20")
            // Nothing may download at test time: pip installs from the wheelhouse only.
            .env("PIP_NO_INDEX", "1")
            .env("PIP_FIND_LINKS", wheelhouse())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        Deploy { cmd }
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: &str) -> Self {
        self.cmd.env_remove(k);
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Runs `script` with bash (`set -euo pipefail`) in this command's environment instead of
    /// the binary itself (`deploy` must be on the PATH given).
    pub fn shell(self, script: &str) -> Output {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &format!("set -euo pipefail\n{script}")]);
        for (k, v) in self.cmd.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(dir) = self.cmd.get_current_dir() {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::null()).output().unwrap().into()
    }

    /// Starts the command without waiting (stdout and stderr captured).
    pub fn spawn(mut self, args: &[&str]) -> std::process::Child {
        self.cmd
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn run(mut self, args: &[&str]) -> Output {
        self.cmd.args(args).output().unwrap().into()
    }

    /// Runs the command, killing it if it has not ended within `secs` (a hang, not a speed
    /// check: the bound is generous) and failing the test with what it printed until then.
    pub fn run_within(self, secs: u64, args: &[&str]) -> Output {
        let what = format!("`deploy {}`", args.join(" "));
        let (output, _) = self.start(args).wait_within(secs, &what);
        output
    }

    /// Starts the command in the background, its output collected as it comes.
    pub fn start(self, args: &[&str]) -> Started {
        let mut child = self.spawn(args);
        let read = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        let out = read(
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn Read + Send>),
        );
        let err = read(
            child
                .stderr
                .take()
                .map(|e| Box::new(e) as Box<dyn Read + Send>),
        );
        Started { child, out, err }
    }
}

/// A `deploy` process started in the background.
pub struct Started {
    child: Child,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
}

impl Started {
    /// Sends it a signal by name (`INT`, `TERM`, `KILL`).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for it to end (killed, and the test failed, after `secs`): what it printed and
    /// how long the wait took.
    pub fn wait_within(mut self, secs: u64, what: &str) -> (Output, Duration) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break Some(status);
            }
            if start.elapsed() > Duration::from_secs(secs) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let waited = start.elapsed();
        let output = Output {
            code: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout: self.out.join().unwrap(),
            stderr: self.err.join().unwrap(),
        };
        assert!(
            status.is_some(),
            "{what} had not ended after {secs} s (killed): {output:?}"
        );
        (output, waited)
    }
}

/// One test's world: a moto server, a state folder, a project (the repository's, or a copy
/// the test may edit), and SDK clients on the same endpoint.
pub struct World {
    pub moto: Moto,
    pub state: tempfile::TempDir,
    pub project: PathBuf,
    _copy: Option<tempfile::TempDir>,
    pub c: Clients,
}

impl World {
    pub fn new() -> World {
        let moto = Moto::start();
        let c = Clients::new(&moto.url());
        World {
            c,
            moto,
            state: tempfile::tempdir().unwrap(),
            project: Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf(),
            _copy: None,
        }
    }

    pub fn with_project_copy() -> World {
        let copy = project_copy();
        World {
            project: copy.path().to_path_buf(),
            _copy: Some(copy),
            ..World::new()
        }
    }

    /// The binary pointed at moto.
    pub fn deploy(&self) -> Deploy {
        self.via(&self.moto.url())
    }

    /// The binary pointed at another endpoint (a proxy in front of moto).
    pub fn via(&self, endpoint: &str) -> Deploy {
        Deploy::new(&self.project, self.state.path(), endpoint)
    }
}

pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub pipes: aws_sdk_pipes::Client,
    pub datasync: aws_sdk_datasync::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub rt: tokio::runtime::Runtime,
}

impl Clients {
    pub fn new(endpoint: &str) -> Clients {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        "testing", "testing", None, None, "tests",
                    ),
                ),
            )
            .build();
        Clients {
            iam: aws_sdk_iam::Client::new(&config),
            sfn: aws_sdk_sfn::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            ),
            sns: aws_sdk_sns::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            ecr: aws_sdk_ecr::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            pipes: aws_sdk_pipes::Client::new(&config),
            datasync: aws_sdk_datasync::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            rt,
        }
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// Nothing of any stack is left in the account: roles, users, groups, customer policies, state
/// machines, rules, connections (and the secrets they create), topics, queues, buckets, tables,
/// functions, repositories, log groups, pipes, DataSync locations and tasks.
pub fn nothing_left(c: &Clients, port: u16) {
    nothing_left_but(c, port, &[])
}

/// As `nothing_left`, with these buckets (a state bucket, made by the test) kept.
pub fn nothing_left_but(c: &Clients, port: u16, keep_buckets: &[&str]) {
    c.block_on(async {
        let roles: Vec<String> = c
            .iam
            .list_roles()
            .send()
            .await
            .unwrap()
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect();
        assert!(roles.is_empty(), "roles left: {roles:?}");
        assert!(
            c.iam.list_users().send().await.unwrap().users().is_empty(),
            "users left"
        );
        assert!(
            c.iam
                .list_groups()
                .send()
                .await
                .unwrap()
                .groups()
                .is_empty(),
            "groups left"
        );
        let local = c
            .iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .send()
            .await
            .unwrap();
        assert!(
            local.policies().is_empty(),
            "policies left: {:?}",
            local.policies()
        );
        assert!(
            c.sfn
                .list_state_machines()
                .send()
                .await
                .unwrap()
                .state_machines()
                .is_empty(),
            "state machines left"
        );
        assert!(
            c.events
                .list_rules()
                .send()
                .await
                .unwrap()
                .rules()
                .is_empty(),
            "rules left"
        );
        assert!(
            c.events
                .list_connections()
                .send()
                .await
                .unwrap()
                .connections()
                .is_empty(),
            "connections left"
        );
        assert!(
            c.sns
                .list_topics()
                .send()
                .await
                .unwrap()
                .topics()
                .is_empty(),
            "topics left"
        );
        assert!(
            c.sns
                .list_subscriptions()
                .send()
                .await
                .unwrap()
                .subscriptions()
                .is_empty(),
            "subscriptions left"
        );
        assert!(
            c.sqs
                .list_queues()
                .send()
                .await
                .unwrap()
                .queue_urls()
                .is_empty(),
            "queues left"
        );
        let buckets: Vec<String> =
            c.s3.list_buckets()
                .send()
                .await
                .unwrap()
                .buckets()
                .iter()
                .filter_map(|b| b.name())
                .map(str::to_string)
                .collect();
        assert!(
            buckets.iter().all(|b| keep_buckets.contains(&b.as_str())),
            "buckets left: {buckets:?}"
        );
        assert!(
            c.dynamodb
                .list_tables()
                .send()
                .await
                .unwrap()
                .table_names()
                .is_empty(),
            "tables left"
        );
        assert!(
            c.lambda
                .list_functions()
                .send()
                .await
                .unwrap()
                .functions()
                .is_empty(),
            "functions left"
        );
        assert!(
            c.ecr
                .describe_repositories()
                .send()
                .await
                .unwrap()
                .repositories()
                .is_empty(),
            "repositories left"
        );
        let groups = c.logs.describe_log_groups().send().await.unwrap();
        assert!(
            groups.log_groups().is_empty(),
            "log groups left: {:?}",
            groups.log_groups()
        );
        assert!(
            c.pipes
                .list_pipes()
                .send()
                .await
                .unwrap()
                .pipes()
                .is_empty(),
            "pipes left"
        );
        assert!(
            c.datasync
                .list_tasks()
                .send()
                .await
                .unwrap()
                .tasks()
                .is_empty(),
            "DataSync tasks left"
        );
        assert!(
            c.datasync
                .list_locations()
                .send()
                .await
                .unwrap()
                .locations()
                .is_empty(),
            "DataSync locations left"
        );
    });
    // Secrets Manager (connection secrets) over its JSON API: no SDK crate for it here.
    let body = "{}";
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST / HTTP/1.0\r\nHost: secretsmanager.us-east-1.amazonaws.com\r\nX-Amz-Target: secretsmanager.ListSecrets\r\nContent-Type: application/x-amz-json-1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(out.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(
        json["SecretList"],
        serde_json::json!([]),
        "connection secrets are gone"
    );
}

/// Tags every taggable resource carries: the tutorial's and deploy's own.
pub fn assert_tags(tags: impl IntoIterator<Item = (String, String)>, stack: &str, env: &str) {
    let tags: std::collections::BTreeMap<String, String> = tags.into_iter().collect();
    for (k, v) in [
        ("Project", "Step Functions"),
        (
            "Repository",
            "https://github.com/felipelaptrin/step-functions",
        ),
        ("deploy:stack", stack),
        ("deploy:env", env),
    ] {
        assert_eq!(
            tags.get(k).map(String::as_str),
            Some(v),
            "tag {k} in {tags:?}"
        );
    }
}

/// The published definition (the repository's reviewed copy, tests/fixtures/published, which
/// an outside check compares with the tutorial itself) with its `${NAME}` placeholders filled.
pub fn published_definition(
    exercise: &str,
    lang: &str,
    vars: &[(&str, &str)],
) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/published/{exercise}/{lang}.json"));
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (k, v) in vars {
        text = text.replace(&format!("${{{k}}}"), v);
    }
    serde_json::from_str(&text).unwrap()
}

/// A policy document, URL-decoded if IAM returned it encoded.
pub fn parse_policy(text: &str) -> serde_json::Value {
    let text = if text.trim_start().starts_with('{') {
        text.to_string()
    } else {
        percent_decode(text)
    };
    serde_json::from_str(&text).unwrap()
}

pub fn percent_decode(s: &str) -> String {
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

/// A role: exactly one service principal may assume it, it carries the stack's tags, and it has
/// exactly one attached policy, named like the role. Returns that policy's document.
pub fn role_policy(
    c: &Clients,
    role: &str,
    service: &str,
    stack: &str,
    env: &str,
) -> serde_json::Value {
    c.block_on(async {
        let r = c.iam.get_role().role_name(role).send().await.unwrap();
        let trust = parse_policy(r.role().unwrap().assume_role_policy_document().unwrap());
        let st = trust["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 1, "{trust}");
        assert_eq!(st[0]["Principal"], serde_json::json!({"Service": service}));
        assert_eq!(st[0]["Action"], "sts:AssumeRole");
        // no other account's use of the service may assume it
        assert_eq!(
            st[0]["Condition"]["StringEquals"]["aws:SourceAccount"], "123456789012",
            "{trust}"
        );
        let tags = c.iam.list_role_tags().role_name(role).send().await.unwrap();
        assert_tags(
            tags.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string())),
            stack,
            env,
        );
        let att = c
            .iam
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
            .unwrap();
        let names: Vec<&str> = att
            .attached_policies()
            .iter()
            .map(|p| p.policy_name().unwrap())
            .collect();
        assert_eq!(
            names,
            vec![role],
            "one customer-managed policy named like the role"
        );
        let arn = att.attached_policies()[0].policy_arn().unwrap().to_string();
        let p = c.iam.get_policy().policy_arn(&arn).send().await.unwrap();
        let v = p
            .policy()
            .unwrap()
            .default_version_id()
            .unwrap()
            .to_string();
        let doc = c
            .iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(v)
            .send()
            .await
            .unwrap();
        parse_policy(doc.policy_version().unwrap().document().unwrap())
    })
}

/// The mutating operations moto recorded since `start_recording`.
pub fn mutating_calls(moto: &Moto) -> Vec<String> {
    moto.recorded_operations()
        .into_iter()
        .filter(|o| is_mutating(o))
        .collect()
}

/// A `deploy run` in the background, its output lines collected as they come.
pub struct Running {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Running {
    /// Waits for the process: its exit code and everything it printed on stdout.
    pub fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        self.reader.join().unwrap();
        (
            status.code().unwrap_or(-1),
            self.lines.lock().unwrap().join("\n"),
        )
    }
}

/// Starts a `deploy run` and returns it with the task token it prints when the workflow waits.
pub fn run_until_token(d: Deploy, args: &[&str]) -> (Running, String) {
    use std::io::BufRead;
    let mut child = d.spawn(args);
    let stdout = child.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            l.lock().unwrap().push(line);
        }
    });
    eventually(60, "the task token and the commands to answer it", || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("deploy reject --token"))
    });
    let seen = lines.lock().unwrap().join("\n");
    let token = regex::Regex::new(r"deploy approve --token '([^']+)'")
        .unwrap()
        .captures(&seen)
        .map(|c| c[1].to_string());
    (
        Running {
            child,
            lines,
            reader,
        },
        token.unwrap_or_else(|| panic!("no token in {seen}")),
    )
}

/// How many of each kind of resource exist.
pub fn inventory(c: &Clients) -> std::collections::BTreeMap<&'static str, usize> {
    c.block_on(async {
        std::collections::BTreeMap::from([
            (
                "roles",
                c.iam.list_roles().send().await.unwrap().roles().len(),
            ),
            (
                "users",
                c.iam.list_users().send().await.unwrap().users().len(),
            ),
            (
                "groups",
                c.iam.list_groups().send().await.unwrap().groups().len(),
            ),
            (
                "policies",
                c.iam
                    .list_policies()
                    .scope(aws_sdk_iam::types::PolicyScopeType::Local)
                    .send()
                    .await
                    .unwrap()
                    .policies()
                    .len(),
            ),
            (
                "state machines",
                c.sfn
                    .list_state_machines()
                    .send()
                    .await
                    .unwrap()
                    .state_machines()
                    .len(),
            ),
            (
                "rules",
                c.events.list_rules().send().await.unwrap().rules().len(),
            ),
            (
                "connections",
                c.events
                    .list_connections()
                    .send()
                    .await
                    .unwrap()
                    .connections()
                    .len(),
            ),
            (
                "topics",
                c.sns.list_topics().send().await.unwrap().topics().len(),
            ),
            (
                "subscriptions",
                c.sns
                    .list_subscriptions()
                    .send()
                    .await
                    .unwrap()
                    .subscriptions()
                    .len(),
            ),
            (
                "queues",
                c.sqs.list_queues().send().await.unwrap().queue_urls().len(),
            ),
            (
                "buckets",
                c.s3.list_buckets().send().await.unwrap().buckets().len(),
            ),
            (
                "tables",
                c.dynamodb
                    .list_tables()
                    .send()
                    .await
                    .unwrap()
                    .table_names()
                    .len(),
            ),
            (
                "functions",
                c.lambda
                    .list_functions()
                    .send()
                    .await
                    .unwrap()
                    .functions()
                    .len(),
            ),
            (
                "repositories",
                c.ecr
                    .describe_repositories()
                    .send()
                    .await
                    .unwrap()
                    .repositories()
                    .len(),
            ),
            (
                "log groups",
                c.logs
                    .describe_log_groups()
                    .send()
                    .await
                    .unwrap()
                    .log_groups()
                    .len(),
            ),
            (
                "pipes",
                c.pipes.list_pipes().send().await.unwrap().pipes().len(),
            ),
            (
                "datasync tasks",
                c.datasync.list_tasks().send().await.unwrap().tasks().len(),
            ),
            (
                "datasync locations",
                c.datasync
                    .list_locations()
                    .send()
                    .await
                    .unwrap()
                    .locations()
                    .len(),
            ),
        ])
    })
}

/// An S3 object's bytes, if it exists.
pub fn s3_object(c: &Clients, bucket: &str, key: &str) -> Option<Vec<u8>> {
    c.block_on(async {
        let o =
            c.s3.get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .ok()?;
        Some(o.body.collect().await.ok()?.into_bytes().to_vec())
    })
}
