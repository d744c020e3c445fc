//! `sns_topic`: a standard SNS topic.

use super::{Kind, Notes, Outputs, Tags, arn_and_name, sync_tags};
use crate::aws::{Ctx, api_error};
use crate::error::Result;
use async_trait::async_trait;
use aws_sdk_sns::types::Tag;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    #[serde(default)]
    pub tags: Tags,
}

pub struct SnsTopic;

fn arn(ctx: &Ctx, name: &str) -> String {
    format!(
        "arn:{}:sns:{}:{}:{}",
        ctx.partition, ctx.region, ctx.account_id, name
    )
}

fn tags(t: &Tags) -> Vec<Tag> {
    t.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value set")
        })
        .collect()
}

#[async_trait]
impl Kind for SnsTopic {
    type Attrs = Attrs;
    const NAME: &'static str = "sns_topic";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name"];
    const OUTPUTS: &'static [&'static str] = &["arn", "name"];

    fn display_name(a: &Attrs) -> String {
        a.name.clone()
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        // CreateTopic answers with the existing topic when the name is taken: look first so a
        // topic that is not ours is reported rather than silently shared.
        if Self::read(ctx, a, &Outputs::new()).await?.is_some() {
            return Err(crate::error::Error::already_exists(format!(
                "SNS topic {} already exists",
                a.name
            )));
        }
        let o = ctx
            .sns
            .create_topic()
            .name(&a.name)
            .set_tags(Some(tags(&a.tags)))
            .send()
            .await
            .map_err(|e| api_error("CreateTopic", &e))?;
        Ok(arn_and_name(o.topic_arn().unwrap_or_default(), &a.name))
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let arn = arn(ctx, &a.name);
        match ctx.sns.get_topic_attributes().topic_arn(&arn).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("GetTopicAttributes", &e)),
        }
        let t = ctx
            .sns
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(|e| api_error("ListTagsForResource", &e))?;
        let live = Attrs {
            name: a.name.clone(),
            tags: t
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        };
        Ok(Some((live, arn_and_name(&arn, &a.name))))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        let arn = arn(ctx, &want.name);
        sync_tags(
            &live.tags,
            &want.tags,
            ("TagResource", |set| {
                ctx.sns
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags(&set)))
                    .send()
            }),
            ("UntagResource", |remove| {
                ctx.sns
                    .untag_resource()
                    .resource_arn(&arn)
                    .set_tag_keys(Some(remove))
                    .send()
            }),
        )
        .await?;
        Ok(arn_and_name(&arn, &want.name))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        // DeleteTopic succeeds on a missing topic.
        ctx.sns
            .delete_topic()
            .topic_arn(arn(ctx, &a.name))
            .send()
            .await
            .map_err(|e| api_error("DeleteTopic", &e))?;
        Ok(vec![])
    }
}
