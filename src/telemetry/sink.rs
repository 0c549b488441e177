//! The process-wide recorder behind the `metrics` macros: every counter, gauge and histogram
//! feeds two sinks at once, as Vault's go-metrics fan-out does:
//!
//! - the Prometheus recorder of `metrics-exporter-prometheus` (rendered by
//!   `sys/metrics?format=prometheus`), and
//! - an in-memory aggregate per metric in 10-second intervals (go-metrics' `InmemSink`),
//!   rendered as the JSON of `sys/metrics`.
//!
//! A metric is registered once (a lookup in a sharded map per macro call, as with the plain
//! Prometheus recorder); an update then costs one uncontended mutex and one atomic add.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use metrics_exporter_prometheus::PrometheusRecorder;
use metrics_exporter_prometheus::formatting::sanitize_metric_name;
use metrics_util::registry::{Registry, Storage};
use serde::Serialize;

/// Width of one in-memory interval, as Vault's `InmemSink(10s, 1m)`.
pub const INTERVAL_SECS: u64 = 10;

static META: Metadata<'static> = Metadata::new("coffer", metrics::Level::INFO, None);

/// Seconds since the first metric was touched (monotonic).
fn elapsed_secs() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// go-metrics' `AggregateSample`: what one interval saw of a counter or a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Aggregate {
    /// Number of updates.
    pub count: u64,
    /// Sum of the values.
    pub sum: f64,
    sum_sq: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Aggregate {
    fn ingest(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
        if self.count == 1 || v < self.min {
            self.min = v;
        }
        if self.count == 1 || v > self.max {
            self.max = v;
        }
    }

    /// go-metrics' sample standard deviation.
    fn stddev(&self) -> f64 {
        let n = self.count as f64;
        let div = n * (n - 1.0);
        if div == 0.0 {
            return 0.0;
        }
        ((n * self.sum_sq - self.sum * self.sum) / div)
            .max(0.0)
            .sqrt()
    }
}

/// The current and the previous interval of one metric.
#[derive(Default)]
struct Intervals {
    /// Index (elapsed seconds / 10) of `current`.
    index: u64,
    current: Aggregate,
    previous: Aggregate,
    /// Whether anything was recorded at all.
    touched: bool,
}

impl Intervals {
    fn roll(&mut self, index: u64) {
        if index != self.index {
            self.previous = if index == self.index + 1 {
                self.current
            } else {
                Aggregate::default()
            };
            self.current = Aggregate::default();
            self.index = index;
        }
    }

    /// The aggregate of interval `index`, if it is one of the two kept.
    fn at(&self, index: u64) -> Option<Aggregate> {
        let agg = if index == self.index {
            self.current
        } else if index + 1 == self.index {
            self.previous
        } else {
            return None;
        };
        (agg.count > 0).then_some(agg)
    }
}

/// The Prometheus handle of one metric and its intervals, behind one lock.
struct State<H> {
    prom: H,
    intervals: Intervals,
    /// Gauges: the value (go-metrics keeps the last one).
    value: f64,
}

/// One metric as the recorder hands it out: both sinks.
pub struct Tracked<H> {
    key: Key,
    prom: Arc<PrometheusRecorder>,
    retention_secs: u64,
    state: Mutex<State<H>>,
}

impl<H> Tracked<H> {
    /// Runs `f` on the state after rolling the intervals. A series the Prometheus recorder
    /// dropped for being idle longer than the retention time is registered again (a fresh
    /// series, as in Vault), so later updates are not lost on an orphaned handle.
    fn update(
        &self,
        register: impl Fn(&PrometheusRecorder, &Key) -> H,
        f: impl FnOnce(&mut State<H>),
    ) {
        let index = elapsed_secs() / INTERVAL_SECS;
        let mut state = lock(&self.state);
        let idle = index.saturating_sub(state.intervals.index) * INTERVAL_SECS;
        if state.intervals.touched
            && self.retention_secs > 0
            && idle + INTERVAL_SECS >= self.retention_secs
        {
            state.prom = register(&self.prom, &self.key);
        }
        state.intervals.roll(index);
        state.intervals.touched = true;
        f(&mut state);
    }

    fn snapshot(&self, index: u64) -> (Option<Aggregate>, f64, bool) {
        let state = lock(&self.state);
        (
            state.intervals.at(index),
            state.value,
            state.intervals.touched,
        )
    }
}

fn counter_of(p: &PrometheusRecorder, k: &Key) -> Counter {
    p.register_counter(k, &META)
}
fn gauge_of(p: &PrometheusRecorder, k: &Key) -> Gauge {
    p.register_gauge(k, &META)
}
fn histogram_of(p: &PrometheusRecorder, k: &Key) -> Histogram {
    p.register_histogram(k, &META)
}

