//! Rate-limit quotas (`sys/quotas/config`, `sys/quotas/rate-limit/<name>`), as Vault's: a quota
//! allows `rate` requests per `interval` to each client address, on the whole server (no
//! `path`), one mount, a path under a mount (exact, or a prefix ending in `*`), or the logins of
//! one role of an auth method. The most specific quota applies: role, then exact path, then the
//! longest path prefix, then mount, then global. A client over its quota gets 429 before anything
//! else runs (before authentication, so it also bounds unauthenticated traffic); with a
//! `block_interval` it is then refused for that long. Paths in `rate_limit_exempt_paths` (by
//! default the health, seal and root-generation endpoints) are never limited.
//!
//! Each client's window is Vault's (a fixed window starting at its first request, `rate` rounded
//! to whole requests). Unlike Vault, which keeps a bucket for every address ever seen until it is
//! three minutes idle, the buckets of a quota are bounded ([`MAX_CLIENTS`]): past it, new
//! addresses share one bucket, so a flood of distinct addresses costs bounded memory and is
//! limited as one client. A rate below one request per interval allows one (Vault rounds it to
//! zero and refuses everything). `Retry-After` and `X-Ratelimit-Reset` are rounded up (Vault
//! truncates, which can tell a client to retry while it is still refused).
//!
//! The configuration and the quotas are stored through the barrier under `core/quotas/` and
//! loaded at unseal; windows live in memory only (as in Vault, a restart starts them afresh).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::Core;
use crate::error::{Error, Result};

/// Storage key of the configuration.
const CONFIG_KEY: &str = "core/quotas/config";
/// Storage prefix of the rate-limit quotas (by name).
const RULE_PREFIX: &str = "core/quotas/rate-limit/";

/// Paths never limited unless the operator sets the list (Vault's defaults).
pub const DEFAULT_EXEMPT_PATHS: [&str; 7] = [
    "sys/generate-recovery-token/attempt",
    "sys/generate-recovery-token/update",
    "sys/generate-root/attempt",
    "sys/generate-root/update",
    "sys/health",
    "sys/seal-status",
    "sys/unseal",
];

/// Client buckets a quota keeps at most (across its shards).
pub const MAX_CLIENTS: usize = SHARDS * CLIENTS_PER_SHARD;
const SHARDS: usize = 16;
const CLIENTS_PER_SHARD: usize = 4096;
/// A bucket idle this long is dropped (Vault's stale age).
const STALE: u64 = 180 * NANOS;
/// How often a shard looks for stale buckets (Vault's purge interval).
const SWEEP_EVERY: u64 = 60 * NANOS;
const NANOS: u64 = 1_000_000_000;

/// `sys/quotas/config`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuotaConfig {
    /// Paths (exact, or a prefix ending in `*`) no rate-limit quota applies to.
    pub rate_limit_exempt_paths: Vec<String>,
    /// Refused requests are written to the audit devices.
    pub enable_rate_limit_audit_logging: bool,
    /// Responses carry `X-Ratelimit-*` (and, when refused, `Retry-After`).
    pub enable_rate_limit_response_headers: bool,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            rate_limit_exempt_paths: DEFAULT_EXEMPT_PATHS.iter().map(|p| (*p).into()).collect(),
            enable_rate_limit_audit_logging: false,
            enable_rate_limit_response_headers: false,
        }
    }
}

/// One rate-limit quota as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RateLimitRule {
    /// Random id, kept across updates.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The mount it applies to (`secret/`, `auth/approle/`), or empty: the whole server.
    pub mount_path: String,
    /// A path under the mount (exact, or ending in `*`), or empty.
    pub path_suffix: String,
    /// The login role it applies to, or empty.
    pub role: String,
    /// Requests allowed per interval.
    pub rate: f64,
    /// The interval, in seconds.
    pub interval: u64,
    /// How long a client that went over is refused, in seconds (0: until its window ends).
    pub block_interval: u64,
    /// Vault's namespace inheritance flag (kept and shown; Coffer has one namespace).
    pub inheritable: bool,
}

