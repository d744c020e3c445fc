//! Expressions inside definitions: JSONata `{% ... %}` (parsed, with the error's position),
//! JSONPath paths and reference paths, and `States.*` intrinsic function calls (name, arity).

/// A JSONata expression's parse error and where it is (a char offset into the expression).
pub fn jsonata_error(expr: &str) -> Option<(usize, String)> {
    let err = jsonata_core::parser::parse(expr).err()?;
    let msg = err.to_string();
    // The parser gives no position: find the shortest prefix that already fails for a reason
    // other than "ends too soon"; the character that ends it is where the expression breaks.
    let ends_early = |m: &str| {
        m.contains("S0207")
            || m.contains("S0203")
            || m.contains("Unclosed")
            || m.contains("S0101")
            || m.contains("S0105")
    };
    let mut pos = expr.chars().count();
    for (n, (i, c)) in expr.char_indices().enumerate() {
        let prefix = &expr[..i + c.len_utf8()];
        if let Err(e) = jsonata_core::parser::parse(prefix) {
            if !ends_early(&e.to_string()) {
                pos = n;
                break;
            }
        }
    }
    Some((pos, msg))
}

/// The `$states.<member>` names an expression uses.
pub fn states_members(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\$states\.([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    let mut out: Vec<String> = re.captures_iter(expr).map(|c| c[1].to_string()).collect();
    out.dedup();
    out
}

/// The whole of a string that is a JSONata expression: `{% ... %}`.
pub fn jsonata_of(s: &str) -> Option<&str> {
    // exactly: a string with white space around `{% ... %}` is a string (AWS answers it as is)
    s.strip_prefix("{%").and_then(|r| r.strip_suffix("%}"))
}

/// Checks a JSONPath path (`$`, `$.a.b[0]`, `$['x']`, `$..y`, `$.a[*]`, filters); with
/// `reference`, only plain references (no wildcards, filters or recursive descent).
pub fn jsonpath_error(path: &str, reference: bool) -> Option<String> {
    let p = path.trim();
    let rest = if let Some(r) = p.strip_prefix("$$") {
        r
    } else if let Some(r) = p.strip_prefix('$') {
        r
    } else {
        return Some(format!("{path:?} is not a path: it must start with $"));
    };
    // `$name...` reads a workflow variable (AWS accepts it wherever a path is read, not where
    // a result is written)
    let rest = match rest.chars().next() {
        Some(c) if c.is_alphabetic() || c == '_' => {
            if reference {
                return Some(format!("{path:?}: a reference path cannot name a variable"));
            }
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            &rest[end..]
        }
        _ => rest,
    };
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => match dot(path, b, i + 1, reference) {
                Ok(next) => i = next,
                Err(e) => return Some(e),
            },
            b'[' => {
                let Some(close) = rest[i..].find(']') else {
                    return Some(format!("{path:?}: '[' is never closed"));
                };
                if let Some(e) = bracket(path, &rest[i + 1..i + close], reference) {
                    return Some(e);
                }
                i += close + 1;
            }
            _ => {
                return Some(format!(
                    "{path:?}: unexpected {:?} at {}",
                    b[i] as char,
                    i + 1 + (p.len() - rest.len())
                ));
            }
        }
    }
    None
}

/// What follows a `.` at `i`: `..`, `*` or a name (the first two not in a reference path);
/// where it ends.
fn dot(path: &str, b: &[u8], mut i: usize, reference: bool) -> Result<usize, String> {
    if b.get(i) == Some(&b'.') {
        if reference {
            return Err(format!("{path:?}: a reference path cannot use '..'"));
        }
        i += 1;
    }
    if b.get(i) == Some(&b'*') {
        if reference {
            return Err(format!("{path:?}: a reference path cannot use '*'"));
        }
        return Ok(i + 1);
    }
    let start = i;
    while i < b.len() && b[i] != b'.' && b[i] != b'[' {
        i += 1;
    }
    // `$.[0]` is `$[0]`, as AWS reads it
    if i == start && b.get(i) == Some(&b'[') && start > 0 && b[start - 1] == b'.' {
        return Ok(i);
    }
    if i == start {
        return Err(format!("{path:?}: empty name after '.'"));
    }
    Ok(i)
}

/// What is wrong with the inside of a path's `[...]`: an index, a quoted name, `*`, a filter
/// or a slice (the last three not in a reference path).
fn bracket(path: &str, inner: &str, reference: bool) -> Option<String> {
    let selects =
        inner == "*" || inner.starts_with("?(") || inner.contains(':') || inner.contains(',');
    let quoted = inner.starts_with('\'') && inner.ends_with('\'') && inner.len() >= 2;
    if !(selects || quoted || inner.parse::<i64>().is_ok()) {
        return Some(format!(
            "{path:?}: [{inner}] is not an index, a quoted name, * or a filter"
        ));
    }
    (reference && selects).then(|| format!("{path:?}: a reference path cannot use [{inner}]"))
}

/// (name, minimum arguments, maximum arguments)
const INTRINSICS: &[(&str, usize, usize)] = &[
    ("States.Format", 1, usize::MAX),
    ("States.StringToJson", 1, 1),
    ("States.JsonToString", 1, 1),
    ("States.Array", 0, usize::MAX),
    ("States.ArrayPartition", 2, 2),
    ("States.ArrayContains", 2, 2),
    ("States.ArrayRange", 3, 3),
    ("States.ArrayGetItem", 2, 2),
    ("States.ArrayLength", 1, 1),
    ("States.ArrayUnique", 1, 1),
    ("States.Base64Encode", 1, 1),
    ("States.Base64Decode", 1, 1),
    ("States.Hash", 2, 2),
    ("States.JsonMerge", 3, 3),
    ("States.MathRandom", 2, 3),
    ("States.MathAdd", 2, 2),
    ("States.StringSplit", 2, 2),
    ("States.UUID", 0, 0),
];

