//! The kv secrets engine over HTTP: mount types and the CLI preflight here; data, metadata,
//! concurrency and v1 behaviour in the submodules. Expected bodies and texts were checked against
//! a live OpenBao dev server (Vault's wording where the two differ).

mod concurrency;
mod data;
mod metadata;
mod v1;
mod versions;

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::common::{Resp, TestServer};

/// Vault's warning for a request on a v2 mount outside its API paths.
pub fn invalid_path_warning(sub: &str) -> String {
    format!(
        "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv {sub}' for this operation."
    )
}

/// Asserts an RFC 3339 UTC timestamp as Go prints it.
pub fn assert_time(v: &Value) {
    let s = v.as_str().expect("time string");
    assert!(
        s.ends_with('Z') && s.contains('T') && s.len() >= 20,
        "not RFC 3339: {s}"
    );
}

/// A PATCH with the merge-patch Content-Type the CLI sends.
pub async fn patch(srv: &TestServer, path: &str, token: &str, body: Value) -> Resp {
    let rb = srv
        .client
        .patch(srv.url(path))
        .header("X-Vault-Token", token)
        .header(CONTENT_TYPE, "application/merge-patch+json")
        .body(body.to_string());
    TestServer::finish(rb).await
}

/// Enables a secrets engine with the given body and asserts 204.
pub async fn enable(srv: &TestServer, path: &str, body: Value) {
    srv.post(&format!("sys/mounts/{path}"), &srv.root, body)
        .await
        .assert_status(204);
}

/// Writes `data` to a v2 key as the root token and returns the new version number.
pub async fn write(srv: &TestServer, mount: &str, key: &str, data: Value) -> u64 {
    let r = srv
        .post(
            &format!("{mount}/data/{key}"),
            &srv.root,
            json!({ "data": data }),
        )
        .await;
    r.assert_status(200);
    r.body["data"]["version"].as_u64().expect("version")
}

/// Reads a v2 key's metadata as root.
pub async fn metadata(srv: &TestServer, mount: &str, key: &str) -> Value {
    let r = srv.get(&format!("{mount}/metadata/{key}"), &srv.root).await;
    r.assert_status(200);
    r.body["data"].clone()
}

#[tokio::test]
async fn dev_server_mounts_kv_v2_at_secret_for_the_cli_preflight() {
    let srv = TestServer::start().await;
    let r = srv
        .get("sys/internal/ui/mounts/secret/mysql/webapp", &srv.root)
        .await;
    r.assert_status(200);
    let d = &r.body["data"];
    assert_eq!(d["type"], "kv");
    assert_eq!(d["path"], "secret/");
    assert_eq!(d["options"], json!({"version": "2"}));
    let mounts = srv.get("sys/mounts", &srv.root).await;
    assert_eq!(mounts.body["data"]["secret/"]["type"], "kv");
    assert_eq!(mounts.body["data"]["secret/"]["options"]["version"], "2");
}

