//! pyro-nsc against a real Pyro4 4.82 name server: every command, compared line for line
//! with what Pyro4's own `python -m Pyro4.nsc` prints against the same name server.

use interop_tests::{name_server, python, run_python, Peer};
use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn base_env(cmd: &mut Command) -> &mut Command {
    cmd.env("PYRO_BROADCAST_ADDRS", "127.0.0.1")
        .env_remove("PYRO_HMAC_KEY")
        .env_remove("PYRO_NS_HOST")
}

/// Run our pyro-nsc with `args`, feeding `stdin`.
fn ours(ns: &Peer, args: &[&str], stdin: &str) -> Run {
    let port = ns.port().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pyro-nsc"));
    base_env(&mut cmd)
        .args(["-n", "127.0.0.1", "-p", &port])
        .args(args);
    feed(cmd, stdin)
}

/// Run Pyro4's nsc with `args`.
fn theirs(ns: &Peer, args: &[&str], stdin: &str) -> Run {
    let port = ns.port().to_string();
    let mut cmd = Command::new(python());
    base_env(&mut cmd)
        .args(["-m", "Pyro4.nsc", "-n", "127.0.0.1", "-p", &port])
        .args(args);
    feed(cmd, stdin)
}

fn feed(mut cmd: Command, stdin: &str) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    finish(child.wait_with_output().expect("wait"))
}

/// Both tools print the same for a read-only command, and ours exits 0.
fn same_output(ns: &Peer, args: &[&str]) -> String {
    let a = ours(ns, args, "");
    let b = theirs(ns, args, "");
    assert_eq!(a.code, 0, "pyro-nsc {args:?} failed: {}", a.stderr);
    assert_eq!(
        a.stdout, b.stdout,
        "pyro-nsc {args:?} output differs from Pyro4's nsc"
    );
    a.stdout
}

/// A Pyro4 client's view of the name server, for checking what our mutations did.
fn ns_eval(ns: &Peer, expr: &str) -> String {
    let code =
        format!("import sys, Pyro4\nns = Pyro4.Proxy(sys.argv[1])\nr = {expr}\nprint(repr(r))");
    run_python(&code, &[&ns.uri])
}

#[test]
fn every_command_against_pyro4_name_server() {
    let ns = name_server();

    same_output(&ns, &["ping"]);
    assert_eq!(ours(&ns, &["ping"], "").stdout, "Name server ping ok.\n");

    // register, and a second register of the same name (safe=True) fails
    let r = ours(
        &ns,
        &["register", "example.a", "PYRO:obj_a@localhost:5555"],
        "",
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Registered example.a\n"),
        "{}",
        r.stderr
    );
    assert_eq!(
        ns_eval(&ns, "ns.lookup('example.a').asString()"),
        "'PYRO:obj_a@localhost:5555'"
    );
    let r = ours(
        &ns,
        &["register", "example.a", "PYRO:obj_b@localhost:5555"],
        "",
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        "Error: NamingError - name already registered: example.a"
    );
    let p = theirs(
        &ns,
        &["register", "example.a", "PYRO:obj_b@localhost:5555"],
        "",
    );
    assert_eq!(
        p.stdout.trim(),
        r.stderr.trim(),
        "error text differs from Pyro4's"
    );

    // an invalid URI is refused by the name server
    let r = ours(&ns, &["register", "bad", "not-a-uri"], "");
    assert_eq!(r.code, 1, "{}", r.stdout);

    ours(
        &ns,
        &["register", "example.b", "PYRO:obj_b@localhost:5556"],
        "",
    );
    ours(
        &ns,
        &["register", "other.c", "PYRO:obj_c@localhost:5557"],
        "",
    );

    // setmeta, then the metadata shows in lookup and list
    let r = ours(&ns, &["setmeta", "example.a", "red", "blue"], "");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Metadata updated\n"),
        "{}",
        r.stderr
    );
    assert_eq!(
        ns_eval(
            &ns,
            "sorted(ns.lookup('example.a', return_metadata=True)[1])"
        ),
        "['blue', 'red']"
    );
    let r = ours(&ns, &["setmeta", "example.b", "red"], "");
    assert_eq!(r.code, 0);

    let out = same_output(&ns, &["lookup", "example.a"]);
    assert!(
        out.starts_with("PYRO:obj_a@localhost:5555\nmetadata: ['"),
        "{out}"
    );
    same_output(&ns, &["lookup", "other.c"]);
    let out = same_output(&ns, &["list"]);
    assert!(out.starts_with("--------START LIST \n"), "{out}");
    assert!(
        out.contains("other.c --> PYRO:obj_c@localhost:5557\n"),
        "{out}"
    );
    assert!(
        out.contains("Pyro.NameServer --> PYRO:Pyro.NameServer@127.0.0.1:"),
        "{out}"
    );
    let out = same_output(&ns, &["list", "example."]);
    assert!(!out.contains("other.c"), "{out}");
    same_output(&ns, &["listmatching", "ex.*b$"]);
    let out = same_output(&ns, &["listmeta_all", "red", "blue"]);
    assert!(
        out.contains("example.a") && !out.contains("example.b"),
        "{out}"
    );
    let out = same_output(&ns, &["listmeta_any", "red", "blue"]);
    assert!(
        out.contains("example.a") && out.contains("example.b"),
        "{out}"
    );
    // Pyro5's names for the metadata queries
    assert_eq!(
        ours(&ns, &["yplookup_all", "red"], "").stdout,
        theirs(&ns, &["listmeta_all", "red"], "").stdout
    );
    assert_eq!(
        ours(&ns, &["yplookup_any", "blue"], "").stdout,
        theirs(&ns, &["listmeta_any", "blue"], "").stdout
    );

    let r = ours(&ns, &["setmeta", "example.b"], "");
    assert_eq!(r.stdout, "Metadata cleared\n");
    assert_eq!(
        ns_eval(&ns, "ns.lookup('example.b', return_metadata=True)[1]"),
        "[]"
    );

    // unknown names
    let r = ours(&ns, &["lookup", "nope"], "");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        theirs(&ns, &["lookup", "nope"], "").stdout.trim()
    );

    // remove, and removing again removes nothing
    let r = ours(&ns, &["remove", "other.c"], "");
    assert_eq!(r.stdout, "Removed other.c\n");
    let r = ours(&ns, &["remove", "other.c"], "");
    assert_eq!((r.code, r.stdout.as_str()), (0, "Nothing removed\n"));

    // removematching asks first; 'n' keeps everything, 'y' removes
    let r = ours(&ns, &["removematching", "example\\..*"], "n\n");
    assert!(r.stdout.contains("Are you sure (y/n)?"), "{}", r.stdout);
    assert_eq!(ns_eval(&ns, "ns.count()"), "3");
    let r = ours(&ns, &["removematching", "example\\..*"], "y\n");
    assert!(r.stdout.ends_with("2 items removed.\n"), "{}", r.stdout);
    assert_eq!(ns_eval(&ns, "sorted(ns.list())"), "['Pyro.NameServer']");
    ours(
        &ns,
        &["register", "example.z", "PYRO:obj_z@localhost:1"],
        "",
    );
    let r = ours(&ns, &["-y", "removematching", "example"], "");
    assert_eq!(r.stdout, "1 items removed.\n");
}

