//! `kv`: the key/value secrets engine, versions 1 and 2, mountable at any path.
//!
//! Data path: core pipeline → `KvBackend::handle_request` → the v1 or v2 path table, chosen per
//! request from the mount's `options.version` (so a tune is seen immediately) → the mount's private
//! `Storage` view. kv-v2 keeps per-key metadata at `metadata/<key>` and each version's data at
//! `versions/<sha256(key)>/<n>`; every change to a key happens under that key's lock and lands in
//! one atomic storage batch, so CAS checks and version numbers are race-free. kv-v1 stores the
//! JSON object as is under `kv1/<key>`; tuning a v1 mount to v2 upgrades those entries (`v1.rs`).

mod input;
mod merge;
mod path_config;
mod path_data;
mod path_delete;
mod path_metadata;
mod types;
mod v1;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::error::{Error, Result};
use crate::logical::{Backend, Operation, PathSpec, PathTable, Request, Response, SystemView};
use crate::storage::{DecodedCache, Storage};
use types::{KeyMetadata, KvConfig};

type P = PathSpec<KvBackend>;

/// Storage key of the mount-wide kv-v2 settings.
const CONFIG_KEY: &str = "config";
/// Prefix of per-key metadata.
const METADATA_PREFIX: &str = "metadata/";
/// Prefix of version data.
const VERSION_PREFIX: &str = "versions/";

/// The kv backend (both versions).
pub struct KvBackend {
    v1: PathTable<KvBackend>,
    v2: PathTable<KvBackend>,
    /// The clock and the mount's lease TTLs (kv-v1's `lease_duration`).
    sys: Arc<dyn SystemView>,
    /// Set once no kv-v1 entries remain in this mount (see `v1.rs`).
    upgraded: AtomicBool,
    /// Decoded metadata and version bodies of hot keys (validated by the stored bytes).
    meta_cache: DecodedCache<KeyMetadata>,
    version_cache: DecodedCache<VersionData>,
}

/// Keys of one mount kept decoded for reads.
const DECODED_CACHE_CAP: usize = 4096;

impl KvBackend {
    /// A kv backend on the clock and TTL settings of `sys`.
    pub fn new(sys: Arc<dyn SystemView>) -> Self {
        let mut v2 = Vec::new();
        v2.extend(path_config::paths());
        v2.extend(path_data::paths());
        v2.extend(path_metadata::paths());
        v2.extend(path_delete::paths());
        // Last, so that every valid path is tried first.
        v2.push(invalid_path());
        KvBackend {
            v1: PathTable::new(v1::paths()).description(
                "Key/value secret storage (version 1): each write replaces the value at its path.",
            ),
            v2: PathTable::new(v2).description(
                "Versioned key/value secret storage (version 2): every write keeps a new version, \
                 which can be read, deleted, undeleted or destroyed.",
            ),
            sys,
            upgraded: AtomicBool::new(false),
            meta_cache: DecodedCache::new(DECODED_CACHE_CAP),
            version_cache: DecodedCache::new(DECODED_CACHE_CAP),
        }
    }

    fn table(&self, req: &Request) -> &PathTable<KvBackend> {
        if is_v2(req) { &self.v2 } else { &self.v1 }
    }

    /// Now, in Unix nanoseconds, from the system view's clock.
    fn now(&self) -> i64 {
        i64::try_from(self.sys.now_nanos()).unwrap_or(i64::MAX)
    }
}

/// True when the request's mount is kv version 2.
fn is_v2(req: &Request) -> bool {
    req.mount
        .options
        .as_ref()
        .and_then(|o| o.get("version"))
        .is_some_and(|v| v == "2")
}

fn metadata_key(key: &str) -> String {
    format!("{METADATA_PREFIX}{key}")
}

/// Version data lives under a digest of the key, so no key can collide with another's versions.
fn version_key(key: &str, n: u64) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("{VERSION_PREFIX}{}/{n}", crate::token::hex(&digest))
}

async fn load_config(s: &Storage) -> Result<KvConfig> {
    Ok(s.get_json(CONFIG_KEY).await?.unwrap_or_default())
}