impl CounterFn for Tracked<Counter> {
    fn increment(&self, value: u64) {
        self.update(counter_of, |s| {
            s.prom.increment(value);
            s.intervals.current.ingest(value as f64);
        });
    }

    fn absolute(&self, value: u64) {
        self.update(counter_of, |s| {
            s.prom.absolute(value);
            s.intervals.current.ingest(value as f64);
        });
    }
}

impl GaugeFn for Tracked<Gauge> {
    fn increment(&self, value: f64) {
        self.update(gauge_of, |s| {
            s.prom.increment(value);
            s.value += value;
        });
    }

    fn decrement(&self, value: f64) {
        self.update(gauge_of, |s| {
            s.prom.decrement(value);
            s.value -= value;
        });
    }

    fn set(&self, value: f64) {
        self.update(gauge_of, |s| {
            s.prom.set(value);
            s.value = value;
        });
    }
}

impl Aggregate {
    /// Adds what another shard saw of the same interval.
    fn merge(&mut self, other: &Aggregate) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 || other.min < self.min {
            self.min = other.min;
        }
        if self.count == 0 || other.max > self.max {
            self.max = other.max;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }
}

/// Shards of a histogram: threads spread over them, so two workers timing the same metric
/// neither share a lock nor bounce a cache line.
const SHARDS: usize = 8;

/// Samples a shard keeps before it hands them to the Prometheus summary together (also done at
/// every scrape and upkeep).
const BATCH: usize = 64;

/// This thread's shard.
fn shard_index() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// One shard, on its own cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    state: Mutex<ShardState>,
}

#[derive(Default)]
struct ShardState {
    intervals: Intervals,
    /// Samples not yet in the Prometheus summary.
    pending: Vec<f64>,
}

/// A histogram as the recorder hands it out: each sample goes into the recording thread's
/// shard (the in-memory intervals at once, the Prometheus summary in batches).
pub struct ShardedHistogram {
    key: Key,
    prom: Arc<PrometheusRecorder>,
    retention_secs: u64,
    /// The Prometheus handle and the interval of its last update (for the retention rule).
    out: Mutex<(Histogram, Option<u64>)>,
    shards: [Shard; SHARDS],
}

impl ShardedHistogram {
    /// Hands `samples` to the Prometheus summary. A series the recorder dropped for being idle
    /// longer than the retention time is registered again first (as `Tracked::update` does).
    fn publish(&self, samples: &[f64], index: u64) {
        if samples.is_empty() {
            return;
        }
        let mut out = lock(&self.out);
        if let Some(last) = out.1 {
            let idle = index.saturating_sub(last) * INTERVAL_SECS;
            if self.retention_secs > 0 && idle + INTERVAL_SECS >= self.retention_secs {
                out.0 = histogram_of(&self.prom, &self.key);
            }
        }
        out.1 = Some(index);
        for v in samples {
            out.0.record(*v);
        }
    }

    /// Moves every shard's pending samples into the Prometheus summary (before a scrape).
    pub(super) fn flush(&self) {
        let index = elapsed_secs() / INTERVAL_SECS;
        for shard in &self.shards {
            let pending = std::mem::take(&mut lock(&shard.state).pending);
            self.publish(&pending, index);
        }
    }

    fn snapshot(&self, index: u64) -> (Option<Aggregate>, f64, bool) {
        let mut total = Aggregate::default();
        let mut touched = false;
        for shard in &self.shards {
            let s = lock(&shard.state);
            touched |= s.intervals.touched;
            if let Some(agg) = s.intervals.at(index) {
                total.merge(&agg);
            }
        }
        ((total.count > 0).then_some(total), 0.0, touched)
    }
}

impl HistogramFn for ShardedHistogram {
    fn record(&self, value: f64) {
        let index = elapsed_secs() / INTERVAL_SECS;
        // `shard_index() < SHARDS` always.
        let Some(shard) = self.shards.get(shard_index()) else {
            return;
        };
        let full = {
            let mut s = lock(&shard.state);
            s.intervals.roll(index);
            s.intervals.touched = true;
            s.intervals.current.ingest(value);
            s.pending.push(value);
            (s.pending.len() >= BATCH).then(|| std::mem::take(&mut s.pending))
        };
        if let Some(batch) = full {
            self.publish(&batch, index);
        }
    }
}

