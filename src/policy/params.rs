//! Matching request parameter values against the value lists of `allowed_parameters` and
//! `denied_parameters` (contract §4.4).
//!
//! A list entry matches a value when both are strings and the entry, read as a glob with at most a
//! leading and/or trailing `*`, matches; when both are null; or when both are equal JSON values
//! (numbers compared numerically). Beyond that, current Vault treats an array value, or a string it
//! can read as a comma-separated list, element by element: all elements must be allowed, and any
//! denied element denies.

use serde_json::Value;

/// Whether `value` passes an allowed-values list (an empty list allows everything).
pub(crate) fn allowed_by(value: &Value, list: &[Value]) -> bool {
    if list.is_empty() || in_list(value, list) {
        return true;
    }
    match value {
        Value::Array(elems) => elems.iter().all(|e| in_list(e, list)),
        Value::String(s) => comma_items(s).all(|e| in_list(&Value::String(e.to_owned()), list)),
        _ => false,
    }
}

/// Whether `value` is hit by a denied-values list (an empty list denies everything).
pub(crate) fn denied_by(value: &Value, list: &[Value]) -> bool {
    if list.is_empty() || in_list(value, list) {
        return true;
    }
    match value {
        Value::Array(elems) => elems.iter().any(|e| in_list(e, list)),
        Value::String(s) => comma_items(s).any(|e| in_list(&Value::String(e.to_owned()), list)),
        _ => false,
    }
}

/// Lower-cases the values of the `policies` / `token_policies` parameters, which Vault stores in
/// lower case, so a mixed-case spelling cannot slip past a value list.
pub(crate) fn normalize(name: &str, value: &Value) -> Value {
    if !matches!(name.to_lowercase().as_str(), "policies" | "token_policies") {
        return value.clone();
    }
    match value {
        Value::String(s) => Value::String(s.to_lowercase()),
        Value::Array(elems) => Value::Array(
            elems
                .iter()
                .map(|e| match e {
                    Value::String(s) => Value::String(s.to_lowercase()),
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A comma-separated string split into trimmed items; the empty string has no items.
fn comma_items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(move |_| !s.is_empty())
}

fn in_list(value: &Value, list: &[Value]) -> bool {
    list.iter().any(|entry| match (entry, value) {
        (Value::Null, _) | (_, Value::Null) => entry.is_null() && value.is_null(),
        (Value::String(pattern), Value::String(v)) => glob_match(pattern, v),
        (Value::String(_), _) => false,
        _ => json_eq(entry, value),
    })
}

/// Vault's `GlobbedStringsMatch`: patterns shorter than two characters match only themselves.
pub(crate) fn glob_match(pattern: &str, value: &str) -> bool {
    if pattern.len() < 2 {
        return pattern == value;
    }
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), Some(_)) => rest
            .strip_suffix('*')
            .is_some_and(|middle| value.contains(middle)),
        (Some(suffix), None) => value.ends_with(suffix),
        (None, Some(prefix)) => value.starts_with(prefix),
        (None, None) => pattern == value,
    }
}

/// Deep equality where numbers compare by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
