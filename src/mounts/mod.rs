//! Mount types: the registry that turns a mount-table row into a live backend.
//!
//! Each folder here is one backend type with its own path table: `sys` (system endpoints),
//! `token` (auth/token), `identity` (placeholder so `vault secrets list` matches Vault),
//! `cubbyhole` (per-token storage), `kv` (key/value, v1 and v2), `approle` (machine login),
//! `jwt` (also mounted as `oidc`: CI identity tokens).
//! [`REGISTRY`] lists them, one row per type: adding a backend type is adding a row.
//!
//! The engines that are plugins in Vault (kv, approle, jwt, cubbyhole) are built against a
//! `logical::SystemView` alone; the system backend and the token store are part of Vault's core
//! and are built against the `Core`.

pub mod approle;
pub mod cubbyhole;
pub mod identity;
pub mod jwt;
pub mod kv;
pub mod sys;
mod tidy;
pub mod token;
pub mod token_fields;

use std::sync::Arc;

use crate::core::Core;
use crate::core::mounts::{MountEntry, MountTableKind};
use crate::core::system_view::MountSystemView;
use crate::error::{Error, Result};
use crate::logical::{Backend, SystemView};
use crate::storage::Storage;

pub use crate::logical::mount::CUBBYHOLE_PREFIX;

/// Where a backend type may be mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// A secrets engine a user may enable through `sys/mounts`.
    SecretEngine,
    /// An auth method a user may enable through `sys/auth` (served under `auth/`).
    AuthMethod,
    /// Mounted by the core only (`sys/`, `auth/token/`, `cubbyhole/`, `identity/`).
    Builtin,
}

/// How a backend type is built.
#[derive(Clone, Copy)]
pub enum Factory {
    /// From the mount's system view (the engines that are plugins in Vault).
    Plugin(fn(Arc<dyn SystemView>) -> Arc<dyn Backend>),
    /// From the core (the system backend and the token store, part of Vault's core).
    Core(fn(&Arc<Core>) -> Arc<dyn Backend>),
}

/// One registered backend type.
#[derive(Clone, Copy)]
pub struct BackendType {
    /// The mount table's `type` (`kv`, `approle`, ...).
    pub name: &'static str,
    /// Where it may be mounted.
    pub kind: BackendKind,
    /// Its constructor.
    pub factory: Factory,
}

/// Every backend type this server can instantiate.
pub static REGISTRY: &[BackendType] = &[
    BackendType {
        name: "system",
        kind: BackendKind::Builtin,
        factory: Factory::Core(|core| Arc::new(sys::SystemBackend::new(core))),
    },
    BackendType {
        name: "token",
        kind: BackendKind::Builtin,
        factory: Factory::Core(|core| Arc::new(token::TokenBackend::new(core))),
    },
    BackendType {
        name: "identity",
        kind: BackendKind::Builtin,
        factory: Factory::Plugin(|_| Arc::new(identity::IdentityBackend)),
    },
    BackendType {
        name: "cubbyhole",
        kind: BackendKind::Builtin,
        factory: Factory::Plugin(|_| Arc::new(cubbyhole::CubbyholeBackend::new())),
    },
    BackendType {
        name: "kv",
        kind: BackendKind::SecretEngine,
        factory: Factory::Plugin(|sys| Arc::new(kv::KvBackend::new(sys))),
    },
    BackendType {
        name: "approle",
        kind: BackendKind::AuthMethod,
        factory: Factory::Plugin(|sys| Arc::new(approle::AppRoleBackend::new(sys))),
    },
    BackendType {
        name: "jwt",
        kind: BackendKind::AuthMethod,
        factory: Factory::Plugin(|sys| Arc::new(jwt::JwtBackend::new(sys))),
    },
    // Vault's `oidc` type is the same plugin; only its `role_type=jwt` logins are served here.
    BackendType {
        name: "oidc",
        kind: BackendKind::AuthMethod,
        factory: Factory::Plugin(|sys| Arc::new(jwt::JwtBackend::new(sys))),
    },
];

/// The registry row of a type.
pub fn lookup(kind: &str) -> Option<&'static BackendType> {
    REGISTRY.iter().find(|t| t.name == kind)
}

/// True when a backend type can be instantiated.
pub fn is_known_type(kind: &str) -> bool {
    lookup(kind).is_some()
}

/// Types a user may enable through `sys/mounts` or `sys/auth`.
pub fn is_mountable(table: MountTableKind, kind: &str) -> bool {
    let wanted = match table {
        MountTableKind::Secret => BackendKind::SecretEngine,
        MountTableKind::Auth => BackendKind::AuthMethod,
    };
    lookup(kind).is_some_and(|t| t.kind == wanted)
}

/// Instantiates the backend of a mount.
pub async fn new_backend(
    core: &Arc<Core>,
    entry: &Arc<MountEntry>,
    storage: &Storage,
) -> Result<Arc<dyn Backend>> {
    let _ = storage;
    let Some(t) = lookup(&entry.kind) else {
        return Err(Error::bad(format!(
            "plugin not found in the catalog: {}",
            entry.kind
        )));
    };
    Ok(match t.factory {
        Factory::Plugin(new) => new(Arc::new(MountSystemView::new(core, entry))),
        Factory::Core(new) => new(core),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_kinds_decide_mountability() {
        for (i, t) in REGISTRY.iter().enumerate() {
            assert!(REGISTRY.iter().skip(i + 1).all(|u| u.name != t.name));
        }
        assert!(is_mountable(MountTableKind::Secret, "kv"));
        assert!(is_mountable(MountTableKind::Auth, "approle"));
        assert!(!is_mountable(MountTableKind::Auth, "kv"));
        assert!(!is_mountable(MountTableKind::Secret, "approle"));
        for builtin in ["system", "token", "identity", "cubbyhole"] {
            assert!(is_known_type(builtin));
            assert!(!is_mountable(MountTableKind::Secret, builtin));
            assert!(!is_mountable(MountTableKind::Auth, builtin));
        }
        assert!(is_mountable(MountTableKind::Auth, "jwt"));
        assert!(is_mountable(MountTableKind::Auth, "oidc"));
        assert!(!is_known_type("ldap"));
    }
}
