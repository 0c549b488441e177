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
    // Unlimited reads as the largest value, as the Go collector reports it.
    let address_space = rustix::process::getrlimit(rustix::process::Resource::As)
        .current
        .unwrap_or(u64::MAX);
    family(
        "process_virtual_memory_max_bytes",
        "gauge",
        "Most virtual memory the process may use, in bytes.",
        Some(address_space as f64),
    );
    let (received, sent) = network_bytes();
    family(
        "process_network_receive_bytes_total",
        "counter",
        "Bytes received by the network interfaces the process sees.",
        received,
    );
    family(
        "process_network_transmit_bytes_total",
        "counter",
        "Bytes sent by the network interfaces the process sees.",
        sent,
    );
    out
}

/// Bytes received and sent over every interface of the process's network namespace
/// (`/proc/self/net/dev`), as the Go collector sums them.
fn network_bytes() -> (Option<f64>, Option<f64>) {
    let Ok(text) = std::fs::read_to_string("/proc/self/net/dev") else {
        return (None, None);
    };
    let mut totals = (0.0, 0.0);
    // Two header lines, then `iface: rx_bytes packets errs drop fifo frame compressed
    // multicast tx_bytes ...`.
    for line in text.lines().skip(2) {
        let Some((_, counts)) = line.split_once(':') else {
            continue;
        };
        let counts: Vec<Option<f64>> = counts.split_whitespace().map(|v| v.parse().ok()).collect();
        if let (Some(Some(rx)), Some(Some(tx))) = (counts.first(), counts.get(8)) {
            totals.0 += rx;
            totals.1 += tx;
        }
    }
    (Some(totals.0), Some(totals.1))
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
        assert!(value("process_virtual_memory_max_bytes") >= value("process_virtual_memory_bytes"));
        // Loopback traffic counts both ways.
        let (rx, tx) = (
            value("process_network_receive_bytes_total"),
            value("process_network_transmit_bytes_total"),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        use std::io::{Read, Write};
        client.write_all(&[7u8; 100_000]).unwrap();
        let mut got = vec![0u8; 100_000];
        server.read_exact(&mut got).unwrap();
        let after = super::render();
        let value_after = |name: &str| -> f64 {
            after
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing in {after}"))
        };
        assert!(value_after("process_network_receive_bytes_total") >= rx + 100_000.0);
        assert!(value_after("process_network_transmit_bytes_total") >= tx + 100_000.0);
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
