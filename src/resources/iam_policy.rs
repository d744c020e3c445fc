//! `iam_policy`: a customer-managed policy. A document change creates a new default version
//! (deleting the oldest non-default one when IAM's limit of five is reached); destroy deletes
//! every non-default version first, as IAM requires.

use super::iam_user::{from_iam_tags, iam_tags, root_path};
use super::{
    Kind, Notes, Outputs, Tags, arn_and_name, decode_policy, iam_created, iam_found, sync_tags,
};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub description: String,
    /// The policy statements, as IAM writes them (`Sid`, `Effect`, `Action`, `Resource`, ...).
    pub statement: Vec<Value>,
    #[serde(default)]
    pub tags: Tags,
}

impl Attrs {
    pub fn document(&self) -> Value {
        json!({"Version": "2012-10-17", "Statement": self.statement})
    }
}

pub struct IamPolicy;

fn outputs(arn: &str, name: &str, version: &str) -> Outputs {
    let mut o = arn_and_name(arn, name);
    o.insert("version".into(), Value::String(version.into()));
    o
}

fn arn(ctx: &Ctx, a: &Attrs) -> String {
    format!(
        "arn:{}:iam::{}:policy{}{}",
        ctx.partition, ctx.account_id, a.path, a.name
    )
}

/// The statements of a policy document as IAM returns it (a single one as a list of one).
fn statement_of(doc: Option<&str>) -> Result<Vec<Value>> {
    let doc = doc.map(decode_policy).transpose()?.unwrap_or_default();
    Ok(match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Null => vec![],
        one => vec![one.clone()],
    })
}

/// A policy read from IAM's account listing (`batch::iam`): its tags from the stack's tagged
/// resources, or on their own where the tagging API does not list it.
async fn read_batched(
    ctx: &Ctx,
    a: &Attrs,
    iam: &super::batch::Iam,
) -> Result<Option<(Attrs, Outputs)>> {
    let arn = arn(ctx, a);
    let Some(p) = iam.policies.get(&arn) else {
        return Ok(None);
    };
    let listed = super::batch::tagged(ctx, &a.tags).await?;
    let tags = match listed.as_ref().and_then(|l| l.get(&arn)) {
        Some(t) => t.clone(),
        None => {
            let t = ctx.iam.list_policy_tags().policy_arn(&arn).send().await;
            from_iam_tags(t.map_err(|e| api_error("ListPolicyTags", &e))?.tags())
        }
    };
    let document = match &p.document {
        Some(d) => Some(d.clone()),
        None => {
            let v = ctx.iam.get_policy_version().policy_arn(&arn);
            let v = v.version_id(&p.default_version).send().await;
            let v = v.map_err(|e| api_error("GetPolicyVersion", &e))?;
            v.policy_version()
                .and_then(|p| p.document())
                .map(str::to_string)
        }
    };
    // the ARN holds the path and name it was found by (some emulators leave the name out)
    let live = Attrs {
        name: a.name.clone(),
        path: a.path.clone(),
        description: p.description.clone().unwrap_or_default(),
        statement: statement_of(document.as_deref())?,
        tags,
    };
    Ok(Some((live, outputs(&arn, &a.name, &p.default_version))))
}

