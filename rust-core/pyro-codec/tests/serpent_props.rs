//! Property tests: Value -> serpent -> Value round trips (compact and indent), and
//! hostile input that must give errors, never panics or runaway recursion.

use num_bigint::{BigInt, Sign};
use proptest::prelude::*;
use pyro_codec::serpent::{self, EncodeOptions};
use pyro_codec::value::dedup_set;
use pyro_codec::{DecodeLimits, Dict, Error, Value};

/// Floats that survive the text form exactly (NaN becomes a class dict).
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("no NaN", |f| !f.is_nan()),
        Just(0.0),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(5e-324),
        Just(1e16),
        Just(1e-5),
    ]
}

/// Complex parts literal_eval gives back exactly: no NaN, no -0.0 (its sign is lost
/// because `(-0.0-0.0j)` is read as a subtraction).
fn complex_part() -> impl Strategy<Value = f64> {
    float().prop_filter("no -0.0", |f| !(*f == 0.0 && f.is_sign_negative()))
}

fn bigint() -> impl Strategy<Value = Value> {
    (any::<bool>(), prop::collection::vec(any::<u8>(), 8..200)).prop_map(|(neg, bytes)| {
        let sign = if neg { Sign::Minus } else { Sign::Plus };
        Value::from_bigint(BigInt::from_bytes_le(sign, &bytes))
    })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,12}",
        prop::collection::vec(any::<char>(), 0..12).prop_map(|v| v.into_iter().collect()),
        Just("'\"\\\n\t\r\0\x7f\u{a0}\u{ad}\u{2028}\u{feff}\u{f0000}\u{10ffff}".to_string()),
    ]
}

fn hashable() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        bigint(),
        float().prop_map(Value::Float),
        (complex_part(), complex_part()).prop_map(|(r, i)| Value::Complex(r, i)),
        text().prop_map(Value::Str),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop::collection::vec(inner, 0..3).prop_map(Value::Tuple)
    })
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        bigint(),
        float().prop_map(Value::Float),
        (complex_part(), complex_part()).prop_map(|(r, i)| Value::Complex(r, i)),
        text().prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            // non-empty: the empty set is written `()` and reads back as a tuple
            prop::collection::vec(hashable(), 1..6)
                .prop_map(|v| Value::Set(dedup_set(v).expect("hashable"))),
            prop::collection::vec((hashable(), inner), 0..6)
                .prop_map(|pairs| Value::Dict(Dict::from_pairs(pairs).expect("hashable"))),
        ]
    })
}

