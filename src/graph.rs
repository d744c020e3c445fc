//! A dependency graph with no AWS in it: ordering, cycle reports, and a bounded concurrent walk.
//!
//! Edges point from a node to the nodes it depends on. A walk runs a node as soon as all its
//! dependencies have succeeded, at most `limit` at a time; nodes downstream of a failure are
//! skipped (and reported as skipped, not failed). A reverse walk (destroy) runs a node once
//! every node that depends on it is done: the one place where edges are reversed.

use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// node -> the nodes it depends on
    deps: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<E> {
    Done,
    Failed(E),
    /// Not run because a node it waits for failed or was skipped.
    Skipped,
    /// Not run because the walk was stopped (Ctrl-C).
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Dependencies first (create, update).
    Forward,
    /// Dependents first (destroy).
    Reverse,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_node(&mut self, n: &str) {
        self.deps.entry(n.to_string()).or_default();
    }

    /// `from` depends on `to`. Both become nodes.
    pub fn add_edge(&mut self, from: &str, to: &str) {
        self.add_node(to);
        self.deps
            .entry(from.to_string())
            .or_default()
            .insert(to.to_string());
    }

    pub fn deps_of(&self, n: &str) -> impl Iterator<Item = &String> {
        self.deps.get(n).into_iter().flatten()
    }

    /// The graph with every edge reversed: the only place destroy order is derived.
    pub fn reversed(&self) -> Graph {
        let mut g = Graph::new();
        for (n, ds) in &self.deps {
            g.add_node(n);
            for d in ds {
                g.add_edge(d, n);
            }
        }
        g
    }

    /// The first cycle found, spelled out as `a -> b -> c -> a`, or `None`.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        fn visit<'a>(
            g: &'a Graph,
            n: &'a str,
            marks: &mut BTreeMap<&'a str, Mark>,
            stack: &mut Vec<&'a str>,
        ) -> Option<Vec<String>> {
            match marks.get(n) {
                Some(Mark::Done) => return None,
                Some(Mark::Visiting) => {
                    let start = stack.iter().position(|s| *s == n).unwrap();
                    let mut cycle: Vec<String> =
                        stack[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(n.to_string());
                    return Some(cycle);
                }
                None => {}
            }
            marks.insert(n, Mark::Visiting);
            stack.push(n);
            for d in g.deps_of(n) {
                if let Some(c) = visit(g, d, marks, stack) {
                    return Some(c);
                }
            }
            stack.pop();
            marks.insert(n, Mark::Done);
            None
        }
        let mut marks = BTreeMap::new();
        for n in self.deps.keys() {
            let mut stack = Vec::new();
            if let Some(c) = visit(self, n, &mut marks, &mut stack) {
                return Some(c);
            }
        }
        None
    }

    /// A deterministic topological order (dependencies first). Panics on a cycle: check first.
    /// The nodes in rounds: each round holds the nodes whose dependencies are all in earlier
    /// rounds, so the nodes of one round can be worked on together.
    pub fn levels(&self) -> Vec<Vec<String>> {
        let mut level: BTreeMap<String, usize> = BTreeMap::new();
        for n in self.order() {
            let l = self
                .deps_of(&n)
                .filter_map(|d| level.get(d))
                .map(|l| l + 1)
                .max()
                .unwrap_or(0);
            level.insert(n, l);
        }
        let mut out: Vec<Vec<String>> = vec![Vec::new(); level.values().max().map_or(0, |m| m + 1)];
        for (n, l) in level {
            out[l].push(n);
        }
        out
    }

    pub fn order(&self) -> Vec<String> {
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut out = Vec::new();
        while out.len() < self.deps.len() {
            let before = out.len();
            for (n, ds) in &self.deps {
                if !done.contains(n) && ds.iter().all(|d| done.contains(d)) {
                    out.push(n.clone());
                }
            }
            done.extend(out[before..].iter().cloned());
            assert!(out.len() > before, "graph has a cycle");
        }
        out
    }

    /// Each node's count of dependencies, and who waits on each node: a node is ready when
    /// its count reaches zero (work proportional to the edges, not to the nodes times the
    /// completions).
    fn counts(&self) -> (BTreeMap<&str, usize>, BTreeMap<&str, Vec<&str>>) {
        let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
        let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (n, ds) in &self.deps {
            waiting.insert(n, ds.len());
            for d in ds {
                dependents.entry(d).or_default().push(n);
            }
        }
        (waiting, dependents)
    }

    /// Runs `work` on every node in `dir` order, at most `limit` at once. `stop` is polled
    /// between starts: once it returns true, nothing new starts and the rest is `Cancelled`.
    pub async fn walk<E, F, Fut>(
        &self,
        dir: Direction,
        limit: usize,
        stop: impl Fn() -> bool,
        mut work: F,
    ) -> BTreeMap<String, Outcome<E>>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let g = match dir {
            Direction::Forward => self.clone(),
            Direction::Reverse => self.reversed(),
        };
        let limit = limit.max(1);
        // Each node's count of dependencies not yet done, and who waits on each node: a node
        // is ready when its count reaches zero (work proportional to the edges, not to the
        // nodes times the completions).
        let (mut waiting, dependents) = g.counts();
        let no_deps = waiting.iter().filter(|(_, c)| **c == 0);
        let mut ready: BTreeSet<&str> = no_deps.map(|(n, _)| *n).collect();
        let mut outcomes: BTreeMap<String, Outcome<E>> = BTreeMap::new();
        let mut running = FuturesUnordered::new();
        loop {
            if !stop() {
                while running.len() < limit {
                    let Some(n) = ready.pop_first() else { break };
                    let fut = work(n.to_string());
                    running.push(async move { (n, fut.await) });
                }
            }
            let Some((n, res)) = running.next().await else {
                break;
            };
            match res {
                Ok(()) => {
                    outcomes.insert(n.to_string(), Outcome::Done);
                    for d in dependents.get(n).into_iter().flatten() {
                        let c = waiting.get_mut(d).expect("every node is counted");
                        *c -= 1;
                        if *c == 0 && !outcomes.contains_key(*d) {
                            ready.insert(d);
                        }
                    }
                }
                Err(e) => {
                    outcomes.insert(n.to_string(), Outcome::Failed(e));
                    // everything downstream of a failure is skipped, not run
                    skip_downstream(n, &dependents, &mut outcomes, &mut ready);
                }
            }
        }
        for n in g.deps.keys() {
            outcomes.entry(n.clone()).or_insert(Outcome::Cancelled);
        }
        outcomes
    }
}

