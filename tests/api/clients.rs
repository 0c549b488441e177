//! Real client libraries against Coffer: the AppRole guide through hvac (Python) and node-vault
//! (Node), the scripts under `tests/clients/`. `scripts/test.sh` (README's test command) installs both (pinned): hvac into the
//! project's `.venv` (found through `CLIENTS_PYTHON`), node-vault with `npm ci` into
//! `tests/clients/node/node_modules` (or `CLIENTS_NODE_DIR/node_modules`).
//!
//! Like the CLI tests: when a client is not installed, the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::TestServer;

/// How long one suite may run before it is killed (a hung request must not hang the test run).
const SUITE_TIMEOUT: Duration = Duration::from_secs(180);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A client test whose client is missing fails: it is never reported as passed.
fn missing(what: &str) -> Option<PathBuf> {
    panic!(
        "{what} is not installed: run `bash scripts/test.sh` (README's test command), which installs it"
    );
}

/// True when `cmd` runs and exits 0 (used to probe for an interpreter and its packages).
fn probe(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Python interpreter that has hvac: `CLIENTS_PYTHON`, else the project's `.venv`.
fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CLIENTS_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = manifest_dir().join(".venv/bin/python");
    if venv.exists() && probe(Command::new(&venv).args(["-c", "import hvac"])) {
        return Some(venv);
    }
    missing("hvac (CLIENTS_PYTHON, or hvac in .venv)")
}

/// The directory whose `node_modules` holds node-vault: `CLIENTS_NODE_DIR`, else
/// `tests/clients/node`. Also requires `node` on PATH.
fn node_dir() -> Option<PathBuf> {
    let dir = std::env::var("CLIENTS_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest_dir().join("tests/clients/node"));
    if !dir.join("node_modules/node-vault/package.json").exists() {
        return missing("node-vault (npm ci --prefix tests/clients/node, or CLIENTS_NODE_DIR)");
    }
    if !probe(Command::new("node").arg("--version")) {
        return missing("node");
    }
    Some(dir)
}

/// What a suite printed and how it ended.
struct Run {
    code: Option<i32>,
    output: String,
}

/// Runs `program args` with `VAULT_ADDR`/`VAULT_TOKEN` pointing at `srv` (root token), a clean
/// environment, output captured to a file (no pipe to fill), and a deadline. Blocking work runs
/// on the blocking pool: the server lives on this test's runtime.
async fn run_suite(
    srv: &TestServer,
    program: &Path,
    args: &[PathBuf],
    env: &[(&str, String)],
) -> Run {
    let out_dir = tempfile::tempdir().unwrap();
    let out_path = out_dir.path().join("output.txt");
    let out_file = std::fs::File::create(&out_path).unwrap();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(out_dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", out_dir.path())
        .env("VAULT_ADDR", format!("http://{}", srv.addr))
        .env("VAULT_TOKEN", &srv.root)
        .stdin(Stdio::null())
        .stdout(out_file.try_clone().unwrap())
        .stderr(out_file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let what = format!("{} {args:?}", program.display());
    let code = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if start.elapsed() > SUITE_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    Run { code, output }
}

/// Asserts a clean run: exit 0 and a final `N passed, 0 failed` line with N > 0.
#[track_caller]
fn assert_all_passed(suite: &str, run: &Run) {
    let Some(code) = run.code else {
        panic!("{suite} timed out after {SUITE_TIMEOUT:?}:\n{}", run.output);
    };
    assert_eq!(code, 0, "{suite} failed:\n{}", run.output);
    let summary = run
        .output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let passed = summary
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse::<u32>().ok());
    assert!(
        passed.is_some_and(|n| n > 0),
        "{suite}: unexpected summary line {summary:?}:\n{}",
        run.output
    );
    eprintln!("{suite}: {summary}");
}

#[tokio::test]
async fn hvac_guide() {
    let Some(python) = python() else { return };
    let srv = TestServer::start().await;
    let script = manifest_dir().join("tests/clients/hvac_guide.py");
    let run = run_suite(&srv, &python, &[script], &[]).await;
    assert_all_passed("hvac guide", &run);
}

#[tokio::test]
async fn node_vault_guide() {
    let Some(dir) = node_dir() else { return };
    let srv = TestServer::start().await;
    let script = manifest_dir().join("tests/clients/node/guide.js");
    let node_path = dir.join("node_modules").display().to_string();
    let run = run_suite(
        &srv,
        Path::new("node"),
        &[script],
        &[("NODE_PATH", node_path)],
    )
    .await;
    assert_all_passed("node-vault guide", &run);
}
