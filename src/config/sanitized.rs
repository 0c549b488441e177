//! `sys/config/state/sanitized` (`vault debug`'s `config.json`): the server's configuration with
//! Vault's keys, types and units (TTLs in seconds, telemetry durations in nanoseconds, Go zero
//! values for settings Coffer does not have), and nothing secret: no connection URL, no
//! password, no key material. A listener shows the settings that shape it; Vault echoes the raw
//! stanza, which Coffer does not keep. Coffer's own `audit_timeout` is added.

use std::net::SocketAddr;

use serde_json::{Map, Value, json};

use super::{ListenerConfig, LogFormat, ServerConfig, StorageConfig};
use crate::telemetry::Telemetry;

const NANOS: u64 = 1_000_000_000;

fn listener(l: &ListenerConfig) -> Value {
    let mut config = Map::new();
    config.insert("address".into(), json!(l.address.to_string()));
    config.insert("tls_disable".into(), json!(l.tls.is_none()));
    if let Some(tls) = &l.tls {
        config.insert("tls_cert_file".into(), json!(tls.cert_file));
        config.insert("tls_key_file".into(), json!(tls.key_file));
        config.insert(
            "tls_min_version".into(),
            json!(format!("{:?}", tls.min_version).to_ascii_lowercase()),
        );
    }
    config.insert("max_request_size".into(), json!(l.max_request_size));
    if l.telemetry.unauthenticated_metrics_access {
        config.insert(
            "telemetry".into(),
            json!({"unauthenticated_metrics_access": true}),
        );
    }
    json!({"type": "tcp", "config": config})
}

fn telemetry(t: &Telemetry) -> Value {
    json!({
        "add_lease_metrics_namespace_labels": false,
        "circonus_api_app": "", "circonus_api_token": "", "circonus_api_url": "",
        "circonus_broker_id": "", "circonus_broker_select_tag": "",
        "circonus_check_display_name": "", "circonus_check_force_metric_activation": "",
        "circonus_check_id": "", "circonus_check_instance_id": "",
        "circonus_check_search_tag": "", "circonus_check_tags": "",
        "circonus_submission_interval": "", "circonus_submission_url": "",
        "disable_hostname": !t.enable_hostname_label,
        "dogstatsd_addr": "", "dogstatsd_tags": null,
        "lease_metrics_epsilon": 3600 * NANOS,
        "maximum_gauge_cardinality": t.maximum_gauge_cardinality,
        "metrics_prefix": t.metrics_prefix.clone().unwrap_or_default(),
        "num_lease_metrics_buckets": 168,
        "prometheus_retention_time": t.prometheus_retention_secs * NANOS,
        "stackdriver_debug_logs": false, "stackdriver_location": "",
        "stackdriver_namespace": "", "stackdriver_project_id": "",
        "statsd_address": "", "statsite_address": "",
        "usage_gauge_period": t.usage_gauge_period_secs
            .unwrap_or(crate::telemetry::DEFAULT_USAGE_GAUGE_PERIOD_SECS) * NANOS,
    })
}

fn storage_type(s: &StorageConfig) -> &'static str {
    match s {
        StorageConfig::Inmem => "inmem",
        StorageConfig::File { .. } => "file",
        StorageConfig::Postgresql(_) => "postgresql",
    }
}

