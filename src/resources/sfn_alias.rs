//! `sfn_state_machine_alias`: the alias a state machine's `[versions]` table asks for (the
//! loader declares it as `<machine>_alias`). It routes to the machine's newest version; a
//! change of version is rolled out all at once, as a canary or linearly, watching CloudWatch
//! alarms between steps: an alarm in ALARM routes everything back to the previous version and
//! fails with its own exit code. The alias on AWS is the record of a rollout in progress: one
//! stopped half way (Ctrl-C, `--no-wait`, a kill) reads back as not yet on the new version, and
//! the next `up` carries on from the weight it reached.

use super::{Kind, Notes, Outputs};
use crate::aws::{Ctx, api_error};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_sfn::types::RoutingConfigurationListItem;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Rollout {
    #[default]
    AllAtOnce,
    Canary,
    Linear,
}

/// A state machine's `[versions]` table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    /// The alias event sources and callers go through (`${machine.alias_arn}`).
    #[serde(default)]
    pub alias: Option<String>,
    /// How many versions to keep (never one an alias routes to or an execution runs).
    #[serde(default = "five")]
    pub keep: u32,
    #[serde(flatten)]
    pub rollout: Plan,
}

/// How a new version reaches the alias.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    #[serde(default)]
    pub rollout: Rollout,
    /// canary: the new version's share first; linear: the step size.
    #[serde(default = "ten")]
    pub percent: u64,
    /// Time between steps, e.g. "5m", "3s".
    #[serde(default = "five_minutes")]
    pub interval: String,
    /// CloudWatch alarm names: one in ALARM rolls the alias back.
    #[serde(default)]
    pub alarms: Vec<String>,
}

fn five() -> u32 {
    5
}
fn ten() -> u64 {
    10
}
fn five_minutes() -> String {
    "5m".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    pub state_machine_arn: String,
    /// The alias's name (not prefixed by the env: it lives inside the machine).
    pub alias: String,
    /// The version everything should end up routed to.
    pub version_arn: String,
    #[serde(flatten)]
    pub plan: Plan,
}

impl Plan {
    /// The new version's weights, step by step, ending at 100.
    pub fn steps(&self) -> Vec<u64> {
        let p = self.percent.clamp(1, 100);
        match self.rollout {
            Rollout::AllAtOnce => vec![100],
            Rollout::Canary => {
                if p >= 100 {
                    vec![100]
                } else {
                    vec![p, 100]
                }
            }
            Rollout::Linear => {
                let mut out: Vec<u64> = (1..).map(|i| i * p).take_while(|w| *w < 100).collect();
                out.push(100);
                out
            }
        }
    }

    pub fn interval(&self) -> Result<Duration> {
        humantime::parse_duration(&self.interval).map_err(|e| {
            Error::user(format!("interval {:?}: {e}", self.interval))
                .help("a duration such as \"5m\", \"30s\" or \"3s\"")
        })
    }

    /// What the plan shows for a rollout to a new version.
    pub fn describe(&self) -> String {
        let steps: Vec<String> = self.steps().iter().map(|w| format!("{w}%")).collect();
        let watch = if self.alarms.is_empty() {
            String::new()
        } else {
            format!(", watching {}", self.alarms.join(", "))
        };
        match self.rollout {
            Rollout::AllAtOnce => format!("all at once{watch}"),
            _ => format!("{} every {}{watch}", steps.join(" → "), self.interval),
        }
    }
}

pub struct StateMachineAlias;

fn alias_arn(a: &Attrs) -> String {
    format!("{}:{}", a.state_machine_arn, a.alias)
}

fn routing(list: &[(&str, u64)]) -> Vec<RoutingConfigurationListItem> {
    list.iter()
        .filter(|(_, w)| *w > 0)
        .map(|(v, w)| {
            RoutingConfigurationListItem::builder()
                .state_machine_version_arn(*v)
                .weight(*w as i32)
                .build()
                .expect("version and weight are set")
        })
        .collect()
}

