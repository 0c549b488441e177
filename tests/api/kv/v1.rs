//! kv version 1 over HTTP: plain JSON at `<mount>/<path>`, lease hints from `ttl`/`lease`.

use serde_json::json;

use super::{enable, patch};
use crate::common::TestServer;

#[tokio::test]
async fn v1_read_write_list_delete() {
    let srv = TestServer::start().await;
    enable(
        &srv,
        "kv1",
        json!({"type": "kv", "options": {"version": "1"}}),
    )
    .await;
    let body = json!({"db_name": "users", "nested": {"a": [1, 2]}, "n": 3});
    let w = srv.put("kv1/mysql/webapp", &srv.root, body.clone()).await;
    w.assert_status(204);
    assert_eq!(w.text, "");
    let r = srv.get("kv1/mysql/webapp", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"], body);
    assert_eq!(r.body["lease_duration"], 2_764_800);
    assert_eq!(r.body["lease_id"], "");
    assert_eq!(r.body["renewable"], false);
    // Overwrite replaces the whole object.
    srv.post("kv1/mysql/webapp", &srv.root, json!({"only": "this"}))
        .await
        .assert_status(204);
    assert_eq!(
        srv.get("kv1/mysql/webapp", &srv.root).await.body["data"],
        json!({"only": "this"})
    );
    srv.put("kv1/mysql/other", &srv.root, json!({"a": 1}))
        .await
        .assert_status(204);
    srv.put("kv1/top", &srv.root, json!({"a": 1}))
        .await
        .assert_status(204);
    let r = srv.list("kv1/", &srv.root).await;
    assert_eq!(r.body["data"]["keys"], json!(["mysql/", "top"]));
    let r = srv.list("kv1/mysql", &srv.root).await;
    assert_eq!(r.body["data"]["keys"], json!(["other", "webapp"]));
    srv.list("kv1/nothing", &srv.root).await.assert_status(404);
    srv.delete("kv1/mysql/webapp", &srv.root)
        .await
        .assert_status(204);
    srv.delete("kv1/mysql/webapp", &srv.root)
        .await
        .assert_status(204);
    let r = srv.get("kv1/mysql/webapp", &srv.root).await;
    r.assert_status(404);
    assert_eq!(r.text, r#"{"errors":[]}"#);
}

#[tokio::test]
async fn v1_errors_and_unsupported_operations() {
    let srv = TestServer::start().await;
    enable(&srv, "kv1", json!({"type": "kv-v1"})).await;
    let r = srv.req("PUT", "kv1/empty", Some(&srv.root), None).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["missing data fields"]);
    srv.get("kv1/empty", &srv.root).await.assert_status(404);
    srv.put("kv1/p", &srv.root, json!({"a": 1}))
        .await
        .assert_status(204);
    let r = patch(&srv, "kv1/p", &srv.root, json!({"b": 2})).await;
    r.assert_status(405);
    // v2 paths mean nothing special on v1: data/x is just a key.
    srv.put("kv1/data/x", &srv.root, json!({"a": 1}))
        .await
        .assert_status(204);
    assert_eq!(
        srv.get("kv1/data/x", &srv.root).await.body["data"],
        json!({"a": 1})
    );
}

#[tokio::test]
async fn v1_lease_duration_from_ttl_lease_or_mount_default() {
    let srv = TestServer::start().await;
    enable(&srv, "kv1", json!({"type": "kv-v1"})).await;
    for (key, body, want) in [
        ("a", json!({"k": "v", "ttl": "1h"}), 3600),
        ("b", json!({"k": "v", "ttl": 120}), 120),
        ("c", json!({"k": "v", "ttl": "90"}), 90),
        ("d", json!({"k": "v", "lease": "30m"}), 1800),
        ("e", json!({"k": "v", "ttl": "bogus"}), 2_764_800),
        ("f", json!({"k": "v", "ttl": "100000h"}), 360_000_000),
        ("g", json!({"k": "v"}), 2_764_800),
        ("h", json!({"k": "v", "ttl": 1.5}), 2_764_800),
        ("i", json!({"k": "v", "ttl": "-5s"}), -5),
        ("j", json!({"k": "v", "ttl": "", "lease": "5m"}), 0),
    ] {
        srv.put(&format!("kv1/{key}"), &srv.root, body.clone())
            .await
            .assert_status(204);
        let r = srv.get(&format!("kv1/{key}"), &srv.root).await;
        assert_eq!(r.body["lease_duration"], want, "{body}");
        assert_eq!(r.body["data"], body);
    }
    srv.post(
        "sys/mounts/kv1/tune",
        &srv.root,
        json!({"default_lease_ttl": "1h"}),
    )
    .await
    .assert_status(204);
    assert_eq!(
        srv.get("kv1/g", &srv.root).await.body["lease_duration"],
        3600
    );
    assert_eq!(
        srv.get("kv1/b", &srv.root).await.body["lease_duration"],
        120
    );
}

#[tokio::test]
async fn v1_acl_uses_create_and_update() {
    let srv = TestServer::start().await;
    enable(&srv, "kv1", json!({"type": "kv-v1"})).await;
    srv.write_policy("c", r#"path "kv1/*" { capabilities = ["create", "read"] }"#)
        .await;
    let tok = srv.token_with(&["c"], json!({})).await;
    srv.put("kv1/x", &tok, json!({"a": 1}))
        .await
        .assert_status(204);
    srv.put("kv1/x", &tok, json!({"a": 2}))
        .await
        .assert_status(403);
    assert_eq!(srv.get("kv1/x", &tok).await.body["data"], json!({"a": 1}));
    srv.delete("kv1/x", &tok).await.assert_status(403);
}

#[tokio::test]
async fn tuning_v1_to_v2_upgrades_the_data_and_cannot_be_undone() {
    let srv = TestServer::start().await;
    enable(&srv, "up", json!({"type": "kv-v1"})).await;
    srv.put("up/a", &srv.root, json!({"k": "v"}))
        .await
        .assert_status(204);
    srv.put("up/dir/b", &srv.root, json!({"k": "v2", "ttl": "1h"}))
        .await
        .assert_status(204);
    let r = srv
        .post(
            "sys/mounts/up/tune",
            &srv.root,
            json!({"options": {"version": "2"}}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!([
            "Upgrading mount from version 1 to version 2. This mount will be unavailable for a brief period and will resume service shortly."
        ])
    );
    let r = srv.get("sys/internal/ui/mounts/up", &srv.root).await;
    assert_eq!(r.body["data"]["options"]["version"], "2");
    let r = srv.get("up/data/dir/b", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["data"], json!({"k": "v2", "ttl": "1h"}));
    assert_eq!(r.body["data"]["metadata"]["version"], 1);
    let r = srv.get("up/metadata/a", &srv.root).await;
    assert_eq!(r.body["data"]["current_version"], 1);
    assert_eq!(r.body["data"]["oldest_version"], 1);
    let r = srv.list("up/metadata", &srv.root).await;
    assert_eq!(r.body["data"]["keys"], json!(["a", "dir/"]));
    // The old v1 paths are now the v2 catch-all.
    srv.get("up/a", &srv.root).await.assert_status(404);
    let r = srv
        .post(
            "sys/mounts/up/tune",
            &srv.root,
            json!({"options": {"version": "1"}}),
        )
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["cannot downgrade mount from version 2"]);
    // Writing continues the version history.
    let r = srv
        .post("up/data/a", &srv.root, json!({"data": {"k": "new"}}))
        .await;
    assert_eq!(r.body["data"]["version"], 2);
}
