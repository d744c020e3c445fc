//! Task integrations of the local endpoint, carried out for real: every `aws-sdk:<service>:<action>`
//! as the AWS SDK models describe it (`crate::sdk`), on the endpoint the standard settings name
//! for the service (the emulator behind `--endpoint-url` here, an account elsewhere); the
//! optimised integrations (`optimised`: their SDK call, error names, metadata and `.sync`
//! polling as data); a Lambda function by ARN; `states:startExecution` with its child on this
//! endpoint; `http:invoke` and `apigateway:invoke` over HTTP (to `--http-endpoint` when given).
//! A mocked answer (Step Functions Local mock configuration, test case chosen by
//! `<machine ARN>#<case>`) wins over all of them.

use super::optimised::{ELSEWHERE, Optimised, Sync, optimised, renamed, sync_of};
use crate::aws::Ctx;
use crate::engine::scenario::Mocked;
use crate::engine::{TaskCall, TaskResult, Tasks};
use crate::sdk;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// What every execution of an endpoint shares.
pub struct Integrations {
    pub ctx: Ctx,
    /// Every `http:invoke` goes to this base URL instead (the path of ApiEndpoint is kept).
    pub http_endpoint: Option<String>,
    http: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<bytes::Bytes>,
    >,
    /// Calls made from the AWS SDK models.
    pub sdk: Arc<sdk::Caller>,
    /// The activities, and the tasks waiting in them for workers.
    pub activities: Arc<super::activities::Activities>,
}

impl Integrations {
    pub fn new(ctx: Ctx, http_endpoint: Option<String>) -> std::io::Result<Integrations> {
        // no Nagle: a request's small writes go out at once, not after the peer's delayed ACK
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        let sdk = sdk::Caller::new(http.clone(), ctx.config.credentials_provider(), &ctx.region);
        Ok(Integrations {
            ctx,
            http_endpoint,
            http,
            sdk: Arc::new(sdk),
            activities: Default::default(),
        })
    }
}

/// The tasks of one execution: its mocks first, then the integrations.
pub struct LocalTasks {
    pub integrations: Arc<Integrations>,
    pub mocks: Option<Mocked>,
}

#[async_trait::async_trait]
impl Tasks for LocalTasks {
    async fn fetch(&self, call: TaskCall<'_>) -> Result<Vec<u8>, (String, String)> {
        let s3 = optimised("s3").expect("s3 is optimised");
        let text = sdk::request::Blobs::Text;
        let got = self
            .integrations
            .sdk
            .call_as("s3", "getObject", call.arguments, text)
            .await;
        got.map(|r| r.body.to_vec())
            .map_err(|e| optimised_failure(s3, e))
    }

    async fn check(&self, call: &TaskCall<'_>) -> Result<(), String> {
        let activity = crate::asl::is_activity(call.resource);
        match activity && !self.integrations.activities.exists(call.resource) {
            true => Err(format!("The activity {} does not exist.", call.resource)),
            false => Ok(()),
        }
    }

    async fn call(&self, call: TaskCall<'_>) -> TaskResult {
        if let Some(answer) = self.mocks.as_ref().and_then(|m| m.answer(call.state)) {
            return answer;
        }
        if crate::asl::is_activity(call.resource) {
            return self.activity(&call).await;
        }
        let result = match call.role {
            // the call is made as the role the state names, assumed through STS
            Some(role) => match self.integrations.sdk.assume(role).await {
                Ok(creds) => {
                    let work = self.integrations.call(call.resource, call.arguments);
                    sdk::ASSUMED.scope(creds, work).await
                }
                Err(e) => Err(sdk_failure(e)),
            },
            None => self.integrations.call(call.resource, call.arguments).await,
        };
        match result {
            // the request went out; the answer comes with the token
            Ok(_) if call.resource.ends_with(".waitForTaskToken") => TaskResult::AwaitToken,
            Ok(v) => TaskResult::Return(v),
            Err((error, cause)) => TaskResult::Throw { error, cause },
        }
    }
}

type Outcome = Result<Value, (String, String)>;

fn s<'a>(args: &'a Value, k: &str) -> Option<&'a str> {
    args[k].as_str()
}

fn need<'a>(args: &'a Value, k: &str, prefix: &str) -> Result<&'a str, (String, String)> {
    s(args, k).ok_or_else(|| {
        (
            format!("{prefix}.ValidationException"),
            format!("missing or non-string parameter {k}"),
        )
    })
}

