//! Audit devices (Vault's `sys/audit`): the broker that writes a `request` entry before every
//! request's backend runs and a `response` entry after, to every enabled device, and refuses a
//! request whose request entry no device accepted (fail-closed).
//!
//! This slice has the `file` device (`file_path`, `stdout`, `discard`), written synchronously
//! under a per-device lock. The audit table lives at `core/audit`, each device's salt at
//! `audit/<uuid>/salt`, both through the barrier.

mod device;
mod entry;
mod format;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::core::observer::{RequestObserver, RequestRecord, ResponseRecord};
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::telemetry;
pub use device::Device;

/// How long a request waits for the first device to accept its entry (the issue's
/// `audit_timeout`, not yet a setting).
pub const DEADLINE: std::time::Duration = std::time::Duration::from_millis(250);

/// Storage key of the audit table (relative to the barrier root).
const TABLE_KEY: &str = "core/audit";

/// One row of the audit table, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// Path, ending in `/`.
    pub path: String,
    /// Device type (`file`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Device options, as given.
    pub options: BTreeMap<String, String>,
    /// Not replicated (kept for Vault compatibility).
    pub local: bool,
    /// Identity of this enablement: names the salt.
    pub uuid: String,
}

/// The enabled devices; an observer on the core while at least one is enabled.
#[derive(Default)]
pub struct Broker {
    devices: ArcSwap<Vec<Arc<Device>>>,
    /// Serialises enable/disable/load (never held across device I/O of requests).
    lock: tokio::sync::Mutex<()>,
}

fn salt_key(uuid: &str) -> String {
    format!("audit/{uuid}/salt")
}

impl Broker {
    /// The enabled devices.
    pub fn devices(&self) -> Arc<Vec<Arc<Device>>> {
        self.devices.load_full()
    }

    /// The device mounted at `path` (with or without the trailing `/`).
    pub fn device(&self, path: &str) -> Option<Arc<Device>> {
        let path = normalize(path);
        self.devices()
            .iter()
            .find(|d| d.entry.path == path)
            .cloned()
    }

    /// Loads the table and opens every device (at unseal). A device whose file cannot be
    /// opened now stays enabled (fail-closed) and is retried at each write.
    pub async fn load(&self, root: &Storage) -> Result<()> {
        let _g = self.lock.lock().await;
        let table: Vec<AuditEntry> = root.get_json(TABLE_KEY).await?.unwrap_or_default();
        let mut devices = Vec::new();
        for entry in table {
            let salt = match root.get(&salt_key(&entry.uuid)).await? {
                Some(s) => String::from_utf8(s).map_err(Error::internal)?,
                None => return Err(Error::internal("audit device salt missing")),
            };
            let device = Device::new(entry, salt)?;
            if let Err(e) = device.open() {
                tracing::error!(audit.path = %device.entry.path, error = %e, "cannot open audit device");
            }
            devices.push(Arc::new(device));
        }
        self.devices.store(Arc::new(devices));
        Ok(())
    }

    /// Forgets every device (at seal).
    pub fn clear(&self) {
        self.devices.store(Arc::new(Vec::new()));
    }

    /// Enables a device: checks the options, opens and probes it, stores it.
    pub async fn enable(
        &self,
        root: &Storage,
        mut entry: AuditEntry,
        skip_test: bool,
    ) -> Result<()> {
        entry.path = normalize(&entry.path);
        if entry.kind != "file" {
            return Err(Error::bad(format!(
                "unknown backend type: \"{}\"",
                entry.kind
            )));
        }
        let _g = self.lock.lock().await;
        let current = self.devices();
        if current
            .iter()
            .any(|d| d.entry.path.starts_with(&entry.path) || entry.path.starts_with(&d.entry.path))
        {
            return Err(Error::bad("path already in use"));
        }
        entry.uuid = crate::ids::uuid_v4();
        let salt = crate::ids::uuid_v4();
        let device = Device::new(entry, salt)?;
        device.open()?;
        if !skip_test {
            device
                .probe()
                .map_err(|e| Error::bad(format!("audit backend failed test message: {e}")))?;
        }
        let mut table: Vec<AuditEntry> = current.iter().map(|d| d.entry.clone()).collect();
        table.push(device.entry.clone());
        root.put(
            &salt_key(&device.entry.uuid),
            device.salt().as_bytes().to_vec(),
        )
        .await?;
        root.put_json(TABLE_KEY, &table).await?;
        let mut next: Vec<Arc<Device>> = current.iter().cloned().collect();
        next.push(Arc::new(device));
        self.devices.store(Arc::new(next));
        Ok(())
    }

