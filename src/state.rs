//! Recorded state: one JSON file per stack and env under the state folder
//! (`<project>/.deploy/state/<env>/<stack>.json` unless `--state-dir` says otherwise),
//! written atomically (temp file + rename) after every single resource operation, and locked
//! (an OS file lock beside it) so two runs on the same stack and env cannot interleave.
//!
//! An entry is written *before* a create is attempted (status `pending`) so that a crash or
//! Ctrl-C between the API call and the record can always be recovered: `up` adopts the
//! resource by its deterministic name, `destroy` deletes it.

use crate::error::{Class, Error, Result, io_at};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

pub const FORMAT_VERSION: u32 = 1;

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
        }
    }
}

/// Where state lives.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: PathBuf) -> Self {
        Store { root }
    }

    fn path(&self, stack: &str, env: &str) -> PathBuf {
        self.root.join(env).join(format!("{stack}.json"))
    }

    pub fn load(&self, stack: &str, env: &str) -> Result<StackState> {
        let path = self.path(stack, env);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let st: StackState = serde_json::from_str(&text).map_err(|e| {
                    Error::internal(format!("recorded state is unreadable: {e}"))
                        .at(path.display().to_string())
                        .help("restore it from a backup, or remove it and clean up the stack's resources by hand")
                })?;
                if st.version != FORMAT_VERSION {
                    return Err(Error::user(format!("state format {} is not supported (expected {FORMAT_VERSION})", st.version))
                        .at(path.display().to_string()));
                }
                Ok(st)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StackState::empty(stack, env)),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Writes atomically; an empty stack state removes the file.
    pub fn save(&self, st: &StackState) -> Result<()> {
        let path = self.path(&st.stack, &st.env);
        if st.resources.is_empty() {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_at(&path)(e)),
            }
            return Ok(());
        }
        let dir = path.parent().unwrap();
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_at(dir))?;
        let text = serde_json::to_string_pretty(st).map_err(|e| Error::internal(e.to_string()))?;
        tmp.write_all(text.as_bytes()).map_err(io_at(&path))?;
        tmp.as_file().sync_all().map_err(io_at(&path))?;
        tmp.persist(&path).map_err(|e| io_at(&path)(e.error))?;
        Ok(())
    }

    /// Every (env, stack) with recorded state.
    pub fn list(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let Ok(envs) = std::fs::read_dir(&self.root) else {
            return Ok(out);
        };
        for env in envs.flatten() {
            if !env.path().is_dir() {
                continue;
            }
            let env_name = env.file_name().to_string_lossy().to_string();
            for f in std::fs::read_dir(env.path()).map_err(io_at(&env.path()))?.flatten() {
                let name = f.file_name().to_string_lossy().to_string();
                if let Some(stack) = name.strip_suffix(".json") {
                    out.push((env_name.clone(), stack.to_string()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Takes the lock of one stack and env, or says who holds it.
    pub fn lock(&self, stack: &str, env: &str) -> Result<Lock> {
        let dir = self.root.join(env);
        std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let path = dir.join(format!("{stack}.lock"));
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_at(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Lock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(Error::new(Class::Locked, format!("stack `{stack}` (env `{env}`) is being changed by another deploy run"))
                    .at(path.display().to_string())
                    .help("wait for it to finish and run again"))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::new(Class::Locked, format!("cannot lock stack `{stack}` (env `{env}`): {e}")).at(path.display().to_string()))
            }
        }
    }
}

/// Held while a stack is being changed; released when dropped (or when the process dies).
pub struct Lock {
    _file: File,
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

    #[test]
    fn round_trip_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        let mut st = store.load("s", "default").unwrap();
        assert!(st.resources.is_empty());
        st.resources.insert("role".into(), entry());
        store.save(&st).unwrap();
        let back = store.load("s", "default").unwrap();
        assert_eq!(back.resources["role"].outputs["arn"], json!("arn:r"));
        assert_eq!(store.list().unwrap(), vec![("default".to_string(), "s".to_string())]);
        // emptied state removes the file: the stack no longer counts as deployed
        st.resources.clear();
        store.save(&st).unwrap();
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn second_lock_on_same_stack_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        let held = store.lock("s", "e").unwrap();
        let err = match store.lock("s", "e") {
            Err(e) => e,
            Ok(_) => panic!("second lock was granted"),
        };
        assert_eq!(err.class, Class::Locked);
        assert!(store.lock("other", "e").is_ok());
        drop(held);
        assert!(store.lock("s", "e").is_ok());
    }
}
