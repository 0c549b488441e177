//! Revocation and use counting under concurrency, on file storage over real HTTP: a token that
//! `revoke-accessor` answered 204 for stays dead whatever its holder does at the same moment, a
//! use-limited token serves exactly its uses, and children created while their parent is being
//! revoked die with it.

use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::Barrier;

use coffer::clock::MockClock;

use crate::common::{Resp, TestServer};
use crate::production::ProdServer;

/// How many races each test runs, and how many run at once.
const ROUNDS: usize = 500;
const PARALLEL: usize = 10;

/// A production server over a fresh data directory, initialised and unsealed.
async fn file_server() -> (ProdServer, tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = ProdServer::start(dir.path(), MockClock::new()).await;
    let (_, keys, root) = p.init(1, 1).await;
    p.unseal(&keys[0]).await.assert_status(200);
    (p, dir, root, keys[0].clone())
}

/// Creates a token as `parent`; returns (token, accessor).
async fn create(srv: &TestServer, parent: &str, body: Value) -> (String, String) {
    let r = srv.post("auth/token/create", parent, body).await;
    r.assert_status(200);
    (
        r.body["auth"]["client_token"].as_str().unwrap().to_string(),
        r.body["auth"]["accessor"].as_str().unwrap().to_string(),
    )
}

/// Whether a token is gone for good: refused, not renewable, not findable by accessor or id.
async fn is_dead(srv: &TestServer, root: &str, token: &str, accessor: &str) -> bool {
    srv.get("auth/token/lookup-self", token).await.status == 403
        && srv
            .post("auth/token/renew-self", token, json!({}))
            .await
            .status
            == 403
        && srv
            .post(
                "auth/token/lookup-accessor",
                root,
                json!({ "accessor": accessor }),
            )
            .await
            .status
            == 400
        && srv
            .post("auth/token/lookup", root, json!({ "token": token }))
            .await
            .status
            == 403
}

