//! The compiled access-control list of one token and the per-request decision (contract
//! §4.2–4.5).
//!
//! [`Acl::new`] sorts every path rule of the token's policies into three buckets: exact paths,
//! prefix rules (written with a trailing `*`) and segment-wildcard rules (with `+`). Rules merge
//! only when bucket and path string are identical. A request is then matched against the exact
//! rule, the LIST fallbacks, and finally the best prefix or wildcard candidate; the selected rule
//! alone decides capability, wrapping-TTL and parameter checks.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::params::{allowed_by, denied_by, normalize};
use super::perms::Perms;
use super::{Capabilities, PathKind, PathRule, Policy};
use crate::logical::Operation;

/// One request to decide.
#[derive(Debug, Clone, Copy)]
pub struct AclRequest<'a> {
    /// The logical operation.
    pub operation: Operation,
    /// Path relative to `/v1/`, without a leading `/`; list requests end in `/`.
    pub path: &'a str,
    /// Request parameters (body, or query for GET) for the parameter checks.
    pub data: Option<&'a Map<String, Value>>,
    /// Requested response-wrapping TTL in seconds; `None` when the request is not wrapped.
    pub wrap_ttl: Option<u64>,
}

/// The outcome of [`Acl::allow_operation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AclResult {
    /// The operation may proceed.
    pub allowed: bool,
    /// The selected rule holds `sudo` (or the ACL is root): enough for root-protected paths.
    pub root_privs: bool,
    /// The ACL is the root ACL.
    pub is_root: bool,
    /// Capabilities of the selected rule (empty when no rule matched).
    pub capabilities: Capabilities,
}

/// A token's compiled policies.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    exact: HashMap<String, Perms>,
    prefix: HashMap<String, Perms>,
    wildcard: HashMap<String, Perms>,
}

/// Ranking data of one prefix or wildcard candidate (§4.3); larger keys win.
struct Candidate<'a> {
    first_wildcard: usize,
    is_prefix: bool,
    wildcards: usize,
    pattern: &'a str,
    perms: &'a Perms,
}

impl Candidate<'_> {
    fn rank(&self) -> (usize, bool, Reverse<usize>, usize, &str) {
        let p = self.pattern;
        (
            self.first_wildcard,
            !self.is_prefix,
            Reverse(self.wildcards),
            p.len(),
            p,
        )
    }
}

impl Acl {
    /// Compile the given policies (already loaded) into one ACL. A policy named "root" makes a root ACL
    /// (Err("other policies present along with root") if combined with others).
    pub fn new(policies: &[Arc<Policy>]) -> Result<Acl, String> {
        let mut acl = Acl::default();
        for policy in policies {
            if policy.name == "root" {
                if policies.len() != 1 {
                    return Err("other policies present along with root".to_owned());
                }
                acl.root = true;
            }
            for rule in policy.rules.iter().filter(|r| !r.templated) {
                let bucket = match rule.kind {
                    PathKind::Exact => &mut acl.exact,
                    PathKind::Prefix => &mut acl.prefix,
                    PathKind::SegmentWildcard => &mut acl.wildcard,
                };
                match bucket.get_mut(&rule.path) {
                    Some(perms) => perms.merge(rule),
                    None => {
                        bucket.insert(rule.path.clone(), Perms::from_rule(rule));
                    }
                }
            }
        }
        Ok(acl)
    }

    /// The ACL of the root token: everything allowed, with sudo.
    pub fn root() -> Acl {
        Acl {
            root: true,
            ..Acl::default()
        }
    }

    /// Whether this is the root ACL.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// Full decision for one request: rule selection (4.3), capability for the op (4.4),
    /// wrapping TTL constraints, parameter constraints (allowed/denied/required).
    pub fn allow_operation(&self, req: &AclRequest<'_>) -> AclResult {
        if self.root {
            return AclResult {
                allowed: true,
                root_privs: true,
                is_root: true,
                capabilities: Capabilities::all().difference(Capabilities::DENY),
            };
        }
        if req.operation == Operation::Help {
            return AclResult {
                allowed: true,
                ..AclResult::default()
            };
        }
        let Some(perms) = self.select(req.operation, req.path) else {
            return AclResult::default();
        };
        AclResult {
            allowed: perms_allow(perms, req),
            root_privs: perms.caps.contains(Capabilities::SUDO),
            is_root: false,
            capabilities: perms.caps,
        }
    }

    /// Capabilities on a path as sys/capabilities reports them: sorted alphabetically strings,
    /// ["root"] for root, ["deny"] when denied or no rule matches. (Computed as a list-op match, per 4.5.)
    pub fn capabilities(&self, path: &str) -> Vec<String> {
        if self.root {
            return vec!["root".to_owned()];
        }
        self.select(Operation::List, path)
            .map_or(Capabilities::empty(), |p| p.caps)
            .keywords()
    }

