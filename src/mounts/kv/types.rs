//! Stored shapes of the kv-v2 engine and the pure rules over them: adding a version (with the
//! `max_versions` sliding window), when a version counts as deleted, and how `delete_version_after`
//! turns into a deletion time.
//!
//! Times are Unix nanoseconds (`i64`, good until 2262) and are rendered with Go's RFC 3339 nano
//! format only at the edge, so every comparison uses the injectable clock's value.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

use crate::clock::{from_unix_nanos, rfc3339_nanos};

/// Versions kept per key when neither the key nor the mount config says otherwise (Vault: 10).
pub const DEFAULT_MAX_VERSIONS: u32 = 10;

/// `delete_version_after` value (seconds) that disables the feature mount-wide (Vault's `-1s`).
pub const DVA_DISABLED: i64 = -1;

/// The mount-wide settings written at `<mount>/config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KvConfig {
    /// Versions kept per key (0 = the default of 10).
    #[serde(default)]
    pub max_versions: u32,
    /// Every write must carry `options.cas`.
    #[serde(default)]
    pub cas_required: bool,
    /// Seconds after which new versions are deleted; 0 = unset, -1 = disabled on every key.
    #[serde(default)]
    pub delete_version_after: i64,
}

// Stored metadata leaves default-valued fields out (every field reads back with
// `#[serde(default)]`): with 100k keys in memory that is ~140 bytes a key.
fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

/// The metadata of one version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionMeta {
    /// When the version was written.
    pub created_time: i64,
    /// When it was (or will be) soft-deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_time: Option<i64>,
    /// Its data is gone for good.
    #[serde(default, skip_serializing_if = "is_false")]
    pub destroyed: bool,
}

impl VersionMeta {
    /// True when the version is soft-deleted at `now`: a deletion takes effect at its own
    /// instant (Vault compares with `Before(now)`, which only differs when no time has passed).
    pub fn is_deleted(&self, now: i64) -> bool {
        self.deletion_time.is_some_and(|t| t <= now)
    }

    /// True when reads must answer 404 with the metadata.
    pub fn is_gone(&self, now: i64) -> bool {
        self.destroyed || self.is_deleted(now)
    }
}

/// Everything known about one key, stored at `metadata/<key>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyMetadata {
    /// Versions still tracked, by number.
    #[serde(default)]
    pub versions: BTreeMap<u64, VersionMeta>,
    /// The newest version number (0 before the first write).
    #[serde(default)]
    pub current_version: u64,
    /// Vault's sliding-window marker: 0 until the first pruning, then the oldest kept version.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub oldest_version: u64,
    /// When the key (its metadata) was created.
    #[serde(default)]
    pub created_time: Option<i64>,
    /// When a version was last added or the metadata last written.
    #[serde(default)]
    pub updated_time: Option<i64>,
    /// Versions kept for this key (0 = the mount's setting).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_versions: u32,
    /// Writes to this key must carry `options.cas`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cas_required: bool,
    /// Seconds after which new versions of this key are deleted (0 = unset).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delete_version_after: i64,
    /// User-supplied string pairs (`None` when empty, which Vault renders as `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<BTreeMap<String, String>>,
}

impl KeyMetadata {
    /// Empty metadata created at `now` (metadata written before any data).
    pub fn new_at(now: i64) -> Self {
        KeyMetadata {
            created_time: Some(now),
            updated_time: Some(now),
            ..Default::default()
        }
    }

    /// Adds a new current version and slides the `max_versions` window the way Vault does.
    /// Returns the numbers of the versions that fell out of the window (their data must go).
    pub fn add_version(
        &mut self,
        created: i64,
        deletion: Option<i64>,
        config_max: u32,
    ) -> Vec<u64> {
        self.current_version += 1;
        self.versions.insert(
            self.current_version,
            VersionMeta {
                created_time: created,
                deletion_time: deletion,
                destroyed: false,
            },
        );
        self.updated_time = Some(created);
        if self.created_time.is_none() {
            self.created_time = Some(created);
        }
        let max = match self.max_versions.max(config_max) {
            0 => DEFAULT_MAX_VERSIONS,
            m => m,
        };
        let max = u64::from(max);
        if self.current_version - self.oldest_version < max {
            return Vec::new();
        }
        let last_dropped = self.current_version - max;
        let dropped: Vec<u64> = self
            .versions
            .range(..=last_dropped)
            .map(|(n, _)| *n)
            .collect();
        for n in &dropped {
            self.versions.remove(n);
        }
        self.oldest_version = last_dropped + 1;
        dropped
    }

    /// The `data` of a write/patch response, or the `metadata` of a read, for version `n`.
    pub fn version_json(&self, n: u64, vm: &VersionMeta) -> Value {
        json!({
            "created_time": fmt_time(vm.created_time),
            "custom_metadata": self.custom_metadata,
            "deletion_time": vm.deletion_time.map(fmt_time).unwrap_or_default(),
            "destroyed": vm.destroyed,
            "version": n,
        })
    }
}

/// The deletion time of a version created at `created`: creation plus the smaller non-zero of the
/// mount's and the key's `delete_version_after`, unless the mount disabled the feature.
pub fn deletion_time(created: i64, config_dva: i64, key_dva: i64) -> Option<i64> {
    if config_dva == DVA_DISABLED {
        return None;
    }
    let after = match (config_dva, key_dva) {
        (0, 0) => return None,
        (0, k) => k,
        (c, 0) => c,
        (c, k) => c.min(k),
    };
    Some(created.saturating_add(after.saturating_mul(1_000_000_000)))
}

/// Go's RFC 3339 nano rendering of a stored time.
pub fn fmt_time(nanos: i64) -> String {
    rfc3339_nanos(from_unix_nanos(i128::from(nanos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides_like_vault() {
        let mut m = KeyMetadata::default();
        for i in 1..=9 {
            assert!(m.add_version(i, None, 0).is_empty());
        }
        // Vault keeps oldest_version at 0 until the window first moves.
        assert_eq!(m.oldest_version, 0);
        assert!(m.add_version(10, None, 0).is_empty());
        assert_eq!(m.oldest_version, 1);
        assert_eq!(m.add_version(11, None, 0), vec![1]);
        assert_eq!(m.oldest_version, 2);
        assert_eq!(m.versions.len(), 10);
        // Lowering max_versions drops several at once.
        m.max_versions = 3;
        assert_eq!(m.add_version(12, None, 0), (2..=9).collect::<Vec<_>>());
        assert_eq!(m.versions.keys().copied().collect::<Vec<_>>(), [10, 11, 12]);
        assert_eq!(m.oldest_version, 10);
        // The larger of key and mount settings wins.
        let mut m = KeyMetadata {
            max_versions: 2,
            ..Default::default()
        };
        for i in 1..=4 {
            m.add_version(i, None, 5);
        }
        assert_eq!(m.versions.len(), 4);
    }

    #[test]
    fn deletion_times() {
        assert_eq!(deletion_time(0, 0, 0), None);
        assert_eq!(deletion_time(0, 10, 0), Some(10_000_000_000));
        assert_eq!(deletion_time(0, 0, 5), Some(5_000_000_000));
        assert_eq!(deletion_time(0, 10, 5), Some(5_000_000_000));
        assert_eq!(deletion_time(0, 3, 5), Some(3_000_000_000));
        assert_eq!(deletion_time(0, DVA_DISABLED, 5), None);
        let vm = VersionMeta {
            created_time: 0,
            deletion_time: Some(10),
            destroyed: false,
        };
        assert!(!vm.is_deleted(9));
        assert!(vm.is_deleted(10));
        assert!(vm.is_deleted(11));
    }
}
