//! The audit phase: kv read and write throughput with one `file` audit device on, as a ratio to
//! the same server with no device, Coffer and OpenBao side by side in one run, at each
//! connection count of `--audit-conns` (16 by default), then with requests offered at each rate
//! of `--audit-rates` (2,000 and 10,000 req/s by default: the audit contract's load, and one
//! that OpenBao sustains too) to show what the device adds to the median. Each server is
//! a fresh dev server (OpenBao gets `unsafe_allow_api_audit_creation` through `-config`); per
//! round and server the device is enabled for one window and disabled for the other, the order
//! alternating between rounds.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use crate::client::Conn;
use crate::load::{Bound, ROOT, Scenario, expect, percentile, run_window, setup_fixtures};
use crate::process::{Kind, Server};
use crate::report::{Cell, fmt_ms, fmt_opt, fmt_rps};
use crate::{Opts, R};

/// The scenarios measured with and without the device.
const SCENARIOS: [Scenario; 2] = [Scenario::KvReadRoot, Scenario::KvWrite];

/// Enables (`Some(file)`) or disables the `file/` device.
async fn set_device(addr: &str, file: Option<&Path>) -> R<()> {
    let mut c = Conn::connect(addr).await?;
    let r = match file {
        Some(f) => {
            c.call(
                "PUT",
                "/v1/sys/audit/file",
                Some(ROOT),
                Some(json!({"type": "file", "options": {"file_path": f.display().to_string()}})),
            )
            .await?
        }
        None => {
            c.call("DELETE", "/v1/sys/audit/file", Some(ROOT), None)
                .await?
        }
    };
    expect("audit device", r, &[200, 204])?;
    Ok(())
}

/// Connections of the paced section (as many as the closed-loop default).
const PACED_CONNS: usize = 16;

/// How one section drives the servers: closed loop on `conns` connections, or requests offered
/// at a fixed rate.
#[derive(Clone, Copy)]
enum Load {
    Closed(usize),
    Paced(f64),
}

