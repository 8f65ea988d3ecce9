//! pyro-ns: the name server, the counterpart of `pyro4-ns` / `python -m Pyro4.naming`.
//!
//! Same options and the same startup lines as Pyro4's `startNSloop`. Differences: the
//! broadcast responder also starts on a loopback (or IPv6) address when `--bchost` is
//! given explicitly (Pyro4 never starts it there), `dbm:` storage is not available and
//! NS_AUTOCLEAN is not implemented. The HMAC key comes from PYRO_HMAC_KEY (or the
//! deprecated `-k`). Ctrl-C and SIGTERM shut it down cleanly. Logging (tracing) goes to
//! stderr, warnings only unless PYRO_LOGLEVEL says otherwise (e.g. `debug`).

use clap::Parser;
use pyro_runtime::nameserver::{NameServerDaemon, NameServerOptions, StorageSpec};
use pyro_runtime::Config;
use std::process::ExitCode;
use std::sync::Arc;

/// Command-line options, spelled as Pyro4's naming module (optparse) spells them.
#[derive(Parser, Debug)]
#[command(name = "pyro-ns", about = "Pyro name server (pyro-rs)")]
struct Options {
    /// hostname to bind server on
    #[arg(short = 'n', long = "host")]
    host: Option<String>,
    /// port to bind server on (0=random)
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    /// Unix domain socket name to bind server on
    #[arg(short = 'u', long = "unixsocket")]
    unixsocket: Option<String>,
    /// Storage system to use (memory, sql:file)
    #[arg(short = 's', long = "storage", default_value = "memory")]
    storage: String,
    /// hostname to bind broadcast server on (default is ""); given explicitly, the
    /// broadcast server also starts for a name server on localhost
    #[arg(long = "bchost")]
    bchost: Option<String>,
    /// port to bind broadcast server on (0=random)
    #[arg(long = "bcport")]
    bcport: Option<u16>,
    /// external hostname in case of NAT
    #[arg(long = "nathost")]
    nathost: Option<String>,
    /// external port in case of NAT
    #[arg(long = "natport")]
    natport: Option<u16>,
    /// don't start a broadcast server
    #[arg(short = 'x', long = "nobc")]
    nobc: bool,
    /// the HMAC key to use (deprecated)
    #[arg(short = 'k', long = "key")]
    key: Option<String>,
}

fn main() -> ExitCode {
    let mut options = Options::parse();
    pyro_cli::init_logging("warn");

    options.key = match pyro_cli::hmac_key(options.key.take()) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let storage: StorageSpec = match options.storage.parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let config = match Config::from_env() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut opts = NameServerOptions::new(config);
    opts.host = options.host;
    opts.port = options.port;
    opts.unixsocket = options.unixsocket;
    opts.nathost = options.nathost;
    opts.natport = options.natport;
    opts.storage = storage;
    opts.hmac_key = options
        .key
        .filter(|k| !k.is_empty())
        .map(String::into_bytes);
    opts.enable_broadcast = !options.nobc;
    opts.force_broadcast = options.bchost.is_some();
    opts.bchost = options.bchost;
    opts.bcport = options.bcport;

    let runtime = match pyro_cli::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(opts: NameServerOptions) -> anyhow::Result<()> {
    let ns = NameServerDaemon::start(opts).await?;
    for line in ns.startup_lines().await {
        println!("{line}");
    }
    let handle = ns.handle();
    tokio::spawn(async move {
        stop_signal().await;
        tracing::debug!("stopping on signal");
        handle.shutdown();
    });
    ns.run().await?;
    println!("NS shut down.");
    Ok(())
}
