//! Resource kinds: one module per kind, each implementing [`Kind`] with typed attributes, all
//! listed in [`registry`]. The planner and executor only see [`DynKind`], the type-erased form.
//!
//! Conventions every kind follows:
//! - `create` reports a resource that already exists with [`Error::already_exists`] so the
//!   executor can adopt it (crash recovery) instead of failing;
//! - `read` returns `None` when the resource is gone, and otherwise the live attributes in the
//!   same shape as the manifest's (fields that cannot be read back, like a password, are copied
//!   from the attributes asked about);
//! - `delete` treats "not found" as success.

/// Tags as one service's `Tag` list: every SDK has a `Tag` type of its own, built the same way.
macro_rules! sdk_tags {
    ($tag:ty, $tags:expr) => {
        $tags
            .iter()
            .map(|(k, v)| {
                <$tag>::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value set")
            })
            .collect::<Vec<$tag>>()
    };
}

/// `sync_tags` for a service whose TagResource and UntagResource take the resource's ARN;
/// `$tags` makes the tags to set into what its TagResource takes.
macro_rules! sync_arn_tags {
    ($client:expr, $arn:expr, $live:expr, $want:expr, $tags:expr) => {
        sync_tags(
            $live,
            $want,
            ("TagResource", |set| {
                let set = ($tags)(set);
                $client
                    .tag_resource()
                    .resource_arn($arn)
                    .set_tags(Some(set))
                    .send()
            }),
            ("UntagResource", |remove| {
                let untag = $client.untag_resource().resource_arn($arn);
                untag.set_tag_keys(Some(remove)).send()
            }),
        )
    };
}

/// A resource's tags from its service's ListTagsForResource by ARN (whose tags have a key and
/// a value each).
macro_rules! listed_tags {
    ($client:expr, $arn:expr) => {{
        let listed = $client
            .list_tags_for_resource()
            .resource_arn($arn)
            .send()
            .await;
        let listed = listed.map_err(|e| api_error("ListTagsForResource", &e))?;
        let pairs = listed.tags().iter();
        pairs
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect::<Tags>()
    }};
}

pub mod batch;
pub mod datasync;
pub mod dynamodb_table;
pub mod ecr_repository;
pub mod events_connection;
pub mod events_rule;
pub mod events_target;
pub mod iam_group;
pub mod iam_policy;
pub mod iam_policy_attachment;
pub mod iam_role;
pub mod iam_user;
pub mod lambda_function;
pub mod logs_log_group;
pub mod pipes_pipe;
pub mod s3_bucket;
pub mod s3_bucket_notification;
pub mod sfn_alias;
pub mod sfn_state_machine;
pub mod shared;
pub mod sns_subscription;
pub mod sns_topic;
pub mod sqs;
#[cfg(test)]
pub mod test_thing;

use crate::aws::Ctx;
use crate::error::{Error, Result};
use crate::throttle::Use;
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::marker::PhantomData;

pub type Outputs = BTreeMap<String, Value>;
pub type Tags = BTreeMap<String, String>;

/// How a live resource found by its expected name (state lost, or never written) is proven to
/// be this stack's and env's own. Nothing that cannot be proven is modified or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Its `deploy:stack` / `deploy:env` tags.
    Tags,
    /// A marker `deploy:stack=S deploy:env=E` the loader puts in its description (kinds with
    /// a description and no tags).
    Description,
    /// It lives on, or joins, resources of ours: every resource it depends on is ours (the
    /// attachment of our policy to our role, the target on our rule, ...).
    Parents,
    /// Nothing on it can say (an IAM group has neither tags nor description): only recorded
    /// state, or `deploy import`, makes it ours.
    Unprovable,
}

/// The description marker of `Owner::Description`.
pub fn owner_marker(stack: &str, env: &str) -> String {
    format!("[deploy:stack={stack} deploy:env={env}]")
}

