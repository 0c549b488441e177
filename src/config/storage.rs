//! The `storage "<type>" { ... }` block (or Vault's legacy spelling `backend "<type>" { ... }`):
//! exactly one per file. `inmem` keeps everything in memory (development and tests); `file`,
//! which in Vault is a directory of JSON files, becomes Coffer's embedded crash-safe engine in
//! that directory, so an existing single-node Vault config keeps its meaning. `postgresql` takes
//! Vault's keys, defaults and parsing (all values are strings to Vault; numbers are accepted too).

use std::path::PathBuf;

use serde_json::Value;

use super::ConfigError;
use super::file::{Block, Schema, Section};
use crate::hcl::Node;
use crate::physical::pg_lock::LockTimings;
use crate::physical::postgresql::{DEFAULT_HA_TABLE, DEFAULT_MAX_PARALLEL, DEFAULT_TABLE};

/// Storage types Coffer has, as named in messages.
const SUPPORTED: &str = "inmem, file, postgresql";

const INMEM: Schema = Schema {
    known: &[],
    ignored: &[],
    unsupported: &[],
    blocks: &[],
};

const FILE: Schema = Schema {
    known: &["path"],
    ignored: &[],
    unsupported: &[],
    blocks: &[],
};

const POSTGRESQL: Schema = Schema {
    known: &[
        "connection_url",
        "table",
        "max_parallel",
        "max_idle_connections",
        "ha_enabled",
        "ha_table",
        "skip_create_table",
        "ha_lock_ttl",
        "ha_lock_renew_interval",
        "ha_lock_retry_interval",
    ],
    ignored: &[],
    unsupported: &[],
    blocks: &[],
};

/// `storage "postgresql" { ... }` as written (`VAULT_PG_CONNECTION_URL` is applied at start-up).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresqlConfig {
    /// The database URL or keyword DSN; empty when not set in the file. Can hold a password:
    /// never printed (see the `Debug` impl).
    pub connection_url: String,
    /// Data table, default `vault_kv_store`.
    pub table: String,
    /// Maximum open connections, default 128.
    pub max_parallel: usize,
    /// Vault's idle-connection limit: parsed, without effect (the pool keeps its connections).
    pub max_idle_connections: Option<i64>,
    /// HA, on only when the value is exactly `"true"` (Vault's rule).
    pub ha_enabled: bool,
    /// Lock table, default `vault_ha_locks`.
    pub ha_table: String,
    /// OpenBao's `skip_create_table`: do not create the table when it is missing.
    pub skip_create_table: bool,
    /// Coffer's HA lock timings (`ha_lock_ttl`, `ha_lock_renew_interval`,
    /// `ha_lock_retry_interval`); Vault's are 15s / 5s / 1s.
    pub ha_timings: LockTimings,
}

impl std::fmt::Debug for PostgresqlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresqlConfig")
            .field("connection_url", &"<redacted>")
            .field("table", &self.table)
            .field("max_parallel", &self.max_parallel)
            .field("max_idle_connections", &self.max_idle_connections)
            .field("ha_enabled", &self.ha_enabled)
            .field("ha_table", &self.ha_table)
            .field("skip_create_table", &self.skip_create_table)
            .field("ha_timings", &self.ha_timings)
            .finish()
    }
}

/// Where the server keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// Everything in memory, lost on exit (`storage "inmem" {}`).
    Inmem,
    /// The embedded engine in the directory `path` (`storage "file" { path = "..." }`).
    File {
        /// Data directory.
        path: PathBuf,
    },
    /// A PostgreSQL database (`storage "postgresql" { connection_url = "..." }`).
    Postgresql(PostgresqlConfig),
}

