//! `sys/capabilities*`, `sys/internal/ui/mounts/<path>` (the CLI's kv preflight) and
//! `sys/internal/ui/resultant-acl` (the caller's merged ACL, as Vault's UI reads it).

use serde_json::{Map, Value, json};

use super::SystemBackend;
use crate::error::{Error, Result, multierror};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};
use crate::token::TokenEntry;

type P = PathSpec<SystemBackend>;

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    let cap_fields = |p: PathSpec<SystemBackend>| {
        p.field("token", T::Str, "Token to check.")
            .field("accessor", T::Str, "Accessor of the token to check.")
            .field("path", T::CommaStringSlice, "Deprecated single path.")
            .field("paths", T::CommaStringSlice, "Paths to check.")
    };
    vec![
        cap_fields(P::new("capabilities-self$")).on(Op::Update, |b, r, d| {
            Box::pin(b.capabilities(r, d, Who::Caller))
        }),
        cap_fields(P::new("capabilities-accessor$")).on(Op::Update, |b, r, d| {
            Box::pin(b.capabilities(r, d, Who::Accessor))
        }),
        cap_fields(P::new("capabilities$")).on(Op::Update, |b, r, d| {
            Box::pin(b.capabilities(r, d, Who::Token))
        }),
        P::new("internal/ui/mounts/?$").on(Op::Read, |b, r, d| Box::pin(b.ui_mounts_list(r, d))),
        P::new("internal/ui/resultant-acl$")
            .on(Op::Read, |b, r, d| Box::pin(b.resultant_acl(r, d))),
        P::new("(?:internal/ui/mounts|mounts-all)/(?P<path>.+)$")
            .field("path", T::Str, "Path to look up.")
            .on(Op::Read, |b, r, d| Box::pin(b.ui_mount_read(r, d))),
    ]
}

#[derive(Clone, Copy)]
enum Who {
    Caller,
    Token,
    Accessor,
}

impl SystemBackend {
    async fn capabilities(
        &self,
        req: &Request,
        d: &FieldData<'_>,
        who: Who,
    ) -> Result<Option<Response>> {
        let core = self.core()?;
        let entry: Option<TokenEntry> = match who {
            // Vault refuses a token whose last use this very request spent.
            Who::Caller => match req.token.as_deref() {
                Some(t) if t.num_uses == crate::token::REVOCATION_PENDING => {
                    return Err(Error::bad(multierror("invalid token")));
                }
                t => t.cloned(),
            },
            // Vault answers a missing token with a 500 and an unknown one with a 400, after
            // the check for paths.
            Who::Token => {
                let tok = d.get_str("token")?.unwrap_or_default();
                if tok.is_empty() {
                    return Err(Error::Coded(500, multierror("no token found")));
                }
                core.tokens.lookup(&tok).await?
            }
            Who::Accessor => {
                let acc = d.get_str("accessor")?.unwrap_or_default();
                if acc.is_empty() {
                    return Err(Error::bad("missing accessor"));
                }
                Some(
                    core.tokens
                        .lookup_accessor(&acc)
                        .await?
                        .ok_or_else(|| Error::bad(multierror("invalid accessor")))?,
                )
            }
        };
        let mut paths = d.get_list("paths")?.unwrap_or_default();
        paths.extend(d.get_list("path")?.unwrap_or_default());
        if paths.is_empty() {
            return Err(Error::bad("paths must be supplied"));
        }
        let Some(entry) = entry else {
            return Err(Error::bad(multierror("invalid token")));
        };
        let mut data = Map::new();
        for p in &paths {
            let caps = core
                .policies
                .acl_for(&entry.policies)?
                .capabilities(p.trim_start_matches('/'));
            data.insert(p.clone(), json!(caps));
        }
        if paths.len() == 1
            && let Some(first) = paths.first().and_then(|p| data.get(p)).cloned()
        {
            data.insert("capabilities".into(), first);
        }
        Ok(Some(Response {
            data: Some(data),
            inject_top_level: true,
            ..Default::default()
        }))
    }

