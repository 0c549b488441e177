//! kv version 1: arbitrary JSON objects stored as is under `kv1/<path>`, with read, write, delete
//! and list. Reads report a `lease_duration`: the secret's own `ttl` (or legacy `lease`) key when
//! it parses as a duration, else the mount's default lease TTL, exactly as Vault's passthrough
//! backend does. No lease is created; the value is a hint to the reader.

use serde_json::{Map, Value};

use super::{KvBackend, P};
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, Request, Response};

/// Prefix of kv-v1 entries inside the mount's view.
pub(super) const V1_PREFIX: &str = "kv1/";

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
            .unwrap_or_else(|| self.mount_default_ttl(req));
        let mut resp = Response::data(data);
        resp.lease_duration = lease;
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

    /// The mount's default lease TTL (tuned value, else the system default, capped by the max).
    fn mount_default_ttl(&self, req: &Request) -> i64 {
        let (sys_default, sys_max) = self.sys_ttls;
        let c = &req.mount.config;
        let max = if c.max_lease_ttl > 0 {
            c.max_lease_ttl
        } else {
            sys_max
        };
        let def = if c.default_lease_ttl > 0 {
            c.default_lease_ttl
        } else {
            sys_default
        };
        def.min(max)
    }
}
