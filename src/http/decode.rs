//! HTTP → `IncomingRequest`: method to operation, query and body to parameters, token and
//! wrap-TTL headers. Bodies are JSON whatever the Content-Type, except form bodies that are not
//! JSON-shaped; an empty body, `null` and trailing whitespace all mean "no parameters".

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use std::net::IpAddr;

use super::AppState;
use crate::core::IncomingRequest;
use crate::error::{Error, Result};
use crate::logical::Operation;
use crate::logical::field::parse_duration_seconds;
use crate::secret::Secret;

/// Percent-decodes a URL path; `None` when the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = ((*h as char).to_digit(16), (*l as char).to_digit(16))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Query string → parameters (repeated keys become arrays).
pub fn parse_query(q: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(&k.replace('+', " ")).unwrap_or_default();
        let v = percent_decode(&v.replace('+', " ")).unwrap_or_default();
        match out.get_mut(&k) {
            Some(Value::Array(a)) => a.push(Value::String(v)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(v)]);
            }
            None => {
                out.insert(k, Value::String(v));
            }
        }
    }
    out
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The client token: `X-Vault-Token`, else `Authorization: Bearer`.
pub fn client_token(h: &HeaderMap) -> Option<Secret> {
    if let Some(t) = header(h, "x-vault-token").filter(|t| !t.is_empty()) {
        return Some(Secret::new(t.trim()));
    }
    let auth = header(h, "authorization")?;
    let (scheme, tok) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| Secret::new(tok.trim()))
        .filter(|t| !t.is_empty())
}

fn wrap_ttl(h: &HeaderMap) -> Result<Option<i64>> {
    let Some(raw) = header(h, "x-vault-wrap-ttl").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let secs = parse_duration_seconds(raw)
        .map_err(|e| Error::bad(format!("error parsing X-Vault-Wrap-TTL header: {e}")))?;
    if secs < 0 {
        return Err(Error::bad(
            "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative",
        ));
    }
    Ok((secs > 0).then_some(secs))
}

pub(super) async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Error::PayloadTooLarge(
                "http: request body too large".into(),
            ))
        }
        Err(_) => Err(Error::bad("failed to read request body")),
    }
}

fn parse_body(bytes: &[u8], content_type: Option<&str>) -> Result<Map<String, Value>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::bad("failed to decode JSON input: invalid UTF-8"))?;
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed == "null" {
        return Ok(Map::new());
    }
    let is_form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if is_form && !trimmed.starts_with('{') && !trimmed.starts_with('[') {
        return Ok(parse_query(Some(trimmed)));
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::bad(
            "failed to decode JSON input: json: cannot unmarshal into Go value of type map[string]interface {}",
        )),
        Err(e) if e.is_eof() => Err(Error::bad("failed to decode JSON input: unexpected EOF")),
        Err(e) => Err(Error::bad(format!("failed to decode JSON input: {e}"))),
    }
}

/// Builds the pipeline's request from the HTTP parts.
pub async fn incoming(
    state: &AppState,
    method: Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    addr: Option<IpAddr>,
) -> Result<IncomingRequest> {
    if !super::known_method(&method) || method == Method::HEAD {
        return Err(Error::MethodNotAllowed);
    }
    let content_type = header(headers, "content-type").map(str::to_string);
    let query_map = parse_query(query);
    let is_help = query_map
        .get("help")
        .and_then(Value::as_str)
        .is_some_and(|v| v == "1" || v == "true");
    let list_flag = query_map
        .get("list")
        .and_then(Value::as_str)
        .is_some_and(|v| matches!(v, "true" | "1" | "t" | "TRUE" | "True"));
    let (operation, data) = match method.as_str() {
        _ if is_help => (Operation::Help, Map::new()),
        "GET" if list_flag => {
            let mut q = query_map;
            q.remove("list");
            (Operation::List, q)
        }
        "LIST" => (Operation::List, query_map),
        "GET" => (Operation::Read, query_map),
        "DELETE" => (Operation::Delete, query_map),
        "PATCH" => {
            if !content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/merge-patch+json"))
            {
                return Err(Error::UnsupportedMediaType(
                    "PATCH requires Content-Type: application/merge-patch+json".into(),
                ));
            }
            let bytes = read_body(body, state.max_request_size).await?;
            (Operation::Patch, parse_body(&bytes, None)?)
        }
        _ => {
            let bytes = read_body(body, state.max_request_size).await?;
            (
                Operation::Update,
                parse_body(&bytes, content_type.as_deref())?,
            )
        }
    };
    Ok(IncomingRequest {
        operation,
        path: path.to_string(),
        data,
        client_token: client_token(headers),
        client_addr: addr,
        wrap_ttl: wrap_ttl(headers)?,
        content_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert!(parse_body(b"", None).unwrap().is_empty());
        assert!(parse_body(b"null", None).unwrap().is_empty());
        assert!(parse_body(b"null\n", None).unwrap().is_empty());
        assert_eq!(
            parse_body(b"{\"a\":1}\n  ", Some("text/plain")).unwrap()["a"],
            1
        );
        assert_eq!(
            parse_body(b"a=1&b=x%20y", Some("application/x-www-form-urlencoded")).unwrap()["b"],
            "x y"
        );
        assert_eq!(
            parse_body(b"{\"a\":1}", Some("application/x-www-form-urlencoded")).unwrap()["a"],
            1
        );
        assert_eq!(
            parse_body(b"{", None).unwrap_err().to_string(),
            "failed to decode JSON input: unexpected EOF"
        );
        assert!(parse_body(b"[1]", None).is_err());
        assert!(parse_body(b"\xff", None).is_err());
    }

    #[test]
    fn tokens_from_headers() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(client_token(&h).unwrap().expose(), "abc");
        h.insert("x-vault-token", "xyz".parse().unwrap());
        assert_eq!(client_token(&h).unwrap().expose(), "xyz");
    }

    #[test]
    fn wrap_ttl_header() {
        let mut h = HeaderMap::new();
        h.insert("x-vault-wrap-ttl", "1m0s".parse().unwrap());
        assert_eq!(wrap_ttl(&h).unwrap(), Some(60));
        h.insert("x-vault-wrap-ttl", "-5".parse().unwrap());
        assert_eq!(
            wrap_ttl(&h).unwrap_err().to_string(),
            "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative"
        );
        h.insert("x-vault-wrap-ttl", "abc".parse().unwrap());
        assert_eq!(
            wrap_ttl(&h).unwrap_err().to_string(),
            "error parsing X-Vault-Wrap-TTL header: time: invalid duration \"abc\""
        );
    }
}
