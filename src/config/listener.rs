//! `listener "tcp" { ... }` blocks: the socket address, TLS (on unless `tls_disable`, with
//! certificate and key files that must exist), the minimum TLS version, the request size limit,
//! the four HTTP connection timeouts (Vault's defaults), OpenBao's and Vault's JSON limits and
//! whether `sys/rekey/*` and `sys/generate-root/*` are served without a token (OpenBao's
//! `disable_unauthed_*_endpoints`; by default they need a sudo token).
//! Vault's other listener settings are accepted without effect, except client-certificate
//! verification, which Coffer does not do and therefore refuses rather than silently skip.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::file::{Block, Schema, Section};
use super::telemetry::{ListenerTelemetry, listener_block};
use crate::hcl::Node;
use crate::logical::field::parse_duration_nanos;

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
        "disable_unauthed_rekey_endpoints",
        "disable_unauthed_generate_root_endpoints",
        "http_idle_timeout",
        "http_read_header_timeout",
        "http_read_timeout",
        "http_write_timeout",
        "max_request_json_memory",
        "max_request_json_strings",
        "max_json_depth",
        "max_json_string_value_length",
        "max_json_object_entry_count",
        "max_json_array_element_count",
    ],
    ignored: &[
        "cluster_address",
        "tls_max_version",
        "tls_cipher_suites",
        "tls_prefer_server_cipher_suites",
        "tls_disable_client_certs",
        "tls_client_ca_file",
        "max_request_duration",
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
    blocks: &["telemetry"],
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
    /// `sys/rekey/*` need a token with sudo (default); `false` serves them without one, as Vault.
    pub disable_unauthed_rekey_endpoints: bool,
    /// `sys/generate-root/*` need a token with sudo (default); `false` serves them without one.
    pub disable_unauthed_generate_root_endpoints: bool,
    /// Connection timeouts (`http_*_timeout`).
    pub timeouts: HttpTimeouts,
    /// JSON body complexity limits (`max_request_json_*`, `max_json_*`).
    pub json: JsonLimits,
    /// The listener's `telemetry { }` block.
    pub telemetry: ListenerTelemetry,
}

/// The effective connection timeouts of a listener, after Go's fall-backs (`None`: no limit).
/// Vault passes its four settings to Go's `http.Server`, where a zero read-header timeout falls
/// back to the read timeout and a zero idle timeout to the read timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// From the connection's first byte (or the next request's first byte) to the end of the
    /// request headers; Vault's default 10 s.
    pub read_header: Option<Duration>,
    /// From the start of a request to the end of its body; Vault's default 30 s.
    pub read: Option<Duration>,
    /// From the end of the request headers to the end of the response; Vault's default: none.
    pub write: Option<Duration>,
    /// How long a keep-alive connection may wait for its next request; Vault's default 5 min.
    pub idle: Option<Duration>,
}

impl HttpTimeouts {
    /// The effective timeouts for the four raw settings (zero means Go's fall-back).
    pub fn from_settings(
        read_header: Duration,
        read: Duration,
        write: Duration,
        idle: Duration,
    ) -> Self {
        let some = |d: Duration| (!d.is_zero()).then_some(d);
        HttpTimeouts {
            read_header: some(read_header).or(some(read)),
            read: some(read),
            write: some(write),
            idle: some(idle).or(some(read)),
        }
    }
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts::from_settings(
            DEFAULT_READ_HEADER_TIMEOUT,
            DEFAULT_READ_TIMEOUT,
            Duration::ZERO,
            DEFAULT_IDLE_TIMEOUT,
        )
    }
}

/// Vault's `http_read_header_timeout` default.
pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Vault's `http_read_timeout` default.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Vault's `http_idle_timeout` default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Limits on JSON request bodies, checked before the body is decoded (`None`: no limit):
/// OpenBao's two (estimated memory of the decoded value, number of strings) and Vault's four
/// (nesting depth, string length, entries per object, elements per array).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// `max_request_json_memory`; OpenBao's default 32 MiB + 512 KiB.
    pub max_memory: Option<u64>,
    /// `max_request_json_strings` (keys and values); OpenBao's default 1000.
    pub max_strings: Option<u64>,
    /// `max_json_depth`: nested objects and arrays, the outer object counting 1; Vault's default
    /// 500. Nesting beyond [`MAX_JSON_DEPTH_SUPPORTED`] is refused whatever this says.
    pub max_depth: Option<u64>,
    /// `max_json_string_value_length`: bytes of one decoded string, key or value; Vault's
    /// default 1 MiB.
    pub max_string_length: Option<u64>,
    /// `max_json_object_entry_count`: keys of one object; Vault's default 10000.
    pub max_object_entries: Option<u64>,
    /// `max_json_array_element_count`: elements of one array; Vault's default 10000.
    pub max_array_elements: Option<u64>,
}

