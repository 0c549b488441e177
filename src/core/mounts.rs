//! The mount table: which backend serves which path prefix.
//!
//! Secret engines (`sys/mounts`) and auth methods (`sys/auth`, routed under `auth/`) live in one
//! routing table, matched by longest prefix. The table is persisted at `core/mounts` and
//! `core/auth`; in memory it is an immutable snapshot swapped atomically (`ArcSwap`), so routing
//! takes no lock.

use std::sync::Arc;

use crate::logical::Backend;
use crate::storage::Storage;

pub use crate::logical::mount::{MountConfig, MountEntry, MountTableKind};

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
    /// `vault.route.*` timers of this mount, registered on first use.
    pub route_timers: super::RouteTimers,
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
