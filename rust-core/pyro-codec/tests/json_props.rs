//! json: property round trips and hostile input.

use num_bigint::BigInt;
use proptest::prelude::*;
use pyro_codec::{json, DecodeLimits, Dict, Error, Value};

/// Values json carries unchanged: no tuples, sets, bytes or complex; str keys only.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (any::<i64>(), any::<u64>())
            .prop_map(|(a, b)| Value::from_bigint(BigInt::from(a) * BigInt::from(b) * 1_000_003)),
        any::<f64>().prop_map(|f| Value::Float(if f.is_nan() { f64::NAN } else { f })),
        ".*".prop_map(Value::Str),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            prop::collection::vec((".*", inner), 0..8).prop_map(|pairs| {
                let pairs = pairs.into_iter().map(|(k, v)| (Value::Str(k), v)).collect();
                Value::Dict(Dict::from_pairs(pairs).unwrap())
            }),
        ]
    })
}

proptest! {
    #[test]
    fn round_trip(v in json_value()) {
        let bytes = json::to_vec(&v).unwrap();
        let back = json::from_slice_with(&bytes, &DecodeLimits::default()).unwrap();
        prop_assert_eq!(back, v);
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = json::from_slice_with(&data, &DecodeLimits::default());
    }

    #[test]
    fn mutated_json_never_panics(v in json_value(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = json::to_vec(&v).unwrap();
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] = byte;
        }
        let _ = json::from_slice_with(&bytes, &DecodeLimits::default());
    }
}

#[test]
fn deep_nesting_is_an_error() {
    let limits = DecodeLimits::default();
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    assert!(matches!(
        json::from_slice_with(deep.as_bytes(), &limits),
        Err(Error::TooDeep { .. })
    ));
    let deep = r#"{"a":"#.repeat(1000) + "1" + &"}".repeat(1000);
    assert!(matches!(
        json::from_slice_with(deep.as_bytes(), &limits),
        Err(Error::TooDeep { .. })
    ));
    let ok = "[".repeat(200) + &"]".repeat(200);
    assert!(json::from_slice_with(ok.as_bytes(), &limits).is_ok());
}

#[test]
fn million_digit_int_is_an_error() {
    let text = "9".repeat(1_000_000);
    assert!(matches!(
        json::from_slice_with(text.as_bytes(), &DecodeLimits::default()),
        Err(Error::IntTooLarge { .. })
    ));
    // The limit is the same one Python applies: 4300 digits pass.
    let text = "9".repeat(4300);
    assert!(matches!(
        json::from_slice(text.as_bytes()),
        Ok(Value::BigInt(_))
    ));
}

#[test]
fn errors_carry_offsets() {
    match json::from_slice(b"[1, 2, x]") {
        Err(Error::Syntax { offset, .. }) => assert_eq!(offset, 7),
        other => panic!("{other:?}"),
    }
    assert!(matches!(json::from_slice(b"[1, 2"), Err(Error::Eof { .. })));
    assert!(matches!(
        json::from_slice(b"\"\\ud800\""),
        Err(Error::Syntax { .. })
    ));
}

#[test]
fn encoder_refusals() {
    assert!(json::to_vec(&Value::Bytes(vec![1])).is_err());
    assert!(json::to_vec(&Value::Complex(1.0, 2.0)).is_err());
    let d = Dict::from_pairs(vec![(Value::Tuple(vec![]), Value::None)]).unwrap();
    assert!(matches!(
        json::to_vec(&Value::Dict(d)),
        Err(Error::Unencodable(_))
    ));
    // Tuples and sets are arrays.
    let v = Value::Tuple(vec![Value::Set(vec![Value::Int(1)]), Value::Tuple(vec![])]);
    assert_eq!(json::to_vec(&v).unwrap(), b"[[1], []]");
}
