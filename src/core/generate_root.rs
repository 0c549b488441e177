//! Root token generation from a threshold of unseal keys (`sys/generate-root/*`, Vault's API, and
//! OpenBao's token-protected `sys/generate-root-token/*`), plus `sys/decode-token`.
//!
//! The operator starts an attempt with a one-time password (or lets the server draw one), then
//! hands in unseal keys. When they rebuild the root key, a new root token is created and returned
//! only XOR-ed with the OTP (base64 without padding), so whoever watches the exchange without the
//! OTP learns nothing. The OTP has the length of a root token. PGP-encrypted tokens are refused.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Core;
use super::seal::{SealConfig, UNSEAL_FAILED, combine_key};
use crate::error::{Error, Result};

/// Length of a root token (`hvs.` and 24 base62 characters), hence of the OTP.
pub const OTP_LENGTH: usize = 28;

/// An attempt in progress (memory only).
pub struct Attempt {
    nonce: String,
    otp: Zeroizing<String>,
    progress: Vec<Zeroizing<Vec<u8>>>,
}

/// `token` XOR `otp`, base64 without padding. Both must have the same length.
pub fn encode_token(token: &str, otp: &str) -> Result<String> {
    let xored = xor(token.as_bytes(), otp.as_bytes())?;
    Ok(STANDARD_NO_PAD.encode(xored.as_slice()))
}

/// The inverse of [`encode_token`], with OpenBao's error texts.
pub fn decode_token(encoded: &str, otp: &str) -> Result<Zeroizing<String>> {
    if encoded.is_empty() || otp.is_empty() {
        return Err(Error::bad("provided 'encoded_token' or 'otp' is empty"));
    }
    let bytes = Zeroizing::new(
        STANDARD_NO_PAD
            .decode(encoded.trim())
            .map_err(|e| Error::bad(format!("error decoding base64'd token: {e}")))?,
    );
    let token =
        xor(&bytes, otp.as_bytes()).map_err(|e| Error::bad(format!("error xoring token: {e}")))?;
    Ok(Zeroizing::new(String::from_utf8_lossy(&token).into_owned()))
}

fn xor(a: &[u8], b: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if a.len() != b.len() {
        return Err(Error::bad(format!(
            "length of byte slices is not equivalent: {} != {}",
            a.len(),
            b.len()
        )));
    }
    Ok(Zeroizing::new(
        a.iter().zip(b).map(|(x, y)| x ^ y).collect(),
    ))
}

fn status_json(config: &SealConfig, attempt: Option<&Attempt>, otp: &str) -> Value {
    let mut v = json!({
        "nonce": "",
        "started": false,
        "progress": 0,
        "required": config.secret_threshold,
        "complete": false,
        "encoded_token": "",
        "encoded_root_token": "",
        "pgp_fingerprint": "",
        "otp": otp,
        "otp_length": OTP_LENGTH,
    });
    if let (Some(a), Some(o)) = (attempt, v.as_object_mut()) {
        o.insert("nonce".into(), json!(a.nonce));
        o.insert("started".into(), json!(true));
        o.insert("progress".into(), json!(a.progress.len()));
    }
    v
}

impl Core {
    /// The status of root generation (both APIs answer the same fields).
    pub async fn generate_root_status(&self) -> Result<Value> {
        let config = self.unsealed_seal_config().await?;
        let attempt = self.generate_root.lock().await;
        Ok(status_json(&config, attempt.as_ref(), ""))
    }

