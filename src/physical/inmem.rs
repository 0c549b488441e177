//! The in-memory engine: a `BTreeMap` behind a lock. Serves `-dev` and tests.
//!
//! The lock is a synchronous one and is never held across an `.await`.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use super::{PhysicalBackend, StorageError, WriteOp, children};

/// In-memory storage. Keys and values are boxed: exact-size allocations, no spare capacity
/// kept per entry (the encrypted values arrive with some).
#[derive(Debug, Default)]
pub struct InmemBackend {
    map: RwLock<BTreeMap<Box<str>, Box<[u8]>>>,
}

/// Keys from `prefix` on, in order.
fn from(prefix: &str) -> (Bound<&str>, Bound<&str>) {
    (Bound::Included(prefix), Bound::Unbounded)
}

impl InmemBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned() -> StorageError {
    StorageError::other("in-memory storage lock poisoned")
}

#[async_trait::async_trait]
impl PhysicalBackend for InmemBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .map
            .read()
            .map_err(|_| poisoned())?
            .get(key)
            .map(|v| v.to_vec()))
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.map
            .write()
            .map_err(|_| poisoned())?
            .insert(key.into(), value.into_boxed_slice());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.map.write().map_err(|_| poisoned())?.remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let map = self.map.read().map_err(|_| poisoned())?;
        let keys = map.range::<str, _>(from(prefix)).map(|(k, _)| &**k);
        let keys = keys.take_while(|k| k.starts_with(prefix));
        Ok(children(prefix, keys))
    }

    async fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        let map = self.map.read().map_err(|_| poisoned())?;
        Ok(map
            .range::<str, _>(from(prefix))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .take(limit)
            .map(|k| k.to_string())
            .collect())
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<(), StorageError> {
        let mut map = self.map.write().map_err(|_| poisoned())?;
        for op in ops {
            match op {
                WriteOp::Put(k, v) => {
                    map.insert(k.into_boxed_str(), v.into_boxed_slice());
                }
                WriteOp::Delete(k) => {
                    map.remove(k.as_str());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inmem_conforms() {
        super::super::testing::exercise_backend(&InmemBackend::new())
            .await
            .unwrap();
    }
}
