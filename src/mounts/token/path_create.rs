//! `auth/token/create`, `create-orphan` and `create/<role>` (a token role's rules applied to the
//! request: its policy bounds, orphaning, period, explicit maximum, use limit and path suffix).

use std::collections::BTreeMap;

use super::TokenBackend;
use super::path_roles::{ROLE_NAME, TokenRole, glob_match};
use crate::core::token_issue::{IssueRequest, RoleLimits, TtlRule};
use crate::error::{Error, Result};
use crate::logical::field::parse_duration_seconds;
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};
use crate::secret::Secret;
use crate::token::normalize_policies;

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
    };
    vec![
        fields(P::new("create$")).on(Op::Update, |b, r, d| {
            Box::pin(b.token_create(r, d, false, None))
        }),
        fields(P::new("create-orphan$")).on(Op::Update, |b, r, d| {
            Box::pin(b.token_create(r, d, true, None))
        }),
        // Only here is `role_name` a field; sent to `create` it is ignored with a warning.
        fields(P::new(&format!("create/{ROLE_NAME}$")))
            .field("role_name", T::Str, "Token role.")
            .on(Op::Update, |b, r, d| Box::pin(b.token_create_role(r, d))),
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

/// Vault's policy rules for a role with allowed and/or disallowed policies: the role, not the
/// parent, bounds what the token may have.
fn role_policies(
    role: &TokenRole,
    requested: Option<Vec<String>>,
    parent_policies: &[String],
    no_default: bool,
) -> Result<Vec<String>> {
    let default_disallowed = role.disallowed_policies.iter().any(|p| p == "default")
        || role
            .disallowed_policies_glob
            .iter()
            .any(|g| glob_match(g, "default"));
    let add_default = !no_default && !role.token_no_default_policy && !default_disallowed;
    let mut policies = requested
        .filter(|p| !p.is_empty())
        .map(|p| normalize_policies(p, add_default))
        .unwrap_or_default();
    if !role.allowed_policies.is_empty() || !role.allowed_policies_glob.is_empty() {
        let allowed = normalize_policies(role.allowed_policies.clone(), add_default);
        if policies.is_empty() {
            policies = allowed;
        } else {
            let globs = normalize_policies(role.allowed_policies_glob.clone(), false);
            let ok = |p: &String| allowed.contains(p) || globs.iter().any(|g| glob_match(g, p));
            if !policies.iter().all(ok) {
                return Err(Error::bad(format!(
                    "token policies ({}) must be subset of the role's allowed policies ({}) or glob policies ({})",
                    go_quote_list(&policies),
                    go_quote_list(&allowed),
                    go_quote_list(&globs)
                )));
            }
        }
    } else if policies.is_empty() {
        policies = normalize_policies(parent_policies.to_vec(), add_default);
    }
    for p in &policies {
        if role.disallowed_policies.contains(p)
            || role
                .disallowed_policies_glob
                .iter()
                .any(|g| glob_match(g, p))
        {
            return Err(Error::bad(format!(
                "token policy {p:?} is disallowed by this role"
            )));
        }
    }
    Ok(policies)
}

/// Go's `%q` of a string list: `["a" "b"]`.
fn go_quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", inner.join(" "))
}

impl TokenBackend {
    /// `auth/token/create/<role>`: the role must exist (its name keeps its case).
    async fn token_create_role(
        &self,
        req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let name = d.get_str("role_name")?.unwrap_or_default();
        let role = self
            .role_get(&name)
            .await?
            .ok_or_else(|| Error::bad(format!("unknown role {name}")))?;
        self.token_create(req, d, false, Some(role)).await
    }

