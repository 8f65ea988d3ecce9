//! pickle: property round trips at every protocol, and random or mutated input that must
//! never panic.

use num_bigint::BigInt;
use proptest::prelude::*;
use pyro_codec::pickle::{self, EncodeOptions};
use pyro_codec::value::dedup_set;
use pyro_codec::{Dict, Value};

fn hashable() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        (-300i64..70000).prop_map(Value::Int),
        any::<i64>().prop_map(Value::Int),
        (any::<i64>(), any::<u64>())
            .prop_map(|(a, b)| Value::from_bigint(BigInt::from(a) * BigInt::from(b) * 7919)),
        any::<f64>().prop_map(Value::Float),
        (any::<f64>(), any::<f64>()).prop_map(|(a, b)| Value::Complex(a, b)),
        ".{0,3}".prop_map(Value::Str),
        ".*".prop_map(Value::Str),
        "[a-z]{250,300}".prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        prop::collection::vec(any::<u8>(), 250..300).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop::collection::vec(inner, 0..5).prop_map(Value::Tuple)
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

proptest! {
    /// Structural equality (floats bit for bit, set order kept: the pickler writes sets
    /// in their stored order and the unpickler keeps it).
    #[test]
    fn round_trip_every_protocol(v in any_value(), protocol in 2u8..=5) {
        let bytes = pickle::to_vec_with(&v, &EncodeOptions { protocol }).unwrap();
        let back = pickle::from_slice(&bytes).unwrap();
        prop_assert_eq!(back, v);
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = pickle::from_slice(&data);
    }

    #[test]
    fn random_opcodes_after_proto_never_panic(
        protocol in 0u8..=5,
        data in prop::collection::vec(
            prop::sample::select(b"()0125FIJKLMNRSTUVXabcdeghjlopqrstu}]GBC.\n'\x80\x81\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96".to_vec()),
            0..200,
        ),
    ) {
        let mut input = vec![0x80, protocol];
        input.extend(data);
        let _ = pickle::from_slice(&input);
    }

    #[test]
    fn mutated_pickles_never_panic(
        v in any_value(),
        protocol in 2u8..=5,
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = pickle::to_vec_with(&v, &EncodeOptions { protocol }).unwrap();
        for (at, byte) in edits {
            let i = at % bytes.len();
            bytes[i] = byte;
        }
        let _ = pickle::from_slice(&bytes);
    }

    /// A strict prefix never reaches the final STOP (a '.' inside it is an argument).
    #[test]
    fn truncated_pickles_are_errors(v in any_value(), protocol in 2u8..=5, at in any::<usize>()) {
        let bytes = pickle::to_vec_with(&v, &EncodeOptions { protocol }).unwrap();
        let cut = at % bytes.len();
        prop_assert!(pickle::from_slice(&bytes[..cut]).is_err());
    }
}
