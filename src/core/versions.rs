//! Which Coffer versions have served this storage, and since when (`sys/version-history`,
//! `vault version-history`): each unseal records the running version once, at
//! `core/versions/<version>` (through the barrier), as Vault does.

use serde::{Deserialize, Serialize};

use super::Core;
use crate::error::Result;

/// Storage prefix of the version entries.
const PREFIX: &str = "core/versions/";

/// One version's entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionEntry {
    /// `0.1.0`.
    pub version: String,
    /// When a node of this version first unsealed this storage (Unix seconds).
    pub installed: i64,
}

impl Core {
    /// Records the running version if this storage has not seen it yet.
    pub(crate) async fn record_version(&self) -> Result<()> {
        let storage = self.storage("");
        let version = env!("CARGO_PKG_VERSION");
        let key = format!("{PREFIX}{version}");
        if storage.get(&key).await?.is_some() {
            return Ok(());
        }
        let installed = crate::clock::unix_secs(self.clock.now());
        let entry = VersionEntry {
            version: version.to_owned(),
            installed,
        };
        storage.put_json(&key, &entry).await
    }

    /// Every recorded version, oldest first.
    pub async fn version_history(&self) -> Result<Vec<VersionEntry>> {
        let storage = self.storage("");
        let mut out = Vec::new();
        for key in storage.list(PREFIX).await? {
            if let Some(e) = storage
                .get_json::<VersionEntry>(&format!("{PREFIX}{key}"))
                .await?
            {
                out.push(e);
            }
        }
        out.sort_by(|a, b| (a.installed, &a.version).cmp(&(b.installed, &b.version)));
        Ok(out)
    }
}
