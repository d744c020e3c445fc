//! The manifest loader: `stacks/<name>/stack.toml` → a checked [`Stack`]: variables resolved,
//! every reference pointing at something that exists, the dependency graph built and free of
//! cycles, tags and env naming applied, and every resource's attributes type-checked by its
//! kind (templates rendered with placeholders), all before any API call.

pub mod limits;
pub mod refs;
pub mod vars;

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::resources::{self, DynKind, Tags};
use refs::{MapScope, Ref, Scope};
use serde::Deserialize;
use serde_json::Value;
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
                return Err(Error::user(format!("{} has no stacks/ folder", root.display()))
                    .help("pass the folder that holds stacks/ and templates/"));
            }
            return Ok(Project { root });
        }
        let cwd = std::env::current_dir()?;
        for dir in cwd.ancestors() {
            if dir.join("stacks").is_dir() {
                return Ok(Project { root: dir.to_path_buf() });
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
        p.strip_prefix(&self.root).unwrap_or(p).display().to_string()
    }

    pub fn load(&self, name: &str, inputs: &VarInputs, env: &str) -> Result<Stack> {
        let file = self.root.join("stacks").join(name).join("stack.toml");
        if !file.is_file() {
            let known = self.stack_names()?;
            return Err(Error::user(format!("unknown stack `{name}`")).help(format!(
                "stacks in {}: {}",
                self.rel(&self.root.join("stacks")),
                known.join(", ")
            )));
        }
        check_env(env)?;
        let src = read_text(&file, &self.rel(&file))?;
        Stack::parse(name, &self.rel(&file), &src, inputs, env, &self.root.join("templates"))
    }
}

/// A text file of the project: not UTF-8 is bad input that names the file.
pub fn read_text(path: &Path, shown: &str) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::user(format!("cannot read it: {e}")).at(shown.to_string()))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        Error::user(format!("not UTF-8 text (byte {at} is not)")).at(format!("{shown}:{line}")).help("save the file as UTF-8")
    })
}

/// The variable names a stack declares (for spreading `--var` over several stacks).
pub fn declared_vars(project: &Project, name: &str) -> Result<Vec<String>> {
    let file = project.root.join("stacks").join(name).join("stack.toml");
    let src = std::fs::read_to_string(&file).map_err(|_| {
        Error::user(format!("unknown stack `{name}`")).help(format!("stacks: {}", project.stack_names().unwrap_or_default().join(", ")))
    })?;
    Ok(parse_raw(&project.rel(&file), &src)?.vars.into_keys().collect())
}

/// A stack's one-line description.
pub fn description(project: &Project, name: &str) -> String {
    let file = project.root.join("stacks").join(name).join("stack.toml");
    std::fs::read_to_string(&file).ok().and_then(|src| parse_raw("", &src).ok()).map(|r| r.description).unwrap_or_default()
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
        sha2::Sha256::digest(branch.as_bytes()).iter().take(3).map(|b| format!("{b:02x}")).collect()
    };
    let base: String = slug.trim_matches('-').chars().take(13).collect();
    let base = base.trim_end_matches('-');
    if base.is_empty() { format!("b-{hash}") } else { format!("{base}-{hash}") }
}

pub fn check_env(env: &str) -> Result<()> {
    let ok = !env.is_empty()
        && env.len() <= 20
        && env.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
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
        let line = e.span().map(|s| src[..s.start].matches('\n').count() + 1).unwrap_or(1);
        Error::user(format!("invalid manifest: {}", e.message().trim())).at(format!("{file}:{line}"))
    })
}

/// One resource as declared, attributes still holding `${...}` references.
pub struct Decl {
    pub id: String,
    pub kind: &'static dyn DynKind,
    pub attrs: Value,
    pub deps: BTreeSet<String>,
    pub line: usize,
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
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").field("name", &self.name).field("env", &self.env).field("resources", &self.resources.keys()).finish()
    }
}

/// Warnings found while resolving (duplicate keys in a definition, ...).
pub type Warnings = Vec<String>;

fn line_of(src: &str, needle: &str) -> usize {
    src.lines().position(|l| l.contains(needle)).map(|p| p + 1).unwrap_or(1)
}

