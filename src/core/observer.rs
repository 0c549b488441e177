//! The request/response hook: the seam audit devices and metrics attach to. An observer sees
//! every logical request and its outcome — including requests the pipeline rejects before the
//! backend (bad token, ACL denial, no route) and requests the HTTP layer rejects before the core
//! (bad path, decode errors, JSON limits, body too large) — with the request id, the mount, the
//! resolved token entry (never the plaintext token) and the request data.
//!
//! None is installed by default; the pipeline then checks one pointer per request and builds no
//! record at all.

use serde_json::{Map, Value};
use std::net::IpAddr;
use std::sync::Arc;

use super::Core;
use super::pipeline::Outcome;
use super::render::render_status;
use crate::error::{Error, Result};
use crate::logical::{Operation, redacted_keys};
use crate::secret::Secret;
use crate::token::TokenEntry;

/// Sees every request before its backend runs, and its outcome after. Both hooks are async:
/// an observer that waits (an audit device's acknowledgement) never blocks a runtime thread.
#[async_trait::async_trait]
pub trait RequestObserver: Send + Sync {
    /// Called once per request, before the backend runs (after routing, authentication and the
    /// ACL check). An error refuses the request with that error (a fail-closed audit device).
    /// For a request rejected earlier it is called at the rejection, and its result ignored.
    async fn on_request(&self, request: &RequestRecord) -> Result<()>;

    /// Called once per request with its outcome, after [`RequestObserver::on_request`]. An
    /// error turns a successful outcome into that error (the operation has taken effect: a
    /// fail-closed audit device that could not record the response).
    async fn on_response(&self, request: &RequestRecord, response: &ResponseRecord) -> Result<()>;
}

/// The observer of a `sys/audit/...` request that began with no observer installed: no request
/// entry (there was no device to take it), and the response entry to the observer installed by
/// the time the request is done, if any.
struct FirstDevice(std::sync::Weak<Core>);

#[async_trait::async_trait]
impl RequestObserver for FirstDevice {
    async fn on_request(&self, _request: &RequestRecord) -> Result<()> {
        Ok(())
    }

    async fn on_response(&self, request: &RequestRecord, response: &ResponseRecord) -> Result<()> {
        let installed = self.0.upgrade().and_then(|c| c.observer.load_full());
        match installed {
            Some(observer) => observer.on_response(request, response).await,
            None => Ok(()),
        }
    }
}

/// The future an observer hook returns (what `async_trait` makes of the hooks).
type Hook<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>;

/// Forwards to the shared observer, handing on its future as is (no second box per call).
impl<T: RequestObserver + ?Sized> RequestObserver for Arc<T> {
    fn on_request<'s, 'r, 'a>(&'s self, request: &'r RequestRecord) -> Hook<'a>
    where
        's: 'a,
        'r: 'a,
        Self: 'a,
    {
        (**self).on_request(request)
    }

    fn on_response<'s, 'r, 'p, 'a>(
        &'s self,
        request: &'r RequestRecord,
        response: &'p ResponseRecord,
    ) -> Hook<'a>
    where
        's: 'a,
        'r: 'a,
        'p: 'a,
        Self: 'a,
    {
        (**self).on_response(request, response)
    }
}

/// The mount that serves a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Backend type (`kv`, `approle`, ...).
    pub kind: String,
    /// Mount accessor.
    pub accessor: String,
    /// Mount path relative to `/v1/` (`secret/`, `auth/approle/`).
    pub path: String,
    /// The mount's `audit_non_hmac_request_keys`.
    pub non_hmac_request_keys: Vec<String>,
    /// The mount's `audit_non_hmac_response_keys`.
    pub non_hmac_response_keys: Vec<String>,
}

