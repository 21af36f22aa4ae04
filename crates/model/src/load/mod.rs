//! Reading an inventory: text → spanned TOML (or JSON) → `serde_json::Value` → schema validation → [`Fleet`].
//!
//! The schema runs before serde on purpose. serde stops at the first error and does not say where it was;
//! the jsonschema validator reports every error with a JSON pointer, which the [`SpanMap`] built while converting
//! the TOML turns into a line and column. Because the schema is generated from the same types (and the checked
//! string types register their own parsers as schema formats), a value the schema accepts deserialises, and the
//! schema's verdict is the Rust verdict.

mod by_host;
mod schema;
mod toml;

use std::path::Path as FsPath;

use serde::Deserialize as _;
use serde_json::Value;

pub use schema::{schema, schema_string};

use crate::Fleet;
use crate::ProblemCode;
use crate::source::{Path, Segment, SourceFile, Span, SpanMap};
use schema::{locate_serde_error, validate_value};
use toml::{datetimes_to_strings, offset_of_line_col};

/// A successfully read inventory, with what is needed to point at its parts.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The typed inventory.
    pub fleet: Fleet,
    /// The text it was read from.
    pub source: SourceFile,
    /// Where each path of the document was written.
    pub spans: SpanMap,
}

/// One reason an inventory could not be read, pointing at the offending place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Stable code, e.g. `unknown_field`, `invalid_ssh_key`, `toml_syntax`.
    pub code: ProblemCode,
    /// Where in the data (root for syntax errors).
    pub path: Path,
    /// Where in the text, when known.
    pub span: Option<Span>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// An inventory that was read but is not valid: every problem found, and its text for showing them.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// The text that was read.
    pub source: SourceFile,
    /// What was learnt about positions before giving up.
    pub spans: SpanMap,
    /// Every problem, in source order.
    pub problems: Vec<Problem>,
    /// The inventory without the values the problems point at (and any table left without a
    /// required field), when what remains still reads as an inventory: `check` runs its rules on
    /// it, so one bad value does not hide every other problem. `None` when nothing could be
    /// salvaged.
    pub partial: Option<Box<Partial>>,
}

/// What [`Invalid::partial`] holds.
#[derive(Debug, Clone)]
pub struct Partial {
    /// The rest of the inventory.
    pub fleet: Fleet,
    /// Where values were taken out: diagnostics at or under these paths (or above them) describe
    /// what was removed, not the user's file.
    pub removed: Vec<Path>,
}

/// The largest inventory pifleet reads: far above any real fleet (10,000 hosts take about 3 MiB),
/// small enough that a mistaken path cannot exhaust memory.
pub const MAX_INVENTORY_BYTES: u64 = 16 << 20;

/// Why an inventory could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Reading failed.
    #[error("cannot read the inventory {shown}")]
    Io {
        /// The inventory as shown to the user.
        shown: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The path is a device, a FIFO, a directory or a socket.
    #[error(
        "the inventory {shown} is {kind}, not a file: give the path of fleet.toml (or `-` for standard input)"
    )]
    NotAFile {
        /// The inventory as shown to the user.
        shown: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is larger than [`MAX_INVENTORY_BYTES`].
    #[error("the inventory {shown} is larger than {} MiB: is it really fleet.toml?", MAX_INVENTORY_BYTES >> 20)]
    TooLarge {
        /// The inventory as shown to the user.
        shown: String,
    },
}

