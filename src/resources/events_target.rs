//! `events_target`: a target of an EventBridge rule (here: a state machine, started with a role).

use super::{Kind, Notes, Outputs, s};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_eventbridge::types::Target;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub rule: String,
    pub id: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

pub struct EventsTarget;

async fn put(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
    let target = Target::builder()
        .id(&a.id)
        .arn(&a.arn)
        .set_role_arn(a.role_arn.clone())
        .build()
        .map_err(|e| Error::internal(e.to_string()))?;
    let out = ctx
        .events
        .put_targets()
        .rule(&a.rule)
        .targets(target)
        .send()
        .await
        .map_err(|e| api_error("PutTargets", &e))?;
    if let Some(f) = out.failed_entries().first() {
        return Err(Error::aws(format!(
            "PutTargets failed for target {}: {}: {}",
            a.id,
            f.error_code().unwrap_or_default(),
            f.error_message().unwrap_or_default()
        )));
    }
    Ok(Outputs::from([("id".into(), s(&a.id))]))
}

#[async_trait]
impl Kind for EventsTarget {
    type Attrs = Attrs;
    const NAME: &'static str = "events_target";
    const TAGGABLE: bool = false;
    const REPLACE_ON: &'static [&'static str] = &["rule", "id"];
    const OUTPUTS: &'static [&'static str] = &["id"];

    fn display_name(a: &Attrs) -> String {
        format!("{}/{}", a.rule, a.id)
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        put(ctx, a).await
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let targets = super::shared::once(format!("ListTargetsByRule {}", a.rule), || async {
            match ctx.events.list_targets_by_rule().rule(&a.rule).send().await {
                Ok(o) => Ok(Some(o.targets.unwrap_or_default())),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    Ok(None)
                }
                Err(e) => Err(api_error("ListTargetsByRule", &e)),
            }
        })
        .await?;
        let Some(targets) = targets else {
            return Ok(None);
        };
        Ok(targets.iter().find(|t| t.id() == a.id).map(|t| {
            let live = Attrs {
                rule: a.rule.clone(),
                id: t.id().to_string(),
                arn: t.arn().to_string(),
                role_arn: t.role_arn().map(str::to_string),
            };
            (live, Outputs::from([("id".into(), s(&a.id))]))
        }))
    }

    async fn update(ctx: &Ctx, _live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        put(ctx, want).await
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        match ctx
            .events
            .remove_targets()
            .rule(&a.rule)
            .ids(&a.id)
            .send()
            .await
        {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("RemoveTargets", &e)),
        }
    }
}
