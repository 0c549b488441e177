//! `sys/audit` (list, enable, disable audit devices) and `sys/audit-hash/<path>`.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::SystemBackend;
use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<SystemBackend>;

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        // Read only, without a trailing slash: Vault answers `LIST sys/audit` (which arrives
        // as `sys/audit/`) with 404 `unsupported path`.
        P::new("audit$").on(Op::Read, |b, r, d| Box::pin(b.audit_list(r, d))),
        P::new("audit/(?P<path>.+)$")
            .field("path", T::Str, "Path of the audit device.")
            .field("type", T::Str, "Device type (file).")
            .field("description", T::Str, "Free text.")
            .field("options", T::KvPairs, "Device options.")
            .field("local", T::Bool, "Not replicated.")
            .on(Op::Update, |b, r, d| Box::pin(b.audit_enable(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.audit_disable(r, d))),
        P::new("config/auditing/request-headers/?$")
            .on(Op::Read, |b, r, d| Box::pin(b.audited_headers_list(r, d))),
        P::new("config/auditing/request-headers/(?P<header>.+)$")
            .field("header", T::Str, "The request header to audit.")
            .field(
                "hmac",
                T::Bool,
                "HMAC the header's values in audit entries.",
            )
            .on(Op::Read, |b, r, d| Box::pin(b.audited_header_read(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.audited_header_write(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.audited_header_write(r, d))),
        P::new("audit-hash/(?P<path>.+)$")
            .field("path", T::Str, "Path of the audit device.")
            .field("input", T::Str, "The value to hash.")
            .on(Op::Update, |b, r, d| Box::pin(b.audit_hash(r, d))),
    ]
}

/// `{"<name>": {"hmac": bool}, ...}`, as Vault lists audited headers.
fn audited_headers_json<'a>(headers: impl Iterator<Item = (&'a String, &'a bool)>) -> Value {
    Value::Object(
        headers
            .map(|(name, hmac)| (name.clone(), json!({ "hmac": hmac })))
            .collect(),
    )
}

impl SystemBackend {
    /// `GET sys/config/auditing/request-headers`.
    async fn audited_headers_list(
        &self,
        _req: &Request,
        _d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let headers = self.core()?.audit.audited_headers();
        let mut resp = Response::json(json!({ "headers": audited_headers_json(headers.iter()) }));
        resp.inject_top_level = true;
        Ok(Some(resp))
    }

    /// `GET sys/config/auditing/request-headers/<name>`.
    async fn audited_header_read(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        // Looked up in lower case, answered under the name as asked (as Vault does).
        let name = d.get_str("header")?.unwrap_or_default();
        let headers = self.core()?.audit.audited_headers();
        let Some(hmac) = headers.get(&name.to_ascii_lowercase()) else {
            return Err(Error::bad("Could not find header in config"));
        };
        let mut resp = Response::json(audited_headers_json(std::iter::once((&name, hmac))));
        resp.inject_top_level = true;
        Ok(Some(resp))
    }

    /// `PUT sys/config/auditing/request-headers/<name>` with `hmac`, and `DELETE` (204 also
    /// when it was not there).
    async fn audited_header_write(
        &self,
        req: &Request,
        d: &FieldData<'_>,
    ) -> Result<Option<Response>> {
        let name = d.get_str("header")?.unwrap_or_default();
        if name.is_empty() {
            return Err(Error::bad("missing header name"));
        }
        let hmac = match req.operation {
            Op::Delete => None,
            _ => Some(d.get_bool("hmac")?.unwrap_or(false)),
        };
        let core = self.core()?;
        core.audit
            .set_audited_header(&core.storage(""), &name, hmac)
            .await?;
        Ok(None)
    }

    async fn audit_list(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let mut data = Map::new();
        for d in self.core()?.audit.devices().iter() {
            let e = &d.entry;
            data.insert(
                e.path.clone(),
                json!({"type": e.kind, "description": e.description, "options": e.options,
                       "local": e.local, "path": e.path}),
            );
        }
        let mut resp = Response::data(data);
        resp.inject_top_level = true;
        Ok(Some(resp))
    }

    async fn audit_enable(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        if !core.config.allow_api_audit_creation {
            return Err(Error::bad(
                "cannot enable audit device via API; use declarative, config-based audit device management instead",
            ));
        }
        let mut options: BTreeMap<String, String> = BTreeMap::new();
        if let Some(Value::Object(o)) = d.get_raw("options") {
            for (k, v) in o {
                // Vault's options are strings; a JSON boolean becomes "1" or "0" (Go's weak
                // decoding), as `sys/audit` then lists it.
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
                    other => other.to_string(),
                };
                options.insert(k.clone(), v);
            }
        } else if let Some(pairs) = d.get_kv_pairs("options")? {
            options = pairs;
        }
        if options.contains_key("prefix") && !core.config.allow_audit_log_prefixing {
            return Err(Error::bad("audit log prefixing is not allowed"));
        }
        let skip_test = match options.get("skip_test").map(String::as_str) {
            None => false,
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => true,
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => false,
            Some(v) => {
                return Err(Error::bad(format!(
                    "strconv.ParseBool: parsing \"{v}\": invalid syntax"
                )));
            }
        };
        let path = d.get_str("path")?.unwrap_or_default();
        if path.trim_matches('/').is_empty() {
            return Err(Error::bad("audit device path must be specified"));
        }
        let entry = AuditEntry {
            path,
            kind: d.get_str("type")?.unwrap_or_default(),
            description: d.get_str("description")?.unwrap_or_default(),
            options,
            local: d.get_bool("local")?.unwrap_or(false),
            uuid: String::new(),
            declared: false,
        };
        core.audit
            .enable(&core.storage(""), entry, skip_test)
            .await?;
        core.install_audit();
        Ok(None)
    }

    async fn audit_disable(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let path = d.get_str("path")?.unwrap_or_default();
        if path.trim_matches('/').is_empty() {
            return Err(Error::bad("audit device path must be specified"));
        }
        core.audit.disable(&core.storage(""), &path).await?;
        core.install_audit();
        Ok(None)
    }

    async fn audit_hash(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let core = self.core()?;
        let path = d.get_str("path")?.unwrap_or_default();
        let input = d.get_str("input")?.unwrap_or_default();
        if input.is_empty() {
            return Err(Error::bad("the \"input\" parameter is empty"));
        }
        let Some(device) = core.audit.device(&path) else {
            return Err(Error::bad(format!(
                "unknown audit backend \"{}\"",
                crate::audit::normalize(&path)
            )));
        };
        // Vault also copies `hash` to the top level of the body.
        let mut resp = Response::json(json!({"hash": device.hash(&input)}));
        resp.inject_top_level = true;
        Ok(Some(resp))
    }
}
