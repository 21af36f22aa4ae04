//! The JSON schema generated from the types, and validating a document against it: every error
//! explained in words, with the path and the span of the offending value.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use super::Problem;
use crate::Fleet;
use crate::ProblemCode;
use crate::names::{ContainerName, HostName, STRING_KINDS, StringKind, UserName};
use crate::source::{Path, Segment, SpanMap};

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

pub(super) fn validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| build_validator(&schema()))
        .as_ref()
}

/// A validator for `schema` (the inventory's, or a part of it) that checks pifleet's string
/// formats with their parsers.
pub(super) fn build_validator(schema: &Value) -> Option<jsonschema::Validator> {
    let mut options = jsonschema::options().should_validate_formats(true);
    for kind in STRING_KINDS {
        if let Some(format) = kind.format {
            let check = kind.validate;
            options = options.with_format(format, move |s: &str| check(s).is_ok());
        }
    }
    options.build(schema).ok()
}

/// Turns a JSON pointer into a [`Path`], using the instance to tell array indices from keys that look like numbers.
pub(super) fn pointer_to_path(pointer: &str, instance: &Value) -> Path {
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

/// Validates the converted document against the schema and explains every error.
pub(super) fn validate_value(value: &Value, spans: &SpanMap) -> Vec<Problem> {
    let Some(validator) = validator() else {
        return vec![Problem {
            code: ProblemCode::InternalError,
            path: Path::root(),
            span: None,
            message: "the built-in schema does not compile; this is a bug in pifleet".into(),
            help: None,
        }];
    };
    // Most inventories are valid: answering that is much cheaper than collecting every error.
    if validator.is_valid(value) {
        return Vec::new();
    }
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
    let value_problem = |code: ProblemCode, message: String, help: Option<String>| Problem {
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
                        code: ProblemCode::PlaintextWifiPsk,
                        path: child,
                        span,
                        message: format!("`{key}` would put the Wi-Fi passphrase in the world-readable Nix store"),
                        help: Some(
                            "put `psk=<passphrase>` in a file on the host (e.g. /var/lib/secrets/wifi) and set `secrets_file` to its path".into(),
                        ),
                    });
                    continue;
                }
                if path.last_key() == Some("tailscale")
                    && matches!(key.as_str(), "auth_key" | "authkey" | "auth_key_value")
                {
                    out.push(Problem {
                        code: ProblemCode::PlaintextAuthKey,
                        path: child,
                        span,
                        message: format!("`{key}` would put the Tailscale auth key in the repository and the world-readable Nix store"),
                        help: Some(
                            "store it encrypted with `pifleet secrets set tailscale-key` and set `auth_key_secret = \"tailscale-key\"`; revoke the written key in the admin console".into(),
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
                        code: ProblemCode::PlaintextPassword,
                        path: child,
                        span,
                        message: format!("`{key}`: plaintext passwords are not accepted"),
                        help: Some("set `hashed_password_file` to a file on the host holding a hash from `mkpasswd -m yescrypt`".into()),
                    });
                    continue;
                }
                let suggestion = allowed
                    .iter()
                    .map(|a| (strsim::levenshtein(key, a), a))
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
                    code: ProblemCode::UnknownField,
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
                code: ProblemCode::MissingField,
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
            if path.last_key() == Some("allow_unfree") && instance.is_boolean() {
                out.push(value_problem(
                    ProblemCode::WrongType,
                    format!("`{path}` takes the names of the unfree packages to allow, not {instance}: allowing every unfree package would let any licence in unseen"),
                    Some("list them by name, e.g. allow_unfree = [\"unrar\"]".into()),
                ));
                return;
            }
            if let (true, Some(text)) = (expected.contains("integer"), instance.as_str())
                && text.trim().parse::<i64>().is_ok()
            {
                help = Some(format!("remove the quotes: {}", text.trim()));
            }
            out.push(value_problem(
                ProblemCode::WrongType,
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
                ProblemCode::InvalidValue,
                format!("`{path}` cannot be {}", describe(instance)),
                help,
            ));
        }
        ValidationErrorKind::Constant { expected_value } => out.push(value_problem(
            ProblemCode::InvalidValue,
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
                    ProblemCode::InvalidPort
                } else {
                    ProblemCode::OutOfRange
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
                    ProblemCode::InvalidValue,
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
                None => (
                    ProblemCode::InvalidValue,
                    format!("`{text}` is not a valid {format}"),
                ),
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
                ProblemCode::InvalidValue,
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
                ProblemCode::WrongType,
                format!("`{path}` should be {options}, not {}", describe(instance)),
                field_help(),
            ));
        }
        ValidationErrorKind::MinItems { limit } => out.push(value_problem(
            ProblemCode::InvalidValue,
            format!("`{path}` needs at least {limit} item(s)"),
            field_help(),
        )),
        ValidationErrorKind::UniqueItems => out.push(value_problem(
            ProblemCode::DuplicateItem,
            format!("`{path}` lists the same item twice"),
            Some("remove the repeated item".into()),
        )),
        other => out.push(value_problem(
            ProblemCode::SchemaViolation,
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
pub(super) fn locate_serde_error(
    value: &Value,
    spans: &SpanMap,
    error: serde_json::Error,
) -> Problem {
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
        code: ProblemCode::InvalidValue,
        span: spans.key_span(&path),
        message: format!("`{path}`: {message}"),
        path,
        help: None,
    }
}
