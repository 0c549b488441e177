//! kv under concurrent writers, and the isolation of kv mounts from each other.

use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::{enable, metadata, write};
use crate::common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_cas_writers_on_the_same_version_exactly_one_wins() {
    let srv = Arc::new(TestServer::start().await);
    write(&srv, "secret", "race", json!({"v": 0})).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let srv = srv.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"data": {"writer": i}, "options": {"cas": 1}});
            srv.put("secret/data/race", &srv.root, body).await
        }));
    }
    let mut wins = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            200 => wins.push(r.body["data"]["version"].clone()),
            400 => assert_eq!(
                r.errors(),
                ["check-and-set parameter did not match the current version"]
            ),
            other => panic!("unexpected status {other}: {}", r.text),
        }
    }
    assert_eq!(wins, [json!(2)]);
    assert_eq!(metadata(&srv, "secret", "race").await["current_version"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_and_patches_never_reuse_a_version_number() {
    let srv = Arc::new(TestServer::start().await);
    srv.post("secret/metadata/n", &srv.root, json!({"max_versions": 100}))
        .await
        .assert_status(204);
    write(&srv, "secret", "n", json!({"count": 0})).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let srv = srv.clone();
        tasks.push(tokio::spawn(async move {
            let r = if i % 2 == 0 {
                srv.put("secret/data/n", &srv.root, json!({"data": {"i": i}}))
                    .await
            } else {
                super::patch(
                    &srv,
                    "secret/data/n",
                    &srv.root,
                    json!({"data": {format!("p{i}"): i}}),
                )
                .await
            };
            r.assert_status(200);
            r.body["data"]["version"].as_u64().unwrap()
        }));
    }
    let mut seen = BTreeSet::new();
    for t in tasks {
        assert!(
            seen.insert(t.await.unwrap()),
            "a version number was issued twice"
        );
    }
    assert_eq!(seen, (2..=41).collect());
    let m = metadata(&srv, "secret", "n").await;
    assert_eq!(m["current_version"], 41);
    assert_eq!(m["versions"].as_object().unwrap().len(), 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_to_different_keys_all_land() {
    let srv = Arc::new(TestServer::start().await);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let srv = srv.clone();
        tasks.push(tokio::spawn(async move {
            write(&srv, "secret", &format!("many/k{i:02}"), json!({"i": i})).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 1);
    }
    let r = srv.list("secret/metadata/many", &srv.root).await;
    assert_eq!(r.body["data"]["keys"].as_array().unwrap().len(), 50);
    for i in [0, 17, 49] {
        let r = srv
            .get(&format!("secret/data/many/k{i:02}"), &srv.root)
            .await;
        assert_eq!(r.body["data"]["data"], json!({"i": i}));
    }
}

#[tokio::test]
async fn two_kv_mounts_never_see_each_others_keys() {
    let srv = TestServer::start().await;
    enable(&srv, "other", json!({"type": "kv-v2"})).await;
    enable(&srv, "flat", json!({"type": "kv-v1"})).await;
    write(&srv, "secret", "shared/name", json!({"from": "secret"})).await;
    write(&srv, "other", "shared/name", json!({"from": "other"})).await;
    srv.put("flat/shared/name", &srv.root, json!({"from": "flat"}))
        .await
        .assert_status(204);
    let r = srv.get("secret/data/shared/name", &srv.root).await;
    assert_eq!(r.body["data"]["data"]["from"], "secret");
    let r = srv.get("other/data/shared/name", &srv.root).await;
    assert_eq!(r.body["data"]["data"]["from"], "other");
    assert_eq!(
        srv.get("flat/shared/name", &srv.root).await.body["data"]["from"],
        "flat"
    );
    srv.post("other/config", &srv.root, json!({"cas_required": true}))
        .await
        .assert_status(204);
    srv.post(
        "secret/data/shared/name",
        &srv.root,
        json!({"data": {"a": 1}}),
    )
    .await
    .assert_status(200);
    srv.delete("other/metadata/shared/name", &srv.root)
        .await
        .assert_status(204);
    srv.get("secret/data/shared/name", &srv.root)
        .await
        .assert_status(200);
    srv.get("other/data/shared/name", &srv.root)
        .await
        .assert_status(404);
    // A policy on one mount grants nothing on the other.
    srv.write_policy("one", r#"path "secret/data/*" { capabilities = ["read"] }"#)
        .await;
    let tok = srv.token_with(&["one"], json!({})).await;
    srv.get("secret/data/shared/name", &tok)
        .await
        .assert_status(200);
    srv.post(
        "other/data/shared/name",
        &srv.root,
        json!({"data": {"again": true}, "options": {"cas": 0}}),
    )
    .await
    .assert_status(200);
    srv.get("other/data/shared/name", &tok)
        .await
        .assert_status(403);
}

#[tokio::test]
async fn disabling_a_kv_mount_deletes_its_data() {
    let srv = TestServer::start().await;
    enable(&srv, "gone", json!({"type": "kv-v2"})).await;
    write(&srv, "gone", "a/b", json!({"x": 1})).await;
    srv.post("gone/metadata/c", &srv.root, json!({"max_versions": 2}))
        .await
        .assert_status(204);
    let uuid = srv.get("sys/mounts/gone", &srv.root).await.body["data"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let view = srv.core.storage(&format!("logical/{uuid}/"));
    assert!(!view.list_recursive("").await.unwrap().is_empty());
    srv.delete("sys/mounts/gone", &srv.root)
        .await
        .assert_status(204);
    assert!(view.list_recursive("").await.unwrap().is_empty());
    let r = srv.get("gone/data/a/b", &srv.root).await;
    r.assert_status(404);
    enable(&srv, "gone", json!({"type": "kv-v2"})).await;
    srv.get("gone/data/a/b", &srv.root).await.assert_status(404);
    srv.list("gone/metadata", &srv.root)
        .await
        .assert_status(404);
}
