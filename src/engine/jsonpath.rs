//! JSONPath processing as Step Functions does it: paths (`$.a.b[0]`, `$['x']`, `[*]`, `..`),
//! `$$` for the context object, reference paths for ResultPath, payload templates whose
//! `.$` keys take a path or an intrinsic function, the `States.*` intrinsics, and Choice rules.

use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    Index(i64),
    Wildcard,
    Descend(String),
}

fn parse(path: &str) -> Result<(bool, Vec<Seg>), String> {
    let (context, rest) = if let Some(r) = path.strip_prefix("$$") {
        (true, r)
    } else if let Some(r) = path.strip_prefix('$') {
        (false, r)
    } else {
        return Err(format!("{path:?} is not a path"));
    };
    let b = rest.as_bytes();
    let mut i = 0;
    let mut segs = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' if b.get(i + 1) == Some(&b'.') => {
                let start = i + 2;
                let mut j = start;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    j += 1;
                }
                segs.push(Seg::Descend(rest[start..j].to_string()));
                i = j;
            }
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    j += 1;
                }
                let name = &rest[start..j];
                segs.push(if name == "*" {
                    Seg::Wildcard
                } else {
                    Seg::Field(name.to_string())
                });
                i = j;
            }
            b'[' => {
                let close = rest[i..]
                    .find(']')
                    .ok_or_else(|| format!("{path:?}: '[' not closed"))?
                    + i;
                let inner = rest[i + 1..close].trim();
                segs.push(if inner == "*" {
                    Seg::Wildcard
                } else if let Ok(n) = inner.parse::<i64>() {
                    Seg::Index(n)
                } else if (inner.starts_with('\'') && inner.ends_with('\''))
                    || (inner.starts_with('"') && inner.ends_with('"'))
                {
                    Seg::Field(inner[1..inner.len() - 1].to_string())
                } else {
                    return Err(format!(
                        "{path:?}: [{inner}] is not supported by the local engine"
                    ));
                });
                i = close + 1;
            }
            _ => return Err(format!("{path:?}: unexpected {:?}", b[i] as char)),
        }
    }
    Ok((context, segs))
}

fn descend(v: &Value, name: &str, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(name) {
                out.push(x.clone());
            }
            m.values().for_each(|x| descend(x, name, out));
        }
        Value::Array(a) => a.iter().for_each(|x| descend(x, name, out)),
        _ => {}
    }
}

/// The value at a path (`None` when it does not exist); wildcards and `..` give arrays.
pub fn get(path: &str, input: &Value, context: &Value) -> Result<Option<Value>, String> {
    let (ctx, segs) = parse(path)?;
    let mut cur = vec![if ctx { context.clone() } else { input.clone() }];
    let mut multi = false;
    for s in &segs {
        let mut next = Vec::new();
        for v in &cur {
            match s {
                Seg::Field(f) => next.extend(v.get(f).cloned()),
                Seg::Index(n) => {
                    if let Value::Array(a) = v {
                        let i = if *n < 0 { a.len() as i64 + n } else { *n };
                        next.extend(a.get(i as usize).cloned());
                    }
                }
                Seg::Wildcard => {
                    multi = true;
                    match v {
                        Value::Array(a) => next.extend(a.iter().cloned()),
                        Value::Object(m) => next.extend(m.values().cloned()),
                        _ => {}
                    }
                }
                Seg::Descend(name) => {
                    multi = true;
                    descend(v, name, &mut next);
                }
            }
        }
        cur = next;
    }
    Ok(if multi {
        Some(Value::Array(cur))
    } else {
        cur.into_iter().next()
    })
}

