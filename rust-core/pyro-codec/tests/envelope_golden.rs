//! Envelopes against what Pyro4 4.82's own serializers produce (`dumpsCall`, and `dumps`
//! of exceptions, URIs, proxies, batch results). json and serpent compare byte for byte;
//! Pyro4's marshal output for class dicts depends on reference counts inside Pyro4 and is
//! compared by value (calls are compared byte for byte too).
//!
//! The serpent cases need `pyro_codec::serpent`, written separately.

mod json_desc;

use json_desc::{assert_same, cases, parse, same, show, Case};
use pyro_codec::envelope::{self, Call, ProxyState, RemoteException};
use pyro_codec::{DecodeLimits, Dict, SerializerKind, Value};
use std::collections::HashMap;

fn kind(name: &str) -> SerializerKind {
    SerializerKind::from_name(name).unwrap()
}

/// What a value looks like after a json round trip in Python: tuples and sets become
/// lists (dict keys here are all strs already).
fn jsonish(v: &Value) -> Value {
    match v {
        Value::Tuple(x) | Value::List(x) | Value::Set(x) => {
            Value::List(x.iter().map(jsonish).collect())
        }
        Value::Dict(d) => Value::Dict(Dict::from_unique_pairs(
            d.iter().map(|(k, v)| (k.clone(), jsonish(v))).collect(),
        )),
        other => other.clone(),
    }
}

fn check_bytes(c: &Case, k: SerializerKind, v: &Value) {
    let got = k.encode(v).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    assert_eq!(
        show(&got),
        show(c.data.as_deref().unwrap()),
        "{}: encoding differs",
        c.name
    );
}

