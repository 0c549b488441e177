//! The transport's defences over real sockets: connection timeouts (idle keep-alive, half-sent
//! headers and bodies, plain and TLS), many idle connections, OpenBao's and Vault's JSON limits,
//! plain HTTP sent to a TLS listener, header size, and dot segments / control characters in paths.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestServer;
use coffer::config::ServerConfig;

/// A production-mode server (`coffer server -config`) started from a listener stanza.
struct ConfigServer {
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), String>>,
    _dir: tempfile::TempDir,
}

impl ConfigServer {
    /// `settings` go into the listener block; with `tls`, a generated certificate is used.
    async fn start(settings: &str, tls: bool) -> ConfigServer {
        let dir = tempfile::tempdir().unwrap();
        let tls_lines = if tls {
            let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
            let cert_file = dir.path().join("cert.pem");
            let key_file = dir.path().join("key.pem");
            std::fs::write(&cert_file, cert.cert.pem()).unwrap();
            std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
            format!(
                "tls_cert_file = {:?}\ntls_key_file = {:?}",
                cert_file.display().to_string(),
                key_file.display().to_string()
            )
        } else {
            "tls_disable = true".to_owned()
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let text = format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\naddress = \"127.0.0.1:{port}\"\n{tls_lines}\n{settings}\n}}\n"
        );
        let config = ServerConfig::parse(&text, "t.hcl").unwrap();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(coffer::production::run(config, None, rx));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        for _ in 0..200 {
            if TcpStream::connect(addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        ConfigServer {
            addr,
            stop,
            task,
            _dir: dir,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(40), self.task).await;
    }
}

/// Reads until the server closes the connection (EOF or reset); panics if it is still open
/// after `limit`. Returns the bytes received and the time it took.
async fn wait_for_close(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    let closed = tokio::time::timeout(limit, read_all).await;
    assert!(
        closed.is_ok(),
        "the server kept the connection open for {limit:?}"
    );
    (received, started.elapsed())
}

const HEALTH: &[u8] = b"GET /v1/sys/health HTTP/1.1\r\nHost: coffer\r\n\r\n";

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_http_idle_timeout() {
    let srv = ConfigServer::start("http_idle_timeout = \"1s\"", false).await;
    let mut conn = TcpStream::connect(srv.addr).await.unwrap();
    conn.write_all(HEALTH).await.unwrap();
    let (received, took) = wait_for_close(&mut conn, Duration::from_secs(4)).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 "), "{text}");
    // The connection was kept alive after the response, then closed by the idle timeout.
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    srv.stop().await;
}

#[tokio::test]
async fn silent_and_half_sent_headers_are_closed_after_http_read_header_timeout() {
    let srv = ConfigServer::start("http_read_header_timeout = \"1s\"", false).await;
    let mut silent = TcpStream::connect(srv.addr).await.unwrap();
    let mut half = TcpStream::connect(srv.addr).await.unwrap();
    half.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: cof")
        .await
        .unwrap();
    let (received, _) = wait_for_close(&mut silent, Duration::from_secs(4)).await;
    assert_eq!(received, b"");
    wait_for_close(&mut half, Duration::from_secs(4)).await;
    srv.stop().await;
}

#[tokio::test]
async fn half_sent_bodies_are_closed_after_http_read_timeout() {
    let srv = ConfigServer::start("http_read_timeout = \"1s\"", false).await;
    let mut conn = TcpStream::connect(srv.addr).await.unwrap();
    conn.write_all(
        b"PUT /v1/secret/data/x HTTP/1.1\r\nHost: coffer\r\nContent-Length: 100\r\n\r\n{\"data\":",
    )
    .await
    .unwrap();
    wait_for_close(&mut conn, Duration::from_secs(4)).await;
    srv.stop().await;
}

#[tokio::test]
async fn tls_listeners_close_silent_connections_too() {
    let srv = ConfigServer::start("http_read_header_timeout = \"1s\"", true).await;
    let mut silent = TcpStream::connect(srv.addr).await.unwrap();
    let mut half_hello = TcpStream::connect(srv.addr).await.unwrap();
    half_hello
        .write_all(&[0x16, 0x03, 0x01, 0x02])
        .await
        .unwrap();
    wait_for_close(&mut silent, Duration::from_secs(4)).await;
    wait_for_close(&mut half_hello, Duration::from_secs(4)).await;
    srv.stop().await;
}

#[tokio::test]
async fn plain_http_to_a_tls_listener_gets_a_400_like_vault() {
    let srv = ConfigServer::start("", true).await;
    // Raw: Go's exact bytes, then the connection is closed.
    let mut conn = TcpStream::connect(srv.addr).await.unwrap();
    conn.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: coffer\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = wait_for_close(&mut conn, Duration::from_secs(5)).await;
    assert_eq!(
        String::from_utf8(answer).unwrap(),
        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    );
    // An HTTP client sees a 400 with that body, for each method Vault's clients use.
    let plain = reqwest::Client::new();
    for method in [
        "GET", "PUT", "POST", "DELETE", "LIST", "HEAD", "PATCH", "OPTIONS",
    ] {
        let r = plain
            .request(
                method.parse().unwrap(),
                format!("http://{}/v1/secret/data/x", srv.addr),
            )
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{method}");
        let body = r.text().await.unwrap();
        if method != "HEAD" {
            assert_eq!(
                body, "Client sent an HTTP request to an HTTPS server.\n",
                "{method}"
            );
        }
    }
    // A TLS client is still served.
    let tls = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = tls
        .get(format!("https://{}/v1/sys/seal-status", srv.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_idle_connections_do_not_lock_out_other_clients() {
    coffer::http::raise_open_files_limit();
    let srv = TestServer::start().await;
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    for _ in 0..3 {
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            srv.req("GET", "sys/health", None, None),
        )
        .await
        .expect("a legitimate client is served");
        r.assert_status(200);
    }
    // The idle connections are still open (the defaults give them 10 s), and still served.
    let mut one = idle.pop().unwrap();
    one.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 12];
    one.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
}

/// The issue's lock-out, scaled down: the real binary under `ulimit -n 48` is flooded with 80
/// idle connections, more than it has file descriptors. It must keep accepting (backing off on
/// EMFILE), close the idle ones after the header timeout, and serve a legitimate client.
#[tokio::test]
async fn a_server_out_of_file_descriptors_recovers_and_serves_new_clients() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("c.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\naddress = \"127.0.0.1:{port}\"\ntls_disable = true\nhttp_read_header_timeout = \"1s\"\n}}\n"
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -n 48 && exec \"$0\" server -config=\"$1\"",
            env!("CARGO_BIN_EXE_coffer"),
        ])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut up = false;
    for _ in 0..500 {
        if let Ok(mut probe) = TcpStream::connect(addr).await {
            probe.write_all(HEALTH).await.unwrap();
            let mut buf = [0u8; 8];
            up = probe.read_exact(&mut buf).await.is_ok();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "server did not start");
    let mut idle = Vec::new();
    for _ in 0..80 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 9];
    let served = tokio::time::timeout(Duration::from_secs(30), client.read_exact(&mut buf)).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        matches!(served, Ok(Ok(_))),
        "a client was locked out: {served:?}"
    );
    assert_eq!(&buf, b"HTTP/1.1 ");
}

