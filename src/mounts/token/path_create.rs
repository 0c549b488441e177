//! `auth/token/create`, `create-orphan` and `create/<role>` (roles are not supported yet).

use std::collections::BTreeMap;

use super::TokenBackend;
use crate::core::auth_block;
use crate::error::{Error, Result};
use crate::logical::field::parse_duration_seconds;
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};
use crate::secret::Secret;
use crate::token::ttl::{TtlInputs, calculate_ttl};
use crate::token::{NewToken, normalize_policies};

type P = PathSpec<TokenBackend>;

pub(super) fn paths() -> Vec<PathSpec<TokenBackend>> {
    let fields = |p: PathSpec<TokenBackend>| {
        p.field("id", T::Str, "Custom token id (sudo).")
            .field("policies", T::StringSlice, "Policies of the token.")
            .field("meta", T::KvPairs, "Metadata.")
            .field("metadata", T::KvPairs, "Alias of meta.")
            .field("no_parent", T::Bool, "Create an orphan (sudo).")
            .field(
                "no_default_policy",
                T::Bool,
                "Do not add the default policy.",
            )
            .field("renewable", T::Bool, "Whether the token can be renewed.")
            .field("ttl", T::Raw, "TTL.")
            .field("lease", T::Raw, "Deprecated alias of ttl.")
            .field("explicit_max_ttl", T::Raw, "Hard maximum TTL.")
            .field("period", T::Raw, "Period (sudo).")
            .field("display_name", T::Str, "Display name.")
            .field("num_uses", T::Int, "Number of uses (0 = unlimited).")
            .field("type", T::Str, "service or batch.")
            .field("entity_alias", T::Str, "Entity alias (roles only).")
            .field("role_name", T::Str, "Token role.")
    };
    vec![
        fields(P::new("create$")).on(Op::Update, |b, r, d| Box::pin(b.token_create(r, d, false))),
        fields(P::new("create-orphan$"))
            .on(Op::Update, |b, r, d| Box::pin(b.token_create(r, d, true))),
        fields(P::new(r"create/(?P<role_name>\w(?:[\w.-]*\w)?)$")).on(Op::Update, |_, _, d| {
            Box::pin(async move {
                let role = d.get_str("role_name")?.unwrap_or_default();
                Err(Error::bad(format!("unknown role {role}")))
            })
        }),
    ]
}

/// Token create parses its durations in the handler, as Vault does: Go's parse error as is, and
/// `<field> must be positive` for negative values.
fn duration_param(d: &FieldData<'_>, name: &str) -> Result<i64> {
    let secs = match d.get_raw(name) {
        None => 0,
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .unwrap_or_else(|| n.as_f64().map_or(0, |f| f as i64)),
        Some(serde_json::Value::String(s)) => parse_duration_seconds(s).map_err(Error::bad)?,
        Some(other) => {
            return Err(Error::bad(format!(
                "time: invalid duration {:?}",
                other.to_string()
            )));
        }
    };
    if secs < 0 {
        let label = if name == "lease" { "ttl" } else { name };
        return Err(Error::bad(format!("{label} must be positive")));
    }
    Ok(secs)
}

