//! Audit devices (`sys/audit`, the `file` device): enable/list/disable, Vault's entry format
//! field by field, HMACs equal to `sys/audit-hash`, no plaintext in the log, fail-closed, and
//! devices reopened after a restart.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer::clock::MockClock;
use coffer::config::ServerConfig;

use crate::common::TestServer;
use crate::production::ProdServer;

async fn enable(srv: &TestServer, path: &str, options: Value) -> crate::common::Resp {
    srv.put(
        &format!("sys/audit/{path}"),
        &srv.root,
        json!({"type": "file", "description": "", "options": options, "local": false}),
    )
    .await
}

/// A dev server with a `file` device at `file/` writing to `audit.log` in a temp dir (kept
/// while the returned `TempDir` lives).
async fn with_file_device() -> (TestServer, tempfile::TempDir, PathBuf) {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.log");
    enable(&srv, "file", json!({"file_path": file.to_str().unwrap()}))
        .await
        .assert_status(204);
    (srv, dir, file)
}

/// Enables AppRole at `approle/`, writes role `name` with `body`, and returns its role id.
async fn approle_with_role(srv: &TestServer, name: &str, body: Value) -> String {
    srv.post("sys/auth/approle", &srv.root, json!({"type": "approle"}))
        .await
        .assert_status(204);
    srv.post(&format!("auth/approle/role/{name}"), &srv.root, body)
        .await
        .assert_status(204);
    srv.get(&format!("auth/approle/role/{name}/role-id"), &srv.root)
        .await
        .body["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The file's text once a line holds `needle` and the file is a whole number of lines (5 s).
async fn eventually(file: &Path, needle: &str) -> PathBuf {
    for _ in 0..500 {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.ends_with('\n')
            && text
                .lines()
                .any(|l| l.contains(needle) && l.contains(r#""type":"response""#))
        {
            return file.to_path_buf();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{needle} never reached {}", file.display());
}

fn lines(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The entry of `kind` (`request`/`response`) whose request path is `path` (the last one).
fn entry<'a>(entries: &'a [Value], kind: &str, path: &str) -> &'a Value {
    entries
        .iter()
        .rev()
        .find(|e| e["type"] == kind && e["request"]["path"] == path)
        .unwrap_or_else(|| panic!("no {kind} entry for {path}"))
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

/// A response entry's `error` is `error` and its `response.data.error` the HMAC of `message`
/// (Vault's error response), under the `file` device.
async fn error_response_is(srv: &TestServer, resp: &Value, error: &str, message: &str) {
    assert_eq!(resp["error"], error, "{resp}");
    assert_eq!(
        resp["response"]["data"]["error"],
        hash(srv, "file", message).await,
        "{resp}"
    );
}

/// The keys of `want` in the order their first `"key":` appears in `text`.
fn order_in<'a>(text: &str, want: &[&'a str]) -> Vec<&'a str> {
    let mut found: Vec<(usize, &str)> = want
        .iter()
        .filter_map(|k| text.find(&format!("\"{k}\":")).map(|i| (i, *k)))
        .collect();
    found.sort_unstable();
    found.into_iter().map(|(_, k)| k).collect()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn enable_list_disable_and_refusals() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sub/audit.log");
    let file_s = file.to_str().unwrap();

    let r = srv.get("sys/audit", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"], json!({}));

    enable(&srv, "file", json!({"file_path": file_s}))
        .await
        .assert_status(204);
    let r = srv.get("sys/audit", &srv.root).await;
    r.assert_status(200);
    let want = json!({"type": "file", "description": "", "options": {"file_path": file_s},
                      "local": false, "path": "file/"});
    assert_eq!(r.body["data"]["file/"], want);
    assert_eq!(r.body["file/"], want, "copied to the top level as in Vault");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
    }

    // Overlapping paths either way.
    let r = enable(&srv, "file/sub", json!({"file_path": file_s})).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec!["path already in use"]);
    let r = enable(&srv, "file", json!({"file_path": file_s})).await;
    assert_eq!(r.errors(), vec!["path already in use"]);

    let r = srv
        .put(
            "sys/audit/s",
            &srv.root,
            json!({"type": "nope", "options": {}}),
        )
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec!["unknown backend type: \"nope\""]);
    let r = enable(&srv, "nopath", json!({})).await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec!["file_path is required"]);
    let r = enable(&srv, "x", json!({"file_path": "discard", "format": "yaml"})).await;
    assert_eq!(r.errors(), vec!["unknown format type \"yaml\""]);
    let r = enable(
        &srv,
        "x",
        json!({"file_path": "discard", "log_raw": "maybe"}),
    )
    .await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        vec!["strconv.ParseBool: parsing \"maybe\": invalid syntax"]
    );
    let r = enable(&srv, "x", json!({"file_path": "discard", "mode": "9z"})).await;
    assert_eq!(
        r.errors(),
        vec!["strconv.ParseUint: parsing \"9z\": invalid syntax"]
    );
    for (bad, why) in [
        ("soon", "time: invalid duration \"soon\""),
        ("-1s", "\"-1s\" is negative"),
    ] {
        let r = enable(
            &srv,
            "x",
            json!({"file_path": file_s, "fsync_interval": bad}),
        )
        .await;
        r.assert_status(400);
        assert_eq!(r.errors(), vec![format!("invalid fsync_interval: {why}")]);
    }

    // A file that cannot be opened, and one that cannot be written: 400 naming the reason.
    let blocker = dir.path().join("plain-file");
    std::fs::write(&blocker, b"x").unwrap();
    let bad = blocker.join("audit.log");
    let r = enable(&srv, "bad", json!({"file_path": bad.to_str().unwrap()})).await;
    r.assert_status(400);
    let msg = &r.errors()[0];
    assert!(
        msg.starts_with(&format!(
            "sanity check failed; unable to open \"{}\" for writing: ",
            bad.display()
        )),
        "{msg}"
    );
    let r = enable(&srv, "full", json!({"file_path": "/dev/full"})).await;
    r.assert_status(400);
    assert!(
        r.errors()[0].starts_with("audit backend failed test message: "),
        "{:?}",
        r.errors()
    );
    assert_eq!(
        srv.get("sys/audit", &srv.root).await.body["data"],
        json!({"file/": want})
    );

    // mode is never executable.
    let exec = dir.path().join("exec.log");
    enable(
        &srv,
        "exec",
        json!({"file_path": exec.to_str().unwrap(), "mode": "0777"}),
    )
    .await
    .assert_status(204);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&exec).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o666);
    }

    // sudo: a token without it is refused; audit-hash needs only update on its path.
    let t = srv.token_with(&["default"], json!({})).await;
    srv.get("sys/audit", &t).await.assert_status(403);
    srv.put(
        "sys/audit/y",
        &t,
        json!({"type": "file", "options": {"file_path": "discard"}}),
    )
    .await
    .assert_status(403);

    let r = srv
        .put("sys/audit-hash/nope", &srv.root, json!({"input": "x"}))
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), vec!["unknown audit backend \"nope/\""]);
    let r = srv
        .put("sys/audit-hash/file", &srv.root, json!({"input": ""}))
        .await;
    assert_eq!(r.errors(), vec!["the \"input\" parameter is empty"]);
    let h = hash(&srv, "file", "hello").await;
    assert!(h.starts_with("hmac-sha256:") && h.len() == 12 + 64, "{h}");

    // Disable: 204, also when nothing is there; hashes of a re-enabled path change (new salt).
    srv.delete("sys/audit/file", &srv.root)
        .await
        .assert_status(204);
    srv.delete("sys/audit/file", &srv.root)
        .await
        .assert_status(204);
    srv.delete("sys/audit/exec", &srv.root)
        .await
        .assert_status(204);
    assert_eq!(
        srv.get("sys/audit", &srv.root).await.body["data"],
        json!({})
    );
    enable(&srv, "file", json!({"file_path": "discard"}))
        .await
        .assert_status(204);
    assert_ne!(hash(&srv, "file", "hello").await, h);
}

