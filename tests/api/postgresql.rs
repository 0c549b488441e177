//! The PostgreSQL storage engine against a real PostgreSQL (never a mock): the conformance suite,
//! Vault's table layout, and the real binary surviving SIGKILL with every acknowledged write.
//!
//! `bash scripts/test.sh` starts a throwaway cluster and exports `TEST_POSTGRES_URL`; without it
//! these tests fail (they never pass silently). Each test uses a table of its own.

use crate::production::crash::{
    assert_acknowledged_writes_readable, call, free_port, init_unseal_mount, terminate, unseal,
    write_until_killed,
};
use coffer::physical::PhysicalBackend;
use coffer::physical::postgresql::{PostgresqlBackend, PostgresqlOptions};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

/// The test database, or a failure that says how to get one.
fn database_url() -> String {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "TEST_POSTGRES_URL is not set: the PostgreSQL tests need a real database; \
             run them with `bash scripts/test.sh`, which starts a throwaway PostgreSQL cluster"
        ),
    }
}

/// A plain connection of the test's own to the test database.
async fn sql_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// A table name no other test uses.
fn fresh_table() -> String {
    format!("coffer_test_{}", uuid::Uuid::new_v4().simple())
}

async fn open(table: &str) -> PostgresqlBackend {
    PostgresqlBackend::open(&PostgresqlOptions {
        connection_url: database_url(),
        table: table.to_owned(),
        max_parallel: 8,
        create_table: true,
        ha_table: None,
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn postgresql_passes_the_conformance_suite() {
    let backend = open(&fresh_table()).await;
    coffer::physical::testing::exercise_backend(&backend)
        .await
        .unwrap();
}

#[tokio::test]
async fn postgresql_uses_vaults_table_layout() {
    let table = fresh_table();
    let backend = open(&table).await;
    backend.put("a", b"1".to_vec()).await.unwrap();
    backend.put("a/b", b"2".to_vec()).await.unwrap();
    backend.put("a/b/c", b"3".to_vec()).await.unwrap();
    backend.put("a/b/c", b"4".to_vec()).await.unwrap();

    let client = sql_client().await;
    let rows = client
        .query(
            &format!("SELECT parent_path, path, key, value FROM \"{table}\" ORDER BY path, key"),
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, String, Vec<u8>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let row = |p: &str, path: &str, k: &str, v: &[u8]| {
        (p.to_owned(), path.to_owned(), k.to_owned(), v.to_vec())
    };
    assert_eq!(
        got,
        vec![
            row("", "/", "a", b"1"),
            row("/", "/a/", "b", b"2"),
            row("/a/", "/a/b/", "c", b"4"),
        ]
    );
    // A second open over the existing table (no re-creation) sees the same data.
    let again = open(&table).await;
    assert_eq!(again.get("a/b/c").await.unwrap(), Some(b"4".to_vec()));
    assert_eq!(again.list("a/").await.unwrap(), vec!["b", "b/"]);
}

/// Starts the server; `env_url` goes into `VAULT_PG_CONNECTION_URL`.
fn start(config: &std::path::Path, env_url: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", &format!("-config={}", config.display())])
        .env("VAULT_PG_CONNECTION_URL", env_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut started = false;
    for line in BufReader::new(out).lines() {
        if line.unwrap().contains("Coffer server started") {
            started = true;
            break;
        }
    }
    assert!(started, "the server did not start");
    child
}

fn config_text(port: u16, extra: &str) -> String {
    format!(
        "storage \"postgresql\" {{\n  connection_url = \"postgres://nobody@127.0.0.1:1/unused?sslmode=disable\"\n{extra}}}\n\
         listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n"
    )
}

#[tokio::test]
async fn postgresql_server_sigkill_loses_no_acknowledged_write() {
    let url = database_url();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("server.hcl");
    // The file's connection_url points nowhere: VAULT_PG_CONNECTION_URL must win.
    let table = fresh_table();
    std::fs::write(
        &config,
        config_text(
            port,
            &format!("  table = \"{table}\"\n  max_parallel = \"16\"\n"),
        ),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}/v1");
    let c = reqwest::Client::new();
    let mut child = start(&config, &url);
    let (key, root) = init_unseal_mount(&c, &base).await;

    let acked = write_until_killed(&c, &base, &root, &mut child, "k_").await;
    assert!(
        acked.len() >= 40,
        "too few writes acknowledged before the kill: {}",
        acked.len()
    );

    let child = start(&config, &url);
    unseal(&c, &base, &key).await;
    assert_acknowledged_writes_readable(&c, &base, &root, &acked).await;
    let (st, body) = call(
        &c,
        reqwest::Method::GET,
        format!("{base}/secret/metadata/w0/?list=true"),
        Some(&root),
        Value::Null,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let listed = body["data"]["keys"].as_array().map_or(0, Vec::len);
    let from_w0 = acked.iter().filter(|(k, _)| k.starts_with("w0/")).count();
    assert!(
        listed >= from_w0,
        "listed {listed} < acknowledged {from_w0}"
    );
    terminate(child);
}

/// Runs the server until it exits (it should refuse to start); its stderr and stdout.
fn refused(config_body: &str, env_url: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.hcl");
    std::fs::write(&config, config_body).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", &format!("-config={}", config.display())])
        .env("VAULT_PG_CONNECTION_URL", env_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the server started: {out}");
    out
}

#[tokio::test]
async fn postgresql_start_up_errors_never_show_the_password() {
    let port = free_port();
    let out = refused(
        &config_text(port, ""),
        "postgres://coffer:hunter2@127.0.0.1:1/db?sslmode=verify-full&sslcert=/c.pem",
    );
    assert!(out.contains("sslcert is not supported"), "{out}");
    assert!(!out.contains("hunter2"), "the password leaked: {out}");
    let out = refused(
        &config_text(port, ""),
        "postgres://coffer:hunter2@127.0.0.1:1/db?sslmode=verify-full",
    );
    assert!(!out.contains("hunter2"), "the password leaked: {out}");
}

/// Group commit: concurrent writes share statements, each caller still gets its own answer; a
/// write PostgreSQL refuses (a NUL byte in the key) fails alone, never its neighbours.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_group_commit_answers_each_writer() {
    let backend = std::sync::Arc::new(open(&fresh_table()).await);
    for round in 0..5 {
        let mut tasks = Vec::new();
        for i in 0..64 {
            let b = backend.clone();
            tasks.push(tokio::spawn(async move {
                let key = if i == 7 {
                    format!("g{round}/bad\0{i}")
                } else {
                    format!("g{round}/k{i}")
                };
                let r = if i % 3 == 0 {
                    b.write_batch(vec![
                        coffer::physical::WriteOp::Put(key.clone(), vec![1]),
                        coffer::physical::WriteOp::Put(format!("{key}-pair"), vec![2]),
                    ])
                    .await
                } else {
                    b.put(&key, vec![i as u8]).await
                };
                (i, key, r.is_ok())
            }));
        }
        for t in tasks {
            let (i, key, ok) = t.await.unwrap();
            assert_eq!(ok, i != 7, "{key}");
            if i != 7 {
                let want = if i % 3 == 0 { vec![1] } else { vec![i as u8] };
                assert_eq!(backend.get(&key).await.unwrap(), Some(want), "{key}");
                if i % 3 == 0 {
                    assert_eq!(
                        backend.get(&format!("{key}-pair")).await.unwrap(),
                        Some(vec![2])
                    );
                }
            }
        }
        assert_eq!(
            backend.list(&format!("g{round}/")).await.unwrap().len(),
            63 + 22
        );
    }
}

/// A statement waiting on a row lock that another session holds fails after the data pool's
/// statement timeout (10 s) instead of waiting as long as that session does
/// (hashicorp/vault#10619: a node whose queries hang answers nothing, not even status); once
/// the lock is gone, writes go through again.
#[tokio::test]
async fn postgresql_statements_wait_at_most_the_statement_timeout() {
    let table = fresh_table();
    let backend = open(&table).await;
    backend.put("locked", b"1".to_vec()).await.unwrap();
    let client = sql_client().await;
    client
        .batch_execute(&format!(
            "BEGIN; SELECT * FROM \"{table}\" WHERE key = 'locked' FOR UPDATE"
        ))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        backend.put("locked", b"2".to_vec()),
    )
    .await
    .expect("the write waited on the row lock for a minute");
    let took = started.elapsed();
    assert!(r.is_err(), "the write went through a held row lock");
    assert!(
        took >= std::time::Duration::from_secs(9),
        "{took:?}: failed before the statement timeout"
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    backend.put("locked", b"3".to_vec()).await.unwrap();
    assert_eq!(backend.get("locked").await.unwrap(), Some(b"3".to_vec()));
}

/// HA never runs without the unique index its write fencing rests on. For an existing lock
/// table with a 63-byte name (Vault's columns, no index), PostgreSQL cuts `<name>_identity_idx`
/// to the table's own name: the name-based check found "it" and passed, so a takeover was no
/// longer a key update and fencing was silently off. The catalog is asked now: the start fails.
#[tokio::test]
async fn postgresql_ha_refuses_to_start_without_its_fencing_index() {
    let mut ha = format!("ha_{}", uuid::Uuid::new_v4().simple());
    while ha.len() < 63 {
        ha.push('x');
    }
    let client = sql_client().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE \"{ha}\" (ha_key TEXT NOT NULL PRIMARY KEY, ha_identity TEXT NOT NULL, \
             ha_value TEXT, valid_until TIMESTAMP WITH TIME ZONE NOT NULL)"
        ))
        .await
        .unwrap();
    for create_table in [true, false] {
        let r = PostgresqlBackend::open(&PostgresqlOptions {
            connection_url: database_url(),
            table: fresh_table(),
            max_parallel: 2,
            create_table,
            ha_table: Some(ha.clone()),
        })
        .await;
        let Err(err) = r else {
            panic!("HA started without the unique index on ha_identity");
        };
        assert!(err.contains("unique index"), "{err}");
    }
    // A name with room for the index works.
    let ok = PostgresqlBackend::open(&PostgresqlOptions {
        connection_url: database_url(),
        table: fresh_table(),
        max_parallel: 2,
        create_table: true,
        ha_table: Some(ha[..40].to_string()),
    })
    .await;
    assert!(ok.is_ok(), "{:?}", ok.err());
}
