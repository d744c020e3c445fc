//! `deploy local`: the Step Functions API (the JSON 1.0 protocol the SDKs and the AWS CLI speak)
//! on loopback, executing with the local engine. Point `AWS_ENDPOINT_URL_SFN` at it and every
//! other service at the emulator (`AWS_ENDPOINT_URL`, moto): `deploy up`, `deploy run`,
//! `deploy approve`, `deploy history` and the AWS CLI work unchanged. Task integrations call the
//! emulator for real (see [`tasks`]); state machines and executions live in memory.

mod activities;
mod api;
mod executions;
pub mod history;
mod machines;
mod map_runs;
mod optimised;
mod redrive;
mod shapes;
mod store;
pub mod tasks;
mod test_state;
mod triggers;
mod versions;
mod web;
pub use web::execution_path;

use api::{ApiError, ApiResult, bad, str_arg, uuid};
use store::{Executions, Store};

use crate::engine::{Callback, Callbacks};
use crate::error::{Error, Result};
use crate::options::{Global, Run};
use clap::Args;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tasks::Integrations;

struct Server {
    store: Mutex<Store>,
    integrations: Arc<Integrations>,
    callbacks: Arc<Callbacks>,
    mock_config: Option<Value>,
    /// UpdateMapRun's settings, by Map Run.
    map_run_updates: Mutex<std::collections::HashMap<String, Value>>,
    time_scale: f64,
    account: String,
    region: String,
}

/// The Step Functions operations `deploy local` answers, by name.
const OPERATIONS: &[(&str, fn(&Arc<Server>, &Value) -> ApiResult)] = &[
    ("CreateStateMachine", |s, body| s.create_state_machine(body)),
    ("DescribeStateMachine", Server::describe_state_machine),
    ("UpdateStateMachine", Server::update_state_machine),
    ("DeleteStateMachine", Server::delete_state_machine),
    ("ListStateMachines", Server::list_state_machines),
    ("TagResource", Server::tag_resource),
    ("UntagResource", Server::untag_resource),
    ("ListTagsForResource", Server::list_tags_for_resource),
    ("StartExecution", |s, body| s.start_execution(body, false)),
    ("StopExecution", Server::stop_execution),
    ("RedriveExecution", Server::redrive_execution),
    ("DescribeExecution", Server::describe_execution),
    ("ListExecutions", Server::list_executions),
    ("GetExecutionHistory", Server::get_execution_history),
    ("SendTaskSuccess", Server::send_task_success),
    ("SendTaskFailure", Server::send_task_failure),
    ("SendTaskHeartbeat", |s, body| {
        s.answer(str_arg(body, "taskToken")?, Callback::Heartbeat)
    }),
    (
        "PublishStateMachineVersion",
        Server::publish_state_machine_version,
    ),
    (
        "ListStateMachineVersions",
        Server::list_state_machine_versions,
    ),
    (
        "DeleteStateMachineVersion",
        Server::delete_state_machine_version,
    ),
    (
        "CreateStateMachineAlias",
        Server::create_state_machine_alias,
    ),
    (
        "DescribeStateMachineAlias",
        Server::describe_state_machine_alias,
    ),
    (
        "UpdateStateMachineAlias",
        Server::update_state_machine_alias,
    ),
    (
        "DeleteStateMachineAlias",
        Server::delete_state_machine_alias,
    ),
    (
        "ListStateMachineAliases",
        Server::list_state_machine_aliases,
    ),
    (
        "ValidateStateMachineDefinition",
        Server::validate_state_machine_definition,
    ),
    ("ListMapRuns", Server::list_map_runs),
    ("DescribeMapRun", Server::describe_map_run),
    ("UpdateMapRun", Server::update_map_run),
    (
        "DescribeStateMachineForExecution",
        Server::describe_state_machine_for_execution,
    ),
    ("CreateActivity", Server::create_activity),
    ("DescribeActivity", Server::describe_activity),
    ("DeleteActivity", Server::delete_activity),
    ("ListActivities", Server::list_activities),
];

impl Server {
    fn machine_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            self.region, self.account
        )
    }

    fn handle(self: &Arc<Self>, op: &str, body: &Value) -> ApiResult {
        match OPERATIONS.iter().find(|(name, _)| *name == op) {
            Some((_, operation)) => operation(self, body),
            None => Err(bad(
                "UnknownOperationException",
                format!("deploy local does not implement {op}"),
            )),
        }
    }
}

fn respond(status: u16, body: Value) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", uuid())
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .expect("a response")
}

fn html((status, kind, body): web::Page) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", kind)
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .header("content-security-policy", "default-src 'self'")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("a response")
}

async fn serve_one(
    server: Arc<Server>,
    req: hyper::Request<hyper::body::Incoming>,
) -> std::result::Result<
    hyper::Response<http_body_util::Full<bytes::Bytes>>,
    std::convert::Infallible,
> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if target.is_none() && req.method() == hyper::Method::GET {
        let (path, query) = (req.uri().path(), req.uri().query().unwrap_or_default());
        let page = web::get(&server, path, query).unwrap_or_else(|| web::not_found(path));
        return Ok(html(page));
    }
    let bytes = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(respond(
                400,
                json!({"__type": "SerializationException", "message": e.to_string()}),
            ));
        }
    };
    let Some(op) = target
        .as_deref()
        .and_then(|t| t.strip_prefix("AWSStepFunctions."))
    else {
        // anything else (a browser, a health check): say what this is
        return Ok(respond(
            200,
            json!({"service": "deploy local: AWS Step Functions (JSON 1.0 protocol, X-Amz-Target: AWSStepFunctions.<Operation>)"}),
        ));
    };
    let body: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    if !body.is_object() {
        return Ok(respond(
            400,
            json!({"__type": "SerializationException", "message": "the request body is not a JSON object"}),
        ));
    }
    let result = if op == "StartSyncExecution" {
        server.start_sync(&body).await
    } else if op == "TestState" {
        server.test_state(&body).await
    } else if op == "GetActivityTask" {
        server.get_activity_task(&body).await
    } else {
        server.handle(op, &body)
    };
    let (status, out) = answer(op, result);
    tracing::debug!("{op} -> {status}");
    Ok(respond(status, out))
}

/// An operation's answer as the SDKs read it: its members without nulls, or an error.
fn answer(op: &str, result: ApiResult) -> (u16, Value) {
    match result {
        Ok(mut v) => {
            // AWS leaves out members that have no value
            if let Some(m) = v.as_object_mut() {
                m.retain(|_, v| !v.is_null());
            }
            (200, v)
        }
        Err(ApiError(status, code, message)) => {
            tracing::debug!("{op}: {code}: {message}");
            (
                status,
                json!({"__type": format!("com.amazonaws.stepfunctions#{code}"), "message": message}),
            )
        }
    }
}

/// Runs the endpoint until Ctrl-C.
pub async fn serve(g: &crate::options::Global, args: LocalArgs) -> Result<()> {
    let mock_config = args
        .mock_config
        .as_deref()
        .map(read_mock_config)
        .transpose()?;
    if !(args.time_scale > 0.0) {
        return Err(Error::user(
            "--time-scale must be above 0 (0.01 makes every Wait 100 times shorter)",
        ));
    }
    let ctx = crate::aws::connect_for_local(&g.aws).await;
    let (account, region) = (ctx.account_id.clone(), ctx.region.clone());
    let others = ctx.endpoint.clone().unwrap_or_else(|| "AWS".into());
    let integrations = Integrations::new(ctx, args.http_endpoint.clone()).map_err(|e| {
        Error::new(
            crate::error::Class::Internal,
            format!("cannot load TLS roots for http:invoke: {e}"),
        )
    })?;
    let server = Arc::new(Server {
        store: Mutex::new(Store {
            executions: Executions {
                keep: args.keep_executions,
                ..Default::default()
            },
            ..Default::default()
        }),
        integrations: Arc::new(integrations),
        callbacks: Arc::new(Callbacks::default()),
        mock_config,
        map_run_updates: Default::default(),
        time_scale: args.time_scale,
        account,
        region,
    });
    if args.triggers && loopback_emulator(&others) {
        start_triggers(&server, args.time_scale);
    }
    warn_unless_loopback(&args.host);
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|e| {
            Error::user(format!("cannot listen on {}:{}: {e}", args.host, args.port))
                .help("choose another --port (0 picks a free one)")
        })?;
    let addr = listener.local_addr()?;
    set_endpoints(&server, addr);
    // Whoever started us may stop reading: a closed stdout must not stop the endpoint.
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "deploy local: Step Functions on http://{addr} (task integrations call {others})"
    );
    let _ = writeln!(out, "export AWS_ENDPOINT_URL_SFN=http://{addr}");
    let _ = out.flush();
    accept(listener, server).await
}

/// Where the tasks' calls go besides the standard settings: `aws-sdk:sfn:*` and
/// `states:startExecution` to this endpoint (unless the standard setting for Step Functions
/// names another one), and Step Functions Local's per-service settings, which mean the same here.
fn set_endpoints(server: &Server, addr: std::net::SocketAddr) {
    let own = match addr.ip().is_unspecified() {
        true => format!("http://127.0.0.1:{}", addr.port()),
        false => format!("http://{addr}"),
    };
    server.integrations.sdk.set_endpoint("sfn", &own);
    for (var, service) in LOCAL_ENDPOINTS {
        if let Some(url) = std::env::var(var).ok().filter(|u| !u.is_empty()) {
            server.integrations.sdk.set_endpoint(service, &url);
        }
    }
}

/// A Step Functions Local mock configuration file, read and checked.
fn read_mock_config(f: &std::path::Path) -> Result<Value> {
    let at = f.display().to_string();
    let text = std::fs::read_to_string(f)
        .map_err(|e| Error::user(format!("cannot read: {e}")).at(at.clone()))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::user(format!("not JSON: {e}")).at(format!("{at}:{}", e.line())))?;
    if !v["StateMachines"].is_object() || !v["MockedResponses"].is_object() {
        let msg = "a mock configuration has StateMachines and MockedResponses";
        return Err(Error::user(msg).at(at));
    }
    Ok(v)
}

