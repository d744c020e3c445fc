//! `datasync_location_s3` and `datasync_task`. Neither has a unique name in DataSync: a
//! location is found by its `s3://bucket/subdirectory` URI (the bucket is the stack's own),
//! a task by its name. Tags are not managed (the local emulator cannot list them back).

use super::{Kind, Notes, Outputs, arn_and_name, s};
use crate::aws::{Backoff, Ctx, api_error, create_once, retry_propagation};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_sdk_datasync::types::{Gid, Options, PosixPermissions, S3Config, Uid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocationAttrs {
    pub bucket_arn: String,
    #[serde(default)]
    pub subdirectory: String,
    pub access_role_arn: String,
}

fn bucket_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

fn uri(a: &LocationAttrs) -> String {
    let sub = a.subdirectory.trim_matches('/');
    if sub.is_empty() {
        format!("s3://{}", bucket_of(&a.bucket_arn))
    } else {
        format!("s3://{}/{sub}", bucket_of(&a.bucket_arn))
    }
}

async fn find_location(ctx: &Ctx, a: &LocationAttrs) -> Result<Option<String>> {
    let want = uri(a);
    let mut token = None;
    loop {
        let page = ctx
            .datasync
            .list_locations()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| api_error("ListLocations", &e))?;
        if let Some(l) = page
            .locations()
            .iter()
            .find(|l| l.location_uri().map(|u| u.trim_end_matches('/')) == Some(want.as_str()))
        {
            return Ok(l.location_arn().map(str::to_string));
        }
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(None),
        }
    }
}

/// A call sent once: DataSync's creates are not idempotent (see `create_once`).
fn once() -> aws_sdk_datasync::config::Builder {
    aws_sdk_datasync::config::Builder::default().retry_config(RetryConfig::disabled())
}

