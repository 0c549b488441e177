//! The user's reference scenario (Vault's "AppRole pull authentication" guide), every command run
//! with the real CLI against Coffer, in order, checking what it prints; then the everyday kv
//! commands around it.

use serde_json::json;

use crate::cli::{Cli, row};
use crate::common::TestServer;

const JENKINS_POL: &str = "# Read-only permission on 'secret/data/mysql/*' path\npath \"secret/data/mysql/*\" {\n  capabilities = [ \"read\" ]\n}\n";

#[tokio::test]
async fn approle_pull_authentication_guide_with_the_cli() {
    let srv = TestServer::start().await;
    let Some(cli) = Cli::new(&srv) else { return };
    let admin = Some(srv.root.as_str());

    // Step 1: enable AppRole.
    let out = cli.ok(admin, &["auth", "enable", "approle"]).await;
    assert_eq!(
        out.trim(),
        "Success! Enabled approle auth method at: approle/"
    );

    // Step 2: the policy and the role.
    std::fs::write(cli.home.path().join("jenkins-pol.hcl"), JENKINS_POL).unwrap();
    let out = cli
        .ok(admin, &["policy", "write", "jenkins", "jenkins-pol.hcl"])
        .await;
    assert_eq!(out.trim(), "Success! Uploaded policy: jenkins");
    let out = cli
        .ok(
            admin,
            &[
                "write",
                "auth/approle/role/jenkins",
                "token_policies=jenkins",
                "token_ttl=1h",
                "token_max_ttl=4h",
            ],
        )
        .await;
    assert_eq!(
        out.trim(),
        "Success! Data written to: auth/approle/role/jenkins"
    );
    let table = cli.ok(admin, &["read", "auth/approle/role/jenkins"]).await;
    for (key, value) in [
        ("bind_secret_id", "true"),
        ("local_secret_ids", "false"),
        ("secret_id_bound_cidrs", "<nil>"),
        ("secret_id_num_uses", "0"),
        ("secret_id_ttl", "0s"),
        ("token_bound_cidrs", "[]"),
        ("token_explicit_max_ttl", "0s"),
        ("token_max_ttl", "4h"),
        ("token_no_default_policy", "false"),
        ("token_num_uses", "0"),
        ("token_period", "0s"),
        ("token_policies", "[jenkins]"),
        ("token_ttl", "1h"),
        ("token_type", "default"),
    ] {
        assert_eq!(row(&table, key), Some(value), "{key} in\n{table}");
    }

    // Step 3: RoleID and SecretID.
    let out = cli
        .ok(admin, &["read", "auth/approle/role/jenkins/role-id"])
        .await;
    let role_id = row(&out, "role_id").unwrap().to_string();
    assert_eq!(role_id.len(), 36, "{out}");
    let out = cli
        .ok(
            admin,
            &["write", "-f", "auth/approle/role/jenkins/secret-id"],
        )
        .await;
    let secret_id = row(&out, "secret_id").unwrap().to_string();
    assert!(
        row(&out, "secret_id_accessor").is_some_and(|a| a.len() == 36),
        "{out}"
    );
    assert_eq!(row(&out, "secret_id_num_uses"), Some("0"));
    assert_eq!(row(&out, "secret_id_ttl"), Some("0s"));

    // Step 4: login, with the admin token still configured (it must be ignored).
    let rid = format!("role_id={role_id}");
    let sid = format!("secret_id={secret_id}");
    let out = cli
        .ok(admin, &["write", "auth/approle/login", &rid, &sid])
        .await;
    let app_token = row(&out, "token").unwrap().to_string();
    assert_eq!(row(&out, "token_duration"), Some("1h"), "{out}");
    assert_eq!(row(&out, "token_renewable"), Some("true"));
    assert_eq!(
        row(&out, "token_policies"),
        Some("[\"default\" \"jenkins\"]")
    );
    assert_eq!(row(&out, "identity_policies"), Some("[]"));
    assert_eq!(row(&out, "policies"), Some("[\"default\" \"jenkins\"]"));
    assert_eq!(row(&out, "token_meta_role_name"), Some("jenkins"));
    let app = Some(app_token.as_str());

    // Step 5: read with the AppRole token: nothing there yet (kv-v2 prints the data/ path).
    let o = cli
        .run(app, &["kv", "get", "secret/mysql/webapp"], None)
        .await;
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr
            .contains("No value found at secret/data/mysql/webapp"),
        "{}",
        o.stderr
    );
    // vault login with the token.
    let out = cli.ok(None, &["login", &app_token]).await;
    assert!(out.contains("Success! You are now authenticated."), "{out}");
    assert_eq!(row(&out, "token_meta_role_name"), Some("jenkins"));
    assert_eq!(
        row(&out, "token_policies"),
        Some("[\"default\" \"jenkins\"]")
    );
    // The token helper file now holds it: no VAULT_TOKEN needed.
    let o = cli
        .run(None, &["kv", "get", "secret/mysql/webapp"], None)
        .await;
    assert!(
        o.stderr
            .contains("No value found at secret/data/mysql/webapp"),
        "{}",
        o.stderr
    );

    // The admin stores the secret from a JSON file; the app reads it.
    std::fs::write(
        cli.home.path().join("mysqldb.json"),
        r#"{"url": "", "db_name": "users", "username": "admin", "password": "pa$$w0rd"}"#,
    )
    .unwrap();
    let out = cli
        .ok(
            admin,
            &["kv", "put", "secret/mysql/webapp", "@mysqldb.json"],
        )
        .await;
    assert!(out.contains("secret/data/mysql/webapp"), "{out}");
    assert_eq!(row(&out, "version"), Some("1"), "{out}");
    let out = cli.ok(app, &["kv", "get", "secret/mysql/webapp"]).await;
    assert_eq!(row(&out, "password"), Some("pa$$w0rd"), "{out}");
    assert_eq!(row(&out, "db_name"), Some("users"));
    assert_eq!(row(&out, "url"), Some("n/a"));
    let o = cli
        .run(
            app,
            &["kv", "put", "secret/mysql/webapp", "password=x"],
            None,
        )
        .await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("permission denied"), "{}", o.stderr);

    // Response-wrapped SecretID.
    let out = cli
        .ok(
            admin,
            &[
                "write",
                "-wrap-ttl=60s",
                "-f",
                "auth/approle/role/jenkins/secret-id",
            ],
        )
        .await;
    assert_eq!(row(&out, "wrapping_token_ttl:"), Some("1m"), "{out}");
    assert_eq!(
        row(&out, "wrapping_token_creation_path:"),
        Some("auth/approle/role/jenkins/secret-id")
    );
    let wrapped_accessor = row(&out, "wrapped_accessor:").unwrap().to_string();
    let wt = row(&out, "wrapping_token:").unwrap().to_string();
    let out = cli.ok(Some(&wt), &["unwrap"]).await;
    let wrapped_sid = row(&out, "secret_id").unwrap().to_string();
    assert_eq!(
        row(&out, "secret_id_accessor"),
        Some(wrapped_accessor.as_str()),
        "{out}"
    );
    let o = cli.run(Some(&wt), &["unwrap"], None).await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("wrapping token is not valid or does not exist"),
        "{}",
        o.stderr
    );
    let wsid = format!("secret_id={wrapped_sid}");
    cli.ok(None, &["write", "auth/approle/login", &rid, &wsid])
        .await;

    // Limit the SecretID usages: 10 logins, the 11th fails.
    cli.ok(
        admin,
        &[
            "write",
            "auth/approle/role/jenkins",
            "token_policies=jenkins",
            "token_ttl=1h",
            "token_max_ttl=4h",
            "secret_id_num_uses=10",
        ],
    )
    .await;
    assert_eq!(
        row(
            &cli.ok(admin, &["read", "auth/approle/role/jenkins"]).await,
            "secret_id_num_uses"
        ),
        Some("10")
    );
    let out = cli
        .ok(
            admin,
            &["write", "-f", "auth/approle/role/jenkins/secret-id"],
        )
        .await;
    assert_eq!(row(&out, "secret_id_num_uses"), Some("10"), "{out}");
    let limited = format!("secret_id={}", row(&out, "secret_id").unwrap());
    for i in 0..10 {
        let o = cli
            .run(None, &["write", "auth/approle/login", &rid, &limited], None)
            .await;
        assert_eq!(o.code, 0, "login {i}: {}", o.stderr);
    }
    let o = cli
        .run(None, &["write", "auth/approle/login", &rid, &limited], None)
        .await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("* invalid role or secret ID"),
        "{}",
        o.stderr
    );
}