/// Marks everything downstream of `n` skipped (and not ready), unless it has an outcome.
fn skip_downstream<'a, E>(
    n: &'a str,
    dependents: &BTreeMap<&'a str, Vec<&'a str>>,
    outcomes: &mut BTreeMap<String, Outcome<E>>,
    ready: &mut BTreeSet<&'a str>,
) {
    let mut downstream: Vec<&str> = dependents.get(n).cloned().unwrap_or_default();
    while let Some(d) = downstream.pop() {
        if outcomes.contains_key(d) {
            continue;
        }
        outcomes.insert(d.to_string(), Outcome::Skipped);
        ready.remove(d);
        downstream.extend(dependents.get(d).into_iter().flatten());
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn sample() -> Graph {
        // machine -> role, machine -> conn, attach -> role, attach -> policy, rule_target -> machine
        let mut g = Graph::new();
        g.add_edge("machine", "role");
        g.add_edge("machine", "conn");
        g.add_edge("attach", "role");
        g.add_edge("attach", "policy");
        g.add_edge("target", "machine");
        g
    }

    fn pos(v: &[String], n: &str) -> usize {
        v.iter().position(|x| x == n).unwrap()
    }

    #[test]
    fn order_puts_dependencies_first() {
        let o = sample().order();
        assert!(pos(&o, "role") < pos(&o, "machine"));
        assert!(pos(&o, "conn") < pos(&o, "machine"));
        assert!(pos(&o, "machine") < pos(&o, "target"));
        assert!(pos(&o, "policy") < pos(&o, "attach"));
        assert_eq!(o.len(), 6);
    }

    #[test]
    fn levels_group_what_can_run_together() {
        let g = sample();
        let levels = g.levels();
        for (i, level) in levels.iter().enumerate() {
            for n in level {
                for d in g.deps_of(n) {
                    assert!(
                        levels[..i].iter().any(|l| l.contains(d)),
                        "{d} comes before {n}"
                    );
                }
            }
        }
        assert_eq!(levels.iter().map(Vec::len).sum::<usize>(), g.order().len());
    }

    #[test]
    fn cycle_is_spelled_out() {
        let mut g = sample();
        g.add_edge("role", "target");
        let c = g.find_cycle().unwrap();
        assert_eq!(c.first(), c.last());
        let s = c.join(" -> ");
        assert!(
            s.contains("role -> target -> machine -> role")
                || s.contains("machine -> role -> target -> machine")
                || s.contains("target -> machine -> role -> target"),
            "{s}"
        );
        assert!(sample().find_cycle().is_none());
    }

    #[tokio::test]
    async fn walk_runs_in_dependency_order_and_skips_downstream_of_failure() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let out = sample()
            .walk(
                Direction::Forward,
                2,
                || false,
                move |n| {
                    let l = l.clone();
                    async move {
                        l.lock().unwrap().push(n.clone());
                        if n == "conn" { Err("boom") } else { Ok(()) }
                    }
                },
            )
            .await;
        assert_eq!(out["conn"], Outcome::Failed("boom"));
        assert_eq!(out["machine"], Outcome::Skipped);
        assert_eq!(out["target"], Outcome::Skipped);
        // independent work still finished
        assert_eq!(out["attach"], Outcome::Done);
        assert_eq!(out["role"], Outcome::Done);
        let ran = log.lock().unwrap().clone();
        assert!(!ran.contains(&"machine".to_string()));
        assert!(pos(&ran, "role") < pos(&ran, "attach"));
    }

    #[tokio::test]
    async fn reverse_walk_runs_dependents_first() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        sample()
            .walk(
                Direction::Reverse,
                1,
                || false,
                move |n| {
                    let l = l.clone();
                    async move {
                        l.lock().unwrap().push(n);
                        Ok::<(), ()>(())
                    }
                },
            )
            .await;
        let ran = log.lock().unwrap().clone();
        assert!(pos(&ran, "target") < pos(&ran, "machine"));
        assert!(pos(&ran, "machine") < pos(&ran, "role"));
        assert!(pos(&ran, "attach") < pos(&ran, "policy"));
    }

    #[tokio::test]
    async fn walk_respects_the_concurrency_limit() {
        let mut g = Graph::new();
        for i in 0..10 {
            g.add_node(&format!("n{i}"));
        }
        let now = Arc::new(Mutex::new((0usize, 0usize)));
        let n2 = now.clone();
        g.walk(
            Direction::Forward,
            3,
            || false,
            move |_| {
                let n = n2.clone();
                async move {
                    {
                        let mut g = n.lock().unwrap();
                        g.0 += 1;
                        g.1 = g.1.max(g.0);
                    }
                    tokio::task::yield_now().await;
                    tokio::task::yield_now().await;
                    n.lock().unwrap().0 -= 1;
                    Ok::<(), ()>(())
                }
            },
        )
        .await;
        let peak = now.lock().unwrap().1;
        assert!(peak <= 3 && peak >= 2, "peak {peak}");
    }

    #[tokio::test]
    async fn stop_cancels_what_has_not_started() {
        let out = sample()
            .walk(
                Direction::Forward,
                4,
                || true,
                |_| async { Ok::<(), ()>(()) },
            )
            .await;
        assert!(out.values().all(|o| *o == Outcome::Cancelled));
    }
}