fn known_arn(known: &Outputs) -> Option<String> {
    known
        .get("arn")
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

pub struct LocationS3;

#[async_trait]
impl Kind for LocationS3 {
    type Attrs = LocationAttrs;
    const NAME: &'static str = "datasync_location_s3";
    const TAGGABLE: bool = false;
    const REPLACE_ON: &'static [&'static str] = &["bucket_arn", "subdirectory", "access_role_arn"];
    const OUTPUTS: &'static [&'static str] = &["arn"];

    fn display_name(a: &LocationAttrs) -> String {
        uri(a)
    }

    async fn create(ctx: &Ctx, a: &LocationAttrs) -> Result<Outputs> {
        // Locations have no unique name: one already pointing at our bucket is ours.
        if find_location(ctx, a).await?.is_some() {
            return Err(Error::already_exists(format!(
                "a DataSync location for {} already exists",
                uri(a)
            )));
        }
        let config = S3Config::builder()
            .bucket_access_role_arn(&a.access_role_arn)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let arn = create_once(
            Backoff {
                attempts: 5,
                ..ctx.propagation
            },
            || async {
                let o = retry_propagation(ctx.propagation, || {
                    ctx.datasync
                        .create_location_s3()
                        .s3_bucket_arn(&a.bucket_arn)
                        .subdirectory(&a.subdirectory)
                        .s3_config(config.clone())
                        .customize()
                        .config_override(once())
                        .send()
                })
                .await?;
                Ok(o.location_arn().unwrap_or_default().to_string())
            },
            || find_location(ctx, a),
            |e| api_error("CreateLocationS3", &e),
        )
        .await?;
        Ok(Outputs::from([("arn".into(), s(&arn))]))
    }

    async fn read(
        ctx: &Ctx,
        a: &LocationAttrs,
        known: &Outputs,
    ) -> Result<Option<(LocationAttrs, Outputs)>> {
        let Some(arn) = (match known_arn(known) {
            Some(arn) => Some(arn),
            None => find_location(ctx, a).await?,
        }) else {
            return Ok(None);
        };
        let d = match ctx
            .datasync
            .describe_location_s3()
            .location_arn(&arn)
            .send()
            .await
        {
            Ok(d) => d,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_request_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("DescribeLocationS3", &e)),
        };
        let location = d
            .location_uri()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        let rest = location.strip_prefix("s3://").unwrap_or(&location);
        let (bucket, sub) = rest.split_once('/').unwrap_or((rest, ""));
        let live = LocationAttrs {
            bucket_arn: format!("arn:{}:s3:::{bucket}", ctx.partition),
            subdirectory: if sub.is_empty() {
                a.subdirectory.clone()
            } else {
                sub.to_string()
            },
            access_role_arn: d
                .s3_config()
                .map(|c| c.bucket_access_role_arn().to_string())
                .unwrap_or_default(),
        };
        Ok(Some((live, Outputs::from([("arn".into(), s(&arn))]))))
    }

    async fn update(
        ctx: &Ctx,
        _live: &LocationAttrs,
        want: &LocationAttrs,
        _known: &Outputs,
    ) -> Result<Outputs> {
        Self::create(ctx, want).await
    }

    async fn delete(ctx: &Ctx, a: &LocationAttrs, known: &Outputs) -> Result<Notes> {
        let arn = match known_arn(known) {
            Some(arn) => arn,
            None => match find_location(ctx, a).await? {
                Some(arn) => arn,
                None => return Ok(vec![]),
            },
        };
        match ctx
            .datasync
            .delete_location()
            .location_arn(&arn)
            .send()
            .await
        {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_request_exception()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("DeleteLocation", &e)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct TaskOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posix_permissions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

impl TaskOptions {
    fn sdk(&self) -> Options {
        Options::builder()
            .set_posix_permissions(
                self.posix_permissions
                    .as_deref()
                    .map(PosixPermissions::from),
            )
            .set_uid(self.uid.as_deref().map(Uid::from))
            .set_gid(self.gid.as_deref().map(Gid::from))
            .build()
    }
    fn from_sdk(o: &Options) -> Self {
        TaskOptions {
            posix_permissions: o.posix_permissions().map(|p| p.as_str().to_string()),
            uid: o.uid().map(|p| p.as_str().to_string()),
            gid: o.gid().map(|p| p.as_str().to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskAttrs {
    pub name: String,
    pub source_location_arn: String,
    pub destination_location_arn: String,
    #[serde(default)]
    pub options: TaskOptions,
}

async fn find_task(ctx: &Ctx, name: &str) -> Result<Option<String>> {
    let mut token = None;
    loop {
        let page = ctx
            .datasync
            .list_tasks()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| api_error("ListTasks", &e))?;
        if let Some(t) = page.tasks().iter().find(|t| t.name() == Some(name)) {
            return Ok(t.task_arn().map(str::to_string));
        }
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(None),
        }
    }
}

pub struct Task;

#[async_trait]
impl Kind for Task {
    type Attrs = TaskAttrs;
    const NAME: &'static str = "datasync_task";
    const TAGGABLE: bool = false;
    const REPLACE_ON: &'static [&'static str] =
        &["source_location_arn", "destination_location_arn"];

    fn display_name(a: &TaskAttrs) -> String {
        a.name.clone()
    }

    async fn create(ctx: &Ctx, a: &TaskAttrs) -> Result<Outputs> {
        if find_task(ctx, &a.name).await?.is_some() {
            return Err(Error::already_exists(format!(
                "DataSync task {} already exists",
                a.name
            )));
        }
        let arn = create_once(
            Backoff {
                attempts: 5,
                ..ctx.propagation
            },
            || async {
                let o = ctx
                    .datasync
                    .create_task()
                    .name(&a.name)
                    .source_location_arn(&a.source_location_arn)
                    .destination_location_arn(&a.destination_location_arn)
                    .options(a.options.sdk())
                    .customize()
                    .config_override(once())
                    .send()
                    .await?;
                Ok(o.task_arn().unwrap_or_default().to_string())
            },
            || find_task(ctx, &a.name),
            |e| api_error("CreateTask", &e),
        )
        .await?;
        Ok(arn_and_name(&arn, &a.name))
    }

    async fn read(
        ctx: &Ctx,
        a: &TaskAttrs,
        known: &Outputs,
    ) -> Result<Option<(TaskAttrs, Outputs)>> {
        let Some(arn) = (match known_arn(known) {
            Some(arn) => Some(arn),
            None => find_task(ctx, &a.name).await?,
        }) else {
            return Ok(None);
        };
        let d = match ctx.datasync.describe_task().task_arn(&arn).send().await {
            Ok(d) => d,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_request_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("DescribeTask", &e)),
        };
        let live = TaskAttrs {
            name: d.name().unwrap_or_default().to_string(),
            source_location_arn: d.source_location_arn().unwrap_or_default().to_string(),
            destination_location_arn: d.destination_location_arn().unwrap_or_default().to_string(),
            options: d.options().map(TaskOptions::from_sdk).unwrap_or_default(),
        };
        Ok(Some((live, arn_and_name(&arn, &a.name))))
    }

    async fn update(
        ctx: &Ctx,
        _live: &TaskAttrs,
        want: &TaskAttrs,
        known: &Outputs,
    ) -> Result<Outputs> {
        let arn = match known_arn(known) {
            Some(a) => a,
            None => find_task(ctx, &want.name)
                .await?
                .ok_or_else(|| Error::aws(format!("DataSync task {} vanished", want.name)))?,
        };
        ctx.datasync
            .update_task()
            .task_arn(&arn)
            .name(&want.name)
            .options(want.options.sdk())
            .send()
            .await
            .map_err(|e| api_error("UpdateTask", &e))?;
        Ok(arn_and_name(&arn, &want.name))
    }

    async fn delete(ctx: &Ctx, a: &TaskAttrs, known: &Outputs) -> Result<Notes> {
        let arn = match known_arn(known) {
            Some(arn) => arn,
            None => match find_task(ctx, &a.name).await? {
                Some(arn) => arn,
                None => return Ok(vec![]),
            },
        };
        match ctx.datasync.delete_task().task_arn(&arn).send().await {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_request_exception()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("DeleteTask", &e)),
        }
    }
}
