//! The Rust client speaking pickle (Pyro4 serializer id 4) to real Python Pyro4 4.82
//! daemons configured to accept it (PYRO_SERIALIZERS_ACCEPTED), and the raw-payload
//! API ([`Proxy::invoke_raw`]) with serpent and pickle payloads.

use interop_tests::{run_python, Peer};
use num_bigint::BigInt;
use pyro_codec::envelope::{self, ProxyState, RemoteException};
use pyro_codec::{DecodeLimits, Dict, SerializerKind, Value};
use pyro_runtime::{Config, Error, Proxy};
use pyro_wire::{Annotations, Uri, FLAGS_ONEWAY};
use std::sync::Arc;
use std::time::Duration;

/// What the Python daemons accept: Pyro4's defaults plus pickle.
const ACCEPTED: &str = "serpent,json,marshal,pickle";

/// Pyro4's own echo server, accepting pickle.
fn echo_server() -> Peer {
    Peer::start(
        &["-m", "Pyro4.test.echoserver", "-H", "127.0.0.1", "-p", "0"],
        &[("PYRO_SERIALIZERS_ACCEPTED", ACCEPTED)],
        "echo uri:",
    )
}

/// A Pyro4 daemon with objects that return what the echo server cannot: its own URI and
/// proxy, autoproxied objects, Python-only types, exceptions of several kinds, and
/// reports of what Python rebuilt from the Rust pickles.
const SERVICE: &str = r#"
import collections, datetime, decimal, uuid
import Pyro4, Pyro4.errors

class CustomError(Exception):
    pass

@Pyro4.expose
class Thing(object):
    def __init__(self, name):
        self.name = name
    def hello(self):
        return "hello from " + self.name

@Pyro4.expose
class Service(object):
    def echo(self, x):
        return x
    def kind(self, x):
        # What Python's unpickler rebuilt from the Rust pickle.
        t = type(x)
        return t.__module__ + "." + t.__name__
    def own_uri(self):
        return self._pyroDaemon.uriFor(self)
    def own_proxy(self):
        return Pyro4.Proxy(self._pyroDaemon.uriFor(self))
    def factory(self, name):
        thing = Thing(name)
        self._pyroDaemon.register(thing)
        return thing  # AUTOPROXY: pickled as a Pyro4.core.Proxy
    def use_uri(self, uri):
        with Pyro4.Proxy(uri) as p:
            p._pyroTimeout = 10
            return p.echo("via " + type(uri).__name__)
    def use_proxy(self, proxy):
        with proxy:
            proxy._pyroTimeout = 10
            return proxy.echo("via " + type(proxy).__name__)
    def python_types(self):
        return {
            "datetime": datetime.datetime(2024, 2, 29, 13, 45, 30, 123456),
            "date": datetime.date(1999, 12, 31),
            "decimal": decimal.Decimal("3.14159265358979323846"),
            "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "bytearray": bytearray(b"\x00ab"),
            "frozenset": frozenset([1]),
            "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
            "complex": 3 - 4j,
        }
    def fail_builtin(self):
        raise KeyError("missing key")
    def fail_pyro(self):
        raise Pyro4.errors.NamingError("no such name here")
    def fail_custom(self):
        raise CustomError("custom failure", 42)

daemon = Pyro4.Daemon(host="127.0.0.1", port=0)
uri = daemon.register(Service(), "pickle.service")
print("service uri:", uri, flush=True)
daemon.requestLoop()
"#;

fn service() -> Peer {
    Peer::start(
        &["-c", SERVICE],
        &[("PYRO_SERIALIZERS_ACCEPTED", ACCEPTED)],
        "service uri:",
    )
}

fn config(serializer: &str) -> Arc<Config> {
    Arc::new(Config {
        serializer: serializer.to_string(),
        ..Config::default()
    })
}

fn proxy_with(uri: &str, serializer: &str) -> Proxy {
    let mut p =
        Proxy::with_config(Uri::parse(uri).expect("uri"), config(serializer)).expect("proxy");
    p.set_timeout(Some(Duration::from_secs(20)));
    p
}

fn s(text: &str) -> Value {
    Value::str(text)
}

fn dict(pairs: Vec<(Value, Value)>) -> Value {
    Value::Dict(Dict::from_pairs(pairs).expect("hashable keys"))
}

