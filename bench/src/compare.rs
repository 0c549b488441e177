//! `compare` mode: the interleaved throughput phase, the memory phase and the durable phase,
//! each returning its section of the markdown report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::Conn;
use crate::load::{
    Bound, Fixtures, READ_PATH, ROOT, Scenario, clk_tck, percentile, read_rss_kb, run_window,
    setup_fixtures,
};
use crate::process::{Kind, Server, probe_production_mode};
use crate::report::{Cell, fmt_ms, fmt_opt, fmt_rps, machine_facts};
use crate::{Opts, R};

pub async fn compare(opts: Opts) -> R<()> {
    let dir = std::env::temp_dir().join(format!("coffer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let tck = clk_tck();
    let mut report = String::new();
    let _ = writeln!(report, "## Setup\n\n{}", machine_facts(&opts));
    let _ = writeln!(
        report,
        "- Method: fresh in-memory dev servers (`server -dev`, `-log-level=warn`), fixtures made through \
         the HTTP API; each scenario/connection count runs Coffer then OpenBao, {} rounds (A B A B ...), \
         {:.1} s warm-up + {:.1} s measured per window; only one server is loaded at a time.\n\
         - req/s: mean over rounds; p50/p99: over every request of all rounds; CPU: server utime+stime \
         per 1000 requests; RSS: VmRSS after the last window (it grows with the data the write and \
         login scenarios leave behind); Gen CPU: the load generator's own CPU, % of one core; ratio: Coffer/OpenBao req/s \
         (min-max of the per-round ratios).\n",
        opts.rounds,
        opts.warmup.as_secs_f64(),
        opts.measure.as_secs_f64()
    );
    eprintln!("{report}");
    if let Some(phase) = opts.only {
        report.push_str(&match phase {
            crate::Only::Audit => crate::audit::audit_phase(&opts, &dir).await?,
            crate::Only::Pg => crate::pg::postgresql_phase(&opts, &dir).await?,
        });
        println!("{report}");
        if let Some(out) = &opts.out {
            std::fs::write(out, &report).map_err(|e| format!("write {}: {e}", out.display()))?;
        }
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }

    // Throughput: both servers fresh, side by side; only one is loaded at a time.
    let coffer = Server::start(Kind::Coffer, &opts.coffer, opts.port, &dir).await?;
    let bao = Server::start(Kind::Bao, &opts.bao, opts.port + 10, &dir).await?;
    let servers = [&coffer, &bao];
    let mut fixtures = Vec::new();
    for s in servers {
        fixtures.push(setup_fixtures(&s.addr).await?);
    }
    let mut rows: BTreeMap<(Scenario, usize), [Cell; 2]> = BTreeMap::new();
    let mut window_no = 0u64;
    for &scn in &opts.scenarios {
        for &c in &opts.conns {
            let cells = rows.entry((scn, c)).or_default();
            for round in 0..opts.rounds {
                for (i, s) in servers.iter().enumerate() {
                    window_no += 1;
                    let tag = format!("w{window_no}");
                    let bound = Bound::Time {
                        warmup: opts.warmup,
                        measure: opts.measure,
                    };
                    let w = run_window(&s.addr, scn, &fixtures[i], c, bound, &tag, Some(s.pid()))
                        .await?;
                    eprintln!(
                        "{:<15} c={c:<3} round {} {:<8} {:>9} req/s  p50 {:>6} ms  p99 {:>6} ms  errors {}",
                        scn.name(),
                        round + 1,
                        s.kind.label(),
                        fmt_rps(w.rps()),
                        fmt_ms(percentile(&w.lat_us, 0.5)),
                        fmt_ms(percentile(&w.lat_us, 0.99)),
                        w.errors
                    );
                    cells[i].windows.push(w);
                }
            }
        }
    }
    let _ = writeln!(report, "## Throughput and latency\n");
    let _ = writeln!(
        report,
        "| Scenario | Conns | Coffer req/s | OpenBao req/s | Ratio C/O | p50 ms C / O | p99 ms C / O | CPU ms/1k req C / O | RSS MiB C / O | Errors C / O | Gen CPU % C / O |"
    );
    let _ = writeln!(
        report,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut error_notes = Vec::new();
    for ((scn, c), [a, b]) in &rows {
        let ratios: Vec<f64> = a
            .windows
            .iter()
            .zip(&b.windows)
            .map(|(x, y)| x.rps() / y.rps().max(1e-9))
            .collect();
        let rmin = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let rmax = ratios.iter().copied().fold(0.0, f64::max);
        let (la, lb) = (a.merged_lat(), b.merged_lat());
        let (ea, fa) = a.errors();
        let (eb, fb) = b.errors();
        for (k, f) in [(Kind::Coffer, fa), (Kind::Bao, fb)] {
            if let Some(f) = f {
                error_notes.push(format!("{} {} c={c}: {f}", k.label(), scn.name()));
            }
        }
        let _ = writeln!(
            report,
            "| {} | {c} | {} | {} | **{:.1}×** ({:.1}–{:.1}) | {} / {} | {} / {} | {} / {} | {} / {} | {ea} / {eb} | {} / {} |",
            scn.describe(),
            fmt_rps(a.mean_rps()),
            fmt_rps(b.mean_rps()),
            a.mean_rps() / b.mean_rps().max(1e-9),
            rmin,
            rmax,
            fmt_ms(percentile(&la, 0.5)),
            fmt_ms(percentile(&lb, 0.5)),
            fmt_ms(percentile(&la, 0.99)),
            fmt_ms(percentile(&lb, 0.99)),
            fmt_opt(a.cpu_ms_per_1k(tck), 1),
            fmt_opt(b.cpu_ms_per_1k(tck), 1),
            fmt_opt(a.rss_mib(), 1),
            fmt_opt(b.rss_mib(), 1),
            fmt_opt(a.gen_cpu_pct(tck), 0),
            fmt_opt(b.gen_cpu_pct(tck), 0),
        );
    }
    for n in &error_notes {
        let _ = writeln!(report, "\n- first error: {n}");
    }
    let _ = writeln!(
        report,
        "\nDev-mode startup to healthy (empty): Coffer {:.0} ms, OpenBao {:.0} ms.\n",
        coffer.started.as_secs_f64() * 1000.0,
        bao.started.as_secs_f64() * 1000.0
    );
    drop(coffer);
    drop(bao);

    if opts.audit {
        report.push_str(&crate::audit::audit_phase(&opts, &dir).await?);
    }
    if opts.memory {
        report.push_str(&memory_phase(&opts, &dir).await?);
    }

    let _ = writeln!(report, "## Durable (production mode) scenarios\n");
    match probe_production_mode(&opts.coffer) {
        Some(why) => {
            let _ = writeln!(report, "Skipped: {why}.");
        }
        None => report.push_str(&durable_phase(&opts, &dir).await?),
    }
    report.push_str(&crate::pg::postgresql_phase(&opts, &dir).await?);
    println!("{report}");
    if let Some(out) = &opts.out {
        std::fs::write(out, &report).map_err(|e| format!("write {}: {e}", out.display()))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// RSS idle, after N secrets and after N live tokens; each server fresh and alone.
pub async fn memory_phase(opts: &Opts, dir: &Path) -> R<String> {
    let n = opts.memory_count;
    let mut results = Vec::new();
    for (kind, bin, port) in [
        (Kind::Coffer, &opts.coffer, opts.port),
        (Kind::Bao, &opts.bao, opts.port + 10),
    ] {
        let s = Server::start(kind, bin, port, dir).await?;
        let fx = setup_fixtures(&s.addr).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = read_rss_kb(s.pid()).unwrap_or(0);
        let t0 = Instant::now();
        let w = run_window(
            &s.addr,
            Scenario::KvWrite,
            &fx,
            16,
            Bound::Count(n),
            "mem",
            Some(s.pid()),
        )
        .await?;
        let secrets_time = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_secrets = read_rss_kb(s.pid()).unwrap_or(0);
        let t0 = Instant::now();
        let w2 = run_window(
            &s.addr,
            Scenario::TokenCreate,
            &fx,
            16,
            Bound::Count(n),
            "tok",
            Some(s.pid()),
        )
        .await?;
        let tokens_time = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_tokens = read_rss_kb(s.pid()).unwrap_or(0);
        eprintln!(
            "memory {}: idle {idle} kB, +{n} secrets {after_secrets} kB ({:.1} s, {} errors), +{n} tokens {after_tokens} kB ({:.1} s, {} errors)",
            kind.label(),
            secrets_time.as_secs_f64(),
            w.errors,
            tokens_time.as_secs_f64(),
            w2.errors
        );
        results.push((
            idle,
            after_secrets,
            after_tokens,
            secrets_time,
            tokens_time,
            w.errors + w2.errors,
        ));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Memory (fresh server each, one at a time, 16 connections to fill)\n"
    );
    let _ = writeln!(out, "| Metric | Coffer | OpenBao | Ratio C/O |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let (c, b) = match results.as_slice() {
        [c, b] => (c, b),
        _ => return Err("memory phase: missing results".into()),
    };
    let mib = |k: u64| k as f64 / 1024.0;
    let rows = [
        ("RSS idle (fixtures created), MiB", mib(c.0), mib(b.0)),
        (
            &*format!("RSS after {n} kv-v2 secrets, MiB"),
            mib(c.1),
            mib(b.1),
        ),
        (
            &*format!("RSS after {n} more live tokens, MiB"),
            mib(c.2),
            mib(b.2),
        ),
        (
            &*format!("RSS growth per {n} live tokens, MiB"),
            mib(c.2.saturating_sub(c.1)),
            mib(b.2.saturating_sub(b.1)),
        ),
        (
            "RSS growth per live token, bytes",
            c.2.saturating_sub(c.1) as f64 * 1024.0 / n as f64,
            b.2.saturating_sub(b.1) as f64 * 1024.0 / n as f64,
        ),
        (
            &*format!("Time to write {n} secrets (16 conns), s"),
            c.3.as_secs_f64(),
            b.3.as_secs_f64(),
        ),
        (
            &*format!("Time to create {n} tokens (16 conns), s"),
            c.4.as_secs_f64(),
            b.4.as_secs_f64(),
        ),
    ];
    for (name, x, y) in rows {
        let _ = writeln!(out, "| {name} | {x:.1} | {y:.1} | {:.2} |", x / y.max(1e-9));
    }
    let _ = writeln!(
        out,
        "\nErrors while filling: Coffer {}, OpenBao {}.\n",
        c.5, b.5
    );
    Ok(out)
}

/// Durable scenarios: kv writes and AppRole logins against file storage (Coffer) and raft
/// (OpenBao), interleaved; then Coffer's restart-to-unsealed time with `count` tokens and `count`
/// secrets stored.
pub async fn durable_phase(opts: &Opts, dir: &Path) -> R<String> {
    let mut out = String::new();
    let tck = clk_tck();
    let (coffer, coffer_key) =
        Server::start_durable(Kind::Coffer, &opts.coffer, opts.port + 20, dir).await?;
    let (bao, _) = Server::start_durable(Kind::Bao, &opts.bao, opts.port + 30, dir).await?;
    let servers = [&coffer, &bao];
    let mut fixtures = Vec::new();
    for s in servers {
        fixtures.push(setup_fixtures(&s.addr).await?);
    }
    let _ = writeln!(
        out,
        "| Scenario (durable) | Conns | Coffer req/s | OpenBao req/s | Ratio C/O | p99 ms C / O | CPU ms/1k req C / O |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    let c = 16;
    for scn in [Scenario::KvWrite, Scenario::Login] {
        let mut cells: [Cell; 2] = Default::default();
        for round in 0..opts.rounds {
            for (i, s) in servers.iter().enumerate() {
                let bound = Bound::Time {
                    warmup: opts.warmup,
                    measure: opts.measure,
                };
                let tag = format!("d{round}{i}");
                let w =
                    run_window(&s.addr, scn, &fixtures[i], c, bound, &tag, Some(s.pid())).await?;
                eprintln!(
                    "durable {:<15} round {} {:<8} {:>9} req/s",
                    scn.name(),
                    round + 1,
                    s.kind.label(),
                    fmt_rps(w.rps())
                );
                cells[i].windows.push(w);
            }
        }
        let [a, b] = &cells;
        let _ = writeln!(
            out,
            "| {} | {c} | {} | {} | **{:.1}×** | {} / {} | {} / {} |",
            scn.describe(),
            fmt_rps(a.mean_rps()),
            fmt_rps(b.mean_rps()),
            a.mean_rps() / b.mean_rps().max(1e-9),
            fmt_ms(percentile(&a.merged_lat(), 0.99)),
            fmt_ms(percentile(&b.merged_lat(), 0.99)),
            fmt_opt(a.cpu_ms_per_1k(tck), 1),
            fmt_opt(b.cpu_ms_per_1k(tck), 1),
        );
    }
    // RAM per live token with the record in the file: OpenBao (raft) fills fewer tokens, as it
    // creates them ~7x slower; Coffer's figure comes from the fill below.
    let bao_tokens = (opts.memory_count / 5).max(1);
    let (bao_before, bao_after) = token_rss(&bao, &fixtures[1], bao_tokens).await?;
    let bao_per_token = per_item_bytes(bao_before, bao_after, bao_tokens);
    drop(bao);

    // Restart and unseal with `count` live tokens and `count` secrets stored (Coffer only: the
    // target is absolute). Filled through the API with 16 connections.
    let count = opts.memory_count;
    let fill = Bound::Count(count);
    run_window(
        &coffer.addr,
        Scenario::KvWrite,
        &fixtures[0],
        16,
        fill,
        "dfill-kv",
        None,
    )
    .await?;
    // The token records go to the file; what the tokens add to RSS is RAM per live token beyond
    // its record, plus any growth of the storage engine's page cache (bounded, and usually full
    // after the secrets), so the figure is an upper bound.
    let (before_tokens, after_tokens) = token_rss(&coffer, &fixtures[0], count).await?;
    let coffer_per_token = per_item_bytes(before_tokens, after_tokens, count);
    let mib = |k: Option<u64>| fmt_opt(k.map(|k| k as f64 / 1024.0), 1);
    let _ = writeln!(
        out,
        "\nRAM per live token with file storage (the record is on disk; RSS growth while creating \
         tokens through the API, 16 connections): Coffer **{} B** per token ({count} tokens on top of \
         {count} secrets, RSS {} → {} MiB; includes any growth of the storage engine's page cache, \
         capped at 64 MiB, so an upper bound); OpenBao raft **{} B** per token ({bao_tokens} \
         tokens, RSS {} → {} MiB).",
        fmt_opt(coffer_per_token, 0),
        mib(before_tokens),
        mib(after_tokens),
        fmt_opt(bao_per_token, 0),
        mib(bao_before),
        mib(bao_after),
    );
    let addr = coffer.addr.clone();
    let config = dir.join(format!("Coffer-{}.hcl", opts.port + 20));
    let before = read_rss_kb(coffer.pid());
    // A normal restart (SIGTERM, clean shutdown), then a crash (SIGKILL: the storage engine
    // must repair the file on open, walking it all).
    coffer.stop_gracefully()?;
    let mut lines = Vec::new();
    for (how, kill_after) in [
        ("stopped with SIGTERM", true),
        ("killed with SIGKILL", false),
    ] {
        let restarted =
            Server::spawn_config(Kind::Coffer, &opts.coffer, &addr, &config, dir).await?;
        let unseal = Server::unseal(&addr, &coffer_key).await?;
        let mut c = Conn::connect(&addr).await?;
        let (st, _) = c.call("GET", READ_PATH, Some(ROOT), None).await?;
        let after = read_rss_kb(restarted.pid());
        let total = restarted.started + unseal;
        lines.push(format!(
            "| {how} | {} ms | {} ms | **{} ms** | {st} | {} |",
            restarted.started.as_millis(),
            unseal.as_millis(),
            total.as_millis(),
            fmt_opt(after.map(|k| k as f64 / 1024.0), 1),
        ));
        if kill_after {
            drop(restarted); // SIGKILL: the next start is a crash recovery.
        } else {
            restarted.stop_gracefully()?;
        }
    }
    let _ = writeln!(
        out,
        "\nCoffer restarted with {count} live tokens and {count} kv-v2 secrets stored (file \
         storage; RSS before the first stop {} MiB):\n\n\
         | Previous stop | Process start → serving (sealed) | Unseal → active | Total | Read after unseal | RSS after, MiB |\n\
         |---|---:|---:|---:|---:|---:|\n{}",
        fmt_opt(before.map(|k| k as f64 / 1024.0), 1),
        lines.join("\n"),
    );
    Ok(out)
}

/// Creates `n` tokens through the API (16 connections) and returns the server's RSS in kB before
/// and after (each read after the server has settled for half a second).
pub async fn token_rss(s: &Server, fx: &Fixtures, n: u64) -> R<(Option<u64>, Option<u64>)> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = read_rss_kb(s.pid());
    let w = run_window(
        &s.addr,
        Scenario::TokenCreate,
        fx,
        16,
        Bound::Count(n),
        "dtok",
        None,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = read_rss_kb(s.pid());
    eprintln!(
        "durable {} +{n} tokens: RSS {before:?} -> {after:?} kB ({} errors)",
        s.kind.label(),
        w.errors
    );
    Ok((before, after))
}

/// RSS growth in bytes per item between two readings in kB (negative growth reads as 0).
pub fn per_item_bytes(before: Option<u64>, after: Option<u64>, items: u64) -> Option<f64> {
    let (b, a) = (before?, after?);
    Some(a.saturating_sub(b) as f64 * 1024.0 / items.max(1) as f64)
}
