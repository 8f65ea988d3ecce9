//! The serpent encoder: one pass over a [`Value`] into one growing byte buffer.
//!
//! Mirrors serpent 1.43 `Serializer._serialize` and the `ser_builtins_*` methods for the
//! types the value model holds, including Python's `repr` of str, bytes, int and float,
//! serpent's level cap (`maximum_level` 200), its dict-key type check and indent mode's
//! `sorted()` with the silent fallback to the original order.

use super::unicode_table::NON_PRINTABLE;
use super::{EncodeOptions, HEADER, MAX_LEVEL};
use crate::{Dict, Error, Result, Value};
use num_bigint::BigInt;
use num_traits::{FromPrimitive, Signed};
use std::cmp::Ordering;

/// CPython (>= 3.11 and the security releases) refuses `repr()` of an int with more
/// decimal digits than this (`sys.get_int_max_str_digits()` default), so serpent does too.
const MAX_INT_DIGITS: usize = 4300;

/// Encode `value` with the serpent header into `out` (appending; `out` is left as it was
/// on error). Lets callers reuse one buffer across messages.
pub fn encode_into(value: &Value, options: &EncodeOptions, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(HEADER);
    let result = Encoder {
        out: &mut *out,
        indent: options.indent,
        bytes_repr: options.bytes_repr,
    }
    .value(value, 0);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    indent: bool,
    bytes_repr: bool,
}

fn too_deep() -> Error {
    // serpent: ValueError("Object graph nesting too deep. Increase serializer.maximum_level ...")
    Error::Unencodable(format!(
        "object graph nesting too deep (serpent maximum_level is {MAX_LEVEL})"
    ))
}

impl Encoder<'_> {
    fn value(&mut self, v: &Value, level: usize) -> Result<()> {
        // serpent checks the level before looking at the type, so even a scalar one level
        // too deep is refused.
        if level > MAX_LEVEL {
            return Err(too_deep());
        }
        match v {
            Value::None => self.out.extend_from_slice(b"None"),
            Value::Bool(true) => self.out.extend_from_slice(b"True"),
            Value::Bool(false) => self.out.extend_from_slice(b"False"),
            Value::Int(i) => write_i64(self.out, *i),
            Value::BigInt(b) => write_bigint(self.out, b)?,
            Value::Float(f) => write_float(self.out, *f),
            Value::Complex(re, im) => write_complex(self.out, *re, *im),
            Value::Str(s) => write_str_repr(self.out, s),
            Value::Bytes(b) => {
                if self.bytes_repr {
                    write_bytes_repr(self.out, b)
                } else {
                    write_bytes_b64(self.out, b)
                }
            }
            Value::Tuple(items) => self.tuple(items, level)?,
            Value::List(items) => self.list(items, level)?,
            Value::Set(items) => self.set(items, level)?,
            Value::Dict(d) => self.dict(d, level)?,
        }
        Ok(())
    }

    fn pad(&mut self, level: usize) {
        let n = self.out.len() + 2 * level;
        self.out.resize(n, b' ');
    }

    /// `ser_builtins_tuple`: `()`, `(x,)`, `(a,b)`; indent mode keeps the one-tuple comma.
    fn tuple(&mut self, items: &[Value], level: usize) -> Result<()> {
        if self.indent && !items.is_empty() {
            self.out.extend_from_slice(b"(\n");
            for it in items {
                self.pad(level + 1);
                self.value(it, level + 1)?;
                self.out.extend_from_slice(b",\n");
            }
            // serpent rstrips the last ",\n" to "," and drops it for more than one item.
            self.out.truncate(self.out.len() - 2);
            if items.len() == 1 {
                self.out.push(b',');
            }
            self.out.push(b'\n');
            self.pad(level);
            self.out.push(b')');
        } else {
            self.out.push(b'(');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                self.value(it, level + 1)?;
            }
            if items.len() == 1 {
                self.out.push(b',');
            }
            self.out.push(b')');
        }
        Ok(())
    }

    /// `ser_builtins_list`.
    fn list(&mut self, items: &[Value], level: usize) -> Result<()> {
        if self.indent && !items.is_empty() {
            self.out.extend_from_slice(b"[\n");
            for it in items {
                self.pad(level + 1);
                self.value(it, level + 1)?;
                self.out.extend_from_slice(b",\n");
            }
            self.close_indented(level, b']');
        } else {
            self.out.push(b'[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                self.value(it, level + 1)?;
            }
            self.out.push(b']');
        }
        Ok(())
    }

    fn close_indented(&mut self, level: usize, close: u8) {
        self.out.truncate(self.out.len() - 2); // the last ",\n"
        self.out.push(b'\n');
        self.pad(level);
        self.out.push(close);
    }

    /// `ser_builtins_set`: the empty set is written as the empty tuple `()`.
    fn set(&mut self, items: &[Value], level: usize) -> Result<()> {
        if items.is_empty() {
            self.out.extend_from_slice(b"()");
            return Ok(());
        }
        if self.indent {
            let order = sorted_or_original(items.len(), |a, b| py_lt(&items[a], &items[b]));
            self.out.extend_from_slice(b"{\n");
            for i in order {
                self.pad(level + 1);
                check_key_type(&items[i])?;
                self.value(&items[i], level + 1)?;
                self.out.extend_from_slice(b",\n");
            }
            self.close_indented(level, b'}');
        } else {
            self.out.push(b'{');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                check_key_type(it)?;
                self.value(it, level + 1)?;
            }
            self.out.push(b'}');
        }
        Ok(())
    }

    /// `ser_builtins_dict`: insertion order, `k:v`; indent mode sorts the items.
    fn dict(&mut self, d: &Dict, level: usize) -> Result<()> {
        let entries = d.entries();
        if self.indent && !entries.is_empty() {
            // sorted(dict.items()) compares (key, value) tuples.
            let order = sorted_or_original(entries.len(), |a, b| {
                let (ka, va) = &entries[a];
                let (kb, vb) = &entries[b];
                seq_lt(&[ka, va], &[kb, vb])
            });
            self.out.extend_from_slice(b"{\n");
            for i in order {
                let (k, v) = &entries[i];
                self.pad(level + 1);
                check_key_type(k)?;
                self.value(k, level + 1)?;
                self.out.extend_from_slice(b": ");
                self.value(v, level + 1)?;
                self.out.extend_from_slice(b",\n");
            }
            self.close_indented(level, b'}');
        } else {
            self.out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                check_key_type(k)?;
                self.value(k, level + 1)?;
                self.out.push(b':');
                self.value(v, level + 1)?;
            }
            self.out.push(b'}');
        }
        Ok(())
    }
}

