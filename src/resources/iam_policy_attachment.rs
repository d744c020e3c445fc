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

fn outputs(policy_arn: &str) -> Outputs {
    Outputs::from([("policy_arn".into(), s(policy_arn))])
}

pub struct UserPolicyAttachment;

#[async_trait]
impl Kind for UserPolicyAttachment {
    type Attrs = UserAttrs;
    const NAME: &'static str = "iam_user_policy_attachment";
    const TAGGABLE: bool = false;
    const REPLACE_ON: &'static [&'static str] = &["user", "policy_arn"];
    const OUTPUTS: &'static [&'static str] = &["policy_arn"];

    fn display_name(a: &UserAttrs) -> String {
        format!("{} -> {}", a.policy_arn, a.user)
    }

    async fn create(ctx: &Ctx, a: &UserAttrs) -> Result<Outputs> {
        ctx.iam
            .attach_user_policy()
            .user_name(&a.user)
            .policy_arn(&a.policy_arn)
            .send()
            .await
            .map_err(|e| api_error("AttachUserPolicy", &e))?;
        Ok(outputs(&a.policy_arn))
    }

    async fn read(
        ctx: &Ctx,
        a: &UserAttrs,
        _known: &Outputs,
    ) -> Result<Option<(UserAttrs, Outputs)>> {
        let request = ctx.iam.list_attached_user_policies().user_name(&a.user);
        let attached = attached_arns!(request, "ListAttachedUserPolicies", a.user)?;
        Ok(attached
            .is_some_and(|arns| arns.contains(&a.policy_arn))
            .then(|| (a.clone(), outputs(&a.policy_arn))))
    }

    async fn update(
        ctx: &Ctx,
        _live: &UserAttrs,
        want: &UserAttrs,
        _known: &Outputs,
    ) -> Result<Outputs> {
        Self::create(ctx, want).await
    }

    async fn delete(ctx: &Ctx, a: &UserAttrs, _known: &Outputs) -> Result<Notes> {
        match ctx
            .iam
            .detach_user_policy()
            .user_name(&a.user)
            .policy_arn(&a.policy_arn)
            .send()
            .await
        {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("DetachUserPolicy", &e)),
        }
    }
}

pub struct RolePolicyAttachment;

#[async_trait]
impl Kind for RolePolicyAttachment {
    type Attrs = RoleAttrs;
    const NAME: &'static str = "iam_role_policy_attachment";
    const TAGGABLE: bool = false;
    const REPLACE_ON: &'static [&'static str] = &["role", "policy_arn"];
    const OUTPUTS: &'static [&'static str] = &["policy_arn"];

    fn display_name(a: &RoleAttrs) -> String {
        format!("{} -> {}", a.policy_arn, a.role)
    }

    async fn create(ctx: &Ctx, a: &RoleAttrs) -> Result<Outputs> {
        ctx.iam
            .attach_role_policy()
            .role_name(&a.role)
            .policy_arn(&a.policy_arn)
            .send()
            .await
            .map_err(|e| api_error("AttachRolePolicy", &e))?;
        Ok(outputs(&a.policy_arn))
    }

    async fn read(
        ctx: &Ctx,
        a: &RoleAttrs,
        _known: &Outputs,
    ) -> Result<Option<(RoleAttrs, Outputs)>> {
        let request = ctx.iam.list_attached_role_policies().role_name(&a.role);
        let attached = attached_arns!(request, "ListAttachedRolePolicies", a.role)?;
        Ok(attached
            .is_some_and(|arns| arns.contains(&a.policy_arn))
            .then(|| (a.clone(), outputs(&a.policy_arn))))
    }

    async fn update(
        ctx: &Ctx,
        _live: &RoleAttrs,
        want: &RoleAttrs,
        _known: &Outputs,
    ) -> Result<Outputs> {
        Self::create(ctx, want).await
    }

    async fn delete(ctx: &Ctx, a: &RoleAttrs, _known: &Outputs) -> Result<Notes> {
        match ctx
            .iam
            .detach_role_policy()
            .role_name(&a.role)
            .policy_arn(&a.policy_arn)
            .send()
            .await
        {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("DetachRolePolicy", &e)),
        }
    }
}
