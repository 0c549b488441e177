//! Barrier tests: conformance through the barrier, no plaintext below it, rotation, sealing.

use std::sync::Arc;
use zeroize::Zeroizing;

use super::*;
use crate::physical::inmem::InmemBackend;
use crate::physical::testing::exercise_backend;

fn root(b: u8) -> Zeroizing<[u8; 32]> {
    Zeroizing::new([b; 32])
}

async fn unsealed() -> (Arc<InmemBackend>, Barrier) {
    let inner = Arc::new(InmemBackend::new());
    let barrier = Barrier::new(inner.clone());
    assert!(!barrier.initialized().await.unwrap());
    barrier.initialize(&root(1)).await.unwrap();
    assert!(barrier.initialized().await.unwrap());
    assert!(barrier.is_sealed(), "initialize leaves the barrier sealed");
    barrier.unseal(&root(1)).await.unwrap();
    assert!(!barrier.is_sealed());
    (inner, barrier)
}

/// Every raw (key, value) pair in the inner engine.
async fn dump(inner: &InmemBackend) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(prefix) = stack.pop() {
        for child in inner.list(&prefix).await.unwrap() {
            let full = format!("{prefix}{child}");
            if child.ends_with('/') {
                stack.push(full);
            } else {
                let v = inner.get(&full).await.unwrap().unwrap();
                out.push((full, v));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A prefixed window, as the core's storage views give mounts. The suite starts by listing an
/// empty root, but below the barrier the root already holds `core/` (the keyring), so the suite
/// runs one level down, where the core's mounts live.
struct Prefixed(Arc<Barrier>, &'static str);

#[async_trait::async_trait]
impl PhysicalBackend for Prefixed {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.0.get(&format!("{}{key}", self.1)).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.0.put(&format!("{}{key}", self.1), value).await
    }
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.0.delete(&format!("{}{key}", self.1)).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.0.list(&format!("{}{prefix}", self.1)).await
    }
    async fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        let keys = self.0.scan(&format!("{}{prefix}", self.1), limit).await?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(self.1).map(str::to_string))
            .collect())
    }
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<(), StorageError> {
        let p = |k: String| format!("{}{k}", self.1);
        let ops = ops
            .into_iter()
            .map(|op| match op {
                WriteOp::Put(k, v) => WriteOp::Put(p(k), v),
                WriteOp::Delete(k) => WriteOp::Delete(p(k)),
            })
            .collect();
        self.0.write_batch(ops).await
    }
}

#[tokio::test]
async fn barrier_conforms() {
    let (_inner, barrier) = unsealed().await;
    let barrier = Arc::new(barrier);
    exercise_backend(&Prefixed(barrier.clone(), "logical/conformance/"))
        .await
        .unwrap();
    assert_eq!(barrier.list("").await.unwrap(), ["core/", "logical/"]);
}

