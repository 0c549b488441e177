//! The Jenkins HashiCorp Vault plugin's traffic, replayed request by request from the Java
//! drivers' source (`docs/contract/jenkins-and-ci.md` §2), and GitHub's `hashicorp/vault-action`
//! (§3.2). Every field a driver reads is asserted with the type it parses it as; a wrong type or a
//! missing field there is an NPE in Jenkins ("could not log in into vault").
//!
//! Two driver generations are on the wire in the field:
//! - jopenlibs 6.2.0 (plugin ≥ 377): `java.net.http.HttpClient`, a **new client per request**,
//!   HTTP/1.1 forced, redirects never followed, **no Content-Type** on its JSON POSTs,
//!   `X-Vault-Request: true`.
//! - BetterCloud 5.1.0 (plugin ≤ 371): `HttpURLConnection` (keep-alive), which labels every
//!   POST body `application/x-www-form-urlencoded` and sends the JDK's `Accept` default.

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

use crate::common::TestServer;

/// The guide's policy, as written by the admin.
const JENKINS_POLICY: &str = "# Read-only permission on 'secret/data/mysql/*' path\npath \"secret/data/mysql/*\" {\n  capabilities = [ \"read\" ]\n}\n";

/// The guide's `mysqldb.json`.
fn mysqldb() -> Value {
    json!({"url": "foo.example.com:35533", "db_name": "users", "username": "admin", "password": "pa$$w0rd"})
}

/// Which Java driver is talking.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Driver {
    /// io.github.jopenlibs:vault-java-driver 6.2.0.
    Jopenlibs,
    /// com.bettercloud:vault-java-driver 5.1.0.
    BetterCloud,
}

/// A Java driver pointed at `vaultUrl` = the test server.
struct Java {
    driver: Driver,
    base: String,
    /// BetterCloud's `HttpURLConnection` shares the JDK keep-alive cache; 6.2.0 builds a fresh
    /// `HttpClient` per request.
    shared: Client,
}

/// What the plugin gets back from one request.
struct JavaResp {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl JavaResp {
    /// The driver's `restResponse.getMimeType()` compared with `"application/json"` by equality.
    #[track_caller]
    fn assert_json_200(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "status; body: {}", self.text);
        assert_eq!(
            self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "Content-Type must be exactly application/json"
        );
        &self.body
    }
}