/// OpenBao's `max_request_json_memory` default.
pub const DEFAULT_MAX_JSON_MEMORY: u64 = (32 << 20) + (512 << 10);
/// OpenBao's `max_request_json_strings` default.
pub const DEFAULT_MAX_JSON_STRINGS: u64 = 1000;
/// Vault's `max_json_depth` default.
pub const DEFAULT_MAX_JSON_DEPTH: u64 = 500;
/// Vault's `max_json_string_value_length` default (1 MiB).
pub const DEFAULT_MAX_JSON_STRING_LENGTH: u64 = 1 << 20;
/// Vault's `max_json_object_entry_count` default.
pub const DEFAULT_MAX_JSON_OBJECT_ENTRIES: u64 = 10_000;
/// Vault's `max_json_array_element_count` default.
pub const DEFAULT_MAX_JSON_ARRAY_ELEMENTS: u64 = 10_000;
/// The deepest nesting Coffer's JSON decoder accepts (serde_json's recursion limit), whatever
/// `max_json_depth` says.
pub const MAX_JSON_DEPTH_SUPPORTED: u64 = 127;

impl JsonLimits {
    /// No limit at all (the nesting cap of the decoder still applies).
    pub const NONE: JsonLimits = JsonLimits {
        max_memory: None,
        max_strings: None,
        max_depth: None,
        max_string_length: None,
        max_object_entries: None,
        max_array_elements: None,
    };
}

impl Default for JsonLimits {
    fn default() -> Self {
        JsonLimits {
            max_memory: Some(DEFAULT_MAX_JSON_MEMORY),
            max_strings: Some(DEFAULT_MAX_JSON_STRINGS),
            max_depth: Some(DEFAULT_MAX_JSON_DEPTH),
            max_string_length: Some(DEFAULT_MAX_JSON_STRING_LENGTH),
            max_object_entries: Some(DEFAULT_MAX_JSON_OBJECT_ENTRIES),
            max_array_elements: Some(DEFAULT_MAX_JSON_ARRAY_ELEMENTS),
        }
    }
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
    let Some(kind) = block.label else {
        let problem = "the listener type must be given, as in listener \"tcp\" { ... }";
        return Err(ConfigError::new(file, "listener", block.line, problem));
    };
    if kind != "tcp" {
        let problem = format!("listener type {kind:?} is not supported by Coffer (supported: tcp)");
        return Err(ConfigError::new(file, &block.name(), block.line, problem));
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

    let timeout = |key: &str, default: Duration| -> Result<Duration, ConfigError> {
        Ok(go_duration(&section, key)?.unwrap_or(default))
    };
    let timeouts = HttpTimeouts::from_settings(
        timeout("http_read_header_timeout", DEFAULT_READ_HEADER_TIMEOUT)?,
        timeout("http_read_timeout", DEFAULT_READ_TIMEOUT)?,
        timeout("http_write_timeout", Duration::ZERO)?,
        timeout("http_idle_timeout", DEFAULT_IDLE_TIMEOUT)?,
    );
    // As in OpenBao and Vault: 0 (or unset) means the default; a negative number means no limit
    // (as in OpenBao; Vault has no such setting for its four).
    let json_limit = |key: &str, default: u64| -> Result<Option<u64>, ConfigError> {
        Ok(match section.integer(key)? {
            None | Some((0, _)) => Some(default),
            Some((n, _)) => u64::try_from(n).ok(),
        })
    };
    let json = JsonLimits {
        max_memory: json_limit("max_request_json_memory", DEFAULT_MAX_JSON_MEMORY)?,
        max_strings: json_limit("max_request_json_strings", DEFAULT_MAX_JSON_STRINGS)?,
        max_depth: json_limit("max_json_depth", DEFAULT_MAX_JSON_DEPTH)?,
        max_string_length: json_limit(
            "max_json_string_value_length",
            DEFAULT_MAX_JSON_STRING_LENGTH,
        )?,
        max_object_entries: json_limit(
            "max_json_object_entry_count",
            DEFAULT_MAX_JSON_OBJECT_ENTRIES,
        )?,
        max_array_elements: json_limit(
            "max_json_array_element_count",
            DEFAULT_MAX_JSON_ARRAY_ELEMENTS,
        )?,
    };

    let min_version = match section.string("tls_min_version")? {
        None => TlsVersion::Tls12,
        Some((v, line)) => {
            tls_version(&v).map_err(|e| section.error("tls_min_version", line, e))?
        }
    };

    let mut ignored = section.ignored.clone();
    let telemetry = match section.blocks.as_slice() {
        [] => ListenerTelemetry::default(),
        [one] => {
            let (t, skipped) = listener_block(file, &block.name(), one)?;
            ignored.extend(skipped);
            t
        }
        [_, second, ..] => {
            let problem = "only one 'telemetry' block is permitted";
            return Err(section.error("telemetry", second.line, problem));
        }
    };
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
        disable_unauthed_rekey_endpoints: section
            .boolean("disable_unauthed_rekey_endpoints")?
            .unwrap_or(true),
        disable_unauthed_generate_root_endpoints: section
            .boolean("disable_unauthed_generate_root_endpoints")?
            .unwrap_or(true),
        timeouts,
        json,
        telemetry,
    };
    Ok((listener, ignored))
}

