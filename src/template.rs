//! Definition templates: tera, made safe for Amazon States Language.
//!
//! - JSONata expressions `{% ... %}` live inside JSON strings; tera would read them as its own
//!   tags. Before tera sees a template, every `{%` and `{#` inside a JSON string literal is
//!   rewritten to a tera expression printing it literally, so JSONata passes through untouched,
//!   and placeholders inside it (`'{{ DENY_POLICY_ARN }}' in $states...`) are still filled.
//!   Outside strings, tera's tags (`{% if %}`, `{% for %}`) work as usual.
//! - Every substituted value is JSON-escaped (it lands inside a JSON string).
//! - The result must parse as JSON; duplicate keys with equal values are a warning (deployed
//!   once), with different values an error naming the key and the state.
//! - Errors name the template file and line.

use crate::error::{Error, Result};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;
use std::path::Path;

/// A rendered definition and what was noticed on the way.
#[derive(Debug)]
pub struct Rendered {
    pub value: Value,
    pub warnings: Vec<String>,
}

/// Renders template text `src` (named `name` in messages) with `vars`.
pub fn render(name: &str, src: &str, vars: &Map<String, Value>) -> Result<Rendered> {
    let protected = protect_jsonata(src);
    let mut tera = tera::Tera::default();
    // autoescape applies to templates whose name ends with a listed suffix: use our own suffix.
    let tname = format!("{name}#json");
    tera.autoescape_on(vec!["#json"]);
    tera.set_escape_fn(json_escape);
    if let Err(e) = tera.add_raw_template(&tname, &protected) {
        return Err(template_error(name, src, &e));
    }
    let ctx = tera::Context::from_value(Value::Object(vars.clone()))
        .map_err(|e| Error::internal(format!("template context: {e}")))?;
    let text = tera
        .render(&tname, &ctx)
        .map_err(|e| template_error(name, src, &e))?;
    parse_definition(name, &text)
}

/// Reads and renders a template file.
pub fn render_file(path: &Path, display: &str, vars: &Map<String, Value>) -> Result<Rendered> {
    let src = crate::files::read_text(path, display)?;
    render(display, &src, vars)
}

