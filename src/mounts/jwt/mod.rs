//! `auth/<mount>/` of type `jwt` (and `oidc`, the same backend): CI systems and other workloads
//! trade a signed identity token (GitHub Actions, GitLab CI, Jenkins OIDC) for a token scoped by
//! the role its claims satisfy. Only `role_type=jwt` logins are served; the browser OIDC flow
//! (`oidc/auth_url`, `oidc/callback`) is refused with a clear message.
//!
//! Data path: core pipeline → `JwtBackend::handle_request` → path table (`path_config`,
//! `path_role`, `path_login`) → this mount's `Storage` (layout in `store.rs`). A login reads the
//! config and role from in-memory caches this backend invalidates at each of its writes, verifies the signature with the mount's cached
//! [`validate::KeySet`] (`keys.rs`: static PEM keys or a JWKS kept fresh without blocking the
//! login path), checks the claims (`validate.rs`, `claims.rs`) and returns an `Auth`; the core
//! issues the token and calls `renew_limits` at each renewal.
//!
//! The key set is built once per key-source configuration and swapped atomically; a config
//! write builds (and network-checks) the new one before storing the config.

mod claims;
mod keys;
mod path_config;
mod path_login;
mod path_role;
mod store;
mod validate;

use arc_swap::ArcSwapOption;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::logical::{Backend, NameForm, PathTable, Request, Response, SpecialPaths, SystemView};
use crate::storage::{OwnedCache, Storage};
use store::{CONFIG_KEY, JwtConfig, JwtRole, ROLE_PREFIX};
use validate::KeySet;

/// Decoded roles kept in memory.
const ROLE_CACHE_CAP: usize = 1024;

/// A Go error as Vault renders it outside the login path: 500 with the multierror text.
fn go_err(msg: impl std::fmt::Display) -> Error {
    Error::Coded(500, format!("1 error occurred:\n\t* {msg}\n\n"))
}

/// The configuration fields that decide where keys come from.
#[derive(Clone, PartialEq, Eq)]
struct KeySource {
    discovery_url: String,
    discovery_ca: String,
    jwks_url: String,
    jwks_ca: String,
    pubkeys: Vec<String>,
}

impl KeySource {
    fn of(c: &JwtConfig) -> Self {
        KeySource {
            discovery_url: c.oidc_discovery_url.clone(),
            discovery_ca: c.oidc_discovery_ca_pem.clone(),
            jwks_url: c.jwks_url.clone(),
            jwks_ca: c.jwks_ca_pem.clone(),
            pubkeys: c.jwt_validation_pubkeys.clone(),
        }
    }

    fn matches(&self, c: &JwtConfig) -> bool {
        self.discovery_url == c.oidc_discovery_url
            && self.discovery_ca == c.oidc_discovery_ca_pem
            && self.jwks_url == c.jwks_url
            && self.jwks_ca == c.jwks_ca_pem
            && self.pubkeys == c.jwt_validation_pubkeys
    }

    /// Builds the key set: parses static keys, or resolves discovery and prepares the JWKS
    /// client (keys are fetched on first use unless `prefetch`).
    async fn build(&self, prefetch: bool) -> std::result::Result<KeySet, String> {
        let started = tokio::time::Instant::now();
        if !self.pubkeys.is_empty() {
            let keys = self
                .pubkeys
                .iter()
                .map(|p| keys::parse_pem(p).map_err(|e| format!("error parsing public key: {e}")))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            return Ok(KeySet::Static(keys));
        }
        let remote = if !self.discovery_url.is_empty() {
            let client = keys::http_client(&self.discovery_ca)?;
            let jwks = keys::discover(&client, &self.discovery_url).await?;
            keys::RemoteKeys::new(jwks, client)
        } else if !self.jwks_url.is_empty() {
            keys::RemoteKeys::new(self.jwks_url.clone(), keys::http_client(&self.jwks_ca)?)
        } else {
            return Err("unsupported config type".into());
        };
        // The first fetch shares the write's network budget with discovery; a failure (or no
        // time left) only means the keys are fetched at the first login.
        let left = keys::FETCH_TIMEOUT.saturating_sub(started.elapsed());
        if prefetch {
            match tokio::time::timeout(left, remote.fetch_now()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "initial JWKS fetch failed; keys will be fetched at the first login")
                }
                Err(_) => tracing::warn!(
                    "initial JWKS fetch timed out; keys will be fetched at the first login"
                ),
            }
        }
        Ok(KeySet::Remote(remote))
    }
}

/// A built key set and the configuration it was built from.
struct Validator {
    source: KeySource,
    keys: KeySet,
}

/// How long a failed key-set build is answered from memory, so logins against an unreachable
/// discovery URL fail fast instead of queueing behind one network timeout each.
const BUILD_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The JWT/OIDC auth backend.
pub struct JwtBackend {
    sys: Arc<dyn SystemView>,
    table: PathTable<JwtBackend>,
    /// This mount's config and roles, decoded; only this backend writes them (see
    /// [`OwnedCache`]), so a login reads no storage for them.
    config_cache: OwnedCache<JwtConfig>,
    role_cache: OwnedCache<JwtRole>,
    validator: ArcSwapOption<Validator>,
    /// Single flight for key-set builds (discovery is a network call); holds the last failure.
    build: tokio::sync::Mutex<Option<(KeySource, tokio::time::Instant, String)>>,
    /// Serialises role read-modify-writes.
    role_write: tokio::sync::Mutex<()>,
}