impl Stack {
    pub fn parse(name: &str, file: &str, src: &str, inputs: &VarInputs, env: &str, templates: &Path) -> Result<Stack> {
        let raw = parse_raw(file, src)?;
        let vars = vars::resolve(name, &raw.vars, inputs)?;
        let mut tags = raw.tags.clone();
        tags.insert("deploy:stack".into(), name.into());
        tags.insert("deploy:env".into(), env.into());

        let mut resources = BTreeMap::new();
        for (id, table) in &raw.resources {
            let line = line_of(src, &format!("[resources.{id}]"));
            let at = || format!("{file}:{line}");
            let mut table = table.clone();
            let kind_name = match table.remove("kind") {
                Some(toml::Value::String(k)) => k,
                _ => {
                    return Err(Error::user(format!("resource `{id}` has no `kind`"))
                        .at(at())
                        .help(format!("known kinds: {}", resources::registry().keys().cloned().collect::<Vec<_>>().join(", "))));
                }
            };
            let kind = resources::lookup(&kind_name).ok_or_else(|| {
                Error::user(format!("resource `{id}` has unknown kind `{kind_name}`"))
                    .at(at())
                    .help(format!("known kinds: {}", resources::registry().keys().cloned().collect::<Vec<_>>().join(", ")))
            })?;
            let explicit: Vec<String> = match table.remove("depends_on") {
                None => vec![],
                Some(v) => v.try_into().map_err(|_| Error::user("`depends_on` must be a list of resource names").at(at()))?,
            };
            let mut attrs = serde_json::to_value(&table).map_err(|e| Error::internal(e.to_string()))?;
            let obj = attrs.as_object_mut().unwrap();
            if env != DEFAULT_ENV {
                if let Some(Value::String(n)) = obj.get_mut("name") {
                    *n = env_name(env, n);
                }
            }
            if kind.owner() == resources::Owner::Description {
                let marker = resources::owner_marker(name, env);
                let desc = obj.get("description").and_then(|d| d.as_str()).unwrap_or_default();
                let desc = if desc.is_empty() { marker } else { format!("{desc} {marker}") };
                obj.insert("description".into(), Value::String(desc));
            }
            if kind.taggable() {
                let mut all = tags.clone();
                if let Some(own) = obj.get("tags").and_then(|t| t.as_object()) {
                    for (k, v) in own {
                        all.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                    }
                }
                obj.insert("tags".into(), serde_json::to_value(all).unwrap());
            }
            let mut found = Vec::new();
            refs::collect(&attrs, &mut found).map_err(|m| Error::user(format!("resource `{id}`: {m}")).at(at()))?;
            let mut deps: BTreeSet<String> = explicit.into_iter().collect();
            for r in found {
                match r {
                    Ref::Var(v) if !vars.contains_key(&v) => {
                        return Err(Error::user(format!("resource `{id}` uses `${{var.{v}}}`, which the stack does not declare"))
                            .at(at())
                            .help(format!("declare it under [vars.{v}]")));
                    }
                    Ref::Output { resource, attr } => {
                        deps.insert(resource.clone());
                        check_output_ref(&raw, &resource, &attr).map_err(|m| Error::user(format!("resource `{id}`: {m}")).at(at()))?;
                    }
                    _ => {}
                }
            }
            for d in &deps {
                if !raw.resources.contains_key(d) {
                    return Err(Error::user(format!("resource `{id}` depends on `{d}`, which is not declared")).at(at()));
                }
            }
            resources.insert(id.clone(), Decl { id: id.clone(), kind, attrs, deps, line });
        }

        let mut graph = Graph::new();
        for (id, d) in &resources {
            graph.add_node(id);
            for dep in &d.deps {
                graph.add_edge(id, dep);
            }
        }
        if let Some(cycle) = graph.find_cycle() {
            return Err(Error::user(format!("dependency cycle: {}", cycle.join(" -> ")))
                .at(format!("{file}:{}", line_of(src, &format!("[resources.{}]", cycle[0]))))
                .help("a resource cannot reference, directly or not, something that references it"));
        }

        let mut outputs = BTreeMap::new();
        for (k, v) in &raw.outputs {
            let v = serde_json::to_value(v).unwrap();
            let mut found = Vec::new();
            let at = format!("{file}:{}", line_of(src, &format!("{k} =")));
            refs::collect(&v, &mut found).map_err(|m| Error::user(format!("output `{k}`: {m}")).at(at.clone()))?;
            for r in found {
                if let Ref::Output { resource, attr } = r {
                    check_output_ref(&raw, &resource, &attr).map_err(|m| Error::user(format!("output `{k}`: {m}")).at(at.clone()))?;
                }
            }
            outputs.insert(k.clone(), v);
        }

        let secrets = raw
            .vars
            .iter()
            .filter(|(_, d)| d.sensitive)
            .filter_map(|(k, _)| vars.get(k))
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
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
            root: templates.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        // Type-check every resource now, with placeholders for what only AWS can tell.
        let scope = stack.scope(&BTreeMap::new(), None);
        for d in stack.resources.values() {
            stack.resolve(&d.id, &scope).map_err(|e| match e.location {
                Some(_) => e,
                None => Error::user(format!("resource `{}`: {}", d.id, e.message)).at(format!("{file}:{}", d.line)),
            })?;
        }
        Ok(stack)
    }

