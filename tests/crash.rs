//! kill -9 at any point: `up` of the four stacks, and `destroy`, killed right after the k-th
//! call that changed something (seen in a proxy's log, for 20 values of k spread over the run),
//! are each finished by running the same command again: `up` converges to exactly a clean run's
//! resources and a further `up` changes nothing; `destroy` leaves nothing.

mod support;

use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use support::*;

const UP: &[&str] = &["up", "--all", "--var", "email=lead@example.com", "--yes"];
const DESTROY: &[&str] = &["destroy", "--yes"];

fn applied_changes(proxy: &Proxy) -> usize {
    proxy
        .injected()
        .iter()
        .filter_map(|l| l.strip_prefix("applied "))
        .filter(|op| is_mutating(op))
        .count()
}

/// Runs `args` through the proxy and kills it (SIGKILL) once `k` changing calls were applied;
/// false when it ended first.
fn kill_after(w: &World, proxy: &Proxy, args: &[&str], k: usize) -> bool {
    let mut child = w.via(&proxy.url()).spawn(args);
    loop {
        if applied_changes(proxy) >= k {
            let _ = child.kill();
            let _ = child.wait();
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn crash_and_recover(k: usize, clean: &BTreeMap<&'static str, usize>) -> (bool, bool) {
    let w = World::new();
    let proxy = Proxy::start(&w.moto, json!({"faults": [], "log_all": true}));
    let killed_up = kill_after(&w, &proxy, UP, k);
    w.deploy().run(UP).success();
    w.moto.start_recording();
    w.deploy().run(UP).success();
    assert_eq!(
        mutating_calls(&w.moto),
        Vec::<String>::new(),
        "k={k}: a further up changes nothing"
    );
    assert_eq!(
        &inventory(&w.c),
        clean,
        "k={k}: exactly a clean run's resources"
    );
    let before = applied_changes(&proxy);
    let killed_destroy = kill_after(&w, &proxy, DESTROY, before + k);
    w.deploy().run(DESTROY).success();
    nothing_left(&w.c, w.moto.port);
    (killed_up, killed_destroy)
}

#[test]
fn kill_9_at_any_point_is_recovered_by_running_the_command_again() {
    require_wheelhouse();
    let (clean, changes) = {
        let w = World::new();
        let proxy = Proxy::start(&w.moto, json!({"faults": [], "log_all": true}));
        w.via(&proxy.url()).run(UP).success();
        (inventory(&w.c), applied_changes(&proxy))
    };
    assert!(
        changes >= 40,
        "a cold up of the four stacks makes {changes} changing calls"
    );
    let ks: Vec<usize> = (0..20).map(|i| 1 + i * (changes - 1) / 19).collect();
    let clean = &clean;
    let results: Vec<(usize, bool, bool)> = std::thread::scope(|scope| {
        ks.chunks(5)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|&k| {
                            let (u, d) = crash_and_recover(k, clean);
                            (k, u, d)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let killed_up = results.iter().filter(|r| r.1).count();
    let killed_destroy = results.iter().filter(|r| r.2).count();
    assert!(
        killed_up >= 18,
        "the kills landed inside the up: {results:?}"
    );
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("kill -9: {} kill points over {changes} changing calls; up killed {killed_up} times, destroy {killed_destroy} times; all recovered\n", ks.len()).as_bytes(),
    );
}
