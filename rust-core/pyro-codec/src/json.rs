//! Pyro4's json serializer: the layout of Python's `json.dumps(ensure_ascii=False)`
//! (`", "` and `": "` separators, raw UTF-8, NaN/Infinity/-Infinity tokens) and a
//! lenient reader that accepts those tokens.
//!
//! The encoder mirrors `Pyro4.util.JsonSerializer.dumps`: Python's `json` module with
//! Pyro4's `default` hook, which turns sets into tuples (so into arrays) and refuses
//! bytes and complex numbers (Pyro4 raises `SerializeError` for them). The reader mirrors
//! `json.loads` (the C scanner of CPython 3.11): strict about control characters inside
//! strings, lenient about the non-standard `NaN`, `Infinity` and `-Infinity` tokens that
//! Python itself writes.

use crate::{DecodeLimits, Dict, Error, Result, Value};
use num_bigint::BigInt;

const CODEC: &str = "json";

/// Encoder nesting cap: deeper values would hit Python's recursion limit on the peer
/// (and would overflow our own stack long before that matters).
const MAX_ENCODE_DEPTH: usize = 1000;

/// CPython >= 3.11 refuses to convert ints with more decimal digits than this to text
/// (`sys.get_int_max_str_digits()`), so `json.dumps` fails on them; we refuse as well.
const PY_INT_MAX_STR_DIGITS: usize = 4300;

/// Encode as Python's json module would (tuples and sets become arrays; bytes and
/// complex are refused like Pyro4's SerializeError).
pub fn to_vec(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    write_value(&mut out, value, 0)?;
    Ok(out)
}

/// Parse within `limits`.
pub fn from_slice_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Value> {
    // Pyro4 decodes the whole payload as UTF-8 before handing it to json.loads.
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Syntax {
        codec: CODEC,
        message: "invalid UTF-8".into(),
        offset: e.valid_up_to(),
    })?;
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        limits: *limits,
    };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(p.err("extra data"));
    }
    Ok(v)
}

/// Parse with default limits.
pub fn from_slice(bytes: &[u8]) -> Result<Value> {
    from_slice_with(bytes, &DecodeLimits::default())
}

// ---------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------

