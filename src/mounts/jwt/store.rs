//! What the JWT backend persists in its mount's storage view, and how it is keyed.
//!
//! ```text
//! config              JwtConfig (key source, bound issuer, default role, allowed algorithms)
//! role/<lower name>   JwtRole (bindings, claim mappings, leeways, token_* settings)
//! ```
//!
//! Nothing here is secret (public keys, URLs, CA bundles); the browser-OIDC client secret is
//! refused at write time, so it is never stored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use crate::mounts::token_fields::TokenFields;

/// Key of the mount's configuration.
pub const CONFIG_KEY: &str = "config";
/// Prefix of role entries.
pub const ROLE_PREFIX: &str = "role/";

/// `bound_claims_type` values.
pub const BOUND_CLAIMS_STRING: &str = "string";
/// Glob matching of bound claim values (only `*` is special).
pub const BOUND_CLAIMS_GLOB: &str = "glob";

/// `auth/<mount>/config` as stored.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct JwtConfig {
    /// Issuer URL whose discovery document names the JWKS.
    pub oidc_discovery_url: String,
    /// CA bundle for the discovery URL (system roots when empty).
    pub oidc_discovery_ca_pem: String,
    /// Browser OIDC only; always empty here (writes refusing a client id).
    pub oidc_client_id: String,
    /// Browser OIDC only.
    pub oidc_response_mode: String,
    /// Browser OIDC only.
    pub oidc_response_types: Vec<String>,
    /// JWKS endpoint used directly.
    pub jwks_url: String,
    /// CA bundle for `jwks_url`.
    pub jwks_ca_pem: String,
    /// PEM public keys for offline validation.
    pub jwt_validation_pubkeys: Vec<String>,
    /// Allowed `alg`s (empty = every asymmetric algorithm).
    pub jwt_supported_algs: Vec<String>,
    /// Required `iss`, when set.
    pub bound_issuer: String,
    /// Role used when a login names none.
    pub default_role: String,
    /// Provider-specific settings (accepted and echoed, unused).
    pub provider_config: Map<String, Value>,
    /// Browser OIDC only.
    pub namespace_in_state: bool,
    /// TLS server names accepted instead of the URL's host (OpenBao).
    pub override_allowed_server_names: Vec<String>,
}

impl JwtConfig {
    /// The `data` of a config read (OpenBao's keys; `status` is added by the caller).
    pub fn read_data(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert("oidc_discovery_url".into(), json!(self.oidc_discovery_url));
        d.insert(
            "oidc_discovery_ca_pem".into(),
            json!(self.oidc_discovery_ca_pem),
        );
        d.insert("oidc_client_id".into(), json!(self.oidc_client_id));
        d.insert("oidc_response_mode".into(), json!(self.oidc_response_mode));
        d.insert(
            "oidc_response_types".into(),
            json!(self.oidc_response_types),
        );
        d.insert("default_role".into(), json!(self.default_role));
        d.insert(
            "jwt_validation_pubkeys".into(),
            json!(self.jwt_validation_pubkeys),
        );
        d.insert("jwt_supported_algs".into(), json!(self.jwt_supported_algs));
        d.insert("jwks_url".into(), json!(self.jwks_url));
        d.insert("jwks_ca_pem".into(), json!(self.jwks_ca_pem));
        d.insert("bound_issuer".into(), json!(self.bound_issuer));
        d.insert("provider_config".into(), json!(self.provider_config));
        d.insert(
            "override_allowed_server_names".into(),
            json!(self.override_allowed_server_names),
        );
        d.insert("namespace_in_state".into(), json!(self.namespace_in_state));
        d
    }
}

