//! HTTP → `IncomingRequest`: method to operation, query and body to parameters, token and
//! wrap-TTL headers. Bodies are JSON whatever the Content-Type, except form bodies that are not
//! JSON-shaped; an empty body, `null` and trailing whitespace all mean "no parameters".
//! Before a JSON body is decoded, a streaming scan enforces OpenBao's and Vault's JSON limits, so
//! an unauthenticated client cannot make the server build a huge value (see [`check_complexity`]).

use axum::body::HttpBody;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method};
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use std::net::IpAddr;

use super::AppState;
use crate::config::JsonLimits;
use crate::core::IncomingRequest;
use crate::error::{Error, Result};
use crate::logical::Operation;
use crate::logical::field::parse_duration_seconds;
use crate::secret::Secret;

/// Percent-decodes a URL path; `None` when the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// A query string or form body → parameters (repeated keys become arrays). A key or value that
/// is not UTF-8 once decoded is a 400: it is never silently turned into something else.
pub fn parse_query(q: Option<&str>) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode(&s.replace('+', " ")).ok_or_else(|| {
                Error::bad("failed to parse form data: invalid UTF-8 in a percent-encoded value")
            })
        };
        let (k, v) = (decode(k)?, decode(v)?);
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
    Ok(out)
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

/// Reads a whole body of at most `limit` bytes into one buffer (sized from Content-Length, so a
/// large body is held once, not once per frame plus once joined).
pub(super) async fn read_body(body: Body, limit: usize) -> Result<Bytes> {
    /// Capacity reserved up front at most; larger bodies grow the buffer as they arrive.
    const RESERVE: usize = 1 << 20;
    let expected = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    let mut buf = Vec::with_capacity(expected.min(limit).min(RESERVE));
    let mut limited = std::pin::pin!(http_body_util::Limited::new(body, limit));
    while let Some(frame) = limited.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return Err(Error::PayloadTooLarge(
                    "http: request body too large".into(),
                ));
            }
            Err(_) => return Err(Error::bad("failed to read request body")),
        }
    }
    Ok(Bytes::from(buf))
}

fn parse_body(
    bytes: &[u8],
    content_type: Option<&str>,
    limits: &JsonLimits,
) -> Result<Map<String, Value>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::bad("failed to decode JSON input: invalid UTF-8"))?;
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed == "null" {
        return Ok(Map::new());
    }
    let is_form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if is_form && !trimmed.starts_with('{') && !trimmed.starts_with('[') {
        check_form_memory(trimmed, limits)?;
        return parse_query(Some(trimmed));
    }
    check_complexity(trimmed.as_bytes(), limits)?;
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::bad(
            "failed to decode JSON input: json: cannot unmarshal into Go value of type map[string]interface {}",
        )),
        Err(e) => Err(json_error(&e)),
    }
}

fn json_error(e: &serde_json::Error) -> Error {
    if e.is_eof() {
        Error::bad("failed to decode JSON input: unexpected EOF")
    } else {
        Error::bad(format!("failed to decode JSON input: {e}"))
    }
}

/// OpenBao's estimate of the memory a decoded JSON value needs, per token: a pointer and type
/// for every value, plus 1 for `null` and booleans, 8 for numbers, 16 plus the length for
/// strings (object keys included), 24 for an array and 72 for an object.
mod cost {
    pub const BASE: u64 = 16;
    pub const NULL: u64 = BASE + 1;
    pub const BOOL: u64 = BASE + 1;
    pub const NUMBER: u64 = BASE + 8;
    pub const STRING: u64 = BASE + 16;
    pub const ARRAY: u64 = BASE + 24;
    pub const OBJECT: u64 = BASE + 72;
}

const EXCEEDED_MEMORY: &str = "exceeded maximum estimated memory limits";
const EXCEEDED_STRINGS: &str = "exceeded maximum number of strings";
const EXCEEDED_DEPTH: &str = "JSON input exceeds allowed nesting depth";
const EXCEEDED_STRING_LENGTH: &str = "JSON string value exceeds allowed length";
const EXCEEDED_OBJECT_ENTRIES: &str = "JSON object exceeds allowed entry count";
const EXCEEDED_ARRAY_ELEMENTS: &str = "JSON array exceeds allowed element count";

