//! The HTTP layer: transport only. Connections are served by `conn` (accept loop and
//! connection timeouts). Every request lands in one handler (`dispatch`), which normalises the
//! path itself (so `//` and trailing slashes never cause a redirect or a miss; `.` and `..`
//! segments are answered as OpenBao answers them),
//! serves the sealed-safe `sys/` endpoints directly and hands everything else to the core
//! pipeline as an `IncomingRequest`.

mod conn;
mod cors;
mod decode;
mod envelope;
mod forward;
mod quota;
mod sys_raw;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Request as HttpRequest, StatusCode};
use axum::response::Response as HttpResponse;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{HttpTimeouts, JsonLimits, ListenerConfig};
use crate::core::Core;
use crate::core::pipeline::RequestFacts;
use crate::error::Error;

pub use conn::{raise_open_files_limit, serve as serve_connections};
pub use envelope::error_response;

/// Default maximum request body: 32 MiB, as Vault.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

/// The HTTP settings of one listener: body size, JSON limits, connection timeouts and which
/// operator endpoints it serves without a token.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// Largest request body in bytes.
    pub max_request_size: usize,
    /// Complexity limits on JSON bodies.
    pub json: JsonLimits,
    /// Connection timeouts.
    pub timeouts: HttpTimeouts,
    /// Serve `sys/rekey/*` without a token (Vault's behaviour; off by default, as in OpenBao).
    pub unauthed_rekey: bool,
    /// Serve `sys/generate-root/*` without a token (Vault's behaviour; off by default).
    pub unauthed_generate_root: bool,
    /// Serve `sys/metrics` without a token, ACL or audit (`telemetry {
    /// unauthenticated_metrics_access = true }`; on for the dev listener, as in Vault).
    pub unauthenticated_metrics: bool,
    /// OpenBao's per-listener `disallow_metrics`, `metrics_only` and `metrics_path`.
    pub metrics_listener: MetricsListener,
}

/// How a listener treats the metrics endpoint beyond authentication (OpenBao's listener
/// `telemetry` keys).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricsListener {
    /// `sys/metrics` answers 403 `metrics endpoint is disabled for this listener`.
    pub disallow: bool,
    /// Every other path answers 404 `this listener only serves the metrics endpoint`.
    pub only: bool,
    /// With `only`: the path (from `/`) that serves the metrics instead of `/v1/sys/metrics`.
    pub path: Option<Arc<str>>,
}

impl Default for HttpOptions {
    /// Vault's and OpenBao's defaults, as used by `-dev`.
    fn default() -> Self {
        HttpOptions {
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            json: JsonLimits::default(),
            timeouts: HttpTimeouts::default(),
            unauthed_rekey: false,
            unauthed_generate_root: false,
            unauthenticated_metrics: true,
            metrics_listener: MetricsListener::default(),
        }
    }
}

impl From<&ListenerConfig> for HttpOptions {
    fn from(l: &ListenerConfig) -> Self {
        HttpOptions {
            max_request_size: l.max_request_size,
            json: l.json,
            timeouts: l.timeouts,
            unauthed_rekey: !l.disable_unauthed_rekey_endpoints,
            unauthed_generate_root: !l.disable_unauthed_generate_root_endpoints,
            unauthenticated_metrics: l.telemetry.unauthenticated_metrics_access,
            metrics_listener: MetricsListener {
                disallow: l.telemetry.disallow_metrics,
                only: l.telemetry.metrics_only,
                path: l.telemetry.metrics_path.as_deref().map(Arc::from),
            },
        }
    }
}

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    /// The core.
    pub core: Arc<Core>,
    /// The listener's settings.
    pub options: HttpOptions,
}

/// The router. Serve it with [`serve_connections`] (or
/// `into_make_service_with_connect_info::<SocketAddr>()`).
pub fn router(core: Arc<Core>, options: HttpOptions) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            error_response(&Error::internal("request handler panicked"))
        }))
        .with_state(AppState { core, options })
}

/// How a request path with dot segments or control characters is answered, as Vault and OpenBao do.
#[derive(Debug, PartialEq)]
enum PathProblem {
    /// Literal `.` or `..` segments: a 307 to the cleaned path (Go's `ServeMux`).
    Redirect(String),
    /// Percent-encoded dot segments (`%2e%2e`, `..%2f`): 400 `relative paths not supported`.
    Relative,
    /// A control character (`%00`, `%0a`, `%7f`, ...): a bare 400.
    Control,
}

