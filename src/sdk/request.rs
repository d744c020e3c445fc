//! A Step Functions task's parameters (PascalCase JSON) as the service's wire protocol wants
//! them: JSON 1.0/1.1, REST-JSON, REST-XML, query and EC2 query, shaped by the operation's
//! input shape.

use super::model::{Member, Operation, Protocol, Service, Shape};
use base64::Engine;
use serde_json::{Map, Value};

/// An HTTP request before signing: method, path with query, headers and body.
#[derive(Debug, Default)]
pub struct Wire {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A parameter the input shape does not have, or a value of the wrong kind.
pub type Invalid = String;

/// The member a PascalCase parameter names (`StateMachineArn` → stateMachineArn).
fn member<'a>(shape: &'a Shape, key: &str) -> Option<&'a (String, Member)> {
    let m = &shape.m.0;
    m.iter()
        .find(|(n, _)| n == key)
        .or_else(|| m.iter().find(|(n, _)| n.eq_ignore_ascii_case(key)))
}

/// The parameters matched to the input shape's members: (member name, member, value).
fn members<'a, 'v>(
    svc: &'a Service,
    shape: &'a Shape,
    args: &'v Map<String, Value>,
) -> Result<Vec<(&'a str, &'a Member, &'v Value)>, Invalid> {
    let mut out = Vec::new();
    for (k, v) in args {
        let Some((name, m)) = member(shape, k) else {
            let known: Vec<String> = shape
                .m
                .0
                .iter()
                .map(|(n, _)| super::model::pascal(n))
                .collect();
            return Err(format!(
                "The field '{k}' is not supported by {} (it takes {})",
                svc.id,
                known.join(", ")
            ));
        };
        if !v.is_null() {
            out.push((name.as_str(), m, v));
        }
    }
    Ok(out)
}

/// Builds the request of `op` from `args`.
/// How a blob given as text is sent: as its JSON text (Step Functions' `aws-sdk:*` tasks), or
/// as the text itself (the S3 objects a Map's ItemReader and ResultWriter read and write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blobs {
    Json,
    Text,
}

pub fn build(
    svc: &Service,
    op_name: &str,
    op: &Operation,
    args: &Value,
    blobs: Blobs,
) -> Result<Wire, Invalid> {
    let empty = Map::new();
    let args = match args {
        Value::Object(m) => m,
        Value::Null => &empty,
        other => return Err(format!("the parameters must be an object, not {other}")),
    };
    let w = start(op);
    let Some(input) = op.i.as_deref().and_then(|i| svc.shape(i)) else {
        if let Some((k, _)) = args.iter().next() {
            return Err(format!(
                "The field '{k}' is not supported: {op_name} takes no parameters"
            ));
        }
        return finish(svc, op_name, w, Map::new());
    };
    let given = members(svc, input, args)?;
    match svc.protocol {
        Protocol::Json => {
            let mut body = Map::new();
            for (name, m, v) in given {
                body.insert(
                    m.wire(name).to_string(),
                    json_value(svc, &m.s, v, m.tf.as_deref(), Protocol::Json)?,
                );
            }
            add_tokens(input, &mut body, args);
            finish(svc, op_name, w, body)
        }
        Protocol::Query | Protocol::Ec2 => query(svc, op_name, w, given),
        Protocol::RestJson | Protocol::RestXml => {
            let (w, payload, body_members) = rest_members(svc, input, w, given);
            let mut w = w;
            rest_body(svc, op, input, &mut w, (payload, blobs), body_members, args)?;
            unfilled(&w)?;
            Ok(w)
        }
    }
}

/// The request's method and path, with the query its URI fixes (`?uploads`, `?x-id=...`).
fn start(op: &Operation) -> Wire {
    let mut w = Wire {
        method: op.m.clone(),
        ..Wire::default()
    };
    let (path, fixed_query) = op.u.split_once('?').unwrap_or((&op.u, ""));
    w.path = path.to_string();
    for pair in fixed_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        w.query.push((k.to_string(), v.to_string()));
    }
    w
}

/// The query protocols: `Action`, `Version` and every parameter as a form.
fn query(
    svc: &Service,
    op_name: &str,
    mut w: Wire,
    given: Vec<(&str, &Member, &Value)>,
) -> Result<Wire, Invalid> {
    let mut form = vec![
        ("Action".to_string(), op_name.to_string()),
        ("Version".to_string(), svc.api.clone()),
    ];
    for (name, m, v) in given {
        let key = query_key(svc.protocol, name, m);
        query_value(svc, &mut form, &key, &m.s, v, m.fl)?;
    }
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    w.body = body.join("&").into_bytes();
    w.headers.push((
        "content-type".into(),
        "application/x-www-form-urlencoded; charset=utf-8".into(),
    ));
    Ok(w)
}

