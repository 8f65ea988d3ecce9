//! CPython marshal (format version 4), the subset Pyro sends: None, bools, ints (short
//! and long), floats, complex, bytes, str (all string codes), tuples, lists, dicts, sets,
//! frozensets and back-references.
//!
//! # Encoder and CPython's reference flags
//!
//! CPython 3.11 sets FLAG_REF (0x80) on an object when its reference count is above one
//! at the time of `marshal.dumps`, and writes `r` + index when it meets the same object a
//! second time. That depends on who else holds the object, so it is not a property of the
//! value. This encoder follows the rule for *fresh* values (built by a decoder, nothing
//! else holding them), which is what CPython does deterministically:
//!
//! - objects CPython keeps as shared singletons are flagged, and repeats become `r`
//!   references: small ints (-5..=256), the empty tuple, the empty str (which is also
//!   interned, so its code is `Z`), one-character Latin-1 strs, the empty bytes;
//! - set and frozenset elements are written sorted by their own marshal bytes (CPython
//!   3.11, bpo-37596) and each one is flagged (CPython's sort holds a second reference);
//! - everything else is written without the flag.
//!
//! A one-character ASCII str that the interpreter happened to intern (because some loaded
//! module uses it as an identifier) comes out of CPython as `Z` where we write `z`; both
//! load to the same value. [`to_vec_call`] adds the flags Pyro4's `dumpsCall` produces.
//!
//! # Decoder
//!
//! Back-references are resolved by re-reading the referenced object's bytes (the value
//! model has no sharing), within a work budget so that a chain of references cannot
//! blow up into exponential output. Lengths are checked against the remaining input
//! before anything is reserved; depth and big-int size are capped by [`DecodeLimits`].

use crate::value::dedup_set;
use crate::{DecodeLimits, Dict, Error, Result, Value};
use num_bigint::{BigInt, BigUint, Sign};
use std::collections::HashMap;

const CODEC: &str = "marshal";

/// CPython's MAX_MARSHAL_STACK_DEPTH: `marshal.dumps` refuses deeper values.
const MAX_ENCODE_DEPTH: usize = 2000;

/// Fixed part of the decode work budget (bytes read plus values built, counting the
/// re-reads that back-references cause). The budget grows with the input length.
const BUDGET_BASE: usize = 64 << 20;
/// Per input byte part of the decode work budget.
const BUDGET_PER_BYTE: usize = 32;

const FLAG_REF: u8 = 0x80;

/// Encode as CPython 3's `marshal.dumps` would.
pub fn to_vec(value: &Value) -> Result<Vec<u8>> {
    let mut e = Encoder::default();
    e.write(value, 0, false)?;
    Ok(e.out)
}

/// Encode Pyro4's call 4-tuple the way `MarshalSerializer.dumpsCall` comes out of
/// CPython 3.11: `(object, method, vargs-list, kwargs)` where the object id, the method
/// name, the vargs list and the kwargs dict carry FLAG_REF (they are also held by
/// `dumpsCall`'s local variables when `marshal.dumps` runs).
pub fn to_vec_call(
    object: &str,
    method: &str,
    args: &[Value],
    kwargs: Option<&Dict>,
) -> Result<Vec<u8>> {
    let mut e = Encoder::default();
    e.out.extend_from_slice(&[b')', 4]);
    e.write(&Value::Str(object.to_string()), 1, true)?;
    e.write(&Value::Str(method.to_string()), 1, true)?;
    // FLAG_REF registers the object under the next reference index.
    e.next_ref += 1;
    e.out.push(b'[' | FLAG_REF);
    e.len32(args.len())?;
    for a in args {
        e.write(a, 2, false)?;
    }
    match kwargs {
        None => e.out.push(b'N'),
        Some(d) => {
            e.next_ref += 1;
            e.out.push(b'{' | FLAG_REF);
            for (k, v) in d.iter() {
                e.write(k, 2, false)?;
                e.write(v, 2, false)?;
            }
            e.out.push(b'0');
        }
    }
    Ok(e.out)
}

/// Parse with default limits.
pub fn from_slice(bytes: &[u8]) -> Result<Value> {
    from_slice_with(bytes, &DecodeLimits::default())
}

