//! Reads of many resources in a few calls, for a plan of a large stack (`shared::batched`):
//! IAM's `GetAccountAuthorizationDetails` (roles with their trust policy, tags and attached
//! policies; customer managed policies with their documents) with `ListRoles` (a role's
//! description, which the former leaves out); the Resource Groups Tagging API's
//! `GetResources` (the tags of up to 100 of the stack's resources a call); `ListStateMachines`
//! (which names exist, so a state machine not there is not described one by one). Each is
//! asked once per plan (`shared::once`). A resource missing from a listing that cannot be
//! trusted to hold everything (the tagging API lists only what it has indexed, and not IAM
//! roles) is read on its own, as outside a batch. A listing the credentials may not call
//! (`AccessDenied`: a role allowed `iam:GetRole` but not the account listing) is not an error:
//! the plan reads one by one, as for a small stack.

use super::Tags;
use super::shared;
use crate::aws::{Ctx, api_error};
use crate::error::Result;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A role as IAM's account listing and `ListRoles` show it.
#[derive(Debug, Clone, Default)]
pub struct Role {
    pub arn: String,
    pub path: String,
    /// The trust policy as IAM returns it (URL-encoded on AWS).
    pub trust: Option<String>,
    pub description: Option<String>,
    pub tags: Tags,
    /// The ARNs of the managed policies attached to it.
    pub attached: Vec<String>,
}

/// A customer managed policy as IAM's account listing shows it.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub description: Option<String>,
    pub default_version: String,
    /// The default version's document.
    pub document: Option<String>,
}

/// The account's roles (by name) and customer managed policies (by ARN).
#[derive(Debug, Default)]
pub struct Iam {
    pub roles: HashMap<String, Role>,
    pub policies: HashMap<String, Policy>,
}

fn tags_of(tags: &[aws_sdk_iam::types::Tag]) -> Tags {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// Every role and customer managed policy of the account, once per plan. None outside a
/// batched plan, or when the credentials may not list them.
pub async fn iam(ctx: &Ctx) -> Result<Option<Arc<Iam>>> {
    if !shared::batched() {
        return Ok(None);
    }
    shared::once("iam account".to_string(), || async {
        let (iam, descriptions) = tokio::try_join!(details(ctx), descriptions(ctx))?;
        let (Some(mut iam), Some(descriptions)) = (iam, descriptions) else {
            return Ok(None);
        };
        for (name, role) in iam.roles.iter_mut() {
            role.description = descriptions.get(name).cloned().flatten();
        }
        Ok(Some(Arc::new(iam)))
    })
    .await
}

/// Whether a listing was refused for want of permission (the plan then reads one by one).
fn denied(e: &impl ProvideErrorMetadata) -> bool {
    matches!(
        e.code(),
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation")
    )
}

/// A page, or None when the listing is refused for want of permission.
macro_rules! page_or_denied {
    ($page:expr, $op:literal) => {
        match $page {
            Ok(p) => p,
            Err(e) if denied(&e) => return Ok(None),
            Err(e) => return Err(api_error($op, &e)),
        }
    };
}

/// IAM's account listing: roles and customer managed policies, every page.
async fn details(ctx: &Ctx) -> Result<Option<Iam>> {
    let mut iam = Iam::default();
    let request = ctx
        .iam
        .get_account_authorization_details()
        .filter(aws_sdk_iam::types::EntityType::Role)
        .filter(aws_sdk_iam::types::EntityType::LocalManagedPolicy)
        .max_items(1000);
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page_or_denied!(page, "GetAccountAuthorizationDetails");
        for r in page.role_detail_list() {
            let Some(name) = r.role_name() else { continue };
            let attached = r.attached_managed_policies().iter();
            let role = Role {
                arn: r.arn().unwrap_or_default().to_string(),
                path: r.path().unwrap_or("/").to_string(),
                trust: r.assume_role_policy_document().map(str::to_string),
                description: None,
                tags: tags_of(r.tags()),
                attached: attached
                    .filter_map(|p| p.policy_arn().map(str::to_string))
                    .collect(),
            };
            iam.roles.insert(name.to_string(), role);
        }
        for p in page.policies() {
            let Some(arn) = p.arn() else { continue };
            let default = p.default_version_id().unwrap_or("v1").to_string();
            let versions = p.policy_version_list().iter();
            let document = versions
                .filter(|v| v.is_default_version() || v.version_id() == Some(&default))
                .find_map(|v| v.document().map(str::to_string));
            let policy = Policy {
                description: p.description().map(str::to_string),
                default_version: default,
                document,
            };
            iam.policies.insert(arn.to_string(), policy);
        }
    }
    Ok(Some(iam))
}

/// Each role's description (which the account listing leaves out), from `ListRoles`.
async fn descriptions(ctx: &Ctx) -> Result<Option<HashMap<String, Option<String>>>> {
    let mut found = HashMap::new();
    let mut pages = ctx.iam.list_roles().max_items(1000).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page_or_denied!(page, "ListRoles");
        for r in page.roles() {
            found.insert(
                r.role_name().to_string(),
                r.description().map(str::to_string),
            );
        }
    }
    Ok(Some(found))
}

/// The tags of the stack's resources that the tagging API lists (by ARN), once per plan: those
/// tagged with the stack and env of `tags` (`deploy:stack`, `deploy:env`); None when the
/// credentials may not list them (or outside a batched plan).
pub async fn tagged(ctx: &Ctx, tags: &Tags) -> Result<Option<Arc<HashMap<String, Tags>>>> {
    if !shared::batched() {
        return Ok(None);
    }
    let stack = tags.get("deploy:stack").cloned().unwrap_or_default();
    let env = tags.get("deploy:env").cloned().unwrap_or_default();
    let key = format!("tagged {stack} {env}");
    shared::once(key, || async move {
        let filter = |k: &str, v: &str| {
            aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                .key(k)
                .values(v)
                .build()
        };
        let request = ctx
            .tagging
            .get_resources()
            .tag_filters(filter("deploy:stack", &stack))
            .tag_filters(filter("deploy:env", &env))
            .resources_per_page(100)
            // a page holds at most this many tags too (100 unless asked: 33 resources of three)
            .tags_per_page(500);
        let mut found = HashMap::new();
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page_or_denied!(page, "GetResources");
            for m in page.resource_tag_mapping_list() {
                let Some(arn) = m.resource_arn() else {
                    continue;
                };
                let tags = m
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect();
                found.insert(arn.to_string(), tags);
            }
        }
        Ok(Some(Arc::new(found)))
    })
    .await
}

/// The names of the region's state machines, once per plan; None when the credentials may not
/// list them (or outside a batched plan).
pub async fn state_machines(ctx: &Ctx) -> Result<Option<Arc<HashSet<String>>>> {
    if !shared::batched() {
        return Ok(None);
    }
    shared::once("state machines".to_string(), || async {
        let mut names = HashSet::new();
        let request = ctx.sfn.list_state_machines().max_results(1000);
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page_or_denied!(page, "ListStateMachines");
            names.extend(page.state_machines().iter().map(|m| m.name().to_string()));
        }
        Ok(Some(Arc::new(names)))
    })
    .await
}
