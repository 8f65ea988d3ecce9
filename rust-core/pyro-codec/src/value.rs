//! The value model: Python data as it crosses the wire.
//!
//! Equality comes in two flavours:
//! - `==` ([`PartialEq`]) is *structural identity*: same variant, same contents, floats
//!   compared bit for bit (so NaN equals NaN and 0.0 differs from -0.0). This is what
//!   round-trip tests want.
//! - [`Value::py_eq`] is Python's `==`: `1 == 1.0 == True`, tuple vs list differ, sets and
//!   dicts compare regardless of order. Dict keys and set elements are deduplicated with
//!   it, as Python does.

use crate::{Error, Result};
use num_bigint::BigInt;
use num_traits::{ToPrimitive, Zero};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// A Python value.
#[derive(Debug, Clone)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An int that fits in i64.
    Int(i64),
    /// An int outside i64 (always normalised: never holds a value that fits i64).
    BigInt(BigInt),
    /// A float (inf, nan, -0.0 included).
    Float(f64),
    /// A complex number (real, imag).
    Complex(f64, f64),
    /// A str.
    Str(String),
    /// bytes (bytearray arrives as bytes too).
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list.
    List(Vec<Value>),
    /// A set or frozenset, in iteration order, without duplicates (by Python equality).
    Set(Vec<Value>),
    /// A dict in insertion order.
    Dict(Dict),
}

impl Value {
    /// An int from a big integer, normalised to [`Value::Int`] when it fits.
    pub fn from_bigint(b: BigInt) -> Value {
        match b.to_i64() {
            Some(i) => Value::Int(i),
            None => Value::BigInt(b),
        }
    }

    /// A str value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// The str inside, if this is a str.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The dict inside, if this is a dict.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The items of a tuple, list or set.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) | Value::Set(v) => Some(v),
            _ => None,
        }
    }

    /// The int inside as i64, if it is an int (or bool) that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// The number as f64 for int, bool and float.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Bool(b) => Some(*b as i64 as f64),
            Value::Float(f) => Some(*f),
            Value::BigInt(b) => b.to_f64(),
            _ => None,
        }
    }

    /// Python's type name (`'int'`, `'dict'`, ...), for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Complex(..) => "complex",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Dict(_) => "dict",
        }
    }

    /// Python truthiness.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::BigInt(b) => !b.is_zero(),
            Value::Float(f) => *f != 0.0,
            Value::Complex(r, i) => *r != 0.0 || *i != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::Tuple(v) | Value::List(v) | Value::Set(v) => !v.is_empty(),
            Value::Dict(d) => !d.is_empty(),
        }
    }

    /// Python's `==`.
    pub fn py_eq(&self, other: &Value) -> bool {
        if let (Some(a), Some(b)) = (self.numeric(), other.numeric()) {
            return a.eq(&b);
        }
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Tuple(a), Value::Tuple(b)) | (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y))
            }
            (Value::Set(a), Value::Set(b)) => {
                a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| x.py_eq(y)))
            }
            (Value::Dict(a), Value::Dict(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(k).map(|w| v.py_eq(w)).unwrap_or(false))
            }
            _ => false,
        }
    }

    /// A hash consistent with [`Value::py_eq`], or an error for unhashable values
    /// (list, dict, set), as Python raises `TypeError: unhashable type`.
    pub fn py_hash(&self) -> Result<u64> {
        let mut h = DefaultHasher::new();
        self.hash_into(&mut h)?;
        Ok(h.finish())
    }

    fn hash_into(&self, h: &mut DefaultHasher) -> Result<()> {
        if let Some(n) = self.numeric() {
            n.hash_into(h);
            return Ok(());
        }
        match self {
            Value::None => 0u8.hash(h),
            Value::Str(s) => {
                1u8.hash(h);
                s.hash(h)
            }
            Value::Bytes(b) => {
                2u8.hash(h);
                b.hash(h)
            }
            Value::Tuple(items) => {
                3u8.hash(h);
                items.len().hash(h);
                for it in items {
                    it.hash_into(h)?;
                }
            }
            Value::List(_) => return Err(Error::Unhashable("list")),
            Value::Dict(_) => return Err(Error::Unhashable("dict")),
            Value::Set(_) => return Err(Error::Unhashable("set")),
            _ => unreachable!("numbers handled above"),
        }
        Ok(())
    }

    fn numeric(&self) -> Option<Num<'_>> {
        Some(match self {
            Value::Bool(b) => Num::Int(*b as i64),
            Value::Int(i) => Num::Int(*i),
            Value::BigInt(b) => Num::Big(b),
            Value::Float(f) => Num::Float(*f),
            Value::Complex(r, i) => Num::Complex(*r, *i),
            _ => return None,
        })
    }
}