/// Structural equality with dict items and set elements compared as unordered (indent
/// mode sorts them).
fn same_unordered(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().all(|e| y.iter().any(|f| same_unordered(e, f)))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .any(|(k2, v2)| same_unordered(k, k2) && same_unordered(v, v2))
                })
        }
        (Value::Tuple(x), Value::Tuple(y)) | (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(e, f)| same_unordered(e, f))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn compact_round_trip_is_exact(v in value()) {
        let opts = EncodeOptions { indent: false, bytes_repr: true };
        let bytes = serpent::to_vec_with(&v, &opts).unwrap();
        let back = serpent::from_slice(&bytes).unwrap();
        prop_assert_eq!(&back, &v);
        // and re-encoding is stable
        prop_assert_eq!(serpent::to_vec_with(&back, &opts).unwrap(), bytes);
    }

    #[test]
    fn indent_round_trip(v in value()) {
        let opts = EncodeOptions { indent: true, bytes_repr: true };
        let bytes = serpent::to_vec_with(&v, &opts).unwrap();
        let back = serpent::from_slice(&bytes).unwrap();
        prop_assert!(same_unordered(&back, &v), "{:?}\n{}", back, String::from_utf8_lossy(&bytes));
        // Indent output is already sorted: encoding it again gives the same text.
        prop_assert_eq!(serpent::to_vec_with(&back, &opts).unwrap(), bytes);
    }

    #[test]
    fn default_mode_bytes_become_the_base64_dict(data in prop::collection::vec(any::<u8>(), 0..64)) {
        let bytes = serpent::to_vec(&Value::Bytes(data.clone())).unwrap();
        let back = serpent::from_slice(&bytes).unwrap();
        let d = back.as_dict().unwrap();
        prop_assert_eq!(d.get_str("encoding"), Some(&Value::str("base64")));
        let b64 = d.get_str("data").and_then(Value::as_str).unwrap();
        use base64::Engine as _;
        prop_assert_eq!(base64::engine::general_purpose::STANDARD.decode(b64).unwrap(), data);
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serpent::from_slice(&data);
    }

    #[test]
    fn random_serpent_like_text_never_panics(s in "[\\[\\](){}:,'\"\\\\ 0-9a-zA-Z.+\\-_#\n\r\t]{0,80}") {
        let _ = serpent::from_slice(s.as_bytes());
    }

    #[test]
    fn truncations_and_mutations_never_panic(v in value(), cut in any::<prop::sample::Index>(),
                                             flip in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let bytes = serpent::to_vec(&v).unwrap();
        let _ = serpent::from_slice(&bytes[..cut.index(bytes.len() + 1)]);
        let mut m = bytes.clone();
        let i = flip.index(m.len());
        m[i] = byte;
        if let Ok(parsed) = serpent::from_slice(&m) {
            // whatever parses must encode (depth and digits are within the limits)
            let _ = serpent::to_vec(&parsed);
        }
    }

    #[test]
    fn nesting_depth_is_capped(depth in 1usize..400, kind in 0usize..4) {
        let (open, close): (&str, &str) = [("[", "]"), ("(", ",)"), ("{'k':", "}"), ("(", ")")][kind];
        let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        match serpent::from_slice(text.as_bytes()) {
            Ok(_) => prop_assert!(depth <= 200),
            Err(Error::TooDeep { limit: 200, .. }) => prop_assert!(depth > 200),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

#[test]
fn hostile_inputs_fail_fast() {
    let cases: Vec<Vec<u8>> = vec![
        "[".repeat(10_000).into_bytes(),
        "(".repeat(10_000).into_bytes(),
        "{".repeat(10_000).into_bytes(),
        "-".repeat(100_000).into_bytes(),
        "-(".repeat(10_000).into_bytes(),
        "{1:".repeat(10_000).into_bytes(),
        "9".repeat(1_000_000).into_bytes(),
        format!("[{}]", "1,".repeat(100_000)).into_bytes(),
        format!("'{}", "a".repeat(1_000_000)).into_bytes(),
        "# only a comment\n".repeat(1000).into_bytes(),
    ];
    for (i, c) in cases.iter().enumerate() {
        let r = serpent::from_slice(c);
        if i == 7 {
            assert!(r.is_ok(), "a long flat list is fine");
        } else {
            assert!(r.is_err(), "case {i} should fail");
        }
    }
    assert!(matches!(
        serpent::from_slice("9".repeat(1_000_000).as_bytes()),
        Err(Error::IntTooLarge {
            limit: 4300,
            offset: 0,
            ..
        })
    ));
}

#[test]
fn limits_are_configurable() {
    let limits = DecodeLimits {
        max_depth: 3,
        max_int_digits: 5,
    };
    assert!(serpent::from_slice_with(b"[[[1]]]", &limits).is_ok());
    assert!(matches!(
        serpent::from_slice_with(b"[[[[1]]]]", &limits),
        Err(Error::TooDeep {
            limit: 3,
            offset: 3,
            ..
        })
    ));
    assert!(serpent::from_slice_with(b"99999", &limits).is_ok());
    assert!(matches!(
        serpent::from_slice_with(b"[1, 999999]", &limits),
        Err(Error::IntTooLarge {
            limit: 5,
            offset: 4,
            ..
        })
    ));
}

/// Long text with escapes spread through it: runs of up to 70 characters (ASCII or not)
/// between newlines, quotes, backslashes, tabs and other escaped characters, so the
/// parser's 32-byte steps over a str literal find the end of a run anywhere in a step,
/// or not at all, and the input ends at any point in the last step.
fn long_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[ -~]{0,70}",
            "[a-z\u{e9}\u{4e2d}\u{1f600} ]{0,40}",
            Just("\n".to_string()),
            Just("'".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("\t".to_string()),
            Just("\u{7f}\u{2028}\u{0}".to_string()),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn long_text_with_escapes_round_trips(s in long_text(), tail in "[ -&(-\\[\\]-~]{0,40}") {
        let v = Value::Str(s.clone());
        let bytes = serpent::to_vec(&v).unwrap();
        prop_assert_eq!(serpent::from_slice(&bytes).unwrap(), v);
        // In a container, so more input follows the literal.
        let list = Value::List(vec![Value::Str(s.clone()), Value::Str(tail.clone())]);
        let bytes = serpent::to_vec(&list).unwrap();
        prop_assert_eq!(serpent::from_slice(&bytes).unwrap(), list);
        // Followed by another literal: implicit concatenation.
        let mut joined = serpent::to_vec(&Value::Str(s.clone())).unwrap();
        joined.extend_from_slice(b" '");
        joined.extend_from_slice(tail.as_bytes());
        joined.push(b'\'');
        prop_assert_eq!(serpent::from_slice(&joined).unwrap(), Value::Str(s + &tail));
    }

    #[test]
    fn long_text_with_hex_and_unicode_escapes_parses(s in long_text()) {
        // Written by hand with \x, \u and \U escapes (not what serpent writes), which the
        // parser decodes by its general escape path in the middle of the fast loop.
        let mut lit = String::from("'");
        for c in s.chars() {
            match c {
                '\'' | '\\' => { lit.push('\\'); lit.push(c); }
                '\n' => lit.push_str("\\n"),
                '\t' => lit.push_str("\\x09"),
                '\u{0}' => lit.push_str("\\U00000000"),
                c if !c.is_ascii() => lit.push_str(&format!("\\u{:04x}", c as u32).replace("\\u1f600", "\\U0001f600")),
                c => lit.push(c),
            }
        }
        lit.push('\'');
        prop_assert_eq!(serpent::from_slice(lit.as_bytes()).unwrap(), Value::Str(s));
    }
}

#[test]
fn broken_long_literals_are_errors() {
    // Unterminated, a raw newline inside, and bad escapes, past the first 32-byte step.
    let run = "x".repeat(100);
    for doc in [
        format!("'{run}\\n{run}"),
        format!("'{run}\\n{run}\n{run}'"),
        format!("'{run}\\n{run}\\x4'"),
        format!("'{run}\\n{run}\\N{{BULLET}}'"),
        format!("'{run}\\n{run}\\"),
    ] {
        assert!(serpent::from_slice(doc.as_bytes()).is_err(), "{doc:?}");
    }
}
