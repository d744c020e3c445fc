//! `sns_topic`: a standard SNS topic.

use super::{Kind, Notes, Outputs, Tags, arn_and_name, sync_tags};
use crate::aws::{Ctx, api_error};
use crate::error::Result;
use async_trait::async_trait;
use aws_sdk_sns::types::Tag;

pub type Attrs = super::NameAndTags;

pub struct SnsTopic;

fn arn(ctx: &Ctx, name: &str) -> String {
    super::regional_arn(ctx, "sns", name)
}

fn tags(t: &Tags) -> Vec<Tag> {
    sdk_tags!(Tag, t)
}

#[async_trait]
impl Kind for SnsTopic {
    type Attrs = Attrs;
    const NAME: &'static str = "sns_topic";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name"];

    fn arn_of(ctx: &Ctx, name: &str) -> Option<String> {
        Some(arn(ctx, name))
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
        let tags = listed_tags!(ctx.sns, &arn);
        let live = Attrs {
            name: a.name.clone(),
            tags,
        };
        Ok(Some((live, arn_and_name(&arn, &a.name))))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        let arn = arn(ctx, &want.name);
        sync_arn_tags!(ctx.sns, &arn, &live.tags, &want.tags, |set| tags(&set)).await?;
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
