//! Vault's `sys/rekey/*` and `sys/generate-root/*`: request fields in, Vault's raw JSON bodies out
//! (these endpoints answer without the `data` envelope).
//!
//! Two routes lead here. By default they are sys paths behind a token with `sudo` (through the
//! pipeline, like every other root-protected path). On a listener whose configuration sets
//! `disable_unauthed_rekey_endpoints` / `disable_unauthed_generate_root_endpoints` to `false`, the
//! HTTP layer serves them without a token, as Vault does. The same code answers both.

use serde_json::{Map, Value};

use super::Core;
use super::rekey::{Flavor, RekeyRequest};
use crate::error::{Error, Result};
use crate::logical::Operation;

/// The two endpoint families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `sys/rekey/{init,update,verify}`.
    Rekey,
    /// `sys/generate-root/{attempt,update}`.
    GenerateRoot,
}

/// The family of a path relative to `sys/` (`rekey/init` …), if it is one of them.
pub fn family(path: &str) -> Option<Family> {
    match path {
        "rekey/init" | "rekey/update" | "rekey/verify" => Some(Family::Rekey),
        "generate-root/attempt" | "generate-root/update" => Some(Family::GenerateRoot),
        _ => None,
    }
}

fn int(body: &Map<String, Value>, name: &str) -> Result<i64> {
    match body.get(name).unwrap_or(&Value::Null) {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| Error::bad(format!("invalid {name}"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| Error::bad(format!("invalid {name}"))),
        _ => Err(Error::bad(format!("invalid {name}"))),
    }
}

fn boolean(body: &Map<String, Value>, name: &str) -> Result<bool> {
    match body.get(name).unwrap_or(&Value::Null) {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::String(s) => s.parse().map_err(|_| Error::bad(format!("invalid {name}"))),
        _ => Err(Error::bad(format!("invalid {name}"))),
    }
}

/// A string field; absent or null is empty.
pub fn string<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str> {
    match body.get(name).unwrap_or(&Value::Null) {
        Value::Null => Ok(""),
        Value::String(s) => Ok(s),
        _ => Err(Error::bad(format!("invalid {name}"))),
    }
}

/// True when `pgp_keys` holds anything (a non-empty list or string).
pub fn has_pgp_keys(body: &Map<String, Value>) -> bool {
    match body.get("pgp_keys") {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// The fields of a rekey (or rotate/root) init request.
pub fn rekey_request(body: &Map<String, Value>) -> Result<RekeyRequest> {
    Ok(RekeyRequest {
        secret_shares: int(body, "secret_shares")?,
        secret_threshold: int(body, "secret_threshold")?,
        pgp_keys: has_pgp_keys(body),
        backup: boolean(body, "backup")?,
        require_verification: boolean(body, "require_verification")?,
    })
}

fn key_of(body: &Map<String, Value>) -> Result<Option<&str>> {
    Ok(Some(string(body, "key")?).filter(|k| !k.trim().is_empty()))
}

impl Core {
    /// Serves `op` on `path` (relative to `sys/`) of Vault's rekey and generate-root endpoints.
    /// `Ok(None)` is an empty success (204).
    pub async fn operator_raw(
        &self,
        op: Operation,
        path: &str,
        body: &Map<String, Value>,
    ) -> Result<Option<Value>> {
        let flavor = Flavor::Rekey;
        let out = match (path, op) {
            ("rekey/init", Operation::Read) => self.rekey_status().await?,
            ("rekey/init", Operation::Update | Operation::Create) => {
                self.rekey_init(&rekey_request(body)?, flavor).await?
            }
            ("rekey/init", Operation::Delete) => {
                self.rekey_cancel().await?;
                return Ok(None);
            }
            ("rekey/update", Operation::Update | Operation::Create) => {
                self.rekey_update(key_of(body)?, string(body, "nonce")?, flavor)
                    .await?
            }
            ("rekey/verify", Operation::Read) => self.rekey_verify_status(flavor).await?,
            ("rekey/verify", Operation::Update | Operation::Create) => {
                self.rekey_verify(key_of(body)?, string(body, "nonce")?, flavor)
                    .await?
            }
            ("rekey/verify", Operation::Delete) => self.rekey_verify_restart(flavor).await?,
            ("generate-root/attempt", Operation::Read) => self.generate_root_status().await?,
            ("generate-root/attempt", Operation::Update | Operation::Create) => {
                let otp = string(body, "otp")?;
                let pgp = string(body, "pgp_key")?;
                self.generate_root_init(Some(otp), Some(pgp)).await?
            }
            ("generate-root/attempt", Operation::Delete) => {
                self.generate_root_cancel().await?;
                return Ok(None);
            }
            ("generate-root/update", Operation::Update | Operation::Create) => {
                let key = key_of(body)?
                    .ok_or_else(|| Error::bad("'key' must be specified in request body as JSON"))?;
                self.generate_root_update(key, string(body, "nonce")?)
                    .await?
            }
            _ if family(path).is_some() => return Err(Error::MethodNotAllowed),
            _ => return Err(Error::UnsupportedPath),
        };
        Ok(Some(out))
    }
}
