//! The mount lifecycle: the mount tables loaded at unseal (the defaults created on first start),
//! and enable, disable, remount and tune, each persisted before the new table is served and
//! serialised by the core's mount lock.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Core;
use super::mounts::{MountConfig, MountEntry, MountTable, MountTableKind, Mounted, new_accessor};
use crate::error::{Error, Result};

pub(super) const MOUNTS_KEY: &str = "core/mounts";
const AUTH_KEY: &str = "core/auth";

impl Core {
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

    pub(super) async fn load_mounts(&self) -> Result<()> {
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
            route_timers: Default::default(),
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
                // A coded error in Vault: its audit entry keeps this text, not `invalid request`.
                return Err(Error::Coded(
                    400,
                    format!("path is already in use at {}", entry.path),
                ));
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
        self.quotas_unmounted(api_path).await?;
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
            route_timers: Default::default(),
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
                self.quotas_remounted(from, to).await
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
            route_timers: Default::default(),
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
}