impl PathProblem {
    /// The error an observer records for a refused path (a redirect is no refusal).
    fn rejection(&self) -> Option<Error> {
        match self {
            PathProblem::Redirect(_) => None,
            PathProblem::Relative => Some(Error::bad("relative paths not supported")),
            PathProblem::Control => Some(Error::bad("control character in path")),
        }
    }
}

/// Checks the raw (still percent-encoded) path for dot segments and control characters.
/// (OpenBao also refuses other non-printable characters, such as U+200B; Coffer only the
/// control characters.)
fn check_path(raw: &str) -> Option<PathProblem> {
    let dots = |s: &str| s == "." || s == "..";
    if raw.split('/').any(dots) {
        return Some(PathProblem::Redirect(clean_path(raw)));
    }
    let decoded = decode::percent_decode(raw).unwrap_or_default();
    if decoded.chars().any(char::is_control) {
        return Some(PathProblem::Control);
    }
    decoded
        .split('/')
        .any(dots)
        .then_some(PathProblem::Relative)
}

/// Whether this is a write (PUT, POST, PATCH) to a path ending in `/`, which Vault refuses
/// before anything else, without a token too: was a key `x/` meant, or a key under `x/`
/// forgotten? The normalised path has lost that slash, so the raw one is asked.
fn writes_to_a_directory(method: &Method, raw: &str) -> bool {
    // Decoded (an allocation) only when the raw path ends in a slash, plain or encoded.
    let slash_last = raw.ends_with('/')
        || raw
            .get(raw.len().saturating_sub(3)..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case("%2f"));
    matches!(method.as_str(), "PUT" | "POST" | "PATCH")
        && slash_last
        && decode::percent_decode(raw).is_some_and(|decoded| {
            decoded
                .trim_start_matches('/')
                .strip_prefix("v1/")
                .is_some_and(|rel| rel.ends_with('/'))
        })
}