fn big(text: &str) -> Value {
    Value::from_bigint(text.parse::<BigInt>().expect("bigint literal"))
}

/// Equality with Python's set semantics and NaN == NaN; floats bit for bit otherwise.
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

/// Every value type of the value model; pickle carries all of them unchanged.
fn samples() -> Vec<Value> {
    vec![
        Value::None,
        Value::Bool(true),
        Value::Bool(false),
        Value::Int(0),
        Value::Int(-1),
        Value::Int(255),
        Value::Int(65536),
        Value::Int(i64::MAX),
        Value::Int(i64::MIN),
        big("18446744073709551621"),
        big("-1267650600228229401496703205376"),
        Value::Float(1.5),
        Value::Float(-0.0),
        Value::Float(5e-324),
        Value::Float(1e300),
        Value::Float(f64::INFINITY),
        Value::Float(f64::NEG_INFINITY),
        Value::Float(f64::NAN),
        Value::Complex(1.5, -2.0),
        s(""),
        s("héllo wörld \u{1F600} \u{10FFFF} 'q' \"dq\" \\ \n\t \0"),
        s(&"x".repeat(70_000)),
        Value::Bytes(vec![]),
        Value::Bytes(vec![0, 1, 2, 255, 128]),
        Value::Bytes(vec![7; 300]),
        Value::Tuple(vec![]),
        Value::Tuple(vec![Value::Int(1)]),
        Value::Tuple(vec![Value::Int(1), s("a"), Value::None]),
        Value::Tuple(vec![Value::Int(1), s("a"), Value::None, Value::Float(2.5)]),
        Value::List(vec![]),
        Value::List((0..3000).map(Value::Int).collect()),
        Value::List(vec![
            Value::Int(1),
            Value::List(vec![Value::Int(2), Value::List(vec![])]),
        ]),
        Value::Set(vec![]),
        Value::Set(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
        Value::Set(vec![s("a"), Value::Tuple(vec![Value::Int(1), s("t")])]),
        dict(vec![]),
        dict(vec![
            (s("a"), Value::Int(1)),
            (Value::Int(2), s("int key")),
            (Value::None, Value::Bool(true)),
            (
                Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
                s("tuple key"),
            ),
            (Value::Float(1.5), Value::Bytes(b"b".to_vec())),
        ]),
        dict(vec![(
            s("nested"),
            dict(vec![(
                s("deep"),
                Value::List(vec![
                    Value::Set(vec![Value::Int(7)]),
                    Value::Complex(0.0, 1.0),
                ]),
            )]),
        )]),
        // A plain dict that happens to carry a __class__ key stays a dict.
        dict(vec![
            (s("__class__"), s("foo.Bar")),
            (s("x"), Value::Int(1)),
        ]),
    ]
}

#[tokio::test]
async fn every_value_type_round_trips_through_pyro4_echo_with_pickle() {
    let peer = echo_server();
    {
        let mut p = proxy_with(&peer.uri, "pickle");
        assert_eq!(p.serializer(), SerializerKind::Pickle);
        for sent in samples() {
            let got = p
                .call("echo", vec![sent.clone()], Dict::new())
                .await
                .unwrap_or_else(|e| panic!("echo({sent:?}) failed: {e}"));
            assert!(same(&sent, &got), "sent {sent:?}, got {got:?}");
        }
        // kwargs, oneway, attributes and streams work in pickle too.
        let mut kw = Dict::new();
        kw.set("message", s("kw"));
        assert_eq!(p.call("echo", vec![], kw).await.unwrap(), s("kw"));
        p.call_oneway("oneway_echo", vec![Value::Int(1)], Dict::new())
            .await
            .unwrap();
        assert_eq!(p.get_attr("verbose").await.unwrap(), Value::Bool(false));
        let items = p
            .call_stream("generator", vec![], Dict::new())
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(items, vec![s("one"), s("two"), s("three")]);
    }
}

#[tokio::test]
async fn pyro4_exceptions_arrive_with_their_real_class() {
    let echo = echo_server();
    let mut p = proxy_with(&echo.uri, "pickle");
    let err = p.call("error", vec![], Dict::new()).await.unwrap_err();
    let remote = err
        .remote()
        .unwrap_or_else(|| panic!("not remote: {err:?}"));
    assert_eq!(remote.class_name, "builtins.ValueError");
    assert_eq!(
        remote.message(),
        "expected error from echoserver error() method"
    );
    let tb = err.remote_traceback().expect("traceback");
    assert!(
        tb.contains("Traceback") && tb.contains("ValueError"),
        "{tb}"
    );
    assert!(p.is_connected(), "a remote exception keeps the connection");

    let svc = service();
    let mut p = proxy_with(&svc.uri, "pickle");
    let err = p
        .call("fail_builtin", vec![], Dict::new())
        .await
        .unwrap_err();
    assert_eq!(err.qualified_class_name(), "builtins.KeyError");
    assert_eq!(err.args(), vec![s("missing key")]);
    let err = p.call("fail_pyro", vec![], Dict::new()).await.unwrap_err();
    assert_eq!(err.qualified_class_name(), "Pyro4.errors.NamingError");
    assert_eq!(
        err.to_string(),
        "Pyro4.errors.NamingError: no such name here"
    );
    let err = p
        .call("fail_custom", vec![], Dict::new())
        .await
        .unwrap_err();
    assert_eq!(err.qualified_class_name(), "__main__.CustomError");
    assert_eq!(err.args(), vec![s("custom failure"), Value::Int(42)]);
    assert!(err
        .remote_traceback()
        .is_some_and(|t| t.contains("CustomError")));
}

#[tokio::test]
async fn returned_uris_and_proxies_are_usable() {
    let svc = service();
    let mut p = proxy_with(&svc.uri, "pickle");
    let cfg = config("pickle");

    // A Pyro4.core.URI object.
    let v = p.call("own_uri", vec![], Dict::new()).await.unwrap();
    let uri = envelope::uri_from_value(&v).unwrap_or_else(|| panic!("not a URI: {v:?}"));
    assert_eq!(uri.to_string(), svc.uri);
    let mut again = Proxy::with_config(uri, cfg.clone()).unwrap();
    again.set_timeout(Some(Duration::from_secs(20)));
    assert_eq!(
        again
            .call("echo", vec![Value::Int(3)], Dict::new())
            .await
            .unwrap(),
        Value::Int(3)
    );

    // A Pyro4.core.Proxy object.
    let v = p.call("own_proxy", vec![], Dict::new()).await.unwrap();
    let state = envelope::proxy_from_value(&v).unwrap_or_else(|| panic!("not a proxy: {v:?}"));
    assert_eq!(state.uri.to_string(), svc.uri);
    let mut remote = Proxy::from_state(&state, cfg.clone()).unwrap();
    remote.set_timeout(Some(Duration::from_secs(20)));
    assert_eq!(
        remote
            .call("echo", vec![s("p")], Dict::new())
            .await
            .unwrap(),
        s("p")
    );

    // AUTOPROXY: a registered object comes back as a proxy with its metadata.
    let v = p
        .call("factory", vec![s("thing1")], Dict::new())
        .await
        .unwrap();
    let state = envelope::proxy_from_value(&v).unwrap_or_else(|| panic!("not a proxy: {v:?}"));
    assert!(state.uri.object.starts_with("obj_"), "{}", state.uri);
    assert!(state.methods.iter().any(|m| m == "hello"), "{state:?}");
    let mut thing = Proxy::from_state(&state, cfg.clone()).unwrap();
    thing.set_timeout(Some(Duration::from_secs(20)));
    assert_eq!(
        thing.call("hello", vec![], Dict::new()).await.unwrap(),
        s("hello from thing1")
    );
}

#[tokio::test]
async fn python_rebuilds_real_objects_from_rust_pickles() {
    let svc = service();
    let mut p = proxy_with(&svc.uri, "pickle");
    let own = Uri::parse(&svc.uri).unwrap();
    let uri_value = envelope::uri_to_value(&own);
    let proxy_value = envelope::proxy_to_value(&ProxyState {
        uri: own.clone(),
        oneway: vec![],
        methods: vec!["echo".into(), "kind".into()],
        attrs: vec![],
        timeout: 0.0,
        hmac_key: None,
        handshake: s("hello"),
        max_retries: 0,
        serializer: Some("pickle".into()),
    });
    let exception = RemoteException::new("builtins.ValueError", vec![s("sent from rust")]);
    for (value, expected) in [
        (uri_value.clone(), "Pyro4.core.URI"),
        (proxy_value.clone(), "Pyro4.core.Proxy"),
        (exception.to_value(), "builtins.ValueError"),
        (Value::Set(vec![Value::Int(1)]), "builtins.set"),
        (Value::Bytes(vec![1]), "builtins.bytes"),
        (Value::Complex(1.0, 1.0), "builtins.complex"),
        (Value::Tuple(vec![]), "builtins.tuple"),
        (big("123456789012345678901234567890"), "builtins.int"),
    ] {
        let got = p.call("kind", vec![value], Dict::new()).await.unwrap();
        assert_eq!(got, s(expected));
    }
    // The rebuilt URI and proxy work on the Python side.
    assert_eq!(
        p.call("use_uri", vec![uri_value], Dict::new())
            .await
            .unwrap(),
        s("via URI")
    );
    assert_eq!(
        p.call("use_proxy", vec![proxy_value.clone()], Dict::new())
            .await
            .unwrap(),
        s("via Proxy")
    );
    // Echoed back, they are the same URI and proxy state.
    let back = p
        .call("echo", vec![proxy_value], Dict::new())
        .await
        .unwrap();
    let state = envelope::proxy_from_value(&back).expect("proxy back");
    assert_eq!(state.uri, own);
    assert_eq!(state.serializer.as_deref(), Some("pickle"));
    // The exception echoed back is an exception class dict again.
    let back = p
        .call("echo", vec![exception.to_value()], Dict::new())
        .await
        .unwrap();
    let exc = RemoteException::from_value(&back).expect("exception back");
    assert_eq!(exc.class_name, "builtins.ValueError");
    assert_eq!(exc.args, vec![s("sent from rust")]);
}

#[tokio::test]
async fn python_only_types_decode_to_their_value_model_form() {
    let svc = service();
    let mut p = proxy_with(&svc.uri, "pickle");
    let v = p.call("python_types", vec![], Dict::new()).await.unwrap();
    let d = v.as_dict().expect("dict");
    let get = |k: &str| d.get_str(k).cloned().unwrap_or_else(|| panic!("no {k}"));
    assert_eq!(get("datetime"), s("2024-02-29T13:45:30.123456"));
    assert_eq!(get("date"), s("1999-12-31"));
    assert_eq!(get("decimal"), s("3.14159265358979323846"));
    assert_eq!(get("uuid"), s("12345678-1234-5678-1234-567812345678"));
    assert_eq!(get("bytearray"), Value::Bytes(b"\x00ab".to_vec()));
    assert_eq!(get("frozenset"), Value::Set(vec![Value::Int(1)]));
    assert_eq!(
        get("ordered"),
        dict(vec![(s("z"), Value::Int(1)), (s("a"), Value::Int(2))])
    );
    assert_eq!(get("complex"), Value::Complex(3.0, -4.0));
}

#[tokio::test]
async fn pyro4_refuses_pickle_unless_accepted() {
    // Pyro4's default SERIALIZERS_ACCEPTED has no pickle: CONNECTFAIL.
    let peer = interop_tests::echo_server(None);
    let mut p = proxy_with(&peer.uri, "pickle");
    let err = p
        .call("echo", vec![Value::Int(1)], Dict::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Communication(_)), "{err:?}");
    assert!(
        err.to_string()
            .ends_with("rejected: message used serializer that is not accepted: 4"),
        "{err}"
    );
}

