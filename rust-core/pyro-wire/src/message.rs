//! A whole Pyro4 message: header fields, annotation chunks and payload.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::Compression;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::{Error, Header, MsgType, Result, ANNOTATION_HMAC, FLAGS_COMPRESSED, HEADER_SIZE};

/// Pyro4 only compresses payloads of at least this many bytes (`util.__compressdata`).
pub const COMPRESSION_THRESHOLD: usize = 200;
/// Largest payload the signed 32-bit data_size field can describe.
pub const MAX_DATA_SIZE: u64 = i32::MAX as u64;
/// Largest total of annotation chunks the u16 annotations_size field can describe.
pub const MAX_ANNOTATIONS_SIZE: usize = u16::MAX as usize;

/// Annotation chunks in wire order. Ids are 4 bytes; a later duplicate id replaces the
/// earlier value (Pyro4 stores them in a dict).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    entries: Vec<([u8; 4], Vec<u8>)>,
}

impl Annotations {
    /// No annotations.
    pub fn new() -> Self {
        Self::default()
    }
    /// Value of an annotation id.
    pub fn get(&self, id: &[u8; 4]) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, v)| v.as_slice())
    }
    /// Set (or replace) an annotation. Like assignment into a Python dict, replacing keeps
    /// the original position.
    pub fn insert(&mut self, id: [u8; 4], value: Vec<u8>) {
        match self.entries.iter_mut().find(|(k, _)| *k == id) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((id, value)),
        }
    }
    /// Remove an annotation, returning its value.
    pub fn remove(&mut self, id: &[u8; 4]) -> Option<Vec<u8>> {
        let pos = self.entries.iter().position(|(k, _)| k == id)?;
        Some(self.entries.remove(pos).1)
    }
    /// True when an annotation with this id is present.
    pub fn contains(&self, id: &[u8; 4]) -> bool {
        self.entries.iter().any(|(k, _)| k == id)
    }
    /// Iterate in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8; 4], &[u8])> {
        self.entries.iter().map(|(k, v)| (k, v.as_slice()))
    }
    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// True when there are no chunks.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Bytes these chunks take on the wire (6 + value length each).
    pub fn wire_size(&self) -> usize {
        self.entries.iter().map(|(_, v)| 6 + v.len()).sum()
    }

    /// Append the wire form of every chunk (4-byte id, u16 length, value) to `out`.
    /// Callers check [`Annotations::wire_size`] first so every length fits a u16.
    fn write_to(&self, out: &mut Vec<u8>) {
        for (id, value) in &self.entries {
            out.extend_from_slice(id);
            out.extend_from_slice(&(value.len() as u16).to_be_bytes());
            out.extend_from_slice(value);
        }
    }

    /// Parse exactly `bytes` as annotation chunks. Stricter than Pyro4 (which slices
    /// silently past the end): every chunk must be complete and the chunks must consume
    /// the whole region. Ids must be ASCII, as Pyro4's `decode("ASCII")` requires.
    /// A duplicate id keeps the last value, as Pyro4's dict does.
    pub fn parse(bytes: &[u8]) -> Result<Annotations> {
        let mut anns = Annotations::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            if rest.len() < 6 {
                return Err(Error::InvalidAnnotations(format!(
                    "truncated chunk header ({} bytes left)",
                    rest.len()
                )));
            }
            let id: [u8; 4] = [rest[0], rest[1], rest[2], rest[3]];
            if !id.is_ascii() {
                return Err(Error::InvalidAnnotations(format!(
                    "chunk id is not ASCII: {id:02x?}"
                )));
            }
            let len = usize::from(u16::from_be_bytes([rest[4], rest[5]]));
            let value = rest.get(6..6 + len).ok_or_else(|| {
                Error::InvalidAnnotations(format!(
                    "chunk {} claims {len} bytes, {} left",
                    String::from_utf8_lossy(&id),
                    rest.len() - 6
                ))
            })?;
            anns.insert(id, value.to_vec());
            rest = &rest[6 + len..];
        }
        Ok(anns)
    }
}

