//! `coffer-bench`: the side-by-side, interleaved benchmark of Coffer against OpenBao (issue 8).
//!
//! A lean load generator: one OS thread (a current-thread tokio runtime), N persistent HTTP/1.1
//! keep-alive connections speaking a hand-rolled minimal HTTP/1.1 client (no extra dependencies),
//! bounded by a fixed duration or request count, or offered at a fixed rate (`--rate`, the audit
//! phase's paced sections: a second thread then releases each request when it is due). Latency is kept as a sorted sample (every
//! request's microseconds), so p50/p99 are exact. Server CPU comes from `/proc/<pid>/stat`
//! (utime+stime) and RSS from `/proc/<pid>/status` (VmRSS).
//!
//! Modes:
//! - `coffer-bench compare --coffer BIN --bao BIN [--quick] ...` starts fresh in-memory dev servers,
//!   creates the fixtures through the HTTP API and runs every scenario interleaved
//!   (Coffer, OpenBao, Coffer, OpenBao, ...), then prints a markdown report.
//! - `coffer-bench load --addr 127.0.0.1:PORT --scenario NAME ...` drives one running dev server
//!   (root token `root`), e.g. under `valgrind --tool=callgrind`, for profiling.
//!
//! Only ever talks to 127.0.0.1.
#![allow(
    clippy::indexing_slicing,
    reason = "a benchmark tool parsing its own HTTP responses; not on the server's request path"
)]

mod audit;
mod client;
mod compare;
mod jwt;
mod load;
mod pg;
mod process;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use crate::load::{Bound, Scenario, clk_tck, percentile, run_window, setup_fixtures};
use crate::report::fmt_rps;

type R<T> = Result<T, String>;

struct Opts {
    coffer: PathBuf,
    bao: PathBuf,
    quick: bool,
    rounds: usize,
    warmup: Duration,
    measure: Duration,
    conns: Vec<usize>,
    /// Connection counts of the audit phase (`--audit-conns`, default 16).
    audit_conns: Vec<usize>,
    /// Offered rates of the audit phase's paced sections (`--audit-rates`, default 2000,10000;
    /// `--audit-rates none` for none).
    audit_rates: Vec<f64>,
    scenarios: Vec<Scenario>,
    memory_count: u64,
    memory: bool,
    /// Run the audit phase (`--no-audit` skips it).
    audit: bool,
    /// `--only audit|pg` (`--audit-only` = `--only audit`): that phase and nothing else.
    only: Option<Only>,
    port: u16,
    out: Option<PathBuf>,
}

/// A phase run alone (`--only`).
#[derive(Clone, Copy)]
enum Only {
    Audit,
    Pg,
}

// ---------------------------------------------------------------------------------------------
// Load mode (one running server; for profiling).
// ---------------------------------------------------------------------------------------------

