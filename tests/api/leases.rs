//! `sys/leases/*` for token leases: a token's lease id is its creation path and salted id
//! (`auth/approle/login/h<64 hex>`). Expected bodies, statuses and texts were read from OpenBao
//! 2.7.2 with the same requests.

use serde_json::{Value, json};
use std::time::Duration;

use crate::approle::{assert_error, enable, login_token, role, secret_id};
use crate::cli::{Cli, row};
use crate::common::TestServer;

/// The lease ids directly under `prefix` (asserting 200).
async fn leases(srv: &TestServer, prefix: &str) -> Vec<String> {
    let r = srv
        .list(&format!("sys/leases/lookup/{prefix}"), &srv.root)
        .await;
    r.assert_status(200);
    r.body["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

fn is_salted_id(k: &str) -> bool {
    k.len() == 65
        && k.starts_with('h')
        && k[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A server with approle at `approle/` and role `r1` (token_ttl 1h); returns its credentials.
async fn approle_server() -> (TestServer, String, String) {
    let srv = TestServer::start().await;
    enable(&srv, "approle").await;
    let role_id = role(&srv, "approle", "r1", json!({"token_ttl":"1h"})).await;
    (srv, role_id, String::new())
}

async fn login(srv: &TestServer, role_id: &str) -> String {
    let sid = secret_id(srv, "approle", "r1", json!({})).await;
    login_token(srv, "approle", role_id, sid["secret_id"].as_str().unwrap()).await
}

fn lookup_body(id: &str) -> Value {
    json!({ "lease_id": id })
}

#[tokio::test]
async fn token_leases_are_listed_by_creation_path() {
    let (srv, role_id, _) = approle_server().await;
    let _t1 = login(&srv, &role_id).await;
    let _t2 = login(&srv, &role_id).await;
    assert_eq!(leases(&srv, "").await, ["auth/"]);
    assert_eq!(leases(&srv, "auth/").await, ["approle/", "token/"]);
    // The dev root token was made through auth/token/create, so it has a lease there.
    assert_eq!(leases(&srv, "auth/token/").await, ["create/"]);
    let keys = leases(&srv, "auth/approle/login/").await;
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| is_salted_id(k)), "{keys:?}");
    // Without the trailing slash, the same folder.
    assert_eq!(leases(&srv, "auth/approle/login").await, keys);
    let r = srv.list("sys/leases/lookup/nothing/", &srv.root).await;
    r.assert_status(404);
    assert_eq!(r.body, json!({"errors": []}));
    // PUT on a list path.
    let r = srv
        .put("sys/leases/lookup/auth/x", &srv.root, json!({}))
        .await;
    assert_error(&r, 405, "1 error occurred:\n\t* unsupported operation\n\n");
}

#[tokio::test]
async fn listing_and_prefix_revocation_need_sudo() {
    let srv = TestServer::start().await;
    srv.write_policy(
        "lp",
        r#"path "sys/leases/*" { capabilities = ["create", "update", "read", "list"] }"#,
    )
    .await;
    let t = srv.token_with(&["lp"], json!({})).await;
    let denied = "1 error occurred:\n\t* permission denied\n\n";
    assert_error(&srv.list("sys/leases/lookup/auth/", &t).await, 403, denied);
    for p in ["revoke-prefix/auth/x", "revoke-force/auth/x"] {
        let r = srv.put(&format!("sys/leases/{p}"), &t, json!({})).await;
        assert_error(&r, 403, denied);
    }
    // Revoking or looking up one lease needs no sudo.
    srv.put("sys/leases/revoke", &t, json!({"lease_id":"auth/x"}))
        .await
        .assert_status(204);
    assert_error(
        &srv.put("sys/leases/lookup", &t, lookup_body("auth/x"))
            .await,
        400,
        "invalid lease",
    );
}

#[tokio::test]
async fn lookup_shows_the_lease_of_a_token() {
    let (srv, role_id, _) = approle_server().await;
    let _t = login(&srv, &role_id).await;
    let key = leases(&srv, "auth/approle/login/").await.remove(0);
    let id = format!("auth/approle/login/{key}");
    srv.clock.advance(Duration::from_secs(4));
    let r = srv
        .put("sys/leases/lookup", &srv.root, lookup_body(&id))
        .await;
    r.assert_status(200);
    let d = r.body["data"].as_object().unwrap();
    let mut keys: Vec<&str> = d.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "expire_time",
            "id",
            "issue_time",
            "last_renewal",
            "path",
            "renewable",
            "ttl"
        ]
    );
    assert_eq!(d["id"], id.as_str());
    assert_eq!(d["path"], "auth/approle/login");
    assert_eq!(d["renewable"], true);
    assert_eq!(d["ttl"], 3596);
    assert_eq!(d["last_renewal"], Value::Null);
    assert!(d["expire_time"].as_str().unwrap().ends_with('Z'));
    // The dev root token's lease never expires and is not renewable.
    let root_key = leases(&srv, "auth/token/create/").await.remove(0);
    let r = srv
        .put(
            "sys/leases/lookup",
            &srv.root,
            lookup_body(&format!("auth/token/create/{root_key}")),
        )
        .await;
    assert_eq!(r.body["data"]["expire_time"], Value::Null);
    assert_eq!(r.body["data"]["renewable"], false);
    assert_eq!(r.body["data"]["ttl"], 0);
    // Errors.
    assert_error(
        &srv.put("sys/leases/lookup", &srv.root, json!({})).await,
        400,
        "lease_id must be specified",
    );
    for bad in [
        "auth/approle/login/nope".to_string(),
        format!("auth/token/create/{key}"),
        format!("auth/approle/login/{}", &key[1..]),
    ] {
        let r = srv
            .put("sys/leases/lookup", &srv.root, lookup_body(&bad))
            .await;
        assert_error(&r, 400, "invalid lease");
    }
}

