//! Whole-file tests of the server config: Vault's example config in HCL and JSON, defaults, the
//! ignored-settings list, every error class with its exact message, the example configs in
//! `config/`, and `from_file` with real certificate files. Block-level cases live beside
//! `listener.rs`, `storage.rs` and `file.rs`.

use std::path::{Path, PathBuf};

use super::*;
use crate::telemetry::Telemetry;

const FILE: &str = "server.hcl";

/// `storage` on line 1, a plain-HTTP listener on line 2; `extra` starts on line 3.
fn base(extra: &str) -> String {
    format!("storage \"inmem\" {{}}\nlistener \"tcp\" {{ tls_disable = true }}\n{extra}")
}

fn ok(text: &str) -> ServerConfig {
    match ServerConfig::parse_unchecked(text, FILE) {
        Ok(config) => config,
        Err(e) => panic!("{text:?} should parse: {e}"),
    }
}

fn err(text: &str) -> String {
    match ServerConfig::parse_unchecked(text, FILE) {
        Ok(config) => panic!("{text:?} should fail, got {config:?}"),
        Err(e) => e.to_string(),
    }
}

const VAULT_EXAMPLE: &str = r#"
storage "file" { path = "/var/lib/vault" }
listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/etc/vault/tls.crt"
  tls_key_file  = "/etc/vault/tls.key"
  tls_min_version = "tls12"
  max_request_size = 33554432
}
api_addr = "https://vault.example.com:8200"
cluster_addr = "https://10.0.0.1:8201"
ui = true
disable_mlock = true
default_lease_ttl = "768h"
max_lease_ttl = "768h"
log_level = "info"
log_format = "json"
telemetry { prometheus_retention_time = "30s" disable_hostname = true }
"#;

const VAULT_EXAMPLE_JSON: &str = r#"{
  "storage": {"file": {"path": "/var/lib/vault"}},
  "listener": [{"tcp": {
    "address": "0.0.0.0:8200",
    "tls_cert_file": "/etc/vault/tls.crt",
    "tls_key_file": "/etc/vault/tls.key",
    "tls_min_version": "tls12",
    "max_request_size": 33554432
  }}],
  "api_addr": "https://vault.example.com:8200",
  "cluster_addr": "https://10.0.0.1:8201",
  "ui": true,
  "disable_mlock": true,
  "default_lease_ttl": "768h",
  "max_lease_ttl": "768h",
  "log_level": "info",
  "log_format": "json",
  "telemetry": {"prometheus_retention_time": "30s", "disable_hostname": true}
}"#;

fn vault_example_expected() -> ServerConfig {
    ServerConfig {
        storage: StorageConfig::File {
            path: PathBuf::from("/var/lib/vault"),
        },
        listeners: vec![ListenerConfig {
            address: "0.0.0.0:8200".parse().expect("address"),
            tls: Some(TlsConfig {
                cert_file: PathBuf::from("/etc/vault/tls.crt"),
                key_file: PathBuf::from("/etc/vault/tls.key"),
                min_version: TlsVersion::Tls12,
            }),
            max_request_size: 33_554_432,
            disable_unauthed_rekey_endpoints: true,
            disable_unauthed_generate_root_endpoints: true,
            timeouts: HttpTimeouts::default(),
            json: JsonLimits::default(),
            telemetry: ListenerTelemetry::default(),
        }],
        api_addr: Some("https://vault.example.com:8200".into()),
        cluster_addr: Some("https://10.0.0.1:8201".into()),
        default_lease_ttl: Some(2_764_800),
        max_lease_ttl: Some(2_764_800),
        log_level: Some("info".into()),
        log_format: LogFormat::Json,
        unsafe_allow_api_audit_creation: None,
        allow_audit_log_prefixing: None,
        telemetry: Some(Telemetry {
            prometheus_retention_secs: 30,
            ..Telemetry::dev()
        }),
        audit_timeout: crate::audit::DEFAULT_DEADLINE,
        plugin_directory: None,
        audit: Vec::new(),
        ignored: vec![
            "ui".into(),
            "disable_mlock".into(),
            "telemetry.disable_hostname".into(),
            "cluster_addr".into(),
        ],
    }
}