#[tokio::test]
async fn entries_field_by_field_with_hmacs_and_no_plaintext() {
    let (srv, _dir, file) = with_file_device().await;

    // kv write + read.
    let secret = "canary-secret-value-7f3a";
    srv.put(
        "secret/data/app",
        &srv.root,
        json!({"data": {"password": secret, "n": 5}}),
    )
    .await
    .assert_status(200);
    srv.get("secret/data/app", &srv.root)
        .await
        .assert_status(200);

    // AppRole login.
    let role_id = approle_with_role(&srv, "app", json!({"token_policies": "default"})).await;
    let secret_id = srv
        .post("auth/approle/role/app/secret-id", &srv.root, json!({}))
        .await
        .body["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    let login = srv
        .post(
            "auth/approle/login",
            "",
            json!({"role_id": role_id, "secret_id": secret_id}),
        )
        .await;
    login.assert_status(200);
    let app_token = login.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let app_accessor = login.body["auth"]["accessor"].as_str().unwrap().to_string();

    // A 403.
    srv.get("secret/data/app", &app_token)
        .await
        .assert_status(403);

    let root_hash = hash(&srv, "file", &srv.root).await;
    let entries = lines(&file);

    // kv write, request entry.
    let req = entry(&entries, "request", "secret/data/app");
    let w = entries
        .iter()
        .find(|e| e["type"] == "request" && e["request"]["operation"] == "create")
        .unwrap();
    assert_eq!(keys(w), vec!["auth", "request", "time", "type"]);
    let t = w["time"].as_str().unwrap();
    assert!(t.ends_with('Z') && t.len() >= 20, "{t}");
    assert_eq!(
        keys(&w["auth"]),
        vec![
            "accessor",
            "client_token",
            "display_name",
            "policies",
            "policy_results",
            "token_issue_time",
            "token_policies",
            "token_type"
        ]
    );
    assert_eq!(w["auth"]["client_token"], root_hash);
    assert_eq!(w["auth"]["display_name"], "token");
    assert_eq!(w["auth"]["policies"], json!(["root"]));
    assert_eq!(w["auth"]["token_type"], "service");
    let r = &w["request"];
    assert_eq!(
        keys(r),
        vec![
            "client_id",
            "client_token",
            "client_token_accessor",
            "data",
            "id",
            "mount_accessor",
            "mount_class",
            "mount_point",
            "mount_running_version",
            "mount_type",
            "namespace",
            "operation",
            "path",
            "remote_address",
            "remote_port"
        ]
    );
    // OpenBao's client id of a token without entity: its policies and namespace, hashed (the
    // value OpenBao 2.7.2 logs for a dev root token).
    assert_eq!(
        r["client_id"],
        "0DHqvq2D77kL2/JTPSZkTMJbkFVmUu0TzMi0jiXcFy8="
    );
    assert!(r["remote_port"].as_u64().unwrap() > 0);
    assert_eq!(
        r["mount_running_version"],
        format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(r["client_token"], root_hash);
    assert_eq!(r["client_token_accessor"], w["auth"]["accessor"]);
    assert!(
        r["client_token_accessor"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert_eq!(r["mount_point"], "secret/");
    assert_eq!(r["mount_type"], "kv");
    assert_eq!(r["mount_class"], "secret");
    assert_eq!(r["namespace"], json!({"id": "root"}));
    assert_eq!(r["remote_address"], "127.0.0.1");
    let secret_hash = hash(&srv, "file", secret).await;
    assert_eq!(
        r["data"],
        json!({"data": {"password": secret_hash, "n": 5}})
    );

    // Byte layout: Go's struct field order, as OpenBao 2.7.2 wrote the same request (captured
    // there).
    let raw = std::fs::read_to_string(&file).unwrap();
    let line = raw
        .lines()
        .find(|l| l.contains(r["id"].as_str().unwrap()))
        .unwrap();
    assert!(line.starts_with(r#"{"time":""#), "{line}");
    let top = ["time", "type", "auth", "request"];
    assert_eq!(order_in(line, &top), top);
    let auth = line.split(r#""request":{"#).next().unwrap();
    let bao_auth = [
        "client_token",
        "accessor",
        "display_name",
        "policies",
        "token_policies",
        "policy_results",
        "token_type",
        "token_issue_time",
    ];
    assert_eq!(order_in(auth, &bao_auth), bao_auth);
    let request = line.split(r#""request":{"#).nth(1).unwrap();
    let bao_request = [
        "id",
        "client_id",
        "operation",
        "mount_point",
        "mount_type",
        "mount_accessor",
        "mount_running_version",
        "mount_class",
        "client_token",
        "client_token_accessor",
        "namespace",
        "path",
        "data",
        "remote_address",
        "remote_port",
    ];
    assert_eq!(order_in(request, &bao_request), bao_request);
    assert!(
        request.contains(r#""data":{"data":{"n":5,"password":"hmac-sha256:"#),
        "{line}"
    );

    // Its response entry: same request, response with the mount and the hashed data.
    let wr = entries
        .iter()
        .find(|e| e["type"] == "response" && e["request"]["id"] == r["id"])
        .unwrap();
    assert_eq!(
        keys(wr),
        vec!["auth", "request", "response", "time", "type"]
    );
    assert_eq!(wr["request"], *r);
    assert_eq!(wr["response"]["mount_type"], "kv");
    assert_eq!(
        wr["response"]["mount_running_plugin_version"],
        r["mount_running_version"]
    );
    assert_eq!(wr["response"]["data"]["version"], 1);
    // Timestamps are not hashed.
    let created = wr["response"]["data"]["created_time"].as_str().unwrap();
    assert!(!created.starts_with("hmac-sha256:"), "{created}");

    // kv read (the last successful one is root's; the 403 came later as app's).
    let read = entries
        .iter()
        .find(|e| {
            e["type"] == "response"
                && e["request"]["operation"] == "read"
                && e["request"]["path"] == "secret/data/app"
                && e.get("error").is_none()
        })
        .unwrap();
    assert_eq!(read["response"]["data"]["data"]["password"], secret_hash);
    // As in OpenBao, a read's request entry has no mount accessor yet (no existence check
    // resolved it); its response entry has.
    let read_req = entries
        .iter()
        .find(|e| e["type"] == "request" && e["request"]["id"] == read["request"]["id"])
        .unwrap();
    assert!(read_req["request"].get("mount_accessor").is_none());
    assert!(read["request"]["mount_accessor"].is_string());

    // AppRole login: request auth is Vault's {"token_type": "default"}; response.auth hashed.
    let lr = entry(&entries, "request", "auth/approle/login");
    assert_eq!(
        lr["auth"],
        json!({"policy_results": {"allowed": true}, "token_type": "default"})
    );
    assert!(lr["request"].get("client_token").is_none());
    assert_eq!(lr["request"]["mount_class"], "auth");
    assert_eq!(lr["request"]["mount_type"], "approle");
    assert_eq!(
        lr["request"]["data"]["secret_id"],
        hash(&srv, "file", &secret_id).await
    );
    let lresp = entry(&entries, "response", "auth/approle/login");
    let a = &lresp["response"]["auth"];
    assert_eq!(a["client_token"], hash(&srv, "file", &app_token).await);
    assert_eq!(a["accessor"], hash(&srv, "file", &app_accessor).await);
    assert_eq!(a["display_name"], "approle");
    assert_eq!(a["policies"], json!(["default"]));
    assert_eq!(a["metadata"], json!({"role_name": "app"}));
    assert_eq!(a["token_type"], "service");
    assert!(a["token_ttl"].as_i64().unwrap() > 0);
    assert!(a.get("token_issue_time").is_none());
    // A login's entry shows the issued token as its auth, and that this first login created
    // the alias's entity.
    let mut entry_auth = lresp["auth"].clone();
    assert_eq!(entry_auth["entity_created"], true);
    entry_auth.as_object_mut().unwrap().remove("entity_created");
    assert_eq!(entry_auth, *a);

    // The 403: both entries carry Go's multierror text.
    let denied: Vec<&Value> = entries
        .iter()
        .filter(|e| e["request"]["path"] == "secret/data/app" && e.get("error").is_some())
        .collect();
    assert_eq!(denied.len(), 2, "{denied:?}");
    for e in &denied {
        assert_eq!(e["error"], "1 error occurred:\n\t* permission denied\n\n");
        assert_eq!(
            e["auth"]["client_token"],
            hash(&srv, "file", &app_token).await
        );
        assert_eq!(e["auth"]["display_name"], "approle");
    }
    assert_eq!(denied[0]["type"], "request");
    assert_eq!(denied[1]["type"], "response");
    assert_eq!(req["request"]["path"], "secret/data/app");

    // Plaintext canaries never reach the file (the dev root token is literally "root", also a
    // policy name, so it is checked through its hash above instead).
    let text = std::fs::read_to_string(&file).unwrap();
    for canary in [secret, &secret_id, &app_token, &app_accessor, &role_id] {
        assert!(
            !text.contains(canary),
            "plaintext {canary} in the audit log"
        );
    }
}

/// A response's warnings reach its response entry as plain text after `data`, and those of a
/// wrapped response too, although the wrapped HTTP answer shows none (as OpenBao 2.7.2 logs a
/// token lookup with an unknown parameter, plain and wrapped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_warnings_reach_the_entry_even_when_the_response_is_wrapped() {
    let (srv, _dir, file) = with_file_device().await;
    let warning = "Endpoint ignored these unrecognized parameters: [foo]";
    let body = json!({"token": srv.root, "foo": "bar"});
    let plain = srv.post("auth/token/lookup", &srv.root, body.clone()).await;
    plain.assert_status(200);
    assert_eq!(plain.body["warnings"], json!([warning]));
    let wrapped = TestServer::finish(
        srv.client
            .post(srv.url("auth/token/lookup"))
            .header("X-Vault-Token", &srv.root)
            .header("X-Vault-Wrap-TTL", "60")
            .body(body.to_string()),
    )
    .await;
    wrapped.assert_status(200);
    assert_eq!(wrapped.body["warnings"], Value::Null);
    let wrap_token = wrapped.body["wrap_info"]["token"].as_str().unwrap();

    let mut responses = Vec::new();
    for _ in 0..500 {
        responses = lines(&file)
            .into_iter()
            .filter(|e| e["type"] == "response" && e["request"]["path"] == "auth/token/lookup")
            .collect();
        if responses.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(responses.len(), 2, "{responses:?}");
    let (p, w) = (&responses[0]["response"], &responses[1]["response"]);
    assert_eq!(p["warnings"], json!([warning]));
    assert!(
        p["data"]["id"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert_eq!(w["warnings"], json!([warning]));
    assert!(w.get("data").is_none());
    assert_eq!(
        w["wrap_info"]["token"],
        hash(&srv, "file", wrap_token).await
    );
    // Go's field order: ... data, warnings, wrap_info.
    let raw = std::fs::read_to_string(&file).unwrap();
    let text: Vec<&str> = raw
        .lines()
        .filter(|l| l.contains(r#""type":"response""#) && l.contains("auth/token/lookup"))
        .collect();
    let tail = |l: &str| l.split(r#""response":{"#).nth(1).unwrap().to_string();
    assert_eq!(
        order_in(&tail(text[0]), &["mount_class", "data", "warnings"]),
        ["mount_class", "data", "warnings"]
    );
    assert_eq!(
        order_in(&tail(text[1]), &["mount_class", "warnings", "wrap_info"]),
        ["mount_class", "warnings", "wrap_info"]
    );
    // Requests without warnings keep omitting the key.
    assert!(!raw.contains(r#""warnings":null"#) && !raw.contains(r#""warnings":[]"#));
}

/// Error entries as Vault writes them (each case compared with OpenBao 2.7.2's file device):
/// the entry's `error` is the Go error the backend returned beside its error response, which
/// is not always the HTTP message, and that message is under `response.data.error`, hashed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_entries_keep_the_go_error_and_hash_the_message_as_vault() {
    let (srv, _dir, file) = with_file_device().await;
    let multi = |m: &str| format!("1 error occurred:\n\t* {m}\n\n");
    let entries_of = |path: &str| -> (Value, Value) {
        let all = lines(&file);
        let pick = |kind: &str| entry(&all, kind, path).clone();
        (pick("request"), pick("response"))
    };
    let token_type_only = json!({"token_type": "default"});

    // No token, and a token that does not exist: plain `permission denied` in the request
    // entry, no policy_results.
    for token in [None, Some("hvs.not-a-token")] {
        let path = if token.is_some() {
            "secret/data/a"
        } else {
            "secret/data/b"
        };
        let r = srv.req("GET", path, token, None).await;
        r.assert_status(403);
        assert_eq!(r.errors(), ["permission denied"]);
        let (req, resp) = entries_of(path);
        assert_eq!(req["auth"], token_type_only, "{req}");
        assert_eq!(req["error"], "permission denied");
        assert_eq!(resp["auth"], token_type_only, "{resp}");
        assert_eq!(resp["error"], multi("permission denied"));
        assert_eq!(
            resp["response"]["data"]["error"],
            hash(&srv, "file", "permission denied").await
        );
    }

    // An ACL denial: the message is the multierror text itself.
    let weak = srv.token_with(&["default"], json!({})).await;
    srv.get("secret/data/c", &weak).await.assert_status(403);
    let (req, resp) = entries_of("secret/data/c");
    assert_eq!(req["auth"]["policy_results"], json!({"allowed": false}));
    error_response_is(
        &srv,
        &resp,
        &multi("permission denied"),
        &multi("permission denied"),
    )
    .await;

    // A backend's 400: Vault's `invalid request`, the message hashed.
    let r = srv
        .req("POST", "secret/data/d", Some(&srv.root), None)
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["no data provided"]);
    let (req, resp) = entries_of("secret/data/d");
    assert!(req.get("error").is_none(), "{req}");
    error_response_is(&srv, &resp, &multi("invalid request"), "no data provided").await;

    // A body the HTTP layer cannot decode never reaches a backend (Vault does not audit it at
    // all): both entries keep the message the client got.
    let r = TestServer::finish(
        srv.client
            .put(srv.url("secret/data/undecodable"))
            .header("X-Vault-Token", &srv.root)
            .body("{bad json"),
    )
    .await;
    r.assert_status(400);
    let message = r.errors().remove(0);
    let (req, resp) = entries_of("secret/data/undecodable");
    assert_eq!(req["error"], multi(&message));
    assert_eq!(resp["error"], multi(&message));
    assert!(resp.get("response").is_none(), "{resp}");

    // A mount path in use: the message itself (a coded error in Vault), and hashed; an unknown
    // engine type is a plain 400, so `invalid request`.
    let r = srv
        .post("sys/mounts/secret", &srv.root, json!({"type": "kv"}))
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["path is already in use at secret/"]);
    let (_, resp) = entries_of("sys/mounts/secret");
    error_response_is(
        &srv,
        &resp,
        &multi("path is already in use at secret/"),
        "path is already in use at secret/",
    )
    .await;
    srv.post("sys/mounts/zz", &srv.root, json!({"type": "nope"}))
        .await
        .assert_status(400);
    let (_, resp) = entries_of("sys/mounts/zz");
    assert_eq!(resp["error"], multi("invalid request"));

    // A backend's own 403: permission denied, its message hashed.
    let r = srv
        .post("auth/token/lookup", &srv.root, json!({"token": "hvs.nope"}))
        .await;
    r.assert_status(403);
    assert_eq!(r.errors(), ["bad token"]);
    let (_, resp) = entries_of("auth/token/lookup");
    error_response_is(&srv, &resp, &multi("permission denied"), "bad token").await;

    // A path no backend serves: the request entry has no error yet (Vault routes after it).
    let r = srv.get("nope/x", &srv.root).await;
    r.assert_status(404);
    let message = r.errors().remove(0);
    let (req, resp) = entries_of("nope/x");
    assert!(req.get("error").is_none(), "{req}");
    error_response_is(&srv, &resp, &multi("unsupported path"), &message).await;

    // Logins: a refused credential is `invalid credentials`; a login's other errors are
    // plain and carry no error response; neither entry of the response has policy_results.
    let role_id = approle_with_role(&srv, "app", json!({})).await;
    let r = srv
        .req(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"role_id": role_id, "secret_id": "wrong"})),
        )
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["invalid role or secret ID"]);
    let (req, resp) = entries_of("auth/approle/login");
    assert_eq!(
        req["auth"],
        json!({"policy_results": {"allowed": true}, "token_type": "default"})
    );
    assert_eq!(resp["auth"], token_type_only);
    error_response_is(
        &srv,
        &resp,
        "invalid credentials",
        "invalid role or secret ID",
    )
    .await;
    let r = srv
        .req(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"secret_id": "x"})),
        )
        .await;
    r.assert_status(400);
    let (_, resp) = entries_of("auth/approle/login");
    assert_eq!(resp["error"], "missing role_id");
    assert!(resp["response"].get("data").is_none(), "{resp}");
    assert_eq!(resp["auth"], token_type_only);
}

/// An unwrap's response entry shows what the wrapped response held (data, auth), hashed, as
/// Vault's does (OpenBao 2.7.2 logs an unwrapped AppRole secret-id so); the client still gets
/// the stored answer byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwrap_entry_shows_the_unwrapped_response_hashed() {
    let (srv, _dir, file) = with_file_device().await;
    approle_with_role(&srv, "app", json!({"secret_id_num_uses": 2})).await;
    let wrapped = |path: &str, body: Value| {
        TestServer::finish(
            srv.client
                .post(srv.url(path))
                .header("X-Vault-Token", &srv.root)
                .header("X-Vault-Wrap-TTL", "60")
                .body(body.to_string()),
        )
    };
    let (srv, file) = (&srv, &file);
    let unwrap = |token: String| async move {
        let r = srv.post("sys/wrapping/unwrap", &token, json!({})).await;
        r.assert_status(200);
        let all = lines(file);
        (r, entry(&all, "response", "sys/wrapping/unwrap").clone())
    };

    let w = wrapped("auth/approle/role/app/secret-id", json!({})).await;
    let (r, e) = unwrap(w.body["wrap_info"]["token"].as_str().unwrap().into()).await;
    let secret_id = r.body["data"]["secret_id"].as_str().unwrap();
    let data = &e["response"]["data"];
    assert_eq!(data["secret_id"], hash(srv, "file", secret_id).await);
    assert_eq!(
        data["secret_id_accessor"],
        hash(
            srv,
            "file",
            r.body["data"]["secret_id_accessor"].as_str().unwrap()
        )
        .await
    );
    assert_eq!(data["secret_id_num_uses"], 2);
    assert!(e["response"].get("auth").is_none());

    let w = wrapped("auth/token/create", json!({"policies": ["default"]})).await;
    let (r, e) = unwrap(w.body["wrap_info"]["token"].as_str().unwrap().into()).await;
    let token = r.body["auth"]["client_token"].as_str().unwrap();
    let auth = &e["response"]["auth"];
    assert_eq!(auth["client_token"], hash(srv, "file", token).await);
    assert_eq!(
        auth["accessor"],
        hash(srv, "file", r.body["auth"]["accessor"].as_str().unwrap()).await
    );
    assert_eq!(auth["policies"], json!(["default"]));
    let text = std::fs::read_to_string(file).unwrap();
    assert!(!text.contains(secret_id) && !text.contains(token));
}

/// The `auth` of issued and renewed tokens as Vault writes it (compared with OpenBao 2.7.2): a
/// created token's response auth has its display name and `num_uses`; a renewal's also its
/// issue time; a login's entry-level auth has no use count while its response auth has; a
/// use-limited token's request entry shows the uses left before this request's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_and_renewed_token_auth_as_vault_writes_it() {
    let (srv, _dir, file) = with_file_device().await;
    let last = |kind: &str, path: &str| entry(&lines(&file), kind, path).clone();

    let r = srv
        .post(
            "auth/token/create",
            &srv.root,
            json!({"policies": ["default"], "num_uses": 3, "display_name": "dn"}),
        )
        .await;
    r.assert_status(200);
    let a = last("response", "auth/token/create")["response"]["auth"].clone();
    assert_eq!(a["display_name"], "token-dn");
    assert_eq!(a["num_uses"], 3);
    assert!(a.get("remaining_uses").is_none() && a.get("token_issue_time").is_none());
    let order = [
        "client_token",
        "accessor",
        "display_name",
        "policies",
        "token_policies",
        "num_uses",
        "token_type",
        "token_ttl",
    ];
    let raw = std::fs::read_to_string(&file).unwrap();
    let line = raw
        .lines()
        .rev()
        .find(|l| l.contains("auth/token/create"))
        .unwrap();
    let response_auth = line.split(r#""response":{"auth":{"#).nth(1).unwrap();
    assert_eq!(order_in(response_auth, &order), order);

    let role_id =
        approle_with_role(&srv, "nu", json!({"token_num_uses": 5, "token_ttl": "1h"})).await;
    let secret_id = srv
        .post("auth/approle/role/nu/secret-id", &srv.root, json!({}))
        .await
        .body["data"]["secret_id"]
        .clone();
    let login = srv
        .req(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"role_id": role_id, "secret_id": secret_id})),
        )
        .await;
    let token = login.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let e = last("response", "auth/approle/login");
    assert!(e["auth"].get("num_uses").is_none() && e["auth"].get("remaining_uses").is_none());
    assert_eq!(e["auth"]["display_name"], "approle");
    assert_eq!(e["response"]["auth"]["num_uses"], 5);
    // The alias's first login created its entity; the next does not.
    assert_eq!(e["auth"]["entity_created"], true);
    assert!(e["response"]["auth"].get("entity_created").is_none());
    let again = srv
        .req(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"role_id": role_id, "secret_id": secret_id})),
        )
        .await;
    again.assert_status(200);
    let e2 = last("response", "auth/approle/login");
    assert_ne!(e2["request"]["id"], e["request"]["id"]);
    assert!(e2["auth"].get("entity_created").is_none(), "{e2}");
    assert_eq!(e2["auth"]["entity_id"], e["auth"]["entity_id"]);

    srv.post("auth/token/renew-self", &token, json!({"increment": "30m"}))
        .await
        .assert_status(200);
    let e = last("response", "auth/token/renew-self");
    assert_eq!(e["auth"]["remaining_uses"], 5, "before this request's use");
    let a = &e["response"]["auth"];
    assert_eq!(a["display_name"], "approle");
    assert_eq!(a["token_ttl"], 1800);
    assert!(a["token_issue_time"].as_str().unwrap().ends_with('Z'));
    assert!(a["num_uses"].as_i64().unwrap() > 0);
    srv.get("auth/token/lookup-self", &token)
        .await
        .assert_status(200);
    let e = last("request", "auth/token/lookup-self");
    assert_eq!(e["auth"]["remaining_uses"], 4);
}

