//! Hostile or broken clients cost their own connection only: garbage, truncated frames,
//! wrong protocol versions, oversized claims, clients that stop mid-message, bad HMAC
//! after the handshake. Handshake rejections are compared byte for byte (minus the
//! random CORR) with Python's echo server; afterwards a real Python Pyro4 client must
//! still be served.

mod common_daemon;

use common_daemon::{get, run_client, DaemonOptions, TestDaemon};
use pyro_codec::{DecodeLimits, SerializerKind, Value};
use pyro_runtime::Config;
use pyro_wire::{Header, Limits, Message, MessageDecoder, MsgType, HEADER_SIZE};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// What came back on a raw connection.
#[derive(Debug, PartialEq)]
enum Answer {
    /// A message: type, seq, serializer id, flags, decoded payload (or raw bytes).
    Reply {
        msg_type: MsgType,
        seq: u16,
        serializer: u16,
        flags: u16,
        payload: String,
    },
    /// The daemon closed the connection without a reply.
    Closed,
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// Read one reply (or end of stream); `key` verifies the reply's HMAC.
fn read_answer(s: &mut TcpStream, key: Option<&[u8]>) -> Answer {
    let mut head = [0u8; HEADER_SIZE];
    match s.read_exact(&mut head) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            return Answer::Closed
        }
        Err(e) => panic!("no answer and no close: {e}"),
    }
    let decoder = MessageDecoder::new(Limits::default(), key.map(<[u8]>::to_vec));
    let header: Header = decoder.decode_header(&head).expect("valid reply header");
    let mut body = vec![0u8; header.body_len() as usize];
    s.read_exact(&mut body).expect("reply body");
    let msg = decoder.decode_body(&header, &body).expect("valid reply");
    let payload = match SerializerKind::from_id(msg.serializer_id) {
        Some(k) if k.is_supported() => match k.decode(&msg.data, &DecodeLimits::default()) {
            Ok(Value::Str(s)) => s,
            Ok(v) => format!("{v:?}"),
            Err(_) => String::from_utf8_lossy(&msg.data).into_owned(),
        },
        _ => String::from_utf8_lossy(&msg.data).into_owned(),
    };
    Answer::Reply {
        msg_type: msg.msg_type,
        seq: msg.seq,
        serializer: msg.serializer_id,
        flags: msg.flags,
        payload,
    }
}

/// After an answer, the daemon must have closed the connection.
fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("connection still open: {other:?}"),
    }
}

fn send(s: &mut TcpStream, bytes: &[u8]) {
    // The peer may close early; a failed write shows up as Closed on read.
    let _ = s.write_all(bytes);
}

fn connect_msg(seq: u16, serializer: SerializerKind, object: &str) -> Message {
    let payload = serializer
        .encode(&Value::Dict(pyro_codec::Dict::from_unique_pairs(vec![
            (Value::str("handshake"), Value::str("hello")),
            (Value::str("object"), Value::str(object)),
        ])))
        .expect("encode handshake");
    let mut m = Message::new(MsgType::Connect, seq, serializer.id(), payload);
    m.flags = pyro_wire::FLAGS_META_ON_CONNECT;
    m
}

fn encode(m: &Message, key: Option<&[u8]>) -> Vec<u8> {
    m.encode(false, key, 0).expect("encode")
}

/// One exchange on a fresh connection: send `bytes`, read the answer, then check
/// whether the daemon closed.
fn exchange(addr: &str, bytes: &[u8]) -> (Answer, bool) {
    let mut s = connect(addr);
    send(&mut s, bytes);
    let answer = read_answer(&mut s, None);
    let closed = answer == Answer::Closed || {
        let mut buf = [0u8; 1];
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    };
    (answer, closed)
}

