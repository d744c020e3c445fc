//! RedriveExecution: an execution that failed, timed out or was aborted goes on from the state
//! that did not succeed, in the same history, with the definition it ran (`engine::redrive`).

use super::Server;
use super::api::*;
use super::store::*;
use crate::engine::{self, Journal};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

impl Server {
    pub(super) fn redrive_execution(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "executionArn")?;
        let token = body["clientToken"].as_str();
        let mut store = self.store.lock().unwrap();
        let e = execution(&store, arn)?;
        // the same client token asks for the same redrive: answered again, not done twice
        if token.is_some() && token == e.redrive.token.as_deref() {
            return Ok(json!({"redriveDate": e.redrive.date}));
        }
        if let Some(why) = e.not_redrivable() {
            return Err(bad("ExecutionNotRedrivable", why));
        }
        let m = store.machines.get(&e.machine_arn).ok_or_else(|| {
            bad(
                "ExecutionNotRedrivable",
                "State machine is in DELETING status.",
            )
        })?;
        if let Some(v) = e
            .version_arn
            .as_ref()
            .filter(|v| !m.versions.iter().any(|x| &x.arn == *v))
        {
            let why = format!(
                "The state machine version {v} the execution ran was deleted: the execution cannot be redriven."
            );
            return Err(bad("ExecutionNotRedrivable", why));
        }
        let opts = self.options(&e.name, arn, m, e.role_arn.clone());
        let input: Value = serde_json::from_str(&e.input).unwrap_or(json!({}));
        let (def, journal): (Arc<Value>, Arc<Journal>) = (e.definition.clone(), e.journal.clone());
        let at = now();
        let again = engine::Redrive {
            count: e.redrive.count + 1,
            started: UNIX_EPOCH + Duration::from_secs_f64(e.started),
            at: UNIX_EPOCH + Duration::from_secs_f64(at),
        };
        let cancel = opts.cancel.clone();
        let e = execution_mut(&mut store, arn)?;
        e.redrive = Redriven {
            count: again.count,
            date: Some(at),
            token: token.map(str::to_string),
        };
        (e.status, e.stopped, e.output, e.error, e.cause) = ("RUNNING", None, None, None, None);
        e.cancel = cancel;
        store.executions.redriven(arn);
        let abort = self.spawn(def, input, opts, None, journal, Some(again));
        if let Some(e) = store.executions.get_mut(arn) {
            e.abort = Some(abort);
        }
        tracing::info!("execution {arn} redriven");
        Ok(json!({"redriveDate": at}))
    }
}
