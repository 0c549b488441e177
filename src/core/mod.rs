//! The core: owns the mount table, the policy and token stores and the request pipeline.
//!
//! Data path: HTTP (`http/`) → `Core::handle_request` (`pipeline.rs`) → a mounted `Backend`
//! (`mounts/`) → its `Storage` view → the physical engine. Everything durable goes through
//! storage; in-memory structures here are caches rebuilt at start.

pub mod cors;
pub mod generate_root;
mod mount_lifecycle;
pub mod mounts;
pub mod observer;
pub mod operator;
pub mod pipeline;
pub mod policy_store;
pub mod quotas;
pub mod rekey;
pub mod render;
pub mod rotation;
pub mod seal;
mod standby;
pub mod system_view;
mod telemetry;
pub mod token_issue;
mod versions;
pub mod wrapping;

pub use standby::LOCAL_ONLY;
pub use versions::VersionEntry;

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use crate::barrier::Barrier;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::physical::Physical;
use crate::storage::{KeyLocks, Storage};
use crate::token::{RevokeHook, TokenEntry, TokenStore};
use mounts::MountTable;
use policy_store::PolicyStore;

pub use pipeline::IncomingRequest;
pub use telemetry::RouteTimers;
pub(crate) use token_issue::entity_id;

/// A backend's handle on the core that owns it. Weak, because the core owns the backend.
#[derive(Clone)]
pub struct CoreRef(Weak<Core>);

impl CoreRef {
    /// A handle on `core`.
    pub fn new(core: &Arc<Core>) -> Self {
        CoreRef(Arc::downgrade(core))
    }

    /// The core, while it exists.
    pub fn get(&self) -> Result<Arc<Core>> {
        self.0
            .upgrade()
            .ok_or_else(|| Error::internal("core dropped"))
    }
}

/// Vault's system default and maximum TTL: 768h (32 days).
pub const SYSTEM_DEFAULT_TTL: i64 = 2_764_800;

/// Core settings.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// System default lease TTL in seconds.
    pub default_lease_ttl: i64,
    /// System maximum lease TTL in seconds.
    pub max_lease_ttl: i64,
    /// Dev mode: mounts kv-v2 at `secret/` on first start.
    pub dev: bool,
    /// `unsafe_allow_api_audit_creation`: audit devices may be enabled through `sys/audit`
    /// (always in dev mode).
    pub allow_api_audit_creation: bool,
    /// `allow_audit_log_prefixing`: the audit `prefix` option is accepted.
    pub allow_audit_log_prefixing: bool,
    /// The `telemetry` stanza (dev mode: Prometheus with 24h retention).
    pub telemetry: crate::telemetry::Telemetry,
    /// `audit_timeout`: how long a request waits for the first audit device to accept its
    /// entry.
    pub audit_timeout: std::time::Duration,
    /// `plugin_directory`: audit device files may not be written there.
    pub plugin_directory: Option<std::path::PathBuf>,
    /// The configuration's `audit` blocks: enabled at every unseal (not at init), re-applied
    /// on SIGHUP through [`Core::reload_declared_audit`].
    pub declared_audit: Vec<crate::audit::Declared>,
    /// What `sys/config/state/sanitized` shows (`config::sanitized`); empty for a core built
    /// without a server configuration.
    pub sanitized_config: serde_json::Map<String, serde_json::Value>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            default_lease_ttl: SYSTEM_DEFAULT_TTL,
            max_lease_ttl: SYSTEM_DEFAULT_TTL,
            dev: true,
            allow_api_audit_creation: false,
            allow_audit_log_prefixing: false,
            telemetry: crate::telemetry::Telemetry::dev(),
            audit_timeout: crate::audit::DEFAULT_DEADLINE,
            plugin_directory: None,
            declared_audit: Vec::new(),
            sanitized_config: serde_json::Map::new(),
        }
    }
}

