//! HA standby: the one request a standby serves itself with a token, `GET sys/metrics`. A scrape
//! asks for this node's own numbers, so relaying it to the active node would report the active
//! node's numbers as the standby's (hashicorp/vault#6802), and Vault's standby refuses it
//! instead; here every node answers its own.
//!
//! A standby keeps no cache of stored data (none can go stale), so the token, its policies,
//! the `sys/` mount and the audit table are read as stored now, and nothing is written: a token
//! with a use limit (whose use would have to be charged) and a wrapped answer (stored in a
//! cubbyhole) are refused with Vault's `cannot forward local-only request`.
//!
//! Audit stays fail-closed: the devices of the stored audit table are opened on this node (and
//! kept while the table is unchanged) and one of them must take the request entry, as on the
//! active node.

use std::sync::{Arc, Mutex, PoisonError};

use super::Core;
use super::observer::{MountInfo, RequestObserver, RequestRecord, Trace};
use super::pipeline::{IncomingRequest, Outcome, RequestFacts, cidr_allows};
use crate::audit::Broker;
use crate::error::{Error, Result};
use crate::logical::mount::MountEntry;
use crate::logical::{Operation, Response};
use crate::policy::AclRequest;
use crate::secret::Secret;
use crate::storage::Storage;

/// The path a standby serves itself.
const METRICS: &str = "sys/metrics";

/// Vault's answer on a standby for a request about this node that it cannot serve.
pub const LOCAL_ONLY: &str = "cannot forward local-only request";

/// The audit devices a standby opened for the requests it serves, with the stored table (and
/// audited headers) they were opened from.
pub(super) struct StandbyAudit {
    stored: (Option<Vec<u8>>, Option<Vec<u8>>),
    broker: Arc<Broker>,
}

/// The standby's audit devices, if any were opened, and how many times they were dropped (a
/// broker opened before a drop is never kept after it).
#[derive(Default)]
pub(super) struct StandbyState(Mutex<(Option<StandbyAudit>, u64)>);

impl StandbyState {
    fn held(&self) -> std::sync::MutexGuard<'_, (Option<StandbyAudit>, u64)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self) -> Option<(StoredAudit, Arc<Broker>)> {
        let held = self.held();
        held.0
            .as_ref()
            .map(|a| (a.stored.clone(), a.broker.clone()))
    }

    fn generation(&self) -> u64 {
        self.held().1
    }

    /// Keeps `audit` unless the devices were dropped since `generation`.
    fn keep(&self, audit: StandbyAudit, generation: u64) {
        let mut held = self.held();
        if held.1 == generation {
            held.0 = Some(audit);
        }
    }

    /// Closes the devices (the node steps up, became active, or sealed).
    pub(super) fn clear(&self) {
        let mut held = self.held();
        held.0 = None;
        held.1 = held.1.wrapping_add(1);
    }

    /// The broker of the devices opened, for SIGHUP's reopen.
    pub(super) fn broker(&self) -> Option<Arc<Broker>> {
        self.get().map(|(_, b)| b)
    }
}

