//! `sys/config/cors` and cross-origin requests, as Vault answers them: off by default; once on,
//! a browser's preflight gets the allowed methods and headers, answers carry the allowed origin,
//! an origin not allowed gets 403, and requests without `Origin` (the CLI) are untouched.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::TestServer;

async fn with_origin(
    s: &TestServer,
    method: Method,
    path: &str,
    origin: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut rb = s
        .client
        .request(method, s.url(path))
        .header("Origin", origin)
        .header("X-Vault-Token", &s.root);
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    rb.send().await.unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn cors_answers_preflights_marks_answers_and_refuses_other_origins() {
    let s = TestServer::start().await;
    // Off: an Origin changes nothing.
    let r = s.get("sys/config/cors", &s.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"], json!({"enabled": false}));
    assert_eq!(r.body["enabled"], false);
    let r = with_origin(
        &s,
        Method::GET,
        "sys/health",
        "http://anywhere.example",
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), None);

    // Vault's checks (a 400 here; Vault answers 500), and nothing changes.
    for (body, want) in [
        (
            json!({}),
            "at least one origin or the wildcard must be provided",
        ),
        (
            json!({"allowed_origins": "*,http://a.example"}),
            "to allow all origins the '*' must be the only value for allowed_origins",
        ),
    ] {
        let r = s.put("sys/config/cors", &s.root, body).await;
        r.assert_status(400);
        assert_eq!(r.errors(), [want]);
    }
    assert_eq!(
        s.get("sys/config/cors", &s.root).await.body["data"]["enabled"],
        false
    );

    s.put(
        "sys/config/cors",
        &s.root,
        json!({"allowed_origins": "http://app.example,http://ops.example",
               "allowed_headers": ["X-Custom"], "allow_credentials": true}),
    )
    .await
    .assert_status(204);
    // It survives a seal and unseal (stored through the barrier, loaded at unseal).
    s.seal().await;
    s.unseal().await.assert_status(200);
    let r = s.get("sys/config/cors", &s.root).await;
    let d = &r.body["data"];
    assert_eq!(d["enabled"], true);
    assert_eq!(
        d["allowed_origins"],
        json!(["http://app.example", "http://ops.example"])
    );
    let headers = d["allowed_headers"].as_array().unwrap();
    assert_eq!(headers.first().unwrap(), "Content-Type");
    assert_eq!(headers.last().unwrap(), "X-Custom");
    assert!(headers.contains(&Value::from("X-Vault-Token")));
    assert_eq!(d["allow_credentials"], true);

    // A preflight for one of Vault's methods.
    let r = with_origin(
        &s,
        Method::OPTIONS,
        "secret/data/app",
        "http://app.example",
        &[("Access-Control-Request-Method", "PUT")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        Some("http://app.example")
    );
    assert_eq!(
        header(&r, "access-control-allow-methods"),
        Some("DELETE,GET,OPTIONS,POST,PUT,LIST,SCAN")
    );
    assert!(
        header(&r, "access-control-allow-headers")
            .unwrap()
            .ends_with(",X-Custom")
    );
    assert_eq!(header(&r, "access-control-max-age"), Some("300"));
    assert_eq!(header(&r, "access-control-allow-credentials"), Some("true"));
    assert_eq!(header(&r, "vary"), Some("Origin"));
    assert_eq!(r.text().await.unwrap(), "");
    // ... and for another method: a bare 405.
    let r = with_origin(
        &s,
        Method::OPTIONS,
        "secret/data/app",
        "http://app.example",
        &[("Access-Control-Request-Method", "PATCH")],
    )
    .await;
    assert_eq!(r.status(), 405);
    // An ordinary request from an allowed origin: served, marked.
    let r = with_origin(&s, Method::GET, "sys/mounts", "http://ops.example", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        Some("http://ops.example")
    );
    assert_eq!(header(&r, "vary"), Some("Origin"));
    // Another origin: 403, and the request does not run.
    let r = with_origin(
        &s,
        Method::PUT,
        "secret/data/app",
        "http://evil.example",
        &[("Content-Type", "application/json")],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"errors": ["origin not allowed"]})
    );
    s.get("secret/data/app", &s.root).await.assert_status(404);
    // The CLI sends no Origin: untouched.
    let r = s.get("sys/health", &s.root).await;
    assert_eq!(r.status.as_u16(), 200);
    assert!(r.headers.get("access-control-allow-origin").is_none());

    // Changing it needs sudo.
    s.write_policy(
        "cors-no-sudo",
        r#"path "sys/config/cors" { capabilities = ["read", "update", "delete"] }"#,
    )
    .await;
    let token = s.token_with(&["cors-no-sudo"], json!({})).await;
    s.delete("sys/config/cors", &token).await.assert_status(403);

    // Off again: origins are no longer checked.
    s.delete("sys/config/cors", &s.root)
        .await
        .assert_status(204);
    let r = with_origin(&s, Method::GET, "sys/health", "http://evil.example", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    assert_eq!(
        s.get("sys/config/cors", &s.root).await.body["data"],
        json!({"enabled": false})
    );
}

/// `*` alone allows any origin.
#[tokio::test]
async fn a_wildcard_allows_every_origin() {
    let s = TestServer::start().await;
    s.put("sys/config/cors", &s.root, json!({"allowed_origins": "*"}))
        .await
        .assert_status(204);
    let r = with_origin(&s, Method::GET, "sys/health", "http://whoever.example", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        Some("http://whoever.example")
    );
    assert_eq!(header(&r, "access-control-allow-credentials"), None);
}