/// `attrs` without what marks them as a stack's own: the `deploy:*` tags, the owner marker in
/// the description (what `[[removed]]` takes off a resource it leaves in AWS).
pub fn unmarked(kind: &dyn DynKind, attrs: &Value, stack: &str, env: &str) -> Value {
    let mut v = attrs.clone();
    if let Some(tags) = v.get_mut("tags").and_then(|t| t.as_object_mut()) {
        tags.retain(|k, _| !k.starts_with("deploy:"));
    }
    if kind.owner() == Owner::Description {
        if let Some(Value::String(d)) = v.get_mut("description") {
            let marker = owner_marker(stack, env);
            *d = d.replace(&marker, "").trim_end().to_string();
        }
    }
    v
}

/// The attributes of a kind that has nothing but a name and tags (a log group, a topic, a
/// bucket).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NameAndTags {
    pub name: String,
    #[serde(default)]
    pub tags: Tags,
}

#[async_trait]
pub trait Kind: Send + Sync + 'static {
    type Attrs: Serialize + DeserializeOwned + Clone + Send + Sync + std::fmt::Debug;
    /// The name used in manifests (`kind = "iam_role"`).
    const NAME: &'static str;
    /// Whether the kind carries tags (the loader then adds stack, env and published tags).
    const TAGGABLE: bool;
    /// How a live one is proven ours (default: by tags when it has them, else by parents).
    const OWNER: Owner = if Self::TAGGABLE {
        Owner::Tags
    } else {
        Owner::Parents
    };
    /// Attributes (JSON pointers) that are secret: sealed in state, masked wherever shown.
    const SENSITIVE: &'static [&'static str] = &[];
    /// Attributes whose change needs the resource replaced (delete, then create).
    const REPLACE_ON: &'static [&'static str] = &[];
    /// The outputs other resources may reference (`${id.arn}`): most kinds have an ARN and a
    /// name.
    const OUTPUTS: &'static [&'static str] = &["arn", "name"];
    /// Outputs an update changes (a state machine's newest version): what references them is
    /// planned as "known after apply" when this resource is updated.
    const CHANGING_OUTPUTS: &'static [&'static str] = &[];
    /// Whether its references only name what they reference (an IAM policy's document): it
    /// need not wait for a resource whose referenced outputs are known before it exists.
    const NAMES_ONLY: bool = false;

    /// The ARN a resource called `name` gets, where it follows from the name (None: only
    /// the create's answer tells).
    fn arn_of(_ctx: &Ctx, _name: &str) -> Option<String> {
        None
    }

    /// The name people know the resource by (default: its `name` attribute).
    fn display_name(a: &Self::Attrs) -> String {
        let v = serde_json::to_value(a).unwrap_or_default();
        v["name"].as_str().unwrap_or_default().to_string()
    }
    /// Checks what can be checked, and prepares what can be prepared, before anything in the
    /// stack is changed (e.g. a container engine answers, a package builds).
    async fn preflight(_ctx: &Ctx, _a: &Self::Attrs) -> Result<()> {
        Ok(())
    }
    async fn create(ctx: &Ctx, a: &Self::Attrs) -> Result<Outputs>;
    /// `known`: the outputs recorded for it (empty when adopting: find it by name).
    async fn read(
        ctx: &Ctx,
        a: &Self::Attrs,
        known: &Outputs,
    ) -> Result<Option<(Self::Attrs, Outputs)>>;
    /// Brings `live` to `want` in place (only attributes outside REPLACE_ON differ).
    async fn update(
        ctx: &Ctx,
        live: &Self::Attrs,
        want: &Self::Attrs,
        known: &Outputs,
    ) -> Result<Outputs>;
    /// Returns notes worth telling the user (e.g. "emptied 12 objects first").
    async fn delete(ctx: &Ctx, a: &Self::Attrs, known: &Outputs) -> Result<Notes>;
}

pub type Notes = Vec<String>;

