//! The request/response hook: an observer installed on the core sees every request and its
//! outcome, in order, with matching request ids — successes, logins, ACL denials and requests
//! the HTTP layer rejects — and its records never show a token or a secret value.

use serde_json::json;
use std::sync::{Arc, Mutex};

use coffer::core::observer::{RequestObserver, RequestRecord, ResponseRecord};
use coffer::error::Result;

use crate::common::TestServer;

#[derive(Debug)]
enum Event {
    Request(RequestRecord),
    Response(RequestRecord, Box<ResponseRecord>),
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

#[async_trait::async_trait]
impl RequestObserver for Recorder {
    async fn on_request(&self, request: &RequestRecord) -> Result<()> {
        self.0.lock().unwrap().push(Event::Request(request.clone()));
        Ok(())
    }

    async fn on_response(&self, request: &RequestRecord, response: &ResponseRecord) -> Result<()> {
        self.0
            .lock()
            .unwrap()
            .push(Event::Response(request.clone(), Box::new(response.clone())));
        Ok(())
    }
}

const SECRET_VALUE: &str = "observer-canary-secret-value";

#[tokio::test]
async fn observer_sees_every_request_and_outcome_in_order() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    // Setup, unobserved: an approle login and a token without access to the secret.
    srv.post("sys/auth/approle", &root, json!({"type": "approle"}))
        .await
        .assert_status(204);
    srv.post(
        "auth/approle/role/app",
        &root,
        json!({"token_policies": "default"}),
    )
    .await
    .assert_status(204);
    let role_id = srv.get("auth/approle/role/app/role-id", &root).await.body["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = srv
        .post("auth/approle/role/app/secret-id", &root, json!({}))
        .await
        .body["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    let limited = srv.token_with(&["default"], json!({})).await;
    // The dev root token's id is `root`, a policy name too: observe with a random-id root token.
    let admin = srv.token_with(&["root"], json!({})).await;

    let recorder = Arc::new(Recorder::default());
    srv.core.set_observer(Some(Box::new(recorder.clone())));

    // (a) a kv write and read.
    let write = srv
        .put(
            "secret/data/observed",
            &admin,
            json!({"data": {"password": SECRET_VALUE}}),
        )
        .await;
    write.assert_status(200);
    let read = srv.get("secret/data/observed", &admin).await;
    read.assert_status(200);
    // (b) a login.
    let login = srv
        .post(
            "auth/approle/login",
            "",
            json!({"role_id": role_id, "secret_id": secret_id}),
        )
        .await;
    login.assert_status(200);
    let client_token = login.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    // (c) an ACL denial.
    srv.get("secret/data/observed", &limited)
        .await
        .assert_status(403);
    // (d) a body the HTTP layer cannot decode.
    let bad = srv
        .client
        .put(srv.url("secret/data/observed"))
        .header("X-Vault-Token", &admin)
        .body("{\"data\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    srv.core.set_observer(None);
    let events = std::mem::take(&mut *recorder.0.lock().unwrap());
    assert_eq!(events.len(), 10, "{events:#?}");
    let pairs: Vec<(&RequestRecord, &RequestRecord, &ResponseRecord)> = events
        .chunks(2)
        .map(|pair| match pair {
            [Event::Request(q), Event::Response(r, s)] => (q, r, &**s),
            other => panic!("not a request/response pair: {other:#?}"),
        })
        .collect();
    for (q, r, _) in &pairs {
        assert_eq!(q.request_id, r.request_id);
        assert!(!q.request_id.is_empty());
    }

    let (w, _, ws) = pairs[0];
    assert_eq!(w.path, "secret/data/observed");
    assert_eq!(w.request_id, write.body["request_id"].as_str().unwrap());
    let mount = w.mount.as_ref().unwrap();
    assert_eq!(
        (mount.kind.as_str(), mount.path.as_str()),
        ("kv", "secret/")
    );
    assert!(!mount.accessor.is_empty());
    assert_eq!(w.token.as_ref().unwrap().policies, vec!["root"]);
    assert!(w.data.contains_key("data"));
    assert_eq!(ws.status, 200);

    let (r, _, rs) = pairs[1];
    assert_eq!(r.request_id, read.body["request_id"].as_str().unwrap());
    assert_eq!(r.operation, coffer::logical::Operation::Read);
    assert_eq!(rs.status, 200);
    assert!(rs.data.as_ref().unwrap().contains_key("data"));

    let (l, _, ls) = pairs[2];
    assert_eq!(l.path, "auth/approle/login");
    assert_eq!(l.mount.as_ref().unwrap().kind, "approle");
    assert!(l.token.is_none());
    assert_eq!(ls.status, 200);
    assert_eq!(
        ls.auth.as_ref().unwrap()["accessor"],
        login.body["auth"]["accessor"]
    );
    let issued = ls.issued_token.as_ref().unwrap();
    let stored = srv
        .core
        .tokens
        .lookup(&client_token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issued.key, stored.key);
    assert_eq!(issued.policies, vec!["default"]);

    let (d, _, ds) = pairs[3];
    assert_eq!(d.path, "secret/data/observed");
    assert_eq!(d.token.as_ref().unwrap().policies, vec!["default"]);
    assert_eq!(ds.status, 403);
    assert!(
        ds.errors.concat().contains("permission denied"),
        "{:?}",
        ds.errors
    );

    let (h, _, hs) = pairs[4];
    assert_eq!(h.path, "secret/data/observed");
    assert!(h.token.is_none() && h.mount.is_none());
    assert_eq!(hs.status, 400);
    assert!(!hs.errors.is_empty());

    let printed = format!("{events:?}");
    for secret in [
        admin.as_str(),
        limited.as_str(),
        client_token.as_str(),
        secret_id.as_str(),
        SECRET_VALUE,
    ] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}
