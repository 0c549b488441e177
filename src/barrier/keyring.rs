//! The keyring: every data-encryption key the barrier has ever used, by term.
//!
//! New writes use the active (highest) term; reads pick the key by the term in the value header,
//! so data written before a `sys/rotate` stays readable. The keyring is stored at the raw
//! physical key `core/keyring`, encrypted with the root key (term 0, AAD `core/keyring`); only
//! the right root key opens it, which is how a wrong Shamir combination is detected.
//!
//! Key bytes live in `Zeroizing` buffers on the heap and are wiped on drop. There is no `Clone`
//! (copies are explicit, see [`Keyring::rotated`]) and `Debug` prints terms, never keys.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

use super::aead::{self, AeadError};

/// The raw physical key holding the encrypted keyring.
pub const KEYRING_PATH: &str = "core/keyring";

/// Term used for the root-key encryption of the keyring itself.
const ROOT_TERM: u32 = 0;

/// A 32-byte key on the heap, wiped on drop; moving it moves only the pointer.
pub(crate) type KeyBytes = Box<Zeroizing<[u8; 32]>>;

/// A key buffer filled in place (never staged on the stack).
pub(crate) fn key_from(fill: impl FnOnce(&mut [u8; 32])) -> KeyBytes {
    let mut key: KeyBytes = Box::default();
    fill(&mut key);
    key
}

struct TermKey {
    key: KeyBytes,
    /// Unix seconds.
    install_time: i64,
}

/// The set of data-encryption keys.
pub struct Keyring {
    terms: BTreeMap<u32, TermKey>,
    active: u32,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("active_term", &self.active)
            .field("terms", &self.terms.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a stored keyring could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The root key does not open it (wrong key or tampered blob).
    #[error("Unseal failed, invalid key")]
    InvalidKey,
    /// Opened, but the contents are not a valid keyring.
    #[error("keyring is corrupt: {0}")]
    Corrupt(String),
}

/// On-disk JSON form; key bytes are base64 borrowed from zeroized buffers.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    active_term: u32,
    #[serde(borrow)]
    keys: Vec<StoredKey<'a>>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey<'a> {
    term: u32,
    key: &'a str,
    install_time: i64,
}

impl Keyring {
    /// A fresh keyring with one random key at term 1, installed at `now` (Unix seconds).
    pub fn new(now: i64) -> Self {
        let mut terms = BTreeMap::new();
        let key = key_from(|k| OsRng.fill_bytes(k));
        terms.insert(
            1,
            TermKey {
                key,
                install_time: now,
            },
        );
        Keyring { terms, active: 1 }
    }

    /// The term new writes use.
    pub fn active_term(&self) -> u32 {
        self.active
    }

    /// The key of `term`, if this keyring has it.
    pub fn key(&self, term: u32) -> Option<&[u8; 32]> {
        self.terms.get(&term).map(|t| &**t.key)
    }

    /// The key of the first term: every node of a cluster has it, and neither a rekey nor a
    /// rotation changes it (terms are only ever added).
    pub fn first_key(&self) -> Option<&[u8; 32]> {
        self.terms.values().next().map(|t| &**t.key)
    }

    /// When `term` was installed (Unix seconds).
    pub fn install_time(&self, term: u32) -> Option<i64> {
        self.terms.get(&term).map(|t| t.install_time)
    }

    /// A copy of this keyring plus a new random key, active from now on.
    pub fn rotated(&self, now: i64) -> Result<Keyring, KeyringError> {
        let next = self
            .terms
            .keys()
            .next_back()
            .and_then(|t| t.checked_add(1))
            .ok_or_else(|| KeyringError::Corrupt("key term overflow".into()))?;
        let mut terms = BTreeMap::new();
        for (&term, old) in &self.terms {
            let key = key_from(|k| k.copy_from_slice(&**old.key));
            let install_time = old.install_time;
            terms.insert(term, TermKey { key, install_time });
        }
        let key = key_from(|k| OsRng.fill_bytes(k));
        terms.insert(
            next,
            TermKey {
                key,
                install_time: now,
            },
        );
        Ok(Keyring {
            terms,
            active: next,
        })
    }

