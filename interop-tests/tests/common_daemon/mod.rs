//! Helpers for the daemon interop tests: an in-process pyro-rs daemon serving the echo
//! object on 127.0.0.1:0, and the Python Pyro4 client script `python/daemon_client.py`.

#![allow(dead_code, unreachable_pub)]

use pyro_runtime::daemon::echo::{echo_object, ECHO_OBJECT_NAME};
use pyro_runtime::daemon::{DaemonBuilder, DaemonHandle};
use pyro_runtime::Config;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A pyro-rs daemon running on its own tokio runtime; shut down on drop.
pub struct TestDaemon {
    pub handle: DaemonHandle,
    pub uri: String,
    pub port: u16,
    rt: Option<tokio::runtime::Runtime>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Options for [`TestDaemon::start_with`].
#[derive(Default, Clone)]
pub struct DaemonOptions {
    pub hmac_key: Option<String>,
    pub max_connections: Option<usize>,
    pub config: Option<Config>,
}

impl TestDaemon {
    /// The echo object on 127.0.0.1 with default settings.
    pub fn start() -> TestDaemon {
        TestDaemon::start_with(DaemonOptions::default())
    }

    pub fn start_with(options: DaemonOptions) -> TestDaemon {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let config = Arc::new(options.config.unwrap_or_default());
        let (handle, uri, task) = rt.block_on(async {
            let daemon = DaemonBuilder::with_config(config)
                .host("127.0.0.1")
                .port(0)
                .hmac_key(options.hmac_key.as_deref().map(str::as_bytes))
                .max_connections(options.max_connections)
                .bind()
                .await
                .expect("bind daemon");
            let uri = daemon
                .register(echo_object(false), Some(ECHO_OBJECT_NAME), false)
                .expect("register");
            let handle = daemon.handle();
            let task = tokio::spawn(async move {
                daemon.run().await.expect("daemon run");
            });
            (handle, uri.to_string(), task)
        });
        let port = uri
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in uri");
        TestDaemon {
            handle,
            uri,
            port,
            rt: Some(rt),
            task: Some(task),
        }
    }

    /// The daemon's address for raw sockets.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Run a future on the daemon's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.as_ref().expect("runtime").block_on(f)
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let (Some(rt), Some(task)) = (self.rt.take(), self.task.take()) {
            let _ =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(15), task).await });
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// The client script.
pub fn client_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/daemon_client.py")
}

/// Run a scenario of `daemon_client.py` and return its observations (name -> text).
/// Panics with the script's stderr when it fails.
pub fn run_client(scenario: &str, uri: &str, args: &[&str]) -> BTreeMap<String, String> {
    let out = Command::new(interop_tests::python())
        .arg(client_script())
        .arg(scenario)
        .arg(uri)
        .args(args)
        .env("PYRO_BROADCAST_ADDRS", "127.0.0.1")
        .env_remove("PYRO_HMAC_KEY")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client scenario {scenario} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Look up an observation, failing clearly when the script did not report it.
pub fn get<'a>(obs: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    obs.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no observation {name:?} in {obs:#?}"))
}

/// Compare two observation sets, ignoring the given names; lists every difference.
pub fn assert_same(
    rust: &BTreeMap<String, String>,
    python: &BTreeMap<String, String>,
    ignore: &[&str],
) {
    let mut diffs = Vec::new();
    let keys: std::collections::BTreeSet<&String> = rust.keys().chain(python.keys()).collect();
    for k in keys {
        if ignore.contains(&k.as_str()) {
            continue;
        }
        let (r, p) = (rust.get(k), python.get(k));
        if r != p {
            diffs.push(format!("{k}:\n  pyro-rs: {r:?}\n  Pyro4:   {p:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "pyro-rs daemon differs from Pyro4's echo server:\n{}",
        diffs.join("\n")
    );
}

/// The serializers every daemon test runs with.
pub const SERIALIZERS: &[&str] = &["serpent", "json", "marshal"];
