//! The token store over HTTP: create rules, lookup, renew, revoke, use counts and expiry.

use serde_json::json;
use std::time::Duration;

use crate::common::TestServer;

async fn accessor_of(srv: &TestServer, token: &str) -> String {
    srv.get("auth/token/lookup-self", token).await.body["data"]["accessor"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn root_token_lookup_like_vault() {
    let srv = TestServer::start().await;
    let r = srv.get("auth/token/lookup-self", &srv.root).await;
    let d = &r.body["data"];
    // `-dev-root-token-id` makes the token through auth/token/create, as OpenBao's dev server
    // does: its lookup shows display_name `token`, that path, an issue_time and renewable false.
    let mut keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "accessor",
            "creation_time",
            "creation_ttl",
            "display_name",
            "entity_id",
            "expire_time",
            "explicit_max_ttl",
            "id",
            "issue_time",
            "meta",
            "num_uses",
            "orphan",
            "path",
            "policies",
            "renewable",
            "ttl",
            "type"
        ]
    );
    assert_eq!(d["id"], "root");
    assert_eq!(d["policies"], json!(["root"]));
    assert_eq!(d["path"], "auth/token/create");
    assert_eq!(d["display_name"], "token");
    assert_eq!(d["ttl"], 0);
    assert_eq!(d["creation_ttl"], 0);
    assert_eq!(d["explicit_max_ttl"], 0);
    assert_eq!(d["num_uses"], 0);
    assert_eq!(d["meta"], serde_json::Value::Null);
    assert_eq!(d["entity_id"], "");
    assert_eq!(d["type"], "service");
    assert_eq!(d["expire_time"], serde_json::Value::Null);
    assert_eq!(d["orphan"], true);
    assert_eq!(d["renewable"], false);
    assert!(d["issue_time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(d["accessor"].as_str().unwrap().len(), 24);
    let r = srv
        .post("auth/token/renew-self", &srv.root, json!({}))
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["lease is not renewable"]);
}

#[tokio::test]
async fn last_use_is_revocation_pending_like_vault() {
    let srv = TestServer::start().await;
    // The request that spends the last use sees the token pending revocation.
    let t = srv.token_with(&["default"], json!({"num_uses": 1})).await;
    let r = srv.post("auth/token/renew-self", &t, json!({})).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["token not found"]);
    srv.get("auth/token/lookup-self", &t)
        .await
        .assert_status(403);
    let t = srv.token_with(&["default"], json!({"num_uses": 1})).await;
    let r = srv
        .post(
            "sys/capabilities-self",
            &t,
            json!({"paths": ["secret/foo"]}),
        )
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["1 error occurred:\n\t* invalid token\n\n"]);
    let t = srv.token_with(&["default"], json!({"num_uses": 1})).await;
    let r = srv.get("auth/token/lookup-self", &t).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["num_uses"], -1);
    srv.get("auth/token/lookup-self", &t)
        .await
        .assert_status(403);
}

#[tokio::test]
async fn list_accessors_needs_sudo_and_lists_live_tokens() {
    let srv = TestServer::start().await;
    let root_acc = accessor_of(&srv, &srv.root).await;
    let a = srv.token_with(&["default"], json!({})).await;
    let a_acc = accessor_of(&srv, &a).await;
    let b = srv.token_with(&["default"], json!({})).await;
    let b_acc = accessor_of(&srv, &b).await;
    let r = srv.list("auth/token/accessors", &srv.root).await;
    r.assert_status(200);
    let mut want = vec![root_acc.clone(), a_acc.clone(), b_acc];
    want.sort();
    assert_eq!(r.body["data"], json!({ "keys": want }));
    // The trailing slash and ?list=true reach the same endpoint.
    let r = srv
        .req(
            "GET",
            "auth/token/accessors/?list=true",
            Some(&srv.root),
            None,
        )
        .await;
    assert_eq!(r.body["data"]["keys"].as_array().unwrap().len(), 3);
    srv.post("auth/token/revoke", &srv.root, json!({"token": b}))
        .await
        .assert_status(204);
    let mut want = vec![root_acc, a_acc];
    want.sort();
    assert_eq!(
        srv.list("auth/token/accessors", &srv.root).await.body["data"]["keys"],
        json!(want)
    );
    // Not a read; without sudo, denied as by the ACL.
    let r = srv.get("auth/token/accessors", &srv.root).await;
    r.assert_status(405);
    assert_eq!(
        r.errors(),
        ["1 error occurred:\n\t* unsupported operation\n\n"]
    );
    for path in ["auth/token/accessors", "auth/token/accessors/"] {
        let r = srv.list(path, &a).await;
        r.assert_status(403);
        assert_eq!(r.errors(), ["1 error occurred:\n\t* permission denied\n\n"]);
    }
    srv.write_policy(
        "hygiene",
        r#"path "auth/token/accessors" { capabilities = ["list", "sudo"] }"#,
    )
    .await;
    let listed = srv.token_with(&["hygiene"], json!({})).await;
    let r = srv.list("auth/token/accessors", &listed).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["keys"].as_array().unwrap().len(), 3);
    srv.write_policy(
        "no-sudo",
        r#"path "auth/token/accessors" { capabilities = ["list"] }"#,
    )
    .await;
    let t = srv.token_with(&["no-sudo"], json!({})).await;
    srv.list("auth/token/accessors", &t)
        .await
        .assert_status(403);
}

