//! TestState: one state run on its own, as AWS's `TestState` runs it. The state's input
//! processing, its call (or the mock that stands for it), its result processing and what its
//! Retry and Catch would do with an error are reported step by step (the inspection data),
//! without an execution around it: a retriable error is reported as RETRIABLE with the backoff
//! of the attempt `retrierRetryCount` names, a caught one as CAUGHT_ERROR with the catcher's
//! index and its Next. Map and Parallel states are answered by their mock, not run.

use super::*;

/// What stands for the state's call.
#[derive(Debug, Clone)]
pub enum Mock {
    Result(Value),
    Error { error: String, cause: String },
}

/// `stateConfiguration`: where in its life the tested state is.
#[derive(Debug, Clone, Default)]
pub struct Situation {
    /// Retries already made by the retrier that matches the error.
    pub retries: u64,
    /// Map: how many iterations failed.
    pub map_failures: Option<u64>,
    /// Map with an ItemReader: the items it read.
    pub reader_data: Option<Value>,
}

/// One TestState call.
pub struct Probe<'a> {
    /// A whole definition: the tested state is found in it by name (a lone state is wrapped
    /// in one by [`Probe::wrap`]).
    pub definition: &'a Value,
    pub state: &'a str,
    pub input: Value,
    pub variables: Map<String, Value>,
    /// Merged over the default context object.
    pub context: Option<Value>,
    pub mock: Option<Mock>,
    pub situation: Situation,
}

/// TestState's answer. `data` holds the inspection data as values (the API sends each as
/// JSON text); `details` the errorDetails.
#[derive(Debug, Clone, Default)]
pub struct Probed {
    pub status: &'static str,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub next: Option<String>,
    pub data: Map<String, Value>,
    pub details: Option<Value>,
}

impl Probe<'_> {
    /// A lone state as a definition of one state named `name` (its QueryLanguage kept).
    pub fn wrap(state: &Value, name: &str) -> Value {
        let mut top = json!({"StartAt": name, "States": {name: state}});
        if let Some(ql) = state.get("QueryLanguage") {
            top["QueryLanguage"] = ql.clone();
        }
        top
    }
}

/// Answers the tested Task's call with the mock, or passes it on; notes the arguments it was
/// called with (`afterParameters` / `afterArguments`).
struct Answer<'a> {
    mock: Option<&'a Mock>,
    real: &'a dyn Tasks,
    seen: Mutex<Option<Value>>,
}

#[async_trait::async_trait]
impl Tasks for Answer<'_> {
    async fn call(&self, call: TaskCall<'_>) -> TaskResult {
        *self.seen.lock().unwrap() = Some(call.arguments.clone());
        match self.mock {
            Some(Mock::Result(v)) => TaskResult::Return(v.clone()),
            Some(Mock::Error { error, cause }) => TaskResult::Throw {
                error: error.clone(),
                cause: cause.clone(),
            },
            None => self.real.call(call).await,
        }
    }
}

/// Runs the tested state. `opts` name the execution the context object describes.
pub async fn probe(p: &Probe<'_>, opts: &Options, tasks: &dyn Tasks) -> Probed {
    let machine = asl::Machine::parse(p.definition);
    let Some((_, state)) = machine.top.find(p.state) else {
        return Probed {
            status: "FAILED",
            error: Some("States.Runtime".into()),
            cause: Some(format!("no state {}", p.state)),
            ..Default::default()
        };
    };
    let wall_start = SystemTime::now();
    let context = context_of(p, opts, wall_start);
    let journal = Journal::default();
    let answer = Answer {
        mock: p.mock.as_ref(),
        real: tasks,
        seen: Mutex::new(None),
    };
    let run = Run::new(&answer, &journal, opts, wall_start, context);
    let mut vars = Vars {
        outer: Map::new(),
        own: p.variables.clone(),
    };
    let mut out = Probed::default();
    out.data.insert("input".into(), p.input.clone());
    let attempt = match state.kind {
        Kind::Task | Kind::Parallel | Kind::Map => {
            let r = run.attempt(state, p, &vars, &answer, &mut out).await;
            run.handled(state, &p.input, &mut vars, r, p.situation.retries, &mut out)
        }
        _ => run.simple(state, &p.input, &mut vars, &mut out).await,
    };
    settle(&mut out, attempt);
    let all = vars.all();
    if !all.is_empty() {
        out.data.insert("variables".into(), Value::Object(all));
    }
    out
}