fn write_value(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<()> {
    if depth > MAX_ENCODE_DEPTH {
        return Err(Error::Unencodable(
            "maximum recursion depth exceeded while encoding json".into(),
        ));
    }
    match value {
        Value::None => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::BigInt(b) => write_bigint(out, b)?,
        Value::Float(f) => write_float(out, *f),
        Value::Str(s) => write_str(out, s),
        // Pyro4's JsonSerializer.default falls through to class_to_dict for these, which
        // ends in SerializeError ("don't know how to serialize class ...").
        Value::Bytes(_) => return Err(Error::Unencodable("json cannot serialize bytes".into())),
        Value::Complex(..) => {
            return Err(Error::Unencodable("json cannot serialize complex".into()))
        }
        // tuple is a JSON array in Python; Pyro4's default() turns a set into a tuple.
        Value::Tuple(items) | Value::List(items) | Value::Set(items) => {
            out.push(b'[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_value(out, it, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Dict(d) => {
            out.push(b'{');
            for (i, (k, v)) in d.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_key(out, k)?;
                out.extend_from_slice(b": ");
                write_value(out, v, depth + 1)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Python's json converts int/float/bool/None keys to their JSON text, as a string.
fn write_key(out: &mut Vec<u8>, key: &Value) -> Result<()> {
    match key {
        Value::Str(s) => write_str(out, s),
        Value::Bool(_) | Value::None | Value::Int(_) | Value::BigInt(_) | Value::Float(_) => {
            let mut tmp = Vec::new();
            write_value(&mut tmp, key, 0)?;
            out.push(b'"');
            out.extend_from_slice(&tmp);
            out.push(b'"');
        }
        other => {
            return Err(Error::Unencodable(format!(
                "keys must be str, int, float, bool or None, not {}",
                other.type_name()
            )))
        }
    }
    Ok(())
}

fn write_bigint(out: &mut Vec<u8>, b: &BigInt) -> Result<()> {
    let text = b.to_string();
    let digits = text.trim_start_matches('-').len();
    if digits > PY_INT_MAX_STR_DIGITS {
        return Err(Error::Unencodable(format!(
            "int with {digits} digits exceeds Python's limit of {PY_INT_MAX_STR_DIGITS} for integer string conversion"
        )));
    }
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// `json.encoder` float rule: `NaN`, `Infinity`, `-Infinity`, else `float.__repr__`.
fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        crate::serpent::encode::write_float_repr(out, f);
    }
}

/// `json.encoder.py_encode_basestring` (ensure_ascii=False): escape `"` `\` and the
/// C0 controls (short forms for \b \f \n \r \t, `\u00xx` otherwise), all else raw.
fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

// ---------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    limits: DecodeLimits,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> Error {
        if self.pos >= self.s.len() {
            return Error::Eof { codec: CODEC };
        }
        Error::Syntax {
            codec: CODEC,
            message: message.to_string(),
            offset: self.pos,
        }
    }

    fn err_at(&self, message: &str, offset: usize) -> Error {
        Error::Syntax {
            codec: CODEC,
            message: message.to_string(),
            offset,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// JSON whitespace as Python's scanner defines it.
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("expecting value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        match self.peek() {
            None => Err(Error::Eof { codec: CODEC }),
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'n') => self.literal(b"null", Value::None),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            // Non-standard tokens Python writes and reads by default (allow_nan=True).
            Some(b'N') => self.literal(b"NaN", Value::Float(f64::NAN)),
            Some(b'I') => self.literal(b"Infinity", Value::Float(f64::INFINITY)),
            Some(b'-') if self.s[self.pos..].starts_with(b"-Infinity") => {
                self.pos += 9;
                Ok(Value::Float(f64::NEG_INFINITY))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expecting value")),
        }
    }

    fn enter(&self, depth: usize) -> Result<()> {
        if depth > self.limits.max_depth {
            return Err(Error::TooDeep {
                codec: CODEC,
                limit: self.limits.max_depth,
                offset: self.pos,
            });
        }
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<Value> {
        self.enter(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::List(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::List(items));
                }
                _ => return Err(self.err("expecting ',' delimiter")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value> {
        self.enter(depth)?;
        self.pos += 1; // '{'
        let mut pairs = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Dict(Dict::new()));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expecting property name enclosed in double quotes"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expecting ':' delimiter"));
            }
            self.pos += 1;
            self.skip_ws();
            let v = self.value(depth)?;
            pairs.push((Value::Str(key), v));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    // Duplicate keys: the first position, the last value (Python's dict).
                    return Ok(Value::Dict(Dict::from_pairs(pairs)?));
                }
                _ => return Err(self.err("expecting ',' delimiter")),
            }
        }
    }

    fn number(&mut self) -> Result<Value> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
            }
            _ => return Err(self.err_at("expecting value", start)),
        }
        let int_end = self.pos;
        let mut is_float = false;
        // Fraction and exponent only count when complete, like Python's NUMBER_RE.
        if self.peek() == Some(b'.') && matches!(self.s.get(self.pos + 1), Some(b'0'..=b'9')) {
            is_float = true;
            self.pos += 1;
            while let Some(b'0'..=b'9') = self.peek() {
                self.pos += 1;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            let mut q = self.pos + 1;
            if let Some(b'+' | b'-') = self.s.get(q) {
                q += 1;
            }
            if matches!(self.s.get(q), Some(b'0'..=b'9')) {
                is_float = true;
                self.pos = q;
                while let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
            }
        }
        // The slice is ASCII digits and signs only.
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        if is_float {
            return text
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| self.err_at("invalid number", start));
        }
        if int_end - int_start > self.limits.max_int_digits {
            return Err(Error::IntTooLarge {
                codec: CODEC,
                limit: self.limits.max_int_digits,
                offset: start,
            });
        }
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        BigInt::parse_bytes(text.as_bytes(), 10)
            .map(Value::from_bigint)
            .ok_or_else(|| self.err_at("invalid number", start))
    }

    fn hex4(&self, at: usize) -> Result<u32> {
        let h = self.s.get(at..at + 4).ok_or(Error::Eof { codec: CODEC })?;
        let mut v = 0u32;
        for &c in h {
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| self.err_at("invalid \\uXXXX escape", at))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            let Some(b) = self.peek() else {
                return Err(Error::Eof { codec: CODEC });
            };
            match b {
                b'"' => {
                    out.push_str(self.slice_str(run, self.pos));
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    out.push_str(self.slice_str(run, self.pos));
                    let esc_at = self.pos;
                    let Some(e) = self.s.get(self.pos + 1).copied() else {
                        return Err(Error::Eof { codec: CODEC });
                    };
                    self.pos += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut cp = self.hex4(self.pos)?;
                            self.pos += 4;
                            if (0xd800..0xdc00).contains(&cp)
                                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                let lo = self.hex4(self.pos + 2)?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                    self.pos += 6;
                                }
                            }
                            // Python would keep a lone surrogate; a Rust String cannot.
                            let c = char::from_u32(cp).ok_or_else(|| {
                                self.err_at("lone surrogate in \\u escape", esc_at)
                            })?;
                            out.push(c);
                        }
                        _ => return Err(self.err_at("invalid \\escape", esc_at)),
                    }
                    run = self.pos;
                }
                0..=0x1f => return Err(self.err("invalid control character in string")),
                _ => self.pos += 1,
            }
        }
    }

    /// A run of plain string bytes: boundaries are ASCII, and the input was validated
    /// as UTF-8 up front, so this cannot fail.
    fn slice_str(&self, a: usize, b: usize) -> &str {
        std::str::from_utf8(&self.s[a..b]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_follows_python() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e300, "1.5e+300"),
            (123.456, "123.456"),
            (5e-324, "5e-324"),
        ] {
            let mut out = Vec::new();
            write_float(&mut out, f);
            assert_eq!(String::from_utf8(out).unwrap(), s, "{f}");
        }
    }

    #[test]
    fn escapes() {
        let v = Value::str("a\"\\\n\u{1}\u{7f}é");
        assert_eq!(
            to_vec(&v).unwrap(),
            "\"a\\\"\\\\\\n\\u0001\u{7f}é\"".as_bytes()
        );
    }
}
