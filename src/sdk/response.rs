//! A service's answer as Step Functions returns it: the operation's output shape read from the
//! wire (JSON, XML, headers, the status code), every member named with a capital first letter,
//! timestamps as ISO 8601 text, blobs as their text; an error as its code and message.

use super::model::{Operation, Protocol, Service, Shape, pascal};
use base64::Engine;
use serde_json::{Map, Value, json};

/// What came back over HTTP.
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Answer<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request id AWS gave the call.
    pub fn request_id(&self) -> String {
        ["x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id"]
            .iter()
            .find_map(|h| self.header(h))
            .map(str::to_string)
            .or_else(|| {
                let text = std::str::from_utf8(self.body).ok()?;
                let doc = roxmltree::Document::parse(text).ok()?;
                let id = doc
                    .descendants()
                    .find(|n| n.has_tag_name("RequestId") || n.has_tag_name("RequestID"))?;
                id.text().map(str::to_string)
            })
            .unwrap_or_default()
    }
}

/// A service error: its code on the wire and its message.
pub struct ServiceError {
    pub code: String,
    pub message: String,
}

/// The error an answer of status >= 300 carries.
pub fn error(svc: &Service, a: &Answer) -> ServiceError {
    let text = String::from_utf8_lossy(a.body);
    let (mut code, mut message) = (String::new(), String::new());
    match svc.protocol {
        Protocol::Json | Protocol::RestJson => {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            code = a
                .header("x-amzn-errortype")
                .map(str::to_string)
                .or_else(|| v["__type"].as_str().map(str::to_string))
                .or_else(|| v["code"].as_str().map(str::to_string))
                .or_else(|| v["Code"].as_str().map(str::to_string))
                .unwrap_or_default();
            message = ["message", "Message", "errorMessage"]
                .iter()
                .find_map(|k| v[*k].as_str())
                .unwrap_or_default()
                .to_string();
        }
        _ => {
            if let Ok(doc) = roxmltree::Document::parse(&text) {
                let find = |tag: &str| {
                    doc.descendants()
                        .find(|n| n.has_tag_name(tag))
                        .and_then(|n| n.text())
                        .map(str::to_string)
                };
                code = find("Code").unwrap_or_default();
                message = find("Message").unwrap_or_default();
            }
        }
    }
    // `aws.protocoltests#Code:http://...` and `com.amazon...#Code` name the code after '#', before ':'
    let code = code.rsplit('#').next().unwrap_or_default();
    let code = code.split(':').next().unwrap_or_default().to_string();
    let code = if code.is_empty() {
        match a.status {
            404 => "NotFound".to_string(),
            403 => "Forbidden".to_string(),
            s => format!("Http{s}"),
        }
    } else {
        code
    };
    if message.is_empty() {
        message = format!("{} {}", a.status, reason(a.status));
    }
    ServiceError { code, message }
}

