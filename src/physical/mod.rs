//! Physical storage: the bottom of the data path (HTTP → core → backend → storage view →
//! [barrier →] physical engine).
//!
//! `PhysicalBackend` is a small async key/value trait. Keys are `/`-separated paths; `list`
//! returns the immediate children of a prefix, with folders ending in `/`. Every engine runs the
//! same conformance suite (`testing.rs`).

pub mod inmem;
pub mod pg_lock;
pub mod pg_tls;
mod pg_write;
pub mod postgresql;
pub mod redb;
pub mod testing;

use std::sync::Arc;

/// A storage failure. Messages are for the server log only.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The barrier is sealed: nothing can be read or written.
    #[error("Vault is sealed")]
    Sealed,
    /// HA: this node does not hold the lock, so the write was refused (inside the same
    /// statement that would have written: nothing was stored).
    #[error("lock has changed ownership: this node is not the active node")]
    Fenced,
    /// Anything else (I/O, corruption, engine errors).
    #[error("{0}")]
    Other(String),
}

impl StorageError {
    /// An engine failure with context.
    pub fn other(msg: impl std::fmt::Display) -> Self {
        StorageError::Other(msg.to_string())
    }
}

/// One write in a batch.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Store `value` at `key`.
    Put(String, Vec<u8>),
    /// Remove `key`.
    Delete(String),
}

/// A key/value storage engine.
#[async_trait::async_trait]
pub trait PhysicalBackend: Send + Sync + 'static {
    /// The value at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Stores `value` at `key`; durable when it returns.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError>;
    /// Removes `key` (no error when absent).
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Immediate children of `prefix`, sorted; sub-folders end with `/`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// Applies several writes atomically (all or nothing) and durably.
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<(), StorageError>;

    /// The first `limit` full keys under `prefix` in key order, recursively. Engines with ordered
    /// keys should override this with a bounded range scan; the default walks `list`.
    async fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![prefix.to_string()];
        while let Some(p) = stack.pop() {
            let children = self.list(&p).await?;
            // Depth-first in key order: push folders in reverse so the smallest is visited first.
            let mut folders = Vec::new();
            for child in children {
                let full = format!("{p}{child}");
                if child.ends_with('/') {
                    folders.push(full);
                } else {
                    out.push(full);
                }
            }
            folders.reverse();
            stack.extend(folders);
        }
        out.sort();
        out.truncate(limit);
        Ok(out)
    }
}

/// Shared handle to an engine.
pub type Physical = Arc<dyn PhysicalBackend>;

/// Reduces full keys under `prefix` to immediate children (shared by engines with flat key spaces).
pub fn children<'a>(prefix: &str, keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        let child = match rest.find('/') {
            Some(i) => &rest[..=i],
            None => rest,
        };
        if child.is_empty() {
            continue;
        }
        if out.last().map(String::as_str) != Some(child) {
            out.push(child.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}
