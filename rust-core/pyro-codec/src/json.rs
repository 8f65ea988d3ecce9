//! Pyro4's json serializer: the layout of Python's `json.dumps(ensure_ascii=False)`
//! (`", "` and `": "` separators, raw UTF-8, NaN/Infinity/-Infinity tokens) and a
//! lenient reader that accepts those tokens.

use crate::{DecodeLimits, Result, Value};

/// Encode as Python's json module would (tuples and sets become arrays; bytes and
/// complex are refused like Pyro4's SerializeError).
pub fn to_vec(value: &Value) -> Result<Vec<u8>> {
    todo!("{value:?}")
}

/// Parse within `limits`.
pub fn from_slice_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Value> {
    todo!("{bytes:?}{limits:?}")
}
