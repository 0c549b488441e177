//! The merged permissions of one ACL entry and Vault's rules for merging path rules that share a
//! bucket and path string across (and within) policies (contract §4.2).

use super::{Capabilities, ParameterMap, PathRule};

/// The merged permissions of all rules sharing one bucket and path string.
#[derive(Debug, Clone, Default)]
pub(crate) struct Perms {
    pub(crate) caps: Capabilities,
    pub(crate) min_wrapping_ttl: u64,
    pub(crate) max_wrapping_ttl: u64,
    pub(crate) allowed: ParameterMap,
    pub(crate) denied: ParameterMap,
    pub(crate) required: Vec<String>,
    /// The policies whose rules gave these capabilities, with what each gave (Vault's
    /// granting policies, for audit entries); empty once a rule denies.
    pub(crate) granting: Vec<(std::sync::Arc<str>, Capabilities)>,
}

impl Perms {
    /// The permissions of a single rule.
    pub(crate) fn from_rule(rule: &PathRule) -> Perms {
        Perms {
            caps: rule.capabilities,
            min_wrapping_ttl: rule.min_wrapping_ttl.unwrap_or(0),
            max_wrapping_ttl: rule.max_wrapping_ttl.unwrap_or(0),
            allowed: rule.allowed_parameters.clone(),
            denied: rule.denied_parameters.clone(),
            required: rule.required_parameters.clone(),
            granting: Vec::new(),
        }
    }

    /// Notes that `policy` granted `caps` here (once per policy; nothing once denied).
    pub(crate) fn grant(&mut self, policy: &std::sync::Arc<str>, caps: Capabilities) {
        if self.caps.contains(Capabilities::DENY) {
            self.granting.clear();
            return;
        }
        match self.granting.iter_mut().find(|(name, _)| name == policy) {
            Some((_, given)) => *given |= caps,
            None => self.granting.push((policy.clone(), caps)),
        }
    }

    /// Folds another rule for the same path into this one, Vault's way: deny is sticky, otherwise
    /// capabilities are OR-ed, the smaller non-zero TTLs kept and parameter lists unioned.
    pub(crate) fn merge(&mut self, rule: &PathRule) {
        if self.caps.contains(Capabilities::DENY) {
            return;
        }
        if rule.capabilities.contains(Capabilities::DENY) {
            self.caps = Capabilities::DENY;
            self.allowed.clear();
            self.denied.clear();
            return;
        }
        self.caps |= rule.capabilities;
        for (mine, theirs) in [
            (&mut self.max_wrapping_ttl, rule.max_wrapping_ttl),
            (&mut self.min_wrapping_ttl, rule.min_wrapping_ttl),
        ] {
            if let Some(t) = theirs.filter(|t| *t > 0 && (*mine == 0 || *t < *mine)) {
                *mine = t;
            }
        }
        merge_params(&mut self.allowed, &rule.allowed_parameters);
        merge_params(&mut self.denied, &rule.denied_parameters);
        for name in &rule.required_parameters {
            if !self.required.contains(name) {
                self.required.push(name.clone());
            }
        }
    }
}

/// Unions two parameter maps: an empty value list on either side wins, otherwise lists concatenate.
fn merge_params(into: &mut ParameterMap, from: &ParameterMap) {
    for (name, values) in from {
        match into.get_mut(name) {
            None => {
                into.insert(name.clone(), values.clone());
            }
            Some(existing) if values.is_empty() || existing.is_empty() => existing.clear(),
            Some(existing) => {
                let mut merged = values.clone();
                merged.append(existing);
                *existing = merged;
            }
        }
    }
}
