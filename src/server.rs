//! Starting and stopping a server: build the core, bind, serve until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::core::{Core, CoreConfig};
use crate::error::Result;
use crate::http::{DEFAULT_MAX_REQUEST_SIZE, router};
use crate::physical::inmem::InmemBackend;
use crate::secret::Secret;

/// A dev server: in-memory, unsealed, with a root token.
pub struct DevServer {
    /// The core.
    pub core: Arc<Core>,
    /// The root token.
    pub root_token: Secret,
}

impl DevServer {
    /// Builds the dev core with the given clock and optional fixed root token id.
    pub async fn new(clock: Arc<dyn Clock>, root_token_id: Option<String>) -> Result<Self> {
        let core = Core::new(Arc::new(InmemBackend::new()), clock, CoreConfig::default()).await?;
        let root_token = core.create_root_token(root_token_id).await?;
        Ok(DevServer { core, root_token })
    }

    /// Builds the dev core with the system clock.
    pub async fn with_system_clock(root_token_id: Option<String>) -> Result<Self> {
        Self::new(Arc::new(SystemClock), root_token_id).await
    }
}

/// How often expired tokens are swept, and how many at most per tick.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
const SWEEP_BATCH: usize = 500;

/// Runs the expiry sweep forever (spawn it; it stops with the runtime).
pub async fn sweep_loop(core: std::sync::Weak<Core>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let Some(core) = core.upgrade() else { return };
        match core.sweep_expired(SWEEP_BATCH).await {
            Ok(n) if n > 0 => tracing::debug!(tokens.swept = n, "revoked expired tokens"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
    }
}

/// Serves `core` on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: TcpListener,
    core: Arc<Core>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::spawn(sweep_loop(Arc::downgrade(&core)));
    let app =
        router(core, DEFAULT_MAX_REQUEST_SIZE).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
