//! Recorded state: one JSON document per stack and env, written after every single resource
//! operation, and locked so two runs on the same stack and env cannot interleave. Two
//! backends behind one `Store`: a folder (`<project>/.deploy/state/<env>/<stack>.json`, written
//! atomically, an OS file lock beside it; `dir.rs`) and S3 (`s3://bucket/prefix`, shared by many
//! machines: a lock object created with `If-None-Match: *`, writes with `If-Match` on the ETag,
//! server-side encryption; `s3.rs`). Both pass the same conformance checks.
//!
//! An entry is written *before* a create is attempted (status `pending`) so that a crash or
//! Ctrl-C between the API call and the record can always be recovered: `up` adopts the
//! resource by its deterministic name, `destroy` deletes it.

mod dir;
mod s3;

use crate::error::{Class, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

pub const FORMAT_VERSION: u32 = 1;

/// An environment as `deploy envs` shows it: what the state backend records of its stacks,
/// and what the account tags as its.
#[derive(Debug, Default, Serialize)]
pub struct Env {
    pub env: String,
    pub stacks: Vec<String>,
    pub resources: usize,
    /// Seconds since the Unix epoch.
    pub created: Option<u64>,
    pub last_up: Option<u64>,
    pub by: Option<String>,
    /// The branch it was made from (`up --env-from-branch`).
    pub branch: Option<String>,
    pub expires: Option<u64>,
    /// Recorded in the state backend (false: found by its tags only, its state lost).
    pub state: bool,
    /// Resources that carry its `deploy:env` tag (services the tagging API covers; not IAM).
    pub tagged: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A create was about to be attempted; it may or may not exist.
    Pending,
    /// Exists, with the recorded attributes and outputs.
    Created,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub kind: String,
    pub status: Status,
    /// The attributes last applied (resolved, typed per kind).
    pub attrs: Value,
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    /// Resources this one depended on when applied (destroy order for removed resources).
    #[serde(default)]
    pub depends_on: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Target {
    pub account_id: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

impl Target {
    /// Where this run points.
    pub fn of(ctx: &crate::aws::Ctx) -> Target {
        Target {
            account_id: ctx.account_id.clone(),
            region: ctx.region.clone(),
            endpoint: ctx.endpoint.clone(),
        }
    }
}

impl Entry {
    /// A resource that exists and is ours, as found or made.
    pub fn created(
        kind: &str,
        attrs: Value,
        outputs: BTreeMap<String, Value>,
        depends_on: BTreeSet<String>,
    ) -> Entry {
        Entry {
            kind: kind.into(),
            status: Status::Created,
            attrs,
            outputs,
            depends_on,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackState {
    pub version: u32,
    pub stack: String,
    pub env: String,
    pub target: Option<Target>,
    /// Stack outputs as last applied.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub resources: BTreeMap<String, Entry>,
    /// Who brought it up, when, and for how long (an environment's lifetime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    /// Seconds since the Unix epoch of the first `up`, and of the last.
    pub created: u64,
    pub updated: u64,
    /// "alice on ci-runner-7" of the last `up`.
    pub by: String,
    /// `up --ttl`: the environment expires this long after its last `up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// The branch the env was made from (`up --env-from-branch`): `sweep
    /// --closed-pull-requests` removes it once no open pull request has that branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

impl Meta {
    pub fn expires(&self) -> Option<u64> {
        self.ttl_secs.map(|t| self.updated + t)
    }
}

impl StackState {
    pub fn empty(stack: &str, env: &str) -> Self {
        StackState {
            version: FORMAT_VERSION,
            stack: stack.into(),
            env: env.into(),
            target: None,
            outputs: BTreeMap::new(),
            resources: BTreeMap::new(),
            meta: None,
        }
    }
}

/// A stack's state as the executor changes it, one entry at a time, with each entry's text
/// kept: a write after one change renders that entry only and joins the kept texts, so what
/// a run spends on recording grows with what it changes, not with the state's size times the
/// number of writes. Its text is the state's pretty JSON, as `serde_json` writes it.
pub struct Document {
    state: StackState,
    /// Each entry as it appears in the document (indented to its place).
    texts: BTreeMap<String, String>,
}

impl Document {
    pub fn new(state: StackState) -> Document {
        let texts = state
            .resources
            .iter()
            .map(|(id, e)| (id.clone(), entry_text(e)))
            .collect();
        Document { state, texts }
    }

    pub fn state(&self) -> &StackState {
        &self.state
    }

    pub fn put(&mut self, id: &str, e: Entry) {
        self.texts.insert(id.to_string(), entry_text(&e));
        self.state.resources.insert(id.to_string(), e);
    }

    pub fn remove(&mut self, id: &str) {
        self.texts.remove(id);
        self.state.resources.remove(id);
    }

    pub fn set_target(&mut self, target: Target) {
        self.state.target = Some(target);
    }

    pub fn set_outputs(&mut self, outputs: BTreeMap<String, Value>) {
        self.state.outputs = outputs;
    }

    /// The document to write; None when nothing is recorded (the stack is gone).
    pub fn text(&self) -> Result<Option<String>> {
        if self.state.resources.is_empty() {
            return Ok(None);
        }
        let head = StackState {
            resources: BTreeMap::new(),
            ..self.state.clone_head()
        };
        let head =
            serde_json::to_string_pretty(&head).map_err(|e| Error::internal(e.to_string()))?;
        // the head written with no resources has them as `{}` at its top level (a JSON string
        // cannot hold a line break, so this is the key's one place)
        const EMPTY: &str = "\n  \"resources\": {}";
        let at = head
            .find(EMPTY)
            .ok_or_else(|| Error::internal("state document without its resources"))?;
        let size: usize = self.texts.iter().map(|(k, t)| k.len() + t.len() + 16).sum();
        let mut out = String::with_capacity(head.len() + size);
        out.push_str(&head[..at]);
        out.push_str("\n  \"resources\": {");
        for (i, (id, text)) in self.texts.iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            out.push_str(&serde_json::to_string(id).map_err(|e| Error::internal(e.to_string()))?);
            out.push_str(": ");
            out.push_str(text);
        }
        out.push_str("\n  }");
        out.push_str(&head[at + EMPTY.len()..]);
        Ok(Some(out))
    }
}

/// An entry's pretty JSON, indented to its place in the document (two levels down).
fn entry_text(e: &Entry) -> String {
    let text = serde_json::to_string_pretty(e).unwrap_or_default();
    text.replace('\n', "\n    ")
}

impl StackState {
    /// Everything but the resources.
    fn clone_head(&self) -> StackState {
        StackState {
            version: self.version,
            stack: self.stack.clone(),
            env: self.env.clone(),
            target: self.target.clone(),
            outputs: self.outputs.clone(),
            resources: BTreeMap::new(),
            meta: self.meta.clone(),
        }
    }
}

/// Who holds a lock, and since when: written into the lock (object or file) so that a run
/// that finds it taken can say by whom.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub who: String,
    pub host: String,
    pub pid: u32,
    pub command: String,
    /// Seconds since the Unix epoch.
    pub since: u64,
    /// An S3 lock's lease: its holder renews it (`renewed`, seconds since the epoch) while it
    /// runs; one not renewed for this long is taken over by the next run. None: no lease (a
    /// folder lock, which dies with its process; or a lock of an older version: `unlock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed: Option<u64>,
}

impl Holder {
    pub fn me(command: &str) -> Holder {
        let who = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "someone".into());
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown host".into());
        Holder {
            who,
            host,
            pid: std::process::id(),
            command: command.to_string(),
            since: now_secs(),
            lease_secs: None,
            renewed: None,
        }
    }

    /// How long ago its lease ran out, if it did.
    pub fn expired_for(&self) -> Option<u64> {
        let end = self.renewed? + self.lease_secs?;
        let now = now_secs();
        (now > end).then(|| now - end)
    }

    /// "alice on ci-runner-7 (pid 123, `deploy up`), 42 s ago"
    pub fn describe(&self) -> String {
        let age = now_secs().saturating_sub(self.since);
        let age = if age < 120 {
            format!("{age} s")
        } else if age < 7200 {
            format!("{} min", age / 60)
        } else {
            format!("{} h", age / 3600)
        };
        let lease = match (self.lease_secs, self.renewed) {
            (Some(l), Some(r)) => format!(
                ", lease renewed {} s ago for {l} s",
                now_secs().saturating_sub(r)
            ),
            _ => String::new(),
        };
        format!(
            "{} on {} (pid {}, `deploy {}`), {age} ago{lease}",
            self.who, self.host, self.pid, self.command
        )
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where state lives: a folder, or an S3 bucket and prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// `s3://bucket/prefix` or a folder path.
    pub fn parse(url: &str) -> Result<Location> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::user(format!("state URL {url:?} names no bucket"))
                    .help("write it as s3://BUCKET/PREFIX"));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if url.contains("://") {
            return Err(Error::user(format!(
                "state URL {url:?}: only folders and s3://BUCKET/PREFIX are supported"
            )));
        }
        Ok(Location::Dir(PathBuf::from(url)))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// The state backend.
pub enum Store {
    Dir(dir::DirStore),
    S3(s3::S3Store),
}

impl Store {
    /// A store at `location`; for S3, the client is made from these AWS options when first used.
    /// `lease`: how long an S3 lock outlives its holder's last renewal.
    pub fn open(location: Location, aws: &crate::aws::AwsOptions, lease: Duration) -> Store {
        match location {
            Location::Dir(root) => Store::Dir(dir::DirStore::new(root)),
            Location::S3 { bucket, prefix } => {
                Store::S3(s3::S3Store::new(bucket, prefix, aws.clone(), lease))
            }
        }
    }

    #[cfg(test)]
    pub fn new(root: PathBuf) -> Self {
        Store::Dir(dir::DirStore::new(root))
    }

    pub async fn load(&self, stack: &str, env: &str) -> Result<StackState> {
        let (text, at) = match self {
            Store::Dir(d) => (
                d.read(stack, env)?,
                d.path(stack, env).display().to_string(),
            ),
            Store::S3(s) => (s.read(stack, env).await?, s.url_of(stack, env)),
        };
        let Some(text) = text else {
            return Ok(StackState::empty(stack, env));
        };
        parse(&text, &at, stack, env)
    }

    /// Writes the whole stack state; an empty one removes it (the stack is no longer deployed).
    pub async fn save(&self, st: &StackState) -> Result<()> {
        let text = if st.resources.is_empty() {
            None
        } else {
            Some(serde_json::to_string_pretty(st).map_err(|e| Error::internal(e.to_string()))?)
        };
        self.write(&st.stack, &st.env, text.as_deref()).await
    }

    /// Writes a stack state's text (a `Document`'s); None removes it.
    pub async fn write(&self, stack: &str, env: &str, text: Option<&str>) -> Result<()> {
        match self {
            Store::Dir(d) => d.write(stack, env, text),
            Store::S3(s) => s.write(stack, env, text).await,
        }
    }

    /// Keeps `text` (a stack's state before a repair) as its backup, beside the state:
    /// `<stack>.json.backup` in the folder or the bucket (encrypted like the state). Returns
    /// where it is.
    pub async fn backup(&self, stack: &str, env: &str, text: &str) -> Result<String> {
        match self {
            Store::Dir(d) => d.backup(stack, env, text),
            Store::S3(s) => s.backup(stack, env, text).await,
        }
    }

    /// Every (env, stack) with recorded state, sorted.
    pub async fn list(&self) -> Result<Vec<(String, String)>> {
        let mut out = match self {
            Store::Dir(d) => d.list()?,
            Store::S3(s) => s.list().await?,
        };
        out.sort();
        Ok(out)
    }

    /// Takes the lock of one stack and env. When another run holds it, waits up to `wait`
    /// (polling), then says who holds it and since when.
    #[cfg(test)]
    pub async fn lock(
        &self,
        stack: &str,
        env: &str,
        command: &str,
        wait: Duration,
    ) -> Result<Lock> {
        let mut locks = self
            .lock_all(&[stack.to_string()], env, command, wait)
            .await?;
        Ok(locks.pop().expect("one lock asked for"))
    }

    /// Takes the locks of several stacks of one env at once (one round trip, not one per
    /// stack), all or none: when another run holds any of them, the ones taken are released
    /// before waiting, so two runs never wait on each other in a circle. Waits up to `wait`
    /// (polling), then says who holds it and since when. The locks come in `stacks`' order.
    pub async fn lock_all(
        &self,
        stacks: &[String],
        env: &str,
        command: &str,
        wait: Duration,
    ) -> Result<Vec<Lock>> {
        let me = Holder::me(command);
        let deadline = std::time::Instant::now() + wait;
        let mut delay = Duration::from_millis(200);
        let mut told = false;
        loop {
            let tries = futures::future::join_all(
                stacks.iter().map(|stack| self.try_lock(stack, env, &me)),
            )
            .await;
            let mut taken = Vec::new();
            let mut failed = None;
            let mut held = None;
            for (stack, t) in stacks.iter().zip(tries) {
                match t {
                    Ok(Ok(lock)) => taken.push(lock),
                    Ok(Err(holder)) => {
                        held.get_or_insert((stack, holder));
                    }
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            if failed.is_none() && held.is_none() {
                return Ok(taken);
            }
            futures::future::join_all(taken.into_iter().map(Lock::release)).await;
            if let Some(e) = failed {
                return Err(e);
            }
            let (stack, held) = held.expect("held or failed");
            if !told && !wait.is_zero() {
                let by = held
                    .as_ref()
                    .map(|h| format!(", held by {}", h.describe()))
                    .unwrap_or_default();
                eprintln!(
                    "waiting up to {} for the lock of stack `{stack}` (env `{env}`){by}",
                    humantime::format_duration(wait)
                );
                told = true;
            }
            if std::time::Instant::now() + delay > deadline {
                let by = held
                    .map(|h| format!(": held by {}", h.describe()))
                    .unwrap_or_default();
                return Err(Error::new(Class::Locked, format!("stack `{stack}` (env `{env}`) is being changed by another deploy run{by}"))
                    .at(self.lock_location(stack, env))
                    .help(format!(
                        "wait for it (--lock-timeout 2m waits up to two minutes); if that run is gone (a crash, a killed CI job): deploy unlock {stack} --env {env}"
                    )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// One attempt at one lock: Ok(Err(holder)) when another run holds it.
    async fn try_lock(
        &self,
        stack: &str,
        env: &str,
        me: &Holder,
    ) -> Result<std::result::Result<Lock, Option<Holder>>> {
        Ok(match self {
            Store::Dir(d) => d
                .try_lock(stack, env, me)?
                .map(|f| Lock(Some(Held::File(f)))),
            Store::S3(s) => s
                .try_lock(stack, env, me)
                .await?
                .map(|l| Lock(Some(Held::S3(l)))),
        })
    }

    /// Where it is, as people write it.
    pub fn describe(&self) -> String {
        match self {
            Store::Dir(d) => d.root.display().to_string(),
            Store::S3(s) => s.root_url(),
        }
    }

    fn lock_location(&self, stack: &str, env: &str) -> String {
        match self {
            Store::Dir(d) => d.lock_path(stack, env).display().to_string(),
            Store::S3(s) => s.lock_url(stack, env),
        }
    }

    /// Removes a lock left by a run that is gone; says whose it was (None: there was none).
    pub async fn unlock(&self, stack: &str, env: &str) -> Result<Option<Holder>> {
        match self {
            Store::Dir(d) => d.unlock(stack, env),
            Store::S3(s) => s.unlock(stack, env).await,
        }
    }
}

/// Reads a recorded state and checks that it is the one asked for, before anything acts on
/// it: a document of another stack or env (copied, restored from a backup, a mistyped
/// `--state`), of another format, or recording a kind this version does not know is refused
/// (exit 2), never taken for this stack's and never dropped.
fn parse(text: &str, at: &str, stack: &str, env: &str) -> Result<StackState> {
    let st: StackState = serde_json::from_str(text).map_err(|e| {
        Error::user(format!("recorded state is unreadable: {e}"))
            .at(at.to_string())
            .help("restore it from a backup (S3 versioning keeps them), or remove it: `deploy destroy` then finds the stack's resources by name and tags")
    })?;
    if st.version != FORMAT_VERSION {
        return Err(Error::user(format!(
            "state format {} is not supported (expected {FORMAT_VERSION})",
            st.version
        ))
        .at(at.to_string())
        .help("use the version of deploy that wrote it"));
    }
    if st.stack != stack || st.env != env {
        return Err(Error::user(format!(
            "recorded state is not this stack's: it holds stack `{}` (env `{}`), and stack `{stack}` (env `{env}`) was expected here; nothing was changed",
            st.stack, st.env
        ))
        .at(at.to_string())
        .help(format!(
            "put it back where stack `{}` (env `{}`) keeps its state, or check --state / --env; restore this stack's own from a backup, or remove the file: `deploy destroy {stack} --env {env}` then finds its resources by name and tags",
            st.stack, st.env
        )));
    }
    let unknown: Vec<String> = st
        .resources
        .iter()
        .filter(|(_, e)| crate::resources::lookup(&e.kind).is_none())
        .map(|(id, e)| format!("`{id}` ({})", e.kind))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::user(format!(
            "recorded state holds resources of a kind this version of deploy does not know: {}; nothing was changed",
            unknown.join(", ")
        ))
        .at(at.to_string())
        .help("use the version of deploy that wrote it (or a newer one)"));
    }
    Ok(st)
}

/// Held while a stack is being changed. `release` ends it: an awaited step at the end of the
/// run. A file lock also ends with the process; an S3 lock dropped unreleased is released in
/// the background (`settle` waits for it), and one left by a killed process is removed with
/// `deploy unlock`.
pub struct Lock(Option<Held>);

enum Held {
    File(std::fs::File),
    S3(s3::S3Lock),
}

impl Lock {
    pub async fn release(mut self) {
        match self.0.take() {
            Some(Held::File(f)) => drop(f),
            Some(Held::S3(l)) => l.release().await,
            None => {}
        }
    }
}

/// Releases started from `Drop` (a lock dropped unreleased), awaited by `settle`.
static RELEASING: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Starts `release` on the current runtime without waiting for it; false when there is none.
fn release_in_background(release: impl std::future::Future<Output = ()> + Send + 'static) -> bool {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            RELEASING.lock().unwrap().push(h.spawn(release));
            true
        }
        Err(_) => false,
    }
}

/// Waits (at most 10 s) for the locks released in the background: called before the process
/// exits, however the command ended.
pub async fn settle() {
    let pending: Vec<_> = std::mem::take(&mut *RELEASING.lock().unwrap());
    if pending.is_empty() {
        return;
    }
    let all = futures::future::join_all(pending);
    if tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .is_err()
    {
        eprintln!("warning: a lock could not be released in time: remove it with `deploy unlock`");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry() -> Entry {
        Entry {
            kind: "iam_role".into(),
            status: Status::Created,
            attrs: json!({"name": "r"}),
            outputs: BTreeMap::from([("arn".into(), json!("arn:r"))]),
            depends_on: BTreeSet::new(),
        }
    }

    /// What every backend must do: the folder backend here, S3 against moto in
    /// `s3::tests` (which starts moto when the tests run under scripts/test).
    pub async fn conformance(store: &Store) {
        let mut st = store.load("s", "default").await.unwrap();
        assert!(st.resources.is_empty(), "missing state is empty");
        st.resources.insert("role".into(), entry());
        store.save(&st).await.unwrap();
        st.resources.insert("role2".into(), entry());
        store.save(&st).await.unwrap();
        let back = store.load("s", "default").await.unwrap();
        assert_eq!(back.resources["role"].outputs["arn"], json!("arn:r"));
        assert_eq!(back.resources.len(), 2, "the last write wins");
        assert_eq!(
            store.list().await.unwrap(),
            vec![("default".to_string(), "s".to_string())]
        );
        // emptied state removes it: the stack no longer counts as deployed
        st.resources.clear();
        store.save(&st).await.unwrap();
        assert!(store.list().await.unwrap().is_empty());

        // one lock per stack and env, naming its holder; released on drop; unlock removes one
        let held = store.lock("s", "e", "up", Duration::ZERO).await.unwrap();
        let err = match store
            .lock("s", "e", "destroy", Duration::from_millis(300))
            .await
        {
            Err(e) => e,
            Ok(_) => panic!("second lock was granted"),
        };
        assert_eq!(err.class, Class::Locked);
        assert!(
            err.message.contains("held by") && err.message.contains("`deploy up`"),
            "{}",
            err.message
        );
        assert!(
            err.help
                .as_deref()
                .unwrap_or_default()
                .contains("deploy unlock s --env e"),
            "{err}"
        );
        store
            .lock("other", "e", "up", Duration::ZERO)
            .await
            .unwrap()
            .release()
            .await;
        held.release().await;
        let again = store.lock("s", "e", "up", Duration::ZERO).await;
        assert!(again.is_ok(), "released");
        // dropped unreleased (an early return, a panic): released by the time `settle` ends
        drop(again);
        settle().await;
        let again = store.lock("s", "e", "up", Duration::ZERO).await;
        assert!(again.is_ok(), "released after a drop");
        again.unwrap().release().await;
        assert!(
            store.unlock("none", "e").await.unwrap().is_none(),
            "no lock, nothing to say"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_folder_backend_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        conformance(&store).await;
        // a folder lock dies with its process: unlock never breaks a live one
        let _held = store.lock("s", "e", "up", Duration::ZERO).await.unwrap();
        let err = store.unlock("s", "e").await.unwrap_err();
        assert!(
            err.message.contains("locked by a running process")
                && err.message.contains("`deploy up`"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_lock_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::new(dir.path().to_path_buf()));
        let held = store.lock("s", "e", "up", Duration::ZERO).await.unwrap();
        let s2 = store.clone();
        let waiter = tokio::spawn(async move {
            s2.lock("s", "e", "up", Duration::from_secs(30))
                .await
                .is_ok()
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        held.release().await;
        assert!(
            waiter.await.unwrap(),
            "granted once released, within --lock-timeout"
        );
    }

    #[test]
    fn a_document_writes_what_serde_writes_after_every_change() {
        let mut st = StackState::empty("s", "default");
        st.outputs
            .insert("url".into(), Value::String("x \"resources\": {}".into()));
        let mut doc = Document::new(st.clone());
        assert_eq!(doc.text().unwrap(), None);
        for (id, n) in [("b", 1), ("a", 2), ("c\"d", 3), ("a", 4)] {
            let mut e = entry();
            e.attrs = serde_json::json!({"n": n, "nested": {"list": [1, {"k": "v\nw"}]}});
            doc.put(id, e.clone());
            st.resources.insert(id.into(), e);
            let want = serde_json::to_string_pretty(&st).unwrap();
            assert_eq!(doc.text().unwrap().as_deref(), Some(want.as_str()));
        }
        doc.remove("b");
        st.resources.remove("b");
        doc.set_target(Target {
            account_id: "1".into(),
            region: "r".into(),
            endpoint: None,
        });
        st.target = doc.state().target.clone();
        let want = serde_json::to_string_pretty(&st).unwrap();
        assert_eq!(doc.text().unwrap().as_deref(), Some(want.as_str()));
        let again: StackState = serde_json::from_str(&doc.text().unwrap().unwrap()).unwrap();
        assert_eq!(again.resources.len(), 2);
    }

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("s3://b/p/q/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            Location::parse("s3://b").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse(".deploy/state").unwrap(),
            Location::Dir(".deploy/state".into())
        );
        assert!(Location::parse("s3://").is_err());
        assert!(Location::parse("gs://b/p").is_err());
        assert_eq!(Location::parse("s3://b/p").unwrap().to_string(), "s3://b/p");
    }
}
