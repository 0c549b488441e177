//! What the AppRole backend persists in its mount's storage view, and how it is keyed.
//!
//! ```text
//! salt                                   backend-wide random salt (role_id and accessor indexes)
//! role/<lower role name>                 RoleEntry (includes the role's random hmac_key)
//! role_id/<HMAC(salt, role_id)>          RoleIdEntry {name}
//! secret_id/<HMAC(k, role)>/<HMAC(k, secret_id)>   SecretIdEntry (k = the role's hmac_key)
//! accessor/<HMAC(salt, accessor)>        AccessorEntry {secret_id_hmac}
//! ```
//!
//! `local_secret_ids` roles use `secret_id_local/` and `accessor_local/` (Vault keeps those out of
//! replication; here they only differ in prefix). Plaintext role ids, secret ids and accessors are
//! never stored as keys, and secret ids are never stored at all.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use crate::clock::{ZERO_TIME, from_unix_nanos, rfc3339_nanos};

/// Prefix of secret-id entries.
pub const SECRET_ID_PREFIX: &str = "secret_id/";
/// Prefix of secret-id entries of `local_secret_ids` roles.
pub const SECRET_ID_LOCAL_PREFIX: &str = "secret_id_local/";
/// Prefix of the accessor index.
pub const ACCESSOR_PREFIX: &str = "accessor/";
/// Prefix of the accessor index of `local_secret_ids` roles.
pub const ACCESSOR_LOCAL_PREFIX: &str = "accessor_local/";
/// Prefix of role entries.
pub const ROLE_PREFIX: &str = "role/";
/// Prefix of the role_id → role name index.
pub const ROLE_ID_PREFIX: &str = "role_id/";
/// Key of the backend-wide salt.
pub const SALT_KEY: &str = "salt";

/// A role as stored. Durations are whole seconds.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RoleEntry {
    /// Lower-cased role name.
    pub name: String,
    /// The login identifier (not secret on its own, but never listed).
    pub role_id: String,
    /// Random per-role key for the secret-id HMACs.
    pub hmac_key: String,
    /// `secret_id/` or `secret_id_local/`.
    pub secret_id_prefix: String,
    /// Whether login requires a secret id.
    pub bind_secret_id: bool,
    /// CIDRs allowed to log in; `None` reads back as `null`.
    pub secret_id_bound_cidrs: Option<Vec<String>>,
    /// Uses copied into each new secret id (0 = unlimited).
    pub secret_id_num_uses: i64,
    /// TTL of new secret ids (0 = never expire).
    pub secret_id_ttl: i64,
    /// Policies of issued tokens, as given.
    pub token_policies: Vec<String>,
    /// Deprecated `policies`, shown only when non-empty.
    pub policies: Vec<String>,
    /// Token TTL (0 = mount default).
    pub token_ttl: i64,
    /// Token max TTL (0 = mount max).
    pub token_max_ttl: i64,
    /// Hard cap carried by issued tokens.
    pub token_explicit_max_ttl: i64,
    /// Period of issued tokens.
    pub token_period: i64,
    /// Deprecated `period`, shown only when non-zero.
    pub period: i64,
    /// Uses of issued tokens (0 = unlimited).
    pub token_num_uses: i64,
    /// Leave `default` out of issued tokens' policies.
    pub token_no_default_policy: bool,
    /// `default`, `service` or `batch`.
    pub token_type: String,
    /// Addresses issued tokens may be used from.
    pub token_bound_cidrs: Vec<String>,
}

impl RoleEntry {
    /// True when `local_secret_ids` was set at creation.
    pub fn local_secret_ids(&self) -> bool {
        self.secret_id_prefix == SECRET_ID_LOCAL_PREFIX
    }

