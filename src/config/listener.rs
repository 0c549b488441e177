//! `listener "tcp" { ... }` blocks: the socket address, TLS (on unless `tls_disable`, with
//! certificate and key files that must exist), the minimum TLS version, the request size limit and
//! whether `sys/rekey/*` and `sys/generate-root/*` are served without a token (OpenBao's
//! `disable_unauthed_*_endpoints`; by default they need a sudo token).
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
        "disable_unauthed_rekey_endpoints",
        "disable_unauthed_generate_root_endpoints",
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
    /// `sys/rekey/*` need a token with sudo (default); `false` serves them without one, as Vault.
    pub disable_unauthed_rekey_endpoints: bool,
    /// `sys/generate-root/*` need a token with sudo (default); `false` serves them without one.
    pub disable_unauthed_generate_root_endpoints: bool,
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

    let min_version = match section.string("tls_min_version")? {
        None => TlsVersion::Tls12,
        Some((v, line)) => {
            tls_version(&v).map_err(|e| section.error("tls_min_version", line, e))?
        }
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
        disable_unauthed_rekey_endpoints: section
            .boolean("disable_unauthed_rekey_endpoints")?
            .unwrap_or(true),
        disable_unauthed_generate_root_endpoints: section
            .boolean("disable_unauthed_generate_root_endpoints")?
            .unwrap_or(true),
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
        let want = [
            "cluster_address",
            "telemetry",
            "tls_require_and_verify_client_cert",
        ]
        .map(|k| format!("listener \"tcp\".{k}"));
        assert_eq!(ignored, Ok(want.to_vec()));
    }
}