/// The context object the tested state sees: the default one, with the request's merged over it.
fn context_of(p: &Probe<'_>, opts: &Options, wall_start: SystemTime) -> Value {
    let mut context = json!({
        "Execution": {"Id": opts.execution_arn, "Name": opts.name, "Input": p.input, "StartTime": iso(wall_start), "RoleArn": opts.role_arn},
        "StateMachine": {"Id": opts.machine_arn, "Name": opts.machine_name}});
    if let Some(c) = &p.context {
        merge(&mut context, c);
    }
    context
}

/// The status, output and error of what the state did (a status already decided — RETRIABLE,
/// CAUGHT_ERROR — is kept).
fn settle(out: &mut Probed, attempt: Step) {
    match attempt {
        Ok((output, next)) => {
            out.status = if out.status.is_empty() {
                "SUCCEEDED"
            } else {
                out.status
            };
            out.output = Some(output);
            out.next = next;
        }
        Err(f) => {
            if out.status.is_empty() {
                out.status = "FAILED";
            }
            (out.error, out.cause) = (Some(f.error), Some(f.cause));
        }
    }
}

/// `over` merged into `base`, object by object.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

type Step = Result<(Value, Option<String>), Failure>;

impl Run<'_> {
    /// Pass, Wait, Choice, Succeed and Fail: run as in an execution (a Wait does not wait),
    /// with what their input and result processing made along the way.
    async fn simple(
        &self,
        state: &asl::State<'_>,
        input: &Value,
        vars: &mut Vars,
        out: &mut Probed,
    ) -> Step {
        let (name, s) = (state.name, state.raw);
        if !state.jsonata() && state.kind == Kind::Pass {
            return self.jp_pass_probed(state, input, vars, out);
        }
        if !state.jsonata() {
            if let Ok(e) = self.jp_input(s, input, name, vars) {
                out.data.insert("afterInputPath".into(), e);
            }
        }
        let quick = Options {
            time_scale: 0.0,
            ..self.opts.clone()
        };
        let run = self.with_options(&quick);
        let r = run.state(state, input.clone(), vars).await;
        r.map_err(|f| strip_position(f, name))
    }

    /// A JSONPath Pass, each step noted, its result made once: a `Result` (AWS then shows no
    /// input processing), else its Parameters over its effective input.
    fn jp_pass_probed(
        &self,
        state: &asl::State<'_>,
        input: &Value,
        vars: &mut Vars,
        out: &mut Probed,
    ) -> Step {
        let (name, s) = (state.name, state.raw);
        let result = match s.get("Result") {
            Some(r) => {
                out.data.insert("result".into(), r.clone());
                r.clone()
            }
            None => {
                let e = self.jp_input(s, input, name, vars);
                let e = e.map_err(|f| strip_position(f, name))?;
                out.data.insert("afterInputPath".into(), e.clone());
                let params = match s.get("Parameters") {
                    Some(t) => self.jp_template(t, &e, &self.context_for(name, &[]), vars)?,
                    None => e,
                };
                out.data.insert("afterParameters".into(), params.clone());
                params
            }
        };
        out.data
            .insert("afterResultSelector".into(), result.clone());
        let combined = super::walk::result_path(s, input, result.clone())?;
        out.data.insert("afterResultPath".into(), combined);
        let output = self.jp_output(s, input, Some(result), name, vars);
        let output = output.map_err(|f| strip_position(f, name))?;
        Ok((output, state.next().map(str::to_string)))
    }

    /// A Task's call (or its mock), a Map's or Parallel's mocked result, with their input
    /// processing noted.
    async fn attempt(
        &self,
        state: &asl::State<'_>,
        p: &Probe<'_>,
        vars: &Vars,
        answer: &Answer<'_>,
        out: &mut Probed,
    ) -> Result<Value, Failure> {
        let (name, s, jp) = (state.name, state.raw, !state.jsonata());
        let input = &p.input;
        if let (true, Ok(e)) = (jp, self.jp_input(s, input, name, vars)) {
            out.data.insert("afterInputPath".into(), e);
        }
        let result = match state.kind {
            Kind::Task => {
                let r = self
                    .task(name, s, jp, input, vars, p.situation.retries)
                    .await;
                if let Some(args) = answer.seen.lock().unwrap().take() {
                    out.data.insert(arguments_key(jp).into(), args);
                }
                r
            }
            Kind::Parallel => {
                let st = self.states_var(input, name, &[]);
                let args = self.arguments(s, jp, input, name, &st, vars)?;
                out.data.insert(arguments_key(jp).into(), args);
                mocked(p.mock.as_ref())
            }
            _ => self.mocked_map(state, p, vars, out),
        };
        let result = result.map_err(|f| strip_position(f, name))?;
        out.data.insert("result".into(), result.clone());
        Ok(result)
    }

    /// A Map answered by its mock: its items read and selected, its limits, and the tolerated
    /// failures weighed against `mapIterationFailureCount`.
    fn mocked_map(
        &self,
        state: &asl::State<'_>,
        p: &Probe<'_>,
        vars: &Vars,
        out: &mut Probed,
    ) -> Result<Value, Failure> {
        let (name, s, jp) = (state.name, state.raw, !state.jsonata());
        let input = &p.input;
        let st = self.states_var(input, name, &[]);
        let effective = match jp {
            true => self.jp_input(s, input, name, vars)?,
            false => input.clone(),
        };
        let items = match &p.situation.reader_data {
            Some(read) => read.as_array().cloned().unwrap_or_default(),
            None => self.map_items(state, &st, &effective, vars)?,
        };
        let items = pointed_and_batched(s, jp, items, out);
        let selector = s.get("ItemSelector").or(s.get("Parameters").filter(|_| jp));
        if selector.is_some() {
            let selected: Result<Vec<Value>, Failure> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let sel = selector.map(|t| (t, jp));
                    self.item_input(sel, &st, &effective, vars, i, item.clone())
                })
                .collect();
            out.data
                .insert("afterItemSelector".into(), Value::Array(selected?));
        }
        let limits = self.map_limits(state, input, vars)?;
        limits.note(out);
        let result = mocked(p.mock.as_ref())?;
        if let Some(failed) = p.situation.map_failures.filter(|f| *f > 0) {
            let tolerant = limits.count.is_some() || limits.share.is_some();
            if !tolerant || limits.exceeded(failed as usize, items.len().max(1)) {
                return Err(fail(
                    "States.ExceedToleratedFailureThreshold",
                    "The specified tolerated failure threshold was exceeded",
                ));
            }
        }
        Ok(result)
    }

    /// The result processing of a state that worked, or what its Retry and Catch make of its
    /// error: RETRIABLE while the matching retrier has attempts left after `retries`, then
    /// CAUGHT_ERROR through the first matching catcher, else FAILED.
    fn handled(
        &self,
        state: &asl::State<'_>,
        input: &Value,
        vars: &mut Vars,
        attempt: Result<Value, Failure>,
        retries: u64,
        out: &mut Probed,
    ) -> Step {
        let (name, s, jp) = (state.name, state.raw, !state.jsonata());
        let next = state.next().map(str::to_string);
        let failure = match attempt {
            Ok(result) if jp => {
                let selected = self.jp_selected(s, result, name, vars)?;
                out.data
                    .insert("afterResultSelector".into(), selected.clone());
                let combined = super::walk::result_path(s, input, selected.clone())?;
                out.data.insert("afterResultPath".into(), combined);
                return self
                    .jp_output(s, input, Some(selected), name, vars)
                    .map(|o| (o, next));
            }
            Ok(result) => {
                return self
                    .finish(name, s, input, Some(&result), vars)
                    .map(|o| (o, next));
            }
            Err(f) => f,
        };
        if let Some(details) = retriable(s, &failure.error, retries) {
            out.status = "RETRIABLE";
            out.details = Some(details);
            return Err(failure);
        }
        if let Some((i, c)) = super::task::catcher(s, &failure.error) {
            out.status = "CAUGHT_ERROR";
            out.details = Some(json!({"catchIndex": i}));
            let (error, cause) = (failure.error.clone(), failure.cause.clone());
            let caught = self.caught(c, jp, name, input, vars, failure);
            (out.error, out.cause) = (Some(error), Some(cause));
            return caught;
        }
        Err(failure)
    }

    /// The same run under other options.
    fn with_options<'b>(&'b self, opts: &'b Options) -> Run<'b> {
        Run::new(
            self.tasks,
            self.journal,
            opts,
            self.wall_start,
            self.context.clone(),
        )
    }
}