#[test]
fn vault_example_config_in_hcl_and_json() {
    assert_eq!(ok(VAULT_EXAMPLE), vault_example_expected());
    assert_eq!(ok(VAULT_EXAMPLE_JSON), vault_example_expected());
    let by_name = ServerConfig::parse_unchecked(VAULT_EXAMPLE_JSON, "server.json");
    assert_eq!(by_name, Ok(vault_example_expected()));
}

#[test]
fn defaults_of_a_minimal_config() {
    let config = ok("storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = 1 }");
    let mut want = ServerConfig::for_test();
    want.listeners[0].address = listener::DEFAULT_ADDRESS;
    assert_eq!(config, want);
    assert_eq!(want.listeners[0].max_request_size, 32 * 1024 * 1024);
    assert_eq!(listener::DEFAULT_ADDRESS.to_string(), "127.0.0.1:8200");
}

#[test]
fn ignored_settings_are_listed_once_in_order() {
    let text = base(
        "pid_file = \"/run/v.pid\"\nui = true\nui = false\ncluster_name = \"c\"\n\
         plugin_directory = \"/p\"\nraw_storage_endpoint = true\ndisable_clustering = true\n\
         log_file = \"/var/log/v\"\ndisable_cache = true\ncluster_addr = \"https://x:8201\"\n\
         listener \"tcp\" { address = \":8300\" tls_disable = true cluster_address = \":8301\" }\n\
         listener \"tcp\" { address = \":8400\" tls_disable = true cluster_address = \":8401\" }\n",
    );
    let config = ok(&text);
    let want = [
        "pid_file",
        "ui",
        "cluster_name",
        "raw_storage_endpoint",
        "disable_clustering",
        "log_file",
        "disable_cache",
        "cluster_addr",
        "listener \"tcp\".cluster_address",
    ];
    assert_eq!(config.ignored, want);
    assert_eq!(config.listeners.len(), 3);
    assert_eq!(config.cluster_addr.as_deref(), Some("https://x:8201"));
    assert_eq!(
        config.plugin_directory,
        Some(std::path::PathBuf::from("/p"))
    );
}

#[test]
fn audit_timeout_is_a_positive_go_duration() {
    let config = ok(&base("audit_timeout = \"1s500ms\"\n"));
    assert_eq!(config.audit_timeout, std::time::Duration::from_millis(1500));
    assert_eq!(
        ok(&base("")).audit_timeout,
        std::time::Duration::from_millis(250)
    );
    for bad in ["\"0s\"", "\"-1s\"", "\"soon\""] {
        let text = base(&format!("audit_timeout = {bad}\n"));
        let err = ServerConfig::parse_unchecked(&text, "server.hcl").unwrap_err();
        assert!(err.message().contains("audit_timeout"), "{err}");
    }
}

#[test]
fn lease_ttls_log_level_and_format() {
    let cases: &[(&str, Option<i64>, Option<i64>)] = &[
        ("default_lease_ttl = \"1h30m\"", Some(5400), None),
        ("default_lease_ttl = 3600", Some(3600), None),
        ("default_lease_ttl = \"3600\"", Some(3600), None),
        (
            "max_lease_ttl = \"7d\"\ndefault_lease_ttl = \"1h\"",
            Some(3600),
            Some(604_800),
        ),
        (
            "max_lease_ttl = \"8760h\"\ndefault_lease_ttl = \"1000h\"",
            Some(3_600_000),
            Some(31_536_000),
        ),
        ("default_lease_ttl = 0\nmax_lease_ttl = \"0s\"", None, None),
    ];
    // HCL1 has no null: the word is an identifier, refused as a value (as OpenBao 2.7.2 does).
    assert_eq!(
        err(&base("default_lease_ttl = null")),
        "server.hcl: syntax error: At 3:21: Unknown token: 3:21 IDENT null"
    );
    for (extra, default, max) in cases {
        let config = ok(&base(extra));
        assert_eq!(
            (config.default_lease_ttl, config.max_lease_ttl),
            (*default, *max),
            "{extra}"
        );
    }
    let levels = [
        ("trace", "trace"),
        ("DEBUG", "debug"),
        (" info ", "info"),
        ("warning", "warn"),
        ("err", "error"),
    ];
    for (given, want) in levels {
        let config = ok(&base(&format!("log_level = {given:?}")));
        assert_eq!(config.log_level.as_deref(), Some(want), "{given}");
    }
    let formats = [
        ("standard", LogFormat::Standard),
        ("", LogFormat::Standard),
        ("JSON", LogFormat::Json),
    ];
    for (given, want) in formats {
        assert_eq!(
            ok(&base(&format!("log_format = {given:?}"))).log_format,
            want,
            "{given}"
        );
    }
}