    /// The accessor index prefix matching this role's secret-id prefix.
    pub fn accessor_prefix(&self) -> &'static str {
        if self.local_secret_ids() {
            ACCESSOR_LOCAL_PREFIX
        } else {
            ACCESSOR_PREFIX
        }
    }

    /// Vault's rule: a role must keep at least one constraint.
    pub fn has_constraint(&self) -> bool {
        self.bind_secret_id
            || self
                .secret_id_bound_cidrs
                .as_ref()
                .is_some_and(|c| !c.is_empty())
            || !self.token_bound_cidrs.is_empty()
    }

    /// The `data` of a role read, exactly the keys Vault returns.
    pub fn read_data(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert("bind_secret_id".into(), json!(self.bind_secret_id));
        d.insert("local_secret_ids".into(), json!(self.local_secret_ids()));
        d.insert(
            "secret_id_bound_cidrs".into(),
            json!(self.secret_id_bound_cidrs),
        );
        d.insert("secret_id_num_uses".into(), json!(self.secret_id_num_uses));
        d.insert("secret_id_ttl".into(), json!(self.secret_id_ttl));
        d.insert("token_bound_cidrs".into(), json!(self.token_bound_cidrs));
        d.insert(
            "token_explicit_max_ttl".into(),
            json!(self.token_explicit_max_ttl),
        );
        d.insert("token_max_ttl".into(), json!(self.token_max_ttl));
        d.insert(
            "token_no_default_policy".into(),
            json!(self.token_no_default_policy),
        );
        d.insert("token_num_uses".into(), json!(self.token_num_uses));
        d.insert("token_period".into(), json!(self.token_period));
        d.insert("token_policies".into(), json!(self.token_policies));
        d.insert("token_ttl".into(), json!(self.token_ttl));
        d.insert("token_type".into(), json!(self.token_type_name()));
        if self.period != 0 {
            d.insert("period".into(), json!(self.period));
        }
        if !self.policies.is_empty() {
            d.insert("policies".into(), json!(self.policies));
        }
        d
    }

    /// The token type as Vault prints it (`default` when never set).
    pub fn token_type_name(&self) -> &str {
        if self.token_type.is_empty() {
            "default"
        } else {
            &self.token_type
        }
    }
}

/// The role_id index value.
#[derive(Clone, Serialize, Deserialize)]
pub struct RoleIdEntry {
    /// Lower-cased role name.
    pub name: String,
}

/// The accessor index value.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccessorEntry {
    /// HMAC of the secret id under the role's key (the last segment of its storage key).
    pub secret_id_hmac: String,
}

/// One issued secret id (the secret itself is not stored). Times are Unix nanoseconds.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct SecretIdEntry {
    /// Random accessor.
    pub secret_id_accessor: String,
    /// Remaining uses (0 = unlimited).
    pub secret_id_num_uses: i64,
    /// TTL as requested, in seconds (the expiry uses the mount-capped value).
    pub secret_id_ttl: i64,
    /// Creation time.
    pub creation_nanos: i128,
    /// Expiry time; `None` never expires.
    pub expiration_nanos: Option<i128>,
    /// Last change (use counting).
    pub last_updated_nanos: i128,
    /// Caller metadata, copied into the token's metadata at login.
    pub metadata: BTreeMap<String, String>,
    /// CIDRs allowed to log in with this secret id.
    pub cidr_list: Vec<String>,
    /// CIDRs bound to tokens issued with this secret id.
    pub token_bound_cidrs: Vec<String>,
}

impl SecretIdEntry {
    /// True when the entry has an expiry at or before `now`.
    pub fn expired(&self, now: i128) -> bool {
        self.expiration_nanos.is_some_and(|exp| exp <= now)
    }

    /// The `data` of a secret-id lookup.
    pub fn lookup_data(&self) -> Map<String, Value> {
        let t = |n: i128| rfc3339_nanos(from_unix_nanos(n));
        let mut d = Map::new();
        d.insert("cidr_list".into(), json!(self.cidr_list));
        d.insert("creation_time".into(), json!(t(self.creation_nanos)));
        d.insert(
            "expiration_time".into(),
            json!(
                self.expiration_nanos
                    .map_or_else(|| ZERO_TIME.to_string(), t)
            ),
        );
        d.insert(
            "last_updated_time".into(),
            json!(t(self.last_updated_nanos)),
        );
        d.insert("metadata".into(), json!(self.metadata));
        d.insert("secret_id_accessor".into(), json!(self.secret_id_accessor));
        d.insert("secret_id_num_uses".into(), json!(self.secret_id_num_uses));
        d.insert("secret_id_ttl".into(), json!(self.secret_id_ttl));
        d.insert("token_bound_cidrs".into(), json!(self.token_bound_cidrs));
        d
    }
}
