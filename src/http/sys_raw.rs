//! The `sys/` endpoints that answer outside the pipeline and while sealed: health, seal-status,
//! leader, init and unseal. They return raw JSON, not the envelope.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response as HttpResponse;
use serde_json::{Value, json};

use super::decode::parse_query;
use super::{AppState, json_response, no_content};
use crate::core::operator::{self, Family};
use crate::error::{Error, Result};
use crate::logical::Operation;

/// Serves `path` if it is a raw sys endpoint; `None` otherwise.
pub async fn handle(
    state: &AppState,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    client_addr: Option<std::net::IpAddr>,
) -> Option<HttpResponse> {
    if path == "sys/metrics" && state.options.unauthenticated_metrics {
        return Some(metrics_unauthenticated(state, method, query, headers).await);
    }
    if let Some(rel) = path.strip_prefix("sys/")
        && let Some(family) = operator::family(rel)
        && unauthed(state, family)
    {
        let result = operator_unauthed(state, method, rel, body, client_addr).await;
        return Some(result.unwrap_or_else(|e| super::error_response(&e)));
    }
    let get_like = *method == Method::GET || *method == Method::HEAD;
    let result = match (path, get_like) {
        ("sys/health", true) => health(state, method, query).await,
        ("sys/health", false) => Err(Error::MethodNotAllowed),
        ("sys/seal-status", _) => state.core.seal_status().await.map(ok),
        ("sys/leader", _) => leader(state),
        ("sys/init", true) => state
            .core
            .is_initialized()
            .await
            .map(|i| ok(json!({ "initialized": i }))),
        ("sys/init", false) => init(state, body).await,
        ("sys/unseal", false) => unseal(state, body).await,
        ("sys/unseal", true) => Err(Error::MethodNotAllowed),
        // Sealing a sealed server is a no-op, as in Vault; a standby refuses, as Vault's does;
        // otherwise it goes through the pipeline.
        ("sys/seal", false) if state.core.is_standby() => Err(Error::Coded(
            500,
            "vault cannot seal when in standby mode; please restart instead".to_owned(),
        )),
        ("sys/seal", false) if state.core.is_sealed() => return Some(no_content()),
        _ => return None,
    };
    Some(result.unwrap_or_else(|e| super::error_response(&e)))
}

/// True when `path` is served here and needs the request body.
pub fn wants_body(state: &AppState, path: &str) -> bool {
    matches!(path, "sys/init" | "sys/unseal")
        || path
            .strip_prefix("sys/")
            .and_then(operator::family)
            .is_some_and(|f| unauthed(state, f))
}

/// Whether this listener serves `family` without a token (listener setting
/// `disable_unauthed_*_endpoints = false`); otherwise they are sudo paths of the pipeline.
fn unauthed(state: &AppState, family: Family) -> bool {
    match family {
        Family::Rekey => state.options.unauthed_rekey,
        Family::GenerateRoot => state.options.unauthed_generate_root,
    }
}

/// Vault's unauthenticated `sys/rekey/*` and `sys/generate-root/*`.
async fn operator_unauthed(
    state: &AppState,
    method: &Method,
    rel: &str,
    body: &[u8],
    client_addr: Option<std::net::IpAddr>,
) -> Result<HttpResponse> {
    let op = match *method {
        Method::GET => Operation::Read,
        Method::PUT | Method::POST => Operation::Update,
        Method::DELETE => Operation::Delete,
        _ => return Err(Error::MethodNotAllowed),
    };
    let fields = match body_json(state, body)? {
        Value::Object(m) => m,
        _ => {
            return Err(Error::bad(
                "failed to decode JSON input: expected an object",
            ));
        }
    };
    // Audited as Vault audits these endpoints (`handleAuditNonLogical`).
    let run = state.core.operator_raw(op, rel, &fields);
    let path = format!("sys/{rel}");
    match state
        .core
        .observed_operator(op, &path, &fields, client_addr, run)
        .await?
    {
        Some(v) => Ok(ok(v)),
        None => Ok(no_content()),
    }
}

/// `sys/metrics` on a listener with `unauthenticated_metrics_access`: no token, ACL or audit;
/// works while sealed (OpenBao's `handleMetricsUnauthenticated`).
async fn metrics_unauthenticated(
    state: &AppState,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
) -> HttpResponse {
    if *method != Method::GET {
        return super::error_response(&Error::MethodNotAllowed);
    }
    let format = match parse_query(query) {
        Ok(q) => match q.get("format") {
            Some(Value::String(f)) => f.clone(),
            Some(Value::Array(all)) => all
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        },
        Err(e) => return super::error_response(&e),
    };
    let format = if format.is_empty() {
        crate::telemetry::format_from_accept(accept(headers)).to_owned()
    } else {
        format
    };
    let answer = state.core.metrics_response(&format).await;
    let mut resp = HttpResponse::new(axum::body::Body::from(answer.body));
    *resp.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(answer.content_type),
    );
    resp
}

/// The `Accept` header values, in order.
pub(super) fn accept(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

fn ok(v: Value) -> HttpResponse {
    json_response(StatusCode::OK, v.to_string())
}

/// The body as JSON, after the listener's JSON limits (these endpoints need no token, so an
/// oversized document is refused before it is built).
fn body_json(state: &AppState, body: &[u8]) -> Result<Value> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::bad("failed to decode JSON input: invalid UTF-8"))?;
    if text.trim().is_empty() || text.trim() == "null" {
        return Ok(json!({}));
    }
    super::decode::check_complexity(text.trim().as_bytes(), &state.options.json)?;
    serde_json::from_str(text).map_err(|e| Error::bad(format!("failed to decode JSON input: {e}")))
}

