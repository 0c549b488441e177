//! A minimal HTTP/1.1 keep-alive client: hand-rolled, no extra dependencies, only what the
//! benchmark needs (length-delimited and chunked bodies, `Connection: close`).

use std::fmt::Write as _;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::R;

pub struct Conn {
    pub addr: String,
    pub stream: Option<TcpStream>,
    pub buf: Vec<u8>,
}

pub fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

impl Conn {
    pub async fn connect(addr: &str) -> R<Conn> {
        let mut c = Conn {
            addr: addr.to_string(),
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        };
        c.reconnect().await?;
        Ok(c)
    }

    pub async fn reconnect(&mut self) -> R<()> {
        let s = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        self.stream = Some(s);
        self.buf.clear();
        Ok(())
    }

    /// Reads more bytes into `buf`; EOF is an error (responses are always length-delimited).
    pub async fn fill(&mut self) -> R<()> {
        let s = self.stream.as_mut().ok_or("not connected")?;
        self.buf.reserve(16 * 1024);
        let n = s.read_buf(&mut self.buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed by server".into());
        }
        Ok(())
    }

    pub async fn need(&mut self, upto: usize) -> R<()> {
        while self.buf.len() < upto {
            self.fill().await?;
        }
        Ok(())
    }

    /// Sends one request (already serialised) and returns (status, body).
    pub async fn send(&mut self, req: &[u8]) -> R<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            self.reconnect().await?;
        }
        let res = self.send_inner(req).await;
        if res.is_err() {
            self.stream = None;
        }
        res
    }

    pub async fn send_inner(&mut self, req: &[u8]) -> R<(u16, Vec<u8>)> {
        let s = self.stream.as_mut().ok_or("not connected")?;
        s.write_all(req).await.map_err(|e| e.to_string())?;
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n", 0) {
                break p;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|e| e.to_string())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let (mut len, mut chunked, mut close) = (0usize, false, false);
        for line in lines {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().map_err(|_| format!("bad content-length {v:?}"))?;
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            }
        }
        let start = head_end + 4;
        let body = if chunked {
            let mut body = Vec::new();
            let mut at = start;
            loop {
                let eol = loop {
                    if let Some(p) = find(&self.buf, b"\r\n", at) {
                        break p;
                    }
                    self.fill().await?;
                };
                let line = std::str::from_utf8(&self.buf[at..eol]).map_err(|e| e.to_string())?;
                let hex = line.split(';').next().unwrap_or("").trim();
                let size =
                    usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk {line:?}"))?;
                at = eol + 2;
                self.need(at + size + 2).await?;
                body.extend_from_slice(&self.buf[at..at + size]);
                at += size + 2;
                if size == 0 {
                    break;
                }
            }
            self.buf.drain(..at);
            body
        } else {
            self.need(start + len).await?;
            let body = self.buf[start..start + len].to_vec();
            self.buf.drain(..start + len);
            body
        };
        if close {
            self.stream = None;
        }
        Ok((status, body))
    }

    /// JSON convenience for fixtures: returns (status, parsed body or Null).
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> R<(u16, Value)> {
        let body = body.map(|b| b.to_string());
        let req = build_request(method, path, token, body.as_deref());
        let (status, bytes) = self.send(&req).await?;
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, v))
    }
}

pub fn build_request(method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(t) = token {
        let _ = write!(s, "X-Vault-Token: {t}\r\n");
    }
    match body {
        Some(b) => {
            let _ = write!(
                s,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            );
        }
        None => s.push_str("\r\n"),
    }
    s.into_bytes()
}