type StoredAudit = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Whether a standby serves `inc` itself (the HTTP layer refuses other local-only requests and
/// forwards the rest).
pub(super) fn serves(inc: &IncomingRequest) -> bool {
    inc.path == METRICS && inc.operation == Operation::Read
}

impl Core {
    /// `GET sys/metrics` on a standby, checked and audited as the pipeline does on the active
    /// node: the token (live, CIDR binding), `read` on `sys/metrics`, a request entry taken by
    /// a device before the metrics are rendered, a response entry after.
    pub(super) async fn handle_standby(
        &self,
        inc: IncomingRequest,
        facts: &mut RequestFacts,
    ) -> Result<Outcome> {
        let request_id = facts.new_request_id();
        facts.mount_type = Some("system");
        self.read_keyring().await?;
        let root = self.storage("");
        let broker = self.standby_broker(&root).await?;
        let mut trace = match broker {
            Some(broker) => Some(Trace::new(
                Arc::new(Box::new(broker.clone())),
                RequestRecord {
                    mount: system_mount(&root).await?,
                    headers: audited(&inc.standby_headers, &broker.audited_headers()),
                    ..RequestRecord::incoming(&request_id, &inc)
                },
            )),
            None => None,
        };
        let mut result = self.standby_metrics(request_id, inc, &mut trace).await;
        if let Some(t) = trace
            && let Err(e) = t.finish(&mut result).await
            && result.is_ok()
        {
            result = Err(e);
        }
        result
    }

    async fn standby_metrics(
        &self,
        request_id: String,
        inc: IncomingRequest,
        trace: &mut Option<Trace>,
    ) -> Result<Outcome> {
        let token = inc.client_token.as_ref().ok_or(Error::PermissionDenied)?;
        self.standby_tokens.read_salt().await?;
        let entry = self
            .standby_tokens
            .lookup_shared(token.expose())
            .await?
            .filter(|e| e.ttl == 0 || cidr_allows(&e.bound_cidrs, inc.client_addr))
            .ok_or(Error::PermissionDenied)?;
        if let Some(t) = trace.as_mut() {
            t.record.token = Some(entry.clone());
            t.record.client_token_accessor =
                Some(Secret::new(self.standby_tokens.accessor_of(token.expose())));
        }
        let acl = self.policies.acl_from_storage(&entry.policies).await?;
        let decision = acl.allow_operation(&AclRequest {
            operation: inc.operation,
            path: METRICS,
            data: Some(&inc.data),
            wrap_ttl: inc.wrap_ttl.and_then(|w| u64::try_from(w).ok()),
        });
        if !decision.allowed {
            return Err(Error::AclDenied);
        }
        // A use would have to be charged, a wrapped answer stored: both are writes.
        if entry.num_uses != 0 || inc.wrap_ttl.is_some() {
            return Err(Error::bad(LOCAL_ONLY));
        }
        if let Some(t) = trace.as_mut() {
            t.record.granting_policies = acl.granting_policies(inc.operation, METRICS);
            t.announce().await?;
        }
        let format = match inc.data.get("format") {
            Some(v) => crate::logical::field::str_param("format", v)?,
            None => String::new(),
        };
        let answer = self.metrics_response(&format).await;
        Ok(Outcome {
            request_id,
            operation: inc.operation,
            response: Some(Response {
                status: Some(answer.status),
                raw_body: Some(answer.body),
                content_type: Some(answer.content_type),
                ..Default::default()
            }),
            auth: None,
            mount_type: "system".into(),
        })
    }

    /// On a standby, its audit devices as an observer, for a scrape the HTTP layer refused
    /// (`Core::observe_rejection`); `None` elsewhere, or when none is enabled or they cannot be
    /// read.
    pub(super) async fn standby_observer(&self) -> Option<super::observer::Installed> {
        if !self.is_standby() {
            return None;
        }
        let broker = match self.read_keyring().await {
            Ok(()) => self.standby_broker(&self.storage("")).await,
            Err(e) => Err(e),
        };
        match broker {
            Ok(broker) => broker.map(|b| Arc::new(Box::new(b) as Box<dyn RequestObserver>)),
            Err(e) => {
                tracing::debug!(error = %e, "standby: reading the audit devices failed");
                None
            }
        }
    }

    /// The keyring as stored now: the active node may have rotated the key since this node
    /// unsealed, and what it wrote since is under the new term.
    pub(crate) async fn read_keyring(&self) -> Result<()> {
        self.barrier
            .reload()
            .await
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// The audit devices of the table as stored now, opened on this node; `None` when the table
    /// has none. Reopened only when the stored table (or the audited headers) changed.
    async fn standby_broker(&self, root: &Storage) -> Result<Option<Arc<Broker>>> {
        let stored = (
            root.get(crate::audit::TABLE_KEY).await?,
            root.get(crate::audit::HEADERS_KEY).await?,
        );
        let broker = match self.standby_audit.get() {
            Some((opened, broker)) if opened == stored => broker,
            _ => {
                let generation = self.standby_audit.generation();
                let broker = Arc::new(Broker::new(
                    self.config.audit_timeout,
                    self.config.plugin_directory.clone(),
                ));
                broker.load(root).await?;
                // Kept only while this node is a standby: the step-up clears it before it
                // begins and once the node is active.
                if self.is_standby() {
                    self.standby_audit.keep(
                        StandbyAudit {
                            stored,
                            broker: broker.clone(),
                        },
                        generation,
                    );
                }
                broker
            }
        };
        if broker.devices().is_empty() {
            return Ok(None);
        }
        Ok(Some(broker))
    }
}

/// Of every header of the request, those the stored settings audit, by name.
fn audited(
    every: &[(String, bool, Vec<String>)],
    wanted: &std::collections::BTreeMap<String, bool>,
) -> Vec<(String, bool, Vec<String>)> {
    let mut out: Vec<_> = every
        .iter()
        .filter_map(|(name, _, values)| {
            wanted
                .get(name)
                .map(|hmac| (name.clone(), *hmac, values.clone()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The `sys/` mount as stored, for the audit entries' mount fields.
async fn system_mount(root: &Storage) -> Result<Option<MountInfo>> {
    let table: Vec<MountEntry> = root
        .get_json(super::mount_lifecycle::MOUNTS_KEY)
        .await?
        .unwrap_or_default();
    Ok(table.into_iter().find(|e| e.kind == "system").map(|e| {
        let path = e.api_path();
        MountInfo {
            kind: e.kind,
            accessor: e.accessor,
            path,
            non_hmac_request_keys: e.config.audit_non_hmac_request_keys,
            non_hmac_response_keys: e.config.audit_non_hmac_response_keys,
        }
    }))
}
