//! The executor: walks the stack's graph (dependencies first) carrying out a plan, at most
//! `parallelism` operations at once; then deletes what the manifest no longer declares, and
//! for destroy walks the recorded graph the other way. Every single operation is recorded in
//! state as soon as it is done; a create is recorded as pending before it is attempted.

use crate::aws::Ctx;
use crate::error::{Error, Result};
use crate::graph::{Direction, Outcome};
use crate::manifest::{Known, Stack};
use crate::plan::{Action, Plan, Step, Summary, diff, recorded_graph};
use crate::resources::{self, DynKind, Outputs};
use crate::state::{Document, Entry, StackState, Status, Store, Target};
use crate::views::{Event, View};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub struct Executor<'a> {
    pub ctx: &'a Ctx,
    pub store: &'a Store,
    pub view: &'a dyn View,
    pub parallelism: usize,
    pub stop: &'a AtomicBool,
}

/// What finished: the resource, what was done, and since when.
struct Done<'a> {
    stack: &'a str,
    id: &'a str,
    kind: &'a str,
    name: &'a str,
    action: Action,
    started: Instant,
}

struct Run<'a> {
    ex: &'a Executor<'a>,
    stack_name: String,
    /// The state, and how many changes have been made to it (both under the one lock).
    state: Mutex<(Document, u64)>,
    /// Serialises writes; holds how many changes the last write carried.
    writer: tokio::sync::Mutex<u64>,
    /// The stack's sensitive values (sealed before anything is recorded).
    secrets: Vec<String>,
    /// The names and ARNs known before the resources exist (`Stack::known_before`).
    known: Known,
}

