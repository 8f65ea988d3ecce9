//! The 24-byte Pyro4 message header (`!4sHHHHiHHHH`, big-endian).
//!
//! Layout (offsets in bytes): magic `PYRO` (0), protocol version (4), message type (6),
//! flags (8), sequence number (10), data size as a signed 32-bit integer (12), serializer
//! id (16), annotations size (18), reserved (20), checksum (22).

use crate::{Error, Result, CHECKSUM_MAGIC, MAGIC, PROTOCOL_VERSION};

/// Size of a Pyro4 header in bytes.
pub const HEADER_SIZE: usize = 24;

/// Pyro4 message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum MsgType {
    /// Client to daemon, first message on a connection (handshake).
    Connect = 1,
    /// Daemon to client: handshake accepted.
    ConnectOk = 2,
    /// Daemon to client: handshake rejected; payload is the reason.
    ConnectFail = 3,
    /// Method call.
    Invoke = 4,
    /// Return value or exception.
    Result = 5,
    /// Ping, both directions.
    Ping = 6,
}

impl MsgType {
    /// Type for a wire number; `None` for numbers Pyro4 does not define.
    pub fn from_u16(n: u16) -> Option<MsgType> {
        Some(match n {
            1 => MsgType::Connect,
            2 => MsgType::ConnectOk,
            3 => MsgType::ConnectFail,
            4 => MsgType::Invoke,
            5 => MsgType::Result,
            6 => MsgType::Ping,
            _ => return None,
        })
    }

    /// The wire number of this type.
    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

/// A decoded header. `data_size` is the payload length as on the wire (compressed if
/// FLAGS_COMPRESSED is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub msg_type: MsgType,
    /// FLAGS_* bits.
    pub flags: u16,
    /// Sequence number.
    pub seq: u16,
    /// Payload length in bytes (0..=i32::MAX).
    pub data_size: u32,
    /// Serializer id (SERIALIZER_*).
    pub serializer_id: u16,
    /// Total bytes of annotation chunks.
    pub annotations_size: u16,
}

/// Pyro4's additive checksum over raw field values.
///
/// Python adds unbounded integers (data_size possibly negative) and masks with 0xFFFF at
/// the end; adding the two's-complement bits of data_size with wrapping u32 arithmetic and
/// keeping the low 16 bits gives the same result, since both are sums modulo 2^16.
fn raw_checksum(
    msg_type: u16,
    version: u16,
    data_size_bits: u32,
    annotations_size: u16,
    serializer_id: u16,
    flags: u16,
    seq: u16,
) -> u16 {
    let sum = u32::from(msg_type)
        .wrapping_add(u32::from(version))
        .wrapping_add(data_size_bits)
        .wrapping_add(u32::from(annotations_size))
        .wrapping_add(u32::from(serializer_id))
        .wrapping_add(u32::from(flags))
        .wrapping_add(u32::from(seq))
        .wrapping_add(u32::from(CHECKSUM_MAGIC));
    (sum & 0xFFFF) as u16
}