#[async_trait]
impl Kind for IamPolicy {
    type Attrs = Attrs;
    const NAME: &'static str = "iam_policy";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name", "path", "description"];
    /// `version`: the default version's id (the document read first when planning).
    const OUTPUTS: &'static [&'static str] = &["arn", "name", "version"];
    /// A policy's document names what it grants access to; IAM takes it before they exist.
    const NAMES_ONLY: bool = true;

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        let mut req = ctx
            .iam
            .create_policy()
            .policy_name(&a.name)
            .path(&a.path)
            .policy_document(a.document().to_string())
            .set_tags(Some(iam_tags(&a.tags)));
        if !a.description.is_empty() {
            req = req.description(&a.description);
        }
        let out = req.send().await;
        let version = out
            .as_ref()
            .ok()
            .and_then(|o| o.policy()?.default_version_id())
            .unwrap_or("v1")
            .to_string();
        let mut outs = iam_created("IAM policy", &a.name, "CreatePolicy", out, |o| {
            o.policy().and_then(|p| p.arn()).map(str::to_string)
        })?;
        outs.insert("version".into(), Value::String(version));
        Ok(outs)
    }

    async fn read(ctx: &Ctx, a: &Attrs, known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        if let Some(iam) = super::batch::iam(ctx).await? {
            return read_batched(ctx, a, &iam).await;
        }
        let arn = arn(ctx, a);
        // The policy, its tags and its document at once: the document of the default version
        // recorded (v1 when none is), asked again only when IAM's default is another one.
        let guess = known
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("v1")
            .to_string();
        let get_version = |id: String| {
            ctx.iam
                .get_policy_version()
                .policy_arn(&arn)
                .version_id(id)
                .send()
        };
        let (out, tags, guessed) = tokio::join!(
            ctx.iam.get_policy().policy_arn(&arn).send(),
            ctx.iam.list_policy_tags().policy_arn(&arn).send(),
            get_version(guess.clone())
        );
        let Some(o) = iam_found("GetPolicy", out)? else {
            return Ok(None);
        };
        let policy = o
            .policy
            .ok_or_else(|| Error::aws("GetPolicy returned no policy"))?;
        let version = policy.default_version_id().unwrap_or("v1").to_string();
        let v = if version == guess {
            guessed
        } else {
            get_version(version.clone()).await
        }
        .map_err(|e| api_error("GetPolicyVersion", &e))?;
        let doc = v.policy_version().and_then(|p| p.document());
        let tags = tags.map_err(|e| api_error("ListPolicyTags", &e))?;
        let live = Attrs {
            name: policy.policy_name().unwrap_or_default().to_string(),
            path: policy.path().unwrap_or("/").to_string(),
            description: policy.description().unwrap_or_default().to_string(),
            statement: statement_of(doc)?,
            tags: from_iam_tags(tags.tags()),
        };
        Ok(Some((live, outputs(&arn, &a.name, &version))))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, known: &Outputs) -> Result<Outputs> {
        let arn = arn(ctx, want);
        let mut version = known
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("v1")
            .to_string();
        if live.statement != want.statement {
            version = new_version(ctx, &arn, want).await?.unwrap_or(version);
        }
        sync_tags(
            &live.tags,
            &want.tags,
            ("TagPolicy", |set| {
                ctx.iam
                    .tag_policy()
                    .policy_arn(&arn)
                    .set_tags(Some(iam_tags(&set)))
                    .send()
            }),
            ("UntagPolicy", |remove| {
                ctx.iam
                    .untag_policy()
                    .policy_arn(&arn)
                    .set_tag_keys(Some(remove))
                    .send()
            }),
        )
        .await?;
        Ok(outputs(&arn, &want.name, &version))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        let arn = arn(ctx, a);
        // One call when the policy has only its default version (most do); IAM refuses it
        // (DeleteConflict) while older versions remain: those go first, then the policy.
        let delete = || ctx.iam.delete_policy().policy_arn(&arn).send();
        match delete().await {
            Ok(_) => return Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                return Ok(vec![]);
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_delete_conflict_exception()) => {}
            Err(e) => return Err(api_error("DeletePolicy", &e)),
        }
        let versions = match ctx.iam.list_policy_versions().policy_arn(&arn).send().await {
            Ok(v) => v,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                return Ok(vec![]);
            }
            Err(e) => return Err(api_error("ListPolicyVersions", &e)),
        };
        for v in versions
            .versions()
            .iter()
            .filter(|v| !v.is_default_version())
        {
            if let Some(id) = v.version_id() {
                ctx.iam
                    .delete_policy_version()
                    .policy_arn(&arn)
                    .version_id(id)
                    .send()
                    .await
                    .map_err(|e| api_error("DeletePolicyVersion", &e))?;
            }
        }
        match delete().await {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("DeletePolicy", &e)),
        }
    }
}

/// A new default version of the policy with the desired document (the oldest other one deleted
/// first when IAM's five are taken); its id.
async fn new_version(ctx: &Ctx, arn: &str, want: &Attrs) -> Result<Option<String>> {
    let versions = ctx
        .iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| api_error("ListPolicyVersions", &e))?;
    let mut old: Vec<_> = versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
        .collect();
    if versions.versions().len() >= 5 {
        old.sort_by_key(|v| v.create_date().map(|d| d.secs()).unwrap_or(0));
        if let Some(oldest) = old.first().and_then(|v| v.version_id()) {
            ctx.iam
                .delete_policy_version()
                .policy_arn(arn)
                .version_id(oldest)
                .send()
                .await
                .map_err(|e| api_error("DeletePolicyVersion", &e))?;
        }
    }
    let made = ctx
        .iam
        .create_policy_version()
        .policy_arn(arn)
        .policy_document(want.document().to_string())
        .set_as_default(true)
        .send()
        .await
        .map_err(|e| api_error("CreatePolicyVersion", &e))?;
    Ok(made
        .policy_version()
        .and_then(|v| v.version_id())
        .map(str::to_string))
}
