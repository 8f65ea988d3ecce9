//! The pickler: the opcodes CPython's `pickle.dumps(obj, protocol)` writes for each value
//! kind (without memo opcodes: a [`Value`] is a tree, so nothing is referenced twice),
//! and the object forms Python's unpickler rebuilds into real Pyro4 exceptions, URIs,
//! proxies and batch exception wrappers.

use super::ops::*;
use crate::envelope::{proxy_from_value, uri_to_value, RemoteException};
use crate::{Dict, Error, Result, Value};
use num_bigint::BigInt;

/// Deeper values are refused (CPython's own pickler would hit its recursion limit near
/// 1000 levels as well).
const MAX_DEPTH: usize = 1000;

/// Items per APPENDS/SETITEMS/ADDITEMS batch, as `pickle._BATCHSIZE`.
const BATCH: usize = 1000;

pub(crate) fn encode_into(value: &Value, protocol: u8, out: &mut Vec<u8>) -> Result<()> {
    if !(2..=super::HIGHEST_PROTOCOL).contains(&protocol) {
        return Err(Error::Unsupported(format!(
            "pickle protocol {protocol} is not supported for writing (2 to 5 are)"
        )));
    }
    out.extend_from_slice(&[PROTO, protocol]);
    if protocol < 4 {
        Enc { protocol, out }.value(value, 0)?;
        out.push(STOP);
        return Ok(());
    }
    // Protocol 4+: one frame around everything after PROTO (CPython writes ~64 KiB frames;
    // any frame size is valid, and tiny pickles get none, as CPython does below 4 bytes).
    let frame_at = out.len();
    out.push(FRAME);
    out.extend_from_slice(&[0; 8]);
    let body = out.len();
    Enc { protocol, out }.value(value, 0)?;
    out.push(STOP);
    let n = out.len() - body;
    if n < 4 {
        out.drain(frame_at..body);
    } else {
        out[frame_at + 1..body].copy_from_slice(&(n as u64).to_le_bytes());
    }
    Ok(())
}

struct Enc<'a> {
    protocol: u8,
    out: &'a mut Vec<u8>,
}

fn unencodable(msg: impl Into<String>) -> Error {
    Error::Unencodable(msg.into())
}

