//! `sys/wrapping/{wrap,unwrap,lookup,rewrap}`.

use serde_json::{Value, json};

use super::SystemBackend;
use crate::core::wrapping::{INVALID_WRAPPING_TOKEN, is_wrapping};
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};
use crate::token::TokenEntry;

type P = PathSpec<SystemBackend>;

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        P::new("wrapping/wrap$")
            .takes_arbitrary_input()
            .on(Op::Update, |b, r, d| Box::pin(b.wrapping_wrap(r, d))),
        P::new("wrapping/unwrap$")
            .field(
                "token",
                T::Str,
                "Wrapping token (when not sent as X-Vault-Token).",
            )
            .on(Op::Update, |b, r, d| Box::pin(b.wrapping_unwrap(r, d))),
        P::new("wrapping/rewrap$")
            .field(
                "token",
                T::Str,
                "Wrapping token (when not sent as X-Vault-Token).",
            )
            .on(Op::Update, |b, r, d| Box::pin(b.wrapping_rewrap(r, d))),
        P::new("wrapping/lookup$")
            .field("token", T::Str, "Wrapping token to look up.")
            .on(Op::Read, |b, r, d| Box::pin(b.wrapping_lookup(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.wrapping_lookup(r, d))),
    ]
}

impl SystemBackend {
    /// The wrapping token of an unwrap/rewrap, with its single use consumed. In the header form
    /// the pipeline already consumed it (and revokes it after the request); in the body form we
    /// consume it here and revoke it ourselves.
    async fn take_wrapping_token(
        &self,
        req: &Request,
        d: &FieldData<'_>,
    ) -> Result<(TokenEntry, bool)> {
        let core = self.core()?;
        match d.get_str("token")?.filter(|t| !t.is_empty()) {
            Some(tok) => Ok((core.consume_wrapping_token(&tok).await?, true)),
            None => match req.token.as_deref() {
                Some(e) if is_wrapping(e) => Ok((e.clone(), false)),
                _ => Err(Error::bad(INVALID_WRAPPING_TOKEN)),
            },
        }
    }

    async fn wrapping_wrap(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        if req.wrap_ttl.is_none() {
            return Err(Error::bad("endpoint requires response wrapping to be used"));
        }
        // An empty body wraps `{}`, as in OpenBao.
        Ok(Some(Response::data(req.data.clone())))
    }

    async fn wrapping_unwrap(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let (entry, revoke_here) = self.take_wrapping_token(req, d).await?;
        let (body, _) = core.wrapped_response(&entry).await?;
        if revoke_here {
            core.revoke_token_tree(&entry.key).await?;
        }
        if body.is_empty() {
            return Ok(None);
        }
        // The client gets the stored body as is; the audit entry shows what it holds (its
        // data, auth and warnings, hashed as any response's), as Vault's does.
        let stored: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let warnings = stored
            .get("warnings")
            .and_then(Value::as_array)
            .map(|w| {
                w.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Response {
            data: stored.get("data").and_then(Value::as_object).cloned(),
            issued_auth: stored.get("auth").filter(|a| a.is_object()).cloned(),
            warnings,
            raw_body: Some(body),
            ..Default::default()
        }))
    }

    async fn wrapping_rewrap(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let (entry, revoke_here) = self.take_wrapping_token(req, d).await?;
        let (body, info) = core.wrapped_response(&entry).await?;
        let wrap_info = core
            .create_wrapping_token(
                &body,
                info.creation_ttl,
                &info.creation_path,
                &entry.display_name,
                None,
            )
            .await?;
        if revoke_here {
            core.revoke_token_tree(&entry.key).await?;
        }
        Ok(Some(Response {
            wrap_info: Some(wrap_info),
            ..Default::default()
        }))
    }

    async fn wrapping_lookup(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let tok = d
            .get_str("token")?
            .filter(|t| !t.is_empty())
            .or_else(|| req.client_token.as_ref().map(|t| t.expose().to_string()))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Coded(
                    403,
                    "error validating wrapping token: token is empty".into(),
                )
            })?;
        let info = core.wrapping_lookup(&tok).await?;
        let data: Value = json!({
            "creation_ttl": info.creation_ttl,
            "creation_time": info.creation_time,
            "creation_path": info.creation_path,
        });
        Ok(Some(Response::json(data)))
    }
}
