//! Telemetry (`telemetry`): Vault's metric names on top of the `metrics` crate, served by `sys/metrics`.
//!
//! Where it sits: code anywhere records with the `metrics` macros (`counter!`, `gauge!`,
//! `histogram!`) under Vault's dotted go-metrics names (`vault.core.handle_request`); the
//! process-wide recorder (`sink.rs`) feeds both the Prometheus recorder of
//! `metrics-exporter-prometheus` and an in-memory 10-second aggregate; `sys/metrics` renders one
//! of them (`?format=prometheus`: text, dots become `_`; otherwise go-metrics' JSON summary).
//!
//! **One recorder per process**, like Vault's go-metrics global sink: `install` runs once (the
//! first core's `telemetry` settings fix the retention time and the hostname label); every
//! core in the process records into it. Metrics that belong to one core (seal state, token
//! counts, token creation) carry its `cluster` label, so several servers in one test process
//! stay apart. Whether a core *serves* Prometheus output (`prometheus_retention_time = 0`
//! turns it off) is per core.
//!
//! Cardinality: no label or name ever holds a token, accessor, secret value or request path.
//! Mount paths (in route timer names and `mount_point` labels) and policy names (in
//! `vault.token.count.by_policy`) are capped at `maximum_gauge_cardinality` distinct values
//! per process; later ones are reported as `other`.

pub mod host;
pub mod in_flight;
pub mod logs;
mod process;
mod sink;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

pub use sink::Summary;
use sink::{Names, TeeRecorder};

