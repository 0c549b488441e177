//! Vault's audit entry format: `request` and `response` JSON lines, empty fields omitted,
//! client tokens, accessors and every string leaf of request/response data HMAC'd.

use regex::Regex;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;
use std::time::SystemTime;

use super::Device;
use crate::clock::{from_unix_nanos, rfc3339_nanos};
use crate::core::observer::{RequestRecord, ResponseRecord};
use crate::logical::Operation;
use crate::token::TokenEntry;

/// Go's `time.Parse(time.RFC3339, s)` succeeds: such strings are not hashed.
static RFC3339: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$").ok()
});

fn is_timestamp(s: &str) -> bool {
    RFC3339.as_ref().is_some_and(|r| r.is_match(s))
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Read => "read",
        Operation::List => "list",
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Delete => "delete",
        Operation::Patch => "patch",
        Operation::Help => "help",
    }
}

/// The version every built-in mount reports (`running_plugin_version` in `sys/mounts`).
static RUNNING_VERSION: LazyLock<String> =
    LazyLock::new(|| format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION")));

/// Vault's client id of a token: its entity, or for a token without one the base64 SHA-256 of
/// its sorted policies (joined by U+007F) and its namespace id (after U+0000).
fn client_id(entity_id: &str, policies: &[String]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    if !entity_id.is_empty() {
        return entity_id.to_string();
    }
    let mut policies = policies.to_vec();
    policies.sort();
    let input = format!("{}\u{0}root", policies.join("\u{7f}"));
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(input.as_bytes()))
}

/// hashicorp/go-multierror's text, which Vault writes as an entry's `error`.
fn multierror(errors: &[String]) -> String {
    match errors {
        [] => String::new(),
        // Already in multierror form (Coffer's permission denied is).
        [one] if one.contains(" occurred:\n\t* ") => one.clone(),
        [one] => format!("1 error occurred:\n\t* {one}\n\n"),
        many => {
            let points: Vec<String> = many.iter().map(|e| format!("* {e}")).collect();
            format!(
                "{} errors occurred:\n\t{}\n\n",
                many.len(),
                points.join("\n\t")
            )
        }
    }
}

/// Inserts `v` unless it is empty (Go's `omitempty`).
fn put(m: &mut Map<String, Value>, k: &str, v: Value) {
    let empty = match &v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if !empty {
        m.insert(k.to_string(), v);
    }
}

impl Device {
    fn hash_accessor(&self, accessor: &str) -> String {
        if self.hmac_accessor && !self.log_raw {
            self.hash(accessor)
        } else {
            accessor.to_string()
        }
    }

    fn hash_token(&self, token: &str) -> String {
        if self.log_raw {
            token.to_string()
        } else {
            self.hash(token)
        }
    }

