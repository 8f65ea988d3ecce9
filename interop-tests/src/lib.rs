//! Harness for interop tests: starts real Python Pyro4 processes on 127.0.0.1.
//!
//! Python is `$PYRO_TEST_PYTHON`, else `<workspace>/.venv/bin/python`; it must have
//! Pyro4 installed (checked once; a missing or broken interpreter fails the tests with a
//! clear message instead of skipping them). Every peer gets
//! `PYRO_BROADCAST_ADDRS=127.0.0.1`, so nothing is ever broadcast to the real network,
//! listens on 127.0.0.1 only, and is killed when its [`Peer`] is dropped. Every wait is
//! bounded.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How long a peer may take to print its URI.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The Python interpreter to run peers with, checked to import Pyro4 4.82.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let path = match std::env::var_os("PYRO_TEST_PYTHON") {
                Some(p) => PathBuf::from(p),
                None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
            };
            let out = Command::new(&path)
                .args(["-c", "import Pyro4, serpent; print(Pyro4.__version__)"])
                .output()
                .map_err(|e| {
                    format!(
                        "cannot run Python at {} ({e}); set PYRO_TEST_PYTHON to an interpreter with \
                         Pyro4==4.82 and serpent installed",
                        path.display()
                    )
                })?;
            if !out.status.success() {
                return Err(format!(
                    "Python at {} cannot import Pyro4/serpent: {}; install Pyro4==4.82 there or set \
                     PYRO_TEST_PYTHON",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(path)
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A free TCP port on 127.0.0.1 (bound and released; the OS does not hand it out
/// again right away).
pub fn free_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
    s.local_addr().expect("local addr").port()
}

/// A running Python process. Killed (and reaped) on drop.
pub struct Peer {
    child: Child,
    /// The URI the peer printed (echo server object or name server).
    pub uri: String,
    /// Other `KEY = value` / `key: value` lines seen before the URI, raw.
    pub banner: Vec<String>,
    stderr: std::sync::Arc<Mutex<String>>,
}

impl Peer {
    /// Start `python <args>` with `env`, then wait until a stdout line starts with
    /// `marker`; the rest of that line (trimmed) is the URI.
    pub fn start(args: &[&str], env: &[(&str, &str)], marker: &str) -> Peer {
        let mut full = vec!["-u"];
        full.extend_from_slice(args);
        Peer::start_program(&python(), &full, env, marker)
    }

    /// Like [`Peer::start`] for any program (the pyro-rs command-line tools).
    pub fn start_program(
        program: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
        marker: &str,
    ) -> Peer {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("PYRO_BROADCAST_ADDRS", "127.0.0.1")
            .env_remove("PYRO_HMAC_KEY")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python {args:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr piped");
        let stderr = std::sync::Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // keep draining so the peer never blocks on a full pipe
                    continue;
                }
            }
        });
        let deadline = std::time::Instant::now() + STARTUP_TIMEOUT;
        let mut banner = Vec::new();
        let mut peer = Peer {
            child,
            uri: String::new(),
            banner: Vec::new(),
            stderr,
        };
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(marker) {
                        peer.uri = rest.trim().to_string();
                        peer.banner = banner;
                        // Lines after the URI are drained by the reader thread (into a
                        // channel nobody reads; the thread keeps the pipe empty).
                        drop(rx);
                        return peer;
                    }
                    banner.push(line);
                }
                Err(_) => {
                    let status = peer.child.try_wait().ok().flatten();
                    panic!(
                        "peer {args:?} did not print '{marker}' within {STARTUP_TIMEOUT:?} (exit: {status:?})\n\
                         stdout so far: {banner:#?}\nstderr: {}",
                        peer.stderr_text()
                    );
                }
            }
        }
    }

    /// What the peer wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The port of the peer's URI (`...@host:port`).
    pub fn port(&self) -> u16 {
        self.uri
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in uri {}", self.uri))
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pyro4's test echo server (`python -m Pyro4.test.echoserver -H 127.0.0.1 -p 0`),
/// object `test.echoserver`, with an optional HMAC key (given as PYRO_HMAC_KEY, which
/// the echo server reads, instead of the deprecated `-k`).
pub fn echo_server(hmac_key: Option<&str>) -> Peer {
    let mut env = Vec::new();
    if let Some(k) = hmac_key {
        env.push(("PYRO_HMAC_KEY", k));
    }
    Peer::start(
        &["-m", "Pyro4.test.echoserver", "-H", "127.0.0.1", "-p", "0"],
        &env,
        "echo uri:",
    )
}

/// pyro-rs's own echo server (`pyro-echo -H 127.0.0.1 -p 0`), the counterpart of
/// [`echo_server`], with an optional HMAC key (as PYRO_HMAC_KEY).
pub fn rust_echo_server(hmac_key: Option<&str>) -> Peer {
    let mut env = Vec::new();
    if let Some(k) = hmac_key {
        env.push(("PYRO_HMAC_KEY", k));
    }
    Peer::start_program(
        &cli_binary("pyro-echo"),
        &["-H", "127.0.0.1", "-p", "0"],
        &env,
        "echo uri:",
    )
}

/// Path of a pyro-cli binary in this build's target directory, (re)built once per test
/// process: only pyro-cli's own tests get an up-to-date binary from `cargo test`, and a
/// stale one would test old code. When it is up to date the build is a quick no-op.
pub fn cli_binary(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir");
    let path = dir.join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "pyro-cli", "--bin", name]);
        if dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build of {name} failed");
        built.push(name.to_string());
    }
    path
}

