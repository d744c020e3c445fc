//! The states that call nothing: Pass, Wait, Choice and Fail, in JSONPath and in JSONata.

use super::*;

impl Run<'_> {
    /// A JSONPath Pass: Result, else Parameters over the effective input, else the input.
    pub(super) fn jp_pass(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<Value, Failure> {
        let effective = self.jp_input(s, input, name, vars)?;
        let result = match (s.get("Result"), s.get("Parameters")) {
            (Some(r), _) => r.clone(),
            (None, Some(p)) => {
                self.jp_template(p, &effective, &self.context_for(name, &[]), vars)?
            }
            (None, None) => effective,
        };
        self.jp_output(s, input, Some(result), name, vars)
    }

    /// A JSONPath Wait: Seconds, SecondsPath, Timestamp or TimestampPath.
    pub(super) async fn jp_wait(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<Value, Failure> {
        let effective = self.jp_input(s, input, name, vars)?;
        let ctx = self.context_for(name, &[]);
        let path = |p: &Value| {
            jsonpath::expression(p.as_str().unwrap_or("$"), &effective, &ctx, &vars.all())
                .map_err(|m| fail("States.Runtime", m))
        };
        // AWS's words for a SecondsPath that reads nothing, or a negative number
        let seconds_path = |p: &Value| {
            let text = p.as_str().unwrap_or("$");
            let got = jsonpath::expression(text, &effective, &ctx, &vars.all());
            match got {
                Err(m) if jsonpath::found_nothing(&m) => Err(fail(
                    "States.Runtime",
                    format!("The SecondsPath parameter does not reference an input value: {text}"),
                )),
                Err(m) => Err(fail("States.Runtime", m)),
                Ok(v) if v.as_i64().is_some_and(|n| n < 0) => Err(fail(
                    "States.Runtime",
                    format!("The SecondsPath parameter references a negative value: {text} == {v}"),
                )),
                Ok(v) => Ok(v),
            }
        };
        let secs = match (
            s.get("Seconds"),
            s.get("SecondsPath"),
            s.get("Timestamp"),
            s.get("TimestampPath"),
        ) {
            (Some(v), ..) => v.as_f64().unwrap_or(0.0),
            (None, Some(p), ..) => match seconds_path(p)? {
                // AWS: a non-negative integer
                v if v.as_u64().is_some() => v.as_f64().unwrap_or(0.0),
                v => {
                    let p = p.as_str().unwrap_or("");
                    let why = format!(
                        "The SecondsPath parameter cannot be parsed as a long value: {p} == {v}"
                    );
                    return Err(fail("States.Runtime", why));
                }
            },
            (None, None, Some(t), _) => self.until(t, "States.Runtime", None)?,
            (None, None, None, Some(p)) => self.until(&path(p)?, "States.Runtime", p.as_str())?,
            _ => 0.0,
        };
        self.sleep(secs).await;
        self.jp_output(s, &effective, None, name, vars)
    }

    /// A JSONPath Choice: the first rule that matches (its Assign applied), else Default.
    pub(super) fn jp_choice(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<(Value, Option<String>), Failure> {
        let effective = self.jp_input(s, input, name, vars)?;
        let ctx = self.context_for(name, &[]);
        let mut to = None;
        for (i, r) in s["Choices"].as_array().into_iter().flatten().enumerate() {
            if jsonpath::rule(r, &effective, &ctx, &vars.all())
                .map_err(|m| fail("States.Runtime", m))?
            {
                self.journal.reach(Reached::Rule(name.into(), i));
                if let Some(a) = r.get("Assign") {
                    let assigned = self.jp_template(a, &effective, &ctx, vars)?;
                    vars.assign(assigned);
                }
                to = r["Next"].as_str().map(str::to_string);
                break;
            }
        }
        if to.is_none() && s.get("Default").is_some() {
            self.journal.reach(Reached::Default(name.into()));
        }
        let Some(to) = to.or_else(|| s["Default"].as_str().map(str::to_string)) else {
            return Err(fail(
                "States.NoChoiceMatched",
                format!("no Choice rule matched in {name}"),
            ));
        };
        Ok((self.jp_output(s, &effective, None, name, vars)?, Some(to)))
    }

    /// A JSONPath Fail: Error / Cause, or ErrorPath / CausePath (a path or an intrinsic) over
    /// the input; a path that is not there, or not a string, fails with States.Runtime.
    pub(super) fn jp_fail(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &Vars,
    ) -> Result<Failure, Failure> {
        let ctx = self.context_for(name, &[]);
        let pick = |k: &str, kp: &str| -> Result<Option<String>, Failure> {
            if let Some(v) = s[k].as_str() {
                return Ok(Some(v.to_string()));
            }
            let Some(p) = s[kp].as_str() else {
                return Ok(None);
            };
            let v = jsonpath::expression(p, input, &ctx, &vars.all()).map_err(|m| {
                // AWS's words for a path field of a Fail state that finds nothing
                let why = match jsonpath::found_nothing(&m) {
                    true => format!(
                        "The JSONPath '{p}' specified for the field '{kp}' could not be found in the input '{input}'"
                    ),
                    false => format!("{name}: {kp}: {m}"),
                };
                fail("States.Runtime", why)
            })?;
            match v {
                Value::String(t) => Ok(Some(t)),
                other => Err(fail(
                    "States.Runtime",
                    format!("{name}: {kp} {p} gives {other}, not a string"),
                )),
            }
        };
        // what the state names: not a runtime error of its own
        Ok(thrown(
            pick("Error", "ErrorPath")?.unwrap_or_default(),
            pick("Cause", "CausePath")?.unwrap_or_default(),
        ))
    }

    /// A JSONata Fail: Error and Cause evaluated.
    pub(super) fn fail_state(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<Failure, Failure> {
        let st = self.states_var(input, name, &[]);
        let text = |k: &str| -> Result<Option<String>, Failure> {
            let v = s
                .get(k)
                .map(|e| self.eval_field(k, e, &st, vars))
                .transpose()?;
            Ok(v.and_then(|v| v.as_str().map(str::to_string)))
        };
        let (error, cause) = (text("Error")?, text("Cause")?);
        Ok(thrown(error.unwrap_or_default(), cause.unwrap_or_default()))
    }

    /// A JSONata Wait: Seconds or Timestamp evaluated.
    pub(super) async fn wait(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<Value, Failure> {
        let st = self.states_var(input, name, &[]);
        let secs = match (s.get("Seconds"), s.get("Timestamp")) {
            (Some(v), _) => match self.eval_field("Seconds", v, &st, vars)? {
                v if v.as_u64().is_some() => v.as_f64().unwrap_or(0.0),
                v => {
                    return Err(fail(
                        "States.QueryEvaluationError",
                        format!("{name}: Seconds gives {v}, not a non-negative integer"),
                    ));
                }
            },
            (None, Some(t)) => self.until(
                &self.eval_field("Timestamp", t, &st, vars)?,
                "States.QueryEvaluationError",
                None,
            )?,
            _ => 0.0,
        };
        self.sleep(secs).await;
        self.finish(name, s, input, None, vars)
    }

    /// A JSONata Choice: the first rule whose Condition is true (its Assign applied), else
    /// Default.
    pub(super) fn choice(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<(Value, Option<String>), Failure> {
        let st = self.states_var(input, name, &[]);
        let mut chosen = None;
        for (i, rule) in s["Choices"].as_array().into_iter().flatten().enumerate() {
            let matched = match self.eval_field("Condition", &rule["Condition"], &st, vars)? {
                Value::Bool(b) => b,
                other => {
                    return Err(fail(
                        "States.QueryEvaluationError",
                        format!("{name}: the Condition gives {other}, not a boolean"),
                    ));
                }
            };
            if matched {
                self.journal.reach(Reached::Rule(name.into(), i));
                chosen = Some(rule);
                break;
            }
        }
        if let Some(rule) = chosen {
            // the rule's own Output and Assign, else the state's
            let output = match rule.get("Output").or(s.get("Output")) {
                Some(o) => self.eval_field("Output", o, &st, vars)?,
                None => input.clone(),
            };
            let mut assigned = Map::new();
            for a in [s.get("Assign"), rule.get("Assign")].into_iter().flatten() {
                if let Value::Object(m) = self.eval_field("Assign", a, &st, vars)? {
                    assigned.extend(m);
                }
            }
            vars.assign(Value::Object(assigned));
            return Ok((output, rule["Next"].as_str().map(str::to_string)));
        }
        match s["Default"].as_str().map(str::to_string) {
            Some(n) => {
                self.journal.reach(Reached::Default(name.into()));
                self.finish(name, s, input, None, vars)
                    .map(|o| (o, Some(n)))
            }
            None => Err(fail(
                "States.NoChoiceMatched",
                format!("no Choice rule matched in {name}"),
            )),
        }
    }

    /// Seconds from now until a timestamp (RFC 3339, as `jsonpath::timestamp` reads it); 0 if
    /// it has passed. One that is not a timestamp fails with `error`.
    pub(super) fn until(&self, t: &Value, error: &str, path: Option<&str>) -> Result<f64, Failure> {
        let (secs, nanos) = t.as_str().and_then(jsonpath::timestamp).ok_or_else(|| {
            // AWS's words: the TimestampPath and the value it read, or the Timestamp's value
            let text = t
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| t.to_string());
            let iso = "ISO-8601 extended offset date-time format string";
            fail(
                error,
                match path {
                    Some(p) => format!(
                        "The TimestampPath parameter does not reference a valid {iso}: {p} == {text}"
                    ),
                    None => format!("The Timestamp field cannot be parsed as an {iso}: {text}"),
                },
            )
        })?;
        let when = secs as f64 + nanos as f64 / 1e9;
        let now = aws_smithy_types::DateTime::from(self.wall_start + self.elapsed());
        let delay = (when - now.as_secs_f64()).max(0.0);
        // AWS keeps a delay in 32 bits of seconds (about 68 years)
        if delay > i32::MAX as f64 {
            return Err(fail(error, "Wait state delay is too long."));
        }
        Ok(delay)
    }
}
