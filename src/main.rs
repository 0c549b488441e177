//! The `coffer` binary: `coffer server -dev` or `coffer server -config=FILE`, plus `help` and
//! `version`.
//!
//! Flags follow `vault server` (Go's flag package): one or two leading dashes, `-flag=value` or
//! `-flag value`, booleans as `-flag` or `-flag=false`; `-h`/`-help` print the usage. Exit status
//! 0 for help and version, 1 for a bad flag or a failed start, 127 for an unknown command (as the
//! `vault` CLI does).

use std::process::ExitCode;

use std::sync::Arc;

use coffer::clock::SystemClock;
use coffer::config::{LogFormat, ServerConfig};
use coffer::core::CoreConfig;
use coffer::server::{DevServer, HttpOptions, serve_http, shutdown_signal, sweep_loop};

/// mimalloc instead of glibc's malloc: requests are allocated on one runtime worker and often
/// freed on another (work stealing), which sends glibc to its locked slow paths (`_int_malloc`,
/// `malloc_consolidate`). Measured on a JWT login: -12 to -15 % server CPU per login; idle RSS
/// 15 -> 19 MiB (built without transparent huge pages: with them idle RSS was 49 MiB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const VERSION: &str = concat!("Coffer v", env!("CARGO_PKG_VERSION"));

const USAGE: &str = "\
Usage: coffer <command> [args]

Commands:
    server     Start a Coffer server
    version    Print the Coffer version

Coffer serves Vault's HTTP API: use the vault (or bao) CLI with VAULT_ADDR for everything else.
Run \"coffer server -help\" for the server's flags.
";

const SERVER_HELP: &str = "\
Usage: coffer server [options]

  Starts a Coffer server answering Vault's HTTP API. With -config the server
  starts sealed; initialise it once (\"vault operator init\") and unseal it
  after every start (\"vault operator unseal\"). With -dev it runs in memory,
  initialised and unsealed, for development only.

  Start a server with a configuration file:

      $ coffer server -config=/etc/coffer/server.hcl

  Run in \"dev\" mode:

      $ coffer server -dev -dev-root-token-id=\"root\"

Command Options:

  -config=<string>
      Path to the server configuration file (HCL or JSON): storage, listeners,
      telemetry, log settings. Required unless -dev is given. With -dev, the
      file's listeners are served besides the dev listener and its other
      settings apply; its storage is ignored (dev mode stays in memory).

  -log-format=<string>
      Log line format: \"standard\" or \"json\". The default is \"standard\", or
      the configuration file's log_format. This can also be specified via the
      VAULT_LOG_FORMAT environment variable.

  -log-level=<string>
      Log verbosity, from most to least detailed: \"trace\", \"debug\", \"info\",
      \"warn\" and \"error\" (\"warning\" and \"err\" are accepted too). The default
      is \"info\", or the configuration file's log_level. This can also be
      specified via the VAULT_LOG_LEVEL environment variable; the flag wins.

Dev Options:

  -dev
      Development mode: in memory, initialised and unsealed with a single
      unseal key, listening on 127.0.0.1:8200 without TLS. Never use it in
      production. The default is false.

  -dev-listen-address=<string>
      Address the dev server listens on. The default is 127.0.0.1:8200. This
      can also be specified via the VAULT_DEV_LISTEN_ADDRESS environment
      variable.

  -dev-no-store-token
      Do not write the root token to $HOME/.vault-token, where the vault CLI
      looks for it; it is only printed. The default is false.

  -dev-root-token-id=<string>
      The root token's id in dev mode instead of a random one. This can also
      be specified via the VAULT_DEV_ROOT_TOKEN_ID environment variable.
";

const SERVER_HINT: &str = "Run \"coffer server -help\" for the list of flags.";

#[derive(Debug, Default)]
struct ServerArgs {
    dev: bool,
    root_token_id: Option<String>,
    listen: Option<String>,
    no_store_token: bool,
    log_level: Option<String>,
    log_format: Option<String>,
    config: Option<String>,
}

/// What the server's command line asks for.
#[derive(Debug)]
enum Parsed {
    Run(ServerArgs),
    Help,
}

/// Go's `strconv.ParseBool`, which `vault server` uses for boolean flags.
fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {value:?} for -{name}")),
    }
}

