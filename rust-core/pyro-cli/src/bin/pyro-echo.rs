//! pyro-echo: the test echo server, the counterpart of `python -m Pyro4.test.echoserver`.
//!
//! Serves `test.echoserver` (methods echo, error, error_with_text, oneway_echo, slow,
//! generator, nan, inf, oneway_slow, __dunder__, shutdown and the `verbose` property)
//! and prints its URI the way the Python tool does. The HMAC key comes from
//! PYRO_HMAC_KEY (or the deprecated `-k`).

use clap::Parser;
use pyro_runtime::daemon::echo::{echo_object, ECHO_OBJECT_NAME};
use pyro_runtime::daemon::DaemonBuilder;
use pyro_runtime::nameserver::BroadcastStatus;
use pyro_runtime::{locate_ns, Config, NameServerDaemon, NameServerOptions};
use std::process::ExitCode;
use std::sync::Arc;

/// Command-line options, as Pyro4's echoserver (optparse) spells them.
#[derive(Parser, Debug)]
#[command(
    name = "pyro-echo",
    about = "Pyro's built-in test echo server (pyro-rs)"
)]
struct Options {
    /// hostname to bind server on
    #[arg(short = 'H', long = "host", default_value = "localhost")]
    host: String,
    /// port to bind server on (0 = any free port)
    #[arg(short = 'p', long = "port", default_value_t = 0)]
    port: u16,
    /// Unix domain socket name to bind server on
    #[arg(short = 'u', long = "unixsocket")]
    unixsocket: Option<String>,
    /// register with nameserver
    #[arg(short = 'n', long = "naming")]
    naming: bool,
    /// also start a nameserver
    #[arg(short = 'N', long = "nameserver")]
    nameserver: bool,
    /// verbose output
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// don't output anything
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// the HMAC key to use (deprecated)
    #[arg(short = 'k', long = "key")]
    key: Option<String>,
}

fn main() -> ExitCode {
    let mut options = Options::parse();
    pyro_cli::init_logging(if options.verbose { "info" } else { "warn" });

    options.key = match pyro_cli::hmac_key(options.key.take()) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    if options.verbose {
        options.quiet = false;
    }
    if options.nameserver {
        options.naming = true;
    }
    let config = match Config::from_env() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match pyro_cli::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(options, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn serve(options: Options, config: Arc<Config>) -> anyhow::Result<()> {
    if !options.quiet {
        println!("Starting Pyro's built-in test echo server.");
    }
    let hmac = options.key.clone().unwrap_or_default().into_bytes();
    if hmac.is_empty() && !options.quiet {
        println!("Warning: HMAC key not set. Anyone can connect to this server!");
    }
    // -N: Pyro4 starts a name server (on HOST, NS_PORT) in a thread first.
    let nameserver = if options.nameserver {
        let mut ns_options = NameServerOptions::new(config.clone());
        ns_options.host = Some(options.host.clone());
        ns_options.hmac_key = (!hmac.is_empty()).then(|| hmac.clone());
        let ns = NameServerDaemon::start(ns_options).await?;
        let uri = ns.uri().clone();
        let status = ns.broadcast_status().clone();
        let handle = ns.handle();
        tokio::spawn(async move {
            if let Err(e) = ns.run().await {
                tracing::error!("name server stopped: {e}");
            }
        });
        Some((uri, status, handle))
    } else {
        None
    };
    let mut builder = DaemonBuilder::with_config(config.clone()).hmac_key(Some(&hmac));
    builder = match &options.unixsocket {
        Some(path) => builder.unix_socket(path),
        None => builder.host(&options.host).port(options.port),
    };
    let daemon = builder.bind().await?;
    let uri = daemon.register(echo_object(options.verbose), Some(ECHO_OBJECT_NAME), false)?;
    if options.naming {
        let key = (!hmac.is_empty()).then_some(hmac.as_slice());
        let (host, port) = match &nameserver {
            Some((ns_uri, _, _)) => match &ns_uri.location {
                Some(pyro_wire::Location::Tcp { host, port }) => (Some(host.as_str()), Some(*port)),
                Some(pyro_wire::Location::Unix(path)) => (Some(path.as_str()), None),
                None => (None, None),
            },
            None => (None, None),
        };
        let mut ns = locate_ns(host, port, true, key).await?;
        ns.register(ECHO_OBJECT_NAME, &uri.to_string(), false, None)
            .await?;
        if options.verbose {
            println!("using name server at {}", ns.proxy().uri());
            if let Some((_, status, _)) = &nameserver {
                match status {
                    BroadcastStatus::Running(loc) => println!("broadcast server running at {loc}"),
                    _ => println!("not using a broadcast server"),
                }
            }
        }
    } else if options.verbose {
        println!("not using a name server.");
    }
    if !options.quiet {
        println!("object name: {ECHO_OBJECT_NAME}");
        println!("echo uri: {uri}");
        println!("echoserver running.");
    }
    let handle = daemon.handle();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            handle.shutdown();
        }
    });
    daemon.run().await?;
    if let Some((_, _, ns)) = nameserver {
        ns.shutdown();
    }
    Ok(())
}
