//! `iam_role`: an IAM role that one service principal may assume.

use super::iam_user::{from_iam_tags, iam_tags, root_path};
use super::{
    Kind, Notes, Outputs, Tags, arn_and_name, decode_policy, iam_created, iam_found, sync_tags,
    trust_policy,
};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    /// The service principal allowed to assume the role, e.g. `states.amazonaws.com`.
    pub service: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub tags: Tags,
    /// The trust policy's `aws:SourceArn` (ArnLike): the resource that assumes the role, as
    /// AWS's confused-deputy guidance asks (a state machine's, a rule's, a pipe's ARN, or a
    /// pattern such as `arn:aws:datasync:us-east-1:123456789012:*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<String>,
    /// The trust policy's `aws:SourceAccount` condition (the deployment's account); on by
    /// default, `false` only for a service that does not send it.
    #[serde(default = "yes")]
    pub source_account: bool,
    /// Conditions of the manifest's own, merged into the trust policy's `Condition`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub condition: Map<String, Value>,
}

fn yes() -> bool {
    true
}

pub struct IamRole;

/// What a role's trust policy says, as the attributes name it.
#[derive(PartialEq)]
struct Trust {
    service: String,
    source_arn: Option<String>,
    source_account: bool,
    condition: Map<String, Value>,
}

impl Trust {
    fn of(a: &Attrs) -> Trust {
        Trust {
            service: a.service.clone(),
            source_arn: a.source_arn.clone(),
            source_account: a.source_account,
            condition: a.condition.clone(),
        }
    }

    /// The trust policy document: the service may assume the role, on the conditions.
    fn document(&self, account: &str) -> Value {
        let mut condition = self.condition.clone();
        let mut add = |op: &str, key: &str, value: &str| {
            let block = condition.entry(op).or_insert_with(|| json!({}));
            if let Some(block) = block.as_object_mut() {
                block.insert(key.into(), json!(value));
            }
        };
        if self.source_account {
            add("StringEquals", "aws:SourceAccount", account);
        }
        if let Some(arn) = &self.source_arn {
            add("ArnLike", "aws:SourceArn", arn);
        }
        trust_policy(&self.service, condition)
    }

    /// A live trust policy read back: the principal, the source conditions this kind writes
    /// (`aws:SourceAccount` counts only when it names `account`), and the rest as they are.
    fn read(doc: &Value, account: &str) -> Trust {
        let st = &doc["Statement"][0];
        let service = match &st["Principal"]["Service"] {
            Value::String(p) => p.clone(),
            other => other.to_string(),
        };
        let mut condition = st["Condition"].as_object().cloned().unwrap_or_default();
        let mut take = |op: &str, key: &str| -> Option<Value> {
            let block = condition.get_mut(op)?.as_object_mut()?;
            let v = block.remove(key);
            if block.is_empty() {
                condition.remove(op);
            }
            v
        };
        let source_account = take("StringEquals", "aws:SourceAccount")
            .is_some_and(|v| v == account || v == json!([account]));
        let source_arn =
            take("ArnLike", "aws:SourceArn").and_then(|v| v.as_str().map(str::to_string));
        Trust {
            service,
            source_arn,
            source_account,
            condition,
        }
    }

    fn apply(self, a: &mut Attrs) {
        a.service = self.service;
        a.source_arn = self.source_arn;
        a.source_account = self.source_account;
        a.condition = self.condition;
    }
}

