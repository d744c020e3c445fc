//! `events_rule`: an EventBridge rule on a schedule. The manifest gives either
//! `schedule_expression` or `rate_minutes` (1 gives `rate(1 minute)`, N gives `rate(N minutes)`).

use super::{Kind, Notes, Outputs, Tags, arn_and_name, sync_tags};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_eventbridge::types::{RuleState, Tag};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "Manifest")]
pub struct Attrs {
    pub name: String,
    pub schedule_expression: String,
    pub description: String,
    /// ENABLED or DISABLED
    pub state: String,
    pub tags: Tags,
}

/// What the manifest may say; normalised into [`Attrs`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    schedule_expression: Option<String>,
    rate_minutes: Option<u64>,
    #[serde(default)]
    description: String,
    #[serde(default = "enabled")]
    state: String,
    #[serde(default)]
    tags: Tags,
}

fn enabled() -> String {
    "ENABLED".into()
}

/// `rate(1 minute)` for 1, `rate(N minutes)` otherwise.
pub fn rate_expression(minutes: u64) -> String {
    if minutes == 1 {
        "rate(1 minute)".into()
    } else {
        format!("rate({minutes} minutes)")
    }
}

impl TryFrom<Manifest> for Attrs {
    type Error = String;
    fn try_from(m: Manifest) -> Result<Self, String> {
        let schedule_expression = match (m.schedule_expression, m.rate_minutes) {
            (Some(e), None) => e,
            (None, Some(0)) => return Err("rate_minutes must be at least 1".into()),
            (None, Some(n)) => rate_expression(n),
            (Some(_), Some(_)) => {
                return Err("give either schedule_expression or rate_minutes, not both".into());
            }
            (None, None) => return Err("a rule needs schedule_expression or rate_minutes".into()),
        };
        if m.state != "ENABLED" && m.state != "DISABLED" {
            return Err(format!(
                "state must be ENABLED or DISABLED, not {:?}",
                m.state
            ));
        }
        Ok(Attrs {
            name: m.name,
            schedule_expression,
            description: m.description,
            state: m.state,
            tags: m.tags,
        })
    }
}

fn tags(t: &Tags) -> Vec<Tag> {
    sdk_tags!(Tag, t)
}

pub struct EventsRule;

async fn put(ctx: &Ctx, a: &Attrs, with_tags: bool) -> Result<String> {
    let mut req = ctx
        .events
        .put_rule()
        .name(&a.name)
        .schedule_expression(&a.schedule_expression)
        .description(&a.description)
        .state(RuleState::from(a.state.as_str()));
    if with_tags {
        req = req.set_tags(Some(tags(&a.tags)));
    }
    let out = req.send().await.map_err(|e| api_error("PutRule", &e))?;
    Ok(out.rule_arn().unwrap_or_default().to_string())
}

#[async_trait]
impl Kind for EventsRule {
    type Attrs = Attrs;
    const NAME: &'static str = "events_rule";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name"];

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        // PutRule creates or overwrites: look first so that someone else's rule is not taken over.
        if ctx
            .events
            .describe_rule()
            .name(&a.name)
            .send()
            .await
            .is_ok()
        {
            return Err(Error::already_exists(format!(
                "EventBridge rule {} already exists",
                a.name
            )));
        }
        let arn = put(ctx, a, true).await?;
        Ok(arn_and_name(&arn, &a.name))
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        // the rule (on the default bus, so its ARN is known) and its tags at once
        let arn = format!(
            "arn:{}:events:{}:{}:rule/{}",
            ctx.partition, ctx.region, ctx.account_id, a.name
        );
        let (r, t) = tokio::join!(
            ctx.events.describe_rule().name(&a.name).send(),
            ctx.events
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
        );
        let r = match r {
            Ok(r) => r,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("DescribeRule", &e)),
        };
        let arn = r.arn().map(str::to_string).unwrap_or(arn);
        let t = t.map_err(|e| api_error("ListTagsForResource", &e))?;
        let live = Attrs {
            name: r.name().unwrap_or_default().to_string(),
            schedule_expression: r.schedule_expression().unwrap_or_default().to_string(),
            description: r.description().unwrap_or_default().to_string(),
            state: r
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(enabled),
            tags: t
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        };
        Ok(Some((live, arn_and_name(&arn, &a.name))))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        let same_rule = live.schedule_expression == want.schedule_expression
            && live.description == want.description
            && live.state == want.state;
        let arn = if same_rule {
            format!(
                "arn:{}:events:{}:{}:rule/{}",
                ctx.partition, ctx.region, ctx.account_id, want.name
            )
        } else {
            put(ctx, want, false).await?
        };
        sync_arn_tags!(ctx.events, &arn, &live.tags, &want.tags, |set| tags(&set)).await?;
        Ok(arn_and_name(&arn, &want.name))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        match ctx.events.delete_rule().name(&a.name).send().await {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("DeleteRule", &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rate_minutes_becomes_an_expression() {
        let a: Attrs = serde_json::from_value(json!({"name": "r", "rate_minutes": 1})).unwrap();
        assert_eq!(a.schedule_expression, "rate(1 minute)");
        let a: Attrs = serde_json::from_value(json!({"name": "r", "rate_minutes": 30})).unwrap();
        assert_eq!(a.schedule_expression, "rate(30 minutes)");
        // normalised attributes read back as the same thing
        let again: Attrs = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(again, a);
        assert!(serde_json::from_value::<Attrs>(json!({"name": "r"})).is_err());
        assert!(serde_json::from_value::<Attrs>(json!({"name": "r", "rate_minutes": 0})).is_err());
    }
}