/// ResultPath: `value` placed at a reference path inside a copy of `input`.
pub fn set(path: &str, input: &Value, value: Value) -> Result<Value, String> {
    let (_, segs) = parse(path)?;
    let mut root = input.clone();
    if segs.is_empty() {
        return Ok(value);
    }
    let mut cur = &mut root;
    for (i, s) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match s {
            Seg::Field(f) => {
                if !cur.is_object() {
                    *cur = Value::Object(Map::new());
                }
                let m = cur.as_object_mut().unwrap();
                if last {
                    m.insert(f.clone(), value);
                    return Ok(root);
                }
                cur = m.entry(f.clone()).or_insert(Value::Object(Map::new()));
            }
            Seg::Index(n) => {
                let a = cur
                    .as_array_mut()
                    .ok_or_else(|| format!("{path}: not an array"))?;
                let slot = a
                    .get_mut(*n as usize)
                    .ok_or_else(|| format!("{path}: no index {n}"))?;
                if last {
                    *slot = value;
                    return Ok(root);
                }
                cur = slot;
            }
            _ => return Err(format!("{path}: a ResultPath cannot use wildcards")),
        }
    }
    Ok(root)
}

/// A payload template: keys ending in `.$` take a path or an intrinsic call's value.
pub fn template(
    t: &Value,
    input: &Value,
    context: &Value,
    vars: &Map<String, Value>,
) -> Result<Value, String> {
    match t {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                match k.strip_suffix(".$") {
                    Some(name) => {
                        let e = v.as_str().ok_or_else(|| {
                            format!("{k}: a path or intrinsic (a string) is expected")
                        })?;
                        out.insert(name.to_string(), expression(e, input, context, vars)?);
                    }
                    None => {
                        out.insert(k.clone(), template(v, input, context, vars)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => a
            .iter()
            .map(|v| template(v, input, context, vars))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// A `.$` value: a path, `$$` context path, a `$variable` path, or an intrinsic call.
pub fn expression(
    e: &str,
    input: &Value,
    context: &Value,
    vars: &Map<String, Value>,
) -> Result<Value, String> {
    let e = e.trim();
    if e.starts_with("States.") {
        let mut p = Intrinsic {
            s: e,
            i: 0,
            input,
            context,
            vars,
        };
        let v = p.call()?;
        return Ok(v);
    }
    // `$name...` (not `$.` nor `$$` nor `$[`) reads a variable.
    if let Some(rest) = e.strip_prefix('$') {
        if rest
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
        {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let var = vars
                .get(&rest[..end])
                .cloned()
                .ok_or_else(|| format!("variable ${} is not assigned", &rest[..end]))?;
            return get(&format!("${}", &rest[end..]), &var, context)?
                .ok_or_else(|| format!("{e}: no such path"));
        }
    }
    get(e, input, context)?
        .ok_or_else(|| format!("the JSONPath {e} could not be found in the input"))
}

struct Intrinsic<'a> {
    s: &'a str,
    i: usize,
    input: &'a Value,
    context: &'a Value,
    vars: &'a Map<String, Value>,
}

impl Intrinsic<'_> {
    fn ws(&mut self) {
        while self.s[self.i..].starts_with(' ') {
            self.i += 1;
        }
    }
    fn call(&mut self) -> Result<Value, String> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s.as_bytes()[self.i].is_ascii_alphanumeric()
                || self.s.as_bytes()[self.i] == b'.')
        {
            self.i += 1;
        }
        let name = self.s[start..self.i].to_string();
        if !self.s[self.i..].starts_with('(') {
            return Err(format!("{name}: '(' expected"));
        }
        self.i += 1;
        let mut args = Vec::new();
        self.ws();
        if self.s[self.i..].starts_with(')') {
            self.i += 1;
        } else {
            loop {
                self.ws();
                args.push(self.arg()?);
                self.ws();
                if self.s[self.i..].starts_with(',') {
                    self.i += 1;
                } else if self.s[self.i..].starts_with(')') {
                    self.i += 1;
                    break;
                } else {
                    return Err(format!("{name}: ',' or ')' expected"));
                }
            }
        }
        intrinsic(&name, args)
    }
    fn arg(&mut self) -> Result<Value, String> {
        let rest = &self.s[self.i..];
        if let Some(r) = rest.strip_prefix('\'') {
            let mut out = String::new();
            let mut chars = r.char_indices();
            while let Some((j, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '\'' => {
                        self.i += j + 2;
                        return Ok(Value::String(out));
                    }
                    c => out.push(c),
                }
            }
            return Err("unterminated string".into());
        }
        if rest.starts_with("States.") {
            return self.call();
        }
        if rest.starts_with('$') {
            let mut depth = 0;
            let mut end = rest.len();
            for (j, c) in rest.char_indices() {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    ',' | ')' if depth == 0 => {
                        end = j;
                        break;
                    }
                    _ => {}
                }
            }
            self.i += end;
            return expression(rest[..end].trim(), self.input, self.context, self.vars);
        }
        for (lit, v) in [
            ("true", json!(true)),
            ("false", json!(false)),
            ("null", Value::Null),
        ] {
            if rest.starts_with(lit) {
                self.i += lit.len();
                return Ok(v);
            }
        }
        let end = rest.find([',', ')']).unwrap_or(rest.len());
        let n: f64 = rest[..end]
            .trim()
            .parse()
            .map_err(|_| format!("unexpected argument {}", &rest[..end]))?;
        self.i += end;
        Ok(serde_json::Number::from_f64(n)
            .map(|x| {
                if n.fract() == 0.0 {
                    json!(n as i64)
                } else {
                    Value::Number(x)
                }
            })
            .unwrap_or(Value::Null))
    }
}