/// `policy_results.granting_policies`: the policies whose rules allowed the request, as Vault
/// writes them in both entries (compared with OpenBao 2.7.2); `root` for a root token, none
/// on a denial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_name_the_granting_policies() {
    let (srv, _dir, file) = with_file_device().await;
    srv.write_policy(
        "reader",
        r#"path "secret/data/app" { capabilities = ["read"] }"#,
    )
    .await;
    srv.put("secret/data/app", &srv.root, json!({"data": {"a": "b"}}))
        .await
        .assert_status(200);
    let token = srv.token_with(&["reader"], json!({})).await;
    srv.get("secret/data/app", &token).await.assert_status(200);
    srv.get("auth/token/lookup-self", &token)
        .await
        .assert_status(200);
    srv.get("secret/data/other", &token)
        .await
        .assert_status(403);
    let all = lines(&file);
    let granted = |names: &[&str]| {
        json!({"allowed": true, "granting_policies": names.iter()
            .map(|n| json!({"name": n, "namespace_id": "root", "type": "acl"}))
            .collect::<Vec<_>>()})
    };
    for kind in ["request", "response"] {
        let results = |path: &str| entry(&all, kind, path)["auth"]["policy_results"].clone();
        assert_eq!(results("secret/data/app"), granted(&["reader"]), "{kind}");
        assert_eq!(results("auth/token/lookup-self"), granted(&["default"]));
        assert_eq!(results("secret/data/other"), json!({"allowed": false}));
        assert_eq!(results("auth/token/create"), granted(&["root"]));
    }
}