/// The alarms by name: each must exist (a misspelt name would otherwise read as healthy);
/// returns those in ALARM.
async fn alarms_firing(ctx: &Ctx, names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(vec![]);
    }
    let out = ctx
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| api_error("DescribeAlarms", &e))?;
    let found: Vec<(String, String)> = out
        .metric_alarms()
        .iter()
        .map(|a| {
            (
                a.alarm_name().unwrap_or_default().to_string(),
                a.state_value()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .chain(out.composite_alarms().iter().map(|a| {
            (
                a.alarm_name().unwrap_or_default().to_string(),
                a.state_value()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        }))
        .collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !found.iter().any(|(f, _)| f == *n))
        .collect();
    if !missing.is_empty() {
        let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        return Err(Error::user(format!(
            "the rollout watches CloudWatch alarm {} that does not exist (in this account and region)",
            list.join(", ")
        ))
        .help("create the alarm first, or fix its name in [versions] alarms: a missing alarm would never roll back"));
    }
    Ok(found
        .into_iter()
        .filter(|(_, s)| s == "ALARM")
        .map(|(n, _)| n)
        .collect())
}

/// The alias's routing on AWS: (version, weight) pairs; `None` when there is no alias.
pub async fn current(ctx: &Ctx, a: &Attrs) -> Result<Option<Vec<(String, u64)>>> {
    match ctx
        .sfn
        .describe_state_machine_alias()
        .state_machine_alias_arn(alias_arn(a))
        .send()
        .await
    {
        Ok(d) => Ok(Some(
            d.routing_configuration()
                .iter()
                .map(|r| (r.state_machine_version_arn().to_string(), r.weight() as u64))
                .collect(),
        )),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found()) =>
        {
            Ok(None)
        }
        Err(e) => Err(api_error("DescribeStateMachineAlias", &e)),
    }
}

/// Routes the alias: (version, weight) pairs, weights summing to 100.
pub async fn route(ctx: &Ctx, a: &Attrs, list: &[(&str, u64)]) -> Result<()> {
    ctx.sfn
        .update_state_machine_alias()
        .state_machine_alias_arn(alias_arn(a))
        .set_routing_configuration(Some(routing(list)))
        .send()
        .await
        .map_err(|e| api_error("UpdateStateMachineAlias", &e))?;
    Ok(())
}

/// Watches the alarms for `wait`; the names of those that fired, if any did.
async fn watch(ctx: &Ctx, alarms: &[String], wait: Duration) -> Result<Vec<String>> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        let firing = alarms_firing(ctx, alarms).await?;
        if !firing.is_empty() {
            return Ok(firing);
        }
        let now = tokio::time::Instant::now();
        if now >= until {
            return Ok(vec![]);
        }
        tokio::time::sleep((until - now).min(Duration::from_secs(1))).await;
    }
}

fn outputs(a: &Attrs, routing: &[(String, u64)]) -> Outputs {
    let mut o = Outputs::new();
    o.insert("arn".into(), json!(alias_arn(a)));
    o.insert(
        "routing".into(),
        json!(
            routing
                .iter()
                .map(|(v, w)| json!({"version_arn": v, "weight": w}))
                .collect::<Vec<_>>()
        ),
    );
    o
}

