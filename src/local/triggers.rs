//! What starts executions besides the API: the triggers stacks deploy next to their state
//! machines, read from the emulator behind `deploy local` and carried out here, since the
//! emulator cannot start executions on deploy local's state machines:
//!
//! - an EventBridge pipe from an SQS queue to a state machine: its messages received in
//!   batches of the pipe's size, each batch started as one execution whose input is the array
//!   of SQS records as Pipes passes them, then deleted from the queue;
//! - an EventBridge rule with a `rate(...)` schedule whose target is a state machine: an
//!   execution every period (scaled by `--time-scale`), with the target's Input, else the
//!   Scheduled Event.
//!
//! Only against an emulator on loopback: against AWS, AWS's own pipes and rules run them, and
//! receiving from a real queue here would take messages from them.

use crate::sdk::{CallError, Caller};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the queues and schedules are looked at.
const TICK: Duration = Duration::from_secs(1);

/// Where the triggers are read and the executions started.
pub struct Triggers {
    pub sdk: Arc<Caller>,
    pub region: String,
    pub time_scale: f64,
}

/// Starts looking, in the background, for as long as deploy local runs.
pub fn spawn(t: Triggers) {
    tokio::spawn(async move {
        let mut next_fire: HashMap<String, Instant> = HashMap::new();
        loop {
            if let Err(e) = t.pipes().await {
                tracing::debug!("pipes: {}", said(&e));
            }
            if let Err(e) = t.schedules(&mut next_fire).await {
                tracing::debug!("schedules: {}", said(&e));
            }
            tokio::time::sleep(TICK).await;
        }
    });
}

/// A failed call in a line.
fn said(e: &CallError) -> String {
    match e {
        CallError::Service { code, message, .. } => format!("{code}: {message}"),
        CallError::Invalid { message, .. } => message.clone(),
        CallError::Unknown(m) | CallError::Client(m) => m.clone(),
    }
}

/// The name an ARN ends with (`arn:aws:sqs:us-east-1:123456789012:queue` → `queue`).
fn arn_name(arn: &str) -> &str {
    arn.rsplit([':', '/']).next().unwrap_or(arn)
}

impl Triggers {
    async fn call(&self, service: &str, action: &str, args: Value) -> Result<Value, CallError> {
        Ok(self.sdk.call(service, action, &args).await?.output)
    }

    /// Every running pipe from a queue to a state machine: one batch each.
    async fn pipes(&self) -> Result<(), CallError> {
        let list = self.call("pipes", "listPipes", json!({})).await?;
        for p in list["Pipes"].as_array().into_iter().flatten() {
            let (source, target) = (
                p["Source"].as_str().unwrap_or_default(),
                p["Target"].as_str().unwrap_or_default(),
            );
            let running = p["DesiredState"].as_str().unwrap_or("RUNNING") == "RUNNING";
            if running && source.contains(":sqs:") && target.contains(":states:") {
                let name = p["Name"].as_str().unwrap_or_default();
                if let Err(e) = self.pipe(name, source, target).await {
                    tracing::warn!("pipe {name}: {}", said(&e));
                }
            }
        }
        Ok(())
    }

