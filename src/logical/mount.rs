//! The mount entry: one row of the mount table, as the core persists it and a backend sees it
//! (`Request::mount`, `SystemView::mount_entry`). The table itself and routing live in the core
//! (`core/mounts.rs`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Storage prefix of all cubbyholes (one folder per token's cubbyhole id).
pub const CUBBYHOLE_PREFIX: &str = "sys/cubbyhole/";

/// Which table a mount belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountTableKind {
    /// `sys/mounts`.
    Secret,
    /// `sys/auth`.
    Auth,
}

/// Tunable settings of a mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MountConfig {
    /// Default lease/token TTL in seconds (0 = system default).
    #[serde(default)]
    pub default_lease_ttl: i64,
    /// Maximum lease/token TTL in seconds (0 = system max).
    #[serde(default)]
    pub max_lease_ttl: i64,
    /// Vault's no-cache flag; stored and reported.
    #[serde(default)]
    pub force_no_cache: bool,
    /// Auth mounts: `default-service`, `default-batch`, `service` or `batch`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Stored and reported for compatibility.
    #[serde(default)]
    pub listing_visibility: Option<String>,
    /// Keys whose values the audit devices write as they are in request data (at any depth,
    /// strings in lists under them included), as Vault's tune option does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_non_hmac_request_keys: Vec<String>,
    /// The same for response data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_non_hmac_response_keys: Vec<String>,
}

impl MountConfig {
    /// Adds the audit key lists that are set (Vault shows them only then).
    pub fn insert_audit_keys(&self, into: &mut Map<String, Value>) {
        for (k, v) in [
            (
                "audit_non_hmac_request_keys",
                &self.audit_non_hmac_request_keys,
            ),
            (
                "audit_non_hmac_response_keys",
                &self.audit_non_hmac_response_keys,
            ),
        ] {
            if !v.is_empty() {
                into.insert(k.into(), json!(v));
            }
        }
    }

    /// The effective `(default, max)` lease TTL in seconds of a mount tuned with this config:
    /// each tuned value, else the system one; the default is capped by the max.
    pub fn lease_ttls(&self, sys_default: i64, sys_max: i64) -> (i64, i64) {
        let max = if self.max_lease_ttl > 0 {
            self.max_lease_ttl
        } else {
            sys_max
        };
        let def = if self.default_lease_ttl > 0 {
            self.default_lease_ttl
        } else {
            sys_default
        };
        (def.min(max), max)
    }
}

/// One row of the mount table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountEntry {
    /// Which table.
    pub table: MountTableKind,
    /// Path relative to its table with a trailing `/` (`secret/`, `approle/`).
    pub path: String,
    /// Backend type (`kv`, `approle`, `token`, `system`, `cubbyhole`, `identity`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Free-form description.
    #[serde(default)]
    pub description: String,
    /// `<type>_<8 hex>` (`auth_<type>_<8 hex>` for auth mounts).
    pub accessor: String,
    /// Unique id; also names the storage prefix.
    pub uuid: String,
    /// Tunables.
    #[serde(default)]
    pub config: MountConfig,
    /// Engine options (`{"version":"2"}` for kv-v2).
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    /// Stored and reported.
    #[serde(default)]
    pub local: bool,
    /// Stored and reported.
    #[serde(default)]
    pub seal_wrap: bool,
    /// Stored and reported.
    #[serde(default)]
    pub external_entropy_access: bool,
}

impl MountEntry {
    /// The path relative to `/v1/` (`auth/approle/` for auth mounts).
    pub fn api_path(&self) -> String {
        match self.table {
            MountTableKind::Secret => self.path.clone(),
            MountTableKind::Auth => format!("auth/{}", self.path),
        }
    }

    /// The storage prefix of this mount's private view.
    pub fn storage_prefix(&self) -> String {
        match (self.table, self.kind.as_str()) {
            (_, "system") => "sys/".to_string(),
            (_, "cubbyhole") => CUBBYHOLE_PREFIX.to_string(),
            (MountTableKind::Auth, _) => format!("auth/{}/", self.uuid),
            (MountTableKind::Secret, _) => format!("logical/{}/", self.uuid),
        }
    }

    /// The JSON shape of `sys/mounts` and `sys/auth` entries.
    pub fn to_json(&self) -> Value {
        let mut config = Map::new();
        config.insert(
            "default_lease_ttl".into(),
            json!(self.config.default_lease_ttl),
        );
        config.insert("force_no_cache".into(), json!(self.config.force_no_cache));
        config.insert("max_lease_ttl".into(), json!(self.config.max_lease_ttl));
        self.config.insert_audit_keys(&mut config);
        if self.table == MountTableKind::Auth {
            let tt = self
                .config
                .token_type
                .clone()
                .unwrap_or_else(|| "default-service".into());
            config.insert("token_type".into(), json!(tt));
        }
        if let Some(v) = &self.config.listing_visibility {
            config.insert("listing_visibility".into(), json!(v));
        }
        // Headers Vault passes through to its own built-in mounts.
        let passthrough = match self.kind.as_str() {
            "system" => Some("Accept"),
            "identity" => Some("Authorization"),
            _ => None,
        };
        if let Some(h) = passthrough {
            config.insert("passthrough_request_headers".into(), json!([h]));
        }
        let mut entry = json!({
            "accessor": self.accessor,
            "config": config,
            "description": self.description,
            "external_entropy_access": self.external_entropy_access,
            "local": self.local,
            "options": self.options,
            "plugin_version": "",
            "running_plugin_version": format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION")),
            "running_sha256": "",
            "seal_wrap": self.seal_wrap,
            "type": self.kind,
            "uuid": self.uuid,
        });
        // Engines from the plugin catalog (not the core's own mounts) have a deprecation
        // status; every one Coffer ships is supported.
        if !matches!(
            self.kind.as_str(),
            "system" | "token" | "cubbyhole" | "identity"
        ) && let Some(o) = entry.as_object_mut()
        {
            o.insert("deprecation_status".into(), json!("supported"));
        }
        entry
    }
}
