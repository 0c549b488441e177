//! The per-field sub-endpoints of a role (`role/<name>/policies`, `.../token-ttl`, `.../role-id`,
//! ...): read one field, update it (400 `missing <field>` when absent), or delete it (reset to
//! its default). An update on a missing role is Vault's 404 "unsupported path"; a read is a 404
//! with no errors; a delete is a silent 204.

use serde_json::{Map, Value, json};

use super::store::RoleEntry;
use super::{AppRoleBackend, ROLE_NAME};
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<AppRoleBackend>;

/// One sub-endpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum F {
    Policies,
    BoundCidrList,
    SecretIdBoundCidrs,
    TokenBoundCidrs,
    BindSecretId,
    SecretIdNumUses,
    SecretIdTtl,
    Period,
    TokenNumUses,
    TokenTtl,
    TokenMaxTtl,
    RoleId,
    LocalSecretIds,
}

/// Every sub-endpoint: its path suffix, which field it is, its parameters, and whether it can be
/// updated and deleted (`local-secret-ids` is read-only; `role-id` cannot be deleted).
/// A parameter of a sub-endpoint: name, type, help.
type Param = (&'static str, T, &'static str);
/// A sub-endpoint: suffix, field, parameters, updatable, deletable.
type Sub = (&'static str, F, &'static [Param], bool, bool);

const SUBS: &[Sub] = &[
    ("local-secret-ids", F::LocalSecretIds, &[], false, false),
    (
        "policies",
        F::Policies,
        &[
            (
                "token_policies",
                T::CommaStringSlice,
                "Policies of issued tokens.",
            ),
            (
                "policies",
                T::CommaStringSlice,
                "Deprecated: token_policies.",
            ),
        ],
        true,
        true,
    ),
    (
        "bound-cidr-list",
        F::BoundCidrList,
        &[(
            "bound_cidr_list",
            T::CommaStringSlice,
            "Deprecated: secret_id_bound_cidrs.",
        )],
        true,
        true,
    ),
    (
        "secret-id-bound-cidrs",
        F::SecretIdBoundCidrs,
        &[(
            "secret_id_bound_cidrs",
            T::CommaStringSlice,
            "CIDRs allowed to log in.",
        )],
        true,
        true,
    ),
    (
        "token-bound-cidrs",
        F::TokenBoundCidrs,
        &[(
            "token_bound_cidrs",
            T::CommaStringSlice,
            "CIDRs tokens may be used from.",
        )],
        true,
        true,
    ),
    (
        "bind-secret-id",
        F::BindSecretId,
        &[("bind_secret_id", T::Bool, "Require a secret_id at login.")],
        true,
        true,
    ),
    (
        "secret-id-num-uses",
        F::SecretIdNumUses,
        &[("secret_id_num_uses", T::Int, "Uses of each secret ID.")],
        true,
        true,
    ),
    (
        "secret-id-ttl",
        F::SecretIdTtl,
        &[("secret_id_ttl", T::DurationSecond, "TTL of secret IDs.")],
        true,
        true,
    ),
    (
        "period",
        F::Period,
        &[
            (
                "token_period",
                T::DurationSecond,
                "Period of issued tokens.",
            ),
            ("period", T::DurationSecond, "Deprecated: token_period."),
        ],
        true,
        true,
    ),
    (
        "token-num-uses",
        F::TokenNumUses,
        &[("token_num_uses", T::Int, "Uses of issued tokens.")],
        true,
        true,
    ),
    (
        "token-ttl",
        F::TokenTtl,
        &[("token_ttl", T::DurationSecond, "Initial token TTL.")],
        true,
        true,
    ),
    (
        "token-max-ttl",
        F::TokenMaxTtl,
        &[("token_max_ttl", T::DurationSecond, "Maximum token TTL.")],
        true,
        true,
    ),
    (
        "role-id",
        F::RoleId,
        &[("role_id", T::Str, "Identifier of the role.")],
        true,
        false,
    ),
];

/// Which sub-endpoint a request is for (handlers are plain functions, so they read it off the path).
fn field_of(req: &Request) -> Result<F> {
    let suffix = req.path.rsplit('/').next().unwrap_or_default();
    SUBS.iter()
        .find(|(s, ..)| *s == suffix)
        .map(|(_, f, ..)| *f)
        .ok_or(Error::UnsupportedPath)
}

pub(super) fn paths() -> Vec<P> {
    SUBS.iter()
        .map(|(suffix, _, fields, update, delete)| {
            let mut p = P::new(&format!("role/{ROLE_NAME}/{suffix}$")).field(
                "role_name",
                T::Str,
                "Name of the role.",
            );
            for (name, ty, desc) in *fields {
                p = p.field(name, *ty, desc);
            }
            p = p.on(Op::Read, |b, r, d| {
                Box::pin(async move { b.field_read(r, d, field_of(r)?).await })
            });
            if *update {
                p = p.on(Op::Update, |b, r, d| {
                    Box::pin(async move { b.field_update(r, d, field_of(r)?).await })
                });
            }
            if *delete {
                p = p.on(Op::Delete, |b, r, d| {
                    Box::pin(async move { b.field_delete(r, d, field_of(r)?).await })
                });
            }
            p
        })
        .collect()
}