#[tokio::test]
async fn create_lookup_and_auth_block() {
    let srv = TestServer::start().await;
    srv.write_policy("p1", "path \"sys/mounts\" { capabilities = [\"read\"] }")
        .await;
    let r = srv
        .post("auth/token/create", &srv.root, json!({"policies": ["P1"], "ttl": "1h", "meta": {"team": "ci"}, "display_name": "my app", "num_uses": 0}))
        .await;
    r.assert_status(200);
    let a = &r.body["auth"];
    let tok = a["client_token"].as_str().unwrap();
    assert!(tok.starts_with("hvs."));
    assert_eq!(a["policies"], json!(["default", "p1"]));
    assert_eq!(a["token_policies"], json!(["default", "p1"]));
    assert_eq!(a["lease_duration"], 3600);
    assert_eq!(a["renewable"], true);
    assert_eq!(a["orphan"], false);
    assert_eq!(a["token_type"], "service");
    assert_eq!(a["metadata"], json!({"team": "ci"}));
    assert_eq!(a["mfa_requirement"], serde_json::Value::Null);
    assert_eq!(r.body["data"], serde_json::Value::Null);
    let l = srv.get("auth/token/lookup-self", tok).await;
    let d = &l.body["data"];
    assert_eq!(d["id"], tok);
    assert_eq!(d["accessor"], a["accessor"]);
    assert_eq!(d["display_name"], "token-my-app");
    assert_eq!(d["path"], "auth/token/create");
    assert_eq!(d["creation_ttl"], 3600);
    assert_eq!(d["ttl"], 3600);
    assert_eq!(d["meta"], json!({"team": "ci"}));
    assert!(d["issue_time"].is_string() && d["expire_time"].is_string());
    // lookup by token and by accessor.
    let l2 = srv
        .post("auth/token/lookup", &srv.root, json!({"token": tok}))
        .await;
    assert_eq!(l2.body["data"]["id"], tok);
    let la = srv
        .post(
            "auth/token/lookup-accessor",
            &srv.root,
            json!({"accessor": a["accessor"]}),
        )
        .await;
    assert_eq!(la.body["data"]["id"], "");
    assert_eq!(la.body["data"]["policies"], json!(["default", "p1"]));
    let bad = srv
        .post("auth/token/lookup", &srv.root, json!({"token": "hvs.nope"}))
        .await;
    bad.assert_status(403);
    assert_eq!(bad.errors(), ["bad token"]);
    let bad = srv
        .post(
            "auth/token/lookup-accessor",
            &srv.root,
            json!({"accessor": "nope"}),
        )
        .await;
    bad.assert_status(400);
    assert_eq!(
        bad.errors(),
        ["1 error occurred:\n\t* invalid accessor\n\n"]
    );
}

