//! `listener "tcp" { ... }` blocks: the socket address, TLS (on unless `tls_disable`, with
//! certificate and key files that must exist), the minimum TLS version and the request size limit.
//! Vault's other listener settings are accepted without effect, except client-certificate
//! verification, which Coffer does not do and therefore refuses rather than silently skip.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::ConfigError;
use super::file::{Block, Schema, Section};

/// The address of a listener without `address`, as in Vault.
pub const DEFAULT_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8200);

/// Largest request body accepted when `max_request_size` is not set (or 0): 32 MiB, as in Vault.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 32 << 20;

const LISTENER: Schema = Schema {
    known: &[
        "address",
        "tls_disable",
        "tls_cert_file",
        "tls_key_file",
        "tls_min_version",
        "max_request_size",
        "tls_require_and_verify_client_cert",
    ],
    ignored: &[
        "cluster_address",
        "tls_max_version",
        "tls_cipher_suites",
        "tls_prefer_server_cipher_suites",
        "tls_disable_client_certs",
        "tls_client_ca_file",
        "max_request_duration",
        "http_idle_timeout",
        "http_read_header_timeout",
        "http_read_timeout",
        "http_write_timeout",
        "telemetry",
        "profiling",
        "custom_response_headers",
    ],
    unsupported: &[
        "proxy_protocol_behavior",
        "proxy_protocol_authorized_addrs",
        "x_forwarded_for_authorized_addrs",
        "x_forwarded_for_hop_skips",
        "x_forwarded_for_reject_not_authorized",
        "x_forwarded_for_reject_not_present",
    ],
    blocks: &[],
};

/// One HTTP listener.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    /// Where to listen; default `127.0.0.1:8200`.
    pub address: SocketAddr,
    /// TLS settings; `None` when `tls_disable` is set.
    pub tls: Option<TlsConfig>,
    /// Largest request body in bytes; default 32 MiB.
    pub max_request_size: usize,
}

/// TLS settings of a listener.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// PEM certificate chain (`tls_cert_file`).
    pub cert_file: PathBuf,
    /// PEM private key (`tls_key_file`).
    pub key_file: PathBuf,
    /// Lowest protocol version offered (`tls_min_version`).
    pub min_version: TlsVersion,
}

/// TLS protocol versions Coffer offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 (`tls12`, the default, as in Vault).
    #[default]
    Tls12,
    /// TLS 1.3 (`tls13`).
    Tls13,
}

/// Reads one listener block. Returns the listener and the full names of its ignored settings.
/// With `check_files`, the TLS certificate and key must be existing regular files.
pub(super) fn from_block(
    file: &str,
    block: &Block<'_>,
    check_files: bool,
) -> Result<(ListenerConfig, Vec<String>), ConfigError> {
    match block.label {
        Some("tcp") => {}
        Some(other) => {
            return Err(ConfigError::new(
                file,
                &block.name(),
                block.line,
                format!("listener type {other:?} is not supported by Coffer (supported: tcp)"),
            ));
        }
        None => {
            return Err(ConfigError::new(
                file,
                "listener",
                block.line,
                "the listener type must be given, as in listener \"tcp\" { ... }",
            ));
        }
    }
    let section = Section::read(file, block.name(), block.body(file)?, &LISTENER)?;

    let address = match section.string("address")? {
        Some((text, line)) => {
            parse_address(&text).map_err(|e| section.error("address", line, e))?
        }
        None => DEFAULT_ADDRESS,
    };

    let max_request_size = match section.integer("max_request_size")? {
        None | Some((0, _)) => DEFAULT_MAX_REQUEST_SIZE,
        Some((n, line)) => usize::try_from(n).map_err(|_| {
            section.error(
                "max_request_size",
                line,
                format!("{n} is negative; Coffer always limits request bodies (0 means the default, {DEFAULT_MAX_REQUEST_SIZE})"),
            )
        })?,
    };

    let min_version = match section.string("tls_min_version")? {
        None => TlsVersion::Tls12,
        Some((v, line)) => match v.as_str() {
            "tls12" => TlsVersion::Tls12,
            "tls13" => TlsVersion::Tls13,
            "tls10" | "tls11" => {
                let problem = format!(
                    "TLS version {v:?} is not supported by Coffer (supported: tls12, tls13)"
                );
                return Err(section.error("tls_min_version", line, problem));
            }
            _ => {
                let problem = format!("unknown TLS version {v:?} (supported: tls12, tls13)");
                return Err(section.error("tls_min_version", line, problem));
            }
        },
    };

    let mut ignored = section.ignored.clone();
    match section.boolean("tls_require_and_verify_client_cert")? {
        Some(true) => {
            let line = section
                .raw("tls_require_and_verify_client_cert")
                .map_or(block.line, |r| r.line);
            return Err(section.error(
                "tls_require_and_verify_client_cert",
                line,
                "client certificate verification is not supported by Coffer",
            ));
        }
        Some(false) => ignored.push(section.setting("tls_require_and_verify_client_cert")),
        None => {}
    }

    let cert = section.string("tls_cert_file")?;
    let key = section.string("tls_key_file")?;
    let tls = if section.boolean("tls_disable")?.unwrap_or(false) {
        None
    } else {
        let cert_file = tls_file(&section, block, "tls_cert_file", cert, check_files)?;
        let key_file = tls_file(&section, block, "tls_key_file", key, check_files)?;
        Some(TlsConfig {
            cert_file,
            key_file,
            min_version,
        })
    };

    let listener = ListenerConfig {
        address,
        tls,
        max_request_size,
    };
    Ok((listener, ignored))
}

/// `IP:port`, plus the two host forms Vault configs use: `:8200` (every IPv4 interface) and
/// `localhost:8200`. Host names and go-sockaddr templates are refused.
fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let trimmed = text.trim();
    if trimmed.contains("{{") {
        return Err(format!(
            "invalid address {text:?}: go-sockaddr templates are not supported by Coffer"
        ));
    }
    let normalised = if let Some(port) = trimmed.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else if let Some(port) = trimmed.strip_prefix("localhost:") {
        format!("127.0.0.1:{port}")
    } else {
        trimmed.to_owned()
    };
    normalised.parse().map_err(|_| {
        format!("invalid address {text:?}: expected IP:port such as \"127.0.0.1:8200\"")
    })
}

/// A required TLS file: set, non-empty, and (with `check_files`) an existing regular file.
fn tls_file(
    section: &Section<'_>,
    block: &Block<'_>,
    key: &str,
    value: Option<(String, usize)>,
    check_files: bool,
) -> Result<PathBuf, ConfigError> {
    let Some((path, line)) = value.filter(|(p, _)| !p.trim().is_empty()) else {
        return Err(section.error(
            key,
            block.line,
            "must be set when TLS is enabled (or set tls_disable = true)",
        ));
    };
    if check_files {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(section.error(key, line, format!("{path:?} is not a regular file")));
            }
            Err(e) => return Err(section.error(key, line, format!("cannot open {path:?}: {e}"))),
        }
    }
    Ok(PathBuf::from(path))
}