// ---- JSON complexity limits (OpenBao's max_request_json_memory / max_request_json_strings) ----

const TOO_MANY_STRINGS: &str =
    "refused JSON input due to high complexity: exceeded maximum number of strings";
const TOO_MUCH_MEMORY: &str =
    "refused JSON input due to high complexity: exceeded maximum estimated memory limits";

/// Sends `body` unauthenticated: 403 means it was decoded and reached the token check.
async fn put_raw(srv: &TestServer, body: String) -> crate::common::Resp {
    put_raw_to(srv, "secret/data/x", body).await
}

async fn put_raw_to(srv: &TestServer, path: &str, body: String) -> crate::common::Resp {
    let rb = srv.client.put(srv.url(path)).body(body);
    TestServer::finish(rb).await
}

/// `{"a":[0,0,...]}` with `n` zeros: OpenBao's estimate is 88 + 33 + 40 + 24 n bytes.
fn zeros(n: usize) -> String {
    let mut s = String::with_capacity(n * 2 + 8);
    s.push_str("{\"a\":[");
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('0');
    }
    s.push_str("]}");
    s
}

#[tokio::test]
async fn json_bodies_over_openbaos_default_limits_are_refused_before_authentication() {
    let srv = TestServer::start().await;
    // 500 keys with string values: exactly the 1000 strings allowed.
    let mut obj: serde_json::Map<String, Value> = (0..500)
        .map(|i| (format!("k{i}"), Value::from("v")))
        .collect();
    put_raw(&srv, Value::Object(obj.clone()).to_string())
        .await
        .assert_status(403);
    obj.insert("z".into(), json!(0));
    let r = put_raw(&srv, Value::Object(obj).to_string()).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec![TOO_MANY_STRINGS]);

    // Vault's array limit (10,000 elements) stops the 31 MiB body of the issue first.
    let r = put_raw(&srv, zeros((31 << 20) / 2 - 8)).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec![TOO_MANY_ELEMENTS]);

    // 100,000 levels of nesting are refused, not a stack overflow.
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let r = put_raw(&srv, deep).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec![TOO_DEEP]);
    // The limits apply to authenticated requests too, and normal bodies still work.
    let r = srv
        .put("secret/data/x", &srv.root, json!({"data": {"k": "v"}}))
        .await;
    r.assert_status(200);
}

