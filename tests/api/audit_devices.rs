//! Audit device types and operations beyond the basic file device: `socket` (real TCP, UDP and
//! Unix listeners, reconnect after the peer closed), `syslog` (a real Unix datagram socket),
//! `format = "jsonx"`, a response entry written late instead of lost, the plugin directory
//! refusal, and SIGHUP reopening a renamed file under load with every line in exactly one file.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::TestServer;

async fn enable(srv: &TestServer, path: &str, kind: &str, options: Value) -> crate::common::Resp {
    srv.put(
        &format!("sys/audit/{path}"),
        &srv.root,
        json!({"type": kind, "options": options}),
    )
    .await
}

async fn hash(srv: &TestServer, device: &str, input: &str) -> String {
    let r = srv
        .put(
            &format!("sys/audit-hash/{device}"),
            &srv.root,
            json!({"input": input}),
        )
        .await;
    r.assert_status(200);
    r.body["data"]["hash"].as_str().unwrap().to_string()
}

/// Collects lines from `rx` until both entries of `path` arrived (5 s); returns them parsed.
fn both_entries(rx: &mpsc::Receiver<String>, path: &str) -> (Value, Value) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut req, mut resp) = (None, None);
    while req.is_none() || resp.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no entries for {path}"));
        let v: Value =
            serde_json::from_str(line.trim_end()).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["request"]["path"] == path {
            match v["type"].as_str() {
                Some("request") => req = Some(v),
                Some("response") => resp = Some(v),
                _ => {}
            }
        }
    }
    (req.unwrap(), resp.unwrap())
}

/// Forwards every line read from `r` to `tx`.
fn forward_lines(r: impl Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_devices_over_tcp_udp_and_unix_receive_every_entry() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();

    // TCP: the first connection (the enable-time test message) is closed by the peer after
    // one line; the device notices and reconnects instead of writing into the dead connection.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap().to_string();
    let (tcp_tx, tcp_rx) = mpsc::channel();
    let (probe_tx, probe_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (first, _) = tcp.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&first).read_line(&mut line).unwrap();
        probe_tx.send(line).unwrap();
        drop(first);
        for conn in tcp.incoming() {
            let Ok(conn) = conn else { return };
            forward_lines(conn, tcp_tx.clone());
        }
    });

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp.local_addr().unwrap().to_string();
    let (udp_tx, udp_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = udp.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(text.ends_with('\n'), "one entry per datagram: {text}");
            if udp_tx.send(text).is_err() {
                return;
            }
        }
    });

    let sock = dir.path().join("audit.sock");
    let unix = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let (unix_tx, unix_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in unix.incoming() {
            let Ok(conn) = conn else { return };
            forward_lines(conn, unix_tx.clone());
        }
    });

    enable(&srv, "tcp", "socket", json!({"address": tcp_addr}))
        .await
        .assert_status(204);
    let probe: Value = serde_json::from_str(&probe_rx.recv().unwrap()).unwrap();
    assert_eq!(probe["request"]["path"], "sys/audit/test");
    enable(
        &srv,
        "udp",
        "socket",
        json!({"address": udp_addr, "socket_type": "udp"}),
    )
    .await
    .assert_status(204);
    enable(
        &srv,
        "unix",
        "socket",
        json!({"address": sock.to_str().unwrap(), "socket_type": "unix", "write_timeout": "1s"}),
    )
    .await
    .assert_status(204);
    let r = srv.get("sys/audit", &srv.root).await;
    assert_eq!(r.body["data"]["udp/"]["type"], "socket");
    assert_eq!(
        r.body["data"]["udp/"]["options"],
        json!({"address": udp_addr, "socket_type": "udp"})
    );

    srv.put(
        "secret/data/sock",
        &srv.root,
        json!({"data": {"password": "sock-canary"}}),
    )
    .await
    .assert_status(200);
    for (device, rx) in [("tcp", &tcp_rx), ("udp", &udp_rx), ("unix", &unix_rx)] {
        let (req, resp) = both_entries(rx, "secret/data/sock");
        assert_eq!(
            req["request"]["data"]["data"]["password"],
            hash(&srv, device, "sock-canary").await,
            "{device}"
        );
        assert_eq!(req["request"]["id"], resp["request"]["id"]);
        assert_eq!(resp["response"]["data"]["version"], 1, "{device}");
        assert!(!req.to_string().contains("sock-canary"));
    }

    // Devices that cannot be opened are refused at enable time, naming the reason.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let r = enable(&srv, "closed", "socket", json!({"address": closed})).await;
    r.assert_status(400);
    assert!(
        r.errors()[0].starts_with(&format!("error connecting to \"{closed}\": ")),
        "{:?}",
        r.errors()
    );
    let r = enable(&srv, "x", "socket", json!({})).await;
    assert_eq!(r.errors(), vec!["address is required"]);
    let r = enable(
        &srv,
        "x",
        "socket",
        json!({"address": closed, "socket_type": "carrier-pigeon"}),
    )
    .await;
    assert_eq!(
        r.errors(),
        vec!["dial carrier-pigeon: unknown network carrier-pigeon"]
    );
    let r = enable(
        &srv,
        "x",
        "socket",
        json!({"address": closed, "write_timeout": "soon"}),
    )
    .await;
    assert_eq!(r.errors(), vec!["time: invalid duration \"soon\""]);
    let r = enable(&srv, "x", "syslog", json!({"facility": "NOPE"})).await;
    assert_eq!(r.errors(), vec!["invalid syslog facility: NOPE"]);
}

