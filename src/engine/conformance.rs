//! The conformance suite (`tests/conformance/<area>.json`): small definitions, each with an
//! input, the answers of its tasks, and the outcome AWS Step Functions gives (status, output or
//! error and cause, and where the source records it, the sequence of history event types).
//! Every expected outcome names its source: an AWS documentation page, or an execution
//! recorded on AWS. Never what this engine returns.
//!
//! Prints the agreement per area, writes it to `target/conformance.txt`, and checks that the
//! README's conformance table is the one measured. A case AWS and the engine disagree on fails
//! the test unless it carries `known_difference` (listed in the README); a known difference
//! that now agrees fails it too, so the list stays true.

use super::scenario::{Mock, Mocked};
use super::{Status, execute_virtual};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// Where AWS's outcome comes from.
    source: String,
    definition: Value,
    #[serde(default)]
    input: Value,
    /// Task answers per state, in order (the last one repeats).
    #[serde(default)]
    mocks: BTreeMap<String, Vec<Mock>>,
    expect: Expected,
    /// Why the engine differs from AWS here (the README lists these).
    #[serde(default)]
    known_difference: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// SUCCEEDED, FAILED, TIMED_OUT; or INVALID_DEFINITION: CreateStateMachine refuses it.
    status: String,
    #[serde(default)]
    output: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
    /// The history's event types, in order.
    #[serde(default)]
    events: Option<Vec<String>>,
}

/// Numbers compare by value (1 == 1.0), everything else structurally.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

struct Verdict {
    /// None: agrees; Some: what differs.
    outcome: Option<String>,
    /// None when the case records no history; Some(None) agrees.
    history: Option<Option<String>>,
}

fn judge(case: &Case) -> Verdict {
    let findings = crate::validate::check(&case.definition, &case.name, None);
    let refused: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == crate::validate::Severity::Error)
        .map(|f| format!("{} {}", f.pointer, f.message))
        .collect();
    let e = &case.expect;
    if e.status == "INVALID_DEFINITION" {
        return Verdict {
            outcome: refused
                .is_empty()
                .then(|| "AWS refuses this definition; the validator accepts it".into()),
            history: None,
        };
    }
    if !refused.is_empty() {
        return Verdict {
            outcome: Some(format!(
                "AWS accepts this definition; the validator refuses it: {}",
                refused.join("; ")
            )),
            history: e.events.as_ref().map(|_| Some("not run".into())),
        };
    }
    let tasks = Mocked::new(case.mocks.clone());
    let run = execute_virtual(&case.definition, case.input.clone(), &case.name, &tasks);
    let status = match run.status {
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMED_OUT",
    };
    let mut differs = Vec::new();
    if status != e.status {
        differs.push(format!("status {status}, AWS {}", e.status));
    }
    if let Some(o) = &e.output {
        if !same(o, &run.output) {
            differs.push(format!("output {}, AWS {o}", run.output));
        }
    }
    if let Some(err) = &e.error {
        if run.error.as_deref() != Some(err) {
            differs.push(format!("error {:?}, AWS {err:?}", run.error));
        }
    }
    if let Some(c) = &e.cause {
        if run.cause.as_deref() != Some(c) {
            differs.push(format!("cause {:?}, AWS {c:?}", run.cause));
        }
    }
    let history = e.events.as_ref().map(|want| {
        let got: Vec<&str> = run.events.iter().map(|ev| ev.kind).collect();
        (got != *want).then(|| {
            let at = got.iter().zip(want).position(|(a, b)| a != b);
            let at = at.unwrap_or(got.len().min(want.len()));
            format!(
                "history differs at event {}: {:?}, AWS {:?}",
                at + 1,
                got.get(at),
                want.get(at)
            )
        })
    });
    Verdict {
        outcome: (!differs.is_empty()).then(|| differs.join("; ")),
        history,
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

#[derive(Default)]
struct Tally {
    outcomes: (usize, usize),
    histories: (usize, usize),
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        return "n/a".into();
    }
    format!("{:.1}%", 100.0 * n as f64 / of as f64)
}

/// The README's table: one row per area, then the total.
fn table(areas: &BTreeMap<String, Tally>) -> String {
    let mut t = String::from("| area | outcomes agreeing | histories agreeing |\n|---|---|---|\n");
    let (mut o, mut h) = ((0, 0), (0, 0));
    for (area, tally) in areas {
        let (ao, ah) = (tally.outcomes, tally.histories);
        t.push_str(&format!(
            "| {area} | {}/{} | {}/{} |\n",
            ao.0, ao.1, ah.0, ah.1
        ));
        o = (o.0 + ao.0, o.1 + ao.1);
        h = (h.0 + ah.0, h.1 + ah.1);
    }
    t.push_str(&format!(
        "| **all** | **{}/{} ({})** | **{}/{} ({})** |\n",
        o.0,
        o.1,
        pct(o.0, o.1),
        h.0,
        h.1,
        pct(h.0, h.1)
    ));
    t
}

#[test]
fn the_engine_agrees_with_aws_case_by_case() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root())
        .expect("tests/conformance")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut areas: BTreeMap<String, Tally> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut report = String::new();
    let mut names = std::collections::BTreeSet::new();
    for f in &files {
        let area = f.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let cases: Vec<Case> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let tally = areas.entry(area.clone()).or_default();
        for case in cases {
            let id = format!("{area}/{}", case.name);
            assert!(names.insert(id.clone()), "two cases named {id}");
            assert!(
                case.source.starts_with("https://docs.aws.amazon.com/")
                    || case.source.starts_with("recorded on AWS:"),
                "{}: a source is an AWS documentation page or a recording from AWS",
                case.name
            );
            let v = judge(&case);
            tally.outcomes.1 += 1;
            if v.outcome.is_none() {
                tally.outcomes.0 += 1;
            }
            if let Some(h) = &v.history {
                tally.histories.1 += 1;
                if h.is_none() {
                    tally.histories.0 += 1;
                }
            }
            let problems: Vec<&String> =
                v.outcome.iter().chain(v.history.iter().flatten()).collect();
            match (&case.known_difference, problems.is_empty()) {
                (None, false) => {
                    unexpected.push(format!("{area}/{}: {problems:?}", case.name));
                }
                (Some(why), false) => {
                    report.push_str(&format!("known  {area}/{}: {why}: {problems:?}\n", case.name))
                }
                (Some(_), true) => unexpected.push(format!(
                    "{area}/{}: agrees with AWS now; remove its known_difference (and the README's line)",
                    case.name
                )),
                (None, true) => {}
            }
        }
    }
    let t = table(&areas);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/conformance.txt");
    let _ = std::fs::write(&out, format!("{t}\n{report}"));
    println!("conformance with AWS Step Functions, per area:\n{t}\n{report}");
    assert!(
        unexpected.is_empty(),
        "{} cases differ from AWS:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/local.md"))
            .unwrap();
    assert!(
        readme.contains(&t),
        "docs/local.md's conformance table is not the one measured; it is:\n{t}"
    );
}