    /// Disables the device at `path`; no error when none is there.
    pub async fn disable(&self, root: &Storage, path: &str) -> Result<()> {
        let path = normalize(path);
        let _g = self.lock.lock().await;
        let current = self.devices();
        let Some(gone) = current.iter().find(|d| d.entry.path == path).cloned() else {
            return Ok(());
        };
        let next: Vec<Arc<Device>> = current
            .iter()
            .filter(|d| d.entry.path != path)
            .cloned()
            .collect();
        let table: Vec<AuditEntry> = next.iter().map(|d| d.entry.clone()).collect();
        root.put_json(TABLE_KEY, &table).await?;
        root.delete(&salt_key(&gone.entry.uuid)).await?;
        self.devices.store(Arc::new(next));
        Ok(())
    }
}

/// `file` → `file/`.
pub fn normalize(path: &str) -> String {
    let p = path.trim_matches('/');
    format!("{p}/")
}

/// Hands `entry(device)` to every device at once and waits until one accepted it, all
/// answered, or the deadline passed; true when one accepted. Failures are logged with the
/// request id and the device path.
fn deliver(
    devices: &[Arc<Device>],
    request_id: &str,
    what: &str,
    entry: impl Fn(&Device) -> serde_json::Value,
) -> bool {
    let (ack, acks) = std::sync::mpsc::sync_channel(devices.len());
    for (i, d) in devices.iter().enumerate() {
        d.submit(&entry(d), i, &ack);
    }
    drop(ack);
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut answered = vec![false; devices.len()];
    let mut ok = false;
    while !ok && answered.iter().any(|a| !a) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok((i, result)) = acks.recv_timeout(left) else {
            break;
        };
        if let Some(a) = answered.get_mut(i) {
            *a = true;
        }
        match result {
            Ok(()) => ok = true,
            Err(e) => {
                let path = devices.get(i).map_or("", |d| d.entry.path.as_str());
                tracing::error!(audit.path = %path, request.id = %request_id, error = %e, "audit device failed to log the {what}");
            }
        }
    }
    if !ok {
        for (i, d) in devices.iter().enumerate() {
            if !answered.get(i).copied().unwrap_or(true) {
                tracing::error!(audit.path = %d.entry.path, request.id = %request_id, "audit device did not log the {what} within {DEADLINE:?}");
            }
        }
    }
    ok
}

impl RequestObserver for Broker {
    fn on_request(&self, request: &RequestRecord) -> Result<()> {
        let devices = self.devices();
        let start = std::time::Instant::now();
        let delivered = devices.is_empty()
            || deliver(&devices, &request.request_id, "request", |d| {
                d.request_entry(request)
            });
        telemetry::audited(
            telemetry::AUDIT_LOG_REQUEST,
            telemetry::AUDIT_LOG_REQUEST_FAILURE,
            start,
            delivered,
        );
        if delivered {
            Ok(())
        } else {
            Err(Error::internal(
                "no audit device accepted the request entry",
            ))
        }
    }

    fn on_response(&self, request: &RequestRecord, response: &ResponseRecord) {
        let devices = self.devices();
        let start = std::time::Instant::now();
        let delivered = devices.is_empty()
            || deliver(&devices, &request.request_id, "response", |d| {
                d.response_entry(request, response)
            });
        telemetry::audited(
            telemetry::AUDIT_LOG_RESPONSE,
            telemetry::AUDIT_LOG_RESPONSE_FAILURE,
            start,
            delivered,
        );
        if !delivered {
            tracing::error!(request.id = %request.request_id, "no audit device accepted the response entry");
        }
    }
}