/// serpent's `_check_hashable_type`: dict keys and set elements must be bool, bytes, str,
/// tuple or a number; anything else (None, frozenset, ...) is a `TypeError` there.
fn check_key_type(v: &Value) -> Result<()> {
    match v {
        Value::Bool(_)
        | Value::Bytes(_)
        | Value::Str(_)
        | Value::Tuple(_)
        | Value::Int(_)
        | Value::BigInt(_)
        | Value::Float(_)
        | Value::Complex(..) => Ok(()),
        other => Err(Error::Unencodable(format!(
            "one of the keys in a dict or set is not of a primitive hashable type: {}",
            other.type_name()
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// Scalars: Python's repr().

/// `'0'` in every byte of a word: turns eight digit values into their ASCII text.
const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// The eight decimal digits of `n < 10^8` as byte values 0..=9 in one word, most
/// significant digit in the lowest byte (so the word's little-endian bytes read in order).
///
/// Divisions by constants in parallel lanes: `n` splits into two 4-digit halves (32-bit
/// lanes), each half into two 2-digit parts (16-bit lanes), each part into two digits
/// (8-bit lanes). `x * 10486 >> 20` is `x / 100` for `x < 10^4` and `x * 103 >> 10` is
/// `x / 10` for `x < 100`; no lane's product reaches into the next lane's kept bits.
#[inline]
fn digits8(n: u32) -> u64 {
    let merged = u64::from(n / 10_000) | (u64::from(n % 10_000) << 32);
    let hundreds = ((merged * 10_486) >> 20) & 0x0000_007F_0000_007F;
    let pairs = ((merged - 100 * hundreds) << 16) | hundreds;
    let tens = ((pairs * 103) >> 10) & 0x000F_000F_000F_000F;
    ((pairs - 10 * tens) << 8) | tens
}

/// Append the digits of `n < 10^8` without leading zeros (`0` for zero).
#[inline(always)]
fn write_u32_short(out: &mut Vec<u8>, n: u32) {
    let d = digits8(n);
    // Leading zero digits are the low zero bytes; zero itself keeps its last digit.
    let lead = (d.trailing_zeros() / 8).min(7);
    let end = out.len() + 8 - lead as usize;
    // Eight bytes in one fixed-size append (a store or two), cut back to the digits.
    out.extend_from_slice(&((d >> (8 * lead)) + ASCII_ZEROS).to_le_bytes());
    out.truncate(end);
}

/// Append exactly eight digits of `n < 10^8`, leading zeros included.
#[inline]
fn write_u32_8(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&(digits8(n) + ASCII_ZEROS).to_le_bytes());
}

/// `repr(int)` for an i64 (always inlined: list walkers write one per item).
#[inline(always)]
pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    // Most ints are small and non-negative: a few multiplies and one store, in a body
    // small enough to inline into the walkers.
    match u32::try_from(v) {
        Ok(n) if n < 100_000_000 => write_u32_short(out, n),
        _ => write_i64_long(out, v),
    }
}

/// [`write_i64`] for negative numbers and those of nine digits or more.
#[inline(never)]
fn write_i64_long(out: &mut Vec<u8>, v: i64) {
    const E8: u64 = 100_000_000;
    if v < 0 {
        out.push(b'-');
    }
    let n = v.unsigned_abs();
    // Each `as u32` below takes a value under 10^8.
    if n < E8 {
        write_u32_short(out, n as u32);
    } else if n < E8 * E8 {
        write_u32_short(out, (n / E8) as u32);
        write_u32_8(out, (n % E8) as u32);
    } else {
        let low = n % (E8 * E8);
        write_u32_short(out, (n / (E8 * E8)) as u32);
        write_u32_8(out, (low / E8) as u32);
        write_u32_8(out, (low % E8) as u32);
    }
}

/// `repr(int)` for a big int, refusing more than 4300 digits like CPython.
fn write_bigint(out: &mut Vec<u8>, b: &BigInt) -> Result<()> {
    let too_large = || {
        Error::Unencodable(format!(
            "Exceeds the limit ({MAX_INT_DIGITS} digits) for integer string conversion"
        ))
    };
    // A number of >= 14286 bits is >= 2^14285 > 10^4300: more than 4300 digits. Checking
    // first keeps a hostile huge int from costing a quadratic conversion.
    if b.bits() >= 14286 {
        return Err(too_large());
    }
    let s = b.to_str_radix(10);
    let digits = s.len() - usize::from(b.is_negative());
    if digits > MAX_INT_DIGITS {
        return Err(too_large());
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// `ser_builtins_float`: NaN as a class dict, infinities as `1e30000`, else `repr`.
pub(crate) fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"{'__class__':'float','value':'nan'}");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"1e30000" } else { b"-1e30000" });
    } else {
        write_float_repr(out, f);
    }
}

/// `ser_builtins_complex` (1.43): a NaN part gives a class dict; otherwise `(re+imj)` with
/// the `+` only when the imaginary part is non-negative with a clear sign bit.
pub(crate) fn write_complex(out: &mut Vec<u8>, re: f64, im: f64) {
    if re.is_nan() || im.is_nan() {
        out.extend_from_slice(b"{'__class__':'complex','real':");
        write_float(out, re);
        out.extend_from_slice(b",'imag':");
        write_float(out, im);
        out.push(b'}');
        return;
    }
    out.push(b'(');
    write_float(out, re);
    if im >= 0.0 && im.is_sign_positive() {
        out.push(b'+');
    }
    write_float(out, im);
    out.extend_from_slice(b"j)");
}

/// Python's `repr(float)` for a finite float: the shortest round-trip digits (what
/// CPython's `float_repr_style='short'` prints), laid out positionally when the decimal
/// exponent is in -4..16, else as `d.ddde+XX`.
pub(crate) fn write_float_repr(out: &mut Vec<u8>, f: f64) {
    // Fast path: integral values below 1e16 print as the integer plus ".0" (the digits
    // are exact, and Python uses positional notation up to exponent 15).
    if f.fract() == 0.0 && f.abs() < 1e16 && !(f == 0.0 && f.is_sign_negative()) {
        write_i64(out, f as i64);
        out.extend_from_slice(b".0");
        return;
    }
    let mut buf = zmij::Buffer::new();
    let text = buf.format_finite(f).as_bytes();
    // Python writes the shortest digits positionally when the first one's exponent is in
    // -4..=15, zmij when it is in -5..=15, both with a point for a value that is not
    // integral (those are written above). The shortest digits of a value in
    // [1e-4, 1e16) cannot round across either end (they would name the end's float), so
    // there zmij's text is Python's repr as it stands.
    if (1e-4..1e16).contains(&f.abs()) {
        out.extend_from_slice(text);
        return;
    }
    let (neg, digits, exp) = shortest_digits(text);
    lay_out_float(out, neg, digits.as_slice(), exp);
}

/// Significant digits of a float (at most 17 of them for an f64).
struct Digits {
    buf: [u8; 32],
    len: usize,
}