/// The type-erased face of a kind, over JSON attributes.
#[async_trait]
pub trait DynKind: Send + Sync {
    fn name(&self) -> &'static str;
    fn taggable(&self) -> bool;
    fn owner(&self) -> Owner;
    fn sensitive(&self) -> &'static [&'static str];
    fn replace_on(&self) -> &'static [&'static str];
    fn outputs(&self) -> &'static [&'static str];
    fn changing_outputs(&self) -> &'static [&'static str];
    fn names_only(&self) -> bool;
    fn arn_of(&self, ctx: &Ctx, name: &str) -> Option<String>;
    /// Checks that attributes have the kind's shape; returns them normalised (defaults filled).
    fn check(&self, attrs: &Value) -> Result<Value>;
    fn display_name(&self, attrs: &Value) -> String;
    async fn preflight(&self, ctx: &Ctx, attrs: &Value) -> Result<()>;
    async fn create(&self, ctx: &Ctx, attrs: &Value) -> Result<Outputs>;
    async fn read(
        &self,
        ctx: &Ctx,
        attrs: &Value,
        known: &Outputs,
    ) -> Result<Option<(Value, Outputs)>>;
    async fn update(
        &self,
        ctx: &Ctx,
        live: &Value,
        want: &Value,
        known: &Outputs,
    ) -> Result<Outputs>;
    async fn delete(&self, ctx: &Ctx, attrs: &Value, known: &Outputs) -> Result<Notes>;
}

struct Erased<K>(PhantomData<K>);

fn typed<K: Kind>(v: &Value) -> Result<K::Attrs> {
    serde_path_to_error::deserialize(v.clone()).map_err(|e| {
        let attr = e.path().to_string();
        let mut err = Error::user(format!("{}: {}", K::NAME, e.inner()));
        if attr != "." {
            err.attr = Some(attr);
        }
        err
    })
}

fn untyped<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("attributes serialise")
}

#[async_trait]
impl<K: Kind> DynKind for Erased<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }
    fn taggable(&self) -> bool {
        K::TAGGABLE
    }
    fn owner(&self) -> Owner {
        K::OWNER
    }
    fn sensitive(&self) -> &'static [&'static str] {
        K::SENSITIVE
    }
    fn replace_on(&self) -> &'static [&'static str] {
        K::REPLACE_ON
    }
    fn outputs(&self) -> &'static [&'static str] {
        K::OUTPUTS
    }
    fn changing_outputs(&self) -> &'static [&'static str] {
        K::CHANGING_OUTPUTS
    }
    fn names_only(&self) -> bool {
        K::NAMES_ONLY
    }
    fn arn_of(&self, ctx: &Ctx, name: &str) -> Option<String> {
        K::arn_of(ctx, name)
    }
    fn check(&self, attrs: &Value) -> Result<Value> {
        typed::<K>(attrs).map(|a| untyped(&a))
    }
    fn display_name(&self, attrs: &Value) -> String {
        typed::<K>(attrs)
            .map(|a| K::display_name(&a))
            .unwrap_or_default()
    }
    async fn preflight(&self, ctx: &Ctx, attrs: &Value) -> Result<()> {
        K::preflight(ctx, &typed::<K>(attrs)?).await
    }
    async fn create(&self, ctx: &Ctx, attrs: &Value) -> Result<Outputs> {
        let _slot = slot::<K>(Use::Write).await;
        K::create(ctx, &typed::<K>(attrs)?).await
    }
    async fn read(
        &self,
        ctx: &Ctx,
        attrs: &Value,
        known: &Outputs,
    ) -> Result<Option<(Value, Outputs)>> {
        let _slot = slot::<K>(Use::Read).await;
        Ok(K::read(ctx, &typed::<K>(attrs)?, known)
            .await?
            .map(|(a, o)| (untyped(&a), o)))
    }
    async fn update(
        &self,
        ctx: &Ctx,
        live: &Value,
        want: &Value,
        known: &Outputs,
    ) -> Result<Outputs> {
        let _slot = slot::<K>(Use::Write).await;
        K::update(ctx, &typed::<K>(live)?, &typed::<K>(want)?, known).await
    }
    async fn delete(&self, ctx: &Ctx, attrs: &Value, known: &Outputs) -> Result<Notes> {
        let _slot = slot::<K>(Use::Write).await;
        K::delete(ctx, &typed::<K>(attrs)?, known).await
    }
}

