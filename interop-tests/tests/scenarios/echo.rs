// The Rust client's echo scenarios. Included by tests/echo.rs (peer: Pyro4's own test
// echo server, a real Python process) and tests/echo_rust.rs (peer: pyro-echo), each of
// which brings its own `echo_server` function into scope first.

use interop_tests::Peer;
use num_bigint::BigInt;
use pyro_codec::envelope;
use pyro_codec::{Dict, SerializerKind, Value};
use pyro_runtime::{Batch, Config, Error, Proxy, Reply};
use pyro_wire::{Uri, ANNOTATION_CORR};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn proxy_for(peer: &Peer, kind: SerializerKind) -> Proxy {
    let config = Config {
        serializer: kind.name().to_string(),
        ..Config::default()
    };
    let mut p = Proxy::with_config(Uri::parse(&peer.uri).expect("echo uri"), Arc::new(config))
        .expect("proxy");
    // Nothing in these tests may hang: every call is bounded unless a test says otherwise.
    p.set_timeout(Some(Duration::from_secs(20)));
    p
}

async fn echo(p: &mut Proxy, v: Value) -> pyro_runtime::Result<Value> {
    p.call("echo", vec![v], Dict::new()).await
}

fn dict(pairs: Vec<(Value, Value)>) -> Value {
    Value::Dict(Dict::from_pairs(pairs).expect("hashable keys"))
}

fn s(text: &str) -> Value {
    Value::str(text)
}

/// Structural equality with Python's set semantics (order-free) and NaN equal to NaN;
/// floats otherwise compared bit for bit, so -0.0 must stay -0.0.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
        }
        (Value::Tuple(x), Value::Tuple(y)) | (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().all(|p| y.iter().any(|q| same(p, q)))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => a == b,
    }
}

fn big(text: &str) -> Value {
    Value::from_bigint(text.parse::<BigInt>().expect("bigint literal"))
}

/// Values every serializer holds, with what comes back (sent, expected).
fn common_samples() -> Vec<(Value, Value)> {
    let same_back = |v: Value| (v.clone(), v);
    vec![
        same_back(Value::None),
        same_back(Value::Bool(true)),
        same_back(Value::Bool(false)),
        same_back(Value::Int(0)),
        same_back(Value::Int(-42)),
        same_back(Value::Int(i64::MAX)),
        same_back(Value::Int(i64::MIN)),
        same_back(big("1267650600228229401496703205376")),
        same_back(big("-98765432109876543210987654321098765432109876543210")),
        same_back(Value::Float(1.5)),
        same_back(Value::Float(-0.0)),
        same_back(Value::Float(1e300)),
        same_back(Value::Float(f64::INFINITY)),
        same_back(Value::Float(f64::NEG_INFINITY)),
        same_back(Value::Float(f64::NAN)),
        same_back(s("")),
        same_back(s(
            "héllo wörld \u{1F600} \u{10FFFF} 'quotes' \"dq\" \\ \n\t",
        )),
        same_back(Value::List(vec![
            Value::Int(1),
            s("two"),
            Value::List(vec![Value::None]),
        ])),
        same_back(dict(vec![
            (s("a"), Value::Int(1)),
            (s("b"), Value::List(vec![])),
        ])),
    ]
}

/// Python-only shapes: tuples, sets, complex, non-str keys (serpent and marshal).
fn python_samples() -> Vec<(Value, Value)> {
    let same_back = |v: Value| (v.clone(), v);
    vec![
        same_back(Value::Complex(1.5, -2.0)),
        same_back(Value::Tuple(vec![])),
        same_back(Value::Tuple(vec![
            Value::Int(1),
            s("x"),
            Value::Tuple(vec![Value::Bool(false)]),
        ])),
        same_back(Value::Set(vec![
            Value::Int(1),
            Value::Int(2),
            Value::Int(3),
        ])),
        same_back(Value::Set(vec![
            s("a"),
            s("b"),
            Value::Tuple(vec![Value::Int(1)]),
        ])),
        same_back(dict(vec![
            (Value::Int(1), s("int key")),
            (Value::Tuple(vec![Value::Int(1), s("t")]), s("tuple key")),
            (
                s("nested"),
                dict(vec![(
                    s("deep"),
                    Value::List(vec![Value::Set(vec![Value::Int(7)])]),
                )]),
            ),
        ])),
    ]
}

