//! Parallel and Map: branches and iterations run as futures joined together, each with its
//! own events linked to the event that began it; Map's items, batching, tolerated failures
//! and concurrency.

use super::*;

impl Run<'_> {
    pub(super) async fn parallel(
        &self,
        state: &asl::State<'_>,
        input: &Value,
        vars: &Vars,
        will_retry: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Value, Failure> {
        let (name, s) = (state.name, state.raw);
        let st = self.states_var(input, name, &[]);
        let branch_input = self.arguments(s, !state.jsonata(), input, name, &st, vars)?;
        self.event("ParallelStateStarted", json!({}));
        let branches = &state.scopes;
        // Branches run together; the first failure ends the others (AWS stops them too).
        let started = self.last_event();
        let (reused, top) = (self.reused(state), top_level(state));
        let runs = branches.iter().enumerate().map(|(i, b)| {
            let branch_input = branch_input.clone();
            let before = reused.get(&i).cloned();
            self.branch(started, async move {
                if let Some(v) = before {
                    return Ok(v);
                }
                let mut inner = vars.nested();
                let r = self.scope(b, branch_input, &mut inner).await;
                if let (Ok(v), true) = (&r, top) {
                    self.journal.done(name, i, v);
                }
                r
            })
        });
        let joined = futures::future::try_join_all(runs).await;
        self.rejoin();
        match joined {
            Ok(results) => {
                self.event("ParallelStateSucceeded", json!({}));
                Ok(Value::Array(results))
            }
            Err(f) if will_retry(&f.error) => Err(f),
            Err(f) => {
                self.event(
                    "ParallelStateFailed",
                    json!({"error": f.error, "cause": f.cause}),
                );
                Err(f)
            }
        }
    }

    pub(super) async fn map(
        &self,
        state: &asl::State<'_>,
        input: &Value,
        vars: &Vars,
        will_retry: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Value, Failure> {
        let (name, s) = (state.name, state.raw);
        let (st, effective, inputs) = self.map_start(state, input, vars, will_retry).await?;
        let total = inputs.len();
        self.event("MapStateStarted", json!({"length": total}));
        let limits = self.map_limits(state, input, vars)?;
        let processor = state
            .processor()
            .ok_or_else(|| fail("States.Runtime", format!("{name}: no ItemProcessor")))?;
        // A Distributed Map runs its items as child executions of a Map Run: the parent's
        // history records the Map Run, not the iterations.
        let distributed = processor.raw["ProcessorConfig"]["Mode"] == "DISTRIBUTED";
        // a Map Run tolerates no failure unless told (AWS: 0%, then
        // States.ExceedToleratedFailureThreshold); an inline Map fails with the item's error
        let tolerant = distributed || limits.count.is_some() || limits.share.is_some();
        let map_run = distributed.then(|| self.map_run_started(state, total, &limits));
        let (started, reused) = (self.last_event(), self.reused(state));
        let written: Vec<Value> = match s.get("ResultWriter") {
            Some(_) => inputs
                .iter()
                .map(|i| i.clone().unwrap_or(Value::Null))
                .collect(),
            None => Vec::new(),
        };
        let iterations = inputs.into_iter().enumerate().map(|(i, item_input)| {
            let before = reused.get(&i).cloned();
            let child = self.child_started(map_run.as_deref(), i, &item_input);
            let iteration = self.map_iteration(state, i, item_input, processor, vars, before);
            let run = self.branch(started, iteration);
            async move {
                match distributed {
                    true => self.as_child(child, run).await,
                    false => run.await,
                }
            }
        });
        // MaxConcurrency 0 (or none) is as many as AWS runs at once for an inline Map (40, its
        // documented quota); results keep the items' order.
        let at_once = Some(limits.max).filter(|m| *m > 0);
        let at_once = at_once.unwrap_or(INLINE_MAP_CONCURRENCY);
        let running = futures::stream::iter(iterations).buffered(at_once);
        let results = self
            .gather(running, total, tolerant, &limits, map_run.as_deref())
            .await;
        let written = (written, map_run.unwrap_or_default());
        let (results, writes) = self
            .written(state, &st, &effective, vars, written, results)
            .await;
        self.map_ended(results, distributed, writes, will_retry)
    }

    /// A Map's state variable, effective input and the inputs of its iterations (from its
    /// ItemReader, Items / ItemsPath or its input; ItemsPath has nothing to say with a reader,
    /// as AWS records it).
    async fn map_start(
        &self,
        state: &asl::State<'_>,
        input: &Value,
        vars: &Vars,
        will_retry: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(Value, Value, Vec<Result<Value, Failure>>), Failure> {
        let (name, s) = (state.name, state.raw);
        let st = self.states_var(input, name, &[]);
        let effective = match state.jsonata() {
            false => self.jp_input(s, input, name, vars)?,
            true => input.clone(),
        };
        let entered = self.last_event();
        let items = match s.get("ItemReader") {
            Some(_) => self.read_items(state, &st, &effective, vars).await,
            None => self.map_items(state, &st, &effective, vars),
        };
        let items = items.map_err(|f| self.unread_items(f, name, entered, will_retry))?;
        let inputs = self.map_inputs(state, &st, &effective, vars, items)?;
        Ok((st, effective, inputs))
    }

    /// A Distributed Map's iteration starting as a child execution of its Map Run (where the
    /// endpoint records them): the recorder and the child's ARN.
    fn child_started(
        &self,
        map_run: Option<&str>,
        i: usize,
        input: &Result<Value, Failure>,
    ) -> Option<(std::sync::Arc<dyn Children>, String)> {
        let (c, run) = self.opts.children.as_ref().zip(map_run)?;
        let input = input.as_ref().ok()?;
        Some((
            c.clone(),
            c.started(&self.opts.execution_arn, run, i, input),
        ))
    }

    /// Runs a Distributed Map's iteration as a child execution: its events are its own, not
    /// the parent's, and its end is recorded.
    async fn as_child(
        &self,
        child: Option<(std::sync::Arc<dyn Children>, String)>,
        run: impl std::future::Future<Output = Result<Value, Failure>>,
    ) -> Result<Value, Failure> {
        let r = CHILD_EXECUTION.scope((), run).await;
        if let Some((c, arn)) = child {
            let outcome = r.as_ref().map_err(|f| (f.error.as_str(), f.cause.as_str()));
            c.ended(&arn, outcome);
        }
        r
    }

    /// Each item as its iteration takes it: selected (ItemSelector), then in batches
    /// (ItemBatcher).
    fn map_inputs(
        &self,
        state: &asl::State<'_>,
        st: &Value,
        effective: &Value,
        vars: &Vars,
        items: Vec<Value>,
    ) -> Result<Vec<Result<Value, Failure>>, Failure> {
        let (s, jp) = (state.raw, !state.jsonata());
        let parameters = s.get("Parameters").filter(|_| jp);
        let selector = s.get("ItemSelector").or(parameters).map(|s| (s, jp));
        let inputs: Vec<Result<Value, Failure>> = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| self.item_input(selector, st, effective, vars, i, item))
            .collect();
        if s.get("ItemBatcher").is_none() {
            return Ok(inputs);
        }
        let selected = inputs.into_iter().collect::<Result<Vec<_>, _>>()?;
        let batches = self.batches(state, st, effective, vars, selected)?;
        Ok(batches.into_iter().map(Ok).collect())
    }

    /// With a ResultWriter, the iterations' ends written (`written`: their inputs, and the Map
    /// Run) and its answer as the one result; whether it wrote.
    async fn written(
        &self,
        state: &asl::State<'_>,
        st: &Value,
        effective: &Value,
        vars: &Vars,
        (inputs, run): (Vec<Value>, String),
        results: Result<Vec<Result<Value, Failure>>, Failure>,
    ) -> (Result<Vec<Result<Value, Failure>>, Failure>, bool) {
        match (results, state.raw.get("ResultWriter")) {
            (Ok(ended), Some(_)) => {
                let ended: Vec<reader::Ended> = inputs
                    .into_iter()
                    .zip(ended)
                    .map(|(input, outcome)| reader::Ended { input, outcome })
                    .collect();
                let out = self.write_results(state, st, effective, vars, &run, ended);
                (out.await.map(|v| vec![Ok(v)]), true)
            }
            (results, _) => (results, false),
        }
    }

    /// On a redrive resuming at `state`: the results of its iterations or branches that
    /// succeeded before (once: a later run of the state runs them all).
    fn reused(&self, state: &asl::State<'_>) -> Done {
        let mut reuse = self.reuse.lock().unwrap();
        match reuse.take() {
            Some((at, done)) if at == state.name => done,
            other => {
                *reuse = other;
                Done::new()
            }
        }
    }

    /// An item list that cannot be read fails the Map before it starts.
    fn unread_items(
        &self,
        f: Failure,
        name: &str,
        entered: usize,
        will_retry: &(dyn Fn(&str) -> bool + Sync),
    ) -> Failure {
        let f = self.at_state(f, name, entered);
        if !will_retry(&f.error) {
            self.event("MapStateFailed", json!({}));
        }
        f
    }

    /// The events of a Map's end (and its Map Run's), and what it gives.
    fn map_ended(
        &self,
        results: Result<Vec<Result<Value, Failure>>, Failure>,
        distributed: bool,
        written: bool,
        will_retry: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Value, Failure> {
        let results = match results {
            Ok(results) => results,
            Err(failure) => {
                if distributed {
                    let (error, cause) = (&failure.error, &failure.cause);
                    self.event("MapRunFailed", json!({"error": error, "cause": cause}));
                }
                if !will_retry(&failure.error) {
                    self.event("MapStateFailed", json!({}));
                }
                return Err(failure);
            }
        };
        if distributed {
            self.event("MapRunSucceeded", json!({}));
        }
        self.event("MapStateSucceeded", json!({}));
        // a tolerated failure is its error and cause among the results
        let mut results: Vec<Value> = results
            .into_iter()
            .map(|r| r.unwrap_or_else(|f| json!({"Error": f.error, "Cause": f.cause})))
            .collect();
        match written {
            // the ResultWriter's answer is the Map's output
            true => Ok(results.pop().unwrap_or(Value::Null)),
            false => Ok(Value::Array(results)),
        }
    }

    /// The iterations' results in the items' order, a failed one as its error and cause where
    /// failures are tolerated; the Map's failure once they are more than tolerated.
    async fn gather(
        &self,
        running: impl futures::Stream<Item = Result<Value, Failure>>,
        total: usize,
        tolerant: bool,
        limits: &MapLimits,
        map_run: Option<&str>,
    ) -> Result<Vec<Result<Value, Failure>>, Failure> {
        let mut running = std::pin::pin!(running);
        let mut results = Vec::with_capacity(total);
        let mut failures = 0usize;
        while let Some(r) = running.next().await {
            self.rejoin();
            if let Some(run) = map_run {
                self.journal.map_run_progress(run, r.is_ok());
            }
            let f = match r {
                Ok(v) => {
                    results.push(Ok(v));
                    continue;
                }
                Err(f) => f,
            };
            failures += 1;
            if !tolerant {
                return Err(f);
            }
            if limits.exceeded(failures, total) {
                return Err(fail(
                    "States.ExceedToleratedFailureThreshold",
                    format!(
                        "{failures} of {total} iterations failed, more than tolerated (last: {}: {})",
                        f.error, f.cause
                    ),
                ));
            }
            results.push(Err(f));
        }
        Ok(results)
    }

    /// The Map Run that a Distributed Map's iterations run in, named as AWS names it:
    /// `arn:...:mapRun:<state machine>/<Label or state name>:<id>`.
    fn map_run_started(&self, state: &asl::State<'_>, total: usize, limits: &MapLimits) -> String {
        let arn = &self.opts.execution_arn;
        let (runs, rest) = arn.split_once(":execution:").unwrap_or((arn, ""));
        let machine = rest.split(':').next().unwrap_or_default();
        let label = state.raw["Label"].as_str().unwrap_or(state.name);
        let map_run = format!("{runs}:mapRun:{machine}/{label}:{}", uuid::Uuid::new_v4());
        // what DescribeMapRun tells besides the ARN (GetExecutionHistory shows the ARN alone)
        self.event(
            "MapRunStarted",
            json!({"mapRunArn": map_run, "total": total, "maxConcurrency": limits.max,
                   "toleratedFailureCount": limits.count, "toleratedFailurePercentage": limits.share,
                   "stateMachineArn": format!("{runs}:stateMachine:{machine}/{label}")}),
        );
        map_run
    }

    /// An iteration's input: the item, or what the ItemSelector (JSONPath or not) makes of
    /// it, with `$$.Map.Item` in the context.
    pub(super) fn item_input(
        &self,
        selector: Option<(&Value, bool)>,
        st: &Value,
        effective: &Value,
        vars: &Vars,
        i: usize,
        item: Value,
    ) -> Result<Value, Failure> {
        let Some((sel, jp)) = selector else {
            return Ok(item);
        };
        let mut ist = st.clone();
        ist["context"]["Map"] = json!({"Item": {"Index": i, "Value": item}});
        if jp {
            self.jp_template(sel, effective, &ist["context"], vars)
        } else {
            self.eval_field("ItemSelector", sel, &ist, vars)
        }
    }

    /// A Map's items: `Items` (JSONata), `ItemsPath` (JSONPath) or the input, an array.
    pub(super) fn map_items(
        &self,
        state: &asl::State<'_>,
        st: &Value,
        effective: &Value,
        vars: &Vars,
    ) -> Result<Vec<Value>, Failure> {
        let (jp, s) = (!state.jsonata(), state.raw);
        let items = match (jp, s.get("Items"), s.get("ItemsPath")) {
            (false, Some(i), _) => {
                let items = self.eval_field("Items", i, st, vars)?;
                return match items {
                    Value::Array(a) => Ok(a),
                    other => Err(fail(
                        "States.QueryEvaluationError",
                        unexpected_type(i, "Items", "array", &other),
                    )),
                };
            }
            (true, _, Some(p)) => {
                let path = p.as_str().unwrap_or("$");
                jsonpath::expression(path, effective, &st["context"], &vars.all())
                    .map_err(|m| fail("States.Runtime", m))?
            }
            _ => effective.clone(),
        };
        let error = if jp {
            "States.Runtime"
        } else {
            "States.QueryEvaluationError"
        };
        items.as_array().cloned().ok_or_else(|| {
            fail(
                error,
                format!("Map state input must be an array but was: {items}"),
            )
        })
    }

    /// MaxConcurrency and the tolerated failures, in AWS's ranges: a concurrency and a count
    /// are non-negative integers, a percentage is 0 to 100; a value read from the input
    /// (…Path) or an expression that is out of range fails the state.
    pub(super) fn map_limits(
        &self,
        state: &asl::State<'_>,
        input: &Value,
        vars: &Vars,
    ) -> Result<MapLimits, Failure> {
        let (name, s) = (state.name, state.raw);
        let error = if state.jsonata() {
            "States.QueryEvaluationError"
        } else {
            "States.Runtime"
        };
        let whole = |x: f64| x >= 0.0 && x.fract() == 0.0;
        // each out of range in the words given: AWS's for a percentage, this engine's otherwise
        let checked =
            |field: &str, ok: &dyn Fn(f64) -> bool, why: &dyn Fn(f64) -> String| match self
                .number(s, field, input, name, vars)?
            {
                Some(x) if !ok(x) => Err(fail(error, why(x))),
                v => Ok(v),
            };
        // AWS's words for a negative count (ToleratedFailureCount's recorded), this engine's for
        // a fraction
        let integer = |field: &'static str| {
            move |x: f64| match x < 0.0 {
                true => format!("{field} cannot be negative."),
                false => format!("{name}: {field} is {x}; it must be a non-negative integer"),
            }
        };
        let (max, count) = ("MaxConcurrency", "ToleratedFailureCount");
        Ok(MapLimits {
            max: checked(max, &whole, &integer(max))?.unwrap_or(0.0) as usize,
            count: checked(count, &whole, &integer(count))?,
            share: checked(
                "ToleratedFailurePercentage",
                &|x| (0.0..=100.0).contains(&x),
                &|_| "ToleratedFailurePercentage must be between 0 and 100.".into(),
            )?,
        })
    }

    /// One iteration of a Map: its input (or the failure to make it), the item processor run
    /// on it, with its events.
    async fn map_iteration(
        &self,
        state: &asl::State<'_>,
        i: usize,
        input: Result<Value, Failure>,
        processor: &asl::Scope<'_>,
        vars: &Vars,
        before: Option<Value>,
    ) -> Result<Value, Failure> {
        // a redrive runs again only the iterations that did not succeed (`before`: the result
        // of one that did)
        if let Some(v) = before {
            return Ok(v);
        }
        let name = state.name;
        let r = self.iteration(name, i, input, processor, vars).await;
        if let (Ok(v), true) = (&r, top_level(state)) {
            self.journal.done(name, i, v);
        }
        r
    }

    async fn iteration(
        &self,
        name: &str,
        i: usize,
        input: Result<Value, Failure>,
        processor: &asl::Scope<'_>,
        vars: &Vars,
    ) -> Result<Value, Failure> {
        self.event("MapIterationStarted", json!({"name": name, "index": i}));
        let r = match input {
            Ok(item) => self.scope(processor, item, &mut vars.nested()).await,
            Err(f) => Err(f),
        };
        let kind = if r.is_ok() {
            "MapIterationSucceeded"
        } else {
            "MapIterationFailed"
        };
        self.event(kind, json!({"name": name, "index": i}));
        r
    }
}

/// A state of the machine's top level (not inside a branch or an item processor).
fn top_level(state: &asl::State<'_>) -> bool {
    state.pointer.matches("/States/").count() == 1
}

/// How many iterations of a Map run at once (0: as many as AWS allows), and how many failures
/// it tolerates, as a count and as a share of the items.
pub(super) struct MapLimits {
    pub(super) max: usize,
    pub(super) count: Option<f64>,
    pub(super) share: Option<f64>,
}

impl MapLimits {
    /// `failures` of `total` iterations are more than both limits tolerate.
    pub(super) fn exceeded(&self, failures: usize, total: usize) -> bool {
        let over_count = self.count.is_none_or(|c| failures as f64 > c);
        let over_share = self
            .share
            .is_none_or(|p| failures as f64 * 100.0 / total as f64 > p);
        over_count && over_share
    }
}

/// AWS's words for a JSONata expression (or literal) in `field` that gave a value of another
/// type than `expected`.
fn unexpected_type(written: &Value, field: &str, expected: &str, got: &Value) -> String {
    let expr = match written.as_str() {
        Some(t) => crate::validate::expr::jsonata_of(t)
            .unwrap_or(t)
            .trim()
            .to_string(),
        None => written.to_string(),
    };
    let ty = match got {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    format!(
        "The JSONata expression '{expr}' specified for the field '{field}' returned an unexpected result type. Expected '{expected}', but was '{ty}' for value: {got}"
    )
}
