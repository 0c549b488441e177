//! What `vault debug` collects besides metrics and logs. `sys/in-flight-req`: the requests being
//! served now, as Vault lists them (`requests.json`); a request held open by its client (half
//! its body sent) is listed until the client gives up, and a token in an old-style path never
//! shows. `sys/host-info`: this host in Vault's fields (`host_info.json`).

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::common::TestServer;

/// Polls the listing until `want` holds for it (at most 200 tries, 10 ms apart: a guard
/// against a hang, not a timing check). Returns the listing.
async fn listing_until(
    s: &TestServer,
    want: impl Fn(&serde_json::Map<String, Value>) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let r = s.get("sys/in-flight-req", &s.root).await;
        r.assert_status(200);
        assert_eq!(
            r.headers["content-type"].to_str().unwrap(),
            "application/json"
        );
        if want(r.body.as_object().unwrap()) {
            return r.body;
        }
        last = r.body;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("listing never matched: {last}");
}

fn with_path<'a>(listing: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    listing.values().find(|e| e["request_path"] == path)
}

/// Sends a request head and half its body, then holds the connection open.
async fn half_sent(s: &TestServer, method: &str, path: &str) -> tokio::net::TcpStream {
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {}\r\nContent-Length: 100\r\n\r\n{{\"data\":",
        s.root
    );
    c.write_all(head.as_bytes()).await.unwrap();
    c.flush().await.unwrap();
    c
}

#[tokio::test]
async fn in_flight_requests_are_listed_while_they_last() {
    let s = TestServer::start().await;
    // The listing request sees itself.
    let listing = listing_until(&s, |l| with_path(l, "/v1/sys/in-flight-req").is_some()).await;
    let own = with_path(listing.as_object().unwrap(), "/v1/sys/in-flight-req").unwrap();
    assert_eq!(own["request_method"], "GET");
    assert!(
        own["client_remote_address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{own}"
    );
    assert!(own["start_time"].as_str().unwrap().ends_with('Z'), "{own}");
    assert_eq!(own["client_id"], "");
    let (key, _) = listing
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, e)| e["request_path"] == "/v1/sys/in-flight-req")
        .unwrap();
    assert_eq!(key.len(), 36, "{key}");

    // A write whose client stalls mid-body stays listed, then leaves with its client.
    let slow = half_sent(&s, "PUT", "/v1/secret/data/slow").await;
    let listing = listing_until(&s, |l| with_path(l, "/v1/secret/data/slow").is_some()).await;
    let entry = with_path(listing.as_object().unwrap(), "/v1/secret/data/slow").unwrap();
    assert_eq!(entry["request_method"], "PUT");
    drop(slow);
    listing_until(&s, |l| with_path(l, "/v1/secret/data/slow").is_none()).await;
    // Nothing was written by the abandoned request.
    s.get("secret/data/slow", &s.root).await.assert_status(404);

    // A token in an old-style path is not shown.
    let token = s.token_with(&["default"], json!({})).await;
    let held = half_sent(&s, "POST", &format!("/v1/auth/token/revoke/{token}")).await;
    let listing = listing_until(&s, |l| {
        with_path(l, "/v1/auth/token/revoke/<redacted>").is_some()
    })
    .await;
    assert!(!listing.to_string().contains(&token), "{listing}");
    drop(held);

    // Read on the path is required (the default policy has none).
    s.get("sys/in-flight-req", &token).await.assert_status(403);
}