#[test]
fn golden_vectors() {
    let limits = DecodeLimits::default();
    let mut excs: HashMap<String, Vec<RemoteException>> = HashMap::new();
    let mut uris: HashMap<String, Vec<pyro_wire::Uri>> = HashMap::new();
    let mut proxies: HashMap<String, Vec<ProxyState>> = HashMap::new();
    let mut seen = HashMap::<&'static str, usize>::new();
    for c in cases("envelope") {
        let data = c.data.as_deref().unwrap();
        let mode = c.fields[0].as_str();
        let k = kind(&c.fields[1]);
        let exact = c.fields[2] == "1";
        // The case name without the serializer suffix groups the three serializers.
        let group = c.name.rsplit_once('_').unwrap().0.to_string();
        if mode == "call" {
            *seen.entry("call").or_default() += 1;
            let object = parse(&c.fields[3]);
            let method = parse(&c.fields[4]);
            let args = parse(&c.fields[5]);
            let kwargs = match parse(&c.fields[6]) {
                Value::Dict(d) => Some(d),
                _ => None,
            };
            let call = Call {
                object: object.as_str().unwrap().to_string(),
                method: method.as_str().unwrap().to_string(),
                args: args.as_seq().unwrap().to_vec(),
                kwargs,
            };
            let got = envelope::decode_call(k, data, &limits)
                .unwrap_or_else(|e| panic!("{}: {e}", c.name));
            assert_eq!(got.object, call.object, "{}", c.name);
            assert_eq!(got.method, call.method, "{}", c.name);
            let norm = |v: &Value| {
                if k == SerializerKind::Json {
                    jsonish(v)
                } else {
                    v.clone()
                }
            };
            assert_same(
                &c.name,
                &Value::List(got.args.clone()),
                &norm(&Value::List(call.args.clone())),
            );
            assert_same(
                &c.name,
                &got.kwargs.clone().map(Value::Dict).unwrap_or(Value::None),
                &norm(&call.kwargs.clone().map(Value::Dict).unwrap_or(Value::None)),
            );
            // dumpsCall output is deterministic for all three (see marshal::to_vec_call).
            let enc = envelope::encode_call(k, &call).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            assert_eq!(show(&enc), show(data), "{}: call encoding differs", c.name);
            continue;
        }
        let decoded = k
            .decode(data, &limits)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_same(&c.name, &decoded, &parse(&c.fields[3]));
        match mode {
            "exc" => {
                *seen.entry("exc").or_default() += 1;
                let e = RemoteException::from_value(&decoded)
                    .unwrap_or_else(|| panic!("{}: not an exception", c.name));
                if exact {
                    check_bytes(&c, k, &e.to_value());
                }
                excs.entry(group).or_default().push(e);
            }
            "uri" => {
                *seen.entry("uri").or_default() += 1;
                let u = envelope::uri_from_value(&decoded)
                    .unwrap_or_else(|| panic!("{}: not a URI", c.name));
                if exact {
                    check_bytes(&c, k, &envelope::uri_to_value(&u));
                }
                uris.entry(group).or_default().push(u);
            }
            "proxy" => {
                *seen.entry("proxy").or_default() += 1;
                let p = envelope::proxy_from_value(&decoded)
                    .unwrap_or_else(|| panic!("{}: not a proxy", c.name));
                if exact {
                    check_bytes(&c, k, &envelope::proxy_to_value(&p));
                }
                proxies.entry(group).or_default().push(p);
            }
            "batch" => {
                *seen.entry("batch").or_default() += 1;
                let elem = match &decoded {
                    Value::List(items) => items[2].clone(),
                    other => other.clone(),
                };
                let e = envelope::exception_wrapper_from_value(&elem)
                    .unwrap_or_else(|| panic!("{}", c.name));
                assert_eq!(e.class_name, "builtins.ValueError");
                assert_eq!(e.message(), "batch failure");
                if exact {
                    let v = Value::List(vec![
                        Value::Int(1),
                        Value::str("two"),
                        envelope::exception_wrapper_to_value(&e),
                    ]);
                    check_bytes(&c, k, &v);
                }
            }
            "result" => {
                *seen.entry("result").or_default() += 1;
                let v = envelope::recreate_classes(decoded.clone());
                if c.name.starts_with("result_bytes") {
                    assert_eq!(
                        envelope::to_bytes(&v).as_deref(),
                        Some(&b"\x00\x01binary\xff"[..]),
                        "{}",
                        c.name
                    );
                    if exact {
                        check_bytes(&c, k, &Value::Bytes(b"\x00\x01binary\xff".to_vec()));
                    }
                } else {
                    let Value::List(items) = &v else {
                        panic!("{}", c.name)
                    };
                    assert!(
                        matches!(items[0], Value::Float(f) if f.is_nan()),
                        "{}: {v:?}",
                        c.name
                    );
                    let n = items[2].as_dict().unwrap().get_str("n").unwrap();
                    assert!(
                        matches!(n, Value::Float(f) if f.is_nan()),
                        "{}: {v:?}",
                        c.name
                    );
                    if exact {
                        check_bytes(&c, k, &v);
                    }
                }
            }
            other => panic!("unknown mode {other}"),
        }
    }
    assert!(
        seen.len() == 6 && seen.values().all(|n| *n >= 3),
        "{seen:?}"
    );
    // The same object must read the same whichever serializer carried it.
    for (name, all) in excs.iter() {
        assert!(all.windows(2).all(|w| w[0] == w[1]), "{name}: {all:?}");
    }
    for (name, all) in uris.iter() {
        assert!(all.windows(2).all(|w| w[0] == w[1]), "{name}: {all:?}");
    }
    for (name, all) in proxies.iter() {
        assert!(all.windows(2).all(|w| w[0] == w[1]), "{name}: {all:?}");
    }
    let ve = &excs["exc_valueerror"][0];
    assert_eq!(ve.message(), "('bad value', 3)");
    assert!(ve
        .traceback()
        .unwrap()
        .starts_with("Traceback (most recent call last):\n  File"));
    assert_eq!(excs["exc_stopiteration"][0].message(), "");
    assert_eq!(
        excs["exc_namingerror"][0].class_name,
        "Pyro4.errors.NamingError"
    );
    assert_eq!(
        uris["uri_tcp"][0],
        pyro_wire::Uri::parse("PYRO:obj@localhost:9999").unwrap()
    );
    assert_eq!(
        uris["uri_name_ns"][0],
        pyro_wire::Uri::parse("PYRONAME:foo@ns.host").unwrap()
    );
    assert_eq!(
        uris["uri_unix"][0].to_string(),
        "PYRO:obj@./u:/tmp/pyro.sock"
    );
    assert_eq!(uris["uri_ipv6"][0].to_string(), "PYRO:obj@[::1]:5555");
    let p = &proxies["proxy_meta"][0];
    assert_eq!(p.hmac_key.as_deref(), Some(&b"secret\x00key"[..]));
    assert_eq!(p.methods, vec!["hi".to_string()]);
    assert_eq!(p.serializer.as_deref(), Some("json"));
    assert_eq!(proxies["proxy_plain"][0].hmac_key, None);
    let _ = same;
}