#[async_trait]
impl Kind for StateMachineAlias {
    type Attrs = Attrs;
    const NAME: &'static str = "sfn_state_machine_alias";
    const TAGGABLE: bool = false;
    const REPLACE_ON: &'static [&'static str] = &["state_machine_arn", "alias"];
    const OUTPUTS: &'static [&'static str] = &["arn"];

    fn display_name(a: &Attrs) -> String {
        a.alias.clone()
    }

    async fn create(ctx: &Ctx, a: &Attrs) -> Result<Outputs> {
        alarms_firing(ctx, &a.plan.alarms).await?;
        a.plan.interval()?;
        let out = ctx
            .sfn
            .create_state_machine_alias()
            .name(&a.alias)
            .set_routing_configuration(Some(routing(&[(&a.version_arn, 100)])))
            .send()
            .await;
        match out {
            Ok(o) => {
                let mut outs = outputs(a, &[(a.version_arn.clone(), 100)]);
                outs.insert("arn".into(), json!(o.state_machine_alias_arn()));
                Ok(outs)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                Err(Error::already_exists(format!(
                    "alias {} already exists",
                    alias_arn(a)
                )))
            }
            Err(e) => Err(api_error("CreateStateMachineAlias", &e)),
        }
    }

    async fn read(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Option<(Attrs, Outputs)>> {
        let Some(r) = current(ctx, a).await? else {
            return Ok(None);
        };
        // On the new version only when it takes everything; half way through a rollout the
        // alias still reads as on the version it is leaving, so the next `up` carries on.
        let on = match r.as_slice() {
            [(v, 100)] => v.clone(),
            _ => r
                .iter()
                .filter(|(v, _)| *v != a.version_arn)
                .max_by_key(|(_, w)| *w)
                .or(r.iter().max_by_key(|(_, w)| *w))
                .map(|(v, _)| v.clone())
                .unwrap_or_default(),
        };
        let live = Attrs {
            version_arn: on,
            ..a.clone()
        };
        Ok(Some((live, outputs(a, &r))))
    }

    async fn update(ctx: &Ctx, live: &Attrs, want: &Attrs, _known: &Outputs) -> Result<Outputs> {
        let wait = want.plan.interval()?;
        let firing = alarms_firing(ctx, &want.plan.alarms).await?;
        let now = current(ctx, want).await?.unwrap_or_default();
        if live.version_arn == want.version_arn && now.len() == 1 {
            // only the rollout settings changed: nothing to do on AWS
            return Ok(outputs(want, &now));
        }
        let previous = live.version_arn.as_str();
        // everything back on the previous version: the rollout's one way out
        let roll_back = |fired: Vec<String>, at: u64| async move {
            route(ctx, want, &[(previous, 100)]).await?;
            Err::<Outputs, _>(
                Error::rolled_back(format!(
                    "alias {}: alarm {} in ALARM at {at}% on the new version; 100% on {previous}",
                    want.alias,
                    fired.join(", ")
                ))
                .help("the new version stays published; once the alarm is OK, `deploy up` rolls it out again"),
            )
        };
        if !firing.is_empty() {
            // not a single execution goes to the new version while an alarm fires
            return roll_back(firing, 0).await;
        }
        let reached = now
            .iter()
            .find(|(v, _)| *v == want.version_arn)
            .map(|(_, w)| *w)
            .unwrap_or(0);
        let steps: Vec<u64> = want
            .plan
            .steps()
            .into_iter()
            .filter(|w| *w > reached)
            .collect();
        for (i, w) in steps.iter().enumerate() {
            if *w == 100 {
                route(ctx, want, &[(&want.version_arn, 100)]).await?;
                break;
            }
            route(ctx, want, &[(&want.version_arn, *w), (previous, 100 - w)]).await?;
            announce(want, previous, *w, (i + 1, steps.len()));
            if ctx.rollout_no_wait {
                let now = current(ctx, want).await?.unwrap_or_default();
                return Ok(outputs(want, &now));
            }
            let fired = watch(ctx, &want.plan.alarms, wait).await?;
            if !fired.is_empty() {
                return roll_back(fired, *w).await;
            }
        }
        Ok(outputs(want, &[(want.version_arn.clone(), 100)]))
    }

    async fn delete(ctx: &Ctx, a: &Attrs, _known: &Outputs) -> Result<Notes> {
        match ctx
            .sfn
            .delete_state_machine_alias()
            .state_machine_alias_arn(alias_arn(a))
            .send()
            .await
        {
            Ok(_) => Ok(vec![]),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found()) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(api_error("DeleteStateMachineAlias", &e)),
        }
    }
}

/// A step of a rollout taken: `w`% on the new version, step `n` of `of`.
fn announce(want: &Attrs, previous: &str, w: u64, (n, of): (usize, usize)) {
    let (alias, new) = (&want.alias, &want.version_arn);
    tracing::info!("alias {alias}: {w}% on {new}, {}% on {previous}", 100 - w);
    let interval = &want.plan.interval;
    eprintln!("alias {alias}: {w}% on the new version; next step in {interval} (step {n} of {of})");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rollout: Rollout, percent: u64) -> Plan {
        Plan {
            rollout,
            percent,
            interval: "3s".into(),
            alarms: vec![],
        }
    }

    #[test]
    fn steps_end_at_everything_on_the_new_version() {
        assert_eq!(plan(Rollout::AllAtOnce, 10).steps(), [100]);
        assert_eq!(plan(Rollout::Canary, 10).steps(), [10, 100]);
        assert_eq!(plan(Rollout::Linear, 25).steps(), [25, 50, 75, 100]);
        assert_eq!(plan(Rollout::Linear, 30).steps(), [30, 60, 90, 100]);
        assert_eq!(plan(Rollout::Canary, 100).steps(), [100]);
        assert_eq!(plan(Rollout::Canary, 50).describe(), "50% → 100% every 3s");
    }
}
