//! Typed request fields, parsed leniently the way Vault's framework does.
//!
//! Clients send numbers, booleans and durations as strings (`vault write k=v` always does), lists
//! as comma-separated strings, and `null` for "no body". `FieldData` applies one schema per path and
//! produces Vault's `error converting input for field "<f>": ...` message on bad input.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::error::{Error, Result};

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
        self.present(name).map(|v| to_duration(name, v)).transpose()
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
    if secs < 0 {
        return Err(conv_err(
            name,
            format!("cannot provide negative value '{secs}'"),
        ));
    }
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

/// Parses Vault's duration syntax into whole seconds: integer seconds (`"300"`), days (`"2d"`),
/// or a Go duration (`"1h30m"`, `"1m0s"`, `"250ms"`). Fractions of a second are truncated.
/// Negative values are returned as such; callers decide whether they are allowed.
pub fn parse_duration_seconds(input: &str) -> std::result::Result<i64, String> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Some(days) = s.strip_suffix('d')
        && let Ok(n) = days.parse::<i64>()
    {
        return n
            .checked_mul(86_400)
            .ok_or_else(|| format!("time: invalid duration {input:?}"));
    }
    parse_go_duration_nanos(s)
        .map(|n| i64::try_from(n / 1_000_000_000).unwrap_or(i64::MAX))
        .map_err(|()| format!("time: invalid duration {input:?}"))
}

/// Vault's `ParseDurationSecond` in nanoseconds, for settings that take sub-second values
/// (`"500ms"`): integer seconds (`"30"`), days (`"2d"`) or a Go duration (`"1m30s"`).
pub fn parse_duration_nanos(input: &str) -> std::result::Result<i128, String> {
    let s = input.trim();
    let invalid = || format!("time: invalid duration {input:?}");
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(i128::from(n) * 1_000_000_000);
    }
    if let Some(days) = s.strip_suffix('d')
        && let Ok(n) = days.parse::<i64>()
    {
        return Ok(i128::from(n) * 86_400_000_000_000);
    }
    parse_go_duration_nanos(s).map_err(|()| invalid())
}

/// Go's `time.ParseDuration`, in nanoseconds.
fn parse_go_duration_nanos(s: &str) -> std::result::Result<i128, ()> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or(())?;
        let (num, after) = rest.split_at(num_end);
        if num.is_empty() || num == "." {
            return Err(());
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(()),
        };
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        let int_val: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| ())?
        };
        let mut value = int_val.checked_mul(scale).ok_or(())?;
        if !frac_part.is_empty() {
            let digits = frac_part.len().min(18);
            let frac: i128 = frac_part.get(..digits).ok_or(())?.parse().map_err(|_| ())?;
            let part = frac * scale / 10i128.pow(u32::try_from(digits).map_err(|_| ())?);
            value = value.checked_add(part).ok_or(())?;
        }
        total = total.checked_add(value).ok_or(())?;
        rest = next;
    }
    Ok(if neg { -total } else { total })
}

/// Go's `time.Duration.String()` for whole seconds: `3600` → `"1h0m0s"`, `60` → `"1m0s"`.
pub fn go_duration(secs: i64) -> String {
    if secs == 0 {
        return "0s".to_string();
    }
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{sign}{m}m{sec}s")
    } else {
        format!("{sign}{sec}s")
    }
}

/// The CLI's prettified form (zero units dropped): `3600` → `"1h"`, `5400` → `"1h30m"`.
pub fn pretty_duration(secs: i64) -> String {
    let full = go_duration(secs);
    if full == "0s" {
        return full;
    }
    let trimmed = full.replace("h0m0s", "h").replace("m0s", "m");
    if let Some(stripped) = trimmed.strip_suffix("h0m") {
        format!("{stripped}h")
    } else {
        trimmed
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

    #[test]
    fn go_duration_formatting() {
        assert_eq!(go_duration(3600), "1h0m0s");
        assert_eq!(go_duration(60), "1m0s");
        assert_eq!(go_duration(5), "5s");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(pretty_duration(3600), "1h");
        assert_eq!(pretty_duration(5400), "1h30m");
        assert_eq!(pretty_duration(90), "1m30s");
        assert_eq!(pretty_duration(2_764_799), "767h59m59s");
        assert_eq!(pretty_duration(14400), "4h");
        assert_eq!(pretty_duration(2700), "45m");
    }

    #[test]
    fn durations_in_nanoseconds() {
        assert_eq!(parse_duration_nanos("30"), Ok(30_000_000_000));
        assert_eq!(parse_duration_nanos("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration_nanos("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration_nanos("2d"), Ok(172_800_000_000_000));
        assert_eq!(parse_duration_nanos("-1.5s"), Ok(-1_500_000_000));
        assert_eq!(
            parse_duration_nanos("5 minutes"),
            Err("time: invalid duration \"5 minutes\"".to_owned())
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Go durations built from their parts read back exactly, in both parsers.
        #[test]
        fn go_durations_round_trip(
            h in 0i64..10_000, m in 0i64..600, s in 0i64..600, ms in 0i64..1000, neg: bool,
        ) {
            let sign = if neg { "-" } else { "" };
            let text = format!("{sign}{h}h{m}m{s}s{ms}ms");
            let millis = ((h * 60 + m) * 60 + s) * 1000 + ms;
            let nanos = i128::from(if neg { -millis } else { millis }) * 1_000_000;
            proptest::prop_assert_eq!(parse_duration_nanos(&text), Ok(nanos));
            let secs = i64::try_from(nanos / 1_000_000_000).unwrap();
            proptest::prop_assert_eq!(parse_duration_seconds(&text), Ok(secs));
        }

        /// Whole numbers are seconds.
        #[test]
        fn integers_are_seconds(n in proptest::num::i64::ANY) {
            proptest::prop_assert_eq!(parse_duration_nanos(&n.to_string()), Ok(i128::from(n) * 1_000_000_000));
            proptest::prop_assert_eq!(parse_duration_seconds(&n.to_string()), Ok(n));
        }

        /// Any text, including huge numbers and fractions, gives a value or an error, no panic.
        #[test]
        fn arbitrary_text_never_panics(text in "[-+0-9.a-zµμ ]{0,40}") {
            let _ = parse_duration_nanos(&text);
            let _ = parse_duration_seconds(&text);
        }

        #[test]
        fn arbitrary_unicode_never_panics(text in "\\PC{0,24}") {
            let _ = parse_duration_nanos(&text);
            let _ = parse_duration_seconds(&text);
        }
    }
}
