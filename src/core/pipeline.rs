//! The one request pipeline every logical request passes through, in Vault's order:
//! route → canonical names → special paths → token (lookup, CIDR, use count) → existence check → ACL (+ sudo) →
//! backend → token issue for logins → deferred revocation of used-up tokens.

use ipnet::IpNet;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use super::Core;
use super::mounts::Mounted;
use super::observer::{MountInfo, RequestRecord, Trace};
use crate::error::{Error, Result};
use crate::logical::mount::MountTableKind;
use crate::logical::{Operation, Request, Response, SpecialPaths};
use crate::policy::AclRequest;
use crate::secret::Secret;
use crate::telemetry;
use crate::token::TokenEntry;

/// A request as the HTTP layer hands it over. Its `Debug` shows parameter names, never values.
pub struct IncomingRequest {
    /// Operation from the method (PUT/POST arrive as `Update`).
    pub operation: Operation,
    /// Normalised path relative to `/v1/` (no leading or trailing `/`).
    pub path: String,
    /// Parameters.
    pub data: Map<String, Value>,
    /// Token from `X-Vault-Token` or `Authorization: Bearer`.
    pub client_token: Option<Secret>,
    /// Peer address.
    pub client_addr: Option<IpAddr>,
    /// Peer port (for the audit log's `remote_port`).
    pub client_port: Option<u16>,
    /// `X-Vault-Wrap-TTL` in seconds.
    pub wrap_ttl: Option<i64>,
    /// Content-Type header.
    pub content_type: Option<String>,
    /// The request headers `sys/config/auditing/request-headers` names, for the audit entries:
    /// (lower-case name, HMAC'd, its values in order), sorted by name.
    pub audited_headers: Vec<(String, bool, Vec<String>)>,
    /// On an HA standby only: every request header (name, unused, values), for the standby to
    /// pick the audited ones by the stored settings (`core/standby.rs`). Never audited as is.
    pub standby_headers: Vec<(String, bool, Vec<String>)>,
}

impl std::fmt::Debug for IncomingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingRequest")
            .field("operation", &self.operation)
            .field("path", &self.path)
            .field("data_keys", &crate::logical::redacted_keys(&self.data))
            .field("client_token", &self.client_token)
            .field("client_addr", &self.client_addr)
            .field("wrap_ttl", &self.wrap_ttl)
            .finish_non_exhaustive()
    }
}

