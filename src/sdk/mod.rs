//! Any AWS API call, made from the service models: `call("s3", "getObject", {...})` finds the
//! service and operation in the AWS SDK models (`model`), writes the request in the service's
//! wire protocol (`request`), signs it with SigV4 for the credentials of the standard chain,
//! sends it to the endpoint the standard settings name for that service
//! (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, else AWS's own) and reads the answer
//! (`response`). What Step Functions' `aws-sdk:*` tasks and its optimised integrations call.

pub mod check;
pub mod model;
pub mod request;
pub mod response;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

tokio::task_local! {
    /// Credentials that the calls made within it are signed with instead of the chain's: a
    /// task's `Credentials.RoleArn`, assumed.
    pub static ASSUMED: aws_credential_types::Credentials;
}

/// Makes AWS API calls for `deploy local`'s tasks.
pub struct Caller {
    http: HttpClient,
    credentials: Option<SharedCredentialsProvider>,
    region: String,
    /// Endpoints given besides the standard settings, by model name (`stepfunctions`: deploy
    /// local's own address, so that `aws-sdk:sfn:*` and child executions stay on it).
    endpoints: std::sync::RwLock<HashMap<String, String>>,
}

/// A successful call: the status, the headers and the output as Step Functions shapes it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub output: Value,
    /// The body as it came (a blob's bytes, where `output` has its text).
    pub body: bytes::Bytes,
}

/// A call that did not succeed.
#[derive(Debug)]
pub enum CallError {
    /// The service answered with an error.
    Service {
        service: Arc<model::Service>,
        status: u16,
        code: String,
        message: String,
        request_id: String,
        extended_id: Option<String>,
    },
    /// The parameters do not fit the operation's input.
    Invalid {
        service: Arc<model::Service>,
        message: String,
    },
    /// No service or operation of that name in the models.
    Unknown(String),
    /// Nothing answered (connection refused, time-out), or no credentials.
    Client(String),
}

impl Caller {
    pub fn new(
        http: HttpClient,
        credentials: Option<SharedCredentialsProvider>,
        region: &str,
    ) -> Caller {
        Caller {
            http,
            credentials,
            region: region.to_string(),
            endpoints: Default::default(),
        }
    }

    /// Sends `service`'s calls to `url` unless its own standard setting names another.
    pub fn set_endpoint(&self, service: &str, url: &str) {
        if let Some(s) = model::service(service) {
            let file = s.id.clone();
            self.endpoints
                .write()
                .unwrap()
                .insert(file, url.to_string());
        }
    }