impl Digits {
    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Sign, significant digits (no leading or trailing zeros) and decimal exponent of the
/// first digit, from a float printed as `[-]ddd[.ddd][e[+-]dd]` in any layout.
fn shortest_digits(s: &[u8]) -> (bool, Digits, i32) {
    let (neg, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let epos = s
        .iter()
        .position(|&c| c == b'e' || c == b'E')
        .unwrap_or(s.len());
    let mut exp: i32 = 0;
    let mut exp_neg = false;
    for &c in s.get(epos + 1..).unwrap_or(&[]) {
        match c {
            b'-' => exp_neg = true,
            b'0'..=b'9' => exp = exp.saturating_mul(10).saturating_add(i32::from(c - b'0')),
            _ => {}
        }
    }
    if exp_neg {
        exp = -exp;
    }
    let mant = &s[..epos];
    let int_len = mant.iter().position(|&c| c == b'.').unwrap_or(mant.len());
    let mut d = Digits {
        buf: [0; 32],
        len: 0,
    };
    // Exponent of the first digit written, before leading zeros are dropped.
    let mut first_exp = exp.saturating_add(int_len as i32 - 1);
    for &c in mant.iter().filter(|&&c| c != b'.') {
        if d.len == 0 && c == b'0' {
            first_exp -= 1;
            continue;
        }
        if d.len < d.buf.len() {
            d.buf[d.len] = c;
            d.len += 1;
        }
    }
    while d.len > 0 && d.buf[d.len - 1] == b'0' {
        d.len -= 1;
    }
    if d.len == 0 {
        d.buf[0] = b'0';
        d.len = 1;
        first_exp = 0;
    }
    (neg, d, first_exp)
}

/// Python's layout of a float from its significant digits and decimal exponent.
fn lay_out_float(out: &mut Vec<u8>, neg: bool, digits: &[u8], exp: i32) {
    let n = digits.len();
    if neg {
        out.push(b'-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if n <= int_len {
                out.extend_from_slice(digits);
                out.resize(out.len() + (int_len - n), b'0');
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..int_len]);
                out.push(b'.');
                out.extend_from_slice(&digits[int_len..]);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-exp - 1) as usize, b'0');
            out.extend_from_slice(digits);
        }
    } else {
        out.push(digits[0]);
        if n > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        write_i64(out, i64::from(e));
    }
}

#[cfg(test)]
mod float_repr_tests {
    use super::*;
    use proptest::prelude::*;

    /// Digit count of Rust's own shortest `{:e}` output.
    fn rust_digits(f: f64) -> usize {
        shortest_digits(format!("{f:e}").as_bytes()).1.len
    }

    fn ours(f: f64) -> Vec<u8> {
        let mut out = Vec::new();
        write_float_repr(&mut out, f);
        out
    }

    /// The repr laid out from zmij's digits, without the positional shortcut.
    fn laid_out(f: f64) -> Vec<u8> {
        let mut buf = zmij::Buffer::new();
        let (neg, digits, exp) = shortest_digits(buf.format_finite(f).as_bytes());
        let mut out = Vec::new();
        lay_out_float(&mut out, neg, digits.as_slice(), exp);
        out
    }

    #[test]
    fn known_reprs() {
        for (f, text) in [
            (1234.5678, "1234.5678"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-0.0, "-0.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (9007199254740993.0, "9007199254740992.0"),
            (-2.5e-5, "-2.5e-05"),
            // -642124391318989.25, a tie between two shortest strings: CPython (and zmij)
            // pick the even digit, Rust's `{:e}` the odd one (...989.3).
            (
                f64::from_bits(14_051_864_232_899_128_938),
                "-642124391318989.2",
            ),
        ] {
            assert_eq!(String::from_utf8(ours(f)).unwrap(), text, "{f:e}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn shortest_and_round_trips(bits in any::<u64>()) {
            let f = f64::from_bits(bits);
            prop_assume!(f.is_finite());
            let text = String::from_utf8(ours(f)).unwrap();
            prop_assert_eq!(text.parse::<f64>().unwrap().to_bits(), f.to_bits(), "{}", text);
            let (_, digits, _) = shortest_digits(text.as_bytes());
            prop_assert_eq!(digits.len, rust_digits(f), "{}", text);
            prop_assert_eq!(text.as_bytes(), &laid_out(f)[..]);
        }

        #[test]
        fn positional_shortcut_matches_the_layout(m in 1u64..(1 << 53), e in -75i32..60) {
            // Mantissa times a power of two: every binade from ~1e-23 to ~1e34, so the
            // positional range and both of its edges are covered densely.
            let f = m as f64 * 2f64.powi(e);
            prop_assert_eq!(ours(f), laid_out(f), "{:e}", f);
            prop_assert_eq!(ours(-f), laid_out(-f), "{:e}", -f);
        }

        #[test]
        fn decimal_looking_floats_round_trip(m in 0i64..100_000_000, e in -30i32..30) {
            let f = m as f64 * 10f64.powi(e);
            prop_assume!(f.is_finite());
            let text = String::from_utf8(ours(f)).unwrap();
            prop_assert_eq!(text.parse::<f64>().unwrap().to_bits(), f.to_bits(), "{}", text);
            prop_assert_eq!(shortest_digits(text.as_bytes()).1.len, rust_digits(f), "{}", text);
        }
    }
}

/// Word-at-a-time byte tests (SWAR) for the parser's string-literal scanner and the
/// writer's short-text test.
pub(crate) mod swar {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// Non-zero when some byte of `w` is zero. Exact as a test for "any".
    #[inline]
    fn any_zero(w: u64) -> u64 {
        w.wrapping_sub(ONES) & !w & HIGHS
    }

    /// Non-zero when some byte of `w` is not plain in a `repr(str)`: a control byte, DEL,
    /// a non-ASCII byte, a backslash or either quote character.
    #[inline]
    fn repr_stop(w: u64) -> u64 {
        // Below 0x20, tested on the low seven bits (bytes >= 0x80 are caught by `w`).
        let low = w & !HIGHS;
        w & HIGHS
            | low.wrapping_sub(ONES * 0x20) & !low & HIGHS
            | any_zero(w ^ (ONES * 0x7f))
            | any_zero(w ^ (ONES * u64::from(b'\\')))
            | any_zero(w ^ (ONES * u64::from(b'\'')))
            | any_zero(w ^ (ONES * u64::from(b'"')))
    }

    /// True when every byte of `b` is printable ASCII other than a backslash or a quote:
    /// its `repr` is the text between single quotes. Tested a word at a time, with
    /// overlapping loads for the tail (a byte tested twice changes nothing), so no copy.
    #[inline]
    pub(crate) fn is_plain_repr_text(b: &[u8]) -> bool {
        let n = b.len();
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
        let half = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]));
        let stop = if n >= 8 {
            let mut stop = repr_stop(word(n - 8));
            let mut at = 0;
            while at + 8 < n {
                stop |= repr_stop(word(at));
                at += 8;
            }
            stop
        } else if n >= 4 {
            repr_stop(u64::from(half(0)) | u64::from(half(n - 4)) << 32)
        } else if n > 0 {
            // The first, middle and last byte, over plain padding.
            let three = u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16;
            repr_stop(three | (ONES * u64::from(b'a')) << 24)
        } else {
            0
        };
        stop == 0
    }

    /// Non-zero when some byte of `w` may end a plain run inside a string literal quoted
    /// with `quote`: `quote`, a backslash, a byte below 0x0e (`\n`, `\r` among them) and,
    /// in a bytes literal, a non-ASCII byte. Zero is exact, and so is the lowest flag.
    #[inline]
    pub(crate) fn literal_stop(w: u64, quote: u8, is_bytes: bool) -> u64 {
        let q = w ^ (ONES * u64::from(quote));
        let bs = w ^ (ONES * u64::from(b'\\'));
        let mut m = (q.wrapping_sub(ONES) & !q)
            | (bs.wrapping_sub(ONES) & !bs)
            | (w.wrapping_sub(ONES * 0x0e) & !w);
        if is_bytes {
            m |= w;
        }
        m & HIGHS
    }

    /// Non-zero when some byte of `w` is `quote`, a backslash or `\n`: what ends a plain
    /// run in a one-line str literal of input without `\r`. Zero is exact, and so is the
    /// lowest flag.
    #[inline]
    pub(crate) fn str_stop(w: u64, quote: u8) -> u64 {
        let q = w ^ (ONES * u64::from(quote));
        let bs = w ^ (ONES * u64::from(b'\\'));
        let nl = w ^ (ONES * u64::from(b'\n'));
        ((q.wrapping_sub(ONES) & !q)
            | (bs.wrapping_sub(ONES) & !bs)
            | (nl.wrapping_sub(ONES) & !nl))
            & HIGHS
    }

    /// Index of the byte of the lowest flag in a non-zero stop mask: the first stop byte
    /// (the masks' false alarms only ever sit above a real hit).
    #[inline]
    pub(crate) fn first(mask: u64) -> usize {
        (mask.trailing_zeros() / 8) as usize
    }

    /// Two words of a 16-byte block, little-endian.
    #[inline]
    pub(crate) fn words(block: &[u8; 16]) -> (u64, u64) {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&block[..8]);
        hi.copy_from_slice(&block[8..]);
        (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut Vec<u8>, v: u32, width: u32) {
    for shift in (0..width).rev() {
        out.push(HEX[((v >> (shift * 4)) & 0xf) as usize]);
    }
}

