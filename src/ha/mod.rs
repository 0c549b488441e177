//! High availability: one active node, any number of standbys, over one PostgreSQL database.
//!
//! Each unsealed node runs [`Ha::run`]: as a standby it reads the lock row every retry interval
//! (or at once when a holder's release `NOTIFY`s), remembers the holder's advertised address for
//! forwarding, and takes the lock when it is free or expired. The new active loads everything
//! from storage ([`Core::step_up`]: keyring, policies, token salt, mounts, audit devices) and
//! serves; it renews on the lock's own connection and stops serving when it cannot prove the
//! lease within its deadline (`sent + ttl − margin`, measured from when the last successful
//! renewal was *sent*), when a fenced write comes back refused, on `sys/step-down`, on seal and
//! on shutdown. Stepping down drops every in-memory cache ([`Core::step_down`]) but keeps the
//! barrier unsealed. Writes are fenced in the database itself (`physical/postgresql.rs`), so a
//! node that is wrong about holding the lock still cannot commit.
//!
//! The lock row's `ha_value` holds the active node's `api_addr`: standbys read it from the row
//! they poll anyway (no barrier read, so a standby needs no fresh keyring to find its leader).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use crate::core::Core;
use crate::physical::pg_lock::{LockTimings, MemberRow, PgLock};
use crate::physical::postgresql::Fence;

/// How the node addresses itself to clients and peers.
#[derive(Debug, Clone)]
pub struct HaSettings {
    /// This node's API address (`api_addr`): where standbys forward and redirect to.
    pub api_addr: String,
    /// This node's cluster address (shown by `sys/leader`).
    pub cluster_addr: String,
    /// PEM files whose certificates the forwarding client trusts besides the public roots
    /// (`VAULT_CACERT`, and this node's own listener certificates: a shared self-signed
    /// certificate, or a chain that includes its CA).
    pub trusted_pem_files: Vec<std::path::PathBuf>,
}

/// What a standby knows about the active node.
#[derive(Debug, Clone)]
struct LeaderSeen {
    address: Option<String>,
    at: Instant,
}

/// Why the node left the active state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// Step-down, seal or shutdown: release the lock.
    Graceful,
    /// The lease could not be proven or a write was refused: the lock is (or may be) someone
    /// else's; nothing to release.
    Lost,
}

/// The HA state of one node.
pub struct Ha {
    lock: PgLock,
    /// The member rows (`sys/ha-status`), on a connection of their own.
    members: PgLock,
    /// This node's id among the members (fixed for the process).
    node_id: String,
    /// Held while the member row is written or removed: a write never lands after the removal.
    member_write: tokio::sync::Mutex<()>,
    fence: Arc<Fence>,
    settings: HaSettings,
    timings: LockTimings,
    epoch: Instant,
    /// True between a finished step-up and the start of a step-down.
    active: AtomicBool,
    /// Milliseconds after `epoch` until which the lease is proven (sent + ttl − margin).
    deadline_ms: AtomicU64,
    active_since: Mutex<Option<SystemTime>>,
    leader: Mutex<Option<LeaderSeen>>,
    wake: Notify,
    step_down: AtomicBool,
    shutting_down: AtomicBool,
    stopped: Notify,
    running: AtomicBool,
}

impl std::fmt::Debug for Ha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ha")
            .field("api_addr", &self.settings.api_addr)
            .field("active", &self.is_active())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The host's name (empty when it cannot be read).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// `d` ± 20 %.
fn jitter(d: Duration) -> Duration {
    let factor = 0.8 + rand::random::<f64>() * 0.4;
    d.mul_f64(factor)
}

impl Ha {
    /// The HA state over `lock` and `fence` (from the same PostgreSQL engine).
    pub fn new(lock: PgLock, fence: Arc<Fence>, settings: HaSettings) -> Arc<Self> {
        let timings = lock.timings();
        Arc::new(Ha {
            members: lock.another(),
            node_id: uuid::Uuid::new_v4().to_string(),
            member_write: tokio::sync::Mutex::new(()),
            lock,
            fence,
            settings,
            timings,
            epoch: Instant::now(),
            active: AtomicBool::new(false),
            deadline_ms: AtomicU64::new(0),
            active_since: Mutex::new(None),
            leader: Mutex::new(None),
            wake: Notify::new(),
            step_down: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            stopped: Notify::new(),
            running: AtomicBool::new(false),
        })
    }

