//! Activities: CreateActivity, DescribeActivity, DeleteActivity, ListActivities and
//! GetActivityTask (a long poll of up to 60 s, as AWS's), and the queue of tasks that activity
//! Task states put there for workers. A worker's answer comes back through SendTask* with the
//! task's token, as a callback's does.

use super::Server;
use super::api::{ApiError, ApiResult, bad, now, page, str_arg};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

/// How long GetActivityTask waits for a task before it answers with none (AWS: 60 s).
const LONG_POLL: Duration = Duration::from_secs(60);

struct Activity {
    name: String,
    created: f64,
    queue: VecDeque<Pending>,
}

/// A task waiting for a worker: its token and input, and who to tell when a worker takes it.
struct Pending {
    token: String,
    input: String,
    taken: oneshot::Sender<String>,
}

/// Every activity of the endpoint.
#[derive(Default)]
pub struct Activities {
    by_arn: Mutex<BTreeMap<String, Activity>>,
    scheduled: Notify,
}

impl Activities {
    pub fn exists(&self, arn: &str) -> bool {
        self.by_arn.lock().unwrap().contains_key(arn)
    }

    /// Queues a task for the activity's workers; the receiver gets the worker's name when one
    /// takes it. None: no such activity.
    pub fn schedule(
        &self,
        arn: &str,
        token: &str,
        input: &Value,
    ) -> Option<oneshot::Receiver<String>> {
        let (taken, rx) = oneshot::channel();
        let mut all = self.by_arn.lock().unwrap();
        all.get_mut(arn)?.queue.push_back(Pending {
            token: token.to_string(),
            input: input.to_string(),
            taken,
        });
        drop(all);
        self.scheduled.notify_waiters();
        Some(rx)
    }

    /// The next task of an activity whose state still waits for it.
    fn take(&self, arn: &str, worker: &str) -> Result<Option<(String, String)>, ApiError> {
        let mut all = self.by_arn.lock().unwrap();
        let a = all.get_mut(arn).ok_or_else(|| missing(arn))?;
        while let Some(p) = a.queue.pop_front() {
            // a state stopped or timed out while it waited has dropped its receiver
            if p.taken.send(worker.to_string()).is_ok() {
                return Ok(Some((p.token, p.input)));
            }
        }
        Ok(None)
    }

    /// Waits up to `wait` for a task of the activity.
    async fn poll(
        &self,
        arn: &str,
        worker: &str,
        wait: Duration,
    ) -> Result<Option<(String, String)>, ApiError> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.scheduled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(task) = self.take(arn, worker)? {
                return Ok(Some(task));
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return Ok(None);
            }
        }
    }
}

fn missing(arn: &str) -> ApiError {
    bad(
        "ActivityDoesNotExist",
        format!("Activity Does Not Exist: '{arn}'"),
    )
}

impl Server {
    fn activity_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:activity:{name}",
            self.region, self.account
        )
    }

    pub(super) fn create_activity(self: &Arc<Self>, body: &Value) -> ApiResult {
        let name = str_arg(body, "name")?;
        let valid = !name.is_empty()
            && name.len() <= 80
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        if !valid {
            return Err(bad("InvalidName", format!("Invalid Name: '{name}'")));
        }
        let arn = self.activity_arn(name);
        let mut all = self.integrations.activities.by_arn.lock().unwrap();
        // the same name again is the same activity, as AWS answers it
        let a = all.entry(arn.clone()).or_insert_with(|| Activity {
            name: name.to_string(),
            created: now(),
            queue: VecDeque::new(),
        });
        Ok(json!({"activityArn": arn, "creationDate": a.created}))
    }

    pub(super) fn describe_activity(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "activityArn")?;
        let all = self.integrations.activities.by_arn.lock().unwrap();
        let a = all.get(arn).ok_or_else(|| missing(arn))?;
        Ok(
            json!({"activityArn": arn, "name": a.name, "creationDate": a.created,
                  "encryptionConfiguration": {"type": "AWS_OWNED_KEY"}}),
        )
    }

    pub(super) fn delete_activity(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "activityArn")?;
        self.integrations
            .activities
            .by_arn
            .lock()
            .unwrap()
            .remove(arn);
        Ok(json!({}))
    }

    pub(super) fn list_activities(self: &Arc<Self>, body: &Value) -> ApiResult {
        let all = self.integrations.activities.by_arn.lock().unwrap();
        let listed: Vec<Value> = all
            .iter()
            .map(|(arn, a)| json!({"activityArn": arn, "name": a.name, "creationDate": a.created}))
            .collect();
        let (range, next) = page(&listed, body, 100)?;
        Ok(json!({"activities": listed[range].to_vec(), "nextToken": next}))
    }

    /// GetActivityTask: the next task of the activity, waiting up to 60 s for one; none then
    /// (no taskToken), as AWS answers.
    pub(super) async fn get_activity_task(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "activityArn")?;
        let worker = body["workerName"].as_str().unwrap_or_default();
        let got = self
            .integrations
            .activities
            .poll(arn, worker, LONG_POLL)
            .await?;
        Ok(match got {
            Some((token, input)) => json!({"taskToken": token, "input": input}),
            None => json!({}),
        })
    }
}
