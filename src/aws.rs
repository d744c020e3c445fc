//! AWS access: the standard credential chain and endpoint override, a preflight that turns
//! missing credentials and unreachable endpoints into one clear message, clients for every
//! service the resource kinds use, error formatting, and the bounded retry for IAM
//! propagation delays (a role just created "cannot be assumed" for a few seconds).
//! Throttling is retried by the SDK's standard retry mode with backoff.

use crate::error::{Error, Result};
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_smithy_types::error::display::DisplayErrorContext;
use std::future::Future;
use std::time::Duration;

/// Connection options shared by every command that talks to AWS.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AwsOptions {
    /// Named profile from the shared AWS config (else AWS_PROFILE / default chain)
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Region (else AWS_REGION / profile; us-east-1 when nothing is configured)
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Send API calls to this endpoint, e.g. a local emulator (the same as AWS_ENDPOINT_URL;
    /// AWS_ENDPOINT_URL_<SERVICE>, e.g. AWS_ENDPOINT_URL_SFN, still wins for its service)
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
}

/// Everything a resource operation needs: who and where we are, and the clients.
pub struct Ctx {
    pub account_id: String,
    pub region: String,
    pub partition: String,
    pub endpoint: Option<String>,
    /// The configuration the clients were made from (credentials, region): what `deploy
    /// local`'s calls from the service models sign with.
    pub config: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// CloudWatch: the alarms a gradual rollout watches.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub pipes: aws_sdk_pipes::Client,
    pub datasync: aws_sdk_datasync::Client,
    /// The Resource Groups Tagging API: what carries a tag, across services (`deploy envs`).
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub propagation: Backoff,
    /// Where build artefacts are cached (Lambda packages), under the project's .deploy/.
    pub cache_dir: std::path::PathBuf,
    /// The project folder (function sources are relative to it).
    pub project_root: std::path::PathBuf,
    /// `destroy --stop-executions`: a state machine with running executions is deleted after
    /// stopping them (without it, refused).
    pub stop_executions: bool,
    /// `up --no-wait`: a gradual rollout takes its next step and leaves the rest to a later
    /// `up` or `deploy rollout`.
    pub rollout_no_wait: bool,
}

/// Bounded exponential backoff.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// For IAM propagation: 1 s, 2 s, 4 s, 8 s, then 10 s, at most 10 attempts (~65 s).
    /// `DEPLOY_RETRY_BASE_MS` shortens the base delay (tests).
    pub fn propagation() -> Self {
        let base = std::env::var("DEPLOY_RETRY_BASE_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000);
        Backoff {
            attempts: 10,
            base: Duration::from_millis(base),
            max: Duration::from_millis(base * 10),
        }
    }
    pub fn delay(&self, attempt: u32) -> Duration {
        (self.base * 2u32.saturating_pow(attempt.min(16))).min(self.max)
    }
}

/// Polls `check` until it gives a value, with the propagation backoff, at most `attempts`
/// times; then `timeout` is the error. The one wait loop for what AWS does asynchronously and
/// has no SDK waiter fit for it: DynamoDB's `table_exists` / `table_not_exists` wait 20 s
/// between polls (a table is usually ready in 5), and Pipes and Step Functions have none.
/// Lambda uses the SDK's waiters.
pub async fn poll_until<T, Fut>(
    ctx: &Ctx,
    attempts: u32,
    mut check: impl FnMut() -> Fut,
    timeout: impl FnOnce() -> Error,
) -> Result<T>
where
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    for attempt in 0..attempts {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        tokio::time::sleep(ctx.propagation.delay(attempt.min(1))).await;
    }
    Err(timeout())
}

