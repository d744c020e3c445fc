//! `sqs_queue` and `sqs_queue_policy` (the policy is its own resource, so it can name the
//! queue's ARN and the bucket that sends to it without a cycle).

use super::{Kind, Notes, Outputs, Tags, s, sync_tags};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueAttrs {
    pub name: String,
    /// Seconds a received message stays hidden from other consumers (AWS's default: 30).
    #[serde(default = "default_visibility")]
    pub visibility_timeout_seconds: u32,
    /// Seconds a message is kept (AWS's default: 4 days).
    #[serde(default = "default_retention")]
    pub message_retention_seconds: u32,
    /// Seconds every message is delayed (AWS's default: 0).
    #[serde(default)]
    pub delay_seconds: u32,
    /// Long polling: seconds a receive waits for a message (AWS's default: 0).
    #[serde(default)]
    pub receive_wait_time_seconds: u32,
    #[serde(default)]
    pub tags: Tags,
}

// Attributes not written in the manifest are managed at AWS's defaults, so that a change made
// outside deploy shows in the plan instead of being ignored.
fn default_visibility() -> u32 {
    30
}
fn default_retention() -> u32 {
    345_600
}

impl QueueAttrs {
    fn attributes(&self) -> Vec<(QueueAttributeName, String)> {
        vec![
            (
                QueueAttributeName::VisibilityTimeout,
                self.visibility_timeout_seconds.to_string(),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                self.message_retention_seconds.to_string(),
            ),
            (
                QueueAttributeName::DelaySeconds,
                self.delay_seconds.to_string(),
            ),
            (
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                self.receive_wait_time_seconds.to_string(),
            ),
        ]
    }
}

pub struct Queue;

async fn url_of(ctx: &Ctx, name: &str) -> Result<Option<String>> {
    match ctx.sqs.get_queue_url().queue_name(name).send().await {
        Ok(o) => Ok(o.queue_url().map(str::to_string)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist()) =>
        {
            Ok(None)
        }
        Err(e) => Err(api_error("GetQueueUrl", &e)),
    }
}

fn queue_arn(ctx: &Ctx, name: &str) -> String {
    super::regional_arn(ctx, "sqs", name)
}

fn queue_outputs(ctx: &Ctx, url: &str, name: &str) -> Outputs {
    Outputs::from([
        ("url".into(), s(url)),
        ("arn".into(), s(&queue_arn(ctx, name))),
        ("name".into(), s(name)),
    ])
}