/// A request as observers see it. Its `Debug` shows data keys, never values.
#[derive(Clone)]
pub struct RequestRecord {
    /// The request id (the `request_id` of the response envelope).
    pub request_id: String,
    /// The operation (after the existence check turned an update into a create).
    pub operation: Operation,
    /// The path relative to `/v1/`.
    pub path: String,
    /// The mount that serves the path, once routed.
    pub mount: Option<MountInfo>,
    /// Peer address.
    pub client_addr: Option<IpAddr>,
    /// Peer port.
    pub client_port: Option<u16>,
    /// `X-Vault-Wrap-TTL` in seconds.
    pub wrap_ttl: Option<i64>,
    /// The resolved token entry, once authenticated (the plaintext token is never recorded).
    pub token: Option<Arc<TokenEntry>>,
    /// The request parameters (for an audit device to HMAC).
    pub data: Map<String, Value>,
    /// The token the client sent, for an audit device to HMAC (never logged in clear).
    pub client_token: Option<Secret>,
    /// Its accessor, once the token resolved (for an audit device to HMAC).
    pub client_token_accessor: Option<Secret>,
    /// Why the request was refused before its backend (empty when it reached it).
    pub errors: Vec<String>,
    /// The policies that allowed it (Vault's `granting_policies`; `root` for a root token).
    pub granting_policies: Vec<Arc<str>>,
    /// The audited request headers (see `IncomingRequest::audited_headers`).
    pub headers: Vec<(String, bool, Vec<String>)>,
    /// What the observer worked out in `on_request` for its `on_response`.
    pub scratch: Scratch,
    /// The token check itself failed (the existence check refused the input): Vault audits
    /// such a request without the token's details.
    pub token_check_failed: bool,
    /// Refused for an invalid wrapping token before anything else (Vault's
    /// `validateWrappingToken`): the entry's `auth` holds only the request's token and accessor,
    /// its `request` only the mount point, its `error` the plain text; no response entry.
    pub wrapping_refused: bool,
}

/// Something an observer works out for one request in its first hook and reuses in its second
/// (an audit device's encoding of the parts both entries share). Starts empty; a clone of a
/// record starts empty again.
#[derive(Default)]
pub struct Scratch(std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>);

impl Clone for Scratch {
    fn clone(&self) -> Self {
        Scratch::default()
    }
}

impl Scratch {
    /// Keeps `value` (the first kept value stays).
    pub fn keep<T: std::any::Any + Send + Sync>(&self, value: T) {
        let _ = self.0.set(Box::new(value));
    }

    /// The kept value, if one of type `T` was kept.
    pub fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.get()?.downcast_ref()
    }
}

/// The outcome of a request as observers see it. Its `Debug` shows keys, never values.
#[derive(Clone, Default)]
pub struct ResponseRecord {
    /// HTTP status.
    pub status: u16,
    /// Error texts (empty on success).
    pub errors: Vec<String>,
    /// Response data.
    pub data: Option<Map<String, Value>>,
    /// The `auth` block of an issued token (holds the plaintext token: HMAC it).
    pub auth: Option<Value>,
    /// The entry of the token the request issued (a login, a token create) or renewed.
    pub issued_token: Option<Arc<TokenEntry>>,
    /// `issued_token` was renewed, not issued.
    pub renewed: bool,
    /// The login that issued `issued_token` created its entity (its first login).
    pub entity_created: bool,
    /// `wrap_info` of a wrapped response (holds the wrapping token: HMAC it).
    pub wrap_info: Option<Value>,
    /// The response's warnings (those of the wrapped response too), written as they are.
    pub warnings: Vec<String>,
    /// The entry's `error` where Vault's differs from Go's multierror of `errors` (a
    /// refused login's plain text, `invalid request` for a backend's 400).
    pub error_text: Option<String>,
    /// Vault's `response.data.error` of an error response (the HTTP message in most cases).
    pub data_error: Option<String>,
    /// The response is a secret with a lease (a kv-v1 read): the entry shows `"secret":{}`.
    pub secret: bool,
}

fn token_summary(t: &TokenEntry) -> String {
    format!("{} {:?}", t.display_name, t.policies)
}

