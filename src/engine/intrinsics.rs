//! The `States.*` intrinsic functions of JSONPath payload templates: the call parsed from its
//! text, its arguments checked as AWS checks them, and one small function per intrinsic.

use serde_json::{Value, json};

/// Evaluates an intrinsic call `e` (`States.Name(arg, ...)`); `path` reads an argument that
/// is a path (`$.x`, `$$.y`, `$var`), which may itself be any `.$` expression.
pub fn call(e: &str, path: &dyn Fn(&str) -> Result<Value, String>) -> Result<Value, String> {
    Intrinsic { s: e, i: 0, path }.call()
}

struct Intrinsic<'a> {
    s: &'a str,
    i: usize,
    path: &'a dyn Fn(&str) -> Result<Value, String>,
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
            return (self.path)(rest[..end].trim());
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
    /// A value as text: a string as it is, a number or null as in JSON; an object as
    /// `{Arg1=1, Arg2=[]}` and an array as `[1, 2]`, as AWS writes them (Java's maps and lists).
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(a) => {
                let items: Vec<String> = a.iter().map(Args::text).collect();
                format!("[{}]", items.join(", "))
            }
            Value::Object(m) => {
                let items: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", Args::text(v)))
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            other => other.to_string(),
        }
    }
}

type IntrinsicFn = fn(&Args) -> Result<Value, String>;

/// The `States.*` intrinsic functions, by name.
const INTRINSICS: &[(&str, IntrinsicFn)] = &[
    ("States.Format", format),
    ("States.StringToJson", |a| match a.s(0)?.trim() {
        // AWS: an empty or blank string is null
        "" => Ok(Value::Null),
        text => serde_json::from_str(text).map_err(|e| format!("{}: {e}", a.name)),
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
        // AWS rounds each argument to an integer first, halves up (Java's Math.round):
        // MathAdd(1.49, 1.5) is 3, MathAdd(-1.49, -1.5) is -2
        let round = |x: f64| (x + 0.5).floor() as i64;
        Ok(json!(round(a.num(0)?) + round(a.num(1)?)))
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
    let data = a.a.first().map(Args::text).unwrap_or_default();
    let algorithm = a.s(1)?;
    digest(&algorithm, data.as_bytes())
        .map(|h| json!(h))
        .ok_or_else(|| format!("{}: the algorithm must be one of MD5, SHA-1, SHA-256, SHA-384, SHA-512, not {algorithm}", a.name))
}

/// A digest as hex, by the names `States.Hash` and JSONata's `$hash` take.
pub fn digest(algorithm: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest;
    let bytes = match algorithm {
        "MD5" => md5::Md5::digest(data).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    };
    Some(hex::encode(bytes))
}