#[tokio::test]
async fn openbaos_memory_limit_at_and_over_its_default() {
    // Without Vault's array limit, the memory estimate is what stops a long array.
    let srv = ConfigServer::start("max_json_array_element_count = -1", false).await;
    let client = reqwest::Client::new();
    let put = |body: String| {
        client
            .put(format!("http://{}/v1/secret/data/x", srv.addr))
            .body(body)
            .send()
    };
    // 34,078,720 bytes (32 MiB + 512 KiB) of estimated memory; a sealed server answers a
    // decoded body with 503.
    assert_eq!(put(zeros(1_419_939)).await.unwrap().status(), 503);
    let r = put(zeros(1_419_940)).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"errors": [TOO_MUCH_MEMORY]}));
    let r = put(zeros((31 << 20) / 2 - 8)).await.unwrap();
    assert_eq!(r.status(), 400);
    srv.stop().await;
}

// ---- Vault's JSON limits (max_json_depth, _string_value_length, _object_entry_count,
// _array_element_count) ----

const TOO_DEEP: &str =
    "refused JSON input due to high complexity: JSON input exceeds allowed nesting depth";
const TOO_LONG: &str =
    "refused JSON input due to high complexity: JSON string value exceeds allowed length";
const TOO_MANY_ENTRIES: &str =
    "refused JSON input due to high complexity: JSON object exceeds allowed entry count";
const TOO_MANY_ELEMENTS: &str =
    "refused JSON input due to high complexity: JSON array exceeds allowed element count";

/// `{"a":[[...[]...]]}`: `depth` levels of nesting, the outer object included.
fn nested(depth: usize) -> String {
    let n = depth - 1;
    format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n))
}

/// `{"0":0,"1":0,...}` with `n` entries.
fn entries(n: usize) -> String {
    let e: Vec<String> = (0..n).map(|i| format!("\"{i}\":0")).collect();
    format!("{{{}}}", e.join(","))
}