/// What the HTTP layer learns about a request for its metrics and its log line, whatever the
/// outcome.
#[derive(Debug, Default)]
pub struct RequestFacts {
    /// The request id (only filled in while debug logging is on, or when asked for).
    pub request_id: Option<String>,
    /// Set by the HTTP layer when it will log the request line (its logger, `http`, may be at
    /// debug while the core's is not).
    pub want_request_id: bool,
    /// Type of the mount the request was routed to (`kv`, `approle`, `system`, ...).
    pub mount_type: Option<&'static str>,
    /// Whether it was a login (an unauthenticated path of an auth method).
    pub login: bool,
    /// Headers the HTTP layer adds to the response (the rate-limit quota's).
    pub extra_headers: Vec<(&'static str, String)>,
}

impl RequestFacts {
    /// A fresh request id, kept here when the HTTP layer wants it (or the debug log line does).
    pub(super) fn new_request_id(&mut self) -> String {
        let id = crate::ids::uuid_v4();
        if self.want_request_id || tracing::enabled!(tracing::Level::DEBUG) {
            self.request_id = Some(id.clone());
        }
        id
    }
}

/// What the pipeline produced. Its `Debug` never shows the `auth` block (it holds a token).
pub struct Outcome {
    /// The request id.
    pub request_id: String,
    /// The operation that ran.
    pub operation: Operation,
    /// The backend's response (None → 204 or 404).
    pub response: Option<Response>,
    /// The `auth` block, when a token was issued.
    pub auth: Option<Value>,
    /// Type of the mount that served the request.
    pub mount_type: String,
}

pub(super) fn cidr_allows(cidrs: &[String], addr: Option<IpAddr>) -> bool {
    if cidrs.is_empty() {
        return true;
    }
    let Some(ip) = addr else { return false };
    cidrs.iter().any(|c| {
        c.parse::<IpNet>()
            .map(|n| n.contains(&ip))
            .or_else(|_| c.parse::<IpAddr>().map(|a| a == ip))
            .unwrap_or(false)
    })
}

impl Core {
    /// Resolves and authenticates the token of a request; `Ok(None)` when absent or invalid.
    pub async fn authenticate(
        &self,
        token: Option<&Secret>,
        addr: Option<IpAddr>,
    ) -> Result<Option<Arc<TokenEntry>>> {
        let Some(tok) = token else { return Ok(None) };
        let Some(entry) = self.tokens.lookup_shared(tok.expose()).await? else {
            return Ok(None);
        };
        if entry.ttl != 0 && !cidr_allows(&entry.bound_cidrs, addr) {
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// Runs one logical request through the pipeline; an installed observer sees it (and its
    /// outcome) whatever step ends it.
    pub async fn handle_request(&self, inc: IncomingRequest) -> Result<Outcome> {
        self.handle_request_with(inc, &mut RequestFacts::default())
            .await
    }

    /// [`Core::handle_request`], also filling in `facts`, and timing the request as Vault's
    /// `vault.core.handle_request` (or `handle_login_request`).
    pub async fn handle_request_with(
        &self,
        inc: IncomingRequest,
        facts: &mut RequestFacts,
    ) -> Result<Outcome> {
        static REQUEST: OnceLock<metrics::Histogram> = OnceLock::new();
        static LOGIN: OnceLock<metrics::Histogram> = OnceLock::new();
        let standby = self.is_sealed();
        if standby && !(self.is_standby() && super::standby::serves(&inc)) {
            // `GET sys/metrics?list=true` on a standby: about this node, not served here.
            if self.is_standby() && inc.path == "sys/metrics" {
                return Err(Error::bad(super::standby::LOCAL_ONLY));
            }
            return Err(Error::Sealed);
        }
        let start = std::time::Instant::now();
        let result = if standby {
            self.handle_standby(inc, facts).await
        } else {
            self.handle_untimed(inc, facts).await
        };
        let timer = if facts.login {
            telemetry::cached(&LOGIN, telemetry::HANDLE_LOGIN_REQUEST)
        } else {
            telemetry::cached(&REQUEST, telemetry::HANDLE_REQUEST)
        };
        if let Some(h) = timer {
            h.record(telemetry::ms_since(start));
        }
        result
    }

    async fn handle_untimed(
        &self,
        inc: IncomingRequest,
        facts: &mut RequestFacts,
    ) -> Result<Outcome> {
        let request_id = facts.new_request_id();
        let mut trace = self.trace(&inc.path, || RequestRecord::incoming(&request_id, &inc));
        let mut revoke = None;
        let mut result = self
            .handle_traced(request_id, inc, &mut trace, &mut revoke, facts)
            .await;
        if let Some(t) = trace
            && let Err(e) = t.finish(&mut result).await
            && result.is_ok()
        {
            result = Err(e);
        }
        if let Some(key) = revoke {
            // The token's last use: revoke it (and its children) now that the request is done.
            if let Err(e) = self.revoke_token_tree(&key).await {
                tracing::error!(error = %e, "failed to revoke a token after its last use");
            }
        }
        result
    }

    /// The pipeline's steps up to the backend: path checks, route, canonical names, special
    /// paths, token; then `run`, then wrapping. `revoke` receives the key of a token whose last
    /// use this request was.
    async fn handle_traced(
        &self,
        request_id: String,
        inc: IncomingRequest,
        trace: &mut Option<Trace>,
        revoke: &mut Option<String>,
        facts: &mut RequestFacts,
    ) -> Result<Outcome> {
        let op = inc.operation;
        let mut full_path = inc.path;
        if op == Operation::List && !full_path.ends_with('/') {
            full_path.push('/');
        }
        if matches!(op, Operation::Update | Operation::Patch) && full_path.ends_with('/') {
            return Err(Error::bad("cannot write to a path ending in '/'"));
        }

        let table = self.mount_table();
        let mounted = table.route(&full_path).cloned();
        drop(table);
        let mut rel = mounted
            .as_ref()
            .map(|m| {
                full_path
                    .strip_prefix(m.api_path.as_str())
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default();
        // A name the backend canonicalises (`ADMIN` → `admin`, ` editor` → `editor`) is
        // canonicalised in the path itself, so that the existence check and the ACL see the object
        // the backend acts on.
        if let Some(m) = &mounted
            && let Some(canonical) = m.backend.canonical_path(&rel)
        {
            full_path = format!("{}{canonical}", m.api_path);
            rel = canonical;
        }
        if let Some(t) = trace.as_mut() {
            t.record.path.clone_from(&full_path);
            t.record.mount = mounted.as_ref().map(|m| MountInfo {
                kind: m.entry.kind.clone(),
                accessor: m.entry.accessor.clone(),
                path: m.api_path.clone(),
                non_hmac_request_keys: m.entry.config.audit_non_hmac_request_keys.clone(),
                non_hmac_response_keys: m.entry.config.audit_non_hmac_response_keys.clone(),
            });
        }
        let special = mounted
            .as_ref()
            .map(|m| m.backend.special_paths())
            .unwrap_or_default();
        let unauthenticated = mounted.is_some() && special.is_unauthenticated(&rel);
        if let Some(m) = &mounted {
            facts.mount_type = crate::mounts::REGISTRY
                .iter()
                .find(|b| b.name == m.entry.kind)
                .map(|b| b.name);
            facts.login = unauthenticated && m.entry.table == MountTableKind::Auth;
        }

        // Vault checks the wrapping token of an unwrap, rewrap or lookup before anything else,
        // and audits a refusal as a request entry alone.
        if matches!(
            full_path.as_str(),
            "sys/wrapping/unwrap" | "sys/wrapping/rewrap" | "sys/wrapping/lookup"
        ) && let Err(e) = self
            .check_wrapping_token(&inc.data, inc.client_token.as_ref())
            .await
        {
            if let Some(mut t) = trace.take() {
                t.record.wrapping_refused = true;
                t.record.errors = vec![super::wrapping::INVALID_WRAPPING_TOKEN.to_owned()];
                // The accessor of the request's own token, when it is a live one.
                if let Some(h) = inc.client_token.as_ref()
                    && let Ok(Some(_)) = self.tokens.lookup_shared(h.expose()).await
                {
                    t.record.client_token_accessor =
                        Some(Secret::new(self.tokens.accessor_of(h.expose())));
                }
                // The refusal stands whether or not a device took the entry (as in Vault).
                let _ = t.announce().await;
            }
            return Err(e);
        }

        // Unwrap and rewrap with the wrapping token in the header: a bad token is a 400, not a 403.
        let wrapping_in_header = matches!(
            full_path.as_str(),
            "sys/wrapping/unwrap" | "sys/wrapping/rewrap"
        ) && inc
            .data
            .get("token")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        let token_error = || {
            if wrapping_in_header {
                Error::bad(super::wrapping::INVALID_WRAPPING_TOKEN)
            } else {
                Error::PermissionDenied
            }
        };

        // Token: required unless the path is unauthenticated (where a bad token is ignored).
        let mut token: Option<Arc<TokenEntry>> = None;
        let mut token_check = None;
        if !unauthenticated {
            let checking = std::time::Instant::now();
            let entry = self
                .authenticate(inc.client_token.as_ref(), inc.client_addr)
                .await?
                .ok_or_else(token_error)?;
            let (entry, last) = self
                .tokens
                .use_token(entry)
                .await?
                .ok_or_else(token_error)?;
            if last {
                *revoke = Some(entry.key.clone());
            }
            token_check = Some(TokenCheck {
                started: checking,
                lookup: checking.elapsed(),
            });
            if let Some(t) = trace.as_mut() {
                // Vault's entries show the use count before this request's use.
                t.record.token = Some(if entry.num_uses == 0 {
                    entry.clone()
                } else {
                    let mut before = (*entry).clone();
                    before.num_uses = if last { 1 } else { entry.num_uses + 1 };
                    Arc::new(before)
                });
                t.record.client_token_accessor = inc
                    .client_token
                    .as_ref()
                    .map(|c| Secret::new(self.tokens.accessor_of(c.expose())));
            }
            token = Some(entry);
        }
        let display_name = token
            .as_ref()
            .map(|t| t.display_name.clone())
            .unwrap_or_default();
        let wrap_ttl = inc.wrap_ttl;

        let ran = self
            .run(
                RunContext {
                    request_id: &request_id,
                    operation: op,
                    full_path: full_path.clone(),
                    rel,
                    mounted,
                    special,
                    data: inc.data,
                    token,
                    token_check,
                    client_token: inc.client_token,
                    client_addr: inc.client_addr,
                    wrap_ttl,
                    content_type: inc.content_type,
                },
                trace,
            )
            .await?;
        let out = Outcome {
            request_id,
            operation: ran.operation,
            response: ran.response,
            auth: ran.auth,
            mount_type: ran.mount_type,
        };
        match wrap_ttl {
            Some(ttl) => self.wrap_outcome(out, ttl, &full_path, &display_name).await,
            None => Ok(out),
        }
    }

    /// The steps from the existence check to the backend and the token issued for a login.
    async fn run(&self, ctx: RunContext<'_>, trace: &mut Option<Trace>) -> Result<Ran> {
        let Some(m) = ctx.mounted else {
            // Without a mount only a root token learns that the route does not exist (help, which
            // no policy governs, tells any valid token, as OpenBao's does).
            let is_root = ctx.token.as_ref().is_some_and(|t| t.is_root());
            if !is_root && ctx.operation != Operation::Help {
                return Err(Error::AclDenied);
            }
            if let Some(t) = trace.as_mut().filter(|_| is_root) {
                t.record.granting_policies = vec![crate::policy::root_policy_name()];
            }
            return Err(Error::NoRoute(
                ctx.full_path.trim_end_matches('/').to_string(),
            ));
        };

        let mut req = Request {
            id: ctx.request_id.to_string(),
            operation: ctx.operation,
            path: ctx.rel,
            full_path: ctx.full_path,
            mount: m.entry.clone(),
            data: ctx.data,
            storage: m.storage.clone(),
            client_token: ctx.client_token,
            token: ctx.token.clone(),
            client_addr: ctx.client_addr,
            wrap_ttl: ctx.wrap_ttl,
            content_type: ctx.content_type,
        };

        // Vault runs the existence check inside its token check: input it refuses there is
        // audited without the token's details (and the operation stays an update).
        let exists = match req.operation {
            Operation::Update => match m.backend.existence_check(&req).await {
                Ok(e) => e,
                Err(e) => {
                    if let Some(t) = trace.as_mut() {
                        t.record.token = None;
                        t.record.token_check_failed = true;
                    }
                    return Err(e);
                }
            },
            _ => None,
        };
        if exists == Some(false) {
            req.operation = Operation::Create;
            if let Some(t) = trace.as_mut() {
                t.record.operation = Operation::Create;
            }
        }

        if let Some(t) = &ctx.token {
            let fetching = std::time::Instant::now();
            let acl = self.policies.acl_for(&t.policies)?;
            let fetched = fetching.elapsed();
            let result = acl.allow_operation(&AclRequest {
                operation: req.operation,
                path: &req.full_path,
                data: Some(&req.data),
                wrap_ttl: req.wrap_ttl.and_then(|w| u64::try_from(w).ok()),
            });
            if let Some(check) = &ctx.token_check {
                check.record(fetched);
            }
            if !result.allowed {
                return Err(Error::AclDenied);
            }
            if let Some(t) = trace.as_mut() {
                t.record.granting_policies = acl.granting_policies(req.operation, &req.full_path);
            }
            // Help is governed by no policy, sudo included (as in OpenBao).
            if ctx.special.is_root(&req.path)
                && !result.root_privs
                && req.operation != Operation::Help
            {
                return Err(Error::AclDenied);
            }
        }

        if let Some(t) = trace.as_mut() {
            t.announce().await?;
        }
        let route_start = std::time::Instant::now();
        let routed = m.backend.handle_request(&req).await;
        if let Some(h) = m.route_timers.get(&m, req.operation) {
            h.record(telemetry::ms_since(route_start));
        }
        let mut response = routed?;
        let mut auth_block = None;
        if let Some(resp) = response.as_mut() {
            if let Some(auth) = resp.auth.take() {
                let issued = self
                    .issue_login_token(&m.entry, &req.full_path, &auth)
                    .await?;
                auth_block = Some(issued.auth_block());
                if let Some(t) = trace.as_mut() {
                    t.issued_token = Some(issued.entry.clone());
                    t.entity_created = issued.entity_created;
                }
            } else if let Some(block) = resp.issued_auth.take() {
                auth_block = Some(block);
                if let Some(t) = trace.as_mut() {
                    t.issued_token = resp.issued_entry.take();
                    t.renewed = resp.renewed;
                }
            }
        }
        Ok(Ran {
            operation: req.operation,
            response,
            auth: auth_block,
            mount_type: m.entry.kind.clone(),
        })
    }
}

/// A routed, authenticated request: what `run` needs.
struct RunContext<'a> {
    request_id: &'a str,
    operation: Operation,
    full_path: String,
    rel: String,
    mounted: Option<Arc<Mounted>>,
    special: SpecialPaths,
    data: Map<String, Value>,
    token: Option<Arc<TokenEntry>>,
    /// When the token check began and how long the token lookup took.
    token_check: Option<TokenCheck>,
    client_token: Option<Secret>,
    client_addr: Option<IpAddr>,
    wrap_ttl: Option<i64>,
    content_type: Option<String>,
}

/// The span Vault's `CheckToken` times: the token lookup (its use charged), the existence
/// check, the policies' ACL and its decision.
struct TokenCheck {
    started: std::time::Instant,
    lookup: std::time::Duration,
}

impl TokenCheck {
    /// At the ACL decision: `vault.core.check_token` (the whole span) and
    /// `vault.core.fetch_acl_and_token` (the lookup plus `acl_fetch`, getting the ACL).
    fn record(&self, acl_fetch: std::time::Duration) {
        static CHECK: OnceLock<metrics::Histogram> = OnceLock::new();
        static FETCH: OnceLock<metrics::Histogram> = OnceLock::new();
        if let Some(h) = telemetry::cached(&CHECK, telemetry::CORE_CHECK_TOKEN) {
            h.record(telemetry::ms_since(self.started));
        }
        if let Some(h) = telemetry::cached(&FETCH, telemetry::CORE_FETCH_ACL_AND_TOKEN) {
            h.record((self.lookup + acl_fetch).as_secs_f64() * 1000.0);
        }
    }
}

/// What `run` produced.
struct Ran {
    operation: Operation,
    response: Option<Response>,
    auth: Option<Value>,
    mount_type: String,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("request_id", &self.request_id)
            .field("operation", &self.operation)
            .field("response", &self.response)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secret_values() {
        let mut data = serde_json::Map::new();
        data.insert("password".into(), Value::String("hunter2-canary".into()));
        let inc = IncomingRequest {
            operation: Operation::Update,
            path: "secret/data/x".into(),
            data: data.clone(),
            client_token: Some(Secret::new("hvs.token-canary")),
            client_addr: None,
            client_port: None,
            wrap_ttl: None,
            content_type: None,
            audited_headers: Vec::new(),
            standby_headers: Vec::new(),
        };
        let resp = Response::data(data);
        let out = Outcome {
            request_id: "r".into(),
            operation: Operation::Read,
            response: Some(resp.clone()),
            auth: Some(serde_json::json!({"client_token": "hvs.auth-canary"})),
            mount_type: "kv".into(),
        };
        let printed = format!("{inc:?} {resp:?} {out:?}");
        for canary in ["hunter2-canary", "hvs.token-canary", "hvs.auth-canary"] {
            assert!(!printed.contains(canary), "{printed}");
        }
        assert!(printed.contains("password"));
    }

    #[test]
    fn cidr_binding() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(cidr_allows(&[], Some(ip)));
        assert!(cidr_allows(&["10.0.0.0/8".into()], Some(ip)));
        assert!(!cidr_allows(&["192.168.0.0/16".into()], Some(ip)));
        assert!(cidr_allows(&["10.1.2.3".into()], Some(ip)));
        assert!(!cidr_allows(&["10.0.0.0/8".into()], None));
    }
}
