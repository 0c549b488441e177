//! Response wrapping and unwrapping over HTTP.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{Resp, TestServer};

async fn wrapped(
    srv: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    ttl: &str,
    body: Option<Value>,
) -> Resp {
    let mut rb = srv
        .client
        .request(method.parse().unwrap(), srv.url(path))
        .header("X-Vault-Token", token)
        .header("X-Vault-Wrap-TTL", ttl);
    if let Some(b) = body {
        rb = rb.body(b.to_string());
    }
    TestServer::finish(rb).await
}

fn wrap_token(r: &Resp) -> String {
    r.body["wrap_info"]["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn wrap_and_unwrap_arbitrary_data_once() {
    let srv = TestServer::start().await;
    let r = wrapped(
        &srv,
        "POST",
        "sys/wrapping/wrap",
        &srv.root,
        "1m0s",
        Some(json!({"foo": "bar"})),
    )
    .await;
    r.assert_status(200);
    assert_eq!(r.body["request_id"], "");
    assert_eq!(r.body["data"], Value::Null);
    assert_eq!(r.body["auth"], Value::Null);
    let info = &r.body["wrap_info"];
    assert_eq!(info["ttl"], 60);
    assert_eq!(info["creation_path"], "sys/wrapping/wrap");
    assert!(info["accessor"].is_string());
    assert!(humantime::parse_rfc3339(info["creation_time"].as_str().unwrap()).is_ok());
    assert!(info.get("wrapped_accessor").is_none());
    let wt = wrap_token(&r);
    // Header form, body `null` as the CLI sends it.
    let u = srv.put("sys/wrapping/unwrap", &wt, Value::Null).await;
    u.assert_status(200);
    assert_eq!(u.body["data"], json!({"foo": "bar"}));
    assert!(!u.body["request_id"].as_str().unwrap().is_empty());
    // Second use fails with Vault's message, in either form.
    let again = srv.put("sys/wrapping/unwrap", &wt, Value::Null).await;
    again.assert_status(400);
    assert_eq!(
        again.errors(),
        ["wrapping token is not valid or does not exist"]
    );
    let again = srv
        .post("sys/wrapping/unwrap", &srv.root, json!({"token": wt}))
        .await;
    again.assert_status(400);
    assert_eq!(
        again.errors(),
        ["wrapping token is not valid or does not exist"]
    );
}

#[tokio::test]
async fn wrap_requires_a_ttl_and_rejects_bad_ones() {
    let srv = TestServer::start().await;
    let r = srv
        .post("sys/wrapping/wrap", &srv.root, json!({"a": 1}))
        .await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        ["endpoint requires response wrapping to be used"]
    );
    let r = wrapped(
        &srv,
        "POST",
        "sys/wrapping/wrap",
        &srv.root,
        "-1",
        Some(json!({"a": 1})),
    )
    .await;
    r.assert_status(400);
    // Empty responses are not wrapped.
    let r = wrapped(
        &srv,
        "PUT",
        "sys/policies/acl/p",
        &srv.root,
        "60",
        Some(json!({"policy": "path \"a\" { capabilities = [\"read\"] }"})),
    )
    .await;
    r.assert_status(204);
}

#[tokio::test]
async fn body_form_unwrap_by_another_token() {
    let srv = TestServer::start().await;
    let r = wrapped(
        &srv,
        "POST",
        "sys/wrapping/wrap",
        &srv.root,
        "5m",
        Some(json!({"k": "v"})),
    )
    .await;
    let wt = wrap_token(&r);
    let other = srv.token_with(&["default"], json!({})).await;
    let u = srv
        .post("sys/wrapping/unwrap", &other, json!({"token": wt}))
        .await;
    u.assert_status(200);
    assert_eq!(u.body["data"]["k"], "v");
    // Non-wrapping tokens are refused.
    let r = srv
        .post("sys/wrapping/unwrap", &srv.root, json!({"token": other}))
        .await;
    r.assert_status(400);
    let r = srv.put("sys/wrapping/unwrap", &other, Value::Null).await;
    r.assert_status(400);
    let r = srv
        .put("sys/wrapping/unwrap", "hvs.garbage", Value::Null)
        .await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        ["wrapping token is not valid or does not exist"]
    );
}

#[tokio::test]
async fn lookup_does_not_consume_and_needs_no_other_auth() {
    let srv = TestServer::start().await;
    let r = wrapped(
        &srv,
        "POST",
        "sys/wrapping/wrap",
        &srv.root,
        "90",
        Some(json!({"k": "v"})),
    )
    .await;
    let wt = wrap_token(&r);
    let l = srv
        .req(
            "POST",
            "sys/wrapping/lookup",
            None,
            Some(json!({"token": wt})),
        )
        .await;
    l.assert_status(200);
    assert_eq!(l.body["data"]["creation_ttl"], 90);
    assert_eq!(l.body["data"]["creation_path"], "sys/wrapping/wrap");
    assert_eq!(
        l.body["data"]["creation_time"],
        r.body["wrap_info"]["creation_time"]
    );
    let l = srv.get("sys/wrapping/lookup", &wt).await;
    l.assert_status(200);
    srv.put("sys/wrapping/unwrap", &wt, Value::Null)
        .await
        .assert_status(200);
    let l = srv
        .req(
            "POST",
            "sys/wrapping/lookup",
            None,
            Some(json!({"token": wt})),
        )
        .await;
    l.assert_status(400);
    assert_eq!(
        l.errors(),
        ["wrapping token is not valid or does not exist"]
    );
}