/// A timeout the way Vault reads one (`parseutil.ParseDurationSecond`): a number of seconds, or a
/// string such as `"30"`, `"10s"`, `"1m30s"` or `"500ms"`. Negative timeouts are refused.
fn go_duration(section: &Section<'_>, key: &str) -> Result<Option<Duration>, ConfigError> {
    let Some(raw) = section.raw(key) else {
        return Ok(None);
    };
    let nanos = match raw.node {
        Node::Literal(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(secs) => i128::from(secs) * 1_000_000_000,
            None => {
                let problem =
                    format!("expected a whole number of seconds or a duration string, got {n}");
                return Err(section.error(key, raw.line, problem));
            }
        },
        Node::Literal(serde_json::Value::String(s)) => parse_duration_nanos(s)
            .map_err(|e| section.error(key, raw.line, format!("invalid duration: {e}")))?,
        _ => {
            let problem = "expected a duration such as \"30s\"";
            return Err(section.error(key, raw.line, problem));
        }
    };
    if nanos < 0 {
        return Err(section.error(key, raw.line, "duration cannot be negative"));
    }
    let nanos = u64::try_from(nanos)
        .map_err(|_| section.error(key, raw.line, "duration is out of range"))?;
    Ok(Some(Duration::from_nanos(nanos)))
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

/// `tls12` or `tls13`; Vault's older versions are refused by name.
fn tls_version(v: &str) -> Result<TlsVersion, String> {
    match v {
        "tls12" => Ok(TlsVersion::Tls12),
        "tls13" => Ok(TlsVersion::Tls13),
        "tls10" | "tls11" => Err(format!(
            "TLS version {v:?} is not supported by Coffer (supported: tls12, tls13)"
        )),
        _ => Err(format!(
            "unknown TLS version {v:?} (supported: tls12, tls13)"
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::super::ServerConfig;
    use super::*;

    /// A config whose listener body starts on line 3.
    fn with_listener(body: &str) -> Result<ListenerConfig, String> {
        let text = format!("storage \"inmem\" {{}}\nlistener \"tcp\" {{\n{body}\n}}\n");
        ServerConfig::parse_unchecked(&text, "l.hcl")
            .map(|mut c| c.listeners.remove(0))
            .map_err(|e| e.to_string())
    }

    fn tls(body: &str) -> Result<Option<TlsConfig>, String> {
        with_listener(body).map(|l| l.tls)
    }

    const FILES: &str = "tls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\"";

    #[test]
    fn addresses() {
        let cases = [
            ("0.0.0.0:8200", "0.0.0.0:8200"),
            (":8300", "0.0.0.0:8300"),
            ("localhost:8201", "127.0.0.1:8201"),
            (" 127.0.0.1:0 ", "127.0.0.1:0"),
            ("[::1]:8200", "[::1]:8200"),
            ("[::]:8200", "[::]:8200"),
        ];
        for (given, want) in cases {
            let listener = with_listener(&format!("address = {given:?}\ntls_disable = true"));
            let got = listener.map(|l| l.address.to_string());
            assert_eq!(got.as_deref(), Ok(want), "{given}");
        }
        let prefix = "l.hcl:3: listener \"tcp\".address: invalid address";
        let ip_port = "expected IP:port such as \"127.0.0.1:8200\"";
        let errors = [
            ("0.0.0.0", ip_port),
            ("vault.local:8200", ip_port),
            ("127.0.0.1:99999", ip_port),
            (
                "{{ GetPrivateIP }}:8200",
                "go-sockaddr templates are not supported by Coffer",
            ),
        ];
        for (given, problem) in errors {
            let got = with_listener(&format!("address = {given:?}\ntls_disable = true"));
            assert_eq!(
                got,
                Err(format!("{prefix} {given:?}: {problem}")),
                "{given}"
            );
        }
    }

    #[test]
    fn tls_disable_accepts_vaults_boolean_forms() {
        for off in ["true", "\"true\"", "1", "\"1\"", "\"t\"", "\"TRUE\"", "2"] {
            assert_eq!(tls(&format!("tls_disable = {off}")), Ok(None), "{off}");
        }
        let on = Some(TlsConfig {
            cert_file: PathBuf::from("/c.pem"),
            key_file: PathBuf::from("/k.pem"),
            min_version: TlsVersion::Tls12,
        });
        for value in ["false", "\"false\"", "0", "\"0\"", "\"\"", "\"F\""] {
            assert_eq!(
                tls(&format!("tls_disable = {value}\n{FILES}")),
                Ok(on.clone()),
                "{value}"
            );
        }
        assert_eq!(tls(FILES), Ok(on));
        let want = "l.hcl:3: listener \"tcp\".tls_disable: expected a boolean, got \"yes\"";
        assert_eq!(tls("tls_disable = \"yes\""), Err(want.to_owned()));
    }

    #[test]
    fn tls_settings() {
        let version = |v: &str| {
            tls(&format!("{FILES}\ntls_min_version = {v:?}")).map(|t| t.map(|t| t.min_version))
        };
        assert_eq!(version("tls13"), Ok(Some(TlsVersion::Tls13)));
        assert_eq!(version("tls12"), Ok(Some(TlsVersion::Tls12)));
        let cases = [
            (
                format!("{FILES}\ntls_min_version = \"tls11\""),
                "l.hcl:5: listener \"tcp\".tls_min_version: TLS version \"tls11\" is not supported by Coffer (supported: tls12, tls13)",
            ),
            (
                format!("{FILES}\ntls_min_version = \"1.3\""),
                "l.hcl:5: listener \"tcp\".tls_min_version: unknown TLS version \"1.3\" (supported: tls12, tls13)",
            ),
            (
                "address = \"0.0.0.0:8200\"".to_owned(),
                "l.hcl:2: listener \"tcp\".tls_cert_file: must be set when TLS is enabled (or set tls_disable = true)",
            ),
            (
                "tls_cert_file = \"/c.pem\"".to_owned(),
                "l.hcl:2: listener \"tcp\".tls_key_file: must be set when TLS is enabled (or set tls_disable = true)",
            ),
            (
                "tls_cert_file = \"\"\ntls_key_file = \"/k\"".to_owned(),
                "l.hcl:2: listener \"tcp\".tls_cert_file: must be set when TLS is enabled (or set tls_disable = true)",
            ),
            (
                format!("{FILES}\ntls_require_and_verify_client_cert = true"),
                "l.hcl:5: listener \"tcp\".tls_require_and_verify_client_cert: client certificate verification is not supported by Coffer",
            ),
            (
                format!("{FILES}\nproxy_protocol_behavior = \"use_always\""),
                "l.hcl:5: listener \"tcp\".proxy_protocol_behavior: this Vault setting is not supported by Coffer",
            ),
            (
                "tls_disable = true\nadress = \"x\"".to_owned(),
                "l.hcl:4: listener \"tcp\".adress: unknown setting",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(tls(&body), Err(want.to_owned()), "{body}");
        }
    }

    #[test]
    fn max_request_size() {
        let size = |v: &str| {
            with_listener(&format!("tls_disable = true\nmax_request_size = {v}"))
                .map(|l| l.max_request_size)
        };
        assert_eq!(size("0"), Ok(DEFAULT_MAX_REQUEST_SIZE));
        assert_eq!(size("1024"), Ok(1024));
        assert_eq!(size("\"2048\""), Ok(2048));
        let negative = "l.hcl:4: listener \"tcp\".max_request_size: -1 is negative; Coffer always limits request bodies (0 means the default, 33554432)";
        assert_eq!(size("-1"), Err(negative.to_owned()));
        let fraction =
            "l.hcl:4: listener \"tcp\".max_request_size: expected a whole number, got a number 1.5";
        assert_eq!(size("1.5"), Err(fraction.to_owned()));
    }

    #[test]
    fn unauthenticated_operator_endpoints() {
        let flags = |body: &str| {
            with_listener(&format!("tls_disable = true\n{body}")).map(|l| {
                (
                    l.disable_unauthed_rekey_endpoints,
                    l.disable_unauthed_generate_root_endpoints,
                )
            })
        };
        // OpenBao's default: both disabled (Coffer then serves them behind a sudo token).
        assert_eq!(flags(""), Ok((true, true)));
        assert_eq!(
            flags("disable_unauthed_rekey_endpoints = false"),
            Ok((false, true))
        );
        assert_eq!(
            flags("disable_unauthed_generate_root_endpoints = \"false\""),
            Ok((true, false))
        );
        assert!(flags("disable_unauthed_rekey_endpoints = \"maybe\"").is_err());
    }

    #[test]
    fn http_timeouts() {
        let timeouts =
            |body: &str| with_listener(&format!("tls_disable = true\n{body}")).map(|l| l.timeouts);
        let secs = |n: u64| Some(Duration::from_secs(n));
        // Vault's defaults: 10 s header, 30 s read, no write limit, 5 min idle.
        let defaults = HttpTimeouts {
            read_header: secs(10),
            read: secs(30),
            write: None,
            idle: secs(300),
        };
        assert_eq!(timeouts(""), Ok(defaults));
        assert_eq!(HttpTimeouts::default(), defaults);
        let set = "http_read_header_timeout = \"1s\"\nhttp_read_timeout = 2\n\
                   http_write_timeout = \"1m30s\"\nhttp_idle_timeout = \"500ms\"";
        assert_eq!(
            timeouts(set),
            Ok(HttpTimeouts {
                read_header: secs(1),
                read: secs(2),
                write: secs(90),
                idle: Some(Duration::from_millis(500)),
            })
        );
        // Go's fall-backs: a zero header or idle timeout takes the read timeout; zero read and
        // write timeouts mean none.
        assert_eq!(
            timeouts("http_read_header_timeout = 0\nhttp_idle_timeout = \"0s\""),
            Ok(HttpTimeouts {
                read_header: secs(30),
                idle: secs(30),
                ..defaults
            })
        );
        let none = "http_read_header_timeout = 0\nhttp_read_timeout = \"0\"\nhttp_idle_timeout = 0";
        let unlimited = HttpTimeouts {
            read_header: None,
            read: None,
            write: None,
            idle: None,
        };
        assert_eq!(timeouts(none), Ok(unlimited));
        let errors = [
            (
                "http_idle_timeout = \"5 minutes\"",
                "l.hcl:4: listener \"tcp\".http_idle_timeout: invalid duration: time: unknown unit \" minutes\" in duration \"5 minutes\"",
            ),
            (
                "http_read_timeout = \"-1s\"",
                "l.hcl:4: listener \"tcp\".http_read_timeout: duration cannot be negative",
            ),
            (
                "http_write_timeout = 1.5",
                "l.hcl:4: listener \"tcp\".http_write_timeout: expected a whole number of seconds or a duration string, got 1.5",
            ),
            (
                "http_read_header_timeout = true",
                "l.hcl:4: listener \"tcp\".http_read_header_timeout: expected a duration such as \"30s\"",
            ),
        ];
        for (body, want) in errors {
            assert_eq!(timeouts(body), Err(want.to_owned()), "{body}");
        }
    }

    #[test]
    fn json_limits() {
        let limits =
            |body: &str| with_listener(&format!("tls_disable = true\n{body}")).map(|l| l.json);
        let defaults = JsonLimits {
            max_memory: Some(34_078_720),
            max_strings: Some(1000),
            max_depth: Some(500),
            max_string_length: Some(1_048_576),
            max_object_entries: Some(10_000),
            max_array_elements: Some(10_000),
        };
        assert_eq!(limits(""), Ok(defaults));
        assert_eq!(
            limits(
                "max_request_json_memory = 0\nmax_request_json_strings = 0\nmax_json_depth = 0\n\
                 max_json_string_value_length = 0\nmax_json_object_entry_count = 0\n\
                 max_json_array_element_count = 0"
            ),
            Ok(defaults)
        );
        assert_eq!(
            limits("max_request_json_memory = 4096\nmax_request_json_strings = -1"),
            Ok(JsonLimits {
                max_memory: Some(4096),
                max_strings: None,
                ..defaults
            })
        );
        assert_eq!(
            limits(
                "max_json_depth = 10\nmax_json_string_value_length = 20\n\
                 max_json_object_entry_count = 30\nmax_json_array_element_count = 40"
            ),
            Ok(JsonLimits {
                max_depth: Some(10),
                max_string_length: Some(20),
                max_object_entries: Some(30),
                max_array_elements: Some(40),
                ..defaults
            })
        );
        assert_eq!(
            limits(
                "max_json_depth = -1\nmax_json_string_value_length = -1\n\
                 max_json_object_entry_count = -5\nmax_json_array_element_count = -1"
            ),
            Ok(JsonLimits {
                max_memory: defaults.max_memory,
                max_strings: defaults.max_strings,
                ..JsonLimits::NONE
            })
        );
        let bad = "l.hcl:4: listener \"tcp\".max_request_json_strings: expected a whole number, got \"many\"";
        assert_eq!(
            limits("max_request_json_strings = \"many\""),
            Err(bad.to_owned())
        );
        let bad = "l.hcl:4: listener \"tcp\".max_json_depth: expected a whole number, got \"deep\"";
        assert_eq!(limits("max_json_depth = \"deep\""), Err(bad.to_owned()));
        // Vault's four are settings now, not ignored names.
        let text =
            "storage \"inmem\" {}\nlistener \"tcp\" {\ntls_disable = true\nmax_json_depth = 10\n}";
        let ignored = ServerConfig::parse_unchecked(text, "l.hcl").map(|c| c.ignored);
        assert_eq!(ignored, Ok(vec![]));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any timeout written as a Go duration reads back exactly.
        #[test]
        fn timeouts_round_trip(h in 0u64..48, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            let got = with_listener(&format!("tls_disable = true\nhttp_write_timeout = {text:?}"))
                .map(|l| l.timeouts.write);
            let want = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
            proptest::prop_assert_eq!(got, Ok((!want.is_zero()).then_some(want)));
        }

        /// Arbitrary values for the listener settings give a config or an error, never a panic.
        #[test]
        fn listener_values_never_panic(
            key in proptest::sample::select(vec![
                "http_idle_timeout", "http_read_header_timeout", "http_read_timeout",
                "http_write_timeout", "max_request_json_memory", "max_request_json_strings",
                "max_json_depth", "max_json_string_value_length", "max_json_object_entry_count",
                "max_json_array_element_count",
                "max_request_size", "address", "tls_min_version",
            ]),
            value in "[-+0-9a-zµ.\"]{0,24}",
        ) {
            let _ = with_listener(&format!("tls_disable = true\n{key} = {value}"));
        }
    }

    #[test]
    fn listener_types_and_ignored_settings() {
        let parse =
            |text: &str| ServerConfig::parse_unchecked(text, "l.hcl").map_err(|e| e.to_string());
        let unix = "storage \"inmem\" {}\nlistener \"unix\" { address = \"/run/v.sock\" }";
        let want = "l.hcl:2: listener \"unix\": listener type \"unix\" is not supported by Coffer (supported: tcp)";
        assert_eq!(parse(unix), Err(want.to_owned()));
        let bare = "storage \"inmem\" {}\nlistener = 1";
        let want =
            "l.hcl:2: listener: the listener type must be given, as in listener \"tcp\" { ... }";
        assert_eq!(parse(bare), Err(want.to_owned()));

        let text = "storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n cluster_address = \":8201\"\n \
                    tls_require_and_verify_client_cert = false\n telemetry { unauthenticated_metrics_access = true }\n \
                    x_forwarded_for_authorized_addrs = \"10.0.0.0/8\"\n}";
        let want = "l.hcl:7: listener \"tcp\".x_forwarded_for_authorized_addrs: this Vault setting is not supported by Coffer";
        assert_eq!(parse(text), Err(want.to_owned()));
        let text = text.replace("x_forwarded_for_authorized_addrs = \"10.0.0.0/8\"", "");
        let ignored = parse(&text).map(|c| c.ignored);
        let want = ["cluster_address", "tls_require_and_verify_client_cert"]
            .map(|k| format!("listener \"tcp\".{k}"));
        assert_eq!(ignored, Ok(want.to_vec()));
    }
}
