//! `auth/token/revoke*`: the whole subtree, or just the token (`revoke-orphan`).

use super::TokenBackend;
use crate::error::{Error, Result, multierror};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<TokenBackend>;

pub(super) fn paths() -> Vec<PathSpec<TokenBackend>> {
    vec![
        P::new("revoke-self$").on(Op::Update, |b, r, d| Box::pin(b.revoke_self(r, d))),
        P::new("revoke-accessor$")
            .field("accessor", T::Str, "Accessor of the token to revoke.")
            .on(Op::Update, |b, r, d| Box::pin(b.revoke_accessor(r, d))),
        P::new("revoke-orphan$")
            .field("token", T::Str, "Token to revoke; its children survive.")
            .on(Op::Update, |b, r, d| Box::pin(b.revoke_orphan(r, d))),
        P::new("revoke$")
            .field("token", T::Str, "Token to revoke with its children.")
            .on(Op::Update, |b, r, d| Box::pin(b.revoke(r, d))),
    ]
}

impl TokenBackend {
    async fn revoke_self(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let key = Self::caller(req)?.key.clone();
        self.core()?.revoke_token_tree(&key).await?;
        Ok(None)
    }

    async fn revoke(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let tok = d.get_str("token")?.unwrap_or_default();
        if tok.is_empty() {
            return Err(Error::bad("missing token ID"));
        }
        let core = self.core()?;
        if let Some(entry) = core.tokens.lookup(&tok).await? {
            core.revoke_token_tree(&entry.key).await?;
        }
        Ok(None)
    }

    async fn revoke_accessor(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let acc = d.get_str("accessor")?.unwrap_or_default();
        if acc.is_empty() {
            return Err(Error::bad(multierror("missing accessor")));
        }
        let core = self.core()?;
        // Like Vault, a token whose revocation is pending (or that has expired) is revoked too.
        match core.tokens.find_accessor(&acc).await? {
            Some(entry) => {
                core.revoke_token_tree(&entry.key).await?;
                Ok(None)
            }
            None => Ok(Some(
                Response::default().with_warning("No token found with this accessor"),
            )),
        }
    }

    async fn revoke_orphan(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        if !self.caller_has_sudo(req)? {
            return Err(Error::bad(
                "root or sudo privileges required to revoke and orphan",
            ));
        }
        let tok = d.get_str("token")?.unwrap_or_default();
        if tok.is_empty() {
            return Err(Error::bad("missing token ID"));
        }
        let core = self.core()?;
        let entry = core
            .tokens
            .lookup(&tok)
            .await?
            .ok_or_else(|| Error::bad("token to revoke not found"))?;
        core.tokens.revoke_orphan(&entry.key, core.as_ref()).await?;
        Ok(None)
    }
}