/// Secrets per kv mount (usage gauge; labels `cluster`, `mount_point`, `namespace`).
pub const SECRET_KV_COUNT: &str = "vault.secret.kv.count";
/// Entities (usage gauge): Coffer's entities are derived from logins; those that have logged in.
pub const IDENTITY_NUM_ENTITIES: &str = "vault.identity.num_entities";
/// Requests a rate-limit quota refused (label `name`: the quota's).
pub const QUOTA_RATE_LIMIT_VIOLATION: &str = "vault.quota.rate_limit.violation";
/// Token store timers (ms), as Vault's token store names them.
pub const TOKEN_LOOKUP: &str = "vault.token.lookup";
/// Creating a token (ms).
pub const TOKEN_CREATE: &str = "vault.token.create";
/// Writing a token entry (ms).
pub const TOKEN_STORE: &str = "vault.token.store";
/// Revoking one token (ms).
pub const TOKEN_REVOKE: &str = "vault.token.revoke";
/// Revoking a token and its descendants (ms).
pub const TOKEN_REVOKE_TREE: &str = "vault.token.revoke-tree";
/// PostgreSQL storage operations (ms), as Vault's PostgreSQL backend names them.
pub const POSTGRES_GET: &str = "vault.postgres.get";
/// See [`POSTGRES_GET`].
pub const POSTGRES_PUT: &str = "vault.postgres.put";
/// See [`POSTGRES_GET`].
pub const POSTGRES_DELETE: &str = "vault.postgres.delete";
/// See [`POSTGRES_GET`].
pub const POSTGRES_LIST: &str = "vault.postgres.list";
/// A standby forwarding a request to the active node (ms).
pub const HA_FORWARD: &str = "vault.ha.rpc.client.forward";
/// Forwarded requests that got no answer from the active node.
pub const HA_FORWARD_ERRORS: &str = "vault.ha.rpc.client.forward.errors";
/// Request timer of every non-login request (ms).
pub const HANDLE_REQUEST: &str = "vault.core.handle_request";
/// Request timer of every login request (ms).
pub const HANDLE_LOGIN_REQUEST: &str = "vault.core.handle_login_request";
/// 1 while unsealed (label `cluster`).
pub const CORE_UNSEALED: &str = "vault.core.unsealed";
/// Every response this node issued (Vault ≥ 1.20; counter, labels `code`: the exact status,
/// `type`: its class, `4xx`).
pub const CORE_RESPONSE_STATUS_CODE: &str = "vault.core.response_status_code";
/// 1 on the active node (Coffer has no standbys yet: 1 while unsealed; label `cluster`).
pub const CORE_ACTIVE: &str = "vault.core.active";
/// `vault.core.mount_table.num_entries`: mounts per table (gauge, `type`, `local`, `cluster`).
pub const MOUNT_TABLE_NUM_ENTRIES: &str = "vault.core.mount_table.num_entries";
/// `vault.core.mount_table.size`: bytes of a stored mount table (gauge, same labels).
pub const MOUNT_TABLE_SIZE: &str = "vault.core.mount_table.size";
/// `vault.core.in_flight_requests`: HTTP requests being served (gauge, `cluster`).
pub const CORE_IN_FLIGHT_REQUESTS: &str = "vault.core.in_flight_requests";
/// Tokens issued (labels `cluster`, `namespace`, `auth_method`, `mount_point`,
/// `creation_ttl`, `token_type`).
pub const TOKEN_CREATION: &str = "vault.token.creation";
/// Live service tokens (labels `cluster`, `namespace`).
pub const TOKEN_COUNT: &str = "vault.token.count";
/// Live tokens per auth method (`auth_method`).
pub const TOKEN_COUNT_BY_AUTH: &str = "vault.token.count.by_auth";
/// Live tokens per policy (`policy`).
pub const TOKEN_COUNT_BY_POLICY: &str = "vault.token.count.by_policy";
/// Live tokens per creation TTL bucket (`creation_ttl`).
pub const TOKEN_COUNT_BY_TTL: &str = "vault.token.count.by_ttl";
/// Barrier timers (ms).
pub const BARRIER_GET: &str = "vault.barrier.get";
/// Barrier put timer (ms).
pub const BARRIER_PUT: &str = "vault.barrier.put";
/// Barrier delete timer (ms).
pub const BARRIER_DELETE: &str = "vault.barrier.delete";
/// Barrier list timer (ms).
pub const BARRIER_LIST: &str = "vault.barrier.list";
/// Audit timers (ms) and failure counters, emitted by `audit/`.
pub const AUDIT_LOG_REQUEST: &str = "vault.audit.log_request";
/// Audit response timer (ms).
pub const AUDIT_LOG_RESPONSE: &str = "vault.audit.log_response";
/// Policy store reads (ms).
pub const POLICY_GET: &str = "vault.policy.get_policy";
/// Policy store listings (ms).
pub const POLICY_LIST: &str = "vault.policy.list_policies";
/// Policy store writes (ms).
pub const POLICY_SET: &str = "vault.policy.set_policy";
/// Policy store deletions (ms).
pub const POLICY_DELETE: &str = "vault.policy.delete_policy";
/// Token lookup through the ACL decision of an authenticated request (ms).
pub const CORE_CHECK_TOKEN: &str = "vault.core.check_token";
/// Token lookup and policy fetch of an authenticated request (ms).
pub const CORE_FETCH_ACL_AND_TOKEN: &str = "vault.core.fetch_acl_and_token";
/// Unseal calls, one per key share (ms).
pub const CORE_UNSEAL: &str = "vault.core.unseal";
/// Loading what an unsealed (or newly active) node serves (ms).
pub const CORE_POST_UNSEAL: &str = "vault.core.post_unseal";
/// Dropping it again at seal or step-down (ms).
pub const CORE_PRE_SEAL: &str = "vault.core.pre_seal";
/// Sealing (ms).
pub const CORE_SEAL_INTERNAL: &str = "vault.core.seal-internal";
/// `sys/seal` requests (ms).
pub const CORE_SEAL_WITH_REQUEST: &str = "vault.core.seal-with-request";
/// `sys/step-down` requests (ms).
pub const CORE_STEP_DOWN: &str = "vault.core.step_down";
/// How long this node was active when it lost the lock (ms).
pub const CORE_LEADERSHIP_LOST: &str = "vault.core.leadership_lost";
/// How long a step-up ran before its setup failed (ms).
pub const CORE_LEADERSHIP_SETUP_FAILED: &str = "vault.core.leadership_setup_failed";
/// Tokens with an expiry (Vault's leases of auth tokens), set at the scrape on the active node.
pub const EXPIRE_NUM_LEASES: &str = "vault.expire.num_leases";
/// Leases Vault gave up revoking; Coffer has none, so always 0.
pub const EXPIRE_NUM_IRREVOCABLE_LEASES: &str = "vault.expire.num_irrevocable_leases";
/// Registering a new token's lease (ms).
pub const EXPIRE_REGISTER_AUTH: &str = "vault.expire.register-auth";
/// Renewing a token (ms).
pub const EXPIRE_RENEW_TOKEN: &str = "vault.expire.renew-token";
/// Revoking a token and what it owns (ms).
pub const EXPIRE_REVOKE_BY_TOKEN: &str = "vault.expire.revoke-by-token";
/// Revoking one lease by id: `sys/leases/revoke` or its expiry (ms).
pub const EXPIRE_REVOKE: &str = "vault.expire.revoke";
/// `sys/leases/revoke-prefix` (ms).
pub const EXPIRE_REVOKE_PREFIX: &str = "vault.expire.revoke-prefix";
/// `sys/leases/revoke-force` (ms).
pub const EXPIRE_REVOKE_FORCE: &str = "vault.expire.revoke-force";
/// Request entries no device accepted.
pub const AUDIT_LOG_REQUEST_FAILURE: &str = "vault.audit.log_request_failure";
/// Response entries no device accepted.
pub const AUDIT_LOG_RESPONSE_FAILURE: &str = "vault.audit.log_response_failure";
/// Resident anonymous memory (Go: heap bytes allocated).
pub const RUNTIME_ALLOC_BYTES: &str = "vault.runtime.alloc_bytes";
/// Resident memory (Go: bytes obtained from the OS).
pub const RUNTIME_SYS_BYTES: &str = "vault.runtime.sys_bytes";
/// Live Tokio tasks (Go: goroutines).
pub const RUNTIME_NUM_GOROUTINES: &str = "vault.runtime.num_goroutines";
/// Always 0: Rust has no garbage collector.
pub const RUNTIME_TOTAL_GC_PAUSE_NS: &str = "vault.runtime.total_gc_pause_ns";
/// Always 0: Rust has no garbage collector.
pub const RUNTIME_TOTAL_GC_RUNS: &str = "vault.runtime.total_gc_runs";
/// Coffer's request counter (labels `method`, `mount_type`, `code`).
pub const HTTP_REQUESTS: &str = "coffer.http_requests_total";
/// Entries an audit device could not write (`reason` `error`, or `queue_full` when its queue
/// was full) or did not acknowledge within the deadline (`timeout`), by device path: names the
/// failing device, which Vault's `log_request_failure` counters do not (they count requests no
/// device accepted). Counted only when it happens.
pub const AUDIT_DEVICE_FAILURES: &str = "coffer.audit.device_failures_total";
/// Response entries no audit device took, even after the retries (each reported in the server
/// log with its request id). Coffer's own: Vault has no such counter.
pub const AUDIT_RESPONSE_LOST: &str = "coffer.audit.response_entries_lost_total";
/// Coffer's request latency histogram in seconds (same labels).
pub const REQUEST_DURATION: &str = "coffer.request_duration_seconds";

