//! The in-memory engine: a `BTreeMap` behind a lock. Serves `-dev` and tests.
//!
//! The lock is a synchronous one and is never held across an `.await`.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{PhysicalBackend, StorageError, WriteOp, children};

/// In-memory storage.
#[derive(Debug, Default)]
pub struct InmemBackend {
    map: RwLock<BTreeMap<String, Vec<u8>>>,
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
        Ok(self.map.read().map_err(|_| poisoned())?.get(key).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.map
            .write()
            .map_err(|_| poisoned())?
            .insert(key.to_string(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.map.write().map_err(|_| poisoned())?.remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let map = self.map.read().map_err(|_| poisoned())?;
        let keys = map.range(prefix.to_string()..).map(|(k, _)| k.as_str());
        let keys = keys.take_while(|k| k.starts_with(prefix));
        Ok(children(prefix, keys))
    }

    async fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        let map = self.map.read().map_err(|_| poisoned())?;
        Ok(map
            .range(prefix.to_string()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<(), StorageError> {
        let mut map = self.map.write().map_err(|_| poisoned())?;
        for op in ops {
            match op {
                WriteOp::Put(k, v) => {
                    map.insert(k, v);
                }
                WriteOp::Delete(k) => {
                    map.remove(&k);
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
        super::super::testing::exercise_backend(&InmemBackend::new()).await;
    }
}
