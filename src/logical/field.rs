//! Typed request fields, parsed leniently the way Vault's framework does.
//!
//! Clients send numbers, booleans and durations as strings (`vault write k=v` always does), lists
//! as comma-separated strings, and `null` for "no body". `FieldData` applies one schema per path and
//! produces Vault's `error converting input for field "<f>": ...` message on bad input.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::error::{Error, Result};

// The one duration parser and formatter; re-exported where backends have always found them.
pub use super::duration::{
    go_duration, parse_duration_nanos, parse_duration_seconds, pretty_duration,
};

/// How a field's raw JSON value is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A string; numbers and bools are stringified.
    Str,
    /// An integer; numeric strings accepted.
    Int,
    /// A boolean; `"true"`, `"1"`, `"t"` and friends accepted.
    Bool,
    /// Seconds: a number, an all-digit string, `"<n>d"`, or a Go duration such as `"1h30m"`.
    DurationSecond,
    /// As `DurationSecond`, negative values allowed (Vault's `TypeSignedDurationSecond`).
    SignedDurationSecond,
    /// A list from a JSON array or a comma-separated string (items trimmed, empties dropped).
    CommaStringSlice,
    /// A list from a JSON array; a lone string becomes a one-element list.
    StringSlice,
    /// A list of integers from an array of ints or numeric strings, or a comma string.
    CommaIntSlice,
    /// A JSON object.
    Map,
    /// A string→string map, from an object or a list of `k=v` strings.
    KvPairs,
    /// Any JSON value, unconverted.
    Raw,
}

impl FieldType {
    /// The name `path-help` shows for the type.
    pub fn type_name(self) -> &'static str {
        match self {
            FieldType::Str | FieldType::Raw => "string",
            FieldType::Int => "int",
            FieldType::Bool => "bool",
            FieldType::DurationSecond => "duration (sec)",
            FieldType::SignedDurationSecond => "signed duration (sec)",
            FieldType::CommaStringSlice => "comma-separated strings",
            FieldType::StringSlice => "slice",
            FieldType::CommaIntSlice => "comma-separated integers",
            FieldType::Map => "map",
            FieldType::KvPairs => "keypair",
        }
    }
}

/// One field of a path's schema.
#[derive(Debug, Clone)]
pub struct Field {
    /// The parameter name.
    pub name: &'static str,
    /// How its value is converted.
    pub ty: FieldType,
    /// Help text.
    pub description: &'static str,
}

/// The request's parameters together with the schema of the path they were sent to.
pub struct FieldData<'a> {
    raw: Map<String, Value>,
    schema: &'a [Field],
}

impl std::fmt::Debug for FieldData<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldData")
            .field("keys", &super::redacted_keys(&self.raw))
            .finish()
    }
}

fn conv_err(name: &str, detail: impl std::fmt::Display) -> Error {
    Error::bad(format!(
        "error converting input for field {name:?}: {detail}"
    ))
}

impl<'a> FieldData<'a> {
    /// Wraps raw parameters with a schema.
    pub fn new(raw: Map<String, Value>, schema: &'a [Field]) -> Self {
        Self { raw, schema }
    }

    /// The raw parameters.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// Parameters that the schema does not know, sorted.
    pub fn unknown_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .raw
            .keys()
            .filter(|k| !self.schema.iter().any(|f| f.name == k.as_str()))
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    /// Validates every supplied schema field (so that bad input fails before any state changes).
    pub fn validate(&self) -> Result<()> {
        for f in self.schema {
            if let Some(v) = self.raw.get(f.name) {
                convert(f.name, f.ty, v)?;
            }
        }
        Ok(())
    }

    fn present(&self, name: &str) -> Option<&Value> {
        self.raw.get(name).filter(|v| !v.is_null())
    }

    fn ty(&self, name: &str) -> FieldType {
        self.schema
            .iter()
            .find(|f| f.name == name)
            .map_or(FieldType::Raw, |f| f.ty)
    }

    /// True when the parameter was sent (even as an empty string).
    pub fn has(&self, name: &str) -> bool {
        self.present(name).is_some()
    }

    /// A string parameter, or `None` when absent.
    pub fn get_str(&self, name: &str) -> Result<Option<String>> {
        self.present(name).map(|v| to_string(name, v)).transpose()
    }

    /// An integer parameter.
    pub fn get_int(&self, name: &str) -> Result<Option<i64>> {
        self.present(name).map(|v| to_int(name, v)).transpose()
    }

    /// A boolean parameter.
    pub fn get_bool(&self, name: &str) -> Result<Option<bool>> {
        self.present(name).map(|v| to_bool(name, v)).transpose()
    }

    /// A duration parameter in whole seconds (never negative).
    pub fn get_duration(&self, name: &str) -> Result<Option<i64>> {
        let signed = self.ty(name) == FieldType::SignedDurationSecond;
        self.present(name)
            .map(|v| {
                if signed {
                    to_signed_duration(name, v)
                } else {
                    to_duration(name, v)
                }
            })
            .transpose()
    }

