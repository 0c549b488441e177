//! Automatic rotation of the barrier's encryption key (`sys/rotate/keyring/config`).
//!
//! The setting is stored through the barrier. Once a minute (the server's periodic tick) the
//! active key term is rotated when it has encrypted `max_operations` values since this process
//! unsealed (the counter is not persisted) or, with an `interval`, when it is older than that.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Core;
use crate::error::{Error, Result};

const CONFIG_KEY: &str = "core/keyring-rotation";

/// NIST's limit on AES-GCM encryptions under one key, minus 10%, as in OpenBao.
pub const MAX_OPERATIONS: i64 = 3_865_470_566;
/// The smallest `max_operations` accepted.
pub const MIN_OPERATIONS: i64 = 1_000_000;
/// The shortest `interval` accepted (24 hours), 0 meaning none.
pub const MIN_INTERVAL: i64 = 24 * 3600;

/// The stored rotation setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationConfig {
    /// Rotate after this many encryptions with the active term.
    pub max_operations: i64,
    /// Rotate when the active term is older than this (seconds; 0 = never).
    pub interval: i64,
    /// Whether automatic rotation runs at all.
    pub enabled: bool,
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig {
            max_operations: MAX_OPERATIONS,
            interval: 0,
            enabled: true,
        }
    }
}

impl RotationConfig {
    /// OpenBao's checks, with its texts.
    pub fn validate(&self) -> Result<()> {
        if self.interval != 0 && self.interval < MIN_INTERVAL {
            return Err(Error::bad(format!(
                "interval must be greater or equal to {}",
                crate::logical::field::go_duration(MIN_INTERVAL)
            )));
        }
        if !(MIN_OPERATIONS..=MAX_OPERATIONS).contains(&self.max_operations) {
            return Err(Error::bad(format!(
                "max_operations must be in the range [{MIN_OPERATIONS},{MAX_OPERATIONS}]"
            )));
        }
        Ok(())
    }

    /// The API's form: `interval` as a Go duration, or 0.
    pub fn to_json(&self) -> Value {
        let interval = if self.interval > 0 {
            json!(crate::logical::field::go_duration(self.interval))
        } else {
            json!(0)
        };
        json!({
            "max_operations": self.max_operations,
            "enabled": self.enabled,
            "interval": interval,
        })
    }
}

impl Core {
    /// The stored rotation setting (the default when none is stored).
    pub async fn rotation_config(&self) -> Result<RotationConfig> {
        Ok(self
            .storage("")
            .get_json(CONFIG_KEY)
            .await?
            .unwrap_or_default())
    }

    /// Validates and stores the rotation setting.
    pub async fn set_rotation_config(&self, config: &RotationConfig) -> Result<()> {
        config.validate()?;
        self.storage("").put_json(CONFIG_KEY, config).await
    }

    /// Rotates the keyring when the setting says it is due (called by the periodic tick).
    pub(super) async fn auto_rotate(&self) {
        if self.is_sealed() {
            return;
        }
        let config = match self.rotation_config().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "reading the key rotation setting failed");
                return;
            }
        };
        let Ok((encryptions, installed)) = self.barrier.active_term_usage() else {
            return;
        };
        let now = crate::clock::unix_secs(self.clock.now());
        let by_ops = u64::try_from(config.max_operations).is_ok_and(|max| encryptions >= max);
        let by_age = config.interval > 0 && now.saturating_sub(installed) >= config.interval;
        if !config.enabled || !(by_ops || by_age) {
            return;
        }
        match self.barrier.rotate().await {
            Ok(ks) => tracing::info!(
                keyring.term = ks.term,
                "rotated the barrier key automatically"
            ),
            Err(e) => tracing::warn!(error = %e, "automatic key rotation failed"),
        }
    }
}
