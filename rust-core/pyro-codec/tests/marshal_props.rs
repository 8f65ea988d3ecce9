//! marshal: property round trips and hostile input.

use num_bigint::BigInt;
use proptest::prelude::*;
use pyro_codec::value::dedup_set;
use pyro_codec::{marshal, DecodeLimits, Dict, Error, Value};

fn hashable() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        (-300i64..300).prop_map(Value::Int),
        any::<i64>().prop_map(Value::Int),
        (any::<i64>(), any::<u64>())
            .prop_map(|(a, b)| Value::from_bigint(BigInt::from(a) * BigInt::from(b) * 7919)),
        any::<f64>().prop_map(Value::Float),
        (any::<f64>(), any::<f64>()).prop_map(|(a, b)| Value::Complex(a, b)),
        ".{0,3}".prop_map(Value::Str),
        ".*".prop_map(Value::Str),
        "[a-z]{250,300}".prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Value::Tuple)
    })
    .boxed()
}

fn any_value() -> impl Strategy<Value = Value> {
    hashable().prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            prop::collection::vec(hashable(), 0..6).prop_map(|v| Value::Set(dedup_set(v).unwrap())),
            prop::collection::vec((hashable(), inner), 0..6)
                .prop_map(|pairs| Value::Dict(Dict::from_pairs(pairs).unwrap())),
        ]
    })
}

/// Structural equality with sets unordered (the encoder writes them sorted, as CPython).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().all(|i| y.iter().any(|j| same(i, j)))
        }
        (Value::Tuple(x), Value::Tuple(y)) | (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(i, j)| same(i, j))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.entries()
                    .iter()
                    .zip(y.entries())
                    .all(|((a, b), (c, d))| same(a, c) && same(b, d))
        }
        _ => a == b,
    }
}

proptest! {
    #[test]
    fn round_trip(v in any_value()) {
        let bytes = marshal::to_vec(&v).unwrap();
        let back = marshal::from_slice_with(&bytes, &DecodeLimits::default()).unwrap();
        prop_assert!(same(&back, &v), "{:?} -> {:?}", v, back);
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = marshal::from_slice_with(&data, &DecodeLimits::default());
    }

    #[test]
    fn mutated_marshal_never_panics(v in any_value(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = marshal::to_vec(&v).unwrap();
        let i = at % bytes.len();
        bytes[i] = byte;
        let _ = marshal::from_slice_with(&bytes, &DecodeLimits::default());
    }
}

#[test]
fn huge_length_claims_fail_without_allocating() {
    let limits = DecodeLimits::default();
    for code in [b'[', b'(', b'<', b'>', b's', b'u', b'a', b't'] {
        let data = [code, 0xff, 0xff, 0xff, 0x7f, b'N'];
        assert!(
            marshal::from_slice_with(&data, &limits).is_err(),
            "{}",
            code as char
        );
    }
    // Negative sizes.
    assert!(marshal::from_slice_with(&[b'[', 0xff, 0xff, 0xff, 0xff], &limits).is_err());
}

#[test]
fn deep_nesting_is_an_error() {
    let mut data = Vec::new();
    for _ in 0..100_000 {
        data.extend_from_slice(&[b')', 1]);
    }
    data.push(b'N');
    assert!(matches!(
        marshal::from_slice(&data),
        Err(Error::TooDeep { .. })
    ));
    let mut ok = Vec::new();
    for _ in 0..200 {
        ok.extend_from_slice(&[b'[', 1, 0, 0, 0]);
    }
    ok.push(b'N');
    assert!(marshal::from_slice(&ok).is_ok());
}

#[test]
fn huge_ints_are_errors() {
    // A claim of a million 15-bit digits (about 4.5 million decimal digits).
    let mut data = vec![b'l'];
    data.extend_from_slice(&1_000_000i32.to_le_bytes());
    data.extend(std::iter::repeat(0x7f).take(2_000_000));
    assert!(matches!(
        marshal::from_slice(&data),
        Err(Error::IntTooLarge { .. })
    ));
    // 10**4299 (4300 digits) is fine.
    let big = Value::from_bigint(BigInt::from(10).pow(4299));
    assert_eq!(
        marshal::from_slice(&marshal::to_vec(&big).unwrap()).unwrap(),
        big
    );
}

#[test]
fn references_share_values() {
    // [x, r(x)] where x = flagged str.
    let data = [
        b'[',
        2,
        0,
        0,
        0,
        b'z' | 0x80,
        2,
        b'h',
        b'i',
        b'r',
        0,
        0,
        0,
        0,
    ];
    assert_eq!(
        marshal::from_slice(&data).unwrap(),
        Value::List(vec![Value::str("hi"), Value::str("hi")])
    );
    // Out-of-range and forward references.
    assert!(marshal::from_slice(&[b'[', 1, 0, 0, 0, b'r', 5, 0, 0, 0]).is_err());
    assert!(marshal::from_slice(&[b'r', 0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn repeated_singletons_become_references() {
    let v = Value::List(vec![
        Value::Int(7),
        Value::Int(7),
        Value::str("x"),
        Value::str("x"),
    ]);
    let bytes = marshal::to_vec(&v).unwrap();
    assert_eq!(
        bytes,
        b"[\x04\x00\x00\x00\xe9\x07\x00\x00\x00r\x00\x00\x00\x00\xfa\x01xr\x01\x00\x00\x00"
            .to_vec()
    );
}
