//! Response wrapping: a response is stored whole in the cubbyhole of a single-use
//! `response-wrapping` token, and the client receives only `wrap_info`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Core;
use super::pipeline::Outcome;
use super::render::render;
use super::token_issue::IssueRequest;
use crate::clock::{from_unix_nanos, rfc3339_nanos};
use crate::error::{Error, Result};
use crate::logical::Response;
use crate::storage::Storage;
use crate::token::TokenEntry;

const RESPONSE_KEY: &str = "response";
const WRAPINFO_KEY: &str = "wrapinfo";

/// The message for every invalid wrapping token.
pub const INVALID_WRAPPING_TOKEN: &str = "wrapping token is not valid or does not exist";

/// What `sys/wrapping/lookup` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrapInfo {
    /// TTL the token was created with, seconds.
    pub creation_ttl: i64,
    /// RFC 3339 creation time.
    pub creation_time: String,
    /// The path whose response is wrapped.
    pub creation_path: String,
}

impl Core {
    fn cubbyhole_of(&self, entry: &TokenEntry) -> Storage {
        self.storage(crate::mounts::CUBBYHOLE_PREFIX)
            .sub(&format!("{}/", entry.cubbyhole_id))
    }

    /// Stores `body` under a new wrapping token and returns the `wrap_info` object.
    pub async fn create_wrapping_token(
        &self,
        body: &str,
        ttl: i64,
        creation_path: &str,
        display_name: &str,
        wrapped_accessor: Option<&str>,
    ) -> Result<Value> {
        let created = self
            .issue_token(IssueRequest::wrapping(ttl, creation_path, display_name))
            .await?;
        let creation_time = rfc3339_nanos(from_unix_nanos(created.entry.creation_nanos));
        let info = WrapInfo {
            creation_ttl: ttl,
            creation_time: creation_time.clone(),
            creation_path: creation_path.into(),
        };
        let cubby = self.cubbyhole_of(&created.entry);
        cubby
            .put_json(RESPONSE_KEY, &json!({ "response": body }))
            .await?;
        cubby.put_json(WRAPINFO_KEY, &info).await?;
        let mut wrap_info = json!({
            "token": created.token.expose(),
            "accessor": created.accessor,
            "ttl": ttl,
            "creation_time": creation_time,
            "creation_path": creation_path,
        });
        if let Some(acc) = wrapped_accessor.filter(|a| !a.is_empty())
            && let Some(o) = wrap_info.as_object_mut()
        {
            o.insert("wrapped_accessor".into(), json!(acc));
        }
        Ok(wrap_info)
    }

    /// Replaces a servable outcome by its wrapped form; empty and error-like outcomes pass through.
    pub async fn wrap_outcome(
        &self,
        mut out: Outcome,
        ttl: i64,
        creation_path: &str,
        display_name: &str,
    ) -> Result<Outcome> {
        let rendered = render(&out);
        let Some(body) = rendered.body.filter(|_| rendered.status == 200) else {
            return Ok(out);
        };
        if out.response.as_ref().is_some_and(|r| r.wrap_info.is_some()) {
            return Ok(out);
        }
        let wrapped_accessor = out
            .auth
            .as_ref()
            .and_then(|a| a["accessor"].as_str().map(str::to_string))
            .or_else(|| {
                out.response
                    .as_ref()
                    .and_then(|r| r.wrapped_accessor.clone())
            });
        let info = self
            .create_wrapping_token(
                &body,
                ttl,
                creation_path,
                display_name,
                wrapped_accessor.as_deref(),
            )
            .await?;
        out.auth = None;
        let wrapped_warnings = out.response.take().map(|r| r.warnings).unwrap_or_default();
        out.response = Some(Response {
            wrap_info: Some(info),
            wrapped_warnings,
            ..Default::default()
        });
        Ok(out)
    }

    /// Vault's first step of an unwrap, rewrap or lookup: the wrapping token (the body's
    /// `token`, else the request's own token) must be a live wrapping token. Nothing is used
    /// up here. A `token` that is empty or not a string is a 403 as in Vault.
    pub(super) async fn check_wrapping_token(
        &self,
        data: &serde_json::Map<String, Value>,
        client_token: Option<&crate::secret::Secret>,
    ) -> Result<()> {
        let refused =
            |why: &str| Error::Coded(403, format!("error validating wrapping token: {why}"));
        let token = match data.get("token") {
            None | Some(Value::Null) => client_token.map(crate::secret::Secret::expose),
            Some(Value::String(s)) if s.is_empty() => {
                return Err(refused("empty token in request body"));
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(refused("could not decode token in request body")),
        };
        match token.filter(|t| !t.is_empty()) {
            Some(t) => self.wrapping_entry(t).await.map(|_| ()),
            None => Err(refused("token is empty")),
        }
    }

    /// The live wrapping token `token`, or the 400 every invalid wrapping token gets.
    pub async fn wrapping_entry(&self, token: &str) -> Result<TokenEntry> {
        match self.tokens.lookup(token).await? {
            Some(e) if is_wrapping(&e) => Ok(e),
            _ => Err(Error::bad(INVALID_WRAPPING_TOKEN)),
        }
    }

    /// Consumes a wrapping token's single use (atomically: one caller wins).
    pub async fn consume_wrapping_token(&self, token: &str) -> Result<TokenEntry> {
        let entry = self.wrapping_entry(token).await?;
        match self.tokens.use_token(std::sync::Arc::new(entry)).await? {
            Some((e, _)) => Ok(std::sync::Arc::unwrap_or_clone(e)),
            None => Err(Error::bad(INVALID_WRAPPING_TOKEN)),
        }
    }

    /// The stored response and wrap info of a wrapping token.
    pub async fn wrapped_response(&self, entry: &TokenEntry) -> Result<(String, WrapInfo)> {
        let cubby = self.cubbyhole_of(entry);
        let body: Option<Value> = cubby.get_json(RESPONSE_KEY).await?;
        let info: Option<WrapInfo> = cubby.get_json(WRAPINFO_KEY).await?;
        match (body, info) {
            (Some(b), Some(i)) => Ok((
                b.get("response")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                i,
            )),
            _ => Err(Error::bad(INVALID_WRAPPING_TOKEN)),
        }
    }

    /// The wrap info of a wrapping token, without consuming it.
    pub async fn wrapping_lookup(&self, token: &str) -> Result<WrapInfo> {
        let entry = self.wrapping_entry(token).await?;
        Ok(self.wrapped_response(&entry).await?.1)
    }
}

/// True for a token whose only policy is `response-wrapping`.
pub fn is_wrapping(e: &TokenEntry) -> bool {
    e.is_wrapping()
}
