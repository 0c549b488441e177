//! `sys/metrics` over real HTTP: the Prometheus output parsed by a real Prometheus text parser
//! (the Python `prometheus_client` package, pinned in `tests/clients/requirements.txt`, found
//! through `CLIENTS_PYTHON` like the client tests; a missing parser fails the test), Vault's
//! metric names and types, counters that follow traffic, no secret, token, accessor or request
//! path anywhere in the output, bounded label values, go-metrics' JSON, and Vault's
//! authentication and error answers.
//!
//! The recorder is process-wide (as Vault's go-metrics sink), so assertions on counters are
//! about increases, never absolute values.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::common::TestServer;
use coffer::clock::MockClock;
use coffer::core::CoreConfig;
use coffer::server::{DevServer, HttpOptions, serve_http};
use coffer::telemetry::Telemetry;

/// One parsed metric family.
#[derive(Debug)]
struct Family {
    kind: String,
    samples: Vec<(String, BTreeMap<String, String>, Value)>,
}

/// The interpreter with `prometheus_client`: `CLIENTS_PYTHON`, else the project's `.venv`.
fn python() -> PathBuf {
    let p = std::env::var("CLIENTS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import prometheus_client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "prometheus_client is not installed for {}: run `bash scripts/test.sh` (README's test \
         command), which installs tests/clients/requirements.txt",
        p.display()
    );
    p
}

/// Parses Prometheus text with `prometheus_client`'s parser; panics when it refuses the text.
async fn parse(text: String) -> BTreeMap<String, Family> {
    tokio::task::spawn_blocking(move || {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/prometheus_parse.py");
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the parser");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("parser output");
        assert!(
            out.status.success(),
            "prometheus_client refused the output: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let parsed: Vec<Value> = serde_json::from_slice(&out.stdout).expect("parser JSON");
        parsed
            .into_iter()
            .map(|f| {
                let samples = f["samples"]
                    .as_array()
                    .expect("samples")
                    .iter()
                    .map(|s| {
                        let labels = s["labels"]
                            .as_object()
                            .expect("labels")
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                            .collect();
                        (
                            s["name"].as_str().expect("name").to_owned(),
                            labels,
                            s["value"].clone(),
                        )
                    })
                    .collect();
                let name = f["name"].as_str().expect("family name").to_owned();
                (
                    name,
                    Family {
                        kind: f["type"].as_str().expect("type").to_owned(),
                        samples,
                    },
                )
            })
            .collect()
    })
    .await
    .expect("parser task")
}

/// Sum of the samples named `sample` whose labels include `want`.
fn sum(families: &BTreeMap<String, Family>, sample: &str, want: &[(&str, &str)]) -> f64 {
    families
        .values()
        .flat_map(|f| f.samples.iter())
        .filter(|(name, labels, _)| {
            name == sample
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .filter_map(|(_, _, v)| v.as_f64())
        .sum()
}

async fn scrape(srv: &TestServer, token: Option<&str>) -> String {
    let r = srv
        .req("GET", "sys/metrics?format=prometheus", token, None)
        .await;
    r.assert_status(200);
    assert_eq!(
        r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8",
        "{}",
        r.text
    );
    r.text
}

/// A dev server whose listener has the given options and whose core has `telemetry`.
/// Scrapes until `done` holds for the parsed output (background gauges), for up to 20 s.
async fn scrape_until(
    srv: &TestServer,
    done: impl Fn(&BTreeMap<String, Family>) -> bool,
) -> BTreeMap<String, Family> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let families = parse(scrape(srv, None).await).await;
        if done(&families) || std::time::Instant::now() > until {
            return families;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn server_with(telemetry: Telemetry, options: HttpOptions) -> TestServer {
    let config = CoreConfig {
        telemetry,
        ..CoreConfig::default()
    };
    dev_server(config, options).await.0
}

/// A dev server of `config` on a listener with `options`, and its unseal key.
async fn dev_server(config: CoreConfig, options: HttpOptions) -> (TestServer, String) {
    let clock = MockClock::new();
    let dev = DevServer::with_config(clock.clone(), Some("root".into()), config)
        .await
        .expect("dev server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let core = dev.core.clone();
    tokio::spawn(async move {
        let _ = serve_http(listener, core, &options, std::future::pending()).await;
    });
    let mut srv = TestServer::attach(addr, dev.core.clone(), clock);
    srv.root = dev.root_token.expose().to_string();
    (srv, dev.unseal_key.expose().to_string())
}

/// The server's cluster name (the `cluster` label of its gauges).
async fn cluster_name(srv: &TestServer) -> String {
    srv.get("sys/seal-status", &srv.root).await.body["cluster_name"]
        .as_str()
        .expect("cluster_name")
        .to_owned()
}

/// AppRole enabled with a role; returns a fresh login's client token.
async fn approle_login(srv: &TestServer) -> String {
    let root = srv.root.as_str();
    srv.put("sys/auth/approle", root, json!({"type": "approle"}))
        .await
        .assert_status(204);
    srv.put(
        "auth/approle/role/app",
        root,
        json!({"token_policies": "default", "token_ttl": "30m"}),
    )
    .await
    .assert_status(204);
    let role_id = srv.get("auth/approle/role/app/role-id", root).await.body["data"]["role_id"]
        .as_str()
        .expect("role_id")
        .to_owned();
    let secret_id = srv
        .post("auth/approle/role/app/secret-id", root, json!({}))
        .await
        .body["data"]["secret_id"]
        .as_str()
        .expect("secret_id")
        .to_owned();
    let login = srv
        .req(
            "PUT",
            "auth/approle/login",
            None,
            Some(json!({"role_id": role_id, "secret_id": secret_id})),
        )
        .await;
    login.assert_status(200);
    login.body["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_owned()
}

#[tokio::test]
async fn prometheus_output_parses_and_carries_vaults_names_and_counters_move_with_traffic() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    srv.post("secret/data/app", &root, json!({"data": {"k": "v"}}))
        .await
        .assert_status(200);
    srv.get("secret/data/app", &root).await.assert_status(200);
    let token = approle_login(&srv).await;
    // Renewed through the method that issued it (`vault.route.renew.auth-approle-`).
    srv.post("auth/token/renew-self", &token, json!({}))
        .await
        .assert_status(200);
    srv.get("auth/token/lookup-self", &token)
        .await
        .assert_status(200);
    let spare = srv.token_with(&["default"], json!({})).await;
    srv.post("auth/token/revoke-self", &spare, json!({}))
        .await
        .assert_status(204);
    srv.put(
        "sys/audit/file",
        &root,
        json!({"type": "file", "options": {"file_path": "discard"}}),
    )
    .await
    .assert_status(204);
    srv.get("secret/data/app", &root).await.assert_status(200);

    // The token count gauges come from a background computation: wait for the first.
    scrape_until(&srv, |f| f.contains_key("vault_token_count_by_ttl")).await;
    let text = scrape(&srv, None).await;
    // Counters carry no `_total` suffix in Vault's names (prometheus_client's parser adds one to
    // its sample names, so this is checked on the text).
    assert!(text.contains("\nvault_token_creation{"), "{text}");
    assert!(!text.contains("vault_token_creation_total"));
    let before = parse(text).await;
    let types = [
        ("vault_core_handle_request", "summary"),
        ("vault_core_handle_login_request", "summary"),
        ("vault_token_creation", "counter"),
        ("vault_token_count", "gauge"),
        ("vault_token_count_by_auth", "gauge"),
        ("vault_token_count_by_policy", "gauge"),
        ("vault_token_count_by_ttl", "gauge"),
        ("vault_token_lookup", "summary"),
        ("vault_token_create", "summary"),
        ("vault_token_store", "summary"),
        ("vault_token_revoke", "summary"),
        ("vault_token_revoke_tree", "summary"),
        ("vault_barrier_get", "summary"),
        ("vault_barrier_put", "summary"),
        ("vault_barrier_list", "summary"),
        ("vault_route_create_secret_", "summary"),
        ("vault_route_read_secret_", "summary"),
        ("vault_route_update_auth_approle_", "summary"),
        ("vault_route_renew_auth_approle_", "summary"),
        ("vault_runtime_alloc_bytes", "gauge"),
        ("vault_runtime_sys_bytes", "gauge"),
        ("vault_runtime_num_goroutines", "gauge"),
        ("vault_audit_log_request", "summary"),
        ("vault_audit_log_response", "summary"),
        // Per device, as Vault names them (`vault.audit.file/.log_request`).
        ("vault_audit_file__log_request", "summary"),
        ("vault_audit_file__log_response", "summary"),
        ("vault_audit_log_request_failure", "counter"),
        ("vault_core_unsealed", "gauge"),
        ("vault_core_active", "gauge"),
        ("vault_core_response_status_code", "counter"),
        // The standard process collectors.
        ("process_cpu_seconds", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("process_virtual_memory_max_bytes", "gauge"),
        ("process_network_receive_bytes", "counter"),
        ("process_network_transmit_bytes", "counter"),
        // prometheus_client names a counter family without its `_total`.
        ("coffer_http_requests", "counter"),
        ("coffer_request_duration_seconds", "histogram"),
    ];
    for (name, kind) in types {
        let family = before
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing; have {:?}", before.keys()));
        assert_eq!(family.kind, kind, "{name}");
    }
    // Vault's quantiles, and counters without a `_total` suffix.
    let quantiles: BTreeSet<_> = before["vault_core_handle_request"]
        .samples
        .iter()
        .filter_map(|(_, l, _)| l.get("quantile").cloned())
        .collect();
    assert_eq!(
        quantiles,
        BTreeSet::from(["0.5".into(), "0.9".into(), "0.99".into()])
    );
    let creation = &before["vault_token_creation"].samples;
    let cluster = cluster_name(&srv).await;
    let approle = [
        ("auth_method", "approle"),
        ("mount_point", "auth/approle/"),
        ("cluster", cluster.as_str()),
        ("creation_ttl", "1h"),
        ("namespace", "root"),
        ("token_type", "service"),
    ];
    assert!(
        sum(&before, "vault_token_creation_total", &approle) >= 1.0,
        "{creation:?}"
    );
    let here = [("cluster", cluster.as_str())];
    assert_eq!(sum(&before, "vault_core_unsealed", &here), 1.0);
    assert_eq!(sum(&before, "vault_core_active", &here), 1.0);
    assert!(sum(&before, "vault_token_count", &here) >= 1.0);

    let kv_reads = [("code", "200"), ("method", "GET"), ("mount_type", "kv")];
    for _ in 0..10 {
        srv.get("secret/data/app", &root).await.assert_status(200);
    }
    srv.get("secret/data/nothing", &root)
        .await
        .assert_status(404);
    // Any status a client asks of sys/health: counted, but as one series per class.
    for code in ["999", "998", "299", "418", "419"] {
        srv.req("GET", &format!("sys/health?activecode={code}"), None, None)
            .await
            .assert_status(code.parse().unwrap());
    }
    let after = parse(scrape(&srv, None).await).await;
    let grew = |sample: &str, labels: &[(&str, &str)]| {
        sum(&after, sample, labels) - sum(&before, sample, labels)
    };
    assert!(grew("coffer_http_requests_total", &kv_reads) >= 10.0);
    let misses = [("code", "404"), ("method", "GET"), ("mount_type", "kv")];
    assert!(grew("coffer_http_requests_total", &misses) >= 1.0);
    // The latency histogram by mount type and status class only (15 series each).
    let kv_ok = [("class", "2xx"), ("mount_type", "kv")];
    assert!(grew("coffer_request_duration_seconds_count", &kv_ok) >= 10.0);
    let histograms: BTreeSet<Vec<(String, String)>> = after["coffer_request_duration_seconds"]
        .samples
        .iter()
        .map(|(_, l, _)| {
            l.iter()
                .filter(|(k, _)| k.as_str() != "le")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    for labels in &histograms {
        let keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["class", "mount_type"], "{labels:?}");
    }
    assert!(grew("vault_core_handle_request_count", &[]) >= 11.0);
    assert!(grew("vault_route_read_secret__count", &[]) >= 11.0);
    assert!(grew("vault_barrier_get_count", &[]) >= 10.0);
    assert!(grew("vault_audit_log_request_count", &[]) >= 11.0);
    // Vault's response counter, by exact status and class: the ten reads, the first scrape
    // (counted once answered) and the seal-status read for the cluster name; the miss.
    let ok = [("code", "200"), ("type", "2xx")];
    assert_eq!(grew("vault_core_response_status_code_total", &ok), 12.0);
    let missed = [("code", "404"), ("type", "4xx")];
    assert_eq!(grew("vault_core_response_status_code_total", &missed), 1.0);
    let odd = [("code", "other"), ("type", "9xx")];
    assert_eq!(grew("vault_core_response_status_code_total", &odd), 2.0);
    // A code Coffer never answers by itself is `other` in its class too.
    let odd_ok = [("code", "other"), ("type", "2xx")];
    assert_eq!(grew("vault_core_response_status_code_total", &odd_ok), 1.0);
    let odd_client = [("code", "other"), ("type", "4xx")];
    assert_eq!(
        grew("vault_core_response_status_code_total", &odd_client),
        2.0
    );
    for code in ["299", "418", "419"] {
        assert_eq!(
            sum(
                &after,
                "vault_core_response_status_code_total",
                &[("code", code)]
            ),
            0.0
        );
    }
}

#[tokio::test]
async fn no_token_accessor_secret_or_path_in_the_output_and_label_values_stay_few() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    let canary = "canary-value-7f3a9c";
    let token = srv.token_with(&["default", "kv-reader"], json!({})).await;
    let accessor = srv.get("auth/token/lookup-self", &token).await.body["data"]["accessor"]
        .as_str()
        .expect("accessor")
        .to_owned();
    let login_token = approle_login(&srv).await;
    srv.get("auth/token/lookup-self", &login_token)
        .await
        .assert_status(200);
    for i in 0..200 {
        srv.post(
            &format!("secret/data/canary-path-{i}"),
            &root,
            json!({"data": {"password": format!("{canary}-{i}")}}),
        )
        .await
        .assert_status(200);
    }
    srv.get("secret/data/canary-path-7", &token).await;
    srv.get("secret/data/canary-path-7?version=1", &root)
        .await
        .assert_status(200);
    // The first scrape's own request appears in the second one: scrape twice.
    scrape(&srv, None).await;
    let first = scrape(&srv, None).await;
    for i in 200..400 {
        srv.post(
            &format!("secret/data/canary-path-{i}"),
            &root,
            json!({"data": {"password": format!("{canary}-{i}")}}),
        )
        .await
        .assert_status(200);
        srv.get(&format!("secret/data/canary-path-{i}"), &root)
            .await
            .assert_status(200);
    }
    let prometheus = scrape(&srv, None).await;
    let json_text = srv.get("sys/metrics", &root).await.text;
    for output in [&first, &prometheus, &json_text] {
        for secret in [
            canary,
            "canary-path",
            token.as_str(),
            accessor.as_str(),
            login_token.as_str(),
            "version=1",
        ] {
            assert!(!output.contains(secret), "{secret:?} in the metrics output");
        }
    }

    // 200 more keys (read and written) add no series: no label grows with keys or paths. (The
    // recorder is process-wide; nextest, the project's runner, gives each test its own process.)
    let series = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.rsplit_once(' ').map_or(l, |(s, _)| s).to_owned())
            .collect::<BTreeSet<_>>()
    };
    let (a, b) = (series(&first), series(&prometheus));
    let added: Vec<_> = b.difference(&a).collect();
    assert!(
        added
            .iter()
            .all(|s| s.starts_with("vault_runtime") || s.contains("quantile")),
        "new series after 200 more keys: {added:?}"
    );
    let families = parse(prometheus).await;
    for (name, family) in &families {
        let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (_, labels, _) in &family.samples {
            for (k, v) in labels {
                values.entry(k).or_default().insert(v);
            }
        }
        for (label, seen) in values {
            assert!(
                seen.len() <= 20,
                "{name}{{{label}}} has {} values: {seen:?}",
                seen.len()
            );
        }
    }
}

#[tokio::test]
async fn authenticated_metrics_need_read_on_sys_metrics_and_answer_as_vault() {
    let options = HttpOptions {
        unauthenticated_metrics: false,
        ..HttpOptions::default()
    };
    let srv = server_with(Telemetry::dev(), options).await;
    let root = srv.root.clone();
    let denied = srv.req("GET", "sys/metrics", None, None).await;
    denied.assert_status(403);
    assert_eq!(denied.errors(), vec!["permission denied".to_string()]);
    let plain = srv.token_with(&["default"], json!({})).await;
    srv.get("sys/metrics?format=prometheus", &plain)
        .await
        .assert_status(403);
    srv.write_policy(
        "metrics",
        r#"path "sys/metrics" { capabilities = ["read", "list"] }"#,
    )
    .await;
    let reader = srv.token_with(&["metrics"], json!({})).await;
    let text = scrape(&srv, Some(&reader)).await;
    assert!(parse(text).await.contains_key("vault_core_handle_request"));

    // The Accept header picks Prometheus when `format` is not given, or given empty.
    for path in ["sys/metrics", "sys/metrics?format="] {
        let r = TestServer::finish(
            srv.client
                .get(srv.url(path))
                .header("X-Vault-Token", &reader)
                .header("Accept", "application/openmetrics-text; version=1.0.0"),
        )
        .await;
        r.assert_status(200);
        assert!(
            r.text.contains("# TYPE vault_core_handle_request summary"),
            "{path}"
        );
    }

    let bad = srv.get("sys/metrics?format=xml", &root).await;
    bad.assert_status(400);
    assert_eq!(bad.headers["content-type"], "text/plain");
    assert_eq!(bad.text, "metric response format \"xml\" unknown");

    // go-metrics' JSON summary of the last 10-second interval.
    let r = srv.get("sys/metrics", &reader).await;
    r.assert_status(200);
    assert_eq!(r.headers["content-type"], "application/json");
    let keys: BTreeSet<_> = r
        .body
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    let want = ["Counters", "Gauges", "Points", "Samples", "Timestamp"];
    assert_eq!(keys, want.iter().map(|k| k.to_string()).collect());
    let stamp = r.body["Timestamp"].as_str().expect("Timestamp");
    assert!(
        stamp.ends_with(" +0000 UTC") && stamp.len() == 29,
        "{stamp}"
    );
    let gauge = r.body["Gauges"]
        .as_array()
        .expect("Gauges")
        .iter()
        .find(|g| g["Name"] == "vault.core.unsealed" && g["Value"] == 1)
        .expect("vault.core.unsealed gauge");
    assert!(gauge["Labels"]["cluster"].is_string());
    let sample = r.body["Samples"]
        .as_array()
        .expect("Samples")
        .iter()
        .find(|s| s["Name"] == "vault.core.handle_request")
        .expect("vault.core.handle_request sample");
    for field in [
        "Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev", "Labels",
    ] {
        assert!(sample.get(field).is_some(), "{field} missing in {sample}");
    }
}

#[tokio::test]
async fn zero_retention_disables_prometheus_and_the_dev_listener_serves_without_a_token() {
    let srv = server_with(Telemetry::without_stanza(), HttpOptions::default()).await;
    let r = srv.get("sys/metrics?format=prometheus", &srv.root).await;
    r.assert_status(400);
    assert_eq!(r.headers["content-type"], "text/plain");
    assert_eq!(r.text, "prometheus is not enabled");
    let r = srv.req("GET", "sys/metrics", None, None).await;
    r.assert_status(200);
    assert!(r.body["Gauges"].is_array(), "{}", r.text);

    let dev = TestServer::start().await;
    let r = dev
        .req("GET", "sys/metrics?format=prometheus", None, None)
        .await;
    r.assert_status(200);
    let r = dev.req("POST", "sys/metrics", None, Some(json!({}))).await;
    r.assert_status(405);
    assert_eq!(r.text.trim(), r#"{"errors":[]}"#);
}

/// Reads the dev banner from `out` up to the root token line; returns its lines.
fn banner_lines(out: impl std::io::Read) -> Vec<String> {
    use std::io::BufRead;
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(out).lines() {
        let line = line.expect("stdout");
        let last = line.starts_with("Root Token: ");
        lines.push(line);
        if last {
            break;
        }
    }
    lines
}

/// The address in a banner line `Listener n: tcp (addr: "127.0.0.1:1234", ...)`.
pub(crate) fn listener_addr(lines: &[String], n: usize) -> String {
    let prefix = format!("Listener {n}: tcp (addr: \"");
    let line = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no listener {n} in {lines:#?}"));
    let addr = line.split('"').next().expect("address");
    format!("http://{addr}")
}

/// A `coffer server -dev` process with root token `root` (and `config`, written to a file, as
/// its `-config`), its stderr to `stderr`; returns it with its banner lines once it serves.
/// Its HOME is a temp dir (kept in the returned value), as the dev server writes a token file.
pub(crate) async fn spawn_dev(
    root: &str,
    config: Option<&str>,
    stderr: Stdio,
) -> (Child, Vec<String>, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
    cmd.args(["server", "-dev", "-dev-listen-address=127.0.0.1:0"])
        .arg(format!("-dev-root-token-id={root}"))
        .env("HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(stderr);
    if let Some(text) = config {
        let file = home.path().join("dev.hcl");
        std::fs::write(&file, text).unwrap();
        cmd.arg(format!("-config={}", file.display()));
    }
    let mut child = cmd.spawn().expect("spawn coffer");
    let stdout = child.stdout.take().expect("stdout");
    let lines = tokio::task::spawn_blocking(move || banner_lines(stdout))
        .await
        .unwrap();
    (child, lines, home)
}

#[tokio::test]
async fn dev_with_config_adds_listeners_and_telemetry_and_logs_each_request_as_one_json_line() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dev.hcl");
    std::fs::write(
        &config,
        r#"
storage "raft" { path = "/nonexistent" }
listener "tcp" {
  address = "127.0.0.1:0"
  tls_disable = true
}
telemetry {
  prometheus_retention_time = "0s"
  statsd_address = "127.0.0.1:8125"
}
log_level = "debug"
log_format = "json"
"#,
    )
    .unwrap();
    let stderr_path = dir.path().join("stderr.log");
    let root_token = "root-canary-5d1e0b";
    let secret = "secret-canary-9b2c44";
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", "-dev", "-dev-listen-address=127.0.0.1:0"])
        .arg(format!("-dev-root-token-id={root_token}"))
        .arg(format!("-config={}", config.display()))
        .env("HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("spawn coffer");
    // A failing assertion below must not leave the server running.
    let mut reaper = Reaper(Some(child.id()));
    let stdout = child.stdout.take().expect("stdout");
    let lines = tokio::task::spawn_blocking(move || banner_lines(stdout))
        .await
        .unwrap();
    let (dev, extra) = (listener_addr(&lines, 1), listener_addr(&lines, 2));
    let client = reqwest::Client::new();
    let get = |url: String, token: Option<&str>| {
        let mut rb = client.get(url);
        if let Some(t) = token {
            rb = rb.header("X-Vault-Token", t);
        }
        async move {
            let r = rb.send().await.expect("send");
            let status = r.status().as_u16();
            (status, r.text().await.expect("body"))
        }
    };

    // The dev listener serves metrics without a token; the file's telemetry turned Prometheus off.
    let (status, body) = get(format!("{dev}/v1/sys/metrics"), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(format!("{dev}/v1/sys/metrics?format=prometheus"), None).await;
    assert_eq!((status, body.as_str()), (400, "prometheus is not enabled"));
    // The file's listener serves too, with its own telemetry settings: a token is needed.
    let (status, _) = get(format!("{extra}/v1/sys/metrics"), None).await;
    assert_eq!(status, 403);
    let (status, _) = get(format!("{extra}/v1/sys/metrics"), Some(root_token)).await;
    assert_eq!(status, 200);
    let put = client
        .put(format!("{extra}/v1/secret/data/app"))
        .header("X-Vault-Token", root_token)
        .body(json!({"data": {"password": secret}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let (status, body) = get(format!("{extra}/v1/secret/data/app"), Some(root_token)).await;
    assert_eq!(status, 200);
    let request_id = serde_json::from_str::<Value>(&body).unwrap()["request_id"]
        .as_str()
        .expect("request_id")
        .to_owned();
    // A request the HTTP layer refuses is audited; its log line carries the same request id.
    let audit_log = dir.path().join("audit.log");
    let r = client
        .put(format!("{extra}/v1/sys/audit/file"))
        .header("X-Vault-Token", root_token)
        .body(json!({"type": "file", "options": {"file_path": audit_log}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = client
        .put(format!("{extra}/v1/secret/data/dir/"))
        .header("X-Vault-Token", root_token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let refused_id = std::fs::read_to_string(&audit_log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| {
            e["request"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("secret/data/dir"))
        })
        .expect("the refusal's audit entry")["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Tokens in paths the server cannot decode, or outside /v1/, are redacted too.
    let leaks = [
        "hvs.LEAKME",
        "ACCESSORLEAK",
        "hvs.NOV1LEAK",
        "hvs.CASELEAK",
        "hvs.SLASHLEAK",
        "hvs.SLASH2LEAK",
    ];
    for path in [
        "/v1/auth/token/lookup/hvs.LEAKME%FF",
        "/v1/auth/token/lookup-accessor/ACCESSORLEAK%C0",
        "/auth/token/lookup/hvs.NOV1LEAK",
        "/v1/AUTH/TOKEN/lookup/hvs.CASELEAK",
        "/v1/auth//token/lookup/hvs.SLASHLEAK%FF",
        "/auth//token//lookup/hvs.SLASH2LEAK",
    ] {
        let (status, _) = get(format!("{extra}{path}"), Some(root_token)).await;
        assert!(status >= 400, "{path}: {status}");
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    reaper.0 = None;
    assert!(exit.success(), "{exit:?}");

    let log = std::fs::read_to_string(&stderr_path).unwrap();
    for canary in [root_token, secret].into_iter().chain(leaks) {
        assert!(!log.contains(canary), "{canary} in the log:\n{log}");
    }
    assert!(
        log.contains(r#""request.path":"/v1/auth/token/lookup/<redacted>""#),
        "{log}"
    );
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["fields"]["config.setting"] == "telemetry.statsd_address"),
        "{log}"
    );
    let requests: Vec<&Value> = events
        .iter()
        .map(|e| &e["fields"])
        .filter(|f| f.get("request.method").is_some())
        .collect();
    let kv: Vec<_> = requests
        .iter()
        .filter(|f| f["request.path"] == "/v1/secret/data/app")
        .collect();
    assert_eq!(kv.len(), 2, "{log}");
    let read = kv
        .iter()
        .find(|f| f["request.method"] == "GET")
        .expect("the read's line");
    assert_eq!(read["request.id"], request_id.as_str());
    assert_eq!(read["response.status"], 200);
    assert!(read["duration_ms"].as_f64().is_some_and(|d| d > 0.0));
    let denied = requests
        .iter()
        .filter(|f| f["request.path"] == "/v1/sys/metrics" && f["response.status"] == 403)
        .count();
    assert_eq!(denied, 1, "{log}");
    let refused = requests
        .iter()
        .find(|f| f["request.path"] == "/v1/secret/data/dir" && f["response.status"] == 400)
        .unwrap_or_else(|| panic!("the refusal's line: {log}"));
    assert_eq!(refused["request.id"], refused_id.as_str());
}

#[tokio::test]
async fn token_count_gauges_follow_tokens_once_per_usage_gauge_period() {
    let telemetry = Telemetry {
        usage_gauge_period_secs: Some(1),
        ..Telemetry::dev()
    };
    let srv = server_with(telemetry, HttpOptions::default()).await;
    let token = approle_login(&srv).await;
    let cluster = cluster_name(&srv).await;
    let approle = [("auth_method", "approle"), ("cluster", cluster.as_str())];
    let here = [("cluster", cluster.as_str())];
    // Computed in the background once the period has passed, never inside a scrape.
    let families = scrape_until(&srv, |f| {
        sum(f, "vault_token_count_by_auth", &approle) == 1.0
    })
    .await;
    assert_eq!(sum(&families, "vault_token_count_by_auth", &approle), 1.0);
    let total = sum(&families, "vault_token_count", &here);
    assert!(total >= 2.0, "root and the login's token");

    srv.put("auth/token/revoke-self", &token, json!({}))
        .await
        .assert_status(204);
    // The next computation finds the approle dimension empty: it drops to 0.
    let families = scrape_until(&srv, |f| {
        sum(f, "vault_token_count_by_auth", &approle) == 0.0
    })
    .await;
    assert_eq!(sum(&families, "vault_token_count_by_auth", &approle), 0.0);
    assert_eq!(sum(&families, "vault_token_count", &here), total - 1.0);
}

/// `vault_core_in_flight_requests` counts the requests being served: three requests held open
/// (headers sent, body still coming) show as 3 in a scrape (the scrape itself not counted), and
/// as 0 once their connections are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_gauge_counts_requests_being_served() {
    use tokio::io::AsyncWriteExt;
    let srv = TestServer::start().await;
    let cluster = cluster_name(&srv).await;
    let here = [("cluster", cluster.as_str())];
    let gauge = async || {
        let families = parse(scrape(&srv, None).await).await;
        sum(&families, "vault_core_in_flight_requests", &here)
    };
    // Polls the gauge until it reads `want` (each scrape samples it anew), for at most 10 s.
    let until = async |want: f64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let seen = gauge().await;
            if seen == want || std::time::Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    assert_eq!(until(0.0).await, 0.0, "nothing in flight but the scrape");

    let mut held = Vec::new();
    for i in 0..3 {
        let mut s = tokio::net::TcpStream::connect(srv.addr)
            .await
            .expect("connect");
        let head = format!(
            "PUT /v1/secret/data/held-{i} HTTP/1.1\r\nHost: {}\r\nX-Vault-Token: {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"data\":",
            srv.addr, srv.root
        );
        s.write_all(head.as_bytes()).await.expect("send");
        held.push(s);
    }
    assert_eq!(
        until(3.0).await,
        3.0,
        "three requests wait for their bodies"
    );

    drop(held);
    assert_eq!(
        until(0.0).await,
        0.0,
        "their connections closed, they are done"
    );
    // Nothing was written by the abandoned requests.
    srv.get("secret/data/held-0", &srv.root)
        .await
        .assert_status(404);
}

/// `vault_core_mount_table_num_entries` / `_size` follow the mount tables: they count what
/// `sys/mounts` and `sys/auth` list, one more secret mount and one more auth method show in the
/// next scrape, and the stored tables grow.
#[tokio::test]
async fn mount_table_gauges_follow_the_mount_tables() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    let cluster = cluster_name(&srv).await;
    let gauges = async || {
        let families = parse(scrape(&srv, None).await).await;
        let mut seen = BTreeMap::new();
        for table in ["logical", "auth"] {
            // Shared and local (cubbyhole) mounts are counted in their own tables, as in Vault.
            let labels = |local| {
                [
                    ("cluster", cluster.as_str()),
                    ("local", local),
                    ("type", table),
                ]
            };
            let entries = |local| {
                sum(
                    &families,
                    "vault_core_mount_table_num_entries",
                    &labels(local),
                )
            };
            seen.insert(
                table,
                (
                    entries("false") + entries("true"),
                    sum(&families, "vault_core_mount_table_size", &labels("false")),
                ),
            );
        }
        seen
    };
    let before = gauges().await;
    let mounts = srv.get("sys/mounts", &root).await.body["data"]
        .as_object()
        .expect("mounts")
        .len();
    let auths = srv.get("sys/auth", &root).await.body["data"]
        .as_object()
        .expect("auth methods")
        .len();
    assert_eq!(before["logical"].0, mounts as f64, "{before:?}");
    assert_eq!(before["auth"].0, auths as f64, "{before:?}");
    assert!(
        before["logical"].1 > 0.0 && before["auth"].1 > 0.0,
        "{before:?}"
    );

    srv.put(
        "sys/mounts/team-kv",
        &root,
        json!({"type": "kv", "options": {"version": "2"}}),
    )
    .await
    .assert_status(204);
    srv.put("sys/auth/approle", &root, json!({"type": "approle"}))
        .await
        .assert_status(204);
    let after = gauges().await;
    assert_eq!(after["logical"].0, before["logical"].0 + 1.0, "{after:?}");
    assert_eq!(after["auth"].0, before["auth"].0 + 1.0, "{after:?}");
    assert!(after["logical"].1 > before["logical"].1, "{after:?}");
    assert!(after["auth"].1 > before["auth"].1, "{after:?}");
}

/// `vault_policy_*` timers count the policy store's operations: writing, reading, listing and
/// deleting a policy through `sys/policies/acl` each add to their summary's count.
#[tokio::test]
async fn policy_timers_count_policy_store_operations() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    let counts = async || {
        let families = parse(scrape(&srv, None).await).await;
        [
            "vault_policy_set_policy_count",
            "vault_policy_get_policy_count",
            "vault_policy_list_policies_count",
            "vault_policy_delete_policy_count",
        ]
        .map(|name| sum(&families, name, &[]))
    };
    let before = counts().await;
    srv.put(
        "sys/policies/acl/reader",
        &root,
        json!({"policy": "path \"secret/data/*\" { capabilities = [\"read\"] }"}),
    )
    .await
    .assert_status(204);
    srv.get("sys/policies/acl/reader", &root)
        .await
        .assert_status(200);
    srv.req("LIST", "sys/policies/acl", Some(&root), None)
        .await
        .assert_status(200);
    srv.delete("sys/policies/acl/reader", &root)
        .await
        .assert_status(204);
    let after = counts().await;
    for (i, name) in ["set", "get", "list", "delete"].iter().enumerate() {
        assert!(
            after[i] >= before[i] + 1.0,
            "{name}: {before:?} -> {after:?}"
        );
    }
}

#[tokio::test]
async fn lease_gauges_and_expire_timers_follow_token_lifecycles() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    let read = async || {
        let f = parse(scrape(&srv, None).await).await;
        let timers = [
            "vault_expire_register_auth_count",
            "vault_expire_renew_token_count",
            "vault_expire_revoke_by_token_count",
            "vault_expire_revoke_count",
        ]
        .map(|n| sum(&f, n, &[]));
        (
            sum(&f, "vault_expire_num_leases", &[]),
            f.contains_key("vault_expire_num_irrevocable_leases"),
            timers,
        )
    };
    let (leases0, irrevocable, t0) = read().await;
    assert!(
        irrevocable,
        "vault_expire_num_irrevocable_leases is exported"
    );

    // Three tokens with a TTL: three leases registered.
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let r = srv
            .put("auth/token/create", &root, json!({"ttl": "1h"}))
            .await;
        r.assert_status(200);
        tokens.push(r.body["auth"]["client_token"].as_str().unwrap().to_string());
    }
    let (leases1, _, t1) = read().await;
    assert_eq!(leases1, leases0 + 3.0);
    assert_eq!(t1[0], t0[0] + 3.0, "register-auth per token with a lease");

    // One renewed, one revoked.
    srv.put("auth/token/renew-self", &tokens[0], json!({}))
        .await
        .assert_status(200);
    srv.put("auth/token/revoke", &root, json!({"token": tokens[1]}))
        .await
        .assert_status(204);
    let (leases2, _, t2) = read().await;
    assert_eq!(leases2, leases0 + 2.0);
    assert_eq!(t2[1], t1[1] + 1.0, "renew-token");
    assert_eq!(t2[2], t1[2] + 1.0, "revoke-by-token");

    // Both left expire: the sweep revokes them, the gauge drops back.
    srv.clock.advance(std::time::Duration::from_secs(2 * 3600));
    srv.core.sweep_expired(100).await.unwrap();
    let (leases3, _, t3) = read().await;
    assert_eq!(leases3, leases0);
    assert_eq!(t3[3], t2[3] + 2.0, "revoke per expired lease");

    // The count is read from storage again when the node (re)gains the active role.
    srv.put("auth/token/create", &root, json!({"ttl": "1h"}))
        .await
        .assert_status(200);
    srv.core.step_down();
    srv.core.step_up().await.unwrap();
    let (leases4, _, _) = read().await;
    assert_eq!(leases4, leases0 + 1.0);
}

#[tokio::test]
async fn seal_and_unseal_timers_count_each_transition() {
    let (srv, unseal_key) = dev_server(CoreConfig::default(), HttpOptions::default()).await;
    let names = [
        "vault_core_unseal_count",
        "vault_core_post_unseal_count",
        "vault_core_pre_seal_count",
        "vault_core_seal_internal_count",
        "vault_core_seal_with_request_count",
        "vault_core_step_down_count",
    ];
    let read = async |srv: &TestServer| {
        let f = parse(scrape(srv, Some(&srv.root)).await).await;
        names.map(|n| sum(&f, n, &[]))
    };
    let before = read(&srv).await;
    // The dev start-up unsealed (one key share) and loaded what it serves.
    assert!(before[0] >= 1.0 && before[1] >= 1.0, "{before:?}");

    srv.put("sys/step-down", &srv.root, json!({}))
        .await
        .assert_status(204);
    srv.put("sys/seal", &srv.root, json!({}))
        .await
        .assert_status(204);
    let r = srv
        .req("PUT", "sys/unseal", None, Some(json!({"key": unseal_key})))
        .await;
    r.assert_status(200);
    assert_eq!(r.body["sealed"], false);
    let after = read(&srv).await;
    let delta: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(delta, vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0], "{names:?}");
}

/// Whether any family has a sample called `name`.
fn has_sample(families: &BTreeMap<String, Family>, name: &str) -> bool {
    families
        .values()
        .any(|f| f.samples.iter().any(|(n, _, _)| n == name))
}

/// `prefix_filter` and `filter_default` as go-metrics applies them: the longest matching rule
/// decides (a block wins a tie), names no rule matches follow `filter_default`.
#[tokio::test]
async fn prefix_filter_keeps_and_drops_metrics_by_name() {
    let telemetry = Telemetry {
        prefix_filter: vec![
            ("vault.token".into(), false),
            ("vault.token.creation".into(), true),
            ("vault.barrier".into(), false),
        ],
        ..Telemetry::dev()
    };
    let srv = server_with(telemetry, HttpOptions::default()).await;
    approle_login(&srv).await;
    srv.put("secret/data/f", &srv.root, json!({"data": {"k": "v"}}))
        .await
        .assert_status(200);
    let families = parse(scrape(&srv, None).await).await;
    let has = |name: &str| has_sample(&families, name);
    assert!(
        has("vault_token_creation_total"),
        "the more specific + rule"
    );
    assert!(!has("vault_token_count"), "dropped by -vault.token");
    assert!(!has("vault_barrier_put_count"), "dropped by -vault.barrier");
    assert!(
        has("vault_core_handle_request_count"),
        "no rule: filter_default"
    );
}

/// `metrics_prefix` replaces the leading `vault` of every Vault name (Coffer's own stay).
#[tokio::test]
async fn metrics_prefix_renames_the_vault_metrics() {
    let telemetry = Telemetry {
        metrics_prefix: Some("bank".into()),
        ..Telemetry::dev()
    };
    let srv = server_with(telemetry, HttpOptions::default()).await;
    srv.put("secret/data/p", &srv.root, json!({"data": {"k": "v"}}))
        .await
        .assert_status(200);
    let families = parse(scrape(&srv, None).await).await;
    let has = |name: &str| has_sample(&families, name);
    assert!(has("bank_core_handle_request_count"));
    assert!(has("bank_core_unsealed"));
    assert!(!has("vault_core_handle_request_count"));
    assert!(has("coffer_http_requests_total"));
    // The JSON format shows the same names, with dots.
    let r = srv.get("sys/metrics", &srv.root).await;
    r.assert_status(200);
    let samples = r.body["Samples"].as_array().unwrap();
    assert!(
        samples
            .iter()
            .any(|s| s["Name"] == "bank.core.handle_request"),
        "{}",
        r.text
    );
}

/// `vault_core_check_token` and `vault_core_fetch_acl_and_token`: once per authenticated request
/// that reaches the ACL, denied ones included; a login (no token) has none.
#[tokio::test]
async fn token_check_timers_count_authenticated_requests() {
    let srv = TestServer::start().await;
    let counts = async || {
        let families = parse(scrape(&srv, None).await).await;
        [
            "vault_core_check_token_count",
            "vault_core_fetch_acl_and_token_count",
        ]
        .map(|n| sum(&families, n, &[]))
    };
    let reader = srv.token_with(&["default"], json!({})).await;
    let before = counts().await;
    for i in 0..3 {
        srv.put(
            &format!("secret/data/c{i}"),
            &srv.root,
            json!({"data": {"k": "v"}}),
        )
        .await
        .assert_status(200);
    }
    srv.get("secret/data/c0", &reader).await.assert_status(403);
    approle_login(&srv).await;
    let after = counts().await;
    // Three writes and one denied read, plus the approle setup's four authenticated requests
    // (enable, role, role-id, secret-id); its login has no token (the scrapes need none here).
    assert_eq!(after[0] - before[0], 8.0, "{before:?} -> {after:?}");
    assert_eq!(after[1] - before[1], 8.0, "{before:?} -> {after:?}");
}

/// OpenBao's listener keys, from a config file through the real binary: `disallow_metrics`
/// refuses the endpoint (403 text), `metrics_only` serves nothing else (404 text), and
/// `metrics_path` moves it (here to `/metrics`, query kept). Other listeners are untouched.
#[tokio::test]
async fn listener_keys_disallow_or_dedicate_a_listener_to_metrics() {
    let (mut child, lines, _home) = spawn_dev(
        "root",
        Some(
            r#"
listener "tcp" {
  address = "127.0.0.1:0"
  tls_disable = true
  telemetry {
    disallow_metrics = true
  }
}
listener "tcp" {
  address = "127.0.0.1:0"
  tls_disable = true
  telemetry {
    metrics_only = "true"
    metrics_path = "/metrics"
    unauthenticated_metrics_access = true
  }
}
"#,
        ),
        Stdio::null(),
    )
    .await;
    let (dev, closed, dedicated) = (
        listener_addr(&lines, 1),
        listener_addr(&lines, 2),
        listener_addr(&lines, 3),
    );
    let client = reqwest::Client::new();
    let get = |url: String| {
        let rb = client.get(url).header("X-Vault-Token", "root");
        async move {
            let r = rb.send().await.expect("send");
            let status = r.status().as_u16();
            let kind = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (status, kind, r.text().await.expect("body"))
        }
    };
    let text = "text/plain; charset=utf-8".to_owned();
    assert_eq!(
        get(format!("{closed}/v1/sys/metrics?format=prometheus")).await,
        (
            403,
            text.clone(),
            "metrics endpoint is disabled for this listener\n".into()
        )
    );
    let (status, _, _) = get(format!("{closed}/v1/sys/health")).await;
    assert_eq!(status, 200);
    let (status, _, body) = get(format!("{dedicated}/metrics?format=prometheus")).await;
    assert_eq!(status, 200, "{body}");
    assert!(parse(body).await.contains_key("vault_core_unsealed"));
    for other in ["/v1/sys/metrics", "/v1/sys/health", "/v1/secret/data/x"] {
        assert_eq!(
            get(format!("{dedicated}{other}")).await,
            (
                404,
                text.clone(),
                "this listener only serves the metrics endpoint\n".into()
            ),
            "{other}"
        );
    }
    let (status, _, _) = get(format!("{dev}/v1/sys/metrics")).await;
    assert_eq!(status, 200);
    let _ = child.kill();
    let _ = child.wait();
}

/// `SIGUSR1` writes the in-memory metrics to stderr as Vault's go-metrics sink does: gauges
/// (`[G]`) with their labels flattened into the name, samples (`[S]`) with their aggregate.
#[tokio::test]
async fn sigusr1_dumps_the_metrics_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let stderr_path = dir.path().join("stderr.log");
    let stderr = Stdio::from(std::fs::File::create(&stderr_path).unwrap());
    let (mut child, lines, _home) = spawn_dev("usr1-root-canary", None, stderr).await;
    let addr = listener_addr(&lines, 1);
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{addr}/v1/secret/data/nothing"))
        .header("X-Vault-Token", "usr1-root-canary")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let sent = Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let dump = loop {
        let text = std::fs::read_to_string(&stderr_path).unwrap();
        if text.contains("[S] 'vault.core.handle_request': Count: ")
            || std::time::Instant::now() > until
        {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let unsealed = dump
        .lines()
        .find(|l| l.contains("][G] 'vault.core.unsealed;cluster="))
        .unwrap_or_else(|| panic!("no unsealed gauge in {dump}"));
    assert!(
        unsealed.starts_with('[') && unsealed.ends_with("': 1.000"),
        "{unsealed}"
    );
    assert!(
        dump.lines()
            .any(|l| l.contains("][S] 'vault.core.handle_request': Count: ")),
        "{dump}"
    );
    assert!(!dump.contains("usr1-root-canary"));
}

/// 500 mounts, each written, read and listed: the Prometheus output stays within 2,000 series
/// (Vault's route timers alone would be 7,500 here). The first (operation, mount) pairs keep
/// Vault's per-mount timer names; later ones share `vault_route_<op>_other`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_busy_mounts_stay_within_the_series_budget() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for shard in 0..8 {
        let (c, base, root) = (srv.client.clone(), srv.url(""), root.clone());
        tasks.spawn(async move {
            let call = |method: &str, path: String, body: Option<Value>| {
                let mut rb = c
                    .request(method.parse().unwrap(), format!("{base}{path}"))
                    .header("X-Vault-Token", &root);
                if let Some(b) = body {
                    rb = rb.json(&b);
                }
                async move { rb.send().await.unwrap().status().as_u16() }
            };
            for i in (shard..500).step_by(8) {
                let m = format!("team{i}");
                let st = call(
                    "POST",
                    format!("sys/mounts/{m}"),
                    Some(json!({"type": "kv"})),
                )
                .await;
                assert_eq!(st, 204);
                assert_eq!(
                    call("POST", format!("{m}/app"), Some(json!({"k": "v"}))).await,
                    204
                );
                assert_eq!(call("GET", format!("{m}/app"), None).await, 200);
                assert_eq!(call("LIST", format!("{m}/"), None).await, 200);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let text = scrape(&srv, None).await;
    let series = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert!(series <= 2000, "{series} series");
    let families = parse(text).await;
    for op in ["read", "list", "create"] {
        assert!(
            families.contains_key(&format!("vault_route_{op}_other")),
            "{op}: {:?}",
            families
                .keys()
                .filter(|k| k.starts_with("vault_route"))
                .count()
        );
    }
    let named = families
        .keys()
        .filter(|k| k.starts_with("vault_route_") && !k.ends_with("_other"))
        .count();
    assert!(named >= 250, "{named} per-mount route timers");
}

/// A mount costs tens of kilobytes, not hundreds: the compiled path patterns are shared by
/// every mount of a backend type. 300 kv mounts on the real binary grow its resident memory
/// (`vault_runtime_alloc_bytes`) by well under 30 MB (65 MB before patterns were shared).
#[tokio::test]
async fn mounts_share_their_compiled_path_tables() {
    let (mut child, lines, _home) = spawn_dev("root", None, Stdio::null()).await;
    let addr = listener_addr(&lines, 1);
    let client = reqwest::Client::new();
    let resident = || {
        let (c, addr) = (client.clone(), addr.clone());
        async move {
            let text = c
                .get(format!("{addr}/v1/sys/metrics?format=prometheus"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("vault_runtime_alloc_bytes "))
                .and_then(|v| v.parse::<f64>().ok())
                .expect("alloc_bytes")
        }
    };
    // One mount first, so that what every process allocates once is not counted.
    let mount = |i: usize| {
        let (c, addr) = (client.clone(), addr.clone());
        async move {
            let r = c
                .post(format!("{addr}/v1/sys/mounts/team{i}"))
                .header("X-Vault-Token", "root")
                .json(&json!({"type": "kv", "options": {"version": "2"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    };
    mount(0).await;
    let before = resident().await;
    for i in 1..=300 {
        mount(i).await;
    }
    let grown = resident().await - before;
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        grown < 30.0 * 1024.0 * 1024.0,
        "300 mounts took {grown} bytes"
    );
}

/// `promtool check metrics` (Prometheus's own linter, `PROMTOOL`, installed by the test
/// command) finds nothing to fix in Coffer's own families (`coffer_*`, `process_*`). Vault's
/// compatibility names keep Vault's four known findings (hashicorp/vault#6800), and no other.
#[tokio::test]
async fn promtool_finds_nothing_to_fix_in_coffers_own_families() {
    let promtool = std::env::var("PROMTOOL").expect("PROMTOOL (scripts/test.sh installs it)");
    let srv = TestServer::start().await;
    srv.post("secret/data/app", &srv.root, json!({"data": {"k": "v"}}))
        .await
        .assert_status(200);
    srv.get("secret/data/app", &srv.root)
        .await
        .assert_status(200);
    srv.get("secret/data/none", &srv.root)
        .await
        .assert_status(404);
    // The token count gauges come from the background computation.
    scrape_until(&srv, |f| {
        f.contains_key("vault_token_count") && f.contains_key("vault_secret_kv_count")
    })
    .await;
    let text = scrape(&srv, None).await;
    let lint = |input: String| {
        let mut child = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run promtool");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let mut findings: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        findings.sort();
        (out.status.success(), findings)
    };
    // Coffer's own families alone.
    let mut own = String::new();
    let mut keep = false;
    for line in text.lines() {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        if !line.starts_with('#') || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            keep = name.starts_with("coffer_") || name.starts_with("process_");
        }
        if keep {
            own.push_str(line);
            own.push('\n');
        }
    }
    assert!(own.contains("coffer_http_requests_total"), "{own}");
    assert!(own.contains("process_open_fds"), "{own}");
    let (ok, findings) = lint(own);
    assert!(ok && findings.is_empty(), "{findings:#?}");
    let (_, findings) = lint(text);
    assert_eq!(
        findings,
        [
            "vault_core_response_status_code counter metrics should have \"_total\" suffix",
            "vault_runtime_total_gc_pause_ns metric names should not contain abbreviated units",
            "vault_secret_kv_count non-histogram and non-summary metrics should not have \"_count\" suffix",
            "vault_token_count non-histogram and non-summary metrics should not have \"_count\" suffix",
            "vault_token_creation counter metrics should have \"_total\" suffix",
        ]
    );
}

/// The other usage gauges: `vault_secret_kv_count` per kv mount (kv-v2 keys, however many
/// versions; kv-v1 keys) and `vault_identity_num_entities` (entities that logged in), computed
/// in the background with the token counts.
#[tokio::test]
async fn kv_and_entity_usage_gauges_count_keys_and_entities() {
    let telemetry = Telemetry {
        usage_gauge_period_secs: Some(1),
        ..Telemetry::dev()
    };
    let srv = server_with(telemetry, HttpOptions::default()).await;
    let root = srv.root.clone();
    for (key, versions) in [("a", 1), ("b", 3), ("c/d", 1)] {
        for v in 0..versions {
            srv.post(
                &format!("secret/data/{key}"),
                &root,
                json!({"data": {"v": v}}),
            )
            .await
            .assert_status(200);
        }
    }
    srv.post("sys/mounts/old", &root, json!({"type": "kv"}))
        .await
        .assert_status(204);
    for key in ["x", "y/z"] {
        srv.post(&format!("old/{key}"), &root, json!({"k": "v"}))
            .await
            .assert_status(204);
    }
    approle_login(&srv).await;
    let cluster = cluster_name(&srv).await;
    let kv = |mount: &'static str| {
        let cluster = cluster.clone();
        move |f: &BTreeMap<String, Family>| {
            sum(
                f,
                "vault_secret_kv_count",
                &[
                    ("mount_point", mount),
                    ("cluster", cluster.as_str()),
                    ("namespace", "root"),
                ],
            )
        }
    };
    let (secret, old) = (kv("secret/"), kv("old/"));
    let families = scrape_until(&srv, |f| {
        secret(f) == 3.0 && old(f) == 2.0 && sum(f, "vault_identity_num_entities", &[]) >= 1.0
    })
    .await;
    assert_eq!(secret(&families), 3.0);
    assert_eq!(old(&families), 2.0);
    assert_eq!(sum(&families, "vault_identity_num_entities", &[]), 1.0);
    // A deleted key leaves the count at the next computation.
    srv.delete("secret/metadata/b", &root)
        .await
        .assert_status(204);
    let families = scrape_until(&srv, |f| secret(f) == 2.0).await;
    assert_eq!(secret(&families), 2.0);
}

/// A wrapping token counts in `vault_token_creation` as Vault counts it: auth method
/// `response_wrapping`, in the mount of the request whose response it wraps; before, it
/// counted as one of the token store's.
#[tokio::test]
async fn wrapping_tokens_count_as_response_wrapping_in_the_requests_mount() {
    let srv = TestServer::start().await;
    let root = srv.root.clone();
    srv.post("secret/data/app", &root, json!({"data": {"k": "v"}}))
        .await
        .assert_status(200);
    let cluster = cluster_name(&srv).await;
    let store = [("auth_method", "token"), ("cluster", cluster.as_str())];
    let before = parse(scrape(&srv, None).await).await;
    for (method, path) in [("POST", "sys/wrapping/wrap"), ("GET", "secret/data/app")] {
        let mut rb = srv
            .client
            .request(method.parse().unwrap(), srv.url(path))
            .header("X-Vault-Token", &root)
            .header("X-Vault-Wrap-TTL", "2m");
        if method == "POST" {
            rb = rb.json(&json!({"a": "b"}));
        }
        let r = TestServer::finish(rb).await;
        r.assert_status(200);
        assert!(r.body["wrap_info"]["token"].is_string(), "{}", r.body);
    }
    let after = parse(scrape(&srv, None).await).await;
    for mount in ["sys/", "secret/"] {
        let wrapped = [
            ("auth_method", "response_wrapping"),
            ("mount_point", mount),
            ("cluster", cluster.as_str()),
            ("namespace", "root"),
            ("token_type", "service"),
        ];
        assert_eq!(
            sum(&after, "vault_token_creation_total", &wrapped),
            1.0,
            "{mount}"
        );
    }
    assert_eq!(
        sum(&after, "vault_token_creation_total", &store),
        sum(&before, "vault_token_creation_total", &store)
    );
}

/// Clients without a token cannot multiply series: any method on any mount, and every status
/// `sys/health?activecode=` lets them pick (100 to 599), leave Coffer's latency histogram at
/// most mount types × status classes, Vault's response counter at Coffer's own codes plus one
/// `other` per class, and the whole output well under the contract's 2,000 series.
#[tokio::test]
async fn unauthenticated_traffic_cannot_multiply_series() {
    let srv = TestServer::start().await;
    let methods = [
        "GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "LIST", "OPTIONS", "FOO",
    ];
    let paths = [
        "sys/mounts",
        "secret/data/x",
        "auth/token/lookup-self",
        "cubbyhole/x",
        "identity/entity/id",
        "nope/x",
        "auth/approle/login",
    ];
    for method in methods {
        for path in paths {
            for token in [None, Some("hvs.bogus")] {
                let mut rb = srv
                    .client
                    .request(method.parse().unwrap(), srv.url(path))
                    .body("{}");
                if let Some(t) = token {
                    rb = rb.header("X-Vault-Token", t);
                }
                let r = rb.send().await.unwrap();
                assert!(r.status().as_u16() >= 200, "{method} {path}");
            }
        }
    }
    for code in 100..600 {
        let r = srv
            .client
            .get(srv.url(&format!("sys/health?activecode={code}")))
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() >= 100);
    }
    let text = scrape(&srv, None).await;
    let series = |prefix: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.starts_with(prefix))
            .count()
    };
    assert!(
        series("coffer_request_duration_seconds") <= 7 * 5 * 15,
        "{text}"
    );
    assert!(
        series("vault_core_response_status_code") <= 20 + 10,
        "{text}"
    );
    let total = text.lines().filter(|l| !l.starts_with('#')).count();
    assert!(total <= 2000, "{total} series");
}

/// Kills the process with this id when dropped while still set (a test that panics before it
/// stopped its server).
struct Reaper(Option<u32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}