/// The server core.
pub struct Core {
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// The storage every view reads and writes: the encryption barrier over the engine.
    pub physical: Physical,
    /// The barrier itself (seal state, keyring, rotation).
    pub barrier: Arc<Barrier>,
    /// Storage type reported by seal-status (`inmem`, `file`).
    pub storage_type: String,
    /// Per-key locks shared by all storage views.
    pub locks: Arc<KeyLocks>,
    /// Settings.
    pub config: CoreConfig,
    /// ACL policies.
    pub policies: PolicyStore,
    /// Tokens.
    pub tokens: TokenStore,
    /// Audit devices.
    pub audit: Arc<crate::audit::Broker>,
    /// HA standby: the token store it checks a scrape's token with (salt read afresh each time).
    standby_tokens: TokenStore,
    /// HA standby: the audit devices it opened for the scrapes it serves.
    standby_audit: standby::StandbyState,
    mounts: ArcSwap<MountTable>,
    mount_lock: tokio::sync::Mutex<()>,
    sealed: AtomicBool,
    unseal_progress: tokio::sync::Mutex<seal::Progress>,
    rekey: tokio::sync::Mutex<Option<rekey::Attempt>>,
    generate_root: tokio::sync::Mutex<Option<generate_root::Attempt>>,
    observer: arc_swap::ArcSwapOption<Box<dyn observer::RequestObserver>>,
    telemetry: telemetry::CoreTelemetry,
    ha: std::sync::OnceLock<Arc<crate::ha::Ha>>,
    /// Set when the server stops serving: open streams (`sys/monitor`) end.
    streams_closed: AtomicBool,
    /// The requests being served now (`sys/in-flight-req`).
    pub in_flight: crate::telemetry::in_flight::InFlightTable,
    /// Cross-origin settings (`sys/config/cors`).
    cors: ArcSwap<cors::CorsConfig>,
    /// Rate-limit quotas (`sys/quotas/*`).
    quotas: ArcSwap<quotas::QuotaSet>,
    /// Serialises changes to the quotas.
    quota_lock: tokio::sync::Mutex<()>,
    weak: Weak<Core>,
}

impl Core {
    /// Builds a sealed core over the raw engine `raw` (wrapped in the encryption barrier).
    /// Nothing is read until it is initialised and unsealed.
    pub fn new(
        raw: Physical,
        storage_type: &str,
        clock: Arc<dyn Clock>,
        config: CoreConfig,
    ) -> Result<Arc<Core>> {
        // First, so that handles cached by the first requests point at the real recorder.
        crate::telemetry::install(&config.telemetry);
        let barrier = Arc::new(Barrier::with_clock(raw, clock.clone()));
        let physical: Physical = barrier.clone();
        let locks = Arc::new(KeyLocks::default());
        let sys = Storage::new(physical.clone(), "sys/", locks.clone());
        let policies = PolicyStore::new(sys.sub("policy/"))?;
        let tokens = TokenStore::new(sys.sub("token/"), clock.clone());
        let standby_tokens = TokenStore::new(sys.sub("token/"), clock.clone());
        let audit = Arc::new(crate::audit::Broker::new(
            config.audit_timeout,
            config.plugin_directory.clone(),
        ));
        audit.set_declared(config.declared_audit.clone());
        let core = Arc::new_cyclic(|weak| Core {
            clock,
            physical,
            barrier,
            storage_type: storage_type.to_string(),
            locks,
            config,
            policies,
            tokens,
            standby_tokens,
            standby_audit: Default::default(),
            audit,
            mounts: ArcSwap::from_pointee(MountTable::default()),
            mount_lock: tokio::sync::Mutex::new(()),
            sealed: AtomicBool::new(true),
            unseal_progress: tokio::sync::Mutex::new(seal::Progress::default()),
            rekey: tokio::sync::Mutex::new(None),
            generate_root: tokio::sync::Mutex::new(None),
            observer: arc_swap::ArcSwapOption::empty(),
            telemetry: telemetry::CoreTelemetry::default(),
            ha: std::sync::OnceLock::new(),
            streams_closed: AtomicBool::new(false),
            in_flight: Default::default(),
            cors: ArcSwap::from_pointee(cors::CorsConfig::default()),
            quotas: ArcSwap::from_pointee(quotas::QuotaSet::default()),
            quota_lock: tokio::sync::Mutex::new(()),
            weak: weak.clone(),
        });
        Ok(core)
    }

