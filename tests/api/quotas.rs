//! Rate-limit quotas (`sys/quotas/config`, `sys/quotas/rate-limit/<name>`) over real HTTP, with
//! Vault's fields, texts and precedence (each checked against OpenBao 2.7.2), and their effect:
//! a client over its quota gets 429 before anything else runs; windows move with the (mock)
//! clock, so every count below is exact.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::TestServer;

async fn status(srv: &TestServer, method: &str, path: &str, token: Option<&str>) -> u16 {
    srv.req(method, path, token, None).await.status.as_u16()
}

#[tokio::test]
async fn quotas_are_written_read_listed_and_refused_with_vaults_texts() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    // Vault's defaults.
    let r = srv.get("sys/quotas/config", &root).await;
    r.assert_status(200);
    assert_eq!(
        r.body["data"],
        json!({
            "enable_rate_limit_audit_logging": false,
            "enable_rate_limit_response_headers": false,
            "rate_limit_exempt_paths": [
                "sys/generate-recovery-token/attempt", "sys/generate-recovery-token/update",
                "sys/generate-root/attempt", "sys/generate-root/update",
                "sys/health", "sys/seal-status", "sys/unseal"]
        })
    );
    srv.post(
        "sys/quotas/rate-limit/kv-limit",
        &root,
        json!({"path": "secret", "rate": 2, "interval": "10s"}),
    )
    .await
    .assert_status(204);
    let r = srv.get("sys/quotas/rate-limit/kv-limit", &root).await;
    r.assert_status(200);
    assert_eq!(
        r.body["data"],
        json!({"block_interval": 0, "inheritable": false, "interval": 10, "name": "kv-limit",
               "path": "secret/", "rate": 2, "role": "", "type": "rate-limit"})
    );
    let r = srv.list("sys/quotas/rate-limit", &root).await;
    assert_eq!(r.body["data"]["keys"], json!(["kv-limit"]));
    for (body, want) in [
        (
            json!({"path": "nope", "rate": 1}),
            "invalid mount path \"nope/\"",
        ),
        (json!({"path": "secret", "rate": 0}), "'rate' is invalid"),
        (
            json!({"path": "secret/", "rate": 5}),
            "quota rule with similar properties exists under the name \"kv-limit\"",
        ),
        (
            json!({"path": "secret", "rate": 5, "role": "x"}),
            "Mount path \"secret/\" is not a valid auth method and therefore unsuitable for use with role-based quotas",
        ),
        (
            json!({"path": "auth/token", "rate": 5, "role": "x"}),
            "Mount path \"auth/token/\" does not support use with role-based quotas",
        ),
    ] {
        let r = srv.post("sys/quotas/rate-limit/other", &root, body).await;
        r.assert_status(400);
        assert_eq!(r.errors(), [want]);
    }
    assert_eq!(
        status(&srv, "GET", "sys/quotas/rate-limit/other", Some(&root)).await,
        404
    );
    // A global quota is inheritable by default; a fractional rate keeps its fraction.
    srv.post(
        "sys/quotas/rate-limit/global",
        &root,
        json!({"rate": 1000.5}),
    )
    .await
    .assert_status(204);
    let r = srv.get("sys/quotas/rate-limit/global", &root).await;
    assert_eq!(r.body["data"]["path"], "");
    assert_eq!(r.body["data"]["rate"], 1000.5);
    assert_eq!(r.body["data"]["inheritable"], true);
    assert_eq!(r.body["data"]["interval"], 1);
    // They are stored: a seal and unseal keeps them.
    srv.seal().await;
    srv.unseal().await.assert_status(200);
    let r = srv.list("sys/quotas/rate-limit", &root).await;
    assert_eq!(r.body["data"]["keys"], json!(["global", "kv-limit"]));
    // Deleting one that does not exist is fine, as in Vault.
    for name in ["global", "kv-limit", "never"] {
        srv.delete(&format!("sys/quotas/rate-limit/{name}"), &root)
            .await
            .assert_status(204);
    }
    assert_eq!(
        status(&srv, "LIST", "sys/quotas/rate-limit", Some(&root)).await,
        404
    );
}

