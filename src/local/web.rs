//! The page `deploy local` serves on `GET /` (the API stays on `POST /`): its state machines
//! with their versions and aliases, their executions (newest first, by status), and one page
//! per execution with the definition drawn and the path taken, its events, and each state's
//! input, output, error and cause. Server-rendered HTML; the little script (built in, like
//! the style) shows times in the viewer's zone, refreshes a running execution in place and
//! stops one through the API the SDKs call. Every value is HTML-escaped.

use super::store::{Exec, Machine, Store};
use super::{Server, history};
use crate::diagram::{asl, svg};
use serde_json::Value;
use std::fmt::Write;
use std::sync::Arc;

const SCRIPT: &str = include_str!("web/app.js");
const STYLE: &str = include_str!("web/app.css");
const STATUSES: &[&str] = &["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];

/// A page's answer: status, content type, body.
pub(super) type Page = (u16, &'static str, String);

/// `GET path?query`: the page, or None for a path that is not one.
pub(super) fn get(server: &Arc<Server>, path: &str, query: &str) -> Option<Page> {
    let param = |k: &str| param(query, k);
    let parts: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|p| decode(p))
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let store = server.store.lock().unwrap();
    let html = |title: &str, body: String| (200, "text/html; charset=utf-8", layout(title, &body));
    Some(match parts.as_slice() {
        [""] => html("State machines", index(&store)),
        ["assets", "app.js"] => (200, "text/javascript; charset=utf-8", SCRIPT.into()),
        ["assets", "app.css"] => (200, "text/css; charset=utf-8", STYLE.into()),
        ["machines", name] => {
            let m = store.machines.values().find(|m| m.name == *name)?;
            html(name, machine(&store, m, param("status").as_deref()))
        }
        ["executions", machine, name] => {
            let arn = exec_arn(server, machine, name);
            let e = store.executions.get(&arn)?;
            let m = store.machines.get(&e.machine_arn);
            let live = live(e, m, &server.region) + &map_runs(&store, e);
            if param("part").as_deref() == Some("live") {
                (200, "text/html; charset=utf-8", live)
            } else {
                html(name, execution(e, live))
            }
        }
        _ => return None,
    })
}

/// A page for a path that names nothing.
pub(super) fn not_found(path: &str) -> Page {
    let body = format!(
        "<h1>Not found</h1><p>Nothing at <code>{}</code>. <a href=\"/\">State machines</a></p>",
        esc(path)
    );
    (404, "text/html; charset=utf-8", layout("Not found", &body))
}

fn exec_arn(server: &Server, machine: &str, name: &str) -> String {
    format!(
        "arn:aws:states:{}:{}:execution:{machine}:{name}",
        server.region, server.account
    )
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · deploy local</title><link rel=\"stylesheet\" href=\"/assets/app.css\">\
         <script src=\"/assets/app.js\" defer></script></head><body>\
         <header><a href=\"/\">deploy local</a> <span>Step Functions</span></header>\
         <main>{body}</main></body></html>",
        esc(title)
    )
}