impl JwtBackend {
    /// A backend on the clock and TTL settings of `sys`.
    pub fn new(sys: Arc<dyn SystemView>) -> Self {
        let mut paths = path_config::paths();
        paths.extend(path_role::paths());
        paths.extend(path_login::paths());
        JwtBackend {
            sys,
            table: PathTable::new(paths)
                .name("name", NameForm::Lower)
                .description(
                    "JWT: workloads (CI jobs) log in with a signed identity token validated \
                     against a role's bound claims.",
                ),
            config_cache: OwnedCache::new(4),
            role_cache: OwnedCache::new(ROLE_CACHE_CAP),
            validator: ArcSwapOption::empty(),
            build: tokio::sync::Mutex::new(None),
            role_write: tokio::sync::Mutex::new(()),
        }
    }

    /// The stored configuration.
    async fn config(&self, s: &Storage) -> Result<Option<Arc<JwtConfig>>> {
        self.config_cache.get_shared(s, CONFIG_KEY).await
    }

    /// A role by (lower-cased) name.
    async fn role(&self, s: &Storage, name: &str) -> Result<Option<Arc<JwtRole>>> {
        let role = self
            .role_cache
            .get_shared(s, &format!("{ROLE_PREFIX}{}", name.to_lowercase()))
            .await?;
        Ok(role.map(|r| {
            if r.role_type.is_empty() || r.bound_claims_type.is_empty() {
                // Legacy entries read as jwt roles with string matching, as in Vault.
                let mut fixed = (*r).clone();
                if fixed.role_type.is_empty() {
                    fixed.role_type = "jwt".into();
                }
                if fixed.bound_claims_type.is_empty() {
                    fixed.bound_claims_type = store::BOUND_CLAIMS_STRING.into();
                }
                Arc::new(fixed)
            } else {
                r
            }
        }))
    }

    /// The key set for `config`, built on first use and whenever the key source changed.
    async fn validator(&self, config: &JwtConfig) -> std::result::Result<Arc<Validator>, String> {
        if let Some(v) = self.validator.load_full()
            && v.source.matches(config)
        {
            return Ok(v);
        }
        let mut last_failure = self.build.lock().await;
        if let Some(v) = self.validator.load_full()
            && v.source.matches(config)
        {
            return Ok(v);
        }
        if let Some((source, at, err)) = last_failure.as_ref()
            && source.matches(config)
            && at.elapsed() < BUILD_RETRY_AFTER
        {
            return Err(err.clone());
        }
        let source = KeySource::of(config);
        match source.build(false).await {
            Ok(keys) => {
                *last_failure = None;
                let v = Arc::new(Validator { source, keys });
                self.validator.store(Some(v.clone()));
                Ok(v)
            }
            Err(e) => {
                *last_failure = Some((source, tokio::time::Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// Installs a key set built by a config write.
    fn install(&self, source: KeySource, keys: KeySet) {
        self.validator
            .store(Some(Arc::new(Validator { source, keys })));
    }
}

#[async_trait::async_trait]
impl Backend for JwtBackend {
    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths {
            unauthenticated: vec!["login", "oidc/*"],
            root: vec![],
        }
    }

    fn resolves_login_roles(&self) -> bool {
        true
    }

    /// The role a login names (`role`, else the configured `default_role`), for role quotas.
    async fn login_role(
        &self,
        storage: &Storage,
        data: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<String> {
        match data
            .get("role")
            .and_then(|r| r.as_str())
            .filter(|r| !r.is_empty())
        {
            Some(role) => Some(role.to_lowercase()),
            None => {
                let config = self.config(storage).await.ok()??;
                Some(config.default_role.clone()).filter(|r| !r.is_empty())
            }
        }
    }

    async fn existence_check(&self, req: &Request) -> Result<Option<bool>> {
        self.table.existence(self, req).await
    }

    async fn handle_request(&self, req: &Request) -> Result<Option<Response>> {
        self.table.handle(self, req).await
    }

    fn canonical_path(&self, path: &str) -> Option<String> {
        self.table.canonical_path(path)
    }

    /// Refreshes a JWKS older than ten minutes, in a task of its own: neither logins nor the
    /// core's housekeeping wait for the provider.
    async fn periodic(&self, _storage: &Storage) -> Result<usize> {
        if let Some(v) = self.validator.load_full()
            && matches!(v.keys, KeySet::Remote(_))
        {
            tokio::spawn(async move {
                if let KeySet::Remote(r) = &v.keys {
                    r.refresh_if_old().await;
                }
            });
        }
        Ok(0)
    }

    /// Vault re-reads the role at every renewal; a deleted role ends renewals.
    async fn renew_limits(
        &self,
        storage: &Storage,
        internal: &BTreeMap<String, String>,
        _issued: (i64, i64, i64),
    ) -> Result<(i64, i64, i64)> {
        let name = internal.get("role").cloned().unwrap_or_default();
        if name.is_empty() {
            return Err(go_err("failed to fetch role_name during renewal"));
        }
        let role = self.role(storage, &name).await?.ok_or_else(|| {
            go_err(format!(
                "failed to renew entry: role {name} does not exist during renewal"
            ))
        })?;
        Ok((
            role.token.token_ttl,
            role.token.token_max_ttl,
            role.token.token_period,
        ))
    }
}