async fn check_round_trips(p: &mut Proxy, samples: Vec<(Value, Value)>) {
    for (sent, expected) in samples {
        let got = echo(p, sent.clone())
            .await
            .unwrap_or_else(|e| panic!("{:?}: echo({sent:?}) failed: {e}", p.serializer()));
        assert!(
            same(&expected, &got),
            "{:?}: sent {sent:?}, expected {expected:?}, got {got:?}",
            p.serializer()
        );
    }
}

#[tokio::test]
async fn every_value_type_round_trips_with_serpent() {
    let peer = echo_server(None);
    let mut p = proxy_for(&peer, SerializerKind::Serpent);
    check_round_trips(&mut p, common_samples()).await;
    check_round_trips(&mut p, python_samples()).await;
    // serpent sends bytes as the base64 dict; they come back as that dict.
    let raw = vec![0u8, 1, 2, 254, 255, b'\'', b'\n'];
    let got = echo(&mut p, Value::Bytes(raw.clone())).await.unwrap();
    assert_eq!(envelope::to_bytes(&got), Some(raw));
}

#[tokio::test]
async fn json_values_round_trip() {
    let peer = echo_server(None);
    let mut p = proxy_for(&peer, SerializerKind::Json);
    check_round_trips(&mut p, common_samples()).await;
    // json has no tuples: a tuple comes back as a list.
    let got = echo(&mut p, Value::Tuple(vec![Value::Int(1), s("a")]))
        .await
        .unwrap();
    assert_eq!(got, Value::List(vec![Value::Int(1), s("a")]));
    // and no bytes: refused locally like Pyro4's SerializeError, connection unharmed.
    let err = echo(&mut p, Value::Bytes(vec![1])).await.unwrap_err();
    assert_eq!(err.class_name(), "SerializeError", "{err}");
    assert_eq!(
        echo(&mut p, s("still fine")).await.unwrap(),
        s("still fine")
    );
}

#[tokio::test]
async fn marshal_values_round_trip() {
    let peer = echo_server(None);
    let mut p = proxy_for(&peer, SerializerKind::Marshal);
    check_round_trips(&mut p, common_samples()).await;
    check_round_trips(&mut p, python_samples()).await;
    let raw = vec![0u8, 159, 255];
    assert_eq!(
        echo(&mut p, Value::Bytes(raw.clone())).await.unwrap(),
        Value::Bytes(raw)
    );
}

#[tokio::test]
async fn remote_exceptions_keep_type_message_and_traceback() {
    let peer = echo_server(None);
    for kind in [
        SerializerKind::Serpent,
        SerializerKind::Json,
        SerializerKind::Marshal,
    ] {
        let mut p = proxy_for(&peer, kind);
        let err = p.call("error", vec![], Dict::new()).await.unwrap_err();
        let remote = err
            .remote()
            .unwrap_or_else(|| panic!("{kind:?}: not remote: {err}"));
        assert_eq!(remote.class_name, "builtins.ValueError");
        assert_eq!(
            remote.message(),
            "expected error from echoserver error() method"
        );
        assert_eq!(err.class_name(), "ValueError");
        let tb = err.remote_traceback().expect("remote traceback");
        assert!(
            tb.contains("Traceback") && tb.contains("ValueError"),
            "{tb}"
        );

        let err = p
            .call("error_with_text", vec![], Dict::new())
            .await
            .unwrap_err();
        assert_eq!(
            err.remote().map(|r| r.message()),
            Some("the message of the error".to_string())
        );
        assert!(err.to_string().contains("the message of the error"));
        // A remote exception does not break the connection.
        assert!(p.is_connected());
        assert_eq!(echo(&mut p, Value::Int(5)).await.unwrap(), Value::Int(5));
    }
}

