//! What people and CI see, one module per kind of result; commands compute, views print.
//! Every view has a form for people (text, in colour on a terminal) and one for CI (JSON
//! documents carrying `format_version`); plans, applies and outputs also as Markdown.
//!
//! - `events`: the executor's events while applying (a live view, or JSON lines);
//! - `plan`: plans and what an apply did;
//! - `info`: stacks, environments, executions and outputs as tables or documents;
//! - `execution`: an execution's history, live or afterwards;
//! - `checks`: validation findings, scenario results (and JUnit XML).

pub mod checks;
pub mod events;
pub mod execution;
pub mod info;
pub mod plan;

pub use events::{Event, Human, Json, View};

/// The version of every `--output json` document's shape; it changes only when a field is
/// removed or changes meaning (fields may be added at any time).
pub const JSON_FORMAT_VERSION: u32 = 1;

/// A JSON document as `--output json` prints it: the object, with `format_version` first.
pub fn json_doc(body: serde_json::Value) -> serde_json::Value {
    let mut doc = serde_json::Map::new();
    doc.insert("format_version".into(), JSON_FORMAT_VERSION.into());
    match body {
        serde_json::Value::Object(o) => doc.extend(o),
        other => {
            doc.insert("value".into(), other);
        }
    }
    serde_json::Value::Object(doc)
}