/// The pipes and schedules deployed in the emulator, run from now on.
fn start_triggers(server: &Server, time_scale: f64) {
    triggers::spawn(triggers::Triggers {
        sdk: server.integrations.sdk.clone(),
        region: server.region.clone(),
        time_scale,
    });
}

/// Whether the other services are an emulator on this machine (where deploy local runs the
/// pipes and schedules it finds; on AWS, AWS runs them).
fn loopback_emulator(endpoint: &str) -> bool {
    let host = endpoint
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or_default();
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Anyone who reaches an address other than loopback can use the endpoint: say so.
fn warn_unless_loopback(host: &str) {
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        eprintln!(
            "warning: deploy local listens on {}: anyone who reaches that address can start executions, which act on the \
             emulator with your credentials, and the endpoint asks for no authentication; keep it on 127.0.0.1 unless \
             that is what you want",
            host
        );
    }
}

/// Serves connections until Ctrl-C.
async fn accept(listener: tokio::net::TcpListener, server: Arc<Server>) -> Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => { tracing::warn!("accept: {e}"); continue; }
            },
            _ = tokio::signal::ctrl_c() => {
                let running = server.store.lock().unwrap().executions.iter().filter(|e| e.status == "RUNNING").count();
                eprintln!("deploy local: stopped ({running} executions were still running; state machines and executions are kept in memory only)");
                return Ok(());
            }
        };
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| serve_one(server.clone(), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("connection: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::api::page;
    use super::machines::check_definition;
    use super::*;

    #[test]
    fn pages_continue_where_they_stopped() {
        let items: Vec<u32> = (0..5).collect();
        let (r, next) = page(&items, &json!({"maxResults": 2}), 100).unwrap();
        assert_eq!((r, next.as_deref()), (0..2, Some("2")));
        let (r, next) = page(&items, &json!({"maxResults": 2, "nextToken": "4"}), 100).unwrap();
        assert_eq!((r, next), (4..5, None));
        assert!(page(&items, &json!({"nextToken": "x"}), 100).is_err());
    }

    #[test]
    fn definitions_are_checked_as_aws_checks_them() {
        assert!(
            check_definition(r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}"#)
                .is_ok()
        );
        let ApiError(_, code, message) =
            check_definition(r#"{"StartAt": "B", "States": {"A": {"Type": "Pass", "End": true}}}"#)
                .unwrap_err();
        assert_eq!(code, "InvalidDefinition");
        assert!(message.contains("B"), "{message}");
        assert_eq!(check_definition("{").unwrap_err().1, "InvalidDefinition");
    }
}

/// Step Functions Local's per-service endpoint settings, and the services they name: a team
/// moving off it keeps them. The standard AWS_ENDPOINT_URL_<SERVICE> still wins over them.
const LOCAL_ENDPOINTS: &[(&str, &str)] = &[
    ("LAMBDA_ENDPOINT", "lambda"),
    ("SQS_ENDPOINT", "sqs"),
    ("SNS_ENDPOINT", "sns"),
    ("DYNAMODB_ENDPOINT", "dynamodb"),
    ("STEP_FUNCTIONS_ENDPOINT", "sfn"),
    ("ECS_ENDPOINT", "ecs"),
    ("BATCH_ENDPOINT", "batch"),
    ("EVENTBRIDGE_ENDPOINT", "eventbridge"),
    ("ATHENA_ENDPOINT", "athena"),
    ("GLUE_ENDPOINT", "glue"),
    ("SAGEMAKER_ENDPOINT", "sagemaker"),
];

/// `deploy local`'s command line.
#[derive(Debug, Clone, Args)]
pub struct LocalArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: a free one; the first line printed says which)
    #[arg(long, default_value_t = 8083)]
    pub port: u16,
    /// Send every http:invoke here instead (scheme and host replaced, path kept), e.g. a local stand-in API
    #[arg(long, value_name = "URL")]
    pub http_endpoint: Option<String>,
    /// A Step Functions Local mock configuration; start an execution on `<machine ARN>#<test case>` to use a case's mocks
    #[arg(long, value_name = "FILE", env = "SFN_MOCK_CONFIG")]
    pub mock_config: Option<std::path::PathBuf>,
    /// Multiply every Wait, retry interval and timeout by this (0.01: a 10 s Wait takes 0.1 s)
    #[arg(long, default_value_t = 1.0, env = "WAIT_TIME_SCALE")]
    pub time_scale: f64,
    /// How many finished executions to keep (the oldest are forgotten first; running ones
    /// are always kept), so that memory stays bounded
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub keep_executions: usize,
    /// Run the triggers deployed in the emulator (pipes from SQS queues and rate-scheduled
    /// rules whose targets are state machines here); only with an emulator on loopback
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub triggers: bool,
}

#[async_trait::async_trait(?Send)]
impl Run for LocalArgs {
    async fn run(&self, g: &Global) -> Result<()> {
        serve(g, self.clone()).await
    }
}