impl RateLimitRule {
    /// The `path` a read shows: the mount and the path under it.
    pub fn path(&self) -> String {
        format!("{}{}", self.mount_path, self.path_suffix)
    }

    fn factors(&self) -> (&str, &str, &str) {
        (&self.mount_path, &self.path_suffix, &self.role)
    }
}

/// Who a bucket counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    Addr(IpAddr),
    /// A request without a peer address (a Unix socket listener).
    Unknown,
    /// New addresses once a shard is full.
    Overflow,
}

/// A client's window (go-limiter's memory store, which Vault uses).
#[derive(Debug)]
struct Bucket {
    start: u64,
    tick: u64,
    available: u64,
    last_seen: u64,
}

#[derive(Debug, Default)]
struct Shard {
    buckets: HashMap<Client, Bucket>,
    /// Clients refused until `at + block_interval`.
    blocked: HashMap<Client, u64>,
    next_sweep: u64,
}

/// A quota with its clients' windows.
#[derive(Debug)]
pub struct Limiter {
    /// The quota.
    pub rule: RateLimitRule,
    tokens: u64,
    interval: u64,
    block: u64,
    shards: [Mutex<Shard>; SHARDS],
}

/// What a quota said of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The request may run.
    pub allowed: bool,
    /// `X-Ratelimit-Limit`, `-Remaining`, `-Reset` (absent while the client is blocked).
    pub window: Option<(u64, u64, u64)>,
    /// `Retry-After` in seconds, when refused.
    pub retry_after: Option<u64>,
}

/// Whole seconds in `nanos`, rounded up.
fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(NANOS)
}

impl Limiter {
    fn new(rule: RateLimitRule) -> Limiter {
        // Whole requests per window, at least one (Vault rounds 0.4 to none at all).
        let tokens = (rule.rate.round() as u64).max(1);
        let interval = rule.interval.max(1).saturating_mul(NANOS);
        let block = rule.block_interval.saturating_mul(NANOS);
        Limiter {
            rule,
            tokens,
            interval,
            block,
            shards: std::array::from_fn(|_| Mutex::default()),
        }
    }

    fn shard(&self, client: &Client) -> &Mutex<Shard> {
        use std::hash::{Hash, Hasher};
        // SipHash with fixed keys: the same client always lands in the same shard.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        client.hash(&mut h);
        let i = usize::try_from(h.finish() % SHARDS as u64).unwrap_or(0);
        let [first, ..] = &self.shards;
        self.shards.get(i).unwrap_or(first)
    }

    /// Counts one request of `addr` at `now` (Unix nanoseconds).
    pub fn take(&self, addr: Option<IpAddr>, now: u64) -> Verdict {
        let mut client = addr.map_or(Client::Unknown, Client::Addr);
        let mut shard = self
            .shard(&client)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now >= shard.next_sweep {
            let block = self.block;
            shard
                .buckets
                .retain(|_, b| now.saturating_sub(b.last_seen) < STALE);
            shard
                .blocked
                .retain(|_, at| now.saturating_sub(*at) < block);
            shard.next_sweep = now.saturating_add(SWEEP_EVERY);
        }
        if !shard.buckets.contains_key(&client) && shard.buckets.len() >= CLIENTS_PER_SHARD {
            client = Client::Overflow;
        }
        if let Some(&at) = shard.blocked.get(&client) {
            let until = at.saturating_add(self.block);
            if now < until {
                return Verdict {
                    allowed: false,
                    window: None,
                    retry_after: Some(ceil_secs(until - now)),
                };
            }
            shard.blocked.remove(&client);
        }
        let tokens = self.tokens;
        let b = shard.buckets.entry(client).or_insert(Bucket {
            start: now,
            tick: 0,
            available: tokens,
            last_seen: now,
        });
        b.last_seen = now;
        let tick = now.saturating_sub(b.start) / self.interval;
        if tick > b.tick {
            b.tick = tick;
            b.available = tokens;
        }
        let allowed = b.available > 0;
        if allowed {
            b.available -= 1;
        }
        let reset_at = b
            .start
            .saturating_add(tick.saturating_add(1).saturating_mul(self.interval));
        let reset = ceil_secs(reset_at.saturating_sub(now));
        let remaining = if allowed { b.available } else { 0 };
        let mut retry_after = (!allowed).then_some(reset);
        if !allowed && self.block > 0 {
            shard.blocked.insert(client, now);
            retry_after = Some(ceil_secs(self.block));
        }
        Verdict {
            allowed,
            window: Some((tokens, remaining, reset)),
            retry_after,
        }
    }

