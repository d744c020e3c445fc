//! JSONPath processing as Step Functions does it: paths (`$.a.b[0]`, `$['x']`, `[*]`, `..`),
//! `$$` for the context object, reference paths for ResultPath, payload templates whose
//! `.$` keys take a path or an intrinsic function (`intrinsics.rs`), and Choice rules.

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
                let j = name_end(b, i + 2);
                segs.push(Seg::Descend(rest[i + 2..j].to_string()));
                i = j;
            }
            // `$.[0]` is `$[0]`: AWS (Jayway) reads a dot before a bracket as nothing
            b'.' if b.get(i + 1) == Some(&b'[') => i += 1,
            b'.' => {
                let j = name_end(b, i + 1);
                let name = &rest[i + 1..j];
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

/// Where a name that starts at `start` ends: at the next `.` or `[`, or the end.
fn name_end(b: &[u8], start: usize) -> usize {
    let rest = b[start..].iter().position(|c| *c == b'.' || *c == b'[');
    rest.map_or(b.len(), |n| start + n)
}

/// A path as AWS shows it normalized (`$.a.b` → `$['a']['b']`); none for one that is not a
/// path.
pub fn normalized(path: &str) -> Option<String> {
    let rest = path.trim().strip_prefix('$')?;
    to_rfc9535(rest).ok().map(|(n, _)| n)
}

/// Why a definite path finds nothing in `v`, as Jayway (and so AWS) says it: `No results for
/// path: $['a']['b']` when its last step is missing, `Missing property in path $['a']` when a step
/// before the last is. None for a path that is not definite or does find something.
pub fn missing(path: &str, v: &Value) -> Option<String> {
    let (context, segs) = parse(path.trim()).ok()?;
    if context {
        return None;
    }
    let (mut cur, mut prefix) = (v, String::from("$"));
    for (i, seg) in segs.iter().enumerate() {
        let next = match seg {
            Seg::Field(n) => {
                prefix.push_str(&format!("['{n}']"));
                cur.get(n)
            }
            Seg::Index(k) => {
                prefix.push_str(&format!("[{k}]"));
                let a = cur.as_array()?;
                let at = if *k < 0 { a.len() as i64 + k } else { *k };
                usize::try_from(at).ok().and_then(|at| a.get(at))
            }
            _ => return None,
        };
        match next {
            Some(x) => cur = x,
            None if i + 1 == segs.len() => {
                return Some(format!("No results for path: {}", normalized(path)?));
            }
            None => return Some(format!("Missing property in path {prefix}")),
        }
    }
    None
}

/// The index of the `]` that closes the `[` at `i`, past quotes and nested brackets (filters).
fn closing_bracket(b: &[u8], i: usize) -> Option<usize> {
    let (mut depth, mut quote, mut j) = (0usize, None, i);
    while j < b.len() {
        match (quote, b[j]) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), b'\\') => j += 1,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b[j]),
            (None, b'[') => depth += 1,
            (None, b']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

/// `s` is one name in quotes `q`.
fn quoted_once(s: &str, q: char) -> bool {
    s.len() >= 2 && s.starts_with(q) && s.ends_with(q) && !s[1..s.len() - 1].contains(q)
}

/// A path as Step Functions writes it (Jayway's JsonPath: `$.a-b`, `[?(@.x > 1)]`) as an RFC 9535
/// query, and whether it is definite (names and single indexes only: it selects one value,
/// not a list).
fn to_rfc9535(rest: &str) -> Result<(String, bool), String> {
    let b = rest.as_bytes();
    let (mut out, mut definite, mut i) = (String::from("$"), true, 0);
    let quoted = |name: &str| format!("['{}']", name.replace('\\', "\\\\").replace('\'', "\\'"));
    while i < b.len() {
        match b[i] {
            b'.' => {
                let deep = b.get(i + 1) == Some(&b'.');
                let start = i + if deep { 2 } else { 1 };
                let mut j = start;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    j += 1;
                }
                let name = &rest[start..j];
                if deep {
                    definite = false;
                    out.push_str("..");
                }
                match name {
                    "" if deep => {}
                    // `$.[0]`, `$.a.['b']`: a dot before a bracket is nothing (AWS reads it so)
                    "" if b.get(j) == Some(&b'[') => {}
                    "" => return Err("a name is expected after '.'".into()),
                    "*" => {
                        definite = false;
                        out.push_str(if deep { "*" } else { ".*" });
                    }
                    n => out.push_str(&quoted(n)),
                }
                i = j;
            }
            b'[' => {
                let j = closing_bracket(b, i).ok_or("'[' is not closed")?;
                let inner = rest[i + 1..j].trim();
                let single_name = quoted_once(inner, '\'') || quoted_once(inner, '"');
                if inner.parse::<i64>().is_err() && !single_name {
                    definite = false;
                }
                if single_name {
                    // the text between the quotes is the name as it is, backslashes and all
                    // (Jayway's reading, recorded from AWS: `$['a\"b']` names `a\"b`)
                    out.push_str(&quoted(&inner[1..inner.len() - 1]));
                } else {
                    out.push('[');
                    out.push_str(inner);
                    out.push(']');
                }
                i = j + 1;
            }
            c => return Err(format!("unexpected {:?}", c as char)),
        }
    }
    Ok((out, definite))
}