fn handshake_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut pyro5 = b"PYRO".to_vec();
    pyro5.extend_from_slice(&[0x01, 0xf6]);
    pyro5.extend_from_slice(&[0u8; 34]);
    let mut bad_checksum = encode(
        &connect_msg(3, SerializerKind::Serpent, "test.echoserver"),
        None,
    );
    bad_checksum[22] ^= 0xff;
    vec![
        (
            "garbage",
            b"this is not a pyro message at all, just noise".to_vec(),
        ),
        ("pyro5_header", pyro5),
        ("bad_checksum", bad_checksum),
        (
            "invoke_first",
            encode(&Message::new(MsgType::Invoke, 7, 1, b"x".to_vec()), None),
        ),
        (
            "ping_first",
            encode(&Message::new(MsgType::Ping, 2, 42, b"ping".to_vec()), None),
        ),
        ("pickle", {
            // A serializer the daemon does not accept (id 4); the payload is never read.
            let mut m = connect_msg(5, SerializerKind::Serpent, "test.echoserver");
            m.serializer_id = SerializerKind::Pickle.id();
            encode(&m, None)
        }),
        (
            "bad_payload",
            encode(
                &Message::new(MsgType::Connect, 4, 1, b"{'handshake':".to_vec()),
                None,
            ),
        ),
        ("no_handshake_key", {
            let payload = SerializerKind::Json
                .encode(&Value::Dict(pyro_codec::Dict::new()))
                .expect("json");
            encode(&Message::new(MsgType::Connect, 6, 2, payload), None)
        }),
        (
            "unknown_object",
            encode(&connect_msg(9, SerializerKind::Json, "nope"), None),
        ),
        (
            "good",
            encode(
                &connect_msg(1, SerializerKind::Marshal, "test.echoserver"),
                None,
            ),
        ),
    ]
}

#[test]
fn handshake_rejections_match_pyro4() {
    let rust = TestDaemon::start();
    let python = interop_tests::echo_server(None);
    let python_addr = format!("127.0.0.1:{}", python.port());
    for (name, bytes) in handshake_cases() {
        let (r, r_closed) = exchange(&rust.addr(), &bytes);
        let (p, p_closed) = exchange(&python_addr, &bytes);
        if name == "good" {
            // Metadata order differs (Python iterates a set); type and flags must match.
            match (&r, &p) {
                (
                    Answer::Reply {
                        msg_type: MsgType::ConnectOk,
                        seq: 1,
                        serializer: 3,
                        flags: 0x10,
                        ..
                    },
                    Answer::Reply {
                        msg_type: MsgType::ConnectOk,
                        seq: 1,
                        serializer: 3,
                        flags: 0x10,
                        ..
                    },
                ) => {}
                _ => panic!("good handshake: pyro-rs {r:?}, Pyro4 {p:?}"),
            }
            assert!(!r_closed && !p_closed);
            continue;
        }
        // Rust's error text for a bad payload differs from Python's SyntaxError text.
        if name == "bad_payload" {
            assert!(
                matches!(
                    r,
                    Answer::Reply {
                        msg_type: MsgType::ConnectFail,
                        seq: 4,
                        serializer: 1,
                        ..
                    }
                ),
                "{r:?}"
            );
            assert!(
                matches!(
                    p,
                    Answer::Reply {
                        msg_type: MsgType::ConnectFail,
                        seq: 4,
                        serializer: 1,
                        ..
                    }
                ),
                "{p:?}"
            );
        } else if name == "pyro5_header" {
            // We name the version we saw; the message type and serializer are the same.
            let Answer::Reply {
                msg_type,
                seq: 0,
                serializer: 3,
                ref payload,
                ..
            } = r
            else {
                panic!("{r:?}")
            };
            assert_eq!(msg_type, MsgType::ConnectFail);
            assert!(
                payload.starts_with("invalid data or unsupported protocol version"),
                "{payload}"
            );
            assert!(
                matches!(
                    p,
                    Answer::Reply {
                        msg_type: MsgType::ConnectFail,
                        seq: 0,
                        serializer: 3,
                        ..
                    }
                ),
                "{p:?}"
            );
        } else {
            assert_eq!(r, p, "{name}");
        }
        assert!(r_closed, "{name}: pyro-rs kept the connection open");
        assert_eq!(r_closed, p_closed, "{name}");
    }
    // Every bad connection cost only itself.
    let obs = run_client("hmac", &rust.uri, &["serpent", "-"]);
    assert_eq!(get(&obs, "hmac_echo"), "ok 'signed'");
}