/// Rewrites `{%` and `{#` found inside JSON string literals so that tera prints them verbatim.
pub fn protect_jsonata(src: &str) -> String {
    let bytes = src.as_bytes();
    let mut out = String::with_capacity(src.len() + 64);
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &src[i..];
        if rest.starts_with("{{") {
            // A tera expression: copy it whole, quotes inside it are tera's, not JSON's.
            let end = rest.find("}}").map(|e| e + 2).unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            i += end;
            continue;
        }
        if !in_string && rest.starts_with("{%") {
            // A tera tag outside any JSON string: copy it whole.
            let end = rest.find("%}").map(|e| e + 2).unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            i += end;
            continue;
        }
        if in_string && (rest.starts_with("{%") || rest.starts_with("{#")) {
            out.push_str(if rest.starts_with("{%") {
                "{{ \"{%\" }}"
            } else {
                "{{ \"{#\" }}"
            });
            i += 2;
            continue;
        }
        let c = rest.chars().next().unwrap();
        if in_string && c == '\\' {
            // Keep an escape and the character it escapes together.
            let mut it = rest.char_indices();
            it.next();
            let next_end = it.next().map(|(j, ch)| j + ch.len_utf8()).unwrap_or(1);
            out.push_str(&rest[..next_end]);
            i += next_end;
            continue;
        }
        if c == '"' {
            in_string = !in_string;
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Escapes a substituted value for the inside of a JSON string.
pub fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_string()
}

fn template_error(name: &str, src: &str, e: &tera::Error) -> Error {
    use std::error::Error as _;
    let mut msg = e.to_string();
    let mut src_err = e.source();
    while let Some(s) = src_err {
        msg = format!("{msg}: {s}");
        src_err = s.source();
    }
    // Tera parse errors carry "--> line:col"; render errors name the variable.
    let mut line = None;
    if let Some(caps) = regex::Regex::new(r"--> (\d+):(\d+)")
        .unwrap()
        .captures(&msg)
    {
        line = caps[1].parse::<usize>().ok();
    }
    if line.is_none() {
        if let Some(caps) = regex::Regex::new(r"Variable `([^`]+)` not found")
            .unwrap()
            .captures(&msg)
        {
            let var = caps[1].to_string();
            line = src.lines().position(|l| l.contains(&var)).map(|p| p + 1);
            let err = Error::user(format!("the template uses `{var}`, which the stack does not define"))
                .help("add it under the state machine's `definition.vars` in the stack manifest, or fix the template");
            return match line {
                Some(l) => err.at(format!("{name}:{l}")),
                None => err.at(name.to_string()),
            };
        }
    }
    let msg = msg.replace(&format!("{name}#json"), name);
    let err = Error::user(format!("invalid template: {}", msg.trim()));
    match line {
        Some(l) => err.at(format!("{name}:{l}")),
        None => err.at(name.to_string()),
    }
}

/// Parses rendered text as a JSON definition, collecting duplicate keys.
pub fn parse_definition(name: &str, text: &str) -> Result<Rendered> {
    let found = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Node {
        path: Vec::new(),
        found: &found,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|_| v));
    let value =
        match value {
            Ok(v) => v,
            Err(e) => {
                return Err(Error::user(format!("the rendered definition is not valid JSON: {e}"))
                .at(format!("{name}:{}", e.line()))
                .help("line numbers are those of the rendered text (`deploy render` prints it)"));
            }
        };
    let mut warnings = Vec::new();
    for d in found.into_inner() {
        let place = describe_path(&d.path);
        if d.same {
            warnings.push(format!(
                "{name}: key `{}` appears twice with the same value {place}; deployed once",
                d.key
            ));
        } else {
            return Err(Error::user(format!(
                "key `{}` appears twice with different values {place}",
                d.key
            ))
            .at(name.to_string())
            .help("keep one of them"));
        }
    }
    Ok(Rendered { value, warnings })
}

fn describe_path(path: &[String]) -> String {
    let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
    let state = path
        .iter()
        .rposition(|p| p == "States")
        .and_then(|i| path.get(i + 1));
    match state {
        Some(s) => format!(
            "in state `{s}` (at {})",
            if pointer.is_empty() { "/" } else { &pointer }
        ),
        None => format!("at {}", if pointer.is_empty() { "/" } else { &pointer }),
    }
}

struct Dup {
    path: Vec<String>,
    key: String,
    same: bool,
}

