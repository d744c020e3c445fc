//! Walking a scope state by state, and what every state shares: the clock and the event
//! journal, the context object and `$states`, JSONPath input and output processing, JSONata
//! evaluation, and the end of a state (Output, Assign, Next or End).

use super::*;

impl Run<'_> {
    pub(super) fn now(&self) -> f64 {
        self.elapsed().as_secs_f64()
    }

    /// Time since the execution started: a redriven run goes on from where the time was.
    pub(super) fn elapsed(&self) -> Duration {
        self.offset + self.clock.elapsed()
    }

    /// The wall-clock time now as RFC 3339, formatted once per millisecond.
    pub(super) fn now_iso(&self) -> String {
        let now = self.wall_start + self.elapsed();
        let ms = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut cached = self.iso_cache.lock().unwrap();
        if cached.0 != ms || cached.1.is_empty() {
            *cached = (ms, iso(now));
        }
        cached.1.clone()
    }

    pub(super) fn event(&self, kind: &str, details: Value) {
        if CHILD_EXECUTION.try_with(|_| ()).is_ok() {
            return;
        }
        let prev = LAST_EVENT.try_with(|c| c.get()).unwrap_or(0);
        let id = self.journal.push(kind, self.now(), details, prev);
        let _ = LAST_EVENT.try_with(|c| c.set(id));
    }

    /// The last event of the branch being run (0 outside an execution).
    pub(super) fn last_event(&self) -> usize {
        LAST_EVENT.try_with(|c| c.get()).unwrap_or(0)
    }

    /// Runs a branch (a Parallel branch, a Map iteration) whose events follow on from `from`
    /// (the event that began it: ParallelStateStarted, MapStateStarted), not from the other
    /// branches'.
    pub(super) async fn branch<T>(
        &self,
        from: usize,
        run: impl std::future::Future<Output = T>,
    ) -> T {
        LAST_EVENT.scope(std::cell::Cell::new(from), run).await
    }

    /// After branches: what follows comes after the last event any of them recorded.
    pub(super) fn rejoin(&self) {
        let last = self.journal.len();
        let _ = LAST_EVENT.try_with(|c| c.set(last));
    }

    pub(super) async fn sleep(&self, seconds: f64) {
        let s = (seconds * self.opts.time_scale).max(0.0);
        if s > 0.0 {
            self.clock.sleep(Duration::from_secs_f64(s.min(1e9))).await;
        }
    }

    pub(super) fn states_var(&self, input: &Value, name: &str, extra: &[(&str, Value)]) -> Value {
        let mut s = Map::with_capacity(2 + extra.len());
        s.insert("input".into(), input.clone());
        s.insert("context".into(), self.context_for(name, &[]));
        for (k, v) in extra {
            s.insert(k.to_string(), v.clone());
        }
        Value::Object(s)
    }

    /// The context object as a state sees it (`$$` / `$states.context`).
    pub(super) fn context_for(&self, name: &str, extra: &[(&str, Value)]) -> Value {
        let mut c = self.context.clone();
        // a Task's context also has its RetryCount (`task` sets it); other states' have none
        c["State"] = json!({"Name": name, "EnteredTime": self.now_iso()});
        for (k, v) in extra {
            c[*k] = v.clone();
        }
        c
    }

    /// JSONPath: InputPath (a null InputPath gives `{}`).
    pub(super) fn jp_input(
        &self,
        s: &Value,
        input: &Value,
        name: &str,
        vars: &Vars,
    ) -> Result<Value, Failure> {
        match s.get("InputPath") {
            None => Ok(input.clone()),
            Some(Value::Null) => Ok(json!({})),
            Some(p) => {
                let p = p.as_str().unwrap_or("$");
                jsonpath::expression(p, input, &self.context_for(name, &[]), &vars.all())
                    .map_err(|m| invalid_path(p, input, m))
            }
        }
    }

    /// JSONPath: a payload template (`Parameters`, `ItemSelector`, `ResultSelector`, `Assign`).
    pub(super) fn jp_template(
        &self,
        t: &Value,
        over: &Value,
        context: &Value,
        vars: &Vars,
    ) -> Result<Value, Failure> {
        jsonpath::template(t, over, context, &vars.all()).map_err(|m| fail("States.Runtime", m))
    }

    /// JSONPath: Assign (`$` is the state's result, or its effective input when it has none),
    /// then ResultPath and OutputPath around the result.
    pub(super) fn jp_output(
        &self,
        s: &Value,
        input: &Value,
        result: Option<Value>,
        name: &str,
        vars: &mut Vars,
    ) -> Result<Value, Failure> {
        let ctx = self.context_for(name, &[]);
        if let Some(a) = s.get("Assign") {
            let over = result.clone().unwrap_or_else(|| input.clone());
            let assigned = self.jp_template(a, &over, &ctx, vars)?;
            vars.assign(assigned);
        }
        let combined = match result {
            Some(r) => result_path(s, input, r)?,
            None => input.clone(),
        };
        match s.get("OutputPath") {
            None => Ok(combined),
            Some(Value::Null) => Ok(json!({})),
            Some(p) => {
                let p = p.as_str().unwrap_or("$");
                jsonpath::expression(p, &combined, &ctx, &vars.all())
                    .map_err(|m| invalid_path(p, &combined, m))
            }
        }
    }

    /// A payload field (Credentials, an ItemReader's or ResultWriter's Parameters / Arguments,
    /// BatchInput): JSONPath, a template over `effective`; JSONata, evaluated as `field`.
    pub(super) fn payload(
        &self,
        field: &str,
        t: &Value,
        jp: bool,
        effective: &Value,
        st: &Value,
        vars: &Vars,
    ) -> Result<Value, Failure> {
        match jp {
            true => self.jp_template(t, effective, &st["context"], vars),
            false => self.eval_field(field, t, st, vars),
        }
    }

    /// A JSONata template evaluated as the state's field `field` (`Output`, `Assign`), which AWS names when an
    /// expression in it gives nothing.
    pub(super) fn eval_field(
        &self,
        field: &str,
        template: &Value,
        states: &Value,
        vars: &Vars,
    ) -> Result<Value, Failure> {
        let evaluated = jsonata::eval_template(template, states, &vars.all(), &self.opts.cancel);
        evaluated.map_err(|e| match e {
            jsonata::EvalError::Query(m) => fail("States.QueryEvaluationError", m),
            jsonata::EvalError::TooLarge(m) => fail("States.DataLimitExceeded", m),
            jsonata::EvalError::Cancelled => fail("States.Runtime", "the execution was stopped"),
            jsonata::EvalError::Undefined { expr, at } => {
                let field = field_of(field, &at);
                let why =
                    format!("The JSONata expression '{expr}'{field} returned nothing (undefined).");
                fail("States.QueryEvaluationError", why)
            }
            jsonata::EvalError::Unsupported { expr, at } => {
                let field = field_of(field, &at);
                let why = format!(
                    "The JSONata expression '{expr}'{field} returned an unsupported result type."
                );
                fail("States.QueryEvaluationError", why)
            }
        })
    }

    /// A number field that may be written literally, as a JSONata expression, or (JSONPath) as
    /// `<field>Path` into the state's input.
    pub(super) fn number(
        &self,
        s: &Value,
        field: &str,
        input: &Value,
        name: &str,
        vars: &Vars,
    ) -> Result<Option<f64>, Failure> {
        let st = self.states_var(input, name, &[]);
        let v = match (s.get(field), s.get(format!("{field}Path").as_str())) {
            (Some(Value::String(_)), _) => Some(self.eval_field(field, &s[field], &st, vars)?),
            (Some(v), _) => Some(v.clone()),
            (None, Some(p)) => {
                let p = p.as_str().unwrap_or("$");
                let v = jsonpath::expression(p, input, &st["context"], &vars.all())
                    .map_err(|m| invalid_path(p, input, m))?;
                // a number written as a string is read as one, as AWS does
                let v = match &v {
                    Value::String(t) => t.trim().parse::<f64>().map(|n| json!(n)).unwrap_or(v),
                    _ => v,
                };
                if !v.is_number() {
                    // AWS's words for a …Path that reads something else than a number
                    let text = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    let kind = if field.ends_with("Percentage") {
                        "float"
                    } else {
                        "integer"
                    };
                    let why = format!(
                        "The {field}Path field refers to value \"{text}\" which is not a valid {kind}: {p}"
                    );
                    return Err(fail("States.Runtime", why));
                }
                Some(v)
            }
            (None, None) => None,
        };
        match v {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                fail(
                    "States.Runtime",
                    format!("{name}: {field} is not a number: {v}"),
                )
            }),
        }
    }

    /// Runs a scope (the machine, a branch, an item processor) from its StartAt.
    pub(super) fn scope<'s>(
        &'s self,
        body: &'s asl::Scope<'s>,
        input: Value,
        vars: &'s mut Vars,
    ) -> BoxFuture<'s, Result<Value, Failure>> {
        async move {
            let start = body
                .start_at
                .ok_or_else(|| fail("States.Runtime", "no StartAt"))?;
            self.scope_from(body, start.to_string(), input, vars).await
        }
        .boxed()
    }

    /// Runs a scope from the state `name`; at the top level, notes each state entered with
    /// its input and the variables then (where a redrive resumes).
    pub(super) fn scope_from<'s>(
        &'s self,
        body: &'s asl::Scope<'s>,
        name: String,
        input: Value,
        vars: &'s mut Vars,
    ) -> BoxFuture<'s, Result<Value, Failure>> {
        async move {
            let (mut name, mut input) = (name, input);
            let top = body.pointer.is_empty();
            loop {
                if top {
                    let at = Resume { state: name.clone(), input: input.clone(), vars: vars.all() };
                    *self.journal.resume.lock().unwrap() = Some(at);
                }
                // the failure event must still fit: it is the history's last
                if self.journal.len() + 1 >= MAX_HISTORY {
                    return Err(fail(
                        "States.Runtime",
                        format!("The execution reached the maximum number of history events ({MAX_HISTORY})."),
                    ));
                }
                self.transitions.fetch_add(1, Ordering::Relaxed);
                let s = body.state(&name).ok_or_else(|| fail("States.Runtime", format!("no state {name}")))?;
                let (output, next) = self.state(s, input, vars).await?;
                match next {
                    Some(n) => {
                        name = n;
                        input = output;
                    }
                    None => return Ok(output),
                }
            }
        }
        .boxed()
    }

    /// Runs one state; returns its output and the next state (None: the scope ends).
    pub(super) async fn state(
        &self,
        state: &asl::State<'_>,
        input: Value,
        vars: &mut Vars,
    ) -> Result<(Value, Option<String>), Failure> {
        let (name, s, ty) = (state.name, state.raw, state.kind.name());
        self.journal.path.lock().unwrap().push(name.to_string());
        self.event(
            &format!("{ty}StateEntered"),
            json!({"name": name, "input": input}),
        );
        let entered = self.last_event();
        let next = state.next().map(str::to_string);
        let jp = !state.jsonata();
        let input = &input;
        let result = match (state.kind, jp) {
            (Kind::Task | Kind::Parallel | Kind::Map, _) => {
                self.with_retry(state, input, vars, (next, entered)).await
            }
            (Kind::Pass, true) => self.jp_pass(name, s, input, vars).map(|o| (o, next)),
            (Kind::Wait, true) => self.jp_wait(name, s, input, vars).await.map(|o| (o, next)),
            (Kind::Choice, true) => self.jp_choice(name, s, input, vars),
            (Kind::Succeed, true) => self
                .jp_input(s, input, name, vars)
                .and_then(|effective| self.jp_output(s, &effective, None, name, vars))
                .map(|o| (o, None)),
            // a Fail state's own failure, or the runtime error of reading its paths
            (Kind::Fail, true) => Err(match self.jp_fail(name, s, input, vars) {
                Ok(f) | Err(f) => f,
            }),
            (Kind::Pass, false) => self.finish(name, s, input, None, vars).map(|o| (o, next)),
            (Kind::Wait, false) => self.wait(name, s, input, vars).await.map(|o| (o, next)),
            (Kind::Choice, false) => self.choice(name, s, input, vars),
            (Kind::Succeed, false) => match s.get("Output") {
                Some(o) => Ok((
                    self.eval_field("Output", o, &self.states_var(input, name, &[]), vars)?,
                    None,
                )),
                None => Ok((input.clone(), None)),
            },
            (Kind::Fail, false) => Err(match self.fail_state(name, s, input, vars) {
                Ok(f) | Err(f) => f,
            }),
            (Kind::Unknown, _) => Err(fail(
                "States.Runtime",
                format!("unknown state type {}", s["Type"]),
            )),
        };
        let result = result.map_err(|f| self.at_state(f, name, entered));
        // an output over the quota fails the state itself: no StateExited
        let result = match result {
            Ok((out, _)) if larger_than(&out, MAX_PAYLOAD) => Err(too_large(name)),
            other => other,
        };
        if let Ok((out, _)) = &result {
            self.event(
                &format!("{ty}StateExited"),
                json!({"name": name, "output": out}),
            );
        }
        result
    }

    /// Output and Assign of a state that ends normally (Assign sees the same `$states`).
    pub(super) fn finish(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        result: Option<&Value>,
        vars: &mut Vars,
    ) -> Result<Value, Failure> {
        let extra: Vec<(&str, Value)> = result
            .map(|r| vec![("result", r.clone())])
            .unwrap_or_default();
        let st = self.states_var(input, name, &extra);
        let output = match s.get("Output") {
            Some(o) => self.eval_field("Output", o, &st, vars)?,
            None => result.cloned().unwrap_or_else(|| input.clone()),
        };
        if let Some(a) = s.get("Assign") {
            let assigned = self.eval_field("Assign", a, &st, vars)?;
            vars.assign(assigned);
        }
        Ok(output)
    }

    /// The machine's top scope, within the execution's TimeoutSeconds (`limit`) if it has one:
    /// Err when that ran out.
    pub(super) async fn bounded(
        &self,
        machine: &asl::Machine<'_>,
        input: Value,
        limit: Option<f64>,
        resume: Option<Resume>,
    ) -> Result<Result<Value, Failure>, Failure> {
        let mut vars = Vars::default();
        let opts = self.opts;
        let (start, input) = match resume {
            Some(r) => {
                vars.own = r.vars;
                (r.state, r.input)
            }
            None => (machine.top.start_at.unwrap_or_default().to_string(), input),
        };
        let Some(t) = limit else {
            return Ok(self.scope_from(&machine.top, start, input, &mut vars).await);
        };
        let after = Duration::from_secs_f64((t * opts.time_scale).max(0.0));
        // a timeout also stops an evaluation in progress, which the timer alone cannot interrupt
        if self.clock.is_real() {
            let cancel = opts.cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                cancel.cancel();
            });
        }
        let body = self.scope_from(&machine.top, start, input, &mut vars);
        // AWS gives a timed-out execution no cause (sfn-integrations' startExecution.sync
        // delegate-timeout case)
        let _ = t;
        self.clock
            .timeout(after, body)
            .await
            .map_err(|_| fail("States.Timeout", ""))
    }

    /// A runtime error as AWS words it: the state, the event it entered at, then the reason.
    pub(super) fn at_state(&self, f: Failure, name: &str, entered: usize) -> Failure {
        if !f.runtime {
            return f;
        }
        if f.error == "States.QueryEvaluationError" {
            // AWS records an expression that cannot be evaluated as an event of its own
            let details = json!({"error": f.error, "cause": f.cause, "state": name});
            self.event("EvaluationFailed", details);
        }
        let cause = format!(
            "An error occurred while executing the state '{name}' (entered at the event id #{entered}). {}",
            f.cause
        );
        thrown(f.error, cause)
    }
}