#[test]
fn every_error_class_names_file_setting_and_line() {
    let cases: &[(&str, &str)] = &[
        (
            "storage \"raft\" { path = \"/x\" }\nlistener \"tcp\" { tls_disable = true }",
            "server.hcl:1: storage \"raft\": storage type \"raft\" is not supported by Coffer (supported: inmem, file, postgresql)",
        ),
        (
            "listener \"tcp\" { tls_disable = true }",
            "server.hcl: storage: no storage block; add one such as storage \"file\" { path = \"/var/lib/coffer\" }",
        ),
        (
            "storage \"inmem\" {}",
            "server.hcl: listener: no listener block; add one such as listener \"tcp\" { address = \"127.0.0.1:8200\" }",
        ),
        (&base("bogus = 1"), "server.hcl:3: bogus: unknown setting"),
        (
            &base("seal \"awskms\" { region = \"x\" }"),
            "server.hcl:3: seal \"awskms\": this Vault setting is not supported by Coffer",
        ),
        (
            &base("api_addr = \"https://a\"\napi_addr = \"https://b\""),
            "server.hcl:4: api_addr: set more than once (first on line 3)",
        ),
        (
            &base("api_addr = \"vault.example.com:8200\""),
            "server.hcl:3: api_addr: \"vault.example.com:8200\" is not an http:// or https:// URL such as \"https://coffer.example.com:8200\"",
        ),
        (
            &base("api_addr = 8200"),
            "server.hcl:3: api_addr: expected a string, got a number 8200",
        ),
        (
            &base("default_lease_ttl = \"10 years\""),
            "server.hcl:3: default_lease_ttl: invalid duration: time: unknown unit \" years\" in duration \"10 years\"",
        ),
        (
            &base("max_lease_ttl = -5"),
            "server.hcl:3: max_lease_ttl: duration cannot be negative",
        ),
        (
            &base("max_lease_ttl = true"),
            "server.hcl:3: max_lease_ttl: expected a duration, got a boolean true",
        ),
        (
            &base("default_lease_ttl = \"800h\""),
            "server.hcl:3: default_lease_ttl: 2880000s is greater than the max lease TTL (2764800s)",
        ),
        (
            &base("default_lease_ttl = 0\nmax_lease_ttl = \"1h\""),
            "server.hcl:4: max_lease_ttl: 3600s is less than the default lease TTL (2764800s); lower default_lease_ttl too",
        ),
        (
            &base("log_level = \"loud\""),
            "server.hcl:3: log_level: unknown log level \"loud\" (expected trace, debug, info, warn or error)",
        ),
        (
            &base("log_format = \"xml\""),
            "server.hcl:3: log_format: unknown log format \"xml\" (expected standard or json)",
        ),
        (
            "storage \"inmem\" {}\nlistener \"tcp\" { address = \"0.0.0.0:8200\" }",
            "server.hcl:2: listener \"tcp\".tls_cert_file: must be set when TLS is enabled (or set tls_disable = true)",
        ),
        (
            "storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n}\nui = yes",
            "server.hcl: syntax error: At 5:6: Unknown token: 5:6 IDENT yes",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(text), *want, "{text}");
    }
}

