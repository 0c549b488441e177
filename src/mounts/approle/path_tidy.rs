//! `tidy/secret-id`: removes expired secret ids, entries whose accessor index is gone, and
//! accessor index entries whose secret id is gone.
//!
//! Vault starts the pass in the background and answers 202 at once; Coffer runs it within the
//! request (the store is small and logins already reject expired secret ids, so tidy is only
//! hygiene), then answers the same 202 and warning. A second concurrent call gets Vault's
//! "already in progress" warning with a 200.

use std::collections::HashSet;

use super::AppRoleBackend;
use super::store::{
    ACCESSOR_LOCAL_PREFIX, ACCESSOR_PREFIX, AccessorEntry, SECRET_ID_LOCAL_PREFIX,
    SECRET_ID_PREFIX, SecretIdEntry,
};
use crate::error::Result;
use crate::logical::{FieldData, Operation as Op, PathSpec, Request, Response};
use crate::mounts::tidy;
use crate::physical::WriteOp;
use crate::storage::Storage;

type P = PathSpec<AppRoleBackend>;

pub(super) fn paths() -> Vec<P> {
    vec![
        P::new("tidy/secret-id$")
            .on(Op::Update, |b, r, d| Box::pin(b.tidy_secret_id(r, d)))
            .help("Trigger the clean-up of expired SecretID entries."),
    ]
}

impl AppRoleBackend {
    async fn tidy_secret_id(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let Some(_pass) = tidy::Pass::start(&self.tidy_running) else {
            return Ok(Some(tidy::in_progress()));
        };
        let removed = self.tidy_all(&req.storage).await?;
        tracing::info!(
            mount.path = %req.mount.path,
            tidy.removed = removed,
            "approle secret-id tidy finished"
        );
        Ok(Some(tidy::started()))
    }

    /// A full tidy pass over both secret-id families; returns entries removed.
    pub(super) async fn tidy_all(&self, s: &Storage) -> Result<usize> {
        Ok(self
            .tidy_prefix(s, SECRET_ID_PREFIX, ACCESSOR_PREFIX)
            .await?
            + self
                .tidy_prefix(s, SECRET_ID_LOCAL_PREFIX, ACCESSOR_LOCAL_PREFIX)
                .await?)
    }

    /// The background pass (Vault runs it about every minute): skipped while a manual tidy runs.
    pub(super) async fn periodic_tidy(&self, s: &Storage) -> Result<usize> {
        let Some(_pass) = tidy::Pass::start(&self.tidy_running) else {
            return Ok(0);
        };
        self.tidy_all(s).await
    }

    /// One tidy pass over a secret-id prefix and its accessor prefix; returns entries removed.
    async fn tidy_prefix(
        &self,
        s: &Storage,
        secret_prefix: &str,
        acc_prefix: &str,
    ) -> Result<usize> {
        let now = self.now();
        let mut removed = 0;
        // Accessors are listed before the entries: issuing writes both in one batch, so any
        // accessor seen here had its entry in place, and a later listing still shows it.
        let accessors = s.list(acc_prefix).await?;
        for role_folder in s.list(secret_prefix).await? {
            let folder = format!("{secret_prefix}{role_folder}");
            for hmac in s.list(&folder).await? {
                let key = format!("{folder}{hmac}");
                let _lock = s.lock(&key).await;
                let Some(entry) = s.get_json::<SecretIdEntry>(&key).await? else {
                    continue;
                };
                let idx = self
                    .index_key(s, "accessor", &entry.secret_id_accessor)
                    .await?;
                let acc_key = format!("{acc_prefix}{idx}");
                if s.get(&acc_key).await?.is_none() {
                    s.delete(&key).await?;
                    removed += 1;
                } else if entry.expired(now) {
                    s.batch(vec![WriteOp::Delete(acc_key), WriteOp::Delete(key)])
                        .await?;
                    removed += 1;
                }
            }
        }
        let mut live_hmacs = HashSet::new();
        for role_folder in s.list(secret_prefix).await? {
            live_hmacs.extend(s.list(&format!("{secret_prefix}{role_folder}")).await?);
        }
        // Accessor entries pointing at nothing are dangling.
        for acc in accessors {
            let key = format!("{acc_prefix}{acc}");
            let Some(entry) = s.get_json::<AccessorEntry>(&key).await? else {
                continue;
            };
            if !live_hmacs.contains(&entry.secret_id_hmac) {
                s.delete(&key).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