fn reason(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// The output of a successful call.
pub fn output(svc: &Service, op: &Operation, a: &Answer) -> Value {
    let Some(shape_name) = op.o.as_deref() else {
        return json!({});
    };
    let Some(shape) = svc.shape(shape_name) else {
        return json!({});
    };
    let text = String::from_utf8_lossy(a.body);
    match svc.protocol {
        Protocol::Json => {
            let v: Value = serde_json::from_str(&text).unwrap_or(json!({}));
            from_json(svc, shape_name, &v)
        }
        Protocol::Query | Protocol::Ec2 => {
            let Ok(doc) = roxmltree::Document::parse(&text) else {
                return json!({});
            };
            let root = doc.root_element();
            let node = match &op.w {
                Some(w) => root.children().find(|n| n.has_tag_name(w.as_str())),
                None => Some(root),
            };
            node.map(|n| from_xml(svc, shape_name, n))
                .unwrap_or_else(|| json!({}))
        }
        Protocol::RestJson | Protocol::RestXml => rest(svc, shape_name, shape, a, &text),
    }
}

fn rest(svc: &Service, shape_name: &str, shape: &Shape, a: &Answer, text: &str) -> Value {
    let mut out = Map::new();
    for (name, m) in &shape.m.0 {
        let key = pascal(name);
        match m.l.as_deref() {
            Some("header") => {
                if let Some(h) = a.header(m.wire(name)) {
                    out.insert(key, header_value(svc, &m.s, h, m.jv));
                }
            }
            Some("headers") => {
                let prefix = m.wire(name).to_ascii_lowercase();
                let map: Map<String, Value> = a
                    .headers
                    .iter()
                    .filter_map(|(k, v)| {
                        let k = k.to_ascii_lowercase();
                        k.strip_prefix(&prefix)
                            .map(|rest| (rest.to_string(), json!(v)))
                    })
                    .collect();
                out.insert(key, Value::Object(map));
            }
            Some("statusCode") => {
                out.insert(key, json!(a.status));
            }
            _ if shape.p.as_deref() == Some(name.as_str()) => {
                let v = match svc.shape(&m.s).map(|s| s.t.as_str()).unwrap_or("blob") {
                    "blob" | "string" => Value::String(text.to_string()),
                    _ => parsed_body(svc, &m.s, text),
                };
                if !v.is_null() {
                    out.insert(key, v);
                }
            }
            _ => {}
        }
    }
    if shape.p.is_none() && !text.trim().is_empty() {
        if let Value::Object(b) = parsed_body(svc, shape_name, text) {
            for (k, v) in b {
                out.entry(k).or_insert(v);
            }
        }
    }
    Value::Object(out)
}

/// A REST answer's body read as the shape: XML or JSON, by the protocol; null if it is not.
fn parsed_body(svc: &Service, shape: &str, text: &str) -> Value {
    match svc.protocol {
        Protocol::RestXml => roxmltree::Document::parse(text)
            .map(|d| from_xml(svc, shape, d.root_element()))
            .unwrap_or(Value::Null),
        _ => serde_json::from_str::<Value>(text)
            .map(|v| from_json(svc, shape, &v))
            .unwrap_or(Value::Null),
    }
}

fn header_value(svc: &Service, shape: &str, h: &str, jv: bool) -> Value {
    let t = svc.shape(shape).map(|s| s.t.as_str()).unwrap_or("string");
    match t {
        "integer" | "long" => h.parse::<i64>().map(Value::from).unwrap_or(json!(h)),
        "float" | "double" => h.parse::<f64>().map(Value::from).unwrap_or(json!(h)),
        "boolean" => json!(h == "true"),
        "timestamp" => iso(h),
        _ if jv => base64::engine::general_purpose::STANDARD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(json!(h)),
        _ => json!(h),
    }
}

/// A timestamp from the wire (epoch seconds, ISO 8601 or HTTP date) as ISO 8601 text.
fn iso(raw: &str) -> Value {
    use aws_smithy_types::DateTime;
    use aws_smithy_types::date_time::Format;
    let t = raw
        .parse::<f64>()
        .ok()
        .map(DateTime::from_secs_f64)
        .or_else(|| DateTime::from_str(raw, Format::DateTimeWithOffset).ok())
        .or_else(|| DateTime::from_str(raw, Format::DateTime).ok())
        .or_else(|| DateTime::from_str(raw, Format::HttpDate).ok());
    match t.and_then(|t| t.fmt(Format::DateTime).ok()) {
        Some(s) => json!(s),
        None => json!(raw),
    }
}

/// A JSON answer shaped by the model: members by their capitalised names.
fn from_json(svc: &Service, shape: &str, v: &Value) -> Value {
    let Some(s) = svc.shape(shape) else {
        return v.clone();
    };
    match (s.t.as_str(), v) {
        (_, _) if s.doc => v.clone(),
        ("structure", Value::Object(o)) => {
            let mut out = Map::new();
            for (name, m) in &s.m.0 {
                if let Some(x) = o.get(m.wire(name)).filter(|x| !x.is_null()) {
                    out.insert(pascal(name), from_json(svc, &m.s, x));
                }
            }
            Value::Object(out)
        }
        ("list", Value::Array(a)) => {
            let item = s.i.as_deref().unwrap_or_default();
            Value::Array(a.iter().map(|x| from_json(svc, item, x)).collect())
        }
        ("map", Value::Object(o)) => {
            let item = s.v.as_deref().unwrap_or_default();
            Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), from_json(svc, item, x)))
                    .collect(),
            )
        }
        ("timestamp", Value::Number(n)) => iso(&n.to_string()),
        ("timestamp", Value::String(t)) => iso(t),
        ("blob", Value::String(b)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(|d| json!(String::from_utf8_lossy(&d)))
            .unwrap_or_else(|_| v.clone()),
        _ => v.clone(),
    }
}

/// An XML answer shaped by the model.
fn from_xml(svc: &Service, shape: &str, node: roxmltree::Node) -> Value {
    let Some(s) = svc.shape(shape) else {
        return json!(node.text().unwrap_or_default());
    };
    match s.t.as_str() {
        "structure" => xml_structure(svc, s, node),
        "list" => {
            let item = s.i.as_deref().unwrap_or_default();
            let items = node.children().filter(|c| c.is_element());
            Value::Array(items.map(|c| from_xml(svc, item, c)).collect())
        }
        "map" => map_entries(svc, s, node.children().filter(|c| c.is_element())),
        t => scalar(t, node.text().unwrap_or_default()),
    }
}

