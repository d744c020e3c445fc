//! The Amazon States Language, parsed once into one model that the validator, the local
//! engine, the IAM derivation and the diagrams all read: scopes (the machine, each Parallel
//! branch, each Map item processor), their states in definition order, each state's type,
//! query language and transitions, and the scopes nested in it.
//!
//! Parsing never fails: a definition the validator is about to reject still parses, with what
//! is missing or of the wrong type left out (the validator reports it from the raw JSON, which
//! each scope and state keeps with its JSON pointer).

use serde_json::{Map, Value};

/// A state machine definition: its top scope.
#[derive(Debug)]
pub struct Machine<'a> {
    pub top: Scope<'a>,
}

/// One scope: the machine's top level, a Parallel branch, or a Map item processor.
#[derive(Debug)]
pub struct Scope<'a> {
    /// JSON pointer of the scope's object ("" for the machine).
    pub pointer: String,
    pub raw: &'a Value,
    pub start_at: Option<&'a str>,
    /// In definition order.
    pub states: Vec<State<'a>>,
}

#[derive(Debug)]
pub struct State<'a> {
    pub name: &'a str,
    /// JSON pointer of the state's object.
    pub pointer: String,
    pub raw: &'a Value,
    pub kind: Kind,
    /// Its own QueryLanguage, else the machine's top-level one (as AWS resolves it; a nested
    /// scope does not inherit from the Map or Parallel state around it).
    pub language: Language,
    /// Next, Default, each Choice rule's Next, each Catch's Next, in that order.
    pub transitions: Vec<Transition<'a>>,
    /// `"End": true`, or a Succeed / Fail state.
    pub terminal: bool,
    /// Parallel: its branches; Map: its item processor (ItemProcessor, or the older Iterator).
    pub scopes: Vec<Scope<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Task,
    Pass,
    Choice,
    Wait,
    Succeed,
    Fail,
    Parallel,
    Map,
    /// A Type that is none of those (or none at all): the validator says so.
    Unknown,
}

impl Kind {
    fn of(ty: Option<&str>) -> Kind {
        match ty {
            Some("Task") => Kind::Task,
            Some("Pass") => Kind::Pass,
            Some("Choice") => Kind::Choice,
            Some("Wait") => Kind::Wait,
            Some("Succeed") => Kind::Succeed,
            Some("Fail") => Kind::Fail,
            Some("Parallel") => Kind::Parallel,
            Some("Map") => Kind::Map,
            _ => Kind::Unknown,
        }
    }

    /// The name history events use (`TaskStateEntered`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Task => "Task",
            Kind::Pass => "Pass",
            Kind::Choice => "Choice",
            Kind::Wait => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail => "Fail",
            Kind::Parallel => "Parallel",
            Kind::Map => "Map",
            Kind::Unknown => "Unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    JsonPath,
    Jsonata,
}

impl Language {
    fn of(v: Option<&Value>) -> Option<Language> {
        match v.and_then(Value::as_str) {
            Some("JSONata") => Some(Language::Jsonata),
            Some("JSONPath") => Some(Language::JsonPath),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Language::JsonPath => "JSONPath",
            Language::Jsonata => "JSONata",
        }
    }
}

/// Where a transition comes from in its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Next,
    Default,
    /// The Choice rule at this index.
    Rule(usize),
    /// The Catch at this index.
    Catch(usize),
}

#[derive(Debug, Clone)]
pub struct Transition<'a> {
    pub via: Via,
    pub to: &'a str,
    /// The rule or catcher object (Assign, ErrorEquals, ...); the state itself for Next/Default.
    pub raw: &'a Value,
}

impl Transition<'_> {
    /// The pointer of the field naming the target, relative to the state.
    pub fn at(&self) -> String {
        match self.via {
            Via::Next => "/Next".into(),
            Via::Default => "/Default".into(),
            Via::Rule(i) => format!("/Choices/{i}/Next"),
            Via::Catch(i) => format!("/Catch/{i}/Next"),
        }
    }
}

