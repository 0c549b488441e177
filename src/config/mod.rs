//! The server configuration file of production mode (`coffer server -config=FILE`): Vault's HCL1
//! (or JSON) server config, read into a validated [`ServerConfig`].
//!
//! Three steps, as in STYLE.md G12: `crate::hcl` turns text into a tree; `file` walks it block by
//! block against the keys Coffer knows (unknown keys fail, Vault keys without effect in Coffer are
//! collected in [`ServerConfig::ignored`], Vault keys with an effect Coffer cannot give fail with
//! their own message); this module, [`listener`] and [`storage`] turn the values into types.
//! Every error names the file, the setting and, when known, the line:
//! `server.hcl:1: storage "raft": storage type "raft" is not supported by Coffer (supported: inmem, file)`.

mod audit;
mod file;
pub mod listener;
pub mod sanitized;
pub mod storage;
pub mod telemetry;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

pub use listener::{HttpTimeouts, JsonLimits, ListenerConfig, TlsConfig, TlsVersion};
pub use storage::{PostgresqlConfig, StorageConfig};
pub use telemetry::ListenerTelemetry;

use crate::hcl::parse_document;
use file::{Schema, Section};

/// Lease TTL Vault (and Coffer) use when `default_lease_ttl` / `max_lease_ttl` are not set: 768h.
pub const SYSTEM_LEASE_TTL: i64 = 768 * 3600;

/// Top-level settings.
const TOP: Schema = Schema {
    known: &[
        "api_addr",
        "cluster_addr",
        "default_lease_ttl",
        "max_lease_ttl",
        "log_level",
        "log_format",
        "unsafe_allow_api_audit_creation",
        "allow_audit_log_prefixing",
        "audit_timeout",
        "plugin_directory",
    ],
    ignored: &[
        "disable_mlock",
        "ui",
        "cluster_name",
        "disable_cache",
        "cache_size",
        "pid_file",
        "raw_storage_endpoint",
        "disable_clustering",
        "disable_performance_standby",
        "disable_printable_check",
        "log_file",
        "log_rotate_duration",
        "log_rotate_bytes",
        "log_rotate_max_files",
        "enable_response_header_hostname",
        "enable_response_header_raft_node_id",
    ],
    unsupported: &[
        "ha_storage",
        "ha_backend",
        "seal",
        "hsm",
        "service_registration",
        "entropy",
        "license_path",
        "replication",
        "experiments",
        "user_lockout",
    ],
    blocks: &["storage", "backend", "listener", "telemetry", "audit"],
};

/// The validated server configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Where data lives.
    pub storage: StorageConfig,
    /// The HTTP listeners; at least one.
    pub listeners: Vec<ListenerConfig>,
    /// The address clients are told to use (`https://vault.example.com:8200`).
    pub api_addr: Option<String>,
    /// Vault's cluster address: kept for reference, without effect (it is also in `ignored`).
    pub cluster_addr: Option<String>,
    /// Default lease TTL in seconds; `None` (also for `0`) means [`SYSTEM_LEASE_TTL`].
    pub default_lease_ttl: Option<i64>,
    /// Maximum lease TTL in seconds; `None` (also for `0`) means [`SYSTEM_LEASE_TTL`].
    pub max_lease_ttl: Option<i64>,
    /// `trace`, `debug`, `info`, `warn` or `error` (Vault's `warning`/`err` are normalised).
    pub log_level: Option<String>,
    /// Log line format.
    pub log_format: LogFormat,
    /// `unsafe_allow_api_audit_creation`: audit devices may be enabled through the API (`None`:
    /// not in the file; a server refuses, `-dev` allows).
    pub unsafe_allow_api_audit_creation: Option<bool>,
    /// `allow_audit_log_prefixing`: the audit `prefix` option is accepted (`None` as above).
    pub allow_audit_log_prefixing: Option<bool>,
    /// The `telemetry` stanza; without one Prometheus is disabled (as in Vault), except in dev
    /// mode, which brings its own.
    pub telemetry: Option<crate::telemetry::Telemetry>,
    /// `audit_timeout` (Coffer's): how long a request waits for the first audit device to
    /// accept its entry; `"250ms"` by default.
    pub audit_timeout: std::time::Duration,
    /// `plugin_directory`: Coffer runs no plugins, but audit device files may not be written
    /// there (HCSEC-2025-14).
    pub plugin_directory: Option<std::path::PathBuf>,
    /// `audit "<type>" "<path>" { ... }` blocks: devices enabled at unseal and kept as declared
    /// (re-read on SIGHUP).
    pub audit: Vec<crate::audit::Declared>,
    /// Settings present in the file that Coffer accepts without effect, each once: top-level ones
    /// in file order, then `cluster_addr`, then listener ones (`listener "tcp".cluster_address`).
    /// The server logs one line for each.
    pub ignored: Vec<String>,
}