#[test]
fn json_errors_and_json_by_name() {
    let text = "{\"storage\": {\"inmem\": {}},\n \"listener\": {\"tcp\": {\"tls_disable\": true}},\n \"ui\": true,\n \"bogus\": 1}";
    let e = ServerConfig::parse_unchecked(text, "server.json").map_err(|e| e.to_string());
    assert_eq!(e, Err("server.json:4: bogus: unknown setting".to_owned()));
    let e = ServerConfig::parse_unchecked("storage \"inmem\" {}", "server.json")
        .map_err(|e| e.to_string());
    assert_eq!(
        e,
        Err("server.json: syntax error: a .json config file must hold one JSON object".to_owned())
    );
}

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Every file in `config/` parses. TLS file existence is not checked here (`parse_unchecked`):
/// the examples point at `/etc/coffer/tls/`, which does not exist on a build machine.
#[test]
fn every_example_config_parses() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(config_dir()).expect("config/ exists") {
        let path = entry.expect("entry").path();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).expect("readable");
        if let Err(e) = ServerConfig::parse_unchecked(&text, &name) {
            panic!("{e}");
        }
        seen.push(path.file_name().map(|n| n.to_string_lossy().into_owned()));
    }
    for wanted in ["dev.hcl", "server.hcl", "server-notls.hcl"] {
        assert!(
            seen.contains(&Some(wanted.to_owned())),
            "config/{wanted} is missing"
        );
    }
}

#[test]
fn example_configs_mean_what_their_comments_say() {
    let read = |name: &str| std::fs::read_to_string(config_dir().join(name)).expect("readable");
    let dev = ok(&read("dev.hcl"));
    assert_eq!(dev.storage, StorageConfig::Inmem);
    assert_eq!(dev.listeners[0].tls, None);

    let server = ok(&read("server.hcl"));
    let file_storage = StorageConfig::File {
        path: PathBuf::from("/var/lib/coffer"),
    };
    assert_eq!(server.storage, file_storage);
    let tls = server.listeners[0].tls.clone().expect("TLS on");
    assert_eq!(tls.cert_file, Path::new("/etc/coffer/tls/cert.pem"));
    assert_eq!(tls.key_file, Path::new("/etc/coffer/tls/key.pem"));
    assert_eq!(server.ignored, ["disable_mlock"]);
    assert_eq!(server.telemetry, Some(Telemetry::dev()));

    let notls = ok(&read("server-notls.hcl"));
    assert_eq!(notls.storage, file_storage);
    assert_eq!(notls.listeners[0].tls, None);
    assert!(notls.listeners[0].address.ip().is_loopback());
}

