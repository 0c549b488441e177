//! The compiled access-control list of one token and the per-request decision (contract
//! §4.2–4.5).
//!
//! [`Acl::new`] sorts every path rule of the token's policies into three buckets: exact paths,
//! prefix rules (written with a trailing `*`) and segment-wildcard rules (with `+`). Rules merge
//! only when bucket and path string are identical. Exact and prefix rules live in one radix tree
//! (a trie whose edges carry whole byte strings, as Vault's go-radix trees do), so finding the exact rule and the longest prefix rule of a request path costs one walk along the
//! path (never more than the longest rule); each segment-wildcard rule is compared segment by
//! segment against the path split once. Evaluation is therefore linear in the path length plus the
//! total size of the rules, whatever the path (a token with only the `default` policy can ask
//! `sys/capabilities-self` about any path it likes).
//!
//! A request is matched the way current Vault's `AllowOperation` does: the exact rule; for LIST the
//! exact rule without the trailing slash; for LIST on a path ending in `/` the best prefix or
//! wildcard rule for the path *without* the slash; then the best prefix or wildcard rule for the
//! path as is. The selected rule alone decides capability, wrapping-TTL and parameter checks.

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
    /// Exact rules: path and merged permissions, indexed by [`TrieNode::exact`].
    exact: Vec<(String, Perms)>,
    /// Prefix rules (path without the `*`), indexed by [`TrieNode::prefix`].
    prefix: Vec<(String, Perms)>,
    /// Radix tree over the exact and prefix rule paths; node 0 is the root (the empty path).
    /// It has at most two nodes per rule.
    trie: Vec<TrieNode>,
    /// Segment-wildcard rules, compiled.
    wildcard: Vec<WildcardRule>,
}

/// One radix-tree node: the bytes on the edge from its parent, its children (sorted by the first
/// byte of their edge, which is unique among siblings) and the rules whose path ends here.
#[derive(Debug, Clone, Default)]
struct TrieNode {
    edge: Vec<u8>,
    children: Vec<(u8, usize)>,
    exact: Option<usize>,
    prefix: Option<usize>,
}

/// A segment-wildcard rule split for matching.
#[derive(Debug, Clone)]
struct WildcardRule {
    /// The rule path as written (with any trailing `*`).
    full: String,
    /// The path without a trailing `*`.
    pattern: String,
    /// The rule ends in `*`.
    is_prefix: bool,
    /// `pattern` split on `/`.
    segments: Vec<String>,
    /// Byte position of the first `+` in the rule path.
    first_wildcard: usize,
    /// Number of `+` segments.
    wildcards: usize,
    perms: Perms,
}

/// Ranking data of one prefix or wildcard candidate (§4.3); larger keys win.
struct Candidate<'p, 'a> {
    first_wildcard: usize,
    is_prefix: bool,
    wildcards: usize,
    pattern: &'p str,
    perms: &'a Perms,
}

