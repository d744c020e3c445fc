//! What `[[moved]]` does to recorded state before anything is planned: each record renamed (or
//! brought over from another stack of the project) under the locks, so that the plan compares
//! the resource under its new id and a pure rename changes nothing in AWS. And `--target` /
//! `--exclude`: the part of a plan a run acts on.

use crate::error::{Error, Result};
use crate::manifest::Stack;
use crate::state::StackState;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A record moved: from an id (of another stack, for `from_stack`) to an id of this one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Move {
    pub from: String,
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_stack: Option<String>,
}

impl Move {
    /// `state_machine`, or `orders.queue` for another stack's.
    pub fn source(&self) -> String {
        match &self.from_stack {
            Some(s) => format!("{s}.{}", self.from),
            None => self.from.clone(),
        }
    }
}

/// Carries out `stack`'s moves on the states read under the locks: `state` is the stack's,
/// `others` those of the stacks it moves records from. Returns the moves made and a note for
/// each entry with nothing to move. A move onto an id that state already records is refused,
/// naming the entry and the record.
pub fn apply_moves(
    stack: &Stack,
    state: &mut StackState,
    others: &mut BTreeMap<String, StackState>,
) -> Result<(Vec<Move>, Vec<String>)> {
    let (mut done, mut notes) = (Vec::new(), Vec::new());
    for (i, m) in stack.moved.iter().enumerate() {
        let (to, source) = match &m.from_stack {
            // a chain is carried out from its start
            None if stack
                .moved
                .iter()
                .any(|n| n.to == m.from && n.from_stack.is_none()) =>
            {
                continue;
            }
            None => (stack.moved_to(&m.from).unwrap_or(m.to.clone()), None),
            Some(s) => (
                stack.moved_to(&m.to).unwrap_or(m.to.clone()),
                Some(s.clone()),
            ),
        };
        let from_state = match &source {
            None => &mut *state,
            Some(s) => others
                .get_mut(s)
                .ok_or_else(|| Error::internal(format!("the state of stack `{s}` is not read")))?,
        };
        let Some(entry) = from_state.resources.remove(&m.from) else {
            let whose = source.as_deref().unwrap_or(&stack.name);
            notes.push(format!(
                "`[[moved]]` from `{}`: stack `{whose}` records no `{}` (already moved, or never deployed): nothing to move",
                m.from, m.from
            ));
            continue;
        };
        rename_dependencies(from_state, &m.from, &to);
        if state.resources.contains_key(&to) {
            let e = Error::user(format!(
                "`[[moved]]` from `{}` to `{to}`: state already records a `{to}`; nothing was changed",
                m.from
            ))
            .help(format!(
                "one of them is not meant: `deploy state rm {} {to}` forgets the recorded `{to}` (AWS keeps it), or drop the entry",
                stack.name
            ));
            let at = stack.entry_at("moved", i, "to");
            return Err(stack.spans().at(e, at, "recorded already"));
        }
        state.resources.insert(to.clone(), entry);
        done.push(Move {
            from: m.from.clone(),
            to,
            from_stack: source,
        });
    }
    Ok((done, notes))
}

/// What the records that depended on `from` now depend on: `to`.
fn rename_dependencies(state: &mut StackState, from: &str, to: &str) {
    for e in state.resources.values_mut() {
        if e.depends_on.remove(from) {
            e.depends_on.insert(to.to_string());
        }
    }
}

/// The part of a stack a run acts on: `--target` (each named resource and what it depends
/// on) and `--exclude` (each named resource and what depends on it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Part {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
}

impl Part {
    pub fn whole(&self) -> bool {
        self.targets.is_empty() && self.excludes.is_empty()
    }

    /// The ids this part keeps of `ids`, given who depends on whom: `deps(id)` what `id`
    /// depends on. `down`: for a destroy, a target takes what depends on it (it cannot go
    /// first) and an exclusion keeps what it depends on.
    pub fn keep<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a String>,
        deps: &dyn Fn(&str) -> BTreeSet<String>,
        down: bool,
    ) -> BTreeSet<String> {
        let ids: BTreeSet<String> = ids.into_iter().cloned().collect();
        let dependents = |id: &str| -> BTreeSet<String> {
            ids.iter()
                .filter(|o| deps(o).contains(id))
                .cloned()
                .collect()
        };
        let closure = |start: &[String], next: &dyn Fn(&str) -> BTreeSet<String>| {
            let mut seen: BTreeSet<String> = BTreeSet::new();
            let mut todo: Vec<String> = start.to_vec();
            while let Some(id) = todo.pop() {
                if seen.insert(id.clone()) {
                    todo.extend(next(&id));
                }
            }
            seen
        };
        let (toward_target, toward_exclude): (
            &dyn Fn(&str) -> BTreeSet<String>,
            &dyn Fn(&str) -> BTreeSet<String>,
        ) = match down {
            false => (deps, &dependents),
            true => (&dependents, deps),
        };
        let mut keep = match self.targets.is_empty() {
            true => ids.clone(),
            false => closure(&self.targets, toward_target),
        };
        for id in closure(&self.excludes, toward_exclude) {
            keep.remove(&id);
        }
        keep.retain(|id| ids.contains(id));
        keep
    }

    /// Every id it names must be one of `known` (declared or recorded) in `place` (`stack
    /// `orders``).
    pub fn check(&self, place: &str, known: &BTreeSet<String>) -> Result<()> {
        for id in self.targets.iter().chain(&self.excludes) {
            if !known.contains(id) {
                return Err(Error::user(format!(
                    "no resource `{id}` to target or exclude in {place}; nothing was changed"
                ))
                .suggest(id, known.iter().map(String::as_str))
                .help(format!(
                    "its resources: {}",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> BTreeMap<String, BTreeSet<String>> {
        // machine → role → policy; rule → machine; target → rule, machine
        let d = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>();
        BTreeMap::from([
            ("policy".to_string(), d(&[])),
            ("role".to_string(), d(&["policy"])),
            ("machine".to_string(), d(&["role"])),
            ("rule".to_string(), d(&[])),
            ("target".to_string(), d(&["rule", "machine"])),
        ])
    }

    fn keep(p: Part, down: bool) -> Vec<String> {
        let g = graph();
        let deps = |id: &str| g.get(id).cloned().unwrap_or_default();
        p.keep(g.keys(), &deps, down).into_iter().collect()
    }

    #[test]
    fn a_target_takes_what_it_depends_on_and_an_exclusion_what_depends_on_it() {
        let t = |ids: &[&str]| ids.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let target = Part {
            targets: t(&["machine"]),
            excludes: vec![],
        };
        assert_eq!(
            keep(target.clone(), false),
            t(&["machine", "policy", "role"])
        );
        // destroying a target takes what depends on it first
        assert_eq!(keep(target, true), t(&["machine", "target"]));
        let exclude = Part {
            targets: vec![],
            excludes: t(&["rule"]),
        };
        assert_eq!(
            keep(exclude.clone(), false),
            t(&["machine", "policy", "role"])
        );
        // a destroy keeps what an excluded resource needs (here nothing)
        assert_eq!(
            keep(exclude, true),
            t(&["machine", "policy", "role", "target"])
        );
        let exclude = Part {
            targets: vec![],
            excludes: t(&["machine"]),
        };
        assert_eq!(keep(exclude, true), t(&["rule", "target"]));
        assert_eq!(keep(Part::default(), false).len(), 5);
    }
}
