//! kv-v2 version lifecycle over HTTP: `delete/`, `undelete/`, `destroy/`, `subkeys/` and
//! versions written with `"data": null`.

use serde_json::{Value, json};

use super::{assert_time, metadata, patch, write};
use crate::common::TestServer;

#[tokio::test]
async fn soft_delete_undelete_and_destroy() {
    let srv = TestServer::start().await;
    for i in 1..=4 {
        write(&srv, "secret", "k", json!({"n": i})).await;
    }
    // DELETE data/ soft-deletes the latest version only.
    srv.delete("secret/data/k", &srv.root)
        .await
        .assert_status(204);
    let r = srv.get("secret/data/k", &srv.root).await;
    r.assert_status(404);
    assert_eq!(r.body["data"]["data"], Value::Null);
    assert_eq!(r.body["data"]["metadata"]["version"], 4);
    assert_eq!(r.body["data"]["metadata"]["destroyed"], false);
    assert_time(&r.body["data"]["metadata"]["deletion_time"]);
    assert_eq!(r.body["data"]["metadata"]["custom_metadata"], Value::Null);
    srv.get("secret/data/k?version=3", &srv.root)
        .await
        .assert_status(200);

    // delete/ with ints, strings and a comma string.
    for body in [
        json!({"versions": [1]}),
        json!({"versions": ["2"]}),
        json!({"versions": "3"}),
    ] {
        srv.put("secret/delete/k", &srv.root, body)
            .await
            .assert_status(204);
    }
    for v in 1..=4 {
        srv.get(&format!("secret/data/k?version={v}"), &srv.root)
            .await
            .assert_status(404);
    }
    srv.put("secret/undelete/k", &srv.root, json!({"versions": "1,2"}))
        .await
        .assert_status(204);
    let r = srv.get("secret/data/k?version=2", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["metadata"]["deletion_time"], "");
    srv.put("secret/destroy/k", &srv.root, json!({"versions": [2, 3]}))
        .await
        .assert_status(204);
    let r = srv.get("secret/data/k?version=2", &srv.root).await;
    r.assert_status(404);
    assert_eq!(r.body["data"]["metadata"]["destroyed"], true);
    // A destroyed version cannot be undeleted; a soft-deleted destroyed one stays destroyed.
    srv.put("secret/undelete/k", &srv.root, json!({"versions": [2, 3]}))
        .await
        .assert_status(204);
    srv.get("secret/data/k?version=3", &srv.root)
        .await
        .assert_status(404);
    let m = metadata(&srv, "secret", "k").await;
    assert_eq!(m["versions"]["1"]["deletion_time"], "");
    assert_eq!(m["versions"]["2"]["destroyed"], true);
    assert_eq!(m["versions"]["3"]["destroyed"], true);
    assert_eq!(m["versions"]["4"]["destroyed"], false);
    // Deleting an already deleted latest version is a no-op that keeps its deletion time.
    let before = m["versions"]["4"]["deletion_time"].clone();
    srv.clock.advance(std::time::Duration::from_secs(5));
    srv.delete("secret/data/k", &srv.root)
        .await
        .assert_status(204);
    assert_eq!(
        metadata(&srv, "secret", "k").await["versions"]["4"]["deletion_time"],
        before
    );
    // Missing keys and unknown or negative versions are silently ignored.
    for path in ["delete", "undelete", "destroy"] {
        srv.put(
            &format!("secret/{path}/nokey"),
            &srv.root,
            json!({"versions": [1]}),
        )
        .await
        .assert_status(204);
        srv.put(
            &format!("secret/{path}/k"),
            &srv.root,
            json!({"versions": [99, -1]}),
        )
        .await
        .assert_status(204);
    }
    srv.get("secret/metadata/nokey", &srv.root)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn bad_version_lists_change_nothing() {
    let srv = TestServer::start().await;
    write(&srv, "secret", "v", json!({"a": 1})).await;
    for (path, empty_msg) in [
        ("delete", "No version number provided"),
        ("undelete", "No version number provided"),
        ("destroy", "no version number provided"),
    ] {
        for body in [json!({}), json!({"versions": []}), json!({"versions": ""})] {
            let r = srv.put(&format!("secret/{path}/v"), &srv.root, body).await;
            r.assert_status(400);
            assert_eq!(r.errors(), [empty_msg]);
        }
        let r = srv
            .put(
                &format!("secret/{path}/v"),
                &srv.root,
                json!({"versions": ["abc"]}),
            )
            .await;
        r.assert_status(400);
        assert_eq!(
            r.errors(),
            [
                "Field validation failed: error converting input for field \"versions\": decoding failed due to the following error(s):\n\n'[0]' cannot parse value as 'int': strconv.ParseInt: invalid syntax"
            ]
        );
        let r = srv
            .put(
                &format!("secret/{path}/v"),
                &srv.root,
                json!({"versions": [1, {"a": 1}]}),
            )
            .await;
        r.assert_status(400);
    }
    let m = metadata(&srv, "secret", "v").await;
    assert_eq!(
        m["versions"]["1"],
        json!({"created_time": m["created_time"], "deletion_time": "", "destroyed": false})
    );
    srv.get("secret/data/v", &srv.root).await.assert_status(200);
}

#[tokio::test]
async fn subkeys_show_structure_without_values() {
    let srv = TestServer::start().await;
    write(
        &srv,
        "secret",
        "s",
        json!({"a": 1, "b": {"c": 2, "d": [1, 2]}, "e": {}}),
    )
    .await;
    write(&srv, "secret", "s", json!({"x": {"y": {"z": "secret"}}})).await;
    let r = srv.get("secret/subkeys/s", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["subkeys"], json!({"x": {"y": {"z": null}}}));
    assert_eq!(r.body["data"]["metadata"]["version"], 2);
    let r = srv.get("secret/subkeys/s?depth=1", &srv.root).await;
    assert_eq!(r.body["data"]["subkeys"], json!({"x": null}));
    let r = srv
        .get("secret/subkeys/s?version=1&depth=2", &srv.root)
        .await;
    assert_eq!(
        r.body["data"]["subkeys"],
        json!({"a": null, "b": {"c": null, "d": null}, "e": null})
    );
    srv.get("secret/subkeys/none", &srv.root)
        .await
        .assert_status(404);
    let r = srv.get("secret/subkeys/s?depth=x", &srv.root).await;
    r.assert_status(400);
    srv.delete("secret/data/s", &srv.root)
        .await
        .assert_status(204);
    let r = srv.get("secret/subkeys/s", &srv.root).await;
    r.assert_status(404);
    assert_eq!(r.body["data"]["subkeys"], Value::Null);
    assert_eq!(r.body["data"]["metadata"]["version"], 2);
}

#[tokio::test]
async fn a_null_data_version_reads_as_null_and_cannot_be_patched() {
    let srv = TestServer::start().await;
    let r = srv
        .put("secret/data/n", &srv.root, json!({"data": null}))
        .await;
    r.assert_status(200);
    let r = srv.get("secret/data/n", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["data"], Value::Null);
    assert_eq!(r.body["data"]["metadata"]["version"], 1);
    let r = srv.get("secret/subkeys/n", &srv.root).await;
    assert_eq!(r.body["data"]["subkeys"], Value::Null);
    let r = patch(&srv, "secret/data/n", &srv.root, json!({"data": {"x": 1}})).await;
    r.assert_status(500);
    assert_eq!(
        r.errors(),
        ["1 error occurred:\n\t* resource does not exist\n\n"]
    );
    // An empty object is a normal secret.
    write(&srv, "secret", "e", json!({})).await;
    assert_eq!(
        srv.get("secret/data/e", &srv.root).await.body["data"]["data"],
        json!({})
    );
}
