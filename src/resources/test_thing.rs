//! `test_thing` (tests only): a resource kept in memory, so that the planner and the executor
//! can be tested without AWS. What it does is told by its attributes: `fail` makes its create
//! fail; `millis` makes each operation take that long (on tokio's clock). The "cloud" is a
//! process-wide map by name; every test uses names of its own. Calls and the number of
//! operations in flight are counted per name prefix (the part before the first `.`).

use super::{Kind, Notes, Outputs, Tags, s};
use crate::aws::Ctx;
use crate::error::{Error, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub fail: bool,
    #[serde(default)]
    pub millis: u64,
    #[serde(default)]
    pub tags: Tags,
}

/// What the fake cloud holds and saw, for the tests to look at.
#[derive(Default)]
pub struct Cloud {
    pub things: BTreeMap<String, Attrs>,
    /// (operation, name) in the order they were called.
    pub calls: Vec<(String, String)>,
    pub in_flight: BTreeMap<String, usize>,
    pub most_in_flight: BTreeMap<String, usize>,
}

pub static CLOUD: Mutex<Option<Cloud>> = Mutex::new(None);

pub fn with_cloud<T>(f: impl FnOnce(&mut Cloud) -> T) -> T {
    let mut c = CLOUD.lock().unwrap();
    f(c.get_or_insert_with(Cloud::default))
}

fn prefix(name: &str) -> String {
    name.split('.').next().unwrap_or(name).to_string()
}

/// One operation: counted, in flight for `millis`, then `f` on the cloud.
async fn op<T>(what: &str, a: &Attrs, f: impl FnOnce(&mut Cloud) -> T) -> T {
    let p = prefix(&a.name);
    with_cloud(|c| {
        c.calls.push((what.to_string(), a.name.clone()));
        let n = c.in_flight.entry(p.clone()).or_default();
        *n += 1;
        let n = *n;
        let most = c.most_in_flight.entry(p.clone()).or_default();
        *most = (*most).max(n);
    });
    tokio::time::sleep(std::time::Duration::from_millis(a.millis)).await;
    with_cloud(|c| {
        *c.in_flight.get_mut(&p).unwrap() -= 1;
        f(c)
    })
}

fn outputs(a: &Attrs) -> Outputs {
    Outputs::from([
        ("name".into(), s(&a.name)),
        ("arn".into(), s(&format!("arn:test:{}", a.name))),
    ])
}

pub struct Thing;

#[async_trait]
impl Kind for Thing {
    type Attrs = Attrs;
    const NAME: &'static str = "test_thing";
    const TAGGABLE: bool = true;
    const REPLACE_ON: &'static [&'static str] = &["name"];
    const OUTPUTS: &'static [&'static str] = &["name", "arn"];

    async fn create(_ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        op("create", a, |c| {
            if a.fail {
                return Err(Error::aws(format!("{} refused", a.name)));
            }
            if c.things.contains_key(&a.name) {
                return Err(Error::already_exists(format!("{} exists", a.name)));
            }
            c.things.insert(a.name.clone(), a.clone());
            Ok(outputs(a))
        })
        .await
    }

    async fn read(_ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let found = with_cloud(|c| c.things.get(&a.name).cloned());
        // what the manifest says of its behaviour is not something AWS would hold
        Ok(found.map(|t| {
            (
                Attrs {
                    fail: a.fail,
                    millis: a.millis,
                    ..t
                },
                outputs(a),
            )
        }))
    }

    async fn update(_ctx: &Ctx, _live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        op("update", want, |c| {
            c.things.insert(want.name.clone(), want.clone())
        })
        .await;
        Ok(outputs(want))
    }

    async fn delete(_ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        op("delete", a, |c| c.things.remove(&a.name)).await;
        Ok(vec![])
    }
}