impl LocalTasks {
    /// An activity's task: queued for its workers; started when one takes it, its answer then
    /// comes with the token.
    async fn activity(&self, call: &TaskCall<'_>) -> TaskResult {
        let activities = &self.integrations.activities;
        let token = call.token.unwrap_or_default();
        let Some(taken) = activities.schedule(call.resource, token, call.arguments) else {
            return TaskResult::Throw {
                error: "States.Runtime".into(),
                cause: format!("The activity {} does not exist.", call.resource),
            };
        };
        match taken.await {
            Ok(worker) => TaskResult::Started { worker },
            Err(_) => TaskResult::Throw {
                error: "States.Runtime".into(),
                cause: format!("The activity {} was deleted.", call.resource),
            },
        }
    }
}

/// An integration's name and its pattern (`.sync`, `.sync:2`, `.waitForTaskToken`, or none).
pub fn pattern_of(name: &str) -> (&str, &str) {
    for p in [".sync:2", ".sync", ".waitForTaskToken"] {
        if let Some(n) = name.strip_suffix(p) {
            return (n, p);
        }
    }
    (name, "")
}

/// An `aws-sdk:*` call's failure as Step Functions names it: the service's error with the
/// Exception suffix (`S3.NoSuchKeyException`), the service's base exception for one its model
/// does not have, the message with the SDK v2's details as cause.
fn sdk_failure(e: sdk::CallError) -> (String, String) {
    match e {
        sdk::CallError::Service {
            service,
            status,
            code,
            message,
            request_id,
            extended_id,
        } => {
            let extended = extended_id
                .map(|x| format!(", Extended Request ID: {x}"))
                .unwrap_or_default();
            (
                service.error_name(&code),
                // the SDK v2's words, with the attempt count it has added since 2025 (recorded
                // from AWS in November 2025)
                format!(
                    "{message} (Service: {}, Status Code: {status}, Request ID: {request_id}{extended}) (SDK Attempt Count: 1)",
                    service.client
                ),
            )
        }
        sdk::CallError::Invalid { service, message } => {
            (format!("{0}.{0}Exception", service.client), message)
        }
        sdk::CallError::Unknown(m) => ("States.Runtime".into(), m),
        sdk::CallError::Client(m) => ("States.TaskFailed".into(), m),
    }
}

/// An optimised integration's failure, in the Java SDK v1's words.
fn optimised_failure(o: &Optimised, e: sdk::CallError) -> (String, String) {
    match e {
        sdk::CallError::Service {
            service,
            status,
            code,
            message,
            request_id,
            ..
        } => {
            let name = service
                .modelled_error(&code)
                .unwrap_or_else(|| o.v1_base.to_string());
            (
                format!("{}.{name}", o.prefix),
                format!(
                    "{message} (Service: {}; Status Code: {status}; Error Code: {code}; Request ID: {request_id}; Proxy: null)",
                    o.v1_service
                ),
            )
        }
        sdk::CallError::Invalid { message, .. } => (format!("{}.{}", o.prefix, o.v1_base), message),
        other => sdk_failure(other),
    }
}

