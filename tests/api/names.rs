//! Names in paths: what the ACL authorises and what the backend acts on must be the same object.
//!
//! Vault lower-cases AppRole role names and trims and lower-cases policy names; OpenBao 2.7.2
//! authorises the canonical name, so another spelling of a denied name is denied too. Mount paths
//! keep their case and spacing. Every expectation here was checked against `bao server -dev`.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::approle::{enable, login, role, secret_id};
use crate::common::{Resp, TestServer};

const DENIED: &str = "1 error occurred:\n\t* permission denied\n\n";

#[track_caller]
fn assert_error(r: &Resp, status: u16, msg: &str) {
    r.assert_status(status);
    assert_eq!(r.errors(), vec![msg.to_string()], "body: {}", r.text);
}

/// A token whose only policy is `hcl` (no default policy).
async fn token_for(srv: &TestServer, name: &str, hcl: &str) -> String {
    srv.write_policy(name, hcl).await;
    srv.token_with(&[name], json!({"no_default_policy": true}))
        .await
}

const APPROLE_POLICY: &str = r#"
path "auth/approle/role/+/role-id" { capabilities = ["read"] }
path "auth/approle/role/+/secret-id" { capabilities = ["update"] }
path "auth/approle/role/admin/*" { capabilities = ["deny"] }
"#;

/// The issue-12 escalation: role-id and secret-id of the denied `admin` role fetched as `ADMIN`,
/// then a login with them. OpenBao answers 403 to both fetches.
#[tokio::test]
async fn approle_role_name_case_cannot_escape_a_deny() {
    let srv = TestServer::start().await;
    enable(&srv, "approle").await;
    srv.write_policy(
        "adminpol",
        "path \"*\" { capabilities = [\"sudo\", \"read\"] }",
    )
    .await;
    let admin_role_id = role(
        &srv,
        "approle",
        "admin",
        json!({"token_policies": "adminpol"}),
    )
    .await;
    let app_role_id = role(&srv, "approle", "app", json!({"token_policies": "default"})).await;
    let t = token_for(&srv, "limited", APPROLE_POLICY).await;

    for name in ["admin", "ADMIN", "Admin", "aDmIn"] {
        let r = srv
            .get(&format!("auth/approle/role/{name}/role-id"), &t)
            .await;
        assert_error(&r, 403, DENIED);
        let r = srv
            .post(
                &format!("auth/approle/role/{name}/secret-id"),
                &t,
                json!({}),
            )
            .await;
        assert_error(&r, 403, DENIED);
    }

    // Other spellings of an allowed role act on that role.
    let r = srv.get("auth/approle/role/APP/role-id", &t).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["role_id"], app_role_id.as_str());
    let r = srv
        .post("auth/approle/role/App/secret-id", &t, json!({}))
        .await;
    r.assert_status(200);
    let sid = r.body["data"]["secret_id"].as_str().unwrap().to_string();
    let r = login(&srv, "approle", &app_role_id, &sid).await;
    r.assert_status(200);
    assert_eq!(r.body["auth"]["metadata"]["role_name"], "app");

    // The pipeline acts on the canonical path: a wrapped answer records it (as OpenBao does).
    let rb = srv
        .client
        .post(srv.url("auth/approle/role/APP/secret-id"))
        .header("X-Vault-Token", &srv.root)
        .header("X-Vault-Wrap-TTL", "60")
        .body("{}");
    let r = TestServer::finish(rb).await;
    r.assert_status(200);
    assert_eq!(
        r.body["wrap_info"]["creation_path"],
        "auth/approle/role/app/secret-id"
    );

    // Nothing the limited token could reach logs in as admin.
    let admin_sid = secret_id(&srv, "approle", "admin", json!({})).await;
    let r = login(
        &srv,
        "approle",
        &admin_role_id,
        admin_sid["secret_id"].as_str().unwrap(),
    )
    .await;
    r.assert_status(200);
    assert_eq!(
        r.body["auth"]["policies"],
        json!(["adminpol", "default"]),
        "root-issued admin credentials still work"
    );
}