    /// A scope for resolving references: recorded outputs per resource and, once known, the
    /// account and region.
    pub fn scope(&self, outputs: &BTreeMap<String, BTreeMap<String, Value>>, target: Option<(&str, &str, &str)>) -> MapScope {
        let mut s = MapScope { vars: self.vars.clone(), outputs: outputs.clone(), ..Default::default() };
        // A name is known before anything exists: every kind's `name` output is its declared name.
        for (id, d) in &self.resources {
            if let Some(Value::String(n)) = d.attrs.get("name") {
                if !n.contains("${") && d.kind.outputs().contains(&"name") {
                    s.outputs.entry(id.clone()).or_default().entry("name".into()).or_insert_with(|| Value::String(n.clone()));
                }
            }
        }
        s.context.insert("env".into(), Value::String(self.env.clone()));
        s.context.insert("stack".into(), Value::String(self.name.clone()));
        if let Some((account, region, partition)) = target {
            s.context.insert("account_id".into(), Value::String(account.into()));
            s.context.insert("region".into(), Value::String(region.into()));
            s.context.insert("partition".into(), Value::String(partition.into()));
        }
        s
    }

    /// A resource's attributes with references filled from `scope`, templates rendered, and
    /// checked (normalised) by its kind.
    pub fn resolve(&self, id: &str, scope: &dyn Scope) -> Result<(Value, Warnings)> {
        let d = &self.resources[id];
        let v = refs::resolve(&d.attrs, scope);
        let mut warnings = Vec::new();
        let v = self.render_templates(v, &mut warnings)?;
        let v =
            d.kind.check(&v).map_err(|e| Error::user(format!("resource `{id}`: {}", e.message)).at(format!("{}:{}", self.file, d.line)))?;
        if let Some(first) = limits::check(d.kind.name(), &v, &self.env).into_iter().next() {
            return Err(Error::user(format!("resource `{id}`: {first}")).at(format!("{}:{}", self.file, d.line)));
        }
        Ok((v, warnings))
    }

