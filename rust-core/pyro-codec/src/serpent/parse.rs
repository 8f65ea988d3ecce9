//! The serpent parser: one tokenizer/walker over the UTF-8 text that feeds a [`Builder`].
//!
//! `serpent.loads` is `ast.literal_eval` on the decoded text, so this walks the subset of
//! Python expression syntax that `literal_eval` (CPython 3.11) accepts: literals, tuple,
//! list, set and dict displays, `set()`, unary `+`/`-` on a number, and `real ± imagj`.
//! Grouping parentheses, comments, line continuations, implicit string concatenation and
//! the newline rules of Python's tokenizer (newlines only inside brackets) are followed.
//!
//! There is no token vector: the walker reads bytes and hands finished scalars and
//! containers to the builder, whose container items sit on one shared stack. Recursion
//! depth equals bracket nesting, which is capped by [`DecodeLimits::max_depth`].

use super::Stops;
use crate::value::dedup_set;
use crate::{DecodeLimits, Dict, Error, Result, Value};
use num_bigint::BigInt;
use num_traits::ToPrimitive;
use std::cell::RefCell;
use std::vec::Drain;

const CODEC: &str = "serpent";

/// Text whose every byte is ASCII (checked when it was made).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsciiStr<'a>(&'a str);

impl<'a> AsciiStr<'a> {
    /// `s`, if it is all ASCII (checked with AVX2 where the CPU has it).
    pub fn new(s: &'a str) -> Option<AsciiStr<'a>> {
        #[cfg(target_arch = "x86_64")]
        if super::avx2::available() {
            return ascii_text(s.as_bytes()).map(AsciiStr);
        }
        s.is_ascii().then_some(AsciiStr(s))
    }

    /// The text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// Receives what the parser finds and builds the output (the jiter pattern): the
/// [`ValueBuilder`] makes [`Value`]s; a Python binding can make Python objects directly.
///
/// Container methods get their items as a [`Drain`] of already-built children, in source
/// order; dict items alternate key, value.
pub trait Builder {
    /// What one built value is.
    type Out;
    /// `None`.
    fn none(&mut self) -> Result<Self::Out>;
    /// `True` / `False`.
    fn bool(&mut self, v: bool) -> Result<Self::Out>;
    /// An int that fits in i64.
    fn int(&mut self, v: i64) -> Result<Self::Out>;
    /// An int outside i64.
    fn bigint(&mut self, v: BigInt) -> Result<Self::Out>;
    /// A float.
    fn float(&mut self, v: f64) -> Result<Self::Out>;
    /// A complex number.
    fn complex(&mut self, re: f64, im: f64) -> Result<Self::Out>;
    /// A str (escapes resolved, concatenation done).
    fn str(&mut self, v: &str) -> Result<Self::Out>;
    /// A str the parser found to be all ASCII; by default the same as [`Builder::str`].
    fn ascii_str(&mut self, v: AsciiStr<'_>) -> Result<Self::Out> {
        self.str(v.as_str())
    }
    /// A bytes literal (`b'...'`).
    fn bytes(&mut self, v: &[u8]) -> Result<Self::Out>;
    /// A tuple.
    fn tuple(&mut self, items: Drain<'_, Self::Out>) -> Result<Self::Out>;
    /// A list.
    fn list(&mut self, items: Drain<'_, Self::Out>) -> Result<Self::Out>;
    /// A set display or `set()`; duplicates by Python equality are the builder's business.
    fn set(&mut self, items: Drain<'_, Self::Out>) -> Result<Self::Out>;
    /// A dict display: keys and values alternate (an even number of items). Duplicate keys
    /// keep the first key and the last value in Python.
    fn dict(&mut self, items: Drain<'_, Self::Out>) -> Result<Self::Out>;
}

/// Builds [`Value`]s, deduplicating dict keys and set elements with Python equality
/// ([`Dict::from_pairs`], [`dedup_set`]) and refusing unhashable keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValueBuilder;

impl Builder for ValueBuilder {
    type Out = Value;
    fn none(&mut self) -> Result<Value> {
        Ok(Value::None)
    }
    fn bool(&mut self, v: bool) -> Result<Value> {
        Ok(Value::Bool(v))
    }
    fn int(&mut self, v: i64) -> Result<Value> {
        Ok(Value::Int(v))
    }
    fn bigint(&mut self, v: BigInt) -> Result<Value> {
        Ok(Value::from_bigint(v))
    }
    fn float(&mut self, v: f64) -> Result<Value> {
        Ok(Value::Float(v))
    }
    fn complex(&mut self, re: f64, im: f64) -> Result<Value> {
        Ok(Value::Complex(re, im))
    }
    fn str(&mut self, v: &str) -> Result<Value> {
        Ok(Value::Str(v.to_owned()))
    }
    fn bytes(&mut self, v: &[u8]) -> Result<Value> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn tuple(&mut self, items: Drain<'_, Value>) -> Result<Value> {
        Ok(Value::Tuple(items.collect()))
    }
    fn list(&mut self, items: Drain<'_, Value>) -> Result<Value> {
        Ok(Value::List(items.collect()))
    }
    fn set(&mut self, items: Drain<'_, Value>) -> Result<Value> {
        Ok(Value::Set(dedup_set(items.collect())?))
    }
    fn dict(&mut self, mut items: Drain<'_, Value>) -> Result<Value> {
        let mut pairs = Vec::with_capacity(items.len() / 2);
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            pairs.push((k, v));
        }
        // Fast path for the usual shape (a few distinct str keys): nothing to hash or
        // deduplicate, so skip the Python-equality machinery.
        if pairs.len() <= 16 && all_distinct_str_keys(&pairs) {
            return Ok(Value::Dict(Dict::from_unique_pairs(pairs)));
        }
        Ok(Value::Dict(Dict::from_pairs(pairs)?))
    }
}

fn all_distinct_str_keys(pairs: &[(Value, Value)]) -> bool {
    pairs.iter().enumerate().all(|(i, (k, _))| match k {
        Value::Str(s) => pairs[..i].iter().all(|(k2, _)| k2.as_str() != Some(s)),
        _ => false,
    })
}

/// Parse a serpent document (header comment optional) within `limits`, feeding `builder`.
///
/// Input must be strict UTF-8 without NUL bytes (serpent's `loads` checks both before
/// `literal_eval`). Errors carry the byte offset where the input went wrong.
pub fn parse_with<B: Builder>(
    bytes: &[u8],
    limits: &DecodeLimits,
    builder: &mut B,
) -> Result<B::Out> {
    let (src, no_cr, ascii_input) = check_input(bytes)?;
    let (scratch, scratch_bytes) = take_scratch();
    let mut p = Parser {
        src,
        b: bytes,
        pos: 0,
        nest: 0,
        limits: *limits,
        builder,
        // Room for a small document's items without regrowing.
        stack: Vec::with_capacity(16),
        scratch,
        scratch_bytes,
        no_cr,
        ascii_input,
    };
    let out = p.document();
    keep_scratch(p.scratch, p.scratch_bytes);
    out
}

/// `bytes` as text when they are all ASCII (AVX2 where the CPU has it): one pass that
/// both checks them and shows they are UTF-8. What it returns is ASCII ([`AsciiStr`]).
fn ascii_text(bytes: &[u8]) -> Option<&str> {
    #[cfg(target_arch = "x86_64")]
    if super::avx2::available() {
        // SAFETY: the CPU has AVX2 (checked just above), all that the function needs.
        #[allow(unsafe_code)]
        return unsafe { super::avx2::ascii_text(bytes) };
    }
    if bytes.is_ascii() {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

/// The input as text, whether it is free of CR bytes and whether it is all ASCII (when
/// known: false is "not checked" without AVX2); an error when it is not UTF-8 or holds a
/// NUL byte (serpent's `loads` checks both before `literal_eval`).
fn check_input(bytes: &[u8]) -> Result<(&str, bool, bool)> {
    // serpent.loads: "The serpent data contains 0-bytes so it cannot be parsed ..."
    let nul_error = |offset| Error::Syntax {
        codec: CODEC,
        message: "the serpent data contains 0-bytes".into(),
        offset,
    };
    #[cfg(target_arch = "x86_64")]
    if super::avx2::available() {
        // SAFETY: the CPU has AVX2 (checked just above), all that the function needs.
        #[allow(unsafe_code)]
        let scan = unsafe { super::avx2::scan_input(bytes) };
        if scan.nul {
            // Not UTF-8 is the first error, as above.
            utf8(bytes)?;
            return Err(nul_error(memchr::memchr(0, bytes).unwrap_or(0)));
        }
        if let Some(src) = scan.ascii {
            return Ok((src, !scan.cr, true));
        }
        return Ok((utf8(bytes)?, !scan.cr, false));
    }
    let src = utf8(bytes)?;
    if let Some(offset) = memchr::memchr(0, bytes) {
        return Err(nul_error(offset));
    }
    Ok((src, memchr::memchr(b'\r', bytes).is_none(), false))
}

/// `bytes` as UTF-8 text. The SIMD validator answers valid/invalid; only invalid input
/// asks the standard one where it went wrong.
fn utf8(bytes: &[u8]) -> Result<&str> {
    simdutf8::basic::from_utf8(bytes).map_err(|_| {
        let offset = std::str::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), |_| 0);
        Error::Syntax {
            codec: CODEC,
            message: "invalid utf-8".into(),
            offset,
        }
    })
}

/// The largest decode buffer a thread keeps for its next parse. Every thread that parses
/// (a daemon has one per connection) may keep two of these, so it stays small: 1 MiB
/// covers a megabyte literal, and a larger one costs page faults small next to its work.
const KEEP_SCRATCH: usize = 1 << 20;

thread_local! {
    /// Decode buffers (str, bytes) kept between parses on this thread: a long literal with
    /// escapes needs a buffer as large as itself, and a fresh one per parse costs page
    /// faults that take longer than the decoding.
    static SCRATCH: RefCell<(String, Vec<u8>)> = const { RefCell::new((String::new(), Vec::new())) };
}

/// This thread's kept decode buffers (empty ones if none are kept, or a parse on this
/// thread already holds them).
fn take_scratch() -> (String, Vec<u8>) {
    SCRATCH
        .try_with(|c| c.try_borrow_mut().map(|mut c| std::mem::take(&mut *c)))
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default()
}

/// Keep the decode buffers for the next parse, unless they have grown past
/// [`KEEP_SCRATCH`].
fn keep_scratch(mut scratch: String, mut scratch_bytes: Vec<u8>) {
    if scratch.capacity() > KEEP_SCRATCH {
        scratch = String::new();
    }
    if scratch_bytes.capacity() > KEEP_SCRATCH {
        scratch_bytes = Vec::new();
    }
    scratch.clear();
    scratch_bytes.clear();
    let _ = SCRATCH.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            *c = (scratch, scratch_bytes);
        }
    });
}

/// A number not yet handed to the builder (it may still become part of `a ± bj`).
enum Num {
    Int(i64),
    Big(BigInt),
    Float(f64),
    Complex(f64, f64),
}

/// Which AST node a number came from; `literal_eval` only accepts certain shapes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// A literal (`ast.Constant`), possibly inside grouping parens.
    Constant,
    /// `+x` / `-x` on a literal (`ast.UnaryOp`).
    Signed,
    /// `a + bj` / `a - bj` (`ast.BinOp`).
    BinOp,
}

enum Expr<O> {
    Built(O),
    Num(Num, Form),
}

/// The run of decimal digits at `at` and its value, eight bytes at a time (SWAR), when
/// eight bytes are there to read and the run is shorter than eight digits; `None` leaves
/// the number to the byte loop.
#[inline]
fn digit_word(b: &[u8], at: usize) -> Option<(usize, i64)> {
    let word = <[u8; 8]>::try_from(b.get(at..at + 8)?).ok()?;
    // Bytes below the first non-digit are digits, so no borrow or carry reaches it: its
    // flag is exact (flags above it may not be, and are not used).
    let d = u64::from_le_bytes(word).wrapping_sub(0x3030_3030_3030_3030);
    let non_digit = (d.wrapping_add(0x7676_7676_7676_7676) | d) & 0x8080_8080_8080_8080;
    if non_digit == 0 {
        return None;
    }
    let n = (non_digit.trailing_zeros() / 8) as usize;
    if n == 0 {
        return Some((0, 0));
    }
    // The n digits to the top bytes (leading zeros below), then pairs, quads, eight.
    let mut x = d << (8 * (8 - n));
    x = ((x & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561)) >> 8;
    x = ((x & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601)) >> 16;
    x = ((x & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001)) >> 32;
    // At most 99,999,999.
    Some((n, x as i64))
}

struct Parser<'s, 'b, B: Builder> {
    src: &'s str,
    b: &'s [u8],
    pos: usize,
    /// Open brackets right now (= recursion depth; newlines are whitespace when > 0).
    nest: usize,
    limits: DecodeLimits,
    builder: &'b mut B,
    /// Children of the containers being built, innermost last.
    stack: Vec<B::Out>,
    scratch: String,
    scratch_bytes: Vec<u8>,
    /// The input holds no `\r`: a plain run inside a str literal then ends exactly at the
    /// quote, a backslash or `\n`, which `memchr3` finds (SIMD).
    no_cr: bool,
    /// The input is all ASCII (checked before parsing), so any part of it is.
    ascii_input: bool,
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

impl<B: Builder> Parser<'_, '_, B> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn peek_at(&self, i: usize) -> Option<u8> {
        self.b.get(self.pos + i).copied()
    }