/// `SdkHttpMetadata` and `SdkResponseMetadata` as the Java SDK reports AWS's answer: the
/// headers AWS's front end sends for the service, with the values of this answer.
fn metadata(headers: &[&str], reply: &sdk::Reply, out: &mut Map<String, Value>) {
    if headers.is_empty() {
        return;
    }
    let got = |name: &str| {
        reply
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let request_id = got("x-amzn-requestid")
        .or_else(|| got("x-amz-request-id"))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let (mut all, mut one) = (Map::new(), Map::new());
    for h in headers {
        let v = match h.to_ascii_lowercase().as_str() {
            "x-amzn-requestid" => request_id.clone(),
            "connection" => got(h).unwrap_or_else(|| "keep-alive".into()),
            "date" => got(h).unwrap_or_else(|| {
                aws_smithy_types::DateTime::from(std::time::SystemTime::now())
                    .fmt(aws_smithy_types::date_time::Format::HttpDate)
                    .unwrap_or_default()
            }),
            _ => got(h).unwrap_or_default(),
        };
        all.insert(h.to_string(), json!([v]));
        one.insert(h.to_string(), json!(v));
    }
    out.insert(
        "SdkHttpMetadata".into(),
        json!({"AllHttpHeaders": all, "HttpHeaders": one, "HttpStatusCode": reply.status}),
    );
    out.insert(
        "SdkResponseMetadata".into(),
        json!({"RequestId": request_id}),
    );
}

/// The headers AWS Lambda's Invoke answers with.
const LAMBDA_FRONT: &[&str] = &[
    "Connection",
    "Content-Length",
    "Content-Type",
    "Date",
    "X-Amz-Executed-Version",
    "x-amzn-Remapped-Content-Length",
    "x-amzn-RequestId",
    "X-Amzn-Trace-Id",
];

/// A value at a JSON pointer, or at `args:` + pointer in the call's parameters; `[/p]` makes a
/// list of it.
fn id_from(spec: &str, result: &Value, args: &Value) -> Value {
    if let Some(inner) = spec.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return json!([id_from(inner, result, args)]);
    }
    match spec.strip_prefix("args:") {
        Some(p) => args.pointer(p).cloned().unwrap_or(Value::Null),
        None => result.pointer(spec).cloned().unwrap_or(Value::Null),
    }
}

/// How long `.sync` waits between two looks at a job (`DEPLOY_SYNC_POLL_MS`, 500 ms).
fn poll_interval() -> std::time::Duration {
    let ms = std::env::var("DEPLOY_SYNC_POLL_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    std::time::Duration::from_millis(ms)
}

/// Stops a child execution when the task that started it with `.sync` is given up (its
/// execution stopped, timed out, or failed elsewhere), as AWS stops it with its parent.
struct StopChild {
    sdk: Arc<sdk::Caller>,
    arn: Option<String>,
}

impl Drop for StopChild {
    fn drop(&mut self) {
        if let Some(arn) = self.arn.take() {
            let sdk = self.sdk.clone();
            tokio::spawn(async move {
                let args = json!({"ExecutionArn": arn, "Error": "States.Aborted", "Cause": "the parent execution ended"});
                let _ = sdk.call("sfn", "stopExecution", &args).await;
            });
        }
    }
}

/// What an HTTP task sent and got back, in TestState's words (`inspectionData.request` and
/// `.response` at TRACE).
#[derive(Debug, Clone, Default)]
pub struct HttpTrace {
    pub request: Option<Value>,
    pub response: Option<Value>,
}

tokio::task_local! {
    /// Set while TestState runs a state: an HTTP task notes its request and response here.
    pub static HTTP_TRACE: std::sync::Arc<std::sync::Mutex<HttpTrace>>;
}

fn trace(note: impl FnOnce(&mut HttpTrace)) {
    let _ = HTTP_TRACE.try_with(|t| note(&mut t.lock().unwrap()));
}

/// Notes the request an HTTP task sends (when TestState runs it).
fn trace_request<B>(req: &hyper::Request<B>, protocol: &str, url: &str, body: String) {
    let headers = req.headers().iter();
    let headers = headers.map(|(k, v)| (k.as_str(), v.to_str().unwrap_or_default()));
    let headers = headers_text(headers);
    let method = req.method().as_str();
    trace(|t| {
        t.request = Some(json!({"protocol": protocol, "method": method, "url": url,
                                "headers": headers, "body": body}))
    });
}

/// Notes the response an HTTP task got (when TestState runs it).
fn trace_response(
    protocol: &str,
    status: hyper::StatusCode,
    headers: &Map<String, Value>,
    body: &str,
) {
    let shown = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v[0].as_str().unwrap_or_default()));
    let headers = headers_text(shown);
    trace(|t| {
        t.response = Some(
            json!({"protocol": protocol, "statusCode": status.as_u16().to_string(),
                                 "statusMessage": status.canonical_reason().unwrap_or(""),
                                 "headers": headers, "body": body}),
        )
    });
}

/// Headers as TestState shows them: one JSON object of name to value(s), as text.
fn headers_text<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut m = Map::new();
    for (k, v) in headers {
        m.insert(k.to_string(), json!(v));
    }
    Value::Object(m).to_string()
}

