//! The manifest loader: `stacks/<name>/stack.toml` → a checked [`Stack`]: variables resolved,
//! every reference pointing at something that exists, the dependency graph built and free of
//! cycles, tags and env naming applied, and every resource's attributes type-checked by its
//! kind (templates rendered with placeholders), all before any API call.

pub mod claims;
pub mod limits;
pub mod refs;
pub mod spans;
pub mod vars;

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

pub const DEFAULT_ENV: &str = "default";

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
                    "stacks in {}: {}",
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

/// What to say about a template that is not there: the files beside where it was looked for.
fn templates_near(templates: &Path, file: &str) -> String {
    let dir = match Path::new(file).parent() {
        _ if templates.join(file).is_dir() => PathBuf::from(file),
        Some(p) if !p.as_os_str().is_empty() && templates.join(p).is_dir() => p.to_path_buf(),
        _ => PathBuf::new(),
    };
    let mut there: Vec<String> = std::fs::read_dir(templates.join(&dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| dir.join(e.file_name()).display().to_string())
                .collect()
        })
        .unwrap_or_default();
    there.sort();
    if there.is_empty() {
        format!(
            "name a file under templates/ (templates/{} has none)",
            dir.display()
        )
    } else {
        format!("name a file under templates/: {}", there.join(", "))
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

/// A resource name in an env: the env prefixes the name, or its last segment for path-like
/// names (`/aws/lambda/pr-1-resize`), so names derived from one another still match.
pub fn env_name(env: &str, name: &str) -> String {
    match name.rsplit_once('/') {
        Some((dir, last)) => format!("{dir}/{env}-{last}"),
        None => format!("{env}-{name}"),
    }
}

/// Env names become part of resource names: keep them short and plain.
/// The env for a branch name: the branch itself when it already is a usable env name, else
/// its lowercase letters and digits joined by dashes, cut to fit, with a short hash of the
/// whole branch name so that distinct branches never share an env.
pub fn env_for_branch(branch: &str) -> String {
    let branch = branch.trim();
    let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    if check_env(branch).is_ok() {
        return branch.to_string();
    }
    let mut slug = String::new();
    for c in branch.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let hash: String = {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(branch.as_bytes())[..3])
    };
    let base: String = slug.trim_matches('-').chars().take(13).collect();
    let base = base.trim_end_matches('-');
    if base.is_empty() {
        format!("b-{hash}")
    } else {
        format!("{base}-{hash}")
    }
}

