//! The `sys/` backend: mounts, auth methods, policies, capabilities and the CLI's kv preflight.
//!
//! Endpoints that must answer while sealed (health, seal-status, leader, init, unseal) are served
//! by the HTTP layer directly (`http/sys_raw.rs`), not here.

mod path_audit;
mod path_capabilities;
mod path_config;
mod path_leases;
mod path_logs;
mod path_metrics;
mod path_mounts;
mod path_operator;
mod path_plugins;
mod path_policies;
mod path_quotas;
mod path_remount;
mod path_seal;
mod path_tools;
mod path_wrapping;

use std::sync::Arc;

use crate::core::{Core, CoreRef};
use crate::error::Result;
use crate::logical::{Backend, NameForm, PathTable, Request, Response, SpecialPaths};

/// The system backend.
pub struct SystemBackend {
    core: CoreRef,
    table: PathTable<SystemBackend>,
    migrations: path_remount::Migrations,
}

impl SystemBackend {
    /// A system backend bound to `core`.
    pub fn new(core: &Arc<Core>) -> Self {
        let mut paths = path_mounts::paths();
        paths.extend(path_policies::paths());
        paths.extend(path_capabilities::paths());
        paths.extend(path_wrapping::paths());
        paths.extend(path_seal::paths());
        paths.extend(path_tools::paths());
        paths.extend(path_operator::paths());
        paths.extend(path_remount::paths());
        paths.extend(path_leases::paths());
        paths.extend(path_audit::paths());
        paths.extend(path_metrics::paths());
        paths.extend(path_logs::paths());
        paths.extend(path_plugins::paths());
        paths.extend(path_config::paths());
        paths.extend(path_quotas::paths());
        SystemBackend {
            core: CoreRef::new(core),
            // Policy names are trimmed and lower-cased (`name` is only captured by policy paths).
            table: PathTable::new(paths)
                .name("name", NameForm::TrimLower)
                .description(
                    "The system backend: mounts, auth methods, policies and server control.",
                ),
            migrations: path_remount::Migrations::default(),
        }
    }

    fn core(&self) -> Result<Arc<Core>> {
        self.core.get()
    }
}

#[async_trait::async_trait]
impl Backend for SystemBackend {
    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths {
            unauthenticated: vec![
                "internal/ui/mounts",
                "internal/ui/mounts/*",
                "mounts-all/*",
                "wrapping/lookup",
                "health",
                "seal-status",
                "leader",
                "init",
                "unseal",
                "decode-token",
            ],
            root: vec![
                "auth/*",
                "remount",
                "audit",
                "audit/*",
                "raw",
                "raw/*",
                "rotate",
                "rotate/*",
                "rekey/*",
                "generate-root/*",
                "seal",
                "step-down",
                "leases/revoke-prefix/*",
                "leases/revoke-force/*",
                "leases/lookup/*",
                "revoke-prefix/*",
                "revoke-force/*",
                "config/cors",
                "config/auditing/*",
                "plugins/catalog/*",
            ],
        }
    }

    async fn existence_check(&self, _req: &Request) -> Result<Option<bool>> {
        // sys paths have no existence checks: every write is an update, as in Vault.
        Ok(None)
    }

    async fn handle_request(&self, req: &Request) -> Result<Option<Response>> {
        self.table.handle(self, req).await
    }

    fn canonical_path(&self, path: &str) -> Option<String> {
        self.table.canonical_path(path)
    }
}
