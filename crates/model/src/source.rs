//! Source positions: the file text, byte spans, paths into the inventory (`hosts.rpi-box-01.ports[1]`) and the map
//! between the two.
//!
//! Every error pifleet reports points at a place in the user's file, because "invalid value" without a line is
//! useless in a 300-line inventory. Paths are what the schema validator and the semantic checks speak; spans are
//! what the user sees; the [`SpanMap`] built while reading the file joins them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// A byte range in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from a byte range.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Self {
        Self::new(r.start, r.end)
    }
}

/// The text of an inventory and the name to show for it (usually its path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The name shown in diagnostics, e.g. `fleet.toml`.
    pub name: String,
    /// The whole text.
    pub text: String,
}

impl SourceFile {
    /// Wraps a text under a display name.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset; offsets past the end or inside a character are
    /// clamped, so any span is safe to show. This scans the text up to `offset`: for many positions, build
    /// [`Lines`] once.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        Lines::new(&self.text[..self.clamp(Span::new(offset, offset)).start])
            .line_col(&self.text, offset)
    }

    /// A span clamped to the text and to character boundaries.
    pub fn clamp(&self, span: Span) -> Span {
        let fix = |mut o: usize| {
            o = o.min(self.text.len());
            while !self.text.is_char_boundary(o) {
                o -= 1;
            }
            o
        };
        let start = fix(span.start);
        Span::new(start, fix(span.end).max(start))
    }
}

/// Where each line of a text starts: positions of thousands of diagnostics in a large inventory cost a binary
/// search each, instead of a scan from the top of the file each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines {
    /// Byte offset of the start of every line after the first.
    starts: Vec<usize>,
}

impl Lines {
    /// The line starts of `text`.
    pub fn new(text: &str) -> Self {
        Self {
            starts: text
                .bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1)
                .collect(),
        }
    }

    /// 0-based index of the line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }

    /// Byte offset where 0-based line `line` starts (the end of the text's last line for lines past it).
    pub fn start_of(&self, line: usize) -> usize {
        match line {
            0 => 0,
            n => self.starts.get(n - 1).copied().unwrap_or(usize::MAX),
        }
    }

    /// 1-based line and column (in characters) of byte `offset` in `text`, the text these lines were read
    /// from; clamped like [`SourceFile::line_col`].
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_of(offset);
        let start = self.start_of(line).min(offset);
        (line + 1, text[start..offset].chars().count() + 1)
    }
}

/// One step of a [`Path`]: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A key of a table.
    Key(String),
    /// An index into an array.
    Index(usize),
}

/// A location in the inventory's data, printed the way users write it: `hosts.rpi-box-01.containers.web.ports[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(Vec<Segment>);

impl Path {
    /// The whole document.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// A path from segments.
    pub fn from_segments(segments: Vec<Segment>) -> Self {
        Self(segments)
    }

    /// This path extended by a key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut v = self.0.clone();
        v.push(Segment::Key(key.into()));
        Self(v)
    }

    /// This path extended by an index.
    pub fn index(&self, index: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Segment::Index(index));
        Self(v)
    }

    /// The enclosing path, `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        let mut v = self.0.clone();
        v.pop()?;
        Some(Self(v))
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The last key, if the path ends with one.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// Whether the path is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `self` is `prefix` or inside it.
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

fn is_bare_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(k) {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where a value was written: the span of its key (if it has one) and of the value itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spans {
    /// The key (`ports` in `ports = [...]`, or the header of `[hosts.x]`).
    pub key: Option<Span>,
    /// The value (`[...]`, or the whole table).
    pub value: Option<Span>,
}

/// Paths of the document to their spans in the source.
///
/// For TOML it keeps the text and, the first time a position is asked for, parses it with
/// `toml_edit` (which records where every key and value was written) and finds the path there.
/// A diagnostic needs a handful of positions, and most runs need none: recording all of them up
/// front cost more than reading the inventory, and the document as much memory as the values.
/// JSON positions are recorded by `json_spans` as the text is read.
#[derive(Debug, Clone, Default)]
pub struct SpanMap {
    recorded: HashMap<Path, Spans>,
    toml: Option<Arc<LazyToml>>,
}

/// TOML text, parsed for its positions on first use.
#[derive(Debug)]
struct LazyToml {
    text: String,
    document: OnceLock<Option<toml_edit::Document<String>>>,
}

impl SpanMap {
    /// The spans of a TOML text, found in it on demand.
    pub fn from_toml(text: impl Into<String>) -> Self {
        Self {
            recorded: HashMap::new(),
            toml: Some(Arc::new(LazyToml {
                text: text.into(),
                document: OnceLock::new(),
            })),
        }
    }

    fn toml_document(&self) -> Option<&toml_edit::Document<String>> {
        let lazy = self.toml.as_deref()?;
        lazy.document
            .get_or_init(|| toml_edit::Document::parse(lazy.text.clone()).ok())
            .as_ref()
    }

    /// Records the spans of one path, keeping spans already known.
    pub fn insert(&mut self, path: Path, spans: Spans) {
        let entry = self.recorded.entry(path).or_default();
        entry.key = entry.key.or(spans.key);
        entry.value = entry.value.or(spans.value);
    }

    /// The spans of exactly this path; `None` when the document has nothing there.
    pub fn get(&self, path: &Path) -> Option<Spans> {
        let recorded = self.recorded.get(path).copied();
        let found = self.toml_document().and_then(|doc| toml_spans(doc, path));
        match (recorded, found) {
            (Some(a), Some(b)) => Some(Spans {
                key: a.key.or(b.key),
                value: a.value.or(b.value),
            }),
            (a, b) => a.or(b),
        }
    }

    /// Where to point for a problem with the value at `path`: its value, else its key, else the nearest
    /// enclosing thing that has a position.
    pub fn value_span(&self, path: &Path) -> Option<Span> {
        self.find(path, |s| s.value.or(s.key))
    }

    /// Where to point for a problem with the key at `path` (unknown field, bad name): its key, else its value,
    /// else the nearest enclosing thing that has a position.
    pub fn key_span(&self, path: &Path) -> Option<Span> {
        self.find(path, |s| s.key.or(s.value))
    }

    fn find(&self, path: &Path, pick: impl Fn(&Spans) -> Option<Span>) -> Option<Span> {
        let segments = path.segments();
        for depth in (0..=segments.len()).rev() {
            let cur = Path(segments[..depth].to_vec());
            if let Some(s) = self.get(&cur) {
                // For enclosing tables, the key (the header) is a better anchor than the whole table.
                let found = if depth == segments.len() {
                    pick(&s)
                } else {
                    s.key.or(s.value)
                };
                if found.is_some() {
                    return found;
                }
            }
        }
        None
    }

    /// Whether nothing is known: no document, and nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.recorded.is_empty() && self.toml.is_none()
    }
}