#[tokio::test]
async fn everyday_kv_commands() {
    let srv = TestServer::start().await;
    let Some(cli) = Cli::new(&srv) else { return };
    let root = Some(srv.root.as_str());
    cli.ok(root, &["kv", "put", "secret/app/db", "user=a", "pass=1"])
        .await;
    cli.ok(root, &["kv", "put", "secret/app/db", "user=b", "pass=2"])
        .await;
    let out = cli
        .ok(root, &["kv", "get", "-version=1", "secret/app/db"])
        .await;
    assert_eq!(row(&out, "user"), Some("a"), "{out}");
    let out = cli
        .ok(root, &["kv", "patch", "secret/app/db", "pass=3"])
        .await;
    assert_eq!(row(&out, "version"), Some("3"), "{out}");
    let got = cli.json(root, &["kv", "get"], &["secret/app/db"]).await;
    assert_eq!(got["data"]["data"], json!({"user": "b", "pass": "3"}));
    let out = cli
        .ok(root, &["kv", "metadata", "get", "secret/app/db"])
        .await;
    assert_eq!(row(&out, "current_version"), Some("3"), "{out}");
    assert!(
        out.contains("====== Version 1 ======") || out.contains("== Version 1 =="),
        "{out}"
    );
    let out = cli.ok(root, &["kv", "list", "secret/app"]).await;
    assert!(out.lines().any(|l| l.trim() == "db"), "{out}");
    let out = cli.ok(root, &["kv", "delete", "secret/app/db"]).await;
    assert_eq!(
        out.trim(),
        "Success! Data deleted (if it existed) at: secret/data/app/db"
    );
    let o = cli.run(root, &["kv", "get", "secret/app/db"], None).await;
    assert_eq!(
        o.code, 0,
        "a deleted version prints its metadata: {}",
        o.stderr
    );
    assert!(o.stdout.contains("deletion_time"), "{}", o.stdout);
    let out = cli
        .ok(root, &["kv", "undelete", "-versions=3", "secret/app/db"])
        .await;
    assert_eq!(
        out.trim(),
        "Success! Data written to: secret/undelete/app/db"
    );
    assert_eq!(
        row(&cli.ok(root, &["kv", "get", "secret/app/db"]).await, "pass"),
        Some("3")
    );
    let out = cli
        .ok(root, &["kv", "destroy", "-versions=1", "secret/app/db"])
        .await;
    assert_eq!(
        out.trim(),
        "Success! Data written to: secret/destroy/app/db"
    );
    let md = cli
        .json(root, &["kv", "metadata", "get"], &["secret/app/db"])
        .await;
    assert_eq!(md["data"]["versions"]["1"]["destroyed"], true);
    cli.ok(root, &["kv", "metadata", "delete", "secret/app/db"])
        .await;
    let o = cli.run(root, &["kv", "list", "secret/app"], None).await;
    assert_eq!(o.code, 2);
    // kv v1 at another mount.
    cli.ok(root, &["secrets", "enable", "-path=old", "kv"])
        .await;
    cli.ok(root, &["kv", "put", "old/x", "a=1"]).await;
    assert_eq!(
        row(&cli.ok(root, &["kv", "get", "old/x"]).await, "a"),
        Some("1")
    );
    let o = cli
        .run(root, &["kv", "metadata", "get", "old/x"], None)
        .await;
    assert_ne!(o.code, 0);
    let out = cli.ok(root, &["secrets", "list"]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("old/") && l.contains("kv")),
        "{out}"
    );
    let out = cli.ok(root, &["secrets", "disable", "old"]).await;
    assert!(
        out.contains("Success! Disabled the secrets engine (if it existed) at: old/"),
        "{out}"
    );
}