    /// Every string leaf hashed (timestamps excepted), unless `log_raw`.
    fn hash_data(&self, v: &Value) -> Value {
        if self.log_raw {
            return v.clone();
        }
        match v {
            Value::String(s) if !is_timestamp(s) => Value::String(self.hash(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.hash_data(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), self.hash_data(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The `auth` object for a token entry (`client_token`/`accessor` given in clear).
    fn auth_object(
        &self,
        t: &TokenEntry,
        token: Option<&str>,
        accessor: Option<&str>,
        issue_time: bool,
    ) -> Value {
        let mut m = Map::new();
        put(
            &mut m,
            "client_token",
            json!(token.map(|x| self.hash_token(x))),
        );
        put(
            &mut m,
            "accessor",
            json!(accessor.map(|x| self.hash_accessor(x))),
        );
        put(&mut m, "display_name", json!(t.display_name));
        put(&mut m, "policies", json!(t.policies));
        put(&mut m, "token_policies", json!(t.policies));
        put(&mut m, "metadata", json!(t.meta));
        put(&mut m, "remaining_uses", json!(t.num_uses));
        put(&mut m, "entity_id", json!(t.entity_id));
        put(&mut m, "token_type", json!(t.token_type));
        put(&mut m, "token_ttl", json!(t.ttl));
        if issue_time && t.creation_nanos != 0 {
            let secs = t.creation_nanos - t.creation_nanos.rem_euclid(1_000_000_000);
            put(
                &mut m,
                "token_issue_time",
                json!(rfc3339_nanos(from_unix_nanos(secs))),
            );
        }
        Value::Object(m)
    }

    fn top_auth(&self, r: &RequestRecord) -> Value {
        let allowed = !r.errors.iter().any(|e| e.contains("permission denied"));
        match &r.token {
            Some(t) => {
                let mut a = self.auth_object(
                    t,
                    r.client_token.as_ref().map(|s| s.expose()),
                    r.client_token_accessor.as_ref().map(|s| s.expose()),
                    true,
                );
                if let Some(m) = a.as_object_mut() {
                    m.insert("policy_results".into(), json!({"allowed": allowed}));
                }
                a
            }
            None => json!({"policy_results": {"allowed": allowed}, "token_type": "default"}),
        }
    }

    /// The mount fields; `version_key` is `mount_running_version` in a request object and
    /// `mount_running_plugin_version` in a response object (as in Vault).
    fn mount_fields(
        m: &mut Map<String, Value>,
        r: &RequestRecord,
        version_key: &str,
        accessor: bool,
    ) {
        if let Some(mount) = &r.mount {
            put(m, "mount_point", json!(mount.path));
            put(m, "mount_type", json!(mount.kind));
            if accessor {
                put(m, "mount_accessor", json!(mount.accessor));
            }
            put(m, version_key, json!(RUNNING_VERSION.as_str()));
            let class = if mount.path.starts_with("auth/") {
                "auth"
            } else {
                "secret"
            };
            put(m, "mount_class", json!(class));
        }
    }

    /// `response`: the object inside a response entry (the request's mount accessor is known
    /// by then); a request entry carries the mount accessor only for a create or update, whose
    /// existence check resolved it (as OpenBao does).
    fn request_object(&self, r: &RequestRecord, response: bool) -> Value {
        let mut m = Map::new();
        put(&mut m, "id", json!(r.request_id));
        if let Some(t) = &r.token {
            put(
                &mut m,
                "client_id",
                json!(client_id(&t.entity_id, &t.policies)),
            );
        }
        put(&mut m, "operation", json!(op_name(r.operation)));
        let accessor = matches!(r.operation, Operation::Create | Operation::Update)
            || (response && r.errors.is_empty());
        Self::mount_fields(&mut m, r, "mount_running_version", accessor);
        put(
            &mut m,
            "client_token",
            json!(r.client_token.as_ref().map(|s| self.hash_token(s.expose()))),
        );
        put(
            &mut m,
            "client_token_accessor",
            json!(
                r.client_token_accessor
                    .as_ref()
                    .map(|s| self.hash_accessor(s.expose()))
            ),
        );
        m.insert("namespace".into(), json!({"id": "root"}));
        put(&mut m, "path", json!(r.path));
        put(
            &mut m,
            "data",
            self.hash_data(&Value::Object(r.data.clone())),
        );
        put(
            &mut m,
            "remote_address",
            json!(r.client_addr.map(|a| a.to_string())),
        );
        put(&mut m, "remote_port", json!(r.client_port));
        put(&mut m, "wrap_ttl", json!(r.wrap_ttl));
        Value::Object(m)
    }

    /// The `request` entry.
    pub(super) fn request_entry(&self, r: &RequestRecord) -> Value {
        let mut m = Map::new();
        m.insert("time".into(), json!(rfc3339_nanos(SystemTime::now())));
        m.insert("type".into(), json!("request"));
        m.insert("auth".into(), self.top_auth(r));
        m.insert("request".into(), self.request_object(r, false));
        put(&mut m, "error", json!(multierror(&r.errors)));
        Value::Object(m)
    }

    /// The `response` entry.
    pub(super) fn response_entry(&self, r: &RequestRecord, resp: &ResponseRecord) -> Value {
        let mut m = Map::new();
        m.insert("time".into(), json!(rfc3339_nanos(SystemTime::now())));
        m.insert("type".into(), json!("response"));
        m.insert("auth".into(), self.top_auth(r));
        m.insert("request".into(), self.request_object(r, true));

        let mut out = Map::new();
        let mut login_auth = None;
        Self::mount_fields(
            &mut out,
            r,
            "mount_running_plugin_version",
            r.errors.is_empty(),
        );
        if let Some(block) = &resp.auth {
            let field = |k: &str| block.get(k).and_then(Value::as_str);
            let a = match &resp.issued_token {
                Some(t) => self.auth_object(t, field("client_token"), field("accessor"), false),
                None => {
                    let mut a = Map::new();
                    put(
                        &mut a,
                        "client_token",
                        json!(field("client_token").map(|x| self.hash_token(x))),
                    );
                    put(
                        &mut a,
                        "accessor",
                        json!(field("accessor").map(|x| self.hash_accessor(x))),
                    );
                    for k in [
                        "policies",
                        "token_policies",
                        "metadata",
                        "entity_id",
                        "token_type",
                    ] {
                        put(&mut a, k, block.get(k).cloned().unwrap_or(Value::Null));
                    }
                    put(
                        &mut a,
                        "token_ttl",
                        block.get("lease_duration").cloned().unwrap_or(Value::Null),
                    );
                    Value::Object(a)
                }
            };
            if r.token.is_none() && resp.issued_token.is_some() {
                // A login's response entry shows the issued token as its `auth` (as Vault).
                login_auth = Some(a.clone());
            }
            put(&mut out, "auth", a);
        }
        if let Some(data) = &resp.data {
            let mut data = data.clone();
            if self.elide_list_responses && r.operation == Operation::List {
                if let Some(keys) = data.get("keys").and_then(Value::as_array) {
                    let n = keys.len();
                    data.insert("keys".into(), json!(n));
                }
                if let Some(info) = data.get("key_info").and_then(Value::as_object) {
                    let n = info.len();
                    data.insert("key_info".into(), json!(n));
                }
            }
            put(&mut out, "data", self.hash_data(&Value::Object(data)));
        }
        if let Some(w) = &resp.wrap_info {
            let mut wi = Map::new();
            let s = |k: &str| w.get(k).and_then(Value::as_str);
            put(&mut wi, "ttl", w.get("ttl").cloned().unwrap_or(Value::Null));
            put(
                &mut wi,
                "token",
                json!(s("token").map(|x| self.hash_token(x))),
            );
            put(
                &mut wi,
                "accessor",
                json!(s("accessor").map(|x| self.hash_accessor(x))),
            );
            put(&mut wi, "creation_time", json!(s("creation_time")));
            put(&mut wi, "creation_path", json!(s("creation_path")));
            put(
                &mut wi,
                "wrapped_accessor",
                json!(s("wrapped_accessor").map(|x| self.hash_accessor(x))),
            );
            put(&mut out, "wrap_info", Value::Object(wi));
        }
        put(&mut m, "response", Value::Object(out));
        if let Some(a) = login_auth {
            m.insert("auth".into(), a);
        }
        put(&mut m, "error", json!(multierror(&resp.errors)));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multierror_matches_go() {
        assert_eq!(
            multierror(&["permission denied".into()]),
            "1 error occurred:\n\t* permission denied\n\n"
        );
        assert_eq!(
            multierror(&["a".into(), "b".into()]),
            "2 errors occurred:\n\t* a\n\t* b\n\n"
        );
    }

    #[test]
    fn timestamps_are_recognised() {
        assert!(is_timestamp("2026-11-28T10:15:30.1Z"));
        assert!(is_timestamp("2026-11-28T10:15:30+02:00"));
        assert!(!is_timestamp("hunter2"));
    }

    #[test]
    fn client_id_of_a_token_without_entity_is_openbaos() {
        // Observed on OpenBao 2.7.2 for the dev root token.
        assert_eq!(
            client_id("", &["root".into()]),
            "0DHqvq2D77kL2/JTPSZkTMJbkFVmUu0TzMi0jiXcFy8="
        );
        assert_eq!(client_id("e-1", &["root".into()]), "e-1");
    }
}
