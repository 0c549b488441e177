//! Audit devices (Vault's `sys/audit`): the broker that writes a `request` entry before every
//! request's backend runs and a `response` entry after, to every enabled device, and refuses a
//! request whose request entry no device accepted (fail-closed).
//!
//! Devices: `file` (`file_path`, `stdout`, `discard`), `socket` (tcp, udp, unix) and `syslog`.
//! Each has its own writer thread behind a bounded queue (`sink`; a regular file is usually
//! appended to inline by the request itself); a request hands its entry to every device at once
//! and awaits, without blocking a runtime thread, the first acknowledgement
//! for at most the `audit_timeout` deadline (250 ms by default). A stuck device thus costs a
//! request at most the deadline, and nothing when another device answers. The audit table lives
//! at `core/audit`, each device's salt at `audit/<uuid>/salt`, both through the barrier.

mod device;
mod entry;
mod format;
mod sink;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core::observer::{RequestObserver, RequestRecord, ResponseRecord};
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::telemetry;
pub use device::{Device, parse_bool};
pub use sink::SYSLOG_SOCKET_ENV;

/// How long a request waits for the first device to accept its entry by default
/// (`audit_timeout`).
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(250);

/// How long a response entry no device accepted in time is retried before it is reported lost
/// in the server log.
const RESPONSE_RETRY_WINDOW: Duration = Duration::from_secs(5);

/// Storage key of the audit table (relative to the barrier root).
pub(crate) const TABLE_KEY: &str = "core/audit";

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
    /// Enabled from an `audit` block of the server configuration (OpenBao's `audit-config`
    /// table type): kept as declared, not disabled through the API, removed when the block goes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declared: bool,
}

/// An audit device declared in the server configuration, `audit "<type>" "<path>" { ... }`
/// (OpenBao's declarative devices): enabled at unseal when missing, checked against the table
/// when present, re-applied on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// Path, ending in `/`.
    pub path: String,
    /// Device type (`file`, `socket`, `syslog`).
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Not replicated (kept for Vault compatibility).
    pub local: bool,
    /// Device options.
    pub options: BTreeMap<String, String>,
}

impl Declared {
    /// Why the enabled device `entry` is not this declaration, if it is not.
    fn difference(&self, entry: &AuditEntry) -> Option<String> {
        let path = &self.path;
        if entry.kind != self.kind {
            return Some(format!(
                "audit device {path} has different types: {} (table) vs {} (config)",
                entry.kind, self.kind
            ));
        }
        if entry.description != self.description {
            return Some(format!(
                "audit device {path} has different descriptions: {} (table) vs {} (config)",
                entry.description, self.description
            ));
        }
        if entry.local != self.local {
            return Some(format!(
                "audit device {path} has different values for local: {} (table) vs {} (config)",
                entry.local, self.local
            ));
        }
        for (key, declared) in &self.options {
            match entry.options.get(key) {
                None => {
                    return Some(format!(
                        "audit device {path} has option {key} in the config but not in the audit table"
                    ));
                }
                Some(stored) if stored != declared => {
                    return Some(format!(
                        "audit device {path} option {key} differs: {stored} (table) vs {declared} (config)"
                    ));
                }
                Some(_) => {}
            }
        }
        entry
            .options
            .keys()
            .find(|key| !self.options.contains_key(*key))
            .map(|key| {
                format!(
                    "audit device {path} has option {key} in the audit table but not in the config"
                )
            })
    }
}

/// The enabled devices; an observer on the core while at least one is enabled.
pub struct Broker {
    devices: ArcSwap<Vec<Arc<Device>>>,
    /// The devices the server configuration declares (replaced on SIGHUP).
    declared: ArcSwap<Vec<Declared>>,
    /// Serialises enable/disable/load (never held across device I/O of requests).
    lock: tokio::sync::Mutex<()>,
    /// How long a request waits for the first acknowledgement.
    deadline: Duration,
    /// Device files may not be written here (`plugin_directory`).
    plugin_directory: Option<PathBuf>,
    /// Moves at every [`Broker::clear`] (seal, step-down).
    epoch: std::sync::atomic::AtomicU64,
    /// `sys/config/auditing/request-headers`: lower-case header name → whether its values are
    /// HMAC'd. Stored at [`HEADERS_KEY`].
    headers: ArcSwap<BTreeMap<String, bool>>,
}

/// Where the audited request headers are kept (through the barrier).
pub(crate) const HEADERS_KEY: &str = "core/audited-headers";

impl Default for Broker {
    fn default() -> Self {
        Broker::new(DEFAULT_DEADLINE, None)
    }
}

fn salt_key(uuid: &str) -> String {
    format!("audit/{uuid}/salt")
}