    /// Vault's rule for `sys/internal/ui/mounts/<path>` (the kv preflight): true if any non-deny
    /// capability exists on the mount path itself, or any exact/prefix rule lies below the mount path,
    /// or any `+` segment-wildcard rule could match below it. Root → true. See vault-cli.md §3 and
    /// Vault's `ACL.CheckAllowedFromNonExactPaths` / `hasMountAccess` in vault/logical_system.go.
    ///
    /// The mount path is taken relative to `/v1/`; a missing trailing `/` is added.
    pub fn has_mount_access(&self, mount_path: &str) -> bool {
        if self.root {
            return true;
        }
        let mut mount = mount_path.trim_start_matches('/').to_owned();
        if !mount.ends_with('/') {
            mount.push('/');
        }
        if !self.capabilities(&mount).iter().any(|c| c == "deny") {
            return true;
        }
        let grants = Capabilities::CREATE
            | Capabilities::DELETE
            | Capabilities::LIST
            | Capabilities::READ
            | Capabilities::SUDO
            | Capabilities::UPDATE;
        let below = |(path, perms): (&String, &Perms)| {
            path.starts_with(&mount)
                && !perms.caps.contains(Capabilities::DENY)
                && perms.caps.intersects(grants)
        };
        self.exact.iter().any(below)
            || self.prefix.iter().any(below)
            || self.wildcard_below_mount(&mount)
    }

    /// The merged rules of this ACL (templated rules excluded), sorted by kind and path; what
    /// `sys/internal/ui/resultant-acl` shows. Empty for the root ACL.
    pub fn rules(&self) -> Vec<PathRule> {
        let mut out: Vec<PathRule> = [
            (PathKind::Exact, &self.exact),
            (PathKind::Prefix, &self.prefix),
            (PathKind::SegmentWildcard, &self.wildcard),
        ]
        .into_iter()
        .flat_map(|(kind, bucket)| {
            bucket.iter().map(move |(path, perms)| {
                let mut rule = PathRule::new(path.clone(), kind);
                rule.capabilities = perms.caps;
                rule.allowed_parameters = perms.allowed.clone();
                rule.denied_parameters = perms.denied.clone();
                rule.required_parameters = perms.required.clone();
                rule.min_wrapping_ttl =
                    (perms.min_wrapping_ttl > 0).then_some(perms.min_wrapping_ttl);
                rule.max_wrapping_ttl =
                    (perms.max_wrapping_ttl > 0).then_some(perms.max_wrapping_ttl);
                rule
            })
        })
        .collect();
        out.sort_by(|a, b| (a.kind as u8, &a.path).cmp(&(b.kind as u8, &b.path)));
        out
    }

    /// Rule selection of §4.3: the exact rule, then for LIST the exact rule without the trailing
    /// slash, then the best prefix or segment-wildcard rule.
    ///
    /// A LIST of `dir/` weighs the candidates for `dir` and `dir/` together, as current Vault does:
    /// the most specific deny wins if it outranks every candidate granting `list`, otherwise the
    /// most specific `list` grant, otherwise the most specific candidate. (The older "trimmed path
    /// first" order let `kv/+` grant LIST `kv/private/` past a deny on `kv/private/*`, and let
    /// `secret/*` shadow `secret/data/app/*`.)
    fn select(&self, op: Operation, path: &str) -> Option<&Perms> {
        let path = path.trim_start_matches('/');
        if let Some(p) = self.exact.get(path) {
            return Some(p);
        }
        if op != Operation::List {
            return self.non_exact(path);
        }
        let Some(trimmed) = path.strip_suffix('/') else {
            return self.non_exact(path);
        };
        if let Some(p) = self.exact.get(trimmed) {
            return Some(p);
        }
        let mut all = self.candidates(trimmed);
        all.extend(self.candidates(path));
        let best_with = |bit: Capabilities| {
            all.iter()
                .filter(|c| c.perms.caps.contains(bit))
                .max_by(|a, b| a.rank().cmp(&b.rank()))
        };
        match (best_with(Capabilities::DENY), best_with(Capabilities::LIST)) {
            (Some(deny), None) => Some(deny.perms),
            (Some(deny), Some(list)) if list.rank() < deny.rank() => Some(deny.perms),
            (_, Some(list)) => Some(list.perms),
            (None, None) => best(all),
        }
    }

    /// The best prefix or segment-wildcard rule for `path`, if any.
    fn non_exact(&self, path: &str) -> Option<&Perms> {
        best(self.candidates(path))
    }

