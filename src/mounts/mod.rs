//! Mount types: the registry that turns a mount-table row into a live backend.
//!
//! Each folder here is one backend type with its own path table: `sys` (system endpoints),
//! `token` (auth/token), `identity` (placeholder so `vault secrets list` matches Vault),
//! `cubbyhole` (per-token storage), `kv` (key/value, v1 and v2), `approle` (machine login).

pub mod approle;
pub mod cubbyhole;
pub mod identity;
pub mod kv;
pub mod sys;
pub mod token;

use std::sync::Arc;

use crate::core::Core;
use crate::core::mounts::{MountEntry, MountTableKind};
use crate::error::{Error, Result};
use crate::logical::Backend;
use crate::storage::Storage;

/// Storage prefix of all cubbyholes (one folder per token's cubbyhole id).
pub const CUBBYHOLE_PREFIX: &str = "sys/cubbyhole/";

/// True when a backend type can be instantiated.
pub fn is_known_type(kind: &str) -> bool {
    matches!(
        kind,
        "system" | "token" | "identity" | "cubbyhole" | "kv" | "approle"
    )
}

/// Types a user may enable through `sys/mounts` or `sys/auth`.
pub fn is_mountable(table: MountTableKind, kind: &str) -> bool {
    let allowed: &[&str] = match table {
        MountTableKind::Secret => &["kv"],
        MountTableKind::Auth => &["approle"],
    };
    allowed.contains(&kind) && is_known_type(kind)
}

/// Instantiates the backend of a mount.
pub async fn new_backend(
    core: &Arc<Core>,
    entry: &Arc<MountEntry>,
    storage: &Storage,
) -> Result<Arc<dyn Backend>> {
    let _ = storage;
    match entry.kind.as_str() {
        "system" => Ok(Arc::new(sys::SystemBackend::new(core))),
        "token" => Ok(Arc::new(token::TokenBackend::new(core))),
        "identity" => Ok(Arc::new(identity::IdentityBackend)),
        "cubbyhole" => Ok(Arc::new(cubbyhole::CubbyholeBackend::new())),
        "kv" => Ok(Arc::new(kv::KvBackend::new(core))),
        "approle" => Ok(Arc::new(approle::AppRoleBackend::new(core))),
        other => Err(Error::bad(format!(
            "plugin not found in the catalog: {other}"
        ))),
    }
}
