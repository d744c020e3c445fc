//! The planner: desired attributes (manifest, references filled from recorded outputs) against
//! recorded state and what AWS has now. The plan is data: rendered as text for people and as
//! JSON for CI. Destroy is a plan mode, not a separate code path.

use crate::aws::Ctx;
use crate::error::{Class, Error, Result};
use crate::manifest::refs::MapScope;
use crate::manifest::{Known, Stack, Warnings};
use crate::resources;
use crate::state::{StackState, Status};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
    /// Exists already, found by its name and proven ours (state was lost, or a create's
    /// answer was): recorded, and updated where it differs.
    Adopt,
    /// `[[removed]]` with `destroy = false`: leaves state, stays in AWS without deploy's tags.
    Forget,
}

impl Action {
    /// What a recorded resource needs for these changes: nothing, an update in place, or a
    /// replacement when one of them is to an attribute that cannot change in place.
    pub fn for_changes(changes: &[AttrChange]) -> Action {
        if changes.is_empty() {
            Action::NoOp
        } else if changes.iter().any(|c| c.forces_replacement) {
            Action::Replace
        } else {
            Action::Update
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Adopt => "<=",
            Action::Forget => "=>",
        }
    }
    pub fn verb(self) -> &'static str {
        match self {
            Action::NoOp => "unchanged",
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Adopt => "adopt",
            Action::Forget => "forget",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AttrChange {
    pub attr: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub forces_replacement: bool,
    /// The new value depends on outputs not known until apply (re-checked then).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub known_after_apply: bool,
    /// AWS has a value other than the one deploy recorded: it was changed outside deploy.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub changed_outside: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<AttrChange>,
    /// What a create will make (secrets masked), shown attribute by attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Value>,
    /// Live attributes read while planning (the starting point of an update).
    #[serde(skip)]
    pub live: Option<Value>,
    /// The outputs of a resource to adopt, as found.
    #[serde(skip)]
    pub found: Option<resources::Outputs>,
    /// A definition change's effect on each scenario of the stack: transitions per execution
    /// before and after (what an execution on that path costs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<ScenarioTransitions>,
    /// An alias's rollout to a new version: its steps and the alarms it watches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// `[[moved]]`: the id (`stack.id` for another stack's) its record had before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScenarioTransitions {
    pub scenario: String,
    pub before: u64,
    pub after: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub stack: String,
    pub env: String,
    pub destroy: bool,
    pub steps: Vec<Step>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Warnings,
    /// `--target` / `--exclude`: the part acted on, and the changes left out of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial: Option<crate::refactor::Part>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub adopt: usize,
    pub forget: usize,
    pub moved: usize,
    pub unchanged: usize,
}

impl Plan {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.steps {
            c.moved += usize::from(s.moved_from.is_some());
            match s.action {
                Action::NoOp if s.moved_from.is_some() => {}
                Action::NoOp => c.unchanged += 1,
                Action::Create => c.create += 1,
                Action::Update => c.update += 1,
                Action::Replace => c.replace += 1,
                Action::Delete => c.delete += 1,
                Action::Adopt => c.adopt += 1,
                Action::Forget => c.forget += 1,
            }
        }
        c
    }

    /// Whether applying it changes anything: AWS, or state alone (a move).
    pub fn has_changes(&self) -> bool {
        self.steps
            .iter()
            .any(|s| s.action != Action::NoOp || s.moved_from.is_some())
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Keeps the part `--target` / `--exclude` name (`deps`: what an id depends on; `down`:
    /// for a destroy) and lists the changes it leaves out. A stack that holds none of the
    /// targets is left out whole.
    pub fn restrict(
        &mut self,
        part: &crate::refactor::Part,
        deps: &dyn Fn(&str) -> std::collections::BTreeSet<String>,
        down: bool,
    ) {
        if part.whole() {
            return;
        }
        let here = |ids: &[String]| -> Vec<String> {
            ids.iter()
                .filter(|id| self.step(id).is_some())
                .cloned()
                .collect()
        };
        let local = crate::refactor::Part {
            targets: here(&part.targets),
            excludes: here(&part.excludes),
        };
        let keep = match !part.targets.is_empty() && local.targets.is_empty() {
            true => Default::default(),
            false => local.keep(self.steps.iter().map(|s| &s.id), deps, down),
        };
        let (kept, out): (Vec<Step>, Vec<Step>) = std::mem::take(&mut self.steps)
            .into_iter()
            .partition(|s| keep.contains(&s.id));
        self.steps = kept;
        self.left_out = out
            .iter()
            .filter(|s| s.action != Action::NoOp || s.moved_from.is_some())
            .map(|s| format!("{} {}.{}", s.action.verb(), s.kind, s.id))
            .collect();
        self.partial = Some(part.clone());
    }
}

/// Attribute-level differences, `want` against `have`.
pub fn diff(want: &Value, have: &Value, replace_on: &[&str]) -> Vec<AttrChange> {
    let empty = serde_json::Map::new();
    let w = want.as_object().unwrap_or(&empty);
    let h = have.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = w.keys().chain(h.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| w.get(*k) != h.get(*k))
        .map(|k| AttrChange {
            attr: k.clone(),
            old: h.get(k).cloned(),
            new: w.get(k).cloned(),
            forces_replacement: replace_on.contains(&k.as_str()),
            known_after_apply: w.get(k.as_str()).is_some_and(|v| {
                v.to_string()
                    .contains(crate::manifest::refs::UNKNOWN_PREFIX)
            }),
            changed_outside: false,
        })
        .collect()
}

fn outputs_of(state: &StackState) -> BTreeMap<String, BTreeMap<String, Value>> {
    state
        .resources
        .iter()
        .filter(|(_, e)| e.status == Status::Created)
        .map(|(id, e)| (id.clone(), e.outputs.clone()))
        .collect()
}

/// A live resource with the expected name that this stack and env cannot prove its own.
#[derive(Debug, Clone, Serialize)]
pub struct Foreign {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub why: String,
}

/// What was found live for the declared resources that state does not record as created.
#[derive(Debug, Default)]
pub struct Found {
    /// id -> (live attributes, outputs) of the ones proven ours.
    pub ours: BTreeMap<String, (Value, resources::Outputs)>,
    pub foreign: Vec<Foreign>,
}

/// Whether a live resource's deploy tags name another stack or env.
pub fn tags_name_another(live: &Value, stack: &Stack) -> bool {
    let tags = &live["tags"];
    let other = |k: &str, ours: &str| tags.get(k).is_some_and(|v| v != &Value::from(ours));
    other("deploy:stack", &stack.name) || other("deploy:env", &stack.env)
}

/// Whether `live` (found by name) is this stack's and env's own, by the kind's rule.
fn ownership(
    stack: &Stack,
    id: &str,
    live: &Value,
    ours: &dyn Fn(&str) -> bool,
) -> std::result::Result<(), String> {
    let decl = &stack.resources[id];
    match decl.kind.owner() {
        resources::Owner::Tags => tagged_ours(&live["tags"], stack),
        resources::Owner::Description => {
            let desc = live["description"].as_str().unwrap_or_default();
            if desc.contains(&resources::owner_marker(&stack.name, &stack.env)) {
                Ok(())
            } else {
                Err(format!(
                    "its description {desc:?} does not carry this stack's and env's marker"
                ))
            }
        }
        resources::Owner::Parents => parents_ours(decl, ours),
        resources::Owner::Unprovable => Err(format!(
            "a {} carries neither tags nor a description to prove it",
            decl.kind.name()
        )),
    }
}

/// Its `deploy:stack` and `deploy:env` tags name this stack and env.
fn tagged_ours(tags: &Value, stack: &Stack) -> std::result::Result<(), String> {
    let (want_stack, want_env) = (
        Value::from(stack.name.as_str()),
        Value::from(stack.env.as_str()),
    );
    if tags["deploy:stack"] == want_stack && tags["deploy:env"] == want_env {
        return Ok(());
    }
    let said = |k: &str| {
        tags[k]
            .as_str()
            .map(|v| format!("{k}={v}"))
            .unwrap_or_else(|| format!("no {k} tag"))
    };
    Err(format!(
        "its tags say {}, {}",
        said("deploy:stack"),
        said("deploy:env")
    ))
}

/// It depends on something of this stack, and everything it depends on is ours.
fn parents_ours(
    decl: &crate::manifest::Decl,
    ours: &dyn Fn(&str) -> bool,
) -> std::result::Result<(), String> {
    let not: Vec<&String> = decl.deps.iter().filter(|d| !ours(d)).collect();
    match (decl.deps.is_empty(), not.is_empty()) {
        (false, true) => Ok(()),
        (true, _) => Err(format!(
            "a {} carries no tags and depends on nothing of this stack",
            decl.kind.name()
        )),
        (false, false) => Err(format!(
            "it depends on {} that {} not this stack's",
            not.iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if not.len() == 1 { "is" } else { "are" }
        )),
    }
}

/// A resource looked for: its id, desired attributes, and what was found (if anything).
type Looked = (String, Value, Option<(Value, resources::Outputs)>);

/// The reads that look for a level's resources that state does not record as created (not
/// those whose names wait on a parent that does not exist).
fn unrecorded_reads<'a>(
    stack: &'a Stack,
    state: &StackState,
    ctx: &'a Ctx,
    scope: &crate::manifest::refs::MapScope,
    level: Vec<String>,
) -> Result<Vec<impl std::future::Future<Output = Result<Looked>> + 'a>> {
    let mut reads = Vec::new();
    for id in level {
        if state
            .resources
            .get(&id)
            .is_some_and(|e| e.status == Status::Created)
        {
            continue;
        }
        let (desired, _) = stack.resolve(&id, scope)?;
        if desired
            .to_string()
            .contains(crate::manifest::refs::UNKNOWN_PREFIX)
        {
            continue; // a parent does not exist: neither does this
        }
        let decl = &stack.resources[&id];
        reads.push(async move {
            decl.kind
                .read(ctx, &desired, &resources::Outputs::new())
                .await
                .map(|r| (id, desired, r))
        });
    }
    Ok(reads)
}

/// Looks for the declared resources that state does not record as created, by their expected
/// names, in dependency order (a child is looked for only once its parents are found), and
/// sorts what exists into ours and foreign.
pub async fn discover(stack: &Stack, state: &StackState, ctx: &Ctx) -> Result<Found> {
    let mut outputs = outputs_of(state);
    let mut found = Found::default();
    // looked for and not there, or a child of one (which cannot be there either: deploy creates
    // parents first and deletes them last): not asked about
    let mut missing = std::collections::BTreeSet::new();
    // round by round of the graph: the resources of one round are looked for together
    for level in stack.graph.levels() {
        let (absent, level): (Vec<String>, Vec<String>) = level
            .into_iter()
            .partition(|id| stack.resources[id].deps.iter().any(|d| missing.contains(d)));
        missing.extend(absent);
        let scope = stack.scope(&outputs, Some(ctx.target()));
        let reads = unrecorded_reads(stack, state, ctx, &scope, level)?;
        for read in futures::future::join_all(reads).await {
            let (id, desired, live) = read?;
            let Some((live, outs)) = live else {
                missing.insert(id);
                continue;
            };
            let decl = &stack.resources[&id];
            let resume = state
                .resources
                .get(&id)
                .is_some_and(|e| e.status == Status::Pending);
            let is_ours = |d: &str| {
                outputs.contains_key(d)
                    && (state.resources.contains_key(d) || found.ours.contains_key(d))
            };
            match ownership(stack, &id, &live, &is_ours) {
                Ok(()) => {}
                // Our own interrupted create (state says an earlier run began it), unless its
                // tags name another stack or env.
                Err(_) if resume && !tags_name_another(&live, stack) => {}
                Err(why) => {
                    found.foreign.push(Foreign {
                        id: id.clone(),
                        kind: decl.kind.name().into(),
                        name: decl.kind.display_name(&desired),
                        why,
                    });
                    continue;
                }
            }
            outputs.insert(id.clone(), outs.clone());
            found.ours.insert(id, (live, outs));
        }
    }
    Ok(found)
}

/// The error that stops an `up` before any change when a declared resource exists and is not
/// ours.
pub fn refuse(stack: &Stack, foreign: &[Foreign]) -> crate::error::Error {
    let list: Vec<String> = foreign
        .iter()
        .map(|f| {
            format!(
                "  {}.{} ({}): exists, and is not this stack's: {}",
                f.kind, f.id, f.name, f.why
            )
        })
        .collect();
    crate::error::Error::user(format!(
        "stack `{}` (env `{}`): {} declared resource(s) already exist and belong to someone else; nothing was changed:\n{}",
        stack.name,
        stack.env,
        foreign.len(),
        list.join("\n")
    ))
    .help(format!(
        "rename them in the manifest, deploy into another env (--env NAME), or take one over deliberately: deploy import {} {} --env {}",
        stack.name, foreign[0].id, stack.env
    ))
}

/// What `up` would do.
pub async fn plan_up(stack: &Stack, state: &StackState, ctx: &Ctx) -> Result<Plan> {
    let batched = stack.resources.len() >= resources::shared::BATCH_FROM;
    resources::shared::reading(batched, plan_reads(stack, state, ctx)).await
}

/// Every recorded resource that is still declared, read live, concurrently.
async fn read_recorded(stack: &Stack, state: &StackState, ctx: &Ctx) -> Result<Live> {
    let reads = stack.graph.order().into_iter().filter_map(|id| {
        let e = state.resources.get(&id)?;
        let decl = &stack.resources[&id];
        (e.status == Status::Created && e.kind == decl.kind.name()).then(|| {
            let (attrs, known) = (e.attrs.clone(), e.outputs.clone());
            async move { (id, decl.kind.read(ctx, &attrs, &known).await) }
        })
    });
    let mut live = BTreeMap::new();
    for (id, r) in futures::future::join_all(reads).await {
        live.insert(id, r?);
    }
    Ok(live)
}

/// What was read live, per resource id (`None`: recorded but not found).
type Live = BTreeMap<String, Option<(Value, resources::Outputs)>>;

async fn plan_reads(stack: &Stack, state: &StackState, ctx: &Ctx) -> Result<Plan> {
    let mut live = read_recorded(stack, state, ctx).await?;
    let mut found = discover(stack, state, ctx).await?;
    if !found.foreign.is_empty() {
        return Err(refuse(stack, &found.foreign));
    }
    // What was found is known now: its outputs fill the references of what depends on it.
    let mut known = outputs_of(state);
    let found_outputs = found
        .ours
        .iter()
        .map(|(id, (_, o))| (id.clone(), o.clone()));
    known.extend(found_outputs);
    let target = ctx.target();
    let mut scope = stack.scope(&known, Some(target));
    let ahead = stack.known_before(|kind, name| kind.arn_of(ctx, name), target);
    let mut steps: Vec<Step> = Vec::new();
    let mut warnings = Vec::new();
    for id in stack.graph.order() {
        forget_changing_outputs(stack, steps.last(), &mut scope);
        let decl = &stack.resources[&id];
        let (desired, w) = desired(stack, &id, &scope, &ahead, ctx)?;
        warnings.extend(w);
        let shown = crate::secrets::mask(&desired, decl.kind.sensitive(), &stack.secrets);
        let mut step = new_step(&id, decl, &desired, &shown);
        let recorded = state.resources.get(&id);
        let unrecorded = !recorded.is_some_and(|e| e.status == Status::Created);
        if let (true, Some(it)) = (unrecorded, found.ours.remove(&id)) {
            adopt(&mut step, recorded.is_some(), it, &desired, decl);
        } else if let Some(e) = recorded {
            compare(&mut step, e, live.remove(&id).flatten(), &desired, decl);
        }
        mask_changes(&mut step.changes, decl.kind.sensitive(), &stack.secrets);
        if step.action == Action::Create {
            let masked = crate::secrets::mask(&desired, decl.kind.sensitive(), &stack.secrets);
            step.attributes = Some(masked);
        }
        steps.push(step);
    }
    // Recorded resources no longer declared are deleted, dependents first.
    let orphans = removed_order(state, |id| !stack.resources.contains_key(id));
    steps.extend(
        orphans
            .iter()
            .map(|id| orphan_step(stack, id, &state.resources[id])),
    );
    Ok(Plan {
        stack: stack.name.clone(),
        env: stack.env.clone(),
        destroy: false,
        steps,
        warnings,
        partial: None,
        left_out: vec![],
    })
}

/// What an update of an earlier resource changes is not known before it runs: its changing
/// outputs (a state machine's newest version) leave the scope.
fn forget_changing_outputs(stack: &Stack, prev: Option<&Step>, scope: &mut MapScope) {
    let Some(prev) = prev.filter(|s| matches!(s.action, Action::Update | Action::Replace)) else {
        return;
    };
    let changing = stack.resources[&prev.id].kind.changing_outputs();
    if let Some(o) = scope.outputs.get_mut(&prev.id) {
        o.retain(|k, _| !changing.contains(&k.as_str()));
    }
}

/// A step that adopts what was found, ours but not recorded (`pending`: an interrupted create).
fn adopt(
    step: &mut Step,
    pending: bool,
    (have, outs): (Value, resources::Outputs),
    desired: &Value,
    decl: &crate::manifest::Decl,
) {
    step.action = Action::Adopt;
    step.reason = Some(match pending {
        true => "an earlier run was interrupted while creating it; it exists and is ours".into(),
        false => "exists already, not recorded in state, and is ours (found by name, proven by its tags or parents)".into(),
    });
    step.changes = diff(desired, &have, decl.kind.replace_on());
    step.live = Some(have);
    step.found = Some(outs);
}

/// What `id` is to be: resolved against what is known, and for a kind whose references only
/// name (an IAM policy) against what is known beforehand, as `up` makes it.
fn desired(
    stack: &Stack,
    id: &str,
    scope: &MapScope,
    ahead: &Known,
    ctx: &Ctx,
) -> Result<(Value, Warnings)> {
    match stack.resources[id].kind.names_only() {
        true => {
            let outputs = |dep: &str| scope.outputs.get(dep).cloned();
            stack.resolve(id, &stack.scope_ahead(id, outputs, ahead, ctx.target()))
        }
        false => stack.resolve(id, scope),
    }
}

/// A step that creates `id`, until found otherwise.
fn new_step(id: &str, decl: &crate::manifest::Decl, desired: &Value, shown: &Value) -> Step {
    let alias = decl.kind.name() == "sfn_state_machine_alias";
    let rollout = serde_json::from_value::<resources::sfn_alias::Attrs>(desired.clone())
        .ok()
        .filter(|_| alias)
        .map(|a| a.plan.describe());
    Step {
        id: id.to_string(),
        kind: decl.kind.name().into(),
        name: decl.kind.display_name(shown),
        action: Action::Create,
        reason: None,
        changes: vec![],
        attributes: None,
        live: None,
        found: None,
        transitions: vec![],
        rollout,
        moved_from: None,
    }
}

/// A recorded resource's step: what state says of it (another kind, a create that was
/// interrupted, recorded), and for one recorded, its differences from what AWS has.
fn compare(
    step: &mut Step,
    e: &crate::state::Entry,
    live: Option<(Value, resources::Outputs)>,
    desired: &Value,
    decl: &crate::manifest::Decl,
) {
    if e.kind != decl.kind.name() {
        step.action = Action::Replace;
        step.reason = Some(format!("kind changed from {}", e.kind));
        return;
    }
    if e.status == Status::Pending {
        step.reason =
            Some("an earlier run was interrupted while creating it; adopts it if it exists".into());
        return;
    }
    let Some((have, _)) = live else {
        step.reason = Some("recorded but not found (deleted outside deploy?)".into());
        return;
    };
    // secrets are recorded sealed: the same clear value is no change
    let have = crate::secrets::unseal_matching(desired, &have);
    step.changes = diff(desired, &have, decl.kind.replace_on());
    // what AWS has and deploy did not record was changed by someone else
    let recorded = crate::secrets::unseal_matching(desired, &e.attrs);
    for c in &mut step.changes {
        c.changed_outside = recorded.get(&c.attr) != have.get(&c.attr);
    }
    step.action = Action::for_changes(&step.changes);
    if step.action == Action::Replace {
        step.reason = Some(replacement_reason(&step.changes));
    }
    step.live = Some(have);
}

/// Why an update is a replacement: the attributes AWS cannot change in place.
fn replacement_reason(changes: &[AttrChange]) -> String {
    let forcing: Vec<&str> = changes
        .iter()
        .filter(|c| c.forces_replacement)
        .map(|c| c.attr.as_str())
        .collect();
    let what = forcing.join(", ");
    if forcing.contains(&"name") {
        format!(
            "AWS cannot rename it ({what}): a new one is made and this one deleted, with what it holds; to change only its id in the manifest, keep the name and add a [[moved]] entry"
        )
    } else {
        format!("AWS cannot change {what} in place: a new one is made and this one deleted")
    }
}

/// What people see of a change: secret values (the kind's sensitive attributes, sensitive
/// variables, anything sealed) as `(sensitive)`, or `(sensitive, changed)` where they differ.
fn mask_changes(changes: &mut [AttrChange], sensitive: &[&str], secrets: &[String]) {
    for c in changes {
        let (mut old, mut new) = (
            serde_json::json!({ c.attr.clone(): c.old.clone().unwrap_or(Value::Null) }),
            serde_json::json!({ c.attr.clone(): c.new.clone().unwrap_or(Value::Null) }),
        );
        crate::secrets::mask_pair(&mut old, &mut new, sensitive, secrets);
        if c.old.is_some() {
            c.old = old.get(&c.attr).cloned();
        }
        if c.new.is_some() {
            c.new = new.get(&c.attr).cloned();
        }
    }
}

/// What `destroy` would do: every recorded resource, dependents first.
pub fn plan_destroy(state: &StackState) -> Plan {
    let steps = removed_order(state, |_| true)
        .into_iter()
        .map(|id| delete_step(&id, &state.resources[&id], ""))
        .collect();
    Plan {
        stack: state.stack.clone(),
        env: state.env.clone(),
        destroy: true,
        steps,
        warnings: vec![],
        partial: None,
        left_out: vec![],
    }
}

/// A recorded resource the manifest no longer declares: deleted, or forgotten when a
/// `[[removed]]` entry says to keep it.
fn orphan_step(stack: &Stack, id: &str, e: &crate::state::Entry) -> Step {
    match stack.removal(id) {
        Some(r) if !r.destroy => forget_step(id, e),
        Some(_) => delete_step(id, e, "`[[removed]]` with destroy = true"),
        None => delete_step(id, e, "no longer in the manifest"),
    }
}

/// A `[[removed]]` resource kept in AWS: its record leaves state, deploy's tags leave it.
fn forget_step(id: &str, e: &crate::state::Entry) -> Step {
    let reason = "`[[removed]]`: leaves the stack's state and stays in AWS, without deploy's tags (destroy = true deletes it)";
    Step {
        action: Action::Forget,
        ..delete_step(id, e, reason)
    }
}

fn delete_step(id: &str, e: &crate::state::Entry, reason: &str) -> Step {
    let name = resources::lookup(&e.kind)
        .map(|k| k.display_name(&crate::secrets::mask(&e.attrs, k.sensitive(), &[])))
        .unwrap_or_default();
    Step {
        id: id.into(),
        kind: e.kind.clone(),
        name,
        action: Action::Delete,
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        changes: vec![],
        attributes: None,
        live: None,
        found: None,
        transitions: vec![],
        rollout: None,
        moved_from: None,
    }
}

/// The recorded dependency graph of the selected entries.
pub fn recorded_graph(state: &StackState, keep: impl Fn(&str) -> bool) -> crate::graph::Graph {
    let mut g = crate::graph::Graph::new();
    for (id, e) in &state.resources {
        if !keep(id) {
            continue;
        }
        g.add_node(id);
        for d in &e.depends_on {
            if state.resources.contains_key(d) && keep(d) {
                g.add_edge(id, d);
            }
        }
    }
    g
}

fn removed_order(state: &StackState, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut order = recorded_graph(state, keep).order();
    order.reverse();
    order
}

/// What carrying out a plan did, per resource id (the executor fills it; views show it).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub stack: String,
    pub env: String,
    pub done: BTreeMap<String, Action>,
    pub failed: BTreeMap<String, String>,
    pub skipped: Vec<String>,
    pub cancelled: Vec<String>,
    /// A gradual rollout among the failures was rolled back (its own exit code).
    pub rolled_back: bool,
    /// The stack's outputs as recorded by the run's last write (shown after it, not read back).
    #[serde(skip)]
    pub outputs: BTreeMap<String, Value>,
}