/// Numbers, for Python's cross-type numeric equality and hashing.
enum Num<'a> {
    Int(i64),
    Big(&'a BigInt),
    Float(f64),
    Complex(f64, f64),
}

impl Num<'_> {
    /// (real, imag) as exact-ish parts; ints beyond f64 precision compare exactly below.
    fn eq(&self, other: &Num<'_>) -> bool {
        use Num::*;
        match (self, other) {
            (Int(a), Int(b)) => a == b,
            (Big(a), Big(b)) => a == b,
            (Int(_), Big(_)) | (Big(_), Int(_)) => false, // BigInt is normalised
            (Float(a), Float(b)) => a == b,
            (Int(i), Float(f)) | (Float(f), Int(i)) => int_eq_float(&BigInt::from(*i), *f),
            (Big(b), Float(f)) | (Float(f), Big(b)) => int_eq_float(b, *f),
            (Complex(r, i), Complex(r2, i2)) => r == r2 && i == i2,
            (Complex(r, i), other) | (other, Complex(r, i)) => *i == 0.0 && other.eq(&Float(*r)),
        }
    }

    fn hash_into(&self, h: &mut DefaultHasher) {
        // Integral values hash as integers so that 1, 1.0, True and 1+0j collide.
        match self {
            Num::Int(i) => {
                10u8.hash(h);
                i.hash(h)
            }
            Num::Big(b) => {
                11u8.hash(h);
                b.hash(h)
            }
            Num::Float(f) => hash_float(*f, h),
            Num::Complex(r, i) => {
                if *i == 0.0 {
                    hash_float(*r, h)
                } else {
                    12u8.hash(h);
                    r.to_bits().hash(h);
                    i.to_bits().hash(h);
                }
            }
        }
    }
}

fn hash_float(f: f64, h: &mut DefaultHasher) {
    if f.is_finite() && f.fract() == 0.0 {
        let b = BigInt::from_float(f);
        match b.to_i64() {
            Some(i) => {
                10u8.hash(h);
                i.hash(h)
            }
            None => {
                11u8.hash(h);
                b.hash(h)
            }
        }
    } else {
        13u8.hash(h);
        f.to_bits().hash(h);
    }
}

trait FromFloat {
    fn from_float(f: f64) -> BigInt;
}
impl FromFloat for BigInt {
    fn from_float(f: f64) -> BigInt {
        num_traits::FromPrimitive::from_f64(f).unwrap_or_default()
    }
}

fn int_eq_float(i: &BigInt, f: f64) -> bool {
    f.is_finite() && f.fract() == 0.0 && BigInt::from_float(f) == *i
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::BigInt(a), Value::BigInt(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Complex(a, b), Value::Complex(c, d)) => {
                a.to_bits() == c.to_bits() && b.to_bits() == d.to_bits()
            }
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Tuple(a), Value::Tuple(b))
            | (Value::List(a), Value::List(b))
            | (Value::Set(a), Value::Set(b)) => a == b,
            (Value::Dict(a), Value::Dict(b)) => a == b,
            _ => false,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Value {
        Value::Int(i as i64)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}
impl From<Dict> for Value {
    fn from(d: Dict) -> Value {
        Value::Dict(d)
    }
}

/// An insertion-ordered dict with Python key semantics: inserting a key equal (by
/// [`Value::py_eq`]) to an existing one keeps the first key and replaces the value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dict {
    entries: Vec<(Value, Value)>,
}

/// Above this many entries, bulk construction deduplicates with a hash index instead of
/// pairwise comparison (so hostile input cannot make building a dict quadratic).
const LINEAR_LIMIT: usize = 16;

impl Dict {
    /// An empty dict.
    pub fn new() -> Dict {
        Dict::default()
    }

