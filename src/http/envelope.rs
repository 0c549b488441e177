//! Rendered outcomes and errors as HTTP responses (the JSON itself is built in `core::render`).

use axum::http::StatusCode;
use axum::response::Response as HttpResponse;

use super::{json_response, no_content};
use crate::core::pipeline::Outcome;
use crate::core::render::{Rendered, render, render_error};
use crate::error::Error;

fn to_http(r: Rendered) -> HttpResponse {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    match r.body {
        None => no_content(),
        Some(body) => json_response(status, body),
    }
}

/// `{"errors":[...]}` with the error's status.
pub fn error_response(e: &Error) -> HttpResponse {
    to_http(render_error(e))
}

/// Renders a successful pipeline outcome.
pub fn success(out: &Outcome) -> HttpResponse {
    if let Some(r) = out.response.as_ref()
        && let Some(body) = r.stream.as_ref().and_then(crate::logical::Streamed::take)
    {
        let mut resp = HttpResponse::new(body);
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(
                r.content_type.unwrap_or("text/plain; charset=utf-8"),
            ),
        );
        return resp;
    }
    let mut resp = to_http(render(out));
    if let Some(ct) = out.response.as_ref().and_then(|r| r.content_type) {
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(ct),
        );
    }
    resp
}