    /// The lock timings.
    pub fn timings(&self) -> LockTimings {
        self.timings
    }

    /// This node's settings.
    pub fn settings(&self) -> &HaSettings {
        &self.settings
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// True while this node is active and its lease is proven: checked by every request, so a
    /// node that was frozen past its lease refuses to serve the moment it runs again.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
            && self.millis(Instant::now()) < self.deadline_ms.load(Ordering::SeqCst)
    }

    /// When this node became active (while it is).
    pub fn active_since(&self) -> Option<SystemTime> {
        if self.is_active() {
            *lock(&self.active_since)
        } else {
            None
        }
    }

    /// The active node's API address, if one is known and was seen recently (within two poll
    /// intervals, at least one second).
    pub fn leader_address(&self) -> Option<String> {
        if self.is_active() {
            return Some(self.settings.api_addr.clone());
        }
        let fresh = (self.timings.retry * 2).max(Duration::from_secs(1));
        let seen = lock(&self.leader).clone()?;
        if seen.at.elapsed() > fresh {
            return None;
        }
        seen.address
    }

    fn saw_leader(&self, address: Option<String>) {
        *lock(&self.leader) = Some(LeaderSeen {
            address,
            at: Instant::now(),
        });
    }

    /// Asks the active node to step down (`sys/step-down`); it waits before competing again.
    pub fn request_step_down(&self) {
        if self.active.load(Ordering::SeqCst) {
            self.step_down.store(true, Ordering::SeqCst);
            self.wake.notify_one();
        }
    }

