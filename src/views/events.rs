//! The executor's events as people and CI see them: a live progress view for people (a spinner per resource on a
//! terminal, one line per finished resource otherwise) and JSON lines for CI. The executor
//! only emits events; it never prints.

use crate::output::{paint, style};
use crate::plan::Action;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        stack: String,
        id: String,
        kind: String,
        name: String,
        action: Action,
    },
    Done {
        stack: String,
        id: String,
        kind: String,
        /// The resource's name, as it is once created (known after apply before).
        name: String,
        action: Action,
        seconds: f64,
        adopted: bool,
    },
    Failed {
        stack: String,
        id: String,
        action: Action,
        error: String,
    },
    Skipped {
        stack: String,
        id: String,
        reason: String,
    },
    Warning {
        stack: String,
        message: String,
    },
    /// Something a resource operation did that the user should know (e.g. emptied a bucket).
    Note {
        stack: String,
        id: String,
        message: String,
    },
}

pub trait View: Send + Sync {
    fn event(&self, e: &Event);
}

fn past(a: Action) -> &'static str {
    match a {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Delete => "deleted",
        Action::NoOp => "unchanged",
        Action::Adopt => "adopted",
        Action::Forget => "forgotten",
    }
}

fn ing(a: Action) -> &'static str {
    match a {
        Action::Create => "creating",
        Action::Update => "updating",
        Action::Replace => "replacing",
        Action::Delete => "deleting",
        Action::NoOp => "checking",
        Action::Adopt => "adopting",
        Action::Forget => "forgetting",
    }
}

/// For people: on a terminal, a spinner per resource in flight under a `N/M done` line;
/// otherwise plain lines. Each finished resource says `[N/M]`, its kind, id and final name,
/// what was done and how long it took.
pub struct Human {
    multi: Option<MultiProgress>,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    /// The changes planned, and how many have ended (done, failed or skipped).
    total: usize,
    ended: std::sync::atomic::AtomicUsize,
    overall: Option<ProgressBar>,
    color: bool,
}

impl Human {
    pub fn new(total: usize) -> Self {
        let multi = std::io::stderr().is_terminal().then(MultiProgress::new);
        let overall = multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(total as u64));
            bar.set_style(ProgressStyle::with_template("  {pos}/{len} done  {elapsed}").unwrap());
            bar
        });
        let color = crate::output::color_stderr();
        Human {
            multi,
            bars: Mutex::new(BTreeMap::new()),
            total,
            ended: Default::default(),
            overall,
            color,
        }
    }

    /// `[N/M]` for the resource that just ended.
    fn count(&self) -> String {
        let n = self.ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if let Some(o) = &self.overall {
            o.set_position(n as u64);
        }
        let width = self.total.to_string().len();
        format!("[{n:>width$}/{}]", self.total)
    }

    /// A spinner for a resource in flight (on a terminal).
    fn spin(&self, key: &str, message: String) {
        let Some(m) = &self.multi else {
            return;
        };
        let bar = match &self.overall {
            Some(o) => m.insert_before(o, ProgressBar::new_spinner()),
            None => m.add(ProgressBar::new_spinner()),
        };
        bar.set_style(ProgressStyle::with_template("  {spinner} {msg} {elapsed}").unwrap());
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bars.lock().unwrap().insert(key.to_string(), bar);
    }

    /// The resource's spinner goes.
    fn stop(&self, key: &str) {
        if let Some(bar) = self.bars.lock().unwrap().remove(key) {
            bar.finish_and_clear();
        }
    }

    fn line(&self, s: String) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None => eprintln!("{s}"),
        }
    }
}

impl View for Human {
    fn event(&self, e: &Event) {
        match e {
            Event::Start {
                stack,
                id,
                kind,
                name,
                action,
            } => {
                self.spin(
                    &format!("{stack}/{id}"),
                    format!("{stack}: {} {kind}.{id}  {name}", ing(*action)),
                );
            }
            Event::Done {
                stack,
                id,
                kind,
                name,
                action,
                seconds,
                adopted,
            } => {
                self.stop(&format!("{stack}/{id}"));
                let adopted = if *adopted { " (adopted existing)" } else { "" };
                let st = match action {
                    Action::Create => style::ADD,
                    Action::Update => style::CHANGE,
                    Action::Adopt => style::ADOPT,
                    _ => style::REMOVE,
                };
                let n = self.count();
                let symbol = paint(self.color, st, format!("{:<3}", action.symbol()));
                self.line(format!(
                    "  {symbol} {n} {stack}: {kind}.{id}  {name}  {}{adopted} in {seconds:.1}s",
                    past(*action)
                ));
            }
            Event::Failed {
                stack,
                id,
                action,
                error,
            } => {
                self.stop(&format!("{stack}/{id}"));
                let n = self.count();
                let bang = paint(self.color, style::ERROR, "!  ");
                self.line(format!(
                    "  {bang} {n} {stack}: {id} failed to {}: {error}",
                    action.verb()
                ));
            }
            Event::Skipped { stack, id, reason } => {
                let n = self.count();
                self.line(format!("  .   {n} {stack}: {id} skipped ({reason})"))
            }
            Event::Warning { stack, message } => {
                self.line(format!("  warning: {stack}: {message}"))
            }
            Event::Note { stack, id, message } => {
                self.line(format!("      {stack}: {id}: {message}"))
            }
        }
    }
}

/// For CI: one JSON object per event on stdout.
pub struct Json;

impl View for Json {
    fn event(&self, e: &Event) {
        outln!("{}", super::json_doc(serde_json::to_value(e).unwrap()));
    }
}

impl Drop for Human {
    fn drop(&mut self) {
        if let Some(o) = &self.overall {
            o.finish_and_clear();
        }
    }
}