fn display_name(raw: &str) -> String {
    if raw.is_empty() {
        return "token".into();
    }
    let cleaned: String = format!("token-{raw}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned
        .strip_suffix('-')
        .map(str::to_string)
        .unwrap_or(cleaned)
}

impl TokenBackend {
    async fn token_create(
        &self,
        req: &Request,
        d: &FieldData<'_>,
        orphan_path: bool,
    ) -> Result<Option<Response>> {
        let core = self.core()?;
        let parent = Self::caller(req)?;
        if parent.num_uses != 0 {
            return Err(Error::bad(
                "restricted use token cannot generate child tokens",
            ));
        }
        let sudo = self.caller_has_sudo(req)?;
        let token_type = d.get_str("type")?.unwrap_or_else(|| "service".into());
        match token_type.as_str() {
            "service" | "" => {}
            "batch" => return Err(Error::bad("batch tokens are not supported by this server")),
            other => return Err(Error::bad(format!("invalid 'token_type' value {other:?}"))),
        }
        let num_uses = d.get_int("num_uses")?.unwrap_or(0);
        if num_uses < 0 {
            return Err(Error::bad("number of uses cannot be negative"));
        }
        let id = d.get_str("id")?.filter(|s| !s.is_empty());
        if let Some(id) = &id {
            if !sudo {
                return Err(Error::bad(
                    "root or sudo privileges required to specify token id",
                ));
            }
            if id.starts_with("hvs.") || id.starts_with("s.") || id.contains('.') {
                return Err(Error::bad(
                    "custom token ID cannot have the 'hvs.' or 's.' prefix, or contain a '.'",
                ));
            }
        }

        // Policies: inherit, or a subset of the parent's unless sudo.
        let no_default = d.get_bool("no_default_policy")?.unwrap_or(false);
        let parent_has_default = parent.policies.iter().any(|p| p == "default");
        let requested = d.get_list("policies")?;
        let mut policies = match requested {
            None => parent
                .policies
                .iter()
                .filter(|p| *p != "default" || !no_default)
                .cloned()
                .collect(),
            Some(req_pols) => {
                let req_pols = normalize_policies(req_pols, false);
                if req_pols.iter().any(|p| p == "response-wrapping") {
                    return Err(Error::bad("cannot assign policy \"response-wrapping\""));
                }
                if req_pols.iter().any(|p| p == "root") && !parent.is_root() {
                    return Err(Error::bad(
                        "root tokens may not be created without parent token being root",
                    ));
                }
                if !sudo
                    && !parent.is_root()
                    && !req_pols.iter().all(|p| parent.policies.contains(p))
                {
                    return Err(Error::bad("child policies must be subset of parent"));
                }
                let add_default = !no_default && (sudo || parent.is_root() || parent_has_default);
                normalize_policies(req_pols, add_default)
            }
        };
        if no_default {
            policies.retain(|p| p != "default");
        }
        policies = normalize_policies(policies, false);
        let mut warnings = Vec::new();
        for p in &policies {
            if p != "root" && p != "default" && core.policies.get(p)?.is_none() {
                warnings.push(format!("Policy {p:?} does not exist"));
            }
        }

        let no_parent = d.get_bool("no_parent")?.unwrap_or(false);
        if no_parent && !orphan_path && !sudo {
            return Err(Error::bad(
                "root or sudo privileges required to create orphan token",
            ));
        }
        let orphan = orphan_path || no_parent;
        let period = duration_param(d, "period")?;
        if period > 0 && !sudo {
            return Err(Error::bad(
                "root or sudo privileges required to create periodic token",
            ));
        }
        let ttl = match duration_param(d, "ttl")? {
            0 => duration_param(d, "lease")?,
            t => t,
        };
        let explicit_max_ttl = duration_param(d, "explicit_max_ttl")?;
        let mut renewable = d.get_bool("renewable")?.unwrap_or(true);
        let mut meta = d.get_kv_pairs("meta")?.or(d.get_kv_pairs("metadata")?);
        if meta.as_ref().is_some_and(BTreeMap::is_empty) {
            meta = None;
        }

        let is_root_token = policies.iter().any(|p| p == "root");
        let (def, max) = core.mount_ttls(&req.mount);
        let effective_ttl = if is_root_token && ttl == 0 && period == 0 && explicit_max_ttl == 0 {
            if parent.expire_nanos.is_some() {
                return Err(Error::bad(
                    "expiring root tokens cannot create non-expiring root tokens",
                ));
            }
            renewable = false;
            0
        } else {
            let (t, w) = calculate_ttl(TtlInputs {
                mount_default: def,
                mount_max: max,
                ttl,
                period,
                explicit_max: explicit_max_ttl,
                ..Default::default()
            })
            .map_err(Error::bad)?;
            warnings.extend(w);
            t
        };

        let created = core
            .tokens
            .create(NewToken {
                id: id.map(Secret::new),
                policies,
                meta,
                display_name: display_name(&d.get_str("display_name")?.unwrap_or_default()),
                path: req.full_path.clone(),
                num_uses,
                ttl: effective_ttl,
                explicit_max_ttl,
                period,
                renewable,
                has_lease: true,
                parent_key: (!orphan).then(|| parent.key.clone()),
                bound_cidrs: if orphan {
                    Vec::new()
                } else {
                    parent.bound_cidrs.clone()
                },
                entity_id: if orphan {
                    String::new()
                } else {
                    parent.entity_id.clone()
                },
                ..Default::default()
            })
            .await?;
        tracing::info!(token.path = %req.full_path, "token created");
        Ok(Some(Response {
            issued_auth: Some(auth_block(&created, orphan)),
            warnings,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_names_like_vault() {
        assert_eq!(super::display_name(""), "token");
        assert_eq!(super::display_name("my app"), "token-my-app");
        assert_eq!(super::display_name("ci/"), "token-ci");
    }
}