/// A Pyro4 message. `data` is the payload as the application sees it: the encoder
/// compresses it when asked, the decoder inflates it when FLAGS_COMPRESSED is set (and
/// clears that flag in the decoded message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Message type.
    pub msg_type: MsgType,
    /// FLAGS_* bits.
    pub flags: u16,
    /// Sequence number.
    pub seq: u16,
    /// Serializer id.
    pub serializer_id: u16,
    /// Annotation chunks (without HMAC: that one is added by [`Message::encode`] and
    /// checked and removed by the decoder).
    pub annotations: Annotations,
    /// Payload bytes (uncompressed).
    pub data: Vec<u8>,
}

impl Message {
    /// A message with no flags and no annotations.
    pub fn new(msg_type: MsgType, seq: u16, serializer_id: u16, data: Vec<u8>) -> Self {
        Message {
            msg_type,
            flags: 0,
            seq,
            serializer_id,
            annotations: Annotations::new(),
            data,
        }
    }

    /// Encode to wire bytes. `compress`: zlib the payload if it is at least 200 bytes and
    /// compression makes it smaller (Pyro4's COMPRESSION rule), setting FLAGS_COMPRESSED.
    /// `hmac_key`: when Some and non-empty, add the HMAC annotation computed as Pyro4 does.
    /// `max_message_size`: 0 = unlimited, else annotations + payload must fit.
    ///
    /// FLAGS_COMPRESSED in `self.flags` is ignored: `data` is always the plain payload and
    /// the flag is set only when this call compresses it.
    pub fn encode(
        &self,
        compress: bool,
        hmac_key: Option<&[u8]>,
        max_message_size: u64,
    ) -> Result<Vec<u8>> {
        self.encode_split(compress, hmac_key, max_message_size, usize::MAX)
            .map(|(bytes, _)| bytes)
    }

    /// [`Message::encode`], except that a plain payload longer than `split_above` is
    /// left out: with `true` the bytes are only the header and annotations, and `data`
    /// must follow them on the wire (the caller frames it where it likes: a buffer it
    /// keeps, rather than a fresh one per message).
    pub fn encode_split(
        &self,
        compress: bool,
        hmac_key: Option<&[u8]>,
        max_message_size: u64,
        split_above: usize,
    ) -> Result<(Vec<u8>, bool)> {
        match compress.then(|| compress_payload(&self.data)).flatten() {
            Some(packed) => self
                .encode_prepared(&packed, true, hmac_key, max_message_size)
                .map(|b| (b, false)),
            None if self.data.len() > split_above => self
                .encode_head(&self.data, false, hmac_key, max_message_size)
                .map(|b| (b, true)),
            None => self
                .encode_prepared(&self.data, false, hmac_key, max_message_size)
                .map(|b| (b, false)),
        }
    }

    /// Encode with `wire_payload` sent as the payload instead of `self.data` (which is
    /// ignored). `compressed` says whether `wire_payload` is zlib data, and sets or clears
    /// FLAGS_COMPRESSED accordingly. For forwarding a payload already in wire form, and
    /// for reproducing another implementation's compressed bytes exactly.
    pub fn encode_prepared(
        &self,
        wire_payload: &[u8],
        compressed: bool,
        hmac_key: Option<&[u8]>,
        max_message_size: u64,
    ) -> Result<Vec<u8>> {
        // One buffer, one write: Pyro4 sends the whole message at once to dodge Nagle.
        let mut out = self.encode_head_with(
            wire_payload,
            compressed,
            hmac_key,
            max_message_size,
            wire_payload.len(),
        )?;
        out.extend_from_slice(wire_payload);
        Ok(out)
    }

    /// The header and annotations of the message [`Message::encode_prepared`] makes, without
    /// the payload, which the caller sends right after them (from a buffer it keeps).
    pub fn encode_head(
        &self,
        wire_payload: &[u8],
        compressed: bool,
        hmac_key: Option<&[u8]>,
        max_message_size: u64,
    ) -> Result<Vec<u8>> {
        self.encode_head_with(wire_payload, compressed, hmac_key, max_message_size, 0)
    }

