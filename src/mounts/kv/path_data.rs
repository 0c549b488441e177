//! kv-v2 `data/<path>`: write (with check-and-set), read (latest or `?version=N`), PATCH (JSON
//! merge patch of the current version) and DELETE (soft-delete of the latest version); and
//! `subkeys/<path>`, the same read with every value replaced by `null` down to `depth` levels.
//!
//! Reads of a deleted or destroyed version answer 404 with the full envelope (`data.data: null`
//! plus the version's metadata), which the CLI and clients treat as "found but deleted"; a
//! version that never existed answers the plain 404 `{"errors":[]}`.

use serde_json::{Map, Value};

use super::input::{self, object, weak_int};
use super::merge::{merge_patch, remove_values};
use super::types::{KeyMetadata, KvConfig, deletion_time};
use super::{
    KvBackend, P, VersionDataRef, empty_not_found, load_config, load_meta, load_version,
    metadata_key, missing_version_data, version_key,
};
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, Request, Response};
use crate::physical::WriteOp;
use crate::storage::Storage;

pub(super) fn paths() -> Vec<P> {
    vec![
        P::new(r"data/(?P<path>.+)$")
            .field("path", T::Str, "Location of the secret.")
            .field(
                "version",
                T::Raw,
                "Version to read; the latest when absent or 0.",
            )
            .field(
                "options",
                T::Raw,
                "Write options; `cas` is the check-and-set version.",
            )
            .field("data", T::Raw, "The secret's key/value pairs.")
            .existence(|b, r, d| Box::pin(b.data_exists(r, d)))
            .on(Op::Read, |b, r, d| Box::pin(b.data_read(r, d)))
            .on(Op::Create, |b, r, d| Box::pin(b.data_write(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.data_write(r, d)))
            .on(Op::Patch, |b, r, d| Box::pin(b.data_patch(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.data_delete(r, d)))
            .help("Write, Patch, Read, and Delete data in the Key-Value Store."),
        P::new(r"subkeys/(?P<path>.+)$")
            .field("path", T::Str, "Location of the secret.")
            .field("version", T::Raw, "Version to read; the latest when absent or 0.")
            .field("depth", T::Raw, "Maximum depth to traverse; 0 = no limit.")
            .on(Op::Read, |b, r, d| Box::pin(b.subkeys_read(r, d)))
            .help("Read the structure of a secret entry from the Key-Value store with the values removed."),
    ]
}

fn key_of(d: &FieldData<'_>) -> Result<String> {
    Ok(d.get_str("path")?.unwrap_or_default())
}

/// The check-and-set rule: a given `cas` must equal the current version; without one, writes are
/// refused when the mount or the key requires CAS.
fn check_cas(
    options: Option<&Map<String, Value>>,
    cfg: &KvConfig,
    meta: &KeyMetadata,
) -> Result<()> {
    match options.and_then(|o| o.get("cas")) {
        Some(raw) => {
            let cas =
                weak_int(raw).map_err(|_| Error::bad("error parsing check-and-set parameter"))?;
            if u64::try_from(cas).ok() != Some(meta.current_version) {
                return Err(Error::bad(
                    "check-and-set parameter did not match the current version",
                ));
            }
            Ok(())
        }
        None if cfg.cas_required || meta.cas_required => {
            Err(Error::bad("check-and-set parameter required for this call"))
        }
        None => Ok(()),
    }
}

/// The `data` (raw, possibly `null`) and `options` fields of a write or patch.
type WriteFields<'a> = (Option<&'a Value>, Option<&'a Map<String, Value>>);

/// Validates every field of the path (Vault checks them all, whichever the operation uses).
fn fields<'a>(req: &Request, raw: &'a Map<String, Value>) -> Result<(WriteFields<'a>, i64)> {
    let check = |name| input::parse(req, true, raw, name, object);
    check("data")?;
    let options = check("options")?.flatten();
    let version = input::parse(req, true, raw, "version", weak_int)?.unwrap_or(0);
    Ok(((raw.get("data"), options), version))
}

/// The `subkeys` view of a version's data.
fn subkeys_of(data: Value, depth: i64) -> Value {
    match data {
        Value::Object(mut m) => {
            remove_values(&mut m, depth);
            Value::Object(m)
        }
        // A version written with `"data": null` has no structure to show.
        _ => Value::Null,
    }
}

impl KvBackend {
    async fn data_exists(&self, req: &Request, d: &FieldData<'_>) -> Result<bool> {
        // Vault validates the fields while routing the existence check: a bad `data` or
        // `options` is refused there, before the token is looked at.
        fields(req, &req.data)?;
        // Presence only: no need to decode the metadata.
        Ok(req.storage.get(&metadata_key(&key_of(d)?)).await?.is_some())
    }

    /// Reads version `n` (0 = current) and renders Vault's response, including the 404 envelope.
    pub(super) async fn read_version(
        &self,
        req: &Request,
        key: &str,
        n: i64,
        body_field: &str,
    ) -> Result<Option<Response>> {
        for attempt in 0..2 {
            // The data read normally takes no lock; if a concurrent destroy or prune removed the
            // data between the two reads, retry once under the key's lock.
            let _guard = if attempt == 0 {
                None
            } else {
                Some(req.storage.lock(&metadata_key(key)).await)
            };
            let Some(meta) = self.cached_meta(&req.storage, key).await? else {
                return Ok(None);
            };
            let num = u64::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or(meta.current_version);
            let Some(vm) = meta.versions.get(&num) else {
                return Ok(None);
            };
            let mut body = Map::new();
            body.insert(body_field.into(), Value::Null);
            body.insert("metadata".into(), meta.version_json(num, vm));
            if vm.is_gone(self.now()) {
                return Ok(Some(Response {
                    data: Some(body),
                    status: Some(404),
                    ..Default::default()
                }));
            }
            if let Some(data) = self.cached_version(&req.storage, key, num).await? {
                body.insert(body_field.into(), data);
                return Ok(Some(Response::data(body)));
            }
        }
        Err(missing_version_data())
    }

    async fn data_read(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let (_, version) = fields(req, d.raw())?;
        self.read_version(req, &key_of(d)?, version, "data").await
    }

    /// Appends a version holding `data` under the held lock and returns the write response.
    async fn append_version(
        &self,
        s: &Storage,
        key: &str,
        cfg: &KvConfig,
        mut meta: KeyMetadata,
        data: &Value,
    ) -> Result<Option<Response>> {
        let now = self.now();
        let deletion = deletion_time(now, cfg.delete_version_after, meta.delete_version_after);
        let dropped = meta.add_version(now, deletion, cfg.max_versions);
        let n = meta.current_version;
        let mut ops = vec![
            WriteOp::Put(
                version_key(key, n),
                Storage::encode(&VersionDataRef { data })?,
            ),
            WriteOp::Put(metadata_key(key), Storage::encode(&meta)?),
        ];
        ops.extend(
            dropped
                .iter()
                .map(|v| WriteOp::Delete(version_key(key, *v))),
        );
        s.batch(ops).await?;
        let vm = meta.versions.get(&n).ok_or_else(missing_version_data)?;
        Ok(Some(Response::json(meta.version_json(n, vm))))
    }

    async fn data_write(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let key = key_of(d)?;
        let ((data, options), _) = fields(req, d.raw())?;
        let data = data.ok_or_else(|| Error::bad("no data provided"))?;
        let cfg = load_config(&req.storage).await?;
        let _guard = req.storage.lock(&metadata_key(&key)).await;
        let meta = load_meta(&req.storage, &key).await?.unwrap_or_default();
        check_cas(options, &cfg, &meta)?;
        self.append_version(&req.storage, &key, &cfg, meta, data)
            .await
    }

    async fn data_patch(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let key = key_of(d)?;
        let ((patch, options), _) = fields(req, d.raw())?;
        let patch = patch.ok_or_else(|| Error::bad("no data provided"))?;
        let _guard = req.storage.lock(&metadata_key(&key)).await;
        let Some(meta) = load_meta(&req.storage, &key).await? else {
            return Ok(Some(empty_not_found()));
        };
        let cfg = load_config(&req.storage).await?;
        check_cas(options, &cfg, &meta)?;
        let n = meta.current_version;
        let Some(vm) = meta.versions.get(&n) else {
            return Ok(Some(empty_not_found()));
        };
        if vm.is_gone(self.now()) {
            return Ok(Some(Response {
                data: meta.version_json(n, vm).as_object().cloned(),
                status: Some(404),
                ..Default::default()
            }));
        }
        let mut current = load_version(&req.storage, &key, n)
            .await?
            .ok_or_else(missing_version_data)?;
        if current.is_null() {
            // A version written as `"data": null` cannot be patched; Vault fails the same way.
            return Err(Error::Coded(
                500,
                "1 error occurred:\n\t* resource does not exist\n\n".into(),
            ));
        }
        // A `null` patch changes nothing (merging it literally would replace the whole secret).
        if !patch.is_null() {
            merge_patch(&mut current, patch);
        }
        self.append_version(&req.storage, &key, &cfg, meta, &current)
            .await
    }

    async fn subkeys_read(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let version = input::parse(req, false, d.raw(), "version", weak_int)?.unwrap_or(0);
        let depth = input::parse(req, false, d.raw(), "depth", weak_int)?.unwrap_or(0);
        let key = d.get_str("path")?.unwrap_or_default();
        let resp = self.read_version(req, &key, version, "subkeys").await?;
        Ok(resp.map(|mut r| {
            if r.status.is_none()
                && let Some(data) = r.data.as_mut()
                && let Some(sub) = data.get_mut("subkeys")
            {
                *sub = subkeys_of(sub.take(), depth);
            }
            r
        }))
    }

    async fn data_delete(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        fields(req, d.raw())?;
        let key = key_of(d)?;
        let _guard = req.storage.lock(&metadata_key(&key)).await;
        let Some(mut meta) = load_meta(&req.storage, &key).await? else {
            return Ok(None);
        };
        let now = self.now();
        let current = meta.current_version;
        match meta.versions.get_mut(&current) {
            Some(vm) if !vm.is_gone(now) => vm.deletion_time = Some(now),
            _ => return Ok(None),
        }
        req.storage.put_json(&metadata_key(&key), &meta).await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cas_rules() {
        let cfg = KvConfig::default();
        let meta = KeyMetadata {
            current_version: 2,
            ..Default::default()
        };
        let opts = |v: Value| v.as_object().cloned();
        assert!(check_cas(None, &cfg, &meta).is_ok());
        assert!(check_cas(opts(json!({"cas": 2})).as_ref(), &cfg, &meta).is_ok());
        assert!(check_cas(opts(json!({"cas": "2"})).as_ref(), &cfg, &meta).is_ok());
        let err = |v| {
            check_cas(opts(v).as_ref(), &cfg, &meta)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(json!({"cas": 1})),
            "check-and-set parameter did not match the current version"
        );
        assert_eq!(
            err(json!({"cas": -1})),
            "check-and-set parameter did not match the current version"
        );
        assert_eq!(
            err(json!({"cas": "x"})),
            "error parsing check-and-set parameter"
        );
        assert_eq!(
            err(json!({"cas": [2]})),
            "error parsing check-and-set parameter"
        );
        let strict = KvConfig {
            cas_required: true,
            ..Default::default()
        };
        assert_eq!(
            check_cas(None, &strict, &meta).unwrap_err().to_string(),
            "check-and-set parameter required for this call"
        );
    }
}