    fn err<T>(&self, message: impl Into<String>, offset: usize) -> Result<T> {
        Err(Error::Syntax {
            codec: CODEC,
            message: message.into(),
            offset,
        })
    }

    fn eof<T>(&self) -> Result<T> {
        Err(Error::Eof { codec: CODEC })
    }

    /// Error for the byte at the current position (or end of input).
    fn unexpected<T>(&self) -> Result<T> {
        match self.peek() {
            None => self.eof(),
            Some(c) if c.is_ascii_graphic() => self.err(
                format!("invalid syntax: unexpected '{}'", c as char),
                self.pos,
            ),
            Some(_) => self.err("invalid syntax: unexpected character", self.pos),
        }
    }

    fn malformed<T>(&self, offset: usize) -> Result<T> {
        // literal_eval's ValueError("malformed node or string").
        self.err("malformed node or string (not a literal)", offset)
    }

    /// Skip whitespace, comments and line continuations; newlines too inside brackets
    /// (Python's tokenizer emits no NEWLINE token there).
    #[inline(always)]
    fn ws(&mut self) -> Result<()> {
        // Compact serpent has no whitespace between tokens: a printable byte other than
        // a comment sign or a backslash ends it at once.
        match self.b.get(self.pos) {
            Some(&c) if c > b' ' && c != b'#' && c != b'\\' => Ok(()),
            None => Ok(()),
            Some(_) => self.ws_slow(),
        }
    }

