//! Audit devices declared in the server configuration (`audit "file" "to-file" { ... }`, as in
//! OpenBao): enabled at unseal although API creation is off, not disabled through the API, the
//! same device (same salt) after a restart, refused at unseal when changed or when the API
//! already uses the path, removed with their block, and re-read on SIGHUP by the real binary.

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use coffer::audit::Declared;
use coffer::clock::MockClock;
use coffer::config::ServerConfig;

use crate::audit_devices::{Dev, wait_for};
use crate::production::ProdServer;

fn declared(path: &str, file: &Path, extra: &[(&str, &str)]) -> Declared {
    let mut options: std::collections::BTreeMap<String, String> =
        [("file_path".to_string(), file.to_str().unwrap().to_string())].into();
    for (k, v) in extra {
        options.insert(k.to_string(), v.to_string());
    }
    Declared {
        path: format!("{path}/"),
        kind: "file".into(),
        description: "declared".into(),
        local: false,
        options,
    }
}

async fn start(dir: &Path, clock: Arc<MockClock>, audit: Vec<Declared>, api: bool) -> ProdServer {
    ProdServer::start_with(dir, clock, move |c: &mut ServerConfig| {
        c.audit = audit;
        c.unsafe_allow_api_audit_creation = Some(api);
    })
    .await
}

async fn hash(p: &ProdServer, root: &str) -> String {
    let r = p
        .srv
        .put("sys/audit-hash/to-file", root, json!({"input": "v"}))
        .await;
    r.assert_status(200);
    r.body["data"]["hash"].as_str().unwrap().to_string()
}

async fn sealed(p: &ProdServer) -> bool {
    let r = p.srv.req("GET", "sys/seal-status", None, None).await;
    r.body["sealed"].as_bool().unwrap()
}

#[tokio::test]
async fn declared_devices_follow_the_configuration_across_restarts() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let file = logs.path().join("audit.log");
    let clock = MockClock::new();
    let block = declared("to-file", &file, &[("mode", "0600")]);

    // Init does not apply the block (a device that cannot open must not lose the new keys);
    // the first unseal enables it, with API creation off.
    let p = start(data.path(), clock.clone(), vec![block.clone()], false).await;
    let (keys, _, root) = p.init(1, 1).await;
    assert!(!file.exists());
    p.unseal(&keys[0]).await.assert_status(200);
    let r = p.srv.get("sys/audit", &root).await;
    r.assert_status(200);
    assert_eq!(
        r.body["data"],
        json!({"to-file/": {"type": "file", "description": "declared", "local": false,
            "path": "to-file/",
            "options": {"file_path": file.to_str().unwrap(), "mode": "0600"}}})
    );
    p.srv
        .get("auth/token/lookup-self", &root)
        .await
        .assert_status(200);
    let text = wait_for(&file, "auth/token/lookup-self", 2).await;
    assert!(!text.contains(&root), "the token appears only HMAC'd");
    // The API cannot disable it, nor enable another device.
    let r = p.srv.delete("sys/audit/to-file", &root).await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        vec!["cannot disable configuration-managed audit device"]
    );
    let r = p.srv.get("sys/audit", &root).await;
    assert!(r.body["data"]["to-file/"].is_object());
    let h1 = hash(&p, &root).await;
    p.stop().await;

    // Restart with the same block: the same device, salt and all.
    let p = start(data.path(), clock.clone(), vec![block.clone()], false).await;
    p.unseal(&keys[0]).await.assert_status(200);
    assert_eq!(hash(&p, &root).await, h1);
    p.stop().await;

    // A changed block is refused at unseal, saying what differs; the node stays sealed.
    let mut changed = block.clone();
    changed.options.insert("mode".into(), "0640".into());
    let p = start(data.path(), clock.clone(), vec![changed], false).await;
    let r = p.unseal(&keys[0]).await;
    r.assert_status(500);
    assert_eq!(
        r.errors(),
        vec![
            "failed to validate audit device config to-file/: modifications to audit devices are not allowed: audit device to-file/ option mode differs: 0600 (table) vs 0640 (config)"
        ]
    );
    assert!(sealed(&p).await);
    p.stop().await;

    // A new block whose device cannot be opened is refused, and nothing changes: the block
    // left out of this configuration is not removed either.
    let blocker = logs.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let broken = declared("broken", &blocker.join("audit.log"), &[]);
    let p = start(data.path(), clock.clone(), vec![broken], false).await;
    let r = p.unseal(&keys[0]).await;
    r.assert_status(500);
    let errors = r.errors();
    assert!(
        errors[0].starts_with("failed to create new audit device broken/: "),
        "{errors:?}"
    );
    assert!(sealed(&p).await);
    p.stop().await;
    let p = start(data.path(), clock.clone(), vec![block.clone()], false).await;
    p.unseal(&keys[0]).await.assert_status(200);
    assert_eq!(hash(&p, &root).await, h1, "the device was kept");
    p.stop().await;

    // Without the block the device goes at unseal; the path is free for the API again.
    let api_file = logs.path().join("api.log");
    let p = start(data.path(), clock.clone(), Vec::new(), true).await;
    p.unseal(&keys[0]).await.assert_status(200);
    let r = p.srv.get("sys/audit", &root).await;
    assert_eq!(r.body["data"], json!({}));
    p.srv
        .put(
            "sys/audit/to-file",
            &root,
            json!({"type": "file", "options": {"file_path": api_file.to_str().unwrap()}}),
        )
        .await
        .assert_status(204);
    p.stop().await;

    // Declaring the path the API now uses is refused; the API device stays.
    let p = start(data.path(), clock.clone(), vec![block.clone()], true).await;
    let r = p.unseal(&keys[0]).await;
    r.assert_status(500);
    assert_eq!(
        r.errors(),
        vec![
            "audit device in configuration (path: to-file/) was already created by API; remove the API audit device before attempting to create a duplicate configuration-based version"
        ]
    );
    p.stop().await;
    let p = start(data.path(), clock.clone(), Vec::new(), true).await;
    p.unseal(&keys[0]).await.assert_status(200);
    let r = p.srv.get("sys/audit", &root).await;
    assert_eq!(
        r.body["data"]["to-file/"]["options"]["file_path"],
        api_file.to_str().unwrap()
    );
    p.stop().await;
}

