//! ACL policies over HTTP: CRUD, syntax, built-ins, enforcement and capabilities.

use serde_json::json;

use crate::common::TestServer;

const JENKINS: &str = "# Read-only permission on 'secret/data/mysql/*' path\npath \"secret/data/mysql/*\" {\n  capabilities = [ \"read\" ]\n}\n";

#[tokio::test]
async fn policy_crud_and_listing() {
    let srv = TestServer::start().await;
    srv.write_policy("jenkins", JENKINS).await;
    let r = srv.get("sys/policies/acl/jenkins", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["name"], "jenkins");
    assert_eq!(r.body["data"]["policy"], JENKINS);
    assert_eq!(
        srv.list("sys/policies/acl", &srv.root).await.body["data"]["keys"],
        json!(["default", "jenkins", "root"])
    );
    // Legacy endpoints.
    let r = srv.get("sys/policy", &srv.root).await;
    assert_eq!(r.body["policies"], json!(["default", "jenkins", "root"]));
    assert_eq!(
        r.body["data"]["keys"],
        json!(["default", "jenkins", "root"])
    );
    let r = srv.get("sys/policy/jenkins", &srv.root).await;
    assert_eq!(r.body["data"]["rules"], JENKINS);
    let r = srv
        .put(
            "sys/policy/legacy",
            &srv.root,
            json!({"rules": "path \"a\" { policy = \"read\" }"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["warnings"],
        json!(["'rules' is deprecated, please use 'policy' instead"])
    );
    srv.delete("sys/policies/acl/jenkins", &srv.root)
        .await
        .assert_status(204);
    srv.delete("sys/policies/acl/jenkins", &srv.root)
        .await
        .assert_status(204);
    srv.get("sys/policies/acl/jenkins", &srv.root)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn names_are_lower_cased_and_json_syntax_accepted() {
    let srv = TestServer::start().await;
    let r = srv
        .put(
            "sys/policies/acl/MyPolicy",
            &srv.root,
            json!({"policy": JENKINS}),
        )
        .await;
    // OpenBao canonicalises the name in the path before the backend sees it: no warning.
    r.assert_status(204);
    srv.get("sys/policies/acl/mypolicy", &srv.root)
        .await
        .assert_status(200);
    let json_policy = r#"{"path":{"cubbyhole/*":{"capabilities":["read","list"]}}}"#;
    srv.write_policy("jsonpol", json_policy).await;
    let t = srv
        .token_with(&["jsonpol"], json!({"no_default_policy": true}))
        .await;
    let r = srv
        .post(
            "sys/capabilities",
            &srv.root,
            json!({"token": t, "path": "cubbyhole/x"}),
        )
        .await;
    assert_eq!(r.body["data"]["capabilities"], json!(["list", "read"]));
}

#[tokio::test]
async fn invalid_policies_are_rejected_and_nothing_stored() {
    let srv = TestServer::start().await;
    let cases = [
        (
            "path \"x\" { capabilities = [\"bogus\"] }",
            "failed to parse policy: path \"x\": invalid capability \"bogus\"",
        ),
        (
            "bad = 1",
            "failed to parse policy: 1 error occurred:\n\t* invalid key \"bad\" on line 1\n\n",
        ),
        (
            "path \"x\" { capabilities = [\"read\"] ",
            "failed to parse policy:",
        ),
        (
            "path \"a+*\" { capabilities = [\"read\"] }",
            "failed to parse policy:",
        ),
    ];
    for (text, prefix) in cases {
        let r = srv
            .put("sys/policies/acl/bad", &srv.root, json!({"policy": text}))
            .await;
        r.assert_status(400);
        assert!(
            r.errors()[0].starts_with(prefix),
            "{text}: {:?}",
            r.errors()
        );
        srv.get("sys/policies/acl/bad", &srv.root)
            .await
            .assert_status(404);
    }
    let r = srv.put("sys/policies/acl/bad", &srv.root, json!({})).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["'policy' parameter not supplied or empty"]);
}

#[tokio::test]
async fn builtins_are_protected() {
    let srv = TestServer::start().await;
    let r = srv.delete("sys/policies/acl/default", &srv.root).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["cannot delete default policy"]);
    let r = srv.delete("sys/policies/acl/root", &srv.root).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["cannot delete \"root\" policy"]);
    let r = srv
        .put(
            "sys/policies/acl/root",
            &srv.root,
            json!({"policy": JENKINS}),
        )
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["cannot update \"root\" policy"]);
    // default is editable.
    srv.write_policy("default", JENKINS).await;
    assert_eq!(
        srv.get("sys/policies/acl/default", &srv.root).await.body["data"]["policy"],
        JENKINS
    );
    // response-wrapping is hidden from the list.
    let keys = srv.list("sys/policies/acl", &srv.root).await.body["data"]["keys"].clone();
    assert!(
        !keys
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "response-wrapping")
    );
}