/// The storage of a file from its `storage` and `backend` blocks: exactly one is required.
pub(super) fn from_blocks(file: &str, blocks: &[&Block<'_>]) -> Result<StorageConfig, ConfigError> {
    let block = match blocks {
        [] => {
            return Err(ConfigError::new(
                file,
                "storage",
                0,
                "no storage block; add one such as storage \"file\" { path = \"/var/lib/coffer\" }",
            ));
        }
        [one] => one,
        [first, second, ..] => {
            return Err(ConfigError::new(
                file,
                second.kind,
                second.line,
                format!(
                    "only one storage block is allowed (storage or backend), found {} (the first on line {})",
                    blocks.len(),
                    first.line
                ),
            ));
        }
    };
    let Some(kind) = block.label else {
        return Err(ConfigError::new(
            file,
            block.kind,
            block.line,
            format!(
                "the storage type must be given, as in {} \"file\" {{ ... }}",
                block.kind
            ),
        ));
    };
    match kind {
        "inmem" => {
            Section::read(file, block.name(), block.body(file)?, &INMEM)?;
            Ok(StorageConfig::Inmem)
        }
        "file" => {
            let section = Section::read(file, block.name(), block.body(file)?, &FILE)?;
            match section.string("path")? {
                Some((path, _)) if !path.trim().is_empty() => Ok(StorageConfig::File {
                    path: PathBuf::from(path),
                }),
                Some((_, line)) => Err(section.error("path", line, "must not be empty")),
                None => Err(section.error(
                    "path",
                    block.line,
                    "must be set: the directory where Coffer keeps its data",
                )),
            }
        }
        "postgresql" => {
            let section = Section::read(file, block.name(), block.body(file)?, &POSTGRESQL)?;
            postgresql(&section).map(StorageConfig::Postgresql)
        }
        other => Err(ConfigError::new(
            file,
            &block.name(),
            block.line,
            format!("storage type {other:?} is not supported by Coffer (supported: {SUPPORTED})"),
        )),
    }
}

/// A setting as the string Vault would see (HCL numbers and booleans turned into their text).
fn text(section: &Section<'_>, key: &str) -> Result<Option<(String, usize)>, ConfigError> {
    let Some(raw) = section.raw(key) else {
        return Ok(None);
    };
    match raw.node {
        Node::Literal(Value::Number(n)) => Ok(Some((n.to_string(), raw.line))),
        Node::Literal(Value::Bool(b)) => Ok(Some((b.to_string(), raw.line))),
        _ => section.string(key),
    }
}

/// A count as Vault parses one (`strconv.Atoi`): `failed parsing <key> parameter: ...`.
fn count(section: &Section<'_>, key: &str) -> Result<Option<i64>, ConfigError> {
    let Some((value, line)) = text(section, key)? else {
        return Ok(None);
    };
    match value.parse::<i64>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(section.error(
            key,
            line,
            format!("failed parsing {key} parameter: invalid syntax: {value:?}"),
        )),
    }
}

fn postgresql(section: &Section<'_>) -> Result<PostgresqlConfig, ConfigError> {
    let string = |key: &str, default: &str| -> Result<String, ConfigError> {
        Ok(match text(section, key)? {
            Some((v, _)) if !v.is_empty() => v,
            _ => default.to_owned(),
        })
    };
    // Vault: a value <= 0 falls back to the default pool size.
    let max_parallel = match count(section, "max_parallel")? {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(DEFAULT_MAX_PARALLEL),
        _ => DEFAULT_MAX_PARALLEL,
    };
    let ha_enabled = text(section, "ha_enabled")?.is_some_and(|(v, _)| v == "true");
    Ok(PostgresqlConfig {
        connection_url: string("connection_url", "")?,
        table: string("table", DEFAULT_TABLE)?,
        max_parallel,
        max_idle_connections: count(section, "max_idle_connections")?,
        ha_enabled,
        ha_table: string("ha_table", DEFAULT_HA_TABLE)?,
        skip_create_table: section.boolean("skip_create_table")?.unwrap_or(false),
        ha_timings: lock_timings(section)?,
    })
}

/// A positive duration with sub-second precision (`"500ms"`, `"8s"`, `8`).
fn precise_duration(
    section: &Section<'_>,
    key: &str,
) -> Result<Option<(std::time::Duration, usize)>, ConfigError> {
    let Some((value, line)) = text(section, key)? else {
        return Ok(None);
    };
    let nanos = crate::logical::duration::parse_duration_nanos(&value)
        .map_err(|e| section.error(key, line, format!("invalid duration: {e}")))?;
    let nanos = u64::try_from(nanos)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| section.error(key, line, "must be a positive duration"))?;
    Ok(Some((std::time::Duration::from_nanos(nanos), line)))
}