    /// Client buckets held now (all shards).
    pub fn clients(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .buckets
                    .len()
            })
            .sum()
    }
}

/// The configuration and quotas in force (an immutable snapshot, swapped on change).
#[derive(Debug, Default)]
pub struct QuotaSet {
    /// `sys/quotas/config`.
    pub config: QuotaConfig,
    exempt_exact: HashSet<String>,
    exempt_prefixes: Vec<String>,
    by_name: BTreeMap<String, Arc<Limiter>>,
}

impl QuotaSet {
    fn build(config: QuotaConfig, limiters: impl IntoIterator<Item = Arc<Limiter>>) -> QuotaSet {
        let mut set = QuotaSet::default();
        for p in &config.rate_limit_exempt_paths {
            match p.strip_suffix('*') {
                Some(prefix) => set.exempt_prefixes.push(prefix.to_owned()),
                None => {
                    set.exempt_exact.insert(p.clone());
                }
            }
        }
        set.config = config;
        for l in limiters {
            set.by_name.insert(l.rule.name.clone(), l);
        }
        set
    }

    /// No quota is defined (every request passes without a look-up).
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// `path` is exempt from rate limiting.
    pub fn exempt(&self, path: &str) -> bool {
        self.exempt_exact.contains(path) || self.exempt_prefixes.iter().any(|p| path.starts_with(p))
    }

    /// A role quota is defined on `mount`: its logins are limited once their role is known.
    pub fn has_role_quotas(&self, mount: &str) -> bool {
        self.rules()
            .any(|r| r.mount_path == mount && !r.role.is_empty())
    }

    /// The quota that applies to `path` (served by `mount`, empty when no mount serves it),
    /// a login of `role` if known: the most specific one (role, exact path, longest path
    /// prefix, mount, global). Quotas are few: each is ranked, the highest wins (factors are
    /// unique, so no two tie).
    pub fn find(&self, path: &str, mount: &str, role: Option<&str>) -> Option<&Arc<Limiter>> {
        let suffix = path
            .strip_prefix(mount)
            .unwrap_or_default()
            .trim_end_matches('/');
        let rank = |r: &RateLimitRule| -> Option<usize> {
            if r.mount_path.is_empty() {
                return Some(0);
            }
            if mount.is_empty() || r.mount_path != mount {
                return None;
            }
            if !r.role.is_empty() {
                return (role == Some(r.role.as_str())).then_some(usize::MAX);
            }
            if r.path_suffix.is_empty() {
                return Some(1);
            }
            if r.path_suffix == suffix {
                return Some(usize::MAX - 1);
            }
            let prefix = r.path_suffix.strip_suffix('*')?;
            suffix.starts_with(prefix).then_some(2 + prefix.len())
        };
        self.by_name
            .values()
            .filter_map(|l| rank(&l.rule).map(|k| (k, l)))
            .max_by_key(|(k, _)| *k)
            .map(|(_, l)| l)
    }

    /// The quotas by name.
    pub fn rules(&self) -> impl Iterator<Item = &RateLimitRule> {
        self.by_name.values().map(|l| &l.rule)
    }

