//! Saved plans, Terraform's contract: what was reviewed is what gets applied. `deploy plan
//! --out FILE` writes, per stack, the plan as `plan --output json` prints it, the resolved
//! desired state (rendered definitions included), the variables it was made with, and a digest
//! of the recorded state it was made from; secrets only sealed. `deploy up --plan FILE`, from
//! any runner, applies exactly that: it refuses (exit 2, before any change) a file that is not
//! a plan, a plan of another env, a manifest or variables that no longer give the same desired
//! state, a state that changed since (a stale plan), and live resources that no longer plan the
//! same steps.

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::state::StackState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

pub const FORMAT: &str = "deploy-saved-plan";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub format_version: u32,
    pub env: String,
    /// Seconds since the Unix epoch.
    pub made: u64,
    pub stacks: Vec<SavedStack>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedStack {
    pub stack: String,
    /// `sha256:<hex>` of the recorded state the plan was made from (`none`: no state).
    pub state: String,
    /// The stack's variables as resolved; a sensitive one only sealed.
    pub vars: BTreeMap<String, Value>,
    /// Every declared resource's attributes as planned (secrets sealed).
    pub desired: BTreeMap<String, Value>,
    /// The plan, as `plan --output json` shows it.
    pub plan: Value,
}

/// The digest a saved plan records of a stack's state.
pub fn state_digest(st: &StackState) -> String {
    use sha2::Digest;
    if st.resources.is_empty() && st.meta.is_none() {
        return "none".into();
    }
    let text = serde_json::to_vec(st).unwrap_or_default();
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(text)))
}

impl SavedPlan {
    pub fn write(&self, path: &Path) -> Result<()> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| Error::internal(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(|e| {
            Error::user(format!("cannot write the plan: {e}")).at(path.display().to_string())
        })
    }

    pub fn read(path: &Path) -> Result<SavedPlan> {
        let at = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::user(format!("cannot read the plan: {e}")).at(at.clone()))?;
        let not_a_plan = || {
            Error::user("this file is not a plan saved by `deploy plan --out`; nothing was changed")
                .at(at.clone())
                .help("make one with `deploy plan STACK --out FILE`")
        };
        let v: Value = serde_json::from_str(&text).map_err(|_| not_a_plan())?;
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(not_a_plan());
        }
        if v.get("format_version").and_then(Value::as_u64) != Some(FORMAT_VERSION.into()) {
            return Err(Error::user(format!(
                "plan format {} is not supported (expected {FORMAT_VERSION}); nothing was changed",
                v["format_version"]
            ))
            .at(at)
            .help("make the plan again with this version of deploy"));
        }
        serde_json::from_value(v).map_err(|e| {
            Error::user(format!(
                "the saved plan is damaged: {e}; nothing was changed"
            ))
            .at(at)
        })
    }
}

/// The steps of a plan as they are compared: what would be done to what, with which changes.
pub fn steps_of(plan: &Plan) -> Value {
    serde_json::to_value(&plan.steps).unwrap_or_default()
}

/// The first resource whose planned attributes differ between `saved` (sealed) and `now`
/// (clear): a sealed secret counts as the same when `now` holds the value it was made from.
pub fn first_difference(
    saved: &BTreeMap<String, Value>,
    now: &BTreeMap<String, Value>,
) -> Option<String> {
    for id in saved.keys().chain(now.keys()) {
        match (saved.get(id), now.get(id)) {
            (Some(s), Some(n)) => {
                let unsealed = crate::secrets::unseal_matching(n, s);
                if &unsealed != n {
                    return Some(format!("resource `{id}` is not as planned"));
                }
            }
            (Some(_), None) => return Some(format!("resource `{id}` is no longer declared")),
            (None, Some(_)) => return Some(format!("resource `{id}` was not in the plan")),
            (None, None) => {}
        }
    }
    None
}