#[test]
fn from_file_checks_tls_files_and_names_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "cert").expect("write");
    let config_path = dir.path().join("server.hcl");
    let text = format!(
        "storage \"file\" {{ path = \"/d\" }}\nlistener \"tcp\" {{\n  tls_cert_file = {:?}\n  tls_key_file = {:?}\n}}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    std::fs::write(&config_path, &text).expect("write");

    let e = ServerConfig::from_file(&config_path)
        .expect_err("key missing")
        .to_string();
    let want = format!(
        "{}:4: listener \"tcp\".tls_key_file: cannot open {:?}: ",
        config_path.display(),
        key.display().to_string()
    );
    assert!(e.starts_with(&want), "{e}");

    std::fs::write(&key, "key").expect("write");
    let config = ServerConfig::from_file(&config_path).expect("both files exist");
    assert_eq!(
        config.listeners[0].tls.as_ref().map(|t| t.key_file.clone()),
        Some(key)
    );

    let e = ServerConfig::parse(
        &text.replace(
            &cert.display().to_string(),
            &dir.path().display().to_string(),
        ),
        FILE,
    )
    .expect_err("a directory is not a certificate")
    .to_string();
    assert!(
        e.starts_with("server.hcl:3: listener \"tcp\".tls_cert_file: ")
            && e.ends_with("is not a regular file"),
        "{e}"
    );

    let missing = dir.path().join("nope.hcl");
    let e = ServerConfig::from_file(&missing)
        .expect_err("no such file")
        .to_string();
    assert!(
        e.starts_with(&format!(
            "{}: cannot read the config file: ",
            missing.display()
        )),
        "{e}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Arbitrary text (HCL-ish or JSON-ish) parses to a config or an error, never a panic.
    #[test]
    fn arbitrary_config_text_never_panics(text in "[a-z_\"{}\\[\\]=:,.#0-9 \n-]{0,200}") {
        let _ = ServerConfig::parse_unchecked(&text, "p.hcl");
        let _ = ServerConfig::parse_unchecked(&text, "p.json");
    }

    /// Arbitrary bytes read as text never panic either.
    #[test]
    fn arbitrary_unicode_never_panics(text in "\\PC{0,120}") {
        let _ = ServerConfig::parse_unchecked(&text, "p.hcl");
    }
}

#[test]
fn telemetry_stanza_as_vault_reads_it() {
    assert_eq!(ok(&base("")).telemetry, None);
    assert_eq!(ok(&base("telemetry {}")).telemetry, Some(Telemetry::dev()));
    let t = ok(&base(
        "telemetry {\n prometheus_retention_time = \"0\"\n usage_gauge_period = \"none\"\n \
         maximum_gauge_cardinality = 7\n enable_hostname_label = true\n \
         prefix_filter = [\"+vault.token\", \"-vault.expire\"]\n          metrics_prefix = \"bank\"\n filter_default = false\n}",
    ));
    let want = Telemetry {
        prometheus_retention_secs: 0,
        enable_hostname_label: true,
        usage_gauge_period_secs: None,
        maximum_gauge_cardinality: 7,
        metrics_prefix: Some("bank".into()),
        prefix_filter: vec![("vault.token".into(), true), ("vault.expire".into(), false)],
        filter_default: false,
    };
    assert_eq!(t.telemetry, Some(want));
    assert!(!Telemetry::without_stanza().prometheus_enabled());
    let t = ok(&base(
        "telemetry { prometheus_retention_time = 90 usage_gauge_period = \"1m\" }",
    ));
    let t = t.telemetry.expect("stanza");
    assert_eq!(
        (t.prometheus_retention_secs, t.usage_gauge_period_secs),
        (90, Some(60))
    );

    // Other sinks are accepted without effect; unknown keys, bad rules and a second block fail.
    let c = ok(&base(
        "telemetry {\n statsd_address = \"127.0.0.1:8125\"\n disable_hostname = true\n}",
    ));
    assert_eq!(
        c.ignored,
        ["telemetry.statsd_address", "telemetry.disable_hostname"]
    );
    assert_eq!(
        err(&base("telemetry { prometheus_retention = \"1h\" }")),
        "server.hcl:3: telemetry.prometheus_retention: unknown setting"
    );
    assert_eq!(
        err(&base("telemetry { prefix_filter = [\"vault.token\"] }")),
        "server.hcl:3: telemetry.prefix_filter: filter rule must begin with either '+' or '-': \"vault.token\""
    );
    assert_eq!(
        err(&base("telemetry {}\ntelemetry {}")),
        "server.hcl:4: telemetry: only one 'telemetry' block is permitted"
    );
}

#[test]
fn listener_telemetry_and_the_dev_merge_file() {
    let c = ok(
        "storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n \
         telemetry { unauthenticated_metrics_access = true }\n}",
    );
    assert!(
        c.listeners
            .first()
            .expect("listener")
            .telemetry
            .unauthenticated_metrics_access
    );
    assert!(
        !ok(&base(""))
            .listeners
            .first()
            .expect("listener")
            .telemetry
            .unauthenticated_metrics_access
    );

    // With -dev, storage and listeners are optional and the storage is ignored.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("dev.hcl");
    std::fs::write(
        &path,
        "storage \"raft\" {}\ntelemetry {}\nlog_level = \"debug\"\n",
    )
    .expect("write");
    let c = ServerConfig::from_file_for_dev(&path).expect("dev config");
    assert_eq!(c.storage, StorageConfig::Inmem);
    assert!(c.listeners.is_empty());
    assert_eq!(c.ignored, ["storage"]);
    assert_eq!(c.telemetry, Some(Telemetry::dev()));
    assert!(ServerConfig::from_file(&path).is_err());
}

#[test]
fn audit_blocks_declare_devices_in_hcl_and_json() {
    let hcl = base(
        "audit \"file\" \"to-file\" {\n  description = \"declared\"\n  options {\n    file_path = \"/var/log/coffer/audit.log\"\n    mode = \"0600\"\n    hmac_accessor = false\n  }\n}\n\
         audit \"socket\" \"siem/\" {\n  local = true\n  options = { address = \"127.0.0.1:9090\", socket_type = \"tcp\" }\n}\n\
         audit \"syslog\" \"s\" { }\n",
    );
    let got = ok(&hcl).audit;
    let opts = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let want = vec![
        crate::audit::Declared {
            path: "to-file/".into(),
            kind: "file".into(),
            description: "declared".into(),
            local: false,
            options: opts(&[
                ("file_path", "/var/log/coffer/audit.log"),
                ("mode", "0600"),
                ("hmac_accessor", "false"),
            ]),
        },
        crate::audit::Declared {
            path: "siem/".into(),
            kind: "socket".into(),
            description: String::new(),
            local: true,
            options: opts(&[("address", "127.0.0.1:9090"), ("socket_type", "tcp")]),
        },
        crate::audit::Declared {
            path: "s/".into(),
            kind: "syslog".into(),
            description: String::new(),
            local: false,
            options: opts(&[]),
        },
    ];
    assert_eq!(got, want);

    // JSON: a body of only objects is flattened one level further; the device is the same.
    let json = r#"{"storage": {"inmem": {}}, "listener": [{"tcp": {"tls_disable": true}}],
      "audit": [
        {"file": {"to-file": {"options": {"file_path": "/var/log/coffer/audit.log", "mode": "0600", "hmac_accessor": false}, "description": "declared"}}},
        {"socket": {"siem": {"options": {"address": "127.0.0.1:9090", "socket_type": "tcp"}, "local": true}}},
        {"syslog": {"s": {}}}
      ]}"#;
    assert_eq!(ok(json).audit, want);
    let only_options = r#"{"storage": {"inmem": {}}, "listener": [{"tcp": {"tls_disable": true}}],
      "audit": {"file": {"f": {"options": {"file_path": "/x"}}}}}"#;
    assert_eq!(
        ok(only_options).audit,
        vec![crate::audit::Declared {
            path: "f/".into(),
            kind: "file".into(),
            description: String::new(),
            local: false,
            options: opts(&[("file_path", "/x")]),
        }]
    );
    // Type and path as settings, as OpenBao reads them.
    let settings = ok(&base(
        "audit { type = \"file\" path = \"p\" options { file_path = \"stdout\" } }\n",
    ));
    assert_eq!(settings.audit[0].path, "p/");
    assert_eq!(settings.audit[0].kind, "file");
}