impl Run<'_> {
    /// Changes the state and records it: returns once a write that carries this change is
    /// done. Writes are serialised (`writer`) and each carries every change made before it, so
    /// records reach the store in the order they happened; changes made while a write is in
    /// flight go out together in the next one (a group commit: with many operations finishing
    /// at once, one write instead of one each).
    async fn save(&self, f: impl FnOnce(&mut Document)) -> Result<()> {
        let mine = {
            let mut st = self.state.lock().unwrap();
            f(&mut st.0);
            st.1 += 1;
            st.1
        };
        let mut written = self.writer.lock().await;
        if *written >= mine {
            return Ok(()); // a write made while this one waited carried its change
        }
        // the text is made under the lock (no copy of the state), written outside it
        let (text, carries, stack, env) = {
            let st = self.state.lock().unwrap();
            let s = st.0.state();
            (st.0.text()?, st.1, s.stack.clone(), s.env.clone())
        };
        self.ex.store.write(&stack, &env, text.as_deref()).await?;
        *written = carries;
        Ok(())
    }

    fn outputs(&self) -> BTreeMap<String, BTreeMap<String, Value>> {
        let st = self.state.lock().unwrap();
        st.0.state()
            .resources
            .iter()
            .filter(|(_, e)| e.status == Status::Created)
            .map(|(k, e)| (k.clone(), e.outputs.clone()))
            .collect()
    }

    /// What the state records of a resource now.
    fn recorded(&self, id: &str) -> Option<Entry> {
        let st = self.state.lock().unwrap();
        st.0.state().resources.get(id).cloned()
    }

    /// The outputs recorded for a resource created (not one only pending).
    fn outputs_of(&self, id: &str) -> Option<BTreeMap<String, Value>> {
        let st = self.state.lock().unwrap();
        let e = st.0.state().resources.get(id)?;
        (e.status == Status::Created).then(|| e.outputs.clone())
    }

    /// Warns where `id` was made with a name or ARN known beforehand that AWS then gave
    /// otherwise (the next `up` corrects it).
    fn check_known(&self, stack: &Stack, id: &str) {
        let refs = &stack.resources[id].refs;
        for dep in stack.needs_not_wait(id, &self.known) {
            let (Some(made), Some(known)) = (self.outputs_of(dep), self.known.get(dep)) else {
                continue;
            };
            for attr in refs[dep].iter().filter(|a| made.get(*a) != known.get(*a)) {
                let message = format!(
                    "`{id}` was made with `{dep}.{attr}` as {}, which AWS then gave as {}; \
                     run `deploy up` again to correct it",
                    known[attr],
                    made.get(attr).unwrap_or(&Value::Null)
                );
                self.emit(Event::Warning {
                    stack: stack.name.clone(),
                    message,
                });
            }
        }
    }

    fn emit(&self, e: Event) {
        self.ex.view.event(&e);
    }

    /// Changes the state without waiting for a write: the next write (the pending record of
    /// the next create, or the run's last one) carries it. What a crash then loses is only the
    /// outcome of an operation whose pending record, or whose absence from AWS, `up` and
    /// `destroy` recover from: a create recorded as pending is adopted or finished, an update
    /// is planned again, a resource already deleted is found gone. So an operation costs one
    /// state write (before a create) instead of two on the path its dependents wait on.
    fn note(&self, f: impl FnOnce(&mut Document)) {
        let mut st = self.state.lock().unwrap();
        f(&mut st.0);
        st.1 += 1;
    }

    fn entry(
        &self,
        kind: &dyn DynKind,
        attrs: &Value,
        outputs: Outputs,
        deps: &std::collections::BTreeSet<String>,
        status: Status,
    ) -> Entry {
        Entry {
            kind: kind.name().into(),
            status,
            // secrets are kept only as salted hashes
            attrs: crate::secrets::seal(attrs, kind.sensitive(), &self.secrets),
            outputs: crate::secrets::seal(
                &serde_json::to_value(&outputs).unwrap_or_default(),
                &[],
                &self.secrets,
            )
            .as_object()
            .map(|o| o.clone().into_iter().collect())
            .unwrap_or(outputs),
            depends_on: deps.clone(),
        }
    }

    /// Records a create about to be attempted, and waits until that record is written.
    async fn record_pending(
        &self,
        id: &str,
        kind: &dyn DynKind,
        attrs: &Value,
        deps: &std::collections::BTreeSet<String>,
    ) -> Result<()> {
        let e = self.entry(kind, attrs, Outputs::new(), deps, Status::Pending);
        self.save(|st| st.put(id, e)).await
    }

    /// Records a resource as it now is (`note`: carried by the next write).
    fn record(
        &self,
        id: &str,
        kind: &dyn DynKind,
        attrs: &Value,
        outputs: Outputs,
        deps: &std::collections::BTreeSet<String>,
    ) {
        let e = self.entry(kind, attrs, outputs, deps, Status::Created);
        self.note(|st| st.put(id, e))
    }

    /// Forgets a resource that is gone (`note`: carried by the next write).
    fn forget(&self, id: &str) {
        self.note(|st| st.remove(id))
    }

    /// Creates. When the name is taken (planning found nothing there, so it appeared since:
    /// most likely this very create, applied but its answer lost and the call retried), it is
    /// adopted: the pending record written just before the call proves the attempt ours. Only
    /// `deploy:stack` / `deploy:env` tags naming another stack or env make it someone else's.
    async fn create(
        &self,
        stack: &Stack,
        id: &str,
        kind: &dyn DynKind,
        want: &Value,
    ) -> Result<bool> {
        let ctx = self.ex.ctx;
        let deps = &stack.resources[id].deps;
        // The pending record goes out with the create: a resource whose ownership its tags,
        // description or parents prove is found again by name if the process dies before the
        // record lands (`up` adopts it, `destroy` deletes it); only what nothing on it can
        // prove ours (an IAM group) waits for its record before the create is sent.
        let created = if kind.owner() == crate::resources::Owner::Unprovable {
            self.record_pending(id, kind, want, deps).await?;
            kind.create(ctx, want).await
        } else {
            let (recorded, created) = tokio::join!(
                self.record_pending(id, kind, want, deps),
                kind.create(ctx, want)
            );
            recorded?;
            created
        };
        match created {
            Ok(outputs) => {
                self.record(id, kind, want, outputs, deps);
                Ok(false)
            }
            Err(e) if e.already_exists => {
                let Some((live, found)) = kind.read(ctx, want, &Outputs::new()).await? else {
                    return Err(e);
                };
                if crate::plan::tags_name_another(&live, stack) {
                    let tags = &live["tags"];
                    self.forget(id);
                    return Err(Error::aws(format!(
                        "{} `{}` already exists and is not this stack's: its deploy:stack / deploy:env tags say {} / {}",
                        kind.name(),
                        kind.display_name(want),
                        tags["deploy:stack"],
                        tags["deploy:env"]
                    ))
                    .help(format!(
                        "delete it, deploy into another env with --env NAME, or take it over: deploy import {} {id} --env {}",
                        stack.name, stack.env
                    )));
                }
                let outputs = if diff(want, &live, &[]).is_empty() {
                    found
                } else {
                    kind.update(ctx, &live, want, &found).await?
                };
                self.record(id, kind, want, outputs, deps);
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// `[[removed]]` without destroy: what marks the resource as the stack's is taken off it
    /// (its `deploy:*` tags, or the marker in its description), so that no later `up` adopts
    /// it and no `destroy` or sweep finds it; then its record leaves state. It is not deleted.
    async fn forget_recorded(&self, id: &str) -> Result<()> {
        let Some(entry) = self.recorded(id) else {
            return Ok(());
        };
        let kind = resources::lookup(&entry.kind)
            .ok_or_else(|| Error::internal(format!("state names unknown kind {}", entry.kind)))?;
        let ctx = self.ex.ctx;
        if let Some((live, _)) = kind.read(ctx, &entry.attrs, &entry.outputs).await? {
            let env = self.state.lock().unwrap().0.state().env.clone();
            let unmarked = resources::unmarked(kind, &live, &self.stack_name, &env);
            if unmarked != live {
                kind.update(ctx, &live, &unmarked, &entry.outputs).await?;
            }
        }
        self.forget(id);
        Ok(())
    }

    async fn delete_recorded(&self, id: &str) -> Result<()> {
        let Some(entry) = self.recorded(id) else {
            return Ok(());
        };
        let kind = resources::lookup(&entry.kind)
            .ok_or_else(|| Error::internal(format!("state names unknown kind {}", entry.kind)))?;
        for note in kind
            .delete(self.ex.ctx, &entry.attrs, &entry.outputs)
            .await?
        {
            self.emit(Event::Note {
                stack: self.stack_name.clone(),
                id: id.into(),
                message: note,
            });
        }
        self.forget(id);
        Ok(())
    }

    /// The action to take now that every dependency is done: an update or replace planned
    /// against values that were unknown then is checked again against what is live.
    fn recheck(
        &self,
        planned: Action,
        kind: &dyn DynKind,
        want: &Value,
        live: Option<&Value>,
    ) -> Action {
        match (planned, live) {
            (Action::Update | Action::Replace, Some(live)) => {
                Action::for_changes(&diff(want, live, kind.replace_on()))
            }
            (a, _) => a,
        }
    }

    /// Returns the action taken (NoOp when a re-check found nothing to do).
    async fn step(&self, stack: &Stack, plan: &Plan, id: &str) -> Result<Action> {
        let Some(step) = plan.step(id) else {
            return Ok(Action::NoOp);
        };
        if step.action == Action::NoOp {
            return Ok(Action::NoOp);
        }
        let decl = &stack.resources[id];
        let ctx = self.ex.ctx;
        let recorded = |dep: &str| self.outputs_of(dep);
        let scope = stack.scope_ahead(id, recorded, &self.known, ctx.target());
        let (want, _) = stack.resolve(id, &scope)?;
        let action = self.recheck(step.action, decl.kind, &want, step.live.as_ref());
        if action == Action::NoOp {
            return Ok(Action::NoOp);
        }
        // the name as it is now known (a planned name may have been "known after apply")
        let name = decl.kind.display_name(&want);
        self.emit(Event::Start {
            stack: stack.name.clone(),
            id: id.into(),
            kind: step.kind.clone(),
            name: name.clone(),
            action,
        });
        let started = Instant::now();
        let result = self.carry_out(stack, step, action, &want).await;
        let what = Done {
            stack: &stack.name,
            id,
            kind: &step.kind,
            name: &name,
            action,
            started,
        };
        self.finish(what, result).map(|_| action)
    }

    /// Does what the step's action asks; whether the resource was adopted.
    async fn carry_out(
        &self,
        stack: &Stack,
        step: &Step,
        action: Action,
        want: &Value,
    ) -> Result<bool> {
        let (id, ctx) = (step.id.as_str(), self.ex.ctx);
        let decl = &stack.resources[id];
        let live = step.live.clone().unwrap_or(Value::Null);
        match action {
            Action::Create => self.create(stack, id, decl.kind, want).await,
            Action::Update => {
                let known = self.recorded(id).map(|e| e.outputs).unwrap_or_default();
                let outputs = decl.kind.update(ctx, &live, want, &known).await?;
                self.record(id, decl.kind, want, outputs, &decl.deps);
                Ok(false)
            }
            Action::Replace => {
                self.delete_recorded(id).await?;
                self.create(stack, id, decl.kind, want).await
            }
            Action::Adopt => {
                let found = step.found.clone().unwrap_or_default();
                let outputs = if diff(want, &live, &[]).is_empty() {
                    found
                } else {
                    decl.kind.update(ctx, &live, want, &found).await?
                };
                self.record(id, decl.kind, want, outputs, &decl.deps);
                Ok(true)
            }
            Action::Delete | Action::Forget | Action::NoOp => Ok(false),
        }
    }

    fn finish(&self, d: Done, result: Result<bool>) -> Result<()> {
        let (stack, id, action) = (d.stack, d.id, d.action);
        match result {
            Ok(adopted) => {
                let seconds = d.started.elapsed().as_secs_f64();
                let (kind, name) = (d.kind.to_string(), d.name.to_string());
                self.emit(Event::Done {
                    stack: stack.into(),
                    id: id.into(),
                    kind,
                    name,
                    action,
                    seconds,
                    adopted,
                });
                Ok(())
            }
            Err(mut e) => {
                // an API's message may echo what it was sent
                e.message = crate::secrets::mask_text(&e.message, &self.secrets);
                self.emit(Event::Failed {
                    stack: stack.into(),
                    id: id.into(),
                    action,
                    error: e.to_string(),
                });
                Err(e)
            }
        }
    }

    async fn delete_step(&self, plan: &Plan, id: &str) -> Result<()> {
        let Some(step) = plan.step(id) else {
            return Ok(());
        };
        self.emit(Event::Start {
            stack: plan.stack.clone(),
            id: id.into(),
            kind: step.kind.clone(),
            name: step.name.clone(),
            action: step.action,
        });
        let started = Instant::now();
        let r = match step.action {
            Action::Forget => self.forget_recorded(id).await,
            _ => self.delete_recorded(id).await,
        };
        self.finish(
            Done {
                stack: &plan.stack,
                id,
                kind: &step.kind,
                name: &step.name,
                action: step.action,
                started,
            },
            r.map(|_| false),
        )
    }
}

fn collect(
    summary: &mut Summary,
    plan: &Plan,
    outcomes: BTreeMap<String, Outcome<Error>>,
    view: &dyn View,
) {
    for (id, o) in outcomes {
        let action = plan.step(&id).map(|s| s.action).unwrap_or(Action::NoOp);
        match o {
            Outcome::Done if action != Action::NoOp => {
                summary.done.insert(id, action);
            }
            Outcome::Done => {}
            Outcome::Failed(e) => {
                summary.rolled_back |= e.class == crate::error::Class::RolledBack;
                let text = match &e.help {
                    Some(h) => format!("{}\n    help: {h}", e.message),
                    None => e.message,
                };
                summary.failed.insert(id, text);
            }
            Outcome::Skipped => {
                view.event(&Event::Skipped {
                    stack: plan.stack.clone(),
                    id: id.clone(),
                    reason: "a resource it depends on failed".into(),
                });
                summary.skipped.push(id);
            }
            Outcome::Cancelled => summary.cancelled.push(id),
        }
    }
}

impl Executor<'_> {
    fn target(&self) -> Target {
        Target::of(self.ctx)
    }

    /// Carries out an `up` plan.
    pub async fn up(&self, stack: &Stack, plan: &Plan, state: StackState) -> Result<Summary> {
        let run = Run {
            ex: self,
            stack_name: stack.name.clone(),
            state: Mutex::new((Document::new(state), 0)),
            writer: tokio::sync::Mutex::new(0),
            secrets: stack.secrets.clone(),
            known: stack.known_before(|kind, name| kind.arn_of(self.ctx, name), self.ctx.target()),
        };
        // carried by the first write (the first pending record, or the last write)
        run.note(|st| st.set_target(self.target()));
        for w in &plan.warnings {
            run.emit(Event::Warning {
                stack: stack.name.clone(),
                message: w.clone(),
            });
        }
        let mut summary = Summary {
            stack: stack.name.clone(),
            env: stack.env.clone(),
            ..Default::default()
        };
        let stop = || self.stop.load(Ordering::SeqCst);
        let taken = Mutex::new(BTreeMap::new());
        let outcomes = stack
            .create_order(&run.known)
            .walk(Direction::Forward, self.parallelism, stop, |id| {
                let (run, taken) = (&run, &taken);
                async move {
                    let action = run.step(stack, plan, &id).await?;
                    taken.lock().unwrap().insert(id, action);
                    Ok(())
                }
            })
            .await;
        collect(&mut summary, plan, outcomes, self.view);
        // Count what was actually done, not what was planned.
        for (id, action) in taken.into_inner().unwrap() {
            if action != Action::NoOp {
                run.check_known(stack, &id);
            }
            if action == Action::NoOp {
                summary.done.remove(&id);
            } else {
                summary.done.insert(id, action);
            }
        }

        // Then what the manifest no longer declares, dependents first.
        if summary.failed.is_empty() {
            self.delete_orphans(&run, plan, &mut summary).await;
        }
        summary.outputs = self.record_outputs(&run, stack).await?;
        summary.into_result()
    }

    /// Deletes, dependents first, what the plan deletes (what the manifest no longer declares).
    async fn delete_orphans(&self, run: &Run<'_>, plan: &Plan, summary: &mut Summary) {
        let deleted = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Delete | Action::Forget));
        let orphans: Vec<String> = deleted.map(|s| s.id.clone()).collect();
        if orphans.is_empty() {
            return;
        }
        let g = recorded_graph(run.state.lock().unwrap().0.state(), |id| {
            orphans.iter().any(|o| o == id)
        });
        let stop = || self.stop.load(Ordering::SeqCst);
        let outcomes = g
            .walk(
                Direction::Reverse,
                self.parallelism,
                stop,
                |id| async move { run.delete_step(plan, &id).await },
            )
            .await;
        collect(summary, plan, outcomes, self.view);
    }

    /// The stack's outputs, resolved from what the run recorded, sealed and recorded.
    async fn record_outputs(
        &self,
        run: &Run<'_>,
        stack: &Stack,
    ) -> Result<BTreeMap<String, Value>> {
        let ctx = &self.ctx;
        let scope = stack.scope(&run.outputs(), Some(ctx.target()));
        let outputs: BTreeMap<String, Value> = stack
            .resolve_outputs(&scope)
            .into_iter()
            .map(|(k, v)| (k, crate::secrets::seal(&v, &[], &stack.secrets)))
            .collect();
        let recorded = outputs.clone();
        run.save(|st| st.set_outputs(recorded)).await?;
        Ok(outputs)
    }

    /// Carries out a destroy plan: everything recorded, dependents first.
    pub async fn destroy(&self, plan: &Plan, state: StackState) -> Result<Summary> {
        let g = recorded_graph(&state, |_| true);
        let run = Run {
            ex: self,
            stack_name: plan.stack.clone(),
            state: Mutex::new((Document::new(state), 0)),
            writer: tokio::sync::Mutex::new(0),
            secrets: vec![],
            known: Known::new(),
        };
        let mut summary = Summary {
            stack: plan.stack.clone(),
            env: plan.env.clone(),
            ..Default::default()
        };
        let stop = || self.stop.load(Ordering::SeqCst);
        let outcomes = g
            .walk(Direction::Reverse, self.parallelism, stop, |id| {
                let run = &run;
                async move { run.delete_step(plan, &id).await }
            })
            .await;
        collect(&mut summary, plan, outcomes, self.view);
        // the last write: it carries every deletion noted since the one before
        run.save(|st| {
            if st.state().resources.is_empty() {
                st.set_outputs(BTreeMap::new());
            }
        })
        .await?;
        summary.into_result()
    }
}

