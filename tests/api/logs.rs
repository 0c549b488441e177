//! `sys/monitor` and `sys/loggers` on the real binary (its log is the process's, set up by
//! `main`): a monitor streams lines below the server's own level and ends when the client
//! leaves, the core seals or the server stops; logger levels change what the server writes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::binary::Dev;

/// Generous bound on waiting for a line: a guard against a hang, not a latency check.
const PATIENCE: Duration = Duration::from_secs(20);

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn call(
    dev: &Dev,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = client()
        .request(m, format!("{}/v1/{path}", dev.addr))
        .header("X-Vault-Token", token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.unwrap()
}

async fn status_and_errors(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body["errors"].clone())
}

/// Sends a request and checks its status.
async fn expect(dev: &Dev, method: &str, path: &str, token: &str, body: Option<Value>, want: u16) {
    let r = call(dev, method, path, token, body).await;
    assert_eq!(r.status(), want, "{method} {path}");
}

/// A new token with `policy`, made by the root token.
async fn token_with(dev: &Dev, policy: &str) -> String {
    let r = call(
        dev,
        "POST",
        "auth/token/create",
        &dev.token,
        Some(json!({ "policies": [policy] })),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    body["auth"]["client_token"].as_str().unwrap().to_string()
}

/// An open monitor: its response, and the text received so far.
struct Monitor {
    resp: reqwest::Response,
    seen: String,
}

impl Monitor {
    async fn open(dev: &Dev, query: &str) -> Monitor {
        let resp = call(
            dev,
            "GET",
            &format!("sys/monitor?{query}"),
            &dev.token,
            None,
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/plain; charset=utf-8"
        );
        Monitor {
            resp,
            seen: String::new(),
        }
    }

    /// Reads until a whole line satisfies `want`; returns that line.
    async fn line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + PATIENCE;
        loop {
            // Whole lines only: up to the last newline.
            let whole = self.seen.rsplit_once('\n').map_or("", |(w, _)| w);
            if let Some(l) = whole.lines().find(|l| want(l)) {
                return l.to_string();
            }
            let left = until.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no such line in {:?}", self.seen);
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(c))) => self.seen.push_str(&String::from_utf8_lossy(&c)),
                Ok(Ok(None)) => panic!("the monitor ended; got {:?}", self.seen),
                Ok(Err(e)) => panic!("monitor stream failed: {e}; got {:?}", self.seen),
                Err(_) => panic!("no such line in {:?}", self.seen),
            }
        }
    }

    /// Reads to the end of the stream (which must come); returns everything received.
    async fn end(mut self) -> String {
        let until = Instant::now() + PATIENCE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(c))) => self.seen.push_str(&String::from_utf8_lossy(&c)),
                Ok(Ok(None)) => return self.seen,
                Ok(Err(e)) => panic!("monitor stream failed: {e}; got {:?}", self.seen),
                Err(_) => panic!("the monitor did not end; got {:?}", self.seen),
            }
        }
    }
}

/// Writes a kv secret whose value is `canary` at `secret/<key>`.
async fn kv_put(dev: &Dev, key: &str, canary: &str) {
    expect(
        dev,
        "PUT",
        &format!("secret/data/{key}"),
        &dev.token,
        Some(json!({"data": {"password": canary}})),
        200,
    )
    .await;
}

#[tokio::test]
async fn a_monitor_streams_debug_lines_from_an_info_server_without_secrets() {
    let dev = Dev::start(&["-log-level=info"], &[]).await;
    let mut mon = Monitor::open(&dev, "log_level=debug").await;
    let canary = "canary-7f3e9d0c";
    kv_put(&dev, "watched", canary).await;
    let line = mon
        .line(|l| l.contains("PUT /v1/secret/data/watched 200"))
        .await;
    assert!(line.contains("DEBUG"), "{line}");
    // The monitor also gets the info lines (its level and above).
    expect(
        &dev,
        "PUT",
        "sys/policies/acl/seen",
        &dev.token,
        Some(json!({"policy": "path \"a\" { capabilities = [\"read\"] }"})),
        204,
    )
    .await;
    mon.line(|l| l.contains("INFO") && l.contains("policy written"))
        .await;
    assert!(!mon.seen.contains(canary), "{}", mon.seen);
    // The client leaves; the server goes on and stops cleanly.
    drop(mon);
    let err = dev.stop().await;
    // The server's own output stayed at info.
    assert!(!err.contains("secret/data/watched"), "{err}");
    assert!(err.contains("policy written"), "{err}");
    assert!(!err.contains(canary), "{err}");
}

