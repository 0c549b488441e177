//! The barrier's value format: AES-256-GCM with the storage key as associated data.
//!
//! Every value the barrier writes to the physical engine is
//! `[term: u32 BE][version: u8 = 1][nonce: 12][ciphertext ‖ tag: 16]`. The term picks the
//! keyring key; the storage key is the AAD, so a ciphertext copied to another key fails to open
//! (OpenBao's barrier version 2 does the same). The golden vectors below pin the format: if they
//! break, data written by an earlier Coffer can no longer be read.
//!
//! Nonces are 96 random bits from the OS per encryption. Under one key the collision bound
//! suggests staying well below 2^32 encryptions; `sys/rotate` starts a fresh key.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use zeroize::Zeroizing;

/// The only format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Length of the AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the authentication tag.
pub const TAG_LEN: usize = 16;
/// `term (4) + version (1) + nonce (12)`.
pub const HEADER_LEN: usize = 4 + 1 + NONCE_LEN;

/// Why a value could not be sealed or opened. Carries no key or plaintext bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    /// Shorter than header plus tag.
    #[error("ciphertext is truncated")]
    Truncated,
    /// A version byte this build does not know.
    #[error("unsupported barrier value version {0}")]
    Version(u8),
    /// Wrong key, wrong storage key (AAD) or tampered bytes.
    #[error("cipher: message authentication failed")]
    Auth,
    /// The plaintext exceeds AES-GCM's limits.
    #[error("encryption failed")]
    Encrypt,
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    // With the `zeroize` feature the expanded key schedule is wiped when the cipher drops.
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
}

/// Encrypts `plaintext` under `key` (keyring term `term`) with a fresh random nonce.
pub fn encrypt(
    key: &[u8; 32],
    term: u32,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, AeadError> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::ids::fill(&mut nonce);
    encrypt_with_nonce(key, term, &nonce, aad, plaintext)
}

/// Encrypts with a caller-chosen nonce. Only for golden vectors: a nonce must never repeat
/// under one key, so production code calls [`encrypt`].
pub fn encrypt_with_nonce(
    key: &[u8; 32],
    term: u32,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, AeadError> {
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&term.to_be_bytes());
    out.push(VERSION);
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let body = out.get_mut(HEADER_LEN..).ok_or(AeadError::Encrypt)?;
    let tag = cipher(key)
        .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, body)
        .map_err(|_| AeadError::Encrypt)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// The keyring term a stored value was written under (checks length and version too).
pub fn term(value: &[u8]) -> Result<u32, AeadError> {
    if value.len() < HEADER_LEN + TAG_LEN {
        return Err(AeadError::Truncated);
    }
    let (term, rest) = value.split_at(4);
    match rest.first() {
        Some(&VERSION) => {}
        Some(&v) => return Err(AeadError::Version(v)),
        None => return Err(AeadError::Truncated),
    }
    let bytes: [u8; 4] = term.try_into().map_err(|_| AeadError::Truncated)?;
    Ok(u32::from_be_bytes(bytes))
}

/// Opens a value written by [`encrypt`] with `key` and the same `aad`.
pub fn decrypt(key: &[u8; 32], aad: &[u8], value: &[u8]) -> Result<Vec<u8>, AeadError> {
    term(value)?;
    let nonce = value.get(5..HEADER_LEN).ok_or(AeadError::Truncated)?;
    let body = value.get(HEADER_LEN..).ok_or(AeadError::Truncated)?;
    let (ct, tag) = body.split_at(body.len() - TAG_LEN);
    // Wiped if anything fails after decryption started; taken out intact on success.
    let mut buf = Zeroizing::new(ct.to_vec());
    cipher(key)
        .decrypt_in_place_detached(
            Nonce::from_slice(nonce),
            aad,
            &mut buf,
            Tag::from_slice(tag),
        )
        .map_err(|_| AeadError::Auth)?;
    Ok(std::mem::take(&mut *buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key32(v: &[u8]) -> [u8; 32] {
        v.try_into().unwrap()
    }

    /// The GCM specification's AES-256 test case 16 (McGrew & Viega), in barrier framing.
    #[test]
    fn gcm_spec_test_case_16() {
        let key = key32(
            &hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
                .unwrap(),
        );
        let nonce: [u8; 12] = hex::decode("cafebabefacedbaddecaf888")
            .unwrap()
            .try_into()
            .unwrap();
        let pt = hex::decode(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        )
        .unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let ct = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
                  8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";
        let tag = "76fc6ece0f4e1768cddf8853bb2d551b";
        let v = encrypt_with_nonce(&key, 7, &nonce, &aad, &pt).unwrap();
        assert_eq!(
            hex::encode(&v),
            format!("0000000701cafebabefacedbaddecaf888{ct}{tag}")
        );
        assert_eq!(decrypt(&key, &aad, &v).unwrap(), pt);
    }

    /// Coffer's own golden vector: a storage path as AAD, a short plaintext, term 1.
    #[test]
    fn golden_vector() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let nonce: [u8; 12] = std::array::from_fn(|i| 0xa0 + i as u8);
        let aad = b"logical/7c9d6c9e-golden/data/app";
        let v = encrypt_with_nonce(&key, 1, &nonce, aad, b"hello, coffer").unwrap();
        assert_eq!(hex::encode(&v), GOLDEN);
        assert_eq!(term(&v).unwrap(), 1);
        assert_eq!(decrypt(&key, aad, &v).unwrap(), b"hello, coffer");
    }
    const GOLDEN: &str = "0000000101a0a1a2a3a4a5a6a7a8a9aaab\
                          8e7d10412ae722dc0d03e1b675e38bb6a7a9788c5318bccc0751e263ad";

    #[test]
    fn moved_ciphertext_fails() {
        let key = [9u8; 32];
        let v = encrypt(&key, 1, b"a/b", b"secret").unwrap();
        assert_eq!(decrypt(&key, b"a/c", &v), Err(AeadError::Auth));
        assert_eq!(decrypt(&[8u8; 32], b"a/b", &v), Err(AeadError::Auth));
        assert_eq!(decrypt(&key, b"a/b", &v).unwrap(), b"secret");
    }

    #[test]
    fn tampering_fails() {
        let key = [9u8; 32];
        let v = encrypt(&key, 1, b"k", b"some plaintext").unwrap();
        for i in HEADER_LEN - NONCE_LEN..v.len() {
            let mut t = v.clone();
            t[i] ^= 0x01;
            assert_eq!(decrypt(&key, b"k", &t), Err(AeadError::Auth), "byte {i}");
        }
        let mut t = v.clone();
        t[4] = 2;
        assert_eq!(decrypt(&key, b"k", &t), Err(AeadError::Version(2)));
        assert_eq!(decrypt(&key, b"k", &v[..20]), Err(AeadError::Truncated));
    }

    #[test]
    fn fresh_nonce_per_encryption() {
        let key = [1u8; 32];
        let a = encrypt(&key, 1, b"k", b"same").unwrap();
        let b = encrypt(&key, 1, b"k", b"same").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), HEADER_LEN + 4 + TAG_LEN);
    }
}
