//! The logical layer: what a mounted backend sees. Requests arrive here already routed to a mount,
//! authenticated and authorised by the core pipeline; backends never see HTTP types.
//!
//! `Backend` is the trait every mount implements; most implement it through a declarative
//! `PathTable` (see `path.rs`) of path patterns, typed fields and per-operation handlers. What a
//! backend may ask of the server (clock, TTL defaults, its mount) is the `SystemView` it is built
//! with (`system_view.rs`); the mount table's rows are `MountEntry`s (`mount.rs`). Nothing here
//! depends on the core.

pub mod duration;
pub mod field;
pub mod mount;
pub mod path;
pub mod system_view;

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::error::Result;
use crate::secret::Secret;
use crate::storage::Storage;
use crate::token::TokenEntry;

pub use field::{Field, FieldData, FieldType};
pub use mount::{MountConfig, MountEntry, MountTableKind};
pub use path::{BoxFut, NameForm, PathSpec, PathTable};
pub use system_view::{StaticSystemView, SystemView};

/// A logical operation, derived from the HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// GET.
    Read,
    /// GET `?list=true` or the LIST method.
    List,
    /// PUT/POST on something that does not exist yet (per the existence check).
    Create,
    /// PUT/POST on something that exists, or on a path without an existence check.
    Update,
    /// DELETE.
    Delete,
    /// PATCH.
    Patch,
    /// `?help=1`.
    Help,
}

/// A request as a backend sees it. Its `Debug` shows parameter names, never values.
pub struct Request {
    /// Unique id, echoed as `request_id`.
    pub id: String,
    /// The operation after the existence check.
    pub operation: Operation,
    /// The path relative to the mount (`role/jenkins`), list paths end in `/`.
    pub path: String,
    /// The path relative to `/v1/` (`auth/approle/role/jenkins`).
    pub full_path: String,
    /// The mount serving the request.
    pub mount: Arc<MountEntry>,
    /// Body (or query) parameters.
    pub data: Map<String, Value>,
    /// The mount's private storage.
    pub storage: Storage,
    /// The raw client token, when one was sent.
    pub client_token: Option<Secret>,
    /// The authenticated token (absent on unauthenticated paths).
    pub token: Option<Arc<TokenEntry>>,
    /// The client's IP address.
    pub client_addr: Option<IpAddr>,
    /// Requested response-wrapping TTL in seconds.
    pub wrap_ttl: Option<i64>,
    /// The request's Content-Type header.
    pub content_type: Option<String>,
}

/// The authentication a login (or token create) produced; the core turns it into a token.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// Policies attached to the token (already normalised by the backend).
    pub policies: Vec<String>,
    /// Metadata, shown as `meta` on lookup.
    pub metadata: BTreeMap<String, String>,
    /// Requested TTL in seconds (0 = mount default).
    pub ttl: i64,
    /// Backend maximum TTL in seconds (0 = mount max).
    pub max_ttl: i64,
    /// Hard cap in seconds (0 = none).
    pub explicit_max_ttl: i64,
    /// Period in seconds (0 = not periodic).
    pub period: i64,
    /// Uses before the token is revoked (0 = unlimited).
    pub num_uses: i64,
    /// Whether the token may be renewed.
    pub renewable: bool,
    /// `service` or `batch`.
    pub token_type: String,
    /// CIDRs the token may be used from.
    pub bound_cidrs: Vec<String>,
    /// Display name (`approle`, `token`, ...).
    pub display_name: String,
    /// Entity alias name (e.g. the role_id); the core derives a stable entity id from it.
    pub alias_name: String,
    /// Values the backend wants back on renewal (e.g. the role name).
    pub internal: BTreeMap<String, String>,
}

/// What a backend answers. Its `Debug` shows data keys, never values.
#[derive(Clone, Default)]
pub struct Response {
    /// The `data` object.
    pub data: Option<Map<String, Value>>,
    /// A login's auth block.
    pub auth: Option<Auth>,
    /// Warnings shown to the user.
    pub warnings: Vec<String>,
    /// Lease duration to report (kv-v1 reads report the mount default).
    pub lease_duration: i64,
    /// The data is a secret with a lease (Vault's `resp.Secret`: a kv-v1 read); the audit
    /// entry shows an (empty) `secret` object.
    pub secret: bool,
    /// Overrides the HTTP status (kv's 404 with a body, tidy's 202).
    pub status: Option<u16>,
    /// A complete body to send as is (unwrap replays a stored response).
    pub raw_body: Option<String>,
    /// `Content-Type` of a `raw_body` that is not JSON (`sys/metrics`).
    pub content_type: Option<&'static str>,
    /// A body sent as it is produced (`sys/monitor`), with `content_type`, instead of the
    /// envelope.
    pub stream: Option<Streamed>,
    /// Also copy the `data` keys to the top level (Vault's sys injector).
    pub inject_top_level: bool,
    /// Accessor to report as `wrap_info.wrapped_accessor` when this response is wrapped.
    pub wrapped_accessor: Option<String>,
    /// An `auth` block for a token the backend created itself (token create).
    pub issued_auth: Option<Value>,
    /// The entry of the token `issued_auth` describes, for the audit entry's `response.auth`
    /// (display name, use count; with `renewed`, the issue time as Vault shows on a renewal).
    pub issued_entry: Option<std::sync::Arc<crate::token::TokenEntry>>,
    /// `issued_auth` answers a renewal.
    pub renewed: bool,
    /// A ready `wrap_info` (rewrap): the response is rendered as a wrap-only envelope.
    pub wrap_info: Option<Value>,
    /// The warnings of the response a wrap replaced: written to the audit entry, not to the
    /// HTTP body (Vault's wrapped answer has `"warnings": null`).
    pub wrapped_warnings: Vec<String>,
}