#[tokio::test]
async fn every_way_of_enabling_kv_sets_the_version_option() {
    let srv = TestServer::start().await;
    enable(&srv, "a", json!({"type": "kv-v2"})).await;
    enable(
        &srv,
        "b",
        json!({"type": "kv", "options": {"version": "2"}}),
    )
    .await;
    enable(&srv, "c", json!({"type": "kv-v1"})).await;
    enable(&srv, "d", json!({"type": "kv"})).await;
    enable(&srv, "team1/kv", json!({"type": "kv-v2", "options": null})).await;
    // Plain kv says nothing (`{}`, as in OpenBao 2.7.2): clients read that as version 1.
    for (path, want) in [
        ("a", json!("2")),
        ("b", json!("2")),
        ("c", json!("1")),
        ("d", Value::Null),
        ("team1/kv", json!("2")),
    ] {
        let r = srv
            .get(&format!("sys/internal/ui/mounts/{path}/x"), &srv.root)
            .await;
        r.assert_status(200);
        assert_eq!(r.body["data"]["type"], "kv", "{path}");
        assert_eq!(r.body["data"]["options"]["version"], want, "{path}");
        assert!(r.body["data"]["options"].is_object(), "{path}");
        assert_eq!(r.body["data"]["path"], format!("{path}/"));
    }
    // Plain kv is version 1: a write goes straight to the path.
    srv.put("d/app", &srv.root, json!({"k": "v1"}))
        .await
        .assert_status(204);
    assert_eq!(srv.get("d/app", &srv.root).await.body["data"]["k"], "v1");
    // Engines enabled through the API list `{}` options; the built-in ones null.
    srv.post(
        "sys/auth/approle",
        &srv.root,
        json!({"type": "approle", "options": null}),
    )
    .await
    .assert_status(204);
    let auths = srv.get("sys/auth", &srv.root).await;
    assert_eq!(auths.body["data"]["approle/"]["options"], json!({}));
    assert_eq!(auths.body["data"]["token/"]["options"], Value::Null);
    let mounts = srv.get("sys/mounts", &srv.root).await;
    assert_eq!(mounts.body["data"]["d/"]["options"], json!({}));
    assert_eq!(mounts.body["data"]["sys/"]["options"], Value::Null);
    // As OpenBao 2.7.2 lists them: catalog engines are supported, the core's own mounts have
    // no status; sys/ and identity/ pass a header through.
    let m = &mounts.body["data"];
    assert_eq!(m["d/"]["deprecation_status"], "supported");
    assert_eq!(
        auths.body["data"]["approle/"]["deprecation_status"],
        "supported"
    );
    for core_mount in ["sys/", "identity/", "cubbyhole/"] {
        assert!(
            m[core_mount].get("deprecation_status").is_none(),
            "{core_mount}"
        );
    }
    assert!(
        auths.body["data"]["token/"]
            .get("deprecation_status")
            .is_none()
    );
    assert_eq!(
        m["sys/"]["config"]["passthrough_request_headers"],
        json!(["Accept"])
    );
    assert_eq!(
        m["identity/"]["config"]["passthrough_request_headers"],
        json!(["Authorization"])
    );
    assert!(
        m["d/"]["config"]
            .get("passthrough_request_headers")
            .is_none()
    );
    // Multi-segment mounts route by longest prefix.
    assert_eq!(write(&srv, "team1/kv", "app", json!({"k": "v"})).await, 1);
    let r = srv.get("team1/kv/data/app", &srv.root).await;
    assert_eq!(r.body["data"]["data"], json!({"k": "v"}));
}

#[tokio::test]
async fn v2_paths_outside_the_api_answer_404_with_vaults_warning() {
    let srv = TestServer::start().await;
    let cases = [
        (srv.get("secret/mysql/webapp", &srv.root).await, "get"),
        (
            srv.put("secret/mysql/webapp", &srv.root, json!({"a": 1}))
                .await,
            "put",
        ),
        (srv.delete("secret/mysql/webapp", &srv.root).await, "delete"),
        (srv.list("secret/mysql", &srv.root).await, "list"),
        (
            patch(&srv, "secret/mysql/webapp", &srv.root, json!({"a": 1})).await,
            "patch",
        ),
        (srv.get("secret/subkeys", &srv.root).await, "get"),
    ];
    for (r, sub) in cases {
        r.assert_status(404);
        assert_eq!(
            r.body["warnings"],
            json!([invalid_path_warning(sub)]),
            "{sub}"
        );
        assert_eq!(r.body["data"], Value::Null);
    }
    for root in ["data", "metadata", "delete", "undelete", "destroy"] {
        let r = srv.get(&format!("secret/{root}"), &srv.root).await;
        r.assert_status(404);
        assert_eq!(
            r.body["warnings"],
            json!(["Non-listing operations on the root of a K/V v2 mount are not supported."])
        );
    }
    // Nothing was written by the rejected PUT.
    srv.list("secret/metadata", &srv.root)
        .await
        .assert_status(404);
    // LIST on data/ is not an operation of that path.
    let r = srv.list("secret/data/x", &srv.root).await;
    r.assert_status(405);
}

#[tokio::test]
async fn help_and_unknown_parameters_follow_the_framework() {
    let srv = TestServer::start().await;
    let r = srv
        .put(
            "secret/data/k",
            &srv.root,
            json!({"data": {"a": 1}, "extra": 1, "path": "zzz"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!([
            "Endpoint ignored these unrecognized parameters: [extra]",
            "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [path]"
        ])
    );
    // The captured path wins.
    srv.get("secret/data/k", &srv.root).await.assert_status(200);
    srv.get("secret/data/zzz", &srv.root)
        .await
        .assert_status(404);
}
