//! Faults: a pyro-rs daemon process killed (SIGKILL) in the middle of a call gives its
//! pyro-rs and Python Pyro4 clients a connection-closed error at once, and both proxies
//! reconnect by themselves when the daemon is back on the same address; a Python client
//! killed in the middle of a request frees its connection, its item stream and its
//! session state on the daemon; proxies using PYRONAME survive a name server restart
//! (SQLite storage, same port).
//!
//! The name server's SQLite durability under `kill -9` during registrations is tested in
//! rust-core/pyro-cli/tests/ns_cli.rs (`sqlite_registrations_survive_kill_9`).
//!
//! The killed daemon is this test binary itself, re-run as a child process with
//! `--ignored --exact child_daemon_process` (a helper that only serves when
//! PYRO_RS_FAULTS_CHILD names a port).

mod common_daemon;
mod hostile_common;

use common_daemon::TestDaemon;
use hostile_common::{Probe, TestNs};
use pyro_codec::{Dict, Value};
use pyro_runtime::daemon::echo::{echo_object, ECHO_OBJECT_NAME};
use pyro_runtime::daemon::{DaemonBuilder, Exposed};
use pyro_runtime::nameserver::StorageSpec;
use pyro_runtime::{Config, Proxy};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "PYRO_RS_FAULTS_CHILD";

/// A child process with line-oriented stdout; killed (SIGKILL) on drop.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            stdin: child.stdin.take(),
            child,
            lines: rx,
        }
    }

    /// The rest of the first line containing `prefix` (libtest may print its own
    /// "test name ... " in front of the child's line).
    fn wait_for(&self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once(prefix) {
                        return rest.trim().to_string();
                    }
                }
                Err(_) => panic!("no line starting with {prefix:?} within {limit:?}"),
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// This test binary as a daemon process serving the echo object on `port`.
fn spawn_child_daemon(port: u16) -> (Proc, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([
        "--exact",
        "child_daemon_process",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, port.to_string());
    let p = Proc::spawn(cmd);
    let uri = p.wait_for("child uri: ", Duration::from_secs(30));
    (p, uri)
}

/// Not a test: the daemon process of [`daemon_killed_mid_call_then_back_on_same_address`].
#[test]
#[ignore = "helper process, started by the fault tests"]
fn child_daemon_process() {
    let Some(port) = std::env::var(CHILD_ENV)
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
    else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let daemon = DaemonBuilder::with_config(Arc::new(Config::default()))
            .host("127.0.0.1")
            .port(port)
            .bind()
            .await
            .expect("bind child daemon");
        let uri = daemon
            .register(echo_object(false), Some(ECHO_OBJECT_NAME), false)
            .expect("register");
        println!("child uri: {uri}");
        daemon.run().await.expect("run");
    });
}

fn python_fault_client(mode: &str, uri: &str) -> Proc {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/fault_client.py");
    let mut cmd = Command::new(interop_tests::python());
    cmd.arg("-u")
        .arg(script)
        .arg(mode)
        .arg(uri)
        .env("PYRO_BROADCAST_ADDRS", "127.0.0.1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYRO_HMAC_KEY")
        .env_remove("PYRO_SSL");
    Proc::spawn(cmd)
}

async fn echo(p: &mut Proxy, text: &str) -> pyro_runtime::Result<Value> {
    p.call("echo", vec![Value::str(text)], Dict::new()).await
}

