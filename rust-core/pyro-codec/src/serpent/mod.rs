//! Serpent: Python literal expressions as Pyro4's default serializer.
//!
//! The encoder output is byte-identical to serpent 1.43 `dumps(obj,
//! module_in_classname=True)` (compact and indent mode) for every value the model holds
//! (set order aside: a [`Value::Set`] is written in its stored order in compact mode, and
//! sorted the Python way in indent mode). The parser accepts everything serpent 1.43 emits
//! and most of what `ast.literal_eval` accepts, with caps on nesting depth and integer
//! digits; errors give the byte offset.
//!
//! The parser is one tokenizer/walker ([`parse_with`]) that feeds a [`Builder`]; the
//! [`ValueBuilder`] makes [`Value`]s, and other builders (the Python binding) can make
//! their own objects directly, without an intermediate tree.
//!
//! Deliberate differences from `serpent.loads` (= `ast.literal_eval`):
//! - a string escape that produces a lone surrogate (`'\ud800'`, which Python serpent emits
//!   for such strings) is an error, since a Rust `String` cannot hold it;
//! - `\N{...}` named escapes are an error (no Unicode name table here);
//! - `...` (Ellipsis) is an error: the value model has no Ellipsis.

#[cfg(target_arch = "x86_64")]
mod avx2;
pub(crate) mod encode;
mod parse;
mod unicode_table;

pub use encode::encode_into;
pub use parse::{parse_with, AsciiStr, Builder, ValueBuilder};

use crate::{DecodeLimits, Result, Value};

/// Finds the first of three bytes (SIMD through memchr). On x86-64 the AVX2 searcher is
/// made once per string, so each search skips memchr's per-call dispatch (a text with
/// many escapes searches many short runs).
#[derive(Clone, Copy)]
pub(crate) struct Stops {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::Three>,
    bytes: (u8, u8, u8),
}

impl Stops {
    pub(crate) fn new(a: u8, b: u8, c: u8) -> Self {
        Stops {
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::Three::new(a, b, c),
            bytes: (a, b, c),
        }
    }

    #[inline]
    pub(crate) fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = &self.avx2 {
            return t.find(haystack);
        }
        let (a, b, c) = self.bytes;
        memchr::memchr3(a, b, c, haystack)
    }
}

/// The scalar writers of the encoder, for walkers over another object model (the Python
/// binding writes Python objects with them), so every path emits the same text.
pub mod text {
    use super::encode;

    /// Python's `repr(str)` (CPython `unicode_repr`, with this crate's Unicode table).
    #[inline]
    pub fn str_repr(out: &mut Vec<u8>, s: &str) {
        encode::write_str_repr(out, s);
    }

    /// Python's `repr(str)` when the text is short (up to 32 bytes) and needs no quote
    /// choice or escape: the text between single quotes. Writes nothing and says false
    /// for any other text (non-ASCII included), which [`str_repr`] then handles.
    #[inline]
    pub fn plain_str_repr(out: &mut Vec<u8>, s: &str) -> bool {
        encode::write_plain_str_repr(out, s.as_bytes())
    }

    /// `repr(int)` of an i64.
    #[inline]
    pub fn int(out: &mut Vec<u8>, v: i64) {
        encode::write_i64(out, v);
    }

    /// serpent's `ser_builtins_float`: `repr`, `1e30000` for infinities, a class dict for NaN.
    #[inline]
    pub fn float(out: &mut Vec<u8>, f: f64) {
        encode::write_float(out, f);
    }

    /// serpent 1.43's `ser_builtins_complex`.
    #[inline]
    pub fn complex(out: &mut Vec<u8>, re: f64, im: f64) {
        encode::write_complex(out, re, im);
    }

    /// serpent's bytes rule: the base64 dict, or `repr(bytes)` with `bytes_repr=True`.
    #[inline]
    pub fn bytes(out: &mut Vec<u8>, b: &[u8], bytes_repr: bool) {
        if bytes_repr {
            encode::write_bytes_repr(out, b);
        } else {
            encode::write_bytes_b64(out, b);
        }
    }
}

/// The header line serpent writes before the body.
pub const HEADER: &[u8] = b"# serpent utf-8 python3.2\n";

/// serpent's `Serializer.maximum_level` on a default CPython
/// (`min(sys.getrecursionlimit() // 5, 1000)` = 200): a value at a deeper level is refused.
pub const MAX_LEVEL: usize = 200;

