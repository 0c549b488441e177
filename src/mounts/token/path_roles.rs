//! `auth/token/roles` and `auth/token/roles/<name>`: token roles, the templates
//! `auth/token/create/<role>` issues tokens from (see `path_create.rs` for how they apply).
//!
//! Roles are stored under the token store's view (`sys/token/roles/<name>`, barrier-encrypted).
//! Names keep their case, as in Vault: `create/FOO` does not find role `foo`. A write merges the
//! given fields into the stored role under the role's lock, so concurrent updates of different
//! fields do not lose each other.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::TokenBackend;
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};
use crate::mounts::approle::validation::parse_addrs;

type P = PathSpec<TokenBackend>;

/// Vault's `GenericNameRegex`: what a role name may be.
pub(super) const ROLE_NAME: &str = r"(?P<role_name>\w(?:[\w.-]*\w)?)";

/// A stored token role (field names as Vault's API spells them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TokenRole {
    pub name: String,
    pub allowed_policies: Vec<String>,
    pub disallowed_policies: Vec<String>,
    pub allowed_policies_glob: Vec<String>,
    pub disallowed_policies_glob: Vec<String>,
    pub allowed_entity_aliases: Option<Vec<String>>,
    pub orphan: bool,
    pub renewable: bool,
    pub path_suffix: String,
    /// Deprecated `period`, kept only to read it back as written.
    pub period: i64,
    /// Deprecated `explicit_max_ttl`, kept only to read it back.
    pub explicit_max_ttl: i64,
    /// Deprecated `bound_cidrs`, kept only to read it back.
    pub bound_cidrs: Vec<String>,
    pub token_period: i64,
    pub token_explicit_max_ttl: i64,
    pub token_bound_cidrs: Vec<String>,
    /// `service`, `batch`, `default-service` or `default-batch`.
    pub token_type: String,
    pub token_no_default_policy: bool,
    pub token_num_uses: i64,
}

impl TokenRole {
    fn new(name: &str) -> Self {
        TokenRole {
            name: name.to_string(),
            allowed_policies: Vec::new(),
            disallowed_policies: Vec::new(),
            allowed_policies_glob: Vec::new(),
            disallowed_policies_glob: Vec::new(),
            allowed_entity_aliases: None,
            orphan: false,
            renewable: true,
            path_suffix: String::new(),
            period: 0,
            explicit_max_ttl: 0,
            bound_cidrs: Vec::new(),
            token_period: 0,
            token_explicit_max_ttl: 0,
            token_bound_cidrs: Vec::new(),
            token_type: "default-service".into(),
            token_no_default_policy: false,
            token_num_uses: 0,
        }
    }

    fn read_data(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert(
            "allowed_entity_aliases".into(),
            json!(self.allowed_entity_aliases),
        );
        d.insert("allowed_policies".into(), json!(self.allowed_policies));
        d.insert(
            "allowed_policies_glob".into(),
            json!(self.allowed_policies_glob),
        );
        if !self.bound_cidrs.is_empty() {
            d.insert("bound_cidrs".into(), json!(self.bound_cidrs));
        }
        d.insert(
            "disallowed_policies".into(),
            json!(self.disallowed_policies),
        );
        d.insert(
            "disallowed_policies_glob".into(),
            json!(self.disallowed_policies_glob),
        );
        d.insert("explicit_max_ttl".into(), json!(self.explicit_max_ttl));
        d.insert("name".into(), json!(self.name));
        d.insert("orphan".into(), json!(self.orphan));
        d.insert("path_suffix".into(), json!(self.path_suffix));
        d.insert("period".into(), json!(self.period));
        d.insert("renewable".into(), json!(self.renewable));
        if !self.token_bound_cidrs.is_empty() {
            d.insert("token_bound_cidrs".into(), json!(self.token_bound_cidrs));
        }
        d.insert(
            "token_explicit_max_ttl".into(),
            json!(self.token_explicit_max_ttl),
        );
        d.insert(
            "token_no_default_policy".into(),
            json!(self.token_no_default_policy),
        );
        if self.token_num_uses != 0 {
            d.insert("token_num_uses".into(), json!(self.token_num_uses));
        }
        d.insert("token_period".into(), json!(self.token_period));
        d.insert("token_type".into(), json!(self.token_type));
        d
    }
}

