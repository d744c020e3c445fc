//! `iam_group`: an IAM group (groups carry no tags). Destroy first removes the users a
//! workflow put in it (the users themselves are not deleted), as IAM requires.

use super::iam_user::root_path;
use super::{Kind, Notes, Outputs, arn_and_name};
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
    const OUTPUTS: &'static [&'static str] = &["arn", "name"];

    fn display_name(a: &Attrs) -> String {
        a.name.clone()
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        match ctx
            .iam
            .create_group()
            .group_name(&a.name)
            .path(&a.path)
            .send()
            .await
        {
            Ok(o) => Ok(arn_and_name(
                o.group().map(|g| g.arn()).unwrap_or_default(),
                &a.name,
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_already_exists_exception()) =>
            {
                Err(Error::already_exists(format!(
                    "IAM group {} already exists",
                    a.name
                )))
            }
            Err(e) => Err(api_error("CreateGroup", &e)),
        }
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        match ctx.iam.get_group().group_name(&a.name).send().await {
            Ok(o) => {
                let g = o
                    .group()
                    .ok_or_else(|| Error::aws("GetGroup returned no group"))?;
                Ok(Some((
                    Attrs {
                        name: g.group_name().to_string(),
                        path: g.path().to_string(),
                    },
                    arn_and_name(g.arn(), &a.name),
                )))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(api_error("GetGroup", &e)),
        }
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
