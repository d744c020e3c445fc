//! `validate`: check stacks' definitions (and standalone definition files) before any API call.
//! `plan` and `up` run the same checks and refuse to go on when one fails.

use super::Setup;
use super::definitions;
use crate::error::{Error, Result};
use crate::manifest::Stack;
use crate::manifest::refs;
use crate::options::{Format, Global, Selection, VarArgs};
use crate::options::{OutputArgs, Run};
use crate::validate::{self, Finding, Severity, permissions};
use clap::Args;
use serde_json::{Value, json};
use std::path::PathBuf;

/// The template file a state machine's definition comes from, for findings.
fn template_file(stack: &Stack, id: &str) -> String {
    stack.resources[id]
        .attrs
        .get("definition")
        .and_then(|d| d.get("template"))
        .and_then(|t| t.as_str())
        .map(|t| {
            format!(
                "templates/{}",
                refs::resolve(&json!(t), &stack.scope(&Default::default(), None))
                    .as_str()
                    .unwrap_or(t)
            )
        })
        .unwrap_or_else(|| stack.file.clone())
}

/// The resource a `${id.attr}` value refers to.
fn referenced(v: Option<&Value>) -> Option<String> {
    match refs::parse_refs(v?.as_str()?).ok()?.as_slice() {
        [refs::Ref::Output { resource, .. }] => Some(resource.clone()),
        _ => None,
    }
}

/// What the manifest grants a state machine's role: its name, the stack's policies attached to
/// it with their statements, and the AWS-managed policy ARNs attached.
struct Grants {
    role_name: String,
    policies: Vec<(String, Vec<Value>)>,
    managed: Vec<String>,
}

fn grants(stack: &Stack, machine: &str) -> Option<Grants> {
    let role = referenced(stack.resources[machine].attrs.get("role_arn"))?;
    let role_name = stack
        .resources
        .get(&role)?
        .attrs
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or(&role)
        .to_string();
    let mut g = Grants {
        role_name,
        policies: vec![],
        managed: vec![],
    };
    for d in stack
        .resources
        .values()
        .filter(|d| d.kind.name() == "iam_role_policy_attachment")
    {
        if referenced(d.attrs.get("role")).as_deref() != Some(role.as_str()) {
            continue;
        }
        match referenced(d.attrs.get("policy_arn")) {
            Some(p) => {
                let statements = stack
                    .resources
                    .get(&p)
                    .and_then(|d| d.attrs.get("statement"))
                    .and_then(|s| s.as_array())
                    .cloned()
                    .unwrap_or_default();
                g.policies.push((p, statements));
            }
            None => g.managed.push(
                d.attrs
                    .get("policy_arn")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
                    .to_string(),
            ),
        }
    }
    Some(g)
}

async fn place_of(setup: &Setup, stack: &Stack) -> permissions::Place {
    match setup
        .store
        .load(&stack.name, &setup.env)
        .await
        .ok()
        .and_then(|st| st.target)
    {
        Some(t) => permissions::Place {
            partition: crate::aws::partition_of(&t.region).into(),
            region: t.region,
            account: t.account_id,
            ..Default::default()
        },
        None => permissions::Place::default(),
    }
}

/// The findings for a loaded stack's definitions: the language, then the role's permissions
/// (a missing action is an error, a granted action no state uses a warning).
pub fn check_stack(stack: &Stack, defs: &[(String, Value)]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (id, def) in defs {
        let d = Checked {
            stack,
            id,
            file: template_file(stack, id),
        };
        let mut language = validate::check(def, &d.file, Some(&stack.name));
        for f in &mut language {
            f.pointer = d.within(&f.pointer);
        }
        // a broken definition says nothing reliable about which grants it uses
        let broken = language.iter().any(|f| f.severity == Severity::Error);
        out.extend(language);
        out.extend(d.name());
        d.permissions(def, broken, &mut out);
    }
    out.extend(wildcards(stack));
    place_all(stack, &mut out);
    out
}