#[tokio::test]
async fn tokens_are_not_renewed_through_the_lease_endpoint() {
    let (srv, role_id, _) = approle_server().await;
    let _t = login(&srv, &role_id).await;
    let key = leases(&srv, "auth/approle/login/").await.remove(0);
    let id = format!("auth/approle/login/{key}");
    let r = srv
        .put(
            "sys/leases/renew",
            &srv.root,
            json!({"lease_id": id, "increment": 100}),
        )
        .await;
    assert_error(&r, 400, "tokens cannot be renewed through this endpoint");
    let r = srv
        .put(&format!("sys/leases/renew/{id}"), &srv.root, json!({}))
        .await;
    assert_error(&r, 400, "tokens cannot be renewed through this endpoint");
    assert_error(
        &srv.put(
            "sys/leases/renew",
            &srv.root,
            json!({"lease_id":"auth/token/create/nope"}),
        )
        .await,
        400,
        "lease not found",
    );
    assert_error(
        &srv.put("sys/leases/renew", &srv.root, json!({})).await,
        400,
        "lease_id must be specified",
    );
    // OpenBao has no legacy sys/renew.
    assert_error(
        &srv.put("sys/renew", &srv.root, json!({"lease_id": id}))
            .await,
        404,
        "1 error occurred:\n\t* unsupported path\n\n",
    );
}

#[tokio::test]
async fn revoking_a_lease_revokes_the_token_and_its_children() {
    let srv = TestServer::start().await;
    srv.write_policy(
        "creator",
        r#"path "auth/token/create" { capabilities = ["update"] }"#,
    )
    .await;
    let parent = srv.token_with(&["creator"], json!({})).await;
    let child = srv
        .token_with_as(&parent, &["creator"], json!({"ttl": "1h"}))
        .await;
    let other = srv.token_with(&["default"], json!({"ttl": "2h"})).await;
    let keys = leases(&srv, "auth/token/create/").await;
    assert_eq!(keys.len(), 4, "{keys:?}");
    // The parent's lease is the one with the mount's default TTL (the root's has none, the
    // child's 1h, the other's 2h).
    let mut parent_lease = None;
    for k in &keys {
        let id = format!("auth/token/create/{k}");
        let r = srv
            .put("sys/leases/lookup", &srv.root, lookup_body(&id))
            .await;
        r.assert_status(200);
        if r.body["data"]["ttl"] == 2_764_800 {
            parent_lease = Some(id);
        }
    }
    let id = parent_lease.unwrap();
    let r = srv
        .put(
            "sys/leases/revoke",
            &srv.root,
            json!({"lease_id": id, "sync": true}),
        )
        .await;
    r.assert_status(204);
    assert!(r.text.is_empty());
    for t in [&parent, &child] {
        srv.get("auth/token/lookup-self", t)
            .await
            .assert_status(403);
    }
    srv.get("auth/token/lookup-self", &other)
        .await
        .assert_status(200);
    assert_eq!(leases(&srv, "auth/token/create/").await.len(), 2);
    // The CLI's form: the id in the path, sync false: 202 with an empty body.
    let mut other_lease = None;
    for k in leases(&srv, "auth/token/create/").await {
        let id = format!("auth/token/create/{k}");
        let r = srv
            .put("sys/leases/lookup", &srv.root, lookup_body(&id))
            .await;
        if r.body["data"]["ttl"] == 7200 {
            other_lease = Some(id);
        }
    }
    let r = srv
        .put(
            &format!("sys/leases/revoke/{}", other_lease.unwrap()),
            &srv.root,
            json!({"sync": false}),
        )
        .await;
    r.assert_status(202);
    assert!(r.text.is_empty(), "{}", r.text);
    srv.get("auth/token/lookup-self", &other)
        .await
        .assert_status(403);
    // An unknown lease is no error; a missing id is.
    srv.put(
        "sys/leases/revoke",
        &srv.root,
        json!({"lease_id": "auth/token/create/nope"}),
    )
    .await
    .assert_status(204);
    assert_error(
        &srv.put("sys/leases/revoke", &srv.root, json!({})).await,
        400,
        "lease_id must be specified",
    );
}

