//! `sys/policies/acl` and the legacy `sys/policy`: ACL policy CRUD.

use base64::Engine;
use serde_json::json;

use super::SystemBackend;
use crate::core::policy_store::PolicyStore;
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<SystemBackend>;

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        P::new("policies/acl/?$").on(Op::List, |b, r, d| Box::pin(b.policy_list(r, d, false))),
        P::new("policies/acl/(?P<name>.+)$")
            .field("name", T::Str, "Policy name.")
            .field(
                "policy",
                T::Str,
                "Policy text (HCL or JSON, optionally base64).",
            )
            .on(Op::Read, |b, r, d| Box::pin(b.policy_read(r, d, false)))
            .on(Op::Update, |b, r, d| Box::pin(b.policy_write(r, d, false)))
            .on(Op::Delete, |b, r, d| Box::pin(b.policy_delete(r, d))),
        P::new("policy/?$")
            .on(Op::Read, |b, r, d| Box::pin(b.policy_list(r, d, true)))
            .on(Op::List, |b, r, d| Box::pin(b.policy_list(r, d, true))),
        P::new("policy/(?P<name>.+)$")
            .field("name", T::Str, "Policy name.")
            .field("policy", T::Str, "Policy text.")
            .field("rules", T::Str, "Deprecated alias of policy.")
            .on(Op::Read, |b, r, d| Box::pin(b.policy_read(r, d, true)))
            .on(Op::Update, |b, r, d| Box::pin(b.policy_write(r, d, true)))
            .on(Op::Delete, |b, r, d| Box::pin(b.policy_delete(r, d))),
    ]
}

impl SystemBackend {
    async fn policy_list(
        &self,
        _req: &Request,
        _d: &FieldData<'_>,
        legacy: bool,
    ) -> Result<Option<Response>> {
        let mut names = self.core()?.policies.names()?;
        names.push("root".into());
        if legacy {
            let mut resp = Response::json(json!({ "keys": names, "policies": names }));
            resp.inject_top_level = true;
            return Ok(Some(resp));
        }
        Ok(Some(Response::list(names)))
    }

    async fn policy_read(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
        legacy: bool,
    ) -> Result<Option<Response>> {
        let name = PolicyStore::normalize(&d.get_str("name")?.unwrap_or_default());
        let core = self.core()?;
        let text = if name == "root" {
            String::new()
        } else {
            match core.policies.get(&name)? {
                Some(p) if name != "response-wrapping" => p.raw.clone(),
                _ => return Ok(None),
            }
        };
        let key = if legacy { "rules" } else { "policy" };
        let mut resp = Response::json(json!({ "name": name, key: text }));
        resp.inject_top_level = legacy;
        Ok(Some(resp))
    }

    async fn policy_write(
        &self,
        _req: &Request,
        d: &FieldData<'_>,
        legacy: bool,
    ) -> Result<Option<Response>> {
        let name = PolicyStore::normalize(&d.get_str("name")?.unwrap_or_default());
        let mut warnings = Vec::new();
        let mut text = d.get_str("policy")?.unwrap_or_default();
        if legacy
            && text.is_empty()
            && let Some(rules) = d.get_str("rules")?
        {
            text = rules;
            warnings.push("'rules' is deprecated, please use 'policy' instead".to_string());
        }
        if text.trim().is_empty() {
            return Err(Error::bad("'policy' parameter not supplied or empty"));
        }
        // Vault accepts the policy base64-encoded; plain HCL never decodes as valid UTF-8 base64 text.
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.trim())
            && let Ok(decoded) = String::from_utf8(bytes)
        {
            text = decoded;
        }
        self.core()?.policies.put(&name, &text).await?;
        tracing::info!(policy.name = %name, "policy written");
        if warnings.is_empty() {
            return Ok(None);
        }
        Ok(Some(Response {
            warnings,
            ..Default::default()
        }))
    }

    async fn policy_delete(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = PolicyStore::normalize(&d.get_str("name")?.unwrap_or_default());
        self.core()?.policies.delete(&name).await?;
        Ok(None)
    }
}