async fn load_meta(s: &Storage, key: &str) -> Result<Option<KeyMetadata>> {
    s.get_json(&metadata_key(key)).await
}

/// The stored body of one version.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct VersionData {
    data: Value,
}

/// `VersionData` borrowed, for writing a version without copying its data.
#[derive(serde::Serialize)]
struct VersionDataRef<'a> {
    data: &'a Value,
}

impl KvBackend {
    /// `load_meta` through the read cache.
    async fn cached_meta(
        &self,
        s: &Storage,
        key: &str,
    ) -> Result<Option<std::sync::Arc<KeyMetadata>>> {
        self.meta_cache.get_shared(s, &metadata_key(key)).await
    }

    /// `load_version` through the read cache.
    async fn cached_version(&self, s: &Storage, key: &str, n: u64) -> Result<Option<Value>> {
        Ok(self
            .version_cache
            .get_shared(s, &version_key(key, n))
            .await?
            .map(|v| v.data.clone()))
    }
}

async fn load_version(s: &Storage, key: &str, n: u64) -> Result<Option<Value>> {
    Ok(s.get_json::<VersionData>(&version_key(key, n))
        .await?
        .map(|v| v.data))
}

const INVALID_PATH_PREFIX: &str = "Invalid path for a versioned K/V secrets engine.";
const ROOT_PATH_WARNING: &str =
    "Non-listing operations on the root of a K/V v2 mount are not supported.";

/// The 404 with only a warning that Vault sends for paths a v2 mount does not serve.
fn invalid_path() -> P {
    let handler: crate::logical::path::Handler<KvBackend> = |_b, r, _d| {
        Box::pin(async move {
            let warning = match r.path.as_str() {
                "metadata" | "data" | "delete" | "undelete" | "destroy" => {
                    ROOT_PATH_WARNING.to_string()
                }
                _ => {
                    let sub = match r.operation {
                        Operation::Create | Operation::Update => "put",
                        Operation::Patch => "patch",
                        Operation::List => "list",
                        Operation::Delete => "delete",
                        Operation::Read | Operation::Help => "get",
                    };
                    format!(
                        "{INVALID_PATH_PREFIX} See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv {sub}' for this operation."
                    )
                }
            };
            Ok(Some(Response {
                warnings: vec![warning],
                status: Some(404),
                ..Default::default()
            }))
        })
    };
    P::new(".*$")
        .on(Operation::Read, handler)
        .on(Operation::Update, handler)
        .on(Operation::Patch, handler)
        .on(Operation::Delete, handler)
        .on(Operation::List, handler)
        .help("Invalid path for a versioned K/V secrets engine.")
}

/// A 404 whose body is empty (Vault's PATCH of a missing secret).
fn empty_not_found() -> Response {
    Response {
        status: Some(404),
        raw_body: Some(String::new()),
        ..Default::default()
    }
}

/// "could not find version data": metadata says a version exists but its data is missing.
fn missing_version_data() -> Error {
    Error::internal("could not find version data")
}

#[async_trait::async_trait]
impl Backend for KvBackend {
    async fn existence_check(&self, req: &Request) -> Result<Option<bool>> {
        if is_v2(req) {
            self.ensure_upgraded(&req.storage).await?;
        }
        self.table(req).existence(self, req).await
    }

    async fn handle_request(&self, req: &Request) -> Result<Option<Response>> {
        if is_v2(req) {
            self.ensure_upgraded(&req.storage).await?;
        }
        let mut resp = self.table(req).handle(self, req).await?;
        // Vault's catch-all takes arbitrary input, so its 404 carries only the one warning; drop
        // the framework's unrecognized-parameter notes from it.
        if let Some(r) = resp.as_mut()
            && r.status == Some(404)
            && r.data.is_none()
            && r.warnings.first().is_some_and(|w| {
                w.starts_with(INVALID_PATH_PREFIX) || w.starts_with(ROOT_PATH_WARNING)
            })
        {
            r.warnings.truncate(1);
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_never_collide() {
        assert_ne!(version_key("a", 1), version_key("a/1", 1));
        assert!(version_key("a", 12).ends_with("/12"));
        assert!(version_key("a", 12).starts_with(VERSION_PREFIX));
    }
}
