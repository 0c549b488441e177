//! The server log at run time: the level of each named logger (`sys/loggers`) and live copies
//! of the log for `sys/monitor` (`vault monitor`, `vault debug`).
//!
//! **One log per process**, like the metrics recorder: [`install`] sets the global `tracing`
//! subscriber once (the binary calls it at start-up). It has three layers:
//!
//! - the server's own output (stderr, standard or JSON), filtered per logger: a logger is a
//!   top-level module of Coffer (`coffer::audit::sink` logs as `audit`); everything else
//!   (dependencies) follows the configured level;
//! - two monitor layers (standard and JSON), each passing an event only while a monitor of its
//!   format wants that level, and handing the formatted line to every such monitor.
//!
//! A monitor sees events at its own level whatever the loggers' levels are (as Vault's
//! intercepting logger does), so `vault monitor -log-level=debug` shows debug lines from a
//! server logging at `info`. Levels are atomics read on each event; a change also rebuilds
//! `tracing`'s per-callsite cache, so a level no layer wants costs nothing per event.
//!
//! Each monitor has a bounded queue (512 lines, as Vault's); a line that finds it full is
//! dropped and counted, and the stream reports `Monitor dropped N logs during monitor request`
//! (Vault's text) once it has sent the lines queued before the drops.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing::Metadata;
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::LogFormat;

/// The named loggers: Coffer's top-level modules.
pub const LOGGERS: [&str; 17] = [
    "audit",
    "barrier",
    "config",
    "core",
    "ha",
    "hcl",
    "http",
    "logical",
    "mounts",
    "physical",
    "policy",
    "production",
    "seal",
    "server",
    "storage",
    "telemetry",
    "token",
];

/// Lines a monitor may have queued before later ones are dropped (Vault's buffer).
const MONITOR_QUEUE: usize = 512;

/// A level as stored: 0 = off, 1 = error ... 5 = trace.
fn rank(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR => 1,
        tracing::Level::WARN => 2,
        tracing::Level::INFO => 3,
        tracing::Level::DEBUG => 4,
        tracing::Level::TRACE => 5,
    }
}

fn filter_of(rank: u8) -> LevelFilter {
    match rank {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// A level's name as Vault shows it (`sys/loggers`).
fn name_of(rank: u8) -> &'static str {
    match rank {
        0 | 1 => "error",
        2 => "warn",
        3 => "info",
        4 => "debug",
        _ => "trace",
    }
}

/// Vault's level names (hclog's), case-insensitive and trimmed: `warning` and `err` are
/// aliases, `notice` and the empty string mean info. The error is Vault's text.
pub fn parse_level(raw: &str) -> Result<tracing::Level, String> {
    let lower = raw.trim().to_ascii_lowercase();
    match lower.as_str() {
        "trace" => Ok(tracing::Level::TRACE),
        "debug" => Ok(tracing::Level::DEBUG),
        "" | "notice" | "info" => Ok(tracing::Level::INFO),
        "warn" | "warning" => Ok(tracing::Level::WARN),
        "err" | "error" => Ok(tracing::Level::ERROR),
        _ => Err(format!("unknown log level: {lower}")),
    }
}

/// The logger an event's target belongs to (an index into [`LOGGERS`]), if any.
fn logger_of(target: &str) -> Option<usize> {
    let rest = target.strip_prefix("coffer")?;
    let module = match rest.strip_prefix("::") {
        Some(r) => r.split("::").next().unwrap_or(r),
        // The binary's own events (`main.rs`).
        None if rest.is_empty() => "server",
        None => return None,
    };
    LOGGERS.iter().position(|l| *l == module)
}

/// One live monitor.
struct Monitor {
    id: u64,
    level: u8,
    json: bool,
    lines: tokio::sync::mpsc::Sender<axum::body::Bytes>,
    dropped: Arc<AtomicU64>,
}

/// The process's log settings and monitors.
pub struct Logs {
    /// The configured level (`log_level`): what `DELETE sys/loggers` returns to.
    configured: AtomicU8,
    /// Events of targets outside Coffer's modules.
    base: AtomicU8,
    levels: [AtomicU8; LOGGERS.len()],
    /// The server writes JSON lines: monitors then get JSON whatever they ask (as in Vault).
    json: bool,
    monitors: Mutex<Vec<Monitor>>,
    /// Highest level a monitor of each format wants (standard, JSON); 0 without one.
    watched: [AtomicU8; 2],
    next_id: AtomicU64,
}

static LOGS: OnceLock<Arc<Logs>> = OnceLock::new();

/// The process's log, once [`install`]ed.
pub fn global() -> Option<&'static Arc<Logs>> {
    LOGS.get()
}

