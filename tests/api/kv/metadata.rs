//! kv-v2 `metadata/` and `config` over HTTP: every metadata field, settings written before data,
//! version pruning, listing, deletion and `delete_version_after` against the mock clock.

use serde_json::{Value, json};
use std::time::Duration;

use super::{metadata, patch, write};
use crate::common::TestServer;

#[tokio::test]
async fn metadata_read_reports_every_vault_field() {
    let srv = TestServer::start().await;
    write(&srv, "secret", "m", json!({"a": 1})).await;
    srv.clock.advance(Duration::from_secs(5));
    write(&srv, "secret", "m", json!({"a": 2})).await;
    let m = metadata(&srv, "secret", "m").await;
    let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "cas_required",
            "created_time",
            "current_version",
            "custom_metadata",
            "delete_version_after",
            "max_versions",
            "oldest_version",
            "updated_time",
            "versions"
        ]
    );
    assert_eq!(m["cas_required"], false);
    assert_eq!(m["current_version"], 2);
    assert_eq!(m["custom_metadata"], Value::Null);
    assert_eq!(m["delete_version_after"], "0s");
    assert_eq!(m["max_versions"], 0);
    assert_eq!(m["oldest_version"], 0);
    assert_eq!(m["created_time"], m["versions"]["1"]["created_time"]);
    assert_eq!(m["updated_time"], m["versions"]["2"]["created_time"]);
    assert_ne!(m["created_time"], m["updated_time"]);
    assert_eq!(m["versions"]["2"]["deletion_time"], "");
    assert_eq!(m["versions"]["2"]["destroyed"], false);
    srv.get("secret/metadata/none", &srv.root)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn metadata_written_before_any_data() {
    let srv = TestServer::start().await;
    let body = json!({
        "max_versions": 2,
        "cas_required": "true",
        "delete_version_after": "1h30m",
        "custom_metadata": {"owner": "ops", "n": 1}
    });
    srv.post("secret/metadata/pre", &srv.root, body)
        .await
        .assert_status(204);
    let m = metadata(&srv, "secret", "pre").await;
    assert_eq!(m["current_version"], 0);
    assert_eq!(m["versions"], json!({}));
    assert_eq!(m["max_versions"], 2);
    assert_eq!(m["cas_required"], true);
    assert_eq!(m["delete_version_after"], "1h30m0s");
    assert_eq!(m["custom_metadata"], json!({"owner": "ops", "n": "1"}));
    assert_eq!(m["created_time"], m["updated_time"]);
    // The key now demands CAS, and every version carries the custom metadata.
    let r = srv
        .post("secret/data/pre", &srv.root, json!({"data": {"a": 1}}))
        .await;
    assert_eq!(
        r.errors(),
        ["check-and-set parameter required for this call"]
    );
    let r = srv
        .post(
            "secret/data/pre",
            &srv.root,
            json!({"data": {"a": 1}, "options": {"cas": 0}}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["data"]["custom_metadata"],
        json!({"owner": "ops", "n": "1"})
    );
    // delete_version_after schedules the deletion at write time.
    assert_ne!(r.body["data"]["deletion_time"], "");
    // An empty write changes nothing and creates nothing.
    srv.post("secret/metadata/empty", &srv.root, json!({}))
        .await
        .assert_status(204);
    srv.get("secret/metadata/empty", &srv.root)
        .await
        .assert_status(404);
    // Patch merges settings and custom metadata (null removes a key).
    let r = patch(
        &srv,
        "secret/metadata/pre",
        &srv.root,
        json!({"custom_metadata": {"owner": null, "team": "db"}, "max_versions": 5}),
    )
    .await;
    r.assert_status(204);
    let m = metadata(&srv, "secret", "pre").await;
    assert_eq!(m["custom_metadata"], json!({"n": "1", "team": "db"}));
    assert_eq!(m["max_versions"], 5);
    assert_eq!(m["cas_required"], true);
    let r = patch(
        &srv,
        "secret/metadata/none",
        &srv.root,
        json!({"max_versions": 1}),
    )
    .await;
    r.assert_status(404);
    // Patching the field itself with null removes all custom metadata.
    patch(
        &srv,
        "secret/metadata/pre",
        &srv.root,
        json!({"custom_metadata": null}),
    )
    .await
    .assert_status(204);
    assert_eq!(
        metadata(&srv, "secret", "pre").await["custom_metadata"],
        Value::Null
    );
    let r = srv
        .get("secret/data/pre?version=1&version=2", &srv.root)
        .await;
    assert_eq!(
        r.errors(),
        [
            "Field validation failed: error converting input for field \"version\": '' expected type 'int', got unconvertible type '[]string'"
        ]
    );
}

#[tokio::test]
async fn bad_metadata_input_changes_nothing() {
    let srv = TestServer::start().await;
    srv.post(
        "secret/metadata/b",
        &srv.root,
        json!({"max_versions": 4, "custom_metadata": {"k": "v"}}),
    )
    .await
    .assert_status(204);
    let before = metadata(&srv, "secret", "b").await;
    let cases = [
        (
            json!({"max_versions": -1}),
            "error converting input for field \"max_versions\": cannot provide negative value '-1'",
        ),
        (
            json!({"max_versions": "abc"}),
            "error converting input for field \"max_versions\": '' cannot parse value as 'int': strconv.ParseInt: invalid syntax",
        ),
        (
            json!({"max_versions": 1, "delete_version_after": "-1s"}),
            "error converting input for field \"delete_version_after\": cannot provide negative value '-1'",
        ),
        (
            json!({"delete_version_after": "soon"}),
            "error converting input for field \"delete_version_after\": time: invalid duration \"soon\"",
        ),
        (
            json!({"cas_required": "maybe"}),
            "error converting input for field \"cas_required\": '' cannot parse value as 'bool': strconv.ParseBool: invalid syntax",
        ),
        (
            json!({"custom_metadata": "x"}),
            "error converting input for field \"custom_metadata\": '' expected type 'map[string]interface {}', got unconvertible type 'string'",
        ),
        (
            json!({"custom_metadata": {"k": ""}}),
            "1 error occurred:\n\t* custom_metadata validation failed: length of value for key \"k\" is 0 but must be 0 < len(value) <= 512\n\n",
        ),
    ];
    for (body, msg) in cases {
        let r = srv.post("secret/metadata/b", &srv.root, body.clone()).await;
        r.assert_status(400);
        assert_eq!(r.errors(), [msg], "{body}");
    }
    let too_many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    srv.post(
        "secret/metadata/b",
        &srv.root,
        json!({"custom_metadata": too_many}),
    )
    .await
    .assert_status(400);
    assert_eq!(metadata(&srv, "secret", "b").await, before);
    let r = srv
        .post("secret/config", &srv.root, json!({"max_versions": -3}))
        .await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        [
            "Field validation failed: error converting input for field \"max_versions\": cannot provide negative value '-3'"
        ]
    );
    let r = srv.get("secret/config", &srv.root).await;
    assert_eq!(r.body["data"]["max_versions"], 0);
}

