//! `sys/leases/*`: lookup, list, renew and revoke leases by id or prefix.
//!
//! Coffer's only leases are tokens' (kv has none): a token's lease id is its creation path and
//! salted id (`auth/approle/login/h3f…`), kept in the token store's lease index. As in Vault,
//! tokens are renewed through `auth/token/renew*`, not here; revoking a token's lease revokes the
//! token and its children. LIST (sudo) walks the index like a folder tree.

use serde_json::{Value, json};

use super::SystemBackend;
use crate::clock::{from_unix_nanos, rfc3339_nanos};
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<SystemBackend>;

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    let revoke_fields = |p: P| {
        p.field("lease_id", T::Str, "The lease to revoke.")
            .field("url_lease_id", T::Str, "The lease to revoke (in the path).")
            .field("sync", T::Bool, "Revoke before answering (default true).")
    };
    let renew_fields = |p: P| {
        p.field("lease_id", T::Str, "The lease to renew.")
            .field("url_lease_id", T::Str, "The lease to renew (in the path).")
            .field("increment", T::DurationSecond, "Requested extension.")
    };
    vec![
        P::new("leases/lookup$")
            .field("lease_id", T::Str, "The lease to look up.")
            .on(Op::Update, |b, r, d| Box::pin(b.lease_lookup(r, d))),
        P::new("leases/lookup/(?P<prefix>.*)$")
            .field("prefix", T::Str, "Prefix of the lease ids to list.")
            .on(Op::List, |b, r, d| Box::pin(b.lease_list(r, d))),
        renew_fields(P::new("leases/renew$"))
            .on(Op::Update, |b, r, d| Box::pin(b.lease_renew(r, d))),
        renew_fields(P::new("leases/renew/(?P<url_lease_id>.+)$"))
            .on(Op::Update, |b, r, d| Box::pin(b.lease_renew(r, d))),
        revoke_fields(P::new("leases/revoke$"))
            .on(Op::Update, |b, r, d| Box::pin(b.lease_revoke(r, d))),
        revoke_fields(P::new("leases/revoke/(?P<url_lease_id>.+)$"))
            .on(Op::Update, |b, r, d| Box::pin(b.lease_revoke(r, d))),
        P::new("leases/revoke-prefix/(?P<prefix>.+)$")
            .field("prefix", T::Str, "Prefix of the leases to revoke.")
            .field("sync", T::Bool, "Revoke before answering (default true).")
            .on(Op::Update, |b, r, d| {
                Box::pin(b.lease_revoke_prefix(r, d, false))
            }),
        P::new("leases/revoke-force/(?P<prefix>.+)$")
            .field(
                "prefix",
                T::Str,
                "Prefix of the leases to revoke, ignoring errors.",
            )
            .on(Op::Update, |b, r, d| {
                Box::pin(b.lease_revoke_prefix(r, d, true))
            }),
    ]
}

/// The lease id of a request: the path's, else the body's.
fn lease_id(d: &FieldData<'_>) -> Result<String> {
    let id = match d.get_str("url_lease_id")?.filter(|s| !s.is_empty()) {
        Some(id) => id,
        None => d.get_str("lease_id")?.unwrap_or_default(),
    };
    if id.is_empty() {
        return Err(Error::bad("lease_id must be specified"));
    }
    Ok(id)
}

/// Vault answers an asynchronous revocation with 202 and no body.
fn accepted_or_done(sync: bool) -> Option<Response> {
    (!sync).then(|| Response {
        status: Some(202),
        raw_body: Some(String::new()),
        ..Default::default()
    })
}

impl SystemBackend {
    async fn lease_lookup(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let id = lease_id(d)?;
        let core = self.core()?;
        let entry = core
            .tokens
            .lookup_lease(&id)
            .await?
            .ok_or_else(|| Error::bad("invalid lease"))?;
        let time = |n: i128| json!(rfc3339_nanos(from_unix_nanos(n)));
        let now = core.tokens.now();
        Ok(Some(Response::json(json!({
            "expire_time": entry.expire_nanos.map_or(Value::Null, time),
            "id": id,
            "issue_time": time(entry.creation_nanos),
            "last_renewal": entry.last_renewal_nanos.map_or(Value::Null, time),
            "path": entry.path,
            // A lease without an expiry (a non-expiring root token) is not renewable.
            "renewable": entry.renewable && entry.expire_nanos.is_some(),
            "ttl": entry.remaining_ttl(now),
        }))))
    }

    /// `LIST sys/leases/lookup/<prefix>` (sudo): lease ids and folders under the prefix.
    async fn lease_list(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let prefix = d.get_str("prefix")?.unwrap_or_default();
        let keys = self.core()?.tokens.list_leases(&prefix).await?;
        Ok(Some(Response::list(keys)))
    }

    async fn lease_renew(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let id = lease_id(d)?;
        match self.core()?.tokens.lookup_lease(&id).await? {
            Some(_) => Err(Error::bad("tokens cannot be renewed through this endpoint")),
            None => Err(Error::bad("lease not found")),
        }
    }

    async fn lease_revoke(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let _timed = crate::telemetry::Timer::named(crate::telemetry::EXPIRE_REVOKE);
        let id = lease_id(d)?;
        let sync = d.get_bool("sync")?.unwrap_or(true);
        let core = self.core()?;
        // Like revoke-accessor, an expired or half-revoked token is revoked too.
        if let Some(entry) = core.tokens.find_lease(&id).await? {
            core.revoke_token_tree(&entry.key).await?;
            tracing::info!(lease.path = %entry.path, "token lease revoked");
        }
        Ok(accepted_or_done(sync))
    }

    /// `revoke-prefix/<prefix>` and (`force`) `revoke-force/<prefix>`, both sudo.
    async fn lease_revoke_prefix(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
        force: bool,
    ) -> Result<Option<Response>> {
        let _timed = crate::telemetry::Timer::named(if force {
            crate::telemetry::EXPIRE_REVOKE_FORCE
        } else {
            crate::telemetry::EXPIRE_REVOKE_PREFIX
        });
        let prefix = d.get_str("prefix")?.unwrap_or_default();
        let sync = force || d.get_bool("sync")?.unwrap_or(true);
        let core = self.core()?;
        let n = core
            .tokens
            .revoke_lease_prefix(&prefix, force, core.as_ref())
            .await?;
        tracing::info!(lease.prefix = %prefix, lease.count = n, force, "leases revoked by prefix");
        Ok(accepted_or_done(sync))
    }
}