/// `sys/host-info` has Vault's (gopsutil's) fields, with values that agree with what the test
/// reads from the same host itself.
#[tokio::test]
async fn host_info_reports_this_host_in_vaults_fields() {
    let s = TestServer::start().await;
    let r = s.get("sys/host-info", &s.root).await;
    r.assert_status(200);
    assert_eq!(r.body["warnings"], Value::Null, "{}", r.body);
    let d = &r.body["data"];
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(d),
        ["cpu", "cpu_times", "disk", "host", "memory", "timestamp"]
    );
    // One entry per logical CPU listed by the kernel.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(d["cpu"].as_array().unwrap().len(), cpus);
    assert_eq!(
        keys(&d["cpu"][0]),
        [
            "cacheSize",
            "coreId",
            "cores",
            "cpu",
            "family",
            "flags",
            "mhz",
            "microcode",
            "model",
            "modelName",
            "physicalId",
            "stepping",
            "vendorId"
        ]
    );
    assert_eq!(d["cpu_times"].as_array().unwrap().len(), cpus);
    assert_eq!(d["cpu_times"][0]["cpu"], "cpu0");
    // Memory in bytes, from the kernel's kB.
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(d["memory"]["total"], total_kb * 1024);
    assert_eq!(keys(&d["memory"]).len(), 35, "{}", d["memory"]);
    let host = &d["host"];
    assert_eq!(
        host["kernelVersion"],
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap()
            .trim()
    );
    assert_eq!(
        host["hostname"],
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim()
    );
    assert_eq!(host["os"], "linux");
    assert!(host["procs"].as_u64().unwrap() > 0);
    for disk in d["disk"].as_array().unwrap() {
        let (used, free) = (
            disk["used"].as_u64().unwrap(),
            disk["free"].as_u64().unwrap(),
        );
        assert!(used + free <= disk["total"].as_u64().unwrap(), "{disk}");
    }
    // Read on the path is required.
    let token = s.token_with(&["default"], json!({})).await;
    s.get("sys/host-info", &token).await.assert_status(403);
}

/// Without HA, `sys/ha-status` lists this node alone, active (as Vault does); `nodes` is also at
/// the top level, where the Go client (`vault operator members`) reads it.
#[tokio::test]
async fn ha_status_without_ha_lists_this_node() {
    let s = TestServer::start().await;
    let r = s.get("sys/ha-status", &s.root).await;
    r.assert_status(200);
    let nodes = r.body["data"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{}", r.body);
    assert_eq!(nodes[0]["active_node"], true);
    assert_eq!(nodes[0]["last_echo"], Value::Null);
    assert_eq!(nodes[0]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r.body["nodes"], r.body["data"]["nodes"]);
    let token = s.token_with(&["default"], json!({})).await;
    s.get("sys/ha-status", &token).await.assert_status(403);
}

/// `sys/version-history` (`vault version-history`): the running version is recorded at the
/// first unseal, once; older entries (left by an earlier version) come first.
#[tokio::test]
async fn version_history_records_each_version_once() {
    let s = TestServer::start().await;
    let version = env!("CARGO_PKG_VERSION");
    let r = s.list("sys/version-history", &s.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["keys"], json!([version]));
    let first = r.body["data"]["key_info"][version]["timestamp_installed"].clone();
    assert!(first.as_str().unwrap().ends_with('Z'), "{first}");
    assert_eq!(
        r.body["data"]["key_info"][version]["previous_version"],
        Value::Null
    );
    // An unseal later (the clock moved on) records nothing new.
    s.clock.advance(std::time::Duration::from_secs(7200));
    s.seal().await;
    s.unseal().await.assert_status(200);
    // An entry an older version left.
    s.core
        .storage("")
        .put_json(
            "core/versions/0.0.9",
            &coffer::core::VersionEntry {
                version: "0.0.9".into(),
                installed: 1_000_000_000,
            },
        )
        .await
        .unwrap();
    let r = s.list("sys/version-history", &s.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["keys"], json!(["0.0.9", version]));
    let info = &r.body["data"]["key_info"];
    assert_eq!(info["0.0.9"]["timestamp_installed"], "2001-09-09T01:46:40Z");
    assert_eq!(info[version]["previous_version"], "0.0.9");
    assert_eq!(info[version]["timestamp_installed"], first);
    let token = s.token_with(&["default"], json!({})).await;
    s.list("sys/version-history", &token)
        .await
        .assert_status(403);
}
