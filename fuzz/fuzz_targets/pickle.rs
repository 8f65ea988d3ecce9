//! Fuzz the unpickler (and the call-envelope reader on top of it). Nothing may panic,
//! recurse without bound or blow up through memo references; whatever decodes must
//! pickle again at every protocol and decode to an equal value (unless it holds class
//! dicts: those are pickled as the Pyro4 objects they stand for, which normalises them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyro_codec::envelope::decode_call;
use pyro_codec::pickle::{self, DecodeOptions, EncodeOptions};
use pyro_codec::{DecodeLimits, SerializerKind, Value};

fn has_class_dict(v: &Value) -> bool {
    match v {
        Value::Dict(d) => {
            d.get_str("__class__").is_some()
                || d.iter()
                    .any(|(k, x)| has_class_dict(k) || has_class_dict(x))
        }
        Value::Tuple(x) | Value::List(x) | Value::Set(x) => x.iter().any(has_class_dict),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let options = DecodeOptions {
        limits: DecodeLimits {
            max_depth: 64,
            max_int_digits: 4300,
        },
        max_output_bytes: Some(4 << 20),
    };
    if let Ok(v) = pickle::from_slice_opts(data, &options) {
        // Class dicts are written as the objects they stand for; a class dict that only
        // looks like one (say an exception dict naming a class the unpickler does not
        // know as an exception) may fail to pickle or to come back. Plain data may not.
        let plain = !has_class_dict(&v);
        let relaxed = DecodeOptions {
            max_output_bytes: None,
            ..options
        };
        for protocol in 2..=5 {
            match pickle::to_vec_with(&v, &EncodeOptions { protocol }) {
                Err(e) => assert!(!plain, "{v:?} does not pickle: {e}"),
                Ok(again) => match pickle::from_slice_opts(&again, &relaxed) {
                    Ok(back) => assert!(back == v || !plain, "{v:?} vs {back:?}"),
                    Err(e) => assert!(!plain, "our own pickle of {v:?} fails: {e}"),
                },
            }
        }
    }
    let _ = decode_call(SerializerKind::Pickle, data, &options.limits);
});
