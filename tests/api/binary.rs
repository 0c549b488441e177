//! The `coffer` binary itself: dev banner, working server, graceful shutdown on SIGTERM, the
//! command line (help, version, flag errors), logging flags and the dev root token file.
//!
//! Every spawned dev server gets `HOME=<temp dir>`: it writes `$HOME/.vault-token`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Reads stdout lines until the root token line; returns (address, root token, banner).
fn read_banner(out: impl std::io::Read) -> (String, String, String) {
    let mut banner = String::new();
    let (mut addr, mut token) = (String::new(), String::new());
    for line in BufReader::new(out).lines() {
        let line = line.expect("stdout");
        banner.push_str(&line);
        banner.push('\n');
        if let Some(rest) = line.trim().strip_prefix("$ export VAULT_ADDR='") {
            addr = rest.trim_end_matches('\'').to_string();
        }
        if let Some(rest) = line.strip_prefix("Root Token: ") {
            token = rest.trim().to_string();
            break;
        }
    }
    (addr, token, banner)
}

#[tokio::test]
async fn dev_server_prints_banner_serves_and_stops_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", "--dev", "-dev-listen-address=127.0.0.1:0"])
        .env("VAULT_DEV_ROOT_TOKEN_ID", "s3cr3t-root")
        .env("HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn coffer");
    let stdout = child.stdout.take().expect("stdout");
    let (addr, token, banner) = tokio::task::spawn_blocking(move || read_banner(stdout))
        .await
        .unwrap();
    assert_eq!(token, "s3cr3t-root", "{banner}");
    assert!(addr.starts_with("http://127.0.0.1:"), "{banner}");
    assert!(banner.contains("WARNING! dev mode is enabled!"), "{banner}");

    let client = reqwest::Client::new();
    let r = client
        .get(format!("{addr}/v1/auth/token/lookup-self"))
        .header("X-Vault-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"]["policies"], serde_json::json!(["root"]));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");
}

#[test]
fn bad_flags_exit_non_zero_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", "-bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("flag provided but not defined: -bogus"),
        "{err}"
    );
    assert!(err.contains("coffer server -help"), "a hint: {err}");
    let out = coffer(&["server", "-dev-root-token-id"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("flag needs an argument: -dev-root-token-id"),
        "{err}"
    );
    let out = coffer(&["server", "-dev=maybe"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid boolean value \"maybe\" for -dev"),
        "{err}"
    );
}

