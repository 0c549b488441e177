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

/// The `data` of a sub-endpoint read.
fn read_data(role: &RoleEntry, f: F) -> (Map<String, Value>, Option<&'static str>) {
    let mut m = Map::new();
    let mut warning = None;
    let empty_null = |v: &Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
    match f {
        F::LocalSecretIds => {
            drop(m.insert("local_secret_ids".into(), json!(role.local_secret_ids())))
        }
        F::Policies => {
            m.insert("token_policies".into(), json!(role.token_policies));
            if !role.policies.is_empty() {
                m.insert("policies".into(), json!(role.policies));
            }
        }
        F::BoundCidrList => {
            // The legacy field is migrated into secret_id_bound_cidrs, so it always reads null.
            m.insert("bound_cidr_list".into(), Value::Null);
            warning = Some(
                "The \"bound_cidr_list\" field is deprecated and will be removed. Please use \"secret_id_bound_cidrs\" instead.",
            );
        }
        F::SecretIdBoundCidrs => drop(m.insert(
            "secret_id_bound_cidrs".into(),
            json!(role.secret_id_bound_cidrs),
        )),
        F::TokenBoundCidrs => drop(m.insert(
            "token_bound_cidrs".into(),
            empty_null(&role.token_bound_cidrs),
        )),
        F::BindSecretId => drop(m.insert("bind_secret_id".into(), json!(role.bind_secret_id))),
        F::SecretIdNumUses => {
            drop(m.insert("secret_id_num_uses".into(), json!(role.secret_id_num_uses)))
        }
        F::SecretIdTtl => drop(m.insert("secret_id_ttl".into(), json!(role.secret_id_ttl))),
        F::Period => {
            m.insert("token_period".into(), json!(role.token_period));
            if role.period > 0 {
                m.insert("period".into(), json!(role.period));
            }
        }
        F::TokenNumUses => drop(m.insert("token_num_uses".into(), json!(role.token_num_uses))),
        F::TokenTtl => drop(m.insert("token_ttl".into(), json!(role.token_ttl))),
        F::TokenMaxTtl => drop(m.insert("token_max_ttl".into(), json!(role.token_max_ttl))),
        F::RoleId => drop(m.insert("role_id".into(), json!(role.role_id))),
    }
    (m, warning)
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