#[tokio::test]
async fn child_policies_must_be_a_subset_without_sudo() {
    let srv = TestServer::start().await;
    srv.write_policy(
        "creator",
        "path \"auth/token/create\" { capabilities = [\"update\"] }",
    )
    .await;
    srv.write_policy("extra", "path \"sys/*\" { capabilities = [\"read\"] }")
        .await;
    let parent = srv.token_with(&["creator"], json!({})).await;
    let r = srv
        .post("auth/token/create", &parent, json!({"policies": ["extra"]}))
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["child policies must be subset of parent"]);
    let r = srv
        .post(
            "auth/token/create",
            &parent,
            json!({"policies": ["creator"]}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["auth"]["policies"], json!(["creator", "default"]));
    // Inherit when no policies given.
    let r = srv.post("auth/token/create", &parent, json!({})).await;
    assert_eq!(r.body["auth"]["policies"], json!(["creator", "default"]));
    // Sudo-gated options.
    for (body, msg) in [
        (
            json!({"id": "custom"}),
            "root or sudo privileges required to specify token id",
        ),
        (
            json!({"no_parent": true}),
            "root or sudo privileges required to create orphan token",
        ),
        (
            json!({"period": "1h"}),
            "root or sudo privileges required to create periodic token",
        ),
        // Without sudo the subset rule answers first (OpenBao 2.7.2).
        (
            json!({"policies": ["root"]}),
            "child policies must be subset of parent",
        ),
    ] {
        let r = srv.post("auth/token/create", &parent, body).await;
        r.assert_status(400);
        assert_eq!(r.errors(), [msg]);
    }
    // A restricted-use token cannot create children.
    let limited = srv.token_with(&["creator"], json!({"num_uses": 5})).await;
    let r = srv.post("auth/token/create", &limited, json!({})).await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        ["restricted use token cannot generate child tokens"]
    );
    // Root may pick an id; duplicates are refused.
    let r = srv
        .post(
            "auth/token/create",
            &srv.root,
            json!({"id": "my-own-id", "policies": ["default"]}),
        )
        .await;
    assert_eq!(r.body["auth"]["client_token"], "my-own-id");
    let r = srv
        .post("auth/token/create", &srv.root, json!({"id": "my-own-id"}))
        .await;
    r.assert_status(400);
    // Orphans via create-orphan need no sudo (only the ACL on the path).
    srv.write_policy(
        "orphaner",
        "path \"auth/token/create-orphan\" { capabilities = [\"update\"] }",
    )
    .await;
    let o = srv.token_with(&["orphaner"], json!({})).await;
    let r = srv.post("auth/token/create-orphan", &o, json!({})).await;
    r.assert_status(200);
    assert_eq!(r.body["auth"]["orphan"], true);
}

#[tokio::test]
async fn renew_is_capped_by_explicit_max_ttl_with_warning() {
    let srv = TestServer::start().await;
    let t = srv
        .token_with(&["default"], json!({"ttl": "1h", "explicit_max_ttl": "2h"}))
        .await;
    srv.clock.advance(Duration::from_secs(1800));
    let r = srv
        .post("auth/token/renew-self", &t, json!({"increment": "8h"}))
        .await;
    r.assert_status(200);
    assert_eq!(r.body["auth"]["lease_duration"], 5400);
    assert_eq!(r.body["auth"]["client_token"], t.as_str());
    assert_eq!(
        r.body["warnings"],
        json!([
            "TTL of \"8h\" exceeded the effective max_ttl of \"1h30m\"; TTL value is capped accordingly"
        ])
    );
    let d = srv.get("auth/token/lookup-self", &t).await.body["data"].clone();
    assert_eq!(d["ttl"], 5400);
    assert!(d["last_renewal"].is_string());
    // Past the hard limit the token is gone.
    srv.clock.advance(Duration::from_secs(5401));
    srv.get("auth/token/lookup-self", &t)
        .await
        .assert_status(403);
    // Renew of a non-renewable token.
    let nr = srv
        .token_with(&["default"], json!({"renewable": false}))
        .await;
    let r = srv.post("auth/token/renew-self", &nr, json!({})).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["lease is not renewable"]);
    // renew by token and accessor.
    let t2 = srv.token_with(&["default"], json!({"ttl": "10m"})).await;
    let r = srv
        .post(
            "auth/token/renew",
            &srv.root,
            json!({"token": t2, "increment": "20m"}),
        )
        .await;
    assert_eq!(r.body["auth"]["lease_duration"], 1200);
    let acc = accessor_of(&srv, &t2).await;
    let r = srv
        .post(
            "auth/token/renew-accessor",
            &srv.root,
            json!({"accessor": acc, "increment": 60}),
        )
        .await;
    assert_eq!(r.body["auth"]["lease_duration"], 60);
    assert_eq!(r.body["auth"]["client_token"], "");
}