pub fn check_env(env: &str) -> Result<()> {
    let ok = !env.is_empty()
        && env.len() <= 20
        && env
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !env.starts_with('-')
        && !env.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::user(format!("env name {env:?} is not usable"))
            .help("use 1 to 20 lowercase letters, digits and dashes (it prefixes resource names), e.g. --env pr-42"))
    }
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
    pub deps: BTreeSet<String>,
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

    /// A scope for resolving references: recorded outputs per resource and, once known, the
    /// account and region.
    pub fn scope(
        &self,
        outputs: &BTreeMap<String, BTreeMap<String, Value>>,
        target: Option<(&str, &str, &str)>,
    ) -> MapScope {
        let mut s = MapScope {
            vars: self.vars.clone(),
            outputs: outputs.clone(),
            ..Default::default()
        };
        // A name is known before anything exists: every kind's `name` output is its declared name.
        for (id, d) in &self.resources {
            if let Some(Value::String(n)) = d.attrs.get("name") {
                if !n.contains("${") && d.kind.outputs().contains(&"name") {
                    s.outputs
                        .entry(id.clone())
                        .or_default()
                        .entry("name".into())
                        .or_insert_with(|| Value::String(n.clone()));
                }
            }
        }
        s.context
            .insert("env".into(), Value::String(self.env.clone()));
        s.context
            .insert("stack".into(), Value::String(self.name.clone()));
        if let Some((account, region, partition)) = target {
            s.context
                .insert("account_id".into(), Value::String(account.into()));
            s.context
                .insert("region".into(), Value::String(region.into()));
            s.context
                .insert("partition".into(), Value::String(partition.into()));
        }
        s
    }

    /// A resource's attributes with references filled from `scope`, templates rendered, and
    /// checked (normalised) by its kind.
    pub fn resolve(&self, id: &str, scope: &dyn Scope) -> Result<(Value, Warnings)> {
        let d = &self.resources[id];
        let v = refs::resolve(&d.attrs, scope);
        let mut warnings = Vec::new();
        let v = self.render_templates(v, &format!("resources.{id}"), &mut warnings)?;
        let v = d.kind.check(&v).map_err(|e| self.attr_error(id, e))?;
        if let Some(first) = limits::check(d.kind.name(), &v, &self.env)
            .into_iter()
            .next()
        {
            // the attribute it is about: the one the rule says, else the first one it names
            let named = || {
                let keys = v.as_object().into_iter().flat_map(|o| o.keys());
                keys.filter_map(|k| first.message.find(k.as_str()).map(|at| (at, k.clone())))
                    .min()
                    .map(|(_, k)| k)
            };
            let mut e = Error::user(first.message.clone());
            e.attr = first.attr.clone().or_else(named);
            return Err(self.attr_error(id, e));
        }
        Ok((v, warnings))
    }

    /// Where each key and value of the manifest is written.
    pub fn spans(&self) -> &Spans {
        &self.spans
    }

    /// The project folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A kind's complaint about a resource's attributes, pointing at the attribute.
    fn attr_error(&self, id: &str, e: Error) -> Error {
        if e.snippet.is_some() {
            return e;
        }
        let kind = self.resources[id].kind.name();
        let here = format!("resources.{id}");
        let message = e
            .message
            .strip_prefix(&format!("{kind}: "))
            .unwrap_or(&e.message)
            .to_string();
        let Some(attr) = e.attr.clone() else {
            let span = self.spans.key_near(&here);
            let label = first_line(&message).to_string();
            return self.spans.at(
                Error {
                    message: format!("resource `{id}`: {message}"),
                    ..e
                },
                span,
                label,
            );
        };
        let path = format!("{here}.{attr}");
        if let Some((typed, known)) = unknown_field(&message) {
            let what = if attr.contains(['.', '[']) {
                "key"
            } else {
                "attribute"
            };
            let e = Error::user(format!(
                "resource `{id}`: unknown {what} `{typed}` for {}",
                a(kind)
            ))
            .help(format!("the {what}s it takes: {}", known.join(", ")))
            .suggest(&typed, known.iter().map(String::as_str));
            return self.spans.at(
                e,
                self.spans.key_near(&path),
                format!("not {} of {kind}", a(what)),
            );
        }
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        let label = match (
            message.split_once(", expected "),
            message
                .strip_prefix("statement ")
                .and_then(|r| r.split_once(": ")),
        ) {
            (Some((_, expected)), _) => format!("expected {expected}"),
            (None, Some((_, rest))) => rest.to_string(),
            (None, None) => message.rsplit("; ").next().unwrap_or(&message).to_string(),
        };
        let said = message.starts_with("statement ") || message.starts_with(&format!("{attr} "));
        let message = if said {
            message
        } else {
            format!("{attr}: {message}")
        };
        let e = Error {
            message: format!("resource `{id}`: {message}"),
            ..e
        };
        self.spans.at(e, self.spans.value_near(&path), label)
    }

    /// Any `{ template = "file", vars = {...} }` table becomes the rendered JSON, and any
    /// `{ dir = "folder" }` table the folder with its content hash.
    /// `path`: where `v` is written in the manifest (`resources.machine.definition`).
    fn render_templates(&self, v: Value, path: &str, warnings: &mut Warnings) -> Result<Value> {
        match v {
            Value::Object(map) => {
                let is_template = map.get("template").is_some_and(|t| t.is_string())
                    && map.keys().all(|k| k == "template" || k == "vars");
                if is_template {
                    let file = map["template"].as_str().unwrap();
                    let inside = !file.is_empty()
                        && Path::new(file)
                            .components()
                            .all(|c| matches!(c, std::path::Component::Normal(_)));
                    let at = self.spans.value_near(&format!("{path}.template"));
                    if !inside {
                        let e = Error::user(format!("template {file:?} is outside templates/"))
                            .help("name a file under templates/, without .. or a leading /");
                        return Err(self.spans.at(e, at, "outside templates/"));
                    }
                    let full = self.templates.join(file);
                    if !full.is_file() {
                        let why = if full.is_dir() {
                            "is a folder, not a file"
                        } else {
                            "does not exist"
                        };
                        let e = Error::user(format!("template templates/{file} {why}"))
                            .help(templates_near(&self.templates, file));
                        return Err(self.spans.at(e, at, why));
                    }
                    let vars = map
                        .get("vars")
                        .and_then(|v| v.as_object())
                        .cloned()
                        .unwrap_or_default();
                    let display = format!("templates/{file}");
                    let r =
                        crate::template::render_file(&self.templates.join(file), &display, &vars)?;
                    warnings.extend(r.warnings);
                    return Ok(r.value);
                }
                if map.len() == 1 && map.get("dir").is_some_and(|d| d.is_string()) {
                    let dir = map["dir"].as_str().unwrap().to_string();
                    let sha = crate::package::hash_dir(&self.root.join(&dir)).map_err(|e| {
                        Error::user(format!("source folder `{dir}` (under the project): {e}"))
                    })?;
                    return Ok(serde_json::json!({"dir": dir, "sha256": sha}));
                }
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let v = self.render_templates(v, &format!("{path}.{k}"), warnings)?;
                    out.insert(k, v);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => Ok(Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| self.render_templates(v, &format!("{path}[{i}]"), warnings))
                    .collect::<Result<_>>()?,
            )),
            other => Ok(other),
        }
    }

    /// Stack outputs resolved from recorded resource outputs.
    pub fn resolve_outputs(&self, scope: &dyn Scope) -> BTreeMap<String, Value> {
        self.outputs
            .iter()
            .map(|(k, v)| (k.clone(), refs::resolve(v, scope)))
            .collect()
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

/// The kinds a manifest may name.
fn kinds() -> impl Iterator<Item = &'static str> {
    resources::registry().keys().copied()
}