/// Buckets of [`REQUEST_DURATION`] (seconds).
const DURATION_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The validated `telemetry { }` settings Coffer acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    /// `prometheus_retention_time` in seconds; 0 disables the Prometheus format.
    pub prometheus_retention_secs: u64,
    /// `enable_hostname_label`: a `host` label on every metric.
    pub enable_hostname_label: bool,
    /// `usage_gauge_period` in seconds; `None` (`"none"`) turns the token count gauges off.
    pub usage_gauge_period_secs: Option<u64>,
    /// `maximum_gauge_cardinality`: distinct mount paths and policy names before `other`.
    pub maximum_gauge_cardinality: usize,
    /// `metrics_prefix`: replaces the leading `vault` of every Vault metric name.
    pub metrics_prefix: Option<String>,
    /// `prefix_filter`: (prefix of the dotted name, allowed) rules; the longest matching prefix
    /// decides, a block (`-`) winning a tie, as go-metrics' filter does.
    pub prefix_filter: Vec<(String, bool)>,
    /// `filter_default`: whether a name no rule matches is kept.
    pub filter_default: bool,
}

/// Vault's `prometheus_retention_time` default when a `telemetry` stanza exists: 24h.
pub const DEFAULT_RETENTION_SECS: u64 = 24 * 3600;
/// Vault's `usage_gauge_period` default: 10m.
pub const DEFAULT_USAGE_GAUGE_PERIOD_SECS: u64 = 600;
/// Vault's `maximum_gauge_cardinality` default.
pub const DEFAULT_MAXIMUM_GAUGE_CARDINALITY: usize = 500;

impl Telemetry {
    /// No `telemetry` stanza: JSON only, Prometheus disabled (as in Vault).
    pub fn without_stanza() -> Self {
        Telemetry {
            prometheus_retention_secs: 0,
            ..Self::dev()
        }
    }

    /// Dev mode and an empty stanza: Prometheus with 24h retention.
    pub fn dev() -> Self {
        Telemetry {
            prometheus_retention_secs: DEFAULT_RETENTION_SECS,
            enable_hostname_label: false,
            usage_gauge_period_secs: Some(DEFAULT_USAGE_GAUGE_PERIOD_SECS),
            maximum_gauge_cardinality: DEFAULT_MAXIMUM_GAUGE_CARDINALITY,
            metrics_prefix: None,
            prefix_filter: Vec::new(),
            filter_default: true,
        }
    }

