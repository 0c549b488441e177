//! `sys/host-info`: the host's CPUs, CPU times, disks, OS and memory (`telemetry::host`, read on
//! a blocking thread), for a token with `read` on it.
//!
//! `sys/in-flight-req`: the requests being served now (Vault's map of entry id to start time,
//! client address, path, method; a raw JSON body), for a token with `read` on it.
//!
//! `sys/metrics` through the pipeline (a token with `read` on `sys/metrics`, audited like any
//! request): the Prometheus text or go-metrics' JSON as a raw body, not the envelope. A listener
//! with `telemetry { unauthenticated_metrics_access = true }` serves the same answer without a
//! token in `http/sys_raw.rs`.

use super::SystemBackend;
use crate::error::Result;
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        PathSpec::new("metrics$")
            .field(
                "format",
                T::Str,
                "Format to export metrics into: \"prometheus\", or empty for JSON.",
            )
            .on(Op::Read, |b, r, d| Box::pin(b.metrics(r, d))),
        PathSpec::new("in-flight-req$").on(Op::Read, |b, r, d| Box::pin(b.in_flight(r, d))),
        PathSpec::new("host-info/?$").on(Op::Read, |b, r, d| Box::pin(b.host_info(r, d))),
    ]
}

impl SystemBackend {
    async fn metrics(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let format = d.get_str("format")?.unwrap_or_default();
        let answer = self.core()?.metrics_response(&format).await;
        Ok(Some(Response {
            status: Some(answer.status),
            raw_body: Some(answer.body),
            content_type: Some(answer.content_type),
            ..Default::default()
        }))
    }
}

impl SystemBackend {
    async fn host_info(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let info = tokio::task::spawn_blocking(crate::telemetry::host::collect)
            .await
            .map_err(|e| crate::error::Error::internal(format!("host information: {e}")))?;
        Ok(Some(Response {
            data: Some(info.data),
            warnings: info.warnings,
            ..Default::default()
        }))
    }

    async fn in_flight(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let rows = self.core()?.in_flight.snapshot(crate::http::log_path);
        let body = serde_json::to_string(&rows)
            .map_err(|e| crate::error::Error::internal(format!("in-flight requests: {e}")))?;
        Ok(Some(Response {
            status: Some(200),
            raw_body: Some(body),
            content_type: Some("application/json"),
            ..Default::default()
        }))
    }
}