/// Log line format (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (`standard`, the default).
    #[default]
    Standard,
    /// One JSON object per line (`json`).
    Json,
}

/// A configuration problem, ready to print: `<file>[:<line>]: <setting>: <problem>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    /// An error about `setting` in `file`; `line` 0 means unknown and is left out.
    pub(crate) fn new(file: &str, setting: &str, line: usize, problem: impl fmt::Display) -> Self {
        let at = if line > 0 {
            format!("{file}:{line}")
        } else {
            file.to_owned()
        };
        ConfigError(format!("{at}: {setting}: {problem}"))
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl ServerConfig {
    /// Reads and validates the config file at `path`, including that TLS certificate and key
    /// files exist. Messages name the file as given.
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{name}: cannot read the config file: {e}")))?;
        Self::parse(&text, &name)
    }

    /// Parses and validates config text; `source_name` names it in messages. JSON is recognised
    /// by its content (a leading `{`); a name ending in `.json` additionally requires it.
    pub fn parse(text: &str, source_name: &str) -> Result<ServerConfig, ConfigError> {
        parse_text(text, source_name, true, false)
    }

    /// Like [`ServerConfig::parse`] but without looking at the file system: TLS certificate and
    /// key files are not checked for existence. For example configs, linting and tests.
    pub fn parse_unchecked(text: &str, source_name: &str) -> Result<ServerConfig, ConfigError> {
        parse_text(text, source_name, false, false)
    }

    /// Reads the file given with `-dev -config=FILE`: as [`ServerConfig::from_file`], except
    /// that storage and listeners may be left out (dev mode brings its own). The caller ignores
    /// the storage and adds the listeners to the dev listener, as Vault merges them.
    pub fn from_file_for_dev(path: &Path) -> Result<ServerConfig, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{name}: cannot read the config file: {e}")))?;
        parse_text(&text, &name, true, true)
    }

    /// In-memory storage, one listener on `127.0.0.1:0` without TLS, defaults elsewhere.
    pub fn for_test() -> ServerConfig {
        ServerConfig {
            storage: StorageConfig::Inmem,
            listeners: vec![ListenerConfig {
                address: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                tls: None,
                max_request_size: listener::DEFAULT_MAX_REQUEST_SIZE,
                disable_unauthed_rekey_endpoints: true,
                disable_unauthed_generate_root_endpoints: true,
                timeouts: listener::HttpTimeouts::default(),
                json: listener::JsonLimits::default(),
                telemetry: ListenerTelemetry::default(),
            }],
            api_addr: None,
            cluster_addr: None,
            default_lease_ttl: None,
            max_lease_ttl: None,
            log_level: None,
            log_format: LogFormat::Standard,
            unsafe_allow_api_audit_creation: None,
            allow_audit_log_prefixing: None,
            telemetry: None,
            audit_timeout: crate::audit::DEFAULT_DEADLINE,
            plugin_directory: None,
            audit: Vec::new(),
            ignored: Vec::new(),
        }
    }
}