/// A node of a `toml_edit` document: tables and arrays of tables are items, the rest values.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a toml_edit::Item),
    Table(&'a toml_edit::Table),
    Value(&'a toml_edit::Value),
}

impl<'a> Node<'a> {
    fn span(self) -> Option<Span> {
        use toml_edit::Item;
        match self {
            Node::Item(Item::None) => None,
            Node::Item(Item::Value(v)) | Node::Value(v) => v.span().map(Span::from),
            Node::Item(Item::Table(t)) | Node::Table(t) => t.span().map(Span::from),
            Node::Item(Item::ArrayOfTables(a)) => a.span().map(Span::from),
        }
    }

    /// The child at `segment`, with the span of its key when it has one.
    fn child(self, segment: &Segment) -> Option<(Node<'a>, Option<Span>)> {
        use toml_edit::{Item, Value};
        let table = match self {
            Node::Item(Item::Table(t)) | Node::Table(t) => Some(t),
            _ => None,
        };
        match (self, segment) {
            (_, Segment::Key(k)) if table.is_some() => {
                let t = table?;
                let key = t.key(k).and_then(|k| k.span()).map(Span::from);
                Some((Node::Item(t.get(k)?), key))
            }
            (
                Node::Item(Item::Value(Value::InlineTable(t))) | Node::Value(Value::InlineTable(t)),
                Segment::Key(k),
            ) => {
                let key = t.key(k).and_then(|k| k.span()).map(Span::from);
                Some((Node::Value(t.get(k)?), key))
            }
            (Node::Item(Item::ArrayOfTables(a)), Segment::Index(i)) => {
                Some((Node::Table(a.get(*i)?), None))
            }
            (
                Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)),
                Segment::Index(i),
            ) => Some((Node::Value(a.get(*i)?), None)),
            _ => None,
        }
    }
}

/// The spans of the node at `path` in `doc`, as written: its key's (when it is a key of a table)
/// and its own.
fn toml_spans(doc: &toml_edit::Document<String>, path: &Path) -> Option<Spans> {
    let mut node = Node::Item(doc.as_item());
    let mut key = None;
    for segment in path.segments() {
        (node, key) = node.child(segment)?;
    }
    Some(Spans {
        key,
        value: node.span(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_toml() {
        let p = Path::root()
            .key("hosts")
            .key("rpi-box-01")
            .key("containers")
            .key("web")
            .key("ports")
            .index(1);
        assert_eq!(p.to_string(), "hosts.rpi-box-01.containers.web.ports[1]");
        assert_eq!(Path::root().key("a.b").key("c").to_string(), "\"a.b\".c");
    }

    #[test]
    fn line_col_is_safe() {
        let s = SourceFile::new("x", "ab\nçd\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(3), (2, 1));
        assert_eq!(s.line_col(4), (2, 1)); // inside 'ç': clamped back
        assert_eq!(s.line_col(5), (2, 2));
        assert_eq!(s.line_col(999), (3, 1));
        let lines = Lines::new(&s.text);
        assert_eq!(lines.line_col(&s.text, 0), (1, 1));
        assert_eq!(lines.line_col(&s.text, 2), (1, 3));
        assert_eq!(lines.line_col(&s.text, 4), (2, 1));
        assert_eq!(lines.line_col(&s.text, 6), (2, 3));
        assert_eq!(lines.line_col(&s.text, 999), (3, 1));
        assert_eq!(lines.line_of(3), 1);
        assert_eq!(lines.start_of(1), 3);
        assert_eq!(lines.start_of(2), 7);
    }
}