/// Every state machine: type, versions, aliases, executions per status.
fn index(store: &Store) -> String {
    let mut counts = std::collections::HashMap::<&str, [usize; 5]>::new();
    for e in store.executions.iter() {
        let at = STATUSES.iter().position(|s| *s == e.status).unwrap_or(0);
        counts.entry(e.machine_arn.as_str()).or_default()[at] += 1;
    }
    let mut rows = String::new();
    for m in store.machines.values() {
        let c = counts.get(m.arn.as_str()).copied().unwrap_or_default();
        let runs: Vec<String> = STATUSES
            .iter()
            .zip(c)
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{} {n}", badge(s)))
            .collect();
        let _ = write!(
            rows,
            "<tr><td><a href=\"/machines/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            encode(&m.name),
            esc(&m.name),
            esc(&m.kind),
            m.versions.len(),
            esc(&m.aliases.keys().cloned().collect::<Vec<_>>().join(", ")),
            when(m.created),
            runs.join(" ")
        );
    }
    if rows.is_empty() {
        return "<h1>State machines</h1><p class=\"empty\">None yet: create one with <code>deploy up</code> or the SDK, pointed here by <code>AWS_ENDPOINT_URL_SFN</code>.</p>".into();
    }
    format!(
        "<h1>State machines</h1><table><thead><tr><th>Name</th><th>Type</th><th>Versions</th>\
         <th>Aliases</th><th>Created</th><th>Executions</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

/// One machine: its definition drawn, versions and aliases, executions (newest first).
fn machine(store: &Store, m: &Machine, status: Option<&str>) -> String {
    let drawing = svg::render(&asl::from_definition(&m.name, &m.parsed));
    let mut out = format!(
        "<h1>{}</h1><p class=\"meta\">{} · created {} · <code>{}</code></p><div class=\"graph\">{drawing}</div>",
        esc(&m.name),
        esc(&m.kind),
        when(m.created),
        esc(&m.arn)
    );
    out += &versions(m);
    let filters: String = std::iter::once(("all", None))
        .chain(STATUSES.iter().map(|s| (*s, Some(*s))))
        .map(|(label, s)| {
            let href = s.map(|s| format!("?status={s}")).unwrap_or("?".into());
            let on = if s == status {
                " aria-current=\"true\""
            } else {
                ""
            };
            format!("<a href=\"{href}\"{on}>{label}</a>")
        })
        .collect();
    let _ = write!(
        out,
        "<h2>Executions</h2><nav class=\"filters\">{filters}</nav>"
    );
    let runs = store
        .executions
        .iter()
        .rev()
        .filter(|e| e.machine_arn == m.arn && status.is_none_or(|s| e.status == s));
    let mut rows = String::new();
    for e in runs {
        let _ = write!(
            rows,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            execution_path(&m.name, &e.name),
            esc(&e.name),
            badge(e.status),
            when(e.started),
            duration(e)
        );
    }
    if rows.is_empty() {
        out += "<p class=\"empty\">No executions.</p>";
    } else {
        let _ = write!(
            out,
            "<table class=\"executions\"><thead><tr><th>Name</th><th>Status</th><th>Started</th>\
             <th>Duration</th></tr></thead><tbody>{rows}</tbody></table>"
        );
    }
    out
}

fn versions(m: &Machine) -> String {
    let mut out = String::new();
    if !m.versions.is_empty() {
        out += "<h2>Versions</h2><ul>";
        for v in &m.versions {
            let n = v.arn.rsplit(':').next().unwrap_or_default();
            let _ = write!(
                out,
                "<li>{} · {} {}</li>",
                esc(n),
                when(v.created),
                esc(&v.description)
            );
        }
        out += "</ul>";
    }
    if !m.aliases.is_empty() {
        out += "<h2>Aliases</h2><ul>";
        for a in m.aliases.values() {
            let routes: Vec<String> = a
                .routing
                .iter()
                .map(|(v, w)| format!("version {} {w}%", v.rsplit(':').next().unwrap_or("")))
                .collect();
            let _ = write!(
                out,
                "<li>{} → {}</li>",
                esc(&a.name),
                esc(&routes.join(", "))
            );
        }
        out += "</ul>";
    }
    out
}

/// An execution's page: what does not change, and the part a running one refreshes.
fn execution(e: &Exec, live: String) -> String {
    let machine = e.machine_arn.rsplit(':').next().unwrap_or_default();
    format!(
        "<p class=\"crumbs\"><a href=\"/machines/{}\">{}</a> /</p><h1>{}</h1>\
         <p class=\"meta\"><code>{}</code> · started {}</p>\
         <div id=\"live\" data-status=\"{}\">{live}</div>",
        encode(machine),
        esc(machine),
        esc(&e.name),
        esc(&e.arn),
        when(e.started),
        e.status
    )
}

/// An execution's Map Runs: each one's counts and its child executions (the newest 100),
/// each a link to its own page.
fn map_runs(store: &Store, e: &Exec) -> String {
    let mut out = String::new();
    for ev in e
        .journal
        .events()
        .iter()
        .filter(|ev| ev.kind == "MapRunStarted")
    {
        let d = ev.details.value();
        let run = d["mapRunArn"].as_str().unwrap_or_default();
        let (ok, failed) = e.journal.map_run_ended(run);
        let _ = write!(
            out,
            "<section class=\"maprun\"><h2>Map Run</h2><p class=\"meta\"><code>{}</code> · {} of {} child executions succeeded, {} failed</p><table><tr><th>Child execution</th><th>Status</th><th>Started</th></tr>",
            esc(run),
            ok,
            d["total"].as_u64().unwrap_or(0),
            failed
        );
        let children = store
            .executions
            .iter()
            .rev()
            .filter(|c| c.map_run.as_deref() == Some(run));
        for c in children.take(100) {
            let machine = c.machine_arn.rsplit(':').next().unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                esc(&execution_path(machine, &c.name)),
                esc(&c.name),
                badge(c.status),
                when(c.started)
            );
        }
        out += "</table></section>";
    }
    out
}

/// A state's time in the execution: what it got, gave, and the error it ended with.
#[derive(Default)]
struct StateRun {
    name: String,
    kind: String,
    input: Option<String>,
    output: Option<String>,
    error: Option<(String, String)>,
    open: bool,
}

/// What a running execution's page refreshes: status, the drawing with the path taken, each
/// state's input and output, and the events.
fn live(e: &Exec, m: Option<&Machine>, region: &str) -> String {
    let events: Vec<Value> = e
        .journal
        .events()
        .iter()
        .map(|ev| history::event(ev, e.started, region))
        .collect();
    let runs = state_runs(&events);
    let mut out = format!(
        "<p class=\"status\">{} <span class=\"duration\">{}</span>",
        badge(e.status),
        duration(e)
    );
    if e.redrive.count > 0 {
        let _ = write!(
            out,
            " <span class=\"redriven\">· redriven {}×</span>",
            e.redrive.count
        );
    }
    if e.status == "RUNNING" {
        let _ = write!(
            out,
            " <button id=\"stop\" data-arn=\"{}\">Stop execution</button>",
            esc(&e.arn)
        );
    } else if e.not_redrivable().is_none() {
        let _ = write!(
            out,
            " <button id=\"redrive\" data-arn=\"{}\">Redrive execution</button>",
            esc(&e.arn)
        );
    }
    out += "</p>";
    if let (Some(err), cause) = (&e.error, &e.cause) {
        let _ = write!(
            out,
            "<p class=\"error\"><strong>{}</strong> {}</p>",
            esc(err),
            esc(cause.as_deref().unwrap_or(""))
        );
    }
    if let Some(m) = m {
        out += &drawing(m, &runs, e.status);
    }
    out += &io("Execution input", Some(&e.input));
    if e.output.is_some() {
        out += &io("Execution output", e.output.as_deref());
    }
    out += &states_table(&runs);
    out += &events_table(&events);
    out
}

fn drawing(m: &Machine, runs: &[StateRun], status: &str) -> String {
    let mut d = asl::from_definition(&m.name, &m.parsed);
    let entered: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    let failed = match status {
        "RUNNING" | "SUCCEEDED" => None,
        _ => runs
            .iter()
            .rev()
            .find(|r| r.open || r.error.is_some())
            .or(runs.last())
            .map(|r| r.name.clone()),
    };
    d.mark_execution(&entered, failed.as_deref());
    format!("<div class=\"graph\">{}</div>", svg::render(&d))
}

/// The states entered, in order, with what they got and gave and any error in them.
fn state_runs(events: &[Value]) -> Vec<StateRun> {
    let mut runs: Vec<StateRun> = Vec::new();
    for ev in events {
        let ty = ev["type"].as_str().unwrap_or_default();
        if let Some(kind) = ty.strip_suffix("StateEntered") {
            let d = &ev["stateEnteredEventDetails"];
            runs.push(StateRun {
                name: d["name"].as_str().unwrap_or_default().into(),
                kind: kind.into(),
                input: d["input"].as_str().map(str::to_string),
                open: true,
                ..Default::default()
            });
        } else if ty.ends_with("StateExited") {
            let d = &ev["stateExitedEventDetails"];
            let name = d["name"].as_str().unwrap_or_default();
            if let Some(r) = runs.iter_mut().rev().find(|r| r.open && r.name == name) {
                r.output = d["output"].as_str().map(str::to_string);
                r.open = false;
            }
        } else if ty.ends_with("Failed") || ty.ends_with("TimedOut") {
            let (error, cause) = error_of(ev);
            if let Some(r) = runs.iter_mut().rev().find(|r| r.open) {
                r.error = Some((error, cause));
            }
        }
    }
    runs
}

/// The error and cause of a failure event, whatever its details member is called.
fn error_of(ev: &Value) -> (String, String) {
    let details = ev
        .as_object()
        .and_then(|m| m.iter().find(|(k, _)| k.ends_with("EventDetails")))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let s = |k: &str| details[k].as_str().unwrap_or_default().to_string();
    (s("error"), s("cause"))
}

fn states_table(runs: &[StateRun]) -> String {
    if runs.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h2>States</h2><table class=\"states\"><thead><tr><th>State</th><th>Type</th><th>Input</th><th>Output</th><th>Error</th></tr></thead><tbody>",
    );
    for r in runs {
        let error = r
            .error
            .as_ref()
            .map(|(e, c)| format!("<strong>{}</strong> {}", esc(e), esc(c)))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr data-state=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"error\">{error}</td></tr>",
            esc(&r.name),
            esc(&r.name),
            esc(&r.kind),
            json_cell(r.input.as_deref()),
            json_cell(r.output.as_deref()),
        );
    }
    out + "</tbody></table>"
}

