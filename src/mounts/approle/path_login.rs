//! `login`: trade a role_id (and, when the role binds one, a secret_id) for a token.
//!
//! The checks run in Vault's order (contract §2.9): role_id → role → secret id entry → accessor
//! index → use counting → secret-id CIDRs → role CIDRs → token CIDRs. Every credential failure
//! answers the same 400 `invalid role or secret ID`, so callers cannot tell an unknown role from
//! a wrong secret.
//!
//! Server-side failures here are plain 500s: Vault's login path does not wrap Go errors in the
//! multierror text its other endpoints use.
//!
//! One deliberate difference: Coffer rejects an expired secret id at login. Vault only deletes
//! expired secret ids in its tidy pass (every minute), so it may accept one for up to a minute
//! after its expiry; here the answer is the one Vault gives once tidy has run.

use std::collections::BTreeMap;
use std::net::IpAddr;
use subtle::ConstantTimeEq;

use super::path_secret_id::verify_subset;
use super::store::{AccessorEntry, RoleEntry, SecretIdEntry};
use super::validation::{create_hmac, ip_in_blocks, parse_addrs};
use super::{AppRoleBackend, invalid_credentials};
use crate::error::{Error, Result};
use crate::logical::{
    Auth, FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response,
};
use crate::secret::Secret;
use crate::token::normalize_policies;

type P = PathSpec<AppRoleBackend>;

pub(super) fn paths() -> Vec<P> {
    vec![
        P::new("login$")
            .field("role_id", T::Str, "Identifier of the role.")
            .field("secret_id", T::Str, "Secret ID of the role.")
            .on(Op::Update, |b, r, d| Box::pin(b.login(r, d)))
            .help("Issue a token based on the credentials supplied."),
    ]
}

/// What a consumed secret id contributes to the token.
struct Consumed {
    metadata: BTreeMap<String, String>,
    token_bound_cidrs: Vec<String>,
}

/// A Go error on the login path: 500 with the bare message.
fn login_err(msg: impl Into<String>) -> Error {
    Error::Coded(500, msg.into())
}

fn client_ip(req: &Request) -> Result<IpAddr> {
    req.client_addr
        .ok_or_else(|| login_err("failed to get connection information"))
}

impl AppRoleBackend {
    async fn login(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let role_id = d.get_str("role_id")?.unwrap_or_default().trim().to_string();
        if role_id.is_empty() {
            return Err(Error::bad("missing role_id"));
        }
        let Some(role) = self.role_by_role_id(&req.storage, &role_id).await? else {
            return Err(invalid_credentials());
        };

        // With bind_secret_id=false any secret_id sent is ignored, as in Vault.
        let consumed = if role.bind_secret_id {
            let secret = Secret::new(d.get_str("secret_id")?.unwrap_or_default().trim());
            if secret.is_empty() {
                return Err(Error::bad("missing secret_id"));
            }
            Some(self.consume_secret_id(req, &role, &secret).await?)
        } else {
            None
        };

        if let Some(cidrs) = role
            .secret_id_bound_cidrs
            .as_deref()
            .filter(|c| !c.is_empty())
        {
            let ip = client_ip(req)?;
            if !ip_in_blocks(ip, cidrs) {
                return Err(Error::bad(format!(
                    "source address \"{ip}\" unauthorized by CIDR restrictions on the role: %!w(<nil>)"
                )));
            }
        }

        let (mut metadata, secret_token_cidrs) = match consumed {
            Some(c) => (c.metadata, c.token_bound_cidrs),
            None => (BTreeMap::new(), Vec::new()),
        };
        let bound_cidrs = if secret_token_cidrs.is_empty() {
            role.token_bound_cidrs.clone()
        } else {
            parse_addrs(&secret_token_cidrs).map_err(Error::bad)?
        };
        metadata.insert("role_name".into(), role.name.clone());

        let policies = normalize_policies(
            role.token_policies.iter().cloned(),
            !role.token_no_default_policy,
        );
        if policies.iter().any(|p| p == "root") {
            return Err(Error::bad("auth methods cannot create root tokens"));
        }
        if policies.iter().any(|p| p == "response-wrapping") {
            return Err(Error::bad("cannot assign policy \"response-wrapping\""));
        }

        let auth = Auth {
            policies,
            metadata,
            ttl: role.token_ttl,
            max_ttl: role.token_max_ttl,
            explicit_max_ttl: role.token_explicit_max_ttl,
            period: role.token_period,
            num_uses: role.token_num_uses,
            renewable: true,
            // The token store issues service tokens only; a role asking for batch tokens gets
            // service tokens (documented divergence).
            token_type: "service".into(),
            bound_cidrs,
            display_name: String::new(),
            alias_name: role.role_id.clone(),
            internal: BTreeMap::from([("role_name".to_string(), role.name.clone())]),
        };
        Ok(Some(Response {
            auth: Some(auth),
            ..Default::default()
        }))
    }