fn be16(bytes: &[u8; HEADER_SIZE], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

impl Header {
    /// The checksum Pyro4 computes over these fields.
    pub fn checksum(&self) -> u16 {
        raw_checksum(
            self.msg_type.as_u16(),
            PROTOCOL_VERSION,
            self.data_size,
            self.annotations_size,
            self.serializer_id,
            self.flags,
            self.seq,
        )
    }

    /// Encode into 24 bytes, checksum included, reserved field 0.
    ///
    /// `data_size` is written as its 32 bits; callers keep it within `0..=i32::MAX`
    /// ([`crate::Message::encode`] refuses larger payloads like Pyro4 does).
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        out[0..4].copy_from_slice(MAGIC);
        out[4..6].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        out[6..8].copy_from_slice(&self.msg_type.as_u16().to_be_bytes());
        out[8..10].copy_from_slice(&self.flags.to_be_bytes());
        out[10..12].copy_from_slice(&self.seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.data_size.to_be_bytes());
        out[16..18].copy_from_slice(&self.serializer_id.to_be_bytes());
        out[18..20].copy_from_slice(&self.annotations_size.to_be_bytes());
        // 20..22 reserved: Pyro4 always sends 0.
        out[22..24].copy_from_slice(&self.checksum().to_be_bytes());
        out
    }

    /// Parse and validate 24 bytes: magic, version, checksum, message type, sign of data_size.
    ///
    /// Order mirrors `Pyro4.message.Message.from_header`/`recv`: magic and version first
    /// (a Pyro5 peer, version 502, gives [`Error::UnsupportedVersion`]), then the checksum
    /// over the raw fields, then the message type. A negative data size, which Pyro4 would
    /// pass on to `recv()`, is refused here.
    pub fn parse(bytes: &[u8; HEADER_SIZE]) -> Result<Header> {
        if &bytes[0..4] != MAGIC {
            return Err(Error::InvalidHeader);
        }
        let version = be16(bytes, 4);
        if version != PROTOCOL_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let msg_type = be16(bytes, 6);
        let flags = be16(bytes, 8);
        let seq = be16(bytes, 10);
        let data_size_bits = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let serializer_id = be16(bytes, 16);
        let annotations_size = be16(bytes, 18);
        let checksum = be16(bytes, 22);
        if checksum
            != raw_checksum(
                msg_type,
                version,
                data_size_bits,
                annotations_size,
                serializer_id,
                flags,
                seq,
            )
        {
            return Err(Error::ChecksumMismatch);
        }
        let msg_type = MsgType::from_u16(msg_type).ok_or(Error::InvalidMsgType(msg_type))?;
        let signed = data_size_bits as i32;
        if signed < 0 {
            return Err(Error::InvalidDataSize(signed));
        }
        Ok(Header {
            msg_type,
            flags,
            seq,
            data_size: data_size_bits,
            serializer_id,
            annotations_size,
        })
    }

    /// Parse the first [`HEADER_SIZE`] bytes of `bytes`; `None` when fewer are available.
    pub fn parse_prefix(bytes: &[u8]) -> Option<Result<Header>> {
        let head: &[u8; HEADER_SIZE] = bytes.get(..HEADER_SIZE)?.try_into().ok()?;
        Some(Header::parse(head))
    }

    /// Bytes that follow the header on the wire: annotations plus payload.
    pub fn body_len(&self) -> u64 {
        u64::from(self.annotations_size) + u64::from(self.data_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn arr(v: &[u8]) -> [u8; HEADER_SIZE] {
        v.try_into().expect("24 bytes")
    }

    #[test]
    fn appendix_a1_request_header() {
        let raw = arr(&hex(
            "5059524f 0030 0004 0000 0001 00000042 0001 0000 0000 3561",
        ));
        let h = Header::parse(&raw).expect("valid");
        assert_eq!(h.msg_type, MsgType::Invoke);
        assert_eq!(
            (
                h.flags,
                h.seq,
                h.data_size,
                h.serializer_id,
                h.annotations_size
            ),
            (0, 1, 0x42, 1, 0)
        );
        assert_eq!(h.checksum(), 0x3561);
        assert_eq!(h.to_bytes(), raw);
    }

    #[test]
    fn appendix_a1_reply_and_a5_stream_headers() {
        for (text, ty, flags, seq, size, ser, ann) in [
            (
                "5059524f 0030 0005 0000 0001 00000021 0001 0016 0000 3557",
                MsgType::Result,
                0,
                1,
                0x21,
                1,
                0x16,
            ),
            (
                "5059524f 0030 0005 0021 0003 000000a8 0001 002a 0000 3615",
                MsgType::Result,
                0x21,
                3,
                0xa8,
                1,
                0x2a,
            ),
            (
                "5059524f 0030 0006 0000 0000 00000004 002a 0000 0000 354d",
                MsgType::Ping,
                0,
                0,
                4,
                42,
                0,
            ),
            (
                "5059524f 0030 0006 0000 0000 00000004 002a 0016 0000 3563",
                MsgType::Ping,
                0,
                0,
                4,
                42,
                0x16,
            ),
        ] {
            let raw = arr(&hex(text));
            let h = Header::parse(&raw).expect(text);
            assert_eq!(
                h,
                Header {
                    msg_type: ty,
                    flags,
                    seq,
                    data_size: size,
                    serializer_id: ser,
                    annotations_size: ann
                }
            );
            assert_eq!(h.to_bytes(), raw, "{text}");
        }
    }

    #[test]
    fn rejects_bad_magic_version_checksum_type_size() {
        let good = arr(&hex(
            "5059524f 0030 0004 0000 0001 00000042 0001 0000 0000 3561",
        ));
        let mut b = good;
        b[0] = b'X';
        assert_eq!(Header::parse(&b), Err(Error::InvalidHeader));
        // A Pyro5 header starts with the same magic and version 502.
        let mut b = good;
        b[4..6].copy_from_slice(&502u16.to_be_bytes());
        assert_eq!(Header::parse(&b), Err(Error::UnsupportedVersion(502)));
        let mut b = good;
        b[23] ^= 1;
        assert_eq!(Header::parse(&b), Err(Error::ChecksumMismatch));
        // Unknown type 9 with a correct checksum.
        let mut b = good;
        b[6..8].copy_from_slice(&9u16.to_be_bytes());
        let sum = raw_checksum(9, 48, 0x42, 0, 1, 0, 1);
        b[22..24].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(Header::parse(&b), Err(Error::InvalidMsgType(9)));
        // Negative data size with a checksum computed like Python (negative int & 0xffff).
        let mut b = good;
        b[12..16].copy_from_slice(&(-5i32).to_be_bytes());
        // type + version + data_size + serializer + seq + magic (annotations and flags are 0).
        let py_sum = ((4i64 + 48 - 5 + 1 + 1 + 0x34E9) & 0xFFFF) as u16;
        b[22..24].copy_from_slice(&py_sum.to_be_bytes());
        assert_eq!(Header::parse(&b), Err(Error::InvalidDataSize(-5)));
    }

    #[test]
    fn checksum_wraps_like_python() {
        let h = Header {
            msg_type: MsgType::Result,
            flags: 0xFFFF,
            seq: 0xFFFF,
            data_size: 0x7FFF_FFFF,
            serializer_id: 0xFFFF,
            annotations_size: 0xFFFF,
        };
        let py = (5u64 + 48 + 0x7FFF_FFFF + 0xFFFF * 4 + 0x34E9) & 0xFFFF;
        assert_eq!(u64::from(h.checksum()), py);
        assert_eq!(Header::parse(&h.to_bytes()), Ok(h));
    }

    #[test]
    fn msg_type_numbers() {
        for n in 0..=10u16 {
            match MsgType::from_u16(n) {
                Some(t) => assert_eq!(t.as_u16(), n),
                None => assert!(n == 0 || n > 6),
            }
        }
    }
}