    /// The endpoint of a service: `AWS_ENDPOINT_URL_<SERVICE ID>`, one given to `set_endpoint`,
    /// `AWS_ENDPOINT_URL`, else AWS's host for the region.
    pub fn endpoint(&self, svc: &model::Service) -> (String, bool) {
        let id = svc.id.to_ascii_uppercase().replace([' ', '-'], "_");
        let own = std::env::var(format!("AWS_ENDPOINT_URL_{id}"))
            .ok()
            .filter(|u| !u.is_empty());
        let given = self.endpoints.read().unwrap().get(&svc.id).cloned();
        let any = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|u| !u.is_empty());
        match own.or(given).or(any) {
            Some(u) => (u.trim_end_matches('/').to_string(), true),
            None => match &svc.global {
                Some((host, _)) => (format!("https://{host}"), false),
                None => (
                    format!("https://{}.{}.amazonaws.com", svc.prefix, self.region),
                    false,
                ),
            },
        }
    }

    /// Calls `action` (`getObject`) of `service` (`s3`) with Step Functions' parameters.
    pub async fn call(
        &self,
        service: &str,
        action: &str,
        args: &Value,
    ) -> Result<Reply, CallError> {
        self.call_as(service, action, args, request::Blobs::Json)
            .await
    }

    /// `call`, with blobs given as text sent as `blobs` says.
    pub async fn call_as(
        &self,
        service: &str,
        action: &str,
        args: &Value,
        blobs: request::Blobs,
    ) -> Result<Reply, CallError> {
        let svc = model::service(service).ok_or_else(|| {
            CallError::Unknown(format!("the AWS SDK models have no service '{service}'"))
        })?;
        let (op_name, op) = svc
            .operation(action)
            .ok_or_else(|| CallError::Unknown(format!("{} has no operation '{action}'", svc.id)))?;
        let input = op.i.as_deref();
        if let Some((code, message)) = input.and_then(|i| check::check(&svc, i, args)) {
            // refused as the service refuses it, before anything is sent
            return Err(CallError::Service {
                service: svc.clone(),
                status: 400,
                code,
                message,
                request_id: uuid::Uuid::new_v4().to_string(),
                extended_id: None,
            });
        }
        let wire = request::build(&svc, op_name, op, args, blobs).map_err(|message| {
            CallError::Invalid {
                service: svc.clone(),
                message,
            }
        })?;
        let (status, headers, body) = self.send(&svc, op, wire).await?;
        let answer = response::Answer {
            status,
            headers: &headers,
            body: &body,
        };
        if status >= 300 {
            let e = response::error(&svc, &answer);
            return Err(CallError::Service {
                request_id: answer.request_id(),
                extended_id: answer.header("x-amz-id-2").map(str::to_string),
                service: svc.clone(),
                status,
                code: e.code,
                message: e.message,
            });
        }
        let output = response::output(&svc, op, &answer);
        Ok(Reply {
            status,
            headers,
            output,
            body,
        })
    }

    /// The URL of a request: the service's endpoint, the path, the query (a key the operation's
    /// URI fixes without a value stays bare: `?uploads`).
    fn url(&self, svc: &model::Service, op: &model::Operation, wire: &request::Wire) -> String {
        let (base, _) = self.endpoint(svc);
        let mut url = format!("{base}{}", wire.path);
        if !wire.query.is_empty() {
            let bare = |k: &str, v: &str| v.is_empty() && op.u.contains(&format!("?{k}"));
            let q: Vec<String> = wire
                .query
                .iter()
                .map(|(k, v)| match bare(k, v) {
                    true => request::enc(k),
                    false => format!("{}={}", request::enc(k), request::enc(v)),
                })
                .collect();
            url.push('?');
            url.push_str(&q.join("&"));
        }
        url
    }

    /// Signs and sends a request; what came back.
    async fn send(
        &self,
        svc: &model::Service,
        op: &model::Operation,
        wire: request::Wire,
    ) -> Result<(u16, Vec<(String, String)>, bytes::Bytes), CallError> {
        let url = self.url(svc, op, &wire);
        let region = svc.global.as_ref().map(|(_, r)| r.clone());
        let region = region.unwrap_or_else(|| self.region.clone());
        let headers = self.sign(svc, &region, &wire, &url).await?;
        let mut req = hyper::Request::builder()
            .method(wire.method.as_str())
            .uri(&url);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(wire.body)))
            .map_err(|e| CallError::Client(format!("{url}: {e}")))?;
        let resp = tokio::time::timeout(Duration::from_secs(60), self.http.request(req))
            .await
            .map_err(|_| CallError::Client(format!("{url}: no answer within 60 s")))?
            .map_err(|e| {
                let retired = svc
                    .retired
                    .as_deref()
                    .map(|r| format!(" ({} is {r})", svc.id));
                CallError::Client(format!(
                    "Unable to execute HTTP request: {url}: {}{}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e),
                    retired.unwrap_or_default()
                ))
            })?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let body = resp.into_body().collect().await;
        let body = body
            .map_err(|e| CallError::Client(format!("{url}: {e}")))?
            .to_bytes();
        Ok((status, headers, body))
    }

    /// The credentials of `role`, assumed through STS on its endpoint (the emulator's here).
    pub async fn assume(&self, role: &str) -> Result<aws_credential_types::Credentials, CallError> {
        let args = serde_json::json!({"RoleArn": role, "RoleSessionName": "deploy-local"});
        let got = self.call("sts", "assumeRole", &args).await?.output;
        let c = &got["Credentials"];
        let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        Ok(aws_credential_types::Credentials::new(
            text("AccessKeyId"),
            text("SecretAccessKey"),
            Some(text("SessionToken")),
            None,
            "Credentials.RoleArn",
        ))
    }

    /// The SigV4 headers (and the request's own) for a request.
    async fn sign(
        &self,
        svc: &model::Service,
        region: &str,
        wire: &request::Wire,
        url: &str,
    ) -> Result<Vec<(String, String)>, CallError> {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
        };
        let mut headers = wire.headers.clone();
        let creds = match (ASSUMED.try_with(Clone::clone), &self.credentials) {
            (Ok(assumed), _) => assumed,
            (Err(_), Some(provider)) => provider
                .provide_credentials()
                .await
                .map_err(|e| CallError::Client(format!("no AWS credentials: {e}")))?,
            (Err(_), None) => return Ok(headers),
        };
        let identity = creds.into();
        let mut settings = SigningSettings::default();
        if svc.signing == "s3" {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(&svc.signing)
            .time(std::time::SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| CallError::Client(format!("signing: {e}")))?
            .into();
        let signable = SignableRequest::new(
            &wire.method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&wire.body),
        )
        .map_err(|e| CallError::Client(format!("signing {url}: {e}")))?;
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .map_err(|e| CallError::Client(format!("signing {url}: {e}")))?
            .into_parts();
        let (signed, _) = instructions.into_parts();
        for h in signed {
            headers.push((h.name().to_string(), h.value().to_string()));
        }
        Ok(headers)
    }
}