fn num(v: &Value, f: &str) -> Result<f64, String> {
    v.as_f64()
        .ok_or_else(|| format!("{f}: {v} is not a number"))
}

/// An intrinsic's arguments, with accessors that name the function in their errors.
struct Args {
    name: String,
    a: Vec<Value>,
}

impl Args {
    fn get(&self, i: usize) -> Result<&Value, String> {
        self.a
            .get(i)
            .ok_or_else(|| format!("{}: argument {} is missing", self.name, i + 1))
    }
    fn s(&self, i: usize) -> Result<String, String> {
        let v = self.a.get(i).and_then(|v| v.as_str());
        v.map(str::to_string)
            .ok_or_else(|| format!("{}: argument {} must be a string", self.name, i + 1))
    }
    fn arr(&self, i: usize) -> Result<Vec<Value>, String> {
        let v = self.a.get(i).and_then(|v| v.as_array());
        v.cloned()
            .ok_or_else(|| format!("{}: argument {} must be an array", self.name, i + 1))
    }
    fn num(&self, i: usize) -> Result<f64, String> {
        num(self.get(i)?, &self.name)
    }
    /// A value as text: a string as it is, anything else as its JSON.
    fn text(v: &Value) -> String {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    }
}

type IntrinsicFn = fn(&Args) -> Result<Value, String>;