/// The lock timings: defaults from [`LockTimings::default`]; the renewal must come well before
/// the lease ends (at most a third of it), and the retry interval within the lease.
fn lock_timings(section: &Section<'_>) -> Result<LockTimings, ConfigError> {
    let default = LockTimings::default();
    let ttl = precise_duration(section, "ha_lock_ttl")?;
    let renew = precise_duration(section, "ha_lock_renew_interval")?;
    let retry = precise_duration(section, "ha_lock_retry_interval")?;
    let timings = LockTimings {
        ttl: ttl.map_or(default.ttl, |t| t.0),
        renew: renew.map_or(default.renew, |t| t.0),
        retry: retry.map_or(default.retry, |t| t.0),
    };
    if timings.renew.saturating_mul(3) > timings.ttl {
        let line = renew.or(ttl).map_or(0, |t| t.1);
        return Err(section.error(
            "ha_lock_renew_interval",
            line,
            format!(
                "must be at most a third of ha_lock_ttl ({:?} renewal, {:?} lease)",
                timings.renew, timings.ttl
            ),
        ));
    }
    if timings.retry > timings.ttl {
        let line = retry.map_or(0, |t| t.1);
        return Err(section.error(
            "ha_lock_retry_interval",
            line,
            "must not be longer than ha_lock_ttl",
        ));
    }
    Ok(timings)
}

#[cfg(test)]
mod tests {
    use super::super::ServerConfig;
    use super::*;

    const LISTENER: &str = "listener \"tcp\" { tls_disable = true }";

    /// `storage` text first (line 1 on), the listener after it.
    fn storage(text: &str) -> Result<StorageConfig, String> {
        let config = format!("{text}\n{LISTENER}");
        ServerConfig::parse_unchecked(&config, "s.hcl")
            .map(|c| c.storage)
            .map_err(|e| e.to_string())
    }

    fn file(path: &str) -> Result<StorageConfig, String> {
        Ok(StorageConfig::File {
            path: PathBuf::from(path),
        })
    }

    #[test]
    fn storage_types() {
        assert_eq!(storage("storage \"inmem\" {}"), Ok(StorageConfig::Inmem));
        assert_eq!(
            storage("storage \"file\" { path = \"/var/lib/coffer\" }"),
            file("/var/lib/coffer")
        );
        assert_eq!(
            storage("backend \"file\" {\n  path = \"data\"\n}"),
            file("data")
        );
        assert_eq!(
            storage("\"storage\" \"file\" { \"path\" = \"/d\" }"),
            file("/d")
        );
        let json =
            r#"{"storage": {"file": {"path": "/j"}}, "listener": {"tcp": {"tls_disable": "1"}}}"#;
        let parsed = ServerConfig::parse_unchecked(json, "s.json").map(|c| c.storage);
        assert_eq!(parsed.map_err(|e| e.to_string()), file("/j"));
    }

    fn pg(url: &str) -> PostgresqlConfig {
        PostgresqlConfig {
            connection_url: url.to_owned(),
            table: "vault_kv_store".to_owned(),
            max_parallel: 128,
            max_idle_connections: None,
            ha_enabled: false,
            ha_table: "vault_ha_locks".to_owned(),
            skip_create_table: false,
            ha_timings: LockTimings::default(),
        }
    }