/// Where the inspection data shows what a state's call is made with.
fn arguments_key(jp: bool) -> &'static str {
    if jp {
        "afterParameters"
    } else {
        "afterArguments"
    }
}

/// The errorDetails of a retry, if the first retrier matching `error` has attempts left after
/// `retries`: its index and the backoff of the next attempt (MaxDelaySeconds capping it).
fn retriable(s: &Value, error: &str, retries: u64) -> Option<Value> {
    let (i, r) = super::task::retrier_for(s["Retry"].as_array()?, error)?;
    if retries >= super::task::max_attempts(r) {
        return None;
    }
    let delay = super::task::delay(r, retries).round() as u64;
    Some(json!({"retryIndex": i, "retryBackoffIntervalSeconds": delay}))
}

/// A Map's items through its ItemsPointer and ItemBatcher, each step noted.
fn pointed_and_batched(s: &Value, jp: bool, items: Vec<Value>, out: &mut Probed) -> Vec<Value> {
    let items = match pointer(s) {
        Some(p) => {
            let read = p.select(&items);
            out.data
                .insert("afterItemsPointer".into(), Value::Array(read.clone()));
            read
        }
        None => items,
    };
    if jp && s.get("ItemsPath").is_some() {
        out.data
            .insert("afterItemsPath".into(), Value::Array(items.clone()));
    }
    if let Some(batches) = batched(s, &items) {
        out.data
            .insert("afterItemBatcher".into(), Value::Array(batches));
    }
    items
}