/// True when CPython's `str.isprintable()` holds for this non-ASCII code point.
pub(crate) fn is_printable_non_ascii(cp: u32) -> bool {
    NON_PRINTABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                Ordering::Less
            } else if lo > cp {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        })
        .is_err()
}

/// The quote Python's repr picks: `'` unless the text has `'` and no `"`.
fn pick_quote(b: &[u8]) -> u8 {
    // One pass without an early exit: the compiler turns it into vector compares.
    let (mut single, mut double) = (0u8, 0u8);
    for &c in b {
        single |= u8::from(c == b'\'');
        double |= u8::from(c == b'"');
    }
    if single != 0 && double == 0 {
        b'"'
    } else {
        b'\''
    }
}

/// The block of text [`write_str_repr`] tests at a time (and its unit of copying).
const BLOCK: usize = 32;

/// Bit `i` set when `block[i]` may stop a plain run of a `repr(str)`: a control byte, DEL,
/// a non-ASCII byte, a backslash or a quote character (either: the test stays the same
/// whichever quote the text gets, so its constants stay in registers).
///
/// The byte tests are one branch-free pass that the compiler turns into vector compares;
/// the resulting 0/1 bytes are then gathered eight at a time by one multiply (bit `8j` of
/// a word lands on bit `56 + j`, and no two partial products meet, so nothing carries).
#[inline]
fn repr_stops(block: &[u8; BLOCK]) -> u32 {
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let mut flags = [0u8; BLOCK];
    for (f, &c) in flags.iter_mut().zip(block) {
        // As i8, the bytes >= 0x80 are negative: one signed test covers them and the
        // controls below 0x20.
        *f = u8::from(((c as i8) < 0x20) | (c == 0x7f) | (c == b'\\') | (c == b'\'') | (c == b'"'));
    }
    let mut mask = 0u32;
    for k in 0..BLOCK / 8 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&flags[8 * k..8 * k + 8]);
        mask |= ((u64::from_le_bytes(w).wrapping_mul(GATHER) >> 56) as u32) << (8 * k);
    }
    mask
}

/// True when some byte of `block` may stop a plain run ([`repr_stops`] is non-zero): the
/// same tests reduced to one flag, which the compiler does with a byte-mask move, about
/// half the work of the full mask. Most blocks of most texts need nothing more.
#[inline]
fn any_repr_stop(block: &[u8; BLOCK]) -> bool {
    let mut any = false;
    for &c in block {
        any |= ((c as i8) < 0x20) | (c == 0x7f) | (c == b'\\') | (c == b'\'') | (c == b'"');
    }
    any
}

/// The first block start from `i` on (in steps of [`BLOCK`]) whose block may hold a stop,
/// or where fewer than [`BLOCK`] bytes are left. A loop of its own: the long plain
/// stretches of text pass through these few instructions only.
#[inline(never)]
fn skip_plain(b: &[u8], mut i: usize) -> usize {
    while let Some(c) = b.get(i..i + BLOCK) {
        if any_repr_stop(<&[u8; BLOCK]>::try_from(c).unwrap_or(&[0; BLOCK])) {
            break;
        }
        i += BLOCK;
    }
    i
}

/// Append `b[from..to]`. Short runs (the text between escapes) go as one fixed-size block
/// cut back to length, which compiles to a few vector moves where a slice of varying
/// length is a `memcpy` call; long runs, and the end of `b`, take the one call.
#[inline(always)]
fn copy_run(out: &mut Vec<u8>, b: &[u8], from: usize, to: usize) {
    const RUN: usize = 2 * BLOCK;
    match b.get(from..from + RUN) {
        Some(chunk) if to - from <= RUN => {
            let end = out.len() + (to - from);
            out.extend_from_slice(<&[u8; RUN]>::try_from(chunk).unwrap_or(&[0; RUN]));
            out.truncate(end);
        }
        _ => out.extend_from_slice(&b[from..to]),
    }
}

/// Python's `repr(str)` (CPython `unicode_repr`).
///
/// Python quotes with `'` unless the text has `'` and no `"`. Until the first quote
/// character the output is the same for either choice, so the text is written in one pass
/// with `'` and the opening quote is corrected when that first quote character decides.
///
/// The text is tested a block at a time for bytes that may need escaping; the plain runs
/// between them are copied whole.
#[inline]
pub(crate) fn write_str_repr(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    // Short plain text (dict keys, names), tested a word at a time: no quote choice to
    // make and nothing to escape, so it is copied between single quotes. Inlined into the
    // caller; everything else is out of line.
    if !write_plain_str_repr(out, b) {
        write_str_repr_general(out, b);
    }
}