#[tokio::test]
async fn expired_tokens_are_denied() {
    let srv = TestServer::start().await;
    let t = srv.token_with(&["default"], json!({"ttl": "1h"})).await;
    srv.get("auth/token/lookup-self", &t)
        .await
        .assert_status(200);
    srv.clock.advance(Duration::from_secs(3599));
    assert_eq!(
        srv.get("auth/token/lookup-self", &t).await.body["data"]["ttl"],
        1
    );
    srv.clock.advance(Duration::from_secs(2));
    let r = srv.get("auth/token/lookup-self", &t).await;
    r.assert_status(403);
    assert_eq!(r.errors(), ["permission denied"]);
}

#[tokio::test]
async fn revocation_tree_orphan_and_accessor() {
    let srv = TestServer::start().await;
    srv.write_policy(
        "creator",
        "path \"auth/token/*\" { capabilities = [\"update\", \"read\"] }",
    )
    .await;
    let parent = srv.token_with(&["creator"], json!({})).await;
    let child =
        srv.post("auth/token/create", &parent, json!({})).await.body["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string();
    let grandchild =
        srv.post("auth/token/create", &child, json!({})).await.body["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string();
    srv.post("auth/token/revoke", &srv.root, json!({"token": parent}))
        .await
        .assert_status(204);
    for t in [&parent, &child, &grandchild] {
        srv.get("auth/token/lookup-self", t)
            .await
            .assert_status(403);
    }
    // revoke-orphan: children survive and become orphans.
    let parent = srv.token_with(&["creator"], json!({})).await;
    let child =
        srv.post("auth/token/create", &parent, json!({})).await.body["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string();
    assert_eq!(
        srv.get("auth/token/lookup-self", &child).await.body["data"]["orphan"],
        false
    );
    let r = srv
        .post(
            "auth/token/revoke-orphan",
            &parent,
            json!({"token": parent}),
        )
        .await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        ["root or sudo privileges required to revoke and orphan"]
    );
    srv.post(
        "auth/token/revoke-orphan",
        &srv.root,
        json!({"token": parent}),
    )
    .await
    .assert_status(204);
    srv.get("auth/token/lookup-self", &parent)
        .await
        .assert_status(403);
    let l = srv.get("auth/token/lookup-self", &child).await;
    l.assert_status(200);
    assert_eq!(l.body["data"]["orphan"], true);
    // revoke-accessor, revoke-self, unknowns.
    let acc = accessor_of(&srv, &child).await;
    srv.post(
        "auth/token/revoke-accessor",
        &srv.root,
        json!({"accessor": acc}),
    )
    .await
    .assert_status(204);
    srv.get("auth/token/lookup-self", &child)
        .await
        .assert_status(403);
    let r = srv
        .post(
            "auth/token/revoke-accessor",
            &srv.root,
            json!({"accessor": "nope"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!(["No token found with this accessor"])
    );
    srv.post(
        "auth/token/revoke",
        &srv.root,
        json!({"token": "hvs.unknown"}),
    )
    .await
    .assert_status(204);
    let r = srv.post("auth/token/revoke", &srv.root, json!({})).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["missing token ID"]);
    let me = srv.token_with(&["default"], json!({})).await;
    srv.post("auth/token/revoke-self", &me, json!({}))
        .await
        .assert_status(204);
    srv.get("auth/token/lookup-self", &me)
        .await
        .assert_status(403);
}

#[tokio::test]
async fn num_uses_are_charged_per_request() {
    let srv = TestServer::start().await;
    let t = srv.token_with(&["default"], json!({"num_uses": 3})).await;
    let r = srv.get("auth/token/lookup-self", &t).await;
    assert_eq!(r.body["data"]["num_uses"], 2);
    // A denied request still costs a use.
    srv.get("sys/mounts", &t).await.assert_status(403);
    let r = srv.get("auth/token/lookup-self", &t).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["num_uses"], -1);
    srv.get("auth/token/lookup-self", &t)
        .await
        .assert_status(403);
}

#[tokio::test]
async fn hundred_parallel_requests_on_a_ten_use_token_exactly_ten_succeed() {
    let srv = std::sync::Arc::new(TestServer::start().await);
    let t = srv.token_with(&["default"], json!({"num_uses": 10})).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (srv, t) = (srv.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            srv.get("auth/token/lookup-self", &t).await.status.as_u16()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            200 => ok += 1,
            403 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 10);
}

#[tokio::test]
async fn cubbyholes_are_private_and_die_with_their_token() {
    let srv = TestServer::start().await;
    let a = srv.token_with(&["default"], json!({})).await;
    let b = srv.token_with(&["default"], json!({})).await;
    srv.post("cubbyhole/secret", &a, json!({"v": "a"}))
        .await
        .assert_status(204);
    srv.post("cubbyhole/secret", &b, json!({"v": "b"}))
        .await
        .assert_status(204);
    assert_eq!(srv.get("cubbyhole/secret", &a).await.body["data"]["v"], "a");
    assert_eq!(srv.get("cubbyhole/secret", &b).await.body["data"]["v"], "b");
    srv.get("cubbyhole/secret", &srv.root)
        .await
        .assert_status(404);
    assert_eq!(
        srv.list("cubbyhole", &a).await.body["data"]["keys"],
        json!(["secret"])
    );
    srv.post("auth/token/revoke", &srv.root, json!({"token": a}))
        .await
        .assert_status(204);
    // The revoked token's cubbyhole is gone from storage.
    let left = srv
        .core
        .storage(coffer::mounts::CUBBYHOLE_PREFIX)
        .list("")
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[tokio::test]
async fn expired_tokens_are_swept_from_storage() {
    let srv = TestServer::start().await;
    let short = srv.token_with(&["default"], json!({"ttl": "1m"})).await;
    let renewed = srv.token_with(&["default"], json!({"ttl": "1m"})).await;
    let long = srv.token_with(&["default"], json!({"ttl": "1h"})).await;
    srv.post("cubbyhole/x", &short, json!({"a": "b"}))
        .await
        .assert_status(204);
    srv.clock.advance(Duration::from_secs(30));
    srv.post(
        "auth/token/renew-self",
        &renewed,
        json!({"increment": "10m"}),
    )
    .await
    .assert_status(200);
    srv.clock.advance(Duration::from_secs(31));
    let swept = srv.core.sweep_expired(100).await.unwrap();
    assert_eq!(
        swept, 1,
        "only the expired token; renewal moved the other one's index entry"
    );
    // The expired token is gone from storage (not only refused), with its cubbyhole.
    let acc = srv.core.tokens.accessor_of(&short);
    assert!(
        srv.core
            .tokens
            .lookup_accessor(&acc)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        srv.core
            .storage(coffer::mounts::CUBBYHOLE_PREFIX)
            .list("")
            .await
            .unwrap()
            .is_empty()
    );
    srv.get("auth/token/lookup-self", &renewed)
        .await
        .assert_status(200);
    srv.get("auth/token/lookup-self", &long)
        .await
        .assert_status(200);
    assert_eq!(srv.core.sweep_expired(100).await.unwrap(), 0);
    srv.clock.advance(Duration::from_secs(3600));
    assert_eq!(srv.core.sweep_expired(100).await.unwrap(), 2);
}

#[tokio::test]
async fn token_create_input_errors_match_vault() {
    let srv = TestServer::start().await;
    for (body, msg) in [
        (json!({"ttl": "abc"}), "time: invalid duration \"abc\""),
        (
            json!({"explicit_max_ttl": "abc"}),
            "time: invalid duration \"abc\"",
        ),
        (json!({"period": "abc"}), "time: invalid duration \"abc\""),
        (json!({"ttl": "-5s"}), "ttl must be positive"),
        (
            json!({"explicit_max_ttl": -1}),
            "explicit_max_ttl must be positive",
        ),
        (
            json!({"renewable": "maybe"}),
            "Field validation failed: error converting input for field \"renewable\": '' cannot parse value as 'bool': strconv.ParseBool: invalid syntax",
        ),
    ] {
        let r = srv.post("auth/token/create", &srv.root, body.clone()).await;
        r.assert_status(400);
        assert_eq!(r.errors(), [msg], "{body}");
    }
}

/// The token endpoints' answers to missing or unknown input, in Vault's words (checked against
/// Vault's token store source and OpenBao 2.7.2): a lookup without a token looks up the caller,
/// a renewal without one wants a `token ID`, accessor errors come in Go's multierror text,
/// `type` is not echoed, and `role_name` is only a field of `create/<role>`.
#[tokio::test]
async fn token_endpoint_errors_and_fallbacks_as_vault() {
    let srv = TestServer::start().await;
    let r = srv.post("auth/token/lookup", &srv.root, json!({})).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["id"], srv.root.as_str());
    let r = srv.post("auth/token/renew", &srv.root, json!({})).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["missing token ID"]);
    for path in [
        "auth/token/lookup-accessor",
        "auth/token/renew-accessor",
        "auth/token/revoke-accessor",
    ] {
        let r = srv.post(path, &srv.root, json!({})).await;
        r.assert_status(400);
        assert_eq!(
            r.errors(),
            ["1 error occurred:\n\t* missing accessor\n\n"],
            "{path}"
        );
    }
    for path in ["auth/token/lookup-accessor", "auth/token/renew-accessor"] {
        let r = srv.post(path, &srv.root, json!({"accessor": "nope"})).await;
        r.assert_status(400);
        assert_eq!(
            r.errors(),
            ["1 error occurred:\n\t* invalid accessor\n\n"],
            "{path}"
        );
    }
    let r = srv
        .post("auth/token/create", &srv.root, json!({"type": "bogus"}))
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["invalid 'token_type' value"]);
    let r = srv
        .post("auth/token/create", &srv.root, json!({"role_name": "x"}))
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!(["Endpoint ignored these unrecognized parameters: [role_name]"])
    );
}