impl Broker {
    /// A broker without devices.
    pub fn new(deadline: Duration, plugin_directory: Option<PathBuf>) -> Broker {
        Broker {
            devices: ArcSwap::default(),
            declared: ArcSwap::default(),
            lock: tokio::sync::Mutex::new(()),
            headers: ArcSwap::default(),
            deadline,
            plugin_directory,
            epoch: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The deadline a request waits for the first acknowledgement.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Closes and reopens every file device's file after the lines already queued (SIGHUP,
    /// after `logrotate` renamed it): each line lands whole in exactly one of the two files.
    pub fn reopen(&self) {
        for d in self.devices().iter() {
            d.reopen();
        }
    }

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

    /// Loads the table and opens every device (at unseal). A device that cannot be opened now
    /// stays enabled (fail-closed); requests retry opening it in the background.
    pub async fn load(&self, root: &Storage) -> Result<()> {
        let _g = self.lock.lock().await;
        let table: Vec<AuditEntry> = root.get_json(TABLE_KEY).await?.unwrap_or_default();
        let mut devices = Vec::new();
        for entry in table {
            let salt = match root.get(&salt_key(&entry.uuid)).await? {
                Some(s) => String::from_utf8(s).map_err(Error::internal)?,
                None => return Err(Error::internal("audit device salt missing")),
            };
            let device = Arc::new(Device::new(entry, salt, self.plugin_directory.as_deref())?);
            if let Err(e) = device.open().await {
                tracing::error!(audit.path = %device.entry.path, error = %e, "cannot open audit device");
            }
            devices.push(device);
        }
        self.devices.store(Arc::new(devices));
        let headers: BTreeMap<String, bool> = root.get_json(HEADERS_KEY).await?.unwrap_or_default();
        self.headers.store(Arc::new(headers));
        Ok(())
    }

    /// The audited request headers: lower-case name → HMAC'd. A guard, not a clone: the HTTP
    /// layer looks at it on every request.
    pub fn audited_headers(&self) -> arc_swap::Guard<Arc<BTreeMap<String, bool>>> {
        self.headers.load()
    }

    /// Adds (or changes) an audited request header; `None` removes it. Stored, then in effect.
    pub async fn set_audited_header(
        &self,
        root: &Storage,
        name: &str,
        hmac: Option<bool>,
    ) -> Result<()> {
        let _g = self.lock.lock().await;
        let mut next = (*self.headers.load_full()).clone();
        let name = name.to_ascii_lowercase();
        match hmac {
            Some(h) => {
                next.insert(name, h);
            }
            None => {
                next.remove(&name);
            }
        }
        root.put_json(HEADERS_KEY, &next).await?;
        self.headers.store(Arc::new(next));
        Ok(())
    }

    /// Forgets every device (at seal and step-down). A request already past its request entry
    /// still writes its response entry to the devices that took the request entry.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.devices.store(Arc::new(Vec::new()));
    }

    /// Enables a device through the API: checks the options, opens and probes it, stores it.
    /// The device is opened and probed before the broker's lock is taken, so a device that
    /// is slow to open holds up no other change or listing.
    pub async fn enable(&self, root: &Storage, entry: AuditEntry, skip_test: bool) -> Result<()> {
        let device = self.prepare(entry, skip_test, &self.devices()).await?;
        let _g = self.lock.lock().await;
        let current = self.devices();
        // Another change may have come first.
        path_free(&device.entry.path, &current)?;
        let mut next: Vec<Arc<Device>> = current.iter().cloned().collect();
        next.push(device.clone());
        self.commit(root, next, &[device], &[]).await
    }

    /// A device for `entry` that can be enabled beside `others`: type and options checked, the
    /// path free, its output opened and (unless `skip_test`) probed. Nothing is stored yet.
    async fn prepare(
        &self,
        mut entry: AuditEntry,
        skip_test: bool,
        others: &[Arc<Device>],
    ) -> Result<Arc<Device>> {
        entry.path = normalize(&entry.path);
        if !matches!(entry.kind.as_str(), "file" | "socket" | "syslog") {
            return Err(Error::bad(format!(
                "unknown backend type: \"{}\"",
                entry.kind
            )));
        }
        path_free(&entry.path, others)?;
        entry.uuid = crate::ids::uuid_v4();
        let salt = crate::ids::uuid_v4();
        let device = Arc::new(Device::new(entry, salt, self.plugin_directory.as_deref())?);
        device.check_new()?;
        device.open().await?;
        if !skip_test {
            device
                .probe(self.deadline)
                .await
                .map_err(|e| Error::bad(format!("audit backend failed test message: {e}")))?;
        }
        Ok(device)
    }

    /// Stores `next` as the table, with the salts of `added` (written first) and without those
    /// of `removed` (deleted after), then serves it.
    async fn commit(
        &self,
        root: &Storage,
        next: Vec<Arc<Device>>,
        added: &[Arc<Device>],
        removed: &[Arc<Device>],
    ) -> Result<()> {
        for d in added {
            root.put(&salt_key(&d.entry.uuid), d.salt().as_bytes().to_vec())
                .await?;
        }
        let table: Vec<AuditEntry> = next.iter().map(|d| d.entry.clone()).collect();
        root.put_json(TABLE_KEY, &table).await?;
        for d in removed {
            root.delete(&salt_key(&d.entry.uuid)).await?;
        }
        self.devices.store(Arc::new(next));
        Ok(())
    }

    /// Disables the device at `path` through the API; no error when none is there. A device
    /// the configuration declares stays (OpenBao's message).
    pub async fn disable(&self, root: &Storage, path: &str) -> Result<()> {
        let path = normalize(path);
        let _g = self.lock.lock().await;
        let current = self.devices();
        let Some(gone) = current.iter().find(|d| d.entry.path == path).cloned() else {
            return Ok(());
        };
        if gone.entry.declared {
            return Err(Error::bad(
                "cannot disable configuration-managed audit device",
            ));
        }
        let next: Vec<Arc<Device>> = current
            .iter()
            .filter(|d| d.entry.path != path)
            .cloned()
            .collect();
        self.commit(root, next, &[], &[gone]).await
    }

    /// Replaces the devices the configuration declares (at start and on SIGHUP); they take
    /// effect at the next [`Broker::apply_declared`].
    pub fn set_declared(&self, declared: Vec<Declared>) {
        self.declared.store(Arc::new(declared));
    }

    /// Brings the table in line with the configuration (after [`Broker::load`] at unseal, and on
    /// SIGHUP): a declared device that is missing is enabled (opened, and probed unless
    /// `skip_test`), a declared device no longer in the configuration is disabled, one that is
    /// present must be exactly as declared. All of it is checked, and every new device opened,
    /// before the table changes in one write: a conflict (a path the API uses, a changed block)
    /// or a device that cannot be opened changes nothing, and the error says which and why.
    /// New devices are opened and probed before the broker's lock is taken (a device slow to
    /// open holds up no `sys/audit` change or listing); the checks run again under the lock.
    pub async fn apply_declared(&self, root: &Storage) -> Result<()> {
        let declared = self.declared.load_full();
        let snapshot = self.devices();
        let missing = Self::missing_declared(&declared, &snapshot)?;
        let mut prepared: Vec<Arc<Device>> = Vec::new();
        for d in missing {
            let entry = AuditEntry {
                path: d.path.clone(),
                kind: d.kind.clone(),
                description: d.description.clone(),
                options: d.options.clone(),
                local: d.local,
                uuid: String::new(),
                declared: true,
            };
            let others: Vec<Arc<Device>> =
                snapshot.iter().chain(prepared.iter()).cloned().collect();
            let device = match d.options.get("skip_test").map(|v| device::parse_bool(v)) {
                Some(Err(e)) => Err(e),
                skip => {
                    let skip_test = matches!(skip, Some(Ok(true)));
                    self.prepare(entry, skip_test, &others).await
                }
            };
            let device = device.map_err(|e| {
                let why = e.messages().join("; ");
                config_error(format!(
                    "failed to create new audit device {}: {why}",
                    d.path
                ))
            })?;
            prepared.push(device);
        }
        let _g = self.lock.lock().await;
        // The table may have changed while the new devices opened: check again.
        let current = self.devices();
        let missing = Self::missing_declared(&declared, &current)?;
        let (removed, mut next): (Vec<Arc<Device>>, Vec<Arc<Device>>) = current
            .iter()
            .cloned()
            .partition(|c| c.entry.declared && !declared.iter().any(|d| d.path == c.entry.path));
        let mut added = Vec::new();
        for d in missing {
            let Some(device) = prepared.iter().find(|p| p.entry.path == d.path).cloned() else {
                return Err(config_error(format!(
                    "failed to create new audit device {}: the audit table changed meanwhile; send SIGHUP again",
                    d.path
                )));
            };
            path_free(&device.entry.path, &next)?;
            next.push(device.clone());
            added.push(device);
        }
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        for d in &removed {
            tracing::info!(audit.path = %d.entry.path, "disabling removed audit device");
        }
        for d in &added {
            tracing::info!(audit.path = %d.entry.path, "adding new audit device");
        }
        self.commit(root, next, &added, &removed).await
    }

    /// The declared devices `current` lacks; an error when a declared path is taken by a device
    /// the API created, or a present declared device differs from its block.
    fn missing_declared<'d>(
        declared: &'d [Declared],
        current: &[Arc<Device>],
    ) -> Result<Vec<&'d Declared>> {
        let mut missing = Vec::new();
        for d in declared {
            match current.iter().find(|c| c.entry.path == d.path) {
                None => missing.push(d),
                Some(c) if !c.entry.declared => {
                    return Err(config_error(format!(
                        "audit device in configuration (path: {}) was already created by API; remove the API audit device before attempting to create a duplicate configuration-based version",
                        d.path
                    )));
                }
                Some(c) => {
                    if let Some(why) = d.difference(&c.entry) {
                        return Err(config_error(format!(
                            "failed to validate audit device config {}: modifications to audit devices are not allowed: {why}",
                            d.path
                        )));
                    }
                }
            }
        }
        Ok(missing)
    }
}