    /// Whether `sys/metrics?format=prometheus` answers.
    pub fn prometheus_enabled(&self) -> bool {
        self.prometheus_retention_secs > 0
    }
}

struct Installed {
    prometheus: PrometheusHandle,
    tee: Arc<TeeRecorder>,
    cardinality: usize,
}

static INSTALLED: OnceLock<Option<Installed>> = OnceLock::new();

/// Installs the process-wide recorder on first call (later calls keep the first settings).
/// Returns false when another recorder was installed before (metrics are then not served).
pub fn install(t: &Telemetry) -> bool {
    INSTALLED.get_or_init(|| build(t)).is_some()
}

fn build(t: &Telemetry) -> Option<Installed> {
    let retention =
        (t.prometheus_retention_secs > 0).then(|| Duration::from_secs(t.prometheus_retention_secs));
    let mut builder = PrometheusBuilder::new()
        .set_quantiles(&[0.5, 0.9, 0.99])
        .and_then(|b| b.set_bucket_duration(Duration::from_secs(2)))
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &DURATION_BUCKETS)
        })
        .ok()?
        .set_bucket_count(NonZeroU32::MIN.saturating_add(4))
        .idle_timeout(MetricKindMask::ALL, retention);
    if t.enable_hostname_label {
        builder = builder.add_global_label("host", hostname());
    }
    let prom = builder.build_recorder();
    let prometheus = prom.handle();
    let tee = Arc::new(
        TeeRecorder::new(Arc::new(prom), t.prometheus_retention_secs).with_names(Names {
            prefix: t.metrics_prefix.clone().filter(|p| p != "vault"),
            filter: t.prefix_filter.clone(),
            filter_default: t.filter_default,
        }),
    );
    if metrics::set_global_recorder(tee.clone()).is_err() {
        tracing::warn!("a metrics recorder was installed elsewhere; sys/metrics stays empty");
        return None;
    }
    Some(Installed {
        prometheus,
        tee,
        cardinality: t.maximum_gauge_cardinality,
    })
}

fn installed() -> Option<&'static Installed> {
    INSTALLED.get().and_then(Option::as_ref)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// HTTP requests being served now.
static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One HTTP request being served: counted in [`in_flight_requests`] while it lives.
pub struct InFlight(());

