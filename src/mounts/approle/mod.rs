//! `auth/<mount>/` of type `approle`: machine login with a role_id and a secret_id.
//!
//! Data path: core pipeline → `AppRoleBackend::handle_request` → the path table assembled from
//! the `path_*` files (role CRUD, per-field sub-endpoints, secret-id issue and lookup, login,
//! tidy) → this mount's private `Storage` (layout in `store.rs`). A successful login returns an
//! `Auth`; the core turns it into a token (TTLs, display name `approle`, entity id from the
//! role_id) and asks `renew_limits` for the role's current TTLs at each renewal.
//!
//! Concurrency: role mutations are serialised by one backend mutex (they are rare, and a single
//! lock keeps role_id uniqueness simple); every secret-id read-modify-write runs under the
//! storage lock of that secret id's key, so use counting is exact under concurrent logins.
//! Storage locks are striped, so no code path holds two of them at once.

mod path_login;
mod path_role;
mod path_role_fields;
mod path_secret_id;
mod path_secret_id_lookup;
mod path_tidy;
mod role_field_update;
mod store;
pub(crate) mod validation;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::error::{Error, Result};
use crate::logical::{Backend, NameForm, PathTable, Request, Response, SpecialPaths, SystemView};
use crate::physical::WriteOp;
use crate::storage::Storage;
use store::{ROLE_ID_PREFIX, ROLE_PREFIX, RoleEntry, RoleIdEntry, SALT_KEY};
use validation::salted_id;

/// The role-name capture shared by every role path (Vault's `GenericNameRegex`, ASCII only).
const ROLE_NAME: &str = r"(?P<role_name>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)";

/// A Go error as Vault renders it: status 500 with the multierror text.
fn go_err(msg: impl std::fmt::Display) -> Error {
    Error::Coded(500, format!("1 error occurred:\n\t* {msg}\n\n"))
}

/// The one answer to every credential failure at login.
fn invalid_credentials() -> Error {
    Error::InvalidCredentials("invalid role or secret ID".into())
}

/// The AppRole auth backend.
pub struct AppRoleBackend {
    sys: Arc<dyn SystemView>,
    table: PathTable<AppRoleBackend>,
    salt: tokio::sync::OnceCell<String>,
    role_write: tokio::sync::Mutex<()>,
    tidy_running: AtomicBool,
}

impl AppRoleBackend {
    /// A backend on the clock and TTL settings of `sys`.
    pub fn new(sys: Arc<dyn SystemView>) -> Self {
        let mut paths = path_role::paths();
        paths.extend(path_role_fields::paths());
        paths.extend(path_secret_id::paths());
        paths.extend(path_secret_id_lookup::paths());
        paths.extend(path_login::paths());
        paths.extend(path_tidy::paths());
        AppRoleBackend {
            sys,
            // Role names are case-insensitive: stored, authorised and served lower-cased.
            table: PathTable::new(paths)
                .name("role_name", NameForm::Lower)
                .description(
                    "AppRole: machines and services log in with a RoleID and a SecretID \
                     issued against a role.",
                ),
            salt: tokio::sync::OnceCell::new(),
            role_write: tokio::sync::Mutex::new(()),
            tidy_running: AtomicBool::new(false),
        }
    }

    /// Now, in Unix nanoseconds, per the system view's clock.
    fn now(&self) -> i128 {
        self.sys.now_nanos()
    }

    /// The mount's maximum lease TTL in seconds.
    fn mount_max_ttl(&self) -> i64 {
        self.sys.max_lease_ttl()
    }

    /// The backend-wide salt, created on first use.
    async fn salt(&self, s: &Storage) -> Result<&str> {
        self.salt
            .get_or_try_init(|| async {
                // The cell already serialises initialisation; taking a storage lock here could
                // deadlock callers that hold a secret id's (striped) lock.
                if let Some(bytes) = s.get(SALT_KEY).await? {
                    return String::from_utf8(bytes).map_err(Error::internal);
                }
                let fresh = hex::encode(crate::ids::os_key::<32>()?.as_slice());
                s.put(SALT_KEY, fresh.clone().into_bytes()).await?;
                Ok(fresh)
            })
            .await
            .map(String::as_str)
    }

