//! The manifest loader: `stacks/<name>/stack.toml` → a checked [`Stack`]: variables resolved,
//! every reference pointing at something that exists, the dependency graph built and free of
//! cycles, tags and env naming applied, and every resource's attributes type-checked by its
//! kind (templates rendered with placeholders), all before any API call.

mod ahead;
pub mod claims;
mod env;
pub mod limits;
mod loader;
pub mod refactor;
pub mod refs;
mod render;
pub mod spans;
pub mod vars;

pub use ahead::Known;
pub use env::{DEFAULT_ENV, check_env, env_for_branch, env_name};

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::resources::{self, DynKind, Tags};
use refs::{MapScope, Ref, Scope};
use serde::Deserialize;
use serde_json::Value;
use spans::Spans;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
pub use vars::VarInputs;

/// The folder holding `stacks/` and `templates/`.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
}

impl Project {
    /// `explicit`, else the nearest folder upward from the current one that has `stacks/`.
    pub fn discover(explicit: Option<PathBuf>) -> Result<Project> {
        if let Some(root) = explicit {
            if !root.join("stacks").is_dir() {
                return Err(
                    Error::user(format!("{} has no stacks/ folder", root.display()))
                        .help("pass the folder that holds stacks/ and templates/"),
                );
            }
            return Ok(Project { root });
        }
        let cwd = std::env::current_dir()?;
        for dir in cwd.ancestors() {
            if dir.join("stacks").is_dir() {
                return Ok(Project {
                    root: dir.to_path_buf(),
                });
            }
        }
        Err(Error::user(format!("no stacks/ folder in {} or above it", cwd.display()))
            .help("run deploy inside a project (the folder with stacks/ and templates/), or pass --project DIR"))
    }

