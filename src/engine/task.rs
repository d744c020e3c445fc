//! Task states: arguments, the call through `Tasks` (a `.waitForTaskToken` waits on
//! `Callbacks`), timeouts and heartbeats, and Retry / Catch around any state that may fail.

use super::*;

impl Run<'_> {
    pub(super) async fn with_retry(
        &self,
        state: &asl::State<'_>,
        input: &Value,
        vars: &mut Vars,
        (next, entered): (Option<String>, usize),
    ) -> Result<(Value, Option<String>), Failure> {
        let (name, s, jp) = (state.name, state.raw, !state.jsonata());
        let mut attempts: Vec<u64> = vec![0; s["Retry"].as_array().map(|r| r.len()).unwrap_or(0)];
        let retriers = s["Retry"].as_array().cloned().unwrap_or_default();
        loop {
            // AWS records a Parallel or Map state's failure only once it is not retried
            let will_retry = |error: &str| {
                retrier_for(&retriers, error).is_some_and(|(i, r)| attempts[i] < max_attempts(r))
            };
            let attempt = match state.kind {
                Kind::Task => {
                    self.task(name, s, jp, input, vars, attempts.iter().sum())
                        .await
                }
                Kind::Parallel => self.parallel(state, input, vars, &will_retry).await,
                _ => self.map(state, input, vars, &will_retry).await,
            };
            let failure = match attempt {
                Ok(result) if jp => {
                    let result = self.jp_selected(s, result, name, vars)?;
                    return self
                        .jp_output(s, input, Some(result), name, vars)
                        .map(|o| (o, next));
                }
                Ok(result) => {
                    return self
                        .finish(name, s, input, Some(&result), vars)
                        .map(|o| (o, next));
                }
                Err(f) => self.at_state(f, name, entered),
            };
            // Retry: the first retrier matching the error decides.
            if let Some((i, delay)) = backoff(&retriers, &mut attempts, &failure.error) {
                self.journal.reach(Reached::Retry(name.into(), i));
                self.sleep(delay).await;
                continue;
            }
            if let Some((i, c)) = catcher(s, &failure.error) {
                self.journal.reach(Reached::Catch(name.into(), i));
                return self.caught(c, jp, name, input, vars, failure);
            }
            return Err(failure);
        }
    }

    /// JSONPath: a result through the state's ResultSelector, if it has one.
    pub(super) fn jp_selected(
        &self,
        s: &Value,
        result: Value,
        name: &str,
        vars: &Vars,
    ) -> Result<Value, Failure> {
        match s.get("ResultSelector") {
            Some(sel) => self.jp_template(sel, &result, &self.context_for(name, &[]), vars),
            None => Ok(result),
        }
    }

    /// A Catch that matched `failure`: the state's output (ResultPath in JSONPath, Output in
    /// JSONata), its Assign, and where it goes next.
    pub(super) fn caught(
        &self,
        c: &Value,
        jp: bool,
        name: &str,
        input: &Value,
        vars: &mut Vars,
        failure: Failure,
    ) -> Result<(Value, Option<String>), Failure> {
        // an error or cause that is not there is null (a SendTaskFailure without them, a
        // timeout: recorded from AWS in sfn-integrations' callback cases)
        let text = |s: &str| match s.is_empty() {
            true => Value::Null,
            false => json!(s),
        };
        let error_output = json!({"Error": text(&failure.error), "Cause": text(&failure.cause)});
        let next = c["Next"].as_str().map(str::to_string);
        if jp {
            if let Some(a) = c.get("Assign") {
                let ctx = self.context_for(name, &[]);
                vars.assign(self.jp_template(a, &error_output, &ctx, vars)?);
            }
            let output = match c.get("ResultPath") {
                Some(Value::Null) => input.clone(),
                Some(p) => jsonpath::set(p.as_str().unwrap_or("$"), input, error_output)
                    .map_err(|m| fail("States.ResultPathMatchFailure", m))?,
                None => error_output,
            };
            // the state's one StateExited is written by `state` on the way out
            return Ok((output, next));
        }
        let st = self.states_var(input, name, &[("errorOutput", error_output.clone())]);
        let output = match c.get("Output") {
            Some(o) => self.eval_field("Output", o, &st, vars)?,
            None => error_output,
        };
        if let Some(a) = c.get("Assign") {
            let assigned = self.eval_field("Assign", a, &st, vars)?;
            vars.assign(assigned);
        }
        Ok((output, next))
    }

    /// What a Task or Parallel state works on: JSONPath InputPath + Parameters, or JSONata Arguments.
    pub(super) fn arguments(
        &self,
        s: &Value,
        jp: bool,
        input: &Value,
        name: &str,
        st: &Value,
        vars: &Vars,
    ) -> Result<Value, Failure> {
        if jp {
            let effective = self.jp_input(s, input, name, vars)?;
            match s.get("Parameters") {
                Some(p) => self.jp_template(p, &effective, &st["context"], vars),
                None => Ok(effective),
            }
        } else {
            match s.get("Arguments") {
                Some(a) => self.eval_field("Arguments", a, st, vars),
                None => Ok(input.clone()),
            }
        }
    }

    /// The role a task's `Credentials` names (JSONPath: a payload template over the effective
    /// input; JSONata: evaluated), if it names one.
    fn credentials(
        &self,
        s: &Value,
        jp: bool,
        input: &Value,
        name: &str,
        st: &Value,
        vars: &Vars,
    ) -> Result<Option<String>, Failure> {
        let Some(c) = s.get("Credentials") else {
            return Ok(None);
        };
        let effective = match jp {
            true => self.jp_input(s, input, name, vars)?,
            false => input.clone(),
        };
        let c = self.payload("Credentials", c, jp, &effective, st, vars)?;
        Ok(c["RoleArn"].as_str().map(str::to_string))
    }

    pub(super) async fn task(
        &self,
        name: &str,
        s: &Value,
        jp: bool,
        input: &Value,
        vars: &Vars,
        retries: u64,
    ) -> Result<Value, Failure> {
        let resource = s["Resource"].as_str().unwrap_or_default().to_string();
        // A Lambda function named by its ARN (not through arn:aws:states:::lambda:invoke) and an
        // activity record events of their own (LambdaFunction*, Activity*), not Task* ones.
        let kind = Recorded::of(&resource);
        // `.sync` tasks get a token too (`$$.Task.Token`): an answer to it ends them as it ends
        // a `.waitForTaskToken` one (recorded from AWS: startExecution.sync with a task token);
        // an activity's worker answers with its token
        let callback = resource.ends_with(".waitForTaskToken")
            || resource.contains(".sync")
            || kind == Recorded::Activity;
        let token = callback.then(new_token);
        let mut st = self.states_var(input, name, &[]);
        st["context"]["State"]["RetryCount"] = json!(retries);
        if let Some(t) = &token {
            st["context"]["Task"] = json!({"Token": t});
        }
        let args = self.arguments(s, jp, input, name, &st, vars)?;
        let timeout = self.number(s, "TimeoutSeconds", input, name, vars)?;
        let heartbeat = self.number(s, "HeartbeatSeconds", input, name, vars)?;
        let role = self.credentials(s, jp, input, name, &st, vars)?;
        let call = TaskCall {
            state: name,
            resource: &resource,
            arguments: &args,
            token: token.as_deref(),
            role: role.as_deref(),
        };
        // what cannot be scheduled at all (an activity that does not exist) is a runtime error
        if let Err(why) = self.tasks.check(&call).await {
            return Err(fail("States.Runtime", why));
        }
        self.scheduled(&resource, kind, &args, timeout, heartbeat);
        // Registered before the call: the answer may come back before the call returns.
        let callbacks = self.opts.callbacks.as_ref();
        let waiting = token
            .as_deref()
            .and_then(|t| callbacks.map(|c| c.register(t)));
        let outcome = self.call(call, waiting, timeout, heartbeat).await;
        if let (Some(t), Some(c)) = (&token, callbacks) {
            c.forget(t);
        }
        // a result over the quota fails the task (catchable, as AWS records it), named by the
        // integration's type ('lambda') or the function's ARN
        let outcome = match outcome {
            Ok(v) if larger_than(&v, MAX_PAYLOAD) => Err(too_large(&match kind {
                Recorded::Task => split_resource(&resource).0,
                _ => resource.clone(),
            })),
            other => other,
        };
        self.ended(&resource, kind, outcome)
    }

    /// The task's call, and for a `.waitForTaskToken` one the answer to its token, within its
    /// TimeoutSeconds.
    async fn call(
        &self,
        call: TaskCall<'_>,
        waiting: Option<mpsc::UnboundedReceiver<Callback>>,
        timeout: Option<f64>,
        heartbeat: Option<f64>,
    ) -> Result<Value, Failure> {
        let sync = call.resource.contains(".sync");
        let work = async {
            let (called, waiting) = match (sync, waiting) {
                // a `.sync` job ends, or its token is answered first
                (true, Some(rx)) => tokio::select! {
                    r = self.tasks.call(call) => (r, None),
                    a = self.answer(rx, None) => return a,
                },
                (_, waiting) => (self.tasks.call(call).await, waiting),
            };
            match called {
                TaskResult::Return(v) => Ok(v),
                TaskResult::Throw { error, cause } => Err(thrown(error, cause)),
                TaskResult::Started { worker } => {
                    self.event("ActivityStarted", json!({"workerName": worker}));
                    match waiting {
                        Some(rx) => self.answer(rx, heartbeat).await,
                        None => Err(no_tokens()),
                    }
                }
                TaskResult::AwaitToken => match waiting {
                    Some(rx) => self.answer(rx, heartbeat).await,
                    None => Err(no_tokens()),
                },
            }
        };
        let Some(t) = timeout else {
            return work.await;
        };
        let limit = Duration::from_secs_f64((t * self.opts.time_scale).max(0.0));
        // AWS gives a timed-out task no cause (sfn-integrations' callback cases)
        self.clock
            .timeout(limit, work)
            .await
            .unwrap_or_else(|_| Err(fail("States.Timeout", "")))
    }

    fn scheduled(
        &self,
        resource: &str,
        kind: Recorded,
        args: &Value,
        timeout: Option<f64>,
        heartbeat: Option<f64>,
    ) {
        match kind {
            Recorded::Lambda => {
                self.event(
                    "LambdaFunctionScheduled",
                    json!({"resource": resource, "input": args, "timeoutInSeconds": timeout}),
                );
                self.event("LambdaFunctionStarted", json!({}));
            }
            // an activity has started when a worker takes it (ActivityStarted, then)
            Recorded::Activity => self.event(
                "ActivityScheduled",
                json!({"resource": resource, "input": args, "timeoutInSeconds": timeout, "heartbeatInSeconds": heartbeat}),
            ),
            Recorded::Task => {
                self.event(
                    "TaskScheduled",
                    json!({"resource": resource, "parameters": args, "timeoutInSeconds": timeout, "heartbeatInSeconds": heartbeat}),
                );
                self.event("TaskStarted", json!({"resource": resource}));
            }
        }
    }

    /// The event of a task's end: succeeded, failed or timed out (Lambda's and an activity's
    /// own for a function named by its ARN and an activity).
    fn ended(
        &self,
        resource: &str,
        kind: Recorded,
        outcome: Result<Value, Failure>,
    ) -> Result<Value, Failure> {
        let prefix = match kind {
            Recorded::Lambda => "LambdaFunction",
            Recorded::Activity => "Activity",
            Recorded::Task => "Task",
        };
        let f = match outcome {
            Ok(v) => {
                let details = match kind {
                    Recorded::Task => json!({"resource": resource, "output": v}),
                    _ => json!({"output": v}),
                };
                self.event(&format!("{prefix}Succeeded"), details);
                return Ok(v);
            }
            Err(f) => f,
        };
        let timed_out = f.error == "States.Timeout" || f.error == "States.HeartbeatTimeout";
        let end = if timed_out { "TimedOut" } else { "Failed" };
        let details = match kind {
            Recorded::Task => json!({"resource": resource, "error": f.error, "cause": f.cause}),
            _ => json!({"error": f.error, "cause": f.cause}),
        };
        self.event(&format!("{prefix}{end}"), details);
        Err(f)
    }

    /// Waits for SendTaskSuccess / SendTaskFailure; SendTaskHeartbeat restarts the heartbeat timer.
    pub(super) async fn answer(
        &self,
        mut rx: mpsc::UnboundedReceiver<Callback>,
        heartbeat: Option<f64>,
    ) -> Result<Value, Failure> {
        loop {
            let got = match heartbeat {
                Some(h) => match self
                    .clock
                    .timeout(
                        Duration::from_secs_f64((h * self.opts.time_scale).max(0.0)),
                        rx.recv(),
                    )
                    .await
                {
                    Ok(got) => got,
                    Err(_) => {
                        // AWS names a missed heartbeat States.Timeout, with no cause
                        // (recorded in sfn-integrations' heartbeat cases)
                        return Err(fail("States.Timeout", ""));
                    }
                },
                None => rx.recv().await,
            };
            match got {
                Some(Callback::Success(v)) => return Ok(v),
                Some(Callback::Failure { error, cause }) => return Err(thrown(error, cause)),
                Some(Callback::Heartbeat) => continue,
                None => return Err(fail("States.Runtime", "the task token was withdrawn")),
            }
        }
    }
}

