//! `sfn_state_machine`: a Step Functions state machine. The definition arrives here already
//! rendered from its template (see `template.rs`) and is compared semantically, so a definition
//! change is one UpdateStateMachine. Creating and updating wait out IAM propagation of a new role.

use super::{Kind, Notes, Outputs, Tags, arn_and_name, sync_tags};
use crate::aws::{Ctx, api_error, retry_propagation};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_sfn::types::{StateMachineType, Tag};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    pub role_arn: String,
    /// The rendered definition (in the manifest: `{ template = "...", vars = { ... } }`).
    pub definition: Value,
    /// STANDARD or EXPRESS
    #[serde(default = "standard", rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub tags: Tags,
}

fn standard() -> String {
    "STANDARD".into()
}

pub struct StateMachine;

fn arn(ctx: &Ctx, name: &str) -> String {
    format!(
        "arn:{}:states:{}:{}:stateMachine:{}",
        ctx.partition, ctx.region, ctx.account_id, name
    )
}

fn sfn_tags(t: &Tags) -> Vec<Tag> {
    t.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn definition_text(a: &Attrs) -> String {
    serde_json::to_string_pretty(&a.definition).expect("JSON value serialises")
}

#[async_trait]
impl Kind for StateMachine {
    type Attrs = Attrs;
    const NAME: &'static str = "sfn_state_machine";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name", "type"];
    const OUTPUTS: &'static [&'static str] = &["arn", "name"];

    fn display_name(a: &Attrs) -> String {
        a.name.clone()
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        let out = retry_propagation(ctx.propagation, || {
            ctx.sfn
                .create_state_machine()
                .name(&a.name)
                .role_arn(&a.role_arn)
                .definition(definition_text(a))
                .r#type(StateMachineType::from(a.kind.as_str()))
                .set_tags(Some(sfn_tags(&a.tags)))
                .send()
        })
        .await;
        match out {
            Ok(o) => Ok(arn_and_name(o.state_machine_arn(), &a.name)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_state_machine_already_exists()) =>
            {
                Err(Error::already_exists(format!(
                    "state machine {} already exists",
                    a.name
                )))
            }
            Err(e) => Err(api_error("CreateStateMachine", &e)),
        }
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let arn = arn(ctx, &a.name);
        // the machine and its tags at once: one round trip
        let (d, t) = tokio::join!(
            ctx.sfn
                .describe_state_machine()
                .state_machine_arn(&arn)
                .send(),
            ctx.sfn.list_tags_for_resource().resource_arn(&arn).send()
        );
        let d = match d {
            Ok(d) => d,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_state_machine_does_not_exist()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(api_error("DescribeStateMachine", &e)),
        };
        if d.status().is_some_and(|s| s.as_str() == "DELETING") {
            return Ok(None);
        }
        let definition: Value = serde_json::from_str(d.definition()).map_err(|e| {
            Error::aws(format!(
                "state machine {} has an unreadable definition: {e}",
                a.name
            ))
        })?;
        let t = t.map_err(|e| api_error("ListTagsForResource", &e))?;
        let live = Attrs {
            name: d.name().to_string(),
            role_arn: d.role_arn().to_string(),
            definition,
            kind: d.r#type().as_str().to_string(),
            tags: t
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        };
        Ok(Some((live, arn_and_name(&arn, &a.name))))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        let arn = arn(ctx, &want.name);
        if live.definition != want.definition || live.role_arn != want.role_arn {
            let mut_def = live.definition != want.definition;
            let mut_role = live.role_arn != want.role_arn;
            retry_propagation(ctx.propagation, || {
                let mut req = ctx.sfn.update_state_machine().state_machine_arn(&arn);
                if mut_def {
                    req = req.definition(definition_text(want));
                }
                if mut_role {
                    req = req.role_arn(&want.role_arn);
                }
                req.send()
            })
            .await
            .map_err(|e| api_error("UpdateStateMachine", &e))?;
        }
        sync_tags(
            &live.tags,
            &want.tags,
            ("TagResource", |set| {
                ctx.sfn
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(sfn_tags(&set)))
                    .send()
            }),
            ("UntagResource", |remove| {
                ctx.sfn
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
        let arn = arn(ctx, &a.name);
        match ctx
            .sfn
            .delete_state_machine()
            .state_machine_arn(&arn)
            .send()
            .await
        {
            Ok(_) => {}
            // DeleteStateMachine succeeds on a missing machine: nothing to special-case.
            Err(e) => return Err(api_error("DeleteStateMachine", &e)),
        }
        // Deletion is asynchronous on AWS: wait (bounded) so a re-create with the same name works.
        let gone = || async {
            Ok(Self::read(ctx, a, &Outputs::new())
                .await?
                .is_none()
                .then_some(vec![]))
        };
        let late = || {
            Error::aws(format!(
                "state machine {} is still being deleted; run again in a minute",
                a.name
            ))
        };
        crate::aws::poll_until(ctx, 60, gone, late).await
    }
}
