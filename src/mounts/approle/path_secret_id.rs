//! `role/<name>/secret-id` (pull: the server generates the secret id; LIST: its accessors) and
//! `role/<name>/custom-secret-id` (push: the caller chooses it).
//!
//! A secret id may only narrow what its role allows: its CIDRs must be subsets of the role's,
//! and `num_uses` / `ttl` may not exceed the role's non-zero values. The role's
//! `secret_id_num_uses` and `secret_id_ttl` are copied into each secret id when it is issued, so
//! later role changes do not affect secret ids already out there.

use serde_json::json;

use super::store::{AccessorEntry, RoleEntry, SecretIdEntry};
use super::validation::{
    cidr_subset, create_hmac, go_quote_list, parse_metadata, validate_cidr_list,
};
use super::{AppRoleBackend, ROLE_NAME, go_err};
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};
use crate::physical::WriteOp;
use crate::secret::Secret;
use crate::storage::Storage;

type P = PathSpec<AppRoleBackend>;

fn issue_fields(p: P) -> P {
    p.field("role_name", T::Str, "Name of the role.")
        .field(
            "metadata",
            T::Str,
            "JSON object of string metadata, as a string.",
        )
        .field(
            "cidr_list",
            T::CommaStringSlice,
            "CIDRs allowed to use this secret ID.",
        )
        .field(
            "token_bound_cidrs",
            T::CommaStringSlice,
            "CIDRs bound to issued tokens.",
        )
        .field(
            "num_uses",
            T::Int,
            "Uses of this secret ID (at most the role's).",
        )
        .field(
            "ttl",
            T::DurationSecond,
            "TTL of this secret ID (at most the role's).",
        )
}

pub(super) fn paths() -> Vec<P> {
    vec![
        issue_fields(P::new(&format!("role/{ROLE_NAME}/secret-id/?$")))
            .on(Op::Update, |b, r, d| Box::pin(b.secret_id_generate(r, d)))
            .on(Op::List, |b, r, d| Box::pin(b.secret_id_list(r, d)))
            .help("Generate a SecretID against this role."),
        issue_fields(P::new(&format!("role/{ROLE_NAME}/custom-secret-id$")))
            .field("secret_id", T::Str, "The secret ID to assign.")
            .on(Op::Update, |b, r, d| Box::pin(b.secret_id_custom(r, d)))
            .help("Assign a SecretID of choice against the role."),
    ]
}

/// Vault's `verifyCIDRRoleSecretIDSubset`: secret-id CIDRs must lie within the role's. The
/// error is a Go error's text; each endpoint renders it its own way.
pub(super) fn verify_subset(secret: &[String], role: &[String]) -> Result<(), String> {
    if secret.is_empty() || role.is_empty() {
        return Ok(());
    }
    // Host addresses on the role are stored without a mask; compare them as /32 like Vault.
    let role: Vec<String> = role
        .iter()
        .map(|b| {
            if b.contains('/') {
                b.clone()
            } else {
                format!("{b}/32")
            }
        })
        .collect();
    let cause = match cidr_subset(&role, secret) {
        Ok(true) => return Ok(()),
        Ok(false) => "%!w(<nil>)".to_string(),
        Err(e) => e,
    };
    Err(format!(
        "failed to verify subset relationship between CIDR blocks on the role {} and CIDR blocks on the secret ID {}: {cause}",
        go_quote_list(&role),
        go_quote_list(secret)
    ))
}

impl AppRoleBackend {
    /// HMAC of the role's (lower-cased) name under its key: the folder of its secret ids.
    pub(super) fn role_hmac(role: &RoleEntry) -> Result<String> {
        create_hmac(&role.hmac_key, &role.name)
            .map_err(|e| go_err(format!("failed to create HMAC of role_name: {e}")))
    }

    /// Storage key of a secret-id entry, from its HMAC.
    pub(super) fn secret_key(role: &RoleEntry, secret_hmac: &str) -> Result<String> {
        Ok(format!(
            "{}{}/{secret_hmac}",
            role.secret_id_prefix,
            Self::role_hmac(role)?
        ))
    }

    /// Full storage key of an accessor's index entry.
    pub(super) async fn accessor_key(
        &self,
        s: &Storage,
        role: &RoleEntry,
        accessor: &str,
    ) -> Result<String> {
        let idx = self.index_key(s, "accessor", accessor).await?;
        Ok(format!("{}{idx}", role.accessor_prefix()))
    }

    /// Deletes a secret-id entry and its accessor index together (caller holds the entry lock).
    pub(super) async fn delete_secret_id(
        &self,
        s: &Storage,
        role: &RoleEntry,
        entry_key: &str,
        entry: &SecretIdEntry,
    ) -> Result<()> {
        let acc = self
            .accessor_key(s, role, &entry.secret_id_accessor)
            .await?;
        s.batch(vec![
            WriteOp::Delete(acc),
            WriteOp::Delete(entry_key.to_string()),
        ])
        .await
    }

    /// Deletes every secret id of a role (role deletion).
    pub(super) async fn flush_secret_ids(&self, s: &Storage, role: &RoleEntry) -> Result<()> {
        let folder = format!("{}{}/", role.secret_id_prefix, Self::role_hmac(role)?);
        for hmac in s.list(&folder).await? {
            let key = format!("{folder}{hmac}");
            let _guard = s.lock(&key).await;
            if let Some(entry) = s.get_json::<SecretIdEntry>(&key).await? {
                self.delete_secret_id(s, role, &key, &entry).await?;
            } else {
                s.delete(&key).await?;
            }
        }
        Ok(())
    }