/// The first retrier matching `error`, with its index.
pub(super) fn retrier_for<'a>(retriers: &'a [Value], error: &str) -> Option<(usize, &'a Value)> {
    retriers
        .iter()
        .enumerate()
        .find(|(_, r)| matches(&r["ErrorEquals"], error))
}

/// A retrier's MaxAttempts (AWS: 3 when not given).
pub(super) fn max_attempts(r: &Value) -> u64 {
    r["MaxAttempts"].as_u64().unwrap_or(3)
}

/// A retrier's wait before retry number `attempt` + 1 (without jitter): its interval grown by
/// its backoff rate per attempt, capped by MaxDelaySeconds.
pub(super) fn delay(r: &Value, attempt: u64) -> f64 {
    let interval = r["IntervalSeconds"].as_f64().unwrap_or(1.0);
    let rate = r["BackoffRate"].as_f64().unwrap_or(2.0);
    let delay = interval * rate.powi(attempt as i32);
    match r["MaxDelaySeconds"].as_f64() {
        Some(cap) => delay.min(cap),
        None => delay,
    }
}

/// The wait before the next attempt, if the first retrier that matches `error` has attempts
/// left (counted in `attempts`): its interval grown by its backoff rate per attempt, capped by
/// MaxDelaySeconds, a random share of it with full jitter.
/// The first catcher of `s` matching `error`, with its index.
pub(super) fn catcher<'a>(s: &'a Value, error: &str) -> Option<(usize, &'a Value)> {
    let catchers = s["Catch"].as_array().into_iter().flatten();
    catchers
        .enumerate()
        .find(|(_, c)| matches(&c["ErrorEquals"], error))
}

fn backoff(retriers: &[Value], attempts: &mut [u64], error: &str) -> Option<(usize, f64)> {
    let (i, r) = retrier_for(retriers, error)?;
    if attempts[i] >= max_attempts(r) {
        return None;
    }
    let mut delay = delay(r, attempts[i]);
    if r["JitterStrategy"] == "FULL" {
        // a random share of the delay, as AWS does
        delay *= rand::random::<f64>();
    }
    attempts[i] += 1;
    Some((i, delay))
}

/// Which events a Task state records: a Lambda function named by its ARN, an activity, or any
/// other integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    Lambda,
    Activity,
    Task,
}

impl Recorded {
    fn of(resource: &str) -> Recorded {
        if asl::is_lambda_function(resource) {
            Recorded::Lambda
        } else if asl::is_activity(resource) {
            Recorded::Activity
        } else {
            Recorded::Task
        }
    }
}

fn no_tokens() -> Failure {
    fail(
        "States.Runtime",
        "this engine has no way to receive task tokens",
    )
}
