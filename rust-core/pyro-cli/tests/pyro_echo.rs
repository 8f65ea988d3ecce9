//! pyro-echo against real Python Pyro4 4.82 clients (and a Pyro4 name server for -n):
//! banner, calls, HMAC from PYRO_HMAC_KEY, Unix sockets, remote shutdown, option errors.

use interop_tests::{name_server, run_python};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running pyro-echo; killed on drop.
struct Echo {
    child: Child,
    banner: Vec<String>,
    uri: String,
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pyro-echo"));
    cmd.args(args)
        .env("PYRO_BROADCAST_ADDRS", "127.0.0.1")
        .env_remove("PYRO_HMAC_KEY")
        .env_remove("PYRO_NS_HOST")
        .env_remove("PYRO_NS_PORT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn start(args: &[&str], env: &[(&str, &str)]) -> Echo {
    let mut child = command(args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pyro-echo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Owned before waiting, so a failed start still kills the process.
    let mut echo = Echo {
        child,
        banner: Vec::new(),
        uri: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no 'echo uri:' line; got {:?}", echo.banner));
        let uri = line.strip_prefix("echo uri: ").map(str::to_string);
        echo.banner.push(line);
        if let Some(uri) = uri {
            // the line after the URI
            if let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
                echo.banner.push(l);
            }
            echo.uri = uri;
            return echo;
        }
    }
}

fn wait_exit(echo: &mut Echo, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = echo.child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

const CLIENT: &str = r#"
import sys, Pyro4
uri = sys.argv[1]
p = Pyro4.Proxy(uri)
if len(sys.argv) > 2:
    p._pyroHmacKey = sys.argv[2].encode()
print(p.echo("hello"), list(p.generator()), p.verbose)
try:
    p.error_with_text()
except ValueError as e:
    print("ValueError:", e)
p.shutdown()
"#;

#[test]
fn banner_calls_and_remote_shutdown() {
    let mut echo = start(&["-H", "127.0.0.1", "-p", "0"], &[]);
    assert_eq!(echo.banner[0], "Starting Pyro's built-in test echo server.");
    assert_eq!(
        echo.banner[1],
        "Warning: HMAC key not set. Anyone can connect to this server!"
    );
    assert_eq!(echo.banner[2], "object name: test.echoserver");
    assert!(
        echo.uri.starts_with("PYRO:test.echoserver@127.0.0.1:"),
        "{}",
        echo.uri
    );
    assert_eq!(
        echo.banner.last().map(String::as_str),
        Some("echoserver running.")
    );
    let out = run_python(CLIENT, &[&echo.uri]);
    assert_eq!(
        out,
        "hello ['one', 'two', 'three'] False\nValueError: the message of the error"
    );
    assert_eq!(
        wait_exit(&mut echo, Duration::from_secs(10)),
        Some(0),
        "shutdown() stops pyro-echo"
    );
}

#[test]
fn hmac_key_from_environment() {
    let mut echo = start(&["-H", "127.0.0.1", "-v"], &[("PYRO_HMAC_KEY", "s3cret")]);
    assert!(
        !echo.banner.iter().any(|l| l.starts_with("Warning: HMAC")),
        "{:?}",
        echo.banner
    );
    assert!(
        echo.banner.iter().any(|l| l == "not using a name server."),
        "{:?}",
        echo.banner
    );
    let out = run_python(CLIENT, &[&echo.uri, "s3cret"]);
    // -v turns the verbose property on.
    assert!(
        out.starts_with("hello ['one', 'two', 'three'] True"),
        "{out}"
    );
    assert_eq!(wait_exit(&mut echo, Duration::from_secs(10)), Some(0));
}

#[cfg(unix)]
#[test]
fn unix_socket() {
    let path = std::env::temp_dir().join(format!("pyro-echo-test-{}.sock", std::process::id()));
    let path = path.to_string_lossy().into_owned();
    let mut echo = start(&["-u", &path], &[]);
    assert_eq!(echo.uri, format!("PYRO:test.echoserver@./u:{path}"));
    let out = run_python(CLIENT, &[&echo.uri]);
    assert!(out.starts_with("hello"), "{out}");
    assert_eq!(wait_exit(&mut echo, Duration::from_secs(10)), Some(0));
    assert!(!std::path::Path::new(&path).exists(), "socket file removed");
}

#[test]
fn quiet_prints_nothing() {
    let mut child = command(&["-H", "127.0.0.1", "-q"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    std::thread::sleep(Duration::from_millis(500));
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn registers_in_a_pyro4_name_server() {
    let ns = name_server();
    let port = ns.port().to_string();
    let mut echo = start(
        &["-H", "127.0.0.1", "-n"],
        &[("PYRO_NS_HOST", "127.0.0.1"), ("PYRO_NS_PORT", &port)],
    );
    let code = r#"
import sys, Pyro4
ns = Pyro4.locateNS("127.0.0.1", int(sys.argv[1]))
print(ns.lookup("test.echoserver"))
print(Pyro4.Proxy("PYRONAME:test.echoserver@127.0.0.1:" + sys.argv[1]).echo(42))
"#;
    let out = run_python(code, &[&port]);
    assert_eq!(out, format!("{}\n42", echo.uri));
    let _ = wait_exit(&mut echo, Duration::from_millis(10));
}

#[test]
fn starts_its_own_name_server_with_capital_n() {
    let mut echo = start(&["-H", "127.0.0.1", "-N", "-v"], &[("PYRO_NS_PORT", "0")]);
    let ns_uri = echo
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("using name server at "))
        .unwrap_or_else(|| panic!("no name server line in {:?}", echo.banner))
        .to_string();
    assert!(
        echo.banner
            .iter()
            .any(|l| l == "not using a broadcast server"),
        "{:?}",
        echo.banner
    );
    let code = r#"
import sys, Pyro4
ns = Pyro4.Proxy(sys.argv[1])
print(ns.lookup("test.echoserver"))
print(Pyro4.Proxy(ns.lookup("test.echoserver")).echo("via ns"))
"#;
    let out = run_python(code, &[&ns_uri]);
    assert_eq!(out, format!("{}\nvia ns", echo.uri));
    let _ = wait_exit(&mut echo, Duration::from_millis(10));
}

#[test]
fn option_errors() {
    let out = command(&["-k", "a"], &[("PYRO_HMAC_KEY", "b")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("don't use -k and PYRO_HMAC_KEY"),
        "{out:?}"
    );
    let out = command(&["--bogus"], &[]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}
