//! The core's metrics (see `crate::telemetry` for the recorder and the names): the seal and
//! active gauges, token creation, the token count gauges computed from storage in the
//! background once per `usage_gauge_period` (never inside a scrape), route timers per mount,
//! and the `sys/metrics` answer.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::Core;
use super::mounts::Mounted;
use crate::logical::Operation;
use crate::telemetry::{self as t, MetricsResponse};
use crate::token::TokenEntry;

/// The per-core telemetry state.
#[derive(Default)]
pub struct CoreTelemetry {
    /// The `cluster` label value (the cluster name), known once unsealed.
    cluster: ArcSwapOption<String>,
    /// When the token count gauges were last computed, and what they said.
    usage_done: tokio::sync::Mutex<Option<(Instant, Usage)>>,
}

/// Route timers of one mounted backend, one per operation (and the renewal of a token it
/// issued), registered on first use.
#[derive(Default)]
pub struct RouteTimers([OnceLock<metrics::Histogram>; 8]);

impl RouteTimers {
    /// Vault's `vault.route.<operation>.<mount path with / as ->`. Each (operation, mount) pair
    /// is its own summary (five series), so they are budgeted: past
    /// [`t::ROUTE_TIMER_PAIRS`] pairs (or the mount cardinality cap), further ones share
    /// `vault.route.<operation>.other`, keeping the whole output near 2,000 series with 500
    /// busy mounts (Vault's would grow without bound).
    pub fn get(&self, mounted: &Mounted, op: Operation) -> Option<&metrics::Histogram> {
        let (slot, name) = match op {
            Operation::Read => (0, "read"),
            Operation::List => (1, "list"),
            Operation::Create => (2, "create"),
            Operation::Update => (3, "update"),
            Operation::Delete => (4, "delete"),
            Operation::Patch => (5, "patch"),
            Operation::Help => (6, "help"),
        };
        self.timer(mounted, slot, name)
    }

    /// `vault.route.renew.<mount>`: renewing a token this auth mount issued (Vault routes the
    /// renewal to it, which may re-read the token's limits, as AppRole does).
    pub fn renew(&self, mounted: &Mounted) -> Option<&metrics::Histogram> {
        self.timer(mounted, 7, "renew")
    }

    fn timer(&self, mounted: &Mounted, slot: usize, name: &str) -> Option<&metrics::Histogram> {
        let cell = self.0.get(slot)?;
        Some(cell.get_or_init(|| {
            let mount = t::bounded("mount", &mounted.api_path);
            let mount = t::bounded_route(name, &mount).replace('/', "-");
            metrics::histogram!(format!("vault.route.{name}.{mount}"))
        }))
    }
}

impl Core {
    fn cluster_label(&self) -> String {
        self.telemetry
            .cluster
            .load()
            .as_ref()
            .map_or_else(String::new, |c| c.as_ref().clone())
    }

    /// Unsealed (and when `init` has just named the cluster): learns the cluster name and sets
    /// the seal and active gauges.
    pub(super) async fn telemetry_unsealed(&self) {
        self.learn_cluster().await;
        self.set_seal_gauges(true, true);
    }

    /// HA standby (unsealed, serving nothing itself): unsealed 1, active 0.
    pub(super) async fn telemetry_standby(&self) {
        self.learn_cluster().await;
        self.set_seal_gauges(true, false);
    }

    async fn learn_cluster(&self) {
        if let Some((name, _)) = self.cluster().await {
            self.telemetry
                .cluster
                .store(Some(std::sync::Arc::new(name)));
        }
    }

    /// Sealed: the gauges drop to 0. An HA standby (keys kept, serving nothing itself) reports
    /// unsealed but not active.
    pub(super) fn telemetry_sealed(&self, standby: bool) {
        self.set_seal_gauges(standby, false);
    }

    fn set_seal_gauges(&self, unsealed: bool, active: bool) {
        let cluster = self.cluster_label();
        if cluster.is_empty() {
            // Before `init` named the cluster.
            return;
        }
        let one = |b: bool| if b { 1.0 } else { 0.0 };
        metrics::gauge!(t::CORE_UNSEALED, "cluster" => cluster.clone()).set(one(unsealed));
        metrics::gauge!(t::CORE_ACTIVE, "cluster" => cluster).set(one(active));
    }

    /// `vault.core.mount_table.num_entries` and `.size` for the secret (`logical`) and auth
    /// tables, split into local and shared mounts as Vault keeps them; the size is that of the
    /// table's JSON as stored (Vault's is compressed). Sampled for a scrape.
    fn set_mount_table_gauges(&self) {
        let cluster = self.cluster_label();
        if cluster.is_empty() {
            return;
        }
        let table = self.mount_table();
        for (kind, label) in [
            (crate::logical::mount::MountTableKind::Secret, "logical"),
            (crate::logical::mount::MountTableKind::Auth, "auth"),
        ] {
            for local in [false, true] {
                let entries: Vec<&crate::logical::mount::MountEntry> = table
                    .iter()
                    .map(|m| &*m.entry)
                    .filter(|e| e.table == kind && e.local == local)
                    .collect();
                if local && entries.is_empty() {
                    // Vault has no local table until a local mount exists.
                    continue;
                }
                let size = serde_json::to_vec(&entries).map_or(0, |b| b.len());
                let local = if local { "true" } else { "false" };
                metrics::gauge!(t::MOUNT_TABLE_NUM_ENTRIES,
                    "cluster" => cluster.clone(), "local" => local, "type" => label)
                .set(entries.len() as f64);
                metrics::gauge!(t::MOUNT_TABLE_SIZE,
                    "cluster" => cluster.clone(), "local" => local, "type" => label)
                .set(size as f64);
            }
        }
    }

