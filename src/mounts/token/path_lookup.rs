//! `auth/token/lookup*`, `auth/token/renew*` and `LIST auth/token/accessors`.

use serde_json::{Value, json};

use super::TokenBackend;
use crate::error::{Error, Result, multierror};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};
use crate::token::TokenEntry;
use crate::token::ttl::{TtlInputs, calculate_ttl};

type P = PathSpec<TokenBackend>;

pub(super) fn paths() -> Vec<PathSpec<TokenBackend>> {
    vec![
        P::new("lookup-self$")
            .field("token", T::Str, "Ignored; the caller's token is used.")
            .on(Op::Read, |b, r, d| Box::pin(b.lookup_self(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.lookup_self(r, d))),
        P::new("lookup-accessor$")
            .field("accessor", T::Str, "Accessor to look up.")
            .on(Op::Update, |b, r, d| Box::pin(b.lookup_accessor(r, d))),
        P::new("lookup$")
            .field("token", T::Str, "Token to look up.")
            .on(Op::Read, |b, r, d| Box::pin(b.lookup(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.lookup(r, d))),
        P::new("accessors/?$").on(Op::List, |b, r, d| Box::pin(b.list_accessors(r, d))),
        P::new("renew-self$")
            .field("token", T::Str, "Ignored.")
            .field("increment", T::DurationSecond, "Requested TTL from now.")
            .on(Op::Update, |b, r, d| Box::pin(b.renew(r, d, Which::Caller))),
        P::new("renew-accessor$")
            .field("accessor", T::Str, "Accessor of the token.")
            .field("increment", T::DurationSecond, "Requested TTL from now.")
            .on(Op::Update, |b, r, d| {
                Box::pin(b.renew(r, d, Which::Accessor))
            }),
        P::new("renew$")
            .field("token", T::Str, "Token to renew.")
            .field("increment", T::DurationSecond, "Requested TTL from now.")
            .on(Op::Update, |b, r, d| Box::pin(b.renew(r, d, Which::Token))),
    ]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Caller,
    Token,
    Accessor,
}

impl TokenBackend {
    async fn lookup_self(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let entry = Self::caller(req)?;
        let tok = req
            .client_token
            .as_ref()
            .map(|t| t.expose().to_string())
            .unwrap_or_default();
        let accessor = core.tokens.accessor_of(&tok);
        Ok(Some(Response::data(entry.lookup_data(
            &tok,
            &accessor,
            core.tokens.now(),
        ))))
    }

    async fn lookup(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        // Without a token in the body Vault looks up the caller's own, whatever the operation.
        let Some(tok) = d.get_str("token")?.filter(|t| !t.is_empty()) else {
            return self.lookup_self(req, d).await;
        };
        let entry = core
            .tokens
            .lookup(&tok)
            .await?
            .ok_or_else(|| Error::Coded(403, "bad token".into()))?;
        let accessor = core.tokens.accessor_of(&tok);
        Ok(Some(Response::data(entry.lookup_data(
            &tok,
            &accessor,
            core.tokens.now(),
        ))))
    }

    /// `LIST auth/token/accessors` (sudo, via the backend's root paths).
    async fn list_accessors(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let keys = self.core()?.tokens.list_accessors().await?;
        Ok(Some(Response::list(keys)))
    }

    async fn lookup_accessor(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let acc = d.get_str("accessor")?.unwrap_or_default();
        if acc.is_empty() {
            return Err(Error::bad(multierror("missing accessor")));
        }
        let entry = core
            .tokens
            .lookup_accessor(&acc)
            .await?
            .ok_or_else(|| Error::bad(multierror("invalid accessor")))?;
        Ok(Some(Response::data(entry.lookup_data(
            "",
            &acc,
            core.tokens.now(),
        ))))
    }

    async fn renew(
        &self,
        req: &Request,
        d: &FieldData<'_>,
        which: Which,
    ) -> Result<Option<Response>> {
        let _timed = crate::telemetry::Timer::named(crate::telemetry::EXPIRE_RENEW_TOKEN);
        let core = self.core()?;
        let (entry, token_out): (TokenEntry, String) = match which {
            Which::Caller => {
                let tok = req
                    .client_token
                    .as_ref()
                    .map(|t| t.expose().to_string())
                    .unwrap_or_default();
                (Self::caller(req)?.clone(), tok)
            }
            Which::Token => {
                let tok = d.get_str("token")?.unwrap_or_default();
                if tok.is_empty() {
                    return Err(Error::bad("missing token ID"));
                }
                (
                    core.tokens
                        .lookup(&tok)
                        .await?
                        .ok_or_else(|| Error::bad("token not found"))?,
                    tok,
                )
            }
            Which::Accessor => {
                let acc = d.get_str("accessor")?.unwrap_or_default();
                if acc.is_empty() {
                    return Err(Error::bad(multierror("missing accessor")));
                }
                let e = core
                    .tokens
                    .lookup_accessor(&acc)
                    .await?
                    .ok_or_else(|| Error::bad(multierror("invalid accessor")))?;
                (e, String::new())
            }
        };
        if !entry.has_lease {
            return Err(Error::bad("invalid lease ID"));
        }
        if !entry.renewable {
            return Err(Error::bad("lease is not renewable"));
        }
        let increment = d.get_duration("increment")?.unwrap_or(0);
        // The issuing mount decides the TTL limits (and may re-read them, as AppRole does).
        let table = core.mount_table();
        let issuer = table
            .iter()
            .find(|m| m.entry.accessor == entry.mount_accessor)
            .cloned();
        let token_mount = table.get("auth/token/").cloned();
        drop(table);
        let (mount_entry, mut limits) = match (&issuer, &token_mount) {
            (Some(m), _) => {
                let started = std::time::Instant::now();
                let l = m
                    .backend
                    .renew_limits(
                        &m.storage,
                        &entry.internal,
                        (entry.ttl, entry.backend_max_ttl, entry.period),
                    )
                    .await;
                if let Some(h) = m.route_timers.renew(m) {
                    h.record(crate::telemetry::ms_since(started));
                }
                (m.entry.clone(), l?)
            }
            (None, Some(t)) => (
                t.entry.clone(),
                (entry.ttl, entry.backend_max_ttl, entry.period),
            ),
            (None, None) => return Err(Error::internal("token mount missing")),
        };
        if issuer.is_none() && !entry.mount_accessor.is_empty() {
            // The auth mount that issued the token is gone.
            limits = (entry.ttl, entry.backend_max_ttl, entry.period);
        }
        // A token from a role renews with the role's current period and explicit maximum.
        let mut explicit_max = entry.explicit_max_ttl;
        if !entry.role.is_empty() {
            let role = self.role_get(&entry.role).await?.ok_or_else(|| {
                Error::Coded(
                    500,
                    format!(
                        "1 error occurred:\n\t* failed to renew entry: original token role {:?} could not be found, not renewing\n\n",
                        entry.role
                    ),
                )
            })?;
            limits.2 = role.token_period;
            explicit_max = role.token_explicit_max_ttl;
        }
        let (def, max) = core.mount_ttls(&mount_entry);
        let now = core.tokens.now();
        let elapsed = i64::try_from((now - entry.creation_nanos).div_euclid(1_000_000_000))
            .unwrap_or(i64::MAX);
        let (ttl, warnings) = calculate_ttl(TtlInputs {
            mount_default: def,
            mount_max: max,
            ttl: limits.0,
            increment,
            period: limits.2,
            backend_max: limits.1,
            explicit_max,
            elapsed,
        })
        .map_err(Error::bad)?;
        // Written under the entry's lock onto the stored entry (never the request's copy, whose
        // use count is stale), and refused once the token is gone or its revocation has begun.
        let entry = core
            .tokens
            .modify(&entry.key, |e| {
                e.ttl = ttl;
                e.expire_nanos = Some(now + i128::from(ttl) * 1_000_000_000);
                e.last_renewal_nanos = Some(now);
            })
            .await?
            .ok_or_else(|| Error::bad("token not found"))?;
        let accessor = if which == Which::Accessor {
            d.get_str("accessor")?.unwrap_or_default()
        } else {
            core.tokens.accessor_of(&token_out)
        };
        let auth: Value = json!({
            "client_token": token_out,
            "accessor": accessor,
            "policies": entry.policies,
            "token_policies": entry.policies,
            "metadata": entry.meta,
            "lease_duration": ttl,
            "renewable": true,
            "entity_id": entry.entity_id,
            "token_type": entry.token_type,
            "orphan": entry.parent_key.is_none(),
            "mfa_requirement": null,
            "num_uses": entry.num_uses,
        });
        Ok(Some(Response {
            issued_auth: Some(auth),
            issued_entry: Some(std::sync::Arc::new(entry)),
            renewed: true,
            warnings,
            ..Default::default()
        }))
    }
}
