//! Fuzz the sans-IO wire layer: the 24-byte header parser, the whole-message decoder
//! (with an HMAC key and small limits, so hostile sizes and zlib bombs are hit), and the
//! URI parser. None of them may panic, and the decoder's verdicts must be consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyro_wire::{Decoded, Header, Limits, MessageDecoder, Uri, HEADER_SIZE};

fuzz_target!(|data: &[u8]| {
    if let Some(head) = data
        .get(..HEADER_SIZE)
        .and_then(|h| <&[u8; HEADER_SIZE]>::try_from(h).ok())
    {
        if let Ok(header) = Header::parse(head) {
            // A header that parses encodes back to the same bytes, reserved field aside.
            let again = header.to_bytes();
            assert_eq!(again[..20], head[..20]);
            assert_eq!(again[22..], head[22..]);
        }
    }

    let limits = Limits {
        max_message_size: 64 * 1024,
        max_inflated_size: 256 * 1024,
    };
    for key in [Some(b"fuzz-key".to_vec()), None] {
        let decoder = MessageDecoder::new(limits, key.clone());
        match decoder.decode(data) {
            Ok(Decoded::Message(msg, used)) => {
                assert!(used <= data.len());
                assert!(
                    msg.data.len() as u64 <= limits.max_inflated_size.max(limits.max_message_size)
                );
                // What decoded re-encodes and decodes to the same message.
                if let Ok(wire) = msg.encode(false, key.as_deref(), 0) {
                    match decoder.decode(&wire) {
                        Ok(Decoded::Message(back, n)) => {
                            assert_eq!(n, wire.len());
                            assert_eq!(back, msg);
                        }
                        other => panic!("re-encoded message did not decode: {other:?}"),
                    }
                }
            }
            Ok(Decoded::Incomplete(n)) => assert!(n > 0),
            Err(_) => {}
        }
    }

    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(uri) = Uri::parse(text) {
            let _ = uri.to_string();
            let _ = uri.state();
            let _ = uri.meta_tags();
        }
    }
});
