//! Fuzz the serpent parser: arbitrary bytes must parse or fail cleanly (no panic, no
//! runaway recursion). Whatever parses must re-encode (unless serpent itself would refuse
//! the value: a None dict key, an int over 4300 digits from a hex literal), and the
//! re-encoding must parse back to the same value, in compact and in indent mode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyro_codec::serpent::{self, EncodeOptions};
use pyro_codec::{Error, Value};

/// Structural equality, except: complex parts compare numerically (literal_eval loses the
/// sign of a -0.0 part), `set()` is written `()` and comes back as a tuple, and in indent
/// mode dict items and set elements come back sorted.
fn same(a: &Value, b: &Value, unordered: bool) -> bool {
    match (a, b) {
        (Value::Complex(r1, i1), Value::Complex(r2, i2)) => r1 == r2 && i1 == i2,
        (Value::Set(x), Value::Tuple(y)) => x.is_empty() && y.is_empty(),
        (Value::Set(x), Value::Set(y)) if unordered => {
            x.len() == y.len() && x.iter().all(|e| y.iter().any(|f| same(e, f, true)))
        }
        (Value::Dict(x), Value::Dict(y)) if unordered => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .any(|(k2, v2)| same(k, k2, true) && same(v, v2, true))
                })
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k, v), (k2, v2))| same(k, k2, false) && same(v, v2, false))
        }
        (Value::Tuple(x), Value::Tuple(y))
        | (Value::List(x), Value::List(y))
        | (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(e, f)| same(e, f, unordered))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serpent::from_slice(data) else {
        return;
    };
    for indent in [false, true] {
        let options = EncodeOptions {
            indent,
            bytes_repr: true,
        };
        let encoded = match serpent::to_vec_with(&value, &options) {
            Ok(e) => e,
            Err(Error::Unencodable(_)) => return,
            Err(e) => panic!("unexpected encode error {e}"),
        };
        let again = serpent::from_slice(&encoded).expect("our own output must parse");
        assert!(same(&value, &again, indent), "{value:?} -> {again:?}");
    }
});
