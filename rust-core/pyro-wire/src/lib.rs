//! Sans-IO implementation of the Pyro4 wire protocol (protocol version 48).
//!
//! Contract: this crate takes bytes and returns values or bytes. It performs no IO,
//! reads no clock, spawns nothing and holds no global state. Everything that parses
//! peer bytes returns an error instead of panicking, and never allocates from a length
//! it has not checked against the configured limits.
//!
//! Pieces:
//! - [`header`]: the 24-byte header with its additive checksum.
//! - [`message`]: a whole message (header, annotation chunks, payload), its encoder,
//!   HMAC-SHA1 signing/verification and zlib compression.
//! - [`decoder`]: an incremental decoder that tells "need more bytes" from "invalid".
//! - [`uri`]: `PYRO:`, `PYRONAME:` and `PYROMETA:` URIs, parsed and formatted like Pyro4.

pub mod decoder;
pub mod error;
pub mod header;
pub mod message;
pub mod uri;

pub use decoder::{Decoded, DecodedInPlace, Limits, MessageDecoder};
pub use error::{Error, Result};
pub use header::{Header, MsgType, HEADER_SIZE};
pub use message::{compute_hmac, Annotations, Message};
pub use uri::{Location, Uri, UriKind, UriState};

/// Pyro4 protocol version carried in every header.
pub const PROTOCOL_VERSION: u16 = 48;
/// Magic bytes at the start of every message.
pub const MAGIC: &[u8; 4] = b"PYRO";
/// Constant added into the header checksum.
pub const CHECKSUM_MAGIC: u16 = 0x34E9;

/// Result payload is a serialized exception.
pub const FLAGS_EXCEPTION: u16 = 0x0001;
/// Payload is zlib-compressed (annotations never are).
pub const FLAGS_COMPRESSED: u16 = 0x0002;
/// Invoke expects no response.
pub const FLAGS_ONEWAY: u16 = 0x0004;
/// Invoke/result is a batch.
pub const FLAGS_BATCH: u16 = 0x0008;
/// CONNECT asks for, and CONNECTOK carries, object metadata.
pub const FLAGS_META_ON_CONNECT: u16 = 0x0010;
/// Result is a remote iterator; the stream id is in the `STRM` annotation.
pub const FLAGS_ITEMSTREAMRESULT: u16 = 0x0020;
/// Invoke payload must be passed through undeserialized.
pub const FLAGS_KEEPSERIALIZED: u16 = 0x0040;

/// Serializer ids as Pyro4 numbers them.
pub const SERIALIZER_SERPENT: u16 = 1;
/// Pyro4 serializer id of json.
pub const SERIALIZER_JSON: u16 = 2;
/// Pyro4 serializer id of marshal.
pub const SERIALIZER_MARSHAL: u16 = 3;
/// Pyro4 serializer id of pickle.
pub const SERIALIZER_PICKLE: u16 = 4;
/// Pyro4 serializer id of dill.
pub const SERIALIZER_DILL: u16 = 5;
/// Pyro4 serializer id of msgpack.
pub const SERIALIZER_MSGPACK: u16 = 6;
/// Pyro4 serializer id of cloudpickle.
pub const SERIALIZER_CLOUDPICKLE: u16 = 7;
/// Serializer id Pyro4 uses on PING messages (payload is never deserialized).
pub const SERIALIZER_PING: u16 = 42;

/// Annotation id of the correlation id (16 bytes, RFC 4122 byte order).
pub const ANNOTATION_CORR: [u8; 4] = *b"CORR";
/// Annotation id of the HMAC-SHA1 digest (20 bytes).
pub const ANNOTATION_HMAC: [u8; 4] = *b"HMAC";
/// Annotation id of an item stream id (36 UTF-8 characters).
pub const ANNOTATION_STRM: [u8; 4] = *b"STRM";
/// Annotation id of blob info for FLAGS_KEEPSERIALIZED.
pub const ANNOTATION_BLBI: [u8; 4] = *b"BLBI";

/// Object id of every daemon's own object.
pub const DAEMON_NAME: &str = "Pyro.Daemon";
/// Object id of the name server object.
pub const NAMESERVER_NAME: &str = "Pyro.NameServer";
/// Object id of the Flame server object.
pub const FLAME_NAME: &str = "Pyro.Flame";
