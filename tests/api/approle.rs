//! AppRole over real HTTP: the guide replayed with the CLI's exact requests, concurrency of use
//! counting, expiry with the mock clock, Vault's answers to bad input, mounts and storage.
//!
//! Helpers here speak the `vault` CLI's dialect: PUT, every value a string, `null` for `-f`.

mod bad_input;
mod concurrency;
mod endpoints;
mod expiry;
mod guide;
mod mounts;
mod secret_ids;

use serde_json::{Value, json};

use crate::common::{Resp, TestServer};

/// The CLI's `vault auth enable [-path=<path>] approle` body.
pub fn enable_body() -> Value {
    json!({
        "type": "approle",
        "description": "",
        "config": {"options": null, "default_lease_ttl": "0s", "max_lease_ttl": "0s", "force_no_cache": false},
        "local": false,
        "seal_wrap": false,
        "external_entropy_access": false,
        "options": null
    })
}

/// Enables approle at `path` (as root) and asserts Vault's 204.
pub async fn enable(srv: &TestServer, path: &str) {
    srv.put(&format!("sys/auth/{path}"), &srv.root, enable_body())
        .await
        .assert_status(204);
}

/// A server with approle enabled at `approle/`.
pub async fn server() -> TestServer {
    let srv = TestServer::start().await;
    enable(&srv, "approle").await;
    srv
}

/// Writes a role (asserting 204) and returns its role_id.
pub async fn role(srv: &TestServer, mount: &str, name: &str, body: Value) -> String {
    srv.put(&format!("auth/{mount}/role/{name}"), &srv.root, body)
        .await
        .assert_status(204);
    let r = srv
        .get(&format!("auth/{mount}/role/{name}/role-id"), &srv.root)
        .await;
    r.assert_status(200);
    r.body["data"]["role_id"].as_str().unwrap().to_string()
}

/// Generates a secret id (`vault write [-f] .../secret-id`) and returns the response `data`.
pub async fn secret_id(srv: &TestServer, mount: &str, name: &str, body: Value) -> Value {
    let r = srv
        .put(
            &format!("auth/{mount}/role/{name}/secret-id"),
            &srv.root,
            body,
        )
        .await;
    r.assert_status(200);
    r.body["data"].clone()
}

/// `POST auth/<mount>/login` without a token, as the Jenkins plugin sends it.
pub async fn login(srv: &TestServer, mount: &str, role_id: &str, secret_id: &str) -> Resp {
    srv.req(
        "POST",
        &format!("auth/{mount}/login"),
        None,
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    )
    .await
}

/// Logs in, asserts 200, and returns the client token.
pub async fn login_token(srv: &TestServer, mount: &str, role_id: &str, secret_id: &str) -> String {
    let r = login(srv, mount, role_id, secret_id).await;
    r.assert_status(200);
    r.body["auth"]["client_token"].as_str().unwrap().to_string()
}

/// Asserts a status and the exact `errors` array.
#[track_caller]
pub fn assert_error(r: &Resp, status: u16, msg: &str) {
    r.assert_status(status);
    assert_eq!(r.errors(), vec![msg.to_string()], "body: {}", r.text);
}

/// Secret-id lookup by value.
pub async fn lookup(srv: &TestServer, mount: &str, name: &str, secret: &str) -> Resp {
    srv.put(
        &format!("auth/{mount}/role/{name}/secret-id/lookup"),
        &srv.root,
        json!({"secret_id": secret}),
    )
    .await
}
