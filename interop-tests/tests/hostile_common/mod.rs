//! Shared by the hostile-input, fault and load suites: a long-lived real Pyro4 client
//! (`python/probe_client.py`) to check after every input that a server still serves,
//! an in-process pyro-rs name server, raw Pyro4 frames, and RSS readings from /proc.

#![allow(dead_code, unreachable_pub)]

use pyro_codec::{Dict, SerializerKind, Value};
use pyro_runtime::nameserver::{NameServerDaemon, NameServerOptions, StorageSpec};
use pyro_runtime::{Config, DaemonHandle};
use pyro_wire::{Location, Message, MsgType};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Resident set size of a process in KiB (`VmRSS` in /proc/<pid>/status).
pub fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// RSS of this test process (where the in-process daemons run).
pub fn self_rss_kib() -> u64 {
    rss_kib("self")
}

/// A real Pyro4 client process answering probes (see `python/probe_client.py`).
pub struct Probe {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Probe {
    /// Start the probe client and wait until it is ready.
    pub fn start() -> Probe {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/probe_client.py");
        let mut child = Command::new(interop_tests::python())
            .arg("-u")
            .arg(script)
            .env("PYRO_BROADCAST_ADDRS", "127.0.0.1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYRO_HMAC_KEY")
            .env_remove("PYRO_SSL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start probe_client.py");
        let stdin = child.stdin.take().expect("stdin");
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
        let ready = rx
            .recv_timeout(interop_tests::STARTUP_TIMEOUT)
            .expect("probe client did not start");
        assert_eq!(ready, "probe ready");
        Probe {
            child,
            stdin,
            lines: rx,
        }
    }

    /// Ask one probe (`echo`, `ns` or `pyroname`) and return the answer line.
    pub fn ask(&mut self, kind: &str, uri: &str) -> String {
        writeln!(self.stdin, "{kind} {uri}").expect("write to probe");
        self.stdin.flush().expect("flush probe");
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("probe {kind} {uri}: no answer within 30 s"))
    }

    /// The echo daemon at `uri` answers a real Pyro4 client.
    pub fn assert_echo(&mut self, uri: &str, after: &str) {
        let a = self.ask("echo", uri);
        assert_eq!(a, "ok 'alive'", "after {after}: Pyro4 client got {a}");
    }

    /// The name server at `uri` answers a real Pyro4 client.
    pub fn assert_ns(&mut self, uri: &str, after: &str) {
        let a = self.ask("ns", uri);
        assert!(a.starts_with("ok "), "after {after}: Pyro4 client got {a}");
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An in-process pyro-rs name server on 127.0.0.1:0 with its own runtime.
pub struct TestNs {
    pub handle: DaemonHandle,
    pub uri: String,
    pub port: u16,
    rt: Option<tokio::runtime::Runtime>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestNs {
    /// Start with the given configuration and storage, optionally on a fixed port.
    pub fn start(config: Config, storage: StorageSpec, port: u16) -> TestNs {
        TestNs::start_keyed(config, storage, port, None)
    }

    /// Start with an HMAC key shared with clients.
    pub fn start_keyed(
        config: Config,
        storage: StorageSpec,
        port: u16,
        hmac_key: Option<&str>,
    ) -> TestNs {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut opts = NameServerOptions::new(Arc::new(config));
        opts.host = Some("127.0.0.1".into());
        opts.port = Some(port);
        opts.enable_broadcast = false;
        opts.storage = storage;
        opts.hmac_key = hmac_key.map(|k| k.as_bytes().to_vec());
        let (handle, uri, task) = rt.block_on(async {
            let ns = NameServerDaemon::start(opts)
                .await
                .expect("start name server");
            let uri = ns.uri().to_string();
            let handle = ns.handle();
            let task = tokio::spawn(async move {
                let _ = ns.run().await;
            });
            (handle, uri, task)
        });
        let port = uri
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        TestNs {
            handle,
            uri,
            port,
            rt: Some(rt),
            task: Some(task),
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stop it and wait (bounded) until the port is released.
    pub fn stop(&mut self) {
        self.handle.shutdown();
        if let (Some(rt), Some(task)) = (self.rt.take(), self.task.take()) {
            let _ =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(15), task).await });
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The location of `127.0.0.1:port`.
pub fn loopback(port: u16) -> Location {
    Location::Tcp {
        host: "127.0.0.1".into(),
        port,
    }
}

/// A CONNECT message asking for metadata of `object`.
pub fn connect_msg(seq: u16, serializer: SerializerKind, object: &str) -> Message {
    let payload = serializer
        .encode(&Value::Dict(Dict::from_unique_pairs(vec![
            (Value::str("handshake"), Value::str("hello")),
            (Value::str("object"), Value::str(object)),
        ])))
        .expect("encode handshake");
    let mut m = Message::new(MsgType::Connect, seq, serializer.id(), payload);
    m.flags = pyro_wire::FLAGS_META_ON_CONNECT;
    m
}

/// Encode without compression.
pub fn encode(m: &Message, key: Option<&[u8]>) -> Vec<u8> {
    m.encode(false, key, 0).expect("encode")
}

/// A raw TCP connection with a read timeout.
pub fn raw(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s
}

/// Complete a handshake on a raw connection (serpent); panics if refused.
pub fn raw_handshake(addr: &str, object: &str) -> TcpStream {
    let mut s = raw(addr);
    s.write_all(&encode(
        &connect_msg(0, SerializerKind::Serpent, object),
        None,
    ))
    .expect("send connect");
    let mut head = [0u8; pyro_wire::HEADER_SIZE];
    s.read_exact(&mut head).expect("connect reply header");
    let header = pyro_wire::Header::parse(&head).expect("reply header");
    assert_eq!(header.msg_type, MsgType::ConnectOk, "handshake refused");
    let mut body = vec![0u8; usize::try_from(header.body_len()).expect("len")];
    s.read_exact(&mut body).expect("connect reply body");
    s
}

/// Send bytes, close the sending side, then read until the server closes. Returns the
/// number of bytes the server sent back; panics if it neither answers nor closes
/// within 10 s (a hang).
pub fn send_and_drain(mut s: TcpStream, bytes: &[u8], what: &str) -> usize {
    // The server may close early (oversized claim): a failed write is fine.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let started = Instant::now();
    let mut total = 0;
    let mut buf = [0u8; 4096];
    let debug = std::env::var_os("HOSTILE_DEBUG").is_some();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => {
                total += n;
                if debug {
                    eprintln!("{what}: {:?}", String::from_utf8_lossy(&buf[..n.min(300)]));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                return total
            }
            Err(e) => panic!("{what}: no close after {:?}: {e}", started.elapsed()),
        }
    }
}

/// Wait (bounded) until a daemon has no connections left.
pub fn wait_idle(handle: &DaemonHandle, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while handle.connection_count() > 0 {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