/// `{"a":"xxx..."}` with a value of `n` bytes.
fn long_string(n: usize) -> String {
    format!("{{\"a\":\"{}\"}}", "x".repeat(n))
}

#[tokio::test]
async fn vaults_json_limits_at_and_over_their_defaults_before_authentication() {
    let srv = TestServer::start().await;
    // Arrays: 10,000 elements (403: decoded, then refused for want of a token).
    put_raw(&srv, zeros(10_000)).await.assert_status(403);
    let r = put_raw(&srv, zeros(10_001)).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec![TOO_MANY_ELEMENTS]);
    // Strings: 1 MiB, key or value.
    put_raw(&srv, long_string(1 << 20)).await.assert_status(403);
    let r = put_raw(&srv, long_string((1 << 20) + 1)).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec![TOO_LONG]);
    let long_key = format!("{{\"{}\":0}}", "k".repeat((1 << 20) + 1));
    let r = put_raw(&srv, long_key).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec![TOO_LONG]);
    // Depth: Vault's default is 500, but the decoder stops at 127 levels whatever the setting.
    put_raw(&srv, nested(127)).await.assert_status(403);
    let r = put_raw(&srv, nested(128)).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec![TOO_DEEP]);
    let r = put_raw(&srv, nested(501)).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec![TOO_DEEP]);
    // Objects: at the defaults OpenBao's 1000 strings (keys count) come first.
    let r = put_raw(&srv, entries(10_001)).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec![TOO_MANY_STRINGS]);
    // Root is refused the same way.
    let rb = srv
        .client
        .put(srv.url("secret/data/x"))
        .header("X-Vault-Token", &srv.root)
        .body(zeros(10_001));
    let r = TestServer::finish(rb).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec![TOO_MANY_ELEMENTS]);
}

#[tokio::test]
async fn vaults_object_entry_limit_at_and_over_its_default() {
    let srv = ConfigServer::start("max_request_json_strings = -1", false).await;
    let client = reqwest::Client::new();
    let put = |body: String| {
        client
            .put(format!("http://{}/v1/secret/data/x", srv.addr))
            .body(body)
            .send()
    };
    assert_eq!(put(entries(10_000)).await.unwrap().status(), 503);
    let r = put(entries(10_001)).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"errors": [TOO_MANY_ENTRIES]}));
    srv.stop().await;
}

