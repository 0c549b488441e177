//! Parameter parsing for the kv engine, with Vault's exact error texts.
//!
//! Vault's framework reports a bad field as `error converting input for field "<f>": <detail>`, and
//! prefixes it with `Field validation failed: ` unless the error surfaced in the existence check
//! (create/update on paths that have one: `data/`, `metadata/`, kv-v1 keys). The kv fields are
//! declared `Raw` in the path tables and parsed here so both the wording and that prefix match.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::logical::field::{go_type, parse_duration_seconds};
use crate::logical::{Operation, Request};

const BAD_INT: &str = "cannot parse value as 'int': strconv.ParseInt: invalid syntax";

/// mapstructure's weak decoding into an `int`: numbers, numeric strings (`""` is 0), bools.
pub fn weak_int(v: &Value) -> std::result::Result<i64, String> {
    match v {
        Value::Null => Ok(0),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("'' {BAD_INT}")),
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => s.parse::<i64>().map_err(|_| format!("'' {BAD_INT}")),
        other => Err(format!(
            "'' expected type 'int', got unconvertible type '{}'",
            go_type(other)
        )),
    }
}

/// Weak decoding into a `bool` (Go's `strconv.ParseBool` spellings, numbers, `""` = false).
pub fn weak_bool(v: &Value) -> std::result::Result<bool, String> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        Value::String(s) => match s.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err("'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax".into()),
        },
        other => Err(format!(
            "'' expected type 'bool', got unconvertible type '{}'",
            go_type(other)
        )),
    }
}

/// A duration in whole seconds (signed): integer seconds, `"300"`, `"5m"`, `"2d"`.
/// `max_versions`: Vault silently wraps negative and oversized values into a uint32 (-1 becomes
/// 4294967295); Coffer refuses them instead of storing a surprising number.
pub fn max_versions(v: &Value) -> std::result::Result<u32, String> {
    let n = weak_int(v)?;
    u32::try_from(n).map_err(|_| {
        if n < 0 {
            format!("cannot provide negative value '{n}'")
        } else {
            format!("value {n} is larger than the maximum of {}", u32::MAX)
        }
    })
}

pub fn duration_secs(v: &Value) -> std::result::Result<i64, String> {
    match v {
        Value::Null => Ok(0),
        // A JSON number is read as its text, like Go's json.Number: `1.5` has no unit.
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("time: missing unit in duration \"{n}\"")),
        Value::String(s) => parse_duration_seconds(s),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
            Err("could not parse duration from input".to_string())
        }
    }
}

/// A JSON object field (`null` = absent).
pub fn object(v: &Value) -> std::result::Result<Option<&Map<String, Value>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        other => Err(format!(
            "'' expected type 'map[string]interface {{}}', got unconvertible type '{}'",
            go_type(other)
        )),
    }
}

/// Vault's `TypeCommaIntSlice`: an array of ints or numeric strings, a comma string, or one number.
pub fn comma_ints(v: &Value) -> std::result::Result<Vec<i64>, String> {
    let items: Vec<Value> = match v {
        Value::Null => Vec::new(),
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => s.split(',').map(|p| Value::String(p.into())).collect(),
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match weak_int(item) {
            Ok(n) => out.push(n),
            Err(e) => errs.push(e.replacen("''", &format!("'[{i}]'"), 1)),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "decoding failed due to the following error(s):\n\n{}",
            errs.join("\n")
        ))
    }
}

/// Wraps a field's conversion error the way Vault reports it for this request.
pub fn field_error(req: &Request, has_existence_check: bool, name: &str, detail: &str) -> Error {
    // Query parameters (reads) repeat into Go's []string, not a JSON array.
    let detail = if req.operation == Operation::Read {
        detail.replace("'[]interface {}'", "'[]string'")
    } else {
        detail.to_string()
    };
    let msg = format!("error converting input for field {name:?}: {detail}");
    let via_existence =
        has_existence_check && matches!(req.operation, Operation::Create | Operation::Update);
    if via_existence {
        Error::bad(msg)
    } else {
        Error::bad(format!("Field validation failed: {msg}"))
    }
}

/// Parses the optional field `name` of `raw` with `f`, mapping errors per [`field_error`].
pub fn parse<'v, T>(
    req: &Request,
    has_existence_check: bool,
    raw: &'v Map<String, Value>,
    name: &str,
    f: impl FnOnce(&'v Value) -> std::result::Result<T, String>,
) -> Result<Option<T>> {
    match raw.get(name) {
        None => Ok(None),
        Some(v) => f(v)
            .map(Some)
            .map_err(|e| field_error(req, has_existence_check, name, &e)),
    }
}

