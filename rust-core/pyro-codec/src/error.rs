//! Errors of the codec layer.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong encoding or decoding a payload. Decode errors carry the byte
/// offset where the input went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Malformed input at a byte offset.
    #[error("{codec}: {message} at byte {offset}")]
    Syntax {
        /// Which codec ("serpent", "json", "marshal").
        codec: &'static str,
        /// What is wrong.
        message: String,
        /// Byte offset into the input.
        offset: usize,
    },
    /// Input ended before the value was complete.
    #[error("{codec}: unexpected end of input")]
    Eof {
        /// Which codec.
        codec: &'static str,
    },
    /// Nesting deeper than the configured maximum.
    #[error("{codec}: nesting too deep (limit {limit}) at byte {offset}")]
    TooDeep {
        /// Which codec.
        codec: &'static str,
        /// The configured limit.
        limit: usize,
        /// Byte offset.
        offset: usize,
    },
    /// An integer literal with more digits than allowed.
    #[error("{codec}: integer exceeds the limit of {limit} digits at byte {offset}")]
    IntTooLarge {
        /// Which codec.
        codec: &'static str,
        /// The configured limit.
        limit: usize,
        /// Byte offset.
        offset: usize,
    },
    /// A dict key or set element that Python cannot hash (list, dict, set).
    #[error("unhashable type: '{0}'")]
    Unhashable(&'static str),
    /// A value this serializer cannot represent (e.g. bytes in json).
    #[error("cannot serialize: {0}")]
    Unencodable(String),
    /// A value whose shape is not what the Pyro envelope expects.
    #[error("invalid payload shape: {0}")]
    Shape(String),
    /// A serializer this crate does not implement.
    #[error("{0}")]
    Unsupported(String),
    /// Error from the serde bridge.
    #[error("{0}")]
    Serde(String),
}