fn events_table(events: &[Value]) -> String {
    let mut out = String::from(
        "<h2>Events</h2><table class=\"events\"><thead><tr><th>#</th><th>Type</th><th>State</th><th>Time</th></tr></thead><tbody>",
    );
    for ev in events {
        let name = ev
            .as_object()
            .and_then(|m| m.iter().find(|(k, _)| k.ends_with("EventDetails")))
            .and_then(|(_, d)| d["name"].as_str())
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ev["id"],
            esc(ev["type"].as_str().unwrap_or_default()),
            esc(name),
            when(ev["timestamp"].as_f64().unwrap_or_default())
        );
    }
    out + "</tbody></table>"
}

/// A JSON value shown whole, pretty-printed, folded when it is long.
fn json_cell(text: Option<&str>) -> String {
    let Some(text) = text else {
        return String::new();
    };
    let pretty = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string());
    if pretty.len() <= 120 && !pretty.contains('\n') || pretty.len() <= 60 {
        return format!("<pre>{}</pre>", esc(&pretty));
    }
    format!(
        "<details><summary>{} bytes</summary><pre>{}</pre></details>",
        pretty.len(),
        esc(&pretty)
    )
}

fn io(title: &str, text: Option<&str>) -> String {
    format!(
        "<h2>{}</h2><div class=\"io\">{}</div>",
        esc(title),
        json_cell(text)
    )
}