/// Creates the tracked handles; each new metric is also described to the Prometheus recorder
/// with its own name, which is the `# HELP` text Vault prints.
pub struct TeeStorage {
    prom: Arc<PrometheusRecorder>,
    retention_secs: u64,
}

impl TeeStorage {
    fn tracked<H>(&self, key: &Key, prom: H) -> Arc<Tracked<H>> {
        Arc::new(Tracked {
            key: key.clone(),
            prom: self.prom.clone(),
            retention_secs: self.retention_secs,
            state: Mutex::new(State {
                prom,
                intervals: Intervals::default(),
                value: 0.0,
            }),
        })
    }

    fn help(key: &Key) -> (KeyName, SharedString) {
        let name = key.name().to_owned();
        let help = SharedString::from(sanitize_metric_name(&name));
        (KeyName::from(name), help)
    }
}

impl Storage<Key> for TeeStorage {
    type Counter = Arc<Tracked<Counter>>;
    type Gauge = Arc<Tracked<Gauge>>;
    type Histogram = Arc<ShardedHistogram>;

    fn counter(&self, key: &Key) -> Self::Counter {
        let (name, help) = Self::help(key);
        self.prom.describe_counter(name, None, help);
        self.tracked(key, counter_of(&self.prom, key))
    }

    fn gauge(&self, key: &Key) -> Self::Gauge {
        let (name, help) = Self::help(key);
        self.prom.describe_gauge(name, None, help);
        self.tracked(key, gauge_of(&self.prom, key))
    }

    fn histogram(&self, key: &Key) -> Self::Histogram {
        let (name, help) = Self::help(key);
        self.prom.describe_histogram(name, None, help);
        Arc::new(ShardedHistogram {
            key: key.clone(),
            prom: self.prom.clone(),
            retention_secs: self.retention_secs,
            out: Mutex::new((histogram_of(&self.prom, key), None)),
            shards: Default::default(),
        })
    }
}

/// The global recorder: a registry of tracked handles over the Prometheus recorder.
pub struct TeeRecorder {
    registry: Registry<Key, TeeStorage>,
    names: Names,
}

/// The telemetry stanza's say over names: `metrics_prefix` and `prefix_filter` /
/// `filter_default`, applied when a metric is registered (once per cached handle).
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Replaces the leading `vault` (`None`: keep it).
    pub prefix: Option<String>,
    /// (prefix, allowed) rules on the dotted name after renaming.
    pub filter: Vec<(String, bool)>,
    /// Whether a name no rule matches is kept.
    pub filter_default: bool,
}

impl Names {
    /// go-metrics' filter: the longest rule prefix of `name` decides, a block winning a tie.
    fn allowed(&self, name: &str) -> bool {
        let mut best: Option<(usize, bool)> = None;
        for (prefix, allow) in &self.filter {
            if !name.starts_with(prefix.as_str()) {
                continue;
            }
            let better = match best {
                None => true,
                Some((len, was)) => prefix.len() > len || (prefix.len() == len && was && !allow),
            };
            if better {
                best = Some((prefix.len(), *allow));
            }
        }
        best.map_or(self.filter_default, |(_, allow)| allow)
    }

    /// The key to register `key` under (renamed), or `None` when the filter drops it.
    fn apply<'k>(&self, key: &'k Key) -> Option<std::borrow::Cow<'k, Key>> {
        let renamed = match &self.prefix {
            Some(prefix) => key.name().strip_prefix("vault.").map(|rest| {
                let labels: Vec<metrics::Label> = key.labels().cloned().collect();
                Key::from_parts(format!("{prefix}.{rest}"), labels)
            }),
            None => None,
        };
        let name = renamed.as_ref().map_or(key.name(), Key::name);
        if (!self.filter.is_empty() || !self.filter_default) && !self.allowed(name) {
            return None;
        }
        Some(match renamed {
            Some(k) => std::borrow::Cow::Owned(k),
            None => std::borrow::Cow::Borrowed(key),
        })
    }
}

impl TeeRecorder {
    /// A recorder feeding `prom`; series idle longer than `retention_secs` (0: never) leave the
    /// Prometheus output.
    pub fn new(prom: Arc<PrometheusRecorder>, retention_secs: u64) -> Self {
        TeeRecorder {
            registry: Registry::new(TeeStorage {
                prom,
                retention_secs,
            }),
            names: Names {
                filter_default: true,
                ..Names::default()
            },
        }
    }

    /// With `metrics_prefix` / `prefix_filter` applied.
    pub fn with_names(self, names: Names) -> Self {
        TeeRecorder { names, ..self }
    }

