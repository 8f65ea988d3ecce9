//! A whole Pyro4 message: header fields, annotation chunks and payload.

use crate::{MsgType, Result};

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
        todo!("{id:?}")
    }
    /// Set (or replace) an annotation.
    pub fn insert(&mut self, id: [u8; 4], value: Vec<u8>) {
        todo!("{id:?}{value:?}")
    }
    /// Remove an annotation, returning its value.
    pub fn remove(&mut self, id: &[u8; 4]) -> Option<Vec<u8>> {
        todo!("{id:?}")
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
        todo!()
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
        Message { msg_type, flags: 0, seq, serializer_id, annotations: Annotations::new(), data }
    }

    /// Encode to wire bytes. `compress`: zlib the payload if it is at least 200 bytes and
    /// compression makes it smaller (Pyro4's COMPRESSION rule), setting FLAGS_COMPRESSED.
    /// `hmac_key`: when Some and non-empty, add the HMAC annotation computed as Pyro4 does.
    /// `max_message_size`: 0 = unlimited, else annotations + payload must fit.
    pub fn encode(&self, compress: bool, hmac_key: Option<&[u8]>, max_message_size: u64) -> Result<Vec<u8>> {
        todo!("{compress}{hmac_key:?}{max_message_size}")
    }
}

/// HMAC-SHA1 over the payload bytes as on the wire followed by the values of every
/// annotation except HMAC, in ascending order of id (Pyro4's algorithm).
pub fn compute_hmac(key: &[u8], wire_payload: &[u8], annotations: &Annotations) -> [u8; 20] {
    todo!("{key:?}{wire_payload:?}{annotations:?}")
}