const CM_PREFIX: &str = "custom_metadata validation failed";

/// Converts and validates `custom_metadata` (at most 64 keys, key 1..=128 bytes, value 1..=512
/// bytes, printable), with Vault's multi-error text. `skip_nulls` serves metadata PATCH.
pub fn custom_metadata(
    raw: &Map<String, Value>,
    skip_nulls: bool,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let s = match v {
            Value::Null if skip_nulls => continue,
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(Error::bad(format!(
                    "{CM_PREFIX}: '' expected type 'string', got unconvertible type '{}'",
                    go_type(other)
                )));
            }
        };
        out.insert(k.clone(), s);
    }
    let mut errs = Vec::new();
    if out.len() > 64 {
        errs.push(format!(
            "{CM_PREFIX}: payload must contain at most 64 keys, provided {}",
            out.len()
        ));
    } else {
        let printable = |s: &str| !s.chars().any(char::is_control);
        for (k, v) in &out {
            if k.is_empty() || k.len() > 128 {
                errs.push(format!(
                    "{CM_PREFIX}: length of key {k:?} is {} but must be 0 < len(key) <= 128",
                    k.len()
                ));
            }
            if v.is_empty() || v.len() > 512 {
                errs.push(format!(
                    "{CM_PREFIX}: length of value for key {k:?} is {} but must be 0 < len(value) <= 512",
                    v.len()
                ));
            }
            if !printable(k) {
                errs.push(format!(
                    "{CM_PREFIX}: key {k:?} ({k}) contains unprintable characters"
                ));
            }
            if !printable(v) {
                errs.push(format!(
                    "{CM_PREFIX}: value for key {k:?} contains unprintable characters"
                ));
            }
        }
    }
    if errs.is_empty() {
        return Ok(out);
    }
    let head = if errs.len() == 1 {
        "1 error occurred:".to_string()
    } else {
        format!("{} errors occurred:", errs.len())
    };
    let body: String = errs.iter().map(|e| format!("\n\t* {e}")).collect();
    Err(Error::bad(format!("{head}{body}\n\n")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ints_and_bools() {
        assert_eq!(weak_int(&json!("12")), Ok(12));
        assert_eq!(weak_int(&json!("")), Ok(0));
        assert_eq!(weak_int(&json!(true)), Ok(1));
        assert_eq!(weak_int(&json!(-3)), Ok(-3));
        assert!(weak_int(&json!(2.5)).is_err());
        assert!(weak_int(&json!("x")).is_err());
        assert_eq!(
            weak_int(&json!([1])).unwrap_err(),
            "'' expected type 'int', got unconvertible type '[]interface {}'"
        );
        assert_eq!(weak_bool(&json!("true")), Ok(true));
        assert_eq!(weak_bool(&json!(0)), Ok(false));
        assert!(weak_bool(&json!("maybe")).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration_secs(&json!("1h")), Ok(3600));
        assert_eq!(duration_secs(&json!(90)), Ok(90));
        assert_eq!(duration_secs(&json!("2d")), Ok(172_800));
        assert_eq!(duration_secs(&json!("-5s")), Ok(-5));
        assert_eq!(
            duration_secs(&json!(1.5)).unwrap_err(),
            "time: missing unit in duration \"1.5\""
        );
        assert_eq!(
            duration_secs(&json!(true)).unwrap_err(),
            "could not parse duration from input"
        );
    }

    #[test]
    fn version_lists() {
        assert_eq!(comma_ints(&json!(["1", 2])), Ok(vec![1, 2]));
        assert_eq!(comma_ints(&json!("2,3")), Ok(vec![2, 3]));
        assert_eq!(comma_ints(&json!(4)), Ok(vec![4]));
        assert_eq!(comma_ints(&json!([])), Ok(vec![]));
        assert_eq!(
            comma_ints(&json!(["abc"])).unwrap_err(),
            "decoding failed due to the following error(s):\n\n'[0]' cannot parse value as 'int': strconv.ParseInt: invalid syntax"
        );
        assert!(comma_ints(&json!({"a":1})).is_err());
    }

    #[test]
    fn custom_metadata_rules() {
        let ok = json!({"a":"b","n":1,"t":true});
        let m = custom_metadata(ok.as_object().unwrap(), false).unwrap();
        assert_eq!(m["n"], "1");
        assert_eq!(m["t"], "1");
        let bad = json!({"k":""});
        let e = custom_metadata(bad.as_object().unwrap(), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1 error occurred:\n\t* custom_metadata validation failed: length of value for key \"k\" is 0 but must be 0 < len(value) <= 512\n\n"
        );
        let many: Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(custom_metadata(&many, false).is_err());
    }
}