/// The SDK's retries (throttling, 5xx, dropped connections) with exponential backoff and
/// jitter; the first delay is 1 s, or `DEPLOY_RETRY_BASE_MS` (tests, like the propagation
/// backoff). Standard mode, not adaptive: how many calls go at once is `throttle`'s to adapt
/// per service (the SDK's adaptive mode measured a fresh client's rate from its first few
/// calls and then held it to a fraction of a call a second: 9 throttled calls cost a 10-state-
/// machine plan 20 s in scripts/bench-scale --rate 100,50).
fn retry_config(max_attempts: u32) -> RetryConfig {
    let config = RetryConfig::standard().with_max_attempts(max_attempts);
    match std::env::var("DEPLOY_RETRY_BASE_MS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(ms) => config
            .with_initial_backoff(Duration::from_millis(ms))
            .with_max_backoff(Duration::from_millis(ms * 10)),
        None => config,
    }
}

pub async fn load_config(opts: &AwsOptions, max_attempts: u32) -> SdkConfig {
    let region = RegionProviderChain::first_try(opts.region.clone().map(Region::new))
        .or_default_provider()
        .or_else(Region::new("us-east-1"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(retry_config(max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    // The endpoint is left to aws-config, which resolves AWS_ENDPOINT_URL_<SERVICE> (and a
    // profile's per-service endpoints) over AWS_ENDPOINT_URL for every client; `--endpoint-url`
    // is AWS_ENDPOINT_URL, set by `use_endpoint_flag` before anything runs.
    loader.load().await
}

/// `--endpoint-url` given on the command line means AWS_ENDPOINT_URL for this process (called
/// from `main` before any thread starts), so that per-service settings still win over it.
pub fn use_endpoint_flag(opts: &AwsOptions) {
    if let Some(url) = &opts.endpoint_url {
        if std::env::var("AWS_ENDPOINT_URL").ok().as_deref() != Some(url.as_str()) {
            // SAFETY: called once at startup, before the runtime or any other thread exists.
            unsafe { std::env::set_var("AWS_ENDPOINT_URL", url) };
        }
    }
}

/// A service's client, whose answers feed its adaptive concurrency (`throttle::Signals`).
/// Its retries are not rationed by the SDK's retry quota (500 tokens, 5 a throttled retry: a
/// deploy of 800 resources that a service throttles 300 times ran dry and failed): how many
/// calls go at once is what adapts, and each call still has at most its 8 attempts.
macro_rules! client {
    ($sdk:ident, $config:expr, $service:literal $(, $setting:ident($value:expr))*) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($config)
                $(.$setting($value))*
                .interceptor(crate::throttle::Signals($service))
                .retry_partition(
                    $sdk::config::retry::RetryPartition::custom($service)
                        .token_bucket($sdk::config::retry::TokenBucket::unlimited())
                        .build(),
                )
                .build(),
        )
    };
}

/// An S3 client: path-style bucket addressing wherever an endpoint is set (emulators on
/// localhost have no bucket subdomains).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let custom = service_endpoint("s3").is_some()
        || std::env::var("AWS_ENDPOINT_URL").is_ok_and(|u| !u.is_empty());
    client!(aws_sdk_s3, config, "s3", force_path_style(custom))
}

/// The standard per-service endpoint setting of a service (`sfn` → AWS_ENDPOINT_URL_SFN).
fn service_endpoint(service: &str) -> Option<String> {
    let id = match service {
        "cloudwatchlogs" => "CLOUDWATCH_LOGS",
        "resourcegroupstagging" => "RESOURCE_GROUPS_TAGGING_API",
        other => &other.to_ascii_uppercase(),
    };
    std::env::var(format!("AWS_ENDPOINT_URL_{id}"))
        .ok()
        .filter(|u| !u.is_empty())
}

/// Loads configuration, checks credentials and the endpoint, and learns the account id.
pub async fn connect(opts: &AwsOptions) -> Result<Ctx> {
    let (config, region, endpoint) = configure(opts).await?;
    let account_id = who_am_i(&config).await?;
    Ok(Ctx::with_clients(&config, account_id, region, endpoint))
}

/// For `deploy local`, which needs AWS only when a task calls a service: the account is
/// AWS_ACCOUNT_ID when set (as Step Functions Local takes it), else the one the credentials are
/// of; when that cannot be learned (no credentials, no endpoint answering) the endpoint starts
/// all the same, as account 123456789012, and says why.
pub async fn connect_for_local(opts: &AwsOptions) -> Ctx {
    let given = std::env::var("AWS_ACCOUNT_ID")
        .ok()
        .filter(|a| !a.is_empty());
    if given.is_none() {
        match connect(opts).await {
            Ok(ctx) => return ctx,
            Err(e) => eprintln!(
                "warning: deploy local starts as account 123456789012 (set AWS_ACCOUNT_ID to choose); tasks that call a service fail until this is mended:\n{e}"
            ),
        }
    }
    let config = load_config(opts, 8).await;
    let region = config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    set_endpoints(&opts.endpoint_url, &region);
    let account = given.unwrap_or_else(|| "123456789012".into());
    Ctx::with_clients(&config, account, region, opts.endpoint_url.clone())
}

/// Like `connect`, without waiting for the identity check when the account is already known
/// (recorded in state by an earlier run): the context is made for `assumed` at once, and the
/// check (GetCallerIdentity) goes on alongside the work given to `Identity::alongside`, which
/// only ever reads. Saves the round trip of the check on every plan of a deployed stack.
pub async fn connect_assuming(
    opts: &AwsOptions,
    assumed: Option<String>,
) -> Result<(Ctx, Identity)> {
    let Some(assumed) = assumed else {
        return Ok((connect(opts).await?, Identity(None)));
    };
    let (config, region, endpoint) = configure(opts).await?;
    let check = {
        let config = config.clone();
        tokio::spawn(async move { who_am_i(&config).await })
    };
    let ctx = Ctx::with_clients(&config, assumed.clone(), region.clone(), endpoint);
    Ok((ctx, Identity(Some((check, assumed, region)))))
}

/// The identity check still on its way (see `connect_assuming`).
pub struct Identity(Option<(tokio::task::JoinHandle<Result<String>>, String, String)>);

impl Identity {
    /// Runs `reads` while the identity check completes; the check's failure (no credentials,
    /// an endpoint that does not answer, another account than the one recorded) is the error,
    /// whatever the reads gave.
    pub async fn alongside<T>(self, reads: impl Future<Output = Result<T>>) -> Result<T> {
        let Some((mut check, assumed, region)) = self.0 else {
            return reads.await;
        };
        let confirm = |who: std::result::Result<Result<String>, tokio::task::JoinError>| {
            let account =
                who.map_err(|e| Error::aws(format!("the identity check failed: {e}")))??;
            if account != assumed {
                return Err(Error::user(format!(
                    "the recorded state is of account {assumed} region {region}, and this run points at account {account}"
                ))
                .help("use the profile/region it was deployed with, or another --env / --state"));
            }
            Ok(())
        };
        tokio::pin!(reads);
        tokio::select! {
            who = &mut check => {
                confirm(who)?;
                reads.await
            }
            done = &mut reads => {
                confirm(check.await)?;
                done
            }
        }
    }
}

/// The configuration, with credentials found (not yet checked), the region and the endpoint.
async fn configure(opts: &AwsOptions) -> Result<(SdkConfig, String, Option<String>)> {
    let config = load_config(opts, 8).await;
    let endpoint = opts.endpoint_url.clone();
    let Some(creds) = config.credentials_provider() else {
        return Err(no_credentials(None));
    };
    if let Err(e) = creds.provide_credentials().await {
        return Err(no_credentials(Some(&e)));
    }
    let region = config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    set_endpoints(&endpoint, &region);
    Ok((config, region, endpoint))
}

/// The account the credentials are of (GetCallerIdentity): the preflight call, sent by hand so
/// that an endpoint where nothing listens is told at once while an answer lost on the way (a
/// dropped connection, a 5xx) is asked again.
async fn who_am_i(config: &SdkConfig) -> Result<String> {
    let sts_conf = aws_sdk_sts::config::Builder::from(config)
        .retry_config(RetryConfig::disabled())
        .build();
    let sts = aws_sdk_sts::Client::from_conf(sts_conf);
    let mut attempt = 0;
    let who = loop {
        match sts.get_caller_identity().send().await {
            Ok(who) => break who,
            Err(e)
                if attempt < 4
                    && (outcome_unknown(&e)
                        || classify(e.code(), None, false) == Failure::Throttled)
                    && !refused(&e) =>
            {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(api_error("GetCallerIdentity", &e)),
        }
    };
    Ok(who.account().unwrap_or_default().to_string())
}

impl Ctx {
    /// The account, region and partition, as references are resolved against them.
    pub fn target(&self) -> (&str, &str, &str) {
        (&self.account_id, &self.region, &self.partition)
    }

    /// Who and where, with a client for every service made from `config`.
    fn with_clients(
        config: &SdkConfig,
        account_id: String,
        region: String,
        endpoint: Option<String>,
    ) -> Ctx {
        Ctx {
            account_id,
            partition: partition_of(&region).to_string(),
            endpoint,
            config: config.clone(),
            iam: client!(aws_sdk_iam, config, "iam"),
            sfn: client!(aws_sdk_sfn, config, "sfn"),
            events: client!(aws_sdk_eventbridge, config, "events"),
            sns: client!(aws_sdk_sns, config, "sns"),
            sqs: client!(aws_sdk_sqs, config, "sqs"),
            s3: s3_client(config),
            dynamodb: client!(aws_sdk_dynamodb, config, "dynamodb"),
            logs: client!(aws_sdk_cloudwatchlogs, config, "logs"),
            // a release that speaks CloudWatch's query protocol (moto does not speak the newer
            // CBOR one, AWS speaks both); its retry settings are the SDK's defaults
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(config)
                    .interceptor(crate::throttle::Signals("monitoring"))
                    .build(),
            ),
            ecr: client!(aws_sdk_ecr, config, "ecr"),
            lambda: client!(aws_sdk_lambda, config, "lambda"),
            pipes: client!(aws_sdk_pipes, config, "pipes"),
            datasync: client!(aws_sdk_datasync, config, "datasync"),
            tagging: client!(aws_sdk_resourcegroupstagging, config, "tagging"),
            region,
            propagation: Backoff::propagation(),
            cache_dir: std::env::temp_dir().join("deploy-cache"),
            project_root: std::path::PathBuf::from("."),
            stop_executions: false,
            rollout_no_wait: false,
        }
    }

    /// A context whose clients are never called (tests of the planner and executor with
    /// in-memory kinds): nowhere to send anything, no credentials.
    #[cfg(test)]
    pub fn offline() -> Ctx {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        Ctx::with_clients(&config, "123456789012".into(), "us-east-1".into(), None)
    }
}

/// Credentials that could not be had, said in one line: none anywhere the standard chain
/// looks, or the one source that has some failing (an expired SSO session, a profile that does
/// not exist), by its innermost cause; the chain's full report goes to the debug log only.
fn no_credentials(e: Option<&aws_credential_types::provider::error::CredentialsError>) -> Error {
    use aws_credential_types::provider::error::CredentialsError;
    if let Some(e) = e {
        tracing::debug!("loading credentials: {}", DisplayErrorContext(e));
    }
    let what = match e {
        None | Some(CredentialsError::CredentialsNotLoaded(_)) => {
            "no AWS credentials found (not in the environment, the shared config and credentials files, web identity, or container or instance metadata)".to_string()
        }
        Some(e) => format!(
            "loading AWS credentials failed: {}",
            innermost(e).lines().next().unwrap_or_default()
        ),
    };
    let help = match e {
        Some(e) if !matches!(e, CredentialsError::CredentialsNotLoaded(_)) => {
            "for an SSO profile, start a session with `aws sso login --profile NAME`; else set AWS_PROFILE (or --profile) to a profile that has credentials, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        }
        _ => {
            "set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; for a local emulator any static pair works (AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing), or `source .deploy/quickstart.env`"
        }
    };
    Error::aws(what).help(help)
}

/// The deepest cause of an error, as its own Display says it (never Debug).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut at = e;
    while let Some(next) = at.source() {
        at = next;
    }
    at.to_string()
}

pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Where calls go, for messages: the endpoint override, the region.
struct Endpoints {
    default: Option<String>,
    region: String,
}

static ENDPOINTS: std::sync::OnceLock<Endpoints> = std::sync::OnceLock::new();

/// Records where calls go (once per process), so that every error can name the endpoint.
pub fn set_endpoints(endpoint: &Option<String>, region: &str) {
    let _ = ENDPOINTS.set(Endpoints {
        default: endpoint.clone(),
        region: region.to_string(),
    });
}

/// The endpoint a service's calls go to, as people say it.
fn endpoint_of(service: &str) -> String {
    let Some(e) = ENDPOINTS.get() else {
        return "AWS".to_string();
    };
    match (service_endpoint(service), &e.default) {
        (Some(url), _) => url,
        (None, Some(url)) => url.clone(),
        _ => format!("AWS ({})", e.region),
    }
}

/// The service an SDK error type belongs to: `aws_sdk_sns::operation::...` is "sns".
fn service_of<E>() -> &'static str {
    std::any::type_name::<E>()
        .strip_prefix("aws_sdk_")
        .and_then(|t| t.split("::").next())
        .unwrap_or("aws")
}