impl Enc<'_> {
    fn value(&mut self, v: &Value, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(unencodable(format!(
                "value nested deeper than {MAX_DEPTH} levels"
            )));
        }
        match v {
            Value::None => self.out.push(NONE),
            Value::Bool(true) => self.out.push(NEWTRUE),
            Value::Bool(false) => self.out.push(NEWFALSE),
            Value::Int(i) => self.int(*i),
            Value::BigInt(b) => self.big(b),
            Value::Float(f) => self.float(*f),
            Value::Complex(r, i) => {
                self.global("builtins", "complex")?;
                self.float(*r);
                self.float(*i);
                self.out.extend_from_slice(&[TUPLE2, REDUCE]);
            }
            Value::Str(s) => self.str(s)?,
            Value::Bytes(b) => self.bytes(b)?,
            Value::Tuple(items) => self.tuple(items, depth)?,
            Value::List(items) => {
                self.out.push(EMPTY_LIST);
                self.batched(items, APPEND, APPENDS, depth)?;
            }
            Value::Set(items) => {
                if self.protocol >= 4 {
                    self.out.push(EMPTY_SET);
                    self.batched(items, ADDITEMS, ADDITEMS, depth)?;
                } else {
                    // set.__reduce__: set([items]).
                    self.global("builtins", "set")?;
                    self.out.push(EMPTY_LIST);
                    self.batched(items, APPEND, APPENDS, depth)?;
                    self.out.extend_from_slice(&[TUPLE1, REDUCE]);
                }
            }
            Value::Dict(d) => {
                if d.get_str("__class__").is_some() && self.object(v, d, depth)? {
                    return Ok(());
                }
                self.dict(d, depth)?;
            }
        }
        Ok(())
    }

    fn int(&mut self, i: i64) {
        match i {
            0..=0xff => self.out.extend_from_slice(&[BININT1, i as u8]),
            0x100..=0xffff => {
                self.out.push(BININT2);
                self.out.extend_from_slice(&(i as u16).to_le_bytes());
            }
            _ => match i32::try_from(i) {
                Ok(v) => {
                    self.out.push(BININT);
                    self.out.extend_from_slice(&v.to_le_bytes());
                }
                Err(_) => self.big(&BigInt::from(i)),
            },
        }
    }

    fn big(&mut self, b: &BigInt) {
        // Minimal two's complement, little-endian (pickle.encode_long).
        let bytes = b.to_signed_bytes_le();
        match u8::try_from(bytes.len()) {
            Ok(n) => self.out.extend_from_slice(&[LONG1, n]),
            Err(_) => {
                self.out.push(LONG4);
                self.out
                    .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            }
        }
        self.out.extend_from_slice(&bytes);
    }

    fn float(&mut self, f: f64) {
        self.out.push(BINFLOAT);
        self.out.extend_from_slice(&f.to_be_bytes());
    }

    fn str(&mut self, s: &str) -> Result<()> {
        let n = s.len();
        if self.protocol >= 4 && n < 256 {
            self.out.extend_from_slice(&[SHORT_BINUNICODE, n as u8]);
        } else if let Ok(n) = u32::try_from(n) {
            self.out.push(BINUNICODE);
            self.out.extend_from_slice(&n.to_le_bytes());
        } else if self.protocol >= 4 {
            self.out.push(BINUNICODE8);
            self.out.extend_from_slice(&(n as u64).to_le_bytes());
        } else {
            return Err(unencodable("str larger than 4 GiB needs pickle protocol 4"));
        }
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn bytes(&mut self, b: &[u8]) -> Result<()> {
        if self.protocol < 3 {
            // Protocol 2 has no bytes opcode: CPython writes bytes.__reduce_ex__(2), i.e.
            // _codecs.encode(latin-1 text, 'latin1'), and bytes() for the empty one.
            if b.is_empty() {
                self.global("builtins", "bytes")?;
                self.out.extend_from_slice(&[EMPTY_TUPLE, REDUCE]);
                return Ok(());
            }
            self.global("_codecs", "encode")?;
            let text: String = b.iter().map(|&c| c as char).collect();
            self.str(&text)?;
            self.str("latin1")?;
            self.out.extend_from_slice(&[TUPLE2, REDUCE]);
            return Ok(());
        }
        let n = b.len();
        if n < 256 {
            self.out.extend_from_slice(&[SHORT_BINBYTES, n as u8]);
        } else if let Ok(n) = u32::try_from(n) {
            self.out.push(BINBYTES);
            self.out.extend_from_slice(&n.to_le_bytes());
        } else if self.protocol >= 4 {
            self.out.push(BINBYTES8);
            self.out.extend_from_slice(&(n as u64).to_le_bytes());
        } else {
            return Err(unencodable(
                "bytes larger than 4 GiB need pickle protocol 4",
            ));
        }
        self.out.extend_from_slice(b);
        Ok(())
    }

    fn tuple(&mut self, items: &[Value], depth: usize) -> Result<()> {
        match items.len() {
            0 => self.out.push(EMPTY_TUPLE),
            n @ 1..=3 => {
                for it in items {
                    self.value(it, depth + 1)?;
                }
                self.out.push(TUPLE1 + (n as u8 - 1));
            }
            _ => {
                self.out.push(MARK);
                for it in items {
                    self.value(it, depth + 1)?;
                }
                self.out.push(TUPLE);
            }
        }
        Ok(())
    }

    /// Items onto the container on the stack top, in batches like `Pickler._batch_appends`.
    fn batched(&mut self, items: &[Value], one: u8, many: u8, depth: usize) -> Result<()> {
        for chunk in items.chunks(BATCH) {
            if chunk.len() == 1 && one != many {
                self.value(&chunk[0], depth + 1)?;
                self.out.push(one);
                continue;
            }
            self.out.push(MARK);
            for it in chunk {
                self.value(it, depth + 1)?;
            }
            self.out.push(many);
        }
        Ok(())
    }

    fn dict(&mut self, d: &Dict, depth: usize) -> Result<()> {
        self.out.push(EMPTY_DICT);
        for chunk in d.entries().chunks(BATCH) {
            if let [(k, v)] = chunk {
                self.value(k, depth + 1)?;
                self.value(v, depth + 1)?;
                self.out.push(SETITEM);
                continue;
            }
            self.out.push(MARK);
            for (k, v) in chunk {
                self.value(k, depth + 1)?;
                self.value(v, depth + 1)?;
            }
            self.out.push(SETITEMS);
        }
        Ok(())
    }

    /// GLOBAL (protocol < 4) or STACK_GLOBAL (4+), with Python 2's `__builtin__` module
    /// name at protocol 2 (what `fix_imports` writes; Python 3 maps it back).
    fn global(&mut self, module: &str, name: &str) -> Result<()> {
        let module = match (module, self.protocol) {
            ("builtins", 2) => "__builtin__",
            ("__builtin__" | "exceptions", p) if p >= 3 => "builtins",
            (m, _) => m,
        };
        if self.protocol >= 4 {
            self.str(module)?;
            self.str(name)?;
            self.out.push(STACK_GLOBAL);
            return Ok(());
        }
        if module.contains('\n') || name.contains('\n') || module.is_empty() || name.is_empty() {
            return Err(unencodable(format!("bad class name {module}.{name}")));
        }
        self.out.push(GLOBAL);
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
        Ok(())
    }

    /// `cls.__new__(cls)` then BUILD with `state`, as `copyreg.__reduce_ex__` pickles an
    /// object without `__reduce__` of its own (URI, Proxy, _ExceptionWrapper).
    fn new_object(&mut self, module: &str, name: &str) -> Result<()> {
        self.global(module, name)?;
        self.out.extend_from_slice(&[EMPTY_TUPLE, NEWOBJ]);
        Ok(())
    }

    /// Class dicts Pyro4 turns into objects; false when `d` is to be pickled as a dict.
    fn object(&mut self, v: &Value, d: &Dict, depth: usize) -> Result<bool> {
        let class = d.get_str("__class__").and_then(Value::as_str).unwrap_or("");
        match class {
            "Pyro4.core.URI" => {
                let Some(state) = d.get_str("state").and_then(Value::as_seq) else {
                    return Err(unencodable("Pyro4.core.URI class dict without a state"));
                };
                self.new_object("Pyro4.core", "URI")?;
                self.tuple(state, depth)?;
                self.out.push(BUILD);
                Ok(true)
            }
            "Pyro4.core.Proxy" => {
                let Some(p) = proxy_from_value(v) else {
                    return Err(unencodable("invalid Pyro4.core.Proxy class dict"));
                };
                // Proxy.__getstate__: (URI object, oneway, methods, attrs as sets, timeout,
                // hmac key bytes, handshake, max retries, serializer).
                let names = |n: &[String]| Value::Set(n.iter().cloned().map(Value::Str).collect());
                let uri = uri_to_value(&p.uri);
                let state = vec![
                    uri,
                    names(&p.oneway),
                    names(&p.methods),
                    names(&p.attrs),
                    Value::Float(p.timeout),
                    p.hmac_key.map(Value::Bytes).unwrap_or(Value::None),
                    p.handshake,
                    Value::Int(p.max_retries),
                    p.serializer.map(Value::Str).unwrap_or(Value::None),
                ];
                self.new_object("Pyro4.core", "Proxy")?;
                self.tuple(&state, depth)?;
                self.out.push(BUILD);
                Ok(true)
            }
            "Pyro4.futures._ExceptionWrapper" => {
                let Some(exc) = d.get_str("exception") else {
                    return Ok(false);
                };
                self.new_object("Pyro4.futures", "_ExceptionWrapper")?;
                let mut state = Dict::new();
                state.set("exception", exc.clone());
                self.dict(&state, depth + 1)?;
                self.out.push(BUILD);
                Ok(true)
            }
            _ => match RemoteException::from_value(v) {
                Some(e) => {
                    self.exception(&e, depth)?;
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    /// BaseException.__reduce__: `(cls, args, instance dict)`: REDUCE, then BUILD when
    /// there are attributes (Pyro4 always sets `_pyroTraceback` on what it sends).
    fn exception(&mut self, e: &RemoteException, depth: usize) -> Result<()> {
        let (module, name) = e
            .class_name
            .rsplit_once('.')
            .unwrap_or(("builtins", e.class_name.as_str()));
        self.global(module, name)?;
        self.tuple(&e.args, depth)?;
        self.out.push(REDUCE);
        if !e.attributes.is_empty() {
            self.dict(&e.attributes, depth + 1)?;
            self.out.push(BUILD);
        }
        Ok(())
    }
}