    /// Starts an attempt. Without `otp` (and without `pgp_key`), one is drawn and returned once.
    pub async fn generate_root_init(
        &self,
        otp: Option<&str>,
        pgp_key: Option<&str>,
    ) -> Result<Value> {
        let otp = otp.filter(|o| !o.is_empty());
        if pgp_key.is_some_and(|k| !k.is_empty()) && otp.is_none() {
            return Err(Error::bad(
                "PGP-encrypted root tokens are not supported by Coffer; use an OTP",
            ));
        }
        let (otp, generated) = match otp {
            Some(o) if o.len() != OTP_LENGTH => {
                return Err(Error::bad("OTP string has incorrect length"));
            }
            Some(o) => (Zeroizing::new(o.to_string()), false),
            None => (Zeroizing::new(crate::ids::base62(OTP_LENGTH)), true),
        };
        let config = self.unsealed_seal_config().await?;
        let mut guard = self.generate_root.lock().await;
        if guard.is_some() {
            return Err(Error::bad(
                "root generation already in progress for this namespace",
            ));
        }
        let attempt = Attempt {
            nonce: crate::ids::uuid_v4(),
            otp,
            progress: Vec::new(),
        };
        let shown = if generated {
            attempt.otp.to_string()
        } else {
            String::new()
        };
        let out = status_json(&config, Some(&attempt), &shown);
        tracing::info!("root generation initialized");
        *guard = Some(attempt);
        Ok(out)
    }

    /// Cancels the attempt and forgets the keys handed in.
    pub async fn generate_root_cancel(&self) -> Result<()> {
        self.unsealed_seal_config().await?;
        *self.generate_root.lock().await = None;
        Ok(())
    }

    /// One unseal key. At the threshold a new root token is created and returned encoded.
    pub async fn generate_root_update(&self, key: &str, nonce: &str) -> Result<Value> {
        let part = super::rekey::parse_share(Some(key))?;
        let config = self.unsealed_seal_config().await?;
        let mut guard = self.generate_root.lock().await;
        let Some(attempt) = guard.as_mut() else {
            return Err(Error::bad("no root generation in progress"));
        };
        if nonce != attempt.nonce {
            return Err(Error::bad(format!(
                "incorrect nonce supplied; nonce for this root generation operation is {:?}",
                attempt.nonce
            )));
        }
        let duplicate = attempt.progress.iter().fold(false, |found, p| {
            found | bool::from(p.as_slice().ct_eq(&part))
        });
        if duplicate {
            return Err(Error::bad(
                "given key has already been provided during this generation operation",
            ));
        }
        attempt.progress.push(part);
        let progress = attempt.progress.len();
        let required = usize::from(config.secret_threshold);
        let mut out = status_json(&config, Some(attempt), "");
        if progress < required {
            return Ok(out);
        }
        let parts = std::mem::take(&mut attempt.progress);
        let root_key = combine_key(config.secret_threshold, &parts);
        drop(parts);
        let authentic = match &root_key {
            Some(k) => self.barrier.is_root_key(k)?,
            None => false,
        };
        if !authentic {
            tracing::warn!("root generation aborted: the unseal keys do not rebuild the root key");
            return Err(Error::bad(format!(
                "root generation aborted: unable to authenticate: {UNSEAL_FAILED}"
            )));
        }
        let token = self.create_root_token(None).await?;
        let encoded = encode_token(token.expose(), &attempt.otp)?;
        *guard = None;
        tracing::info!("root generation finished");
        if let Some(o) = out.as_object_mut() {
            o.insert("complete".into(), json!(true));
            o.insert("progress".into(), json!(progress));
            o.insert("encoded_token".into(), json!(encoded));
            o.insert("encoded_root_token".into(), json!(encoded));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let token = "hvs.abcdefghijklmnopqrstuvwx";
        let otp = crate::ids::base62(token.len());
        let enc = encode_token(token, &otp).unwrap();
        assert!(!enc.ends_with('='));
        assert_eq!(decode_token(&enc, &otp).unwrap().as_str(), token);
    }

    #[test]
    fn decode_errors_match_openbao() {
        let err = |e: &str, o: &str| decode_token(e, o).unwrap_err().to_string();
        assert_eq!(err("", "x"), "provided 'encoded_token' or 'otp' is empty");
        assert_eq!(
            err("AAAA", "xy"),
            "error xoring token: length of byte slices is not equivalent: 3 != 2"
        );
        assert!(err("!!!", "xy").starts_with("error decoding base64'd token: "));
    }
}