impl InFlight {
    /// Counts a request that has just arrived.
    pub fn start() -> InFlight {
        IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// HTTP requests being served now (Vault's `vault.core.in_flight_requests`).
pub fn in_flight_requests() -> usize {
    IN_FLIGHT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Drains recorded histogram samples into the Prometheus summaries; the server calls it on a
/// timer so that memory stays flat between scrapes.
pub fn upkeep() {
    if let Some(i) = installed() {
        i.tee.flush_histograms();
        i.prometheus.run_upkeep();
    }
}

/// A finished `sys/metrics` answer: raw body, not the JSON envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// The Prometheus text format's content type, as Vault sends it.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The format Vault picks when `format` is empty: Prometheus for an `Accept` header starting
/// with `application/openmetrics-text` or containing `prometheus/telemetry`.
pub fn format_from_accept<'a>(accept: impl IntoIterator<Item = &'a str>) -> &'static str {
    let mut first = true;
    for value in accept {
        if (first && value.starts_with("application/openmetrics-text"))
            || value.contains("prometheus/telemetry")
        {
            return "prometheus";
        }
        first = false;
    }
    ""
}

/// A summary series with no observation in its current window would show every quantile as
/// 0 (a latency of zero that never happened; go-metrics shows NaN, hashicorp/vault#9068): its
/// quantile lines are left out, its `_sum` and `_count` stay. A timer's real quantiles are
/// never all exactly 0.
fn drop_idle_quantiles(text: &str) -> String {
    /// The series a quantile line belongs to (the line without its quantile label and value),
    /// and whether its value is 0.
    fn quantile_of(line: &str) -> Option<(String, bool)> {
        let start = line.find("quantile=\"")?;
        let end = start + line.get(start..)?.find("\"")? + 1;
        let end = end + line.get(end..)?.find('"')? + 1;
        let (series, value) = line.rsplit_once(' ')?;
        let key = format!(
            "{}{}",
            series.get(..start)?,
            series.get(end..)?.trim_start_matches(',')
        );
        Some((key, value.parse::<f64>().is_ok_and(|v| v == 0.0)))
    }
    let mut busy = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some((key, zero)) = quantile_of(line)
            && !zero
        {
            busy.insert(key);
        }
    }
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if let Some((key, _)) = quantile_of(line)
            && !busy.contains(&key)
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// What `SIGUSR1` writes to stderr, as go-metrics' in-memory sink dumps it: one line per
/// gauge (`[G]`), counter (`[C]`) and sample (`[S]`) of the last finished interval, each
/// `[<interval start>][<kind>] '<name>;<label>=<value>...': <value or aggregate>`.
pub fn dump(now_unix: i64) -> String {
    use std::fmt::Write as _;
    let Some(i) = installed() else {
        return String::new();
    };
    let summary = i.tee.summary(now_unix);
    let flat = |name: &str, labels: &std::collections::BTreeMap<String, String>| {
        labels
            .iter()
            .fold(name.to_owned(), |acc, (k, v)| format!("{acc};{k}={v}"))
    };
    let aggregate = |v: &sink::SampledValue| {
        if v.count == 0 {
            "Count: 0".to_owned()
        } else if v.stddev == 0.0 {
            format!("Count: {} Sum: {:.3}", v.count, v.sum)
        } else {
            format!(
                "Count: {} Min: {:.3} Mean: {:.3} Max: {:.3} Stddev: {:.3} Sum: {:.3}",
                v.count, v.min, v.mean, v.max, v.stddev, v.sum
            )
        }
    };
    let at = &summary.timestamp;
    let mut out = String::new();
    for g in &summary.gauges {
        let _ = writeln!(
            out,
            "[{at}][G] '{}': {:.3}",
            flat(&g.name, &g.labels),
            g.value
        );
    }
    for (kind, values) in [("C", &summary.counters), ("S", &summary.samples)] {
        for v in values {
            let (name, agg) = (flat(&v.name, &v.labels), aggregate(v));
            let _ = writeln!(out, "[{at}][{kind}] '{name}': {agg}");
        }
    }
    out
}

/// Vault's `ResponseForFormat`: `prometheus`, `""` (JSON) or a 400 naming the format.
pub fn respond(format: &str, prometheus_enabled: bool, now_unix: i64) -> MetricsResponse {
    let error = |body: String| MetricsResponse {
        status: 400,
        content_type: "text/plain",
        body,
    };
    match format {
        "prometheus" if !prometheus_enabled => error("prometheus is not enabled".to_owned()),
        "prometheus" => MetricsResponse {
            status: 200,
            content_type: PROMETHEUS_CONTENT_TYPE,
            body: installed()
                .map(|i| {
                    i.tee.flush_histograms();
                    let mut text = drop_idle_quantiles(&i.prometheus.render());
                    text.push_str(&process::render());
                    text
                })
                .unwrap_or_default(),
        },
        "" => {
            let summary = installed().map(|i| i.tee.summary(now_unix));
            match summary.map(|s| serde_json::to_string(&s)) {
                Some(Ok(body)) => MetricsResponse {
                    status: 200,
                    content_type: "application/json",
                    body,
                },
                Some(Err(e)) => error(format!(
                    "error while marshalling the in-memory metrics: {e}"
                )),
                None => error(
                    "error while fetching the in-memory metrics: no metrics recorder".to_owned(),
                ),
            }
        }
        other => error(format!("metric response format {other:?} unknown")),
    }
}

/// A mount path or policy name as a label value or name part: itself while fewer than
/// `maximum_gauge_cardinality` distinct values of `family` were seen, else `other`.
pub fn bounded(family: &'static str, value: &str) -> String {
    static SEEN: OnceLock<Mutex<HashMap<&'static str, HashSet<String>>>> = OnceLock::new();
    let cap = installed().map_or(DEFAULT_MAXIMUM_GAUGE_CARDINALITY, |i| i.cardinality);
    let mut seen = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let values = seen.entry(family).or_default();
    if values.contains(value) {
        return value.to_owned();
    }
    if values.len() >= cap {
        return "other".to_owned();
    }
    values.insert(value.to_owned());
    value.to_owned()
}

/// (operation, mount) pairs that get their own `vault.route.*` timer; later ones share
/// `vault.route.<operation>.other`.
pub const ROUTE_TIMER_PAIRS: usize = 256;

/// The mount part of a route timer's name: `mount` while fewer than [`ROUTE_TIMER_PAIRS`]
/// (operation, mount) pairs have a timer (or this one has), else `other`.
pub fn bounded_route(operation: &str, mount: &str) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    if mount == "other" {
        return mount.to_owned();
    }
    let pair = format!("{operation}.{mount}");
    let mut seen = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if seen.contains(&pair) {
        return mount.to_owned();
    }
    if seen.len() >= ROUTE_TIMER_PAIRS {
        return "other".to_owned();
    }
    seen.insert(pair);
    mount.to_owned()
}