/// Runs `ROUNDS` races of `race`, `PARALLEL` at a time; returns how many returned true (a
/// failure).
async fn run_races<F, Fut>(race: F) -> usize
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let mut failures = 0;
    for batch in 0..ROUNDS.div_ceil(PARALLEL) {
        let tasks: Vec<_> = (0..PARALLEL)
            .map(|i| tokio::spawn(race(batch * PARALLEL + i)))
            .collect();
        for t in tasks {
            if t.await.unwrap() {
                failures += 1;
            }
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_accessor_is_final_against_renew_self_and_use_limited_tokens() {
    let (p, dir, root, key) = file_server().await;
    let srv = Arc::new(TestServer::attach(
        p.srv.addr,
        p.srv.core.clone(),
        p.srv.clock.clone(),
    ));
    let dead = Arc::new(std::sync::Mutex::new(Vec::new()));
    let revived = run_races(|i| {
        let (srv, root, dead) = (srv.clone(), root.clone(), dead.clone());
        async move {
            // Even rounds: the holder keeps renewing; odd rounds: it spends a use-limited token.
            let body = if i % 2 == 0 {
                json!({"policies": ["default"], "ttl": "1h"})
            } else {
                json!({"policies": ["default"], "ttl": "1h", "num_uses": 5})
            };
            let (token, accessor) = create(&srv, &root, body).await;
            let start = Arc::new(Barrier::new(2));
            let holder = {
                let (srv, token, start) = (srv.clone(), token.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    for _ in 0..3 {
                        let r = if i % 2 == 0 {
                            srv.post("auth/token/renew-self", &token, json!({})).await
                        } else {
                            srv.get("auth/token/lookup-self", &token).await
                        };
                        if r.status != 200 {
                            break;
                        }
                    }
                })
            };
            start.wait().await;
            let r = srv
                .post(
                    "auth/token/revoke-accessor",
                    &root,
                    json!({ "accessor": accessor }),
                )
                .await;
            holder.await.unwrap();
            // The holder never spends the last use, so the accessor is always found.
            r.assert_status(204);
            let alive = !is_dead(&srv, &root, &token, &accessor).await;
            dead.lock().unwrap().push(token);
            alive
        }
    })
    .await;
    assert_eq!(revived, 0, "{revived} of {ROUNDS} revoked tokens survived");

    // Still dead after a restart.
    drop(srv);
    p.stop().await;
    let p = ProdServer::start(dir.path(), MockClock::new()).await;
    p.unseal(&key).await.assert_status(200);
    let tokens = dead.lock().unwrap().clone();
    for t in tokens.iter().step_by(10) {
        p.srv
            .get("auth/token/lookup-self", t)
            .await
            .assert_status(403);
    }
    p.stop().await;
}

/// The statuses of a burst of concurrent renew-self and lookup-self calls on one token.
async fn burst(srv: &Arc<TestServer>, token: &str, n: usize) -> Vec<Resp> {
    let start = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|j| {
            let (srv, token, start) = (srv.clone(), token.to_string(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                if j % 2 == 0 {
                    srv.post("auth/token/renew-self", &token, json!({})).await
                } else {
                    srv.get("auth/token/lookup-self", &token).await
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn use_limited_token_serves_exactly_its_uses_under_renew_self() {
    const USES: usize = 3;
    let (p, _dir, root, _) = file_server().await;
    let srv = Arc::new(TestServer::attach(
        p.srv.addr,
        p.srv.core.clone(),
        p.srv.clock.clone(),
    ));
    let overdrawn = run_races(|_| {
        let (srv, root) = (srv.clone(), root.clone());
        async move {
            let body = json!({"policies": ["default"], "ttl": "1h", "num_uses": USES});
            let (token, _) = create(&srv, &root, body).await;
            let answers = burst(&srv, &token, 2 * USES).await;
            // Every request that passed authentication spent a use; the rest were refused.
            let served = answers.iter().filter(|r| r.status != 403).count();
            for r in &answers {
                assert!(
                    [200, 400, 403].contains(&r.status.as_u16()),
                    "{}: {}",
                    r.status,
                    r.text
                );
            }
            let refused_after = srv.get("auth/token/lookup-self", &token).await.status == 403;
            served != USES || !refused_after
        }
    })
    .await;
    assert_eq!(
        overdrawn, 0,
        "{overdrawn} of {ROUNDS} tokens served more or fewer than {USES} requests"
    );
    drop(srv);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn children_created_during_parent_revocation_do_not_survive() {
    let (p, _dir, root, _) = file_server().await;
    let srv = Arc::new(TestServer::attach(
        p.srv.addr,
        p.srv.core.clone(),
        p.srv.clock.clone(),
    ));
    srv.write_policy_as(
        &root,
        "creator",
        r#"path "auth/token/create" { capabilities = ["update"] }"#,
    )
    .await;
    let survivors = run_races(|_| {
        let (srv, root) = (srv.clone(), root.clone());
        async move {
            let (parent, accessor) =
                create(&srv, &root, json!({"policies": ["creator"], "ttl": "1h"})).await;
            let start = Arc::new(Barrier::new(2));
            let creator = {
                let (srv, parent, start) = (srv.clone(), parent.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let mut children = Vec::new();
                    for _ in 0..3 {
                        let r = srv
                            .post("auth/token/create", &parent, json!({"ttl": "1h"}))
                            .await;
                        if r.status != 200 {
                            break;
                        }
                        children.push((
                            r.body["auth"]["client_token"].as_str().unwrap().to_string(),
                            r.body["auth"]["accessor"].as_str().unwrap().to_string(),
                        ));
                    }
                    children
                })
            };
            start.wait().await;
            srv.post(
                "auth/token/revoke-accessor",
                &root,
                json!({ "accessor": accessor }),
            )
            .await
            .assert_status(204);
            let children = creator.await.unwrap();
            let mut survived = !is_dead(&srv, &root, &parent, &accessor).await;
            for (child, acc) in &children {
                survived |= !is_dead(&srv, &root, child, acc).await;
            }
            survived
        }
    })
    .await;
    assert_eq!(
        survivors, 0,
        "{survivors} of {ROUNDS} revocations left a live child"
    );
    drop(srv);
    p.stop().await;
}
