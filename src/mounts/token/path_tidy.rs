//! `auth/token/tidy`: removes the token store's index entries left naming tokens that are gone
//! and revokes tokens whose parent is gone, as Vault's tidy does. The pass runs within the
//! request, one at a time; a second request meanwhile is told one is in progress.

use std::sync::atomic::{AtomicBool, Ordering};

use super::TokenBackend;
use crate::error::Result;
use crate::logical::{FieldData, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<TokenBackend>;

pub(super) fn paths() -> Vec<PathSpec<TokenBackend>> {
    vec![P::new("tidy$").on(Op::Update, |b, r, d| Box::pin(b.tidy(r, d)))]
}

/// Clears the in-progress flag however the pass ends.
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl TokenBackend {
    async fn tidy(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        if self
            .tidying
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Ok(Some(
                Response::default().with_warning("Tidy operation already in progress."),
            ));
        }
        let _running = Running(&self.tidying);
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
        let mut resp = Response::default().with_warning(
            "Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs.",
        );
        resp.status = Some(202);
        Ok(Some(resp))
    }
}