#[tokio::test]
async fn no_plaintext_below_the_barrier() {
    let (inner, barrier) = unsealed().await;
    let secret = b"s3cr3t-plaintext-value-0123456789";
    barrier
        .put("logical/u1/data/app", secret.to_vec())
        .await
        .unwrap();
    barrier
        .write_batch(vec![WriteOp::Put("sys/token/id/x".into(), secret.to_vec())])
        .await
        .unwrap();
    let raw = dump(&inner).await;
    assert_eq!(
        raw.len(),
        3,
        "keyring + two values: {:?}",
        raw.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    for (key, value) in &raw {
        assert!(!contains(value, secret), "plaintext visible at {key}");
        assert!(
            !contains(value, b"s3cr3t"),
            "plaintext fragment visible at {key}"
        );
    }
    // Keys stay plaintext, as in Vault.
    assert!(raw.iter().any(|(k, _)| k == "logical/u1/data/app"));
    assert_eq!(
        barrier.get("logical/u1/data/app").await.unwrap().unwrap(),
        secret
    );
}

#[tokio::test]
async fn moved_ciphertext_is_rejected() {
    let (inner, barrier) = unsealed().await;
    barrier.put("a", b"one".to_vec()).await.unwrap();
    let raw = inner.get("a").await.unwrap().unwrap();
    inner.put("b", raw).await.unwrap();
    assert!(matches!(
        barrier.get("b").await,
        Err(StorageError::Other(_))
    ));
}

#[tokio::test]
async fn rotate_keeps_old_data_readable() {
    let (inner, barrier) = unsealed().await;
    let before = barrier.key_status().unwrap();
    assert_eq!(before.term, 1);
    assert!(
        before.install_time.ends_with('Z'),
        "{}",
        before.install_time
    );
    barrier
        .put("old", b"written under term 1".to_vec())
        .await
        .unwrap();

    let after = barrier.rotate().await.unwrap();
    assert_eq!(after.term, 2);
    assert_eq!(after.encryptions, 0);
    barrier
        .put("new", b"written under term 2".to_vec())
        .await
        .unwrap();
    assert_eq!(barrier.key_status().unwrap().encryptions, 1);

    let term_of = |v: Vec<u8>| aead::term(&v).unwrap();
    assert_eq!(term_of(inner.get("old").await.unwrap().unwrap()), 1);
    assert_eq!(term_of(inner.get("new").await.unwrap().unwrap()), 2);
    assert_eq!(
        barrier.get("old").await.unwrap().unwrap(),
        b"written under term 1"
    );

    // The rotated keyring was persisted: a fresh barrier over the same engine reads both.
    let again = Barrier::new(inner.clone());
    again.unseal(&root(1)).await.unwrap();
    assert_eq!(again.key_status().unwrap().term, 2);
    assert_eq!(
        again.get("old").await.unwrap().unwrap(),
        b"written under term 1"
    );
    assert_eq!(
        again.get("new").await.unwrap().unwrap(),
        b"written under term 2"
    );
}

#[tokio::test]
async fn wrong_root_key_changes_nothing() {
    let (inner, barrier) = unsealed().await;
    barrier.put("k", b"v".to_vec()).await.unwrap();
    barrier.seal();
    let keyring_before = inner.get(KEYRING_PATH).await.unwrap();
    assert!(matches!(
        barrier.unseal(&root(2)).await,
        Err(BarrierError::InvalidKey)
    ));
    assert!(barrier.is_sealed());
    assert_eq!(inner.get(KEYRING_PATH).await.unwrap(), keyring_before);
    barrier.unseal(&root(1)).await.unwrap();
    assert_eq!(barrier.get("k").await.unwrap().unwrap(), b"v");
    // Unsealing again verifies the key even though already unsealed.
    assert!(matches!(
        barrier.unseal(&root(3)).await,
        Err(BarrierError::InvalidKey)
    ));
    assert!(!barrier.is_sealed());
}

#[tokio::test]
async fn sealed_answers_sealed() {
    let (_inner, barrier) = unsealed().await;
    barrier.put("k", b"v".to_vec()).await.unwrap();
    barrier.seal();
    assert!(barrier.is_sealed());
    assert!(matches!(barrier.get("k").await, Err(StorageError::Sealed)));
    assert!(matches!(
        barrier.put("k", vec![]).await,
        Err(StorageError::Sealed)
    ));
    assert!(matches!(
        barrier.delete("k").await,
        Err(StorageError::Sealed)
    ));
    assert!(matches!(barrier.list("").await, Err(StorageError::Sealed)));
    assert!(matches!(
        barrier.write_batch(vec![]).await,
        Err(StorageError::Sealed)
    ));
    assert!(matches!(barrier.rotate().await, Err(StorageError::Sealed)));
    assert!(matches!(barrier.key_status(), Err(StorageError::Sealed)));
}

#[tokio::test]
async fn uninitialized_and_double_init() {
    let barrier = Barrier::new(Arc::new(InmemBackend::new()));
    assert!(matches!(
        barrier.unseal(&root(1)).await,
        Err(BarrierError::NotInitialized)
    ));
    barrier.initialize(&root(1)).await.unwrap();
    assert!(barrier.initialize(&root(2)).await.is_err());
    barrier.unseal(&root(1)).await.unwrap();
}

#[tokio::test]
async fn reserved_keys_unreachable() {
    let (inner, barrier) = unsealed().await;
    inner.put(SEAL_CONFIG_PATH, b"{}".to_vec()).await.unwrap();
    barrier.put("core/mounts", b"m".to_vec()).await.unwrap();
    for key in [KEYRING_PATH, SEAL_CONFIG_PATH] {
        assert!(barrier.get(key).await.is_err(), "{key}");
        assert!(barrier.put(key, b"x".to_vec()).await.is_err(), "{key}");
        assert!(barrier.delete(key).await.is_err(), "{key}");
        let batch = vec![
            WriteOp::Put("ok".into(), vec![]),
            WriteOp::Delete(key.into()),
        ];
        assert!(barrier.write_batch(batch).await.is_err(), "{key}");
    }
    assert_eq!(
        barrier.get("ok").await.unwrap(),
        None,
        "a rejected batch writes nothing"
    );
    assert_eq!(barrier.list("core/").await.unwrap(), ["mounts"]);
    assert_eq!(barrier.scan("core/", 1).await.unwrap(), ["core/mounts"]);
    assert_eq!(barrier.scan("", 10).await.unwrap(), ["core/mounts"]);
    assert!(inner.get(KEYRING_PATH).await.unwrap().is_some());
}

#[tokio::test]
async fn debug_is_redacted() {
    let (_inner, barrier) = unsealed().await;
    let dbg = format!("{barrier:?}");
    assert_eq!(dbg, "Barrier { sealed: false, .. }");
}

/// Shamir shares carry no integrity check: a wrong combination must fail the keyring's AEAD
/// open (and change nothing), never unseal with garbage.
#[tokio::test]
async fn wrong_share_combination_fails_unseal() {
    use crate::seal::shamir::{combine, split};
    let inner = Arc::new(InmemBackend::new());
    let barrier = Barrier::new(inner.clone());
    let root_key = Zeroizing::new(rand::random::<[u8; 32]>());
    barrier.initialize(&root_key).await.unwrap();
    let shares = split(&root_key[..], 5, 3).unwrap();
    let other = split(&root_key[..], 5, 3).unwrap();

    let to_key = |v: Vec<u8>| Zeroizing::new(<[u8; 32]>::try_from(v.as_slice()).unwrap());
    let too_few = to_key(combine(&shares[..2]).unwrap());
    assert!(matches!(
        barrier.unseal(&too_few).await,
        Err(BarrierError::InvalidKey)
    ));
    let mut mixed = shares[..2].to_vec();
    mixed.push(other[4].clone());
    if mixed[2].last() != mixed[0].last() && mixed[2].last() != mixed[1].last() {
        let mixed = to_key(combine(&mixed).unwrap());
        assert!(matches!(
            barrier.unseal(&mixed).await,
            Err(BarrierError::InvalidKey)
        ));
    }
    assert!(barrier.is_sealed());
    let right =
        to_key(combine(&[shares[4].clone(), shares[0].clone(), shares[2].clone()]).unwrap());
    barrier.unseal(&right).await.unwrap();
    assert!(!barrier.is_sealed());
}

/// Barrier over the file engine: conformance, and the database file never holds plaintext.
#[tokio::test]
async fn over_redb_no_plaintext_in_file() {
    use crate::physical::redb::RedbBackend;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.redb");
    let secret = b"hunter2-plaintext-secret-7f3a9c";
    {
        let inner = Arc::new(RedbBackend::open(&path).unwrap());
        let barrier = Arc::new(Barrier::new(inner));
        barrier.initialize(&root(9)).await.unwrap();
        barrier.unseal(&root(9)).await.unwrap();
        exercise_backend(&Prefixed(barrier.clone(), "logical/conformance/"))
            .await
            .unwrap();
        for i in 0..50 {
            barrier
                .put(&format!("logical/kv/data/app{i}"), secret.to_vec())
                .await
                .unwrap();
        }
    }
    let file = std::fs::read(&path).unwrap();
    assert!(
        contains(&file, b"logical/kv/data/app7"),
        "keys are plaintext, as in Vault"
    );
    assert!(
        !contains(&file, secret),
        "plaintext value found in the database file"
    );

    // Reopen: still sealed, unseals with the same root key, reads back.
    let barrier = Barrier::new(Arc::new(RedbBackend::open(&path).unwrap()));
    assert!(barrier.initialized().await.unwrap());
    assert!(barrier.is_sealed());
    barrier.unseal(&root(9)).await.unwrap();
    assert_eq!(
        barrier.get("logical/kv/data/app7").await.unwrap().unwrap(),
        secret
    );
}
