//! The `process_*` families every Prometheus client library exports (CPU seconds, memory, file
//! descriptors, start time), read from `/proc` at each scrape and appended to the output, so the
//! usual node and process dashboards and alerts work on Coffer as they do on any exporter.

use std::fmt::Write as _;

use super::host::TICKS;

/// The families as Prometheus text (empty where `/proc` cannot be read).
pub fn render() -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(v) = value {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            );
        }
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    // Fields after the command name (which may hold spaces), counted from 3 (`state`).
    let fields: Vec<&str> = stat
        .as_deref()
        .and_then(|s| s.rsplit_once(')'))
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> Option<f64> { fields.get(n.checked_sub(3)?)?.parse().ok() };
    let cpu = field(14)
        .zip(field(15))
        .map(|(user, system)| (user + system) / TICKS);
    family(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time the process used, in seconds.",
        cpu,
    );
    family(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size of the process, in bytes.",
        field(23),
    );
    let page = rustix::param::page_size() as f64;
    family(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size of the process, in bytes.",
        field(24).map(|pages| pages * page),
    );
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    family(
        "process_start_time_seconds",
        "gauge",
        "When the process started, in seconds since the Unix epoch.",
        boot.zip(field(22))
            .map(|(boot, ticks)| boot + ticks / TICKS),
    );
    let open = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    family(
        "process_open_fds",
        "gauge",
        "File descriptors the process has open.",
        open,
    );
    let max = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map(|n| n as f64);
    family(
        "process_max_fds",
        "gauge",
        "Most file descriptors the process may open.",
        max,
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_family_is_present_with_a_plausible_value() {
        let text = super::render();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing in {text}"))
        };
        assert!(value("process_resident_memory_bytes") > 1e5);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_cpu_seconds_total") >= 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started} vs {now}"
        );
    }
}