#[tokio::test]
async fn jsonx_entries_are_xml_with_the_same_hmacs() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (json_file, xml_file) = (dir.path().join("a.json"), dir.path().join("a.xml"));
    enable(
        &srv,
        "json",
        "file",
        json!({"file_path": json_file.to_str().unwrap(), "log_raw": "false"}),
    )
    .await
    .assert_status(204);
    enable(
        &srv,
        "xml",
        "file",
        json!({"file_path": xml_file.to_str().unwrap(), "format": "jsonx"}),
    )
    .await
    .assert_status(204);
    srv.put(
        "secret/data/x",
        &srv.root,
        json!({"data": {"password": "xml-canary", "note": "a<b&c"}}),
    )
    .await
    .assert_status(200);
    let h = hash(&srv, "xml", "xml-canary").await;
    let text = wait_for(&xml_file, "secret/data/x", 2).await;
    let entries: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#"<json:string name="path">secret/data/x</json:string>"#))
        .collect();
    assert_eq!(entries.len(), 2, "{text}");
    let req = entries[0];
    assert!(req.starts_with(r#"<json:object name="auth">"#), "{req}");
    assert!(
        req.contains(&format!(
            r#"<json:string name="password">{h}</json:string>"#
        )),
        "{req}"
    );
    assert!(!text.contains("xml-canary"));
    assert!(
        req.ends_with(r#"<json:string name="type">request</json:string>"#),
        "{req}"
    );
    assert!(entries[1].contains(r#"<json:number name="version">1</json:number>"#));

    // Every entry is well-formed XML (in a JSONx root element, as Vault's documentation shows).
    let python = std::env::var("CLIENTS_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys, xml.etree.ElementTree as E\n\
        ns='xmlns:json=\"http://www.ibm.com/xmlns/prod/2009/jsonx\"'\n\
        n=0\n\
        for line in open(sys.argv[1]):\n\
        \x20   root=E.fromstring('<json:object '+ns+'>'+line+'</json:object>')\n\
        \x20   n+=1\n\
        print(n)\n";
    let out = Command::new(python)
        .args(["-c", script, xml_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let now = std::fs::read_to_string(&xml_file).unwrap();
    assert!(n >= text.lines().count(), "{n}");
    assert!(n <= now.lines().count(), "{n}");
}

/// The file's text once `count` lines mention `needle` (5 s).
pub(crate) async fn wait_for(file: &Path, needle: &str, count: usize) -> String {
    for _ in 0..500 {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.ends_with('\n') && text.lines().filter(|l| l.contains(needle)).count() >= count {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{needle} never reached {}", file.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_entry_that_misses_the_deadline_is_written_late_not_lost() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // The reader passes on whole lines, but only while the gate is open.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let (line_tx, line_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut r = BufReader::new(reader);
        loop {
            if gate_rx.recv().is_err() {
                return;
            }
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 || line_tx.send(line).is_err() {
                return;
            }
        }
    });
    // Lines larger than the pipe buffer: each blocks until the reader takes it.
    let big = "x".repeat(256 * 1024);
    enable(
        &srv,
        "slow",
        "file",
        json!({"file_path": fifo.to_str().unwrap(), "prefix": big, "skip_test": "true"}),
    )
    .await
    .assert_status(204);
    // The enabling request's own response entry comes first (Vault logs it to the new device).
    gate_tx.send(()).unwrap();
    let first: Value =
        serde_json::from_str(line_rx.recv().unwrap().trim_start_matches('x')).unwrap();
    assert_eq!(first["type"], "response");
    assert_eq!(first["request"]["path"], "sys/audit/slow");

    // Let exactly one line through: the write's request entry.
    gate_tx.send(()).unwrap();
    let started = Instant::now();
    let r = srv
        .put("secret/data/late", &srv.root, json!({"data": {"v": "1"}}))
        .await;
    // The write committed but its response entry missed the deadline: Vault's 500.
    r.assert_status(500);
    assert_eq!(r.errors(), vec!["internal error"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    let req: Value = serde_json::from_str(line_rx.recv().unwrap().trim_start_matches('x')).unwrap();
    assert_eq!(req["type"], "request");
    assert_eq!(req["request"]["path"], "secret/data/late");

    // A second later the device drains: the response entry arrives, once.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    gate_tx.send(()).unwrap();
    let resp: Value = serde_json::from_str(
        line_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .trim_start_matches('x'),
    )
    .unwrap();
    assert_eq!(resp["type"], "response");
    assert_eq!(resp["request"]["id"], req["request"]["id"]);
    // Nothing more was queued: no duplicate of either entry.
    gate_tx.send(()).unwrap();
    assert!(
        line_rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "no duplicate"
    );
    // The operation itself took effect.
    srv.delete("sys/audit/slow", &srv.root)
        .await
        .assert_status(204);
    let r = srv.get("secret/data/late", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["metadata"]["version"], 1);
}

/// A dev server of the real binary, `HOME` in a temp dir.
pub(crate) struct Dev {
    child: Child,
    pub addr: String,
    pub token: String,
    _home: tempfile::TempDir,
}

impl Dev {
    async fn start(env: &[(&str, &str)]) -> Dev {
        Dev::start_with_args(&[], env).await
    }

    /// `coffer server -dev` with `args` added (such as `-config=FILE`).
    pub(crate) async fn start_with_args(args: &[&str], env: &[(&str, &str)]) -> Dev {
        let home = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(["server", "-dev", "-dev-listen-address=127.0.0.1:0"])
            .args(args)
            .env("HOME", home.path())
            .env_remove("VAULT_DEV_ROOT_TOKEN_ID")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (addr, token) = tokio::task::spawn_blocking(move || {
            let (mut addr, mut token) = (String::new(), String::new());
            let mut lines = BufReader::new(out).lines();
            for line in lines.by_ref() {
                let line = line.unwrap();
                if let Some(rest) = line.trim().strip_prefix("$ export VAULT_ADDR='") {
                    addr = rest.trim_end_matches('\'').to_string();
                }
                if let Some(rest) = line.strip_prefix("Root Token: ") {
                    token = rest.trim().to_string();
                    break;
                }
            }
            // Keep draining stdout so the server never blocks on it.
            std::thread::spawn(move || for _ in lines {});
            (addr, token)
        })
        .await
        .unwrap();
        assert!(!token.is_empty(), "no dev server");
        Dev {
            child,
            addr,
            token,
            _home: home,
        }
    }

    pub(crate) async fn put(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = client
            .put(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) fn signal(&self, sig: &str) {
        assert!(
            Command::new("kill")
                .args([sig, &self.child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_device_sends_one_rfc3164_message_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("log");
    let syslog = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let dev = Dev::start(&[("COFFER_SYSLOG_SOCKET", sock.to_str().unwrap())]).await;
    let client = reqwest::Client::new();
    let (status, body) = dev
        .put(
            &client,
            "sys/audit/syslog",
            json!({"type": "syslog", "options": {"facility": "LOCAL0", "tag": "coffer-test"}}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = dev
        .put(
            &client,
            "secret/data/sl",
            json!({"data": {"password": "syslog-canary"}}),
        )
        .await;
    assert_eq!(status, 200);
    let pid = dev.child.id();
    // LOCAL0 (16) * 8 + INFO (6) = 134.
    let head = regex_lite(&format!(
        r"<134>[A-Z][a-z]{{2}} [ 1-3][0-9] \d\d:\d\d:\d\d coffer-test\[{pid}\]: "
    ));
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 1 << 17];
    while seen.len() < 2 {
        let n = syslog.recv(&mut buf).expect("a syslog message");
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        let Some(m) = head(&msg) else {
            panic!("not a syslog message: {msg}");
        };
        assert!(msg.ends_with('\n'));
        let entry: Value = serde_json::from_str(&msg[m..]).unwrap();
        if entry["request"]["path"] == "secret/data/sl" {
            seen.push(entry);
        }
    }
    assert_eq!(seen[0]["type"], "request");
    assert_eq!(seen[1]["type"], "response");
    assert!(
        seen[0]["request"]["data"]["data"]["password"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );

    // Without a syslog socket the device is refused at enable time.
    let dev2 = Dev::start(&[(
        "COFFER_SYSLOG_SOCKET",
        dir.path().join("missing").to_str().unwrap(),
    )])
    .await;
    let (status, body) = dev2
        .put(&client, "sys/audit/syslog", json!({"type": "syslog"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"], json!(["Unix syslog delivery error"]));
}

/// A matcher for `pattern` anchored at the start: the length of the match.
fn regex_lite(pattern: &str) -> impl Fn(&str) -> Option<usize> + use<> {
    let re = regex::Regex::new(&format!("^{pattern}")).unwrap();
    move |s| re.find(s).map(|m| m.end())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sighup_reopens_a_renamed_file_under_load_without_losing_or_splitting_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.log");
    let dev = std::sync::Arc::new(Dev::start(&[]).await);
    let client = reqwest::Client::new();
    let (status, body) = dev
        .put(
            &client,
            "sys/audit/file",
            json!({"type": "file", "options": {"file_path": file.to_str().unwrap()}}),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    // Eight writers; meanwhile the file is renamed and the server HUP'ed three times.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let (dev, client, stop) = (dev.clone(), client.clone(), stop.clone());
        writers.spawn(async move {
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, _) = dev
                    .put(
                        &client,
                        &format!("secret/data/w{w}"),
                        json!({"data": {"n": n}}),
                    )
                    .await;
                assert_eq!(status, 200);
                n += 1;
            }
            n
        });
    }
    let mut rotated = Vec::new();
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let old = dir.path().join(format!("audit.log.{i}"));
        std::fs::rename(&file, &old).unwrap();
        dev.signal("-HUP");
        rotated.push(old);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut requests = 0;
    while let Some(n) = writers.join_next().await {
        requests += n.unwrap();
    }
    assert!(requests > 50, "{requests}");
    // The server survived every SIGHUP.
    let (status, _) = dev
        .put(&client, "secret/data/end", json!({"data": {}}))
        .await;
    assert_eq!(status, 200);
    wait_for(&file, "secret/data/end", 2).await;

    let mut ids: std::collections::HashMap<String, (usize, usize)> = Default::default();
    let mut files = rotated.clone();
    files.push(file.clone());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.ends_with('\n'), "{} ends mid-line", f.display());
        let mut ours = 0;
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: split or corrupt line ({e}): {line}", f.display()));
            let path = v["request"]["path"].as_str().unwrap_or_default();
            if !path.starts_with("secret/data/w") {
                continue;
            }
            ours += 1;
            let id = v["request"]["id"].as_str().unwrap().to_string();
            let slot = ids.entry(id).or_default();
            match v["type"].as_str() {
                Some("request") => slot.0 += 1,
                _ => slot.1 += 1,
            }
        }
        assert!(ours > 0, "{} holds no entries", f.display());
    }
    assert_eq!(ids.len(), requests, "every request logged");
    assert!(
        ids.values().all(|c| *c == (1, 1)),
        "each request exactly one request and one response entry"
    );
}

#[tokio::test]
async fn file_path_inside_the_plugin_directory_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    let dir = plugins.path().to_path_buf();
    let p = crate::production::ProdServer::start_with(
        data.path(),
        coffer::clock::MockClock::new(),
        move |c: &mut coffer::config::ServerConfig| {
            c.unsafe_allow_api_audit_creation = Some(true);
            c.plugin_directory = Some(dir.clone());
        },
    )
    .await;
    let (keys, _, root) = p.init(1, 1).await;
    p.unseal(&keys[0]).await.assert_status(200);
    // A dangling link outside that points inside: opening it would create its target there.
    let link = data.path().join("innocent.log");
    std::os::unix::fs::symlink(plugins.path().join("via-link"), &link).unwrap();
    let chained = data.path().join("chained.log");
    std::os::unix::fs::symlink(&link, &chained).unwrap();
    for inside in [
        link.clone(),
        chained.clone(),
        plugins.path().join("audit.log"),
        plugins.path().join("sub/../evil"),
        plugins.path().join("new/dir/log"),
        // Through a directory that does not exist yet: `..` must not hide the target.
        data.path()
            .join("missing/../..")
            .join(plugins.path().file_name().unwrap())
            .join("x"),
    ] {
        let r = p
            .srv
            .put(
                "sys/audit/file",
                &root,
                json!({"type": "file", "options": {"file_path": inside.to_str().unwrap(), "mode": "0777"}}),
            )
            .await;
        r.assert_status(400);
        assert_eq!(
            r.errors(),
            vec!["sanity check failed; cannot write audit log into the plugin directory"]
        );
        assert!(!inside.exists());
    }
    assert!(!plugins.path().join("via-link").exists());
    let outside = data.path().join("audit.log");
    p.srv
        .put(
            "sys/audit/file",
            &root,
            json!({"type": "file", "options": {"file_path": outside.to_str().unwrap()}}),
        )
        .await
        .assert_status(204);
    p.stop().await;
}

/// A Unix stream socket at `path` that never accepts, its backlog full: a blocking `connect`
/// to it waits with no end. Returns what must stay alive for that.
pub(crate) fn stuck_unix_listener(path: &Path) -> Vec<socket2::Socket> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let listener = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    listener.bind(&SockAddr::unix(path).unwrap()).unwrap();
    listener.listen(0).unwrap();
    let mut held = vec![listener];
    // Fill the backlog: non-blocking connects until the next one would block.
    for _ in 0..64 {
        let c = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        c.set_nonblocking(true).unwrap();
        match c.connect(&SockAddr::unix(path).unwrap()) {
            Ok(()) => held.push(c),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return held,
            Err(e) => panic!("filling the backlog: {e}"),
        }
    }
    panic!("the backlog never filled");
}

/// A socket device whose peer never accepts (a Unix socket with a full backlog: `connect`
/// blocks without any timeout) holds up nothing but itself. Enabling it answers 400 after the
/// open deadline while listing devices, health and audited kv reads go on answering at once;
/// an unseal that finds it enabled completes, and the requests after it are served (the file
/// device audits them) without waiting on it. Before, the dial ran on an async worker under
/// the broker's lock: the whole server stopped answering until the peer went away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_accepts_stops_nothing_but_its_own_device() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ok.log");
    enable(&srv, "ok", "file", json!({"file_path": log}))
        .await
        .assert_status(204);
    srv.put("secret/data/app", &srv.root, json!({"data": {"k": "v"}}))
        .await
        .assert_status(200);
    let quick = async |srv: &TestServer| {
        let started = Instant::now();
        let list = srv.get("sys/audit", &srv.root);
        let health = srv.req("GET", "sys/health", None, None);
        let read = srv.get("secret/data/app", &srv.root);
        let (list, health, read) = tokio::join!(list, health, read);
        list.assert_status(200);
        health.assert_status(200);
        read.assert_status(200);
        started.elapsed()
    };

    // Enabling it: refused after the open deadline; everything else answers meanwhile.
    let stuck = dir.path().join("stuck.sock");
    let _held = stuck_unix_listener(&stuck);
    let options = json!({"address": stuck, "socket_type": "unix", "skip_test": "true"});
    let started = Instant::now();
    let enabling = enable(&srv, "stuck", "socket", options.clone());
    let during = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        quick(&srv).await
    };
    let (r, during) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(enabling, during)
    })
    .await
    .expect("the server stopped answering");
    assert!(
        during < Duration::from_secs(1),
        "{during:?} while a device was opening"
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.errors()[0].starts_with("error connecting to"),
        "{:?}",
        r.errors()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!srv.get("sys/audit", &srv.root).await.text.contains("stuck"));

    // Enabled while its peer accepted, then the peer is replaced by one that never does: the
    // unseal's open gives up on it, and the requests after it do not wait on it.
    let accepting = dir.path().join("accepting.sock");
    let peer = std::os::unix::net::UnixListener::bind(&accepting).unwrap();
    let (tx, _rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in peer.incoming() {
            forward_lines(conn.unwrap(), tx.clone());
        }
    });
    enable(
        &srv,
        "later",
        "socket",
        json!({"address": accepting, "socket_type": "unix"}),
    )
    .await
    .assert_status(204);
    std::fs::remove_file(&accepting).unwrap();
    let _held_too = stuck_unix_listener(&accepting);
    srv.seal().await;
    let r = tokio::time::timeout(Duration::from_secs(10), srv.unseal())
        .await
        .expect("the unseal waits on the device");
    r.assert_status(200);
    assert_eq!(r.body["sealed"], false);
    for _ in 0..5 {
        let took = tokio::time::timeout(Duration::from_secs(10), quick(&srv))
            .await
            .expect("the server stopped answering");
        assert!(took < Duration::from_secs(1), "{took:?} after the unseal");
    }
    let listed = srv.get("sys/audit", &srv.root).await;
    assert!(listed.body["data"]["later/"].is_object(), "{}", listed.text);
    // The file device logged the reads.
    let text = std::fs::read_to_string(&log).unwrap();
    // Two entries for the write and for each of the six rounds' reads.
    assert_eq!(
        text.matches("\"path\":\"secret/data/app\"").count(),
        2 * (1 + 6),
        "{text}"
    );
}
