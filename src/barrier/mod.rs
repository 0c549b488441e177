//! The encryption barrier: the only door between the core and the physical engine.
//!
//! Data path: core → storage views → **barrier** → physical engine (inmem, redb, …). The barrier
//! implements [`PhysicalBackend`] itself, so the core's `Storage` views sit on top of it
//! unchanged. Values are encrypted with the keyring's active key (see [`aead`] for the format,
//! AAD = storage key); keys stay plaintext, as in Vault, so `list` and `delete` pass through.
//! While sealed every operation answers [`StorageError::Sealed`].
//!
//! The keyring (`core/keyring`) is encrypted with the root key; the seal configuration
//! (`core/seal-config`) is written in plaintext by the seal straight to the inner engine. Both
//! raw keys are unreachable through the barrier.

pub mod aead;
pub mod keyring;
#[cfg(test)]
mod tests;

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock, rfc3339_nanos, unix_secs};
use crate::physical::{Physical, PhysicalBackend, StorageError, WriteOp};
use crate::telemetry::{self, Timer};
use keyring::{KeyBytes, Keyring, KeyringError, key_from};

pub use keyring::KEYRING_PATH;

/// The raw physical key of the seal configuration (plaintext, written by the seal).
pub const SEAL_CONFIG_PATH: &str = "core/seal-config";

/// Raw keys that never pass through the barrier.
const RESERVED: [&str; 2] = [KEYRING_PATH, SEAL_CONFIG_PATH];

/// Errors from [`Barrier::unseal`].
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    /// The root key does not open the keyring; nothing changed.
    #[error("Unseal failed, invalid key")]
    InvalidKey,
    /// No keyring has been stored yet.
    #[error("Vault is not initialized")]
    NotInitialized,
    /// The engine failed or the stored keyring is unreadable.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What `sys/key-status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyStatus {
    /// The active keyring term.
    pub term: u32,
    /// When the active term was installed (RFC 3339).
    pub install_time: String,
    /// Encryptions with the active term since this process unsealed (not persisted).
    pub encryptions: u64,
}

/// Everything that exists only while unsealed.
struct Unsealed {
    root_key: Arc<KeyBytes>,
    keyring: Keyring,
    encryptions: AtomicU64,
}

/// The encryption barrier over an inner engine.
pub struct Barrier {
    inner: Physical,
    state: RwLock<Option<Arc<Unsealed>>>,
    /// Serialises keyring changes (initialize, unseal, rotate).
    keyring_lock: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

fn storage_err(e: KeyringError) -> StorageError {
    StorageError::other(e)
}

fn reject_reserved(key: &str) -> Result<(), StorageError> {
    if RESERVED.contains(&key) {
        return Err(StorageError::other(format!(
            "{key} is reserved and not reachable through the barrier"
        )));
    }
    Ok(())
}

impl Barrier {
    /// A sealed barrier over `inner`, using the system clock for key install times.
    pub fn new(inner: Physical) -> Self {
        Self::with_clock(inner, Arc::new(SystemClock))
    }

    /// A sealed barrier with an explicit clock.
    pub fn with_clock(inner: Physical, clock: Arc<dyn Clock>) -> Self {
        Barrier {
            inner,
            state: RwLock::new(None),
            keyring_lock: tokio::sync::Mutex::new(()),
            clock,
        }
    }

    /// The engine below the barrier. Only for what is deliberately stored in plaintext: the
    /// seal configuration at [`SEAL_CONFIG_PATH`] (needed before unseal). Never for data.
    pub fn inner(&self) -> &Physical {
        &self.inner
    }

    /// Whether a keyring has been stored (the barrier, hence Vault, is initialised).
    pub async fn initialized(&self) -> Result<bool, StorageError> {
        Ok(self.inner.get(KEYRING_PATH).await?.is_some())
    }

    /// Creates and stores a fresh keyring (term 1) encrypted with `root_key`. Stays sealed.
    pub async fn initialize(&self, root_key: &Zeroizing<[u8; 32]>) -> Result<(), StorageError> {
        let _guard = self.keyring_lock.lock().await;
        if self.initialized().await? {
            return Err(StorageError::other("Vault is already initialized"));
        }
        let ring = Keyring::new(self.now());
        let blob = ring.seal(root_key).map_err(storage_err)?;
        self.inner.put(KEYRING_PATH, blob).await
    }

    /// Opens the keyring with `root_key`. A wrong key fails with [`BarrierError::InvalidKey`]
    /// and changes nothing; unsealing an unsealed barrier verifies the key and keeps its state.
    pub async fn unseal(&self, root_key: &Zeroizing<[u8; 32]>) -> Result<(), BarrierError> {
        let _guard = self.keyring_lock.lock().await;
        let blob = self
            .inner
            .get(KEYRING_PATH)
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        let keyring = match Keyring::open(root_key, &blob) {
            Ok(k) => k,
            Err(KeyringError::InvalidKey) => return Err(BarrierError::InvalidKey),
            Err(e) => return Err(BarrierError::Storage(storage_err(e))),
        };
        let mut state = self.write_state();
        if state.is_none() {
            let root_key = Arc::new(key_from(|k| k.copy_from_slice(&root_key[..])));
            *state = Some(Arc::new(Unsealed {
                root_key,
                keyring,
                encryptions: AtomicU64::new(0),
            }));
        }
        Ok(())
    }