/// The value at a path (`None` when it does not exist). A path that can select several
/// values (wildcards, `..`, slices, unions, filters) gives them as an array, `[]` when none.
pub fn get(path: &str, input: &Value, context: &Value) -> Result<Option<Value>, String> {
    let (root, rest) = if let Some(r) = path.strip_prefix("$$") {
        (context, r)
    } else if let Some(r) = path.strip_prefix('$') {
        (input, r)
    } else {
        return Err(format!("{path:?} is not a path"));
    };
    let (query, definite) = to_rfc9535(rest).map_err(|m| format!("{path:?}: {m}"))?;
    let q = serde_json_path::JsonPath::parse(&query).map_err(|e| format!("{path:?}: {e}"))?;
    let nodes = q.query(root).all();
    Ok(if definite {
        nodes.first().map(|v| (*v).clone())
    } else {
        Some(Value::Array(nodes.into_iter().cloned().collect()))
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
                let m = cur.as_object_mut().ok_or_else(|| {
                    format!("Unable to apply ResultPath {path:?}: the value it would be placed in is not a JSON object")
                })?;
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
                        let v = expression(e, input, context, vars).map_err(|m| {
                            if !found_nothing(&m) {
                                return m;
                            }
                            // AWS's words for a path that finds nothing, naming the field
                            let from = if e.trim().starts_with("$$") { context } else { input };
                            format!("The JSONPath '{}' specified for the field '{k}' could not be found in the input '{from}'", e.trim())
                        })?;
                        out.insert(name.to_string(), v);
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

/// How `expression`'s error for a path that finds nothing begins.
const NOTHING_FOUND: &str = "the JSONPath";

/// `expression`'s error `m` says its path found nothing (the path itself is valid).
pub fn found_nothing(m: &str) -> bool {
    m.starts_with(NOTHING_FOUND)
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
        return super::intrinsics::call(e, &|p| expression(p, input, context, vars));
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
        .ok_or_else(|| format!("{NOTHING_FOUND} {e} could not be found in the input"))
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
    let present_check = r.get("IsPresent").is_some();
    if v.is_none() && !present_check {
        return Err(format!(
            "Invalid path '{var}': The choice state's condition path references an invalid value."
        ));
    }
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
    compare(&op, &v, &want)
}

/// A Choice rule's comparison of the value at its Variable, `v`, with what it names.
fn compare(op: &str, v: &Value, want: &Value) -> Result<bool, String> {
    let yes = *want == json!(true);
    let instant = |x: &Value| x.as_str().and_then(timestamp);
    Ok(match op {
        "IsPresent" => yes,
        "IsNull" => v.is_null() == yes,
        "IsNumeric" => v.is_number() == yes,
        "IsString" => v.is_string() == yes,
        "IsBoolean" => v.is_boolean() == yes,
        "IsTimestamp" => instant(v).is_some() == yes,
        "StringMatches" => v
            .as_str()
            .zip(want.as_str())
            .is_some_and(|(a, p)| wildcard(p, a)),
        "BooleanEquals" => v.is_boolean() && v == want,
        _ => {
            if let Some(rel) = op.strip_prefix("Timestamp") {
                let Some((a, b)) = instant(v).zip(instant(want)) else {
                    return Ok(false);
                };
                return relation(op, rel, Some(a.cmp(&b)));
            }
            if let Some(rel) = op.strip_prefix("String") {
                let strings = v.as_str().zip(want.as_str());
                return relation(op, rel, strings.map(|(a, b)| a.cmp(b)));
            }
            if let Some(rel) = op.strip_prefix("Numeric") {
                let numbers = v.as_f64().zip(want.as_f64());
                return relation(op, rel, numbers.and_then(|(a, b)| a.partial_cmp(&b)));
            }
            return Err(format!("unknown comparison {op}"));
        }
    })
}

/// Whether `ord` (none: the values are not of the comparison's type) is what the relation
/// at the end of a comparison's name (Equals, LessThan, ...) asks for.
fn relation(op: &str, rel: &str, ord: Option<std::cmp::Ordering>) -> Result<bool, String> {
    let test: fn(std::cmp::Ordering) -> bool = match rel {
        "Equals" => std::cmp::Ordering::is_eq,
        "LessThan" => std::cmp::Ordering::is_lt,
        "GreaterThan" => std::cmp::Ordering::is_gt,
        "LessThanEquals" => std::cmp::Ordering::is_le,
        "GreaterThanEquals" => std::cmp::Ordering::is_ge,
        _ => return Err(format!("unknown comparison {op}")),
    };
    Ok(ord.is_some_and(test))
}

/// StringMatches: `*` matches any run of characters, `\\*` a star and `\\\\` a backslash;
/// case-sensitive.
fn wildcard(p: &str, t: &str) -> bool {
    enum Part {
        Star,
        Char(char),
    }
    let mut parts = Vec::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        parts.push(match c {
            '\\' => Part::Char(chars.next().unwrap_or('\\')),
            '*' => Part::Star,
            c => Part::Char(c),
        });
    }
    let text: Vec<char> = t.chars().collect();
    // matches[j]: the parts so far match the first j characters
    let mut matches = vec![false; text.len() + 1];
    matches[0] = true;
    for part in &parts {
        let mut next = vec![false; text.len() + 1];
        match part {
            Part::Star => {
                let mut any = false;
                for j in 0..=text.len() {
                    any |= matches[j];
                    next[j] = any;
                }
            }
            Part::Char(c) => {
                for j in 1..=text.len() {
                    next[j] = matches[j - 1] && text[j - 1] == *c;
                }
            }
        }
        matches = next;
    }
    matches[text.len()]
}

/// A timestamp as the Amazon States Language takes it (RFC 3339: an uppercase `T` between
/// date and time, an uppercase `Z` or a numeric offset, optional fractional seconds), as
/// the instant it names: (seconds since 1970, nanoseconds).
pub fn timestamp(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = s.get(from..from + n)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (h, mi, sec) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !valid_date(y, mo, d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        nanos = format!("{frac:0<9}").parse().ok()?;
    }
    let offset = match &s[i..] {
        "Z" => 0,
        z if z.len() == 6
            && (z.starts_with('+') || z.starts_with('-'))
            && z.as_bytes()[3] == b':' =>
        {
            let (oh, om) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let sign = if z.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset, nanos))
}

/// A day of the Gregorian calendar that exists.
fn valid_date(y: i64, mo: i64, d: i64) -> bool {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let february = if leap { 29 } else { 28 };
    let days_in = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1..=12).contains(&mo) && d >= 1 && d <= days_in[(mo - 1) as usize]
}

/// Days from 1970-01-01 (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, mo: i64, d: i64) -> i64 {
    let (yy, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn paths_read_as_aws_reads_them() {
        let v = json!([{"body": "b", "bucket": "x", "key": "k", "OU": 1}, {"OU": 0}]);
        let ctx = json!({});
        // a dot before a bracket is nothing
        assert_eq!(get("$.[0].body", &v, &ctx).unwrap(), Some(json!("b")));
        assert_eq!(
            get("$.[*].['bucket', 'key']", &v, &ctx).unwrap(),
            Some(json!(["x", "k"]))
        );
        assert_eq!(
            get("$.[?(@.OU > 0)].body", &v, &ctx).unwrap(),
            Some(json!(["b"]))
        );
        // a quoted name is the text between its quotes, backslashes and all
        let odd = json!({"a\\\"b": 1});
        assert_eq!(get("$['a\\\"b']", &odd, &ctx).unwrap(), Some(json!(1)));
        // what finds nothing says which step is missing
        assert_eq!(
            missing("$.a.b", &json!({})).as_deref(),
            Some("Missing property in path $['a']")
        );
        assert_eq!(
            missing("$.a.b", &json!({"a": {}})).as_deref(),
            Some("No results for path: $['a']['b']")
        );
        for p in [
            "$.[0]",
            "$.Snapshots.[0].State",
            "$.[*].['bucket', 'key']",
            "$.[?(@.OU > 0)]",
        ] {
            assert_eq!(crate::validate::expr::jsonpath_error(p, false), None, "{p}");
        }
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
        // AWS: a rule whose Variable is not there fails the state (States.Runtime)
        let missing = json!({"Variable": "$.missing", "StringEquals": "x"});
        assert!(rule(&missing, &input, &json!({}), &Map::new()).is_err());
        assert!(r(json!({"Variable": "$.s", "StringMatches": "S\\*C*"})) == false);
    }

    #[test]
    fn timestamps_are_instants() {
        assert_eq!(timestamp("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(timestamp("1970-01-01T01:00:00+01:00"), Some((0, 0)));
        assert_eq!(
            timestamp("2016-03-14T01:59:00.25Z"),
            Some((1_457_920_740, 250_000_000))
        );
        for bad in [
            "2016-03-14",
            "2016-03-14T01:59:00",
            "2016-03-14t01:59:00Z",
            "2016-02-30T00:00:00Z",
            "2016-03-14T01:59:00z",
        ] {
            assert_eq!(timestamp(bad), None, "{bad}");
        }
    }
}
