//! Reading an inventory: text → spanned TOML (or JSON) → `serde_json::Value` → schema validation → [`Fleet`].
//!
//! The schema runs before serde on purpose. serde stops at the first error and does not say where it was;
//! the jsonschema validator reports every error with a JSON pointer, which the [`SpanMap`] built while converting
//! the TOML turns into a line and column. Because the schema is generated from the same types (and the checked
//! string types register their own parsers as schema formats), a value the schema accepts deserialises, and the
//! schema's verdict is the Rust verdict.

use std::path::{Path as FsPath, PathBuf};
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use serde_json::{Map, Number, Value};

use crate::Fleet;
use crate::names::{ContainerName, HostName, STRING_KINDS, StringKind, UserName};
use crate::source::{Path, Segment, SourceFile, Span, SpanMap, Spans};

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
    pub code: &'static str,
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
}

/// Why [`load`] or [`load_str`] returned no [`Fleet`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
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
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    load_str(&text, &path.display().to_string())
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
        }))
    };

    let value = match format {
        Format::Toml => match toml_edit::Document::parse(text) {
            Ok(doc) => item_to_json(doc.as_item(), &Path::root(), &mut spans),
            Err(e) => {
                let span = e.span().map(Span::from);
                let problem = Problem {
                    code: "toml_syntax",
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
                crate::json_spans::record(text, &mut spans);
                v
            }
            Err(e) => {
                let offset = offset_of_line_col(text, e.line(), e.column());
                let problem = Problem {
                    code: "json_syntax",
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
        match serde_json::from_value::<Fleet>(value.clone()) {
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
    Err(invalid(spans, problems))
}

fn offset_of_line_col(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (line_start + column.saturating_sub(1)).min(text.len())
}

/// Converts a toml_edit item to JSON, recording spans. Dates and times become strings (no field takes one).
fn item_to_json(item: &toml_edit::Item, path: &Path, spans: &mut SpanMap) -> Value {
    use toml_edit::Item;
    match item {
        Item::None => Value::Null,
        Item::Value(v) => value_to_json(v, path, spans),
        Item::Table(t) => {
            spans.insert(
                path.clone(),
                Spans {
                    key: None,
                    value: t.span().map(Span::from),
                },
            );
            let mut map = Map::new();
            for (k, v) in t.iter() {
                let child = path.key(k);
                let key_span = t.key(k).and_then(|k| k.span()).map(Span::from);
                spans.insert(
                    child.clone(),
                    Spans {
                        key: key_span,
                        value: None,
                    },
                );
                map.insert(k.to_owned(), item_to_json(v, &child, spans));
            }
            Value::Object(map)
        }
        Item::ArrayOfTables(a) => {
            spans.insert(
                path.clone(),
                Spans {
                    key: None,
                    value: a.span().map(Span::from),
                },
            );
            let mut out = Vec::new();
            for (i, t) in a.iter().enumerate() {
                let child = path.index(i);
                let table = Item::Table(t.clone());
                out.push(item_to_json(&table, &child, spans));
            }
            Value::Array(out)
        }
    }
}

fn value_to_json(v: &toml_edit::Value, path: &Path, spans: &mut SpanMap) -> Value {
    use toml_edit::Value as V;
    spans.insert(
        path.clone(),
        Spans {
            key: None,
            value: v.span().map(Span::from),
        },
    );
    match v {
        V::String(s) => Value::String(s.value().clone()),
        V::Integer(i) => Value::Number(Number::from(*i.value())),
        V::Float(f) => Number::from_f64(*f.value())
            .map_or_else(|| Value::String(f.value().to_string()), Value::Number),
        V::Boolean(b) => Value::Bool(*b.value()),
        V::Datetime(d) => Value::String(d.value().to_string()),
        V::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| value_to_json(v, &path.index(i), spans))
                .collect(),
        ),
        V::InlineTable(t) => {
            let mut map = Map::new();
            for (k, v) in t.iter() {
                let child = path.key(k);
                let key_span = t.key(k).and_then(|k| k.span()).map(Span::from);
                spans.insert(
                    child.clone(),
                    Spans {
                        key: key_span,
                        value: None,
                    },
                );
                map.insert(k.to_owned(), value_to_json(v, &child, spans));
            }
            Value::Object(map)
        }
    }
}

/// The JSON schema of the inventory, generated from the types (what `schema/fleet.schema.json` holds).
pub fn schema() -> Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut settings = schemars::generate::SchemaSettings::draft2020_12();
            settings
                .transforms
                .push(Box::new(schemars::transform::RecursiveTransform(
                    strip_null,
                )));
            let schema = settings.into_generator().into_root_schema_for::<Fleet>();
            schema.to_value()
        })
        .clone()
}