#[tokio::test]
async fn vaults_json_limits_are_configurable_in_the_listener() {
    let srv = ConfigServer::start(
        "max_json_depth = 3\nmax_json_string_value_length = 5\n\
         max_json_object_entry_count = 2\nmax_json_array_element_count = 3",
        false,
    )
    .await;
    let client = reqwest::Client::new();
    // Sealed server: a decoded body reaches the seal check (503).
    for (ok, over, why) in [
        (nested(3), nested(4), TOO_DEEP),
        (long_string(5), long_string(6), TOO_LONG),
        (entries(2), entries(3), TOO_MANY_ENTRIES),
        (
            "{\"a\":[1,2,3]}".to_owned(),
            "{\"a\":[1,2,3,4]}".to_owned(),
            TOO_MANY_ELEMENTS,
        ),
    ] {
        let url = format!("http://{}/v1/secret/data/x", srv.addr);
        let r = client.put(&url).body(ok.clone()).send().await.unwrap();
        assert_eq!(r.status(), 503, "{ok}");
        let r = client.put(&url).body(over.clone()).send().await.unwrap();
        assert_eq!(r.status(), 400, "{over}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"errors": [why]}), "{over}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn unauthenticated_sys_endpoints_apply_the_json_limits() {
    let srv = TestServer::start().await;
    let body = zeros(10_001).replace("{\"a\":", "{\"key\":");
    for path in ["sys/unseal", "sys/init"] {
        let r = put_raw_to(&srv, path, body.clone()).await;
        r.assert_status(400);
        assert_eq!(r.errors(), vec![TOO_MANY_ELEMENTS], "{path}");
        let r = put_raw_to(&srv, path, nested(128)).await;
        r.assert_status(400);
        assert_eq!(r.errors(), vec![TOO_DEEP], "{path}");
    }
}

#[tokio::test]
async fn json_limits_are_configurable_in_the_listener() {
    let srv = ConfigServer::start(
        "max_request_json_strings = 3\nmax_request_json_memory = -1\nmax_json_array_element_count = -1",
        false,
    )
    .await;
    let client = reqwest::Client::new();
    let put = |body: &'static str| {
        client
            .put(format!("http://{}/v1/secret/data/x", srv.addr))
            .body(body)
            .send()
    };
    // Sealed server: a decoded body reaches the seal check (503).
    assert_eq!(put(r#"{"a":"b","c":1}"#).await.unwrap().status(), 503);
    let r = put(r#"{"a":"b","c":"d"}"#).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"errors": [TOO_MANY_STRINGS]}));
    let big = zeros(2_000_000);
    let r = client
        .put(format!("http://{}/v1/secret/data/x", srv.addr))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "memory limit disabled with -1");
    srv.stop().await;
}

// ---- dot segments and control characters in paths ----

/// Sends one raw HTTP/1.1 request (the path exactly as given) and returns the response text.
async fn raw(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: coffer\r\nX-Vault-Token: root\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let (received, _) = wait_for_close(&mut conn, Duration::from_secs(10)).await;
    String::from_utf8(received).unwrap()
}

fn status_and_location(resp: &str) -> (String, Option<String>) {
    let status = resp.lines().next().unwrap_or("").to_owned();
    let location = resp
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .map(str::to_owned);
    (status, location)
}

#[tokio::test]
async fn literal_dot_segments_redirect_to_the_cleaned_path_like_openbao() {
    let srv = TestServer::start().await;
    let data = r#"{"data":{"x":1}}"#;
    let cases = [
        ("PUT", "/v1/secret/data/a/../b", "/v1/secret/data/b"),
        ("PUT", "/v1/secret/data/a/./b", "/v1/secret/data/a/b"),
        ("PUT", "/v1/secret/data/a/..", "/v1/secret/data"),
        ("GET", "/../v1/sys/health", "/v1/sys/health"),
        ("LIST", "/v1/secret/metadata/a/../", "/v1/secret/metadata/"),
        (
            "GET",
            "/v1/secret/data/x/../b?list=true&a=1",
            "/v1/secret/data/b?list=true&a=1",
        ),
    ];
    for (method, path, want) in cases {
        let resp = raw(srv.addr, method, path, data).await;
        let (status, location) = status_and_location(&resp);
        assert_eq!(status, "HTTP/1.1 307 Temporary Redirect", "{path}: {resp}");
        assert_eq!(location.as_deref(), Some(want), "{path}");
    }
    let resp = raw(srv.addr, "GET", "/v1/a/../sys/health?x=1&y=2", "").await;
    assert!(
        resp.ends_with("<a href=\"/v1/sys/health?x=1&amp;y=2\">Temporary Redirect</a>.\n\n"),
        "{resp}"
    );
    // Nothing was written under a literal `..` or `.` key.
    srv.list("secret/metadata", &srv.root)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn encoded_dot_segments_and_control_characters_are_refused_like_openbao() {
    let srv = TestServer::start().await;
    for path in [
        "/v1/secret/data/a/%2e%2e/b",
        "/v1/secret/data/%2e",
        "/v1/secret/data/a/%2E%2E",
        "/v1/secret/data/a%2f..%2fb",
        "/v1/secret/data/..%2fb",
    ] {
        let resp = raw(srv.addr, "PUT", path, r#"{"data":{}}"#).await;
        assert!(resp.starts_with("HTTP/1.1 400 "), "{path}: {resp}");
        assert!(
            resp.ends_with("{\"errors\":[\"relative paths not supported\"]}\n")
                || resp.ends_with("{\"errors\":[\"relative paths not supported\"]}"),
            "{path}: {resp}"
        );
    }
    for path in [
        "/v1/secret/data/a%00b",
        "/v1/sys/health%00",
        "/v1/secret/data/a%0ab",
        "/v1/secret/data/a%7fb",
    ] {
        let resp = raw(srv.addr, "PUT", path, r#"{"data":{}}"#).await;
        assert!(resp.starts_with("HTTP/1.1 400 "), "{path}: {resp}");
        assert!(resp.ends_with("\r\n\r\n"), "empty body for {path}: {resp}");
    }
    // Dots inside a segment are ordinary characters.
    let r = srv
        .put("secret/data/a..b", &srv.root, json!({"data": {"x": 1}}))
        .await;
    r.assert_status(200);
    srv.list("secret/metadata", &srv.root)
        .await
        .assert_status(200);
}

// ---- request header size (Go's 1 MiB, plus its 4 KiB slack) ----

/// Sends `GET path` with one `X-Big` header of `n` bytes and returns the status line and how
/// long the answer took.
async fn with_big_header(addr: SocketAddr, path: &str, n: usize) -> (String, Duration) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: c\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(n)
    );
    let started = Instant::now();
    let _ = conn.write_all(req.as_bytes()).await;
    let (resp, _) = wait_for_close(&mut conn, Duration::from_secs(20)).await;
    let text = String::from_utf8_lossy(&resp);
    (
        text.lines().next().unwrap_or("").to_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn request_headers_over_1_mib_get_431_like_go() {
    let srv = TestServer::start().await;
    // Just under Go's 1 MiB + 4 KiB is served (hyper's default buffer refused anything over
    // ~400 KB; without small reads it let heads of over 1 MiB + 8 KiB through).
    let (status, _) = with_big_header(srv.addr, "/v1/sys/health", (1 << 20) + 4096 - 200).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    for n in [(1 << 20) + 8192, 2 << 20, 8 << 20] {
        let (status, took) = with_big_header(srv.addr, "/v1/sys/health", n).await;
        assert_eq!(
            status, "HTTP/1.1 431 Request Header Fields Too Large",
            "{n}"
        );
        assert!(took < Duration::from_secs(5), "{n}: {took:?}");
    }
    // A 2 MiB URL: 431 too; a 100 KB URL: 414 (the `http` crate's URI limit is 65534 bytes).
    let mut conn = TcpStream::connect(srv.addr).await.unwrap();
    let req = format!(
        "GET /v1/secret/data/{} HTTP/1.1\r\nHost: c\r\n\r\n",
        "a".repeat(2 << 20)
    );
    let _ = conn.write_all(req.as_bytes()).await;
    let (resp, _) = wait_for_close(&mut conn, Duration::from_secs(20)).await;
    assert!(
        resp.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    let long = format!("/v1/secret/data/{}", "a/".repeat(50_000));
    let resp = raw(srv.addr, "GET", &long, "").await;
    assert!(resp.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{resp}");
}

#[tokio::test]
async fn http2_request_headers_are_bounded_at_1_mib_too() {
    let srv = ConfigServer::start("", true).await;
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let get = |n: usize| {
        client
            .get(format!("https://{}/v1/sys/seal-status", srv.addr))
            .header("X-Big", "b".repeat(n))
            .send()
    };
    // hyper's HTTP/2 default was 16 KiB.
    let r = get(100_000).await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert_eq!(get((1 << 20) - 4096).await.unwrap().status(), 200);
    assert_eq!(get((1 << 20) + 8192).await.unwrap().status(), 431);
    // Far over, the h2 crate ends the connection (too many CONTINUATION frames) instead.
    let far = get(2 << 20).await;
    assert!(far.as_ref().map_or(true, |r| r.status() == 431), "{far:?}");
    assert_eq!(get(10).await.unwrap().status(), 200);
    srv.stop().await;
}
