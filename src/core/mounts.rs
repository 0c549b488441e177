//! The mount table: which backend serves which path prefix.
//!
//! Secret engines (`sys/mounts`) and auth methods (`sys/auth`, routed under `auth/`) live in one
//! routing table, matched by longest prefix. The table is persisted at `core/mounts` and
//! `core/auth`; in memory it is an immutable snapshot swapped atomically (`ArcSwap`), so routing
//! takes no lock.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::logical::Backend;
use crate::storage::Storage;

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
            (_, "cubbyhole") => crate::mounts::CUBBYHOLE_PREFIX.to_string(),
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
        json!({
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
        })
    }
}

/// A mount with its live backend and storage view.
pub struct Mounted {
    /// The table row.
    pub entry: Arc<MountEntry>,
    /// The backend instance.
    pub backend: Arc<dyn Backend>,
    /// The backend's storage view.
    pub storage: Storage,
    /// `entry.api_path()`, precomputed for routing.
    pub api_path: String,
}

/// An immutable snapshot of all mounts, sorted longest path first.
#[derive(Default)]
pub struct MountTable {
    mounts: Vec<Arc<Mounted>>,
}

impl MountTable {
    /// Builds a snapshot.
    pub fn new(mut mounts: Vec<Arc<Mounted>>) -> Self {
        mounts.sort_by(|a, b| {
            b.api_path
                .len()
                .cmp(&a.api_path.len())
                .then(a.api_path.cmp(&b.api_path))
        });
        MountTable { mounts }
    }

    /// The mount serving `path` (relative to `/v1/`), by longest prefix. `secret` matches `secret/`.
    pub fn route(&self, path: &str) -> Option<&Arc<Mounted>> {
        self.mounts.iter().find(|m| {
            path.starts_with(m.api_path.as_str()) || m.api_path.strip_suffix('/') == Some(path)
        })
    }

    /// The mount at exactly `api_path` (with trailing `/`).
    pub fn get(&self, api_path: &str) -> Option<&Arc<Mounted>> {
        self.mounts.iter().find(|m| m.api_path == api_path)
    }

    /// All mounts.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Mounted>> {
        self.mounts.iter()
    }

    /// A copy of the rows, for persistence and modification.
    pub fn entries(&self) -> Vec<Arc<Mounted>> {
        self.mounts.clone()
    }
}

/// A random mount accessor `<prefix>_<8 hex>`.
pub fn new_accessor(prefix: &str) -> String {
    let n: u32 = rand::random();
    format!("{prefix}_{n:08x}")
}