#[async_trait]
impl Kind for Queue {
    type Attrs = QueueAttrs;
    const NAME: &'static str = "sqs_queue";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name"];
    const OUTPUTS: &'static [&'static str] = &["url", "arn", "name"];

    fn arn_of(ctx: &Ctx, name: &str) -> Option<String> {
        Some(queue_arn(ctx, name))
    }

    fn display_name(a: &QueueAttrs) -> String {
        a.name.clone()
    }

    async fn create(ctx: &Ctx, a: &QueueAttrs) -> Result<Outputs> {
        // CreateQueue answers with an existing queue of the same name and attributes.
        if url_of(ctx, &a.name).await?.is_some() {
            return Err(Error::already_exists(format!(
                "SQS queue {} already exists",
                a.name
            )));
        }
        let o = ctx
            .sqs
            .create_queue()
            .queue_name(&a.name)
            .set_attributes(Some(a.attributes().into_iter().collect()))
            .set_tags(Some(a.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| api_error("CreateQueue", &e))?;
        Ok(queue_outputs(
            ctx,
            o.queue_url().unwrap_or_default(),
            &a.name,
        ))
    }

    async fn read(
        ctx: &Ctx,
        a: &QueueAttrs,
        _known: &Outputs,
    ) -> Result<Option<(QueueAttrs, Outputs)>> {
        let Some(url) = url_of(ctx, &a.name).await? else {
            return Ok(None);
        };
        let t = ctx
            .sqs
            .list_queue_tags()
            .queue_url(&url)
            .send()
            .await
            .map_err(|e| api_error("ListQueueTags", &e))?;
        let tags = t
            .tags()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        let got = ctx
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .set_attribute_names(Some(a.attributes().into_iter().map(|(k, _)| k).collect()))
            .send()
            .await
            .map_err(|e| api_error("GetQueueAttributes", &e))?;
        let got = got.attributes().cloned().unwrap_or_default();
        let num = |k: QueueAttributeName, want: u32| {
            got.get(&k).and_then(|v| v.parse().ok()).unwrap_or(want)
        };
        let live = QueueAttrs {
            name: a.name.clone(),
            visibility_timeout_seconds: num(
                QueueAttributeName::VisibilityTimeout,
                a.visibility_timeout_seconds,
            ),
            message_retention_seconds: num(
                QueueAttributeName::MessageRetentionPeriod,
                a.message_retention_seconds,
            ),
            delay_seconds: num(QueueAttributeName::DelaySeconds, a.delay_seconds),
            receive_wait_time_seconds: num(
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                a.receive_wait_time_seconds,
            ),
            tags,
        };
        Ok(Some((live, queue_outputs(ctx, &url, &a.name))))
    }

    async fn update(
        ctx: &Ctx,
        live: &QueueAttrs,
        want: &QueueAttrs,
        _known: &Outputs,
    ) -> Result<Outputs> {
        let url = url_of(ctx, &want.name)
            .await?
            .ok_or_else(|| Error::aws(format!("queue {} vanished", want.name)))?;
        let changed: Vec<_> = want
            .attributes()
            .into_iter()
            .filter(|a| !live.attributes().contains(a))
            .collect();
        if !changed.is_empty() {
            ctx.sqs
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(changed.into_iter().collect()))
                .send()
                .await
                .map_err(|e| api_error("SetQueueAttributes", &e))?;
        }
        sync_tags(
            &live.tags,
            &want.tags,
            ("TagQueue", |set| {
                ctx.sqs
                    .tag_queue()
                    .queue_url(&url)
                    .set_tags(Some(set.into_iter().collect()))
                    .send()
            }),
            ("UntagQueue", |remove| {
                ctx.sqs
                    .untag_queue()
                    .queue_url(&url)
                    .set_tag_keys(Some(remove))
                    .send()
            }),
        )
        .await?;
        Ok(queue_outputs(ctx, &url, &want.name))
    }

    async fn delete(ctx: &Ctx, a: &QueueAttrs, _known: &Outputs) -> Result<Notes> {
        let Some(url) = url_of(ctx, &a.name).await? else {
            return Ok(vec![]);
        };
        match ctx.sqs.delete_queue().queue_url(&url).send().await {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_queue_does_not_exist()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("DeleteQueue", &e)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyAttrs {
    pub queue_url: String,
    /// The policy document's `Id`.
    #[serde(default)]
    pub id: String,
    pub statement: Vec<Value>,
}

impl PolicyAttrs {
    fn document(&self) -> Value {
        let mut d = json!({"Version": "2012-10-17", "Statement": self.statement});
        if !self.id.is_empty() {
            d["Id"] = json!(self.id);
        }
        d
    }
}

pub struct QueuePolicy;

async fn set_policy(ctx: &Ctx, url: &str, policy: &str) -> Result<()> {
    ctx.sqs
        .set_queue_attributes()
        .queue_url(url)
        .attributes(QueueAttributeName::Policy, policy)
        .send()
        .await
        .map_err(|e| api_error("SetQueueAttributes", &e))?;
    Ok(())
}

#[async_trait]
impl Kind for QueuePolicy {
    type Attrs = PolicyAttrs;
    const NAME: &'static str = "sqs_queue_policy";
    const TAGGABLE: bool = false;
    const REPLACE_ON: &'static [&'static str] = &["queue_url"];
    const OUTPUTS: &'static [&'static str] = &["queue_url"];

    fn display_name(a: &PolicyAttrs) -> String {
        a.queue_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    async fn create(ctx: &Ctx, a: &PolicyAttrs) -> Result<Outputs> {
        set_policy(ctx, &a.queue_url, &a.document().to_string()).await?;
        Ok(Outputs::from([("queue_url".into(), s(&a.queue_url))]))
    }

    async fn read(
        ctx: &Ctx,
        a: &PolicyAttrs,
        _known: &Outputs,
    ) -> Result<Option<(PolicyAttrs, Outputs)>> {
        let o = match ctx
            .sqs
            .get_queue_attributes()
            .queue_url(&a.queue_url)
            .attribute_names(QueueAttributeName::Policy)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_queue_does_not_exist()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("GetQueueAttributes", &e)),
        };
        let Some(text) = o
            .attributes()
            .and_then(|m| m.get(&QueueAttributeName::Policy))
            .filter(|t| !t.is_empty())
        else {
            return Ok(None);
        };
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| Error::aws(format!("unreadable queue policy: {e}")))?;
        let statement = match &doc["Statement"] {
            Value::Array(a) => a.clone(),
            one => vec![one.clone()],
        };
        let live = PolicyAttrs {
            queue_url: a.queue_url.clone(),
            id: doc["Id"].as_str().unwrap_or_default().to_string(),
            statement,
        };
        Ok(Some((
            live,
            Outputs::from([("queue_url".into(), s(&a.queue_url))]),
        )))
    }

    async fn update(
        ctx: &Ctx,
        _live: &PolicyAttrs,
        want: &PolicyAttrs,
        _known: &Outputs,
    ) -> Result<Outputs> {
        Self::create(ctx, want).await
    }

    async fn delete(ctx: &Ctx, a: &PolicyAttrs, _known: &Outputs) -> Result<Notes> {
        match ctx
            .sqs
            .set_queue_attributes()
            .queue_url(&a.queue_url)
            .attributes(QueueAttributeName::Policy, "")
            .send()
            .await
        {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_queue_does_not_exist()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("SetQueueAttributes", &e)),
        }
    }
}