/// Every role sub-path is authorised on the lower-cased role name.
#[tokio::test]
async fn approle_every_role_path_is_authorised_on_the_canonical_name() {
    let srv = TestServer::start().await;
    enable(&srv, "approle").await;
    role(
        &srv,
        "approle",
        "admin",
        json!({"token_policies": "default"}),
    )
    .await;
    let sid = secret_id(&srv, "approle", "admin", json!({})).await;
    let t = token_for(
        &srv,
        "broad",
        r#"
path "auth/approle/role/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/approle/role/admin" { capabilities = ["deny"] }
path "auth/approle/role/admin/*" { capabilities = ["deny"] }
"#,
    )
    .await;
    let secret = sid["secret_id"].as_str().unwrap();
    let accessor = sid["secret_id_accessor"].as_str().unwrap();
    let cases: Vec<(&str, &str, Option<Value>)> = vec![
        ("GET", "", None),
        ("POST", "", Some(json!({"token_policies": "root"}))),
        ("DELETE", "", None),
        ("GET", "/role-id", None),
        ("POST", "/role-id", Some(json!({"role_id": "mine"}))),
        ("POST", "/secret-id", Some(json!({}))),
        ("LIST", "/secret-id", None),
        ("POST", "/custom-secret-id", Some(json!({"secret_id": "x"}))),
        (
            "POST",
            "/secret-id/lookup",
            Some(json!({"secret_id": secret})),
        ),
        (
            "POST",
            "/secret-id/destroy",
            Some(json!({"secret_id": secret})),
        ),
        (
            "POST",
            "/secret-id-accessor/lookup",
            Some(json!({"secret_id_accessor": accessor})),
        ),
        (
            "POST",
            "/secret-id-accessor/destroy",
            Some(json!({"secret_id_accessor": accessor})),
        ),
        ("GET", "/policies", None),
        ("POST", "/policies", Some(json!({"token_policies": "root"}))),
        ("DELETE", "/policies", None),
        ("POST", "/token-ttl", Some(json!({"token_ttl": 1}))),
        (
            "POST",
            "/bind-secret-id",
            Some(json!({"bind_secret_id": false})),
        ),
    ];
    for name in ["ADMIN", "Admin"] {
        for (method, suffix, body) in &cases {
            let path = format!("auth/approle/role/{name}{suffix}");
            let r = srv.req(method, &path, Some(&t), body.clone()).await;
            assert_eq!(r.status.as_u16(), 403, "{method} {path}: {}", r.text);
        }
    }
    // The role is untouched, and root reaches it under any spelling.
    let r = srv.get("auth/approle/role/ADMIN", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["token_policies"], json!(["default"]));
    assert_eq!(r.body["data"]["bind_secret_id"], true);
    let r = srv
        .post(
            "auth/approle/role/Admin/secret-id/lookup",
            &srv.root,
            json!({"secret_id": secret}),
        )
        .await;
    r.assert_status(200);
    srv.delete("auth/approle/role/ADMIN", &srv.root)
        .await
        .assert_status(204);
    srv.get("auth/approle/role/admin", &srv.root)
        .await
        .assert_status(404);
}

const POLICY_ADMIN: &str = r#"
path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policies/acl/editor" { capabilities = ["deny"] }
path "sys/policy/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policy/editor" { capabilities = ["deny"] }
"#;

const EDITOR: &str = "path \"secret/*\" { capabilities = [\"read\"] }";
const EVERYTHING: &str = "path \"*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\", \"sudo\"] }";

