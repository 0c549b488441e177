//! The JDK clients' requests written byte for byte on raw sockets.

use serde_json::{Value, json};

use super::{assert_auth_response, assert_lookup_response, guide_setup, mysqldb};
use crate::common::TestServer;

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
