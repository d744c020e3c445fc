//! What is known of a resource before it exists, and what therefore need not wait for it.
//!
//! Most ARNs follow from a name (`arn:aws:s3:::NAME`), and an IAM policy's document only
//! names what it grants access to: IAM takes a policy on a bucket that does not exist yet.
//! So a policy is created alongside the resources it names instead of after them, which
//! takes their creation off the path the rest of the stack waits on. Destroy still goes by
//! every dependency.

use super::*;

/// Outputs known before the resources exist (`arn` and `name`), per resource.
pub type Known = BTreeMap<String, BTreeMap<String, Value>>;

impl Stack {
    /// The name and ARN of every resource whose kind makes its ARN from its name
    /// (`arn_of`), where the name holds no reference to another resource's outputs.
    pub fn known_before(
        &self,
        arn_of: impl Fn(&dyn DynKind, &str) -> Option<String>,
        target: (&str, &str, &str),
    ) -> Known {
        let scope = self.scope_over(std::iter::empty(), |_| None, Some(target));
        let mut known = Known::new();
        for (id, d) in &self.resources {
            let Some(name) = d.attrs.get("name") else {
                continue;
            };
            let Value::String(name) = refs::resolve(name, &scope) else {
                continue;
            };
            if name.contains(refs::UNKNOWN_PREFIX) {
                continue;
            }
            if let Some(arn) = arn_of(d.kind, &name) {
                known.insert(
                    id.clone(),
                    BTreeMap::from([
                        ("arn".to_string(), Value::String(arn)),
                        ("name".to_string(), Value::String(name)),
                    ]),
                );
            }
        }
        known
    }

    /// The resources `id` references without waiting for them: all of them, for a kind whose
    /// references only name (`names_only`), whose every referenced output is in `known`,
    /// and that `depends_on` does not name.
    pub fn needs_not_wait<'a>(
        &'a self,
        id: &str,
        known: &'a Known,
    ) -> impl Iterator<Item = &'a String> + 'a {
        let d = &self.resources[id];
        let names_only = d.kind.names_only();
        d.refs.iter().filter_map(move |(dep, attrs)| {
            let outputs = known.get(dep)?;
            let named = names_only
                && !d.explicit.contains(dep)
                && attrs.iter().all(|a| outputs.contains_key(a));
            named.then_some(dep)
        })
    }

    /// The scope `resolve(id)` needs, with the outputs of what `id` need not wait for as known
    /// beforehand, over what `outputs` gives: what they will be, even while being made.
    pub fn scope_ahead(
        &self,
        id: &str,
        outputs: impl Fn(&str) -> Option<BTreeMap<String, Value>>,
        known: &Known,
        target: (&str, &str, &str),
    ) -> MapScope {
        let free: BTreeSet<&String> = self.needs_not_wait(id, known).collect();
        let ahead = |dep: &str| {
            let mut o = outputs(dep);
            if let Some((_, k)) = known.get_key_value(dep).filter(|(d, _)| free.contains(d)) {
                o.get_or_insert_default().extend(k.clone());
            }
            o
        };
        self.scope_for(id, ahead, Some(target))
    }

    /// The order to create and change in: every dependency but those `needs_not_wait` lets
    /// go (the order to delete in stays `graph`, every dependency).
    pub fn create_order(&self, known: &Known) -> Graph {
        let mut graph = Graph::new();
        for (id, d) in &self.resources {
            graph.add_node(id);
            let free: BTreeSet<&String> = self.needs_not_wait(id, known).collect();
            for dep in d.deps.iter().filter(|dep| !free.contains(dep)) {
                graph.add_edge(id, dep);
            }
        }
        graph
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> Stack {
        let inputs = VarInputs::default();
        let file = "stacks/s/stack.toml";
        Stack::parse(
            "s",
            file,
            toml,
            &inputs,
            DEFAULT_ENV,
            Path::new("/nonexistent"),
        )
        .unwrap()
    }

    const STACK: &str = r#"
[resources.bucket]
kind = "s3_bucket"
name = "pictures-${account_id}"

[resources.queue]
kind = "sqs_queue"
name = "q"

[resources.policy]
kind = "iam_policy"
name = "p"
[[resources.policy.statement]]
Effect = "Allow"
Action = "s3:GetObject"
Resource = ["${bucket.arn}/*", "${queue.url}"]

[resources.named]
kind = "iam_policy"
name = "named"
[[resources.named.statement]]
Effect = "Allow"
Action = "s3:GetObject"
Resource = "${bucket.arn}"

[resources.told]
kind = "iam_policy"
name = "told"
depends_on = ["bucket"]
[[resources.told.statement]]
Effect = "Allow"
Action = "s3:GetObject"
Resource = "${bucket.arn}"

[resources.notification]
kind = "s3_bucket_notification"
bucket = "${bucket.name}"
queue_arn = "${queue.arn}"
events = ["s3:ObjectCreated:*"]
"#;

    fn known(s: &Stack) -> Known {
        s.known_before(
            |k, name| (k.name() != "iam_policy").then(|| format!("arn:{}:{name}", k.name())),
            ("123456789012", "eu-west-1", "aws"),
        )
    }

    #[test]
    fn names_and_arns_are_known_before_with_the_context_filled_in() {
        let s = load(STACK);
        let k = known(&s);
        assert_eq!(k["bucket"]["name"], "pictures-123456789012");
        assert_eq!(k["bucket"]["arn"], "arn:s3_bucket:pictures-123456789012");
        assert!(!k.contains_key("policy"), "the stand-in arn_of knows none");
    }

    #[test]
    fn a_policy_waits_only_for_what_it_references_beyond_names_and_arns() {
        let s = load(STACK);
        let k = known(&s);
        let order = s.create_order(&k);
        let deps = |id: &str| order.deps_of(id).cloned().collect::<Vec<_>>();
        // the queue's URL is known only once it exists
        assert_eq!(deps("policy"), ["queue"]);
        assert!(deps("named").is_empty());
        // depends_on is always waited for
        assert_eq!(deps("told"), ["bucket"]);
        // a kind that acts on what it references waits for it
        assert_eq!(deps("notification"), ["bucket", "queue"]);
        // deleting still goes by every dependency
        assert_eq!(
            s.graph.deps_of("named").cloned().collect::<Vec<_>>(),
            ["bucket"]
        );
        // with nothing known beforehand, everything waits
        let all = s.create_order(&Known::new());
        assert_eq!(
            all.deps_of("named").cloned().collect::<Vec<_>>(),
            ["bucket"]
        );
    }
}
