//! The `sys/` endpoints that answer outside the pipeline and while sealed: health, seal-status,
//! leader and init status. They return raw JSON, not the envelope.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response as HttpResponse;
use serde_json::{Value, json};

use super::decode::parse_query;
use super::{AppState, json_response};
use crate::clock::unix_secs;
use crate::error::Error;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serves `path` if it is a raw sys endpoint; `None` otherwise.
pub async fn handle(
    state: &AppState,
    method: &Method,
    path: &str,
    query: Option<&str>,
    _headers: &HeaderMap,
) -> Option<HttpResponse> {
    let core = &state.core;
    let get_like = *method == Method::GET || *method == Method::HEAD;
    match path {
        "sys/health" => {
            if !get_like {
                return Some(super::error_response(&Error::MethodNotAllowed));
            }
            let q = parse_query(query);
            let sealed = core.is_sealed();
            let code = |name: &str, default: u16| {
                q.get(name)
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse::<u16>().ok())
                    .unwrap_or(default)
            };
            let status = if sealed {
                code("sealedcode", 503)
            } else {
                code("activecode", 200)
            };
            let body = json!({
                "initialized": true,
                "sealed": sealed,
                "standby": false,
                "performance_standby": false,
                "replication_performance_mode": "disabled",
                "replication_dr_mode": "disabled",
                "server_time_utc": unix_secs(core.clock.now()),
                "version": VERSION,
                "cluster_name": "coffer-cluster",
                "cluster_id": "",
            });
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if *method == Method::HEAD {
                let mut r = json_response(status, String::new());
                *r.body_mut() = axum::body::Body::empty();
                return Some(r);
            }
            Some(json_response(status, body.to_string()))
        }
        "sys/seal-status" => Some(json_response(
            StatusCode::OK,
            seal_status(state).to_string(),
        )),
        "sys/leader" => Some(json_response(
            StatusCode::OK,
            json!({
                "ha_enabled": false,
                "is_self": false,
                "active_time": "0001-01-01T00:00:00Z",
                "leader_address": "",
                "leader_cluster_address": "",
                "performance_standby": false,
                "performance_standby_last_remote_wal": 0,
            })
            .to_string(),
        )),
        "sys/init" if get_like => Some(json_response(
            StatusCode::OK,
            json!({ "initialized": true }).to_string(),
        )),
        "sys/init" => Some(super::error_response(&Error::bad(
            "Vault is already initialized",
        ))),
        "sys/unseal" => Some(json_response(
            StatusCode::OK,
            seal_status(state).to_string(),
        )),
        _ => None,
    }
}

fn seal_status(state: &AppState) -> Value {
    json!({
        "type": "shamir",
        "initialized": true,
        "sealed": state.core.is_sealed(),
        "t": 1,
        "n": 1,
        "progress": 0,
        "nonce": "",
        "version": VERSION,
        "build_date": "",
        "migration": false,
        "cluster_name": "coffer-cluster",
        "cluster_id": "",
        "recovery_seal": false,
        "storage_type": "inmem",
    })
}