/// The `States.*` intrinsic functions, by name.
const INTRINSICS: &[(&str, IntrinsicFn)] = &[
    ("States.Format", format),
    ("States.StringToJson", |a| {
        serde_json::from_str(&a.s(0)?).map_err(|e| format!("{}: {e}", a.name))
    }),
    ("States.JsonToString", |a| {
        Ok(json!(
            a.a.first().cloned().unwrap_or(Value::Null).to_string()
        ))
    }),
    ("States.Array", |a| Ok(Value::Array(a.a.clone()))),
    ("States.ArrayPartition", |a| {
        let n = a.num(1)? as usize;
        Ok(Value::Array(
            a.arr(0)?
                .chunks(n.max(1))
                .map(|c| Value::Array(c.to_vec()))
                .collect(),
        ))
    }),
    ("States.ArrayContains", |a| {
        Ok(json!(a.arr(0)?.contains(a.get(1)?)))
    }),
    ("States.ArrayRange", array_range),
    ("States.ArrayGetItem", |a| {
        Ok(a.arr(0)?
            .get(a.num(1)? as usize)
            .cloned()
            .unwrap_or(Value::Null))
    }),
    ("States.ArrayLength", |a| Ok(json!(a.arr(0)?.len()))),
    ("States.ArrayUnique", |a| {
        let mut out: Vec<Value> = Vec::new();
        for v in a.arr(0)? {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        Ok(Value::Array(out))
    }),
    ("States.Base64Encode", |a| {
        Ok(json!(aws_smithy_types::base64::encode(a.s(0)?.as_bytes())))
    }),
    ("States.Base64Decode", |a| {
        let bytes =
            aws_smithy_types::base64::decode(a.s(0)?).map_err(|e| format!("{}: {e}", a.name))?;
        Ok(json!(String::from_utf8_lossy(&bytes)))
    }),
    ("States.Hash", hash),
    ("States.JsonMerge", |a| {
        let object = |i| a.get(i).ok().and_then(Value::as_object).cloned();
        let objects = || format!("{}: objects expected", a.name);
        let mut m = object(0).ok_or_else(objects)?;
        m.extend(object(1).ok_or_else(objects)?);
        Ok(Value::Object(m))
    }),
    ("States.MathRandom", |a| {
        let (lo, hi) = (a.num(0)?, a.num(1)?);
        Ok(json!(
            (lo + rand::random::<f64>() * (hi - lo)).floor() as i64
        ))
    }),
    ("States.MathAdd", |a| {
        let x = a.num(0)? + a.num(1)?;
        Ok(if x.fract() == 0.0 {
            json!(x as i64)
        } else {
            json!(x)
        })
    }),
    ("States.StringSplit", |a| {
        let (text, seps) = (a.s(0)?, a.s(1)?);
        let parts = text.split(|c| seps.contains(c)).filter(|p| !p.is_empty());
        Ok(Value::Array(parts.map(|p| json!(p)).collect()))
    }),
    ("States.UUID", |_| {
        Ok(json!(uuid::Uuid::new_v4().to_string()))
    }),
];

fn intrinsic(name: &str, a: Vec<Value>) -> Result<Value, String> {
    let (_, f) = INTRINSICS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("unknown intrinsic {name}"))?;
    f(&Args {
        name: name.to_string(),
        a,
    })
}

/// `States.Format`: each `{}` replaced by the next argument.
fn format(a: &Args) -> Result<Value, String> {
    let fmt = a.s(0)?;
    let mut out = String::new();
    let mut k = 1;
    let mut rest = fmt.as_str();
    while let Some(p) = rest.find("{}") {
        out.push_str(&rest[..p]);
        let v =
            a.a.get(k)
                .ok_or_else(|| format!("{}: too few arguments for the format", a.name))?;
        out.push_str(&Args::text(v));
        k += 1;
        rest = &rest[p + 2..];
    }
    out.push_str(rest);
    Ok(json!(out))
}

/// `States.ArrayRange(first, last, step)`, at most 1000 elements as AWS allows.
fn array_range(a: &Args) -> Result<Value, String> {
    let (x, y, st) = (a.num(0)?, a.num(1)?, a.num(2)?);
    // AWS: "The array can contain up to 1000 elements" (checked before building it)
    let len = if st == 0.0 {
        f64::INFINITY
    } else {
        ((y - x) / st).floor() + 1.0
    };
    if len > 1000.0 {
        let n = if len.is_finite() {
            len.to_string()
        } else {
            "unbounded".into()
        };
        return Err(format!(
            "{}: the range would have {n} elements; States.ArrayRange returns at most 1000",
            a.name
        ));
    }
    let mut out = Vec::new();
    let mut v = x;
    while (st > 0.0 && v <= y) || (st < 0.0 && v >= y) {
        out.push(json!(v as i64));
        v += st;
    }
    Ok(Value::Array(out))
}