#[tokio::test]
async fn metadata_handshake_ping_and_local_attribute_errors() {
    let peer = echo_server(None);
    let mut p = proxy_for(&peer, SerializerKind::Serpent);
    assert!(p.bind().await.unwrap());
    assert_eq!(p.handshake_response(), Some(&s("hello")));
    for m in ["echo", "error", "generator", "slow", "oneway_echo"] {
        assert!(
            p.methods().contains(m),
            "missing method {m}: {:?}",
            p.methods()
        );
    }
    assert!(
        p.oneway_methods().contains("oneway_echo") && p.oneway_methods().contains("oneway_slow")
    );
    assert!(p.attributes().contains("verbose"));
    assert!(!p.methods().contains("_private"));
    p.ping().await.unwrap();
    // Fetching again through Pyro.Daemon.get_metadata gives the same view.
    let before = p.methods().clone();
    p.get_metadata().await.unwrap();
    assert_eq!(&before, p.methods());
    let err = p
        .call("no_such_method", vec![], Dict::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Attribute(_)), "{err}");
    // Without metadata the daemon itself refuses the name.
    let mut bare = proxy_for(&peer, SerializerKind::Serpent);
    bare.set_metadata_enabled(false);
    assert_eq!(echo(&mut bare, Value::Int(1)).await.unwrap(), Value::Int(1));
    assert!(bare.methods().is_empty());
    let err = bare
        .call("no_such_method", vec![], Dict::new())
        .await
        .unwrap_err();
    assert_eq!(err.class_name(), "AttributeError", "{err}");
    assert!(err.remote().is_some());
}

#[tokio::test]
async fn remote_attributes_get_and_set() {
    let peer = echo_server(None);
    for kind in [
        SerializerKind::Serpent,
        SerializerKind::Json,
        SerializerKind::Marshal,
    ] {
        let mut p = proxy_for(&peer, kind);
        p.set_attr("verbose", Value::Bool(false)).await.unwrap();
        assert_eq!(
            p.get_attr("verbose").await.unwrap(),
            Value::Bool(false),
            "{kind:?}"
        );
        p.set_attr("verbose", Value::Bool(true)).await.unwrap();
        assert_eq!(
            p.get_attr("verbose").await.unwrap(),
            Value::Bool(true),
            "{kind:?}"
        );
        p.set_attr("verbose", Value::Bool(false)).await.unwrap();
        let err = p.get_attr("nope").await.unwrap_err();
        assert!(matches!(err, Error::Attribute(_)), "{err}");
    }
}

#[tokio::test]
async fn oneway_calls_do_not_wait() {
    let peer = echo_server(None);
    let mut p = proxy_for(&peer, SerializerKind::Serpent);
    p.bind().await.unwrap();
    // oneway_slow sleeps 5 s on the server; as a oneway call it returns at once, and
    // the server (ONEWAY_THREADED) keeps serving.
    let start = Instant::now();
    assert_eq!(
        p.call("oneway_slow", vec![], Dict::new()).await.unwrap(),
        Value::None
    );
    assert_eq!(
        p.call("oneway_echo", vec![s("x")], Dict::new())
            .await
            .unwrap(),
        Value::None
    );
    assert_eq!(echo(&mut p, s("after")).await.unwrap(), s("after"));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "oneway waited: {:?}",
        start.elapsed()
    );
    // Explicit oneway of a normal method: no reply is read, the next call is in sync.
    p.call_oneway("echo", vec![s("ignored")], Dict::new())
        .await
        .unwrap();
    assert_eq!(echo(&mut p, s("next")).await.unwrap(), s("next"));
}

#[tokio::test]
async fn batch_results_and_exception_position() {
    let peer = echo_server(None);
    for kind in [
        SerializerKind::Serpent,
        SerializerKind::Json,
        SerializerKind::Marshal,
    ] {
        let mut p = proxy_for(&peer, kind);
        let mut b = Batch::new();
        b.call("echo", vec![Value::Int(1)], Dict::new())
            .call("echo", vec![s("two")], Dict::new())
            .call("error", vec![], Dict::new())
            .call("echo", vec![Value::Int(4)], Dict::new());
        if kind == SerializerKind::Marshal && PYTHON_PEER {
            // Pyro4's marshal serializer cannot encode the _ExceptionWrapper, so a Python
            // daemon answers the whole batch with that error instead.
            let err = p.run_batch(b).await.unwrap_err();
            assert_eq!(
                err.remote().map(|r| r.message()),
                Some("unmarshallable object".to_string()),
                "{err}"
            );
            let mut b = Batch::new();
            b.call("echo", vec![Value::Int(1)], Dict::new()).call(
                "echo",
                vec![s("two")],
                Dict::new(),
            );
            let results: Vec<Value> = p
                .run_batch(b)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.unwrap())
                .collect();
            assert_eq!(results, vec![Value::Int(1), s("two")]);
            continue;
        }
        let results = p.run_batch(b).await.unwrap();
        // The daemon stops at the first exception.
        assert_eq!(results.len(), 3, "{kind:?}: {results:?}");
        assert_eq!(results[0].as_ref().unwrap(), &Value::Int(1));
        assert_eq!(results[1].as_ref().unwrap(), &s("two"));
        let err = results[2].as_ref().unwrap_err();
        assert_eq!(
            err.remote().map(|r| r.class_name.as_str()),
            Some("builtins.ValueError")
        );

        let mut b = Batch::new();
        b.call("echo", vec![Value::Int(1)], Dict::new()).call(
            "oneway_echo",
            vec![s("o")],
            Dict::new(),
        );
        p.run_batch_oneway(b).await.unwrap();
        assert_eq!(echo(&mut p, s("sync")).await.unwrap(), s("sync"));
    }
}

