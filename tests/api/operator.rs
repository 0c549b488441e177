//! Day-two operator commands: keyring rotation (and its auto-rotation setting), rekey (Vault's
//! `sys/rekey/*` and OpenBao's `sys/rotate/root/*`), root token generation (Vault's
//! `sys/generate-root/*`, OpenBao's `sys/generate-root-token/*`, `sys/decode-token`), over HTTP
//! with OpenBao's texts and with the real `bao` CLI.

use serde_json::{Value, json};
use std::path::Path;

use coffer::clock::MockClock;
use coffer::config::{ServerConfig, StorageConfig};
use coffer::http::HttpOptions;

use crate::cli::{Cli, row};
use crate::common::{Resp, TestServer};

/// A production-mode server (sealed, uninitialised) with listener options; in memory unless a
/// data directory is given.
struct OpServer {
    srv: TestServer,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl OpServer {
    async fn start(dir: Option<&Path>, unauthed: bool) -> OpServer {
        Self::start_with(dir, unauthed, |_| {}).await
    }

    /// [`OpServer::start`] with the configuration changed by `tweak` first.
    async fn start_with(
        dir: Option<&Path>,
        unauthed: bool,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> OpServer {
        let clock = MockClock::new();
        let mut config = ServerConfig::for_test();
        tweak(&mut config);
        if let Some(d) = dir {
            config.storage = StorageConfig::File {
                path: d.to_path_buf(),
            };
        }
        let core = coffer::production::build_core(&config, clock.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = core.clone();
        let options = HttpOptions {
            unauthed_rekey: unauthed,
            unauthed_generate_root: unauthed,
            ..HttpOptions::default()
        };
        let task = tokio::spawn(async move {
            let _ = coffer::server::serve_http(listener, serving, &options, async move {
                let _ = rx.await;
            })
            .await;
        });
        OpServer {
            srv: TestServer::attach(addr, core, clock),
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Initialises with `n` shares / threshold `t`, unseals, and sets `srv.root`. Returns the
    /// base64 unseal keys.
    async fn init_unsealed(&mut self, n: u8, t: u8) -> Vec<String> {
        let r = self
            .srv
            .req(
                "PUT",
                "sys/init",
                None,
                Some(json!({"secret_shares": n, "secret_threshold": t})),
            )
            .await;
        r.assert_status(200);
        let keys = strings(&r.body["keys_base64"]);
        self.srv.root = r.body["root_token"].as_str().unwrap().to_string();
        for k in keys.iter().take(usize::from(t)) {
            self.unseal(k).await.assert_status(200);
        }
        assert!(!self.sealed().await);
        keys
    }

    async fn unseal(&self, key: &str) -> Resp {
        self.srv
            .req("PUT", "sys/unseal", None, Some(json!({"key": key})))
            .await
    }

    async fn sealed(&self) -> bool {
        let r = self.srv.req("GET", "sys/seal-status", None, None).await;
        r.body["sealed"].as_bool().unwrap()
    }

    async fn seal(&self) {
        self.srv
            .put("sys/seal", &self.srv.root, json!({}))
            .await
            .assert_status(204);
        assert!(self.sealed().await);
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn err(r: &Resp, status: u16) -> String {
    r.assert_status(status);
    r.errors().join("; ")
}

#[tokio::test]
async fn rotate_keyring_is_an_alias_of_rotate_and_needs_sudo() {
    let s = TestServer::start().await;
    let term = |r: &Resp| r.body["data"]["term"].as_u64().unwrap();
    assert_eq!(term(&s.get("sys/key-status", &s.root).await), 1);
    s.put("sys/rotate/keyring", &s.root, json!({}))
        .await
        .assert_status(204);
    assert_eq!(term(&s.get("sys/key-status", &s.root).await), 2);
    s.write_policy(
        "rot",
        r#"path "sys/rotate/*" { capabilities = ["update", "read"] }"#,
    )
    .await;
    let t = s.token_with(&["rot"], json!({})).await;
    let r = s.put("sys/rotate/keyring", &t, json!({})).await;
    r.assert_status(403);
    assert_eq!(term(&s.get("sys/key-status", &s.root).await), 2);
}

#[tokio::test]
async fn rotation_config_is_stored_validated_and_applied() {
    let s = TestServer::start().await;
    let r = s.get("sys/rotate/keyring/config", &s.root).await;
    r.assert_status(200);
    assert_eq!(
        r.body["data"],
        json!({"enabled": true, "interval": 0, "max_operations": 3_865_470_566_i64})
    );
    let bad = |body: Value| {
        let s = &s;
        async move { s.put("sys/rotate/keyring/config", &s.root, body).await }
    };
    assert_eq!(
        err(&bad(json!({"max_operations": 5})).await, 400),
        "max_operations must be in the range [1000000,3865470566]"
    );
    assert_eq!(
        err(&bad(json!({"interval": "1h"})).await, 400),
        "interval must be greater or equal to 24h0m0s"
    );
    s.put(
        "sys/rotate/keyring/config",
        &s.root,
        json!({"interval": "25h", "max_operations": 2_000_000, "enabled": false}),
    )
    .await
    .assert_status(204);
    let r = s.get("sys/rotate/config", &s.root).await;
    assert_eq!(
        r.body["data"],
        json!({"enabled": false, "interval": "25h0m0s", "max_operations": 2_000_000})
    );

    // Disabled: nothing happens however old the term is.
    let term = |r: Resp| r.body["data"]["term"].as_u64().unwrap();
    s.clock.advance(std::time::Duration::from_secs(26 * 3600));
    s.core.periodic().await.unwrap();
    assert_eq!(term(s.get("sys/key-status", &s.root).await), 1);
    // Enabled: the term older than the interval is rotated at the next tick, once.
    s.put(
        "sys/rotate/keyring/config",
        &s.root,
        json!({"enabled": true}),
    )
    .await
    .assert_status(204);
    s.core.periodic().await.unwrap();
    assert_eq!(term(s.get("sys/key-status", &s.root).await), 2);
    s.core.periodic().await.unwrap();
    assert_eq!(term(s.get("sys/key-status", &s.root).await), 2);
}

#[tokio::test]
async fn rekey_over_http_replaces_the_unseal_keys() {
    let mut p = OpServer::start(None, false).await;
    let old = p.init_unsealed(3, 2).await;
    let s = &p.srv;
    s.post(
        "sys/mounts/kv",
        &s.root,
        json!({"type": "kv", "options": {"version": "1"}}),
    )
    .await
    .assert_status(204);
    s.put("kv/app", &s.root, json!({"password": "hunter2"}))
        .await
        .assert_status(204);

    // Status before anything started: Vault's raw body (no envelope).
    let r = s.get("sys/rekey/init", &s.root).await;
    r.assert_status(200);
    assert_eq!(r.body["started"], false);
    assert_eq!(r.body["required"], 2);
    assert_eq!(r.body["t"], 0);
    assert!(r.body.get("data").is_none(), "{}", r.text);

    // Bad requests, with OpenBao's texts.
    let init = |body: Value| {
        let s = &p.srv;
        async move { s.put("sys/rekey/init", &s.root, body).await }
    };
    assert_eq!(
        err(
            &init(json!({"secret_shares": 3, "secret_threshold": 1})).await,
            400
        ),
        "invalid rekey seal configuration: threshold must be greater than one for multiple shares"
    );
    assert_eq!(
        err(
            &init(json!({"secret_shares": 0, "secret_threshold": 0})).await,
            400
        ),
        "invalid rekey seal configuration: shares must be at least one"
    );
    assert_eq!(
        err(
            &init(json!({"secret_shares": 1, "secret_threshold": 1, "backup": true})).await,
            400
        ),
        "cannot request a backup of the new keys without providing PGP keys for encryption"
    );
    assert_eq!(
        err(
            &init(json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["abc"]})).await,
            400
        ),
        "PGP-encrypted unseal keys are not supported by Coffer"
    );
    let upd = |body: Value| {
        let s = &p.srv;
        async move { s.put("sys/rekey/update", &s.root, body).await }
    };
    assert_eq!(
        err(&upd(json!({"key": old[0], "nonce": "x"})).await, 400),
        "no barrier rekey in progress"
    );

    // A 5/3 rekey with two of the old keys.
    let r = init(json!({"secret_shares": 5, "secret_threshold": 3, "pgp_keys": null})).await;
    r.assert_status(200);
    assert_eq!(r.body["started"], true);
    assert_eq!(
        (r.body["t"].clone(), r.body["n"].clone()),
        (json!(3), json!(5))
    );
    let nonce = r.body["nonce"].as_str().unwrap().to_string();
    assert_eq!(
        err(
            &init(json!({"secret_shares": 5, "secret_threshold": 3})).await,
            400
        ),
        "rekey already in progress"
    );
    assert_eq!(
        err(&upd(json!({"key": old[0], "nonce": "wrong"})).await, 400),
        format!("incorrect nonce supplied; nonce for this rekey operation is \"{nonce}\"")
    );
    assert_eq!(
        err(&upd(json!({"nonce": nonce})).await, 400),
        "'key' must be specified in request body as JSON"
    );
    assert_eq!(
        err(&upd(json!({"key": "zz!", "nonce": nonce})).await, 400),
        "'key' must be a valid hex or base64 string"
    );
    assert_eq!(
        err(&upd(json!({"key": "AAAA", "nonce": nonce})).await, 400),
        "key is shorter than minimum 16 bytes"
    );
    let r = upd(json!({"key": old[0], "nonce": nonce})).await;
    r.assert_status(200);
    assert_eq!(
        (r.body["progress"].clone(), r.body["complete"].clone()),
        (json!(1), Value::Null)
    );
    assert_eq!(
        err(&upd(json!({"key": old[0], "nonce": nonce})).await, 400),
        "given key has already been provided during this generation operation"
    );
    let r = upd(json!({"key": old[1], "nonce": nonce})).await;
    r.assert_status(200);
    assert_eq!(r.body["complete"], true);
    assert_eq!(r.body["nonce"], nonce.as_str());
    let new = strings(&r.body["keys_base64"]);
    assert_eq!(new.len(), 5);
    assert_eq!(strings(&r.body["keys"]).len(), 5);
    assert_eq!(
        s.get("sys/rekey/init", &s.root).await.body["started"],
        false
    );
    let status = s.req("GET", "sys/seal-status", None, None).await;
    assert_eq!(
        (status.body["t"].clone(), status.body["n"].clone()),
        (json!(3), json!(5))
    );

    // Sealed: the old keys no longer unseal, three new ones do, the data is intact.
    p.seal().await;
    for k in old.iter().take(2) {
        let r = p.unseal(k).await;
        if r.status == 200 {
            assert_eq!(r.body["sealed"], true);
        } else {
            r.assert_status(400);
        }
    }
    p.unseal(&old[2]).await; // three old keys: still sealed
    assert!(p.sealed().await);
    p.srv
        .req("PUT", "sys/unseal", None, Some(json!({"reset": true})))
        .await
        .assert_status(200);
    for k in new.iter().skip(1).take(3) {
        p.unseal(k).await.assert_status(200);
    }
    assert!(!p.sealed().await);
    let s = &p.srv;
    let r = s.get("kv/app", &s.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["password"], "hunter2");
    p.stop().await;
}

#[tokio::test]
async fn rekey_endpoints_need_sudo_unless_the_listener_allows_them() {
    let mut p = OpServer::start(None, false).await;
    let keys = p.init_unsealed(1, 1).await;
    let s = &p.srv;
    s.req("GET", "sys/rekey/init", None, None)
        .await
        .assert_status(403);
    s.req("GET", "sys/generate-root/attempt", None, None)
        .await
        .assert_status(403);
    s.write_policy(
        "ops",
        r#"path "sys/rekey/*" { capabilities = ["read", "update", "delete"] }
path "sys/generate-root/*" { capabilities = ["read", "update", "delete"] }"#,
    )
    .await;
    let t = s.token_with(&["ops"], json!({})).await;
    s.get("sys/rekey/init", &t).await.assert_status(403);
    s.get("sys/generate-root/attempt", &t)
        .await
        .assert_status(403);
    drop(keys);
    p.stop().await;

    // disable_unauthed_*_endpoints = false: Vault's unauthenticated endpoints.
    let mut p = OpServer::start(None, true).await;
    let r = p.srv.req("GET", "sys/rekey/init", None, None).await;
    assert_eq!(err(&r, 400), "server is not yet initialized");
    let old = p.init_unsealed(1, 1).await;
    let s = &p.srv;
    let (_, r) = unauthed_rekey(s, &old[0]).await;
    assert_eq!(r.body["complete"], true);
    s.req("DELETE", "sys/rekey/init", None, None)
        .await
        .assert_status(204);
    s.req("PATCH", "sys/rekey/init", None, Some(json!({})))
        .await
        .assert_status(405);
    let r = s.req("GET", "sys/generate-root/attempt", None, None).await;
    r.assert_status(200);
    assert_eq!(r.body["otp_length"], 28);
    // Sealed: 503, as Vault.
    p.seal().await;
    let r = p.srv.req("GET", "sys/rekey/init", None, None).await;
    assert_eq!(err(&r, 503), "Vault is sealed");
    p.stop().await;
}

#[tokio::test]
async fn rekey_with_verification_takes_effect_only_once_verified() {
    let mut p = OpServer::start(None, false).await;
    let old = p.init_unsealed(1, 1).await;
    let s = &p.srv;
    assert_eq!(
        err(&s.get("sys/rekey/verify", &s.root).await, 400),
        "no rekey configuration found"
    );
    let r = s
        .put(
            "sys/rekey/init",
            &s.root,
            json!({"secret_shares": 3, "secret_threshold": 2, "require_verification": true}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["verification_required"], true);
    let nonce = r.body["nonce"].as_str().unwrap().to_string();
    let r = s.get("sys/rekey/verify", &s.root).await;
    r.assert_status(200);
    assert_eq!(
        (r.body["started"].clone(), r.body["nonce"].clone()),
        (json!(false), json!(""))
    );
    let r = s
        .put(
            "sys/rekey/update",
            &s.root,
            json!({"key": old[0], "nonce": nonce}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["complete"], true);
    assert_eq!(r.body["verification_required"], true);
    let vnonce = r.body["verification_nonce"].as_str().unwrap().to_string();
    let new = strings(&r.body["keys_base64"]);
    assert_eq!(
        err(
            &s.put(
                "sys/rekey/update",
                &s.root,
                json!({"key": old[0], "nonce": nonce})
            )
            .await,
            400
        ),
        format!(
            "rekey operation already finished; verification must be performed; nonce for the verification operation is \"{vnonce}\""
        )
    );
    // Not yet in effect: the seal configuration is still 1/1.
    assert_eq!(
        s.req("GET", "sys/seal-status", None, None).await.body["n"],
        1
    );
    let verify = |key: &str, nonce: &str| {
        let s = &p.srv;
        let body = json!({"key": key, "nonce": nonce});
        async move { s.put("sys/rekey/verify", &s.root, body).await }
    };
    assert_eq!(
        err(&verify(&new[0], "nope").await, 400),
        format!("incorrect nonce supplied; nonce for this verify operation is \"{vnonce}\"")
    );
    // Wrong shares: refused, and a new verification nonce is drawn.
    verify(&new[0], &vnonce).await.assert_status(200);
    assert_eq!(
        err(&verify(&old[0], &vnonce).await, 400),
        "rekey verification failed; incorrect key shares supplied"
    );
    let r = s.get("sys/rekey/verify", &s.root).await;
    let vnonce2 = r.body["nonce"].as_str().unwrap().to_string();
    assert_ne!(vnonce2, vnonce);
    assert_eq!(r.body["progress"], 0);
    // Restart (the CLI's -cancel -verify) draws another nonce and keeps the new keys pending.
    let r = s.delete("sys/rekey/verify", &s.root).await;
    r.assert_status(200);
    let vnonce3 = r.body["nonce"].as_str().unwrap().to_string();
    assert_ne!(vnonce3, vnonce2);
    let r = verify(&new[1], &vnonce3).await;
    r.assert_status(200);
    assert_eq!(r.body["progress"], 1);
    let r = verify(&new[2], &vnonce3).await;
    r.assert_status(200);
    assert_eq!(r.body, json!({"nonce": vnonce3, "complete": true}));
    assert_eq!(
        s.req("GET", "sys/seal-status", None, None).await.body["n"],
        3
    );

    p.seal().await;
    // The old 1/1 key is now one part of two, and it does not combine with a new one.
    assert_eq!(p.unseal(&old[0]).await.body["progress"], 1);
    p.unseal(&new[1]).await.assert_status(400);
    assert!(p.sealed().await);
    p.unseal(&new[0]).await.assert_status(200);
    p.unseal(&new[2]).await.assert_status(200);
    assert!(!p.sealed().await);
    p.stop().await;
}

#[tokio::test]
async fn rotate_root_is_openbaos_enveloped_rekey() {
    let mut p = OpServer::start(None, false).await;
    let old = p.init_unsealed(1, 1).await;
    let s = &p.srv;
    let r = s.get("sys/rotate/root/init", &s.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["started"], false);
    assert_eq!(
        err(
            &s.put(
                "sys/rotate/root/update",
                &s.root,
                json!({"key": old[0], "nonce": "x"})
            )
            .await,
            400
        ),
        "no rotation in progress"
    );
    assert_eq!(
        err(
            &s.put(
                "sys/rotate/root/init",
                &s.root,
                json!({"secret_shares": 0, "secret_threshold": 0})
            )
            .await,
            400
        ),
        "invalid rotate seal configuration: shares must be at least one"
    );
    let r = s
        .put(
            "sys/rotate/root/init",
            &s.root,
            json!({"secret_shares": 1, "secret_threshold": 1}),
        )
        .await;
    r.assert_status(200);
    let nonce = r.body["data"]["nonce"].as_str().unwrap().to_string();
    assert_eq!(
        err(
            &s.put(
                "sys/rotate/root/init",
                &s.root,
                json!({"secret_shares": 1, "secret_threshold": 1})
            )
            .await,
            400
        ),
        "rotation already in progress"
    );
    assert_eq!(
        err(
            &s.put("sys/rotate/root/update", &s.root, json!({"nonce": "x"}))
                .await,
            400
        ),
        "missing required field 'key'"
    );
    assert_eq!(
        err(
            &s.put(
                "sys/rotate/root/update",
                &s.root,
                json!({"key": old[0], "nonce": "x"})
            )
            .await,
            400
        ),
        format!("incorrect nonce supplied; nonce for rotation is \"{nonce}\"")
    );
    assert_eq!(
        err(
            &s.put("sys/rotate/root/update", &s.root, json!({"key": old[0]}))
                .await,
            400
        ),
        "missing required field 'nonce'"
    );
    assert_eq!(
        err(
            &s.put(
                "sys/rotate/root/verify",
                &s.root,
                json!({"key": old[0], "nonce": "x"})
            )
            .await,
            400
        ),
        "no rotation verification in progress"
    );
    // A random key of the right size does not rebuild the root key: refused, attempt kept.
    let wrong = base64_of(&[7u8; 32]);
    let r = s
        .put(
            "sys/rotate/root/update",
            &s.root,
            json!({"key": wrong, "nonce": nonce}),
        )
        .await;
    assert!(
        err(&r, 400).starts_with("failed to read root key: "),
        "{}",
        r.text
    );
    let r = s
        .put(
            "sys/rotate/root/update",
            &s.root,
            json!({"key": old[0], "nonce": nonce}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["complete"], true);
    let new = strings(&r.body["data"]["keys_base64"]);
    s.delete("sys/rotate/root/init", &s.root)
        .await
        .assert_status(204);
    p.seal().await;
    p.unseal(&old[0]).await.assert_status(400);
    p.unseal(&new[0]).await.assert_status(200);
    p.stop().await;
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Both generate-root APIs, the OTP flow and decode-token; the new token works.
#[tokio::test]
async fn generate_root_over_http_yields_a_working_root_token() {
    let mut p = OpServer::start(None, false).await;
    let keys = p.init_unsealed(3, 2).await;
    let s = &p.srv;
    let attempt = "sys/generate-root-token/attempt";
    let r = s.get(attempt, &s.root).await;
    r.assert_status(200);
    assert_eq!(
        r.body["data"],
        json!({"started": false, "complete": false, "progress": 0, "required": 2, "otp": "",
               "otp_length": 28, "nonce": "", "encoded_token": "", "pgp_fingerprint": ""})
    );
    assert_eq!(
        err(&s.put(attempt, &s.root, json!({"otp": "abc"})).await, 400),
        "OTP string has incorrect length"
    );
    let upd = |body: Value| {
        let s = &p.srv;
        async move { s.put("sys/generate-root-token/update", &s.root, body).await }
    };
    assert_eq!(
        err(&upd(json!({"key": keys[0], "nonce": "x"})).await, 400),
        "no root generation in progress"
    );
    assert_eq!(
        err(&upd(json!({"key": keys[0]})).await, 400),
        "nonce is required"
    );
    assert_eq!(
        err(&upd(json!({"nonce": "x"})).await, 400),
        "key is required"
    );

    let r = s.put(attempt, &s.root, json!({})).await;
    r.assert_status(200);
    let otp = r.body["data"]["otp"].as_str().unwrap().to_string();
    let nonce = r.body["data"]["nonce"].as_str().unwrap().to_string();
    assert_eq!(otp.len(), 28);
    assert!(otp.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(r.body["data"]["started"], true);
    assert_eq!(
        err(&s.put(attempt, &s.root, json!({})).await, 400),
        "root generation already in progress for this namespace"
    );
    // The status never shows the OTP again.
    assert_eq!(s.get(attempt, &s.root).await.body["data"]["otp"], "");
    assert_eq!(
        err(&upd(json!({"key": keys[0], "nonce": "x"})).await, 400),
        format!(
            "incorrect nonce supplied; nonce for this root generation operation is \"{nonce}\""
        )
    );
    // Wrong key material: aborted, progress reset, attempt kept.
    upd(json!({"key": keys[0], "nonce": nonce}))
        .await
        .assert_status(200);
    assert_eq!(
        err(&upd(json!({"key": keys[0], "nonce": nonce})).await, 400),
        "given key has already been provided during this generation operation"
    );
    let r = upd(json!({"key": base64_of(&[9u8; 33]), "nonce": nonce})).await;
    assert!(
        err(&r, 400).starts_with("root generation aborted: unable to authenticate: "),
        "{}",
        r.text
    );
    assert_eq!(s.get(attempt, &s.root).await.body["data"]["progress"], 0);

    let r = upd(json!({"key": keys[1], "nonce": nonce})).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["progress"], 1);
    assert_eq!(r.body["data"]["complete"], false);
    let r = upd(json!({"key": keys[2], "nonce": nonce})).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["complete"], true);
    let encoded = r.body["data"]["encoded_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!encoded.is_empty() && !encoded.contains('='));
    assert_eq!(s.get(attempt, &s.root).await.body["data"]["started"], false);

    // decode-token needs no token; its errors are OpenBao's.
    let r = s
        .req(
            "PUT",
            "sys/decode-token",
            None,
            Some(json!({"encoded_token": encoded, "otp": otp})),
        )
        .await;
    r.assert_status(200);
    let token = r.body["data"]["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("hvs.") && token.len() == 28, "{token}");
    let r = s
        .req("PUT", "sys/decode-token", None, Some(json!({"otp": "x"})))
        .await;
    assert_eq!(err(&r, 400), "provided 'encoded_token' or 'otp' is empty");
    let r = s
        .req(
            "PUT",
            "sys/decode-token",
            None,
            Some(json!({"otp": "xy", "encoded_token": "AAAA"})),
        )
        .await;
    assert_eq!(
        err(&r, 400),
        "error xoring token: length of byte slices is not equivalent: 3 != 2"
    );
    // The new root token works.
    s.write_policy_as(
        &token,
        "made-by-new-root",
        r#"path "x/*" { capabilities = ["read"] }"#,
    )
    .await;
    let r = s.get("auth/token/lookup-self", &token).await;
    assert_eq!(r.body["data"]["policies"], json!(["root"]));

    // Vault's raw API: same flow, raw bodies with encoded_root_token; a caller-chosen OTP.
    let my_otp = "A".repeat(28);
    let r = s
        .put("sys/generate-root/attempt", &s.root, json!({"otp": my_otp}))
        .await;
    r.assert_status(200);
    assert_eq!(r.body["otp"], "");
    let nonce = r.body["nonce"].as_str().unwrap().to_string();
    for k in keys.iter().take(2) {
        s.put(
            "sys/generate-root/update",
            &s.root,
            json!({"key": k, "nonce": nonce}),
        )
        .await
        .assert_status(200);
    }
    // (the loop's last answer is the completed one; ask once more to see it is gone)
    let r = s.get("sys/generate-root/attempt", &s.root).await;
    assert_eq!(r.body["started"], false);
    // Cancel paths.
    s.put(attempt, &s.root, json!({})).await.assert_status(200);
    s.delete(attempt, &s.root).await.assert_status(204);
    assert_eq!(s.get(attempt, &s.root).await.body["data"]["started"], false);
    s.put("sys/generate-root/attempt", &s.root, json!({}))
        .await
        .assert_status(200);
    s.delete("sys/generate-root/attempt", &s.root)
        .await
        .assert_status(204);
    p.stop().await;
}

#[tokio::test]
async fn generate_root_raw_update_returns_encoded_root_token() {
    let mut p = OpServer::start(None, true).await;
    let keys = p.init_unsealed(1, 1).await;
    let s = &p.srv;
    let otp = "b".repeat(28);
    let r = s
        .req(
            "PUT",
            "sys/generate-root/attempt",
            None,
            Some(json!({"otp": otp})),
        )
        .await;
    r.assert_status(200);
    let nonce = r.body["nonce"].as_str().unwrap().to_string();
    let r = s
        .req(
            "PUT",
            "sys/generate-root/update",
            None,
            Some(json!({"nonce": nonce})),
        )
        .await;
    assert_eq!(
        err(&r, 400),
        "'key' must be specified in request body as JSON"
    );
    let r = s
        .req(
            "PUT",
            "sys/generate-root/update",
            None,
            Some(json!({"key": keys[0], "nonce": nonce})),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["complete"], true);
    assert_eq!(r.body["encoded_token"], r.body["encoded_root_token"]);
    let r = s
        .req(
            "PUT",
            "sys/decode-token",
            None,
            Some(json!({"encoded_token": r.body["encoded_root_token"], "otp": otp})),
        )
        .await;
    let token = r.body["data"]["token"].as_str().unwrap().to_string();
    s.get("sys/key-status", &token).await.assert_status(200);
    p.stop().await;
}

// ---- the real CLI ----

#[tokio::test]
async fn cli_operator_rotate() {
    let s = TestServer::start().await;
    let Some(cli) = Cli::new(&s) else { return };
    let out = cli.ok(Some(&s.root), &["operator", "rotate"]).await;
    assert!(out.contains("Key Term"), "{out}");
    let ks = cli.ok(Some(&s.root), &["operator", "key-status"]).await;
    assert_eq!(row(&ks, "Key Term"), Some("2"), "{ks}");
}

/// Production mode over real files: rekey 3/2 → 3/2 with the CLI, restart, the old keys are
/// refused, two new keys unseal, and the data written before is still readable.
#[tokio::test]
async fn cli_rekey_in_production_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = OpServer::start(Some(dir.path()), false).await;
    let old = p.init_unsealed(3, 2).await;
    let root = p.srv.root.clone();
    p.srv
        .post(
            "sys/mounts/kv",
            &root,
            json!({"type": "kv", "options": {"version": "1"}}),
        )
        .await
        .assert_status(204);
    p.srv
        .put("kv/db", &root, json!({"user": "app"}))
        .await
        .assert_status(204);
    let Some(cli) = Cli::new(&p.srv) else { return };
    let st = cli.ok(Some(&root), &["operator", "rekey", "-status"]).await;
    assert_eq!(row(&st, "Started"), Some("false"), "{st}");
    let init = cli
        .json(
            Some(&root),
            &["operator", "rekey"],
            &["-init", "-key-shares=3", "-key-threshold=2"],
        )
        .await;
    let nonce = init["nonce"].as_str().unwrap().to_string();
    assert_eq!(init["t"], 2);
    let nonce_flag = format!("-nonce={nonce}");
    cli.ok(Some(&root), &["operator", "rekey", &nonce_flag, &old[2]])
        .await;
    let done = cli
        .json(Some(&root), &["operator", "rekey"], &[&nonce_flag, &old[0]])
        .await;
    assert_eq!(done["complete"], true, "{done}");
    let new = strings(&done["keys_base64"]);
    assert_eq!(new.len(), 3);

    // Restart from disk: the new configuration and keyring were persisted.
    p.stop().await;
    let p = OpServer::start(Some(dir.path()), false).await;
    let cli = Cli::new(&p.srv).unwrap();
    cli.ok(None, &["operator", "unseal", &old[0]]).await;
    let o = cli.run(None, &["operator", "unseal", &old[1]], None).await;
    assert_ne!(o.code, 0, "the old keys must be refused: {}", o.stdout);
    assert!(
        o.stderr.contains("message authentication failed"),
        "{}",
        o.stderr
    );
    assert!(p.sealed().await);
    cli.ok(None, &["operator", "unseal", &new[2]]).await;
    let out = cli.ok(None, &["operator", "unseal", &new[0]]).await;
    assert_eq!(row(&out, "Sealed"), Some("false"), "{out}");
    let r = p.srv.get("kv/db", &root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["user"], "app");
    p.stop().await;
}

#[tokio::test]
async fn cli_rekey_with_verification_and_cancel() {
    let mut p = OpServer::start(None, false).await;
    let old = p.init_unsealed(1, 1).await;
    let root = p.srv.root.clone();
    let Some(cli) = Cli::new(&p.srv) else { return };
    // Cancel an attempt.
    cli.ok(
        Some(&root),
        &[
            "operator",
            "rekey",
            "-init",
            "-key-shares=1",
            "-key-threshold=1",
        ],
    )
    .await;
    cli.ok(Some(&root), &["operator", "rekey", "-cancel"]).await;
    let st = cli.ok(Some(&root), &["operator", "rekey", "-status"]).await;
    assert_eq!(row(&st, "Started"), Some("false"), "{st}");

    let init = cli
        .json(
            Some(&root),
            &["operator", "rekey"],
            &["-init", "-key-shares=2", "-key-threshold=2", "-verify"],
        )
        .await;
    assert_eq!(init["verification_required"], true);
    let nonce = init["nonce"].as_str().unwrap().to_string();
    let done = cli
        .json(
            Some(&root),
            &["operator", "rekey"],
            &[&format!("-nonce={nonce}"), &old[0]],
        )
        .await;
    let new = strings(&done["keys_base64"]);
    let vnonce = done["verification_nonce"].as_str().unwrap().to_string();
    let st = cli
        .ok(Some(&root), &["operator", "rekey", "-status", "-verify"])
        .await;
    assert_eq!(
        row(&st, "Verification Nonce"),
        Some(vnonce.as_str()),
        "{st}"
    );
    assert_eq!(row(&st, "Verification Progress"), Some("0/2"), "{st}");
    // -cancel -verify restarts verification with a fresh nonce.
    cli.ok(Some(&root), &["operator", "rekey", "-cancel", "-verify"])
        .await;
    let v = p.srv.get("sys/rekey/verify", &root).await;
    let vnonce = v.body["nonce"].as_str().unwrap().to_string();
    for k in &new {
        cli.ok(
            Some(&root),
            &[
                "operator",
                "rekey",
                "-verify",
                &format!("-nonce={vnonce}"),
                k,
            ],
        )
        .await;
    }
    let status = p.srv.req("GET", "sys/seal-status", None, None).await;
    assert_eq!(
        (status.body["t"].clone(), status.body["n"].clone()),
        (json!(2), json!(2))
    );
    p.seal().await;
    p.unseal(&old[0]).await.assert_status(200);
    p.unseal(&new[0]).await.assert_status(400);
    assert!(p.sealed().await);
    p.unseal(&new[0]).await.assert_status(200);
    p.unseal(&new[1]).await.assert_status(200);
    assert!(!p.sealed().await);
    p.stop().await;
}

#[tokio::test]
async fn cli_generate_root_otp_flow_and_decode() {
    let mut p = OpServer::start(None, false).await;
    let keys = p.init_unsealed(3, 2).await;
    let root = p.srv.root.clone();
    let Some(cli) = Cli::new(&p.srv) else { return };
    let st = cli
        .ok(Some(&root), &["operator", "generate-root", "-status"])
        .await;
    assert_eq!(row(&st, "OTP Length"), Some("28"), "{st}");
    // -generate-otp prints an OTP of the right length.
    let generated = cli
        .ok(Some(&root), &["operator", "generate-root", "-generate-otp"])
        .await;
    assert_eq!(generated.trim().len(), 28, "{generated}");
    // A cancelled attempt.
    cli.ok(Some(&root), &["operator", "generate-root", "-init"])
        .await;
    cli.ok(Some(&root), &["operator", "generate-root", "-cancel"])
        .await;
    // The real one, with a server-drawn OTP.
    let init = cli
        .json(Some(&root), &["operator", "generate-root"], &["-init"])
        .await;
    let otp = init["otp"].as_str().unwrap().to_string();
    let nonce = init["nonce"].as_str().unwrap().to_string();
    assert_eq!(otp.len(), 28);
    cli.ok(
        Some(&root),
        &[
            "operator",
            "generate-root",
            &format!("-nonce={nonce}"),
            &keys[0],
        ],
    )
    .await;
    let done = cli
        .json(
            Some(&root),
            &["operator", "generate-root"],
            &[&format!("-nonce={nonce}"), &keys[2]],
        )
        .await;
    assert_eq!(done["complete"], true, "{done}");
    let encoded = done["encoded_token"].as_str().unwrap().to_string();
    let decoded = cli
        .ok(
            Some(&root),
            &[
                "operator",
                "generate-root",
                &format!("-decode={encoded}"),
                &format!("-otp={otp}"),
            ],
        )
        .await;
    let token = decoded.trim().to_string();
    assert!(token.starts_with("hvs."), "{decoded}");
    let o = cli
        .run(
            Some(&token),
            &["policy", "write", "from-generated-root", "-"],
            Some(r#"path "y/*" { capabilities = ["read"] }"#),
        )
        .await;
    assert_eq!(o.code, 0, "{} {}", o.stdout, o.stderr);
    p.stop().await;
}

/// OpenBao's newer `operator rotate-keys` (`sys/rotate/root/*`, enveloped) is the same rekey.
#[tokio::test]
async fn cli_rotate_keys_is_openbaos_rekey() {
    let mut p = OpServer::start(None, false).await;
    let old = p.init_unsealed(1, 1).await;
    let root = p.srv.root.clone();
    let Some(cli) = Cli::new(&p.srv) else { return };
    let st = cli
        .ok(Some(&root), &["operator", "rotate-keys", "-status"])
        .await;
    assert_eq!(row(&st, "Started"), Some("false"), "{st}");
    let init = cli
        .json(
            Some(&root),
            &["operator", "rotate-keys"],
            &["-init", "-key-shares=1", "-key-threshold=1"],
        )
        .await;
    let nonce = init["nonce"].as_str().unwrap().to_string();
    let done = cli
        .json(
            Some(&root),
            &["operator", "rotate-keys"],
            &[&format!("-nonce={nonce}"), &old[0]],
        )
        .await;
    assert_eq!(done["complete"], true, "{done}");
    let new = strings(&done["keys_base64"]);
    p.seal().await;
    p.unseal(&old[0]).await.assert_status(400);
    p.unseal(&new[0]).await.assert_status(200);
    p.stop().await;
}

/// Many concurrent submissions of the completing key: exactly one rekey and one root token happen,
/// the others are refused, and the one set of new keys returned is the one that unseals.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_completions_happen_exactly_once() {
    let mut p = OpServer::start(None, false).await;
    let mut old = p.init_unsealed(1, 1).await;
    let root = p.srv.root.clone();
    // A request that can be sent from a spawned task.
    let send = |path: &str, body: Value| {
        let rb = p
            .srv
            .client
            .put(p.srv.url(path))
            .header("X-Vault-Token", root.clone())
            .body(body.to_string());
        tokio::spawn(TestServer::finish(rb))
    };
    for round in 0..5 {
        let s = &p.srv;
        // Root generation.
        let r = s
            .put("sys/generate-root-token/attempt", &s.root, json!({}))
            .await;
        r.assert_status(200);
        let nonce = r.body["data"]["nonce"].as_str().unwrap().to_string();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            tasks.push(send(
                "sys/generate-root-token/update",
                json!({"key": old[0], "nonce": nonce}),
            ));
        }
        let mut done = 0;
        for t in tasks {
            let r = t.await.unwrap();
            if r.status == 200 {
                assert_eq!(r.body["data"]["complete"], true);
                done += 1;
            } else {
                assert_eq!(
                    err(&r, 400),
                    "no root generation in progress",
                    "round {round}"
                );
            }
        }
        assert_eq!(done, 1, "round {round}");

        // Rekey.
        let r = s
            .put(
                "sys/rekey/init",
                &s.root,
                json!({"secret_shares": 1, "secret_threshold": 1}),
            )
            .await;
        r.assert_status(200);
        let nonce = r.body["nonce"].as_str().unwrap().to_string();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            tasks.push(send(
                "sys/rekey/update",
                json!({"key": old[0], "nonce": nonce}),
            ));
        }
        let mut new = Vec::new();
        for t in tasks {
            let r = t.await.unwrap();
            if r.status == 200 {
                new.push(strings(&r.body["keys_base64"]));
            } else {
                assert_eq!(
                    err(&r, 400),
                    "no barrier rekey in progress",
                    "round {round}"
                );
            }
        }
        assert_eq!(new.len(), 1, "round {round}");
        p.seal().await;
        p.unseal(&old[0]).await.assert_status(400);
        p.unseal(&new[0][0]).await.assert_status(200);
        old.clone_from(&new[0]);
    }
    p.stop().await;
}

/// `PUT sys/rekey/init` for one share, without a token.
async fn unauthed_rekey_init(s: &TestServer) -> Resp {
    s.req(
        "PUT",
        "sys/rekey/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await
}

/// A one-share rekey through the unauthenticated endpoints with the unseal key `key`: the
/// nonce and the final update's answer.
async fn unauthed_rekey(s: &TestServer, key: &str) -> (String, Resp) {
    let r = unauthed_rekey_init(s).await;
    r.assert_status(200);
    let nonce = r.body["nonce"].as_str().unwrap().to_string();
    let r = s
        .req(
            "PUT",
            "sys/rekey/update",
            None,
            Some(json!({"key": key, "nonce": nonce})),
        )
        .await;
    r.assert_status(200);
    (nonce, r)
}

/// With Vault's unauthenticated rekey and generate-root endpoints, each call is audited as
/// Vault's `handleAuditNonLogical` does: a request and a response entry, the unseal key, nonce
/// and new keys only as HMACs; when no device takes the request entry the call is refused
/// before it runs. Before, these calls left no entry at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_operator_endpoints_are_audited() {
    let mut p = OpServer::start_with(None, true, |c| {
        c.unsafe_allow_api_audit_creation = Some(true);
    })
    .await;
    let old = p.init_unsealed(1, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    let s = &p.srv;
    s.put(
        "sys/audit/f",
        &s.root,
        json!({"type": "file", "options": {"file_path": log}}),
    )
    .await
    .assert_status(204);
    let (nonce, r) = unauthed_rekey(s, &old[0]).await;
    let new_key = r.body["keys_base64"][0].as_str().unwrap().to_string();
    s.req("GET", "sys/generate-root/attempt", None, None)
        .await
        .assert_status(200);
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [&old[0], &new_key, &nonce] {
        assert!(
            !text.contains(secret.as_str()),
            "plaintext {secret} in {text}"
        );
    }
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |path: &str| -> Vec<&Value> {
        entries
            .iter()
            .filter(|e| e["request"]["path"] == path)
            .collect()
    };
    for path in [
        "sys/rekey/init",
        "sys/rekey/update",
        "sys/generate-root/attempt",
    ] {
        let both = of(path);
        let types: Vec<&str> = both.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["request", "response"], "{path}");
        assert_eq!(both[0]["request"]["id"], both[1]["request"]["id"]);
    }
    let update = of("sys/rekey/update");
    assert!(
        update[0]["request"]["data"]["key"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert!(
        update[1]["response"]["data"]["keys_base64"][0]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:"),
        "{}",
        update[1]
    );

    // Only a device that fails every write: the call is refused and does not run.
    s.put(
        "sys/audit/full",
        &s.root,
        json!({"type": "file", "options": {"file_path": "/dev/full", "skip_test": "true"}}),
    )
    .await
    .assert_status(204);
    s.delete("sys/audit/f", &s.root).await.assert_status(204);
    unauthed_rekey_init(s).await.assert_status(500);
    s.delete("sys/audit/full", &s.root).await.assert_status(204);
    let r = s.req("GET", "sys/rekey/init", None, None).await;
    r.assert_status(200);
    assert_eq!(r.body["started"], false, "the refused call ran: {}", r.text);
    p.stop().await;
}
