//! sys endpoints: mounts, auth, tune, health, seal-status, leader and the kv preflight.

use serde_json::{Value, json};

use crate::common::{Resp, TestServer};

fn assert_mount_entry(v: &Value, kind: &str) {
    assert_eq!(v["type"], kind);
    assert!(v["accessor"].as_str().unwrap().starts_with(&format!(
        "{}_",
        if kind == "token" { "auth_token" } else { kind }
    )));
    assert!(v["uuid"].is_string());
    assert!(
        v["local"].is_boolean()
            && v["seal_wrap"].is_boolean()
            && v["external_entropy_access"].is_boolean()
    );
    assert!(v["config"]["default_lease_ttl"].is_i64() && v["config"]["max_lease_ttl"].is_i64());
    assert!(v["options"].is_null() || v["options"].is_object());
}

#[tokio::test]
async fn mounts_list_contains_only_mount_entries() {
    let srv = TestServer::start().await;
    let r = srv.get("sys/mounts", &srv.root).await;
    r.assert_status(200);
    let data = r.body["data"].as_object().unwrap();
    for (path, kind) in [
        ("cubbyhole/", "cubbyhole"),
        ("identity/", "identity"),
        ("sys/", "system"),
    ] {
        assert_mount_entry(&data[path], kind);
    }
    for (k, v) in data {
        assert!(k.ends_with('/') && v.is_object(), "{k}");
    }
    // Vault also injects the entries at the top level.
    assert!(r.body["sys/"].is_object());
    let r = srv.get("sys/auth", &srv.root).await;
    r.assert_status(200);
    let token = &r.body["data"]["token/"];
    assert_mount_entry(token, "token");
    assert_eq!(token["config"]["token_type"], "default-service");
}

#[tokio::test]
async fn enabling_bad_types_and_disabling_builtins_fail() {
    let srv = TestServer::start().await;
    let r = srv
        .post("sys/mounts/x", &srv.root, json!({"type": "nope"}))
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["plugin not found in the catalog: nope"]);
    let r = srv.post("sys/mounts/x", &srv.root, json!({})).await;
    r.assert_status(400);
    let r = srv
        .post("sys/mounts/auth/foo", &srv.root, json!({"type": "kv"}))
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["cannot mount \"auth/foo/\""]);
    let r = srv
        .post(
            "sys/mounts/x",
            &srv.root,
            json!({"type": "cubbyhole", "options": {"version": "2"}}),
        )
        .await;
    r.assert_status(400);
    let r = srv.delete("sys/mounts/sys", &srv.root).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["cannot unmount \"sys/\""]);
    srv.delete("sys/auth/token", &srv.root)
        .await
        .assert_status(400);
    srv.delete("sys/mounts/nonexistent", &srv.root)
        .await
        .assert_status(204);
    let r = srv
        .post(
            "sys/mounts/cubbyhole",
            &srv.root,
            json!({"type": "cubbyhole"}),
        )
        .await;
    r.assert_status(400);
    // Nothing changed.
    let keys: Vec<String> = srv.get("sys/mounts", &srv.root).await.body["data"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(!keys.contains(&"x/".to_string()));
}

#[tokio::test]
async fn tune_reads_and_writes_ttls() {
    let srv = TestServer::start().await;
    let r = srv.get("sys/mounts/cubbyhole/tune", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["default_lease_ttl"], 2_764_800);
    assert_eq!(r.body["data"]["max_lease_ttl"], 2_764_800);
    srv.post(
        "sys/mounts/cubbyhole/tune",
        &srv.root,
        json!({"default_lease_ttl": "1h", "max_lease_ttl": "2h"}),
    )
    .await
    .assert_status(204);
    let r = srv.get("sys/mounts/cubbyhole/tune", &srv.root).await;
    assert_eq!(r.body["data"]["default_lease_ttl"], 3600);
    assert_eq!(r.body["data"]["max_lease_ttl"], 7200);
    assert_eq!(
        srv.get("sys/mounts", &srv.root).await.body["data"]["cubbyhole/"]["config"]["default_lease_ttl"],
        3600
    );
    // Invalid tunes change nothing; the messages are Vault's (compared with OpenBao 2.7.2).
    let r = srv
        .post(
            "sys/mounts/cubbyhole/tune",
            &srv.root,
            json!({"default_lease_ttl": "3h"}),
        )
        .await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        ["backend max lease TTL of 7200 would be less than backend default lease TTL of 10800"]
    );
    srv.post(
        "sys/mounts/cubbyhole/tune",
        &srv.root,
        json!({"max_lease_ttl": "bogus"}),
    )
    .await
    .assert_status(400);
    assert_eq!(
        srv.get("sys/mounts/cubbyhole/tune", &srv.root).await.body["data"]["default_lease_ttl"],
        3600
    );
    let r = srv.get("sys/auth/nope/tune", &srv.root).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["cannot fetch sysview for path \"auth/nope/\""]);
    // A maximum above the system's is the mount's own limit, as in Vault.
    srv.post(
        "sys/mounts/cubbyhole/tune",
        &srv.root,
        json!({"max_lease_ttl": "2000000h"}),
    )
    .await
    .assert_status(204);
    assert_eq!(
        srv.get("sys/mounts/cubbyhole/tune", &srv.root).await.body["data"]["max_lease_ttl"],
        7_200_000_000_i64
    );
    // Enabling checks the default against the given maximum, else the system's.
    for (config, msg) in [
        (
            json!({"default_lease_ttl": "2h", "max_lease_ttl": "1h"}),
            "given default lease TTL greater than given max lease TTL".to_string(),
        ),
        (
            json!({"default_lease_ttl": "2000000h"}),
            "given default lease TTL greater than system max lease TTL of 2764800".to_string(),
        ),
    ] {
        let r = srv
            .post(
                "sys/mounts/ttl",
                &srv.root,
                json!({"type": "kv", "config": config}),
            )
            .await;
        r.assert_status(400);
        assert_eq!(r.errors(), [msg]);
    }
    assert!(
        srv.get("sys/mounts", &srv.root).await.body["data"]
            .get("ttl/")
            .is_none()
    );
    // Auth mount tune affects token TTLs issued by the token store.
    srv.post(
        "sys/auth/token/tune",
        &srv.root,
        json!({"default_lease_ttl": "10m"}),
    )
    .await
    .assert_status(204);
    let r = srv
        .post(
            "auth/token/create",
            &srv.root,
            json!({"policies": ["default"]}),
        )
        .await;
    assert_eq!(r.body["auth"]["lease_duration"], 600);
}

