//! Hostile and odd pickles: unknown globals, memo bombs, deep nesting, huge length
//! claims, cycles, refused opcodes; plus Python 2 style streams Pyro4 on Python 2.7
//! sends. Every case must end in an error (or the right value) quickly, without a panic
//! or a large allocation.

use pyro_codec::pickle::{self, DecodeOptions};
use pyro_codec::{DecodeLimits, Error, Value};
use std::time::{Duration, Instant};

fn err(data: &[u8]) -> String {
    match pickle::from_slice(data) {
        Ok(v) => panic!("expected an error for {}, got {v:?}", data.escape_ascii()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn calls_of_unknown_globals_are_refused() {
    // What `pickle.loads` would turn into os.system('echo pwned') at each protocol.
    let p0 = b"cos\nsystem\n(S'echo pwned'\ntR.";
    assert!(err(p0).contains("os.system"), "{}", err(p0));
    let p2 = b"\x80\x02cposix\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
    assert!(err(p2).contains("posix.system"));
    let p4 = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04echo\x85R.";
    assert!(err(p4).contains("os.system"));
    // INST and OBJ with arguments are calls too.
    assert!(err(b"(S'echo'\nios\nsystem\n.").contains("os.system"));
    assert!(err(b"(cos\nsystem\nS'echo'\no.").contains("os.system"));
    for g in [
        &b"cbuiltins\neval\n"[..],
        b"c__builtin__\ngetattr\n",
        b"csubprocess\nPopen\n",
        b"cbuiltins\n__import__\n",
    ] {
        let mut p = g.to_vec();
        p.extend_from_slice(b"(S'x'\ntR.");
        assert!(err(&p).contains("refusing to call"), "{}", err(&p));
    }
    // A bare global as a value (pickle.dumps(os.system)) has no representation.
    assert!(err(b"cos\nsystem\n.").contains("not a value"));
}

#[test]
fn unknown_classes_built_without_a_call_become_class_dicts() {
    // NEWOBJ + BUILD is how every plain object arrives; nothing is imported or run.
    let v = pickle::from_slice(
        b"\x80\x02cevil\nThing\nq\x00)\x81q\x01}q\x02X\x01\x00\x00\x00xK\x01sb.",
    )
    .unwrap();
    let d = v.as_dict().unwrap();
    assert_eq!(d.get_str("__class__"), Some(&Value::str("evil.Thing")));
    assert_eq!(d.get_str("x"), Some(&Value::Int(1)));
}

/// Nested lists that share one list per level: 8 levels of 1000 references each would be
/// 10^24 items when copied out; the arena holds ~8000 handles.
fn memo_bomb(levels: usize, width: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0x02, b']', b'q', 0]; // memo 0 = []
    for level in 1..=levels {
        p.extend_from_slice(b"](");
        for _ in 0..width {
            p.extend_from_slice(&[b'h', (level - 1) as u8]);
        }
        p.extend_from_slice(&[b'e', b'q', level as u8]);
    }
    p.push(b'.');
    p
}

#[test]
fn memo_bombs_hit_the_output_budget() {
    let bomb = memo_bomb(8, 1000);
    assert!(bomb.len() < 20_000);
    let t = Instant::now();
    let e = err(&bomb);
    assert!(e.contains("budget"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));

    // Modest sharing is fine and comes out as copies.
    let v = pickle::from_slice(&memo_bomb(2, 3)).unwrap();
    let Value::List(outer) = v else { panic!() };
    assert_eq!(outer.len(), 3);
    assert_eq!(outer[0], Value::List(vec![Value::List(vec![]); 3]));

    // The budget is configurable.
    let tight = DecodeOptions {
        max_output_bytes: Some(1000),
        ..DecodeOptions::default()
    };
    assert!(pickle::from_slice_opts(&memo_bomb(2, 30), &tight).is_err());
    assert!(pickle::from_slice_opts(&memo_bomb(2, 3), &tight).is_ok());
}

#[test]
fn deep_nesting_is_refused_without_recursion_in_the_machine() {
    // 100000 nested lists: EMPTY_LIST x n, then APPEND x (n - 1).
    let n = 100_000;
    let mut p = vec![0x80, 0x02];
    p.extend(std::iter::repeat(b']').take(n));
    p.extend(std::iter::repeat(b'a').take(n - 1));
    p.push(b'.');
    assert!(matches!(
        pickle::from_slice(&p),
        Err(Error::TooDeep { limit: 200, .. })
    ));
    // 200 levels are fine, 201 are not (the serpent/CPython literal limit).
    let nest = |n: usize| {
        let mut p = vec![0x80, 0x02];
        p.extend(std::iter::repeat(b']').take(n));
        p.extend(std::iter::repeat(b'a').take(n - 1));
        p.push(b'.');
        p
    };
    assert!(pickle::from_slice(&nest(200)).is_ok());
    assert!(pickle::from_slice(&nest(201)).is_err());
    let limits = DecodeLimits {
        max_depth: 10,
        ..DecodeLimits::default()
    };
    assert!(pickle::from_slice_with(&nest(11), &limits).is_err());
    // A million MARKs cost a vector of positions, nothing more.
    let mut p = vec![0x80, 0x02];
    p.extend(std::iter::repeat(b'(').take(1_000_000));
    p.push(b'.');
    assert!(pickle::from_slice(&p).is_err());
}

#[test]
fn huge_length_claims_are_checked_before_allocating() {
    let cases: &[&[u8]] = &[
        b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7fabc.", // BINUNICODE8 2^63
        b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xffabc.", // BINBYTES8 2^64-1
        b"\x80\x05\x96\x00\x00\x00\x00\x01\x00\x00\x00abc.", // BYTEARRAY8 2^32
        b"\x80\x03B\xff\xff\xff\xffabc.",                    // BINBYTES 4 GiB
        b"X\xff\xff\xff\xffabc.",                            // BINUNICODE 4 GiB
        b"T\xff\xff\xff\x7fabc.",                            // BINSTRING 2 GiB
        b"T\xff\xff\xff\xffabc.",                            // BINSTRING negative
        b"\x80\x02\x8b\xff\xff\xff\x7f\x01.",                // LONG4 2 GiB
        b"\x80\x02\x8b\xff\xff\xff\xff\x01.",                // LONG4 negative
        b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN.",   // FRAME beyond the input
        b"\x80\x02\x8a\xffab.",                              // LONG1 255 bytes, 2 there
        b"\x80\x02U\x05ab.",                                 // SHORT_BINSTRING
    ];
    for c in cases {
        err(c);
    }
}

#[test]
fn integer_size_is_capped() {
    // LONG4 with 5000 bytes (12000 digits) is over the 4300-digit limit.
    let mut p = vec![0x80, 0x02, 0x8b];
    p.extend_from_slice(&5000u32.to_le_bytes());
    p.extend(std::iter::repeat(0x11).take(5000));
    p.push(b'.');
    assert!(matches!(
        pickle::from_slice(&p),
        Err(Error::IntTooLarge { .. })
    ));
    let mut p = b"L".to_vec();
    p.extend(std::iter::repeat(b'7').take(4301));
    p.extend_from_slice(b"L\n.");
    assert!(matches!(
        pickle::from_slice(&p),
        Err(Error::IntTooLarge { .. })
    ));
    // Large but allowed.
    let mut p = b"L".to_vec();
    p.extend(std::iter::repeat(b'7').take(4300));
    p.extend_from_slice(b"\n.");
    assert!(matches!(pickle::from_slice(&p), Ok(Value::BigInt(_))));
}

#[test]
fn cycles_are_errors() {
    // l = []; l.append(l)
    assert!(err(b"\x80\x02]q\x00h\x00a.").contains("recursive"));
    // d = {}; d['self'] = d
    assert!(err(b"\x80\x02}q\x00X\x04\x00\x00\x00selfh\x00s.").contains("recursive"));
    // Shared but acyclic is fine.
    assert!(pickle::from_slice(b"\x80\x02]q\x00h\x00\x86.").is_ok());
}

#[test]
fn refused_opcodes_say_why() {
    assert!(err(b"\x80\x05\x97.").contains("out-of-band"));
    assert!(err(b"\x80\x05C\x01a\x98.").contains("out-of-band"));
    assert!(err(b"P1\n.").contains("persistent"));
    assert!(err(b"\x80\x02N\x51.").contains("persistent"));
    assert!(err(b"\x80\x02\x82\x01.").contains("extension registry"));
    assert!(err(b"\x80\x06N.").contains("unsupported pickle protocol"));
    assert!(err(b"\x80\x02\xff.").contains("invalid load key"));
    assert!(err(b"\x80\x02]}b.").contains("BUILD on a list"));
    assert!(err(b"\x80\x02NNa.").contains("APPEND on a NoneType"));
    assert!(err(b"\x80\x02.").contains("underflow"));
    assert!(err(b"\x80\x02h\x05.").contains("memo"));
    assert!(err(b"\x80\x02K\x01(.").contains("underflow"));
    assert!(matches!(
        pickle::from_slice(b"\x80\x02}]Ns."),
        Err(Error::Unhashable("list"))
    ));
    assert!(err(b"\x80\x02X\x03\x00\x00\x00\xed\xa0\x80.").contains("UTF-8"));
}

#[test]
fn python2_streams() {
    // Pyro4 on Python 2.7 (protocol 2): str is SHORT_BINSTRING, exceptions live in
    // module `exceptions`, sets in `__builtin__`.
    let v = pickle::from_slice(b"\x80\x02cexceptions\nValueError\nq\x00U\x03badq\x01\x85q\x02Rq\x03}q\x04U\x0e_pyroTracebackq\x05]q\x06U\x03tb\nq\x07asb.").unwrap();
    let e = pyro_codec::envelope::RemoteException::from_value(&v).unwrap();
    assert_eq!(e.class_name, "builtins.ValueError");
    assert_eq!(e.args, vec![Value::str("bad")]);
    assert_eq!(e.traceback().as_deref(), Some("tb\n"));
    let v =
        pickle::from_slice(b"\x80\x02c__builtin__\nset\n]q\x00(K\x01K\x02e\x85Rq\x01.").unwrap();
    assert_eq!(v, Value::Set(vec![Value::Int(1), Value::Int(2)]));
    // Protocol 0 Python 2 str with escapes.
    assert_eq!(
        pickle::from_slice(b"S'a\\'b\\n'\np0\n.").unwrap(),
        Value::str("a'b\n")
    );
    // Python 3 decodes Python 2 str as ASCII by default: other bytes are an error.
    assert!(err(b"U\x02\xc3\xa9.").contains("ASCII"));
    // StandardError is Exception in Python 3.
    let v = pickle::from_slice(b"cexceptions\nStandardError\n(S'x'\ntR.").unwrap();
    assert_eq!(
        v.as_dict().unwrap().get_str("__class__"),
        Some(&Value::str("builtins.Exception"))
    );
    // A Python 2 datetime: state as a (binary) str.
    let v = pickle::from_slice(
        b"\x80\x02cdatetime\ndatetime\nU\n\x07\xe4\x01\x02\x03\x04\x05\x00\x00\x06\x85R.",
    )
    .unwrap();
    assert_eq!(v, Value::str("2020-01-02T03:04:05.000006"));
}

#[test]
fn protocol_0_text_opcodes() {
    assert_eq!(pickle::from_slice(b"I01\n.").unwrap(), Value::Bool(true));
    assert_eq!(pickle::from_slice(b"I00\n.").unwrap(), Value::Bool(false));
    assert_eq!(pickle::from_slice(b"I-42\n.").unwrap(), Value::Int(-42));
    assert_eq!(
        pickle::from_slice(b"F-2.345e-202\n.").unwrap(),
        Value::Float(-2.345e-202)
    );
    assert_eq!(
        pickle::from_slice(b"V\\u20ac caf\xe9\n.").unwrap(),
        Value::str("\u{20ac} caf\u{e9}")
    );
    assert_eq!(
        pickle::from_slice(b"(I1\n(I2\n(I3\nI4\n1.").unwrap(),
        Value::Int(2)
    );
    assert_eq!(
        pickle::from_slice(b"(I42\n2t.").unwrap(),
        Value::Tuple(vec![Value::Int(42), Value::Int(42)])
    );
    // pickle.loads ignores what follows STOP.
    assert_eq!(pickle::from_slice(b"N.garbage").unwrap(), Value::None);
}

#[test]
fn exception_classes_named_plainly_error_round_trip() {
    // Fuzz regression: a class named just `Error` (binascii.Error, shutil.Error, or a
    // dotted qualname like `C.Error`) is an exception; what we write for it must load.
    for p in [
        &b"\x80\x02cPyro4.errors\nC.Error\nq\x00X\x08\x00\x00\x00no routeq\x01\x85q\x02Rq\x03."[..],
        b"\x80\x02cbinascii\nError\nX\x03\x00\x00\x00badq\x01\x85R.",
    ] {
        let v = pickle::from_slice(p).unwrap();
        let e = pyro_codec::envelope::RemoteException::from_value(&v).unwrap();
        assert!(e.class_name.ends_with(".Error"), "{}", e.class_name);
        for protocol in 2..=5 {
            let again = pickle::to_vec_with(&v, &pickle::EncodeOptions { protocol }).unwrap();
            assert_eq!(pickle::from_slice(&again).unwrap(), v);
        }
    }
}