impl super::branches::MapLimits {
    /// The limits as TestState shows them.
    fn note(&self, out: &mut Probed) {
        out.data.insert("maxConcurrency".into(), json!(self.max));
        if let Some(c) = self.count {
            out.data
                .insert("toleratedFailureCount".into(), json!(c as u64));
        }
        if let Some(share) = self.share {
            out.data
                .insert("toleratedFailurePercentage".into(), json!(share));
        }
    }
}

/// A Map's `ItemsPointer` (in the Map or its ItemReader's ReaderConfig): a JSON pointer to
/// the array of items inside what was read.
fn pointer(s: &Value) -> Option<Pointer<'_>> {
    let p = s["ItemsPointer"]
        .as_str()
        .or(s["ItemReader"]["ReaderConfig"]["ItemsPointer"].as_str())?;
    Some(Pointer(p))
}

struct Pointer<'a>(&'a str);

impl Pointer<'_> {
    /// The items the pointer selects: from the one value read (an object), or from each item.
    fn select(&self, items: &[Value]) -> Vec<Value> {
        let one = |v: &Value| v.pointer(self.0).cloned();
        match items {
            [whole] => match one(whole) {
                Some(Value::Array(a)) => a,
                Some(v) => vec![v],
                None => Vec::new(),
            },
            many => many.iter().filter_map(one).collect(),
        }
    }
}

/// A Map's ItemBatcher applied: the items in batches of at most MaxItemsPerBatch, each
/// `{"BatchInput": ..., "Items": [...]}` as AWS makes them.
fn batched(s: &Value, items: &[Value]) -> Option<Vec<Value>> {
    let b = s.get("ItemBatcher")?;
    let size = b["MaxItemsPerBatch"]
        .as_u64()
        .unwrap_or(items.len().max(1) as u64)
        .max(1);
    let chunks = items.chunks(size as usize);
    let batch = |c: &[Value]| match b.get("BatchInput") {
        Some(input) => json!({"BatchInput": input, "Items": c}),
        None => json!({"Items": c}),
    };
    Some(chunks.map(batch).collect())
}

/// The mock as the state's result (an error mock as its failure).
fn mocked(mock: Option<&Mock>) -> Result<Value, Failure> {
    match mock {
        Some(Mock::Result(v)) => Ok(v.clone()),
        Some(Mock::Error { error, cause }) => Err(thrown(error.clone(), cause.clone())),
        None => Err(fail("States.Runtime", "this state needs a mock")),
    }
}