/// The histogram `name`, registered once into `cell`; `None` (nothing recorded) while no
/// recorder is installed, so that a handle is never cached before `install`.
pub fn cached(
    cell: &'static OnceLock<metrics::Histogram>,
    name: &'static str,
) -> Option<&'static metrics::Histogram> {
    installed()?;
    Some(cell.get_or_init(|| metrics::histogram!(name)))
}

/// Records the milliseconds since `start` into the histogram held in `cell`, registered under
/// `name()` on first use once the recorder is installed (a handle taken earlier would record
/// nowhere for good).
pub fn record_ms(
    cell: &OnceLock<metrics::Histogram>,
    name: impl FnOnce() -> String,
    start: std::time::Instant,
) {
    if installed().is_none() {
        return;
    }
    cell.get_or_init(|| metrics::histogram!(name()))
        .record(ms_since(start));
}

/// Records the milliseconds from its start to its drop (Vault's deferred `MeasureSince`), whatever
/// the outcome (an early `?` return included).
pub struct Timer {
    start: std::time::Instant,
    target: Target,
}

enum Target {
    /// A handle registered once (`None` without a recorder).
    Cached(Option<&'static metrics::Histogram>),
    /// Looked up by name when recorded.
    Named(&'static str),
}

impl Timer {
    /// Starts timing into the histogram `name` cached in `cell` (on a request's path).
    pub fn start(cell: &'static OnceLock<metrics::Histogram>, name: &'static str) -> Timer {
        Timer {
            start: std::time::Instant::now(),
            target: Target::Cached(cached(cell, name)),
        }
    }

    /// Starts timing into the histogram `name`, looked up when it records: for operations off
    /// the hot path (seal and unseal, token lifecycles, policy writes).
    pub fn named(name: &'static str) -> Timer {
        Timer {
            start: std::time::Instant::now(),
            target: Target::Named(name),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        match self.target {
            Target::Cached(Some(h)) => h.record(ms_since(self.start)),
            Target::Cached(None) => {}
            Target::Named(name) => metrics::histogram!(name).record(ms_since(self.start)),
        }
    }
}

/// Vault's audit broker metrics for one kind of entry: a timer and a failure counter, their
/// handles registered once.
pub struct Audited {
    timer: &'static str,
    failure: &'static str,
    histogram: OnceLock<metrics::Histogram>,
    counter: OnceLock<metrics::Counter>,
}

/// `vault.audit.log_request` and `vault.audit.log_request_failure`.
pub static AUDITED_REQUEST: Audited = Audited::new(AUDIT_LOG_REQUEST, AUDIT_LOG_REQUEST_FAILURE);
/// `vault.audit.log_response` and `vault.audit.log_response_failure`.
pub static AUDITED_RESPONSE: Audited = Audited::new(AUDIT_LOG_RESPONSE, AUDIT_LOG_RESPONSE_FAILURE);

impl Audited {
    const fn new(timer: &'static str, failure: &'static str) -> Audited {
        Audited {
            timer,
            failure,
            histogram: OnceLock::new(),
            counter: OnceLock::new(),
        }
    }

    /// One entry: the ms since `start` and, when no device accepted it, one failure (Vault
    /// counts the failure as 1, success as 0).
    pub fn record(&'static self, start: std::time::Instant, ok: bool) {
        if installed().is_none() {
            return;
        }
        self.histogram
            .get_or_init(|| metrics::histogram!(self.timer))
            .record(ms_since(start));
        self.counter
            .get_or_init(|| metrics::counter!(self.failure))
            .increment(u64::from(!ok));
    }
}

/// Milliseconds since `start`, the unit of Vault's timers.
pub fn ms_since(start: std::time::Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// Vault's `creation_ttl` buckets: `1m`, `10m`, `20m`, `1h`, `2h`, `1d`, `2d`, `7d`, `30d`, else
/// `+Inf` (also for a TTL of 0, which never expires).
pub fn ttl_bucket(ttl_secs: i64) -> &'static str {
    const BUCKETS: [(i64, &str); 9] = [
        (60, "1m"),
        (600, "10m"),
        (1200, "20m"),
        (3600, "1h"),
        (7200, "2h"),
        (86_400, "1d"),
        (172_800, "2d"),
        (604_800, "7d"),
        (2_592_000, "30d"),
    ];
    if ttl_secs <= 0 {
        return "+Inf";
    }
    BUCKETS
        .iter()
        .find(|(limit, _)| ttl_secs <= *limit)
        .map_or("+Inf", |(_, name)| name)
}

/// Status codes with their own label value; others are counted by class (`4xx`).
const CODES: [&str; 24] = [
    "200", "202", "204", "307", "400", "403", "404", "405", "409", "412", "413", "415", "429",
    "431", "472", "473", "500", "501", "502", "503", "2xx", "3xx", "4xx", "5xx",
];

/// A status code as a label value (one of [`CODES`]), without allocating.
pub fn code_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        202 => "202",
        204 => "204",
        307 => "307",
        400 => "400",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        412 => "412",
        413 => "413",
        415 => "415",
        429 => "429",
        431 => "431",
        472 => "472",
        473 => "473",
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// Method label values.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "LIST", "OPTIONS", "other",
];
/// Mount type label values with cached handles (the built-in types, `none` for unrouted).
const MOUNT_TYPES: [&str; 7] = [
    "system",
    "token",
    "identity",
    "cubbyhole",
    "kv",
    "approle",
    "none",
];

/// Status classes of the latency histogram.
const CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "other"];

/// A status's class as a label value (one of [`CLASSES`]).
fn class_label(status: u16) -> &'static str {
    match status / 100 {
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "other",
    }
}

