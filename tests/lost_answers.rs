//! A create whose answer was lost is never duplicated, leaked or left failing. A proxy in front
//! of moto lets a third of all calls reach moto and be applied, then drops the connection
//! before the answer (as a NAT timeout or a network blip does); `up` and `destroy` of all four
//! stacks through it either converge, or stop with a clear message after which a fault-free
//! run converges. Seeded: a failing series can be replayed.

mod support;

use serde_json::json;
use std::collections::BTreeMap;
use support::*;

const UP: &[&str] = &["up", "--all", "--var", "email=lead@example.com", "--yes"];

/// A run that did not converge must say what went wrong, as one of deploy's own errors.
fn clear_stop(out: &Output) {
    assert!(
        matches!(out.code, 3 | 4),
        "a clear stop (exit 3 or 4): {out:?}"
    );
    assert!(
        out.stderr.contains("error: ") && !out.stderr.contains("panicked"),
        "{out:?}"
    );
}

const SEEDS: [u64; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// One seeded series: up through the proxy (or, after a clear stop, without it), checks that it
/// converged to exactly a clean run's resources, destroy through the proxy, checks nothing is
/// left. Returns how many answers were lost and which runs stopped.
fn series(
    seed: u64,
    clean: &BTreeMap<&'static str, usize>,
    faults: &serde_json::Value,
) -> (usize, Vec<String>) {
    let mut stopped = Vec::new();
    let w = World::new();
    let proxy = Proxy::start(&w.moto, faults.clone());
    let up = w.via(&proxy.url()).run(UP);
    if up.code != 0 {
        clear_stop(&up);
        stopped.push(format!(
            "seed {seed}: up exit {}: {}",
            up.code,
            up.stderr
                .lines()
                .find(|l| l.starts_with("error: "))
                .unwrap_or("")
        ));
        w.deploy().run(UP).success();
    }
    // converged: a further up changes nothing, and exactly a clean run's resources exist
    w.moto.start_recording();
    w.deploy().run(UP).success();
    assert_eq!(
        mutating_calls(&w.moto),
        Vec::<String>::new(),
        "seed {seed}: a further up changes nothing"
    );
    assert_eq!(
        &inventory(&w.c),
        clean,
        "seed {seed}: the resources of a clean run, none twice"
    );

    let down = w.via(&proxy.url()).run(&["destroy", "--yes"]);
    if down.code != 0 {
        clear_stop(&down);
        stopped.push(format!(
            "seed {seed}: destroy exit {}: {}",
            down.code,
            down.stderr
                .lines()
                .find(|l| l.starts_with("error: "))
                .unwrap_or("")
        ));
        w.deploy().run(&["destroy", "--yes"]).success();
    }
    nothing_left(&w.c, w.moto.port);
    let faulted = proxy.injected().len();
    assert!(faulted >= 20, "seed {seed}: only {faulted} faults");
    (faulted, stopped)
}

/// What a clean `up --all` makes, to compare every series with.
fn clean_inventory() -> BTreeMap<&'static str, usize> {
    let w = World::new();
    w.deploy().run(UP).success();
    inventory(&w.c)
}

/// One series per seed, `at_once` side by side (each its own moto and proxy: most of a series
/// is the SDK's backoff, not work); returns (faults, stops) of every series.
fn run_series(
    seeds: &[u64],
    at_once: usize,
    faults: fn(u64) -> serde_json::Value,
) -> (usize, Vec<String>) {
    require_wheelhouse();
    let clean = &clean_inventory();
    let results: Vec<(usize, Vec<String>)> = std::thread::scope(|scope| {
        seeds
            .chunks(seeds.len().div_ceil(at_once))
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|&s| series(s, clean, &faults(s)))
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    (
        results.iter().map(|(f, _)| f).sum(),
        results.into_iter().flat_map(|(_, s)| s).collect(),
    )
}

/// What the README's reliability section reports.
fn report(line: String) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
}

#[test]
fn lost_answers_on_a_third_of_calls_never_duplicate_leak_or_strand() {
    let (lost, stopped) = run_series(
        &SEEDS,
        SEEDS.len(),
        |seed| json!({"faults": [], "lose": {"rate": 0.3, "seed": seed}}),
    );
    report(format!(
        "lost answers: {} seeds, {lost} answers lost, stops needing a fault-free run: {stopped:?}",
        SEEDS.len()
    ));
}

/// 20% of all calls get one of the faults a real network and a real AWS give (throttling, 503,
/// a connection dropped before or after the call was applied, a slow answer): 10 runs of 10
/// converge, or stop clearly and are finished by a run without faults.
#[test]
fn mixed_faults_on_a_fifth_of_calls_leave_every_run_convergent() {
    let seeds: Vec<u64> = (101..111).collect();
    let (faults, stopped) = run_series(
        &seeds,
        2,
        |seed| json!({"faults": [], "mixed": {"rate": 0.2, "seed": seed}}),
    );
    report(format!(
        "mixed faults: {} runs, {faults} faults, stops needing a fault-free run: {stopped:?}",
        seeds.len()
    ));
}
