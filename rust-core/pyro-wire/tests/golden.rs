//! Golden vectors produced by the real Pyro4 4.82 (`scripts/golden/gen_wire.py`):
//! every message decodes to the recorded fields and re-encodes byte for byte; every
//! hostile input fails the way Pyro4's `Message.recv` does; every URI parses (or fails)
//! like `Pyro4.core.URI`.

use pyro_wire::{
    Annotations, Decoded, Error, Limits, Location, Message, MessageDecoder, MsgType, Uri, UriKind,
    HEADER_SIZE,
};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn unhex(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn num(v: &Value) -> u16 {
    u16::try_from(v.as_u64().expect("number")).expect("u16")
}

fn key(v: &Value) -> Option<Vec<u8>> {
    (!v.is_null()).then(|| unhex(v))
}

#[test]
fn pyro4_messages_decode_and_reencode_byte_for_byte() {
    let doc = load("wire_messages.json");
    let cases = doc["messages"].as_array().expect("messages");
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let wire = unhex(&case["wire"]);
        let hmac_key = key(&case["hmac_key"]);
        let mut annotations = Annotations::new();
        for pair in case["annotations"].as_array().expect("annotations") {
            let id: [u8; 4] = pair[0]
                .as_str()
                .expect("id")
                .as_bytes()
                .try_into()
                .expect("4-byte id");
            annotations.insert(id, unhex(&pair[1]));
        }
        let expected = Message {
            msg_type: MsgType::from_u16(num(&case["msg_type"])).expect("type"),
            flags: num(&case["flags"]),
            seq: num(&case["seq"]),
            serializer_id: num(&case["serializer_id"]),
            annotations,
            data: unhex(&case["data"]),
        };

        // Decode: fields, annotations in wire order (HMAC stripped), inflated payload.
        let decoder = MessageDecoder::new(Limits::default(), hmac_key.clone());
        let mut stream = wire.clone();
        stream.extend_from_slice(b"PYRO"); // the start of a next message is left alone
        match decoder.decode(&stream) {
            Ok(Decoded::Message(msg, used)) => {
                assert_eq!(used, wire.len(), "{name}");
                assert_eq!(msg, expected, "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }

        // Re-encode. Uncompressed: byte for byte through the normal path. Compressed: zlib
        // implementations may pick different deflate blocks, so the wire payload Pyro4
        // produced is passed through (which still checks header, chunks and the HMAC
        // over compressed bytes), and our own compression must round-trip.
        let compressed = case["compressed"].as_bool().expect("compressed");
        assert_eq!(
            num(&case["wire_flags"]) & pyro_wire::FLAGS_COMPRESSED != 0,
            compressed,
            "{name}"
        );
        if compressed {
            let ann_size = usize::from(u16::from_be_bytes([wire[18], wire[19]]));
            let wire_payload = &wire[HEADER_SIZE + ann_size..];
            let again = expected
                .encode_prepared(wire_payload, true, hmac_key.as_deref(), 0)
                .expect("encode");
            assert_eq!(again, wire, "{name}");
            let ours = expected
                .encode(true, hmac_key.as_deref(), 0)
                .expect("encode");
            assert!(
                ours.len() < HEADER_SIZE + ann_size + expected.data.len(),
                "{name}: compressed"
            );
            assert_eq!(ours[8..10], wire[8..10], "{name}: flags");
            match decoder.decode(&ours) {
                Ok(Decoded::Message(msg, _)) => assert_eq!(msg, expected, "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        } else {
            // compress=true must also leave these alone (under 200 bytes, or not smaller).
            for compress in [false, true] {
                let again = expected
                    .encode(compress, hmac_key.as_deref(), 0)
                    .expect("encode");
                assert_eq!(again, wire, "{name} compress={compress}");
            }
        }
    }
}

#[test]
fn pyro4_hostile_inputs_fail_like_pyro4() {
    let doc = load("wire_messages.json");
    for case in doc["hostile"].as_array().expect("hostile") {
        let name = case["name"].as_str().expect("name");
        let wire = unhex(&case["wire"]);
        let limits = Limits {
            max_message_size: case["max_message_size"].as_u64().expect("max"),
            ..Limits::default()
        };
        let decoder = MessageDecoder::new(limits, key(&case["hmac_key"]));
        let err = match decoder.decode(&wire) {
            Err(e) => e,
            Ok(other) => panic!("{name}: accepted as {other:?}"),
        };
        // Same text as Pyro4 (ours may add a detail after it, e.g. the version number).
        let pyro_text = case["error"].as_str().expect("error");
        assert!(
            err.to_string().starts_with(pyro_text),
            "{name}: {err} vs {pyro_text}"
        );
        let class = match err {
            Error::InvalidHeader | Error::UnsupportedVersion(_) | Error::ChecksumMismatch => {
                "ProtocolError"
            }
            Error::HmacMismatch | Error::HmacNotSymmetric => "SecurityError",
            Error::MessageTooLarge { .. } => "MessageTooLargeError",
            other => panic!("{name}: unexpected {other:?}"),
        };
        assert_eq!(
            class,
            case["error_class"].as_str().expect("class"),
            "{name}"
        );
    }
}

fn check_uri_ok(case: &Value, uri: &Uri) {
    let input = case["input"].as_str().expect("input");
    assert_eq!(
        uri.protocol_str(),
        case["protocol"].as_str().expect("protocol"),
        "{input:?}"
    );
    let state = uri.state();
    assert_eq!(state.sockname, case["sockname"].as_str(), "{input:?}");
    assert_eq!(state.host, case["host"].as_str(), "{input:?}");
    assert_eq!(
        state.port.map(u64::from),
        case["port"].as_u64(),
        "{input:?}"
    );
    assert_eq!(
        uri.location_str().as_deref(),
        case["location"].as_str(),
        "{input:?}"
    );
    match &uri.location {
        Some(Location::Unix(path)) => assert_eq!(Some(path.as_str()), case["sockname"].as_str()),
        Some(Location::Tcp { host, .. }) => assert_eq!(Some(host.as_str()), case["host"].as_str()),
        None => assert!(
            case["host"].is_null() && case["sockname"].is_null(),
            "{input:?}"
        ),
    }
    if uri.kind == UriKind::PyroMeta {
        // Pyro4 keeps a set; compare members, and check str() through a re-parse.
        let mut tags = uri.meta_tags();
        tags.sort();
        let want: Vec<&str> = case["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|t| t.as_str().expect("tag"))
            .collect();
        assert_eq!(tags, want, "{input:?}");
        // str(): "PYROMETA:" + ",".join(tags) + "@" + location, tags in any order.
        let text = uri.to_string();
        let body = text.strip_prefix("PYROMETA:").expect("prefix");
        let body = match case["location"].as_str() {
            Some(loc) => body
                .strip_suffix(&format!("@{loc}"))
                .expect("location suffix"),
            None => body,
        };
        let mut shown: Vec<&str> = body.split(',').collect();
        shown.sort_unstable();
        assert_eq!(shown, want, "{input:?}");
    } else {
        assert_eq!(
            uri.object,
            case["object"].as_str().expect("object"),
            "{input:?}"
        );
        let text = case["str"].as_str().expect("str");
        assert_eq!(uri.to_string(), text, "{input:?}");
    }
}

#[test]
fn pyro4_uris() {
    let doc = load("uris.json");
    assert_eq!(doc["ns_port"].as_u64(), Some(9090));
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() > 50);
    for case in cases {
        let input = case["input"].as_str().expect("input");
        match (Uri::parse(input), case["error"].as_str()) {
            (Ok(uri), None) => check_uri_ok(case, &uri),
            (Err(Error::InvalidUri(text)), Some(want)) => assert_eq!(text, want, "{input:?}"),
            (got, want) => panic!("{input:?}: got {got:?}, Pyro4 says {want:?}"),
        }
    }
}

#[test]
fn documented_uri_deviations() {
    // Ports Pyro4 takes but a u16 cannot hold (or written in non-ASCII digits).
    let doc = load("uris.json");
    for case in doc["deviations"].as_array().expect("deviations") {
        let input = case["input"].as_str().expect("input");
        assert!(case["error"].is_null(), "Pyro4 accepts {input:?}");
        match Uri::parse(input) {
            Err(Error::InvalidUri(text)) => assert!(
                text.starts_with("invalid port in uri, port="),
                "{input:?}: {text}"
            ),
            other => panic!("{input:?}: {other:?}"),
        }
    }
}