/// Records one finished request into [`HTTP_REQUESTS`] (by method, mount type and status) and
/// [`REQUEST_DURATION`] (by mount type and status class: a histogram is 15 series, so its
/// labels stay few whatever methods and statuses clients send). The handles of the label
/// combinations are registered once and kept in fixed tables, so the request path neither
/// allocates nor hashes a key.
pub fn count_request(method: &'static str, mount_type: &'static str, status: u16, secs: f64) {
    const COUNTERS: usize = METHODS.len() * MOUNT_TYPES.len() * CODES.len();
    const HISTOGRAMS: usize = MOUNT_TYPES.len() * CLASSES.len();
    static COUNTER: [OnceLock<metrics::Counter>; COUNTERS] = [const { OnceLock::new() }; COUNTERS];
    static HISTOGRAM: [OnceLock<metrics::Histogram>; HISTOGRAMS] =
        [const { OnceLock::new() }; HISTOGRAMS];
    let (code, class) = (code_label(status), class_label(status));
    let counter = || {
        metrics::counter!(
            HTTP_REQUESTS,
            &[
                ("code", code),
                ("method", method),
                ("mount_type", mount_type),
            ]
        )
    };
    let histogram = || {
        metrics::histogram!(
            REQUEST_DURATION,
            &[("class", class), ("mount_type", mount_type)]
        )
    };
    let position = |all: &[&str], v: &str| all.iter().position(|x| *x == v);
    let kind = position(&MOUNT_TYPES, mount_type);
    let counter_slot = match (position(&METHODS, method), kind, position(&CODES, code)) {
        (Some(m), Some(t), Some(c)) => COUNTER.get((m * MOUNT_TYPES.len() + t) * CODES.len() + c),
        _ => None,
    };
    let histogram_slot = match (kind, position(&CLASSES, class)) {
        (Some(t), Some(c)) => HISTOGRAM.get(t * CLASSES.len() + c),
        _ => None,
    };
    let cached = installed().is_some();
    match counter_slot {
        Some(cell) if cached => cell.get_or_init(counter).increment(1),
        _ => counter().increment(1),
    }
    match histogram_slot {
        Some(cell) if cached => cell.get_or_init(histogram).record(secs),
        _ => histogram().record(secs),
    }
    count_response_status(status);
}