    /// Build from pairs, deduplicating keys the Python way; errors on unhashable keys.
    pub fn from_pairs(pairs: Vec<(Value, Value)>) -> Result<Dict> {
        let mut d = Dict {
            entries: Vec::with_capacity(pairs.len()),
        };
        if pairs.len() <= LINEAR_LIMIT {
            for (k, v) in pairs {
                k.py_hash()?;
                d.insert_unchecked(k, v);
            }
            return Ok(d);
        }
        let mut index: HashMap<u64, Vec<usize>> = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            let h = k.py_hash()?;
            let slots = index.entry(h).or_default();
            if let Some(&i) = slots.iter().find(|&&i| d.entries[i].0.py_eq(&k)) {
                d.entries[i].1 = v;
            } else {
                slots.push(d.entries.len());
                d.entries.push((k, v));
            }
        }
        Ok(d)
    }

    /// Build from pairs whose keys are known to be distinct and hashable (no checks).
    pub fn from_unique_pairs(pairs: Vec<(Value, Value)>) -> Dict {
        Dict { entries: pairs }
    }

    /// Insert or replace; errors on an unhashable key.
    pub fn insert(&mut self, key: Value, value: Value) -> Result<()> {
        key.py_hash()?;
        self.insert_unchecked(key, value);
        Ok(())
    }

    fn insert_unchecked(&mut self, key: Value, value: Value) {
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| k.py_eq(&key)) {
            slot.1 = value;
        } else {
            self.entries.push((key, value));
        }
    }

    /// Insert under a str key (replacing an existing one).
    pub fn set(&mut self, key: &str, value: Value) {
        if let Some(slot) = self
            .entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(key))
        {
            slot.1 = value;
        } else {
            self.entries.push((Value::Str(key.to_string()), value));
        }
    }

    /// Value under a key equal to `key`.
    pub fn get(&self, key: &Value) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.py_eq(key))
            .map(|(_, v)| v)
    }

    /// Value under a str key.
    pub fn get_str(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Remove a str key, returning its value.
    pub fn remove_str(&mut self, key: &str) -> Option<Value> {
        let i = self
            .entries
            .iter()
            .position(|(k, _)| k.as_str() == Some(key))?;
        Some(self.entries.remove(i).1)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&Value, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The entries as a slice.
    pub fn entries(&self) -> &[(Value, Value)] {
        &self.entries
    }

    /// Take the entries.
    pub fn into_entries(self) -> Vec<(Value, Value)> {
        self.entries
    }
}

/// Deduplicate set elements the Python way (first occurrence kept); errors on
/// unhashable elements. Linear for small sets, hash-indexed for large ones.
pub fn dedup_set(items: Vec<Value>) -> Result<Vec<Value>> {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    if items.len() <= LINEAR_LIMIT {
        for it in items {
            it.py_hash()?;
            if !out.iter().any(|o| o.py_eq(&it)) {
                out.push(it);
            }
        }
        return Ok(out);
    }
    let mut index: HashMap<u64, Vec<usize>> = HashMap::with_capacity(items.len());
    for it in items {
        let h = it.py_hash()?;
        let slots = index.entry(h).or_default();
        if !slots.iter().any(|&i| out[i].py_eq(&it)) {
            slots.push(out.len());
            out.push(it);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_numeric_equality_dedups_keys() {
        let d = Dict::from_pairs(vec![
            (Value::Bool(true), Value::Int(1)),
            (Value::Int(1), Value::Int(2)),
            (Value::Float(1.0), Value::Int(3)),
        ])
        .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d.entries()[0], (Value::Bool(true), Value::Int(3)));
    }

    #[test]
    fn large_dict_dedup_uses_index() {
        let pairs: Vec<_> = (0..1000)
            .map(|i| (Value::Int(i % 500), Value::Int(i)))
            .collect();
        let d = Dict::from_pairs(pairs).unwrap();
        assert_eq!(d.len(), 500);
        assert_eq!(d.get(&Value::Float(3.0)), Some(&Value::Int(503)));
    }

    #[test]
    fn unhashable_keys_are_errors() {
        assert_eq!(
            Dict::from_pairs(vec![(Value::List(vec![]), Value::None)]),
            Err(Error::Unhashable("list"))
        );
        assert!(dedup_set(vec![Value::Dict(Dict::new())]).is_err());
    }

    #[test]
    fn structural_eq_is_bitwise_for_floats() {
        assert_eq!(Value::Float(f64::NAN), Value::Float(f64::NAN));
        assert_ne!(Value::Float(0.0), Value::Float(-0.0));
        assert!(Value::Float(0.0).py_eq(&Value::Float(-0.0)));
        assert!(!Value::Float(f64::NAN).py_eq(&Value::Float(f64::NAN)));
        assert!(Value::Int(2).py_eq(&Value::Complex(2.0, 0.0)));
        assert!(!Value::Tuple(vec![]).py_eq(&Value::List(vec![])));
    }
}
