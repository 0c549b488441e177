//! init → unseal → the guide → stop → start → unseal → every object intact.

use serde_json::{Value, json};
use std::time::Duration;

use super::{ProdServer, all_bytes, contains};
use coffer::clock::MockClock;

#[tokio::test]
async fn everything_survives_a_restart_and_nothing_is_stored_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new();
    let p = ProdServer::start(dir.path(), clock.clone()).await;
    let (keys, _, root) = p.init(5, 3).await;
    for k in &keys[..3] {
        p.unseal(k).await.assert_status(200);
    }
    let s = &p.srv;

    // The guide's setup.
    s.post("sys/auth/approle", &root, json!({"type": "approle"}))
        .await
        .assert_status(204);
    s.post("sys/mounts/secret", &root, json!({"type": "kv-v2"}))
        .await
        .assert_status(204);
    s.write_policy_as(
        &root,
        "jenkins",
        "path \"secret/data/mysql/*\" { capabilities = [\"read\"] }",
    )
    .await;
    s.put("auth/approle/role/jenkins", &root, json!({"token_policies": "jenkins", "token_ttl": "1h", "token_max_ttl": "4h", "secret_id_num_uses": "10"}))
        .await
        .assert_status(204);
    let role_id = s.get("auth/approle/role/jenkins/role-id", &root).await.body["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let sid = s
        .put("auth/approle/role/jenkins/secret-id", &root, Value::Null)
        .await
        .body["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    let login = s
        .put(
            "auth/approle/login",
            "",
            json!({"role_id": role_id, "secret_id": sid}),
        )
        .await;
    login.assert_status(200);
    let app_token = login.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_value = "pa$$w0rd-plaintext-canary";
    for v in ["first", secret_value] {
        s.put(
            "secret/data/mysql/webapp",
            &root,
            json!({"data": {"password": v}}),
        )
        .await
        .assert_status(200);
    }
    s.post(
        "cubbyhole/note",
        &app_token,
        json!({"cubby": "cubbyhole-canary"}),
    )
    .await
    .assert_status(204);
    let wrapped = {
        let rb = s
            .client
            .put(s.url("sys/wrapping/wrap"))
            .header("X-Vault-Token", &root)
            .header("X-Vault-Wrap-TTL", "1h")
            .body(json!({"wrapped": "wrap-canary"}).to_string());
        crate::common::TestServer::finish(rb).await.body["wrap_info"]["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let child = s
        .token_with_as(&root, &["default"], json!({"ttl": "30m"}))
        .await;

    // Nothing secret is readable in the data directory.
    let bytes = all_bytes(dir.path());
    for canary in [
        secret_value,
        "cubbyhole-canary",
        "wrap-canary",
        &app_token,
        &root,
        &sid,
        &wrapped,
        &child,
        &role_id,
    ] {
        assert!(
            !contains(&bytes, canary),
            "plaintext {canary:?} found on disk"
        );
    }

    p.stop().await;
    let p = ProdServer::start(dir.path(), clock.clone()).await;
    let s = &p.srv;
    assert_eq!(
        s.req("GET", "sys/seal-status", None, None).await.body["sealed"],
        true
    );
    s.get("auth/token/lookup-self", &root)
        .await
        .assert_status(503);
    for k in &keys[2..5] {
        p.unseal(k).await.assert_status(200);
    }

    // Mounts, policies, role, secret-id (with its remaining uses), tokens, kv versions, cubbyhole, wrapping.
    let mounts = s.get("sys/mounts", &root).await;
    assert_eq!(mounts.body["data"]["secret/"]["options"]["version"], "2");
    assert!(s.get("sys/auth", &root).await.body["data"]["approle/"].is_object());
    assert!(
        s.get("sys/policies/acl/jenkins", &root).await.body["data"]["policy"]
            .as_str()
            .unwrap()
            .contains("mysql")
    );
    let role = s.get("auth/approle/role/jenkins", &root).await;
    assert_eq!(role.body["data"]["token_ttl"], 3600);
    assert_eq!(role.body["data"]["secret_id_num_uses"], 10);
    let look = s
        .post(
            "auth/approle/role/jenkins/secret-id/lookup",
            &root,
            json!({"secret_id": sid}),
        )
        .await;
    assert_eq!(look.body["data"]["secret_id_num_uses"], 9);
    let me = s.get("auth/token/lookup-self", &app_token).await;
    me.assert_status(200);
    assert_eq!(me.body["data"]["meta"]["role_name"], "jenkins");
    let read = s.get("secret/data/mysql/webapp", &app_token).await;
    assert_eq!(read.body["data"]["data"]["password"], secret_value);
    assert_eq!(read.body["data"]["metadata"]["version"], 2);
    assert_eq!(
        s.get("secret/data/mysql/webapp?version=1", &root)
            .await
            .body["data"]["data"]["password"],
        "first"
    );
    assert_eq!(
        s.get("cubbyhole/note", &app_token).await.body["data"]["cubby"],
        "cubbyhole-canary"
    );
    let un = s.put("sys/wrapping/unwrap", &wrapped, Value::Null).await;
    assert_eq!(un.body["data"]["wrapped"], "wrap-canary");
    s.get("auth/token/lookup-self", &child)
        .await
        .assert_status(200);
    let again = s
        .put(
            "auth/approle/login",
            "",
            json!({"role_id": role_id, "secret_id": sid}),
        )
        .await;
    again.assert_status(200);
    p.stop().await;

    // Expiry survives restarts: 31 minutes later the child is gone, the 1h app token not yet.
    clock.advance(Duration::from_secs(31 * 60));
    let p = ProdServer::start(dir.path(), clock.clone()).await;
    for k in &keys[..3] {
        p.unseal(k).await;
    }
    let s = &p.srv;
    s.get("auth/token/lookup-self", &child)
        .await
        .assert_status(403);
    s.get("auth/token/lookup-self", &app_token)
        .await
        .assert_status(200);
    assert!(p.srv.core.sweep_expired(100).await.unwrap() >= 1);
    clock.advance(Duration::from_secs(30 * 60));
    s.get("auth/token/lookup-self", &app_token)
        .await
        .assert_status(403);
    p.stop().await;
}