#[tokio::test]
async fn revoke_prefix_revokes_every_token_of_a_mount() {
    let (srv, role_id, _) = approle_server().await;
    enable(&srv, "approle2").await;
    let logins = [login(&srv, &role_id).await, login(&srv, &role_id).await];
    let rid2 = role(&srv, "approle2", "r1", json!({})).await;
    let sid2 = secret_id(&srv, "approle2", "r1", json!({})).await;
    let other = login_token(&srv, "approle2", &rid2, sid2["secret_id"].as_str().unwrap()).await;
    let plain = srv.token_with(&["default"], json!({})).await;
    // `auth/approle` without the slash is a folder too, and does not reach `approle2`.
    let r = srv
        .put(
            "sys/leases/revoke-prefix/auth/approle",
            &srv.root,
            json!({}),
        )
        .await;
    r.assert_status(204);
    for t in &logins {
        srv.get("auth/token/lookup-self", t)
            .await
            .assert_status(403);
    }
    srv.get("auth/token/lookup-self", &other)
        .await
        .assert_status(200);
    srv.get("auth/token/lookup-self", &plain)
        .await
        .assert_status(200);
    srv.list("sys/leases/lookup/auth/approle/login/", &srv.root)
        .await
        .assert_status(404);
    // One lease id as the prefix revokes just that lease; sync=false answers 202.
    let key = leases(&srv, "auth/approle2/login/").await.remove(0);
    let r = srv
        .put(
            &format!("sys/leases/revoke-prefix/auth/approle2/login/{key}"),
            &srv.root,
            json!({"sync": false}),
        )
        .await;
    r.assert_status(202);
    srv.get("auth/token/lookup-self", &other)
        .await
        .assert_status(403);
    // revoke-force of an unknown prefix: 204. (The CLI sends `-prefix auth/nope/` without its
    // trailing slash: a write to a path ending in `/` is refused, as in Vault.)
    srv.put("sys/leases/revoke-force/auth/nope/", &srv.root, json!({}))
        .await
        .assert_status(400);
    srv.put("sys/leases/revoke-force/auth/nope", &srv.root, json!({}))
        .await
        .assert_status(204);
    srv.put("sys/leases/revoke-force/auth/token", &srv.root, json!({}))
        .await
        .assert_status(204);
    // That revoked every token-store token, the caller's root token included.
    srv.get("auth/token/lookup-self", &plain)
        .await
        .assert_status(403);
}

#[tokio::test]
async fn revoked_and_expired_tokens_leave_the_index() {
    let srv = TestServer::start().await;
    let t = srv.token_with(&["default"], json!({"ttl": "60s"})).await;
    let u = srv.token_with(&["default"], json!({})).await;
    assert_eq!(leases(&srv, "auth/token/create/").await.len(), 3);
    srv.post("auth/token/revoke", &srv.root, json!({"token": u}))
        .await
        .assert_status(204);
    assert_eq!(leases(&srv, "auth/token/create/").await.len(), 2);
    srv.clock.advance(Duration::from_secs(61));
    srv.core.sweep_expired(100).await.unwrap();
    assert_eq!(leases(&srv, "auth/token/create/").await.len(), 1);
    srv.get("auth/token/lookup-self", &t)
        .await
        .assert_status(403);
}

