//! Random identifiers on hot paths (request ids, token ids, SecretIDs, nonces).
//!
//! They come from `rand::thread_rng()`, a ChaCha-based CSPRNG seeded from the OS and reseeded
//! periodically: cryptographically secure, without a `getrandom` system call per draw. Long-lived
//! key material (the root key, keyring terms) still comes straight from the OS RNG.

use rand::{Rng, RngCore};

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
    }
}
