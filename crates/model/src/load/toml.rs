//! TOML (via `toml_edit`, which keeps positions) to the `serde_json::Value` the schema validates,
//! recording where every key and value was written.

use serde_json::{Map, Number, Value};

use crate::source::{Path, Span, SpanMap, Spans};

pub(super) fn offset_of_line_col(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (line_start + column.saturating_sub(1)).min(text.len())
}

/// Converts a toml_edit item to JSON, recording spans. Dates and times become strings (no field takes one).
pub(super) fn item_to_json(item: &toml_edit::Item, path: &Path, spans: &mut SpanMap) -> Value {
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