#[test]
fn config_errors_name_the_file_and_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.hcl");
    std::fs::write(
        &cfg,
        "storage \"raft\" { path = \"/tmp/x\" }\nlistener \"tcp\" { address = \"127.0.0.1:0\" }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", &format!("-config={}", cfg.display())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.hcl")
            && err.contains("storage \"raft\"")
            && err.contains("not supported"),
        "{err}"
    );
    std::fs::write(
        &cfg,
        "storage \"inmem\" {}\nlistener \"tcp\" { address = \"127.0.0.1:0\" bogus = 1 }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", &format!("-config={}", cfg.display())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

/// Runs `coffer ARGS` to completion (HOME in a temp dir, no VAULT_* from the test's environment)
/// with a deadline: a command that should fail fast must not leave a server running.
fn coffer(args: &[&str], env: Option<(&str, &str)>) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
    cmd.args(args)
        .env("HOME", home.path())
        .env_remove("VAULT_LOG_LEVEL")
        .env_remove("VAULT_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "coffer {args:?} still running after 10 s; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_and_version_exit_zero() {
    for args in [&["--help"][..], &["-h"], &["help"], &["-help"]] {
        let out = coffer(args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let text = stdout(&out);
        assert!(
            text.starts_with("Usage: coffer <command> [args]"),
            "{args:?}: {text}"
        );
        assert!(
            text.contains("server") && text.contains("version"),
            "{text}"
        );
    }
    let want = format!("Coffer v{}\n", env!("CARGO_PKG_VERSION"));
    for args in [&["version"][..], &["--version"], &["-version"], &["-v"]] {
        let out = coffer(args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert_eq!(stdout(&out), want, "{args:?}");
    }
    for args in [
        &["server", "-help"][..],
        &["server", "--help"],
        &["server", "-h"],
        &["server", "-dev", "-h"],
    ] {
        let out = coffer(args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let text = stdout(&out);
        assert!(
            text.starts_with("Usage: coffer server [options]"),
            "{args:?}: {text}"
        );
        for flag in [
            "-config=<string>",
            "-log-level=<string>",
            "-log-format=<string>",
            "\n  -dev\n",
            "-dev-root-token-id=<string>",
            "-dev-listen-address=<string>",
            "-dev-no-store-token",
            "VAULT_LOG_LEVEL",
        ] {
            assert!(text.contains(flag), "{flag} missing from:\n{text}");
        }
    }
}

#[test]
fn unknown_commands_print_an_error_and_a_hint() {
    // Like vault and bao: an unknown command (or none) exits with 127, usage on stderr.
    let out = coffer(&["bogus"], None);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown command \"bogus\""), "{err}");
    assert!(err.contains("Usage: coffer <command> [args]"), "{err}");
    assert!(stdout(&out).is_empty());
    let out = coffer(&[], None);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: coffer <command> [args]"));
}

#[test]
fn bad_log_level_and_format_are_rejected() {
    let dev = ["server", "-dev", "-dev-listen-address=127.0.0.1:0"];
    type Case<'a> = (&'a [&'a str], Option<(&'a str, &'a str)>, &'a str);
    let cases: [Case<'_>; 4] = [
        (&["-log-level=bogus"], None, "unknown log level: bogus"),
        (
            &[],
            Some(("VAULT_LOG_LEVEL", "loud")),
            "unknown log level: loud",
        ),
        (&["-log-format=xml"], None, "unknown log format: xml"),
        (
            &[],
            Some(("VAULT_LOG_FORMAT", "xml")),
            "unknown log format: xml",
        ),
    ];
    for (extra, env, want) in cases {
        let args: Vec<&str> = dev.iter().chain(extra).copied().collect();
        let out = coffer(&args, env);
        assert_eq!(out.status.code(), Some(1), "{args:?} {env:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?} {env:?}: {err}");
    }
    // The same check in -config mode, before the configuration is read.
    let out = coffer(
        &["server", "-config=/nonexistent.hcl", "-log-level=bogus"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown log level: bogus"));
}

/// A dev server started with `args` and `env`, HOME in its own temp dir.
pub(crate) struct Dev {
    child: Child,
    /// Reads the server's stderr all along (a full pipe would stop a server that logs much).
    stderr: Option<std::thread::JoinHandle<String>>,
    pub(crate) addr: String,
    pub(crate) token: String,
    banner: String,
    home: tempfile::TempDir,
}

impl Dev {
    pub(crate) async fn start(args: &[&str], env: &[(&str, &str)]) -> Dev {
        Dev::start_under(&[], args, env).await
    }

    /// As [`Dev::start`], the server run by `launcher` (a command and its arguments, e.g.
    /// `prlimit --fsize=N`) when it is not empty.
    async fn start_under(launcher: &[&str], args: &[&str], env: &[(&str, &str)]) -> Dev {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = match launcher.split_first() {
            Some((program, launcher_args)) => {
                let mut cmd = Command::new(program);
                cmd.args(launcher_args).arg(env!("CARGO_BIN_EXE_coffer"));
                cmd
            }
            None => Command::new(env!("CARGO_BIN_EXE_coffer")),
        };
        cmd.args(["server", "-dev", "-dev-listen-address=127.0.0.1:0"])
            .args(args)
            .env("HOME", home.path())
            .env_remove("VAULT_LOG_LEVEL")
            .env_remove("VAULT_LOG_FORMAT")
            .env_remove("VAULT_DEV_ROOT_TOKEN_ID")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (addr, token, banner) = tokio::task::spawn_blocking(move || read_banner(out))
            .await
            .unwrap();
        if token.is_empty() {
            let _ = child.kill();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("{args:?} {env:?}: no dev server; stderr: {err}");
        }
        let mut pipe = child.stderr.take().unwrap();
        let stderr = Some(std::thread::spawn(move || {
            let mut err = String::new();
            let _ = pipe.read_to_string(&mut err);
            err
        }));
        Dev {
            child,
            stderr,
            addr,
            token,
            banner,
            home,
        }
    }

    /// Writes a policy (logged at info), stops the server with SIGTERM, returns its stderr.
    async fn policy_write_then_stop(self) -> String {
        let r = reqwest::Client::new()
            .put(format!("{}/v1/sys/policies/acl/logged", self.addr))
            .header("X-Vault-Token", &self.token)
            .json(&serde_json::json!({"policy": "path \"a\" { capabilities = [\"read\"] }"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        self.stop().await
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server with SIGTERM and returns its stderr.
    pub(crate) async fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let reader = self.stderr.take().unwrap();
        let err = tokio::task::spawn_blocking(move || reader.join().unwrap())
            .await
            .unwrap();
        assert!(self.child.wait().unwrap().success());
        err
    }
}

#[tokio::test]
async fn log_level_from_vault_log_level_and_the_flag_wins() {
    // VAULT_LOG_LEVEL=error: the info lines are gone.
    let dev = Dev::start(&[], &[("VAULT_LOG_LEVEL", "error")]).await;
    let err = dev.policy_write_then_stop().await;
    assert!(!err.contains("policy written"), "{err}");
    assert!(!err.contains("shutdown complete"), "{err}");
    // -log-level wins over the environment.
    let dev = Dev::start(&["-log-level=info"], &[("VAULT_LOG_LEVEL", "error")]).await;
    let err = dev.policy_write_then_stop().await;
    assert!(err.contains("policy written"), "{err}");
    assert!(err.contains("shutdown complete"), "{err}");
    // Vault's aliases are accepted, case-insensitively.
    let dev = Dev::start(&["-log-level=WARNING"], &[]).await;
    let err = dev.policy_write_then_stop().await;
    assert!(!err.contains("policy written"), "{err}");
    // -log-format=json writes one JSON object per line.
    let dev = Dev::start(&["-log-format=json"], &[]).await;
    let err = dev.policy_write_then_stop().await;
    let line = err
        .lines()
        .find(|l| l.contains("policy written"))
        .unwrap_or_else(|| panic!("no policy line in {err}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "INFO", "{line}");
}

/// A refused JWT login logs the caller's role name quoted and escaped: a newline in it cannot
/// forge a log line of its own, and a long name is cut short.
#[tokio::test]
async fn a_refused_login_cannot_forge_log_lines() {
    let dev = Dev::start(&["-log-level=info"], &[]).await;
    let http = reqwest::Client::new();
    let call = |path: &str, body: serde_json::Value| {
        http.post(format!("{}/v1/{path}", dev.addr))
            .header("X-Vault-Token", &dev.token)
            .json(&body)
            .send()
    };
    let key = rcgen::KeyPair::generate().unwrap();
    let r = call("sys/auth/jwt", serde_json::json!({"type": "jwt"}))
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = call(
        "auth/jwt/config",
        serde_json::json!({"jwt_validation_pubkeys": [key.public_key_pem()]}),
    )
    .await
    .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let forged = "2026-12-02T00:00:00.000000Z  INFO coffer: FORGED root login ok";
    let long = "x".repeat(100_000);
    for role in [format!("nope\n{forged}"), format!("nope\r{forged}"), long] {
        let r = call(
            "auth/jwt/login",
            serde_json::json!({"role": role, "jwt": "x.y.z"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 400);
    }
    let err = dev.stop().await;
    assert_eq!(err.matches("jwt login refused").count(), 3, "{err}");
    assert!(
        !err.contains('\r') && !err.lines().any(|l| l.starts_with(forged)),
        "forged line in {err}"
    );
    // Role names are matched lower-cased, and logged so.
    assert!(err.contains(r"nope\n2026-12-02t00:00:00"), "{err}");
    assert!(
        !err.contains(&"x".repeat(200)),
        "a long role name is logged whole"
    );
}

/// While every audit device fails, each response entry no device took reaches the server log
/// once, with its request id and the entry itself as written with hashing (no plaintext),
/// after the retry window, or at once when 256 are being retried already (bounded memory);
/// the retries do not log each failed attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_response_entries_reach_the_server_log_hashed_and_bounded() {
    let dev = Dev::start(&[], &[]).await;
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{}/v1/sys/audit/full", dev.addr))
        .header("X-Vault-Token", &dev.token)
        .json(&serde_json::json!({"type": "file",
            "options": {"file_path": "/dev/full", "skip_test": "true"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    const N: usize = 300;
    let canary = "canary-plaintext-5f0e";
    for i in 0..N {
        let r = http
            .post(format!("{}/v1/secret/data/c{i}", dev.addr))
            .header("X-Vault-Token", &dev.token)
            .json(&serde_json::json!({"data": {"v": canary}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
    }
    // Past the 5 s retry window.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let err = dev.stop().await;
    assert!(!err.contains(canary), "plaintext in the server log");
    let lost: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("audit response entry lost"))
        .collect();
    // And the enabling request's own (Vault logs it to the new device, which fails too).
    assert_eq!(lost.len(), N + 1, "{err}");
    for l in &lost {
        assert!(
            l.contains(r#"audit.entry={"time":""#) && l.contains(r#""type":"response""#),
            "{l}"
        );
        if !l.contains("request.path=sys/audit/full") {
            assert!(l.contains(r#""v":"hmac-sha256:"#), "{l}");
        }
    }
    let at_once = lost
        .iter()
        .filter(|l| l.contains("being retried already"))
        .count();
    assert!(at_once > 0 && at_once < N, "{at_once} reported at once");
    let attempts = err
        .lines()
        .filter(|l| l.contains("audit device failed to log the response"))
        .count();
    assert!(attempts <= N, "{attempts} lines about failed attempts");
}

/// A file size limit reached by the audit log (`prlimit --fsize`, as `ulimit -f` or systemd's
/// `LimitFSIZE` set it). The server stays up: SIGXFSZ does not end it, as it does not end
/// Vault. Requests fail closed with 500. The log holds only whole entries: the part of the
/// entry that hit the limit is cut off again. Every secret that exists has its request entry,
/// and the device can still be listed and disabled, after which requests succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_size_limit_fails_requests_closed_and_leaves_only_whole_entries() {
    const LIMIT: usize = 64 * 1024;
    let fsize = format!("--fsize={LIMIT}");
    let dev = Dev::start_under(&["prlimit", &fsize], &[], &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}/v1/{path}", dev.addr))
            .header("X-Vault-Token", &dev.token)
    };
    let r = call(reqwest::Method::PUT, "sys/audit/file")
        .json(&serde_json::json!({"type": "file",
            "options": {"file_path": log.display().to_string()}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (mut answered, mut refused) = (Vec::new(), Vec::new());
    for i in 0..1000 {
        let r = call(reqwest::Method::POST, &format!("secret/data/k{i}"))
            .json(&serde_json::json!({"data": {"v": "x".repeat(100)}}))
            .send()
            .await
            .unwrap();
        if r.status().is_success() {
            answered.push(i);
        } else {
            assert_eq!(r.status(), 500);
            assert_eq!(
                r.json::<serde_json::Value>().await.unwrap(),
                serde_json::json!({"errors": ["internal error"]})
            );
            refused.push(i);
            if refused.len() == 5 {
                break;
            }
        }
    }
    assert!(
        !answered.is_empty() && refused.len() == 5,
        "{answered:?} {refused:?}"
    );

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.len() <= LIMIT && text.len() > LIMIT / 2,
        "{}",
        text.len()
    );
    assert!(text.ends_with('\n'), "the log ends in a torn entry");
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}")))
        .collect();
    let logged = |kind: &str, i: usize| {
        entries.iter().any(|e| {
            e["type"] == kind && e["request"]["path"] == format!("secret/data/k{i}").as_str()
        })
    };
    for &i in &answered {
        assert!(logged("request", i) && logged("response", i), "k{i}");
    }

    // The device can still be listed and disabled while every write to it fails.
    let r = call(reqwest::Method::GET, "sys/audit")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = call(reqwest::Method::DELETE, "sys/audit/file")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Fail-closed: a refused write that took effect had its request entry accepted.
    let mut took_effect = 0;
    for &i in &refused {
        let r = call(reqwest::Method::GET, &format!("secret/data/k{i}"))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => {
                took_effect += 1;
                assert!(
                    logged("request", i),
                    "k{i} written without its request entry"
                );
            }
            404 => assert!(!logged("request", i), "k{i} logged, yet not run"),
            other => panic!("k{i}: {other}"),
        }
    }
    assert!(
        took_effect < refused.len(),
        "no request was refused before it ran"
    );
    let r = call(reqwest::Method::POST, "secret/data/after")
        .json(&serde_json::json!({"data": {"v": "y"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let err = dev.stop().await;
    assert!(!err.contains("could not be cut off"), "{err}");
    assert!(!err.contains("xxxxxxxxxx"), "plaintext in the server log");
}

/// A SIGTERM that arrives right after the banner (before any request) still stops the server
/// cleanly: the handler is installed before the banner is printed. Repeated, since a handler
/// installed by a task that has not run yet loses only some of the races.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_the_banner_stops_the_server_cleanly() {
    for _ in 0..20 {
        let dev = Dev::start(&[], &[]).await;
        let err = dev.stop().await;
        assert!(err.contains("shutdown complete"), "{err}");
    }
}

#[tokio::test]
async fn piped_logs_carry_no_ansi_colour_codes() {
    let dev = Dev::start(&[], &[]).await;
    let err = dev.policy_write_then_stop().await;
    assert!(err.contains("policy written"), "{err}");
    assert!(!err.contains('\x1b'), "ANSI escape in piped logs: {err:?}");
}

#[tokio::test]
async fn dev_mode_stores_the_root_token_in_home_like_vault() {
    use std::os::unix::fs::PermissionsExt;
    let dev = Dev::start(&["-dev-root-token-id=dev-root-1"], &[]).await;
    let path = dev.home.path().join(".vault-token");
    let stored = std::fs::read_to_string(&path).expect("~/.vault-token written");
    assert_eq!(stored, "dev-root-1");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert!(
        dev.banner.contains("authenticated to the CLI"),
        "{}",
        dev.banner
    );
    dev.policy_write_then_stop().await;

    // An existing file (say, world-readable) is replaced, and ends up 0600.
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".vault-token");
    std::fs::write(&path, "old-token-that-is-longer").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut dev = Dev::start(&[], &[("HOME", home.path().to_str().unwrap())]).await;
    let stored = std::fs::read_to_string(&path).unwrap();
    assert_eq!(stored, dev.token);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // The generated root token works with the stored file's content.
    let r = reqwest::Client::new()
        .get(format!("{}/v1/auth/token/lookup-self", dev.addr))
        .header("X-Vault-Token", stored.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    dev.token = stored;
    dev.policy_write_then_stop().await;
}

#[tokio::test]
async fn dev_no_store_token_leaves_home_alone() {
    let dev = Dev::start(&["-dev-no-store-token", "-dev-root-token-id=r00t"], &[]).await;
    assert!(!dev.home.path().join(".vault-token").exists());
    assert!(
        !dev.banner.contains("authenticated to the CLI"),
        "the banner must not claim the CLI is logged in:\n{}",
        dev.banner
    );
    assert_eq!(dev.token, "r00t");
    dev.policy_write_then_stop().await;
}

/// `sys/config/state/sanitized` of a dev server: its own listener, in-memory storage, dev
/// telemetry, with what `-config` adds; `vault debug` saves it as `config.json`.
#[tokio::test]
async fn dev_config_state_is_sanitized_and_merged_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dev.hcl");
    std::fs::write(
        &file,
        "log_level = \"warn\"\ndefault_lease_ttl = \"1h\"\nmax_lease_ttl = \"48h\"\n",
    )
    .unwrap();
    let dev = Dev::start(&[&format!("-config={}", file.display())], &[]).await;
    let r = reqwest::Client::new()
        .get(format!("{}/v1/sys/config/state/sanitized", dev.addr))
        .header("X-Vault-Token", &dev.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let d = &body["data"];
    let addr = dev.addr.trim_start_matches("http://");
    assert_eq!(
        d["listeners"],
        serde_json::json!([{"type": "tcp", "config": {"address": addr, "tls_disable": true}}])
    );
    assert_eq!(d["storage"]["type"], "inmem");
    assert_eq!(d["log_level"], "warn");
    assert_eq!(d["max_lease_ttl"], 48 * 3600);
    assert_eq!(d["unsafe_allow_api_audit_creation"], true);
    assert_eq!(
        d["telemetry"]["prometheus_retention_time"],
        24u64 * 3600 * 1_000_000_000
    );
    dev.stop().await;
}
