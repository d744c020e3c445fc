//! Choice states: their rules (one comparator each, or And / Or / Not; a Variable in JSONPath,
//! a Condition in JSONata), nested as AWS allows, and a Default.

use super::expr;
use super::findings::{Checker, Severity};
use serde_json::{Map, Value};

pub(super) fn choices(c: &mut Checker, name: &str, s: &Map<String, Value>, p: &str, lang: &str) {
    let Some(rules) = s
        .get("Choices")
        .and_then(|v| v.as_array())
        .filter(|r| !r.is_empty())
    else {
        c.error(
            Some(name),
            &format!("{p}/Choices"),
            "a Choice state needs at least one rule in Choices",
        );
        return;
    };
    if !s.contains_key("Default") {
        c.add(
            Severity::Warning,
            Some(name),
            p,
            "no Default: an input no rule matches fails the execution with States.NoChoiceMatched",
        );
    }
    for (i, r) in rules.iter().enumerate() {
        let rp = format!("{p}/Choices/{i}");
        if !r.get("Next").is_some_and(|v| v.is_string()) {
            c.error(
                Some(name),
                &format!("{rp}/Next"),
                "a Choice rule needs Next",
            );
        }
        rule(c, name, r, &rp, lang, true);
    }
}

pub(super) const COMPARATORS: &[&str] = &[
    "StringEquals",
    "StringEqualsPath",
    "StringLessThan",
    "StringLessThanPath",
    "StringGreaterThan",
    "StringGreaterThanPath",
    "StringLessThanEquals",
    "StringLessThanEqualsPath",
    "StringGreaterThanEquals",
    "StringGreaterThanEqualsPath",
    "StringMatches",
    "NumericEquals",
    "NumericEqualsPath",
    "NumericLessThan",
    "NumericLessThanPath",
    "NumericGreaterThan",
    "NumericGreaterThanPath",
    "NumericLessThanEquals",
    "NumericLessThanEqualsPath",
    "NumericGreaterThanEquals",
    "NumericGreaterThanEqualsPath",
    "BooleanEquals",
    "BooleanEqualsPath",
    "TimestampEquals",
    "TimestampEqualsPath",
    "TimestampLessThan",
    "TimestampLessThanPath",
    "TimestampGreaterThan",
    "TimestampGreaterThanPath",
    "TimestampLessThanEquals",
    "TimestampLessThanEqualsPath",
    "TimestampGreaterThanEquals",
    "TimestampGreaterThanEqualsPath",
    "IsNull",
    "IsPresent",
    "IsNumeric",
    "IsString",
    "IsBoolean",
    "IsTimestamp",
];

pub(super) fn rule(c: &mut Checker, name: &str, r: &Value, rp: &str, lang: &str, top: bool) {
    let Some(o) = r.as_object() else {
        c.error(Some(name), rp, "a Choice rule is a JSON object");
        return;
    };
    if lang == "JSONata" {
        jsonata_rule(c, name, o, rp);
        return;
    }
    if o.contains_key("Condition") {
        c.error(
            Some(name),
            &format!("{rp}/Condition"),
            "Condition is a JSONata field; this state uses JSONPath",
        );
        return;
    }
    if !top && o.contains_key("Next") {
        c.error(
            Some(name),
            &format!("{rp}/Next"),
            "only top-level Choice rules have Next",
        );
    }
    let bool_ops: Vec<&str> = ["And", "Or", "Not"]
        .into_iter()
        .filter(|k| o.contains_key(*k))
        .collect();
    let comparators: Vec<&String> = o
        .keys()
        .filter(|k| COMPARATORS.contains(&k.as_str()))
        .collect();
    operands(c, name, o, rp, lang, &bool_ops, comparators.len());
}

/// A JSONata rule: a Condition, and no Variable.
fn jsonata_rule(c: &mut Checker, name: &str, o: &Map<String, Value>, rp: &str) {
    // AWS: a Condition is an expression, or the literal true or false
    let condition = o.get("Condition");
    if !condition.is_some_and(|v| {
        v.is_boolean() || v.as_str().is_some_and(|s| expr::jsonata_of(s).is_some())
    }) {
        c.error(
            Some(name),
            &format!("{rp}/Condition"),
            "a JSONata Choice rule needs a Condition written {% ... %} (or true / false)",
        );
    }
    if o.contains_key("Variable") {
        c.error(
            Some(name),
            &format!("{rp}/Variable"),
            "Variable is a JSONPath field; this state uses JSONata (use Condition)",
        );
    }
}

/// A JSONPath rule's one comparison (with its Variable), or its And / Or / Not.
fn operands(
    c: &mut Checker,
    name: &str,
    o: &Map<String, Value>,
    rp: &str,
    lang: &str,
    bool_ops: &[&str],
    comparators: usize,
) {
    match (bool_ops, comparators) {
        ([], 1) => match o.get("Variable").and_then(|v| v.as_str()) {
            None => c.error(
                Some(name),
                &format!("{rp}/Variable"),
                "a comparison needs Variable",
            ),
            Some(v) => {
                if let Some(e) = expr::jsonpath_error(v, false) {
                    c.error(Some(name), &format!("{rp}/Variable"), e);
                }
            }
        },
        ([], 0) => c.error(
            Some(name),
            rp,
            "a Choice rule needs one comparison (e.g. StringEquals) or And / Or / Not",
        ),
        ([], _) => c.error(Some(name), rp, "a Choice rule has exactly one comparison"),
        (["Not"], 0) => rule(c, name, &o["Not"], &format!("{rp}/Not"), lang, false),
        (["And"] | ["Or"], 0) => {
            let op = bool_ops[0];
            match o[op].as_array().filter(|a| !a.is_empty()) {
                None => c.error(
                    Some(name),
                    &format!("{rp}/{op}"),
                    format!("{op} takes a non-empty list of rules"),
                ),
                Some(rs) => rs
                    .iter()
                    .enumerate()
                    .for_each(|(i, r)| rule(c, name, r, &format!("{rp}/{op}/{i}"), lang, false)),
            }
        }
        _ => c.error(
            Some(name),
            rp,
            "a Choice rule has one of And, Or, Not, or one comparison",
        ),
    }
}
