//! `sys/quotas/config` and `sys/quotas/rate-limit[/<name>]`: Vault's rate-limit quotas (the
//! settings and the checks live in `core/quotas.rs`, the HTTP layer applies them before anything
//! else runs, `http/quota.rs`). As in Vault, these are ordinary `sys/` paths (no `sudo`).

use serde_json::{Value, json};

use super::SystemBackend;
use crate::core::quotas::{QuotaConfig, RateLimitRequest};
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<SystemBackend>;

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        P::new("quotas/config$")
            .field(
                "rate_limit_exempt_paths",
                T::StringSlice,
                "Paths no rate-limit quota applies to (exact, or a prefix ending in *).",
            )
            .field(
                "enable_rate_limit_audit_logging",
                T::Bool,
                "Write requests refused by a rate-limit quota to the audit devices.",
            )
            .field(
                "enable_rate_limit_response_headers",
                T::Bool,
                "Add the X-Ratelimit-* headers (and Retry-After when refused) to responses.",
            )
            .on(Op::Read, |b, r, d| Box::pin(b.quota_config_read(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.quota_config_write(r, d)))
            .help("Create, update and read the quota configuration."),
        P::new("quotas/rate-limit/?$")
            .on(Op::List, |b, r, d| Box::pin(b.rate_limits(r, d)))
            .help("Lists the names of all the rate limit quotas."),
        P::new(r"quotas/rate-limit/(?P<quota>\w(([\w.-]+)?\w)?)$")
            .field("quota", T::Str, "Name of the quota rule.")
            .field("name", T::Str, "Name of the quota rule (the path's).")
            .field("type", T::Str, "Type of the quota rule.")
            .field(
                "path",
                T::Str,
                "The mount or path under a mount it applies to; empty: the whole server.",
            )
            .field(
                "role",
                T::Str,
                "The login role it applies to (path must then be an auth method with roles).",
            )
            .field("rate", T::Raw, "Requests allowed per interval (positive).")
            .field("interval", T::DurationSecond, "The interval (default 1s).")
            .field(
                "block_interval",
                T::DurationSecond,
                "How long a client that went over is refused.",
            )
            .field(
                "inheritable",
                T::Bool,
                "Namespace inheritance (kept and shown).",
            )
            .on(Op::Read, |b, r, d| Box::pin(b.rate_limit_read(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.rate_limit_write(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.rate_limit_delete(r, d)))
            .help("Get, create or update a rate limit quota."),
    ]
}

/// `rate` as Vault's `TypeFloat` reads it: a number or a numeric string.
fn rate(v: Option<&Value>) -> Result<f64> {
    let parsed = match v {
        None | Some(Value::Null) => Some(0.0),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    parsed.ok_or_else(|| {
        Error::bad("Field validation failed: error converting input for field \"rate\": cannot parse value as 'float'")
    })
}

impl SystemBackend {
    async fn quota_config_read(
        &self,
        _req: &Request,
        _d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let core = self.core()?;
        let set = core.quotas();
        let c = &set.config;
        Ok(Some(Response::json(json!({
            "enable_rate_limit_audit_logging": c.enable_rate_limit_audit_logging,
            "enable_rate_limit_response_headers": c.enable_rate_limit_response_headers,
            "rate_limit_exempt_paths": c.rate_limit_exempt_paths,
        }))))
    }

    /// As Vault: every field takes the value given, or its zero value when absent.
    async fn quota_config_write(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let config = QuotaConfig {
            rate_limit_exempt_paths: d.get_list("rate_limit_exempt_paths")?.unwrap_or_default(),
            enable_rate_limit_audit_logging: d
                .get_bool("enable_rate_limit_audit_logging")?
                .unwrap_or(false),
            enable_rate_limit_response_headers: d
                .get_bool("enable_rate_limit_response_headers")?
                .unwrap_or(false),
        };
        self.core()?.set_quota_config(config).await?;
        Ok(None)
    }

    async fn rate_limits(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let names: Vec<String> = core.quotas().rules().map(|r| r.name.clone()).collect();
        Ok(Some(Response::list(names)))
    }

    async fn rate_limit_read(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let name = d.get_str("quota")?.unwrap_or_default();
        let set = core.quotas();
        let Some(limiter) = set.get(&name) else {
            return Ok(None);
        };
        let r = &limiter.rule;
        Ok(Some(Response::json(json!({
            "type": "rate-limit",
            "name": r.name,
            "path": r.path(),
            "role": r.role,
            // Go writes a whole float64 without a fraction (`10`, not `10.0`).
            "rate": if r.rate.fract() == 0.0 && r.rate.abs() < 1e15 { json!(r.rate as i64) } else { json!(r.rate) },
            "interval": r.interval,
            "block_interval": r.block_interval,
            "inheritable": r.inheritable,
        }))))
    }

    async fn rate_limit_write(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let request = RateLimitRequest {
            name: d.get_str("quota")?.unwrap_or_default(),
            path: d.get_str("path")?.unwrap_or_default(),
            role: d.get_str("role")?.unwrap_or_default(),
            rate: rate(d.get_raw("rate"))?,
            interval: d.get_duration("interval")?.unwrap_or(0),
            block_interval: d.get_duration("block_interval")?.unwrap_or(0),
            inheritable: d.get_bool("inheritable")?,
        };
        self.core()?.write_rate_limit(request).await?;
        Ok(None)
    }

    async fn rate_limit_delete(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let name = d.get_str("quota")?.unwrap_or_default();
        self.core()?.delete_rate_limit(&name).await?;
        Ok(None)
    }
}