#[tokio::test]
async fn health_seal_status_and_leader() {
    let srv = TestServer::start().await;
    let r = srv.req("GET", "sys/health", None, None).await;
    r.assert_status(200);
    for key in [
        "initialized",
        "sealed",
        "standby",
        "performance_standby",
        "replication_performance_mode",
        "replication_dr_mode",
        "server_time_utc",
        "version",
        "cluster_name",
        "cluster_id",
    ] {
        assert!(r.body.get(key).is_some(), "{key}");
    }
    assert_eq!(r.body["sealed"], false);
    srv.req("GET", "sys/health?activecode=299", None, None)
        .await
        .assert_status(299);
    srv.req("HEAD", "sys/health", None, None)
        .await
        .assert_status(200);
    let r = srv.req("GET", "sys/seal-status", None, None).await;
    r.assert_status(200);
    assert_eq!(r.body["type"], "shamir");
    assert_eq!(r.body["initialized"], true);
    assert_eq!(r.body["sealed"], false);
    assert!(r.body["t"].is_i64() && r.body["n"].is_i64() && r.body["progress"].is_i64());
    let r = srv.req("GET", "sys/leader", None, None).await;
    r.assert_status(200);
    assert_eq!(r.body["ha_enabled"], false);
    assert_eq!(r.body["active_time"], "0001-01-01T00:00:00Z");
    let r = srv.req("GET", "sys/init", None, None).await;
    assert_eq!(r.body, json!({"initialized": true}));
}

/// `sys/health`'s code parameters as Vault reads them: each one present must be an integer
/// (else 400 `{"errors":[]}`, OpenBao 2.7.2's answer), `+250` is one; a code that is no final
/// HTTP status is refused (Vault's server drops the connection) instead of answered with 200,
/// which made a sealed node asked with `?sealedcode=42` look healthy.
#[tokio::test]
async fn health_code_parameters_are_checked_like_vault() {
    let srv = TestServer::start().await;
    let health = async |q: &str| srv.req("GET", &format!("sys/health?{q}"), None, None).await;
    for q in [
        "sealedcode=abc",
        "activecode=abc",
        "standbycode=x",
        "activecode=0x10",
    ] {
        let r = health(q).await;
        r.assert_status(400);
        assert_eq!(r.body, json!({"errors": []}), "{q}");
    }
    health("activecode=%2B250").await.assert_status(250);
    for q in [
        "activecode=42",
        "activecode=1000",
        "activecode=-5",
        "activecode=100",
    ] {
        let r = health(q).await;
        r.assert_status(400);
        assert!(r.errors()[0].starts_with("activecode: "), "{q}: {}", r.text);
    }
    srv.put("sys/seal", &srv.root, json!({}))
        .await
        .assert_status(204);
    health("").await.assert_status(503);
    health("sealedcode=299").await.assert_status(299);
    let r = health("sealedcode=42").await;
    assert_eq!(r.status.as_u16(), 400, "a sealed node answered {}", r.text);
    // A parameter that does not apply now is checked too.
    health("sealedcode=299&activecode=abc")
        .await
        .assert_status(400);
}

