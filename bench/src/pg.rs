//! The PostgreSQL phase: durable kv writes and AppRole logins, Coffer vs OpenBao, both with
//! `storage "postgresql"` and HA on, on the same database (separate tables), side by side in one
//! run (rounds interleaved, only one server loaded at a time). The database comes from
//! `BENCH_POSTGRES_URL` (else `TEST_POSTGRES_URL`); without one the phase is reported as skipped.

use std::fmt::Write as _;
use std::path::Path;

use crate::load::{Bound, Scenario, clk_tck, percentile, run_window, setup_fixtures};
use crate::process::{Kind, Server};
use crate::report::{Cell, fmt_ms, fmt_opt, fmt_rps};
use crate::{Opts, R};

/// The connection counts of this phase (the target is at 16).
const CONNS: [usize; 2] = [1, 16];

fn database_url() -> Option<String> {
    ["BENCH_POSTGRES_URL", "TEST_POSTGRES_URL"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// The storage block for `kind`: HA on, tables of this run only.
fn storage(kind: Kind, url: &str, port: u16) -> String {
    let tag = format!(
        "{}_{}_{port}",
        kind.label().to_lowercase(),
        std::process::id()
    );
    let common = format!(
        "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n  table = \"bench_kv_{tag}\"\n  \
         ha_enabled = \"true\"\n  ha_table = \"bench_locks_{tag}\"\n  max_parallel = \"64\"\n}}\n\
         api_addr = \"http://127.0.0.1:{port}\"\n"
    );
    match kind {
        Kind::Coffer => common,
        Kind::Bao => format!(
            "{common}cluster_addr = \"http://127.0.0.1:{}\"\ndisable_mlock = true\n",
            port + 1
        ),
    }
}

pub async fn postgresql_phase(opts: &Opts, dir: &Path) -> R<String> {
    let mut out = String::new();
    let _ = writeln!(out, "## PostgreSQL storage, HA on\n");
    let Some(url) = database_url() else {
        let _ = writeln!(
            out,
            "Skipped: set BENCH_POSTGRES_URL (or TEST_POSTGRES_URL) to a PostgreSQL database.\n"
        );
        return Ok(out);
    };
    let tck = clk_tck();
    let (cport, bport) = (opts.port + 40, opts.port + 50);
    let (coffer, coffer_key) = Server::start_with_storage(
        Kind::Coffer,
        &opts.coffer,
        cport,
        dir,
        &storage(Kind::Coffer, &url, cport),
    )
    .await?;
    let (bao, _) = Server::start_with_storage(
        Kind::Bao,
        &opts.bao,
        bport,
        dir,
        &storage(Kind::Bao, &url, bport),
    )
    .await?;
    let servers = [&coffer, &bao];
    let mut fixtures = Vec::new();
    for s in servers {
        fixtures.push(setup_fixtures(&s.addr).await?);
    }
    let _ = writeln!(
        out,
        "Same database for both (tables of their own), `ha_enabled = \"true\"`, one node each; \
         every acknowledged write committed by PostgreSQL. {} rounds, Coffer then OpenBao.\n",
        opts.rounds
    );
    let _ = writeln!(
        out,
        "| Scenario (PostgreSQL, HA) | Conns | Coffer req/s | OpenBao req/s | Ratio C/O | p50 ms C / O | p99 ms C / O | CPU ms/1k req C / O | Errors C / O |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for scn in [Scenario::KvWrite, Scenario::Login] {
        for c in CONNS {
            let mut cells: [Cell; 2] = Default::default();
            for round in 0..opts.rounds {
                for (i, s) in servers.iter().enumerate() {
                    let bound = Bound::Time {
                        warmup: opts.warmup,
                        measure: opts.measure,
                    };
                    let tag = format!("pg{round}{i}{c}");
                    let w = run_window(&s.addr, scn, &fixtures[i], c, bound, &tag, Some(s.pid()))
                        .await?;
                    eprintln!(
                        "postgresql {:<15} c={c:<3} round {} {:<8} {:>9} req/s",
                        scn.name(),
                        round + 1,
                        s.kind.label(),
                        fmt_rps(w.rps())
                    );
                    cells[i].windows.push(w);
                }
            }
            let [a, b] = &cells;
            let (ea, _) = a.errors();
            let (eb, _) = b.errors();
            let _ = writeln!(
                out,
                "| {} | {c} | {} | {} | **{:.1}×** | {} / {} | {} / {} | {} / {} | {ea} / {eb} |",
                scn.describe(),
                fmt_rps(a.mean_rps()),
                fmt_rps(b.mean_rps()),
                a.mean_rps() / b.mean_rps().max(1e-9),
                fmt_ms(percentile(&a.merged_lat(), 0.5)),
                fmt_ms(percentile(&b.merged_lat(), 0.5)),
                fmt_ms(percentile(&a.merged_lat(), 0.99)),
                fmt_ms(percentile(&b.merged_lat(), 0.99)),
                fmt_opt(a.cpu_ms_per_1k(tck), 1),
                fmt_opt(b.cpu_ms_per_1k(tck), 1),
            );
        }
    }
    let _ = writeln!(out);
    drop(bao);

    // Step-up with many live tokens (Coffer only; the target is absolute): fill, stop cleanly
    // (the lock is released), start the same node again, unseal; unseal → active is the lock
    // acquisition plus the step-up, which reads mounts, policies and the keyring but no token.
    let count = opts.memory_count;
    let w = run_window(
        &coffer.addr,
        Scenario::TokenCreate,
        &fixtures[0],
        16,
        Bound::Count(count),
        "pgtok",
        None,
    )
    .await?;
    let addr = coffer.addr.clone();
    let config = dir.join(format!("Coffer-{cport}.hcl"));
    coffer.stop_gracefully()?;
    let restarted = Server::spawn_config(Kind::Coffer, &opts.coffer, &addr, &config, dir).await?;
    let unseal = Server::unseal(&addr, &coffer_key).await?;
    let mut c = crate::client::Conn::connect(&addr).await?;
    let (st, _) = c
        .call(
            "GET",
            "/v1/auth/token/lookup-self",
            Some(crate::load::ROOT),
            None,
        )
        .await?;
    let started = restarted.started;
    restarted.stop_gracefully()?;
    let _ = writeln!(
        out,
        "Coffer with {count} live tokens on PostgreSQL ({} creation errors), stopped cleanly and \
         started again: process start → serving {} ms, unseal → active (lock + step-up) **{} ms**; \
         a token lookup afterwards answered {st}.\n",
        w.errors,
        started.as_millis(),
        unseal.as_millis(),
    );
    Ok(out)
}