fn parse_args(args: &[String]) -> Result<Parsed, String> {
    let mut out = ServerArgs::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let flag = arg.trim_start_matches('-');
        if flag.len() == arg.len() {
            return Err(format!("unexpected argument {arg:?}"));
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or(format!("flag needs an argument: -{name}"))
        };
        let boolean = || inline.as_deref().map_or(Ok(true), |v| parse_bool(name, v));
        match name {
            "h" | "help" => return Ok(Parsed::Help),
            "dev" => out.dev = boolean()?,
            "dev-no-store-token" => out.no_store_token = boolean()?,
            "dev-root-token-id" => out.root_token_id = Some(value()?),
            "dev-listen-address" => out.listen = Some(value()?),
            "log-level" => out.log_level = Some(value()?),
            "log-format" => out.log_format = Some(value()?),
            "config" => out.config = Some(value()?),
            other => return Err(format!("flag provided but not defined: -{other}")),
        }
    }
    Ok(Parsed::Run(out))
}

/// Vault's level names (hclog's); see [`coffer::telemetry::logs::parse_level`].
fn parse_level(raw: &str) -> Result<tracing::Level, String> {
    coffer::telemetry::logs::parse_level(raw)
}

fn parse_format(raw: &str) -> Result<LogFormat, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" | "standard" => Ok(LogFormat::Standard),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("unknown log format: {raw}")),
    }
}

/// The flag, else the environment variable (Vault's order; a configuration file comes after).
fn flag_or_env(flag: Option<&str>, env: &str) -> Option<String> {
    flag.map(str::to_string).or_else(|| std::env::var(env).ok())
}

/// The logging settings given on the command line or in the environment; `None` where neither
/// sets one. Invalid values are errors, before anything starts.
fn cli_logging(args: &ServerArgs) -> Result<(Option<tracing::Level>, Option<LogFormat>), String> {
    let level = flag_or_env(args.log_level.as_deref(), "VAULT_LOG_LEVEL")
        .map(|l| parse_level(&l))
        .transpose()?;
    let format = flag_or_env(args.log_format.as_deref(), "VAULT_LOG_FORMAT")
        .map(|f| parse_format(&f))
        .transpose()?;
    Ok((level, format))
}