/// The short plain case of [`write_str_repr`]: false (nothing written) for other text.
#[inline(always)]
pub(crate) fn write_plain_str_repr(out: &mut Vec<u8>, b: &[u8]) -> bool {
    let n = b.len();
    if n > BLOCK || !swar::is_plain_repr_text(b) {
        return false;
    }
    // Built in a fixed block and appended whole, then cut to length: the copies are
    // fixed-size moves (no memcpy call and one capacity check for a handful of bytes).
    // Overlapping pieces write the same bytes twice; the quote after the text is the
    // block's fill, which no piece reaches.
    let mut block = [b'\''; BLOCK + 2];
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            block[1 + at..9 + at].copy_from_slice(&b[at..at + 8]);
            at += 8;
        }
        block[n - 7..n + 1].copy_from_slice(&b[n - 8..]);
    } else if n >= 4 {
        block[1..5].copy_from_slice(&b[..4]);
        block[n - 3..n + 1].copy_from_slice(&b[n - 4..]);
    } else if n > 0 {
        block[1] = b[0];
        block[1 + n / 2] = b[n / 2];
        block[n] = b[n - 1];
    }
    let end = out.len() + n + 2;
    out.extend_from_slice(&block);
    out.truncate(end);
    true
}

/// [`write_str_repr`] for text that needs a quote choice, escapes or a long scan.
#[inline(never)]
fn write_str_repr_general(out: &mut Vec<u8>, b: &[u8]) {
    if b.len() >= 2 * BLOCK {
        if let Some(quote) = plain_text_quote(b) {
            write_text_repr(out, b, quote);
            return;
        }
    }
    // Room for some escapes too, so a long text with newlines is not copied twice.
    out.reserve(b.len() + b.len() / 16 + BLOCK + 2);
    let open = out.len();
    out.push(b'\'');
    let mut quote = None;
    // `b[run..]` is not written yet; `b[..next]` has been looked at (a multi-byte
    // character flags its continuation bytes too, which are then passed over).
    let (mut run, mut next) = (0, 0);
    let mut i = 0;
    while i < b.len() {
        i = skip_plain(b, i);
        let mut stops = match b.get(i..i + BLOCK) {
            Some(c) => repr_stops(<&[u8; BLOCK]>::try_from(c).unwrap_or(&[0; BLOCK])),
            None => {
                // The tail, padded with spaces (plain, so never a stop).
                let rest = &b[i..];
                let mut t = [b' '; BLOCK];
                t[..rest.len()].copy_from_slice(rest);
                repr_stops(&t)
            }
        };
        while stops != 0 {
            let at = i + stops.trailing_zeros() as usize;
            stops &= stops - 1;
            if at < next {
                continue;
            }
            let c = b[at];
            next = at + 1;
            let esc: [u8; 2] = match c {
                b'\\' => *b"\\\\",
                b'\t' => *b"\\t",
                b'\n' => *b"\\n",
                b'\r' => *b"\\r",
                b'\'' | b'"' => {
                    let q = *quote.get_or_insert_with(|| {
                        // The first quote character: a `"` anywhere means `'`, and nothing
                        // before this one was a `"`.
                        if c == b'\'' && !b[next..].contains(&b'"') {
                            out[open] = b'"';
                            b'"'
                        } else {
                            b'\''
                        }
                    });
                    if c != q {
                        continue; // the other quote character is plain
                    }
                    [b'\\', c]
                }
                0x80.. => {
                    // Valid UTF-8 (it is a &str): decode the scalar from its lead byte.
                    let (cp, len) = decode_utf8(b, at);
                    next = at + len;
                    if !is_printable_non_ascii(cp) {
                        copy_run(out, b, run, at);
                        run = next;
                        push_unicode_escape(out, cp);
                    }
                    continue;
                }
                _ => {
                    // Other controls and DEL.
                    copy_run(out, b, run, at);
                    run = next;
                    out.extend_from_slice(b"\\x");
                    push_hex(out, u32::from(c), 2);
                    continue;
                }
            };
            copy_run(out, b, run, at);
            run = next;
            out.extend_from_slice(&esc);
        }
        i += BLOCK;
    }
    copy_run(out, b, run, b.len());
    out.push(quote.unwrap_or(b'\''));
}

/// For text that is all printable ASCII and `\n`, the quote `repr` uses; `None` for any
/// other text. The range test is a max reduction without an early exit per byte (the
/// compiler turns it into vector instructions), the quote characters are memchr scans.
#[inline(never)]
fn plain_text_quote(b: &[u8]) -> Option<u8> {
    // 0x20..=0x7e maps to 0..=0x5e; a newline counts as plain.
    let class = |x: u8| x.wrapping_sub(0x20) & !(u8::from(x == b'\n').wrapping_neg());
    let mut chunks = b.chunks_exact(256);
    for c in &mut chunks {
        let mut hi = 0u8;
        for &x in c {
            hi = hi.max(class(x));
        }
        if hi > 0x5e {
            return None;
        }
    }
    if chunks.remainder().iter().any(|&x| class(x) > 0x5e) {
        return None;
    }
    let single = memchr::memchr(b'\'', b).is_some();
    Some(if single && memchr::memchr(b'"', b).is_none() {
        b'"'
    } else {
        b'\''
    })
}

/// `repr` of text that is printable ASCII and newlines (most long text): the only bytes
/// to escape are `\n`, the backslash and the chosen quote, and `memchr3` finds each.
fn write_text_repr(out: &mut Vec<u8>, b: &[u8], quote: u8) {
    out.reserve(b.len() + b.len() / 32 + 2);
    out.push(quote);
    let stops = super::Stops::new(quote, b'\\', b'\n');
    let mut run = 0;
    while let Some(k) = stops.find(&b[run..]) {
        let at = run + k;
        out.extend_from_slice(&b[run..at]);
        out.extend_from_slice(match b[at] {
            b'\n' => b"\\n",
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\'",
        });
        run = at + 1;
    }
    out.extend_from_slice(&b[run..]);
    out.push(quote);
}

/// `\xhh`, `\uhhhh` or `\Uhhhhhhhh` for a non-printable non-ASCII code point.
fn push_unicode_escape(out: &mut Vec<u8>, cp: u32) {
    if cp <= 0xFF {
        out.extend_from_slice(b"\\x");
        push_hex(out, cp, 2);
    } else if cp <= 0xFFFF {
        out.extend_from_slice(b"\\u");
        push_hex(out, cp, 4);
    } else {
        out.extend_from_slice(b"\\U");
        push_hex(out, cp, 8);
    }
}

