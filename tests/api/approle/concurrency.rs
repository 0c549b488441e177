//! Use counting under concurrency: a limited secret id yields exactly as many tokens as it has
//! uses, however many logins race for it, and a destroy racing logins leaves nothing usable.

use serde_json::json;
use std::sync::Arc;

use super::{assert_error, login, lookup};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_logins_on_ten_use_secret_id_yield_exactly_ten_tokens() {
    let srv = Arc::new(super::server().await);
    let role_id = super::role(&srv, "approle", "ci", json!({"secret_id_num_uses": "10"})).await;
    let secret = super::secret_id(&srv, "approle", "ci", json!(null)).await["secret_id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (srv, role_id, secret) = (srv.clone(), role_id.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let r = login(&srv, "approle", &role_id, &secret).await;
            (
                r.status.as_u16(),
                r.body["auth"]["client_token"].as_str().map(String::from),
                r.errors(),
            )
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        let (status, token, errors) = t.await.unwrap();
        match status {
            200 => tokens.push(token.unwrap()),
            400 => assert_eq!(errors, ["invalid role or secret ID"]),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(tokens.len(), 10);
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 10, "every token is distinct");
    for t in &tokens {
        srv.get("auth/token/lookup-self", t)
            .await
            .assert_status(200);
    }
    lookup(&srv, "approle", "ci", &secret)
        .await
        .assert_status(204);
    srv.list("auth/approle/role/ci/secret-id", &srv.root)
        .await
        .assert_status(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_destroy_and_logins_leave_nothing_usable() {
    let srv = Arc::new(super::server().await);
    let role_id = super::role(&srv, "approle", "ci", json!({})).await;
    for round in 0..5 {
        let data = super::secret_id(&srv, "approle", "ci", json!({"num_uses": 5})).await;
        let secret = data["secret_id"].as_str().unwrap().to_string();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (srv, role_id, secret) = (srv.clone(), role_id.clone(), secret.clone());
            tasks.push(tokio::spawn(async move {
                if i == 10 {
                    let r = srv
                        .put(
                            "auth/approle/role/ci/secret-id/destroy",
                            &srv.root,
                            json!({"secret_id": secret}),
                        )
                        .await;
                    (true, r.status.as_u16())
                } else {
                    (
                        false,
                        login(&srv, "approle", &role_id, &secret)
                            .await
                            .status
                            .as_u16(),
                    )
                }
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let (destroy, status) = t.await.unwrap();
            if destroy {
                assert_eq!(status, 204, "destroy always answers 204");
            } else if status == 200 {
                ok += 1;
            } else {
                assert_eq!(status, 400);
            }
        }
        assert!(
            ok <= 5,
            "round {round}: {ok} logins succeeded on a 5-use secret id"
        );
        // After the race, the secret id is gone for good.
        let r = login(&srv, "approle", &role_id, &secret).await;
        assert_error(&r, 400, "invalid role or secret ID");
        lookup(&srv, "approle", "ci", &secret)
            .await
            .assert_status(204);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn destroy_before_login_wins_and_after_login_is_harmless() {
    let srv = super::server().await;
    let role_id = super::role(&srv, "approle", "ci", json!({})).await;
    let data = super::secret_id(&srv, "approle", "ci", json!(null)).await;
    let secret = data["secret_id"].as_str().unwrap();
    let token = super::login_token(&srv, "approle", &role_id, secret).await;
    srv.delete(
        &format!("auth/approle/role/ci/secret-id/destroy?secret_id={secret}"),
        &srv.root,
    )
    .await
    .assert_status(204);
    let r = login(&srv, "approle", &role_id, secret).await;
    assert_error(&r, 400, "invalid role or secret ID");
    // Tokens already issued stay valid: destroying a secret id does not revoke them.
    srv.get("auth/token/lookup-self", &token)
        .await
        .assert_status(200);
}