    /// One batch of a pipe's queue, started as one execution, then deleted from the queue.
    async fn pipe(&self, name: &str, source: &str, target: &str) -> Result<(), CallError> {
        let p = self
            .call("pipes", "describePipe", json!({"Name": name}))
            .await?;
        let batch = p["SourceParameters"]["SqsQueueParameters"]["BatchSize"]
            .as_u64()
            .unwrap_or(10)
            .clamp(1, 10);
        let sync = p["TargetParameters"]["StepFunctionStateMachineParameters"]["InvocationType"]
            == "REQUEST_RESPONSE";
        let (url, messages) = self.receive(source, batch).await?;
        if messages.is_empty() {
            return Ok(());
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| sqs_record(m, source, &self.region))
            .collect();
        let action = if sync {
            "startSyncExecution"
        } else {
            "startExecution"
        };
        let started = self
            .call(
                "sfn",
                action,
                json!({"stateMachineArn": target, "input": Value::Array(records).to_string()}),
            )
            .await?;
        eprintln!(
            "deploy local: pipe {name} started {} with {} message(s) of {}",
            started["ExecutionArn"].as_str().unwrap_or("an execution"),
            messages.len(),
            arn_name(source)
        );
        let entries: Vec<Value> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| json!({"Id": i.to_string(), "ReceiptHandle": m["ReceiptHandle"]}))
            .collect();
        self.call(
            "sqs",
            "deleteMessageBatch",
            json!({"QueueUrl": url, "Entries": entries}),
        )
        .await?;
        Ok(())
    }

    /// Up to `batch` messages of the queue `source` names, and the queue's URL.
    async fn receive(&self, source: &str, batch: u64) -> Result<(String, Vec<Value>), CallError> {
        let url = self
            .call("sqs", "getQueueUrl", json!({"QueueName": arn_name(source)}))
            .await?["QueueUrl"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let got = self
            .call(
                "sqs",
                "receiveMessage",
                json!({"QueueUrl": url, "MaxNumberOfMessages": batch, "WaitTimeSeconds": 0,
                       "MessageSystemAttributeNames": ["All"], "MessageAttributeNames": ["All"]}),
            )
            .await?;
        let messages = got["Messages"].as_array().cloned().unwrap_or_default();
        Ok((url, messages))
    }

    /// Every enabled rate rule whose target is a state machine: an execution each period.
    async fn schedules(&self, next_fire: &mut HashMap<String, Instant>) -> Result<(), CallError> {
        let rules = self.call("eventbridge", "listRules", json!({})).await?;
        let now = Instant::now();
        for r in rules["Rules"].as_array().into_iter().flatten() {
            let (Some(arn), Some(every)) = (
                r["Arn"].as_str(),
                r["ScheduleExpression"].as_str().and_then(rate),
            ) else {
                continue;
            };
            if r["State"] != "ENABLED" {
                next_fire.remove(arn);
                continue;
            }
            let every = every.mul_f64(self.time_scale).max(TICK);
            let due = *next_fire.entry(arn.to_string()).or_insert(now + every);
            if now < due {
                continue;
            }
            next_fire.insert(arn.to_string(), now + every);
            let name = r["Name"].as_str().unwrap_or_default();
            let targets = self
                .call("eventbridge", "listTargetsByRule", json!({"Rule": name}))
                .await?;
            for t in targets["Targets"].as_array().into_iter().flatten() {
                let Some(machine) = t["Arn"].as_str().filter(|a| a.contains(":states:")) else {
                    continue;
                };
                let input = match t["Input"].as_str() {
                    Some(i) => i.to_string(),
                    None => scheduled_event(arn, &self.region).to_string(),
                };
                let started = self
                    .call(
                        "sfn",
                        "startExecution",
                        json!({"stateMachineArn": machine, "input": input}),
                    )
                    .await?;
                eprintln!(
                    "deploy local: rule {name} ({}) started {}",
                    r["ScheduleExpression"].as_str().unwrap_or_default(),
                    started["ExecutionArn"].as_str().unwrap_or("an execution")
                );
            }
        }
        Ok(())
    }
}

/// An SQS message as EventBridge Pipes hands it to its target (as Lambda's SQS records: an
/// attribute's fields in camel case, `stringValue`, `dataType`).
fn sqs_record(m: &Value, source: &str, region: &str) -> Value {
    let camel = |k: &str| {
        let mut c = k.chars();
        c.next()
            .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    let lower = |v: &Value| -> Value {
        let attrs = v.as_object().into_iter().flatten().map(|(name, a)| {
            let fields = a.as_object().into_iter().flatten();
            let a: serde_json::Map<String, Value> =
                fields.map(|(k, v)| (camel(k), v.clone())).collect();
            (name.clone(), Value::Object(a))
        });
        Value::Object(attrs.collect())
    };
    json!({
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m["Attributes"].clone(),
        "messageAttributes": lower(&m["MessageAttributes"]),
        "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": source,
        "awsRegion": region,
    })
}

/// The event a scheduled rule sends its targets.
fn scheduled_event(rule_arn: &str, region: &str) -> Value {
    let account = rule_arn.split(':').nth(4).unwrap_or_default();
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "region": region,
        "resources": [rule_arn],
        "detail": {}
    })
}

/// A `rate(N unit)` schedule's period; a `cron(...)` one is not run here.
fn rate(expr: &str) -> Option<Duration> {
    let inner = expr.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim().trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86400,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_schedules_are_read_and_cron_ones_left_alone() {
        assert_eq!(rate("rate(30 minutes)"), Some(Duration::from_secs(1800)));
        assert_eq!(rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(rate("rate(2 hours)"), Some(Duration::from_secs(7200)));
        assert_eq!(rate("cron(0 12 * * ? *)"), None);
    }

    #[test]
    fn a_message_reaches_the_state_machine_as_pipes_passes_it() {
        let m = json!({"MessageId": "m-1", "ReceiptHandle": "r", "Body": "{\"Records\": []}", "MD5OfBody": "x",
                       "Attributes": {"SentTimestamp": "1"}, "MessageAttributes": {"Kind": {"StringValue": "a", "DataType": "String"}}});
        let r = sqs_record(&m, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1");
        assert_eq!(r["body"], "{\"Records\": []}");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:q");
        assert_eq!(r["messageAttributes"]["Kind"]["stringValue"], "a");
        assert_eq!(arn_name("arn:aws:sqs:us-east-1:123456789012:q"), "q");
    }
}
