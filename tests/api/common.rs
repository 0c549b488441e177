//! Test harness: the real router served on `127.0.0.1:0` over real HTTP, with a mock clock.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

use coffer::clock::MockClock;
use coffer::server::{DevServer, serve};

/// A running dev server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub root: String,
    /// The dev server's one unseal key (empty for servers someone else started).
    pub unseal_key: String,
    pub clock: Arc<MockClock>,
    pub client: Client,
    pub core: Arc<coffer::core::Core>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// A response: status, headers and parsed JSON body (Null when empty or not JSON).
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    #[track_caller]
    pub fn assert_status(&self, code: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            code,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// The `errors` array as strings.
    pub fn errors(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        let clock = MockClock::new();
        let dev = DevServer::new(clock.clone(), Some("root".into()))
            .await
            .expect("dev server");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let core = dev.core.clone();
        tokio::spawn(async move {
            let _ = serve(listener, dev.core, async move {
                let _ = rx.await;
            })
            .await;
        });
        TestServer {
            addr,
            root: dev.root_token.expose().to_string(),
            unseal_key: dev.unseal_key.expose().to_string(),
            clock,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            core,
            _shutdown: tx,
        }
    }

    /// A handle on a server someone else started (production-mode tests); `root` starts empty.
    pub fn attach(
        addr: SocketAddr,
        core: Arc<coffer::core::Core>,
        clock: Arc<MockClock>,
    ) -> TestServer {
        let (tx, _rx) = tokio::sync::oneshot::channel::<()>();
        TestServer {
            addr,
            root: String::new(),
            unseal_key: String::new(),
            clock,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            core,
            _shutdown: tx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/v1/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Sends a request. `body` of `None` sends no body; `Some(v)` sends `v` as JSON text (no
    /// Content-Type, like the vault CLI).
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.client.request(m, self.url(path));
        if let Some(t) = token {
            rb = rb.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            rb = rb.body(b.to_string());
        }
        Self::finish(rb).await
    }

    /// Sends a prepared request builder.
    pub async fn finish(rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("send");
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.req("GET", path, Some(token), None).await
    }

    pub async fn list(&self, path: &str, token: &str) -> Resp {
        self.req("LIST", path, Some(token), None).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.req("PUT", path, Some(token), Some(body)).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.req("POST", path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.req("DELETE", path, Some(token), None).await
    }

    /// Seals the server with the root token (asserts 204).
    pub async fn seal(&self) {
        self.put("sys/seal", &self.root, json!({}))
            .await
            .assert_status(204);
    }

    /// Sends the dev server's unseal key (the answer is left to the caller).
    pub async fn unseal(&self) -> Resp {
        self.req(
            "PUT",
            "sys/unseal",
            None,
            Some(json!({"key": self.unseal_key})),
        )
        .await
    }

    /// Writes a policy and returns nothing (asserts 204).
    pub async fn write_policy(&self, name: &str, hcl: &str) {
        self.write_policy_as(&self.root, name, hcl).await;
    }

    /// Writes a policy with `token`.
    pub async fn write_policy_as(&self, token: &str, name: &str, hcl: &str) {
        self.put(
            &format!("sys/policies/acl/{name}"),
            token,
            serde_json::json!({ "policy": hcl }),
        )
        .await
        .assert_status(204);
    }

    /// Creates a token with the given policies (as root) and returns it.
    pub async fn token_with(&self, policies: &[&str], extra: Value) -> String {
        self.token_with_as(&self.root, policies, extra).await
    }

    /// Creates a token with the given policies as `parent`.
    pub async fn token_with_as(&self, parent: &str, policies: &[&str], extra: Value) -> String {
        let mut body = serde_json::json!({ "policies": policies });
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        let r = self.post("auth/token/create", parent, body).await;
        r.assert_status(200);
        r.body["auth"]["client_token"]
            .as_str()
            .expect("client_token")
            .to_string()
    }
}