/// The executor with an in-memory kind (`resources::test_thing`): what it creates, adopts,
/// skips, records and how many operations it runs at once, without AWS.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Class;
    use crate::manifest::VarInputs;
    use crate::resources::test_thing::with_cloud;

    /// What the executor told the view, as `event id` lines.
    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);
    impl View for Seen {
        fn event(&self, e: &Event) {
            let line = match e {
                Event::Start { id, .. } => format!("start {id}"),
                Event::Done { id, adopted, .. } => {
                    format!("{} {id}", if *adopted { "adopted" } else { "done" })
                }
                Event::Failed { id, .. } => format!("failed {id}"),
                Event::Skipped { id, .. } => format!("skipped {id}"),
                Event::Warning { .. } | Event::Note { .. } => return,
            };
            self.0.lock().unwrap().push(line);
        }
    }

    /// A stack of test things: `(id, extra attributes)`; every name is `<test>.<id>`.
    fn stack(test: &str, things: &[(&str, &str)]) -> Stack {
        let mut src = String::new();
        for (id, extra) in things {
            src += &format!(
                "[resources.{id}]\nkind = \"test_thing\"\nname = \"{test}.{id}\"\n{extra}\n"
            );
        }
        Stack::parse(
            "s",
            "stacks/s/stack.toml",
            &src,
            &VarInputs::default(),
            "default",
            std::path::Path::new("/x"),
        )
        .unwrap()
    }

    struct World {
        ctx: Ctx,
        dir: tempfile::TempDir,
        store: Store,
        seen: Seen,
        stop: AtomicBool,
    }

    impl World {
        fn new() -> World {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::new(dir.path().to_path_buf());
            World {
                ctx: Ctx::offline(),
                dir,
                store,
                seen: Seen::default(),
                stop: AtomicBool::new(false),
            }
        }

        /// Plans against the fake cloud and the recorded state, then carries the plan out.
        async fn up(&self, s: &Stack, parallelism: usize) -> (Plan, Result<Summary>) {
            let state = self.store.load(&s.name, &s.env).await.unwrap();
            let plan = crate::plan::plan_up(s, &state, &self.ctx).await.unwrap();
            let ex = Executor {
                ctx: &self.ctx,
                store: &self.store,
                view: &self.seen,
                parallelism,
                stop: &self.stop,
            };
            let r = ex.up(s, &plan, state).await;
            (plan, r)
        }

        async fn recorded(&self, s: &Stack) -> BTreeMap<String, Status> {
            let st = self.store.load(&s.name, &s.env).await.unwrap();
            st.resources
                .into_iter()
                .map(|(id, e)| (id, e.status))
                .collect()
        }

        fn seen(&self) -> Vec<String> {
            self.seen.0.lock().unwrap().clone()
        }
    }

    fn calls(test: &str) -> Vec<(String, String)> {
        with_cloud(|c| {
            c.calls
                .iter()
                .filter(|(_, n)| n.starts_with(&format!("{test}.")))
                .cloned()
                .collect()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn dependencies_first_everything_recorded_and_a_second_up_does_nothing() {
        let w = World::new();
        let s = stack(
            "order",
            &[
                ("a", ""),
                ("b", "value = \"${a.arn}\""),
                ("c", "value = \"${b.arn}\""),
            ],
        );
        let (plan, r) = w.up(&s, 8).await;
        assert_eq!(plan.counts().create, 3);
        assert_eq!(r.unwrap().done.len(), 3);
        let order: Vec<String> = calls("order")
            .into_iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        assert_eq!(
            order,
            ["create order.a", "create order.b", "create order.c"]
        );
        assert!(
            w.recorded(&s)
                .await
                .values()
                .all(|st| *st == Status::Created)
        );
        // the reference was filled from what `a` reported once created
        assert_eq!(
            with_cloud(|c| c.things["order.b"].value.clone()),
            "arn:test:order.a"
        );
        let (plan, r) = w.up(&s, 8).await;
        assert!(!plan.has_changes() && r.unwrap().done.is_empty());
        assert_eq!(calls("order").len(), 3, "no call the second time");
        drop(w.dir);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_skips_only_what_depends_on_it() {
        let w = World::new();
        let s = stack(
            "fail",
            &[
                ("a", "fail = true"),
                ("b", "value = \"${a.arn}\""),
                ("c", ""),
            ],
        );
        let (_, r) = w.up(&s, 8).await;
        let e = r.unwrap_err();
        assert_eq!(e.class, Class::Partial);
        assert!(
            e.message
                .contains("1 of the changes failed, 1 skipped after them"),
            "{}",
            e.message
        );
        let seen = w.seen();
        assert!(
            seen.contains(&"failed a".to_string()) && seen.contains(&"skipped b".to_string()),
            "{seen:?}"
        );
        assert!(seen.contains(&"done c".to_string()), "{seen:?}");
        assert!(
            !seen.contains(&"start b".to_string()),
            "b never started: {seen:?}"
        );
        let recorded = w.recorded(&s).await;
        assert_eq!(recorded.get("c"), Some(&Status::Created));
        assert_eq!(
            recorded.get("a"),
            Some(&Status::Pending),
            "the attempt is recorded, so the next run looks for it"
        );
        assert_eq!(recorded.get("b"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn what_exists_and_is_ours_is_adopted_and_a_pending_create_is_finished() {
        let w = World::new();
        let s = stack("adopt", &[("a", ""), ("b", "")]);
        // `a` exists with this stack's tags (state lost); `b` was being created when a run died
        let tags = s.resources["a"].attrs["tags"].clone();
        let a: crate::resources::test_thing::Attrs =
            serde_json::from_value(serde_json::json!({"name": "adopt.a", "tags": tags})).unwrap();
        with_cloud(|c| c.things.insert("adopt.a".into(), a));
        let mut st = StackState::empty("s", "default");
        st.resources.insert(
            "b".into(),
            Entry {
                kind: "test_thing".into(),
                status: Status::Pending,
                attrs: s.resources["b"].attrs.clone(),
                outputs: Default::default(),
                depends_on: Default::default(),
            },
        );
        w.store.save(&st).await.unwrap();
        let (plan, r) = w.up(&s, 8).await;
        assert_eq!(plan.step("a").unwrap().action, Action::Adopt);
        assert_eq!(
            plan.step("b").unwrap().action,
            Action::Create,
            "pending and not found: created"
        );
        r.unwrap();
        assert_eq!(
            calls("adopt"),
            [("create".to_string(), "adopt.b".to_string())],
            "adopting calls nothing"
        );
        assert!(
            w.recorded(&s)
                .await
                .values()
                .all(|st| *st == Status::Created)
        );

        // someone else's: same name, other tags: refused before any call
        let w = World::new();
        let s = stack("foreign", &[("a", "")]);
        let mut other = s.resources["a"].attrs["tags"].clone();
        other["deploy:stack"] = "someone-else".into();
        let a: crate::resources::test_thing::Attrs =
            serde_json::from_value(serde_json::json!({"name": "foreign.a", "tags": other}))
                .unwrap();
        with_cloud(|c| c.things.insert("foreign.a".into(), a));
        let state = w.store.load("s", "default").await.unwrap();
        let e = crate::plan::plan_up(&s, &state, &w.ctx).await.unwrap_err();
        assert!(
            e.message.contains("belong to someone else"),
            "{}",
            e.message
        );
        assert!(calls("foreign").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_parallelism_operations_run_at_once() {
        let w = World::new();
        let things: Vec<(String, String)> = (0..10)
            .map(|i| (format!("t{i}"), "millis = 50".to_string()))
            .collect();
        let things: Vec<(&str, &str)> = things
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let s = stack("bound", &things);
        w.up(&s, 3).await.1.unwrap();
        assert_eq!(with_cloud(|c| c.most_in_flight["bound"]), 3);
        assert_eq!(calls("bound").len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn an_interrupt_finishes_what_is_in_flight_and_starts_nothing_more() {
        let w = World::new();
        let s = stack(
            "stop",
            &[
                ("a", "millis = 50"),
                ("b", "value = \"${a.arn}\""),
                ("c", "value = \"${b.arn}\""),
            ],
        );
        let (state, plan) = {
            let state = w.store.load(&s.name, &s.env).await.unwrap();
            let plan = crate::plan::plan_up(&s, &state, &w.ctx).await.unwrap();
            (state, plan)
        };
        let ex = Executor {
            ctx: &w.ctx,
            store: &w.store,
            view: &w.seen,
            parallelism: 8,
            stop: &w.stop,
        };
        let interrupt = async {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            w.stop.store(true, Ordering::SeqCst);
        };
        let (r, ()) = tokio::join!(ex.up(&s, &plan, state), interrupt);
        let e = r.unwrap_err();
        assert_eq!(e.class, Class::Interrupted);
        assert!(
            e.message.contains("2 operations not started"),
            "{}",
            e.message
        );
        let recorded = w.recorded(&s).await;
        assert_eq!(
            recorded.get("a"),
            Some(&Status::Created),
            "the one in flight finished and was recorded"
        );
        assert_eq!((recorded.get("b"), recorded.get("c")), (None, None));
    }
}
