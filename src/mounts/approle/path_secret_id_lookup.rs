//! `role/<name>/secret-id/{lookup,destroy}` (by secret id) and
//! `role/<name>/secret-id-accessor/{lookup,destroy}` (by accessor).
//!
//! Status codes follow Vault's quirks on purpose, because clients see them: an unknown secret id
//! is a silent 204, an unknown accessor on lookup is a 404 whose body is a full envelope with
//! `data.error`, and the same accessor on destroy is a 500.

use serde_json::{Map, json};

use super::store::{AccessorEntry, RoleEntry, SecretIdEntry};
use super::validation::create_hmac;
use super::{AppRoleBackend, ROLE_NAME, go_err};
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};
use crate::secret::Secret;

type P = PathSpec<AppRoleBackend>;

pub(super) fn paths() -> Vec<P> {
    let by_id = |p: P| {
        p.field("role_name", T::Str, "Name of the role.").field(
            "secret_id",
            T::Str,
            "The secret ID.",
        )
    };
    let by_accessor = |p: P| {
        p.field("role_name", T::Str, "Name of the role.").field(
            "secret_id_accessor",
            T::Str,
            "Accessor of the secret ID.",
        )
    };
    vec![
        by_id(P::new(&format!("role/{ROLE_NAME}/secret-id/lookup/?$")))
            .on(Op::Update, |b, r, d| Box::pin(b.secret_id_lookup(r, d)))
            .help("Read the properties of an issued secret_id."),
        by_id(P::new(&format!("role/{ROLE_NAME}/secret-id/destroy/?$")))
            .on(Op::Update, |b, r, d| Box::pin(b.secret_id_destroy(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.secret_id_destroy(r, d)))
            .help("Invalidate an issued secret_id."),
        by_accessor(P::new(&format!(
            "role/{ROLE_NAME}/secret-id-accessor/lookup/?$"
        )))
        .on(Op::Update, |b, r, d| {
            Box::pin(b.secret_id_accessor_lookup(r, d))
        })
        .help("Read an issued secret_id, using its accessor."),
        by_accessor(P::new(&format!(
            "role/{ROLE_NAME}/secret-id-accessor/destroy/?$"
        )))
        .on(Op::Update, |b, r, d| {
            Box::pin(b.secret_id_accessor_destroy(r, d))
        })
        .on(Op::Delete, |b, r, d| {
            Box::pin(b.secret_id_accessor_destroy(r, d))
        })
        .help("Delete an issued secret_id, using its accessor."),
    ]
}

impl AppRoleBackend {
    /// The role named in the path; these endpoints answer a missing role with a Go error (500).
    async fn existing_role(&self, req: &Request, d: &FieldData<'_>) -> Result<RoleEntry> {
        let name = d.get_str("role_name")?.unwrap_or_default();
        self.role(&req.storage, &name)
            .await?
            .ok_or_else(|| go_err(format!("role {name:?} does not exist")))
    }

    /// Storage key of the secret id sent as `secret_id` (400 when missing).
    async fn key_of_secret(&self, req: &Request, d: &FieldData<'_>) -> Result<(RoleEntry, String)> {
        let secret = Secret::new(d.get_str("secret_id")?.unwrap_or_default());
        if secret.is_empty() {
            return Err(Error::bad("missing secret_id"));
        }
        let role = self.existing_role(req, d).await?;
        let hmac = create_hmac(&role.hmac_key, secret.expose())
            .map_err(|e| go_err(format!("failed to create HMAC of secret_id: {e}")))?;
        let key = Self::secret_key(&role, &hmac)?;
        Ok((role, key))
    }

    /// The accessor sent as `secret_id_accessor` (400 when missing), its role and index key.
    async fn accessor_of(
        &self,
        req: &Request,
        d: &FieldData<'_>,
    ) -> Result<(RoleEntry, String, Option<AccessorEntry>)> {
        let accessor = d.get_str("secret_id_accessor")?.unwrap_or_default();
        if accessor.is_empty() {
            return Err(Error::bad("missing secret_id_accessor"));
        }
        let role = self.existing_role(req, d).await?;
        let key = self.accessor_key(&req.storage, &role, &accessor).await?;
        let entry = req.storage.get_json(&key).await?;
        Ok((role, accessor, entry))
    }

    async fn secret_id_lookup(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let (role, key) = self.key_of_secret(req, d).await?;
        let s = &req.storage;
        let _guard = s.lock(&key).await;
        let Some(entry) = s.get_json::<SecretIdEntry>(&key).await? else {
            return Ok(None);
        };
        let acc_key = self
            .accessor_key(s, &role, &entry.secret_id_accessor)
            .await?;
        if s.get(&acc_key).await?.is_none() {
            // An entry without its accessor index is half-deleted: finish the job.
            s.delete(&key).await?;
            return Err(Error::bad("invalid secret id"));
        }
        Ok(Some(Response::data(entry.lookup_data())))
    }

    async fn secret_id_destroy(
        &self,
        req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let (role, key) = self.key_of_secret(req, d).await?;
        let s = &req.storage;
        let _guard = s.lock(&key).await;
        if let Some(entry) = s.get_json::<SecretIdEntry>(&key).await? {
            self.delete_secret_id(s, &role, &key, &entry).await?;
        }
        Ok(None)
    }

    async fn secret_id_accessor_lookup(
        &self,
        req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let (role, accessor, index) = self.accessor_of(req, d).await?;
        let Some(index) = index else {
            let mut data = Map::new();
            data.insert(
                "error".into(),
                json!(format!(
                    "failed to find accessor entry for secret_id_accessor: {accessor:?}"
                )),
            );
            return Ok(Some(Response {
                data: Some(data),
                status: Some(404),
                ..Default::default()
            }));
        };
        let key = Self::secret_key(&role, &index.secret_id_hmac)?;
        let _guard = req.storage.lock(&key).await;
        Ok(req
            .storage
            .get_json::<SecretIdEntry>(&key)
            .await?
            .map(|e| Response::data(e.lookup_data())))
    }

    async fn secret_id_accessor_destroy(
        &self,
        req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let (role, accessor, index) = self.accessor_of(req, d).await?;
        let index = index.ok_or_else(|| {
            go_err(format!(
                "failed to find accessor entry for secret_id_accessor: {accessor:?}"
            ))
        })?;
        let key = Self::secret_key(&role, &index.secret_id_hmac)?;
        let s = &req.storage;
        let _guard = s.lock(&key).await;
        let Some(entry) = s.get_json::<SecretIdEntry>(&key).await? else {
            return Err(Error::Coded(403, "invalid secret id accessor".into()));
        };
        self.delete_secret_id(s, &role, &key, &entry).await?;
        Ok(None)
    }
}