    /// The quota called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Limiter>> {
        self.by_name.get(name)
    }

    fn with(&self, config: QuotaConfig, change: impl FnOnce(&mut Vec<Arc<Limiter>>)) -> QuotaSet {
        let mut limiters: Vec<Arc<Limiter>> = self.by_name.values().cloned().collect();
        change(&mut limiters);
        QuotaSet::build(config, limiters)
    }
}

/// What a write of `sys/quotas/rate-limit/<name>` asks for.
#[derive(Debug, Clone)]
pub struct RateLimitRequest {
    /// The quota's name.
    pub name: String,
    /// `path` as given.
    pub path: String,
    /// `role` as given.
    pub role: String,
    /// `rate`.
    pub rate: f64,
    /// `interval` in seconds (0: one second).
    pub interval: i64,
    /// `block_interval` in seconds.
    pub block_interval: i64,
    /// `inheritable`, if given.
    pub inheritable: Option<bool>,
}

impl Core {
    /// The configuration and quotas in force.
    pub fn quotas(&self) -> arc_swap::Guard<Arc<QuotaSet>> {
        self.quotas.load()
    }

    /// Loads the stored configuration and quotas (at unseal).
    pub(crate) async fn load_quotas(&self) -> Result<()> {
        let storage = self.storage("");
        let config: Option<QuotaConfig> = storage.get_json(CONFIG_KEY).await?;
        let mut limiters = Vec::new();
        for name in storage.list(RULE_PREFIX).await? {
            let rule: Option<RateLimitRule> =
                storage.get_json(&format!("{RULE_PREFIX}{name}")).await?;
            if let Some(rule) = rule {
                limiters.push(Arc::new(Limiter::new(rule)));
            }
        }
        self.quotas.store(Arc::new(QuotaSet::build(
            config.unwrap_or_default(),
            limiters,
        )));
        Ok(())
    }

    /// HA standby: the stored configuration and quotas, for the requests a standby serves
    /// itself (its scrapes, `sys/leader`); everything else is forwarded and limited by the
    /// active node. A quota whose rule is unchanged keeps its clients' windows. Called every
    /// renewal interval; nothing is kept once the node is active (the active node's writes
    /// take the same lock, so a refresh never overwrites one).
    pub async fn refresh_standby_quotas(&self) -> Result<()> {
        let _guard = self.quota_lock.lock().await;
        if !self.is_standby() {
            return Ok(());
        }
        let storage = self.storage("");
        let config: Option<QuotaConfig> = storage.get_json(CONFIG_KEY).await?;
        let current = self.quotas.load_full();
        let mut limiters = Vec::new();
        for name in storage.list(RULE_PREFIX).await? {
            let rule: Option<RateLimitRule> =
                storage.get_json(&format!("{RULE_PREFIX}{name}")).await?;
            if let Some(rule) = rule {
                limiters.push(match current.get(&rule.name) {
                    Some(same) if same.rule == rule => same.clone(),
                    _ => Arc::new(Limiter::new(rule)),
                });
            }
        }
        // Not over a set loaded meanwhile (a step-up's, which may be newer) or cleared.
        if self.is_standby() {
            let next = Arc::new(QuotaSet::build(config.unwrap_or_default(), limiters));
            self.quotas.compare_and_swap(&current, next);
        }
        Ok(())
    }

    /// Forgets the quotas (at seal).
    pub(crate) fn clear_quotas(&self) {
        self.quotas.store(Arc::new(QuotaSet::default()));
    }

    /// Replaces the configuration.
    pub async fn set_quota_config(&self, config: QuotaConfig) -> Result<()> {
        let _guard = self.quota_lock.lock().await;
        self.storage("").put_json(CONFIG_KEY, &config).await?;
        let next = self.quotas.load().with(config, |_| {});
        self.quotas.store(Arc::new(next));
        Ok(())
    }

