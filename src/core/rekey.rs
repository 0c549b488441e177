//! Rekey: new unseal keys from a threshold of the current ones (`sys/rekey/*`, and OpenBao's
//! `sys/rotate/root/*`, which is the same operation with its own wording).
//!
//! The operator starts an attempt with the new share count and threshold, then hands in the
//! current unseal keys. When the threshold is reached and they rebuild the current root key, a new
//! root key is drawn, the keyring is re-encrypted under it and stored together with the new seal
//! configuration; the old unseal keys stop working at once. With `require_verification`, the new
//! keys are only returned at first: they take effect once a threshold of them has been handed back
//! to `verify`, so a mistake in distributing them cannot lock the operators out.
//!
//! Attempts live in memory only and are forgotten when the server seals, as are the keys handed in.
//! PGP-encrypted shares and their backup are not supported and are refused.

use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Core;
use super::seal::{SealConfig, check_config, combine_key, parse_key, split_key, to_hex};
use crate::error::{Error, Result};

/// Smallest and largest accepted unseal key (bytes), as Vault reports them: an AES-128 key and a
/// 32-byte key plus the Shamir share's one-byte tag.
const KEY_MIN: usize = 16;
const KEY_MAX: usize = 33;

/// The threshold of current keys does not rebuild the root key (OpenBao's text).
const ROOT_KEY_FAILED: &str = "failed to read root key: invalid key: failed to decrypt keys from storage: cipher: message authentication failed";

/// Which API is asking: the words differ between Vault's `sys/rekey` and OpenBao's
/// `sys/rotate/root`, the operation does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `sys/rekey/*` (Vault's wording).
    Rekey,
    /// `sys/rotate/root/*` (OpenBao's wording).
    Rotate,
}

impl Flavor {
    fn noun(self) -> &'static str {
        match self {
            Flavor::Rekey => "rekey",
            Flavor::Rotate => "rotation",
        }
    }

    fn config_word(self) -> &'static str {
        match self {
            Flavor::Rekey => "rekey",
            Flavor::Rotate => "rotate",
        }
    }
}

/// What `sys/rekey/init` asked for.
#[derive(Debug, Clone, Default)]
pub struct RekeyRequest {
    /// New number of shares.
    pub secret_shares: i64,
    /// New threshold.
    pub secret_threshold: i64,
    /// Whether PGP keys were given (refused).
    pub pgp_keys: bool,
    /// Whether a backup was asked for (refused).
    pub backup: bool,
    /// New keys must be handed back before they take effect.
    pub require_verification: bool,
}

/// An attempt in progress (memory only).
pub struct Attempt {
    config: SealConfig,
    nonce: String,
    require_verification: bool,
    progress: Vec<Zeroizing<Vec<u8>>>,
    verification: Option<Verification>,
}

/// The new key waiting for its shares to be handed back.
struct Verification {
    nonce: String,
    new_root_key: Zeroizing<[u8; 32]>,
    progress: Vec<Zeroizing<Vec<u8>>>,
}

pub(super) fn parse_share(key: Option<&str>) -> Result<Zeroizing<Vec<u8>>> {
    let key = key
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::bad("'key' must be specified in request body as JSON"))?;
    let part =
        parse_key(key).ok_or_else(|| Error::bad("'key' must be a valid hex or base64 string"))?;
    if part.len() < KEY_MIN {
        return Err(Error::bad(format!(
            "key is shorter than minimum {KEY_MIN} bytes"
        )));
    }
    if part.len() > KEY_MAX {
        return Err(Error::bad(format!(
            "key is longer than maximum {KEY_MAX} bytes"
        )));
    }
    Ok(part)
}

fn contains(parts: &[Zeroizing<Vec<u8>>], part: &[u8]) -> bool {
    parts.iter().fold(false, |found, p| {
        found | bool::from(p.as_slice().ct_eq(part))
    })
}

fn new_nonce() -> String {
    crate::ids::uuid_v4()
}

impl Core {
    /// `GET sys/rekey/init`: Vault's raw status object.
    pub async fn rekey_status(&self) -> Result<Value> {
        let current = self.unsealed_seal_config().await?;
        let attempt = self.rekey.lock().await;
        Ok(status_json(&current, attempt.as_ref()))
    }