    #[inline(never)]
    fn ws_slow(&mut self) -> Result<()> {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\x0c' => self.pos += 1,
                b'\n' | b'\r' if self.nest > 0 => self.pos += 1,
                b'#' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' || c == b'\r' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                b'\\' => {
                    let at = self.pos;
                    match self.peek_at(1) {
                        Some(b'\n') => self.pos += 2,
                        Some(b'\r') => {
                            self.pos += 2;
                            if self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                        }
                        _ => {
                            return self
                                .err("unexpected character after line continuation character", at)
                        }
                    }
                    if self.pos >= self.b.len() {
                        return self.err("unexpected EOF after line continuation", at);
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn document(&mut self) -> Result<B::Out> {
        // Blank and comment lines (the serpent header) may precede the value; the line it
        // starts on must not be indented, except the very first line (literal_eval strips
        // leading spaces and tabs).
        let mut line_start = None;
        loop {
            self.ws()?;
            match self.peek() {
                Some(b'\n') => {
                    self.pos += 1;
                    line_start = Some(self.pos);
                }
                Some(b'\r') => {
                    self.pos += 1;
                    if self.peek() == Some(b'\n') {
                        self.pos += 1;
                    }
                    line_start = Some(self.pos);
                }
                _ => break,
            }
        }
        if let Some(ls) = line_start {
            let lead = &self.b[ls..self.pos];
            let after_ff = lead
                .iter()
                .rposition(|&c| c == b'\x0c')
                .map_or(0, |i| i + 1);
            if lead[after_ff..].iter().any(|&c| c == b' ' || c == b'\t') {
                return self.err("unexpected indent", self.pos);
            }
        }
        let e = self.expr()?;
        let out = self.finish(e)?;
        loop {
            self.ws()?;
            match self.peek() {
                Some(b'\n' | b'\r') => self.pos += 1,
                None => return Ok(out),
                Some(_) => {
                    return self.err("invalid syntax: trailing data after the value", self.pos)
                }
            }
        }
    }

    fn finish(&mut self, e: Expr<B::Out>) -> Result<B::Out> {
        match e {
            Expr::Built(o) => Ok(o),
            Expr::Num(n, _) => match n {
                Num::Int(i) => self.builder.int(i),
                Num::Big(b) => self.builder.bigint(b),
                Num::Float(f) => self.builder.float(f),
                Num::Complex(re, im) => self.builder.complex(re, im),
            },
        }
    }

    fn push_item(&mut self) -> Result<()> {
        // Fast paths for the common container items. Anything these do not fully handle
        // (a number followed by `+`/`-`, say) goes through the general expression walk.
        let o = match self.peek() {
            Some(b'\'' | b'"') => match self.strings()? {
                Expr::Built(o) => o,
                Expr::Num(..) => unreachable!("strings() only builds"),
            },
            Some(b'0'..=b'9' | b'-') => match self.small_int()? {
                Some(v) => self.builder.int(v)?,
                None => {
                    let e = self.expr()?;
                    self.finish(e)?
                }
            },
            _ => {
                let e = self.expr()?;
                self.finish(e)?
            }
        };
        self.stack.push(o);
        Ok(())
    }

    /// A plain decimal int of at most 18 digits, optionally negated, that is not followed
    /// by anything that would make it part of a larger number or expression. On `None`
    /// the position is unchanged.
    fn small_int(&mut self) -> Result<Option<i64>> {
        let start = self.pos;
        let neg = self.b[start] == b'-';
        let first = start + usize::from(neg);
        let mut i = first;
        let mut v: i64 = 0;
        while let Some(&c) = self.b.get(i) {
            if !c.is_ascii_digit() || i - first >= 18 {
                break;
            }
            v = v * 10 + i64::from(c - b'0');
            i += 1;
        }
        let n = i - first;
        let bad_next = self
            .b
            .get(i)
            .is_some_and(|&c| is_ident_byte(c) || c == b'.');
        if n == 0 || n > self.limits.max_int_digits || bad_next || (n > 1 && self.b[first] == b'0')
        {
            return Ok(None);
        }
        self.pos = i;
        self.ws()?;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.pos = start;
            return Ok(None);
        }
        Ok(Some(if neg { -v } else { v }))
    }

    /// expr := unary [('+'|'-') unary]   with literal_eval's shape rules for the BinOp.
    fn expr(&mut self) -> Result<Expr<B::Out>> {
        let left = self.unary()?;
        self.ws()?;
        let op = match self.peek() {
            Some(c @ (b'+' | b'-')) => c,
            _ => return Ok(left),
        };
        let op_pos = self.pos;
        self.pos += 1;
        self.ws()?;
        let right_pos = self.pos;
        let right = self.unary()?;
        // literal_eval: left must be a (signed) int/float literal, right a complex literal.
        let l = match left {
            Expr::Num(Num::Int(i), Form::Constant | Form::Signed) => i as f64,
            Expr::Num(Num::Big(ref b), Form::Constant | Form::Signed) => match b.to_f64() {
                Some(f) if f.is_finite() => f,
                _ => return self.err("int too large to convert to float", op_pos),
            },
            Expr::Num(Num::Float(f), Form::Constant | Form::Signed) => f,
            _ => return self.malformed(op_pos),
        };
        let (rre, rim) = match right {
            Expr::Num(Num::Complex(re, im), Form::Constant) => (re, im),
            _ => return self.malformed(right_pos),
        };
        // Python: float + complex promotes the float to complex(l, 0.0), then adds parts.
        let value = if op == b'+' {
            (l + rre, 0.0 + rim)
        } else {
            (l - rre, 0.0 - rim)
        };
        self.ws()?;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            // `1+2j+3j` is BinOp(BinOp, ...): not a literal.
            return self.malformed(self.pos);
        }
        Ok(Expr::Num(Num::Complex(value.0, value.1), Form::BinOp))
    }