    /// Creates or replaces a rate-limit quota, with Vault's checks and texts. Its clients'
    /// windows start afresh.
    pub async fn write_rate_limit(&self, req: RateLimitRequest) -> Result<()> {
        if req.rate <= 0.0 || !req.rate.is_finite() {
            return Err(Error::bad("'rate' is invalid"));
        }
        if req.interval < 0 {
            return Err(Error::bad("'interval' is invalid"));
        }
        if req.block_interval < 0 {
            return Err(Error::bad("'block' is invalid"));
        }
        let interval = u64::try_from(req.interval).unwrap_or(0).max(1);
        let block_interval = u64::try_from(req.block_interval).unwrap_or(0);
        let (mount_path, path_suffix) = self.quota_target(&req.path)?;
        if !req.role.is_empty() {
            self.check_role_target(&mount_path, &path_suffix)?;
        }
        let _guard = self.quota_lock.lock().await;
        let current = self.quotas.load_full();
        let factors = (mount_path.as_str(), path_suffix.as_str(), req.role.as_str());
        if let Some(other) = current.rules().find(|r| r.factors() == factors)
            && other.name != req.name
        {
            return Err(Error::bad(format!(
                "quota rule with similar properties exists under the name {:?}",
                other.name
            )));
        }
        let existing = current.get(&req.name).map(|l| l.rule.clone());
        let inheritable = req
            .inheritable
            .unwrap_or(mount_path.is_empty() && path_suffix.is_empty());
        let rule = RateLimitRule {
            id: existing
                .map(|e| e.id)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            name: req.name.clone(),
            mount_path,
            path_suffix,
            role: req.role,
            rate: req.rate,
            interval,
            block_interval,
            inheritable,
        };
        self.storage("")
            .put_json(&format!("{RULE_PREFIX}{}", req.name), &rule)
            .await?;
        let limiter = Arc::new(Limiter::new(rule));
        let next = current.with(current.config.clone(), |all| {
            all.retain(|l| l.rule.name != req.name);
            all.push(limiter);
        });
        self.quotas.store(Arc::new(next));
        Ok(())
    }

    /// Deletes a rate-limit quota (none by that name: nothing to do, as in Vault).
    pub async fn delete_rate_limit(&self, name: &str) -> Result<()> {
        let _guard = self.quota_lock.lock().await;
        self.storage("")
            .delete(&format!("{RULE_PREFIX}{name}"))
            .await?;
        let current = self.quotas.load_full();
        let next = current.with(current.config.clone(), |all| {
            all.retain(|l| l.rule.name != name);
        });
        self.quotas.store(Arc::new(next));
        Ok(())
    }

    /// A mount was disabled: its quotas go with it (as in Vault).
    pub(crate) async fn quotas_unmounted(&self, api_path: &str) -> Result<()> {
        self.rewrite_quotas(api_path, None).await
    }

    /// A mount moved: its quotas follow it.
    pub(crate) async fn quotas_remounted(&self, from: &str, to: &str) -> Result<()> {
        self.rewrite_quotas(from, Some(to)).await
    }

    async fn rewrite_quotas(&self, mount: &str, to: Option<&str>) -> Result<()> {
        let _guard = self.quota_lock.lock().await;
        let current = self.quotas.load_full();
        let affected: Vec<RateLimitRule> = current
            .rules()
            .filter(|r| r.mount_path == mount)
            .cloned()
            .collect();
        if affected.is_empty() {
            return Ok(());
        }
        let storage = self.storage("");
        let mut moved = Vec::new();
        for mut rule in affected.iter().cloned() {
            let key = format!("{RULE_PREFIX}{}", rule.name);
            match to {
                None => storage.delete(&key).await?,
                Some(to) => {
                    to.clone_into(&mut rule.mount_path);
                    storage.put_json(&key, &rule).await?;
                    moved.push(Arc::new(Limiter::new(rule)));
                }
            }
        }
        let next = current.with(current.config.clone(), |all| {
            all.retain(|l| l.rule.mount_path != mount);
            all.extend(moved);
        });
        self.quotas.store(Arc::new(next));
        Ok(())
    }

