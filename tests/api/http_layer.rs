//! The HTTP layer: methods, bodies, slashes, headers, envelopes and error shapes.

use serde_json::json;

use crate::common::{Resp, TestServer};

#[tokio::test]
async fn responses_use_vault_envelope_and_exact_content_type() {
    let srv = TestServer::start().await;
    let r = srv.get("auth/token/lookup-self", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.headers["content-type"], "application/json");
    for key in [
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
    ] {
        assert!(
            r.body.get(key).is_some(),
            "envelope lacks {key}: {}",
            r.text
        );
    }
    assert_eq!(r.body["renewable"], false);
    assert!(r.body["lease_duration"].is_i64());
    // Errors too carry exactly application/json.
    let e = srv.get("auth/token/lookup-self", "bogus").await;
    e.assert_status(403);
    assert_eq!(e.headers["content-type"], "application/json");
    assert_eq!(e.errors(), ["permission denied"]);
}

#[tokio::test]
async fn empty_write_is_204_and_missing_read_is_404_with_empty_errors() {
    let srv = TestServer::start().await;
    let w = srv
        .put(
            "sys/policies/acl/p",
            &srv.root,
            json!({"policy": "path \"a\" { capabilities = [\"read\"] }"}),
        )
        .await;
    w.assert_status(204);
    assert!(w.text.is_empty());
    let r = srv.get("sys/policies/acl/nope", &srv.root).await;
    r.assert_status(404);
    assert_eq!(r.body, json!({"errors": []}));
}

#[tokio::test]
async fn slashes_are_collapsed_never_redirected() {
    let srv = TestServer::start().await;
    for path in [
        "sys//policies/acl/default",
        "sys/policies/acl/default/",
        "/sys/policies//acl/default//",
    ] {
        let r = srv.get(path, &srv.root).await;
        r.assert_status(200);
        assert_eq!(r.body["data"]["name"], "default", "{path}");
    }
    let url = format!("http://{}//v1//sys//policies/acl/default", srv.addr);
    let r = TestServer::finish(srv.client.get(url).header("X-Vault-Token", &srv.root)).await;
    r.assert_status(200);
}

#[tokio::test]
async fn list_method_and_list_query_are_the_same() {
    let srv = TestServer::start().await;
    let a = srv.list("sys/policies/acl", &srv.root).await;
    let b = srv.get("sys/policies/acl?list=true", &srv.root).await;
    a.assert_status(200);
    b.assert_status(200);
    assert_eq!(a.body["data"], b.body["data"]);
    assert_eq!(a.body["data"]["keys"], json!(["default", "root"]));
}

#[tokio::test]
async fn unknown_methods_and_operations_are_405() {
    let srv = TestServer::start().await;
    let r = srv.req("FOO", "sys/mounts", Some(&srv.root), None).await;
    r.assert_status(405);
    assert_eq!(r.body, json!({"errors": []}));
    let r = srv.delete("auth/token/lookup-self", &srv.root).await;
    r.assert_status(405);
    assert_eq!(
        r.errors(),
        ["1 error occurred:\n\t* unsupported operation\n\n"]
    );
    let r = srv.req("POST", "sys/health", None, None).await;
    r.assert_status(405);
}

#[tokio::test]
async fn tokens_from_bearer_header_and_vault_request_header_accepted() {
    let srv = TestServer::start().await;
    let rb = srv
        .client
        .get(srv.url("auth/token/lookup-self"))
        .header("Authorization", format!("Bearer {}", srv.root))
        .header("X-Vault-Request", "true");
    let r = TestServer::finish(rb).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["id"], "root");
}

#[tokio::test]
async fn null_empty_and_whitespace_bodies_mean_no_data() {
    let srv = TestServer::start().await;
    for body in ["null", "", "null\n", "  \n"] {
        let rb = srv
            .client
            .put(srv.url("auth/token/create"))
            .header("X-Vault-Token", &srv.root)
            .body(body);
        let r = TestServer::finish(rb).await;
        r.assert_status(200);
        assert_eq!(r.body["auth"]["policies"], json!(["root"]), "body {body:?}");
    }
}