/// Parse within `limits`.
pub fn from_slice_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Value> {
    let mut d = Decoder {
        s: bytes,
        pos: 0,
        limits: *limits,
        refs: Vec::new(),
        replay: 0,
        budget: BUDGET_BASE.saturating_add(bytes.len().saturating_mul(BUDGET_PER_BYTE)),
    };
    let v = d
        .read(0)?
        .ok_or_else(|| d.err_at("NULL object at top level", 0))?;
    // marshal.loads ignores trailing bytes; so do we.
    Ok(v)
}

// ---------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------

/// Objects CPython keeps as process-wide singletons (so they always have more than one
/// reference and get FLAG_REF / back-references).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Singleton {
    SmallInt(i64),
    EmptyTuple,
    EmptyStr,
    Latin1(char),
    EmptyBytes,
}

fn singleton(v: &Value) -> Option<Singleton> {
    match v {
        Value::Int(i) if (-5..=256).contains(i) => Some(Singleton::SmallInt(*i)),
        Value::Tuple(t) if t.is_empty() => Some(Singleton::EmptyTuple),
        Value::Str(s) if s.is_empty() => Some(Singleton::EmptyStr),
        Value::Str(s) => {
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(c), None) if (c as u32) < 256 => Some(Singleton::Latin1(c)),
                _ => None,
            }
        }
        Value::Bytes(b) if b.is_empty() => Some(Singleton::EmptyBytes),
        _ => None,
    }
}

#[derive(Default)]
struct Encoder {
    out: Vec<u8>,
    singletons: HashMap<Singleton, u32>,
    next_ref: u32,
}

impl Encoder {
    fn len32(&mut self, n: usize) -> Result<()> {
        let n =
            u32::try_from(n).map_err(|_| Error::Unencodable("marshal: object too large".into()))?;
        self.out.extend_from_slice(&n.to_le_bytes());
        Ok(())
    }