    /// Salted index key of a role_id or an accessor (`domain` keeps the two apart).
    async fn index_key(&self, s: &Storage, domain: &str, value: &str) -> Result<String> {
        let salt = self.salt(s).await?;
        salted_id(salt, &format!("{domain}:{value}")).map_err(go_err)
    }

    /// Loads a role by (case-insensitive) name.
    async fn role(&self, s: &Storage, name: &str) -> Result<Option<RoleEntry>> {
        s.get_json(&format!("{ROLE_PREFIX}{}", name.to_lowercase()))
            .await
    }

    /// Resolves a role_id to its role.
    async fn role_by_role_id(&self, s: &Storage, role_id: &str) -> Result<Option<RoleEntry>> {
        let key = self.index_key(s, "role_id", role_id).await?;
        let Some(idx) = s
            .get_json::<RoleIdEntry>(&format!("{ROLE_ID_PREFIX}{key}"))
            .await?
        else {
            return Ok(None);
        };
        self.role(s, &idx.name).await
    }

    /// Persists a role and its role_id index in one batch (callers hold `role_write`).
    /// `previous_role_id` is the id the stored role had; its index is dropped when it changed.
    async fn save_role(
        &self,
        s: &Storage,
        role: &RoleEntry,
        previous_role_id: Option<&str>,
    ) -> Result<()> {
        if !role.has_constraint() {
            return Err(go_err(
                "at least one constraint should be enabled on the role",
            ));
        }
        let new_key = format!(
            "{ROLE_ID_PREFIX}{}",
            self.index_key(s, "role_id", &role.role_id).await?
        );
        if let Some(idx) = s.get_json::<RoleIdEntry>(&new_key).await?
            && idx.name != role.name
        {
            return Err(go_err("role_id already in use"));
        }
        let mut ops = Vec::new();
        if let Some(prev) = previous_role_id.filter(|p| !p.is_empty() && *p != role.role_id) {
            let old_key = self.index_key(s, "role_id", prev).await?;
            ops.push(WriteOp::Delete(format!("{ROLE_ID_PREFIX}{old_key}")));
        }
        ops.push(WriteOp::Put(
            format!("{ROLE_PREFIX}{}", role.name),
            Storage::encode(role)?,
        ));
        ops.push(WriteOp::Put(
            new_key,
            Storage::encode(&RoleIdEntry {
                name: role.name.clone(),
            })?,
        ));
        s.batch(ops).await
    }
}

#[async_trait::async_trait]
impl Backend for AppRoleBackend {
    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths {
            unauthenticated: vec!["login"],
            root: vec![],
        }
    }

    fn resolves_login_roles(&self) -> bool {
        true
    }

    /// The role a login's `role_id` belongs to (none for an unknown one), for role quotas.
    async fn login_role(
        &self,
        storage: &Storage,
        data: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<String> {
        let role_id = data.get("role_id")?.as_str()?;
        let role = self.role_by_role_id(storage, role_id).await.ok()??;
        Some(role.name)
    }

    async fn existence_check(&self, req: &Request) -> Result<Option<bool>> {
        self.table.existence(self, req).await
    }

    async fn periodic(&self, storage: &Storage) -> Result<usize> {
        self.periodic_tidy(storage).await
    }

    async fn handle_request(&self, req: &Request) -> Result<Option<Response>> {
        self.table.handle(self, req).await
    }

    fn canonical_path(&self, path: &str) -> Option<String> {
        self.table.canonical_path(path)
    }

    /// Vault re-reads the role at every renewal: its current `token_ttl`, `token_max_ttl` and
    /// `token_period` apply, and a deleted role makes the token unrenewable.
    async fn renew_limits(
        &self,
        storage: &Storage,
        internal: &BTreeMap<String, String>,
        _issued: (i64, i64, i64),
    ) -> Result<(i64, i64, i64)> {
        let name = internal.get("role_name").cloned().unwrap_or_default();
        if name.is_empty() {
            return Err(go_err("failed to fetch role_name during renewal"));
        }
        let role = self.role(storage, &name).await?.ok_or_else(|| {
            go_err(format!(
                "failed to renew entry: role {name:?} does not exist during renewal"
            ))
        })?;
        Ok((role.token_ttl, role.token_max_ttl, role.token_period))
    }
}