    /// `vault.core.in_flight_requests`, sampled for a scrape: the requests served now other
    /// than the scrape itself (Vault samples every second from a background loop, when no
    /// scrape is in flight).
    /// `vault.expire.num_leases` (tokens holding a lease, kept by the token store) and
    /// `vault.expire.num_irrevocable_leases` (always 0: Coffer never gives up revoking a lease).
    /// Active node only, as in Vault (a standby is sealed here).
    fn set_lease_gauges(&self) {
        metrics::gauge!(t::EXPIRE_NUM_LEASES).set(self.tokens.lease_count() as f64);
        metrics::gauge!(t::EXPIRE_NUM_IRREVOCABLE_LEASES).set(0.0);
    }

    fn set_in_flight_gauge(&self) {
        let cluster = self.cluster_label();
        if cluster.is_empty() {
            return;
        }
        let others = t::in_flight_requests().saturating_sub(1);
        metrics::gauge!(t::CORE_IN_FLIGHT_REQUESTS, "cluster" => cluster).set(others as f64);
    }

    /// The auth method type and mount path that issued tokens of `mount_accessor` (the token
    /// store's own for an empty accessor).
    fn auth_mount_of(&self, mount_accessor: &str) -> (String, String) {
        if !mount_accessor.is_empty()
            && let Some(m) = self
                .mount_table()
                .iter()
                .find(|m| m.entry.accessor == mount_accessor)
        {
            return (m.entry.kind.clone(), m.api_path.clone());
        }
        ("token".to_owned(), "auth/token/".to_owned())
    }

    /// `vault.token.creation` for a token just issued.
    pub(super) fn count_token_creation(&self, entry: &TokenEntry) {
        let (auth_method, mount_point) = if entry.is_wrapping() {
            // As Vault counts a wrapping token: not an auth method's, but "response_wrapping"
            // in the mount of the request whose response it wraps.
            let mount = self
                .mount_table()
                .route(&entry.path)
                .map(|m| m.api_path.clone())
                .unwrap_or_default();
            ("response_wrapping".to_owned(), mount)
        } else {
            self.auth_mount_of(&entry.mount_accessor)
        };
        metrics::counter!(t::TOKEN_CREATION,
            "auth_method" => auth_method,
            "cluster" => self.cluster_label(),
            "creation_ttl" => t::ttl_bucket(entry.ttl),
            "mount_point" => t::bounded("mount", &mount_point),
            "namespace" => "root",
            "token_type" => "service",
        )
        .increment(1);
    }

    /// The `sys/metrics` answer for `format`: gauges sampled now (seal state, runtime, token
    /// counts when due), then the recorder rendered.
    pub async fn metrics_response(&self, format: &str) -> MetricsResponse {
        if !self.is_sealed() {
            self.set_seal_gauges(true, true);
            self.set_in_flight_gauge();
            self.set_mount_table_gauges();
            self.set_lease_gauges();
            // The token walk never runs inside a scrape: one that finds the gauges due starts
            // it in the background and answers with the values it has.
            self.spawn_usage_gauges();
        } else if self.is_standby() {
            // A standby's own gauges are refreshed on every scrape too (Vault refreshes them
            // every second on every node): set once at unseal, the retention time dropped them,
            // and alerts on `vault_core_unsealed` or `vault_core_active` saw the node vanish.
            self.set_seal_gauges(true, false);
            self.set_in_flight_gauge();
        }
        t::sample_runtime();
        let now = crate::clock::unix_secs(self.clock.now());
        t::respond(format, self.config.telemetry.prometheus_enabled(), now)
    }

