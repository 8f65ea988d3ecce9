//! Pickle: Pyro4's serializer id 4 (dill, id 5, and cloudpickle, id 7, share the format).
//!
//! Pyro4 pickles with `pickle.dumps(x, config.PICKLE_PROTOCOL_VERSION)` (protocol 5 on
//! CPython >= 3.8) and unpickles with plain `pickle.loads`. This module has its own
//! unpickler ([`from_slice_with`]) and pickler ([`to_vec_with`]) because the value model
//! must keep class names: a remote exception, URI or proxy has to arrive as the class dict
//! that [`crate::envelope`] recognises, not as a bare tuple.
//!
//! # Unpickling
//!
//! A stack machine for protocols 0 to 5 as CPython 3.8+ (and Python 2.7) write them. It
//! never imports or calls anything: every GLOBAL is a name, and a fixed registry decides
//! what each named class or function becomes in the value model:
//!
//! | pickled | value |
//! |---|---|
//! | `set`, `frozenset`, `EMPTY_SET`/`FROZENSET` | [`Value::Set`] (one set kind) |
//! | `bytes`, `bytearray`, `BYTEARRAY8`, `_codecs.encode(str, 'latin1')` | [`Value::Bytes`] |
//! | Python 2 `str` (`STRING`, `BINSTRING`, `SHORT_BINSTRING`) | [`Value::Str`] if ASCII, else an error (Python 3's default `encoding='ASCII'`) |
//! | `complex` | [`Value::Complex`] |
//! | `decimal.Decimal` | its text as [`Value::Str`] (as serpent sends it) |
//! | `datetime.datetime`/`date`/`time` | `isoformat()` text as [`Value::Str`] (as serpent sends it); a `datetime.timezone`, `pytz.utc` or pytz fixed-offset tzinfo adds the offset, other tzinfo classes are an error |
//! | `datetime.timedelta` | `total_seconds()` as [`Value::Float`] (as serpent sends it; exact below 2**53 microseconds, about 285 years) |
//! | `uuid.UUID` | `str(uuid)` as [`Value::Str`] (as serpent sends it) |
//! | `collections.OrderedDict` | [`Value::Dict`] |
//! | builtin exceptions, `Pyro4.errors.*`, and classes of other modules whose name ends in `Error`, `Exception` or `Warning` | the exception class dict of [`crate::envelope::RemoteException::to_value`], class `builtins.Name` (Python 2's `exceptions`/`__builtin__` renamed) |
//! | `Pyro4.core.URI` | [`crate::envelope::uri_to_value`]'s shape: `{'__class__': 'Pyro4.core.URI', 'state': (...)}` |
//! | `Pyro4.core.Proxy` | [`crate::envelope::proxy_to_value`]'s shape (URI as text, name tuples, `b64:` hmac) |
//! | any other class built with `NEWOBJ`/`NEWOBJ_EX`/`copyreg._reconstructor` (incl. `Pyro4.futures._ExceptionWrapper`) | a class dict `{'__class__': 'module.Name', **state}` like serpent's; a non-dict state goes under `'state'` |
//! | `REDUCE` (a call) of any other global, e.g. `os.system` | an error |
//!
//! Python 2 module names (`__builtin__`, `exceptions`, `copy_reg`) are mapped to Python 3's
//! at every protocol, not only below 3 as CPython does (lenient, never ambiguous).
//!
//! Memo references share one node (an arena of nodes indexed by small ids), so a memo bomb
//! costs nothing while unpickling; turning the arena into a [`Value`] copies shared nodes,
//! and that copy is charged against a size budget ([`DecodeOptions::max_output_bytes`]).
//! Cycles (a list containing itself) are an error, since [`Value`] is a tree. No
//! allocation is sized from a length field before the field is checked against the
//! remaining input; nesting is capped by [`DecodeLimits::max_depth`] and integers by
//! [`DecodeLimits::max_int_digits`]. Persistent ids, the extension registry (`EXT1/2/4`)
//! and out-of-band buffers (`NEXT_BUFFER`, `READONLY_BUFFER`) are refused: Pyro4 never
//! produces them.
//!
//! # Pickling
//!
//! Protocol 2 by default (readable by every Pyro4, Python 2.7 included), 3 to 5 on request
//! (protocol 4 and 5 in one `FRAME`). No memo is written (the value model is a tree).
//! Class dicts that Pyro4 rebuilds into objects are written as those objects, the way
//! CPython pickles them, so that Python's unpickler makes real instances: exception class
//! dicts (REDUCE with the args, then BUILD with the attributes incl. `_pyroTraceback`),
//! URIs and proxies (NEWOBJ, then BUILD with the `__getstate__` tuple), and
//! `Pyro4.futures._ExceptionWrapper`. Other dicts, with or without `__class__`, are dicts.
//! At protocol 2 `builtins` is written as Python 2's `__builtin__` (both Pythons load it).

mod decode;
mod encode;
mod ops;
mod resolve;

use crate::{DecodeLimits, Result, Value};

/// The protocol the pickler writes unless asked otherwise (Pyro4 asserts >= 2).
pub const DEFAULT_PROTOCOL: u8 = 2;

/// The highest protocol this module reads and writes (CPython >= 3.8).
pub const HIGHEST_PROTOCOL: u8 = 5;

/// Pickler options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Protocol to write, 2 to 5 ([`DEFAULT_PROTOCOL`] by default).
    pub protocol: u8,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            protocol: DEFAULT_PROTOCOL,
        }
    }
}

/// Unpickler options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Nesting depth and integer size caps.
    pub limits: DecodeLimits,
    /// Upper bound on the memory the decoded [`Value`] may take (roughly: the size of
    /// every value node plus its str/bytes/int payload). Memo references share nodes
    /// inside the unpickler but are copied into the result, so this is what stops a
    /// small pickle from expanding into a huge value. `None` means
    /// `max(16 MiB, 64 x input length)`.
    pub max_output_bytes: Option<usize>,
}

/// Pickle with protocol [`DEFAULT_PROTOCOL`].
pub fn to_vec(value: &Value) -> Result<Vec<u8>> {
    to_vec_with(value, &EncodeOptions::default())
}

/// Pickle with options.
pub fn to_vec_with(value: &Value, options: &EncodeOptions) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    encode_into(value, options, &mut out)?;
    Ok(out)
}

/// Pickle with options, appending to `out`.
pub fn encode_into(value: &Value, options: &EncodeOptions, out: &mut Vec<u8>) -> Result<()> {
    encode::encode_into(value, options.protocol, out)
}

/// Unpickle with default limits.
pub fn from_slice(bytes: &[u8]) -> Result<Value> {
    from_slice_opts(bytes, &DecodeOptions::default())
}

/// Unpickle within `limits` (default output budget).
pub fn from_slice_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Value> {
    from_slice_opts(
        bytes,
        &DecodeOptions {
            limits: *limits,
            ..DecodeOptions::default()
        },
    )
}

/// Unpickle with full options. Bytes after the `STOP` opcode are ignored, as
/// `pickle.loads` ignores them.
pub fn from_slice_opts(bytes: &[u8], options: &DecodeOptions) -> Result<Value> {
    let (arena, root) = decode::run(bytes, &options.limits)?;
    let budget = options
        .max_output_bytes
        .unwrap_or_else(|| (16usize << 20).max(bytes.len().saturating_mul(64)));
    resolve::materialise(&arena, root, &options.limits, budget)
}
