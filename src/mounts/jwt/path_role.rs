//! `role/` (LIST) and `role/<name>` (create, update, read, delete): Vault's `pathRoleCreateUpdate`
//! with its update semantics — the stored role is loaded and only the fields sent change, except
//! `role_type` (default `oidc`), `bound_claims_type` (default `string`) and `callback_mode`
//! (default `client`), which fall back to their defaults when a write omits them.
//!
//! Extensions (warnings, never errors): a `jwt` role without `bound_audiences` is accepted with a
//! warning that tokens carrying `aud` will be refused, an update that reset a glob
//! `bound_claims_type` to `string` says so, and an update names the stored bindings it kept.

use serde_json::Value;

use super::claims::{go_value, normalize_list};
use super::store::{BOUND_CLAIMS_GLOB, BOUND_CLAIMS_STRING, ROLE_PREFIX};
use super::{JwtBackend, go_err};
use crate::error::{Error, Result};
use crate::logical::field::go_duration;
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};
use crate::mounts::token_fields::token_fields;

type P = PathSpec<JwtBackend>;

/// Vault's `GenericNameRegex("name")` (Go's `\w` is ASCII only).
const ROLE_NAME: &str = r"(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)";

pub(super) fn paths() -> Vec<P> {
    vec![
        P::new("role/?$")
            .on(Op::List, |b, r, d| Box::pin(b.role_list(r, d)))
            .help("Lists all the roles registered with the backend."),
        token_fields(P::new(&format!("role/{ROLE_NAME}$")))
            .field("name", T::Str, "Name of the role.")
            .field("role_type", T::Str, "Type of the role, 'jwt' or 'oidc' (default).")
            .field("policies", T::CommaStringSlice, "Deprecated: token_policies.")
            .field("num_uses", T::Int, "Deprecated: token_num_uses.")
            .field("ttl", T::DurationSecond, "Deprecated: token_ttl.")
            .field("max_ttl", T::DurationSecond, "Deprecated: token_max_ttl.")
            .field("period", T::DurationSecond, "Deprecated: token_period.")
            .field("bound_cidrs", T::CommaStringSlice, "Deprecated: token_bound_cidrs.")
            .field("expiration_leeway", T::SignedDurationSecond, "Lifetime (s) given to tokens without 'exp' (0 = 150, -1 = none).")
            .field("not_before_leeway", T::SignedDurationSecond, "Distance (s) of the synthesised 'nbf' for tokens without 'nbf' and 'iat' (0 = 150, -1 = none).")
            .field("clock_skew_leeway", T::SignedDurationSecond, "Clock skew tolerance (s) for 'nbf', 'exp', 'iat' (0 = 60, -1 = none).")
            .field("bound_subject", T::Str, "Required value of 'sub'.")
            .field("bound_audiences", T::CommaStringSlice, "Accepted 'aud' values (any match).")
            .field("bound_claims_type", T::Str, "How bound_claims values match: 'string' (default) or 'glob'.")
            .field("bound_claims", T::Map, "Claim (or JSON pointer) → required value or list of values.")
            .field("claim_mappings", T::KvPairs, "Claim (or JSON pointer) → token metadata key.")
            .field("user_claim", T::Str, "Claim whose string value names the user.")
            .field("user_claim_json_pointer", T::Bool, "Read user_claim as a JSON pointer.")
            .field("groups_claim", T::Str, "Claim holding the user's groups.")
            .field("oidc_scopes", T::CommaStringSlice, "Browser OIDC only.")
            .field("allowed_redirect_uris", T::CommaStringSlice, "Browser OIDC only.")
            .field("verbose_oidc_logging", T::Bool, "Browser OIDC only (ignored).")
            .field("max_age", T::DurationSecond, "Browser OIDC only.")
            .field("callback_mode", T::Str, "Browser OIDC only: client, direct or device.")
            .field("poll_interval", T::Int, "Browser OIDC only.")
            .field("oidc_disable_confirmation", T::Bool, "Browser OIDC only.")
            .field("oauth2_metadata", T::CommaStringSlice, "Browser OIDC only.")
            .field("token_policies_template_claims", T::Bool, "Policies as claim templates (accepted; not expanded).")
            .existence(|b, r, d| Box::pin(b.role_exists(r, d)))
            .on(Op::Create, |b, r, d| Box::pin(b.role_write(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.role_write(r, d)))
            .on(Op::Read, |b, r, d| Box::pin(b.role_read(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.role_delete(r, d)))
            .help("Register a role with the backend."),
    ]
}

fn role_name(d: &FieldData<'_>) -> Result<String> {
    Ok(d.get_str("name")?.unwrap_or_default().to_lowercase())
}

/// Vault's `tokenutil.UpgradeValue`: the `token_*` name wins; a legacy name alone sets both.
fn upgrade<Tv: Clone + Default>(
    new_sent: bool,
    old: Option<Tv>,
    legacy: &mut Tv,
    current: &mut Tv,
) {
    if new_sent {
        *legacy = if old.is_some() {
            current.clone()
        } else {
            Tv::default()
        };
    } else if let Some(v) = old {
        *legacy = v.clone();
        *current = v;
    }
}

impl JwtBackend {
    async fn role_list(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        Ok(Some(Response::list(req.storage.list(ROLE_PREFIX).await?)))
    }

    async fn role_exists(&self, req: &Request, d: &FieldData<'_>) -> Result<bool> {
        Ok(self.role(&req.storage, &role_name(d)?).await?.is_some())
    }

    async fn role_read(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = role_name(d)?;
        if name.is_empty() {
            return Err(Error::bad("missing name"));
        }
        let Some(role) = self.role(&req.storage, &name).await? else {
            return Ok(None);
        };
        Ok(Some(Response::data(role.read_data())))
    }

    async fn role_delete(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = role_name(d)?;
        if name.is_empty() {
            return Err(Error::bad("role name required"));
        }
        let _guard = self.role_write.lock().await;
        let deleted = req.storage.delete(&format!("{ROLE_PREFIX}{name}")).await;
        self.role_cache.invalidate();
        deleted?;
        Ok(None)
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one pass over Vault's role fields, in Vault's order"
    )]
    async fn role_write(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = role_name(d)?;
        if name.is_empty() {
            return Err(Error::bad("missing role name"));
        }
        let _guard = self.role_write.lock().await;
        let existing = self.role(&req.storage, &name).await?;
        if existing.is_none() && req.operation == Op::Update {
            return Err(go_err("role entry not found during update operation"));
        }
        let mut warnings = Vec::new();
        let mut role = existing.as_deref().cloned().unwrap_or_default();
        let was_glob = existing
            .as_ref()
            .is_some_and(|r| r.bound_claims_type == BOUND_CLAIMS_GLOB);

        let role_type = match d.get_str("role_type")?.unwrap_or_default().as_str() {
            "" => "oidc".to_string(),
            t @ ("jwt" | "oidc") => t.to_string(),
            other => return Err(Error::bad(format!("invalid 'role_type': {other}"))),
        };
        role.role_type = role_type;

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
        role.token.parse(d, token_type)?;

        let t = &mut role.token;
        upgrade(
            d.has("token_policies"),
            d.get_list("policies")?,
            &mut role.policies,
            &mut t.token_policies,
        );
        upgrade(
            d.has("token_bound_cidrs"),
            d.get_list("bound_cidrs")?,
            &mut role.bound_cidrs,
            &mut t.token_bound_cidrs,
        );
        upgrade(
            d.has("token_num_uses"),
            d.get_int("num_uses")?,
            &mut role.num_uses,
            &mut t.token_num_uses,
        );
        upgrade(
            d.has("token_ttl"),
            d.get_duration("ttl")?,
            &mut role.ttl,
            &mut t.token_ttl,
        );
        upgrade(
            d.has("token_max_ttl"),
            d.get_duration("max_ttl")?,
            &mut role.max_ttl,
            &mut t.token_max_ttl,
        );
        upgrade(
            d.has("token_period"),
            d.get_duration("period")?,
            &mut role.period,
            &mut t.token_period,
        );
        if !role.bound_cidrs.is_empty() {
            t.token_bound_cidrs =
                crate::mounts::approle::validation::parse_addrs(&t.token_bound_cidrs)
                    .map_err(Error::bad)?;
        }

        let mount_max = self.sys.max_lease_ttl();
        if role.token.token_period > mount_max {
            return Err(Error::bad(format!(
                "'period' of '{:?}' is greater than the backend's maximum lease TTL of '{:?}'",
                go_duration(role.token.token_period),
                go_duration(mount_max)
            )));
        }

        if let Some(v) = d.get_duration("expiration_leeway")? {
            role.expiration_leeway = v;
        }
        if let Some(v) = d.get_duration("not_before_leeway")? {
            role.not_before_leeway = v;
        }
        if let Some(v) = d.get_duration("clock_skew_leeway")? {
            role.clock_skew_leeway = v;
        }
        if let Some(v) = d.get_list("bound_audiences")? {
            role.bound_audiences = v;
        }
        if let Some(v) = d.get_str("bound_subject")? {
            role.bound_subject = v;
        }
        if let Some(v) = d.get_bool("verbose_oidc_logging")? {
            role.verbose_oidc_logging = v;
        }
        if let Some(v) = d.get_duration("max_age")? {
            role.max_age = v;
        }
        if let Some(v) = d.get_bool("token_policies_template_claims")? {
            if v {
                // Policies would be taken literally ("{{...}}"): refuse rather than mislead.
                return Err(Error::bad(
                    "'token_policies_template_claims' is not supported by this server",
                ));
            }
            role.token_policies_template_claims = v;
        }

        let bound_type = d.get_str("bound_claims_type")?.unwrap_or_default();
        role.bound_claims_type = match bound_type.as_str() {
            "" => BOUND_CLAIMS_STRING.to_string(),
            t @ (BOUND_CLAIMS_STRING | BOUND_CLAIMS_GLOB) => t.to_string(),
            other => return Err(Error::bad(format!("invalid 'bound_claims_type': {other}"))),
        };
        if was_glob && bound_type.is_empty() && !role.bound_claims.is_empty() {
            warnings.push(
                "'bound_claims_type' was not sent and has been reset to \"string\": the stored glob bound_claims now match literally".into(),
            );
        }
        if let Some(bound) = d.get_map("bound_claims")? {
            role.bound_claims = bound;
        }
        if role.bound_claims_type == BOUND_CLAIMS_GLOB {
            for values in role.bound_claims.values() {
                let list = normalize_list(values).ok_or_else(|| {
                    Error::bad(format!(
                        "claim is not a string or list: {}",
                        go_value(values)
                    ))
                })?;
                if let Some(v) = list.iter().find(|v| !matches!(v, Value::String(_))) {
                    return Err(Error::bad(format!(
                        "claim is not a string: {}",
                        go_value(v)
                    )));
                }
            }
        }

        if let Some(mappings) = d.get_kv_pairs("claim_mappings")? {
            let mut targets = std::collections::BTreeSet::new();
            for target in mappings.values() {
                if target == "role" {
                    return Err(Error::bad(format!(
                        "metadata key {target:?} is reserved and may not be a mapping destination"
                    )));
                }
                if !targets.insert(target.clone()) {
                    return Err(Error::bad(format!(
                        "multiple keys are mapped to metadata key {target:?}"
                    )));
                }
            }
            role.claim_mappings = mappings;
        }

        if let Some(meta) = d.get_list("oauth2_metadata")? {
            if let Some(bad) = meta
                .iter()
                .find(|m| !["id_token", "refresh_token", "access_token"].contains(&m.as_str()))
            {
                return Err(Error::bad(format!(
                    "Unrecognized oauth2 metadata name {bad}"
                )));
            }
            role.oauth2_metadata = meta;
        }

        if let Some(v) = d.get_str("user_claim")? {
            role.user_claim = v;
        }
        if role.user_claim.is_empty() {
            return Err(Error::bad("a user claim must be defined on the role"));
        }
        if let Some(v) = d.get_bool("user_claim_json_pointer")? {
            role.user_claim_json_pointer = v;
        }
        if let Some(v) = d.get_str("groups_claim")? {
            role.groups_claim = v;
        }
        if let Some(v) = d.get_list("oidc_scopes")? {
            role.oidc_scopes = v;
        }
        if let Some(v) = d.get_list("allowed_redirect_uris")? {
            role.allowed_redirect_uris = v;
        }
        if let Some(v) = d.get_int("poll_interval")? {
            role.poll_interval = v;
        }
        role.callback_mode = match d.get_str("callback_mode")?.unwrap_or_default().as_str() {
            "" | "client" => "client".into(),
            m @ ("direct" | "device") => m.to_string(),
            other => return Err(Error::bad(format!("invalid 'callback_mode': {other}"))),
        };
        role.oidc_disable_confirmation = d.get_bool("oidc_disable_confirmation")?.unwrap_or(false);

        if role.role_type == "oidc" && role.allowed_redirect_uris.is_empty() {
            return Err(Error::bad(
                "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.",
            ));
        }
        if role.role_type != "oidc"
            && role.bound_audiences.is_empty()
            && role.token.token_bound_cidrs.is_empty()
            && role.bound_subject.is_empty()
            && role.bound_claims.is_empty()
        {
            return Err(Error::bad(
                "must have at least one bound constraint when creating/updating a role",
            ));
        }
        if role.token.token_max_ttl > 0 && role.token.token_ttl > role.token.token_max_ttl {
            return Err(Error::bad("ttl should not be greater than max ttl"));
        }
        if role.token.token_max_ttl > mount_max {
            warnings.push("token max ttl is greater than the system or backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".into());
        }
        if role.verbose_oidc_logging {
            warnings.push("verbose_oidc_logging has been enabled for this role. This is not recommended in production since sensitive information may be present in OIDC responses.".into());
        }
        // Vault keeps stored bindings an update does not mention (vault-plugin-auth-jwt#382: a
        // stale bound_subject looked like a token problem); say which ones were kept.
        if let Some(old) = existing.as_deref() {
            let kept: Vec<&str> = [
                ("bound_audiences", !old.bound_audiences.is_empty()),
                ("bound_subject", !old.bound_subject.is_empty()),
                ("bound_claims", !old.bound_claims.is_empty()),
                ("token_bound_cidrs", !old.token.token_bound_cidrs.is_empty()),
            ]
            .into_iter()
            .filter(|(field, set)| *set && !d.has(field))
            .map(|(field, _)| field)
            .collect();
            if !kept.is_empty() {
                warnings.push(format!(
                    "bindings kept from the stored role (not in this request): {}",
                    kept.join(", ")
                ));
            }
        }
        if role.bound_claims_type == BOUND_CLAIMS_GLOB
            && let Some(sub) = role.bound_claims.get("sub")
            && normalize_list(sub)
                .unwrap_or_default()
                .iter()
                .any(|v| v.as_str().is_some_and(|p| p.contains('*')))
        {
            warnings.push("bound_claims \"sub\" is a glob: '*' also matches ':' and '/', so \"repo:org/*\" admits every repository, branch, environment and pull request of org".into());
        }
        if role.role_type == "jwt" && role.bound_audiences.is_empty() {
            warnings.push("role has no bound_audiences: logins with a token that carries an 'aud' claim (every GitHub, GitLab and Jenkins token does) will be refused".into());
        }

        let written = req
            .storage
            .put_json(&format!("{ROLE_PREFIX}{name}"), &role)
            .await;
        self.role_cache.invalidate();
        written?;
        Ok((!warnings.is_empty()).then(|| Response {
            warnings,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::upgrade;

    #[test]
    fn legacy_values_follow_upgrade_value() {
        let (mut legacy, mut cur) = (0_i64, 5_i64);
        upgrade(false, Some(7), &mut legacy, &mut cur);
        assert_eq!((legacy, cur), (7, 7));
        upgrade(true, None, &mut legacy, &mut cur);
        assert_eq!((legacy, cur), (0, 7));
    }
}