/// Logs to stderr (colours only when stderr is a terminal), with run-time logger levels and
/// monitors (`sys/loggers`, `sys/monitor`).
fn init_logging(level: tracing::Level, format: LogFormat) {
    let _ = coffer::telemetry::logs::install(level, format);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(127);
    };
    match cmd.as_str() {
        "server" => {}
        "help" | "-help" | "--help" | "-h" | "--h" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        "version" | "-version" | "--version" | "-v" | "--v" => {
            println!("{VERSION}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprint!("unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(127);
        }
    }
    let mut parsed = match parse_args(rest) {
        Ok(Parsed::Run(p)) => p,
        Ok(Parsed::Help) => {
            print!("{SERVER_HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n{SERVER_HINT}");
            return ExitCode::from(1);
        }
    };
    let (level, format) = match cli_logging(&parsed) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    if let (false, Some(path)) = (parsed.dev, parsed.config.clone()) {
        return run_config(&path, level, format);
    }
    if !parsed.dev {
        eprintln!("Must specify at least one config path using -config, or -dev\n{SERVER_HINT}");
        return ExitCode::from(1);
    }
    parsed.root_token_id = parsed
        .root_token_id
        .or_else(|| std::env::var("VAULT_DEV_ROOT_TOKEN_ID").ok());
    parsed.listen = parsed
        .listen
        .or_else(|| std::env::var("VAULT_DEV_LISTEN_ADDRESS").ok());
    // `-dev -config=FILE`: the file's listeners, telemetry and settings join dev mode (as in
    // Vault); its storage is ignored, dev mode stays in memory.
    let file = match parsed.config.as_deref() {
        None => None,
        Some(path) => match ServerConfig::from_file_for_dev(std::path::Path::new(path)) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("Error loading configuration from {path}: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let file_level = file
        .as_ref()
        .and_then(|c| c.log_level.as_deref())
        .and_then(|l| parse_level(l).ok());
    init_logging(
        level.or(file_level).unwrap_or(tracing::Level::INFO),
        format
            .or(file.as_ref().map(|c| c.log_format))
            .unwrap_or(LogFormat::Standard),
    );
    run_to_exit(run_dev(parsed, file))
}

/// Runs `work` on a multi-threaded runtime and turns its result into the exit code.
fn run_to_exit(work: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    coffer::http::raise_open_files_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("failed to start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_config(path: &str, level: Option<tracing::Level>, format: Option<LogFormat>) -> ExitCode {
    let config = match coffer::config::ServerConfig::from_file(std::path::Path::new(path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error loading configuration from {path}: {e}");
            return ExitCode::from(1);
        }
    };
    // The configuration's level was validated when it was read.
    let level = level
        .or_else(|| {
            config
                .log_level
                .as_deref()
                .and_then(|l| parse_level(l).ok())
        })
        .unwrap_or(tracing::Level::INFO);
    init_logging(level, format.unwrap_or(config.log_format));
    run_to_exit(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let signalled = shutdown_signal();
        tokio::spawn(async move {
            signalled.await;
            let _ = tx.send(true);
        });
        coffer::production::run(config, Some(std::path::PathBuf::from(path)), rx).await
    })
}

/// The dev core's settings: dev defaults, with a `-config` file's lease TTLs, audit settings
/// and telemetry stanza when given.
fn dev_core_config(file: Option<&ServerConfig>, listen: std::net::SocketAddr) -> CoreConfig {
    // Dev mode allows audit devices (and their prefix) through the API, as Vault's has no such
    // gate; a `-config` file that sets either setting decides, as OpenBao's does.
    let mut config = CoreConfig {
        sanitized_config: coffer::config::sanitized::dev_sanitized(listen, file),
        allow_api_audit_creation: true,
        allow_audit_log_prefixing: true,
        ..CoreConfig::default()
    };
    if let Some(f) = file {
        if let Some(ttl) = f.default_lease_ttl {
            config.default_lease_ttl = ttl;
        }
        if let Some(ttl) = f.max_lease_ttl {
            config.max_lease_ttl = ttl;
        }
        config.allow_api_audit_creation = f.unsafe_allow_api_audit_creation.unwrap_or(true);
        config.allow_audit_log_prefixing = f.allow_audit_log_prefixing.unwrap_or(true);
        config.audit_timeout = f.audit_timeout;
        config.plugin_directory = f.plugin_directory.clone();
        config.declared_audit = f.audit.clone();
        if let Some(t) = &f.telemetry {
            config.telemetry = t.clone();
        }
    }
    config
}

async fn run_dev(args: ServerArgs, file: Option<ServerConfig>) -> Result<(), String> {
    let config_path = args.config.clone().map(std::path::PathBuf::from);
    for setting in file.iter().flat_map(|f| f.ignored.iter()) {
        tracing::info!(config.setting = %setting, "setting {setting} is accepted but has no effect in Coffer");
    }
    let addr = args.listen.unwrap_or_else(|| "127.0.0.1:8200".into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("error listening on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let dev = DevServer::with_config(
        Arc::new(SystemClock),
        args.root_token_id,
        dev_core_config(file.as_ref(), local),
    )
    .await
    .map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut extra = String::new();
    for (i, l) in file.iter().flat_map(|f| f.listeners.iter()).enumerate() {
        let line = coffer::production::start_listener(i + 2, l, &dev.core, &stop_rx, &mut tasks)?;
        // One more space than production's banner, to align under the dev banner's lines.
        extra.push(' ');
        extra.push_str(&line);
        extra.push('\n');
    }
    let cli_login = if args.no_store_token {
        "The root token is not stored\n\
         (-dev-no-store-token): export VAULT_TOKEN to use it from the CLI."
    } else {
        store_token(dev.root_token.expose())?;
        "The root token is already\n\
         authenticated to the CLI, so you can immediately begin using Coffer."
    };
    let banner = format!(
        "==> Coffer server configuration:\n\n\
         \x20            Api Address: http://{local}\n\
         \x20                    Cgo: disabled\n\
         \x20             Listener 1: tcp (addr: \"{local}\", tls: \"disabled\")\n\
         {extra}\
         \x20                Storage: inmem\n\
         \x20                Version: Coffer v{ver}\n\n\
         ==> Coffer server started! Log data will stream in below:\n\n\
         WARNING! dev mode is enabled! In this mode, Coffer runs entirely in-memory\n\
         and starts unsealed with a single unseal key. {cli_login}\n\n\
         You may need to set the following environment variables:\n\n\
         \x20   $ export VAULT_ADDR='http://{local}'\n\n\
         The unseal key and root token are displayed below in case you want to\n\
         seal/unseal the server or re-authenticate.\n\n\
         Unseal Key: {unseal}\n\
         Root Token: {token}\n\n\
         Development mode should NOT be used in production installations!\n",
        ver = env!("CARGO_PKG_VERSION"),
        token = dev.root_token.expose(),
        unseal = dev.unseal_key.expose(),
    );
    // The handlers are in place before the banner tells anyone the server is up.
    let signalled = shutdown_signal();
    {
        // A closed stdout must not kill the server (println! would panic).
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    tokio::spawn(async move {
        signalled.await;
        let _ = stop_tx.send(true);
    });
    let mut rx = stop_rx.clone();
    let stop = async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    tokio::spawn(sweep_loop(Arc::downgrade(&dev.core)));
    let reload = config_path.map(|path| coffer::server::config_reload(path, true));
    coffer::server::on_hangup(Arc::downgrade(&dev.core), reload);
    let core = dev.core.clone();
    tasks.spawn(async move {
        serve_http(listener, core, &HttpOptions::default(), stop)
            .await
            .map_err(|e| e.to_string())
    });
    drop(dev);
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Err(e)) | Err(e) = joined.map_err(|e| e.to_string()) {
            result = Err(e);
        }
    }
    result?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Writes the root token to `$HOME/.vault-token`, mode 0600, as `vault server -dev` does, so the
/// `vault`/`bao` CLI is logged in. Written to a temporary file and renamed, so a reader never
/// sees half a token and an existing file with wider permissions is replaced.
fn store_token(token: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or("storing the root token: $HOME is not set (or use -dev-no-store-token)")?;
    let path = std::path::Path::new(&home).join(".vault-token");
    let tmp = std::path::Path::new(&home).join(format!(".vault-token.tmp.{}", std::process::id()));
    let fail = |e: std::io::Error| format!("storing the root token in {}: {e}", path.display());
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(token.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn run(v: &[&str]) -> ServerArgs {
        match parse_args(&a(v)).unwrap() {
            Parsed::Run(p) => p,
            Parsed::Help => panic!("help for {v:?}"),
        }
    }

    #[test]
    fn vault_style_flags() {
        let p = run(&[
            "-dev",
            "-dev-root-token-id=root",
            "--dev-listen-address",
            "127.0.0.1:0",
            "-dev-no-store-token",
            "-log-level",
            "debug",
            "--log-format=json",
        ]);
        assert!(p.dev && p.no_store_token);
        assert_eq!(p.root_token_id.as_deref(), Some("root"));
        assert_eq!(p.listen.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(p.log_level.as_deref(), Some("debug"));
        assert_eq!(p.log_format.as_deref(), Some("json"));
        assert!(!run(&["-dev=false"]).dev);
        assert!(run(&["-dev=T"]).dev);
        assert!(!run(&["-dev", "-dev-no-store-token=0"]).no_store_token);
        assert!(parse_args(&a(&["-bogus"])).is_err());
        assert!(parse_args(&a(&["-dev=maybe"])).is_err());
        assert!(parse_args(&a(&["-dev-root-token-id"])).is_err());
        for help in ["-h", "-help", "--help", "--h"] {
            assert!(matches!(parse_args(&a(&["-dev", help])), Ok(Parsed::Help)));
        }
    }

    #[test]
    fn vault_log_levels_and_formats() {
        use tracing::Level;
        for (given, want) in [
            ("trace", Level::TRACE),
            ("DEBUG", Level::DEBUG),
            ("", Level::INFO),
            ("notice", Level::INFO),
            (" Info ", Level::INFO),
            ("warning", Level::WARN),
            ("warn", Level::WARN),
            ("err", Level::ERROR),
            ("error", Level::ERROR),
        ] {
            assert_eq!(parse_level(given), Ok(want), "{given:?}");
        }
        assert_eq!(parse_level("off"), Err("unknown log level: off".into()));
        assert_eq!(parse_format("JSON"), Ok(LogFormat::Json));
        assert_eq!(parse_format(""), Ok(LogFormat::Standard));
        assert_eq!(parse_format("xml"), Err("unknown log format: xml".into()));
    }
}