#[tokio::test]
async fn item_streaming() {
    let peer = echo_server(None);
    for kind in [
        SerializerKind::Serpent,
        SerializerKind::Json,
        SerializerKind::Marshal,
    ] {
        let mut p = proxy_for(&peer, kind);
        let items = p
            .call_stream("generator", vec![], Dict::new())
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(items, vec![s("one"), s("two"), s("three")], "{kind:?}");

        // Stop early: dropping the stream closes it with the next message.
        let mut stream = p
            .call_stream("generator", vec![], Dict::new())
            .await
            .unwrap();
        assert_eq!(stream.next().await.unwrap(), Some(s("one")));
        let id = stream.id().to_string();
        drop(stream);
        let err = p.stream_next(&id).await.unwrap_err();
        assert_eq!(
            err.remote().map(|r| r.message()),
            Some("item stream terminated".to_string()),
            "{err}"
        );

        // Explicit close.
        let stream = p
            .call_stream("generator", vec![], Dict::new())
            .await
            .unwrap();
        let id = stream.id().to_string();
        stream.close().await.unwrap();
        assert!(p.stream_next(&id).await.is_err());

        // call() refuses an iterator result instead of losing it.
        let err = p.call("generator", vec![], Dict::new()).await.unwrap_err();
        assert_eq!(err.class_name(), "ProtocolError");
        assert!(matches!(
            p.call_reply("generator", vec![], Dict::new())
                .await
                .unwrap(),
            Reply::Stream(_)
        ));
        assert_eq!(echo(&mut p, Value::Int(9)).await.unwrap(), Value::Int(9));
    }
}

#[tokio::test]
async fn call_timeout_then_recovery() {
    let peer = echo_server(None);
    let mut p = proxy_for(&peer, SerializerKind::Serpent);
    p.bind().await.unwrap();
    p.set_timeout(Some(Duration::from_secs(1)));
    let start = Instant::now();
    let err = p.call("slow", vec![], Dict::new()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "timeout took {:?}",
        start.elapsed()
    );
    assert!(!p.is_connected(), "a timed out connection must be dropped");
    let seq = p.seq();
    // The (single-threaded) echo server finishes slow() first; then the proxy
    // reconnects and works, with its sequence numbers running on.
    p.set_timeout(Some(Duration::from_secs(20)));
    assert_eq!(echo(&mut p, s("back")).await.unwrap(), s("back"));
    assert!(p.is_connected());
    assert_eq!(p.seq(), seq.wrapping_add(1));
}

