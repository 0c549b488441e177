//! The driver's KV v2 path rewrite, prefixPath depth, v1 reads, multi-segment mounts and the
//! unnormalised paths some plugin releases send.

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use super::{
    Driver, JENKINS_POLICY, Java, adjust_path_for_read, assert_error_body, guide_setup, v1_values,
    v2_values,
};
use crate::common::TestServer;

#[test]
fn driver_path_rewrite_table() {
    // The contract's table (§2.5), as the driver computes it.
    let cases = [
        ("secret/app", 1, 2, "secret/data/app"),
        ("secret/team/app", 1, 2, "secret/data/team/app"),
        ("secret/data/app", 1, 2, "secret/data/data/app"),
        ("team1/kv/app", 2, 2, "team1/kv/data/app"),
        ("team1/kv/app", 1, 2, "team1/data/kv/app"),
        ("aws/creds/role", 1, 2, "aws/data/creds/role"),
        ("secret/app", 1, 1, "secret/app"),
        ("/secret//app", 1, 1, "/secret//app"),
        ("/secret//app", 1, 2, "secret/data/app"),
        ("secret/app/", 1, 2, "secret/data/app/"),
        ("secret", 1, 2, "secret/data"),
    ];
    for (path, depth, engine, want) in cases {
        assert_eq!(adjust_path_for_read(path, depth, engine), want, "{path}");
    }
}

/// prefixPath / depth, v1 reads, multi-segment mounts, and the odd paths plugin 377 sends
/// unnormalised: all served, none redirected.
#[tokio::test]
async fn engine_versions_mounts_and_odd_paths() {
    let srv = TestServer::start().await;
    let (role_id, secret_id) = guide_setup(&srv).await;
    srv.post(
        "sys/mounts/team1/kv",
        &srv.root,
        json!({"type": "kv", "options": {"version": "2"}}),
    )
    .await
    .assert_status(204);
    srv.post(
        "sys/mounts/long/path/kv-v1",
        &srv.root,
        json!({"type": "kv", "options": {"version": "1"}}),
    )
    .await
    .assert_status(204);
    srv.post(
        "team1/kv/data/app",
        &srv.root,
        json!({"data": {"port": 5432, "tls": true, "empty": null, "user": "ci"}}),
    )
    .await
    .assert_status(200);
    srv.post(
        "long/path/kv-v1/app",
        &srv.root,
        json!({"password": "v1-secret"}),
    )
    .await
    .assert_status(204);
    srv.write_policy(
        "jenkins",
        &format!(
            "{JENKINS_POLICY}path \"team1/kv/data/*\" {{ capabilities = [\"read\"] }}\npath \"long/path/kv-v1/*\" {{ capabilities = [\"read\"] }}\n"
        ),
    )
    .await;

    for driver in [Driver::Jopenlibs, Driver::BetterCloud] {
        let java = Java::new(&srv, driver);
        let token = java.login("approle", &role_id, &secret_id).await;

        // prefixPath 'team1/kv' + path 'app' → depth 2 → team1/kv/data/app.
        let r = java.read(&token, "team1/kv/app", 2, 2).await;
        assert_eq!(r.headers[CONTENT_TYPE], "application/json");
        let values = v2_values(&r);
        // Non-string values arrive as their compact JSON text; nulls are dropped.
        assert_eq!(
            Value::Object(values),
            json!({"port": "5432", "tls": "true", "user": "ci"})
        );
        // The same path without the prefix depth splits the mount wrongly: a clean 403/404.
        let r = java.read(&token, "team1/kv/app", 1, 2).await;
        assert!(matches!(r.status.as_u16(), 403 | 404), "{}", r.text);

        // engineVersion 1 on a three-segment v1 mount: data is the secret itself.
        let r = java.read(&token, "long/path/kv-v1/app", 1, 1).await;
        assert_eq!(v1_values(&r)["password"], "v1-secret");
        assert!(r.body["lease_duration"].is_i64(), "{}", r.text);

        // Plugin 377 sends v1 paths verbatim: `/v1//long//path/kv-v1//app`; Vault answers 301
        // (plugin #358), Coffer normalises and serves it.
        for odd in [
            "/long//path/kv-v1//app",
            "long/path//kv-v1/app",
            "//long/path/kv-v1/app",
        ] {
            let r = java.read(&token, odd, 1, 1).await;
            assert_eq!(v1_values(&r)["password"], "v1-secret", "{odd}");
        }
        // v2 with a leading slash (JCasC `CASC_VAULT_PATHS=/dev/jenkins`, #173): the driver's
        // split drops it. A trailing slash must not redirect either.
        let r = java.read(&token, "/secret/mysql/webapp", 1, 2).await;
        assert_eq!(v2_values(&r)["username"], "admin");
        let r = java.read(&token, "secret/mysql/webapp/", 1, 2).await;
        assert!(!r.status.is_redirection() && !r.status.is_server_error());
        // A leading slash on the whole URL path is still never a redirect.
        let r = java
            .send("GET", "/secret/data//mysql/webapp", Some(&token), None)
            .await;
        assert_eq!(v2_values(&r)["db_name"], "users");
        let r = java
            .send("GET", "/secret/data//mysql/none", Some(&token), None)
            .await;
        assert_error_body(&r, 404);
    }
}
