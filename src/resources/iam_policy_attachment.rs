//! `iam_user_policy_attachment` and `iam_role_policy_attachment`: a managed policy attached to
//! a user or a role. Nothing about an attachment can change in place: a change replaces it.

use super::{Kind, Notes, Outputs, s};
use crate::aws::{Ctx, api_error};
use crate::error::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserAttrs {
    pub user: String,
    pub policy_arn: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleAttrs {
    pub role: String,
    pub policy_arn: String,
}

/// The ARNs of every policy attached to a user or role (all pages), or None when it does not
/// exist: one list call per plan for all its attachments (`shared::once`).
macro_rules! attached_arns {
    ($request:expr, $op:literal, $entity:expr) => {
        super::shared::once(format!("{} {}", $op, $entity), || async {
            let mut arns = Vec::new();
            let mut pages = $request.into_paginator().send();
            while let Some(page) = pages.next().await {
                match page {
                    Ok(p) => arns.extend(
                        p.attached_policies()
                            .iter()
                            .filter_map(|p| p.policy_arn().map(str::to_string)),
                    ),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_no_such_entity_exception()) =>
                    {
                        return Ok(None);
                    }
                    Err(e) => return Err(api_error($op, &e)),
                }
            }
            Ok(Some(arns))
        })
        .await
    };
}

/// What a role has attached, from IAM's account listing in a batched plan (`Some(None)`: no such
/// role); None: read it with its own list call.
async fn role_listed(ctx: &Ctx, role: &str) -> Result<Option<Option<Vec<String>>>> {
    let iam = super::batch::iam(ctx).await?;
    Ok(iam.map(|iam| iam.roles.get(role).map(|r| r.attached.clone())))
}

/// A user's attachments are in no listing a plan makes: read with their own list call.
async fn user_listed(_ctx: &Ctx, _user: &str) -> Result<Option<Option<Vec<String>>>> {
    Ok(None)
}

fn outputs(policy_arn: &str) -> Outputs {
    Outputs::from([("policy_arn".into(), s(policy_arn))])
}

/// One kind of attachment: the same five operations, on a user or on a role.
macro_rules! attachment_kind {
    ($kind:ident, $attrs:ident, $name:literal, $entity:ident, $param:ident,
     $attach:ident / $attach_op:literal, $list:ident / $list_op:literal, $listed:ident,
     $detach:ident / $detach_op:literal) => {
        pub struct $kind;

        #[async_trait]
        impl Kind for $kind {
            type Attrs = $attrs;
            const NAME: &'static str = $name;
            const TAGGABLE: bool = false;
            const REPLACE_ON: &'static [&'static str] = &[stringify!($entity), "policy_arn"];
            const OUTPUTS: &'static [&'static str] = &["policy_arn"];

            fn display_name(a: &$attrs) -> String {
                format!("{} -> {}", a.policy_arn, a.$entity)
            }

            async fn create(ctx: &Ctx, a: &$attrs) -> Result<Outputs> {
                let attach = ctx
                    .iam
                    .$attach()
                    .$param(&a.$entity)
                    .policy_arn(&a.policy_arn);
                attach.send().await.map_err(|e| api_error($attach_op, &e))?;
                Ok(outputs(&a.policy_arn))
            }

            async fn read(
                ctx: &Ctx,
                a: &$attrs,
                _known: &Outputs,
            ) -> Result<Option<($attrs, Outputs)>> {
                let attached = match $listed(ctx, &a.$entity).await? {
                    Some(listed) => listed,
                    None => {
                        let request = ctx.iam.$list().$param(&a.$entity);
                        attached_arns!(request, $list_op, a.$entity)?
                    }
                };
                Ok(attached
                    .is_some_and(|arns| arns.contains(&a.policy_arn))
                    .then(|| (a.clone(), outputs(&a.policy_arn))))
            }

            async fn update(
                ctx: &Ctx,
                _live: &$attrs,
                want: &$attrs,
                _known: &Outputs,
            ) -> Result<Outputs> {
                Self::create(ctx, want).await
            }

            async fn delete(ctx: &Ctx, a: &$attrs, _known: &Outputs) -> Result<Notes> {
                let detach = ctx
                    .iam
                    .$detach()
                    .$param(&a.$entity)
                    .policy_arn(&a.policy_arn);
                match detach.send().await {
                    Ok(_) => Ok(vec![]),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_no_such_entity_exception()) =>
                    {
                        Ok(vec![])
                    }
                    Err(e) => Err(api_error($detach_op, &e)),
                }
            }
        }
    };
}

attachment_kind!(
    UserPolicyAttachment,
    UserAttrs,
    "iam_user_policy_attachment",
    user,
    user_name,
    attach_user_policy / "AttachUserPolicy",
    list_attached_user_policies / "ListAttachedUserPolicies",
    user_listed,
    detach_user_policy / "DetachUserPolicy"
);

attachment_kind!(
    RolePolicyAttachment,
    RoleAttrs,
    "iam_role_policy_attachment",
    role,
    role_name,
    attach_role_policy / "AttachRolePolicy",
    list_attached_role_policies / "ListAttachedRolePolicies",
    role_listed,
    detach_role_policy / "DetachRolePolicy"
);