/// Lower-cased, trimmed, de-duplicated and sorted (Vault's `RemoveDuplicates(list, true)`).
fn lower_sorted(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = items
        .into_iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Vault's path-suffix check: no parent references, and (unanchored, as Go's `MatchString`)
/// containing `\w[\w-.]+\w`.
fn check_path_suffix(suffix: &str) -> Result<()> {
    if suffix.is_empty() {
        return Ok(());
    }
    if suffix.contains("..") {
        return Err(Error::bad(
            "error registering path suffix: path cannot contain parent references",
        ));
    }
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let chars: Vec<char> = suffix.chars().collect();
    let matched = (0..chars.len()).any(|start| {
        let mut it = chars.iter().skip(start);
        if !it.next().is_some_and(|c| word(*c)) {
            return false;
        }
        // At least one middle character from [\w-.], then a final \w: some later \w at
        // distance >= 2 reached only through [\w-.] characters.
        let rest: Vec<char> = chars.iter().skip(start + 1).copied().collect();
        let mut run = 0;
        for c in rest {
            if run >= 1 && word(c) {
                return true;
            }
            if word(c) || c == '-' || c == '.' {
                run += 1;
            } else {
                return false;
            }
        }
        false
    });
    if matched {
        Ok(())
    } else {
        Err(Error::bad(
            "given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w",
        ))
    }
}