    fn encode_head_with(
        &self,
        wire_payload: &[u8],
        compressed: bool,
        hmac_key: Option<&[u8]>,
        max_message_size: u64,
        room: usize,
    ) -> Result<Vec<u8>> {
        let data_size = wire_payload.len() as u64;
        // Pyro4: "invalid message size (outside range 0..2Gb)".
        if data_size > MAX_DATA_SIZE {
            return Err(Error::MessageTooLarge {
                size: data_size,
                limit: MAX_DATA_SIZE,
            });
        }
        if let Some((id, _)) = self
            .annotations
            .entries
            .iter()
            .find(|(id, _)| !id.is_ascii())
        {
            return Err(Error::InvalidAnnotations(format!(
                "annotation key must be 4 ASCII characters: {id:02x?}"
            )));
        }
        let signed;
        let annotations = match hmac_key.filter(|k| !k.is_empty()) {
            // Pyro4 computes the HMAC last, over the other annotations, and stores it in
            // the same dict (so a caller-supplied HMAC chunk is replaced in place).
            Some(key) => {
                let mut with = self.annotations.clone();
                with.insert(
                    ANNOTATION_HMAC,
                    compute_hmac(key, wire_payload, &self.annotations).to_vec(),
                );
                signed = with;
                &signed
            }
            None => &self.annotations,
        };
        let annotations_size = annotations.wire_size();
        if annotations_size > MAX_ANNOTATIONS_SIZE {
            return Err(Error::AnnotationsTooLarge(annotations_size));
        }
        let total = data_size + annotations_size as u64;
        if max_message_size > 0 && total > max_message_size {
            return Err(Error::MessageTooLarge {
                size: total,
                limit: max_message_size,
            });
        }
        let mut flags = self.flags & !FLAGS_COMPRESSED;
        if compressed {
            flags |= FLAGS_COMPRESSED;
        }
        let header = Header {
            msg_type: self.msg_type,
            flags,
            seq: self.seq,
            data_size: data_size as u32,
            serializer_id: self.serializer_id,
            annotations_size: annotations_size as u16,
        };
        let mut out = Vec::with_capacity(HEADER_SIZE + annotations_size + room);
        out.extend_from_slice(&header.to_bytes());
        annotations.write_to(&mut out);
        Ok(out)
    }
}

/// Pyro4's compression rule (`SerializerBase.__compressdata`): payloads under 200 bytes
/// are left alone; otherwise zlib at the default level, kept only if strictly smaller.
pub fn compress_payload(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < COMPRESSION_THRESHOLD {
        return None;
    }
    let mut enc = ZlibEncoder::new(Vec::with_capacity(data.len() / 2), Compression::default());
    // Writing into a Vec cannot fail; treat a failure as "not compressible".
    enc.write_all(data).ok()?;
    let packed = enc.finish().ok()?;
    (packed.len() < data.len()).then_some(packed)
}

/// HMAC-SHA1 over the payload bytes as on the wire followed by the values of every
/// annotation except HMAC, in ascending order of id (Pyro4's algorithm).
pub fn compute_hmac(key: &[u8], wire_payload: &[u8], annotations: &Annotations) -> [u8; 20] {
    hmac_state(key, wire_payload, annotations)
        .finalize()
        .into_bytes()
        .into()
}

