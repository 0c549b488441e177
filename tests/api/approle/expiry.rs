//! Expiry with the injectable clock (no sleeps): secret-id TTLs are enforced at login (stricter
//! than Vault, which waits for tidy), tokens stop working at their TTL, tidy removes the rest.

use serde_json::json;
use std::time::Duration;

use super::{assert_error, login, lookup};

#[tokio::test]
async fn secret_id_ttl_is_enforced_at_login() {
    let srv = super::server().await;
    let role_id = super::role(&srv, "approle", "ci", json!({"secret_id_ttl": "10m"})).await;
    let data = super::secret_id(&srv, "approle", "ci", json!(null)).await;
    assert_eq!(data["secret_id_ttl"], 600);
    let secret = data["secret_id"].as_str().unwrap();
    let short = super::secret_id(&srv, "approle", "ci", json!({"ttl": "1m"})).await;
    assert_eq!(short["secret_id_ttl"], 60);
    let short = short["secret_id"].as_str().unwrap();

    // Lookup shows creation + TTL as the expiration time.
    let l = lookup(&srv, "approle", "ci", secret).await;
    l.assert_status(200);
    let created =
        humantime::parse_rfc3339(l.body["data"]["creation_time"].as_str().unwrap()).unwrap();
    let expires =
        humantime::parse_rfc3339(l.body["data"]["expiration_time"].as_str().unwrap()).unwrap();
    assert_eq!(
        expires.duration_since(created).unwrap(),
        Duration::from_secs(600)
    );

    srv.clock.advance(Duration::from_secs(61));
    assert_error(
        &login(&srv, "approle", &role_id, short).await,
        400,
        "invalid role or secret ID",
    );
    // An expired secret id is removed when it is presented, as tidy would have done.
    lookup(&srv, "approle", "ci", short)
        .await
        .assert_status(204);
    login(&srv, "approle", &role_id, secret)
        .await
        .assert_status(200);

    srv.clock.advance(Duration::from_secs(540));
    assert_error(
        &login(&srv, "approle", &role_id, secret).await,
        400,
        "invalid role or secret ID",
    );
}

#[tokio::test]
async fn unlimited_secret_id_has_zero_expiration_time() {
    let srv = super::server().await;
    super::role(&srv, "approle", "ci", json!({})).await;
    let data = super::secret_id(&srv, "approle", "ci", json!(null)).await;
    let l = lookup(&srv, "approle", "ci", data["secret_id"].as_str().unwrap()).await;
    assert_eq!(l.body["data"]["expiration_time"], "0001-01-01T00:00:00Z");
    assert_eq!(l.body["data"]["secret_id_ttl"], 0);
}

#[tokio::test]
async fn token_ttl_expiry_gives_403() {
    let srv = super::server().await;
    let role_id = super::role(
        &srv,
        "approle",
        "ci",
        json!({"token_ttl": "5m", "token_max_ttl": "10m"}),
    )
    .await;
    let secret = super::secret_id(&srv, "approle", "ci", json!(null)).await;
    let r = login(
        &srv,
        "approle",
        &role_id,
        secret["secret_id"].as_str().unwrap(),
    )
    .await;
    r.assert_status(200);
    assert_eq!(r.body["auth"]["lease_duration"], 300);
    let token = r.body["auth"]["client_token"].as_str().unwrap().to_string();
    srv.get("auth/token/lookup-self", &token)
        .await
        .assert_status(200);

    srv.clock.advance(Duration::from_secs(301));
    assert_error(
        &srv.get("auth/token/lookup-self", &token).await,
        403,
        "permission denied",
    );
}

#[tokio::test]
async fn default_token_ttl_is_the_mount_default() {
    let srv = super::server().await;
    let role_id = super::role(&srv, "approle", "ci", json!({})).await;
    let secret = super::secret_id(&srv, "approle", "ci", json!(null)).await;
    let r = login(
        &srv,
        "approle",
        &role_id,
        secret["secret_id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(r.body["auth"]["lease_duration"], 2_764_800);
}

#[tokio::test]
async fn tidy_removes_expired_secret_ids() {
    let srv = super::server().await;
    super::role(&srv, "approle", "ci", json!({})).await;
    let keep = super::secret_id(&srv, "approle", "ci", json!(null)).await;
    let gone = super::secret_id(&srv, "approle", "ci", json!({"ttl": "30s"})).await;
    let r = srv.list("auth/approle/role/ci/secret-id", &srv.root).await;
    assert_eq!(r.body["data"]["keys"].as_array().unwrap().len(), 2);

    srv.clock.advance(Duration::from_secs(31));
    let r = srv
        .put("auth/approle/tidy/secret-id", &srv.root, json!(null))
        .await;
    r.assert_status(202);
    assert_eq!(
        r.body["warnings"],
        json!([
            "Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs."
        ])
    );
    let r = srv.list("auth/approle/role/ci/secret-id", &srv.root).await;
    assert_eq!(r.body["data"]["keys"], json!([keep["secret_id_accessor"]]));
    let r = srv
        .put(
            "auth/approle/role/ci/secret-id-accessor/lookup",
            &srv.root,
            json!({"secret_id_accessor": gone["secret_id_accessor"]}),
        )
        .await;
    r.assert_status(404);
}

#[tokio::test]
async fn secret_id_ttl_is_capped_by_the_mount_max() {
    let srv = super::server().await;
    srv.put(
        "sys/auth/approle/tune",
        &srv.root,
        json!({"max_lease_ttl": "1h"}),
    )
    .await
    .assert_status(204);
    super::role(&srv, "approle", "ci", json!({"secret_id_ttl": "2h"})).await;
    let data = super::secret_id(&srv, "approle", "ci", json!(null)).await;
    assert_eq!(data["secret_id_ttl"], 3600);
    let l = lookup(&srv, "approle", "ci", data["secret_id"].as_str().unwrap()).await;
    // Lookup shows the TTL as requested; the expiry uses the capped value, as in Vault.
    assert_eq!(l.body["data"]["secret_id_ttl"], 7200);
}

#[tokio::test]
async fn background_housekeeping_removes_expired_secret_ids() {
    let srv = super::server().await;
    super::role(&srv, "approle", "ci", json!({})).await;
    let keep = super::secret_id(&srv, "approle", "ci", json!(null)).await;
    super::secret_id(&srv, "approle", "ci", json!({"ttl": "30s"})).await;
    assert_eq!(
        srv.core.periodic().await.unwrap(),
        0,
        "nothing has expired yet"
    );
    srv.clock.advance(Duration::from_secs(31));
    assert!(srv.core.periodic().await.unwrap() >= 1);
    let r = srv.list("auth/approle/role/ci/secret-id", &srv.root).await;
    assert_eq!(r.body["data"]["keys"], json!([keep["secret_id_accessor"]]));
}