/// The schema as pretty-printed JSON with a final newline, byte for byte what `schema/fleet.schema.json` holds.
pub fn schema_string() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// Tightens the generated schema. TOML has no null, and "left out" is how an inventory says "default": drop schemars' `null` alternatives for
/// `Option` fields so editors and the validator don't offer or accept `null`.
fn strip_null(schema: &mut schemars::Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    // schemars marks fixed-width integers with a `format` most validators ignore; make the bound explicit so
    // the schema, not serde, rejects a uid of 5000000000.
    let max = match obj.get("format").and_then(Value::as_str) {
        Some("uint8") => Some(u64::from(u8::MAX)),
        Some("uint16") => Some(u64::from(u16::MAX)),
        Some("uint32") => Some(u64::from(u32::MAX)),
        _ => None,
    };
    if let Some(max) = max {
        obj.entry("maximum").or_insert(max.into());
    }
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let single = types.remove(0);
            obj.insert("type".into(), single);
        }
    }
    let replacement = match obj.get("anyOf") {
        Some(Value::Array(options)) if options.len() == 2 => {
            let is_null = |v: &Value| v.get("type").is_some_and(|t| t == "null");
            match (is_null(&options[0]), is_null(&options[1])) {
                (false, true) => Some(options[0].clone()),
                (true, false) => Some(options[1].clone()),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(Value::Object(inner)) = replacement {
        obj.remove("anyOf");
        for (k, v) in inner {
            obj.entry(k).or_insert(v);
        }
    }
}

fn validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let mut options = jsonschema::options().should_validate_formats(true);
            for kind in STRING_KINDS {
                if let Some(format) = kind.format {
                    let check = kind.validate;
                    options = options.with_format(format, move |s: &str| check(s).is_ok());
                }
            }
            options.build(&schema()).ok()
        })
        .as_ref()
}

/// Turns a JSON pointer into a [`Path`], using the instance to tell array indices from keys that look like numbers.
fn pointer_to_path(pointer: &str, instance: &Value) -> Path {
    let mut path = Path::root();
    let mut cur = Some(instance);
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        match cur {
            Some(Value::Array(items)) => {
                let i = seg.parse::<usize>().unwrap_or(usize::MAX);
                cur = items.get(i);
                path = path.index(i);
            }
            Some(Value::Object(map)) => {
                cur = map.get(&seg);
                path = path.key(seg);
            }
            _ => {
                cur = None;
                path = path.key(seg);
            }
        }
    }
    path
}

fn schema_at<'a>(schema: &'a Value, location: &str) -> Option<&'a Value> {
    schema.pointer(location)
}

/// Follows a local `$ref` (`#/$defs/Host`) to the schema it names.
fn resolve_ref<'a>(schema: &'a Value, sub: &'a Value) -> &'a Value {
    sub.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| schema.pointer(pointer))
        .unwrap_or(sub)
}

fn parent_pointer(location: &str) -> &str {
    location.rfind('/').map_or("", |i| &location[..i])
}

/// Which checked name type the keys of the table at `path` have, if they are names.
fn key_kind(path: &Path) -> Option<StringKind> {
    let keys: Vec<Option<&str>> = path
        .segments()
        .iter()
        .map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        })
        .collect();
    match keys.as_slice() {
        [Some("hosts")] => Some(HostName::KIND),
        [Some("users")] => Some(UserName::KIND),
        [Some("containers")] | [Some("hosts"), Some(_), Some("containers")] => {
            Some(ContainerName::KIND)
        }
        _ => None,
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "a table".into(),
    }
}