    /// Moves every histogram's pending samples into the Prometheus recorder (before it renders
    /// or runs its upkeep).
    pub fn flush_histograms(&self) {
        self.registry.visit_histograms(|_, h| h.flush());
    }

    /// go-metrics' `DisplayMetrics`: the last finished interval (the current one during the
    /// first ten seconds), names with dots, sorted by name. `now_unix` is the wall clock.
    pub fn summary(&self, now_unix: i64) -> Summary {
        let elapsed = elapsed_secs();
        let current = elapsed / INTERVAL_SECS;
        let shown = current.saturating_sub(1);
        let start = now_unix - i64::try_from(elapsed - shown * INTERVAL_SECS).unwrap_or(0);
        let mut out = Summary {
            timestamp: go_time(start),
            gauges: Vec::new(),
            points: Vec::new(),
            counters: Vec::new(),
            samples: Vec::new(),
        };
        self.registry.visit_gauges(|key, g| {
            let (_, value, touched) = g.snapshot(shown);
            if touched {
                out.gauges.push(GaugeValue {
                    name: key.name().to_owned(),
                    value,
                    labels: labels(key),
                });
            }
        });
        self.registry.visit_counters(|key, c| {
            if let (Some(agg), _, _) = c.snapshot(shown) {
                out.counters.push(SampledValue::new(key, agg));
            }
        });
        self.registry.visit_histograms(|key, h| {
            if let (Some(agg), _, _) = h.snapshot(shown) {
                out.samples.push(SampledValue::new(key, agg));
            }
        });
        out.gauges
            .sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        out.counters
            .sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        out.samples
            .sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        out
    }
}

impl Recorder for TeeRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.registry
            .storage()
            .prom
            .describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.registry
            .storage()
            .prom
            .describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.registry
            .storage()
            .prom
            .describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let Some(key) = self.names.apply(key) else {
            return Counter::noop();
        };
        self.registry
            .get_or_create_counter(&key, |c| Counter::from_arc(c.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let Some(key) = self.names.apply(key) else {
            return Gauge::noop();
        };
        self.registry
            .get_or_create_gauge(&key, |g| Gauge::from_arc(g.clone()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let Some(key) = self.names.apply(key) else {
            return Histogram::noop();
        };
        self.registry
            .get_or_create_histogram(&key, |h| Histogram::from_arc(h.clone()))
    }
}

fn labels(key: &Key) -> BTreeMap<String, String> {
    key.labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect()
}

/// Go's `time.Time.String()` of a UTC second: `2026-11-28 10:15:30 +0000 UTC`.
fn go_time(unix: i64) -> String {
    let t = crate::clock::from_unix_nanos(i128::from(unix) * 1_000_000_000);
    let rfc = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} +0000 UTC", rfc.trim_end_matches('Z').replace('T', " "))
}

/// A float as Go's `encoding/json` writes one: whole numbers without a fraction (`1`, not
/// `1.0`).
fn go_float<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// The JSON of `sys/metrics` (go-metrics' `MetricsSummary`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    /// Start of the interval shown.
    pub timestamp: String,
    /// Gauges.
    pub gauges: Vec<GaugeValue>,
    /// go-metrics' points (never used by Vault; always empty).
    pub points: Vec<serde_json::Value>,
    /// Counters: the interval's increments.
    pub counters: Vec<SampledValue>,
    /// Timers and other samples.
    pub samples: Vec<SampledValue>,
}

/// One gauge.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GaugeValue {
    /// Dotted name.
    pub name: String,
    /// Last value.
    #[serde(serialize_with = "go_float")]
    pub value: f64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// One counter or sample over an interval.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SampledValue {
    /// Dotted name.
    pub name: String,
    /// Number of updates.
    pub count: u64,
    /// Sum per second of the interval.
    #[serde(serialize_with = "go_float")]
    pub rate: f64,
    /// Sum.
    #[serde(serialize_with = "go_float")]
    pub sum: f64,
    /// Smallest value.
    #[serde(serialize_with = "go_float")]
    pub min: f64,
    /// Largest value.
    #[serde(serialize_with = "go_float")]
    pub max: f64,
    /// Sum / count.
    #[serde(serialize_with = "go_float")]
    pub mean: f64,
    /// Sample standard deviation.
    #[serde(serialize_with = "go_float")]
    pub stddev: f64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