fn int_field(v: &Value, name: &str) -> Result<i64> {
    match v.get(name).unwrap_or(&Value::Null) {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| Error::bad(format!("invalid {name}"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| Error::bad(format!("invalid {name}"))),
        _ => Err(Error::bad(format!("invalid {name}"))),
    }
}

async fn init(state: &AppState, body: &[u8]) -> Result<HttpResponse> {
    let v = body_json(state, body)?;
    if v.get("recovery_shares")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        > 0
        || v.get("pgp_keys")
            .is_some_and(|p| !p.is_null() && *p != json!([]))
    {
        return Err(Error::bad(
            "PGP-encrypted keys and recovery keys are not supported by Coffer",
        ));
    }
    let result = state
        .core
        .init(
            int_field(&v, "secret_shares")?,
            int_field(&v, "secret_threshold")?,
        )
        .await?;
    Ok(ok(result.to_json()))
}

async fn unseal(state: &AppState, body: &[u8]) -> Result<HttpResponse> {
    let v = body_json(state, body)?;
    let reset = match v.get("reset").unwrap_or(&Value::Null) {
        Value::Bool(b) => *b,
        Value::String(s) => s == "true",
        _ => false,
    };
    state
        .core
        .unseal_part(v.get("key").and_then(Value::as_str), reset)
        .await
        .map(ok)
}

/// `sys/leader`: Vault's fields; with HA, the active node's address as this node knows it.
fn leader(state: &AppState) -> Result<HttpResponse> {
    let Some(ha) = state.core.ha() else {
        return Ok(ok(json!({
            "ha_enabled": false,
            "is_self": false,
            "active_time": "0001-01-01T00:00:00Z",
            "leader_address": "",
            "leader_cluster_address": "",
            "performance_standby": false,
            "performance_standby_last_remote_wal": 0,
        })));
    };
    if state.core.reported_sealed() {
        return Err(Error::Sealed);
    }
    let since = ha.active_since();
    let is_self = since.is_some();
    let active_time = since.map_or_else(
        || "0001-01-01T00:00:00Z".to_owned(),
        crate::clock::rfc3339_nanos,
    );
    let (address, cluster) = if is_self {
        (
            ha.settings().api_addr.clone(),
            ha.settings().cluster_addr.clone(),
        )
    } else {
        (ha.leader_address().unwrap_or_default(), String::new())
    };
    Ok(ok(json!({
        "ha_enabled": true,
        "is_self": is_self,
        "active_time": active_time,
        "leader_address": address,
        "leader_cluster_address": cluster,
        "performance_standby": false,
        "performance_standby_last_remote_wal": 0,
    })))
}

/// Go's `strconv.ParseBool` of a query flag (absent = false).
fn query_flag(q: &serde_json::Map<String, Value>, name: &str) -> Result<bool> {
    match q.get(name).and_then(Value::as_str) {
        None => Ok(false),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(other) => Err(Error::bad(format!(
            "bad value for {name} parameter: strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

/// The status-code parameters of `sys/health` (Vault's and OpenBao's).
const HEALTH_CODES: &[&str] = &[
    "activecode",
    "standbycode",
    "drsecondarycode",
    "haunhealthycode",
    "performancestandbycode",
    "sealedcode",
    "uninitcode",
    "removedcode",
];

async fn health(state: &AppState, method: &Method, query: Option<&str>) -> Result<HttpResponse> {
    let q = parse_query(query)?;
    let (body, mut which) = state.core.health().await?;
    if which == "standbycode" && query_flag(&q, "standbyok")? {
        which = "activecode";
    }
    query_flag(&q, "perfstandbyok")?;
    let default = match which {
        "uninitcode" => 501,
        "sealedcode" => 503,
        "standbycode" => 429,
        _ => 200,
    };
    // Every code parameter must be an integer (Vault's `fetchStatusCode`: 400 with no error
    // text otherwise), whichever one applies now.
    let mut codes = std::collections::BTreeMap::new();
    for name in HEALTH_CODES {
        if let Some(v) = q.get(*name) {
            let Some(code) = v.as_str().and_then(|v| v.parse::<i64>().ok()) else {
                return Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    r#"{"errors":[]}"#.into(),
                ));
            };
            codes.insert(*name, code);
        }
    }
    let code = codes.get(which).copied().unwrap_or(default);
    // Vault's server drops the connection for a code outside 100-999 (Go's WriteHeader
    // panics; a 1xx is no final status); answering 200 instead would call a sealed node
    // healthy.
    let Some(status) = u16::try_from(code)
        .ok()
        .filter(|c| *c >= 200)
        .and_then(|c| StatusCode::from_u16(c).ok())
    else {
        return Err(Error::bad(format!(
            "{which}: {code} is not a final HTTP status code (200-999)"
        )));
    };
    if *method == Method::HEAD {
        let mut r = json_response(status, String::new());
        *r.body_mut() = axum::body::Body::empty();
        return Ok(r);
    }
    Ok(json_response(status, body.to_string()))
}
