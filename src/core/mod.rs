//! The core: owns the mount table, the policy and token stores and the request pipeline.
//!
//! Data path: HTTP (`http/`) → `Core::handle_request` (`pipeline.rs`) → a mounted `Backend`
//! (`mounts/`) → its `Storage` view → the physical engine. Everything durable goes through
//! storage; in-memory structures here are caches rebuilt at start.

pub mod generate_root;
pub mod mounts;
pub mod operator;
pub mod pipeline;
pub mod policy_store;
pub mod rekey;
pub mod render;
pub mod rotation;
pub mod seal;
pub mod system_view;
pub mod wrapping;

use arc_swap::ArcSwap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use crate::barrier::Barrier;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::logical::Auth;
use crate::physical::Physical;
use crate::secret::Secret;
use crate::storage::{KeyLocks, Storage};
use crate::token::ttl::{TtlInputs, calculate_ttl};
use crate::token::{Created, NewToken, RevokeHook, TokenEntry, TokenStore};
use mounts::{MountConfig, MountEntry, MountTable, MountTableKind, Mounted, new_accessor};
use policy_store::PolicyStore;

pub use pipeline::IncomingRequest;

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

const MOUNTS_KEY: &str = "core/mounts";
const AUTH_KEY: &str = "core/auth";

/// Core settings.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// System default lease TTL in seconds.
    pub default_lease_ttl: i64,
    /// System maximum lease TTL in seconds.
    pub max_lease_ttl: i64,
    /// Dev mode: mounts kv-v2 at `secret/` on first start.
    pub dev: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            default_lease_ttl: SYSTEM_DEFAULT_TTL,
            max_lease_ttl: SYSTEM_DEFAULT_TTL,
            dev: true,
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
    mounts: ArcSwap<MountTable>,
    mount_lock: tokio::sync::Mutex<()>,
    sealed: AtomicBool,
    unseal_progress: tokio::sync::Mutex<seal::Progress>,
    rekey: tokio::sync::Mutex<Option<rekey::Attempt>>,
    generate_root: tokio::sync::Mutex<Option<generate_root::Attempt>>,
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
        let barrier = Arc::new(Barrier::with_clock(raw, clock.clone()));
        let physical: Physical = barrier.clone();
        let locks = Arc::new(KeyLocks::default());
        let sys = Storage::new(physical.clone(), "sys/", locks.clone());
        let policies = PolicyStore::new(sys.sub("policy/"))?;
        let tokens = TokenStore::new(sys.sub("token/"), clock.clone());
        let core = Arc::new_cyclic(|weak| Core {
            clock,
            physical,
            barrier,
            storage_type: storage_type.to_string(),
            locks,
            config,
            policies,
            tokens,
            mounts: ArcSwap::from_pointee(MountTable::default()),
            mount_lock: tokio::sync::Mutex::new(()),
            sealed: AtomicBool::new(true),
            unseal_progress: tokio::sync::Mutex::new(seal::Progress::default()),
            rekey: tokio::sync::Mutex::new(None),
            generate_root: tokio::sync::Mutex::new(None),
            weak: weak.clone(),
        });
        Ok(core)
    }

    /// Loads everything the unsealed core serves from: policies, the token salt, the mount
    /// tables (creating the defaults on first start). Then requests are served.
    pub async fn post_unseal(&self) -> Result<()> {
        self.policies.load().await?;
        self.tokens.load_salt().await?;
        self.load_mounts().await?;
        self.sealed.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Stops serving and drops every in-memory cache of stored data.
    pub fn pre_seal(&self) -> Result<()> {
        self.sealed.store(true, Ordering::SeqCst);
        self.mounts.store(Arc::new(MountTable::default()));
        self.tokens.clear();
        self.policies.clear()
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

    /// The current mount table snapshot.
    pub fn mount_table(&self) -> arc_swap::Guard<Arc<MountTable>> {
        self.mounts.load()
    }

    /// A storage view under an absolute prefix.
    pub fn storage(&self, prefix: &str) -> Storage {
        Storage::new(self.physical.clone(), prefix, self.locks.clone())
    }

    fn default_entries(&self) -> (Vec<MountEntry>, Vec<MountEntry>) {
        let mk = |table, path: &str, kind: &str, desc: &str, acc_prefix: &str| MountEntry {
            table,
            path: path.into(),
            kind: kind.into(),
            description: desc.into(),
            accessor: new_accessor(acc_prefix),
            uuid: uuid::Uuid::new_v4().to_string(),
            config: MountConfig::default(),
            options: None,
            local: kind == "cubbyhole",
            seal_wrap: kind == "system",
            external_entropy_access: false,
        };
        let mut secret = vec![
            mk(
                MountTableKind::Secret,
                "cubbyhole/",
                "cubbyhole",
                "per-token private secret storage",
                "cubbyhole",
            ),
            mk(
                MountTableKind::Secret,
                "identity/",
                "identity",
                "identity store",
                "identity",
            ),
            mk(
                MountTableKind::Secret,
                "sys/",
                "system",
                "system endpoints used for control, policy and debugging",
                "system",
            ),
        ];
        if self.config.dev && crate::mounts::is_known_type("kv") {
            let mut kv = mk(
                MountTableKind::Secret,
                "secret/",
                "kv",
                "key/value secret storage",
                "kv",
            );
            kv.options = Some(BTreeMap::from([("version".to_string(), "2".to_string())]));
            secret.push(kv);
        }
        let auth = vec![mk(
            MountTableKind::Auth,
            "token/",
            "token",
            "token based credentials",
            "auth_token",
        )];
        (secret, auth)
    }

    async fn load_mounts(&self) -> Result<()> {
        let raw = self.storage("");
        let secret: Option<Vec<MountEntry>> = raw.get_json(MOUNTS_KEY).await?;
        let auth: Option<Vec<MountEntry>> = raw.get_json(AUTH_KEY).await?;
        let (secret, auth) = match (secret, auth) {
            (Some(s), Some(a)) => (s, a),
            _ => {
                let (s, a) = self.default_entries();
                raw.put_json(MOUNTS_KEY, &s).await?;
                raw.put_json(AUTH_KEY, &a).await?;
                (s, a)
            }
        };
        let mut mounted = Vec::new();
        for e in secret.into_iter().chain(auth) {
            mounted.push(self.instantiate(e).await?);
        }
        self.mounts.store(Arc::new(MountTable::new(mounted)));
        Ok(())
    }

    async fn instantiate(&self, entry: MountEntry) -> Result<Arc<Mounted>> {
        let storage = self.storage(&entry.storage_prefix());
        let entry = Arc::new(entry);
        let backend = crate::mounts::new_backend(&self.arc()?, &entry, &storage).await?;
        let api_path = entry.api_path();
        Ok(Arc::new(Mounted {
            entry,
            backend,
            storage,
            api_path,
        }))
    }

    async fn persist(&self, table: &MountTable) -> Result<()> {
        let (secret, auth): (Vec<_>, Vec<_>) = table
            .iter()
            .map(|m| (*m.entry).clone())
            .partition(|e| e.table == MountTableKind::Secret);
        let raw = self.storage("");
        raw.put_json(MOUNTS_KEY, &secret).await?;
        raw.put_json(AUTH_KEY, &auth).await
    }

    /// Enables a mount. `path` is relative to its table and ends with `/`.
    pub async fn enable_mount(&self, entry: MountEntry) -> Result<()> {
        let _guard = self.mount_lock.lock().await;
        let api_path = entry.api_path();
        let current = self.mounts.load_full();
        for m in current.iter() {
            if api_path.starts_with(m.api_path.as_str())
                || m.api_path.starts_with(api_path.as_str())
            {
                return Err(Error::bad(format!(
                    "path is already in use at {}",
                    entry.path
                )));
            }
        }
        let mounted = self.instantiate(entry).await?;
        let mut all = current.entries();
        all.push(mounted);
        let table = MountTable::new(all);
        self.persist(&table).await?;
        self.mounts.store(Arc::new(table));
        Ok(())
    }

    /// Disables a mount: its data is deleted and, for auth mounts, its tokens revoked.
    pub async fn disable_mount(&self, api_path: &str) -> Result<bool> {
        let _guard = self.mount_lock.lock().await;
        let current = self.mounts.load_full();
        let Some(target) = current.get(api_path).cloned() else {
            return Ok(false);
        };
        let rest: Vec<_> = current
            .iter()
            .filter(|m| m.api_path != api_path)
            .cloned()
            .collect();
        let table = MountTable::new(rest);
        // Unroute first so no new request reaches the mount, then clean up.
        self.persist(&table).await?;
        self.mounts.store(Arc::new(table));
        if target.entry.table == MountTableKind::Auth {
            self.tokens
                .revoke_by_mount(&target.entry.accessor, self)
                .await?;
        }
        target.storage.clear("").await?;
        Ok(true)
    }

    /// Moves the mount at `from` to `to` (both relative to `/v1/`, ending in `/`, in the same
    /// table): the entry keeps its uuid, accessor, storage view and backend, only its path changes.
    /// While the move runs the mount is unrouted; an auth mount's tokens are revoked, as OpenBao
    /// revokes the leases under the old path. The new table is persisted before it is served, so
    /// a failure leaves the old table in place and a restart sees the new path.
    pub async fn remount(&self, from: &str, to: &str) -> Result<()> {
        let _guard = self.mount_lock.lock().await;
        let current = self.mounts.load_full();
        let Some(source) = current.get(from).cloned() else {
            return Err(Error::bad(format!("no matching mount at {from:?}")));
        };
        if let Some(m) = current
            .iter()
            .find(|m| to.starts_with(m.api_path.as_str()) || m.api_path.starts_with(to))
        {
            return Err(Error::bad(format!(
                "path already in use at {:?}",
                m.api_path
            )));
        }
        let mut entry = (*source.entry).clone();
        entry.path = match entry.table {
            MountTableKind::Secret => to.to_string(),
            MountTableKind::Auth => to.strip_prefix("auth/").unwrap_or(to).to_string(),
        };
        if entry.api_path() != to {
            return Err(Error::bad(format!("cannot remount to destination {to:?}")));
        }
        let moved = Arc::new(Mounted {
            entry: Arc::new(entry),
            backend: source.backend.clone(),
            storage: source.storage.clone(),
            api_path: to.to_string(),
        });
        let rest: Vec<_> = current
            .iter()
            .filter(|m| m.api_path != from)
            .cloned()
            .collect();
        // Unroute the source first, so no request reaches it while its tokens are revoked.
        self.mounts.store(Arc::new(MountTable::new(rest.clone())));
        let result = async {
            if source.entry.table == MountTableKind::Auth {
                self.tokens
                    .revoke_by_mount(&source.entry.accessor, self)
                    .await?;
            }
            let mut all = rest;
            all.push(moved);
            let table = MountTable::new(all);
            self.persist(&table).await?;
            Ok(table)
        }
        .await;
        match result {
            Ok(table) => {
                self.mounts.store(Arc::new(table));
                Ok(())
            }
            Err(e) => {
                self.mounts.store(current);
                Err(e)
            }
        }
    }

    /// Replaces a mount's config (tune).
    pub async fn tune_mount(
        &self,
        api_path: &str,
        f: impl FnOnce(&mut MountEntry) -> Result<()>,
    ) -> Result<()> {
        let _guard = self.mount_lock.lock().await;
        let current = self.mounts.load_full();
        let Some(target) = current.get(api_path) else {
            return Err(Error::bad(format!("no mount entry found at {api_path}")));
        };
        let mut entry = (*target.entry).clone();
        f(&mut entry)?;
        let replaced = Arc::new(Mounted {
            entry: Arc::new(entry),
            backend: target.backend.clone(),
            storage: target.storage.clone(),
            api_path: target.api_path.clone(),
        });
        let all: Vec<_> = current
            .iter()
            .map(|m| {
                if m.api_path == api_path {
                    replaced.clone()
                } else {
                    m.clone()
                }
            })
            .collect();
        let table = MountTable::new(all);
        self.persist(&table).await?;
        self.mounts.store(Arc::new(table));
        Ok(())
    }

    /// The effective (default, max) TTL of a mount.
    pub fn mount_ttls(&self, entry: &MountEntry) -> (i64, i64) {
        entry
            .config
            .lease_ttls(self.config.default_lease_ttl, self.config.max_lease_ttl)
    }

    /// Creates the token for a successful login on `mount` and returns the `auth` JSON block.
    pub async fn issue_login_token(
        &self,
        mount: &MountEntry,
        path: &str,
        auth: &Auth,
    ) -> Result<(Created, Value)> {
        let (def, max) = self.mount_ttls(mount);
        let (ttl, _) = calculate_ttl(TtlInputs {
            mount_default: def,
            mount_max: max,
            ttl: auth.ttl,
            period: auth.period,
            backend_max: auth.max_ttl,
            explicit_max: auth.explicit_max_ttl,
            ..Default::default()
        })
        .map_err(Error::bad)?;
        let base = mount.path.trim_end_matches('/').replace('/', "-");
        let display_name = if auth.display_name.is_empty() {
            base
        } else {
            format!("{base}-{}", auth.display_name)
        };
        let entity_id = if auth.alias_name.is_empty() {
            String::new()
        } else {
            entity_id(&mount.accessor, &auth.alias_name)
        };
        let created = self
            .tokens
            .create(NewToken {
                policies: auth.policies.clone(),
                meta: Some(auth.metadata.clone()),
                display_name,
                path: path.to_string(),
                num_uses: auth.num_uses,
                ttl,
                explicit_max_ttl: auth.explicit_max_ttl,
                period: auth.period,
                renewable: auth.renewable,
                has_lease: true,
                bound_cidrs: auth.bound_cidrs.clone(),
                entity_id,
                mount_accessor: mount.accessor.clone(),
                backend_max_ttl: auth.max_ttl,
                internal: auth.internal.clone(),
                ..Default::default()
            })
            .await?;
        let block = auth_block(&created, true);
        Ok((created, block))
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

    /// Creates a root token. Without an id it is init's root token (`auth/token/root`, no
    /// lease); with one it is dev mode's `-dev-root-token-id` token, which Vault makes through
    /// `auth/token/create` as a non-renewable orphan (`display_name` `token`).
    pub async fn create_root_token(&self, id: Option<String>) -> Result<Secret> {
        let new = match id {
            None => NewToken {
                policies: vec!["root".into()],
                display_name: "root".into(),
                path: "auth/token/root".into(),
                ..Default::default()
            },
            Some(id) => NewToken {
                id: Some(Secret::new(id)),
                policies: vec!["root".into()],
                display_name: "token".into(),
                path: "auth/token/create".into(),
                has_lease: true,
                renewable: false,
                ..Default::default()
            },
        };
        Ok(self.tokens.create(new).await?.token)
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

/// A stable entity id for an alias (Vault creates an entity on first login; we derive one).
pub(crate) fn entity_id(mount_accessor: &str, alias: &str) -> String {
    let digest = Sha256::digest(format!("{mount_accessor}\0{alias}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The `auth` block of a response for a created token.
pub fn auth_block(c: &Created, orphan: bool) -> Value {
    let e = &c.entry;
    json!({
        "client_token": c.token.expose(),
        "accessor": c.accessor,
        "policies": e.policies,
        "token_policies": e.policies,
        "metadata": e.meta,
        "lease_duration": e.ttl,
        "renewable": e.renewable,
        "entity_id": e.entity_id,
        "token_type": e.token_type,
        "orphan": orphan,
        "mfa_requirement": null,
        "num_uses": e.num_uses,
    })
}