    /// The keyring encrypted with `root_key`, ready for `core/keyring`.
    pub fn seal(&self, root_key: &[u8; 32]) -> Result<Vec<u8>, KeyringError> {
        let encoded: Vec<Zeroizing<String>> = self
            .terms
            .values()
            .map(|t| Zeroizing::new(STANDARD.encode(&t.key[..])))
            .collect();
        let stored = Stored {
            active_term: self.active,
            keys: self
                .terms
                .iter()
                .zip(&encoded)
                .map(|((&term, t), key)| StoredKey {
                    term,
                    key: key.as_str(),
                    install_time: t.install_time,
                })
                .collect(),
        };
        // Sized up front so the buffer holding key material never reallocates (a reallocation
        // would leave an unwiped copy behind).
        let capacity = 64 + 128 * self.terms.len();
        let mut json = Zeroizing::new(Vec::with_capacity(capacity));
        serde_json::to_writer(&mut *json, &stored)
            .map_err(|e| KeyringError::Corrupt(e.to_string()))?;
        debug_assert_eq!(json.capacity(), capacity, "keyring JSON buffer reallocated");
        aead::encrypt(root_key, ROOT_TERM, KEYRING_PATH.as_bytes(), &json)
            .map_err(|e| KeyringError::Corrupt(e.to_string()))
    }

    /// Opens the stored keyring with `root_key`.
    pub fn open(root_key: &[u8; 32], blob: &[u8]) -> Result<Keyring, KeyringError> {
        let json = match aead::decrypt(root_key, KEYRING_PATH.as_bytes(), blob) {
            Ok(json) => Zeroizing::new(json),
            Err(AeadError::Auth) => return Err(KeyringError::InvalidKey),
            Err(e) => return Err(KeyringError::Corrupt(e.to_string())),
        };
        let stored: Stored<'_> =
            serde_json::from_slice(&json).map_err(|e| KeyringError::Corrupt(e.to_string()))?;
        let mut terms = BTreeMap::new();
        for k in &stored.keys {
            let mut buf = Zeroizing::new([0u8; 48]);
            let n = STANDARD
                .decode_slice(k.key, &mut *buf)
                .map_err(|_| KeyringError::Corrupt(format!("term {} key is not base64", k.term)))?;
            let bytes = buf.get(..n).filter(|b| b.len() == 32).ok_or_else(|| {
                KeyringError::Corrupt(format!("term {} key is not 32 bytes", k.term))
            })?;
            let key = key_from(|out| out.copy_from_slice(bytes));
            let entry = TermKey {
                key,
                install_time: k.install_time,
            };
            if terms.insert(k.term, entry).is_some() {
                return Err(KeyringError::Corrupt(format!(
                    "term {} appears twice",
                    k.term
                )));
            }
        }
        if !terms.contains_key(&stored.active_term) {
            return Err(KeyringError::Corrupt("active term has no key".into()));
        }
        Ok(Keyring {
            terms,
            active: stored.active_term,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let root = [3u8; 32];
        let ring = Keyring::new(100)
            .rotated(200)
            .unwrap()
            .rotated(300)
            .unwrap();
        assert_eq!(ring.active_term(), 3);
        let blob = ring.seal(&root).unwrap();
        let back = Keyring::open(&root, &blob).unwrap();
        assert_eq!(back.active_term(), 3);
        for term in 1..=3 {
            assert_eq!(back.key(term), ring.key(term));
            assert_eq!(back.install_time(term), ring.install_time(term));
        }
        assert_eq!(back.install_time(2), Some(200));
        assert_ne!(ring.key(1), ring.key(2));
    }

    #[test]
    fn many_terms_round_trip() {
        let root = [4u8; 32];
        let mut ring = Keyring::new(i64::MAX);
        for _ in 0..300 {
            ring = ring.rotated(i64::MAX).unwrap();
        }
        // Debug builds also assert that the JSON buffer never reallocated.
        let back = Keyring::open(&root, &ring.seal(&root).unwrap()).unwrap();
        assert_eq!(back.active_term(), 301);
        assert_eq!(back.key(17), ring.key(17));
    }

    #[test]
    fn wrong_root_key_is_invalid_key() {
        let blob = Keyring::new(1).seal(&[1u8; 32]).unwrap();
        assert!(matches!(
            Keyring::open(&[2u8; 32], &blob),
            Err(KeyringError::InvalidKey)
        ));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let ring = Keyring::new(1);
        let dbg = format!("{ring:?}");
        let b64 = STANDARD.encode(ring.key(1).unwrap());
        assert!(!dbg.contains(&b64));
        assert!(dbg.contains("active_term: 1"), "{dbg}");
    }

    #[test]
    fn corrupt_contents_rejected() {
        let root = [5u8; 32];
        let bad = aead::encrypt(
            &root,
            0,
            KEYRING_PATH.as_bytes(),
            b"{\"active_term\":2,\"keys\":[]}",
        )
        .unwrap();
        assert!(matches!(
            Keyring::open(&root, &bad),
            Err(KeyringError::Corrupt(_))
        ));
    }
}