/// A declared device that cannot be applied: a 500 that names the reason (Vault answers an
/// unseal whose setup failed with the error's text), logged as well.
fn config_error(message: String) -> Error {
    tracing::error!(error = %message, "audit devices of the configuration cannot be applied");
    Error::Coded(500, message)
}

/// Refuses a device path that is, contains or lies inside another device's path.
fn path_free(path: &str, others: &[Arc<Device>]) -> Result<()> {
    if others
        .iter()
        .any(|d| d.entry.path.starts_with(path) || path.starts_with(&d.entry.path))
    {
        return Err(Error::bad("path already in use"));
    }
    Ok(())
}

/// `file` → `file/`.
pub fn normalize(path: &str) -> String {
    let p = path.trim_matches('/');
    format!("{p}/")
}

/// One flag per device: a word on the stack for the first 64 devices, more words only beyond.
#[derive(Default)]
struct Flags {
    first: u64,
    more: Vec<u64>,
}

impl Flags {
    fn get(&self, i: usize) -> bool {
        let word = match i / 64 {
            0 => self.first,
            n => self.more.get(n - 1).copied().unwrap_or(0),
        };
        word & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize, on: bool) {
        let word = match i / 64 {
            0 => &mut self.first,
            n => {
                if self.more.len() < n {
                    self.more.resize(n, 0);
                }
                match self.more.get_mut(n - 1) {
                    Some(w) => w,
                    None => return,
                }
            }
        };
        if on {
            *word |= 1 << (i % 64);
        } else {
            *word &= !(1 << (i % 64));
        }
    }