impl std::fmt::Debug for RequestRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestRecord")
            .field("request_id", &self.request_id)
            .field("operation", &self.operation)
            .field("path", &self.path)
            .field("mount", &self.mount)
            .field("client_addr", &self.client_addr)
            .field("token", &self.token.as_deref().map(token_summary))
            .field("data_keys", &redacted_keys(&self.data))
            .field("granting_policies", &self.granting_policies)
            .field(
                "headers",
                &self.headers.iter().map(|(n, ..)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl std::fmt::Debug for ResponseRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseRecord")
            .field("status", &self.status)
            .field("errors", &self.errors)
            .field("data_keys", &self.data.as_ref().map(redacted_keys))
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field(
                "issued_token",
                &self.issued_token.as_deref().map(token_summary),
            )
            .field("wrap_info", &self.wrap_info.as_ref().map(|_| "<redacted>"))
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl RequestRecord {
    /// The record of a request as it arrives, before routing and authentication.
    pub(super) fn incoming(request_id: &str, inc: &super::pipeline::IncomingRequest) -> Self {
        RequestRecord {
            request_id: request_id.to_owned(),
            operation: inc.operation,
            path: inc.path.clone(),
            mount: None,
            client_addr: inc.client_addr,
            client_port: inc.client_port,
            wrap_ttl: inc.wrap_ttl,
            token: None,
            data: inc.data.clone(),
            client_token: inc.client_token.clone(),
            client_token_accessor: None,
            errors: Vec::new(),
            granting_policies: Vec::new(),
            headers: inc.audited_headers.clone(),
            scratch: Scratch::default(),
            token_check_failed: false,
            wrapping_refused: false,
        }
    }

    /// The record of a request that never reached the pipeline: a fresh id, no mount and no
    /// token.
    fn outside_pipeline(
        operation: Operation,
        path: &str,
        client_addr: Option<IpAddr>,
        data: Map<String, Value>,
        errors: Vec<String>,
    ) -> Self {
        RequestRecord {
            request_id: crate::ids::uuid_v4(),
            operation,
            path: path.to_string(),
            mount: None,
            client_addr,
            client_port: None,
            wrap_ttl: None,
            token: None,
            data,
            client_token: None,
            client_token_accessor: None,
            errors,
            granting_policies: Vec::new(),
            headers: Vec::new(),
            scratch: Scratch::default(),
            token_check_failed: false,
            wrapping_refused: false,
        }
    }
}

impl ResponseRecord {
    /// The record of an error as it is (for requests that never reached the pipeline, which
    /// Vault does not audit at all: the entry keeps the message the client got).
    pub fn of_error(e: &Error) -> Self {
        ResponseRecord {
            status: e.status().as_u16(),
            errors: e.messages(),
            ..Default::default()
        }
    }

    /// The record of an error, for a login request (no token, `auth/`) or another. Vault's
    /// audit entry keeps the Go error a backend returned beside its error response, not only
    /// the message the HTTP body shows, so some kinds read differently there (as OpenBao
    /// 2.7.2 logs them).
    fn of_error_in(e: &Error, login: bool) -> Self {
        let multi = crate::error::multierror;
        let (error_text, data_error) = match e {
            Error::AclDenied => (None, Some(multi("permission denied"))),
            Error::PermissionDenied => (None, Some(e.to_string())),
            Error::InvalidCredentials(m) => (Some("invalid credentials".into()), Some(m.clone())),
            // A login's own errors are not wrapped and carry no error response.
            Error::BadRequest(m) if login => (Some(m.clone()), None),
            Error::BadRequest(m) => (Some(multi("invalid request")), Some(m.clone())),
            Error::NoRoute(_) => (Some(multi("unsupported path")), Some(e.to_string())),
            // A backend's own 403 (`bad token`): Vault's error response with
            // ErrPermissionDenied beside it.
            Error::Coded(403, m) => (Some(multi("permission denied")), Some(m.clone())),
            // Vault's system backend answering a coded error (a mount path in use): the error
            // itself beside its error response.
            Error::Coded(400, m) => (None, Some(m.clone())),
            _ => (None, None),
        };
        ResponseRecord {
            error_text,
            data_error,
            ..Self::of_error(e)
        }
    }

    /// The record of `result`, whose response data it borrows: taken out here, given back by
    /// [`ResponseRecord::restore`] (no copy of a large response for the observers).
    fn of_result(
        result: &mut Result<Outcome>,
        issued_token: Option<Arc<TokenEntry>>,
        login: bool,
    ) -> Self {
        match result {
            Err(e) => ResponseRecord {
                issued_token,
                ..Self::of_error_in(e, login)
            },
            Ok(out) => {
                let status = render_status(out);
                let resp = out.response.as_mut();
                let (data, wrap_info, warnings, secret) = match resp {
                    Some(r) => (
                        r.data.take(),
                        r.wrap_info.clone(),
                        r.wrapped_warnings
                            .iter()
                            .chain(&r.warnings)
                            .cloned()
                            .collect(),
                        r.secret,
                    ),
                    None => (None, None, Vec::new(), false),
                };
                ResponseRecord {
                    status,
                    errors: Vec::new(),
                    data,
                    auth: out.auth.clone(),
                    issued_token,
                    wrap_info,
                    warnings,
                    secret,
                    ..Default::default()
                }
            }
        }
    }

    /// Gives the data [`ResponseRecord::of_result`] took back to `result`.
    fn restore(self, result: &mut Result<Outcome>) {
        if let Ok(out) = result
            && let Some(resp) = out.response.as_mut()
        {
            resp.data = self.data;
        }
    }
}

/// The installed observer.
pub(super) type Installed = Arc<Box<dyn RequestObserver>>;

/// One request's record on its way through the pipeline; exists only while an observer is
/// installed.
pub(super) struct Trace {
    observer: Installed,
    /// The record, completed step by step.
    pub(super) record: RequestRecord,
    /// The entry of the token the request issued (or renewed: `renewed`).
    pub(super) issued_token: Option<Arc<TokenEntry>>,
    pub(super) renewed: bool,
    /// The login created its entity.
    pub(super) entity_created: bool,
    announced: bool,
}

impl Trace {
    pub(super) fn new(observer: Installed, record: RequestRecord) -> Self {
        Trace {
            observer,
            record,
            issued_token: None,
            renewed: false,
            entity_created: false,
            announced: false,
        }
    }

    /// The request is about to reach its backend: `on_request`, whose error refuses it.
    pub(super) async fn announce(&mut self) -> Result<()> {
        if self.announced {
            return Ok(());
        }
        self.announced = true;
        self.observer.on_request(&self.record).await
    }

    /// The request is done: `on_request` if it never reached the backend, then `on_response`,
    /// whose error replaces a successful outcome.
    pub(super) async fn finish(mut self, result: &mut Result<Outcome>) -> Result<()> {
        // A request rejected before its backend: its refusal is already decided.
        // Except a path no backend serves: Vault routes after its request entry, so only the
        // response entry shows that error.
        if !self.announced
            && let Err(e) = result
            && !matches!(e, Error::NoRoute(_))
        {
            self.record.errors = e.messages();
        }
        let _ = self.announce().await;
        let login = self.record.token.is_none()
            && self.record.client_token.is_none()
            && self.record.path.starts_with("auth/");
        let mut response = ResponseRecord::of_result(result, self.issued_token.take(), login);
        response.renewed = self.renewed;
        response.entity_created = self.entity_created;
        let outcome = self.observer.on_response(&self.record, &response).await;
        response.restore(result);
        outcome
    }
}

/// What `on_request` sees for an HTTP method when the request never became a logical one.
fn operation_of_method(method: &str) -> Operation {
    match method {
        "GET" | "HEAD" => Operation::Read,
        "DELETE" => Operation::Delete,
        "LIST" => Operation::List,
        "PATCH" => Operation::Patch,
        _ => Operation::Update,
    }
}

impl Core {
    /// Installs the request observer (`None` removes it). Requests already in flight finish
    /// with the observer they started with.
    pub fn set_observer(&self, observer: Option<Box<dyn RequestObserver>>) {
        self.observer.store(observer.map(Arc::new));
    }

    /// A trace for a new request, when an observer is installed. A `sys/audit/...` request
    /// made while none is (enabling the first device) gets a trace too: its response entry goes
    /// to the devices enabled by then, as Vault logs the enabling request's response to the new
    /// device ([`FirstDevice`]).
    pub(super) fn trace(
        &self,
        path: &str,
        record: impl FnOnce() -> RequestRecord,
    ) -> Option<Trace> {
        match self.observer.load_full() {
            Some(observer) => Some(Trace::new(observer, record())),
            None if path.starts_with("sys/audit/") => Some(Trace::new(
                Arc::new(Box::new(FirstDevice(self.weak.clone()))),
                record(),
            )),
            None => None,
        }
    }

    /// Runs `run`, an operator call that bypasses the pipeline (the unauthenticated rekey and
    /// generate-root endpoints), between a request entry and a response entry, as Vault's
    /// `handleAuditNonLogical` does: refused before it runs when the observer refuses the
    /// request entry, answered with the observer's error when it refuses the response entry.
    /// `path` is relative to `/v1/`; `data` the request body (the observer HMACs it).
    pub async fn observed_operator<F>(
        &self,
        operation: Operation,
        path: &str,
        data: &Map<String, Value>,
        client_addr: Option<IpAddr>,
        run: F,
    ) -> Result<Option<Value>>
    where
        F: std::future::Future<Output = Result<Option<Value>>>,
    {
        let Some(observer) = self.observer.load_full() else {
            return run.await;
        };
        let record =
            RequestRecord::outside_pipeline(operation, path, client_addr, data.clone(), Vec::new());
        observer.on_request(&record).await?;
        let result = run.await;
        let response = match &result {
            Ok(v) => ResponseRecord {
                status: if v.is_some() { 200 } else { 204 },
                data: v.as_ref().and_then(|v| v.as_object().cloned()),
                ..Default::default()
            },
            Err(e) => ResponseRecord::of_error(e),
        };
        observer.on_response(&record, &response).await?;
        result
    }

    /// Reports a request the HTTP layer rejected before it reached the pipeline (bad path,
    /// undecodable body, JSON limits, body too large): the observer sees it as a request with a
    /// fresh id and no token, and its error. Returns that id (`None` when nothing observed it),
    /// for the request's log line.
    pub async fn observe_rejection(
        &self,
        method: &str,
        path: &str,
        client_addr: Option<IpAddr>,
        error: &Error,
    ) -> Option<String> {
        let observer = match self.observer.load_full() {
            Some(observer) => observer,
            // A standby audits what it serves itself (its scrapes) to its own devices.
            None if method == "GET" && path.trim_start_matches('/') == "sys/metrics" => {
                match self.standby_observer().await {
                    Some(observer) => observer,
                    None => return None,
                }
            }
            None => return None,
        };
        let record = RequestRecord::outside_pipeline(
            operation_of_method(method),
            path.trim_start_matches('/'),
            client_addr,
            Map::new(),
            error.messages(),
        );
        let _ = observer.on_request(&record).await;
        let _ = observer
            .on_response(&record, &ResponseRecord::of_error(error))
            .await;
        Some(record.request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_values() {
        let mut data = Map::new();
        data.insert("password".into(), Value::String("hunter2-canary".into()));
        let req = RequestRecord {
            request_id: "r".into(),
            operation: Operation::Update,
            path: "secret/data/x".into(),
            mount: None,
            client_addr: None,
            client_port: None,
            wrap_ttl: None,
            token: None,
            data: data.clone(),
            client_token: Some(Secret::new("hvs.client-canary")),
            client_token_accessor: None,
            errors: Vec::new(),
            granting_policies: Vec::new(),
            headers: Vec::new(),
            scratch: Scratch::default(),
            token_check_failed: false,
            wrapping_refused: false,
        };
        let resp = ResponseRecord {
            status: 200,
            data: Some(data),
            auth: Some(serde_json::json!({"client_token": "hvs.auth-canary"})),
            wrap_info: Some(serde_json::json!({"token": "hvs.wrap-canary"})),
            ..Default::default()
        };
        let printed = format!("{req:?} {resp:?}");
        for canary in [
            "hunter2-canary",
            "hvs.auth-canary",
            "hvs.wrap-canary",
            "hvs.client-canary",
        ] {
            assert!(!printed.contains(canary), "{printed}");
        }
        assert!(printed.contains("password"));
    }
}