    pub fn stack_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(self.root.join("stacks"))?.flatten() {
            if e.path().join("stack.toml").is_file() {
                names.push(e.file_name().to_string_lossy().to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    pub fn load(&self, name: &str, inputs: &VarInputs, env: &str) -> Result<Stack> {
        let file = self.root.join("stacks").join(name).join("stack.toml");
        if !file.is_file() {
            let known = self.stack_names()?;
            return Err(Error::user(format!("unknown stack `{name}`"))
                .help(format!(
                    "the project's stacks (folders of {}/): {}",
                    self.rel(&self.root.join("stacks")),
                    known.join(", ")
                ))
                .suggest(name, known.iter().map(String::as_str)));
        }
        check_env(env)?;
        let src = crate::files::read_text(&file, &self.rel(&file))?;
        Stack::parse(
            name,
            &self.rel(&file),
            &src,
            inputs,
            env,
            &self.root.join("templates"),
        )
    }
}

/// The variable names a stack declares (for spreading `--var` over several stacks).
pub fn declared_vars(project: &Project, name: &str) -> Result<Vec<String>> {
    let file = project.root.join("stacks").join(name).join("stack.toml");
    let src = std::fs::read_to_string(&file).map_err(|_| {
        let known = project.stack_names().unwrap_or_default();
        Error::user(format!("unknown stack `{name}`"))
            .help(format!("stacks: {}", known.join(", ")))
            .suggest(name, known.iter().map(String::as_str))
    })?;
    Ok(parse_raw(&project.rel(&file), &src)?
        .vars
        .into_keys()
        .collect())
}

/// A stack's one-line description.
pub fn description(project: &Project, name: &str) -> String {
    let file = project.root.join("stacks").join(name).join("stack.toml");
    std::fs::read_to_string(&file)
        .ok()
        .and_then(|src| parse_raw("", &src).ok())
        .map(|r| r.description)
        .unwrap_or_default()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    #[serde(default)]
    description: String,
    #[serde(default)]
    vars: BTreeMap<String, vars::VarDecl>,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    resources: BTreeMap<String, toml::Table>,
    #[serde(default)]
    outputs: BTreeMap<String, toml::Value>,
    #[serde(default)]
    moved: Vec<refactor::Moved>,
    #[serde(default)]
    removed: Vec<refactor::Removed>,
}

fn parse_raw(file: &str, src: &str) -> Result<RawStack> {
    toml::from_str(src).map_err(|e| {
        let message = e.message().trim().to_string();
        let span = e.span().unwrap_or(0..0);
        let mut err = Error::user(format!("invalid manifest: {}", first_line(&message)));
        // serde's "unknown field `x`, expected one of `a`, `b`": suggest the nearest one.
        if let Some((typed, known)) = unknown_field(&message) {
            err = Error::user(format!("invalid manifest: unknown key `{typed}`"))
                .help(format!("the keys of a stack are: {}", known.join(", ")))
                .suggest(&typed, known.iter().map(String::as_str));
        }
        let label = if err.message.contains("unknown key") {
            "not a key of a stack".to_string()
        } else {
            first_line(&message).to_string()
        };
        Spans::new(file, src).at(err, span, label)
    })
}

/// "a iam_role" is "an iam_role".
fn a(kind: &str) -> String {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {kind}")
    } else {
        format!("a {kind}")
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`"), taken apart.
pub fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (typed, rest) = rest.split_once('`')?;
    let known = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((typed.to_string(), known))
}

/// One resource as declared, attributes still holding `${...}` references.
pub struct Decl {
    pub id: String,
    pub kind: &'static dyn DynKind,
    pub attrs: Value,
    /// Everything it depends on: what `depends_on` names and what it references.
    pub deps: BTreeSet<String>,
    /// What `depends_on` names.
    pub explicit: BTreeSet<String>,
    /// The outputs it references, per resource (`${bucket.arn}`: bucket → {arn}).
    pub refs: BTreeMap<String, BTreeSet<String>>,
}

pub struct Stack {
    pub name: String,
    pub file: String,
    pub env: String,
    pub vars: BTreeMap<String, Value>,
    pub resources: BTreeMap<String, Decl>,
    pub outputs: BTreeMap<String, Value>,
    pub graph: Graph,
    /// The values of the variables declared `sensitive = true`.
    pub secrets: Vec<String>,
    /// `[[moved]]`: ids renamed (or brought from another stack) without replacing anything.
    pub moved: Vec<refactor::Moved>,
    /// `[[removed]]`: ids no longer managed, forgotten (or deleted with `destroy = true`).
    pub removed: Vec<refactor::Removed>,
    templates: PathBuf,
    /// The project folder (`{ dir = ... }` sources are relative to it).
    root: PathBuf,
    /// Where each key and value of the manifest is written.
    spans: Spans,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("name", &self.name)
            .field("env", &self.env)
            .field("resources", &self.resources.keys())
            .finish()
    }
}

/// Warnings found while resolving (duplicate keys in a definition, ...).
pub type Warnings = Vec<String>;

impl Stack {
    /// Loads a manifest in named steps: the TOML, the variables, each resource declared
    /// (kind, dependencies, attributes, references), the graph, the outputs; then every
    /// resource type-checked with placeholders for what only AWS can tell.
    pub fn parse(
        name: &str,
        file: &str,
        src: &str,
        inputs: &VarInputs,
        env: &str,
        templates: &Path,
    ) -> Result<Stack> {
        let mut raw = parse_raw(file, src)?;
        let spans = Spans::new(file, src);
        expand_versions(&mut raw, &spans)?;
        let vars = vars::resolve(name, &raw.vars, inputs)
            .map_err(|e| undeclared_value(e, &raw, &spans))?;
        let l = Loader {
            name,
            env,
            raw: &raw,
            spans: &spans,
            vars: &vars,
        };
        let mut resources = BTreeMap::new();
        for (id, table) in &raw.resources {
            resources.insert(id.clone(), l.declare(id, table)?);
        }
        let graph = l.graph(&resources)?;
        let outputs = l.outputs()?;
        refactor::check(&spans, &raw.moved, &raw.removed, &resources)?;
        let secrets = raw
            .vars
            .iter()
            .filter(|(_, d)| d.sensitive)
            .filter_map(|(k, _)| vars.get(k))
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect();
        let stack = Stack {
            name: name.into(),
            file: file.into(),
            env: env.into(),
            secrets,
            moved: raw.moved.clone(),
            removed: raw.removed.clone(),
            vars,
            resources,
            outputs,
            graph,
            templates: templates.to_path_buf(),
            root: templates
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            spans,
        };
        stack.type_check()?;
        Ok(stack)
    }

    /// Every resource resolved and checked by its kind, with placeholders for what only AWS
    /// can tell; an error points at the value it quotes, else at the resource.
    fn type_check(&self) -> Result<()> {
        let scope = self.scope(&BTreeMap::new(), None);
        for d in self.resources.values() {
            self.resolve(&d.id, &scope).map_err(|e| {
                if e.location.is_some() {
                    return e;
                }
                let here = format!("resources.{}", d.id);
                let quoted = e.message.split('"').nth(1).filter(|q| !q.is_empty());
                let span = quoted
                    .and_then(|q| self.spans.find(&here, q))
                    .unwrap_or_else(|| self.spans.key_near(&here));
                let label = if quoted.is_some() {
                    "here"
                } else {
                    "in this resource"
                };
                let message = format!("resource `{}`: {}", d.id, e.message);
                self.spans.at(Error { message, ..e }, span, label)
            })?;
        }
        Ok(())
    }

    /// Where each key and value of the manifest is written.
    pub fn spans(&self) -> &Spans {
        &self.spans
    }

    /// The project folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// A variable without a value: shown where it is declared.
fn undeclared_value(e: Error, raw: &RawStack, spans: &Spans) -> Error {
    if e.help.is_none() || e.location.is_some() {
        return e;
    }
    match raw
        .vars
        .keys()
        .find(|k| e.message.contains(&format!("`{k}`")))
    {
        Some(k) => {
            let span = spans.key_near(&format!("vars.{k}"));
            spans.at(e, span, "declared here, without a default")
        }
        None => e,
    }
}

/// A state machine's `[versions]` table with an `alias` declares its alias too: resource
/// `<machine>_alias` (kind `sfn_state_machine_alias`), routed to the machine's newest version
/// and rolled out as the table says.
fn expand_versions(raw: &mut RawStack, spans: &Spans) -> Result<()> {
    let mut add = Vec::new();
    for (id, table) in &raw.resources {
        if table.get("kind").and_then(|k| k.as_str()) != Some("sfn_state_machine") {
            continue;
        }
        let Some(toml::Value::Table(v)) = table.get("versions") else {
            continue;
        };
        let Some(alias) = v.get("alias") else {
            continue;
        };
        let alias_id = format!("{id}_alias");
        if raw.resources.contains_key(&alias_id) {
            let e = Error::user(format!(
                "resource `{alias_id}` is declared, and is also the alias `{id}`'s [versions] declares"
            ))
            .help(format!("rename resource `{alias_id}`"));
            return Err(spans.at(
                e,
                spans.key_near(&format!("resources.{alias_id}")),
                "this name is taken",
            ));
        }
        let mut t = toml::Table::new();
        t.insert("kind".into(), "sfn_state_machine_alias".into());
        t.insert("alias".into(), alias.clone());
        t.insert("state_machine_arn".into(), format!("${{{id}.arn}}").into());
        t.insert(
            "version_arn".into(),
            format!("${{{id}.version_arn}}").into(),
        );
        for key in ["rollout", "percent", "interval", "alarms"] {
            if let Some(x) = v.get(key) {
                t.insert(key.into(), x.clone());
            }
        }
        add.push((alias_id, t));
    }
    raw.resources.extend(add);
    Ok(())
}

/// What loading one manifest needs at every step.
struct Loader<'a> {
    name: &'a str,
    env: &'a str,
    raw: &'a RawStack,
    spans: &'a Spans,
    vars: &'a BTreeMap<String, Value>,
}

impl Loader<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Stack> {
        Stack::parse(
            "t",
            "stacks/t/stack.toml",
            src,
            &VarInputs::default(),
            "default",
            Path::new("/nonexistent"),
        )
    }

    const OK: &str = r#"
[resources.role]
kind = "iam_role"
name = "r"
service = "states.amazonaws.com"

[resources.policy]
kind = "iam_policy"
name = "p"
[[resources.policy.statement]]
Effect = "Allow"
Action = "s3:GetObject"
Resource = "*"

[resources.attach]
kind = "iam_role_policy_attachment"
role = "${role.name}"
policy_arn = "${policy.arn}"
"#;

    #[test]
    fn branch_names_become_usable_distinct_envs() {
        assert_eq!(env_for_branch("main"), "main");
        assert_eq!(env_for_branch("pr-42"), "pr-42");
        let e = env_for_branch("feature/Add-Login_v2");
        assert!(
            e.starts_with("feature-add-l") && check_env(&e).is_ok(),
            "{e}"
        );
        assert_eq!(
            e,
            env_for_branch("refs/heads/feature/Add-Login_v2"),
            "stable"
        );
        assert_ne!(
            env_for_branch("Feature/A"),
            env_for_branch("feature-a"),
            "distinct where the slug is the same"
        );
        let long = "x".repeat(200);
        assert_ne!(
            env_for_branch(&long),
            env_for_branch(&"x".repeat(199)),
            "distinct where truncation is the same"
        );
        for b in [
            long.as_str(),
            "ünïcödé/ブランチ",
            "---",
            "UPPER",
            "a..b",
            "9lives",
        ] {
            let e = env_for_branch(b);
            assert!(check_env(&e).is_ok(), "{b:?} -> {e:?}");
        }
    }

    #[test]
    fn graph_comes_from_references_and_tags_are_added() {
        let s = parse(OK).unwrap();
        assert_eq!(
            s.resources["attach"].deps,
            BTreeSet::from(["role".to_string(), "policy".to_string()])
        );
        assert_eq!(s.resources["role"].attrs["tags"]["deploy:stack"], "t");
        assert!(
            s.resources["attach"].attrs.get("tags").is_none(),
            "attachments carry no tags"
        );
    }

    #[test]
    fn env_prefixes_names() {
        let s = Stack::parse("t", "f", OK, &VarInputs::default(), "pr-7", Path::new("/x")).unwrap();
        assert_eq!(s.resources["role"].attrs["name"], "pr-7-r");
        assert_eq!(s.resources["role"].attrs["tags"]["deploy:env"], "pr-7");
        assert!(check_env("Bad_Env").is_err());
        assert_eq!(env_name("pr-7", "/aws/lambda/fn"), "/aws/lambda/pr-7-fn");
    }

    /// Each mistake as a person sees it: where (file:line:col of the key or value itself),
    /// the source line with a caret and a label, and a suggestion where one is near.
    #[test]
    fn mistakes_are_shown_where_they_are_written() {
        let with_var = format!("[vars.email]\ntype = \"string\"\n{OK}");
        let mistakes: &[(&str, String)] = &[
            ("unknown attribute", OK.replace("service = ", "servce = ")),
            (
                "unknown kind",
                OK.replace("kind = \"iam_role\"", "kind = \"iam_rol\""),
            ),
            (
                "undeclared resource",
                OK.replace("${policy.arn}", "${polcy.arn}"),
            ),
            (
                "unknown output",
                OK.replace("${policy.arn}", "${policy.ar}"),
            ),
            (
                "undeclared variable",
                OK.replace("name = \"p\"", "name = \"${var.nme}\""),
            ),
            (
                "depends on nothing",
                OK.replace("name = \"p\"", "name = \"p\"\ndepends_on = [\"rol\"]"),
            ),
            ("wrong type", OK.replace("name = \"r\"", "name = 5")),
            ("unknown stack key", format!("descripton = \"x\"\n{OK}")),
            ("malformed toml", OK.replace("name = \"p\"", "name = \"p")),
            ("statement key", OK.replace("Action = ", "Actoin = ")),
            (
                "statement action",
                OK.replace("\"s3:GetObject\"", "\"s3GetObject\""),
            ),
            ("missing variable", with_var),
        ];
        let mut shown = String::new();
        for (what, src) in mistakes {
            let e = parse(src).unwrap_err();
            shown += &format!("### {what}\n{}\n\n", crate::output::render_error(&e, false));
        }
        insta::assert_snapshot!(shown);
    }

    #[test]
    fn cycles_are_spelled_out() {
        let src = r#"
[resources.a]
kind = "iam_role_policy_attachment"
role = "${b.policy_arn}"
policy_arn = "x"
[resources.b]
kind = "iam_role_policy_attachment"
role = "${a.policy_arn}"
policy_arn = "y"
"#;
        let e = parse(src).unwrap_err();
        assert!(
            e.message.contains("dependency cycle: a -> b -> a")
                || e.message.contains("dependency cycle: b -> a -> b"),
            "{e}"
        );
    }

    #[test]
    fn undeclared_variable_is_an_error() {
        let e = parse(&OK.replace("name = \"r\"", "name = \"${var.nope}\"")).unwrap_err();
        assert!(e.message.contains("`${var.nope}`"), "{e}");
    }
}
