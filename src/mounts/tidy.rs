//! What the backends' tidy endpoints share (`auth/token/tidy`, AppRole's `tidy/secret-id`):
//! one pass at a time, and Vault's answers.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::logical::Response;

/// A running tidy pass: marks its flag for as long as it lives, however the pass ends.
pub(crate) struct Pass<'a>(&'a AtomicBool);

impl<'a> Pass<'a> {
    /// Starts a pass, or `None` while another one holds `flag`.
    pub(crate) fn start(flag: &'a AtomicBool) -> Option<Pass<'a>> {
        flag.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| Pass(flag))
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Vault's answer while a pass runs: a 200 with a warning.
pub(crate) fn in_progress() -> Response {
    Response::default().with_warning("Tidy operation already in progress.")
}

/// Vault's answer to a tidy it started: a 202 with a warning.
pub(crate) fn started() -> Response {
    let mut resp = Response::default().with_warning(
        "Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs.",
    );
    resp.status = Some(202);
    resp
}
