//! Incremental message decoder: header first, then annotations, then payload.
//!
//! The decoder never owns or grows a buffer: the caller reads bytes and asks again.
//! Sizes from the header are checked against [`Limits`] before the caller is told how
//! many bytes to wait for, so a hostile size claim never makes anyone allocate.

use flate2::{Decompress, FlushDecompress, Status};
use hmac::Mac;

use crate::message::hmac_state;
use crate::{
    Annotations, Error, Header, Message, Result, ANNOTATION_HMAC, FLAGS_COMPRESSED, HEADER_SIZE,
};

/// Limits applied before anything is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum of data_size + annotations_size; 0 = no limit besides the protocol's
    /// (2 GiB - 1 payload). Pyro4's MAX_MESSAGE_SIZE.
    pub max_message_size: u64,
    /// Maximum size a compressed payload may inflate to (guards against zlib bombs).
    pub max_inflated_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 0,
            max_inflated_size: 1 << 30,
        }
    }
}

/// Outcome of feeding bytes to the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A complete message, and how many bytes of the input it took.
    Message(Message, usize),
    /// Not enough bytes yet; at least this many more are needed.
    Incomplete(usize),
}

/// Outcome of [`MessageDecoder::decode_in_place`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedInPlace {
    /// A complete message that took `used` bytes of the input. A plain payload stays in
    /// the input at `payload` (an absolute range; the message's `data` is empty); a
    /// compressed one is inflated into `data` (`payload` None).
    Message {
        /// The message.
        msg: Message,
        /// Where its plain payload is in the input.
        payload: Option<std::ops::Range<usize>>,
        /// Bytes of the input the message took.
        used: usize,
    },
    /// Not enough bytes yet; at least this many more are needed.
    Incomplete(usize),
}

/// Decodes messages from a byte buffer the caller owns and fills.
#[derive(Debug, Clone)]
pub struct MessageDecoder {
    limits: Limits,
    hmac_key: Option<Vec<u8>>,
}

impl MessageDecoder {
    /// A decoder with these limits; `hmac_key` None or empty means no HMAC expected.
    pub fn new(limits: Limits, hmac_key: Option<Vec<u8>>) -> Self {
        // Pyro4 tests `bool(hmac_key)`: an empty key is the same as none.
        let hmac_key = hmac_key.filter(|k| !k.is_empty());
        MessageDecoder { limits, hmac_key }
    }

    /// The limits this decoder applies.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Try to decode one message from the start of `buf`. Errors are final for the
    /// connection (Pyro4 closes it). HMAC is verified (constant time) and the HMAC
    /// annotation removed; compressed payloads are inflated.
    pub fn decode(&self, buf: &[u8]) -> Result<Decoded> {
        Ok(match self.decode_in_place(buf)? {
            DecodedInPlace::Message {
                mut msg,
                payload,
                used,
            } => {
                if let Some(range) = payload {
                    msg.data = buf[range].to_vec();
                }
                Decoded::Message(msg, used)
            }
            DecodedInPlace::Incomplete(more) => Decoded::Incomplete(more),
        })
    }

    /// [`MessageDecoder::decode`] without copying a plain payload out of `buf`: for a
    /// reader that can use it where it lies (or hand out a view of its buffer).
    pub fn decode_in_place(&self, buf: &[u8]) -> Result<DecodedInPlace> {
        let Some(head) = buf.get(..HEADER_SIZE) else {
            return Ok(DecodedInPlace::Incomplete(HEADER_SIZE - buf.len()));
        };
        let head: &[u8; HEADER_SIZE] = head.try_into().map_err(|_| Error::InvalidHeader)?;
        let header = self.decode_header(head)?;
        // body_len <= 65535 + i32::MAX, so this fits usize on every supported target.
        let total = HEADER_SIZE as u64 + header.body_len();
        let have = buf.len() as u64;
        if have < total {
            return Ok(DecodedInPlace::Incomplete((total - have) as usize));
        }
        let total = total as usize;
        let (msg, payload) = self.decode_body_in_place(&header, &buf[HEADER_SIZE..total])?;
        Ok(DecodedInPlace::Message {
            msg,
            payload: payload.map(|r| HEADER_SIZE + r.start..HEADER_SIZE + r.end),
            used: total,
        })
    }

