//! `audit "<type>" "<path>" { description, local, options { ... } }` blocks: audit devices the
//! configuration declares (OpenBao's declarative devices), read into [`Declared`]. The type and
//! path may also be given as `type` / `path` settings in the body, as OpenBao reads them.
//!
//! Checked here, at start and on every SIGHUP, rather than at unseal: the type, a non-empty
//! path, no path declared twice or nested in another, option values that are strings (numbers
//! and booleans are written as text, as Go's HCL decoder does), a `skip_test` Go's `ParseBool`
//! reads, and `prefix` only with `allow_audit_log_prefixing = true`. Whether the device can be
//! opened is found out when it is enabled.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ConfigError;
use super::file::{Block, Schema, Section, describe};
use crate::audit::{Declared, normalize};
use crate::hcl::{Item, Node};

const AUDIT: Schema = Schema {
    known: &["type", "path", "description", "local", "options"],
    ignored: &[],
    unsupported: &[],
    blocks: &[],
};

/// Every `audit` block, in file order.
pub(super) fn from_blocks(
    file: &str,
    blocks: &[&Block<'_>],
    allow_prefixing: bool,
) -> Result<Vec<Declared>, ConfigError> {
    let mut declared: Vec<Declared> = Vec::new();
    for block in blocks {
        let device = from_block(file, block, allow_prefixing)?;
        let setting = block.name();
        if let Some(other) = declared
            .iter()
            .find(|d| d.path.starts_with(&device.path) || device.path.starts_with(&d.path))
        {
            let problem = if other.path == device.path {
                format!(
                    "two audit devices with same path ({}) exist in config",
                    device.path
                )
            } else {
                format!(
                    "path {} overlaps the audit device at {}",
                    device.path, other.path
                )
            };
            return Err(ConfigError::new(file, &setting, block.line, problem));
        }
        declared.push(device);
    }
    Ok(declared)
}

fn from_block(
    file: &str,
    block: &Block<'_>,
    allow_prefixing: bool,
) -> Result<Declared, ConfigError> {
    let name = block.name();
    let fail = |problem: String| ConfigError::new(file, &name, block.line, problem);
    // JSON flattens `{"audit": {"file": {"a": {"options": {...}}}}}` one level too far when the
    // body holds only objects: the extra keys are put back around the body.
    let labels = block.keys.get(1..).unwrap_or_default();
    let extra = labels.get(2..).unwrap_or_default();
    let wrapped;
    let body: &[Item] = if extra.is_empty() {
        block.body(file)?
    } else {
        wrapped = rewrap(extra, block.node, block.line);
        std::slice::from_ref(&wrapped)
    };
    let section = Section::read(file, name.clone(), body, &AUDIT)?;
    let kind = match section.string("type")? {
        Some((kind, _)) if !kind.is_empty() => kind,
        _ => labels.first().cloned().unwrap_or_default(),
    };
    if kind.is_empty() {
        return Err(fail("audit type must be specified".into()));
    }
    if !matches!(kind.as_str(), "file" | "socket" | "syslog") {
        return Err(fail(format!(
            "unknown audit device type {kind:?} (supported: file, socket, syslog)"
        )));
    }
    let path = match section.string("path")? {
        Some((path, _)) if !path.is_empty() => path,
        _ => labels.get(1).cloned().unwrap_or_default(),
    };
    if path.trim_matches('/').is_empty() {
        return Err(fail("audit path must be specified".into()));
    }
    let options = match section.raw("options") {
        None => BTreeMap::new(),
        Some(raw) => options(&section, raw.node, raw.line)?,
    };
    if options.contains_key("prefix") && !allow_prefixing {
        return Err(section.error(
            "options",
            section.raw("options").map_or(block.line, |r| r.line),
            "audit log prefixing is not allowed",
        ));
    }
    if let Some(Err(e)) = options
        .get("skip_test")
        .map(|v| crate::audit::parse_bool(v))
    {
        return Err(section.error(
            "options",
            section.raw("options").map_or(block.line, |r| r.line),
            format!("skip_test: {e}"),
        ));
    }
    Ok(Declared {
        path: normalize(&path),
        kind,
        description: section
            .string("description")?
            .map(|(d, _)| d)
            .unwrap_or_default(),
        local: section.boolean("local")?.unwrap_or(false),
        options,
    })
}

/// `options { file_path = "..." mode = "0600" }`: string values; numbers and booleans as text.
fn options(
    section: &Section<'_>,
    node: &Node,
    line: usize,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let items = match node {
        Node::Object(items) => items,
        // `options = [{ ... }]`: HCL1's shape for a repeated block; one is accepted.
        Node::List(list) if list.len() == 1 => match list.first() {
            Some(Node::Object(items)) => items,
            _ => return Err(section.error("options", line, "expected a block of options")),
        },
        other => {
            return Err(section.error(
                "options",
                line,
                format!("expected a block of options, got {}", describe(other)),
            ));
        }
    };
    let mut out = BTreeMap::new();
    for item in items {
        let key = item.name();
        let value = match &item.val {
            Node::Literal(Value::String(s)) => s.clone(),
            Node::Literal(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            other => {
                return Err(section.error(
                    &format!("options.{key}"),
                    item.key_line,
                    format!("expected a string, got {}", describe(other)),
                ));
            }
        };
        if out.insert(key.to_owned(), value).is_some() {
            return Err(section.error(
                &format!("options.{key}"),
                item.key_line,
                "set more than once",
            ));
        }
    }
    Ok(out)
}

/// The body `{ k1 { k2 { ...node } } }` for keys flattened into the block's name.
fn rewrap(extra: &[String], node: &Node, line: usize) -> Item {
    let item = |key: Option<&String>, val: Node| Item {
        keys: key.cloned().into_iter().collect(),
        line,
        key_line: line,
        val,
    };
    let mut val = node.clone();
    for key in extra.iter().skip(1).rev() {
        val = Node::Object(vec![item(Some(key), val)]);
    }
    item(extra.first(), val)
}