    async fn token_create(
        &self,
        req: &Request,
        d: &FieldData<'_>,
        orphan_path: bool,
        role: Option<TokenRole>,
    ) -> Result<Option<Response>> {
        let core = self.core()?;
        let parent = Self::caller(req)?;
        if parent.num_uses != 0 {
            return Err(Error::bad(
                "restricted use token cannot generate child tokens",
            ));
        }
        let sudo = self.caller_has_sudo(req)?;
        let requested_type = d.get_str("type")?.unwrap_or_default();
        if !matches!(requested_type.as_str(), "service" | "batch" | "") {
            // Vault names the value for a role's token_type, not here.
            return Err(Error::bad("invalid 'token_type' value"));
        }
        // A role decides or defaults the type; a batch token is refused after the policy checks.
        let batch = match role.as_ref().map(|r| r.token_type.as_str()) {
            Some("batch") => true,
            Some("service") => false,
            Some("default-batch") => requested_type != "service",
            _ => requested_type == "batch",
        };
        if batch && role.is_none() {
            return Err(Error::bad("batch tokens are not supported by this server"));
        }
        let mut num_uses = d.get_int("num_uses")?.unwrap_or(0);
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
        let entity_alias = d.get_str("entity_alias")?.unwrap_or_default();
        if !entity_alias.is_empty() {
            let allowed = role
                .as_ref()
                .ok_or_else(|| {
                    Error::bad("'entity_alias' is only allowed in combination with token role")
                })?
                .allowed_entity_aliases
                .clone()
                .unwrap_or_default();
            let alias = entity_alias.to_lowercase();
            if !allowed.iter().any(|g| glob_match(g, &alias)) {
                return Err(Error::bad("invalid 'entity_alias' value"));
            }
        }

        // Policies: a role with allowed/disallowed lists bounds them; otherwise inherit, or a
        // subset of the parent's unless sudo.
        let no_default = d.get_bool("no_default_policy")?.unwrap_or(false);
        let parent_has_default = parent.policies.iter().any(|p| p == "default");
        let requested = d.get_list("policies")?;
        let role_bounds = role.as_ref().filter(|r| {
            !r.allowed_policies.is_empty()
                || !r.disallowed_policies.is_empty()
                || !r.allowed_policies_glob.is_empty()
                || !r.disallowed_policies_glob.is_empty()
        });
        let mut policies = match (role_bounds, requested) {
            (Some(r), requested) => role_policies(r, requested, &parent.policies, no_default)?,
            (None, None) => parent
                .policies
                .iter()
                .filter(|p| *p != "default" || !no_default)
                .cloned()
                .collect(),
            (None, Some(req_pols)) if req_pols.is_empty() => parent
                .policies
                .iter()
                .filter(|p| *p != "default" || !no_default)
                .cloned()
                .collect(),
            (None, Some(req_pols)) => {
                let req_pols = normalize_policies(req_pols, false);
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
        if policies.iter().any(|p| p == "response-wrapping") {
            return Err(Error::bad("cannot assign policy \"response-wrapping\""));
        }
        if policies.iter().any(|p| p == "root") {
            if !parent.is_root() {
                return Err(Error::bad(
                    "root tokens may not be created without parent token being root",
                ));
            }
            if batch {
                return Err(Error::bad("batch tokens cannot be root tokens"));
            }
        }
        if batch {
            return Err(Error::bad("batch tokens are not supported by this server"));
        }
        let mut warnings = Vec::new();
        for p in &policies {
            if p != "root" && p != "default" && core.policies.get(p)?.is_none() {
                warnings.push(format!("Policy {p:?} does not exist"));
            }
        }

        // A role decides orphaning (no sudo needed; `no_parent` is then ignored).
        let no_parent = d.get_bool("no_parent")?.unwrap_or(false);
        let orphan = match &role {
            Some(r) => r.orphan,
            None => {
                if no_parent && !orphan_path && !sudo {
                    return Err(Error::bad(
                        "root or sudo privileges required to create orphan token",
                    ));
                }
                orphan_path || no_parent
            }
        };
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
        let renewable = d.get_bool("renewable")?.unwrap_or(true);
        let mut meta = d.get_kv_pairs("meta")?.or(d.get_kv_pairs("metadata")?);
        if meta.as_ref().is_some_and(BTreeMap::is_empty) {
            meta = None;
        }
        let mut path = req.full_path.clone();
        if let Some(r) = &role {
            num_uses = match (num_uses, r.token_num_uses) {
                (n, 0) => n,
                (0, m) => m,
                (n, m) => n.min(m),
            };
            if !r.path_suffix.is_empty() {
                path = format!("{path}/{}", r.path_suffix);
            }
        }
        // A non-expiring token is left unbound by the issuer.
        let bound_cidrs = match &role {
            Some(r) => r.token_bound_cidrs.clone(),
            None if orphan => Vec::new(),
            None => parent.bound_cidrs.clone(),
        };
        let entity_id = if !entity_alias.is_empty() {
            crate::core::entity_id(&req.mount.accessor, &entity_alias)
        } else if orphan {
            String::new()
        } else {
            parent.entity_id.clone()
        };
        let (default, max) = core.mount_ttls(&req.mount);
        let issued = core
            .issue_token(IssueRequest {
                id: id.map(Secret::new),
                policies,
                meta,
                display_name: display_name(&d.get_str("display_name")?.unwrap_or_default()),
                path: path.clone(),
                creator: req.token.clone(),
                orphan,
                entity_id,
                bound_cidrs,
                num_uses,
                renewable,
                has_lease: true,
                ttl_rule: TtlRule::Mount { default, max },
                ttl,
                period,
                explicit_max_ttl,
                role_limits: role.as_ref().map(|r| RoleLimits {
                    period: r.token_period,
                    explicit_max_ttl: r.token_explicit_max_ttl,
                    renewable: r.renewable,
                }),
                role: role.map(|r| r.name).unwrap_or_default(),
                ..Default::default()
            })
            .await?;
        warnings.extend(issued.warnings.iter().cloned());
        tracing::info!(token.path = %path, "token created");
        Ok(Some(Response {
            issued_auth: Some(issued.auth_block()),
            issued_entry: Some(issued.entry.clone()),
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