/// A policy statement of the manifest that grants on `*` an action AWS lets it grant on a
/// resource's ARN: a warning naming that ARN. Resource policies (a statement with a
/// `Principal`) are the resource's own and not looked at.
fn wildcards(stack: &Stack) -> Vec<Finding> {
    let mut out = Vec::new();
    for (id, d) in &stack.resources {
        let Some(statements) = d.attrs.get("statement").and_then(|s| s.as_array()) else {
            continue;
        };
        for (i, st) in statements.iter().enumerate() {
            let star = match &st["Resource"] {
                Value::String(r) => r == "*",
                Value::Array(rs) => rs.iter().any(|r| r == "*"),
                _ => false,
            };
            if !star || st["Effect"] != "Allow" || st.get("Principal").is_some() {
                continue;
            }
            for action in permissions::granted_actions(std::slice::from_ref(st)) {
                let arns = validate::arns::formats(&action);
                if arns.is_empty() {
                    continue;
                }
                let msg = format!(
                    "policy `{id}` grants {action} on \"*\": AWS lets it be granted on {}; name it in Resource",
                    arns.join(" or ")
                );
                let at = format!("/resources/{id}/statement/{i}/Resource");
                out.push(Finding::new(
                    Severity::Warning,
                    Some(&stack.name),
                    &stack.file,
                    None,
                    &at,
                    msg,
                ));
            }
        }
    }
    out
}

/// One state machine definition of a stack being checked.
struct Checked<'a> {
    stack: &'a Stack,
    id: &'a str,
    /// The file its definition is in (the manifest for one written there).
    file: String,
}

impl Checked<'_> {
    /// A pointer into the definition as the file names it: a definition written in the
    /// manifest itself is at `/resources/<id>/definition`.
    fn within(&self, pointer: &str) -> String {
        if self.file == self.stack.file {
            format!("/resources/{}/definition{pointer}", self.id)
        } else {
            pointer.to_string()
        }
    }

    fn finding(
        &self,
        sev: Severity,
        state: Option<&str>,
        file: &str,
        at: &str,
        msg: String,
    ) -> Finding {
        Finding::new(sev, Some(&self.stack.name), file, state, at, msg)
    }

    /// A state machine name that AWS would refuse.
    fn name(&self) -> Option<Finding> {
        let attrs = &self.stack.resources[self.id].attrs;
        let name = attrs.get("name")?.as_str().filter(|n| !n.contains("${"))?;
        let ok = !name.is_empty()
            && name.len() <= 80
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let msg = format!("state machine name {name:?}: 1 to 80 letters, digits, '-' or '_'");
        let at = format!("/resources/{}/name", self.id);
        (!ok).then(|| self.finding(Severity::Error, None, &self.stack.file, &at, msg))
    }

    /// The actions its tasks need against what the role's policies grant: each missing one
    /// an error, each granted and unused one a warning.
    fn permissions(&self, def: &Value, broken: bool, out: &mut Vec<Finding>) {
        let (stack, id) = (self.stack, self.id);
        let needs = permissions::derive(def, &permissions::Place::default());
        let role_at = format!("/resources/{id}/role_arn");
        let Some(g) = grants(stack, id) else {
            let msg = "the role is not declared in this stack: its permissions are not checked";
            out.push(self.finding(Severity::Warning, None, &stack.file, &role_at, msg.into()));
            return;
        };
        let granted: Vec<(String, String)> = g
            .policies
            .iter()
            .flat_map(|(p, st)| {
                let actions = permissions::granted_actions(st).into_iter();
                actions.map(move |a| (p.clone(), a))
            })
            .collect();
        if !g.managed.is_empty() {
            let msg = format!(
                "role `{}` has AWS managed policies attached ({}): the actions they grant are not checked",
                g.role_name,
                g.managed.join(", ")
            );
            out.push(self.finding(Severity::Warning, None, &stack.file, &role_at, msg));
        } else {
            let mut reported = std::collections::BTreeSet::new();
            for n in &needs {
                if !granted.iter().any(|(_, a)| permissions::glob(a, &n.action))
                    && reported.insert((n.state.clone(), n.action.clone()))
                {
                    let msg = format!(
                        "the role `{}` is not granted {}, which this task needs (on {})",
                        g.role_name, n.action, n.resource
                    );
                    let at = self.within(&n.pointer);
                    out.push(self.finding(Severity::Error, Some(&n.state), &self.file, &at, msg));
                }
            }
        }
        let mut unused = std::collections::BTreeSet::new();
        for (p, a) in granted.iter().filter(|_| !broken) {
            if !needs.iter().any(|n| permissions::glob(a, &n.action))
                && unused.insert((p.clone(), a.clone()))
            {
                let msg = format!(
                    "policy `{p}` grants {a} to the role `{}`, and no state of `{id}` uses it",
                    g.role_name
                );
                let at = format!("/resources/{p}/statement");
                out.push(self.finding(Severity::Warning, None, &stack.file, &at, msg));
            }
        }
    }
}