/// `pickle.dumps(obj, 5)` by CPython, as the Python binding would produce a payload.
fn python_pickle(expr: &str) -> Vec<u8> {
    let hex = run_python(
        "import pickle, sys; print(pickle.dumps(eval(sys.argv[1]), 5).hex())",
        &[expr],
    );
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// `pickle.loads(data)` by CPython, rendered with repr.
fn python_unpickle_repr(data: &[u8]) -> String {
    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
    run_python(
        "import pickle, sys; print(repr(pickle.loads(bytes.fromhex(sys.argv[1]))))",
        &[&hex],
    )
}

#[tokio::test]
async fn invoke_raw_with_serpent_and_pickle_payloads() {
    let peer = echo_server();
    // The proxy's own serializer (serpent) is used for the handshake only.
    let mut p = proxy_with(&peer.uri, "serpent");
    let object = p.connect_for_call().await.unwrap().to_string();
    assert_eq!(object, "test.echoserver");
    let limits = DecodeLimits::default();

    // serpent: the payload as the binding's serpent walker writes it.
    let sent = Value::Tuple(vec![Value::Int(1), s("zwei"), Value::Bytes(vec![3])]);
    let payload = pyro_codec::serpent::to_vec(&Value::Tuple(vec![
        s(&object),
        s("echo"),
        Value::Tuple(vec![sent.clone()]),
        dict(vec![]),
    ]))
    .unwrap();
    let reply = p
        .invoke_raw(0, SerializerKind::Serpent.id(), &payload, None)
        .await
        .unwrap()
        .expect("reply");
    assert_eq!(reply.serializer_id, 1);
    assert!(!reply.is_exception());
    let got = SerializerKind::Serpent
        .decode(&reply.data, &limits)
        .unwrap();
    // serpent sends bytes as its base64 dict; the tuple and the rest are as sent.
    let Value::Tuple(items) = &got else {
        panic!("{got:?}")
    };
    assert_eq!(items[..2], [Value::Int(1), s("zwei")]);
    assert_eq!(envelope::to_bytes(&items[2]), Some(vec![3]));

    // pickle: a payload written by CPython's pickle, the reply read by CPython again.
    let payload = python_pickle(
        "('test.echoserver', 'echo', ({'a': {1, 2}, 'b': b'\\x00', 'c': 2**70},), {})",
    );
    let mut extra = Annotations::new();
    extra.insert(*b"XTRA", b"x".to_vec());
    let reply = p
        .call_raw(0, SerializerKind::Pickle.id(), &payload, Some(&extra))
        .await
        .unwrap()
        .expect("reply");
    assert_eq!(reply.serializer_id, 4);
    assert!(!reply.is_exception());
    assert_eq!(
        python_unpickle_repr(&reply.data),
        "{'a': {1, 2}, 'b': b'\\x00', 'c': 1180591620717411303424}"
    );
    assert!(p.response_annotations().get(b"CORR").is_some());

    // An exception reply: flagged, undecoded, and CPython unpickles the real class.
    let payload = python_pickle("('test.echoserver', 'error', (), {})");
    let reply = p
        .invoke_raw(0, SerializerKind::Pickle.id(), &payload, None)
        .await
        .unwrap()
        .expect("reply");
    assert!(reply.is_exception());
    assert_eq!(
        python_unpickle_repr(&reply.data),
        "ValueError('expected error from echoserver error() method')"
    );

    // A generator: the stream id, then the items through the proxy.
    let payload = python_pickle("('test.echoserver', 'generator', (), {})");
    let reply = p
        .invoke_raw(0, SerializerKind::Pickle.id(), &payload, None)
        .await
        .unwrap()
        .expect("reply");
    let id = reply.stream_id.clone().expect("stream id");
    assert!(!reply.is_exception());
    let first = p.stream_next(&id).await.unwrap();
    assert_eq!(first, Some(s("one")));
    p.stream_close(&id).await.unwrap();

    // Oneway: nothing read; the connection stays in step for the next call.
    let payload = python_pickle("('test.echoserver', 'oneway_echo', ('x',), {})");
    let none = p
        .invoke_raw(FLAGS_ONEWAY, SerializerKind::Pickle.id(), &payload, None)
        .await
        .unwrap();
    assert!(none.is_none());
    assert_eq!(
        p.call("echo", vec![Value::Int(9)], Dict::new())
            .await
            .unwrap(),
        Value::Int(9)
    );
}

#[test]
fn blocking_proxy_speaks_pickle_and_raw() {
    let peer = echo_server();
    let mut p = pyro_runtime::blocking::BlockingProxy::with_config(
        Uri::parse(&peer.uri).unwrap(),
        config("pickle"),
    )
    .unwrap();
    p.set_timeout(Some(Duration::from_secs(20)));
    assert_eq!(
        p.call("echo", vec![Value::Set(vec![s("x")])], Dict::new())
            .unwrap(),
        Value::Set(vec![s("x")])
    );
    let object = p.connect_for_call().unwrap().to_string();
    let payload = pyro_codec::pickle::to_vec(&Value::Tuple(vec![
        s(&object),
        s("echo"),
        Value::Tuple(vec![Value::Int(5)]),
        dict(vec![]),
    ]))
    .unwrap();
    let reply = p
        .invoke_raw(0, SerializerKind::Pickle.id(), &payload, None)
        .unwrap()
        .expect("reply");
    assert_eq!(python_unpickle_repr(&reply.data), "5");
}