    /// A list parameter, converted per the schema (comma list or string slice).
    pub fn get_list(&self, name: &str) -> Result<Option<Vec<String>>> {
        let ty = self.ty(name);
        self.present(name)
            .map(|v| match ty {
                FieldType::StringSlice => to_string_slice(name, v),
                _ => to_comma_slice(name, v),
            })
            .transpose()
    }

    /// A list of integers.
    pub fn get_int_list(&self, name: &str) -> Result<Option<Vec<i64>>> {
        self.present(name)
            .map(|v| to_int_slice(name, v))
            .transpose()
    }

    /// A JSON object parameter.
    pub fn get_map(&self, name: &str) -> Result<Option<Map<String, Value>>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(v) => Err(conv_err(
                name,
                format!("'' expected a map, got '{}'", kind(v)),
            )),
        }
    }

    /// A string→string map parameter (object or `k=v` list).
    pub fn get_kv_pairs(&self, name: &str) -> Result<Option<BTreeMap<String, String>>> {
        self.present(name).map(|v| to_kv_pairs(name, v)).transpose()
    }

    /// The raw value of a parameter.
    pub fn get_raw(&self, name: &str) -> Option<&Value> {
        self.present(name)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// Go's name for the type a JSON value decodes to, as mapstructure prints it in
/// "got unconvertible type" errors.
pub fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "json.Number",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Converts one raw value per its type; used for validation.
fn convert(name: &str, ty: FieldType, v: &Value) -> Result<()> {
    if v.is_null() {
        return Ok(());
    }
    match ty {
        FieldType::Str => to_string(name, v).map(drop),
        FieldType::Int => to_int(name, v).map(drop),
        FieldType::Bool => to_bool(name, v).map(drop),
        FieldType::DurationSecond => to_duration(name, v).map(drop),
        FieldType::SignedDurationSecond => to_signed_duration(name, v).map(drop),
        FieldType::CommaStringSlice => to_comma_slice(name, v).map(drop),
        FieldType::StringSlice => to_string_slice(name, v).map(drop),
        FieldType::CommaIntSlice => to_int_slice(name, v).map(drop),
        FieldType::KvPairs => to_kv_pairs(name, v).map(drop),
        FieldType::Map => match v {
            Value::Object(_) => Ok(()),
            other => Err(conv_err(
                name,
                format!("'' expected a map, got '{}'", kind(other)),
            )),
        },
        FieldType::Raw => Ok(()),
    }
}

/// A parameter read as a string with Vault's weak typing (numbers and booleans converted),
/// for a request served outside a path table.
pub(crate) fn str_param(name: &str, v: &Value) -> Result<String> {
    to_string(name, v)
}

fn to_string(name: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "1".into() } else { "0".into() }),
        other => Err(conv_err(
            name,
            format!(
                "'' expected type 'string', got unconvertible type '{}'",
                go_type(other)
            ),
        )),
    }
}

fn to_int(name: &str, v: &Value) -> Result<i64> {
    let bad = || {
        conv_err(
            name,
            "'' cannot parse value as 'int': strconv.ParseInt: invalid syntax",
        )
    };
    match v {
        // JSON numbers reach Vault as json.Number text and go through strconv.ParseInt, so a
        // fraction such as 1.5 is invalid syntax rather than truncated.
        Value::Number(n) => n.as_i64().ok_or_else(bad),
        Value::String(s) if s.trim().is_empty() => Ok(0),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad()),
        Value::Bool(b) => Ok(i64::from(*b)),
        other => Err(conv_err(
            name,
            format!(
                "'' expected type 'int', got unconvertible type '{}'",
                go_type(other)
            ),
        )),
    }
}

fn to_bool(name: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        Value::String(s) => match s.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Ok(false),
            _ => Err(conv_err(
                name,
                "'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax",
            )),
        },
        other => Err(conv_err(
            name,
            format!(
                "'' expected type 'bool', got unconvertible type '{}'",
                go_type(other)
            ),
        )),
    }
}

fn to_duration(name: &str, v: &Value) -> Result<i64> {
    let secs = to_signed_duration(name, v)?;
    if secs < 0 {
        return Err(conv_err(
            name,
            format!("cannot provide negative value '{secs}'"),
        ));
    }
    Ok(secs)
}

fn to_signed_duration(name: &str, v: &Value) -> Result<i64> {
    let secs = match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => i,
            None => n
                .as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                .map(|f| f as i64)
                .unwrap_or(i64::MAX),
        },
        Value::String(s) => parse_duration_seconds(s).map_err(|e| conv_err(name, e))?,
        Value::Bool(_) | Value::Array(_) | Value::Object(_) | Value::Null => {
            return Err(conv_err(name, "could not parse duration from input"));
        }
    };
    Ok(secs)
}

