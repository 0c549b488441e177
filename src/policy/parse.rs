//! Turning policy text into a [`Policy`] with Vault's rules (contract §4.1): only `name` and
//! `path` at the top level, a fixed set of keys inside each path block, the legacy `policy`
//! shorthand, `deny` overriding everything, path normalisation (leading `/`, trailing `*`, `+`
//! segments) and wrapping TTLs given as seconds or Go-style durations. Error texts follow Vault's;
//! the HTTP layer prefixes them with `failed to parse policy: `.

use serde_json::Value;

use super::{Capabilities, ParameterMap, PathKind, PathRule, Policy};
use crate::hcl::{Item, Node, parse_document};
use crate::logical::duration::parse_duration_nanos;

/// Keys Vault accepts inside a `path` block; anything else is reported as an invalid key.
const PATH_KEYS: &[&str] = &[
    "comment",
    "policy",
    "capabilities",
    "allowed_parameters",
    "denied_parameters",
    "required_parameters",
    "min_wrapping_ttl",
    "max_wrapping_ttl",
    "mfa_methods",
    "control_group",
    "subscribe_event_types",
];

/// Parse HCL or JSON policy text. Err(msg) where msg is the text Vault puts after
/// "failed to parse policy: ".
pub fn parse_policy(name: &str, text: &str) -> Result<Policy, String> {
    let items = parse_document(text)?;
    check_keys(&items, &["name", "path"])?;
    for item in items.iter().filter(|i| i.name() == "name") {
        if !matches!(item.val, Node::Literal(_)) {
            return Err(format!(
                "root.name: unknown type for string {}",
                item.val.type_name()
            ));
        }
    }
    let rules = items
        .iter()
        .filter(|i| i.name() == "path")
        .map(parse_path_item)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Policy {
        name: name.to_owned(),
        raw: text.to_owned(),
        rules,
    })
}

/// Vault's `CheckHCLKeys`: one "invalid key" entry per unknown key, joined as a multi-error.
fn check_keys(items: &[Item], valid: &[&str]) -> Result<(), String> {
    let errors: Vec<String> = items
        .iter()
        .filter(|i| !valid.contains(&i.name()))
        .map(|i| format!("invalid key {:?} on line {}", i.name(), i.line))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(multi_error(&errors))
    }
}

/// The layout of Go's `multierror` list format.
fn multi_error(errors: &[String]) -> String {
    if let [one] = errors {
        return format!("1 error occurred:\n\t* {one}\n\n");
    }
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    format!(
        "{} errors occurred:\n\t{}\n\n",
        errors.len(),
        points.join("\n\t")
    )
}

/// The raw fields of one path block before interpretation. Repeated keys behave as in Vault's
/// decoder: lists append, maps merge, scalars keep the last value.
#[derive(Default)]
struct RawPath {
    policy: Option<String>,
    capabilities: Vec<String>,
    allowed: Option<ParameterMap>,
    denied: Option<ParameterMap>,
    required: Vec<String>,
    min_ttl: Option<Value>,
    max_ttl: Option<Value>,
}

fn parse_path_item(item: &Item) -> Result<PathRule, String> {
    let key = item
        .keys
        .get(1)
        .cloned()
        .unwrap_or_else(|| "path".to_owned());
    if !templating_balanced(&key) {
        return Err(
            "failed to validate policy templating: unbalanced templating characters".to_owned(),
        );
    }
    let prefixed = |e: String| format!("path {key:?}: {e}");
    let Node::Object(body) = &item.val else {
        return Err(prefixed(format!(
            "cannot check HCL keys of type {}",
            item.val.type_name()
        )));
    };
    let invalid: Vec<String> = body
        .iter()
        .filter(|i| !PATH_KEYS.contains(&i.name()))
        .map(|i| prefixed(format!("invalid key {:?} on line {}", i.name(), i.line)))
        .collect();
    if !invalid.is_empty() {
        return Err(multi_error(&invalid));
    }
    let raw = decode_body(body).map_err(prefixed)?;

    let mut path = key.strip_prefix('/').unwrap_or(&key).to_owned();
    if path.contains("+*") {
        return Err(format!(
            "path {path:?}: invalid use of wildcards ('+*' is forbidden)"
        ));
    }
    let kind = if path == "+" || path.contains("/+") || path.starts_with("+/") {
        PathKind::SegmentWildcard
    } else if let Some(stripped) = path.strip_suffix('*') {
        path = stripped.to_owned();
        PathKind::Prefix
    } else {
        PathKind::Exact
    };
    let mut rule = PathRule::new(path, kind);
    rule.templated = rule.path.contains("{{");

    let mut caps = raw.capabilities;
    if let Some(shorthand) = raw.policy.as_deref().filter(|p| !p.is_empty()) {
        let extra: &[&str] = match shorthand {
            "deny" => {
                caps.clear();
                &["deny"]
            }
            "read" => &["read", "list"],
            "write" => &["create", "read", "update", "delete", "list"],
            "sudo" => &["create", "read", "update", "delete", "list", "sudo"],
            other => return Err(format!("path {key:?}: invalid policy {other:?}")),
        };
        caps.extend(extra.iter().map(|s| (*s).to_owned()));
    }
    for cap in &caps {
        match Capabilities::from_keyword(cap) {
            Some(Capabilities::DENY) => {
                // A deny stops interpretation: nothing else of the block is read or checked.
                rule.capabilities = Capabilities::DENY;
                return Ok(rule);
            }
            Some(bit) => rule.capabilities |= bit,
            None => return Err(format!("path {key:?}: invalid capability {cap:?}")),
        }
    }

    rule.allowed_parameters = lower_keys(raw.allowed.unwrap_or_default());
    rule.denied_parameters = lower_keys(raw.denied.unwrap_or_default());
    let min = wrapping_ttl("min_wrapping_ttl", raw.min_ttl.as_ref())?;
    let max = wrapping_ttl("max_wrapping_ttl", raw.max_ttl.as_ref())?;
    if min != 0 && max != 0 && max < min {
        return Err("max_wrapping_ttl cannot be less than min_wrapping_ttl".to_owned());
    }
    rule.min_wrapping_ttl = whole_seconds(min);
    rule.max_wrapping_ttl = whole_seconds(max);
    rule.required_parameters = raw.required;
    Ok(rule)
}

