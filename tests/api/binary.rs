//! The `coffer` binary itself: dev banner, working server, graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", "--dev", "-dev-listen-address=127.0.0.1:0"])
        .env("VAULT_DEV_ROOT_TOKEN_ID", "s3cr3t-root")
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
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("flag provided but not defined: -bogus"));
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
