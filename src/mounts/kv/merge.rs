//! Pure JSON transformations used by kv-v2: RFC 7396 JSON merge patch (`PATCH data/<p>`) and the
//! value stripping behind `subkeys/<p>`.
//!
//! Both recurse over the request's JSON, whose nesting the HTTP decoder already bounds (serde_json
//! refuses documents nested deeper than 128 levels), so recursion depth is bounded by input that
//! was accepted at all.

use serde_json::{Map, Value};

/// Applies `patch` to `target` per RFC 7396: objects merge key by key, `null` removes a key, and
/// anything else replaces the target value.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch_map {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Replaces every leaf (non-object values and empty objects) with `null`, descending at most
/// `max_depth` levels (0 = no limit); objects at the depth limit become `null` too.
pub fn remove_values(input: &mut Map<String, Value>, max_depth: i64) {
    walk(input, 1, max_depth);
}

fn walk(m: &mut Map<String, Value>, depth: i64, max_depth: i64) {
    for v in m.values_mut() {
        match v {
            Value::Object(inner) if !inner.is_empty() && (max_depth == 0 || depth < max_depth) => {
                walk(inner, depth + 1, max_depth);
            }
            _ => *v = Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7396_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut target, patch, want) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want, "patch {patch}");
        }
    }

    #[test]
    fn subkeys_strip_values() {
        let src = json!({"a":1,"b":{"c":2,"d":[1,2],"e":{"f":true}},"g":{}});
        let mut m = src.as_object().cloned().unwrap();
        remove_values(&mut m, 0);
        assert_eq!(
            Value::Object(m),
            json!({"a":null,"b":{"c":null,"d":null,"e":{"f":null}},"g":null})
        );
        let mut m = src.as_object().cloned().unwrap();
        remove_values(&mut m, 1);
        assert_eq!(Value::Object(m), json!({"a":null,"b":null,"g":null}));
        let mut m = src.as_object().cloned().unwrap();
        remove_values(&mut m, 2);
        assert_eq!(
            Value::Object(m),
            json!({"a":null,"b":{"c":null,"d":null,"e":null},"g":null})
        );
    }
}
