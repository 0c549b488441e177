//! Turning a pipeline outcome into Vault's wire body. It lives in the core, not the HTTP layer,
//! because response wrapping must store the response exactly as it would have been served.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::pipeline::Outcome;
use crate::error::Error;
use crate::logical::Operation;

/// A status and an optional JSON body (`None` for 204).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// HTTP status.
    pub status: u16,
    /// JSON text.
    pub body: Option<String>,
}

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

/// The body of an error: `{"errors":[...]}` with the error's status.
pub fn render_error(e: &Error) -> Rendered {
    Rendered {
        status: e.status().as_u16(),
        body: Some(json!({ "errors": e.messages() }).to_string()),
    }
}

/// A list without keys (and nothing else): Vault's 404.
fn empty_list(out: &Outcome, resp: &crate::logical::Response) -> bool {
    out.operation == Operation::List
        && resp.warnings.is_empty()
        && resp.data.as_ref().is_none_or(|d| {
            d.get("keys")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
                && d.len() <= 1
        })
}

/// The status [`render`] gives `out`, without building the body (for observers).
pub fn render_status(out: &Outcome) -> u16 {
    let empty = if matches!(out.operation, Operation::Read | Operation::List) {
        404
    } else {
        204
    };
    let Some(resp) = &out.response else {
        return empty;
    };
    if resp.raw_body.is_some() {
        return resp.status.unwrap_or(200);
    }
    if resp.wrap_info.is_some() {
        return 200;
    }
    if empty_list(out, resp) {
        return 404;
    }
    if resp.data.is_none()
        && out.auth.is_none()
        && resp.warnings.is_empty()
        && resp.status.is_none()
    {
        return empty;
    }
    resp.status.unwrap_or(200)
}

/// The wire form of a successful outcome.
pub fn render(out: &Outcome) -> Rendered {
    let read_like = matches!(out.operation, Operation::Read | Operation::List);
    let empty = || {
        if read_like {
            render_error(&Error::NotFound)
        } else {
            Rendered {
                status: 204,
                body: None,
            }
        }
    };
    let Some(resp) = &out.response else {
        return empty();
    };
    if let Some(raw) = &resp.raw_body {
        return Rendered {
            status: resp.status.unwrap_or(200),
            body: Some(raw.clone()),
        };
    }
    if let Some(wrap_info) = &resp.wrap_info {
        let env = Envelope {
            request_id: "",
            lease_id: "",
            renewable: false,
            lease_duration: 0,
            data: None,
            wrap_info: Some(wrap_info),
            warnings: (!resp.warnings.is_empty()).then_some(resp.warnings.as_slice()),
            auth: None,
            mount_type: "",
        };
        return Rendered {
            status: 200,
            body: serde_json::to_string(&env).ok(),
        };
    }
    if empty_list(out, resp) {
        return render_error(&Error::NotFound);
    }
    if resp.data.is_none()
        && out.auth.is_none()
        && resp.warnings.is_empty()
        && resp.status.is_none()
    {
        return empty();
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
    Rendered {
        status: resp.status.unwrap_or(200),
        body: Some(body),
    }
}
