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

fn sub(suffix: &str) -> P {
    P::new(&format!("role/{ROLE_NAME}/{suffix}$")).field("role_name", T::Str, "Name of the role.")
}

pub(super) fn paths() -> Vec<P> {
    vec![
        sub("local-secret-ids").on(Op::Read, |b, r, d| {
            Box::pin(b.field_read(r, d, F::LocalSecretIds))
        }),
        sub("policies")
            .field(
                "token_policies",
                T::CommaStringSlice,
                "Policies of issued tokens.",
            )
            .field(
                "policies",
                T::CommaStringSlice,
                "Deprecated: token_policies.",
            )
            .on(Op::Read, |b, r, d| {
                Box::pin(b.field_read(r, d, F::Policies))
            })
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::Policies))
            })
            .on(Op::Delete, |b, r, d| {
                Box::pin(b.field_delete(r, d, F::Policies))
            }),
        sub("bound-cidr-list")
            .field(
                "bound_cidr_list",
                T::CommaStringSlice,
                "Deprecated: secret_id_bound_cidrs.",
            )
            .on(Op::Read, |b, r, d| {
                Box::pin(b.field_read(r, d, F::BoundCidrList))
            })
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::BoundCidrList))
            })
            .on(Op::Delete, |b, r, d| {
                Box::pin(b.field_delete(r, d, F::BoundCidrList))
            }),
        sub("secret-id-bound-cidrs")
            .field(
                "secret_id_bound_cidrs",
                T::CommaStringSlice,
                "CIDRs allowed to log in.",
            )
            .on(Op::Read, |b, r, d| {
                Box::pin(b.field_read(r, d, F::SecretIdBoundCidrs))
            })
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::SecretIdBoundCidrs))
            })
            .on(Op::Delete, |b, r, d| {
                Box::pin(b.field_delete(r, d, F::SecretIdBoundCidrs))
            }),
        sub("token-bound-cidrs")
            .field(
                "token_bound_cidrs",
                T::CommaStringSlice,
                "CIDRs tokens may be used from.",
            )
            .on(Op::Read, |b, r, d| {
                Box::pin(b.field_read(r, d, F::TokenBoundCidrs))
            })
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::TokenBoundCidrs))
            })
            .on(Op::Delete, |b, r, d| {
                Box::pin(b.field_delete(r, d, F::TokenBoundCidrs))
            }),
        sub("bind-secret-id")
            .field("bind_secret_id", T::Bool, "Require a secret_id at login.")
            .on(Op::Read, |b, r, d| {
                Box::pin(b.field_read(r, d, F::BindSecretId))
            })
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::BindSecretId))
            })
            .on(Op::Delete, |b, r, d| {
                Box::pin(b.field_delete(r, d, F::BindSecretId))
            }),
        sub("secret-id-num-uses")
            .field("secret_id_num_uses", T::Int, "Uses of each secret ID.")
            .on(Op::Read, |b, r, d| {
                Box::pin(b.field_read(r, d, F::SecretIdNumUses))
            })
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::SecretIdNumUses))
            })
            .on(Op::Delete, |b, r, d| {
                Box::pin(b.field_delete(r, d, F::SecretIdNumUses))
            }),
        sub("secret-id-ttl")
            .field("secret_id_ttl", T::DurationSecond, "TTL of secret IDs.")
            .on(Op::Read, |b, r, d| {
                Box::pin(b.field_read(r, d, F::SecretIdTtl))
            })
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::SecretIdTtl))
            })
            .on(Op::Delete, |b, r, d| {
                Box::pin(b.field_delete(r, d, F::SecretIdTtl))
            }),
        sub("period")
            .field(
                "token_period",
                T::DurationSecond,
                "Period of issued tokens.",
            )
            .field("period", T::DurationSecond, "Deprecated: token_period.")
            .on(Op::Read, |b, r, d| Box::pin(b.field_read(r, d, F::Period)))
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::Period))
            })
            .on(Op::Delete, |b, r, d| {
                Box::pin(b.field_delete(r, d, F::Period))
            }),
        sub("token-num-uses")
            .field("token_num_uses", T::Int, "Uses of issued tokens.")
            .on(Op::Read, |b, r, d| {
                Box::pin(b.field_read(r, d, F::TokenNumUses))
            })
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::TokenNumUses))
            })
            .on(Op::Delete, |b, r, d| {
                Box::pin(b.field_delete(r, d, F::TokenNumUses))
            }),
        sub("token-ttl")
            .field("token_ttl", T::DurationSecond, "Initial token TTL.")
            .on(Op::Read, |b, r, d| {
                Box::pin(b.field_read(r, d, F::TokenTtl))
            })
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::TokenTtl))
            })
            .on(Op::Delete, |b, r, d| {
                Box::pin(b.field_delete(r, d, F::TokenTtl))
            }),
        sub("token-max-ttl")
            .field("token_max_ttl", T::DurationSecond, "Maximum token TTL.")
            .on(Op::Read, |b, r, d| {
                Box::pin(b.field_read(r, d, F::TokenMaxTtl))
            })
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::TokenMaxTtl))
            })
            .on(Op::Delete, |b, r, d| {
                Box::pin(b.field_delete(r, d, F::TokenMaxTtl))
            }),
        sub("role-id")
            .field("role_id", T::Str, "Identifier of the role.")
            .on(Op::Read, |b, r, d| Box::pin(b.field_read(r, d, F::RoleId)))
            .on(Op::Update, |b, r, d| {
                Box::pin(b.field_update(r, d, F::RoleId))
            }),
    ]
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
        let mount_max = self.mount_max_ttl(req)?;
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
