//! Starting and stopping a server: build the core, bind, serve until a shutdown signal.

use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::core::{Core, CoreConfig};
use crate::error::Result;
pub use crate::http::HttpOptions;
use crate::http::{router, serve_connections};
use crate::physical::inmem::InmemBackend;
use crate::secret::Secret;

/// A dev server: in-memory, initialised with one unseal key, unsealed, with a root token.
pub struct DevServer {
    /// The core.
    pub core: Arc<Core>,
    /// The root token.
    pub root_token: Secret,
    /// The single unseal key (base64), printed in the banner like Vault's.
    pub unseal_key: Secret,
}

impl DevServer {
    /// Builds the dev core with the given clock and optional fixed root token id.
    pub async fn new(clock: Arc<dyn Clock>, root_token_id: Option<String>) -> Result<Self> {
        let config = CoreConfig {
            allow_api_audit_creation: true,
            allow_audit_log_prefixing: true,
            ..CoreConfig::default()
        };
        Self::with_config(clock, root_token_id, config).await
    }

    /// Builds the dev core with settings merged from a `-config` file (`config.dev` stays on).
    pub async fn with_config(
        clock: Arc<dyn Clock>,
        root_token_id: Option<String>,
        config: CoreConfig,
    ) -> Result<Self> {
        let config = CoreConfig {
            dev: true,
            ..config
        };
        let core = Core::new(Arc::new(InmemBackend::new()), "inmem", clock, config)?;
        let init = core.init(1, 1).await?;
        let key = init.keys_base64().into_iter().next().unwrap_or_default();
        core.unseal_part(Some(&key), false).await?;
        // Vault's dev mode hands out a fresh root token of the requested id; the one from init is
        // revoked so that exactly one root token exists.
        let root_token = match root_token_id {
            Some(id) => {
                let created = core.create_root_token(Some(id)).await?;
                if let Some(e) = core.tokens.lookup(init.root_token.expose()).await? {
                    core.revoke_token_tree(&e.key).await?;
                }
                created
            }
            None => init.root_token,
        };
        Ok(DevServer {
            core,
            root_token,
            unseal_key: Secret::new(key),
        })
    }

    /// Builds the dev core with the system clock.
    pub async fn with_system_clock(root_token_id: Option<String>) -> Result<Self> {
        Self::new(Arc::new(SystemClock), root_token_id).await
    }
}

/// How often expired tokens are swept, and how many at most per tick.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
const SWEEP_BATCH: usize = 500;

/// Backend housekeeping (AppRole's SecretID tidy) runs every this many sweep ticks (~1 minute).
const PERIODIC_EVERY: u64 = 30;

/// Runs the expiry sweep forever (spawn it; it stops with the runtime).
pub async fn sweep_loop(core: std::sync::Weak<Core>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let Some(core) = core.upgrade() else { return };
        // Histogram samples move into the Prometheus summaries, so memory stays flat.
        crate::telemetry::upkeep();
        core.spawn_usage_gauges();
        n += 1;
        if n.is_multiple_of(PERIODIC_EVERY) {
            match core.periodic().await {
                Ok(removed) if removed > 0 => {
                    tracing::debug!(entries.removed = removed, "periodic housekeeping")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "periodic housekeeping failed"),
            }
        }
        match core.sweep_expired(SWEEP_BATCH).await {
            Ok(n) if n > 0 => tracing::debug!(tokens.swept = n, "revoked expired tokens"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
    }
}

/// Reads the configuration again (SIGHUP); the error names the file.
pub type ConfigReload =
    Arc<dyn Fn() -> std::result::Result<crate::config::ServerConfig, String> + Send + Sync>;

/// Reads the config file at `path` again, as the server read it at start (`dev`: as
/// `-dev -config=FILE` reads it, storage and listeners optional). SIGHUP applies its `audit`
/// blocks and its `log_level`.
pub fn config_reload(path: std::path::PathBuf, dev: bool) -> ConfigReload {
    Arc::new(move || {
        let read = if dev {
            crate::config::ServerConfig::from_file_for_dev(&path)
        } else {
            crate::config::ServerConfig::from_file(&path)
        };
        read.map_err(|e| e.to_string())
    })
}

/// SIGHUP with a `log_level` in the file: every logger takes it, and it becomes the level
/// `DELETE sys/loggers` returns to (Vault applies the file's level on reload too).
fn reload_log_level(level: Option<&str>) {
    let (Some(raw), Some(logs)) = (level, crate::telemetry::logs::global()) else {
        return;
    };
    match crate::telemetry::logs::parse_level(raw) {
        Ok(l) => {
            logs.reconfigure(l);
            tracing::info!(level = %raw, "SIGHUP: log level set");
        }
        Err(e) => tracing::error!(error = %e, "SIGHUP: unknown log level found on reload"),
    }
}

/// Keeps the process alive past a file size limit (`ulimit -f`, systemd's `LimitFSIZE`): a
/// write beyond it then fails with `EFBIG`, which the audit devices' fail-closed rule handles,
/// instead of SIGXFSZ ending the server as its default action would. Go ignores the signal
/// too, so Vault behaves the same. The handler stays installed for the process's lifetime.
fn survive_file_size_limit() {
    #[cfg(unix)]
    if let Err(e) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(
        rustix::process::Signal::XFSZ.as_raw(),
    )) {
        tracing::warn!(error = %e, "cannot handle SIGXFSZ");
    }
}