/// The keyed HMAC state after feeding what [`compute_hmac`] covers; the decoder finishes
/// it with a constant-time `verify_slice`.
pub(crate) fn hmac_state(key: &[u8], wire_payload: &[u8], annotations: &Annotations) -> Hmac<Sha1> {
    // The key is local configuration, and HMAC accepts keys of any length.
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(wire_payload);
    // Pyro4 iterates sorted(annotations.items()): ids compare as str, which for ASCII ids
    // is byte order. Ids are unique (dict semantics), so the sort is total.
    let mut sorted: Vec<&([u8; 4], Vec<u8>)> = annotations
        .entries
        .iter()
        .filter(|(id, _)| *id != ANNOTATION_HMAC)
        .collect();
    sorted.sort_by_key(|entry| entry.0);
    for (_, value) in sorted {
        mac.update(value);
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ANNOTATION_CORR, SERIALIZER_PING};

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    const ECHO: &[u8] = b"# serpent utf-8 python3.2\n('test.echoserver','echo',('hello',),{})";

    #[test]
    fn appendix_a1_invoke() {
        let msg = Message::new(MsgType::Invoke, 1, 1, ECHO.to_vec());
        let bytes = msg.encode(false, None, 0).expect("encode");
        let mut want = hex("5059524f 0030 0004 0000 0001 00000042 0001 0000 0000 3561");
        want.extend_from_slice(ECHO);
        assert_eq!(bytes, want);
        assert_eq!(bytes.len(), 90);
        // compress=true leaves a < 200 byte payload alone.
        assert_eq!(msg.encode(true, None, 0).expect("encode"), want);
    }

    #[test]
    fn appendix_a1_reply_with_corr() {
        let mut msg = Message::new(
            MsgType::Result,
            1,
            1,
            b"# serpent utf-8 python3.2\n'hello'".to_vec(),
        );
        msg.annotations
            .insert(ANNOTATION_CORR, hex("32ed484d7c704acf8f83ed63ca571c30"));
        let bytes = msg.encode(false, None, 0).expect("encode");
        let mut want = hex("5059524f 0030 0005 0000 0001 00000021 0001 0016 0000 3557 434f5252 0010 32ed484d7c704acf8f83ed63ca571c30");
        want.extend_from_slice(b"# serpent utf-8 python3.2\n'hello'");
        assert_eq!(bytes, want);
        assert_eq!(bytes.len(), 79);
    }

    #[test]
    fn appendix_a2_invoke_with_hmac() {
        let msg = Message::new(MsgType::Invoke, 1, 1, ECHO.to_vec());
        let bytes = msg.encode(false, Some(b"secret"), 0).expect("encode");
        let mut want = hex("5059524f 0030 0004 0000 0001 00000042 0001 001a 0000 357b 484d4143 0014 fef5650a30174ebbced0b7f5b9dd348098d43389");
        want.extend_from_slice(ECHO);
        assert_eq!(bytes, want);
        assert_eq!(bytes.len(), 116);
        // An empty key counts as no key.
        assert_eq!(msg.encode(false, Some(b""), 0).expect("encode").len(), 90);
    }

    #[test]
    fn section_2_4_ping() {
        let msg = Message::new(MsgType::Ping, 0, SERIALIZER_PING, b"ping".to_vec());
        assert_eq!(
            msg.encode(false, None, 0).expect("encode"),
            hex("5059524f 0030 0006 0000 0000 00000004 002a 0000 0000 354d 70696e67")
        );
    }

    #[test]
    fn section_1_5_hmac_vectors() {
        let handshake =
            b"# serpent utf-8 python3.2\n{'handshake':'hello','object':'test.echoserver'}";
        assert_eq!(
            compute_hmac(b"secret", handshake, &Annotations::new()).to_vec(),
            hex("b76744341f29606fa52d5aa46c7922ebe203b19b")
        );
        let mut anns = Annotations::new();
        anns.insert(ANNOTATION_CORR, hex("fe38a4decd6c423f996b125a4fa635d7"));
        // A stale HMAC chunk is not part of the digest.
        anns.insert(ANNOTATION_HMAC, vec![0; 20]);
        assert_eq!(
            compute_hmac(b"secret", b"# serpent utf-8 python3.2\n'hello'", &anns).to_vec(),
            hex("53fd15907ae051ebbf028f91739c83b9a87be933")
        );
    }

    #[test]
    fn hmac_sorts_annotation_values_by_id() {
        let mut a = Annotations::new();
        a.insert(*b"ZZZZ", b"1".to_vec());
        a.insert(*b"AAAA", b"2".to_vec());
        let mut b = Annotations::new();
        b.insert(*b"XXXX", b"21".to_vec());
        assert_eq!(compute_hmac(b"k", b"p", &a), compute_hmac(b"k", b"p", &b));
        let mut c = Annotations::new();
        c.insert(*b"XXXX", b"12".to_vec());
        assert_ne!(compute_hmac(b"k", b"p", &a), compute_hmac(b"k", b"p", &c));
    }

    #[test]
    fn compression_rule() {
        let small = vec![b'a'; 199];
        assert_eq!(compress_payload(&small), None);
        let big = vec![b'a'; 200];
        let packed = compress_payload(&big).expect("compressible");
        assert!(packed.len() < 200);
        assert_eq!(&packed[..2], &[0x78, 0x9c], "zlib stream, default level");
        // Incompressible data (a byte permutation with no repeats) stays uncompressed.
        let noise: Vec<u8> = (0..=255u8)
            .map(|i| i.wrapping_mul(167).wrapping_add(13))
            .collect();
        assert_eq!(compress_payload(&noise), None);
        let msg = Message {
            flags: FLAGS_COMPRESSED,
            ..Message::new(MsgType::Result, 3, 1, noise.clone())
        };
        let bytes = msg.encode(true, None, 0).expect("encode");
        assert_eq!(
            u16::from_be_bytes([bytes[8], bytes[9]]) & FLAGS_COMPRESSED,
            0
        );
        let msg = Message::new(MsgType::Result, 3, 1, big);
        let bytes = msg.encode(true, None, 0).expect("encode");
        assert_eq!(u16::from_be_bytes([bytes[8], bytes[9]]), FLAGS_COMPRESSED);
        assert_eq!(&bytes[24..], packed.as_slice());
    }

    #[test]
    fn size_limits() {
        let mut msg = Message::new(MsgType::Invoke, 1, 1, vec![0; 100]);
        msg.annotations.insert(*b"USER", vec![1; 10]);
        assert_eq!(msg.encode(false, None, 116).map(|b| b.len()), Ok(140));
        assert_eq!(
            msg.encode(false, None, 115),
            Err(Error::MessageTooLarge {
                size: 116,
                limit: 115
            })
        );
        // The HMAC chunk counts too.
        assert_eq!(
            msg.encode(false, Some(b"k"), 116),
            Err(Error::MessageTooLarge {
                size: 142,
                limit: 116
            })
        );
        let mut msg = Message::new(MsgType::Invoke, 1, 1, vec![]);
        msg.annotations.insert(*b"BIG1", vec![0; 65529]);
        assert_eq!(msg.encode(false, None, 0).map(|b| b.len()), Ok(24 + 65535));
        msg.annotations.insert(*b"BIG2", vec![]);
        assert_eq!(
            msg.encode(false, None, 0),
            Err(Error::AnnotationsTooLarge(65541))
        );
        let mut msg = Message::new(MsgType::Invoke, 1, 1, vec![]);
        msg.annotations.insert([b'A', b'B', b'C', 0xC3], vec![]);
        assert!(matches!(
            msg.encode(false, None, 0),
            Err(Error::InvalidAnnotations(_))
        ));
    }

    #[test]
    fn annotations_dict_semantics() {
        let mut a = Annotations::new();
        a.insert(*b"AAAA", vec![1]);
        a.insert(*b"BBBB", vec![2]);
        a.insert(*b"AAAA", vec![3]);
        assert_eq!(
            a.iter().map(|(k, v)| (*k, v.to_vec())).collect::<Vec<_>>(),
            vec![(*b"AAAA", vec![3]), (*b"BBBB", vec![2])]
        );
        assert_eq!(a.wire_size(), 14);
        assert_eq!(a.remove(b"AAAA"), Some(vec![3]));
        assert_eq!(a.get(b"AAAA"), None);
        assert_eq!(a.get(b"BBBB"), Some(&[2u8][..]));
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn annotations_parse_strict() {
        assert_eq!(Annotations::parse(&[]), Ok(Annotations::new()));
        let good = hex("434f5252 0002 abcd 55534552 0000");
        let a = Annotations::parse(&good).expect("valid");
        assert_eq!(a.get(b"CORR"), Some(&[0xab, 0xcd][..]));
        assert_eq!(a.get(b"USER"), Some(&[][..]));
        for bad in [
            &good[..good.len() - 1],
            &good[..3],
            &hex("434f5252 0003 abcd")[..],
            &hex("434f52ff 0000")[..],
        ] {
            assert!(
                matches!(Annotations::parse(bad), Err(Error::InvalidAnnotations(_))),
                "{bad:02x?}"
            );
        }
        let dup = Annotations::parse(&hex("41414141 0001 01 41414141 0001 02")).expect("valid");
        assert_eq!(dup.len(), 1);
        assert_eq!(dup.get(b"AAAA"), Some(&[2u8][..]));
    }
}
