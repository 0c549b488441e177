//! Rate-limit quotas at the door (`core/quotas.rs` holds them): a request over its quota gets
//! Vault's 429 `request path "<path>": rate limit quota exceeded` before it is decoded,
//! authenticated or audited (audited only with `enable_rate_limit_audit_logging`). A login to an
//! auth mount with role quotas is decided once its body names the role.

use std::net::IpAddr;

use axum::http::Method;

use super::{AppState, HttpResponse, error_response};
use crate::core::pipeline::RequestFacts;
use crate::core::quotas;
use crate::error::Error;

/// What the door says of a request.
pub(super) enum Gate {
    /// It may go on.
    Pass,
    /// Refused: the 429.
    Refuse(HttpResponse),
    /// A login to `mount`, which has role quotas: decided by [`check_login`] once its body is read.
    Login(String),
}

/// The quota check before the body is read.
pub(super) async fn check(
    state: &AppState,
    method: &Method,
    path: &str,
    client: Option<IpAddr>,
    facts: &mut RequestFacts,
) -> Gate {
    let set = state.core.quotas();
    if set.is_empty() || set.exempt(path) {
        return Gate::Pass;
    }
    let table = state.core.mount_table();
    // A standby has no mount table; what it serves itself is under `sys/`.
    let unmounted = if state.core.is_standby() && path.starts_with("sys/") {
        "sys/"
    } else {
        ""
    };
    let mount = table.route(path).map_or(unmounted, |m| m.api_path.as_str());
    if set.has_role_quotas(mount) && path.strip_prefix(mount) == Some("login") {
        return Gate::Login(mount.to_owned());
    }
    decide(state, method, path, mount, None, client, facts).await
}

/// The quota check of a login to `mount` (it has role quotas), with its decoded body.
pub(super) async fn check_login(
    state: &AppState,
    method: &Method,
    path: &str,
    mount: &str,
    data: &serde_json::Map<String, serde_json::Value>,
    client: Option<IpAddr>,
    facts: &mut RequestFacts,
) -> Option<HttpResponse> {
    let mounted = state.core.mount_table().get(mount).cloned();
    let role = match mounted {
        Some(m) => m.backend.login_role(&m.storage, data).await,
        None => None,
    };
    match decide(state, method, path, mount, role.as_deref(), client, facts).await {
        Gate::Refuse(resp) => Some(resp),
        Gate::Pass | Gate::Login(_) => None,
    }
}

async fn decide(
    state: &AppState,
    method: &Method,
    path: &str,
    mount: &str,
    role: Option<&str>,
    client: Option<IpAddr>,
    facts: &mut RequestFacts,
) -> Gate {
    let set = state.core.quotas();
    let Some(limiter) = set.find(path, mount, role).cloned() else {
        return Gate::Pass;
    };
    let verdict = limiter.take(client, quotas::now_nanos(&*state.core.clock));
    if set.config.enable_rate_limit_response_headers {
        if let Some((limit, remaining, reset)) = verdict.window {
            facts.extra_headers.extend([
                ("x-ratelimit-limit", limit.to_string()),
                ("x-ratelimit-remaining", remaining.to_string()),
                ("x-ratelimit-reset", reset.to_string()),
            ]);
        }
        if let Some(after) = verdict.retry_after {
            facts.extra_headers.push(("retry-after", after.to_string()));
        }
    }
    if verdict.allowed {
        return Gate::Pass;
    }
    metrics::counter!(crate::telemetry::QUOTA_RATE_LIMIT_VIOLATION, "name" => limiter.rule.name.clone())
        .increment(1);
    let e = Error::Coded(
        429,
        format!("request path {path:?}: rate limit quota exceeded"),
    );
    tracing::trace!(request.path = %super::redacted_path(path), quota = %limiter.rule.name, "request refused by a rate limit quota");
    if set.config.enable_rate_limit_audit_logging
        && let Some(id) = state
            .core
            .observe_rejection(method.as_str(), path, client, &e)
            .await
    {
        facts.request_id = Some(id);
    }
    Gate::Refuse(error_response(&e))
}
