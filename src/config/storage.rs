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
