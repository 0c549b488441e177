//! The token store: every credential the server issues ends up here.
//!
//! Tokens are never stored in plaintext. A token's storage key is `HMAC-SHA256(salt, token)`; its
//! accessor is derived from the token with a second HMAC (so lookups can show it without storing
//! it), and the accessor index is keyed by the accessor's own HMAC; its (barrier-encrypted) value
//! names the token and the accessor, so that accessors can be listed. The parent/child tree
//! (`parent/<parent>/<child>`) drives cascading revocation; `mount/<accessor>/<token>` lets an auth
//! mount's tokens be revoked when it is disabled. `lease/<creation path>/h<token>` is the lease
//! index: a token's lease id is its creation path and salted id (`auth/approle/login/h3f…`, as in
//! Vault), so `sys/leases` can list and revoke tokens by prefix. Token roles live under `roles/`.
//!
//! Concurrency: every read-modify-write of a token entry (use, renewal, revocation, orphaning,
//! and a child's creation under its parent) holds the entry's storage lock, re-reads the entry
//! and never writes one that is gone. Revocation first marks the whole tree pending
//! (`num_uses = -1`, as Vault's `tokenRevocationPending`) under those locks, so that no use,
//! renewal or child creation can succeed after it, then deletes children before parents.

pub mod ttl;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::{Clock, from_unix_nanos, rfc3339_nanos, unix_nanos, unix_secs};
use crate::error::{Error, Result};
use crate::physical::WriteOp;
use crate::secret::Secret;
use crate::storage::Storage;

const ENTRY_PREFIX: &str = "id/";
const ACCESSOR_PREFIX: &str = "accessor/";
const PARENT_PREFIX: &str = "parent/";
const MOUNT_PREFIX: &str = "mount/";
const EXPIRE_PREFIX: &str = "expire/";
const LEASE_PREFIX: &str = "lease/";
const ROLE_PREFIX: &str = "roles/";
const SALT_KEY: &str = "salt";
/// Written once every token that has a lease is in the lease index.
const LEASE_INDEX_DONE_KEY: &str = "lease-index-v1";

/// `num_uses` of a token whose revocation has begun (or whose last use is being served).
pub const REVOCATION_PENDING: i64 = -1;

/// Storage key of a token entry.
fn entry_path(key: &str) -> String {
    format!("{ENTRY_PREFIX}{key}")
}

/// The value of an accessor index entry. Entries written before the accessor was stored hold
/// only the token key (plain text, not JSON); they resolve but cannot be listed.
#[derive(Serialize, Deserialize)]
struct AccessorIndex {
    key: String,
    accessor: String,
}

impl AccessorIndex {
    fn decode(bytes: &[u8]) -> Result<(String, Option<String>)> {
        if bytes.first() == Some(&b'{') {
            let idx: AccessorIndex = serde_json::from_slice(bytes).map_err(Error::internal)?;
            return Ok((idx.key, Some(idx.accessor)));
        }
        let key = String::from_utf8(bytes.to_vec()).map_err(Error::internal)?;
        Ok((key, None))
    }
}

/// The lease id of a token: its creation path and its salted id.
fn lease_id_of(path: &str, key: &str) -> String {
    format!("{path}/h{key}")
}

/// Index key of a token's lease; `None` for tokens without a lease (init's root token).
fn lease_index_key(entry: &TokenEntry) -> Option<String> {
    entry
        .has_lease
        .then(|| format!("{LEASE_PREFIX}{}", lease_id_of(&entry.path, &entry.key)))
}

/// `prefix` as a folder: with a trailing `/` unless empty.
fn folder(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    }
}

/// Index key of a token's expiry: seconds zero-padded so that key order is time order.
fn expire_key(expire_nanos: i128, key: &str) -> String {
    let secs = expire_nanos.div_euclid(1_000_000_000).max(0);
    format!("{EXPIRE_PREFIX}{secs:020}/{key}")
}

/// A stored token (no plaintext id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenEntry {
    /// `HMAC(salt, token)`: the storage key.
    pub key: String,
    /// `HMAC(salt, accessor)`: the accessor index key.
    pub accessor_key: String,
    /// Storage key of the parent token; `None` for orphans.
    pub parent_key: Option<String>,
    /// Sorted policy names.
    pub policies: Vec<String>,
    /// The API path that created the token.
    pub path: String,
    /// User-visible metadata.
    pub meta: Option<BTreeMap<String, String>>,
    /// Display name.
    pub display_name: String,
    /// Remaining uses: 0 unlimited, -1 revocation pending.
    pub num_uses: i64,
    /// Creation time, Unix nanoseconds.
    pub creation_nanos: i128,
    /// TTL at creation, seconds.
    pub creation_ttl: i64,
    /// Current TTL (after the last renewal), seconds.
    pub ttl: i64,
    /// Expiry, Unix nanoseconds; `None` never expires.
    pub expire_nanos: Option<i128>,
    /// Hard cap in seconds.
    pub explicit_max_ttl: i64,
    /// Period in seconds.
    pub period: i64,
    /// Whether renewal is allowed.
    pub renewable: bool,
    /// False for tokens without a lease (the root token): lookup omits `issue_time`/`renewable`.
    pub has_lease: bool,
    /// Last renewal, Unix nanoseconds.
    pub last_renewal_nanos: Option<i128>,
    /// Identity entity id (`""` when none).
    pub entity_id: String,
    /// CIDRs the token may be used from.
    pub bound_cidrs: Vec<String>,
    /// Id of the token's private cubbyhole.
    pub cubbyhole_id: String,
    /// `service` (batch tokens are not supported yet).
    pub token_type: String,
    /// Accessor of the auth mount that issued the token.
    pub mount_accessor: String,
    /// Backend maximum TTL used again at renewal.
    pub backend_max_ttl: i64,
    /// Backend data for renewal (e.g. the approle role name).
    pub internal: BTreeMap<String, String>,
    /// The token role it was created from (`auth/token/create/<role>`), `""` when none.
    #[serde(default)]
    pub role: String,
}

