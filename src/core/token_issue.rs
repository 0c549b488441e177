//! The one place tokens are issued. Logins (`Response.auth`), `auth/token/create` (and its
//! orphan and role forms), response-wrapping tokens and root tokens all describe the token they
//! want as an [`IssueRequest`]; [`Core::issue_token`] applies the rules every token follows:
//! policies normalised, the TTL decided (Vault's arithmetic against the mount's default and
//! maximum, a role's limits, the non-expiring root token), a non-expiring token left unbound,
//! and the child linked under its parent's lock (by the token store) while the parent is live.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::Core;
use crate::error::{Error, Result};
use crate::logical::{Auth, MountEntry};
use crate::secret::Secret;
use crate::token::ttl::{TtlInputs, calculate_ttl};
use crate::token::{NewToken, TokenEntry, normalize_policies};

/// The policy of a response-wrapping token.
const WRAPPING_POLICY: &str = "response-wrapping";

/// How the TTL of a new token is decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TtlRule {
    /// Vault's TTL arithmetic (`token::ttl`) against the issuing mount's default and maximum
    /// TTL: the requested TTL (else the mount default), a period, capped by the backend's, the
    /// explicit and the mount's maximum. A root token asking for no TTL, period or explicit
    /// maximum never expires (and is not renewable), unless its creator expires.
    Mount {
        /// The mount's default TTL, seconds.
        default: i64,
        /// The mount's maximum TTL, seconds.
        max: i64,
    },
    /// Exactly the requested TTL, outside any mount's limits (0 = never expires): wrapping
    /// tokens and root tokens.
    #[default]
    Fixed,
}

/// A token role's limits (`auth/token/create/<role>`): its period and explicit maximum each
/// apply when the request asks for none, the lesser of both when it does (with Vault's warning);
/// they bound the TTL computed now, while the entry keeps what was requested, as renewal reads
/// the role again. A non-renewable role makes the token non-renewable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleLimits {
    /// The role's `token_period`.
    pub period: i64,
    /// The role's `token_explicit_max_ttl`.
    pub explicit_max_ttl: i64,
    /// The role's `renewable`.
    pub renewable: bool,
}

/// Everything that distinguishes one issued token from another. Its `Debug` never shows `id`.
#[derive(Debug, Default)]
pub struct IssueRequest {
    /// Caller-chosen id (sudo); otherwise a random `hvs.` id.
    pub id: Option<Secret>,
    /// Policies (normalised by the issuer).
    pub policies: Vec<String>,
    /// Metadata.
    pub meta: Option<BTreeMap<String, String>>,
    /// Display name.
    pub display_name: String,
    /// The path that created the token (its lease path).
    pub path: String,
    /// The issuing auth mount's accessor (empty for the token store's own tokens).
    pub mount_accessor: String,
    /// The creating token; `None` for logins, wrapping and root tokens.
    pub creator: Option<Arc<TokenEntry>>,
    /// Whether the token stays out of its creator's tree.
    pub orphan: bool,
    /// Entity id.
    pub entity_id: String,
    /// Bound CIDRs (dropped when the token never expires).
    pub bound_cidrs: Vec<String>,
    /// Backend data kept for renewal.
    pub internal: BTreeMap<String, String>,
    /// Token role name.
    pub role: String,
    /// Use limit (0 = unlimited).
    pub num_uses: i64,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// Whether the token has a lease (false only for init's root token).
    pub has_lease: bool,
    /// How the TTL is decided.
    pub ttl_rule: TtlRule,
    /// Requested TTL, seconds (0 = the mount default under [`TtlRule::Mount`]).
    pub ttl: i64,
    /// Requested period, seconds.
    pub period: i64,
    /// Requested explicit maximum TTL, seconds.
    pub explicit_max_ttl: i64,
    /// The backend's maximum TTL (a login role's `token_max_ttl`), seconds.
    pub backend_max_ttl: i64,
    /// A token role's limits.
    pub role_limits: Option<RoleLimits>,
}

impl IssueRequest {
    /// A single-use, non-renewable `response-wrapping` token living exactly `ttl` seconds.
    pub fn wrapping(ttl: i64, creation_path: &str, display_name: &str) -> Self {
        IssueRequest {
            policies: vec![WRAPPING_POLICY.into()],
            display_name: display_name.to_string(),
            path: creation_path.to_string(),
            orphan: true,
            num_uses: 1,
            renewable: false,
            has_lease: true,
            ttl_rule: TtlRule::Fixed,
            ttl,
            explicit_max_ttl: ttl,
            ..Default::default()
        }
    }