/// What loading one manifest needs at every step.
struct Loader<'a> {
    name: &'a str,
    env: &'a str,
    raw: &'a RawStack,
    spans: &'a Spans,
    vars: &'a BTreeMap<String, Value>,
}

impl Loader<'_> {
    /// One resource: its kind, its attributes as the env and ownership make them, and what
    /// it depends on (declared, and through its references).
    fn declare(&self, id: &str, table: &toml::Table) -> Result<Decl> {
        let here = format!("resources.{id}");
        let mut table = table.clone();
        let kind = self.kind(id, table.remove("kind"))?;
        let explicit = self.explicit_deps(id, table.remove("depends_on"))?;
        let mut attrs = serde_json::to_value(&table).map_err(|e| Error::internal(e.to_string()))?;
        self.shape(kind, attrs.as_object_mut().unwrap());
        let mut deps = explicit;
        deps.extend(self.references(id, &here, &attrs)?);
        Ok(Decl {
            id: id.to_string(),
            kind,
            attrs,
            deps,
        })
    }

    fn kind(&self, id: &str, written: Option<toml::Value>) -> Result<&'static dyn DynKind> {
        let at = self.spans.value_near(&format!("resources.{id}.kind"));
        let Some(toml::Value::String(name)) = written else {
            let all = kinds().collect::<Vec<_>>().join(", ");
            let e = Error::user(format!("resource `{id}` has no `kind`"))
                .help(format!("add `kind = \"...\"`, one of: {all}"));
            return Err(self.spans.at(e, at, "a resource needs a kind"));
        };
        resources::lookup(&name).ok_or_else(|| {
            let e = Error::user(format!("resource `{id}` has unknown kind `{name}`"))
                .help(format!(
                    "known kinds: {}",
                    kinds().collect::<Vec<_>>().join(", ")
                ))
                .suggest(&name, kinds());
            self.spans.at(e, at, "not a kind deploy knows")
        })
    }

    /// `depends_on`: names of resources declared in the stack.
    fn explicit_deps(&self, id: &str, written: Option<toml::Value>) -> Result<BTreeSet<String>> {
        let here = format!("resources.{id}.depends_on");
        let names: Vec<String> = match written {
            None => vec![],
            Some(v) => v.try_into().map_err(|_| {
                let e = Error::user("`depends_on` must be a list of resource names")
                    .help("e.g. depends_on = [\"role\"]");
                self.spans
                    .at(e, self.spans.value_near(&here), "not a list of names")
            })?,
        };
        for d in names
            .iter()
            .filter(|d| !self.raw.resources.contains_key(*d))
        {
            let e = Error::user(format!(
                "resource `{id}` depends on `{d}`, which is not declared"
            ))
            .suggest(d, self.raw.resources.keys().map(String::as_str));
            let span = self
                .spans
                .find(&here, &format!("\"{d}\""))
                .unwrap_or_else(|| self.spans.key_near(&here));
            return Err(self.spans.at(e, span, "no such resource in this stack"));
        }
        Ok(names.into_iter().collect())
    }

    /// The attributes as deployed: the name prefixed by the env, the ownership marker in the
    /// description (kinds proven ours by it), the stack's and deploy's tags added.
    fn shape(&self, kind: &dyn DynKind, obj: &mut serde_json::Map<String, Value>) {
        if self.env != DEFAULT_ENV {
            if let Some(Value::String(n)) = obj.get_mut("name") {
                *n = env_name(self.env, n);
            }
        }
        if kind.owner() == resources::Owner::Description {
            let marker = resources::owner_marker(self.name, self.env);
            let desc = obj
                .get("description")
                .and_then(|d| d.as_str())
                .unwrap_or_default();
            let desc = if desc.is_empty() {
                marker
            } else {
                format!("{desc} {marker}")
            };
            obj.insert("description".into(), Value::String(desc));
        }
        if kind.taggable() {
            let mut all = self.raw.tags.clone();
            all.insert("deploy:stack".into(), self.name.into());
            all.insert("deploy:env".into(), self.env.into());
            if let Some(own) = obj.get("tags").and_then(|t| t.as_object()) {
                for (k, v) in own {
                    all.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                }
            }
            obj.insert("tags".into(), serde_json::to_value(all).unwrap());
        }
    }

    /// The resources `attrs` references (`${id.attr}`), each checked to exist and have that
    /// output, and every `${var.x}` declared.
    fn references(&self, id: &str, here: &str, attrs: &Value) -> Result<BTreeSet<String>> {
        let mut found = Vec::new();
        refs::collect(attrs, &mut found).map_err(|m| {
            let span = self
                .spans
                .find(here, "${")
                .unwrap_or_else(|| self.spans.key_near(here));
            self.spans.at(
                Error::user(format!("resource `{id}`: {m}")),
                span,
                "not a valid reference",
            )
        })?;
        let mut deps = BTreeSet::new();
        for r in found {
            match r {
                Ref::Var(v) if !self.vars.contains_key(&v) => {
                    let e = Error::user(format!(
                        "resource `{id}` uses `${{var.{v}}}`, which the stack does not declare"
                    ))
                    .help(format!("declare it under [vars.{v}]"))
                    .suggest(&v, self.vars.keys().map(String::as_str));
                    let span = self
                        .spans
                        .find(here, &format!("var.{v}"))
                        .map(|r| r.start + 4..r.end)
                        .unwrap_or_else(|| self.spans.key_near(here));
                    return Err(self.spans.at(e, span, "not a variable of this stack"));
                }
                Ref::Output { resource, attr } => {
                    if let Some(e) = ref_error(self.raw, &resource, &attr, self.spans, here) {
                        return Err(Error {
                            message: format!("resource `{id}`: {}", e.message),
                            ..e
                        });
                    }
                    deps.insert(resource);
                }
                _ => {}
            }
        }
        Ok(deps)
    }

    /// The dependency graph, free of cycles.
    fn graph(&self, resources: &BTreeMap<String, Decl>) -> Result<Graph> {
        let mut graph = Graph::new();
        for (id, d) in resources {
            graph.add_node(id);
            for dep in &d.deps {
                graph.add_edge(id, dep);
            }
        }
        if let Some(cycle) = graph.find_cycle() {
            let e = Error::user(format!("dependency cycle: {}", cycle.join(" -> ")))
                .help("a resource cannot reference, directly or not, something that references it");
            let next = cycle.get(1).map(String::as_str).unwrap_or("?");
            let label = format!("`{}` needs `{next}`, which needs it back", cycle[0]);
            return Err(self.spans.at(
                e,
                self.spans.key_near(&format!("resources.{}", cycle[0])),
                label,
            ));
        }
        Ok(graph)
    }

    /// The stack's outputs, their references checked.
    fn outputs(&self) -> Result<BTreeMap<String, Value>> {
        let mut outputs = BTreeMap::new();
        for (k, v) in &self.raw.outputs {
            let v = serde_json::to_value(v).unwrap();
            let here = format!("outputs.{k}");
            let mut found = Vec::new();
            refs::collect(&v, &mut found).map_err(|m| {
                let e = Error::user(format!("output `{k}`: {m}"));
                self.spans
                    .at(e, self.spans.value_near(&here), "not a valid reference")
            })?;
            for r in found {
                if let Ref::Output { resource, attr } = r {
                    if let Some(e) = ref_error(self.raw, &resource, &attr, self.spans, &here) {
                        return Err(Error {
                            message: format!("output `{k}`: {}", e.message),
                            ..e
                        });
                    }
                }
            }
            outputs.insert(k.clone(), v);
        }
        Ok(outputs)
    }
}

