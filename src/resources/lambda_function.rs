//! `lambda_function`: a function packaged as a zip (built here with pip) or as a container
//! image (built with the local engine, pushed to ECR). `source = { dir = "functions/x" }`
//! becomes the folder and its content hash, so a code change is one UpdateFunctionCode and
//! an unchanged function is neither rebuilt nor uploaded. Every create or update waits until
//! the function is active, so what invokes it next finds it ready. Destroy also removes the
//! log group Lambda creates on its own.

use super::{Kind, Notes, Outputs, Tags, arn_and_name, logs_log_group, sync_tags};
use crate::aws::{Ctx, api_error, retry_propagation};
use crate::error::{Error, Result};
use crate::package;
use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, PackageType, Runtime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Relative to the project folder.
    pub dir: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    pub role_arn: String,
    /// `zip` or `image`
    #[serde(default = "zip")]
    pub package: String,
    #[serde(default = "python")]
    pub runtime: String,
    #[serde(default = "handler")]
    pub handler: String,
    /// `arm64` or `x86_64`
    #[serde(default = "arm64")]
    pub architecture: String,
    #[serde(default = "three")]
    pub timeout: i32,
    #[serde(default = "mb128")]
    pub memory_size: i32,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    pub source: Source,
    /// Where `package = "image"` pushes (an ECR repository URL).
    #[serde(default)]
    pub image_repository_url: String,
    #[serde(default)]
    pub tags: Tags,
}

fn zip() -> String {
    "zip".into()
}
fn python() -> String {
    "python3.12".into()
}
fn handler() -> String {
    "main.lambda_handler".into()
}
fn arm64() -> String {
    "arm64".into()
}
fn three() -> i32 {
    3
}
fn mb128() -> i32 {
    128
}

pub struct Function;

enum Code {
    Zip(Vec<u8>),
    Image(String),
}

async fn build(ctx: &Ctx, a: &Attrs) -> Result<Code> {
    let dir = ctx.project_root.join(&a.source.dir);
    match a.package.as_str() {
        "zip" => Ok(Code::Zip(
            package::build_zip(ctx, &dir, &a.source.sha256, &a.runtime, &a.architecture).await?,
        )),
        "image" => {
            if a.image_repository_url.is_empty() {
                return Err(Error::user(format!(
                    "function {}: package = \"image\" needs image_repository_url",
                    a.name
                )));
            }
            Ok(Code::Image(
                package::build_image(
                    ctx,
                    &dir,
                    &a.source.sha256,
                    &a.architecture,
                    &a.image_repository_url,
                )
                .await?,
            ))
        }
        other => Err(Error::user(format!(
            "function {}: package must be zip or image, not {other:?}",
            a.name
        ))),
    }
}

fn function_code(code: Code) -> FunctionCode {
    match code {
        Code::Zip(bytes) => FunctionCode::builder().zip_file(Blob::new(bytes)).build(),
        Code::Image(uri) => FunctionCode::builder().image_uri(uri).build(),
    }
}

/// Whether the answer to a create or an update already says the function is ready (active, no
/// update in progress): then there is nothing to wait for (an emulator answers so; AWS answers
/// Pending / InProgress and the waiters poll).
fn ready_now(
    state: Option<&aws_sdk_lambda::types::State>,
    update: Option<&aws_sdk_lambda::types::LastUpdateStatus>,
) -> bool {
    use aws_sdk_lambda::types::{LastUpdateStatus, State};
    matches!(state, Some(State::Active))
        && matches!(update, None | Some(LastUpdateStatus::Successful))
}

/// Waits (bounded, by the SDK's waiters) until the function is active and no update is in
/// progress; when it does not get there, says why.
async fn wait_ready(ctx: &Ctx, name: &str) -> Result<()> {
    use aws_sdk_lambda::client::Waiters;
    let max = std::time::Duration::from_secs(300);
    let lambda = &ctx.lambda;
    let active = lambda
        .wait_until_function_active_v2()
        .function_name(name)
        .wait(max)
        .await
        .is_ok();
    if active
        && lambda
            .wait_until_function_updated_v2()
            .function_name(name)
            .wait(max)
            .await
            .is_ok()
    {
        return Ok(());
    }
    let c = lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(|e| api_error("GetFunctionConfiguration", &e))?;
    let why = c
        .state_reason()
        .or(c.last_update_status_reason())
        .unwrap_or("no reason given");
    let state = c.state().map(|s| s.as_str()).unwrap_or("unknown");
    Err(Error::aws(format!(
        "function {name} did not become ready (state {state}): {why}"
    )))
}

