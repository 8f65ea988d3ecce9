//! Daemon tests on 127.0.0.1 / Unix sockets with the Rust [`crate::Proxy`] as client
//! (the Python-client interop tests live in interop-tests/tests/daemon_*.rs).

use super::echo::{echo_object, ECHO_OBJECT_NAME};
use super::*;
use crate::{Error, Proxy};
use pyro_codec::Dict;
use std::time::Instant;

fn config() -> Arc<Config> {
    Arc::new(Config::default())
}

async fn start(builder: DaemonBuilder) -> (DaemonHandle, tokio::task::JoinHandle<()>) {
    let daemon = builder.bind().await.expect("bind");
    daemon
        .register(echo_object(false), Some(ECHO_OBJECT_NAME), false)
        .expect("register");
    let handle = daemon.handle();
    let task = tokio::spawn(async move { daemon.run().await.expect("run") });
    (handle, task)
}

fn local() -> DaemonBuilder {
    DaemonBuilder::with_config(config())
        .host("127.0.0.1")
        .port(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_and_errors_over_tcp() {
    let (handle, task) = start(local()).await;
    let uri = handle.uri_for(ECHO_OBJECT_NAME).to_string();
    assert!(uri.starts_with("PYRO:test.echoserver@127.0.0.1:"), "{uri}");
    let mut p = Proxy::new(&uri).expect("proxy");
    let v = p
        .call("echo", vec![Value::str("hi")], Dict::new())
        .await
        .expect("echo");
    assert_eq!(v, Value::str("hi"));
    let err = p.call("error", vec![], Dict::new()).await.unwrap_err();
    assert_eq!(err.class_name(), "ValueError");
    assert!(
        err.remote_traceback()
            .is_some_and(|t| t.contains("test.echoserver.error")),
        "{err:?}"
    );
    assert_eq!(
        p.get_attr("verbose").await.expect("attr"),
        Value::Bool(false)
    );
    let items = p
        .call_stream("generator", vec![], Dict::new())
        .await
        .expect("stream")
        .collect()
        .await;
    assert_eq!(
        items.expect("items"),
        vec![Value::str("one"), Value::str("two"), Value::str("three")]
    );
    handle.shutdown();
    task.await.expect("daemon task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_running_calls_and_closes_idle_connections() {
    let daemon = local().bind().await.expect("bind");
    let nap = Exposed::new("Napper", ()).async_method("nap", |_s, _a| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(Value::str("rested"))
    });
    let uri = daemon.register(nap, None, false).expect("register");
    assert!(
        uri.object.starts_with("obj_") && uri.object.len() == 36,
        "{uri}"
    );
    assert!(uri.object[4..]
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let handle = daemon.handle();
    let task = tokio::spawn(async move { daemon.run().await });
    let uri = uri.to_string();
    let mut idle = Proxy::new(&uri).expect("proxy");
    idle.bind().await.expect("bind");
    let call = tokio::spawn(async move {
        let mut p = Proxy::new(&uri).expect("proxy");
        p.call("nap", vec![], Dict::new()).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    handle.shutdown();
    assert!(handle.is_shutting_down());
    task.await.expect("join").expect("run");
    assert_eq!(
        call.await.expect("join").expect("nap finished"),
        Value::str("rested")
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(handle.connection_count(), 0);
    // The idle connection was closed by the daemon.
    let err = idle.call("nap", vec![], Dict::new()).await.unwrap_err();
    assert!(err.is_communication_error(), "{err:?}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_daemon() {
    let path = std::env::temp_dir().join(format!("pyro-rs-daemon-{}.sock", std::process::id()));
    let path_str = path.to_string_lossy().into_owned();
    let (handle, task) = start(DaemonBuilder::with_config(config()).unix_socket(&path_str)).await;
    let uri = handle.uri_for(ECHO_OBJECT_NAME).to_string();
    assert_eq!(uri, format!("PYRO:test.echoserver@./u:{path_str}"));
    let mut p = Proxy::new(&uri).expect("proxy");
    assert_eq!(
        p.call("echo", vec![Value::Int(5)], Dict::new())
            .await
            .expect("echo"),
        Value::Int(5)
    );
    handle.shutdown();
    task.await.expect("task");
    assert!(!path.exists(), "socket file removed on close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_when_available() {
    let Ok(daemon) = DaemonBuilder::with_config(config())
        .host("::1")
        .port(0)
        .bind()
        .await
    else {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    };
    let uri = daemon
        .register(echo_object(false), Some(ECHO_OBJECT_NAME), false)
        .expect("register");
    assert!(
        uri.to_string().starts_with("PYRO:test.echoserver@[::1]:"),
        "{uri}"
    );
    let handle = daemon.handle();
    let task = tokio::spawn(async move { daemon.run().await });
    let mut p = Proxy::new(&uri.to_string()).expect("proxy");
    assert_eq!(
        p.call("echo", vec![Value::Int(6)], Dict::new())
            .await
            .expect("echo"),
        Value::Int(6)
    );
    handle.shutdown();
    task.await.expect("join").expect("run");
}

#[tokio::test]
async fn registration_rules_and_nat_uris() {
    let daemon = local()
        .nat("gateway.example", 0)
        .bind()
        .await
        .expect("bind");
    let port = match &daemon.shared.location {
        Location::Tcp { port, .. } => *port,
        Location::Unix(_) => unreachable!(),
    };
    let uri = daemon
        .register(echo_object(false), Some("x"), false)
        .expect("register");
    assert_eq!(uri.to_string(), format!("PYRO:x@gateway.example:{port}"));
    assert_eq!(
        daemon.uri_for_internal("x").to_string(),
        format!("PYRO:x@127.0.0.1:{port}")
    );
    let dup = daemon
        .register(echo_object(false), Some("x"), false)
        .unwrap_err();
    assert_eq!(
        dup.to_string(),
        "an object or class is already registered with that id"
    );
    daemon
        .register(echo_object(false), Some("x"), true)
        .expect("forced");
    assert!(daemon.unregister(DAEMON_NAME).is_err());
    assert_eq!(
        daemon.registered(),
        vec![DAEMON_NAME.to_string(), "x".to_string()]
    );
    daemon.unregister("x").expect("unregister");
    assert_eq!(daemon.registered(), vec![DAEMON_NAME.to_string()]);
    assert!(
        daemon.info().contains("NAT gateway.example:"),
        "{}",
        daemon.info()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_validator_accepts_and_rejects() {
    let builder = local().handshake_validator(|_addr, data| match data.as_str() {
        Some("let me in") => Ok(Value::str("welcome")),
        _ => Err(Fault::pyro("SecurityError", "go away")),
    });
    let (handle, task) = start(builder).await;
    let uri = handle.uri_for(ECHO_OBJECT_NAME).to_string();
    let mut denied = Proxy::new(&uri).expect("proxy");
    let err = denied
        .call("echo", vec![Value::Int(1)], Dict::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Communication(m) if m.ends_with("rejected: go away")),
        "{err:?}"
    );
    let mut ok = Proxy::new(&uri).expect("proxy");
    ok.set_handshake(Value::str("let me in"));
    assert_eq!(
        ok.call("echo", vec![Value::Int(1)], Dict::new())
            .await
            .expect("echo"),
        Value::Int(1)
    );
    assert_eq!(ok.handshake_response(), Some(&Value::str("welcome")));
    handle.shutdown();
    task.await.expect("task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_context_and_response_annotations() {
    let daemon = local().bind().await.expect("bind");
    let obj = Exposed::new("Ctx", ()).method("whoami", |_s, args| {
        let ctx = &args.ctx;
        ctx.set_response_annotation(*b"XTRA", b"extra".to_vec());
        let addr = match ctx.client_addr() {
            ClientAddr::Tcp(a) => a.ip().to_string(),
            ClientAddr::Unix(_) => "unix".into(),
        };
        Ok(Value::List(vec![
            Value::Str(addr),
            Value::Int(i64::from(ctx.seq())),
            Value::Str(ctx.correlation_id().to_string()),
            Value::Bool(ctx.annotations().get(b"USER") == Some(b"data".as_slice())),
        ]))
    });
    let uri = daemon
        .register(obj, Some("ctx"), false)
        .expect("register")
        .to_string();
    let handle = daemon.handle();
    let task = tokio::spawn(async move { daemon.run().await });
    let mut p = Proxy::new(&uri).expect("proxy");
    let corr = uuid::Uuid::new_v4();
    p.set_correlation_id(Some(corr));
    p.annotations_mut().insert(*b"USER", b"data".to_vec());
    let v = p.call("whoami", vec![], Dict::new()).await.expect("call");
    let expected = Value::List(vec![
        Value::str("127.0.0.1"),
        Value::Int(1),
        Value::Str(corr.to_string()),
        Value::Bool(true),
    ]);
    assert_eq!(v, expected);
    assert_eq!(
        p.response_annotations().get(b"XTRA"),
        Some(b"extra".as_slice())
    );
    assert_eq!(
        p.response_annotations().get(b"CORR"),
        Some(corr.as_bytes().as_slice())
    );
    handle.shutdown();
    task.await.expect("join").expect("run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_linger_after_disconnect_or_go_at_once() {
    for (linger, expected_after) in [(30.0, 1), (0.0, 0)] {
        let cfg = Config {
            iter_stream_linger: linger,
            ..Config::default()
        };
        let (handle, task) = start(
            DaemonBuilder::with_config(Arc::new(cfg))
                .host("127.0.0.1")
                .port(0),
        )
        .await;
        let uri = handle.uri_for(ECHO_OBJECT_NAME).to_string();
        let mut p = Proxy::new(&uri).expect("proxy");
        {
            let mut s = p
                .call_stream("generator", vec![], Dict::new())
                .await
                .expect("stream");
            assert_eq!(s.next().await.expect("item"), Some(Value::str("one")));
            std::mem::forget(s); // leave the stream open on the daemon
        }
        assert_eq!(handle.stream_count(), 1);
        p.release();
        let deadline = Instant::now() + Duration::from_secs(5);
        while handle.connection_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(handle.stream_count(), expected_after, "linger {linger}");
        handle.shutdown();
        task.await.expect("task");
    }
}

#[test]
fn args_bind_gives_python_type_errors() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let daemon = rt.block_on(local().bind()).expect("bind");
    let ctx = CallContext {
        conn: Arc::new(dispatch::ConnInfo {
            id: 1,
            addr: ClientAddr::Unix(None),
            daemon: daemon.handle(),
            response_annotations: Mutex::new(pyro_wire::Annotations::new()),
            spare: Mutex::new(Vec::new()),
        }),
        seq: 0,
        msg_flags: 0,
        serializer_id: 1,
        annotations: Arc::new(pyro_wire::Annotations::new()),
        correlation_id: uuid::Uuid::nil(),
    };
    let args = |pos: Vec<Value>, kw: Vec<(&str, Value)>| Args {
        owner: Arc::from("C"),
        method: "m".into(),
        positional: pos,
        kwargs: Dict::from_unique_pairs(kw.into_iter().map(|(k, v)| (Value::str(k), v)).collect()),
        ctx: ctx.clone(),
    };
    let msg = |r: Result<Vec<Value>, Fault>| r.unwrap_err().message();
    assert_eq!(
        args(vec![Value::Int(1)], vec![("b", Value::Int(2))])
            .bind(&["a", "b"])
            .expect("ok"),
        vec![Value::Int(1), Value::Int(2)]
    );
    assert_eq!(
        msg(args(vec![], vec![]).bind(&["a", "b"])),
        "C.m() missing 2 required positional arguments: 'a' and 'b'"
    );
    assert_eq!(
        msg(args(vec![Value::None; 2], vec![]).bind(&["a"])),
        "C.m() takes 2 positional arguments but 3 were given"
    );
    assert_eq!(
        msg(args(vec![Value::None], vec![]).bind(&[])),
        "C.m() takes 1 positional argument but 2 were given"
    );
    assert_eq!(
        msg(args(vec![], vec![("z", Value::None)]).bind(&["a"])),
        "C.m() got an unexpected keyword argument 'z'"
    );
    assert_eq!(
        msg(args(vec![Value::None], vec![("a", Value::None)]).bind(&["a"])),
        "C.m() got multiple values for argument 'a'"
    );
    assert_eq!(
        args(vec![], vec![]).bind_optional(&["a"], 0).expect("ok"),
        vec![Value::None]
    );
}
