//! Reading one resource table of a stack.toml: its kind, attributes shaped as the env and
//! ownership make them (names prefixed, tags added), explicit and referenced dependencies,
//! the dependency graph and the outputs, each error at the place it was written.

use super::*;

impl Loader<'_> {
    /// One resource: its kind, its attributes as the env and ownership make them, and what
    /// it depends on (declared, and through its references).
    pub(super) fn declare(&self, id: &str, table: &toml::Table) -> Result<Decl> {
        let here = format!("resources.{id}");
        let mut table = table.clone();
        let kind = self.kind(id, table.remove("kind"))?;
        let explicit = self.explicit_deps(id, table.remove("depends_on"))?;
        let mut attrs = serde_json::to_value(&table).map_err(|e| Error::internal(e.to_string()))?;
        self.shape(kind, attrs.as_object_mut().unwrap());
        let refs = self.references(id, &here, &attrs)?;
        let mut deps = explicit.clone();
        deps.extend(refs.keys().cloned());
        Ok(Decl {
            id: id.to_string(),
            kind,
            attrs,
            deps,
            explicit,
            refs,
        })
    }

    pub(super) fn kind(
        &self,
        id: &str,
        written: Option<toml::Value>,
    ) -> Result<&'static dyn DynKind> {
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
    pub(super) fn explicit_deps(
        &self,
        id: &str,
        written: Option<toml::Value>,
    ) -> Result<BTreeSet<String>> {
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
    pub(super) fn shape(&self, kind: &dyn DynKind, obj: &mut serde_json::Map<String, Value>) {
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

    /// The resources `attrs` references (`${id.attr}`) with the outputs it takes from each,
    /// each checked to exist and have that output, and every `${var.x}` declared.
    pub(super) fn references(
        &self,
        id: &str,
        here: &str,
        attrs: &Value,
    ) -> Result<BTreeMap<String, BTreeSet<String>>> {
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
        let mut deps = BTreeMap::<String, BTreeSet<String>>::new();
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
                    deps.entry(resource).or_default().insert(attr);
                }
                _ => {}
            }
        }
        Ok(deps)
    }

    /// The dependency graph, free of cycles.
    pub(super) fn graph(&self, resources: &BTreeMap<String, Decl>) -> Result<Graph> {
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
    pub(super) fn outputs(&self) -> Result<BTreeMap<String, Value>> {
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

/// The kinds a manifest may name.
pub(super) fn kinds() -> impl Iterator<Item = &'static str> {
    resources::registry().keys().copied()
}

/// What is wrong with a `${resource.attr}` reference written under `here`, pointing at it.
pub(super) fn ref_error(
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
