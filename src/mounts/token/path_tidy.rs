//! `auth/token/tidy`: removes the token store's index entries left naming tokens that are gone
//! and revokes tokens whose parent is gone, as Vault's tidy does. The pass runs within the
//! request, one at a time; a second request meanwhile is told one is in progress.

use super::TokenBackend;
use crate::error::Result;
use crate::logical::{FieldData, Operation as Op, PathSpec, Request, Response};
use crate::mounts::tidy;

type P = PathSpec<TokenBackend>;

pub(super) fn paths() -> Vec<PathSpec<TokenBackend>> {
    vec![P::new("tidy$").on(Op::Update, |b, r, d| Box::pin(b.tidy(r, d)))]
}

impl TokenBackend {
    async fn tidy(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let Some(_pass) = tidy::Pass::start(&self.tidying) else {
            return Ok(Some(tidy::in_progress()));
        };
        let core = self.core()?;
        let (removed, orphans) = core.tokens.tidy().await?;
        for key in &orphans {
            core.revoke_token_tree(key).await?;
        }
        tracing::info!(
            tidy.accessors = removed.accessors,
            tidy.parent_links = removed.parent_links,
            tidy.index_entries = removed.index_entries,
            tidy.orphans_revoked = orphans.len(),
            "token store tidy finished"
        );
        Ok(Some(tidy::started()))
    }
}
