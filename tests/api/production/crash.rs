//! Crash safety with the real binary: SIGKILL in the middle of a stream of acknowledged writes;
//! after restart every acknowledged write is there and the store opens cleanly.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(config: &std::path::Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
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

async fn call(
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

#[tokio::test]
async fn sigkill_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("server.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"file\" {{ path = \"{}\" }}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}/v1");
    let c = reqwest::Client::new();
    let mut child = start(&config);
    let (st, init) = call(
        &c,
        reqwest::Method::PUT,
        format!("{base}/sys/init"),
        None,
        json!({"secret_shares": 1, "secret_threshold": 1}),
    )
    .await;
    assert_eq!(st, 200, "{init}");
    let key = init["keys"][0].as_str().unwrap().to_string();
    let root = init["root_token"].as_str().unwrap().to_string();
    call(
        &c,
        reqwest::Method::PUT,
        format!("{base}/sys/unseal"),
        None,
        json!({"key": key}),
    )
    .await;
    let (st, _) = call(
        &c,
        reqwest::Method::POST,
        format!("{base}/sys/mounts/secret"),
        Some(&root),
        json!({"type": "kv-v2"}),
    )
    .await;
    assert_eq!(st, 204);

    // Four concurrent writers; each records what the server acknowledged. The kill comes once
    // enough writes were acknowledged (however loaded the machine is), while writes are in flight.
    let acked_count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (c, base, root) = (c.clone(), base.clone(), root.clone());
        let acked_count = acked_count.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let key = format!("w{w}/k{i}");
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
    assert!(
        acked.len() > 20,
        "too few writes acknowledged before the kill: {}",
        acked.len()
    );

    let mut child = start(&config);
    let (st, body) = call(
        &c,
        reqwest::Method::PUT,
        format!("{base}/sys/unseal"),
        None,
        json!({"key": key}),
    )
    .await;
    assert_eq!((st, body["sealed"].clone()), (200, json!(false)), "{body}");
    for (key, i) in &acked {
        let (st, body) = call(
            &c,
            reqwest::Method::GET,
            format!("{base}/secret/data/{key}"),
            Some(&root),
            Value::Null,
        )
        .await;
        assert_eq!(st, 200, "acknowledged write {key} lost");
        assert_eq!(body["data"]["data"]["i"], json!(i));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}
