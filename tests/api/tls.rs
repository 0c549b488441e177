//! Serving over TLS with a generated certificate: TLS 1.2 and 1.3, HTTP/1.1 and HTTP/2.

use coffer::clock::MockClock;
use coffer::server::{DevServer, TlsSettings, serve_tls};

struct TlsServer {
    port: u16,
    ca: reqwest::Certificate,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(min_tls13: bool) -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let dev = DevServer::new(MockClock::new(), Some("root".into()))
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tls = TlsSettings {
        cert_file,
        key_file,
        min_tls13,
    };
    let core = dev.core.clone();
    tokio::spawn(async move {
        let _ = serve_tls(
            listener,
            core,
            &tls,
            &coffer::server::HttpOptions::default(),
            async move {
                let _ = rx.await;
            },
        )
        .await;
    });
    let ca = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    TlsServer {
        port,
        ca,
        _dir: dir,
        _stop: tx,
    }
}

fn client(srv: &TlsServer, max: Option<reqwest::tls::Version>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(srv.ca.clone());
    if let Some(v) = max {
        b = b.max_tls_version(v);
    }
    b.build().unwrap()
}

#[tokio::test]
async fn serves_tls12_tls13_and_h2() {
    let srv = start(false).await;
    let url = format!("https://localhost:{}/v1/auth/token/lookup-self", srv.port);
    let r = client(&srv, None)
        .get(&url)
        .header("X-Vault-Token", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN should pick h2");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"]["id"], "root");
    // A TLS 1.2-only client (the Jenkins Java driver with a custom CA) still connects.
    let r = client(&srv, Some(reqwest::tls::Version::TLS_1_2))
        .get(&url)
        .header("X-Vault-Token", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // HTTP/1.1 only.
    let h1 = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(srv.ca.clone())
        .http1_only()
        .build()
        .unwrap();
    let r = h1
        .get(&url)
        .header("X-Vault-Token", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn tls13_minimum_refuses_tls12_clients() {
    let srv = start(true).await;
    let url = format!("https://localhost:{}/v1/sys/health", srv.port);
    assert!(
        client(&srv, Some(reqwest::tls::Version::TLS_1_2))
            .get(&url)
            .send()
            .await
            .is_err()
    );
    let r = client(&srv, None).get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bad_certificate_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let missing = TlsSettings {
        cert_file: dir.path().join("nope.pem"),
        key_file: dir.path().join("nope.key"),
        min_tls13: false,
    };
    let err = coffer::server::rustls_config(&missing).unwrap_err();
    assert!(err.contains("nope.pem"), "{err}");
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let empty = TlsSettings {
        cert_file: dir.path().join("empty.pem"),
        key_file: dir.path().join("nope.key"),
        min_tls13: false,
    };
    assert!(coffer::server::rustls_config(&empty).is_err());
}
