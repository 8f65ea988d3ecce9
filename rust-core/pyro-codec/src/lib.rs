//! IO-free codecs for Pyro: one ordered value model for Python data, and the
//! serializers Pyro4 puts on the wire.
//!
//! - [`Value`]: None, bool, int (i64 and big), float, complex, str, bytes, tuple, list,
//!   set and dict (any hashable keys, insertion order). Class dicts (`__class__`) for
//!   URIs, proxies and exceptions are plain dicts here; [`envelope`] knows their shapes.
//! - [`serpent`]: encoder byte-identical to serpent 1.43 and a parser for what Python's
//!   `ast.literal_eval` accepts of it, with caps on depth and integer digits.
//! - [`json`]: Pyro4's json (Python's `json` module layout, NaN/Infinity tokens).
//! - [`marshal`]: CPython marshal format 4, the types Pyro sends.
//! - [`pickle`]: Pyro4's pickle (also dill/cloudpickle ids): an unpickler that keeps class
//!   names and never calls anything, and a protocol-2 (to 5) pickler.
//! - [`envelope`]: the Pyro4 payload shapes: calls, results, exceptions, URIs, proxies.
//! - [`serde_bridge`]: typed Rust values to and from [`Value`].
//!
//! Nothing here touches a socket or a clock; decoders never panic on peer bytes.

pub mod envelope;
pub mod error;
pub mod json;
pub mod marshal;
pub mod pickle;
pub mod pyrepr;
pub mod serde_bridge;
pub mod serpent;
pub mod value;

pub use error::{Error, Result};
pub use value::{Dict, Value};

/// Limits every decoder enforces on untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Maximum container nesting depth (CPython's parser and serpent use 200).
    pub max_depth: usize,
    /// Maximum decimal digits of an integer literal (CPython >= 3.11: 4300).
    pub max_int_digits: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_depth: 200,
            max_int_digits: 4300,
        }
    }
}

/// The serializers Pyro4 knows, with its wire ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SerializerKind {
    /// serpent, id 1 (Pyro4's default).
    Serpent,
    /// json, id 2.
    Json,
    /// marshal, id 3.
    Marshal,
    /// pickle, id 4.
    Pickle,
    /// dill, id 5.
    Dill,
    /// msgpack, id 6.
    Msgpack,
    /// cloudpickle, id 7.
    Cloudpickle,
}

impl SerializerKind {
    /// Pyro4 wire id.
    pub fn id(self) -> u16 {
        match self {
            SerializerKind::Serpent => 1,
            SerializerKind::Json => 2,
            SerializerKind::Marshal => 3,
            SerializerKind::Pickle => 4,
            SerializerKind::Dill => 5,
            SerializerKind::Msgpack => 6,
            SerializerKind::Cloudpickle => 7,
        }
    }
    /// Kind for a Pyro4 wire id.
    pub fn from_id(id: u16) -> Option<SerializerKind> {
        Some(match id {
            1 => SerializerKind::Serpent,
            2 => SerializerKind::Json,
            3 => SerializerKind::Marshal,
            4 => SerializerKind::Pickle,
            5 => SerializerKind::Dill,
            6 => SerializerKind::Msgpack,
            7 => SerializerKind::Cloudpickle,
            _ => return None,
        })
    }
    /// Pyro4's name for it (config SERIALIZER values).
    pub fn name(self) -> &'static str {
        match self {
            SerializerKind::Serpent => "serpent",
            SerializerKind::Json => "json",
            SerializerKind::Marshal => "marshal",
            SerializerKind::Pickle => "pickle",
            SerializerKind::Dill => "dill",
            SerializerKind::Msgpack => "msgpack",
            SerializerKind::Cloudpickle => "cloudpickle",
        }
    }
    /// Kind for a Pyro4 name (case-insensitive).
    pub fn from_name(name: &str) -> Option<SerializerKind> {
        [
            SerializerKind::Serpent,
            SerializerKind::Json,
            SerializerKind::Marshal,
            SerializerKind::Pickle,
            SerializerKind::Dill,
            SerializerKind::Msgpack,
            SerializerKind::Cloudpickle,
        ]
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
    }
    /// True for the serializers this crate can encode and decode today.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            SerializerKind::Serpent
                | SerializerKind::Json
                | SerializerKind::Marshal
                | SerializerKind::Pickle
                | SerializerKind::Dill
                | SerializerKind::Cloudpickle
        )
    }

    /// Encode one value the way this serializer puts it in a payload.
    pub fn encode(self, value: &Value) -> Result<Vec<u8>> {
        match self {
            SerializerKind::Serpent => serpent::to_vec(value),
            SerializerKind::Json => json::to_vec(value),
            SerializerKind::Marshal => marshal::to_vec(value),
            // dill and cloudpickle write and read the pickle format (Pyro4's
            // DillSerializer/CloudpickleSerializer); what this crate sends needs neither.
            SerializerKind::Pickle | SerializerKind::Dill | SerializerKind::Cloudpickle => {
                pickle::to_vec(value)
            }
            other => Err(Error::Unsupported(format!(
                "serializer {} is not supported",
                other.name()
            ))),
        }
    }

    /// [`SerializerKind::encode`] appending to `out`; serpent writes straight into it, so
    /// a buffer kept across messages is reused. On error `out` is left as it was.
    pub fn encode_into(self, value: &Value, out: &mut Vec<u8>) -> Result<()> {
        match self {
            SerializerKind::Serpent => {
                serpent::encode_into(value, &serpent::EncodeOptions::default(), out)
            }
            other => {
                let bytes = other.encode(value)?;
                out.extend_from_slice(&bytes);
                Ok(())
            }
        }
    }

    /// Decode one payload into a value, within `limits`.
    pub fn decode(self, bytes: &[u8], limits: &DecodeLimits) -> Result<Value> {
        match self {
            SerializerKind::Serpent => serpent::from_slice_with(bytes, limits),
            SerializerKind::Json => json::from_slice_with(bytes, limits),
            SerializerKind::Marshal => marshal::from_slice_with(bytes, limits),
            SerializerKind::Pickle | SerializerKind::Dill | SerializerKind::Cloudpickle => {
                pickle::from_slice_with(bytes, limits)
            }
            other => Err(Error::Unsupported(format!(
                "serializer {} is not supported",
                other.name()
            ))),
        }
    }
}