    /// Starts recomputing the usage gauges (token, kv and entity counts) in the background when `usage_gauge_period`
    /// has passed since the last time (or they never were), on an unsealed active node; called
    /// by the housekeeping loop every couple of seconds and by scrapes, which never wait for it.
    pub fn spawn_usage_gauges(&self) {
        let Some(period) = self.config.telemetry.usage_gauge_period_secs else {
            return;
        };
        if self.is_sealed() || self.is_standby() {
            return;
        }
        let due = match self.telemetry.usage_done.try_lock() {
            Ok(done) => done
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() >= Duration::from_secs(period)),
            // Being computed now.
            Err(_) => false,
        };
        if let (true, Some(core)) = (due, self.weak.upgrade()) {
            tokio::spawn(async move { core.refresh_usage_gauges(period).await });
        }
    }

    /// Recomputes the usage gauges unless another run is under way or just finished.
    async fn refresh_usage_gauges(&self, period: u64) {
        let Ok(mut done) = self.telemetry.usage_done.try_lock() else {
            return;
        };
        if done
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < Duration::from_secs(period))
        {
            return;
        }
        match self.usage().await {
            Ok(usage) => {
                let before = done.take().map(|(_, u)| u).unwrap_or_default();
                usage.emit(&self.cluster_label(), &before);
                *done = Some((Instant::now(), usage));
            }
            Err(e) => tracing::warn!(error = %e, "computing the usage gauges failed"),
        }
    }

    async fn usage(&self) -> crate::error::Result<Usage> {
        let mut usage = Usage::default();
        let now = self.tokens.now();
        for accessor in self.tokens.list_accessors().await? {
            let Some(entry) = self.tokens.lookup_accessor(&accessor).await? else {
                continue;
            };
            if entry.expire_nanos.is_some_and(|e| e <= now) || entry.num_uses < 0 {
                continue;
            }
            usage.total += 1;
            let (auth_method, _) = self.auth_mount_of(&entry.mount_accessor);
            *usage.by_auth.entry(auth_method).or_default() += 1;
            for policy in &entry.policies {
                *usage
                    .by_policy
                    .entry(t::bounded("policy", policy))
                    .or_default() += 1;
            }
            *usage.by_ttl.entry(t::ttl_bucket(entry.ttl)).or_default() += 1;
        }
        // Secrets per kv mount (v2: one metadata entry per key; v1: the keys), as Vault's
        // `vault.secret.kv.count`.
        let mounts: Vec<_> = self.mount_table().iter().cloned().collect();
        for m in mounts.iter().filter(|m| m.entry.kind == "kv") {
            let v2 = m
                .entry
                .options
                .as_ref()
                .and_then(|o| o.get("version"))
                .is_some_and(|v| v == "2");
            let prefix = if v2 { "metadata/" } else { "kv1/" };
            let n = m.storage.scan(prefix, usize::MAX).await?.len() as u64;
            *usage
                .kv
                .entry(t::bounded("mount", &m.api_path))
                .or_default() += n;
        }
        usage.entities = self
            .storage("")
            .scan(super::token_issue::ENTITY_SEEN_PREFIX, usize::MAX)
            .await?
            .len() as u64;
        Ok(usage)
    }
}

/// What the usage gauges count: live tokens (by auth method, policy and TTL bucket), secrets
/// per kv mount, entities.
#[derive(Default)]
struct Usage {
    total: u64,
    by_auth: BTreeMap<String, u64>,
    by_policy: BTreeMap<String, u64>,
    by_ttl: BTreeMap<&'static str, u64>,
    /// Secrets per kv mount path.
    kv: BTreeMap<String, u64>,
    /// Entities that have logged in.
    entities: u64,
}

impl Usage {
    /// Sets the gauges; a dimension value counted `before` but gone now drops to 0.
    fn emit(&self, cluster: &str, before: &Usage) {
        let labels = |k: &'static str, v: String| {
            [
                (k, v),
                ("cluster", cluster.to_owned()),
                ("namespace", "root".to_owned()),
            ]
        };
        metrics::gauge!(t::TOKEN_COUNT, "cluster" => cluster.to_owned(), "namespace" => "root")
            .set(self.total as f64);
        let now_or_zero = |now: &BTreeMap<String, u64>, old: &BTreeMap<String, u64>| {
            let gone = old
                .keys()
                .filter(|k| !now.contains_key(*k))
                .map(|k| (k.clone(), 0));
            now.iter()
                .map(|(k, n)| (k.clone(), *n))
                .chain(gone)
                .collect::<Vec<_>>()
        };
        for (mount, n) in now_or_zero(&self.kv, &before.kv) {
            metrics::gauge!(t::SECRET_KV_COUNT, &labels("mount_point", mount)).set(n as f64);
        }
        metrics::gauge!(t::IDENTITY_NUM_ENTITIES).set(self.entities as f64);
        for (auth, n) in now_or_zero(&self.by_auth, &before.by_auth) {
            metrics::gauge!(t::TOKEN_COUNT_BY_AUTH, &labels("auth_method", auth)).set(n as f64);
        }
        for (policy, n) in now_or_zero(&self.by_policy, &before.by_policy) {
            metrics::gauge!(t::TOKEN_COUNT_BY_POLICY, &labels("policy", policy)).set(n as f64);
        }
        for ttl in before
            .by_ttl
            .keys()
            .filter(|k| !self.by_ttl.contains_key(*k))
        {
            metrics::gauge!(
                t::TOKEN_COUNT_BY_TTL,
                &labels("creation_ttl", (*ttl).to_owned())
            )
            .set(0.0);
        }
        for (ttl, n) in &self.by_ttl {
            metrics::gauge!(
                t::TOKEN_COUNT_BY_TTL,
                &labels("creation_ttl", (*ttl).to_owned())
            )
            .set(*n as f64);
        }
    }
}