/// The REST protocols: each parameter where its member goes (path, query string, header,
/// headers, payload); the rest are the body's.
#[allow(clippy::type_complexity)]
fn rest_members<'a>(
    svc: &Service,
    input: &Shape,
    mut w: Wire,
    given: Vec<(&str, &'a Member, &'a Value)>,
) -> (Wire, Option<(&'a Member, &'a Value)>, Map<String, Value>) {
    let mut body_members = Map::new();
    let mut payload = None;
    for (name, m, v) in given {
        match m.l.as_deref() {
            Some("uri") => {
                let label = m.wire(name);
                let text = scalar_text(svc, &m.s, v, m.tf.as_deref(), "iso8601");
                let greedy = format!("{{{label}+}}");
                w.path = match w.path.contains(&greedy) {
                    true => w.path.replace(
                        &greedy,
                        &text.split('/').map(enc).collect::<Vec<_>>().join("/"),
                    ),
                    false => w.path.replace(&format!("{{{label}}}"), &enc(&text)),
                };
            }
            Some("querystring") => rest_query(svc, &mut w, m.wire(name), m, v),
            Some("header") => {
                let text = scalar_text(svc, &m.s, v, m.tf.as_deref(), "rfc822");
                let text = match m.jv {
                    true => base64::engine::general_purpose::STANDARD.encode(text),
                    false => text,
                };
                w.headers.push((m.wire(name).to_ascii_lowercase(), text));
            }
            Some("headers") => {
                let prefix = m.wire(name).to_ascii_lowercase();
                for (k, x) in v.as_object().into_iter().flatten() {
                    let k = format!("{prefix}{}", k.to_ascii_lowercase());
                    w.headers.push((k, text_of(x)));
                }
            }
            _ if input.p.as_deref() == Some(name) => payload = Some((m, v)),
            _ => {
                body_members.insert(name.to_string(), v.clone());
            }
        }
    }
    (w, payload, body_members)
}

/// A path label left unfilled: a required path parameter missing, as the services say it.
fn unfilled(w: &Wire) -> Result<(), Invalid> {
    let Some(i) = w.path.find('{') else {
        return Ok(());
    };
    let label = w.path[i + 1..].split(['}', '+']).next().unwrap_or_default();
    Err(format!(
        "Value null at '{label}' failed to satisfy constraint: Member must not be null"
    ))
}

fn finish(
    svc: &Service,
    op_name: &str,
    mut w: Wire,
    body: Map<String, Value>,
) -> Result<Wire, Invalid> {
    match svc.protocol {
        Protocol::Json => {
            w.body = Value::Object(body).to_string().into_bytes();
            let version = svc.json.as_deref().unwrap_or("1.0");
            w.headers.push((
                "content-type".into(),
                format!("application/x-amz-json-{version}"),
            ));
            if let Some(t) = &svc.target {
                w.headers
                    .push(("x-amz-target".into(), format!("{t}.{op_name}")));
            }
        }
        Protocol::Query | Protocol::Ec2 => {
            w.body = format!("Action={op_name}&Version={}", enc(&svc.api)).into_bytes();
            w.headers.push((
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            ));
        }
        _ => {}
    }
    Ok(w)
}