async fn load(args: &[String]) -> R<()> {
    let mut addr = "127.0.0.1:8200".to_string();
    let mut scenario = Scenario::KvReadPolicy;
    let mut conns = 16usize;
    let mut bound = Bound::Time {
        warmup: Duration::from_millis(500),
        measure: Duration::from_secs(5),
    };
    let mut pid = None;
    let mut rate = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--addr" => addr = val()?,
            "--scenario" => scenario = Scenario::parse(&val()?)?,
            "--conns" => conns = val()?.parse().map_err(|e| format!("--conns: {e}"))?,
            "--requests" => {
                bound = Bound::Count(val()?.parse().map_err(|e| format!("--requests: {e}"))?)
            }
            "--duration" => {
                let secs: f64 = val()?.parse().map_err(|e| format!("--duration: {e}"))?;
                bound = Bound::Time {
                    warmup: Duration::from_millis(500),
                    measure: Duration::from_secs_f64(secs),
                }
            }
            "--pid" => pid = Some(val()?.parse().map_err(|e| format!("--pid: {e}"))?),
            "--rate" => rate = Some(positive_rate(a, &val()?)?),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if let (Some(rate), Bound::Time { warmup, measure }) = (rate, bound) {
        bound = Bound::Paced {
            warmup,
            measure,
            rate,
        };
    } else if rate.is_some() {
        return Err("--rate goes with --duration, not --requests".into());
    }
    if !addr.starts_with("127.0.0.1:") {
        return Err("only 127.0.0.1 targets are allowed".into());
    }
    let fx = setup_fixtures(&addr).await?;
    let tag = format!("load{}", std::process::id());
    let w = run_window(&addr, scenario, &fx, conns, bound, &tag, pid).await?;
    let cpu = w
        .cpu_ticks
        .map(|t| t as f64 * 1000.0 / clk_tck() as f64 * 1000.0 / (w.ok + w.errors).max(1) as f64);
    println!(
        "{} c={conns}: {} requests in {:.2} s = {} req/s, p50 {} µs, p99 {} µs, errors {}{}{}",
        scenario.name(),
        w.ok + w.errors,
        w.elapsed.as_secs_f64(),
        fmt_rps(w.rps()),
        percentile(&w.lat_us, 0.5).map_or("–".into(), |v| v.to_string()),
        percentile(&w.lat_us, 0.99).map_or("–".into(), |v| v.to_string()),
        w.errors,
        cpu.map_or(String::new(), |c| format!(", server CPU {c:.2} ms/1k req")),
        w.first_error
            .map_or(String::new(), |e| format!(" (first: {e})"))
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// CLI.
// ---------------------------------------------------------------------------------------------

const USAGE: &str = "usage:
  coffer-bench compare --coffer BIN --bao BIN [--quick] [--rounds N] [--duration SECS]
                       [--warmup SECS] [--conns 1,16,64] [--audit-conns 16]
                       [--audit-rates 2000,10000|none] [--scenarios a,b,..]
                       [--memory-count N] [--no-memory] [--no-audit] [--only audit|pg] [--port P]
                       [--out FILE]
  coffer-bench load --addr 127.0.0.1:PORT [--scenario NAME] [--conns N]
                    [--duration SECS [--rate REQ_PER_SEC] | --requests N] [--pid SERVER_PID]
scenarios: kv-read-root kv-read-policy lookup-self kv-write mix-90-10 approle-login jwt-login token-create";

/// A request rate (`--rate`, `--audit-rate`): a positive number of requests per second.
fn positive_rate(flag: &str, value: &str) -> R<f64> {
    match value.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1e6 => Ok(r),
        _ => Err(format!(
            "{flag}: a positive number of requests per second, at most 1000000"
        )),
    }
}

/// A comma-separated list of connection counts (`--conns`, `--audit-conns`).
fn conn_list(flag: &str, value: &str) -> R<Vec<usize>> {
    value
        .split(',')
        .map(|x| x.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag}: {e}"))
}

fn parse_compare(args: &[String]) -> R<Opts> {
    let mut o = Opts {
        coffer: PathBuf::from("target/release/coffer"),
        bao: PathBuf::from("bao"),
        quick: false,
        rounds: 3,
        warmup: Duration::from_millis(500),
        measure: Duration::from_secs(3),
        conns: vec![1, 16, 64],
        audit_conns: vec![16],
        audit_rates: vec![2000.0, 10000.0],
        scenarios: Scenario::ALL.to_vec(),
        memory_count: 100_000,
        memory: true,
        audit: true,
        only: None,
        port: 18420,
        out: None,
    };
    let (mut rounds, mut measure, mut conns, mut mem) = (None, None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        let secs = |s: String| -> R<Duration> {
            s.parse::<f64>()
                .map(Duration::from_secs_f64)
                .map_err(|e| format!("{a}: {e}"))
        };
        match a.as_str() {
            "--coffer" => o.coffer = PathBuf::from(val()?),
            "--bao" => o.bao = PathBuf::from(val()?),
            "--quick" => o.quick = true,
            "--rounds" => rounds = Some(val()?.parse().map_err(|e| format!("--rounds: {e}"))?),
            "--duration" => measure = Some(secs(val()?)?),
            "--warmup" => o.warmup = secs(val()?)?,
            "--conns" => conns = Some(conn_list(a, &val()?)?),
            "--audit-conns" => o.audit_conns = conn_list(a, &val()?)?,
            "--audit-rates" => {
                let v = val()?;
                o.audit_rates = if v == "none" {
                    Vec::new()
                } else {
                    v.split(',')
                        .map(|x| positive_rate(a, x.trim()))
                        .collect::<R<Vec<_>>>()?
                };
            }
            "--scenarios" => {
                o.scenarios = val()?
                    .split(',')
                    .map(|x| Scenario::parse(x.trim()))
                    .collect::<R<Vec<_>>>()?;
                o.scenarios.sort();
            }
            "--memory-count" => {
                mem = Some(val()?.parse().map_err(|e| format!("--memory-count: {e}"))?)
            }
            "--no-memory" => o.memory = false,
            "--no-audit" => o.audit = false,
            "--audit-only" => o.only = Some(Only::Audit),
            "--only" => {
                o.only = Some(match val()?.as_str() {
                    "audit" => Only::Audit,
                    "pg" | "postgresql" => Only::Pg,
                    other => return Err(format!("--only: unknown phase {other} (audit, pg)")),
                })
            }
            "--port" => o.port = val()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--out" => o.out = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if o.quick {
        // Smoke check: every scenario once at 16 connections, short windows, small memory fill.
        o.rounds = 1;
        o.measure = Duration::from_millis(700);
        o.warmup = Duration::from_millis(200);
        o.conns = vec![16];
        o.memory_count = 5_000;
    }
    o.rounds = rounds.unwrap_or(o.rounds).max(1);
    o.measure = measure.unwrap_or(o.measure);
    o.conns = conns.unwrap_or(o.conns);
    o.memory_count = mem.unwrap_or(o.memory_count).max(1);
    Ok(o)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "help") || args.iter().any(|a| a == "-h" || a == "--help")
    {
        println!("{USAGE}");
        return std::process::ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let res = match args.split_first() {
        Some((cmd, rest)) if cmd == "compare" => {
            parse_compare(rest).and_then(|o| rt.block_on(compare::compare(o)))
        }
        Some((cmd, rest)) if cmd == "load" => rt.block_on(load(rest)),
        _ => Err(USAGE.to_string()),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coffer-bench: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