/// Checks an intrinsic function call, nested calls included.
pub fn intrinsic_error(call: &str) -> Option<String> {
    let mut p = Intrinsic {
        s: call.trim().as_bytes(),
        i: 0,
    };
    match p.call() {
        Err(e) => Some(e),
        Ok(()) if p.i != p.s.len() => {
            Some(format!("unexpected text after the call at {}", p.i + 1))
        }
        Ok(()) => None,
    }
}

struct Intrinsic<'a> {
    s: &'a [u8],
    i: usize,
}

impl Intrinsic<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn call(&mut self) -> Result<(), String> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'.')
        {
            self.i += 1;
        }
        let name = String::from_utf8_lossy(&self.s[start..self.i]).to_string();
        let Some(&(_, min, max)) = INTRINSICS.iter().find(|(n, _, _)| *n == name) else {
            return Err(format!("unknown intrinsic function {name:?}"));
        };
        if self.s.get(self.i) != Some(&b'(') {
            return Err(format!("{name} needs its arguments in parentheses"));
        }
        self.i += 1;
        let mut args = 0;
        self.ws();
        if self.s.get(self.i) == Some(&b')') {
            self.i += 1;
        } else {
            loop {
                self.ws();
                self.arg()?;
                args += 1;
                self.ws();
                match self.s.get(self.i) {
                    Some(b',') => self.i += 1,
                    Some(b')') => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(format!("{name}: expected ',' or ')' at {}", self.i + 1)),
                }
            }
        }
        if args < min || args > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(format!("{name} takes {want} argument(s), not {args}"));
        }
        Ok(())
    }
    fn arg(&mut self) -> Result<(), String> {
        match self.s.get(self.i) {
            Some(b'\'') => {
                self.i += 1;
                while self.i < self.s.len() && self.s[self.i] != b'\'' {
                    if self.s[self.i] == b'\\' {
                        self.i += 1;
                    }
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err("unterminated string argument".into());
                }
                self.i += 1;
                Ok(())
            }
            Some(b'$') => {
                let start = self.i;
                let mut depth = 0;
                while self.i < self.s.len() {
                    match self.s[self.i] {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b',' | b')' if depth == 0 => break,
                        _ => {}
                    }
                    self.i += 1;
                }
                let path = String::from_utf8_lossy(&self.s[start..self.i])
                    .trim()
                    .to_string();
                jsonpath_error(&path, false).map_or(Ok(()), Err)
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_digit() || b".-eE".contains(&self.s[self.i]))
                {
                    self.i += 1;
                }
                Ok(())
            }
            Some(b'S') => self.call(),
            _ => {
                for lit in ["true", "false", "null"] {
                    if self.s[self.i..].starts_with(lit.as_bytes()) {
                        self.i += lit.len();
                        return Ok(());
                    }
                }
                Err(format!("unexpected argument at {}", self.i + 1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonata_errors_have_positions() {
        assert!(jsonata_error("$states.input.a = 1 and $x").is_none());
        let (pos, msg) = jsonata_error("$states.input.a = = 1").unwrap();
        assert_eq!(pos, 18, "{msg}");
        let (pos, _) = jsonata_error("$count($states.input").unwrap();
        assert_eq!(
            pos, 20,
            "an expression that ends too soon breaks at its end"
        );
    }

    #[test]
    fn jsonpath_paths() {
        for ok in [
            "$",
            "$.a.b[0]",
            "$['a b'].c",
            "$..x",
            "$.a[*].b",
            "$$.Task.Token",
            "$.body.Records[0]",
        ] {
            assert_eq!(jsonpath_error(ok, false), None, "{ok}");
        }
        assert!(
            jsonpath_error("a.b", false)
                .unwrap()
                .contains("must start with $")
        );
        assert!(
            jsonpath_error("$.a[", false)
                .unwrap()
                .contains("never closed")
        );
        assert!(
            jsonpath_error("$.a.", false)
                .unwrap()
                .contains("empty name")
        );
        assert!(
            jsonpath_error("$.a[*]", true)
                .unwrap()
                .contains("reference path")
        );
        assert_eq!(jsonpath_error("$.resizeSmall", true), None);
    }

    #[test]
    fn intrinsics_names_and_arity() {
        assert_eq!(intrinsic_error("States.StringToJson($.body)"), None);
        assert_eq!(
            intrinsic_error("States.Format('Task token => {}', $$.Task.Token)"),
            None
        );
        assert_eq!(
            intrinsic_error("States.Array(States.UUID(), 'a', 3, true)"),
            None
        );
        assert!(
            intrinsic_error("States.StringToJson($.a, $.b)")
                .unwrap()
                .contains("takes 1 argument(s), not 2")
        );
        assert!(
            intrinsic_error("States.MathRandom(1)")
                .unwrap()
                .contains("takes 2 to 3")
        );
        assert!(
            intrinsic_error("States.Nope($.a)")
                .unwrap()
                .contains("unknown intrinsic")
        );
        assert!(
            intrinsic_error("States.Format('x'")
                .unwrap()
                .contains("expected ',' or ')'")
        );
    }
}