/// Pyro4's test echo server, registered as `test.echoserver` in the given name server.
pub fn echo_server_registered(ns_port: u16) -> Peer {
    let port = ns_port.to_string();
    Peer::start(
        &[
            "-m",
            "Pyro4.test.echoserver",
            "-H",
            "127.0.0.1",
            "-p",
            "0",
            "-n",
        ],
        &[
            ("PYRO_NS_HOST", "127.0.0.1"),
            ("PYRO_NS_PORT", port.as_str()),
        ],
        "echo uri:",
    )
}

/// Pyro4's name server (`python -m Pyro4.naming -n 127.0.0.1 -p 0`). Bound to loopback,
/// so (as in Pyro4) it starts no broadcast responder.
pub fn name_server() -> Peer {
    Peer::start(
        &["-m", "Pyro4.naming", "-n", "127.0.0.1", "-p", "0"],
        &[],
        "URI =",
    )
}

/// Script for [`name_server_with_broadcast`]: Pyro4 refuses to start its broadcast
/// responder for a name server on 127.x, so this builds the same two Pyro4 objects
/// (`NameServerDaemon` and `BroadcastServer`) explicitly, both on 127.0.0.1.
const BROADCAST_NS: &str = r#"
import sys
from Pyro4 import naming
daemon = naming.NameServerDaemon("127.0.0.1", 0)
uri = daemon.uriFor(daemon.nameserver)
bc = naming.BroadcastServer(uri, bchost="127.0.0.1", bcport=int(sys.argv[1]))
bc.runInThread()
print("BC =", bc.locationStr)
print("URI =", uri)
sys.stdout.flush()
daemon.requestLoop()
"#;

/// A real Pyro4 name server on 127.0.0.1 plus its UDP broadcast responder on
/// 127.0.0.1:`bcport`. Returns the peer (its `uri` is the name server's).
pub fn name_server_with_broadcast(bcport: u16) -> Peer {
    let port = bcport.to_string();
    Peer::start(&["-c", BROADCAST_NS, port.as_str()], &[], "URI =")
}

/// Run a Python snippet with the test interpreter and return its stdout (trimmed);
/// panics with stderr if it fails.
pub fn run_python(code: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .env("PYRO_BROADCAST_ADDRS", "127.0.0.1")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