#[tokio::test]
async fn a_client_over_its_quota_gets_429_until_its_window_ends() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    srv.post(
        "sys/quotas/config",
        &root,
        json!({"enable_rate_limit_response_headers": true,
               "rate_limit_exempt_paths": ["sys/health", "sys/quotas/*"]}),
    )
    .await
    .assert_status(204);
    srv.post(
        "sys/quotas/rate-limit/kv",
        &root,
        json!({"path": "secret", "rate": 2, "interval": "10s"}),
    )
    .await
    .assert_status(204);
    let header = |r: &crate::common::Resp, name: &str| {
        r.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    };
    for remaining in ["1", "0"] {
        let r = srv.get("secret/data/x", &root).await;
        r.assert_status(404);
        assert_eq!(header(&r, "x-ratelimit-limit").as_deref(), Some("2"));
        assert_eq!(
            header(&r, "x-ratelimit-remaining").as_deref(),
            Some(remaining)
        );
        assert_eq!(header(&r, "x-ratelimit-reset").as_deref(), Some("10"));
    }
    let r = srv.get("secret/data/x", &root).await;
    r.assert_status(429);
    assert_eq!(
        r.errors(),
        ["request path \"secret/data/x\": rate limit quota exceeded"]
    );
    assert_eq!(header(&r, "retry-after").as_deref(), Some("10"));
    // Before authentication: a request without a token is counted and refused the same way.
    assert_eq!(status(&srv, "GET", "secret/data/x", None).await, 429);
    // Other mounts are not limited; exempt paths never are.
    assert_eq!(status(&srv, "GET", "cubbyhole/x", Some(&root)).await, 404);
    assert_eq!(status(&srv, "GET", "sys/health", None).await, 200);
    // The window ends: two more.
    srv.clock.advance(Duration::from_secs(10));
    assert_eq!(status(&srv, "GET", "secret/data/x", Some(&root)).await, 404);
    assert_eq!(status(&srv, "GET", "secret/data/x", Some(&root)).await, 404);
    assert_eq!(status(&srv, "GET", "secret/data/x", Some(&root)).await, 429);
    // A more specific quota wins: a path prefix under the mount.
    srv.post(
        "sys/quotas/rate-limit/app",
        &root,
        json!({"path": "secret/data/app/*", "rate": 1, "interval": "10s"}),
    )
    .await
    .assert_status(204);
    assert_eq!(
        status(&srv, "GET", "secret/data/app/db", Some(&root)).await,
        404
    );
    assert_eq!(
        status(&srv, "GET", "secret/data/app/web", Some(&root)).await,
        429
    );
    // Refusals are counted per quota.
    let text = srv
        .client
        .get(srv.url("sys/metrics?format=prometheus"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |name: &str| -> f64 {
        text.lines()
            .find(|l| {
                l.starts_with("vault_quota_rate_limit_violation{")
                    && l.contains(&format!("name=\"{name}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(count("kv"), 3.0, "{text}");
    assert_eq!(count("app"), 1.0, "{text}");
}

#[tokio::test]
async fn a_blocked_client_waits_out_the_block_interval() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    srv.post(
        "sys/quotas/rate-limit/strict",
        &root,
        json!({"path": "secret", "rate": 1, "interval": "1s", "block_interval": "30s"}),
    )
    .await
    .assert_status(204);
    assert_eq!(status(&srv, "GET", "secret/data/x", Some(&root)).await, 404);
    assert_eq!(status(&srv, "GET", "secret/data/x", Some(&root)).await, 429);
    // Windows pass, the block holds.
    srv.clock.advance(Duration::from_secs(20));
    assert_eq!(status(&srv, "GET", "secret/data/x", Some(&root)).await, 429);
    srv.clock.advance(Duration::from_secs(11));
    assert_eq!(status(&srv, "GET", "secret/data/x", Some(&root)).await, 404);
}

async fn approle_ids(srv: &TestServer, role: &str) -> (String, String) {
    let root = srv.root.clone();
    srv.post(
        &format!("auth/approle/role/{role}"),
        &root,
        json!({"token_policies": "default"}),
    )
    .await
    .assert_status(204);
    let role_id = srv
        .get(&format!("auth/approle/role/{role}/role-id"), &root)
        .await
        .body["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = srv
        .post(
            &format!("auth/approle/role/{role}/secret-id"),
            &root,
            json!({}),
        )
        .await
        .body["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (role_id, secret_id)
}

/// A role quota on AppRole logins: the role is found from the login's `role_id`; another role's
/// logins are not limited by it. The quota follows its mount when moved and goes with it.
#[tokio::test]
async fn a_role_quota_limits_the_logins_of_that_role_only() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    srv.post("sys/auth/approle", &root, json!({"type": "approle"}))
        .await
        .assert_status(204);
    let jenkins = approle_ids(&srv, "jenkins").await;
    let other = approle_ids(&srv, "other").await;
    srv.post(
        "sys/quotas/rate-limit/jenkins-logins",
        &root,
        json!({"path": "auth/approle", "role": "jenkins", "rate": 1, "interval": "1m"}),
    )
    .await
    .assert_status(204);
    let login = |ids: &(String, String)| json!({"role_id": ids.0, "secret_id": ids.1});
    let try_login = async |ids: &(String, String)| {
        srv.req("POST", "auth/approle/login", None, Some(login(ids)))
            .await
            .status
            .as_u16()
    };
    assert_eq!(try_login(&jenkins).await, 200);
    assert_eq!(try_login(&jenkins).await, 429);
    assert_eq!(try_login(&other).await, 200);
    assert_eq!(try_login(&other).await, 200);
    // A login naming no known role is not this role's.
    let unknown = ("no-such-role-id".to_owned(), "x".to_owned());
    assert_eq!(try_login(&unknown).await, 400);

    // Moved with its mount, gone with it.
    srv.post(
        "sys/remount",
        &root,
        json!({"from": "auth/approle", "to": "auth/ci"}),
    )
    .await
    .assert_status(200);
    let r = srv.get("sys/quotas/rate-limit/jenkins-logins", &root).await;
    assert_eq!(r.body["data"]["path"], "auth/ci/");
    srv.delete("sys/auth/ci", &root).await.assert_status(204);
    assert_eq!(
        status(
            &srv,
            "GET",
            "sys/quotas/rate-limit/jenkins-logins",
            Some(&root)
        )
        .await,
        404
    );
}

/// With `enable_rate_limit_audit_logging` a refused request reaches the audit devices, with
/// Vault's error; without it, it does not.
#[tokio::test]
async fn refusals_are_audited_only_when_asked() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    srv.put(
        "sys/audit/file",
        &root,
        json!({"type": "file", "options": {"file_path": log}}),
    )
    .await
    .assert_status(204);
    srv.post(
        "sys/quotas/rate-limit/kv",
        &root,
        json!({"path": "secret", "rate": 1, "interval": "1h"}),
    )
    .await
    .assert_status(204);
    let refused = |log: &std::path::Path| -> usize {
        std::fs::read_to_string(log)
            .unwrap()
            .lines()
            .filter(|l| l.contains("rate limit quota exceeded"))
            .count()
    };
    assert_eq!(status(&srv, "GET", "secret/data/a", Some(&root)).await, 404);
    assert_eq!(status(&srv, "GET", "secret/data/a", Some(&root)).await, 429);
    assert_eq!(refused(&log), 0);
    srv.post(
        "sys/quotas/config",
        &root,
        json!({"enable_rate_limit_audit_logging": true,
               "rate_limit_exempt_paths": ["sys/health"]}),
    )
    .await
    .assert_status(204);
    assert_eq!(status(&srv, "GET", "secret/data/a", Some(&root)).await, 429);
    let entries: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("rate limit quota exceeded"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!entries.is_empty());
    assert!(
        entries
            .iter()
            .all(|e| e["request"]["path"] == "secret/data/a"),
        "{entries:?}"
    );
}