/// A role as stored. Durations are whole seconds.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct JwtRole {
    /// `jwt` or `oidc` (the browser flow; such roles cannot log in here).
    pub role_type: String,
    /// The shared `token_*` settings.
    #[serde(flatten)]
    pub token: TokenFields,
    /// Any-match against `aud`.
    pub bound_audiences: Vec<String>,
    /// Exact match on `sub`.
    pub bound_subject: String,
    /// `string` or `glob`.
    pub bound_claims_type: String,
    /// Claim (or JSON pointer) → value or list of values.
    pub bound_claims: Map<String, Value>,
    /// Claim (or JSON pointer) → token metadata key.
    pub claim_mappings: BTreeMap<String, String>,
    /// Claim naming the user (alias name and display name).
    pub user_claim: String,
    /// `user_claim` is a JSON pointer.
    pub user_claim_json_pointer: bool,
    /// Claim holding group names.
    pub groups_claim: String,
    /// Tolerance for `nbf`, `exp`, `iat` (0 = 60 s, -1 = none).
    pub clock_skew_leeway: i64,
    /// Synthesised lifetime of tokens without `exp` (0 = 150 s, -1 = none).
    pub expiration_leeway: i64,
    /// Synthesised `nbf` distance for tokens without `nbf` and `iat` (0 = 150 s, -1 = none).
    pub not_before_leeway: i64,
    /// Browser OIDC only (accepted and ignored).
    pub verbose_oidc_logging: bool,
    /// Browser OIDC only.
    pub allowed_redirect_uris: Vec<String>,
    /// Browser OIDC only.
    pub oidc_scopes: Vec<String>,
    /// Browser OIDC only.
    pub callback_mode: String,
    /// Browser OIDC only.
    pub max_age: i64,
    /// Browser OIDC only.
    pub poll_interval: i64,
    /// Browser OIDC only.
    pub oidc_disable_confirmation: bool,
    /// Browser OIDC only.
    pub oauth2_metadata: Vec<String>,
    /// Policies as claim templates (accepted; templates are not expanded).
    pub token_policies_template_claims: bool,
    /// Deprecated `policies`, echoed when set.
    pub policies: Vec<String>,
    /// Deprecated `bound_cidrs`, echoed when set.
    pub bound_cidrs: Vec<String>,
    /// Deprecated `ttl`.
    pub ttl: i64,
    /// Deprecated `max_ttl`.
    pub max_ttl: i64,
    /// Deprecated `period`.
    pub period: i64,
    /// Deprecated `num_uses`.
    pub num_uses: i64,
}

/// A Go nil slice in JSON: `null` when empty.
fn nil_list(v: &[String]) -> Value {
    if v.is_empty() { Value::Null } else { json!(v) }
}

impl JwtRole {
    /// The `data` of a role read: every field, durations as seconds.
    pub fn read_data(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert("role_type".into(), json!(self.role_type));
        d.insert("expiration_leeway".into(), json!(self.expiration_leeway));
        d.insert("not_before_leeway".into(), json!(self.not_before_leeway));
        d.insert("clock_skew_leeway".into(), json!(self.clock_skew_leeway));
        d.insert("bound_audiences".into(), nil_list(&self.bound_audiences));
        d.insert("bound_subject".into(), json!(self.bound_subject));
        d.insert("bound_claims_type".into(), json!(self.bound_claims_type));
        let bound = (!self.bound_claims.is_empty()).then(|| self.bound_claims.clone());
        d.insert("bound_claims".into(), json!(bound));
        let mappings = (!self.claim_mappings.is_empty()).then(|| self.claim_mappings.clone());
        d.insert("claim_mappings".into(), json!(mappings));
        d.insert("oauth2_metadata".into(), nil_list(&self.oauth2_metadata));
        d.insert("user_claim".into(), json!(self.user_claim));
        d.insert(
            "user_claim_json_pointer".into(),
            json!(self.user_claim_json_pointer),
        );
        d.insert("groups_claim".into(), json!(self.groups_claim));
        d.insert(
            "allowed_redirect_uris".into(),
            nil_list(&self.allowed_redirect_uris),
        );
        d.insert("callback_mode".into(), json!(self.callback_mode));
        d.insert("oidc_scopes".into(), nil_list(&self.oidc_scopes));
        d.insert(
            "verbose_oidc_logging".into(),
            json!(self.verbose_oidc_logging),
        );
        d.insert("max_age".into(), json!(self.max_age));
        d.insert(
            "token_policies_template_claims".into(),
            json!(self.token_policies_template_claims),
        );
        d.insert(
            "oidc_disable_confirmation".into(),
            json!(self.oidc_disable_confirmation),
        );
        self.token.read_into(&mut d);
        // OpenBao's token field; Coffer has no IP-strict binding, so it is always false.
        d.insert("token_strictly_bind_ip".into(), json!(false));
        if self.poll_interval > 0 {
            d.insert("poll_interval".into(), json!(self.poll_interval));
        }
        if !self.policies.is_empty() {
            d.insert("policies".into(), json!(self.token.token_policies));
        }
        if !self.bound_cidrs.is_empty() {
            d.insert("bound_cidrs".into(), json!(self.token.token_bound_cidrs));
        }
        for (key, v) in [
            ("ttl", self.ttl),
            ("max_ttl", self.max_ttl),
            ("period", self.period),
            ("num_uses", self.num_uses),
        ] {
            if v > 0 {
                d.insert(key.into(), json!(v));
            }
        }
        d
    }
}
