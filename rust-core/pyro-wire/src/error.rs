//! Errors of the wire layer.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can be wrong with bytes on the wire or with a URI.
///
/// Messages mirror Pyro4's texts where Pyro4 has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Magic is not `PYRO` or the version is not 48
    /// (Pyro4: "invalid data or unsupported protocol version").
    #[error("invalid data or unsupported protocol version")]
    InvalidHeader,
    /// Another protocol version, e.g. a Pyro5 peer (502).
    #[error("invalid data or unsupported protocol version {0}")]
    UnsupportedVersion(u16),
    /// Header checksum does not match its fields.
    #[error("header checksum mismatch")]
    ChecksumMismatch,
    /// Unknown message type number.
    #[error("invalid msg type {0} received")]
    InvalidMsgType(u16),
    /// Negative data size in the header.
    #[error("invalid data size {0}")]
    InvalidDataSize(i32),
    /// data_size + annotations_size is over the configured limit.
    #[error("max message size exceeded ({size} where max={limit})")]
    MessageTooLarge {
        /// Claimed size of annotations plus payload.
        size: u64,
        /// Configured limit.
        limit: u64,
    },
    /// Annotation chunks do not add up to annotations_size, or an id is not 4 ASCII bytes.
    #[error("invalid annotations: {0}")]
    InvalidAnnotations(String),
    /// Annotations would exceed the 65535-byte total the u16 header field can hold.
    #[error("annotations too large: {0} bytes")]
    AnnotationsTooLarge(usize),
    /// The message carries HMAC but does not match, or a key is set and none was sent.
    #[error("message hmac mismatch")]
    HmacMismatch,
    /// One side has an HMAC key and the other has not.
    #[error("hmac key config not symmetric")]
    HmacNotSymmetric,
    /// zlib data could not be inflated, or inflates past the limit.
    #[error("decompression failed: {0}")]
    Decompression(String),
    /// A URI that does not follow Pyro4's grammar.
    #[error("{0}")]
    InvalidUri(String),
}
