//! What a backend may ask of the server it runs in — Vault's `logical.SystemView`: the clock,
//! the lease TTL defaults (system-wide and as tuned on the backend's mount) and the backend's
//! mount entry. Backends hold an `Arc<dyn SystemView>` given to them at construction and never
//! reach the core; the core implements the trait for each mount (`core/system_view.rs`), tests
//! can use `StaticSystemView`.

use std::sync::Arc;
use std::time::SystemTime;

use crate::clock::{Clock, unix_nanos};
use crate::logical::mount::MountEntry;

/// The server as one mounted backend sees it.
pub trait SystemView: Send + Sync + 'static {
    /// The current time, from the server's clock (a `MockClock` in tests).
    fn now(&self) -> SystemTime;

    /// The server-wide default lease TTL in seconds.
    fn system_default_lease_ttl(&self) -> i64;

    /// The server-wide maximum lease TTL in seconds.
    fn system_max_lease_ttl(&self) -> i64;

    /// The backend's mount as currently tuned (path, type, accessor, uuid, config, options).
    fn mount_entry(&self) -> Arc<MountEntry>;

    /// The mount's default lease TTL in seconds: the tuned value, else the system default,
    /// capped by [`SystemView::max_lease_ttl`] (Vault's `DefaultLeaseTTL()`).
    fn default_lease_ttl(&self) -> i64 {
        self.lease_ttls().0
    }

    /// The mount's maximum lease TTL in seconds: the tuned value, else the system maximum
    /// (Vault's `MaxLeaseTTL()`).
    fn max_lease_ttl(&self) -> i64 {
        self.lease_ttls().1
    }

    /// `(default_lease_ttl, max_lease_ttl)` from one read of the mount entry.
    fn lease_ttls(&self) -> (i64, i64) {
        self.mount_entry()
            .config
            .lease_ttls(self.system_default_lease_ttl(), self.system_max_lease_ttl())
    }

    /// [`SystemView::now`] in Unix nanoseconds.
    fn now_nanos(&self) -> i128 {
        unix_nanos(self.now())
    }
}

/// A system view with fixed values: a clock, the system TTLs and one mount entry. For backends
/// built outside a running core (unit tests, tools).
pub struct StaticSystemView {
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The system `(default, max)` lease TTL in seconds.
    pub system_ttls: (i64, i64),
    /// The mount entry.
    pub mount: Arc<MountEntry>,
}

impl SystemView for StaticSystemView {
    fn now(&self) -> SystemTime {
        self.clock.now()
    }

    fn system_default_lease_ttl(&self) -> i64 {
        self.system_ttls.0
    }

    fn system_max_lease_ttl(&self) -> i64 {
        self.system_ttls.1
    }

    fn mount_entry(&self) -> Arc<MountEntry> {
        self.mount.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MockClock;
    use crate::logical::mount::{MountConfig, MountTableKind};

    fn view(default_lease_ttl: i64, max_lease_ttl: i64) -> StaticSystemView {
        StaticSystemView {
            clock: MockClock::new(),
            system_ttls: (100, 1000),
            mount: Arc::new(MountEntry {
                table: MountTableKind::Secret,
                path: "secret/".into(),
                kind: "kv".into(),
                description: String::new(),
                accessor: "kv_00000000".into(),
                uuid: "u".into(),
                config: MountConfig {
                    default_lease_ttl,
                    max_lease_ttl,
                    ..Default::default()
                },
                options: None,
                local: false,
                seal_wrap: false,
                external_entropy_access: false,
            }),
        }
    }

    #[test]
    fn lease_ttls_fall_back_to_the_system_and_cap_the_default() {
        assert_eq!(view(0, 0).lease_ttls(), (100, 1000));
        assert_eq!(view(50, 0).lease_ttls(), (50, 1000));
        assert_eq!(view(0, 60).lease_ttls(), (60, 60));
        assert_eq!(view(5000, 2000).default_lease_ttl(), 2000);
        assert_eq!(view(0, 2000).max_lease_ttl(), 2000);
    }
}