/// What is wrong with a `${resource.attr}` reference written under `here`, pointing at it.
fn ref_error(
    raw: &RawStack,
    resource: &str,
    attr: &str,
    spans: &Spans,
    here: &str,
) -> Option<Error> {
    let written = format!("{resource}.{attr}");
    // where it is written: looked for only when there is something to say
    let whole = || {
        spans
            .find(here, &written)
            .unwrap_or_else(|| spans.value_near(here))
    };
    let Some(table) = raw.resources.get(resource) else {
        let e = Error::user(format!(
            "`${{{written}}}` refers to `{resource}`, which is not declared"
        ))
        .suggest(resource, raw.resources.keys().map(String::as_str));
        return Some(spans.at(
            e,
            whole().start..whole().start + resource.len(),
            "no such resource in this stack",
        ));
    };
    let kind = table
        .get("kind")
        .and_then(|k| k.as_str())
        .and_then(resources::lookup)?; // reported on that resource itself
    if !kind.outputs().contains(&attr) {
        let e = Error::user(format!(
            "`${{{written}}}`: {} has no output `{attr}` (it has: {})",
            a(kind.name()),
            kind.outputs().join(", ")
        ))
        .suggest(attr, kind.outputs().iter().copied());
        let label = format!("not an output of {}", kind.name());
        let whole = whole();
        return Some(spans.at(e, whole.end - attr.len()..whole.end, label));
    }
    None
}

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