/// Refuses a JSON document that is too complex before it is decoded, with a 400
/// `refused JSON input due to high complexity: ...` naming the first limit passed:
/// - OpenBao's: the estimated memory of the decoded value over `max_memory`, or more strings
///   (keys and values) than `max_strings`;
/// - Vault's: nesting deeper than `max_depth` (the outer value counting 1), a string (key or
///   value) longer than `max_string_length` bytes once decoded, an object with more keys than
///   `max_object_entries`, an array with more elements than `max_array_elements`.
///
/// The scan allocates nothing per element and stops at the first excess, so a 32 MiB
/// `[0,0,...]` costs a few milliseconds instead of half a gigabyte. Nesting deeper than
/// serde_json's recursion limit
/// ([`MAX_JSON_DEPTH_SUPPORTED`](crate::config::listener::MAX_JSON_DEPTH_SUPPORTED)) is refused as too deep whatever
/// `max_depth` says.
pub(super) fn check_complexity(json: &[u8], limits: &JsonLimits) -> Result<()> {
    let mut budget = Budget {
        limits: *limits,
        memory: 0,
        strings: 0,
        depth: 0,
        exceeded: None,
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    let scanned =
        serde::de::DeserializeSeed::deserialize(Scan(&mut budget), &mut de).and_then(|()| de.end());
    let too_complex =
        |why: &str| Error::bad(format!("refused JSON input due to high complexity: {why}"));
    match (budget.exceeded, scanned) {
        (Some(why), _) => Err(too_complex(why)),
        (None, Err(e)) if e.to_string().starts_with("recursion limit exceeded") => {
            Err(too_complex(EXCEEDED_DEPTH))
        }
        (None, Err(e)) => Err(json_error(&e)),
        (None, Ok(())) => Ok(()),
    }
}

/// The memory limit for form bodies (OpenBao checks only JSON): each `key=value` pair is charged
/// as two JSON strings of its raw length, so `a=1&a=1&...` cannot build millions of values.
fn check_form_memory(form: &str, limits: &JsonLimits) -> Result<()> {
    let Some(max) = limits.max_memory else {
        return Ok(());
    };
    let mut memory: u64 = 0;
    for pair in form.split('&').filter(|p| !p.is_empty()) {
        let len = u64::try_from(pair.len()).unwrap_or(u64::MAX);
        memory = memory.saturating_add(2 * cost::STRING).saturating_add(len);
        if memory > max {
            return Err(Error::bad(format!(
                "refused JSON input due to high complexity: {EXCEEDED_MEMORY}"
            )));
        }
    }
    Ok(())
}

struct Budget {
    limits: JsonLimits,
    memory: u64,
    strings: u64,
    /// Objects and arrays open around the current token.
    depth: u64,
    exceeded: Option<&'static str>,
}

impl Budget {
    /// Records which limit was passed and stops the scan.
    fn exceed<E: serde::de::Error>(&mut self, why: &'static str) -> E {
        self.exceeded = Some(why);
        E::custom(why)
    }

    fn charge<E: serde::de::Error>(
        &mut self,
        cost: u64,
        string: bool,
    ) -> std::result::Result<(), E> {
        self.memory = self.memory.saturating_add(cost);
        if self.limits.max_memory.is_some_and(|m| self.memory > m) {
            return Err(self.exceed(EXCEEDED_MEMORY));
        }
        if string {
            self.strings += 1;
            if self.limits.max_strings.is_some_and(|m| self.strings > m) {
                return Err(self.exceed(EXCEEDED_STRINGS));
            }
        }
        Ok(())
    }

    /// An object or array opens.
    fn enter<E: serde::de::Error>(&mut self) -> std::result::Result<(), E> {
        self.depth += 1;
        if self.limits.max_depth.is_some_and(|m| self.depth > m) {
            return Err(self.exceed(EXCEEDED_DEPTH));
        }
        Ok(())
    }

    /// The `count`th entry of an object (`max_object_entries`) or element of an array.
    fn count<E: serde::de::Error>(
        &mut self,
        count: u64,
        limit: Option<u64>,
        why: &'static str,
    ) -> std::result::Result<(), E> {
        if limit.is_some_and(|m| count > m) {
            return Err(self.exceed(why));
        }
        Ok(())
    }
}

/// Walks one JSON value, charging each token to the budget and keeping nothing.
struct Scan<'b>(&'b mut Budget);

