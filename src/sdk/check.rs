//! A call's parameters checked against the operation's input shape as AWS's services check them
//! (emulators check almost nothing): members that must be there, lengths, patterns and enum
//! values, in the services' own words (`1 validation error detected: Value null at 'item'
//! failed to satisfy constraint: Member must not be null`); a service that speaks, or spoke,
//! the query protocol names a missing parameter instead (`MissingParameter`).

use super::model::{Service, Shape};
use serde_json::Value;

/// (error code, message) of the first failed check, or None.
pub fn check(svc: &Service, input: &str, args: &Value) -> Option<(String, String)> {
    let shape = svc.shape(input)?;
    if svc.query_compatible || svc.protocol == super::model::Protocol::Query {
        let missing = shape.r.iter().find(|r| given(shape, r, args).is_none())?;
        return Some((
            "MissingParameter".into(),
            format!("The request must contain the parameter {missing}."),
        ));
    }
    if !matches!(
        svc.protocol,
        super::model::Protocol::Json | super::model::Protocol::RestJson
    ) {
        return None;
    }
    let mut found = Vec::new();
    structure(svc, shape, args, "", &mut found);
    if found.is_empty() {
        return None;
    }
    let n = found.len();
    let s = if n == 1 { "" } else { "s" };
    Some((
        "ValidationException".into(),
        format!("{n} validation error{s} detected: {}", found.join("; ")),
    ))
}

/// The value given for a member (PascalCase or the model's name), unless null.
fn given<'a>(shape: &Shape, member: &str, args: &'a Value) -> Option<&'a Value> {
    let _ = shape;
    let o = args.as_object()?;
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(member))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// A member's name as the services' messages give it: the first letter in lower case.
fn camel(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn structure(svc: &Service, shape: &Shape, args: &Value, at: &str, found: &mut Vec<String>) {
    for (name, m) in &shape.m.0 {
        let path = format!("{at}{}", camel(name));
        match given(shape, name, args) {
            None if shape.r.iter().any(|r| r == name) => found.push(format!(
                "Value null at '{path}' failed to satisfy constraint: Member must not be null"
            )),
            None => {}
            Some(v) => value(svc, &m.s, v, &path, found),
        }
    }
}

fn value(svc: &Service, shape: &str, v: &Value, path: &str, found: &mut Vec<String>) {
    let Some(s) = svc.shape(shape) else { return };
    let fail = |found: &mut Vec<String>, what: String| {
        let shown = match v {
            Value::String(t) => format!("'{t}'"),
            other => format!("'{other}'"),
        };
        found.push(format!(
            "Value {shown} at '{path}' failed to satisfy constraint: Member must {what}"
        ));
    };
    match (s.t.as_str(), v) {
        ("structure", Value::Object(_)) => structure(svc, s, v, &format!("{path}."), found),
        ("string", Value::String(t)) => {
            let len = t.chars().count() as f64;
            if let Some(e) = s.en.as_ref().filter(|e| !e.iter().any(|x| x == t)) {
                fail(found, format!("satisfy enum value set: [{}]", e.join(", ")));
            } else if s.mx.is_some_and(|mx| len > mx) {
                let mx = s.mx.unwrap_or_default();
                fail(found, format!("have length less than or equal to {mx}"));
            } else if s.mn.is_some_and(|mn| len < mn) {
                let mn = s.mn.unwrap_or_default();
                fail(found, format!("have length greater than or equal to {mn}"));
            } else if let Some(p) = &s.pt {
                let anchored = format!("^(?:{p})$");
                if regex::Regex::new(&anchored).is_ok_and(|re| !re.is_match(t)) {
                    fail(found, format!("satisfy regular expression pattern: {p}"));
                }
            }
        }
        ("list", Value::Array(a)) => {
            let n = a.len() as f64;
            if s.mx.is_some_and(|mx| n > mx) {
                let mx = s.mx.unwrap_or_default();
                fail(found, format!("have length less than or equal to {mx}"));
            } else if s.mn.is_some_and(|mn| n < mn) {
                let mn = s.mn.unwrap_or_default();
                fail(found, format!("have length greater than or equal to {mn}"));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::model::service;
    use serde_json::json;

    #[test]
    fn parameters_are_checked_in_the_services_words() {
        let ddb = service("dynamodb").unwrap();
        let (_, op) = ddb.operation("putItem").unwrap();
        let input = op.i.as_deref().unwrap();
        assert_eq!(
            check(&ddb, input, &json!({"TableName": "t", "Item": null})),
            Some(("ValidationException".into(), "1 validation error detected: Value null at 'item' failed to satisfy constraint: Member must not be null".into()))
        );
        assert_eq!(
            check(&ddb, input, &json!({"TableName": "t", "Item": {}})),
            None
        );
        let (_, op) = ddb.operation("query").unwrap();
        let bad = check(
            &ddb,
            op.i.as_deref().unwrap(),
            &json!({"TableName": "t", "Select": "EVERYTHING"}),
        );
        assert!(
            bad.unwrap()
                .1
                .contains("Member must satisfy enum value set: [ALL_ATTRIBUTES")
        );
        let sqs = service("sqs").unwrap();
        let (_, op) = sqs.operation("sendMessage").unwrap();
        assert_eq!(
            check(&sqs, op.i.as_deref().unwrap(), &json!({"QueueUrl": "q"})),
            Some((
                "MissingParameter".into(),
                "The request must contain the parameter MessageBody.".into()
            ))
        );
    }
}
