//! `validate`: check stacks' definitions (and standalone definition files) before any API call.
//! `plan` and `up` run the same checks and refuse to go on when one fails.

use super::Setup;
use super::info::definitions;
use crate::cli::{Format, Global, Selection, VarArgs};
use crate::error::{Error, Result};
use crate::manifest::Stack;
use crate::validate::{self, Finding, Severity};
use std::path::PathBuf;

/// The findings for a loaded stack's definitions.
pub fn check_stack(stack: &Stack, defs: &[(String, serde_json::Value)]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (id, def) in defs {
        let file = stack.resources[id]
            .attrs
            .get("definition")
            .and_then(|d| d.get("template"))
            .and_then(|t| t.as_str())
            .map(|t| {
                format!(
                    "templates/{}",
                    crate::manifest::refs::resolve(&serde_json::json!(t), &stack.scope(&Default::default(), None)).as_str().unwrap_or(t)
                )
            })
            .unwrap_or_else(|| stack.file.clone());
        out.extend(validate::check(def, &file, Some(&stack.name)));
    }
    out
}

/// Prints findings; an error among them becomes the command's error.
pub fn report(findings: &[Finding], format: Format) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::json!({"findings": findings})),
        Format::Text => findings.iter().for_each(|f| eprintln!("{f}")),
    }
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    if errors > 0 {
        return Err(Error::user(format!("{errors} definition error(s): nothing was deployed"))
            .help("fix the definitions (deploy validate lists every finding)"));
    }
    Ok(())
}

/// Validation as `plan` and `up` run it: errors stop them, warnings are printed.
pub fn gate(setup: &Setup, stacks: &[Stack], vars: &VarArgs) -> Result<()> {
    let mut findings = Vec::new();
    for s in stacks {
        let (_, defs) = definitions(setup, &s.name, &stack_vars(s, vars))?;
        findings.extend(check_stack(s, &defs));
    }
    report(&findings, Format::Text)
}

/// The `--var` pairs a stack declares (several stacks share one command line).
fn stack_vars(s: &Stack, vars: &VarArgs) -> VarArgs {
    let pairs = vars.vars.iter().filter(|p| s.vars.contains_key(p.split_once('=').map(|(k, _)| k.trim()).unwrap_or(p))).cloned().collect();
    VarArgs { vars: pairs, var_files: vars.var_files.clone(), placeholders: vars.placeholders }
}

pub fn validate(g: &Global, select: &Selection, files: &[PathBuf], vars: &VarArgs, format: Format) -> Result<()> {
    let mut findings = Vec::new();
    for f in files {
        let display = f.display().to_string();
        let text = std::fs::read_to_string(f).map_err(|e| Error::user(format!("cannot read: {e}")).at(display.clone()))?;
        let parsed = crate::template::parse_definition(&display, &text)?;
        for w in parsed.warnings {
            eprintln!("WARNING {w}");
        }
        findings.extend(validate::check(&parsed.value, &display, None));
    }
    if files.is_empty() || !select.stacks.is_empty() || select.all {
        let setup = Setup::new(g)?;
        // Checking a definition needs no real value for a required variable.
        let vars = &VarArgs { placeholders: true, ..vars.clone() };
        let select = if select.stacks.is_empty() && !select.all { Selection { stacks: vec![], all: true } } else { select.clone() };
        for s in setup.load(&select, vars)? {
            let (_, defs) = definitions(&setup, &s.name, &stack_vars(&s, vars))?;
            findings.extend(check_stack(&s, &defs));
        }
    }
    let result = report(&findings, format);
    if result.is_ok() && format == Format::Text {
        println!("{} definition finding(s), no errors.", findings.len());
    }
    result
}
