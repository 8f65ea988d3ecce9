//! TLS (Pyro4's SSL mode) on rustls, against real Python Pyro4 4.82 in SSL mode, both
//! ways: a Python client with SSL calls the pyro-rs daemon and name server, a pyro-rs
//! client calls a Python daemon with SSL; one-way (server certificate) and two-way
//! (client certificate required). Certificates (a CA, a server certificate for
//! 127.0.0.1/localhost, a client certificate, and a client certificate from another CA)
//! are generated at test time with rcgen. A plain client against a TLS server and a TLS
//! client against a plain server fail with clear errors, quickly.

mod common_daemon;

use common_daemon::{DaemonOptions, TestDaemon};
use pyro_codec::{Dict, Value};
use pyro_runtime::connection::{Connection, Stream};
use pyro_runtime::daemon::echo::{echo_object, ECHO_OBJECT_NAME};
use pyro_runtime::nameserver::{NameServerDaemon, NameServerOptions};
use pyro_runtime::{tls, Config, Proxy};
use pyro_wire::{Limits, Location, Message, MsgType};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const SERVER_CN: &str = "pyro-rs test server";
const CLIENT_CN: &str = "pyro-rs test client";
/// A refused or failed connection must be reported well within this.
const FAIL_FAST: Duration = Duration::from_secs(8);

/// PEM files written for one test binary run.
struct Pki {
    dir: PathBuf,
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    rogue_cert: String,
    rogue_key: String,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("ca key");
    (params.self_signed(&key).expect("self-signed ca"), key)
}

fn leaf(
    cn: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &(rcgen::Certificate, KeyPair),
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("leaf key");
    let cert = params
        .signed_by(&key, &issuer.0, &issuer.1)
        .expect("sign leaf");
    (cert.pem(), key.serialize_pem())
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pyro-rs-tls-interop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("pki dir");
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("write pem");
            p.display().to_string()
        };
        let root = ca("pyro-rs test CA");
        let rogue_root = ca("some other CA");
        let (sc, sk) = leaf(
            SERVER_CN,
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &root,
        );
        let (cc, ck) = leaf(
            CLIENT_CN,
            &["client.invalid"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &root,
        );
        let (rc, rk) = leaf(
            CLIENT_CN,
            &["client.invalid"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &rogue_root,
        );
        Pki {
            ca: write("ca.pem", &root.0.pem()),
            server_cert: write("server_cert.pem", &sc),
            server_key: write("server_key.pem", &sk),
            client_cert: write("client_cert.pem", &cc),
            client_key: write("client_key.pem", &ck),
            rogue_cert: write("rogue_cert.pem", &rc),
            rogue_key: write("rogue_key.pem", &rk),
            dir,
        }
    })
}

/// Server settings: one-way, or two-way (client certificates from our CA required).
fn server_config(two_way: bool) -> Config {
    let p = pki();
    Config {
        ssl: true,
        ssl_servercert: p.server_cert.clone(),
        ssl_serverkey: p.server_key.clone(),
        ssl_requireclientcert: two_way,
        ssl_cacerts: if two_way { p.ca.clone() } else { String::new() },
        ..Config::default()
    }
}

/// Every pyro-rs proxy in this test binary uses TLS with our CA and client certificate
/// (the process-wide setting, like `Pyro4.config.SSL` in a Python process).
fn rust_client_tls() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let p = pki();
        let cfg = tls::client_config(&Config {
            ssl: true,
            ssl_cacerts: p.ca.clone(),
            ssl_clientcert: p.client_cert.clone(),
            ssl_clientkey: p.client_key.clone(),
            ..Config::default()
        })
        .expect("client tls config");
        tls::set_process_client_config(Some(cfg));
    });
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/tls_peer.py")
}

/// Which SSL settings a Python process gets.
#[derive(Clone, Copy, PartialEq)]
enum PyTls {
    /// No SSL at all.
    Plain,
    /// SSL, trusting our CA, no client certificate.
    ServerOnly,
    /// SSL with our client certificate.
    WithClientCert,
    /// SSL with a client certificate from another CA.
    RogueClientCert,
}

fn py_env(mode: PyTls) -> Vec<(&'static str, String)> {
    let p = pki();
    let mut env = Vec::new();
    if mode == PyTls::Plain {
        return env;
    }
    env.push(("PYRO_SSL", "true".to_string()));
    env.push(("PYRO_SSL_CACERTS", p.ca.clone()));
    match mode {
        PyTls::WithClientCert => {
            env.push(("PYRO_SSL_CLIENTCERT", p.client_cert.clone()));
            env.push(("PYRO_SSL_CLIENTKEY", p.client_key.clone()));
        }
        PyTls::RogueClientCert => {
            env.push(("PYRO_SSL_CLIENTCERT", p.rogue_cert.clone()));
            env.push(("PYRO_SSL_CLIENTKEY", p.rogue_key.clone()));
        }
        _ => {}
    }
    env
}