#[async_trait]
impl Kind for IamRole {
    type Attrs = Attrs;
    const NAME: &'static str = "iam_role";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name", "path"];

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        let out = ctx
            .iam
            .create_role()
            .role_name(&a.name)
            .path(&a.path)
            .description(&a.description)
            .assume_role_policy_document(Trust::of(a).document(&ctx.account_id).to_string())
            .set_tags(Some(iam_tags(&a.tags)))
            .send()
            .await;
        iam_created("IAM role", &a.name, "CreateRole", out, |o| {
            o.role().map(|r| r.arn().to_string())
        })
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        if let Some(iam) = super::batch::iam(ctx).await? {
            let Some(role) = iam.roles.get(&a.name) else {
                return Ok(None);
            };
            let trust = role.trust.as_deref().map(decode_policy).transpose()?;
            let mut live = Attrs {
                name: a.name.clone(),
                description: role.description.clone().unwrap_or_default(),
                path: role.path.clone(),
                tags: role.tags.clone(),
                ..a.clone()
            };
            Trust::read(&trust.unwrap_or_default(), &ctx.account_id).apply(&mut live);
            return Ok(Some((live, arn_and_name(&role.arn, &a.name))));
        }
        // the role and its tags at once: one round trip
        let (out, tags) = tokio::join!(
            ctx.iam.get_role().role_name(&a.name).send(),
            ctx.iam.list_role_tags().role_name(&a.name).send()
        );
        let Some(o) = iam_found("GetRole", out)? else {
            return Ok(None);
        };
        let role = o
            .role
            .ok_or_else(|| Error::aws("GetRole returned no role"))?;
        let tags = tags.map_err(|e| api_error("ListRoleTags", &e))?;
        let trust = role
            .assume_role_policy_document()
            .map(decode_policy)
            .transpose()?
            .unwrap_or_default();
        let mut live = Attrs {
            name: role.role_name.clone(),
            description: role.description.clone().unwrap_or_default(),
            path: role.path.clone(),
            tags: from_iam_tags(tags.tags()),
            ..a.clone()
        };
        Trust::read(&trust, &ctx.account_id).apply(&mut live);
        Ok(Some((live, arn_and_name(&role.arn, &a.name))))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        if Trust::of(live) != Trust::of(want) {
            ctx.iam
                .update_assume_role_policy()
                .role_name(&want.name)
                .policy_document(Trust::of(want).document(&ctx.account_id).to_string())
                .send()
                .await
                .map_err(|e| api_error("UpdateAssumeRolePolicy", &e))?;
        }
        if live.description != want.description {
            ctx.iam
                .update_role()
                .role_name(&want.name)
                .description(&want.description)
                .send()
                .await
                .map_err(|e| api_error("UpdateRole", &e))?;
        }
        sync_tags(
            &live.tags,
            &want.tags,
            ("TagRole", |set| {
                ctx.iam
                    .tag_role()
                    .role_name(&want.name)
                    .set_tags(Some(iam_tags(&set)))
                    .send()
            }),
            ("UntagRole", |remove| {
                ctx.iam
                    .untag_role()
                    .role_name(&want.name)
                    .set_tag_keys(Some(remove))
                    .send()
            }),
        )
        .await?;
        Ok(arn_and_name(
            &format!(
                "arn:{}:iam::{}:role{}{}",
                ctx.partition, ctx.account_id, want.path, want.name
            ),
            &want.name,
        ))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        match ctx.iam.delete_role().role_name(&a.name).send().await {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("DeleteRole", &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(source_arn: Option<&str>, condition: Value) -> Attrs {
        Attrs {
            name: "r".into(),
            service: "states.amazonaws.com".into(),
            description: String::new(),
            path: "/".into(),
            tags: Tags::new(),
            source_arn: source_arn.map(str::to_string),
            source_account: true,
            condition: condition.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn the_trust_policy_holds_the_account_the_source_and_the_manifests_conditions() {
        let a = role(
            Some("arn:aws:states:us-east-1:123456789012:stateMachine:m"),
            json!({"StringEquals": {"aws:PrincipalTag/team": "x"}}),
        );
        let doc = Trust::of(&a).document("123456789012");
        assert_eq!(
            doc["Statement"][0]["Condition"],
            json!({
                "StringEquals": {"aws:PrincipalTag/team": "x", "aws:SourceAccount": "123456789012"},
                "ArnLike": {"aws:SourceArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m"}
            })
        );
        // read back, it is what was asked: no drift
        assert!(Trust::read(&doc, "123456789012") == Trust::of(&a));
        // a role made before conditions (or by another account's value) differs: updated
        let bare = trust_policy("states.amazonaws.com", Map::new());
        assert!(Trust::read(&bare, "123456789012") != Trust::of(&role(None, json!({}))));
        let mut off = role(None, json!({}));
        off.source_account = false;
        assert!(Trust::read(&bare, "123456789012") == Trust::of(&off));
        assert!(
            Trust::of(&off).document("1")["Statement"][0]
                .get("Condition")
                .is_none()
        );
    }
}