#[test]
fn broken_clients_cost_their_connection_only() {
    let config = Config {
        max_message_size: 64 * 1024,
        ..Config::default()
    };
    let rust = TestDaemon::start_with(DaemonOptions {
        config: Some(config),
        ..Default::default()
    });
    let addr = rust.addr();

    // A client that stops in the middle of a message and keeps its socket open.
    let mut stalled = connect(&addr);
    let hs = encode(
        &connect_msg(0, SerializerKind::Serpent, "test.echoserver"),
        None,
    );
    send(&mut stalled, &hs[..hs.len() / 2]);

    // A truncated header, then gone.
    let mut t = connect(&addr);
    send(&mut t, b"PYRO\x00\x30\x00");
    drop(t);

    // An oversized claim (over MAX_MESSAGE_SIZE): closed without a reply.
    let mut big = Message::new(MsgType::Connect, 0, 1, Vec::new());
    big.flags = 0;
    let mut bytes = encode(&big, None);
    let mut header = Header::parse(bytes[..HEADER_SIZE].try_into().expect("24")).expect("header");
    header.data_size = 0x7fff_0000;
    bytes[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
    assert_eq!(exchange(&addr, &bytes), (Answer::Closed, true));

    // After a good handshake: garbage, a wrong message type, an oversized claim, and a
    // bad call payload each end that connection (the last with a SerializeError reply).
    let after_handshake: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "garbage",
            b"!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!".to_vec(),
            false,
        ),
        (
            "connect_again",
            encode(
                &connect_msg(1, SerializerKind::Serpent, "test.echoserver"),
                None,
            ),
            false,
        ),
        ("oversized", bytes.clone(), false),
        (
            "bad_call",
            encode(
                &Message::new(MsgType::Invoke, 1, 1, b"('test.echoserver',".to_vec()),
                None,
            ),
            true,
        ),
    ];
    for (name, payload, replies) in after_handshake {
        let mut s = connect(&addr);
        send(
            &mut s,
            &encode(
                &connect_msg(0, SerializerKind::Serpent, "test.echoserver"),
                None,
            ),
        );
        assert!(
            matches!(
                read_answer(&mut s, None),
                Answer::Reply {
                    msg_type: MsgType::ConnectOk,
                    ..
                }
            ),
            "{name}"
        );
        // A ping is answered with pong, seq and serializer id kept.
        send(
            &mut s,
            &encode(&Message::new(MsgType::Ping, 77, 42, b"ping".to_vec()), None),
        );
        match read_answer(&mut s, None) {
            Answer::Reply {
                msg_type: MsgType::Ping,
                seq: 77,
                serializer: 42,
                flags: 0,
                payload,
            } => {
                assert_eq!(payload, "pong")
            }
            other => panic!("{name}: ping got {other:?}"),
        }
        send(&mut s, &payload);
        match read_answer(&mut s, None) {
            Answer::Closed => assert!(!replies, "{name}: expected a reply"),
            Answer::Reply {
                msg_type: MsgType::Result,
                flags,
                payload,
                ..
            } if replies => {
                assert_eq!(
                    flags & pyro_wire::FLAGS_EXCEPTION,
                    pyro_wire::FLAGS_EXCEPTION
                );
                assert!(payload.contains("Pyro4.errors.SerializeError"), "{payload}");
                assert_closed(&mut s);
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
    }

    // Python clients are served while the stalled client still hangs.
    let obs = run_client("hmac", &rust.uri, &["json", "-"]);
    assert_eq!(get(&obs, "hmac_echo"), "ok 'signed'");
    assert_eq!(get(&obs, "hmac_again"), "ok 'again'");
    assert!(
        rust.handle.connection_count() >= 1,
        "the stalled connection is still served"
    );
    drop(stalled);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rust.handle.connection_count() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        rust.handle.connection_count(),
        0,
        "closed connections are released"
    );
}

#[test]
fn hmac_mismatch_after_handshake_closes_without_reply() {
    let key = b"secret".as_slice();
    let rust = TestDaemon::start_with(DaemonOptions {
        hmac_key: Some("secret".into()),
        ..Default::default()
    });
    let mut s = connect(&rust.addr());
    send(
        &mut s,
        &encode(
            &connect_msg(0, SerializerKind::Serpent, "test.echoserver"),
            Some(key),
        ),
    );
    assert!(matches!(
        read_answer(&mut s, Some(key)),
        Answer::Reply {
            msg_type: MsgType::ConnectOk,
            ..
        }
    ));
    let call = pyro_codec::envelope::encode_call(
        SerializerKind::Serpent,
        &pyro_codec::envelope::Call {
            object: "test.echoserver".into(),
            method: "echo".into(),
            args: vec![Value::str("signed")],
            kwargs: Some(pyro_codec::Dict::new()),
        },
    )
    .expect("call");
    // Correctly signed: answered.
    send(
        &mut s,
        &encode(
            &Message::new(MsgType::Invoke, 1, 1, call.clone()),
            Some(key),
        ),
    );
    match read_answer(&mut s, Some(key)) {
        Answer::Reply {
            msg_type: MsgType::Result,
            seq: 1,
            payload,
            ..
        } => assert_eq!(payload, "signed"),
        other => panic!("{other:?}"),
    }
    // Signed with another key: the daemon closes (Pyro4: SecurityError, no reply).
    send(
        &mut s,
        &encode(&Message::new(MsgType::Invoke, 2, 1, call), Some(b"other")),
    );
    assert_eq!(read_answer(&mut s, Some(key)), Answer::Closed);
}