    /// Write one value. `force_ref` flags it even when it is not a singleton (an object
    /// CPython sees with a second reference).
    fn write(&mut self, v: &Value, depth: usize, force_ref: bool) -> Result<()> {
        if depth > MAX_ENCODE_DEPTH {
            return Err(Error::Unencodable(
                "object too deeply nested to marshal".into(),
            ));
        }
        match v {
            Value::None => {
                self.out.push(b'N');
                return Ok(());
            }
            Value::Bool(b) => {
                self.out.push(if *b { b'T' } else { b'F' });
                return Ok(());
            }
            _ => {}
        }
        let flag = if let Some(key) = singleton(v) {
            if let Some(&idx) = self.singletons.get(&key) {
                self.out.push(b'r');
                self.out.extend_from_slice(&idx.to_le_bytes());
                return Ok(());
            }
            self.singletons.insert(key, self.next_ref);
            self.next_ref += 1;
            FLAG_REF
        } else if force_ref {
            self.next_ref += 1;
            FLAG_REF
        } else {
            0
        };
        match v {
            Value::None | Value::Bool(_) => unreachable!("handled above"),
            Value::Int(i) => match i32::try_from(*i) {
                Ok(small) => {
                    self.out.push(b'i' | flag);
                    self.out.extend_from_slice(&small.to_le_bytes());
                }
                Err(_) => self.write_long(&BigInt::from(*i), flag)?,
            },
            Value::BigInt(b) => self.write_long(b, flag)?,
            Value::Float(f) => {
                self.out.push(b'g' | flag);
                self.out.extend_from_slice(&f.to_le_bytes());
            }
            Value::Complex(r, i) => {
                self.out.push(b'y' | flag);
                self.out.extend_from_slice(&r.to_le_bytes());
                self.out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Str(s) => {
                if s.is_ascii() {
                    if s.is_empty() {
                        // The empty str is interned in CPython: TYPE_SHORT_ASCII_INTERNED.
                        self.out.push(b'Z' | flag);
                        self.out.push(0);
                    } else if s.len() < 256 {
                        self.out.push(b'z' | flag);
                        self.out.push(s.len() as u8);
                    } else {
                        self.out.push(b'a' | flag);
                        self.len32(s.len())?;
                    }
                } else {
                    self.out.push(b'u' | flag);
                    self.len32(s.len())?;
                }
                self.out.extend_from_slice(s.as_bytes());
            }
            Value::Bytes(b) => {
                self.out.push(b's' | flag);
                self.len32(b.len())?;
                self.out.extend_from_slice(b);
            }
            Value::Tuple(items) => {
                if items.len() < 256 {
                    self.out.push(b')' | flag);
                    self.out.push(items.len() as u8);
                } else {
                    self.out.push(b'(' | flag);
                    self.len32(items.len())?;
                }
                for it in items {
                    self.write(it, depth + 1, false)?;
                }
            }
            Value::List(items) => {
                self.out.push(b'[' | flag);
                self.len32(items.len())?;
                for it in items {
                    self.write(it, depth + 1, false)?;
                }
            }
            Value::Dict(d) => {
                self.out.push(b'{' | flag);
                for (k, val) in d.iter() {
                    self.write(k, depth + 1, false)?;
                    self.write(val, depth + 1, false)?;
                }
                self.out.push(b'0');
            }
            Value::Set(items) => {
                self.out.push(b'<' | flag);
                self.len32(items.len())?;
                // CPython 3.11 writes set elements in the order of sorted(v, key=marshal.dumps)
                // and, because the sort keeps a second reference, flags every element.
                let mut keyed = Vec::with_capacity(items.len());
                for it in items {
                    let mut sub = Encoder::default();
                    sub.write(it, depth + 1, false)?;
                    keyed.push((sub.out, it));
                }
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                for (_, it) in keyed {
                    self.write(it, depth + 1, true)?;
                }
            }
        }
        Ok(())
    }

    /// TYPE_LONG: signed count of 15-bit digits, then the digits as u16 LE, least
    /// significant first.
    fn write_long(&mut self, b: &BigInt, flag: u8) -> Result<()> {
        let digits = to_15bit_digits(b.magnitude());
        let n = i32::try_from(digits.len())
            .map_err(|_| Error::Unencodable("marshal: int too large".into()))?;
        self.out.push(b'l' | flag);
        let signed = if b.sign() == Sign::Minus { -n } else { n };
        self.out.extend_from_slice(&signed.to_le_bytes());
        for d in digits {
            self.out.extend_from_slice(&d.to_le_bytes());
        }
        Ok(())
    }
}

fn to_15bit_digits(m: &BigUint) -> Vec<u16> {
    let mut out = Vec::new();
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for word in m.iter_u32_digits() {
        acc |= (word as u64) << bits;
        bits += 32;
        while bits >= 15 {
            out.push((acc & 0x7fff) as u16);
            acc >>= 15;
            bits -= 15;
        }
    }
    if bits > 0 {
        out.push((acc & 0x7fff) as u16);
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    out
}

// ---------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Slot {
    /// A container whose contents are still being read (a reference to it is a cycle).
    Pending,
    /// Completed object starting at this byte offset.
    Done(usize),
}

struct Decoder<'a> {
    s: &'a [u8],
    pos: usize,
    limits: DecodeLimits,
    refs: Vec<Slot>,
    /// > 0 while re-reading a referenced object: do not register objects again.
    replay: usize,
    budget: usize,
}