pub(super) fn paths() -> Vec<PathSpec<TokenBackend>> {
    vec![
        P::new("roles/?$").on(Op::List, |b, r, d| Box::pin(b.role_list(r, d))),
        P::new(&format!("roles/{ROLE_NAME}$"))
            .field("role_name", T::Str, "Name of the role.")
            .field(
                "allowed_policies",
                T::CommaStringSlice,
                "Policies tokens may have.",
            )
            .field(
                "disallowed_policies",
                T::CommaStringSlice,
                "Policies tokens may not have.",
            )
            .field(
                "allowed_policies_glob",
                T::CommaStringSlice,
                "Glob patterns of allowed policies.",
            )
            .field(
                "disallowed_policies_glob",
                T::CommaStringSlice,
                "Glob patterns of disallowed policies.",
            )
            .field("orphan", T::Bool, "Tokens are orphans.")
            .field("period", T::DurationSecond, "Deprecated: use token_period.")
            .field(
                "path_suffix",
                T::Str,
                "Suffix of the tokens' path, for revoke-prefix.",
            )
            .field(
                "explicit_max_ttl",
                T::DurationSecond,
                "Deprecated: use token_explicit_max_ttl.",
            )
            .field("renewable", T::Bool, "Tokens may be renewed.")
            .field(
                "bound_cidrs",
                T::CommaStringSlice,
                "Deprecated: use token_bound_cidrs.",
            )
            .field(
                "allowed_entity_aliases",
                T::CommaStringSlice,
                "Entity aliases tokens may be bound to.",
            )
            .field(
                "token_bound_cidrs",
                T::CommaStringSlice,
                "CIDRs tokens may be used from.",
            )
            .field(
                "token_explicit_max_ttl",
                T::DurationSecond,
                "Hard maximum TTL of tokens.",
            )
            .field(
                "token_no_default_policy",
                T::Bool,
                "Do not add the default policy.",
            )
            .field("token_num_uses", T::Int, "Use limit of tokens.")
            .field("token_period", T::DurationSecond, "Period of tokens.")
            .field(
                "token_type",
                T::Str,
                "service, batch, default-service or default-batch.",
            )
            .existence(|b, r, d| Box::pin(b.role_exists(r, d)))
            .on(Op::Read, |b, r, d| Box::pin(b.role_read(r, d)))
            .on(Op::Create, |b, r, d| Box::pin(b.role_write(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.role_write(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.role_delete(r, d))),
    ]
}

impl TokenBackend {
    /// The stored role `name`, if any.
    pub(super) async fn role_get(&self, name: &str) -> Result<Option<TokenRole>> {
        self.core()?.tokens.roles().get_json(name).await
    }

    async fn role_exists(&self, _req: &Request, d: &FieldData<'_>) -> Result<bool> {
        let name = d.get_str("role_name")?.unwrap_or_default();
        Ok(self.role_get(&name).await?.is_some())
    }

    async fn role_list(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let mut keys = self.core()?.tokens.roles().list("").await?;
        keys.sort();
        Ok(Some(Response::list(keys)))
    }

    async fn role_read(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = d.get_str("role_name")?.unwrap_or_default();
        Ok(self
            .role_get(&name)
            .await?
            .map(|r| Response::data(r.read_data())))
    }

    async fn role_delete(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = d.get_str("role_name")?.unwrap_or_default();
        let roles = self.core()?.tokens.roles();
        let _guard = roles.lock(&name).await;
        roles.delete(&name).await?;
        Ok(None)
    }

    async fn role_write(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let name = d.get_str("role_name")?.unwrap_or_default();
        let roles = core.tokens.roles();
        let _guard = roles.lock(&name).await;
        let mut role = roles
            .get_json::<TokenRole>(&name)
            .await?
            .unwrap_or_else(|| TokenRole::new(&name));
        let mut warnings = Vec::new();

        if let Some(v) = d.get_bool("orphan")? {
            role.orphan = v;
        }
        if let Some(v) = d.get_str("path_suffix")? {
            check_path_suffix(&v)?;
            role.path_suffix = v;
        }
        if let Some(v) = d.get_list("allowed_policies")? {
            role.allowed_policies = crate::token::normalize_policies(v, false);
        }
        if let Some(v) = d.get_list("disallowed_policies")? {
            role.disallowed_policies = lower_sorted(v);
        }
        if let Some(v) = d.get_list("allowed_policies_glob")? {
            role.allowed_policies_glob = lower_sorted(v);
        }
        if let Some(v) = d.get_list("disallowed_policies_glob")? {
            role.disallowed_policies_glob = lower_sorted(v);
        }
        if let Some(v) = d.get_bool("renewable")? {
            role.renewable = v;
        }

        // The token fields (Vault's tokenutil), then their deprecated spellings.
        let fields_err = |e: String| Error::bad(format!("error parsing role fields: {e}"));
        if let Some(v) = d.get_list("token_bound_cidrs")? {
            role.token_bound_cidrs = parse_addrs(&v).map_err(fields_err)?;
        }
        if let Some(v) = d.get_duration("token_explicit_max_ttl")? {
            role.token_explicit_max_ttl = v;
        }
        if let Some(v) = d.get_bool("token_no_default_policy")? {
            role.token_no_default_policy = v;
        }
        if let Some(v) = d.get_int("token_num_uses")? {
            if v < 0 {
                return Err(fields_err("'token_num_uses' cannot be negative".into()));
            }
            role.token_num_uses = v;
        }
        if let Some(v) = d.get_duration("token_period")? {
            role.token_period = v;
        }
        if let Some(v) = d.get_str("token_type")? {
            match v.as_str() {
                "service" | "batch" | "default-service" | "default-batch" => role.token_type = v,
                other => {
                    return Err(Error::bad(format!("invalid 'token_type' value {other:?}")));
                }
            }
        }
        if d.has("token_period") {
            if d.has("period") {
                warnings.push(
                    "Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value".to_string(),
                );
            }
            role.period = 0;
        } else if let Some(v) = d.get_duration("period")? {
            role.period = v;
            role.token_period = v;
        }
        if d.has("token_bound_cidrs") {
            if d.has("bound_cidrs") {
                warnings.push(
                    "Both 'token_bound_cidrs' and deprecated 'bound_cidrs' value supplied, ignoring the deprecated value".to_string(),
                );
            }
            role.bound_cidrs = Vec::new();
        } else if let Some(v) = d.get_list("bound_cidrs")? {
            let parsed = parse_addrs(&v)
                .map_err(|e| Error::bad(format!("error parsing bound_cidrs: {e}")))?;
            role.bound_cidrs = parsed.clone();
            role.token_bound_cidrs = parsed;
        }
        if d.has("token_explicit_max_ttl") {
            if d.has("explicit_max_ttl") {
                warnings.push(
                    "Both 'token_explicit_max_ttl' and deprecated 'explicit_max_ttl' value supplied, ignoring the deprecated value".to_string(),
                );
            }
            role.explicit_max_ttl = 0;
        } else if let Some(v) = d.get_duration("explicit_max_ttl")? {
            role.explicit_max_ttl = v;
            role.token_explicit_max_ttl = v;
        }

        if role.token_type == "batch" {
            let why = if !role.orphan {
                Some("non-orphan tokens")
            } else if role.renewable {
                Some("renewable tokens")
            } else if role.token_period != 0 {
                Some("periodic tokens")
            } else if role.token_explicit_max_ttl != 0 {
                Some("tokens with an explicit max TTL")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(Error::bad(format!(
                    "'token_type' cannot be 'batch' when role is set to generate {why}"
                )));
            }
        }
        let (_, max) = core.mount_ttls(&req.mount);
        if role.token_explicit_max_ttl > max {
            warnings.push(format!(
                "Given explicit max TTL of {} is greater than system/mount allowed value of {max} seconds; until this is fixed attempting to create tokens against this role will result in an error",
                role.token_explicit_max_ttl
            ));
        }
        if let Some(v) = d.get_list("allowed_entity_aliases")? {
            role.allowed_entity_aliases = Some(lower_sorted(v));
        }

        roles.put_json(&name, &role).await?;
        tracing::info!(token.role = %name, "token role written");
        if warnings.is_empty() {
            return Ok(None);
        }
        Ok(Some(Response {
            warnings,
            ..Default::default()
        }))
    }
}

/// Go's `strutil.GlobbedStringsMatch`: `*` only at the start and/or end of the pattern.
pub(super) fn glob_match(pattern: &str, value: &str) -> bool {
    let len = pattern.len();
    if !pattern.contains('*') {
        return pattern == value;
    }
    if len == 1 {
        return true;
    }
    let starts = pattern.starts_with('*');
    let ends = pattern.ends_with('*');
    match (starts, ends) {
        (true, true) => {
            let inner = pattern.trim_start_matches('*').trim_end_matches('*');
            value.contains(inner)
        }
        (true, false) => value.ends_with(pattern.trim_start_matches('*')),
        (false, true) => value.starts_with(pattern.trim_end_matches('*')),
        (false, false) => pattern == value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_suffixes_like_vault() {
        for ok in ["ver1", "a-b.c", "v_1", "x/abc", "abc/"] {
            assert!(check_path_suffix(ok).is_ok(), "{ok}");
        }
        for bad in ["v1", "a", "-.-", "..", "a..b"] {
            assert!(check_path_suffix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs_like_go() {
        for (p, v, want) in [
            ("web*", "webapp", true),
            ("*app", "webapp", true),
            ("*eba*", "webapp", true),
            ("*", "x", true),
            ("web", "webapp", false),
            ("p-*", "q-1", false),
        ] {
            assert_eq!(glob_match(p, v), want, "{p} {v}");
        }
    }
}
