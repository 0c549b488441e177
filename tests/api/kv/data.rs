//! kv-v2 `data/`, `delete/`, `undelete/`, `destroy/` and `subkeys/` over HTTP, including the
//! AppRole guide's step 10 and ACL create-versus-update.

use serde_json::{Value, json};

use super::{assert_time, metadata, patch, write};
use crate::common::TestServer;

#[tokio::test]
async fn guide_step_10_write_then_read_with_a_data_only_read_policy() {
    let srv = TestServer::start().await;
    let secret = json!({"db_name": "users", "username": "admin", "password": "passw0rd"});
    let r = srv
        .put(
            "secret/data/mysql/webapp",
            &srv.root,
            json!({"data": secret, "options": {}}),
        )
        .await;
    r.assert_status(200);
    let d = &r.body["data"];
    assert_eq!(d["version"], 1);
    assert_eq!(d["destroyed"], false);
    assert_eq!(d["deletion_time"], "");
    assert_eq!(d["custom_metadata"], Value::Null);
    assert_time(&d["created_time"]);
    assert_eq!(
        d.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "created_time",
            "custom_metadata",
            "deletion_time",
            "destroyed",
            "version"
        ]
    );

    srv.write_policy(
        "jenkins",
        r#"path "secret/data/mysql/*" { capabilities = ["read"] }"#,
    )
    .await;
    let tok = srv.token_with(&["jenkins"], json!({})).await;
    // The CLI's preflight passes for a token that only reaches below the mount.
    srv.get("sys/internal/ui/mounts/secret/mysql/webapp", &tok)
        .await
        .assert_status(200);
    let r = srv.get("secret/data/mysql/webapp", &tok).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["data"], secret);
    assert_eq!(r.body["data"]["metadata"]["version"], 1);
    assert_eq!(r.body["data"]["metadata"]["custom_metadata"], Value::Null);
    assert_eq!(r.body["lease_duration"], 0);
    assert_eq!(r.body["mount_type"], "kv");
    // The read-only token may not write, nor read metadata.
    let w = srv
        .put("secret/data/mysql/webapp", &tok, json!({"data": {"x": 1}}))
        .await;
    w.assert_status(403);
    srv.get("secret/metadata/mysql/webapp", &tok)
        .await
        .assert_status(403);
    assert_eq!(
        metadata(&srv, "secret", "mysql/webapp").await["current_version"],
        1
    );
}

