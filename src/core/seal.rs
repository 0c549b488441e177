//! Seal state: `sys/init`, `sys/unseal`, `sys/seal`, seal-status and health.
//!
//! The root key (32 random bytes) opens the barrier's keyring. At init it is split with Shamir
//! into `secret_shares` unseal keys, any `secret_threshold` of which rebuild it (with one share
//! the key itself is the unseal key, as in Vault). Unseal keys are never stored. A wrong
//! combination fails to open the keyring (AEAD), so it can never unseal with garbage.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Core;
use crate::barrier::{BarrierError, SEAL_CONFIG_PATH};
use crate::error::{Error, Result};
use crate::seal::shamir;
use crate::secret::Secret;

const CLUSTER_KEY: &str = "core/cluster";
const VERSION: &str = env!("CARGO_PKG_VERSION");
pub(super) const UNSEAL_FAILED: &str = "unable to retrieve stored keys: invalid key: failed to decrypt keys from storage: cipher: message authentication failed";

/// Stored in plaintext next to the barrier: how many shares exist and how many unseal.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SealConfig {
    /// Number of unseal keys.
    pub secret_shares: u8,
    /// Number needed to unseal.
    pub secret_threshold: u8,
}

/// Unseal keys handed in so far (in memory only).
#[derive(Default)]
pub struct Progress {
    parts: Vec<Zeroizing<Vec<u8>>>,
    nonce: String,
}

/// What `sys/init` returns.
pub struct InitResult {
    /// The unseal keys.
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// The initial root token.
    pub root_token: Secret,
}

impl InitResult {
    /// The unseal keys in base64.
    pub fn keys_base64(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| base64::engine::general_purpose::STANDARD.encode(k.as_slice()))
            .collect()
    }

    /// Vault's JSON reply: `keys` (hex), `keys_base64`, `root_token`.
    pub fn to_json(&self) -> Value {
        let hex: Vec<String> = self.keys.iter().map(hex::encode).collect();
        let b64 = self.keys_base64();
        json!({ "keys": hex, "keys_base64": b64, "root_token": self.root_token.expose() })
    }
}

fn invalid_config(msg: &str) -> Error {
    Error::bad(format!("invalid seal configuration: {msg}"))
}

/// Vault's checks on `secret_shares` / `secret_threshold`; the error is the bare reason.
pub(super) fn check_config(
    shares: i64,
    threshold: i64,
) -> std::result::Result<SealConfig, &'static str> {
    if shares < 1 {
        return Err("shares must be at least one");
    }
    if threshold < 1 {
        return Err("threshold must be at least one");
    }
    if shares > 255 {
        return Err("shares must be less than 256");
    }
    if threshold > shares {
        return Err("threshold cannot be larger than shares");
    }
    if shares > 1 && threshold == 1 {
        return Err("threshold must be greater than one for multiple shares");
    }
    Ok(SealConfig {
        secret_shares: u8::try_from(shares).map_err(|_| "shares must be less than 256")?,
        secret_threshold: u8::try_from(threshold)
            .map_err(|_| "threshold cannot be larger than shares")?,
    })
}

fn validate(shares: i64, threshold: i64) -> Result<SealConfig> {
    check_config(shares, threshold).map_err(invalid_config)
}

/// An unseal key as clients send it: hex, else standard base64.
pub(super) fn parse_key(key: &str) -> Option<Zeroizing<Vec<u8>>> {
    let key = key.trim();
    hex::decode(key)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(key).ok())
        .map(Zeroizing::new)
}

/// Hex, as Vault prints unseal keys.
pub(super) fn to_hex(b: &[u8]) -> String {
    hex::encode(b)
}

/// Splits `root_key` into the unseal keys of `config` (with one share, the key itself).
pub(super) fn split_key(
    config: &SealConfig,
    root_key: &[u8; 32],
) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    if config.secret_shares == 1 {
        return Ok(vec![Zeroizing::new(root_key.to_vec())]);
    }
    Ok(
        shamir::split(root_key, config.secret_shares, config.secret_threshold)
            .map_err(|e| invalid_config(&e))?
            .into_iter()
            .map(Zeroizing::new)
            .collect(),
    )
}

/// Rebuilds a 32-byte root key from unseal keys (`threshold` 1: the key itself). `None` when the
/// parts do not combine into a key of the right size.
pub(super) fn combine_key(
    threshold: u8,
    parts: &[Zeroizing<Vec<u8>>],
) -> Option<Zeroizing<[u8; 32]>> {
    let combined = if threshold == 1 {
        Zeroizing::new(parts.first()?.to_vec())
    } else {
        let plain: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
        let out = shamir::combine(&plain).map(Zeroizing::new);
        // The plain copies above are dropped here; wipe them first.
        for mut p in plain {
            zeroize::Zeroize::zeroize(&mut p);
        }
        out.ok()?
    };
    <[u8; 32]>::try_from(combined.as_slice())
        .ok()
        .map(Zeroizing::new)
}

