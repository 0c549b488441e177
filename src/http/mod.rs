//! The HTTP layer: transport only. Every request lands in one handler (`dispatch`), which
//! normalises the path itself (so `//` and trailing slashes never cause a redirect or a miss),
//! serves the sealed-safe `sys/` endpoints directly and hands everything else to the core
//! pipeline as an `IncomingRequest`.

mod decode;
mod envelope;
mod sys_raw;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Request as HttpRequest, StatusCode};
use axum::response::Response as HttpResponse;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::core::Core;
use crate::error::Error;

pub use envelope::error_response;

/// Default maximum request body: 32 MiB, as Vault.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

/// Settings of one listener's router. A bare `usize` is the body limit with the defaults.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    /// Body size limit in bytes.
    pub max_request_size: usize,
    /// Serve `sys/rekey/*` without a token (Vault's behaviour; off by default).
    pub unauthed_rekey: bool,
    /// Serve `sys/generate-root/*` without a token (Vault's behaviour; off by default).
    pub unauthed_generate_root: bool,
}

impl From<usize> for HttpOptions {
    fn from(max_request_size: usize) -> Self {
        HttpOptions {
            max_request_size,
            unauthed_rekey: false,
            unauthed_generate_root: false,
        }
    }
}

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    /// The core.
    pub core: Arc<Core>,
    /// Body size limit in bytes.
    pub max_request_size: usize,
    /// Which operator endpoints this listener serves without a token.
    pub options: HttpOptions,
}

/// The router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(core: Arc<Core>, options: impl Into<HttpOptions>) -> Router {
    let options = options.into();
    let max_request_size = options.max_request_size;
    Router::new()
        .fallback(dispatch)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            error_response(&Error::internal("request handler panicked"))
        }))
        .with_state(AppState {
            core,
            max_request_size,
            options,
        })
}

/// Decoded path: `/v1//sys/mounts/` → `sys/mounts`.
fn normalize_path(raw: &str) -> Option<String> {
    let decoded = decode::percent_decode(raw)?;
    let rest = decoded.trim_start_matches('/').strip_prefix("v1")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(
        rest.split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

async fn dispatch(State(state): State<AppState>, req: HttpRequest<Body>) -> HttpResponse {
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (parts, body) = req.into_parts();
    let Some(path) = normalize_path(parts.uri.path()) else {
        return error_response(&Error::NotFound);
    };
    // Only init and unseal read their body here; everything else streams it to the decoder.
    let (raw_body, body) = if sys_raw::wants_body(&state, &path) {
        match decode::read_body(body, state.max_request_size).await {
            Ok(b) => (b, Body::empty()),
            Err(e) => return error_response(&e),
        }
    } else {
        (Vec::new(), body)
    };
    if let Some(resp) = sys_raw::handle(
        &state,
        &parts.method,
        &path,
        parts.uri.query(),
        &parts.headers,
        &raw_body,
    )
    .await
    {
        return resp;
    }
    match decode::incoming(
        &state,
        parts.method.clone(),
        &path,
        parts.uri.query(),
        &parts.headers,
        body,
        addr,
    )
    .await
    {
        Err(e) => error_response(&e),
        Ok(inc) => match state.core.handle_request(inc).await {
            Ok(outcome) => envelope::success(&outcome),
            Err(e) => {
                if e.is_internal() {
                    tracing::error!(error = %e, "request failed");
                }
                error_response(&e)
            }
        },
    }
}

/// A JSON response with Vault's exact headers.
pub(crate) fn json_response(status: StatusCode, body: String) -> HttpResponse {
    let mut resp = HttpResponse::new(Body::from(body));
    *resp.status_mut() = status;
    let h: &mut HeaderMap = resp.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    h.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// An empty 204.
pub(crate) fn no_content() -> HttpResponse {
    let mut resp = HttpResponse::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// True for methods Vault knows.
pub(crate) fn known_method(m: &Method) -> bool {
    matches!(
        m.as_str(),
        "GET" | "HEAD" | "PUT" | "POST" | "DELETE" | "PATCH" | "LIST"
    )
}

#[cfg(test)]
mod tests {
    use super::normalize_path;

    #[test]
    fn paths_are_normalised() {
        assert_eq!(
            normalize_path("/v1/sys/mounts").as_deref(),
            Some("sys/mounts")
        );
        assert_eq!(
            normalize_path("/v1//sys//mounts/").as_deref(),
            Some("sys/mounts")
        );
        assert_eq!(
            normalize_path("//v1/secret/data/a%20b").as_deref(),
            Some("secret/data/a b")
        );
        assert_eq!(normalize_path("/v2/sys"), None);
        assert_eq!(normalize_path("/v1x/sys"), None);
        assert_eq!(normalize_path("/v1").as_deref(), Some(""));
    }
}