/// Reads the inventory at `path`: a regular file (symbolic links followed) of at most
/// [`MAX_INVENTORY_BYTES`]. Devices and FIFOs are refused before they are opened, so a mistyped
/// `-f /dev/sda` neither blocks nor reads a disk.
pub fn read_inventory(path: &FsPath) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::FileTypeExt as _;
    let shown = path.display().to_string();
    let io = |source| ReadError::Io {
        shown: shown.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let kind = meta.file_type();
    let not_a_file = if kind.is_dir() {
        Some("a directory")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        None
    };
    if let Some(kind) = not_a_file {
        return Err(ReadError::NotAFile { shown, kind });
    }
    if meta.len() > MAX_INVENTORY_BYTES {
        return Err(ReadError::TooLarge { shown });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    read_inventory_from(file, &shown)
}

/// Reads an inventory from `reader` (standard input, say), refusing more than [`MAX_INVENTORY_BYTES`].
pub fn read_inventory_from(reader: impl std::io::Read, shown: &str) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    reader
        .take(MAX_INVENTORY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Io {
            shown: shown.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_INVENTORY_BYTES {
        return Err(ReadError::TooLarge {
            shown: shown.to_owned(),
        });
    }
    Ok(bytes)
}

/// Why [`load`] or [`load_str`] returned no [`Fleet`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The file was read but is not a valid inventory.
    #[error("{} is not a valid inventory: {} problem(s), the first: {}", .0.source.name, .0.problems.len(),
        .0.problems.first().map_or("", |p| p.message.as_str()))]
    Invalid(Box<Invalid>),
}

/// The syntax of an inventory file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML (the default).
    Toml,
    /// JSON, for machines.
    Json,
}

impl Format {
    /// JSON for names ending in `.json`, TOML otherwise.
    pub fn from_name(name: &str) -> Self {
        if name.to_ascii_lowercase().ends_with(".json") {
            Format::Json
        } else {
            Format::Toml
        }
    }
}

/// Reads and validates the inventory at `path` (JSON if it ends in `.json`, TOML otherwise).
pub fn load(path: impl AsRef<FsPath>) -> Result<Loaded, LoadError> {
    let path = path.as_ref();
    let bytes = read_inventory(path)?;
    load_bytes(&bytes, &path.display().to_string())
}

/// Validates an inventory given as bytes: text that is not UTF-8 is a problem with the position of
/// the first bad byte, not a bare I/O error.
pub fn load_bytes(bytes: &[u8], source_name: &str) -> Result<Loaded, LoadError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => load_str(text, source_name),
        Err(e) => {
            let at = e.valid_up_to();
            // The text before the bad byte is exact, so positions up to it are right.
            let text = String::from_utf8_lossy(bytes);
            let source = SourceFile::new(source_name, text.into_owned());
            let problem = Problem {
                code: ProblemCode::InvalidUtf8,
                path: Path::root(),
                span: Some(source.clamp(Span::new(at, at + 1))),
                message: format!(
                    "the file is not UTF-8: byte {at} (0x{:02x}) starts no valid character",
                    bytes.get(at).copied().unwrap_or(0)
                ),
                help: Some("save the file as UTF-8".into()),
            };
            Err(LoadError::Invalid(Box::new(Invalid {
                source,
                spans: SpanMap::default(),
                problems: vec![problem],
                partial: None,
            })))
        }
    }
}

/// Validates an inventory given as text; `source_name` is shown in messages and picks the format by extension.
pub fn load_str(text: &str, source_name: &str) -> Result<Loaded, LoadError> {
    load_str_as(text, source_name, Format::from_name(source_name))
}

