//! Cross-origin requests from browsers (`sys/config/cors`), as Vault: off by default; when on,
//! a request carrying an `Origin` must come from an allowed origin (else 403 `origin not
//! allowed`), preflights are answered by the HTTP layer (`http/cors.rs`) and answers carry
//! `Access-Control-Allow-Origin`. Stored at `core/cors` (through the barrier) and loaded at
//! unseal; it stays in force while sealed, as Vault's does.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Core;
use crate::error::{Error, Result};

/// Storage key of the configuration.
const KEY: &str = "core/cors";

/// Headers a cross-origin request may always send (Vault's list, in its order).
pub const STANDARD_HEADERS: [&str; 10] = [
    "Content-Type",
    "Authorization",
    "X-Vault-Token",
    "X-Vault-MFA",
    "X-Vault-No-Request-Forwarding",
    "X-Vault-Wrap-Format",
    "X-Vault-Wrap-TTL",
    "X-Requested-With",
    "X-Vault-AWS-IAM-Server-ID",
    "X-Vault-Policy-Override",
];

/// The CORS settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CorsConfig {
    /// Whether cross-origin requests are checked and answered.
    pub enabled: bool,
    /// Origins allowed (`*` alone: any).
    pub allowed_origins: Vec<String>,
    /// [`STANDARD_HEADERS`] and the configured ones.
    pub allowed_headers: Vec<String>,
    /// Browsers may send credentials.
    pub allow_credentials: bool,
}

impl CorsConfig {
    /// Whether `origin` may make cross-origin requests.
    pub fn allows(&self, origin: &str) -> bool {
        match self.allowed_origins.as_slice() {
            [] => false,
            [only] if only == "*" => true,
            list => list.iter().any(|o| o == origin),
        }
    }
}

impl Core {
    /// The CORS settings in force.
    pub fn cors(&self) -> arc_swap::Guard<Arc<CorsConfig>> {
        self.cors.load()
    }

    /// Loads the stored settings (at unseal).
    pub(crate) async fn load_cors(&self) -> Result<()> {
        let stored: Option<CorsConfig> = self.storage("").get_json(KEY).await?;
        self.cors.store(Arc::new(stored.unwrap_or_default()));
        Ok(())
    }

    /// Turns CORS on for `origins` (Vault's checks and texts), with `headers` beyond the
    /// standard ones.
    pub async fn enable_cors(
        &self,
        origins: Vec<String>,
        headers: Vec<String>,
        allow_credentials: bool,
    ) -> Result<()> {
        if origins.is_empty() {
            return Err(Error::bad(
                "at least one origin or the wildcard must be provided",
            ));
        }
        if origins.len() > 1 && origins.iter().any(|o| o == "*") {
            return Err(Error::bad(
                "to allow all origins the '*' must be the only value for allowed_origins",
            ));
        }
        let mut allowed_headers: Vec<String> =
            STANDARD_HEADERS.iter().map(|h| (*h).to_owned()).collect();
        allowed_headers.extend(headers);
        self.save_cors(CorsConfig {
            enabled: true,
            allowed_origins: origins,
            allowed_headers,
            allow_credentials,
        })
        .await
    }

    /// Turns CORS off.
    pub async fn disable_cors(&self) -> Result<()> {
        self.save_cors(CorsConfig::default()).await
    }

    async fn save_cors(&self, config: CorsConfig) -> Result<()> {
        self.storage("").put_json(KEY, &config).await?;
        self.cors.store(Arc::new(config));
        Ok(())
    }
}