fn to_comma_slice(name: &str, v: &Value) -> Result<Vec<String>> {
    let items: Vec<String> = match v {
        Value::String(s) => s.split(',').map(str::to_string).collect(),
        Value::Array(a) => a
            .iter()
            .map(|x| to_string(name, x))
            .collect::<Result<_>>()?,
        Value::Number(_) | Value::Bool(_) => vec![to_string(name, v)?],
        Value::Object(_) | Value::Null => {
            return Err(conv_err(
                name,
                "'' expected a slice or a comma-separated string",
            ));
        }
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

fn to_string_slice(name: &str, v: &Value) -> Result<Vec<String>> {
    match v {
        Value::Array(a) => a.iter().map(|x| to_string(name, x)).collect(),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        other => Ok(vec![to_string(name, other)?]),
    }
}

fn to_int_slice(name: &str, v: &Value) -> Result<Vec<i64>> {
    match v {
        Value::Array(a) => {
            let mut out = Vec::new();
            for x in a {
                match x {
                    Value::String(s) => {
                        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                            out.push(to_int(name, &Value::String(part.to_string()))?);
                        }
                    }
                    other => out.push(to_int(name, other)?),
                }
            }
            Ok(out)
        }
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| to_int(name, &Value::String(p.to_string())))
            .collect(),
        other => Ok(vec![to_int(name, other)?]),
    }
}

fn to_kv_pairs(name: &str, v: &Value) -> Result<BTreeMap<String, String>> {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| Ok((k.clone(), to_string(name, x)?)))
            .collect(),
        Value::Array(_) | Value::String(_) => {
            let mut out = BTreeMap::new();
            for item in to_comma_slice(name, v)? {
                let (k, val) = item
                    .split_once('=')
                    .ok_or_else(|| conv_err(name, format!("invalid key value pair {item:?}")))?;
                out.insert(k.trim().to_string(), val.trim().to_string());
            }
            Ok(out)
        }
        other => Err(conv_err(
            name,
            format!("'' expected a map, got '{}'", kind(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &[Field] = &[
        Field {
            name: "ttl",
            ty: FieldType::DurationSecond,
            description: "",
        },
        Field {
            name: "n",
            ty: FieldType::Int,
            description: "",
        },
        Field {
            name: "b",
            ty: FieldType::Bool,
            description: "",
        },
        Field {
            name: "pols",
            ty: FieldType::CommaStringSlice,
            description: "",
        },
        Field {
            name: "ss",
            ty: FieldType::StringSlice,
            description: "",
        },
        Field {
            name: "vers",
            ty: FieldType::CommaIntSlice,
            description: "",
        },
        Field {
            name: "meta",
            ty: FieldType::KvPairs,
            description: "",
        },
    ];

    fn fd(v: Value) -> FieldData<'static> {
        FieldData::new(v.as_object().cloned().unwrap_or_default(), SCHEMA)
    }

    #[test]
    fn durations_in_every_form() {
        for (input, want) in [
            (json!(300), 300),
            (json!("300"), 300),
            (json!("5m"), 300),
            (json!("1m0s"), 60),
            (json!("1h30m"), 5400),
            (json!("768h"), 2_764_800),
            (json!("2d"), 172_800),
            (json!("1.5h"), 5400),
            (json!("250ms"), 0),
            (json!(""), 0),
        ] {
            assert_eq!(
                fd(json!({ "ttl": input.clone() }))
                    .get_duration("ttl")
                    .unwrap(),
                Some(want),
                "{input}"
            );
        }
        for bad in [
            json!("abc"),
            json!("-5s"),
            json!(-1),
            json!("5x"),
            json!(true),
            json!("h"),
        ] {
            let err = fd(json!({ "ttl": bad.clone() }))
                .get_duration("ttl")
                .unwrap_err();
            assert_eq!(err.status().as_u16(), 400, "{bad}");
            assert!(
                err.to_string()
                    .starts_with("error converting input for field \"ttl\""),
                "{err}"
            );
        }
        assert_eq!(
            fd(json!({"ttl":"abc"}))
                .get_duration("ttl")
                .unwrap_err()
                .to_string(),
            "error converting input for field \"ttl\": time: invalid duration \"abc\""
        );
    }

    #[test]
    fn ints_bools_lists_and_maps() {
        let d = fd(
            json!({"n":"10","b":"true","pols":"a, b,,c","ss":"x,y","vers":["1","2,3",4],"meta":["k=v","a=b"]}),
        );
        assert_eq!(d.get_int("n").unwrap(), Some(10));
        assert_eq!(d.get_bool("b").unwrap(), Some(true));
        assert_eq!(d.get_list("pols").unwrap().unwrap(), ["a", "b", "c"]);
        assert_eq!(d.get_list("ss").unwrap().unwrap(), ["x,y"]);
        assert_eq!(d.get_int_list("vers").unwrap().unwrap(), [1, 2, 3, 4]);
        assert_eq!(
            d.get_kv_pairs("meta").unwrap().unwrap().get("k").unwrap(),
            "v"
        );
        assert_eq!(d.get_int("missing").unwrap(), None);
        assert_eq!(
            fd(json!({"n":"abc"})).get_int("n").unwrap_err().to_string(),
            "error converting input for field \"n\": '' cannot parse value as 'int': strconv.ParseInt: invalid syntax"
        );
        assert!(fd(json!({"b":"maybe"})).get_bool("b").is_err());
        assert!(fd(json!({"n":"x"})).validate().is_err());
        assert_eq!(
            fd(json!({"zz":1,"n":1,"aa":2})).unknown_keys(),
            ["aa", "zz"]
        );
    }
}