/// A structure's members from an element: attributes, flattened lists and maps (repeated
/// elements of the member's name), and child elements.
fn xml_structure(svc: &Service, s: &Shape, node: roxmltree::Node) -> Value {
    let mut out = Map::new();
    let named = |tag: &str| {
        let tag = tag.to_string();
        node.children()
            .filter(move |c| c.is_element() && c.tag_name().name() == tag)
    };
    for (name, m) in &s.m.0 {
        let wire = m.wire(name);
        let inner = svc.shape(&m.s);
        let flat = m.fl || inner.is_some_and(|i| i.fl);
        let kind = inner.map(|i| i.t.as_str()).unwrap_or_default();
        let v = if m.xa {
            let attr = node.attributes().find(|a| a.name() == wire);
            attr.map(|a| json!(a.value()))
        } else if flat && kind == "list" {
            let item = inner.and_then(|i| i.i.clone()).unwrap_or_default();
            let tag =
                m.n.as_deref()
                    .or(inner.and_then(|i| i.n.as_deref()))
                    .unwrap_or(name);
            let items: Vec<Value> = named(tag).map(|c| from_xml(svc, &item, c)).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        } else if flat && kind == "map" {
            let entries: Vec<roxmltree::Node> = named(wire).collect();
            let inner = inner.unwrap();
            (!entries.is_empty()).then(|| map_entries(svc, inner, entries.into_iter()))
        } else {
            named(wire).next().map(|c| from_xml(svc, &m.s, c))
        };
        if let Some(v) = v {
            out.insert(pascal(name), v);
        }
    }
    Value::Object(out)
}

fn map_entries<'a, 'i: 'a>(
    svc: &Service,
    s: &Shape,
    entries: impl Iterator<Item = roxmltree::Node<'a, 'i>>,
) -> Value {
    let (kn, vn) = (
        s.kn.as_deref().unwrap_or("key"),
        s.vn.as_deref().unwrap_or("value"),
    );
    let mut out = Map::new();
    for e in entries {
        let k = e
            .children()
            .find(|c| c.has_tag_name(kn))
            .and_then(|c| c.text())
            .unwrap_or_default();
        if let Some(v) = e.children().find(|c| c.has_tag_name(vn)) {
            out.insert(
                k.to_string(),
                from_xml(svc, s.v.as_deref().unwrap_or_default(), v),
            );
        }
    }
    Value::Object(out)
}

fn scalar(t: &str, text: &str) -> Value {
    match t {
        "integer" | "long" => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(json!(text)),
        "float" | "double" => text
            .trim()
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or(json!(text)),
        "boolean" => json!(text.trim() == "true"),
        "timestamp" => iso(text.trim()),
        "blob" => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(|d| json!(String::from_utf8_lossy(&d)))
            .unwrap_or(json!(text)),
        _ => json!(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::model::service;

    fn answer<'a>(status: u16, headers: &'a [(String, String)], body: &'a str) -> Answer<'a> {
        Answer {
            status,
            headers,
            body: body.as_bytes(),
        }
    }

    #[test]
    fn outputs_take_capitalised_names_iso_timestamps_and_text_bodies() {
        let sfn = service("sfn").unwrap();
        let (_, op) = sfn.operation("startExecution").unwrap();
        let out = output(
            &sfn,
            op,
            &answer(
                200,
                &[],
                r#"{"executionArn": "arn:e", "startDate": 1700000000.5}"#,
            ),
        );
        assert_eq!(
            out,
            json!({"ExecutionArn": "arn:e", "StartDate": "2023-11-14T22:13:20.5Z"})
        );
        let sns = service("sns").unwrap();
        let (_, op) = sns.operation("publish").unwrap();
        let xml = r#"<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>"#;
        assert_eq!(
            output(&sns, op, &answer(200, &[], xml)),
            json!({"MessageId": "m-1"})
        );
        let s3 = service("s3").unwrap();
        let (_, op) = s3.operation("getObject").unwrap();
        let headers = [
            ("content-length".to_string(), "4".to_string()),
            ("etag".to_string(), "\"e\"".to_string()),
        ];
        let out = output(&s3, op, &answer(200, &headers, "text"));
        assert_eq!(
            out,
            json!({"Body": "text", "ContentLength": 4, "ETag": "\"e\"", "Metadata": {}})
        );
    }

    #[test]
    fn errors_are_read_from_each_protocol() {
        let ddb = service("dynamodb").unwrap();
        let e = error(
            &ddb,
            &answer(
                400,
                &[],
                r#"{"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message": "Requested resource not found"}"#,
            ),
        );
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("ResourceNotFoundException", "Requested resource not found")
        );
        let s3 = service("s3").unwrap();
        let e = error(
            &s3,
            &answer(
                404,
                &[],
                "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
            ),
        );
        assert_eq!(s3.error_name(&e.code), "S3.NoSuchKeyException");
        let e = error(&s3, &answer(404, &[], ""));
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("NotFound", "404 Not Found")
        );
    }
}
