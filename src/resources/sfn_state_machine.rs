//! `sfn_state_machine`: a Step Functions state machine. The definition arrives here already
//! rendered from its template (see `template.rs`) and is compared semantically, so a definition
//! change is one UpdateStateMachine. Creating and updating wait out IAM propagation of a new role.
//! With a `[versions]` table every definition or role change publishes a version (the newest
//! is output `version_arn`), versions beyond `keep` are deleted (never one an alias routes to
//! or a running execution uses), and the alias is `sfn_alias`'s.

use super::sfn_alias::Versions;
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
    /// Versions, an alias and how a new version is rolled out to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Versions>,
}

fn standard() -> String {
    "STANDARD".into()
}

pub struct StateMachine;

fn arn(ctx: &Ctx, name: &str) -> String {
    super::regional_arn(ctx, "states", &format!("stateMachine:{name}"))
}

fn sfn_tags(t: &Tags) -> Vec<Tag> {
    t.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The outputs with the newest version and the alias's ARN, when the machine has versions.
fn versioned(mut o: Outputs, a: &Attrs, version: Option<&str>) -> Outputs {
    if let Some(v) = &a.versions {
        if let Some(version) = version {
            o.insert("version_arn".into(), Value::String(version.to_string()));
        }
        if let (Some(alias), Some(Value::String(arn))) = (&v.alias, o.get("arn")) {
            let alias_arn = format!("{arn}:{alias}");
            o.insert("alias_arn".into(), Value::String(alias_arn));
        }
    }
    o
}

/// The ARNs of a machine's running executions (whatever version or alias they started on).
pub async fn running_executions(ctx: &Ctx, arn: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = match ctx
            .sfn
            .list_executions()
            .state_machine_arn(arn)
            .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
            .set_next_token(token)
            .send()
            .await
        {
            Ok(p) => p,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_state_machine_does_not_exist()) =>
            {
                return Ok(out);
            }
            Err(e) => return Err(api_error("ListExecutions", &e)),
        };
        out.extend(
            page.executions()
                .iter()
                .map(|e| e.execution_arn().to_string()),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// The newest published version of a machine, if it has any.
async fn newest_version(ctx: &Ctx, arn: &str) -> Result<Option<String>> {
    let out = ctx
        .sfn
        .list_state_machine_versions()
        .state_machine_arn(arn)
        .max_results(1)
        .send()
        .await
        .map_err(|e| api_error("ListStateMachineVersions", &e))?;
    Ok(out
        .state_machine_versions()
        .first()
        .map(|v| v.state_machine_version_arn().to_string()))
}

/// Deletes the versions beyond `keep` (the newest are kept), except one an alias routes to
/// or an execution still runs.
async fn prune(ctx: &Ctx, arn: &str, v: &Versions) -> Result<()> {
    let all = versions(ctx, arn).await?;
    let old = all.into_iter().skip(v.keep.max(1) as usize);
    let routed = match &v.alias {
        Some(alias) => routed(ctx, &format!("{arn}:{alias}")).await,
        None => vec![],
    };
    for version in old.filter(|o| !routed.contains(o)) {
        let running = ctx
            .sfn
            .list_executions()
            .state_machine_arn(&version)
            .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
            .max_results(1)
            .send()
            .await
            .map_err(|e| api_error("ListExecutions", &e))?;
        if !running.executions().is_empty() {
            tracing::info!("version {version} kept: an execution still runs on it");
            continue;
        }
        match ctx
            .sfn
            .delete_state_machine_version()
            .state_machine_version_arn(&version)
            .send()
            .await
        {
            Ok(_) => tracing::info!("deleted version {version} (beyond keep = {})", v.keep),
            // an alias took it meanwhile: it stays
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) => {}
            Err(e) => return Err(api_error("DeleteStateMachineVersion", &e)),
        }
    }
    Ok(())
}

/// Executions still running are not torn down under their machine unless asked: stopped
/// with --stop-executions, else an error.
async fn stop_running(ctx: &Ctx, name: &str, running: &[String]) -> Result<Notes> {
    if running.is_empty() {
        return Ok(vec![]);
    }
    if !ctx.stop_executions {
        let shown: Vec<&str> = running.iter().take(3).map(String::as_str).collect();
        let more = if running.len() > 3 {
            format!(" and {} more", running.len() - 3)
        } else {
            String::new()
        };
        return Err(Error::user(format!(
            "state machine {} has {} running execution(s): {}{more}",
            name,
            running.len(),
            shown.join(", ")
        ))
        .help("let them finish, or run `deploy destroy --stop-executions` to stop them first"));
    }
    for e in running {
        ctx.sfn
            .stop_execution()
            .execution_arn(e)
            .cause("stopped by deploy destroy --stop-executions")
            .send()
            .await
            .map_err(|err| api_error("StopExecution", &err))?;
    }
    let n = running.len();
    Ok(vec![format!("stopped {n} running execution(s) first")])
}

/// The machine's newest version, published now if it has none.
async fn newest_or_publish(ctx: &Ctx, arn: &str) -> Result<String> {
    if let Some(v) = newest_version(ctx, arn).await? {
        return Ok(v);
    }
    let published = ctx
        .sfn
        .publish_state_machine_version()
        .state_machine_arn(arn)
        .send()
        .await;
    let published = published.map_err(|e| api_error("PublishStateMachineVersion", &e))?;
    Ok(published.state_machine_version_arn().to_string())
}

/// Every published version of the machine, newest first.
async fn versions(ctx: &Ctx, arn: &str) -> Result<Vec<String>> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let page = ctx
            .sfn
            .list_state_machine_versions()
            .state_machine_arn(arn)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| api_error("ListStateMachineVersions", &e))?;
        all.extend(
            page.state_machine_versions()
                .iter()
                .map(|v| v.state_machine_version_arn().to_string()),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(all)
}