impl Core {
    pub(super) async fn seal_config(&self) -> Result<Option<SealConfig>> {
        match self.barrier.inner().get(SEAL_CONFIG_PATH).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::internal(format!("corrupt seal config: {e}"))),
        }
    }

    /// The seal configuration, for operations that need an initialised, unsealed server (rekey,
    /// root generation).
    pub(super) async fn unsealed_seal_config(&self) -> Result<SealConfig> {
        let config = self
            .seal_config()
            .await?
            .ok_or_else(|| Error::bad("server is not yet initialized"))?;
        if self.is_sealed() {
            return Err(Error::Sealed);
        }
        Ok(config)
    }

    /// True once `sys/init` has run.
    pub async fn is_initialized(&self) -> Result<bool> {
        Ok(self.barrier.initialized().await?)
    }

    /// Initialises storage: a new root key and keyring, the default mounts and policies, and the
    /// root token. The server stays sealed, as Vault's does.
    pub async fn init(&self, shares: i64, threshold: i64) -> Result<InitResult> {
        let mut progress = self.unseal_progress.lock().await;
        // HA: every write is fenced by the lock, and no node is active before init: hold the
        // lock for the duration (it is released before anyone can unseal).
        let held = match self.ha() {
            None => None,
            Some(ha) => {
                if self.is_initialized().await? {
                    return Err(Error::bad("Vault is already initialized"));
                }
                Some(
                    ha.hold_for_init()
                        .await
                        .map_err(|e| Error::Coded(503, format!("cannot initialize now: {e}")))?,
                )
            }
        };
        let result = self.init_locked(&mut progress, shares, threshold).await;
        if let (Some(ha), Some(identity)) = (self.ha(), held) {
            ha.release_after_init(&identity).await;
        }
        result
    }

    async fn init_locked(
        &self,
        progress: &mut Progress,
        shares: i64,
        threshold: i64,
    ) -> Result<InitResult> {
        if self.is_initialized().await? {
            return Err(Error::bad("Vault is already initialized"));
        }
        let config = validate(shares, threshold)?;
        let root_key = crate::ids::os_key::<32>()?;
        let keys = split_key(&config, &root_key)?;
        self.barrier.initialize(&root_key).await?;
        let encoded = serde_json::to_vec(&config).map_err(Error::internal)?;
        self.barrier.inner().put(SEAL_CONFIG_PATH, encoded).await?;
        self.barrier
            .unseal(&root_key)
            .await
            .map_err(|e| Error::internal(format!("unseal after init: {e}")))?;
        let setup = async {
            self.post_unseal_with(false).await?;
            let cluster = json!({
                "name": format!("coffer-cluster-{:08x}", rand::random::<u32>()),
                "id": uuid::Uuid::new_v4().to_string(),
            });
            self.storage("").put_json(CLUSTER_KEY, &cluster).await?;
            self.telemetry_unsealed().await;
            self.create_root_token(None).await
        };
        let root_token = setup.await;
        let _ = self.pre_seal();
        self.barrier.seal();
        *progress = Progress::default();
        tracing::info!(
            seal.shares = config.secret_shares,
            seal.threshold = config.secret_threshold,
            "storage initialised"
        );
        Ok(InitResult {
            keys,
            root_token: root_token?,
        })
    }

    /// Takes one unseal key (hex or base64); unseals when the threshold is reached.
    pub async fn unseal_part(&self, key: Option<&str>, reset: bool) -> Result<Value> {
        let _timed = crate::telemetry::Timer::named(crate::telemetry::CORE_UNSEAL);
        {
            let mut progress = self.unseal_progress.lock().await;
            let Some(config) = self.seal_config().await? else {
                return Err(Error::bad("Vault is not initialized"));
            };
            if !self.reported_sealed() {
                drop(progress);
                return self.seal_status().await;
            }
            if reset {
                *progress = Progress::default();
            } else {
                let key = key.map(str::trim).filter(|k| !k.is_empty()).ok_or_else(|| {
                    Error::bad("'key' must be specified in request body as JSON, or 'reset' set to true")
                })?;
                let part = parse_key(key)
                    .ok_or_else(|| Error::bad("'key' must be a valid hex or base64 string"))?;
                let duplicate = progress
                    .parts
                    .iter()
                    .any(|p| bool::from(p.as_slice().ct_eq(part.as_slice())));
                if !duplicate {
                    if progress.parts.is_empty() {
                        progress.nonce = uuid::Uuid::new_v4().to_string();
                    }
                    progress.parts.push(part);
                }
                if progress.parts.len() >= usize::from(config.secret_threshold) {
                    let parts = std::mem::take(&mut *progress);
                    self.unseal_with(&config, parts).await?;
                }
            }
        }
        self.seal_status().await
    }

    async fn unseal_with(&self, config: &SealConfig, progress: Progress) -> Result<()> {
        let root_key = combine_key(config.secret_threshold, &progress.parts)
            .ok_or_else(|| Error::bad(UNSEAL_FAILED))?;
        match self.barrier.unseal(&root_key).await {
            Ok(()) => {}
            Err(BarrierError::InvalidKey) => return Err(Error::bad(UNSEAL_FAILED)),
            Err(BarrierError::NotInitialized) => {
                return Err(Error::bad("Vault is not initialized"));
            }
            Err(BarrierError::Storage(e)) => return Err(e.into()),
        }
        if let Some(ha) = self.ha() {
            // A standby now: the HA loop takes the lock when it can and steps up.
            ha.poke();
            self.telemetry_standby().await;
            tracing::info!("unsealed (HA standby)");
            return Ok(());
        }
        if let Err(e) = self.post_unseal().await {
            let _ = self.pre_seal();
            self.barrier.seal();
            return Err(e);
        }
        tracing::info!("unsealed");
        Ok(())
    }

    /// Seals: stops serving, forgets every cached secret and the keyring.
    pub async fn seal(&self) -> Result<()> {
        let _timed = crate::telemetry::Timer::named(crate::telemetry::CORE_SEAL_INTERNAL);
        let mut progress = self.unseal_progress.lock().await;
        *progress = Progress::default();
        self.forget_operator_attempts().await;
        self.pre_seal()?;
        self.barrier.seal();
        if let Some(ha) = self.ha() {
            // The HA loop sees the barrier sealed, steps down and releases the lock.
            ha.poke();
        }
        tracing::info!("sealed");
        Ok(())
    }

    /// The cluster name and id, while unsealed.
    pub(crate) async fn cluster(&self) -> Option<(String, String)> {
        if self.reported_sealed() {
            return None;
        }
        let v: Value = self
            .storage("")
            .get_json(CLUSTER_KEY)
            .await
            .ok()
            .flatten()?;
        Some((
            v.get("name")?.as_str()?.to_string(),
            v.get("id")?.as_str()?.to_string(),
        ))
    }

    /// `sys/seal-status` (also the reply of `sys/unseal`).
    pub async fn seal_status(&self) -> Result<Value> {
        let config = self.seal_config().await?;
        let progress = self.unseal_progress.lock().await;
        let (t, n) = config.map_or((0, 0), |c| (c.secret_threshold, c.secret_shares));
        let mut v = json!({
            "type": "shamir",
            "initialized": config.is_some(),
            "sealed": self.reported_sealed(),
            "t": t,
            "n": n,
            "progress": progress.parts.len(),
            "nonce": progress.nonce,
            "version": VERSION,
            "build_date": "",
            "migration": false,
            "recovery_seal": false,
            "storage_type": self.storage_type,
        });
        drop(progress);
        if let Some((name, id)) = self.cluster().await
            && let Some(o) = v.as_object_mut()
        {
            o.insert("cluster_name".into(), json!(name));
            o.insert("cluster_id".into(), json!(id));
        }
        Ok(v)
    }

    /// `sys/health`: the body and the default status (200 active, 503 sealed, 501 uninitialised).
    pub async fn health(&self) -> Result<(Value, &'static str)> {
        // An unsealed barrier was initialised: no storage read (health must answer while the
        // database is unreachable, e.g. so a standby reports itself as one).
        let initialized = !self.barrier.is_sealed() || self.is_initialized().await?;
        let sealed = self.reported_sealed();
        let standby = !sealed && self.is_standby();
        let mut v = json!({
            "initialized": initialized,
            "sealed": sealed,
            "standby": standby,
            "performance_standby": false,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": crate::clock::unix_secs(self.clock.now()),
            "version": VERSION,
        });
        if let Some((name, id)) = self.cluster().await
            && let Some(o) = v.as_object_mut()
        {
            o.insert("cluster_name".into(), json!(name));
            o.insert("cluster_id".into(), json!(id));
        }
        let which = if !initialized {
            "uninitcode"
        } else if sealed {
            "sealedcode"
        } else if standby {
            "standbycode"
        } else {
            "activecode"
        };
        Ok((v, which))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_config_rules_match_vault() {
        let cases: Vec<(i64, i64, Result<(), &str>)> = vec![
            (
                0,
                0,
                Err("invalid seal configuration: shares must be at least one"),
            ),
            (
                3,
                0,
                Err("invalid seal configuration: threshold must be at least one"),
            ),
            (
                3,
                5,
                Err("invalid seal configuration: threshold cannot be larger than shares"),
            ),
            (
                3,
                1,
                Err(
                    "invalid seal configuration: threshold must be greater than one for multiple shares",
                ),
            ),
            (
                256,
                3,
                Err("invalid seal configuration: shares must be less than 256"),
            ),
            (1, 1, Ok(())),
            (5, 3, Ok(())),
            (255, 255, Ok(())),
        ];
        for (n, t, want) in cases {
            match (validate(n, t), want) {
                (Ok(_), Ok(())) => {}
                (Err(e), Err(msg)) => assert_eq!(e.to_string(), msg),
                (got, want) => panic!("{n}/{t}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn keys_are_lower_hex_and_parse_as_hex_or_base64() {
        let bytes = [0u8, 1, 254, 255];
        assert_eq!(to_hex(&bytes), "0001feff");
        for text in ["0001feff", "0001FEFF", " 0001feff\n", "AAH+/w=="] {
            assert_eq!(parse_key(text).unwrap().as_slice(), bytes, "{text:?}");
        }
        assert!(parse_key("abc").is_none());
        assert!(parse_key("zz").is_none());
    }
}