#[tokio::test]
async fn policies_are_enforced_and_changes_apply_at_once() {
    let srv = TestServer::start().await;
    srv.write_policy(
        "mounts-reader",
        "path \"sys/mounts\" { capabilities = [\"read\"] }",
    )
    .await;
    let t = srv.token_with(&["mounts-reader"], json!({})).await;
    srv.get("sys/mounts", &t).await.assert_status(200);
    let r = srv.get("sys/auth", &t).await;
    r.assert_status(403);
    assert_eq!(r.errors(), ["1 error occurred:\n\t* permission denied\n\n"]);
    // Tighten the policy: the existing token loses access on its next request.
    srv.write_policy(
        "mounts-reader",
        "path \"sys/mounts\" { capabilities = [\"deny\"] }",
    )
    .await;
    srv.get("sys/mounts", &t).await.assert_status(403);
    // Loosen again.
    srv.write_policy(
        "mounts-reader",
        "path \"sys/*\" { capabilities = [\"read\"] }",
    )
    .await;
    srv.get("sys/mounts", &t).await.assert_status(200);
    srv.get("sys/auth", &t).await.assert_status(200);
    // Deleting the policy removes what it granted.
    srv.delete("sys/policies/acl/mounts-reader", &srv.root)
        .await
        .assert_status(204);
    srv.get("sys/mounts", &t).await.assert_status(403);
}

#[tokio::test]
async fn default_policy_grants_the_self_service_paths() {
    let srv = TestServer::start().await;
    let t = srv.token_with(&["default"], json!({})).await;
    srv.get("auth/token/lookup-self", &t)
        .await
        .assert_status(200);
    srv.post("sys/capabilities-self", &t, json!({"path": "secret/x"}))
        .await
        .assert_status(200);
    srv.post("cubbyhole/mine", &t, json!({"k": "v"}))
        .await
        .assert_status(204);
    srv.get("cubbyhole/mine", &t).await.assert_status(200);
    // POST lookup-self needs update, which default does not grant.
    srv.post("auth/token/lookup-self", &t, json!({}))
        .await
        .assert_status(403);
    srv.get("sys/policies/acl", &t).await.assert_status(403);
}

#[tokio::test]
async fn sudo_is_required_on_root_protected_paths() {
    let srv = TestServer::start().await;
    srv.write_policy(
        "nosudo",
        "path \"sys/auth/*\" { capabilities = [\"create\", \"update\", \"read\", \"delete\"] }",
    )
    .await;
    srv.write_policy(
        "withsudo",
        "path \"sys/auth/*\" { capabilities = [\"create\", \"update\", \"sudo\"] }",
    )
    .await;
    let a = srv.token_with(&["nosudo"], json!({})).await;
    let b = srv.token_with(&["withsudo"], json!({})).await;
    // Same request: without sudo the ACL refuses (403); with sudo it reaches the backend,
    // which rejects the non-mountable type (400).
    srv.post("sys/auth/x", &a, json!({"type": "token"}))
        .await
        .assert_status(403);
    let r = srv.post("sys/auth/x", &b, json!({"type": "token"})).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["plugin not found in the catalog: token"]);
}

