//! `login` (`role`, `jwt`): the checks in Vault's order (config → role → role type → token
//! present → bound CIDRs → key set → signature → `alg` → `iss`/`sub`/`aud` → time → the strict
//! audience rule → user claim, claim mappings, groups → bound claims), each failure with
//! Vault's text. Also `oidc/*`, the browser flow, refused with a clear message.
//!
//! Hot path: config and role come from decoded caches and the key set is built once, so a login
//! with a known key costs one signature check and no network call. Failed logins are logged
//! with the mount, the role and a reason code — never claim values or the token.

use std::collections::BTreeMap;

use super::JwtBackend;
use super::claims::{extract_metadata, get_claim, groups, validate_bound_claims};
use super::store::BOUND_CLAIMS_GLOB;
use super::validate::{Expected, check_homoglyphs, validate_claims, verify_signature};
use crate::error::{Error, Result};
use crate::logical::{
    Auth, FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response,
};
use crate::mounts::approle::validation::ip_in_blocks;
use crate::token::normalize_policies;

type P = PathSpec<JwtBackend>;

pub(super) fn paths() -> Vec<P> {
    vec![
        P::new("login$")
            .field("role", T::Str, "The role to log in against.")
            .field("jwt", T::Str, "The signed JWT to validate.")
            .on(Op::Update, |b, r, d| Box::pin(b.login(r, d)))
            .help("Authenticates with a signed JWT (or OIDC id token)."),
        P::new("oidc/.*$")
            .on(Op::Read, |b, r, d| Box::pin(b.oidc_refused(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.oidc_refused(r, d)))
            .help("The browser OIDC flow (not supported by this server)."),
    ]
}

/// How much of a refused login's role name the log keeps.
const ROLE_LOGGED: usize = 128;

/// A rejected login: the reason code for the log, and the client-facing error.
fn reject(req: &Request, role: &str, reason: &'static str, err: Error) -> Error {
    // The role name is the caller's, unauthenticated: quoted and escaped (a newline in it
    // cannot start a line of its own) and cut short.
    let role: String = role.chars().take(ROLE_LOGGED).collect();
    tracing::info!(
        mount.path = %req.mount.path,
        role = ?role,
        reason,
        "jwt login refused"
    );
    err
}

impl JwtBackend {
    async fn oidc_refused(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        Err(Error::bad(
            "the browser OIDC flow (oidc/auth_url, oidc/callback) is not supported by this server; use a role with role_type \"jwt\" and auth/<mount>/login",
        ))
    }

    #[expect(
        clippy::too_many_lines,
        reason = "Vault's login checks, one after another, in order"
    )]
    async fn login(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let bad = |reason: &'static str, role: &str, msg: String| {
            reject(req, role, reason, Error::bad(msg))
        };
        let Some(config) = self.config(&req.storage).await? else {
            return Err(bad("config", "", "could not load configuration".into()));
        };
        let mut role_name = d.get_str("role")?.unwrap_or_default().to_lowercase();
        if role_name.is_empty() {
            role_name.clone_from(&config.default_role);
        }
        if role_name.is_empty() {
            return Err(bad("role", "", "missing role".into()));
        }
        let Some(role) = self.role(&req.storage, &role_name).await? else {
            return Err(bad(
                "role",
                &role_name,
                format!("role {role_name:?} could not be found"),
            ));
        };
        if role.role_type == "oidc" {
            return Err(bad(
                "role_type",
                &role_name,
                "role with oidc role_type is not allowed".into(),
            ));
        }
        let token = d.get_str("jwt")?.unwrap_or_default();
        if token.is_empty() {
            return Err(bad("token", &role_name, "missing token".into()));
        }
        if !role.token.token_bound_cidrs.is_empty() {
            let allowed = req
                .client_addr
                .is_some_and(|ip| ip_in_blocks(ip, &role.token.token_bound_cidrs));
            if !allowed {
                return Err(reject(req, &role_name, "cidr", Error::PermissionDenied));
            }
        }
        let validator = self.validator(&config).await.map_err(|e| {
            bad(
                "validator",
                &role_name,
                format!("error configuring token validator: {e}"),
            )
        })?;

        let (alg, claims) = verify_signature(&validator.keys, &token)
            .await
            .map_err(|e| {
                bad(
                    "signature",
                    &role_name,
                    format!("error validating token: {e}"),
                )
            })?;
        check_homoglyphs(&claims)
            .map_err(|e| bad("claims", &role_name, format!("error validating token: {e}")))?;
        let expected = Expected {
            issuer: &config.bound_issuer,
            subject: &role.bound_subject,
            audiences: &role.bound_audiences,
            algorithms: &config.jwt_supported_algs,
            clock_skew_leeway: role.clock_skew_leeway,
            expiration_leeway: role.expiration_leeway,
            not_before_leeway: role.not_before_leeway,
            now_nanos: self.sys.now_nanos(),
        };
        validate_claims(&alg, &claims, &expected)
            .map_err(|e| bad("claims", &role_name, format!("error validating token: {e}")))?;

        // CVE-2024-5798: an `aud` (string or list) on a role that binds none is refused.
        let aud_present = match get_claim(&claims, "aud") {
            Some(serde_json::Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
            None => false,
        };
        if aud_present && role.bound_audiences.is_empty() {
            return Err(bad(
                "aud",
                &role_name,
                "audience claim found in JWT but no audiences bound to the role".into(),
            ));
        }

        let user = if role.user_claim_json_pointer {
            get_claim(&claims, &role.user_claim)
        } else {
            claims
                .get(&role.user_claim)
                .filter(|v| !v.is_null())
                .cloned()
        };
        let Some(user) = user else {
            return Err(bad(
                "user_claim",
                &role_name,
                format!("claim {:?} not found in token", role.user_claim),
            ));
        };
        let Some(user) = user.as_str().map(str::to_string) else {
            return Err(bad(
                "user_claim",
                &role_name,
                format!(
                    "claim {:?} could not be converted to string",
                    role.user_claim
                ),
            ));
        };
        let mut metadata = extract_metadata(&claims, &role.claim_mappings)
            .map_err(|e| bad("claim_mappings", &role_name, e))?;
        metadata.insert("role".into(), role_name.clone());
        if !role.groups_claim.is_empty() {
            groups(&claims, &role.groups_claim).map_err(|e| bad("groups", &role_name, e))?;
        }
        validate_bound_claims(
            role.bound_claims_type == BOUND_CLAIMS_GLOB,
            &role.bound_claims,
            &claims,
        )
        .map_err(|e| {
            bad(
                "bound_claims",
                &role_name,
                format!("error validating claims: {e}"),
            )
        })?;

        let t = &role.token;
        let policies =
            normalize_policies(t.token_policies.iter().cloned(), !t.token_no_default_policy);
        if policies.iter().any(|p| p == "root") {
            return Err(Error::bad("auth methods cannot create root tokens"));
        }
        let auth = Auth {
            policies,
            metadata,
            ttl: t.token_ttl,
            max_ttl: t.token_max_ttl,
            explicit_max_ttl: t.token_explicit_max_ttl,
            period: t.token_period,
            num_uses: t.token_num_uses,
            renewable: true,
            // The token store issues service tokens only (as for AppRole).
            token_type: "service".into(),
            bound_cidrs: t.token_bound_cidrs.clone(),
            display_name: user.clone(),
            alias_name: user,
            internal: BTreeMap::from([("role".to_string(), role_name)]),
        };
        Ok(Some(Response {
            auth: Some(auth),
            ..Default::default()
        }))
    }
}
