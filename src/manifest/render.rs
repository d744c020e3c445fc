//! A loaded stack's attributes made final: references resolved against a scope (recorded
//! outputs, the target account and region), definition templates rendered, and errors that
//! point at the attribute (file:line) they came from.

use super::*;

impl Stack {
    /// A scope for resolving references: recorded outputs per resource and, once known, the
    /// account and region.
    pub fn scope(
        &self,
        outputs: &BTreeMap<String, BTreeMap<String, Value>>,
        target: Option<(&str, &str, &str)>,
    ) -> MapScope {
        let mut s = self.scope_over(self.resources.keys(), |_| None, target);
        for (id, o) in outputs {
            let known = s.outputs.entry(id.clone()).or_default();
            for (k, v) in o {
                known.insert(k.clone(), v.clone());
            }
        }
        s
    }

    /// The scope `resolve(id)` needs: the stack's variables and context, and the outputs of
    /// the resources `id` depends on (the only ones it can reference), from `outputs`. What
    /// it costs does not grow with the stack.
    pub fn scope_for(
        &self,
        id: &str,
        outputs: impl Fn(&str) -> Option<BTreeMap<String, Value>>,
        target: Option<(&str, &str, &str)>,
    ) -> MapScope {
        self.scope_over(self.resources[id].deps.iter(), outputs, target)
    }

    pub(super) fn scope_over<'a>(
        &self,
        ids: impl Iterator<Item = &'a String>,
        outputs: impl Fn(&str) -> Option<BTreeMap<String, Value>>,
        target: Option<(&str, &str, &str)>,
    ) -> MapScope {
        let mut s = MapScope {
            vars: self.vars.clone(),
            ..Default::default()
        };
        for id in ids {
            let mut known = outputs(id).unwrap_or_default();
            // A name is known before anything exists: every kind's `name` output is its
            // declared name.
            if let Some(d) = self.resources.get(id) {
                if let Some(Value::String(n)) = d.attrs.get("name") {
                    if !n.contains("${") && d.kind.outputs().contains(&"name") {
                        known
                            .entry("name".into())
                            .or_insert_with(|| Value::String(n.clone()));
                    }
                }
            }
            if !known.is_empty() {
                s.outputs.insert(id.clone(), known);
            }
        }
        s.context
            .insert("env".into(), Value::String(self.env.clone()));
        let prefix = match self.env.as_str() {
            DEFAULT_ENV => String::new(),
            env => format!("{env}-"),
        };
        s.context.insert("env_prefix".into(), Value::String(prefix));
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

    /// A kind's complaint about a resource's attributes, pointing at the attribute.
    /// An attribute (or a key inside one) that the resource's kind does not take.
    fn unknown_attr(&self, id: &str, attr: &str, typed: &str, known: &[String]) -> Error {
        let kind = self.resources[id].kind.name();
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
        .suggest(typed, known.iter().map(String::as_str));
        let span = self.spans.key_near(&format!("resources.{id}.{attr}"));
        self.spans.at(e, span, format!("not {} of {kind}", a(what)))
    }

    pub(super) fn attr_error(&self, id: &str, e: Error) -> Error {
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
            return self.unknown_attr(id, &attr, &typed, &known);
        }
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        let label = label_of(&message);
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
    /// A `{ template = "file", vars = {...} }` table: the file (under templates/) rendered.
    fn template(
        &self,
        map: &serde_json::Map<String, Value>,
        path: &str,
        warnings: &mut Warnings,
    ) -> Result<Value> {
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
        let r = crate::template::render_file(&self.templates.join(file), &display, &vars)?;
        warnings.extend(r.warnings);
        Ok(r.value)
    }

    pub(super) fn render_templates(
        &self,
        v: Value,
        path: &str,
        warnings: &mut Warnings,
    ) -> Result<Value> {
        match v {
            Value::Object(map) => {
                let is_template = map.get("template").is_some_and(|t| t.is_string())
                    && map.keys().all(|k| k == "template" || k == "vars");
                if is_template {
                    return self.template(&map, path, warnings);
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

/// The label under an attribute's value: what was expected, or the end of the message.
fn label_of(message: &str) -> String {
    let statement = message
        .strip_prefix("statement ")
        .and_then(|r| r.split_once(": "));
    match (message.split_once(", expected "), statement) {
        (Some((_, expected)), _) => format!("expected {expected}"),
        (None, Some((_, rest))) => rest.to_string(),
        (None, None) => message.rsplit("; ").next().unwrap_or(message).to_string(),
    }
}

/// What to say about a template that is not there: the files beside where it was looked for.
pub(super) fn templates_near(templates: &Path, file: &str) -> String {
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