/// Every `{{` must be closed by `}}` before the next `{{`, and no `}}` may appear unopened.
fn templating_balanced(path: &str) -> bool {
    let mut open = false;
    let mut rest = path;
    while let Some(i) = rest.find(['{', '}']) {
        let tail = rest.get(i..).unwrap_or_default();
        if let Some(after) = tail.strip_prefix("{{") {
            if open {
                return false;
            }
            open = true;
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            if !open {
                return false;
            }
            open = false;
            rest = after;
        } else {
            rest = tail.get(1..).unwrap_or_default();
        }
    }
    !open
}

fn lower_keys(map: ParameterMap) -> ParameterMap {
    map.into_iter()
        .map(|(k, v)| (k.to_lowercase(), v))
        .collect()
}

fn decode_body(body: &[Item]) -> Result<RawPath, String> {
    let mut raw = RawPath::default();
    for item in body {
        let field = item.name();
        let val = &item.val;
        match field {
            "policy" => raw.policy = Some(decode_string(field, val)?),
            "capabilities" => raw.capabilities.extend(decode_strings(field, val)?),
            "required_parameters" => raw.required.extend(decode_strings(field, val)?),
            "allowed_parameters" => merge_map(&mut raw.allowed, decode_map(field, val)?),
            "denied_parameters" => merge_map(&mut raw.denied, decode_map(field, val)?),
            "min_wrapping_ttl" => raw.min_ttl = Some(val.to_json()),
            "max_wrapping_ttl" => raw.max_ttl = Some(val.to_json()),
            "mfa_methods" | "subscribe_event_types" => {
                decode_strings(field, val)?;
            }
            "control_group" if !matches!(val, Node::Object(_)) => {
                return Err(format!(
                    "control_group: cannot check HCL keys of type {}",
                    val.type_name()
                ));
            }
            // `comment` and the Enterprise-only `control_group` are otherwise ignored.
            _ => {}
        }
    }
    Ok(raw)
}

fn merge_map(target: &mut Option<ParameterMap>, more: ParameterMap) {
    target.get_or_insert_with(ParameterMap::new).extend(more);
}

fn literal(field: &str, val: &Node) -> Result<Value, String> {
    match val {
        Node::Literal(v) => Ok(v.clone()),
        other => Err(format!(
            "{field}: unknown type for literal {}",
            other.type_name()
        )),
    }
}

fn decode_string(field: &str, val: &Node) -> Result<String, String> {
    match literal(field, val)? {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        other => Ok(other.to_string()),
    }
}

fn decode_strings(field: &str, val: &Node) -> Result<Vec<String>, String> {
    let Node::List(elems) = val else {
        return Err(format!("{field}: unknown slice type: {}", val.type_name()));
    };
    elems.iter().map(|e| decode_string(field, e)).collect()
}

fn decode_map(field: &str, val: &Node) -> Result<ParameterMap, String> {
    let Node::Object(items) = val else {
        return Err(format!(
            "{field}: not an object type for map ({})",
            val.type_name()
        ));
    };
    let mut out = ParameterMap::new();
    for item in items {
        let values = match &item.val {
            Node::List(elems) => elems.iter().map(Node::to_json).collect(),
            // The HCL decoder reads a lone object as a one-element list.
            obj @ Node::Object(_) => vec![obj.to_json()],
            other => {
                return Err(format!(
                    "{field}: unknown slice type: {}",
                    other.type_name()
                ));
            }
        };
        out.insert(item.name().to_owned(), values);
    }
    Ok(out)
}

/// Rounds a positive nanosecond count up to whole seconds; zero or negative means "not set".
fn whole_seconds(nanos: i128) -> Option<u64> {
    (nanos > 0).then(|| u64::try_from((nanos + 999_999_999) / 1_000_000_000).unwrap_or(u64::MAX))
}

/// Vault's `ParseDurationSecond`: numbers are seconds; strings are an integer number of seconds,
/// `<n>d` days, or a Go duration such as `1h30m`. Returns nanoseconds.
fn wrapping_ttl(field: &str, val: Option<&Value>) -> Result<i128, String> {
    let err = |e: String| format!("error parsing {field}: {e}");
    match val {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => Ok(match n.as_i64() {
            Some(i) => i128::from(i) * 1_000_000_000,
            None => (n.as_f64().unwrap_or(0.0) * 1e9) as i128,
        }),
        Some(Value::String(s)) => parse_duration_nanos(s).map_err(err),
        Some(_) => Err(err("could not parse duration from input".to_owned())),
    }
}
