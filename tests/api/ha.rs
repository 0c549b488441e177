//! HA on PostgreSQL with real processes: two (or one) real `coffer` binaries sharing a real
//! database (`TEST_POSTGRES_URL` from `bash scripts/test.sh`; the restart test runs a throwaway
//! cluster of its own). Short lock timings (2 s lease, 500 ms renewal, 200 ms poll) keep them
//! fast; every wait polls against a deadline.

use crate::production::crash::{call, free_port};
use coffer::physical::PhysicalBackend;
use coffer::physical::pg_lock::{LockTimings, PgLock};
use coffer::physical::postgresql::{PostgresqlBackend, PostgresqlOptions};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(2);
const RENEW: Duration = Duration::from_millis(500);

fn database_url() -> String {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "TEST_POSTGRES_URL is not set: the HA tests need a real database; run them with \
             `bash scripts/test.sh`, which starts a throwaway PostgreSQL cluster"
        ),
    }
}

fn fresh_table() -> String {
    format!("coffer_ha_{}", uuid::Uuid::new_v4().simple())
}

async fn sql(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// One `coffer server` process of a cluster.
struct Node {
    child: Option<Child>,
    port: u16,
    /// The port that `{free_port}` in the extra config became.
    extra_port: u16,
    config: std::path::PathBuf,
    url: String,
    _dir: tempfile::TempDir,
}

impl Node {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn api_addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> String {
        self.child.as_ref().map(|c| c.id().to_string()).unwrap()
    }

    /// Writes the config and starts the process (waits for the banner). With
    /// `tls = Some((cert PEM, key PEM))` the listener serves HTTPS.
    fn start_tls(url: &str, table: &str, tls: Option<(&str, &str)>) -> Node {
        Self::start_with(url, table, tls, "")
    }

    /// With `extra` appended to the config file.
    fn start_with(url: &str, table: &str, tls: Option<(&str, &str)>, extra: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let extra_port = free_port();
        let extra = extra.replace("{free_port}", &extra_port.to_string());
        let (scheme, listener_tls) = match tls {
            None => ("http", "  tls_disable = true\n".to_owned()),
            Some((cert, key)) => {
                let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
                std::fs::write(&c, cert).unwrap();
                std::fs::write(&k, key).unwrap();
                (
                    "https",
                    format!(
                        "  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n",
                        c.display(),
                        k.display()
                    ),
                )
            }
        };
        // An `extra` with its own retention time brings its own telemetry stanza.
        let telemetry = if extra.contains("prometheus_retention_time") {
            ""
        } else {
            "telemetry {\n  prometheus_retention_time = \"1h\"\n}\n"
        };
        let config = dir.path().join("ha.hcl");
        std::fs::write(
            &config,
            format!(
                "storage \"postgresql\" {{\n  table = \"{table}\"\n  ha_table = \"{table}_locks\"\n  \
                 ha_enabled = \"true\"\n  max_parallel = \"16\"\n  ha_lock_ttl = \"2s\"\n  \
                 ha_lock_renew_interval = \"500ms\"\n  ha_lock_retry_interval = \"200ms\"\n}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n{listener_tls}  \
                 telemetry {{\n    unauthenticated_metrics_access = true\n  }}\n}}\n\
                 {telemetry}\
                 api_addr = \"{scheme}://127.0.0.1:{port}\"\n{extra}"
            ),
        )
        .unwrap();
        let mut node = Node {
            child: None,
            port,
            extra_port,
            config,
            url: url.to_owned(),
            _dir: dir,
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        // Each node runs in its own directory: a relative path (an audit file) is its own.
        let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(["server", &format!("-config={}", self.config.display())])
            .current_dir(self._dir.path())
            .env("VAULT_PG_CONNECTION_URL", &self.url)
            .env("VAULT_LOG_LEVEL", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.config.with_extension("log")).unwrap())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut started = false;
        for line in BufReader::new(out).lines() {
            if line.unwrap().contains("Coffer server started") {
                started = true;
                break;
            }
        }
        assert!(started, "the server did not start");
        self.child = Some(child);
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .unwrap();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    async fn health(&self, c: &reqwest::Client) -> u16 {
        call(
            c,
            Method::GET,
            format!("{}/sys/health", self.base()),
            None,
            Value::Null,
        )
        .await
        .0
    }

    async fn unseal(&self, c: &reqwest::Client, key: &str) {
        let (st, body) = call(
            c,
            Method::PUT,
            format!("{}/sys/unseal", self.base()),
            None,
            json!({ "key": key }),
        )
        .await;
        assert_eq!((st, body["sealed"].clone()), (200, json!(false)), "{body}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default();
            eprintln!("---- log of the node on port {} ----\n{log}", self.port);
        }
    }
}

/// Polls `f` until it is true; panics with `what` after `limit`.
async fn wait_for<F, Fut>(limit: Duration, what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Index of the active node among `nodes` (health 200), polling up to `limit`.
async fn active_of(c: &reqwest::Client, nodes: &[&Node], limit: Duration) -> usize {
    let found = std::sync::Mutex::new(None);
    wait_for(limit, "a node to become active", || async {
        for (i, n) in nodes.iter().enumerate() {
            if n.health(c).await == 200 {
                *found.lock().unwrap() = Some(i);
                return true;
            }
        }
        false
    })
    .await;
    found.into_inner().unwrap().unwrap()
}

/// Two nodes over one fresh table, initialised through the first, both unsealed, kv-v2 at
/// `secret/`; returns them with the unseal key and root token.
async fn cluster(c: &reqwest::Client, url: &str) -> (Node, Node, String, String, String) {
    cluster_with(c, url, "").await
}

/// [`cluster`] with `extra` in both nodes' config files.
async fn cluster_with(
    c: &reqwest::Client,
    url: &str,
    extra: &str,
) -> (Node, Node, String, String, String) {
    cluster_of(c, [url, url], extra).await
}

/// [`cluster_with`], each node with its own connection URL.
async fn cluster_of(
    c: &reqwest::Client,
    urls: [&str; 2],
    extra: &str,
) -> (Node, Node, String, String, String) {
    let table = fresh_table();
    let a = Node::start_with(urls[0], &table, None, extra);
    let b = Node::start_with(urls[1], &table, None, extra);
    let (st, init) = call(
        c,
        Method::PUT,
        format!("{}/sys/init", a.base()),
        None,
        json!({"secret_shares": 1, "secret_threshold": 1}),
    )
    .await;
    assert_eq!(st, 200, "{init}");
    let key = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    a.unseal(c, &key).await;
    b.unseal(c, &key).await;
    let i = active_of(c, &[&a, &b], Duration::from_secs(10)).await;
    let active = [&a, &b][i];
    let (st, body) = call(
        c,
        Method::POST,
        format!("{}/sys/mounts/secret", active.base()),
        Some(&root),
        json!({"type": "kv-v2"}),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    (a, b, key, root, table)
}

/// [`cluster`], with its nodes as (active, standby), and the root token.
async fn active_and_standby(c: &reqwest::Client, url: &str) -> (Node, Node, String) {
    let (a, b, _key, root, _) = cluster(c, url).await;
    let i = active_of(c, &[&a, &b], Duration::from_secs(5)).await;
    if i == 0 { (a, b, root) } else { (b, a, root) }
}

/// A token of a new token role `role` whose tokens are bound to `cidr`, made on `node`.
async fn bound_token(
    c: &reqwest::Client,
    node: &Node,
    root: &str,
    role: &str,
    cidr: &str,
) -> String {
    let (st, body) = call(
        c,
        Method::POST,
        format!("{}/auth/token/roles/{role}", node.base()),
        Some(root),
        json!({"token_bound_cidrs": [cidr]}),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let (st, body) = call(
        c,
        Method::POST,
        format!("{}/auth/token/create/{role}", node.base()),
        Some(root),
        json!({"ttl": "1h"}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    body["auth"]["client_token"].as_str().unwrap().to_owned()
}

/// `sys/step-down` through `node` (forwarded to the active node when it is a standby).
async fn step_down(c: &reqwest::Client, node: &Node, root: &str) {
    let (st, body) = call(
        c,
        Method::PUT,
        format!("{}/sys/step-down", node.base()),
        Some(root),
        Value::Null,
    )
    .await;
    assert_eq!(st, 204, "{body}");
}

/// A node's own Prometheus output (its listener serves `sys/metrics` without a token).
async fn metrics_text(c: &reqwest::Client, node: &Node) -> String {
    c.get(format!("{}/sys/metrics?format=prometheus", node.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn put(c: &reqwest::Client, base: &str, root: &str, key: &str, v: Value) -> (u16, Value) {
    call(
        c,
        Method::PUT,
        format!("{base}/secret/data/{key}"),
        Some(root),
        json!({ "data": v }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_standby_answers_forwards_redirects_and_steps_down() {
    let url = database_url();
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (a, b, _key, root, _) = cluster(&c, &url).await;
    let nodes = [&a, &b];
    let i = active_of(&c, &nodes, Duration::from_secs(5)).await;
    let (active, standby) = (nodes[i], nodes[1 - i]);

    // Health: 200 / 429; standbyok=true turns the standby's into the active code.
    assert_eq!(active.health(&c).await, 200);
    assert_eq!(standby.health(&c).await, 429);
    let (st, body) = call(
        &c,
        Method::GET,
        format!("{}/sys/health?standbyok=true", standby.base()),
        None,
        Value::Null,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        (body["standby"].clone(), body["sealed"].clone()),
        (json!(true), json!(false))
    );
    let (st, _) = call(
        &c,
        Method::GET,
        format!("{}/sys/health?standbyok=maybe", standby.base()),
        None,
        Value::Null,
    )
    .await;
    assert_eq!(st, 400);

    // Leader: both name the active node; only the active is itself.
    for (n, is_self) in [(active, true), (standby, false)] {
        let (st, body) = call(
            &c,
            Method::GET,
            format!("{}/sys/leader", n.base()),
            None,
            Value::Null,
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(body["ha_enabled"], json!(true), "{body}");
        assert_eq!(body["is_self"], json!(is_self), "{body}");
        assert_eq!(body["leader_address"], json!(active.api_addr()), "{body}");
    }
    // Metrics: each node answers its own scrape (no token on this listener); the standby
    // reports unsealed but not active.
    for (n, active_value) in [(active, 1.0), (standby, 0.0)] {
        let text = metrics_text(&c, n).await;
        let gauge = |name: &str| -> Option<f64> {
            text.lines()
                .find(|l| l.starts_with(&format!("{name}{{")))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
        };
        assert_eq!(gauge("vault_core_unsealed"), Some(1.0), "{text}");
        assert_eq!(gauge("vault_core_active"), Some(active_value), "{text}");
    }
    let (_, status) = call(
        &c,
        Method::GET,
        format!("{}/sys/seal-status", standby.base()),
        None,
        Value::Null,
    )
    .await;
    assert_eq!(status["sealed"], json!(false), "{status}");

    // Forwarding: a write and a read through the standby, token and body carried, the answer
    // relayed unchanged.
    let (st, body) = put(&c, &standby.base(), &root, "via-standby", json!({"x": "1"})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["version"], json!(1));
    let resp = c
        .get(format!("{}/secret/data/via-standby", standby.base()))
        .header("X-Vault-Token", &root)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("application/json")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["data"], json!({"x": "1"}));
    // Vault's timers: the standby's forwarding, the active node's PostgreSQL operations.
    let count = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}_count")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let standby_text = metrics_text(&c, standby).await;
    assert!(
        count(&standby_text, "vault_ha_rpc_client_forward") >= 2.0,
        "{standby_text}"
    );
    let active_text = metrics_text(&c, active).await;
    for name in [
        "vault_postgres_get",
        "vault_postgres_put",
        "vault_postgres_list",
    ] {
        assert!(count(&active_text, name) >= 1.0, "{name}: {active_text}");
    }
    let (st, _) = call(
        &c,
        Method::GET,
        format!("{}/secret/data/via-standby", standby.base()),
        Some("bogus"),
        Value::Null,
    )
    .await;
    assert_eq!(st, 403);

    // The client's address survives forwarding (signed by the standby); a forged one sent
    // directly is ignored.
    for (i, (cidr, via, forged, want)) in [
        ("127.0.0.1/32", standby, None, 200),
        ("127.0.0.1/32", active, Some("10.1.1.1"), 200),
        ("10.0.0.0/8", active, Some("10.1.1.1"), 403),
        ("10.0.0.0/8", standby, Some("10.1.1.1"), 403),
    ]
    .into_iter()
    .enumerate()
    {
        let token = bound_token(&c, active, &root, &format!("bound{i}"), cidr).await;
        let mut rb = c
            .get(format!("{}/auth/token/lookup-self", via.base()))
            .header("X-Vault-Token", &token);
        if let Some(ip) = forged {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            rb = rb.header(
                "X-Coffer-Forwarded-For",
                format!("{ip} {now} {}", "0".repeat(64)),
            );
        }
        let st = rb.send().await.unwrap().status().as_u16();
        assert_eq!(
            st, want,
            "token bound to {cidr}, via {}, forged {forged:?}",
            via.port
        );
    }

    // X-Vault-No-Request-Forwarding: a 307 to the same path and query on the active node.
    let resp = c
        .get(format!(
            "{}/secret/data/via-standby?version=1",
            standby.base()
        ))
        .header("X-Vault-Token", &root)
        .header("X-Vault-No-Request-Forwarding", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 307);
    assert_eq!(
        resp.headers().get("location").unwrap().to_str().unwrap(),
        format!("{}/secret/data/via-standby?version=1", active.base())
    );

    // A standby refuses to seal, as Vault's does.
    let (st, body) = call(
        &c,
        Method::PUT,
        format!("{}/sys/seal", standby.base()),
        Some(&root),
        Value::Null,
    )
    .await;
    assert_eq!(st, 500, "{body}");
    assert_eq!(
        body["errors"][0],
        json!("vault cannot seal when in standby mode; please restart instead")
    );

    // Step-down needs sudo; sent to the standby it is forwarded; the other node then takes
    // over and acknowledges a write within 1.5 s.
    let (st, _) = call(
        &c,
        Method::PUT,
        format!("{}/sys/step-down", standby.base()),
        Some("bogus"),
        Value::Null,
    )
    .await;
    assert_eq!(st, 403);
    let (st, body) = call(
        &c,
        Method::PUT,
        format!("{}/sys/step-down", standby.base()),
        Some(&root),
        Value::Null,
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let stepped = Instant::now();
    let took = wait_for(
        Duration::from_secs(5),
        "a write on the new active",
        || async {
            put(
                &c,
                &standby.base(),
                &root,
                "after-step-down",
                json!({"y": "2"}),
            )
            .await
            .0 == 200
        },
    )
    .await;
    eprintln!("step-down -> write acknowledged by the other node after {took:?}");
    assert!(
        stepped.elapsed() <= Duration::from_millis(1500),
        "step-down failover took {took:?}"
    );
    assert_eq!(standby.health(&c).await, 200);
    assert_eq!(active.health(&c).await, 429);
    // Everything written before is there on the new active (loaded from storage), also when
    // read through the node that stepped down (a standby now, forwarding).
    wait_for(
        Duration::from_secs(2),
        "a read through the old active",
        || async {
            let (st, body) = call(
                &c,
                Method::GET,
                format!("{}/secret/data/via-standby", active.base()),
                Some(&root),
                Value::Null,
            )
            .await;
            assert!(st == 200 || st == 503, "{st} {body}");
            st == 200 && body["data"]["data"] == json!({"x": "1"})
        },
    )
    .await;
    // The node that stepped down timed the request and how long it led; the new active timed
    // its step-up's load.
    let count = async |node: &Node, name: &str| -> f64 {
        metrics_text(&c, node)
            .await
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(count(active, "vault_core_step_down_count").await, 1.0);
    assert_eq!(count(active, "vault_core_leadership_lost_count").await, 1.0);
    assert!(count(standby, "vault_core_post_unseal_count").await >= 1.0);
}

/// The AppRole guide with the real CLI, every command sent to a standby's address (forwarded),
/// and `operator step-down` half-way through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_cli_guide_through_a_standby() {
    let url = database_url();
    let c = reqwest::Client::new();
    let (a, b, _key, root, _) = cluster(&c, &url).await;
    let nodes = [&a, &b];
    let i = active_of(&c, &nodes, Duration::from_secs(5)).await;
    let standby = nodes[1 - i];
    let Some(cli) = crate::cli::Cli::at(standby.api_addr()) else {
        return;
    };
    let admin = Some(root.as_str());
    let status = cli.run(None, &["status"], None).await;
    assert!(
        status.stdout.contains("HA Enabled") && status.stdout.contains("standby"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(&nodes[i].api_addr()),
        "{}",
        status.stdout
    );
    cli.ok(admin, &["auth", "enable", "approle"]).await;
    std::fs::write(
        cli.home.path().join("app.hcl"),
        "path \"secret/data/app/*\" { capabilities = [\"create\", \"read\", \"update\"] }\n",
    )
    .unwrap();
    cli.ok(admin, &["policy", "write", "app", "app.hcl"]).await;
    cli.ok(
        admin,
        &[
            "write",
            "auth/approle/role/app",
            "token_policies=app",
            "token_ttl=1h",
        ],
    )
    .await;
    let role_id = cli
        .json(admin, &["read"], &["auth/approle/role/app/role-id"])
        .await["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = cli
        .json(
            admin,
            &["write"],
            &["-f", "auth/approle/role/app/secret-id"],
        )
        .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let login = cli
        .json(
            None,
            &["write"],
            &[
                "auth/approle/login",
                &format!("role_id={role_id}"),
                &format!("secret_id={secret_id}"),
            ],
        )
        .await;
    let token = login["auth"]["client_token"].as_str().unwrap().to_owned();
    let app = Some(token.as_str());
    cli.ok(app, &["kv", "put", "secret/app/db", "password=s3cret"])
        .await;
    let got = cli.json(app, &["kv", "get"], &["secret/app/db"]).await;
    assert_eq!(got["data"]["data"]["password"], json!("s3cret"));

    // Step-down through the standby; the CLI keeps working against the same address.
    cli.ok(admin, &["operator", "step-down"]).await;
    wait_for(
        Duration::from_secs(5),
        "the standby to become active",
        || async { standby.health(&c).await == 200 },
    )
    .await;
    let got = cli.json(app, &["kv", "get"], &["secret/app/db"]).await;
    assert_eq!(got["data"]["data"]["password"], json!("s3cret"));
    let status = cli.run(None, &["status"], None).await;
    assert!(status.stdout.contains("active"), "{}", status.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_graceful_shutdown_hands_over_within_1_5_s() {
    let url = database_url();
    let c = reqwest::Client::new();
    let (mut active, mut standby, root) = active_and_standby(&c, &url).await;
    let (active, standby) = (&mut active, &mut standby);
    let started = Instant::now();
    active.stop();
    let base = standby.base();
    wait_for(
        Duration::from_secs(5),
        "a write on the other node",
        || async {
            put(&c, &base, &root, "after-shutdown", json!({"z": "3"}))
                .await
                .0
                == 200
        },
    )
    .await;
    let took = started.elapsed();
    eprintln!("graceful shutdown -> write acknowledged by the other node after {took:?}");
    assert!(took <= Duration::from_millis(1500), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_sigkill_of_the_active_loses_no_acknowledged_write() {
    let url = database_url();
    let c = reqwest::Client::new();
    let (mut active, mut standby, root) = active_and_standby(&c, &url).await;
    let (active, standby) = (&mut active, &mut standby);
    // Four writers through the standby's address (forwarded while the other is active).
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let first_after: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (c, base, root) = (c.clone(), standby.base(), root.clone());
        let (stop, killed_at, first_after) = (stop.clone(), killed_at.clone(), first_after.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0_i64.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let key = format!("w{w}/k{i}");
                let started = Instant::now();
                let (st, _) = put(&c, &base, &root, &key, json!({ "i": i })).await;
                if st == 200 {
                    acked.push((key, i));
                    // The first acknowledged write sent after the kill.
                    let killed = *killed_at.lock().unwrap();
                    if killed.is_some_and(|k| started >= k) {
                        first_after.lock().unwrap().get_or_insert_with(Instant::now);
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            acked
        }));
    }
    let acked_so_far = || async {
        call(
            &c,
            Method::GET,
            format!("{}/secret/metadata/w0?list=true", standby.base()),
            Some(&root),
            Value::Null,
        )
        .await
        .1["data"]["keys"]
            .as_array()
            .map_or(0, Vec::len)
    };
    wait_for(
        Duration::from_secs(20),
        "writes before the kill",
        || async { acked_so_far().await >= 10 },
    )
    .await;
    let pid = active.pid();
    Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    let killed = Instant::now();
    *killed_at.lock().unwrap() = Some(killed);
    active.kill();
    wait_for(
        Duration::from_secs(10),
        "a write after the kill",
        || async { first_after.lock().unwrap().is_some() },
    )
    .await;
    let failover = first_after.lock().unwrap().unwrap() - killed;
    // A few more writes on the new active, then stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    eprintln!(
        "SIGKILL of the active -> first acknowledged write after {failover:?} ({} writes acknowledged)",
        acked.len()
    );
    assert!(failover <= TTL + Duration::from_secs(3), "{failover:?}");
    for (key, i) in &acked {
        let (st, body) = call(
            &c,
            Method::GET,
            format!("{}/secret/data/{key}", standby.base()),
            Some(&root),
            Value::Null,
        )
        .await;
        assert_eq!(st, 200, "acknowledged write {key} lost");
        assert_eq!(body["data"]["data"]["i"], json!(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_frozen_active_commits_nothing_after_takeover() {
    let url = database_url();
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (a, b, _key, root, _) = cluster(&c, &url).await;
    let nodes = [&a, &b];
    let i = active_of(&c, &nodes, Duration::from_secs(5)).await;
    let (frozen, other) = (nodes[i], nodes[1 - i]);
    frozen.signal("-STOP");
    // A request forwarded to the frozen node does not hang: once the standby sees the lease run
    // out it answers 503 (the write, pending on the frozen node, can never commit there).
    let sent = Instant::now();
    let (st, body) = put(
        &c,
        &other.base(),
        &root,
        "frozen-forwarded",
        json!({"f": 1}),
    )
    .await;
    let waited = sent.elapsed();
    eprintln!("request forwarded to the frozen node answered {st} after {waited:?}");
    assert_eq!(st, 503, "{body}");
    assert!(waited <= TTL + Duration::from_millis(1500), "{waited:?}");
    // The other node takes over once the lease has run out.
    wait_for(Duration::from_secs(10), "takeover", || async {
        other.health(&c).await == 200
    })
    .await;
    eprintln!(
        "SIGSTOP of the active -> other node active after {:?}",
        sent.elapsed()
    );
    // Writes sent to the frozen node directly (queued while it is stopped), then more after it
    // resumes. Forwarding is refused so a write can only land by the deposed node's own hand.
    let mut queued = Vec::new();
    for n in 0..8 {
        let (c, base, root) = (c.clone(), frozen.base(), root.clone());
        queued.push(tokio::spawn(async move {
            let resp = c
                .put(format!("{base}/secret/data/frozen{n}"))
                .header("X-Vault-Token", &root)
                .header("X-Vault-No-Request-Forwarding", "true")
                .body(json!({"data": {"n": n}}).to_string())
                .send()
                .await;
            resp.map(|r| r.status().as_u16()).unwrap_or(0)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    frozen.signal("-CONT");
    let mut statuses = Vec::new();
    for q in queued {
        statuses.push(q.await.unwrap());
    }
    for n in 8..16 {
        let resp = c
            .put(format!("{}/secret/data/frozen{n}", frozen.base()))
            .header("X-Vault-Token", &root)
            .header("X-Vault-No-Request-Forwarding", "true")
            .body(json!({"data": {"n": n}}).to_string())
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| !(200..300).contains(s)),
        "the deposed node acknowledged writes: {statuses:?}"
    );
    for n in (0..16)
        .map(|n| n.to_string())
        .chain(["-forwarded".to_owned()])
    {
        let (st, _) = call(
            &c,
            Method::GET,
            format!("{}/secret/data/frozen{n}", other.base()),
            Some(&root),
            Value::Null,
        )
        .await;
        assert_eq!(st, 404, "write frozen{n} landed");
    }
    assert_eq!(other.health(&c).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_truncating_the_lock_table_demotes_within_one_renewal() {
    let url = database_url();
    let c = reqwest::Client::new();
    let (a, b, _key, _root, table) = cluster(&c, &url).await;
    let nodes = [&a, &b];
    let i = active_of(&c, &nodes, Duration::from_secs(5)).await;
    let active = nodes[i];
    let leader = |n: &Node| {
        let c = c.clone();
        let base = n.base();
        async move {
            call(
                &c,
                Method::GET,
                format!("{base}/sys/leader"),
                None,
                Value::Null,
            )
            .await
            .1
        }
    };
    let before = leader(active).await;
    assert_eq!(before["is_self"], json!(true));
    let db = sql(&url).await;
    db.batch_execute(&format!("TRUNCATE \"{table}_locks\""))
        .await
        .unwrap();
    let truncated = Instant::now();
    // The holder's next renewal finds no row: it stops being active (a new term, on either
    // node, has a new active_time).
    wait_for(RENEW + Duration::from_secs(1), "demotion", || async {
        leader(active).await["active_time"] != before["active_time"]
    })
    .await;
    eprintln!(
        "TRUNCATE of the lock table -> old term ended after {:?}",
        truncated.elapsed()
    );
    active_of(&c, &nodes, Duration::from_secs(5)).await;
}

/// Storage level: a write under an identity that no longer holds the lock commits nothing, and
/// a renewal never re-creates a deleted lock row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_fence_refuses_writes_of_a_deposed_holder() {
    let url = database_url();
    let table = fresh_table();
    let ha_table = format!("{table}_locks");
    let open = || async {
        PostgresqlBackend::open(&PostgresqlOptions {
            connection_url: url.clone(),
            table: table.clone(),
            max_parallel: 4,
            create_table: true,
            ha_table: Some(ha_table.clone()),
        })
        .await
        .unwrap()
    };
    let (a, b) = (open().await, open().await);
    let timings = LockTimings {
        ttl: TTL,
        renew: RENEW,
        retry: Duration::from_millis(200),
    };
    let (lock_a, lock_b): (PgLock, PgLock) = (a.lock(timings).unwrap(), b.lock(timings).unwrap());
    // Without the lock nothing is written.
    assert!(a.put("k", b"0".to_vec()).await.is_err());
    assert!(lock_a.try_acquire("id-a", "http://a").await.unwrap());
    assert!(!lock_b.try_acquire("id-b", "http://b").await.unwrap());
    a.fence().unwrap().hold(Some("id-a".to_owned()));
    b.fence().unwrap().hold(Some("id-b".to_owned()));
    a.put("k", b"1".to_vec()).await.unwrap();
    assert!(b.put("k", b"b".to_vec()).await.is_err());
    assert!(b.delete("k").await.is_err());
    // The lease runs out (as if a froze); b takes over; a's writes are refused from then on.
    let db = sql(&url).await;
    db.execute(
        &format!("UPDATE \"{ha_table}\" SET valid_until = now() - interval '1 second'"),
        &[],
    )
    .await
    .unwrap();
    assert!(a.put("k", b"2".to_vec()).await.is_err());
    assert!(lock_b.try_acquire("id-b", "http://b").await.unwrap());
    // (b's refused writes above made it forget its identity, as the HA loop would on demotion.)
    assert!(b.fence().unwrap().identity().is_none());
    b.fence().unwrap().hold(Some("id-b".to_owned()));
    assert!(!lock_a.renew("id-a").await.unwrap());
    a.fence().unwrap().hold(Some("id-a".to_owned()));
    for _ in 0..20 {
        assert!(a.put("k", b"3".to_vec()).await.is_err());
        assert!(a.delete("k").await.is_err());
        assert!(
            a.write_batch(vec![coffer::physical::WriteOp::Put(
                "k".into(),
                b"4".to_vec()
            )])
            .await
            .is_err()
        );
    }
    assert_eq!(b.get("k").await.unwrap(), Some(b"1".to_vec()));
    b.put("k", b"5".to_vec()).await.unwrap();
    // A deleted row is never re-created by a renewal.
    db.batch_execute(&format!("TRUNCATE \"{ha_table}\""))
        .await
        .unwrap();
    assert!(!lock_b.renew("id-b").await.unwrap());
    assert!(b.put("k", b"6".to_vec()).await.is_err());
    assert_eq!(a.get("k").await.unwrap(), Some(b"5".to_vec()));
}

/// Restarting PostgreSQL under an active node: an active node again within the lease plus 2 s
/// after the database accepts connections. Runs its own throwaway cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_postgresql_restart_recovers_within_the_lease() {
    let Some(pg) = ThrowawayPg::start(&[]) else {
        panic!("no PostgreSQL binaries under /usr/lib/postgresql/*/bin for the restart test");
    };
    let url = pg.url();
    let c = reqwest::Client::new();
    let (a, b, _key, root, _) = cluster(&c, &url).await;
    let nodes = [&a, &b];
    active_of(&c, &nodes, Duration::from_secs(5)).await;
    pg.restart();
    let up = Instant::now();
    let took = wait_for(
        TTL + Duration::from_secs(2),
        "an active node after restart",
        || some_node_writes(&c, &nodes, &root, "after-restart", json!({"r": 1})),
    )
    .await;
    eprintln!("PostgreSQL restart -> acknowledged write {took:?} after it accepted connections");
    assert!(up.elapsed() <= TTL + Duration::from_secs(2));

    // Down for longer than the lease: the active node demotes itself (it cannot renew), and once
    // the database is back a node is active again within the lease plus 2 s.
    assert!(pg.ctl("stop"));
    let demoted = wait_for(
        TTL + Duration::from_secs(2),
        "demotion while PostgreSQL is down",
        || async {
            let mut any_active = false;
            for n in nodes {
                any_active |= n.health(&c).await == 200;
            }
            !any_active
        },
    )
    .await;
    eprintln!("PostgreSQL stopped -> no active node after {demoted:?}");
    let (st, body) = put(&c, &a.base(), &root, "while-down", json!({"d": 1})).await;
    assert_eq!(st, 503, "{body}");
    assert!(pg.ctl("start"));
    let up = Instant::now();
    let took = wait_for(
        TTL + Duration::from_secs(2),
        "an active node after start",
        || some_node_writes(&c, &nodes, &root, "after-start", json!({"r": 2})),
    )
    .await;
    eprintln!("PostgreSQL down past the lease, started -> acknowledged write after {took:?}");
    assert!(up.elapsed() <= TTL + Duration::from_secs(2));
}

/// Whether one of `nodes` acknowledged a kv write of `key`.
async fn some_node_writes(
    c: &reqwest::Client,
    nodes: &[&Node],
    root: &str,
    key: &str,
    v: Value,
) -> bool {
    for n in nodes {
        if put(c, &n.base(), root, key, v.clone()).await.0 == 200 {
            return true;
        }
    }
    false
}

/// A PostgreSQL cluster of this test's own (initdb + pg_ctl, as `nobody` when root).
struct ThrowawayPg {
    bin: std::path::PathBuf,
    dir: std::path::PathBuf,
    port: u16,
    as_nobody: bool,
    settings: String,
}

impl ThrowawayPg {
    fn start(settings: &[&str]) -> Option<ThrowawayPg> {
        Self::start_with(&[], settings)
    }

    /// Starts a cluster; `files` are written into its directory first (owned by the server's
    /// user, mode 0600) and `settings` passed as `-c` options.
    fn start_with(files: &[(&str, String)], settings: &[&str]) -> Option<ThrowawayPg> {
        let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .collect();
        bins.sort();
        let bin = bins.pop()?;
        let dir = std::env::temp_dir().join(format!("coffer-ha-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_nobody = rustix::process::geteuid().is_root();
        if as_nobody {
            Command::new("chown")
                .args(["nobody", dir.to_str().unwrap()])
                .status()
                .unwrap();
        }
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            if as_nobody {
                Command::new("chown")
                    .args(["nobody", path.to_str().unwrap()])
                    .status()
                    .unwrap();
            }
        }
        let settings = settings
            .iter()
            .map(|s| format!(" -c {}", s.replace("$DIR", dir.to_str().unwrap())))
            .collect();
        let pg = ThrowawayPg {
            bin,
            dir,
            port: free_port(),
            as_nobody,
            settings,
        };
        let data = pg.dir.join("data");
        assert!(pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "coffer",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync"
            ]
        ));
        assert!(pg.ctl("start"));
        Some(pg)
    }

    fn run(&self, tool: &str, args: &[&str]) -> bool {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn ctl(&self, action: &str) -> bool {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let opts = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1{}",
            self.dir.display(),
            self.port,
            self.settings
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "-o",
                &opts,
                action,
            ],
        )
    }

    /// `pg_ctl stop -m immediate`: the database crashes (no checkpoint; recovery replays the
    /// WAL at the next start).
    fn crash(&self) {
        let data = self.dir.join("data");
        assert!(self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop"
            ]
        ));
    }

    /// `pg_ctl restart -w`: returns once the server accepts connections again.
    fn restart(&self) {
        assert!(self.ctl("restart"));
    }

    fn url_with(&self, host: &str, query: &str) -> String {
        format!("postgres://coffer@{host}:{}/postgres?{query}", self.port)
    }

    fn url(&self) -> String {
        format!(
            "postgres://coffer@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        self.ctl("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// TLS to PostgreSQL (rustls): each `sslmode` against a server with a certificate for
/// `localhost` only, signed by our own CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_tls_modes_verify_as_libpq_does() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let Some(pg) = ThrowawayPg::start_with(
        &[
            ("server.crt", server_cert.pem()),
            ("server.key", server_key.serialize_pem()),
        ],
        &[
            "ssl=on",
            "ssl_cert_file=$DIR/server.crt",
            "ssl_key_file=$DIR/server.key",
        ],
    ) else {
        panic!("no PostgreSQL binaries under /usr/lib/postgresql/*/bin for the TLS test");
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    let wrong = dir.path().join("other.pem");
    std::fs::write(&wrong, other.cert.pem()).unwrap();
    let (ca, wrong) = (ca.to_str().unwrap(), wrong.to_str().unwrap());
    let cases = [
        ("localhost", "sslmode=require".to_owned(), true),
        (
            "localhost",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            true,
        ),
        (
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            false,
        ),
        (
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={ca}"),
            true,
        ),
        (
            "localhost",
            format!("sslmode=verify-ca&sslrootcert={wrong}"),
            false,
        ),
        (
            "localhost",
            format!("sslmode=require&sslrootcert={wrong}"),
            false,
        ),
        ("localhost", "sslmode=verify-full".to_owned(), false),
    ];
    for (host, query, ok) in cases {
        let opened = PostgresqlBackend::open(&PostgresqlOptions {
            connection_url: pg.url_with(host, &query),
            table: fresh_table(),
            max_parallel: 2,
            create_table: true,
            ha_table: Some(format!("{}_locks", fresh_table())),
        })
        .await;
        match opened {
            Ok(b) => {
                assert!(ok, "{host} {query}: connected");
                b.put("k", b"v".to_vec()).await.unwrap_err();
                let lock = b.lock(LockTimings::default()).unwrap();
                assert!(lock.try_acquire("id", "http://x").await.unwrap(), "{query}");
                b.fence().unwrap().hold(Some("id".into()));
                b.put("k", b"v".to_vec()).await.unwrap();
                assert_eq!(b.get("k").await.unwrap(), Some(b"v".to_vec()));
            }
            Err(e) => assert!(!ok, "{host} {query}: {e}"),
        }
    }
    // The server really speaks TLS to us: pg_stat_ssl says so.
    let b = PostgresqlBackend::open(&PostgresqlOptions {
        connection_url: pg.url_with(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        table: fresh_table(),
        max_parallel: 1,
        create_table: true,
        ha_table: None,
    })
    .await
    .unwrap();
    b.get("nothing").await.unwrap();
    let plain = sql(&pg.url_with("127.0.0.1", "sslmode=disable")).await;
    let row = plain
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl",
            &[],
        )
        .await
        .unwrap();
    let tls_sessions: i64 = row.get(0);
    assert!(tls_sessions >= 1, "no TLS session on the server");
    drop(b);
}

/// Standbys forward over HTTPS to a leader whose certificate is not from a public CA: the nodes'
/// shared self-signed certificate (their own listener certificate) is trusted for forwarding.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_forwarding_over_tls() {
    let url = database_url();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let (pem, key) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let c = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let table = fresh_table();
    let a = Node::start_tls(&url, &table, Some((&pem, &key)));
    let b = Node::start_tls(&url, &table, Some((&pem, &key)));
    let https = |n: &Node| format!("https://127.0.0.1:{}/v1", n.port);
    let (st, init) = call(
        &c,
        Method::PUT,
        format!("{}/sys/init", https(&a)),
        None,
        json!({"secret_shares": 1, "secret_threshold": 1}),
    )
    .await;
    assert_eq!(st, 200, "{init}");
    let key0 = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    for n in [&a, &b] {
        let (st, body) = call(
            &c,
            Method::PUT,
            format!("{}/sys/unseal", https(n)),
            None,
            json!({ "key": key0 }),
        )
        .await;
        assert_eq!(st, 200, "{body}");
    }
    let active = std::sync::Mutex::new(None);
    wait_for(Duration::from_secs(10), "an active node", || async {
        for n in [&a, &b] {
            let (st, _) = call(
                &c,
                Method::GET,
                format!("{}/sys/health", https(n)),
                None,
                Value::Null,
            )
            .await;
            if st == 200 {
                *active.lock().unwrap() = Some(n.port);
                return true;
            }
        }
        false
    })
    .await;
    let active = active.into_inner().unwrap().unwrap();
    let standby = if a.port == active { &b } else { &a };
    // The standby learns the new leader at its next look at the lock (it answers 503 `no
    // active node` until then).
    wait_for(
        Duration::from_secs(10),
        "the standby to know the leader",
        || async {
            let (_, body) = call(
                &c,
                Method::GET,
                format!("{}/sys/leader", https(standby)),
                None,
                Value::Null,
            )
            .await;
            body["leader_address"]
                .as_str()
                .is_some_and(|a| a.ends_with(&active.to_string()))
        },
    )
    .await;
    let (st, body) = call(
        &c,
        Method::GET,
        format!("{}/sys/mounts", https(standby)),
        Some(&root),
        Value::Null,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body["data"]["sys/"].is_object(), "{body}");
}

/// Fencing needs the unique index on `ha_identity`: with `skip_create_table` and no index, the
/// engine refuses to start instead of fencing unsoundly.
#[tokio::test]
async fn ha_without_the_fencing_index_refuses_to_start() {
    let url = database_url();
    let table = fresh_table();
    let ha_table = format!("{table}_locks");
    let db = sql(&url).await;
    db.batch_execute(&format!(
        "CREATE TABLE \"{table}\" (parent_path TEXT COLLATE \"C\" NOT NULL, path TEXT COLLATE \"C\", \
         key TEXT COLLATE \"C\", value BYTEA, PRIMARY KEY (path, key)); \
         CREATE TABLE \"{ha_table}\" (ha_key TEXT COLLATE \"C\" NOT NULL PRIMARY KEY, \
         ha_identity TEXT COLLATE \"C\" NOT NULL, ha_value TEXT COLLATE \"C\", \
         valid_until TIMESTAMP WITH TIME ZONE NOT NULL);"
    ))
    .await
    .unwrap();
    let options = PostgresqlOptions {
        connection_url: url.clone(),
        table: table.clone(),
        max_parallel: 2,
        create_table: false,
        ha_table: Some(ha_table.clone()),
    };
    let err = PostgresqlBackend::open(&options).await.unwrap_err();
    assert!(err.contains("unique index"), "{err}");
    db.batch_execute(&format!(
        "CREATE UNIQUE INDEX \"{ha_table}_identity_idx\" ON \"{ha_table}\" (ha_identity)"
    ))
    .await
    .unwrap();
    PostgresqlBackend::open(&options).await.unwrap();
}

/// Without HA, one node on PostgreSQL: the database crashes (`pg_ctl stop -m immediate`) under a
/// stream of writes and starts again; the node reconnects by itself and every write it had
/// acknowledged is there, with its value.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_single_node_keeps_acknowledged_writes_across_a_database_crash() {
    let Some(pg) = ThrowawayPg::start(&[]) else {
        panic!("no PostgreSQL binaries under /usr/lib/postgresql/*/bin for the crash test");
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("single.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"postgresql\" {{\n  table = \"{}\"\n  max_parallel = \"16\"\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n\
             api_addr = \"http://127.0.0.1:{port}\"\n",
            fresh_table()
        ),
    )
    .unwrap();
    let mut node = Node {
        child: None,
        port,
        extra_port: 0,
        config,
        url: pg.url(),
        _dir: dir,
    };
    node.spawn();
    let c = reqwest::Client::new();
    let (st, init) = call(
        &c,
        Method::PUT,
        format!("{}/sys/init", node.base()),
        None,
        json!({"secret_shares": 1, "secret_threshold": 1}),
    )
    .await;
    assert_eq!(st, 200, "{init}");
    let root = init["root_token"].as_str().unwrap().to_owned();
    node.unseal(&c, init["keys"][0].as_str().unwrap()).await;
    let (st, body) = call(
        &c,
        Method::POST,
        format!("{}/sys/mounts/secret", node.base()),
        Some(&root),
        json!({"type": "kv-v2"}),
    )
    .await;
    assert_eq!(st, 204, "{body}");

    // Eight writers, each its own keys; every acknowledged key is recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(String, u64)>::new()));
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..8u64 {
        let (c, base, root) = (c.clone(), node.base(), root.clone());
        let (stop, acked, refused) = (stop.clone(), acked.clone(), refused.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("w{w}/k{i}");
                let v = w * 1_000_000 + i;
                if put(&c, &base, &root, &key, json!({ "v": v })).await.0 == 200 {
                    acked.lock().unwrap().push((key, v));
                } else {
                    refused.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                i += 1;
            }
        }));
    }
    let count = || acked.lock().unwrap().len();
    wait_for(
        Duration::from_secs(20),
        "200 acknowledged writes",
        || async { count() >= 200 },
    )
    .await;
    pg.crash();
    let at_crash = count();
    wait_for(
        Duration::from_secs(10),
        "writes refused while down",
        || async { refused.load(Ordering::SeqCst) >= 8 },
    )
    .await;
    assert!(pg.ctl("start"));
    wait_for(
        Duration::from_secs(20),
        "writes acknowledged again after the database came back",
        || async { count() >= at_crash + 100 },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let mut lost = Vec::new();
    for (key, v) in &acked {
        let (st, body) = call(
            &c,
            Method::GET,
            format!("{}/secret/data/{key}", node.base()),
            Some(&root),
            Value::Null,
        )
        .await;
        if st != 200 || body["data"]["data"]["v"] != json!(v) {
            lost.push(key.clone());
        }
    }
    eprintln!(
        "{} writes acknowledged ({at_crash} before the crash), {} refused while down, {} lost",
        acked.len(),
        refused.load(Ordering::SeqCst),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    node.stop();
}

/// A device declared in both nodes' config files: the first active node enables it; the node
/// that takes over finds it as declared (same salt, nothing changed) and audits to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_declared_audit_device_follows_the_active_node() {
    let url = database_url();
    let c = reqwest::Client::new();
    let logs = tempfile::tempdir().unwrap();
    let file = logs.path().join("audit.log");
    let extra = format!(
        "audit \"file\" \"shared\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
        file.display()
    );
    let (a, b, _key, root, _table) = cluster_with(&c, &url, &extra).await;
    let i = active_of(&c, &[&a, &b], Duration::from_secs(10)).await;
    let (active, standby) = if i == 0 { (&a, &b) } else { (&b, &a) };
    let hash = async |node: &Node| -> Value {
        let (st, body) = call(
            &c,
            Method::PUT,
            format!("{}/sys/audit-hash/shared", node.base()),
            Some(&root),
            json!({"input": "v"}),
        )
        .await;
        assert_eq!(st, 200, "{body}");
        body["data"]["hash"].clone()
    };
    let before = hash(active).await;
    let (st, _) = put(&c, &active.base(), &root, "before", json!({"v": "1"})).await;
    assert_eq!(st, 200);
    crate::audit_devices::wait_for(&file, "secret/data/before", 2).await;

    step_down(&c, active, &root).await;
    wait_for(
        Duration::from_secs(5),
        "the other node to take over",
        || async { standby.health(&c).await == 200 },
    )
    .await;
    let (st, _) = put(&c, &standby.base(), &root, "after", json!({"v": "2"})).await;
    assert_eq!(st, 200);
    crate::audit_devices::wait_for(&file, "secret/data/after", 2).await;
    assert_eq!(
        hash(standby).await,
        before,
        "the same device, not a new one"
    );
}

/// hashicorp/vault#2083: a node that cannot open any audit device must not become the active
/// node (it would refuse every request, fail-closed): its step-up fails and the node that can
/// write its audit log keeps or takes the lock. The device's file path is relative, so each node
/// resolves it in its own directory; on the standby `audit` is a plain file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_a_node_that_cannot_audit_does_not_take_over() {
    let url = database_url();
    let c = reqwest::Client::new();
    let (a, b, _key, root, _table) =
        cluster_with(&c, &url, "unsafe_allow_api_audit_creation = true\n").await;
    let i = active_of(&c, &[&a, &b], Duration::from_secs(10)).await;
    let (active, standby) = if i == 0 { (&a, &b) } else { (&b, &a) };
    std::fs::write(standby._dir.path().join("audit"), b"not a directory").unwrap();
    let (st, body) = call(
        &c,
        Method::PUT,
        format!("{}/sys/audit/file", active.base()),
        Some(&root),
        json!({"type": "file", "options": {"file_path": "audit/audit.log"}}),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let (st, _) = put(&c, &active.base(), &root, "before", json!({"v": "1"})).await;
    assert_eq!(st, 200);

    step_down(&c, active, &root).await;
    // The standby tries, fails its step-up, and the node that can audit takes the lock back:
    // writes (through either address) succeed again, never answered by a node that refuses
    // them all.
    wait_for(
        Duration::from_secs(15),
        "a write after the step-down",
        || async {
            let (st, body) = put(&c, &standby.base(), &root, "after", json!({"v": "2"})).await;
            assert!(st == 200 || st == 503, "{st} {body}");
            st == 200
        },
    )
    .await;
    assert_eq!(active.health(&c).await, 200);
    assert_ne!(standby.health(&c).await, 200);
    let failed = metrics_text(&c, standby)
        .await
        .lines()
        .find_map(|l| l.strip_prefix("vault_core_leadership_setup_failed_count "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(failed >= 1.0, "{failed}");
}

/// The client address a standby signs survives a rekey on the active. The signing key came
/// from the root key, which a rekey replaces while the standby keeps the old one in memory:
/// after it, the active fell back to the standby's own address, so a token bound to the
/// client's address was refused through the standby and one bound to the standby's accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_forwarded_client_address_survives_a_rekey() {
    let url = database_url();
    let c = reqwest::Client::new();
    let (a, b, key, root, _) = cluster(&c, &url).await;
    let nodes = [&a, &b];
    let i = active_of(&c, &nodes, Duration::from_secs(5)).await;
    let (active, standby) = (nodes[i], nodes[1 - i]);
    let (st, body) = call(
        &c,
        Method::PUT,
        format!("{}/sys/rekey/init", active.base()),
        Some(&root),
        json!({"secret_shares": 1, "secret_threshold": 1}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    let (st, body) = call(
        &c,
        Method::PUT,
        format!("{}/sys/rekey/update", active.base()),
        Some(&root),
        json!({"key": key, "nonce": nonce}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["complete"], true, "{body}");
    // The client calls the standby from 127.0.0.2; the standby reaches the active from
    // 127.0.0.1.
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    for (i, (cidr, want)) in [("127.0.0.2/32", 200), ("127.0.0.1/32", 403)]
        .into_iter()
        .enumerate()
    {
        let token = bound_token(&c, active, &root, &format!("rekeyed{i}"), cidr).await;
        let st = client
            .get(format!("{}/auth/token/lookup-self", standby.base()))
            .header("X-Vault-Token", &token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(
            st, want,
            "token bound to {cidr}, called from 127.0.0.2 via the standby"
        );
    }
}

/// A step-up that takes longer than the lease keeps the lock: the lease is renewed while the
/// node steps up. Here the step-up opens an audit socket whose peer never accepts (given up
/// after its 2 s `write_timeout` + 0.5 s, against the tests' 2 s lease) beside a file device
/// that opens. Before, renewal began only once the step-up was done; by then the lease had
/// run out and the node stepped down at once, every time, on both nodes: no node served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_a_step_up_longer_than_the_lease_keeps_the_lock() {
    let url = database_url();
    let c = reqwest::Client::new();
    let (a, b, _key, root, _table) =
        cluster_with(&c, &url, "unsafe_allow_api_audit_creation = true\n").await;
    let i = active_of(&c, &[&a, &b], Duration::from_secs(10)).await;
    let active = [&a, &b][i];
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("peer.sock");
    let peer = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        for conn in peer.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut conn, &mut std::io::sink());
            });
        }
    });
    for (path, options) in [
        ("file", json!({"file_path": "a.log"})),
        (
            "slow",
            json!({"address": sock, "socket_type": "unix", "write_timeout": "2s"}),
        ),
    ] {
        let kind = if path == "file" { "file" } else { "socket" };
        let (st, body) = call(
            &c,
            Method::PUT,
            format!("{}/sys/audit/{path}", active.base()),
            Some(&root),
            json!({"type": kind, "options": options}),
        )
        .await;
        assert_eq!(st, 204, "{body}");
    }
    std::fs::remove_file(&sock).unwrap();
    let _stuck = crate::audit_devices::stuck_unix_listener(&sock);

    step_down(&c, active, &root).await;
    let took = wait_for(
        Duration::from_secs(30),
        "a write after the step-down",
        || async {
            let mut ok = false;
            for node in [&a, &b] {
                let (st, _) = put(&c, &node.base(), &root, "after", json!({"v": "2"})).await;
                ok |= st == 200;
            }
            ok
        },
    )
    .await;
    // The node that stepped up stays active: its lease holds past several renewals.
    let now_active = active_of(&c, &[&a, &b], Duration::from_secs(5)).await;
    let node = [&a, &b][now_active];
    for _ in 0..4 {
        let (st, body) = put(&c, &node.base(), &root, "still", json!({"v": "3"})).await;
        assert_eq!(st, 200, "{body}");
        tokio::time::sleep(RENEW).await;
    }
    assert!(
        took >= Duration::from_secs(2),
        "{took:?}: the step-up was not slow"
    );
}

/// A standby that briefly cannot see the lock (its connections to PostgreSQL cut, again and
/// again) still relays the active's answer to a request it forwarded. Before, it answered 503
/// as soon as its own view of the leader went blank, while the active went on to commit the
/// write: a client retrying that 503 (Vault's Go client does) applied it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_a_standby_that_loses_sight_of_the_lock_still_relays_the_answer() {
    let url = database_url();
    let c = reqwest::Client::new();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let sep = if url.contains('?') { '&' } else { '?' };
    let (ua, ub) = (
        format!("{url}{sep}application_name=a-{tag}"),
        format!("{url}{sep}application_name=b-{tag}"),
    );
    let (a, b, _key, root, table) = cluster_of(&c, [&ua, &ub], "").await;
    let i = active_of(&c, &[&a, &b], Duration::from_secs(10)).await;
    let (active, standby, standby_app) = if i == 0 {
        (&a, &b, format!("b-{tag}"))
    } else {
        (&b, &a, format!("a-{tag}"))
    };
    let db = sql(&url).await;
    // Every write waits while the test holds the data table.
    db.batch_execute(&format!("BEGIN; LOCK TABLE \"{table}\" IN SHARE MODE"))
        .await
        .unwrap();
    let write = tokio::spawn({
        let (c, base, root) = (c.clone(), standby.base(), root.clone());
        async move { put(&c, &base, &root, "held", json!({"v": "1"})).await }
    });
    for _ in 0..15 {
        db.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&standby_app],
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !write.is_finished(),
        "answered while the write could not commit"
    );
    db.batch_execute("COMMIT").await.unwrap();
    let (st, body) = write.await.unwrap();
    assert_eq!(st, 200, "{body}");
    let (st, body) = call(
        &c,
        Method::GET,
        format!("{}/secret/data/held", active.base()),
        Some(&root),
        json!(null),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["data"]["v"], "1");
}

/// `sys/ha-status` (`vault operator members`): asked of either node, the active answers with
/// `sys/metrics` is never forwarded: every node answers its own (before, a standby relayed a
/// scrape and reported the active node's numbers as its own, hashicorp/vault#6802; then it
/// refused it as Vault's does). With authentication the standby checks the token and its
/// policies as stored now (nothing cached, nothing written) and audits the scrape to its own
/// devices, fail-closed; an unauthenticated listener serves it without either.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_every_node_serves_its_own_metrics_checked_and_audited() {
    let url = database_url();
    let c = reqwest::Client::new();
    let extra = "listener \"tcp\" {\n  address = \"127.0.0.1:{free_port}\"\n  tls_disable = true\n}\nunsafe_allow_api_audit_creation = true\n";
    let (a, b, _key, root, _) = cluster_with(&c, &url, extra).await;
    let i = active_of(&c, &[&a, &b], Duration::from_secs(5)).await;
    let (active, standby) = if i == 0 { (&a, &b) } else { (&b, &a) };
    let admin = |method: Method, path: &str, body: Value| {
        let (c, root, base) = (c.clone(), root.clone(), active.base());
        let path = path.to_owned();
        async move { call(&c, method, format!("{base}/{path}"), Some(&root), body).await }
    };
    let (st, body) = admin(
        Method::PUT,
        "sys/policies/acl/scrape",
        json!({"policy": "path \"sys/metrics\" { capabilities = [\"read\"] }"}),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let token = |policies: Value, uses: u64| {
        let f = admin(
            Method::POST,
            "auth/token/create",
            json!({"policies": policies, "num_uses": uses}),
        );
        async move {
            let (st, body) = f.await;
            assert_eq!(st, 200, "{body}");
            body["auth"]["client_token"].as_str().unwrap().to_owned()
        }
    };
    let scraper = token(json!(["scrape"]), 0).await;
    let plain = token(json!(["default"]), 0).await;
    let limited = token(json!(["scrape"]), 5).await;
    // Each node resolves the relative path in its own directory: its own log.
    let (st, body) = admin(
        Method::PUT,
        "sys/audit/file",
        json!({"type": "file", "options": {"file_path": "audit/audit.log"}}),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let standby_log = standby._dir.path().join("audit/audit.log");
    let (st, body) = admin(
        Method::PUT,
        "sys/config/auditing/request-headers/X-Scrape-Job",
        json!({"hmac": false}),
    )
    .await;
    assert_eq!(st, 204, "{body}");

    let scrape = |node: &Node, method: Method, token: Option<&str>| {
        let (c, port) = (c.clone(), node.extra_port);
        let token = token.map(str::to_owned);
        async move {
            let mut r = c.request(
                method,
                format!("http://127.0.0.1:{port}/v1/sys/metrics?format=prometheus"),
            );
            if let Some(t) = token {
                r = r.header("X-Vault-Token", t);
            }
            let r = r.header("X-Scrape-Job", "prom").send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let errors = |body: &str| serde_json::from_str::<Value>(body).unwrap()["errors"].clone();
    let active_gauge = |text: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with("vault_core_active{"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    for t in [&root, &scraper] {
        let (st, body) = scrape(standby, Method::GET, Some(t)).await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(active_gauge(&body), Some(0.0), "the standby's own: {body}");
    }
    let (st, body) = scrape(active, Method::GET, Some(&scraper)).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(active_gauge(&body), Some(1.0), "{body}");
    // Refused as the active refuses them.
    for t in [Some(plain.as_str()), Some("s.bogus"), None] {
        let (st, body) = scrape(standby, Method::GET, t).await;
        assert_eq!(st, 403, "{t:?}: {body}");
        let (_, on_active) = scrape(active, Method::GET, t).await;
        assert_eq!(errors(&body), errors(&on_active), "{t:?}");
    }
    assert_eq!(
        errors(&scrape(standby, Method::GET, Some(&plain)).await.1),
        json!(["1 error occurred:\n\t* permission denied\n\n"])
    );
    // A use would have to be charged: a write the standby does not make.
    let (st, body) = scrape(standby, Method::GET, Some(&limited)).await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(errors(&body), json!(["cannot forward local-only request"]));
    let (st, body) = scrape(standby, Method::PUT, Some(&root)).await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(errors(&body), json!(["cannot forward local-only request"]));

    // The standby's own log: each scrape's request and response entries, with the token
    // HMAC'd under the device's salt (the same as the active's), and the refusals.
    let text = crate::audit_devices::wait_for(&standby_log, "sys/metrics", 14).await;
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["request"]["path"] == "sys/metrics")
        .collect();
    assert_eq!(entries.len(), 14, "{text}");
    let (st, body) = admin(
        Method::PUT,
        "sys/audit-hash/file",
        json!({"input": scraper}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let scraper_hash = body["data"]["hash"].clone();
    let of = |hash: &Value| -> Vec<&Value> {
        entries
            .iter()
            .filter(|e| &e["request"]["client_token"] == hash || &e["auth"]["client_token"] == hash)
            .collect()
    };
    let mine = of(&scraper_hash);
    assert_eq!(mine.len(), 2, "{entries:?}");
    assert_eq!(mine[0]["type"], "request");
    assert_eq!(mine[1]["type"], "response");
    assert_eq!(mine[0]["request"]["id"], mine[1]["request"]["id"]);
    for e in &mine {
        assert_eq!(e["auth"]["policies"], json!(["default", "scrape"]), "{e}");
        assert_eq!(e["request"]["mount_type"], "system", "{e}");
        assert_eq!(e["request"]["operation"], "read", "{e}");
        assert_eq!(
            e["request"]["headers"]["x-scrape-job"],
            json!(["prom"]),
            "{e}"
        );
        assert!(!e.to_string().contains(&scraper), "plaintext token in {e}");
    }
    assert_eq!(mine[1]["response"]["mount_type"], "system");
    // The same entries as the active node writes for the same scrape, but for what differs
    // by nature (ids, times, the port, the numbers themselves).
    let active_log = std::fs::read_to_string(active._dir.path().join("audit/audit.log")).unwrap();
    let on_active: Vec<Value> = active_log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| {
            e["request"]["path"] == "sys/metrics" && e["auth"]["client_token"] == scraper_hash
        })
        .collect();
    assert_eq!(on_active.len(), 2, "{active_log}");
    let comparable = |e: &Value| {
        let mut e = e.clone();
        e["time"] = Value::Null;
        e["request"]["id"] = Value::Null;
        e["request"]["remote_port"] = Value::Null;
        if e["response"]["data"].is_object() {
            e["response"]["data"]["http_raw_body"] = Value::Null;
        }
        e
    };
    for (here, there) in mine.iter().zip(&on_active) {
        assert_eq!(comparable(here), comparable(there));
    }
    let denied = entries
        .iter()
        .filter(|e| {
            e["type"] == "response"
                && e["error"]
                    .as_str()
                    .is_some_and(|t| t.contains("permission denied"))
        })
        .count();
    assert_eq!(denied, 4, "{entries:?}");

    // SIGHUP reopens the standby's devices too (logrotate): every later scrape lands in the
    // new file, and none is lost or written twice.
    let rotated = standby_log.with_extension("log.1");
    std::fs::rename(&standby_log, &rotated).unwrap();
    standby.signal("-HUP");
    let scrapes = std::sync::atomic::AtomicUsize::new(0);
    wait_for(
        Duration::from_secs(5),
        "a scrape in the reopened log",
        || async {
            let (st, body) = scrape(standby, Method::GET, Some(&root)).await;
            assert_eq!(st, 200, "{body}");
            scrapes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::fs::read_to_string(&standby_log).is_ok_and(|t| t.lines().count() >= 2)
        },
    )
    .await;
    let scrapes = scrapes.load(std::sync::atomic::Ordering::SeqCst);
    let count = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"sys/metrics\""))
            .count()
    };
    crate::audit_devices::wait_for(&standby_log, "sys/metrics", 2).await;
    assert_eq!(count(&rotated) + count(&standby_log), 14 + 2 * scrapes);

    // Nothing cached: a token revoked on the active is refused by the standby at once.
    let (st, body) = admin(Method::POST, "auth/token/revoke", json!({"token": scraper})).await;
    assert_eq!(st, 204, "{body}");
    let (st, body) = scrape(standby, Method::GET, Some(&scraper)).await;
    assert_eq!(st, 403, "{body}");

    // A scrape the HTTP layer refuses (a bad X-Vault-Wrap-TTL) is audited by the standby too.
    let r = c
        .get(format!(
            "http://127.0.0.1:{}/v1/sys/metrics",
            standby.extra_port
        ))
        .header("X-Vault-Token", &root)
        .header("X-Vault-Wrap-TTL", "-5s")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let text =
        crate::audit_devices::wait_for(&standby_log, "requested wrap ttl cannot be negative", 2)
            .await;
    let refused: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| {
            e["error"]
                .as_str()
                .is_some_and(|t| t.contains("requested wrap ttl cannot be negative"))
        })
        .collect();
    assert_eq!(refused.len(), 2, "{text}");
    assert_eq!(refused[0]["type"], "request");
    assert_eq!(refused[1]["type"], "response");
    assert_eq!(refused[0]["request"]["path"], "sys/metrics");

    // Refused in the active node's order (no permission before the use limit), and a listing
    // is about this node too.
    let limited_plain = token(json!(["default"]), 5).await;
    let (st, body) = scrape(standby, Method::GET, Some(&limited_plain)).await;
    assert_eq!(st, 403, "{body}");
    let r = c
        .get(format!(
            "http://127.0.0.1:{}/v1/sys/metrics?list=true",
            standby.extra_port
        ))
        .header("X-Vault-Token", &root)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // After a key rotation on the active node, what it writes is under a new term: the
    // standby reads it (a token made since).
    let (st, body) = admin(Method::PUT, "sys/rotate", json!(null)).await;
    assert_eq!(st, 204, "{body}");
    let fresh = token(json!(["scrape"]), 0).await;
    let (st, body) = scrape(standby, Method::GET, Some(&fresh)).await;
    assert_eq!(st, 200, "{body}");
    // No token in clear in the standby's logs.
    let logged = std::fs::read_to_string(&rotated).unwrap()
        + &std::fs::read_to_string(&standby_log).unwrap();
    for t in [&root, &scraper, &plain, &limited, &limited_plain, &fresh] {
        assert!(
            !logged.contains(t.as_str()),
            "a token in clear in the audit log"
        );
    }

    // Fail-closed: a device the standby cannot open refuses its scrapes (500), while the
    // active, which can write its log, serves them.
    std::fs::write(standby._dir.path().join("audit2"), b"not a directory").unwrap();
    for (method, path, body) in [
        (Method::DELETE, "sys/audit/file", json!(null)),
        (
            Method::PUT,
            "sys/audit/file2",
            json!({"type": "file", "options": {"file_path": "audit2/audit.log"}}),
        ),
    ] {
        let (st, body) = admin(method, path, body).await;
        assert_eq!(st, 204, "{body}");
    }
    let (st, body) = scrape(standby, Method::GET, Some(&root)).await;
    assert_eq!(st, 500, "{body}");
    let (st, body) = scrape(active, Method::GET, Some(&root)).await;
    assert_eq!(st, 200, "{body}");

    // Each node's own numbers where no token is needed.
    assert_eq!(active_gauge(&metrics_text(&c, standby).await), Some(0.0));
    assert_eq!(active_gauge(&metrics_text(&c, active).await), Some(1.0));
}

/// A standby applies the stored rate-limit quotas to what it serves itself (a scrape, with or
/// without a token), following changes made on the active node within a renewal interval;
/// each node counts its own clients, as in Vault.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_a_standby_applies_the_rate_limit_quotas_to_its_scrapes() {
    let url = database_url();
    let c = reqwest::Client::new();
    let (a, b, _key, root, _) = cluster(&c, &url).await;
    let i = active_of(&c, &[&a, &b], Duration::from_secs(5)).await;
    let (active, standby) = if i == 0 { (&a, &b) } else { (&b, &a) };
    let scrape = |node: &Node, token: Option<&str>| {
        let (c, base) = (c.clone(), node.base());
        let token = token.map(str::to_owned);
        async move {
            let mut r = c.get(format!("{base}/sys/metrics?format=prometheus"));
            if let Some(t) = token {
                r = r.header("X-Vault-Token", t);
            }
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (st, body) = scrape(standby, Some(&root)).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = call(
        &c,
        Method::PUT,
        format!("{}/sys/quotas/rate-limit/scrapes", active.base()),
        Some(&root),
        json!({"path": "sys/metrics", "rate": 2, "interval": "1m"}),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    // Within a renewal interval (2 s here) the standby has it: at most two more scrapes pass.
    let passed = std::sync::atomic::AtomicUsize::new(0);
    wait_for(
        Duration::from_secs(6),
        "the standby's first 429",
        || async {
            let (st, body) = scrape(standby, Some(&root)).await;
            match st {
                200 => {
                    passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    false
                }
                429 => {
                    assert_eq!(
                        serde_json::from_str::<Value>(&body).unwrap()["errors"],
                        json!(["request path \"sys/metrics\": rate limit quota exceeded"])
                    );
                    true
                }
                _ => panic!("{st} {body}"),
            }
        },
    )
    .await;
    let passed = passed.load(std::sync::atomic::Ordering::SeqCst);
    assert!(passed >= 2, "{passed}");
    // Refused before the token is looked at: no storage read for a client over its quota.
    let (st, _) = scrape(standby, None).await;
    assert_eq!(st, 429);
    // The active node counts its own clients.
    let (st, body) = scrape(active, Some(&root)).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = call(
        &c,
        Method::DELETE,
        format!("{}/sys/quotas/rate-limit/scrapes", active.base()),
        Some(&root),
        json!(null),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    wait_for(
        Duration::from_secs(6),
        "the standby to drop the quota",
        || {
            let f = scrape(standby, Some(&root));
            async move { f.await.0 == 200 }
        },
    )
    .await;
}

/// itself first and the standby with its last echo; a standby that stops leaves the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_status_lists_both_nodes_and_forgets_a_stopped_standby() {
    let url = database_url();
    let c = reqwest::Client::new();
    let (mut active, mut standby, root) = active_and_standby(&c, &url).await;
    let (active, standby) = (&mut active, &mut standby);
    let status = |base: String| {
        let (c, root) = (c.clone(), root.clone());
        async move {
            let (st, body) = call(
                &c,
                Method::GET,
                format!("{base}/sys/ha-status"),
                Some(&root),
                json!(null),
            )
            .await;
            assert_eq!(st, 200, "{body}");
            body["data"]["nodes"].as_array().unwrap().clone()
        }
    };
    // The standby announces itself within a renewal interval of its unseal.
    let (active_base, standby_base) = (active.base(), standby.base());
    wait_for(Duration::from_secs(5), "both nodes listed", || {
        let s = status(active_base.clone());
        async move { s.await.len() == 2 }
    })
    .await;
    for base in [&active_base, &standby_base] {
        let nodes = status(base.clone()).await;
        assert_eq!(nodes.len(), 2, "{nodes:?}");
        assert_eq!(nodes[0]["api_address"], active.api_addr(), "{nodes:?}");
        assert_eq!(nodes[0]["active_node"], true);
        assert_eq!(nodes[0]["last_echo"], Value::Null);
        assert_eq!(nodes[1]["api_address"], standby.api_addr(), "{nodes:?}");
        assert_eq!(nodes[1]["active_node"], false);
        assert!(
            nodes[1]["last_echo"].as_str().unwrap().ends_with('Z'),
            "{nodes:?}"
        );
        assert_eq!(nodes[1]["version"], env!("CARGO_PKG_VERSION"));
        assert!(nodes[1]["cluster_address"].is_string());
    }
    // The real CLI shows the same table.
    if let Some(bao) = crate::cli::bao_bin() {
        let out = Command::new(bao)
            .args(["operator", "members"])
            .env("VAULT_ADDR", active.api_addr())
            .env("VAULT_TOKEN", &root)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("Active Node"), "{text}");
        assert!(text.contains(&active.api_addr()), "{text}");
        assert!(text.contains(&standby.api_addr()), "{text}");
    }
    // What is about one node is not forwarded: a standby refuses it as Vault's does.
    for path in ["sys/monitor", "sys/in-flight-req"] {
        let (st, body) = call(
            &c,
            Method::GET,
            format!("{standby_base}/{path}"),
            Some(&root),
            json!(null),
        )
        .await;
        assert_eq!(st, 400, "{path}: {body}");
        assert_eq!(body["errors"], json!(["cannot forward local-only request"]));
    }
    let (st, body) = call(
        &c,
        Method::GET,
        format!("{active_base}/sys/in-flight-req"),
        Some(&root),
        json!(null),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    // A standby that shuts down removes its row.
    standby.stop();
    let nodes = status(active_base.clone()).await;
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(nodes[0]["api_address"], active.api_addr());
}

/// A standby's `vault_core_unsealed` and `vault_core_active` survive the retention time: they
/// are refreshed on each scrape, as on the active node (Vault refreshes them every second on
/// every node). Before, a standby set them once at unseal and, past `prometheus_retention_time`,
/// its scrapes had neither, so "no active node" and "sealed" alerts misfired.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_a_standby_keeps_its_seal_gauges_past_the_retention_time() {
    let url = database_url();
    let c = reqwest::Client::new();
    let extra = "telemetry {\n  prometheus_retention_time = \"2s\"\n}\n";
    let (a, b, _key, _root, _) = cluster_with(&c, &url, extra).await;
    let i = active_of(&c, &[&a, &b], Duration::from_secs(5)).await;
    let (active, standby) = if i == 0 { (&a, &b) } else { (&b, &a) };
    let scrape = |node: &Node| {
        let (c, base) = (c.clone(), node.base());
        async move {
            let r = c
                .get(format!("{base}/sys/metrics?format=prometheus"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let gauge = |text: &str, name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    // Past the retention time since the standby unsealed (and since any earlier scrape).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = scrape(standby).await;
    assert_eq!(gauge(&text, "vault_core_active"), Some(0.0), "{text}");
    assert_eq!(gauge(&text, "vault_core_unsealed"), Some(1.0), "{text}");
    assert!(
        gauge(&text, "vault_core_in_flight_requests").is_some(),
        "{text}"
    );
    let text = scrape(active).await;
    assert_eq!(gauge(&text, "vault_core_active"), Some(1.0), "{text}");
    assert_eq!(gauge(&text, "vault_core_unsealed"), Some(1.0), "{text}");
}