impl Candidate<'_, '_> {
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
        let mut root = false;
        let mut buckets: [HashMap<String, Perms>; 3] = Default::default();
        for policy in policies {
            let name: Arc<str> = Arc::from(policy.name.as_str());
            if policy.name == "root" {
                if policies.len() != 1 {
                    return Err("other policies present along with root".to_owned());
                }
                root = true;
            }
            for rule in policy.rules.iter().filter(|r| !r.templated) {
                let [exact, prefix, wildcard] = &mut buckets;
                let bucket = match rule.kind {
                    PathKind::Exact => exact,
                    PathKind::Prefix => prefix,
                    PathKind::SegmentWildcard => wildcard,
                };
                let perms = match bucket.get_mut(&rule.path) {
                    Some(perms) => {
                        perms.merge(rule);
                        perms
                    }
                    None => bucket
                        .entry(rule.path.clone())
                        .or_insert_with(|| Perms::from_rule(rule)),
                };
                perms.grant(&name, rule.capabilities);
            }
        }
        let [exact, prefix, wildcard] = buckets;
        let mut acl = Acl {
            root,
            exact: exact.into_iter().collect(),
            prefix: prefix.into_iter().collect(),
            trie: vec![TrieNode::default()],
            wildcard: wildcard
                .into_iter()
                .map(|(full, perms)| WildcardRule::new(full, perms))
                .collect(),
        };
        for i in 0..acl.exact.len() {
            if let Some(path) = acl.exact.get(i).map(|(p, _)| p.clone()) {
                let node = acl.trie_insert(&path);
                if let Some(n) = acl.trie.get_mut(node) {
                    n.exact = Some(i);
                }
            }
        }
        for i in 0..acl.prefix.len() {
            if let Some(path) = acl.prefix.get(i).map(|(p, _)| p.clone()) {
                let node = acl.trie_insert(&path);
                if let Some(n) = acl.trie.get_mut(node) {
                    n.prefix = Some(i);
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

    /// The policies that grant `op` on `path` (Vault's `granting_policies` of an audit entry):
    /// `root` for the root ACL, none when the operation is not allowed by the selected rule's
    /// capabilities or is `help`.
    pub fn granting_policies(&self, op: Operation, path: &str) -> Vec<Arc<str>> {
        if self.root {
            return vec![root_policy_name()];
        }
        let Some(needed) = needed_capability(op) else {
            return Vec::new();
        };
        self.select(op, path).map_or_else(Vec::new, |perms| {
            perms
                .granting
                .iter()
                .filter(|(_, caps)| caps.contains(needed))
                .map(|(name, _)| name.clone())
                .collect()
        })
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
        let below = |(path, perms): &(String, Perms)| {
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
        let exact = self
            .exact
            .iter()
            .map(|(p, perms)| (PathKind::Exact, p, perms));
        let prefix = self
            .prefix
            .iter()
            .map(|(p, perms)| (PathKind::Prefix, p, perms));
        let wildcard = self
            .wildcard
            .iter()
            .map(|w| (PathKind::SegmentWildcard, &w.full, &w.perms));
        let mut out: Vec<PathRule> = exact
            .chain(prefix)
            .chain(wildcard)
            .map(|(kind, path, perms)| {
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
            .collect();
        out.sort_by(|a, b| (a.kind as u8, &a.path).cmp(&(b.kind as u8, &b.path)));
        out
    }

    /// Adds `path` to the radix tree and returns its node, splitting an edge where `path` leaves
    /// it part-way.
    fn trie_insert(&mut self, path: &str) -> usize {
        let mut node = 0;
        let mut rest = path.as_bytes();
        while let Some(&first) = rest.first() {
            let Some(current) = self.trie.get(node) else {
                return node;
            };
            let slot = current.children.binary_search_by_key(&first, |(b, _)| *b);
            let Ok(slot) = slot else {
                let leaf = self.trie.len();
                self.trie.push(TrieNode {
                    edge: rest.to_vec(),
                    ..TrieNode::default()
                });
                if let (Err(i), Some(n)) = (slot, self.trie.get_mut(node)) {
                    n.children.insert(i, (first, leaf));
                }
                return leaf;
            };
            let Some(&(_, child)) = current.children.get(slot) else {
                return node;
            };
            let Some(edge) = self.trie.get(child).map(|c| c.edge.as_slice()) else {
                return node;
            };
            let common = edge.iter().zip(rest).take_while(|(a, b)| a == b).count();
            if common < edge.len() {
                // Split the edge: a new middle node takes the shared part.
                let (shared, tail) = edge.split_at(common);
                let (shared, tail) = (shared.to_vec(), tail.to_vec());
                let middle = self.trie.len();
                self.trie.push(TrieNode {
                    edge: shared,
                    children: tail.first().map(|b| (*b, child)).into_iter().collect(),
                    ..TrieNode::default()
                });
                if let Some(c) = self.trie.get_mut(child) {
                    c.edge = tail;
                }
                if let Some(entry) = self
                    .trie
                    .get_mut(node)
                    .and_then(|n| n.children.get_mut(slot))
                {
                    entry.1 = middle;
                }
                node = middle;
            } else {
                node = child;
            }
            rest = rest.get(common..).unwrap_or_default();
        }
        node
    }

    /// Walks the radix tree along `path`, calling `visit(depth, node)` for the root and every
    /// node whose whole path is a prefix of `path` (`depth` = that path's length); the cost is
    /// bounded by the longest rule, not by `path`.
    fn trie_walk<'s>(&'s self, path: &str, mut visit: impl FnMut(usize, &'s TrieNode)) {
        let Some(mut node) = self.trie.first() else {
            return;
        };
        let bytes = path.as_bytes();
        let mut depth = 0;
        visit(depth, node);
        while let Some(rest) = bytes.get(depth..) {
            let Some(&first) = rest.first() else {
                return;
            };
            let next = node
                .children
                .binary_search_by_key(&first, |(b, _)| *b)
                .ok()
                .and_then(|i| node.children.get(i))
                .and_then(|(_, child)| self.trie.get(*child));
            let Some(next) = next.filter(|n| rest.starts_with(&n.edge)) else {
                return;
            };
            node = next;
            depth += node.edge.len();
            visit(depth, node);
        }
    }

    /// The exact rule for `path`, if any.
    fn exact_rule(&self, path: &str) -> Option<&Perms> {
        let mut found = None;
        self.trie_walk(path, |depth, node| {
            if depth == path.len() {
                found = node.exact;
            }
        });
        found
            .and_then(|i| self.exact.get(i))
            .map(|(_, perms)| perms)
    }

    /// The longest prefix rule that `path` starts with: its length and permissions.
    fn longest_prefix(&self, path: &str) -> Option<(usize, &Perms)> {
        let mut found = None;
        self.trie_walk(path, |depth, node| {
            if let Some(i) = node.prefix {
                found = Some((depth, i));
            }
        });
        let (depth, i) = found?;
        self.prefix.get(i).map(|(_, perms)| (depth, perms))
    }

    /// Rule selection of §4.3, as Vault's `AllowOperation` orders it: the exact rule; for LIST the
    /// exact rule without the trailing slash; for LIST on a path ending in `/` the best prefix or
    /// wildcard rule for the slash-trimmed path; then the best one for the path as is.
    fn select(&self, op: Operation, path: &str) -> Option<&Perms> {
        let path = path.trim_start_matches('/');
        if let Some(p) = self.exact_rule(path) {
            return Some(p);
        }
        if op == Operation::List
            && let Some(trimmed) = path.strip_suffix('/')
        {
            if let Some(p) = self.exact_rule(trimmed) {
                return Some(p);
            }
            if let Some(p) = self.non_exact(trimmed) {
                return Some(p);
            }
        }
        self.non_exact(path)
    }

    /// The best prefix or segment-wildcard rule for `path`, if any (Vault's
    /// `CheckAllowedFromNonExactPaths`): the longest prefix rule competes with every matching
    /// wildcard rule on the §4.3 ranking.
    fn non_exact<'s>(&'s self, path: &str) -> Option<&'s Perms> {
        let longest = self.longest_prefix(path);
        if self.wildcard.is_empty() {
            return longest.map(|(_, perms)| perms);
        }
        let prefix = longest.and_then(|(len, perms)| {
            Some(Candidate {
                first_wildcard: len,
                is_prefix: true,
                wildcards: 0,
                pattern: path.get(..len)?,
                perms,
            })
        });
        let parts: Vec<&str> = path.split('/').collect();
        prefix
            .into_iter()
            .chain(self.wildcard.iter().filter_map(|w| w.matches(&parts)))
            .max_by(|a, b| a.rank().cmp(&b.rank()))
            .map(|c| c.perms)
    }

    /// The bare-mount variant of the wildcard matcher: does some non-deny `+` rule match the
    /// mount's segments (the rule may continue below the mount)?
    fn wildcard_below_mount(&self, mount: &str) -> bool {
        let parts: Vec<&str> = mount.split('/').collect();
        let Some(last) = parts.len().checked_sub(2) else {
            return false;
        };
        self.wildcard.iter().any(|w| {
            if w.perms.caps.contains(Capabilities::DENY) || w.perms.caps.is_empty() {
                return false;
            }
            for (i, seg) in w.segments.iter().enumerate() {
                let Some(part) = parts.get(i) else {
                    return false;
                };
                let ok = seg == "+"
                    || seg == part
                    || (w.is_prefix && i + 1 == w.segments.len() && part.starts_with(seg.as_str()));
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

impl WildcardRule {
    fn new(full: String, perms: Perms) -> WildcardRule {
        let (pattern, is_prefix) = match full.strip_suffix('*') {
            Some(p) => (p.to_owned(), true),
            None => (full.clone(), false),
        };
        let segments: Vec<String> = pattern.split('/').map(str::to_owned).collect();
        WildcardRule {
            first_wildcard: full.find('+').unwrap_or(0),
            wildcards: segments.iter().filter(|s| *s == "+").count(),
            full,
            pattern,
            is_prefix,
            segments,
            perms,
        }
    }

    /// Matches this rule against the request path's segments; the cost is bounded by the rule's
    /// own length, not the path's.
    fn matches<'s>(&'s self, parts: &[&str]) -> Option<Candidate<'s, 's>> {
        let n = self.segments.len();
        if parts.len() < n || (!self.is_prefix && parts.len() != n) {
            return None;
        }
        for (i, (seg, part)) in self.segments.iter().zip(parts).enumerate() {
            let ok = seg == "+"
                || seg == part
                || (self.is_prefix && i + 1 == n && part.starts_with(seg.as_str()));
            if !ok {
                return None;
            }
        }
        Some(Candidate {
            first_wildcard: self.first_wildcard,
            is_prefix: self.is_prefix,
            wildcards: self.wildcards,
            pattern: &self.pattern,
            perms: &self.perms,
        })
    }
}

/// Capability, wrapping and parameter checks on the selected rule (§4.4).
/// `root`, shared (the root token's granting policy, named on every audited request it makes).
pub fn root_policy_name() -> Arc<str> {
    static ROOT: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("root"));
    ROOT.clone()
}

/// The capability an operation needs (`None`: `help`, which no policy governs).
fn needed_capability(op: Operation) -> Option<Capabilities> {
    Some(match op {
        Operation::Read => Capabilities::READ,
        Operation::List => Capabilities::LIST,
        Operation::Create => Capabilities::CREATE,
        Operation::Update => Capabilities::UPDATE,
        Operation::Delete => Capabilities::DELETE,
        Operation::Patch => Capabilities::PATCH,
        Operation::Help => return None,
    })
}

fn perms_allow(perms: &Perms, req: &AclRequest<'_>) -> bool {
    let Some(needed) = needed_capability(req.operation) else {
        return true;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Acl;
    use crate::policy::parse_policy;

    #[test]
    fn radix_tree_has_at_most_two_nodes_per_rule() {
        let mut text = format!(
            "path \"{}\" {{ capabilities = [\"read\"] }}\n",
            "x".repeat(10_000)
        );
        for i in 0..500 {
            text.push_str(&format!(
                "path \"secret/app{i}/config\" {{ capabilities = [\"read\"] }}\n\
                 path \"secret/app{i}/*\" {{ capabilities = [\"list\"] }}\n"
            ));
        }
        let acl = Acl::new(&[Arc::new(parse_policy("p", &text).unwrap())]).unwrap();
        let rules = acl.exact.len() + acl.prefix.len();
        assert_eq!(rules, 1001);
        assert!(acl.trie.len() <= 2 * rules + 1, "{} nodes", acl.trie.len());
        assert_eq!(acl.capabilities("secret/app42/config"), ["read"]);
        assert_eq!(acl.capabilities("secret/app42/other"), ["list"]);
        assert_eq!(acl.capabilities("secret/app4"), ["deny"]);
        assert_eq!(acl.capabilities(&"x".repeat(10_000)), ["read"]);
        assert_eq!(acl.capabilities(&"x".repeat(9_999)), ["deny"]);
    }
}