    /// Validates and charges one use of a secret id, atomically under its storage lock.
    async fn consume_secret_id(
        &self,
        req: &Request,
        role: &RoleEntry,
        secret: &Secret,
    ) -> Result<Consumed> {
        let s = &req.storage;
        let hmac = create_hmac(&role.hmac_key, secret.expose())
            .map_err(|e| login_err(format!("failed to create HMAC of secret_id: {e}")))?;
        let key = Self::secret_key(role, &hmac)?;
        let _guard = s.lock(&key).await;
        let Some(mut entry) = s.get_json::<SecretIdEntry>(&key).await? else {
            return Err(invalid_credentials());
        };
        let acc_key = self
            .accessor_key(s, role, &entry.secret_id_accessor)
            .await?;
        let index: Option<AccessorEntry> = s.get_json(&acc_key).await?;
        let consistent =
            index.is_some_and(|i| bool::from(i.secret_id_hmac.as_bytes().ct_eq(hmac.as_bytes())));
        if !consistent {
            // Half-deleted entry: remove it, as Vault does.
            s.delete(&key).await?;
            return Err(invalid_credentials());
        }
        if entry.expired(self.now()) {
            // Stricter than Vault (see the module doc): expired is gone.
            self.delete_secret_id(s, role, &key, &entry).await?;
            return Err(invalid_credentials());
        }

        let role_cidrs = role.secret_id_bound_cidrs.as_deref().unwrap_or(&[]);
        if entry.secret_id_num_uses == 0 {
            verify_subset(&entry.cidr_list, role_cidrs).map_err(login_err)?;
            if !entry.cidr_list.is_empty() {
                let ip = client_ip(req)?;
                if !ip_in_blocks(ip, &entry.cidr_list) {
                    return Err(Error::bad(format!(
                        "source address \"{ip}\" unauthorized through CIDR restrictions on the secret ID"
                    )));
                }
            }
        } else {
            // The use is charged before the CIDR checks, exactly as Vault does: a login
            // rejected below still consumed it.
            if entry.secret_id_num_uses == 1 {
                self.delete_secret_id(s, role, &key, &entry).await?;
            } else {
                entry.secret_id_num_uses -= 1;
                entry.last_updated_nanos = self.now();
                s.put_json(&key, &entry).await?;
            }
            verify_subset(&entry.cidr_list, role_cidrs).map_err(login_err)?;
            if !entry.cidr_list.is_empty() {
                let ip = client_ip(req)?;
                if !ip_in_blocks(ip, &entry.cidr_list) {
                    return Err(Error::bad(format!(
                        "source address \"{ip}\" unauthorized by CIDR restrictions on the secret ID: %!w(<nil>)"
                    )));
                }
            }
        }
        Ok(Consumed {
            metadata: entry.metadata,
            token_bound_cidrs: entry.token_bound_cidrs,
        })
    }
}