impl Integrations {
    /// Calls the integration a Task's Resource names.
    pub async fn call(&self, resource: &str, args: &Value) -> Outcome {
        if crate::asl::is_lambda_function(resource) {
            return self.lambda_function(resource, args).await;
        }
        let (name, pattern) = pattern_of(crate::asl::integration(resource).unwrap_or(resource));
        if name == "http:invoke" {
            return self.http_invoke(args).await;
        }
        if let Some(rest) = name.strip_prefix("aws-sdk:") {
            let (service, action) = rest.split_once(':').unwrap_or((rest, ""));
            let reply = self.sdk.call(service, action, args).await;
            return reply.map(|r| r.output).map_err(sdk_failure);
        }
        let (service, action) = name.split_once(':').unwrap_or((name, ""));
        let Some(o) = optimised(service) else {
            return Err((
                "States.Runtime".into(),
                format!(
                    "deploy local has no integration for {name}; answer this state from a mock (--mock-config, and start the execution on <state machine ARN>#<test case>)"
                ),
            ));
        };
        match name {
            "lambda:invoke" => self.lambda_invoke(o, args).await,
            "apigateway:invoke" => self.apigateway_invoke(args).await,
            "states:startExecution" if pattern.starts_with(".sync") => {
                self.start_child(o, args, pattern == ".sync:2").await
            }
            _ => self.optimised_call(o, name, action, pattern, args).await,
        }
    }

    /// An optimised integration that is its SDK call (with the SDK's metadata where AWS's
    /// result carries it), and its `.sync` polling.
    async fn optimised_call(
        &self,
        o: &Optimised,
        name: &str,
        action: &str,
        pattern: &str,
        args: &Value,
    ) -> Outcome {
        let model = ELSEWHERE
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(o.model, |(_, m)| m);
        let renamed = renamed(name);
        let (action, args) = match renamed {
            Some(r) => (r.action, &r.args(args)),
            None => (action, args),
        };
        // the objects a Map reads and writes (s3:*) are sent as they are
        let blobs = match o.resource {
            "s3" => sdk::request::Blobs::Text,
            _ => sdk::request::Blobs::Json,
        };
        let mut reply = self.sdk.call_as(model, action, args, blobs).await;
        if let (Some(r), Ok(reply)) = (renamed, reply.as_mut()) {
            reply.output = r.result(&reply.output);
        }
        let reply = reply.map_err(|e| optimised_failure(o, e))?;
        let mut out = match reply.output.clone() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let failed_entries = out.get("FailedEntryCount").and_then(Value::as_u64);
        if name == "events:putEvents" && failed_entries.unwrap_or(0) > 0 {
            let cause = Value::Object(out).to_string();
            return Err(("EventBridge.FailedEntry".into(), cause));
        }
        match sync_of(name).filter(|_| pattern.starts_with(".sync")) {
            Some(sync) => self.poll(o, model, sync, &Value::Object(out), args).await,
            None => {
                metadata(o.headers, &reply, &mut out);
                Ok(Value::Object(out))
            }
        }
    }

    /// `.sync`: looks at the job every half second until its status ends it; its description
    /// is the result, or the cause of `States.TaskFailed`.
    async fn poll(
        &self,
        o: &Optimised,
        model: &str,
        sync: &Sync,
        started: &Value,
        args: &Value,
    ) -> Outcome {
        let mut describe = Map::new();
        for (param, spec) in sync.ids {
            let v = id_from(spec, started, args);
            if !v.is_null() {
                describe.insert(param.to_string(), v);
            }
        }
        let describe = Value::Object(describe);
        loop {
            let reply = self.sdk.call(model, sync.describe, &describe).await;
            let out = reply.map_err(|e| optimised_failure(o, e))?.output;
            let status = out.pointer(sync.status).and_then(Value::as_str);
            let status = status.unwrap_or_default().to_string();
            let job = out.pointer(sync.job).cloned().unwrap_or(out.clone());
            if sync.succeeded.contains(&status.as_str()) {
                return Ok(job);
            }
            if sync.failed.contains(&status.as_str()) {
                return Err(("States.TaskFailed".into(), job.to_string()));
            }
            tokio::time::sleep(poll_interval()).await;
        }
    }