/// Like [`load_str`] with an explicit format.
pub fn load_str_as(text: &str, source_name: &str, format: Format) -> Result<Loaded, LoadError> {
    let source = SourceFile::new(source_name, text);
    let mut spans = SpanMap::default();
    let invalid = |spans: SpanMap, problems: Vec<Problem>| {
        LoadError::Invalid(Box::new(Invalid {
            source: source.clone(),
            spans,
            problems,
            partial: None,
        }))
    };

    // A valid TOML inventory is read one host at a time, and never whole (see `by_host`).
    if format == Format::Toml
        && let Some(fleet) = by_host::load(text)
    {
        return Ok(Loaded {
            fleet,
            source,
            spans: SpanMap::from_toml(text),
        });
    }
    let value = match format {
        Format::Toml => match ::toml::from_str::<Value>(text) {
            Ok(mut value) => {
                datetimes_to_strings(&mut value);
                spans = SpanMap::from_toml(text);
                value
            }
            Err(e) => {
                let span = e.span().map(Span::from);
                let problem = Problem {
                    code: ProblemCode::TomlSyntax,
                    path: Path::root(),
                    span: span.map(|s| source.clamp(s)),
                    message: format!("TOML syntax error: {}", e.message().trim_end()),
                    help: Some("fix the syntax here; https://toml.io describes the format".into()),
                };
                return Err(invalid(spans, vec![problem]));
            }
        },
        Format::Json => match serde_json::from_str::<Value>(text) {
            Ok(v) => {
                let duplicates = crate::json_spans::record(text, &mut spans);
                if !duplicates.is_empty() {
                    let problems = duplicates
                        .into_iter()
                        .map(|(path, span)| Problem {
                            code: ProblemCode::DuplicateKey,
                            message: format!("`{path}` is written twice in the same object"),
                            path,
                            span: Some(span),
                            help: Some(
                                "keep one of them; JSON readers disagree on which one wins".into(),
                            ),
                        })
                        .collect();
                    return Err(invalid(spans, problems));
                }
                v
            }
            Err(e) => {
                let offset = offset_of_line_col(text, e.line(), e.column());
                let problem = Problem {
                    code: ProblemCode::JsonSyntax,
                    path: Path::root(),
                    span: Some(source.clamp(Span::new(offset, offset + 1))),
                    message: format!("JSON syntax error: {e}"),
                    help: None,
                };
                return Err(invalid(spans, vec![problem]));
            }
        },
    };

    let mut problems = validate_value(&value, &spans);
    if problems.is_empty() {
        match Fleet::deserialize(&value) {
            Ok(fleet) => {
                return Ok(Loaded {
                    fleet,
                    source,
                    spans,
                });
            }
            Err(e) => problems.push(locate_serde_error(&value, &spans, e)),
        }
    }
    problems.sort_by_key(|p| (p.span.map_or(usize::MAX, |s| s.start), p.path.clone()));
    problems.dedup();
    let partial = salvage(&value, &problems);
    Err(LoadError::Invalid(Box::new(Invalid {
        source: source.clone(),
        spans,
        problems,
        partial,
    })))
}

/// Takes out of `value` what `problems` point at, then any table the schema still refuses (one
/// that lost a required field, say), until the rest deserializes; `None` when the document root
/// itself would have to go, or after a bounded number of rounds.
fn salvage(value: &Value, problems: &[Problem]) -> Option<Box<Partial>> {
    let mut value = value.clone();
    let mut removed: Vec<Path> = Vec::new();
    let mut targets: Vec<Path> = problems.iter().map(|p| p.path.clone()).collect();
    for _ in 0..8 {
        if targets.iter().any(|t| t.segments().is_empty()) {
            return None;
        }
        // Deepest first, and array elements from the end, so indices stay valid.
        targets.sort();
        targets.dedup();
        for target in targets.iter().rev() {
            remove_at(&mut value, target.segments());
        }
        removed.append(&mut targets);
        let validator = schema::validator()?;
        targets = validator
            .iter_errors(&value)
            .map(|e| schema::pointer_to_path(e.instance_path().as_str(), &value))
            .collect();
        if targets.is_empty() {
            return serde_json::from_value::<Fleet>(value)
                .ok()
                .map(|fleet| Box::new(Partial { fleet, removed }));
        }
    }
    None
}

/// Removes the value at `path` (a key of its table, or an element of its array).
fn remove_at(value: &mut Value, path: &[Segment]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = value;
    for seg in parents {
        let next = match (cur, seg) {
            (Value::Object(map), Segment::Key(k)) => map.get_mut(k),
            (Value::Array(items), Segment::Index(i)) => items.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else { return };
        cur = next;
    }
    match (cur, last) {
        (Value::Object(map), Segment::Key(k)) => {
            map.remove(k);
        }
        (Value::Array(items), Segment::Index(i)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::schema::{pointer_to_path, validator};

    #[test]
    fn schema_compiles() {
        assert!(validator().is_some());
    }

    #[test]
    fn pointer_paths_respect_arrays() {
        let v = serde_json::json!({ "hosts": { "01": { "ports": ["a", "b"] } } });
        let p = pointer_to_path("/hosts/01/ports/1", &v);
        assert_eq!(p.to_string(), "hosts.01.ports[1]");
    }
}