    /// unary := ('+'|'-') atom | atom   (the operand must be a number literal).
    fn unary(&mut self) -> Result<Expr<B::Out>> {
        let op = match self.peek() {
            Some(c @ (b'+' | b'-')) => c,
            _ => return self.atom(),
        };
        let op_pos = self.pos;
        self.pos += 1;
        self.ws()?;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            // `--1` is UnaryOp(UnaryOp(...)): literal_eval refuses it.
            return self.malformed(op_pos);
        }
        let n = match self.atom()? {
            Expr::Num(n, Form::Constant) => n,
            _ => return self.malformed(op_pos),
        };
        let n = if op == b'+' {
            n
        } else {
            match n {
                Num::Int(i) => match i.checked_neg() {
                    Some(v) => Num::Int(v),
                    None => Num::Big(-BigInt::from(i)),
                },
                Num::Big(b) => {
                    let b = -b;
                    match b.to_i64() {
                        Some(i) => Num::Int(i),
                        None => Num::Big(b),
                    }
                }
                Num::Float(f) => Num::Float(-f),
                Num::Complex(re, im) => Num::Complex(-re, -im),
            }
        };
        Ok(Expr::Num(n, Form::Signed))
    }

    fn atom(&mut self) -> Result<Expr<B::Out>> {
        let Some(c) = self.peek() else {
            return self.eof();
        };
        match c {
            b'(' => self.paren(),
            b'[' => self.list(),
            b'{' => self.brace(),
            b'\'' | b'"' => self.strings(),
            b'0'..=b'9' => self.number(),
            b'.' => {
                if self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
                    self.number()
                } else if self.b[self.pos..].starts_with(b"...") {
                    self.err("Ellipsis is not supported", self.pos)
                } else {
                    self.unexpected()
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => self.name(),
            _ => self.unexpected(),
        }
    }

    fn enter(&mut self) -> Result<()> {
        // CPython's tokenizer allows 200 nested brackets ("too many nested parentheses").
        if self.nest >= self.limits.max_depth {
            return Err(Error::TooDeep {
                codec: CODEC,
                limit: self.limits.max_depth,
                offset: self.pos,
            });
        }
        self.nest += 1;
        self.pos += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.nest -= 1;
        self.pos += 1;
    }

    /// `(...)`: empty tuple, grouping parens, or a tuple (one-tuple needs the comma).
    fn paren(&mut self) -> Result<Expr<B::Out>> {
        self.enter()?;
        self.ws()?;
        if self.peek() == Some(b')') {
            self.leave();
            let base = self.stack.len();
            return self
                .builder
                .tuple(self.stack.drain(base..))
                .map(Expr::Built);
        }
        let first = self.expr()?;
        self.ws()?;
        match self.peek() {
            Some(b')') => {
                self.leave();
                return Ok(first); // grouping: the node is unchanged
            }
            Some(b',') => self.pos += 1,
            _ => return self.unexpected(),
        }
        let base = self.stack.len();
        let first = self.finish(first)?;
        self.stack.push(first);
        self.items_until(b')')?;
        self.leave();
        self.builder
            .tuple(self.stack.drain(base..))
            .map(Expr::Built)
    }

    /// After an item and its comma: `item, item, ... [,] close` (close not consumed).
    fn items_until(&mut self, close: u8) -> Result<()> {
        loop {
            if self.int_run(close)? {
                return Ok(());
            }
            self.ws()?;
            if self.peek() == Some(close) {
                return Ok(());
            }
            self.push_item()?;
            self.ws()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => return Ok(()),
                _ => return self.unexpected(),
            }
        }
    }

    /// Items that are plain decimal ints right before a `,` or `close` (a compact list of
    /// ints, as serpent writes it) in one tight loop. `Ok(true)`: `close` is next (not
    /// consumed). `Ok(false)`: the position is at the start of an item this loop does not
    /// take (whitespace, another type, a sign, more than 18 digits ...), for the general walk.
    fn int_run(&mut self, close: u8) -> Result<bool> {
        let b = self.b;
        loop {
            let start = self.pos;
            let neg = b.get(start) == Some(&b'-');
            let first = start + usize::from(neg);
            let (n, v) = match digit_word(b, first) {
                Some(nv) => nv,
                None => {
                    let mut j = first;
                    let mut v: i64 = 0;
                    while let Some(&c) = b.get(j) {
                        let d = c.wrapping_sub(b'0');
                        if d > 9 || j - first == 18 {
                            break;
                        }
                        v = v * 10 + i64::from(d);
                        j += 1;
                    }
                    (j - first, v)
                }
            };
            let j = first + n;
            if n == 0 || n > self.limits.max_int_digits || (n > 1 && b[first] == b'0') {
                return Ok(false);
            }
            let next = match b.get(j) {
                Some(&c) if c == b',' || c == close => c,
                _ => return Ok(false),
            };
            let o = self.builder.int(if neg { -v } else { v })?;
            self.stack.push(o);
            if next == close {
                self.pos = j;
                return Ok(true);
            }
            self.pos = j + 1;
        }
    }

