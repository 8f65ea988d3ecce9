//! Shared helpers for the golden-vector tests of json, marshal and the envelopes: the
//! value description notation written by `scripts/golden/gen_codecs.py`, the case
//! manifests, and a comparison that treats sets as unordered.
#![allow(dead_code, unreachable_pub)]

use num_bigint::BigInt;
use pyro_codec::{Dict, Value};
use std::path::PathBuf;

/// One manifest line: name, the `.bin` bytes (if any) and the remaining fields.
pub struct Case {
    pub name: String,
    pub data: Option<Vec<u8>>,
    pub fields: Vec<String>,
}

/// All cases of `tests/data/<sub>/cases.txt`.
pub fn cases(sub: &str) -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(sub);
    let text =
        std::fs::read_to_string(dir.join("cases.txt")).expect("run scripts/golden/gen_codecs.py");
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut parts = line.split('|').map(str::to_string);
        let name = parts.next().unwrap();
        let data = std::fs::read(dir.join(format!("{name}.bin"))).ok();
        out.push(Case {
            name,
            data,
            fields: parts.collect(),
        });
    }
    assert!(out.len() > 10, "too few cases in {sub}");
    out
}

/// Parse one description (see the generator's docstring).
pub fn parse(desc: &str) -> Value {
    let mut p = Desc {
        s: desc.as_bytes(),
        pos: 0,
    };
    let v = p.value();
    assert_eq!(p.pos, desc.len(), "trailing description text in {desc}");
    v
}

struct Desc<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Desc<'_> {
    fn until(&mut self, end: u8) -> &str {
        let start = self.pos;
        while self.s[self.pos] != end {
            self.pos += 1;
        }
        self.pos += 1;
        std::str::from_utf8(&self.s[start..self.pos - 1]).unwrap()
    }
    fn hex(&mut self, n: usize) -> Vec<u8> {
        let t = std::str::from_utf8(&self.s[self.pos..self.pos + n]).unwrap();
        self.pos += n;
        unhex(t)
    }
    fn f64(&mut self) -> f64 {
        let b = self.hex(16);
        f64::from_be_bytes(b.try_into().unwrap())
    }
    fn items(&mut self, end: u8) -> Vec<Value> {
        let mut v = Vec::new();
        while self.s[self.pos] != end {
            v.push(self.value());
        }
        self.pos += 1;
        v
    }
    fn value(&mut self) -> Value {
        let c = self.s[self.pos];
        self.pos += 1;
        match c {
            b'N' => Value::None,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' => Value::from_bigint(self.until(b';').parse::<BigInt>().unwrap()),
            b'f' => Value::Float(self.f64()),
            b'c' => {
                let r = self.f64();
                Value::Complex(r, self.f64())
            }
            b's' => {
                let h = self.until(b';').to_string();
                Value::Str(String::from_utf8(unhex(&h)).unwrap())
            }
            b'b' => {
                let h = self.until(b';').to_string();
                Value::Bytes(unhex(&h))
            }
            b'(' => Value::Tuple(self.items(b')')),
            b'[' => Value::List(self.items(b']')),
            b'{' => Value::Set(self.items(b'}')),
            b'<' => {
                let flat = self.items(b'>');
                let mut it = flat.into_iter();
                let mut pairs = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Value::Dict(Dict::from_unique_pairs(pairs))
            }
            other => panic!("bad description byte {}", other as char),
        }
    }
}

pub fn unhex(t: &str) -> Vec<u8> {
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).unwrap())
        .collect()
}

/// Structural equality (floats bit for bit) with sets compared as unordered
/// collections, since Python's set iteration order is not part of any format.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().all(|i| y.iter().any(|j| same(i, j)))
        }
        (Value::Tuple(x), Value::Tuple(y)) | (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(i, j)| same(i, j))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.entries()
                    .iter()
                    .zip(y.entries())
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => a == b,
    }
}

#[track_caller]
pub fn assert_same(name: &str, got: &Value, want: &Value) {
    assert!(same(got, want), "{name}: got {got:?}, want {want:?}");
}

/// Show bytes readably in assertion messages.
pub fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}