fn type_name(t: &Value) -> String {
    let one = |t: &str| match t {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        "array" => "an array",
        "object" => "a table",
        "null" => "nothing",
        _ => "a value",
    };
    match t {
        Value::String(s) => one(s).into(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "a different type".into(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Validates the converted document against the schema and explains every error.
fn validate_value(value: &Value, spans: &SpanMap) -> Vec<Problem> {
    let Some(validator) = validator() else {
        return vec![Problem {
            code: "internal_error",
            path: Path::root(),
            span: None,
            message: "the built-in schema does not compile; this is a bug in pifleet".into(),
            help: None,
        }];
    };
    let schema = schema();
    let mut problems = Vec::new();
    for error in validator.iter_errors(value) {
        let path = pointer_to_path(error.instance_path().as_str(), value);
        explain(
            error.kind(),
            error.instance(),
            &path,
            error.schema_path().as_str(),
            &schema,
            spans,
            &mut problems,
        );
    }
    problems
}

#[allow(clippy::too_many_arguments)]
fn explain(
    kind: &ValidationErrorKind,
    instance: &Value,
    path: &Path,
    schema_path: &str,
    schema: &Value,
    spans: &SpanMap,
    out: &mut Vec<Problem>,
) {
    let field_help = || {
        schema_at(schema, parent_pointer(schema_path))
            .and_then(|s| s.get("description"))
            .and_then(Value::as_str)
            .map(|d| match path.last_key() {
                Some(key) => format!("`{key}`: {d}"),
                None => d.to_owned(),
            })
    };
    let value_problem = |code: &'static str, message: String, help: Option<String>| Problem {
        code,
        path: path.clone(),
        span: spans.value_span(path),
        message,
        help,
    };
    match kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed: Vec<String> = schema_at(schema, parent_pointer(schema_path))
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            for key in unexpected {
                let child = path.key(key.clone());
                let span = spans.key_span(&child);
                if let Some(kind) = key_kind(path) {
                    let message = match (kind.validate)(key) {
                        Err(e) => e.message,
                        Ok(()) => format!("`{key}` is not a valid name here"),
                    };
                    out.push(Problem {
                        code: kind.code,
                        path: child,
                        span,
                        message,
                        help: Some(
                            "rename it; names become Nix attributes, unit names and host names"
                                .into(),
                        ),
                    });
                    continue;
                }
                if path.last_key() == Some("wifi")
                    && matches!(key.as_str(), "psk" | "password" | "passphrase")
                {
                    out.push(Problem {
                        code: "plaintext_wifi_psk",
                        path: child,
                        span,
                        message: format!("`{key}` would put the Wi-Fi passphrase in the world-readable Nix store"),
                        help: Some(
                            "put `psk=<passphrase>` in a file on the host (e.g. /var/lib/secrets/wifi) and set `secrets_file` to its path".into(),
                        ),
                    });
                    continue;
                }
                if matches!(
                    key.as_str(),
                    "password" | "initial_password" | "plain_password"
                ) && path.segments().first() == Some(&Segment::Key("users".into()))
                {
                    out.push(Problem {
                        code: "plaintext_password",
                        path: child,
                        span,
                        message: format!("`{key}`: plaintext passwords are not accepted"),
                        help: Some("set `hashed_password_file` to a file on the host holding a hash from `mkpasswd -m yescrypt`".into()),
                    });
                    continue;
                }
                let suggestion = allowed
                    .iter()
                    .map(|a| (edit_distance(key, a), a))
                    .filter(|(d, a)| *d <= 2.max(a.len() / 3))
                    .min()
                    .map(|(_, a)| a.clone());
                let where_ = if path.is_root() {
                    "at the top level".to_owned()
                } else {
                    format!("in `{path}`")
                };
                let help = match suggestion {
                    Some(s) => Some(format!("did you mean `{s}`?")),
                    None if !allowed.is_empty() => {
                        Some(format!("expected one of: {}", allowed.join(", ")))
                    }
                    None => None,
                };
                out.push(Problem {
                    code: "unknown_field",
                    path: child,
                    span,
                    message: format!("unknown field `{key}` {where_}"),
                    help,
                });
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or("?");
            let property = schema_at(schema, parent_pointer(schema_path))
                .and_then(|s| s.pointer(&format!("/properties/{name}")));
            let is_table = property
                .map(|p| resolve_ref(schema, p))
                .is_some_and(|p| p.get("type").is_some_and(|t| t == "object"));
            let add = if is_table {
                format!("add a `[{}]` table", path.key(name))
            } else {
                format!("add `{name} = …`")
            };
            let help = property
                .and_then(|p| p.get("description"))
                .and_then(Value::as_str)
                .map_or_else(|| add.clone(), |d| format!("{add}: {d}"));
            let help = Some(help);
            let table = if path.is_root() {
                "the top level".to_owned()
            } else {
                format!("`{path}`")
            };
            out.push(Problem {
                code: "missing_field",
                path: path.key(name),
                span: spans.key_span(path),
                message: format!("{table} is missing the required field `{name}`"),
                help,
            });
        }
        ValidationErrorKind::Type { .. } => {
            let expected =
                schema_at(schema, schema_path).map_or_else(|| "a different type".into(), type_name);
            let mut help = field_help();
            if expected == "a string" && matches!(instance, Value::Number(_) | Value::Bool(_)) {
                help = Some(format!("quote it: \"{instance}\""));
            }
            if expected == "an array" && matches!(instance, Value::String(_) | Value::Number(_)) {
                help = Some(format!("write a list, even for one item: [{instance}]"));
            }
            if let (true, Some(text)) = (expected.contains("integer"), instance.as_str())
                && text.trim().parse::<i64>().is_ok()
            {
                help = Some(format!("remove the quotes: {}", text.trim()));
            }
            out.push(value_problem(
                "wrong_type",
                format!("`{path}` should be {expected}, not {}", describe(instance)),
                help,
            ));
        }
        ValidationErrorKind::Enum { options } => {
            let choices: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(|o| o.to_string()).collect())
                .unwrap_or_default();
            let help = if path.last_key() == Some("permit_root_login") && instance == "yes" {
                Some("\"yes\" allows root passwords: use \"prohibit-password\" (keys in ssh.root_keys) or \"no\"".into())
            } else {
                Some(format!("use one of: {}", choices.join(", ")))
            };
            out.push(value_problem(
                "invalid_value",
                format!("`{path}` cannot be {}", describe(instance)),
                help,
            ));
        }
        ValidationErrorKind::Constant { expected_value } => out.push(value_problem(
            "invalid_value",
            format!(
                "`{path}` must be {expected_value}, not {}",
                describe(instance)
            ),
            None,
        )),
        ValidationErrorKind::Minimum { limit }
        | ValidationErrorKind::Maximum { limit }
        | ValidationErrorKind::ExclusiveMinimum { limit }
        | ValidationErrorKind::ExclusiveMaximum { limit } => {
            let range = schema_at(schema, parent_pointer(schema_path)).map(|s| {
                let lo = s.get("minimum").map_or("…".into(), Value::to_string);
                let hi = s.get("maximum").map_or("…".into(), Value::to_string);
                format!("{lo} to {hi}")
            });
            let is_port = range.as_deref() == Some("1 to 65535");
            out.push(value_problem(
                if is_port {
                    "invalid_port"
                } else {
                    "out_of_range"
                },
                format!(
                    "`{path}` is {instance}, outside the allowed range {}",
                    range.unwrap_or_else(|| format!("(limit {limit})"))
                ),
                field_help(),
            ));
        }
        ValidationErrorKind::Pattern { pattern } => {
            let text = instance.as_str().unwrap_or_default();
            let kind = STRING_KINDS
                .iter()
                .find(|k| k.pattern == Some(pattern.as_str()));
            match kind {
                Some(kind) => {
                    let message = match (kind.validate)(text) {
                        Err(e) => e.message,
                        Ok(()) => format!("`{text}` does not match {pattern}"),
                    };
                    out.push(value_problem(
                        kind.code,
                        format!("`{path}`: {message}"),
                        None,
                    ));
                }
                None => out.push(value_problem(
                    "invalid_value",
                    format!("`{path}`: `{text}` does not match the pattern {pattern}"),
                    field_help(),
                )),
            }
        }
        ValidationErrorKind::Format { format } => {
            let text = instance.as_str().unwrap_or_default();
            let kind = STRING_KINDS
                .iter()
                .find(|k| k.format == Some(format.as_str()));
            let (code, message) = match kind.map(|k| (k.code, (k.validate)(text))) {
                Some((_, Err(e))) => (e.code, e.message),
                Some((code, Ok(()))) => (code, format!("`{text}` is not a valid {format}")),
                None => ("invalid_value", format!("`{text}` is not a valid {format}")),
            };
            out.push(value_problem(code, format!("`{path}`: {message}"), None));
        }
        ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. }
            if enum_choices(schema_at(schema, schema_path)).is_some() =>
        {
            let choices = enum_choices(schema_at(schema, schema_path)).unwrap_or_default();
            let help = if path.last_key() == Some("permit_root_login") && instance == "yes" {
                "\"yes\" allows root passwords: use \"prohibit-password\" (keys in ssh.root_keys) or \"no\"".to_owned()
            } else {
                format!("use one of: {}", choices.join(", "))
            };
            out.push(value_problem(
                "invalid_value",
                format!("`{path}` cannot be {}", describe(instance)),
                Some(help),
            ));
        }
        ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
            let options = schema_at(schema, schema_path)
                .and_then(Value::as_array)
                .map(|opts| {
                    opts.iter()
                        .filter_map(|o| o.get("type"))
                        .map(type_name)
                        .collect::<Vec<_>>()
                        .join(", or ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "a different value".into());
            out.push(value_problem(
                "wrong_type",
                format!("`{path}` should be {options}, not {}", describe(instance)),
                field_help(),
            ));
        }
        ValidationErrorKind::MinItems { limit } => out.push(value_problem(
            "invalid_value",
            format!("`{path}` needs at least {limit} item(s)"),
            field_help(),
        )),
        ValidationErrorKind::UniqueItems => out.push(value_problem(
            "duplicate_item",
            format!("`{path}` lists the same item twice"),
            Some("remove the repeated item".into()),
        )),
        other => out.push(value_problem(
            "schema_violation",
            format!("`{path}`: {}", describe_kind(other)),
            field_help(),
        )),
    }
}

/// The allowed values when every alternative of a `oneOf`/`anyOf` is a `const` (how schemars writes enums whose
/// variants have doc comments).
fn enum_choices(options: Option<&Value>) -> Option<Vec<String>> {
    let options = options?.as_array()?;
    options
        .iter()
        .map(|o| o.get("const").map(Value::to_string))
        .collect::<Option<Vec<_>>>()
        .filter(|c| !c.is_empty())
}

fn describe_kind(kind: &ValidationErrorKind) -> String {
    format!("does not satisfy the schema's `{}` rule", kind.keyword())
}

/// The schema accepted the document but serde did not: a gap between the two. Narrow it down to the host, user
/// or container whose part fails, so the message still points somewhere useful.
fn locate_serde_error(value: &Value, spans: &SpanMap, error: serde_json::Error) -> Problem {
    use serde::de::DeserializeOwned;
    fn first_failing<T: DeserializeOwned>(value: &Value, table: &str) -> Option<(Path, String)> {
        let map = value.get(table)?.as_object()?;
        map.iter().find_map(|(k, v)| {
            serde_json::from_value::<T>(v.clone())
                .err()
                .map(|e| (Path::root().key(table).key(k.clone()), e.to_string()))
        })
    }
    let found = first_failing::<crate::Host>(value, "hosts")
        .or_else(|| first_failing::<crate::User>(value, "users"))
        .or_else(|| first_failing::<crate::FleetContainer>(value, "containers"));
    let (path, message) = found.unwrap_or_else(|| (Path::root(), error.to_string()));
    Problem {
        code: "invalid_value",
        span: spans.key_span(&path),
        message: format!("`{path}`: {message}"),
        path,
        help: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