#[tokio::test]
async fn expired_wrapping_tokens_are_invalid() {
    let srv = TestServer::start().await;
    let r = wrapped(
        &srv,
        "POST",
        "sys/wrapping/wrap",
        &srv.root,
        "60s",
        Some(json!({"k": "v"})),
    )
    .await;
    let wt = wrap_token(&r);
    srv.clock.advance(Duration::from_secs(61));
    let u = srv.put("sys/wrapping/unwrap", &wt, Value::Null).await;
    u.assert_status(400);
    assert_eq!(
        u.errors(),
        ["wrapping token is not valid or does not exist"]
    );
}

#[tokio::test]
async fn rewrap_kills_the_old_token_and_keeps_the_response() {
    let srv = TestServer::start().await;
    let r = wrapped(
        &srv,
        "POST",
        "sys/wrapping/wrap",
        &srv.root,
        "120",
        Some(json!({"k": "v"})),
    )
    .await;
    let old = wrap_token(&r);
    let rw = srv
        .post("sys/wrapping/rewrap", &srv.root, json!({"token": old}))
        .await;
    rw.assert_status(200);
    assert_eq!(rw.body["wrap_info"]["ttl"], 120);
    assert_eq!(rw.body["wrap_info"]["creation_path"], "sys/wrapping/wrap");
    let new = wrap_token(&rw);
    assert_ne!(new, old);
    srv.put("sys/wrapping/unwrap", &old, Value::Null)
        .await
        .assert_status(400);
    let u = srv.put("sys/wrapping/unwrap", &new, Value::Null).await;
    u.assert_status(200);
    assert_eq!(u.body["data"]["k"], "v");
}

#[tokio::test]
async fn wrapped_token_create_unwraps_into_a_working_token() {
    let srv = TestServer::start().await;
    let r = wrapped(
        &srv,
        "POST",
        "auth/token/create",
        &srv.root,
        "60",
        Some(json!({"policies": ["default"]})),
    )
    .await;
    r.assert_status(200);
    assert_eq!(r.body["auth"], Value::Null);
    let wrapped_accessor = r.body["wrap_info"]["wrapped_accessor"]
        .as_str()
        .unwrap()
        .to_string();
    let u = srv
        .put("sys/wrapping/unwrap", &wrap_token(&r), Value::Null)
        .await;
    u.assert_status(200);
    let tok = u.body["auth"]["client_token"].as_str().unwrap();
    assert_eq!(u.body["auth"]["accessor"], wrapped_accessor.as_str());
    let l = srv.get("auth/token/lookup-self", tok).await;
    l.assert_status(200);
    assert_eq!(l.body["data"]["accessor"], wrapped_accessor.as_str());
}

#[tokio::test]
async fn wrapped_reads_and_lists() {
    let srv = TestServer::start().await;
    let r = wrapped(
        &srv,
        "GET",
        "sys/policies/acl/default",
        &srv.root,
        "60",
        None,
    )
    .await;
    r.assert_status(200);
    let u = srv
        .put("sys/wrapping/unwrap", &wrap_token(&r), Value::Null)
        .await;
    assert_eq!(u.body["data"]["name"], "default");
    let r = wrapped(&srv, "LIST", "sys/policies/acl", &srv.root, "60", None).await;
    assert_eq!(r.body["wrap_info"]["creation_path"], "sys/policies/acl/");
    let u = srv
        .put("sys/wrapping/unwrap", &wrap_token(&r), Value::Null)
        .await;
    assert_eq!(u.body["data"]["keys"], json!(["default", "root"]));
    // A missing item is not wrapped: the 404 comes through.
    let r = wrapped(&srv, "GET", "sys/policies/acl/nope", &srv.root, "60", None).await;
    r.assert_status(404);
}