/// Go's `path.Clean` on a rooted path, keeping a trailing slash as `ServeMux` does:
/// `/v1/a/../b/./c//` → `/v1/b/c/`.
fn clean_path(raw: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in raw.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut cleaned = format!("/{}", out.join("/"));
    if raw.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

/// The answer to a path with dot segments or control characters.
fn path_problem_response(
    problem: PathProblem,
    method: &Method,
    query: Option<&str>,
) -> HttpResponse {
    match problem {
        PathProblem::Relative => error_response(&Error::bad("relative paths not supported")),
        PathProblem::Control => {
            let mut resp = HttpResponse::new(Body::empty());
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            resp
        }
        PathProblem::Redirect(path) => {
            let location = match query {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            let body = if matches!(*method, Method::GET | Method::HEAD) {
                let href = location
                    .replace('&', "&amp;")
                    .replace('"', "&#34;")
                    .replace('<', "&lt;");
                format!("<a href=\"{href}\">Temporary Redirect</a>.\n\n")
            } else {
                String::new()
            };
            let html = !body.is_empty();
            let mut resp = HttpResponse::new(Body::from(body));
            *resp.status_mut() = StatusCode::TEMPORARY_REDIRECT;
            let h = resp.headers_mut();
            if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
                h.insert(axum::http::header::LOCATION, v);
            }
            if html {
                h.insert(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
                );
            }
            resp
        }
    }
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

/// Every request: served by `serve_request`, then counted (`coffer.http_requests_total`,
/// `coffer.request_duration_seconds` by method, mount type and status) and logged at debug
/// level as one line (request id, method, path, status, duration; never a body, query or token).
async fn dispatch(State(state): State<AppState>, req: HttpRequest<Body>) -> HttpResponse {
    let _in_flight = crate::telemetry::InFlight::start();
    let start = std::time::Instant::now();
    let method = method_label(req.method());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let _tracked = state.core.in_flight.enter(start, method, req.uri(), peer);
    let logged_path = tracing::enabled!(tracing::Level::DEBUG).then(|| log_path(req.uri().path()));
    let mut facts = RequestFacts {
        want_request_id: logged_path.is_some(),
        ..RequestFacts::default()
    };
    let resp = match cors::check(&state.core, req.method(), req.headers()) {
        cors::Cors::Pass => serve_request(&state, req, peer, &mut facts).await,
        cors::Cors::Answer(resp) => resp,
        cors::Cors::Decorate(add) => {
            let mut resp = serve_request(&state, req, peer, &mut facts).await;
            resp.headers_mut().extend(add);
            resp
        }
    };
    let mut resp = resp;
    for (name, value) in std::mem::take(&mut facts.extra_headers) {
        if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    crate::telemetry::count_request(
        method,
        facts.mount_type.unwrap_or("none"),
        status,
        elapsed.as_secs_f64(),
    );
    if let Some(path) = logged_path {
        tracing::debug!(
            request.id = facts.request_id.as_deref().unwrap_or(""),
            request.method = method,
            request.path = %path,
            response.status = status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "{method} {path} {status}"
        );
    }
    resp
}

/// A method as a label value (Vault's methods; anything else is `other`).
fn method_label(m: &Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "LIST" => "LIST",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The request path as logged: decoded and normalised, with anything after the first three
/// segments of `auth/token/` cut (an old client could put a token there). A path that does not
/// decode (a bad escape, invalid UTF-8) or lies outside `/v1/` is shown decoded lossily, cut
/// to 256 characters, and redacted the same way: a token can follow a bad escape too.
pub(crate) fn log_path(raw: &str) -> String {
    match normalize_path(raw) {
        Some(path) => redact_token_path(&format!("/v1/{path}")),
        None => {
            let lossy = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
            let short: String = lossy.chars().take(256).collect();
            let lead = if short.starts_with('/') { "/" } else { "" };
            redact_token_path(&format!("{lead}{}", collapse_slashes(&short)))
        }
    }
}

/// A logical request path (`auth/token/lookup/...`) as the server log shows it: empty segments
/// dropped, and redacted as [`log_path`] does.
pub(crate) fn redacted_path(path: &str) -> String {
    redact_token_path(&collapse_slashes(path))
}

/// `path` without empty segments (`a//b/` is `a/b`), as routing sees it.
fn collapse_slashes(path: &str) -> String {
    path.split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// `path` with everything after the segment that follows `auth/token/` (in any case) replaced
/// by `<redacted>`.
fn redact_token_path(path: &str) -> String {
    const TOKEN: &str = "auth/token/";
    let Some(at) = path
        .to_ascii_lowercase()
        .find(TOKEN)
        .map(|i| i + TOKEN.len())
    else {
        return path.to_owned();
    };
    let (head, rest) = path.split_at(at);
    match rest.split_once('/') {
        Some((segment, _)) => format!("{head}{segment}/<redacted>"),
        None => path.to_owned(),
    }
}

/// Keeps the request id an audited refusal got, for the request's log line.
fn noted(facts: &mut RequestFacts, id: Option<String>) {
    if id.is_some() {
        facts.request_id = id;
    }
}

async fn serve_request(
    state: &AppState,
    req: HttpRequest<Body>,
    peer: Option<SocketAddr>,
    facts: &mut RequestFacts,
) -> HttpResponse {
    let addr = peer.map(|p| p.ip());
    let (mut parts, body) = req.into_parts();
    if let Some(resp) = metrics_listener(&state.options.metrics_listener, &mut parts.uri) {
        return resp;
    }
    // A request refused here is reported to the core's observer (audit) as well; the request
    // line in the log then carries the id of its audit entries.
    let rejected = async |path: &str, e: &Error| {
        state
            .core
            .observe_rejection(parts.method.as_str(), path, addr, e)
            .await
    };
    if let Some(problem) = check_path(parts.uri.path()) {
        if let Some(e) = problem.rejection() {
            noted(facts, rejected(parts.uri.path(), &e).await);
        }
        return path_problem_response(problem, &parts.method, parts.uri.query());
    }
    let Some(path) = normalize_path(parts.uri.path()) else {
        noted(facts, rejected(parts.uri.path(), &Error::NotFound).await);
        return error_response(&Error::NotFound);
    };
    if writes_to_a_directory(&parts.method, parts.uri.path()) {
        let e = Error::bad("cannot write to a path ending in '/'");
        noted(facts, rejected(&path, &e).await);
        return error_response(&e);
    }
    if path == "sys" || path.starts_with("sys/") {
        facts.mount_type = Some("system");
    }
    // HA standby: everything but the seal/health family goes to the active node.
    if let Some(ha) = state.core.ha()
        && state.core.is_standby()
        && !forward::answered_locally(&path)
        // A scrape is each node's own: served without a token on an unauthenticated listener
        // (as in Vault), checked and audited by the standby's core otherwise.
        && !(path == "sys/metrics"
            && (state.options.unauthenticated_metrics || parts.method == Method::GET))
    {
        if forward::local_only(&path) {
            return forward::local_only_refused();
        }
        return forward::standby(state, ha, parts, body, addr).await;
    }
    // A request a standby forwarded carries the client's address, signed.
    let addr = forward::vouched_client_addr(&state.core, &parts.headers).or(addr);
    // Rate-limit quotas, before anything else runs (a login with role quotas once its body
    // names the role).
    let login_quota = match quota::check(state, &parts.method, &path, addr, facts).await {
        quota::Gate::Pass => None,
        quota::Gate::Refuse(resp) => return resp,
        quota::Gate::Login(mount) => Some(mount),
    };
    // Only init and unseal read their body here; everything else streams it to the decoder.
    let (raw_body, body) = if sys_raw::wants_body(state, &path) {
        match decode::read_body(body, state.options.max_request_size).await {
            Ok(b) => (b, Body::empty()),
            Err(e) => {
                noted(facts, rejected(&path, &e).await);
                return error_response(&e);
            }
        }
    } else {
        (axum::body::Bytes::new(), body)
    };
    let raw = if !sys_raw::wants_body(state, &path) {
        sys_raw::handle(
            state,
            &parts.method,
            &path,
            parts.uri.query(),
            &parts.headers,
            &raw_body,
            addr,
        )
        .await
    } else {
        // Init, unseal, rekey and root generation change the seal: never cut short either.
        let (st, method, p) = (state.clone(), parts.method.clone(), path.clone());
        let (query, headers) = (parts.uri.query().map(str::to_owned), parts.headers.clone());
        let body = raw_body.clone();
        RunToCompletion::new(async move {
            sys_raw::handle(&st, &method, &p, query.as_deref(), &headers, &body, addr).await
        })
        .await
    };
    if let Some(resp) = raw {
        return resp;
    }
    match decode::incoming(
        state,
        parts.method.clone(),
        &path,
        parts.uri.query(),
        &parts.headers,
        body,
        addr,
    )
    .await
    {
        Err(e) => {
            noted(facts, rejected(&path, &e).await);
            error_response(&e)
        }
        Ok(mut inc) => {
            if let Some(mount) = &login_quota
                && let Some(resp) =
                    quota::check_login(state, &parts.method, &path, mount, &inc.data, addr, facts)
                        .await
            {
                return resp;
            }
            // `format` missing or empty: the Accept header decides (as on an unauthenticated
            // listener, and in Vault).
            let no_format = match inc.data.get("format") {
                None => true,
                Some(serde_json::Value::String(f)) => f.is_empty(),
                Some(_) => false,
            };
            if inc.path == "sys/metrics" && no_format {
                let format = crate::telemetry::format_from_accept(sys_raw::accept(&parts.headers));
                if !format.is_empty() {
                    inc.data.insert("format".into(), format.into());
                }
            }
            inc.client_port = peer.map(|p| p.port());
            handle_logical(state, inc, facts).await
        }
    }
}

/// OpenBao's listener rules for the metrics endpoint, before anything else: refuse it
/// (`disallow_metrics`, which wins), serve nothing else (`metrics_only`), serve it at another
/// path (`metrics_path`, only with `metrics_only`; the query is kept). The path is compared as
/// sent, as OpenBao does.
fn metrics_listener(m: &MetricsListener, uri: &mut axum::http::Uri) -> Option<HttpResponse> {
    const REAL: &str = "/v1/sys/metrics";
    if !m.disallow && !m.only {
        return None;
    }
    let path = m.path.as_deref().filter(|_| m.only).unwrap_or(REAL);
    let is_metrics = uri.path() == path;
    let plain = |status: StatusCode, text: &str| {
        let mut resp = HttpResponse::new(Body::from(format!("{text}\n")));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            axum::http::HeaderValue::from_static("nosniff"),
        );
        resp
    };
    if m.disallow && is_metrics {
        return Some(plain(
            StatusCode::FORBIDDEN,
            "metrics endpoint is disabled for this listener",
        ));
    }
    if m.only && !is_metrics {
        return Some(plain(
            StatusCode::NOT_FOUND,
            "this listener only serves the metrics endpoint",
        ));
    }
    if is_metrics && path != REAL {
        let target = match uri.query() {
            Some(q) => format!("{REAL}?{q}"),
            None => REAL.to_owned(),
        };
        if let Ok(u) = target.parse() {
            *uri = u;
        }
    }
    None
}

async fn handle_logical(
    state: &AppState,
    inc: crate::core::IncomingRequest,
    facts: &mut RequestFacts,
) -> HttpResponse {
    let core = state.core.clone();
    let want_request_id = facts.want_request_id;
    let extra_headers = std::mem::take(&mut facts.extra_headers);
    let (result, done) = RunToCompletion::new(async move {
        let mut facts = RequestFacts {
            want_request_id,
            ..RequestFacts::default()
        };
        let result = core.handle_request_with(inc, &mut facts).await;
        (result, facts)
    })
    .await;
    *facts = done;
    facts.extra_headers = extra_headers;
    match result {
        Ok(outcome) => envelope::success(&outcome),
        Err(e) => {
            if e.is_internal() {
                tracing::error!(error = %e, "request failed");
            }
            let mut resp = error_response(&e);
            // HA: a write refused by the lock (this node was deposed mid-request).
            if matches!(&e, Error::Coded(503, m) if m == crate::error::NO_ACTIVE_NODE) {
                resp.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("1"),
                );
            }
            resp
        }
    }
}

/// A request of the core that finishes even when its client hangs up: hyper drops a
/// connection's request future then, which would stop the request anywhere, between two
/// storage writes of one operation or before its response audit entry (Vault runs requests
/// under a context the client cannot cancel, hashicorp/vault#23871). Dropped unfinished, the
/// future is spawned onto the runtime to run to the end; otherwise it costs one allocation.
struct RunToCompletion<F: std::future::Future + Send + 'static> {
    fut: Option<std::pin::Pin<Box<F>>>,
}

impl<F: std::future::Future + Send + 'static> RunToCompletion<F> {
    fn new(fut: F) -> Self {
        RunToCompletion {
            fut: Some(Box::pin(fut)),
        }
    }
}

impl<F: std::future::Future + Send + 'static> std::future::Future for RunToCompletion<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let Some(fut) = self.fut.as_mut() else {
            return std::task::Poll::Pending;
        };
        let out = std::task::ready!(fut.as_mut().poll(cx));
        self.fut = None;
        std::task::Poll::Ready(out)
    }
}