    /// Vault's shape: `root`, or the exact and prefix (`glob`) rules with their capabilities
    /// in Vault's order (`deny` alone when denied or empty), wrapping TTLs in seconds and
    /// parameter constraints. Segment-wildcard (`+`) rules are not listed, as in Vault.
    async fn resultant_acl(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let Some(entry) = req.token.as_ref() else {
            return Ok(None);
        };
        let acl = self.core()?.policies.acl_for(&entry.policies)?;
        if acl.is_root() {
            return Ok(Some(Response::json(json!({ "root": true }))));
        }
        let (mut exact, mut glob) = (Map::new(), Map::new());
        for rule in acl.rules() {
            let target = match rule.kind {
                crate::policy::PathKind::Exact => &mut exact,
                crate::policy::PathKind::Prefix => &mut glob,
                crate::policy::PathKind::SegmentWildcard => continue,
            };
            let mut out = Map::new();
            out.insert(
                "capabilities".into(),
                json!(rule.capabilities.vault_order()),
            );
            if let Some(ttl) = rule.min_wrapping_ttl {
                out.insert("min_wrapping_ttl".into(), json!(ttl));
            }
            if let Some(ttl) = rule.max_wrapping_ttl {
                out.insert("max_wrapping_ttl".into(), json!(ttl));
            }
            if !rule.allowed_parameters.is_empty() {
                out.insert("allowed_parameters".into(), json!(rule.allowed_parameters));
            }
            if !rule.denied_parameters.is_empty() {
                out.insert("denied_parameters".into(), json!(rule.denied_parameters));
            }
            if !rule.required_parameters.is_empty() {
                out.insert(
                    "required_parameters".into(),
                    json!(rule.required_parameters),
                );
            }
            target.insert(rule.path, Value::Object(out));
        }
        Ok(Some(Response::json(json!({
            "exact_paths": exact,
            "glob_paths": glob,
            "root": false,
        }))))
    }

    async fn ui_mounts_list(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let entry = core
            .authenticate(req.client_token.as_ref(), req.client_addr)
            .await?;
        let acl = match &entry {
            Some(e) => Some(core.policies.acl_for(&e.policies)?),
            None => None,
        };
        let (mut secret, mut auth) = (Map::new(), Map::new());
        for m in core.mount_table().iter() {
            let visible = acl
                .as_ref()
                .is_some_and(|a| a.has_mount_access(&m.api_path));
            if !visible {
                continue;
            }
            match m.entry.table {
                crate::core::mounts::MountTableKind::Secret => {
                    secret.insert(m.entry.path.clone(), m.entry.to_json())
                }
                crate::core::mounts::MountTableKind::Auth => {
                    auth.insert(m.entry.path.clone(), m.entry.to_json())
                }
            };
        }
        Ok(Some(Response::json(
            json!({ "secret": secret, "auth": auth }),
        )))
    }

    async fn ui_mount_read(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        // The path is unauthenticated for routing, but Vault still demands a valid token here.
        let entry = core
            .authenticate(req.client_token.as_ref(), req.client_addr)
            .await?
            .ok_or(Error::PermissionDenied)?;
        let path = d.get_str("path")?.unwrap_or_default();
        let path = format!("{}/", path.trim_matches('/'));
        let denied = || {
            Error::Coded(
                403,
                format!(
                    "preflight capability check returned 403, please ensure client's policies grant access to path {path:?}"
                ),
            )
        };
        let table = core.mount_table();
        let Some(m) = table.route(&path) else {
            return Err(denied());
        };
        let acl = core.policies.acl_for(&entry.policies)?;
        if !acl.has_mount_access(&m.api_path) {
            return Err(denied());
        }
        let mut data = m.entry.to_json();
        if let Value::Object(o) = &mut data {
            o.insert("path".into(), json!(m.api_path));
        }
        Ok(Some(Response::json(data)))
    }
}