#[tokio::test]
async fn json_whatever_the_content_type_and_form_bodies() {
    let srv = TestServer::start().await;
    // The Java driver mislabels JSON as a form.
    let rb = srv
        .client
        .post(srv.url("auth/token/create"))
        .header("X-Vault-Token", &srv.root)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(r#"{"policies":["default"],"display_name":"json"}"#);
    let r = TestServer::finish(rb).await;
    r.assert_status(200);
    assert_eq!(r.body["auth"]["policies"], json!(["default"]));
    // curl --data sends real forms.
    let rb = srv
        .client
        .post(srv.url("auth/token/create"))
        .header("X-Vault-Token", &srv.root)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("ttl=1h&display_name=form");
    let r = TestServer::finish(rb).await;
    r.assert_status(200);
    assert_eq!(r.body["auth"]["lease_duration"], 3600);
}

#[tokio::test]
async fn form_bodies_and_queries_that_are_not_utf8_are_400_and_change_nothing() {
    let srv = TestServer::start().await;
    // `%ff` decodes to a byte that is not UTF-8: it used to become "" silently, so this wrote a
    // secret with an empty value.
    let rb = srv
        .client
        .post(srv.url("secret/data/form"))
        .header("X-Vault-Token", &srv.root)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("data=%ff");
    let r = TestServer::finish(rb).await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        ["failed to parse form data: invalid UTF-8 in a percent-encoded value"]
    );
    srv.get("secret/data/form", &srv.root)
        .await
        .assert_status(404);
    let r = srv
        .req("GET", "secret/metadata/?list=%ff", Some(&srv.root), None)
        .await;
    r.assert_status(400);
    // Valid multi-byte text still decodes.
    let rb = srv
        .client
        .post(srv.url("cubbyhole/form"))
        .header("X-Vault-Token", &srv.root)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("drink=caf%C3%A9+au+lait");
    TestServer::finish(rb).await.assert_status(204);
    let r = srv.get("cubbyhole/form", &srv.root).await;
    assert_eq!(r.body["data"]["drink"], json!("café au lait"));
}