    /// The longest matching prefix rule and every matching segment-wildcard rule.
    fn candidates(&self, path: &str) -> Vec<Candidate<'_>> {
        let longest_prefix = (0..=path.len())
            .rev()
            .filter(|i| path.is_char_boundary(*i))
            .find_map(|i| self.prefix.get_key_value(&path[..i]));
        let mut out: Vec<Candidate<'_>> = longest_prefix
            .map(|(pattern, perms)| Candidate {
                first_wildcard: pattern.len(),
                is_prefix: true,
                wildcards: 0,
                pattern,
                perms,
            })
            .into_iter()
            .collect();
        if !self.wildcard.is_empty() {
            let parts: Vec<&str> = path.split('/').collect();
            out.extend(
                self.wildcard
                    .iter()
                    .filter_map(|(full, perms)| match_wildcard(full, &parts, perms)),
            );
        }
        out
    }

    /// The bare-mount variant of the wildcard matcher: does some non-deny `+` rule match the
    /// mount's segments (the rule may continue below the mount)?
    fn wildcard_below_mount(&self, mount: &str) -> bool {
        let parts: Vec<&str> = mount.split('/').collect();
        let Some(last) = parts.len().checked_sub(2) else {
            return false;
        };
        self.wildcard.iter().any(|(full, perms)| {
            if perms.caps.contains(Capabilities::DENY) || perms.caps.is_empty() {
                return false;
            }
            let (pattern, is_prefix) = split_glob(full);
            let segs: Vec<&str> = pattern.split('/').collect();
            for (i, seg) in segs.iter().enumerate() {
                let Some(part) = parts.get(i) else {
                    return false;
                };
                let ok = *seg == "+"
                    || seg == part
                    || (is_prefix && i + 1 == segs.len() && part.starts_with(seg));
                if !ok {
                    return false;
                }
                if i == last {
                    return true;
                }
            }
            false
        })
    }
}

/// The highest-ranked candidate's permissions.
fn best<'a>(candidates: Vec<Candidate<'a>>) -> Option<&'a Perms> {
    candidates
        .into_iter()
        .max_by(|a, b| a.rank().cmp(&b.rank()))
        .map(|c| c.perms)
}

/// Splits a wildcard pattern into the part before a trailing `*` and whether it had one.
fn split_glob(full: &str) -> (&str, bool) {
    match full.strip_suffix('*') {
        Some(p) => (p, true),
        None => (full, false),
    }
}

/// Matches one segment-wildcard rule against the request path's segments.
fn match_wildcard<'a>(full: &'a str, parts: &[&str], perms: &'a Perms) -> Option<Candidate<'a>> {
    let (pattern, is_prefix) = split_glob(full);
    let segs: Vec<&str> = pattern.split('/').collect();
    if parts.len() < segs.len() || (!is_prefix && parts.len() != segs.len()) {
        return None;
    }
    let mut wildcards = 0;
    for (i, (seg, part)) in segs.iter().zip(parts).enumerate() {
        if *seg == "+" {
            wildcards += 1;
        } else if seg != part && !(is_prefix && i + 1 == segs.len() && part.starts_with(seg)) {
            return None;
        }
    }
    Some(Candidate {
        first_wildcard: full.find('+').unwrap_or(0),
        is_prefix,
        wildcards,
        pattern,
        perms,
    })
}

/// Capability, wrapping and parameter checks on the selected rule (§4.4).
fn perms_allow(perms: &Perms, req: &AclRequest<'_>) -> bool {
    let needed = match req.operation {
        Operation::Read => Capabilities::READ,
        Operation::List => Capabilities::LIST,
        Operation::Create => Capabilities::CREATE,
        Operation::Update => Capabilities::UPDATE,
        Operation::Delete => Capabilities::DELETE,
        Operation::Patch => Capabilities::PATCH,
        Operation::Help => return true,
    };
    if perms.caps.contains(Capabilities::DENY) || !perms.caps.contains(needed) {
        return false;
    }
    let (min, max) = (perms.min_wrapping_ttl, perms.max_wrapping_ttl);
    if max > 0 && req.wrap_ttl.is_none_or(|t| t > max) {
        return false;
    }
    if min > 0 && req.wrap_ttl.is_none_or(|t| t < min) {
        return false;
    }
    if min != 0 && max != 0 && max < min {
        return false;
    }
    if !matches!(
        req.operation,
        Operation::Read | Operation::Create | Operation::Update | Operation::Patch
    ) {
        return true;
    }
    let empty = Map::new();
    let data = req.data.unwrap_or(&empty);
    if perms
        .required
        .iter()
        .any(|name| !data.contains_key(&name.to_lowercase()))
    {
        return false;
    }
    if data.is_empty() {
        return true;
    }
    if !perms.denied.is_empty() {
        if perms.denied.contains_key("*") {
            return false;
        }
        let hit = data.iter().any(|(name, value)| {
            perms
                .denied
                .get(&name.to_lowercase())
                .is_some_and(|list| denied_by(&normalize(name, value), list))
        });
        if hit {
            return false;
        }
    }
    if perms.allowed.is_empty() {
        return true;
    }
    let allow_all = perms.allowed.contains_key("*");
    if allow_all && perms.allowed.len() == 1 {
        return true;
    }
    data.iter().all(
        |(name, value)| match perms.allowed.get(&name.to_lowercase()) {
            Some(list) => allowed_by(&normalize(name, value), list),
            None => allow_all,
        },
    )
}