/// On every SIGUSR1, the in-memory metrics of the last finished interval go to stderr, as
/// Vault's go-metrics sink writes them (`telemetry::dump`), gauges sampled first as a scrape
/// would.
fn dump_metrics_on_usr1(core: std::sync::Weak<Core>) {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()) {
        Ok(mut usr1) => {
            tokio::spawn(async move {
                while usr1.recv().await.is_some() {
                    let Some(core) = core.upgrade() else { return };
                    let _ = core.metrics_response("").await;
                    let text = crate::telemetry::dump(crate::clock::unix_secs(core.clock.now()));
                    let _ = tokio::task::spawn_blocking(move || {
                        use std::io::Write;
                        let mut err = std::io::stderr().lock();
                        let _ = err.write_all(text.as_bytes());
                        let _ = err.flush();
                    })
                    .await;
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot handle SIGUSR1"),
    }
}

/// On every SIGHUP, off the runtime's worker threads: re-reads the configuration's `audit`
/// blocks when `reload` is given (enabling new devices, removing dropped ones; a file that
/// does not read or a change that cannot be applied is logged and changes nothing), then
/// reopens the audit devices' files (after `logrotate` renamed them). Registered at once, so a
/// SIGHUP no longer ends the process. Also makes a file size limit fail writes rather than end
/// the process ([`survive_file_size_limit`]), and SIGUSR1 dump the metrics
/// ([`dump_metrics_on_usr1`]).
pub fn on_hangup(core: std::sync::Weak<Core>, reload: Option<ConfigReload>) {
    survive_file_size_limit();
    dump_metrics_on_usr1(core.clone());
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    let Some(core) = core.upgrade() else { return };
                    if let Some(reload) = reload.clone() {
                        tracing::info!("SIGHUP: reading the configuration again");
                        match tokio::task::spawn_blocking(move || reload()).await {
                            Ok(Ok(config)) => {
                                reload_log_level(config.log_level.as_deref());
                                core.reload_declared_audit(config.audit).await;
                            }
                            Ok(Err(e)) => {
                                tracing::error!(error = %e, "SIGHUP: could not reload the configuration");
                            }
                            Err(e) => tracing::error!(error = %e, "SIGHUP: reload failed"),
                        }
                    }
                    tracing::info!("SIGHUP: reopening audit device files");
                    let _ = tokio::task::spawn_blocking(move || core.reopen_audit()).await;
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot handle SIGHUP"),
    }
}

/// Serves `core` on `listener` until `shutdown` resolves, with the expiry sweep running; the
/// simple entry point used by `-dev` and tests.
pub async fn serve(
    listener: TcpListener,
    core: Arc<Core>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::spawn(sweep_loop(Arc::downgrade(&core)));
    on_hangup(Arc::downgrade(&core), None);
    serve_http(listener, core, &HttpOptions::default(), shutdown).await
}

/// Serves plain HTTP on one listener until `shutdown`; in-flight requests finish first.
pub async fn serve_http(
    listener: TcpListener,
    core: Arc<Core>,
    options: &HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(core.clone(), options.clone());
    serve_connections(
        listener,
        app,
        None,
        options.timeouts,
        ending(core, shutdown),
    )
    .await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. On Unix the handlers are installed when this is called, not
/// when the future is first polled: a signal that arrives right after start-up (before the task
/// awaiting it has run) then stops the server cleanly instead of ending it by default action.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            let wait = async |s: std::io::Result<tokio::signal::unix::Signal>| match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            };
            tokio::select! {
                () = wait(term) => {},
                () = wait(int) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// TLS settings of a listener.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert_file: std::path::PathBuf,
    /// PEM private key.
    pub key_file: std::path::PathBuf,
    /// Lowest protocol version: TLS 1.2 (Jenkins' Java driver may cap at it) or 1.3.
    pub min_tls13: bool,
}

/// Builds the rustls configuration (ring provider; TLS 1.2 and 1.3; ALPN h2 and http/1.1).
pub fn rustls_config(tls: &TlsSettings) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: cannot read certificate: {e}", tls.cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", tls.cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| format!("{}: cannot read private key: {e}", tls.key_file.display()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = if tls.min_tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .map_err(|e| format!("TLS configuration: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("{}: {e}", tls.cert_file.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `core` over TLS on `listener` until `shutdown` resolves; in-flight requests finish.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    core: Arc<Core>,
    tls: &TlsSettings,
    options: &HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(rustls_config(tls)?));
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let listener = TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    let app = router(core.clone(), options.clone());
    let shutdown = ending(core, shutdown);
    serve_connections(listener, app, Some(acceptor), options.timeouts, shutdown).await;
    Ok(())
}

/// `shutdown`, then the core's open streams are told to end, so that waiting for in-flight
/// responses does not wait for a `sys/monitor` client to hang up.
async fn ending(core: Arc<Core>, shutdown: impl Future<Output = ()> + Send + 'static) {
    shutdown.await;
    core.close_streams();
}
