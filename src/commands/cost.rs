//! `deploy cost <stack>`: what one execution and a month of them cost, from a recorded
//! execution or from every scenario of the stack run on the local engine (the same definition
//! costs differently on different paths: the fewest and the most transitions are named).

use super::Setup;
use super::scenarios::{recorded, run_scenario, scenario_files};
use crate::cost::{self, Prices, Usage, Workflow};
use crate::error::{Error, Result};
use crate::options::{Format, Global, OutputArgs, Run};
use clap::Args;
use serde_json::{Value, json};
use std::path::PathBuf;

/// `deploy cost`'s command line.
#[derive(Debug, Clone, Args)]
pub struct CostArgs {
    /// The stack whose workflow to price
    #[arg(required_unless_present = "show_prices")]
    pub stack: Option<String>,
    /// Price this finished execution (on AWS, moto or `deploy local`) instead of the scenarios
    #[arg(long, value_name = "ARN")]
    pub from_execution: Option<String>,
    /// Executions a month, for the monthly figure
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub executions: u64,
    /// Prices to use instead of the published ones (the shape `--show-prices` prints)
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Print the published prices used (with their source and date) and stop
    #[arg(long)]
    pub show_prices: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[async_trait::async_trait(?Send)]
impl Run for CostArgs {
    fn format(&self) -> Format {
        self.out.format
    }
    async fn run(&self, g: &Global) -> Result<()> {
        if self.show_prices {
            outp!("{}", cost::published());
            return Ok(());
        }
        let prices = cost::prices(self.prices.as_deref())?;
        let stack = self.stack.as_deref().expect("clap requires it");
        let setup = Setup::new(g)?;
        let priced = match &self.from_execution {
            Some(arn) => from_execution(&setup, g, arn).await?,
            None => from_scenarios(&setup, g, stack).await?,
        };
        report(stack, &priced, self.executions, &prices, self.out.format);
        Ok(())
    }
}

/// What is priced: the workflow, where, how big, and one usage per execution or scenario.
struct Priced {
    workflow: Workflow,
    region: String,
    definition_bytes: usize,
    /// (scenario name or execution ARN, usage)
    runs: Vec<(String, Usage)>,
    from_execution: bool,
}

async fn from_execution(setup: &Setup, g: &Global, arn: &str) -> Result<Priced> {
    let ctx = setup.connect(&g.aws).await?;
    let (described, events) = recorded(&ctx, arn).await?;
    let machine = ctx
        .sfn
        .describe_state_machine()
        .state_machine_arn(described.state_machine_arn())
        .send()
        .await
        .map_err(|e| crate::aws::api_error("DescribeStateMachine", &e))?;
    let region = arn.split(':').nth(3).unwrap_or(&ctx.region).to_string();
    Ok(Priced {
        workflow: Workflow::parse(machine.r#type().as_str()),
        region,
        definition_bytes: machine.definition().len(),
        runs: vec![(arn.to_string(), cost::usage(&events))],
        from_execution: true,
    })
}

async fn from_scenarios(setup: &Setup, g: &Global, stack: &str) -> Result<Priced> {
    let s = setup.project.load(
        stack,
        &crate::manifest::VarInputs {
            pairs: vec![],
            files: vec![],
            placeholders: true,
        },
        &setup.env,
    )?;
    let machine = s
        .resources
        .values()
        .find(|d| d.kind.name() == "sfn_state_machine")
        .ok_or_else(|| Error::user(format!("stack `{stack}` has no state machine to price")))?;
    let workflow = Workflow::parse(
        machine
            .attrs
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("STANDARD"),
    );
    let region = g
        .aws
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into());
    let mut runs = Vec::new();
    let mut definition_bytes = 0;
    for f in scenario_files(setup, stack)? {
        let r = run_scenario(setup, stack, &f).await?;
        definition_bytes = definition_bytes.max(r.definition.to_string().len());
        runs.push((r.name, cost::usage(&cost::engine_events(&r.exec))));
    }
    if runs.is_empty() {
        return Err(
            Error::user(format!("stack `{stack}` has no scenarios to price")).help(
                "add scenarios to stacks/<stack>/tests, or price a real one: --from-execution ARN",
            ),
        );
    }
    Ok(Priced {
        workflow,
        region,
        definition_bytes,
        runs,
        from_execution: false,
    })
}

fn dollars(x: f64) -> String {
    if x == 0.0 {
        "$0".into()
    } else if x < 0.01 {
        format!("${x:.6}")
    } else {
        format!("${x:.2}")
    }
}

/// 100000 → 100,000
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn calls_text(u: &Usage) -> String {
    let parts: Vec<String> = u.calls.iter().map(|(s, n)| format!("{s} {n}")).collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn report(stack: &str, p: &Priced, executions: u64, prices: &Prices, format: Format) {
    let r = Report {
        stack,
        p,
        executions,
        prices,
    };
    match format {
        Format::Json => outln!("{}", r.json()),
        Format::Text | Format::Markdown => r.text(),
    }
}

/// What `cost` prints, from the priced runs.
struct Report<'a> {
    stack: &'a str,
    p: &'a Priced,
    executions: u64,
    prices: &'a Prices,
}

impl Report<'_> {
    fn each(&self, u: &Usage) -> f64 {
        let p = self.p;
        cost::per_execution(u, p.workflow, &p.region, p.definition_bytes, self.prices)
    }

