//! One error type for the whole tool: what went wrong, where, what to do about it, and which
//! exit code it maps to. `main` is the only place that prints it.

use std::fmt;

/// The class of an error decides the process exit code (documented in docs/reference.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Bad input: manifest, unknown stack, variables, templates, command-line usage.
    User,
    /// The AWS side refused or could not be reached: credentials, endpoint, API errors.
    Aws,
    /// An apply or destroy in which some resources failed (what succeeded is recorded).
    Partial,
    /// A change needs confirmation and none was given (no terminal and no `--yes`, or "no").
    NotConfirmed,
    /// Another run holds the lock on the same stack and env.
    Locked,
    /// Interrupted by Ctrl-C; what finished is recorded.
    Interrupted,
    /// A bug or an unexpected local failure (disk, I/O).
    Internal,
    /// A workflow execution that did not succeed (7 failed, 8 timed out, 9 aborted).
    Execution(i32),
    /// A gradual rollout saw an alarm and routed its alias back to the previous version.
    RolledBack,
}

impl Class {
    pub fn exit_code(self) -> i32 {
        match self {
            Class::Internal => 1,
            Class::User => 2,
            Class::Aws => 3,
            Class::Partial => 4,
            Class::NotConfirmed => 5,
            Class::Locked => 6,
            Class::Interrupted => 130,
            Class::Execution(code) => code,
            Class::RolledBack => 10,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    pub class: Class,
    /// `file:line` or another place the user can look at.
    pub location: Option<String>,
    pub message: String,
    pub help: Option<String>,
    /// Set on a create that found the resource already there (the executor adopts it).
    pub already_exists: bool,
    /// The text the mistake is in, to show it with a caret (manifests, templates).
    pub snippet: Option<Box<Snippet>>,
    /// The attribute of a resource the error is about (`statement[0].Action`), for the caller
    /// that knows where that attribute is written.
    pub attr: Option<String>,
    /// Already in the command's JSON document (`validate -o json`): no second document for it.
    pub in_output: bool,
}

/// A place in a source text: the file as shown, its text, the byte range of the mistake and
/// a short label for it.
#[derive(Debug, Clone)]
pub struct Snippet {
    pub path: String,
    pub text: std::sync::Arc<str>,
    pub span: std::ops::Range<usize>,
    pub label: String,
}

impl Snippet {
    /// 1-based line and column (in characters) of the start of the span.
    pub fn line_col(&self) -> (usize, usize) {
        line_col(&self.text, self.span.start)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(class: Class, message: impl Into<String>) -> Self {
        Error {
            class,
            location: None,
            message: message.into(),
            help: None,
            already_exists: false,
            snippet: None,
            attr: None,
            in_output: false,
        }
    }
    pub fn user(message: impl Into<String>) -> Self {
        Self::new(Class::User, message)
    }
    pub fn aws(message: impl Into<String>) -> Self {
        Self::new(Class::Aws, message)
    }
    pub fn rolled_back(message: impl Into<String>) -> Self {
        Self::new(Class::RolledBack, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Class::Internal, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        let mut e = Self::aws(message);
        e.already_exists = true;
        e
    }
    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }
    /// Points at `span` of `text` (the location becomes `path:line:col`).
    pub fn source(
        mut self,
        path: &str,
        text: &std::sync::Arc<str>,
        span: std::ops::Range<usize>,
        label: impl Into<String>,
    ) -> Self {
        let snippet = Snippet {
            path: path.to_string(),
            text: text.clone(),
            span,
            label: label.into(),
        };
        let (line, col) = snippet.line_col();
        self.location = Some(format!("{path}:{line}:{col}"));
        self.snippet = Some(Box::new(snippet));
        self
    }
    /// Adds "did you mean `x`?" when one of `known` is close to `typed`.
    pub fn suggest<'a>(self, typed: &str, known: impl IntoIterator<Item = &'a str>) -> Self {
        match closest(typed, known) {
            Some(m) => {
                let hint = format!("did you mean `{m}`?");
                let help = match &self.help {
                    Some(h) => format!("{hint} ({h})"),
                    None => hint,
                };
                self.help(help)
            }
            None => self,
        }
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn exit_code(&self) -> i32 {
        self.class.exit_code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// The one of `known` nearest to `typed` by edit distance, when near enough to be a typo.
pub fn closest<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (typed.chars().count() / 3).max(2);
    known
        .into_iter()
        .filter(|k| *k != typed)
        .map(|k| {
            let (t, k_) = (typed.to_lowercase(), k.to_lowercase());
            // a name cut short (`frequency` for `frequency_in_minutes`) is near too
            let d = if t.len() >= 4 && k_.starts_with(&t) {
                1
            } else {
                strsim::damerau_levenshtein(&t, &k_)
            };
            (d, k)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::internal(e.to_string())
    }
}

/// Adds a location to I/O errors on a path.
pub fn io_at(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::internal(format!("{}: {e}", path.display()))
}
