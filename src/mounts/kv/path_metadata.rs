//! kv-v2 `metadata/<path>`: read every field Vault reports, write per-key settings (possibly before
//! any data exists), PATCH them, LIST keys (folders end in `/`; soft-deleted keys still listed)
//! and DELETE a key with all its versions.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::input::{self, duration_secs, object, weak_bool};
use super::types::{KeyMetadata, fmt_time};
use super::{
    KvBackend, METADATA_PREFIX, P, empty_not_found, load_config, load_meta, metadata_key,
    version_key,
};
use crate::error::Result;
use crate::logical::field::go_duration;
use crate::logical::{FieldData, FieldType as T, Operation as Op, Request, Response};
use crate::physical::WriteOp;

pub(super) fn paths() -> Vec<P> {
    vec![
        P::new(r"metadata/(?P<path>.*)$")
            .field("path", T::Str, "Location of the secret.")
            .field(
                "max_versions",
                T::Raw,
                "Versions to keep; 0 = the mount's setting.",
            )
            .field(
                "cas_required",
                T::Raw,
                "Require check-and-set on every write to this key.",
            )
            .field(
                "delete_version_after",
                T::Raw,
                "Delete versions after this long; 0 = unset.",
            )
            .field(
                "custom_metadata",
                T::Raw,
                "User-provided string pairs describing the secret.",
            )
            .existence(|b, r, d| Box::pin(b.metadata_exists(r, d)))
            .on(Op::Read, |b, r, d| Box::pin(b.metadata_read(r, d)))
            .on(Op::Create, |b, r, d| Box::pin(b.metadata_write(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.metadata_write(r, d)))
            .on(Op::Patch, |b, r, d| Box::pin(b.metadata_patch(r, d)))
            .on(Op::List, |b, r, d| Box::pin(b.metadata_list(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.metadata_delete(r, d)))
            .help("Allows interaction with key metadata and settings in the KV store."),
    ]
}

/// The settings a metadata write or patch carries (`None` = not sent).
#[derive(Default)]
struct Settings {
    max_versions: Option<u32>,
    cas_required: Option<bool>,
    delete_version_after: Option<i64>,
    custom_metadata: Option<Map<String, Value>>,
}

impl Settings {
    fn is_empty(&self) -> bool {
        self.max_versions.is_none()
            && self.cas_required.is_none()
            && self.delete_version_after.is_none()
            && self.custom_metadata.is_none()
    }
}

/// Parses and validates every setting before anything is changed.
fn settings(req: &Request, raw: &Map<String, Value>) -> Result<Settings> {
    let max = input::parse(req, true, raw, "max_versions", input::max_versions)?;
    let dva = input::parse(req, true, raw, "delete_version_after", |v| {
        let secs = duration_secs(v)?;
        if secs < 0 {
            return Err(format!("cannot provide negative value '{secs}'"));
        }
        Ok(secs)
    })?;
    let cas = input::parse(req, true, raw, "cas_required", weak_bool)?;
    let custom = input::parse(req, true, raw, "custom_metadata", |v| {
        object(v).map(|m| m.cloned())
    })?;
    Ok(Settings {
        max_versions: max,
        cas_required: cas,
        delete_version_after: dva,
        custom_metadata: custom.map(Option::unwrap_or_default),
    })
}

fn non_empty(m: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then_some(m)
}

const CAS_IGNORED: &str =
    "\"cas_required\" set to false, but is mandated by backend config. This value will be ignored.";

impl KvBackend {
    async fn metadata_exists(&self, req: &Request, d: &FieldData<'_>) -> Result<bool> {
        let key = d.get_str("path")?.unwrap_or_default();
        Ok(load_meta(&req.storage, &key).await?.is_some())
    }

    async fn metadata_read(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let key = d.get_str("path")?.unwrap_or_default();
        let Some(meta) = load_meta(&req.storage, &key).await? else {
            return Ok(None);
        };
        let versions: Map<String, Value> = meta
            .versions
            .iter()
            .map(|(n, vm)| {
                let v = json!({
                    "created_time": fmt_time(vm.created_time),
                    "deletion_time": vm.deletion_time.map(fmt_time).unwrap_or_default(),
                    "destroyed": vm.destroyed,
                });
                (n.to_string(), v)
            })
            .collect();
        let time = |t: Option<i64>| t.map(fmt_time).unwrap_or_default();
        Ok(Some(Response::json(json!({
            "cas_required": meta.cas_required,
            "created_time": time(meta.created_time),
            "current_version": meta.current_version,
            "custom_metadata": meta.custom_metadata,
            "delete_version_after": go_duration(meta.delete_version_after),
            "max_versions": meta.max_versions,
            "oldest_version": meta.oldest_version,
            "updated_time": time(meta.updated_time),
            "versions": versions,
        }))))
    }

    async fn metadata_write(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let key = d.get_str("path")?.unwrap_or_default();
        if key.is_empty() {
            return Err(crate::error::Error::bad("missing path"));
        }
        let s = settings(req, d.raw())?;
        if s.is_empty() {
            return Ok(None);
        }
        let custom = s
            .custom_metadata
            .as_ref()
            .map(|m| input::custom_metadata(m, false))
            .transpose()?;
        let cfg = load_config(&req.storage).await?;
        let _guard = req.storage.lock(&metadata_key(&key)).await;
        let mut meta = match load_meta(&req.storage, &key).await? {
            Some(m) => m,
            None => KeyMetadata::new_at(self.now()),
        };
        apply(&mut meta, &s);
        if let Some(c) = custom {
            meta.custom_metadata = non_empty(c);
        }
        req.storage.put_json(&metadata_key(&key), &meta).await?;
        Ok(cas_warning(&s, cfg.cas_required))
    }

    async fn metadata_patch(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let key = d.get_str("path")?.unwrap_or_default();
        if key.is_empty() {
            return Err(crate::error::Error::bad("missing path"));
        }
        let s = settings(req, d.raw())?;
        if let Some(m) = &s.custom_metadata {
            input::custom_metadata(m, true)?;
        }
        let cfg = load_config(&req.storage).await?;
        let _guard = req.storage.lock(&metadata_key(&key)).await;
        let Some(mut meta) = load_meta(&req.storage, &key).await? else {
            return Ok(Some(empty_not_found()));
        };
        apply(&mut meta, &s);
        if d.raw().get("custom_metadata").is_some_and(Value::is_null) {
            // Merge-patching the field itself with null removes it.
            meta.custom_metadata = None;
        } else if let Some(patch) = &s.custom_metadata {
            // JSON merge patch of the string map: null removes a key.
            let mut merged = meta.custom_metadata.take().unwrap_or_default();
            for (k, v) in input::custom_metadata(patch, true)? {
                merged.insert(k, v);
            }
            for (k, v) in patch {
                if v.is_null() {
                    merged.remove(k);
                }
            }
            meta.custom_metadata = non_empty(merged);
        }
        req.storage.put_json(&metadata_key(&key), &meta).await?;
        Ok(cas_warning(&s, cfg.cas_required))
    }

    async fn metadata_list(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let prefix = d.get_str("path")?.unwrap_or_default();
        let keys = req
            .storage
            .list(&format!("{METADATA_PREFIX}{prefix}"))
            .await?;
        Ok(Some(Response::list(keys)))
    }

    async fn metadata_delete(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let key = d.get_str("path")?.unwrap_or_default();
        let _guard = req.storage.lock(&metadata_key(&key)).await;
        let Some(meta) = load_meta(&req.storage, &key).await? else {
            return Ok(None);
        };
        let mut ops: Vec<WriteOp> = meta
            .versions
            .keys()
            .map(|n| WriteOp::Delete(version_key(&key, *n)))
            .collect();
        ops.push(WriteOp::Delete(metadata_key(&key)));
        req.storage.batch(ops).await?;
        Ok(None)
    }
}

fn apply(meta: &mut KeyMetadata, s: &Settings) {
    if let Some(m) = s.max_versions {
        meta.max_versions = m;
    }
    if let Some(c) = s.cas_required {
        meta.cas_required = c;
    }
    if let Some(dva) = s.delete_version_after {
        meta.delete_version_after = dva;
    }
}

fn cas_warning(s: &Settings, mount_requires: bool) -> Option<Response> {
    (mount_requires && s.cas_required == Some(false))
        .then(|| Response::default().with_warning(CAS_IGNORED))
}