#[tokio::test]
async fn capabilities_endpoints() {
    let srv = TestServer::start().await;
    srv.write_policy(
        "caps",
        "path \"secret/data/mysql/*\" { capabilities = [\"read\", \"list\"] }\npath \"secret/data/mysql/admin\" { capabilities = [\"deny\"] }\npath \"secret/+/app\" { capabilities = [\"create\", \"update\"] }",
    )
    .await;
    let t = srv.token_with(&["caps", "default"], json!({})).await;
    let r = srv.post("sys/capabilities-self", &t, json!({"paths": ["secret/data/mysql/db", "secret/data/mysql/admin", "secret/x/app", "other"]})).await;
    r.assert_status(200);
    assert_eq!(
        r.body["data"]["secret/data/mysql/db"],
        json!(["list", "read"])
    );
    assert_eq!(r.body["data"]["secret/data/mysql/admin"], json!(["deny"]));
    assert_eq!(r.body["data"]["secret/x/app"], json!(["create", "update"]));
    assert_eq!(r.body["data"]["other"], json!(["deny"]));
    assert!(r.body["data"].get("capabilities").is_none());
    // One path: also under "capabilities", and injected at the top level like Vault.
    let r = srv
        .post(
            "sys/capabilities-self",
            &t,
            json!({"path": "secret/data/mysql/db"}),
        )
        .await;
    assert_eq!(r.body["data"]["capabilities"], json!(["list", "read"]));
    assert_eq!(r.body["capabilities"], json!(["list", "read"]));
    // Root sees root.
    let r = srv
        .post(
            "sys/capabilities",
            &srv.root,
            json!({"token": t, "path": "secret/data/mysql/db"}),
        )
        .await;
    assert_eq!(r.body["data"]["capabilities"], json!(["list", "read"]));
    let r = srv
        .post(
            "sys/capabilities-self",
            &srv.root,
            json!({"path": "anything"}),
        )
        .await;
    assert_eq!(r.body["data"]["capabilities"], json!(["root"]));
    // By accessor.
    let acc = srv.get("auth/token/lookup-self", &t).await.body["data"]["accessor"]
        .as_str()
        .unwrap()
        .to_string();
    let r = srv
        .post(
            "sys/capabilities-accessor",
            &srv.root,
            json!({"accessor": acc, "path": "secret/x/app"}),
        )
        .await;
    assert_eq!(r.body["data"]["capabilities"], json!(["create", "update"]));
    let r = srv
        .post(
            "sys/capabilities-accessor",
            &srv.root,
            json!({"accessor": "nope", "path": "x"}),
        )
        .await;
    r.assert_status(400);
}

#[tokio::test]
async fn parameter_constraints_are_enforced() {
    let srv = TestServer::start().await;
    srv.write_policy(
        "params",
        r#"path "cubbyhole/*" {
  capabilities = ["create", "update", "read"]
  allowed_parameters = { "env" = ["dev", "stage*"], "note" = [] }
  denied_parameters = { "note" = ["*secret*"] }
}"#,
    )
    .await;
    let t = srv
        .token_with(&["params"], json!({"no_default_policy": true}))
        .await;
    srv.post("cubbyhole/a", &t, json!({"env": "dev"}))
        .await
        .assert_status(204);
    srv.post(
        "cubbyhole/b",
        &t,
        json!({"env": "stage-2", "note": "hello"}),
    )
    .await
    .assert_status(204);
    srv.post("cubbyhole/c", &t, json!({"env": "prod"}))
        .await
        .assert_status(403);
    srv.post("cubbyhole/d", &t, json!({"other": "x"}))
        .await
        .assert_status(403);
    srv.post("cubbyhole/e", &t, json!({"note": "my secret note"}))
        .await
        .assert_status(403);
    srv.get("cubbyhole/c", &t).await.assert_status(404);
}