#[tokio::test]
async fn max_retries_recovers_from_a_dead_connection() {
    let peer = echo_server(None);
    let mut p = proxy_for(&peer, SerializerKind::Serpent);
    p.set_max_retries(2);
    p.bind().await.unwrap();
    // explicit reconnect works
    p.reconnect(3).await.unwrap();
    assert_eq!(echo(&mut p, Value::Int(3)).await.unwrap(), Value::Int(3));
    // A server restart is not possible with port 0, so stop the peer and check the
    // failure is a clean communication error, bounded in time.
    drop(peer);
    let start = Instant::now();
    let err = echo(&mut p, Value::Int(4)).await.unwrap_err();
    assert!(err.is_communication_error(), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn hmac_same_key_works_wrong_key_fails_fast() {
    let peer = echo_server(Some("s3cret"));
    let mut good = proxy_for(&peer, SerializerKind::Serpent);
    good.set_hmac_key(Some(b"s3cret".to_vec()));
    assert_eq!(echo(&mut good, s("signed")).await.unwrap(), s("signed"));
    good.ping().await.unwrap();

    for key in [Some(b"wrong".to_vec()), None] {
        let mut bad = proxy_for(&peer, SerializerKind::Serpent);
        bad.set_timeout(Some(Duration::from_secs(10)));
        bad.set_hmac_key(key.clone());
        let start = Instant::now();
        let err = echo(&mut bad, s("x")).await.unwrap_err();
        assert!(
            matches!(err, Error::Communication(_) | Error::Security(_)),
            "key {key:?}: {err:?}"
        );
        assert!(
            err.to_string().to_lowercase().contains("hmac"),
            "key {key:?}: {err}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
    }
    // The good proxy is unaffected.
    assert_eq!(echo(&mut good, s("still")).await.unwrap(), s("still"));
}

#[tokio::test]
async fn connectfail_reasons_are_reported() {
    // Unknown object: the daemon rejects the handshake.
    let peer = echo_server(None);
    let uri = format!("PYRO:no.such.object@127.0.0.1:{}", peer.port());
    let mut p = Proxy::with_config(Uri::parse(&uri).unwrap(), Arc::new(Config::default())).unwrap();
    p.set_timeout(Some(Duration::from_secs(10)));
    let err = p.ping().await.unwrap_err();
    assert!(matches!(err, Error::Communication(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("rejected") && text.contains("unknown object"),
        "{text}"
    );

    // A serializer the daemon does not accept: its CONNECTFAIL reason is marshal-encoded.
    let peer = Peer::start(
        &["-m", "Pyro4.test.echoserver", "-H", "127.0.0.1", "-p", "0"],
        &[("PYRO_SERIALIZERS_ACCEPTED", "serpent")],
        "echo uri:",
    );
    let mut p = proxy_for(&peer, SerializerKind::Json);
    let err = echo(&mut p, Value::Int(1)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("rejected") && text.contains("not accepted: 2"),
        "{text}"
    );
    let mut ok = proxy_for(&peer, SerializerKind::Serpent);
    assert_eq!(echo(&mut ok, Value::Int(1)).await.unwrap(), Value::Int(1));
}

#[tokio::test]
async fn correlation_id_and_response_annotations() {
    let peer = echo_server(None);
    let mut p = proxy_for(&peer, SerializerKind::Serpent);
    let id = uuid::Uuid::new_v4();
    p.set_correlation_id(Some(id));
    assert_eq!(echo(&mut p, Value::Int(1)).await.unwrap(), Value::Int(1));
    // The daemon adopts the request's correlation id and returns it.
    assert_eq!(
        p.response_annotations().get(&ANNOTATION_CORR),
        Some(&id.as_bytes()[..])
    );
    p.set_correlation_id(None);
    echo(&mut p, Value::Int(2)).await.unwrap();
    let corr = p
        .response_annotations()
        .get(&ANNOTATION_CORR)
        .expect("daemon always sends CORR");
    assert_ne!(corr, &id.as_bytes()[..]);
}

#[test]
fn blocking_facade_works() {
    let peer = echo_server(None);
    let config = Arc::new(Config::default());
    let mut p =
        pyro_runtime::blocking::BlockingProxy::with_config(Uri::parse(&peer.uri).unwrap(), config)
            .unwrap();
    p.set_timeout(Some(Duration::from_secs(20)));
    assert_eq!(p.call("echo", vec![s("b")], Dict::new()).unwrap(), s("b"));
    let items: Vec<Value> = p
        .call_stream("generator", vec![], Dict::new())
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(items, vec![s("one"), s("two"), s("three")]);
    assert_eq!(p.get_attr("verbose").unwrap(), Value::Bool(false));
    p.ping().unwrap();
}

#[tokio::test]
async fn unix_socket_daemon() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let path =
        std::env::temp_dir().join(format!("pyro-rs-echo-{}-{nanos}.sock", std::process::id()));
    let path_text = path.to_string_lossy().into_owned();
    let peer = Peer::start(
        &["-m", "Pyro4.test.echoserver", "-u", &path_text],
        &[],
        "echo uri:",
    );
    assert!(peer.uri.contains("@./u:"), "{}", peer.uri);
    let mut p = proxy_for(&peer, SerializerKind::Serpent);
    assert_eq!(echo(&mut p, s("over unix")).await.unwrap(), s("over unix"));
    p.ping().await.unwrap();
    drop(p);
    drop(peer);
    let _ = std::fs::remove_file(&path);
}
