//! HMAC, many concurrent clients and the connection limit of the pyro-rs daemon, with
//! real Python Pyro4 4.82 clients (HMAC outcomes compared with Python's echo server).

mod common_daemon;

use common_daemon::{assert_same, get, run_client, DaemonOptions, TestDaemon, SERIALIZERS};

#[test]
fn hmac_on_off_and_mismatched_like_pyro4() {
    for daemon_key in [Some("secret"), None] {
        let rust = TestDaemon::start_with(DaemonOptions {
            hmac_key: daemon_key.map(str::to_string),
            ..Default::default()
        });
        let python = interop_tests::echo_server(daemon_key);
        for client_key in ["secret", "wrong", "-"] {
            for ser in SERIALIZERS {
                let r = run_client("hmac", &rust.uri, &[ser, client_key]);
                let p = run_client("hmac", &python.uri, &[ser, client_key]);
                let expect_ok = match daemon_key {
                    Some(k) => client_key == k,
                    None => client_key == "-",
                };
                let echo = get(&r, "hmac_echo");
                assert_eq!(
                    echo.starts_with("ok 'signed'"),
                    expect_ok,
                    "daemon key {daemon_key:?}, client key {client_key}, {ser}: {echo}"
                );
                if !expect_ok {
                    assert!(echo.contains("Error"), "{echo}");
                }
                assert_same(&r, &p, &[]);
            }
        }
    }
}

#[test]
fn two_hundred_concurrent_python_clients_are_all_served() {
    let rust = TestDaemon::start();
    let obs = run_client("concurrent", &rust.uri, &["serpent", "200"]);
    assert_eq!(get(&obs, "concurrent_failures"), "ok []");
    assert_eq!(get(&obs, "concurrent_ok"), "ok 200");
}

#[test]
fn connection_limit_answers_the_one_over_with_connectfail() {
    let rust = TestDaemon::start_with(DaemonOptions {
        max_connections: Some(3),
        ..Default::default()
    });
    for ser in SERIALIZERS {
        let obs = run_client("limit", &rust.uri, &[ser, "5"]);
        for i in 0..3 {
            assert_eq!(get(&obs, &format!("conn_{i}")), "ok", "{ser}");
        }
        for i in 3..5 {
            assert_eq!(
                get(&obs, &format!("conn_{i}")),
                "CommunicationError: connection to ('127.0.0.1', <port>) rejected: no free workers, \
                 increase server threadpool size",
                "{ser}"
            );
        }
        assert_eq!(get(&obs, "after_release"), "ok 'free again'", "{ser}");
    }
}