/// The scalar value and length of the UTF-8 sequence at `b[at]` (a lead byte >= 0xC0 of
/// valid UTF-8).
#[inline]
fn decode_utf8(b: &[u8], at: usize) -> (u32, usize) {
    let c = b[at];
    let cont = |k: usize| u32::from(b[at + k] & 0x3F);
    if c < 0xE0 {
        ((u32::from(c & 0x1F) << 6) | cont(1), 2)
    } else if c < 0xF0 {
        ((u32::from(c & 0x0F) << 12) | (cont(1) << 6) | cont(2), 3)
    } else {
        (
            (u32::from(c & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3),
            4,
        )
    }
}

/// Python's `repr(bytes)` (serpent's `bytes_repr=True`).
pub(crate) fn write_bytes_repr(out: &mut Vec<u8>, b: &[u8]) {
    let quote = pick_quote(b);
    out.reserve(b.len() + 3);
    out.push(b'b');
    out.push(quote);
    for &c in b {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c if c == quote => {
                out.push(b'\\');
                out.push(c);
            }
            0x20..=0x7e => out.push(c),
            _ => {
                out.extend_from_slice(b"\\x");
                push_hex(out, u32::from(c), 2);
            }
        }
    }
    out.push(quote);
}

/// serpent's default bytes form: `repr({'data': b64, 'encoding': 'base64'})`, with the
/// spaces of Python's dict repr.
pub(crate) fn write_bytes_b64(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b"{'data': '");
    // SIMD where the CPU has it (checked at run time): a megabyte of bytes is the common
    // large payload, and the scalar encoder was a third of a client's work for it.
    base64_simd::STANDARD.encode_append(b, out);
    out.extend_from_slice(b"', 'encoding': 'base64'}");
}

// ---------------------------------------------------------------------------------------
// Python ordering for indent mode's sorted().

/// Python raised `TypeError` comparing two values.
#[derive(Debug, Clone, Copy)]
struct Incomparable;

/// Number view for ordering (bool counts as int; complex is unorderable).
enum OrdNum<'a> {
    Int(i64),
    Big(&'a BigInt),
    Float(f64),
}

fn ord_num(v: &Value) -> Option<OrdNum<'_>> {
    Some(match v {
        Value::Bool(b) => OrdNum::Int(i64::from(*b)),
        Value::Int(i) => OrdNum::Int(*i),
        Value::BigInt(b) => OrdNum::Big(b),
        Value::Float(f) => OrdNum::Float(*f),
        _ => return None,
    })
}

/// Exact comparison of an integer with a float, as CPython's `float_richcompare` does.
fn cmp_big_float(i: &BigInt, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f.is_infinite() {
        return Some(if f > 0.0 {
            Ordering::Less
        } else {
            Ordering::Greater
        });
    }
    let fl = f.floor();
    let fi = BigInt::from_f64(fl)?;
    Some(match i.cmp(&fi) {
        Ordering::Equal if f > fl => Ordering::Less,
        o => o,
    })
}

fn cmp_i64_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // |f| < 2^100 fits i128 exactly once floored; beyond that only the sign matters.
    const BOUND: f64 = 1.2676506002282294e30;
    if f >= BOUND {
        return Some(Ordering::Less);
    }
    if f <= -BOUND {
        return Some(Ordering::Greater);
    }
    let fl = f.floor();
    Some(match i128::from(i).cmp(&(fl as i128)) {
        Ordering::Equal if f > fl => Ordering::Less,
        o => o,
    })
}

fn cmp_num(a: &OrdNum<'_>, b: &OrdNum<'_>) -> Option<Ordering> {
    use OrdNum::*;
    match (a, b) {
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Big(x), Big(y)) => Some(x.cmp(y)),
        (Int(x), Big(y)) => Some(BigInt::from(*x).cmp(y)),
        (Big(x), Int(y)) => Some((*x).cmp(&BigInt::from(*y))),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Int(x), Float(y)) => cmp_i64_float(*x, *y),
        (Float(x), Int(y)) => cmp_i64_float(*y, *x).map(Ordering::reverse),
        (Big(x), Float(y)) => cmp_big_float(x, *y),
        (Float(x), Big(y)) => cmp_big_float(y, *x).map(Ordering::reverse),
    }
}

/// `PyObject_RichCompareBool(a, b, Py_EQ)`, with structural identity standing in for
/// CPython's identity shortcut.
fn same(a: &Value, b: &Value) -> bool {
    a == b || a.py_eq(b)
}

/// Python's `a < b`, or `Incomparable` where Python raises `TypeError`.
fn py_lt(a: &Value, b: &Value) -> Result<bool, Incomparable> {
    if let (Some(x), Some(y)) = (ord_num(a), ord_num(b)) {
        return Ok(cmp_num(&x, &y) == Some(Ordering::Less));
    }
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.as_bytes() < y.as_bytes()),
        (Value::Bytes(x), Value::Bytes(y)) => Ok(x < y),
        (Value::Tuple(x), Value::Tuple(y)) | (Value::List(x), Value::List(y)) => {
            let xs: Vec<&Value> = x.iter().collect();
            let ys: Vec<&Value> = y.iter().collect();
            seq_lt(&xs, &ys)
        }
        // Set `<` is "proper subset".
        (Value::Set(x), Value::Set(y)) => {
            Ok(x.len() < y.len() && x.iter().all(|e| y.iter().any(|f| e.py_eq(f))))
        }
        _ => Err(Incomparable),
    }
}

/// Lexicographic sequence `<` (CPython `tuplerichcompare`): first unequal item decides.
fn seq_lt(a: &[&Value], b: &[&Value]) -> Result<bool, Incomparable> {
    for (x, y) in a.iter().zip(b) {
        if !same(x, y) {
            return py_lt(x, y);
        }
    }
    Ok(a.len() < b.len())
}

/// The order in which Python's `sorted()` would yield `n` items compared with `lt`, or the
/// original order when it would raise `TypeError` (serpent's `except TypeError` fallback).
///
/// Follows CPython 3.11's `list.sort` (timsort) closely enough to perform the same
/// comparisons for fewer than 64 items (one run: `count_run` then binary insertion);
/// longer inputs merge runs without galloping, which gives the same result whenever the
/// ordering is consistent.
fn sorted_or_original(
    n: usize,
    lt: impl Fn(usize, usize) -> Result<bool, Incomparable>,
) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    match timsort(&mut idx, &lt) {
        Ok(()) => idx,
        Err(Incomparable) => (0..n).collect(),
    }
}

type Lt<'a> = &'a dyn Fn(usize, usize) -> Result<bool, Incomparable>;