/// The versions an alias routes to (none if it cannot be read).
async fn routed(ctx: &Ctx, alias_arn: &str) -> Vec<String> {
    let d = ctx
        .sfn
        .describe_state_machine_alias()
        .state_machine_alias_arn(alias_arn)
        .send()
        .await;
    match d {
        Ok(d) => d
            .routing_configuration()
            .iter()
            .map(|r| r.state_machine_version_arn().to_string())
            .collect(),
        Err(_) => vec![],
    }
}

fn definition_text(a: &Attrs) -> String {
    serde_json::to_string_pretty(&a.definition).expect("JSON value serialises")
}

/// A machine's tags: from the stack's tagged resources in a batched plan, and on their own when
/// not listed there. `want`: the tags asked for (which name the stack and env).
async fn tags(ctx: &Ctx, arn: &str, want: &Tags) -> Result<Tags> {
    let listed = super::batch::tagged(ctx, want).await?;
    if let Some(t) = listed.as_ref().and_then(|l| l.get(arn)) {
        return Ok(t.clone());
    }
    let t = ctx
        .sfn
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await;
    let t = t.map_err(|e| api_error("ListTagsForResource", &e))?;
    let pairs = t.tags().iter().map(|t| {
        let key = t.key().unwrap_or_default().to_string();
        (key, t.value().unwrap_or_default().to_string())
    });
    Ok(pairs.collect())
}

/// The machine as DescribeStateMachine has it; None when it does not exist or is being deleted.
async fn describe(
    ctx: &Ctx,
    arn: &str,
) -> Result<Option<aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineOutput>> {
    match ctx
        .sfn
        .describe_state_machine()
        .state_machine_arn(arn)
        .send()
        .await
    {
        Ok(d) if d.status().is_some_and(|s| s.as_str() == "DELETING") => Ok(None),
        Ok(d) => Ok(Some(d)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_state_machine_does_not_exist()) =>
        {
            Ok(None)
        }
        Err(e) => Err(api_error("DescribeStateMachine", &e)),
    }
}

