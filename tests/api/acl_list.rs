//! LIST on a path ending in `/` selects its rule the way current Vault does (issue 12 §5): the
//! slash-trimmed path is matched before the path itself, so a broad `secret/*` rule without
//! `list` is the rule for `LIST secret/metadata/app/` even when `secret/metadata/app/*` grants it.

use serde_json::json;

use crate::common::TestServer;

const POLICY: &str = r#"
path "secret/*" { capabilities = ["read"] }
path "secret/metadata/app/*" { capabilities = ["list"] }
path "secret/metadata/team" { capabilities = ["list"] }
"#;

#[tokio::test]
async fn list_on_a_directory_uses_the_rule_for_the_trimmed_path_first() {
    let srv = TestServer::start().await;
    for p in ["secret/data/app/db", "secret/data/team/x"] {
        srv.put(p, &srv.root, json!({"data": {"k": "v"}}))
            .await
            .assert_status(200);
    }
    srv.write_policy("lister", POLICY).await;
    let t = srv.token_with(&["lister"], json!({})).await;

    // `secret/metadata/app` matches the prefix rule `secret/*` (read only): denied.
    srv.list("secret/metadata/app/", &t)
        .await
        .assert_status(403);
    srv.get("secret/metadata/app/?list=true", &t)
        .await
        .assert_status(403);
    // An exact rule on the trimmed path still answers first.
    let r = srv.list("secret/metadata/team/", &t).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["keys"], json!(["x"]));

    let r = srv
        .post(
            "sys/capabilities-self",
            &t,
            json!({"paths": ["secret/metadata/app/", "secret/metadata/app/x", "secret/metadata/team/"]}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["secret/metadata/app/"], json!(["read"]));
    assert_eq!(r.body["data"]["secret/metadata/app/x"], json!(["list"]));
    assert_eq!(r.body["data"]["secret/metadata/team/"], json!(["list"]));
}