fn timsort(v: &mut [usize], lt: Lt<'_>) -> Result<(), Incomparable> {
    let n = v.len();
    if n < 2 {
        return Ok(());
    }
    // merge_compute_minrun
    let minrun = {
        let (mut m, mut r) = (n, 0);
        while m >= 64 {
            r |= m & 1;
            m >>= 1;
        }
        m + r
    };
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut lo = 0;
    while lo < n {
        let (mut run, descending) = count_run(&v[lo..], lt)?;
        if descending {
            v[lo..lo + run].reverse();
        }
        if run < minrun {
            let force = minrun.min(n - lo);
            binary_insertion(&mut v[lo..lo + force], run, lt)?;
            run = force;
        }
        runs.push((lo, run));
        lo += run;
    }
    while runs.len() > 1 {
        let mut merged = Vec::with_capacity(runs.len().div_ceil(2));
        for pair in runs.chunks(2) {
            if let [(a, alen), (_, blen)] = *pair {
                merge(&mut v[a..a + alen + blen], alen, lt)?;
                merged.push((a, alen + blen));
            } else {
                merged.push(pair[0]);
            }
        }
        runs = merged;
    }
    Ok(())
}

/// CPython 3.11 `count_run`: a non-descending run, or a strictly descending one.
fn count_run(v: &[usize], lt: Lt<'_>) -> Result<(usize, bool), Incomparable> {
    if v.len() == 1 {
        return Ok((1, false));
    }
    let mut k = 2;
    if lt(v[1], v[0])? {
        while k < v.len() && lt(v[k], v[k - 1])? {
            k += 1;
        }
        Ok((k, true))
    } else {
        while k < v.len() && !lt(v[k], v[k - 1])? {
            k += 1;
        }
        Ok((k, false))
    }
}

/// CPython `binarysort`: `v[..start]` is sorted; insert the rest one by one.
fn binary_insertion(v: &mut [usize], start: usize, lt: Lt<'_>) -> Result<(), Incomparable> {
    for i in start..v.len() {
        let pivot = v[i];
        let (mut l, mut r) = (0, i);
        while l < r {
            let p = l + ((r - l) >> 1);
            if lt(pivot, v[p])? {
                r = p;
            } else {
                l = p + 1;
            }
        }
        v[l..=i].rotate_right(1);
    }
    Ok(())
}

/// Stable merge of the sorted halves `v[..mid]` and `v[mid..]`.
fn merge(v: &mut [usize], mid: usize, lt: Lt<'_>) -> Result<(), Incomparable> {
    let left: Vec<usize> = v[..mid].to_vec();
    let right: Vec<usize> = v[mid..].to_vec();
    let (mut i, mut j, mut k) = (0, 0, 0);
    while i < left.len() && j < right.len() {
        if lt(right[j], left[i])? {
            v[k] = right[j];
            j += 1;
        } else {
            v[k] = left[i];
            i += 1;
        }
        k += 1;
    }
    for &x in &left[i..] {
        v[k] = x;
        k += 1;
    }
    for &x in &right[j..] {
        v[k] = x;
        k += 1;
    }
    Ok(())
}

#[cfg(test)]
mod swar_repr_tests {
    use super::swar::is_plain_repr_text;

    /// A byte a str repr copies unchanged whichever quote it picks.
    fn plain(c: u8) -> bool {
        (0x20..0x7f).contains(&c) && !matches!(c, b'\\' | b'\'' | b'"')
    }

    #[test]
    fn short_plain_text_is_quoted_as_is() {
        let text: Vec<u8> = (b'A'..=b'z').filter(|c| *c != b'\\').collect();
        for n in 0..=40 {
            let b = &text[..n.min(text.len())];
            let mut out = b"<".to_vec();
            let written = super::write_plain_str_repr(&mut out, b);
            assert_eq!(written, b.len() <= 32, "{n}");
            let mut want = b"<".to_vec();
            if written {
                want.push(b'\'');
                want.extend_from_slice(b);
                want.push(b'\'');
            }
            assert_eq!(out, want, "{n}");
        }
    }