/// A place among the calls in flight to the kind's service (the service is the first word of
/// the kind's name: `iam_role` → `iam`), held for the whole operation.
async fn slot<K: Kind>(use_: Use) -> crate::throttle::Permit<'static> {
    let service = K::NAME.split('_').next().unwrap_or(K::NAME);
    crate::throttle::limiter(service, use_).acquire().await
}

fn erased<K: Kind>() -> &'static dyn DynKind {
    Box::leak(Box::new(Erased::<K>(PhantomData)))
}

/// Every kind the tool knows, by manifest name.
pub fn registry() -> &'static BTreeMap<&'static str, &'static dyn DynKind> {
    static REG: std::sync::OnceLock<BTreeMap<&'static str, &'static dyn DynKind>> =
        std::sync::OnceLock::new();
    REG.get_or_init(|| {
        let kinds: Vec<&'static dyn DynKind> = vec![
            erased::<iam_user::IamUser>(),
            erased::<iam_role::IamRole>(),
            erased::<iam_policy::IamPolicy>(),
            erased::<iam_policy_attachment::UserPolicyAttachment>(),
            erased::<iam_policy_attachment::RolePolicyAttachment>(),
            erased::<events_connection::EventsConnection>(),
            erased::<events_rule::EventsRule>(),
            erased::<events_target::EventsTarget>(),
            erased::<sfn_state_machine::StateMachine>(),
            erased::<sfn_alias::StateMachineAlias>(),
            erased::<iam_group::IamGroup>(),
            erased::<sns_topic::SnsTopic>(),
            erased::<sns_subscription::SnsSubscription>(),
            erased::<s3_bucket::S3Bucket>(),
            erased::<datasync::LocationS3>(),
            erased::<datasync::Task>(),
            erased::<sqs::Queue>(),
            erased::<sqs::QueuePolicy>(),
            erased::<s3_bucket_notification::BucketNotification>(),
            erased::<dynamodb_table::Table>(),
            erased::<logs_log_group::LogGroup>(),
            erased::<ecr_repository::Repository>(),
            erased::<pipes_pipe::Pipe>(),
            erased::<lambda_function::Function>(),
        ];
        kinds.into_iter().map(|k| (k.name(), k)).collect()
    })
}

/// The kind a manifest names; in tests, also the in-memory `test_thing` (never listed among
/// the kinds people may use).
pub fn lookup(kind: &str) -> Option<&'static dyn DynKind> {
    #[cfg(test)]
    if kind == "test_thing" {
        static THING: std::sync::OnceLock<&'static dyn DynKind> = std::sync::OnceLock::new();
        return Some(*THING.get_or_init(erased::<test_thing::Thing>));
    }
    registry().get(kind).copied()
}

type SdkResult<T, E> = std::result::Result<
    T,
    aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
>;

/// Brings a resource's tags from `live` to `want`, the one way every kind does it: `tag` is
/// called (with its operation's name, for errors) with the tags to add or change, `untag` with
/// the keys to remove, each only when there is something to do.
pub async fn sync_tags<F1, T1, E1, F2, T2, E2>(
    live: &Tags,
    want: &Tags,
    (tag_op, tag): (&str, impl FnOnce(Tags) -> F1),
    (untag_op, untag): (&str, impl FnOnce(Vec<String>) -> F2),
) -> Result<()>
where
    F1: Future<Output = SdkResult<T1, E1>>,
    F2: Future<Output = SdkResult<T2, E2>>,
    E1: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    E2: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let (set, remove) = tag_changes(live, want);
    if !set.is_empty() {
        tag(set)
            .await
            .map_err(|e| crate::aws::api_error(tag_op, &e))?;
    }
    if !remove.is_empty() {
        untag(remove)
            .await
            .map_err(|e| crate::aws::api_error(untag_op, &e))?;
    }
    Ok(())
}