fn service_name(service: &str) -> &str {
    match service {
        "iam" => "IAM",
        "sfn" => "Step Functions",
        "eventbridge" => "EventBridge",
        "sns" => "SNS",
        "sqs" => "SQS",
        "s3" => "S3",
        "dynamodb" => "DynamoDB",
        "cloudwatchlogs" => "CloudWatch Logs",
        "ecr" => "ECR",
        "lambda" => "Lambda",
        "pipes" => "EventBridge Pipes",
        "datasync" => "DataSync",
        "resourcegroupstagging" => "Resource Groups Tagging",
        "sts" => "STS",
        other => other,
    }
}

/// The IAM prefix of a service's actions (for "access denied" advice).
fn action_prefix(service: &str) -> &str {
    match service {
        "sfn" => "states",
        "eventbridge" => "events",
        "cloudwatchlogs" => "logs",
        "resourcegroupstagging" => "tag",
        other => other,
    }
}

/// What kind of failure an SDK error is: the classes people act on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing answered at the address (refused, no route, DNS, TLS).
    Unreachable,
    /// Connected, but no answer in time.
    TimedOut,
    /// Something answered that is not an AWS API (no error code, an unreadable body).
    NotAws,
    /// The credentials are wrong or expired.
    BadCredentials,
    /// The identity is not allowed to make this call.
    AccessDenied,
    /// Still throttled after the SDK's retries.
    Throttled,
    /// Any other error the service answered with (code and message).
    Service,
}