    /// Loads everything the unsealed core serves from: policies, the token salt, the mount
    /// tables (creating the defaults on first start), the audit devices (enabling those the
    /// configuration declares). Then requests are served.
    pub async fn post_unseal(&self) -> Result<()> {
        self.post_unseal_with(true).await
    }

    /// `declared_audit`: false at init, so that a declared device that cannot be opened does
    /// not fail the init (whose keys would be lost); the first unseal applies them.
    pub(crate) async fn post_unseal_with(&self, declared_audit: bool) -> Result<()> {
        let _timed = crate::telemetry::Timer::named(crate::telemetry::CORE_POST_UNSEAL);
        self.policies.load().await?;
        self.tokens.load_salt().await?;
        self.load_mounts().await?;
        self.record_version().await?;
        self.load_cors().await?;
        self.load_quotas().await?;
        self.audit.load(&self.storage("")).await?;
        if declared_audit {
            self.audit.apply_declared(&self.storage("")).await?;
        }
        self.install_audit();
        self.sealed.store(false, Ordering::SeqCst);
        self.telemetry_unsealed().await;
        Ok(())
    }

    /// Stops serving and drops every in-memory cache of stored data.
    pub fn pre_seal(&self) -> Result<()> {
        let _timed = crate::telemetry::Timer::named(crate::telemetry::CORE_PRE_SEAL);
        self.sealed.store(true, Ordering::SeqCst);
        self.telemetry_sealed(false);
        self.audit.clear();
        self.standby_audit.clear();
        self.install_audit();
        self.clear_quotas();
        self.mounts.store(Arc::new(MountTable::default()));
        self.tokens.clear();
        self.policies.clear()
    }

    /// Makes this core one node of an HA cluster (once, before serving).
    pub fn set_ha(&self, ha: Arc<crate::ha::Ha>) {
        let _ = self.ha.set(ha);
    }

    /// The HA state, when HA is enabled.
    pub fn ha(&self) -> Option<&Arc<crate::ha::Ha>> {
        self.ha.get()
    }

    /// HA: this node took the lock. Everything is loaded from storage afresh (the keyring as
    /// stored now, policies, token salt, mounts, audit devices); nothing from an earlier term
    /// survives. Tokens and the expiry index are read from storage on use, so the time taken
    /// does not grow with the number of tokens.
    pub async fn step_up(&self) -> Result<()> {
        let _ = self.pre_seal();
        match self.barrier.reload().await {
            Ok(()) => {}
            Err(crate::barrier::BarrierError::InvalidKey) => {
                self.barrier.seal();
                return Err(Error::internal(
                    "the unseal keys changed (rekey on another node): this node sealed itself; unseal it with the new keys",
                ));
            }
            Err(e) => return Err(Error::internal(e.to_string())),
        }
        if let Err(e) = self.post_unseal().await {
            let _ = self.pre_seal();
            return Err(e);
        }
        // hashicorp/vault#2083: a node that cannot open a single audit device would refuse
        // every request (fail-closed); another node may be able to serve.
        let devices = self.audit.devices();
        if !devices.is_empty() && devices.iter().all(|d| !d.is_open()) {
            let paths: Vec<&str> = devices.iter().map(|d| d.entry.path.as_str()).collect();
            let _ = self.pre_seal();
            return Err(Error::internal(format!(
                "no audit device can be opened on this node ({}): it would refuse every request",
                paths.join(", ")
            )));
        }
        Ok(())
    }

    /// HA: this node stopped being active. It stops serving and forgets every cache, as at
    /// seal, but keeps its keys (the barrier stays unsealed) so it can step up again.
    pub fn step_down(&self) {
        let _ = self.pre_seal();
        // No storage read here: demotion must not wait on a database that may be down.
        self.telemetry_sealed(!self.barrier.is_sealed());
    }