    /// (billed, taken off by the free tier) for a month of executions like `u`.
    fn month(&self, u: &Usage) -> (f64, f64) {
        let p = self.p;
        let (bytes, n) = (p.definition_bytes, self.executions);
        cost::monthly(u, p.workflow, &p.region, bytes, n, self.prices)
    }

    /// The runs with the fewest and the most transitions.
    fn extremes(&self) -> (&(String, Usage), &(String, Usage)) {
        let runs = &self.p.runs;
        let fewest = runs.iter().min_by_key(|(_, u)| u.transitions());
        let most = runs.iter().max_by_key(|(_, u)| u.transitions());
        (
            fewest.expect("one run at least"),
            most.expect("one run at least"),
        )
    }

    fn json(&self) -> Value {
        let (p, prices) = (self.p, self.prices);
        let mut doc = json!({
            "stack": self.stack, "workflow": p.workflow.name(), "region": p.region,
            "executions_per_month": self.executions,
            "prices": {"source": prices.source, "date": prices.date, "currency": prices.currency},
        });
        if p.from_execution {
            self.execution_json(&mut doc);
        } else {
            self.scenarios_json(&mut doc);
        }
        doc
    }

    fn execution_json(&self, doc: &mut Value) {
        let u = &self.p.runs[0].1;
        let (billed, free) = self.month(u);
        doc["execution"] = json!(self.p.runs[0].0);
        doc["transitions_per_execution"] = json!(u.transitions());
        doc["usd_per_execution"] = json!(self.each(u));
        doc["monthly_usd"] = json!(billed);
        doc["free_tier_usd"] = json!(free);
        doc["calls_per_execution"] = json!(u.calls);
        doc["calls_usd_per_execution"] = cost::calls_priced(u, self.prices)
            .into_iter()
            .filter_map(|(s, _, usd)| Some((s, json!(usd?))))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }

    fn scenarios_json(&self, doc: &mut Value) {
        let (fewest, most) = self.extremes();
        let runs: Vec<Value> = self.p.runs.iter().map(|(name, u)| {
            json!({"name": name, "transitions": u.transitions(), "states_entered": u.entered,
                   "retries": u.retries, "seconds": u.seconds, "usd": self.each(u), "calls": u.calls})
        }).collect();
        let ((lo, free_lo), (hi, free_hi)) = (self.month(&fewest.1), self.month(&most.1));
        doc["scenarios"] = json!(runs);
        doc["transitions_per_execution"] = json!({
            "min": fewest.1.transitions(), "min_scenario": fewest.0,
            "max": most.1.transitions(), "max_scenario": most.0});
        doc["monthly_usd"] = json!({"min": lo, "max": hi});
        doc["free_tier_usd"] = json!({"min": free_lo, "max": free_hi});
        let mut calls = serde_json::Map::new();
        for (s, n) in self.p.runs.iter().flat_map(|(_, u)| &u.calls) {
            let e = calls
                .entry(s.clone())
                .or_insert(json!({"min": n, "max": n}));
            e["min"] = json!(e["min"].as_u64().unwrap().min(*n));
            e["max"] = json!(e["max"].as_u64().unwrap().max(*n));
        }
        doc["calls_per_execution"] = Value::Object(calls);
    }