    /// `path` of a quota → (mount, path under it), as Vault resolves it: empty for the whole
    /// server; otherwise a mount must serve it.
    fn quota_target(&self, path: &str) -> Result<(String, String)> {
        let trimmed = path.trim_start_matches('/');
        if trimmed.is_empty() {
            return Ok((String::new(), String::new()));
        }
        let sanitized = if trimmed.ends_with('/') {
            trimmed.to_owned()
        } else {
            format!("{trimmed}/")
        };
        let table = self.mount_table();
        let Some(m) = table.route(&sanitized) else {
            return Err(Error::bad(format!("invalid mount path {sanitized:?}")));
        };
        let suffix = sanitized
            .strip_prefix(m.api_path.as_str())
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        Ok((m.api_path.clone(), suffix))
    }

    fn check_role_target(&self, mount: &str, suffix: &str) -> Result<()> {
        if !suffix.is_empty() {
            return Err(Error::bad(
                "Quotas cannot contain both a path suffix and a role. If a role is provided, path must be a valid auth mount with a concept of roles",
            ));
        }
        let table = self.mount_table();
        let m = table
            .get(mount)
            .filter(|m| m.entry.table == crate::logical::mount::MountTableKind::Auth);
        let Some(m) = m else {
            return Err(Error::bad(format!(
                "Mount path {mount:?} is not a valid auth method and therefore unsuitable for use with role-based quotas"
            )));
        };
        if !m.backend.resolves_login_roles() {
            return Err(Error::bad(format!(
                "Mount path {mount:?} does not support use with role-based quotas"
            )));
        }
        Ok(())
    }
}