#[tokio::test]
async fn wrapping_tokens_can_only_unwrap_or_read_their_response() {
    let srv = TestServer::start().await;
    let r = wrapped(
        &srv,
        "POST",
        "sys/wrapping/wrap",
        &srv.root,
        "60",
        Some(json!({"k": "v"})),
    )
    .await;
    let wt = wrap_token(&r);
    srv.get("sys/mounts", &wt).await.assert_status(403);
    // That denied request spent the single use.
    srv.put("sys/wrapping/unwrap", &wt, Value::Null)
        .await
        .assert_status(400);
    // The legacy read path works, with Vault's deprecation warning.
    let r = wrapped(
        &srv,
        "POST",
        "sys/wrapping/wrap",
        &srv.root,
        "60",
        Some(json!({"k": "v"})),
    )
    .await;
    let wt = wrap_token(&r);
    let c = srv.get("cubbyhole/response", &wt).await;
    c.assert_status(200);
    let stored: Value = serde_json::from_str(c.body["data"]["response"].as_str().unwrap()).unwrap();
    assert_eq!(stored["data"]["k"], "v");
    assert!(
        c.body["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("Reading from 'cubbyhole/response' is deprecated.")
    );
}

#[tokio::test]
async fn policy_wrapping_ttl_limits_are_enforced() {
    let srv = TestServer::start().await;
    srv.write_policy(
        "wrapped-only",
        "path \"sys/policies/acl/*\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"30s\"\n  max_wrapping_ttl = \"2m\"\n}",
    )
    .await;
    let t = srv.token_with(&["wrapped-only"], json!({})).await;
    srv.get("sys/policies/acl/default", &t)
        .await
        .assert_status(403);
    wrapped(&srv, "GET", "sys/policies/acl/default", &t, "10s", None)
        .await
        .assert_status(403);
    wrapped(&srv, "GET", "sys/policies/acl/default", &t, "5m", None)
        .await
        .assert_status(403);
    wrapped(&srv, "GET", "sys/policies/acl/default", &t, "1m", None)
        .await
        .assert_status(200);
}

#[tokio::test]
async fn twenty_concurrent_unwraps_exactly_one_wins() {
    let srv = Arc::new(TestServer::start().await);
    for body_form in [false, true] {
        let r = wrapped(
            &srv,
            "POST",
            "sys/wrapping/wrap",
            &srv.root,
            "60",
            Some(json!({"secret": "s3"})),
        )
        .await;
        let wt = wrap_token(&r);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (srv, wt) = (srv.clone(), wt.clone());
            tasks.push(tokio::spawn(async move {
                let r = if body_form {
                    srv.post("sys/wrapping/unwrap", &srv.root, json!({"token": wt}))
                        .await
                } else {
                    srv.put("sys/wrapping/unwrap", &wt, Value::Null).await
                };
                (
                    r.status.as_u16(),
                    r.body["data"]["secret"].as_str().map(str::to_string),
                )
            }));
        }
        let mut winners = 0;
        for t in tasks {
            let (status, secret) = t.await.unwrap();
            match status {
                200 => {
                    assert_eq!(secret.as_deref(), Some("s3"));
                    winners += 1;
                }
                400 => assert!(secret.is_none()),
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(winners, 1, "body_form={body_form}");
    }
}

#[tokio::test]
async fn wrapped_kv_read_and_wrapped_approle_login() {
    let srv = TestServer::start().await;
    srv.put("secret/data/app", &srv.root, json!({"data": {"pw": "s3"}}))
        .await
        .assert_status(200);
    let r = wrapped(&srv, "GET", "secret/data/app", &srv.root, "60", None).await;
    r.assert_status(200);
    assert_eq!(r.body["wrap_info"]["creation_path"], "secret/data/app");
    let u = srv
        .put("sys/wrapping/unwrap", &wrap_token(&r), Value::Null)
        .await;
    assert_eq!(u.body["data"]["data"]["pw"], "s3");
    assert_eq!(u.body["data"]["metadata"]["version"], 1);

    srv.post("sys/auth/approle", &srv.root, json!({"type": "approle"}))
        .await
        .assert_status(204);
    srv.put(
        "auth/approle/role/ci",
        &srv.root,
        json!({"token_policies": "default", "token_ttl": "1h"}),
    )
    .await
    .assert_status(204);
    let role_id = srv
        .get("auth/approle/role/ci/role-id", &srv.root)
        .await
        .body["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A wrapped secret-id reports its accessor as wrapped_accessor.
    let w = wrapped(
        &srv,
        "PUT",
        "auth/approle/role/ci/secret-id",
        &srv.root,
        "1m0s",
        Some(Value::Null),
    )
    .await;
    let acc = w.body["wrap_info"]["wrapped_accessor"]
        .as_str()
        .unwrap()
        .to_string();
    let sid = srv
        .put("sys/wrapping/unwrap", &wrap_token(&w), Value::Null)
        .await;
    assert_eq!(sid.body["data"]["secret_id_accessor"], acc.as_str());
    let secret_id = sid.body["data"]["secret_id"].as_str().unwrap().to_string();
    // A wrapped login: no token is visible until unwrapped, then it works.
    let rb = srv
        .client
        .put(srv.url("auth/approle/login"))
        .header("X-Vault-Wrap-TTL", "2m")
        .body(json!({"role_id": role_id, "secret_id": secret_id}).to_string());
    let l = TestServer::finish(rb).await;
    l.assert_status(200);
    assert_eq!(l.body["auth"], Value::Null);
    assert_eq!(l.body["wrap_info"]["creation_path"], "auth/approle/login");
    let token_acc = l.body["wrap_info"]["wrapped_accessor"]
        .as_str()
        .unwrap()
        .to_string();
    let u = srv
        .put("sys/wrapping/unwrap", &wrap_token(&l), Value::Null)
        .await;
    let tok = u.body["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(u.body["auth"]["accessor"], token_acc.as_str());
    let me = srv.get("auth/token/lookup-self", &tok).await;
    me.assert_status(200);
    assert_eq!(me.body["data"]["meta"]["role_name"], "ci");
}