    /// First step for a reader that reads the 24-byte header, then the rest: validate the
    /// header and apply `max_message_size` (Pyro4 checks the size right after the header
    /// and closes the connection, since it cannot reply with the right sequence number).
    /// On success, read exactly [`Header::body_len`] more bytes and call
    /// [`MessageDecoder::decode_body`].
    pub fn decode_header(&self, head: &[u8; HEADER_SIZE]) -> Result<Header> {
        let header = Header::parse(head)?;
        let size = header.body_len();
        let limit = self.limits.max_message_size;
        if limit > 0 && size > limit {
            return Err(Error::MessageTooLarge { size, limit });
        }
        Ok(header)
    }

    /// Second step: `body` is exactly the annotations followed by the payload of a
    /// message whose header came from [`MessageDecoder::decode_header`].
    pub fn decode_body(&self, header: &Header, body: &[u8]) -> Result<Message> {
        let (mut msg, payload) = self.decode_body_in_place(header, body)?;
        if let Some(range) = payload {
            msg.data = body[range].to_vec();
        }
        Ok(msg)
    }

    /// [`MessageDecoder::decode_body`] without copying the payload: a plain payload stays
    /// in `body`, at the returned range, and the message's `data` is left empty; a
    /// compressed one is inflated into `data` (range None). For a reader that can keep
    /// its buffer untouched while it uses the payload.
    pub fn decode_body_in_place(
        &self,
        header: &Header,
        body: &[u8],
    ) -> Result<(Message, Option<std::ops::Range<usize>>)> {
        if body.len() as u64 != header.body_len() {
            return Err(Error::InvalidAnnotations(format!(
                "body is {} bytes, header says {}",
                body.len(),
                header.body_len()
            )));
        }
        let ann_len = usize::from(header.annotations_size);
        let (ann_bytes, payload) = body.split_at(ann_len);
        let mut annotations = Annotations::parse(ann_bytes)?;
        self.check_hmac(payload, &annotations)?;
        annotations.remove(&ANNOTATION_HMAC);
        let (flags, data, range) = if header.flags & FLAGS_COMPRESSED != 0 {
            // Pyro4's decompress_if_needed: inflate and drop the flag.
            (
                header.flags & !FLAGS_COMPRESSED,
                inflate(payload, self.limits.max_inflated_size)?,
                None,
            )
        } else {
            (header.flags, Vec::new(), Some(ann_len..body.len()))
        };
        let msg = Message {
            msg_type: header.msg_type,
            flags,
            seq: header.seq,
            serializer_id: header.serializer_id,
            annotations,
            data,
        };
        Ok((msg, range))
    }

    /// Pyro4's `Message.recv` rules: with a key, a present HMAC must match (compared in
    /// constant time); HMAC present without a key, or a key and no HMAC, is asymmetric.
    fn check_hmac(&self, wire_payload: &[u8], annotations: &Annotations) -> Result<()> {
        match (&self.hmac_key, annotations.get(&ANNOTATION_HMAC)) {
            (Some(key), Some(tag)) => hmac_state(key, wire_payload, annotations)
                .verify_slice(tag)
                .map_err(|_| Error::HmacMismatch),
            (None, None) => Ok(()),
            _ => Err(Error::HmacNotSymmetric),
        }
    }
}

