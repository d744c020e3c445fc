//! Test harness: a real moto server per test (free loopback port, managed policies loaded,
//! request recorder on), the real `deploy` binary driven with a fluent helper, SDK clients
//! pointed at the same endpoint to check what was deployed, and a fault-injecting proxy.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn python() -> String {
    std::env::var("DEPLOY_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Minimal HTTP/1.0 request to a local server; returns (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

fn wait_for(port: u16, child: &mut Child, what: &str) {
    let start = Instant::now();
    loop {
        if let Ok((200, _)) = http(port, "GET", "/moto-api/data.json", "") {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before answering (is moto[server] installed? scripts/test installs it)");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{what} did not answer on port {port} within 60 s");
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
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording.jsonl"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("moto.log")).unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto with {}: {e}", python()));
        wait_for(port, &mut child, "moto");
        Moto { port, child, dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn start_recording(&self) {
        http(self.port, "POST", "/moto-api/recorder/reset-recording", "").unwrap();
        http(self.port, "POST", "/moto-api/recorder/start-recording", "").unwrap();
    }

    /// The API operations recorded since `start_recording`, in order (`Service.Operation`-ish:
    /// the X-Amz-Target for JSON services, the Action for query services).
    pub fn recorded_operations(&self) -> Vec<String> {
        http(self.port, "POST", "/moto-api/recorder/stop-recording", "").unwrap();
        let (_, body) = http(self.port, "GET", "/moto-api/recorder/download-recording", "").unwrap();
        body.lines().filter(|l| !l.trim().is_empty()).map(|l| operation_of(&serde_json::from_str(l).unwrap())).collect()
    }
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
                return v.as_str().unwrap_or_default().rsplit('.').next().unwrap_or_default().to_string();
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
        .unwrap_or_else(|| format!("{} {}", entry["method"].as_str().unwrap_or(""), entry["url"].as_str().unwrap_or("")))
}

pub fn is_mutating(op: &str) -> bool {
    !(op.starts_with("Get") || op.starts_with("List") || op.starts_with("Describe"))
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
            .args([port.to_string(), upstream.port.to_string(), faults.to_string(), log.display().to_string()])
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
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
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

/// An empty file, to stand for the shared AWS config and credentials files.
pub fn empty_file() -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-aws-config");
    if !p.exists() {
        std::fs::write(&p, "").unwrap();
    }
    p
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
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
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
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

    pub fn run(mut self, args: &[&str]) -> Output {
        let out = self.cmd.args(args).output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub secrets_endpoint: String,
    pub rt: tokio::runtime::Runtime,
}

impl Clients {
    pub fn new(endpoint: &str) -> Clients {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("testing", "testing", None, None, "tests"),
            ))
            .build();
        Clients {
            iam: aws_sdk_iam::Client::new(&config),
            sfn: aws_sdk_sfn::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            secrets_endpoint: endpoint.to_string(),
            rt,
        }
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}