    /// Whether any of the first `n` flags is set.
    fn any(&self, n: usize) -> bool {
        (0..n).any(|i| self.get(i))
    }

    /// Whether all of the first `n` flags are set.
    fn all(&self, n: usize) -> bool {
        (0..n).all(|i| self.get(i))
    }
}

/// One entry on its way to the devices: which answered, how.
struct Pending {
    acks: sink::AckChannel,
    /// Devices in play.
    count: usize,
    /// A device accepted the entry at submission (written inline, `discard`), not yet looked at.
    accepted_early: bool,
    /// Failures known at submission (a full queue, an output that cannot be opened), not yet
    /// looked at.
    early_errors: Vec<(usize, std::io::Error)>,
    /// Per device: answered yet.
    answered: Flags,
    /// Per device: answered with an error.
    failed: Flags,
    /// Failures are not logged one by one (a retry reports its outcome once).
    quiet: bool,
    /// A response entry (else a request entry), for the per-device timers.
    response: bool,
    /// When it was handed to the devices.
    started: Instant,
}

thread_local! {
    /// The line being built and handed to a device: reused, so a request allocates no entry
    /// buffer when its lines are written inline.
    static LINE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(4096));
}

impl Pending {
    fn new(count: usize, response: bool) -> Pending {
        Pending {
            acks: sink::AckChannel::default(),
            count,
            accepted_early: false,
            early_errors: Vec::new(),
            answered: Flags::default(),
            failed: Flags::default(),
            quiet: false,
            response,
            started: Instant::now(),
        }
    }

    /// Notes an outcome known at submission.
    fn early(&mut self, i: usize, outcome: std::io::Result<()>) {
        match outcome {
            Ok(()) => {
                self.answered.set(i, true);
                self.accepted_early = true;
            }
            Err(e) => self.early_errors.push((i, e)),
        }
    }

    /// Builds each device's line with `build` and hands it to the device at once. A response
    /// entry (`keep`) returns a copy of each line not already written (for a retry); a request
    /// entry nothing.
    fn submit(
        devices: &[Arc<Device>],
        keep: bool,
        mut build: impl FnMut(&Device, &mut Vec<u8>),
    ) -> (Pending, Vec<Option<Vec<u8>>>) {
        let mut p = Pending::new(devices.len(), keep);
        let mut kept = Vec::new();
        for (i, d) in devices.iter().enumerate() {
            d.open_in_background();
            let outcome = LINE.with_borrow_mut(|line| {
                line.clear();
                let outcome = match d.line(line, |out| build(d, out)) {
                    Ok(()) => d.submit(line, i, &mut p.acks),
                    Err(e) => Some(Err(e)),
                };
                if keep {
                    let written = matches!(outcome, Some(Ok(())));
                    kept.push((!written).then(|| line.clone()));
                }
                outcome
            });
            if let Some(r) = outcome {
                // A failure is timed when it is looked at (`settle`).
                if r.is_ok() {
                    d.time_entry(p.response, p.started);
                }
                p.early(i, r);
            }
        }
        (p, kept)
    }

    /// Hands the lines again to the devices that failed.
    fn resubmit(&mut self, devices: &[Arc<Device>], lines: &[Option<Vec<u8>>]) {
        for (i, (d, line)) in devices.iter().zip(lines).enumerate() {
            if let Some(line) = line
                && self.failed.get(i)
            {
                self.failed.set(i, false);
                self.answered.set(i, false);
                if let Some(r) = d.submit(line, i, &mut self.acks) {
                    self.early(i, r);
                }
            }
        }
    }