#[tokio::test]
async fn max_versions_prunes_the_oldest_versions() {
    let srv = TestServer::start().await;
    for i in 1..=12 {
        write(&srv, "secret", "p", json!({"n": i})).await;
    }
    let m = metadata(&srv, "secret", "p").await;
    assert_eq!(m["current_version"], 12);
    assert_eq!(m["oldest_version"], 3);
    let kept: Vec<&String> = m["versions"].as_object().unwrap().keys().collect();
    assert_eq!(kept.len(), 10);
    srv.get("secret/data/p?version=2", &srv.root)
        .await
        .assert_status(404);
    srv.get("secret/data/p?version=3", &srv.root)
        .await
        .assert_status(200);

    // Key-level setting.
    srv.post("secret/metadata/p", &srv.root, json!({"max_versions": 3}))
        .await
        .assert_status(204);
    write(&srv, "secret", "p", json!({"n": 13})).await;
    let m = metadata(&srv, "secret", "p").await;
    assert_eq!(m["oldest_version"], 11);
    let mut kept: Vec<u64> = m["versions"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    kept.sort_unstable();
    assert_eq!(kept, [11, 12, 13]);
    let r = srv.get("secret/data/p?version=10", &srv.root).await;
    assert_eq!(r.text, r#"{"errors":[]}"#);

    // Mount-level setting (the larger of key and mount wins).
    srv.post("secret/config", &srv.root, json!({"max_versions": 2}))
        .await
        .assert_status(204);
    let r = srv.get("secret/config", &srv.root).await;
    assert_eq!(
        r.body["data"],
        json!({"cas_required": false, "delete_version_after": "0s", "max_versions": 2})
    );
    for i in 1..=4 {
        write(&srv, "secret", "q", json!({"n": i})).await;
    }
    let m = metadata(&srv, "secret", "q").await;
    assert_eq!(m["versions"].as_object().unwrap().len(), 2);
    assert_eq!(m["oldest_version"], 3);
}

#[tokio::test]
async fn delete_version_after_follows_the_clock() {
    let srv = TestServer::start().await;
    srv.post(
        "secret/config",
        &srv.root,
        json!({"delete_version_after": "1h"}),
    )
    .await
    .assert_status(204);
    let r = srv.get("secret/config", &srv.root).await;
    assert_eq!(r.body["data"]["delete_version_after"], "1h0m0s");
    write(&srv, "secret", "t", json!({"a": 1})).await;
    srv.post(
        "secret/metadata/t",
        &srv.root,
        json!({"delete_version_after": "10m"}),
    )
    .await
    .assert_status(204);
    write(&srv, "secret", "t", json!({"a": 2})).await;
    srv.get("secret/data/t", &srv.root).await.assert_status(200);
    srv.clock.advance(Duration::from_secs(11 * 60));
    // Version 2 used the smaller key setting; version 1 the mount's hour.
    let r = srv.get("secret/data/t", &srv.root).await;
    r.assert_status(404);
    assert_eq!(r.body["data"]["metadata"]["version"], 2);
    srv.get("secret/data/t?version=1", &srv.root)
        .await
        .assert_status(200);
    srv.clock.advance(Duration::from_secs(3600));
    srv.get("secret/data/t?version=1", &srv.root)
        .await
        .assert_status(404);
    // Undelete restarts the countdown.
    srv.put("secret/undelete/t", &srv.root, json!({"versions": [1]}))
        .await
        .assert_status(204);
    srv.get("secret/data/t?version=1", &srv.root)
        .await
        .assert_status(200);
    // A negative mount setting disables the feature for new versions.
    srv.post(
        "secret/config",
        &srv.root,
        json!({"delete_version_after": -1}),
    )
    .await
    .assert_status(204);
    let r = srv.get("secret/config", &srv.root).await;
    assert_eq!(r.body["data"]["delete_version_after"], "-1s");
    let r = srv
        .post("secret/data/t", &srv.root, json!({"data": {"a": 3}}))
        .await;
    assert_eq!(r.body["data"]["deletion_time"], "");
    srv.clock.advance(Duration::from_secs(48 * 3600));
    srv.get("secret/data/t", &srv.root).await.assert_status(200);
}

#[tokio::test]
async fn list_shows_folders_and_soft_deleted_keys() {
    let srv = TestServer::start().await;
    srv.list("secret/metadata", &srv.root)
        .await
        .assert_status(404);
    for key in ["app/db", "app/api/key", "top", "gone"] {
        write(&srv, "secret", key, json!({"a": 1})).await;
    }
    srv.delete("secret/data/gone", &srv.root)
        .await
        .assert_status(204);
    srv.put("secret/destroy/top", &srv.root, json!({"versions": [1]}))
        .await
        .assert_status(204);
    srv.post(
        "secret/metadata/meta-only",
        &srv.root,
        json!({"max_versions": 1}),
    )
    .await
    .assert_status(204);
    let r = srv.list("secret/metadata/", &srv.root).await;
    r.assert_status(200);
    assert_eq!(
        r.body["data"]["keys"],
        json!(["app/", "gone", "meta-only", "top"])
    );
    let r = srv
        .req(
            "GET",
            "secret/metadata/app?list=true",
            Some(&srv.root),
            None,
        )
        .await;
    assert_eq!(r.body["data"]["keys"], json!(["api/", "db"]));
    srv.list("secret/metadata/nothing", &srv.root)
        .await
        .assert_status(404);
    // A list-only policy on the folder.
    srv.write_policy(
        "lister",
        r#"path "secret/metadata/app/*" { capabilities = ["list"] }"#,
    )
    .await;
    let tok = srv.token_with(&["lister"], json!({})).await;
    srv.list("secret/metadata/app/", &tok)
        .await
        .assert_status(200);
    srv.get("secret/data/app/db", &tok).await.assert_status(403);
}

#[tokio::test]
async fn metadata_delete_removes_every_version() {
    let srv = TestServer::start().await;
    for i in 1..=3 {
        write(&srv, "secret", "d/x", json!({"n": i})).await;
    }
    let mounts = srv.get("sys/mounts", &srv.root).await;
    let uuid = mounts.body["data"]["secret/"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let view = srv.core.storage(&format!("logical/{uuid}/"));
    assert_eq!(view.list_recursive("").await.unwrap().len(), 4);
    srv.delete("secret/metadata/d/x", &srv.root)
        .await
        .assert_status(204);
    assert!(view.list_recursive("").await.unwrap().is_empty());
    let r = srv.get("secret/data/d/x", &srv.root).await;
    assert_eq!(r.text, r#"{"errors":[]}"#);
    srv.get("secret/metadata/d/x", &srv.root)
        .await
        .assert_status(404);
    srv.list("secret/metadata/d", &srv.root)
        .await
        .assert_status(404);
    srv.delete("secret/metadata/d/x", &srv.root)
        .await
        .assert_status(204);
    // The key starts over at version 1.
    assert_eq!(write(&srv, "secret", "d/x", json!({"n": 9})).await, 1);
}
