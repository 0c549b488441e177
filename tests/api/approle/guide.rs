//! The "AppRole Pull Authentication" guide, step by step, with the requests the `vault` CLI sends
//! (vault-cli.md §4.1–§4.13) and every field the guide prints.

use serde_json::{Value, json};
use std::time::Duration;

use super::{assert_error, enable_body, login, lookup};
use crate::common::TestServer;

const JENKINS_POLICY: &str = r#"# Read-only permission on 'secret/data/mysql/*' path
path "secret/data/mysql/*" {
  capabilities = [ "read" ]
}
"#;

#[tokio::test]
async fn guide_replayed_step_by_step() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();

    // Step 1: vault auth enable approle
    srv.put("sys/auth/approle", &root, enable_body())
        .await
        .assert_status(204);

    // Step 2: vault policy write jenkins jenkins-pol.hcl; vault write auth/approle/role/jenkins ...
    srv.put(
        "sys/policies/acl/jenkins",
        &root,
        json!({ "policy": JENKINS_POLICY }),
    )
    .await
    .assert_status(204);
    srv.put(
        "auth/approle/role/jenkins",
        &root,
        json!({"token_policies": "jenkins", "token_ttl": "1h", "token_max_ttl": "4h"}),
    )
    .await
    .assert_status(204);

    // vault read auth/approle/role/jenkins: exactly the guide's table.
    let r = srv.get("auth/approle/role/jenkins", &root).await;
    r.assert_status(200);
    assert_eq!(
        r.body["data"],
        json!({
            "bind_secret_id": true,
            "local_secret_ids": false,
            "secret_id_bound_cidrs": null,
            "secret_id_num_uses": 0,
            "secret_id_ttl": 0,
            "token_bound_cidrs": [],
            "token_explicit_max_ttl": 0,
            "token_max_ttl": 14400,
            "token_no_default_policy": false,
            "token_num_uses": 0,
            "token_period": 0,
            "token_policies": ["jenkins"],
            "token_ttl": 3600,
            "token_type": "default"
        })
    );
    assert_eq!(r.body["warnings"], Value::Null);

    // Step 3: vault read auth/approle/role/jenkins/role-id
    let r = srv.get("auth/approle/role/jenkins/role-id", &root).await;
    r.assert_status(200);
    let role_id = r.body["data"]["role_id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&role_id).is_ok(), "{role_id}");
    assert_eq!(r.body["data"].as_object().unwrap().len(), 1);

    // vault write -f auth/approle/role/jenkins/secret-id  (body `null`)
    let r = srv
        .req(
            "PUT",
            "auth/approle/role/jenkins/secret-id",
            Some(&root),
            Some(Value::Null),
        )
        .await;
    r.assert_status(200);
    let data = &r.body["data"];
    let secret_id = data["secret_id"].as_str().unwrap().to_string();
    let accessor = data["secret_id_accessor"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&secret_id).is_ok());
    assert!(uuid::Uuid::parse_str(&accessor).is_ok());
    assert_eq!(data["secret_id_num_uses"], 0);
    assert_eq!(data["secret_id_ttl"], 0);
    assert_eq!(data.as_object().unwrap().len(), 4);

    // Step 4: vault write auth/approle/login role_id=... secret_id=... (the CLI still sends
    // its token; the login path must ignore it).
    let r = srv
        .put(
            "auth/approle/login",
            &root,
            json!({"role_id": role_id, "secret_id": secret_id}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    assert_eq!(r.body["renewable"], false);
    assert_eq!(r.body["lease_duration"], 0);
    assert_eq!(r.body["data"], Value::Null);
    let auth = &r.body["auth"];
    assert_eq!(auth["policies"], json!(["default", "jenkins"]));
    assert_eq!(auth["token_policies"], json!(["default", "jenkins"]));
    assert_eq!(auth["metadata"], json!({"role_name": "jenkins"}));
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["token_type"], "service");
    assert_eq!(auth["orphan"], true);
    assert_eq!(auth["num_uses"], 0);
    assert_eq!(auth["mfa_requirement"], Value::Null);
    assert!(!auth["accessor"].as_str().unwrap().is_empty());
    assert!(!auth["entity_id"].as_str().unwrap().is_empty());
    let token = auth["client_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("hvs."), "{token}");

    // Step 5: the token reads what the jenkins policy grants, and nothing more.
    let r = srv
        .post(
            "sys/capabilities-self",
            &token,
            json!({"paths": ["secret/data/mysql/webapp", "secret/data/other"]}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["secret/data/mysql/webapp"], json!(["read"]));
    assert_eq!(r.body["data"]["secret/data/other"], json!(["deny"]));

    // vault login <token> → GET auth/token/lookup-self
    let r = srv.get("auth/token/lookup-self", &token).await;
    r.assert_status(200);
    let d = &r.body["data"];
    assert_eq!(d["display_name"], "approle");
    assert_eq!(d["path"], "auth/approle/login");
    assert_eq!(d["meta"], json!({"role_name": "jenkins"}));
    assert_eq!(d["policies"], json!(["default", "jenkins"]));
    assert_eq!(d["creation_ttl"], 3600);
    assert_eq!(d["renewable"], true);
    assert_eq!(d["orphan"], true);
    assert_eq!(d["entity_id"], auth["entity_id"]);
    assert_eq!(d["accessor"], auth["accessor"]);

    // Renewal is capped by token_max_ttl (4h from issue), with Vault's warning.
    srv.clock.advance(Duration::from_secs(1800));
    let r = srv
        .put("auth/token/renew-self", &token, json!({"increment": "8h"}))
        .await;
    r.assert_status(200);
    let lease = r.body["auth"]["lease_duration"].as_i64().unwrap();
    assert!((12_599..=12_600).contains(&lease), "{lease}");
    let shown = if lease == 12_600 { "3h30m" } else { "3h29m59s" };
    assert_eq!(
        r.body["warnings"],
        json!([format!(
            "TTL of \"8h\" exceeded the effective max_ttl of \"{shown}\"; TTL value is capped accordingly"
        )])
    );

    // The first secret id is unlimited: it keeps working.
    login(&srv, "approle", &role_id, &secret_id)
        .await
        .assert_status(200);
}

#[tokio::test]
async fn guide_secret_id_num_uses_ten_then_eleventh_fails() {
    let srv = super::server().await;
    let root = srv.root.clone();
    let role_id = super::role(
        &srv,
        "approle",
        "jenkins",
        json!({"token_policies": "jenkins", "token_ttl": "1h", "token_max_ttl": "4h"}),
    )
    .await;
    let old = super::secret_id(&srv, "approle", "jenkins", Value::Null).await;

    // vault write auth/approle/role/jenkins token_policies=jenkins ... secret_id_num_uses=10
    srv.put(
        "auth/approle/role/jenkins",
        &root,
        json!({"token_policies": "jenkins", "token_ttl": "1h", "token_max_ttl": "4h", "secret_id_num_uses": "10"}),
    )
    .await
    .assert_status(204);
    let r = srv.get("auth/approle/role/jenkins", &root).await;
    assert_eq!(r.body["data"]["secret_id_num_uses"], 10);

    // Existing secret ids keep the limit they were issued with.
    let old_secret = old["secret_id"].as_str().unwrap();
    let r = lookup(&srv, "approle", "jenkins", old_secret).await;
    assert_eq!(r.body["data"]["secret_id_num_uses"], 0);

    // A new one carries the role's 10.
    let new = super::secret_id(&srv, "approle", "jenkins", Value::Null).await;
    assert_eq!(new["secret_id_num_uses"], 10);
    let secret = new["secret_id"].as_str().unwrap();
    for i in 1..=10 {
        let r = login(&srv, "approle", &role_id, secret).await;
        r.assert_status(200);
        if i == 3 {
            let l = lookup(&srv, "approle", "jenkins", secret).await;
            assert_eq!(l.body["data"]["secret_id_num_uses"], 7);
        }
    }
    // The 10th use deleted it: lookup finds nothing (204) and the 11th login fails.
    lookup(&srv, "approle", "jenkins", secret)
        .await
        .assert_status(204);
    let r = login(&srv, "approle", &role_id, secret).await;
    assert_error(&r, 400, "invalid role or secret ID");
    // The unlimited one is unaffected.
    login(&srv, "approle", &role_id, old_secret)
        .await
        .assert_status(200);
}