    /// Notes device `i`'s outcome; true when it accepted the entry. A failure is logged with
    /// the request id and the device path.
    fn settle(
        &mut self,
        devices: &[Arc<Device>],
        i: usize,
        result: std::io::Result<()>,
        request_id: &str,
        what: &str,
    ) -> bool {
        self.answered.set(i, true);
        if let Some(d) = devices.get(i) {
            d.time_entry(self.response, self.started);
        }
        match result {
            Ok(()) => true,
            Err(e) => {
                self.failed.set(i, true);
                if self.quiet {
                    return false;
                }
                let path = devices.get(i).map_or("", |d| d.entry.path.as_str());
                tracing::error!(audit.path = %path, request.id = %request_id, error = %e, "audit device failed to log the {what}");
                false
            }
        }
    }

    /// Waits until one device accepted (true), all answered, or `until` passed.
    async fn wait(
        &mut self,
        devices: &[Arc<Device>],
        until: Instant,
        request_id: &str,
        what: &str,
    ) -> bool {
        for (i, e) in std::mem::take(&mut self.early_errors) {
            self.settle(devices, i, Err(e), request_id, what);
        }
        if std::mem::take(&mut self.accepted_early) {
            return true;
        }
        while !self.answered.all(self.count) {
            let left = until.saturating_duration_since(Instant::now());
            let Ok(Some((i, result))) = tokio::time::timeout(left, self.acks.recv()).await else {
                return false;
            };
            if self.settle(devices, i, result, request_id, what) {
                return true;
            }
        }
        false
    }

    /// The paths of the devices that have not answered.
    fn silent(&self, devices: &[Arc<Device>]) -> Vec<String> {
        devices
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.answered.get(*i))
            .map(|(_, d)| d.entry.path.clone())
            .collect()
    }

    /// The devices that have not answered by the deadline, each counted as a `timeout`.
    fn timed_out(&self, devices: &[Arc<Device>]) -> Vec<String> {
        let silent = self.silent(devices);
        for path in &silent {
            count_device_failure(path, "timeout", 1);
        }
        silent
    }
}

/// Entries of device `path` that did not make it (`telemetry::AUDIT_DEVICE_FAILURES`).
pub(crate) fn count_device_failure(path: &str, reason: &'static str, n: usize) {
    metrics::counter!(telemetry::AUDIT_DEVICE_FAILURES, "device" => path.to_owned(), "reason" => reason)
        .increment(n as u64);
}

/// What the first device encoded of a request entry that its response entry repeats (kept on
/// the request's record between the two hooks). Holding the device keeps its address from
/// being reused by another device in the meantime.
struct Kept {
    /// The devices the request entry went to; the first one keeps `repeated`.
    devices: Arc<Vec<Arc<Device>>>,
    repeated: entry::Repeated,
    /// The broker's epoch then.
    epoch: u64,
    /// No device accepted the request entry in time: the response entry is not waited for
    /// (it goes to the devices and is retried in the background), so a request refused for
    /// want of an audit device fails within one deadline, not two.
    unaccepted: std::sync::atomic::AtomicBool,
}

/// `sys/audit` and `sys/audit/<path>`: device management, which must work while devices are
/// stuck (hashicorp/vault#15932).
fn is_management(path: &str) -> bool {
    path == "sys/audit" || path.starts_with("sys/audit/")
}

/// Response entries being retried at once ([`Broker::retry_response`]); past it, a response
/// entry no device accepted is reported at once (memory stays bounded while every device
/// fails under load).
const MAX_RETRYING: usize = 256;
static RETRYING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One of [`MAX_RETRYING`], given back when dropped.
struct RetrySlot;