/// Sets the global subscriber: the server's output to stderr at `level` in `format` (colours
/// only on a terminal), plus the monitor layers. Returns the log, or `None` when another
/// subscriber was installed first (then only that one's output exists).
pub fn install(level: tracing::Level, format: LogFormat) -> Option<Arc<Logs>> {
    use std::io::IsTerminal;
    let json = format == LogFormat::Json;
    let logs = Arc::new(Logs::new(level, json));
    let server: Box<dyn Layer<Registry> + Send + Sync> = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(ServerFilter(logs.clone()))
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .with_filter(ServerFilter(logs.clone()))
            .boxed()
    };
    let standard = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(MonitorWriter {
            logs: logs.clone(),
            json: false,
        })
        .with_filter(MonitorFilter {
            logs: logs.clone(),
            json: false,
        });
    let json_monitors = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(MonitorWriter {
            logs: logs.clone(),
            json: true,
        })
        .with_filter(MonitorFilter {
            logs: logs.clone(),
            json: true,
        });
    let installed = Registry::default()
        .with(server)
        .with(standard)
        .with(json_monitors)
        .try_init();
    if installed.is_err() {
        return None;
    }
    let _ = LOGS.set(logs.clone());
    Some(logs)
}

impl Logs {
    fn new(level: tracing::Level, json: bool) -> Logs {
        let r = rank(&level);
        Logs {
            configured: AtomicU8::new(r),
            base: AtomicU8::new(r),
            levels: std::array::from_fn(|_| AtomicU8::new(r)),
            json,
            monitors: Mutex::new(Vec::new()),
            watched: [AtomicU8::new(0), AtomicU8::new(0)],
            next_id: AtomicU64::new(1),
        }
    }

    /// Every logger and its level (`GET sys/loggers`).
    pub fn levels(&self) -> Vec<(&'static str, &'static str)> {
        LOGGERS
            .iter()
            .zip(&self.levels)
            .map(|(name, l)| (*name, name_of(l.load(Ordering::Relaxed))))
            .collect()
    }