fn environment(a: &Attrs) -> Environment {
    Environment::builder()
        .set_variables(Some(a.environment.clone().into_iter().collect()))
        .build()
}

/// An unqualified function ARN, as CreateFunction answers it.
fn function_arn(ctx: &Ctx, name: &str) -> String {
    super::regional_arn(ctx, "lambda", &format!("function:{name}"))
}

#[async_trait]
impl Kind for Function {
    type Attrs = Attrs;
    const NAME: &'static str = "lambda_function";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name", "package"];

    fn arn_of(ctx: &Ctx, name: &str) -> Option<String> {
        Some(function_arn(ctx, name))
    }

    async fn preflight(ctx: &Ctx, a: &Attrs) -> Result<()> {
        let dir = ctx.project_root.join(&a.source.dir);
        match a.package.as_str() {
            // Builds now (cached by content hash): the create or update then only uploads.
            "zip" => package::build_zip(ctx, &dir, &a.source.sha256, &a.runtime, &a.architecture)
                .await
                .map(|_| ()),
            "image" => package::probe_engine().await,
            other => Err(Error::user(format!(
                "function {}: package must be zip or image, not {other:?}",
                a.name
            ))),
        }
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        // one that exists already is answered ResourceConflictException (below): nothing is
        // asked before the create, on the way every create takes
        let zip = a.package == "zip";
        let req = ctx
            .lambda
            .create_function()
            .function_name(&a.name)
            .role(&a.role_arn)
            .architectures(Architecture::from(a.architecture.as_str()))
            .timeout(a.timeout)
            .memory_size(a.memory_size)
            .environment(environment(a))
            .set_tags(Some(a.tags.clone().into_iter().collect()))
            .package_type(if zip {
                PackageType::Zip
            } else {
                PackageType::Image
            })
            .code(function_code(build(ctx, a).await?));
        let req = if zip {
            req.runtime(Runtime::from(a.runtime.as_str()))
                .handler(&a.handler)
        } else {
            req
        };
        let o = match retry_propagation(ctx.propagation, || req.clone().send()).await {
            Ok(o) => o,
            // the SDK's retry of a create whose answer was lost: the first one made it
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_conflict_exception()) =>
            {
                return Err(Error::already_exists(format!(
                    "Lambda function {} already exists",
                    a.name
                )));
            }
            Err(e) => return Err(api_error("CreateFunction", &e)),
        };
        if !ready_now(o.state(), o.last_update_status()) {
            wait_ready(ctx, &a.name).await?;
        }
        Ok(arn_and_name(o.function_arn().unwrap_or_default(), &a.name))
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let f = match ctx
            .lambda
            .get_function()
            .function_name(&a.name)
            .send()
            .await
        {
            Ok(f) => f,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("GetFunction", &e)),
        };
        let c = f
            .configuration()
            .ok_or_else(|| Error::aws("GetFunction returned no configuration"))?;
        let tags = f.tags().map(|t| t.clone().into_iter().collect());
        let live = live_attrs(a, c, tags.unwrap_or_default());
        Ok(Some((
            live,
            arn_and_name(c.function_arn().unwrap_or_default(), &a.name),
        )))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, known: &Outputs) -> Result<Outputs> {
        if live.source != want.source
            || live.architecture != want.architecture
            || live.image_repository_url != want.image_repository_url
        {
            update_code(ctx, want).await?;
        }
        let config_changed = live.role_arn != want.role_arn
            || live.runtime != want.runtime
            || live.handler != want.handler
            || live.timeout != want.timeout
            || live.memory_size != want.memory_size
            || live.environment != want.environment;
        if config_changed {
            update_configuration(ctx, want).await?;
        }
        let arn = match known.get("arn").and_then(|v| v.as_str()) {
            Some(a) => a.to_string(),
            None => function_arn(ctx, &want.name),
        };
        sync_tags(
            &live.tags,
            &want.tags,
            ("TagResource", |set| {
                ctx.lambda
                    .tag_resource()
                    .resource(&arn)
                    .set_tags(Some(set.into_iter().collect()))
                    .send()
            }),
            ("UntagResource", |remove| {
                ctx.lambda
                    .untag_resource()
                    .resource(&arn)
                    .set_tag_keys(Some(remove))
                    .send()
            }),
        )
        .await?;
        Ok(arn_and_name(&arn, &want.name))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        match ctx
            .lambda
            .delete_function()
            .function_name(&a.name)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(api_error("DeleteFunction", &e)),
        }
        let group = format!("/aws/lambda/{}", a.name);
        Ok(if logs_log_group::delete(ctx, &group).await? {
            vec![format!("removed the log group Lambda writes to, {group}")]
        } else {
            vec![]
        })
    }
}

