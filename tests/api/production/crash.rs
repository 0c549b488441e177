//! Crash safety with the real binary: SIGKILL in the middle of a stream of acknowledged writes;
//! after restart every acknowledged write is there and the store opens cleanly.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(config: &std::path::Path) -> Child {
    start_under(&[], config)
}

/// As [`start`], the server run by `launcher` (a command and its arguments) when not empty.
fn start_under(launcher: &[&str], config: &std::path::Path) -> Child {
    let mut cmd = match launcher.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(env!("CARGO_BIN_EXE_coffer"));
            cmd
        }
        None => Command::new(env!("CARGO_BIN_EXE_coffer")),
    };
    let mut child = cmd
        .args(["server", &format!("-config={}", config.display())])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the banner: the listener is bound before it is printed.
    let out = child.stdout.take().unwrap();
    for line in BufReader::new(out).lines() {
        if line.unwrap().contains("Coffer server started") {
            break;
        }
    }
    child
}

/// One request; `(0, Null)` when the server is gone.
pub(crate) async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut rb = c.request(method, url).body(body.to_string());
    if let Some(t) = token {
        rb = rb.header("X-Vault-Token", t);
    }
    match rb.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Stops the server with SIGTERM and waits for it.
pub(crate) fn terminate(mut child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

/// Unseals the server at `base` with its one key share and asserts that it is unsealed.
pub(crate) async fn unseal(c: &reqwest::Client, base: &str, key: &str) {
    let (st, body) = call(
        c,
        reqwest::Method::PUT,
        format!("{base}/sys/unseal"),
        None,
        json!({"key": key}),
    )
    .await;
    assert_eq!((st, body["sealed"].clone()), (200, json!(false)), "{body}");
}

/// The status of one more kv write (`secret/data/late`).
async fn write_late(c: &reqwest::Client, base: &str, root: &str) -> u16 {
    call(
        c,
        reqwest::Method::PUT,
        format!("{base}/secret/data/late"),
        Some(root),
        json!({"data": {"i": 0}}),
    )
    .await
    .0
}

/// A server config over `dir/data` on a free port; returns the config file and the API base.
fn file_store_config(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let port = free_port();
    let config = dir.join("server.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"file\" {{ path = \"{}\" }}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    (config, format!("http://127.0.0.1:{port}/v1"))
}

/// Initialises (one share) and unseals the server at `base` and mounts kv-v2 at `secret/`;
/// returns the unseal key and the root token.
pub(crate) async fn init_unseal_mount(c: &reqwest::Client, base: &str) -> (String, String) {
    let (st, init) = call(
        c,
        reqwest::Method::PUT,
        format!("{base}/sys/init"),
        None,
        json!({"secret_shares": 1, "secret_threshold": 1}),
    )
    .await;
    assert_eq!(st, 200, "{init}");
    let key = init["keys"][0].as_str().unwrap().to_string();
    let root = init["root_token"].as_str().unwrap().to_string();
    unseal(c, base, &key).await;
    let (st, _) = call(
        c,
        reqwest::Method::POST,
        format!("{base}/sys/mounts/secret"),
        Some(&root),
        json!({"type": "kv-v2"}),
    )
    .await;
    assert_eq!(st, 204);
    (key, root)
}

/// The store's file reaches a file size limit (`prlimit --fsize`, as `ulimit -f` or systemd's
/// `LimitFSIZE` set it) under four concurrent writers. The server is not ended by SIGXFSZ:
/// the write that cannot be stored, and every later one, gets 500 `internal error`, while
/// reads and `sys/health` still answer. After a restart without the limit every acknowledged
/// write is there and new writes succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_size_limit_on_the_store_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = file_store_config(dir.path());
    let c = reqwest::Client::new();
    let child = start_under(&["prlimit", "--fsize=1000000"], &config);
    let (key, root) = init_unseal_mount(&c, &base).await;

    let mut writers = Vec::new();
    for w in 0..4 {
        let (c, base, root) = (c.clone(), base.clone(), root.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0_i64..10_000 {
                let key = format!("w{w}/k{i}");
                let (st, body) = call(
                    &c,
                    reqwest::Method::PUT,
                    format!("{base}/secret/data/{key}"),
                    Some(&root),
                    json!({"data": {"i": i, "pad": "p".repeat(4000)}}),
                )
                .await;
                if st != 200 {
                    assert_eq!((st, body), (500, json!({"errors": ["internal error"]})));
                    return acked;
                }
                acked.push((key, i));
            }
            panic!("the file size limit was never reached");
        }));
    }
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(acked.len() > 20, "{} writes acknowledged", acked.len());
    // Still serving: reads, health, and writes refused the same way.
    assert_acknowledged_writes_readable(&c, &base, &root, &acked[..5]).await;
    let (st, _) = call(
        &c,
        reqwest::Method::GET,
        format!("{base}/sys/health"),
        None,
        Value::Null,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(write_late(&c, &base, &root).await, 500);
    terminate(child);

    let child = start(&config);
    unseal(&c, &base, &key).await;
    assert_acknowledged_writes_readable(&c, &base, &root, &acked).await;
    assert_eq!(write_late(&c, &base, &root).await, 200);
    terminate(child);
}

#[tokio::test]
async fn sigkill_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = file_store_config(dir.path());
    let c = reqwest::Client::new();
    let mut child = start(&config);
    let (key, root) = init_unseal_mount(&c, &base).await;

    let acked = write_until_killed(&c, &base, &root, &mut child, "k").await;
    assert!(
        acked.len() > 20,
        "too few writes acknowledged before the kill: {}",
        acked.len()
    );

    let child = start(&config);
    unseal(&c, &base, &key).await;
    assert_acknowledged_writes_readable(&c, &base, &root, &acked).await;
    terminate(child);
}

/// Four concurrent kv-v2 writers (keys `w<n>/<infix><i>`) record what the server acknowledged;
/// the server is SIGKILLed while writes are in flight, once 40 were acknowledged (however loaded
/// the machine is; at most 60 s). Returns every acknowledged `(key, i)`.
pub(crate) async fn write_until_killed(
    c: &reqwest::Client,
    base: &str,
    root: &str,
    child: &mut Child,
    infix: &str,
) -> Vec<(String, i64)> {
    let acked_count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (c, base, root) = (c.clone(), base.to_owned(), root.to_owned());
        let (acked_count, infix) = (acked_count.clone(), infix.to_owned());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0_i64.. {
                let key = format!("w{w}/{infix}{i}");
                let (st, _) = call(
                    &c,
                    reqwest::Method::PUT,
                    format!("{base}/secret/data/{key}"),
                    Some(&root),
                    json!({"data": {"i": i}}),
                )
                .await;
                if st != 200 {
                    break;
                }
                acked.push((key, i));
                acked_count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            acked
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_count.load(std::sync::atomic::Ordering::SeqCst) < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    acked
}

/// Every acknowledged write reads back with its value.
pub(crate) async fn assert_acknowledged_writes_readable(
    c: &reqwest::Client,
    base: &str,
    root: &str,
    acked: &[(String, i64)],
) {
    for (key, i) in acked {
        let (st, body) = call(
            c,
            reqwest::Method::GET,
            format!("{base}/secret/data/{key}"),
            Some(root),
            Value::Null,
        )
        .await;
        assert_eq!(st, 200, "acknowledged write {key} lost");
        assert_eq!(body["data"]["data"]["i"], json!(i));
    }
}