/// The keys of a parameter map, for redacted `Debug` output.
pub fn redacted_keys(m: &Map<String, Value>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("operation", &self.operation)
            .field("full_path", &self.full_path)
            .field("data_keys", &redacted_keys(&self.data))
            .field("client_token", &self.client_token)
            .field("client_addr", &self.client_addr)
            .field("wrap_ttl", &self.wrap_ttl)
            .finish_non_exhaustive()
    }
}

/// A streamed body, taken once by the HTTP layer (a response is `Clone`, its stream is not).
#[derive(Clone)]
pub struct Streamed(std::sync::Arc<std::sync::Mutex<Option<axum::body::Body>>>);

impl Streamed {
    /// Wraps `body`.
    pub fn new(body: axum::body::Body) -> Self {
        Streamed(std::sync::Arc::new(std::sync::Mutex::new(Some(body))))
    }

    /// The body, the first time.
    pub fn take(&self) -> Option<axum::body::Body> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("data_keys", &self.data.as_ref().map(redacted_keys))
            .field("auth", &self.auth.is_some())
            .field("warnings", &self.warnings)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// A response carrying `data`.
    pub fn data(data: Map<String, Value>) -> Self {
        Response {
            data: Some(data),
            ..Default::default()
        }
    }

    /// A response from a `json!({...})` object.
    pub fn json(v: Value) -> Self {
        match v {
            Value::Object(m) => Response::data(m),
            _ => Response::default(),
        }
    }

    /// A list response `{"keys": [...]}`.
    pub fn list(keys: Vec<String>) -> Self {
        let mut m = Map::new();
        m.insert("keys".into(), Value::from(keys));
        Response::data(m)
    }

    /// Adds a warning.
    pub fn with_warning(mut self, w: impl Into<String>) -> Self {
        self.warnings.push(w.into());
        self
    }
}

/// Paths a backend marks specially. Patterns are relative to the mount; a trailing `*` is a prefix.
#[derive(Debug, Clone, Default)]
pub struct SpecialPaths {
    /// Served without a token (login endpoints).
    pub unauthenticated: Vec<&'static str>,
    /// Need `sudo` in addition to the normal capability.
    pub root: Vec<&'static str>,
}

impl SpecialPaths {
    fn matches(patterns: &[&'static str], path: &str) -> bool {
        patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == *p || path.strip_suffix('/') == Some(p),
        })
    }

    /// True when `path` needs no token.
    pub fn is_unauthenticated(&self, path: &str) -> bool {
        Self::matches(&self.unauthenticated, path)
    }

    /// True when `path` needs sudo.
    pub fn is_root(&self, path: &str) -> bool {
        Self::matches(&self.root, path)
    }
}

/// A mounted secrets engine or auth method.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Unauthenticated and sudo paths of this backend.
    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths::default()
    }

    /// For a create/update request: `Some(true)` when the target exists, `Some(false)` when it
    /// does not, `None` when the path has no existence check (then it is always an update).
    async fn existence_check(&self, req: &Request) -> Result<Option<bool>>;

    /// Serves the request.
    async fn handle_request(&self, req: &Request) -> Result<Option<Response>>;

    /// `path` (relative to the mount) with every name it carries in the form this backend keeps
    /// it in, or `None` when it already is. The pipeline authorises and serves the canonical path.
    fn canonical_path(&self, _path: &str) -> Option<String> {
        None
    }

    /// Whether logins to this backend name a role that rate-limit quotas can single out
    /// (`sys/quotas/rate-limit` with `role`), found by [`Backend::login_role`].
    fn resolves_login_roles(&self) -> bool {
        false
    }

    /// The role a login request (`data`, its body) names, if any; `storage` is the mount's.
    async fn login_role(
        &self,
        _storage: &Storage,
        _data: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<String> {
        None
    }

    /// Background housekeeping, called about once a minute (AppRole removes expired SecretIDs
    /// here). Returns how many entries it removed.
    async fn periodic(&self, _storage: &Storage) -> Result<usize> {
        Ok(0)
    }

    /// Re-derives TTL limits for a token this backend issued, at renewal time.
    /// Returns `(ttl, max_ttl, period)`; the default keeps what the token was issued with.
    async fn renew_limits(
        &self,
        _storage: &Storage,
        _internal: &BTreeMap<String, String>,
        issued: (i64, i64, i64),
    ) -> Result<(i64, i64, i64)> {
        Ok(issued)
    }
}
