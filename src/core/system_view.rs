//! The core's side of `logical::SystemView`: what one mounted backend may see of the core.

use std::sync::{Arc, Weak};
use std::time::SystemTime;

use super::Core;
use crate::clock::Clock;
use crate::logical::{MountEntry, SystemView};

/// The system view of one mount. Holds the core weakly (the core owns its mounts) and finds the
/// mount by uuid, so a tune or remount is seen at once.
pub struct MountSystemView {
    core: Weak<Core>,
    clock: Arc<dyn Clock>,
    system_ttls: (i64, i64),
    uuid: String,
    /// The entry the backend was built for: answered while the mount is not (or no longer) in
    /// the table.
    built_for: Arc<MountEntry>,
}

impl MountSystemView {
    /// The view of `entry` on `core`.
    pub fn new(core: &Arc<Core>, entry: &Arc<MountEntry>) -> Self {
        MountSystemView {
            core: Arc::downgrade(core),
            clock: core.clock.clone(),
            system_ttls: (core.config.default_lease_ttl, core.config.max_lease_ttl),
            uuid: entry.uuid.clone(),
            built_for: entry.clone(),
        }
    }
}

impl SystemView for MountSystemView {
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
        self.core
            .upgrade()
            .and_then(|core| {
                core.mount_table()
                    .iter()
                    .find(|m| m.entry.uuid == self.uuid)
                    .map(|m| m.entry.clone())
            })
            .unwrap_or_else(|| self.built_for.clone())
    }
}
