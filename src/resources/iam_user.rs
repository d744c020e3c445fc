//! `iam_user`: an IAM user.

use super::{Kind, Notes, Outputs, Tags, arn_and_name, iam_created, iam_found, sync_tags};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_iam::types::Tag;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub tags: Tags,
}

pub fn root_path() -> String {
    "/".into()
}

pub fn iam_tags(tags: &Tags) -> Vec<Tag> {
    sdk_tags!(Tag, tags)
}

pub fn from_iam_tags(tags: &[Tag]) -> Tags {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

pub struct IamUser;

#[async_trait]
impl Kind for IamUser {
    type Attrs = Attrs;
    const NAME: &'static str = "iam_user";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name", "path"];

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        let out = ctx
            .iam
            .create_user()
            .user_name(&a.name)
            .path(&a.path)
            .set_tags(Some(iam_tags(&a.tags)))
            .send()
            .await;
        let out = out;
        iam_created("IAM user", &a.name, "CreateUser", out, |o| {
            o.user().map(|u| u.arn()).map(str::to_string)
        })
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        // the user and its tags at once: one round trip
        let (out, tags) = tokio::join!(
            ctx.iam.get_user().user_name(&a.name).send(),
            ctx.iam.list_user_tags().user_name(&a.name).send()
        );
        let Some(o) = iam_found("GetUser", out)? else {
            return Ok(None);
        };
        let user = o
            .user
            .ok_or_else(|| Error::aws("GetUser returned no user"))?;
        let tags = tags.map_err(|e| api_error("ListUserTags", &e))?;
        let live = Attrs {
            name: user.user_name.clone(),
            path: user.path.clone(),
            tags: from_iam_tags(tags.tags()),
        };
        Ok(Some((live, arn_and_name(&user.arn, &a.name))))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        sync_tags(
            &live.tags,
            &want.tags,
            ("TagUser", |set| {
                ctx.iam
                    .tag_user()
                    .user_name(&want.name)
                    .set_tags(Some(iam_tags(&set)))
                    .send()
            }),
            ("UntagUser", |remove| {
                ctx.iam
                    .untag_user()
                    .user_name(&want.name)
                    .set_tag_keys(Some(remove))
                    .send()
            }),
        )
        .await?;
        Ok(arn_and_name(
            &format!(
                "arn:{}:iam::{}:user{}{}",
                ctx.partition, ctx.account_id, want.path, want.name
            ),
            &want.name,
        ))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        match ctx.iam.delete_user().user_name(&a.name).send().await {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(vec![])
            }
            // Something outside the manifest attached policies to our user or put it in groups
            // (should-i-deploy's workflow attaches AWSDenyAll): the user is ours, so these
            // ties are undone first (the policies and groups themselves are left alone).
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_delete_conflict_exception()) =>
            {
                let notes = untie(ctx, &a.name).await?;
                ctx.iam
                    .delete_user()
                    .user_name(&a.name)
                    .send()
                    .await
                    .map_err(|e| api_error("DeleteUser", &e))?;
                Ok(notes)
            }
            Err(e) => Err(api_error("DeleteUser", &e)),
        }
    }
}

/// Detaches the managed policies, deletes the inline policies and leaves the groups of a user
/// about to be deleted; says what it did.
async fn untie(ctx: &Ctx, user: &str) -> Result<Notes> {
    let mut notes = Vec::new();
    let attached = ctx
        .iam
        .list_attached_user_policies()
        .user_name(user)
        .send()
        .await
        .map_err(|e| api_error("ListAttachedUserPolicies", &e))?;
    for p in attached.attached_policies() {
        let arn = p.policy_arn().unwrap_or_default();
        ctx.iam
            .detach_user_policy()
            .user_name(user)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| api_error("DetachUserPolicy", &e))?;
        notes.push(format!(
            "detached {} from the user first (attached outside deploy)",
            p.policy_name().unwrap_or(arn)
        ));
    }
    let inline = ctx
        .iam
        .list_user_policies()
        .user_name(user)
        .send()
        .await
        .map_err(|e| api_error("ListUserPolicies", &e))?;
    for name in inline.policy_names() {
        ctx.iam
            .delete_user_policy()
            .user_name(user)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| api_error("DeleteUserPolicy", &e))?;
        notes.push(format!(
            "deleted the user's inline policy {name} first (put outside deploy)"
        ));
    }
    let groups = ctx
        .iam
        .list_groups_for_user()
        .user_name(user)
        .send()
        .await
        .map_err(|e| api_error("ListGroupsForUser", &e))?;
    for g in groups.groups() {
        ctx.iam
            .remove_user_from_group()
            .user_name(user)
            .group_name(g.group_name())
            .send()
            .await
            .map_err(|e| api_error("RemoveUserFromGroup", &e))?;
        notes.push(format!(
            "removed the user from group {} first (added outside deploy)",
            g.group_name()
        ));
    }
    Ok(notes)
}