    /// A root token. Without an id it is init's root token (`auth/token/root`, no lease); with
    /// one it is dev mode's `-dev-root-token-id` token, which Vault makes through
    /// `auth/token/create` as a non-renewable orphan (`display_name` `token`).
    pub fn root(id: Option<Secret>) -> Self {
        let base = IssueRequest {
            policies: vec!["root".into()],
            orphan: true,
            ttl_rule: TtlRule::Fixed,
            ..Default::default()
        };
        match id {
            None => IssueRequest {
                display_name: "root".into(),
                path: "auth/token/root".into(),
                ..base
            },
            Some(id) => IssueRequest {
                id: Some(id),
                display_name: "token".into(),
                path: "auth/token/create".into(),
                has_lease: true,
                ..base
            },
        }
    }
}

/// A freshly issued token: the only moment its plaintext exists server-side.
#[derive(Debug)]
pub struct Issued {
    /// The token.
    pub token: Secret,
    /// Its accessor.
    pub accessor: String,
    /// The stored entry.
    pub entry: Arc<TokenEntry>,
    /// Whether it is an orphan.
    pub orphan: bool,
    /// Warnings of the TTL computation (capped values, the role's lesser limits).
    pub warnings: Vec<String>,
    /// A login whose alias had never logged in before (Vault's `entity_created`).
    pub entity_created: bool,
}

impl Issued {
    /// The `auth` block of a response for this token.
    pub fn auth_block(&self) -> Value {
        let e = &self.entry;
        json!({
            "client_token": self.token.expose(),
            "accessor": self.accessor,
            "policies": e.policies,
            "token_policies": e.policies,
            "metadata": e.meta,
            "lease_duration": e.ttl,
            "renewable": e.renewable,
            "entity_id": e.entity_id,
            "token_type": e.token_type,
            "orphan": self.orphan,
            "mfa_requirement": null,
            "num_uses": e.num_uses,
        })
    }
}

/// Combines a requested duration with a role's: the role's applies when none is requested,
/// the lesser when both are (with Vault's warning).
fn lesser(requested: i64, role: i64, what: &str, warnings: &mut Vec<String>) -> i64 {
    match (requested, role) {
        (_, 0) => requested,
        (0, r) => r,
        (q, r) => {
            let v = q.min(r);
            warnings.push(format!(
                "{what} specified both during creation call and in role; using the lesser value of {v} seconds"
            ));
            v
        }
    }
}

/// The effective TTL and renewability of a new token, and the warnings of the computation.
fn decide_ttl(r: &IssueRequest, policies: &[String]) -> Result<(i64, bool, Vec<String>)> {
    let TtlRule::Mount { default, max } = r.ttl_rule else {
        return Ok((r.ttl, r.renewable, Vec::new()));
    };
    let mut warnings = Vec::new();
    let (explicit_max, period, renewable) = match r.role_limits {
        Some(role) => {
            let explicit_max = lesser(
                r.explicit_max_ttl,
                role.explicit_max_ttl,
                "Explicit max TTL",
                &mut warnings,
            );
            let period = lesser(r.period, role.period, "Period", &mut warnings);
            (explicit_max, period, r.renewable && role.renewable)
        }
        None => (r.explicit_max_ttl, r.period, r.renewable),
    };
    let is_root = policies.iter().any(|p| p == "root");
    if is_root && r.ttl == 0 && period == 0 && explicit_max == 0 {
        if r.creator.as_ref().is_some_and(|c| c.expire_nanos.is_some()) {
            return Err(Error::bad(
                "expiring root tokens cannot create non-expiring root tokens",
            ));
        }
        return Ok((0, false, warnings));
    }
    let (ttl, w) = calculate_ttl(TtlInputs {
        mount_default: default,
        mount_max: max,
        ttl: r.ttl,
        period,
        backend_max: r.backend_max_ttl,
        explicit_max,
        ..Default::default()
    })
    .map_err(Error::bad)?;
    warnings.extend(w);
    Ok((ttl, renewable, warnings))
}

impl Core {
    /// Issues a token: the one function every token is created by.
    pub async fn issue_token(&self, r: IssueRequest) -> Result<Issued> {
        let policies = normalize_policies(r.policies.iter().cloned(), false);
        let (ttl, renewable, warnings) = decide_ttl(&r, &policies)?;
        // A token that never expires is not bound to addresses (as in Vault).
        let bound_cidrs = if ttl == 0 { Vec::new() } else { r.bound_cidrs };
        let parent_key = match (&r.creator, r.orphan) {
            (Some(c), false) => Some(c.key.clone()),
            _ => None,
        };
        let orphan = parent_key.is_none();
        let created = self
            .tokens
            .create(NewToken {
                id: r.id,
                policies,
                meta: r.meta,
                display_name: r.display_name,
                path: r.path,
                num_uses: r.num_uses,
                ttl,
                explicit_max_ttl: r.explicit_max_ttl,
                period: r.period,
                renewable,
                has_lease: r.has_lease,
                parent_key,
                bound_cidrs,
                entity_id: r.entity_id,
                mount_accessor: r.mount_accessor,
                backend_max_ttl: r.backend_max_ttl,
                internal: r.internal,
                role: r.role,
            })
            .await?;
        self.count_token_creation(&created.entry);
        Ok(Issued {
            token: created.token,
            accessor: created.accessor,
            entry: created.entry,
            orphan,
            warnings,
            entity_created: false,
        })
    }

