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

mod exact_bytes;
mod paths;
mod sequence;
mod vault_action;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

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
        self.send_with(method, path, token, body, &[]).await
    }

    async fn send_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> JavaResp {
        let url = format!("{}/v1/{path}", self.base);
        let client = self.client();
        let mut rb = if method == "POST" {
            client.post(&url)
        } else {
            client.get(&url)
        };
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
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
        let r = self
            .send_with(
                "POST",
                &format!("auth/{mount}/login"),
                None,
                Some(&body),
                &[("Accept-Charset", "UTF-8")],
            )
            .await;
        let b = r.assert_json_200();
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
