//! Storage views: the only storage a backend ever receives.
//!
//! A `Storage` is a prefixed window onto the engine (`logical/<mount uuid>/...`), so mounts cannot
//! see each other's data. It also hands out per-key async locks, which make read-modify-write
//! sequences (CAS, use counting) atomic within this process.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::{Error, Result};
use crate::physical::{Physical, WriteOp};

const LOCK_STRIPES: usize = 1024;

/// Striped async locks keyed by storage path.
#[derive(Debug)]
pub struct KeyLocks {
    stripes: Vec<Arc<Mutex<()>>>,
}

impl Default for KeyLocks {
    fn default() -> Self {
        KeyLocks {
            stripes: (0..LOCK_STRIPES)
                .map(|_| Arc::new(Mutex::new(())))
                .collect(),
        }
    }
}

impl KeyLocks {
    /// Locks the stripe of `key` until the guard is dropped.
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let idx = usize::try_from(h.finish() % LOCK_STRIPES as u64).unwrap_or(0);
        let stripe = self
            .stripes
            .get(idx)
            .or_else(|| self.stripes.first())
            .cloned();
        match stripe {
            Some(m) => m.lock_owned().await,
            None => Arc::new(Mutex::new(())).lock_owned().await,
        }
    }
}

/// A prefixed view of storage.
#[derive(Clone)]
pub struct Storage {
    physical: Physical,
    prefix: String,
    locks: Arc<KeyLocks>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Storage {
    /// A view of `physical` under `prefix`.
    pub fn new(physical: Physical, prefix: impl Into<String>, locks: Arc<KeyLocks>) -> Self {
        Storage {
            physical,
            prefix: prefix.into(),
            locks,
        }
    }

    /// A narrower view.
    pub fn sub(&self, prefix: &str) -> Storage {
        Storage {
            physical: self.physical.clone(),
            prefix: format!("{}{prefix}", self.prefix),
            locks: self.locks.clone(),
        }
    }

    /// The absolute prefix of this view.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Raw bytes at `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.physical.get(&self.full(key)).await?)
    }

    /// Stores raw bytes.
    pub async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        Ok(self.physical.put(&self.full(key), value).await?)
    }

    /// Removes `key`.
    pub async fn delete(&self, key: &str) -> Result<()> {
        Ok(self.physical.delete(&self.full(key)).await?)
    }

    /// Immediate children of `prefix` within this view.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.physical.list(&self.full(prefix)).await?)
    }

    /// The first `limit` keys under `prefix` (relative to this view), recursively, in key order.
    pub async fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let full = self.physical.scan(&self.full(prefix), limit).await?;
        Ok(full
            .into_iter()
            .filter_map(|k| k.strip_prefix(self.prefix.as_str()).map(str::to_string))
            .collect())
    }

    /// Decodes the JSON value at `key`.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::internal(format!("corrupt entry at {}: {e}", self.full(key)))),
        }
    }

    /// Encodes `value` as JSON at `key`.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(Error::internal)?;
        self.put(key, bytes).await
    }

    /// Applies writes (keys relative to this view) atomically.
    pub async fn batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        let ops = ops
            .into_iter()
            .map(|op| match op {
                WriteOp::Put(k, v) => WriteOp::Put(self.full(&k), v),
                WriteOp::Delete(k) => WriteOp::Delete(self.full(&k)),
            })
            .collect();
        Ok(self.physical.write_batch(ops).await?)
    }

    /// JSON-encodes a value for a batch `Put`.
    pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(Error::internal)
    }

    /// Locks `key` (within this view) for a read-modify-write sequence.
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        self.locks.lock(&self.full(key)).await
    }

    /// Every key under `prefix`, recursively (relative to this view).
    pub async fn list_recursive(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![prefix.to_string()];
        while let Some(p) = stack.pop() {
            for child in self.list(&p).await? {
                let full = format!("{p}{child}");
                if child.ends_with('/') {
                    stack.push(full);
                } else {
                    out.push(full);
                }
            }
        }
        Ok(out)
    }

    /// Deletes everything under `prefix` (used when a mount is disabled).
    pub async fn clear(&self, prefix: &str) -> Result<()> {
        let keys = self.list_recursive(prefix).await?;
        for chunk in keys.chunks(512) {
            self.batch(chunk.iter().map(|k| WriteOp::Delete(k.clone())).collect())
                .await?;
        }
        Ok(())
    }
}

