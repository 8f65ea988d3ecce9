//! Incremental message decoder: header first, then annotations, then payload.

use crate::{Message, Result};

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
        Limits { max_message_size: 0, max_inflated_size: 1 << 30 }
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

/// Decodes messages from a byte buffer the caller owns and fills.
#[derive(Debug, Clone)]
pub struct MessageDecoder {
    limits: Limits,
    hmac_key: Option<Vec<u8>>,
}

impl MessageDecoder {
    /// A decoder with these limits; `hmac_key` None or empty means no HMAC expected.
    pub fn new(limits: Limits, hmac_key: Option<Vec<u8>>) -> Self {
        MessageDecoder { limits, hmac_key }
    }

    /// Try to decode one message from the start of `buf`. Errors are final for the
    /// connection (Pyro4 closes it). HMAC is verified (constant time) and the HMAC
    /// annotation removed; compressed payloads are inflated.
    pub fn decode(&self, buf: &[u8]) -> Result<Decoded> {
        todo!("{buf:?}{:?}{:?}", self.limits, self.hmac_key)
    }
}