#[tokio::test]
async fn cli_lease_commands() {
    let (srv, role_id, _) = approle_server().await;
    let Some(cli) = Cli::new(&srv) else { return };
    let _t = login(&srv, &role_id).await;
    let t2 = login(&srv, &role_id).await;
    let keys = leases(&srv, "auth/approle/login/").await;
    let id = format!("auth/approle/login/{}", keys[0]);
    let out = cli.ok(Some(&srv.root), &["lease", "lookup", &id]).await;
    assert_eq!(row(&out, "id"), Some(id.as_str()), "{out}");
    assert_eq!(row(&out, "path"), Some("auth/approle/login"));
    assert_eq!(row(&out, "renewable"), Some("true"));
    assert_eq!(row(&out, "last_renewal"), Some("<nil>"));
    let o = cli
        .run(Some(&srv.root), &["lease", "renew", &id], None)
        .await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("* tokens cannot be renewed through this endpoint"),
        "{}",
        o.stderr
    );
    let o = cli
        .run(
            Some(&srv.root),
            &["lease", "lookup", "auth/approle/login/nope"],
            None,
        )
        .await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("* invalid lease"), "{}", o.stderr);
    let out = cli.ok(Some(&srv.root), &["lease", "revoke", &id]).await;
    assert_eq!(out.trim(), "All revocation operations queued successfully!");
    let out = cli
        .ok(Some(&srv.root), &["lease", "revoke", "-sync", &id])
        .await;
    assert_eq!(out.trim(), format!("Success! Revoked lease: {id}"));
    assert_eq!(leases(&srv, "auth/approle/login/").await.len(), 1);
    let out = cli
        .ok(
            Some(&srv.root),
            &["lease", "revoke", "-prefix", "auth/approle/"],
        )
        .await;
    assert_eq!(out.trim(), "All revocation operations queued successfully!");
    srv.get("auth/token/lookup-self", &t2)
        .await
        .assert_status(403);
    let out = cli
        .ok(
            Some(&srv.root),
            &["lease", "revoke", "-force", "-prefix", "auth/approle/"],
        )
        .await;
    assert!(
        out.contains("Success! Force revoked any leases with prefix: auth/approle/"),
        "{out}"
    );
    let o = cli
        .run(
            Some(&srv.root),
            &["lease", "revoke", "-force", "auth/approle/"],
            None,
        )
        .await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("Specifying -force requires also specifying -prefix"),
        "{}",
        o.stderr
    );
}

/// Revoking a parent's lease while children are being created under it: every child that was
/// created dies with the parent, and no lease index entry outlives its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_prefix_racing_child_creation_leaves_nothing_behind() {
    let srv = std::sync::Arc::new(TestServer::start().await);
    srv.write_policy(
        "creator",
        r#"path "auth/token/create" { capabilities = ["update"] }"#,
    )
    .await;
    let root_lease = leases(&srv, "auth/token/create/").await;
    assert_eq!(root_lease.len(), 1);
    for round in 0..30 {
        let parent = srv.token_with(&["creator"], json!({})).await;
        let mut parent_lease: Vec<String> = leases(&srv, "auth/token/create/").await;
        parent_lease.retain(|k| !root_lease.contains(k));
        assert_eq!(parent_lease.len(), 1, "round {round}");
        let id = format!("auth/token/create/{}", parent_lease[0]);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (srv, parent) = (srv.clone(), parent.clone());
            tasks.push(tokio::spawn(async move {
                let r = srv
                    .post("auth/token/create", &parent, json!({"ttl": "1h"}))
                    .await;
                match r.status.as_u16() {
                    200 => Some(r.body["auth"]["client_token"].as_str().unwrap().to_string()),
                    400 => {
                        assert_eq!(r.errors(), ["parent token lookup failed: no parent found"]);
                        None
                    }
                    403 => None,
                    other => panic!("unexpected {other}: {}", r.text),
                }
            }));
        }
        let revoke = {
            let srv = srv.clone();
            tokio::spawn(async move {
                srv.put(
                    &format!("sys/leases/revoke-prefix/{id}"),
                    &srv.root,
                    json!({}),
                )
                .await
                .assert_status(204);
            })
        };
        let mut children = Vec::new();
        for t in tasks {
            children.extend(t.await.unwrap());
        }
        revoke.await.unwrap();
        srv.get("auth/token/lookup-self", &parent)
            .await
            .assert_status(403);
        for c in &children {
            srv.get("auth/token/lookup-self", c)
                .await
                .assert_status(403);
        }
        assert_eq!(
            leases(&srv, "auth/token/create/").await,
            root_lease,
            "round {round}"
        );
    }
}