#[test]
fn verbose_output_names_the_name_server() {
    let ns = name_server();
    let r = ours(&ns, &["-v", "ping"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let expected = format!(
        "Locating name server...\nName server found: {}\nName server ping ok.\nDone.\n",
        ns.uri
    );
    assert_eq!(r.stdout, expected);
}

#[test]
fn unreachable_name_server_is_a_clear_failure() {
    let port = interop_tests::free_tcp_port().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pyro-nsc"));
    base_env(&mut cmd).args(["-n", "127.0.0.1", "-p", &port, "ping"]);
    let r = feed(cmd, "");
    assert_eq!(r.code, 3, "stdout: {} stderr: {}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("Failed to locate the nameserver"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_usage_exits_2() {
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pyro-nsc"));
        base_env(&mut cmd).args(args);
        feed(cmd, "")
    };
    assert_eq!(run(&["frobnicate"]).code, 2);
    assert_eq!(run(&["lookup"]).code, 2);
    assert_eq!(run(&["register", "onlyname"]).code, 2);
    assert_eq!(run(&[]).code, 2);
    let help = run(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("listmeta_all") && help.stdout.contains("Exit status"),
        "{}",
        help.stdout
    );
}

#[test]
fn hmac_key_from_option_and_environment() {
    let ns = Peer::start(
        &["-m", "Pyro4.naming", "-n", "127.0.0.1", "-p", "0"],
        &[("PYRO_HMAC_KEY", "sesame")],
        "URI =",
    );
    let port = ns.port().to_string();
    let run = |extra: &[&str], key_env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pyro-nsc"));
        base_env(&mut cmd)
            .args(["-n", "127.0.0.1", "-p", &port])
            .args(extra);
        if let Some(k) = key_env {
            cmd.env("PYRO_HMAC_KEY", k);
        }
        feed(cmd, "")
    };
    assert_eq!(run(&["-k", "sesame", "ping"], None).code, 0);
    assert_eq!(run(&["ping"], Some("sesame")).code, 0);
    let wrong = run(&["-k", "wrong", "ping"], None);
    assert_ne!(wrong.code, 0);
    let none = run(&["ping"], None);
    assert_ne!(none.code, 0);
    assert_eq!(run(&["-k", "sesame", "ping"], Some("sesame")).code, 2);
}