/// An IAM create's answer: the outputs of what was made (its ARN and name); one of the same
/// name already there is the executor's to adopt, or to refuse when it is not ours.
pub fn iam_created<T, E>(
    what: &str,
    name: &str,
    op: &str,
    out: SdkResult<T, E>,
    arn: impl FnOnce(&T) -> Option<String>,
) -> Result<Outputs>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    match out {
        Ok(o) => Ok(arn_and_name(&arn(&o).unwrap_or_default(), name)),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("EntityAlreadyExists") => {
            Err(Error::already_exists(format!(
                "{what} {name} already exists"
            )))
        }
        Err(e) => Err(crate::aws::api_error(op, &e)),
    }
}

/// An IAM read's answer: what was asked for, or nothing when IAM has no such entity.
pub fn iam_found<T, E>(op: &str, out: SdkResult<T, E>) -> Result<Option<T>>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    match out {
        Ok(o) => Ok(Some(o)),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(crate::aws::api_error(op, &e)),
    }
}

/// The tag changes that bring `live` to `want`: (to set, keys to remove).
pub fn tag_changes(live: &Tags, want: &Tags) -> (Tags, Vec<String>) {
    let set = want
        .iter()
        .filter(|(k, v)| live.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = live
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// A trust policy letting one service principal assume a role, on conditions (none when empty).
pub fn trust_policy(service: &str, condition: serde_json::Map<String, Value>) -> Value {
    let mut st = serde_json::json!({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"});
    if !condition.is_empty() {
        st["Condition"] = Value::Object(condition);
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": [st]})
}

/// IAM returns policy documents URL-encoded; accept both forms.
pub fn decode_policy(doc: &str) -> Result<Value> {
    let text = if doc.trim_start().starts_with('{') {
        doc.to_string()
    } else {
        percent_encoding::percent_decode_str(doc)
            .decode_utf8_lossy()
            .to_string()
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::aws(format!("unreadable policy document from IAM: {e}")))
}

/// The outputs most kinds have: `arn` and `name`.
/// The ARN of `resource` of `service` in the account and region deployed to.
pub fn regional_arn(ctx: &Ctx, service: &str, resource: &str) -> String {
    let (partition, region, account) = (&ctx.partition, &ctx.region, &ctx.account_id);
    format!("arn:{partition}:{service}:{region}:{account}:{resource}")
}

pub fn arn_and_name(arn: &str, name: &str) -> Outputs {
    Outputs::from([("arn".into(), s(arn)), ("name".into(), s(name))])
}

pub fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bumped by hand with each new kind, so that a kind left out of the registry is noticed.
    const KIND_COUNT: usize = 24;

    #[test]
    fn every_kind_is_registered_once_with_its_outputs() {
        let reg = registry();
        assert_eq!(reg.len(), KIND_COUNT);
        for (name, k) in reg {
            assert_eq!(*name, k.name());
            assert!(!k.outputs().is_empty(), "{name} exposes no outputs");
        }
    }

    #[test]
    fn tag_changes_set_and_remove() {
        let live = Tags::from([("a".into(), "1".into()), ("b".into(), "2".into())]);
        let want = Tags::from([("a".into(), "1".into()), ("c".into(), "3".into())]);
        let (set, remove) = tag_changes(&live, &want);
        assert_eq!(set, Tags::from([("c".into(), "3".into())]));
        assert_eq!(remove, vec!["b".to_string()]);
    }

    #[test]
    fn url_encoded_policies_decode() {
        let v = decode_policy("%7B%22Version%22%3A%222012-10-17%22%7D").unwrap();
        assert_eq!(v, serde_json::json!({"Version": "2012-10-17"}));
    }

    #[test]
    fn kinds_reject_unknown_and_missing_fields() {
        let role = lookup("iam_role").unwrap();
        assert!(
            role.check(
                &serde_json::json!({"name": "r", "service": "states.amazonaws.com", "bogus": 1})
            )
            .is_err()
        );
        assert!(
            role.check(&serde_json::json!({"service": "states.amazonaws.com"}))
                .is_err()
        );
        assert!(
            role.check(&serde_json::json!({"name": "r", "service": "states.amazonaws.com"}))
                .is_ok()
        );
    }
}
