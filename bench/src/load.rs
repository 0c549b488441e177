//! The load generator: fixtures made through the HTTP API, the scenarios, and load windows
//! (N persistent connections on one current-thread runtime, bounded by time or request count,
//! every latency kept so percentiles are exact; server CPU and RSS read from `/proc`).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::R;
use crate::client::{Conn, build_request};

pub const JENKINS_POLICY: &str = r#"# Read-only permission on 'secret/data/mysql/*' path
path "secret/data/mysql/*" {
  capabilities = [ "read" ]
}
"#;
pub const ROOT: &str = "root";
pub const READ_PATH: &str = "/v1/secret/data/mysql/db";

#[derive(Clone, Debug)]
pub struct Fixtures {
    pub policy_token: String,
    pub role_id: String,
    pub secret_id: String,
    /// The RS256 token of the `jwt-login` scenario.
    pub jwt: String,
}

pub fn expect(what: &str, got: (u16, Value), want: &[u16]) -> R<Value> {
    if want.contains(&got.0) {
        Ok(got.1)
    } else {
        Err(format!("{what}: status {} body {}", got.0, got.1))
    }
}

pub fn str_at(v: &Value, ptr: &str) -> R<String> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("missing {ptr} in {v}"))
}

/// Creates the fixtures through the HTTP API (idempotent enough to run twice on one server).
pub async fn setup_fixtures(addr: &str) -> R<Fixtures> {
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
    // JWT: the same static public key on both servers (no network on the login path).
    let jwt = crate::jwt::fixture()?;
    let r = c.call("GET", "/v1/sys/auth", Some(ROOT), None).await?;
    if r.1.pointer("/data/jwt~1").is_none() && r.1.get("jwt/").is_none() {
        let r = c
            .call(
                "POST",
                "/v1/sys/auth/jwt",
                Some(ROOT),
                Some(json!({"type": "jwt"})),
            )
            .await?;
        expect("jwt enable", r, &[200, 204])?;
    }
    let r = c
        .call(
            "POST",
            "/v1/auth/jwt/config",
            Some(ROOT),
            Some(json!({"jwt_validation_pubkeys": [jwt.pub_pem],
                        "bound_issuer": "https://token.actions.githubusercontent.com"})),
        )
        .await?;
    expect("jwt config", r, &[200, 204])?;
    let r = c
        .call(
            "POST",
            "/v1/auth/jwt/role/bench",
            Some(ROOT),
            Some(crate::jwt::role()),
        )
        .await?;
    expect("jwt role", r, &[200, 204])?;
    let fx = Fixtures {
        policy_token,
        role_id,
        secret_id,
        jwt: jwt.token.clone(),
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
pub enum Scenario {
    KvReadRoot,
    KvReadPolicy,
    LookupSelf,
    KvWrite,
    Mix,
    Login,
    JwtLogin,
    TokenCreate,
}

impl Scenario {
    /// The throughput scenarios of issue 8, in run order (token-creating ones last).
    pub const ALL: [Scenario; 7] = [
        Scenario::KvReadRoot,
        Scenario::KvReadPolicy,
        Scenario::LookupSelf,
        Scenario::KvWrite,
        Scenario::Mix,
        Scenario::Login,
        Scenario::JwtLogin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::KvReadRoot => "kv-read-root",
            Scenario::KvReadPolicy => "kv-read-policy",
            Scenario::LookupSelf => "lookup-self",
            Scenario::KvWrite => "kv-write",
            Scenario::Mix => "mix-90-10",
            Scenario::Login => "approle-login",
            Scenario::JwtLogin => "jwt-login",
            Scenario::TokenCreate => "token-create",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Scenario::KvReadRoot => "kv-v2 read, root token",
            Scenario::KvReadPolicy => "kv-v2 read, policy token (ACL)",
            Scenario::LookupSelf => "token lookup-self (policy token)",
            Scenario::KvWrite => "kv-v2 write, distinct keys",
            Scenario::Mix => "90/10 kv read/write mix",
            Scenario::Login => "AppRole login",
            Scenario::JwtLogin => "JWT login (RS256, static key, bound claims)",
            Scenario::TokenCreate => "token create (root)",
        }
    }

    pub fn parse(s: &str) -> R<Scenario> {
        Scenario::ALL
            .into_iter()
            .chain([Scenario::TokenCreate])
            .find(|x| x.name() == s)
            .ok_or_else(|| format!("unknown scenario {s:?}"))
    }
}

/// Produces one connection's request stream for a scenario.
pub struct ReqGen {
    pub scenario: Scenario,
    pub fixed: Vec<u8>,
    pub read: Vec<u8>,
    pub prefix: String,
    pub seq: u64,
}

impl ReqGen {
    pub fn new(scenario: Scenario, fx: &Fixtures, tag: &str, conn: usize) -> ReqGen {
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
            Scenario::JwtLogin => {
                let body = json!({"role": "bench", "jwt": fx.jwt}).to_string();
                build_request("POST", "/v1/auth/jwt/login", None, Some(&body))
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

    pub fn write(&self) -> Vec<u8> {
        let body = format!(
            r#"{{"data":{{"value":"bench-value-{:016x}","owner":"coffer-bench"}}}}"#,
            self.seq
        );
        let path = format!("{}{}", self.prefix, self.seq);
        build_request("POST", &path, Some(ROOT), Some(&body))
    }

    pub fn next(&mut self) -> std::borrow::Cow<'_, [u8]> {
        self.seq += 1;
        match self.scenario {
            Scenario::KvWrite => self.write().into(),
            Scenario::Mix if self.seq.is_multiple_of(10) => self.write().into(),
            Scenario::Mix => self.read.as_slice().into(),
            _ => self.fixed.as_slice().into(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Bound {
    /// Warm up, then measure for a fixed time.
    Time { warmup: Duration, measure: Duration },
    /// Exactly this many requests in total (shared between connections), all measured.
    Count(u64),
    /// Open loop: requests offered at `rate` per second, evenly spaced, each sent on whichever
    /// of the connections is free when it is due. Its latency counts from when it is sent: the
    /// pacer's own wake-up delay (tens of microseconds) stays out of it. A server that cannot
    /// keep up shows as fewer requests than offered.
    Paced {
        warmup: Duration,
        measure: Duration,
        rate: f64,
    },
}

#[derive(Debug, Default)]
pub struct Window {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub lat_us: Vec<u32>,
    pub cpu_ticks: Option<u64>,
    /// CPU the load generator itself used in the measured window (it shares the 2 cores).
    pub gen_ticks: Option<u64>,
    pub rss_kb: Option<u64>,
}

impl Window {
    pub fn rps(&self) -> f64 {
        (self.ok + self.errors) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

pub fn read_cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" of comm: state is field 3; utime is 14, stime 15.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some(ut + st)
}

pub fn read_rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn clk_tck() -> u64 {
    // Linux's USER_HZ is 100 on every mainstream architecture; `getconf` confirms when present.
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

pub async fn run_window(
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
        Bound::Time { warmup, measure }
        | Bound::Paced {
            warmup, measure, ..
        } => (now + warmup, Some(now + warmup + measure)),
        Bound::Count(_) => (now, None),
    };
    let budget = match bound {
        Bound::Count(n) => Some(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(n))),
        Bound::Time { .. } | Bound::Paced { .. } => None,
    };
    // Paced: a timer thread releases each request when it is due (thread sleeps are precise to
    // tens of microseconds; the runtime's timer only to a millisecond).
    let due = match (bound, end) {
        (Bound::Paced { rate, .. }, Some(end)) if rate > 0.0 => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
            let step = Duration::from_secs_f64(1.0 / rate);
            std::thread::Builder::new()
                .name("pacer".into())
                .spawn(move || pace(&tx, now, end, step))
                .map_err(|e| e.to_string())?;
            Some(std::sync::Arc::new(tokio::sync::Mutex::new(rx)))
        }
        _ => None,
    };
    let mut tasks = Vec::with_capacity(conns);
    for (i, mut conn) in connections.into_iter().enumerate() {
        let mut generator = ReqGen::new(scenario, fx, tag, i);
        let budget = budget.clone();
        let due = due.clone();
        tasks.push(tokio::spawn(async move {
            let mut w = Window::default();
            loop {
                // Paced: the request's due time decides whether it is measured; its latency,
                // like an unpaced one's, counts from the moment it is sent.
                let due_at = match &due {
                    Some(d) => match d.lock().await.recv().await {
                        Some(t) => Some(t),
                        None => break,
                    },
                    None => None,
                };
                let t0 = Instant::now();
                // A paced request still queued at the end (a server that cannot keep up) is
                // dropped, not sent late.
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
                if due_at.unwrap_or(t0) < measure_start {
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

/// Sends each due time of an evenly spaced schedule from `start` to `end` when it comes.
fn pace(
    tx: &tokio::sync::mpsc::UnboundedSender<Instant>,
    start: Instant,
    end: Instant,
    step: Duration,
) {
    let mut next = start;
    while next < end {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let now = Instant::now();
        while next <= now && next < end {
            if tx.send(next).is_err() {
                return;
            }
            next += step;
        }
    }
}

pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx.min(sorted.len() - 1)).copied()
}