    /// `states:startExecution.sync` / `.sync:2`: the child runs on this endpoint; its
    /// DescribeExecution is the result (`.sync:2` with Input and Output parsed), or the cause
    /// of `States.TaskFailed` when it does not succeed. The child is stopped with its parent.
    async fn start_child(&self, o: &Optimised, args: &Value, parsed: bool) -> Outcome {
        let started = self.sdk.call("sfn", "startExecution", args).await;
        let started = started.map_err(|e| optimised_failure(o, e))?;
        let arn = started.output["ExecutionArn"].as_str().unwrap_or_default();
        let mut guard = StopChild {
            sdk: self.sdk.clone(),
            arn: Some(arn.to_string()),
        };
        let describe = json!({"ExecutionArn": arn});
        loop {
            let reply = self.sdk.call("sfn", "describeExecution", &describe).await;
            let mut d = reply.map_err(|e| optimised_failure(o, e))?.output;
            if d["Status"] == "RUNNING" || d["Status"] == "PENDING_REDRIVE" {
                let wait = poll_interval().min(std::time::Duration::from_millis(100));
                tokio::time::sleep(wait).await;
                continue;
            }
            guard.arn = None;
            if parsed {
                for k in ["Input", "Output"] {
                    if let Some(text) = d[k].as_str() {
                        d[k] = serde_json::from_str(text).unwrap_or(Value::String(text.into()));
                    }
                }
            }
            if d["Status"] == "SUCCEEDED" {
                return Ok(d);
            }
            return Err(("States.TaskFailed".into(), d.to_string()));
        }
    }

    /// `lambda:invoke`: the function's answer under Payload (parsed when it is JSON); a function
    /// error is the task's error, named by the function's errorType.
    async fn lambda_invoke(&self, o: &Optimised, args: &Value) -> Outcome {
        let reply = self.sdk.call("lambda", "invoke", args).await;
        let reply = reply.map_err(|e| optimised_failure(o, e))?;
        let mut out = match reply.output.clone() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let text = out
            .get("Payload")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let text = text.to_string();
        let payload: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if out.contains_key("FunctionError") {
            let error = payload["errorType"].as_str().unwrap_or("Lambda.Unknown");
            return Err((error.to_string(), text));
        }
        out.insert("Payload".into(), payload);
        metadata(LAMBDA_FRONT, &reply, &mut out);
        Ok(Value::Object(out))
    }

    /// A Lambda function named by its ARN as Resource: invoked with the state's input, its
    /// answer is the result as it is.
    async fn lambda_function(&self, arn: &str, args: &Value) -> Outcome {
        let o = optimised("lambda").expect("lambda is optimised");
        let call = json!({"FunctionName": arn, "Payload": args});
        let out = self.lambda_invoke(o, &call).await?;
        Ok(out["Payload"].clone())
    }