/// The `data` of a sub-endpoint read, and its warning.
fn read_data(role: &RoleEntry, f: F) -> (Map<String, Value>, Option<&'static str>) {
    let empty_null = |v: &Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
    let (pairs, warning): (Vec<(&str, Value)>, _) = match f {
        F::LocalSecretIds => (
            vec![("local_secret_ids", json!(role.local_secret_ids()))],
            None,
        ),
        F::Policies => {
            let mut v = vec![("token_policies", json!(role.token_policies))];
            if !role.policies.is_empty() {
                v.push(("policies", json!(role.policies)));
            }
            (v, None)
        }
        // The legacy field is migrated into secret_id_bound_cidrs, so it always reads null.
        F::BoundCidrList => (
            vec![("bound_cidr_list", Value::Null)],
            Some(
                "The \"bound_cidr_list\" field is deprecated and will be removed. Please use \"secret_id_bound_cidrs\" instead.",
            ),
        ),
        F::SecretIdBoundCidrs => (
            vec![("secret_id_bound_cidrs", json!(role.secret_id_bound_cidrs))],
            None,
        ),
        F::TokenBoundCidrs => (
            vec![("token_bound_cidrs", empty_null(&role.token_bound_cidrs))],
            None,
        ),
        F::BindSecretId => (vec![("bind_secret_id", json!(role.bind_secret_id))], None),
        F::SecretIdNumUses => (
            vec![("secret_id_num_uses", json!(role.secret_id_num_uses))],
            None,
        ),
        F::SecretIdTtl => (vec![("secret_id_ttl", json!(role.secret_id_ttl))], None),
        F::Period => {
            let mut v = vec![("token_period", json!(role.token_period))];
            if role.period > 0 {
                v.push(("period", json!(role.period)));
            }
            (v, None)
        }
        F::TokenNumUses => (vec![("token_num_uses", json!(role.token_num_uses))], None),
        F::TokenTtl => (vec![("token_ttl", json!(role.token_ttl))], None),
        F::TokenMaxTtl => (vec![("token_max_ttl", json!(role.token_max_ttl))], None),
        F::RoleId => (vec![("role_id", json!(role.role_id))], None),
    };
    let data = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    (data, warning)
}

impl AppRoleBackend {
    async fn field_read(&self, req: &Request, d: &FieldData<'_>, f: F) -> Result<Option<Response>> {
        let name = d.get_str("role_name")?.unwrap_or_default();
        let Some(role) = self.role(&req.storage, &name).await? else {
            return Ok(None);
        };
        let (data, warning) = read_data(&role, f);
        let mut resp = Response::data(data);
        resp.warnings.extend(warning.map(String::from));
        Ok(Some(resp))
    }

    async fn field_update(
        &self,
        req: &Request,
        d: &FieldData<'_>,
        f: F,
    ) -> Result<Option<Response>> {
        let name = d.get_str("role_name")?.unwrap_or_default();
        let mount_max = self.mount_max_ttl();
        let _guard = self.role_write.lock().await;
        let mut role = self
            .role(&req.storage, &name)
            .await?
            .ok_or(Error::UnsupportedPath)?;
        let previous_role_id = role.role_id.clone();
        super::role_field_update::apply_update(&mut role, d, f, mount_max)?;
        self.save_role(&req.storage, &role, Some(&previous_role_id))
            .await?;
        Ok(None)
    }

    async fn field_delete(
        &self,
        req: &Request,
        d: &FieldData<'_>,
        f: F,
    ) -> Result<Option<Response>> {
        let name = d.get_str("role_name")?.unwrap_or_default();
        let _guard = self.role_write.lock().await;
        let Some(mut role) = self.role(&req.storage, &name).await? else {
            return Ok(None);
        };
        match f {
            F::Policies => (role.token_policies, role.policies) = (Vec::new(), Vec::new()),
            // Vault clears only the legacy field here, which is always empty after migration.
            F::BoundCidrList | F::RoleId | F::LocalSecretIds => {}
            F::SecretIdBoundCidrs => role.secret_id_bound_cidrs = None,
            F::TokenBoundCidrs => role.token_bound_cidrs = Vec::new(),
            F::BindSecretId => role.bind_secret_id = true,
            F::SecretIdNumUses => role.secret_id_num_uses = 0,
            F::SecretIdTtl => role.secret_id_ttl = 0,
            F::Period => (role.token_period, role.period) = (0, 0),
            F::TokenNumUses => role.token_num_uses = 0,
            F::TokenTtl => role.token_ttl = 0,
            F::TokenMaxTtl => role.token_max_ttl = 0,
        }
        self.save_role(&req.storage, &role, None).await?;
        Ok(None)
    }
}
