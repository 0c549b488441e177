//! `cubbyhole/`: per-token private key/value storage.
//!
//! Each token has a random cubbyhole id; its data lives under `sys/cubbyhole/<id>/`, so no token,
//! root included, can reach another token's cubbyhole. The token store destroys a cubbyhole
//! when its token is revoked. Response wrapping keeps the wrapped response here.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::logical::{
    Backend, FieldData, FieldType as T, Operation as Op, PathSpec, PathTable, Request, Response,
};
use crate::storage::Storage;
use crate::token::TokenEntry;

type P = PathSpec<CubbyholeBackend>;

/// The cubbyhole backend.
pub struct CubbyholeBackend {
    table: PathTable<CubbyholeBackend>,
}

impl Default for CubbyholeBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CubbyholeBackend {
    /// A cubbyhole backend.
    pub fn new() -> Self {
        let table = PathTable::new(vec![
            P::new("(?P<path>.*)$")
                .field("path", T::Str, "Location of the secret.")
                .existence(|b, r, d| Box::pin(b.exists(r, d)))
                .on(Op::Read, |b, r, d| Box::pin(b.read(r, d)))
                .on(Op::Create, |b, r, d| Box::pin(b.write(r, d)))
                .on(Op::Update, |b, r, d| Box::pin(b.write(r, d)))
                .on(Op::Delete, |b, r, d| Box::pin(b.delete(r, d)))
                .on(Op::List, |b, r, d| Box::pin(b.list(r, d)))
                .help("Read, write, list and delete secrets private to the calling token."),
        ])
        .description("Per-token private secret storage; it is destroyed with its token.");
        CubbyholeBackend { table }
    }

    /// The calling token's private view.
    fn view(req: &Request) -> Result<Storage> {
        let token = req.token.as_ref().ok_or(Error::PermissionDenied)?;
        Ok(req.storage.sub(&format!("{}/", token.cubbyhole_id)))
    }

    async fn exists(&self, req: &Request, _d: &FieldData<'_>) -> Result<bool> {
        Ok(Self::view(req)?.get(&req.path).await?.is_some())
    }

    async fn read(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let Some(data) = Self::view(req)?
            .get_json::<Map<String, Value>>(&req.path)
            .await?
        else {
            return Ok(None);
        };
        let mut resp = Response::data(data);
        if req.path == "response" && req.token.as_deref().is_some_and(TokenEntry::is_wrapping) {
            resp.warnings.push(
                "Reading from 'cubbyhole/response' is deprecated. Please use sys/wrapping/unwrap to unwrap responses, as it provides additional security checks and other benefits."
                    .into(),
            );
        }
        Ok(Some(resp))
    }

    async fn write(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        if req.data.is_empty() {
            return Err(Error::bad("missing data fields"));
        }
        if req.path.is_empty() {
            return Err(Error::bad("missing path"));
        }
        Self::view(req)?.put_json(&req.path, &req.data).await?;
        Ok(None)
    }

    async fn delete(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        Self::view(req)?.delete(&req.path).await?;
        Ok(None)
    }

    async fn list(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let keys = Self::view(req)?.list(&req.path).await?;
        Ok(Some(Response::list(keys)))
    }
}

#[async_trait::async_trait]
impl Backend for CubbyholeBackend {
    async fn existence_check(&self, req: &Request) -> Result<Option<bool>> {
        self.table.existence(self, req).await
    }

    async fn handle_request(&self, req: &Request) -> Result<Option<Response>> {
        self.table.handle(self, req).await
    }
}
