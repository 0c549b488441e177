//! Randomness: identifiers on hot paths, and long-lived key material.
//!
//! Identifiers (request ids, token ids, accessors, SecretIDs, AEAD nonces) come from
//! `rand::thread_rng()`, a ChaCha-based CSPRNG seeded from the OS RNG and reseeded periodically:
//! cryptographically secure, without a `getrandom` system call per draw. Long-lived key material
//! (the root key, keyring terms, Shamir share coefficients, salts and HMAC keys) comes straight
//! from the OS RNG (`OsRng`): [`os_key`] here, `OsRng` in `barrier/keyring.rs` and `seal/shamir.rs`.

use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random version-4 UUID in its usual text form.
pub fn uuid_v4() -> String {
    let bytes: [u8; 16] = rand::thread_rng().r#gen();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// `n` random base62 characters.
pub fn base62(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| {
            char::from(
                BASE62
                    .get(rng.gen_range(0..BASE62.len()))
                    .copied()
                    .unwrap_or(b'0'),
            )
        })
        .collect()
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    rand::thread_rng().fill_bytes(buf);
}

/// `N` bytes of key material straight from the OS RNG, wiped on drop.
pub fn os_key<const N: usize>() -> Result<Zeroizing<[u8; N]>> {
    let mut key = Zeroizing::new([0u8; N]);
    OsRng
        .try_fill_bytes(key.as_mut_slice())
        .map_err(|e| Error::internal(format!("reading the OS random number generator: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_uniqueness() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes().get(14), Some(&b'4'));
        assert_ne!(uuid_v4(), uuid_v4());
        let t = base62(24);
        assert_eq!(t.len(), 24);
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
        let mut a = [0u8; 12];
        let mut b = [0u8; 12];
        fill(&mut a);
        fill(&mut b);
        assert_ne!(a, b);
        let k1 = os_key::<32>().unwrap();
        let k2 = os_key::<32>().unwrap();
        assert_ne!(*k1, *k2);
        assert_ne!(*k1, [0u8; 32]);
    }
}
