//! The kv-v1 → kv-v2 upgrade (`vault kv enable-versioning`, i.e. tuning `options.version` to 2).
//!
//! Vault rewrites every v1 entry into version 1 of a v2 key when the mount is upgraded. Coffer
//! does the same lazily: the first v2 request after the tune (or after a restart) moves whatever
//! still sits under `kv1/`, under one lock, each key in its own atomic batch, so an interrupted
//! upgrade resumes on the next request. Keys that already have v2 metadata are left alone.

use serde_json::{Map, Value, json};
use std::sync::atomic::Ordering;

use super::types::KeyMetadata;
use super::v1::V1_PREFIX;
use super::{KvBackend, load_meta, metadata_key, version_key};
use crate::error::Result;
use crate::physical::WriteOp;
use crate::storage::Storage;

const UPGRADE_LOCK: &str = "kv1-upgrade";

impl KvBackend {
    /// Makes sure no kv-v1 entries remain before a v2 request is served.
    pub(super) async fn ensure_upgraded(&self, s: &Storage) -> Result<()> {
        if self.upgraded.load(Ordering::Acquire) {
            return Ok(());
        }
        let _guard = s.lock(UPGRADE_LOCK).await;
        if self.upgraded.load(Ordering::Acquire) {
            return Ok(());
        }
        let keys = s.list_recursive(V1_PREFIX).await?;
        if !keys.is_empty() {
            tracing::info!(kv.keys = keys.len(), "upgrading kv-v1 entries to kv-v2");
        }
        for full in keys {
            let key = full.strip_prefix(V1_PREFIX).unwrap_or(&full).to_string();
            let mut ops = vec![WriteOp::Delete(full.clone())];
            let data: Option<Map<String, Value>> = s.get_json(&full).await?;
            if let Some(data) = data
                && load_meta(s, &key).await?.is_none()
            {
                let now = self.now();
                let mut meta = KeyMetadata::default();
                meta.add_version(now, None, 0);
                // Vault marks upgraded keys with oldest_version 1.
                meta.oldest_version = 1;
                ops.push(WriteOp::Put(
                    version_key(&key, 1),
                    Storage::encode(&json!({ "data": data }))?,
                ));
                ops.push(WriteOp::Put(metadata_key(&key), Storage::encode(&meta)?));
            }
            s.batch(ops).await?;
        }
        self.upgraded.store(true, Ordering::Release);
        Ok(())
    }
}