/// The settings every configuration has, with Vault's defaults where Coffer has none.
fn base(c: Option<&ServerConfig>) -> Map<String, Value> {
    let s = |v: Option<&String>| json!(v.cloned().unwrap_or_default());
    let data = json!({
        "allow_audit_log_prefixing": c.and_then(|c| c.allow_audit_log_prefixing).unwrap_or(false),
        "allow_unauthenticated_workflows": false,
        "api_addr": s(c.and_then(|c| c.api_addr.as_ref())),
        "audit_timeout": humantime::format_duration(
            c.map_or(crate::audit::DEFAULT_DEADLINE, |c| c.audit_timeout)
        ).to_string(),
        "cache_size": 0,
        "cluster_addr": s(c.and_then(|c| c.cluster_addr.as_ref())),
        "cluster_cipher_suites": "",
        "cluster_name": "",
        "default_lease_ttl": c.and_then(|c| c.default_lease_ttl).unwrap_or(0),
        "default_max_request_duration": 0,
        "detect_deadlocks": "",
        "disable_cache": false,
        "disable_clustering": false,
        "disable_indexing": false,
        "disable_performance_standby": false,
        "disable_printable_check": false,
        "disable_sealwrap": false,
        "disable_sentinel_trace": false,
        "disable_standby_reads": false,
        "enable_response_header_hostname": false,
        "enable_response_header_raft_node_id": false,
        "enable_ui": false,
        "imprecise_lease_role_tracking": false,
        "introspection_endpoint": false,
        "log_format": match c.map(|c| c.log_format) {
            Some(LogFormat::Json) => "json",
            _ => "",
        },
        "log_level": s(c.and_then(|c| c.log_level.as_ref())),
        "log_requests_level": "",
        "max_lease_ttl": c.and_then(|c| c.max_lease_ttl).unwrap_or(0),
        "pid_file": "",
        "plugin_directory": c
            .and_then(|c| c.plugin_directory.as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        "plugin_file_permissions": 0,
        "plugin_file_uid": 0,
        "raw_storage_endpoint": false,
        "seals": [{"type": "shamir", "disabled": false}],
        "unsafe_allow_api_audit_creation": c
            .and_then(|c| c.unsafe_allow_api_audit_creation)
            .unwrap_or(false),
        "unsafe_cross_namespace_identity": false,
        "unsafe_relative_paths": false,
    });
    let mut map = match data {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(c) = c
        && !c.audit.is_empty()
    {
        let audits: Vec<Value> = c
            .audit
            .iter()
            .map(|a| json!({"path": a.path, "type": a.kind, "description": a.description}))
            .collect();
        map.insert("audits".into(), Value::Array(audits));
    }
    map
}

/// A production server's sanitized configuration.
pub fn sanitized(c: &ServerConfig) -> Map<String, Value> {
    let mut map = base(Some(c));
    map.insert(
        "listeners".into(),
        Value::Array(c.listeners.iter().map(listener).collect()),
    );
    map.insert(
        "storage".into(),
        json!({
            "type": storage_type(&c.storage), "redirect_addr": "", "cluster_addr": "",
            "disable_clustering": false,
        }),
    );
    if let Some(t) = &c.telemetry {
        map.insert("telemetry".into(), telemetry(t));
    }
    map
}

/// A dev server's: its own listener at `listen` (no TLS), in-memory storage and dev telemetry,
/// with what a `-config` file adds.
pub fn dev_sanitized(listen: SocketAddr, file: Option<&ServerConfig>) -> Map<String, Value> {
    let mut map = base(file);
    // Dev mode allows both unless the file says otherwise.
    let allowed = |v: Option<bool>| json!(v.unwrap_or(true));
    let given = |f: fn(&ServerConfig) -> Option<bool>| file.and_then(f);
    map.insert(
        "unsafe_allow_api_audit_creation".into(),
        allowed(given(|f| f.unsafe_allow_api_audit_creation)),
    );
    map.insert(
        "allow_audit_log_prefixing".into(),
        allowed(given(|f| f.allow_audit_log_prefixing)),
    );
    let dev =
        json!({"type": "tcp", "config": {"address": listen.to_string(), "tls_disable": true}});
    let listeners = std::iter::once(dev)
        .chain(file.iter().flat_map(|f| f.listeners.iter()).map(listener))
        .collect();
    map.insert("listeners".into(), Value::Array(listeners));
    map.insert(
        "storage".into(),
        json!({"type": "inmem", "redirect_addr": "", "cluster_addr": "", "disable_clustering": false}),
    );
    let t = file
        .and_then(|f| f.telemetry.clone())
        .unwrap_or_else(Telemetry::dev);
    map.insert("telemetry".into(), telemetry(&t));
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_production_config_shows_vaults_keys_and_no_secret() {
        let c = ServerConfig::parse_unchecked(
            r#"
            storage "postgresql" {
              connection_url = "postgres://vault:hunter2-pw@db.internal:5432/vault"
            }
            listener "tcp" {
              address       = "0.0.0.0:8200"
              tls_cert_file = "/etc/coffer/cert.pem"
              tls_key_file  = "/etc/coffer/key.pem"
            }
            api_addr          = "https://coffer.example:8200"
            default_lease_ttl = "1h"
            log_level         = "warn"
            telemetry {
              prometheus_retention_time = "30s"
              disable_hostname          = true
            }
            audit "file" "main" {
              options { file_path = "/var/log/coffer/audit.log" }
            }
            "#,
            "test.hcl",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let m = sanitized(&c);
        let text = serde_json::to_string(&m).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("db.internal"), "{text}");
        assert_eq!(m["storage"]["type"], "postgresql");
        assert_eq!(m["api_addr"], "https://coffer.example:8200");
        assert_eq!(m["default_lease_ttl"], 3600);
        assert_eq!(m["max_lease_ttl"], 0);
        assert_eq!(m["log_level"], "warn");
        assert_eq!(m["listeners"][0]["type"], "tcp");
        assert_eq!(m["listeners"][0]["config"]["address"], "0.0.0.0:8200");
        assert_eq!(m["listeners"][0]["config"]["tls_disable"], false);
        assert_eq!(
            m["listeners"][0]["config"]["tls_key_file"],
            "/etc/coffer/key.pem"
        );
        assert_eq!(m["telemetry"]["prometheus_retention_time"], 30 * NANOS);
        assert_eq!(m["telemetry"]["disable_hostname"], true);
        assert_eq!(
            m["audits"],
            json!([{"path": "main/", "type": "file", "description": ""}])
        );
        assert_eq!(m["seals"], json!([{"type": "shamir", "disabled": false}]));
        // Vault's key set (OpenBao 2.7.2's, less its own `disable_ssct_tokens`), plus Coffer's
        // `audit_timeout`.
        for key in [
            "allow_audit_log_prefixing",
            "cache_size",
            "cluster_name",
            "default_max_request_duration",
            "enable_ui",
            "log_format",
            "pid_file",
            "plugin_directory",
            "raw_storage_endpoint",
            "unsafe_allow_api_audit_creation",
            "audit_timeout",
        ] {
            assert!(m.contains_key(key), "{key} missing");
        }
    }
}