impl<'de> serde::de::DeserializeSeed<'de> for Scan<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        self.0.charge(cost::NULL, false)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<(), E> {
        self.0.charge(cost::BOOL, false)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> std::result::Result<(), E> {
        self.0.charge(cost::NUMBER, false)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> std::result::Result<(), E> {
        self.0.charge(cost::NUMBER, false)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> std::result::Result<(), E> {
        self.0.charge(cost::NUMBER, false)
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<(), E> {
        let len = u64::try_from(s.len()).unwrap_or(u64::MAX);
        if self.0.limits.max_string_length.is_some_and(|m| len > m) {
            return Err(self.0.exceed(EXCEEDED_STRING_LENGTH));
        }
        self.0.charge(cost::STRING.saturating_add(len), true)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        self.0.enter()?;
        self.0.charge(cost::ARRAY, false)?;
        let limit = self.0.limits.max_array_elements;
        let mut elements: u64 = 0;
        while seq.next_element_seed(Scan(&mut *self.0))?.is_some() {
            elements += 1;
            self.0.count(elements, limit, EXCEEDED_ARRAY_ELEMENTS)?;
        }
        self.0.depth -= 1;
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        self.0.enter()?;
        self.0.charge(cost::OBJECT, false)?;
        let limit = self.0.limits.max_object_entries;
        let mut entries: u64 = 0;
        while map.next_key_seed(Scan(&mut *self.0))?.is_some() {
            entries += 1;
            self.0.count(entries, limit, EXCEEDED_OBJECT_ENTRIES)?;
            map.next_value_seed(Scan(&mut *self.0))?;
        }
        self.0.depth -= 1;
        Ok(())
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
    let query_map = parse_query(query)?;
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
            let media = media_type(content_type.as_deref().unwrap_or_default())
                .map_err(|e| Error::bad(e.to_string()))?;
            if media != MERGE_PATCH {
                return Err(Error::UnsupportedMediaType(format!(
                    "PATCH requires Content-Type of {MERGE_PATCH}, provided {media}"
                )));
            }
            let bytes = read_body(body, state.options.max_request_size).await?;
            (
                Operation::Patch,
                parse_body(&bytes, None, &state.options.json)?,
            )
        }
        _ => {
            let bytes = read_body(body, state.options.max_request_size).await?;
            (
                Operation::Update,
                parse_body(&bytes, content_type.as_deref(), &state.options.json)?,
            )
        }
    };
    Ok(IncomingRequest {
        operation,
        path: path.to_string(),
        data,
        client_token: client_token(headers),
        client_addr: addr,
        client_port: None,
        wrap_ttl: wrap_ttl(headers)?,
        content_type,
        audited_headers: audited_headers(&state.core.audit.audited_headers(), headers),
        // A standby learns which headers are audited from the stored settings only when it
        // serves the request (`core/standby.rs`): it gets every header, apart.
        standby_headers: if state.core.is_standby() {
            every_header(headers)
        } else {
            Vec::new()
        },
    })
}

/// Every header with its values in order, by lower-case name.
fn every_header(headers: &HeaderMap) -> Vec<(String, bool, Vec<String>)> {
    headers
        .keys()
        .map(|name| {
            let values = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            (name.as_str().to_owned(), false, values)
        })
        .collect()
}

/// The values of the headers audit entries show (`wanted`: lower-case names), in order.
fn audited_headers(
    wanted: &std::collections::BTreeMap<String, bool>,
    headers: &HeaderMap,
) -> Vec<(String, bool, Vec<String>)> {
    if wanted.is_empty() {
        return Vec::new();
    }
    wanted
        .iter()
        .filter_map(|(name, hmac)| {
            let values: Vec<String> = headers
                .get_all(name.as_str())
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            (!values.is_empty()).then(|| (name.clone(), *hmac, values))
        })
        .collect()
}

/// The only media type a PATCH body may have (JSON merge patch, RFC 7396).
const MERGE_PATCH: &str = "application/merge-patch+json";

/// The media type of a `Content-Type` value, lower-cased and without its parameters, or the
/// error Go's `mime.ParseMediaType` gives for it (Vault answers a PATCH with either). As in
/// Go, a lone token (`application`) is a media type too.
fn media_type(value: &str) -> std::result::Result<String, &'static str> {
    fn token(s: &str) -> (&str, &str) {
        let end = s
            .find(|c: char| {
                !c.is_ascii() || c.is_ascii_control() || c == ' ' || "()<>@,;:\\\"/[]?=".contains(c)
            })
            .unwrap_or(s.len());
        s.split_at(end)
    }
    let media = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let (major, rest) = token(&media);
    if major.is_empty() {
        return Err("mime: no media type");
    }
    if !rest.is_empty() {
        let Some(rest) = rest.strip_prefix('/') else {
            return Err("mime: expected slash after first token");
        };
        let (minor, rest) = token(rest);
        if minor.is_empty() {
            return Err("mime: expected token after slash");
        }
        if !rest.is_empty() {
            return Err("mime: unexpected content after media subtype");
        }
    }
    Ok(media)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert!(
            parse_body(b"", None, &JsonLimits::default())
                .unwrap()
                .is_empty()
        );
        assert!(
            parse_body(b"null", None, &JsonLimits::default())
                .unwrap()
                .is_empty()
        );
        assert!(
            parse_body(b"null\n", None, &JsonLimits::default())
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            parse_body(b"{\"a\":1}\n  ", Some("text/plain"), &JsonLimits::default()).unwrap()["a"],
            1
        );
        assert_eq!(
            parse_body(
                b"a=1&b=x%20y",
                Some("application/x-www-form-urlencoded"),
                &JsonLimits::default()
            )
            .unwrap()["b"],
            "x y"
        );
        assert_eq!(
            parse_body(
                b"{\"a\":1}",
                Some("application/x-www-form-urlencoded"),
                &JsonLimits::default()
            )
            .unwrap()["a"],
            1
        );
        assert_eq!(
            parse_body(b"{", None, &JsonLimits::default())
                .unwrap_err()
                .to_string(),
            "failed to decode JSON input: unexpected EOF"
        );
        assert!(parse_body(b"[1]", None, &JsonLimits::default()).is_err());
        assert!(parse_body(b"\xff", None, &JsonLimits::default()).is_err());
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

    #[test]
    fn form_bodies_are_bounded_by_the_memory_limit() {
        let form = Some("application/x-www-form-urlencoded");
        let limits = JsonLimits {
            max_memory: Some(3 * (2 * cost::STRING + 3)),
            ..JsonLimits::NONE
        };
        assert!(parse_body(b"a=1&b=2&c=3", form, &limits).is_ok());
        let err = parse_body(b"a=1&b=2&c=3&d=4", form, &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refused JSON input due to high complexity: exceeded maximum estimated memory limits"
        );
        let big = "a=1&".repeat(4 << 20);
        let err = parse_body(big.as_bytes(), form, &JsonLimits::default()).unwrap_err();
        assert!(err.to_string().starts_with("refused JSON input"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let text = format!(
                "{{\"a\":{}0{}}}",
                open.repeat(100_000),
                close.repeat(100_000)
            );
            for limits in [JsonLimits::default(), JsonLimits::NONE] {
                let err = parse_body(text.as_bytes(), None, &limits).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    "refused JSON input due to high complexity: JSON input exceeds allowed nesting depth"
                );
            }
        }
    }

    /// `n` nested arrays: `[[[...]]]`.
    fn nested(n: usize) -> String {
        format!("{}{}", "[".repeat(n), "]".repeat(n))
    }

    fn refusal(json: &str, limits: &JsonLimits) -> Option<String> {
        check_complexity(json.as_bytes(), limits)
            .err()
            .map(|e| e.to_string())
    }

    const DEPTH: &str =
        "refused JSON input due to high complexity: JSON input exceeds allowed nesting depth";
    const LENGTH: &str =
        "refused JSON input due to high complexity: JSON string value exceeds allowed length";
    const ENTRIES: &str =
        "refused JSON input due to high complexity: JSON object exceeds allowed entry count";
    const ELEMENTS: &str =
        "refused JSON input due to high complexity: JSON array exceeds allowed element count";

    #[test]
    fn nesting_depth_counts_the_outer_value_and_stops_at_the_decoders_cap() {
        let depth = |n| JsonLimits {
            max_depth: Some(n),
            ..JsonLimits::NONE
        };
        assert_eq!(refusal(&nested(3), &depth(3)), None);
        assert_eq!(refusal(&nested(4), &depth(3)).as_deref(), Some(DEPTH));
        assert_eq!(refusal("{\"a\":{\"b\":[0]}}", &depth(3)), None);
        assert_eq!(
            refusal("{\"a\":{\"b\":[[]]}}", &depth(3)).as_deref(),
            Some(DEPTH)
        );
        // Siblings do not add up.
        assert_eq!(refusal("[[[]],[[]],{\"a\":[]}]", &depth(3)), None);
        // serde_json's recursion limit: 127 levels decode, 128 do not, whatever the setting.
        let cap = usize::try_from(crate::config::listener::MAX_JSON_DEPTH_SUPPORTED).unwrap();
        for limits in [JsonLimits::default(), JsonLimits::NONE] {
            assert_eq!(refusal(&nested(cap), &limits), None);
            assert_eq!(refusal(&nested(cap + 1), &limits).as_deref(), Some(DEPTH));
        }
        let deep = format!("{{\"a\":{}}}", nested(cap - 1));
        assert!(serde_json::from_str::<Value>(&deep).is_ok());
        assert_eq!(
            parse_body(deep.as_bytes(), None, &JsonLimits::default()).unwrap()["a"],
            serde_json::from_str::<Value>(&nested(cap - 1)).unwrap()
        );
    }

    #[test]
    fn string_length_is_in_decoded_bytes_for_keys_and_values() {
        let length = JsonLimits {
            max_string_length: Some(4),
            ..JsonLimits::NONE
        };
        assert_eq!(refusal("{\"abcd\":\"wxyz\"}", &length), None);
        assert_eq!(refusal("{\"abcde\":1}", &length).as_deref(), Some(LENGTH));
        assert_eq!(
            refusal("{\"a\":[\"vwxyz\"]}", &length).as_deref(),
            Some(LENGTH)
        );
        // Escapes count once decoded: `\u00e9` is two bytes, `\n` one.
        assert_eq!(refusal("{\"a\":\"\\u00e9\\u00e9\"}", &length), None);
        assert_eq!(refusal("{\"a\":\"\\n\\n\\n\\n\"}", &length), None);
        assert_eq!(
            refusal("{\"a\":\"\\u00e9\\u00e9x\"}", &length).as_deref(),
            Some(LENGTH)
        );
        assert_eq!(refusal("{\"a\":\"éé\"}", &length), None);
        assert_eq!(refusal("{\"a\":\"ééx\"}", &length).as_deref(), Some(LENGTH));
    }

    #[test]
    fn entry_and_element_counts_are_per_container() {
        let counts = JsonLimits {
            max_object_entries: Some(2),
            max_array_elements: Some(3),
            ..JsonLimits::NONE
        };
        assert_eq!(
            refusal("{\"a\":[1,2,3],\"b\":{\"c\":[4,5,6],\"d\":0}}", &counts),
            None
        );
        assert_eq!(
            refusal("{\"a\":1,\"b\":2,\"c\":3}", &counts).as_deref(),
            Some(ENTRIES)
        );
        assert_eq!(
            refusal("{\"a\":{\"b\":1,\"c\":2,\"d\":3}}", &counts).as_deref(),
            Some(ENTRIES)
        );
        assert_eq!(
            refusal("{\"a\":[1,2,3,4]}", &counts).as_deref(),
            Some(ELEMENTS)
        );
        // Nested containers are elements too.
        assert_eq!(
            refusal("{\"a\":[[],{},\"x\",null]}", &counts).as_deref(),
            Some(ELEMENTS)
        );
        // Repeated keys each count, as they do in Vault's token scan.
        assert_eq!(
            refusal("{\"a\":1,\"a\":2,\"a\":3}", &counts).as_deref(),
            Some(ENTRIES)
        );
    }

    #[test]
    fn vaults_defaults_at_and_over() {
        let d = JsonLimits::default();
        let array = |n: usize| format!("{{\"a\":[{}0]}}", "0,".repeat(n - 1));
        assert_eq!(refusal(&array(10_000), &d), None);
        assert_eq!(refusal(&array(10_001), &d).as_deref(), Some(ELEMENTS));
        let string = |n: usize| format!("{{\"a\":\"{}\"}}", "x".repeat(n));
        assert_eq!(refusal(&string(1 << 20), &d), None);
        assert_eq!(refusal(&string((1 << 20) + 1), &d).as_deref(), Some(LENGTH));
        // Objects: OpenBao's 1000 strings come first at the defaults, so count them with
        // numeric values and no string limit.
        let object = |n: usize| {
            let entries: Vec<String> = (0..n).map(|i| format!("\"{i}\":0")).collect();
            format!("{{{}}}", entries.join(","))
        };
        let no_strings = JsonLimits {
            max_strings: None,
            ..d
        };
        assert_eq!(refusal(&object(10_000), &no_strings), None);
        assert_eq!(
            refusal(&object(10_001), &no_strings).as_deref(),
            Some(ENTRIES)
        );
    }

    #[test]
    fn a_31_mib_array_is_refused() {
        let n = (31 << 20) / 2 - 8;
        let text = format!("{{\"a\":[{}0]}}", "0,".repeat(n));
        let err = parse_body(text.as_bytes(), None, &JsonLimits::default()).unwrap_err();
        assert_eq!(err.to_string(), ELEMENTS);
        let memory_only = JsonLimits {
            max_memory: JsonLimits::default().max_memory,
            ..JsonLimits::NONE
        };
        assert_eq!(
            refusal(&text, &memory_only).as_deref(),
            Some(
                "refused JSON input due to high complexity: exceeded maximum estimated memory limits"
            )
        );
        assert!(check_complexity(text.as_bytes(), &JsonLimits::NONE).is_ok());
    }

    /// OpenBao's estimate for a value, and its number of strings (keys included).
    fn openbao_cost(v: &Value) -> (u64, u64) {
        let len = |s: &str| u64::try_from(s.len()).unwrap();
        match v {
            Value::Null => (cost::NULL, 0),
            Value::Bool(_) => (cost::BOOL, 0),
            Value::Number(_) => (cost::NUMBER, 0),
            Value::String(s) => (cost::STRING + len(s), 1),
            Value::Array(a) => a
                .iter()
                .map(openbao_cost)
                .fold((cost::ARRAY, 0), |(m, s), (m2, s2)| (m + m2, s + s2)),
            Value::Object(o) => o.iter().fold((cost::OBJECT, 0), |(m, s), (k, v)| {
                let (m2, s2) = openbao_cost(v);
                (m + cost::STRING + len(k) + m2, s + 1 + s2)
            }),
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z\"\\\\é\\n]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Vault's measures of a value: nesting depth, longest string (keys included), most keys in
    /// one object, most elements in one array.
    fn vault_measures(v: &Value) -> [u64; 4] {
        let len = |s: &str| u64::try_from(s.len()).unwrap();
        let max = |a: [u64; 4], b: [u64; 4]| std::array::from_fn(|i| a[i].max(b[i]));
        match v {
            Value::String(s) => [0, len(s), 0, 0],
            Value::Array(a) => {
                let inner = a.iter().map(vault_measures).fold([0; 4], max);
                let n = u64::try_from(a.len()).unwrap();
                [inner[0] + 1, inner[1], inner[2], inner[3].max(n)]
            }
            Value::Object(o) => {
                let inner = o
                    .iter()
                    .map(|(k, v)| max([0, len(k), 0, 0], vault_measures(v)))
                    .fold([0; 4], max);
                let n = u64::try_from(o.len()).unwrap();
                [inner[0] + 1, inner[1], inner[2].max(n), inner[3]]
            }
            _ => [0; 4],
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Arbitrary bytes under any content type: a result, never a panic.
        #[test]
        fn arbitrary_bodies_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            form: bool,
        ) {
            let ct = form.then_some("application/x-www-form-urlencoded");
            let _ = parse_body(&bytes, ct, &JsonLimits::default());
        }

        /// JSON-shaped text, valid or not: a result, never a panic.
        #[test]
        fn json_ish_bodies_never_panic(text in "[\\[\\]{}\",:0-9a-z\\\\ .eE+-]{0,200}") {
            let _ = parse_body(text.as_bytes(), None, &JsonLimits::default());
            let tight = JsonLimits {
                max_memory: Some(64),
                max_strings: Some(2),
                max_depth: Some(3),
                max_string_length: Some(4),
                max_object_entries: Some(2),
                max_array_elements: Some(2),
            };
            let _ = parse_body(text.as_bytes(), None, &tight);
        }

        /// Form bodies decode, or are refused only for text that is not UTF-8 once decoded.
        #[test]
        fn form_bodies_decode(text in "[a-z0-9=&%+]{0,100}") {
            let form = Some("application/x-www-form-urlencoded");
            let parsed = parse_body(text.as_bytes(), form, &JsonLimits::default());
            let utf8 = text
                .split(['&', '='])
                .all(|part| percent_encoding::percent_decode_str(part).decode_utf8().is_ok());
            proptest::prop_assert_eq!(parsed.is_ok(), utf8);
        }

        /// The scan charges exactly OpenBao's estimate: a document passes at its own cost and
        /// string count, and is refused one below either.
        #[test]
        fn complexity_limits_are_exact(v in json_value(), pretty: bool) {
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            let (memory, strings) = openbao_cost(&v);
            let at = JsonLimits { max_memory: Some(memory), max_strings: Some(strings), ..JsonLimits::NONE };
            proptest::prop_assert!(check_complexity(text.as_bytes(), &at).is_ok());
            let less_memory = JsonLimits { max_memory: Some(memory - 1), ..JsonLimits::NONE };
            proptest::prop_assert_eq!(
                check_complexity(text.as_bytes(), &less_memory).unwrap_err().to_string(),
                "refused JSON input due to high complexity: exceeded maximum estimated memory limits"
            );
            if strings > 0 {
                let fewer = JsonLimits { max_strings: Some(strings - 1), ..JsonLimits::NONE };
                proptest::prop_assert_eq!(
                    check_complexity(text.as_bytes(), &fewer).unwrap_err().to_string(),
                    "refused JSON input due to high complexity: exceeded maximum number of strings"
                );
            }
        }

        /// Vault's four limits are exact too: a document passes at its own measures and is
        /// refused one below any of them.
        #[test]
        fn vault_limits_are_exact(v in json_value(), pretty: bool) {
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            let [depth, length, entries, elements] = vault_measures(&v);
            let at = JsonLimits {
                max_depth: Some(depth),
                max_string_length: Some(length),
                max_object_entries: Some(entries),
                max_array_elements: Some(elements),
                ..JsonLimits::NONE
            };
            proptest::prop_assert_eq!(refusal(&text, &at), None);
            let cases = [
                (depth, JsonLimits { max_depth: depth.checked_sub(1), ..at }, DEPTH),
                (length, JsonLimits { max_string_length: length.checked_sub(1), ..at }, LENGTH),
                (entries, JsonLimits { max_object_entries: entries.checked_sub(1), ..at }, ENTRIES),
                (elements, JsonLimits { max_array_elements: elements.checked_sub(1), ..at }, ELEMENTS),
            ];
            for (measure, less, why) in cases {
                if measure > 0 {
                    proptest::prop_assert_eq!(refusal(&text, &less), Some(why.to_owned()));
                }
            }
        }
    }
}