/// `auth/token/tidy` (Vault's 202 and warning): on a healthy store it changes nothing; index
/// entries left naming tokens that are gone (accessor, parent, mount and lease links) are
/// removed, and a token whose parent is gone although it still names it (what an interrupted
/// revocation leaves) is revoked, while every other token keeps working. The broken state is
/// written straight into the real store, as a crash would leave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tidy_repairs_dangling_index_entries_and_revokes_orphaned_children() {
    let srv = TestServer::start().await;
    let store = srv.core.storage("sys/token/");
    let create = |token: String| {
        let srv = &srv;
        async move {
            let r = srv
                .post("auth/token/create", &token, json!({"policies": ["root"]}))
                .await;
            r.assert_status(200);
            r.body["auth"]["client_token"].as_str().unwrap().to_string()
        }
    };
    let parent = create(srv.root.clone()).await;
    let child = create(parent.clone()).await;
    let other = create(srv.root.clone()).await;
    let tidy = async || {
        let r = srv.post("auth/token/tidy", &srv.root, json!({})).await;
        r.assert_status(202);
        assert_eq!(
            r.body["warnings"],
            json!([
                "Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs."
            ])
        );
    };
    let healthy = store.list_recursive("").await.unwrap();
    tidy().await;
    assert_eq!(store.list_recursive("").await.unwrap(), healthy);

    let accessors = store.list("accessor/").await.unwrap().len();
    let parent_key = srv.core.tokens.key_of(&parent);
    let injected = [
        "accessor/0123456789abcdef".to_string(),
        format!("parent/{parent_key}/gone"),
        "mount/auth_token_0000/gone".to_string(),
        "lease/auth/token/create/hgone".to_string(),
    ];
    for key in &injected {
        store.put(key, b"gone".to_vec()).await.unwrap();
    }
    // The parent's entry alone disappears, as if its revocation stopped half way.
    store.delete(&format!("id/{parent_key}")).await.unwrap();
    tidy().await;
    for key in &injected {
        assert_eq!(store.get(key).await.unwrap(), None, "{key} left");
    }
    let remaining = store.list_recursive("").await.unwrap();
    assert!(
        !remaining.iter().any(|k| k.contains(&parent_key)),
        "{remaining:?}"
    );
    // The parent's accessor went as a dangling entry, the child's with its revocation.
    assert_eq!(store.list("accessor/").await.unwrap().len(), accessors - 2);
    srv.get("auth/token/lookup-self", &child)
        .await
        .assert_status(403);
    srv.get("auth/token/lookup-self", &other)
        .await
        .assert_status(200);
    srv.get("auth/token/lookup-self", &srv.root)
        .await
        .assert_status(200);
    // Nothing is left to repair.
    let after = store.list_recursive("").await.unwrap();
    tidy().await;
    assert_eq!(store.list_recursive("").await.unwrap(), after);
}