#[tokio::test]
async fn a_json_monitor_streams_one_object_per_line() {
    let dev = Dev::start(&[], &[]).await;
    let mut mon = Monitor::open(&dev, "log_level=DEBUG&log_format=json").await;
    kv_put(&dev, "json", "x").await;
    let line = mon
        .line(|l| l.contains("PUT /v1/secret/data/json 200"))
        .await;
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "DEBUG", "{line}");
    assert_eq!(v["fields"]["response.status"], 200, "{line}");
    drop(mon);
    dev.stop().await;
}

#[tokio::test]
async fn a_monitor_ends_when_the_core_seals_or_the_server_stops() {
    let dev = Dev::start(&[], &[]).await;
    let mon = Monitor::open(&dev, "log_level=info").await;
    expect(&dev, "PUT", "sys/seal", &dev.token, None, 204).await;
    let seen = mon.end().await;
    assert!(
        seen.ends_with("core received sealed state change, ending monitor session"),
        "{seen:?}"
    );
    dev.stop().await;

    // A SIGTERM ends an open monitor instead of waiting for its client (the server waits up
    // to 30 s for in-flight responses).
    let dev = Dev::start(&[], &[]).await;
    let mut mon = Monitor::open(&dev, "log_level=trace").await;
    kv_put(&dev, "before-stop", "x").await;
    mon.line(|l| l.contains("secret/data/before-stop")).await;
    let stopping = tokio::spawn(dev.stop());
    mon.end().await;
    let err = tokio::time::timeout(PATIENCE, stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(err.contains("shutdown complete"), "{err}");
}

#[tokio::test]
async fn monitor_parameters_and_acl_are_vaults() {
    let dev = Dev::start(&[], &[]).await;
    let (s, e) =
        status_and_errors(call(&dev, "GET", "sys/monitor?log_level=loud", &dev.token, None).await)
            .await;
    assert_eq!((s, e), (400, json!(["unknown log level"])));
    let (s, e) =
        status_and_errors(call(&dev, "GET", "sys/monitor?log_format=xml", &dev.token, None).await)
            .await;
    assert_eq!((s, e), (400, json!(["unknown log format"])));
    // A token with only the default policy may not watch the log or change its levels.
    let plain = token_with(&dev, "default").await;
    for (method, path) in [
        ("GET", "sys/monitor"),
        ("GET", "sys/loggers"),
        ("PUT", "sys/loggers"),
        ("DELETE", "sys/loggers/http"),
    ] {
        let r = call(&dev, method, path, &plain, Some(json!({"level": "trace"}))).await;
        assert_eq!(r.status(), 403, "{method} {path}");
    }
    // A policy granting read on sys/monitor is enough to watch.
    expect(
        &dev,
        "PUT",
        "sys/policies/acl/watcher",
        &dev.token,
        Some(json!({"policy": "path \"sys/monitor\" { capabilities = [\"read\"] }"})),
        204,
    )
    .await;
    let watcher = token_with(&dev, "watcher").await;
    expect(
        &dev,
        "GET",
        "sys/monitor?log_level=error",
        &watcher,
        None,
        200,
    )
    .await;
    dev.stop().await;
}

#[tokio::test]
async fn logger_levels_change_what_the_server_writes_and_revert_to_the_configured_one() {
    let dev = Dev::start(&["-log-level=info"], &[]).await;
    let r = call(&dev, "GET", "sys/loggers", &dev.token, None).await;
    let body: Value = r.json().await.unwrap();
    let levels = body["data"].as_object().unwrap();
    assert!(levels.len() >= 10, "{levels:?}");
    assert!(levels.values().all(|l| l == "info"), "{levels:?}");
    assert_eq!(levels["http"], "info");

    // One logger at debug: the request lines (logger `http`) appear.
    expect(
        &dev,
        "PUT",
        "sys/loggers/http",
        &dev.token,
        Some(json!({"level": "Debug"})),
        204,
    )
    .await;
    let r = call(&dev, "GET", "sys/loggers/http", &dev.token, None).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"], json!({"http": "debug"}));
    let r = call(&dev, "GET", "sys/loggers/core", &dev.token, None).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"], json!({"core": "info"}));
    kv_put(&dev, "logged-by-http-debug", "x").await;
    // Back to the configured level.
    expect(&dev, "DELETE", "sys/loggers/http", &dev.token, None, 204).await;
    kv_put(&dev, "not-logged-after-revert", "x").await;
    // Every logger at once, then all reverted.
    expect(
        &dev,
        "PUT",
        "sys/loggers",
        &dev.token,
        Some(json!({"level": "trace"})),
        204,
    )
    .await;
    kv_put(&dev, "logged-by-all-trace", "x").await;
    expect(&dev, "DELETE", "sys/loggers", &dev.token, None, 204).await;
    kv_put(&dev, "not-logged-after-all-revert", "x").await;
    let r = call(&dev, "GET", "sys/loggers", &dev.token, None).await;
    let body: Value = r.json().await.unwrap();
    assert!(
        body["data"]
            .as_object()
            .unwrap()
            .values()
            .all(|l| l == "info"),
        "{body}"
    );

    // Vault's errors; nothing changes.
    for (method, path, body, want) in [
        ("PUT", "sys/loggers", json!({}), "level is required"),
        ("PUT", "sys/loggers", json!({"level": ""}), "level is empty"),
        (
            "PUT",
            "sys/loggers",
            json!({"level": "Loud"}),
            "invalid level provided: unknown log level: loud",
        ),
        (
            "PUT",
            "sys/loggers/nope",
            json!({"level": "debug"}),
            "logger \"nope\" not found",
        ),
        (
            "DELETE",
            "sys/loggers/nope",
            json!({}),
            "logger \"nope\" not found",
        ),
    ] {
        let (s, e) =
            status_and_errors(call(&dev, method, path, &dev.token, Some(body)).await).await;
        assert_eq!((s, e), (400, json!([want])), "{method} {path}");
    }
    let r = call(&dev, "GET", "sys/loggers/nope", &dev.token, None).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"], json!({}));

    let err = dev.stop().await;
    // The request line carries the request id although only the `http` logger was at debug.
    let line = err
        .lines()
        .find(|l| l.contains("secret/data/logged-by-http-debug"))
        .unwrap_or_else(|| panic!("no request line in {err}"));
    assert!(
        line.contains("request.id=\"") && !line.contains("request.id=\"\""),
        "{line}"
    );
    assert!(err.contains("secret/data/logged-by-all-trace"), "{err}");
    assert!(!err.contains("not-logged-after-revert"), "{err}");
    assert!(!err.contains("not-logged-after-all-revert"), "{err}");
}

/// SIGHUP applies the config file's `log_level` to every logger, as Vault's reload does; it is
/// then also the level `DELETE sys/loggers` returns to.
#[tokio::test]
async fn sighup_applies_the_files_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dev.hcl");
    std::fs::write(&file, "log_level = \"info\"\n").unwrap();
    let dev = Dev::start(&[&format!("-config={}", file.display())], &[]).await;
    let policy = |name: &'static str| {
        let dev = &dev;
        async move {
            expect(
                dev,
                "PUT",
                &format!("sys/policies/acl/{name}"),
                &dev.token,
                Some(json!({"policy": "path \"a\" { capabilities = [\"read\"] }"})),
                204,
            )
            .await;
        }
    };
    policy("before-reload").await;
    std::fs::write(&file, "log_level = \"error\"\n").unwrap();
    let pid = dev.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The reload is done when the loggers show the new level (a guard, not a timing check).
    let until = Instant::now() + PATIENCE;
    loop {
        let r = call(&dev, "GET", "sys/loggers/core", &dev.token, None).await;
        let body: Value = r.json().await.unwrap();
        if body["data"]["core"] == "error" {
            break;
        }
        assert!(Instant::now() < until, "the level never changed: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    policy("after-reload").await;
    // A change through the API reverts to the reloaded level.
    expect(
        &dev,
        "PUT",
        "sys/loggers",
        &dev.token,
        Some(json!({"level": "debug"})),
        204,
    )
    .await;
    expect(&dev, "DELETE", "sys/loggers", &dev.token, None, 204).await;
    let r = call(&dev, "GET", "sys/loggers/http", &dev.token, None).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"], json!({"http": "error"}));
    let err = dev.stop().await;
    assert!(
        err.contains("name=before-reload") || err.contains("before-reload"),
        "{err}"
    );
    assert!(!err.contains("after-reload"), "{err}");
}