/// A JSON pointer as the manifest's spans name the place (`/a/b~1c/0` → `a.b/c[0]`).
fn toml_path(pointer: &str) -> String {
    let mut path = String::new();
    for seg in pointer.trim_start_matches('/').split('/') {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{seg}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&seg);
        }
    }
    path
}

/// Maps each finding's pointer to the line and column where it is written: in the template
/// for a definition, in the manifest for a resource.
fn place_all(stack: &Stack, findings: &mut [Finding]) {
    let mut texts: std::collections::BTreeMap<String, Option<std::sync::Arc<str>>> =
        Default::default();
    for f in findings.iter_mut() {
        if f.file == stack.file {
            let path = toml_path(&f.pointer);
            let spans = stack.spans();
            let value = spans.value_near(&path);
            let at = f
                .expr_char
                .and_then(|n| validate::locate::in_expression(&spans.text, value.clone(), n))
                .map_or(value, |at| at..at + 1);
            f.place(&spans.text, at);
            continue;
        }
        let text = texts.entry(f.file.clone()).or_insert_with(|| {
            std::fs::read_to_string(stack.root().join(&f.file))
                .ok()
                .map(Into::into)
        });
        let Some(text) = text.clone() else { continue };
        if let Some((key, value)) = validate::locate::locate(&text, &f.pointer) {
            // a scalar is what is wrong; an object or array is named by its key
            let scalar = !matches!(text.as_bytes().get(value.start), Some(b'{' | b'['));
            let span = match f
                .expr_char
                .and_then(|n| validate::locate::in_expression(&text, value.clone(), n))
            {
                Some(at) => at..at + 1,
                None if scalar => value,
                None => key,
            };
            f.place(&text, span);
        }
    }
}

/// A state machine's name as deployed (the env's prefix included), `*` when a reference
/// makes it.
fn machine_name(stack: &Stack, id: &str) -> String {
    match stack.resources[id]
        .attrs
        .get("name")
        .and_then(|n| n.as_str())
    {
        Some(n) if !n.contains("${") => n.to_string(),
        _ => "*".into(),
    }
}

/// `deploy policy`: the least-privilege policy each state machine of a stack needs.
pub async fn policy(g: &Global, stack: &str, machine: Option<&str>, vars: &VarArgs) -> Result<()> {
    let setup = Setup::new(g)?;
    let vars = &VarArgs {
        placeholders: true,
        ..vars.clone()
    };
    let (s, defs) = definitions(&setup, stack, vars, None).await?;
    let place = place_of(&setup, &s).await;
    let chosen: Vec<&(String, Value)> = defs
        .iter()
        .filter(|(id, _)| machine.is_none_or(|m| m == id))
        .collect();
    if chosen.is_empty() {
        return Err(Error::user(format!(
            "stack `{stack}` has no state machine{}",
            machine.map(|m| format!(" `{m}`")).unwrap_or_default()
        )));
    }
    for (id, def) in chosen {
        if defs.len() > 1 {
            outln!("// {id}");
        }
        let place = permissions::Place {
            machine: machine_name(&s, id),
            ..place.clone()
        };
        let doc = permissions::least_privilege(&permissions::derive(def, &place));
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap());
    }
    Ok(())
}

