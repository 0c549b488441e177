//! `role/` (LIST) and `role/<name>` (create, update, read, delete): Vault's `pathRoleCreateUpdate`
//! and friends, with the shared `token_*` field set (`tokenutil.ParseTokenFields`).
//!
//! A write validates everything before it changes anything: the role is built in memory and
//! persisted (with its role_id index) in one batch by `save_role`.

use super::store::{RoleEntry, SECRET_ID_LOCAL_PREFIX, SECRET_ID_PREFIX};
use super::validation::{MAX_HMAC_INPUT, validate_cidr_list};
use super::{AppRoleBackend, ROLE_NAME, go_err};
use crate::error::{Error, Result};
use crate::logical::field::go_duration;
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};
use crate::mounts::token_fields::{TokenFields, token_fields};
use crate::token::normalize_policies;

type P = PathSpec<AppRoleBackend>;

pub(super) fn paths() -> Vec<P> {
    vec![
        P::new("role/?$")
            .on(Op::List, |b, r, d| Box::pin(b.role_list(r, d)))
            .help("Lists all the roles registered with the backend."),
        token_fields(P::new(&format!("role/{ROLE_NAME}$")))
            .field("role_name", T::Str, "Name of the role.")
            .field("bind_secret_id", T::Bool, "Require a secret_id at login.")
            .field(
                "bound_cidr_list",
                T::CommaStringSlice,
                "Deprecated: secret_id_bound_cidrs.",
            )
            .field(
                "secret_id_bound_cidrs",
                T::CommaStringSlice,
                "CIDRs allowed to log in.",
            )
            .field(
                "policies",
                T::CommaStringSlice,
                "Deprecated: token_policies.",
            )
            .field(
                "secret_id_num_uses",
                T::Int,
                "Uses of each secret ID (0 = unlimited).",
            )
            .field(
                "secret_id_ttl",
                T::DurationSecond,
                "TTL of secret IDs (0 = none).",
            )
            .field("period", T::DurationSecond, "Deprecated: token_period.")
            .field(
                "role_id",
                T::Str,
                "Identifier of the role; a UUID by default.",
            )
            .field(
                "local_secret_ids",
                T::Bool,
                "Cluster-local secret IDs (create only).",
            )
            .existence(|b, r, d| Box::pin(b.role_exists(r, d)))
            .on(Op::Create, |b, r, d| Box::pin(b.role_write(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.role_write(r, d)))
            .on(Op::Read, |b, r, d| Box::pin(b.role_read(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.role_delete(r, d)))
            .help("Register a role with the backend."),
    ]
}

/// Applies the `token_*` fields present in the request (Vault's `ParseTokenFields`), through
/// the shared [`TokenFields`] rules.
pub(super) fn parse_token_fields(
    role: &mut RoleEntry,
    d: &FieldData<'_>,
    token_type: Option<String>,
) -> Result<()> {
    let mut t = TokenFields {
        token_policies: std::mem::take(&mut role.token_policies),
        token_ttl: role.token_ttl,
        token_max_ttl: role.token_max_ttl,
        token_explicit_max_ttl: role.token_explicit_max_ttl,
        token_period: role.token_period,
        token_num_uses: role.token_num_uses,
        token_no_default_policy: role.token_no_default_policy,
        token_type: std::mem::take(&mut role.token_type),
        token_bound_cidrs: std::mem::take(&mut role.token_bound_cidrs),
    };
    let parsed = t.parse(d, token_type);
    role.token_policies = t.token_policies;
    role.token_ttl = t.token_ttl;
    role.token_max_ttl = t.token_max_ttl;
    role.token_explicit_max_ttl = t.token_explicit_max_ttl;
    role.token_period = t.token_period;
    role.token_num_uses = t.token_num_uses;
    role.token_no_default_policy = t.token_no_default_policy;
    role.token_type = t.token_type;
    role.token_bound_cidrs = t.token_bound_cidrs;
    parsed
}

fn role_name(d: &FieldData<'_>) -> Result<String> {
    let name = d.get_str("role_name")?.unwrap_or_default();
    if name.is_empty() {
        return Err(Error::bad("missing role_name"));
    }
    Ok(name)
}

impl AppRoleBackend {
    async fn role_list(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let keys = req.storage.list(super::store::ROLE_PREFIX).await?;
        Ok(Some(Response::list(keys)))
    }

    async fn role_exists(&self, req: &Request, d: &FieldData<'_>) -> Result<bool> {
        Ok(self.role(&req.storage, &role_name(d)?).await?.is_some())
    }

    async fn role_write(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = role_name(d)?;
        if name.len() > MAX_HMAC_INPUT {
            return Err(Error::bad(format!(
                "role_name is longer than maximum of {MAX_HMAC_INPUT} bytes"
            )));
        }
        let mount_max = self.mount_max_ttl();
        let _guard = self.role_write.lock().await;
        let existing = self.role(&req.storage, &name).await?;
        let create = existing.is_none();
        if create && req.operation != Op::Create {
            return Err(Error::NotFoundMsg(format!(
                "role name {name:?} doesn't exist"
            )));
        }
        let previous_role_id = existing.as_ref().map(|r| r.role_id.clone());
        let mut role = match existing {
            Some(role) => role,
            None => RoleEntry {
                name: name.to_lowercase(),
                hmac_key: hex::encode(crate::ids::os_key::<32>()?.as_slice()),
                secret_id_prefix: SECRET_ID_PREFIX.into(),
                token_type: "default".into(),
                ..Default::default()
            },
        };

        let mut warnings = Vec::new();
        let mut token_type = d.get_str("token_type")?;
        match token_type.as_deref() {
            Some("default-service") => {
                token_type = Some("service".into());
                warnings.push("default-service has no useful meaning; adjusting to service".into());
            }
            Some("default-batch") => {
                token_type = Some("batch".into());
                warnings.push("default-batch has no useful meaning; adjusting to batch".into());
            }
            _ => {}
        }
        parse_token_fields(&mut role, d, token_type)?;

        if let Some(local) = d.get_bool("local_secret_ids")? {
            if !create {
                return Err(Error::bad(
                    "local_secret_ids can only be modified during role creation",
                ));
            }
            if local {
                role.secret_id_prefix = SECRET_ID_LOCAL_PREFIX.into();
            }
        }

        if let Some(id) = d.get_str("role_id")? {
            role.role_id = id;
        } else if create {
            role.role_id = uuid::Uuid::new_v4().to_string();
        }
        if role.role_id.is_empty() {
            return Err(Error::bad(
                "invalid role_id supplied, or failed to generate a role_id",
            ));
        }

        match d.get_bool("bind_secret_id")? {
            Some(b) => role.bind_secret_id = b,
            None if create => role.bind_secret_id = true,
            None => {}
        }

        let cidrs = match d.get_list("secret_id_bound_cidrs")? {
            Some(c) => Some(c),
            None => d.get_list("bound_cidr_list")?,
        };
        if let Some(cidrs) = cidrs {
            role.secret_id_bound_cidrs = Some(cidrs);
        }
        if let Some(cidrs) = role.secret_id_bound_cidrs.as_deref() {
            validate_cidr_list(cidrs)
                .map_err(|e| go_err(format!("failed to validate CIDR blocks: {e}")))?;
        }

        if let Some(n) = d.get_int("secret_id_num_uses")? {
            role.secret_id_num_uses = n;
        }
        if role.secret_id_num_uses < 0 {
            return Err(Error::bad("secret_id_num_uses cannot be negative"));
        }
        if let Some(ttl) = d.get_duration("secret_id_ttl")? {
            role.secret_id_ttl = ttl;
        }

        // Deprecated aliases (`tokenutil.UpgradeValue`): the new name wins; the legacy copy is
        // kept only when both were sent.
        if d.has("token_policies") {
            role.policies = if d.has("policies") {
                role.token_policies.clone()
            } else {
                Vec::new()
            };
        } else if let Some(p) = d.get_list("policies")? {
            role.policies = normalize_policies(p, false);
            role.token_policies = role.policies.clone();
        }
        if d.has("token_period") {
            role.period = if d.has("period") {
                role.token_period
            } else {
                0
            };
        } else if let Some(p) = d.get_duration("period")? {
            role.period = p;
            role.token_period = p;
        }

        if role.period > mount_max {
            return Err(Error::bad(format!(
                "period of {:?} is greater than the backend's maximum lease TTL of {:?}",
                go_duration(role.period),
                go_duration(mount_max)
            )));
        }
        if role.token_max_ttl > mount_max {
            warnings.push("token_max_ttl is greater than the backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".into());
        }

        self.save_role(&req.storage, &role, previous_role_id.as_deref())
            .await?;
        Ok((!warnings.is_empty()).then(|| Response {
            warnings,
            ..Default::default()
        }))
    }

    async fn role_read(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let Some(role) = self.role(&req.storage, &role_name(d)?).await? else {
            return Ok(None);
        };
        let mut resp = Response::data(role.read_data());
        if !role.has_constraint() {
            resp.warnings.push("Role does not have any constraints set on it. Updates to this role will require a constraint to be set".into());
        }
        Ok(Some(resp))
    }

    async fn role_delete(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let _guard = self.role_write.lock().await;
        let s = &req.storage;
        let Some(role) = self.role(s, &role_name(d)?).await? else {
            return Ok(None);
        };
        // Secret ids go first (each under its own lock), so a concurrent login either finishes
        // before its secret id disappears or finds nothing.
        self.flush_secret_ids(s, &role).await?;
        let idx = self.index_key(s, "role_id", &role.role_id).await?;
        s.batch(vec![
            crate::physical::WriteOp::Delete(format!("{}{idx}", super::store::ROLE_ID_PREFIX)),
            crate::physical::WriteOp::Delete(format!("{}{}", super::store::ROLE_PREFIX, role.name)),
        ])
        .await?;
        Ok(None)
    }
}