impl Decoder<'_> {
    fn err_at(&self, message: &str, offset: usize) -> Error {
        Error::Syntax {
            codec: CODEC,
            message: message.to_string(),
            offset,
        }
    }

    fn spend(&mut self, units: usize) -> Result<()> {
        match self.budget.checked_sub(units) {
            Some(b) => {
                self.budget = b;
                Ok(())
            }
            None => Err(self.err_at("back-references expand beyond the decode budget", self.pos)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.s.len() - self.pos < n {
            return Err(Error::Eof { codec: CODEC });
        }
        let start = self.pos;
        self.pos += n;
        self.spend(n)?;
        Ok(&self.s[start..start + n])
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    /// A u32 length (CPython reads it as a signed long and rejects negatives), checked
    /// against what is left of the input (each item needs at least `min_item` bytes).
    fn len32(&mut self, min_item: usize) -> Result<usize> {
        let at = self.pos;
        let n = self.i32()?;
        if n < 0 {
            return Err(self.err_at("bad marshal data (size out of range)", at));
        }
        let n = n as usize;
        if n.saturating_mul(min_item) > self.s.len() - self.pos {
            return Err(Error::Eof { codec: CODEC });
        }
        Ok(n)
    }

    fn register(&mut self, flag: bool) -> Option<usize> {
        if flag && self.replay == 0 {
            self.refs.push(Slot::Pending);
            Some(self.refs.len() - 1)
        } else {
            None
        }
    }

    fn complete(&mut self, slot: Option<usize>, start: usize) {
        if let Some(i) = slot {
            self.refs[i] = Slot::Done(start);
        }
    }

    /// One object; Ok(None) is TYPE_NULL ('0'), which only ends a dict.
    fn read(&mut self, depth: usize) -> Result<Option<Value>> {
        if depth > self.limits.max_depth {
            return Err(Error::TooDeep {
                codec: CODEC,
                limit: self.limits.max_depth,
                offset: self.pos,
            });
        }
        let start = self.pos;
        let code = self.u8()?;
        self.spend(1)?;
        let flag = code & FLAG_REF != 0;
        let ty = code & !FLAG_REF;
        // Scalars register after they are read, containers before their contents (as
        // CPython's r_ref_reserve / R_REF do), so the indices match CPython's.
        let slot = match ty {
            b'i' | b'l' | b'g' | b'y' | b's' | b'a' | b'A' | b'z' | b'Z' | b'u' | b't' | b'('
            | b')' | b'[' | b'{' | b'<' | b'>' => self.register(flag),
            _ => None,
        };
        let v = match ty {
            b'0' => return Ok(None),
            b'N' => Value::None,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' => Value::Int(self.i32()? as i64),
            b'l' => self.long(start)?,
            b'g' => Value::Float(self.f64()?),
            b'y' => {
                let r = self.f64()?;
                Value::Complex(r, self.f64()?)
            }
            b's' => {
                let n = self.len32(1)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            b'a' | b'A' | b'z' | b'Z' => {
                let n = if ty == b'z' || ty == b'Z' {
                    self.u8()? as usize
                } else {
                    self.len32(1)?
                };
                // CPython builds these as 1-byte-kind (Latin-1) strings without checking
                // that they are ASCII.
                Value::Str(self.take(n)?.iter().map(|&b| b as char).collect())
            }
            b'u' | b't' => {
                let n = self.len32(1)?;
                let at = self.pos;
                let raw = self.take(n)?;
                match std::str::from_utf8(raw) {
                    Ok(s) => Value::Str(s.to_string()),
                    // CPython accepts surrogates (surrogatepass); a Rust String cannot hold them.
                    Err(e) => return Err(self.err_at("invalid UTF-8 in str", at + e.valid_up_to())),
                }
            }
            b')' | b'(' => {
                let n = if ty == b')' {
                    self.u8()? as usize
                } else {
                    self.len32(1)?
                };
                Value::Tuple(self.items(n, depth)?)
            }
            b'[' => {
                let n = self.len32(1)?;
                Value::List(self.items(n, depth)?)
            }
            b'<' | b'>' => {
                let n = self.len32(1)?;
                let items = self.items(n, depth)?;
                Value::Set(dedup_set(items)?)
            }
            b'{' => {
                let mut pairs = Vec::new();
                // A NULL key ends the dict.
                while let Some(k) = self.read(depth + 1)? {
                    // CPython also stops (dropping the key) when a value is NULL.
                    let Some(v) = self.read(depth + 1)? else {
                        break;
                    };
                    pairs.push((k, v));
                }
                Value::Dict(Dict::from_pairs(pairs)?)
            }
            b'r' => return self.reference(start, depth).map(Some),
            b'.' => return Err(self.err_at("Ellipsis is not supported", start)),
            b'S' => return Err(self.err_at("StopIteration is not supported", start)),
            b'c' => return Err(self.err_at("code objects are not supported", start)),
            _ => return Err(self.err_at("bad marshal data (unknown type code)", start)),
        };
        self.complete(slot, start);
        Ok(Some(v))
    }

    fn items(&mut self, n: usize, depth: usize) -> Result<Vec<Value>> {
        // n was checked against the remaining input (>= 1 byte per item).
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            let at = self.pos;
            match self.read(depth + 1)? {
                Some(v) => items.push(v),
                None => return Err(self.err_at("NULL object in marshal data for sequence", at)),
            }
        }
        Ok(items)
    }

    fn long(&mut self, start: usize) -> Result<Value> {
        let n = self.i32()?;
        let count = n.unsigned_abs() as usize;
        // A value below 2**(15*count) has at most ceil(15*count*log10(2)) decimal digits.
        let max_count = (self.limits.max_int_digits as f64 / (15.0 * std::f64::consts::LOG10_2))
            .ceil() as usize
            + 1;
        if count > max_count {
            return Err(Error::IntTooLarge {
                codec: CODEC,
                limit: self.limits.max_int_digits,
                offset: start,
            });
        }
        let raw = self.take(count * 2)?;
        let mut words: Vec<u32> = Vec::with_capacity(count / 2 + 1);
        let mut acc: u64 = 0;
        let mut bits = 0u32;
        let mut last = 0u16;
        for ch in raw.chunks_exact(2) {
            let d = u16::from_le_bytes([ch[0], ch[1]]);
            if d > 0x7fff {
                return Err(self.err_at("bad marshal data (digit out of range in long)", start));
            }
            last = d;
            acc |= (d as u64) << bits;
            bits += 15;
            if bits >= 32 {
                words.push(acc as u32);
                acc >>= 32;
                bits -= 32;
            }
        }
        if bits > 0 {
            words.push(acc as u32);
        }
        if count > 0 && last == 0 {
            return Err(self.err_at("bad marshal data (unnormalized long data)", start));
        }
        let mag = BigUint::new(words);
        let sign = if n < 0 { Sign::Minus } else { Sign::Plus };
        Ok(Value::from_bigint(BigInt::from_biguint(sign, mag)))
    }

    fn reference(&mut self, start: usize, depth: usize) -> Result<Value> {
        let idx = self.i32()?;
        let slot = usize::try_from(idx)
            .ok()
            .and_then(|i| self.refs.get(i).copied());
        match slot {
            Some(Slot::Done(at)) => {
                // Re-read the referenced object in place of the reference.
                let resume = self.pos;
                self.pos = at;
                self.replay += 1;
                let v = self.read(depth);
                self.replay -= 1;
                self.pos = resume;
                v?.ok_or_else(|| self.err_at("bad marshal data (invalid reference)", start))
            }
            Some(Slot::Pending) => Err(self.err_at(
                "recursive reference to an unfinished container is not supported",
                start,
            )),
            None => Err(self.err_at("bad marshal data (invalid reference)", start)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_bit_digits() {
        let b: BigInt = BigInt::from(1u64 << 40);
        assert_eq!(to_15bit_digits(b.magnitude()), vec![0, 0, 1024]);
        assert_eq!(
            to_vec(&Value::from_bigint(b)).unwrap(),
            b"l\x03\x00\x00\x00\x00\x00\x00\x00\x00\x04"
        );
    }

    #[test]
    fn reference_chain_is_bounded() {
        // Index 0: 1 MiB of bytes; level i: [r(i-1), r(i-1)], doubling the output.
        let mut buf = vec![b')', 60, b's' | FLAG_REF];
        buf.extend_from_slice(&(1u32 << 20).to_le_bytes());
        buf.extend(std::iter::repeat(b'x').take(1 << 20));
        for i in 1..60u32 {
            buf.push(b'[' | FLAG_REF);
            buf.extend_from_slice(&2u32.to_le_bytes());
            for _ in 0..2 {
                buf.push(b'r');
                buf.extend_from_slice(&(i - 1).to_le_bytes());
            }
        }
        assert!(matches!(from_slice(&buf), Err(Error::Syntax { .. })));
    }

    #[test]
    fn self_reference_is_an_error() {
        let buf = [b'[' | FLAG_REF, 1, 0, 0, 0, b'r', 0, 0, 0, 0];
        assert!(from_slice(&buf).is_err());
    }
}
