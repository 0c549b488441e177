//! The `storage "<type>" { ... }` block (or Vault's legacy spelling `backend "<type>" { ... }`):
//! exactly one per file. `inmem` keeps everything in memory (development and tests); `file`,
//! which in Vault is a directory of JSON files, becomes Coffer's embedded crash-safe engine in
//! that directory, so an existing single-node Vault config keeps its meaning.

use std::path::PathBuf;

use super::ConfigError;
use super::file::{Block, Schema, Section};

/// Storage types Coffer has, as named in messages.
const SUPPORTED: &str = "inmem, file";

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
        other => Err(ConfigError::new(
            file,
            &block.name(),
            block.line,
            format!("storage type {other:?} is not supported by Coffer (supported: {SUPPORTED})"),
        )),
    }
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

    #[test]
    fn storage_errors() {
        let cases = [
            (
                "storage \"raft\" { path = \"/x\" node_id = \"a\" }",
                "s.hcl:1: storage \"raft\": storage type \"raft\" is not supported by Coffer (supported: inmem, file)",
            ),
            (
                "backend \"consul\" {}",
                "s.hcl:1: backend \"consul\": storage type \"consul\" is not supported by Coffer (supported: inmem, file)",
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
