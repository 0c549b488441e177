//! The `telemetry { }` stanza (process-wide) and a listener's `telemetry { }` block, read into
//! [`crate::telemetry::Telemetry`] and [`ListenerTelemetry`].
//!
//! Coffer exports Prometheus only (plus the in-memory JSON of `sys/metrics`), so Vault's other
//! sinks (statsd, statsite, dogstatsd, circonus, stackdriver) and the lease-bucket settings are
//! accepted and reported as without effect. `metrics_prefix`, `prefix_filter` and
//! `filter_default` rename and filter the metrics as go-metrics does.

use serde_json::Value;

use super::ConfigError;
use super::file::{Block, Schema, Section};
use crate::hcl::Node;
use crate::telemetry::{
    DEFAULT_MAXIMUM_GAUGE_CARDINALITY, DEFAULT_RETENTION_SECS, DEFAULT_USAGE_GAUGE_PERIOD_SECS,
    Telemetry,
};

const TELEMETRY: Schema = Schema {
    known: &[
        "prometheus_retention_time",
        "enable_hostname_label",
        "usage_gauge_period",
        "maximum_gauge_cardinality",
        "prefix_filter",
        "metrics_prefix",
        "filter_default",
    ],
    ignored: &[
        "disable_hostname",
        "lease_metrics_epsilon",
        "num_lease_metrics_buckets",
        "add_lease_metrics_namespace_labels",
        "statsite_address",
        "statsd_address",
        "dogstatsd_addr",
        "dogstatsd_tags",
        "circonus_api_token",
        "circonus_api_app",
        "circonus_api_url",
        "circonus_submission_interval",
        "circonus_submission_url",
        "circonus_check_id",
        "circonus_check_force_metric_activation",
        "circonus_check_instance_id",
        "circonus_check_search_tag",
        "circonus_check_display_name",
        "circonus_check_tags",
        "circonus_broker_id",
        "circonus_broker_select_tag",
        "stackdriver_project_id",
        "stackdriver_location",
        "stackdriver_namespace",
        "stackdriver_debug_logs",
    ],
    unsupported: &[],
    blocks: &[],
};

const LISTENER_TELEMETRY: Schema = Schema {
    known: &[
        "unauthenticated_metrics_access",
        "disallow_metrics",
        "metrics_only",
        "metrics_path",
    ],
    ignored: &[],
    unsupported: &[],
    blocks: &[],
};

/// A listener's `telemetry { }` block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerTelemetry {
    /// `unauthenticated_metrics_access`: `sys/metrics` without a token, ACL or audit.
    pub unauthenticated_metrics_access: bool,
    /// `disallow_metrics` (OpenBao's): `sys/metrics` answers 403 on this listener.
    pub disallow_metrics: bool,
    /// `metrics_only` (OpenBao's): every other path answers 404 on this listener.
    pub metrics_only: bool,
    /// `metrics_path` (OpenBao's, with `metrics_only`): where this listener serves the metrics
    /// instead of `/v1/sys/metrics`.
    pub metrics_path: Option<String>,
}

/// Reads the top-level `telemetry` blocks (at most one). Returns the settings (`None` without
/// a stanza) and the full names of the settings without effect.
pub(super) fn from_blocks(
    file: &str,
    blocks: &[&Block<'_>],
) -> Result<(Option<Telemetry>, Vec<String>), ConfigError> {
    let Some(block) = blocks.first() else {
        return Ok((None, Vec::new()));
    };
    if let Some(second) = blocks.get(1) {
        let problem = "only one 'telemetry' block is permitted";
        return Err(ConfigError::new(file, "telemetry", second.line, problem));
    }
    let section = Section::read(file, block.name(), block.body(file)?, &TELEMETRY)?;
    let retention = section
        .duration("prometheus_retention_time")?
        .map_or(DEFAULT_RETENTION_SECS, |s| u64::try_from(s).unwrap_or(0));
    let usage_gauge_period_secs = match section.raw("usage_gauge_period").map(|r| r.node) {
        Some(Node::Literal(Value::String(s))) if s.trim().eq_ignore_ascii_case("none") => None,
        _ => Some(
            section
                .duration("usage_gauge_period")?
                .map_or(DEFAULT_USAGE_GAUGE_PERIOD_SECS, |s| {
                    u64::try_from(s).unwrap_or(0).max(1)
                }),
        ),
    };
    let maximum_gauge_cardinality = match section.integer("maximum_gauge_cardinality")? {
        None => DEFAULT_MAXIMUM_GAUGE_CARDINALITY,
        Some((n, line)) => usize::try_from(n).map_err(|_| {
            section.error("maximum_gauge_cardinality", line, "must not be negative")
        })?,
    };
    let prefix_filter = prefix_filter(&section)?;
    let metrics_prefix = section
        .string("metrics_prefix")?
        .map(|(p, _)| p)
        .filter(|p| !p.is_empty());
    let telemetry = Telemetry {
        prometheus_retention_secs: retention,
        enable_hostname_label: section.boolean("enable_hostname_label")?.unwrap_or(false),
        usage_gauge_period_secs,
        maximum_gauge_cardinality,
        metrics_prefix,
        prefix_filter,
        filter_default: section.boolean("filter_default")?.unwrap_or(true),
    };
    Ok((Some(telemetry), section.ignored))
}

/// Vault's rules: strings starting with `+` (keep) or `-` (drop) and the name prefix.
fn prefix_filter(section: &Section<'_>) -> Result<Vec<(String, bool)>, ConfigError> {
    let Some(raw) = section.raw("prefix_filter") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let Node::List(rules) = raw.node else {
        return Err(section.error("prefix_filter", raw.line, "expected a list of strings"));
    };
    for rule in rules {
        let text = match rule {
            Node::Literal(Value::String(s)) => s.as_str(),
            _ => {
                return Err(section.error("prefix_filter", raw.line, "expected a list of strings"));
            }
        };
        match (text.strip_prefix('+'), text.strip_prefix('-')) {
            (Some(prefix), _) => out.push((prefix.to_owned(), true)),
            (_, Some(prefix)) => out.push((prefix.to_owned(), false)),
            _ => {
                let problem = format!("filter rule must begin with either '+' or '-': {text:?}");
                return Err(section.error("prefix_filter", raw.line, problem));
            }
        }
    }
    Ok(out)
}

/// Reads a listener's `telemetry` block; returns it and its settings without effect.
pub(super) fn listener_block(
    file: &str,
    prefix: &str,
    block: &Block<'_>,
) -> Result<(ListenerTelemetry, Vec<String>), ConfigError> {
    let name = format!("{prefix}.telemetry");
    let section = Section::read(file, name, block.body(file)?, &LISTENER_TELEMETRY)?;
    let t = ListenerTelemetry {
        unauthenticated_metrics_access: section
            .boolean("unauthenticated_metrics_access")?
            .unwrap_or(false),
        disallow_metrics: section.boolean("disallow_metrics")?.unwrap_or(false),
        metrics_only: section.boolean("metrics_only")?.unwrap_or(false),
        metrics_path: section
            .string("metrics_path")?
            .map(|(p, _)| p)
            .filter(|p| !p.is_empty()),
    };
    Ok((t, section.ignored))
}
