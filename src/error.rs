//! The one error type of the request path and its mapping onto Vault's wire format.
//!
//! Backends and the core return `Error`; the HTTP layer turns it into a status code and a
//! `{"errors":[...]}` body. `status()` is an exhaustive match so that adding a variant forces a
//! decision about its status code.

use axum::http::StatusCode;

/// Vault wraps most backend errors in Go's multierror text; clients print it verbatim.
pub(crate) fn multierror(msg: &str) -> String {
    format!("1 error occurred:\n\t* {msg}\n\n")
}

/// The answer while no node of an HA cluster is active (503, with `Retry-After`).
pub const NO_ACTIVE_NODE: &str = "no active node";

/// Errors that mean something to a caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid input or a request that cannot be served as asked (400).
    #[error("{0}")]
    BadRequest(String),
    /// A login refused for its credentials: a 400 with its message, which an audit entry
    /// records as Vault's `invalid credentials`.
    #[error("{0}")]
    InvalidCredentials(String),
    /// Missing, unknown, expired or revoked token (403, plain text).
    #[error("permission denied")]
    PermissionDenied,
    /// The ACL denied the request (403, multierror text as Vault prints it).
    #[error("permission denied")]
    AclDenied,
    /// A read or list of nothing (404, empty error list).
    #[error("not found")]
    NotFound,
    /// 404 with a specific message.
    #[error("{0}")]
    NotFoundMsg(String),
    /// The mount exists but no path pattern matched (404).
    #[error("unsupported path")]
    UnsupportedPath,
    /// No mount matched the request path (404).
    #[error("no handler for route {0:?}. route entry not found.")]
    NoRoute(String),
    /// The path exists but does not support the operation (405).
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// Unknown HTTP method (405, empty error list).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Wrong Content-Type, e.g. a PATCH without merge-patch (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Body over the configured limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Everything but the sealed-safe endpoints while sealed (503).
    #[error("Vault is sealed")]
    Sealed,
    /// An error whose status Vault fixes to something unusual (e.g. approle's 500s on bad CIDRs).
    #[error("{1}")]
    Coded(u16, String),
    /// Storage failed; details are logged, never sent.
    #[error("storage error: {0}")]
    Storage(crate::physical::StorageError),
    /// A bug or an unexpected state; details are logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::physical::StorageError> for Error {
    fn from(e: crate::physical::StorageError) -> Self {
        match e {
            crate::physical::StorageError::Sealed => Error::Sealed,
            crate::physical::StorageError::Fenced => Error::Coded(503, NO_ACTIVE_NODE.to_owned()),
            other @ crate::physical::StorageError::Other(_) => Error::Storage(other),
        }
    }
}

/// Result alias used across the request path.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for a 400 with a message.
    pub fn bad(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    /// Shorthand for an internal error carrying context for the log.
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }

    /// The HTTP status code of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) | Error::InvalidCredentials(_) => StatusCode::BAD_REQUEST,
            Error::PermissionDenied | Error::AclDenied => StatusCode::FORBIDDEN,
            Error::NotFound
            | Error::NotFoundMsg(_)
            | Error::UnsupportedPath
            | Error::NoRoute(_) => StatusCode::NOT_FOUND,
            Error::UnsupportedOperation | Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Sealed => StatusCode::SERVICE_UNAVAILABLE,
            Error::Coded(code, _) => {
                StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Error::Storage(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The strings of the `errors` array, exactly as Vault words them.
    pub fn messages(&self) -> Vec<String> {
        match self {
            Error::NotFound | Error::MethodNotAllowed => Vec::new(),
            Error::AclDenied => vec![multierror("permission denied")],
            Error::UnsupportedPath => vec![multierror("unsupported path")],
            Error::UnsupportedOperation => vec![multierror("unsupported operation")],
            Error::Storage(_) | Error::Internal(_) => vec!["internal error".to_string()],
            Error::BadRequest(_)
            | Error::InvalidCredentials(_)
            | Error::PermissionDenied
            | Error::NotFoundMsg(_)
            | Error::NoRoute(_)
            | Error::UnsupportedMediaType(_)
            | Error::PayloadTooLarge(_)
            | Error::Sealed
            | Error::Coded(..) => vec![self.to_string()],
        }
    }

    /// True for errors whose detail must be logged server-side (it is never sent).
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Storage(_) | Error::Internal(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_texts_match_vault() {
        let cases: Vec<(Error, u16, Vec<&str>)> = vec![
            (Error::bad("missing role_id"), 400, vec!["missing role_id"]),
            (Error::PermissionDenied, 403, vec!["permission denied"]),
            (
                Error::AclDenied,
                403,
                vec!["1 error occurred:\n\t* permission denied\n\n"],
            ),
            (Error::NotFound, 404, vec![]),
            (
                Error::NoRoute("nope/foo".into()),
                404,
                vec!["no handler for route \"nope/foo\". route entry not found."],
            ),
            (
                Error::UnsupportedPath,
                404,
                vec!["1 error occurred:\n\t* unsupported path\n\n"],
            ),
            (Error::MethodNotAllowed, 405, vec![]),
            (Error::Sealed, 503, vec!["Vault is sealed"]),
            (Error::internal("disk on fire"), 500, vec!["internal error"]),
        ];
        for (err, code, msgs) in cases {
            assert_eq!(err.status().as_u16(), code, "{err:?}");
            assert_eq!(err.messages(), msgs, "{err:?}");
        }
    }
}