    /// Wakes the loop (after unseal or seal).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// Stops the loop: steps down and releases the lock if held (waits at most `2 × op timeout`),
    /// and removes this node's member row.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let stopped = self.stopped.notified();
        self.wake.notify_one();
        if self.running.load(Ordering::SeqCst) {
            let _ = tokio::time::timeout(self.timings.op_timeout() * 2, stopped).await;
        }
        let _writing = self.member_write.lock().await;
        if let Err(e) = self.members.remove_member(&self.node_id).await {
            tracing::debug!(error = %e, "HA: removing this node's member row failed (it expires)");
        }
    }

    /// This node's id among the members.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// What this node tells the others about itself (its member row).
    fn member_value(&self) -> String {
        serde_json::json!({
            "hostname": hostname(),
            "api_address": self.settings.api_addr,
            "cluster_address": self.settings.cluster_addr,
            "version": env!("CARGO_PKG_VERSION"),
        })
        .to_string()
    }

    /// Every node's member row (`sys/ha-status`).
    pub async fn members(&self) -> Result<Vec<MemberRow>, String> {
        self.members.members().await.map_err(|e| e.to_string())
    }

    /// Writes this node's member row every renewal interval while unsealed, until shutdown.
    async fn announce(self: Arc<Self>, core: Weak<Core>) {
        let value = self.member_value();
        while !self.stopping() {
            let Some(c) = core.upgrade() else { break };
            let sealed = c.barrier.is_sealed();
            drop(c);
            if !sealed {
                let _writing = self.member_write.lock().await;
                if self.stopping() {
                    break;
                }
                if let Err(e) = self.members.put_member(&self.node_id, &value).await {
                    tracing::debug!(error = %e, "HA: writing this node's member row failed");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.timings.renew) => {}
                () = self.stopped.notified() => {}
            }
        }
    }

    /// While this node is a standby, its copy of the rate-limit quotas follows storage every
    /// renewal interval (`Core::refresh_standby_quotas`).
    async fn follow_quotas(self: Arc<Self>, core: Weak<Core>) {
        while !self.stopping() {
            let Some(c) = core.upgrade() else { break };
            if c.is_standby() && c.refresh_standby_quotas().await.is_err() {
                // Written under a key the active node rotated in since: read the keyring again.
                let again = match c.read_keyring().await {
                    Ok(()) => c.refresh_standby_quotas().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = again {
                    tracing::debug!(error = %e, "HA: reading the rate-limit quotas failed");
                }
            }
            drop(c);
            tokio::select! {
                () = tokio::time::sleep(self.timings.renew) => {}
                () = self.stopped.notified() => {}
            }
        }
    }

    fn stopping(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Sleeps up to `d`, or until woken (unseal, step-down, shutdown) or a release is notified.
    async fn pause(&self, d: Duration) {
        let released = self.lock.wakeups();
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = self.wake.notified() => {}
            () = released.notified() => {}
        }
    }

    /// The election loop; runs until [`Ha::shutdown`] or the core is dropped.
    pub async fn run(self: Arc<Self>, core: Weak<Core>) {
        self.running.store(true, Ordering::SeqCst);
        tokio::spawn(self.clone().announce(core.clone()));
        tokio::spawn(self.clone().follow_quotas(core.clone()));
        let mut hold_off_until: Option<Instant> = None;
        while !self.stopping() {
            let Some(c) = core.upgrade() else { break };
            if c.barrier.is_sealed() {
                drop(c);
                self.pause(self.timings.retry).await;
                continue;
            }
            let holder = match self.lock.holder().await {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "HA: cannot read the lock");
                    self.saw_leader(None);
                    drop(c);
                    self.pause(jitter(self.timings.retry)).await;
                    continue;
                }
            };
            if let Some(h) = holder.as_ref().filter(|h| h.live) {
                self.saw_leader(Some(h.value.clone()));
                drop(c);
                self.pause(jitter(self.timings.retry)).await;
                continue;
            }
            self.saw_leader(None);
            if hold_off_until.is_some_and(|t| Instant::now() < t) {
                drop(c);
                self.pause(jitter(self.timings.retry)).await;
                continue;
            }
            let identity = uuid::Uuid::new_v4().to_string();
            let sent = Instant::now();
            match self
                .lock
                .try_acquire(&identity, &self.settings.api_addr)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    drop(c);
                    self.pause(jitter(self.timings.retry)).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "HA: cannot take the lock");
                    drop(c);
                    self.pause(jitter(self.timings.retry)).await;
                    continue;
                }
            }
            let hold_off = self.serve_as_active(&c, &identity, sent).await;
            drop(c);
            hold_off_until = hold_off.then(|| Instant::now() + self.timings.ttl);
        }
        self.running.store(false, Ordering::SeqCst);
        self.stopped.notify_waiters();
    }

    fn prove_until(&self, sent: Instant) {
        let until = sent
            + self
                .timings
                .ttl
                .saturating_sub(self.timings.safety_margin());
        self.deadline_ms.store(self.millis(until), Ordering::SeqCst);
    }

    fn deadline(&self) -> Instant {
        self.epoch + Duration::from_millis(self.deadline_ms.load(Ordering::SeqCst))
    }

    /// Holds the lock under `identity` (acquired at `sent`) until it is lost or given up; returns
    /// true when this node should wait before competing again: after a manual step-down, or
    /// when its step-up failed (another node may be able to serve).
    async fn serve_as_active(&self, core: &Arc<Core>, identity: &str, sent: Instant) -> bool {
        self.fence.hold(Some(identity.to_owned()));
        self.prove_until(sent);
        self.step_down.store(false, Ordering::SeqCst);
        let started = Instant::now();
        // The lease is renewed while the node steps up: a step-up longer than the lease (many
        // mounts, an audit device slow to open) must not lose the lock it is for.
        let mut next_renewal = Instant::now() + self.timings.renew;
        let stepped = {
            let step_up = core.step_up();
            tokio::pin!(step_up);
            loop {
                tokio::select! {
                    r = &mut step_up => break r.map_err(|e| e.to_string()),
                    () = tokio::time::sleep_until(next_renewal.into()) => {}
                }
                if !self.renew_once(identity, &mut next_renewal).await {
                    break Err("the lock was lost during the step-up".to_owned());
                }
            }
        };
        if let Err(e) = stepped {
            metrics::histogram!(crate::telemetry::CORE_LEADERSHIP_SETUP_FAILED)
                .record(crate::telemetry::ms_since(started));
            tracing::error!(error = %e, "HA: step-up failed; back to standby");
            self.leave(core, identity, Leave::Graceful).await;
            return true;
        }
        *lock(&self.active_since) = Some(SystemTime::now());
        self.active.store(true, Ordering::SeqCst);
        core.became_active();
        tracing::info!(
            step_up_ms = started.elapsed().as_millis() as u64,
            "HA: this node is now active"
        );
        let lost = self.fence.lost();
        let how = loop {
            let wake_at = next_renewal.min(self.deadline());
            tokio::select! {
                () = tokio::time::sleep_until(wake_at.into()) => {}
                () = self.wake.notified() => {}
                () = lost.notified() => {
                    // A permit left over from an earlier term is not about this one.
                    if self.fence.identity().is_none_or(|id| id.as_str() != identity) {
                        tracing::warn!("HA: a write was refused by the lock: stepping down");
                        break Leave::Lost;
                    }
                }
            }
            if self.stopping() || self.step_down.load(Ordering::SeqCst) || core.barrier.is_sealed()
            {
                break Leave::Graceful;
            }
            if Instant::now() >= self.deadline() {
                tracing::warn!("HA: the lease could not be renewed in time: stepping down");
                break Leave::Lost;
            }
            if Instant::now() < next_renewal {
                continue;
            }
            if !self.renew_once(identity, &mut next_renewal).await {
                tracing::warn!("HA: the lock is no longer ours: stepping down");
                break Leave::Lost;
            }
        };
        let manual = self.step_down.swap(false, Ordering::SeqCst);
        self.leave(core, identity, how).await;
        manual && how == Leave::Graceful
    }

    /// Renews the lease under `identity` once: on success the self-demotion deadline moves and
    /// the next renewal is due one interval after this one was sent; an error is retried a
    /// quarter interval later. False when the lock is no longer ours.
    async fn renew_once(&self, identity: &str, next_renewal: &mut Instant) -> bool {
        let sent = Instant::now();
        match self.lock.renew(identity).await {
            Ok(true) => {
                self.prove_until(sent);
                *next_renewal = sent + self.timings.renew;
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(error = %e, "HA: lock renewal failed; retrying");
                *next_renewal = Instant::now() + (self.timings.renew / 4);
                true
            }
        }
    }

    /// Stops serving, drops the caches, and (gracefully) releases the lock.
    async fn leave(&self, core: &Core, identity: &str, how: Leave) {
        self.active.store(false, Ordering::SeqCst);
        self.deadline_ms.store(0, Ordering::SeqCst);
        if let Some(since) = lock(&self.active_since).take() {
            let active = SystemTime::now().duration_since(since).unwrap_or_default();
            metrics::histogram!(crate::telemetry::CORE_LEADERSHIP_LOST)
                .record(active.as_secs_f64() * 1000.0);
        }
        core.step_down();
        self.fence.hold(None);
        if how == Leave::Graceful
            && let Err(e) = self.lock.release(identity).await
        {
            tracing::warn!(error = %e, "HA: releasing the lock failed (it expires by itself)");
        }
        self.saw_leader(None);
        tracing::info!("HA: this node is now a standby");
    }

    /// Holds the lock for the duration of `sys/init` (which writes through the fence before any
    /// node is active): `Ok(identity)` when taken, an error when another node holds it.
    pub async fn hold_for_init(&self) -> Result<String, String> {
        let identity = uuid::Uuid::new_v4().to_string();
        match self
            .lock
            .try_acquire(&identity, &self.settings.api_addr)
            .await
        {
            Ok(true) => {
                self.fence.hold(Some(identity.clone()));
                Ok(identity)
            }
            Ok(false) => Err("another node holds the HA lock".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Ends [`Ha::hold_for_init`].
    pub async fn release_after_init(&self, identity: &str) {
        self.fence.hold(None);
        if let Err(e) = self.lock.release(identity).await {
            tracing::warn!(error = %e, "HA: releasing the lock after init failed");
        }
    }
}