/// Encoder options (serpent's `dumps` keywords).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// serpent's `indent=True`: one item per line, two-space indent, sorted dicts/sets.
    pub indent: bool,
    /// serpent's `bytes_repr=True`: bytes as `b'...'` instead of the base64 dict.
    pub bytes_repr: bool,
}

/// Encode in compact mode with the header line.
pub fn to_vec(value: &Value) -> Result<Vec<u8>> {
    to_vec_with(value, &EncodeOptions::default())
}

/// Encode with options, header line included.
pub fn to_vec_with(value: &Value, options: &EncodeOptions) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    encode_into(value, options, &mut out)?;
    Ok(out)
}

/// Parse with default limits.
pub fn from_slice(bytes: &[u8]) -> Result<Value> {
    from_slice_with(bytes, &DecodeLimits::default())
}

/// Parse within `limits`.
pub fn from_slice_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Value> {
    parse_with(bytes, limits, &mut ValueBuilder)
}

/// The object id and method name of a serpent call payload as serpent writes it
/// (`# serpent ...` header lines, then `('objid','method',`), read without parsing the
/// rest. `None` for anything else (escapes in either string, spaces, another layout):
/// callers then parse the whole payload. It says nothing about the validity of the rest.
pub fn peek_call_target(payload: &[u8]) -> Option<(&str, &str)> {
    let mut i = 0;
    while payload.get(i) == Some(&b'#') {
        i += memchr::memchr(b'\n', &payload[i..])? + 1;
    }
    if payload.get(i) != Some(&b'(') {
        return None;
    }
    let (object, after) = plain_str_at(payload, i + 1)?;
    if payload.get(after) != Some(&b',') {
        return None;
    }
    let (method, after) = plain_str_at(payload, after + 1)?;
    if payload.get(after) != Some(&b',') {
        return None;
    }
    Some((object, method))
}

/// A quoted string literal at `at` with no backslash or line break inside: its text and
/// the position after the closing quote.
fn plain_str_at(b: &[u8], at: usize) -> Option<(&str, usize)> {
    let quote = *b.get(at).filter(|&&q| q == b'\'' || q == b'"')?;
    let body = &b[at + 1..];
    let end = memchr::memchr3(quote, b'\\', b'\n', body)?;
    if body[end] != quote || body[..end].contains(&b'\r') {
        return None;
    }
    let s = std::str::from_utf8(&body[..end]).ok()?;
    Some((s, at + 1 + end + 1))
}

#[cfg(test)]
mod peek_tests {
    use super::*;

    #[test]
    fn peek_reads_what_serpent_writes() {
        let call = Value::Tuple(vec![
            Value::Str("obj_1f".into()),
            Value::Str("echo".into()),
            Value::Tuple(vec![Value::Int(1)]),
            Value::Dict(Default::default()),
        ]);
        let doc = to_vec(&call).unwrap();
        assert_eq!(peek_call_target(&doc), Some(("obj_1f", "echo")));
        // serpent picks double quotes for a text holding a single quote.
        let doc = b"# serpent utf-8 python3.2\n(\"it's\",'m',(),{})";
        assert_eq!(peek_call_target(doc), Some(("it's", "m")));
    }

    #[test]
    fn peek_declines_other_layouts() {
        for doc in [
            &b""[..],
            b"# serpent utf-8 python3.2\n",
            b"# serpent utf-8 python3.2\n['o','m',(),{}]",
            b"# serpent utf-8 python3.2\n( 'o','m',(),{})",
            b"# serpent utf-8 python3.2\n('o\\x41','m',(),{})",
            b"# serpent utf-8 python3.2\n('o','m')",
            b"# serpent utf-8 python3.2\n('o','m'",
            b"# serpent utf-8 python3.2\n('o'",
            b"# serpent utf-8 python3.2\n('o\n','m',(),{})",
            b"# serpent utf-8 python3.2\n('o\r','m',(),{})",
            b"# serpent utf-8 python3.2\n(b'o','m',(),{})",
            b"# serpent utf-8 python3.2\n('\xff','m',(),{})",
            b"# no newline",
        ] {
            assert_eq!(
                peek_call_target(doc),
                None,
                "{:?}",
                String::from_utf8_lossy(doc)
            );
        }
    }
}
