//! kv-v2 `config`: the mount-wide `max_versions`, `cas_required` and `delete_version_after`.
//!
//! A negative `delete_version_after` disables the feature on every key (reported as `-1s`), zero
//! clears it. The settings apply to versions written afterwards; `max_versions` prunes on the
//! next write of each key, as in Vault.

use serde_json::json;

use super::input::{self, duration_secs, weak_bool};
use super::types::DVA_DISABLED;
use super::{CONFIG_KEY, KvBackend, P, load_config};
use crate::error::Result;
use crate::logical::field::go_duration;
use crate::logical::{FieldData, FieldType as T, Operation as Op, Request, Response};

pub(super) fn paths() -> Vec<P> {
    vec![
        P::new(r"config$")
            .field(
                "max_versions",
                T::Raw,
                "Versions kept per key; defaults to 10.",
            )
            .field(
                "cas_required",
                T::Raw,
                "Require check-and-set on every write.",
            )
            .field(
                "delete_version_after",
                T::Raw,
                "Delete versions after this long; negative disables, 0 clears.",
            )
            .on(Op::Read, |b, r, d| Box::pin(b.config_read(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.config_write(r, d)))
            .help("Configures settings for the KV store"),
    ]
}

impl KvBackend {
    async fn config_read(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let cfg = load_config(&req.storage).await?;
        Ok(Some(Response::json(json!({
            "cas_required": cfg.cas_required,
            "delete_version_after": go_duration(cfg.delete_version_after),
            "max_versions": cfg.max_versions,
        }))))
    }

    async fn config_write(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let raw = d.raw();
        let max = input::parse(req, false, raw, "max_versions", input::max_versions)?;
        let cas = input::parse(req, false, raw, "cas_required", weak_bool)?;
        let dva = input::parse(req, false, raw, "delete_version_after", duration_secs)?;
        if max.is_none() && cas.is_none() && dva.is_none() {
            return Ok(None);
        }
        let _guard = req.storage.lock(CONFIG_KEY).await;
        let mut cfg = load_config(&req.storage).await?;
        if let Some(m) = max {
            cfg.max_versions = m;
        }
        if let Some(c) = cas {
            cfg.cas_required = c;
        }
        if let Some(secs) = dva {
            cfg.delete_version_after = if secs < 0 { DVA_DISABLED } else { secs };
        }
        req.storage.put_json(CONFIG_KEY, &cfg).await?;
        Ok(None)
    }
}