fn java_client() -> Client {
    Client::builder()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Java {
    fn new(srv: &TestServer, driver: Driver) -> Java {
        Java {
            driver,
            base: format!("http://{}", srv.addr),
            shared: java_client(),
        }
    }

    fn client(&self) -> Client {
        match self.driver {
            Driver::Jopenlibs => java_client(),
            Driver::BetterCloud => self.shared.clone(),
        }
    }

    /// `Rest.post()` / `Rest.get()`: `{vaultUrl}/v1/{path}` with the path as the driver built it
    /// (no normalisation), the driver's fixed headers, and a compact JSON body on POST.
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> JavaResp {
        let url = format!("{}/v1/{path}", self.base);
        let client = self.client();
        let mut rb = if method == "POST" {
            client.post(&url)
        } else {
            client.get(&url)
        };
        match self.driver {
            Driver::Jopenlibs => {
                rb = rb
                    .header("User-Agent", "Java-http-client/17.0.12")
                    .header("X-Vault-Request", "true");
            }
            Driver::BetterCloud => {
                rb = rb.header("User-Agent", "Java/1.8.0_402").header(
                    "Accept",
                    "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2",
                );
            }
        }
        if let Some(t) = token {
            rb = rb.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            // minimal-json's compact output; the JDK labels any non-PUT body as a form in 5.1.0.
            if self.driver == Driver::BetterCloud {
                rb = rb.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
            }
            rb = rb.body(b.to_string());
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        assert!(
            !status.is_redirection(),
            "{method} {url}: the Java drivers do not follow redirects; got {status}"
        );
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        JavaResp {
            status,
            headers,
            text,
            body,
        }
    }

    /// Step 1: `Auth.loginByAppRole(path, roleId, secretId)`, with `Accept-Charset: UTF-8` and no
    /// token. Returns `auth.client_token` after checking everything `AuthResponse` parses.
    async fn login(&self, mount: &str, role_id: &str, secret_id: &str) -> String {
        let body = json!({"role_id": role_id, "secret_id": secret_id});
        // Key order as the driver writes them.
        assert_eq!(
            body.to_string(),
            format!(r#"{{"role_id":"{role_id}","secret_id":"{secret_id}"}}"#)
        );
        let url = format!("{}/v1/auth/{mount}/login", self.base);
        let client = self.client();
        let mut rb = client
            .post(&url)
            .header("Accept-Charset", "UTF-8")
            .body(body.to_string());
        rb = match self.driver {
            Driver::Jopenlibs => rb
                .header("User-Agent", "Java-http-client/17.0.12")
                .header("X-Vault-Request", "true"),
            Driver::BetterCloud => rb
                .header("User-Agent", "Java/1.8.0_402")
                .header(
                    "Accept",
                    "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2",
                )
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded"),
        };
        let r = rb.send().await.unwrap();
        let resp = JavaResp {
            status: r.status(),
            headers: r.headers().clone(),
            text: String::new(),
            body: Value::Null,
        };
        let text = r.text().await.unwrap();
        let resp = JavaResp {
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
            ..resp
        };
        let b = resp.assert_json_200();
        assert_auth_response(b);
        b["auth"]["client_token"].as_str().unwrap().to_string()
    }

    /// Step 2: `Auth.lookupSelf()`; returns `data.ttl`, the only value the plugin uses.
    async fn lookup_self(&self, token: &str) -> i64 {
        let r = self
            .send("GET", "auth/token/lookup-self", Some(token), None)
            .await;
        let b = r.assert_json_200();
        assert_lookup_response(b);
        b["data"]["ttl"].as_i64().unwrap()
    }

    /// Steps 3…n: `Logical.read(path)` after the driver's KV path rewrite.
    async fn read(&self, token: &str, configured: &str, depth: usize, engine: u8) -> JavaResp {
        let path = adjust_path_for_read(configured, depth, engine);
        self.send("GET", &path, Some(token), None).await
    }
}

/// `AuthResponse`: top-level `renewable` (bool, outside the catch), `auth` (object), a string
/// `auth.client_token`, an `auth.policies` array (`.asArray()`), an int `auth.lease_duration`, a
/// bool `auth.renewable`, a string `auth.accessor`, and `auth.metadata` object-or-null with
/// string values.
#[track_caller]
fn assert_auth_response(b: &Value) {
    assert!(b["renewable"].is_boolean(), "top-level renewable: {b}");
    let auth = &b["auth"];
    assert!(auth.is_object(), "auth: {b}");
    assert!(
        auth["client_token"].as_str().is_some_and(|t| !t.is_empty()),
        "auth.client_token: {auth}"
    );
    let policies = auth["policies"].as_array().expect("auth.policies array");
    assert!(policies.iter().all(Value::is_string), "{auth}");
    assert!(
        auth["lease_duration"].is_i64(),
        "auth.lease_duration must be an int literal: {auth}"
    );
    assert!(auth["renewable"].is_boolean(), "{auth}");
    assert!(auth["accessor"].is_string(), "{auth}");
    match &auth["metadata"] {
        Value::Null => {}
        Value::Object(m) => assert!(m.values().all(Value::is_string), "{auth}"),
        other => panic!("auth.metadata must be an object or null: {other}"),
    }
}

/// `LookupResponse`: a `data` object; `data.policies` an array; numbers for `creation_time`,
/// `creation_ttl`, `explicit_max_ttl`, `ttl`, `num_uses`; no null `last_renewal_time`; booleans
/// for `orphan`, `renewable`; strings for `accessor`, `display_name`, `id`, `path`; `metadata`
/// object or null.
#[track_caller]
fn assert_lookup_response(b: &Value) {
    let d = &b["data"];
    assert!(d.is_object(), "data: {b}");
    assert!(d["policies"].is_array(), "data.policies: {d}");
    for k in [
        "creation_time",
        "creation_ttl",
        "explicit_max_ttl",
        "ttl",
        "num_uses",
    ] {
        assert!(d[k].is_i64(), "data.{k} must be an integer: {d}");
    }
    if let Some(v) = d.get("last_renewal_time") {
        assert!(
            v.is_i64(),
            "data.last_renewal_time must be a number or absent: {d}"
        );
    }
    for k in ["orphan", "renewable"] {
        assert!(d[k].is_boolean(), "data.{k}: {d}");
    }
    for k in ["accessor", "display_name", "id", "path"] {
        assert!(d[k].is_string(), "data.{k}: {d}");
    }
    assert!(
        d.get("metadata")
            .is_none_or(|m| m.is_object() || m.is_null()),
        "data.metadata: {d}"
    );
}

/// `LogicalUtilities.adjustPathForReadOrWrite` + `addQualifierToPath`: for engine 2, split on
/// `/` dropping empty segments, emit `depth` segments, `data`, then the rest; keep a trailing `/`.
/// Engine 1 paths go out verbatim.
fn adjust_path_for_read(path: &str, depth: usize, engine: u8) -> String {
    if engine == 1 {
        return path.to_string();
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut out: Vec<&str> = segs[..depth].to_vec();
    out.push("data");
    out.extend(&segs[depth..]);
    let mut s = out.join("/");
    if path.ends_with('/') {
        s.push('/');
    }
    s
}

/// `LogicalResponse` for v2: `data.data` an object and `data.metadata` an object (6.2.0 drops
/// everything on a null); returns the values as the plugin sees them (strings; other JSON as
/// compact text; nulls dropped).
#[track_caller]
fn v2_values(r: &JavaResp) -> serde_json::Map<String, Value> {
    let b = r.assert_json_200();
    let data = &b["data"];
    assert!(data["data"].is_object(), "data.data: {b}");
    assert!(
        data["metadata"].is_object(),
        "data.metadata must be an object, never null: {b}"
    );
    plugin_values(&data["data"])
}

/// `LogicalResponse` for v1: `data` an object.
#[track_caller]
fn v1_values(r: &JavaResp) -> serde_json::Map<String, Value> {
    let b = r.assert_json_200();
    assert!(b["data"].is_object(), "data: {b}");
    plugin_values(&b["data"])
}

fn plugin_values(obj: &Value) -> serde_json::Map<String, Value> {
    obj.as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            (k.clone(), Value::String(s))
        })
        .collect()
}

/// A 4xx as the plugin parses it: a JSON body whose `errors` is an array of strings.
#[track_caller]
fn assert_error_body(r: &JavaResp, status: u16) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text);
    assert_eq!(
        r.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let errors = r.body["errors"].as_array().expect("errors array");
    assert!(errors.iter().all(Value::is_string), "{}", r.text);
}

/// The guide's admin part, as root: AppRole enabled, the jenkins policy, the role (1h/4h), and
/// the secret at `secret/mysql/webapp`. Returns (role_id, secret_id).
async fn guide_setup(srv: &TestServer) -> (String, String) {
    srv.post("sys/auth/approle", &srv.root, json!({"type": "approle"}))
        .await
        .assert_status(204);
    srv.write_policy("jenkins", JENKINS_POLICY).await;
    srv.post(
        "auth/approle/role/jenkins",
        &srv.root,
        json!({"token_policies": "jenkins", "token_ttl": "1h", "token_max_ttl": "4h"}),
    )
    .await
    .assert_status(204);
    let r = srv
        .get("auth/approle/role/jenkins/role-id", &srv.root)
        .await;
    r.assert_status(200);
    let role_id = r.body["data"]["role_id"].as_str().unwrap().to_string();
    let r = srv
        .post("auth/approle/role/jenkins/secret-id", &srv.root, json!({}))
        .await;
    r.assert_status(200);
    let secret_id = r.body["data"]["secret_id"].as_str().unwrap().to_string();
    srv.post(
        "secret/data/mysql/webapp",
        &srv.root,
        json!({"data": mysqldb()}),
    )
    .await
    .assert_status(200);
    (role_id, secret_id)
}

/// One `withVault` with an AppRole credential and an uncached token: login, lookup-self, then
/// one read per secret, exactly as §2.1 lists them; then what the token cache sees later.
async fn with_vault_sequence(driver: Driver) {
    let srv = TestServer::start().await;
    let (role_id, secret_id) = guide_setup(&srv).await;
    let java = Java::new(&srv, driver);

    let token = java.login("approle", &role_id, &secret_id).await;
    // The login body the driver parsed, field by field.
    let r = srv.get("auth/token/lookup-self", &token).await;
    assert_eq!(
        r.body["data"]["policies"],
        json!(["default", "jenkins"]),
        "{}",
        r.text
    );

    // The plugin caches the token until now + data.ttl - 10 s.
    assert_eq!(java.lookup_self(&token).await, 3600);

    // withVault(vaultSecrets: [[path: 'secret/mysql/webapp', secretValues: [...]]]), engine 2.
    let r = java.read(&token, "secret/mysql/webapp", 1, 2).await;
    let values = v2_values(&r);
    for key in ["url", "db_name", "username", "password"] {
        assert_eq!(values[key], mysqldb()[key], "vaultKey {key}");
    }
    assert_eq!(r.body["renewable"], json!(false));
    assert!(r.body["lease_duration"].is_i64());
    assert!(r.body["lease_id"].is_string());

    // Denied: "Access denied to Vault path" fails the build (never 401: that is a silent skip).
    let r = java.read(&token, "secret/other/app", 1, 2).await;
    assert_error_body(&r, 403);
    // Vault's ACL denial is a Go multierror.
    assert_eq!(
        r.body["errors"],
        json!(["1 error occurred:\n\t* permission denied\n\n"])
    );

    // Missing (inside the granted path): 404 with `{"errors":[]}` → "credentials not found".
    let r = java.read(&token, "secret/mysql/missing", 1, 2).await;
    assert_error_body(&r, 404);
    assert_eq!(r.body["errors"], json!([]));

    // User error #83: `data/` written into a v2 path becomes `secret/data/data/...`: a clean 4xx,
    // never a redirect or a 5xx (which the plugin would retry for `timeout` seconds).
    let r = java.read(&srv.root, "secret/data/mysql/webapp", 1, 2).await;
    assert_error_body(&r, 404);

    // Ten minutes later the cached token's lookup reports the remaining TTL, not the creation TTL.
    srv.clock.advance(Duration::from_secs(600));
    assert_eq!(java.lookup_self(&token).await, 3000);
    let r = java.read(&token, "secret/mysql/webapp", 1, 2).await;
    assert_eq!(v2_values(&r)["password"], "pa$$w0rd");

    // Without a token at all (6.2.0 with a null auth), or a forgotten one: 403, not 401.
    let r = java
        .send("GET", "secret/data/mysql/webapp", None, None)
        .await;
    assert_error_body(&r, 403);
    assert_eq!(r.body["errors"], json!(["permission denied"]));
    let r = java
        .send(
            "GET",
            "secret/data/mysql/webapp",
            Some("hvs.forgotten"),
            None,
        )
        .await;
    assert_error_body(&r, 403);
    // A bad secret ID: the login fails with a JSON 400 the plugin prints.
    let r = java
        .send(
            "POST",
            "auth/approle/login",
            None,
            Some(&json!({"role_id": role_id, "secret_id": "wrong"})),
        )
        .await;
    assert_error_body(&r, 400);
}

#[tokio::test]
async fn jopenlibs_620_with_vault_sequence() {
    with_vault_sequence(Driver::Jopenlibs).await;
}

#[tokio::test]
async fn bettercloud_510_with_vault_sequence() {
    with_vault_sequence(Driver::BetterCloud).await;
}

#[test]
fn driver_path_rewrite_table() {
    // The contract's table (§2.5), as the driver computes it.
    let cases = [
        ("secret/app", 1, 2, "secret/data/app"),
        ("secret/team/app", 1, 2, "secret/data/team/app"),
        ("secret/data/app", 1, 2, "secret/data/data/app"),
        ("team1/kv/app", 2, 2, "team1/kv/data/app"),
        ("team1/kv/app", 1, 2, "team1/data/kv/app"),
        ("aws/creds/role", 1, 2, "aws/data/creds/role"),
        ("secret/app", 1, 1, "secret/app"),
        ("/secret//app", 1, 1, "/secret//app"),
        ("/secret//app", 1, 2, "secret/data/app"),
        ("secret/app/", 1, 2, "secret/data/app/"),
        ("secret", 1, 2, "secret/data"),
    ];
    for (path, depth, engine, want) in cases {
        assert_eq!(adjust_path_for_read(path, depth, engine), want, "{path}");
    }
}

/// prefixPath / depth, v1 reads, multi-segment mounts, and the odd paths plugin 377 sends
/// unnormalised: all served, none redirected.
#[tokio::test]
async fn engine_versions_mounts_and_odd_paths() {
    let srv = TestServer::start().await;
    let (role_id, secret_id) = guide_setup(&srv).await;
    srv.post(
        "sys/mounts/team1/kv",
        &srv.root,
        json!({"type": "kv", "options": {"version": "2"}}),
    )
    .await
    .assert_status(204);
    srv.post(
        "sys/mounts/long/path/kv-v1",
        &srv.root,
        json!({"type": "kv", "options": {"version": "1"}}),
    )
    .await
    .assert_status(204);
    srv.post(
        "team1/kv/data/app",
        &srv.root,
        json!({"data": {"port": 5432, "tls": true, "empty": null, "user": "ci"}}),
    )
    .await
    .assert_status(200);
    srv.post(
        "long/path/kv-v1/app",
        &srv.root,
        json!({"password": "v1-secret"}),
    )
    .await
    .assert_status(204);
    srv.write_policy(
        "jenkins",
        &format!(
            "{JENKINS_POLICY}path \"team1/kv/data/*\" {{ capabilities = [\"read\"] }}\npath \"long/path/kv-v1/*\" {{ capabilities = [\"read\"] }}\n"
        ),
    )
    .await;

    for driver in [Driver::Jopenlibs, Driver::BetterCloud] {
        let java = Java::new(&srv, driver);
        let token = java.login("approle", &role_id, &secret_id).await;

        // prefixPath 'team1/kv' + path 'app' → depth 2 → team1/kv/data/app.
        let r = java.read(&token, "team1/kv/app", 2, 2).await;
        assert_eq!(r.headers[CONTENT_TYPE], "application/json");
        let values = v2_values(&r);
        // Non-string values arrive as their compact JSON text; nulls are dropped.
        assert_eq!(
            Value::Object(values),
            json!({"port": "5432", "tls": "true", "user": "ci"})
        );
        // The same path without the prefix depth splits the mount wrongly: a clean 403/404.
        let r = java.read(&token, "team1/kv/app", 1, 2).await;
        assert!(matches!(r.status.as_u16(), 403 | 404), "{}", r.text);

        // engineVersion 1 on a three-segment v1 mount: data is the secret itself.
        let r = java.read(&token, "long/path/kv-v1/app", 1, 1).await;
        assert_eq!(v1_values(&r)["password"], "v1-secret");
        assert!(r.body["lease_duration"].is_i64(), "{}", r.text);

        // Plugin 377 sends v1 paths verbatim: `/v1//long//path/kv-v1//app`; Vault answers 301
        // (plugin #358), Coffer normalises and serves it.
        for odd in [
            "/long//path/kv-v1//app",
            "long/path//kv-v1/app",
            "//long/path/kv-v1/app",
        ] {
            let r = java.read(&token, odd, 1, 1).await;
            assert_eq!(v1_values(&r)["password"], "v1-secret", "{odd}");
        }
        // v2 with a leading slash (JCasC `CASC_VAULT_PATHS=/dev/jenkins`, #173): the driver's
        // split drops it. A trailing slash must not redirect either.
        let r = java.read(&token, "/secret/mysql/webapp", 1, 2).await;
        assert_eq!(v2_values(&r)["username"], "admin");
        let r = java.read(&token, "secret/mysql/webapp/", 1, 2).await;
        assert!(!r.status.is_redirection() && !r.status.is_server_error());
        // A leading slash on the whole URL path is still never a redirect.
        let r = java
            .send("GET", "/secret/data//mysql/webapp", Some(&token), None)
            .await;
        assert_eq!(v2_values(&r)["db_name"], "users");
        let r = java
            .send("GET", "/secret/data//mysql/none", Some(&token), None)
            .await;
        assert_error_body(&r, 404);
    }
}

/// "Limit Token Policies": lookup-self with the parent, `auth/token/create` with the templated
/// policies and the parent's TTL, then lookup-self with the child.
#[tokio::test]
async fn limit_token_policies_child_token() {
    let srv = TestServer::start().await;
    let (role_id, secret_id) = guide_setup(&srv).await;
    // The admin lets the AppRole mint children.
    srv.write_policy(
        "jenkins",
        &format!("{JENKINS_POLICY}path \"auth/token/create\" {{ capabilities = [\"update\"] }}\n"),
    )
    .await;
    srv.write_policy(
        "job-webapp",
        "path \"secret/data/mysql/webapp\" { capabilities = [\"read\"] }\n",
    )
    .await;
    srv.post(
        "auth/approle/role/jenkins",
        &srv.root,
        json!({"token_policies": "jenkins,job-webapp"}),
    )
    .await
    .assert_status(204);

    for driver in [Driver::Jopenlibs, Driver::BetterCloud] {
        let java = Java::new(&srv, driver);
        let parent = java.login("approle", &role_id, &secret_id).await;
        let ttl = java.lookup_self(&parent).await;
        assert_eq!(ttl, 3600);
        let r = java
            .send(
                "POST",
                "auth/token/create",
                Some(&parent),
                Some(&json!({"policies": ["job-webapp"], "ttl": format!("{ttl}s")})),
            )
            .await;
        let b = r.assert_json_200();
        assert_auth_response(b);
        assert_eq!(b["auth"]["policies"], json!(["default", "job-webapp"]));
        assert_eq!(b["auth"]["lease_duration"], json!(3600));
        let child = b["auth"]["client_token"].as_str().unwrap().to_string();
        assert_eq!(java.lookup_self(&child).await, 3600);
        let r = java.read(&child, "secret/mysql/webapp", 1, 2).await;
        assert_eq!(v2_values(&r)["password"], "pa$$w0rd");
    }
}

/// The plugin's token cache with `token_num_uses`: every lookup-self spends a use, as in Vault
/// (plugin #156); a token with uses left keeps working and reports an integer ttl.
#[tokio::test]
async fn lookup_self_spends_a_token_use() {
    let srv = TestServer::start().await;
    let (role_id, secret_id) = guide_setup(&srv).await;
    srv.post(
        "auth/approle/role/jenkins",
        &srv.root,
        json!({"token_num_uses": 3}),
    )
    .await
    .assert_status(204);
    let java = Java::new(&srv, Driver::Jopenlibs);
    let token = java.login("approle", &role_id, &secret_id).await;
    assert_eq!(java.lookup_self(&token).await, 3600); // use 1
    let r = java.read(&token, "secret/mysql/webapp", 1, 2).await; // use 2
    v2_values(&r);
    let r = java.read(&token, "secret/mysql/webapp", 1, 2).await; // use 3: the last
    v2_values(&r);
    let r = java.read(&token, "secret/mysql/webapp", 1, 2).await;
    assert_error_body(&r, 403);
}

/// GitHub's `hashicorp/vault-action` v3 (got 11): POST login with a JSON body, lowercase
/// headers and an empty namespace header, then a raw GET of the path as written (users add
/// `data/` themselves); `body.data.data` marks a v2 answer.
#[tokio::test]
async fn vault_action_traffic() {
    let srv = TestServer::start().await;
    let (role_id, secret_id) = guide_setup(&srv).await;
    let got = Client::builder()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{}/", srv.addr); // prefixUrl with a trailing slash
    let send = |rb: reqwest::RequestBuilder| async move {
        let r = rb
            .header("user-agent", "got (https://github.com/sindresorhus/got)")
            .header("accept-encoding", "gzip, deflate, br")
            .header("x-vault-namespace", "")
            .send()
            .await
            .unwrap();
        assert!(!r.status().is_redirection(), "{}", r.status());
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str::<Value>(&text).unwrap())
    };

    let (status, body) = send(
        got.post(format!("{base}v1/auth/approle/login"))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(json!({"role_id": role_id, "secret_id": secret_id}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(body["auth"]["policies"], json!(["default", "jenkins"]));
    assert_eq!(body["auth"]["metadata"], json!({"role_name": "jenkins"}));

    // secrets: `secret/data/mysql/webapp password | DB_PASSWORD`
    for path in ["secret/data/mysql/webapp", "/secret/data/mysql/webapp"] {
        let (status, body) = send(
            got.get(format!("{base}v1/{path}"))
                .header("x-vault-token", &token),
        )
        .await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body["data"]["data"].is_object(), "v2 detection: {body}");
        assert_eq!(body["data"]["data"]["password"], "pa$$w0rd");
    }
    // Without `data/` (the common mistake, vault-action #104): the policy names the API path
    // (`secret/data/...`), so the ACL denies it before the engine could warn; as root, the
    // engine's 404 with Vault's "Invalid path for a versioned K/V" warning.
    let (status, body) = send(
        got.get(format!("{base}v1/secret/mysql/webapp"))
            .header("x-vault-token", &token),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = send(
        got.get(format!("{base}v1/secret/mysql/webapp"))
            .header("x-vault-token", &srv.root),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("Invalid path for a versioned K/V secrets engine")),
        "{body}"
    );
    // ignoreNotFound reads the body of a missing secret.
    let (status, body) = send(
        got.get(format!("{base}v1/secret/data/mysql/none"))
            .header("x-vault-token", &token),
    )
    .await;
    assert_eq!((status, body), (404, json!({"errors": []})));
    let (status, body) = send(
        got.get(format!("{base}v1/secret/data/other"))
            .header("x-vault-token", &token),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("permission denied"))
    );
}

/// One raw HTTP/1.1 exchange on `stream`: writes `request` byte for byte, reads one response
/// (Content-Length or chunked). Returns the status line, the headers as written, and the body.
async fn raw_exchange(
    stream: &mut tokio::net::TcpStream,
    request: &str,
) -> (String, Vec<(String, String)>, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_string();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.to_string(), v.trim().to_string())
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut rest = buf[head_end + 4..].to_vec();
    let body = if let Some(len) = header("content-length") {
        let len: usize = len.parse().unwrap();
        while rest.len() < len {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed inside the body");
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    } else {
        assert_eq!(header("transfer-encoding").as_deref(), Some("chunked"));
        while !rest.ends_with(b"0\r\n\r\n") {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed inside a chunked body");
            rest.extend_from_slice(&chunk[..n]);
        }
        let mut out = Vec::new();
        let mut s = &rest[..];
        loop {
            let i = s.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&s[..i]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&s[i + 2..i + 2 + size]);
            s = &s[i + 2 + size + 2..];
        }
        out
    };
    (status, headers, serde_json::from_slice(&body).unwrap())
}