/// The issue-12 rewrite: a token denied `sys/policies/acl/editor` rewrote it as `EDITOR` or
/// ` editor`. OpenBao answers 403 to every spelling, on both the current and the legacy path.
#[tokio::test]
async fn policy_name_spelling_cannot_escape_a_deny() {
    let srv = TestServer::start().await;
    srv.write_policy("editor", EDITOR).await;
    let t = token_for(&srv, "policy-admin", POLICY_ADMIN).await;

    for prefix in ["sys/policies/acl", "sys/policy"] {
        for name in [
            "editor",
            "EDITOR",
            "Editor",
            "%20editor",
            "editor%20",
            "%20EDITOR%20",
        ] {
            let path = format!("{prefix}/{name}");
            let r = srv.put(&path, &t, json!({"policy": EVERYTHING})).await;
            assert_error(&r, 403, DENIED);
            assert_error(&srv.get(&path, &t).await, 403, DENIED);
            assert_error(&srv.delete(&path, &t).await, 403, DENIED);
        }
    }
    let r = srv.get("sys/policies/acl/editor", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["policy"], EDITOR);

    // Allowed names still work under any spelling, and act on the canonical name.
    let r = srv
        .put(
            "sys/policies/acl/%20Other%20",
            &t,
            json!({"policy": EDITOR}),
        )
        .await;
    r.assert_status(204);
    let r = srv.get("sys/policies/acl/OTHER", &t).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["name"], "other");
    assert_eq!(
        srv.list("sys/policies/acl", &srv.root).await.body["data"]["keys"],
        json!(["default", "editor", "other", "policy-admin", "root"])
    );
    srv.delete("sys/policy/OTHER", &t).await.assert_status(204);
    srv.get("sys/policies/acl/other", &srv.root)
        .await
        .assert_status(404);
}

/// No spelling reaches `root`, `response-wrapping` or deletes `default` (OpenBao's answers).
#[tokio::test]
async fn builtin_policies_cannot_be_reached_through_other_spellings() {
    let srv = TestServer::start().await;
    for prefix in ["sys/policies/acl", "sys/policy"] {
        for name in [
            "root",
            "ROOT",
            "Root",
            "%20root",
            "root%20",
            "%20%20ROOT%20",
        ] {
            let path = format!("{prefix}/{name}");
            let r = srv
                .put(&path, &srv.root, json!({"policy": EVERYTHING}))
                .await;
            assert_error(&r, 400, "cannot update \"root\" policy");
            let r = srv.delete(&path, &srv.root).await;
            assert_error(&r, 400, "cannot delete \"root\" policy");
            let r = srv.get(&path, &srv.root).await;
            r.assert_status(200);
            assert_eq!(r.body["data"]["name"], "root");
        }
        for name in ["DEFAULT", "%20default", "Default%20"] {
            let r = srv.delete(&format!("{prefix}/{name}"), &srv.root).await;
            assert_error(&r, 400, "cannot delete default policy");
        }
        let r = srv
            .put(
                &format!("{prefix}/RESPONSE-WRAPPING"),
                &srv.root,
                json!({"policy": EVERYTHING}),
            )
            .await;
        assert_error(&r, 400, "cannot update \"response-wrapping\" policy");
    }
    // OpenBao's HTTP layer refuses the tab with a bare 400; any 400 leaves `root` alone here.
    let r = srv
        .put(
            "sys/policies/acl/%09root",
            &srv.root,
            json!({"policy": EVERYTHING}),
        )
        .await;
    r.assert_status(400);
    // A name that is only spaces is the list path, which cannot be written.
    let r = srv
        .put("sys/policies/acl/%20", &srv.root, json!({"policy": EDITOR}))
        .await;
    assert_error(&r, 405, "1 error occurred:\n\t* unsupported operation\n\n");
    assert_eq!(
        srv.list("sys/policies/acl", &srv.root).await.body["data"]["keys"],
        json!(["default", "root"])
    );
    // `default` itself may be rewritten under another spelling (OpenBao allows it).
    srv.put(
        "sys/policies/acl/DEFAULT",
        &srv.root,
        json!({"policy": EDITOR}),
    )
    .await
    .assert_status(204);
    let r = srv.get("sys/policies/acl/default", &srv.root).await;
    assert_eq!(r.body["data"]["policy"], EDITOR);
}

/// Mount paths keep their case and spacing, as in OpenBao: another spelling is another mount.
#[tokio::test]
async fn mount_paths_keep_case_and_spacing() {
    let srv = TestServer::start().await;
    srv.post("sys/mounts/KVUp", &srv.root, json!({"type": "kv"}))
        .await
        .assert_status(204);
    srv.post("sys/mounts/%20sp", &srv.root, json!({"type": "kv"}))
        .await
        .assert_status(204);
    let r = srv.get("sys/mounts", &srv.root).await;
    assert!(r.body["data"]["KVUp/"].is_object(), "{}", r.text);
    assert!(r.body["data"][" sp/"].is_object(), "{}", r.text);
    assert!(r.body["data"]["kvup/"].is_null(), "{}", r.text);
    srv.get("sys/mounts/KVUp/tune", &srv.root)
        .await
        .assert_status(200);
    let r = srv.get("sys/mounts/kvup/tune", &srv.root).await;
    assert_error(&r, 400, "cannot fetch sysview for path \"kvup/\"");
}