#[tokio::test]
async fn kv_preflight_follows_vaults_authorisation_rule() {
    let srv = TestServer::start().await;
    let r = srv
        .get("sys/internal/ui/mounts/cubbyhole/some/path", &srv.root)
        .await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["path"], "cubbyhole/");
    assert_eq!(r.body["data"]["type"], "cubbyhole");
    // Same answer on the mounts-all alias.
    let r = srv
        .get("sys/mounts-all/cubbyhole/some/path", &srv.root)
        .await;
    assert_eq!(r.body["data"]["path"], "cubbyhole/");
    // No token, or a bad one: plain permission denied.
    let r = srv
        .req("GET", "sys/internal/ui/mounts/cubbyhole/x", None, None)
        .await;
    r.assert_status(403);
    assert_eq!(r.errors(), ["permission denied"]);
    // A token with no rule below the mount: the preflight message.
    srv.write_policy("other", "path \"sys/mounts\" { capabilities = [\"read\"] }")
        .await;
    let t = srv
        .token_with(&["other"], json!({"no_default_policy": true}))
        .await;
    let r = srv.get("sys/internal/ui/mounts/cubbyhole/x", &t).await;
    r.assert_status(403);
    assert_eq!(
        r.errors(),
        [
            "preflight capability check returned 403, please ensure client's policies grant access to path \"cubbyhole/x/\""
        ]
    );
    // A rule deep below the mount is enough.
    srv.write_policy(
        "deep",
        "path \"cubbyhole/mysql/*\" { capabilities = [\"read\"] }",
    )
    .await;
    let t = srv
        .token_with(&["deep"], json!({"no_default_policy": true}))
        .await;
    srv.get("sys/internal/ui/mounts/cubbyhole/x", &t)
        .await
        .assert_status(200);
    // Unknown mounts answer 403, never 404.
    let r = srv
        .get("sys/internal/ui/mounts/nomount/foo", &srv.root)
        .await;
    r.assert_status(403);
}

/// `GET sys/mounts/<path>` and `sys/auth/<path>` read one mount, its fields also at the top
/// level as everything under those routes carries them in Vault; a missing mount is Vault's
/// 400 (compared with OpenBao 2.7.2).
#[tokio::test]
async fn reading_one_mount_as_vault() {
    let srv = TestServer::start().await;
    for (path, kind) in [("sys/mounts/secret", "kv"), ("sys/auth/token", "token")] {
        let r = srv.get(path, &srv.root).await;
        r.assert_status(200);
        assert_eq!(r.body["data"]["type"], kind, "{path}");
        assert_eq!(r.body["type"], kind, "{path}");
        assert_eq!(r.body["accessor"], r.body["data"]["accessor"], "{path}");
    }
    for (path, msg) in [
        ("sys/mounts/nope", "No secret engine mount at nope/"),
        ("sys/auth/nope", "No auth engine at nope/"),
    ] {
        let r = srv.get(path, &srv.root).await;
        r.assert_status(400);
        assert_eq!(r.errors(), [msg], "{path}");
    }
}

/// Tuning a mount's options as Vault does (compared with OpenBao 2.7.2): the version must
/// parse and be 1 or 2 and may not go down, each refusal changing nothing; the other options
/// are merged into the mount's, an empty value removing one. Before, any version was stored
/// and the given options replaced the mount's.
#[tokio::test]
async fn tuning_mount_options_as_vault() {
    let srv = TestServer::start().await;
    srv.post("sys/mounts/kv1", &srv.root, json!({"type": "kv"}))
        .await
        .assert_status(204);
    let options =
        async || srv.get("sys/mounts", &srv.root).await.body["data"]["kv1/"]["options"].clone();
    let before = options().await;
    for (given, msg) in [
        (json!({"version": "3"}), "invalid version provided: 3"),
        (
            json!({"version": "x"}),
            "unable to parse options: strconv.ParseInt: parsing \"x\": invalid syntax",
        ),
    ] {
        let r = tune(&srv, given).await;
        r.assert_status(400);
        assert_eq!(r.errors(), [msg]);
        assert_eq!(options().await, before);
    }
    tune(&srv, json!({"foo": "bar"})).await.assert_status(204);
    let r = tune(&srv, json!({"version": "2"})).await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!([
            "Upgrading mount from version 1 to version 2. This mount will be unavailable for a brief period and will resume service shortly."
        ])
    );
    assert_eq!(options().await, json!({"foo": "bar", "version": "2"}));
    tune(&srv, json!({"foo": ""})).await.assert_status(204);
    assert_eq!(options().await, json!({"version": "2"}));
    let r = tune(&srv, json!({"version": "1"})).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["cannot downgrade mount from version 2"]);
    assert_eq!(options().await, json!({"version": "2"}));
}

/// Tunes the options of the `kv1/` mount.
async fn tune(srv: &TestServer, options: Value) -> Resp {
    srv.post(
        "sys/mounts/kv1/tune",
        &srv.root,
        json!({ "options": options }),
    )
    .await
}
