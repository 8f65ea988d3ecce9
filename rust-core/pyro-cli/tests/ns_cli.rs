//! pyro-ns (the binary) against Python Pyro4 4.82: its startup lines next to
//! `python -m Pyro4.naming`'s, every `python -m Pyro4.nsc` command against both name
//! servers, clean shutdown on SIGTERM/SIGINT, and SQLite durability across `kill -9`.

use interop_tests::{free_udp_port, python, run_python, Peer};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const STARTUP: Duration = Duration::from_secs(30);

/// A running pyro-ns; killed on drop.
struct Ns {
    child: Child,
    /// Lines printed up to and including the URI line.
    lines: Vec<String>,
    uri: String,
    rest: mpsc::Receiver<String>,
}

impl Ns {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Ns {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pyro-ns"));
        cmd.args(args)
            .env("PYRO_BROADCAST_ADDRS", "127.0.0.1")
            .env_remove("PYRO_HMAC_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn pyro-ns");
        let rx = line_reader(child.stdout.take().expect("stdout"));
        let (lines, uri) = wait_uri(&rx, "pyro-ns");
        Ns {
            child,
            lines,
            uri,
            rest: rx,
        }
    }

    fn port(&self) -> u16 {
        self.uri
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in uri")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Wait (bounded) for the process to exit; returns its exit code.
    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn line_reader(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    rx
}

/// Lines until the one starting with `URI = ` or `external URI = ` (the last line of
/// Pyro4's banner), and that URI.
fn wait_uri(rx: &mpsc::Receiver<String>, who: &str) -> (Vec<String>, String) {
    let deadline = Instant::now() + STARTUP;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{who} printed no URI; got {lines:#?}"));
        lines.push(line.clone());
        for marker in ["URI = ", "external URI = "] {
            if let Some(uri) = line.strip_prefix(marker) {
                return (lines, uri.trim().to_string());
            }
        }
    }
}

/// Python's name server with the same arguments; its banner lines and URI.
fn python_ns(args: &[&str], env: &[(&str, &str)]) -> (Peer, Vec<String>) {
    let mut full = vec!["-m", "Pyro4.naming"];
    full.extend_from_slice(args);
    let marker = if args.contains(&"--nathost") {
        "external URI ="
    } else {
        "URI ="
    };
    let peer = Peer::start(&full, env, marker);
    let mut lines = peer.banner.clone();
    lines.push(format!("{} {}", marker, peer.uri));
    (peer, lines)
}

fn port_of(uri: &str) -> String {
    uri.rsplit(':').next().unwrap_or_default().to_string()
}

fn normalise(lines: &[String], ports: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let mut l = l.clone();
            for p in ports {
                l = l.replace(p.as_str(), "<PORT>");
            }
            l
        })
        .collect()
}