/// Current Unix time in nanoseconds from `clock`.
pub fn now_nanos(clock: &dyn crate::clock::Clock) -> u64 {
    u64::try_from(crate::clock::unix_nanos(clock.now())).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(mount: &str, suffix: &str, role: &str, rate: f64) -> RateLimitRule {
        RateLimitRule {
            id: String::new(),
            name: format!("{mount}|{suffix}|{role}"),
            mount_path: mount.into(),
            path_suffix: suffix.into(),
            role: role.into(),
            rate,
            interval: 1,
            block_interval: 0,
            inheritable: false,
        }
    }

    fn set(rules: Vec<RateLimitRule>) -> QuotaSet {
        QuotaSet::build(
            QuotaConfig::default(),
            rules.into_iter().map(|r| Arc::new(Limiter::new(r))),
        )
    }

    #[test]
    fn the_most_specific_quota_applies() {
        let s = set(vec![
            rule("", "", "", 1.0),
            rule("secret/", "", "", 2.0),
            rule("secret/", "data/*", "", 3.0),
            rule("secret/", "data/app/*", "", 4.0),
            rule("secret/", "data/app/db", "", 5.0),
            rule("auth/approle/", "", "jenkins", 6.0),
        ]);
        let rate = |path: &str, mount: &str, role: Option<&str>| {
            s.find(path, mount, role).map(|l| l.rule.rate)
        };
        assert_eq!(rate("sys/mounts", "sys/", None), Some(1.0));
        assert_eq!(rate("secret/config", "secret/", None), Some(2.0));
        assert_eq!(rate("secret/data/other", "secret/", None), Some(3.0));
        assert_eq!(rate("secret/data/app/web", "secret/", None), Some(4.0));
        assert_eq!(rate("secret/data/app/db", "secret/", None), Some(5.0));
        assert_eq!(rate("secret/data/app/db/", "secret/", None), Some(5.0));
        assert_eq!(
            rate("auth/approle/login", "auth/approle/", Some("jenkins")),
            Some(6.0)
        );
        assert_eq!(
            rate("auth/approle/login", "auth/approle/", Some("other")),
            Some(1.0)
        );
        assert_eq!(rate("nowhere", "", None), Some(1.0));
        assert_eq!(
            set(vec![]).find("secret/x", "secret/", None).map(|_| ()),
            None
        );
    }

    #[test]
    fn a_window_allows_rate_requests_then_refuses_until_it_ends() {
        let l = Limiter::new(RateLimitRule {
            interval: 10,
            ..rule("", "", "", 3.0)
        });
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let t0 = 1_000 * NANOS;
        let seen: Vec<_> = (0..4).map(|i| l.take(a, t0 + i * NANOS)).collect();
        assert_eq!(seen[0].window, Some((3, 2, 10)));
        assert_eq!(seen[2].window, Some((3, 0, 8)));
        assert!(seen[..3].iter().all(|v| v.allowed));
        assert_eq!(
            seen[3],
            Verdict {
                allowed: false,
                window: Some((3, 0, 7)),
                retry_after: Some(7)
            }
        );
        // Another client has its own window.
        assert!(
            l.take(Some(IpAddr::from([10, 0, 0, 2])), t0 + 3 * NANOS)
                .allowed
        );
        // The next window starts full.
        let v = l.take(a, t0 + 10 * NANOS);
        assert_eq!(v.window, Some((3, 2, 10)));
        assert!(v.allowed);
    }

    #[test]
    fn a_blocked_client_is_refused_for_the_block_interval() {
        let l = Limiter::new(RateLimitRule {
            block_interval: 30,
            ..rule("", "", "", 1.0)
        });
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let t0 = 5_000 * NANOS;
        assert!(l.take(a, t0).allowed);
        let v = l.take(a, t0 + NANOS / 2);
        assert_eq!((v.allowed, v.retry_after), (false, Some(30)));
        // Windows passed, still blocked.
        let v = l.take(a, t0 + 20 * NANOS);
        assert_eq!(
            v,
            Verdict {
                allowed: false,
                window: None,
                retry_after: Some(11)
            }
        );
        assert!(l.take(a, t0 + 31 * NANOS).allowed);
    }

    #[test]
    fn buckets_are_bounded_and_stale_ones_swept() {
        let l = Limiter::new(rule("", "", "", 1.0));
        let t0 = 9_000 * NANOS;
        for i in 0..(MAX_CLIENTS as u32 + 5_000) {
            let addr = IpAddr::from(std::net::Ipv6Addr::from(u128::from(i) << 64));
            l.take(Some(addr), t0);
        }
        assert!(l.clients() <= MAX_CLIENTS + SHARDS, "{}", l.clients());
        // Past the overflow, new addresses share one bucket: the second is refused.
        let fresh = |n: u128| Some(IpAddr::from(std::net::Ipv6Addr::from(n | 1)));
        let first = l.take(fresh(7), t0);
        let second = l.take(fresh(8), t0);
        assert!(!(first.allowed && second.allowed));
        // Three idle minutes later they are gone (each shard sweeps when next used).
        let later = t0 + STALE + SWEEP_EVERY;
        for n in 0..200u128 {
            l.take(
                Some(IpAddr::from(std::net::Ipv6Addr::from((n + 1) << 80))),
                later,
            );
        }
        assert!(l.clients() <= 200 + SHARDS, "{}", l.clients());
    }

    #[test]
    fn a_fractional_rate_allows_at_least_one_request() {
        let l = Limiter::new(rule("", "", "", 0.4));
        assert!(l.take(None, NANOS).allowed);
        assert!(!l.take(None, NANOS).allowed);
    }

    #[test]
    fn exempt_paths_match_exactly_or_by_prefix() {
        let s = QuotaSet::build(
            QuotaConfig {
                rate_limit_exempt_paths: vec!["sys/health".into(), "secret/data/ops/*".into()],
                ..QuotaConfig::default()
            },
            [],
        );
        assert!(s.exempt("sys/health"));
        assert!(!s.exempt("sys/health/x"));
        assert!(s.exempt("secret/data/ops/db"));
        assert!(!s.exempt("secret/data/app"));
        assert!(QuotaSet::build(QuotaConfig::default(), []).exempt("sys/seal-status"));
    }
}