#[tokio::test]
async fn post_is_create_without_metadata_and_update_once_it_exists() {
    let srv = TestServer::start().await;
    srv.write_policy("c", r#"path "secret/data/*" { capabilities = ["create"] }"#)
        .await;
    srv.write_policy("u", r#"path "secret/data/*" { capabilities = ["update"] }"#)
        .await;
    let (c, u) = (
        srv.token_with(&["c"], json!({})).await,
        srv.token_with(&["u"], json!({})).await,
    );
    let body = json!({"data": {"a": 1}});
    srv.post("secret/data/k", &u, body.clone())
        .await
        .assert_status(403);
    srv.post("secret/data/k", &c, body.clone())
        .await
        .assert_status(200);
    srv.post("secret/data/k", &c, body.clone())
        .await
        .assert_status(403);
    srv.post("secret/data/k", &u, body.clone())
        .await
        .assert_status(200);
    // Metadata written first makes the first data write an update.
    srv.post("secret/metadata/m", &srv.root, json!({"max_versions": 3}))
        .await
        .assert_status(204);
    srv.post("secret/data/m", &c, body.clone())
        .await
        .assert_status(403);
    // A soft-deleted key still exists for the existence check.
    srv.delete("secret/data/k", &srv.root)
        .await
        .assert_status(204);
    srv.post("secret/data/k", &c, body).await.assert_status(403);
}

#[tokio::test]
async fn versions_are_numbered_and_readable_by_number() {
    let srv = TestServer::start().await;
    for i in 1..=3 {
        assert_eq!(write(&srv, "secret", "app", json!({"n": i})).await, i);
    }
    let r = srv.get("secret/data/app", &srv.root).await;
    assert_eq!(r.body["data"]["data"], json!({"n": 3}));
    for (q, want) in [("1", 1), ("2", 2), ("0", 3), ("", 3), ("-1", 3)] {
        let r = srv
            .get(&format!("secret/data/app?version={q}"), &srv.root)
            .await;
        r.assert_status(200);
        assert_eq!(r.body["data"]["data"]["n"], want, "version={q}");
        assert_eq!(r.body["data"]["metadata"]["version"], want);
    }
    // A version that never existed, and a key that never existed: the plain 404.
    for path in ["secret/data/app?version=7", "secret/data/nope"] {
        let r = srv.get(path, &srv.root).await;
        r.assert_status(404);
        assert_eq!(r.text, r#"{"errors":[]}"#);
    }
    let r = srv.get("secret/data/app?version=abc", &srv.root).await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        [
            "Field validation failed: error converting input for field \"version\": '' cannot parse value as 'int': strconv.ParseInt: invalid syntax"
        ]
    );
}

#[tokio::test]
async fn check_and_set_rules() {
    let srv = TestServer::start().await;
    let w = |cas: Value| json!({"data": {"a": 1}, "options": {"cas": cas}});
    srv.put("secret/data/c", &srv.root, w(json!(0)))
        .await
        .assert_status(200);
    let r = srv.put("secret/data/c", &srv.root, w(json!(0))).await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        ["check-and-set parameter did not match the current version"]
    );
    srv.put("secret/data/c", &srv.root, w(json!("1")))
        .await
        .assert_status(200);
    for bad in [json!("x"), json!([2]), json!({"v": 2}), json!(2.5)] {
        let r = srv.put("secret/data/c", &srv.root, w(bad.clone())).await;
        r.assert_status(400);
        assert_eq!(
            r.errors(),
            ["error parsing check-and-set parameter"],
            "{bad}"
        );
    }
    assert_eq!(metadata(&srv, "secret", "c").await["current_version"], 2);

    // cas_required on the mount, then on the key alone.
    srv.put("secret/config", &srv.root, json!({"cas_required": true}))
        .await
        .assert_status(204);
    for body in [
        json!({"data": {"a": 1}}),
        json!({"data": {"a": 1}, "options": {}}),
    ] {
        let r = srv.put("secret/data/c", &srv.root, body).await;
        r.assert_status(400);
        assert_eq!(
            r.errors(),
            ["check-and-set parameter required for this call"]
        );
    }
    let r = srv
        .put(
            "secret/metadata/c",
            &srv.root,
            json!({"cas_required": false}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!([
            "\"cas_required\" set to false, but is mandated by backend config. This value will be ignored."
        ])
    );
    srv.put("secret/config", &srv.root, json!({"cas_required": false}))
        .await
        .assert_status(204);
    srv.put("secret/data/c", &srv.root, json!({"data": {"a": 1}}))
        .await
        .assert_status(200);
    srv.put(
        "secret/metadata/c",
        &srv.root,
        json!({"cas_required": true}),
    )
    .await
    .assert_status(204);
    let r = srv
        .put("secret/data/c", &srv.root, json!({"data": {"a": 1}}))
        .await;
    assert_eq!(
        r.errors(),
        ["check-and-set parameter required for this call"]
    );
    srv.put("secret/data/c", &srv.root, w(json!(3)))
        .await
        .assert_status(200);
    assert_eq!(metadata(&srv, "secret", "c").await["current_version"], 4);
}

#[tokio::test]
async fn bad_write_bodies_change_nothing() {
    let srv = TestServer::start().await;
    write(&srv, "secret", "b", json!({"keep": true})).await;
    let cases = [
        (json!({"options": {}}), "no data provided"),
        (json!({}), "no data provided"),
        (
            json!({"data": "str"}),
            "error converting input for field \"data\": '' expected type 'map[string]interface {}', got unconvertible type 'string'",
        ),
        (
            json!({"data": [1, 2]}),
            "error converting input for field \"data\": '' expected type 'map[string]interface {}', got unconvertible type '[]interface {}'",
        ),
        (
            json!({"data": {"a": 1}, "options": "x"}),
            "error converting input for field \"options\": '' expected type 'map[string]interface {}', got unconvertible type 'string'",
        ),
        (
            json!({"data": {"a": 1}, "version": "abc"}),
            "error converting input for field \"version\": '' cannot parse value as 'int': strconv.ParseInt: invalid syntax",
        ),
    ];
    for (body, msg) in cases {
        let r = srv.put("secret/data/b", &srv.root, body.clone()).await;
        r.assert_status(400);
        assert_eq!(r.errors(), [msg], "{body}");
    }
    let r = srv
        .put(
            "secret/data/b",
            &srv.root,
            json!({"data": {"a": 1}, "options": {"cas": 0}}),
        )
        .await;
    r.assert_status(400);
    // Malformed and too-deep JSON is refused by the decoder.
    let deep = format!("{{\"data\":{}1{}}}", "{\"a\":".repeat(200), "}".repeat(200));
    let r = TestServer::finish(
        srv.client
            .put(srv.url("secret/data/b"))
            .header("X-Vault-Token", &srv.root)
            .body(deep),
    )
    .await;
    r.assert_status(400);
    let r = srv.req("PUT", "secret/data/b", Some(&srv.root), None).await;
    r.assert_status(400);
    let m = metadata(&srv, "secret", "b").await;
    assert_eq!(m["current_version"], 1);
    let r = srv.get("secret/data/b", &srv.root).await;
    assert_eq!(r.body["data"]["data"], json!({"keep": true}));
}

#[tokio::test]
async fn deep_and_large_secrets_round_trip() {
    let srv = TestServer::start().await;
    let mut deep = json!("leaf");
    for i in 0..100 {
        deep = json!({ format!("k{i}"): deep });
    }
    write(&srv, "secret", "deep", deep.clone()).await;
    let r = srv.get("secret/data/deep", &srv.root).await;
    assert_eq!(r.body["data"]["data"], deep);
    // The largest string Vault's default `max_json_string_value_length` lets through: 1 MiB.
    let big: String = "x".repeat(1024 * 1024);
    write(&srv, "secret", "big", json!({"blob": big})).await;
    let r = srv.get("secret/data/big", &srv.root).await;
    assert_eq!(
        r.body["data"]["data"]["blob"].as_str().map(str::len),
        Some(big.len())
    );
    let r = srv.get("secret/subkeys/deep?depth=2", &srv.root).await;
    assert_eq!(r.body["data"]["subkeys"], json!({"k99": {"k98": null}}));
    // One byte more is refused before the backend sees it (Vault answers 500, Coffer 400).
    let over = json!({"data": {"blob": "z".repeat(1024 * 1024 + 1)}});
    let r = srv.put("secret/data/big", &srv.root, over).await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        ["refused JSON input due to high complexity: JSON string value exceeds allowed length"]
    );
    assert_eq!(metadata(&srv, "secret", "big").await["current_version"], 1);
    // Over the 32 MiB body limit: refused before the backend sees it, nothing written.
    let huge = json!({"data": {"blob": "y".repeat(33 * 1024 * 1024)}});
    let r = srv.put("secret/data/big", &srv.root, huge).await;
    r.assert_status(413);
    assert_eq!(metadata(&srv, "secret", "big").await["current_version"], 1);
}

#[tokio::test]
async fn patch_merges_into_the_current_version() {
    let srv = TestServer::start().await;
    write(
        &srv,
        "secret",
        "p",
        json!({"a": 1, "b": {"c": 2, "d": [1, 2]}, "e": {}}),
    )
    .await;
    let r = patch(
        &srv,
        "secret/data/p",
        &srv.root,
        json!({"data": {"a": null, "b": {"c": 3}, "f": "new"}}),
    )
    .await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["version"], 2);
    let r = srv.get("secret/data/p", &srv.root).await;
    assert_eq!(
        r.body["data"]["data"],
        json!({"b": {"c": 3, "d": [1, 2]}, "e": {}, "f": "new"})
    );

    let r = patch(
        &srv,
        "secret/data/p",
        &srv.root,
        json!({"data": {"x": 1}, "options": {"cas": 1}}),
    )
    .await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        ["check-and-set parameter did not match the current version"]
    );
    patch(
        &srv,
        "secret/data/p",
        &srv.root,
        json!({"data": {"x": 1}, "options": {"cas": 2}}),
    )
    .await
    .assert_status(200);
    let r = patch(&srv, "secret/data/p", &srv.root, json!({"options": {}})).await;
    assert_eq!(r.errors(), ["no data provided"]);
    let r = patch(&srv, "secret/data/p", &srv.root, json!({"data": "str"})).await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        [
            "Field validation failed: error converting input for field \"data\": '' expected type 'map[string]interface {}', got unconvertible type 'string'"
        ]
    );
    // Missing secret: 404 with an empty body.
    let r = patch(
        &srv,
        "secret/data/none",
        &srv.root,
        json!({"data": {"x": 1}}),
    )
    .await;
    r.assert_status(404);
    assert_eq!(r.text, "");
    // Without the merge-patch Content-Type: 415, naming the media type given. The media type
    // is compared whole, its case and parameters aside, as Go's mime.ParseMediaType reads it;
    // none, or a malformed one, is a 400 in Go's words (compared with OpenBao 2.7.2). Each
    // refusal changes nothing (version 3 stays the latest).
    for (content_type, status, error) in [
        (
            "application/json",
            415,
            "PATCH requires Content-Type of application/merge-patch+json, provided application/json",
        ),
        (
            "application/merge-patch+jsonx",
            415,
            "PATCH requires Content-Type of application/merge-patch+json, provided application/merge-patch+jsonx",
        ),
        (
            "Application",
            415,
            "PATCH requires Content-Type of application/merge-patch+json, provided application",
        ),
        ("", 400, "mime: no media type"),
        (
            "application /x",
            400,
            "mime: expected slash after first token",
        ),
        ("application/", 400, "mime: expected token after slash"),
        (
            "application/merge-patch+json x",
            400,
            "mime: unexpected content after media subtype",
        ),
    ] {
        let rb = srv
            .client
            .patch(srv.url("secret/data/p"))
            .header("X-Vault-Token", &srv.root)
            .header("Content-Type", content_type)
            .body(json!({"data": {"y": 1}}).to_string());
        let r = TestServer::finish(rb).await;
        r.assert_status(status);
        assert_eq!(r.body["errors"], json!([error]), "{content_type:?}");
    }
    assert_eq!(metadata(&srv, "secret", "p").await["current_version"], 3);
    write(&srv, "secret", "ct", json!({"a": 1})).await;
    let rb = srv
        .client
        .patch(srv.url("secret/data/ct"))
        .header("X-Vault-Token", &srv.root)
        .header(
            "Content-Type",
            "Application/Merge-Patch+JSON; charset=utf-8",
        )
        .body(json!({"data": {"y": 1}}).to_string());
    let r = TestServer::finish(rb).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["version"], 2);
    // Deleted latest version: 404 carrying that version's metadata.
    srv.delete("secret/data/p", &srv.root)
        .await
        .assert_status(204);
    let r = patch(&srv, "secret/data/p", &srv.root, json!({"data": {"y": 1}})).await;
    r.assert_status(404);
    assert_eq!(r.body["data"]["version"], 3);
    assert_time(&r.body["data"]["deletion_time"]);
    assert_eq!(metadata(&srv, "secret", "p").await["current_version"], 3);
    // A patch-only policy may patch; a read-only one may not.
    srv.write_policy("pp", r#"path "secret/data/*" { capabilities = ["patch"] }"#)
        .await;
    srv.write_policy("ro", r#"path "secret/data/*" { capabilities = ["read"] }"#)
        .await;
    write(&srv, "secret", "q", json!({"a": 1})).await;
    let pp = srv.token_with(&["pp"], json!({})).await;
    let ro = srv.token_with(&["ro"], json!({})).await;
    patch(&srv, "secret/data/q", &ro, json!({"data": {"b": 2}}))
        .await
        .assert_status(403);
    patch(&srv, "secret/data/q", &pp, json!({"data": {"b": 2}}))
        .await
        .assert_status(200);
}
