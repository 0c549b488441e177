//! `sys/seal`, `sys/step-down`, `sys/key-status` and `sys/rotate`: the authenticated side of the seal.

use serde_json::json;

use super::SystemBackend;
use crate::error::Result;
use crate::logical::{FieldData, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<SystemBackend>;

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        P::new("seal$").on(Op::Update, |b, r, d| Box::pin(b.seal(r, d))),
        P::new("step-down$").on(Op::Update, |b, r, d| Box::pin(b.step_down(r, d))),
        P::new("key-status$").on(Op::Read, |b, r, d| Box::pin(b.key_status(r, d))),
        P::new("rotate(?:/keyring)?$").on(Op::Update, |b, r, d| Box::pin(b.rotate(r, d))),
    ]
}

impl SystemBackend {
    async fn seal(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let _timed = crate::telemetry::Timer::named(crate::telemetry::CORE_SEAL_WITH_REQUEST);
        self.core()?.seal().await?;
        Ok(None)
    }

    /// `sys/step-down`: the active node gives up the lock (a standby forwards this to it); a
    /// no-op without HA, as in Vault.
    async fn step_down(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let _timed = crate::telemetry::Timer::named(crate::telemetry::CORE_STEP_DOWN);
        if let Some(ha) = self.core()?.ha() {
            ha.request_step_down();
        }
        Ok(None)
    }

    async fn key_status(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let ks = self.core()?.barrier.key_status()?;
        let mut resp = Response::json(json!({
            "term": ks.term,
            "install_time": ks.install_time,
            "encryptions": ks.encryptions,
        }));
        resp.inject_top_level = true;
        Ok(Some(resp))
    }

    async fn rotate(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let ks = self.core()?.barrier.rotate().await?;
        tracing::info!(keyring.term = ks.term, "rotated the barrier key");
        Ok(None)
    }
}