impl Summary {
    /// Turns failures and interruptions into the error the process exits with.
    pub fn into_result(self) -> Result<Summary> {
        if !self.failed.is_empty() {
            let list: Vec<String> = self
                .failed
                .iter()
                .map(|(id, e)| format!("  {id}: {e}"))
                .collect();
            let class = if self.rolled_back {
                Class::RolledBack
            } else {
                Class::Partial
            };
            return Err(Error::new(
                class,
                format!(
                    "stack `{}` (env `{}`): {} of the changes failed{}:\n{}",
                    self.stack,
                    self.env,
                    self.failed.len(),
                    if self.skipped.is_empty() {
                        String::new()
                    } else {
                        format!(", {} skipped after them", self.skipped.len())
                    },
                    list.join("\n")
                ),
            )
            .help("what succeeded is recorded; fix the cause and run the same command again"));
        }
        if !self.cancelled.is_empty() {
            return Err(Error::new(
                Class::Interrupted,
                format!("interrupted: {} operations not started on stack `{}` (env `{}`)", self.cancelled.len(), self.stack, self.env),
            )
            .help("everything done is recorded: run `deploy up` again to finish, or `deploy destroy` to remove it"));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_is_semantic_and_flags_replacement() {
        let want = json!({"name": "a", "definition": {"b": 1, "a": [1, 2]}, "tags": {"x": "1"}});
        let same_other_order =
            json!({"tags": {"x": "1"}, "definition": {"a": [1, 2], "b": 1}, "name": "a"});
        assert!(diff(&want, &same_other_order, &["name"]).is_empty());
        let have = json!({"name": "b", "definition": {"b": 2, "a": [1, 2]}, "tags": {"x": "1"}});
        let d = diff(&want, &have, &["name"]);
        assert_eq!(d.len(), 2);
        assert!(d.iter().any(|c| c.attr == "name" && c.forces_replacement));
        assert!(
            d.iter()
                .any(|c| c.attr == "definition" && !c.forces_replacement)
        );
    }

    #[test]
    fn a_replacement_says_why_and_a_rename_points_at_moved() {
        let d = diff(&json!({"name": "new"}), &json!({"name": "old"}), &["name"]);
        let why = replacement_reason(&d);
        assert!(why.starts_with("AWS cannot rename it (name)"), "{why}");
        assert!(why.contains("[[moved]]"), "{why}");
        let d = diff(&json!({"path": "/a/"}), &json!({"path": "/"}), &["path"]);
        assert_eq!(
            replacement_reason(&d),
            "AWS cannot change path in place: a new one is made and this one deleted"
        );
    }

    #[test]
    fn destroy_plan_deletes_dependents_first() {
        let mut st = StackState::empty("s", "default");
        let entry = |deps: &[&str]| crate::state::Entry {
            kind: "iam_role".into(),
            status: Status::Created,
            attrs: json!({"name": "x", "service": "s"}),
            outputs: Default::default(),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
        };
        st.resources.insert("role".into(), entry(&[]));
        st.resources.insert("machine".into(), entry(&["role"]));
        st.resources
            .insert("target".into(), entry(&["machine", "role"]));
        let p = plan_destroy(&st);
        let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, vec!["target", "machine", "role"]);
        assert!(p.steps.iter().all(|s| s.action == Action::Delete));
    }
}
