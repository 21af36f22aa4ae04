//! Printing diagnostics: for people (miette, with source snippets) and for tools (JSON).

use std::borrow::Cow;
use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde_json::{Value, json};

use crate::Report;
use crate::diagnostic::{Diagnostic, Severity};

/// `s` with control characters shown as escapes (`\u{1b}`), so a value quoted in a message cannot
/// move the cursor, retitle the terminal or clear the screen.
fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| match c {
                '\n' => "\\n".to_owned(),
                '\t' => "\\t".to_owned(),
                c if c.is_control() => c.escape_unicode().to_string(),
                c => c.to_string(),
            })
            .collect(),
    )
}

/// The inventory's text for snippets: control characters (other than line breaks and tabs) replaced
/// by characters of the same length in bytes, so every span still points at the same place.
fn safe_source(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => c,
            c if c.is_control() && c.len_utf8() == 1 => '?',
            c if c.is_control() => '¿',
            c => c,
        })
        .collect()
}

/// A diagnostic with every user-supplied string made printable.
fn printable_diagnostic(d: &Diagnostic) -> Diagnostic {
    Diagnostic {
        message: printable(&d.message).into_owned(),
        help: d.help.as_deref().map(|h| printable(h).into_owned()),
        related: d
            .related
            .iter()
            .map(|r| crate::diagnostic::Label {
                message: printable(&r.message).into_owned(),
                ..r.clone()
            })
            .collect(),
        ..d.clone()
    }
}

/// One diagnostic bundled with its source, in the shape miette renders.
struct Rendered<'a> {
    diagnostic: &'a Diagnostic,
    source: NamedSource<String>,
    file: &'a model::SourceFile,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field("diagnostic", &self.diagnostic)
            .finish()
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl Rendered<'_> {
    /// miette slices the text by these offsets: keep them inside it and on character boundaries.
    fn span(&self, span: model::Span) -> SourceSpan {
        let span = self.file.clamp(span);
        SourceSpan::from(span.start..span.end)
    }
}

impl miette::Diagnostic for Rendered<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        // `error[duplicate_host_port]`, as rustc does: greppable, and says the severity in words.
        Some(Box::new(format!(
            "{}[{}]",
            self.diagnostic.severity(),
            self.diagnostic.code
        )))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.diagnostic
            .span
            .map(|_| &self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = self.diagnostic.span?;
        let label = if self.diagnostic.path.is_root() {
            None
        } else {
            Some(self.diagnostic.path.to_string())
        };
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            label,
            self.span(primary),
        )];
        for related in &self.diagnostic.related {
            if let Some(span) = related.span {
                labels.push(LabeledSpan::new_with_span(
                    Some(related.message.clone()),
                    self.span(span),
                ));
            }
        }
        Some(Box::new(labels.into_iter()))
    }
}

/// Renders a report for a terminal: each diagnostic with its code, a source snippet, the path and the fix,
/// then a summary line. `color` adds ANSI colours.
pub fn render_human(report: &Report, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .with_context_lines(1);
    let mut out = String::new();
    let source_text = safe_source(&report.source.text);
    let name = printable(&report.source.name);
    for diagnostic in &report.diagnostics {
        let diagnostic = &printable_diagnostic(diagnostic);
        let rendered = Rendered {
            diagnostic,
            source: NamedSource::new(name.as_ref(), source_text.clone()),
            file: &report.source,
        };
        let mut text = String::new();
        if handler.render_report(&mut text, &rendered).is_err() {
            text = format!(
                "{}[{}]: {}\n",
                diagnostic.severity(),
                diagnostic.code,
                diagnostic.message
            );
        }
        if diagnostic.span.is_none() && !diagnostic.path.is_root() {
            text.push_str(&format!(
                "  at `{}` in {name}\n",
                printable(&diagnostic.path.to_string())
            ));
        }
        out.push_str(&text);
        out.push('\n');
    }
    out.push_str(&summary(report));
    out.push('\n');
    out
}

/// "fleet.toml: 2 errors, 1 warning" or "fleet.toml: no problems found", followed by
/// " (1 warning silenced by allow)" when a host silenced some.
pub fn summary(report: &Report) -> String {
    let (e, w) = (report.error_count(), report.warning_count());
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let counts = match (e, w) {
        (0, 0) => format!("{}: no problems found", report.source.name),
        (0, w) => format!("{}: {}", report.source.name, plural(w, "warning")),
        (e, 0) => format!("{}: {}", report.source.name, plural(e, "error")),
        (e, w) => format!(
            "{}: {}, {}",
            report.source.name,
            plural(e, "error"),
            plural(w, "warning")
        ),
    };
    match report.suppressed_count() {
        0 => counts,
        n => format!("{counts} ({} silenced by allow)", plural(n, "warning")),
    }
}

/// Renders a report as a JSON array of diagnostics: `file`, `line`, `column`, `end_line`, `end_column` (1-based,
/// `null` when unknown), `path`, `code`, `severity`, `message`, `help`, `related` places, and `suppressed`:
/// `null`, or `{ "reason": "…" }` for a warning a host silenced with `allow` (listed after the others, so
/// tools see what was silenced and why; they do not count towards the exit code).
pub fn render_json(report: &Report) -> Value {
    let pos = |span: Option<model::Span>| {
        span.map(|s| {
            let s = report.source.clamp(s);
            (
                report.source.line_col(s.start),
                report.source.line_col(s.end),
            )
        })
    };
    let active = report.diagnostics.iter().map(|d| (d, None));
    let silenced = report
        .suppressed
        .iter()
        .map(|s| (&s.diagnostic, Some(json!({ "reason": s.reason }))));
    let items: Vec<Value> = active
        .chain(silenced)
        .map(|(d, suppressed)| {
            let p = pos(d.span);
            let related: Vec<Value> = d
                .related
                .iter()
                .map(|r| {
                    let rp = pos(r.span);
                    json!({
                        "path": r.path.to_string(),
                        "line": rp.map(|p| p.0.0),
                        "column": rp.map(|p| p.0.1),
                        "message": r.message,
                    })
                })
                .collect();
            json!({
                "file": report.source.name,
                "line": p.map(|p| p.0.0),
                "column": p.map(|p| p.0.1),
                "end_line": p.map(|p| p.1.0),
                "end_column": p.map(|p| p.1.1),
                "path": d.path.to_string(),
                "code": d.code.name(),
                "severity": d.severity().as_str(),
                "message": d.message,
                "help": d.help,
                "related": related,
                "suppressed": suppressed,
            })
        })
        .collect();
    Value::Array(items)
}