/// A JSON pointer token for a key (`~` and `/` escaped).
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl<'a> Machine<'a> {
    pub fn parse(definition: &'a Value) -> Machine<'a> {
        let language = Language::of(definition.get("QueryLanguage")).unwrap_or(Language::JsonPath);
        Machine {
            top: Scope::parse(definition, String::new(), language),
        }
    }
}

impl<'a> Scope<'a> {
    fn parse(raw: &'a Value, pointer: String, machine: Language) -> Scope<'a> {
        let states = raw
            .get("States")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(name, s)| {
                let p = format!("{pointer}/States/{}", escape(name));
                State::parse(name, s, p, machine)
            })
            .collect();
        Scope {
            start_at: raw.get("StartAt").and_then(Value::as_str),
            pointer,
            raw,
            states,
        }
    }

    pub fn state(&self, name: &str) -> Option<&State<'a>> {
        self.states.iter().find(|s| s.name == name)
    }

    /// The `States` object, when it is one.
    pub fn states_object(&self) -> Option<&'a Map<String, Value>> {
        self.raw.get("States").and_then(Value::as_object)
    }

    /// The state named `name` here or in any nested scope, with the scope that holds it.
    pub fn find(&self, name: &str) -> Option<(&Scope<'a>, &State<'a>)> {
        self.state(name).map(|s| (self, s)).or_else(|| {
            self.states
                .iter()
                .flat_map(|s| &s.scopes)
                .find_map(|inner| inner.find(name))
        })
    }

    /// Every state of this scope and of the scopes nested in it, depth first, each state before
    /// its nested scopes.
    pub fn all_states(&self) -> Vec<&State<'a>> {
        let mut out = Vec::new();
        for s in &self.states {
            out.push(s);
            for inner in &s.scopes {
                out.extend(inner.all_states());
            }
        }
        out
    }
}