    fn text(&self) {
        let p = self.p;
        let what = if p.from_execution {
            format!("execution {}", p.runs[0].0)
        } else {
            format!("its {} scenarios on the local engine", p.runs.len())
        };
        let (stack, workflow) = (self.stack, p.workflow.name());
        outln!(
            "`{stack}` ({workflow}, {}), per execution, from {what}:",
            p.region
        );
        self.runs_text();
        self.monthly_text();
        self.calls_text();
        outln!(
            "prices: {} as published on {} ({}; --prices FILE for others)",
            self.prices.currency,
            self.prices.date,
            self.prices.source.split(' ').next().unwrap_or_default()
        );
    }

    /// A line per run: transitions, what Step Functions bills, the task calls.
    fn runs_text(&self) {
        let runs = &self.p.runs;
        let width = runs.iter().map(|(n, _)| n.len()).max().unwrap_or(8);
        let width = width.max(8);
        let head = ("", "transitions", "Step Functions");
        outln!(
            "  {:width$}  {:>11}  {:>14}  task calls",
            head.0,
            head.1,
            head.2
        );
        for (name, u) in runs {
            let retries = if u.retries > 0 {
                format!(" ({} retries)", u.retries)
            } else {
                String::new()
            };
            let (n, usd) = (u.transitions(), dollars(self.each(u)));
            outln!(
                "  {name:width$}  {n:>11}  {usd:>14}  {}{retries}",
                calls_text(u)
            );
        }
    }

    /// A month of executions: its cost, from the fewest to the most transitions.
    fn monthly_text(&self) {
        let (fewest, most) = self.extremes();
        let per = |u: &Usage| match self.p.workflow {
            Workflow::Standard => {
                format!(
                    "{} transitions",
                    thousands(u.transitions() * self.executions)
                )
            }
            Workflow::Express => format!("{} requests", thousands(self.executions)),
        };
        let (lo, free) = self.month(&fewest.1);
        let n = thousands(self.executions);
        if fewest.1.transitions() != most.1.transitions() {
            let (hi, _) = self.month(&most.1);
            let (f, m) = (&fewest.1, &most.1);
            outln!(
                "  fewest: {}, {} transition(s) ({}); most: {}, {} ({})",
                fewest.0,
                f.transitions(),
                dollars(self.each(f)),
                most.0,
                m.transitions(),
                dollars(self.each(m))
            );
            let (lo, hi, f, m) = (dollars(lo), dollars(hi), per(f), per(m));
            outln!("{n} executions a month: {lo} – {hi} ({f} – {m})");
        } else {
            if self.p.runs.len() > 1 {
                outln!("  every scenario: {} transitions", fewest.1.transitions());
            }
            outln!(
                "{n} executions a month: {} ({})",
                dollars(lo),
                per(&fewest.1)
            );
        }
        if free > 0.0 {
            outln!(
                "  after the free tier of {} transitions a month ({} off)",
                thousands(self.prices.standard.free_transitions_per_month),
                dollars(free)
            );
        }
    }

    /// What the task calls cost at their own services, and which are not priced here.
    fn calls_text(&self) {
        let (_, most) = self.extremes();
        let prices = &self.prices.calls;
        let priced: Vec<String> = most
            .1
            .calls
            .keys()
            .filter_map(|s| {
                let c = prices.get(s)?;
                Some(format!(
                    "{s}: {} per million ({})",
                    dollars(c.per_million),
                    c.what
                ))
            })
            .collect();
        let unpriced: Vec<&str> = most
            .1
            .calls
            .keys()
            .filter(|s| !prices.contains_key(*s))
            .map(String::as_str)
            .collect();
        if !priced.is_empty() {
            outln!(
                "task calls are billed by their services: {}",
                priced.join("; ")
            );
        }
        if !unpriced.is_empty() {
            outln!("  not priced here: {}", unpriced.join(", "));
        }
    }
}