/// `sys/config/auditing/request-headers`: the headers named there reach both entries as
/// `request.headers` (lower-case names, every value, HMAC'd when asked), as OpenBao 2.7.2 lists
/// and logs them; the setting is sudo-only and survives a seal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audited_request_headers_as_vault() {
    let srv = TestServer::start().await;
    let base = "sys/config/auditing/request-headers";
    let r = srv.get(base, &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["headers"], json!({}));
    assert_eq!(r.body["headers"], json!({}));
    srv.put(
        &format!("{base}/X-Custom-Id"),
        &srv.root,
        json!({"hmac": true}),
    )
    .await
    .assert_status(204);
    srv.put(&format!("{base}/X-Forwarded-For"), &srv.root, json!({}))
        .await
        .assert_status(204);
    let listed = json!({"x-custom-id": {"hmac": true}, "x-forwarded-for": {"hmac": false}});
    assert_eq!(
        srv.get(base, &srv.root).await.body["data"]["headers"],
        listed
    );
    let r = srv.get(&format!("{base}/X-CUSTOM-ID"), &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"], json!({"X-CUSTOM-ID": {"hmac": true}}));
    let r = srv.get(&format!("{base}/nope"), &srv.root).await;
    r.assert_status(400);
    assert_eq!(r.errors(), ["Could not find header in config"]);
    let r = srv
        .put(&format!("{base}/y"), &srv.root, json!({"hmac": "maybe"}))
        .await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        [
            "Field validation failed: error converting input for field \"hmac\": '' cannot parse value as 'bool': strconv.ParseBool: invalid syntax"
        ]
    );
    let weak = srv.token_with(&["default"], json!({})).await;
    srv.get(base, &weak).await.assert_status(403);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.log");
    enable(&srv, "file", json!({"file_path": file.to_str().unwrap()}))
        .await
        .assert_status(204);
    let read = |path: &'static str| {
        TestServer::finish(
            srv.client
                .get(srv.url(path))
                .header("X-Vault-Token", &srv.root)
                .header("X-Custom-Id", "abc")
                .header("X-Forwarded-For", "1.2.3.4")
                .header("x-forwarded-for", "5.6.7.8")
                .header("X-Other", "not audited"),
        )
    };
    read("secret/data/h1").await.assert_status(404);
    let all = lines(&file);
    let want = json!({
        "x-custom-id": [hash(&srv, "file", "abc").await],
        "x-forwarded-for": ["1.2.3.4", "5.6.7.8"],
    });
    for kind in ["request", "response"] {
        assert_eq!(
            entry(&all, kind, "secret/data/h1")["request"]["headers"],
            want,
            "{kind}"
        );
    }
    let raw = std::fs::read_to_string(&file).unwrap();
    let line = raw.lines().find(|l| l.contains("secret/data/h1")).unwrap();
    let request = line.split(r#""request":{"#).nth(1).unwrap();
    assert_eq!(
        order_in(request, &["path", "remote_port", "headers"]),
        ["path", "remote_port", "headers"]
    );
    assert!(!raw.contains("not audited") && !raw.contains("\"abc\""));

    // Removed: no longer in the entries; the rest survives a seal.
    srv.delete(&format!("{base}/x-custom-id"), &srv.root)
        .await
        .assert_status(204);
    srv.seal().await;
    srv.unseal().await.assert_status(200);
    assert_eq!(
        srv.get(base, &srv.root).await.body["data"]["headers"],
        json!({"x-forwarded-for": {"hmac": false}})
    );
    read("secret/data/h2").await.assert_status(404);
    let all = lines(&file);
    assert_eq!(
        entry(&all, "request", "secret/data/h2")["request"]["headers"],
        json!({"x-forwarded-for": ["1.2.3.4", "5.6.7.8"]})
    );
}

/// `fsync_interval` (Coffer's): devices that sync every write or within an interval log every
/// entry as the others do (when the syncs happen is tested beside the file writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_interval_devices_log_every_entry() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let every = dir.path().join("every.log");
    let within = dir.path().join("within.log");
    for (path, file, interval) in [("every", &every, "0s"), ("within", &within, "250ms")] {
        enable(
            &srv,
            path,
            json!({"file_path": file.to_str().unwrap(), "fsync_interval": interval}),
        )
        .await
        .assert_status(204);
    }
    let r = srv.get("sys/audit", &srv.root).await;
    assert_eq!(r.body["data"]["every/"]["options"]["fsync_interval"], "0s");
    for i in 0..20 {
        srv.put(
            &format!("secret/data/s{i}"),
            &srv.root,
            json!({"data": {"k": "v"}}),
        )
        .await
        .assert_status(200);
    }
    for file in [&every, &within] {
        eventually(file, "secret/data/s19").await;
        let lines = lines(file);
        for i in 0..20 {
            let path = format!("secret/data/s{i}");
            let n = lines
                .iter()
                .filter(|l| l["request"]["path"] == path)
                .count();
            assert_eq!(n, 2, "{path} in {}", file.display());
        }
    }
}

