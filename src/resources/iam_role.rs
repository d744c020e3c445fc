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
}

pub struct IamRole;

/// The single service principal of a trust policy, if it has that shape.
fn principal_of(doc: &serde_json::Value) -> String {
    let st = &doc["Statement"][0];
    match &st["Principal"]["Service"] {
        serde_json::Value::String(p) => p.clone(),
        other => other.to_string(),
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
            .assume_role_policy_document(trust_policy(&a.service).to_string())
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
            let live = Attrs {
                name: a.name.clone(),
                service: principal_of(&trust.unwrap_or_default()),
                description: role.description.clone().unwrap_or_default(),
                path: role.path.clone(),
                tags: role.tags.clone(),
            };
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
        let live = Attrs {
            name: role.role_name.clone(),
            service: principal_of(&trust),
            description: role.description.clone().unwrap_or_default(),
            path: role.path.clone(),
            tags: from_iam_tags(tags.tags()),
        };
        Ok(Some((live, arn_and_name(&role.arn, &a.name))))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        if live.service != want.service {
            ctx.iam
                .update_assume_role_policy()
                .role_name(&want.name)
                .policy_document(trust_policy(&want.service).to_string())
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
