//! CPython marshal (format version 4), the subset Pyro sends: None, bools, ints (short
//! and long), floats, complex, bytes, str (all string codes), tuples, lists, dicts, sets,
//! frozensets and back-references.

use crate::{DecodeLimits, Result, Value};

/// Encode as CPython 3's `marshal.dumps` would.
pub fn to_vec(value: &Value) -> Result<Vec<u8>> {
    todo!("{value:?}")
}

/// Parse within `limits`.
pub fn from_slice_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Value> {
    todo!("{bytes:?}{limits:?}")
}
