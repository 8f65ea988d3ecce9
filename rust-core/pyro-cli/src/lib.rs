//! Pieces shared by the pyro-rs command-line tools (`pyro-ns`, `pyro-nsc`, `pyro-echo`).

/// Logs go to stderr through `tracing`; `PYRO_LOGLEVEL` (a tracing filter such as `debug`)
/// overrides `default_level`, which keeps the tools quiet by default.
pub fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PYRO_LOGLEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The HMAC key as Pyro4's tools take it: the deprecated `-k` option (with Pyro4's warning
/// on stderr) or the `PYRO_HMAC_KEY` environment variable, never both.
pub fn hmac_key(option: Option<String>) -> Result<Option<String>, String> {
    if option.is_some() {
        // Pyro4 issues this as a UserWarning on stderr.
        eprintln!(
            "warning: using -k to supply HMAC key on the command line is a security problem and is \
             deprecated since Pyro 4.72. See the documentation for an alternative."
        );
    }
    match std::env::var("PYRO_HMAC_KEY") {
        Ok(_) if option.is_some() => {
            Err("error: don't use -k and PYRO_HMAC_KEY at the same time".to_string())
        }
        Ok(key) => Ok(Some(key)),
        Err(_) => Ok(option),
    }
}

/// The tools' tokio runtime, sized by the CPU affinity: under `taskset -c N` (one CPU) a
/// current-thread runtime, which does all socket IO on one thread with no cross-thread
/// wake-ups; otherwise a multi-thread runtime with a worker per CPU.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus == 1 {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus)
        .enable_all()
        .build()
}