#[tokio::test]
async fn options_log_raw_hmac_accessor_elide_and_prefix() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.log");
    let elided = dir.path().join("elided.log");
    enable(
        &srv,
        "raw",
        json!({"file_path": raw.to_str().unwrap(), "log_raw": "true"}),
    )
    .await
    .assert_status(204);
    enable(
        &srv,
        "elided",
        json!({"file_path": elided.to_str().unwrap(), "hmac_accessor": "false",
               "elide_list_responses": "true", "prefix": "AUDIT:"}),
    )
    .await
    .assert_status(204);
    srv.put("secret/data/a", &srv.root, json!({"data": {"k": "v-raw"}}))
        .await
        .assert_status(200);
    srv.put("secret/data/b", &srv.root, json!({"data": {"k": "v"}}))
        .await
        .assert_status(200);
    srv.list("secret/metadata/", &srv.root)
        .await
        .assert_status(200);

    // With two devices a request is released by the first that accepts its entry; the other
    // writes its line moments later.
    let listed = r#""path":"secret/metadata/""#;
    let raw_entries = lines(&eventually(&raw, listed).await);
    let w = entry(&raw_entries, "request", "secret/data/a");
    assert_eq!(w["request"]["client_token"], srv.root);
    assert_eq!(w["request"]["data"]["data"]["k"], "v-raw");

    let text = std::fs::read_to_string(eventually(&elided, listed).await).unwrap();
    let stripped: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l.strip_prefix("AUDIT:").unwrap()).unwrap())
        .collect();
    let w = entry(&stripped, "request", "secret/data/a");
    let acc = w["request"]["client_token_accessor"].as_str().unwrap();
    assert!(!acc.starts_with("hmac-sha256:") && !acc.is_empty(), "{acc}");
    assert!(
        w["request"]["client_token"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    let l = entry(&stripped, "response", "secret/metadata/");
    assert_eq!(l["response"]["data"]["keys"], 2);
}

#[tokio::test]
async fn fail_closed_when_no_device_accepts_the_request() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("audit.log");
    enable(&srv, "good", json!({"file_path": good.to_str().unwrap()}))
        .await
        .assert_status(204);
    // /dev/full opens but every write fails (ENOSPC); skip_test lets it be enabled.
    enable(
        &srv,
        "full",
        json!({"file_path": "/dev/full", "skip_test": "true"}),
    )
    .await
    .assert_status(204);

    // One device that accepts suffices.
    srv.put("secret/data/x", &srv.root, json!({"data": {"v": "1"}}))
        .await
        .assert_status(200);
    // The failing device is named by the failure counter: the request and response entries
    // it lost (reported by its writer thread after the healthy device released the request).
    let mut lost = 0.0;
    for _ in 0..500 {
        lost = device_failures(&srv, "full/", "error").await;
        if lost >= 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(lost >= 2.0, "{lost}");
    assert_eq!(device_failures(&srv, "good/", "error").await, 0.0);
    let t = srv.token_with(&["default"], json!({})).await;
    srv.delete("sys/audit/good", &srv.root)
        .await
        .assert_status(204);

    // Only the failing device left: requests are refused before the backend runs.
    let r = srv
        .put("secret/data/x", &srv.root, json!({"data": {"v": "2"}}))
        .await;
    r.assert_status(500);
    assert_eq!(r.errors(), vec!["internal error"]);
    srv.get("secret/data/x", &srv.root).await.assert_status(500);
    // A denied request stays a 403.
    srv.get("secret/data/x", &t).await.assert_status(403);
    // Device management still works (unlike Vault, hashicorp/vault#15932): the server log
    // records the request no device accepted.
    srv.delete("sys/audit/full", &srv.root)
        .await
        .assert_status(204);

    // The refused write never happened.
    let r = srv.get("secret/data/x", &srv.root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["data"]["v"], "1");
    assert_eq!(r.body["data"]["metadata"]["version"], 1);
}

async fn start_prod(dir: &Path, clock: Arc<MockClock>, allow: bool) -> ProdServer {
    ProdServer::start_with(dir, clock, |c: &mut ServerConfig| {
        c.unsafe_allow_api_audit_creation = Some(allow);
    })
    .await
}

#[tokio::test]
async fn api_creation_refused_without_the_setting_and_devices_reopen_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let file: PathBuf = logs.path().join("audit.log");
    let clock = MockClock::new();

    // Without unsafe_allow_api_audit_creation: refused with OpenBao's message.
    let p = start_prod(data.path(), clock.clone(), false).await;
    let (keys, _, root) = p.init(1, 1).await;
    p.unseal(&keys[0]).await.assert_status(200);
    let r = p
        .srv
        .put(
            "sys/audit/file",
            &root,
            json!({"type": "file", "options": {"file_path": file.to_str().unwrap()}}),
        )
        .await;
    r.assert_status(400);
    assert_eq!(
        r.errors(),
        vec![
            "cannot enable audit device via API; use declarative, config-based audit device management instead"
        ]
    );
    p.stop().await;

    let p = start_prod(data.path(), clock.clone(), true).await;
    p.unseal(&keys[0]).await.assert_status(200);
    let srv = &p.srv;
    let r = srv
        .put(
            "sys/audit/file",
            &root,
            json!({"type": "file", "options": {"file_path": file.to_str().unwrap(), "prefix": "x"}}),
        )
        .await;
    assert_eq!(r.errors(), vec!["audit log prefixing is not allowed"]);
    srv.put(
        "sys/audit/file",
        &root,
        json!({"type": "file", "options": {"file_path": file.to_str().unwrap()}}),
    )
    .await
    .assert_status(204);
    let h1 = {
        let r = srv
            .put("sys/audit-hash/file", &root, json!({"input": "v"}))
            .await;
        r.body["data"]["hash"].as_str().unwrap().to_string()
    };
    p.stop().await;
    let before = lines(&file).len();

    // Restart: sealed, no entries; after unseal the device is back with the same salt.
    let p = start_prod(data.path(), clock.clone(), true).await;
    p.unseal(&keys[0]).await.assert_status(200);
    let srv = &p.srv;
    let r = srv.get("sys/audit", &root).await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["file/"]["type"], "file");
    let r = srv
        .put("sys/audit-hash/file", &root, json!({"input": "v"}))
        .await;
    assert_eq!(r.body["data"]["hash"], h1);
    let entries = lines(&file);
    assert!(entries.len() >= before + 2);
    let last = entry(&entries, "response", "sys/audit-hash/file");
    assert_eq!(last["request"]["data"]["input"], h1);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_device_fails_requests_within_the_deadline_and_never_slows_a_healthy_one() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // A reader that never reads: every line (larger than the pipe buffer) blocks its writer.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let big = "x".repeat(256 * 1024);
    let fifo_s = fifo.to_str().unwrap();

    // The enable-time test message times out: 400.
    let started = std::time::Instant::now();
    let r = enable(&srv, "probe", json!({"file_path": fifo_s, "prefix": big})).await;
    r.assert_status(400);
    assert!(
        r.errors()[0].starts_with("audit backend failed test message: "),
        "{:?}",
        r.errors()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    enable(
        &srv,
        "stuck",
        json!({"file_path": fifo_s, "prefix": big, "skip_test": "true"}),
    )
    .await
    .assert_status(204);

    // Only the stuck device: every request fails within the deadline, none hangs, none runs.
    for i in 0..5 {
        let started = std::time::Instant::now();
        let r = srv
            .put("secret/data/s", &srv.root, json!({"data": {"i": i}}))
            .await;
        r.assert_status(500);
        assert_eq!(r.errors(), vec!["internal error"]);
        let took = started.elapsed();
        // One deadline (250 ms) for the request entry; the response entry of a request no
        // device took is not waited for (before, a second deadline made it ≥ 500 ms).
        assert!(took < std::time::Duration::from_millis(500), "{took:?}");
    }

    // Each entry the device did not acknowledge in time is counted against it.
    assert!(device_failures(&srv, "stuck/", "timeout").await >= 5.0);

    // Beside a healthy device the stuck one costs nothing: the first acknowledgement releases
    // the request.
    let good = dir.path().join("good.log");
    let entry = coffer::audit::AuditEntry {
        path: "good".into(),
        kind: "file".into(),
        description: String::new(),
        options: [("file_path".to_string(), good.to_str().unwrap().to_string())].into(),
        local: false,
        uuid: String::new(),
        declared: false,
    };
    srv.core
        .audit
        .enable(&srv.core.storage(""), entry, false)
        .await
        .unwrap();
    srv.core.install_audit();
    let started = std::time::Instant::now();
    for i in 0..20 {
        srv.put("secret/data/s", &srv.root, json!({"data": {"i": i}}))
            .await
            .assert_status(200);
    }
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    let r = srv.get("secret/data/s", &srv.root).await;
    assert_eq!(
        r.body["data"]["metadata"]["version"], 20,
        "the refused writes never ran"
    );

    // Management works and does not wait for the stuck writer.
    let started = std::time::Instant::now();
    srv.delete("sys/audit/stuck", &srv.root)
        .await
        .assert_status(204);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(
        keys(&srv.get("sys/audit", &srv.root).await.body["data"]),
        vec!["good/"]
    );
    // Closing the reader unblocks the stuck writer threads (EPIPE), which then end.
    drop(reader);
}

