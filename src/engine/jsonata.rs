//! JSONata in Step Functions: strings written `{% ... %}` are expressions, evaluated with
//! jsonata-core, `$states` and the workflow's variables bound; every other value is literal.

use jsonata_core::evaluator::{CancelToken, Context, Evaluator, EvaluatorError, EvaluatorOptions};
use jsonata_core::parser;
use jsonata_core::value::JValue;
use serde_json::{Map, Value};

thread_local! {
    /// Parsed expressions: a workflow evaluates the same few expressions over and over.
    static PARSED: std::cell::RefCell<std::collections::HashMap<String, std::rc::Rc<jsonata_core::ast::AstNode>>> = Default::default();
}

fn parsed(expr: &str) -> Result<std::rc::Rc<jsonata_core::ast::AstNode>, String> {
    if let Some(ast) = PARSED.with(|p| p.borrow().get(expr).cloned()) {
        return Ok(ast);
    }
    let ast = std::rc::Rc::new(parser::parse(expr).map_err(|e| format!("{expr}: {e}"))?);
    PARSED.with(|p| p.borrow_mut().insert(expr.to_string(), ast.clone()));
    Ok(ast)
}

/// The longest sequence an expression may build: no state's input or output can hold more
/// elements than its 256 KiB allow (each takes at least two bytes), so a longer one could only
/// fail later, after taking gigabytes. Past it the evaluation stops (`D2015`).
pub const MAX_SEQUENCE: usize = 256 * 1024 / 2;

/// Why an evaluation failed, as Step Functions names it.
pub enum EvalError {
    /// The expression failed (`States.QueryEvaluationError`).
    Query(String),
    /// It built more than a payload can hold (`States.DataLimitExceeded`).
    TooLarge(String),
    /// The execution was stopped while it ran.
    Cancelled,
    /// An expression gave nothing (`States.QueryEvaluationError`): the expression, and where
    /// it stands in the template (`result`, `a/b`; empty for the whole template).
    Undefined { expr: String, at: String },
    /// An expression gave a function, which no field can hold.
    Unsupported { expr: String, at: String },
}

/// Evaluates one expression. `cancel` stops it from another thread (StopExecution, a
/// timeout); it also stops after 10 s of work, and past `MAX_SEQUENCE` elements.
pub fn eval_expression(
    expr: &str,
    states: &Value,
    vars: &Map<String, Value>,
    cancel: &CancelToken,
) -> Result<Value, EvalError> {
    let ast = parsed(expr).map_err(EvalError::Query)?;
    let mut ctx = Context::new();
    ctx.bind("states".into(), JValue::from(states.clone()));
    for (k, v) in vars {
        ctx.bind(k.clone(), JValue::from(v.clone()));
    }
    let options = EvaluatorOptions {
        timeout_ms: Some(10_000),
        cancel: Some(cancel.clone()),
        max_sequence_length: Some(MAX_SEQUENCE),
        ..Default::default()
    };
    let mut ev = Evaluator::with_options(ctx, options);
    register_step_functions_additions(&mut ev);
    // A long evaluation must not hold a worker the endpoint needs for other requests.
    let mut evaluate = || ev.evaluate(ast.as_ref(), &JValue::Undefined);
    let result = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(evaluate)
        }
        _ => evaluate(),
    };
    let v = result.map_err(|e| {
        let text = e.to_string();
        if cancel.is_cancelled() {
            EvalError::Cancelled
        } else if text.contains("D2015") {
            EvalError::TooLarge(format!(
                "{expr}: builds a sequence of more than {MAX_SEQUENCE} items"
            ))
        } else {
            EvalError::Query(format!("{expr}: {text}"))
        }
    })?;
    if v.is_undefined() {
        // AWS: an expression that gives nothing fails the state (States.QueryEvaluationError)
        return Err(EvalError::Undefined {
            expr: expr.trim().to_string(),
            at: String::new(),
        });
    }
    if v.is_function() {
        return Err(EvalError::Unsupported {
            expr: expr.trim().to_string(),
            at: String::new(),
        });
    }
    serde_json::from_str(
        &v.to_json_string()
            .map_err(|e| EvalError::Query(e.to_string()))?,
    )
    .map_err(|e| EvalError::Query(e.to_string()))
}

