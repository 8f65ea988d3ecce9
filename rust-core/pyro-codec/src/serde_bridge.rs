//! Typed Rust values to and from [`Value`] through serde.
//!
//! Rust structs and maps become dicts with str keys, sequences lists, tuples tuples,
//! `Option::None` and unit `None`, byte buffers bytes.

use crate::{Result, Value};
use serde::{de::DeserializeOwned, Serialize};

/// Convert a serializable Rust value into a [`Value`].
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    let _ = value;
    todo!()
}

/// Convert a [`Value`] into a Rust type.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T> {
    let _ = value;
    todo!()
}
