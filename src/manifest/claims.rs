//! One AWS resource, one declaration: two resources of one kind with the same name (in one
//! manifest, or in two stacks of one env) would both be created against the one real
//! resource, the second silently overwriting the first. Refused at load, naming both.

use super::Stack;
use crate::error::{Error, Result, line_col};
use std::collections::BTreeMap;

/// The AWS name a resource claims, as written after the env's prefix: its `name`, else the
/// name its kind shows (an attachment's policy and role, a target's rule and id). A name that
/// still holds a reference (`${...}`) is only compared within its own stack, where the same
/// text means the same thing; one made from a variable that was not given is not compared.
fn claim(stack: &Stack, id: &str) -> Option<(String, bool)> {
    let d = &stack.resources[id];
    let name = d
        .attrs
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| d.kind.display_name(&d.attrs));
    if name.is_empty() || name.contains("(unset: ") {
        return None;
    }
    let local = name.contains("${");
    Some((name, local))
}

/// `file:line` of a resource's name (or of its table when it has none).
fn place(stack: &Stack, id: &str) -> (std::ops::Range<usize>, String) {
    let spans = stack.spans();
    let span = spans.value_near(&format!("resources.{id}.name"));
    let (line, _) = line_col(&spans.text, span.start);
    (span, format!("{}:{line}", stack.file))
}

/// Refuses two resources claiming one AWS name among `stacks` (one env's), where at least one
/// of the two is in a stack of `selected`.
pub fn check(stacks: &[&Stack], selected: &[String]) -> Result<()> {
    let mut seen: BTreeMap<(&str, String, Option<&str>), (&Stack, &str)> = BTreeMap::new();
    for stack in stacks {
        // in the order they are written, so that the later one is the one pointed at
        let mut ids: Vec<&String> = stack.resources.keys().collect();
        ids.sort_by_key(|id| stack.spans().key_near(&format!("resources.{id}")).start);
        for id in ids {
            let Some((name, local)) = claim(stack, id) else {
                continue;
            };
            let kind = stack.resources[id].kind.name();
            let scope = local.then_some(stack.name.as_str());
            let Some((first, first_id)) = seen.get(&(kind, name.clone(), scope)).copied() else {
                seen.insert((kind, name, scope), (stack, id));
                continue;
            };
            if !selected.contains(&stack.name) && !selected.contains(&first.name) {
                continue;
            }
            let (span, here) = place(stack, id);
            let (_, there) = place(first, first_id);
            let e = Error::user(format!(
                "resource `{id}` of stack `{}` ({here}) and resource `{first_id}` of stack `{}` ({there}) are both {kind} `{name}`: they would be one AWS resource, each overwriting the other",
                stack.name, first.name
            ))
            .help("give each its own name (an AWS name is unique per kind in an account and region, across the stacks of an env)");
            return Err(stack
                .spans()
                .at(e, span, format!("also claimed by `{first_id}`")));
        }
    }
    Ok(())
}