    /// Sealed as clients see it: in an HA cluster a standby is unsealed although it serves
    /// nothing itself.
    pub fn reported_sealed(&self) -> bool {
        if self.ha().is_some() {
            self.barrier.is_sealed()
        } else {
            self.is_sealed()
        }
    }

    /// HA: an unsealed node that is not active.
    pub fn is_standby(&self) -> bool {
        self.ha()
            .is_some_and(|ha| !self.barrier.is_sealed() && !ha.is_active())
    }

    /// SIGHUP: the configuration's `audit` blocks as read again. Applied at once on an active
    /// unsealed node (a standby applies them when it steps up); an error is logged and the
    /// devices stay as they were.
    pub async fn reload_declared_audit(&self, declared: Vec<crate::audit::Declared>) {
        self.audit.set_declared(declared);
        if self.is_sealed() {
            return;
        }
        match self.audit.apply_declared(&self.storage("")).await {
            Ok(()) => self.install_audit(),
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: audit devices of the configuration not applied")
            }
        }
    }

    /// HA: this node is now active; the audit devices it opened as a standby (for a scrape
    /// served during the step-up) are closed.
    pub fn became_active(&self) {
        self.standby_audit.clear();
    }

    /// SIGHUP: reopens the audit devices' files (logrotate), a standby's included.
    pub fn reopen_audit(&self) {
        self.audit.reopen();
        if let Some(broker) = self.standby_audit.broker() {
            broker.reopen();
        }
    }

    /// Installs the audit broker as the request observer while a device is enabled (and
    /// removes it when none is).
    pub fn install_audit(&self) {
        if self.audit.devices().is_empty() {
            self.set_observer(None);
        } else {
            self.set_observer(Some(Box::new(self.audit.clone())));
        }
    }

    /// A strong handle to this core (for backends that need one).
    pub fn arc(&self) -> Result<Arc<Core>> {
        self.weak
            .upgrade()
            .ok_or_else(|| Error::internal("core dropped"))
    }

    /// True while sealed.
    pub fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::SeqCst)
    }

    /// Ends open streams (`sys/monitor`) at their next check: the server is shutting down and
    /// waits for in-flight responses.
    pub fn close_streams(&self) {
        self.streams_closed.store(true, Ordering::SeqCst);
    }

    /// True once [`Core::close_streams`] was called.
    pub fn streams_closed(&self) -> bool {
        self.streams_closed.load(Ordering::SeqCst)
    }

    /// The current mount table snapshot.
    pub fn mount_table(&self) -> arc_swap::Guard<Arc<MountTable>> {
        self.mounts.load()
    }

    /// A storage view under an absolute prefix.
    pub fn storage(&self, prefix: &str) -> Storage {
        Storage::new(self.physical.clone(), prefix, self.locks.clone())
    }

    /// Revokes a token tree, destroying cubbyholes on the way.
    pub async fn revoke_token_tree(&self, key: &str) -> Result<()> {
        self.tokens.revoke_tree(key, self).await
    }

    /// Revokes expired tokens (bounded work); the server calls this on a timer.
    pub async fn sweep_expired(&self, limit: usize) -> Result<usize> {
        if self.is_sealed() {
            return Ok(0);
        }
        self.tokens.sweep(limit, self).await
    }

    /// Runs every mount's periodic housekeeping (expired SecretIDs and the like).
    pub async fn periodic(&self) -> Result<usize> {
        if self.is_sealed() {
            return Ok(0);
        }
        self.auto_rotate().await;
        let mounts: Vec<_> = self.mount_table().iter().cloned().collect();
        let mut removed = 0;
        for m in mounts {
            match m.backend.periodic(&m.storage).await {
                Ok(n) => removed += n,
                Err(e) => {
                    tracing::warn!(mount.path = %m.api_path, error = %e, "periodic housekeeping failed")
                }
            }
        }
        Ok(removed)
    }
}

#[async_trait::async_trait]
impl RevokeHook for Core {
    async fn on_revoke(&self, entry: &TokenEntry) -> Result<()> {
        self.storage(crate::mounts::CUBBYHOLE_PREFIX)
            .clear(&format!("{}/", entry.cubbyhole_id))
            .await
    }
}
