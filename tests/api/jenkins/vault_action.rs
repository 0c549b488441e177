//! GitHub's `hashicorp/vault-action` (contract §3.2).

use reqwest::Client;
use serde_json::{Value, json};

use super::guide_setup;
use crate::common::TestServer;

/// GitHub's `hashicorp/vault-action` v3 (got 11): POST login with a JSON body, lowercase
/// headers and an empty namespace header, then a raw GET of the path as written (users add
/// `data/` themselves); `body.data.data` marks a v2 answer.
#[tokio::test]
async fn vault_action_traffic() {
    let srv = TestServer::start().await;
    let (role_id, secret_id) = guide_setup(&srv).await;
    let got = Client::builder()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{}/", srv.addr); // prefixUrl with a trailing slash
    let send = |rb: reqwest::RequestBuilder| async move {
        let r = rb
            .header("user-agent", "got (https://github.com/sindresorhus/got)")
            .header("accept-encoding", "gzip, deflate, br")
            .header("x-vault-namespace", "")
            .send()
            .await
            .unwrap();
        assert!(!r.status().is_redirection(), "{}", r.status());
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str::<Value>(&text).unwrap())
    };

    let (status, body) = send(
        got.post(format!("{base}v1/auth/approle/login"))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(json!({"role_id": role_id, "secret_id": secret_id}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(body["auth"]["policies"], json!(["default", "jenkins"]));
    assert_eq!(body["auth"]["metadata"], json!({"role_name": "jenkins"}));

    // secrets: `secret/data/mysql/webapp password | DB_PASSWORD`
    for path in ["secret/data/mysql/webapp", "/secret/data/mysql/webapp"] {
        let (status, body) = send(
            got.get(format!("{base}v1/{path}"))
                .header("x-vault-token", &token),
        )
        .await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body["data"]["data"].is_object(), "v2 detection: {body}");
        assert_eq!(body["data"]["data"]["password"], "pa$$w0rd");
    }
    // Without `data/` (the common mistake, vault-action #104): the policy names the API path
    // (`secret/data/...`), so the ACL denies it before the engine could warn; as root, the
    // engine's 404 with Vault's "Invalid path for a versioned K/V" warning.
    let (status, body) = send(
        got.get(format!("{base}v1/secret/mysql/webapp"))
            .header("x-vault-token", &token),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = send(
        got.get(format!("{base}v1/secret/mysql/webapp"))
            .header("x-vault-token", &srv.root),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("Invalid path for a versioned K/V secrets engine")),
        "{body}"
    );
    // ignoreNotFound reads the body of a missing secret.
    let (status, body) = send(
        got.get(format!("{base}v1/secret/data/mysql/none"))
            .header("x-vault-token", &token),
    )
    .await;
    assert_eq!((status, body), (404, json!({"errors": []})));
    let (status, body) = send(
        got.get(format!("{base}v1/secret/data/other"))
            .header("x-vault-token", &token),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("permission denied"))
    );
}