/// `States.Hash(data, algorithm)`, as hex.
fn hash(a: &Args) -> Result<Value, String> {
    use sha2::Digest;
    let data = a.a.first().map(Args::text).unwrap_or_default();
    let bytes = match a.s(1)?.as_str() {
        "SHA-256" => sha2::Sha256::digest(data.as_bytes()).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data.as_bytes()).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data.as_bytes()).to_vec(),
        other => {
            return Err(format!(
                "{}: {other} is not supported locally (SHA-256, SHA-384, SHA-512)",
                a.name
            ));
        }
    };
    Ok(json!(hex::encode(bytes)))
}

/// A JSONPath Choice rule against the state's input.
pub fn rule(
    r: &Value,
    input: &Value,
    context: &Value,
    vars: &Map<String, Value>,
) -> Result<bool, String> {
    if let Some(all) = r["And"].as_array() {
        for x in all {
            if !rule(x, input, context, vars)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(any) = r["Or"].as_array() {
        for x in any {
            if rule(x, input, context, vars)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if r.get("Not").is_some() {
        return Ok(!rule(&r["Not"], input, context, vars)?);
    }
    let var = r["Variable"]
        .as_str()
        .ok_or("a Choice rule needs Variable")?;
    let v = expression(var, input, context, vars).ok();
    let obj = r.as_object().ok_or("a Choice rule is an object")?;
    let (op, want) = obj
        .iter()
        .find(|(k, _)| *k != "Variable" && *k != "Next" && *k != "Assign")
        .ok_or("a Choice rule needs a comparison")?;
    let (op, want) = match op.strip_suffix("Path") {
        Some(base) if !matches!(op.as_str(), "IsPresent") => (
            base.to_string(),
            expression(want.as_str().unwrap_or("$"), input, context, vars)?,
        ),
        _ => (op.clone(), want.clone()),
    };
    let Some(v) = v else {
        return Ok(op == "IsPresent" && want == json!(false));
    };
    Ok(match op.as_str() {
        "IsPresent" => want == json!(true),
        "IsNull" => v.is_null() == (want == json!(true)),
        "IsNumeric" => v.is_number() == (want == json!(true)),
        "IsString" => v.is_string() == (want == json!(true)),
        "IsBoolean" => v.is_boolean() == (want == json!(true)),
        "IsTimestamp" => {
            v.as_str()
                .is_some_and(|s| s.len() >= 20 && s.as_bytes()[4] == b'-' && s.contains('T'))
                == (want == json!(true))
        }
        "StringEquals" | "TimestampEquals" => v.as_str().is_some() && v == want,
        "StringLessThan" | "TimestampLessThan" => {
            v.as_str().zip(want.as_str()).is_some_and(|(a, b)| a < b)
        }
        "StringGreaterThan" | "TimestampGreaterThan" => {
            v.as_str().zip(want.as_str()).is_some_and(|(a, b)| a > b)
        }
        "StringLessThanEquals" | "TimestampLessThanEquals" => {
            v.as_str().zip(want.as_str()).is_some_and(|(a, b)| a <= b)
        }
        "StringGreaterThanEquals" | "TimestampGreaterThanEquals" => {
            v.as_str().zip(want.as_str()).is_some_and(|(a, b)| a >= b)
        }
        "StringMatches" => v
            .as_str()
            .zip(want.as_str())
            .is_some_and(|(a, p)| wildcard(p, a)),
        "NumericEquals" => v.as_f64().zip(want.as_f64()).is_some_and(|(a, b)| a == b),
        "NumericLessThan" => v.as_f64().zip(want.as_f64()).is_some_and(|(a, b)| a < b),
        "NumericGreaterThan" => v.as_f64().zip(want.as_f64()).is_some_and(|(a, b)| a > b),
        "NumericLessThanEquals" => v.as_f64().zip(want.as_f64()).is_some_and(|(a, b)| a <= b),
        "NumericGreaterThanEquals" => v.as_f64().zip(want.as_f64()).is_some_and(|(a, b)| a >= b),
        "BooleanEquals" => v.is_boolean() && v == want,
        other => return Err(format!("unknown comparison {other}")),
    })
}

/// StringMatches: `*` matches anything, case-sensitive.
fn wildcard(p: &str, t: &str) -> bool {
    match p.split_once('*') {
        None => p == t,
        Some((head, tail)) => {
            t.starts_with(head)
                && (0..=t.len() - head.len()).any(|i| {
                    t.is_char_boundary(head.len() + i) && wildcard(tail, &t[head.len() + i..])
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_and_write() {
        let v = json!({"a": {"b": [1, 2, {"c": 3}]}, "x y": 1});
        let ctx = json!({"Task": {"Token": "t"}});
        assert_eq!(get("$.a.b[2].c", &v, &ctx).unwrap(), Some(json!(3)));
        assert_eq!(get("$['x y']", &v, &ctx).unwrap(), Some(json!(1)));
        assert_eq!(
            get("$.a.b[*]", &v, &ctx).unwrap(),
            Some(json!([1, 2, {"c": 3}]))
        );
        assert_eq!(get("$..c", &v, &ctx).unwrap(), Some(json!([3])));
        assert_eq!(get("$$.Task.Token", &v, &ctx).unwrap(), Some(json!("t")));
        assert_eq!(get("$.nope", &v, &ctx).unwrap(), None);
        assert_eq!(
            set("$.r.s", &json!({"a": 1}), json!(2)).unwrap(),
            json!({"a": 1, "r": {"s": 2}})
        );
        assert_eq!(set("$", &json!({"a": 1}), json!(2)).unwrap(), json!(2));
    }

    #[test]
    fn templates_and_intrinsics() {
        let input = json!({"body": "{\"Records\": [1]}", "n": 2, "name": "Ann"});
        let vars = Map::new();
        let t = json!({"body.$": "States.StringToJson($.body)", "msg.$": "States.Format('Hi {}, {} items', $.name, $.n)", "fixed": {"k.$": "$.n"}});
        assert_eq!(
            template(&t, &input, &json!({}), &vars).unwrap(),
            json!({"body": {"Records": [1]}, "msg": "Hi Ann, 2 items", "fixed": {"k": 2}})
        );
        let e = |x: &str| expression(x, &input, &json!({}), &vars).unwrap();
        assert_eq!(
            e("States.ArrayPartition(States.Array(1, 2, 3), 2)"),
            json!([[1, 2], [3]])
        );
        assert_eq!(e("States.MathAdd($.n, -5)"), json!(-3));
        assert_eq!(
            e("States.StringSplit('a,b;c', ',;')"),
            json!(["a", "b", "c"])
        );
        assert_eq!(
            e("States.Base64Decode(States.Base64Encode('hé'))"),
            json!("hé")
        );
        assert_eq!(e("States.ArrayRange(1, 9, 4)"), json!([1, 5, 9]));
        assert!(
            expression("$.missing", &input, &json!({}), &vars)
                .unwrap_err()
                .contains("could not be found")
        );
    }

    #[test]
    fn choice_rules() {
        let input = json!({"s": "SUCCESS", "n": 4, "f": false});
        let r = |x: Value| rule(&x, &input, &json!({}), &Map::new()).unwrap();
        assert!(r(json!({"Variable": "$.s", "StringEquals": "SUCCESS"})));
        assert!(r(
            json!({"And": [{"Variable": "$.n", "NumericGreaterThan": 3}, {"Not": {"Variable": "$.f", "BooleanEquals": true}}]})
        ));
        assert!(r(json!({"Variable": "$.missing", "IsPresent": false})));
        assert!(r(json!({"Variable": "$.s", "StringMatches": "SUC*"})));
        assert!(!r(json!({"Variable": "$.missing", "StringEquals": "x"})));
    }
}