/// `sys/capabilities` and `sys/capabilities-accessor` refuse what Vault refuses: no token is a
/// 500 (`no token found`), an unknown token or accessor a 400 in multierror text, a missing
/// accessor a plain 400; the paths are checked before the token is looked up. Before, an
/// unknown token answered `deny` with a 200.
#[tokio::test]
async fn capabilities_of_missing_or_unknown_tokens_as_vault() {
    let srv = TestServer::start().await;
    let cases = [
        (
            "sys/capabilities",
            json!({"paths": ["a"]}),
            500,
            "1 error occurred:\n\t* no token found\n\n",
        ),
        (
            "sys/capabilities",
            json!({"token": "nope"}),
            400,
            "paths must be supplied",
        ),
        (
            "sys/capabilities",
            json!({"token": "nope", "paths": ["a"]}),
            400,
            "1 error occurred:\n\t* invalid token\n\n",
        ),
        (
            "sys/capabilities-accessor",
            json!({"paths": ["a"]}),
            400,
            "missing accessor",
        ),
        (
            "sys/capabilities-accessor",
            json!({"accessor": "nope", "paths": ["a"]}),
            400,
            "1 error occurred:\n\t* invalid accessor\n\n",
        ),
    ];
    for (path, body, status, msg) in cases {
        let r = srv.post(path, &srv.root, body.clone()).await;
        r.assert_status(status);
        assert_eq!(r.errors(), [msg], "{path} {body}");
    }
    let r = srv
        .post(
            "sys/capabilities",
            &srv.root,
            json!({"token": srv.root, "paths": ["a"]}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["capabilities"], json!(["root"]));
}

/// `sys/internal/ui/resultant-acl` (read by Vault's UI; the default policy grants it): the
/// caller's merged rules in Vault's shape, compared with what OpenBao 2.7.2 answers for the same
/// policy. `+` rules are not listed, as in Vault; root is just `root: true`.
#[tokio::test]
async fn resultant_acl_shows_the_callers_merged_rules() {
    let s = TestServer::start().await;
    s.write_policy(
        "ui",
        r#"
        path "secret/data/app/*" { capabilities = ["read", "list"] }
        path "secret/metadata/+/x" { capabilities = ["deny"] }
        path "secret/data/wrapped" {
          capabilities = ["update", "patch", "sudo"]
          min_wrapping_ttl = "1m"
          max_wrapping_ttl = "1h"
          allowed_parameters = { "a" = ["x", "y"] }
          required_parameters = ["a"]
        }
        path "secret/data/denied" { capabilities = ["deny", "read"] }
        "#,
    )
    .await;
    let token = s.token_with(&["ui"], json!({})).await;
    let r = s.get("sys/internal/ui/resultant-acl", &token).await;
    r.assert_status(200);
    let d = &r.body["data"];
    assert_eq!(d["root"], false);
    assert_eq!(
        d["glob_paths"]["secret/data/app/"],
        json!({"capabilities": ["list", "read"]})
    );
    assert_eq!(
        d["exact_paths"]["secret/data/wrapped"],
        json!({
            "capabilities": ["sudo", "update", "patch"],
            "min_wrapping_ttl": 60,
            "max_wrapping_ttl": 3600,
            "allowed_parameters": {"a": ["x", "y"]},
            "required_parameters": ["a"],
        })
    );
    assert_eq!(
        d["exact_paths"]["secret/data/denied"],
        json!({"capabilities": ["deny"]})
    );
    // The default policy's rules are there too; the `+` rule is not.
    assert_eq!(
        d["exact_paths"]["auth/token/lookup-self"],
        json!({"capabilities": ["read"]})
    );
    assert!(!r.text.contains("secret/metadata/+/x"), "{}", r.text);
    let r = s.get("sys/internal/ui/resultant-acl", &s.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"], json!({"root": true}));
    // Without a token: refused (the path is not unauthenticated).
    s.req("GET", "sys/internal/ui/resultant-acl", None, None)
        .await
        .assert_status(403);
}