/// Decoded values of entries that only their owner writes (an auth method's own configuration
/// and roles): served from memory without reading storage. The owner calls
/// [`OwnedCache::invalidate`] after every write or delete of those entries (whether or not it
/// succeeded); a read that raced a write never keeps the value it read before it (generation
/// check). Anything that changes the entries outside the owner makes a new owner (mounts are
/// rebuilt at unseal and HA step-up), so nothing stale survives. When full it starts over.
pub struct OwnedCache<T> {
    inner: std::sync::Mutex<OwnedInner<T>>,
    cap: usize,
}

struct OwnedInner<T> {
    generation: u64,
    map: std::collections::HashMap<String, Arc<T>>,
}

impl<T> std::fmt::Debug for OwnedCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedCache")
            .field("cap", &self.cap)
            .finish()
    }
}

impl<T: DeserializeOwned> OwnedCache<T> {
    /// A cache of at most `cap` values.
    pub fn new(cap: usize) -> Self {
        OwnedCache {
            inner: std::sync::Mutex::new(OwnedInner {
                generation: 0,
                map: std::collections::HashMap::new(),
            }),
            cap,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OwnedInner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The decoded entry at `key` of `s` (read from storage on a miss).
    pub async fn get_shared(&self, s: &Storage, key: &str) -> Result<Option<Arc<T>>> {
        let full = s.full(key);
        let generation = {
            let inner = self.lock();
            if let Some(v) = inner.map.get(&full) {
                return Ok(Some(v.clone()));
            }
            inner.generation
        };
        let Some(value) = s.get_json::<T>(key).await? else {
            return Ok(None);
        };
        let value = Arc::new(value);
        let mut inner = self.lock();
        if inner.generation == generation {
            if inner.map.len() >= self.cap {
                inner.map.clear();
            }
            inner.map.insert(full, value.clone());
        }
        Ok(Some(value))
    }

    /// Forgets every value; call after each write or delete of a cached entry.
    pub fn invalidate(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.clear();
    }
}

/// The stored bytes a value was decoded from, and the value.
type Decoded<T> = (Vec<u8>, Arc<T>);

/// A bounded cache of values decoded from storage, so that a hot entry is not JSON-decoded on
/// every request. It needs no invalidation: a value is served only when the bytes just read from
/// storage equal the bytes it was decoded from, so storage stays the single source of truth
/// (every write, from any path, changes the bytes). When full it simply starts over.
pub struct DecodedCache<T> {
    map: std::sync::Mutex<std::collections::HashMap<String, Decoded<T>>>,
    cap: usize,
}

impl<T> std::fmt::Debug for DecodedCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedCache")
            .field("cap", &self.cap)
            .finish()
    }
}

impl<T: Clone + DeserializeOwned> DecodedCache<T> {
    /// A cache of at most `cap` values.
    pub fn new(cap: usize) -> Self {
        DecodedCache {
            map: std::sync::Mutex::new(std::collections::HashMap::new()),
            cap,
        }
    }

    /// Like `Storage::get_json`, served from the cache when the stored bytes are unchanged.
    pub async fn get_json(&self, s: &Storage, key: &str) -> Result<Option<T>> {
        Ok(self.get_shared(s, key).await?.map(Arc::unwrap_or_clone))
    }

    /// `get_json` without copying the decoded value: the cached value itself, shared.
    pub async fn get_shared(&self, s: &Storage, key: &str) -> Result<Option<Arc<T>>> {
        let full = s.full(key);
        let Some(bytes) = s.physical.get(&full).await? else {
            return Ok(None);
        };
        if let Ok(map) = self.map.lock()
            && let Some((b, v)) = map.get(&full)
            && b.as_slice() == bytes.as_slice()
        {
            return Ok(Some(v.clone()));
        }
        let value: Arc<T> = Arc::new(
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::internal(format!("corrupt entry at {full}: {e}")))?,
        );
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= self.cap && !map.contains_key(&full) {
                map.clear();
            }
            map.insert(full, (bytes, value.clone()));
        }
        Ok(Some(value))
    }
}
