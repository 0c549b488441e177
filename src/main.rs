//! The `coffer` binary: `coffer server -dev` or `coffer server -config=FILE`.
//!
//! Flags follow `vault server`: one or two leading dashes, `-flag=value` or `-flag value`.

use std::process::ExitCode;

use coffer::server::{DevServer, serve, shutdown_signal};

const USAGE: &str = "Usage: coffer server -dev [-dev-root-token-id=ID] [-dev-listen-address=ADDR]\n       coffer server -config=FILE";

#[derive(Debug, Default)]
struct ServerArgs {
    dev: bool,
    root_token_id: Option<String>,
    listen: Option<String>,
    log_level: Option<String>,
    config: Option<String>,
}

fn parse_args(args: &[String]) -> Result<ServerArgs, String> {
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
                .ok_or(format!("flag -{name} needs a value"))
        };
        match name {
            "dev" => out.dev = inline.as_deref().is_none_or(|v| v != "false"),
            "dev-root-token-id" => out.root_token_id = Some(value()?),
            "dev-listen-address" => out.listen = Some(value()?),
            "log-level" => out.log_level = Some(value()?),
            "config" => out.config = Some(value()?),
            other => return Err(format!("flag provided but not defined: -{other}")),
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(1);
    };
    if cmd != "server" {
        eprintln!("unknown command {cmd:?}\n{USAGE}");
        return ExitCode::from(1);
    }
    let mut parsed = match parse_args(rest) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(1);
        }
    };
    if let (false, Some(path)) = (parsed.dev, parsed.config.clone()) {
        return run_config(&path, parsed.log_level.as_deref());
    }
    if !parsed.dev {
        eprintln!("{USAGE}");
        return ExitCode::from(1);
    }
    parsed.root_token_id = parsed
        .root_token_id
        .or_else(|| std::env::var("VAULT_DEV_ROOT_TOKEN_ID").ok());
    parsed.listen = parsed
        .listen
        .or_else(|| std::env::var("VAULT_DEV_LISTEN_ADDRESS").ok());
    let level = parsed.log_level.clone().unwrap_or_else(|| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    run_to_exit(run_dev(parsed))
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

fn run_config(path: &str, cli_level: Option<&str>) -> ExitCode {
    let config = match coffer::config::ServerConfig::from_file(std::path::Path::new(path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error loading configuration from {path}: {e}");
            return ExitCode::from(1);
        }
    };
    let level = cli_level
        .map(str::to_string)
        .or(config.log_level.clone())
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&level).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        coffer::config::LogFormat::Json => builder.json().init(),
        coffer::config::LogFormat::Standard => builder.init(),
    }
    run_to_exit(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = tx.send(true);
        });
        coffer::production::run(config, rx).await
    })
}

async fn run_dev(args: ServerArgs) -> Result<(), String> {
    let addr = args.listen.unwrap_or_else(|| "127.0.0.1:8200".into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("error listening on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let dev = DevServer::with_system_clock(args.root_token_id)
        .await
        .map_err(|e| e.to_string())?;
    let banner = format!(
        "==> Coffer server configuration:\n\n\
         \x20            Api Address: http://{local}\n\
         \x20                    Cgo: disabled\n\
         \x20             Listener 1: tcp (addr: \"{local}\", tls: \"disabled\")\n\
         \x20                Storage: inmem\n\
         \x20                Version: Coffer v{ver}\n\n\
         ==> Coffer server started! Log data will stream in below:\n\n\
         WARNING! dev mode is enabled! In this mode, Coffer runs entirely in-memory\n\
         and starts unsealed with a single unseal key. The root token is already\n\
         authenticated to the CLI, so you can immediately begin using Coffer.\n\n\
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
    {
        // A closed stdout must not kill the server (println! would panic).
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    serve(listener, dev.core, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("shutdown complete");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn vault_style_flags() {
        let p = parse_args(&a(&[
            "-dev",
            "-dev-root-token-id=root",
            "--dev-listen-address",
            "127.0.0.1:0",
        ]))
        .unwrap();
        assert!(p.dev);
        assert_eq!(p.root_token_id.as_deref(), Some("root"));
        assert_eq!(p.listen.as_deref(), Some("127.0.0.1:0"));
        assert!(parse_args(&a(&["-bogus"])).is_err());
        assert!(parse_args(&a(&["-dev-root-token-id"])).is_err());
    }
}