/// What GetFunction says of a function, as attributes (for an image, the runtime and handler
/// are the manifest's: an image has none of its own; the code is identified by our source
/// hash, recorded with the attributes).
fn live_attrs(
    a: &Attrs,
    c: &aws_sdk_lambda::types::FunctionConfiguration,
    tags: BTreeMap<String, String>,
) -> Attrs {
    let image = c.package_type() == Some(&PackageType::Image);
    Attrs {
        name: a.name.clone(),
        role_arn: c.role().unwrap_or_default().to_string(),
        package: if image { "image".into() } else { "zip".into() },
        runtime: if image {
            a.runtime.clone()
        } else {
            c.runtime()
                .map(|r| r.as_str().to_string())
                .unwrap_or_default()
        },
        handler: if image {
            a.handler.clone()
        } else {
            c.handler().unwrap_or_default().to_string()
        },
        architecture: c
            .architectures()
            .first()
            .map(|r| r.as_str().to_string())
            .unwrap_or_else(|| "x86_64".into()),
        timeout: c.timeout().unwrap_or(3),
        memory_size: c.memory_size().unwrap_or(128),
        environment: c
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.clone().into_iter().collect())
            .unwrap_or_default(),
        // The code is identified by our source hash, recorded with the attributes.
        source: a.source.clone(),
        image_repository_url: a.image_repository_url.clone(),
        tags,
    }
}

/// New code (a zip, or an image pushed anew), then waits until the function is ready.
async fn update_code(ctx: &Ctx, want: &Attrs) -> Result<()> {
    let req = match build(ctx, want).await? {
        Code::Zip(bytes) => ctx
            .lambda
            .update_function_code()
            .function_name(&want.name)
            .zip_file(Blob::new(bytes)),
        Code::Image(uri) => ctx
            .lambda
            .update_function_code()
            .function_name(&want.name)
            .image_uri(uri),
    };
    let o = req
        .architectures(Architecture::from(want.architecture.as_str()))
        .send()
        .await
        .map_err(|e| api_error("UpdateFunctionCode", &e))?;
    if !ready_now(o.state(), o.last_update_status()) {
        wait_ready(ctx, &want.name).await?;
    }
    Ok(())
}

/// New configuration (role, runtime, handler, limits, environment), then waits until ready.
async fn update_configuration(ctx: &Ctx, want: &Attrs) -> Result<()> {
    let mut req = ctx
        .lambda
        .update_function_configuration()
        .function_name(&want.name)
        .role(&want.role_arn)
        .timeout(want.timeout)
        .memory_size(want.memory_size)
        .environment(environment(want));
    if want.package == "zip" {
        req = req
            .runtime(Runtime::from(want.runtime.as_str()))
            .handler(&want.handler);
    }
    let o = retry_propagation(ctx.propagation, || req.clone().send())
        .await
        .map_err(|e| api_error("UpdateFunctionConfiguration", &e))?;
    if !ready_now(o.state(), o.last_update_status()) {
        wait_ready(ctx, &want.name).await?;
    }
    Ok(())
}
