//! The 24-byte Pyro4 message header (`!4sHHHHiHHHH`, big-endian).

use crate::Result;

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
        todo!("{n}")
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

impl Header {
    /// The checksum Pyro4 computes over these fields.
    pub fn checksum(&self) -> u16 {
        todo!()
    }

    /// Encode into 24 bytes, checksum included, reserved field 0.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        todo!()
    }

    /// Parse and validate 24 bytes: magic, version, checksum, message type, sign of data_size.
    pub fn parse(bytes: &[u8; HEADER_SIZE]) -> Result<Header> {
        todo!("{bytes:?}")
    }
}