/// Inflate a zlib stream (RFC 1950) into at most `cap` bytes.
///
/// The output grows with what the stream actually produces, never from a size claim.
/// Like Python's `zlib.decompress`, bytes after the end of the stream are ignored and a
/// stream that stops early is an error.
pub fn inflate(input: &[u8], cap: u64) -> Result<Vec<u8>> {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let mut z = Decompress::new(true);
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 32 * 1024];
    loop {
        let in_before = z.total_in();
        let out_before = z.total_out();
        let rest = input.get(in_before as usize..).unwrap_or_default();
        let status = z
            .decompress(rest, &mut chunk, FlushDecompress::None)
            .map_err(|e| Error::Decompression(e.to_string()))?;
        let produced = ((z.total_out() - out_before) as usize).min(chunk.len());
        if produced > cap - out.len() {
            return Err(Error::Decompression(format!(
                "inflated size exceeds limit of {cap} bytes"
            )));
        }
        if out.capacity() - out.len() < produced {
            // Grow geometrically but never past the cap, so a 1 GiB cap never means 2 GiB.
            let want = out.len().max(produced).min(cap - out.len());
            out.reserve_exact(want);
        }
        out.extend_from_slice(&chunk[..produced]);
        if status == Status::StreamEnd {
            return Ok(out);
        }
        if produced == 0 && z.total_in() == in_before {
            // No progress with room to write: the input ran out mid-stream
            // (zlib.decompress: "incomplete or truncated stream").
            return Err(Error::Decompression(
                "incomplete or truncated stream".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MsgType, ANNOTATION_CORR, FLAGS_EXCEPTION};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn plain() -> MessageDecoder {
        MessageDecoder::new(Limits::default(), None)
    }

    fn decoded(r: Result<Decoded>) -> (Message, usize) {
        match r {
            Ok(Decoded::Message(m, n)) => (m, n),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn appendix_a1_reply() {
        let mut wire = hex("5059524f 0030 0005 0000 0001 00000021 0001 0016 0000 3557 434f5252 0010 32ed484d7c704acf8f83ed63ca571c30");
        wire.extend_from_slice(b"# serpent utf-8 python3.2\n'hello'");
        wire.extend_from_slice(b"next message");
        let (msg, used) = decoded(plain().decode(&wire));
        assert_eq!(used, 79);
        assert_eq!(msg.msg_type, MsgType::Result);
        assert_eq!((msg.flags, msg.seq, msg.serializer_id), (0, 1, 1));
        assert_eq!(
            msg.annotations.get(&ANNOTATION_CORR),
            Some(&hex("32ed484d7c704acf8f83ed63ca571c30")[..])
        );
        assert_eq!(msg.data, b"# serpent utf-8 python3.2\n'hello'");
    }

    #[test]
    fn appendix_a2_hmac() {
        let mut wire = hex("5059524f 0030 0004 0000 0001 00000042 0001 001a 0000 357b 484d4143 0014 fef5650a30174ebbced0b7f5b9dd348098d43389");
        wire.extend_from_slice(
            b"# serpent utf-8 python3.2\n('test.echoserver','echo',('hello',),{})",
        );
        let keyed = MessageDecoder::new(Limits::default(), Some(b"secret".to_vec()));
        let (msg, used) = decoded(keyed.decode(&wire));
        assert_eq!(used, 116);
        assert!(msg.annotations.is_empty(), "HMAC chunk is stripped");
        assert_eq!(
            MessageDecoder::new(Limits::default(), Some(b"other".to_vec())).decode(&wire),
            Err(Error::HmacMismatch)
        );
        assert_eq!(plain().decode(&wire), Err(Error::HmacNotSymmetric));
        assert_eq!(
            MessageDecoder::new(Limits::default(), Some(Vec::new())).decode(&wire),
            Err(Error::HmacNotSymmetric)
        );
        let unsigned = Message::new(MsgType::Invoke, 1, 1, b"x".to_vec())
            .encode(false, None, 0)
            .expect("encode");
        assert_eq!(keyed.decode(&unsigned), Err(Error::HmacNotSymmetric));
        // Tampered payload.
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert_eq!(keyed.decode(&wire), Err(Error::HmacMismatch));
    }

    #[test]
    fn incomplete_counts() {
        let wire = Message::new(MsgType::Ping, 0, 42, b"ping".to_vec())
            .encode(false, None, 0)
            .expect("encode");
        assert_eq!(plain().decode(&[]), Ok(Decoded::Incomplete(24)));
        assert_eq!(plain().decode(&wire[..10]), Ok(Decoded::Incomplete(14)));
        assert_eq!(plain().decode(&wire[..24]), Ok(Decoded::Incomplete(4)));
        assert_eq!(plain().decode(&wire[..27]), Ok(Decoded::Incomplete(1)));
        assert_eq!(decoded(plain().decode(&wire)).1, 28);
    }

    #[test]
    fn size_limit_before_body() {
        let h = Header {
            msg_type: MsgType::Invoke,
            flags: 0,
            seq: 0,
            data_size: 0x7FFF_FFFF,
            serializer_id: 1,
            annotations_size: 10,
        };
        let d = MessageDecoder::new(
            Limits {
                max_message_size: 1 << 20,
                ..Limits::default()
            },
            None,
        );
        assert_eq!(
            d.decode(&h.to_bytes()),
            Err(Error::MessageTooLarge {
                size: 0x7FFF_FFFF + 10,
                limit: 1 << 20
            })
        );
        // Without a limit the decoder just asks for the bytes (the caller owns the buffer).
        assert_eq!(
            plain().decode(&h.to_bytes()),
            Ok(Decoded::Incomplete(0x7FFF_FFFF + 10))
        );
    }

    #[test]
    fn compressed_round_trip_and_flag_cleared() {
        let data: Vec<u8> = b"spam and eggs "
            .iter()
            .cycle()
            .take(5000)
            .copied()
            .collect();
        let mut msg = Message::new(MsgType::Result, 9, 1, data.clone());
        msg.flags = FLAGS_EXCEPTION;
        let wire = msg.encode(true, Some(b"key"), 0).expect("encode");
        assert!(wire.len() < 1000);
        let keyed = MessageDecoder::new(Limits::default(), Some(b"key".to_vec()));
        let (back, _) = decoded(keyed.decode(&wire));
        assert_eq!(back, msg);
        // Inflation cap.
        let small = MessageDecoder::new(
            Limits {
                max_inflated_size: 4999,
                ..Limits::default()
            },
            Some(b"key".to_vec()),
        );
        assert!(matches!(small.decode(&wire), Err(Error::Decompression(_))));
        let exact = MessageDecoder::new(
            Limits {
                max_inflated_size: 5000,
                ..Limits::default()
            },
            Some(b"key".to_vec()),
        );
        assert_eq!(decoded(exact.decode(&wire)).0, msg);
    }

    #[test]
    fn inflate_edge_cases() {
        let packed = crate::message::compress_payload(&[7u8; 1000]).expect("compressible");
        assert_eq!(inflate(&packed, 1000), Ok(vec![7u8; 1000]));
        assert!(inflate(&packed, 999).is_err());
        assert!(inflate(&packed, 0).is_err());
        // Trailing bytes after the stream are ignored, like zlib.decompress.
        let mut trailing = packed.clone();
        trailing.extend_from_slice(b"junk");
        assert_eq!(inflate(&trailing, 1 << 20), Ok(vec![7u8; 1000]));
        for cut in 0..packed.len() {
            assert!(inflate(&packed[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
        assert!(inflate(b"not zlib at all", 1 << 20).is_err());
        // An empty stream inflates to nothing even with a zero cap.
        let empty = hex("789c030000000001");
        assert_eq!(inflate(&empty, 0), Ok(vec![]));
    }

    #[test]
    fn zlib_bomb_is_capped() {
        // 16 MiB of zeros compresses to ~16 KiB; a 1 MiB cap must stop it early.
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..16 {
            std::io::Write::write_all(&mut enc, &zeros).expect("write");
        }
        let bomb = enc.finish().expect("finish");
        assert!(bomb.len() < 200_000);
        let mut msg = Message::new(MsgType::Result, 1, 1, Vec::new());
        msg.flags = FLAGS_COMPRESSED;
        let wire = msg.encode_prepared(&bomb, true, None, 0).expect("encode");
        let d = MessageDecoder::new(
            Limits {
                max_message_size: 1 << 20,
                max_inflated_size: 1 << 20,
            },
            None,
        );
        assert!(matches!(d.decode(&wire), Err(Error::Decompression(m)) if m.contains("limit")));
    }

    #[test]
    fn split_header_and_body() {
        let mut msg = Message::new(MsgType::Invoke, 5, 2, b"{}".to_vec());
        msg.annotations.insert(*b"USER", b"v".to_vec());
        let wire = msg.encode(false, None, 0).expect("encode");
        let d = plain();
        let head: &[u8; 24] = wire[..24].try_into().expect("24");
        let h = d.decode_header(head).expect("header");
        assert_eq!(h.body_len() as usize, wire.len() - 24);
        assert_eq!(d.decode_body(&h, &wire[24..]), Ok(msg));
        assert!(d.decode_body(&h, &wire[24..wire.len() - 1]).is_err());
    }

    #[test]
    fn in_place_body_and_split_encoding_match_the_whole_message() {
        let payload: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        for key in [None, Some(b"k".as_slice())] {
            let mut msg = Message::new(MsgType::Result, 9, 1, payload.clone());
            msg.annotations.insert(ANNOTATION_CORR, vec![7; 16]);
            let whole = msg.encode(false, key, 0).expect("encode");
            // Header and annotations written apart from the payload: the same bytes.
            let mut split = msg.encode_head(&payload, false, key, 0).expect("head");
            split.extend_from_slice(&payload);
            assert_eq!(split, whole);
            let (mut parts, left_out) = msg.encode_split(false, key, 0, 16 * 1024).expect("split");
            assert!(left_out);
            parts.extend_from_slice(&payload);
            assert_eq!(parts, whole);
            assert_eq!(
                msg.encode_split(false, key, 0, usize::MAX).expect("whole"),
                (whole.clone(), false)
            );

            let decoder = MessageDecoder::new(Limits::default(), key.map(<[u8]>::to_vec));
            let head: &[u8; HEADER_SIZE] = whole[..HEADER_SIZE].try_into().expect("head");
            let header = decoder.decode_header(head).expect("header");
            let body = &whole[HEADER_SIZE..];
            let (shell, range) = decoder.decode_body_in_place(&header, body).expect("body");
            let range = range.expect("a plain payload stays in the body");
            assert_eq!(&body[range], payload.as_slice());
            assert!(shell.data.is_empty());
            let copied = decoder.decode_body(&header, body).expect("body");
            assert_eq!(copied.data, payload);
            assert_eq!(copied.annotations, shell.annotations);
            assert_eq!(
                copied.annotations.get(&ANNOTATION_CORR),
                Some([7u8; 16].as_slice())
            );
        }
        // A compressed payload is inflated into the message instead.
        let msg = Message::new(MsgType::Result, 9, 1, vec![b'a'; 5000]);
        let wire = msg.encode(true, None, 0).expect("encode");
        let decoder = MessageDecoder::new(Limits::default(), None);
        let head: &[u8; HEADER_SIZE] = wire[..HEADER_SIZE].try_into().expect("head");
        let header = decoder.decode_header(head).expect("header");
        let (inflated, range) = decoder
            .decode_body_in_place(&header, &wire[HEADER_SIZE..])
            .expect("body");
        assert!(range.is_none());
        assert_eq!(inflated.data, vec![b'a'; 5000]);
        assert_eq!(inflated.flags & FLAGS_COMPRESSED, 0);
    }
}
