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
        let runs = branches.iter().map(|b| {
            let branch_input = branch_input.clone();
            self.branch(started, async move {
                let mut inner = vars.nested();
                self.scope(b, branch_input, &mut inner).await
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
        let st = self.states_var(input, name, &[]);
        let jp = !state.jsonata();
        let effective = if jp {
            self.jp_input(s, input, name, vars)?
        } else {
            input.clone()
        };
        let items = match (jp, s.get("Items"), s.get("ItemsPath")) {
            (false, Some(i), _) => self.eval(i, &st, vars)?,
            (true, _, Some(p)) => jsonpath::expression(
                p.as_str().unwrap_or("$"),
                &effective,
                &st["context"],
                &vars.all(),
            )
            .map_err(|m| fail("States.Runtime", m))?,
            _ => effective.clone(),
        };
        let items = items.as_array().cloned().ok_or_else(|| {
            fail(
                if jp {
                    "States.Runtime"
                } else {
                    "States.QueryEvaluationError"
                },
                format!("Map state input must be an array but was: {items}"),
            )
        })?;
        let total = items.len();
        // AWS's ranges: a concurrency and a count are non-negative integers, a percentage is
        // 0 to 100; a value read from the input (…Path) or an expression that is out of range
        // fails the state
        let error = if jp {
            "States.Runtime"
        } else {
            "States.QueryEvaluationError"
        };
        let checked = |field: &str, v: Option<f64>, ok: &dyn Fn(f64) -> bool, what: &str| match v {
            Some(x) if !ok(x) => Err(fail(
                error,
                format!("{name}: {field} is {x}; it must be {what}"),
            )),
            v => Ok(v),
        };
        let whole = |x: f64| x >= 0.0 && x.fract() == 0.0;
        let max = checked(
            "MaxConcurrency",
            self.number(s, "MaxConcurrency", input, name, vars)?,
            &whole,
            "a non-negative integer",
        )?
        .unwrap_or(0.0) as usize;
        let tolerated_count = checked(
            "ToleratedFailureCount",
            self.number(s, "ToleratedFailureCount", input, name, vars)?,
            &whole,
            "a non-negative integer",
        )?;
        let tolerated_share = checked(
            "ToleratedFailurePercentage",
            self.number(s, "ToleratedFailurePercentage", input, name, vars)?,
            &|x| (0.0..=100.0).contains(&x),
            "a number from 0 to 100",
        )?;
        self.event("MapStateStarted", json!({"length": total}));
        let processor = state
            .processor()
            .ok_or_else(|| fail("States.Runtime", format!("{name}: no ItemProcessor")))?;
        // A Distributed Map runs its items as child executions of a Map Run: the parent's
        // history records the Map Run, not the iterations.
        let distributed = processor.raw["ProcessorConfig"]["Mode"] == "DISTRIBUTED";
        // a Map Run tolerates no failure unless told (AWS: 0%, then
        // States.ExceedToleratedFailureThreshold); an inline Map fails with the item's error
        let tolerant = distributed || tolerated_count.is_some() || tolerated_share.is_some();
        if distributed {
            let map_run = format!(
                "{}/{name}:{}",
                self.opts.execution_arn.replace(":execution:", ":mapRun:"),
                uuid::Uuid::new_v4()
            );
            self.event("MapRunStarted", json!({"mapRunArn": map_run}));
        }
        let selector = s
            .get("ItemSelector")
            .or(if jp { s.get("Parameters") } else { None });
        let started = self.last_event();
        let iterations = items.into_iter().enumerate().map(|(i, item)| {
            let (st, effective) = (&st, &effective);
            let run = self.branch(started, async move {
                self.event("MapIterationStarted", json!({"name": name, "index": i}));
                let mut ist = st.clone();
                ist["context"]["Map"] = json!({"Item": {"Index": i, "Value": item}});
                let item_input = match (selector, jp) {
                    (Some(sel), true) => self.jp_template(sel, effective, &ist["context"], vars)?,
                    (Some(sel), false) => self.eval(sel, &ist, vars)?,
                    (None, _) => item,
                };
                let mut inner = vars.nested();
                let r = self.scope(processor, item_input, &mut inner).await;
                let kind = if r.is_ok() {
                    "MapIterationSucceeded"
                } else {
                    "MapIterationFailed"
                };
                self.event(kind, json!({"name": name, "index": i}));
                r
            });
            async move {
                if distributed {
                    CHILD_EXECUTION.scope((), run).await
                } else {
                    run.await
                }
            }
        });
        // MaxConcurrency 0 (or none) is as many as AWS runs at once for an inline Map (40, its
        // documented quota); results keep the items' order.
        let mut running = futures::stream::iter(iterations).buffered(if max == 0 {
            INLINE_MAP_CONCURRENCY
        } else {
            max
        });
        let mut results = Vec::with_capacity(total);
        let mut failures = 0usize;
        while let Some(r) = running.next().await {
            self.rejoin();
            match r {
                Ok(v) => results.push(v),
                Err(f) => {
                    failures += 1;
                    let over_count = tolerated_count.is_none_or(|c| failures as f64 > c);
                    let over_share =
                        tolerated_share.is_none_or(|p| failures as f64 * 100.0 / total as f64 > p);
                    if !tolerant || (over_count && over_share) {
                        let failure = if tolerant {
                            fail(
                                "States.ExceedToleratedFailureThreshold",
                                format!(
                                    "{failures} of {total} iterations failed, more than tolerated (last: {}: {})",
                                    f.error, f.cause
                                ),
                            )
                        } else {
                            f
                        };
                        if distributed {
                            self.event(
                                "MapRunFailed",
                                json!({"error": failure.error, "cause": failure.cause}),
                            );
                        }
                        if !will_retry(&failure.error) {
                            self.event("MapStateFailed", json!({}));
                        }
                        return Err(failure);
                    }
                    results.push(json!({"Error": f.error, "Cause": f.cause}));
                }
            }
        }
        if distributed {
            self.event("MapRunSucceeded", json!({}));
        }
        self.event("MapStateSucceeded", json!({}));
        Ok(Value::Array(results))
    }
}