    /// Any `{ template = "file", vars = {...} }` table becomes the rendered JSON, and any
    /// `{ dir = "folder" }` table the folder with its content hash.
    fn render_templates(&self, v: Value, warnings: &mut Warnings) -> Result<Value> {
        match v {
            Value::Object(map) => {
                let is_template = map.get("template").is_some_and(|t| t.is_string()) && map.keys().all(|k| k == "template" || k == "vars");
                if is_template {
                    let file = map["template"].as_str().unwrap();
                    let inside = !file.is_empty() && Path::new(file).components().all(|c| matches!(c, std::path::Component::Normal(_)));
                    if !inside {
                        return Err(Error::user(format!("template {file:?} is outside templates/"))
                            .help("name a file under templates/, without .. or a leading /"));
                    }
                    let vars = map.get("vars").and_then(|v| v.as_object()).cloned().unwrap_or_default();
                    let display = format!("templates/{file}");
                    let r = crate::template::render_file(&self.templates.join(file), &display, &vars)?;
                    warnings.extend(r.warnings);
                    return Ok(r.value);
                }
                if map.len() == 1 && map.get("dir").is_some_and(|d| d.is_string()) {
                    let dir = map["dir"].as_str().unwrap().to_string();
                    let sha = crate::package::hash_dir(&self.root.join(&dir))
                        .map_err(|e| Error::user(format!("source folder `{dir}` (under the project): {e}")))?;
                    return Ok(serde_json::json!({"dir": dir, "sha256": sha}));
                }
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    out.insert(k, self.render_templates(v, warnings)?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => Ok(Value::Array(items.into_iter().map(|v| self.render_templates(v, warnings)).collect::<Result<_>>()?)),
            other => Ok(other),
        }
    }

    /// Stack outputs resolved from recorded resource outputs.
    pub fn resolve_outputs(&self, scope: &dyn Scope) -> BTreeMap<String, Value> {
        self.outputs.iter().map(|(k, v)| (k.clone(), refs::resolve(v, scope))).collect()
    }
}

fn check_output_ref(raw: &RawStack, resource: &str, attr: &str) -> std::result::Result<(), String> {
    let Some(table) = raw.resources.get(resource) else {
        return Err(format!("`${{{resource}.{attr}}}` refers to `{resource}`, which is not declared"));
    };
    let Some(kind) = table.get("kind").and_then(|k| k.as_str()).and_then(resources::lookup) else {
        return Ok(()); // reported on that resource itself
    };
    if !kind.outputs().contains(&attr) {
        return Err(format!("`${{{resource}.{attr}}}`: a {} has no output `{attr}` (it has: {})", kind.name(), kind.outputs().join(", ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Stack> {
        Stack::parse("t", "stacks/t/stack.toml", src, &VarInputs::default(), "default", Path::new("/nonexistent"))
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
        assert!(e.starts_with("feature-add-l") && check_env(&e).is_ok(), "{e}");
        assert_eq!(e, env_for_branch("refs/heads/feature/Add-Login_v2"), "stable");
        assert_ne!(env_for_branch("Feature/A"), env_for_branch("feature-a"), "distinct where the slug is the same");
        let long = "x".repeat(200);
        assert_ne!(env_for_branch(&long), env_for_branch(&"x".repeat(199)), "distinct where truncation is the same");
        for b in [long.as_str(), "ünïcödé/ブランチ", "---", "UPPER", "a..b", "9lives"] {
            let e = env_for_branch(b);
            assert!(check_env(&e).is_ok(), "{b:?} -> {e:?}");
        }
    }

    #[test]
    fn graph_comes_from_references_and_tags_are_added() {
        let s = parse(OK).unwrap();
        assert_eq!(s.resources["attach"].deps, BTreeSet::from(["role".to_string(), "policy".to_string()]));
        assert_eq!(s.resources["role"].attrs["tags"]["deploy:stack"], "t");
        assert!(s.resources["attach"].attrs.get("tags").is_none(), "attachments carry no tags");
    }

    #[test]
    fn env_prefixes_names() {
        let s = Stack::parse("t", "f", OK, &VarInputs::default(), "pr-7", Path::new("/x")).unwrap();
        assert_eq!(s.resources["role"].attrs["name"], "pr-7-r");
        assert_eq!(s.resources["role"].attrs["tags"]["deploy:env"], "pr-7");
        assert!(check_env("Bad_Env").is_err());
        assert_eq!(env_name("pr-7", "/aws/lambda/fn"), "/aws/lambda/pr-7-fn");
    }

    #[test]
    fn errors_point_at_the_resource_line() {
        let src = OK.replace("policy_arn = \"${policy.arn}\"", "policy_arn = \"${polcy.arn}\"");
        let e = parse(&src).unwrap_err();
        assert_eq!(e.location.as_deref(), Some("stacks/t/stack.toml:15"), "{e}");
        assert!(e.message.contains("`polcy`"), "{e}");

        let e = parse(&OK.replace("\"${policy.arn}\"", "\"${policy.id}\"")).unwrap_err();
        assert!(e.message.contains("has no output `id`") && e.message.contains("arn, name"), "{e}");

        let e = parse(&OK.replace("kind = \"iam_role\"", "kind = \"iam_rol\"")).unwrap_err();
        assert!(e.message.contains("unknown kind `iam_rol`") && e.location.as_deref() == Some("stacks/t/stack.toml:2"), "{e}");

        let e = parse(&OK.replace("service = ", "servce = ")).unwrap_err();
        assert!(e.message.contains("servce"), "{e}");
        assert_eq!(e.location.as_deref(), Some("stacks/t/stack.toml:2"));
    }

    #[test]
    fn malformed_toml_names_the_line() {
        let e = parse("[resources.a]\nkind = \"iam_role\"\nname = \n").unwrap_err();
        assert_eq!(e.location.as_deref(), Some("stacks/t/stack.toml:3"), "{e}");
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
        assert!(e.message.contains("dependency cycle: a -> b -> a") || e.message.contains("dependency cycle: b -> a -> b"), "{e}");
    }

    #[test]
    fn undeclared_variable_is_an_error() {
        let e = parse(&OK.replace("name = \"r\"", "name = \"${var.nope}\"")).unwrap_err();
        assert!(e.message.contains("`${var.nope}`"), "{e}");
    }
}