#[async_trait]
impl Kind for StateMachine {
    type Attrs = Attrs;
    const NAME: &'static str = "sfn_state_machine";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name", "type"];
    const OUTPUTS: &'static [&'static str] = &["arn", "name", "version_arn", "alias_arn"];
    const CHANGING_OUTPUTS: &'static [&'static str] = &["version_arn"];

    fn arn_of(ctx: &Ctx, name: &str) -> Option<String> {
        Some(arn(ctx, name))
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        let create = || {
            retry_propagation(ctx.propagation, || {
                ctx.sfn
                    .create_state_machine()
                    .name(&a.name)
                    .role_arn(&a.role_arn)
                    .definition(definition_text(a))
                    .r#type(StateMachineType::from(a.kind.as_str()))
                    .set_tags(Some(sfn_tags(&a.tags)))
                    .publish(a.versions.is_some())
                    .send()
            })
        };
        // a machine of that name still being deleted (a recreate right after a destroy): AWS
        // answers StateMachineDeleting; wait until it is gone rather than fail (asked only
        // then: no call before the create on the way every create takes)
        let mut out = create().await;
        for _ in 0..30 {
            let deleting = out.as_ref().err().and_then(|e| e.as_service_error());
            if !deleting.is_some_and(|s| s.is_state_machine_deleting()) {
                break;
            }
            tracing::info!("state machine {} is still being deleted; waiting", a.name);
            let pause = ctx
                .propagation
                .base
                .max(std::time::Duration::from_millis(50))
                * 4;
            tokio::time::sleep(pause).await;
            out = create().await;
        }
        match out {
            Ok(o) => Ok(versioned(
                arn_and_name(o.state_machine_arn(), &a.name),
                a,
                o.state_machine_version_arn(),
            )),
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

    async fn read(ctx: &Ctx, a: &Attrs, known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let arn = arn(ctx, &a.name);
        if known.is_empty() {
            // looked for by name: one not in the region's list is not there
            let names = super::batch::state_machines(ctx).await?;
            if names.is_some_and(|n| !n.contains(&a.name)) {
                return Ok(None);
            }
        }
        // the machine and its tags at once: one round trip (the tags from the stack's tagged
        // resources in a batched plan, and on their own when not listed there)
        let (d, t) = tokio::join!(describe(ctx, &arn), tags(ctx, &arn, &a.tags));
        let Some(d) = d? else {
            return Ok(None);
        };
        let definition: Value = serde_json::from_str(d.definition()).map_err(|e| {
            Error::aws(format!(
                "state machine {} has an unreadable definition: {e}",
                a.name
            ))
        })?;
        let live = Attrs {
            name: d.name().to_string(),
            role_arn: d.role_arn().to_string(),
            definition,
            kind: d.r#type().as_str().to_string(),
            tags: t?,
            versions: None,
        };
        let newest = match &a.versions {
            Some(_) => newest_version(ctx, &arn).await?,
            None => None,
        };
        let live = Attrs {
            versions: a.versions.clone(),
            ..live
        };
        Ok(Some((
            live,
            versioned(arn_and_name(&arn, &a.name), a, newest.as_deref()),
        )))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        let arn = arn(ctx, &want.name);
        let publish = want.versions.is_some();
        let mut version = None;
        if live.definition != want.definition || live.role_arn != want.role_arn {
            let mut_def = live.definition != want.definition;
            let mut_role = live.role_arn != want.role_arn;
            let out = retry_propagation(ctx.propagation, || {
                let mut req = ctx
                    .sfn
                    .update_state_machine()
                    .state_machine_arn(&arn)
                    .publish(publish);
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
            version = out.state_machine_version_arn().map(str::to_string);
        }
        if let Some(v) = &want.versions {
            if version.is_none() {
                // versions asked for on a machine that has none yet (or no change): its newest,
                // published now if there is none
                version = Some(newest_or_publish(ctx, &arn).await?);
            }
            prune(ctx, &arn, v).await?;
        }
        sync_arn_tags!(ctx.sfn, &arn, &live.tags, &want.tags, |set| sfn_tags(&set)).await?;
        Ok(versioned(
            arn_and_name(&arn, &want.name),
            want,
            version.as_deref(),
        ))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        let arn = arn(ctx, &a.name);
        // executions still running are not torn down under them unless asked
        let running = running_executions(ctx, &arn).await?;
        let mut notes = stop_running(ctx, &a.name, &running).await?;
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
        let gone = || async { Ok(describe(ctx, &arn).await?.is_none().then_some(vec![])) };
        let late = || {
            Error::aws(format!(
                "state machine {} is still being deleted; run again in a minute",
                a.name
            ))
        };
        let mut more = crate::aws::poll_until(ctx, 60, gone, late).await?;
        notes.append(&mut more);
        Ok(notes)
    }
}