    fn list(&mut self) -> Result<Expr<B::Out>> {
        self.enter()?;
        let base = self.stack.len();
        self.ws()?;
        if self.peek() != Some(b']') {
            self.push_item()?;
            self.ws()?;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.items_until(b']')?;
                }
                Some(b']') => {}
                _ => return self.unexpected(),
            }
        }
        self.leave();
        self.builder.list(self.stack.drain(base..)).map(Expr::Built)
    }

    /// `{}` (empty dict), `{k: v, ...}` or `{a, b, ...}`.
    fn brace(&mut self) -> Result<Expr<B::Out>> {
        self.enter()?;
        let base = self.stack.len();
        self.ws()?;
        if self.peek() == Some(b'}') {
            self.leave();
            return self.builder.dict(self.stack.drain(base..)).map(Expr::Built);
        }
        self.push_item()?;
        self.ws()?;
        if self.peek() != Some(b':') {
            // a set display
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.items_until(b'}')?;
                }
                Some(b'}') => {}
                _ => return self.unexpected(),
            }
            self.leave();
            return self.builder.set(self.stack.drain(base..)).map(Expr::Built);
        }
        loop {
            // at ':' after a key
            self.pos += 1;
            self.ws()?;
            self.push_item()?;
            self.ws()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => break,
                _ => return self.unexpected(),
            }
            self.ws()?;
            if self.peek() == Some(b'}') {
                break;
            }
            self.push_item()?;
            self.ws()?;
            if self.peek() != Some(b':') {
                return self.unexpected();
            }
        }
        self.leave();
        self.builder.dict(self.stack.drain(base..)).map(Expr::Built)
    }

    /// Names: `None`, `True`, `False`, `set()`, or a string prefix.
    fn name(&mut self) -> Result<Expr<B::Out>> {
        let start = self.pos;
        let mut end = start;
        while end < self.b.len() && is_ident_byte(self.b[end]) {
            end += 1;
        }
        let ident = &self.b[start..end];
        if matches!(self.b.get(end), Some(b'\'' | b'"')) {
            return match ident.to_ascii_lowercase().as_slice() {
                b"r" | b"u" | b"b" | b"br" | b"rb" => self.strings(),
                b"f" | b"rf" | b"fr" => self.malformed(start), // f-strings are JoinedStr nodes
                _ => self.err("invalid syntax: unknown string prefix", start),
            };
        }
        self.pos = end;
        match ident {
            b"None" => self.builder.none().map(Expr::Built),
            b"True" => self.builder.bool(true).map(Expr::Built),
            b"False" => self.builder.bool(false).map(Expr::Built),
            b"set" => {
                // `set()` (literal_eval accepts it since Python 3.9).
                self.ws()?;
                if self.peek() != Some(b'(') {
                    return self.malformed(start);
                }
                self.enter()?;
                self.ws()?;
                if self.peek() != Some(b')') {
                    return self.malformed(start);
                }
                self.leave();
                let base = self.stack.len();
                self.builder.set(self.stack.drain(base..)).map(Expr::Built)
            }
            _ => self.malformed(start),
        }
    }

    /// True when a string literal (with optional prefix) starts at the current position.
    fn at_string_start(&self) -> bool {
        match self.b.get(self.pos) {
            Some(b'\'' | b'"') => return true,
            Some(c) if c.is_ascii_alphabetic() => {}
            _ => return false,
        }
        let mut i = self.pos;
        while i < self.b.len() && i - self.pos < 3 && self.b[i].is_ascii_alphabetic() {
            i += 1;
        }
        matches!(self.b.get(i), Some(b'\'' | b'"'))
            && matches!(
                self.b[self.pos..i].to_ascii_lowercase().as_slice(),
                b"" | b"r" | b"u" | b"b" | b"br" | b"rb"
            )
    }

    /// One or more adjacent string literals (implicit concatenation).
    fn strings(&mut self) -> Result<Expr<B::Out>> {
        let first_pos = self.pos;
        let (is_bytes, raw, quote, triple) = self.string_prefix()?;
        // Fast path: a plain one-line literal without escapes that is not followed by
        // another literal is handed to the builder straight from the input.
        if !raw && !triple {
            let start = self.pos;
            let end = self.scan_plain(start, quote, is_bytes);
            if self.b.get(end) == Some(&quote) {
                self.pos = end + 1;
                self.ws()?;
                if !self.at_string_start() {
                    let out = if is_bytes {
                        self.builder.bytes(&self.b[start..end])
                    } else {
                        let text = &self.src[start..end];
                        if self.ascii_input && text.len() > 16 {
                            self.builder.ascii_str(AsciiStr(text))
                        } else {
                            self.builder.str(text)
                        }
                    };
                    return out.map(Expr::Built);
                }
                // Concatenation follows: continue on the slow path.
                self.scratch.clear();
                self.scratch_bytes.clear();
                if is_bytes {
                    self.scratch_bytes.extend_from_slice(&self.b[start..end]);
                } else {
                    self.scratch.push_str(&self.src[start..end]);
                }
                self.more_strings(is_bytes)?;
                return self.emit_scratch(is_bytes);
            }
            if self.no_cr && !is_bytes {
                // A str literal with escapes: decoded from the stop the scan just found,
                // as bytes (runs of the input copied whole), then checked as UTF-8 once.
                self.scratch.clear();
                self.scratch_bytes.clear();
                // Room for the rest of the input and one 32-byte step past its end (the
                // AVX2 copy writes whole steps), so the copy never has to grow it.
                self.scratch_bytes
                    .reserve((self.b.len() - start).min(KEEP_SCRATCH) + 32);
                self.str_body_escaped(first_pos, quote, start, end)?;
                self.ws()?;
                let more = self.at_string_start();
                if !more {
                    if let Some(text) = ascii_text(&self.scratch_bytes) {
                        return self.builder.ascii_str(AsciiStr(text)).map(Expr::Built);
                    }
                }
                let Ok(text) = simdutf8::basic::from_utf8(&self.scratch_bytes) else {
                    return self.err("invalid UTF-8 in string literal", first_pos);
                };
                if !more {
                    return self.builder.str(text).map(Expr::Built);
                }
                self.scratch.clear();
                self.scratch.push_str(text);
                self.more_strings(is_bytes)?;
                return self.emit_scratch(is_bytes);
            }
        }
        self.scratch.clear();
        self.scratch_bytes.clear();
        // The decoded text is no longer than the rest of the input: one allocation (kept for
        // the next parse) instead of a doubling series and its copies for a long literal.
        let rest = (self.b.len() - self.pos).min(KEEP_SCRATCH);
        if is_bytes {
            self.scratch_bytes.reserve(rest);
        } else {
            self.scratch.reserve(rest);
        }
        self.string_body(first_pos, is_bytes, raw, quote, triple)?;
        self.ws()?;
        self.more_strings(is_bytes)?;
        self.emit_scratch(is_bytes)
    }

    /// The rest of a one-line, non-raw str literal (input without `\r`) whose plain run
    /// `run..stop` is known, decoded as UTF-8 bytes into `scratch_bytes` up to and past
    /// the closing quote. The usual one-character escapes are decoded inline; runs are
    /// copied whole (with AVX2 where the CPU has it, see [`super::avx2`]).
    fn str_body_escaped(&mut self, tok: usize, quote: u8, run: usize, stop: usize) -> Result<()> {
        #[cfg(target_arch = "x86_64")]
        if super::avx2::available() {
            // SAFETY: the CPU has AVX2 (checked just above), all that the function needs.
            #[allow(unsafe_code)]
            return unsafe { self.str_body_escaped_avx2(tok, quote, run, stop) };
        }
        let stops = Stops::new(quote, b'\\', b'\n');
        let b = self.b;
        let (mut run, mut stop) = (run, stop);
        loop {
            self.scratch_bytes.extend_from_slice(&b[run..stop]);
            run = self.str_stop(tok, quote, stop)?;
            if run == usize::MAX {
                return Ok(());
            }
            stop = stops.find(&b[run..]).map_or(b.len(), |n| run + n);
        }
    }

    /// [`Parser::str_body_escaped`] with AVX2: each run is copied 32 bytes at a time while
    /// those bytes are searched for its end ([`super::avx2::StopSet::copy_run`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn str_body_escaped_avx2(
        &mut self,
        tok: usize,
        quote: u8,
        run: usize,
        stop: usize,
    ) -> Result<()> {
        let stops = super::avx2::StopSet::new(quote);
        let b = self.b;
        self.scratch_bytes.extend_from_slice(&b[run..stop]);
        let mut i = self.str_stop(tok, quote, stop)?;
        while i != usize::MAX {
            let n = stops.copy_run(&b[i..], &mut self.scratch_bytes);
            i = self.str_stop(tok, quote, i + n)?;
        }
        Ok(())
    }

    /// At `stop` inside a str literal being decoded into `scratch_bytes`: the closing
    /// quote (`usize::MAX`, and `pos` is set past it) or an escape, decoded (the index
    /// where the next run starts); anything else is an unterminated literal.
    #[inline(always)]
    fn str_stop(&mut self, tok: usize, quote: u8, stop: usize) -> Result<usize> {
        let b = self.b;
        match b.get(stop) {
            Some(&c) if c == quote => {
                self.pos = stop + 1;
                Ok(usize::MAX)
            }
            Some(b'\\') => {
                let simple = match b.get(stop + 1) {
                    Some(b'n') => b'\n',
                    Some(b't') => b'\t',
                    Some(b'r') => b'\r',
                    Some(&c @ (b'\\' | b'\'' | b'"')) => c,
                    _ => 0,
                };
                if simple != 0 {
                    self.scratch_bytes.push(simple);
                    return Ok(stop + 2);
                }
                self.pos = stop;
                self.scratch.clear();
                self.escape(tok, false)?;
                self.scratch_bytes
                    .extend_from_slice(self.scratch.as_bytes());
                Ok(self.pos)
            }
            // A raw newline or the end of input: the literal is not closed.
            _ => self.err("unterminated string literal", tok),
        }
    }

    fn emit_scratch(&mut self, is_bytes: bool) -> Result<Expr<B::Out>> {
        let out = if is_bytes {
            self.builder.bytes(&self.scratch_bytes)
        } else {
            self.builder.str(&self.scratch)
        };
        out.map(Expr::Built)
    }

    /// Further literals after whitespace (positioned after `ws`), appended to scratch.
    fn more_strings(&mut self, is_bytes: bool) -> Result<()> {
        while self.at_string_start() {
            let tok = self.pos;
            let (b, raw, quote, triple) = self.string_prefix()?;
            if b != is_bytes {
                return self.err("cannot mix bytes and nonbytes literals", tok);
            }
            self.string_body(tok, b, raw, quote, triple)?;
            self.ws()?;
        }
        Ok(())
    }

    /// Reads the prefix and opening quote(s): (bytes, raw, quote char, triple).
    fn string_prefix(&mut self) -> Result<(bool, bool, u8, bool)> {
        if let Some(&quote @ (b'\'' | b'"')) = self.b.get(self.pos) {
            // No prefix (what serpent writes for str).
            let triple = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
            self.pos += if triple { 3 } else { 1 };
            return Ok((false, false, quote, triple));
        }
        let (mut is_bytes, mut raw) = (false, false);
        while let Some(c) = self.peek() {
            match c.to_ascii_lowercase() {
                b'b' => is_bytes = true,
                b'r' => raw = true,
                b'u' => {}
                _ => break,
            }
            self.pos += 1;
        }
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return self.unexpected(),
        };
        let triple = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
        self.pos += if triple { 3 } else { 1 };
        Ok((is_bytes, raw, quote, triple))
    }

    /// Index of the first byte from `i` that ends a plain run inside a literal.
    fn scan_plain(&self, mut i: usize, quote: u8, is_bytes: bool) -> usize {
        use super::encode::swar::{self, first, literal_stop, words};
        let b = self.b;
        if self.no_cr && !is_bytes {
            // Short literals (keys, names) end within a few bytes: two words tested at
            // once are cheaper than setting up the SIMD search.
            for _ in 0..2 {
                let Some(word) = b.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) else {
                    break;
                };
                let stop = swar::str_stop(u64::from_le_bytes(word), quote);
                if stop != 0 {
                    return i + first(stop);
                }
                i += 8;
            }
            return memchr::memchr3(quote, b'\\', b'\n', &b[i..]).map_or(b.len(), |n| i + n);
        }
        loop {
            // Sixteen bytes at a time while none of them can end the run; a word with a
            // possible stop says where the first one is.
            while let Some(block) = b.get(i..i + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok()) {
                let (lo, hi) = words(block);
                let (stop_lo, stop_hi) = (
                    literal_stop(lo, quote, is_bytes),
                    literal_stop(hi, quote, is_bytes),
                );
                if stop_lo | stop_hi == 0 {
                    i += 16;
                    continue;
                }
                i += if stop_lo != 0 {
                    first(stop_lo)
                } else {
                    8 + first(stop_hi)
                };
                break;
            }
            // This byte decides (the word test also stops on other control bytes, and the
            // last few bytes of the input come here one by one).
            match b.get(i) {
                None => return i,
                Some(&c)
                    if c == quote
                        || c == b'\\'
                        || c == b'\n'
                        || c == b'\r'
                        || (is_bytes && c >= 0x80) =>
                {
                    return i
                }
                Some(_) => i += 1,
            }
        }
    }

    fn push_run(&mut self, is_bytes: bool, from: usize, to: usize) {
        if from < to {
            if is_bytes {
                self.scratch_bytes.extend_from_slice(&self.b[from..to]);
            } else {
                // `from` and `to` sit on ASCII bytes (or the ends), so this is a char boundary.
                self.scratch.push_str(&self.src[from..to]);
            }
        }
    }

    fn push_byte_or_char(&mut self, is_bytes: bool, v: u32) {
        if is_bytes {
            self.scratch_bytes.push(v as u8);
        } else if let Some(ch) = char::from_u32(v) {
            self.scratch.push(ch);
        }
    }

    /// The body of one literal after its opening quote(s), up to and including the closing
    /// quote(s), decoded into scratch.
    fn string_body(
        &mut self,
        tok: usize,
        is_bytes: bool,
        raw: bool,
        quote: u8,
        triple: bool,
    ) -> Result<()> {
        loop {
            let run = self.pos;
            let stop = self.scan_plain(run, quote, is_bytes);
            self.push_run(is_bytes, run, stop);
            self.pos = stop;
            let Some(c) = self.peek() else {
                return self.err("unterminated string literal", tok);
            };
            match c {
                c if c == quote => {
                    if !triple {
                        self.pos += 1;
                        return Ok(());
                    }
                    if self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote) {
                        self.pos += 3;
                        return Ok(());
                    }
                    self.push_byte_or_char(is_bytes, u32::from(quote));
                    self.pos += 1;
                }
                b'\n' | b'\r' => {
                    if !triple {
                        return self.err("unterminated string literal", tok);
                    }
                    self.newline_in_string(is_bytes);
                }
                b'\\' => {
                    if raw {
                        self.raw_escape(tok, is_bytes, quote)?;
                    } else {
                        self.escape(tok, is_bytes)?;
                    }
                }
                _ => {
                    // only bytes stop on non-ASCII
                    return self.err("bytes can only contain ASCII literal characters", self.pos);
                }
            }
        }
    }

    /// A newline inside a literal; Python's tokenizer has turned `\r\n` and `\r` into `\n`.
    fn newline_in_string(&mut self, is_bytes: bool) {
        if self.peek() == Some(b'\r') && self.peek_at(1) == Some(b'\n') {
            self.pos += 1;
        }
        self.pos += 1;
        self.push_byte_or_char(is_bytes, u32::from(b'\n'));
    }

    /// In a raw literal a backslash stays, and protects the next quote/backslash/newline.
    fn raw_escape(&mut self, tok: usize, is_bytes: bool, quote: u8) -> Result<()> {
        self.pos += 1;
        self.push_byte_or_char(is_bytes, u32::from(b'\\'));
        match self.peek() {
            None => self.err("unterminated string literal", tok),
            Some(b'\n' | b'\r') => {
                self.newline_in_string(is_bytes);
                Ok(())
            }
            Some(c) if c == quote || c == b'\\' => {
                self.pos += 1;
                self.push_byte_or_char(is_bytes, u32::from(c));
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    fn hex_digits(&mut self, n: usize, esc: usize, what: &str) -> Result<u32> {
        let mut v: u32 = 0;
        for _ in 0..n {
            match self.peek().and_then(|c| (c as char).to_digit(16)) {
                Some(d) => {
                    v = (v << 4) | d;
                    self.pos += 1;
                }
                None => return self.err(format!("truncated {what} escape"), esc),
            }
        }
        Ok(v)
    }

    /// A backslash escape in a non-raw literal (CPython `_PyUnicode_DecodeUnicodeEscape` /
    /// `_PyBytes_DecodeEscape`).
    fn escape(&mut self, tok: usize, is_bytes: bool) -> Result<()> {
        let esc = self.pos;
        self.pos += 1;
        let Some(c) = self.peek() else {
            return self.err("unterminated string literal", tok);
        };
        let simple = match c {
            b'\n' => {
                self.pos += 1; // line continuation inside the literal
                return Ok(());
            }
            b'\r' => {
                self.pos += 1;
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
                return Ok(());
            }
            b'\\' | b'\'' | b'"' => Some(c),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            _ => None,
        };
        if let Some(v) = simple {
            self.pos += 1;
            self.push_byte_or_char(is_bytes, u32::from(v));
            return Ok(());
        }
        match c {
            b'0'..=b'7' => {
                // Up to three octal digits; bytes keep the low 8 bits like CPython 3.11.
                let mut v = 0u32;
                let mut n = 0;
                while n < 3 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            self.pos += 1;
                            n += 1;
                        }
                        _ => break,
                    }
                }
                self.push_byte_or_char(is_bytes, if is_bytes { v & 0xff } else { v });
            }
            b'x' => {
                self.pos += 1;
                let v = self.hex_digits(2, esc, "\\xXX")?;
                self.push_byte_or_char(is_bytes, v);
            }
            b'u' | b'U' if !is_bytes => {
                self.pos += 1;
                let v = if c == b'u' {
                    self.hex_digits(4, esc, "\\uXXXX")?
                } else {
                    self.hex_digits(8, esc, "\\UXXXXXXXX")?
                };
                if (0xD800..=0xDFFF).contains(&v) {
                    // Python allows lone surrogates in str; a Rust String cannot hold one.
                    return self.err("lone surrogate escape is not supported", esc);
                }
                if v > 0x10FFFF {
                    return self.err("illegal Unicode character", esc);
                }
                self.push_byte_or_char(is_bytes, v);
            }
            b'N' if !is_bytes => {
                return self.err("\\N{...} escapes are not supported", esc);
            }
            _ => {
                // Unknown escape: Python keeps the backslash (with a DeprecationWarning);
                // the character itself is copied by the next plain run.
                self.push_byte_or_char(is_bytes, u32::from(b'\\'));
            }
        }
        Ok(())
    }

    /// Consume `digit (['_'] digit)*` in `radix`; returns the digit count.
    fn digit_part(&mut self, radix: u32) -> usize {
        let mut n = 0;
        while let Some(c) = self.peek() {
            if (c as char).is_digit(radix) {
                self.pos += 1;
                n += 1;
            } else if c == b'_'
                && n > 0
                && self.peek_at(1).is_some_and(|d| (d as char).is_digit(radix))
            {
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }

    fn number(&mut self) -> Result<Expr<B::Out>> {
        let start = self.pos;
        let radix = match (self.peek(), self.peek_at(1).map(|c| c.to_ascii_lowercase())) {
            (Some(b'0'), Some(b'x')) => 16,
            (Some(b'0'), Some(b'o')) => 8,
            (Some(b'0'), Some(b'b')) => 2,
            _ => 10,
        };
        if radix != 10 {
            self.pos += 2;
            // `0x_1` is valid: one underscore may follow the prefix.
            if self.peek() == Some(b'_') {
                self.pos += 1;
            }
            let n = self.digit_part(radix);
            if n == 0 || self.peek().is_some_and(is_ident_byte) {
                return self.err("invalid integer literal", start);
            }
            let digits: Vec<u8> = self.b[start + 2..self.pos]
                .iter()
                .copied()
                .filter(|&c| c != b'_')
                .collect();
            let big = BigInt::parse_bytes(&digits, radix);
            return match big {
                Some(b) => Ok(Expr::Num(big_to_num(b), Form::Constant)),
                None => self.err("invalid integer literal", start),
            };
        }
        let int_digits = self.digit_part(10);
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            is_float = true;
            self.digit_part(10);
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digit_part(10) == 0 {
                return self.err("invalid decimal literal", start);
            }
            is_float = true;
        }
        let end = self.pos;
        let imag = matches!(self.peek(), Some(b'j' | b'J'));
        if imag {
            self.pos += 1;
        }
        if self.peek().is_some_and(is_ident_byte) {
            return self.err("invalid decimal literal", start);
        }
        let text = &self.b[start..end];
        if !is_float && !imag {
            if text.len() > 1 && text[0] == b'0' && text.iter().any(|&c| c != b'0' && c != b'_') {
                return self.err(
                    "leading zeros in decimal integer literals are not permitted",
                    start,
                );
            }
            // CPython >= 3.11 refuses decimal int literals over sys.get_int_max_str_digits().
            if int_digits > self.limits.max_int_digits {
                return Err(Error::IntTooLarge {
                    codec: CODEC,
                    limit: self.limits.max_int_digits,
                    offset: start,
                });
            }
            if int_digits <= 18 && !text.contains(&b'_') {
                let v = text
                    .iter()
                    .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0'));
                return Ok(Expr::Num(Num::Int(v), Form::Constant));
            }
            let digits: Vec<u8> = text.iter().copied().filter(|&c| c != b'_').collect();
            return match BigInt::parse_bytes(&digits, 10) {
                Some(b) => Ok(Expr::Num(big_to_num(b), Form::Constant)),
                None => self.err("invalid decimal literal", start),
            };
        }
        let parsed = if text.contains(&b'_') {
            let cleaned: String = self.src[start..end].chars().filter(|&c| c != '_').collect();
            cleaned.parse::<f64>()
        } else {
            self.src[start..end].parse::<f64>()
        };
        let Ok(f) = parsed else {
            return self.err("invalid decimal literal", start);
        };
        let n = if imag {
            Num::Complex(0.0, f)
        } else {
            Num::Float(f)
        };
        Ok(Expr::Num(n, Form::Constant))
    }
}