/// Idempotency tokens the caller left out, filled as the SDKs fill them.
fn add_tokens(shape: &Shape, body: &mut Map<String, Value>, args: &Map<String, Value>) {
    for (name, m) in &shape.m.0 {
        if m.it
            && member(shape, name).is_some()
            && !args.keys().any(|k| k.eq_ignore_ascii_case(name))
        {
            body.insert(
                m.wire(name).to_string(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
        }
    }
}

fn rest_body(
    svc: &Service,
    op: &Operation,
    input: &Shape,
    w: &mut Wire,
    (payload, blobs): (Option<(&Member, &Value)>, Blobs),
    body_members: Map<String, Value>,
    args: &Map<String, Value>,
) -> Result<(), Invalid> {
    match payload {
        Some((m, v)) => rest_payload(svc, w, m, v, blobs)?,
        None if svc.protocol == Protocol::RestXml => {
            if !body_members.is_empty() {
                let root = input.n.clone().or_else(|| op.i.clone()).unwrap_or_default();
                let mut inner = String::new();
                for (name, v) in &body_members {
                    let (_, m) = member(input, name).unwrap();
                    xml_member(svc, &mut inner, m.wire(name), m, v)?;
                }
                let ns = input.xn.as_deref().map(|n| format!(" xmlns=\"{n}\""));
                let ns = ns.unwrap_or_default();
                w.body = format!("<{root}{ns}>{inner}</{root}>").into_bytes();
                w.headers
                    .push(("content-type".into(), "application/xml".into()));
            }
        }
        None => {
            let mut body = Map::new();
            for (name, v) in &body_members {
                let (_, m) = member(input, name).unwrap();
                let value = json_value(svc, &m.s, v, m.tf.as_deref(), Protocol::RestJson)?;
                body.insert(m.wire(name).to_string(), value);
            }
            add_tokens_rest(input, &mut body, args);
            if !body.is_empty() || matches!(op.m.as_str(), "POST" | "PUT" | "PATCH") {
                w.body = Value::Object(body).to_string().into_bytes();
                w.headers
                    .push(("content-type".into(), "application/json".into()));
            }
        }
    }
    checksum(op, w);
    Ok(())
}

/// The member that is the whole HTTP payload: a blob or string as it is, a structure as XML
/// or JSON.
fn rest_payload(
    svc: &Service,
    w: &mut Wire,
    m: &Member,
    v: &Value,
    blobs: Blobs,
) -> Result<(), Invalid> {
    let shape = svc.shape(&m.s).ok_or("the model lacks a shape")?;
    match shape.t.as_str() {
        "blob" if blobs == Blobs::Text && v.is_string() => w.body = text_of(v).into_bytes(),
        "blob" => w.body = blob_bytes(v),
        "string" => w.body = text_of(v).into_bytes(),
        "structure" if svc.protocol == Protocol::RestXml => {
            let root = m.n.clone().unwrap_or_else(|| m.s.clone());
            let ns = m.xn.clone().or_else(|| shape.xn.clone());
            w.body = xml_document(svc, &root, ns.as_deref(), &m.s, v)?.into_bytes();
            w.headers
                .push(("content-type".into(), "application/xml".into()));
        }
        _ => {
            let value = json_value(svc, &m.s, v, None, Protocol::RestJson)?;
            w.body = value.to_string().into_bytes();
            w.headers
                .push(("content-type".into(), "application/json".into()));
        }
    }
    Ok(())
}

/// The body's checksum where the operation takes one: CRC32 (the SDKs' default since 2025 for
/// every request that takes a flexible checksum), else Content-MD5 where it is required.
fn checksum(op: &Operation, w: &mut Wire) {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    if op.ck {
        let crc = crc32fast::hash(&w.body).to_be_bytes();
        w.headers.push(("x-amz-checksum-crc32".into(), b64(&crc)));
        w.headers
            .push(("x-amz-sdk-checksum-algorithm".into(), "CRC32".into()));
    } else if op.md5 {
        use md5::Digest;
        let sum = md5::Md5::digest(&w.body);
        w.headers.push(("content-md5".into(), b64(&sum)));
    }
}

fn add_tokens_rest(shape: &Shape, body: &mut Map<String, Value>, args: &Map<String, Value>) {
    for (name, m) in &shape.m.0 {
        if m.it && m.l.is_none() && !args.keys().any(|k| k.eq_ignore_ascii_case(name)) {
            body.insert(
                m.wire(name).to_string(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
        }
    }
}

fn rest_query(svc: &Service, w: &mut Wire, key: &str, m: &Member, v: &Value) {
    match v {
        Value::Array(a) => {
            for x in a {
                w.query
                    .push((key.to_string(), scalar_text(svc, "", x, None, "iso8601")));
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                match x {
                    Value::Array(a) => a.iter().for_each(|y| w.query.push((k.clone(), text_of(y)))),
                    _ => w.query.push((k.clone(), text_of(x))),
                }
            }
        }
        _ => w.query.push((
            key.to_string(),
            scalar_text(svc, &m.s, v, m.tf.as_deref(), "iso8601"),
        )),
    }
}

/// A value as text: a string as it is, anything else as JSON.
pub fn text_of(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// The bytes of a blob: the value's JSON text, as Step Functions sends it (a string Body of
/// `text data` is stored as `"text data"`: recorded from AWS in sfn-integrations' putObject
/// cases).
pub fn blob_bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// A scalar as text on the wire (a path label, a header, a query parameter).
fn scalar_text(
    svc: &Service,
    shape: &str,
    v: &Value,
    tf: Option<&str>,
    default_tf: &str,
) -> String {
    let s = svc.shape(shape);
    if s.is_some_and(|s| s.t == "timestamp") {
        let f = tf.or(s.and_then(|s| s.tf.as_deref())).unwrap_or(default_tf);
        return timestamp(v, f)
            .map(|t| text_of(&t))
            .unwrap_or_else(|| text_of(v));
    }
    if s.is_some_and(|s| s.t == "blob") {
        return base64::engine::general_purpose::STANDARD.encode(blob_bytes(v));
    }
    text_of(v)
}

/// A timestamp in a wire format: `iso8601`, `rfc822`, `unixTimestamp`.
fn timestamp(v: &Value, format: &str) -> Option<Value> {
    use aws_smithy_types::DateTime;
    use aws_smithy_types::date_time::Format;
    let t = match v {
        Value::Number(n) => DateTime::from_secs_f64(n.as_f64()?),
        Value::String(s) => DateTime::from_str(s, Format::DateTimeWithOffset)
            .or_else(|_| DateTime::from_str(s, Format::DateTime))
            .or_else(|_| DateTime::from_str(s, Format::HttpDate))
            .ok()?,
        _ => return None,
    };
    Some(match format {
        "unixTimestamp" => serde_json::Number::from_f64(t.as_secs_f64()).map(Value::Number)?,
        "rfc822" => Value::String(t.fmt(Format::HttpDate).ok()?),
        _ => Value::String(t.fmt(Format::DateTime).ok()?),
    })
}

/// A value as JSON on the wire: members renamed to their wire names, blobs base64, timestamps
/// as the protocol sends them.
fn json_value(
    svc: &Service,
    shape: &str,
    v: &Value,
    tf: Option<&str>,
    proto: Protocol,
) -> Result<Value, Invalid> {
    let Some(s) = svc.shape(shape) else {
        return Ok(v.clone());
    };
    Ok(match (s.t.as_str(), v) {
        (_, _) if s.doc => v.clone(),
        ("structure", Value::Object(o)) => {
            let mut out = Map::new();
            for (name, m, x) in members(svc, s, o)? {
                out.insert(
                    m.wire(name).to_string(),
                    json_value(svc, &m.s, x, m.tf.as_deref(), proto)?,
                );
            }
            Value::Object(out)
        }
        ("list", Value::Array(a)) => {
            let item = s.i.as_deref().unwrap_or_default();
            Value::Array(
                a.iter()
                    .map(|x| json_value(svc, item, x, None, proto))
                    .collect::<Result<_, _>>()?,
            )
        }
        ("map", Value::Object(o)) => {
            let item = s.v.as_deref().unwrap_or_default();
            let mut out = Map::new();
            for (k, x) in o {
                out.insert(k.clone(), json_value(svc, item, x, None, proto)?);
            }
            Value::Object(out)
        }
        (t, _) => json_scalar(t, s, v, tf),
    })
}

/// A scalar as JSON on the wire: text where a string goes (an object or number as its JSON
/// text), blobs base64, timestamps as the protocol sends them, numbers and booleans from text.
fn json_scalar(t: &str, s: &Shape, v: &Value, tf: Option<&str>) -> Value {
    let parsed = |t: &str| serde_json::from_str::<Value>(t.trim()).ok();
    match (t, v) {
        ("string", Value::String(_)) => v.clone(),
        ("string", other) => Value::String(other.to_string()),
        ("blob", _) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(blob_bytes(v)))
        }
        ("timestamp", _) => {
            let f = tf.or(s.tf.as_deref()).unwrap_or("unixTimestamp");
            timestamp(v, f).unwrap_or_else(|| v.clone())
        }
        ("integer" | "long" | "float" | "double", Value::String(t)) => parsed(t)
            .filter(Value::is_number)
            .unwrap_or_else(|| v.clone()),
        ("boolean", Value::String(t)) => Value::Bool(t == "true"),
        _ => v.clone(),
    }
}

/// The query key of a top-level member: EC2 takes its queryName, or its locationName with a
/// capital, or its name; the query protocol its locationName or name.
fn query_key(proto: Protocol, name: &str, m: &Member) -> String {
    if proto == Protocol::Ec2 {
        m.q.clone()
            .or_else(|| m.n.as_deref().map(super::model::pascal))
            .unwrap_or_else(|| name.to_string())
    } else {
        m.wire(name).to_string()
    }
}

fn query_value(
    svc: &Service,
    form: &mut Vec<(String, String)>,
    key: &str,
    shape: &str,
    v: &Value,
    flattened: bool,
) -> Result<(), Invalid> {
    let Some(s) = svc.shape(shape) else {
        form.push((key.to_string(), text_of(v)));
        return Ok(());
    };
    match (s.t.as_str(), v) {
        ("structure", Value::Object(o)) => {
            for (name, m, x) in members(svc, s, o)? {
                let k = format!("{key}.{}", query_key(svc.protocol, name, m));
                query_value(svc, form, &k, &m.s, x, m.fl)?;
            }
        }
        ("list", Value::Array(a)) => {
            if a.is_empty() && svc.protocol == Protocol::Query {
                form.push((key.to_string(), String::new()));
            }
            let item = s.i.as_deref().unwrap_or_default();
            for (i, x) in a.iter().enumerate() {
                let k = if svc.protocol == Protocol::Ec2 || flattened || s.fl {
                    format!("{key}.{}", i + 1)
                } else {
                    format!("{key}.{}.{}", s.n.as_deref().unwrap_or("member"), i + 1)
                };
                query_value(svc, form, &k, item, x, false)?;
            }
        }
        ("map", Value::Object(o)) => {
            let (kn, vn) = (
                s.kn.as_deref().unwrap_or("key"),
                s.vn.as_deref().unwrap_or("value"),
            );
            for (i, (mk, x)) in o.iter().enumerate() {
                let base = if flattened || s.fl {
                    format!("{key}.{}", i + 1)
                } else {
                    format!("{key}.entry.{}", i + 1)
                };
                form.push((format!("{base}.{kn}"), mk.clone()));
                query_value(
                    svc,
                    form,
                    &format!("{base}.{vn}"),
                    s.v.as_deref().unwrap_or_default(),
                    x,
                    false,
                )?;
            }
        }
        _ => form.push((key.to_string(), scalar_text(svc, shape, v, None, "iso8601"))),
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_document(
    svc: &Service,
    root: &str,
    ns: Option<&str>,
    shape: &str,
    v: &Value,
) -> Result<String, Invalid> {
    let mut inner = String::new();
    let s = svc.shape(shape).ok_or("the model lacks a shape")?;
    let mut attrs = String::new();
    if let Some(n) = ns {
        attrs.push_str(&format!(" xmlns=\"{n}\""));
    }
    if let Value::Object(o) = v {
        for (name, m, x) in members(svc, s, o)? {
            if m.xa {
                attrs.push_str(&format!(
                    " {}=\"{}\"",
                    m.wire(name),
                    xml_escape(&text_of(x))
                ));
            } else {
                xml_member(svc, &mut inner, m.wire(name), m, x)?;
            }
        }
    }
    Ok(format!("<{root}{attrs}>{inner}</{root}>"))
}

fn xml_member(
    svc: &Service,
    out: &mut String,
    tag: &str,
    m: &Member,
    v: &Value,
) -> Result<(), Invalid> {
    xml_value(svc, out, tag, &m.s, v, m.fl)
}

fn xml_value(
    svc: &Service,
    out: &mut String,
    tag: &str,
    shape: &str,
    v: &Value,
    flattened: bool,
) -> Result<(), Invalid> {
    let Some(s) = svc.shape(shape) else {
        out.push_str(&format!("<{tag}>{}</{tag}>", xml_escape(&text_of(v))));
        return Ok(());
    };
    match (s.t.as_str(), v) {
        ("structure", Value::Object(_)) => out.push_str(&xml_document(svc, tag, None, shape, v)?),
        ("list", Value::Array(a)) => {
            let item = s.i.as_deref().unwrap_or_default();
            if flattened || s.fl {
                let name = s.n.as_deref().unwrap_or(tag);
                for x in a {
                    xml_value(svc, out, name, item, x, false)?;
                }
            } else {
                out.push_str(&format!("<{tag}>"));
                let name = s.n.as_deref().unwrap_or("member");
                for x in a {
                    xml_value(svc, out, name, item, x, false)?;
                }
                out.push_str(&format!("</{tag}>"));
            }
        }
        ("map", Value::Object(o)) => {
            let (kn, vn) = (
                s.kn.as_deref().unwrap_or("key"),
                s.vn.as_deref().unwrap_or("value"),
            );
            out.push_str(&format!("<{tag}>"));
            for (k, x) in o {
                out.push_str(&format!("<entry><{kn}>{}</{kn}>", xml_escape(k)));
                xml_value(svc, out, vn, s.v.as_deref().unwrap_or_default(), x, false)?;
                out.push_str("</entry>");
            }
            out.push_str(&format!("</{tag}>"));
        }
        _ => {
            let text = scalar_text(svc, shape, v, None, "iso8601");
            out.push_str(&format!("<{tag}>{}</{tag}>", xml_escape(&text)));
        }
    }
    Ok(())
}

/// Percent-encoding as SigV4 and the SDKs use it (unreserved characters kept).
pub fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::model::service;
    use serde_json::json;

    fn wire(svc: &str, action: &str, args: Value) -> Wire {
        let s = service(svc).unwrap();
        let (name, op) = s.operation(action).unwrap();
        build(&s, name, op, &args, Blobs::Json).unwrap()
    }

    fn header<'a>(w: &'a Wire, k: &str) -> Option<&'a str> {
        w.headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn json_protocol_names_the_target_and_keeps_wire_names() {
        let w = wire(
            "sfn",
            "startExecution",
            json!({"StateMachineArn": "arn:m", "Input": {"a": 1}}),
        );
        assert_eq!(
            header(&w, "x-amz-target"),
            Some("AWSStepFunctions.StartExecution")
        );
        assert_eq!(
            header(&w, "content-type"),
            Some("application/x-amz-json-1.0")
        );
        let body: Value = serde_json::from_slice(&w.body).unwrap();
        assert_eq!(
            body,
            json!({"stateMachineArn": "arn:m", "input": "{\"a\":1}"}),
            "an object given for a string member is sent as its JSON text"
        );
    }

    #[test]
    fn query_protocol_flattens_structures_lists_and_maps() {
        let w = wire(
            "sns",
            "publish",
            json!({"TopicArn": "t", "Message": "m",
            "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}),
        );
        let body = String::from_utf8(w.body).unwrap();
        for part in [
            "Action=Publish",
            "Version=2010-03-31",
            "TopicArn=t",
            "Message=m",
            "MessageAttributes.entry.1.Name=k",
            "MessageAttributes.entry.1.Value.DataType=String",
            "MessageAttributes.entry.1.Value.StringValue=v",
        ] {
            assert!(body.split('&').any(|p| p == part), "{part} in {body}");
        }
        let w = wire(
            "ec2",
            "describeInstances",
            json!({"InstanceIds": ["i-1", "i-2"]}),
        );
        let body = String::from_utf8(w.body).unwrap();
        assert!(
            body.contains("InstanceId.1=i-1&InstanceId.2=i-2"),
            "EC2 lists by queryName: {body}"
        );
    }

    #[test]
    fn rest_protocols_fill_the_path_headers_query_and_payload() {
        let w = wire(
            "s3",
            "putObject",
            json!({"Bucket": "b", "Key": "a/b c.txt", "Body": "text", "ContentType": "text/plain"}),
        );
        assert_eq!(
            (w.method.as_str(), w.path.as_str()),
            ("PUT", "/b/a/b%20c.txt")
        );
        assert_eq!(header(&w, "content-type"), Some("text/plain"));
        assert_eq!(w.body, b"\"text\"", "a blob is the value's JSON text");
        assert!(header(&w, "x-amz-checksum-crc32").is_some());
        let w = wire(
            "lambda",
            "invoke",
            json!({"FunctionName": "f", "Payload": {"x": 1}, "Qualifier": "live"}),
        );
        assert_eq!(w.path, "/2015-03-31/functions/f/invocations");
        assert_eq!(w.query, [("Qualifier".to_string(), "live".to_string())]);
        assert_eq!(w.body, br#"{"x":1}"#);
        let s = service("s3").unwrap();
        let (name, op) = s.operation("getObject").unwrap();
        let missing = build(&s, name, op, &json!({"Bucket": "b"}), Blobs::Json).unwrap_err();
        assert!(missing.contains("'Key'"), "{missing}");
        let unknown = build(
            &s,
            name,
            op,
            &json!({"Bucket": "b", "Key": "k", "Nope": 1}),
            Blobs::Json,
        )
        .unwrap_err();
        assert!(unknown.contains("'Nope'"), "{unknown}");
    }
}
