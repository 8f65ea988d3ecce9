//! Property tests: encode/decode round trips and hostile input.

use proptest::prelude::*;
use pyro_wire::{
    Annotations, Decoded, Error, Header, Limits, Location, Message, MessageDecoder, MsgType, Uri,
    UriKind, ANNOTATION_HMAC, FLAGS_COMPRESSED, HEADER_SIZE,
};

fn msg_type() -> impl Strategy<Value = MsgType> {
    (1u16..=6).prop_map(|n| MsgType::from_u16(n).expect("1..=6 are types"))
}

fn annotations() -> impl Strategy<Value = Annotations> {
    let id = prop::array::uniform4(0x20u8..0x7f)
        .prop_filter("HMAC is the encoder's", |id| *id != ANNOTATION_HMAC);
    prop::collection::vec((id, prop::collection::vec(any::<u8>(), 0..64)), 0..6).prop_map(
        |chunks| {
            let mut a = Annotations::new();
            for (id, v) in chunks {
                a.insert(id, v);
            }
            a
        },
    )
}

/// Payloads that are sometimes compressible (repeated runs) and sometimes not.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        (prop::collection::vec(any::<u8>(), 1..8), 0usize..2000).prop_map(|(unit, n)| unit
            .iter()
            .cycle()
            .take(n)
            .copied()
            .collect()),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        msg_type(),
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        annotations(),
        payload(),
    )
        .prop_map(
            |(msg_type, flags, seq, serializer_id, annotations, data)| Message {
                msg_type,
                flags,
                seq,
                serializer_id,
                annotations,
                data,
            },
        )
}

fn hmac_key() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 1..40))
}