pub fn classify(code: Option<&str>, dispatch: Option<bool>, unreadable: bool) -> Failure {
    match dispatch {
        Some(true) => return Failure::TimedOut,
        Some(false) => return Failure::Unreachable,
        None => {}
    }
    if unreadable {
        return Failure::NotAws;
    }
    match code {
        None => Failure::NotAws,
        Some(
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "UnrecognizedClientException"
            | "InvalidAccessKeyId"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidToken"
            | "IncompleteSignature"
            | "InvalidSignatureException"
            | "AuthFailure"
            | "MissingAuthenticationToken",
        ) => Failure::BadCredentials,
        Some(
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "UnauthorizedException"
            | "Forbidden",
        ) => Failure::AccessDenied,
        Some(
            "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "SlowDown"
            | "ProvisionedThroughputExceededException"
            | "RequestThrottled"
            | "RequestThrottledException",
        ) => Failure::Throttled,
        Some(_) => Failure::Service,
    }
}

/// The innermost cause of an error, e.g. "Connection refused (os error 111)".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// One sentence for a failed call, naming the service, the operation and the endpoint, plus
/// what to do. The SDK's full error (its Debug form) is logged at `-v`.
pub fn api_error<E>(
    op: &str,
    e: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let service = service_of::<E>();
    let (name, endpoint) = (service_name(service), endpoint_of(service));
    tracing::debug!("{name} {op} failed: {e:?}");
    let dispatch = match e {
        SdkError::TimeoutError(_) => Some(true),
        SdkError::DispatchFailure(d) => Some(d.is_timeout()),
        _ => None,
    };
    let unreadable = matches!(e, SdkError::ResponseError(_));
    let status = e.raw_response().map(|r| r.status().as_u16());
    let (code, message) = (e.code(), e.message().unwrap_or_default());
    let local = endpoint.starts_with("http");
    match classify(code, dispatch, unreadable) {
        Failure::Unreachable => Error::aws(format!("cannot reach {endpoint} ({name} {op}): {}", root_cause(e))).help(if local {
            "is the emulator running at that address? (check --endpoint-url / AWS_ENDPOINT_URL)"
        } else {
            "check your network and the region, or point --endpoint-url at an emulator"
        }),
        Failure::TimedOut => Error::aws(format!("{endpoint} did not answer {name} {op} in time ({})", root_cause(e)))
            .help("check the network, or whether the endpoint is overloaded; then run the command again"),
        Failure::NotAws => {
            let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
            Error::aws(format!("{endpoint} is not an AWS API: its answer to {name} {op}{status} is not an AWS response"))
                .help("check --endpoint-url / AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_SFN): it must point at AWS or an AWS-compatible emulator such as moto")
        }
        Failure::BadCredentials => {
            Error::aws(format!("{endpoint} rejected the credentials ({name} {op}: {}: {message})", code.unwrap_or_default()))
                .help("check AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or refresh an SSO session with `aws sso login`")
        }
        Failure::AccessDenied => Error::aws(format!("access denied: {name} {op} on {endpoint}: {message}"))
            .help(format!("the identity in use needs {}:{op} in its IAM policy (or run as one that has it)", action_prefix(service))),
        Failure::Throttled => Error::aws(format!("{name} {op} is still throttled by {endpoint} after retries: {message}"))
            .help("wait a minute and run the command again (what finished is recorded), or lower --parallelism"),
        Failure::Service => Error::aws(format!("{op} failed: {}: {message}", code.unwrap_or_default())),
    }
}