    /// One logger's level (`GET sys/loggers/<name>`).
    pub fn level(&self, name: &str) -> Option<&'static str> {
        let i = LOGGERS.iter().position(|l| *l == name)?;
        self.levels
            .get(i)
            .map(|l| name_of(l.load(Ordering::Relaxed)))
    }

    /// Sets every logger, and the level of events outside them, to `level`
    /// (`POST sys/loggers`).
    pub fn set_all(&self, level: tracing::Level) {
        let r = rank(&level);
        self.base.store(r, Ordering::Relaxed);
        for l in &self.levels {
            l.store(r, Ordering::Relaxed);
        }
        tracing::callsite::rebuild_interest_cache();
    }

    /// Sets one logger's level; false when there is no logger of that name.
    pub fn set(&self, name: &str, level: tracing::Level) -> bool {
        let Some(l) = LOGGERS
            .iter()
            .position(|l| *l == name)
            .and_then(|i| self.levels.get(i))
        else {
            return false;
        };
        l.store(rank(&level), Ordering::Relaxed);
        tracing::callsite::rebuild_interest_cache();
        true
    }

    /// The configured level (what `DELETE sys/loggers` restores).
    pub fn configured(&self) -> tracing::Level {
        match self.configured.load(Ordering::Relaxed) {
            0 | 1 => tracing::Level::ERROR,
            2 => tracing::Level::WARN,
            3 => tracing::Level::INFO,
            4 => tracing::Level::DEBUG,
            _ => tracing::Level::TRACE,
        }
    }

    /// A new configured level (SIGHUP with a changed `log_level`): every logger takes it.
    pub fn reconfigure(&self, level: tracing::Level) {
        self.configured.store(rank(&level), Ordering::Relaxed);
        self.set_all(level);
    }

    /// Whether the server itself writes an event at `level` from `target`.
    fn server_wants(&self, target: &str, level: &tracing::Level) -> bool {
        let at = match logger_of(target).and_then(|i| self.levels.get(i)) {
            Some(l) => l.load(Ordering::Relaxed),
            None => self.base.load(Ordering::Relaxed),
        };
        rank(level) <= at
    }

    fn server_hint(&self) -> LevelFilter {
        let most = self
            .levels
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .chain(std::iter::once(self.base.load(Ordering::Relaxed)))
            .max()
            .unwrap_or(0);
        filter_of(most)
    }

    /// Starts a monitor: log lines at `level` and above, as JSON when `json` (or when the
    /// server logs JSON). The stream ends when the returned receiver is dropped.
    pub fn monitor(self: &Arc<Self>, level: tracing::Level, json: bool) -> MonitorStream {
        let json = json || self.json;
        let (tx, rx) = tokio::sync::mpsc::channel(MONITOR_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut monitors = self.monitors.lock().unwrap_or_else(PoisonError::into_inner);
            monitors.push(Monitor {
                id,
                level: rank(&level),
                json,
                lines: tx,
                dropped: dropped.clone(),
            });
            self.rewatch(&monitors);
        }
        tracing::callsite::rebuild_interest_cache();
        MonitorStream {
            logs: self.clone(),
            id,
            lines: rx,
            dropped,
        }
    }

    /// Recomputes the highest level each format's monitors want.
    fn rewatch(&self, monitors: &[Monitor]) {
        for (i, json) in [false, true].into_iter().enumerate() {
            let most = monitors
                .iter()
                .filter(|m| m.json == json)
                .map(|m| m.level)
                .max()
                .unwrap_or(0);
            if let Some(w) = self.watched.get(i) {
                w.store(most, Ordering::Relaxed);
            }
        }
    }

    fn watched(&self, json: bool) -> u8 {
        self.watched
            .get(usize::from(json))
            .map_or(0, |w| w.load(Ordering::Relaxed))
    }

    /// Hands a formatted line to every monitor of its format that wants its level.
    fn publish(&self, json: bool, level: u8, line: &[u8]) {
        let monitors = self.monitors.lock().unwrap_or_else(PoisonError::into_inner);
        let mut bytes = None;
        for m in monitors
            .iter()
            .filter(|m| m.json == json && level <= m.level)
        {
            let b = bytes.get_or_insert_with(|| axum::body::Bytes::copy_from_slice(line));
            if m.lines.try_send(b.clone()).is_err() {
                m.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// How many monitors are live (tests).
    pub fn monitors(&self) -> usize {
        self.monitors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The receiving end of a monitor. Dropping it ends the monitor.
pub struct MonitorStream {
    logs: Arc<Logs>,
    id: u64,
    lines: tokio::sync::mpsc::Receiver<axum::body::Bytes>,
    dropped: Arc<AtomicU64>,
}

impl MonitorStream {
    /// The next line; once the queue is empty after lines were dropped, Vault's note saying how
    /// many (so it follows the lines queued before the drops). `None` only if the log itself
    /// went away.
    pub fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<axum::body::Bytes>> {
        match self.lines.poll_recv(cx) {
            std::task::Poll::Pending => {
                let lost = self.dropped.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    return std::task::Poll::Ready(Some(axum::body::Bytes::from(format!(
                        "Monitor dropped {lost} logs during monitor request\n"
                    ))));
                }
                std::task::Poll::Pending
            }
            ready => ready,
        }
    }
}

impl Drop for MonitorStream {
    fn drop(&mut self) {
        {
            let mut monitors = self
                .logs
                .monitors
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            monitors.retain(|m| m.id != self.id);
            self.logs.rewatch(&monitors);
        }
        tracing::callsite::rebuild_interest_cache();
    }
}

/// The server output's filter: each event against its logger's level.
struct ServerFilter(Arc<Logs>);

impl<S> Filter<S> for ServerFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.0.server_wants(meta.target(), meta.level())
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.0.server_wants(meta.target(), meta.level()) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.0.server_hint())
    }
}

/// A monitor layer's filter: events at a level some monitor of its format wants.
struct MonitorFilter {
    logs: Arc<Logs>,
    json: bool,
}

impl MonitorFilter {
    fn wants(&self, level: &tracing::Level) -> bool {
        rank(level) <= self.logs.watched(self.json)
    }
}