/// `dev`: the file is merged into `-dev` mode, where storage and listeners are optional.
fn parse_text(
    text: &str,
    file: &str,
    check_files: bool,
    dev: bool,
) -> Result<ServerConfig, ConfigError> {
    if file.to_ascii_lowercase().ends_with(".json") && !text.trim_start().starts_with('{') {
        return Err(ConfigError(format!(
            "{file}: syntax error: a .json config file must hold one JSON object"
        )));
    }
    let items =
        parse_document(text).map_err(|e| ConfigError(format!("{file}: syntax error: {e}")))?;
    let top = Section::read(file, String::new(), &items, &TOP)?;

    let storage_blocks: Vec<_> = top
        .blocks
        .iter()
        .filter(|b| !matches!(b.kind, "listener" | "telemetry" | "audit"))
        .collect();
    // Dev mode is in memory whatever the file says.
    let storage = if dev {
        StorageConfig::Inmem
    } else {
        storage::from_blocks(file, &storage_blocks)?
    };

    let telemetry_blocks: Vec<_> = top
        .blocks
        .iter()
        .filter(|b| b.kind == "telemetry")
        .collect();
    let (telemetry, telemetry_ignored) = telemetry::from_blocks(file, &telemetry_blocks)?;
    let mut ignored = top.ignored.clone();
    if dev && let Some(first) = storage_blocks.first() {
        ignored.push(first.kind.to_owned());
    }
    ignored.extend(telemetry_ignored);
    let cluster_addr = top.string("cluster_addr")?.map(|(addr, _)| addr);
    if cluster_addr.is_some() {
        ignored.push("cluster_addr".to_owned());
    }
    let mut listeners = Vec::new();
    for block in top.blocks.iter().filter(|b| b.kind == "listener") {
        let (listener, skipped) = listener::from_block(file, block, check_files)?;
        listeners.push(listener);
        for name in skipped {
            if !ignored.contains(&name) {
                ignored.push(name);
            }
        }
    }
    if listeners.is_empty() && !dev {
        return Err(ConfigError::new(
            file,
            "listener",
            0,
            "no listener block; add one such as listener \"tcp\" { address = \"127.0.0.1:8200\" }",
        ));
    }

    let api_addr = match top.string("api_addr")? {
        Some((addr, line)) => Some(check_url(&top, "api_addr", line, addr)?),
        None => None,
    };

    let default_lease_ttl = top.duration("default_lease_ttl")?.filter(|s| *s > 0);
    let max_lease_ttl = top.duration("max_lease_ttl")?.filter(|s| *s > 0);
    let (default, max) = (
        default_lease_ttl.unwrap_or(SYSTEM_LEASE_TTL),
        max_lease_ttl.unwrap_or(SYSTEM_LEASE_TTL),
    );
    if default > max {
        // As in Vault, an unset default (768h) must fit under a lowered maximum too.
        let error = match default_lease_ttl {
            Some(_) => top.error(
                "default_lease_ttl",
                top.raw("default_lease_ttl").map_or(0, |r| r.line),
                format!("{default}s is greater than the max lease TTL ({max}s)"),
            ),
            None => top.error(
                "max_lease_ttl",
                top.raw("max_lease_ttl").map_or(0, |r| r.line),
                format!("{max}s is less than the default lease TTL ({default}s); lower default_lease_ttl too"),
            ),
        };
        return Err(error);
    }

    let log_level = match top.string("log_level")? {
        Some((level, line)) => Some(log_level(&top, line, &level)?),
        None => None,
    };
    let log_format = match top.string("log_format")? {
        None => LogFormat::Standard,
        Some((format, line)) => match format.trim().to_ascii_lowercase().as_str() {
            "" | "standard" => LogFormat::Standard,
            "json" => LogFormat::Json,
            _ => {
                return Err(top.error(
                    "log_format",
                    line,
                    format!("unknown log format {format:?} (expected standard or json)"),
                ));
            }
        },
    };

    let allow_audit_log_prefixing = top.boolean("allow_audit_log_prefixing")?;
    let audit_blocks: Vec<_> = top.blocks.iter().filter(|b| b.kind == "audit").collect();
    let audit = audit::from_blocks(
        file,
        &audit_blocks,
        allow_audit_log_prefixing.unwrap_or(false),
    )?;

    Ok(ServerConfig {
        storage,
        listeners,
        api_addr,
        cluster_addr,
        default_lease_ttl,
        max_lease_ttl,
        log_level,
        log_format,
        unsafe_allow_api_audit_creation: top.boolean("unsafe_allow_api_audit_creation")?,
        allow_audit_log_prefixing,
        telemetry,
        audit_timeout: audit_timeout(&top)?,
        plugin_directory: top
            .string("plugin_directory")?
            .map(|(d, _)| std::path::PathBuf::from(d))
            .filter(|d| !d.as_os_str().is_empty()),
        audit,
        ignored,
    })
}

/// `audit_timeout`: a Go duration (`"250ms"`, `"1s"`), more than zero.
fn audit_timeout(top: &Section<'_>) -> Result<std::time::Duration, ConfigError> {
    let Some((text, line)) = top.string("audit_timeout")? else {
        return Ok(crate::audit::DEFAULT_DEADLINE);
    };
    let nanos = crate::logical::duration::parse_duration_nanos(&text)
        .map_err(|e| top.error("audit_timeout", line, format!("invalid duration: {e}")))?;
    match u64::try_from(nanos) {
        Ok(n) if n > 0 => Ok(std::time::Duration::from_nanos(n)),
        _ => Err(top.error("audit_timeout", line, "must be more than zero")),
    }
}

/// `api_addr` must be an http(s) URL with a host: clients are sent there.
fn check_url(
    top: &Section<'_>,
    key: &str,
    line: usize,
    addr: String,
) -> Result<String, ConfigError> {
    let host = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"));
    match host {
        Some(h) if !h.is_empty() && !h.starts_with('/') && !h.contains(char::is_whitespace) => Ok(addr),
        _ => Err(top.error(
            key,
            line,
            format!("{addr:?} is not an http:// or https:// URL such as \"https://coffer.example.com:8200\""),
        )),
    }
}

/// Vault's level names, case-insensitive; `warning` and `err` are Vault's aliases.
fn log_level(top: &Section<'_>, line: usize, level: &str) -> Result<String, ConfigError> {
    let normal = match level.trim().to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "err" => "error",
        _ => {
            return Err(top.error(
                "log_level",
                line,
                format!("unknown log level {level:?} (expected trace, debug, info, warn or error)"),
            ));
        }
    };
    Ok(normal.to_owned())
}
