//! `sys/plugins/catalog` (`vault plugin list`, `vault plugin info`): the plugin types Coffer has
//! built in, from the mount registry, in Vault's shapes. Coffer runs no external plugins, so
//! registering one is refused with a 400 saying so (Vault would first ask for a SHA-256), and
//! deregistering, which has nothing to remove, succeeds as Vault's does for an unknown name.
//! Listing by type and reading one entry need `sudo` (`plugins/catalog/*`), as in Vault.

use serde_json::{Value, json};

use super::SystemBackend;
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};
use crate::mounts::{BackendKind, REGISTRY};

type P = PathSpec<SystemBackend>;

/// Vault's plugin type names, in the order its untyped list walks them.
const TYPES: [&str; 3] = ["auth", "database", "secret"];

/// Built-in plugins of a catalog type, sorted.
fn builtin(kind: &str) -> Vec<&'static str> {
    let wanted = match kind {
        "auth" => BackendKind::AuthMethod,
        "secret" => BackendKind::SecretEngine,
        _ => return Vec::new(),
    };
    let mut names: Vec<&'static str> = REGISTRY
        .iter()
        .filter(|t| t.kind == wanted)
        .map(|t| t.name)
        .collect();
    names.sort_unstable();
    names
}

fn version() -> String {
    format!("v{}+builtin.coffer", env!("CARGO_PKG_VERSION"))
}

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        P::new("plugins/catalog/?$").on(Op::Read, |b, r, d| Box::pin(b.plugins(r, d))),
        P::new("plugins/catalog/(?P<type>auth|database|secret)/?$")
            .field("type", T::Str, "auth, database or secret.")
            .on(Op::List, |b, r, d| Box::pin(b.plugins_of(r, d))),
        P::new("plugins/catalog/(?P<type>auth|database|secret)/(?P<name>.+)$")
            .field("type", T::Str, "auth, database or secret.")
            .field("name", T::Str, "The plugin's name.")
            .field("sha256", T::Str, "Checksum of an external plugin's binary.")
            .field("command", T::Str, "An external plugin's command.")
            .field("version", T::Str, "The plugin's version.")
            .on(Op::Read, |b, r, d| Box::pin(b.plugin(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.plugin_register(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.plugin_deregister(r, d))),
    ]
}

impl SystemBackend {
    async fn plugins(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let mut data = serde_json::Map::new();
        let mut detailed = Vec::new();
        for kind in TYPES {
            let names = builtin(kind);
            if names.is_empty() {
                continue;
            }
            for name in &names {
                detailed.push(json!({
                    "type": kind, "name": name, "version": version(), "builtin": true,
                    "deprecation_status": "supported",
                }));
            }
            data.insert(kind.into(), json!(names));
        }
        data.insert("detailed".into(), Value::Array(detailed));
        Ok(Some(Response::data(data)))
    }

    async fn plugins_of(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let names = builtin(&d.get_str("type")?.unwrap_or_default());
        if names.is_empty() {
            return Ok(None);
        }
        Ok(Some(Response::json(json!({ "keys": names }))))
    }

    async fn plugin(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let kind = d.get_str("type")?.unwrap_or_default();
        let name = d.get_str("name")?.unwrap_or_default();
        if !builtin(&kind).contains(&name.as_str()) {
            return Ok(None);
        }
        Ok(Some(Response::json(json!({
            "args": null, "builtin": true, "command": "", "declarative": false,
            "deprecation_status": "supported", "name": name, "oci": false, "sha256": "",
            "version": version(),
        }))))
    }

    async fn plugin_register(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = d.get_str("name")?.unwrap_or_default();
        Err(Error::bad(format!(
            "Coffer runs no external plugins: {name:?} cannot be registered"
        )))
    }

    async fn plugin_deregister(
        &self,
        _req: &Request,
        _d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        Ok(None)
    }
}
