//! Vault's response envelope and error bodies.

use axum::http::{Method, StatusCode};
use axum::response::Response as HttpResponse;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{json_response, no_content};
use crate::core::pipeline::Outcome;
use crate::error::Error;
use crate::logical::Operation;

#[derive(Serialize)]
struct Envelope<'a> {
    request_id: &'a str,
    lease_id: &'a str,
    renewable: bool,
    lease_duration: i64,
    data: Option<&'a Map<String, Value>>,
    wrap_info: Option<&'a Value>,
    warnings: Option<&'a [String]>,
    auth: Option<&'a Value>,
    mount_type: &'a str,
}

/// `{"errors":[...]}` with the error's status.
pub fn error_response(e: &Error) -> HttpResponse {
    let body = serde_json::json!({ "errors": e.messages() }).to_string();
    json_response(e.status(), body)
}

fn not_found() -> HttpResponse {
    error_response(&Error::NotFound)
}

/// Renders a successful pipeline outcome.
pub fn success(out: Outcome, _method: &Method) -> HttpResponse {
    let read_like = matches!(out.operation, Operation::Read | Operation::List);
    let Some(resp) = out.response else {
        return if read_like { not_found() } else { no_content() };
    };
    if let Some(raw) = resp.raw_body {
        let status = resp
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        return json_response(status, raw);
    }
    let empty_list = out.operation == Operation::List
        && resp.warnings.is_empty()
        && resp.data.as_ref().is_none_or(|d| {
            d.get("keys")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
                && d.len() <= 1
        });
    if empty_list {
        return not_found();
    }
    let is_empty = resp.data.is_none()
        && out.auth.is_none()
        && resp.warnings.is_empty()
        && resp.status.is_none();
    if is_empty {
        return if read_like { not_found() } else { no_content() };
    }
    let envelope = Envelope {
        request_id: &out.request_id,
        lease_id: "",
        renewable: false,
        lease_duration: resp.lease_duration,
        data: resp.data.as_ref(),
        wrap_info: None,
        warnings: (!resp.warnings.is_empty()).then_some(resp.warnings.as_slice()),
        auth: out.auth.as_ref(),
        mount_type: &out.mount_type,
    };
    let body = if resp.inject_top_level {
        let mut top = resp.data.clone().unwrap_or_default();
        if let Ok(Value::Object(env)) = serde_json::to_value(&envelope) {
            top.extend(env);
        }
        Value::Object(top).to_string()
    } else {
        serde_json::to_string(&envelope).unwrap_or_else(|_| "{}".into())
    };
    let status = resp
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    json_response(status, body)
}
