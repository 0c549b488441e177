//! kv-v2 `delete/<path>`, `undelete/<path>` and `destroy/<path>`: soft-delete, restore or
//! permanently remove the listed versions of a key.
//!
//! `versions` arrives as ints, numeric strings or a comma string. Unknown, negative or (for
//! delete/undelete) destroyed versions are skipped silently, and a missing key is a no-op, as in
//! Vault; an empty list is a 400 before anything is touched.

use super::input::{self, comma_ints};
use super::types::deletion_time;
use super::{KvBackend, P, load_config, load_meta, metadata_key, version_key};
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, Request, Response};
use crate::physical::WriteOp;
use crate::storage::Storage;

pub(super) fn paths() -> Vec<P> {
    let spec = |pattern: &str, what: &'static str| {
        P::new(pattern)
            .field("path", T::Str, "Location of the secret.")
            .field("versions", T::Raw, what)
    };
    vec![
        spec(r"delete/(?P<path>.*)$", "The versions to soft-delete.")
            .on(Op::Update, |b, r, d| Box::pin(b.versions_delete(r, d)))
            .help("Marks one or more versions as deleted in the KV store."),
        spec(r"undelete/(?P<path>.*)$", "The versions to restore.")
            .on(Op::Update, |b, r, d| Box::pin(b.versions_undelete(r, d)))
            .help("Undeletes one or more versions from the KV store."),
        spec(
            r"destroy/(?P<path>.*)$",
            "The versions to destroy permanently.",
        )
        .on(Op::Update, |b, r, d| Box::pin(b.versions_destroy(r, d)))
        .help("Permanently removes one or more versions in the KV store"),
    ]
}

/// The requested version numbers; negative ones can never match and are dropped.
fn versions(req: &Request, d: &FieldData<'_>, empty_msg: &str) -> Result<Vec<u64>> {
    let list = input::parse(req, false, d.raw(), "versions", comma_ints)?.unwrap_or_default();
    if list.is_empty() {
        return Err(Error::bad(empty_msg));
    }
    Ok(list
        .into_iter()
        .filter_map(|n| u64::try_from(n).ok())
        .collect())
}

impl KvBackend {
    async fn versions_delete(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let nums = versions(req, d, "No version number provided")?;
        let key = d.get_str("path")?.unwrap_or_default();
        let _guard = req.storage.lock(&metadata_key(&key)).await;
        let Some(mut meta) = load_meta(&req.storage, &key).await? else {
            return Ok(None);
        };
        let now = self.now();
        for n in nums {
            if let Some(vm) = meta.versions.get_mut(&n)
                && !vm.is_gone(now)
            {
                vm.deletion_time = Some(now);
            }
        }
        req.storage.put_json(&metadata_key(&key), &meta).await?;
        Ok(None)
    }

    async fn versions_undelete(
        &self,
        req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let nums = versions(req, d, "No version number provided")?;
        let key = d.get_str("path")?.unwrap_or_default();
        let cfg = load_config(&req.storage).await?;
        let _guard = req.storage.lock(&metadata_key(&key)).await;
        let Some(mut meta) = load_meta(&req.storage, &key).await? else {
            return Ok(None);
        };
        // A restored version starts a fresh delete_version_after countdown, as in Vault.
        let deletion = deletion_time(
            self.now(),
            cfg.delete_version_after,
            meta.delete_version_after,
        );
        for n in nums {
            if let Some(vm) = meta.versions.get_mut(&n)
                && !vm.destroyed
            {
                vm.deletion_time = deletion;
            }
        }
        req.storage.put_json(&metadata_key(&key), &meta).await?;
        Ok(None)
    }

    async fn versions_destroy(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let nums = versions(req, d, "no version number provided")?;
        let key = d.get_str("path")?.unwrap_or_default();
        let _guard = req.storage.lock(&metadata_key(&key)).await;
        let Some(mut meta) = load_meta(&req.storage, &key).await? else {
            return Ok(None);
        };
        let mut ops = Vec::new();
        for n in nums {
            if let Some(vm) = meta.versions.get_mut(&n) {
                vm.destroyed = true;
                ops.push(WriteOp::Delete(version_key(&key, n)));
            }
        }
        ops.push(WriteOp::Put(metadata_key(&key), Storage::encode(&meta)?));
        req.storage.batch(ops).await?;
        Ok(None)
    }
}