    /// `apigateway:invoke`: the stage's path called over HTTP (behind an endpoint override, at
    /// the emulator's `/restapis/<id>/<stage>/_user_request_/` path), answered as http:invoke
    /// answers; a status of 400 or more is `ApiGateway.<status>`.
    async fn apigateway_invoke(&self, args: &Value) -> Outcome {
        let endpoint = need(args, "ApiEndpoint", "ApiGateway")?;
        let stage = s(args, "Stage").unwrap_or_default();
        let path = s(args, "Path").unwrap_or_default().trim_start_matches('/');
        let host = endpoint.trim_start_matches("https://");
        let api = host.split('.').next().unwrap_or(host);
        let base = ["AWS_ENDPOINT_URL_API_GATEWAY", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|u| !u.is_empty()));
        let url = match base {
            Some(b) => format!(
                "{}/restapis/{api}/{stage}/_user_request_/{path}",
                b.trim_end_matches('/')
            ),
            None => format!("https://{host}/{stage}/{path}"),
        };
        let mut call = json!({"ApiEndpoint": url, "Method": s(args, "Method").unwrap_or("GET")});
        for k in ["RequestBody", "QueryParameters"] {
            if let Some(v) = args.get(k) {
                call[k] = v.clone();
            }
        }
        if let Some(h) = args["Headers"].as_object() {
            let first = |v: &Value| v.as_array().and_then(|a| a.first()).cloned();
            let flat: Map<String, Value> = h
                .iter()
                .map(|(k, v)| (k.clone(), first(v).unwrap_or(v.clone())))
                .collect();
            call["Headers"] = Value::Object(flat);
        }
        match self.http_call(&url, &call).await {
            Err((e, cause)) if e.starts_with("States.Http.StatusCode.") => {
                let status = e.trim_start_matches("States.Http.StatusCode.");
                Err((format!("ApiGateway.{status}"), cause))
            }
            Err((_, cause)) => Err(("ApiGateway.SdkClientException".into(), cause)),
            ok => ok,
        }
    }

    async fn http_invoke(&self, args: &Value) -> Outcome {
        let url = self.http_url(args)?;
        self.connection_exists(args).await?;
        self.http_call(&url, args).await
    }

    /// An HTTP request to `url` with the method, headers and body an HTTP task gives.
    async fn http_call(&self, url: &str, args: &Value) -> Outcome {
        let socket = |m: String| ("States.Http.Socket".to_string(), m);
        let url = url.to_string();
        let method = args["Method"].as_str().unwrap_or("GET").to_uppercase();
        let mut req = hyper::Request::builder().method(method.as_str()).uri(&url);
        for (k, v) in args["Headers"].as_object().into_iter().flatten() {
            req = req.header(k.as_str(), text_of(v));
        }
        let body = match &args["RequestBody"] {
            Value::Null => Vec::new(),
            Value::String(s) => s.clone().into_bytes(),
            other => {
                req = req.header("content-type", "application/json");
                other.to_string().into_bytes()
            }
        };
        let sent = String::from_utf8_lossy(&body).to_string();
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| socket(format!("{url}: {e}")))?;
        let protocol = if url.starts_with("https:") {
            "https"
        } else {
            "http"
        };
        trace_request(&req, protocol, &url, sent);
        let resp = tokio::time::timeout(std::time::Duration::from_secs(60), self.http.request(req))
            .await
            .map_err(|_| socket(format!("{url}: no answer within 60 s")))?
            .map_err(|e| {
                let e = aws_smithy_types::error::display::DisplayErrorContext(&e);
                socket(format!("{url}: {e}"))
            })?;
        let status = resp.status();
        let mut headers = Map::new();
        for (k, v) in resp.headers() {
            let e = headers.entry(k.as_str()).or_insert_with(|| json!([]));
            let value = json!(v.to_str().unwrap_or_default());
            e.as_array_mut().unwrap().push(value);
        }
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| socket(format!("{url}: {e}")))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        trace_response(protocol, status, &headers, &text);
        let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text.clone()));
        let out = json!({"Headers": headers, "ResponseBody": body, "StatusCode": status.as_u16(), "StatusText": status.canonical_reason().unwrap_or("")});
        if !status.is_success() {
            let error = format!("States.Http.StatusCode.{}", status.as_u16());
            return Err((error, out.to_string()));
        }
        Ok(out)
    }

    /// The URL an HTTP task calls (behind `--http-endpoint`, its path there), with its query.
    fn http_url(&self, args: &Value) -> Result<String, (String, String)> {
        let endpoint = need(args, "ApiEndpoint", "States.Http")?;
        let mut url = match &self.http_endpoint {
            Some(base) => {
                let path = endpoint
                    .split_once("://")
                    .map(|(_, rest)| rest.find('/').map(|i| &rest[i..]).unwrap_or(""))
                    .unwrap_or(endpoint);
                format!("{}{}", base.trim_end_matches('/'), path)
            }
            None => endpoint.to_string(),
        };
        let query = args["QueryParameters"].as_object();
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            let enc = |s: &str| {
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            };
            let pairs: Vec<String> = q
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(&text_of(v))))
                .collect();
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&pairs.join("&"));
        }
        Ok(url)
    }

    /// The EventBridge connection an HTTP task names must exist, as it must on AWS.
    async fn connection_exists(&self, args: &Value) -> Result<(), (String, String)> {
        let connection = args["InvocationConfig"]["ConnectionArn"]
            .as_str()
            .or(args["Authentication"]["ConnectionArn"].as_str());
        let Some(arn) = connection else {
            return Ok(());
        };
        let name = arn
            .rsplit('/')
            .nth(1)
            .or_else(|| arn.rsplit('/').next())
            .unwrap_or(arn);
        let found = self
            .ctx
            .events
            .describe_connection()
            .name(name)
            .send()
            .await;
        found.map(|_| ()).map_err(|e| {
            let why = e.message().unwrap_or("not found").to_string();
            (
                "States.Http.ConnectionNotFound".into(),
                format!("connection {arn}: {why}"),
            )
        })
    }
}

/// A value as text: a string as it is, anything else as JSON.
fn text_of(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}
