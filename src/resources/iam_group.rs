//! `iam_group`: an IAM group (groups carry no tags). Destroy first removes the users a
//! workflow put in it (the users themselves are not deleted), as IAM requires.

use super::iam_user::root_path;
use super::{Kind, Notes, Outputs, arn_and_name, iam_created, iam_found};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    #[serde(default = "root_path")]
    pub path: String,
}

pub struct IamGroup;

#[async_trait]
impl Kind for IamGroup {
    type Attrs = Attrs;
    const NAME: &'static str = "iam_group";
    const TAGGABLE: bool = false;
    const OWNER: super::Owner = super::Owner::Unprovable;
    const REPLACE_ON: &'static [&'static str] = &["name", "path"];

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        let out = ctx
            .iam
            .create_group()
            .group_name(&a.name)
            .path(&a.path)
            .send()
            .await;
        iam_created("IAM group", &a.name, "CreateGroup", out, |o| {
            o.group().map(|g| g.arn()).map(str::to_string)
        })
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let out = ctx.iam.get_group().group_name(&a.name).send().await;
        let Some(o) = iam_found("GetGroup", out)? else {
            return Ok(None);
        };
        let g = o
            .group()
            .ok_or_else(|| Error::aws("GetGroup returned no group"))?;
        let live = Attrs {
            name: g.group_name().to_string(),
            path: g.path().to_string(),
        };
        Ok(Some((live, arn_and_name(g.arn(), &a.name))))
    }

    async fn update(ctx: &Ctx, _live: &Attrs, want: &Attrs, known: &Outputs) -> Result<Outputs> {
        Ok(Self::read(ctx, want, known)
            .await?
            .map(|(_, o)| o)
            .unwrap_or_default())
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        let members = match ctx.iam.get_group().group_name(&a.name).send().await {
            Ok(o) => o
                .users()
                .iter()
                .map(|u| u.user_name().to_string())
                .collect::<Vec<_>>(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                return Ok(vec![]);
            }
            Err(e) => return Err(api_error("GetGroup", &e)),
        };
        for u in &members {
            ctx.iam
                .remove_user_from_group()
                .group_name(&a.name)
                .user_name(u)
                .send()
                .await
                .map_err(|e| api_error("RemoveUserFromGroup", &e))?;
        }
        match ctx.iam.delete_group().group_name(&a.name).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) => {}
            Err(e) => return Err(api_error("DeleteGroup", &e)),
        }
        Ok(if members.is_empty() {
            vec![]
        } else {
            vec![format!(
                "removed {} user(s) from the group first (kept the users): {}",
                members.len(),
                members.join(", ")
            )]
        })
    }
}