fn tmp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("pyro-ns-cli-{}-{tag}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

#[test]
fn startup_lines_match_pyro4() {
    // plain, on loopback: no broadcast server, HMAC warning, URI
    let (py, theirs) = python_ns(&["-n", "127.0.0.1", "-p", "0"], &[]);
    let ours = Ns::start(&["-n", "127.0.0.1", "-p", "0"], &[]);
    assert_eq!(
        normalise(&ours.lines, &[ours.port().to_string()]),
        normalise(&theirs, &[py.port().to_string()])
    );
    assert_eq!(
        ours.lines[0],
        "Not starting broadcast server for localhost."
    );

    // with an HMAC key (from the environment) and NAT: no warning, internal/external URI
    let nat = [
        "-n",
        "127.0.0.1",
        "-p",
        "0",
        "--nathost",
        "nat.example",
        "--natport",
        "4444",
    ];
    let (py, theirs) = python_ns(&nat, &[("PYRO_HMAC_KEY", "k")]);
    let ours = Ns::start(&nat, &[("PYRO_HMAC_KEY", "k")]);
    let our_internal = ours
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("internal URI = "))
        .map(port_of)
        .expect("internal uri line");
    let their_internal = theirs
        .iter()
        .find_map(|l| l.strip_prefix("internal URI = "))
        .map(port_of)
        .expect("pyro4 internal uri line");
    assert_eq!(
        normalise(&ours.lines, &[our_internal]),
        normalise(&theirs, &[their_internal])
    );
    assert_eq!(ours.uri, "PYRO:Pyro.NameServer@nat.example:4444");
    drop(py);

    // -x on loopback: Pyro4 still says it does not start one for localhost
    let ours = Ns::start(&["-n", "127.0.0.1", "-p", "0", "-x"], &[]);
    let (py, theirs) = python_ns(&["-n", "127.0.0.1", "-p", "0", "-x"], &[]);
    assert_eq!(
        normalise(&ours.lines, &[ours.port().to_string()]),
        normalise(&theirs, &[py.port().to_string()])
    );

    // Unix domain socket: no broadcast server, "(Unix domain socket)"
    let dir = tmp_dir("unix");
    let ours_sock = dir.join("ours.sock").display().to_string();
    let theirs_sock = dir.join("theirs.sock").display().to_string();
    let mut ours = Ns::start(&["-u", &ours_sock], &[]);
    let (py, theirs) = python_ns(&["-u", &theirs_sock], &[]);
    let ours_lines: Vec<String> = ours
        .lines
        .iter()
        .map(|l| l.replace(&ours_sock, "<SOCK>"))
        .collect();
    let theirs: Vec<String> = theirs
        .iter()
        .map(|l| l.replace(&theirs_sock, "<SOCK>"))
        .collect();
    assert_eq!(ours_lines, theirs);
    let out = Command::new(python())
        .args(["-m", "Pyro4.nsc", "-u", &ours_sock, "ping"])
        .output()
        .expect("nsc -u");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Name server ping ok.\n"
    );
    ours.signal("-TERM");
    assert_eq!(ours.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(
        !std::path::Path::new(&ours_sock).exists(),
        "socket file removed on shutdown"
    );
    drop(py);

    // an explicit --bchost forces the responder even on loopback (our extension)
    let bcport = free_udp_port().to_string();
    let ours = Ns::start(
        &[
            "-n",
            "127.0.0.1",
            "-p",
            "0",
            "--bchost",
            "127.0.0.1",
            "--bcport",
            &bcport,
        ],
        &[],
    );
    assert_eq!(
        ours.lines[0],
        format!("Broadcast server running on 127.0.0.1:{bcport}")
    );
}