fn big_to_num(b: BigInt) -> Num {
    match b.to_i64() {
        Some(i) => Num::Int(i),
        None => Num::Big(b),
    }
}

#[cfg(test)]
mod digit_word_tests {
    use super::digit_word;

    fn scalar(b: &[u8]) -> (usize, i64) {
        let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let v = b[..n]
            .iter()
            .fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
        (n, v)
    }

    #[test]
    fn digit_runs_match_the_byte_loop() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for v in (0..100_000_000u64)
            .step_by(9_973)
            .chain([0, 9, 10, 99_999_999, 12_345_678])
        {
            for tail in [&b","[..], b"]", b")", b"}", b".5,", b"e3,", b"j,", b"x"] {
                let mut t = v.to_string().into_bytes();
                t.extend_from_slice(tail);
                t.extend_from_slice(b"        ");
                cases.push(t);
            }
        }
        for odd in [
            &b"0123,   "[..],
            b"-1,     ",
            b",5      ",
            b"00000000,",
            b"123456789,",
            b"1\xff     ",
        ] {
            cases.push(odd.to_vec());
        }
        for c in &cases {
            if let Some(got) = digit_word(c, 0) {
                assert_eq!(got, scalar(c), "{:?}", String::from_utf8_lossy(c));
            } else {
                assert!(
                    c.len() < 8 || scalar(c).0 >= 8,
                    "{:?}",
                    String::from_utf8_lossy(c)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(doc: &[u8]) -> Result<Value> {
        parse_with(doc, &DecodeLimits::default(), &mut ValueBuilder)
    }

    /// The AVX2 paths (input check, runs of str literals with escapes, ASCII check) and
    /// the portable ones give the same values and the same errors, with stops and escapes
    /// at every position around the 32-byte steps and non-ASCII text, CR, NUL and bad
    /// UTF-8 in the input.
    #[test]
    fn avx2_and_portable_paths_agree() {
        let both = |doc: &[u8]| {
            let fast = format!("{:?}", parse(doc));
            super::super::avx2::PORTABLE.with(|p| p.set(true));
            let portable = format!("{:?}", parse(doc));
            super::super::avx2::PORTABLE.with(|p| p.set(false));
            assert_eq!(fast, portable, "{:?}", String::from_utf8_lossy(doc));
            fast
        };
        let mut docs: Vec<Vec<u8>> = Vec::new();
        for len in [0usize, 1, 31, 32, 33, 63, 64, 65, 100] {
            for at in [0, 1, 15, 31, 32, 33, 64, 99] {
                if at > len {
                    continue;
                }
                for ins in [
                    &b"\\n"[..],
                    b"\\'",
                    b"\\x41",
                    b"\\xe9",
                    b"\\u4e2d",
                    b"\xc3\xa9",
                    b"\n",
                    b"\r",
                    b"\0",
                    b"\xff",
                    b"'",
                ] {
                    let mut body = vec![b'a'; len];
                    body.splice(at..at, ins.iter().copied());
                    // An escape first, so the literal takes the decoding loop.
                    let doc = [b"['\\t".as_slice(), &body, b"', 'b']"].concat();
                    docs.push(doc);
                }
            }
        }
        let mut good = 0;
        for doc in &docs {
            if both(doc).starts_with("Ok") {
                good += 1;
            }
        }
        assert!(good > docs.len() / 2, "{good} of {}", docs.len());
        assert_eq!(
            both(b"['\\tab\\ncd' 'ef', 'x']"),
            format!(
                "{:?}",
                Ok::<_, Error>(Value::List(vec![Value::str("\tab\ncdef"), Value::str("x")]))
            )
        );
    }

    /// A NUL anywhere is refused with its offset.
    #[test]
    fn nul_is_refused_at_its_offset() {
        for len in [0usize, 1, 31, 32, 33, 100] {
            let doc = [b"'".as_slice(), &vec![b'a'; len], b"'"].concat();
            assert_eq!(parse(&doc).unwrap(), Value::Str("a".repeat(len)));
            for at in 0..doc.len() {
                let mut v = doc.clone();
                v[at] = 0;
                match parse(&v) {
                    Err(Error::Syntax { offset, .. }) => assert_eq!(offset, at),
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    /// A document without `\r` scans str literals with memchr3, one with `\r` with the
    /// word scanner: both find the same stops (quote, escapes, raw newlines) at every
    /// position and length.
    #[test]
    fn both_literal_scanners_agree() {
        for len in [1usize, 7, 15, 16, 17, 40, 70] {
            for at in 0..len {
                for stop in [&b"\\n"[..], b"\\'", b"\n", b"'", b"\"", b"\\\n", b"\xe9"] {
                    let mut body = vec![b'a'; len];
                    body.splice(at..at + 1, stop.iter().copied());
                    let doc = [b"'".as_slice(), &body, b"'"].concat();
                    let with_cr = [doc.as_slice(), b"\r\n"].concat();
                    let a = parse(&doc).map_err(|e| e.to_string());
                    let b = parse(&with_cr).map_err(|e| e.to_string());
                    assert_eq!(a, b, "{:?}", String::from_utf8_lossy(&doc));
                }
            }
        }
    }

    /// Compact int items (the `int_run` loop) parse exactly as the same items with spaces
    /// around them (the general walk), errors included.
    #[test]
    fn int_run_agrees_with_the_general_walk() {
        let items = [
            "0",
            "-0",
            "7",
            "-7",
            "00",
            "007",
            "-01",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999999",
            "1e5",
            "1.5",
            "0x10",
            "1_000",
            "1j",
            "1+2j",
            "2-1j",
            "True",
            "'a'",
            "-",
            "--1",
            "1a",
        ];
        for a in items {
            for b in items {
                for (open, close) in [("[", "]"), ("(", ")"), ("{", "}")] {
                    let compact = format!("{open}1,{a},{b},{a}{close}");
                    let spaced = format!("{open} 1 , {a} , {b} , {a} {close}");
                    let x = parse(compact.as_bytes()).map_err(|_| ());
                    let y = parse(spaced.as_bytes()).map_err(|_| ());
                    assert_eq!(x, y, "{compact}");
                    let trailing = format!("{open}1,{a},{close}");
                    let x = parse(trailing.as_bytes()).map_err(|_| ());
                    let y = parse(format!("{open} 1 , {a} , {close}").as_bytes()).map_err(|_| ());
                    assert_eq!(x, y, "{trailing}");
                }
            }
        }
    }
}