    async fn secret_id_generate(
        &self,
        req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let secret = Secret::new(crate::ids::uuid_v4());
        self.secret_id_issue(req, d, secret).await
    }

    async fn secret_id_custom(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let secret = Secret::new(d.get_str("secret_id")?.unwrap_or_default());
        self.secret_id_issue(req, d, secret).await
    }

    async fn secret_id_issue(
        &self,
        req: &Request,
        d: &FieldData<'_>,
        secret: Secret,
    ) -> Result<Option<Response>> {
        let name = d.get_str("role_name")?.unwrap_or_default();
        if secret.is_empty() {
            return Err(Error::bad("missing secret_id"));
        }
        let s = &req.storage;
        let Some(role) = self.role(s, &name).await? else {
            return Err(Error::NotFoundMsg(format!("role {name:?} does not exist")));
        };
        if !role.bind_secret_id {
            return Err(Error::bad("bind_secret_id is not set on the role"));
        }
        let cidr_list = d.get_list("cidr_list")?.unwrap_or_default();
        validate_cidr_list(&cidr_list)
            .map_err(|e| go_err(format!("failed to validate CIDR blocks: {e}")))?;
        verify_subset(
            &cidr_list,
            role.secret_id_bound_cidrs.as_deref().unwrap_or(&[]),
        )
        .map_err(go_err)?;
        let token_cidrs = d.get_list("token_bound_cidrs")?.unwrap_or_default();
        validate_cidr_list(&token_cidrs)
            .map_err(|e| go_err(format!("failed to validate token CIDR blocks: {e}")))?;
        verify_subset(&token_cidrs, &role.token_bound_cidrs).map_err(go_err)?;

        let num_uses = match d.get_int("num_uses")? {
            Some(n) if n < 0 => return Err(Error::bad("num_uses cannot be negative")),
            Some(n) if role.secret_id_num_uses > 0 && (n == 0 || n > role.secret_id_num_uses) => {
                return Err(Error::bad(
                    "num_uses cannot be higher than the role's secret_id_num_uses",
                ));
            }
            Some(n) => n,
            None => role.secret_id_num_uses,
        };
        let ttl = match d.get_duration("ttl")? {
            Some(t) if role.secret_id_ttl > 0 && (t == 0 || t > role.secret_id_ttl) => {
                return Err(Error::bad(
                    "ttl cannot be longer than the role's secret_id_ttl",
                ));
            }
            Some(t) => t,
            None => role.secret_id_ttl,
        };
        let metadata = parse_metadata(&d.get_str("metadata")?.unwrap_or_default())
            .map_err(|e| Error::bad(format!("failed to parse metadata: {e}")))?;

        let hmac = create_hmac(&role.hmac_key, secret.expose()).map_err(|e| {
            go_err(format!(
                "failed to store secret_id: failed to create HMAC of secret ID: {e}"
            ))
        })?;
        let key = Self::secret_key(&role, &hmac)?;
        // Secret ids never outlive the mount's maximum lease TTL (Vault's deriveSecretIDTTL).
        let effective_ttl = ttl.min(self.mount_max_ttl());
        let accessor = crate::ids::uuid_v4();
        {
            let _guard = s.lock(&key).await;
            if s.get(&key).await?.is_some() {
                return Err(go_err(
                    "failed to store secret_id: SecretID is already registered",
                ));
            }
            let now = self.now();
            let entry = SecretIdEntry {
                secret_id_accessor: accessor.clone(),
                secret_id_num_uses: num_uses,
                secret_id_ttl: ttl,
                creation_nanos: now,
                expiration_nanos: (effective_ttl > 0)
                    .then(|| now + i128::from(effective_ttl) * 1_000_000_000),
                last_updated_nanos: now,
                metadata,
                cidr_list,
                token_bound_cidrs: token_cidrs,
            };
            let acc_key = self.accessor_key(s, &role, &accessor).await?;
            s.batch(vec![
                WriteOp::Put(
                    acc_key,
                    Storage::encode(&AccessorEntry {
                        secret_id_hmac: hmac,
                    })?,
                ),
                WriteOp::Put(key, Storage::encode(&entry)?),
            ])
            .await?;
        }
        let mut resp = Response::json(json!({
            "secret_id": secret.expose(),
            "secret_id_accessor": accessor,
            "secret_id_ttl": effective_ttl,
            "secret_id_num_uses": num_uses,
        }));
        resp.wrapped_accessor = Some(accessor);
        Ok(Some(resp))
    }

    async fn secret_id_list(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = d.get_str("role_name")?.unwrap_or_default();
        let s = &req.storage;
        let Some(role) = self.role(s, &name).await? else {
            return Err(Error::bad(format!("role {name:?} does not exist")));
        };
        let folder = format!("{}{}/", role.secret_id_prefix, Self::role_hmac(&role)?);
        let mut keys = Vec::new();
        for hmac in s.list(&folder).await? {
            let entry: SecretIdEntry = s.get_json(&format!("{folder}{hmac}")).await?.ok_or_else(
                || {
                    go_err(
                        "storage entry for SecretID is present but no content found at the index",
                    )
                },
            )?;
            keys.push(entry.secret_id_accessor);
        }
        Ok(Some(Response::list(keys)))
    }
}