#[test]
fn audit_block_errors_name_the_block() {
    let cases = [
        (
            "audit \"file\" { options { file_path = \"/x\" } }",
            "server.hcl:3: audit \"file\": audit path must be specified",
        ),
        (
            "audit \"kafka\" \"k\" { }",
            "server.hcl:3: audit \"kafka\": unknown audit device type \"kafka\" (supported: file, socket, syslog)",
        ),
        (
            "audit \"file\" \"a\" { options { file_path = \"/x\" } }\naudit \"file\" \"a/\" { options { file_path = \"/y\" } }",
            "server.hcl:4: audit \"file\": two audit devices with same path (a/) exist in config",
        ),
        (
            "audit \"file\" \"a\" { options { file_path = \"/x\" } }\naudit \"file\" \"a/b\" { options { file_path = \"/y\" } }",
            "server.hcl:4: audit \"file\": path a/b/ overlaps the audit device at a/",
        ),
        (
            "audit \"file\" \"a\" {\n options { file_path = \"/x\"\n prefix = \"@cee:\" }\n}",
            "server.hcl:4: audit \"file\".options: audit log prefixing is not allowed",
        ),
        (
            "audit \"file\" \"a\" { options { file_path = \"/x\" skip_test = \"maybe\" } }",
            "server.hcl:3: audit \"file\".options: skip_test: strconv.ParseBool: parsing \"maybe\": invalid syntax",
        ),
        (
            "audit \"file\" \"a\" { options { file_path = [\"/x\"] } }",
            "server.hcl:3: audit \"file\".options.file_path: expected a string, got a list",
        ),
        (
            "audit \"file\" \"a\" { option { file_path = \"/x\" } }",
            "server.hcl:3: audit \"file\".option: unknown setting",
        ),
    ];
    for (extra, want) in cases {
        assert_eq!(err(&base(extra)), want, "{extra}");
    }
    // With allow_audit_log_prefixing the prefix is accepted.
    let text = base(
        "allow_audit_log_prefixing = true\naudit \"file\" \"a\" { options { file_path = \"/x\" prefix = \"@cee:\" } }",
    );
    assert_eq!(ok(&text).audit[0].options["prefix"], "@cee:");
}
