//! One `withVault` sequence per driver, the "Limit Token Policies" child token, and token uses.

use serde_json::json;
use std::time::Duration;

use super::{
    Driver, JENKINS_POLICY, Java, assert_auth_response, assert_error_body, guide_setup, mysqldb,
    v2_values,
};
use crate::common::TestServer;

/// One `withVault` with an AppRole credential and an uncached token: login, lookup-self, then
/// one read per secret, exactly as §2.1 lists them; then what the token cache sees later.
async fn with_vault_sequence(driver: Driver) {
    let srv = TestServer::start().await;
    let (role_id, secret_id) = guide_setup(&srv).await;
    let java = Java::new(&srv, driver);

    let token = java.login("approle", &role_id, &secret_id).await;
    // The login body the driver parsed, field by field.
    let r = srv.get("auth/token/lookup-self", &token).await;
    assert_eq!(
        r.body["data"]["policies"],
        json!(["default", "jenkins"]),
        "{}",
        r.text
    );

    // The plugin caches the token until now + data.ttl - 10 s.
    assert_eq!(java.lookup_self(&token).await, 3600);

    // withVault(vaultSecrets: [[path: 'secret/mysql/webapp', secretValues: [...]]]), engine 2.
    let r = java.read(&token, "secret/mysql/webapp", 1, 2).await;
    let values = v2_values(&r);
    for key in ["url", "db_name", "username", "password"] {
        assert_eq!(values[key], mysqldb()[key], "vaultKey {key}");
    }
    assert_eq!(r.body["renewable"], json!(false));
    assert!(r.body["lease_duration"].is_i64());
    assert!(r.body["lease_id"].is_string());

    // Denied: "Access denied to Vault path" fails the build (never 401: that is a silent skip).
    let r = java.read(&token, "secret/other/app", 1, 2).await;
    assert_error_body(&r, 403);
    // Vault's ACL denial is a Go multierror.
    assert_eq!(
        r.body["errors"],
        json!(["1 error occurred:\n\t* permission denied\n\n"])
    );

    // Missing (inside the granted path): 404 with `{"errors":[]}` → "credentials not found".
    let r = java.read(&token, "secret/mysql/missing", 1, 2).await;
    assert_error_body(&r, 404);
    assert_eq!(r.body["errors"], json!([]));

    // User error #83: `data/` written into a v2 path becomes `secret/data/data/...`: a clean 4xx,
    // never a redirect or a 5xx (which the plugin would retry for `timeout` seconds).
    let r = java.read(&srv.root, "secret/data/mysql/webapp", 1, 2).await;
    assert_error_body(&r, 404);

    // Ten minutes later the cached token's lookup reports the remaining TTL, not the creation TTL.
    srv.clock.advance(Duration::from_secs(600));
    assert_eq!(java.lookup_self(&token).await, 3000);
    let r = java.read(&token, "secret/mysql/webapp", 1, 2).await;
    assert_eq!(v2_values(&r)["password"], "pa$$w0rd");
    // Someone renews the token (a `vault token renew` in an `sh` step): lookup-self now carries
    // `last_renewal_time`, which the driver parses as a number.
    srv.post("auth/token/renew-self", &token, json!({}))
        .await
        .assert_status(200);
    assert_eq!(java.lookup_self(&token).await, 3600);
    let r = srv.get("auth/token/lookup-self", &token).await;
    assert!(r.body["data"]["last_renewal_time"].is_i64(), "{}", r.text);

    // Without a token at all (6.2.0 with a null auth), or a forgotten one: 403, not 401.
    let r = java
        .send("GET", "secret/data/mysql/webapp", None, None)
        .await;
    assert_error_body(&r, 403);
    assert_eq!(r.body["errors"], json!(["permission denied"]));
    let r = java
        .send(
            "GET",
            "secret/data/mysql/webapp",
            Some("hvs.forgotten"),
            None,
        )
        .await;
    assert_error_body(&r, 403);
    // A bad secret ID: the login fails with a JSON 400 the plugin prints.
    let r = java
        .send(
            "POST",
            "auth/approle/login",
            None,
            Some(&json!({"role_id": role_id, "secret_id": "wrong"})),
        )
        .await;
    assert_error_body(&r, 400);
}

#[tokio::test]
async fn jopenlibs_620_with_vault_sequence() {
    with_vault_sequence(Driver::Jopenlibs).await;
}

#[tokio::test]
async fn bettercloud_510_with_vault_sequence() {
    with_vault_sequence(Driver::BetterCloud).await;
}

/// "Limit Token Policies": lookup-self with the parent, `auth/token/create` with the templated
/// policies and the parent's TTL, then lookup-self with the child.
#[tokio::test]
async fn limit_token_policies_child_token() {
    let srv = TestServer::start().await;
    let (role_id, secret_id) = guide_setup(&srv).await;
    // The admin lets the AppRole mint children.
    srv.write_policy(
        "jenkins",
        &format!("{JENKINS_POLICY}path \"auth/token/create\" {{ capabilities = [\"update\"] }}\n"),
    )
    .await;
    srv.write_policy(
        "job-webapp",
        "path \"secret/data/mysql/webapp\" { capabilities = [\"read\"] }\n",
    )
    .await;
    srv.post(
        "auth/approle/role/jenkins",
        &srv.root,
        json!({"token_policies": "jenkins,job-webapp"}),
    )
    .await
    .assert_status(204);

    for driver in [Driver::Jopenlibs, Driver::BetterCloud] {
        let java = Java::new(&srv, driver);
        let parent = java.login("approle", &role_id, &secret_id).await;
        let ttl = java.lookup_self(&parent).await;
        assert_eq!(ttl, 3600);
        let r = java
            .send(
                "POST",
                "auth/token/create",
                Some(&parent),
                Some(&json!({"policies": ["job-webapp"], "ttl": format!("{ttl}s")})),
            )
            .await;
        let b = r.assert_json_200();
        assert_auth_response(b);
        assert_eq!(b["auth"]["policies"], json!(["default", "job-webapp"]));
        assert_eq!(b["auth"]["lease_duration"], json!(3600));
        let child = b["auth"]["client_token"].as_str().unwrap().to_string();
        assert_eq!(java.lookup_self(&child).await, 3600);
        let r = java.read(&child, "secret/mysql/webapp", 1, 2).await;
        assert_eq!(v2_values(&r)["password"], "pa$$w0rd");
    }
}

/// The plugin's token cache with `token_num_uses`: every lookup-self spends a use, as in Vault
/// (plugin #156); a token with uses left keeps working and reports an integer ttl.
#[tokio::test]
async fn lookup_self_spends_a_token_use() {
    let srv = TestServer::start().await;
    let (role_id, secret_id) = guide_setup(&srv).await;
    srv.post(
        "auth/approle/role/jenkins",
        &srv.root,
        json!({"token_num_uses": 3}),
    )
    .await
    .assert_status(204);
    let java = Java::new(&srv, Driver::Jopenlibs);
    let token = java.login("approle", &role_id, &secret_id).await;
    assert_eq!(java.lookup_self(&token).await, 3600); // use 1
    let r = java.read(&token, "secret/mysql/webapp", 1, 2).await; // use 2
    v2_values(&r);
    let r = java.read(&token, "secret/mysql/webapp", 1, 2).await; // use 3: the last
    v2_values(&r);
    let r = java.read(&token, "secret/mysql/webapp", 1, 2).await;
    assert_error_body(&r, 403);
}