/// Evaluates every `{% ... %}` string inside a template.
pub fn eval_template(
    template: &Value,
    states: &Value,
    vars: &Map<String, Value>,
    cancel: &CancelToken,
) -> Result<Value, EvalError> {
    match template {
        Value::String(s) => match crate::validate::expr::jsonata_of(s) {
            Some(e) => eval_expression(e, states, vars, cancel),
            None => Ok(template.clone()),
        },
        Value::Array(a) => a
            .iter()
            .map(|v| eval_template(v, states, vars, cancel))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let v = eval_template(v, states, vars, cancel).map_err(|e| match e {
                    EvalError::Undefined { expr, at } if at.is_empty() => EvalError::Undefined {
                        expr,
                        at: k.clone(),
                    },
                    EvalError::Undefined { expr, at } => EvalError::Undefined {
                        expr,
                        at: format!("{k}/{at}"),
                    },
                    EvalError::Unsupported { expr, at } => EvalError::Unsupported {
                        at: match at.is_empty() {
                            true => k.clone(),
                            false => format!("{k}/{at}"),
                        },
                        expr,
                    },
                    other => other,
                })?;
                out.insert(k.clone(), v);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

fn to_json(v: &JValue) -> Value {
    v.to_json_string()
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

fn err(msg: impl Into<String>) -> EvaluatorError {
    EvaluatorError::EvaluationError(msg.into())
}

/// The functions Step Functions adds to JSONata, and `$eval`, which it leaves out.
fn register_step_functions_additions(ev: &mut Evaluator) {
    let _ = ev.register_fn("parse", parse_fn);
    let _ = ev.register_fn("partition", partition_fn);
    let _ = ev.register_fn("range", range_fn);
    let _ = ev.register_fn("hash", hash_fn);
    // JSONata's own $random (jsonata-core names it but does not provide it)
    let _ = ev.register_fn_override("random", |_args: &[JValue]| {
        Ok(JValue::from(serde_json::json!(rand::random::<f64>())))
    });
    let _ = ev.register_fn("uuid", |_args: &[JValue]| {
        Ok(JValue::from(uuid::Uuid::new_v4().to_string()))
    });
    let _ = ev.register_fn_override("eval", |_args: &[JValue]| {
        Err(err("$eval is not available in Step Functions"))
    });
}

/// `$parse(text)`: JSON text to a value.
fn parse_fn(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let s = args
        .first()
        .and_then(|v| v.as_str())
        .ok_or_else(|| err("$parse takes a string"))?;
    let v: Value = serde_json::from_str(s).map_err(|e| err(format!("$parse: {e}")))?;
    Ok(JValue::from(v))
}

/// `$partition(array, size)`: the array in chunks of `size`.
fn partition_fn(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let items = args
        .first()
        .map(to_json)
        .and_then(|v| v.as_array().cloned())
        .ok_or_else(|| err("$partition takes an array"))?;
    let size = args
        .get(1)
        .map(to_json)
        .and_then(|v| v.as_u64())
        .filter(|n| *n > 0)
        .ok_or_else(|| err("$partition takes a positive size"))?;
    Ok(JValue::from(Value::Array(
        items
            .chunks(size as usize)
            .map(|c| Value::Array(c.to_vec()))
            .collect(),
    )))
}

/// `$range(start, end, step)`: the numbers from start to end (inclusive) by step.
fn range_fn(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let n = |i: usize| args.get(i).map(to_json).and_then(|v| v.as_f64());
    let (start, end, step) = (
        n(0).ok_or_else(|| err("$range takes start, end, step"))?,
        n(1).ok_or_else(|| err("$range takes an end"))?,
        n(2).unwrap_or(1.0),
    );
    if step == 0.0 {
        return Err(err("$range: step cannot be 0"));
    }
    let mut out = Vec::new();
    let mut x = start;
    while (step > 0.0 && x <= end) || (step < 0.0 && x >= end) {
        out.push(serde_json::json!(x));
        x += step;
        if out.len() > 1_000_000 {
            return Err(err("$range: more than a million items"));
        }
    }
    // a sequence, as AWS's $range gives it: one number alone is that number (recorded from AWS:
    // `$range(1, 9, 9)` is 1)
    match out.len() {
        1 => Ok(JValue::from(out.remove(0))),
        _ => Ok(JValue::from(Value::Array(out))),
    }
}

/// `$hash(text, algorithm)`: the digest, hex-encoded (SHA-256 unless named).
fn hash_fn(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let data = args
        .first()
        .and_then(|v| v.as_str())
        .ok_or_else(|| err("$hash takes a string"))?
        .to_string();
    let algo = args
        .get(1)
        .and_then(|v| v.as_str())
        .unwrap_or("SHA-256")
        .to_string();
    super::intrinsics::digest(&algo, data.as_bytes())
        .map(JValue::from)
        .ok_or_else(|| {
            err(format!(
                "$hash: the algorithm must be one of MD5, SHA-1, SHA-256, SHA-384, SHA-512, not {algo}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(e: &str) -> Result<Value, String> {
        eval_expression(
            e,
            &json!({"input": {"a": [1, 2, 3], "body": "{\"x\": 1}"}}),
            &Map::from_iter([("deploy".to_string(), json!(false))]),
            &CancelToken::new(),
        )
        .map_err(|e| match e {
            EvalError::Query(m) | EvalError::TooLarge(m) => m,
            EvalError::Cancelled => "cancelled".into(),
            EvalError::Undefined { expr, .. } => format!("{expr}: undefined"),
            EvalError::Unsupported { expr, .. } => format!("{expr}: a function"),
        })
    }

    #[test]
    fn runaway_expressions_are_bounded_and_stoppable() {
        // a sequence no payload could hold stops at once, as too large
        let e = eval_expression(
            "[1..10000000]",
            &json!({}),
            &Map::new(),
            &CancelToken::new(),
        );
        assert!(matches!(e, Err(EvalError::TooLarge(_))));
        // a long computation stops when its token is cancelled from another thread
        let token = CancelToken::new();
        let t = token.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            t.cancel();
        });
        let e = eval_expression(
            "$count([1..100000].($sum([1..100000])))",
            &json!({}),
            &Map::new(),
            &token,
        );
        stopper.join().unwrap();
        assert!(
            matches!(e, Err(EvalError::Cancelled)),
            "stopped by the token, not by its 10 s budget"
        );
    }

    #[test]
    fn states_variables_and_additions() {
        assert_eq!(ev("$states.input.a[1]").unwrap(), json!(2));
        assert_eq!(ev("$deploy = false").unwrap(), json!(true));
        assert_eq!(ev("$parse($states.input.body).x").unwrap(), json!(1));
        assert_eq!(
            ev("$partition($states.input.a, 2)").unwrap(),
            json!([[1, 2], [3]])
        );
        assert_eq!(ev("$range(0, 6, 2)").unwrap(), json!([0, 2, 4, 6]));
        assert_eq!(
            ev("$hash('abc')").unwrap(),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(ev("$length($uuid())").unwrap(), json!(36));
        assert!(ev("$eval('1+1')").unwrap_err().contains("not available"));
    }
}