impl TokenEntry {
    /// True for a root-policy token.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// True for a response-wrapping token: its only policy is `response-wrapping`.
    pub fn is_wrapping(&self) -> bool {
        self.policies.len() == 1
            && self
                .policies
                .first()
                .is_some_and(|p| p == "response-wrapping")
    }

    /// Remaining TTL in whole seconds at `now`, as Vault's lease computes it: from `now` rounded
    /// to the second to the exact expiry, the fraction dropped (a 1h token looked up at once
    /// shows 3600 or 3599 depending on where in its second it was made); 0 for non-expiring
    /// tokens.
    pub fn remaining_ttl(&self, now_nanos: i128) -> i64 {
        const SECOND: i128 = 1_000_000_000;
        match self.expire_nanos {
            None => 0,
            Some(exp) => {
                let now = (now_nanos + SECOND / 2).div_euclid(SECOND) * SECOND;
                i64::try_from((exp - now).div_euclid(SECOND))
                    .unwrap_or(0)
                    .max(0)
            }
        }
    }

    /// The `data` of a token lookup. `id` is the token (empty for lookup-accessor).
    pub fn lookup_data(&self, id: &str, accessor: &str, now_nanos: i128) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert("accessor".into(), json!(accessor));
        d.insert(
            "creation_time".into(),
            json!(unix_secs(from_unix_nanos(self.creation_nanos))),
        );
        d.insert("creation_ttl".into(), json!(self.creation_ttl));
        d.insert("display_name".into(), json!(self.display_name));
        d.insert("entity_id".into(), json!(self.entity_id));
        d.insert(
            "expire_time".into(),
            self.expire_nanos
                .map_or(Value::Null, |n| json!(rfc3339_nanos(from_unix_nanos(n)))),
        );
        d.insert("explicit_max_ttl".into(), json!(self.explicit_max_ttl));
        d.insert("id".into(), json!(id));
        if self.has_lease {
            d.insert(
                "issue_time".into(),
                json!(rfc3339_nanos(from_unix_nanos(self.creation_nanos))),
            );
            d.insert("renewable".into(), json!(self.renewable));
        }
        if let Some(n) = self.last_renewal_nanos {
            d.insert(
                "last_renewal".into(),
                json!(rfc3339_nanos(from_unix_nanos(n))),
            );
            d.insert(
                "last_renewal_time".into(),
                json!(unix_secs(from_unix_nanos(n))),
            );
        }
        d.insert(
            "meta".into(),
            self.meta.as_ref().map_or(Value::Null, |m| json!(m)),
        );
        d.insert("num_uses".into(), json!(self.num_uses));
        d.insert("orphan".into(), json!(self.parent_key.is_none()));
        d.insert("path".into(), json!(self.path));
        d.insert("policies".into(), json!(self.policies));
        if self.period > 0 {
            d.insert("period".into(), json!(self.period));
        }
        if !self.bound_cidrs.is_empty() {
            d.insert("bound_cidrs".into(), json!(self.bound_cidrs));
        }
        if !self.role.is_empty() {
            d.insert("role".into(), json!(self.role));
        }
        d.insert("ttl".into(), json!(self.remaining_ttl(now_nanos)));
        d.insert("type".into(), json!(self.token_type));
        d
    }
}

/// What a caller asks the store to create.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    /// Caller-chosen id (sudo only); otherwise a random `hvs.` id.
    pub id: Option<Secret>,
    /// Normalised policy list.
    pub policies: Vec<String>,
    /// Metadata.
    pub meta: Option<BTreeMap<String, String>>,
    /// Display name.
    pub display_name: String,
    /// Creating path.
    pub path: String,
    /// Use limit.
    pub num_uses: i64,
    /// Effective TTL in seconds (0 = never expires).
    pub ttl: i64,
    /// Hard cap.
    pub explicit_max_ttl: i64,
    /// Period.
    pub period: i64,
    /// Renewable flag.
    pub renewable: bool,
    /// Whether the token has a lease (false only for the root token).
    pub has_lease: bool,
    /// Parent's storage key.
    pub parent_key: Option<String>,
    /// Bound CIDRs.
    pub bound_cidrs: Vec<String>,
    /// Entity id.
    pub entity_id: String,
    /// Issuing auth mount accessor.
    pub mount_accessor: String,
    /// Backend maximum TTL.
    pub backend_max_ttl: i64,
    /// Backend data for renewal.
    pub internal: BTreeMap<String, String>,
    /// Token role name (`auth/token/create/<role>`).
    pub role: String,
}

/// A freshly created token: the only moment the plaintext exists server-side.
#[derive(Debug)]
pub struct Created {
    /// The token.
    pub token: Secret,
    /// Its accessor.
    pub accessor: String,
    /// The stored entry.
    pub entry: Arc<TokenEntry>,
}

/// Hooks the store calls while revoking (destroying a cubbyhole).
#[async_trait::async_trait]
pub trait RevokeHook: Send + Sync {
    /// Called for each token as it is revoked.
    async fn on_revoke(&self, entry: &TokenEntry) -> Result<()>;
}

/// The token store.
pub struct TokenStore {
    storage: Storage,
    /// HMAC-SHA256 already keyed with the salt: cloning it skips re-hashing the key per MAC.
    keyed: arc_swap::ArcSwap<HmacSha256>,
    decoded: crate::storage::DecodedCache<TokenEntry>,
    clock: Arc<dyn Clock>,
    /// Tokens with a lease (Vault's `expire.num_leases`): counted from the lease index at
    /// unseal, then moved by each create and revoke that wrote its batch.
    leases: std::sync::atomic::AtomicI64,
}