    #[test]
    fn every_byte_at_every_position() {
        for len in 0..=32 {
            for at in 0..len {
                for c in 0..=255u8 {
                    let mut text = vec![b'x'; len];
                    text[at] = c;
                    assert_eq!(
                        is_plain_repr_text(&text),
                        plain(c),
                        "byte {c:#x} at {at} of {len}"
                    );
                }
            }
        }
        // Neighbours that borrow from each other in the word arithmetic.
        for (a, b) in [
            (0x20, 0x1f),
            (0x00, 0x7f),
            (0x80, 0x20),
            (0x21, 0x22),
            (0x7e, 0x7f),
        ] {
            for at in 0..15 {
                let mut text = vec![b'x'; 16];
                text[at] = a;
                text[at + 1] = b;
                assert_eq!(
                    is_plain_repr_text(&text),
                    plain(a) && plain(b),
                    "{a:#x} {b:#x} at {at}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(f: f64) -> String {
        let mut v = Vec::new();
        write_float_repr(&mut v, f);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn float_repr_layout() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e22, "1e+22"),
            (1.5e-7, "1.5e-07"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (123.456, "123.456"),
            (1.2345678901234568e16, "1.2345678901234568e+16"),
        ] {
            assert_eq!(float(f), s, "{f:e}");
        }
    }

    /// The block stop mask of `repr(str)` is the byte-wise definition, for every byte value
    /// at every position.
    #[test]
    fn repr_stops_match_bytewise() {
        for pos in 0..BLOCK {
            for c in 0..=255u8 {
                let mut block = *b"abcdefghijklmnopqrstuvwxyz 01234";
                block[pos] = c;
                let expect = block.iter().enumerate().fold(0u32, |m, (i, &x)| {
                    let stop = !(0x20..0x7f).contains(&x) || matches!(x, b'\\' | b'\'' | b'"');
                    m | (u32::from(stop) << i)
                });
                assert_eq!(repr_stops(&block), expect, "{c:#x} at {pos}");
                assert_eq!(any_repr_stop(&block), expect != 0, "{c:#x} at {pos}");
            }
        }
    }

    /// The word stop tests and the quote choice agree with the byte-wise definitions for
    /// every byte value at every position (zero must be exact).
    #[test]
    fn block_tests_match_bytewise() {
        for pos in 0..8 {
            for c in 0..=255u8 {
                let mut w = *b"abcdefgh";
                w[pos] = c;
                let word = u64::from_le_bytes(w);
                for quote in [b'\'', b'"'] {
                    for is_bytes in [false, true] {
                        let stop = w.iter().any(|&x| {
                            x == quote || x == b'\\' || x < 0x0e || (is_bytes && x >= 0x80)
                        });
                        let got = swar::literal_stop(word, quote, is_bytes);
                        assert_eq!(got != 0, stop, "{c:#x} at {pos} bytes={is_bytes}");
                        let first = w.iter().position(|&x| {
                            x == quote || x == b'\\' || x < 0x0e || (is_bytes && x >= 0x80)
                        });
                        if let Some(first) = first {
                            assert_eq!(swar::first(got), first, "{c:#x} at {pos}");
                        }
                    }
                }
            }
        }
        for len in [0, 1, 31, 32, 33, 64, 70] {
            for at in 0..len {
                for (q, other) in [(b'\'', b'"'), (b'"', b'\'')] {
                    let mut text = vec![b'x'; len];
                    text[at] = q;
                    let expect = if q == b'\'' { b'"' } else { b'\'' };
                    assert_eq!(pick_quote(&text), expect, "{len} {at}");
                    text[len - 1 - at] = other;
                    if len - 1 - at != at {
                        assert_eq!(pick_quote(&text), b'\'', "{len} {at} both");
                    }
                }
            }
        }
    }

    /// Long strings take the word path; escapes at every offset still come out right.
    #[test]
    fn str_repr_escapes_at_every_offset() {
        for pos in 0..40 {
            for esc in ['\n', '\\', '\'', '\x7f', '\u{e9}', '\u{2028}'] {
                let mut s: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCD".into();
                s.replace_range(pos..pos + 1, &esc.to_string());
                let mut out = Vec::new();
                write_str_repr(&mut out, &s);
                let expect_esc = match esc {
                    '\n' => "\\n".to_string(),
                    '\\' => "\\\\".to_string(),
                    '\'' => "'".to_string(),
                    '\x7f' => "\\x7f".to_string(),
                    '\u{2028}' => "\\u2028".to_string(),
                    c => c.to_string(),
                };
                let quote = if esc == '\'' { '"' } else { '\'' };
                let mut expect = String::from(quote);
                expect.push_str(&s[..pos]);
                expect.push_str(&expect_esc);
                expect.push_str(&s[pos + esc.len_utf8()..]);
                expect.push(quote);
                assert_eq!(String::from_utf8(out).unwrap(), expect, "{esc:?} at {pos}");
            }
        }
    }

    /// `repr(str)` one character at a time, the way CPython's `unicode_repr` reads.
    fn str_repr_bytewise(s: &str) -> String {
        let quote = if s.contains('\'') && !s.contains('"') {
            '"'
        } else {
            '\''
        };
        let mut r = String::from(quote);
        for ch in s.chars() {
            match ch {
                '\\' => r.push_str("\\\\"),
                '\t' => r.push_str("\\t"),
                '\n' => r.push_str("\\n"),
                '\r' => r.push_str("\\r"),
                c if c == quote => {
                    r.push('\\');
                    r.push(c);
                }
                ' '..='~' => r.push(ch),
                c if (c as u32) < 0x80 => r.push_str(&format!("\\x{:02x}", c as u32)),
                c if is_printable_non_ascii(c as u32) => r.push(c),
                c if (c as u32) <= 0xff => r.push_str(&format!("\\x{:02x}", c as u32)),
                c if (c as u32) <= 0xffff => r.push_str(&format!("\\u{:04x}", c as u32)),
                c => r.push_str(&format!("\\U{:08x}", c as u32)),
            }
        }
        r.push(quote);
        r
    }

    /// Texts of every length around the block size, built from characters that each take
    /// a different path (quotes deciding late or early, escapes, multi-byte characters
    /// across block edges), match the character-at-a-time repr.
    #[test]
    fn str_repr_matches_bytewise() {
        let alphabet = [
            'a',
            'b',
            ' ',
            '\'',
            '"',
            '\\',
            '\n',
            '\t',
            '\r',
            '\0',
            '\x1f',
            '\x7f',
            '~',
            '\u{e9}',
            '\u{a0}',
            '\u{ad}',
            '\u{2028}',
            '\u{4e2d}',
            '\u{1f600}',
            '\u{10ffff}',
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in 0..100 {
            for round in 0..60 {
                // Mostly plain text with rare specials, or specials everywhere.
                let rare = round % 2 == 0;
                let s: String = (0..len)
                    .map(|_| {
                        let r = next();
                        if rare && r % 16 != 0 {
                            'x'
                        } else {
                            alphabet[(r >> 8) as usize % alphabet.len()]
                        }
                    })
                    .collect();
                let mut out = b"prefix".to_vec();
                write_str_repr(&mut out, &s);
                let expect = format!("prefix{}", str_repr_bytewise(&s));
                assert_eq!(String::from_utf8(out).unwrap(), expect, "{s:?}");
            }
        }
        // The quote decided by one character far from the first.
        for n in [0, 1, 31, 32, 33, 63, 64, 65, 100] {
            for s in [
                format!("{}'{}\"", "a".repeat(n), "b".repeat(n)),
                format!("{}'{}'", "a".repeat(n), "b".repeat(n)),
                format!("{}\"{}'", "a".repeat(n), "b".repeat(n)),
                format!("{}'", "a\n".repeat(n)),
            ] {
                let mut out = Vec::new();
                write_str_repr(&mut out, &s);
                assert_eq!(String::from_utf8(out).unwrap(), str_repr_bytewise(&s));
            }
        }
    }

    #[test]
    fn i64_repr() {
        let mut cases = vec![0, 1, -1, 9, 10, 99, 100, 101, 999, 1000, i64::MAX, i64::MIN];
        cases.extend((0..200).map(|i| i * 7 - 300));
        // Every digit count, at its edges and with each digit value in each place.
        let mut p = 1i64;
        for _ in 0..19 {
            cases.extend([p - 1, p, p + 1, -p, 1 - p, p * 5 + 3]);
            for d in 1..10 {
                cases.extend([p * d, p * d - 1, i64::MAX / p * p]);
            }
            p = p.saturating_mul(10);
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Spread over all magnitudes.
            cases.push((x >> (x % 64)) as i64);
            cases.push(x as i64);
        }
        cases.extend(
            (0..64)
                .map(|b| 1i64 << b)
                .flat_map(|x| [x, x.wrapping_sub(1), x.wrapping_neg()]),
        );
        for v in cases {
            let mut out = Vec::new();
            write_i64(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
    }

    #[test]
    fn printable_table() {
        assert!(is_printable_non_ascii(0xE9));
        assert!(!is_printable_non_ascii(0xA0));
        assert!(!is_printable_non_ascii(0xAD));
        assert!(!is_printable_non_ascii(0x2028));
        assert!(is_printable_non_ascii(0x1F600));
        assert!(!is_printable_non_ascii(0x10FFFF));
    }

    #[test]
    fn python_sort_fallback() {
        let vals = [Value::Int(3), Value::str("a"), Value::Int(1)];
        assert_eq!(
            sorted_or_original(3, |a, b| py_lt(&vals[a], &vals[b])),
            vec![0, 1, 2]
        );
        let vals = [Value::Int(3), Value::Float(2.5), Value::Bool(true)];
        assert_eq!(
            sorted_or_original(3, |a, b| py_lt(&vals[a], &vals[b])),
            vec![2, 1, 0]
        );
        let many: Vec<Value> = (0..300).map(|i| Value::Int((i * 7919) % 300)).collect();
        let order = sorted_or_original(many.len(), |a, b| py_lt(&many[a], &many[b]));
        let sorted: Vec<i64> = order.iter().map(|&i| many[i].as_i64().unwrap()).collect();
        assert_eq!(sorted, (0..300).collect::<Vec<_>>());
    }
}
