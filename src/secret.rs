//! A string that must never be printed: tokens, secret IDs, unseal keys.
//!
//! `Debug` and `Display` are redacted, the bytes are zeroed on drop, and comparison is
//! constant-time.

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// A secret string with a redacted `Debug` and zeroize-on-drop.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a string.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret value; call sites are the places to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality with another secret value.
    pub fn ct_eq(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hvs.supersecret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(s.ct_eq("hvs.supersecret"));
        assert!(!s.ct_eq("hvs.other"));
    }
}
