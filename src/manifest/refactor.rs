//! `[[moved]]` and `[[removed]]`: refactoring a stack without replacing what it holds.
//!
//! A move renames a resource's id (`from` → `to`), or brings it from another stack of the
//! project (`from_stack`): its state record is renamed, nothing in AWS is touched. A removal
//! stops managing a resource: its record leaves state and, unless `destroy = true`, the
//! resource stays in AWS without the tags that made it the stack's. Checked here, as the
//! manifest loads, is what the manifest alone can tell; what state holds is checked when
//! planning.

use super::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moved {
    /// The id it had (in this stack, or in `from_stack`).
    pub from: String,
    /// The id it has now.
    pub to: String,
    /// The stack of the project it was in, when not this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_stack: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removed {
    /// The id it had.
    pub from: String,
    /// Delete it too (a normal removal); by default it is forgotten and left in AWS.
    #[serde(default)]
    pub destroy: bool,
}

impl Stack {
    /// Where the `i`th `[[moved]]` (or `[[removed]]`) entry's `key` is written.
    pub fn entry_at(&self, table: &str, i: usize, key: &str) -> std::ops::Range<usize> {
        self.spans.entry(table, i, key)
    }

    /// The id a chain of moves in this stack ends at (`a → b`, `b → c`: `a` ends at `c`).
    pub fn moved_to(&self, from: &str) -> Option<String> {
        let mut at = self
            .moved
            .iter()
            .find(|m| m.from == from && m.from_stack.is_none())?
            .to
            .clone();
        // the load checks refuse cycles: this ends
        while let Some(next) = self
            .moved
            .iter()
            .find(|m| m.from == at && m.from_stack.is_none())
        {
            at = next.to.clone();
        }
        Some(at)
    }

    /// How a `[[removed]]` entry names `id`, if one does.
    pub fn removal(&self, id: &str) -> Option<&Removed> {
        self.removed.iter().find(|r| r.from == id)
    }
}

/// The load checks: every move ends at a declared resource, leaves no declared id behind,
/// never two to one id and never in a circle; a removal names no declared resource and no
/// moved one. Each refusal names both places where there are two.
pub(super) fn check(
    spans: &Spans,
    moved: &[Moved],
    removed: &[Removed],
    declared: &BTreeMap<String, Decl>,
) -> Result<()> {
    for (i, m) in moved.iter().enumerate() {
        let here =
            |e: Error, label: &str| spans.at(e, spans.entry("moved", i, "to"), label.to_string());
        if m.is_local() && m.from == m.to {
            return Err(here(
                Error::user(format!("`[[moved]]` from `{}` to itself", m.from)),
                "the same id",
            ));
        }
        if m.is_local() && declared.contains_key(&m.from) {
            let e = Error::user(format!(
                "`[[moved]]` from `{}`, which is still declared: a move leaves its old id behind",
                m.from
            ))
            .help(format!(
                "rename `[resources.{}]` to `[resources.{}]` (or drop this entry)",
                m.from, m.to
            ));
            let at = spans.entry("moved", i, "from");
            return Err(spans.at(e, at, "still a resource of this stack"));
        }
        let onward = moved.iter().any(|n| n.is_local() && n.from == m.to);
        if !declared.contains_key(&m.to) && !onward {
            let e = Error::user(format!(
                "`[[moved]]` to `{}`, which this stack does not declare",
                m.to
            ))
            .suggest(&m.to, declared.keys().map(String::as_str));
            return Err(here(e, "no such resource"));
        }
        if let Some(j) = moved
            .iter()
            .position(|n| n.to == m.to && !std::ptr::eq(n, m))
        {
            let e = Error::user(format!(
                "two `[[moved]]` entries end at `{}` (lines {} and {}): one id holds one resource",
                m.to,
                spans.entry_line("moved", i, "to"),
                spans.entry_line("moved", j, "to")
            ));
            return Err(here(e, "a second move to it"));
        }
    }
    check_circles(spans, moved)?;
    check_removals(spans, moved, removed, declared)
}

