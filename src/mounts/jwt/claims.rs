//! Claim lookups and the role's claim rules (Vault's `claims.go`): JSON-pointer keys,
//! `claim_mappings` into metadata, the groups claim, and `bound_claims` (AND across keys, OR
//! within a key's values, any element of a list claim; `string` compares typed values, `glob`
//! matches strings where only `*` is special).

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A claim by name, or by JSON pointer when it starts with `/`. `aud` is always a list; a
/// top-level number becomes an integer (fractions truncated), as Vault's `json.Number`
/// conversion does. Absent and `null` are `None`.
pub fn get_claim(claims: &Map<String, Value>, claim: &str) -> Option<Value> {
    let v = if let Some(ptr) = claim.strip_prefix('/') {
        let mut cur: Option<&Value> = None;
        for (i, seg) in ptr.split('/').enumerate() {
            let seg = seg.replace("~1", "/").replace("~0", "~");
            cur = if i == 0 {
                claims.get(&seg)
            } else {
                match cur? {
                    Value::Object(m) => m.get(&seg),
                    Value::Array(a) => seg.parse::<usize>().ok().and_then(|n| a.get(n)),
                    _ => None,
                }
            };
        }
        cur?
    } else {
        claims.get(claim)?
    };
    Some(match v {
        Value::Null => return None,
        Value::String(s) if claim == "aud" => Value::Array(vec![Value::String(s.clone())]),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => match n.as_u64() {
                Some(u) => Value::from(u),
                None => Value::from(n.as_f64().unwrap_or(0.0) as i64),
            },
        },
        other => other.clone(),
    })
}

/// A string, bool, number or list as a list (Vault's `normalizeList`).
pub fn normalize_list(v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(a) => Some(a.clone()),
        Value::String(_) | Value::Bool(_) | Value::Number(_) => Some(vec![v.clone()]),
        _ => None,
    }
}

/// Go's `%v` of a decoded JSON value, for error texts.
pub fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// The metadata from `claim_mappings` (absent claims skipped; values must be strings).
pub fn extract_metadata(
    claims: &Map<String, Value>,
    mappings: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (source, target) in mappings {
        if let Some(v) = get_claim(claims, source) {
            let Value::String(s) = v else {
                return Err(format!("error converting claim '{source}' to string"));
            };
            out.insert(target.clone(), s);
        }
    }
    Ok(out)
}

/// The group names of the groups claim (Vault's checks; empty names skipped).
pub fn groups(claims: &Map<String, Value>, claim: &str) -> Result<Vec<String>, String> {
    let raw = get_claim(claims, claim)
        .ok_or_else(|| format!("failed to fetch groups: {claim:?} claim not found in token"))?;
    let list = normalize_list(&raw)
        .ok_or_else(|| format!("{claim:?} claim could not be converted to string list"))?;
    let mut out = Vec::new();
    for g in list {
        let Value::String(s) = g else {
            return Err(format!(
                "value {} in groups claim could not be parsed as string",
                go_value(&g)
            ));
        };
        if !s.is_empty() {
            out.push(s);
        }
    }
    Ok(out)
}

/// `*` matches any run of characters (including `/` and `:`); nothing else is special.
pub fn glob(pattern: &str, subject: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return subject == pattern;
    };
    let Some(mut rest) = subject.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = rest.get(i + part.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Checks every bound claim. `Err` is the text after `error validating claims: `.
pub fn validate_bound_claims(
    glob_mode: bool,
    bound: &Map<String, Value>,
    claims: &Map<String, Value>,
) -> Result<(), String> {
    for (claim, expected) in bound {
        let actual =
            get_claim(claims, claim).ok_or_else(|| format!("claim {claim:?} is missing"))?;
        let actual_vals = normalize_list(&actual).ok_or_else(|| {
            format!(
                "received claim is not a string, bool, int or list: {}",
                go_value(&actual)
            )
        })?;
        let expected_vals = normalize_list(expected).ok_or_else(|| {
            format!(
                "bound claim is not a string, bool, int or list: {}",
                go_value(expected)
            )
        })?;
        let mut found = false;
        'outer: for exp in &expected_vals {
            for act in &actual_vals {
                let hit = if glob_mode {
                    let Value::String(pattern) = exp else {
                        return Err(format!(
                            "received claim is not a glob string: {}",
                            go_value(exp)
                        ));
                    };
                    matches!(act, Value::String(s) if glob(pattern, s))
                } else {
                    act == exp
                };
                if hit {
                    found = true;
                    break 'outer;
                }
            }
        }
        if !found {
            return Err(format!(
                "claim {claim:?} does not match any associated bound claim values"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn glob_only_star_is_special_and_crosses_separators() {
        for (p, s, want) in [
            ("*", "", true),
            ("repo:org/*", "repo:org/app:ref:refs/heads/main", true),
            (
                "repo:org/*:ref:refs/heads/main",
                "repo:org/app:ref:refs/heads/main",
                true,
            ),
            (
                "repo:org/*:ref:refs/heads/main",
                "repo:org/app:environment:prod",
                false,
            ),
            ("a?c", "abc", false),
            ("a?c", "a?c", true),
            ("*b*", "abc", true),
            ("ab*ba", "aba", false),
            ("exact", "exact", true),
        ] {
            assert_eq!(glob(p, s), want, "{p} {s}");
        }
    }

    #[test]
    fn bound_claims_any_of_any_typed_and_pointers() {
        let c = m(json!({"groups": ["a", "b"], "n": 42.7, "flag": "true",
                          "project": {"visibility": "private"}}));
        let ok = |b: Value, g: bool| validate_bound_claims(g, &m(b), &c);
        assert!(ok(json!({"groups": ["b", "z"]}), false).is_ok());
        assert!(ok(json!({"n": 42}), false).is_ok());
        assert!(ok(json!({"n": "42"}), false).is_err());
        assert!(ok(json!({"flag": true}), false).is_err());
        assert!(ok(json!({"/project/visibility": "priv*"}), true).is_ok());
        assert_eq!(
            ok(json!({"missing": "*"}), true).unwrap_err(),
            "claim \"missing\" is missing"
        );
        assert_eq!(
            ok(json!({"groups": "c"}), false).unwrap_err(),
            "claim \"groups\" does not match any associated bound claim values"
        );
        assert_eq!(
            ok(json!({"project": "x"}), false).unwrap_err(),
            "received claim is not a string, bool, int or list: map[visibility:private]"
        );
    }

    #[test]
    fn metadata_and_groups() {
        let c = m(json!({"a": "x", "n": 1, "g": ["p", ""], "bad": [1]}));
        let maps = BTreeMap::from([
            ("a".to_string(), "ka".to_string()),
            ("zz".into(), "kz".into()),
        ]);
        assert_eq!(
            extract_metadata(&c, &maps).unwrap(),
            BTreeMap::from([("ka".into(), "x".into())])
        );
        let maps = BTreeMap::from([("n".to_string(), "kn".to_string())]);
        assert_eq!(
            extract_metadata(&c, &maps).unwrap_err(),
            "error converting claim 'n' to string"
        );
        assert_eq!(groups(&c, "g").unwrap(), vec!["p"]);
        assert!(groups(&c, "bad").is_err());
        assert_eq!(
            groups(&c, "nope").unwrap_err(),
            "failed to fetch groups: \"nope\" claim not found in token"
        );
    }
}