    /// The effective (default, max) TTL of a mount.
    pub fn mount_ttls(&self, entry: &MountEntry) -> (i64, i64) {
        entry
            .config
            .lease_ttls(self.config.default_lease_ttl, self.config.max_lease_ttl)
    }

    /// The request for the token of a successful login on `mount` at `path`: the mount's TTL
    /// limits, the mount's path in the display name, the alias's entity.
    pub fn login_request(&self, mount: &MountEntry, path: &str, auth: &Auth) -> IssueRequest {
        let (default, max) = self.mount_ttls(mount);
        let base = mount.path.trim_end_matches('/').replace('/', "-");
        let display_name = if auth.display_name.is_empty() {
            base
        } else {
            format!("{base}-{}", auth.display_name)
        };
        let entity_id = if auth.alias_name.is_empty() {
            String::new()
        } else {
            entity_id(&mount.accessor, &auth.alias_name)
        };
        IssueRequest {
            policies: auth.policies.clone(),
            meta: Some(auth.metadata.clone()),
            display_name,
            path: path.to_string(),
            mount_accessor: mount.accessor.clone(),
            orphan: true,
            entity_id,
            bound_cidrs: auth.bound_cidrs.clone(),
            internal: auth.internal.clone(),
            num_uses: auth.num_uses,
            renewable: auth.renewable,
            has_lease: true,
            ttl_rule: TtlRule::Mount { default, max },
            ttl: auth.ttl,
            period: auth.period,
            explicit_max_ttl: auth.explicit_max_ttl,
            backend_max_ttl: auth.max_ttl,
            ..Default::default()
        }
    }

    /// Creates the token for a successful login on `mount`.
    pub async fn issue_login_token(
        &self,
        mount: &MountEntry,
        path: &str,
        auth: &Auth,
    ) -> Result<Issued> {
        let request = self.login_request(mount, path, auth);
        let entity_created = self.first_sight_of_entity(&request.entity_id).await?;
        let mut issued = self.issue_token(request).await?;
        issued.entity_created = entity_created;
        Ok(issued)
    }

    /// Records that `entity_id` has logged in; true the first time (Vault creates the entity
    /// then, and its audit entry says `entity_created`). Entities are derived, not stored:
    /// this marker is all there is of them.
    async fn first_sight_of_entity(&self, entity_id: &str) -> Result<bool> {
        if entity_id.is_empty() {
            return Ok(false);
        }
        let raw = self.storage("");
        let key = format!("{ENTITY_SEEN_PREFIX}{entity_id}");
        let _guard = raw.lock(&key).await;
        if raw.get(&key).await?.is_some() {
            return Ok(false);
        }
        raw.put(&key, Vec::new()).await?;
        Ok(true)
    }

    /// Creates a root token (see [`IssueRequest::root`]).
    pub async fn create_root_token(&self, id: Option<String>) -> Result<Secret> {
        Ok(self
            .issue_token(IssueRequest::root(id.map(Secret::new)))
            .await?
            .token)
    }
}

/// Where a derived entity is marked as seen (see [`Core::first_sight_of_entity`]).
pub(crate) const ENTITY_SEEN_PREFIX: &str = "core/entity-seen/";

/// A stable entity id for an alias (Vault creates an entity on first login; we derive one).
pub(crate) fn entity_id(mount_accessor: &str, alias: &str) -> String {
    let digest = Sha256::digest(format!("{mount_accessor}\0{alias}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount_rule() -> TtlRule {
        TtlRule::Mount {
            default: 3600,
            max: 7200,
        }
    }

    #[test]
    fn role_limits_apply_lesser_with_warnings() {
        let r = IssueRequest {
            ttl_rule: mount_rule(),
            period: 600,
            explicit_max_ttl: 0,
            role_limits: Some(RoleLimits {
                period: 300,
                explicit_max_ttl: 900,
                renewable: true,
            }),
            renewable: true,
            ..Default::default()
        };
        let (ttl, renewable, warnings) = decide_ttl(&r, &["default".into()]).unwrap();
        assert_eq!(ttl, 300);
        assert!(renewable);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("Period"), "{warnings:?}");
    }

    #[test]
    fn fixed_ttl_ignores_mount_limits_and_root_never_expires() {
        let w = IssueRequest::wrapping(999_999_999, "sys/wrapping/wrap", "x");
        assert_eq!(decide_ttl(&w, &w.policies).unwrap().0, 999_999_999);
        let root = IssueRequest {
            ttl_rule: mount_rule(),
            renewable: true,
            ..Default::default()
        };
        let roots = vec!["root".to_string()];
        assert_eq!(decide_ttl(&root, &roots).unwrap(), (0, false, vec![]));
        assert_eq!(decide_ttl(&root, &["a".into()]).unwrap().0, 3600);
    }
}