/// Built-in rotation (Coffer's `max_bytes`): eight concurrent writers on a device whose file
/// holds about four entries; every request's two entries are in exactly one file each, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_bytes_rotation_under_load_loses_splits_and_repeats_nothing() {
    let srv = std::sync::Arc::new(TestServer::start().await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.log");
    for (bad, why) in [
        (
            "max_bytes",
            "invalid max_bytes: \"0\" is not a positive whole number",
        ),
        (
            "max_files",
            "invalid max_files: \"0\" is not a positive whole number",
        ),
        (
            "max_age",
            "invalid max_age: \"0\" is not a positive duration",
        ),
    ] {
        let r = enable(
            &srv,
            "x",
            json!({"file_path": file.to_str().unwrap(), bad: "0"}),
        )
        .await;
        r.assert_status(400);
        assert_eq!(r.errors(), vec![why]);
    }
    enable(
        &srv,
        "rotating",
        json!({"file_path": file.to_str().unwrap(), "max_bytes": "6000"}),
    )
    .await
    .assert_status(204);
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let srv = srv.clone();
        writers.spawn(async move {
            for i in 0..25 {
                srv.put(
                    &format!("secret/data/r{w}-{i}"),
                    &srv.root,
                    json!({"data": {"i": i}}),
                )
                .await
                .assert_status(200);
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let mut seen: std::collections::HashMap<String, (usize, usize)> = Default::default();
    let names: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(names.len() > 10, "{} files", names.len());
    for f in &names {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.ends_with('\n'), "{} ends mid-line", f.display());
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: split line ({e})", f.display()));
            if !v["request"]["path"]
                .as_str()
                .unwrap_or_default()
                .starts_with("secret/data/r")
            {
                continue;
            }
            let slot = seen
                .entry(v["request"]["id"].as_str().unwrap().to_string())
                .or_default();
            match v["type"].as_str() {
                Some("request") => slot.0 += 1,
                _ => slot.1 += 1,
            }
        }
    }
    assert_eq!(seen.len(), 200, "every request logged");
    assert!(seen.values().all(|c| *c == (1, 1)));
}

/// `coffer_audit_device_failures_total` of one device and reason (0 when absent).
async fn device_failures(srv: &TestServer, device: &str, reason: &str) -> f64 {
    let r = srv
        .req(
            "GET",
            "sys/metrics?format=prometheus",
            Some(&srv.root),
            None,
        )
        .await;
    r.assert_status(200);
    let (d, why) = (
        format!("device=\"{device}\""),
        format!("reason=\"{reason}\""),
    );
    r.text
        .lines()
        .filter(|l| l.starts_with("coffer_audit_device_failures_total{"))
        .filter(|l| l.contains(&d) && l.contains(&why))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A FIFO whose reader never reads, and a prefix larger than the pipe buffer: every line blocks
/// the device's writer. Returns the reader (dropping it unblocks the writer with EPIPE).
fn stuck_fifo(dir: &Path) -> (std::fs::File, String) {
    let fifo = dir.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    (reader, fifo.to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_device_never_blocks_a_worker_and_management_still_works() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (reader, fifo) = stuck_fifo(dir.path());
    let big = "x".repeat(256 * 1024);
    enable(
        &srv,
        "stuck",
        json!({"file_path": fifo, "prefix": big, "skip_test": "true"}),
    )
    .await
    .assert_status(204);

    // Many more concurrent requests than worker threads: each is answered 500 within the
    // deadline (250 ms for the request entry; the response entry never holds the client), none
    // waits for another's deadline.
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let (url, root) = (srv.url("secret/data/c"), srv.root.clone());
        tasks.spawn(async move {
            let started = std::time::Instant::now();
            let r = crate::common::TestServer::finish(
                reqwest::Client::new()
                    .put(url)
                    .header("X-Vault-Token", root)
                    .json(&json!({"data": {"i": i}})),
            )
            .await;
            (r, started.elapsed())
        });
    }
    // Meanwhile the devices can be listed, enabled and disabled, each within a second.
    let file = dir.path().join("audit.log");
    let timed = |what: &'static str, started: std::time::Instant| {
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(1), "{what}: {took:?}");
    };
    let t = std::time::Instant::now();
    let r = srv.get("sys/audit", &srv.root).await;
    r.assert_status(200);
    assert_eq!(keys(&r.body["data"]), vec!["stuck/"]);
    timed("list", t);
    let t = std::time::Instant::now();
    enable(&srv, "good", json!({"file_path": file.to_str().unwrap()}))
        .await
        .assert_status(204);
    timed("enable", t);
    let t = std::time::Instant::now();
    srv.delete("sys/audit/good", &srv.root)
        .await
        .assert_status(204);
    timed("disable", t);

    let mut n = 0;
    while let Some(done) = tasks.join_next().await {
        let (r, took) = done.unwrap();
        r.assert_status(500);
        assert_eq!(r.errors(), vec!["internal error"]);
        assert!(took < std::time::Duration::from_millis(1000), "{took:?}");
        n += 1;
    }
    assert_eq!(n, 64);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // None of the refused writes ran.
    srv.delete("sys/audit/stuck", &srv.root)
        .await
        .assert_status(204);
    srv.get("secret/data/c", &srv.root).await.assert_status(404);
    // The management requests went to the working device (it was enabled meanwhile).
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(r#""path":"sys/audit/good""#), "{text}");
    drop(reader);
}

/// A client that hangs up mid-request does not cut the request short: it runs to the end and
/// its response entry is written (Vault: hashicorp/vault#23871). Here the request is an enable
/// whose test message waits on a stuck device for the whole deadline; the client leaves after
/// 50 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_hangs_up_still_finishes_and_is_audited() {
    use tokio::io::AsyncWriteExt;
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    enable(&srv, "good", json!({"file_path": good.to_str().unwrap()}))
        .await
        .assert_status(204);
    let (_reader, fifo) = stuck_fifo(dir.path());
    let body =
        json!({"type": "file", "options": {"file_path": fifo, "prefix": "x".repeat(256 * 1024)}})
            .to_string();
    let mut conn = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let head = format!(
        "PUT /v1/sys/audit/probe HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {}\r\nContent-Length: {}\r\n\r\n",
        srv.root,
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body.as_bytes()).await.unwrap();
    // The request entry is on file: the request is under way.
    let request = lines_when(&good, |l| {
        l["request"]["path"] == "sys/audit/probe" && l["type"] == "request"
    })
    .await;
    drop(conn);
    let response = lines_when(&good, |l| {
        l["request"]["path"] == "sys/audit/probe" && l["type"] == "response"
    })
    .await;
    assert_eq!(response["request"]["id"], request["request"]["id"]);
    // The refusal, as Vault's system backend reports its errors (the message is hashed).
    assert_eq!(
        response["error"], "1 error occurred:\n\t* invalid request\n\n",
        "{response}"
    );
    assert!(
        response["response"]["data"]["error"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
}

/// The first line of `file` matching `want`, once there (5 s).
async fn lines_when(file: &Path, want: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..500 {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if let Some(v) = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| want(v))
        {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no such line in {}", file.display());
}

/// A mount's `audit_non_hmac_request_keys` / `_response_keys` (tune, or config at enable):
/// strings under those keys, at any depth and in lists, are written as they are; everything
/// else is still HMAC'd. The same data and keys as observed on OpenBao 2.7.2. A single empty
/// value clears the list; the lists show in tune reads and `sys/mounts` only when set.
#[tokio::test]
async fn non_hmac_keys_of_a_mount_stay_readable_in_its_entries() {
    let (srv, _dir, file) = with_file_device().await;
    srv.post(
        "sys/mounts/secret/tune",
        &srv.root,
        json!({"audit_non_hmac_request_keys": ["username", "tags"],
               "audit_non_hmac_response_keys": "username"}),
    )
    .await
    .assert_status(204);
    let tune = srv.get("sys/mounts/secret/tune", &srv.root).await;
    assert_eq!(
        tune.body["data"]["audit_non_hmac_request_keys"],
        json!(["username", "tags"])
    );
    assert_eq!(
        tune.body["data"]["audit_non_hmac_response_keys"],
        json!(["username"])
    );
    let mounts = srv.get("sys/mounts", &srv.root).await;
    assert_eq!(
        mounts.body["secret/"]["config"]["audit_non_hmac_request_keys"],
        json!(["username", "tags"])
    );
    assert!(
        mounts.body["cubbyhole/"]["config"]
            .get("audit_non_hmac_request_keys")
            .is_none()
    );

    let data = json!({"username": "bob", "password": "p", "tags": ["x", "y"],
                      "nested": {"username": "al"}});
    srv.post("secret/data/n", &srv.root, json!({"data": data}))
        .await
        .assert_status(200);
    srv.get("secret/data/n", &srv.root).await.assert_status(200);
    eventually(&file, r#""type":"response""#).await;
    let h = |v: &str| {
        let srv = &srv;
        let v = v.to_owned();
        async move { hash(srv, "file", &v).await }
    };
    let want_request = json!({"data": {"username": "bob", "password": h("p").await,
        "tags": ["x", "y"], "nested": {"username": "al"}}});
    let entries = lines_when(&file, |e| {
        e["type"] == "response"
            && e["request"]["path"] == "secret/data/n"
            && e["request"]["operation"] == "read"
    })
    .await;
    // The read's response data: only the response keys are readable.
    assert_eq!(
        entries["response"]["data"]["data"],
        json!({"username": "bob", "password": h("p").await,
               "tags": [h("x").await, h("y").await], "nested": {"username": "al"}})
    );
    let write = lines_when(&file, |e| {
        e["type"] == "request"
            && e["request"]["path"] == "secret/data/n"
            && e["request"]["operation"] != "read"
    })
    .await;
    assert_eq!(write["request"]["data"], want_request);

    // Cleared by a single empty value: hashed again.
    srv.post(
        "sys/mounts/secret/tune",
        &srv.root,
        json!({"audit_non_hmac_request_keys": "", "audit_non_hmac_response_keys": [""]}),
    )
    .await
    .assert_status(204);
    let tune = srv.get("sys/mounts/secret/tune", &srv.root).await;
    assert!(
        tune.body["data"]
            .get("audit_non_hmac_request_keys")
            .is_none(),
        "{}",
        tune.text
    );
    assert!(
        tune.body["data"]
            .get("audit_non_hmac_response_keys")
            .is_none()
    );
    srv.post(
        "secret/data/m",
        &srv.root,
        json!({"data": {"username": "carol"}}),
    )
    .await
    .assert_status(200);
    let again = lines_when(&file, |e| {
        e["type"] == "request" && e["request"]["path"] == "secret/data/m"
    })
    .await;
    assert_eq!(
        again["request"]["data"]["data"]["username"],
        h("carol").await
    );

    // At enable time, from the mount's config (a comma list as well).
    srv.post(
        "sys/mounts/team",
        &srv.root,
        json!({"type": "kv", "config": {"audit_non_hmac_request_keys": "owner,site"}}),
    )
    .await
    .assert_status(204);
    let tune = srv.get("sys/mounts/team/tune", &srv.root).await;
    assert_eq!(
        tune.body["data"]["audit_non_hmac_request_keys"],
        json!(["owner", "site"])
    );
}

/// `server -dev -config=FILE` takes the file's audit settings: dev mode allows audit devices and
/// their `prefix` through the API unless the file says otherwise, as OpenBao reads them.
#[tokio::test]
async fn dev_mode_takes_the_audit_gates_from_its_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let enable = |addr: String, options: Value| {
        let c = client.clone();
        async move {
            let r = c
                .put(format!("{addr}/v1/sys/audit/f"))
                .header("X-Vault-Token", "root")
                .json(&json!({"type": "file", "options": options}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let file = dir.path().join("a.log");
    let with_prefix = json!({"file_path": file, "prefix": "@cee:"});
    for (config, want) in [
        (None, (204, Value::Null)),
        (
            Some("unsafe_allow_api_audit_creation = false\n"),
            (
                400,
                json!({"errors": ["cannot enable audit device via API; use declarative, config-based audit device management instead"]}),
            ),
        ),
        (
            Some("allow_audit_log_prefixing = false\n"),
            (
                400,
                json!({"errors": ["audit log prefixing is not allowed"]}),
            ),
        ),
    ] {
        let (mut child, lines, _home) =
            crate::metrics::spawn_dev("root", config, std::process::Stdio::null()).await;
        let addr = crate::metrics::listener_addr(&lines, 1);
        let got = enable(addr, with_prefix.clone()).await;
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(got, want, "{config:?}");
    }
}

/// Who may do what, as OpenBao 2.7.2 answers the same policies: `sys/audit-hash/<path>` needs
/// `update` only; listing, enabling and disabling devices need `sudo` besides the capability.
#[tokio::test]
async fn audit_hash_needs_update_and_device_management_needs_sudo() {
    let srv = TestServer::start().await;
    enable(&srv, "f", json!({"file_path": "discard"}))
        .await
        .assert_status(204);
    srv.write_policy(
        "h",
        r#"path "sys/audit-hash/*" { capabilities = ["update"] }
path "sys/audit/*" { capabilities = ["delete", "update"] }
path "sys/audit" { capabilities = ["read"] }"#,
    )
    .await;
    let t = srv.token_with(&["h"], json!({})).await;
    srv.put("sys/audit-hash/f", &t, json!({"input": "x"}))
        .await
        .assert_status(200);
    let denied = "1 error occurred:\n\t* permission denied\n\n";
    for r in [
        srv.get("sys/audit", &t).await,
        srv.delete("sys/audit/f", &t).await,
        srv.put(
            "sys/audit/g",
            &t,
            json!({"type": "file", "options": {"file_path": "discard"}}),
        )
        .await,
    ] {
        r.assert_status(403);
        assert_eq!(r.errors(), [denied]);
    }
    srv.write_policy(
        "h",
        r#"path "sys/audit/*" { capabilities = ["delete", "sudo"] }
path "sys/audit" { capabilities = ["read", "sudo"] }"#,
    )
    .await;
    srv.get("sys/audit", &t).await.assert_status(200);
    srv.delete("sys/audit/f", &t).await.assert_status(204);
}

/// File device options as OpenBao 2.7.2 reads them (checked side by side): `path` is an alias of
/// `file_path`; `STDOUT` and `DISCARD` in any case are the special outputs, not file names;
/// `mode = "0000"` leaves an existing file's mode alone.
#[tokio::test]
async fn file_options_alias_special_outputs_and_mode_zero() {
    use std::os::unix::fs::PermissionsExt;
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let alias = dir.path().join("alias.log");
    let existing = dir.path().join("existing.log");
    std::fs::write(&existing, "").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap();
    for (name, options) in [
        ("al", json!({"path": alias})),
        ("m0", json!({"file_path": existing, "mode": "0000"})),
        ("up", json!({"file_path": "STDOUT"})),
        ("dis", json!({"file_path": "DISCARD"})),
    ] {
        enable(&srv, name, options).await.assert_status(204);
    }
    srv.post("secret/data/x", &srv.root, json!({"data": {"k": "v"}}))
        .await
        .assert_status(200);
    eventually(&alias, r#""path":"secret/data/x""#).await;
    eventually(&existing, r#""path":"secret/data/x""#).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&existing), 0o640);
    assert_eq!(mode(&alias), 0o600);
    for special in ["STDOUT", "DISCARD", "stdout", "discard"] {
        assert!(
            !std::path::Path::new(special).exists(),
            "a file named {special}"
        );
    }
    let listed = srv.get("sys/audit", &srv.root).await;
    assert_eq!(
        listed.body["data"]["al/"]["options"],
        json!({"path": alias})
    );
}

/// Found by comparing with OpenBao 2.7.2: `sys/audit` lists a JSON boolean option as Vault
/// stores it ("1"/"0"), refuses `LIST` as an unsupported path, `sys/audit-hash` also answers
/// at the top level, and `mode` parses as Go's `ParseUint(m, 8, 32)`, with "0000" (keep the
/// file's mode) refused for a file that does not exist. A refused device is not enabled and
/// leaves no file behind.
#[tokio::test]
async fn listing_hash_and_mode_answer_as_vault() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.log");
    enable(
        &srv,
        "b",
        json!({"file_path": file, "hmac_accessor": false, "elide_list_responses": "true"}),
    )
    .await
    .assert_status(204);
    let raw_file = dir.path().join("raw.log");
    enable(&srv, "r", json!({"file_path": raw_file, "log_raw": true}))
        .await
        .assert_status(204);
    let listed = srv.get("sys/audit", &srv.root).await;
    listed.assert_status(200);
    assert_eq!(
        listed.body["data"]["b/"]["options"],
        json!({"file_path": file, "hmac_accessor": "0", "elide_list_responses": "true"})
    );
    assert_eq!(
        listed.body["data"]["r/"]["options"],
        json!({"file_path": raw_file, "log_raw": "1"})
    );
    // Stored that way, the options still take effect: on `b` the accessor shows as it is while
    // the token is hashed; on `r` the token shows raw.
    let token = srv.token_with(&["default"], json!({})).await;
    let accessor = srv.get("auth/token/lookup-self", &token).await.body["data"]["accessor"]
        .as_str()
        .unwrap()
        .to_string();
    srv.get("auth/token/lookup-self", &token)
        .await
        .assert_status(200);
    let all = lines(&eventually(&file, "auth/token/lookup-self").await);
    let e = entry(&all, "request", "auth/token/lookup-self");
    assert_eq!(e["auth"]["accessor"], accessor);
    assert!(
        e["auth"]["client_token"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    let raw = lines(&eventually(&raw_file, "auth/token/lookup-self").await);
    assert_eq!(
        entry(&raw, "request", "auth/token/lookup-self")["auth"]["client_token"],
        token
    );

    let r = srv.list("sys/audit", &srv.root).await;
    r.assert_status(404);
    assert_eq!(r.errors(), ["1 error occurred:\n\t* unsupported path\n\n"]);

    let r = srv
        .put("sys/audit-hash/b", &srv.root, json!({"input": "hunter2"}))
        .await;
    r.assert_status(200);
    assert!(
        r.body["hash"].as_str().unwrap().starts_with("hmac-sha256:"),
        "{}",
        r.body
    );
    assert_eq!(r.body["hash"], r.body["data"]["hash"]);

    let missing = dir.path().join("missing.log");
    for (mode, error) in [
        (
            "+600",
            "strconv.ParseUint: parsing \"+600\": invalid syntax",
        ),
        (
            "0800",
            "strconv.ParseUint: parsing \"0800\": invalid syntax",
        ),
        (
            "77777777777",
            "strconv.ParseUint: parsing \"77777777777\": value out of range",
        ),
        (
            "777777777777778",
            "strconv.ParseUint: parsing \"777777777777778\": value out of range",
        ),
        (
            "0000",
            &*format!("stat {}: no such file or directory", missing.display()),
        ),
    ] {
        let r = enable(&srv, "m", json!({"file_path": missing, "mode": mode})).await;
        r.assert_status(400);
        assert_eq!(r.errors(), [error], "mode {mode}");
    }
    assert!(!missing.exists());
    let listed = srv.get("sys/audit", &srv.root).await;
    assert!(listed.body["data"].get("m/").is_none(), "{}", listed.body);
}

/// Numbers in entries are written as Go's encoder writes a float64 (`100`, not `100.0`;
/// `0.000001`, not `1e-6`), in `json` and `jsonx` devices alike: the entries are byte for
/// byte what Vault writes for the same request.
#[tokio::test]
async fn numbers_in_entries_are_written_as_go_writes_them() {
    let (srv, dir, file) = with_file_device().await;
    let xml = dir.path().join("audit.xml");
    enable(&srv, "x", json!({"file_path": xml, "format": "jsonx"}))
        .await
        .assert_status(204);
    let body = r#"{"data":{"b":1e2,"d":0.000001,"e":1.5e-7,"f":3.0,"g":18446744073709551616,"h":-5.0,"i":7,"j":1e21,"k":2.5,"l":18446744073709551615,"m":9007199254740993,"n":-9007199254740993,"o":9007199254740992}}"#;
    let r = TestServer::finish(
        srv.client
            .post(srv.url("secret/data/n"))
            .header("X-Vault-Token", &srv.root)
            .body(body),
    )
    .await;
    r.assert_status(200);
    srv.get("secret/data/n", &srv.root).await.assert_status(200);
    eventually(&file, "secret/data/n").await;
    let text = std::fs::read_to_string(&file).unwrap();
    let want = r#"{"b":100,"d":0.000001,"e":1.5e-7,"f":3,"g":18446744073709552000,"h":-5,"i":7,"j":1e+21,"k":2.5,"l":18446744073709552000,"m":9007199254740992,"n":-9007199254740992,"o":9007199254740992}"#;
    let write = text
        .lines()
        .find(|l| l.contains(r#""type":"request""#) && l.contains(r#""operation":"create""#))
        .unwrap();
    assert!(
        write.contains(&format!(r#""data":{{"data":{want}}}"#)),
        "{write}"
    );
    let read = text
        .lines()
        .find(|l| l.contains(r#""type":"response""#) && l.contains(r#""operation":"read""#))
        .unwrap();
    assert!(
        read.contains(&format!(r#""data":{{"data":{want},"#)),
        "{read}"
    );
    for _ in 0..500 {
        if std::fs::read_to_string(&xml).is_ok_and(|t| t.matches("secret/data/n").count() >= 4) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let xml = std::fs::read_to_string(&xml).unwrap();
    for (k, v) in [
        ("b", "100"),
        ("d", "0.000001"),
        ("g", "18446744073709552000"),
        ("j", "1e+21"),
        ("l", "18446744073709552000"),
        ("i", "7"),
    ] {
        let element = format!(r#"<json:number name="{k}">{v}</json:number>"#);
        assert!(xml.contains(&element), "{element} in {xml}");
    }
}

/// A header set to be HMAC'd is HMAC'd on a `log_raw` device too (Vault applies the header
/// settings before any device's `log_raw`), while the token shows raw there.
#[tokio::test]
async fn hmac_headers_stay_hashed_on_a_log_raw_device() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("raw.log");
    enable(&srv, "raw", json!({"file_path": file, "log_raw": true}))
        .await
        .assert_status(204);
    srv.put(
        "sys/config/auditing/request-headers/X-Custom",
        &srv.root,
        json!({"hmac": true}),
    )
    .await
    .assert_status(204);
    let r = TestServer::finish(
        srv.client
            .get(srv.url("secret/data/h"))
            .header("X-Vault-Token", &srv.root)
            .header("X-Custom", "header-canary"),
    )
    .await;
    r.assert_status(404);
    let all = lines(&eventually(&file, "secret/data/h").await);
    assert!(
        !std::fs::read_to_string(&file)
            .unwrap()
            .contains("header-canary")
    );
    let want = json!({"x-custom": [hash(&srv, "raw", "header-canary").await]});
    for kind in ["request", "response"] {
        let e = entry(&all, kind, "secret/data/h");
        assert_eq!(e["request"]["headers"], want, "{kind}");
        assert_eq!(e["request"]["client_token"], srv.root, "{kind}");
    }
}

/// A kv-v1 read is a secret with a lease in Vault (`resp.Secret`): its response entry carries
/// `"secret":{}` between the mount fields and the data. A kv-v2 read and a kv-v1 write do not;
/// neither does a wrapped kv-v1 read (the wrapping replaced the response).
#[tokio::test]
async fn a_kv_v1_read_entry_shows_its_secret_object() {
    let (srv, _dir, file) = with_file_device().await;
    srv.post(
        "sys/mounts/kv1",
        &srv.root,
        json!({"type": "kv", "options": {"version": "1"}}),
    )
    .await
    .assert_status(204);
    srv.put("kv1/b", &srv.root, json!({"password": "p"}))
        .await
        .assert_status(204);
    srv.get("kv1/b", &srv.root).await.assert_status(200);
    srv.post("secret/data/v2", &srv.root, json!({"data": {"k": "v"}}))
        .await
        .assert_status(200);
    srv.get("secret/data/v2", &srv.root)
        .await
        .assert_status(200);
    let r = TestServer::finish(
        srv.client
            .get(srv.url("kv1/b"))
            .header("X-Vault-Token", &srv.root)
            .header("X-Vault-Wrap-TTL", "60"),
    )
    .await;
    r.assert_status(200);
    eventually(&file, r#""wrap_info""#).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let responses: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#""type":"response""#))
        .collect();
    let find = |path: &str, op: &str, wrapped: bool| {
        *responses
            .iter()
            .find(|l| {
                l.contains(&format!(r#""path":"{path}""#))
                    && l.contains(&format!(r#""operation":"{op}""#))
                    && l.contains(r#""wrap_info""#) == wrapped
            })
            .unwrap_or_else(|| panic!("no {op} of {path}"))
    };
    let read = find("kv1/b", "read", false);
    assert!(
        read.contains(r#""mount_class":"secret","secret":{},"data":{"password":"hmac-sha256:"#),
        "{read}"
    );
    for other in [
        find("kv1/b", "create", false),
        find("secret/data/v2", "read", false),
        find("kv1/b", "read", true),
    ] {
        assert!(!other.contains(r#""secret":"#), "{other}");
    }
}

/// An unwrap, rewrap or lookup with an invalid wrapping token is refused before anything else,
/// as in Vault (`validateWrappingToken`): one request entry, no response entry, its `auth`
/// only the request's token and accessor, its `request` only the mount point, its `error` the
/// plain text. A `token` that is empty or not a string is a 403 with Vault's texts. Compared
/// with OpenBao 2.7.2 entry by entry. `sys/wrapping/wrap` takes any parameter (no warning).
#[tokio::test]
async fn an_invalid_wrapping_token_is_audited_as_vault_refuses_it() {
    let (srv, _dir, file) = with_file_device().await;
    let root_accessor = srv.get("auth/token/lookup-self", &srv.root).await.body["data"]["accessor"]
        .as_str()
        .unwrap()
        .to_string();
    let invalid = "wrapping token is not valid or does not exist";
    for op in ["unwrap", "lookup", "rewrap"] {
        let r = srv
            .put(
                &format!("sys/wrapping/{op}"),
                &srv.root,
                json!({"token": "hvs.bogus"}),
            )
            .await;
        r.assert_status(400);
        assert_eq!(r.errors(), [invalid], "{op}");
    }
    let r = srv
        .put("sys/wrapping/unwrap", "hvs.bogus2", json!({}))
        .await;
    r.assert_status(400);
    assert_eq!(r.errors(), [invalid]);
    for (body, why) in [
        (json!({"token": ""}), "empty token in request body"),
        (
            json!({"token": 5}),
            "could not decode token in request body",
        ),
    ] {
        let r = srv.put("sys/wrapping/unwrap", &srv.root, body).await;
        r.assert_status(403);
        assert_eq!(
            r.errors(),
            [format!("error validating wrapping token: {why}")]
        );
    }
    let r = srv.put("sys/wrapping/lookup", "", json!({})).await;
    r.assert_status(403);
    assert_eq!(
        r.errors(),
        ["error validating wrapping token: token is empty"]
    );

    // A good one still unwraps, and the wrapped data carries no warning.
    let wrapped = TestServer::finish(
        srv.client
            .put(srv.url("sys/wrapping/wrap"))
            .header("X-Vault-Token", &srv.root)
            .header("X-Vault-Wrap-TTL", "60")
            .json(&json!({"a": "b"})),
    )
    .await;
    wrapped.assert_status(200);
    let w = wrapped.body["wrap_info"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = srv.put("sys/wrapping/unwrap", &w, json!({})).await;
    r.assert_status(200);
    assert_eq!(r.body["data"], json!({"a": "b"}));
    assert_eq!(r.body["warnings"], Value::Null);

    eventually(&file, r#""data":{"a":"hmac-sha256:"#).await;
    let all = lines(&file);
    let wrapping: Vec<&Value> = all
        .iter()
        .filter(|e| {
            e["request"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("sys/wrapping/") && p != "sys/wrapping/wrap")
        })
        .collect();
    // Seven refusals (a request entry each), then the good unwrap's two entries.
    let kinds: Vec<&str> = wrapping
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "request", "request", "request", "request", "request", "request", "request", "request",
            "response"
        ]
    );
    let root_hash = hash(&srv, "file", &srv.root).await;
    let accessor_hash = hash(&srv, "file", &root_accessor).await;
    let bogus = hash(&srv, "file", "hvs.bogus").await;
    for (i, op) in ["unwrap", "lookup", "rewrap"].into_iter().enumerate() {
        let e = wrapping[i];
        assert_eq!(e["error"], invalid, "{e}");
        assert_eq!(
            e["auth"],
            json!({"client_token": root_hash, "accessor": accessor_hash, "token_type": "default"})
        );
        let request = &e["request"];
        assert_eq!(request["path"], format!("sys/wrapping/{op}"));
        assert_eq!(request["mount_point"], "sys/");
        assert_eq!(request["client_token_accessor"], accessor_hash);
        assert_eq!(request["data"], json!({"token": bogus}));
        for absent in ["mount_type", "mount_accessor", "mount_class", "client_id"] {
            assert!(request.get(absent).is_none(), "{absent} in {request}");
        }
    }
    let header_form = wrapping[3];
    assert_eq!(
        header_form["auth"],
        json!({"client_token": hash(&srv, "file", "hvs.bogus2").await, "token_type": "default"})
    );
    assert!(
        header_form["request"]
            .get("client_token_accessor")
            .is_none()
    );
    for e in &wrapping[4..7] {
        assert_eq!(e["error"], invalid, "{e}");
    }
    assert_eq!(
        wrapping[8]["response"]["data"],
        json!({"a": hash(&srv, "file", "b").await})
    );
}

/// Compared with OpenBao 2.7.2: a request refused for its token (here a revoked one on
/// `sys/capabilities-self`, an update) shows no mount accessor in either entry, as it never
/// reached the existence check that resolves the mount; with a live token it does.
#[tokio::test]
async fn a_token_refusal_shows_no_mount_accessor() {
    let (srv, _dir, file) = with_file_device().await;
    let token = srv.token_with(&["default"], json!({})).await;
    let body = json!({"paths": ["secret/data/x"]});
    srv.post("sys/capabilities-self", &token, body.clone())
        .await
        .assert_status(200);
    let all = lines(&eventually(&file, "sys/capabilities-self").await);
    let live = entry(&all, "request", "sys/capabilities-self");
    assert!(live["request"]["mount_accessor"].is_string(), "{live}");
    srv.post("auth/token/revoke-self", &token, json!({}))
        .await
        .assert_status(204);
    srv.post("sys/capabilities-self", &token, body)
        .await
        .assert_status(403);
    for _ in 0..500 {
        if lines(&file)
            .iter()
            .filter(|e| e["request"]["path"] == "sys/capabilities-self")
            .count()
            >= 4
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let all = lines(&file);
    for kind in ["request", "response"] {
        let e = entry(&all, kind, "sys/capabilities-self");
        assert!(
            e["error"].as_str().unwrap().contains("permission denied"),
            "{e}"
        );
        assert!(e["request"].get("mount_accessor").is_none(), "{e}");
        assert!(
            e.get("response")
                .is_none_or(|r| r.get("mount_accessor").is_none()),
            "{e}"
        );
    }
}
