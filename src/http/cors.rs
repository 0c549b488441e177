//! Cross-origin requests (Vault's CORS wrapper, around every route): with CORS on and an
//! `Origin` header, a request from an origin not allowed gets 403 `origin not allowed`; a
//! preflight (`OPTIONS`) for one of Vault's methods is answered here with the allowed methods,
//! headers and a 300 s max age (any other method: a bare 405); every other answer carries
//! `Access-Control-Allow-Origin` and `Vary: Origin` (and `Access-Control-Allow-Credentials`).
//! Without CORS or without `Origin` (the CLI, hvac, curl) nothing changes.

use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response as HttpResponse;

use crate::core::Core;
use crate::error::Error;

use super::{error_response, no_content};

/// The methods a preflight may ask for (Vault's list and order).
const METHODS: [&str; 7] = ["DELETE", "GET", "OPTIONS", "POST", "PUT", "LIST", "SCAN"];

/// What CORS makes of a request.
pub(super) enum Cors {
    /// Not a cross-origin request here: serve it as is.
    Pass,
    /// Answered already (refused, or a preflight).
    Answer(HttpResponse),
    /// Serve it, then add these headers to the answer.
    Decorate(HeaderMap),
}

/// Checks `method` and `headers` against the core's CORS settings.
pub(super) fn check(core: &Core, method: &Method, headers: &HeaderMap) -> Cors {
    let config = core.cors();
    if !config.enabled {
        return Cors::Pass;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Cors::Pass;
    };
    let origin_text = origin.to_str().unwrap_or_default();
    if origin_text.is_empty() {
        return Cors::Pass;
    }
    if !config.allows(origin_text) {
        return Cors::Answer(error_response(&Error::Coded(
            403,
            "origin not allowed".to_owned(),
        )));
    }
    let preflight = method == Method::OPTIONS;
    if preflight {
        let asked = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| m.to_str().ok())
            .unwrap_or_default();
        if !METHODS.contains(&asked) {
            let mut resp = no_content();
            *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            return Cors::Answer(resp);
        }
    }
    let mut add = HeaderMap::new();
    add.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    add.insert(header::VARY, HeaderValue::from_static("Origin"));
    if config.allow_credentials {
        add.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if !preflight {
        return Cors::Decorate(add);
    }
    add.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("DELETE,GET,OPTIONS,POST,PUT,LIST,SCAN"),
    );
    if let Ok(v) = HeaderValue::from_str(&config.allowed_headers.join(",")) {
        add.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    add.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("300"),
    );
    let mut resp = no_content();
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().extend(add);
    Cors::Answer(resp)
}
