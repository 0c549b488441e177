//! Validation and application of one per-field sub-endpoint update (`role/<name>/token-ttl`,
//! `.../policies`, ...), each with the message its Vault handler uses. The caller holds the role
//! lock and persists the result through `save_role`, which enforces the role-wide rules.

use super::path_role_fields::F;
use super::store::RoleEntry;
use super::validation::{parse_addrs, validate_cidr_list};
use crate::error::{Error, Result};
use crate::logical::FieldData;
use crate::logical::field::go_duration;
use crate::token::normalize_policies;

fn missing(name: &str) -> Error {
    Error::bad(format!("missing {name}"))
}

/// Applies one sub-endpoint update to `role`, with that endpoint's validation and messages.
pub(super) fn apply_update(
    role: &mut RoleEntry,
    d: &FieldData<'_>,
    f: F,
    mount_max: i64,
) -> Result<()> {
    match f {
        F::LocalSecretIds => return Err(Error::UnsupportedOperation),
        F::Policies => {
            if let Some(p) = d.get_list("token_policies")? {
                role.token_policies = normalize_policies(p, false);
                role.policies = if d.has("policies") {
                    role.token_policies.clone()
                } else {
                    Vec::new()
                };
            } else {
                let p = d
                    .get_list("policies")?
                    .ok_or_else(|| missing("token_policies"))?;
                role.policies = normalize_policies(p, false);
                role.token_policies = role.policies.clone();
            }
        }
        F::BoundCidrList | F::SecretIdBoundCidrs => {
            let field = if f == F::SecretIdBoundCidrs {
                "secret_id_bound_cidrs"
            } else {
                "bound_cidr_list"
            };
            if let Some(cidrs) = d.get_list(field)? {
                if cidrs.is_empty() {
                    return Err(missing("bound_cidr_list"));
                }
                validate_cidr_list(&cidrs)
                    .map_err(|e| Error::bad(format!("failed to validate CIDR blocks: {e}")))?;
                role.secret_id_bound_cidrs = Some(cidrs);
            }
        }
        F::TokenBoundCidrs => {
            if let Some(c) = d.get_list("token_bound_cidrs")? {
                role.token_bound_cidrs = parse_addrs(&c)
                    .map_err(|e| Error::bad(format!("failed to parse token_bound_cidrs: {e}")))?;
            }
        }
        F::BindSecretId => {
            role.bind_secret_id = d
                .get_bool("bind_secret_id")?
                .ok_or_else(|| missing("bind_secret_id"))?;
        }
        F::SecretIdNumUses => {
            let n = d
                .get_int("secret_id_num_uses")?
                .ok_or_else(|| missing("secret_id_num_uses"))?;
            if n < 0 {
                return Err(Error::bad("secret_id_num_uses cannot be negative"));
            }
            role.secret_id_num_uses = n;
        }
        F::SecretIdTtl => {
            role.secret_id_ttl = d
                .get_duration("secret_id_ttl")?
                .ok_or_else(|| missing("secret_id_ttl"))?;
        }
        F::Period => {
            if let Some(p) = d.get_duration("token_period")? {
                role.token_period = p;
                role.period = if d.has("period") { p } else { 0 };
            } else {
                let p = d.get_duration("period")?.ok_or_else(|| missing("period"))?;
                (role.period, role.token_period) = (p, p);
            }
            if role.token_period > mount_max {
                // Vault prints the legacy field here (0s when only token_period was sent).
                return Err(Error::bad(format!(
                    "period of {:?} is greater than the backend's maximum lease TTL of {:?}",
                    go_duration(role.period),
                    go_duration(mount_max)
                )));
            }
        }
        F::TokenNumUses => {
            let n = d
                .get_int("token_num_uses")?
                .ok_or_else(|| missing("token_num_uses"))?;
            // Vault accepts a negative value here and then fails every later role write; we
            // refuse it with the main endpoint's message instead.
            if n < 0 {
                return Err(Error::bad("'token_num_uses' cannot be negative"));
            }
            role.token_num_uses = n;
        }
        F::TokenTtl => {
            role.token_ttl = d
                .get_duration("token_ttl")?
                .ok_or_else(|| missing("token_ttl"))?;
            if role.token_max_ttl > 0 && role.token_ttl > role.token_max_ttl {
                return Err(Error::bad(
                    "token_ttl should not be greater than token_max_ttl",
                ));
            }
        }
        F::TokenMaxTtl => {
            role.token_max_ttl = d
                .get_duration("token_max_ttl")?
                .ok_or_else(|| missing("token_max_ttl"))?;
            if role.token_max_ttl > 0 && role.token_ttl > role.token_max_ttl {
                return Err(Error::bad(
                    "token_max_ttl should be greater than or equal to token_ttl",
                ));
            }
        }
        F::RoleId => {
            role.role_id = d.get_str("role_id")?.unwrap_or_default();
            if role.role_id.is_empty() {
                return Err(missing("role_id"));
            }
        }
    }
    Ok(())
}