impl RetrySlot {
    fn take() -> Option<RetrySlot> {
        use std::sync::atomic::Ordering;
        if RETRYING.fetch_add(1, Ordering::AcqRel) < MAX_RETRYING {
            Some(RetrySlot)
        } else {
            RETRYING.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }
}

impl Drop for RetrySlot {
    fn drop(&mut self) {
        RETRYING.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Broker {
    /// A response entry no device took, in the server log with its request id and the entry
    /// itself as a device with hashing would have written it (so it is not lost); withheld
    /// when every device logs raw (the server log never gets plaintext).
    fn report_lost(
        devices: &[Arc<Device>],
        entries: &[Option<Vec<u8>>],
        pending: &Pending,
        request_id: &str,
        path: &str,
        why: &str,
    ) {
        let entry = devices
            .iter()
            .zip(entries)
            .find_map(|(d, line)| line.as_ref().filter(|_| !d.log_raw))
            .map_or_else(
                || "(withheld: every device logs raw)".to_string(),
                |line| String::from_utf8_lossy(line).trim_end().to_string(),
            );
        tracing::error!(
            request.id = %request_id,
            request.path = %crate::http::redacted_path(path),
            audit.devices = ?devices.iter().map(|d| format!("{} ({})", d.entry.path, d.target())).collect::<Vec<_>>(),
            audit.still_queued = ?pending.silent(devices),
            audit.entry = %entry,
            "audit response entry lost: {why}"
        );
        metrics::counter!(telemetry::AUDIT_RESPONSE_LOST).increment(1);
    }

    /// Writes a response entry no device accepted within the deadline: waits for late
    /// acknowledgements and retries the devices that failed, for up to
    /// [`RESPONSE_RETRY_WINDOW`]; a response entry still not written is reported in the server
    /// log ([`Broker::report_lost`]).
    async fn retry_response(
        devices: Arc<Vec<Arc<Device>>>,
        entries: Vec<Option<Vec<u8>>>,
        mut pending: Pending,
        request_id: String,
        path: String,
        started: Instant,
    ) {
        let until = started + RESPONSE_RETRY_WINDOW;
        let mut attempt = 0u64;
        pending.quiet = true;
        loop {
            if pending.wait(&devices, until, &request_id, "response").await {
                tracing::warn!(request.id = %request_id, request.path = %crate::http::redacted_path(&path), "audit response entry written late (after the deadline)");
                return;
            }
            if Instant::now() >= until
                || pending.answered.all(pending.count) && !pending.failed.any(pending.count)
            {
                let why = format!("no audit device accepted it within {RESPONSE_RETRY_WINDOW:?}");
                Self::report_lost(&devices, &entries, &pending, &request_id, &path, &why);
                return;
            }
            if pending.failed.any(pending.count) {
                // Back off a little, then try the devices that failed again (a device still
                // silent keeps its queued copy: no duplicates).
                attempt += 1;
                let pause = Duration::from_millis(50 * attempt.min(10));
                tokio::time::sleep(pause.min(until.saturating_duration_since(Instant::now())))
                    .await;
                pending.resubmit(&devices, &entries);
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestObserver for Broker {
    async fn on_request(&self, request: &RequestRecord) -> Result<()> {
        let devices = self.devices();
        if devices.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        // The first device keeps what the response entry repeats of this one.
        let mut repeated = entry::Repeated::default();
        let (mut pending, _) = Pending::submit(&devices, false, |d, out| {
            let keep = devices.first().is_some_and(|f| std::ptr::eq(&**f, d));
            d.write_request_entry(out, request, keep.then_some(&mut repeated));
        });
        request.scratch.keep(Kept {
            devices: devices.clone(),
            repeated,
            epoch: self.epoch.load(std::sync::atomic::Ordering::Acquire),
            unaccepted: std::sync::atomic::AtomicBool::new(false),
        });
        let ok = pending
            .wait(
                &devices,
                started + self.deadline,
                &request.request_id,
                "request",
            )
            .await;
        telemetry::AUDITED_REQUEST.record(started, ok);
        if ok {
            return Ok(());
        }
        if let Some(k) = request.scratch.get::<Kept>() {
            k.unaccepted
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let silent = pending.timed_out(&devices);
        if !silent.is_empty() {
            tracing::error!(audit.devices = ?silent, request.id = %request.request_id, "audit devices did not log the request within {:?}", self.deadline);
        }
        if request.errors.is_empty() && is_management(&request.path) {
            // The operator repairing the devices is not locked out by them; the server log
            // keeps the record.
            tracing::warn!(
                request.id = %request.request_id,
                request.path = %request.path,
                request.operation = ?request.operation,
                "no audit device accepted the request entry; audit device management proceeds"
            );
            return Ok(());
        }
        Err(Error::internal(
            "no audit device accepted the request entry",
        ))
    }

    async fn on_response(&self, request: &RequestRecord, response: &ResponseRecord) -> Result<()> {
        let kept = request.scratch.get::<Kept>();
        let mut devices = self.devices();
        if devices.is_empty() {
            // Sealed or stepped down while the request ran: its response entry still goes
            // where its request entry went (those devices stay open while referenced), not
            // nowhere. Devices disabled by an API call do not count: that is no new epoch.
            match kept {
                Some(k) if k.epoch != self.epoch.load(std::sync::atomic::Ordering::Acquire) => {
                    devices = k.devices.clone();
                }
                _ => return Ok(()),
            }
        }
        let started = Instant::now();
        let (mut pending, entries) = Pending::submit(&devices, true, |d, out| {
            let repeated = kept
                .filter(|k| k.devices.first().is_some_and(|f| std::ptr::eq(&**f, d)))
                .map(|k| &k.repeated);
            d.write_response_entry(out, request, response, repeated);
        });
        // After a request entry no device took, only what the devices accept at once counts
        // now; the rest is retried in the background.
        let deadline =
            if kept.is_some_and(|k| k.unaccepted.load(std::sync::atomic::Ordering::Relaxed)) {
                Duration::ZERO
            } else {
                self.deadline
            };
        let ok = pending
            .wait(
                &devices,
                started + deadline,
                &request.request_id,
                "response",
            )
            .await;
        telemetry::AUDITED_RESPONSE.record(started, ok);
        if ok {
            return Ok(());
        }
        // Not lost yet: retried in the background; the client gets Vault's 500 now.
        pending.timed_out(&devices);
        if let Some(slot) = RetrySlot::take() {
            let (id, path) = (request.request_id.clone(), request.path.clone());
            tokio::spawn(async move {
                Self::retry_response(devices, entries, pending, id, path, started).await;
                drop(slot);
            });
        } else {
            Self::report_lost(
                &devices,
                &entries,
                &pending,
                &request.request_id,
                &request.path,
                &format!("{MAX_RETRYING} response entries are being retried already"),
            );
        }
        if request.errors.is_empty() && is_management(&request.path) {
            return Ok(());
        }
        Err(Error::internal(
            "no audit device accepted the response entry",
        ))
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::core::observer::MountInfo;
    use crate::logical::Operation;
    use crate::secret::Secret;

    /// The direct writer puts every field where Go's struct order (`format::Shape`) puts it.
    fn same_bytes_as_the_tree_encoder(d: &Device, r: &RequestRecord, resp: &ResponseRecord) {
        for json in [d.request_entry(r), d.response_entry(r, resp)] {
            let tree: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let mut again = Vec::new();
            format::write_entry(&mut again, &tree).unwrap();
            assert_eq!(
                String::from_utf8(json).unwrap(),
                String::from_utf8(again).unwrap()
            );
        }
    }

    /// `cargo test --release --lib audit::bench -- --ignored --nocapture`: the cost of building
    /// and encoding the two entries of a kv read.
    fn sample() -> (Device, RequestRecord, ResponseRecord) {
        let entry = AuditEntry {
            path: "f/".into(),
            kind: "file".into(),
            description: String::new(),
            options: [("file_path".to_string(), "discard".to_string())].into(),
            local: false,
            uuid: "u".into(),
            declared: false,
        };
        let d = Device::new(entry, "salt".into(), None).unwrap();
        let token: crate::token::TokenEntry = serde_json::from_value(serde_json::json!({
            "key": "k", "accessor_key": "a", "parent_key": null, "policies": ["root"], "path": "auth/token/root",
            "meta": null, "display_name": "token", "num_uses": 0, "creation_nanos": 1_700_000_000_000_000_000i128,
            "creation_ttl": 0, "ttl": 0, "expire_nanos": null, "explicit_max_ttl": 0, "period": 0,
            "renewable": false, "has_lease": false, "last_renewal_nanos": null, "entity_id": "",
            "bound_cidrs": [], "cubbyhole_id": "c", "token_type": "service", "mount_accessor": "m", "backend_max_ttl": 0, "internal": {}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let r = RequestRecord {
            request_id: crate::ids::uuid_v4(),
            operation: Operation::Read,
            path: "secret/data/mysql/db".into(),
            mount: Some(MountInfo {
                kind: "kv".into(),
                accessor: "kv_12345678".into(),
                path: "secret/".into(),
                non_hmac_request_keys: Vec::new(),
                non_hmac_response_keys: Vec::new(),
            }),
            client_addr: Some([127, 0, 0, 1].into()),
            client_port: Some(40000),
            wrap_ttl: None,
            token: Some(Arc::new(token)),
            data: serde_json::Map::new(),
            client_token: Some(Secret::new("root")),
            client_token_accessor: Some(Secret::new("accessor-xyz")),
            errors: Vec::new(),
            granting_policies: vec![Arc::from("root")],
            headers: Vec::new(),
            scratch: Default::default(),
            token_check_failed: false,
            wrapping_refused: false,
        };
        let data = serde_json::json!({"data": {"username": "jenkins", "password": "s3cr3t-p4ssw0rd-0123456789"},
            "metadata": {"created_time": "2026-12-02T04:00:00.123Z", "custom_metadata": null,
                         "deletion_time": "", "destroyed": false, "version": 1}});
        let resp = ResponseRecord {
            status: 200,
            data: data.as_object().cloned(),
            ..Default::default()
        };
        (d, r, resp)
    }

    /// The entry `type`s and request ids of a file device's lines.
    fn logged(path: &std::path::Path) -> Vec<(String, String)> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["type"].as_str().unwrap().to_string(),
                    v["request"]["id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// A request past its request entry when the node seals or steps down (the broker forgets
    /// its devices) still writes its response entry, to the devices that took the request
    /// entry; before, it found no device and its response went out unaudited. A device
    /// disabled through the API in the meantime takes no response entry (as in Vault).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_in_flight_at_seal_still_writes_its_response_entry() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(
            Arc::new(crate::physical::inmem::InmemBackend::new()),
            "sys/",
            Arc::new(crate::storage::KeyLocks::default()),
        );
        let broker = Broker::default();
        let file = |name: &str| AuditEntry {
            path: name.into(),
            kind: "file".into(),
            description: String::new(),
            options: [(
                "file_path".to_string(),
                dir.path().join(name).display().to_string(),
            )]
            .into(),
            local: false,
            uuid: String::new(),
            declared: false,
        };
        let (_, r, resp) = sample();
        broker.enable(&storage, file("f"), true).await.unwrap();
        broker.on_request(&r).await.unwrap();
        broker.clear();
        broker.on_response(&r, &resp).await.unwrap();
        let id = r.request_id.clone();
        assert_eq!(
            logged(&dir.path().join("f")),
            [
                ("request".to_string(), id.clone()),
                ("response".to_string(), id)
            ]
        );

        broker.load(&storage).await.unwrap();
        broker.enable(&storage, file("g"), true).await.unwrap();
        broker.disable(&storage, "f").await.unwrap();
        let (_, r, resp) = sample();
        broker.on_request(&r).await.unwrap();
        broker.disable(&storage, "g").await.unwrap();
        broker.on_response(&r, &resp).await.unwrap();
        assert_eq!(
            logged(&dir.path().join("g")),
            [("request".to_string(), r.request_id.clone())]
        );
    }

    #[test]
    fn direct_writer_matches_the_tree_encoder() {
        let (d, r, resp) = sample();
        same_bytes_as_the_tree_encoder(&d, &r, &resp);
        let mut login = r.clone();
        login.token = None;
        login.errors = vec!["permission denied".into()];
        same_bytes_as_the_tree_encoder(&d, &login, &resp);
    }

    /// An entry without its `time` (the one field two encodings of an entry differ in).
    fn timeless(line: &[u8]) -> String {
        let text = String::from_utf8(line.to_vec()).unwrap();
        let at = text.find(r#""time":""#).unwrap() + r#""time":""#.len();
        let end = at + text[at..].find('"').unwrap();
        format!("{}{}", &text[..at], &text[end..])
    }

    #[test]
    fn a_response_entry_from_the_kept_request_parts_is_the_one_encoded_afresh() {
        let (d, r, resp) = sample();
        let mut variants = Vec::new();
        for op in [
            Operation::Read,
            Operation::List,
            Operation::Create,
            Operation::Update,
            Operation::Delete,
        ] {
            let mut v = r.clone();
            v.operation = op;
            variants.push(v.clone());
            v.errors = vec!["permission denied".into()];
            variants.push(v);
        }
        let mut no_mount = r.clone();
        no_mount.mount = None;
        variants.push(no_mount);
        let mut login = r.clone();
        login.token = None;
        login.client_token = None;
        login.client_token_accessor = None;
        login.data = serde_json::json!({"role_id": "r", "secret_id": "s", "n": 3})
            .as_object()
            .cloned()
            .unwrap();
        variants.push(login);
        let mut with_meta = r.clone();
        if let Some(t) = with_meta.token.as_mut() {
            let t = Arc::make_mut(t);
            t.meta = Some([("role_name".to_string(), "jen\"kins".to_string())].into());
            t.num_uses = 3;
        }
        with_meta.wrap_ttl = Some(60);
        variants.push(with_meta);
        for v in &variants {
            let mut kept = entry::Repeated::default();
            let mut request = Vec::new();
            d.write_request_entry(&mut request, v, Some(&mut kept));
            assert_eq!(timeless(&request), timeless(&d.request_entry(v)));
            let mut from_kept = Vec::new();
            d.write_response_entry(&mut from_kept, v, &resp, Some(&kept));
            assert_eq!(
                timeless(&from_kept),
                timeless(&d.response_entry(v, &resp)),
                "{:?} {:?}",
                v.operation,
                v.errors
            );
        }
    }

    #[test]
    #[ignore]
    fn entry_cost() {
        let (d, r, resp) = sample();
        same_bytes_as_the_tree_encoder(&d, &r, &resp);
        let n = 20_000;
        let mut line = Vec::new();
        let t = std::time::Instant::now();
        let mut bytes = 0;
        for _ in 0..n {
            line.clear();
            let mut kept = entry::Repeated::default();
            d.line(&mut line, |out| {
                d.write_request_entry(out, &r, Some(&mut kept));
            })
            .unwrap();
            bytes += line.len();
            line.clear();
            d.line(&mut line, |out| {
                d.write_response_entry(out, &r, &resp, Some(&kept));
            })
            .unwrap();
            bytes += line.len();
        }
        let per = t.elapsed() / n;
        let t = std::time::Instant::now();
        for _ in 0..n {
            let a = d.request_entry(&r);
            let b = d.response_entry(&r, &resp);
            std::hint::black_box((a, b));
        }
        let build = t.elapsed() / n;
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(d.hash("s3cr3t-p4ssw0rd-0123456789"));
        }
        let hash = t.elapsed() / n;
        println!(
            "two lines: {per:?} per request in a reused buffer ({build:?} into fresh ones), {} bytes; one HMAC {hash:?}",
            bytes / n as usize
        );
    }
}