impl<F: std::future::Future + Send + 'static> Drop for RunToCompletion<F> {
    fn drop(&mut self) {
        if let Some(fut) = self.fut.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                fut.await;
            });
        }
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

    use super::{PathProblem, check_path, clean_path};

    #[test]
    fn dot_segments_and_control_characters() {
        let redirect = |p: &str| Some(PathProblem::Redirect(p.to_owned()));
        assert_eq!(
            check_path("/v1/secret/data/a/../b"),
            redirect("/v1/secret/data/b")
        );
        assert_eq!(check_path("/v1/a/./b//c/"), redirect("/v1/a/b/c/"));
        assert_eq!(check_path("/../.."), redirect("/"));
        assert_eq!(check_path("/v1/a/%2e%2e/b"), Some(PathProblem::Relative));
        assert_eq!(check_path("/v1/a/%2E"), Some(PathProblem::Relative));
        assert_eq!(check_path("/v1/a%2f..%2fb"), Some(PathProblem::Relative));
        assert_eq!(check_path("/v1/a%00"), Some(PathProblem::Control));
        assert_eq!(check_path("/v1/a%c2%85"), Some(PathProblem::Control));
        assert_eq!(check_path("/v1/a..b/.c/..."), None);
        assert_eq!(check_path("/v1//a/"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever the path, checking and normalising never panic; a path that passes the
        /// check normalises to segments that are neither empty, `.` or `..`, nor hold control
        /// characters.
        #[test]
        fn checked_paths_normalise_to_plain_segments(
            tail in "([a-z]|\\.|/|%2[eEfF]|%00|%0a|%c3%a9|%ff|%|%e)*",
        ) {
            let raw = format!("/v1/{tail}");
            let problem = check_path(&raw);
            let normalised = normalize_path(&raw);
            if problem.is_none() && let Some(path) = normalised {
                for segment in path.split('/').filter(|_| !path.is_empty()) {
                    proptest::prop_assert!(!matches!(segment, "" | "." | ".."), "{raw} -> {path}");
                    proptest::prop_assert!(!segment.chars().any(char::is_control), "{raw}");
                }
            }
        }

        /// A cleaned path is rooted, has no empty or dot segments inside, is its own cleaning,
        /// and is never redirected again.
        #[test]
        fn cleaning_is_idempotent(raw in "/([a-z]{1,3}|\\.|\\.\\.|/)*") {
            let cleaned = clean_path(&raw);
            proptest::prop_assert!(cleaned.starts_with('/'));
            proptest::prop_assert!(!cleaned.contains("//"), "{raw} -> {cleaned}");
            proptest::prop_assert_eq!(clean_path(&cleaned), cleaned.clone());
            let redirected = matches!(check_path(&cleaned), Some(PathProblem::Redirect(_)));
            proptest::prop_assert!(!redirected, "{raw} -> {cleaned}");
        }
    }
}
