//! `auth/token/`: the token store's HTTP face — create, lookup, renew, revoke, token roles and
//! tidy.
//!
//! The data layer is `crate::token::TokenStore`; this backend applies Vault's rules on top
//! (policy subset rule, sudo-gated options, TTL computation, revocation modes).

mod path_create;
mod path_lookup;
mod path_revoke;
mod path_roles;
mod path_tidy;

use std::sync::Arc;

use crate::core::{Core, CoreRef};
use crate::error::{Error, Result};
use crate::logical::{Backend, PathTable, Request, Response, SpecialPaths};
use crate::policy::AclRequest;
use crate::token::TokenEntry;

/// The token backend.
pub struct TokenBackend {
    core: CoreRef,
    table: PathTable<TokenBackend>,
    /// A tidy pass is running (`auth/token/tidy`).
    tidying: std::sync::atomic::AtomicBool,
}

impl TokenBackend {
    /// A token backend bound to `core`.
    pub fn new(core: &Arc<Core>) -> Self {
        let mut paths = path_create::paths();
        paths.extend(path_lookup::paths());
        paths.extend(path_revoke::paths());
        paths.extend(path_roles::paths());
        paths.extend(path_tidy::paths());
        TokenBackend {
            core: CoreRef::new(core),
            tidying: std::sync::atomic::AtomicBool::new(false),
            table: PathTable::new(paths)
                .description("The token store: creates, looks up, renews and revokes tokens."),
        }
    }

    fn core(&self) -> Result<Arc<Core>> {
        self.core.get()
    }

    /// The caller's token entry (always present: these paths are authenticated).
    fn caller(req: &Request) -> Result<&TokenEntry> {
        req.token.as_deref().ok_or(Error::PermissionDenied)
    }

    /// True when the caller has sudo on the request path.
    fn caller_has_sudo(&self, req: &Request) -> Result<bool> {
        let caller = Self::caller(req)?;
        if caller.is_root() {
            return Ok(true);
        }
        let acl = self.core()?.policies.acl_for(&caller.policies)?;
        let res = acl.allow_operation(&AclRequest {
            operation: req.operation,
            path: &req.full_path,
            data: None,
            wrap_ttl: req.wrap_ttl.and_then(|w| u64::try_from(w).ok()),
        });
        Ok(res.root_privs)
    }
}

#[async_trait::async_trait]
impl Backend for TokenBackend {
    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths {
            unauthenticated: vec![],
            root: vec!["revoke-orphan/*", "accessors*"],
        }
    }

    async fn existence_check(&self, req: &Request) -> Result<Option<bool>> {
        // Only `roles/<name>` has one (create vs update, as in Vault).
        self.table.existence(self, req).await
    }

    async fn handle_request(&self, req: &Request) -> Result<Option<Response>> {
        self.table.handle(self, req).await
    }
}
