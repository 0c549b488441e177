//! The `token_*` role fields every auth method shares (Vault's `tokenutil.TokenParams`): their
//! path schema, how a role write applies them, and how a role read shows them. AppRole and JWT
//! roles both embed them; the core turns them into a token at login (`logical::Auth`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, PathSpec};
use crate::mounts::approle::validation::parse_addrs;

/// Adds Vault's shared `token_*` fields to a path.
pub fn token_fields<B>(p: PathSpec<B>) -> PathSpec<B> {
    p.field(
        "token_bound_cidrs",
        T::CommaStringSlice,
        "CIDRs tokens may be used from.",
    )
    .field(
        "token_explicit_max_ttl",
        T::DurationSecond,
        "Hard cap of token TTL.",
    )
    .field("token_max_ttl", T::DurationSecond, "Maximum token TTL.")
    .field(
        "token_no_default_policy",
        T::Bool,
        "Leave out the default policy.",
    )
    .field(
        "token_period",
        T::DurationSecond,
        "Period of periodic tokens.",
    )
    .field(
        "token_policies",
        T::CommaStringSlice,
        "Policies of issued tokens.",
    )
    .field(
        "token_type",
        T::Str,
        "Token type: default, service or batch.",
    )
    .field("token_ttl", T::DurationSecond, "Initial token TTL.")
    .field(
        "token_num_uses",
        T::Int,
        "Uses of issued tokens (0 = unlimited).",
    )
}

/// The shared token settings of a role. Durations are whole seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenFields {
    /// Policies of issued tokens, as given.
    pub token_policies: Vec<String>,
    /// Token TTL (0 = mount default).
    pub token_ttl: i64,
    /// Token max TTL (0 = mount max).
    pub token_max_ttl: i64,
    /// Hard cap carried by issued tokens.
    pub token_explicit_max_ttl: i64,
    /// Period of issued tokens.
    pub token_period: i64,
    /// Uses of issued tokens (0 = unlimited).
    pub token_num_uses: i64,
    /// Leave `default` out of issued tokens' policies.
    pub token_no_default_policy: bool,
    /// `default`, `service` or `batch`.
    pub token_type: String,
    /// Addresses issued tokens may be used from.
    pub token_bound_cidrs: Vec<String>,
}

impl TokenFields {
    /// Applies the `token_*` fields present in the request (Vault's `ParseTokenFields`);
    /// `token_type` is the request's value after any `default-*` adjustment.
    pub fn parse(&mut self, d: &FieldData<'_>, token_type: Option<String>) -> Result<()> {
        if let Some(cidrs) = d.get_list("token_bound_cidrs")? {
            self.token_bound_cidrs = parse_addrs(&cidrs).map_err(Error::bad)?;
        }
        if let Some(v) = d.get_duration("token_explicit_max_ttl")? {
            self.token_explicit_max_ttl = v;
        }
        if let Some(v) = d.get_duration("token_max_ttl")? {
            self.token_max_ttl = v;
        }
        if let Some(v) = d.get_bool("token_no_default_policy")? {
            self.token_no_default_policy = v;
        }
        if let Some(v) = d.get_duration("token_period")? {
            self.token_period = v;
        }
        if let Some(v) = d.get_list("token_policies")? {
            self.token_policies = v;
        }
        if let Some(t) = token_type {
            self.token_type = match t.as_str() {
                "" | "default" => "default".into(),
                // Batch tokens are accepted on the role as Vault does, but the token store only
                // issues service tokens, so logins through such a role still get a service token.
                "service" | "batch" => t,
                other => return Err(Error::bad(format!("invalid 'token_type' value {other:?}"))),
            };
        }
        if let Some(v) = d.get_int("token_num_uses")? {
            self.token_num_uses = v;
        }
        if self.token_num_uses < 0 {
            return Err(Error::bad("'token_num_uses' cannot be negative"));
        }
        if self.token_type == "batch" {
            if self.token_period != 0 {
                return Err(Error::bad(
                    "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens",
                ));
            }
            if self.token_num_uses != 0 {
                return Err(Error::bad(
                    "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
                ));
            }
        }
        if let Some(v) = d.get_duration("token_ttl")? {
            self.token_ttl = v;
        }
        if self.token_ttl > 0 && self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err(Error::bad(
                "'token_ttl' cannot be greater than 'token_max_ttl'",
            ));
        }
        Ok(())
    }

    /// The token type as Vault prints it (`default` when never set).
    pub fn token_type_name(&self) -> &str {
        if self.token_type.is_empty() {
            "default"
        } else {
            &self.token_type
        }
    }

    /// Adds the `token_*` keys of a role read (Vault's `PopulateTokenData`).
    pub fn read_into(&self, d: &mut Map<String, Value>) {
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
    }
}
