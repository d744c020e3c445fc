//! Where each key and value of a manifest is, from TOML's own spans, so that an error points at
//! the mistake itself (file:line:col, and a snippet with a caret), not at the table around it.
//!
//! Places are named by paths as serde_path_to_error writes them: `resources.role.service`,
//! `resources.policy.statement[0].Action`.

use crate::error::Error;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub struct Spans {
    pub path: String,
    pub text: Arc<str>,
    keys: HashMap<String, Range<usize>>,
    values: HashMap<String, Range<usize>>,
}

impl Spans {
    pub fn new(path: &str, text: &str) -> Spans {
        let mut s = Spans {
            path: path.to_string(),
            text: Arc::from(text),
            keys: HashMap::new(),
            values: HashMap::new(),
        };
        if let Ok(doc) = DeTable::parse(text) {
            s.table("", doc.get_ref());
        }
        s
    }

    fn table(&mut self, prefix: &str, t: &DeTable) {
        for (k, v) in t {
            let p = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            self.keys.insert(p.clone(), k.span());
            self.value(&p, v);
        }
    }

    fn value(&mut self, p: &str, v: &Spanned<DeValue>) {
        self.values.insert(p.to_string(), v.span());
        match v.get_ref() {
            DeValue::Table(t) => self.table(p, t),
            DeValue::Array(a) => {
                for (i, e) in a.iter().enumerate() {
                    self.value(&format!("{p}[{i}]"), e);
                }
            }
            _ => {}
        }
    }

    /// The value at `path`, else its key, else the nearest enclosing place that exists.
    pub fn value_near(&self, path: &str) -> Range<usize> {
        let mut p = path;
        loop {
            if let Some(r) = self
                .values
                .get(p)
                .filter(|r| !self.keys.contains_key(p) || !is_table(&self.text[(*r).clone()]))
            {
                return r.clone();
            }
            if let Some(r) = self.keys.get(p) {
                return r.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return 0..0,
            }
        }
    }

    /// The key at `path`, else the nearest enclosing key that exists.
    pub fn key_near(&self, path: &str) -> Range<usize> {
        let mut p = path;
        loop {
            if let Some(r) = self.keys.get(p) {
                return r.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return 0..0,
            }
        }
    }

    /// Where `needle` is written inside a value under `prefix` (the most specific value that
    /// holds it): a reference such as `${polcy.arn}` inside an attribute.
    pub fn find(&self, prefix: &str, needle: &str) -> Option<Range<usize>> {
        let under = |p: &str| {
            p == prefix
                || p.starts_with(&format!("{prefix}."))
                || p.starts_with(&format!("{prefix}["))
        };
        self.values
            .iter()
            .filter(|(p, _)| under(p))
            .filter_map(|(_, r)| {
                self.text
                    .get(r.clone())
                    .and_then(|t| t.find(needle))
                    .map(|at| (r.len(), r.start + at))
            })
            .min()
            .map(|(_, start)| start..start + needle.len())
    }

    /// `e` pointing at `span` of this file, with `label` under the caret.
    pub fn at(&self, e: Error, span: Range<usize>, label: impl Into<String>) -> Error {
        e.source(&self.path, &self.text, span, label)
    }
}

/// A table's span covers its whole body; a caret belongs on its header instead.
fn is_table(text: &str) -> bool {
    text.contains('\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "[resources.role]\nkind = \"iam_role\"\nservce = \"states\"\n\n[[resources.p.statement]]\nAction = \"${polcy.arn}\"\n";

    #[test]
    fn keys_values_and_references_are_found_where_they_are_written() {
        let s = Spans::new("f.toml", SRC);
        let at = |r: Range<usize>| crate::error::line_col(SRC, r.start);
        assert_eq!(at(s.key_near("resources.role.servce")), (3, 1));
        assert_eq!(at(s.value_near("resources.role.kind")), (2, 8));
        assert_eq!(
            at(s.value_near("resources.role.kind.deeper")),
            (2, 8),
            "nearest existing place"
        );
        assert_eq!(at(s.value_near("resources.p.statement[0].Action")), (6, 10));
        let r = s.find("resources.p", "polcy").unwrap();
        assert_eq!((&SRC[r.clone()], at(r)), ("polcy", (6, 13)));
        assert_eq!(
            at(s.key_near("resources.role.missing")),
            (1, 12),
            "the table's own key in its header"
        );
    }
}