#[test]
fn bad_options_fail_like_pyro4() {
    let out = Command::new(env!("CARGO_BIN_EXE_pyro-ns"))
        .args(["-n", "127.0.0.1", "-p", "0", "-s", "bogus"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid storage type 'bogus'"));
    let out = Command::new(env!("CARGO_BIN_EXE_pyro-ns"))
        .args(["-n", "127.0.0.1", "-p", "0", "-s", "sql::memory:"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":memory:"));
    let out = Command::new(env!("CARGO_BIN_EXE_pyro-ns"))
        .args(["-n", "127.0.0.1", "-p", "0", "-k", "a"])
        .env("PYRO_HMAC_KEY", "b")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("don't use -k and PYRO_HMAC_KEY at the same time"));
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    for sig in ["-TERM", "-INT"] {
        let mut ns = Ns::start(&["-n", "127.0.0.1", "-p", "0", "-x"], &[]);
        run_python(
            "import sys, Pyro4\nPyro4.Proxy(sys.argv[1]).ping()",
            &[&ns.uri],
        );
        ns.signal(sig);
        let code = ns.wait_exit(Duration::from_secs(15));
        assert_eq!(code, Some(0), "exit after {sig}");
        let rest: Vec<String> = ns.rest.try_iter().collect();
        assert_eq!(
            rest.last().map(String::as_str),
            Some("NS shut down."),
            "{rest:?}"
        );
    }
}

/// Run `python -m Pyro4.nsc -n 127.0.0.1 -p <port> <args>` with `stdin`.
fn nsc(port: u16, args: &[&str], stdin: &str) -> String {
    let port = port.to_string();
    let mut child = Command::new(python())
        .args(["-m", "Pyro4.nsc", "-n", "127.0.0.1", "-p", &port])
        .args(args)
        .env("PYRO_BROADCAST_ADDRS", "127.0.0.1")
        .env_remove("PYRO_HMAC_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nsc");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin");
    let out = child.wait_with_output().expect("nsc");
    assert!(
        out.status.success(),
        "nsc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_nsc_command_matches_pyro4_name_server() {
    let script: &[(&[&str], &str)] = &[
        (&["ping"], ""),
        (&["register", "example.a", "PYRO:obj_a@localhost:5555"], ""),
        (&["register", "example.a", "PYRO:obj_b@localhost:5555"], ""),
        (&["register", "bad", "not-a-uri"], ""),
        (&["register", "example.b", "PYRO:obj_b@localhost:5556"], ""),
        (&["register", "other.c", "PYRO:obj_c@localhost:5557"], ""),
        (&["list"], ""),
        (&["list", "example."], ""),
        (&["list", "nothing."], ""),
        (&["listmatching", r"example\.[ab]"], ""),
        (&["listmatching", "xample"], ""),
        (&["setmeta", "example.a", "tag1"], ""),
        (&["setmeta", "example.b", "tag2"], ""),
        (&["setmeta", "nope", "tag2"], ""),
        (&["lookup", "example.a"], ""),
        (&["lookup", "other.c"], ""),
        (&["lookup", "nope"], ""),
        (&["lookup", "Pyro.NameServer"], ""),
        (&["listmeta_all", "tag1"], ""),
        (&["listmeta_all", "tag1", "tag2"], ""),
        (&["listmeta_any", "tag1", "tag2"], ""),
        (&["listmeta_any", "class:Pyro4.naming.NameServer"], ""),
        (&["setmeta", "example.b"], ""),
        (&["list"], ""),
        (&["remove", "example.b"], ""),
        (&["remove", "example.b"], ""),
        (&["remove", "Pyro.NameServer"], ""),
        (&["removematching", "other"], "n\n"),
        (&["list"], ""),
        (&["removematching", "other"], "y\n"),
        (&["removematching", ".*"], "y\n"),
        (&["list"], ""),
    ];
    let (py, _) = python_ns(&["-n", "127.0.0.1", "-p", "0"], &[]);
    let ours = Ns::start(&["-n", "127.0.0.1", "-p", "0"], &[]);
    let mut removed_line_seen = false;
    for (args, stdin) in script {
        let theirs = nsc(py.port(), args, stdin).replace(&py.uri, "<NSURI>");
        let mine = nsc(ours.port(), args, stdin).replace(&ours.uri, "<NSURI>");
        assert_eq!(mine, theirs, "nsc {args:?}");
        removed_line_seen |= mine.contains("items removed.");
    }
    assert!(removed_line_seen);
    // invalid regex: same error class, message worded by the regex engine
    let theirs = nsc(py.port(), &["listmatching", "("], "");
    let mine = nsc(ours.port(), &["listmatching", "("], "");
    assert!(
        theirs.starts_with("Error: NamingError - invalid regex: "),
        "{theirs}"
    );
    assert!(
        mine.starts_with("Error: NamingError - invalid regex: "),
        "{mine}"
    );
}

/// Registers names in a loop, printing `ACK <i>` after each acknowledged call; stops at
/// the first error (the name server was killed) or the bounds.
const REGISTER_LOOP: &str = r#"
import sys, time, Pyro4
ns = Pyro4.Proxy(sys.argv[1])
deadline = time.time() + 30
for i in range(5000):
    if time.time() > deadline:
        break
    try:
        ns.register("kill.%d" % i, "PYRO:obj_%d@localhost:%d" % (i, 1000 + i), metadata={"k%d" % (i % 3), "all"})
    except Exception as e:
        print("STOP", type(e).__name__, flush=True)
        break
    print("ACK", i, flush=True)
"#;

const VERIFY: &str = r#"
import sys, sqlite3, Pyro4
ns = Pyro4.Proxy(sys.argv[1])
acked = int(sys.argv[2])
everything = ns.list(return_metadata=True)
missing = []
for i in range(acked):
    entry = everything.get("kill.%d" % i)
    want = ("PYRO:obj_%d@localhost:%d" % (i, 1000 + i), sorted(["k%d" % (i % 3), "all"]))
    if entry is None or (entry[0], sorted(entry[1])) != want:
        missing.append(i)
print("missing", missing)
print("count", ns.count())
db = sqlite3.connect(sys.argv[3])
print("integrity", db.execute("PRAGMA integrity_check").fetchone()[0])
print("fk", db.execute("PRAGMA foreign_key_check").fetchall())
"#;

#[test]
fn sqlite_registrations_survive_kill_9() {
    let dir = tmp_dir("kill9");
    let db = dir.join("ns.sqlite");
    let storage = format!("sql:{}", db.display());
    let args = ["-n", "127.0.0.1", "-p", "0", "-x", "-s", storage.as_str()];
    let mut ns = Ns::start(&args, &[]);
    let mut client = Command::new(python())
        .args(["-u", "-c", REGISTER_LOOP, &ns.uri])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("client");
    let acks = line_reader(client.stdout.take().expect("stdout"));
    let mut acked = 0usize;
    let deadline = Instant::now() + Duration::from_secs(40);
    while acked < 60 && Instant::now() < deadline {
        match acks.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.starts_with("ACK ") => acked += 1,
            Ok(line) => panic!("client stopped early: {line}"),
            Err(_) => break,
        }
    }
    assert!(acked >= 60, "client registered only {acked} names");
    // kill -9 in the middle of the loop
    ns.child.kill().expect("SIGKILL");
    let _ = ns.child.wait();
    let status = client.wait().expect("client exit");
    assert!(status.success());
    for line in acks.try_iter() {
        if line.starts_with("ACK ") {
            acked += 1;
        } else {
            assert!(line.starts_with("STOP "), "{line}");
        }
    }
    drop(ns);

    // restart on the same file: every acknowledged registration is there
    let ns = Ns::start(&args, &[]);
    let existing = ns
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("Persistent store contains "))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("persistent store line");
    assert!(
        existing > acked,
        "{existing} registrations for {acked} acks"
    );
    let out = run_python(
        VERIFY,
        &[&ns.uri, &acked.to_string(), &db.display().to_string()],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "missing []", "{out}");
    assert_eq!(lines[1], format!("count {existing}"));
    assert_eq!(lines[2], "integrity ok");
    assert_eq!(lines[3], "fk []");

    // and the Rust client sees the same
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut client =
            pyro_runtime::naming::locate_ns(Some("127.0.0.1"), Some(ns.port()), false, None)
                .await
                .expect("locate");
        let (uri, meta) = client.lookup_with_metadata("kill.0").await.expect("lookup");
        assert_eq!(uri.to_string(), "PYRO:obj_0@localhost:1000");
        let mut meta = meta;
        meta.sort();
        assert_eq!(meta, ["all", "k0"]);
        let all = client
            .list(&pyro_runtime::ListFilter::MetadataAll(vec![
                "all".into(),
                "k1".into(),
            ]))
            .await
            .expect("list");
        // names kill.0 .. kill.<n-1> are registered, one after the other
        let n = existing - 1;
        assert_eq!(all.len(), (n + 1) / 3);
        assert!(all.iter().all(|(n, _)| {
            n.strip_prefix("kill.")
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i % 3 == 1)
        }));
    });
    let _ = std::fs::remove_dir_all(&dir);
}
