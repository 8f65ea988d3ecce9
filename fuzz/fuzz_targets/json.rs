//! Fuzz the json reader (and the call-envelope reader on top of it). Nothing may panic;
//! whatever decodes must encode again (unless it holds something json cannot carry)
//! and decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyro_codec::envelope::decode_call;
use pyro_codec::{json, DecodeLimits, SerializerKind};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits {
        max_depth: 64,
        max_int_digits: 4300,
    };
    if let Ok(v) = json::from_slice_with(data, &limits) {
        if let Ok(again) = json::to_vec(&v) {
            let back = json::from_slice_with(&again, &limits).expect("our own output must parse");
            assert_eq!(back, v);
        }
    }
    let _ = decode_call(SerializerKind::Json, data, &limits);
});
