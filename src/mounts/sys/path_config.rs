//! `sys/config/state/sanitized` (`vault debug`'s `config.json`): the configuration without
//! secrets (`config::sanitized`); `sys/config/cors` (sudo): cross-origin requests from browsers
//! (`core/cors.rs` keeps the settings, `http/cors.rs` applies them).

use serde_json::json;

use super::SystemBackend;
use crate::error::Result;
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<SystemBackend>;

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        P::new("config/state/sanitized$").on(Op::Read, |b, r, d| Box::pin(b.sanitized(r, d))),
        P::new("config/cors$")
            .field(
                "allowed_origins",
                T::CommaStringSlice,
                "Origins that may make cross-origin requests (`*` alone: any).",
            )
            .field(
                "allowed_headers",
                T::CommaStringSlice,
                "Headers allowed on cross-origin requests besides Vault's standard ones.",
            )
            .field(
                "allow_credentials",
                T::Bool,
                "Browsers may send credentials with cross-origin requests.",
            )
            .on(Op::Read, |b, r, d| Box::pin(b.cors_read(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.cors_write(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.cors_delete(r, d))),
    ]
}

impl SystemBackend {
    async fn sanitized(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        Ok(Some(Response::data(core.config.sanitized_config.clone())))
    }

    /// Vault shows the lists only while CORS is on; the data is also at the top level.
    async fn cors_read(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let c = core.cors();
        let data = if c.enabled {
            json!({
                "enabled": true,
                "allowed_origins": c.allowed_origins,
                "allowed_headers": c.allowed_headers,
                "allow_credentials": c.allow_credentials,
            })
        } else {
            json!({ "enabled": false })
        };
        let mut r = Response::json(data);
        r.inject_top_level = true;
        Ok(Some(r))
    }

    /// Invalid origins are a 400 here; Vault answers them with a 500.
    async fn cors_write(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let origins = d.get_list("allowed_origins")?.unwrap_or_default();
        let headers = d.get_list("allowed_headers")?.unwrap_or_default();
        let credentials = d.get_bool("allow_credentials")?.unwrap_or(false);
        self.core()?
            .enable_cors(origins, headers, credentials)
            .await?;
        Ok(None)
    }

    async fn cors_delete(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        self.core()?.disable_cors().await?;
        Ok(None)
    }
}