/// Prints findings; an error among them becomes the command's error (`gate`: that of a
/// `plan` or `up`, which then deploys nothing). In JSON, the one document holds them all.
pub fn report(findings: &[Finding], format: Format, gate: bool) -> Result<()> {
    crate::views::checks::findings(findings, format);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if errors == 0 {
        return Ok(());
    }
    let e = match gate {
        true => Error::user(format!(
            "{errors} definition error(s): nothing was deployed"
        ))
        .help("fix the definitions (deploy validate lists every finding)"),
        false => Error::user(format!("{errors} definition error(s)"))
            .help("fix each finding marked ERROR, then validate again"),
    };
    Err(Error {
        in_output: format == Format::Json,
        ..e
    })
}

/// Validation as `plan` and `up` run it, on the stacks they loaded and the states they read:
/// errors stop them, warnings are printed.
pub fn gate(stacks: &[Stack], recorded: &[crate::state::StackState]) -> Result<()> {
    let mut findings = Vec::new();
    for (s, st) in stacks.iter().zip(recorded) {
        let defs = super::rendered(s, st, None)?;
        findings.extend(check_stack(s, &defs));
    }
    report(&findings, Format::Text, true)
}

/// The `--var` pairs a stack declares (several stacks share one command line).
fn stack_vars(s: &Stack, vars: &VarArgs) -> VarArgs {
    let pairs = vars
        .vars
        .iter()
        .filter(|p| {
            s.vars
                .contains_key(p.split_once('=').map(|(k, _)| k.trim()).unwrap_or(p))
        })
        .cloned()
        .collect();
    VarArgs {
        vars: pairs,
        var_files: vars.var_files.clone(),
        placeholders: vars.placeholders,
    }
}

pub async fn validate(
    g: &Global,
    select: &Selection,
    files: &[PathBuf],
    vars: &VarArgs,
    format: Format,
) -> Result<()> {
    let mut findings = Vec::new();
    for f in files {
        let display = f.display().to_string();
        let text = std::fs::read_to_string(f)
            .map_err(|e| Error::user(format!("cannot read: {e}")).at(display.clone()))?;
        let parsed = crate::template::parse_definition(&display, &text)?;
        for w in parsed.warnings {
            eprintln!("WARNING {w}");
        }
        findings.extend(validate::check(&parsed.value, &display, None));
    }
    if files.is_empty() || !select.stacks.is_empty() || select.all {
        let setup = Setup::new(g)?;
        // Checking a definition needs no real value for a required variable.
        let vars = &VarArgs {
            placeholders: true,
            ..vars.clone()
        };
        let select = if select.stacks.is_empty() && !select.all {
            Selection {
                stacks: vec![],
                all: true,
            }
        } else {
            select.clone()
        };
        for s in setup.load(&select, vars)? {
            let (_, defs) = definitions(&setup, &s.name, &stack_vars(&s, vars), None).await?;
            findings.extend(check_stack(&s, &defs));
        }
    }
    let result = report(&findings, format, false);
    if result.is_ok() && format == Format::Text {
        outln!("{} definition finding(s), no errors.", findings.len());
    }
    result
}

/// `deploy validate`'s command line.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub select: Selection,
    /// A standalone definition file to check (repeatable; no stack, no AWS)
    #[arg(long = "file", value_name = "F.asl.json")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for ValidateArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        validate(g, &self.select, &self.files, &self.vars, self.out.format).await
    }
}

/// `deploy policy`'s command line.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// The stack whose state machine's policy to derive
    pub stack: String,
    /// Which state machine, when the stack has several (resource id)
    #[arg(long)]
    pub machine: Option<String>,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for PolicyArgs {
    async fn run(&self, g: &Global) -> Result<()> {
        policy(g, &self.stack, self.machine.as_deref(), &self.vars).await
    }
}