/// Where in a state an expression stands, as AWS names it: ` specified for the field
/// 'Output/result'`.
fn field_of(field: &str, at: &str) -> String {
    match (field, at) {
        ("", _) => String::new(),
        (field, "") => format!(" specified for the field '{field}'"),
        (field, at) => format!(" specified for the field '{field}/{at}'"),
    }
}

/// A path field (InputPath, OutputPath, TimeoutSecondsPath, ...) that does not read, in AWS's
/// (Jayway's) words when it finds nothing: `Invalid path '$.a.b' : No results for path:
/// $['a']['b']` when the last name is missing, `... : Missing property in path $['a']` when one
/// before it is.
pub(super) fn invalid_path(p: &str, over: &Value, m: String) -> Failure {
    let why = jsonpath::found_nothing(&m)
        .then(|| jsonpath::missing(p, over))
        .flatten();
    match why {
        Some(why) => fail("States.Runtime", format!("Invalid path '{p}' : {why}")),
        None => fail("States.Runtime", m),
    }
}

/// JSONPath: the state's input with its result placed by ResultPath (a null ResultPath keeps
/// the input, none replaces it with the result).
pub(super) fn result_path(s: &Value, input: &Value, result: Value) -> Result<Value, Failure> {
    match s.get("ResultPath") {
        Some(Value::Null) => Ok(input.clone()),
        Some(p) => jsonpath::set(p.as_str().unwrap_or("$"), input, result)
            .map_err(|m| fail("States.ResultPathMatchFailure", m)),
        None => Ok(result),
    }
}