/// No chain of moves comes back to where it started.
fn check_circles(spans: &Spans, moved: &[Moved]) -> Result<()> {
    let mut all = moved.iter().enumerate();
    if let Some((i, m)) = all.find(|(_, m)| going_round(moved, &m.from)) {
        let e = Error::user(format!(
            "the `[[moved]]` entries from `{}` go round in a circle",
            m.from
        ));
        return Err(spans.at(e, spans.entry("moved", i, "to"), "part of the circle"));
    }
    Ok(())
}

/// A removal names no declared resource and no moved one.
fn check_removals(
    spans: &Spans,
    moved: &[Moved],
    removed: &[Removed],
    declared: &BTreeMap<String, Decl>,
) -> Result<()> {
    for (i, r) in removed.iter().enumerate() {
        let here = |e: Error, label: &str| {
            spans.at(e, spans.entry("removed", i, "from"), label.to_string())
        };
        if declared.contains_key(&r.from) {
            let e = Error::user(format!(
                "`[[removed]]` names `{}`, which is still declared",
                r.from
            ))
            .help(format!(
                "delete `[resources.{}]` to stop managing it, or drop this entry",
                r.from
            ));
            return Err(here(e, "still a resource of this stack"));
        }
        if let Some(j) = moved.iter().position(|m| m.is_local() && m.from == r.from) {
            let e = Error::user(format!(
                "`{}` is both moved (line {}) and removed (line {})",
                r.from,
                spans.entry_line("moved", j, "from"),
                spans.entry_line("removed", i, "from")
            ));
            return Err(here(e, "removed here"));
        }
    }
    Ok(())
}

impl Spans {
    /// Where the `i`th entry of an array of tables (`[[moved]]`) has `key`.
    fn entry(&self, table: &str, i: usize, key: &str) -> std::ops::Range<usize> {
        self.value_near(&format!("{table}[{i}].{key}"))
    }

    /// Its 1-based line.
    fn entry_line(&self, table: &str, i: usize, key: &str) -> usize {
        let at = self.entry(table, i, key).start;
        self.text[..at.min(self.text.len())].matches('\n').count() + 1
    }
}

impl Moved {
    /// A move within the stack (not from another one).
    fn is_local(&self) -> bool {
        self.from_stack.is_none()
    }
}

/// Whether following the moves from `from` comes back to it.
fn going_round(moved: &[Moved], from: &str) -> bool {
    let mut at = from.to_string();
    for _ in 0..=moved.len() {
        match moved
            .iter()
            .find(|m| m.from == at && m.from_stack.is_none())
        {
            Some(m) if m.to == from => return true,
            Some(m) => at = m.to.clone(),
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &str) -> Result<Stack> {
        let src = format!("[resources.c]\nkind = \"sns_topic\"\nname = \"c\"\n{extra}");
        let inputs = VarInputs::default();
        let file = "stacks/s/stack.toml";
        Stack::parse(
            "s",
            file,
            &src,
            &inputs,
            DEFAULT_ENV,
            Path::new("/nonexistent"),
        )
    }

    #[test]
    fn a_chain_of_moves_ends_where_it_ends_and_a_circle_is_refused() {
        let s = load("[[moved]]\nfrom = \"a\"\nto = \"b\"\n[[moved]]\nfrom = \"b\"\nto = \"c\"\n")
            .unwrap();
        assert_eq!(s.moved_to("a").as_deref(), Some("c"));
        assert_eq!(s.moved_to("b").as_deref(), Some("c"));
        let e = load("[[moved]]\nfrom = \"x\"\nto = \"y\"\n[[moved]]\nfrom = \"y\"\nto = \"x\"\n")
            .unwrap_err();
        assert!(e.message.contains("go round in a circle"), "{}", e.message);
    }
}
