//! What validation finds: a finding (severity, stack, file, state, JSON pointer, message, and
//! where in the file's text), and the checker that collects them while a definition is walked.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// JSON pointer into the rendered definition.
    pub pointer: String,
    pub message: String,
    /// Where in `file` (1-based), once mapped from the pointer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The character of a JSONata expression at the pointer the finding is about.
    #[serde(skip)]
    pub expr_char: Option<usize>,
    /// The source lines around the place, to show with a caret.
    #[serde(skip)]
    pub snippet: Option<crate::error::Snippet>,
}

impl Finding {
    pub fn new(
        severity: Severity,
        stack: Option<&str>,
        file: &str,
        state: Option<&str>,
        pointer: &str,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            stack: stack.map(str::to_string),
            file: file.to_string(),
            state: state.map(str::to_string),
            pointer: pointer.to_string(),
            message: message.into(),
            line: None,
            column: None,
            expr_char: None,
            snippet: None,
        }
    }

    /// Points the finding at `span` of `text` (the file it names).
    pub fn place(&mut self, text: &std::sync::Arc<str>, span: std::ops::Range<usize>) {
        let (line, col) = crate::error::line_col(text, span.start);
        self.line = Some(line);
        self.column = Some(col);
        let label = match &self.state {
            Some(s) => format!("in state `{s}`"),
            None => String::new(),
        };
        self.snippet = Some(crate::error::Snippet {
            path: self.file.clone(),
            text: text.clone(),
            span,
            label,
        });
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
        };
        let stack = self
            .stack
            .as_ref()
            .map(|s| format!("stack {s}, "))
            .unwrap_or_default();
        let state = self
            .state
            .as_ref()
            .map(|s| format!(", state `{s}`"))
            .unwrap_or_default();
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(
                f,
                "{sev} {stack}{}:{l}:{c}{state}: {}",
                self.file, self.message
            ),
            _ => write!(
                f,
                "{sev} {stack}{}{state} at {}: {}",
                self.file,
                if self.pointer.is_empty() {
                    "/"
                } else {
                    &self.pointer
                },
                self.message
            ),
        }
    }
}

pub(super) struct Checker<'a> {
    pub(super) file: &'a str,
    pub(super) stack: Option<&'a str>,
    pub(super) out: Vec<Finding>,
}

impl Checker<'_> {
    pub(super) fn add(
        &mut self,
        sev: Severity,
        state: Option<&str>,
        pointer: &str,
        message: impl Into<String>,
    ) {
        self.out.push(Finding::new(
            sev, self.stack, self.file, state, pointer, message,
        ));
    }
    pub(super) fn error(&mut self, state: Option<&str>, pointer: &str, message: impl Into<String>) {
        self.add(Severity::Error, state, pointer, message);
    }
}

pub(super) fn esc(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}
