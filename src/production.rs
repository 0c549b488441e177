//! Production mode: `coffer server -config=FILE`. Durable encrypted storage, sealed at start,
//! one or more TCP listeners (plain or TLS) as the config file says.

use std::path::Path;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::{ListenerConfig, PostgresqlConfig, ServerConfig, StorageConfig, TlsVersion};
use crate::core::{Core, CoreConfig, SYSTEM_DEFAULT_TTL};
use crate::physical::Physical;
use crate::physical::inmem::InmemBackend;
use crate::physical::postgresql::{PostgresqlBackend, PostgresqlOptions, URL_ENV};
use crate::physical::redb::RedbBackend;
use crate::server::{HttpOptions, TlsSettings, serve_http, serve_tls, sweep_loop};

/// File name of the embedded database inside the configured storage directory.
pub const DB_FILE: &str = "coffer.redb";

/// Opens the configured storage engine (creating the directory, owner-only, when needed).
pub async fn open_storage(storage: &StorageConfig) -> Result<(Physical, &'static str), String> {
    match storage {
        StorageConfig::Inmem => Ok((Arc::new(InmemBackend::new()), "inmem")),
        StorageConfig::File { path } => {
            let path = path.clone();
            let engine = tokio::task::spawn_blocking(move || open_file_storage(&path))
                .await
                .map_err(|e| format!("storage: {e}"))??;
            Ok((Arc::new(engine), "file"))
        }
        StorageConfig::Postgresql(pg) => {
            let engine = open_postgresql(pg, std::env::var(URL_ENV).ok()).await?;
            Ok((Arc::new(engine), "postgresql"))
        }
    }
}

/// Opens the PostgreSQL engine; `env_url` (`VAULT_PG_CONNECTION_URL`) wins over the file's
/// `connection_url` when set and non-empty, as in Vault.
async fn open_postgresql(
    pg: &PostgresqlConfig,
    env_url: Option<String>,
) -> Result<PostgresqlBackend, String> {
    if pg.ha_enabled {
        return Err(
            "storage \"postgresql\": ha_enabled = \"true\" is not available yet: Coffer does not \
             support high availability on PostgreSQL yet; remove ha_enabled to run a single node"
                .to_owned(),
        );
    }
    let connection_url = env_url
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| pg.connection_url.clone());
    let options = PostgresqlOptions {
        connection_url,
        table: pg.table.clone(),
        max_parallel: pg.max_parallel,
        create_table: !pg.skip_create_table,
    };
    PostgresqlBackend::open(&options)
        .await
        .map_err(|e| format!("storage \"postgresql\": {e}"))
}

fn open_file_storage(dir: &Path) -> Result<RedbBackend, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("storage \"file\": cannot create {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    RedbBackend::open(&dir.join(DB_FILE))
        .map_err(|e| format!("storage \"file\": {}: {e}", dir.display()))
}

/// The core for a config: sealed, over the configured engine.
pub async fn build_core(config: &ServerConfig, clock: Arc<dyn Clock>) -> Result<Arc<Core>, String> {
    let (raw, kind) = open_storage(&config.storage).await?;
    let core_config = CoreConfig {
        default_lease_ttl: config.default_lease_ttl.unwrap_or(SYSTEM_DEFAULT_TTL),
        max_lease_ttl: config.max_lease_ttl.unwrap_or(SYSTEM_DEFAULT_TTL),
        dev: false,
        allow_api_audit_creation: config.unsafe_allow_api_audit_creation,
        allow_audit_log_prefixing: config.allow_audit_log_prefixing,
        telemetry: config
            .telemetry
            .clone()
            .unwrap_or_else(crate::telemetry::Telemetry::without_stanza),
        audit_timeout: config.audit_timeout,
        plugin_directory: config.plugin_directory.clone(),
    };
    Core::new(raw, kind, clock, core_config).map_err(|e| e.to_string())
}

/// Serves every listener of `config` until `shutdown` fires; prints Vault's start-up banner.
pub async fn run(
    config: ServerConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    for setting in &config.ignored {
        tracing::info!(config.setting = %setting, "setting {setting} is accepted but has no effect in Coffer");
    }
    let core = build_core(&config, Arc::new(SystemClock)).await?;
    let mut lines = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, l) in config.listeners.iter().enumerate() {
        lines.push(start_listener(i + 1, l, &core, &shutdown, &mut tasks)?);
    }
    tokio::spawn(sweep_loop(Arc::downgrade(&core)));
    crate::server::reopen_audit_on_hangup(Arc::downgrade(&core));
    print_banner(&config, &core, &lines);
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Err(e)) | Err(e) = joined.map_err(|e| e.to_string()) {
            result = Err(e);
        }
    }
    // Let storage close cleanly (redb flushes and releases its lock when the last handle goes).
    drop(core);
    result
}

/// Binds listener number `n` and spawns its server into `tasks` (until `shutdown` turns true);
/// returns its banner line, `Listener n: tcp (addr: "...", tls: "...")`.
pub fn start_listener(
    n: usize,
    l: &ListenerConfig,
    core: &Arc<Core>,
    shutdown: &tokio::sync::watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<Result<(), String>>,
) -> Result<String, String> {
    let std_listener = std::net::TcpListener::bind(l.address)
        .map_err(|e| format!("error listening on {}: {e}", l.address))?;
    let local = std_listener.local_addr().map_err(|e| e.to_string())?;
    let line = format!(
        "             Listener {n}: tcp (addr: \"{local}\", tls: \"{}\")",
        if l.tls.is_some() {
            "enabled"
        } else {
            "disabled"
        }
    );
    let mut rx = shutdown.clone();
    let stop = async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let core = core.clone();
    let options = HttpOptions::from(l);
    match &l.tls {
        Some(t) => {
            let tls = TlsSettings {
                cert_file: t.cert_file.clone(),
                key_file: t.key_file.clone(),
                min_tls13: matches!(t.min_version, TlsVersion::Tls13),
            };
            crate::server::rustls_config(&tls)?;
            tasks.spawn(async move { serve_tls(std_listener, core, &tls, &options, stop).await });
        }
        None => {
            std_listener
                .set_nonblocking(true)
                .map_err(|e| e.to_string())?;
            let listener =
                tokio::net::TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
            tasks.spawn(async move {
                serve_http(listener, core, &options, stop)
                    .await
                    .map_err(|e| e.to_string())
            });
        }
    }
    Ok(line)
}

fn print_banner(config: &ServerConfig, core: &Core, listeners: &[String]) {
    use std::io::Write;
    let api = config.api_addr.clone().unwrap_or_default();
    let text = format!(
        "==> Coffer server configuration:\n\n\
         \x20            Api Address: {api}\n\
         {}\n\
         \x20                Storage: {}\n\
         \x20                Version: Coffer v{}\n\n\
         ==> Coffer server started! Log data will stream in below:\n\n",
        listeners.join("\n"),
        core.storage_type,
        env!("CARGO_PKG_VERSION"),
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
