//! Where a JSON pointer into a rendered definition is written in its template: findings point
//! at the template's line and column, not at a pointer into text the user never sees.
//!
//! Templates are JSON with tera's `{{ ... }}` inside strings, so the template text is walked as
//! JSON (strings, objects, arrays, and anything else up to the next `,`, `}` or `]`).

use std::ops::Range;

/// Where the value `pointer` names is written in `text`: the span to point at (its key, for an
/// object member) and the value's own span; or those of the nearest enclosing value that exists.
pub fn locate(text: &str, pointer: &str) -> Option<(Range<usize>, Range<usize>)> {
    let mut value = skip_ws(text, 0)..value_end(text, skip_ws(text, 0))?;
    let mut place = value.clone();
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        let found = match text.as_bytes().get(value.start) {
            Some(b'{') => member(text, value.clone(), &seg),
            Some(b'[') => seg
                .parse()
                .ok()
                .and_then(|i| element(text, value.clone(), i))
                .map(|v| (v.clone(), v)),
            _ => None,
        };
        match found {
            Some((key, v)) => {
                place = key;
                value = v;
            }
            None => break,
        }
    }
    Some((place, value))
}

/// `(key span, value span)` of the member `name` of the object at `obj`.
fn member(text: &str, obj: Range<usize>, name: &str) -> Option<(Range<usize>, Range<usize>)> {
    let want = serde_json::to_string(name).ok()?;
    let mut i = skip_ws(text, obj.start + 1);
    while i < obj.end && text.as_bytes()[i] == b'"' {
        let key_end = string_end(text, i)?;
        let colon = skip_ws(text, key_end);
        let v_start = skip_ws(text, colon + 1);
        let v_end = value_end(text, v_start)?;
        if text[i..key_end] == want {
            return Some((i..key_end, v_start..v_end));
        }
        i = skip_ws(text, v_end);
        if text.as_bytes().get(i) == Some(&b',') {
            i = skip_ws(text, i + 1);
        }
    }
    None
}

fn element(text: &str, arr: Range<usize>, index: usize) -> Option<Range<usize>> {
    let mut i = skip_ws(text, arr.start + 1);
    for n in 0.. {
        if i >= arr.end || text.as_bytes()[i] == b']' {
            return None;
        }
        let end = value_end(text, i)?;
        if n == index {
            return Some(i..end);
        }
        i = skip_ws(text, end);
        if text.as_bytes().get(i) == Some(&b',') {
            i = skip_ws(text, i + 1);
        }
    }
    None
}

fn skip_ws(text: &str, mut i: usize) -> usize {
    while text
        .as_bytes()
        .get(i)
        .is_some_and(|b| b.is_ascii_whitespace())
    {
        i += 1;
    }
    i
}

/// The end (exclusive) of the string that starts at `i`.
fn string_end(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// The end (exclusive) of the value that starts at `i`.
fn value_end(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    match b.get(i)? {
        b'"' => string_end(text, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(text, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') {
                j += 1;
            }
            Some(text[..j].trim_end().len().max(i + 1))
        }
    }
}

/// The byte offset in `text` of the `n`th character of a JSONata expression written as the
/// string at `value` (`"{% ... %}"`).
pub fn in_expression(text: &str, value: Range<usize>, n: usize) -> Option<usize> {
    let raw = text.get(value.clone())?;
    let open = raw.find("{%")? + 2;
    let lead = raw[open..].len() - raw[open..].trim_start().len();
    let body = &raw[open + lead..];
    let offset = body
        .char_indices()
        .nth(n)
        .map(|(b, _)| b)
        .unwrap_or(body.len());
    Some(value.start + open + lead + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = r#"{
  "StartAt": "A",
  "States": {
    "A": {"Type": "Pass", "Next": "B/C"},
    "B/C": {
      "Type": "Task",
      "Retry": [{"ErrorEquals": ["x"]}, {"MaxAttempts": {{ N }}}],
      "Output": "{% $a + = 1 %}",
      "End": true
    }
  }
}"#;

    fn at(r: Range<usize>) -> (usize, usize) {
        crate::error::line_col(T, r.start)
    }

    #[test]
    fn pointers_land_on_the_key_in_the_template() {
        let key = |p: &str| at(locate(T, p).unwrap().0);
        assert_eq!(key("/States/A/Next"), (4, 27));
        assert_eq!(
            key("/States/B~1C/Retry/1/MaxAttempts"),
            (7, 42),
            "arrays, escapes, tera values"
        );
        assert_eq!(
            key("/States/B~1C/Missing"),
            (5, 5),
            "the nearest place that exists"
        );
        assert_eq!(key(""), (1, 1));
        let (_, value) = locate(T, "/States/B~1C/Output").unwrap();
        assert_eq!(
            &T[in_expression(T, value, 3).unwrap()..][..1],
            "+",
            "a character of a JSONata expression"
        );
    }
}