impl SampledValue {
    fn new(key: &Key, agg: Aggregate) -> Self {
        SampledValue {
            name: key.name().to_owned(),
            count: agg.count,
            rate: agg.sum / INTERVAL_SECS as f64,
            sum: agg.sum,
            min: agg.min,
            max: agg.max,
            mean: if agg.count == 0 {
                0.0
            } else {
                agg.sum / agg.count as f64
            },
            stddev: agg.stddev(),
            labels: labels(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_filter_longest_rule_wins_and_a_block_wins_a_tie() {
        let rule = |p: &str, a: bool| (p.to_owned(), a);
        let names = Names {
            prefix: None,
            filter: vec![
                rule("vault.token", false),
                rule("vault.token.creation", true),
                rule("vault.core", true),
                rule("vault.core", false),
            ],
            filter_default: true,
        };
        assert!(!names.allowed("vault.token.count"));
        assert!(names.allowed("vault.token.creation"));
        assert!(!names.allowed("vault.core.handle_request"), "- wins a tie");
        assert!(
            names.allowed("vault.barrier.get"),
            "unmatched: filter_default"
        );
        let closed = Names {
            filter_default: false,
            ..names
        };
        assert!(!closed.allowed("vault.barrier.get"));
        assert!(closed.allowed("vault.token.creation"));
    }

    #[test]
    fn metrics_prefix_renames_vault_names_only() {
        let names = Names {
            prefix: Some("bank".into()),
            filter: vec![("bank.token".into(), false)],
            filter_default: true,
        };
        let key = Key::from_parts(
            "vault.core.handle_request",
            vec![metrics::Label::new("cluster", "c")],
        );
        let renamed = names.apply(&key).unwrap();
        assert_eq!(renamed.name(), "bank.core.handle_request");
        assert_eq!(renamed.labels().count(), 1);
        let ours = Key::from_name("coffer.http_requests_total");
        assert_eq!(
            names.apply(&ours).unwrap().name(),
            "coffer.http_requests_total"
        );
        // Rules see the renamed name.
        assert!(
            names
                .apply(&Key::from_name("vault.token.creation"))
                .is_none()
        );
    }

    #[test]
    fn sharded_histogram_sums_every_thread_and_publishes_every_sample() {
        let builder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_quantiles(&[0.5])
            .unwrap();
        let prom = Arc::new(builder.build_recorder());
        let handle = prom.handle();
        let tee = TeeRecorder::new(prom, 0);
        let key = Key::from_name("vault.test.timer");
        let h = tee.register_histogram(&key, &META);
        // Four threads, 1000 samples each (1..=1000 ms): more than a batch per shard, and a
        // remainder left pending until the flush.
        let first = elapsed_secs() / INTERVAL_SECS;
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let h = h.clone();
                scope.spawn(move || {
                    for v in 1..=1000 {
                        h.record(f64::from(v));
                    }
                });
            }
        });
        let last = elapsed_secs() / INTERVAL_SECS;
        let mut total = Aggregate::default();
        tee.registry.visit_histograms(|_, sharded| {
            // The samples of the interval(s) the recording spanned (a 10 s boundary may fall
            // in between).
            for index in first..=last {
                let (agg, _, touched) = sharded.snapshot(index);
                assert!(touched);
                if let Some(agg) = agg {
                    total.merge(&agg);
                }
            }
        });
        assert_eq!(total.count, 4000);
        assert_eq!(total.sum, 4.0 * 500_500.0);
        assert_eq!((total.min, total.max), (1.0, 1000.0));
        tee.flush_histograms();
        let text = handle.render();
        assert!(
            text.lines().any(|l| l == "vault_test_timer_count 4000"),
            "{text}"
        );
    }

    #[test]
    fn aggregates_like_go_metrics() {
        let mut a = Aggregate::default();
        for v in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            a.ingest(v);
        }
        assert_eq!((a.count, a.sum, a.min, a.max), (8, 40.0, 2.0, 9.0));
        assert!((a.stddev() - 2.138_089_935).abs() < 1e-6, "{}", a.stddev());
        let mut one = Aggregate::default();
        one.ingest(3.0);
        assert_eq!(one.stddev(), 0.0);
    }

    #[test]
    fn intervals_keep_the_previous_one() {
        let mut i = Intervals::default();
        i.roll(5);
        i.current.ingest(1.0);
        i.roll(6);
        i.current.ingest(2.0);
        assert_eq!(i.at(5).map(|a| a.sum), Some(1.0));
        assert_eq!(i.at(6).map(|a| a.sum), Some(2.0));
        i.roll(8);
        assert_eq!(i.at(7), None);
        assert_eq!(i.at(6), None);
    }

    #[test]
    fn go_time_string() {
        assert_eq!(go_time(1_700_000_000), "2023-11-14 22:13:20 +0000 UTC");
    }
}