impl<'a> State<'a> {
    fn parse(name: &'a str, raw: &'a Value, pointer: String, machine: Language) -> State<'a> {
        let kind = Kind::of(raw.get("Type").and_then(Value::as_str));
        let language = Language::of(raw.get("QueryLanguage")).unwrap_or(machine);
        let mut transitions = Vec::new();
        let target = |v: &'a Value| v.get("Next").and_then(Value::as_str);
        if let Some(to) = target(raw) {
            transitions.push(Transition {
                via: Via::Next,
                to,
                raw,
            });
        }
        if let Some(to) = raw.get("Default").and_then(Value::as_str) {
            transitions.push(Transition {
                via: Via::Default,
                to,
                raw,
            });
        }
        let list = |key: &str| raw.get(key).and_then(Value::as_array).into_iter().flatten();
        for (i, r) in list("Choices").enumerate() {
            if let Some(to) = target(r) {
                transitions.push(Transition {
                    via: Via::Rule(i),
                    to,
                    raw: r,
                });
            }
        }
        for (i, c) in list("Catch").enumerate() {
            if let Some(to) = target(c) {
                transitions.push(Transition {
                    via: Via::Catch(i),
                    to,
                    raw: c,
                });
            }
        }
        let mut scopes = Vec::new();
        match kind {
            Kind::Parallel => {
                for (i, b) in list("Branches").enumerate() {
                    scopes.push(Scope::parse(b, format!("{pointer}/Branches/{i}"), machine));
                }
            }
            Kind::Map => {
                for key in ["ItemProcessor", "Iterator"] {
                    if let Some(p) = raw.get(key).filter(|p| p.is_object()) {
                        scopes.push(Scope::parse(p, format!("{pointer}/{key}"), machine));
                        break;
                    }
                }
            }
            _ => {}
        }
        State {
            name,
            terminal: raw.get("End").and_then(Value::as_bool) == Some(true)
                || matches!(kind, Kind::Succeed | Kind::Fail),
            pointer,
            raw,
            kind,
            language,
            transitions,
            scopes,
        }
    }

    /// The state's `Next`.
    pub fn next(&self) -> Option<&'a str> {
        self.transitions
            .iter()
            .find(|t| t.via == Via::Next)
            .map(|t| t.to)
    }

    pub fn jsonata(&self) -> bool {
        self.language == Language::Jsonata
    }

    /// The Map state's item processor.
    pub fn processor(&self) -> Option<&Scope<'a>> {
        (self.kind == Kind::Map)
            .then(|| self.scopes.first())
            .flatten()
    }

    /// The raw state object, when it is one.
    pub fn object(&self) -> Option<&'a Map<String, Value>> {
        self.raw.as_object()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn task_resources_are_told_apart() {
        let i = integration;
        assert_eq!(
            i("arn:aws:states:::aws-sdk:s3:getObject"),
            Some("aws-sdk:s3:getObject")
        );
        assert_eq!(
            i("arn:aws:states:us-east-1:123456789012:sns:publish.waitForTaskToken"),
            Some("sns:publish.waitForTaskToken")
        );
        assert_eq!(
            i("arn:aws:states:us-east-1:123456789012:activity:work"),
            None
        );
        assert_eq!(i("arn:aws:lambda:us-east-1:123456789012:function:f"), None);
        assert!(is_activity(
            "arn:aws:states:us-east-1:123456789012:activity:work"
        ));
        assert!(is_lambda_function(
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        ));
        assert!(!is_lambda_function("arn:aws:states:::lambda:invoke"));
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn transitions_scopes_and_languages_come_from_one_parse() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "P"}], "Default": "F"},
            "P": {"Type": "Parallel", "QueryLanguage": "JSONPath", "Next": "M",
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F"}],
                  "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}]},
            "M": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "B", "States": {
                "B": {"Type": "Succeed"}}}},
            "F": {"Type": "Fail"}}});
        let m = Machine::parse(&def);
        let c = m.top.state("C").unwrap();
        let to: Vec<(&str, String)> = c.transitions.iter().map(|t| (t.to, t.at())).collect();
        assert_eq!(
            to,
            vec![("F", "/Default".into()), ("P", "/Choices/0/Next".into())]
        );
        let p = m.top.state("P").unwrap();
        assert_eq!(p.language, Language::JsonPath);
        assert_eq!(p.next(), Some("M"));
        assert_eq!(p.transitions[1].via, Via::Catch(0));
        // a branch's state takes the machine's language, not the Parallel state's
        assert_eq!(p.scopes[0].states[0].language, Language::Jsonata);
        assert_eq!(
            p.scopes[0].states[0].pointer,
            "/States/P/Branches/0/States/A"
        );
        let map = m.top.state("M").unwrap();
        assert_eq!(map.processor().unwrap().start_at, Some("B"));
        assert!(map.processor().unwrap().states[0].terminal);
        let names: Vec<&str> = m.top.all_states().iter().map(|s| s.name).collect();
        assert_eq!(names, ["C", "P", "A", "M", "B", "F"]);
        let (scope, b) = m.top.find("B").unwrap();
        assert_eq!(
            (scope.pointer.as_str(), b.name),
            ("/States/M/ItemProcessor", "B")
        );
    }

    #[test]
    fn a_malformed_definition_still_parses() {
        let def = json!({"States": {"X": {"Type": 3, "Next": 1, "Branches": "no"}, "Y": 5}});
        let m = Machine::parse(&def);
        assert_eq!(m.top.start_at, None);
        assert_eq!(m.top.states.len(), 2);
        assert_eq!(m.top.states[0].kind, Kind::Unknown);
        assert!(m.top.states[0].transitions.is_empty());
    }
}

/// The integration a Task's Resource names, without its ARN prefix: `aws-sdk:s3:getObject`
/// (with any `.sync` / `.waitForTaskToken`) from `arn:<partition>:states:::aws-sdk:s3:getObject`
/// or from its region- and account-qualified form
/// (`arn:aws:states:us-east-1:123456789012:aws-sdk:s3:getObject`); None for another ARN (a Lambda
/// function, an activity, a state machine).
pub fn integration(resource: &str) -> Option<&str> {
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let named = parts.len() == 6 && parts[0] == "arn" && parts[2] == "states";
    let rest = parts.get(5).filter(|_| named)?;
    let other = ["activity:", "stateMachine:", "execution:"];
    (!other.iter().any(|o| rest.starts_with(o))).then_some(*rest)
}

/// A Lambda function's ARN (`arn:<partition>:lambda:<region>:<account>:function:<name>`).
pub fn is_lambda_function(resource: &str) -> bool {
    let parts: Vec<&str> = resource.splitn(7, ':').collect();
    parts.len() >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function"
}

/// An activity's ARN (`arn:<partition>:states:<region>:<account>:activity:<name>`).
pub fn is_activity(resource: &str) -> bool {
    let parts: Vec<&str> = resource.splitn(7, ':').collect();
    parts.len() >= 7 && parts[0] == "arn" && parts[2] == "states" && parts[5] == "activity"
}
