//! ACL policies: parsing Vault's policy language (HCL or JSON) into [`Policy`] values, compiling
//! a token's policies into one [`Acl`], and deciding single requests against it the way Vault does
//! (contract §4). The parser lives in [`parse`] (on top of the HCL1-compatible reader in
//! `crate::hcl`), the evaluator in [`acl`] (rule merging in `perms`, value matching in `params`), and
//! the text of the built-in `default` and `response-wrapping` policies in [`builtin`].

pub mod acl;
pub mod builtin;
mod params;
pub mod parse;
mod perms;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use acl::{Acl, AclRequest, AclResult, root_policy_name};
pub use parse::parse_policy;

bitflags::bitflags! {
    /// Capability bits of one path rule. `DENY` overrides everything else on the rule it is set on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Capabilities: u32 {
        /// Explicit deny; a rule holding it grants nothing.
        const DENY = 1;
        /// Create a new entry (existence check said "missing").
        const CREATE = 1 << 1;
        /// Read (GET).
        const READ = 1 << 2;
        /// Update an existing entry.
        const UPDATE = 1 << 3;
        /// Delete.
        const DELETE = 1 << 4;
        /// List (LIST or GET with `?list=true`).
        const LIST = 1 << 5;
        /// Root privileges on root-protected paths.
        const SUDO = 1 << 6;
        /// JSON merge patch (PATCH).
        const PATCH = 1 << 7;
        /// Event subscription (Vault 1.16+); accepted and reported, no operation needs it yet.
        const SUBSCRIBE = 1 << 8;
        /// Snapshot recovery (Vault 1.20+); accepted and reported, no operation needs it yet.
        const RECOVER = 1 << 9;
    }
}

impl Capabilities {
    /// Looks up one capability by its policy keyword (`"read"`, `"deny"`, ...).
    pub fn from_keyword(name: &str) -> Option<Capabilities> {
        Some(match name {
            "deny" => Capabilities::DENY,
            "create" => Capabilities::CREATE,
            "read" => Capabilities::READ,
            "update" => Capabilities::UPDATE,
            "delete" => Capabilities::DELETE,
            "list" => Capabilities::LIST,
            "sudo" => Capabilities::SUDO,
            "patch" => Capabilities::PATCH,
            "subscribe" => Capabilities::SUBSCRIBE,
            "recover" => Capabilities::RECOVER,
            _ => return None,
        })
    }

    /// The keywords of the set bits in Vault's ACL order (create, delete, list, read, sudo,
    /// update, patch, subscribe, recover: the order `sys/internal/ui/resultant-acl` prints).
    /// `DENY` or an empty set yields `["deny"]`.
    pub fn vault_order(self) -> Vec<&'static str> {
        if self.contains(Capabilities::DENY) || self.is_empty() {
            return vec!["deny"];
        }
        [
            (Capabilities::CREATE, "create"),
            (Capabilities::DELETE, "delete"),
            (Capabilities::LIST, "list"),
            (Capabilities::READ, "read"),
            (Capabilities::SUDO, "sudo"),
            (Capabilities::UPDATE, "update"),
            (Capabilities::PATCH, "patch"),
            (Capabilities::SUBSCRIBE, "subscribe"),
            (Capabilities::RECOVER, "recover"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.contains(*bit))
        .map(|(_, name)| name)
        .collect()
    }

    /// The keywords of the set bits, sorted alphabetically (the order `sys/capabilities` prints).
    /// `DENY` or an empty set yields `["deny"]`.
    pub fn keywords(self) -> Vec<String> {
        let mut out: Vec<String> = self.vault_order().into_iter().map(str::to_owned).collect();
        out.sort();
        out
    }
}

/// How a rule's path string is matched against request paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathKind {
    /// The request path must equal the rule path.
    Exact,
    /// The rule was written with a trailing `*` (stripped from [`PathRule::path`]); any request
    /// path starting with the rule path matches.
    Prefix,
    /// The rule contains `+` segments; [`PathRule::path`] keeps any trailing `*`.
    SegmentWildcard,
}

/// Values listed for one parameter name in `allowed_parameters` / `denied_parameters`
/// (an empty list means "any value").
pub type ParameterMap = BTreeMap<String, Vec<serde_json::Value>>;

/// One `path "..." { ... }` block after normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    /// The rule path: one leading `/` removed and, for [`PathKind::Prefix`], the trailing `*` removed.
    pub path: String,
    /// Which matcher the rule belongs to.
    pub kind: PathKind,
    /// Granted capabilities; exactly `DENY` when the block denies.
    pub capabilities: Capabilities,
    /// Allowed parameter names (lower-cased) and their allowed values.
    pub allowed_parameters: ParameterMap,
    /// Denied parameter names (lower-cased) and their denied values.
    pub denied_parameters: ParameterMap,
    /// Parameter names that must be present in the request.
    pub required_parameters: Vec<String>,
    /// Smallest wrap TTL a request must ask for, in seconds.
    pub min_wrapping_ttl: Option<u64>,
    /// Largest wrap TTL a request may ask for, in seconds.
    pub max_wrapping_ttl: Option<u64>,
    /// The path uses identity templating (`{{identity.entity.id}}`); such rules are kept in the
    /// policy but skipped when an [`Acl`] is compiled.
    pub templated: bool,
}

impl PathRule {
    /// A rule with no capabilities and no constraints for an already-normalised path.
    pub fn new(path: impl Into<String>, kind: PathKind) -> PathRule {
        PathRule {
            path: path.into(),
            kind,
            capabilities: Capabilities::empty(),
            allowed_parameters: ParameterMap::new(),
            denied_parameters: ParameterMap::new(),
            required_parameters: Vec::new(),
            min_wrapping_ttl: None,
            max_wrapping_ttl: None,
            templated: false,
        }
    }
}

/// A parsed ACL policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Name under which the policy is stored (the `name` key inside the text is ignored).
    pub name: String,
    /// The policy text exactly as submitted.
    pub raw: String,
    /// Path rules in text order; blocks repeating a path stay separate and merge in [`Acl::new`].
    pub rules: Vec<PathRule>,
}