/// Records one response into [`CORE_RESPONSE_STATUS_CODE`]: one handle per label pair,
/// registered at its first use. The statuses Coffer answers itself (those of [`CODES`]) keep
/// their exact code; any other (`sys/health?activecode=` answers whatever code a client asks
/// for, 100 to 999) is counted as `code="other"` in its class, so clients cannot add series.
fn count_response_status(status: u16) {
    const EXACT: usize = CODES.len();
    static TABLE: [OnceLock<metrics::Counter>; EXACT + 10] =
        [const { OnceLock::new() }; EXACT + 10];
    let code = code_label(status);
    let exact = !code.ends_with("xx");
    let class = status / 100;
    let register = || {
        metrics::counter!(
            CORE_RESPONSE_STATUS_CODE,
            "code" => if exact { code } else { "other" },
            "type" => format!("{class}xx")
        )
    };
    let index = if exact {
        CODES.iter().position(|c| *c == code)
    } else {
        Some(EXACT + usize::from(class.min(9)))
    };
    match index.and_then(|i| TABLE.get(i)) {
        Some(cell) if installed().is_some() => cell.get_or_init(register).increment(1),
        _ => register().increment(1),
    }
}

/// Process gauges, set when metrics are scraped: Vault's `vault.runtime.*` names with Rust
/// meanings (documented as approximations): resident anonymous memory for `alloc_bytes`,
/// resident memory for `sys_bytes`, live Tokio tasks for `num_goroutines`, and 0 for the
/// garbage collector.
pub fn sample_runtime() {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
                .map(|n| n * 1024.0)
        };
        if let Some(anon) = kib("RssAnon:") {
            metrics::gauge!(RUNTIME_ALLOC_BYTES).set(anon);
        }
        if let Some(rss) = kib("VmRSS:") {
            metrics::gauge!(RUNTIME_SYS_BYTES).set(rss);
        }
    }
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        metrics::gauge!(RUNTIME_NUM_GOROUTINES).set(handle.metrics().num_alive_tasks() as f64);
    }
    metrics::gauge!(RUNTIME_TOTAL_GC_PAUSE_NS).set(0.0);
    metrics::gauge!(RUNTIME_TOTAL_GC_RUNS).set(0.0);
}

#[cfg(test)]
mod tests {

    #[test]
    fn idle_summaries_lose_their_quantiles_but_keep_sum_and_count() {
        let text = "# TYPE a summary\na{quantile=\"0.5\"} 0\na{quantile=\"0.99\"} 0\na_sum 3\na_count 2\n\
                    # TYPE b summary\nb{cluster=\"c\",quantile=\"0.5\"} 0\nb{cluster=\"c\",quantile=\"0.99\"} 1.5\nb_sum{cluster=\"c\"} 2\nb_count{cluster=\"c\"} 2\n\
                    # TYPE g gauge\ng 0\n";
        assert_eq!(
            drop_idle_quantiles(text),
            "# TYPE a summary\na_sum 3\na_count 2\n\
             # TYPE b summary\nb{cluster=\"c\",quantile=\"0.5\"} 0\nb{cluster=\"c\",quantile=\"0.99\"} 1.5\nb_sum{cluster=\"c\"} 2\nb_count{cluster=\"c\"} 2\n\
             # TYPE g gauge\ng 0\n"
        );
    }

    use super::*;

    #[test]
    fn formats_and_errors_as_vault() {
        assert_eq!(
            respond("xml", true, 0),
            MetricsResponse {
                status: 400,
                content_type: "text/plain",
                body: "metric response format \"xml\" unknown".into()
            }
        );
        assert_eq!(
            respond("prometheus", false, 0).body,
            "prometheus is not enabled"
        );
        assert_eq!(
            format_from_accept(["application/openmetrics-text; version=1"]),
            "prometheus"
        );
        assert_eq!(
            format_from_accept(["text/html", "x prometheus/telemetry"]),
            "prometheus"
        );
        assert_eq!(
            format_from_accept(["text/html", "application/openmetrics-text"]),
            ""
        );
    }

    #[test]
    fn every_code_label_has_a_slot() {
        for status in 100..1000 {
            assert!(CODES.contains(&code_label(status)), "{status}");
        }
        assert_eq!(code_label(418), "4xx");
    }

    #[test]
    fn bounded_values_fall_back_to_other() {
        let cap = DEFAULT_MAXIMUM_GAUGE_CARDINALITY;
        for i in 0..cap {
            assert_eq!(bounded("test", &format!("m{i}/")), format!("m{i}/"));
        }
        assert_eq!(bounded("test", "m3/"), "m3/");
        assert_eq!(bounded("test", "late/"), "other");
    }

    #[test]
    fn ttl_buckets() {
        for (ttl, want) in [
            (0, "+Inf"),
            (30, "1m"),
            (60, "1m"),
            (61, "10m"),
            (3600, "1h"),
            (2_764_800, "+Inf"),
            (86_400 * 30, "30d"),
        ] {
            assert_eq!(ttl_bucket(ttl), want, "{ttl}");
        }
    }
}