    /// Reads the stored keyring again with the root key held (HA step-up: the active node may
    /// have rotated it since this node unsealed). [`BarrierError::InvalidKey`] when the root key
    /// no longer opens it (a rekey happened elsewhere): the node must be unsealed again.
    pub async fn reload(&self) -> Result<(), BarrierError> {
        let _guard = self.keyring_lock.lock().await;
        let current = self.current()?;
        let blob = self
            .inner
            .get(KEYRING_PATH)
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        let keyring = match Keyring::open(&current.root_key, &blob) {
            Ok(k) => k,
            Err(KeyringError::InvalidKey) => return Err(BarrierError::InvalidKey),
            Err(e) => return Err(BarrierError::Storage(storage_err(e))),
        };
        let mut state = self.write_state();
        if state.as_ref().is_some_and(|s| Arc::ptr_eq(s, &current)) {
            // The count of encryptions under the active key goes on while that key stays
            // active (a standby reloading races a step-up that then encrypts).
            let same_term = keyring.active_term() == current.keyring.active_term();
            let encryptions = if same_term {
                current.encryptions.load(Ordering::Relaxed)
            } else {
                0
            };
            *state = Some(Arc::new(Unsealed {
                root_key: current.root_key.clone(),
                keyring,
                encryptions: AtomicU64::new(encryptions),
            }));
        }
        Ok(())
    }

    /// A key for `label` derived from the keyring's first term key (HMAC-SHA256): the same on
    /// every unsealed node of a cluster, never stored, and unchanged by a rekey (which replaces
    /// the root key on the active node while a standby keeps the old one in memory) or a
    /// rotation. HA nodes sign forwarded client addresses with it.
    pub fn derive_key(&self, label: &[u8]) -> Result<Zeroizing<[u8; 32]>, StorageError> {
        use hmac::Mac;
        let current = self.current()?;
        let base = current
            .keyring
            .first_key()
            .ok_or_else(|| StorageError::other("the keyring has no key"))?;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(base).map_err(StorageError::other)?;
        mac.update(label);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        Ok(out)
    }

    /// Drops the keyring and root key (zeroized once in-flight operations release them).
    pub fn seal(&self) {
        *self.write_state() = None;
    }

    /// Whether the barrier is sealed.
    pub fn is_sealed(&self) -> bool {
        self.current().is_err()
    }

    /// Adds a new key term that all new writes use; older terms still decrypt. The keyring is
    /// re-persisted (encrypted with the root key) before the new term is used.
    pub async fn rotate(&self) -> Result<KeyStatus, StorageError> {
        let _guard = self.keyring_lock.lock().await;
        let current = self.current()?;
        let keyring = current.keyring.rotated(self.now()).map_err(storage_err)?;
        let blob = keyring.seal(&current.root_key).map_err(storage_err)?;
        self.inner.put(KEYRING_PATH, blob).await?;
        let next = Arc::new(Unsealed {
            root_key: current.root_key.clone(),
            keyring,
            encryptions: AtomicU64::new(0),
        });
        let mut state = self.write_state();
        // Sealed while persisting: the new keyring is on disk and loads at the next unseal.
        if !state.as_ref().is_some_and(|s| Arc::ptr_eq(s, &current)) {
            return Err(StorageError::Sealed);
        }
        *state = Some(next.clone());
        drop(state);
        Ok(Self::status_of(&next))
    }

    /// Encryptions with the active term since unseal, and when that term was installed (Unix
    /// seconds): what automatic rotation decides on.
    pub fn active_term_usage(&self) -> Result<(u64, i64), StorageError> {
        let s = self.current()?;
        let term = s.keyring.active_term();
        Ok((
            s.encryptions.load(Ordering::Relaxed),
            s.keyring.install_time(term).unwrap_or(0),
        ))
    }

    /// True when `root_key` is the key that opened this barrier (constant time).
    pub fn is_root_key(&self, root_key: &[u8; 32]) -> Result<bool, StorageError> {
        let current = self.current()?;
        Ok(bool::from(subtle::ConstantTimeEq::ct_eq(
            &current.root_key[..],
            &root_key[..],
        )))
    }