    /// `PUT sys/rekey/init`: starts an attempt; answers the status.
    pub async fn rekey_init(&self, req: &RekeyRequest, flavor: Flavor) -> Result<Value> {
        if req.backup && !req.pgp_keys {
            return Err(Error::bad(
                "cannot request a backup of the new keys without providing PGP keys for encryption",
            ));
        }
        if req.pgp_keys {
            return Err(Error::bad(
                "PGP-encrypted unseal keys are not supported by Coffer",
            ));
        }
        let config = check_config(req.secret_shares, req.secret_threshold).map_err(|e| {
            Error::bad(format!(
                "invalid {} seal configuration: {e}",
                flavor.config_word()
            ))
        })?;
        let current = self.unsealed_seal_config().await?;
        let mut attempt = self.rekey.lock().await;
        if attempt.is_some() {
            return Err(Error::bad(format!("{} already in progress", flavor.noun())));
        }
        let started = Attempt {
            config,
            nonce: new_nonce(),
            require_verification: req.require_verification,
            progress: Vec::new(),
            verification: None,
        };
        tracing::info!(
            seal.shares = config.secret_shares,
            seal.threshold = config.secret_threshold,
            verification_required = req.require_verification,
            "rekey initialized"
        );
        *attempt = Some(started);
        Ok(status_json(&current, attempt.as_ref()))
    }

    /// `DELETE sys/rekey/init`: forgets the attempt and every key handed in.
    pub async fn rekey_cancel(&self) -> Result<()> {
        self.unsealed_seal_config().await?;
        *self.rekey.lock().await = None;
        Ok(())
    }

    /// `PUT sys/rekey/update`: one current unseal key. At the threshold the rekey happens (or,
    /// with verification required, the new keys are returned for verification).
    pub async fn rekey_update(
        &self,
        key: Option<&str>,
        nonce: &str,
        flavor: Flavor,
    ) -> Result<Value> {
        let part = parse_share(key)?;
        let current = self.unsealed_seal_config().await?;
        let mut guard = self.rekey.lock().await;
        let Some(attempt) = guard.as_mut() else {
            return Err(Error::bad(match flavor {
                Flavor::Rekey => "no barrier rekey in progress",
                Flavor::Rotate => "no rotation in progress",
            }));
        };
        if let Some(v) = &attempt.verification {
            let what = match flavor {
                Flavor::Rekey => "rekey operation",
                Flavor::Rotate => "rotation",
            };
            return Err(Error::bad(format!(
                "{what} already finished; verification must be performed; nonce for the verification operation is {:?}",
                v.nonce
            )));
        }
        if nonce != attempt.nonce {
            return Err(Error::bad(match flavor {
                Flavor::Rekey => format!(
                    "incorrect nonce supplied; nonce for this rekey operation is {:?}",
                    attempt.nonce
                ),
                Flavor::Rotate => format!(
                    "incorrect nonce supplied; nonce for rotation is {:?}",
                    attempt.nonce
                ),
            }));
        }
        if contains(&attempt.progress, &part) {
            return Err(Error::bad(
                "given key has already been provided during this generation operation",
            ));
        }
        attempt.progress.push(part);
        if attempt.progress.len() < usize::from(current.secret_threshold) {
            return Ok(status_json(&current, Some(attempt)));
        }
        let parts = std::mem::take(&mut attempt.progress);
        let old_root = combine_key(current.secret_threshold, &parts)
            .ok_or_else(|| Error::bad("failed to compute root key"))?;
        drop(parts);
        if !self.barrier.is_root_key(&old_root)? {
            return Err(Error::bad(ROOT_KEY_FAILED));
        }
        let new_root = crate::ids::os_key::<32>()?;
        let keys = split_key(&attempt.config, &new_root)?;
        let hex: Vec<String> = keys.iter().map(|k| to_hex(k)).collect();
        let b64: Vec<String> = keys
            .iter()
            .map(|k| {
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, k.as_slice())
            })
            .collect();
        let mut out = json!({
            "nonce": attempt.nonce,
            "complete": true,
            "keys": hex,
            "keys_base64": b64,
            "pgp_fingerprints": null,
            "backup": false,
            "verification_required": attempt.require_verification,
        });
        if attempt.require_verification {
            let vnonce = new_nonce();
            if let Some(o) = out.as_object_mut() {
                o.insert("verification_nonce".into(), json!(vnonce));
            }
            attempt.verification = Some(Verification {
                nonce: vnonce,
                new_root_key: new_root,
                progress: Vec::new(),
            });
            tracing::info!("rekey keys generated; waiting for verification");
            return Ok(out);
        }
        let config = attempt.config;
        self.apply_rekey(&config, &new_root).await?;
        *guard = None;
        Ok(out)
    }

    /// `GET sys/rekey/verify`.
    pub async fn rekey_verify_status(&self, flavor: Flavor) -> Result<Value> {
        self.unsealed_seal_config().await?;
        let guard = self.rekey.lock().await;
        let Some(attempt) = guard.as_ref() else {
            return Err(Error::bad(format!(
                "no {} configuration found",
                flavor.noun()
            )));
        };
        Ok(verify_status_json(attempt))
    }

    /// `DELETE sys/rekey/verify`: restarts verification with a new nonce (the new keys stay).
    pub async fn rekey_verify_restart(&self, flavor: Flavor) -> Result<Value> {
        self.unsealed_seal_config().await?;
        {
            let mut guard = self.rekey.lock().await;
            if let Some(v) = guard.as_mut().and_then(|a| a.verification.as_mut()) {
                v.progress.clear();
                v.nonce = new_nonce();
            }
        }
        self.rekey_verify_status(flavor).await
    }

    /// `PUT sys/rekey/verify`: one of the NEW unseal keys; at the threshold the rekey happens.
    pub async fn rekey_verify(
        &self,
        key: Option<&str>,
        nonce: &str,
        flavor: Flavor,
    ) -> Result<Value> {
        let part = parse_share(key)?;
        self.unsealed_seal_config().await?;
        let mut guard = self.rekey.lock().await;
        let Some(attempt) = guard.as_mut() else {
            return Err(Error::bad(format!("no {} in progress", flavor.noun())));
        };
        let config = attempt.config;
        let Some(v) = attempt.verification.as_mut() else {
            return Err(Error::bad(format!(
                "no {} verification in progress",
                flavor.noun()
            )));
        };
        if nonce != v.nonce {
            return Err(Error::bad(format!(
                "incorrect nonce supplied; nonce for this verify operation is {:?}",
                v.nonce
            )));
        }
        if contains(&v.progress, &part) {
            return Err(Error::bad(
                "given key has already been provided during this verify operation",
            ));
        }
        v.progress.push(part);
        if v.progress.len() < usize::from(config.secret_threshold) {
            return Ok(verify_status_json(attempt));
        }
        let parts = std::mem::take(&mut v.progress);
        let rebuilt = combine_key(config.secret_threshold, &parts);
        drop(parts);
        let matches = rebuilt
            .as_ref()
            .is_some_and(|k| bool::from(k[..].ct_eq(&v.new_root_key[..])));
        if !matches {
            v.nonce = new_nonce();
            return Err(Error::bad(format!(
                "{} verification failed; incorrect key shares supplied",
                flavor.noun()
            )));
        }
        let nonce = v.nonce.clone();
        let new_root = Zeroizing::new(*v.new_root_key);
        self.apply_rekey(&config, &new_root).await?;
        *guard = None;
        Ok(json!({ "nonce": nonce, "complete": true }))
    }

    async fn apply_rekey(&self, config: &SealConfig, new_root: &Zeroizing<[u8; 32]>) -> Result<()> {
        let encoded = serde_json::to_vec(config).map_err(Error::internal)?;
        self.barrier.rekey(new_root, encoded).await?;
        // The seal configuration is read from storage on every use: nothing else to refresh.
        tracing::info!(
            seal.shares = config.secret_shares,
            seal.threshold = config.secret_threshold,
            "security barrier rekeyed"
        );
        Ok(())
    }

    /// Forgets rekey and root-generation attempts (on seal).
    pub(super) async fn forget_operator_attempts(&self) {
        *self.rekey.lock().await = None;
        *self.generate_root.lock().await = None;
    }
}