type HmacSha256 = Hmac<Sha256>;

/// What [`TokenStore::tidy`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tidied {
    /// Accessor index entries of tokens that are gone.
    pub accessors: usize,
    /// Parent links whose child is gone or names another parent.
    pub parent_links: usize,
    /// Mount and lease index entries of tokens that are gone.
    pub index_entries: usize,
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62_char(i: usize) -> char {
    char::from(BASE62.get(i % BASE62.len()).copied().unwrap_or(b'0'))
}

/// `n` random base62 characters (`ids::base62`: thread_rng, a CSPRNG seeded from the OS RNG).
pub fn random_base62(n: usize) -> String {
    crate::ids::base62(n)
}

impl TokenStore {
    /// A store over `storage`; its salt is read at `load` (unseal).
    pub fn new(storage: Storage, clock: Arc<dyn Clock>) -> Self {
        TokenStore {
            storage,
            keyed: arc_swap::ArcSwap::from_pointee(keyed_mac(&[])),
            decoded: crate::storage::DecodedCache::new(DECODED_CACHE_CAP),
            clock,
            leases: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Reads the salt, creating it on first start, and completes the lease index (once).
    pub async fn load_salt(&self) -> Result<()> {
        let salt = match self.storage.get(SALT_KEY).await? {
            Some(s) => s,
            None => {
                let s = crate::ids::os_key::<32>()?;
                self.storage.put(SALT_KEY, s.to_vec()).await?;
                s.to_vec()
            }
        };
        self.keyed.store(Arc::new(keyed_mac(&salt)));
        self.backfill_lease_index().await?;
        let leases = self.storage.scan(LEASE_PREFIX, usize::MAX).await?.len();
        self.leases.store(
            i64::try_from(leases).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    /// Reads the salt the active node created, writing nothing (an HA standby checking a
    /// token). An error when there is none yet.
    pub async fn read_salt(&self) -> Result<()> {
        let salt = self
            .storage
            .get(SALT_KEY)
            .await?
            .ok_or_else(|| Error::internal("the token store has no salt yet"))?;
        self.keyed.store(Arc::new(keyed_mac(&salt)));
        Ok(())
    }

    /// Forgets the salt (at seal).
    pub fn clear(&self) {
        self.keyed.store(Arc::new(keyed_mac(&[])));
        self.leases.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many tokens hold a lease now (`vault.expire.num_leases`).
    pub fn lease_count(&self) -> u64 {
        u64::try_from(self.leases.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(0)
    }

    fn count_leases(&self, entry: &TokenEntry, delta: i64) {
        if entry.has_lease {
            self.leases
                .fetch_add(delta, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn mac(&self, domain: &str, value: &str) -> Vec<u8> {
        let mut m = HmacSha256::clone(&self.keyed.load());
        m.update(domain.as_bytes());
        m.update(b":");
        m.update(value.as_bytes());
        m.finalize().into_bytes().to_vec()
    }

    /// Storage key of a token.
    pub fn key_of(&self, token: &str) -> String {
        hex(&self.mac("id", token))
    }

    /// The accessor of a token (derived, never stored).
    pub fn accessor_of(&self, token: &str) -> String {
        self.mac("accessor", token)
            .iter()
            .take(24)
            .map(|b| base62_char(usize::from(*b)))
            .collect()
    }

    /// Index key of an accessor.
    pub fn accessor_key(&self, accessor: &str) -> String {
        hex(&self.mac("acc", accessor))
    }

    /// A keyed hash for other stores that must not keep plaintext (e.g. secret-ids).
    pub fn hmac_hex(&self, domain: &str, value: &str) -> String {
        hex(&self.mac(domain, value))
    }

    fn now_nanos(&self) -> i128 {
        unix_nanos(self.clock.now())
    }

    /// Creates and persists a token.
    pub async fn create(&self, n: NewToken) -> Result<Created> {
        let _created = crate::telemetry::Timer::named(crate::telemetry::TOKEN_CREATE);
        let _timed = n
            .has_lease
            .then(|| crate::telemetry::Timer::named(crate::telemetry::EXPIRE_REGISTER_AUTH));
        let token =
            n.id.unwrap_or_else(|| Secret::new(format!("hvs.{}", random_base62(24))));
        let key = self.key_of(token.expose());
        if self
            .storage
            .get(&format!("{ENTRY_PREFIX}{key}"))
            .await?
            .is_some()
        {
            return Err(Error::bad("cannot create a token with a duplicate ID"));
        }
        let accessor = self.accessor_of(token.expose());
        let now = self.now_nanos();
        let entry = TokenEntry {
            key: key.clone(),
            accessor_key: self.accessor_key(&accessor),
            parent_key: n.parent_key,
            policies: n.policies,
            path: n.path,
            meta: n.meta,
            display_name: n.display_name,
            num_uses: n.num_uses,
            creation_nanos: now,
            creation_ttl: n.ttl,
            ttl: n.ttl,
            expire_nanos: (n.ttl > 0).then(|| now + i128::from(n.ttl) * 1_000_000_000),
            explicit_max_ttl: n.explicit_max_ttl,
            period: n.period,
            renewable: n.renewable,
            has_lease: n.has_lease,
            last_renewal_nanos: None,
            entity_id: n.entity_id,
            bound_cidrs: n.bound_cidrs,
            cubbyhole_id: crate::ids::uuid_v4(),
            token_type: "service".into(),
            mount_accessor: n.mount_accessor,
            backend_max_ttl: n.backend_max_ttl,
            internal: n.internal,
            role: n.role,
        };
        let mut ops = vec![
            WriteOp::Put(entry_path(&key), Storage::encode(&entry)?),
            WriteOp::Put(
                format!("{ACCESSOR_PREFIX}{}", entry.accessor_key),
                Storage::encode(&AccessorIndex {
                    key: key.clone(),
                    accessor: accessor.clone(),
                })?,
            ),
        ];
        if let Some(parent) = &entry.parent_key {
            ops.push(WriteOp::Put(
                format!("{PARENT_PREFIX}{parent}/{key}"),
                Vec::new(),
            ));
        }
        if !entry.mount_accessor.is_empty() {
            ops.push(WriteOp::Put(
                format!("{MOUNT_PREFIX}{}/{key}", entry.mount_accessor),
                Vec::new(),
            ));
        }
        if let Some(exp) = entry.expire_nanos {
            ops.push(WriteOp::Put(expire_key(exp, &key), Vec::new()));
        }
        if let Some(lease) = lease_index_key(&entry) {
            ops.push(WriteOp::Put(lease, Vec::new()));
        }
        match &entry.parent_key {
            // The child is linked under the parent's lock, and only while the parent is live:
            // once revocation has marked the parent, no child can be added to its tree.
            Some(parent) => {
                let _guard = self.storage.lock(&entry_path(parent)).await;
                let live = self
                    .load_shared(parent)
                    .await?
                    .is_some_and(|p| self.is_live(&p));
                if !live {
                    return Err(Error::bad("parent token lookup failed: no parent found"));
                }
                let _stored = crate::telemetry::Timer::named(crate::telemetry::TOKEN_STORE);
                self.storage.batch(ops).await?;
            }
            None => {
                let _stored = crate::telemetry::Timer::named(crate::telemetry::TOKEN_STORE);
                self.storage.batch(ops).await?;
            }
        }
        self.count_leases(&entry, 1);
        Ok(Created {
            token,
            accessor,
            entry: Arc::new(entry),
        })
    }

    /// Loads an entry by storage key, ignoring expiry.
    async fn load(&self, key: &str) -> Result<Option<TokenEntry>> {
        Ok(self.load_shared(key).await?.map(Arc::unwrap_or_clone))
    }

    async fn load_shared(&self, key: &str) -> Result<Option<Arc<TokenEntry>>> {
        self.decoded
            .get_shared(&self.storage, &format!("{ENTRY_PREFIX}{key}"))
            .await
    }

    fn is_live(&self, e: &TokenEntry) -> bool {
        let expired = e.expire_nanos.is_some_and(|exp| exp <= self.now_nanos());
        !expired && e.num_uses >= 0
    }

    fn live(&self, e: TokenEntry) -> Option<TokenEntry> {
        self.is_live(&e).then_some(e)
    }

    /// The live entry of a token: `None` when unknown, expired, or pending revocation.
    pub async fn lookup(&self, token: &str) -> Result<Option<TokenEntry>> {
        Ok(self.lookup_shared(token).await?.map(Arc::unwrap_or_clone))
    }

    /// `lookup` without copying the entry (the request hot path).
    pub async fn lookup_shared(&self, token: &str) -> Result<Option<Arc<TokenEntry>>> {
        static TIMER: std::sync::OnceLock<metrics::Histogram> = std::sync::OnceLock::new();
        let _timed = crate::telemetry::Timer::start(&TIMER, crate::telemetry::TOKEN_LOOKUP);
        if token.is_empty() {
            return Ok(None);
        }
        Ok(self
            .load_shared(&self.key_of(token))
            .await?
            .filter(|e| self.is_live(e)))
    }

    /// The live entry of an accessor.
    pub async fn lookup_accessor(&self, accessor: &str) -> Result<Option<TokenEntry>> {
        Ok(self
            .find_accessor(accessor)
            .await?
            .and_then(|e| self.live(e)))
    }

    /// The stored entry of an accessor, live or not (expired, pending revocation): revocation
    /// by accessor finishes what an interrupted revocation started.
    pub async fn find_accessor(&self, accessor: &str) -> Result<Option<TokenEntry>> {
        let idx = format!("{ACCESSOR_PREFIX}{}", self.accessor_key(accessor));
        let Some(bytes) = self.storage.get(&idx).await? else {
            return Ok(None);
        };
        let (key, _) = AccessorIndex::decode(&bytes)?;
        self.load(&key).await
    }

    /// Every accessor in the index, sorted (`LIST auth/token/accessors`). Index entries written
    /// before accessors were stored cannot be listed and are skipped.
    pub async fn list_accessors(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for idx in self.storage.list(ACCESSOR_PREFIX).await? {
            let Some(bytes) = self.storage.get(&format!("{ACCESSOR_PREFIX}{idx}")).await? else {
                continue;
            };
            if let Ok((_, Some(accessor))) = AccessorIndex::decode(&bytes) {
                out.push(accessor);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Charges one use. Returns the entry as it is for this request (num_uses -1 on its last use)
    /// and whether the token must be revoked after the request; `None` if it has no uses left
    /// (or is gone, or its revocation has begun).
    pub async fn use_token(
        &self,
        entry: Arc<TokenEntry>,
    ) -> Result<Option<(Arc<TokenEntry>, bool)>> {
        if entry.num_uses == 0 {
            return Ok(Some((entry, false)));
        }
        let path = entry_path(&entry.key);
        let _guard = self.storage.lock(&path).await;
        let Some(mut current) = self.load(&entry.key).await? else {
            return Ok(None);
        };
        if current.num_uses <= 0 {
            return Ok(None);
        }
        current.num_uses -= 1;
        let last = current.num_uses == 0;
        if last {
            current.num_uses = REVOCATION_PENDING;
        }
        self.storage.put_json(&path, &current).await?;
        Ok(Some((Arc::new(current), last)))
    }

    /// Applies `f` to the stored entry of `key` under its lock and persists the result, moving
    /// the expiry index entry when the expiry changed. Returns the updated entry, or `None`
    /// (nothing written) when the token is gone, expired or pending revocation: a deleted entry
    /// is never re-created, and fields `f` does not touch (the use count) are never stale.
    pub async fn modify(
        &self,
        key: &str,
        f: impl FnOnce(&mut TokenEntry),
    ) -> Result<Option<TokenEntry>> {
        let path = entry_path(key);
        let _guard = self.storage.lock(&path).await;
        let Some(mut entry) = self.load(key).await?.and_then(|e| self.live(e)) else {
            return Ok(None);
        };
        let old_expiry = entry.expire_nanos;
        f(&mut entry);
        let mut ops = Vec::new();
        if old_expiry != entry.expire_nanos {
            if let Some(old) = old_expiry {
                ops.push(WriteOp::Delete(expire_key(old, key)));
            }
            if let Some(exp) = entry.expire_nanos {
                ops.push(WriteOp::Put(expire_key(exp, key), Vec::new()));
            }
        }
        ops.push(WriteOp::Put(path, Storage::encode(&entry)?));
        self.storage.batch(ops).await?;
        Ok(Some(entry))
    }

    /// Revokes up to `limit` tokens whose expiry has passed, oldest first, reading only the
    /// front of the time-ordered index. Returns how many index entries were processed.
    pub async fn sweep(&self, limit: usize, hook: &dyn RevokeHook) -> Result<usize> {
        let now = self.now_nanos();
        let now_secs = now.div_euclid(1_000_000_000);
        let mut processed = 0;
        for idx in self.storage.scan(EXPIRE_PREFIX, limit).await? {
            let Some((secs, key)) = idx
                .strip_prefix(EXPIRE_PREFIX)
                .and_then(|r| r.split_once('/'))
            else {
                continue;
            };
            let Ok(secs) = secs.parse::<i128>() else {
                continue;
            };
            if secs > now_secs {
                break;
            }
            match self.load(key).await? {
                Some(e) if e.expire_nanos.is_some_and(|exp| exp <= now) => {
                    // Re-checked under the entry's lock: a renewal that won the race stands.
                    if self.mark_pending(key, true).await? {
                        let _timed =
                            crate::telemetry::Timer::named(crate::telemetry::EXPIRE_REVOKE);
                        self.revoke_tree(key, hook).await?;
                    }
                }
                Some(e)
                    if e.expire_nanos
                        .is_some_and(|exp| expire_key(exp, key) == idx) =>
                {
                    continue;
                }
                // Renewed since (the index moved) or already gone: drop the stale entry.
                _ => self.storage.delete(&idx).await?,
            }
            processed += 1;
        }
        Ok(processed)
    }

    /// The current time in Unix nanoseconds, per the store's clock.
    pub fn now(&self) -> i128 {
        self.now_nanos()
    }

    /// Marks a token pending revocation under its lock, after which no use, renewal or child
    /// creation succeeds. With `only_if_expired`, marks it only when it has expired by now.
    /// Returns whether the entry exists and is (now) marked.
    async fn mark_pending(&self, key: &str, only_if_expired: bool) -> Result<bool> {
        let path = entry_path(key);
        let _guard = self.storage.lock(&path).await;
        let Some(mut entry) = self.load(key).await? else {
            return Ok(false);
        };
        let now = self.now_nanos();
        if only_if_expired && entry.expire_nanos.is_none_or(|exp| exp > now) {
            return Ok(false);
        }
        if entry.num_uses != REVOCATION_PENDING {
            entry.num_uses = REVOCATION_PENDING;
            self.storage.put_json(&path, &entry).await?;
        }
        Ok(true)
    }

    /// Revokes a token and all its descendants.
    pub async fn revoke_tree(&self, key: &str, hook: &dyn RevokeHook) -> Result<()> {
        let _tree = crate::telemetry::Timer::named(crate::telemetry::TOKEN_REVOKE_TREE);
        let _timed = crate::telemetry::Timer::named(crate::telemetry::EXPIRE_REVOKE_BY_TOKEN);
        // Mark top-down: a token's children are listed only after it is marked, so a child
        // created concurrently is either refused or already linked and listed here.
        let mut marked = Vec::new();
        let mut stack = vec![key.to_string()];
        while let Some(k) = stack.pop() {
            self.mark_pending(&k, false).await?;
            for child in self.storage.list(&format!("{PARENT_PREFIX}{k}/")).await? {
                stack.push(child.trim_end_matches('/').to_string());
            }
            marked.push(k);
        }
        // Delete bottom-up: in reverse pre-order every token comes after its descendants.
        for k in marked.iter().rev() {
            self.revoke_one(k, hook).await?;
        }
        Ok(())
    }

    /// Revokes one token; its children become orphans.
    pub async fn revoke_orphan(&self, key: &str, hook: &dyn RevokeHook) -> Result<()> {
        let _timed = crate::telemetry::Timer::named(crate::telemetry::EXPIRE_REVOKE_BY_TOKEN);
        self.mark_pending(key, false).await?;
        for child in self.storage.list(&format!("{PARENT_PREFIX}{key}/")).await? {
            let path = entry_path(&child);
            let _guard = self.storage.lock(&path).await;
            if let Some(mut e) = self.load(&child).await? {
                e.parent_key = None;
                self.storage.put_json(&path, &e).await?;
            }
        }
        self.revoke_one(key, hook).await
    }

    async fn revoke_one(&self, key: &str, hook: &dyn RevokeHook) -> Result<()> {
        let _timed = crate::telemetry::Timer::named(crate::telemetry::TOKEN_REVOKE);
        let path = entry_path(key);
        let _guard = self.storage.lock(&path).await;
        let Some(entry) = self.load(key).await? else {
            self.storage
                .clear(&format!("{PARENT_PREFIX}{key}/"))
                .await?;
            return Ok(());
        };
        hook.on_revoke(&entry).await?;
        let mut ops = vec![
            WriteOp::Delete(path),
            WriteOp::Delete(format!("{ACCESSOR_PREFIX}{}", entry.accessor_key)),
        ];
        if let Some(parent) = &entry.parent_key {
            ops.push(WriteOp::Delete(format!("{PARENT_PREFIX}{parent}/{key}")));
        }
        if !entry.mount_accessor.is_empty() {
            ops.push(WriteOp::Delete(format!(
                "{MOUNT_PREFIX}{}/{key}",
                entry.mount_accessor
            )));
        }
        if let Some(exp) = entry.expire_nanos {
            ops.push(WriteOp::Delete(expire_key(exp, key)));
        }
        if let Some(lease) = lease_index_key(&entry) {
            ops.push(WriteOp::Delete(lease));
        }
        for child in self.storage.list(&format!("{PARENT_PREFIX}{key}/")).await? {
            ops.push(WriteOp::Delete(format!("{PARENT_PREFIX}{key}/{child}")));
        }
        self.storage.batch(ops).await?;
        self.count_leases(&entry, -1);
        Ok(())
    }

    /// Vault's `auth/token/tidy`: removes index entries left naming tokens that are gone
    /// (accessor, parent, mount and lease links) and returns, with their counts, the tokens that
    /// still name a parent that is gone (what an interrupted revocation leaves): the caller
    /// revokes those, as Vault does. Creation and revocation write a token with its index
    /// entries in one batch, so on a healthy store this finds nothing.
    pub async fn tidy(&self) -> Result<(Tidied, Vec<String>)> {
        let mut done = Tidied::default();
        for idx in self.storage.list(ACCESSOR_PREFIX).await? {
            let path = format!("{ACCESSOR_PREFIX}{idx}");
            let Some(bytes) = self.storage.get(&path).await? else {
                continue;
            };
            let Ok((key, _)) = AccessorIndex::decode(&bytes) else {
                continue;
            };
            if self.remove_if_gone(&key, &path).await? {
                done.accessors += 1;
            }
        }
        let mut orphans = Vec::new();
        for parent in self.storage.list(PARENT_PREFIX).await? {
            let parent = parent.trim_end_matches('/');
            for child in self
                .storage
                .list(&folder(&format!("{PARENT_PREFIX}{parent}")))
                .await?
            {
                let child = child.trim_end_matches('/');
                let guard = self.storage.lock(&entry_path(child)).await;
                match self.load(child).await? {
                    Some(e) if e.parent_key.as_deref() == Some(parent) => {
                        drop(guard);
                        if self.load(parent).await?.is_none() {
                            orphans.push(child.to_string());
                        }
                    }
                    _ => {
                        self.storage
                            .delete(&format!("{PARENT_PREFIX}{parent}/{child}"))
                            .await?;
                        done.parent_links += 1;
                    }
                }
            }
        }
        for link in self.storage.list_recursive(MOUNT_PREFIX).await? {
            // `mount/<mount accessor>/<token key>`
            let Some((_, key)) = link.rsplit_once('/') else {
                continue;
            };
            if self.remove_if_gone(key, &link).await? {
                done.index_entries += 1;
            }
        }
        for link in self.storage.list_recursive(LEASE_PREFIX).await? {
            // `lease/<creation path>/h<token key>`
            let Some(key) = link
                .rsplit_once('/')
                .and_then(|(_, last)| last.strip_prefix('h'))
            else {
                continue;
            };
            if self.remove_if_gone(key, &link).await? {
                done.index_entries += 1;
            }
        }
        Ok((done, orphans))
    }

    /// Deletes the index entry `path` if the token `key` is gone; checked under the token's
    /// lock, as every change of a token is made.
    async fn remove_if_gone(&self, key: &str, path: &str) -> Result<bool> {
        let entry = entry_path(key);
        let _guard = self.storage.lock(&entry).await;
        if self.storage.get(&entry).await?.is_some() {
            return Ok(false);
        }
        self.storage.delete(path).await?;
        Ok(true)
    }

    /// The token roles' storage (`roles/<name>`, names as given: Vault keeps their case).
    pub fn roles(&self) -> Storage {
        self.storage.sub(ROLE_PREFIX)
    }

    /// The lease id of a token (`<creation path>/h<salted id>`), `None` when it has no lease.
    pub fn lease_id(entry: &TokenEntry) -> Option<String> {
        entry
            .has_lease
            .then(|| lease_id_of(&entry.path, &entry.key))
    }

    /// The stored entry (live or not) of the token whose lease is `lease_id`; `None` when the id
    /// names no token lease.
    pub async fn find_lease(&self, lease_id: &str) -> Result<Option<TokenEntry>> {
        let Some((path, last)) = lease_id.rsplit_once('/') else {
            return Ok(None);
        };
        // Only a salted id is looked up: nothing else in the id reaches a storage key.
        let Some(key) = last.strip_prefix('h') else {
            return Ok(None);
        };
        if key.len() != 64 || !key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Ok(None);
        }
        Ok(self
            .load(key)
            .await?
            .filter(|e| e.has_lease && e.path == path))
    }

    /// The live entry of the token whose lease is `lease_id`.
    pub async fn lookup_lease(&self, lease_id: &str) -> Result<Option<TokenEntry>> {
        Ok(self.find_lease(lease_id).await?.and_then(|e| self.live(e)))
    }

    /// The lease ids and folders directly under `prefix` (`LIST sys/leases/lookup/<prefix>`).
    pub async fn list_leases(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = self
            .storage
            .list(&format!("{LEASE_PREFIX}{}", folder(prefix)))
            .await?;
        keys.sort();
        Ok(keys)
    }

    /// Revokes (with their children) the tokens whose lease id is `prefix` or lies under the
    /// folder `prefix/`, as Vault's revoke-prefix does. With `force`, a failure on one token is
    /// logged and the others are still revoked. Returns how many leases were revoked.
    pub async fn revoke_lease_prefix(
        &self,
        prefix: &str,
        force: bool,
        hook: &dyn RevokeHook,
    ) -> Result<usize> {
        if !prefix.ends_with('/')
            && let Some(e) = self.find_lease(prefix).await?
        {
            self.revoke_tree(&e.key, hook).await?;
            return Ok(1);
        }
        let index = format!("{LEASE_PREFIX}{}", folder(prefix));
        let mut revoked = 0;
        for idx in self.storage.list_recursive(&index).await? {
            let Some(lease_id) = idx.strip_prefix(LEASE_PREFIX) else {
                continue;
            };
            let result = match self.find_lease(lease_id).await {
                Ok(Some(e)) => self.revoke_tree(&e.key, hook).await.map(|()| 1),
                // An index entry without its token (a crash between writes of an older
                // version): nothing to revoke, drop it.
                Ok(None) => self.storage.delete(&idx).await.map(|()| 0),
                Err(e) => Err(e),
            };
            match result {
                Ok(n) => revoked += n,
                Err(e) if force => {
                    tracing::warn!(error = %e, "forced lease revocation skipped a lease");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(revoked)
    }

    /// Adds every token with a lease to the lease index, once (stores written before the index
    /// existed). Each entry is re-read under its lock, so a token revoked meanwhile is skipped.
    async fn backfill_lease_index(&self) -> Result<()> {
        if self.storage.get(LEASE_INDEX_DONE_KEY).await?.is_some() {
            return Ok(());
        }
        for key in self.storage.list(ENTRY_PREFIX).await? {
            let path = entry_path(&key);
            let _guard = self.storage.lock(&path).await;
            if let Some(idx) = self.load(&key).await?.as_ref().and_then(lease_index_key) {
                self.storage.put(&idx, Vec::new()).await?;
            }
        }
        self.storage.put(LEASE_INDEX_DONE_KEY, Vec::new()).await
    }

    /// Revokes every token issued through the auth mount with `mount_accessor`.
    pub async fn revoke_by_mount(&self, mount_accessor: &str, hook: &dyn RevokeHook) -> Result<()> {
        for key in self
            .storage
            .list(&format!("{MOUNT_PREFIX}{mount_accessor}/"))
            .await?
        {
            self.revoke_tree(&key, hook).await?;
        }
        Ok(())
    }
}

#[expect(
    clippy::panic,
    reason = "HMAC-SHA256 accepts any key length; unreachable"
)]
fn unreachable_mac() -> HmacSha256 {
    panic!("HMAC rejected a 32-byte key")
}

/// Token entries kept decoded (see `DecodedCache`).
const DECODED_CACHE_CAP: usize = 4096;

/// An HMAC-SHA256 keyed with `salt`.
fn keyed_mac(salt: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(salt).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch cannot be taken.
        <HmacSha256 as Mac>::new_from_slice(&[0u8; 32]).unwrap_or_else(|_| unreachable_mac())
    })
}

/// Lower-case hex for hot paths (token ids on every request, kv version keys).
///
/// `hex::encode` collects one `char` at a time and measured about 4x slower on a 32-byte MAC;
/// `hex::encode_to_slice` into a buffer of the exact length is as fast as a hand-written table.
pub fn hex(bytes: &[u8]) -> String {
    let mut buf = vec![0u8; bytes.len() * 2];
    // The buffer has exactly twice the input's length, the only way this call can fail.
    if hex::encode_to_slice(bytes, &mut buf).is_err() {
        return hex::encode(bytes);
    }
    // The encoder writes ASCII digits only.
    String::from_utf8(buf).unwrap_or_else(|_| hex::encode(bytes))
}

/// Lower-cases, trims, de-duplicates and sorts policy names; `root` swallows everything else.
pub fn normalize_policies(
    policies: impl IntoIterator<Item = String>,
    add_default: bool,
) -> Vec<String> {
    let mut out: Vec<String> = policies
        .into_iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if add_default {
        out.push("default".into());
    }
    out.sort();
    out.dedup();
    if out.iter().any(|p| p == "root") {
        return vec!["root".into()];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physical::inmem::InmemBackend;
    use crate::storage::KeyLocks;

    #[test]
    fn hex_is_lower_case_and_matches_the_hex_crate() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(hex(&bytes), ::hex::encode(&bytes));
    }

    struct NoHook;

    #[async_trait::async_trait]
    impl RevokeHook for NoHook {
        async fn on_revoke(&self, _entry: &TokenEntry) -> Result<()> {
            Ok(())
        }
    }

    async fn store() -> TokenStore {
        let storage = Storage::new(
            Arc::new(InmemBackend::new()),
            "token/",
            Arc::new(KeyLocks::default()),
        );
        let store = TokenStore::new(storage, crate::clock::MockClock::new());
        store.load_salt().await.unwrap();
        store
    }

    fn token(ttl: i64) -> NewToken {
        NewToken {
            policies: vec!["default".into()],
            ttl,
            renewable: true,
            has_lease: true,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn remaining_ttl_is_counted_from_now_rounded_to_the_second_as_vault_does() {
        let s = store().await;
        let created = s.create(token(3600)).await.unwrap();
        let mut entry = (*created.entry).clone();
        const S: i128 = 1_000_000_000;
        for (made, looked, want) in [
            // Made early in its second and looked up at once: 3600.
            (1_000 * S + S / 10, 1_000 * S + S * 15 / 100, 3600),
            // Made late in its second: now rounds up, 3599.
            (1_000 * S + S * 9 / 10, 1_000 * S + S * 95 / 100, 3599),
            // Exact seconds (a frozen clock): exactly the TTL left.
            (1_000 * S, 1_100 * S, 3500),
            (1_000 * S, 5_000 * S, 0),
        ] {
            entry.expire_nanos = Some(made + 3600 * S);
            assert_eq!(entry.remaining_ttl(looked), want, "{made} {looked}");
        }
    }

    #[tokio::test]
    async fn accessors_are_listed_and_old_index_entries_still_resolve() {
        let s = store().await;
        let a = s.create(token(0)).await.unwrap();
        let b = s.create(token(0)).await.unwrap();
        // An index entry as older versions wrote it: the token key only.
        s.storage
            .put(
                &format!("{ACCESSOR_PREFIX}{}", b.entry.accessor_key),
                b.entry.key.clone().into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(s.list_accessors().await.unwrap(), vec![a.accessor.clone()]);
        let found = s.lookup_accessor(&b.accessor).await.unwrap().unwrap();
        assert_eq!(found.key, b.entry.key);
        s.revoke_tree(&b.entry.key, &NoHook).await.unwrap();
        assert!(s.find_accessor(&b.accessor).await.unwrap().is_none());
        s.revoke_tree(&a.entry.key, &NoHook).await.unwrap();
        assert!(s.list_accessors().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn nothing_writes_a_token_once_its_revocation_began() {
        let s = store().await;
        let parent = s.create(token(3600)).await.unwrap();
        assert!(s.mark_pending(&parent.entry.key, false).await.unwrap());
        assert!(s.lookup(parent.token.expose()).await.unwrap().is_none());
        let renewed = s.modify(&parent.entry.key, |e| e.ttl = 7200).await.unwrap();
        assert!(renewed.is_none());
        let child = NewToken {
            parent_key: Some(parent.entry.key.clone()),
            ..token(60)
        };
        let err = s.create(child).await.unwrap_err();
        assert!(err.to_string().contains("no parent found"), "{err}");
        s.revoke_tree(&parent.entry.key, &NoHook).await.unwrap();
        // A write after the deletion never re-creates the entry.
        let renewed = s.modify(&parent.entry.key, |e| e.ttl = 7200).await.unwrap();
        assert!(renewed.is_none());
        assert!(s.load(&parent.entry.key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn renewal_keeps_the_stored_use_count_and_moves_the_expiry_index() {
        let s = store().await;
        let t = s
            .create(NewToken {
                num_uses: 5,
                ..token(60)
            })
            .await
            .unwrap();
        let stale = t.entry.clone();
        s.use_token(stale.clone()).await.unwrap().unwrap();
        s.use_token(stale.clone()).await.unwrap().unwrap();
        let new_exp = s.now() + 120 * 1_000_000_000;
        let e = s
            .modify(&stale.key, |e| e.expire_nanos = Some(new_exp))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.num_uses, 3);
        let index = s.storage.scan(EXPIRE_PREFIX, 10).await.unwrap();
        assert_eq!(index, vec![expire_key(new_exp, &stale.key)]);
    }

    #[tokio::test]
    async fn the_lease_index_is_completed_once_for_older_stores() {
        let s = store().await;
        let a = s
            .create(NewToken {
                path: "auth/approle/login".into(),
                ..token(60)
            })
            .await
            .unwrap();
        let root = s
            .create(NewToken {
                path: "auth/token/root".into(),
                has_lease: false,
                ..token(0)
            })
            .await
            .unwrap();
        let id = TokenStore::lease_id(&a.entry).unwrap();
        assert_eq!(s.list_leases("auth/approle/login").await.unwrap().len(), 1);
        assert!(TokenStore::lease_id(&root.entry).is_none());
        // A store written before the index existed: no index, no marker.
        s.storage.clear(LEASE_PREFIX).await.unwrap();
        s.storage.delete(LEASE_INDEX_DONE_KEY).await.unwrap();
        assert!(s.list_leases("auth/").await.unwrap().is_empty());
        s.load_salt().await.unwrap();
        assert_eq!(s.list_leases("").await.unwrap(), vec!["auth/".to_string()]);
        assert_eq!(
            s.list_leases("auth/").await.unwrap(),
            vec!["approle/".to_string()]
        );
        let found = s.lookup_lease(&id).await.unwrap().unwrap();
        assert_eq!(found.key, a.entry.key);
        // Ids that are not a salted id under the token's own path find nothing.
        for bad in [
            format!("auth/token/create/h{}", a.entry.key),
            format!("auth/approle/login/{}", a.entry.key),
            "auth/approle/login/h..".to_string(),
            "nothing".to_string(),
        ] {
            assert!(s.find_lease(&bad).await.unwrap().is_none(), "{bad}");
        }
        assert_eq!(
            s.revoke_lease_prefix("auth/", false, &NoHook)
                .await
                .unwrap(),
            1
        );
        assert!(s.load(&a.entry.key).await.unwrap().is_none());
        assert!(s.list_leases("auth/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_expired_token_cannot_be_renewed_and_the_sweep_revokes_it() {
        let clock = crate::clock::MockClock::new();
        let s = TokenStore::new(
            Storage::new(
                Arc::new(InmemBackend::new()),
                "token/",
                Arc::new(KeyLocks::default()),
            ),
            clock.clone(),
        );
        s.load_salt().await.unwrap();
        let t = s.create(token(60)).await.unwrap();
        clock.advance(std::time::Duration::from_secs(61));
        let renewed = s
            .modify(&t.entry.key, |e| e.expire_nanos = Some(i128::MAX))
            .await
            .unwrap();
        assert!(renewed.is_none());
        assert_eq!(s.sweep(10, &NoHook).await.unwrap(), 1);
        assert!(s.load(&t.entry.key).await.unwrap().is_none());
        assert!(s.find_accessor(&t.accessor).await.unwrap().is_none());
    }
}