    /// Re-encrypts the keyring under `new_root_key` (the terms are unchanged) and stores it in
    /// one batch with `seal_config` (the plaintext seal configuration). From then on only the new
    /// root key opens the barrier.
    pub async fn rekey(
        &self,
        new_root_key: &Zeroizing<[u8; 32]>,
        seal_config: Vec<u8>,
    ) -> Result<(), StorageError> {
        let _guard = self.keyring_lock.lock().await;
        let current = self.current()?;
        let blob = current.keyring.seal(new_root_key).map_err(storage_err)?;
        let keyring = Keyring::open(new_root_key, &blob).map_err(storage_err)?;
        self.inner
            .write_batch(vec![
                WriteOp::Put(KEYRING_PATH.to_string(), blob),
                WriteOp::Put(SEAL_CONFIG_PATH.to_string(), seal_config),
            ])
            .await?;
        let next = Arc::new(Unsealed {
            root_key: Arc::new(key_from(|k| k.copy_from_slice(&new_root_key[..]))),
            keyring,
            encryptions: AtomicU64::new(current.encryptions.load(Ordering::Relaxed)),
        });
        let mut state = self.write_state();
        // Sealed while persisting: the rekey has happened all the same (the new keyring is on
        // disk and opens with the new key), so it must succeed, or the new keys would be lost.
        if state.as_ref().is_some_and(|s| Arc::ptr_eq(s, &current)) {
            *state = Some(next);
        }
        Ok(())
    }

    /// The active term and its install time.
    pub fn key_status(&self) -> Result<KeyStatus, StorageError> {
        let s = self.current()?;
        Ok(Self::status_of(&s))
    }

    fn status_of(s: &Unsealed) -> KeyStatus {
        let term = s.keyring.active_term();
        let secs = s.keyring.install_time(term).unwrap_or(0);
        let at = crate::clock::from_unix_nanos(i128::from(secs) * 1_000_000_000);
        KeyStatus {
            term,
            install_time: rfc3339_nanos(at),
            encryptions: s.encryptions.load(Ordering::Relaxed),
        }
    }

    fn now(&self) -> i64 {
        unix_secs(self.clock.now())
    }

    fn current(&self) -> Result<Arc<Unsealed>, StorageError> {
        let guard = match self.state.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.clone().ok_or(StorageError::Sealed)
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, Option<Arc<Unsealed>>> {
        // The guarded value is a plain Option swap, so a poisoned lock holds consistent data.
        match self.state.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn encrypt(s: &Unsealed, key: &str, value: &[u8]) -> Result<Vec<u8>, StorageError> {
        let term = s.keyring.active_term();
        let k = s
            .keyring
            .key(term)
            .ok_or_else(|| StorageError::other("active key term missing"))?;
        let out = aead::encrypt(k, term, key.as_bytes(), value)
            .map_err(|e| StorageError::other(format!("encrypting {key}: {e}")))?;
        s.encryptions.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }

    fn decrypt(s: &Unsealed, key: &str, value: &[u8]) -> Result<Vec<u8>, StorageError> {
        let fail = |e: aead::AeadError| StorageError::other(format!("decrypting {key}: {e}"));
        let term = aead::term(value).map_err(fail)?;
        let k = s
            .keyring
            .key(term)
            .ok_or_else(|| StorageError::other(format!("decrypting {key}: unknown term {term}")))?;
        aead::decrypt(k, key.as_bytes(), value).map_err(fail)
    }
}

#[async_trait::async_trait]
impl PhysicalBackend for Barrier {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        static TIMER: OnceLock<metrics::Histogram> = OnceLock::new();
        let _timer = Timer::start(&TIMER, telemetry::BARRIER_GET);
        let s = self.current()?;
        reject_reserved(key)?;
        match self.inner.get(key).await? {
            Some(v) => Self::decrypt(&s, key, &v).map(Some),
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        static TIMER: OnceLock<metrics::Histogram> = OnceLock::new();
        let _timer = Timer::start(&TIMER, telemetry::BARRIER_PUT);
        let s = self.current()?;
        reject_reserved(key)?;
        let sealed = Self::encrypt(&s, key, &value)?;
        drop(s);
        self.inner.put(key, sealed).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        static TIMER: OnceLock<metrics::Histogram> = OnceLock::new();
        let _timer = Timer::start(&TIMER, telemetry::BARRIER_DELETE);
        self.current()?;
        reject_reserved(key)?;
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        static TIMER: OnceLock<metrics::Histogram> = OnceLock::new();
        let _timer = Timer::start(&TIMER, telemetry::BARRIER_LIST);
        self.current()?;
        let mut out = self.inner.list(prefix).await?;
        out.retain(|child| {
            !RESERVED
                .iter()
                .any(|r| r.strip_prefix(prefix) == Some(child))
        });
        Ok(out)
    }

    async fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        self.current()?;
        // Keys are not encrypted, so the engine's bounded range scan serves directly.
        let mut out = self
            .inner
            .scan(prefix, limit.saturating_add(RESERVED.len()))
            .await?;
        out.retain(|key| !RESERVED.contains(&key.as_str()));
        out.truncate(limit);
        Ok(out)
    }

    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<(), StorageError> {
        let s = self.current()?;
        let mut sealed = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                WriteOp::Put(k, v) => {
                    reject_reserved(&k)?;
                    let c = Self::encrypt(&s, &k, &v)?;
                    sealed.push(WriteOp::Put(k, c));
                }
                WriteOp::Delete(k) => {
                    reject_reserved(&k)?;
                    sealed.push(WriteOp::Delete(k));
                }
            }
        }
        drop(s);
        self.inner.write_batch(sealed).await
    }
}