fn status_json(current: &SealConfig, attempt: Option<&Attempt>) -> Value {
    let mut v = json!({
        "nonce": "",
        "started": false,
        "t": 0,
        "n": 0,
        "progress": 0,
        "required": current.secret_threshold,
        "pgp_fingerprints": null,
        "backup": false,
        "verification_required": false,
    });
    if let (Some(a), Some(o)) = (attempt, v.as_object_mut()) {
        o.insert("nonce".into(), json!(a.nonce));
        o.insert("started".into(), json!(true));
        o.insert("t".into(), json!(a.config.secret_threshold));
        o.insert("n".into(), json!(a.config.secret_shares));
        o.insert("progress".into(), json!(a.progress.len()));
        o.insert(
            "verification_required".into(),
            json!(a.require_verification),
        );
        if let Some(ver) = &a.verification {
            o.insert("verification_nonce".into(), json!(ver.nonce));
        }
    }
    v
}

fn verify_status_json(a: &Attempt) -> Value {
    let (nonce, started, progress) = match &a.verification {
        Some(v) => (v.nonce.as_str(), true, v.progress.len()),
        None => ("", false, 0),
    };
    json!({
        "nonce": nonce,
        "started": started,
        "t": a.config.secret_threshold,
        "n": a.config.secret_shares,
        "progress": progress,
    })
}
