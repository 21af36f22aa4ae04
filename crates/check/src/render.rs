//! Printing diagnostics: for people (miette, with source snippets) and for tools (JSON).

use std::borrow::Cow;
use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceSpan};
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

/// The inventory's text as miette reads it, shared by every diagnostic: one copy of the text, and
/// snippets cut from the line index instead of a scan from the top of the file for each one.
struct Snippets {
    name: String,
    text: String,
    lines: model::Lines,
}

impl miette::SourceCode for Snippets {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        // miette finds lines by scanning from the start of what it is given: give it the text from
        // the first line it will show, and move its answer back to whole-file positions.
        let first = self
            .lines
            .line_of(span.offset())
            .saturating_sub(context_lines_before);
        let base = self.lines.start_of(first).min(span.offset());
        let local = SourceSpan::new((span.offset() - base).into(), span.len());
        let found =
            self.text[base..].read_span(&local, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            found.data(),
            SourceSpan::new((found.span().offset() + base).into(), found.span().len()),
            found.line() + first,
            found.column(),
            // miette's own count runs from the top of the text (its test for merging snippets
            // relies on that): count the lines skipped too.
            found.line_count() + first,
        )))
    }
}

/// One diagnostic (or a group of identical ones) bundled with its source, in the shape miette renders.
struct Rendered<'a> {
    diagnostic: &'a Diagnostic,
    source: &'a Snippets,
    file: &'a model::SourceFile,
    /// The primary label, when not the diagnostic's path (a group names its size instead).
    label: Option<String>,
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
            .map(|_| self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = self.diagnostic.span?;
        let label = match &self.label {
            Some(label) => Some(label.clone()),
            None if self.diagnostic.path.is_root() => None,
            None => Some(self.diagnostic.path.to_string()),
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

/// How [`render_human_with`] prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Human {
    /// ANSI colours.
    pub color: bool,
    /// Name every host a grouped diagnostic applies to, not only the first few.
    pub every_host: bool,
}

/// How many hosts a group names before "and N more".
const NAMED_IN_GROUP: usize = 5;

/// The host a diagnostic is about (`hosts.<name>…`).
fn host_of(d: &Diagnostic) -> Option<&str> {
    match d.path.segments() {
        [model::Segment::Key(top), model::Segment::Key(host), ..] if top == "hosts" => Some(host),
        _ => None,
    }
}

/// `text` with the host's quoted name (`` `rpi-box-01` ``) blanked out: two diagnostics whose texts
/// differ only by it say the same thing about different hosts.
fn without_host<'t>(text: &'t str, host: Option<&str>) -> Cow<'t, str> {
    match host {
        Some(host) if text.contains(&format!("`{host}`")) => {
            Cow::Owned(text.replace(&format!("`{host}`"), "`\u{0}`"))
        }
        _ => Cow::Borrowed(text),
    }
}

/// What makes diagnostics the same finding: code, place in the file, and message and fix apart
/// from the host's name.
#[derive(PartialEq, Eq, Hash)]
struct GroupKey<'a> {
    code: crate::Code,
    span: model::Span,
    message: Cow<'a, str>,
    help: Option<Cow<'a, str>>,
    related: &'a [crate::diagnostic::Label],
}

/// The diagnostics in order, those that say the same thing at the same place (a fleet-wide setting
/// every host inherits) gathered at the first one. Diagnostics without a place stay alone.
fn groups(diagnostics: &[Diagnostic]) -> Vec<Vec<&Diagnostic>> {
    let mut out: Vec<Vec<&Diagnostic>> = Vec::new();
    let mut seen: std::collections::HashMap<GroupKey<'_>, usize> = std::collections::HashMap::new();
    for d in diagnostics {
        let Some(span) = d.span else {
            out.push(vec![d]);
            continue;
        };
        let host = host_of(d);
        let key = GroupKey {
            code: d.code,
            span,
            message: without_host(&d.message, host),
            help: d.help.as_deref().map(|h| without_host(h, host)),
            related: &d.related,
        };
        match seen.entry(key) {
            std::collections::hash_map::Entry::Occupied(at) => out[*at.get()].push(d),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(out.len());
                out.push(vec![d]);
            }
        }
    }
    out
}

/// What a group's members are: hosts, or (when not all are about a host) places in the inventory.
fn noun(group: &[&Diagnostic]) -> &'static str {
    if group.iter().all(|d| host_of(d).is_some()) {
        "hosts"
    } else {
        "places"
    }
}

/// The line under a group: which hosts (or places) it applies to.
fn members_line(group: &[&Diagnostic], every_host: bool) -> String {
    let names: Vec<String> = group
        .iter()
        .map(|d| match host_of(d) {
            Some(host) => printable(host).into_owned(),
            None => printable(&d.path.to_string()).into_owned(),
        })
        .collect();
    let noun = noun(group);
    let shown = if every_host {
        names.len()
    } else {
        names.len().min(NAMED_IN_GROUP)
    };
    let mut line = format!("  on {} {noun}: {}", names.len(), names[..shown].join(", "));
    if shown < names.len() {
        line.push_str(&format!(
            " and {} more (`pifleet check --verbose` names them all)",
            names.len() - shown
        ));
    }
    line.push('\n');
    line
}

/// Renders a report for a terminal: each diagnostic with its code, a source snippet, the path and the fix,
/// then a summary line. `color` adds ANSI colours. See [`render_human_with`].
pub fn render_human(report: &Report, color: bool) -> String {
    render_human_with(
        report,
        Human {
            color,
            every_host: false,
        },
    )
}

/// Renders a report for a terminal. Diagnostics that say the same thing at the same place for
/// many hosts (a fleet-wide setting they all inherit) are printed once, with the hosts they apply
/// to: a warning about 1,000 hosts is one snippet and a list, not 1,000 snippets. Each count in the
/// summary still counts every host.
pub fn render_human_with(report: &Report, style: Human) -> String {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .with_context_lines(1);
    let mut out = String::new();
    let name = printable(&report.source.name);
    let text = safe_source(&report.source.text);
    let source = Snippets {
        name: name.clone().into_owned(),
        lines: model::Lines::new(&text),
        text,
    };
    for group in groups(&report.diagnostics) {
        let first = group[0];
        let mut diagnostic = printable_diagnostic(first);
        let mut label = None;
        if group.len() > 1 {
            if let Some(host) = host_of(first) {
                let quoted = format!("`{}`", printable(host));
                diagnostic.message = diagnostic.message.replacen(
                    &quoted,
                    &format!("{quoted} (and {} more)", group.len() - 1),
                    1,
                );
            }
            label = Some(format!("{} {}", group.len(), noun(&group)));
        }
        let rendered = Rendered {
            diagnostic: &diagnostic,
            source: &source,
            file: &report.source,
            label,
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
        if group.len() > 1 {
            text.push_str(&members_line(&group, style.every_host));
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
    let lines = model::Lines::new(&report.source.text);
    let text = &report.source.text;
    let pos = |span: Option<model::Span>| {
        span.map(|s| {
            let s = report.source.clamp(s);
            (lines.line_col(text, s.start), lines.line_col(text, s.end))
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