#[tokio::test]
async fn malformed_json_is_400_and_changes_nothing() {
    let srv = TestServer::start().await;
    let rb = srv
        .client
        .put(srv.url("sys/policies/acl/broken"))
        .header("X-Vault-Token", &srv.root)
        .body("{\"policy\":");
    let r = TestServer::finish(rb).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["failed to decode JSON input: unexpected EOF"]);
    srv.get("sys/policies/acl/broken", &srv.root)
        .await
        .assert_status(404);
    let r = srv
        .put("sys/policies/acl/arr", &srv.root, json!([1, 2]))
        .await;
    r.assert_status(400);
    srv.get("sys/policies/acl/arr", &srv.root)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn wrong_types_are_field_validation_errors() {
    let srv = TestServer::start().await;
    let r = srv
        .post("auth/token/create", &srv.root, json!({"ttl": "abc"}))
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["time: invalid duration \"abc\""]);
    let r = srv
        .post("auth/token/create", &srv.root, json!({"num_uses": "many"}))
        .await;
    r.assert_status(400);
    assert!(
        r.errors()[0]
            .starts_with("Field validation failed: error converting input for field \"num_uses\""),
        "{:?}",
        r.errors()
    );
    let r = srv
        .post(
            "auth/token/create",
            &srv.root,
            json!({"renewable": "maybe"}),
        )
        .await;
    r.assert_status(400);
    // Go durations and string numbers are coerced.
    let r = srv
        .post(
            "auth/token/create",
            &srv.root,
            json!({"ttl": "1m0s", "num_uses": "5", "renewable": "false"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["auth"]["lease_duration"], 60);
    assert_eq!(r.body["auth"]["num_uses"], 5);
    assert_eq!(r.body["auth"]["renewable"], false);
}

#[tokio::test]
async fn unknown_parameters_produce_a_warning() {
    let srv = TestServer::start().await;
    let r = srv
        .post(
            "auth/token/create",
            &srv.root,
            json!({"bogus": 1, "zzz": "x"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!(["Endpoint ignored these unrecognized parameters: [bogus zzz]"])
    );
}

#[tokio::test]
async fn oversized_bodies_are_413_json() {
    let srv = TestServer::start().await;
    let big = format!("{{\"policy\":\"{}\"}}", "a".repeat(33 * 1024 * 1024));
    let rb = srv
        .client
        .put(srv.url("sys/policies/acl/big"))
        .header("X-Vault-Token", &srv.root)
        .body(big);
    let r = TestServer::finish(rb).await;
    r.assert_status(413);
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(!r.errors().is_empty());
    srv.get("sys/policies/acl/big", &srv.root)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn invalid_wrap_ttl_headers_are_rejected() {
    let srv = TestServer::start().await;
    for (value, msg) in [
        (
            "-5",
            "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative",
        ),
        (
            "abc",
            "error parsing X-Vault-Wrap-TTL header: time: invalid duration \"abc\"",
        ),
    ] {
        let rb = srv
            .client
            .get(srv.url("auth/token/lookup-self"))
            .header("X-Vault-Token", &srv.root)
            .header("X-Vault-Wrap-TTL", value);
        let r = TestServer::finish(rb).await;
        r.assert_status(400);
        assert_eq!(r.errors(), [msg]);
    }
}

#[tokio::test]
async fn patch_requires_merge_patch_content_type() {
    let srv = TestServer::start().await;
    // No Content-Type at all: Go's media type parser fails first (400), as in Vault.
    let rb = srv
        .client
        .patch(srv.url("cubbyhole/x"))
        .header("X-Vault-Token", &srv.root)
        .body("{}");
    let r = TestServer::finish(rb).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["mime: no media type"]);
    let rb = srv
        .client
        .patch(srv.url("cubbyhole/x"))
        .header("X-Vault-Token", &srv.root)
        .header("Content-Type", "application/json")
        .body("{}");
    let r = TestServer::finish(rb).await;
    r.assert_status(415);
    assert_eq!(r.headers["content-type"], "application/json");
}

#[tokio::test]
async fn unknown_routes_404_for_root_403_for_others() {
    let srv = TestServer::start().await;
    let r = srv.get("nope/foo", &srv.root).await;
    r.assert_status(404);
    assert_eq!(
        r.errors(),
        ["no handler for route \"nope/foo\". route entry not found."]
    );
    let t = srv.token_with(&["default"], json!({})).await;
    let r = srv.get("nope/foo", &t).await;
    r.assert_status(403);
    let r = srv.get("sys/nope", &srv.root).await;
    r.assert_status(404);
    assert_eq!(r.errors(), ["1 error occurred:\n\t* unsupported path\n\n"]);
}

#[tokio::test]
async fn missing_or_bad_tokens_are_403_but_ignored_on_unauthenticated_paths() {
    let srv = TestServer::start().await;
    srv.req("GET", "sys/mounts", None, None)
        .await
        .assert_status(403);
    let r = srv.get("sys/mounts", "hvs.doesnotexist").await;
    r.assert_status(403);
    assert_eq!(r.errors(), ["permission denied"]);
    srv.get("sys/seal-status", "hvs.doesnotexist")
        .await
        .assert_status(200);
    srv.get("sys/health", "hvs.doesnotexist")
        .await
        .assert_status(200);
}

#[tokio::test]
async fn garbage_requests_never_break_the_server() {
    let srv = TestServer::start().await;
    let deep = "[".repeat(10_000);
    let cases: Vec<(&str, &str, &str)> = vec![
        ("PUT", "sys/mounts/x", "{\"type\": 5}"),
        ("PUT", "sys/mounts/x", "{\"config\": \"nope\"}"),
        ("PUT", "auth/token/create", "{\"policies\": {\"a\":1}}"),
        ("PUT", "auth/token/create", "{\"meta\": 7}"),
        ("PUT", "sys/capabilities-self", "{\"paths\": {\"a\": 1}}"),
        ("PUT", "sys/policies/acl/x", "{\"policy\": [1,2]}"),
        ("PUT", "sys/policies/acl/x", "\u{0}\u{1}"),
        ("GET", "sys/policies/acl/%ff%fe", ""),
        ("PUT", "auth/token/create", &deep),
    ];
    for (m, p, body) in cases {
        let rb = srv
            .client
            .request(m.parse().unwrap(), srv.url(p))
            .header("X-Vault-Token", &srv.root)
            .body(body.to_string());
        let r = TestServer::finish(rb).await;
        assert!(
            r.status.is_client_error(),
            "{m} {p} {body:.40}: {} {}",
            r.status,
            r.text
        );
        assert_eq!(r.headers["content-type"], "application/json");
    }
    // Still healthy and nothing was created.
    srv.get("sys/policies/acl/x", &srv.root)
        .await
        .assert_status(404);
    srv.get("sys/health", &srv.root).await.assert_status(200);
}

/// A write to a path ending in `/` is refused before anything else, as Vault does (its core
/// cannot tell whether a key `x/` or a key under `x/` was meant): 400 `cannot write to a path
/// ending in '/'`, without a token too, and nothing is written. Compared with OpenBao 2.7.2 for
/// kv, cubbyhole, sys/mounts and sys/policies/acl.
#[tokio::test]
async fn writes_to_a_path_ending_in_a_slash_are_refused_as_vault() {
    let srv = TestServer::start().await;
    let refused = |r: &Resp| {
        r.assert_status(400);
        assert_eq!(r.errors(), ["cannot write to a path ending in '/'"]);
    };
    for (method, path, body) in [
        ("POST", "secret/data/x/", json!({"data": {"a": 1}})),
        ("PUT", "secret/metadata/x/", json!({"max_versions": 2})),
        ("POST", "cubbyhole/x/", json!({"a": "b"})),
        ("POST", "sys/mounts/foo/", json!({"type": "kv"})),
        (
            "PUT",
            "sys/policies/acl/p/",
            json!({"policy": "path \"a\" {}"}),
        ),
        ("POST", "secret/data/x%2F", json!({"data": {"a": 1}})),
    ] {
        refused(
            &srv.req(method, path, Some(&srv.root), Some(body.clone()))
                .await,
        );
        refused(&srv.req(method, path, None, Some(body)).await);
    }
    let rb = srv
        .client
        .patch(srv.url("secret/data/x/"))
        .header("X-Vault-Token", &srv.root)
        .header("Content-Type", "application/merge-patch+json")
        .body(json!({"data": {"a": 1}}).to_string());
    refused(&TestServer::finish(rb).await);
    // Nothing was written.
    srv.get("secret/data/x", &srv.root).await.assert_status(404);
    srv.get("secret/metadata/x", &srv.root)
        .await
        .assert_status(404);
    srv.get("cubbyhole/x", &srv.root).await.assert_status(404);
    srv.get("sys/policies/acl/p", &srv.root)
        .await
        .assert_status(404);
    let mounts = srv.get("sys/mounts", &srv.root).await;
    assert!(mounts.body["data"].get("foo/").is_none());
    // Without the slash the same writes go through; a list keeps its slash.
    srv.post("cubbyhole/x", &srv.root, json!({"a": "b"}))
        .await
        .assert_status(204);
    let r = srv.req("LIST", "cubbyhole/", Some(&srv.root), None).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["keys"], json!(["x"]));
}