impl<S> Filter<S> for MonitorFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.wants(meta.level())
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.wants(meta.level()) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(filter_of(self.logs.watched(self.json)))
    }
}

/// Gives the monitor layers a writer per event that publishes the whole line when dropped.
struct MonitorWriter {
    logs: Arc<Logs>,
    json: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MonitorWriter {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            logs: self.logs.clone(),
            json: self.json,
            level: 5,
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        Line {
            logs: self.logs.clone(),
            json: self.json,
            level: rank(meta.level()),
            buf: Vec::new(),
        }
    }
}

/// One formatted event on its way to the monitors.
struct Line {
    logs: Arc<Logs>,
    json: bool,
    level: u8,
    buf: Vec<u8>,
}

impl std::io::Write for Line {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.logs.publish(self.json, self.level, &self.buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_map_to_their_top_level_module() {
        let name = |t: &str| logger_of(t).and_then(|i| LOGGERS.get(i)).copied();
        assert_eq!(name("coffer::audit::sink"), Some("audit"));
        assert_eq!(name("coffer::http"), Some("http"));
        assert_eq!(name("coffer"), Some("server"));
        assert_eq!(name("cofferx::audit"), None);
        assert_eq!(name("hyper::proto"), None);
        assert_eq!(name("coffer::nothing"), None);
    }

    #[test]
    fn levels_parse_as_vault_and_errors_use_its_text() {
        assert_eq!(parse_level(" Warning "), Ok(tracing::Level::WARN));
        assert_eq!(parse_level("ERR"), Ok(tracing::Level::ERROR));
        assert_eq!(parse_level(""), Ok(tracing::Level::INFO));
        assert_eq!(
            parse_level("Loud"),
            Err("unknown log level: loud".to_string())
        );
    }

    fn poll(m: &mut MonitorStream) -> Option<String> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match m.poll_next(&mut cx) {
            std::task::Poll::Ready(Some(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        }
    }

    #[test]
    fn a_full_monitor_drops_lines_and_says_how_many_in_vaults_words() {
        let logs = Arc::new(Logs::new(tracing::Level::INFO, false));
        let mut m = logs.monitor(tracing::Level::DEBUG, false);
        let mut quiet = logs.monitor(tracing::Level::WARN, false);
        assert_eq!(logs.watched(false), 4);
        for i in 0..MONITOR_QUEUE + 88 {
            logs.publish(false, 4, format!("line {i}\n").as_bytes());
        }
        // The queued lines first, in order, then the note.
        for i in 0..MONITOR_QUEUE {
            assert_eq!(poll(&mut m), Some(format!("line {i}\n")));
        }
        assert_eq!(
            poll(&mut m).as_deref(),
            Some("Monitor dropped 88 logs during monitor request\n")
        );
        assert_eq!(poll(&mut m), None);
        // A debug line is not for a monitor at warn.
        assert_eq!(poll(&mut quiet), None);
        drop(m);
        assert_eq!(logs.watched(false), 2);
        drop(quiet);
        assert_eq!(logs.monitors(), 0);
        assert_eq!(logs.watched(false), 0);
    }

    #[test]
    fn a_server_logging_json_gives_every_monitor_json() {
        let logs = Arc::new(Logs::new(tracing::Level::INFO, true));
        let _m = logs.monitor(tracing::Level::INFO, false);
        assert_eq!(logs.watched(true), 3);
        assert_eq!(logs.watched(false), 0);
    }

    #[test]
    fn a_logger_change_leaves_the_others_and_a_reset_restores_all() {
        let logs = Logs::new(tracing::Level::INFO, false);
        assert!(logs.set("audit", tracing::Level::TRACE));
        assert!(!logs.set("nope", tracing::Level::TRACE));
        assert_eq!(logs.level("audit"), Some("trace"));
        assert_eq!(logs.level("core"), Some("info"));
        assert!(logs.server_wants("coffer::audit::sink", &tracing::Level::TRACE));
        assert!(!logs.server_wants("coffer::core", &tracing::Level::DEBUG));
        assert!(!logs.server_wants("hyper", &tracing::Level::DEBUG));
        assert_eq!(logs.server_hint(), LevelFilter::TRACE);
        logs.set_all(logs.configured());
        assert_eq!(logs.level("audit"), Some("info"));
        assert_eq!(logs.server_hint(), LevelFilter::INFO);
    }
}
