//! `logs_log_group`: a CloudWatch Logs log group. Its `arn` output has no `:*` suffix (add it in
//! policies that grant log-stream actions).

use super::{Kind, Notes, Outputs, s, sync_tags};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;

pub type Attrs = super::NameAndTags;

pub struct LogGroup;

fn arn(ctx: &Ctx, name: &str) -> String {
    super::regional_arn(ctx, "logs", &format!("log-group:{name}"))
}

fn outputs(ctx: &Ctx, name: &str) -> Outputs {
    Outputs::from([("arn".into(), s(&arn(ctx, name))), ("name".into(), s(name))])
}

pub async fn exists(ctx: &Ctx, name: &str) -> Result<bool> {
    let o = ctx
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|e| api_error("DescribeLogGroups", &e))?;
    Ok(o.log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some(name)))
}

pub async fn delete(ctx: &Ctx, name: &str) -> Result<bool> {
    match ctx
        .logs
        .delete_log_group()
        .log_group_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(api_error("DeleteLogGroup", &e)),
    }
}

#[async_trait]
impl Kind for LogGroup {
    type Attrs = Attrs;
    const NAME: &'static str = "logs_log_group";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name"];

    fn arn_of(ctx: &Ctx, name: &str) -> Option<String> {
        Some(arn(ctx, name))
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        match ctx
            .logs
            .create_log_group()
            .log_group_name(&a.name)
            .set_tags(Some(a.tags.clone().into_iter().collect()))
            .send()
            .await
        {
            Ok(_) => Ok(outputs(ctx, &a.name)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) =>
            {
                Err(Error::already_exists(format!(
                    "log group {} already exists",
                    a.name
                )))
            }
            Err(e) => Err(api_error("CreateLogGroup", &e)),
        }
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        if !exists(ctx, &a.name).await? {
            return Ok(None);
        }
        let t = ctx
            .logs
            .list_tags_for_resource()
            .resource_arn(arn(ctx, &a.name))
            .send()
            .await
            .map_err(|e| api_error("ListTagsForResource", &e))?;
        let tags = t
            .tags()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        Ok(Some((
            Attrs {
                name: a.name.clone(),
                tags,
            },
            outputs(ctx, &a.name),
        )))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        sync_tags(
            &live.tags,
            &want.tags,
            ("TagResource", |set| {
                ctx.logs
                    .tag_resource()
                    .resource_arn(arn(ctx, &want.name))
                    .set_tags(Some(set.into_iter().collect()))
                    .send()
            }),
            ("UntagResource", |remove| {
                ctx.logs
                    .untag_resource()
                    .resource_arn(arn(ctx, &want.name))
                    .set_tag_keys(Some(remove))
                    .send()
            }),
        )
        .await?;
        Ok(outputs(ctx, &want.name))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        delete(ctx, &a.name).await?;
        Ok(vec![])
    }
}