#[test]
fn daemon_killed_mid_call_then_back_on_same_address() {
    let (daemon, uri) = spawn_child_daemon(0);
    let mut daemon = daemon;
    let port: u16 = uri
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut proxy = Proxy::new(&uri).expect("proxy");
    assert_eq!(
        rt.block_on(echo(&mut proxy, "before")).expect("first call"),
        Value::str("before")
    );

    // A Python Pyro4 client in the middle of slow() as well.
    let mut py = python_fault_client("midcall", &uri);
    py.wait_for("bound\t", Duration::from_secs(30));

    // slow() takes 5 s; the daemon dies 300 ms into it.
    let (killed_tx, killed_rx) = std::sync::mpsc::channel::<Instant>();
    let (result, error_at, killed_at, mut proxy) = rt.block_on(async move {
        let call = tokio::spawn(async move {
            let r = proxy.call("slow", vec![], Dict::new()).await;
            (r, Instant::now(), proxy)
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        daemon.kill();
        let _ = killed_tx.send(Instant::now());
        let (r, at, p) = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("the call hangs after the daemon died")
            .expect("call task");
        (r, at, killed_rx.recv().expect("kill time"), p)
    });
    let err = result.expect_err("slow() cannot succeed on a killed daemon");
    let after = error_at.saturating_duration_since(killed_at);
    eprintln!(
        "pyro-rs client: {} after {after:?}: {err}",
        err.class_name()
    );
    assert_eq!(err.class_name(), "ConnectionClosedError", "{err}");
    assert!(
        after < Duration::from_secs(1),
        "error came {after:?} after the kill"
    );

    let slow = py.wait_for("slow\t", Duration::from_secs(10));
    eprintln!("Pyro4 client: {slow}");
    assert!(
        slow.starts_with("err ConnectionClosedError"),
        "Pyro4 client got: {slow}"
    );
    let took: f64 = slow
        .rsplit('\t')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("elapsed");
    assert!(
        took < 2.0,
        "Pyro4 client waited {took} s for slow() to fail"
    );

    // Back on the same address: the same proxies reconnect by themselves.
    let (_daemon2, uri2) = spawn_child_daemon(port);
    assert_eq!(uri2, uri);
    assert_eq!(
        rt.block_on(echo(&mut proxy, "back"))
            .expect("auto-reconnect"),
        Value::str("back")
    );
    rt.block_on(proxy.reconnect(3)).expect("explicit reconnect");
    assert_eq!(
        rt.block_on(echo(&mut proxy, "again"))
            .expect("after reconnect"),
        Value::str("again")
    );
    let stdin = py.stdin.as_mut().expect("python stdin");
    writeln!(stdin, "go").expect("tell python");
    stdin.flush().expect("flush");
    let again = py.wait_for("again\t", Duration::from_secs(20));
    assert_eq!(again, "ok 'back'");
}

/// Per-connection state of the session test object: tokens of the connections that
/// created session state (Pyro4's instance_mode="session" objects live exactly as long).
#[derive(Default)]
struct Sessions {
    tokens: Mutex<Vec<Weak<dyn std::any::Any + Send + Sync>>>,
}

impl Sessions {
    fn alive(&self) -> usize {
        self.tokens
            .lock()
            .map(|t| t.iter().filter(|w| w.upgrade().is_some()).count())
            .unwrap_or(usize::MAX)
    }
}

#[test]
fn client_killed_mid_request_frees_its_connection_stream_and_session() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = Config {
        // Streams of a vanished client go at once (Pyro4's ITER_STREAM_LINGER = 0).
        iter_stream_linger: 0.0,
        ..Config::default()
    };
    let sessions = Arc::new(Sessions::default());
    let object = Exposed::from_arc("FaultObject", sessions.clone())
        .generator("numbers", |_s, args| {
            args.bind(&[])?;
            Ok((0i64..).map(Value::Int))
        })
        .method("session", |s: &Sessions, args| {
            let token = args.ctx.connection_token();
            args.bind(&[])?;
            let mut t = s
                .tokens
                .lock()
                .map_err(|_| pyro_runtime::Fault::value_error("session table poisoned"))?;
            t.push(token);
            Ok(Value::Int(t.len() as i64))
        })
        .async_method("hold", |_s, args| async move {
            args.bind(&[])?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Ok(Value::str("held"))
        });
    let (handle, uri, task) = rt.block_on(async {
        let d = DaemonBuilder::with_config(Arc::new(config))
            .host("127.0.0.1")
            .port(0)
            .bind()
            .await
            .expect("bind");
        let uri = d.register(object, Some("fault"), false).expect("register");
        let handle = d.handle();
        let task = tokio::spawn(async move { d.run().await });
        (handle, uri.to_string(), task)
    });

    let mut py = python_fault_client("session", &uri);
    py.wait_for("ready", Duration::from_secs(30));
    assert_eq!(handle.connection_count(), 1);
    assert_eq!(handle.stream_count(), 1);
    assert_eq!(sessions.alive(), 1);
    // Killed while hold() runs on the daemon.
    std::thread::sleep(Duration::from_millis(200));
    let killed = Instant::now();
    py.kill();
    let deadline = killed + Duration::from_secs(10);
    while (handle.connection_count() > 0 || handle.stream_count() > 0 || sessions.alive() > 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = killed.elapsed();
    assert_eq!(handle.connection_count(), 0, "connection not freed");
    assert_eq!(handle.stream_count(), 0, "item stream not freed");
    assert_eq!(sessions.alive(), 0, "session state not freed");
    eprintln!("client killed mid-request: freed after {took:?} (hold() ran 1.5 s)");

    // And the daemon serves the next client.
    let mut probe_proxy = Proxy::new(&uri).expect("proxy");
    let n = rt
        .block_on(probe_proxy.call("session", vec![], Dict::new()))
        .expect("next client served");
    assert_eq!(n, Value::Int(2));
    handle.shutdown();
    let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(15), task).await });
}

#[test]
fn pyroname_proxies_survive_a_name_server_restart() {
    let dir = std::env::temp_dir().join(format!("pyro-rs-faults-ns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let db = dir.join("ns.sqlite");
    let mut ns = TestNs::start(Config::default(), StorageSpec::Sql(db.clone()), 0);
    let port = ns.port;
    let echo_daemon = TestDaemon::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = Arc::new(Config::default());
    rt.block_on(async {
        let mut client =
            pyro_runtime::locate_ns_with(&cfg, Some("127.0.0.1"), Some(port), false, None)
                .await
                .expect("locate ns");
        client
            .register("fault.echo", &echo_daemon.uri, false, None)
            .await
            .expect("register");
    });
    let name = format!("PYRONAME:fault.echo@127.0.0.1:{port}");
    let mut proxy = Proxy::new(&name).expect("proxy");
    proxy.set_timeout(Some(Duration::from_secs(10)));
    assert_eq!(
        rt.block_on(echo(&mut proxy, "one")).expect("via PYRONAME"),
        Value::str("one")
    );
    let mut probe = Probe::start();
    assert_eq!(probe.ask("pyroname", &name), "ok 'alive'");

    // Name server down: the bound proxy keeps working; a fresh lookup fails clearly.
    ns.stop();
    assert_eq!(
        rt.block_on(echo(&mut proxy, "two"))
            .expect("still connected"),
        Value::str("two")
    );
    proxy.release();
    let started = Instant::now();
    let err = rt
        .block_on(echo(&mut proxy, "three"))
        .expect_err("no name server");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(err.class_name(), "NamingError" | "CommunicationError"),
        "{err}"
    );
    let a = probe.ask("pyroname", &name);
    assert!(
        a.starts_with("err "),
        "Pyro4 client with the name server down: {a}"
    );

    // Back on the same port with the same database: both resolve again.
    let _ns2 = TestNs::start(Config::default(), StorageSpec::Sql(db), port);
    assert_eq!(
        rt.block_on(echo(&mut proxy, "four"))
            .expect("after restart"),
        Value::str("four")
    );
    assert_eq!(probe.ask("pyroname", &name), "ok 'alive'");
    let _ = std::fs::remove_dir_all(&dir);
}
