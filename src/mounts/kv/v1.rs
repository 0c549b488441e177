//! kv version 1: arbitrary JSON objects stored as is under `kv1/<path>`, with read, write, delete
//! and list. Reads report a `lease_duration`: the secret's own `ttl` (or legacy `lease`) key when
//! it parses as a duration, else the mount's default lease TTL, exactly as Vault's passthrough
//! backend does. No lease is created; the value is a hint to the reader.
//!
//! Tuning a v1 mount to version 2 (`vault kv enable-versioning`) upgrades its entries: Vault
//! rewrites every v1 entry into version 1 of a v2 key. Coffer does it lazily, at the first v2
//! request after the tune (or after a restart), under one lock and one atomic batch per key, so an
//! interrupted upgrade resumes on the next request.

use serde_json::{Map, Value, json};
use std::sync::atomic::Ordering;

use super::types::KeyMetadata;
use super::{KvBackend, P, load_meta, metadata_key, version_key};
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, Request, Response};
use crate::physical::WriteOp;
use crate::storage::Storage;

/// Prefix of kv-v1 entries inside the mount's view.
const V1_PREFIX: &str = "kv1/";

pub(super) fn paths() -> Vec<P> {
    vec![
        P::new(r"(?P<path>.*)$")
            .field("path", T::Str, "Location of the secret.")
            .existence(|b, r, d| Box::pin(b.v1_exists(r, d)))
            .on(Op::Read, |b, r, d| Box::pin(b.v1_read(r, d)))
            .on(Op::Create, |b, r, d| Box::pin(b.v1_write(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.v1_write(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.v1_delete(r, d)))
            .on(Op::List, |b, r, d| Box::pin(b.v1_list(r, d)))
            .help("Pass-through secret storage to the storage backend, allowing you to read/write arbitrary data into secret storage."),
    ]
}

/// A `ttl`/`lease` value as Vault's `ParseDurationSecond` reads it: whole seconds or a duration
/// string (negative ones too, echoed as Vault does); anything else leaves the mount default.
fn lease_secs(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => crate::logical::field::parse_duration_seconds(s).ok(),
        _ => None,
    }
}

fn storage_key(req: &Request) -> String {
    format!("{V1_PREFIX}{}", req.path)
}

impl KvBackend {
    async fn v1_exists(&self, req: &Request, _d: &FieldData<'_>) -> Result<bool> {
        Ok(req.storage.get(&storage_key(req)).await?.is_some())
    }

    async fn v1_read(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let Some(data) = req
            .storage
            .get_json::<Map<String, Value>>(&storage_key(req))
            .await?
        else {
            return Ok(None);
        };
        let lease = data
            .get("ttl")
            .or_else(|| data.get("lease"))
            .and_then(lease_secs)
            .unwrap_or_else(|| self.sys.default_lease_ttl());
        let mut resp = Response::data(data);
        resp.lease_duration = lease;
        resp.secret = true;
        Ok(Some(resp))
    }

    async fn v1_write(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        if req.path.is_empty() {
            return Err(Error::bad("missing path"));
        }
        // The body is the secret; a captured `path` is not part of it.
        if req.data.is_empty() {
            return Err(Error::bad("missing data fields"));
        }
        req.storage.put_json(&storage_key(req), &req.data).await?;
        Ok(None)
    }

    async fn v1_delete(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        req.storage.delete(&storage_key(req)).await?;
        Ok(None)
    }

    async fn v1_list(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let keys = req.storage.list(&storage_key(req)).await?;
        Ok(Some(Response::list(keys)))
    }
}

/// Lock held while v1 entries are upgraded.
const UPGRADE_LOCK: &str = "kv1-upgrade";

impl KvBackend {
    /// Makes sure no kv-v1 entries remain before a v2 request is served. Keys that already have
    /// v2 metadata keep it; their stale v1 entry is just dropped.
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
