//! The field readers every row parser shares: each says which field of which row was
//! wrong and what it held, and reads Pod's nulls and integer booleans as Pod's own
//! defaults. Not here: the rows themselves (`livestreams.rs`, `meetings.rs`,
//! `broadcasters.rs`).

use serde_json::{Map, Value};

use super::errors::words;

pub(super) fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("the string {:?}", words(s, 40)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A Pod object (`what`: livestream, meeting, broadcaster) with a usable `id`; `fields`
/// reads the rest. Every error names the object, and its id once known.
pub(super) fn object_with_id<T>(
    value: &Value,
    what: &str,
    fields: impl FnOnce(&Map<String, Value>, u64) -> Result<T, String>,
) -> Result<T, String> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("expected a {what} object, found {}", kind(value)))?;
    let id = required_id(map, "id").map_err(|e| format!("{what} without a usable id: {e}"))?;
    fields(map, id).map_err(|e| format!("{what} {id}: {e}"))
}

pub(super) fn expected(key: &str, what: &str, found: &Value) -> String {
    format!("field \"{key}\": expected {what}, found {}", kind(found))
}

pub(super) fn required_id(map: &Map<String, Value>, key: &str) -> Result<u64, String> {
    match map.get(key) {
        None => Err(format!("field \"{key}\" is missing")),
        Some(value) => value
            .as_u64()
            .ok_or_else(|| expected(key, "a non-negative integer", value)),
    }
}

pub(super) fn optional_id(map: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| expected(key, "a non-negative integer or null", value)),
    }
}

pub(super) fn required_int(map: &Map<String, Value>, key: &str) -> Result<i64, String> {
    match map.get(key) {
        None => Err(format!("field \"{key}\" is missing")),
        Some(value) => value
            .as_i64()
            .ok_or_else(|| expected(key, "an integer", value)),
    }
}

pub(super) fn optional_string(
    map: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(value) => Err(expected(key, "a string or null", value)),
    }
}

pub(super) fn required_string(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    match map.get(key) {
        None => Err(format!("field \"{key}\" is missing")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(value) => Err(expected(key, "a string", value)),
    }
}

/// JSON boolean, or 0/1; null or absent → `default`.
pub(super) fn flag(map: &Map<String, Value>, key: &str, default: bool) -> Result<bool, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(value) => match value.as_u64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(expected(key, "a boolean", value)),
        },
    }
}
