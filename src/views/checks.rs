//! What checks found, for people and CI: validation findings (with the source line and a
//! caret), scenario results of `deploy test` (and as JUnit XML), mock-configuration cases.

use crate::engine::Execution;
use crate::options::Format;
use crate::validate::Finding;
use serde_json::json;

/// Validation findings: one document for CI, else each on standard error.
pub fn findings(findings: &[Finding], format: Format) {
    match format {
        Format::Json => {
            let errors = findings
                .iter()
                .filter(|f| f.severity == crate::validate::Severity::Error)
                .count();
            let doc = json!({"findings": findings, "errors": errors, "warnings": findings.len() - errors});
            outln!("{}", super::json_doc(doc))
        }
        Format::Text | Format::Markdown => {
            findings.iter().for_each(|f| eprintln!("{}", finding(f)))
        }
    }
}

/// A validation finding: with the source lines and a caret when its place is known.
pub fn finding(f: &crate::validate::Finding) -> String {
    use annotate_snippets::Level;
    let Some(sn) = &f.snippet else {
        let color = crate::output::color_stderr();
        let text = f.to_string();
        return match text.split_once(' ') {
            Some((sev, rest)) => {
                let style = if sev == "ERROR" {
                    crate::output::style::ERROR
                } else {
                    crate::output::style::WARN
                };
                format!("{} {rest}", crate::output::paint(color, style, sev))
            }
            None => text,
        };
    };
    let level = match f.severity {
        crate::validate::Severity::Error => Level::ERROR,
        crate::validate::Severity::Warning => Level::WARNING,
    };
    let title = match &f.stack {
        Some(s) => format!("{} (stack {s})", f.message),
        None => f.message.clone(),
    };
    crate::output::render_snippet(level, &title, sn, None, crate::output::color_stderr())
}

/// One scenario of `deploy test`: ok or FAIL with what differed; for CI, with its history.
pub fn scenario(
    stack: &str,
    name: &str,
    description: &str,
    exec: &Execution,
    problems: &[String],
    wall: f64,
    format: Format,
) {
    match format {
        Format::Json => outln!(
            "{}",
            json!({"scenario": name, "passed": problems.is_empty(), "problems": problems, "status": exec.status.name(),
                   "path": exec.path, "transitions": exec.path.len(), "virtual_seconds": exec.seconds, "wall_seconds": wall, "events": exec.events})
        ),
        Format::Text | Format::Markdown => {
            let mark = if problems.is_empty() { "ok  " } else { "FAIL" };
            let (states, events) = (exec.path.len(), exec.events.len());
            outln!(
                "{mark} {stack}/{name}: {description} ({states} states, {events} events, {:.0} s of virtual time)",
                exec.seconds
            );
            for p in problems {
                outln!("       {p}");
            }
        }
    }
}

/// How many scenarios passed and failed.
pub fn scenarios_tally(passed: usize, failed: usize, format: Format) {
    if format == Format::Text {
        outln!("{passed} passed, {failed} failed");
    }
}

/// One test case of a Step Functions Local mock configuration: how it ended, and its path.
pub fn mock_case(case: &str, exec: &Execution, format: Format) {
    let status = exec.status.name();
    match format {
        Format::Json => outln!(
            "{}",
            json!({"test_case": case, "status": status, "output": exec.output, "error": exec.error, "cause": exec.cause, "path": exec.path, "events": exec.events})
        ),
        Format::Text | Format::Markdown => {
            let end = match &exec.error {
                Some(e) => format!("{e}: {}", exec.cause.clone().unwrap_or_default()),
                None => format!("output {}", exec.output),
            };
            outln!(
                "{case}: {status}, {end}\n  path: {}",
                exec.path.join(" -> ")
            );
        }
    }
}

/// One scenario's result, for the JUnit report.
pub struct Case {
    pub name: String,
    pub description: String,
    pub seconds: f64,
    pub problems: Vec<String>,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The results as JUnit XML, as CI systems read it (GitHub, GitLab, Jenkins): one suite for the
/// stack, one test case per scenario, a failure with what differed.
pub fn junit_xml(stack: &str, cases: &[Case], coverage: Option<f64>) -> String {
    let failures = cases.iter().filter(|c| !c.problems.is_empty()).count();
    let time: f64 = cases.iter().map(|c| c.seconds).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x += &format!(
        "<testsuites name=\"deploy test\" tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">\n",
        cases.len()
    );
    x += &format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time:.3}\">\n",
        xml_escape(stack),
        cases.len()
    );
    if let Some(p) = coverage {
        x += &format!("    <properties><property name=\"coverage\" value=\"{p}\"/></properties>\n");
    }
    for c in cases {
        x += &format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(stack),
            xml_escape(&c.name),
            c.seconds
        );
        match c.problems.first() {
            None => {
                x += &format!(
                    "><system-out>{}</system-out></testcase>\n",
                    xml_escape(&c.description)
                )
            }
            Some(first) => {
                x += &format!(
                    ">\n      <failure message=\"{}\" type=\"ScenarioFailed\">{}</failure>\n    </testcase>\n",
                    xml_escape(first),
                    xml_escape(&c.problems.join("\n"))
                );
            }
        }
    }
    x += "  </testsuite>\n</testsuites>\n";
    x
}

/// What the scenarios of a stack reached: per definition they ran (with the scenarios that
/// ran it), and in all.
#[derive(serde::Serialize)]
pub struct Covered {
    pub covered: usize,
    pub total: usize,
    pub percent: f64,
    pub machines: Vec<(Vec<String>, crate::engine::coverage::Coverage)>,
}

/// `deploy test --coverage`: every state, rule and path, reached (by which scenarios) or not.
pub fn coverage(c: &Covered, format: Format) {
    if format == Format::Json {
        let machines: Vec<_> = c
            .machines
            .iter()
            .map(|(scenarios, m)| json!({"scenarios": scenarios, "covered": m.covered, "total": m.total, "percent": m.percent, "items": m.items}))
            .collect();
        let doc = json!({"coverage": {"covered": c.covered, "total": c.total, "percent": c.percent, "machines": machines}});
        outln!("{doc}");
        return;
    }
    for (scenarios, m) in &c.machines {
        if c.machines.len() > 1 {
            outln!("the definition run by {}:", scenarios.join(", "));
        }
        for i in &m.items {
            match i.covered() {
                true => outln!("  + {}  ({})", i.label, i.by.join(", ")),
                false => outln!("  - {}  (not reached)", i.label),
            }
        }
    }
    outln!(
        "coverage: {} of {} states, rules and paths reached ({}%)",
        c.covered,
        c.total,
        c.percent
    );
}