/// A runtime error's cause without the execution's event position (a tested state has no
/// history): AWS's TestState words it with the state alone.
fn strip_position(f: Failure, name: &str) -> Failure {
    let prefix =
        format!("An error occurred while executing the state '{name}' (entered at the event id #");
    match f.cause.strip_prefix(&prefix) {
        Some(rest) => {
            let rest = rest.split_once(")").map(|(_, r)| r).unwrap_or(rest);
            let cause = format!("An error occurred while executing the state '{name}'.{rest}");
            Failure { cause, ..f }
        }
        None => f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;
    #[async_trait::async_trait]
    impl Tasks for Nothing {
        async fn call(&self, _: TaskCall<'_>) -> TaskResult {
            panic!("a mocked state calls nothing")
        }
    }

    fn go(state: Value, input: Value, mock: Option<Mock>, retries: u64) -> Probed {
        let def = Probe::wrap(&state, "S");
        let p = Probe {
            definition: &def,
            state: "S",
            input,
            variables: Map::new(),
            context: None,
            mock,
            situation: Situation {
                retries,
                ..Default::default()
            },
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(probe(&p, &Options::local("t"), &Nothing))
    }

    #[test]
    fn a_pass_state_reports_each_step_of_its_input_and_output_processing() {
        let s = json!({"Type": "Pass", "InputPath": "$.initialData", "Parameters": {"static": 1, "from.$": "$.f"},
                       "ResultPath": "$.modified", "Next": "After"});
        let p = go(s, json!({"initialData": {"f": "x"}, "other": 2}), None, 0);
        assert_eq!(p.status, "SUCCEEDED");
        assert_eq!(p.next.as_deref(), Some("After"));
        assert_eq!(p.data["afterInputPath"], json!({"f": "x"}));
        assert_eq!(p.data["afterParameters"], json!({"static": 1, "from": "x"}));
        assert_eq!(
            p.data["afterResultPath"],
            json!({"initialData": {"f": "x"}, "other": 2, "modified": {"static": 1, "from": "x"}})
        );
        assert_eq!(p.output, Some(p.data["afterResultPath"].clone()));
        // with a Result, AWS shows the result and no input processing
        let p = go(
            json!({"Type": "Pass", "Result": {"r": 1}, "End": true}),
            json!({}),
            None,
            0,
        );
        assert_eq!(p.data["result"], json!({"r": 1}));
        assert!(!p.data.contains_key("afterInputPath"));
    }

    #[test]
    fn a_mocked_map_shows_its_items_selected_batched_and_its_limits() {
        let s = json!({"Type": "Map", "ItemsPath": "$.list", "MaxConcurrency": 2, "ToleratedFailureCount": 1,
            "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
            "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"job": 7}},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true});
        let p = go(
            s,
            json!({"list": ["a", "b", "c"]}),
            Some(Mock::Result(json!([1, 2]))),
            0,
        );
        assert_eq!(p.status, "SUCCEEDED", "{:?}", p.cause);
        assert_eq!(p.data["afterItemsPath"], json!(["a", "b", "c"]));
        assert_eq!(p.data["afterItemSelector"][2], json!({"v": "c", "i": 2}));
        assert_eq!(
            p.data["afterItemBatcher"],
            json!([{"BatchInput": {"job": 7}, "Items": ["a", "b"]}, {"BatchInput": {"job": 7}, "Items": ["c"]}])
        );
        assert_eq!(
            (&p.data["maxConcurrency"], &p.data["toleratedFailureCount"]),
            (&json!(2), &json!(1))
        );
        assert_eq!(p.output, Some(json!([1, 2])));
    }

    #[test]
    fn a_mocked_error_is_retriable_until_the_retrier_is_spent_then_caught() {
        let s = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true,
            "Retry": [{"ErrorEquals": ["Other"]}, {"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "BackoffRate": 2, "MaxAttempts": 3}],
            "Catch": [{"ErrorEquals": ["Nope"], "Next": "X"}, {"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Handle"}]});
        let boom = Mock::Error {
            error: "Boom".into(),
            cause: "it broke".into(),
        };
        let p = go(s.clone(), json!({"a": 1}), Some(boom.clone()), 1);
        assert_eq!(p.status, "RETRIABLE");
        assert_eq!(
            p.details,
            Some(json!({"retryIndex": 1, "retryBackoffIntervalSeconds": 4}))
        );
        assert_eq!(p.error.as_deref(), Some("Boom"));
        let p = go(s, json!({"a": 1}), Some(boom), 3);
        assert_eq!(p.status, "CAUGHT_ERROR");
        assert_eq!(p.details, Some(json!({"catchIndex": 1})));
        assert_eq!(p.next.as_deref(), Some("Handle"));
        assert_eq!(
            p.output,
            Some(json!({"a": 1, "err": {"Error": "Boom", "Cause": "it broke"}}))
        );
    }
}