#[test]
fn json_call_with_null_kwargs_and_list_vargs() {
    let data = br#"{"object": "thing", "method": "<batch>", "params": [["echo", [1], {}]], "kwargs": null}"#;
    let call = envelope::decode_call(SerializerKind::Json, data, &DecodeLimits::default()).unwrap();
    assert_eq!(call.method, "<batch>");
    assert_eq!(call.kwargs, None);
    assert_eq!(call.args.len(), 1);
    assert!(envelope::decode_call(
        SerializerKind::Json,
        br#"{"object": "x"}"#,
        &DecodeLimits::default()
    )
    .is_err());
    assert!(
        envelope::decode_call(SerializerKind::Json, b"[1, 2]", &DecodeLimits::default()).is_err()
    );
}

#[test]
fn marshal_call_round_trip_with_none_kwargs() {
    let call = Call {
        object: "o".into(),
        method: "__getattr__".into(),
        args: vec![Value::str("prop")],
        kwargs: None,
    };
    let bytes = envelope::encode_call(SerializerKind::Marshal, &call).unwrap();
    let back =
        envelope::decode_call(SerializerKind::Marshal, &bytes, &DecodeLimits::default()).unwrap();
    assert_eq!(back, call);
}

#[test]
fn serpent_call_round_trip() {
    let call = Call {
        object: "obj".into(),
        method: "m".into(),
        args: vec![Value::Int(1), Value::Float(f64::NAN)],
        kwargs: Some(Dict::new()),
    };
    let bytes = envelope::encode_call(SerializerKind::Serpent, &call).unwrap();
    let back =
        envelope::decode_call(SerializerKind::Serpent, &bytes, &DecodeLimits::default()).unwrap();
    // The NaN went out as serpent's class dict and came back a float (recreate_classes).
    assert!(matches!(back.args[1], Value::Float(f) if f.is_nan()));
}

#[test]
fn unsupported_serializers_are_errors() {
    let call = Call {
        object: "o".into(),
        method: "m".into(),
        args: vec![],
        kwargs: None,
    };
    assert!(envelope::encode_call(SerializerKind::Msgpack, &call).is_err());
    assert!(envelope::decode_call(SerializerKind::Msgpack, b"", &DecodeLimits::default()).is_err());
}

#[test]
fn pickle_calls_round_trip_with_kwargs_none() {
    let call = Call {
        object: "Pyro.NameServer".into(),
        method: "__getattr__".into(),
        args: vec![Value::str("verbose"), Value::Int(1 << 40)],
        kwargs: None,
    };
    for kind in [
        SerializerKind::Pickle,
        SerializerKind::Dill,
        SerializerKind::Cloudpickle,
    ] {
        let bytes = envelope::encode_call(kind, &call).unwrap();
        let back = envelope::decode_call(kind, &bytes, &DecodeLimits::default()).unwrap();
        assert_eq!(back, call, "{kind:?}");
    }
}

#[test]
fn proxy_state_accepts_eight_items_and_rejects_bad_hmac() {
    let uri = Value::str("PYRO:thing@localhost:5555");
    let state = |hmac: Value, n: usize| {
        let mut items = vec![
            uri.clone(),
            Value::Tuple(vec![]),
            Value::Set(vec![Value::str("m")]),
            Value::List(vec![]),
            Value::Int(0),
            hmac,
            Value::None,
            Value::Int(0),
            Value::str("serpent"),
        ];
        items.truncate(n);
        Value::Dict(Dict::from_unique_pairs(vec![
            (Value::str("__class__"), Value::str("Pyro4.core.Proxy")),
            (Value::str("state"), Value::Tuple(items)),
        ]))
    };
    let p = envelope::proxy_from_value(&state(Value::None, 8)).unwrap();
    assert_eq!(p.serializer, None);
    assert_eq!(p.methods, vec!["m".to_string()]);
    assert_eq!(p.timeout, 0.0);
    assert!(envelope::proxy_from_value(&state(Value::str("raw"), 9)).is_none());
    assert!(envelope::proxy_from_value(&state(Value::None, 7)).is_none());
    let p = envelope::proxy_from_value(&state(Value::str("b64:AAE="), 9)).unwrap();
    assert_eq!(p.hmac_key, Some(vec![0, 1]));
    assert_eq!(p.serializer.as_deref(), Some("serpent"));
}
