//! The diagnostic record: a stable code, a severity, a place, a message and a fix.
//!
//! Diagnostics are plain data so they can be printed for people, emitted as JSON for editors and CI, counted
//! for the exit code, and asserted on in tests, all from the same value.

use model::{Path, Problem, Span};

use crate::codes::Code;
pub use crate::codes::Severity;

/// A secondary place that explains the diagnostic ("first used here").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label {
    /// Where in the data.
    pub path: Path,
    /// Where in the text.
    pub span: Option<Span>,
    /// What this place is.
    pub message: String,
}

/// One finding about an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What it is; the code also decides the severity. See [`crate::codes`].
    pub code: Code,
    /// Where in the data.
    pub path: Path,
    /// Where in the text, when known.
    pub span: Option<Span>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Other places involved.
    pub related: Vec<Label>,
}

impl Diagnostic {
    /// A diagnostic with `code` at `path`, without position (see [`Diagnostic::at`]).
    pub fn new(code: Code, path: Path, message: impl Into<String>) -> Self {
        Self {
            code,
            path,
            span: None,
            message: message.into(),
            help: None,
            related: Vec::new(),
        }
    }

    /// Error or warning: the code's.
    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    /// Sets the span.
    pub fn at(mut self, span: Option<Span>) -> Self {
        self.span = span;
        self
    }

    /// Sets the fix.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary place.
    pub fn related(mut self, path: Path, span: Option<Span>, message: impl Into<String>) -> Self {
        self.related.push(Label {
            path,
            span,
            message: message.into(),
        });
        self
    }
}

impl From<&Problem> for Diagnostic {
    fn from(p: &Problem) -> Self {
        Self {
            code: p.code.into(),
            path: p.path.clone(),
            span: p.span,
            message: p.message.clone(),
            help: p.help.clone(),
            related: Vec::new(),
        }
    }
}
