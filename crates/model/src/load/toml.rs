//! TOML to the `serde_json::Value` the schema validates. Positions are found later, when a
//! diagnostic asks for one ([`SpanMap`](crate::SpanMap)).

use serde_json::Value;

pub(super) fn offset_of_line_col(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (line_start + column.saturating_sub(1)).min(text.len())
}

/// The key under which the `toml` crate hands a date or time to a deserializer that is not its own
/// (`toml_datetime`'s private field name).
const DATETIME_FIELD: &str = "$__toml_private_datetime";

/// Turns the dates and times `toml` left as `{ "$__toml_private_datetime": "…" }` into their text,
/// so the schema reports "expected …, found a string" rather than naming a private field. No field
/// of the inventory takes one.
pub(super) fn datetimes_to_strings(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.len() == 1
                && let Some(Value::String(text)) = map.get_mut(DATETIME_FIELD)
            {
                let text = std::mem::take(text);
                *value = Value::String(text);
                return;
            }
            map.values_mut().for_each(datetimes_to_strings);
        }
        Value::Array(items) => items.iter_mut().for_each(datetimes_to_strings),
        _ => {}
    }
}