    #[test]
    fn ha_lock_timings() {
        let parsed = |body: &str| match storage(&format!("storage \"postgresql\" {{\n{body}\n}}")) {
            Ok(StorageConfig::Postgresql(c)) => Ok(c.ha_timings),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e),
        };
        let s = std::time::Duration::from_millis;
        assert_eq!(parsed(""), Ok(LockTimings::default()));
        assert_eq!(
            parsed(
                "ha_lock_ttl = \"15s\"\nha_lock_renew_interval = \"5s\"\nha_lock_retry_interval = \"1s\""
            ),
            Ok(LockTimings {
                ttl: s(15_000),
                renew: s(5_000),
                retry: s(1_000)
            })
        );
        assert_eq!(
            parsed(
                "ha_lock_ttl = 3\nha_lock_renew_interval = \"500ms\"\nha_lock_retry_interval = \"200ms\""
            ),
            Ok(LockTimings {
                ttl: s(3_000),
                renew: s(500),
                retry: s(200)
            })
        );
        for bad in [
            "ha_lock_ttl = \"3s\"",
            "ha_lock_ttl = \"0s\"",
            "ha_lock_renew_interval = \"abc\"",
            "ha_lock_retry_interval = \"1m\"",
        ] {
            assert!(parsed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn postgresql_settings_as_vault_reads_them() {
        let parsed = |body: &str| match storage(&format!("storage \"postgresql\" {{\n{body}\n}}")) {
            Ok(StorageConfig::Postgresql(c)) => Ok(c),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e),
        };
        let url = "postgres://u:pw@db:5432/vault?sslmode=disable";
        assert_eq!(parsed(&format!("connection_url = \"{url}\"")), Ok(pg(url)));
        // connection_url may come from VAULT_PG_CONNECTION_URL at start-up.
        assert_eq!(parsed(""), Ok(pg("")));
        let full = parsed(
            "connection_url = \"u\"\ntable = \"kv\"\nmax_parallel = \"16\"\n\
             max_idle_connections = \"4\"\nha_enabled = \"true\"\nha_table = \"locks\"\n\
             skip_create_table = \"true\"",
        );
        let want = PostgresqlConfig {
            table: "kv".to_owned(),
            max_parallel: 16,
            max_idle_connections: Some(4),
            ha_enabled: true,
            ha_table: "locks".to_owned(),
            skip_create_table: true,
            ..pg("u")
        };
        assert_eq!(full, Ok(want));
        // HA only with exactly "true"; numbers as well as strings; <= 0 means the default.
        for off in ["\"1\"", "\"TRUE\"", "\"yes\"", "false"] {
            assert_eq!(
                parsed(&format!("ha_enabled = {off}")).map(|c| c.ha_enabled),
                Ok(false),
                "{off}"
            );
        }
        assert_eq!(parsed("ha_enabled = true").map(|c| c.ha_enabled), Ok(true));
        assert_eq!(parsed("max_parallel = 7").map(|c| c.max_parallel), Ok(7));
        assert_eq!(
            parsed("max_parallel = \"0\"").map(|c| c.max_parallel),
            Ok(128)
        );
        assert_eq!(
            parsed("max_parallel = \"lots\""),
            Err("s.hcl:2: storage \"postgresql\".max_parallel: failed parsing max_parallel parameter: invalid syntax: \"lots\"".to_owned())
        );
        assert_eq!(
            parsed("max_idle_connections = \"x\""),
            Err("s.hcl:2: storage \"postgresql\".max_idle_connections: failed parsing max_idle_connections parameter: invalid syntax: \"x\"".to_owned())
        );
        assert_eq!(
            parsed("path = \"/d\""),
            Err("s.hcl:2: storage \"postgresql\".path: unknown setting".to_owned())
        );
        // The password never shows in Debug output.
        let shown = format!("{:?}", pg(url));
        assert!(!shown.contains("pw"), "{shown}");
    }

    #[test]
    fn storage_errors() {
        let cases = [
            (
                "storage \"raft\" { path = \"/x\" node_id = \"a\" }",
                "s.hcl:1: storage \"raft\": storage type \"raft\" is not supported by Coffer (supported: inmem, file, postgresql)",
            ),
            (
                "backend \"consul\" {}",
                "s.hcl:1: backend \"consul\": storage type \"consul\" is not supported by Coffer (supported: inmem, file, postgresql)",
            ),
            (
                "",
                "s.hcl: storage: no storage block; add one such as storage \"file\" { path = \"/var/lib/coffer\" }",
            ),
            (
                "storage \"inmem\" {}\nstorage \"file\" { path = \"/d\" }",
                "s.hcl:2: storage: only one storage block is allowed (storage or backend), found 2 (the first on line 1)",
            ),
            (
                "backend \"file\" { path = \"/d\" }\n\nstorage \"file\" { path = \"/d\" }",
                "s.hcl:3: storage: only one storage block is allowed (storage or backend), found 2 (the first on line 1)",
            ),
            (
                "storage \"file\" {}",
                "s.hcl:1: storage \"file\".path: must be set: the directory where Coffer keeps its data",
            ),
            (
                "storage \"file\" {\n  path = \"\"\n}",
                "s.hcl:2: storage \"file\".path: must not be empty",
            ),
            (
                "storage \"file\" { path = [\"/d\"] }",
                "s.hcl:1: storage \"file\".path: expected a string, got a list",
            ),
            (
                "storage \"file\" {\n  path = \"/d\"\n  max_size = 3\n}",
                "s.hcl:3: storage \"file\".max_size: unknown setting",
            ),
            (
                "storage \"inmem\" { path = \"/d\" }",
                "s.hcl:1: storage \"inmem\".path: unknown setting",
            ),
            (
                "storage {\n  file { path = \"/d\" }\n}",
                "s.hcl:1: storage: the storage type must be given, as in storage \"file\" { ... }",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(storage(text), Err(want.to_owned()), "{text}");
        }
    }
}
