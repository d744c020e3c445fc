//! Task integrations of the local endpoint: the operations the four exercises use are called for
//! real on the emulator behind `--endpoint-url` (IAM, SNS, DataSync, S3, DynamoDB, Lambda) or over
//! HTTP (`http:invoke`, to `--http-endpoint` when given); a mocked answer (Step Functions Local
//! mock configuration, test case chosen by `<machine ARN>#<case>`) wins over all of them.

use crate::aws::Ctx;
use crate::engine::scenario::Mocked;
use crate::engine::{TaskCall, TaskResult, Tasks};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
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
}

impl Integrations {
    pub fn new(ctx: Ctx, http_endpoint: Option<String>) -> std::io::Result<Integrations> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(Integrations {
            ctx,
            http_endpoint,
            http,
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
    async fn call(&self, call: TaskCall<'_>) -> TaskResult {
        if let Some(answer) = self.mocks.as_ref().and_then(|m| m.answer(call.state)) {
            return answer;
        }
        let result = self.integrations.call(call.resource, call.arguments).await;
        match result {
            // the request went out; the answer comes with the token
            Ok(_) if call.token.is_some() => TaskResult::AwaitToken,
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

/// An SDK error as Step Functions names it: `<Service>.<Code>` (aws-sdk integrations add
/// `Exception` to codes that lack it).
fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    prefix: &str,
    exception_suffix: bool,
    e: &SdkError<E, R>,
) -> (String, String) {
    match e.as_service_error() {
        Some(se) => {
            let code = se.code().unwrap_or("Unknown");
            let code = if exception_suffix && !code.ends_with("Exception") {
                format!("{code}Exception")
            } else {
                code.to_string()
            };
            (
                format!("{prefix}.{code}"),
                se.message().unwrap_or_default().to_string(),
            )
        }
        None => (
            format!("{prefix}.SdkClientException"),
            aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
        ),
    }
}

fn iso(d: &aws_smithy_types::DateTime) -> String {
    d.fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// A task integration: the emulator's API called as Step Functions would call it.
type Handler = for<'a> fn(&'a Ctx, &'a Value) -> futures::future::BoxFuture<'a, Outcome>;

/// The integrations `deploy local` calls, by the Resource names that reach them (with
/// `.sync` / `.waitForTaskToken` taken off); `http:invoke` is the client's own.
const INTEGRATIONS: &[(&[&str], Handler)] = &[
    (&["aws-sdk:iam:listAttachedUserPolicies"], |c, args| {
        Box::pin(iam_list_attached_user_policies(c, args))
    }),
    (&["aws-sdk:iam:attachUserPolicy"], |c, args| {
        Box::pin(iam_user_policy(c, args, true))
    }),
    (&["aws-sdk:iam:detachUserPolicy"], |c, args| {
        Box::pin(iam_user_policy(c, args, false))
    }),
    (&["aws-sdk:iam:createUser"], |c, args| {
        Box::pin(iam_create_user(c, args))
    }),
    (&["aws-sdk:iam:addUserToGroup"], |c, args| {
        Box::pin(iam_add_user_to_group(c, args))
    }),
    (&["sns:publish", "aws-sdk:sns:publish"], |c, args| {
        Box::pin(sns_publish(c, args))
    }),
    (&["aws-sdk:datasync:startTaskExecution"], |c, args| {
        Box::pin(datasync_start_task_execution(c, args))
    }),
    (&["aws-sdk:datasync:describeTaskExecution"], |c, args| {
        Box::pin(datasync_describe_task_execution(c, args))
    }),
    (&["aws-sdk:s3:deleteObject"], |c, args| {
        Box::pin(s3_delete_object(c, args))
    }),
    (
        &["dynamodb:updateItem", "aws-sdk:dynamodb:updateItem"],
        |c, args| Box::pin(dynamodb_update_item(c, args)),
    ),
    (&["lambda:invoke", "aws-sdk:lambda:invoke"], |c, args| {
        Box::pin(lambda_invoke(c, args))
    }),
];

async fn iam_list_attached_user_policies(c: &Ctx, args: &Value) -> Outcome {
    let o = c
        .iam
        .list_attached_user_policies()
        .user_name(need(args, "UserName", "Iam")?)
        .set_path_prefix(s(args, "PathPrefix").map(Into::into))
        .send()
        .await
        .map_err(|e| sdk_error("Iam", true, &e))?;
    let policies: Vec<Value> = o
        .attached_policies()
        .iter()
        .map(|p| json!({"PolicyName": p.policy_name(), "PolicyArn": p.policy_arn()}))
        .collect();
    Ok(json!({"AttachedPolicies": policies, "IsTruncated": o.is_truncated()}))
}

/// AttachUserPolicy (`attach`) or DetachUserPolicy: both take the user and the policy.
async fn iam_user_policy(c: &Ctx, args: &Value, attach: bool) -> Outcome {
    let (user, policy) = (
        need(args, "UserName", "Iam")?,
        need(args, "PolicyArn", "Iam")?,
    );
    if attach {
        let call = c
            .iam
            .attach_user_policy()
            .user_name(user)
            .policy_arn(policy);
        call.send().await.map_err(|e| sdk_error("Iam", true, &e))?;
    } else {
        let call = c
            .iam
            .detach_user_policy()
            .user_name(user)
            .policy_arn(policy);
        call.send().await.map_err(|e| sdk_error("Iam", true, &e))?;
    }
    Ok(json!({}))
}

async fn iam_create_user(c: &Ctx, args: &Value) -> Outcome {
    let o = c
        .iam
        .create_user()
        .user_name(need(args, "UserName", "Iam")?)
        .set_path(s(args, "Path").map(Into::into))
        .send()
        .await
        .map_err(|e| sdk_error("Iam", true, &e))?;
    let user = o.user().map(|u| {
        json!({"UserName": u.user_name(), "UserId": u.user_id(), "Arn": u.arn(), "Path": u.path(), "CreateDate": iso(u.create_date())})
    });
    Ok(json!({"User": user}))
}

async fn iam_add_user_to_group(c: &Ctx, args: &Value) -> Outcome {
    c.iam
        .add_user_to_group()
        .group_name(need(args, "GroupName", "Iam")?)
        .user_name(need(args, "UserName", "Iam")?)
        .send()
        .await
        .map_err(|e| sdk_error("Iam", true, &e))?;
    Ok(json!({}))
}

async fn sns_publish(c: &Ctx, args: &Value) -> Outcome {
    // a non-string Message is sent as its JSON text, as Step Functions does
    let message = match &args["Message"] {
        Value::String(m) => m.clone(),
        Value::Null => {
            return Err((
                "SNS.InvalidParameterException".into(),
                "Message is required".into(),
            ));
        }
        other => other.to_string(),
    };
    let o = c
        .sns
        .publish()
        .set_topic_arn(s(args, "TopicArn").map(Into::into))
        .set_target_arn(s(args, "TargetArn").map(Into::into))
        .set_phone_number(s(args, "PhoneNumber").map(Into::into))
        .set_subject(s(args, "Subject").map(Into::into))
        .message(message)
        .send()
        .await
        .map_err(|e| sdk_error("SNS", false, &e))?;
    Ok(json!({"MessageId": o.message_id(), "SdkHttpMetadata": {"HttpStatusCode": 200}}))
}

async fn datasync_start_task_execution(c: &Ctx, args: &Value) -> Outcome {
    let o = c
        .datasync
        .start_task_execution()
        .task_arn(need(args, "TaskArn", "DataSync")?)
        .send()
        .await
        .map_err(|e| sdk_error("DataSync", true, &e))?;
    Ok(json!({"TaskExecutionArn": o.task_execution_arn()}))
}

async fn datasync_describe_task_execution(c: &Ctx, args: &Value) -> Outcome {
    let o = c
        .datasync
        .describe_task_execution()
        .task_execution_arn(need(args, "TaskExecutionArn", "DataSync")?)
        .send()
        .await
        .map_err(|e| sdk_error("DataSync", true, &e))?;
    Ok(json!({
        "TaskExecutionArn": o.task_execution_arn(),
        "Status": o.status().map(|s| s.as_str()),
        "StartTime": o.start_time().map(iso),
        "BytesTransferred": o.bytes_transferred(),
        "FilesTransferred": o.files_transferred(),
    }))
}

async fn s3_delete_object(c: &Ctx, args: &Value) -> Outcome {
    let o =
        c.s3.delete_object()
            .bucket(need(args, "Bucket", "S3")?)
            .key(need(args, "Key", "S3")?)
            .set_version_id(s(args, "VersionId").map(Into::into))
            .send()
            .await
            .map_err(|e| sdk_error("S3", true, &e))?;
    let mut out = Map::new();
    if let Some(d) = o.delete_marker() {
        out.insert("DeleteMarker".into(), json!(d));
    }
    if let Some(v) = o.version_id() {
        out.insert("VersionId".into(), json!(v));
    }
    Ok(Value::Object(out))
}

async fn dynamodb_update_item(c: &Ctx, args: &Value) -> Outcome {
    let attrs = |k: &str| -> Result<Option<HashMap<String, AttributeValue>>, (String, String)> {
        match args.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| to_attribute(v).map(|a| (k.clone(), a)))
                .collect::<Result<_, _>>()
                .map(Some)
                .map_err(|m| ("DynamoDB.ValidationException".into(), m)),
            Some(_) => Err((
                "DynamoDB.ValidationException".into(),
                format!("{k} must be an object"),
            )),
        }
    };
    let names = args["ExpressionAttributeNames"].as_object().map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    });
    let o = c
        .dynamodb
        .update_item()
        .table_name(need(args, "TableName", "DynamoDB")?)
        .set_key(attrs("Key")?)
        .set_update_expression(s(args, "UpdateExpression").map(Into::into))
        .set_condition_expression(s(args, "ConditionExpression").map(Into::into))
        .set_expression_attribute_values(attrs("ExpressionAttributeValues")?)
        .set_expression_attribute_names(names)
        .set_return_values(s(args, "ReturnValues").map(Into::into))
        .send()
        .await
        .map_err(|e| sdk_error("DynamoDB", false, &e))?;
    let mut out = Map::new();
    if let Some(a) = o.attributes() {
        out.insert(
            "Attributes".into(),
            Value::Object(
                a.iter()
                    .map(|(k, v)| (k.clone(), from_attribute(v)))
                    .collect(),
            ),
        );
    }
    Ok(Value::Object(out))
}

async fn lambda_invoke(c: &Ctx, args: &Value) -> Outcome {
    let payload = match &args["Payload"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone().into_bytes()),
        other => Some(other.to_string().into_bytes()),
    };
    let o = c
        .lambda
        .invoke()
        .function_name(need(args, "FunctionName", "Lambda")?)
        .set_qualifier(s(args, "Qualifier").map(Into::into))
        .set_invocation_type(s(args, "InvocationType").map(Into::into))
        .set_client_context(s(args, "ClientContext").map(Into::into))
        .set_payload(payload.map(aws_smithy_types::Blob::new))
        .send()
        .await
        .map_err(|e| sdk_error("Lambda", false, &e))?;
    let text = o
        .payload()
        .map(|p| String::from_utf8_lossy(p.as_ref()).to_string())
        .unwrap_or_default();
    let payload: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    if o.function_error().is_some() {
        let error = payload["errorType"]
            .as_str()
            .unwrap_or("Lambda.Unknown")
            .to_string();
        return Err((error, text));
    }
    Ok(
        json!({"ExecutedVersion": o.executed_version(), "Payload": payload, "StatusCode": o.status_code(),
              "SdkHttpMetadata": {"HttpStatusCode": o.status_code()}}),
    )
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
        let r = resource
            .strip_prefix("arn:aws:states:::")
            .unwrap_or(resource);
        let r = r
            .strip_suffix(".waitForTaskToken")
            .or_else(|| r.strip_suffix(".sync"))
            .unwrap_or(r);
        if r == "http:invoke" {
            return self.http_invoke(args).await;
        }
        match INTEGRATIONS.iter().find(|(names, _)| names.contains(&r)) {
            Some((_, integration)) => integration(&self.ctx, args).await,
            None => Err((
                "States.TaskFailed".into(),
                format!(
                    "deploy local has no integration for {r}; answer this state from a mock (--mock-config, and start the execution on <state machine ARN>#<test case>)"
                ),
            )),
        }
    }

    async fn http_invoke(&self, args: &Value) -> Outcome {
        let socket = |m: String| ("States.Http.Socket".to_string(), m);
        let url = self.http_url(args)?;
        self.connection_exists(args).await?;
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

/// DynamoDB's JSON form of a value (`{"S": "x"}`, `{"N": "1"}`, ...) to the SDK's.
fn to_attribute(v: &Value) -> Result<AttributeValue, String> {
    let m = v
        .as_object()
        .filter(|m| m.len() == 1)
        .ok_or_else(|| format!("not a DynamoDB attribute value: {v}"))?;
    let (t, x) = m.iter().next().unwrap();
    let strings = |x: &Value| -> Vec<String> {
        x.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    Ok(match (t.as_str(), x) {
        ("S", Value::String(s)) => AttributeValue::S(s.clone()),
        ("N", Value::String(s)) => AttributeValue::N(s.clone()),
        ("N", Value::Number(n)) => AttributeValue::N(n.to_string()),
        ("BOOL", Value::Bool(b)) => AttributeValue::Bool(*b),
        ("NULL", _) => AttributeValue::Null(true),
        ("SS", _) => AttributeValue::Ss(strings(x)),
        ("NS", _) => AttributeValue::Ns(strings(x)),
        ("L", Value::Array(a)) => {
            AttributeValue::L(a.iter().map(to_attribute).collect::<Result<_, _>>()?)
        }
        ("M", Value::Object(o)) => AttributeValue::M(
            o.iter()
                .map(|(k, v)| to_attribute(v).map(|a| (k.clone(), a)))
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(format!("unsupported DynamoDB attribute value: {v}")),
    })
}

fn from_attribute(a: &AttributeValue) -> Value {
    match a {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::Ss(v) => json!({"SS": v}),
        AttributeValue::Ns(v) => json!({"NS": v}),
        AttributeValue::L(l) => json!({"L": l.iter().map(from_attribute).collect::<Vec<_>>()}),
        AttributeValue::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), from_attribute(v))).collect::<Map<_, _>>()})
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_values_round_trip() {
        let v = json!({"M": {"name": {"S": "a"}, "n": {"N": "1"}, "ok": {"BOOL": true}, "l": {"L": [{"NULL": true}, {"SS": ["x"]}]}}});
        assert_eq!(from_attribute(&to_attribute(&v).unwrap()), v);
        assert!(to_attribute(&json!({"S": "a", "N": "1"})).is_err());
    }
}