/// Sends a raw HTTP/1.1 request, so that `%2e%2e` reaches the server undecoded (URL libraries
/// resolve it as a dot segment).
async fn raw(srv: &TestServer, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let req = format!(
        "{method} /v1/{path} HTTP/1.1\r\nHost: {}\r\nX-Vault-Token: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        srv.addr,
        srv.root,
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

/// `.` and `..` segments in a mount path are refused as OpenBao refuses them; names that merely
/// contain dots are fine.
#[tokio::test]
async fn mount_paths_with_dot_segments_are_refused() {
    let srv = TestServer::start().await;
    let before = srv.get("sys/mounts", &srv.root).await.body["data"].clone();
    let before_auth = srv.get("sys/auth", &srv.root).await.body["data"].clone();
    for (table, kind) in [("mounts", "kv"), ("auth", "approle")] {
        for p in [
            "%2e%2e",
            "%2e",
            "x%2f%2e%2e",
            "%2e%2e%2fx",
            "a%2f.%2fb",
            "a%2f..%2fb",
            "x/%2e%2e",
        ] {
            let body = json!({"type": kind}).to_string();
            let (status, b) = raw(&srv, "POST", &format!("sys/{table}/{p}"), &body).await;
            assert_eq!(status, 400, "{table} {p}: {b}");
            assert_eq!(
                b,
                json!({"errors": ["relative paths not supported"]}),
                "{p}"
            );
        }
        // OpenBao refuses control characters anywhere in a path with a bare 400.
        for p in ["a%00b", "%00", "x%01y"] {
            let body = json!({"type": kind}).to_string();
            let (status, b) = raw(&srv, "POST", &format!("sys/{table}/{p}"), &body).await;
            assert_eq!(status, 400, "{table} {p}: {b}");
        }
        for p in ["..x", "x/..y", "..."] {
            srv.post(
                &format!("sys/{table}/{p}"),
                &srv.root,
                json!({"type": kind}),
            )
            .await
            .assert_status(204);
        }
    }
    let after = srv.get("sys/mounts", &srv.root).await.body["data"].clone();
    let after_auth = srv.get("sys/auth", &srv.root).await.body["data"].clone();
    let new_keys = |a: &Value, b: &Value| {
        let mut k: Vec<String> = a
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| b.get(k.as_str()).is_none())
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(new_keys(&after, &before), [".../", "..x/", "x/..y/"]);
    assert_eq!(
        new_keys(&after_auth, &before_auth),
        [".../", "..x/", "x/..y/"]
    );
}

/// `sys/wrapping/wrap` with no body wraps `{}` (OpenBao 2.7.2), instead of refusing.
#[tokio::test]
async fn wrapping_an_empty_body_wraps_an_empty_object() {
    let srv = TestServer::start().await;
    for body in [None, Some(json!({}))] {
        let rb = srv
            .client
            .post(srv.url("sys/wrapping/wrap"))
            .header("X-Vault-Token", &srv.root)
            .header("X-Vault-Wrap-TTL", "60");
        let rb = match &body {
            Some(b) => rb.body(b.to_string()),
            None => rb,
        };
        let r = TestServer::finish(rb).await;
        r.assert_status(200);
        assert_eq!(r.body["data"], Value::Null, "{}", r.text);
        assert_eq!(r.body["wrap_info"]["creation_path"], "sys/wrapping/wrap");
        let token = r.body["wrap_info"]["token"].as_str().unwrap().to_string();
        let r = srv
            .post("sys/wrapping/unwrap", &srv.root, json!({"token": token}))
            .await;
        r.assert_status(200);
        assert_eq!(r.body["data"], json!({}), "{}", r.text);
    }
    // Without a wrap TTL the endpoint still refuses, as OpenBao does.
    let r = srv.post("sys/wrapping/wrap", &srv.root, json!({})).await;
    assert_error(&r, 400, "endpoint requires response wrapping to be used");
}