/// A JSON value deserializer that records duplicate object keys with their path.
struct Node<'a> {
    path: Vec<String>,
    found: &'a RefCell<Vec<Dup>>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let mut path = self.path.clone();
            path.push(items.len().to_string());
            match seq.next_element_seed(Node {
                path,
                found: self.found,
            })? {
                Some(v) => items.push(v),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let mut path = self.path.clone();
            path.push(key.clone());
            let v = map.next_value_seed(Node {
                path,
                found: self.found,
            })?;
            if let Some(prev) = out.get(&key) {
                let same = prev == &v;
                self.found.borrow_mut().push(Dup {
                    path: self.path.clone(),
                    key: key.clone(),
                    same,
                });
                if same {
                    continue;
                }
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// A published definition as the stacks deploy it: the repository's template rendered with
/// `x-NAME` for each placeholder (tests of the modules that read definitions).
#[cfg(test)]
pub fn published_for_tests(template: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("templates")
        .join(template);
    let vars = [
        "CONNECTION_ARN",
        "DENY_POLICY_ARN",
        "IAM_USER_NAME",
        "TOPIC_ARN",
        "ADMIN_GROUP_NAME",
        "DEVELOP_GROUP_NAME",
        "TASK_ARN",
        "LAMBDA_NAME",
        "DYNAMODB_TABLE_NAME",
    ]
    .iter()
    .map(|k| (k.to_string(), Value::String(format!("x-{k}"))))
    .collect();
    render_file(&path, template, &vars).unwrap().value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn jsonata_passes_through_and_placeholders_inside_it_are_filled() {
        let src =
            r#"{"Output": {"x": "{% '{{ ARN }}' in $states.result.A %}"}, "Arn": "{{ ARN }}"}"#;
        let r = render(
            "t.json",
            src,
            &vars(json!({"ARN": "arn:aws:iam::aws:policy/AWSDenyAll"})),
        )
        .unwrap();
        assert_eq!(
            r.value,
            json!({"Output": {"x": "{% 'arn:aws:iam::aws:policy/AWSDenyAll' in $states.result.A %}"},
                   "Arn": "arn:aws:iam::aws:policy/AWSDenyAll"})
        );
    }

    #[test]
    fn substituted_values_are_json_escaped() {
        let r = render(
            "t.json",
            r#"{"a": "{{ V }}"}"#,
            &vars(json!({"V": "say \"hi\"\n\\"})),
        )
        .unwrap();
        assert_eq!(r.value, json!({"a": "say \"hi\"\n\\"}));
    }

    #[test]
    fn tera_tags_outside_strings_still_work() {
        let src = "{\n{% if RETRY %}\"Retry\": true,{% endif %}\n\"a\": \"{% $x %}\"}";
        let r = render("t.json", src, &vars(json!({"RETRY": true}))).unwrap();
        assert_eq!(r.value, json!({"Retry": true, "a": "{% $x %}"}));
    }

    #[test]
    fn escaped_quotes_inside_strings_do_not_flip_string_state() {
        let src = r#"{"a": "x \" {% $y %} \\", "b": "{% $z %}"}"#;
        let r = render("t.json", src, &Map::new()).unwrap();
        assert_eq!(r.value, json!({"a": "x \" {% $y %} \\", "b": "{% $z %}"}));
    }

    #[test]
    fn unknown_variable_names_file_and_line() {
        let src = "{\n  \"a\": 1,\n  \"b\": \"{{ MISSING }}\"\n}";
        let e = render("templates/x.json", src, &Map::new()).unwrap_err();
        assert_eq!(e.location.as_deref(), Some("templates/x.json:3"));
        assert!(e.message.contains("`MISSING`"), "{}", e.message);
    }

    #[test]
    fn tera_syntax_error_names_line() {
        let src = "{\n\"a\": 1,\n\"b\": {{ oops( }}\n}";
        let e = render("x.json", src, &Map::new()).unwrap_err();
        assert_eq!(e.location.as_deref(), Some("x.json:3"), "{e}");
    }

    #[test]
    fn invalid_json_after_rendering_is_an_error_with_line() {
        let e = render(
            "x.json",
            "{\n\"a\": {{ V }}\n}",
            &vars(json!({"V": "not json"})),
        )
        .unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{e}");
        assert_eq!(e.location.as_deref(), Some("x.json:2"));
    }

    #[test]
    fn duplicate_key_same_value_warns_and_keeps_one() {
        let src = r#"{"States": {"S": {"Type": "Pass", "QueryLanguage": "JSONPath", "QueryLanguage": "JSONPath"}}}"#;
        let r = parse_definition("d.json", src).unwrap();
        assert_eq!(r.value["States"]["S"].as_object().unwrap().len(), 2);
        assert_eq!(r.warnings.len(), 1);
        assert!(
            r.warnings[0].contains("`QueryLanguage`") && r.warnings[0].contains("state `S`"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn duplicate_key_different_values_is_an_error_naming_state() {
        let src = r#"{"States": {"S": {"Type": "Pass", "Type": "Task"}}}"#;
        let e = parse_definition("d.json", src).unwrap_err();
        assert!(
            e.message.contains("`Type`") && e.message.contains("state `S`"),
            "{e}"
        );
    }
}
