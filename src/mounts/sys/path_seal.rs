//! `sys/seal`, `sys/step-down`, `sys/key-status` and `sys/rotate`: the authenticated side of the
//! seal; `sys/ha-status` (`vault operator members`): the nodes of an HA cluster;
//! `sys/version-history` (`vault version-history`): the versions that served this storage.

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
        P::new("ha-status$").on(Op::Read, |b, r, d| Box::pin(b.ha_status(r, d))),
        P::new("version-history/?$").on(Op::List, |b, r, d| Box::pin(b.version_history(r, d))),
        P::new("rotate(?:/keyring)?$").on(Op::Update, |b, r, d| Box::pin(b.rotate(r, d))),
    ]
}

/// A standby's member row (written by `ha::Ha`).
#[derive(serde::Deserialize)]
struct Announced {
    hostname: String,
    api_address: String,
    cluster_address: String,
    version: String,
}

impl SystemBackend {
    /// Vault's list: versions oldest first, each with its install time (RFC 3339, seconds),
    /// the version before it, and `commit_date` (Coffer's builds carry none: empty).
    async fn version_history(
        &self,
        _req: &Request,
        _d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let versions = self.core()?.version_history().await?;
        let mut info = serde_json::Map::new();
        let mut previous: Option<&str> = None;
        for v in &versions {
            let installed = crate::clock::from_unix_nanos(i128::from(v.installed) * 1_000_000_000);
            info.insert(
                v.version.clone(),
                json!({
                    "timestamp_installed": crate::clock::rfc3339_nanos(installed),
                    "previous_version": previous,
                    "commit_date": "",
                }),
            );
            previous = Some(&v.version);
        }
        let keys: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
        Ok(Some(Response::json(
            json!({ "keys": keys, "key_info": info }),
        )))
    }

    /// `sys/ha-status`: answered by the active node (a standby forwards it), which lists itself
    /// first, then every standby whose member row is within its lease, by API address. Without
    /// HA, this node alone (as Vault lists itself).
    async fn ha_status(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let node = |host: &str, api: &str, cluster: &str, echo: Option<String>, version: &str| {
            json!({
                "hostname": host, "api_address": api, "cluster_address": cluster,
                "active_node": echo.is_none(), "last_echo": echo, "version": version,
            })
        };
        let version = env!("CARGO_PKG_VERSION");
        let Some(ha) = core.ha() else {
            let me = node(&crate::ha::hostname(), "", "", None, version);
            let mut r = Response::json(json!({ "nodes": [me] }));
            r.inject_top_level = true;
            return Ok(Some(r));
        };
        let settings = ha.settings();
        let mut nodes = vec![node(
            &crate::ha::hostname(),
            &settings.api_addr,
            &settings.cluster_addr,
            None,
            version,
        )];
        let rows = ha.members().await.map_err(crate::error::Error::internal)?;
        let mut standbys: Vec<serde_json::Value> = rows
            .into_iter()
            .filter(|r| r.live && r.node != ha.node_id())
            .filter_map(|r| {
                let a: Announced = serde_json::from_str(&r.value).ok()?;
                let echoed = crate::clock::from_unix_nanos((r.echoed * 1e9) as i128);
                let echo = Some(crate::clock::rfc3339_nanos(echoed));
                Some(node(
                    &a.hostname,
                    &a.api_address,
                    &a.cluster_address,
                    echo,
                    &a.version,
                ))
            })
            .collect();
        standbys.sort_by(|a, b| a["api_address"].as_str().cmp(&b["api_address"].as_str()));
        nodes.extend(standbys);
        let mut r = Response::json(json!({ "nodes": nodes }));
        // The Go client reads `nodes` from the top level (Vault injects this route's data).
        r.inject_top_level = true;
        Ok(Some(r))
    }

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