pub async fn audit_phase(opts: &Opts, dir: &Path) -> R<String> {
    let bao_config = dir.join("bao-audit.hcl");
    std::fs::write(&bao_config, "unsafe_allow_api_audit_creation = true\n")
        .map_err(|e| e.to_string())?;
    let coffer = Server::start(Kind::Coffer, &opts.coffer, opts.port + 40, dir).await?;
    let bao = Server::start_with(
        Kind::Bao,
        &opts.bao,
        opts.port + 50,
        dir,
        &[format!("-config={}", bao_config.display())],
    )
    .await?;
    let servers = [&coffer, &bao];
    let mut fixtures = Vec::new();
    for s in servers {
        fixtures.push(setup_fixtures(&s.addr).await?);
    }
    let mut out = String::new();
    let mut window_no = 0u64;
    for &c in &opts.audit_conns {
        let _ = writeln!(
            out,
            "## Audit: one file device on vs off ({c} connections)\n\n\
             Each server fresh at the start of the phase; per round the `file` device is enabled \
             for one window and disabled for the other (order alternating); the log goes to a file \
             in the temp dir.\n"
        );
        let _ = writeln!(
            out,
            "| Scenario | Server | Audit off req/s | Audit on req/s | **On/off** | p50 ms off / on | p99 ms off / on | Server CPU µs/req off / on | Median added µs |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
        section(
            opts,
            dir,
            &servers,
            &fixtures,
            Load::Closed(c),
            &mut window_no,
            &mut out,
        )
        .await?;
        let _ = writeln!(out);
    }
    for &rate in &opts.audit_rates {
        let _ = writeln!(
            out,
            "## Audit: one file device on vs off ({} req/s offered, {PACED_CONNS} connections)\n\n\
             The audit contract's own measure (§4: the file device adds at most 20 µs to the \
             median request at 10k req/s). Requests are offered at a fixed rate, evenly spaced, \
             each on whichever connection is free (a second generator thread releases each request when it is due); latency counts from the send. A server that \
             cannot sustain the rate shows fewer achieved req/s than offered, and its latencies \
             then say little. Same windows and device as above.\n",
            fmt_rps(rate)
        );
        let _ = writeln!(
            out,
            "| Scenario | Server | Achieved req/s off / on | p50 µs off / on | p99 µs off / on | Server CPU µs/req off / on | **Median added µs** |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
        section(
            opts,
            dir,
            &servers,
            &fixtures,
            Load::Paced(rate),
            &mut window_no,
            &mut out,
        )
        .await?;
        let _ = writeln!(out);
    }
    Ok(out)
}

/// One table: every scenario, both servers, `opts.rounds` rounds of an audit-off and an
/// audit-on window each.
async fn section(
    opts: &Opts,
    dir: &Path,
    servers: &[&Server; 2],
    fixtures: &[crate::load::Fixtures],
    load: Load,
    window_no: &mut u64,
    out: &mut String,
) -> R<()> {
    let tck = crate::load::clk_tck();
    let (conns, bound, label) = match load {
        Load::Closed(c) => (
            c,
            Bound::Time {
                warmup: opts.warmup,
                measure: opts.measure,
            },
            format!("c={c:<3}"),
        ),
        Load::Paced(rate) => (
            PACED_CONNS,
            Bound::Paced {
                warmup: opts.warmup,
                measure: opts.measure,
                rate,
            },
            format!("@{rate}/s"),
        ),
    };
    for scn in SCENARIOS {
        // [server][off, on]
        let mut cells: [[Cell; 2]; 2] = Default::default();
        for round in 0..opts.rounds {
            for (i, s) in servers.iter().enumerate() {
                let order: [bool; 2] = if round % 2 == 0 {
                    [false, true]
                } else {
                    [true, false]
                };
                for on in order {
                    let file = dir.join(format!("audit-{}.log", s.kind.label()));
                    if on {
                        set_device(&s.addr, Some(&file)).await?;
                    }
                    *window_no += 1;
                    let tag = format!("a{window_no}");
                    let fx = fixtures.get(i).ok_or("fixtures")?;
                    let w = run_window(&s.addr, scn, fx, conns, bound, &tag, Some(s.pid())).await?;
                    if on {
                        set_device(&s.addr, None).await?;
                        let _ = std::fs::remove_file(&file);
                    }
                    eprintln!(
                        "audit {:<15} {label} round {} {:<8} {:<3} {:>9} req/s  p99 {:>6} ms  errors {}",
                        scn.name(),
                        round + 1,
                        s.kind.label(),
                        if on { "on" } else { "off" },
                        fmt_rps(w.rps()),
                        fmt_ms(percentile(&w.lat_us, 0.99)),
                        w.errors
                    );
                    cells[i][usize::from(on)].windows.push(w);
                }
            }
        }
        for (i, s) in servers.iter().enumerate() {
            let [off, on] = &cells[i];
            let (loff, lon) = (off.merged_lat(), on.merged_lat());
            // The audit contract's measure: what the device adds to the median latency.
            let added = percentile(&lon, 0.5)
                .zip(percentile(&loff, 0.5))
                .map(|(a, b)| i64::from(a) - i64::from(b));
            let added = added.map_or("–".to_owned(), |a| a.to_string());
            let us = |v: Option<u32>| v.map_or("–".to_owned(), |v| v.to_string());
            let _ = match load {
                Load::Closed(_) => writeln!(
                    out,
                    "| {} | {} | {} | {} | **{:.2}** | {} / {} | {} / {} | {} / {} | {added} |",
                    scn.describe(),
                    s.kind.label(),
                    fmt_rps(off.mean_rps()),
                    fmt_rps(on.mean_rps()),
                    on.mean_rps() / off.mean_rps().max(1e-9),
                    fmt_ms(percentile(&loff, 0.5)),
                    fmt_ms(percentile(&lon, 0.5)),
                    fmt_ms(percentile(&loff, 0.99)),
                    fmt_ms(percentile(&lon, 0.99)),
                    fmt_opt(off.cpu_ms_per_1k(tck), 1),
                    fmt_opt(on.cpu_ms_per_1k(tck), 1),
                ),
                Load::Paced(_) => writeln!(
                    out,
                    "| {} | {} | {} / {} | {} / {} | {} / {} | {} / {} | **{added}** |",
                    scn.describe(),
                    s.kind.label(),
                    fmt_rps(off.mean_rps()),
                    fmt_rps(on.mean_rps()),
                    us(percentile(&loff, 0.5)),
                    us(percentile(&lon, 0.5)),
                    us(percentile(&loff, 0.99)),
                    us(percentile(&lon, 0.99)),
                    fmt_opt(off.cpu_ms_per_1k(tck), 1),
                    fmt_opt(on.cpu_ms_per_1k(tck), 1),
                ),
            };
        }
    }
    Ok(())
}