/// Run `tls_peer.py <args>` as a client; returns its observations and how long it took.
fn py_client(mode: PyTls, args: &[&str]) -> (BTreeMap<String, String>, Duration) {
    let started = Instant::now();
    let mut cmd = Command::new(interop_tests::python());
    cmd.arg(script())
        .args(args)
        .env("PYRO_BROADCAST_ADDRS", "127.0.0.1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYRO_HMAC_KEY");
    for k in [
        "PYRO_SSL",
        "PYRO_SSL_CACERTS",
        "PYRO_SSL_CLIENTCERT",
        "PYRO_SSL_CLIENTKEY",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in py_env(mode) {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run tls_peer.py");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tls_peer.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let obs = stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (obs, took)
}

fn obs<'a>(o: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    o.get(k)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no {k:?} in {o:#?}"))
}

fn tls_daemon(two_way: bool) -> TestDaemon {
    TestDaemon::start_with(DaemonOptions {
        config: Some(server_config(two_way)),
        ..Default::default()
    })
}

async fn rust_echo(uri: &str) -> pyro_runtime::Result<Value> {
    let mut p = Proxy::new(uri)?;
    p.set_timeout(Some(Duration::from_secs(10)));
    p.call("echo", vec![Value::str("rust over tls")], Dict::new())
        .await
}

#[test]
fn python_ssl_client_calls_rust_tls_daemon_one_and_two_way() {
    // One-way: the server certificate is checked against our CA and 127.0.0.1.
    let one = tls_daemon(false);
    assert!(one.handle.is_tls());
    let (o, _) = py_client(PyTls::ServerOnly, &["call", &one.uri]);
    assert_eq!(obs(&o, "echo"), "ok 'over tls'");
    assert_eq!(obs(&o, "server_cn"), SERVER_CN);

    // A plain Python client gets a clear error, not a hang.
    let (o, took) = py_client(PyTls::Plain, &["call", &one.uri]);
    let e = obs(&o, "echo");
    assert!(
        e.starts_with("err ") && e.contains("Error"),
        "plain client vs TLS daemon: {e}"
    );
    assert!(took < FAIL_FAST, "plain client took {took:?}");

    // Two-way: a client certificate from our CA is required.
    let two = tls_daemon(true);
    let (o, _) = py_client(PyTls::WithClientCert, &["call", &two.uri]);
    assert_eq!(obs(&o, "echo"), "ok 'over tls'");
    for mode in [PyTls::ServerOnly, PyTls::RogueClientCert] {
        let (o, took) = py_client(mode, &["call", &two.uri]);
        let e = obs(&o, "echo");
        assert!(e.starts_with("err "), "refused client cert: {e}");
        assert!(took < FAIL_FAST, "refusal took {took:?}");
    }
    // The refusals cost nothing: the daemons still serve.
    let (o, _) = py_client(PyTls::WithClientCert, &["call", &two.uri]);
    assert_eq!(obs(&o, "echo"), "ok 'over tls'");
    let (o, _) = py_client(PyTls::ServerOnly, &["call", &one.uri]);
    assert_eq!(obs(&o, "echo"), "ok 'over tls'");
}

#[test]
fn rust_tls_client_calls_python_ssl_daemon_two_way() {
    rust_client_tls();
    let p = pki();
    let env = [
        ("PYRO_SSL", "true"),
        ("PYRO_SSL_SERVERCERT", p.server_cert.as_str()),
        ("PYRO_SSL_SERVERKEY", p.server_key.as_str()),
        ("PYRO_SSL_REQUIRECLIENTCERT", "true"),
        ("PYRO_SSL_CACERTS", p.ca.as_str()),
    ];
    // The Python daemon also checks the client certificate's name in validateHandshake,
    // as Pyro4's examples/ssl does.
    let script = script();
    let server = interop_tests::Peer::start(
        &[script.to_str().expect("path"), "server", CLIENT_CN],
        &env,
        "uri:",
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let v = rt.block_on(rust_echo(&server.uri)).expect("echo over tls");
    assert_eq!(v, Value::str("rust over tls"));

    // The same Python daemon refuses a plain pyro-rs connection (raw, no TLS) quickly.
    let started = Instant::now();
    let loc = Location::Tcp {
        host: "127.0.0.1".into(),
        port: server.port(),
    };
    let err = rt
        .block_on(plain_handshake(&loc))
        .expect_err("plain vs SSL");
    assert!(started.elapsed() < FAIL_FAST, "{:?}", started.elapsed());
    // ConnectionClosedError is a CommunicationError in Pyro4's tree.
    assert!(
        matches!(
            err.class_name(),
            "CommunicationError" | "ConnectionClosedError"
        ),
        "{err}"
    );
    let v = rt.block_on(rust_echo(&server.uri)).expect("still served");
    assert_eq!(v, Value::str("rust over tls"));
}

/// A CONNECT over a plain connection (whatever the process-wide TLS setting is).
async fn plain_handshake(loc: &Location) -> pyro_runtime::Result<Message> {
    let stream = Stream::connect_tls(loc, None).await?;
    let mut conn = Connection::new(stream, Limits::default(), None);
    let payload = pyro_codec::SerializerKind::Serpent
        .encode(&Value::Dict(Dict::from_unique_pairs(vec![(
            Value::str("handshake"),
            Value::str("hello"),
        )])))
        .expect("encode");
    let msg = Message::new(MsgType::Connect, 0, 1, payload);
    conn.send(&msg.encode(false, None, 0).expect("encode"))
        .await?;
    tokio::time::timeout(Duration::from_secs(10), conn.recv_expected())
        .await
        .map_err(|_| pyro_runtime::Error::Timeout("no answer".into()))?
}

#[test]
fn rust_to_rust_tls_and_mismatches_fail_clearly() {
    rust_client_tls();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // pyro-rs client -> pyro-rs daemon, two-way.
    let two = tls_daemon(true);
    let v = rt.block_on(rust_echo(&two.uri)).expect("rust to rust tls");
    assert_eq!(v, Value::str("rust over tls"));

    // A plain connection to a TLS daemon: told that the peer speaks TLS.
    let loc = Location::Tcp {
        host: "127.0.0.1".into(),
        port: two.port,
    };
    let started = Instant::now();
    let err = rt
        .block_on(plain_handshake(&loc))
        .expect_err("plain vs tls");
    assert!(started.elapsed() < FAIL_FAST);
    assert!(err.to_string().contains("peer speaks TLS"), "{err}");

    // A TLS client against plain daemons (pyro-rs and Python): a TLS handshake error
    // naming the likely cause.
    let plain_rust = TestDaemon::start();
    let plain_python = interop_tests::echo_server(None);
    for uri in [plain_rust.uri.as_str(), plain_python.uri.as_str()] {
        let started = Instant::now();
        let err = rt.block_on(rust_echo(uri)).expect_err("tls vs plain");
        assert!(
            started.elapsed() < FAIL_FAST,
            "{uri}: {:?}",
            started.elapsed()
        );
        let text = err.to_string();
        assert!(
            text.contains("TLS handshake failed") && text.contains("is SSL enabled"),
            "{uri}: {text}"
        );
    }
    // The TLS daemon is unharmed.
    let v = rt.block_on(rust_echo(&two.uri)).expect("still served");
    assert_eq!(v, Value::str("rust over tls"));
}

#[test]
fn name_server_over_tls_with_python_and_rust_clients_and_pyroname() {
    rust_client_tls();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = Arc::new(server_config(false));
    let mut opts = NameServerOptions::new(config.clone());
    opts.host = Some("127.0.0.1".into());
    opts.port = Some(0);
    opts.enable_broadcast = false;
    let (ns_uri, ns_handle, task) = rt.block_on(async {
        let ns = NameServerDaemon::start(opts).await.expect("start ns");
        let uri = ns.uri().clone();
        let handle = ns.handle();
        let task = tokio::spawn(async move {
            let _ = ns.run().await;
        });
        (uri, handle, task)
    });
    assert!(ns_handle.is_tls());
    let port = match &ns_uri.location {
        Some(Location::Tcp { port, .. }) => *port,
        other => panic!("{other:?}"),
    };
    let port_s = port.to_string();

    // Python's locateNS over SSL registers a name and lists.
    let (o, _) = py_client(PyTls::ServerOnly, &["ns", "127.0.0.1", &port_s]);
    let list = obs(&o, "list");
    assert!(
        list.contains("'Pyro.NameServer'") && list.contains("'tls.python'"),
        "{list}"
    );

    // A pyro-rs TLS daemon registered in it, reached by PYRONAME over TLS.
    let echo = tls_daemon(false);
    rt.block_on(async {
        let client_cfg = Arc::new(Config::default());
        let mut ns =
            pyro_runtime::locate_ns_with(&client_cfg, Some("127.0.0.1"), Some(port), false, None)
                .await
                .expect("locate ns over tls");
        let names = ns.list(&pyro_runtime::ListFilter::All).await.expect("list");
        assert!(names.iter().any(|(n, _)| n == "tls.python"), "{names:?}");
        ns.register("tls.rust", &echo.uri, false, None)
            .await
            .expect("register");
    });
    let v = rt
        .block_on(rust_echo(&format!("PYRONAME:tls.rust@127.0.0.1:{port}")))
        .expect("PYRONAME over tls");
    assert_eq!(v, Value::str("rust over tls"));
    assert!(echo.uri.contains(ECHO_OBJECT_NAME));
    let _ = echo_object; // the echo daemon serves pyro-rs's echo object

    ns_handle.shutdown();
    let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(15), task).await });
}
