//! Fuzz the marshal reader (and the call-envelope reader on top of it). Nothing may
//! panic or blow up through back-references; whatever decodes must encode again and
//! decode to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyro_codec::envelope::decode_call;
use pyro_codec::{marshal, DecodeLimits, SerializerKind};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits {
        max_depth: 64,
        max_int_digits: 4300,
    };
    if let Ok(v) = marshal::from_slice_with(data, &limits) {
        let again = marshal::to_vec(&v).expect("decoded values encode");
        let back = marshal::from_slice_with(&again, &limits).expect("our own output must parse");
        // Sets come back in CPython's sorted order, so compare with Python equality.
        assert!(
            back.py_eq(&v) || format!("{v:?}").contains("NaN"),
            "{v:?} vs {back:?}"
        );
    }
    let _ = decode_call(SerializerKind::Marshal, data, &limits);
});
