//! The operator's day-two endpoints: keyring rotation settings, rekey (Vault's `rekey/*` and
//! OpenBao's `rotate/root/*`), root token generation (Vault's `generate-root/*` and OpenBao's
//! `generate-root-token/*`) and `decode-token`.
//!
//! Vault's `rekey/*` and `generate-root/*` answer raw JSON (no `data` envelope); here they need a
//! token with `sudo`. A listener may serve them without a token instead (`http/sys_raw.rs`).

use serde_json::Value;

use super::SystemBackend;
use crate::core::operator;
use crate::core::rekey::Flavor;
use crate::core::rotation::RotationConfig;
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<SystemBackend>;

fn rekey_fields(p: P) -> P {
    p.field("secret_shares", T::Int, "Number of new unseal keys.")
        .field("secret_threshold", T::Int, "Number of keys that unseal.")
        .field("pgp_keys", T::Raw, "Not supported by Coffer.")
        .field("backup", T::Bool, "Not supported by Coffer.")
        .field(
            "require_verification",
            T::Bool,
            "New keys take effect only after a threshold of them is handed back.",
        )
}

fn key_fields(p: P) -> P {
    p.field("key", T::Str, "An unseal key (hex or base64).")
        .field("nonce", T::Str, "The nonce of the attempt.")
}

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        P::new(r"rotate/(?:keyring/)?config$")
            .field(
                "max_operations",
                T::Int,
                "Encryptions after which the key is rotated.",
            )
            .field(
                "interval",
                T::DurationSecond,
                "Age after which the key is rotated (0 = never).",
            )
            .field("enabled", T::Bool, "Whether automatic rotation runs.")
            .on(Op::Read, |b, r, d| Box::pin(b.rotation_config_read(r, d)))
            .on(Op::Update, |b, r, d| {
                Box::pin(b.rotation_config_write(r, d))
            }),
        rekey_fields(P::new(r"(?:rekey/(?:init|verify)|generate-root/attempt)$"))
            .field("otp", T::Str, "One-time password for the new root token.")
            .field("pgp_key", T::Str, "Not supported by Coffer.")
            .field("key", T::Str, "An unseal key (hex or base64).")
            .field("nonce", T::Str, "The nonce of the attempt.")
            .on(Op::Read, |b, r, d| Box::pin(b.vault_raw(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.vault_raw(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.vault_raw(r, d))),
        key_fields(P::new(r"(?:rekey|generate-root)/update$"))
            .on(Op::Update, |b, r, d| Box::pin(b.vault_raw(r, d))),
        rekey_fields(P::new(r"rotate/root/init$"))
            .on(Op::Read, |b, r, d| Box::pin(b.rotate_root_init(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.rotate_root_init(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.rotate_root_init(r, d))),
        key_fields(P::new(r"rotate/root/update$"))
            .on(Op::Update, |b, r, d| Box::pin(b.rotate_root_update(r, d))),
        key_fields(P::new(r"rotate/root/verify$"))
            .on(Op::Read, |b, r, d| Box::pin(b.rotate_root_verify(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.rotate_root_verify(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.rotate_root_verify(r, d))),
        P::new(r"generate-root-token/attempt$")
            .field("otp", T::Str, "One-time password for the new root token.")
            .field("pgp_key", T::Str, "Not supported by Coffer.")
            .on(Op::Read, |b, r, d| Box::pin(b.root_token_attempt(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.root_token_attempt(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.root_token_attempt(r, d))),
        key_fields(P::new(r"generate-root-token/update$"))
            .on(Op::Update, |b, r, d| Box::pin(b.root_token_update(r, d))),
        P::new(r"decode-token$")
            .field("encoded_token", T::Str, "The encoded root token.")
            .field("otp", T::Str, "The OTP it was encoded with.")
            .on(Op::Update, |b, r, d| Box::pin(b.decode_token(r, d))),
    ]
}

/// A Vault raw-JSON body (no envelope).
fn raw(v: Option<Value>) -> Option<Response> {
    v.map(|v| Response {
        raw_body: Some(v.to_string()),
        ..Default::default()
    })
}

fn data(v: Value) -> Option<Response> {
    Some(Response::json(v))
}

/// `key` and `nonce` of `sys/rotate/root/{update,verify}` (OpenBao's texts).
fn key_and_nonce(d: &FieldData<'_>) -> Result<(String, String)> {
    let present = |name: &str| -> Result<String> {
        d.get_str(name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::bad(format!("missing required field '{name}'")))
    };
    Ok((present("key")?, present("nonce")?))
}

/// A required string (OpenBao's logical endpoints' texts).
fn required(d: &FieldData<'_>, name: &str) -> Result<String> {
    d.get_str(name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::bad(format!("{name} is required")))
}

impl SystemBackend {
    async fn rotation_config_read(
        &self,
        _req: &Request,
        _d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        Ok(data(self.core()?.rotation_config().await?.to_json()))
    }

    async fn rotation_config_write(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let core = self.core()?;
        let mut c: RotationConfig = core.rotation_config().await?;
        if let Some(n) = d.get_int("max_operations")? {
            c.max_operations = n;
        }
        if let Some(secs) = d.get_duration("interval")? {
            c.interval = secs;
        }
        if let Some(e) = d.get_bool("enabled")? {
            c.enabled = e;
        }
        core.set_rotation_config(&c).await?;
        Ok(None)
    }

    async fn vault_raw(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let v = self
            .core()?
            .operator_raw(req.operation, &req.path, d.raw())
            .await?;
        Ok(raw(v))
    }

    async fn rotate_root_init(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        match req.operation {
            Op::Read => Ok(data(core.rekey_status().await?)),
            Op::Delete => {
                core.rekey_cancel().await?;
                Ok(None)
            }
            _ => {
                let r = operator::rekey_request(d.raw())?;
                Ok(data(core.rekey_init(&r, Flavor::Rotate).await?))
            }
        }
    }

    async fn rotate_root_update(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let (key, nonce) = key_and_nonce(d)?;
        let core = self.core()?;
        Ok(data(
            core.rekey_update(Some(&key), &nonce, Flavor::Rotate)
                .await?,
        ))
    }

    async fn rotate_root_verify(
        &self,
        req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let core = self.core()?;
        let v = match req.operation {
            Op::Read => core.rekey_verify_status(Flavor::Rotate).await?,
            Op::Delete => core.rekey_verify_restart(Flavor::Rotate).await?,
            _ => {
                let (key, nonce) = key_and_nonce(d)?;
                core.rekey_verify(Some(&key), &nonce, Flavor::Rotate)
                    .await?
            }
        };
        Ok(data(v))
    }

    async fn root_token_attempt(
        &self,
        req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let core = self.core()?;
        let mut v = match req.operation {
            Op::Read => core.generate_root_status().await?,
            Op::Delete => {
                core.generate_root_cancel().await?;
                return Ok(None);
            }
            _ => {
                let otp = d.get_str("otp")?;
                let pgp = d.get_str("pgp_key")?;
                core.generate_root_init(otp.as_deref(), pgp.as_deref())
                    .await?
            }
        };
        logical_generate_root_shape(&mut v);
        Ok(data(v))
    }

    async fn root_token_update(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let nonce = required(d, "nonce")?;
        let key = required(d, "key")?;
        let mut v = self.core()?.generate_root_update(&key, &nonce).await?;
        logical_generate_root_shape(&mut v);
        Ok(data(v))
    }

    async fn decode_token(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let encoded = d.get_str("encoded_token")?.unwrap_or_default();
        let otp = d.get_str("otp")?.unwrap_or_default();
        let token = crate::core::generate_root::decode_token(&encoded, &otp)?;
        Ok(data(serde_json::json!({ "token": token.as_str() })))
    }
}

/// OpenBao's logical variant has no `encoded_root_token`.
fn logical_generate_root_shape(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("encoded_root_token");
    }
}
