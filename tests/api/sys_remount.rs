//! `sys/remount` (`bao secrets move`, `bao auth move`), `sys/remount/status/<id>` and `path-help`
//! (`?help=1`), over HTTP and with the real CLI. Texts and statuses are OpenBao 2.7.2's, checked
//! against its dev server.

use serde_json::{Value, json};

use crate::cli::Cli;
use crate::common::{Resp, TestServer};
use crate::production::ProdServer;
use coffer::clock::MockClock;

async fn remount(s: &TestServer, token: &str, from: &str, to: &str) -> Resp {
    s.post("sys/remount", token, json!({"from": from, "to": to}))
        .await
}

async fn approle_login(s: &TestServer, mount: &str) -> String {
    let root = &s.root;
    s.put(
        &format!("auth/{mount}/role/r"),
        root,
        json!({"token_policies": "default", "token_ttl": "1h"}),
    )
    .await
    .assert_status(204);
    let rid = s
        .get(&format!("auth/{mount}/role/r/role-id"), root)
        .await
        .body["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let sid = s
        .put(&format!("auth/{mount}/role/r/secret-id"), root, Value::Null)
        .await
        .body["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    let login = s
        .put(
            &format!("auth/{mount}/login"),
            "",
            json!({"role_id": rid, "secret_id": sid}),
        )
        .await;
    login.assert_status(200);
    login.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_secret_engine_moves_with_its_data_and_the_status_reports_success() {
    let s = TestServer::start().await;
    let root = s.root.clone();
    s.post("sys/mounts/a", &root, json!({"type": "kv-v2"}))
        .await
        .assert_status(204);
    s.put("a/data/x", &root, json!({"data": {"k": "v"}}))
        .await
        .assert_status(200);
    let before = s.get("sys/mounts/a", &root).await.body["data"].clone();

    let r = remount(&s, &root, "a", "b/c").await;
    r.assert_status(200);
    let id = r.body["data"]["migration_id"].as_str().unwrap().to_string();
    assert_eq!(r.body["migration_id"], id.as_str(), "{}", r.text);

    // Same engine (uuid, accessor, options), new path; the old one is gone.
    let after = s.get("sys/mounts/b/c", &root).await;
    after.assert_status(200);
    for k in ["uuid", "accessor", "type", "options"] {
        assert_eq!(after.body["data"][k], before[k], "{k}");
    }
    let gone = s.get("sys/mounts/a", &root).await;
    gone.assert_status(400);
    assert_eq!(gone.errors(), ["No secret engine mount at a/"]);
    assert_eq!(
        s.get("b/c/data/x", &root).await.body["data"]["data"]["k"],
        "v"
    );
    let gone = s.get("a/data/x", &root).await;
    gone.assert_status(404);
    assert_eq!(
        gone.errors(),
        ["no handler for route \"a/data/x\". route entry not found."]
    );

    let st = s.get(&format!("sys/remount/status/{id}"), &root).await;
    st.assert_status(200);
    assert_eq!(
        st.body["data"],
        json!({"migration_id": id, "migration_info": {
            "source_mount": "a/", "target_mount": "b/c/", "status": "success"}})
    );
    let unknown = s.get("sys/remount/status/nope", &root).await;
    unknown.assert_status(404);
    assert_eq!(unknown.text.trim(), r#"{"errors":[]}"#);

    // The status needs no sudo; the move does.
    s.write_policy(
        "mover",
        r#"path "sys/remount*" { capabilities = ["create", "read", "update"] }"#,
    )
    .await;
    let t = s.token_with(&["mover"], json!({})).await;
    s.get(&format!("sys/remount/status/{id}"), &t)
        .await
        .assert_status(200);
    let denied = remount(&s, &t, "b/c", "d").await;
    denied.assert_status(403);
    assert_eq!(
        denied.errors(),
        ["1 error occurred:\n\t* permission denied\n\n"]
    );
}

#[tokio::test]
async fn every_refusal_has_openbao_text() {
    let s = TestServer::start().await;
    let root = s.root.clone();
    for (path, kind) in [("e", "kv"), ("d", "kv"), ("f/g", "kv")] {
        s.post(&format!("sys/mounts/{path}"), &root, json!({"type": kind}))
            .await
            .assert_status(204);
    }
    for path in ["ap", "up"] {
        s.post(
            &format!("sys/auth/{path}"),
            &root,
            json!({"type": "approle"}),
        )
        .await
        .assert_status(204);
    }
    let missing = "both 'from' and 'to' path must be specified as a string";
    let cases: &[(Value, &str)] = &[
        (json!({}), missing),
        (json!({"from": "e"}), missing),
        (json!({"to": "e"}), missing),
        (
            json!({"from": "nope", "to": "x"}),
            "no matching mount at \"nope/\"",
        ),
        (
            json!({"from": "e/sub", "to": "x"}),
            "no matching mount at \"e/sub/\"",
        ),
        (
            json!({"from": "f", "to": "x"}),
            "no matching mount at \"f/\"",
        ),
        (
            json!({"from": "auth/nope", "to": "auth/zz"}),
            "no matching mount at \"auth/nope/\"",
        ),
        (
            json!({"from": "e", "to": "d"}),
            "path already in use at \"d/\"",
        ),
        (
            json!({"from": "e", "to": "d/sub"}),
            "path already in use at \"d/\"",
        ),
        (
            json!({"from": "e", "to": "f"}),
            "path already in use at \"f/g/\"",
        ),
        (
            json!({"from": "e", "to": "f/g/h"}),
            "path already in use at \"f/g/\"",
        ),
        (
            json!({"from": "e", "to": "e"}),
            "path already in use at \"e/\"",
        ),
        (
            json!({"from": "e", "to": "e/sub"}),
            "path already in use at \"e/\"",
        ),
        (
            json!({"from": "e", "to": "secret"}),
            "path already in use at \"secret/\"",
        ),
        (
            json!({"from": "auth/ap", "to": "auth/up"}),
            "path already in use at \"auth/up/\"",
        ),
        (
            json!({"from": "auth/ap", "to": "auth/ap/x"}),
            "path already in use at \"auth/ap/\"",
        ),
        (json!({"from": "sys", "to": "x"}), "cannot remount \"sys/\""),
        (
            json!({"from": "sys", "to": "sys/x"}),
            "cannot remount \"sys/\"",
        ),
        (
            json!({"from": "cubbyhole", "to": "x"}),
            "cannot remount \"cubbyhole/\"",
        ),
        (
            json!({"from": "identity", "to": "x"}),
            "cannot remount \"identity/\"",
        ),
        (
            json!({"from": "auth/token", "to": "auth/t2"}),
            "cannot remount \"auth/token/\"",
        ),
        (
            json!({"from": "nope", "to": "sys/x"}),
            "cannot remount to destination sys/x/",
        ),
        (
            json!({"from": "e", "to": "cubbyhole"}),
            "cannot remount to destination cubbyhole/",
        ),
        (
            json!({"from": "e", "to": "identity/x"}),
            "cannot remount to destination identity/x/",
        ),
        (
            json!({"from": "e", "to": "auth/e"}),
            "cannot remount to destination auth/e/",
        ),
        (
            json!({"from": "e", "to": "auth"}),
            "cannot remount to destination auth/",
        ),
        (
            json!({"from": "e", "to": "audit/x"}),
            "cannot remount to destination audit/x/",
        ),
        (
            json!({"from": "auth/ap", "to": "ap2"}),
            "cannot remount auth mount to non-auth mount \"ap2/\"",
        ),
        (
            json!({"from": "auth/ap", "to": "auth/token/x"}),
            "cannot remount to destination \"auth/token/x/\"",
        ),
        (
            json!({"from": "e", "to": "x\u{1}"}),
            "invalid destination mount: path cannot contain non-printable characters",
        ),
        // OpenBao accepts this one and creates a mount named `../x/`; Coffer refuses it.
        (
            json!({"from": "e", "to": "../x"}),
            "invalid destination mount: relative paths not supported",
        ),
    ];
    for (body, want) in cases {
        let r = s.post("sys/remount", &root, body.clone()).await;
        assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.text);
        assert_eq!(r.errors(), [*want], "{body}");
    }
    // Nothing moved.
    let mounts = s.get("sys/mounts", &root).await.body["data"].clone();
    for p in [
        "e/",
        "d/",
        "f/g/",
        "secret/",
        "sys/",
        "cubbyhole/",
        "identity/",
    ] {
        assert!(mounts.get(p).is_some(), "{p} missing: {mounts}");
    }
    let auths = s.get("sys/auth", &root).await.body["data"].clone();
    for p in ["ap/", "up/", "token/"] {
        assert!(auths.get(p).is_some(), "{p} missing: {auths}");
    }
    // Wrong methods on the family.
    s.get("sys/remount", &root).await.assert_status(405);
    s.put("sys/remount/status/x", &root, json!({}))
        .await
        .assert_status(405);
}

#[tokio::test]
async fn an_auth_mount_moves_with_its_roles_and_its_tokens_are_revoked() {
    let s = TestServer::start().await;
    let root = s.root.clone();
    s.post("sys/auth/ap", &root, json!({"type": "approle"}))
        .await
        .assert_status(204);
    let issued = approle_login(&s, "ap").await;
    let other = s.token_with(&["default"], json!({})).await;
    let rid = s.get("auth/ap/role/r/role-id", &root).await.body["data"]["role_id"].clone();

    remount(&s, &root, "auth/ap/", "auth/ap2/")
        .await
        .assert_status(200);

    // As in OpenBao: the tokens the mount issued are revoked with its old path; others live on.
    s.get("auth/token/lookup-self", &issued)
        .await
        .assert_status(403);
    s.get("auth/token/lookup-self", &other)
        .await
        .assert_status(200);
    // The roles moved along, and a new login works at the new path.
    assert_eq!(
        s.get("auth/ap2/role/r/role-id", &root).await.body["data"]["role_id"],
        rid
    );
    let fresh = approle_login(&s, "ap2").await;
    let look = s.get("auth/token/lookup-self", &fresh).await;
    look.assert_status(200);
    assert_eq!(look.body["data"]["path"], "auth/ap2/login");
    let auths = s.get("sys/auth", &root).await.body["data"].clone();
    assert!(auths.get("ap/").is_none() && auths.get("ap2/").is_some());
}

#[tokio::test]
async fn a_move_survives_a_restart_on_file_storage() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new();
    let p = ProdServer::start(dir.path(), clock.clone()).await;
    let (keys, _, root) = p.init(1, 1).await;
    p.unseal(&keys[0]).await.assert_status(200);
    let s = &p.srv;
    s.post("sys/mounts/kv", &root, json!({"type": "kv-v2"}))
        .await
        .assert_status(204);
    s.put("kv/data/app", &root, json!({"data": {"pw": "s3cret"}}))
        .await
        .assert_status(200);
    s.post("sys/auth/ci", &root, json!({"type": "approle"}))
        .await
        .assert_status(204);
    s.put(
        "auth/ci/role/r",
        &root,
        json!({"token_policies": "default"}),
    )
    .await
    .assert_status(204);
    remount(s, &root, "kv", "moved/kv").await.assert_status(200);
    remount(s, &root, "auth/ci", "auth/jenkins")
        .await
        .assert_status(200);
    p.stop().await;

    let p = ProdServer::start(dir.path(), clock).await;
    p.unseal(&keys[0]).await.assert_status(200);
    let s = &p.srv;
    let r = s.get("moved/kv/data/app", &root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["data"]["pw"], "s3cret");
    s.get("kv/data/app", &root).await.assert_status(404);
    s.get("auth/jenkins/role/r", &root).await.assert_status(200);
    s.get("auth/ci/role/r", &root).await.assert_status(404);
    p.stop().await;
}

#[tokio::test]
async fn path_help_serves_the_backend_help_to_any_valid_token() {
    let s = TestServer::start().await;
    let root = s.root.clone();
    // Help is not governed by policy (as in OpenBao): a token denied everything under
    // `secret/` still reads it; a missing or bad token does not.
    s.write_policy("denyall", r#"path "secret/*" { capabilities = ["deny"] }"#)
        .await;
    let denied = s.token_with(&["denyall"], json!({})).await;
    for tok in [root.as_str(), denied.as_str()] {
        let r = s.get("secret/data/foo?help=1", tok).await;
        r.assert_status(200);
        let help = r.body["help"].as_str().unwrap();
        assert!(
            help.starts_with("Request:        data/foo\nMatching Route: ^data/"),
            "{help}"
        );
        assert!(help.contains("## PARAMETERS"), "{help}");
        assert!(r.body["openapi"]["openapi"].is_string(), "{}", r.text);
        assert!(r.body.get("data").is_none(), "{}", r.text);
    }
    let root_help = s.get("secret?help=1", &denied).await;
    root_help.assert_status(200);
    let help = root_help.body["help"].as_str().unwrap();
    assert!(help.starts_with("## DESCRIPTION"), "{help}");
    assert!(help.contains("^data/"), "{help}");
    let sys = s.get("sys/remount?help=1", &denied).await;
    sys.assert_status(200);
    assert!(sys.body["help"].as_str().unwrap().contains("from (string)"));

    let none = s.req("GET", "secret/data/foo?help=1", None, None).await;
    none.assert_status(403);
    assert_eq!(none.errors(), ["permission denied"]);
    s.get("secret/data/foo?help=1", "bogus")
        .await
        .assert_status(403);
    let unmounted = s.get("nope/foo?help=1", &denied).await;
    unmounted.assert_status(404);
    assert_eq!(
        unmounted.errors(),
        ["no handler for route \"nope/foo\". route entry not found."]
    );
    let unknown = s.get("sys/bogus?help=1", &root).await;
    unknown.assert_status(404);
    assert_eq!(
        unknown.errors(),
        ["1 error occurred:\n\t* unsupported path\n\n"]
    );
}

#[tokio::test]
async fn the_cli_moves_engines_and_auth_methods_and_prints_help() {
    let s = TestServer::start().await;
    let Some(cli) = Cli::new(&s) else { return };
    let root = Some("root");
    cli.ok(root, &["secrets", "enable", "-path=a", "kv-v2"])
        .await;
    cli.ok(root, &["kv", "put", "a/x", "k=v"]).await;
    let out = cli.ok(root, &["secrets", "move", "a/", "b/"]).await;
    assert!(
        out.contains("Success! Finished moving secrets engine a/ to b/"),
        "{out}"
    );
    assert_eq!(
        cli.ok(root, &["kv", "get", "-field=k", "b/x"]).await.trim(),
        "v"
    );

    cli.ok(root, &["auth", "enable", "-path=ap", "approle"])
        .await;
    cli.ok(root, &["write", "auth/ap/role/r", "token_policies=default"])
        .await;
    let out = cli
        .ok(root, &["auth", "move", "auth/ap/", "auth/ap2/"])
        .await;
    assert!(
        out.contains("Success! Finished moving auth method auth/ap/ to auth/ap2/"),
        "{out}"
    );
    cli.ok(root, &["read", "auth/ap2/role/r"]).await;

    let refused = cli
        .run(root, &["secrets", "move", "sys/", "x/"], None)
        .await;
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("cannot remount \\\"sys/\\\"")
            || refused.stderr.contains("cannot remount \"sys/\""),
        "{}",
        refused.stderr
    );

    let help = cli.ok(root, &["path-help", "b/data/x"]).await;
    assert!(help.starts_with("Request:        data/x"), "{help}");
    let help = cli.ok(root, &["path-help", "b/"]).await;
    assert!(help.contains("## PATHS"), "{help}");
    let missing = cli.run(root, &["path-help", "nope/"], None).await;
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no handler for route"),
        "{}",
        missing.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_moves_of_one_mount_let_exactly_one_win() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let root = s.root.clone();
    for round in 0..10 {
        let src = format!("src{round}");
        s.post(
            &format!("sys/mounts/{src}"),
            &root,
            json!({"type": "kv-v2"}),
        )
        .await
        .assert_status(204);
        s.put(
            &format!("{src}/data/x"),
            &root,
            json!({"data": {"round": round}}),
        )
        .await
        .assert_status(200);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (s, root, src) = (s.clone(), root.clone(), src.clone());
            tasks.push(tokio::spawn(async move {
                let to = format!("dst{round}-{i}");
                let r = remount(&s, &root, &src, &to).await;
                (to, r.status.as_u16(), r.errors())
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (to, status, errors) = t.await.unwrap();
            match status {
                200 => winners.push(to),
                400 => assert_eq!(errors, [format!("no matching mount at \"{src}/\"")]),
                other => panic!("unexpected {other}: {errors:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        let r = s.get(&format!("{}/data/x", winners[0]), &root).await;
        r.assert_status(200);
        assert_eq!(r.body["data"]["data"]["round"], round);
        let mounts = s.get("sys/mounts", &root).await.body["data"].clone();
        let moved: Vec<_> = mounts
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(&format!("dst{round}-")) || k.starts_with(&format!("{src}/")))
            .collect();
        assert_eq!(moved, [&format!("{}/", winners[0])]);
    }
}