/// The login and lookup-self byte for byte as each JDK client writes them (header names, case
/// and order included: `HttpURLConnection` writes `Content-type`), on one kept-alive connection
/// for 5.1.0 and a fresh connection per request for 6.2.0. Nothing reqwest adds can matter here.
#[tokio::test]
async fn exact_bytes_login_and_lookup() {
    let srv = TestServer::start().await;
    let (role_id, secret_id) = guide_setup(&srv).await;
    let host = srv.addr.to_string();
    let body = format!(r#"{{"role_id":"{role_id}","secret_id":"{secret_id}"}}"#);
    let check_login = |status: &str, headers: &[(String, String)], b: &Value| {
        assert_eq!(status, "HTTP/1.1 200 OK", "{b}");
        let ct: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(ct, ["application/json"]);
        assert!(
            !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("location"))
        );
        assert_auth_response(b);
        b["auth"]["client_token"].as_str().unwrap().to_string()
    };

    // jopenlibs 6.2.0: java.net.http.HttpClient, HTTP/1.1, no Content-Type, a new connection each.
    let mut conn = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let (status, headers, b) = raw_exchange(
        &mut conn,
        &format!(
            "POST /v1/auth/approle/login HTTP/1.1\r\nContent-Length: {}\r\nHost: {host}\r\nUser-Agent: Java-http-client/17.0.12\r\nAccept-Charset: UTF-8\r\nX-Vault-Request: true\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    let token = check_login(&status, &headers, &b);
    let mut conn = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let (status, _, b) = raw_exchange(
        &mut conn,
        &format!(
            "GET /v1/auth/token/lookup-self HTTP/1.1\r\nContent-Length: 0\r\nHost: {host}\r\nUser-Agent: Java-http-client/17.0.12\r\nX-Vault-Token: {token}\r\nX-Vault-Request: true\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_lookup_response(&b);
    assert_eq!(b["data"]["ttl"], json!(3600));

    // BetterCloud 5.1.0: HttpURLConnection, JSON labelled as a form, one kept-alive connection.
    let mut conn = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let jdk = "User-Agent: Java/1.8.0_402\r\nHost: HOST\r\nAccept: text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2\r\nConnection: keep-alive\r\n".replace("HOST", &host);
    let (status, headers, b) = raw_exchange(
        &mut conn,
        &format!(
            "POST /v1/auth/approle/login HTTP/1.1\r\nAccept-Charset: UTF-8\r\n{jdk}Content-type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    let token = check_login(&status, &headers, &b);
    let (status, _, b) = raw_exchange(
        &mut conn,
        &format!("GET /v1/auth/token/lookup-self HTTP/1.1\r\nX-Vault-Token: {token}\r\n{jdk}\r\n"),
    )
    .await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_lookup_response(&b);
    let (status, _, b) = raw_exchange(
        &mut conn,
        &format!(
            "GET /v1/secret/data/mysql/webapp HTTP/1.1\r\nX-Vault-Token: {token}\r\n{jdk}\r\n"
        ),
    )
    .await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(b["data"]["data"], mysqldb());
    assert!(b["data"]["metadata"].is_object());
}