/// Whether nothing listens at the address (the connection was refused): asking again is no use.
fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Whether a failed call may have been applied all the same: its answer was lost (connection
/// dropped, timed out, unreadable) or the service failed (5xx). A clear refusal (4xx, throttling
/// included) was not applied.
pub fn outcome_unknown<E>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    use aws_smithy_runtime_api::client::result::SdkError;
    match e {
        SdkError::ConstructionFailure(_) => false,
        SdkError::ServiceError(s) => s.raw().status().as_u16() >= 500,
        _ => true,
    }
}

/// A create that is not idempotent, of a resource with no unique name (two calls make two):
/// `create` must send it without the SDK's own retries, since a blind retry after a lost
/// answer makes a second one. After a failure whose outcome is unknown, `find` looks for what
/// the call may have made; only when nothing is there is the create sent again (at most
/// `backoff.attempts` times). Throttling is waited out the same way. A clear refusal goes to
/// `refusal` (which may tell "already exists" apart).
pub async fn create_once<T, E, C, CF, F, FF>(
    backoff: Backoff,
    mut create: C,
    mut find: F,
    refusal: impl Fn(
        aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> Error,
) -> Result<T>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    C: FnMut() -> CF,
    CF: Future<
        Output = std::result::Result<
            T,
            aws_smithy_runtime_api::client::result::SdkError<
                E,
                aws_smithy_runtime_api::http::Response,
            >,
        >,
    >,
    F: FnMut() -> FF,
    FF: Future<Output = Result<Option<T>>>,
{
    let mut attempt = 0;
    loop {
        let e = match create().await {
            Ok(made) => return Ok(made),
            Err(e) => e,
        };
        let throttled = classify(e.code(), None, false) == Failure::Throttled;
        if attempt + 1 >= backoff.attempts || !(throttled || outcome_unknown(&e)) {
            return Err(refusal(e));
        }
        // wait first: a slow service may still be making it when the answer was given up on
        tokio::time::sleep(backoff.delay(attempt)).await;
        if !throttled {
            tracing::info!(
                attempt,
                "a create's outcome is unknown ({}); looking for what it made",
                DisplayErrorContext(&e)
            );
            if let Some(made) = find().await? {
                return Ok(made);
            }
        }
        attempt += 1;
    }
}

/// True for the errors AWS gives while a new role has not yet propagated.
pub fn is_propagation_error(code: Option<&str>, message: Option<&str>) -> bool {
    let m = message.unwrap_or_default();
    let c = code.unwrap_or_default();
    m.contains("cannot be assumed")
        || m.contains("not authorized to assume")
        || m.contains("is not authorized to perform: sts:AssumeRole")
        || (c == "InvalidParameterValueException" && m.contains("role"))
        || (c == "AccessDeniedException" && m.contains("assume"))
        || (c == "InvalidRequestException" && m.contains("access test failed"))
}

/// Runs `f` again while it fails with an IAM propagation error, with bounded backoff.
pub async fn retry_propagation<T, E, F, Fut>(
    backoff: Backoff,
    mut f: F,
) -> std::result::Result<
    T,
    aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<
        Output = std::result::Result<
            T,
            aws_smithy_runtime_api::client::result::SdkError<
                E,
                aws_smithy_runtime_api::http::Response,
            >,
        >,
    >,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e)
                if attempt + 1 < backoff.attempts
                    && is_propagation_error(e.code(), e.message()) =>
            {
                tracing::info!(
                    attempt,
                    "waiting for IAM propagation: {}",
                    e.message().unwrap_or_default()
                );
                tokio::time::sleep(backoff.delay(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_errors_are_recognised() {
        assert!(is_propagation_error(
            Some("AccessDeniedException"),
            Some(
                "Neither the global service principal states.amazonaws.com, nor the regional one is authorized to assume the provided role."
            )
        ));
        assert!(is_propagation_error(
            Some("InvalidParameterValueException"),
            Some("The role defined for the function cannot be assumed by Lambda.")
        ));
        assert!(!is_propagation_error(
            Some("AccessDeniedException"),
            Some("User is not authorized to perform: states:CreateStateMachine")
        ));
        assert!(!is_propagation_error(
            Some("ThrottlingException"),
            Some("Rate exceeded")
        ));
    }

    #[test]
    fn backoff_is_bounded() {
        let b = Backoff {
            attempts: 10,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        assert_eq!(b.delay(0), Duration::from_millis(100));
        assert_eq!(b.delay(3), Duration::from_millis(800));
        assert_eq!(b.delay(9), Duration::from_millis(1000));
    }

    #[test]
    fn failures_are_classified_once() {
        assert_eq!(classify(None, Some(false), false), Failure::Unreachable);
        assert_eq!(classify(None, Some(true), false), Failure::TimedOut);
        assert_eq!(classify(None, None, true), Failure::NotAws);
        assert_eq!(classify(None, None, false), Failure::NotAws);
        assert_eq!(
            classify(Some("InvalidClientTokenId"), None, false),
            Failure::BadCredentials
        );
        assert_eq!(
            classify(Some("ExpiredToken"), None, false),
            Failure::BadCredentials
        );
        assert_eq!(
            classify(Some("AccessDenied"), None, false),
            Failure::AccessDenied
        );
        assert_eq!(
            classify(Some("AccessDeniedException"), None, false),
            Failure::AccessDenied
        );
        assert_eq!(
            classify(Some("ThrottlingException"), None, false),
            Failure::Throttled
        );
        assert_eq!(classify(Some("SlowDown"), None, false), Failure::Throttled);
        assert_eq!(
            classify(Some("EntityAlreadyExists"), None, false),
            Failure::Service
        );
    }

    #[test]
    fn services_are_named_from_their_error_types() {
        assert_eq!(
            service_of::<aws_sdk_sns::operation::create_topic::CreateTopicError>(),
            "sns"
        );
        assert_eq!(
            service_name(service_of::<
                aws_sdk_sfn::operation::start_execution::StartExecutionError,
            >()),
            "Step Functions"
        );
        assert_eq!(action_prefix("sfn"), "states");
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_of("us-east-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }
}
