//! Production mode over real files: init, unseal, seal, rotation, restart with every object
//! intact, expiry across restarts, no plaintext on disk, and a SIGKILL crash test.

pub mod crash;
mod restart;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer::clock::MockClock;
use coffer::config::{ServerConfig, StorageConfig};
use coffer::core::Core;

use crate::common::{Resp, TestServer};

/// A production-mode server over a data directory, served on 127.0.0.1:0.
pub struct ProdServer {
    pub srv: TestServer,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ProdServer {
    pub async fn start(dir: &Path, clock: Arc<MockClock>) -> ProdServer {
        Self::start_with(dir, clock, |_| {}).await
    }

    /// Like [`ProdServer::start`], with `edit` applied to the config.
    pub async fn start_with(
        dir: &Path,
        clock: Arc<MockClock>,
        edit: impl FnOnce(&mut ServerConfig),
    ) -> ProdServer {
        let mut config = ServerConfig::for_test();
        config.storage = StorageConfig::File {
            path: dir.to_path_buf(),
        };
        edit(&mut config);
        let core: Arc<Core> = coffer::production::build_core(&config, clock.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = core.clone();
        let task = tokio::spawn(async move {
            let _ = coffer::server::serve_http(
                listener,
                serving,
                &coffer::server::HttpOptions::default(),
                async move {
                    let _ = rx.await;
                },
            )
            .await;
        });
        let srv = TestServer::attach(addr, core, clock);
        ProdServer {
            srv,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops serving and drops the core, so the database file is closed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    pub async fn init(&self, shares: u8, threshold: u8) -> (Vec<String>, Vec<String>, String) {
        let r = self
            .srv
            .req(
                "PUT",
                "sys/init",
                None,
                Some(json!({"secret_shares": shares, "secret_threshold": threshold})),
            )
            .await;
        r.assert_status(200);
        let strings = |k: &str| {
            r.body[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        (
            strings("keys"),
            strings("keys_base64"),
            r.body["root_token"].as_str().unwrap().to_string(),
        )
    }

    pub async fn unseal(&self, key: &str) -> Resp {
        self.srv
            .req("PUT", "sys/unseal", None, Some(json!({"key": key})))
            .await
    }
}

/// Every file under `dir`, concatenated (for plaintext scans).
pub fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                stack.push(e.path());
            }
        } else if let Ok(b) = std::fs::read(&p) {
            out.extend(b);
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn uninitialised_then_sealed_then_unsealed() {
    let dir = tempfile::tempdir().unwrap();
    let p = ProdServer::start(dir.path(), MockClock::new()).await;
    let s = &p.srv;
    let st = s.req("GET", "sys/seal-status", None, None).await;
    assert_eq!(st.body["initialized"], false);
    assert_eq!(st.body["sealed"], true);
    assert_eq!(
        (st.body["t"].clone(), st.body["n"].clone()),
        (json!(0), json!(0))
    );
    s.req("GET", "sys/health", None, None)
        .await
        .assert_status(501);
    assert_eq!(
        s.req("GET", "sys/init", None, None).await.body,
        json!({"initialized": false})
    );
    let r = s.get("sys/mounts", "anything").await;
    r.assert_status(503);
    assert_eq!(r.errors(), ["Vault is sealed"]);
    let r = p.unseal("abcd").await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["Vault is not initialized"]);
    for (n, t, msg) in [
        (
            0,
            0,
            "invalid seal configuration: shares must be at least one",
        ),
        (
            3,
            5,
            "invalid seal configuration: threshold cannot be larger than shares",
        ),
        (
            3,
            1,
            "invalid seal configuration: threshold must be greater than one for multiple shares",
        ),
    ] {
        let r = s
            .req(
                "PUT",
                "sys/init",
                None,
                Some(json!({"secret_shares": n, "secret_threshold": t})),
            )
            .await;
        r.assert_status(400);
        assert_eq!(r.errors(), [msg]);
    }

    let (hex, b64, root) = p.init(3, 2).await;
    assert_eq!(hex.len(), 3);
    assert!(
        hex.iter().all(|k| k.len() == 66),
        "Vault's 33-byte shares: {hex:?}"
    );
    let r = s
        .req(
            "PUT",
            "sys/init",
            None,
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["Vault is already initialized"]);
    // Initialised but sealed.
    s.req("GET", "sys/health", None, None)
        .await
        .assert_status(503);
    s.req("GET", "sys/health?sealedcode=299", None, None)
        .await
        .assert_status(299);
    s.get("auth/token/lookup-self", &root)
        .await
        .assert_status(503);

    // Bad keys: format, then progress, duplicates, reset.
    let r = p.unseal("zz-not-hex!").await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["'key' must be a valid hex or base64 string"]);
    let r = s.req("PUT", "sys/unseal", None, Some(json!({}))).await;
    assert_eq!(
        r.errors(),
        ["'key' must be specified in request body as JSON, or 'reset' set to true"]
    );
    let r = p.unseal(&hex[0]).await;
    assert_eq!(
        (
            r.body["progress"].clone(),
            r.body["t"].clone(),
            r.body["sealed"].clone()
        ),
        (json!(1), json!(2), json!(true))
    );
    let nonce = r.body["nonce"].as_str().unwrap().to_string();
    assert!(!nonce.is_empty());
    assert_eq!(
        p.unseal(&hex[0]).await.body["progress"],
        1,
        "a duplicate key does not count"
    );
    let r = s
        .req("PUT", "sys/unseal", None, Some(json!({"reset": true})))
        .await;
    assert_eq!(r.body["progress"], 0);
    // A wrong share (well-formed) fails at the threshold and changes nothing.
    let mut wrong = hex[1].clone();
    wrong.replace_range(0..2, if &wrong[0..2] == "00" { "01" } else { "00" });
    p.unseal(&hex[0]).await;
    let r = p.unseal(&wrong).await;
    r.assert_status(400);
    assert!(
        r.errors()[0].contains("message authentication failed"),
        "{:?}",
        r.errors()
    );
    let st = s.req("GET", "sys/seal-status", None, None).await;
    assert_eq!(
        (st.body["sealed"].clone(), st.body["progress"].clone()),
        (json!(true), json!(0))
    );
    // Hex and base64 keys mix.
    p.unseal(&hex[2]).await;
    let r = p.unseal(&b64[0]).await;
    r.assert_status(200);
    assert_eq!(r.body["sealed"], false);
    assert!(r.body["cluster_id"].is_string());
    s.req("GET", "sys/health", None, None)
        .await
        .assert_status(200);
    // Production mode has no kv at secret/ until someone mounts one (as Vault).
    let mounts = s.get("sys/mounts", &root).await;
    assert!(mounts.body["data"].get("secret/").is_none());
    // Already unsealed: the status comes back.
    assert_eq!(p.unseal(&hex[0]).await.body["sealed"], false);

    // Seal needs a token with sudo; then everything is 503 again.
    s.req("PUT", "sys/seal", None, None)
        .await
        .assert_status(403);
    s.put("sys/seal", &root, Value::Null)
        .await
        .assert_status(204);
    s.get("auth/token/lookup-self", &root)
        .await
        .assert_status(503);
    assert_eq!(
        s.req("GET", "sys/seal-status", None, None).await.body["sealed"],
        true
    );
    p.unseal(&hex[1]).await;
    p.unseal(&hex[2]).await.assert_status(200);
    s.get("auth/token/lookup-self", &root)
        .await
        .assert_status(200);
    p.stop().await;
}

#[tokio::test]
async fn rotation_keeps_old_data_readable() {
    let dir = tempfile::tempdir().unwrap();
    let p = ProdServer::start(dir.path(), MockClock::new()).await;
    let (keys, _, root) = p.init(1, 1).await;
    assert_eq!(
        keys[0].len(),
        64,
        "one share: the root key itself, as Vault"
    );
    p.unseal(&keys[0]).await.assert_status(200);
    let s = &p.srv;
    s.post("sys/mounts/secret", &root, json!({"type": "kv-v2"}))
        .await
        .assert_status(204);
    s.put(
        "secret/data/before",
        &root,
        json!({"data": {"v": "old-term"}}),
    )
    .await
    .assert_status(200);
    let ks = s.get("sys/key-status", &root).await;
    assert_eq!(ks.body["data"]["term"], 1);
    s.put("sys/rotate", &root, Value::Null)
        .await
        .assert_status(204);
    assert_eq!(s.get("sys/key-status", &root).await.body["data"]["term"], 2);
    s.put(
        "secret/data/after",
        &root,
        json!({"data": {"v": "new-term"}}),
    )
    .await
    .assert_status(200);
    assert_eq!(
        s.get("secret/data/before", &root).await.body["data"]["data"]["v"],
        "old-term"
    );
    // rotate needs sudo.
    let t = s.token_with_as(&root, &["default"], json!({})).await;
    s.put("sys/rotate", &t, Value::Null)
        .await
        .assert_status(403);
    p.stop().await;
    let p = ProdServer::start(dir.path(), MockClock::new()).await;
    p.unseal(&keys[0]).await.assert_status(200);
    assert_eq!(
        p.srv.get("sys/key-status", &root).await.body["data"]["term"],
        2
    );
    assert_eq!(
        p.srv.get("secret/data/before", &root).await.body["data"]["data"]["v"],
        "old-term"
    );
    assert_eq!(
        p.srv.get("secret/data/after", &root).await.body["data"]["data"]["v"],
        "new-term"
    );
    p.stop().await;
}

#[tokio::test]
async fn operator_init_and_unseal_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let p = ProdServer::start(dir.path(), MockClock::new()).await;
    let Some(cli) = crate::cli::Cli::new(&p.srv) else {
        return;
    };
    let o = cli.run(None, &["status"], None).await;
    assert_eq!(o.code, 2, "status exits 2 while sealed: {}", o.stdout);
    assert_eq!(crate::cli::row(&o.stdout, "Initialized"), Some("false"));
    let o = cli.run(None, &["operator", "init", "-status"], None).await;
    assert_eq!(o.code, 2);
    let out = cli
        .ok(
            None,
            &["operator", "init", "-key-shares=3", "-key-threshold=2"],
        )
        .await;
    let keys: Vec<String> = out
        .lines()
        .filter_map(|l| {
            l.strip_prefix("Unseal Key ")
                .and_then(|r| r.split_once(": "))
                .map(|(_, k)| k.trim().to_string())
        })
        .collect();
    assert_eq!(keys.len(), 3, "{out}");
    let root = out
        .lines()
        .find_map(|l| l.strip_prefix("Initial Root Token: "))
        .unwrap()
        .trim()
        .to_string();
    let out = cli.ok(None, &["operator", "unseal", &keys[1]]).await;
    assert_eq!(
        crate::cli::row(&out, "Unseal Progress"),
        Some("1/2"),
        "{out}"
    );
    let out = cli.ok(None, &["operator", "unseal", &keys[2]]).await;
    assert_eq!(crate::cli::row(&out, "Sealed"), Some("false"), "{out}");
    let o = cli.run(Some(&root), &["status"], None).await;
    assert_eq!(o.code, 0);
    assert_eq!(crate::cli::row(&o.stdout, "Total Shares"), Some("3"));
    assert_eq!(crate::cli::row(&o.stdout, "Storage Type"), Some("file"));
    cli.ok(Some(&root), &["operator", "seal"]).await;
    assert_eq!(cli.run(None, &["status"], None).await.code, 2);
    let o = cli
        .run(None, &["operator", "unseal", "not-a-key"], None)
        .await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("'key' must be a valid hex or base64 string"),
        "{}",
        o.stderr
    );
    p.stop().await;
}