fn block(path: &str, file: &Path) -> String {
    format!(
        "audit \"file\" \"{path}\" {{\n  description = \"from the file\"\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
        file.display()
    )
}

async fn listed(dev: &Dev, client: &reqwest::Client) -> Vec<String> {
    let r: Value = client
        .get(format!("{}/v1/sys/audit", dev.addr))
        .header("X-Vault-Token", &dev.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["data"].as_object().unwrap().keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_the_audit_blocks_of_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let cfg = dir.path().join("dev.hcl");
    std::fs::write(&cfg, block("a", &a)).unwrap();
    let flag = format!("-config={}", cfg.display());
    let dev = Dev::start_with_args(&[&flag], &[]).await;
    let client = reqwest::Client::new();
    assert_eq!(listed(&dev, &client).await, vec!["a/"]);
    let (status, _) = dev
        .put(&client, "secret/data/one", json!({"data": {"v": "1"}}))
        .await;
    assert_eq!(status, 200);
    wait_for(&a, "secret/data/one", 2).await;

    // The block now names b instead of a: one SIGHUP swaps the devices.
    std::fs::write(&cfg, block("b", &b)).unwrap();
    dev.signal("-HUP");
    let mut now = Vec::new();
    for _ in 0..500 {
        now = listed(&dev, &client).await;
        if now == ["b/"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(now, vec!["b/"]);
    let (status, _) = dev
        .put(&client, "secret/data/two", json!({"data": {"v": "2"}}))
        .await;
    assert_eq!(status, 200);
    wait_for(&b, "secret/data/two", 2).await;
    assert!(
        !std::fs::read_to_string(&a)
            .unwrap()
            .contains("secret/data/two")
    );

    // A file that no longer parses changes nothing; the files are still reopened after it (the
    // renamed b.log is recreated), which shows the SIGHUP was handled.
    let old = dir.path().join("b.log.1");
    std::fs::rename(&b, &old).unwrap();
    std::fs::write(&cfg, "audit \"file\" {{{").unwrap();
    dev.signal("-HUP");
    let mut n = 0;
    while !b.exists() {
        assert!(n < 500, "b.log was never reopened");
        let (status, _) = dev
            .put(&client, &format!("secret/data/p{n}"), json!({"data": {}}))
            .await;
        assert_eq!(status, 200);
        n += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(listed(&dev, &client).await, vec!["b/"]);
}

/// Applying the configuration's devices opens new ones before taking the broker's lock: while a
/// declared socket device whose peer never accepts is being opened, disabling another device
/// through the API answers at once (before, it waited for the open to give up). The stuck
/// device is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_device_slow_to_open_does_not_hold_up_the_api() {
    let srv = crate::common::TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    for name in ["kept", "gone"] {
        srv.put(
            &format!("sys/audit/{name}"),
            &srv.root,
            json!({"type": "file", "options": {"file_path": dir.path().join(name)}}),
        )
        .await
        .assert_status(204);
    }
    let stuck = dir.path().join("stuck.sock");
    let _held = crate::audit_devices::stuck_unix_listener(&stuck);
    srv.core.audit.set_declared(vec![Declared {
        path: "stuck/".into(),
        kind: "socket".into(),
        description: String::new(),
        local: false,
        options: [
            ("address".to_string(), stuck.to_str().unwrap().to_string()),
            ("socket_type".to_string(), "unix".to_string()),
            ("write_timeout".to_string(), "4s".to_string()),
        ]
        .into(),
    }]);
    let core = srv.core.clone();
    let applying = tokio::spawn(async move { core.audit.apply_declared(&core.storage("")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    srv.delete("sys/audit/gone", &srv.root)
        .await
        .assert_status(204);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "{took:?} behind the opening device"
    );
    let applied = tokio::time::timeout(Duration::from_secs(20), applying)
        .await
        .expect("the open gives up")
        .unwrap();
    let e = applied.expect_err("a device that cannot be opened is refused");
    assert!(
        e.to_string()
            .contains("failed to create new audit device stuck/"),
        "{e}"
    );
    let listed = srv.get("sys/audit", &srv.root).await;
    let paths: Vec<&String> = listed.body["data"].as_object().unwrap().keys().collect();
    assert_eq!(paths, ["kept/"]);
}
