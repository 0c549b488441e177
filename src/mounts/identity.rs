//! The `identity/` mount. Coffer keeps no identity entities yet; the mount exists so that mount
//! listings look like Vault's, and every path under it answers "unsupported path".

use crate::error::{Error, Result};
use crate::logical::{Backend, Request, Response};

/// The identity placeholder backend.
pub struct IdentityBackend;

#[async_trait::async_trait]
impl Backend for IdentityBackend {
    async fn existence_check(&self, _req: &Request) -> Result<Option<bool>> {
        Ok(None)
    }

    async fn handle_request(&self, _req: &Request) -> Result<Option<Response>> {
        Err(Error::UnsupportedPath)
    }
}