fn decode_all(decoder: &MessageDecoder, wire: &[u8]) -> Message {
    match decoder.decode(wire) {
        Ok(Decoded::Message(m, used)) => {
            assert_eq!(used, wire.len());
            m
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(msg in message(), key in hmac_key(), compress in any::<bool>()) {
        let wire = msg.encode(compress, key.as_deref(), 0).expect("encode");
        let header = Header::parse(wire[..HEADER_SIZE].try_into().expect("24")).expect("header");
        let did_compress = header.flags & FLAGS_COMPRESSED != 0;
        prop_assert!(!did_compress || (compress && msg.data.len() >= 200));
        prop_assert_eq!(header.annotations_size as usize, msg.annotations.wire_size() + if key.is_some() { 26 } else { 0 });
        let decoder = MessageDecoder::new(Limits::default(), key.clone());
        let back = decode_all(&decoder, &wire);
        let expected = Message { flags: msg.flags & !FLAGS_COMPRESSED, ..msg.clone() };
        prop_assert_eq!(back, expected);
        // The same bytes with the wrong key (or asymmetric config) are refused.
        let other = MessageDecoder::new(Limits::default(), Some(b"not the key".to_vec()));
        let err = other.decode(&wire).expect_err("wrong key");
        prop_assert!(matches!(err, Error::HmacMismatch | Error::HmacNotSymmetric));
    }

    #[test]
    fn every_truncation_is_incomplete(msg in message(), key in hmac_key(), compress in any::<bool>()) {
        let wire = msg.encode(compress, key.as_deref(), 0).expect("encode");
        let decoder = MessageDecoder::new(Limits::default(), key);
        for cut in 0..wire.len() {
            prop_assert_eq!(decoder.decode(&wire[..cut]), Ok(Decoded::Incomplete(if cut < HEADER_SIZE { HEADER_SIZE - cut } else { wire.len() - cut })));
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), key in hmac_key()) {
        let decoder = MessageDecoder::new(Limits { max_message_size: 1 << 16, max_inflated_size: 1 << 16 }, key);
        let _ = decoder.decode(&bytes);
        let mut with_magic = b"PYRO\x00\x30".to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = decoder.decode(&with_magic);
    }

    #[test]
    fn wrong_magic(msg in message(), magic in prop::array::uniform4(any::<u8>())) {
        prop_assume!(&magic != b"PYRO");
        let mut wire = msg.encode(false, None, 0).expect("encode");
        wire[..4].copy_from_slice(&magic);
        prop_assert_eq!(MessageDecoder::new(Limits::default(), None).decode(&wire), Err(Error::InvalidHeader));
    }

    #[test]
    fn bad_checksum(msg in message(), delta in 1u16..) {
        let mut wire = msg.encode(false, None, 0).expect("encode");
        let sum = u16::from_be_bytes([wire[22], wire[23]]).wrapping_add(delta);
        wire[22..24].copy_from_slice(&sum.to_be_bytes());
        prop_assert_eq!(MessageDecoder::new(Limits::default(), None).decode(&wire), Err(Error::ChecksumMismatch));
    }

    #[test]
    fn any_field_change_breaks_checksum(msg in message(), at in 4usize..22, bit in 0u8..8) {
        // Not summed: the reserved field (Pyro4 ignores it), and the high half of data_size,
        // which only moves the sum by multiples of 65536 (a weakness of Pyro4's 16-bit
        // checksum that the size limit has to cover).
        prop_assume!(!(20..22).contains(&at) && !(12..14).contains(&at));
        let mut wire = msg.encode(false, None, 0).expect("encode");
        wire[at] ^= 1 << bit;
        let head: &[u8; HEADER_SIZE] = wire[..HEADER_SIZE].try_into().expect("24");
        prop_assert!(Header::parse(head).is_err());
    }

    #[test]
    fn size_claims_over_the_limit(data_size in 0u32..=i32::MAX as u32, annotations_size in any::<u16>(), limit in 1u64..(1 << 20)) {
        let size = u64::from(data_size) + u64::from(annotations_size);
        prop_assume!(size > limit);
        let h = Header { msg_type: MsgType::Invoke, flags: 0, seq: 1, data_size, serializer_id: 1, annotations_size };
        let decoder = MessageDecoder::new(Limits { max_message_size: limit, ..Limits::default() }, None);
        // Only the header is present: the verdict comes before any body is awaited.
        prop_assert_eq!(decoder.decode(&h.to_bytes()), Err(Error::MessageTooLarge { size, limit }));
    }

    #[test]
    fn garbage_annotations(chunks in prop::collection::vec(any::<u8>(), 0..300), data in prop::collection::vec(any::<u8>(), 0..50), key in hmac_key()) {
        let h = Header { msg_type: MsgType::Result, flags: 0, seq: 0, data_size: data.len() as u32, serializer_id: 1, annotations_size: chunks.len() as u16 };
        let mut wire = h.to_bytes().to_vec();
        wire.extend_from_slice(&chunks);
        wire.extend_from_slice(&data);
        let parsed = Annotations::parse(&chunks);
        match MessageDecoder::new(Limits::default(), key).decode(&wire) {
            Ok(Decoded::Message(m, used)) => {
                prop_assert_eq!(used, wire.len());
                prop_assert!(parsed.is_ok());
                prop_assert_eq!(m.data, data);
                prop_assert!(m.annotations.get(&ANNOTATION_HMAC).is_none());
            }
            Ok(Decoded::Incomplete(_)) => prop_assert!(false, "all bytes were there"),
            Err(Error::InvalidAnnotations(_)) => prop_assert!(parsed.is_err()),
            Err(Error::HmacMismatch | Error::HmacNotSymmetric) => prop_assert!(parsed.is_ok()),
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    #[test]
    fn inflate_cap(unit in prop::collection::vec(any::<u8>(), 1..4), n in 200usize..20_000, slack in 0u64..3) {
        let data: Vec<u8> = unit.iter().cycle().take(n).copied().collect();
        let mut msg = Message::new(MsgType::Result, 1, 1, data);
        let wire = msg.encode(true, None, 0).expect("encode");
        prop_assert!(wire.len() < n);
        let len = n as u64;
        let tight = MessageDecoder::new(Limits { max_message_size: 0, max_inflated_size: len - 1 - slack.min(len - 1) }, None);
        prop_assert!(matches!(tight.decode(&wire), Err(Error::Decompression(_))));
        let fits = MessageDecoder::new(Limits { max_message_size: 0, max_inflated_size: len + slack }, None);
        msg.flags = 0;
        prop_assert_eq!(decode_all(&fits, &wire), msg);
    }

    #[test]
    fn uri_parse_never_panics(text in "\\PC{0,40}", tail in "[@:\\[\\]./u0-9 \n]{0,12}") {
        let _ = Uri::parse(&text);
        let _ = Uri::parse(&format!("PYRO:{text}{tail}"));
        let _ = Uri::parse(&format!("PYRONAME:o@{text}{tail}"));
    }

    #[test]
    fn uri_display_reparses(
        kind in 0u8..3,
        object in "[!-?A-~]{1,20}",
        host in "[a-z][a-z0-9.-]{0,15}|[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,5}",
        port in any::<u16>(),
        unix in prop::option::of("[a-zA-Z0-9/._-]{1,20}"),
    ) {
        let kind = [UriKind::Pyro, UriKind::PyroName, UriKind::PyroMeta][kind as usize].clone();
        let object = if kind == UriKind::PyroMeta { object.replace(',', "") } else { object };
        prop_assume!(!object.is_empty());
        let location = Some(match unix {
            Some(path) => Location::Unix(path),
            None => Location::Tcp { host, port },
        });
        let uri = Uri { kind, object, location };
        prop_assert_eq!(Uri::parse(&uri.to_string()), Ok(uri.clone()));
        prop_assert_eq!(uri.to_string().parse::<Uri>(), Ok(uri));
    }
}
