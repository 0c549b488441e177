//! Production mode: `coffer server -config=FILE`. Durable encrypted storage, sealed at start,
//! one or more TCP listeners (plain or TLS) as the config file says.

use std::path::Path;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::{ListenerConfig, PostgresqlConfig, ServerConfig, StorageConfig, TlsVersion};
use crate::core::{Core, CoreConfig, SYSTEM_DEFAULT_TTL};
use crate::ha::{Ha, HaSettings};
use crate::physical::Physical;
use crate::physical::inmem::InmemBackend;
use crate::physical::pg_lock::PgLock;
use crate::physical::postgresql::{Fence, PostgresqlBackend, PostgresqlOptions, URL_ENV};
use crate::physical::redb::RedbBackend;
use crate::server::{HttpOptions, TlsSettings, serve_http, serve_tls, sweep_loop};

/// File name of the embedded database inside the configured storage directory.
pub const DB_FILE: &str = "coffer.redb";

/// The HA pieces of a PostgreSQL engine opened with `ha_enabled = "true"`.
pub struct HaParts {
    /// The lock, on its own connection.
    pub lock: PgLock,
    /// The fence the engine conditions every write on.
    pub fence: Arc<Fence>,
}

/// Opens the configured storage engine (creating the directory, owner-only, when needed).
pub async fn open_storage(storage: &StorageConfig) -> Result<(Physical, &'static str), String> {
    open_storage_ha(storage).await.map(|(p, k, _)| (p, k))
}

/// [`open_storage`], plus the HA lock and fence when the engine has HA enabled.
pub async fn open_storage_ha(
    storage: &StorageConfig,
) -> Result<(Physical, &'static str, Option<HaParts>), String> {
    match storage {
        StorageConfig::Inmem => Ok((Arc::new(InmemBackend::new()), "inmem", None)),
        StorageConfig::File { path } => {
            let path = path.clone();
            let engine = tokio::task::spawn_blocking(move || open_file_storage(&path))
                .await
                .map_err(|e| format!("storage: {e}"))??;
            Ok((Arc::new(engine), "file", None))
        }
        StorageConfig::Postgresql(pg) => {
            let engine = open_postgresql(pg, std::env::var(URL_ENV).ok()).await?;
            let ha = match (engine.lock(pg.ha_timings), engine.fence()) {
                (Some(lock), Some(fence)) => Some(HaParts { lock, fence }),
                _ => None,
            };
            Ok((Arc::new(engine), "postgresql", ha))
        }
    }
}

/// Opens the PostgreSQL engine; `env_url` (`VAULT_PG_CONNECTION_URL`) wins over the file's
/// `connection_url` when set and non-empty, as in Vault.
async fn open_postgresql(
    pg: &PostgresqlConfig,
    env_url: Option<String>,
) -> Result<PostgresqlBackend, String> {
    let connection_url = env_url
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| pg.connection_url.clone());
    let options = PostgresqlOptions {
        connection_url,
        table: pg.table.clone(),
        max_parallel: pg.max_parallel,
        create_table: !pg.skip_create_table,
        ha_table: pg.ha_enabled.then(|| pg.ha_table.clone()),
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
    let (raw, kind, ha) = open_storage_ha(&config.storage).await?;
    let core_config = CoreConfig {
        default_lease_ttl: config.default_lease_ttl.unwrap_or(SYSTEM_DEFAULT_TTL),
        max_lease_ttl: config.max_lease_ttl.unwrap_or(SYSTEM_DEFAULT_TTL),
        dev: false,
        allow_api_audit_creation: config.unsafe_allow_api_audit_creation.unwrap_or(false),
        allow_audit_log_prefixing: config.allow_audit_log_prefixing.unwrap_or(false),
        telemetry: config
            .telemetry
            .clone()
            .unwrap_or_else(crate::telemetry::Telemetry::without_stanza),
        audit_timeout: config.audit_timeout,
        plugin_directory: config.plugin_directory.clone(),
        declared_audit: config.audit.clone(),
        sanitized_config: crate::config::sanitized::sanitized(config),
    };
    let core = Core::new(raw, kind, clock, core_config).map_err(|e| e.to_string())?;
    if let Some(parts) = ha {
        let settings = ha_settings(config, std::env::var("VAULT_API_ADDR").ok());
        tracing::info!(api_addr = %settings.api_addr, "HA enabled: this node starts as a standby");
        core.set_ha(Ha::new(parts.lock, parts.fence, settings));
    }
    Ok(core)
}

/// This node's addresses: `api_addr` (else `VAULT_API_ADDR`, else the first listener's address,
/// with a warning: other nodes must be able to reach it), and `cluster_addr` (else the API port
/// plus one, as Vault derives it).
fn ha_settings(config: &ServerConfig, env_api_addr: Option<String>) -> HaSettings {
    let api_addr = config
        .api_addr
        .clone()
        .or(env_api_addr.filter(|a| !a.trim().is_empty()))
        .unwrap_or_else(|| {
            let (scheme, addr) = config.listeners.first().map_or(
                ("http", std::net::SocketAddr::from(([127, 0, 0, 1], 8200))),
                |l| (if l.tls.is_some() { "https" } else { "http" }, l.address),
            );
            let derived = format!("{scheme}://{addr}");
            tracing::warn!(api_addr = %derived, "HA: api_addr is not set; standbys will forward to the listener address");
            derived
        });
    let api_addr = api_addr.trim_end_matches('/').to_owned();
    let cluster_addr = config
        .cluster_addr
        .clone()
        .unwrap_or_else(|| match url_port(&api_addr) {
            Some((head, port)) => format!("{head}:{}", port.saturating_add(1)),
            None => String::new(),
        });
    let mut trusted_pem_files: Vec<std::path::PathBuf> = std::env::var_os("VAULT_CACERT")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .into_iter()
        .collect();
    trusted_pem_files.extend(
        config
            .listeners
            .iter()
            .filter_map(|l| l.tls.as_ref().map(|t| t.cert_file.clone())),
    );
    HaSettings {
        api_addr,
        cluster_addr,
        trusted_pem_files,
    }
}

/// `scheme://host` and the port of a URL with an explicit port.
fn url_port(url: &str) -> Option<(String, u16)> {
    let (head, port) = url.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    head.contains("://").then(|| (head.to_owned(), port))
}

/// Serves every listener of `config` until `shutdown` fires; prints Vault's start-up banner.
/// `source`: the file `config` was read from; SIGHUP reads its `audit` blocks and `log_level`
/// again.
pub async fn run(
    config: ServerConfig,
    source: Option<std::path::PathBuf>,
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
    let reload = source.map(|path| crate::server::config_reload(path, false));
    crate::server::on_hangup(Arc::downgrade(&core), reload);
    if let Some(ha) = core.ha() {
        tokio::spawn(ha.clone().run(Arc::downgrade(&core)));
    }
    print_banner(&config, &core, &lines);
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Err(e)) | Err(e) = joined.map_err(|e| e.to_string()) {
            result = Err(e);
        }
    }
    // HA: step down and release the lock so a standby takes over at once.
    if let Some(ha) = core.ha() {
        ha.shutdown().await;
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