fn badge(status: &str) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        status.to_ascii_lowercase(),
        esc(status)
    )
}

/// A time the script shows in the viewer's zone (UTC until it does).
fn when(epoch: f64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(epoch.max(0.0));
    let iso = humantime::format_rfc3339_millis(t).to_string();
    format!("<time datetime=\"{iso}\">{}</time>", iso.replace('T', " "))
}

fn duration(e: &Exec) -> String {
    let end = e.stopped.unwrap_or_else(super::api::now);
    let s = (end - e.started).max(0.0);
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.0} min {:.0} s", (s / 60.0).floor(), s % 60.0)
    }
}

pub(super) fn esc(s: &str) -> String {
    svg::esc(s).replace('\'', "&#39;")
}

/// What a path segment keeps as is: letters, digits and `-._~` (RFC 3986's unreserved).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path segment, percent-encoded.
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// The path of an execution's page: `/executions/MACHINE/NAME`.
pub fn execution_path(machine: &str, name: &str) -> String {
    format!("/executions/{}/{}", encode(machine), encode(name))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| decode(&v.replace('+', " ")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_long_json_is_folded_whole() {
        assert_eq!(esc("<script>'&\""), "&lt;script&gt;&#39;&amp;&quot;");
        let long = format!("{{\"k\": \"{}\"}}", "x".repeat(500));
        let cell = json_cell(Some(&long));
        assert!(cell.starts_with("<details>"), "{cell}");
        assert!(cell.contains(&"x".repeat(500)), "not truncated");
        assert_eq!(
            json_cell(Some("{\"a\":1}")),
            "<pre>{\n  &quot;a&quot;: 1\n}</pre>"
        );
    }

    #[test]
    fn states_get_their_input_output_and_error() {
        let events: Vec<Value> = serde_json::from_value(serde_json::json!([
            {"type": "PassStateEntered", "stateEnteredEventDetails": {"name": "A", "input": "{}"}},
            {"type": "PassStateExited", "stateExitedEventDetails": {"name": "A", "output": "{\"x\":1}"}},
            {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "B", "input": "{\"x\":1}"}},
            {"type": "TaskFailed", "taskFailedEventDetails": {"error": "Boom", "cause": "why"}},
            {"type": "ExecutionFailed", "executionFailedEventDetails": {"error": "Boom", "cause": "why"}}
        ]))
        .unwrap();
        let runs = state_runs(&events);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].output.as_deref(), Some("{\"x\":1}"));
        assert_eq!(runs[1].kind, "Task");
        assert_eq!(runs[1].error, Some(("Boom".into(), "why".into())));
        assert!(runs[1].open);
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            param("status=FAILED&x=1", "status").as_deref(),
            Some("FAILED")
        );
        assert_eq!(param("a=b%20c", "a").as_deref(), Some("b c"));
        assert_eq!(param("a=b", "status"), None);
    }
}
